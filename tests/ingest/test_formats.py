"""The same parcels in every supported format load with identical results."""

from __future__ import annotations

import warnings
import zipfile

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
from ingest_helpers import count, ingest, rows

from gis import sample

PARCELS = ("SELECT md5(string_agg(concat_ws('|', commune_code, sheet_no, parcel_no, land_use, legal_area_m2, "
           "address, owner_type, source, licence, valid_to, row_hash, encode(ST_AsBinary(geom), 'hex')), "
           "E'\\n' ORDER BY commune_code, sheet_no, parcel_no)) FROM cadastral.parcels")
ATTRS = ("SELECT md5(string_agg(concat_ws('|', commune_code, sheet_no, parcel_no, land_use, legal_area_m2, "
         "address, owner_type, source, licence), E'\\n' ORDER BY commune_code, sheet_no, parcel_no)) "
         "FROM cadastral.parcels")
OWNERS = ("SELECT md5(string_agg(concat_ws('|', p.commune_code, p.sheet_no, p.parcel_no, o.owner_name, "
          "o.id_number), E'\\n' ORDER BY p.commune_code, p.sheet_no, p.parcel_no, o.owner_name)) "
          "FROM private.parcel_owners o JOIN cadastral.parcels p USING (parcel_id)")

FORMATS = ["gpkg", "shp", "zip", "geojson", "fgb", "csv", "gml"]


@pytest.fixture(scope="module")
def files(demo, tmp_path_factory):
    """cadastral.gpkg re-written by geopandas/pyogrio in each format, in its CRS (EPSG:9210)."""
    out = tmp_path_factory.mktemp("formats")
    gdf = gpd.read_file(demo["cadastral"], layer=sample.LAYER_PARCELS)
    paths = {"gpkg": demo["cadastral"]}
    shp = out / "shp" / "thua_dat.shp"
    shp.parent.mkdir()
    with warnings.catch_warnings():  # field names cut to 10 characters: the mapping copes
        warnings.simplefilter("ignore")
        gdf.to_file(shp, driver="ESRI Shapefile", encoding="UTF-8")
    assert "KyHieuMucD" in pyogrio.read_info(shp)["fields"]
    assert shp.with_suffix(".cpg").read_text().strip().upper().replace("-", "") == "UTF8"
    paths["shp"] = shp
    paths["zip"] = out / "thua_dat.zip"
    with zipfile.ZipFile(paths["zip"], "w") as z:
        for p in shp.parent.iterdir():
            z.write(p, p.name)
    paths["geojson"] = out / "thua_dat.geojson"
    gdf.to_file(paths["geojson"], driver="GeoJSON")  # not RFC 7946: keeps EPSG:9210 in a crs member
    paths["fgb"] = out / "thua_dat.fgb"
    gdf.to_file(paths["fgb"], driver="FlatGeobuf")
    paths["gml"] = out / "thua_dat.gml"
    gdf.to_file(paths["gml"], driver="GML")
    table = pd.DataFrame(gdf.drop(columns="geometry"))
    table["WKT"] = gdf.geometry.to_wkt(rounding_precision=-1)  # full precision
    paths["csv"] = out / "thua_dat.csv"
    table.to_csv(paths["csv"], index=False)
    return paths


@pytest.fixture(scope="module")
def reference(module_dsn, files, tmp_path_factory):
    result = ingest(module_dsn, "cadastral", files["gpkg"], tmp_path_factory.mktemp("rej"))
    assert result.inserted == 600
    return {q: rows(module_dsn, q)[0][0] for q in (PARCELS, ATTRS, OWNERS)}


@pytest.mark.parametrize("fmt", FORMATS)
def test_format_loads_identically(dsn, files, reference, tmp_path, fmt):
    # CSV has no CRS of its own
    opts = {"crs": "EPSG:9210"} if fmt == "csv" else {}
    result = ingest(dsn, "cadastral", files[fmt], tmp_path, **opts)
    assert result.outcome == "loaded"
    assert (result.read, result.inserted, result.repaired, result.rejected) == (600, 600, 1, 0)
    assert result.mapping == "vn-cadastral"
    assert rows(dsn, ATTRS)[0][0] == reference[ATTRS]
    assert rows(dsn, OWNERS)[0][0] == reference[OWNERS]
    if fmt == "gml":
        # GDAL writes GML coordinates with 15 significant digits (about a nanometre here), so the
        # bytes differ in the last bits; the geometries are the same to far below a millimetre.
        with_ref = count(dsn, "SELECT count(*) FROM cadastral.parcels WHERE ST_NPoints(geom) > 0")
        assert with_ref == 600
        return
    assert rows(dsn, PARCELS)[0][0] == reference[PARCELS]


def test_gml_geometries_match_to_a_micrometre(dsn, module_dsn, files, reference, tmp_path):
    ingest(dsn, "cadastral", files["gml"], tmp_path)
    ref = dict(((r[0], r[1]), r[2]) for r in rows(
        module_dsn, "SELECT sheet_no, parcel_no, ST_AsBinary(ST_Transform(geom, 32648)) FROM cadastral.parcels"))
    got = rows(dsn, "SELECT sheet_no, parcel_no, ST_AsBinary(ST_Transform(geom, 32648)) FROM cadastral.parcels")
    import shapely

    worst = 0.0
    for s, p, wkb in got:
        a, b = shapely.from_wkb(bytes(wkb)), shapely.from_wkb(bytes(ref[(s, p)]))
        assert shapely.get_num_coordinates(a) == shapely.get_num_coordinates(b)
        worst = max(worst, float(shapely.hausdorff_distance(a, b)))
    assert worst < 1e-6  # metres


def test_second_format_over_first_changes_nothing(dsn, files, tmp_path):
    """Loading the Shapefile after the GeoPackage finds every parcel unchanged."""
    ingest(dsn, "cadastral", files["gpkg"], tmp_path)
    before = rows(dsn, PARCELS)[0][0]
    for fmt in ("shp", "zip", "geojson", "fgb"):
        result = ingest(dsn, "cadastral", files[fmt], tmp_path)
        assert result.outcome == "unchanged", (fmt, result.summary())
    csv = ingest(dsn, "cadastral", files["csv"], tmp_path, crs="EPSG:9210")
    assert csv.outcome == "unchanged", csv.summary()
    assert rows(dsn, PARCELS)[0][0] == before
