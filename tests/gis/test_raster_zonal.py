"""Zonal statistics from PostGIS zones (the real 2025 wards) to stats.* tables, on real rasters."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import psycopg
import pytest
import rasterio
import shapely
from rasterio import features
from rasterio.windows import from_bounds

from gis import crs as gcrs
from gis.errors import CRSError
from gis.raster.zonal import cell_coverage, compute_zonal, polygon_coverage, zonal_to_postgis

from raster_helpers import WARDS, exactextract_ops, load_wards

POP = "geoglue-kraemer/worldpop/vnm_ppp_{}_1km_Aggregated_UNadj.tif"


def _raster_total_over(path, union) -> float:
    """Independent check: population over a polygon by 10 x 10 supersampled rasterisation."""
    with rasterio.open(path) as ds:
        win = from_bounds(*union.bounds, transform=ds.transform)
        win = win.round_offsets(op="floor").round_lengths(op="ceil")
        win = win.intersection(rasterio.windows.Window(0, 0, ds.width, ds.height))
        arr = ds.read(1, window=win, masked=True).filled(0).astype("float64")
        t = ds.window_transform(win)
    k = 10
    fine = features.rasterize(
        [union],
        out_shape=(arr.shape[0] * k, arr.shape[1] * k),
        transform=t * t.scale(1 / k),
        dtype="uint8",
    )
    frac = fine.reshape(arr.shape[0], k, arr.shape[1], k).mean(axis=(1, 3))
    return float((arr * frac).sum())


def test_worldpop_over_wards_matches_raster_total_and_rasterstats(dsn, shared_data, tmp_path):
    wards = load_wards(dsn, shared_data)
    raster = shared_data / POP.format(2020)
    res = zonal_to_postgis(dsn, raster, "wards-2025", "pop2020_wards", workers=1)
    assert res.n_zones == 168 and res.table == "stats.zonal_pop2020_wards"
    with psycopg.connect(dsn) as conn:
        total, n, nfrac, has_geom = conn.execute(
            "SELECT sum(sum), count(*), count(*) FILTER (WHERE frac > 0.99), count(geom) "
            "FROM stats.zonal_pop2020_wards"
        ).fetchone()
        reg = conn.execute(
            "SELECT kind, zones, n_rows FROM stats.tables WHERE table_name = 'zonal_pop2020_wards'"
        ).fetchone()
    assert n == 168 and has_geom == 168 and reg == ("zonal", "wards-2025", 168)
    assert nfrac >= 160  # nearly every ward lies on valid WorldPop cells
    union = shapely.union_all(wards.geometry.values)
    expected = _raster_total_over(raster, union)
    assert total == pytest.approx(expected, rel=0.01)
    assert 8e6 < total < 1.6e7  # HCMC (with former Binh Duong, Ba Ria-Vung Tau): ~14 million

    from rasterstats import zonal_stats

    rs = zonal_stats(list(wards.geometry), str(raster), stats=["sum"])
    rs_total = sum(r["sum"] or 0 for r in rs)
    assert rs_total == pytest.approx(total, rel=0.05)  # centre-of-cell vs exact weighting


def test_zonal_replace_and_population_change(dsn, shared_data, tmp_path):
    load_wards(dsn, shared_data)
    from gis.raster.change import difference, write_change

    a, b = shared_data / POP.format(2000), shared_data / POP.format(2020)
    d = write_change(difference(a, b, chunks=512), tmp_path / "popchange.tif")
    zonal_to_postgis(dsn, d, "wards-2025", "popchange", percentiles=(), workers=1)
    zonal_to_postgis(dsn, b, "wards-2025", "p20", percentiles=(50,), workers=1)
    zonal_to_postgis(dsn, a, "wards-2025", "p00", percentiles=(50,), workers=1)
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT c.unit_id, c.sum, n.sum - o.sum FROM stats.zonal_popchange c "
            "JOIN stats.zonal_p20 n USING (unit_id) JOIN stats.zonal_p00 o USING (unit_id)"
        ).fetchall()
        assert len(rows) == 168
        got = np.array([r[1] for r in rows])
        ref = np.array([r[2] for r in rows])
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-2)
        assert got.sum() > 0  # the city grew
        conn.commit()  # a reader's open transaction would (rightly) block the replacement
        # replaced in place: same name, new content, no staging table left behind
        zonal_to_postgis(dsn, b, "wards-2025", "popchange", percentiles=(), workers=1)
        assert (
            conn.execute(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'stats' "
                "AND tablename LIKE '%%__new'"
            ).fetchone()[0]
            == 0
        )
        s = conn.execute("SELECT sum(sum) FROM stats.zonal_popchange").fetchone()[0]
        assert s == pytest.approx(
            conn.execute("SELECT sum(sum) FROM stats.zonal_p20").fetchone()[0]
        )


def test_zones_in_another_crs(dsn, shared_data):
    """A zone layer in VN-2000 / TM-3 is reprojected with the official shift; a mislabelled or
    CRS-less layer is refused with nothing written."""
    wards = load_wards(dsn, shared_data).iloc[:20]
    raster = shared_data / POP.format(2020)
    tr = gcrs.make_transformer("EPSG:4326", "EPSG:9210")
    g9210 = tr.transform_geoms(wards.geometry.values)
    with psycopg.connect(dsn) as conn:
        for name, srid, geoms in (
            ("z9210", 9210, g9210),
            ("zbad", 4326, g9210),
            ("zzero", 0, g9210),
        ):
            conn.execute(f"CREATE TABLE public.{name} (id integer PRIMARY KEY, geom geometry)")
            for i, g in enumerate(geoms):
                conn.execute(
                    f"INSERT INTO public.{name} VALUES (%s, ST_GeomFromWKB(%s, %s))",
                    (i, g.wkb, srid),
                )
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT unit_id FROM admin.wards_2025 ORDER BY unit_id LIMIT 20"
            ).fetchall()
        ]
        conn.execute(
            "CREATE TABLE public.z4326 AS SELECT row_number() OVER (ORDER BY unit_id) - 1 "
            "AS id, geom FROM admin.wards_2025 WHERE unit_id = ANY(%s)",
            (ids,),
        )
    zonal_to_postgis(dsn, raster, "public.z9210:id", "v9210", percentiles=(), workers=1)
    zonal_to_postgis(dsn, raster, "public.z4326:id", "v4326", percentiles=(), workers=1)
    with psycopg.connect(dsn) as conn:
        a = dict(conn.execute("SELECT id, sum FROM stats.zonal_v9210").fetchall())
        b = dict(conn.execute("SELECT id, sum FROM stats.zonal_v4326").fetchall())
    assert set(a) == set(b)
    for k in a:
        assert a[k] == pytest.approx(b[k], rel=1e-3, abs=1.0)
    with pytest.raises(CRSError, match="look like metres|metres of a projected CRS"):
        zonal_to_postgis(dsn, raster, "public.zbad:id", "bad", workers=1)
    with pytest.raises(CRSError, match="SRID 0"):
        zonal_to_postgis(dsn, raster, "public.zzero:id", "zero", workers=1)
    with psycopg.connect(dsn) as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'stats' AND "
            "tablename IN ('zonal_bad', 'zonal_zero', 'zonal_bad__new', "
            "'zonal_zero__new')"
        ).fetchone()[0]
    assert left == 0


def test_zonal_parcels_and_lots_presets_exist(dsn, shared_data, tmp_path):
    """The parcels and planning-lots presets point at real relations (empty here: a clear error)."""
    from gis.errors import InputError

    raster = shared_data / POP.format(2020)
    for preset in ("parcels", "planning-lots"):
        with pytest.raises(InputError, match="is empty"):
            zonal_to_postgis(dsn, raster, preset, "x", workers=1)


# ---------------------------------------------------------------------------------------------
# The coverage engine against independent computations (no database)
# ---------------------------------------------------------------------------------------------


def _exact_cover_by_overlay(geom, a, e, x0, y0, nrows, ncols) -> np.ndarray:
    """Reference: the area of GEOS's intersection of the polygon with every cell's box."""
    cols, rows = np.meshgrid(np.arange(ncols), np.arange(nrows))
    xa = x0 + cols.ravel() * a
    ya = y0 + rows.ravel() * e
    boxes = shapely.box(
        np.minimum(xa, xa + a),
        np.minimum(ya, ya + e),
        np.maximum(xa, xa + a),
        np.maximum(ya, ya + e),
    )
    area = shapely.area(shapely.intersection(shapely.make_valid(geom), boxes))
    return (area / abs(a * e)).reshape(nrows, ncols)


def _dense(geom, a, e, x0, y0, nrows, ncols) -> np.ndarray:
    cells, frac = cell_coverage(geom, a, e, x0, y0, nrows, ncols)
    out = np.zeros(nrows * ncols)
    out[cells] = frac
    return out.reshape(nrows, ncols)


def _test_polygons() -> list:
    rng = np.random.default_rng(21)
    star = shapely.Polygon(
        [
            (20 + r * np.cos(t), -18 + r * np.sin(t))
            for t, r in zip(np.linspace(0, 2 * np.pi, 41)[:-1], rng.uniform(4, 15, 40))
        ]
    )
    donut = (
        shapely.Point(12.3, -11.7)
        .buffer(9.1, quad_segs=12)
        .difference(shapely.Point(13.1, -10.2).buffer(4.4, quad_segs=7))
    )
    return [
        star,
        donut,
        shapely.MultiPolygon(
            [shapely.box(1, -6, 6, -1), shapely.box(6, -6, 9.5, -2.25)]
        ),  # on the grid
        shapely.Polygon([(3.2, -3.3), (3.8, -3.4), (3.5, -3.9)]),  # inside one cell
        shapely.Polygon([(0, 0), (10, -10), (0, -10)]),  # diagonal through the corners
        shapely.box(-5.5, -30.2, 7.25, 4.5),  # over the window's edges
        shapely.Polygon(star.exterior.coords[::-1]),  # clockwise exterior
    ]


@pytest.mark.parametrize("cell", [(1.0, -1.0, 0.0, 0.0), (0.7, -0.45, 0.13, 0.31)])
def test_polygon_coverage_equals_overlay_per_cell(cell):
    """Boundary cells and interior runs equal the exact GEOS intersection area of every cell,
    for stars, holes, multipolygons, edges along grid lines, a zone inside one cell, a
    clockwise ring and a zone crossing the window's edges."""
    a, e, x0, y0 = cell
    nrows, ncols = int(35 / abs(e)), int(35 / a)
    for g in _test_polygons():
        got = _dense(g, a, e, x0, y0, nrows, ncols)
        ref = _exact_cover_by_overlay(g, a, e, x0, y0, nrows, ncols)
        ref[ref < 1e-9] = 0
        np.testing.assert_allclose(got, ref, atol=1e-9, err_msg=g.wkt[:60])
        # the runs hold wholly covered cells only, and every cell is a run or boundary cell
        (r, c, f), (rr, c0, c1) = polygon_coverage(g, a, e, x0, y0)
        assert ((f >= 0) & (f <= 1)).all()
        kind = np.zeros((nrows + 100, ncols + 100), dtype=int)  # offset 50: cells outside too
        kind[r + 50, c + 50] = 1
        for row, lo, hi in zip(rr, c0, c1):
            assert (kind[row + 50, lo + 50 : hi + 50] == 0).all()  # disjoint from the boundary
            kind[row + 50, lo + 50 : hi + 50] = 2
        win = kind[50 : 50 + nrows, 50 : 50 + ncols]
        assert (ref[win == 2] > 1 - 1e-9).all() and (ref[win == 0] == 0).all()
        inside = shapely.area(g.intersection(shapely.box(x0, y0 + nrows * e, x0 + ncols * a, y0)))
        assert got.sum() * abs(a * e) == pytest.approx(inside, rel=1e-12)


