"""Coverages of the raster catalog: what a collection's coverage is, and reading parts of it.

A raster collection (``raster.collections``) is served as ONE coverage although it holds many COG
items (scenes, years, ...):

* its **grid** (CRS, resolution, bands) is that of its most recent item (the *primary* item);
* its **time axis** holds the distinct times of its items;
* a request (a box, a time, bands, an output size) is answered from the items of **one time**:
  the most recent time among the items that meet the box and the time asked for. Several items of
  that time (tiles of a mosaic) are mosaicked onto the grid of the first one, in id order, the
  first valid pixel winning. Bands that are themselves time steps (a NetCDF series, STAC band
  ``datetime``) are narrowed to the time asked for.

Pixels are read from the COGs with rasterio: a windowed read (GDAL picks the overview when the
output is coarser) when the grid of the output is the item's own grid, else through a
:class:`rasterio.vrt.WarpedVRT` onto the output grid; nearest-neighbour resampling, so that values
are source values. The output is bounded (:class:`CoverageLimits`) so that no request can ask for a
gigantic array: a request over the limit is an :class:`~gis.errors.InputError` that names the
parameters that make it smaller.

This module knows nothing of HTTP: the API (:mod:`api.coverages`) parses its query parameters
with :func:`parse_coverage_query`, runs :data:`ITEMS_SQL` on its pool, and calls
:func:`read_coverage` in a worker thread, then :func:`to_geotiff` or :func:`to_covjson`. The
STAC API's search is :func:`stac_search_sql`.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from pyproj import CRS

from gis import crs as gcrs
from gis.errors import GisError, InputError, NotFoundError
from gis.query import (
    EPSG_URI,
    SUPPORTED_CRS,
    OutputCrs,
    TimeInterval,
    crs_by_uri,
    parse_bbox,
    parse_datetime,
)
from gis.raster.catalog import _COLUMNS, Item, _item

__all__ = [
    "CRS84_URI",
    "ITEMS_SQL",
    "Coverage",
    "CoverageInfo",
    "CoverageLimits",
    "CoverageQuery",
    "RasterUnavailable",
    "domainset",
    "load_coverages",
    "parse_coverage_query",
    "parse_request_crs",
    "parse_subset",
    "parse_time",
    "rangetype",
    "read_coverage",
    "stac_search_sql",
    "to_covjson",
    "to_geotiff",
]

CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GREGORIAN = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"


class RasterUnavailable(GisError):
    """A catalogued raster file cannot be read (missing or damaged in the store): HTTP 503."""

    code = "RasterUnavailable"
    http_status = 503


@dataclass(frozen=True)
class CoverageLimits:
    """Bounds of one coverage response.

    Attributes
    ----------
    max_side : int
        Cells along either axis of the output.
    max_values : int
        Cells x bands of a GeoTIFF response (2**25: 128 MiB of float32).
    max_json_values : int
        Cells x bands of a CoverageJSON response (text is about 10 times larger).
    max_items : int
        Items mosaicked into one response.
    """

    max_side: int = 8192
    max_values: int = 2**25
    max_json_values: int = 2**20
    max_items: int = 64


# ---------------------------------------------------------------------------------------------
# The coverages of the catalog
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CoverageInfo:
    """A raster collection as a coverage.

    Attributes
    ----------
    id : str
        The raster collection id (``raster.collections.id``).
    stac : dict
        Its STAC Collection JSON (``raster.stac_collections``), links not yet added.
    n_items : int
    primary : Item or None
        The most recent item (None for a collection without items): its grid, CRS and bands are
        the coverage's.
    times : tuple of str
        The distinct times (start of each item's time, RFC 3339) of its items, oldest first.
    """

    id: str
    stac: dict[str, Any]
    n_items: int
    primary: Item | None
    times: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        return self.stac.get("title") or self.id

    @property
    def crs(self) -> CRS:
        """The coverage's native CRS (its primary item's)."""
        if self.primary is None:
            return CRS.from_epsg(4326)
        return item_crs(self.primary)

    @property
    def geographic(self) -> bool:
        return self.crs.is_geographic

    @property
    def crs_uri(self) -> str:
        """OGC URI of the native CRS (CRS84 for lon/lat WGS 84 grids, whose x is longitude)."""
        return native_crs_uri(self.crs)

    @property
    def axis_labels(self) -> tuple[str, str]:
        """Labels of the x and y axes: ``Lon``/``Lat`` or ``E``/``N``."""
        return ("Lon", "Lat") if self.geographic else ("E", "N")

    @property
    def bbox(self) -> list[float]:
        """lon/lat extent."""
        return list(self.stac["extent"]["spatial"]["bbox"][0])


def item_crs(item: Item) -> CRS:
    """The pyproj CRS of an item."""
    if item.epsg is not None:
        return CRS.from_epsg(item.epsg)
    return CRS.from_wkt(item.crs_wkt)


def native_crs_uri(crs: CRS) -> str:
    """OGC URI of a grid's CRS; WGS 84 lon/lat grids are CRS84 (x is longitude)."""
    if crs.is_geographic and crs.to_epsg() == 4326:
        return CRS84_URI
    try:
        return gcrs.crs_uri(crs)
    except GisError:
        return crs.to_wkt()


_COVERAGES_SQL = f"""
SELECT s.id, s.content, s.n_items, p.*
FROM raster.stac_collections s
LEFT JOIN LATERAL (
    SELECT {_COLUMNS} FROM raster.items i WHERE i.collection = s.id
    ORDER BY i.dt_start DESC, i.id LIMIT 1
) p ON true
ORDER BY s.id
"""

_TIMES_SQL = """
SELECT collection, (array_agg(DISTINCT raster.rfc3339(dt_start) ORDER BY raster.rfc3339(dt_start)))[1:1000]
FROM raster.items GROUP BY collection
"""


def load_coverages(conn) -> dict[str, CoverageInfo]:
    """Every raster collection of the catalog as a :class:`CoverageInfo`, by raster id.

    Parameters
    ----------
    conn : psycopg.Connection
        An open (synchronous) connection.
    """
    times = dict(conn.execute(_TIMES_SQL).fetchall())
    out = {}
    for row in conn.execute(_COVERAGES_SQL).fetchall():
        cid, content, n = row[0], row[1], int(row[2] or 0)
        primary = _item(row[3:]) if row[3] is not None else None
        out[cid] = CoverageInfo(cid, content, n, primary, tuple(times.get(cid) or ()))
    return out


# ---------------------------------------------------------------------------------------------
# Parsing the request
# ---------------------------------------------------------------------------------------------

