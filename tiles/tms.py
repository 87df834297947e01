"""Tile matrix sets (OGC 2D TileMatrixSet) through morecantile, and tile addresses checked once.

The supported sets are those whose CRS PostGIS knows by an EPSG code, so a tile's envelope can be
built in SQL: WebMercatorQuad (EPSG:3857), WorldCRS84Quad (CRS84, longitude/latitude, SRID 4326)
and WorldMercatorWGS84Quad (EPSG:3395).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import morecantile
from pyproj import CRS, Transformer

from gis.errors import InputError, NotFoundError

#: tile matrix set id -> SRID of its CRS in PostGIS
SUPPORTED: dict[str, int] = {
    "WebMercatorQuad": 3857,
    "WorldCRS84Quad": 4326,
    "WorldMercatorWGS84Quad": 3395,
}
DEFAULT_TMS = "WebMercatorQuad"
#: tile matrix z of a set shows about the scale of WebMercatorQuad's z + offset (layers' zoom ranges
#: and per-zoom fields are declared in WebMercatorQuad zooms)
ZOOM_OFFSET = {"WorldCRS84Quad": 1}


def web_zoom(tms_id: str, z: int) -> int:
    """The WebMercatorQuad zoom of about the same scale as tile matrix ``z`` of ``tms_id``."""
    return z + ZOOM_OFFSET.get(tms_id, 0)


def tms_zoom(tms_id: str, web_z: int) -> int:
    """The tile matrix of ``tms_id`` of about the scale of WebMercatorQuad zoom ``web_z``."""
    return max(0, web_z - ZOOM_OFFSET.get(tms_id, 0))


@dataclass(frozen=True)
class TileAddress:
    """One tile of a tile matrix set, checked: ``z`` is the tile matrix, ``x`` the column, ``y`` the row."""

    tms_id: str
    z: int
    x: int
    y: int

    @property
    def path(self) -> str:
        return f"{self.tms_id}/{self.z}/{self.y}/{self.x}"


@lru_cache(maxsize=None)
def get_tms(tms_id: str) -> morecantile.TileMatrixSet:
    """The tile matrix set ``tms_id``; :class:`NotFoundError` naming the supported ones otherwise."""
    if tms_id not in SUPPORTED:
        raise NotFoundError(
            f"Tile matrix set {tms_id!r} is not supported; use one of: {', '.join(SUPPORTED)}."
        )
    return morecantile.tms.get(tms_id)


def srid(tms_id: str) -> int:
    """The PostGIS SRID of the tile matrix set's CRS."""
    get_tms(tms_id)
    return SUPPORTED[tms_id]


def _int(value: str | int, name: str) -> int:
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if not text.lstrip("-").isdigit() or len(text) > 12:
        raise InputError(f"{name} {value!r} is not an integer.")
    return int(text)


def check_tile(tms_id: str, z: str | int, y: str | int, x: str | int) -> TileAddress:
    """Check a tile address (tile matrix, row, column) against the tile matrix set.

    Raises
    ------
    InputError
        A part is not an integer (400).
    NotFoundError
        Unknown tile matrix set, or a tile matrix, row or column outside it (404): the message gives
        the valid range.
    """
    tms = get_tms(tms_id)
    zi, yi, xi = _int(z, "tileMatrix"), _int(y, "tileRow"), _int(x, "tileCol")
    if not tms.minzoom <= zi <= tms.maxzoom:
        raise NotFoundError(
            f"Tile matrix {zi} is not in {tms_id}: its tile matrices are {tms.minzoom} to {tms.maxzoom}."
        )
    m = tms.matrix(zi)
    if not 0 <= yi < m.matrixHeight:
        raise NotFoundError(
            f"Tile row {yi} is outside tile matrix {zi} of {tms_id} (rows 0 to {m.matrixHeight - 1})."
        )
    if not 0 <= xi < m.matrixWidth:
        raise NotFoundError(
            f"Tile column {xi} is outside tile matrix {zi} of {tms_id} (columns 0 to {m.matrixWidth - 1})."
        )
    return TileAddress(tms_id, zi, xi, yi)


def xy_bounds(t: TileAddress) -> tuple[float, float, float, float]:
    """The tile's bounds in the tile matrix set's CRS (x = easting or longitude)."""
    b = get_tms(t.tms_id).xy_bounds(t.x, t.y, t.z)
    return (b.left, b.bottom, b.right, b.top)


