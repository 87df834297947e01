"""The OpenAPI 3.0.3 document served at ``/api``, built from the catalog.

FastAPI's own generator writes OpenAPI 3.1 (JSON Schema 2020-12 with ``anyOf`` nulls), which GDAL
and QGIS do not read, and it cannot describe per-collection queryable parameters. This module
writes the OGC API - Features document by hand instead: generic paths with ``{collectionId}`` and
one set of paths per collection whose ``items`` operation lists that collection's queryables. The
``limit`` parameter carries ``default`` and ``maximum`` inline in every items operation (and in
``components``) so that clients pick large pages.
"""

from __future__ import annotations

from api.params import MAX_OFFSET
from api.settings import ApiSettings
from api.state import Snapshot
from gis.query import CRS84_URI, SUPPORTED_CRS

OPENAPI_VERSION = "3.0.3"

_GEOJSON = "application/geo+json"
_JSON = "application/json"
_HTML = "text/html"
_CSV = "text/csv"
_JSONFG = "application/vnd.ogc.fg+json"

_TYPES = {
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "string": {"type": "string"},
}


def _param(
    name: str,
    where: str,
    description: str,
    schema: dict,
    *,
    required: bool = False,
    style: str | None = None,
    explode: bool | None = None,
) -> dict:
    p = {
        "name": name,
        "in": where,
        "description": description,
        "required": required,
        "schema": schema,
    }
    if style is not None:
        p["style"] = style
    if explode is not None:
        p["explode"] = explode
    return p


def _parameters(settings: ApiSettings, filters: bool) -> dict[str, dict]:
    crs_enum = list(SUPPORTED_CRS)
    params = {
        "collectionId": _param(
            "collectionId",
            "path",
            "Collection id (see /collections).",
            {"type": "string"},
            required=True,
        ),
        "featureId": _param("featureId", "path", "Feature id.", {"type": "string"}, required=True),
        "limit": _param(
            "limit",
            "query",
            f"Features per page (default {settings.default_limit}, at most "
            f"{settings.max_limit}). Follow the 'next' link for the following page.",
            {
                "type": "integer",
                "minimum": 1,
                "maximum": settings.max_limit,
                "default": settings.default_limit,
            },
            style="form",
            explode=False,
        ),
        "offset": _param(
            "offset",
            "query",
            "Features to skip (prefer the 'next' links: they page "
            "by key, at the same speed at any depth).",
            {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
            style="form",
            explode=False,
        ),
        "cursor": _param(
            "cursor",
            "query",
            "Opaque keyset position from a 'next' or 'prev' link.",
            {"type": "string"},
            style="form",
            explode=False,
        ),
        "bbox": _param(
            "bbox",
            "query",
            "minx,miny,maxx,maxy (or 6 numbers with heights) in "
            "bbox-crs (CRS84 longitude/latitude by default).",
            {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}},
            style="form",
            explode=False,
        ),
        "bbox-crs": _param(
            "bbox-crs",
            "query",
            "CRS of bbox (OGC URI).",
            {"type": "string", "format": "uri", "enum": crs_enum, "default": CRS84_URI},
            style="form",
            explode=False,
        ),
        "datetime": _param(
            "datetime",
            "query",
            "An RFC 3339 instant or date, or an interval "
            "start/end with '..' for an open end; matched against the features' "
            "validity.",
            {"type": "string"},
            style="form",
            explode=False,
        ),
        "properties": _param(
            "properties",
            "query",
            "Comma-separated fields to return.",
            {"type": "array", "items": {"type": "string"}},
            style="form",
            explode=False,
        ),
        "sortby": _param(
            "sortby",
            "query",
            "Comma-separated fields, '-' prefix for descending.",
            {"type": "array", "items": {"type": "string"}},
            style="form",
            explode=False,
        ),
        "crs": _param(
            "crs",
            "query",
            "Output CRS (OGC URI); the Content-Crs header says which was used.",
            {"type": "string", "format": "uri", "enum": crs_enum, "default": CRS84_URI},
            style="form",
            explode=False,
        ),
        "skipGeometry": _param(
            "skipGeometry",
            "query",
            "Leave geometries out.",
            {"type": "boolean", "default": False},
            style="form",
            explode=False,
        ),
        "f": _param(
            "f",
            "query",
            "Response format (overrides the Accept header).",
            {"type": "string", "enum": ["json", "html", "csv", "jsonfg"]},
            style="form",
            explode=False,
        ),
        "lang": _param(
            "lang",
            "query",
            "Language of titles and descriptions (overrides Accept-Language).",
            {"type": "string", "enum": ["en", "vi"], "default": "en"},
            style="form",
            explode=False,
        ),
    }
    if filters:
        params["filter"] = _param(
            "filter",
            "query",
            "A CQL2 filter (see /conformance for the classes supported).",
            {"type": "string"},
            style="form",
            explode=False,
        )
        params["filter-lang"] = _param(
            "filter-lang",
            "query",
            "Language of filter.",
            {"type": "string", "enum": ["cql2-text", "cql2-json"], "default": "cql2-text"},
            style="form",
            explode=False,
        )
        params["filter-crs"] = _param(
            "filter-crs",
            "query",
            "CRS of the filter's geometries.",
            {"type": "string", "format": "uri", "enum": crs_enum, "default": CRS84_URI},
            style="form",
            explode=False,
        )
    return params