#: axis label (lower case) -> canonical axis: lon/lat are always CRS84 degrees; x/y are the
#: coverage's native CRS (E/N of a projected grid, lon/lat of a geographic one)
_AXES = {
    "lon": "lon",
    "long": "lon",
    "longitude": "lon",
    "lat": "lat",
    "latitude": "lat",
    "e": "x",
    "x": "x",
    "easting": "x",
    "n": "y",
    "y": "y",
    "northing": "y",
    "time": "time",
    "t": "time",
    "date": "time",
    "datetime": "time",
    "ansi": "time",
}
_AXIS_ITEM = re.compile(r"\s*([A-Za-z][A-Za-z0-9_]*)\s*\(([^()]*)\)\s*(,|$)")
_BOUND = r'(?:"[^"]*"|[^:"]*)'
_BODY = re.compile(rf"^\s*({_BOUND})\s*(?::\s*({_BOUND})\s*)?$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def _axis_items(text: str, parameter: str) -> list[tuple[str, str]]:
    """``Lat(1:2),Lon(3:4)`` -> [("Lat", "1:2"), ("Lon", "3:4")]."""
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _AXIS_ITEM.match(text, pos)
        if not m or (m.group(3) == "," and m.end() >= len(text)):
            shown = text if len(text) <= 80 else text[:77] + "..."
            raise InputError(
                f"Parameter {parameter}: {shown!r} is not a list of AXIS(LOW:HIGH) or AXIS(VALUE), "
                'e.g. Lat(10.7:10.8),Lon(106.6:106.7) or time("2020-01-01":"2020-12-31")'
            )
        out.append((m.group(1), m.group(2)))
        pos = m.end()
    if not out:
        raise InputError(f"Parameter {parameter}: empty; give e.g. Lat(10.7:10.8),Lon(106.6:106.7)")
    return out


def _axis(label: str, parameter: str) -> str:
    axis = _AXES.get(label.lower())
    if axis is None:
        raise InputError(
            f"Parameter {parameter}: {label!r} is not an axis of the coverages; use Lon and Lat "
            "(degrees, CRS84), E and N (or x and y: the coverage's own CRS) and time"
        )
    return axis


def _unquote(v: str | None) -> str | None:
    if v is None:
        return None
    v = v.strip()
    if len(v) >= 2 and v[0] == v[-1] == '"':
        v = v[1:-1].strip()
    return None if v in ("*", "", "..") else v


def _number(v: str | None, label: str, parameter: str) -> float | None:
    if v is None:
        return None
    if not _NUMBER.match(v) or not math.isfinite(float(v)):
        raise InputError(f"Parameter {parameter}: {label}({v}) is not a number")
    return float(v)


def parse_subset(values: Sequence[str], parameter: str = "subset") -> dict[str, tuple[Any, Any]]:
    """Parse OGC API - Coverages ``subset`` values.

    Parameters
    ----------
    values : sequence of str
        Each ``AXIS(LOW:HIGH)`` or ``AXIS(VALUE)``, several separated by commas; ``*`` is an open
        end; time values may be quoted (they must be when they hold a ``:``).
    parameter : str
        The parameter's name, for messages.

    Returns
    -------
    dict
        Canonical axis (``lon``, ``lat``, ``x``, ``y``, ``time``) -> ``(low, high)``: floats (or
        None for an open end) for the spatial axes, strings (or None) for time.

    Raises
    ------
    gis.errors.InputError
        Bad syntax, an unknown axis, an axis given twice, low above high.

    Examples
    --------
    >>> parse_subset(["Lat(10.7:10.8),Lon(106.6:*)"])
    {'lat': (10.7, 10.8), 'lon': (106.6, None)}
    >>> parse_subset(['time("2020-01-01T00:00:00Z")'])["time"]
    ('2020-01-01T00:00:00Z', '2020-01-01T00:00:00Z')
    """
    out: dict[str, tuple[Any, Any]] = {}
    for text in values:
        for label, body in _axis_items(text, parameter):
            axis = _axis(label, parameter)
            if axis in out:
                raise InputError(f"Parameter {parameter}: the axis {label} is given twice")
            m = _BODY.match(body)
            if not m:
                raise InputError(
                    f"Parameter {parameter}: {label}({body}) is not LOW:HIGH or a value; quote time "
                    'values that hold a colon: time("2020-01-01T00:00:00Z":"2020-06-30T00:00:00Z")'
                )
            lo_raw, hi_raw = m.group(1), m.group(2)
            point = hi_raw is None
            lo, hi = _unquote(lo_raw), _unquote(lo_raw if point else hi_raw)
            if axis == "time":
                out[axis] = (lo, hi)
                continue
            a, b = _number(lo, label, parameter), _number(hi, label, parameter)
            if a is not None and b is not None and a > b:
                raise InputError(
                    f"Parameter {parameter}: {label}({body}) has its low above its high"
                )
            if axis == "lat" and any(v is not None and not -90 <= v <= 90 for v in (a, b)):
                raise InputError(
                    f"Parameter {parameter}: {label}({body}) is not a latitude (-90 to 90)"
                )
            out[axis] = (a, b)
    if ("lon" in out or "lat" in out) and ("x" in out or "y" in out):
        raise InputError(
            f"Parameter {parameter}: give the area either in Lon/Lat (degrees) or in E/N (the "
            "coverage's CRS), not both"
        )
    return out


_YEAR = re.compile(r"^\d{4}$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def _expand(side: str | None, end: bool) -> str | None:
    """A year or a month as the first or last day of it; anything else unchanged."""
    if side is None:
        return None
    s = side.strip()
    if _YEAR.match(s):
        return f"{s}-12-31" if end else f"{s}-01-01"
    m = _MONTH.match(s)
    if m and 1 <= int(m.group(2)) <= 12:
        y, mo = int(m.group(1)), int(m.group(2))
        last = (datetime(y + (mo == 12), mo % 12 + 1, 1) - datetime(y, mo, 1)).days
        return f"{s}-{last:02d}" if end else f"{s}-01"
    return s


def parse_time(text: str, parameter: str = "datetime") -> TimeInterval | None:
    """The OGC ``datetime`` parameter, plus years (``2020``) and months (``2020-06``) as periods.

    Returns None for no constraint (``../..``).

    Examples
    --------
    >>> iv = parse_time("2020")
    >>> iv.start.isoformat(), iv.end.date().isoformat()
    ('2020-01-01T00:00:00+00:00', '2020-12-31')
    """
    raw = (text or "").strip()
    if "/" in raw:
        a, _, b = raw.partition("/")
        a2 = _expand(a, False) if a.strip() not in ("", "..") else ".."
        b2 = _expand(b, True) if b.strip() not in ("", "..") else ".."
        if "/" in b:
            a2, b2 = a, b  # let parse_datetime name the problem
        return parse_datetime(f"{a2}/{b2}", parameter)
    if _YEAR.match(raw) or _MONTH.match(raw):
        return parse_datetime(f"{_expand(raw, False)}/{_expand(raw, True)}", parameter)
    return parse_datetime(raw, parameter)


def _axis_size(
    values: Sequence[str], parameter: str, integer: bool
) -> tuple[float | None, float | None]:
    """``x(2),y(3)`` or ``Lon(100),Lat(50)`` -> (for x, for y)."""
    x = y = None
    for text in values:
        for label, body in _axis_items(text, parameter):
            axis = _axis(label, parameter)
            if axis == "time":
                raise InputError(f"Parameter {parameter}: the time axis cannot be scaled")
            v = body.strip()
            ok = re.fullmatch(r"\d+", v) if integer else _NUMBER.match(v)
            if not ok or float(v) <= 0 or not math.isfinite(float(v)):
                what = "a whole number of cells" if integer else "a positive number"
                raise InputError(f"Parameter {parameter}: {label}({body}) is not {what}")
            if axis in ("x", "lon"):
                if x is not None:
                    raise InputError(f"Parameter {parameter}: the axis {label} is given twice")
                x = float(v)
            else:
                if y is not None:
                    raise InputError(f"Parameter {parameter}: the axis {label} is given twice")
                y = float(v)
    return x, y


@dataclass(frozen=True)
class CoverageQuery:
    """A coverage request, validated.

    Attributes
    ----------
    box : tuple of float or None
        The area asked for, in ``box_crs`` (x = easting/longitude); None: the whole coverage.
    box_crs : pyproj.CRS or None
    box_parameter : str
        The parameter that gave the area (``subset``, ``bbox``), for messages.
    interval : TimeInterval or None
        The time asked for.
    time_parameter : str
    properties : tuple of str or None
        Bands by name (or ``eo:common_name``, or 1-based number), in the order asked.
    scale_factor : (float, float) or None
        Downsampling factors along x and y (2: half as many cells).
    size : (int or None, int or None)
        Output cells along x and y (either may be None: from the other, keeping the aspect).
    size_parameter : str
    crs : pyproj.CRS or None
        The output CRS (``crs``); None: the coverage's native CRS. WGS 84 lon/lat (CRS84 and
        EPSG:4326) is EPSG:4326 here: grids are always x = longitude.
    crs_uri : str or None
        The output CRS as asked for (its OGC URI), for ``Content-Crs``.
    """

    box: tuple[float, float, float, float] | None = None
    box_crs: CRS | None = None
    box_parameter: str = "subset"
    interval: TimeInterval | None = None
    time_parameter: str = "datetime"
    properties: tuple[str, ...] | None = None
    scale_factor: tuple[float, float] | None = None
    size: tuple[int | None, int | None] = (None, None)
    size_parameter: str = "scale-size"
    crs: CRS | None = None
    crs_uri: str | None = None

    @property
    def box_lonlat(self) -> tuple[float, float, float, float] | None:
        """The area in lon/lat (a box around it), to find the items."""
        if self.box is None:
            return None
        r = gcrs.make_transformer(self.box_crs, "OGC:CRS84")
        b = r.transform_bounds(self.box)
        if not all(math.isfinite(v) for v in b):
            raise InputError(
                f"Parameter {self.box_parameter}: the area {_fmt(self.box)} cannot be placed on "
                "the globe (outside the CRS's area of use)"
            )
        return b


def parse_request_crs(value: str, parameter: str, info: CoverageInfo) -> tuple[OutputCrs, CRS]:
    """A CRS of a coverage request (``crs``, ``subset-crs``, ``bbox-crs``).

    The CRSs of the Features API (:data:`gis.query.SUPPORTED_CRS`: CRS84, EPSG:4326, 3857,
    32648 and the VN-2000 grids) and the coverage's own CRS are accepted, as OGC URIs, safe
    CURIEs (``[EPSG:3857]``), ``EPSG:3857`` or URNs.

    Returns
    -------
    (OutputCrs, pyproj.CRS)
        The CRS (its URI, axis order) and the pyproj CRS of grids in it (CRS84 and EPSG:4326
        are both EPSG:4326: x = longitude).

    Raises
    ------
    gis.errors.CRSError
        An unsupported or malformed CRS, naming the parameter and the value.

    Examples
    --------
    >>> oc, pc = parse_request_crs("[EPSG:9210]", "crs", info)  # doctest: +SKIP
    >>> oc.uri, pc.to_epsg()  # doctest: +SKIP
    ('http://www.opengis.net/def/crs/EPSG/0/9210', 9210)
    """
    try:
        oc = crs_by_uri(value, parameter)
    except GisError:
        native = info.crs
        epsg = native.to_epsg()
        text = value.strip().strip("[]").strip()
        names = {info.crs_uri}
        if epsg is not None:
            names |= {f"EPSG:{epsg}", EPSG_URI.format(epsg), f"urn:ogc:def:crs:EPSG::{epsg}"}
        if text not in names and text.upper() not in {n.upper() for n in names}:
            raise
        oc = OutputCrs(info.crs_uri, epsg, "python", 3, geographic=native.is_geographic)
        return oc, native
    return oc, CRS.from_epsg(oc.epsg or 4326)


def supported_crs_uris(info: CoverageInfo) -> list[str]:
    """The output CRSs of a coverage (its ``crs`` member): its own CRS first."""
    out = [info.crs_uri]
    out += [u for u in SUPPORTED_CRS if u not in out]
    return out


def parse_coverage_query(params: Mapping[str, str | None], info: CoverageInfo) -> CoverageQuery:
    """Validate the parameters of ``/collections/{id}/coverage`` for the coverage ``info``.

    Parameters
    ----------
    params : mapping
        ``subset`` (repeatable values already joined with ``,``), ``bbox``, ``bbox-crs``,
        ``datetime``, ``properties``, ``scale-factor``, ``scale-axes``, ``scale-size``,
        ``width``, ``height``; absent ones None.
    info : CoverageInfo

    Returns
    -------
    CoverageQuery

    Raises
    ------
    gis.errors.InputError
        Naming the parameter: bad syntax, both ``bbox`` and a spatial subset, both ``datetime``
        and a time subset, several scaling parameters at once.
    """
    subset = parse_subset([params["subset"]]) if params.get("subset") else {}
    box: tuple[float, float, float, float] | None = None
    box_crs: CRS | None = None
    box_parameter = "subset"
    if params.get("bbox-crs") and not params.get("bbox"):
        raise InputError("Parameter bbox-crs: give it with bbox")
    if params.get("subset-crs") and not any(a in subset for a in ("lon", "lat", "x", "y")):
        raise InputError(
            "Parameter subset-crs: give it with a spatial subset, e.g. "
            "subset=E(600000:602000),N(1190000:1192000)&subset-crs=[EPSG:9210]"
        )
    out_crs = out_uri = None
    if params.get("crs"):
        oc, out_crs = parse_request_crs(params["crs"], "crs", info)
        out_uri = oc.uri
    if params.get("bbox"):
        if any(a in subset for a in ("lon", "lat", "x", "y")):
            raise InputError(
                "Parameter bbox: give the area either with bbox or with subset, not both"
            )
        ocrs, box_crs = parse_request_crs(params.get("bbox-crs") or CRS84_URI, "bbox-crs", info)
        box, box_parameter = parse_bbox(params["bbox"], ocrs, "bbox"), "bbox"
    elif params.get("subset-crs"):
        box, box_crs = _subset_in_crs(subset, params["subset-crs"], info)
    elif any(a in subset for a in ("lon", "lat")):
        ext = info.bbox
        lo_x, hi_x = subset.get("lon", (None, None))
        lo_y, hi_y = subset.get("lat", (None, None))
        box = (
            ext[0] if lo_x is None else lo_x,
            ext[1] if lo_y is None else lo_y,
            ext[2] if hi_x is None else hi_x,
            ext[3] if hi_y is None else hi_y,
        )
        box_crs = CRS.from_user_input("OGC:CRS84")
    elif any(a in subset for a in ("x", "y")):
        native = info.crs
        ext = _native_extent(info)
        lo_x, hi_x = subset.get("x", (None, None))
        lo_y, hi_y = subset.get("y", (None, None))
        box = (
            ext[0] if lo_x is None else lo_x,
            ext[1] if lo_y is None else lo_y,
            ext[2] if hi_x is None else hi_x,
            ext[3] if hi_y is None else hi_y,
        )
        box_crs = native
    if box is not None and (box[0] > box[2] or box[1] > box[3]):
        raise InputError(
            f"Parameter {box_parameter}: the area {_fmt(box)} is empty (an open end lies beyond "
            "the other end?)"
        )

    interval = None
    time_parameter = "datetime"
    if params.get("datetime") and "time" in subset:
        raise InputError(
            "Parameter datetime: give the time either with datetime or with subset, not both"
        )
    if params.get("datetime"):
        interval = parse_time(params["datetime"], "datetime")
    elif "time" in subset:
        lo, hi = subset["time"]
        time_parameter = "subset"
        if lo is not None and lo == hi:
            interval = parse_time(lo, "subset")
        else:
            lo_i = parse_time(lo, "subset") if lo else None
            hi_i = parse_time(hi, "subset") if hi else None
            start = lo_i.start if lo_i else None
            end = hi_i.end if hi_i else None
            if start is not None and end is not None and start > end:
                raise InputError(f"Parameter subset: time({lo}:{hi}) ends before it starts")
            interval = TimeInterval(start, end) if (start or end) else None

    props = None
    if params.get("properties") is not None:
        props = tuple(p.strip() for p in params["properties"].split(",") if p.strip())
        if not props:
            raise InputError("Parameter properties: give one or more band names, comma-separated")

    scale_factor = None
    size: tuple[int | None, int | None] = (None, None)
    size_parameter = "scale-size"
    given = [p for p in ("scale-factor", "scale-axes", "scale-size") if params.get(p)]
    wh = [p for p in ("width", "height") if params.get(p)]
    if len(given) + (1 if wh else 0) > 1:
        names = given + (["width/height"] if wh else [])
        raise InputError(
            f"Parameter {names[1]}: give only one of scale-factor, scale-axes, "
            f"scale-size or width/height (got {', '.join(names)})"
        )
    if params.get("scale-factor"):
        v = params["scale-factor"].strip()
        if not _NUMBER.match(v) or not math.isfinite(float(v)) or float(v) <= 0:
            raise InputError(
                f"Parameter scale-factor: {v!r} is not a positive number (2: half as "
                "many cells along each axis)"
            )
        scale_factor = (float(v), float(v))
    elif params.get("scale-axes"):
        fx, fy = _axis_size([params["scale-axes"]], "scale-axes", integer=False)
        scale_factor = (fx or 1.0, fy or 1.0)
    elif params.get("scale-size"):
        sx, sy = _axis_size([params["scale-size"]], "scale-size", integer=True)
        size = (int(sx) if sx else None, int(sy) if sy else None)
    elif wh:
        vals = []
        for p in ("width", "height"):
            v = params.get(p)
            if v is None:
                vals.append(None)
                continue
            if not re.fullmatch(r"\s*\d{1,12}\s*", v) or int(v) <= 0:
                raise InputError(f"Parameter {p}: {v!r} is not a positive whole number of cells")
            vals.append(int(v))
        size, size_parameter = (vals[0], vals[1]), wh[0]
    return CoverageQuery(
        box,
        box_crs,
        box_parameter,
        interval,
        time_parameter,
        props,
        scale_factor,
        size,
        size_parameter,
        out_crs,
        out_uri,
    )


def _subset_in_crs(
    subset: dict[str, tuple[Any, Any]], crs_text: str, info: CoverageInfo
) -> tuple[tuple[float, float, float, float], CRS]:
    """The area of a spatial ``subset`` whose axes are in ``subset-crs``."""
    oc, pc = parse_request_crs(crs_text, "subset-crs", info)
    if not oc.geographic and any(a in subset for a in ("lon", "lat")):
        raise InputError(
            f"Parameter subset: the axes of subset-crs {oc.label} are E and N (or x and y), "
            "not Lon and Lat"
        )
    lo_x, hi_x = subset.get("lon", subset.get("x", (None, None)))
    lo_y, hi_y = subset.get("lat", subset.get("y", (None, None)))
    if oc.geographic and any(
        v is not None and not -90 <= v <= 90 for v in subset.get("y", (None, None))
    ):
        raise InputError("Parameter subset: the latitude (N or y) is not between -90 and 90")
    ext = (0.0, 0.0, 0.0, 0.0)
    if None in (lo_x, hi_x, lo_y, hi_y):
        ext = gcrs.make_transformer(info.crs, pc).transform_bounds(_native_extent(info))
    box = (
        ext[0] if lo_x is None else lo_x,
        ext[1] if lo_y is None else lo_y,
        ext[2] if hi_x is None else hi_x,
        ext[3] if hi_y is None else hi_y,
    )
    return box, pc


# ---------------------------------------------------------------------------------------------
# Finding the items
# ---------------------------------------------------------------------------------------------

#: The items of a collection that meet a lon/lat box and a time, most recent first.
#: Parameters: collection, t0, t1 (timestamptz or None), x0, y0, x1, y1 (or None), limit.
ITEMS_SQL = f"""
SELECT {_COLUMNS} FROM raster.items
WHERE collection = %(collection)s
  AND (%(t0)s::timestamptz IS NULL OR dt_end >= %(t0)s::timestamptz)
  AND (%(t1)s::timestamptz IS NULL OR dt_start <= %(t1)s::timestamptz)
  AND (%(x0)s::float8 IS NULL
       OR ST_Intersects(geom, ST_MakeEnvelope(%(x0)s, %(y0)s, %(x1)s, %(y1)s, 4326)))
ORDER BY dt_start DESC, id
LIMIT %(limit)s
"""


def items_params(collection: str, q: CoverageQuery, limit: int) -> dict[str, Any]:
    """Bind parameters of :data:`ITEMS_SQL` for a query."""
    b = q.box_lonlat
    iv = q.interval
    return {
        "collection": collection,
        "t0": iv.start if iv else None,
        "t1": iv.end if iv else None,
        "x0": b[0] if b else None,
        "y0": b[1] if b else None,
        "x1": b[2] if b else None,
        "y1": b[3] if b else None,
        "limit": limit,
    }


def items_from_rows(rows) -> list[Item]:
    """:class:`Item` objects of :data:`ITEMS_SQL` rows."""
    return [_item(r) for r in rows]


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


@dataclass
class Coverage:
    """A part of a coverage, read.

    Attributes
    ----------
    data : numpy.ma.MaskedArray
        ``(bands, rows, cols)``, the items' data type, masked where there is no data.
    crs : pyproj.CRS
    crs_uri : str
    transform : affine.Affine
    bands : list of dict
        The STAC band objects of the bands read (name, unit, scale, offset, nodata...).
    nodata : float or None
        The items' nodata value.
    items : list of str
        ``collection/id`` of the items read.
    time : str or None
        The items' time (RFC 3339 instant, or ``start/end``).
    axis_labels : (str, str)
    collection : str
    """

    data: np.ma.MaskedArray
    crs: CRS
    crs_uri: str
    transform: Any
    bands: list[dict[str, Any]]
    nodata: float | None
    items: list[str]
    time: str | None
    axis_labels: tuple[str, str]
    collection: str
    band_times: list[str | None] = field(default_factory=list)

    @property
    def width(self) -> int:
        return int(self.data.shape[2])

    @property
    def height(self) -> int:
        return int(self.data.shape[1])

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        t = self.transform
        return (t.c, t.f + t.e * self.height, t.c + t.a * self.width, t.f)


def _item_time(item: Item) -> datetime:
    return item.datetime or item.start_datetime


def _time_text(item: Item) -> str:
    def z(t: datetime) -> str:
        return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    if item.datetime is not None:
        return z(item.datetime)
    return f"{z(item.start_datetime)}/{z(item.end_datetime)}"


def _grid_bounds(item: Item) -> tuple[float, float, float, float]:
    a, b, c, d, e, f = item.transform
    xs = [c, c + a * item.width + b * item.height, c + a * item.width, c + b * item.height]
    ys = [f, f + d * item.width + e * item.height, f + d * item.width, f + e * item.height]
    return (min(xs), min(ys), max(xs), max(ys))


def _native_extent(info: CoverageInfo) -> tuple[float, float, float, float]:
    if info.primary is None:
        return tuple(info.bbox)  # type: ignore[return-value]
    return _grid_bounds(info.primary)


def _fmt(b: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:.6g}" for v in b) + ")"


def _select_bands(item: Item, q: CoverageQuery) -> list[int]:
    """1-based band indexes, by ``properties`` and by the time asked for (time-step bands)."""
    if q.properties is None:
        idx = list(range(1, len(item.bands) + 1))
    else:
        idx = []
        for p in q.properties:
            if re.fullmatch(r"\d+", p) and 1 <= int(p) <= len(item.bands):
                i = int(p)
            else:
                key = p.lower()
                found = [
                    k + 1
                    for k, b in enumerate(item.bands)
                    if b["name"].lower() == key or str(b.get("eo:common_name", "")).lower() == key
                ]
                if not found:
                    names = item.band_names
                    shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
                    raise InputError(
                        f"Parameter properties: the coverage {item.collection!r} has no band "
                        f"{p!r}; its bands: {shown}"
                    )
                i = found[0]
            if i in idx:
                raise InputError(f"Parameter properties: the band {p!r} is asked for twice")
            idx.append(i)
    iv = q.interval
    if iv is not None and any(item.bands[i - 1].get("datetime") for i in idx):
        kept = []
        for i in idx:
            t = item.bands[i - 1].get("datetime")
            if t is None:
                kept.append(i)
                continue
            try:
                bt = datetime.fromisoformat(str(t))
            except ValueError:
                kept.append(i)
                continue
            bt = bt if bt.tzinfo else bt.replace(tzinfo=UTC)
            if (iv.start is None or bt >= iv.start) and (iv.end is None or bt <= iv.end):
                kept.append(i)
        if not kept:
            raise InputError(
                f"Parameter {q.time_parameter}: no band (time step) of {item.ref} falls in the time "
                "asked for"
            )
        idx = kept
    return idx


#: a size above any limit, for absurd scalings (the limit check then refuses them)
_HUGE = 2**40


def _cells(v: float) -> int:
    return _HUGE if not math.isfinite(v) or v >= _HUGE else max(1, round(v))


def _output_size(w: int, h: int, q: CoverageQuery) -> tuple[int, int]:
    if q.scale_factor is not None:
        fx, fy = q.scale_factor
        return _cells(w / fx), _cells(h / fy)
    sx, sy = (None if v is None else min(v, _HUGE) for v in q.size)
    if sx and sy:
        return sx, sy
    if sx:
        return sx, _cells(h * sx / w)
    if sy:
        return _cells(w * sy / h), sy
    return w, h


def _check_size(
    w: int,
    h: int,
    n: int,
    q: CoverageQuery,
    limits: CoverageLimits,
    json_out: bool,
    native: tuple[int, int],
) -> None:
    limit = limits.max_json_values if json_out else limits.max_values
    side = max(w, h)
    values = w * h * n
    if side <= limits.max_side and values <= limit:
        return
    factor = max(side / limits.max_side, math.sqrt(values / limit))
    hint = math.ceil(factor * max(native) / max(w, h) * 10) / 10
    what = "CoverageJSON " if json_out else ""
    scale_param = (
        "scale-factor"
        if q.scale_factor is not None
        else (q.size_parameter if any(q.size) else "scale-factor")
    )
    raise InputError(
        f"Parameter {scale_param}: the {what}output would be {w} x {h} cells x {n} band(s) = "
        f"{values:,} values, over the limit of {limit:,} values and {limits.max_side} cells a "
        f"side; ask for a smaller area (subset or bbox), fewer bands (properties), or a coarser "
        f"grid (e.g. scale-factor={hint:g})"
        + ("" if not json_out else ", or f=GeoTIFF (its limit is larger)")
    )


def _warped_grid(
    native: CRS, out_crs: CRS, nb: tuple[float, float, float, float], w: int, h: int, q
) -> tuple[Any, int, int]:
    """The grid of a reprojected coverage: (transform, width, height) in ``out_crs``.

    It covers the native window ``nb`` (``w`` x ``h`` cells) reprojected, cut to the area asked
    for when that area is given in ``out_crs`` itself; its cell size is GDAL's suggestion for the
    warp (about as many cells as the native window).
    """
    from affine import Affine
    from rasterio.warp import calculate_default_transform

    box_t = gcrs.make_transformer(native, out_crs).transform_bounds(nb)
    if (
        q.box is not None
        and q.box_crs is not None
        and q.box_crs.equals(out_crs, ignore_axis_order=True)
    ):
        box_t = (
            max(box_t[0], q.box[0]),
            max(box_t[1], q.box[1]),
            min(box_t[2], q.box[2]),
            min(box_t[3], q.box[3]),
        )
    if not all(math.isfinite(v) for v in box_t) or box_t[0] >= box_t[2] or box_t[1] >= box_t[3]:
        raise InputError(
            f"Parameter crs: the coverage's area {_fmt(nb)} cannot be converted to "
            f"{gcrs.describe_crs(out_crs)}"
        )
    try:
        t, _, _ = calculate_default_transform(gdal_crs(native), gdal_crs(out_crs), w, h, *nb)
    except Exception:  # noqa: BLE001  # GDAL's CRSError/CPLE_* vary with the failure
        raise InputError(
            f"Parameter crs: the coverage cannot be reprojected to {gcrs.describe_crs(out_crs)}"
        ) from None
    rx, ry = abs(t.a), abs(t.e)
    gw = max(1, round((box_t[2] - box_t[0]) / rx))
    gh = max(1, round((box_t[3] - box_t[1]) / ry))
    if gw > _HUGE or gh > _HUGE:
        gw, gh = min(gw, _HUGE), min(gh, _HUGE)
    grid_t = Affine(
        (box_t[2] - box_t[0]) / gw, 0.0, box_t[0], 0.0, -(box_t[3] - box_t[1]) / gh, box_t[3]
    )
    return grid_t, gw, gh


def gdal_crs(crs: CRS):
    """The rasterio CRS for a warp in ``crs``.

    A VN-2000 CRS is bound to WGS 84 with the official transformation (:data:`gis.crs.
    VN2000_TOWGS84`, written in the position-vector convention of TOWGS84), so that GDAL warps
    rasters exactly as :func:`gis.crs.make_transformer` moves vectors; left alone, PROJ would
    choose "VN-2000 to WGS 84 (1)" (about 0.8 m off in HCMC), and GDAL drops a TOWGS84 of a CRS
    that has an EPSG code (hence no AUTHORITY in the WKT given to GDAL).
    """
    from pyproj.crs import BoundCRS
    from pyproj.crs.coordinate_operation import ToWGS84Transformation
    from rasterio.crs import CRS as RioCRS

    if gcrs.is_vn2000(crs) and not crs.is_bound:
        tx, ty, tz, rx, ry, rz, s = gcrs.VN2000_TOWGS84
        bound = BoundCRS(
            source_crs=crs,
            target_crs=CRS.from_epsg(4326),
            transformation=ToWGS84Transformation(crs.geodetic_crs, tx, ty, tz, -rx, -ry, -rz, s),
        )
        # without its AUTHORITY nodes: GDAL would take the CRS for its EPSG code and drop the
        # TOWGS84
        wkt = re.sub(r',\s*AUTHORITY\["[^"]*","[^"]*"\]', "", bound.to_wkt("WKT1_GDAL"))
        return RioCRS.from_wkt(wkt)
    epsg = crs.to_epsg()
    return RioCRS.from_epsg(epsg) if epsg is not None else RioCRS.from_wkt(crs.to_wkt())


def read_coverage(
    items: Sequence[Item],
    store_root: str | Path,
    q: CoverageQuery,
    *,
    limits: CoverageLimits | None = None,
    json_out: bool = False,
) -> Coverage:
    """Read the part of a coverage that ``q`` asks for.

    Parameters
    ----------
    items : sequence of Item
        The items that meet the query's box and time, most recent first (:data:`ITEMS_SQL`).
    store_root : path
        The raster store (``Settings.raster_dir``).
    q : CoverageQuery
    limits : CoverageLimits, optional
    json_out : bool
        The output will be CoverageJSON (smaller limit).

    Returns
    -------
    Coverage

    Raises
    ------
    gis.errors.InputError
        The area lies outside the coverage, no item at the time asked for, an unknown band, or
        an output over the limits (naming the parameter).
    RasterUnavailable
        An item's file is missing or cannot be read.

    Examples
    --------
    >>> q = parse_coverage_query({"subset": "Lat(10.75:10.8),Lon(106.65:106.7)"}, info)  # doctest: +SKIP
    >>> cov = read_coverage(items, settings.raster_dir, q)  # doctest: +SKIP
    >>> to_geotiff(cov)[:4]  # doctest: +SKIP
    b'II*\\x00'
    """
    from affine import Affine

    limits = limits or CoverageLimits()
    if not items:
        if q.box is not None and q.interval is None:
            raise InputError(
                f"Parameter {q.box_parameter}: the area asked for {_fmt(q.box)} lies outside the "
                "coverage (no item covers it); see its extent in the collection document"
            )
        if q.box is None:
            raise InputError(
                f"Parameter {q.time_parameter}: the coverage has no item at the time asked for; "
                "see its temporal extent in the collection document"
            )
        raise InputError(
            f"Parameters {q.box_parameter} and {q.time_parameter}: no item of the coverage meets "
            "both the area and the time asked for (the area may lie outside the coverage); see "
            "its extent in the collection document"
        )
    first_t = _item_time(items[0])
    group = [it for it in items if _item_time(it) == first_t][: limits.max_items]
    group.sort(key=lambda it: it.id)
    primary = group[0]
    native = item_crs(primary)
    a, b, c, d, e, f = primary.transform
    if b != 0 or d != 0 or a <= 0 or e >= 0:
        raise RasterUnavailable(
            f"The item {primary.ref} has a rotated or flipped grid, which is not served as a "
            "coverage; use its COG (STAC asset) instead."
        )
    # the items' extent, in the native CRS
    ub = None
    for it in group:
        gb = _grid_bounds(it)
        if it is not primary and not item_crs(it).equals(native):
            gb = gcrs.make_transformer(item_crs(it), native).transform_bounds(gb)
        ub = (
            gb
            if ub is None
            else (min(ub[0], gb[0]), min(ub[1], gb[1]), max(ub[2], gb[2]), max(ub[3], gb[3]))
        )
    # the area asked for, in the native CRS
    if q.box is not None:
        r = gcrs.make_transformer(q.box_crs, native)
        rb = tuple(q.box) if r.is_identity else r.transform_bounds(q.box)
        if not all(math.isfinite(v) for v in rb):
            raise InputError(
                f"Parameter {q.box_parameter}: the area {_fmt(q.box)} cannot be "
                "converted to the coverage's CRS"
            )
        box = (max(rb[0], ub[0]), max(rb[1], ub[1]), min(rb[2], ub[2]), min(rb[3], ub[3]))
        if box[0] > box[2] or box[1] > box[3]:
            raise InputError(
                f"Parameter {q.box_parameter}: the area asked for {_fmt(q.box)} lies outside the "
                f"coverage {primary.collection!r}, which covers {_fmt(ub)} in "
                f"{gcrs.describe_crs(native)} (lon/lat extent in the collection document)"
            )
    else:
        box = ub
    # snap to the primary item's grid (outwards)
    eps = 1e-6
    col0 = math.floor((box[0] - c) / a + eps)
    col1 = math.ceil((box[2] - c) / a - eps)
    row0 = math.floor((f - box[3]) / -e + eps)
    row1 = math.ceil((f - box[1]) / -e - eps)
    col1, row1 = max(col1, col0 + 1), max(row1, row0 + 1)
    w, h = col1 - col0, row1 - row0
    bands = _select_bands(primary, q)
    warp = q.crs is not None and not q.crs.equals(native, ignore_axis_order=True)
    if warp:
        assert q.crs is not None
        out_crs = q.crs
        nb = (c + col0 * a, f + row1 * e, c + col1 * a, f + row0 * e)
        grid_t, grid_w, grid_h = _warped_grid(native, out_crs, nb, w, h, q)
        out_w, out_h = _output_size(grid_w, grid_h, q)
        _check_size(out_w, out_h, len(bands), q, limits, json_out, (grid_w, grid_h))
        out_t = grid_t * Affine.scale(grid_w / out_w, grid_h / out_h)
    else:
        out_crs = native
        out_w, out_h = _output_size(w, h, q)
        _check_size(out_w, out_h, len(bands), q, limits, json_out, (w, h))
        out_t = Affine(a * w / out_w, 0.0, c + col0 * a, 0.0, e * h / out_h, f + row0 * e)
    names = [primary.bands[i - 1]["name"] for i in bands]
    nodata = _nodata(primary.bands[bands[0] - 1].get("nodata"))
    data: np.ma.MaskedArray | None = None
    for it in group:
        try:
            idx = [it.band_names.index(n) + 1 for n in names]
        except ValueError:
            continue  # an item of this time without these bands: not part of this coverage
        arr = _read_item(
            it,
            Path(store_root),
            idx,
            out_crs,
            out_t,
            out_w,
            out_h,
            (col0, row0, w, h) if it is primary and not warp else None,
            nodata,
        )
        if data is None:
            data = arr
        else:
            fill = np.ma.getmaskarray(data) & ~np.ma.getmaskarray(arr)
            data = np.ma.MaskedArray(
                np.where(fill, arr.data, data.data), np.ma.getmaskarray(data) & ~fill
            )
    assert data is not None  # the primary item has the bands
    band_docs = [dict(primary.bands[i - 1]) for i in bands]
    return Coverage(
        data=data,
        crs=out_crs,
        crs_uri=q.crs_uri or native_crs_uri(out_crs),
        transform=out_t,
        bands=band_docs,
        nodata=nodata,
        items=[it.ref for it in group],
        time=_time_text(primary),
        axis_labels=("Lon", "Lat") if out_crs.is_geographic else ("E", "N"),
        collection=primary.collection,
        band_times=[b.get("datetime") for b in band_docs],
    )


def _nodata(v) -> float | None:
    if v is None:
        return None
    if isinstance(v, str):
        return float(v)  # "nan", "inf", "-inf"
    return float(v)


def _unreadable(item: Item) -> RasterUnavailable:
    return RasterUnavailable(
        f"The raster file of item {item.ref} cannot be read: it is missing or damaged in the "
        "raster store. The administrator should ingest it again (gis ingest raster)."
    )


def _overview_level(src, src_crs: CRS, out_crs: CRS, out_t, out_w: int, out_h: int) -> int | None:
    """The coarsest overview of ``src`` still as fine as the output grid (None: full resolution)."""
    factors = src.overviews(1)
    if not factors:
        return None
    out_b = (out_t.c, out_t.f + out_t.e * out_h, out_t.c + out_t.a * out_w, out_t.f)
    sb = gcrs.make_transformer(out_crs, src_crs).transform_bounds(out_b)
    if not all(math.isfinite(v) for v in sb):
        return None
    rx, ry = src.res
    ratio = min((sb[2] - sb[0]) / out_w / rx, (sb[3] - sb[1]) / out_h / ry)
    level = None
    for k, factor in enumerate(factors):
        if factor <= ratio:
            level = k
    return level


def _read_item(
    item: Item,
    root: Path,
    indexes: list[int],
    out_crs: CRS,
    out_t,
    out_w: int,
    out_h: int,
    window: tuple[int, int, int, int] | None,
    nodata: float | None,
) -> np.ma.MaskedArray:
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.errors import RasterioError
    from rasterio.vrt import WarpedVRT
    from rasterio.windows import Window

    from gis.raster.store import GDAL_ENV, RasterStore

    try:
        path = RasterStore(root).path(item.asset_href)
    except GisError:
        raise _unreadable(item) from None
    if not path.is_file():
        raise _unreadable(item)
    try:
        with rasterio.Env(**GDAL_ENV), rasterio.open(path) as src:
            direct = (
                window is not None
                and window[0] >= 0
                and window[1] >= 0
                and window[0] + window[2] <= src.width
                and window[1] + window[3] <= src.height
            )
            if direct:
                col0, row0, w, h = window
                return src.read(
                    indexes,
                    window=Window(col0, row0, w, h),
                    out_shape=(len(indexes), out_h, out_w),
                    resampling=Resampling.nearest,
                    masked=True,
                )
            kw: dict[str, Any] = {}
            if src.nodata is not None:
                kw["src_nodata"] = src.nodata
                kw["nodata"] = src.nodata
            elif nodata is not None:
                kw["nodata"] = nodata
            else:
                kw["add_alpha"] = True  # no nodata value: cells outside the item are masked
            src_crs = item_crs(item)
            if gcrs.is_vn2000(src_crs):
                kw["src_crs"] = gdal_crs(src_crs)
            level = _overview_level(src, src_crs, out_crs, out_t, out_w, out_h)
            with (
                (
                    rasterio.open(path, overview_level=level)
                    if level is not None
                    else nullcontext(src)
                ) as data_src,
                WarpedVRT(
                    data_src,
                    crs=gdal_crs(out_crs),
                    transform=out_t,
                    width=out_w,
                    height=out_h,
                    resampling=Resampling.nearest,
                    # about exact (GDAL's default allows 1/8 cell of error, which moves the
                    # nearest cell for a few percent of the cells)
                    tolerance=0.001,
                    **kw,
                ) as vrt,
            ):
                return vrt.read(indexes, masked=True)
    except GisError:
        raise
    except (RasterioError, OSError, ValueError):
        raise _unreadable(item) from None


# ---------------------------------------------------------------------------------------------
# Encodings
# ---------------------------------------------------------------------------------------------


def to_geotiff(cov: Coverage) -> bytes:
    """The coverage as a GeoTIFF (DEFLATE; tiled when large; nodata, band names, units, scale and
    offset kept; an internal mask where there is no data and no nodata value)."""
    import rasterio
    from rasterio.io import MemoryFile

    n, h, w = cov.data.shape
    dtype = cov.data.dtype
    mask = np.ma.getmaskarray(cov.data)
    fill = cov.nodata
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": w,
        "height": h,
        "count": n,
        "dtype": dtype.name,
        "crs": rasterio.crs.CRS.from_wkt(cov.crs.to_wkt())
        if cov.crs.to_epsg() is None
        else rasterio.crs.CRS.from_epsg(cov.crs.to_epsg()),
        "transform": cov.transform,
        "compress": "deflate",
    }
    if w >= 256 and h >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    if fill is not None:
        profile["nodata"] = fill
    with MemoryFile() as mem:
        with mem.open(**profile) as dst:
            values = cov.data.filled(fill) if fill is not None else cov.data.data
            dst.write(values)
            if fill is None and mask.any():
                dst.write_mask(~mask.any(axis=0))
            dst.descriptions = tuple(b["name"] for b in cov.bands)
            dst.units = tuple(b.get("unit") or "" for b in cov.bands)
            dst.scales = tuple(float(b.get("raster:scale", 1.0)) for b in cov.bands)
            dst.offsets = tuple(float(b.get("raster:offset", 0.0)) for b in cov.bands)
            tags = {"COLLECTION": cov.collection, "ITEMS": ",".join(cov.items)}
            if cov.time:
                tags["DATETIME"] = cov.time
            dst.update_tags(**tags)
            for k, t in enumerate(cov.band_times):
                if t:
                    dst.update_tags(k + 1, DATETIME=t)
        return mem.read()


