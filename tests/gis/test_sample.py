"""The synthetic demo dataset (gis.sample): files, CRS, keys, validity, determinism, large files;
the administrative units and rasters of the demo, loaded by the real ingest jobs into a real
database, and the analyses, the crosswalk and the coverages API on them."""

from __future__ import annotations

import unicodedata

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import rasterio
import rasterio.warp
import shapely
from pyproj import Transformer

from gis import sample

KEY = ["MaXa", "SoHieuToBanDo", "SoThuTuThua"]
GEOJSON = ("buildings", "roads", "poi")
RASTERS = ("population", "s2_before", "s2_after", "s2_truth")
VECTORS = ("cadastral", "cadastral_update", "planning", *GEOJSON, "admin")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return sample.generate(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def parcels(demo):
    return pyogrio.read_dataframe(demo["cadastral"], layer=sample.LAYER_PARCELS)


def _read(path, **kw):
    return pyogrio.read_dataframe(path, **kw)


def test_files_exist_and_open(demo):
    assert set(demo) == {*VECTORS, *RASTERS, "readme"}
    for kind, path in demo.items():
        assert path.is_file() and path.parent == demo["readme"].parent, kind
        if kind in VECTORS:
            assert pyogrio.read_info(path)["features"] > 0, kind
        elif kind in RASTERS:
            with rasterio.open(path) as src:
                assert src.count >= 1 and src.width > 10 and src.height > 10, kind
    assert pyogrio.list_layers(demo["admin"])[:, 0].tolist() == [sample.LAYER_ADMIN]
    assert pyogrio.list_layers(demo["cadastral"])[:, 0].tolist() == ["thua_dat"]
    assert pyogrio.list_layers(demo["cadastral_update"])[:, 0].tolist() == ["thua_dat"]
    assert pyogrio.list_layers(demo["planning"])[:, 0].tolist() == ["quy_hoach"]
    assert sum(p.stat().st_size for p in demo.values()) < 2_000_000


def test_crs_and_geometry_types(demo):
    expected = {"cadastral": ("EPSG:9210", "Polygon"), "cadastral_update": ("EPSG:9210", "Polygon"),
                "planning": ("EPSG:9210", "Polygon"), "buildings": ("EPSG:4326", "Polygon"),
                "roads": ("EPSG:4326", "LineString"), "poi": ("EPSG:4326", "Point"),
                "admin": ("EPSG:9210", "Polygon")}
    for kind, (crs, geom_type) in expected.items():
        info = pyogrio.read_info(demo[kind])
        assert (info["crs"], info["geometry_type"]) == (crs, geom_type), kind


def test_cadastral_schema(parcels, demo):
    assert list(parcels.columns) == [*sample.CADASTRAL_FIELDS, "geometry"]
    assert len(parcels) == 4 * 150
    assert (parcels["MaXa"] == sample.SAMPLE_COMMUNE).all()
    assert set(parcels["KyHieuMucDichSuDung"]) == {
        "ODT", "TMD", "DGD", "DYT", "CLN", "DGT", "SON", "DKV", "TON"}
    assert parcels["KyHieuMucDichSuDung"].value_counts().index[0] == "ODT"
    assert parcels["KyHieuDoiTuong"].value_counts().index[0] == "GDC"
    assert {"GDC", "TKT", "UBS", "TCN"} <= set(parcels["KyHieuDoiTuong"])
    persons = parcels[parcels["KyHieuDoiTuong"] == "GDC"]
    assert persons["SoGiayTo"].str.fullmatch(r"\d{12}").all()
    assert persons["TenChuSuDung"].str.split().str.len().ge(3).all()
    assert parcels["DiaChiThuaDat"].dropna().str.endswith(", Phường An Khánh").all()
    info = pyogrio.read_info(demo["cadastral"])
    assert dict(zip(info["fields"], info["ogr_types"]))["SoHieuToBanDo"] == "OFTInteger"
    assert dict(zip(info["fields"], info["ogr_types"]))["DienTich"] == "OFTReal"


def test_natural_key_unique(parcels):
    assert not parcels.duplicated(KEY).any()


def test_exactly_one_invalid_parcel(parcels):
    invalid = parcels[~shapely.is_valid(parcels.geometry.values)]
    assert len(invalid) == 1
    assert tuple(invalid[KEY].iloc[0]) == sample.INVALID_PARCEL
    assert (shapely.get_num_coordinates(parcels.geometry.values) == 5).all()  # quadrilaterals


def test_legal_area_close_to_geometric_area(parcels):
    valid = parcels[shapely.is_valid(parcels.geometry.values)]
    ratio = valid["DienTich"] / valid.geometry.area
    assert ((ratio - 1).abs() <= 0.02).all()
    assert ((ratio - 1).abs() < 1e-3).mean() > 0.7       # most are the surveyed area
    assert (valid["DienTich"] == valid["DienTich"].round(1)).all()


def test_valid_parcels_tile_without_overlap(parcels):
    valid = parcels[shapely.is_valid(parcels.geometry.values)]
    assert valid.union_all().area == pytest.approx(valid.area.sum(), rel=1e-9)


def test_everything_reprojects_into_hcmc(demo):
    to_wgs84 = Transformer.from_crs("EPSG:9210", "EPSG:4326", always_xy=True)
    for kind in ("cadastral", "cadastral_update", "planning", "admin"):
        xy = shapely.get_coordinates(_read(demo[kind]).geometry.values)
        lon, lat = to_wgs84.transform(xy[:, 0], xy[:, 1])
        assert np.isfinite(lon).all() and np.isfinite(lat).all()
        assert 106.5 < lon.min() and lon.max() < 107.0, kind
        assert 10.6 < lat.min() and lat.max() < 11.0, kind
    for kind in GEOJSON:
        xy = shapely.get_coordinates(_read(demo[kind]).geometry.values)
        assert (106.5 < xy[:, 0]).all() and (xy[:, 0] < 107.0).all(), kind
        assert (10.6 < xy[:, 1]).all() and (xy[:, 1] < 11.0).all(), kind


def test_deterministic(demo, tmp_path):
    again = sample.generate(tmp_path)
    for kind, path in demo.items():
        if kind == "readme":
            assert path.read_text(encoding="utf-8") == again[kind].read_text(encoding="utf-8")
            continue
        if kind in RASTERS:
            assert path.read_bytes() == again[kind].read_bytes(), kind
            continue
        a, b = _read(path), _read(again[kind])
        pd.testing.assert_frame_equal(a.drop(columns="geometry"), b.drop(columns="geometry"))
        assert shapely.equals_exact(a.geometry.values, b.geometry.values, tolerance=0).all(), kind
        assert path.read_bytes() == again[kind].read_bytes(), kind


def test_other_seed_differs(parcels, tmp_path):
    other = _read(sample.generate(tmp_path, seed=7)["cadastral"])
    assert not shapely.equals_exact(other.geometry.values, parcels.geometry.values, 0).all()


def test_update_has_split_and_changed_land_use(parcels, demo):
    update = _read(demo["cadastral_update"], layer=sample.LAYER_PARCELS)
    assert list(update.columns) == [*sample.CADASTRAL_FIELDS, "TachTuThua", "geometry"]
    assert (update["SoHieuToBanDo"] == sample.UPDATE_SHEET).all()
    assert not update.duplicated(KEY).any()
    parent_ref = f"{sample.UPDATE_SHEET}/{sample.UPDATE_SPLIT_PARCEL}"
    children = update[update["TachTuThua"].notna()]
    assert children["TachTuThua"].tolist() == [parent_ref, parent_ref]
    assert children["SoThuTuThua"].tolist() == [151, 152]
    assert sample.UPDATE_SPLIT_PARCEL not in update["SoThuTuThua"].tolist()

    old = parcels[parcels["SoHieuToBanDo"] == sample.UPDATE_SHEET]
    assert old["SoThuTuThua"].max() == 150
    parent = old[old["SoThuTuThua"] == sample.UPDATE_SPLIT_PARCEL].geometry.iloc[0]
    union = shapely.union_all(children.geometry.values)
    assert union.symmetric_difference(parent).area < 1e-6
    assert children["DienTich"].sum() == pytest.approx(parent.area, rel=0.002)

    both = update.merge(old, on=KEY, suffixes=("_new", "_old"))
    assert len(both) == len(old) - 1
    changed = both[both["KyHieuMucDichSuDung_new"] != both["KyHieuMucDichSuDung_old"]]
    assert changed["SoThuTuThua"].tolist() == [sample.UPDATE_LAND_USE_PARCEL]
    same = both.drop(index=changed.index)
    for field in sample.CADASTRAL_FIELDS[3:]:
        assert same[f"{field}_new"].equals(same[f"{field}_old"]), field


def test_planning(demo, parcels):
    plan = _read(demo["planning"], layer=sample.LAYER_PLANNING)
    assert list(plan.columns) == [*sample.PLANNING_FIELDS, "geometry"]
    assert 20 <= len(plan) <= 40
    assert plan["KyHieuLo"].is_unique
    assert plan["SoQuyetDinh"].str.fullmatch(r"\d+/QĐ-UBND").all()
    assert pd.to_datetime(plan["NgayPheDuyet"], format="%Y-%m-%d").notna().all()
    assert set(plan["MaChucNang"]) == {"ODT", "HH", "CX", "GD", "YT", "GT"}
    assert plan["MatDoXD"].between(0, 100).all() and (plan["HeSoSDD"] >= 0).all()
    assert (plan["DienTich"] - plan.area).abs().max() < 0.1
    assert plan.union_all().area == pytest.approx(plan.area.sum())   # lots do not overlap
    valid = parcels[shapely.is_valid(parcels.geometry.values)]
    assert plan.union_all().contains(valid.geometry.centroid).all()


def test_buildings_roads_poi(demo, parcels):
    buildings = _read(demo["buildings"])
    assert 250 <= len(buildings) <= 350 and buildings["osm_id"].is_unique
    assert buildings["osm_id"].str.fullmatch(r"way/\d+").all()
    assert set(buildings["building"]) == {"house", "apartments", "commercial", "school", "hospital"}
    assert buildings["height"].isna().any() and buildings["height"].notna().any()
    assert buildings["name"].notna().any() and buildings["name"].isna().any()
    wgs = parcels.to_crs("EPSG:4326")
    joined = buildings.sjoin(wgs, predicate="within")
    assert len(joined) == len(buildings) and joined.index.is_unique

    roads = _read(demo["roads"])
    assert set(roads["highway"]) == {"primary", "secondary", "tertiary", "residential", "service"}
    assert set(roads["oneway"]) <= {"yes", "no"} and "Đường Mai Chí Thọ" in set(roads["name"])
    # one connected network: union-find over the line end points
    parent: dict = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for line in roads.geometry:
        coords = shapely.get_coordinates(line)
        parent[find(tuple(coords[0]))] = find(tuple(coords[-1]))
    assert len({find(x) for x in list(parent)}) == 1
    assert not roads.sjoin(wgs, predicate="crosses").shape[0]   # streets run between parcels

    poi = _read(demo["poi"])
    assert 12 <= len(poi) <= 20 and poi["osm_id"].is_unique
    assert {"hospital", "clinic", "school", "kindergarten", "university", "marketplace"} == set(poi["amenity"])
    hospitals = poi["amenity"] == "hospital"
    assert poi.loc[hospitals, "beds"].notna().all() and poi.loc[~hospitals, "beds"].isna().all()
    assert poi.sjoin(wgs, predicate="within").shape[0] == len(poi)


def test_text_is_nfc_utf8_and_readme(demo):
    for kind in VECTORS:
        frame = _read(demo[kind])
        for column in frame.columns.drop("geometry"):
            for value in frame[column].dropna():
                if isinstance(value, str):
                    assert unicodedata.is_normalized("NFC", value), (kind, column, value)
    readme = demo["readme"].read_text(encoding="utf-8")
    assert unicodedata.is_normalized("NFC", readme)
    for needle in ("synthetic", "gis.sample.generate", "CC0", "EPSG:9210", "EPSG:4326",
                   *sample.CADASTRAL_FIELDS, *sample.PLANNING_FIELDS, "TachTuThua",
                   *sample.ADMIN_FIELDS, "admin.gpkg", "population.tif", demo["s2_before"].name,
                   demo["s2_after"].name, "gis ingest admin admin.gpkg"):
        assert needle in readme, needle


def test_iter_parcel_batches():
    batches = list(sample.iter_parcel_batches(120_000, batch_size=50_000))
    assert [len(b) for b in batches] == [50_000, 50_000, 20_000]
    allp = pd.concat(batches, ignore_index=True)
    assert list(allp.columns) == [*sample.CADASTRAL_FIELDS, "geometry"]
    assert not allp.duplicated(KEY).any()
    assert allp["MaXa"].nunique() > 3
    assert all(b.crs.to_epsg() == 9210 for b in batches)
    geoms = allp.geometry.values
    assert shapely.is_valid(geoms).all()
    assert (shapely.get_type_id(geoms) == 3).all()          # Polygon, not MultiPolygon
    ratio = allp["DienTich"] / allp.geometry.area
    assert ((ratio - 1).abs() <= 0.02).all()
    lon, lat = Transformer.from_crs("EPSG:9210", "EPSG:4326", always_xy=True).transform(
        *allp.geometry.total_bounds.reshape(2, 2).T)
    assert 106.6 <= lon.min() and lon.max() <= 106.85 and 10.7 <= lat.min() and lat.max() <= 10.9


def test_iter_parcel_batches_independent_of_batch_size():
    a = pd.concat(sample.iter_parcel_batches(1_300, batch_size=1_300), ignore_index=True)
    b = pd.concat(sample.iter_parcel_batches(1_300, batch_size=333), ignore_index=True)
    c = pd.concat(sample.iter_parcel_batches(1_000, batch_size=1_000), ignore_index=True)
    pd.testing.assert_frame_equal(a.drop(columns="geometry"), b.drop(columns="geometry"))
    assert shapely.equals_exact(a.geometry.values, b.geometry.values, 0).all()
    pd.testing.assert_frame_equal(a.drop(columns="geometry").iloc[:1000], c.drop(columns="geometry"))


def test_write_parcels_flatgeobuf(tmp_path):
    seen = []
    path = sample.write_parcels(tmp_path / "p.fgb", 10_000, driver="FlatGeobuf",
                                progress=lambda done, total: seen.append((done, total)),
                                batch_size=4_000)
    assert seen == [(4_000, 10_000), (8_000, 10_000), (10_000, 10_000)]
    back = pyogrio.read_dataframe(path)
    assert len(back) == 10_000 and back.crs.to_epsg() == 9210
    assert not back.duplicated(KEY).any()


def test_write_parcels_gpkg(tmp_path):
    path = sample.write_parcels(tmp_path / "p.gpkg", 2_500, batch_size=1_000)
    info = pyogrio.read_info(path, layer=sample.LAYER_PARCELS)
    assert info["features"] == 2_500 and info["crs"] == "EPSG:9210"
    assert info["geometry_type"] == "Polygon"
    with pytest.raises(ValueError):
        sample.write_parcels(tmp_path / "p.shp", 10, driver="ESRI Shapefile")


# --- administrative units and rasters of the demo ----------------------------------------------
N_2019, N_2025 = len(sample.SAMPLE_WARDS_2019), len(sample.SAMPLE_WARDS_2025)
CODES_2019 = [w[0] for w in sample.SAMPLE_WARDS_2019]
CODES_2025 = [w[0] for w in sample.SAMPLE_WARDS_2025]
TILE_M2 = 1.0   # gaps and overlaps tolerated between units of one period, m2 (none expected)


@pytest.fixture(scope="module")
def admin(demo):
    return _read(demo["admin"], layer=sample.LAYER_ADMIN)


def _units(admin, level, valid_from):
    """Units of one level and period, indexed by code."""
    return admin[(admin["level"] == level) & (admin["valid_from"] == valid_from)].set_index("code")


def test_admin_schema_and_counts(admin):
    assert list(admin.columns) == [*sample.ADMIN_FIELDS, "geometry"]
    d = _units(admin, "district", sample.ADMIN_2019_FROM)
    w19 = _units(admin, "ward", sample.ADMIN_2019_FROM)
    w25 = _units(admin, "ward", sample.ADMIN_2025_FROM)
    assert (len(d), len(w19), len(w25), len(admin)) == (1, N_2019, N_2025, 1 + N_2019 + N_2025)
    assert w19.index.tolist() == CODES_2019 and w25.index.tolist() == CODES_2025
    assert (w19["valid_to"] == sample.ADMIN_2025_FROM).all() and w25["valid_to"].isna().all()
    assert (w19["parent_code"] == sample.SAMPLE_DISTRICT[0]).all()
    assert not admin.duplicated(["level", "code", "valid_from"]).any()
    assert admin.geometry.is_valid.all()
    assert (admin["area_km2"] - admin.area / 1e6).abs().max() < 1e-3
    # invented but plausible: a few thousand to a few tens of thousands of people per 2019 ward
    assert w19["population"].between(500, 60_000).all()
    assert w25["population"].between(5_000, 250_000).all()
    assert d["population"].iloc[0] == w19["population"].sum()
    assert (w19["population_year"] == 2019).all() and (w25["population_year"] == 2024).all()
    assert set(admin["source"]) == {"gis.sample (synthetic)"} and set(admin["licence"]) == {"CC0-1.0"}
    assert all(unicodedata.is_normalized("NFC", name) for name in admin["name"])
    assert set(admin["unit_type"]) == {"Phường", "Quận"}
    assert not w19["name"].str.startswith("Phường").any()   # the type is in unit_type


def test_wards_tile_the_area(admin, parcels, demo):
    district = _units(admin, "district", sample.ADMIN_2019_FROM).geometry.iloc[0]
    w19 = _units(admin, "ward", sample.ADMIN_2019_FROM).geometry
    w25 = _units(admin, "ward", sample.ADMIN_2025_FROM).geometry
    for wards in (w19, w25):
        union = shapely.union_all(wards.values)
        assert abs(wards.area.sum() - union.area) < TILE_M2          # no overlap
        assert union.symmetric_difference(district).area < TILE_M2   # no gap
        assert union.geom_type == "Polygon" and not list(union.interiors)
    # each 2025 ward is its whole 2019 wards plus, for two of them, a part of the split ward
    split = w19[sample.SPLIT_WARD_2019]
    shares = {}
    for code in CODES_2025:
        whole = shapely.union_all(w19[[w[0] for w in sample.SAMPLE_WARDS_2019 if w[3] == code]].values)
        assert whole.difference(w25[code]).area < TILE_M2
        assert w25[code].difference(whole).difference(split).area < TILE_M2
        shares[code] = split.intersection(w25[code]).area / split.area
    assert sorted(v > 0.2 for v in shares.values()) == [False, True, True]
    assert sum(shares.values()) == pytest.approx(1.0)
    # the whole demo lies in An Khánh (2025), across three of the 2019 wards
    plan = _read(demo["planning"])
    assert w25[sample.SAMPLE_COMMUNE].contains(shapely.union_all(plan.geometry.values))
    valid = parcels[parcels.geometry.is_valid]
    wards = gpd.GeoDataFrame({"ward": w19.index}, geometry=w19.values, crs=parcels.crs)
    assert valid.sjoin(wards, predicate="intersects")["ward"].nunique() == 3


def test_population_raster_and_scenes(demo, admin):
    from gis.analysis.population import worldpop_cells

    with rasterio.open(demo["population"]) as src:
        assert (src.crs.to_epsg(), src.dtypes[0], src.nodata) == (4326, "float32", -99999.0)
        assert src.res == pytest.approx((1 / 1200, 1 / 1200)) and src.tags()["DATETIME"] == "2020"
        data = src.read(1)
    assert (data >= 0).all() and 50 < data.mean() < 400       # people per ~92 m cell
    # a unit's population is close to the grid's people in it (2019: 88-96 %, 2024: 104-108 %)
    lonlat = admin.to_crs("EPSG:4326")
    cells = worldpop_cells(demo["population"], bounds=tuple(lonlat.total_bounds))
    pts = cells.set_geometry(shapely.centroid(cells.geometry.values))
    got = pts.sjoin(lonlat[["level", "code", "valid_from", "population", "geometry"]])
    per = got.groupby(["level", "code", "valid_from"]).agg(
        grid=("population_left", "sum"), official=("population_right", "first"))
    assert len(per) == len(admin)
    assert (per["official"] / per["grid"]).between(0.8, 1.2).all(), per
    area = shapely.union_all(lonlat.geometry.values)
    for kind in ("s2_before", "s2_after"):
        with rasterio.open(demo[kind]) as src:
            assert (src.count, src.dtypes[0], src.crs.to_epsg(), src.nodata) == (5, "uint16", 32648, 0)
            assert src.descriptions == ("B02", "B03", "B04", "B08", "B11")
            box = shapely.box(*rasterio.warp.transform_bounds(src.crs, "EPSG:4326", *src.bounds))
            assert box.contains(area)
    with rasterio.open(demo["s2_truth"]) as src:
        assert 0.01 < src.read(1).mean() < 0.5    # built-up land appeared between the dates


# --- the demo in a real database ---------------------------------------------------------------
@pytest.fixture(scope="module")
def raster_store(tmp_path_factory):
    from gis.raster.store import RasterStore

    return RasterStore(tmp_path_factory.mktemp("sample_rasters"))


def _load_demo(dsn, demo, store):
    """Every file of the demo through the real ingest jobs, as ./dev demo loads them."""
    from datetime import UTC, datetime

    from ingest.job import IngestOptions, run_ingest
    from ingest.raster import RasterIngestOptions, run_raster_ingest

    jobs = [("cadastral", "cadastral", IngestOptions(valid_from=datetime(2024, 1, 1, tzinfo=UTC))),
            ("cadastral", "cadastral_update", IngestOptions(valid_from=datetime(2025, 1, 1, tzinfo=UTC))),
            *((kind, kind, None) for kind in ("planning", "buildings", "roads", "poi", "admin"))]
    results = {key: run_ingest(dsn, kind, demo[key], opts) for kind, key, opts in jobs}
    rasters = {"s2-synthetic": ([demo["s2_before"], demo["s2_after"]], "sentinel2"),
               "worldpop": ([demo["population"]], "worldpop")}
    for collection, (paths, sensor) in rasters.items():
        opts = RasterIngestOptions(collection=collection, sensor=sensor)
        results[collection] = run_raster_ingest(dsn, paths, opts, store=store)
    return results


@pytest.fixture(scope="module")
def demo_db(module_dsn, demo, raster_store):
    first = _load_demo(module_dsn, demo, raster_store)
    assert all(r.outcome == "loaded" for r in first.values()), [r.summary() for r in first.values()]
    return module_dsn, first


def _rows(dsn, query, params=()):
    import psycopg

    with psycopg.connect(dsn) as conn:
        return conn.execute(query, params).fetchall()


def test_admin_ingests_with_expected_counts(demo_db, demo, raster_store):
    dsn, first = demo_db
    res = first["admin"]
    n = 1 + N_2019 + N_2025
    assert (res.read, res.inserted, res.rejected, res.mapping) == (n, n, 0, "identity")
    assert all(r.rejected == 0 for k, r in first.items() if k not in ("s2-synthetic", "worldpop"))
    counts = dict(_rows(dsn, "SELECT 'w25', count(*) FROM admin.wards_2025 UNION ALL "
                             "SELECT 'w19', count(*) FROM admin.wards_2019 UNION ALL "
                             "SELECT 'd', count(*) FROM admin.districts"))
    assert counts == {"w25": N_2025, "w19": N_2019, "d": 1}
    names = _rows(dsn, "SELECT code, name FROM admin.wards_2025 ORDER BY code")
    assert names == sorted((c, name) for c, name, _ in sample.SAMPLE_WARDS_2025)
    # stored in EPSG:4326, the units of each period still tile: no overlap, no gap (geography m2)
    for view in ("admin.wards_2025", "admin.wards_2019"):
        total, union, gap = _rows(dsn, f"""
            SELECT sum(ST_Area(geom::geography)), ST_Area(ST_Union(geom)::geography),
                   (SELECT ST_Area(ST_SymDifference(ST_Union(w.geom), d.geom)::geography)
                    FROM {view} w, admin.districts d GROUP BY d.geom)
            FROM {view}""")[0]
        assert abs(total - union) < TILE_M2 and gap < TILE_M2, view
    # every parcel lies in the 2025 ward its MaXa names
    outside = _rows(dsn, "SELECT count(*) FROM cadastral.parcels p JOIN admin.wards_2025 w "
                         "ON w.code = p.commune_code WHERE NOT ST_CoveredBy(p.geom, w.geom)")
    inside = _rows(dsn, "SELECT count(*) FROM cadastral.parcels p JOIN admin.wards_2025 w "
                        "ON w.code = p.commune_code")
    assert outside[0][0] == 0 and inside[0][0] > 600
    # a second run changes nothing
    again = _load_demo(dsn, demo, raster_store)
    assert {k: r.outcome for k, r in again.items()} == {k: "unchanged" for k in again}


def test_rasters_ingest_and_coverages_list_them(demo_db, raster_store, tmp_path):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.settings import ApiSettings
    from gis.settings import Settings

    dsn, _ = demo_db
    items = dict(_rows(dsn, "SELECT collection, count(*) FROM raster.items GROUP BY collection"))
    assert items == {"s2-synthetic": 2, "worldpop": 1}
    settings = Settings(database_url=dsn, data_dir=tmp_path, raster_store=raster_store.root)
    with TestClient(create_app(settings, ApiSettings()), raise_server_exceptions=False) as client:
        docs = {c["id"]: c for c in client.get("/collections").json()["collections"]}
        for cid in ("s2-synthetic", "worldpop", "wards-2025", "wards-2019", "districts-2019"):
            assert cid in docs, sorted(docs)
        assert docs["s2-synthetic"]["x-raster"]["bands"] == ["B02", "B03", "B04", "B08", "B11"]
        rels = {link["rel"] for link in docs["worldpop"]["links"]}
        assert "http://www.opengis.net/def/rel/ogc/1.0/coverage" in rels
        cov = client.get("/collections/worldpop/coverage", params={"f": "tif"})
        assert cov.status_code == 200, cov.text[:300]
        assert client.get("/collections/wards-2025/items").json()["numberReturned"] == N_2025


def _run(dsn, analysis_id, **params):
    from gis.analysis.registry import get_analysis

    analysis = get_analysis(analysis_id)
    return analysis.run(dsn, analysis.validate(params))


@pytest.mark.parametrize("zones", ["wards_2025", "wards_2019"])
def test_land_use_by_ward_shares_sum_to_one(demo_db, zones):
    dsn, _ = demo_db
    out = _run(dsn, "planning.land-use", zones=zones)
    assert sorted(out["code"].unique()) == sorted(CODES_2025 if zones == "wards_2025" else CODES_2019)
    sums = out.groupby("code")["share_of_zone"].sum()
    assert np.allclose(sums.to_numpy(), 1.0, atol=1e-9), sums
    mapped = out[out["use"] != "(unmapped)"]
    assert mapped["code"].nunique() == (1 if zones == "wards_2025" else 3)
    assert np.allclose(mapped.groupby("code")["share_of_mapped"].sum().to_numpy(), 1.0)
    # what the statistic distributes is the current parcels' area, as the database has it
    parcels_m2 = _rows(dsn, "SELECT sum(ST_Area(geom::geography)) FROM cadastral.parcels "
                            "WHERE valid_to IS NULL")[0][0]
    assert mapped["area_m2"].sum() == pytest.approx(parcels_m2, rel=0.01)


def test_crosswalk_and_health_access(demo_db, demo):
    dsn, _ = demo_db
    cw = _run(dsn, "planning.crosswalk")
    assert cw.groupby("code_2019")["weight"].sum().to_numpy() == pytest.approx(1.0)
    split = cw[cw["code_2019"] == sample.SPLIT_WARD_2019]
    went = {w[3] for w in sample.SAMPLE_WARDS_2019} - {None}
    assert len(split) == 2 and set(split["code_2025"]) < went
    assert split["weight"].between(0.2, 0.8).all()
    assert cw[cw["code_2019"] != sample.SPLIT_WARD_2019]["weight"].to_numpy() == pytest.approx(1.0)
    access = _run(dsn, "health.access", worldpop=str(demo["population"]))
    assert sorted(access["code"]) == sorted(CODES_2025)
    assert (access["population"] > 0).all()
    assert (access["pop_within_5km"] <= access["population"] + 1e-6).all()
    assert access["share_within_30min"].between(0.5, 1.0).all()
