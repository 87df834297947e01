"""Maps for notebooks: any catalog layer on a folium map, through the same tiles the API serves.

Vector layers come as Mapbox Vector Tiles through folium's ``VectorGridProtobuf`` plugin
(Leaflet.VectorGrid), raster layers as PNG tiles. The layers are looked up in the API's TileJSON
documents, so the map shows what the server publishes (public fields only, its zoom ranges).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable

from gis.errors import InputError, NotFoundError

#: colours given to vector layers in turn
PALETTE = ("#e6550d", "#3182bd", "#31a354", "#756bb1", "#de2d26", "#636363")


def _get_json(url: str, timeout: float) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - the caller's API
            return json.loads(r.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise InputError(f"{url} answered {exc.code}.") from None
    except urllib.error.URLError as exc:
        raise InputError(f"Cannot reach the API at {url}: {exc.reason}.") from None


def layer_tilejson(layer: str, base_url: str, timeout: float = 10.0) -> tuple[str, dict]:
    """``("vector"|"raster", tilejson)`` of a layer of the API at ``base_url``."""
    base = base_url.rstrip("/")
    q = urllib.parse.quote(layer, safe="")
    doc = _get_json(f"{base}/collections/{q}/tiles/WebMercatorQuad/tilejson.json", timeout)
    if doc is not None:
        return "vector", doc
    doc = _get_json(f"{base}/collections/{q}/map/tiles/WebMercatorQuad?f=tilejson", timeout)
    if doc is not None:
        return "raster", doc
    raise NotFoundError(f"The API at {base} has no tiles of a layer {layer!r}.")


def folium_map(layers: Iterable[str] | str, base_url: str = "http://127.0.0.1:8000", *,
               styles: dict | None = None, basemap: str | None = None, zoom: int | None = None):
    """A folium map with catalog layers drawn from the API's tiles.

    Parameters
    ----------
    layers : str or iterable of str
        Collection ids (vector tiles) and/or raster layer ids (e.g. ``"population"``).
    base_url : str
        Root of the running OGC API (``gis serve``).
    styles : dict, optional
        Leaflet.VectorGrid styles by vector layer id (``{"parcels": {"color": "#333", "weight": 1}}``).
    basemap : str, optional
        A folium base map name ("OpenStreetMap", "CartoDB positron"); default none (works offline).
    zoom : int, optional
        Initial zoom (default: to fit the layers).

    Returns
    -------
    folium.Map

    Examples
    --------
    >>> m = folium_map(["wards-2025", "parcels", "population"], "http://127.0.0.1:8000")  # doctest: +SKIP
    >>> m.save("map.html")  # doctest: +SKIP
    """
    import folium
    from folium.plugins import VectorGridProtobuf

    ids = [layers] if isinstance(layers, str) else list(layers)
    if not ids:
        raise InputError("layers: give one or more layer ids, e.g. ['parcels'].")
    styles = styles or {}
    found = [(lid, *layer_tilejson(lid, base_url)) for lid in ids]
    bounds = [tj.get("bounds") for _, _, tj in found if tj.get("bounds")]
    m = folium.Map(tiles=basemap, control_scale=True, zoom_start=zoom or 12,
                   location=[10.78, 106.70] if not bounds else
                   [(min(b[1] for b in bounds) + max(b[3] for b in bounds)) / 2,
                    (min(b[0] for b in bounds) + max(b[2] for b in bounds)) / 2])
    for i, (lid, kind, tj) in enumerate(found):
        if kind == "raster":
            folium.TileLayer(tiles=tj["tiles"][0], attr=tj.get("attribution") or lid, name=tj.get("description") or lid,
                             overlay=True, min_zoom=tj.get("minzoom", 0), max_native_zoom=min(tj.get("maxzoom", 18), 12),
                             max_zoom=22, opacity=0.75).add_to(m)
            continue
        # Leaflet.VectorGrid wants {z}/{x}/{y}: the API's XYZ alias serves the same tiles
        base = base_url.rstrip("/")
        url = f"{base}/xyz/{urllib.parse.quote(lid, safe='')}/{{z}}/{{x}}/{{y}}.mvt"
        color = PALETTE[i % len(PALETTE)]
        style = styles.get(lid) or {"color": color, "weight": 1, "fill": True, "fillColor": color,
                                    "fillOpacity": 0.3, "radius": 4}
        options = {"vectorTileLayerStyles": {lid: style}, "minZoom": 0, "maxNativeZoom": min(tj["maxzoom"], 16),
                   "interactive": True, "attribution": tj.get("attribution") or ""}
        VectorGridProtobuf(url, name=tj.get("description") or lid, options=options).add_to(m)
    if bounds and zoom is None:
        m.fit_bounds([[min(b[1] for b in bounds), min(b[0] for b in bounds)],
                      [max(b[3] for b in bounds), max(b[2] for b in bounds)]])
    folium.LayerControl().add_to(m)
    return m
