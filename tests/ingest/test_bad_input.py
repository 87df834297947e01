"""Bad input, each case on its own: a clear message, and nothing written to the data tables (only a
failed run in ingest.runs)."""

from __future__ import annotations

import csv
import shutil
import socket
import warnings

import geopandas as gpd
import numpy as np
import pytest
import shapely
from ingest_helpers import (
    assert_clean_error, assert_nothing_written, cli, count, ingest, rows, runs, snapshot)

from gis import sample
from gis.errors import CRSError, DatabaseUnavailable, GisError, InputError
from ingest.job import RejectsExceeded


@pytest.fixture(scope="module")
def parcels(demo):
    """The first 20 parcels of the demo cadastre (all valid)."""
    gdf = gpd.read_file(demo["cadastral"], layer=sample.LAYER_PARCELS).head(20)
    assert gdf.geometry.is_valid.all()
    return gdf


@pytest.fixture(scope="module")
def shapefile(demo, tmp_path_factory):
    """The whole demo cadastre as a Shapefile (.shp .shx .dbf .prj .cpg)."""
    gdf = gpd.read_file(demo["cadastral"], layer=sample.LAYER_PARCELS)
    path = tmp_path_factory.mktemp("shp") / "thua_dat.shp"
    _write(gdf, path, encoding="UTF-8")
    return path


@pytest.fixture(scope="module")
def failing_dsn(module_dsn):
    """One database for the tests whose job fails: each checks that nothing at all was written, so
    they can share it (and a job that wrongly wrote would fail every later check too)."""
    return module_dsn