def _cov_crs_system(cov_crs: CRS, uri: str) -> dict[str, Any]:
    return {"type": "GeographicCRS" if cov_crs.is_geographic else "ProjectedCRS", "id": uri}


def to_covjson(cov: Coverage) -> dict[str, Any]:
    """The coverage as a CoverageJSON ``Coverage`` (Grid domain; one parameter per band).

    Values are physical values (scale and offset of the band applied); cells without data are
    ``null``. The ``t`` axis holds the items' time (the start of an interval).
    """
    _n, h, w = cov.data.shape
    t = cov.transform
    axes: dict[str, Any] = {
        "x": {"start": t.c + t.a / 2, "stop": t.c + t.a * (w - 0.5), "num": w},
        "y": {"start": t.f + t.e / 2, "stop": t.f + t.e * (h - 0.5), "num": h},
    }
    # the domain axes in the order of the CRS's axes (EPSG:4326: latitude first)
    first = cov.crs.axis_info[0].direction.lower() if cov.crs.axis_info else "east"
    lat_first = first in ("north", "south") and not cov.crs_uri.endswith("/CRS84")
    referencing = [
        {
            "coordinates": ["y", "x"] if lat_first else ["x", "y"],
            "system": _cov_crs_system(cov.crs, cov.crs_uri),
        }
    ]
    if cov.time:
        axes["t"] = {"values": [cov.time.split("/")[0]]}
        referencing.append(
            {"coordinates": ["t"], "system": {"type": "TemporalRS", "calendar": "Gregorian"}}
        )
    params, ranges = {}, {}
    mask = np.ma.getmaskarray(cov.data)
    for k, b in enumerate(cov.bands):
        name = b["name"]
        scale = float(b.get("raster:scale", 1.0))
        offset = float(b.get("raster:offset", 0.0))
        raw = cov.data.data[k]
        integer = raw.dtype.kind in "iub" and scale == 1.0 and offset == 0.0
        if integer:
            vals = raw.astype(object)
            vals[mask[k]] = None
        else:
            phys = raw.astype("float64") * scale + offset
            bad = mask[k] | ~np.isfinite(phys)
            vals = phys.astype(object)
            vals[bad] = None
        p: dict[str, Any] = {
            "type": "Parameter",
            "observedProperty": {"label": {"en": b.get("eo:common_name") or name}},
        }
        if b.get("description"):
            p["description"] = {"en": b["description"]}
        if b.get("unit"):
            p["unit"] = {"symbol": b["unit"]}
        params[name] = p
        ranges[name] = {
            "type": "NdArray",
            "dataType": "integer" if integer else "float",
            "axisNames": ["y", "x"],
            "shape": [h, w],
            "values": vals.ravel().tolist(),
        }
    return {
        "type": "Coverage",
        "domain": {
            "type": "Domain",
            "domainType": "Grid",
            "axes": axes,
            "referencing": referencing,
        },
        "parameters": params,
        "ranges": ranges,
    }


