"""Change between two dates: new built-up area, and differences (population change).

Both rasters must share a grid (same CRS, transform and shape), as two scenes of one tile or
two editions of one product do; otherwise the error says so (warp one onto the other first).

* :func:`built_up_change`: codes 0 not built-up at either date, 1 **new** built-up, 2 built-up
  lost, 3 built-up at both, 255 nodata (either date), from the built-up masks of
  :mod:`gis.raster.indices`;
* :func:`difference`: ``b - a`` of one band (e.g. WorldPop 2020 - 2000), NaN where either is
  nodata;
* :func:`change_polygons`: the patches of one code (new built-up) as polygons with their area,
  vectorised window by window (memory bounded) and merged across window edges;
* areas per zone: :func:`gis.raster.zonal.zonal_to_postgis` on the change raster (a
  ``difference`` gives the per-ward population change as ``sum``; the ``new_built_up`` band of
  :func:`write_change` gives the new built-up area as ``sum`` x cell area, see
  :func:`built_up_area_band`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import shapely

from gis import crs as gcrs
from gis.errors import InputError
from gis.raster.indices import BuiltUpRule, open_raster, spectral_indices

__all__ = [
    "CHANGE_CODES",
    "built_up_change",
    "change_polygons",
    "difference",
    "same_grid",
    "write_change",
]

CHANGE_CODES = {
    0: "not built-up",
    1: "new built-up",
    2: "built-up lost",
    3: "built-up at both dates",
    255: "nodata",
}


def same_grid(a, b, label_a: str = "A", label_b: str = "B") -> None:
    """Raise :class:`InputError` unless two DataArrays share CRS, transform and shape."""
    ta, tb = a.rio.transform(), b.rio.transform()
    if (
        a.rio.crs != b.rio.crs
        or a.sizes["x"] != b.sizes["x"]
        or a.sizes["y"] != b.sizes["y"]
        or not np.allclose(tuple(ta)[:6], tuple(tb)[:6], rtol=0, atol=1e-9 * max(abs(ta.a), 1))
    ):
        raise InputError(
            f"{label_a} and {label_b} are not on the same grid ({a.rio.crs} {a.sizes['x']}x"
            f"{a.sizes['y']} vs {b.rio.crs} {b.sizes['x']}x{b.sizes['y']}): warp one onto the "
            "other first (gdalwarp -tap with the other's resolution and extent)."
        )


def built_up_change(
    path_a: str | Path,
    path_b: str | Path,
    *,
    chunks: int = 1024,
    bands_meta_a: Any = None,
    bands_meta_b: Any = None,
    rule: BuiltUpRule = BuiltUpRule(),
):
    """Lazy built-up change codes (uint8, see :data:`CHANGE_CODES`) between two scenes."""
    a = open_raster(path_a, chunks)
    b = open_raster(path_b, chunks)
    same_grid(a, b, Path(path_a).name, Path(path_b).name)
    ma = spectral_indices(a, indices=("built_up",), bands_meta=bands_meta_a, rule=rule).built_up
    mb = spectral_indices(b, indices=("built_up",), bands_meta=bands_meta_b, rule=rule).built_up
    code = mb.fillna(0) * 1 + ma.fillna(0) * 2  # 0 none, 1 new (b only), 2 lost (a only), 3 both
    code = xr_where(ma.isnull() | mb.isnull(), 255, code).astype("uint8")
    code = code.rio.write_crs(a.rio.crs).rio.write_transform(a.rio.transform())
    code.name = "built_up_change"
    return code


def xr_where(cond, x, y):
    import xarray as xr

    return xr.where(cond, x, y, keep_attrs=True)


def difference(path_a: str | Path, path_b: str | Path, *, band: int = 1, chunks: int = 1024):
    """Lazy ``b - a`` of one band (float32, NaN where either is nodata)."""
    a = open_raster(path_a, chunks)
    b = open_raster(path_b, chunks)
    same_grid(a, b, Path(path_a).name, Path(path_b).name)
    for da, p in ((a, path_a), (b, path_b)):
        if not 1 <= band <= da.sizes["band"]:
            raise InputError(f"{Path(p).name} has no band {band} ({da.sizes['band']} band(s)).")
    d = (b.isel(band=band - 1) - a.isel(band=band - 1)).astype("float32")
    d = d.drop_vars("band", errors="ignore")
    d = d.rio.write_crs(a.rio.crs).rio.write_transform(a.rio.transform())
    d.name = "difference"
    return d


def write_change(da, out: str | Path) -> Path:
    """Write a change raster (from :func:`built_up_change` or :func:`difference`) as a COG.

    A built-up change gets a second band ``new_built_up`` (1 new, 0 not, nodata 255) whose zonal
    ``sum`` times the cell area is the new built-up area of a zone.
    """
    import xarray as xr

    from gis.raster.indices import write_dataset

    if da.dtype == np.uint8:
        new = xr_where(da == 255, 255, (da == 1).astype("uint8")).astype("uint8")
        ds = xr.Dataset({"built_up_change": da, "new_built_up": new})
        return write_dataset(ds, out, nodata=255, dtype="uint8")
    return write_dataset(xr.Dataset({da.name or "difference": da}), out)


def built_up_area_band() -> int:
    """Band of :func:`write_change`'s output whose zonal sum counts new built-up cells."""
    return 2