def _write(gdf, path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gdf.to_file(path, **kw)
    return path


def _copy_shapefile(shp, dest, skip=()):
    dest.mkdir(parents=True, exist_ok=True)
    for ext in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
        if ext not in skip:
            shutil.copy(shp.with_suffix(ext), dest / f"p{ext}")
    return dest / "p.shp"


def _half(src, dest):
    data = src.read_bytes()
    dest.write_bytes(data[: len(data) // 2])
    return dest


def _fails(dsn, path, tmp_path, exc=InputError, match=None, **opts) -> GisError:
    with pytest.raises(exc, match=match) as info:
        ingest(dsn, "cadastral", path, tmp_path, **opts)
    msg = info.value.message
    assert msg and "Traceback" not in msg and len(msg) < 2000
    assert_nothing_written(dsn)
    return info.value


# -- corrupt and truncated files --------------------------------------------------------------------
def test_truncated_geopackage(failing_dsn, demo, tmp_path):
    path = _half(demo["cadastral"], tmp_path / "half.gpkg")
    err = _fails(failing_dsn, path, tmp_path)
    assert "half.gpkg" in err.message and "corrupt" in err.message


def test_truncated_flatgeobuf(failing_dsn, parcels, tmp_path):
    full = _write(parcels, tmp_path / "full.fgb", driver="FlatGeobuf")
    err = _fails(failing_dsn, _half(full, tmp_path / "half.fgb"), tmp_path)
    assert "truncated or corrupt" in err.message


def test_truncated_shp(failing_dsn, shapefile, tmp_path):
    path = _copy_shapefile(shapefile, tmp_path / "cut")
    _half(shapefile, path)
    err = _fails(failing_dsn, path, tmp_path, match="p.shp is truncated")
    assert "header says" in err.message


def test_truncated_dbf(failing_dsn, shapefile, tmp_path):
    path = _copy_shapefile(shapefile, tmp_path / "cut")
    _half(shapefile.with_suffix(".dbf"), path.with_suffix(".dbf"))
    _fails(failing_dsn, path, tmp_path, match="p.dbf is truncated")


def test_truncated_zipped_shapefile(failing_dsn, shapefile, tmp_path):
    import zipfile

    path = tmp_path / "p.zip"
    with zipfile.ZipFile(path, "w") as z:
        for ext in (".shx", ".dbf", ".prj", ".cpg"):
            z.write(shapefile.with_suffix(ext), f"p{ext}")
        data = shapefile.read_bytes()
        z.writestr("p.shp", data[: len(data) // 2])
    _fails(failing_dsn, path, tmp_path, match="truncated")
    cut_zip = _half(path, tmp_path / "cut.zip")
    _fails(failing_dsn, cut_zip, tmp_path, match="cut.zip")


@pytest.mark.parametrize("suffix", [".gpkg", ".geojson", ".shp", ".fgb", ".zip", ".csv"])
def test_garbage_bytes(failing_dsn, tmp_path, suffix):
    path = tmp_path / f"garbage{suffix}"
    path.write_bytes(np.random.default_rng(1).bytes(4096))
    if suffix == ".shp":
        for ext in (".shx", ".dbf"):
            path.with_suffix(ext).write_bytes(np.random.default_rng(2).bytes(512))
    err = _fails(failing_dsn, path, tmp_path)
    assert "garbage" in err.message


def test_zero_byte_file(failing_dsn, tmp_path):
    path = tmp_path / "zero.gpkg"
    path.write_bytes(b"")
    res = cli(["ingest", "cadastral", str(path)], failing_dsn, tmp_path)
    assert_clean_error(res, "zero.gpkg", "empty (0 bytes)")
    assert_nothing_written(failing_dsn)


def test_path_that_does_not_exist(failing_dsn, tmp_path):
    res = cli(["ingest", "cadastral", str(tmp_path / "nope.gpkg")], failing_dsn, tmp_path)
    assert_clean_error(res, "nope.gpkg", "does not exist")
    assert_nothing_written(failing_dsn)


# -- incomplete Shapefiles ----------------------------------------------------------------------------
@pytest.mark.parametrize("missing", [".shx", ".dbf"])
def test_shapefile_missing_part(failing_dsn, shapefile, tmp_path, missing):
    path = _copy_shapefile(shapefile, tmp_path / "p", skip=(missing,))
    res = cli(["ingest", "cadastral", str(path)], failing_dsn, tmp_path)
    assert_clean_error(res, f"{missing} missing", "incomplete")
    assert_nothing_written(failing_dsn)


def test_shapefile_missing_prj(failing_dsn, shapefile, tmp_path):
    path = _copy_shapefile(shapefile, tmp_path / "p", skip=(".prj",))
    err = _fails(failing_dsn, path, tmp_path, exc=CRSError, match="no CRS")
    assert "--crs EPSG:9210" in err.message


# -- layers ---------------------------------------------------------------------------------------------
def test_empty_layer(failing_dsn, parcels, tmp_path):
    path = _write(parcels.head(0), tmp_path / "empty.gpkg")
    _fails(failing_dsn, path, tmp_path, match="empty: no features")


def test_several_layers_need_layer_option(dsn, parcels, tmp_path):
    path = _write(parcels.head(5), tmp_path / "two.gpkg", layer="a")
    _write(parcels.tail(5), path, layer="b")
    _fails(dsn, path, tmp_path, match="2 layers .*--layer")
    _fails(dsn, path, tmp_path, match="no layer 'c'", layer="c")
    assert ingest(dsn, "cadastral", path, tmp_path, layer="b").inserted == 5


# -- geometry ---------------------------------------------------------------------------------------------
def test_invalid_geometry_repaired_by_default(dsn, demo, tmp_path):
    result = ingest(dsn, "cadastral", demo["cadastral"], tmp_path)
    assert (result.repaired, result.rejected, result.inserted) == (1, 0, 600)
    assert count(dsn, "SELECT count(*) FROM cadastral.parcels WHERE NOT ST_IsValid(geom)") == 0


def test_invalid_geometry_rejected_fails_the_job(failing_dsn, demo, tmp_path):
    err = _fails(failing_dsn, demo["cadastral"], tmp_path, exc=RejectsExceeded, invalid="reject")
    assert "1 of 600 features rejected" in err.message and "Self-intersection" in err.message
    assert "--max-rejects" in err.message and "Nothing was written" in err.message
    assert runs(failing_dsn)[-1]["n_rejected"] == 1


def test_invalid_geometry_rejected_within_max_rejects(dsn, demo, tmp_path):
    result = ingest(dsn, "cadastral", demo["cadastral"], tmp_path, invalid="reject", max_rejects="1")
    assert (result.inserted, result.rejected, result.repaired) == (599, 1, 0)
    commune, sheet, number = sample.INVALID_PARCEL
    assert count(dsn, "SELECT count(*) FROM cadastral.parcels WHERE sheet_no = %s AND parcel_no = %s",
                 (sheet, number)) == 0
    table = list(csv.DictReader(open(result.rejects_path, encoding="utf-8")))
    assert len(table) == 1
    assert table[0]["SoHieuToBanDo"] == str(sheet) and table[0]["SoThuTuThua"] == str(number)
    assert table[0]["reason"].startswith("invalid geometry: Self-intersection")
    assert table[0]["wkt"].startswith("POLYGON")
    # personal data stays in the database's private schema, not in the rejects file
    assert "TenChuSuDung" not in table[0] and "SoGiayTo" not in table[0]
    log = runs(dsn)[-1]
    assert (log["outcome"], log["n_rejected"], log["rejects_path"]) == ("loaded", 1, result.rejects_path)


def test_invalid_option_value(failing_dsn, demo, tmp_path):
    res = cli(["ingest", "cadastral", str(demo["cadastral"]), "--invalid", "ignore"], failing_dsn, tmp_path)
    assert_clean_error(res, "--invalid 'ignore'", "repair or reject")
    assert_nothing_written(failing_dsn)


@pytest.mark.parametrize("case", ["empty", "null", "point", "line"])
def test_bad_geometries_are_rejected(dsn, parcels, tmp_path, case):
    gdf = parcels.copy()
    geoms = list(gdf.geometry)
    geoms[3] = {"empty": shapely.Polygon(), "null": None, "point": geoms[3].centroid,
                "line": geoms[3].exterior}[case]
    gdf = gpd.GeoDataFrame(gdf.drop(columns="geometry"), geometry=geoms, crs=gdf.crs)
    path = _write(gdf, tmp_path / f"{case}.gpkg")
    reason = {"empty": "empty geometry", "null": "no geometry (null or unreadable)",
              "point": "a Point in a polygon layer (mixed geometry types)",
              "line": "a LineString in a polygon layer (mixed geometry types)"}[case]
    err = _fails(dsn, path, tmp_path, exc=RejectsExceeded)
    assert f"feature 4: {reason}" in err.message
    result = ingest(dsn, "cadastral", path, tmp_path, max_rejects="1")
    assert (result.inserted, result.rejected) == (19, 1)
    table = list(csv.DictReader(open(result.rejects_path, encoding="utf-8")))
    assert [(r["feature"], r["reason"]) for r in table] == [("4", reason)]


# -- attributes ----------------------------------------------------------------------------------------
def test_duplicate_natural_keys(dsn, parcels, tmp_path):
    gdf = parcels.copy()
    gdf.loc[5, "SoThuTuThua"] = gdf.loc[4, "SoThuTuThua"]
    gdf.loc[9, "SoThuTuThua"] = gdf.loc[4, "SoThuTuThua"]
    path = _write(gdf, tmp_path / "dup.gpkg")
    err = _fails(dsn, path, tmp_path, exc=RejectsExceeded)
    assert "3 of 20 features rejected" in err.message and "By reason: 3 duplicate natural key" in err.message
    assert "feature 5: duplicate natural key (27094,1,5)" in err.message
    assert "also at features 6, 10 (3 features share it)" in err.message
    # with --max-rejects every copy of the key is rejected (which one is right cannot be told)
    result = ingest(dsn, "cadastral", path, tmp_path, max_rejects="3")
    assert (result.inserted, result.rejected) == (17, 3)
    table = list(csv.DictReader(open(result.rejects_path, encoding="utf-8")))
    assert [r["feature"] for r in table] == ["5", "6", "10"]
    assert all(r["reason"].startswith("duplicate natural key") for r in table)


def test_unknown_land_use_codes(dsn, parcels, tmp_path):
    gdf = parcels.copy()
    gdf.loc[2, "KyHieuMucDichSuDung"] = "XYZ"
    gdf.loc[7, "KyHieuMucDichSuDung"] = "odt"  # lower case is fine
    path = _write(gdf, tmp_path / "lu.gpkg")
    err = _fails(dsn, path, tmp_path, exc=RejectsExceeded)
    assert "feature 3: unknown land-use code 'XYZ'" in err.message
    res = cli(["ingest", "cadastral", str(path), "--max-rejects", "1"], dsn, tmp_path)
    assert res.returncode == 0, res.stderr
    assert "rejected 1" in res.stdout and "rejects.csv" in res.stdout
    assert count(dsn, "SELECT count(*) FROM cadastral.parcels") == 19
    assert rows(dsn, "SELECT land_use FROM cadastral.parcels WHERE parcel_no = 8") == [("ODT",)]


def test_missing_required_field(failing_dsn, parcels, tmp_path):
    path = _write(parcels.drop(columns=["KyHieuMucDichSuDung"]), tmp_path / "nolu.gpkg")
    err = _fails(failing_dsn, path, tmp_path)
    assert "land_use" in err.message


def test_bad_number_rejects_the_feature(failing_dsn, parcels, tmp_path):
    gdf = parcels.copy()
    gdf["DienTich"] = gdf["DienTich"].astype(object)
    gdf.loc[1, "DienTich"] = "about 90"
    path = _write(gdf, tmp_path / "num.gpkg")
    err = _fails(failing_dsn, path, tmp_path, exc=RejectsExceeded)
    assert "feature 2: field 'DienTich': 'about 90' is not a number" in err.message


def test_max_rejects_percentage(dsn, parcels, tmp_path):
    gdf = parcels.copy()
    gdf.loc[[0, 1], "KyHieuMucDichSuDung"] = "XYZ"
    path = _write(gdf, tmp_path / "lu.gpkg")
    _fails(dsn, path, tmp_path, exc=RejectsExceeded, max_rejects="5%")  # 5 % of 20 = 1
    assert ingest(dsn, "cadastral", path, tmp_path, max_rejects="10%").inserted == 18


# -- options and environment ------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["lots", "-1", "1.5", "%", ""])
def test_max_rejects_garbage(failing_dsn, demo, tmp_path, value):
    err = _fails(failing_dsn, demo["poi"], tmp_path, max_rejects=value)
    assert "--max-rejects" in err.message and "count" in err.message


def test_max_rejects_garbage_cli(failing_dsn, demo, tmp_path):
    res = cli(["ingest", "poi", str(demo["poi"]), "--max-rejects", "many"], failing_dsn, tmp_path)
    assert_clean_error(res, "--max-rejects 'many'", "percentage")
    assert_nothing_written(failing_dsn)


def test_unknown_kind(failing_dsn, demo, tmp_path):
    with pytest.raises(InputError, match="Unknown ingest kind 'parcels': use one of admin, cadastral"):
        ingest(failing_dsn, "parcels", demo["cadastral"], tmp_path)
    assert_nothing_written(failing_dsn)
    # the CLI has one sub-command per kind: click names the unknown one and exits 2
    res = cli(["ingest", "parcels", str(demo["cadastral"])], failing_dsn, tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "'parcels'" in res.stderr
    assert_nothing_written(failing_dsn)


def test_unknown_mapping_preset(failing_dsn, demo, tmp_path):
    res = cli(["ingest", "cadastral", str(demo["cadastral"]), "--mapping", "vn-cadastre"], failing_dsn, tmp_path)
    assert_clean_error(res, "No mapping preset called 'vn-cadastre'", "vn-cadastral")
    assert_nothing_written(failing_dsn)


def test_mapping_for_another_kind(failing_dsn, demo, tmp_path):
    err = _fails(failing_dsn, demo["cadastral"], tmp_path, mapping="osm-roads")
    assert "for kind 'roads', not 'cadastral'" in err.message


def test_bad_mapping_file(failing_dsn, demo, tmp_path):
    bad = tmp_path / "m.toml"
    bad.write_text("kind = cadastral [")
    err = _fails(failing_dsn, demo["cadastral"], tmp_path, mapping=str(bad))
    assert "not valid TOML" in err.message


@pytest.mark.parametrize(("rule", "fragment"), [
    ('{ from = "DienTich", scale = "ten" }', "scale must be a number"),
    ('{ from = "DienTich", extract = "(" }', "not a regular expression"),
    ('{ from = "DienTich", round = 2 }', "unknown key(s) ['round']"),
])
def test_bad_mapping_rule(failing_dsn, demo, tmp_path, rule, fragment):
    bad = tmp_path / "m.toml"
    bad.write_text('kind = "cadastral"\n[fields]\ncommune_code = "MaXa"\nsheet_no = "SoHieuToBanDo"\n'
                   'parcel_no = "SoThuTuThua"\nland_use = "KyHieuMucDichSuDung"\n'
                   f"legal_area_m2 = {rule}\n")
    err = _fails(failing_dsn, demo["cadastral"], tmp_path, mapping=str(bad))
    assert fragment in err.message and "legal_area_m2" in err.message


def test_bad_valid_from(failing_dsn, demo, tmp_path):
    res = cli(["ingest", "cadastral", str(demo["cadastral"]), "--valid-from", "last year"], failing_dsn, tmp_path)
    assert_clean_error(res, "--valid-from 'last year'", "ISO date")
    assert snapshot(failing_dsn)["cadastral.parcels"][0] == 0


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_database_down(demo, tmp_path):
    dsn = f"postgresql://gis:secret@127.0.0.1:{_closed_port()}/gis"
    with pytest.raises(DatabaseUnavailable, match="Cannot connect") as info:
        ingest(dsn, "cadastral", demo["cadastral"], tmp_path)
    assert "secret" not in info.value.message  # the password is never shown
    res = cli(["ingest", "cadastral", str(demo["cadastral"])], dsn, tmp_path)
    assert_clean_error(res, "Cannot connect to the database", "127.0.0.1", code=1)
    assert "secret" not in res.stderr
