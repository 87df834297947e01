"""The real HCMC data in shared/: every file loads, twice (the second run changes nothing), with the
quirks of real files handled (Z coordinates, UTM in a folder named WGS84, OSM nodes among building
footprints, list-valued categories, two Unicode forms of the same name)."""

from __future__ import annotations

import unicodedata

import pyogrio
import pytest
from ingest_helpers import cli, count, digest, ingest, rows

FILES = {  # name: (kind, path in shared/data/hcmc, features in the file, rows loaded)
    "wards2025": ("admin", "vn-provinces-db-2025/hcmc_wards_2025.geojson", 168, 168),
    "geoglue": ("admin", "geoglue-kraemer/HCM/HCM-2.shp", 167, 167),
    "wards2019": ("admin", "vn-demographic/CityScope_HCMC/Population_Ward_Level.shp", 322, 322),
    "districts2019": ("admin", "vn-demographic/CityScope_HCMC/Population_District_Level.shp", 24, 24),
    "landuse": ("planning", "csl-saigon-peninsula/GIS/landuse/LandUse_Noninteractive.shp", 373, 373),
    "csl_buildings": ("buildings", "csl-saigon-peninsula/GIS/building/WGS84-LONLAT/Building_Noninteractive.shp",
                      5168, 5168),
    "osm_buildings": ("buildings", "flood-loss-hcmc-ohsome/ohsome_buildings.geojson", 3513, 862),
    "tanthuan": ("buildings", "csl-tanthuan/Building_a0_geo.json", 211, 211),
    "ur_roads": ("roads", "urbanreflex/RoadSegment.geojson", 4936, 4936),
    "csl_roads": ("roads", "csl-saigon-peninsula/GIS/road_network/shapefile/RoadNetwork_WGS84.shp", 660, 660),
    "ur_poi": ("poi", "urbanreflex/PointOfInterest.geojson", 89, 89),
    "csl_medical": ("poi", "csl-saigon-peninsula/GIS/POIs/WGS84 LONLAT/Noninteractive/Medical.shp", 3, 3),
}
TABLE = {"admin": "admin.units", "planning": "planning.lots", "buildings": "city.buildings",
         "roads": "city.roads", "poi": "city.poi"}
#: the Saigon peninsula (Thủ Thiêm, District 7/4 riverside), lon/lat
PENINSULA = (106.70, 10.70, 106.77, 10.80)


@pytest.fixture(scope="module")
def loaded(module_dsn, shared_data, tmp_path_factory):
    """Every file, in the order above, loaded twice into one database."""
    tmp = tmp_path_factory.mktemp("real")
    out = {}
    for name, (kind, rel, _, _) in FILES.items():
        first = ingest(module_dsn, kind, shared_data / rel, tmp)
        before = digest(module_dsn, TABLE[kind])
        second = ingest(module_dsn, kind, shared_data / rel, tmp)
        out[name] = (first, second, before, digest(module_dsn, TABLE[kind]))
    return out


@pytest.mark.parametrize("name", list(FILES))
def test_file_loads_and_second_run_changes_nothing(shared_data, loaded, name):
    kind, rel, features, loaded_rows = FILES[name]
    assert pyogrio.read_info(shared_data / rel)["features"] == features
    first, second, before, after = loaded[name]
    assert first.outcome == "loaded", first.summary()
    assert first.read == features and first.rejected == 0
    assert first.inserted + first.updated == loaded_rows
    assert second.outcome == "unchanged", second.summary()
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, loaded_rows)
    assert before == after  # byte-identical table, geometries included


