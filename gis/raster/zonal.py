"""Zonal statistics with exact cell-coverage weighting, from PostGIS zones back to PostGIS.

Every raster cell counts in a zone by the fraction of its area the zone covers (a cell half
inside a ward counts half), as exactextract defines it:

* ``count``: sum of the coverage fractions of the valid (non-nodata) cells;
* ``sum``, ``mean``, ``std``: coverage-weighted sum, mean and (population) standard deviation;
* ``min``, ``max``: over the valid cells the zone touches with a coverage > 0;
* ``p<N>``: coverage-weighted percentiles, with exactextract's definition (the weighted
  percentile method: linear interpolation between the sorted values at ranks
  ``s_i = i w_i + (n - 1) sum_{k<i} w_k``), so that they equal ``quantile(q=N/100)`` of
  exactextract;
* ``frac``: the fraction of the zone's area covered by valid cells (``count`` divided by the
  zone's area in cells): 1 for a zone fully on valid data, less where it leaves the raster or
  meets nodata.

Scale and offset of the band are applied (``sum`` of scaled values is ``scale * sum + offset *
count``), so reflectance comes out as reflectance.

How it is computed (see ``bench/README.md`` for the numbers):

* zones come from PostGIS in batches (a server-side cursor, spatially ordered) and are
  reprojected to the raster's CRS with :mod:`gis.crs` (the official VN-2000 shift);
* **small zones** (bounding box of at most :data:`SMALL_ZONE_CELLS` cells and few vertices:
  parcels, lots): the window holding a batch is read once and the coverage of each (zone, cell)
  pair is the area of their intersection, computed vectorised with shapely;
* **large zones** (wards): :func:`polygon_coverage` cuts the zone's rings at every grid line
  and accumulates each piece's signed area in its cell (Green's theorem on the grid, as font
  rasterisers do): the exact fraction of every cell the boundary crosses, and the runs of cells
  wholly inside between them, in vectorised numpy, with a cost that grows with the boundary,
  not the area. The raster is read in row strips aligned to its blocks (bounded size), only
  over the columns the zone uses, and the zone's cells are gathered from it; a zone with many
  cells is reduced at once (:func:`_zone_stats`: its inside cells keep the raster's type and
  weight 1, percentiles by histogram refinement, no sort of all values);
* the other zones give (zone, value, weight) triples reduced by one vectorised kernel
  (:func:`weighted_stats`), with the same definitions as :func:`_zone_stats` (tested equal,
  and equal to exactextract's own statistics and quantiles);
* batches run in worker processes (``workers``), memory bounded by the batch size and the strip
  size, not by the raster or the layer;
* the result is written with ``COPY`` into a new table that replaces ``stats.zonal_<name>`` in
  one transaction (readers see the old table or the new one, never a half-written one).
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import shapely
from pyproj import CRS

from gis import crs as gcrs
from gis.db import connect
from gis.errors import CRSError, GisError, InputError

__all__ = [
    "DEFAULT_PERCENTILES",
    "SMALL_ZONE_CELLS",
    "ZONE_PRESETS",
    "ZonalResult",
    "ZoneLayer",
    "compute_zonal",
    "weighted_stats",
    "zonal_collection_id",
    "zonal_stats",
    "zonal_to_postgis",
    "zone_layer",
]

DEFAULT_PERCENTILES: tuple[float, ...] = (10, 25, 50, 75, 90)
#: Zones whose bounding box spans at most this many cells take the vectorised small-zone path.
SMALL_ZONE_CELLS = 256
#: ... and at most this many cells x vertices (the cost of their pair intersections).
SMALL_ZONE_WORK = 20_000
#: Cells read at once for one large zone (a strip of its window); bounds memory per worker.
STRIP_CELLS = 8 * 1024 * 1024
#: Cells (zone x cell pairs) per small-zone chunk.
PAIR_CELLS = 2 * 1024 * 1024
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# ---------------------------------------------------------------------------------------------
# Zone layers
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ZoneLayer:
    """A polygon layer in PostGIS used as zones.

    Attributes
    ----------
    name : str
        Preset name (``wards-2025``) or the relation itself.
    relation : str
        ``schema.table`` or ``schema.view``.
    key : str
        Column identifying a zone (unique).
    labels : tuple of str
        Columns copied to the result (code, name, ...).
    geom : str
        Geometry column.
    """

    name: str
    relation: str
    key: str
    labels: tuple[str, ...] = ()
    geom: str = "geom"

    @property
    def schema_table(self) -> tuple[str, str]:
        schema, _, table = self.relation.partition(".")
        return schema, table


#: Zone layers known by name (``--zones``).
ZONE_PRESETS: dict[str, ZoneLayer] = {
    "wards-2025": ZoneLayer("wards-2025", "admin.wards_2025", "unit_id", ("code", "name")),
    "parcels": ZoneLayer(
        "parcels",
        "cadastral.parcels_current",
        "parcel_id",
        ("commune_code", "sheet_no", "parcel_no", "land_use"),
    ),
    "planning-lots": ZoneLayer(
        "planning-lots", "planning.lots_published", "lot_id", ("plan_name", "lot_code", "use_class")
    ),
}


def zone_layer(spec: str | ZoneLayer) -> ZoneLayer:
    """A zone layer from a preset name or ``schema.relation[:key]``.

    Examples
    --------
    >>> zone_layer("wards-2025").relation
    'admin.wards_2025'
    >>> zone_layer("public.flood_zones:zone_id").key
    'zone_id'
    """
    if isinstance(spec, ZoneLayer):
        return spec
    s = spec.strip()
    if s in ZONE_PRESETS:
        return ZONE_PRESETS[s]
    rel, _, key = s.partition(":")
    parts = rel.split(".")
    if (
        len(parts) != 2
        or not all(_IDENT_RE.match(p) for p in parts)
        or (key and not _IDENT_RE.match(key))
    ):
        raise InputError(
            f"--zones {spec!r}: use {', '.join(ZONE_PRESETS)} or SCHEMA.TABLE[:KEY_COLUMN]."
        )
    return ZoneLayer(s, rel, key or "id", ())


# ---------------------------------------------------------------------------------------------
# The statistics kernel
# ---------------------------------------------------------------------------------------------


def weighted_stats(
    zone: np.ndarray,
    values: np.ndarray,
    weights: np.ndarray,
    n_zones: int,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
) -> dict[str, np.ndarray]:
    """Coverage-weighted statistics of (zone, value, weight) triples, per zone.

    Parameters
    ----------
    zone : array of int
        Zone index (0 .. n_zones-1) of each triple.
    values : array of float
        Cell value (valid cells only).
    weights : array of float
        Coverage fraction (> 0).
    n_zones : int
    percentiles : sequence of float
        Percentiles (0-100) to compute.

    Returns
    -------
    dict of str to numpy.ndarray
        ``count, sum, mean, min, max, std`` and ``p<N>`` per zone (NaN, and count 0, for a zone
        without valid cells).

    Examples
    --------
    >>> s = weighted_stats(np.array([0, 0, 1]), np.array([1.0, 3.0, 5.0]),
    ...                    np.array([1.0, 0.5, 1.0]), 2, percentiles=(50,))
    >>> s["count"].tolist(), s["sum"].tolist(), s["max"].tolist()
    ([1.5, 1.0], [2.5, 5.0], [3.0, 5.0])
    """
    z = np.asarray(zone, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    out: dict[str, np.ndarray] = {
        k: np.full(n_zones, np.nan) for k in ("sum", "mean", "min", "max", "std")
    }
    out["count"] = np.zeros(n_zones)
    for p in percentiles:
        out[_pname(p)] = np.full(n_zones, np.nan)
    out["sum"][:] = 0.0
    if z.size == 0:
        return out
    # zones with many cells: O(n) path, no global sort
    counts = np.bincount(z, minlength=n_zones)
    big = np.flatnonzero(counts > BIG_GROUP)
    if big.size:
        is_big = np.isin(z, big)
        for b in big:
            m = z == b
            st = _big_group_stats(v[m], w[m], percentiles)
            for key, val in st.items():
                out[key][b] = val
        keep = ~is_big
        z, v, w = z[keep], v[keep], w[keep]
        if z.size == 0:
            return out
    order = np.lexsort((v, z))
    z, v, w = z[order], v[order], w[order]
    starts = np.flatnonzero(np.r_[True, z[1:] != z[:-1]])
    ends = np.r_[starts[1:], z.size]
    zid = z[starts]
    n = (ends - starts).astype(np.float64)
    W = np.add.reduceat(w, starts)
    S = np.add.reduceat(w * v, starts)
    mean = S / W
    dev = v - np.repeat(mean, ends - starts)
    var = np.add.reduceat(w * dev * dev, starts) / W
    out["count"][zid] = W
    out["sum"][zid] = S
    out["mean"][zid] = mean
    out["min"][zid] = v[starts]
    out["max"][zid] = v[ends - 1]
    out["std"][zid] = np.sqrt(np.maximum(var, 0.0))
    if percentiles:
        # exactextract's weighted percentile: s_i = i w_i + (n-1) C_{i-1}, C cumulative weight
        C = np.cumsum(w)
        C_before_group = np.repeat(C[starts] - w[starts], ends - starts)
        C_prev = C - w - C_before_group
        local = np.arange(z.size) - np.repeat(starts, ends - starts)
        n_el = np.repeat(n, ends - starts)
        s = local * w + (n_el - 1.0) * C_prev
        sn = W * (n - 1.0)
        for p in percentiles:
            q = float(p) / 100.0
            target = q * sn
            below = np.add.reduceat(
                (s <= np.repeat(target, ends - starts)).astype(np.int64), starts
            )
            right = starts + below
            res = np.empty(zid.size)
            first = below == 0
            last = right >= ends
            mid = ~(first | last)
            res[first] = v[starts[first]]
            res[last] = v[ends[last] - 1]
            r = right[mid]
            left = r - 1
            ds = s[r] - s[left]
            frac = np.where(ds > 0, (target[mid] - s[left]) / np.where(ds > 0, ds, 1.0), 0.0)
            res[mid] = v[left] + frac * (v[r] - v[left])
            out[_pname(p)][zid] = res
    return out


#: Zones with more valid cells than this get their percentiles by histogram refinement (O(n))
#: instead of a sort.
BIG_GROUP = 5_000


def _big_group_stats(
    v: np.ndarray, w: np.ndarray, percentiles: Sequence[float], bins: int = 4096
) -> dict[str, float]:
    """Statistics of one zone with many cells (see :func:`_zone_stats`)."""
    return _zone_stats(v[:0], v, w, percentiles, bins)


def _zone_stats(
    vu: np.ndarray,
    v: np.ndarray,
    w: np.ndarray,
    percentiles: Sequence[float],
    bins: int = 4096,
) -> dict[str, float]:
    """Statistics of one zone with many cells, percentiles without sorting all values.

    ``vu`` are the values of the cells wholly inside (weight 1: most cells of a large zone,
    kept in the raster's own type, never copied to float64), ``v`` and ``w`` those of the
    partly covered cells and their weights (``v`` of the same type as ``vu``).

    exactextract's percentile of rank ``s_i = i w_i + (n-1) C_{i-1}`` lies between elements
    ``i_a - 1`` and ``i_a + 1`` where ``i_a`` is the first rank whose cumulative weight exceeds
    ``h / (n-1)`` (because ``(n-1) C_{i-1} <= s_i <= (n-1) C_i``). A weighted histogram finds
    the bin of ``i_a``; only the elements of that bin and its non-empty neighbours are sorted.
    """
    nu = vu.size
    n = nu + v.size
    out: dict[str, float] = {"count": 0.0, "sum": 0.0}
    for k in ("mean", "min", "max", "std", *(_pname(p) for p in percentiles)):
        out[k] = math.nan
    if n == 0:
        return out
    W = nu + float(w.sum())
    S = float(np.add.reduce(vu, dtype=np.float64)) + float(np.add.reduce(w * v))
    mean = S / W
    d = np.subtract(vu, mean, dtype=np.float64)
    np.multiply(d, d, out=d)
    ss = float(d.sum())
    del d
    db = np.subtract(v, mean, dtype=np.float64)
    ss += float(np.add.reduce(w * db * db))
    parts = [a for a in (vu, v) if a.size]  # n > 0: at least one (no infinite initial value:
    lo = float(min(a.min() for a in parts))  # an integer raster cannot hold one)
    hi = float(max(a.max() for a in parts))
    out.update(count=W, sum=S, mean=mean, min=lo, max=hi, std=math.sqrt(max(ss / W, 0.0)))
    if not percentiles:
        return out
    if hi <= lo:
        for p in percentiles:
            out[_pname(p)] = lo
        return out
    # bins computed the same way (same dtype) for both sets, so that (bin, value) order is the
    # value order; the largest value falls in the last bin
    scale = (bins - 1) / (hi - lo)
    ku = _bin_index(vu, lo, scale)
    k = _bin_index(v.astype(vu.dtype, copy=False), lo, scale)
    cnt_u = np.bincount(ku, minlength=bins)
    cnt = cnt_u + np.bincount(k, minlength=bins)
    wsum = cnt_u + np.bincount(k, weights=w, minlength=bins)
    cw = np.cumsum(wsum)
    cc = np.cumsum(cnt)
    nonempty = np.flatnonzero(cnt)
    sn = W * (n - 1)
    # the bins around each percentile's crossing, extracted and sorted once for all percentiles
    targets = [float(p) / 100.0 * sn for p in percentiles]
    wanted: set[int] = set()
    for h in targets:
        hp = h / (n - 1) if n > 1 else 0.0
        kb = min(int(np.searchsorted(cw, hp, side="right")), bins - 1)
        pos = int(np.searchsorted(nonempty, kb))
        wanted.update(int(x) for x in nonempty[max(pos - 1, 0) : pos + 2])
    sel_bins = np.array(sorted(wanted), dtype=np.int32)
    lut = np.zeros(bins, dtype=bool)
    lut[sel_bins] = True
    mu, m = np.take(lut, ku), np.take(lut, k)
    vv = np.concatenate([vu[mu], v[m]]).astype(np.float64)
    ww = np.concatenate([np.ones(int(mu.sum())), w[m]])
    kk = np.concatenate([ku[mu], k[m]])
    del ku, k, mu, m
    o = np.lexsort((vv, kk))
    vv, ww, kk = vv[o], ww[o], kk[o]
    # global rank and cumulative weight of each extracted element
    first_of_bin = np.r_[True, kk[1:] != kk[:-1]]
    starts = np.flatnonzero(first_of_bin)
    bin_of_start = kk[starts]
    rank_before = np.where(bin_of_start > 0, cc[np.maximum(bin_of_start - 1, 0)], 0)
    cw_before = np.where(bin_of_start > 0, cw[np.maximum(bin_of_start - 1, 0)], 0.0)
    grp = np.cumsum(first_of_bin) - 1
    local = np.arange(vv.size) - starts[grp]
    i = rank_before[grp] + local
    wcs = np.cumsum(ww)
    Cprev = cw_before[grp] + (wcs - ww) - (wcs[starts] - ww[starts])[grp]
    s_loc = i * ww + (n - 1) * Cprev
    for p, h in zip(percentiles, targets):
        r = int(np.searchsorted(s_loc, h, side="right"))
        gi = int(i[r]) if r < vv.size else n
        if r == 0 and (i[0] == 0):
            out[_pname(p)] = float(vv[0])
        elif gi >= n or r >= vv.size:
            out[_pname(p)] = hi if gi >= n else float(vv[-1])
        elif r == 0:  # cannot happen (the bin before the crossing is extracted); be safe
            out[_pname(p)] = float(np.quantile(np.concatenate([vu, v]), float(p) / 100.0))
        else:
            sl, sr = s_loc[r - 1], s_loc[r]
            xl, xr = float(vv[r - 1]), float(vv[r])
            out[_pname(p)] = xl + (h - sl) * (xr - xl) / (sr - sl) if sr > sl else xl
    return out


def _bin_index(v: np.ndarray, lo: float, scale: float) -> np.ndarray:
    """``floor((v - lo) * scale)`` as intp, computed in ``v``'s floating type (monotonic)."""
    if v.dtype.kind != "f":
        v = v.astype(np.float64)
    t = np.subtract(v, v.dtype.type(lo))
    np.multiply(t, t.dtype.type(scale), out=t)
    return t.astype(np.intp)


def _pname(p: float) -> str:
    return f"p{int(p)}" if float(p).is_integer() else "p" + f"{p:g}".replace(".", "_")


# ---------------------------------------------------------------------------------------------
# Raster access and coverage
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grid:
    """What the zonal code needs to know about a raster."""

    path: str
    width: int
    height: int
    transform: tuple[float, ...]  # a, b, c, d, e, f
    crs_wkt: str
    count: int
    nodata: float | None
    dtype: str
    scales: tuple[float, ...]
    offsets: tuple[float, ...]
    names: tuple[str, ...]
    datetimes: tuple[str | None, ...] = ()
    block: tuple[int, int] = (256, 256)  # rows, columns of the raster's internal blocks

    @property
    def cell_area(self) -> float:
        return abs(self.transform[0] * self.transform[4])

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        a, _, c, _, e, f = self.transform
        x0, x1 = c, c + a * self.width
        y0, y1 = f + e * self.height, f
        return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def open_grid(path: str | Path) -> Grid:
    """Describe a raster for zonal statistics (north-up grids only)."""
    import rasterio

    try:
        with rasterio.open(path) as ds:
            t = ds.transform
            if t.b != 0 or t.d != 0:
                raise InputError(
                    f"The raster {Path(path).name} is rotated: warp it north-up first."
                )
            if ds.crs is None:
                raise CRSError(f"The raster {Path(path).name} has no CRS.")
            times = tuple(ds.tags(i + 1).get("DATETIME") for i in range(ds.count))
            return Grid(
                str(path),
                ds.width,
                ds.height,
                (t.a, t.b, t.c, t.d, t.e, t.f),
                ds.crs.to_wkt(),
                ds.count,
                ds.nodata,
                ds.dtypes[0],
                tuple(float(s) for s in ds.scales),
                tuple(float(o) for o in ds.offsets),
                tuple(d or f"b{i + 1}" for i, d in enumerate(ds.descriptions)),
                times,
                tuple(int(x) for x in ds.block_shapes[0]),
            )
    except GisError:
        raise
    except Exception as exc:
        raise InputError(f"The raster {Path(path).name} cannot be opened: {exc}") from None


def _window_of(bounds, grid: Grid) -> tuple[int, int, int, int] | None:
    """(row0, row1, col0, col1) of the cells a box touches, clipped to the grid; None if none."""
    a, _, c, _, e, f = grid.transform
    minx, miny, maxx, maxy = bounds
    c0 = math.floor((minx - c) / a)
    c1 = math.ceil((maxx - c) / a)
    r0 = math.floor((maxy - f) / e)
    r1 = math.ceil((miny - f) / e)
    c0, c1 = max(c0, 0), min(c1, grid.width)
    r0, r1 = max(r0, 0), min(r1, grid.height)
    if c1 <= c0 or r1 <= r0:
        return None
    return r0, r1, c0, c1


def _windows(bounds: np.ndarray, grid: Grid) -> np.ndarray:
    """Vectorised :func:`_window_of`: (n, 4) rows r0, r1, c0, c1; -1 where none (or empty)."""
    a, _, c, _, e, f = grid.transform
    with np.errstate(invalid="ignore"):
        c0 = np.maximum(np.floor((bounds[:, 0] - c) / a), 0)
        c1 = np.minimum(np.ceil((bounds[:, 2] - c) / a), grid.width)
        r0 = np.maximum(np.floor((bounds[:, 3] - f) / e), 0)
        r1 = np.minimum(np.ceil((bounds[:, 1] - f) / e), grid.height)
    w = np.stack([r0, r1, c0, c1], axis=1)
    bad = ~np.isfinite(w).all(axis=1) | (c1 <= c0) | (r1 <= r0)
    w = np.where(bad[:, None], -1, np.nan_to_num(w, nan=-1)).astype(np.int64)
    return w


class _Reader:
    """A rasterio dataset opened once per process."""

    _cache: dict[str, Any] = {}

    @classmethod
    def get(cls, path: str):
        import rasterio

        ds = cls._cache.get(path)
        if ds is None or ds.closed:
            env = rasterio.Env(
                GDAL_CACHEMAX=128 * 1024 * 1024, GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"
            )
            env.__enter__()
            ds = rasterio.open(path)
            cls._cache[path] = ds
        return ds


def _read(
    grid: Grid, bands: list[int], r0: int, r1: int, c0: int, c1: int
) -> tuple[np.ndarray, np.ndarray]:
    """Values (bands, rows, cols) as float64 and the valid mask (rows, cols, all bands valid)."""
    from rasterio.windows import Window

    ds = _Reader.get(grid.path)
    arr = ds.read(bands, window=Window(c0, r0, c1 - c0, r1 - r0))
    valid = np.ones(arr.shape[1:], dtype=bool)
    if grid.nodata is not None:
        if isinstance(grid.nodata, float) and math.isnan(grid.nodata):
            valid &= ~np.isnan(arr).any(axis=0)
        else:
            valid &= ~(arr == arr.dtype.type(grid.nodata)).any(axis=0)
    if arr.dtype.kind == "f":
        valid &= np.isfinite(arr).all(axis=0)
    return arr, valid


def _small_triples(
    grid: Grid, bands: list[int], geoms: np.ndarray, idx: np.ndarray, wins: np.ndarray
):
    """Triples of small zones: one read of the window holding them, exact pair intersections."""
    a, _, c, _, e, f = grid.transform
    r0, r1 = int(wins[:, 0].min()), int(wins[:, 1].max())
    c0, c1 = int(wins[:, 2].min()), int(wins[:, 3].max())
    arr, valid = _read(grid, bands, r0, r1, c0, c1)
    nr = wins[:, 1] - wins[:, 0]
    nc = wins[:, 3] - wins[:, 2]
    ncell = nr * nc
    zi = np.repeat(np.arange(len(idx)), ncell)
    local = np.arange(zi.size) - np.repeat(np.cumsum(ncell) - ncell, ncell)
    rows = wins[zi, 0] + local // nc[zi]
    cols = wins[zi, 2] + local % nc[zi]
    x0 = (c + cols * a).tolist()
    y0 = (f + rows * e).tolist()
    gl = geoms[zi].tolist()
    clip = shapely.lib.clip_by_rect  # GEOS's rectangle clipper: much faster than an overlay
    try:
        area = shapely.area(
            np.array([clip(g, x, y + e, x + a, y) for g, x, y in zip(gl, x0, y0)], dtype=object)
        )
    except shapely.errors.GEOSException:
        area = np.fromiter(
            (_cell_area(g, x, y + e, x + a, y) for g, x, y in zip(gl, x0, y0)),
            dtype=np.float64,
            count=len(gl),
        )
    cover = area / grid.cell_area
    cover[cover < 1e-9] = 0.0
    rr, cc = rows - r0, cols - c0
    ok = (cover > 0) & valid[rr, cc]
    vals = arr[:, rr[ok], cc[ok]].astype(np.float64)
    return idx[zi[ok]], vals, cover[ok]


def polygon_coverage(
    geom, a: float, e: float, x0: float, y0: float
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Exact coverage fractions of a polygon on a north-up grid, as boundary cells and runs.

    The polygon's rings are cut at every grid line they cross, and each piece (lying in one
    cell) adds to its cell the signed area between itself and the cell's right side, and its
    height to every cell further right in the row (the accumulation of font rasterisers, which is
    Green's theorem on the cell grid). A prefix sum along each row then gives the exact covered
    fraction of every cell the boundary crosses, and the winding number (0 outside, 1 inside)
    of the cells between them: those are the interior runs, coverage 1, never enumerated one by
    one. Everything is vectorised (numpy); the cost grows with the number of vertices and
    boundary cells, not with the zone's area.

    Parameters
    ----------
    geom : shapely Polygon or MultiPolygon (or a collection holding polygons)
    a, e : float
        Cell width and (negative for north-up) height.
    x0, y0 : float
        Coordinates of the corner of cell (row 0, column 0).

    Returns
    -------
    boundary : (rows, cols, fractions)
        Cells the boundary crosses (row-major order, unbounded indices: negative or beyond the
        raster where the polygon is) and their coverage fractions in [0, 1] (0 where the
        boundary only grazes the cell).
    runs : (rows, col_start, col_stop)
        Cells ``col_start <= col < col_stop`` of ``row`` wholly inside the polygon.

    Examples
    --------
    >>> (r, c, f), (rr, c0, c1) = polygon_coverage(shapely.box(0.5, -3.5, 3.5, -0.5),
    ...                                            1.0, -1.0, 0.0, 0.0)
    >>> float(f.sum() + (c1 - c0).sum())  # 3 x 3 cells of area
    9.0
    >>> rr.tolist(), c0.tolist(), c1.tolist()  # the 2 x 2 cells wholly inside: two runs
    ([1, 2], [1, 1], [3, 3])
    """
    u0, v0, u1, v1 = _segments_uv(geom, a, e, x0, y0)
    n = u0.size
    if n == 0:
        z = np.zeros(0, dtype=np.int64)
        return (z, z, np.zeros(0)), (z, z, z)
    du, dv = u1 - u0, v1 - v0
    # the grid lines each segment crosses (strictly between its ends)
    lo = np.minimum(u0, u1)
    kx = np.floor(lo) + 1
    nx = np.maximum(np.ceil(np.maximum(u0, u1)) - kx, 0).astype(np.int64)
    lo = np.minimum(v0, v1)
    ky = np.floor(lo) + 1
    ny = np.maximum(np.ceil(np.maximum(v0, v1)) - ky, 0).astype(np.int64)
    seg = np.arange(n)
    sx = np.repeat(seg, nx)
    sy = np.repeat(seg, ny)
    with np.errstate(divide="ignore", invalid="ignore"):
        tx = (kx[sx] + (np.arange(sx.size) - np.repeat(np.cumsum(nx) - nx, nx)) - u0[sx]) / du[sx]
        ty = (ky[sy] + (np.arange(sy.size) - np.repeat(np.cumsum(ny) - ny, ny)) - v0[sy]) / dv[sy]
    s_all = np.concatenate([seg, sx, sy, seg])
    t_all = np.concatenate([np.zeros(n), tx, ty, np.ones(n)])
    del sx, sy, tx, ty
    o = np.lexsort((t_all, s_all))
    s_all, t_all = s_all[o], t_all[o]
    # pieces between consecutive cut points of a segment: each lies in one cell
    start = np.flatnonzero(s_all[:-1] == s_all[1:])
    s = s_all[start]
    ta, tb = t_all[start], t_all[start + 1]
    del s_all, t_all, start
    va = v0[s] + ta * dv[s]
    vb = v0[s] + tb * dv[s]
    um = u0[s] + (0.5 * (ta + tb)) * du[s]
    c = np.floor(um).astype(np.int64)
    r = np.floor(0.5 * (va + vb)).astype(np.int64)
    dy = vb - va
    area = dy * (1.0 - (um - c))  # between the piece and the cell's right side
    # per cell, row-major
    o = np.lexsort((c, r))
    r, c, dy, area = r[o], c[o], dy[o], area[o]
    first = np.r_[True, (r[1:] != r[:-1]) | (c[1:] != c[:-1])]
    st = np.flatnonzero(first)
    r, c = r[st], c[st]
    A = np.add.reduceat(area, st)
    D = np.add.reduceat(dy, st)
    # winding number left of each cell, within its row (each row's D sums to 0)
    cd = np.cumsum(D)
    row_first = np.r_[True, r[1:] != r[:-1]]
    rs = np.flatnonzero(row_first)
    base = np.repeat(np.r_[0.0, cd[rs[1:] - 1]], np.diff(np.r_[rs, r.size]))
    left = cd - D - base
    after = left + D
    sign = 1.0 if a * e < 0 else -1.0  # orientation of the grid (north-up: 1)
    frac = np.clip(sign * (left + A), 0.0, 1.0)
    frac[frac < 1e-9] = 0.0  # floating-point slivers along shared edges are not coverage
    nxt = np.flatnonzero(~row_first[1:] & (c[1:] - c[:-1] > 1) & (sign * after[:-1] > 0.5))
    return (r, c, frac), (r[nxt], c[nxt] + 1, c[nxt + 1])


def _segments_uv(geom, a: float, e: float, x0: float, y0: float):
    """The segments of every ring of a polygonal geometry in grid units (u: columns to the
    right, v: rows down), exteriors counter-clockwise and holes clockwise."""
    polys = shapely.get_parts(geom)
    if not np.all(shapely.get_type_id(polys) == 3):
        polys = _polygons(geom)
    polys = shapely.orient_polygons(polys)
    xy, ring = shapely.get_coordinates(shapely.get_rings(polys), return_index=True)
    u = (xy[:, 0] - x0) / a
    v = (xy[:, 1] - y0) / e
    same = ring[1:] == ring[:-1]
    return u[:-1][same], v[:-1][same], u[1:][same], v[1:][same]


def cell_coverage(
    geom, a: float, e: float, x0: float, y0: float, nrows: int, ncols: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact coverage fractions of a polygon on a north-up grid window (see
    :func:`polygon_coverage`).

    Returns
    -------
    cells : array of int64
        Row-major indices of the cells with a coverage > 0 in the window (ascending).
    fractions : array of float64
        Their coverage fractions (0 < f <= 1).

    Examples
    --------
    >>> cells, f = cell_coverage(shapely.box(0.5, -1.5, 1.5, -0.5), 1.0, -1.0, 0.0, 0.0, 2, 2)
    >>> cells.tolist(), f.tolist()
    ([0, 1, 2, 3], [0.25, 0.25, 0.25, 0.25])
    """
    (r, c, f), (rr, c0, c1) = polygon_coverage(geom, a, e, x0, y0)
    ok = (r >= 0) & (r < nrows) & (c >= 0) & (c < ncols) & (f > 0)
    rr, c0, c1 = _clip_runs(rr, c0, c1, nrows, ncols)
    run_cells = _run_index(rr * ncols + c0, c1 - c0)
    cells = np.concatenate([r[ok] * ncols + c[ok], run_cells])
    frac = np.concatenate([f[ok], np.ones(run_cells.size)])
    o = np.argsort(cells, kind="stable")
    return cells[o], frac[o]


def _clip_runs(rr, c0, c1, nrows: int, ncols: int):
    c0, c1 = np.maximum(c0, 0), np.minimum(c1, ncols)
    ok = (rr >= 0) & (rr < nrows) & (c1 > c0)
    return rr[ok], c0[ok], c1[ok]


def _run_index(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(s, s + n)`` of every run (one cumulative sum, no repeat)."""
    keep = lengths > 0
    starts, lengths = starts[keep], lengths[keep]
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    idx = np.ones(total, dtype=np.int64)
    off = np.cumsum(lengths) - lengths
    idx[0] = starts[0]
    idx[off[1:]] = starts[1:] - (starts[:-1] + lengths[:-1] - 1)
    return np.cumsum(idx, out=idx)


def _polygons(geom) -> np.ndarray:
    """The polygons of any (multi)polygon or collection, as an array."""
    parts = shapely.get_parts(geom)
    while True:
        t = shapely.get_type_id(parts)
        if not np.isin(t, (6, 7)).any():
            return parts[t == 3]
        parts = np.concatenate(
            [shapely.get_parts(p) if shapely.get_type_id(p) in (6, 7) else [p] for p in parts]
        )


def _clip(g, xmin, ymin, xmax, ymax):
    """The polygon clipped to a rectangle (GEOS's fast rectangle clipper, exact overlay when the
    clipper meets a degenerate piece)."""
    try:
        return shapely.lib.clip_by_rect(g, xmin, ymin, xmax, ymax)
    except shapely.errors.GEOSException:
        return shapely.intersection(shapely.make_valid(g), shapely.box(xmin, ymin, xmax, ymax))


def _cell_area(g, xmin, ymin, xmax, ymax) -> float:
    if g is None:
        return 0.0
    try:
        return shapely.lib.clip_by_rect(g, xmin, ymin, xmax, ymax).area
    except shapely.errors.GEOSException:
        return shapely.intersection(shapely.make_valid(g), shapely.box(xmin, ymin, xmax, ymax)).area


def _large_cells(grid: Grid, bands: list[int], geom) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The valid cells of one large zone: values of the cells wholly inside (bands, n_inside),
    values of the partly covered ones (bands, n_edge) and their coverage (n_edge), all values
    in the raster's type.

    The coverage comes from :func:`polygon_coverage` (boundary cells and interior runs, no
    per-cell geometry); the raster is read in row strips aligned to its blocks (each strip only
    over the columns the zone uses in it), bounded by :data:`STRIP_CELLS`, and only the cells
    of the zone are gathered from it.
    """
    from rasterio.windows import Window

    a, _, c, _, e, f = grid.transform
    (br, bc, bw), (rr, rc0, rc1) = polygon_coverage(geom, a, e, c, f)
    ok = (br >= 0) & (br < grid.height) & (bc >= 0) & (bc < grid.width) & (bw > 0)
    br, bc, bw = br[ok], bc[ok], bw[ok]
    rr, rc0, rc1 = _clip_runs(rr, rc0, rc1, grid.height, grid.width)
    nb = len(bands)
    vu_out: list[np.ndarray] = []
    vb_out: list[np.ndarray] = []
    w_out: list[np.ndarray] = []
    if br.size or rr.size:
        ds = _Reader.get(grid.path)
        r0 = int(min(br.min(initial=grid.height), rr.min(initial=grid.height)))
        r1 = int(max(br.max(initial=-1), rr.max(initial=-1))) + 1
        width = int(max(bc.max(initial=-1) + 1, rc1.max(initial=0))) - int(
            min(bc.min(initial=grid.width), rc0.min(initial=grid.width))
        )
        bh = max(int(grid.block[0]), 1)
        rows_per = max(bh, (STRIP_CELLS // max(width, 1)) // bh * bh)
        s0 = r0 // bh * bh  # strips start on block rows: each block is decompressed once
        while s0 < r1:
            s1 = min(s0 + rows_per, r1)
            i0, i1 = np.searchsorted(br, [s0, s1])
            j0, j1 = np.searchsorted(rr, [s0, s1])
            if i1 > i0 or j1 > j0:
                lo = max(s0, r0)
                sc0 = int(
                    min(bc[i0:i1].min(initial=grid.width), rc0[j0:j1].min(initial=grid.width))
                )
                sc1 = int(max(bc[i0:i1].max(initial=-1) + 1, rc1[j0:j1].max(initial=0)))
                flat = ds.read(bands, window=Window(sc0, lo, sc1 - sc0, s1 - lo)).reshape(nb, -1)
                nc = sc1 - sc0
                vb = flat[:, (br[i0:i1] - lo) * nc + (bc[i0:i1] - sc0)]
                vu = flat[
                    :,
                    _run_index((rr[j0:j1] - lo) * nc + (rc0[j0:j1] - sc0), rc1[j0:j1] - rc0[j0:j1]),
                ]
                del flat
                mb, mu = _valid(vb, grid), _valid(vu, grid)
                vb_out.append(vb[:, mb] if not mb.all() else vb)
                w_out.append(bw[i0:i1][mb])
                vu_out.append(vu[:, mu] if not mu.all() else vu)
            s0 = s1
    dt = np.dtype(grid.dtype)
    return (
        np.concatenate(vu_out, axis=1) if vu_out else np.zeros((nb, 0), dtype=dt),
        np.concatenate(vb_out, axis=1) if vb_out else np.zeros((nb, 0), dtype=dt),
        np.concatenate(w_out) if w_out else np.zeros(0),
    )


def _valid(vals: np.ndarray, grid: Grid) -> np.ndarray:
    """Mask of the columns of ``vals`` (bands, n) valid in every band."""
    ok = np.ones(vals.shape[1], dtype=bool)
    nd = grid.nodata
    if nd is not None and not (isinstance(nd, float) and math.isnan(nd)):
        ok &= ~(vals == vals.dtype.type(nd)).any(axis=0)
    if vals.dtype.kind == "f":
        ok &= np.isfinite(vals).all(axis=0)
    return ok


def _zone_cells(grid: Grid, geoms: np.ndarray) -> np.ndarray:
    return shapely.area(geoms) / grid.cell_area


def _compute_batch(
    grid: Grid, bands: list[int], wkb: list[bytes], percentiles: Sequence[float]
) -> dict[str, np.ndarray]:
    """Statistics of one batch of zones (geometries already in the raster's CRS)."""
    geoms = shapely.from_wkb(np.asarray(wkb, dtype=object))
    n = len(geoms)
    nb = len(bands)
    zone_parts: list[np.ndarray] = []
    val_parts: list[np.ndarray] = []
    w_parts: list[np.ndarray] = []
    wins = _windows(shapely.bounds(geoms), grid)
    has = wins[:, 0] >= 0
    cells = np.where(has, (wins[:, 1] - wins[:, 0]) * (wins[:, 3] - wins[:, 2]), 0)
    # pair intersections cost cells x vertices: simple, small zones go the vectorised way
    work = cells * shapely.get_num_coordinates(geoms)
    is_small = has & (cells <= SMALL_ZONE_CELLS) & (work <= SMALL_ZONE_WORK)
    small = np.flatnonzero(is_small)
    large = np.flatnonzero(has & ~is_small)
    # small zones, in chunks of bounded pair count and window
    start = 0
    while start < small.size:
        stop = start
        total = 0
        r0 = c0 = 1 << 60
        r1 = c1 = -1
        while stop < small.size:
            k = small[stop]
            nr0, nr1 = min(r0, wins[k, 0]), max(r1, wins[k, 1])
            nc0, nc1 = min(c0, wins[k, 2]), max(c1, wins[k, 3])
            if stop > start and (
                total + cells[k] > PAIR_CELLS or (nr1 - nr0) * (nc1 - nc0) > STRIP_CELLS
            ):
                break
            r0, r1, c0, c1 = nr0, nr1, nc0, nc1
            total += cells[k]
            stop += 1
        sel = small[start:stop]
        z, v, w = _small_triples(grid, bands, geoms[sel], sel, wins[sel])
        zone_parts.append(z)
        val_parts.append(v)
        w_parts.append(w)
        start = stop
    direct: dict[int, list[dict[str, float]]] = {}
    for k in large:
        vu, vb, wb = _large_cells(grid, bands, geoms[k])
        if vu.shape[1] + wb.size > BIG_GROUP:  # reduce now: no need to keep its cells
            direct[int(k)] = [_zone_stats(vu[j], vb[j], wb, percentiles) for j in range(nb)]
            continue
        zone_parts.append(np.full(vu.shape[1] + wb.size, k, dtype=np.int64))
        val_parts.append(np.concatenate([vu, vb], axis=1).astype(np.float64))
        w_parts.append(np.concatenate([np.ones(vu.shape[1]), wb]))
    z = np.concatenate(zone_parts) if zone_parts else np.zeros(0, dtype=np.int64)
    w = np.concatenate(w_parts) if w_parts else np.zeros(0)
    vals = np.concatenate(val_parts, axis=1) if val_parts else np.zeros((nb, 0))
    out: dict[str, np.ndarray] = {}
    zone_cells = _zone_cells(grid, geoms)
    for j, b in enumerate(bands):
        st = weighted_stats(z, vals[j], w, n, percentiles)
        for k, per_band in direct.items():
            for key, val in per_band[j].items():
                st[key][k] = val
        scale = grid.scales[b - 1] if grid.scales else 1.0
        offset = grid.offsets[b - 1] if grid.offsets else 0.0
        if scale != 1.0 or offset != 0.0:
            st = _apply_scale(st, scale, offset)
        st["frac"] = np.where(
            zone_cells > 0,
            np.minimum(st["count"] / np.where(zone_cells > 0, zone_cells, 1), 1.0),
            0.0,
        )
        for key, arr in st.items():
            out[f"{j}:{key}"] = arr
    return out


def _apply_scale(st: dict[str, np.ndarray], scale: float, offset: float) -> dict[str, np.ndarray]:
    out = dict(st)
    out["sum"] = st["sum"] * scale + offset * st["count"]
    for k, arr in st.items():
        if k in ("mean", "min", "max") or k.startswith("p"):
            out[k] = arr * scale + offset
    if scale < 0:
        out["min"], out["max"] = out["max"], out["min"]
    out["std"] = st["std"] * abs(scale)
    return out


#: Cells (bounding boxes) per job: large zones are spread over several jobs (workers).
JOB_CELLS = 4 * 1024 * 1024
#: jobs per worker taken at a time and shared out in lanes of neighbours (see _Runner.map)
GROUP_WINDOW = 8


def _split(geoms: np.ndarray, grid: Grid, batch_size: int) -> list[slice]:
    """Consecutive slices of ``geoms`` of at most ``batch_size`` zones and about JOB_CELLS cells."""
    b = shapely.bounds(geoms)
    a, e = abs(grid.transform[0]), abs(grid.transform[4])
    cells = np.nan_to_num((b[:, 2] - b[:, 0]) / a + 1) * np.nan_to_num((b[:, 3] - b[:, 1]) / e + 1)
    out, start, acc = [], 0, 0.0
    for i, c in enumerate(cells):
        if i > start and (i - start >= batch_size or acc + c > JOB_CELLS):
            out.append(slice(start, i))
            start, acc = i, 0.0
        acc += c
    if start < len(geoms):
        out.append(slice(start, len(geoms)))
    return out


def _reset_child() -> None:
    """In a forked worker: forget the parent's open datasets (each process opens its own)."""
    _Reader._cache = {}


# ---------------------------------------------------------------------------------------------
# Library entry points
# ---------------------------------------------------------------------------------------------


def _stat_names(percentiles: Sequence[float]) -> list[str]:
    return ["count", "sum", "mean", "min", "max", "std", *(_pname(p) for p in percentiles), "frac"]


def _check_bands(grid: Grid, bands: Sequence[int] | None) -> list[int]:
    if bands is None:
        return [1]
    out = [int(b) for b in bands]
    bad = [b for b in out if not 1 <= b <= grid.count]
    if bad:
        raise InputError(f"Band {bad[0]} does not exist: the raster has {grid.count} band(s).")
    return out


def _auto_workers(n_zones: int, grid: Grid) -> int:
    if n_zones < 500 and grid.width * grid.height < 4_000_000:
        return 1
    return max(
        1,
        min(
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else (os.cpu_count() or 1),
            8,
        ),
    )


class _Runner:
    """Runs batches inline or in a process pool, yielding results in submission order."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool: ProcessPoolExecutor | None = None
        if workers > 1:
            import multiprocessing as mp

            # fork: fast, and safe here because a child only touches what _reset gives it
            self.pool = ProcessPoolExecutor(
                max_workers=workers, mp_context=mp.get_context("fork"), initializer=_reset_child
            )

    def map(self, jobs: Iterator[tuple]) -> Iterator[dict[str, np.ndarray]]:
        """The results of the jobs, in order.

        With a pool, the jobs are taken GROUP_WINDOW per worker at a time; each window is cut into
        one lane of consecutive jobs per worker, and a worker that finishes a job is given the next
        one of its lane (only it is idle then), or, its lane done, the last job of the longest lane
        left. The zones come in spatial order, so a worker decompresses the raster blocks of its
        own part of the map, instead of every block near a job boundary being decompressed by both
        (jobs handed out one by one alternate between workers), and the lanes end together.
        """
        if self.pool is None:
            for job in jobs:
                yield _compute_batch(*job)
            return
        import itertools

        it = iter(jobs)
        while window := list(itertools.islice(it, GROUP_WINDOW * self.workers)):
            yield from self._run_window(window)

    def _run_window(self, window: list[tuple]) -> Iterator[dict[str, np.ndarray]]:
        from concurrent.futures import FIRST_COMPLETED, wait

        assert self.pool is not None
        n = len(window)
        k = min(self.workers, n)
        lanes = [[n * i // k, n * (i + 1) // k] for i in range(k)]  # [next, end) of each lane
        results: list[dict | None] = [None] * n
        running: dict[Future, tuple[int, int]] = {}

        def give(lane: int) -> None:
            lo, hi = lanes[lane]
            if lo < hi:
                lanes[lane][0] += 1
                i = lo
            else:  # this lane is done: take the last job of the longest lane left
                other = max(range(k), key=lambda j: lanes[j][1] - lanes[j][0])
                if lanes[other][1] <= lanes[other][0]:
                    return
                lanes[other][1] -= 1
                i = lanes[other][1]
            running[self.pool.submit(_compute_batch, *window[i])] = (lane, i)

        for lane in range(k):
            give(lane)
        done_upto = 0
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                lane, i = running.pop(fut)
                results[i] = fut.result()
                give(lane)
            while done_upto < n and results[done_upto] is not None:
                yield results[done_upto]
                results[done_upto] = None
                done_upto += 1

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def _reprojector(zone_crs: CRS, grid: Grid):
    return gcrs.make_transformer(zone_crs, CRS.from_wkt(grid.crs_wkt))


def compute_zonal(
    raster: str | Path,
    geometries,
    *,
    crs: Any = None,
    bands: Sequence[int] | None = None,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    workers: int | None = None,
    batch_size: int = 5000,
) -> Any:
    """Zonal statistics of in-memory zones (a GeoDataFrame or shapely geometries): no database.

    Parameters
    ----------
    raster : path
        A raster file (a COG of the store, or any GeoTIFF).
    geometries : geopandas.GeoDataFrame or GeoSeries or array of shapely geometries
        The zones; their CRS is taken from the frame, else from ``crs``.
    crs : CRS-like, optional
        CRS of plain geometries.
    bands : sequence of int, optional
        1-based bands (default: band 1).
    percentiles : sequence of float
    workers : int, optional
        Worker processes (default: 1 for small jobs, else the CPU count).
    batch_size : int
        Zones per batch.

    Returns
    -------
    pandas.DataFrame
        One row per zone and band, in input order: ``zone`` (position), ``band``, ``band_name``
        and the statistics (see the module docstring).

    Examples
    --------
    >>> wards = geopandas.read_file("hcmc_wards_2025.geojson")  # doctest: +SKIP
    >>> df = compute_zonal("vnm_ppp_2020.tif", wards, percentiles=(50,))  # doctest: +SKIP
    >>> round(df["sum"].sum())  # doctest: +SKIP
    9364822
    """
    import pandas as pd

    grid = open_grid(raster)
    bands_l = _check_bands(grid, bands)
    geoms = np.asarray(
        getattr(geometries, "geometry", geometries).values
        if hasattr(getattr(geometries, "geometry", geometries), "values")
        else geometries,
        dtype=object,
    )
    gcrs_in = getattr(geometries, "crs", None) or crs
    if gcrs_in is None:
        raise CRSError("The zones have no CRS: give a GeoDataFrame with a CRS, or pass crs=.")
    zone_crs = gcrs.parse_crs(gcrs_in.to_wkt() if hasattr(gcrs_in, "to_wkt") else gcrs_in)
    geoms = _reprojector(zone_crs, grid).transform_geoms(geoms)
    runner = _Runner(workers or _auto_workers(len(geoms), grid))
    try:
        jobs = (
            (grid, bands_l, list(shapely.to_wkb(geoms[sl])), tuple(percentiles))
            for sl in _split(geoms, grid, batch_size)
        )
        parts = list(runner.map(jobs))
    finally:
        runner.close()
    names = _stat_names(percentiles)
    frames = []
    for j, b in enumerate(bands_l):
        cols = {
            k: np.concatenate([p[f"{j}:{k}"] for p in parts]) if parts else np.zeros(0)
            for k in names
        }
        df = pd.DataFrame(
            {"zone": np.arange(len(geoms)), "band": b, "band_name": grid.names[b - 1], **cols}
        )
        frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# alias for notebooks
zonal_stats = compute_zonal


@dataclass
class ZonalResult:
    """What :func:`zonal_to_postgis` wrote."""

    table: str
    zones: str
    n_zones: int
    n_rows: int
    bands: list[int]
    duration_s: float
    statistics: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"Wrote {self.table}: {self.n_rows} rows ({self.n_zones} zones of {self.zones} x "
            f"{len(self.bands)} band(s)) in {self.duration_s:.1f} s."
        )


def _zone_srid(conn, layer: ZoneLayer) -> int:
    schema, table = layer.schema_table
    row = conn.execute(
        "SELECT srid FROM geometry_columns WHERE f_table_schema = %s AND f_table_name = %s "
        "AND f_geometry_column = %s",
        (schema, table, layer.geom),
    ).fetchone()
    if row is not None and row[0]:
        return int(row[0])
    from psycopg import sql

    rows = conn.execute(
        sql.SQL("SELECT DISTINCT ST_SRID({g}) FROM {s}.{t} LIMIT 2").format(
            g=sql.Identifier(layer.geom), s=sql.Identifier(schema), t=sql.Identifier(table)
        )
    ).fetchall()
    srids = {int(r[0]) for r in rows}
    if len(srids) > 1:
        raise CRSError(
            f"The zone layer {layer.name} mixes SRIDs ({sorted(srids)}): give it one CRS."
        )
    return srids.pop() if srids else 4326


def _zone_crs(conn, layer: ZoneLayer, srid: int) -> CRS:
    if srid == 0:
        raise CRSError(
            f"The zone layer {layer.name} ({layer.relation}) has no CRS (SRID 0): set it "
            f"(ALTER TABLE ... ALTER COLUMN {layer.geom} TYPE geometry USING ST_SetSRID(...)) or "
            "re-ingest it with --crs."
        )
    row = conn.execute(
        "SELECT auth_name, auth_srid, srtext FROM spatial_ref_sys WHERE srid = %s", (srid,)
    ).fetchone()
    if row is None:  # an EPSG code newer than the database's spatial_ref_sys (e.g. 9210)
        try:
            return gcrs.parse_crs(f"EPSG:{srid}")
        except CRSError:
            raise CRSError(
                f"The zone layer {layer.name} has SRID {srid}, which neither the "
                "database nor PROJ knows: give it an EPSG SRID."
            ) from None
    try:
        if row[0] == "EPSG":
            return gcrs.parse_crs(f"EPSG:{row[1]}")
        return gcrs.parse_crs(row[2])
    except CRSError:
        raise CRSError(f"The zone layer {layer.name} has SRID {srid}, an unknown CRS.") from None


def _check_relation(conn, layer: ZoneLayer) -> list[tuple[str, str]]:
    schema, table = layer.schema_table
    cols = conn.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped "
        "ORDER BY a.attnum",
        (schema, table),
    ).fetchall()
    if not cols:
        raise InputError(f"The zone layer {layer.name}: relation {layer.relation} does not exist.")
    types = dict(cols)
    missing = [c for c in (layer.key, layer.geom, *layer.labels) if c not in types]
    if missing:
        raise InputError(
            f"The zone layer {layer.name} ({layer.relation}) has no column "
            f"{missing[0]!r} (columns: {', '.join(types)})."
        )
    return [(c, types[c]) for c in (layer.key, *layer.labels)]


def zonal_to_postgis(
    dsn: str,
    raster: str | Path,
    zones: str | ZoneLayer,
    table: str,
    *,
    bands: Sequence[int] | None = None,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    with_geometry: bool | None = None,
    workers: int | None = None,
    batch_size: int = 5000,
    item: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> ZonalResult:
    """Zonal statistics of a PostGIS zone layer, written to ``stats.zonal_<table>``.

    Parameters
    ----------
    dsn : str
    raster : path
        The raster (an item's COG: ``Item.path(store_root)``).
    zones : str or ZoneLayer
        ``wards-2025``, ``parcels``, ``planning-lots`` or ``schema.relation[:key]``.
    table : str
        Name of the result: the table is ``stats.zonal_<table>`` (lower-case letters, digits,
        ``_``). An existing table of that name is replaced in the same transaction.
    bands : sequence of int, optional
        1-based bands (default: band 1). Several bands give one row per zone and band.
    percentiles : sequence of float
    with_geometry : bool, optional
        Copy the zone geometry (EPSG:4326 as stored) into the table; default: when one band.
    workers, batch_size : int
        Parallel worker processes; zones per batch (memory is proportional to it).
    item : gis.raster.catalog.Item, optional
        Recorded in ``stats.tables`` with the result.
    progress : callable, optional
        ``progress(done, total)`` in zones.

    Returns
    -------
    ZonalResult

    Raises
    ------
    gis.errors.CRSError
        The zone layer has no CRS, an unknown one, or coordinates that do not fit it; or no zone
        overlaps the raster once reprojected. Nothing is written.
    gis.errors.InputError
        Bad table name, zone layer or band. Nothing is written.
    """
    from psycopg import sql

    t0 = time.monotonic()
    if not _NAME_RE.match(table or ""):
        raise InputError(
            f"--table {table!r}: use lower-case letters, digits and '_' "
            "(starting with a letter, at most 48 characters)."
        )
    layer = zone_layer(zones)
    grid = open_grid(raster)
    bands_l = _check_bands(grid, bands)
    if with_geometry is None:
        with_geometry = len(bands_l) == 1
    raster_crs = CRS.from_wkt(grid.crs_wkt)
    target = f"zonal_{table}"
    staging = f"{target}__new"
    schema, rel = layer.schema_table
    names = _stat_names(percentiles)

    with connect(dsn) as conn:
        key_cols = _check_relation(conn, layer)
        srid = _zone_srid(conn, layer)
        zone_crs = _zone_crs(conn, layer, srid)
        # published as a feature collection when it has geometry in the storage CRS
        publish = bool(with_geometry) and srid == 4326
        collection_id = zonal_collection_id(table)
        if publish:
            _check_collection_id(conn, collection_id, target)
        ident = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(rel))
        g = sql.Identifier(layer.geom)
        row = conn.execute(
            sql.SQL(
                "SELECT count(*), ST_XMin(ST_Extent({g})), ST_YMin(ST_Extent({g})), "
                "ST_XMax(ST_Extent({g})), ST_YMax(ST_Extent({g})) FROM {rel}"
            ).format(g=g, rel=ident)
        ).fetchone()
        n_zones = int(row[0])
        if n_zones == 0:
            raise InputError(
                f"The zone layer {layer.name} ({layer.relation}) is empty: load it "
                "first (gis ingest ...)."
            )
        zb = tuple(float(v) for v in row[1:])
        gcrs.check_extent(zone_crs, zb, label=f"zone layer {layer.name}")
        reproj = _reprojector(zone_crs, grid)
        zb_r = reproj.transform_bounds(zb)
        rb = grid.bounds
        if not all(math.isfinite(v) for v in zb_r) or not (
            zb_r[0] < rb[2] and zb_r[2] > rb[0] and zb_r[1] < rb[3] and zb_r[3] > rb[1]
        ):
            raise CRSError(
                f"No zone of {layer.name} overlaps the raster {Path(raster).name}: the zones "
                f"({gcrs.describe_crs(zone_crs)}) cover {_fmt(zb)}, the raster "
                f"({gcrs.describe_crs(raster_crs)}) covers {_fmt(rb)}. Check both CRSs."
            )

        runner = _Runner(workers or _auto_workers(n_zones, grid))
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"stats:{target}",))
                # a reader holding the old table in a long transaction: fail clearly, not forever
                conn.execute("SET LOCAL lock_timeout = '60s'")
                conn.execute(
                    sql.SQL("DROP TABLE IF EXISTS stats.{}").format(sql.Identifier(staging))
                )
                col_defs = [
                    sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in key_cols
                ]
                col_defs += [
                    sql.SQL("band integer NOT NULL"),
                    sql.SQL("band_name text NOT NULL"),
                    sql.SQL("band_datetime timestamptz"),
                ]
                col_defs += [
                    sql.SQL("{} double precision").format(sql.Identifier(s)) for s in names
                ]
                conn.execute(
                    sql.SQL("CREATE TABLE stats.{} ({})").format(
                        sql.Identifier(staging), sql.SQL(", ").join(col_defs)
                    )
                )
                cols = [c for c, _ in key_cols] + ["band", "band_name", "band_datetime"] + names
                copy_sql = sql.SQL("COPY stats.{} ({}) FROM STDIN").format(
                    sql.Identifier(staging), sql.SQL(", ").join(map(sql.Identifier, cols))
                )
                select = sql.SQL("SELECT {keys}, ST_AsBinary({g}) FROM {rel} ORDER BY {g}").format(
                    keys=sql.SQL(", ").join(sql.Identifier(c) for c, _ in key_cols), g=g, rel=ident
                )
                done = 0
                with conn.cursor(name="zonal_zones") as cur, conn.cursor() as wcur:
                    cur.itersize = batch_size
                    cur.execute(select)
                    pending_keys: list[list[tuple]] = []

                    def jobs():
                        while True:
                            rows = cur.fetchmany(batch_size)
                            if not rows:
                                return
                            keys = [r[:-1] for r in rows]
                            geoms = reproj.transform_geoms(
                                shapely.from_wkb([bytes(r[-1]) for r in rows])
                            )
                            for sl in _split(geoms, grid, batch_size):
                                pending_keys.append(keys[sl])
                                yield (
                                    grid,
                                    bands_l,
                                    list(shapely.to_wkb(geoms[sl])),
                                    tuple(percentiles),
                                )

                    results = runner.map(jobs())
                    for res in results:
                        keys = pending_keys.pop(0)
                        with wcur.copy(copy_sql) as copy:
                            for j, b in enumerate(bands_l):
                                stats = [res[f"{j}:{s}"] for s in names]
                                bname = grid.names[b - 1]
                                bdt = grid.datetimes[b - 1] if grid.datetimes else None
                                for i, k in enumerate(keys):
                                    copy.write_row(
                                        (*k, b, bname, bdt, *(_num(s[i]) for s in stats))
                                    )
                        done += len(keys)
                        if progress:
                            progress(done, n_zones)
                # geometry, keys, replace
                if with_geometry:
                    conn.execute(
                        sql.SQL("ALTER TABLE stats.{} ADD COLUMN geom geometry").format(
                            sql.Identifier(staging)
                        )
                    )
                    conn.execute(
                        sql.SQL(
                            "UPDATE stats.{s} t SET geom = z.{g} FROM {rel} z WHERE z.{k} = t.{k}"
                        ).format(
                            s=sql.Identifier(staging), g=g, rel=ident, k=sql.Identifier(layer.key)
                        )
                    )
                if publish:
                    _prepare_publication(conn, staging, layer)
                conn.execute(
                    sql.SQL("ALTER TABLE stats.{} ADD PRIMARY KEY ({}, band)").format(
                        sql.Identifier(staging), sql.Identifier(layer.key)
                    )
                )
                conn.execute(
                    sql.SQL("DROP TABLE IF EXISTS stats.{}").format(sql.Identifier(target))
                )
                conn.execute(
                    sql.SQL("ALTER TABLE stats.{} RENAME TO {}").format(
                        sql.Identifier(staging), sql.Identifier(target)
                    )
                )
                conn.execute(
                    sql.SQL("ALTER INDEX stats.{} RENAME TO {}").format(
                        sql.Identifier(f"{staging}_pkey"), sql.Identifier(f"{target}_pkey")
                    )
                )
                if with_geometry:
                    conn.execute(
                        sql.SQL("CREATE INDEX {} ON stats.{} USING gist (geom)").format(
                            sql.Identifier(f"{target}_geom_idx"), sql.Identifier(target)
                        )
                    )
                duration = time.monotonic() - t0
                conn.execute(
                    "INSERT INTO stats.tables (table_name, kind, collection, item, bands, zones, "
                    "n_rows, statistics, options, duration_s) VALUES "
                    "(%s, 'zonal', %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (table_name) DO UPDATE "
                    "SET kind = EXCLUDED.kind, collection = EXCLUDED.collection, item = EXCLUDED.item, "
                    "item_b = NULL, bands = EXCLUDED.bands, zones = EXCLUDED.zones, "
                    "n_rows = EXCLUDED.n_rows, statistics = EXCLUDED.statistics, "
                    "options = EXCLUDED.options, created_at = now(), duration_s = EXCLUDED.duration_s",
                    (
                        target,
                        getattr(item, "collection", None),
                        getattr(item, "id", None),
                        bands_l,
                        layer.name,
                        done * len(bands_l),
                        names,
                        json.dumps(
                            {
                                "raster": str(raster),
                                "percentiles": list(percentiles),
                                "zone_srid": srid,
                                "raster_crs": gcrs.describe_crs(raster_crs),
                            }
                        ),
                        duration,
                    ),
                )
                _register(
                    conn,
                    publish,
                    collection_id,
                    target,
                    layer,
                    key_cols,
                    names,
                    bands_l,
                    grid,
                    item,
                    raster,
                )
        except psycopg.errors.LockNotAvailable:
            raise GisError(
                f"stats.{target} is in use by another session (a long transaction "
                "reading it): try again when it ends; nothing was written."
            ) from None
        finally:
            runner.close()
    return ZonalResult(
        table=f"stats.{target}",
        zones=layer.name,
        n_zones=n_zones,
        n_rows=n_zones * len(bands_l),
        bands=bands_l,
        duration_s=time.monotonic() - t0,
        statistics=names,
    )


# ---------------------------------------------------------------------------------------------
# Publication in the catalog (gis_meta.collections)
# ---------------------------------------------------------------------------------------------

_STAT_TITLES = {
    "count": ("Valid cells (coverage-weighted)", "Số ô hợp lệ (theo tỷ lệ phủ)"),
    "sum": ("Sum", "Tổng"),
    "mean": ("Mean", "Trung bình"),
    "min": ("Minimum", "Nhỏ nhất"),
    "max": ("Maximum", "Lớn nhất"),
    "std": ("Standard deviation", "Độ lệch chuẩn"),
    "frac": ("Fraction of the zone with data", "Tỷ lệ diện tích có dữ liệu"),
}


def zonal_collection_id(table: str) -> str:
    """The catalog id under which ``stats.zonal_<table>`` is published: ``zonal-<table>``
    (``_`` written ``-``).

    >>> zonal_collection_id("pop2020_wards")
    'zonal-pop2020-wards'
    """
    return "zonal-" + table.replace("_", "-")


def _check_collection_id(conn, collection_id: str, target: str) -> None:
    row = conn.execute(
        "SELECT relation_schema || '.' || relation_name FROM gis_meta.collections WHERE id = %s "
        "AND NOT (relation_schema = 'stats' AND relation_name = %s)",
        (collection_id, target),
    ).fetchone()
    if row is not None:
        raise InputError(
            f"--table: the catalog already publishes {row[0]} as {collection_id!r}; choose "
            "another --table name. Nothing was written."
        )


def _prepare_publication(conn, staging: str, layer: ZoneLayer) -> None:
    """Type the geometry column (SRID 4326, the zones' geometry type)."""
    from psycopg import sql

    schema, table = layer.schema_table
    row = conn.execute(
        "SELECT type FROM geometry_columns WHERE f_table_schema = %s AND f_table_name = %s "
        "AND f_geometry_column = %s",
        (schema, table, layer.geom),
    ).fetchone()
    gtype = (row[0] if row else "GEOMETRY") or "GEOMETRY"
    gtype = {
        "POLYGON": "Polygon",
        "MULTIPOLYGON": "MultiPolygon",
        "POINT": "Point",
        "MULTIPOINT": "MultiPoint",
        "LINESTRING": "LineString",
        "MULTILINESTRING": "MultiLineString",
    }.get(gtype.upper(), "Geometry")
    conn.execute(
        sql.SQL(
            "ALTER TABLE stats.{} ALTER COLUMN geom TYPE geometry({}, 4326) "
            "USING ST_SetSRID(geom, 4326)"
        ).format(sql.Identifier(staging), sql.SQL(gtype))
    )


def _register(
    conn,
    publish: bool,
    collection_id: str,
    target: str,
    layer: ZoneLayer,
    key_cols: list[tuple[str, str]],
    names: list[str],
    bands: list[int],
    grid,
    item: Any,
    raster,
) -> None:
    """Publish ``stats.<target>`` in gis_meta.collections (public), or withdraw an earlier
    publication of it when the new table cannot be published (no geometry, or not EPSG:4326).
    Runs in the writing transaction, after the new table took its name."""
    if not publish:
        conn.execute(
            "DELETE FROM gis_meta.collections "
            "WHERE relation_schema = 'stats' AND relation_name = %s",
            (target,),
        )
        return
    from psycopg import sql

    fields: dict[str, dict[str, Any]] = {}
    id_column = "fid" if len(bands) > 1 else layer.key
    if id_column == "fid":  # several rows (bands) per zone: a feature id of its own
        conn.execute(
            sql.SQL(
                "ALTER TABLE stats.{} ADD COLUMN fid bigint GENERATED ALWAYS AS IDENTITY UNIQUE"
            ).format(sql.Identifier(target))
        )
    for c, _t in key_cols:
        if c != id_column:
            fields[c] = {"public": True, "title_en": c.replace("_", " "), "title_vi": c}
    fields["band"] = {"public": True, "title_en": "Band", "title_vi": "Kênh"}
    fields["band_name"] = {"public": True, "title_en": "Band name", "title_vi": "Tên kênh"}
    fields["band_datetime"] = {
        "public": True,
        "title_en": "Band time",
        "title_vi": "Thời gian kênh",
    }
    for s in names:
        en, vi = _STAT_TITLES.get(
            s, (f"{s[1:].replace('_', '.')}th percentile", f"Phân vị {s[1:].replace('_', '.')}")
        )
        fields[s] = {"public": True, "title_en": en, "title_vi": vi}
    source = getattr(item, "ref", None) or Path(str(raster)).name
    band_names = ", ".join(grid.names[b - 1] for b in bands)
    title_en = f"Zonal statistics of {source} ({band_names}) by {layer.name}"
    title_vi = f"Thống kê vùng của {source} ({band_names}) theo {layer.name}"
    conn.execute(
        "INSERT INTO gis_meta.collections (id, relation_schema, relation_name, id_column, "
        "geometry_column, title_vi, title_en, description_vi, description_en, keywords, licence, "
        "attribution, public, fields, sort_order) VALUES "
        "(%s, 'stats', %s, %s, 'geom', %s, %s, %s, %s, %s, %s, %s, true, %s, 210) "
        "ON CONFLICT (id) DO UPDATE SET relation_schema = EXCLUDED.relation_schema, "
        "relation_name = EXCLUDED.relation_name, id_column = EXCLUDED.id_column, "
        "geometry_column = EXCLUDED.geometry_column, title_vi = EXCLUDED.title_vi, "
        "title_en = EXCLUDED.title_en, description_vi = EXCLUDED.description_vi, "
        "description_en = EXCLUDED.description_en, keywords = EXCLUDED.keywords, "
        "licence = EXCLUDED.licence, attribution = EXCLUDED.attribution, public = true, "
        "fields = EXCLUDED.fields",
        (
            collection_id,
            target,
            id_column,
            title_vi,
            title_en,
            "Thống kê vùng (có trọng số theo tỷ lệ phủ của ô) của một lớp raster theo từng vùng.",
            "Zonal statistics (weighted by each cell's coverage) of a raster per zone: "
            + ", ".join(names)
            + ".",
            ["statistics", "zonal", "raster", layer.name],
            "derived; see the raster's licence",
            "HCMC GIS platform (gis.raster.zonal)",
            json.dumps(fields),
        ),
    )


def _num(v: float) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _fmt(b: Sequence[float]) -> str:
    return f"x {b[0]:.4f} to {b[2]:.4f}, y {b[1]:.4f} to {b[3]:.4f}"
