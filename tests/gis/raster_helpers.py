"""Helpers of the raster tests: our zonal statistics against exactextract's operations, and the real
2025 wards as zones. Loaded by path from tests/ingest too, so it imports nothing of the tests."""

from __future__ import annotations

import geopandas as gpd
import psycopg
import shapely

WARDS = "vn-provinces-db-2025/hcmc_wards_2025.geojson"

#: our statistic, exactextract's column, for the moments
MOMENTS = (("count", "count"), ("sum", "sum"), ("mean", "mean"), ("min", "min"), ("max", "max"),
           ("std", "stdev"))


def exactextract_ops(percentiles: tuple[int, ...] = ()) -> tuple[list[str], list[tuple[str, str]]]:
    """exactextract's operations for our statistics and percentiles, and the pairs (our column,
    its column) to compare."""
    ops = [b for _, b in MOMENTS] + [f"quantile(q={p / 100})" for p in percentiles]
    pairs = list(MOMENTS) + [(f"p{p}", f"quantile_{p}") for p in percentiles]
    return ops, pairs


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