def _responses(media: list[str], schema_ref: str, description: str) -> dict:
    content = {}
    for m in media:
        if m == _HTML:
            content[m] = {"schema": {"type": "string"}}
        elif m == _CSV:
            content[m] = {"schema": {"type": "string"}}
        else:
            content[m] = {"schema": {"$ref": schema_ref}}
    return {
        "200": {"description": description, "content": content},
        "400": {"$ref": "#/components/responses/InvalidParameter"},
        "404": {"$ref": "#/components/responses/NotFound"},
        "500": {"$ref": "#/components/responses/ServerError"},
    }


def _schemas() -> dict:
    link = {
        "type": "object",
        "required": ["href", "rel"],
        "properties": {
            "href": {"type": "string"},
            "rel": {"type": "string"},
            "type": {"type": "string"},
            "title": {"type": "string"},
            "hreflang": {"type": "string"},
        },
    }
    links = {"type": "array", "items": {"$ref": "#/components/schemas/link"}}
    return {
        "exception": {
            "type": "object",
            "required": ["code"],
            "properties": {"code": {"type": "string"}, "description": {"type": "string"}},
        },
        "link": link,
        "landingPage": {
            "type": "object",
            "required": ["links"],
            "properties": {
                "title": {"type": "string"},
                "description": {"type": "string"},
                "links": links,
            },
        },
        "confClasses": {
            "type": "object",
            "required": ["conformsTo"],
            "properties": {"conformsTo": {"type": "array", "items": {"type": "string"}}},
        },
        "collection": {
            "type": "object",
            "required": ["id", "links"],
            "properties": {
                "id": {"type": "string"},
                "title": {"type": "string"},
                "description": {"type": "string"},
                "keywords": {"type": "array", "items": {"type": "string"}},
                "extent": {"type": "object"},
                "itemType": {"type": "string"},
                "crs": {"type": "array", "items": {"type": "string"}},
                "storageCrs": {"type": "string"},
                "links": links,
            },
        },
        "collections": {
            "type": "object",
            "required": ["links", "collections"],
            "properties": {
                "links": links,
                "collections": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/collection"},
                },
            },
        },
        "featureGeoJSON": {
            "type": "object",
            "required": ["type", "geometry", "properties"],
            "properties": {
                "type": {"type": "string", "enum": ["Feature"]},
                "id": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
                "geometry": {"type": "object", "nullable": True},
                "properties": {"type": "object", "nullable": True},
                "links": links,
            },
        },
        "featureCollectionGeoJSON": {
            "type": "object",
            "required": ["type", "features"],
            "properties": {
                "type": {"type": "string", "enum": ["FeatureCollection"]},
                "features": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/featureGeoJSON"},
                },
                "links": links,
                "timeStamp": {"type": "string", "format": "date-time"},
                "numberMatched": {"type": "integer", "minimum": 0},
                "numberReturned": {"type": "integer", "minimum": 0},
            },
        },
        "queryables": {"type": "object"},
    }


