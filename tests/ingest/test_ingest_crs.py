"""CRS handling of ingest jobs: missing CRS, VN-2000 accuracy, mislabelled and misplaced data."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pytest
import shapely
from ingest_helpers import assert_clean_error, assert_nothing_written, cli, count, ingest, rows

from gis import crs as gcrs
from gis import sample
from gis.errors import CRSError


@pytest.fixture(scope="module")
def parcels(demo):
    """The first 30 parcels of the demo cadastre (EPSG:9210), valid geometries only."""
    gdf = gpd.read_file(demo["cadastral"], layer=sample.LAYER_PARCELS)
    return gdf[gdf.geometry.is_valid].head(30).reset_index(drop=True)


def _write(gdf, path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gdf.to_file(path, **kw)
    return path


def test_missing_crs_fails_then_loads_with_crs_option(dsn, parcels, tmp_path):
    path = _write(parcels.set_crs(None, allow_override=True), tmp_path / "nocrs.gpkg")
    with pytest.raises(CRSError, match="no CRS") as exc:
        ingest(dsn, "cadastral", path, tmp_path)
    assert "--crs EPSG:9210" in exc.value.message
    assert_nothing_written(dsn)
    result = ingest(dsn, "cadastral", path, tmp_path, crs="EPSG:9210")
    assert result.inserted == 30
    assert result.source_crs.startswith("EPSG:9210")


def test_shapefile_without_prj_says_no_crs(dsn, parcels, tmp_path):
    path = _write(parcels, tmp_path / "p.shp", encoding="UTF-8")
    path.with_suffix(".prj").unlink()
    res = cli(["ingest", "cadastral", str(path)], dsn, tmp_path)
    assert_clean_error(res, "no CRS", "--crs EPSG:9210")
    assert_nothing_written(dsn)
    res = cli(["ingest", "cadastral", str(path), "--crs", "EPSG:9210"], dsn, tmp_path)
    assert res.returncode == 0, res.stderr
    assert count(dsn, "SELECT count(*) FROM cadastral.parcels") == 30


def test_vn2000_lands_at_the_right_wgs84_place(dsn, parcels, tmp_path):
    path = _write(parcels, tmp_path / "p.gpkg")
    ingest(dsn, "cadastral", path, tmp_path)
    # the platform's own VN-2000 -> WGS 84 (official 7-parameter Helmert), applied to the source
    expected = gcrs.make_transformer("EPSG:9210").transform_geoms(np.asarray(parcels.geometry.values))
    stored = dict(((s, p), (x, y)) for s, p, x, y in rows(
        dsn, "SELECT sheet_no, parcel_no, ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom)) "
             "FROM cadastral.parcels"))
    assert len(stored) == 30
    for i, r in parcels.iterrows():
        c = shapely.centroid(expected[i])
        x, y = stored[(r["SoHieuToBanDo"], r["SoThuTuThua"])]
        assert abs(x - c.x) < 1e-9 and abs(y - c.y) < 1e-9  # 0.1 mm
    # and that place is Thủ Thiêm (Phường An Khánh), lon 106.71-106.73, lat 10.77-10.79
    lon, lat = stored[(1, 1)]
    assert 106.71 < lon < 106.73 and 10.77 < lat < 10.79


@pytest.mark.parametrize(("case", "fragment"), [
    ("utm_as_4326", "look like metres"),
    ("latlon_swapped", "axis order looks swapped"),
    ("hanoi", "near Hanoi"),
    ("degrees_as_9210", "look like longitude/latitude degrees"),
    ("northing_first", "axis order looks swapped"),
])
def test_wrong_crs_is_refused(dsn, parcels, tmp_path, case, fragment):
    wgs = parcels.to_crs(4326)
    if case == "utm_as_4326":  # UTM 48N metres labelled as EPSG:4326
        gdf = parcels.to_crs(32648).set_crs(4326, allow_override=True)
    elif case == "latlon_swapped":
        gdf = wgs.copy()
        gdf["geometry"] = shapely.transform(wgs.geometry.values, lambda c: c[:, ::-1])
    elif case == "hanoi":  # well-formed lon/lat, but in Hanoi
        gdf = wgs.copy()
        gdf["geometry"] = wgs.geometry.translate(105.85 - 106.72, 21.03 - 10.78)
    elif case == "degrees_as_9210":
        gdf = wgs.set_crs(9210, allow_override=True)
    else:  # VN-2000 with northing and easting swapped
        gdf = parcels.copy()
        gdf["geometry"] = shapely.transform(parcels.geometry.values, lambda c: c[:, ::-1])
    path = _write(gdf, tmp_path / f"{case}.gpkg")
    res = cli(["ingest", "cadastral", str(path)], dsn, tmp_path) if case == "hanoi" else None
    if res is not None:
        assert_clean_error(res, fragment, "not in Ho Chi Minh City")
    else:
        with pytest.raises(CRSError, match=fragment):
            ingest(dsn, "cadastral", path, tmp_path)
    assert_nothing_written(dsn)


def test_crs_option_overrides_a_wrong_prj(dsn, parcels, tmp_path):
    utm = gcrs.make_transformer("EPSG:9210", "EPSG:32648").transform_geoms(np.asarray(parcels.geometry.values))
    gdf = gpd.GeoDataFrame(parcels.drop(columns="geometry"), geometry=list(utm), crs="EPSG:4326")
    path = _write(gdf, tmp_path / "utm.gpkg")
    result = ingest(dsn, "cadastral", path, tmp_path, crs="EPSG:32648")
    assert result.inserted == 30
    # the same place as the VN-2000 original (UTM 48N on WGS 84 -> lon/lat is a pure projection)
    ref = gcrs.make_transformer("EPSG:9210").transform_geoms(np.asarray(parcels.geometry.values))
    got = dict(((s, p), shapely.from_wkb(bytes(g))) for s, p, g in rows(
        dsn, "SELECT sheet_no, parcel_no, ST_AsBinary(geom) FROM cadastral.parcels"))
    for i, r in parcels.iterrows():
        d = shapely.hausdorff_distance(got[(r["SoHieuToBanDo"], r["SoThuTuThua"])], ref[i])
        assert d < 1e-9  # degrees: 0.1 mm


def test_unknown_crs_option(dsn, parcels, tmp_path):
    path = _write(parcels, tmp_path / "p.gpkg")
    res = cli(["ingest", "cadastral", str(path), "--crs", "EPSG:999999"], dsn, tmp_path)
    assert_clean_error(res, "Unknown CRS", "EPSG:9210")
    assert_nothing_written(dsn)