def test_polygon_coverage_matches_supersampled_rasterisation(shared_data):
    """A second independent reference: 20 x 20 centre-rule supersampling (error ~1/20 per
    boundary cell) of a real ward with thousands of vertices."""
    from affine import Affine

    w = gpd.read_file(shared_data / WARDS).geometry.values
    g = max(w, key=lambda p: shapely.get_num_coordinates(p) if p.area < 0.004 else 0)
    minx, miny, maxx, maxy = g.bounds
    a = (maxx - minx) / 60
    x0, y0 = minx - a, maxy + a
    nrows, ncols = int((maxy - miny) / a) + 3, 62
    got = _dense(g, a, -a, x0, y0, nrows, ncols)
    k = 20
    fine = features.rasterize(
        [g], out_shape=(nrows * k, ncols * k), transform=Affine(a / k, 0, x0, 0, -a / k, y0)
    )
    ref = fine.reshape(nrows, k, ncols, k).mean(axis=(1, 3))
    assert np.abs(got - ref).max() < 0.1
    assert got.sum() == pytest.approx(ref.sum(), rel=2e-3)
    assert got.sum() * a * a == pytest.approx(g.area, rel=1e-9)


@pytest.fixture(scope="module")
def two_band_raster(tmp_path_factory):
    """A 2-band float32 raster with nodata, large enough for the large-zone path (strips,
    several blocks)."""
    p = tmp_path_factory.mktemp("zr") / "two.tif"
    rng = np.random.default_rng(5)
    arr = rng.lognormal(1.0, 0.6, (2, 700, 900)).astype("float32")
    arr[:, 100:180, 200:330] = -9999  # nodata block inside the big zones
    arr[1, 400:420, :] = -9999  # nodata only in band 2: the cell is invalid for both
    with rasterio.open(
        p,
        "w",
        driver="GTiff",
        width=900,
        height=700,
        count=2,
        dtype="float32",
        crs="EPSG:32648",
        transform=rasterio.transform.from_origin(680000, 1200000, 10, 10),
        nodata=-9999,
        tiled=True,
        blockxsize=128,
        blockysize=128,
    ) as d:
        d.write(arr)
    return p


