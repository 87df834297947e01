"""gis.raster without the database: times, nodata, the statistics kernel, synthetic scenes,
chunked indices and change detection (real files, no mocks)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin

from gis.errors import InputError
from gis.raster.source import nodata_fits, parse_datetime
from gis.raster.zonal import compute_zonal, weighted_stats

from raster_helpers import exactextract_ops


def test_parse_datetime_forms():
    y = parse_datetime("2020")
    assert y.datetime is None and y.start.isoformat() == "2020-01-01T00:00:00+00:00"
    assert y.end.year == 2020 and y.end.month == 12 and y.end.day == 31
    assert parse_datetime("2024-01-15").datetime.isoformat() == "2024-01-15T00:00:00+00:00"
    assert parse_datetime("2024-01-15T03:20:00Z").datetime.hour == 3
    iv = parse_datetime("2000/2020")
    assert iv.start.year == 2000 and iv.end.year == 2020
    with pytest.raises(InputError, match="not a time"):
        parse_datetime("last tuesday")
    with pytest.raises(InputError, match="ends"):
        parse_datetime("2020/2000")


def test_nodata_fits():
    assert nodata_fits(0, "uint16") and nodata_fits(65535, "uint16")
    assert not nodata_fits(-9999, "uint16") and not nodata_fits(70000, "uint16")
    assert not nodata_fits(0.5, "int16") and not nodata_fits(float("nan"), "uint8")
    assert nodata_fits(float("nan"), "float32") and nodata_fits(-99999, "float32")
    assert not nodata_fits(1e-50, "float32")


@pytest.fixture(scope="module")
def random_raster(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("r") / "rand.tif"
    rng = np.random.default_rng(4)
    a = (rng.random((300, 400)) * 100).astype("float32")
    a[:20, :50] = -1  # nodata block
    with rasterio.open(
        p,
        "w",
        driver="GTiff",
        width=400,
        height=300,
        count=1,
        dtype="float32",
        crs="EPSG:32648",
        transform=from_origin(680000, 1195000, 10, 10),
        nodata=-1,
        tiled=True,
        blockxsize=128,
        blockysize=128,
    ) as d:
        d.write(a, 1)
    return p


def _zones(n_small=300, seed=1):
    rng = np.random.default_rng(seed)
    geoms = []
    # small zones: random quadrilaterals of a few cells (parcels)
    for _ in range(n_small):
        x, y = 680000 + rng.random() * 3900, 1192000 + rng.random() * 2900
        w, h = 5 + rng.random() * 40, 5 + rng.random() * 40
        geoms.append(
            shapely.Polygon([(x, y), (x + w, y + 3), (x + w - 2, y + h), (x + 1, y + h - 4)])
        )
    # large zones: many-vertex polygons crossing the nodata block and the raster edge
    geoms.append(shapely.Point(681000, 1194000).buffer(700, quad_segs=64))
    geoms.append(shapely.Point(683900, 1193500).buffer(400, quad_segs=32))  # half outside
    geoms.append(shapely.box(680100, 1192100, 683000, 1194900))
    return gpd.GeoDataFrame({"id": range(len(geoms))}, geometry=geoms, crs="EPSG:32648")


def test_zonal_equals_exactextract(random_raster):
    """Our engine (small-zone pairs + exactextract coverage + one kernel) equals exactextract's own
    operations, percentiles included, on small and large zones."""
    from exactextract import exact_extract

    zones = _zones()
    mine = compute_zonal(random_raster, zones, percentiles=(10, 50, 90), workers=1)
    ops, pairs = exactextract_ops((10, 50, 90))
    ee = exact_extract(str(random_raster), zones[["geometry"]], ops, output="pandas")
    for a, b in pairs:
        np.testing.assert_allclose(
            mine[a].to_numpy(), ee[b].to_numpy(), rtol=1e-6, atol=1e-6, equal_nan=True, err_msg=a
        )
    # frac: the zone half outside the raster is about half covered; a zone fully inside is 1
    circle = zones.geometry.iloc[-2]
    inside = circle.intersection(shapely.box(680000, 1192000, 684000, 1195000)).area / circle.area
    assert mine["frac"].iloc[-2] == pytest.approx(inside, rel=1e-6)
    assert mine["frac"].iloc[-1] < 1.0  # the box covers the nodata block


def test_zonal_workers_agree(random_raster):
    zones = _zones(n_small=2000, seed=3)
    # 7 jobs in one window; 40 jobs in several windows (lanes of 2 and 3 workers, with stealing)
    ones = {b: compute_zonal(random_raster, zones, workers=1, batch_size=b) for b in (300, 50)}
    for workers, batch_size in ((2, 300), (2, 50), (3, 50)):
        one = ones[batch_size]
        many = compute_zonal(random_raster, zones, workers=workers, batch_size=batch_size)
        assert many["zone"].tolist() == one["zone"].tolist()
        np.testing.assert_allclose(one["sum"], many["sum"], rtol=1e-12)
        np.testing.assert_allclose(one["p50"], many["p50"], rtol=1e-12, equal_nan=True)


def test_weighted_stats_big_group_path_equals_sort_path():
    rng = np.random.default_rng(9)
    n = 60_000
    v = rng.normal(size=n)
    w = np.where(rng.random(n) < 0.1, rng.random(n), 1.0)
    z = np.zeros(n, dtype=int)
    from gis.raster import zonal

    big = weighted_stats(z, v, w, 1, percentiles=(1, 10, 50, 90, 99))
    old = zonal.BIG_GROUP
    zonal.BIG_GROUP = 10**9
    try:
        ref = weighted_stats(z, v, w, 1, percentiles=(1, 10, 50, 90, 99))
    finally:
        zonal.BIG_GROUP = old
    for k in ref:
        np.testing.assert_allclose(big[k], ref[k], rtol=1e-9, err_msg=k)


def test_synthetic_pair_is_deterministic_and_grows(tmp_path):
    from gis.raster.synthetic import BANDS, generate_pair

    a = generate_pair(tmp_path / "a", seed=11, resolution=40.0, size_m=8000.0, growth_patches=8)
    b = generate_pair(tmp_path / "b", seed=11, resolution=40.0, size_m=8000.0, growth_patches=8)
    for pa, pb in ((a.before, b.before), (a.after, b.after)):
        assert hashlib.sha256(pa.read_bytes()).digest() == hashlib.sha256(pb.read_bytes()).digest()
    with rasterio.open(a.before) as d:
        assert d.count == 5 and d.dtypes[0] == "uint16" and d.nodata == 0
        assert d.descriptions == BANDS and d.crs.to_epsg() == 32648
        assert d.tags()["DATETIME"].startswith("2019")
        assert not d.profile.get("tiled")
    with rasterio.open(a.after) as d:
        assert d.profile.get("tiled")
    assert a.new_built_up_m2 > 0


def test_indices_run_chunked_and_match_numpy(tmp_path):
    import dask.array

    from gis.raster.indices import open_raster, spectral_indices, write_dataset
    from gis.raster.synthetic import generate_pair

    pair = generate_pair(tmp_path, seed=5, resolution=20.0, size_m=6000.0, growth_patches=5)
    da = open_raster(pair.after, chunks=64)
    ds = spectral_indices(da)
    assert isinstance(ds.ndvi.data, dask.array.Array)
    assert ds.ndvi.data.numblocks == (5, 5)  # 300 x 300 pixels in 64-pixel chunks
    out = write_dataset(ds, tmp_path / "idx.tif")
    with rasterio.open(pair.after) as src:
        raw = src.read().astype("float64")
        nod = (raw == 0).any(axis=0)
    red, nir, swir = raw[2], raw[3], raw[4]
    with np.errstate(invalid="ignore", divide="ignore"):
        ndvi = np.where(nod, np.nan, (nir - red) / (nir + red))
        ndbi = np.where(nod, np.nan, (swir - nir) / (swir + nir))
    with rasterio.open(out) as r:
        assert r.descriptions == ("ndvi", "ndbi", "ndwi", "built_up")
        np.testing.assert_allclose(r.read(1), ndvi, rtol=1e-5, atol=1e-6, equal_nan=True)
        np.testing.assert_allclose(r.read(2), ndbi, rtol=1e-5, atol=1e-6, equal_nan=True)
        bu = r.read(4)
        assert set(np.unique(bu[~np.isnan(bu)])) <= {0.0, 1.0}
    from rio_cogeo.cogeo import cog_validate

    assert cog_validate(str(out), quiet=True)[0]


def test_indices_name_missing_bands(tmp_path):
    from gis.raster.indices import open_raster, spectral_indices

    p = tmp_path / "one.tif"
    with rasterio.open(
        p,
        "w",
        driver="GTiff",
        width=8,
        height=8,
        count=1,
        dtype="uint16",
        crs="EPSG:32648",
        transform=from_origin(680000, 1195000, 10, 10),
    ) as d:
        d.write(np.ones((1, 8, 8), dtype="uint16"))
    with pytest.raises(InputError, match="no nir, red band"):
        spectral_indices(open_raster(p), indices=("ndvi",))


def test_built_up_change_finds_the_new_districts(tmp_path):
    from gis.raster.change import built_up_change, change_polygons, write_change
    from gis.raster.synthetic import generate_pair

    pair = generate_pair(tmp_path, seed=2025, resolution=20.0, size_m=12000.0, growth_patches=15)
    code = built_up_change(pair.before, pair.after, chunks=128)
    out = write_change(code, tmp_path / "change.tif")
    with rasterio.open(out) as r:
        c = r.read(1)
        assert r.read(2).max() <= 1 or r.nodata == 255
    with rasterio.open(pair.truth) as t:
        truth = t.read(1) == 1
    new = c == 1
    tp = (new & truth).sum()
    assert tp / truth.sum() > 0.95  # recall
    assert tp / new.sum() > 0.9  # precision
    polys = change_polygons(out, value=1)
    assert polys.crs.to_epsg() == 4326
    assert polys["area_m2"].sum() == pytest.approx(new.sum() * 400.0, rel=1e-6)