# ---------------------------------------------------------------------------------------------
# Domain set and range type (OGC API - Coverages)
# ---------------------------------------------------------------------------------------------


def domainset(info: CoverageInfo) -> dict[str, Any]:
    """The domain set of a coverage: its primary item's grid and the times of its items."""
    if info.primary is None:
        raise NotFoundError(f"The coverage {info.id!r} has no items yet.")
    it = info.primary
    a, _b, c, _d, e, f = it.transform
    lx, ly = info.axis_labels
    uom = "deg" if info.geographic else "m"
    axes = [
        {
            "type": "RegularAxis",
            "axisLabel": lx,
            "lowerBound": c,
            "upperBound": c + a * it.width,
            "uomLabel": uom,
            "resolution": a,
        },
        {
            "type": "RegularAxis",
            "axisLabel": ly,
            "lowerBound": f + e * it.height,
            "upperBound": f,
            "uomLabel": uom,
            "resolution": -e,
        },
    ]
    labels = [lx, ly]
    if info.times:
        axes.append(
            {
                "type": "IrregularAxis",
                "axisLabel": "time",
                "uomLabel": "s",
                "coordinate": list(info.times),
            }
        )
        labels.append("time")
    return {
        "type": "DomainSet",
        "generalGrid": {
            "type": "GeneralGridCoverage",
            "srsName": info.crs_uri,
            "axisLabels": labels,
            "axis": axes,
            "gridLimits": {
                "type": "GridLimits",
                "srsName": "http://www.opengis.net/def/crs/OGC/0/Index2D",
                "axisLabels": ["i", "j"],
                "axis": [
                    {
                        "type": "IndexAxis",
                        "axisLabel": "i",
                        "lowerBound": 0,
                        "upperBound": it.width - 1,
                    },
                    {
                        "type": "IndexAxis",
                        "axisLabel": "j",
                        "lowerBound": 0,
                        "upperBound": it.height - 1,
                    },
                ],
            },
        },
    }


