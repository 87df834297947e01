"""The web map at ``/map``: MapLibre GL drawing the catalog's vector tiles and the raster layers, with
a layer list, legend, feature popups (public attributes, from the features API), a Vietnamese/English
switch and links to each layer's OGC API items and downloads.

MapLibre's JavaScript and CSS come from the npm registry at set-up (``api/static/package.json``,
``npm ci`` in ./dev) and are served here from ``/static/maplibre/`` (no CDN). The page needs no
other server: there is no external base map, so it works offline.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, HTMLResponse, Response

from api.negotiation import language
from api.params import check_params
from gis.errors import ConfigError, NotFoundError

MAPLIBRE_DIST = Path(__file__).resolve().parent / "static" / "node_modules" / "maplibre-gl" / "dist"
#: the files of the MapLibre distribution the page uses
MAPLIBRE_FILES = {"maplibre-gl.js": "text/javascript", "maplibre-gl.css": "text/css",
                  "maplibre-gl.js.map": "application/json"}

LABELS = {
    "en": {
        "title": "Map - Ho Chi Minh City open GIS", "layers": "Layers", "legend": "Legend",
        "items": "Features (OGC API)", "geojson": "GeoJSON", "csv": "CSV", "tilejson": "TileJSON",
        "tileset": "Tileset", "language": "Tiếng Việt", "other": "vi", "home": "Home",
        "collections": "Collections", "other_values": "other", "loading": "Loading…",
        "open": "Open the feature page", "raster": "Raster", "vector": "Vector",
        "zooms": "zooms", "no_js": "This map needs JavaScript.",
    },
    "vi": {
        "title": "Bản đồ - Dữ liệu GIS mở TP. Hồ Chí Minh", "layers": "Lớp dữ liệu", "legend": "Chú giải",
        "items": "Đối tượng (OGC API)", "geojson": "GeoJSON", "csv": "CSV", "tilejson": "TileJSON",
        "tileset": "Bộ ô bản đồ", "language": "English", "other": "en", "home": "Trang chủ",
        "collections": "Lớp dữ liệu", "other_values": "khác", "loading": "Đang tải…",
        "open": "Mở trang đối tượng", "raster": "Ảnh", "vector": "Vector",
        "zooms": "mức thu phóng", "no_js": "Bản đồ cần JavaScript.",
    },
}


def map_config(request: Request, svc, lang: str) -> dict:
    """What the page's script needs: layers with their tiles, style, legend, fields and links."""
    from tiles import raster as graster

    base = str(request.base_url).rstrip("/")
    layers = []
    boxes = []
    for layer in svc.layers.values():
        c = layer.collection
        style = dict(layer.style)
        style.setdefault("type", {"point": "circle", "line": "line", "polygon": "fill"}[layer.geometry_kind])
        fields = [{"name": f.name, "title": (f.title_vi if lang == "vi" else f.title_en) or f.name,
                   "unit": f.unit} for f in c.fields]
        ext = svc.extents.get(layer.id)
        if ext:
            boxes.append(ext)
        layers.append({
            "id": layer.id, "kind": "vector", "title": c.title(lang), "visible": layer.basemap,
            "minzoom": layer.min_zoom, "maxzoom": layer.max_zoom, "style": style,
            "geometry": layer.geometry_kind, "id_column": c.id_column,
            "tiles": f"{base}/collections/{c.id}/tiles/WebMercatorQuad/{{z}}/{{y}}/{{x}}",
            "fields": fields, "bbox": ext,
            "links": {
                "items": f"{base}/collections/{c.id}/items?f=html&lang={lang}",
                "geojson": f"{base}/collections/{c.id}/items?f=json&limit=10000",
                "csv": f"{base}/collections/{c.id}/items?f=csv&limit=10000",
                "tilejson": f"{base}/collections/{c.id}/tiles/WebMercatorQuad/tilejson.json?lang={lang}",
                "tileset": f"{base}/collections/{c.id}/tiles/WebMercatorQuad?lang={lang}",
                "item": f"{base}/collections/{c.id}/items/{{id}}",
            },
        })
    for rl in svc.raster_layers.values():
        layers.append({
            "id": rl.id, "kind": "raster", "title": rl.title(lang), "visible": False,
            "minzoom": rl.min_zoom, "maxzoom": rl.max_zoom, "unit": rl.unit, "attribution": rl.attribution,
            "tiles": f"{base}/xyz/{rl.id}/{{z}}/{{x}}/{{y}}.png",
            "legend": graster.legend(rl),
            "links": {"tileset": f"{base}/collections/{rl.id}/map/tiles/WebMercatorQuad?lang={lang}"},
        })
    if boxes:
        bbox = [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
                max(b[3] for b in boxes)]
    else:  # Ho Chi Minh City
        bbox = [106.35, 10.35, 107.05, 11.17]
    return {"lang": lang, "base": base, "bbox": bbox, "layers": layers, "labels": LABELS[lang],
            "maplibre": f"{base}/static/maplibre/maplibre-gl.js"}


def map_routes(router: APIRouter, service) -> None:
    """Add ``/map`` and ``/static/maplibre/{file}`` to ``router`` (``service`` gives the TileService)."""

    @router.get("/map", include_in_schema=False)
    async def web_map(request: Request) -> Response:
        svc = await service(request)
        check_params(request, ("lang", "f"))
        lang = language(request)
        config = map_config(request, svc, lang)
        pages = request.app.state.pages
        other = "vi" if lang == "en" else "en"
        page = pages.env.get_template("map.html").render(
            lang=lang, t=LABELS[lang], base=config["base"], config=config,
            other_lang_url=f"{config['base']}/map?lang={other}")
        return HTMLResponse(page, headers={"Content-Language": lang})

    @router.get("/static/maplibre/{name}", include_in_schema=False)
    async def maplibre_asset(name: str) -> Response:
        media = MAPLIBRE_FILES.get(name)
        if media is None:
            raise NotFoundError(f"There is no file {name!r} here.")
        path = MAPLIBRE_DIST / name
        if not path.exists():
            raise ConfigError("MapLibre GL is not installed: run `npm ci` in api/static (./dev setup does).")
        return FileResponse(path, media_type=media, headers={"Cache-Control": "public, max-age=86400"})