def build(snapshot: Snapshot, settings: ApiSettings, base: str, lang: str, filters: bool) -> dict:
    """The OpenAPI 3.0.3 document of the API at ``base``."""
    params = _parameters(settings, filters)
    ref = {name: {"$ref": f"#/components/parameters/{name}"} for name in params}
    item_query = [
        "limit",
        "offset",
        "cursor",
        "bbox",
        "bbox-crs",
        "datetime",
        "properties",
        "sortby",
        "crs",
        "skipGeometry",
        "f",
        "lang",
    ]
    if filters:
        item_query += ["filter", "filter-lang", "filter-crs"]

    def items_params(path_param: bool, extra: list[dict]) -> list[dict]:
        out = [ref["collectionId"]] if path_param else []
        for name in item_query:
            out.append(params["limit"] if name == "limit" else ref[name])  # limit inline: GDAL/QGIS
        return out + extra

    paths: dict[str, dict] = {
        "/": {
            "get": {
                "tags": ["Capabilities"],
                "summary": "Landing page",
                "operationId": "getLandingPage",
                "parameters": [ref["f"], ref["lang"]],
                "responses": _responses(
                    [_JSON, _HTML], "#/components/schemas/landingPage", "The landing page"
                ),
            }
        },
        "/conformance": {
            "get": {
                "tags": ["Capabilities"],
                "summary": "Conformance classes",
                "operationId": "getConformance",
                "parameters": [ref["f"], ref["lang"]],
                "responses": _responses(
                    [_JSON, _HTML], "#/components/schemas/confClasses", "The conformance classes"
                ),
            }
        },
        "/api": {
            "get": {
                "tags": ["Capabilities"],
                "summary": "This API definition",
                "operationId": "getApi",
                "parameters": [ref["f"]],
                "responses": {
                    "200": {
                        "description": "The OpenAPI 3.0 document",
                        "content": {
                            "application/vnd.oai.openapi+json;version=3.0": {
                                "schema": {"type": "object"}
                            },
                            _HTML: {"schema": {"type": "string"}},
                        },
                    }
                },
            }
        },
        "/collections": {
            "get": {
                "tags": ["Capabilities"],
                "summary": "The collections",
                "operationId": "getCollections",
                "parameters": [ref["f"], ref["lang"]],
                "responses": _responses(
                    [_JSON, _HTML], "#/components/schemas/collections", "The published collections"
                ),
            }
        },
    }
    feature_params = [ref[n] for n in ("crs", "properties", "skipGeometry", "f", "lang")]
    meta_params = [ref["f"], ref["lang"]]
    schema_media = ["application/schema+json", _HTML]
    # the operations of a collection: (path suffix, tag of the generic path, summary, operationId of
    # the generic path, prefix of the per-collection one, parameters after the path ones, media types,
    # response schema, response description)
    operations = [
        ("", "Capabilities", "metadata", "describeCollection", "describe", meta_params,
         [_JSON, _HTML], "collection", "The collection"),
        ("/queryables", "Capabilities", "queryables", "getQueryables", "queryables", meta_params,
         schema_media, "queryables", "A JSON Schema"),
        ("/feature-schema", "Capabilities", "JSON Schema of the features", "getFeatureSchema",
         "feature-schema", meta_params, ["application/schema+json"], "queryables",
         "A JSON Schema of GeoJSON features"),
        ("/items", "Data", "features", "getFeatures", "features", None,
         [_GEOJSON, _JSONFG, _HTML, _CSV], "featureCollectionGeoJSON", "A page of features"),
        ("/items/{featureId}", "Data", "a feature", "getFeature", "feature",
         [ref["featureId"], *feature_params], [_GEOJSON, _JSONFG, _HTML, _CSV], "featureGeoJSON",
         "The feature"),
    ]

    def operation(tag: str, summary: str, op_id: str, params: list, media: list, schema: str,
                  description: str) -> dict:
        return {
            "get": {
                "tags": [tag],
                "summary": summary,
                "operationId": op_id,
                "parameters": params,
                "responses": _responses(media, f"#/components/schemas/{schema}", description),
            }
        }

    for suffix, tag, summary, op_id, _, extra, media, schema, description in operations:
        given = [ref["collectionId"], *extra] if extra is not None else items_params(True, [])
        op = operation(tag, f"A collection: {summary}", op_id, given, media, schema, description)
        if suffix == "/items":
            op["get"]["description"] = (
                "Also takes one parameter per queryable property (equality filter); "
                "see /collections/{collectionId}/queryables."
            )
        paths["/collections/{collectionId}" + suffix] = op
    for cid, info in snapshot.collections.items():
        c = info.collection
        title = c.title(lang)
        qparams = []
        for f in c.fields:
            schema = dict(_TYPES.get(f.json_type, {"type": "string"}))
            if f.json_format:
                schema["format"] = f.json_format
            qparams.append(
                _param(
                    f.name,
                    "query",
                    f"{f.title_en or f.name} / {f.title_vi or f.name}: "
                    "features whose value equals this.",
                    schema,
                    style="form",
                    explode=False,
                )
            )
        for suffix, _, summary, _, prefix, extra, media, schema, description in operations:
            paths[f"/collections/{cid}{suffix}"] = operation(
                f"Collection {cid}", f"{title}: {summary}", f"{prefix}-{cid}",
                extra if extra is not None else items_params(False, qparams),
                media, schema, description,
            )
    from api import parts

    paths.update(parts.openapi_paths(snapshot))  # Tiles, Coverages, Processes, downloads, Records
    exc = {"application/json": {"schema": {"$ref": "#/components/schemas/exception"}}}
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "HCMC open GIS - OGC API"
            if lang == "en"
            else "Dữ liệu GIS mở TP.HCM - OGC API",
            "version": "1.0.0",
            "description": "OGC API - Features (Part 1 core, Part 2 CRS, Part 3 queryables"
            + (" and CQL2 filters" if filters else "")
            + ") for the land, planning "
            "and city data of Ho Chi Minh City. Only published fields are served.",
            "license": {"name": "Per collection (see each collection's license)"},
        },
        "servers": [{"url": base or "/"}],
        "tags": [{"name": "Capabilities"}, {"name": "Data"}, {"name": "Tiles"}]
        + [
            {"name": f"Collection {cid}", "description": i.collection.title(lang)}
            for cid, i in snapshot.collections.items()
        ],
        "paths": paths,
        "components": {
            "parameters": params,
            "schemas": _schemas(),
            "responses": {
                "InvalidParameter": {
                    "description": "A parameter is invalid (the description names it).",
                    "content": exc,
                },
                "NotFound": {"description": "No such collection or feature.", "content": exc},
                "ServerError": {"description": "A server error.", "content": exc},
            },
        },
    }