def change_polygons(
    path: str | Path, *, value: int = 1, band: int = 1, window: int = 4096, min_area_m2: float = 0.0
):
    """Polygons of the cells of ``value`` in a change raster, with their area in m².

    Vectorised window by window (memory bounded by ``window``); patches cut by window edges are
    merged. Returns a GeoDataFrame in EPSG:4326 with ``area_m2`` (geodesic for lon/lat rasters,
    planar in the raster's projected CRS otherwise), largest first.
    """
    import geopandas as gpd
    import rasterio
    from rasterio import features
    from rasterio.windows import Window

    polys: list[Any] = []
    edge: list[Any] = []
    with rasterio.open(path) as ds:
        crs = gcrs.parse_crs(ds.crs.to_wkt())
        for r0 in range(0, ds.height, window):
            for c0 in range(0, ds.width, window):
                w = Window(c0, r0, min(window, ds.width - c0), min(window, ds.height - r0))
                arr = ds.read(band, window=w)
                mask = arr == value
                if not mask.any():
                    continue
                tr = ds.window_transform(w)
                inner = shapely.box(*(tr * (0, w.height)), *(tr * (w.width, 0))).buffer(
                    -min(abs(tr.a), abs(tr.e)) / 4
                )
                for geom, _ in features.shapes(mask.astype(np.uint8), mask=mask, transform=tr):
                    g = shapely.geometry.shape(geom)
                    (polys if inner.contains(g) else edge).append(g)
    if edge:
        merged = shapely.unary_union(edge)
        polys.extend(shapely.get_parts(merged))
    gs = gpd.GeoSeries(polys, crs=crs.to_wkt())
    if crs.is_geographic:
        from pyproj import Geod

        geod = Geod(ellps="WGS84")
        area = np.array([abs(geod.geometry_area_perimeter(g)[0]) for g in gs])
        geoms4326 = gcrs.make_transformer(crs).transform_geoms(gs.values)
    else:
        area = shapely.area(gs.values) * _unit_m(crs) ** 2
        geoms4326 = gcrs.make_transformer(crs).transform_geoms(np.asarray(gs.values))
    out = gpd.GeoDataFrame({"area_m2": area}, geometry=list(geoms4326), crs="EPSG:4326")
    out = out[out["area_m2"] >= min_area_m2].sort_values("area_m2", ascending=False)
    return out.reset_index(drop=True)


def _unit_m(crs) -> float:
    try:
        return float(crs.axis_info[0].unit_conversion_factor)
    except Exception:  # pragma: no cover
        return 1.0


def polygons_to_postgis(
    dsn: str, gdf, table: str, *, item_a: Any = None, item_b: Any = None, value: int = 1
) -> str:
    """Write change polygons to ``stats.change_<table>`` (replaced atomically)."""
    import json
    import re

    from psycopg import sql

    from gis.db import connect

    if not re.match(r"^[a-z][a-z0-9_]{0,47}$", table or ""):
        raise InputError(f"--polygons-table {table!r}: use lower-case letters, digits and '_'.")
    target = f"change_{table}"
    staging = f"{target}__new"
    with connect(dsn) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"stats:{target}",))
        conn.execute(sql.SQL("DROP TABLE IF EXISTS stats.{}").format(sql.Identifier(staging)))
        conn.execute(
            sql.SQL(
                "CREATE TABLE stats.{} (patch_id integer PRIMARY KEY, area_m2 double "
                "precision NOT NULL, geom geometry(MultiPolygon, 4326) NOT NULL)"
            ).format(sql.Identifier(staging))
        )
        with conn.cursor().copy(
            sql.SQL("COPY stats.{} (patch_id, area_m2, geom) FROM STDIN").format(
                sql.Identifier(staging)
            )
        ) as cp:
            for i, (a, g) in enumerate(zip(gdf["area_m2"], gdf.geometry)):
                mp = g if g.geom_type == "MultiPolygon" else shapely.MultiPolygon([g])
                cp.write_row((i + 1, float(a), "SRID=4326;" + mp.wkt))
        conn.execute(sql.SQL("DROP TABLE IF EXISTS stats.{}").format(sql.Identifier(target)))
        conn.execute(
            sql.SQL("ALTER TABLE stats.{} RENAME TO {}").format(
                sql.Identifier(staging), sql.Identifier(target)
            )
        )
        conn.execute(
            sql.SQL("CREATE INDEX ON stats.{} USING gist (geom)").format(sql.Identifier(target))
        )
        conn.execute(
            "INSERT INTO stats.tables (table_name, kind, collection, item, item_b, n_rows, options) "
            "VALUES (%s, 'change-polygons', %s, %s, %s, %s, %s) ON CONFLICT (table_name) DO UPDATE SET "
            "collection = EXCLUDED.collection, item = EXCLUDED.item, item_b = EXCLUDED.item_b, "
            "n_rows = EXCLUDED.n_rows, options = EXCLUDED.options, created_at = now()",
            (
                target,
                getattr(item_a, "collection", None),
                getattr(item_a, "id", None),
                getattr(item_b, "id", None),
                len(gdf),
                json.dumps({"value": value}),
            ),
        )
    return f"stats.{target}"


def total_area_m2(gdf) -> float:
    """Sum of ``area_m2`` (0 for none)."""
    return float(gdf["area_m2"].sum()) if len(gdf) else 0.0