def test_wards_2025(module_dsn, loaded):
    # the 168 wards and communes of 1 July 2025, in force
    assert count(module_dsn, "SELECT count(*) FROM admin.wards_2025") == 168
    assert count(module_dsn, "SELECT count(*) FROM admin.wards_2025 WHERE valid_from = DATE '2025-07-01' "
                             "AND valid_to IS NULL") == 168
    assert rows(module_dsn, "SELECT name, unit_type FROM admin.wards_2025 WHERE code = '26740'") == [
        ("Sài Gòn", "Phường")]
    assert count(module_dsn, "SELECT count(*) FROM admin.wards_2025 WHERE NOT ST_IsValid(geom)") == 0
    # HCM-2 (kraemer-lab/geoglue) updates 167 of them with a 2024 population; it has no English
    # names, and a file without a field leaves that field as it was
    first = loaded["geoglue"][0]
    assert (first.inserted, first.updated) == (0, 167)
    assert count(module_dsn, "SELECT count(*) FROM admin.wards_2025 WHERE population IS NOT NULL") == 167
    assert count(module_dsn, "SELECT count(*) FROM admin.wards_2025 WHERE name_en IS NOT NULL") == 168
    assert count(module_dsn, "SELECT sum(population) FROM admin.wards_2025") == 14_661_596


