"""Raster tiles from Cloud-Optimised GeoTIFFs with rio-tiler: one band, rescaled and coloured as the
raster layer declares (``gis_meta.raster_layers``), as PNG or WebP.

Blocking (GDAL): the API calls :func:`render` in its thread pool.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from gis.errors import InputError, NotFoundError
from tiles import tms as gtms
from tiles.layers import RasterItem, RasterLayer

FORMATS = {"png": ("PNG", "image/png"), "webp": ("WEBP", "image/webp")}


def check_format(fmt: str | None) -> str:
    """``png`` (default) or ``webp``; InputError otherwise."""
    f = (fmt or "png").lower()
    aliases = {"image/png": "png", "image/webp": "webp"}
    f = aliases.get(f, f)
    if f not in FORMATS:
        raise InputError(f"Parameter f: {fmt!r} is not a raster tile format; use png or webp.")
    return f


@lru_cache(maxsize=64)
def colormap(name: str) -> dict:
    """A rio-tiler colour map by name; InputError naming a few valid ones otherwise."""
    from rio_tiler.colormap import cmap

    try:
        return cmap.get(name.lower())
    except Exception:
        raise InputError(f"Unknown colour map {name!r} (e.g. viridis, ylorrd, magma, greens).") from None


def tile_data(path: Path, layer: RasterLayer, item: RasterItem, t: gtms.TileAddress, tilesize: int = 256):
    """The values of tile ``t`` of ``layer`` (a rio-tiler ``ImageData``: the band, masked where there
    is no data; per km2 of cell for a ``per_km2`` layer), or None when the tile has no data."""
    from rio_tiler.errors import TileOutsideBounds
    from rio_tiler.io import Reader

    if not Path(path).exists():
        raise NotFoundError(f"The COG of raster layer {layer.id!r} is missing from the raster store.")
    tms = gtms.get_tms(t.tms_id)
    with Reader(str(path), tms=tms) as src:
        if not src.tile_exists(t.x, t.y, t.z):
            return None
        try:
            kwargs = {"nodata": item.nodata} if item.nodata is not None else {}
            img = src.tile(t.x, t.y, t.z, tilesize=tilesize, indexes=layer.band, **kwargs)
        except TileOutsideBounds:
            return None
    if not np.any(img.mask):
        return None
    if layer.per_km2:
        west, south, east, north = tms.bounds(t.x, t.y, t.z)
        area = cell_area_km2(item, (south + north) / 2)
        if area:
            img.array = img.array.astype(np.float32) / np.float32(area)
    return img


def render(path: Path, layer: RasterLayer, item: RasterItem, t: gtms.TileAddress, fmt: str = "png",
           tilesize: int = 256) -> bytes | None:
    """The tile ``t`` of ``layer`` from the COG at ``path``; None when the tile has no data.

    Parameters
    ----------
    path : Path
        The item's COG.
    layer : RasterLayer
        Band, colour map, rescaling, and whether cells are drawn per km2.
    item : RasterItem
        The item (its nodata value and grid).
    t : TileAddress
        The tile.
    fmt : {"png", "webp"}
        Image format.

    Examples
    --------
    >>> png = render(cog, layer, item, check_tile("WebMercatorQuad", 10, 484, 815))  # doctest: +SKIP
    """
    img = tile_data(path, layer, item, t, tilesize)
    if img is None:
        return None
    if layer.rescale is not None:
        img = img.rescale(in_range=(tuple(layer.rescale),))
    elif img.data.dtype != np.uint8:
        finite = img.data[0][img.mask > 0]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        img = img.rescale(in_range=((lo, hi if hi > lo else lo + 1),))
    driver, _ = FORMATS[fmt]
    return img.render(img_format=driver, colormap=colormap(layer.colormap))


#: km per degree of latitude, and per degree of longitude at the equator (WGS 84, mean)
KM_PER_DEGREE_LAT = 110.574
KM_PER_DEGREE_LON = 111.320


def cell_area_km2(item: RasterItem, latitude: float) -> float | None:
    """Area of one cell of ``item`` in km2: for a geographic grid at ``latitude``, for a projected
    one (metres) its x by y size; None when the item's grid is not known.

    Examples
    --------
    >>> item = RasterItem("c", "i", "h", "s", (0, 0, 1, 1), None, None, (1 / 1200, 1 / 1200), 4326)
    >>> round(cell_area_km2(item, 10.8), 5)   # a 3 arc-second cell at HCMC's latitude
    0.0084
    """
    if not item.resolution:
        return None
    rx, ry = item.resolution
    if _geographic(item.epsg):
        return float(rx * KM_PER_DEGREE_LON * np.cos(np.radians(latitude)) * ry * KM_PER_DEGREE_LAT)
    return rx * ry / 1e6


@lru_cache(maxsize=64)
def _geographic(epsg: int | None) -> bool:
    if epsg is None:
        return False
    from pyproj import CRS

    try:
        return CRS.from_epsg(epsg).is_geographic
    except Exception:  # noqa: BLE001 - an unknown code: treat as projected (metres)
        return False


def legend(layer: RasterLayer, steps: int = 6) -> list[dict]:
    """Legend entries (value, colour) of a raster layer, from its rescaling and colour map."""
    cm = colormap(layer.colormap)
    lo, hi = layer.rescale if layer.rescale is not None else (0.0, 255.0)
    out = []
    for i in range(steps):
        frac = i / (steps - 1)
        r, g, b, _ = cm[min(255, int(round(frac * 255)))]
        out.append({"value": lo + frac * (hi - lo), "color": f"#{r:02x}{g:02x}{b:02x}"})
    return out