def rangetype(info: CoverageInfo) -> dict[str, Any]:
    """The range type of a coverage: one field per band of its primary item."""
    if info.primary is None:
        raise NotFoundError(f"The coverage {info.id!r} has no items yet.")
    fields = []
    for b in info.primary.bands:
        fd: dict[str, Any] = {
            "type": "Quantity",
            "id": b["name"],
            "name": b["name"],
            "definition": b.get("eo:common_name") or b.get("description") or b["name"],
            "dataType": b.get("data_type", info.primary.data_type),
            "uom": {"type": "UnitReference", "code": b.get("unit") or "1"},
        }
        if b.get("description"):
            fd["description"] = b["description"]
        if b.get("nodata") is not None:
            fd["nilValues"] = [
                {"value": b["nodata"], "reason": "http://www.opengis.net/def/nil/OGC/0/missing"}
            ]
        if "raster:scale" in b or "raster:offset" in b:
            fd["scale"] = b.get("raster:scale", 1.0)
            fd["offset"] = b.get("raster:offset", 0.0)
        if b.get("datetime"):
            fd["datetime"] = b["datetime"]
        fields.append(fd)
    return {"type": "DataRecord", "field": fields}


# ---------------------------------------------------------------------------------------------
# STAC search
# ---------------------------------------------------------------------------------------------


