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
from gis.raster.zonal import zonal_to_postgis

WARDS = "vn-provinces-db-2025/hcmc_wards_2025.geojson"
POP = "geoglue-kraemer/worldpop/vnm_ppp_{}_1km_Aggregated_UNadj.tif"


def load_wards(dsn: str, shared_data) -> gpd.GeoDataFrame:
    """The 168 real 2025 wards into admin.units (as the admin ingest would)."""
    w = gpd.read_file(shared_data / WARDS)
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        for r in w.itertuples():
            geom = (
                r.geometry
                if r.geometry.geom_type == "MultiPolygon"
                else shapely.MultiPolygon([r.geometry])
            )
            cur.execute(
                "INSERT INTO admin.units (level, code, name, name_en, unit_type, valid_from, source, "
                "row_hash, area_km2, geom) VALUES ('ward', %s, %s, %s, %s, '2025-07-01', 'test', 'x', %s, "
                "ST_GeomFromWKB(%s, 4326))",
                (r.code, r.fullName, r.fullNameEn, r.fullName.split(" ")[0], r.areaKm2, geom.wkb),
            )
    return w


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
