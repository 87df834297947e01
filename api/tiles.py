"""OGC API - Tiles: tile matrix sets, vector tilesets of each collection and of the whole dataset (a
multi-layer basemap at ``/tiles``), raster (map) tiles of the raster layers, TileJSON, and the web
map at ``/map`` (:mod:`api.map`).

Tile paths follow the OGC order ``{tileMatrix}/{tileRow}/{tileCol}`` (z/y/x); ``/xyz/{layer}/{z}/{x}/{y}``
is the same tile in the XYZ order many clients (Leaflet, folium) use. Empty tiles are answered
``204 No Content`` (with an ETag and Cache-Control, no body, no database query when the tile misses
the layer's extent). Out-of-range tiles, unknown tile matrix sets or layers, and zooms outside a
layer's range are 404 OGC exceptions; malformed values 400.

Rendering happens in :mod:`tiles`; this module only maps HTTP to it. Vector tiles use the API's
async pool, at most ``TileSettings.concurrency`` at once, so tiles under load leave connections for
the rest of the API; raster tiles (GDAL) run in the thread pool.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.negotiation import language
from api.params import check_params
from gis.errors import InputError, NotFoundError
from gis.query import CRS84_URI
from gis.settings import Settings
from tiles import tms as gtms
from tiles.layers import RasterLayer, VectorLayer, get_layer
from tiles.service import TileService
from tiles.settings import TileSettings

MVT = "application/vnd.mapbox-vector-tile"
JSON = "application/json"
TILEJSON = "application/json"

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/dataset-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/png",
    "http://www.opengis.net/spec/tms/2.0/conf/tilematrixset",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixset",
]

REL_TILING = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"
REL_TILESETS_VECTOR = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
REL_TILESETS_MAP = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-map"


def landing_links(base: str) -> list[dict]:
    """Links of the landing page to the tiles (OGC API - Tiles) and the web map."""
    return [
        {"href": f"{base}/tiles", "rel": REL_TILESETS_VECTOR, "type": JSON,
         "title": "Vector tiles of the dataset (basemap of several collections)"},
        {"href": f"{base}/tileMatrixSets", "rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes",
         "type": JSON, "title": "Tile matrix sets"},
        {"href": f"{base}/map", "rel": "related", "type": "text/html", "title": "Web map (MapLibre)"},
    ]


def collection_links(base: str, info) -> list[dict]:
    """Links of a feature collection (``info``: :class:`api.state.CollectionInfo`) to its vector tilesets."""
    return [{"href": f"{base}/collections/{info.collection.id}/tiles", "rel": REL_TILESETS_VECTOR, "type": JSON,
             "title": "Vector tiles"}]


def openapi_paths(snapshot=None) -> dict:
    """The Tiles paths of the OpenAPI 3.0 document (:mod:`api.openapi`)."""
    def p(name: str, description: str, schema: dict | None = None, where: str = "path") -> dict:
        return {"name": name, "in": where, "required": where == "path", "description": description,
                "schema": schema or {"type": "string"}}

    tms_param = p("tileMatrixSetId", "Tile matrix set id (see /tileMatrixSets).",
                  {"type": "string", "enum": list(gtms.SUPPORTED)})
    tile_params = [tms_param, p("tileMatrix", "Tile matrix (zoom) id.", {"type": "string"}),
                   p("tileRow", "Row, from the top.", {"type": "integer", "minimum": 0}),
                   p("tileCol", "Column, from the left.", {"type": "integer", "minimum": 0})]
    coll = p("collectionId", "Collection id (see /collections).")
    f_json = p("f", "Response format.", {"type": "string", "enum": ["json", "tilejson"]}, "query")
    collections = p("collections", "Comma-separated collection ids (default: the basemap collections).",
                    {"type": "array", "items": {"type": "string"}}, "query")
    collections["style"], collections["explode"] = "form", False
    err = {"$ref": "#/components/responses/InvalidParameter"}
    nf = {"$ref": "#/components/responses/NotFound"}

    def op(op_id: str, summary: str, params: list, content: dict, empty: bool = False) -> dict:
        responses = {"200": {"description": summary, "content": content}, "400": err, "404": nf}
        if empty:
            responses["204"] = {"description": "An empty tile (no feature or no data in it)."}
            responses["304"] = {"description": "Not modified (If-None-Match matched the ETag)."}
        return {"get": {"tags": ["Tiles"], "summary": summary, "operationId": op_id, "parameters": params,
                        "responses": responses}}

    js = {JSON: {"schema": {"type": "object"}}}
    mvt = {MVT: {"schema": {"type": "string", "format": "binary"}}}
    img = {"image/png": {"schema": {"type": "string", "format": "binary"}},
           "image/webp": {"schema": {"type": "string", "format": "binary"}}}
    return {
        "/tileMatrixSets": op("getTileMatrixSetsList", "Tile matrix sets", [], js),
        "/tileMatrixSets/{tileMatrixSetId}": op("getTileMatrixSet", "A tile matrix set", [tms_param], js),
        "/tiles": op("getDatasetVectorTilesetsList", "Vector tilesets of the dataset", [collections], js),
        "/tiles/{tileMatrixSetId}": op("getDatasetVectorTileSet", "A vector tileset of the dataset",
                                       [tms_param, collections, f_json], js),
        "/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}": op(
            "getDatasetVectorTile", "A multi-layer vector tile", [*tile_params, collections], mvt, True),
        "/collections/{collectionId}/tiles": op("getCollectionVectorTilesetsList",
                                                "Vector tilesets of a collection", [coll], js),
        "/collections/{collectionId}/tiles/{tileMatrixSetId}": op(
            "getCollectionVectorTileSet", "A vector tileset of a collection", [coll, tms_param, f_json], js),
        "/collections/{collectionId}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}": op(
            "getCollectionVectorTile", "A vector tile of a collection", [coll, *tile_params], mvt, True),
        "/collections/{collectionId}/map/tiles/{tileMatrixSetId}": op(
            "getCollectionMapTileSet", "A map tileset of a raster layer", [coll, tms_param, f_json], js),
        "/collections/{collectionId}/map/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}": op(
            "getCollectionMapTile", "A map tile of a raster layer (PNG or WebP)",
            [coll, *tile_params, p("f", "Image format.", {"type": "string", "enum": ["png", "webp"]}, "query")],
            img, True),
    }


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _json(doc, media: str = JSON, headers: dict | None = None) -> Response:
    return Response(orjson.dumps(doc), media_type=media, headers=headers)


def _not_modified(request: Request, etag: str) -> bool:
    inm = request.headers.get("if-none-match")
    if not inm:
        return False
    tags = [v.strip().removeprefix("W/") for v in inm.split(",")]
    return "*" in tags or etag in tags


def tile_response(request: Request, body: bytes, etag: str, media: str, max_age: int) -> Response:
    """200 with the tile, 204 for an empty tile, 304 when the client has it (If-None-Match)."""
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={max_age}"}
    if _not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    if not body:
        return Response(status_code=204, headers=headers)
    return Response(body, media_type=media, headers=headers)


def _check_f(request: Request, allowed: tuple[str, ...]) -> str:
    f = request.query_params.get("f")
    if f is None:
        return allowed[0]
    value = {"application/vnd.mapbox-vector-tile": "mvt", "pbf": "mvt", "image/png": "png",
             "image/webp": "webp", "application/json": "json"}.get(f.lower(), f.lower())
    if value not in allowed:
        raise InputError(f"Parameter f: {f!r} is not a format of this resource; give one of: "
                         f"{', '.join(allowed)}")
    return value


def tiles_router(settings: Settings, tile_settings: TileSettings | None = None) -> APIRouter:
    """The router of the Tiles endpoints and the web map, bound to the platform ``settings``.

    The tile service is built on the first request (after the app's lifespan opened the pool);
    ``app.state.tile_settings``, when set before that, overrides ``tile_settings`` (tests).
    """
    router = APIRouter()
    lock = asyncio.Lock()

    def _load(svc: TileService, dsn: str, snap) -> None:
        from gis.db import connect
        from tiles.layers import load_raster_layers

        catalog = {k: v.collection for k, v in snap.collections.items()}
        extents = {k: v.bbox for k, v in snap.collections.items()}
        with connect(dsn, autocommit=True) as conn:
            svc.load(conn, catalog, extents)
            svc.raster_layers = load_raster_layers(conn)

    async def service(request: Request) -> TileService:
        app = request.app
        state = app.state.gis
        snap = state.snapshot
        svc = getattr(app.state, "tiles", None)
        if svc is not None and svc.source_version is snap:
            return svc
        async with lock:
            svc = getattr(app.state, "tiles", None)
            if svc is None:
                ts = getattr(app.state, "tile_settings", None) or tile_settings or TileSettings()
                svc = TileService(ts, settings.data_dir / "tiles" if ts.cache else None)
                svc.raster_layers = {}
            snap = state.snapshot
            if svc.source_version is not snap:
                await asyncio.to_thread(_load, svc, state.dsn, snap)
                svc.source_version = snap
            app.state.tiles = svc
        return svc

    # --- tile matrix sets ---------------------------------------------------------------------
    @router.get("/tileMatrixSets", include_in_schema=False)
    async def tile_matrix_sets(request: Request) -> Response:
        check_params(request, ("f", "lang"))
        _check_f(request, ("json",))
        return _json(gtms.tms_list_doc(_base(request)))

    @router.get("/tileMatrixSets/{tms_id}", include_in_schema=False)
    async def tile_matrix_set(request: Request, tms_id: str) -> Response:
        check_params(request, ("f", "lang"))
        _check_f(request, ("json",))
        return _json(gtms.tms_doc(tms_id))

    # --- vector tilesets of a collection ------------------------------------------------------
    def _tileset_summary(base: str, path: str, tms_id: str, title: str, data_type: str) -> dict:
        tms = gtms.get_tms(tms_id)
        return {
            "title": f"{title} ({tms_id})",
            "dataType": data_type,
            "crs": str(tms.crs.root) if hasattr(tms.crs, "root") else str(tms.crs),
            "tileMatrixSetURI": str(tms.uri) if tms.uri else None,
            "links": [
                {"href": f"{base}{path}/{tms_id}", "rel": "self", "type": JSON, "title": "The tileset"},
                {"href": f"{base}/tileMatrixSets/{tms_id}", "rel": REL_TILING, "type": JSON,
                 "title": f"The {tms_id} tile matrix set"},
            ],
        }

    def _vector_layer_doc(layer: VectorLayer, tms_id: str, lang: str) -> dict:
        c = layer.collection
        props = {}
        if c.id_type not in ("int2", "int4", "int8"):
            props[c.id_column] = {"type": "string", "x-ogc-role": "id"}
        for name, minz in layer.fields:
            f = c.field(name)
            p = {"type": f.json_type, "title": (f.title_vi if lang == "vi" else f.title_en) or name,
                 "x-minzoom": gtms.tms_zoom(tms_id, minz)}
            props[name] = p
        return {
            "id": layer.id,
            "title": c.title(lang),
            "dataType": "vector",
            "geometryDimension": {"point": 0, "line": 1, "polygon": 2}[layer.geometry_kind],
            "minTileMatrix": str(gtms.tms_zoom(tms_id, layer.min_zoom)),
            "maxTileMatrix": str(min(gtms.tms_zoom(tms_id, layer.max_zoom), gtms.get_tms(tms_id).maxzoom)),
            "propertiesSchema": {"type": "object", "properties": props},
        }

    def _tileset_doc(request: Request, svc: TileService, layers: list[VectorLayer], tms_id: str,
                     path: str, title: str, lang: str) -> dict:
        base = _base(request)
        tms = gtms.get_tms(tms_id)
        boxes = [svc.extents.get(layer.id) for layer in layers]
        boxes = [b for b in boxes if b]
        bbox = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
                max(b[3] for b in boxes)) if boxes else None
        lo = min(gtms.tms_zoom(tms_id, layer.min_zoom) for layer in layers)
        hi = min(max(gtms.tms_zoom(tms_id, layer.max_zoom) for layer in layers), tms.maxzoom)
        query = request.url.query
        suffix = f"?{query}" if query and "collections=" in query else ""
        doc = {
            "title": title,
            "dataType": "vector",
            "crs": str(tms.crs.root) if hasattr(tms.crs, "root") else str(tms.crs),
            "tileMatrixSetURI": str(tms.uri) if tms.uri else None,
            "tileMatrixSetLimits": gtms.tile_matrix_limits(tms_id, bbox, lo, hi),
            "layers": [_vector_layer_doc(layer, tms_id, lang) for layer in layers],
            "links": [
                {"href": f"{base}{path}/{tms_id}", "rel": "self", "type": JSON, "title": "This tileset"},
                {"href": f"{base}/tileMatrixSets/{tms_id}", "rel": REL_TILING, "type": JSON,
                 "title": f"The {tms_id} tile matrix set"},
                {"href": f"{base}{path}/{tms_id}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}{suffix}",
                 "rel": "item", "type": MVT, "templated": True, "title": "Vector tiles (Mapbox Vector Tile)"},
                {"href": f"{base}{path}/{tms_id}/tilejson.json{suffix}", "rel": "alternate",
                 "type": TILEJSON, "title": "TileJSON"},
            ],
        }
        if bbox is not None:
            doc["boundingBox"] = {"lowerLeft": [bbox[0], bbox[1]], "upperRight": [bbox[2], bbox[3]],
                                  "crs": CRS84_URI}
        return doc

    def _tilejson(request: Request, svc: TileService, layers: list[VectorLayer], tms_id: str, path: str,
                  name: str, lang: str) -> dict:
        if tms_id != "WebMercatorQuad":
            raise NotFoundError("TileJSON describes WebMercatorQuad tiles only: use "
                                f"{path}/WebMercatorQuad/tilejson.json.")
        base = _base(request)
        boxes = [svc.extents.get(layer.id) for layer in layers]
        boxes = [b for b in boxes if b]
        bbox = [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
                max(b[3] for b in boxes)] if boxes else [-180, -85.05, 180, 85.05]
        lo = min(layer.min_zoom for layer in layers)
        hi = min(max(layer.max_zoom for layer in layers), 24)
        query = request.url.query
        suffix = f"?{query}" if query and "collections=" in query else ""
        vector_layers = []
        for layer in layers:
            c = layer.collection
            fields = {name: ((c.field(name).title_vi if lang == "vi" else c.field(name).title_en) or name)
                      for name, _ in layer.fields}
            vector_layers.append({"id": layer.id, "description": c.title(lang), "minzoom": layer.min_zoom,
                                  "maxzoom": layer.max_zoom, "fields": fields})
        attribution = "; ".join(sorted({layer.collection.attribution for layer in layers
                                        if layer.collection.attribution}))
        return {
            "tilejson": "3.0.0",
            "name": name,
            "description": ", ".join(layer.collection.title(lang) for layer in layers),
            "attribution": attribution,
            "scheme": "xyz",
            "tiles": [f"{base}{path}/WebMercatorQuad/{{z}}/{{y}}/{{x}}{suffix}"],
            "minzoom": lo,
            "maxzoom": hi,
            "bounds": bbox,
            "center": [(bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2, max(lo, min(hi, 14))],
            "vector_layers": vector_layers,
        }

    @router.get("/collections/{collection_id}/tiles", include_in_schema=False)
    async def collection_tilesets(request: Request, collection_id: str) -> Response:
        svc = await service(request)
        layer = get_layer(svc.layers, collection_id)
        check_params(request, ("f", "lang"))
        _check_f(request, ("json",))
        lang = language(request)
        base = _base(request)
        path = f"/collections/{collection_id}/tiles"
        doc = {
            "tilesets": [_tileset_summary(base, path, t, layer.collection.title(lang), "vector")
                         for t in gtms.SUPPORTED],
            "links": [{"href": f"{base}{path}", "rel": "self", "type": JSON, "title": "Tilesets"},
                      {"href": f"{base}/collections/{collection_id}", "rel": "collection", "type": JSON,
                       "title": layer.collection.title(lang)}],
        }
        return _json(doc)

    @router.get("/collections/{collection_id}/tiles/{tms_id}", include_in_schema=False)
    async def collection_tileset(request: Request, collection_id: str, tms_id: str) -> Response:
        svc = await service(request)
        layer = get_layer(svc.layers, collection_id)
        gtms.get_tms(tms_id)
        check_params(request, ("f", "lang"))
        fmt = _check_f(request, ("json", "tilejson"))
        lang = language(request)
        path = f"/collections/{collection_id}/tiles"
        if fmt == "tilejson":
            return _json(_tilejson(request, svc, [layer], tms_id, path, layer.id, lang))
        return _json(_tileset_doc(request, svc, [layer], tms_id, path, layer.collection.title(lang), lang))

    @router.get("/collections/{collection_id}/tiles/{tms_id}/tilejson.json", include_in_schema=False)
    async def collection_tilejson(request: Request, collection_id: str, tms_id: str) -> Response:
        svc = await service(request)
        layer = get_layer(svc.layers, collection_id)
        gtms.get_tms(tms_id)
        check_params(request, ("f", "lang"))
        lang = language(request)
        return _json(_tilejson(request, svc, [layer], tms_id, f"/collections/{collection_id}/tiles",
                               layer.id, lang))

    def _check_zoom(layer: VectorLayer, t: gtms.TileAddress) -> None:
        wz = gtms.web_zoom(t.tms_id, t.z)
        if not layer.min_zoom <= wz <= layer.max_zoom:
            lo = gtms.tms_zoom(t.tms_id, layer.min_zoom)
            hi = min(gtms.tms_zoom(t.tms_id, layer.max_zoom), gtms.get_tms(t.tms_id).maxzoom)
            raise NotFoundError(
                f"Collection {layer.id!r} has tiles at tile matrices {lo} to {hi} of {t.tms_id}, "
                f"not {t.z}.")

    @router.get("/collections/{collection_id}/tiles/{tms_id}/{z}/{y}/{x}", include_in_schema=False)
    async def collection_tile(request: Request, collection_id: str, tms_id: str, z: str, y: str,
                              x: str) -> Response:
        svc = await service(request)
        layer = get_layer(svc.layers, collection_id)
        t = gtms.check_tile(tms_id, z, y, x)
        check_params(request, ("f",))
        _check_f(request, ("mvt",))
        _check_zoom(layer, t)
        res = await svc.vector_tile(request.app.state.gis.pool, [layer], t)
        return tile_response(request, res.body, res.etag, MVT, svc.settings.max_age)

    # --- dataset (multi-layer) tiles ----------------------------------------------------------
    def _dataset_layers(request: Request, svc: TileService) -> list[VectorLayer]:
        raw = request.query_params.get("collections")
        if raw is None:
            layers = svc.basemap_layers()
        else:
            ids = [v.strip() for v in raw.split(",") if v.strip()]
            if not ids:
                raise InputError("Parameter collections: give one or more collection ids, comma-separated.")
            layers = svc.layer_list(dict.fromkeys(ids))
        if not layers:
            raise NotFoundError("No collection is published as tiles.")
        return layers

    @router.get("/tiles", include_in_schema=False)
    async def dataset_tilesets(request: Request) -> Response:
        svc = await service(request)
        check_params(request, ("f", "lang", "collections"))
        _check_f(request, ("json",))
        _dataset_layers(request, svc)
        base = _base(request)
        lang = language(request)
        title = "HCMC open GIS basemap" if lang == "en" else "Bản đồ nền dữ liệu GIS mở TP.HCM"
        return _json({
            "tilesets": [_tileset_summary(base, "/tiles", t, title, "vector") for t in gtms.SUPPORTED],
            "links": [{"href": f"{base}/tiles", "rel": "self", "type": JSON, "title": "Tilesets"}],
        })

    @router.get("/tiles/{tms_id}", include_in_schema=False)
    async def dataset_tileset(request: Request, tms_id: str) -> Response:
        svc = await service(request)
        gtms.get_tms(tms_id)
        check_params(request, ("f", "lang", "collections"))
        fmt = _check_f(request, ("json", "tilejson"))
        layers = _dataset_layers(request, svc)
        lang = language(request)
        if fmt == "tilejson":
            return _json(_tilejson(request, svc, layers, tms_id, "/tiles", "basemap", lang))
        title = "HCMC open GIS basemap" if lang == "en" else "Bản đồ nền dữ liệu GIS mở TP.HCM"
        return _json(_tileset_doc(request, svc, layers, tms_id, "/tiles", title, lang))

    @router.get("/tiles/{tms_id}/tilejson.json", include_in_schema=False)
    async def dataset_tilejson(request: Request, tms_id: str) -> Response:
        svc = await service(request)
        gtms.get_tms(tms_id)
        check_params(request, ("f", "lang", "collections"))
        layers = _dataset_layers(request, svc)
        return _json(_tilejson(request, svc, layers, tms_id, "/tiles", "basemap", language(request)))

    @router.get("/tiles/{tms_id}/{z}/{y}/{x}", include_in_schema=False)
    async def dataset_tile(request: Request, tms_id: str, z: str, y: str, x: str) -> Response:
        svc = await service(request)
        t = gtms.check_tile(tms_id, z, y, x)
        check_params(request, ("f", "collections"))
        _check_f(request, ("mvt",))
        layers = _dataset_layers(request, svc)
        wz = gtms.web_zoom(tms_id, t.z)
        if not any(layer.min_zoom <= wz <= layer.max_zoom for layer in layers):
            lo = min(layer.min_zoom for layer in layers)
            hi = max(layer.max_zoom for layer in layers)
            raise NotFoundError(f"These collections have tiles at tile matrices {gtms.tms_zoom(tms_id, lo)} "
                                f"to {gtms.tms_zoom(tms_id, hi)} of {tms_id}, not {t.z}.")
        res = await svc.vector_tile(request.app.state.gis.pool, layers, t)
        return tile_response(request, res.body, res.etag, MVT, svc.settings.max_age)

    # --- raster (map) tiles -------------------------------------------------------------------
    async def raster_item(request: Request, svc: TileService, layer: RasterLayer):
        from tiles.layers import raster_item_from_row, raster_item_sql

        item = request.query_params.get("item")
        query, params = raster_item_sql(layer, item)
        async with request.app.state.gis.pool.connection() as conn:
            cur = await conn.execute(query, params)
            row = await cur.fetchone()
        return raster_item_from_row(layer, row, item)

    @router.get("/collections/{layer_id}/map/tiles", include_in_schema=False)
    async def raster_tilesets(request: Request, layer_id: str) -> Response:
        svc = await service(request)
        layer = get_layer(svc.raster_layers, layer_id, "raster layer")
        check_params(request, ("f", "lang"))
        _check_f(request, ("json",))
        base = _base(request)
        path = f"/collections/{layer_id}/map/tiles"
        return _json({
            "tilesets": [_tileset_summary(base, path, t, layer.title(language(request)), "map")
                         for t in gtms.SUPPORTED],
            "links": [{"href": f"{base}{path}", "rel": "self", "type": JSON, "title": "Tilesets"}],
        })

    @router.get("/collections/{layer_id}/map/tiles/{tms_id}", include_in_schema=False)
    async def raster_tileset(request: Request, layer_id: str, tms_id: str) -> Response:
        from tiles.raster import legend

        svc = await service(request)
        layer = get_layer(svc.raster_layers, layer_id, "raster layer")
        tms = gtms.get_tms(tms_id)
        check_params(request, ("f", "lang", "item"))
        fmt = _check_f(request, ("json", "tilejson"))
        item = await raster_item(request, svc, layer)
        lang = language(request)
        base = _base(request)
        path = f"/collections/{layer_id}/map/tiles"
        q = f"?item={item.id}" if request.query_params.get("item") else ""
        lo, hi = gtms.tms_zoom(tms_id, layer.min_zoom), min(gtms.tms_zoom(tms_id, layer.max_zoom), tms.maxzoom)
        if fmt == "tilejson":
            return _json({
                "tilejson": "3.0.0", "name": layer.id, "description": layer.title(lang),
                "attribution": layer.attribution or "", "scheme": "xyz",
                "tiles": [f"{base}/xyz/{layer_id}/{{z}}/{{x}}/{{y}}.png{q}"],
                "minzoom": layer.min_zoom, "maxzoom": layer.max_zoom, "bounds": list(item.bbox),
            })
        return _json({
            "title": layer.title(lang),
            "dataType": "map",
            "crs": str(tms.crs.root) if hasattr(tms.crs, "root") else str(tms.crs),
            "tileMatrixSetURI": str(tms.uri) if tms.uri else None,
            "tileMatrixSetLimits": gtms.tile_matrix_limits(tms_id, item.bbox, lo, hi),
            "boundingBox": {"lowerLeft": list(item.bbox[:2]), "upperRight": list(item.bbox[2:]), "crs": CRS84_URI},
            "item": {"collection": item.collection, "id": item.id, "datetime": item.datetime},
            "legend": {"unit": layer.unit, "colormap": layer.colormap, "rescale": layer.rescale,
                       "entries": legend(layer)},
            "links": [
                {"href": f"{base}{path}/{tms_id}", "rel": "self", "type": JSON, "title": "This tileset"},
                {"href": f"{base}/tileMatrixSets/{tms_id}", "rel": REL_TILING, "type": JSON,
                 "title": f"The {tms_id} tile matrix set"},
                {"href": f"{base}{path}/{tms_id}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}{q}", "rel": "item",
                 "type": "image/png", "templated": True, "title": "PNG tiles"},
                {"href": f"{base}{path}/{tms_id}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}?f=webp"
                         + (f"&item={item.id}" if q else ""),
                 "rel": "item", "type": "image/webp", "templated": True, "title": "WebP tiles"},
            ],
        })

    async def _raster_tile(request: Request, layer_id: str, t: gtms.TileAddress, fmt: str) -> Response:
        from gis.raster.store import RasterStore
        from tiles import raster as graster
        from tiles.cache import Entry, etag_of

        svc = await service(request)
        layer = get_layer(svc.raster_layers, layer_id, "raster layer")
        wz = gtms.web_zoom(t.tms_id, t.z)
        if not layer.min_zoom <= wz <= layer.max_zoom:
            raise NotFoundError(f"Raster layer {layer.id!r} has tiles at zooms {layer.min_zoom} to "
                                f"{layer.max_zoom} (WebMercatorQuad), not {t.z}.")
        item = await raster_item(request, svc, layer)
        media = graster.FORMATS[fmt][1]
        # a COG never changes (a new version is a new item with a new checksum): cache for good
        key = (f"raster/{layer.id}-{layer.colormap}-{layer.band}-{layer.rescale}-{layer.per_km2}-"
               f"{item.checksum[:16]}"
               f"/{t.tms_id}/{t.z}/{t.x}/{t.y}.{fmt}").replace(" ", "").replace("(", "").replace(")", "")
        cache = svc.cache if svc.settings.cache else None
        e = cache.get(key) if cache is not None else None
        if e is None:
            path = RasterStore(settings.raster_dir).path(item.asset_href)
            body = await run_in_threadpool(graster.render, Path(path), layer, item, t, fmt)
            body = body or b""
            e = Entry(body, etag_of(body), None)
            if cache is not None:
                cache.put(key, e)
        return tile_response(request, e.body, e.etag, media, svc.settings.raster_max_age)

    @router.get("/collections/{layer_id}/map/tiles/{tms_id}/{z}/{y}/{x}", include_in_schema=False)
    async def raster_tile(request: Request, layer_id: str, tms_id: str, z: str, y: str, x: str) -> Response:
        from tiles.raster import check_format

        t = gtms.check_tile(tms_id, z, y, x)
        check_params(request, ("f", "item"))
        fmt = check_format(request.query_params.get("f"))
        return await _raster_tile(request, layer_id, t, fmt)

    # --- XYZ aliases ----------------------------------------------------------------------------
    @router.get("/xyz/{layer_id}/{z}/{x}/{y_ext}", include_in_schema=False)
    async def xyz_tile(request: Request, layer_id: str, z: str, x: str, y_ext: str) -> Response:
        """``/xyz/{layer}/{z}/{x}/{y}.mvt|png|webp``: WebMercatorQuad tiles in XYZ order."""
        y, _, ext = y_ext.partition(".")
        t = gtms.check_tile("WebMercatorQuad", z, y, x)
        svc = await service(request)
        if layer_id in svc.layers:
            check_params(request, ())
            if ext not in ("mvt", "pbf", ""):
                raise InputError(f"Vector tiles are .mvt (or .pbf), not .{ext}.")
            layer = svc.layers[layer_id]
            _check_zoom(layer, t)
            res = await svc.vector_tile(request.app.state.gis.pool, [layer], t)
            return tile_response(request, res.body, res.etag, MVT, svc.settings.max_age)
        if layer_id in svc.raster_layers:
            from tiles.raster import check_format

            check_params(request, ("item",))
            return await _raster_tile(request, layer_id, t, check_format(ext or "png"))
        raise NotFoundError(f"There is no layer {layer_id!r} with tiles; vector: "
                            f"{', '.join(svc.layers) or '(none)'}; raster: "
                            f"{', '.join(svc.raster_layers) or '(none)'}.")

    from api.map import map_routes

    map_routes(router, service)
    return router
make_router = tiles_router  # the api.parts interface