def encode_token(collection: str, item_id: str) -> str:
    """The paging token after an item (keyset on collection, id)."""
    raw = json.dumps([collection, item_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, parameter: str = "token") -> tuple[str, str]:
    """The (collection, id) a token was made from; InputError for anything else."""
    try:
        pad = "=" * (-len(token) % 4)
        value = json.loads(base64.urlsafe_b64decode(token + pad))
        if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
            return value[0], value[1]
    except (ValueError, TypeError):
        pass
    raise InputError(f"Parameter {parameter}: not a token of this API (use the next link as given)")


def stac_search_sql(
    *,
    collections: Sequence[str] | None = None,
    ids: Sequence[str] | None = None,
    bbox: Sequence[float] | None = None,
    intersects_wkb: bytes | None = None,
    interval: TimeInterval | None = None,
    after: tuple[str, str] | None = None,
    limit: int = 10,
) -> tuple[str, dict[str, Any], str]:
    """The SQL of a STAC item search: (page query, parameters, count query).

    The page query returns ``collection, id, content`` (``raster.stac_items``) ordered by
    collection and id, ``limit + 1`` rows (one more tells that there is a next page); the count
    query the number of matching items.
    """
    where = """
  (%(colls)s::text[] IS NULL OR collection = ANY(%(colls)s::text[]))
  AND (%(ids)s::text[] IS NULL OR id = ANY(%(ids)s::text[]))
  AND (%(x0)s::float8 IS NULL OR ST_Intersects(geom, ST_MakeEnvelope(%(x0)s, %(y0)s, %(x1)s, %(y1)s, 4326)))
  AND (%(g)s::bytea IS NULL OR ST_Intersects(geom, ST_GeomFromWKB(%(g)s::bytea, 4326)))
  AND (%(t0)s::timestamptz IS NULL OR dt_end >= %(t0)s::timestamptz)
  AND (%(t1)s::timestamptz IS NULL OR dt_start <= %(t1)s::timestamptz)"""
    page = (
        f"SELECT collection, id, content FROM raster.stac_items WHERE {where}"
        "\n  AND (%(ac)s::text IS NULL OR (collection, id) > (%(ac)s::text, %(ai)s::text))"
        "\nORDER BY collection, id LIMIT %(limit)s"
    )
    count = f"SELECT count(*) FROM raster.stac_items WHERE {where}"
    b = list(bbox) if bbox is not None else None
    params = {
        "colls": list(collections) if collections is not None else None,
        "ids": list(ids) if ids is not None else None,
        "x0": b[0] if b else None,
        "y0": b[1] if b else None,
        "x1": b[2] if b else None,
        "y1": b[3] if b else None,
        "g": intersects_wkb,
        "t0": interval.start if interval else None,
        "t1": interval.end if interval else None,
        "ac": after[0] if after else None,
        "ai": after[1] if after else None,
        "limit": limit + 1,
    }
    return page, params, count
