"""Shared helpers of the analysis modules: the metric CRS, input checks, output metadata, progress.

Every analysis computes lengths and areas in :data:`METRIC_CRS` (WGS 84 / UTM zone 48N, metres),
which covers the whole of Ho Chi Minh City (2025 boundaries: 106.1-107.6 E) with a scale error
below 0.1 %. Results are returned in EPSG:4326 (the storage CRS) unless a function says otherwise.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from gis.errors import InputError

#: The projected CRS used for every length, area and distance (metres).
METRIC_CRS = "EPSG:32648"
#: The storage CRS of the platform (lon/lat); results are returned in it.
STORAGE_CRS = "EPSG:4326"

#: ``progress(done, total)`` callbacks, as the CLI's progress bar takes them.
Progress = Callable[[int, int], None]


class EmptyInputError(InputError):
    """An input layer, area of interest or point set has nothing in it."""

    code = "EmptyInput"


class NoRouteError(InputError):
    """An origin and a destination are not connected by the road graph."""

    code = "NoRoute"


# --- checks -------------------------------------------------------------------------------------
def require_rows(df, what: str, hint: str = "") -> None:
    """Raise :class:`EmptyInputError` when ``df`` (a frame or sequence) is empty."""
    if df is None or len(df) == 0:
        raise EmptyInputError(f"{what} is empty: nothing to compute." + (f" {hint}" if hint else ""))


def require_columns(df: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    """Raise :class:`InputError` naming the columns of ``df`` that are missing."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(f"{what} lacks the column(s) {', '.join(missing)}; it has: "
                         f"{', '.join(map(str, df.columns))}.")


def check_range(name: str, value: float, lo: float | None = None, hi: float | None = None,
                *, lo_open: bool = False) -> float:
    """Return ``value`` if ``lo <= value <= hi`` (``lo < value`` when ``lo_open``), else raise.

    The message names the parameter, the value received and the allowed range.
    """
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number; got {value!r}.") from None
    if math.isnan(v):
        raise InputError(f"{name} must be a number; got NaN.")
    bad = (lo is not None and (v <= lo if lo_open else v < lo)) or (hi is not None and v > hi)
    if bad:
        lo_txt = "" if lo is None else (f"> {lo:g}" if lo_open else f">= {lo:g}")
        hi_txt = "" if hi is None else f"<= {hi:g}"
        rng = " and ".join(t for t in (lo_txt, hi_txt) if t)
        raise InputError(f"{name} must be {rng}; got {value!r}.")
    return v


def check_thresholds(name: str, values: Iterable[float], lo: float = 0.0,
                     hi: float | None = None) -> list[float]:
    """A sorted list of distinct positive thresholds, each checked with :func:`check_range`."""
    out = sorted({check_range(name, v, lo, hi, lo_open=True) for v in values})
    if not out:
        raise InputError(f"{name} needs at least one value.")
    return out


def check_choice(name: str, value: str, choices: Iterable[str]) -> str:
    """``value`` if it is one of ``choices``; :class:`InputError` listing them otherwise."""
    choices = list(choices)
    if value not in choices:
        raise InputError(f"{name} must be one of {', '.join(map(str, choices))}; got {value!r}.")
    return value


# --- geometry -----------------------------------------------------------------------------------
def to_metric(gdf):
    """The frame in :data:`METRIC_CRS` (a frame without CRS is taken to be lon/lat)."""
    if gdf.crs is None:
        gdf = gdf.set_crs(STORAGE_CRS)
    return gdf.to_crs(METRIC_CRS)


def point_xy(gdf) -> np.ndarray:
    """(n, 2) metric coordinates of the points of a frame (polygons: their representative point)."""
    import shapely

    g = to_metric(gdf).geometry.values
    if len(g) == 0:
        return np.zeros((0, 2))
    types = shapely.get_type_id(np.asarray(g))
    pts = np.where(types == 0, np.asarray(g), shapely.point_on_surface(np.asarray(g)))
    return shapely.get_coordinates(pts)


def centroids(gdf):
    """Centroids of polygons computed in the metric CRS (a centroid that falls outside its polygon
    is replaced by the polygon's representative point), returned in lon/lat."""
    import geopandas as gpd
    import shapely

    m = to_metric(gdf)
    geoms = np.asarray(m.geometry.values)
    c = shapely.centroid(geoms)
    outside = ~shapely.contains(geoms, c)
    c[outside] = shapely.point_on_surface(geoms[outside])
    return gpd.GeoSeries(c, index=gdf.index, crs=METRIC_CRS).to_crs(STORAGE_CRS)


# --- metadata -----------------------------------------------------------------------------------
def _jsonable(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return None if math.isnan(f) or math.isinf(f) else f
    if isinstance(v, (np.bool_,)):
        return bool(v)
    if isinstance(v, (str, int, bool)) or v is None:
        return v
    return str(v)


def stamp(df, *, analysis: str, title: str, columns: Mapping[str, tuple[str | None, str]],
          assumptions: Iterable[str] = (), parameters: Mapping[str, Any] | None = None,
          **extra: Any):
    """Attach the output metadata to ``df.attrs`` and return ``df``.

    Parameters
    ----------
    analysis : str
        The registry id of the analysis (``planning.land-use``) or the function's name.
    title : str
        A one-line title of the result.
    columns : mapping of column -> (unit, description)
        Unit (``None`` for counts, codes and names) and meaning of each column of interest.
    assumptions : iterable of str
        Assumptions and methods, one sentence each.
    parameters : mapping, optional
        The parameters the result was computed with.
    **extra
        Other facts (totals, tolerances, counts of unreachable points, ...).

    The metadata is JSON-serialisable; :mod:`gis.analysis.output` writes it into every output
    format (GeoPackage metadata, GeoParquet schema metadata, a CSV side file, a PostgreSQL table
    comment and the catalog's field units).
    """
    meta = {
        "analysis": analysis,
        "title": title,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "crs": STORAGE_CRS,
        "metric_crs": METRIC_CRS,
        "units": {c: u for c, (u, _) in columns.items() if c in df.columns},
        "columns": {c: d for c, (_, d) in columns.items() if c in df.columns},
        "assumptions": list(assumptions),
        "parameters": _jsonable(dict(parameters or {})),
    }
    meta.update(_jsonable(extra))
    df.attrs = dict(df.attrs)
    df.attrs.update(meta)
    return df


def metadata_json(df) -> str:
    """The output metadata of ``df`` as JSON text."""
    return json.dumps(_jsonable(dict(df.attrs)), ensure_ascii=False, indent=1)


# --- progress -----------------------------------------------------------------------------------
class Steps:
    """Turns work in named steps (each with optional sub-progress) into ``progress(done, total)``.

    ``total`` is ``steps * 1000`` so that sub-steps show as a smooth bar.
    """

    def __init__(self, progress: Progress | None, steps: int) -> None:
        self.progress = progress
        self.steps = max(1, steps)
        self.i = 0

    def sub(self, done: int, total: int) -> None:
        if self.progress is not None and total > 0:
            frac = min(1.0, done / total)
            self.progress(int((self.i + frac) * 1000), self.steps * 1000)

    def next(self) -> None:
        self.i = min(self.steps, self.i + 1)
        if self.progress is not None:
            self.progress(self.i * 1000, self.steps * 1000)