@lru_cache(maxsize=16)
def _to_lonlat(tms_id: str) -> Transformer:
    return Transformer.from_crs(CRS.from_epsg(SUPPORTED[tms_id]), CRS.from_epsg(4326), always_xy=True)


@lru_cache(maxsize=65536)
def lonlat_bounds(t: TileAddress, margin: float = 0.0) -> tuple[float, float, float, float]:
    """The tile's bounds in longitude/latitude, widened by ``margin`` (a fraction of the tile)."""
    x0, y0, x1, y1 = xy_bounds(t)
    dx, dy = (x1 - x0) * margin, (y1 - y0) * margin
    x0, y0, x1, y1 = x0 - dx, y0 - dy, x1 + dx, y1 + dy
    if SUPPORTED[t.tms_id] == 4326:
        return (max(x0, -180.0), max(y0, -90.0), min(x1, 180.0), min(y1, 90.0))
    tr = _to_lonlat(t.tms_id)
    lo = tr.transform_bounds(x0, y0, x1, y1, densify_pts=5)
    return (max(lo[0], -180.0), max(lo[1], -90.0), min(lo[2], 180.0), min(lo[3], 90.0))


def tiles_in_bbox(tms_id: str, bbox: tuple[float, float, float, float], minzoom: int, maxzoom: int):
    """Yield the tiles of zooms ``minzoom..maxzoom`` that cover ``bbox`` (lon/lat)."""
    tms = get_tms(tms_id)
    for z in range(minzoom, maxzoom + 1):
        for t in tms.tiles(*bbox, zooms=[z]):
            yield TileAddress(tms_id, t.z, t.x, t.y)


def count_tiles(tms_id: str, bbox: tuple[float, float, float, float], minzoom: int, maxzoom: int) -> int:
    """How many tiles :func:`tiles_in_bbox` yields (without listing them)."""
    tms = get_tms(tms_id)
    n = 0
    for z in range(minzoom, maxzoom + 1):
        ul = tms.tile(bbox[0], bbox[3], z)
        lr = tms.tile(bbox[2], bbox[1], z)
        n += (abs(lr.x - ul.x) + 1) * (abs(lr.y - ul.y) + 1)
    return n


def tms_list_doc(base: str) -> dict:
    """The ``/tileMatrixSets`` document."""
    return {
        "tileMatrixSets": [
            {
                "id": tid,
                "title": get_tms(tid).title,
                "uri": str(get_tms(tid).uri) if get_tms(tid).uri else None,
                "links": [
                    {
                        "href": f"{base}/tileMatrixSets/{tid}",
                        "rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme",
                        "type": "application/json",
                        "title": f"The {tid} tile matrix set",
                    }
                ],
            }
            for tid in SUPPORTED
        ],
        "links": [{"href": f"{base}/tileMatrixSets", "rel": "self", "type": "application/json"}],
    }


def tms_doc(tms_id: str) -> dict:
    """The tile matrix set definition (OGC 2D TMS 2.0 JSON)."""
    return get_tms(tms_id).model_dump(exclude_none=True, mode="json")


def tile_matrix_limits(tms_id: str, bbox: tuple[float, float, float, float] | None, minzoom: int,
                       maxzoom: int) -> list[dict]:
    """``tileMatrixSetLimits`` of a tileset: the rows and columns covering ``bbox`` at each zoom."""
    tms = get_tms(tms_id)
    out = []
    for z in range(max(minzoom, tms.minzoom), min(maxzoom, tms.maxzoom) + 1):
        if bbox is None:
            m = tms.matrix(z)
            out.append({"tileMatrix": m.id, "minTileRow": 0, "maxTileRow": m.matrixHeight - 1,
                        "minTileCol": 0, "maxTileCol": m.matrixWidth - 1})
            continue
        ul = tms.tile(bbox[0], bbox[3], z)
        lr = tms.tile(bbox[2], bbox[1], z)
        out.append({"tileMatrix": tms.matrix(z).id, "minTileRow": min(ul.y, lr.y),
                    "maxTileRow": max(ul.y, lr.y), "minTileCol": min(ul.x, lr.x),
                    "maxTileCol": max(ul.x, lr.x)})
    return out