def test_wards_and_districts_2019_population(module_dsn, loaded):
    assert count(module_dsn, "SELECT count(*) FROM admin.wards_2019") == 322
    assert count(module_dsn, "SELECT count(*) FROM admin.districts") == 24
    # the GSO 2019 census population of HCMC
    assert count(module_dsn, "SELECT sum(population) FROM admin.wards_2019") == 8_993_082
    assert count(module_dsn, "SELECT sum(population) FROM admin.districts") == 8_993_082
    # each district's wards add up to the district
    assert count(module_dsn, """
        SELECT count(*) FROM admin.districts d
        WHERE d.population <> (SELECT sum(w.population) FROM admin.wards_2019 w WHERE w.parent_code = d.code)
    """) == 0
    # valid until the 2025 reorganisation; the file is in UTM 48N (EPSG:32648), stored lon/lat in HCMC
    assert rows(module_dsn, "SELECT DISTINCT valid_from::text, valid_to::text, population_year "
                            "FROM admin.wards_2019") == [("2019-04-01", "2025-07-01", 2019)]
    box = rows(module_dsn, "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                           "(SELECT ST_Extent(geom)::geometry e FROM admin.districts) x")[0]
    assert 106.3 < box[0] < box[2] < 107.1 and 10.3 < box[1] < box[3] < 11.2


def test_landuse_polygon_z_in_utm(module_dsn, shared_data, loaded):
    info = pyogrio.read_info(shared_data / FILES["landuse"][1])
    assert info["geometry_type"] == "Polygon Z" and info["crs"] == "EPSG:32648"
    assert count(module_dsn, "SELECT count(*) FROM planning.lots WHERE ST_NDims(geom) <> 2") == 0
    assert count(module_dsn, "SELECT count(*) FROM planning.plans") == 1
    _in_peninsula(module_dsn, "planning.lots")


def test_csl_buildings_utm_in_a_wgs84_folder(module_dsn, shared_data, loaded):
    """The folder says WGS84-LONLAT but the .prj (rightly) says UTM 48N: the .prj is what counts."""
    info = pyogrio.read_info(shared_data / FILES["csl_buildings"][1])
    assert info["crs"] == "EPSG:32648" and info["geometry_type"] == "Polygon Z"
    assert loaded["csl_buildings"][0].source_crs.startswith("EPSG:32648")
    _in_peninsula(module_dsn, "city.buildings", "source = 'csl-hcmc/SaiGon-Peninsula'")
    assert count(module_dsn, "SELECT count(*) FROM city.buildings WHERE source = 'csl-hcmc/SaiGon-Peninsula' "
                             "AND height_m IS NOT NULL AND storeys IS NOT NULL") == 5168


def test_osm_buildings_nodes_are_skipped(module_dsn, loaded):
    """ohsome's building extract holds 2,651 nodes (points, no footprint) besides 858 ways and 4
    relations: the osm-buildings preset leaves the points out and says so."""
    first = loaded["osm_buildings"][0]
    assert (first.inserted, first.skipped, first.rejected) == (862, 2651, 0)
    assert "Skipped 2651" in first.summary()
    msg = rows(module_dsn, "SELECT message FROM ingest.runs WHERE run_id = %s", (first.run_id,))[0][0]
    assert "skipped 2651 features of type Point" in msg
    ids = [r[0] for r in rows(module_dsn, "SELECT source_id FROM city.buildings WHERE source = 'OpenStreetMap'")]
    assert len(ids) == len(set(ids)) == 862
    assert sum(i.startswith("relation/") for i in ids) == 4
    assert all(i.split("/")[0] in ("way", "relation") for i in ids)


def test_osm_buildings_points_rejected_without_the_preset_option(dsn, shared_data, tmp_path):
    """With a mapping that does not skip them, the points fail the job with a clear reason."""
    mapping = tmp_path / "no-skip.toml"
    mapping.write_text('name = "no-skip"\nkind = "buildings"\n[fields]\nsource_id = "@osmId"\n'
                       'use = "building"\n[constants]\nsource = "OpenStreetMap"\n')
    res = cli(["ingest", "buildings", str(shared_data / FILES["osm_buildings"][1]), "--mapping", str(mapping)],
              dsn, tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "2651 of 3513 features rejected" in res.stderr
    assert "a Point in a polygon layer (mixed geometry types)" in res.stderr
    assert "By reason: 2651 a Point in a polygon layer" in res.stderr
    assert count(dsn, "SELECT count(*) FROM city.buildings") == 0


def test_roads_two_unicode_forms_stored_nfc(module_dsn, shared_data, loaded):
    import geopandas as gpd

    src = gpd.read_file(shared_data / FILES["ur_roads"][1])
    nfd = [v for v in src["name"].dropna() if not unicodedata.is_normalized("NFC", v)]
    assert len(nfd) == 2  # the file mixes decomposed and precomposed names
    for table in ("city.roads", "city.poi", "city.buildings", "admin.units"):
        assert count(module_dsn, f"SELECT count(*) FROM {table} WHERE name <> normalize(name, NFC)") == 0
    for v in nfd:
        assert count(module_dsn, "SELECT count(*) FROM city.roads WHERE name = %s",
                     (unicodedata.normalize("NFC", v),)) >= 1
    # the CSL network is LineString Z: stored 2D
    assert count(module_dsn, "SELECT count(*) FROM city.roads WHERE ST_NDims(geom) <> 2") == 0
    assert count(module_dsn, "SELECT count(*) FROM city.roads WHERE source = 'OpenStreetMap via UrbanReflex' "
                             "AND oneway IS NOT NULL") > 1000


def test_poi_list_valued_category(module_dsn, loaded):
    cats = dict(rows(module_dsn, "SELECT category, count(*) FROM city.poi WHERE source = "
                                 "'OpenStreetMap via UrbanReflex' GROUP BY 1"))
    assert cats == {"hospital": 20, "school": 49, "other": 20}
    assert rows(module_dsn, "SELECT category, count(*) FROM city.poi WHERE source = "
                            "'csl-hcmc/SaiGon-Peninsula' GROUP BY 1") == [("clinic", 3)]


def test_path_with_a_space_through_the_cli(dsn, shared_data, tmp_path):
    res = cli(["ingest", "poi", str(shared_data / FILES["csl_medical"][1])], dsn, tmp_path)
    assert res.returncode == 0, res.stderr
    assert "inserted 3" in res.stdout
    assert count(dsn, "SELECT count(*) FROM city.poi") == 3


def _in_peninsula(dsn, table, where="true"):
    box = rows(dsn, f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                    f"(SELECT ST_Extent(geom)::geometry e FROM {table} WHERE {where}) x")[0]
    assert PENINSULA[0] < box[0] < box[2] < PENINSULA[2], box
    assert PENINSULA[1] < box[1] < box[3] < PENINSULA[3], box