def test_large_zones_equal_exactextract_every_band(two_band_raster, monkeypatch):
    """Large zones (strips, runs, boundary cells, nodata, a zone half outside the raster) give
    exactextract's own statistics and quantiles, band by band; the strip size does not change
    the result."""
    from exactextract import exact_extract
    from exactextract.raster import RasterioRasterSource

    from gis.raster import zonal

    zones = gpd.GeoDataFrame(
        geometry=[
            shapely.Point(682500, 1197000)
            .buffer(1800, quad_segs=40)
            .difference(shapely.Point(683000, 1196500).buffer(500)),
            shapely.Polygon([(680050, 1199950), (688900, 1196000), (681000, 1193100)]),
            shapely.Point(688800, 1194000).buffer(900),  # crosses the raster's east edge
            shapely.box(690000, 1190000, 691000, 1191000),  # outside the raster
        ],
        crs="EPSG:32648",
    )
    pct = (5, 50, 95)
    one = compute_zonal(two_band_raster, zones, bands=[1], percentiles=pct, workers=1)
    both = compute_zonal(two_band_raster, zones, bands=[1, 2], percentiles=pct, workers=1)
    monkeypatch.setattr(zonal, "STRIP_CELLS", 40_000)  # many strips per zone
    strips = compute_zonal(two_band_raster, zones, bands=[1, 2], percentiles=pct, workers=1)
    ops, pairs = exactextract_ops(pct)
    with rasterio.open(two_band_raster) as ds:
        ee1 = exact_extract(RasterioRasterSource(ds, 1), zones[["geometry"]], ops, output="pandas")
        ee2 = exact_extract(RasterioRasterSource(ds, 2), zones[["geometry"]], ops, output="pandas")
    b2 = both[both.band == 2].reset_index(drop=True)  # band 2's nodata holds band 1's
    for mine, ee in ((one, ee1), (b2, ee2)):
        assert mine["count"].iloc[0] > zonal.BIG_GROUP  # the one-pass path was taken
        for a, b in pairs:
            np.testing.assert_allclose(
                mine[a], ee[b], rtol=1e-6, atol=1e-6, equal_nan=True, err_msg=a
            )
    for a, _ in pairs:
        np.testing.assert_allclose(both[a], strips[a], rtol=1e-12, equal_nan=True, err_msg=a)
    # a cell invalid in one band is left out of every band
    b1 = both[both.band == 1].reset_index(drop=True)
    assert (b1["count"] <= one["count"] + 1e-9).all() and b1["count"].iloc[1] < one["count"].iloc[1]
    assert one["count"].iloc[3] == 0 and np.isnan(one["mean"].iloc[3]) and one["frac"].iloc[3] == 0
    east = zones.geometry.iloc[2]
    inside = east.intersection(shapely.box(680000, 1193000, 689000, 1200000)).area / east.area
    assert one["frac"].iloc[2] == pytest.approx(inside, rel=1e-9)


def test_real_wards_equal_exactextract(shared_data):
    """The 168 real 2025 wards (multipolygons, 217,000 vertices) on WorldPop 2020: every
    statistic of every ward equals exactextract's, quantiles included."""
    from exactextract import exact_extract

    wards = gpd.read_file(shared_data / WARDS)
    raster = shared_data / POP.format(2020)
    mine = compute_zonal(raster, wards, percentiles=(25, 50, 90), workers=2, batch_size=40)
    ops, pairs = exactextract_ops((25, 50, 90))
    ee = exact_extract(str(raster), wards[["geometry"]], ops, output="pandas")
    for a, b in pairs:
        np.testing.assert_allclose(mine[a], ee[b], rtol=1e-6, atol=1e-6, equal_nan=True, err_msg=a)
