"""The OGC API routes: landing page, conformance, API definition, collections, features."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import urlencode

import orjson
import psycopg
from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Route

from api import openapi
from api import parts
from api.features import PageReader, csv_text, filter_error
from api.negotiation import MEDIA, language, negotiate
from api.params import COMMON, check_params, cql2_available, item_query, items_query
from api.readahead import Page, next_scope, request_key
from api.state import ApiState, CollectionInfo
from gis.query import CRS84_URI, SUPPORTED_CRS, FeatureQuery, not_a_feature

router = APIRouter()

ITEM_FORMATS = ("json", "html", "csv", "jsonfg")
META_FORMATS = ("json", "html")
FORMAT_TITLES = {"json": "GeoJSON", "html": "HTML", "csv": "CSV", "jsonfg": "JSON-FG"}
JSONFG_CONFORMS = ["http://www.opengis.net/spec/json-fg-1/0.2/conf/core"]

CORE_CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/landing-page",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/json",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/collections",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf/sorting",
    "http://www.opengis.net/spec/json-fg-1/0.2/conf/core",
]
FILTER_CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
]

LANDING = {
    "en": (
        "Ho Chi Minh City open GIS",
        "Land, planning and city data of Ho Chi Minh City as OGC API - Features: cadastral "
        "parcels (no owner information), zoning plan lots, buildings, roads, points of interest "
        "and administrative units.",
    ),
    "vi": (
        "Dữ liệu GIS mở TP. Hồ Chí Minh",
        "Dữ liệu đất đai, quy hoạch và đô thị của TP. Hồ Chí Minh theo chuẩn OGC API - Features: "
        "thửa đất (không có thông tin chủ sử dụng), lô quy hoạch, công trình, đường giao thông, "
        "điểm quan tâm và đơn vị hành chính.",
    ),
}


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _state(request: Request) -> ApiState:
    return request.app.state.gis


def _base(request: Request) -> str:
    """The API root's URL (no trailing slash), worked out once per request."""
    scope = request.scope
    base = scope.get("gis.base")
    if base is None:
        base = scope["gis.base"] = str(request.base_url).rstrip("/")
    return base


def _url(request: Request, path: str, params: dict | list | None = None) -> str:
    url = _base(request) + path
    if params:
        url += "?" + urlencode(params)
    return url


def _with(request: Request, drop: tuple[str, ...] = (), **set_: str) -> str:
    """The request's URL with parameters dropped or set."""
    q: list = []
    if request.scope.get("query_string"):  # most requests have none: no parsing then
        names = set(drop) | set(set_)
        q = [(k, v) for k, v in request.query_params.multi_items() if k not in names]
    q += set_.items()
    url = _base(request) + request.url.path
    return url + "?" + urlencode(q) if q else url


def _json(
    body, status: int = 200, media: str = MEDIA["json"], headers: dict | None = None
) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=media, headers=headers)


def _lang_headers(lang: str) -> dict:
    return {"Content-Language": lang}


def _alternates(request: Request, formats: tuple[str, ...], current: str) -> list[dict]:
    out = []
    for f in formats:
        if f == current:
            continue
        media = MEDIA["geojson"] if (f == "json" and formats == ITEM_FORMATS) else MEDIA[f]
        out.append(
            {
                "href": _with(request, ("f",), f=f),
                "rel": "alternate",
                "type": media,
                "title": f"This document as {FORMAT_TITLES[f]}",
            }
        )
    return out


def _self_link(request: Request, media: str) -> dict:
    return {"href": str(_with(request)), "rel": "self", "type": media, "title": "This document"}


def _conformance() -> list[str]:
    """The classes really implemented: CQL2 ones only when the translator is installed, and
    exactly those it declares (:data:`gis.cql2.CONFORMANCE`)."""
    if not cql2_available():
        return list(CORE_CONFORMANCE) + parts.conformance()
    from gis import cql2

    return CORE_CONFORMANCE + FILTER_CONFORMANCE + list(cql2.CONFORMANCE) + parts.conformance()


def _html(
    request: Request, template: str, lang: str, alternates: list[dict], **ctx
) -> HTMLResponse:
    pages = request.app.state.pages
    return pages.render(
        template,
        lang=lang,
        base=_base(request),
        self_url=str(request.url),
        alternates=alternates,
        **ctx,
    )


# ---------------------------------------------------------------------------------------------
# landing page, conformance, API definition
# ---------------------------------------------------------------------------------------------


@router.get("/", include_in_schema=False)
async def landing(request: Request) -> Response:
    check_params(request, COMMON)
    fmt = negotiate(request, META_FORMATS)
    lang = language(request)
    title, description = LANDING[lang]
    doc = {
        "title": title,
        "description": description,
        "links": [
            _self_link(request, MEDIA[fmt]),
            *_alternates(request, META_FORMATS, fmt),
            {
                "href": _url(request, "/api"),
                "rel": "service-desc",
                "type": MEDIA["openapi"],
                "title": "The API definition (OpenAPI 3.0)",
            },
            {
                "href": _url(request, "/api.html"),
                "rel": "service-doc",
                "type": MEDIA["html"],
                "title": "The API documentation",
            },
            {
                "href": _url(request, "/conformance"),
                "rel": "conformance",
                "type": MEDIA["json"],
                "title": "Conformance classes",
            },
            {
                "href": _url(request, "/collections"),
                "rel": "data",
                "type": MEDIA["json"],
                "title": "Collections",
            },
            *parts.landing_links(_base(request)),
        ],
    }
    if fmt == "html":
        return _html(
            request, "landing.html", lang, _alternates(request, META_FORMATS, fmt), doc=doc
        )
    return _json(doc, headers=_lang_headers(lang))


@router.get("/conformance", include_in_schema=False)
async def conformance(request: Request) -> Response:
    check_params(request, COMMON)
    fmt = negotiate(request, META_FORMATS)
    lang = language(request)
    doc = {"conformsTo": _conformance()}
    if fmt == "html":
        return _html(
            request, "conformance.html", lang, _alternates(request, META_FORMATS, fmt), doc=doc
        )
    return _json(doc)


@router.get("/api", include_in_schema=False)
async def api_definition(request: Request) -> Response:
    check_params(request, COMMON)
    fmt = negotiate(request, META_FORMATS)
    if fmt == "html":
        return await api_docs(request)
    snap = _state(request).snapshot
    key = ("openapi", _base(request), language(request), cql2_available())
    body = snap.memo.get(key)
    if body is None:  # built once per catalog snapshot, base URL and language
        doc = openapi.build(snap, _state(request).settings, key[1], key[2], key[3])
        body = snap.memo[key] = orjson.dumps(doc)
    return Response(body, media_type=MEDIA["openapi"])


@router.get("/api.html", include_in_schema=False)
async def api_docs(request: Request) -> Response:
    pages = request.app.state.pages
    page = pages.env.get_template("docs.html").render(base=_base(request), title=LANDING["en"][0])
    return HTMLResponse(page)


# ---------------------------------------------------------------------------------------------
# collections
# ---------------------------------------------------------------------------------------------


def _collection_doc(
    request: Request, info: CollectionInfo, lang: str, fmt: str, is_self: bool
) -> dict:
    c = info.collection
    base = f"/collections/{c.id}"
    doc: dict = {
        "id": c.id,
        "title": c.title(lang),
        "description": c.description(lang),
        "keywords": list(c.keywords),
        "itemType": "feature",
    }
    if c.licence_id or c.licence:  # an SPDX id where there is one; the statement as rights
        doc["license"] = c.licence_id or c.licence
        if c.licence_id and c.licence:
            doc["rights"] = c.licence
    if c.attribution:
        doc["attribution"] = c.attribution
    extent: dict = {}
    if info.bbox is not None:
        extent["spatial"] = {"bbox": [list(info.bbox)], "crs": CRS84_URI}
    if info.interval is not None:
        extent["temporal"] = {
            "interval": [list(info.interval)],
            "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian",
        }
    if extent:
        doc["extent"] = extent
    doc["crs"] = list(SUPPORTED_CRS)
    doc["storageCrs"] = CRS84_URI
    links = []
    if is_self:
        links.append(_self_link(request, MEDIA[fmt]))
        links += _alternates(request, META_FORMATS, fmt)
    else:
        links.append(
            {
                "href": _url(request, base),
                "rel": "self" if is_self else "collection",
                "type": MEDIA["json"],
                "title": c.title(lang),
            }
        )
    links += [
        {
            "href": _url(request, base + "/items"),
            "rel": "items",
            "type": MEDIA["geojson"],
            "title": "Features as GeoJSON",
        },
        {
            "href": _url(request, base + "/items", {"f": "jsonfg"}),
            "rel": "items",
            "type": MEDIA["jsonfg"],
            "title": "Features as JSON-FG",
        },
        {
            "href": _url(request, base + "/items", {"f": "html"}),
            "rel": "items",
            "type": MEDIA["html"],
            "title": "Features as HTML",
        },
        {
            "href": _url(request, base + "/items", {"f": "csv"}),
            "rel": "items",
            "type": MEDIA["csv"],
            "title": "Features as CSV",
        },
        {
            "href": _url(request, base + "/queryables"),
            "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables",
            "type": MEDIA["schema"],
            "title": "Queryable properties",
        },
        {
            # RFC 8288 relation types are case-insensitive; older GDAL (3.6, Debian 12) only
            # matches "describedBy"; GDAL then takes the field types from the schema, not from a
            # sample page
            "href": _url(request, base + "/feature-schema"),
            "rel": "describedBy",
            "type": MEDIA["schema"],
            "title": "JSON Schema of the features (GeoJSON)",
        },
    ]
    links += parts.collection_links(_base(request), info)
    doc["links"] = links
    if is_self:  # metadata of the records part (contact, source, lineage, field schema...)
        for key, value in parts.collection_members(info, lang).items():
            doc.setdefault(key, value)
    return doc


@router.get("/collections", include_in_schema=False)
async def collections(request: Request) -> Response:
    check_params(request, COMMON)
    fmt = negotiate(request, META_FORMATS)
    lang = language(request)
    snap = _state(request).snapshot
    doc = {
        "links": [_self_link(request, MEDIA[fmt]), *_alternates(request, META_FORMATS, fmt)],
        "collections": [
            _collection_doc(request, info, lang, fmt, False) for info in snap.collections.values()
        ]
        + parts.extra_collections(request, lang),
        "crs": list(SUPPORTED_CRS),
    }
    if fmt == "html":
        return _html(
            request, "collections.html", lang, _alternates(request, META_FORMATS, fmt), doc=doc
        )
    return _json(doc, headers=_lang_headers(lang))


@router.get("/collections/{collection_id}", include_in_schema=False)
async def collection(request: Request, collection_id: str) -> Response:
    snap = _state(request).snapshot
    check_params(request, COMMON)
    fmt = negotiate(request, META_FORMATS)
    lang = language(request)
    doc = None
    if collection_id not in snap.collections:  # a coverage or the records catalogue?
        doc = parts.find_collection(request, collection_id, lang)
    if doc is None:
        doc = _collection_doc(request, snap.get(collection_id), lang, fmt, True)
    if fmt == "html":
        return _html(
            request, "collection.html", lang, _alternates(request, META_FORMATS, fmt), doc=doc
        )
    return _json(doc, headers=_lang_headers(lang))


_GEOMETRY_FORMATS = {
    "Point": "geometry-point",
    "MultiPoint": "geometry-multipoint",
    "LineString": "geometry-linestring",
    "MultiLineString": "geometry-multilinestring",
    "Polygon": "geometry-polygon",
    "MultiPolygon": "geometry-multipolygon",
}


def _queryables(c, lang: str) -> dict:
    """Queryables JSON Schema (used when :mod:`gis.cql2` is not installed)."""
    props: dict = {
        c.id_column: {
            "title": "Identifier" if lang == "en" else "Mã định danh",
            "type": "integer" if c.id_type in ("int2", "int4", "int8") else "string",
            "x-ogc-role": "id",
        }
    }
    for f in c.fields:
        p: dict = {
            "title": (f.title_vi if lang == "vi" else f.title_en) or f.name,
            "type": f.json_type,
        }
        if f.json_format:
            p["format"] = f.json_format
        if f.unit:
            p["x-ogc-unit"] = f.unit
        props[f.name] = p
    props["geometry"] = {
        "title": "Geometry" if lang == "en" else "Hình học",
        "format": _GEOMETRY_FORMATS.get(c.geometry_type, "geometry-any"),
        "x-ogc-role": "primary-geometry",
    }
    return {
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        "type": "object",
        "title": c.title(lang),
        "properties": props,
        "additionalProperties": False,
    }


@router.get("/collections/{collection_id}/queryables", include_in_schema=False)
async def queryables(request: Request, collection_id: str) -> Response:
    info = _state(request).snapshot.get(collection_id)
    check_params(request, COMMON)
    fmt = negotiate(request, META_FORMATS)
    lang = language(request)
    c = info.collection
    if cql2_available():  # the filter's own view of the queryables: what it accepts
        from gis import cql2

        doc = cql2.queryables(c, lang)
    else:
        doc = _queryables(c, lang)
    doc = {
        "$schema": doc.pop("$schema"),
        "$id": _url(request, f"/collections/{c.id}/queryables"),
        **doc,
    }
    if fmt == "html":
        return _html(
            request,
            "queryables.html",
            lang,
            _alternates(request, META_FORMATS, fmt),
            doc=doc,
            cid=c.id,
        )
    return _json(doc, media=MEDIA["schema"], headers=_lang_headers(lang))


def _feature_schema(c, lang: str) -> dict:
    """JSON Schema of the collection's GeoJSON features, with the database type of every field.

    Clients that cannot guess a field's type from values (an all-null column, a float column whose
    first page holds whole numbers, an empty collection) read it here: GDAL's OAPIF driver follows
    the collection's ``describedBy`` link. Each property has one scalar ``type`` (all GDAL reads:
    a ``["number", "null"]`` type would make it a string field); any property may be null.
    """
    props: dict = {}
    for f in c.fields:
        p: dict = {"title": (f.title_vi if lang == "vi" else f.title_en) or f.name}
        p["type"] = f.json_type
        if f.json_format:
            p["format"] = f.json_format
        if f.unit:
            p["x-ogc-unit"] = f.unit
        props[f.name] = p
    gtype = c.geometry_type if c.geometry_type in _GEOMETRY_FORMATS else "Geometry"
    return {
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        "type": "object",
        "title": c.title(lang),
        "description": "A GeoJSON feature of this collection; any property may be null.",
        "required": ["type", "geometry", "properties"],
        "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "id": {
                "type": "integer" if c.id_type in ("int2", "int4", "int8") else "string",
                "x-ogc-role": "id",
            },
            "geometry": {
                "oneOf": [{"type": "null"}, {"$ref": f"https://geojson.org/schema/{gtype}.json"}]
            },
            "properties": {"type": "object", "properties": props},
        },
    }


@router.get("/collections/{collection_id}/feature-schema", include_in_schema=False)
async def feature_schema(request: Request, collection_id: str) -> Response:
    info = _state(request).snapshot.get(collection_id)
    check_params(request, COMMON)
    negotiate(request, ("json",))
    lang = language(request)
    c = info.collection
    doc = _feature_schema(c, lang)
    doc = {
        "$schema": doc.pop("$schema"),
        "$id": _url(request, f"/collections/{c.id}/feature-schema"),
        **doc,
    }
    return _json(doc, media=MEDIA["schema"], headers=_lang_headers(lang))


# ---------------------------------------------------------------------------------------------
# features
# ---------------------------------------------------------------------------------------------


def _crs_headers(q: FeatureQuery) -> dict:
    return {"Content-Crs": f"<{q.crs.uri}>"}


async def _open(request: Request, info: CollectionInfo, q: FeatureQuery, shape: str) -> PageReader:
    state = _state(request)
    reader = PageReader(
        state.pool, info, q, shape, state.settings.stream_chunk, state.settings.count_cap
    )
    try:
        await reader.start()
        if q.cql is not None:  # errors of a filter on the data surface before the response
            await reader.settle()
    except psycopg.Error as exc:
        await reader.close()
        mapped = filter_error(exc, q)
        if mapped is not None:
            raise mapped from None
        raise
    return reader


def _page_links(
    request: Request, reader: PageReader, media: str, fmt: str
) -> tuple[list[dict], dict]:
    """Links of a page, and the navigation URLs (next, prev, first) for HTML."""
    q = reader.q
    links = [
        _self_link(request, media),
        *_alternates(request, ITEM_FORMATS, fmt),
        {
            "href": _url(request, f"/collections/{q.collection.id}"),
            "rel": "collection",
            "type": MEDIA["json"],
            "title": q.collection.title_en,
        },
    ]
    nav = {"next_url": None, "prev_url": None, "first_url": None}
    nxt = reader.next_cursor()
    if nxt is not None:
        nav["next_url"] = _with(request, ("cursor", "offset"), cursor=nxt.encode())
        links.append({"href": nav["next_url"], "rel": "next", "type": media, "title": "Next page"})
    prev, first = reader.prev_cursor()
    if prev is not None:
        nav["prev_url"] = _with(request, ("cursor", "offset"), cursor=prev.encode())
    elif first:
        nav["prev_url"] = _with(request, ("cursor", "offset"))
    elif q.cursor is None and q.offset > 0:
        o = max(0, q.offset - q.limit)
        nav["prev_url"] = _with(request, ("cursor", "offset"), **({"offset": str(o)} if o else {}))
    if nav["prev_url"]:
        links.append(
            {"href": nav["prev_url"], "rel": "prev", "type": media, "title": "Previous page"}
        )
    if q.cursor is not None or q.offset > 0:
        nav["first_url"] = _with(request, ("cursor", "offset"))
    return links, nav


def _tail(request: Request, reader: PageReader, media: str, fmt: str) -> tuple[bytes, str | None]:
    """The end of a page's JSON (counts, time stamp, links), and its next page's URL."""
    page = reader.page
    links, nav = _page_links(request, reader, media, fmt)
    tail = {"numberReturned": page.returned}
    if page.matched is not None:
        tail["numberMatched"] = page.matched
    tail["timeStamp"] = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    tail["links"] = links
    return b"]," + orjson.dumps(tail)[1:], nav["next_url"]


async def _json_body(
    request: Request, reader: PageReader, head: bytes, media: str, fmt: str
) -> AsyncIterator[bytes]:
    try:
        yield head
        sep = b""
        async for rows in reader.chunks():
            if rows:
                yield sep + b",".join([r[0] for r in rows])
                sep = b","
        await reader.finish()
        tail, next_url = _tail(request, reader, media, fmt)
        if reader.q.cursor is not None:  # this client follows next links: it will ask for more
            _read_ahead(request, next_url)
        yield tail
    finally:
        await reader.close()


def _read_ahead(request: Request, next_url: str | None) -> None:
    """Start computing the page at ``next_url`` for this client (see :mod:`api.readahead`)."""
    scope = request.scope
    if scope.get("gis.read_ahead"):  # a page computed ahead: tell it where its walk goes on
        scope["gis.next_url"] = next_url
        return
    state = _state(request)
    ra = state.read_ahead
    if ra is None or next_url is None or scope.get("method") != "GET":
        return
    ahead = next_scope(scope, next_url)
    ra.schedule(request_key(ahead), state.snapshot, lambda budget: _page_ahead(ahead, budget))


async def _page_ahead(scope: dict, budget: int) -> Page | None:
    """The response to the request of ``scope``, read to its end (None when it is not a
    streamed page of at most ``budget`` bytes)."""
    response = await items(Request(scope), scope["path_params"]["collection_id"])
    if response.status_code != 200 or not isinstance(response, StreamingResponse):
        return None
    parts: list[bytes] = []
    size = 0
    body = response.body_iterator
    try:
        async for part in body:
            size += len(part)
            if size > budget:
                return None
            parts.append(part)
    finally:
        await body.aclose()
    headers = [(k, v) for k, v in response.raw_headers if k != b"content-length"]
    return Page(headers, b"".join(parts), scope.get("gis.next_url"))


async def _page_taken(request: Request) -> Response | None:
    """The page computed ahead for this very request, if there is one."""
    state = _state(request)
    ra = state.read_ahead
    scope = request.scope
    if ra is None or scope.get("gis.read_ahead") or b"cursor=" not in scope["query_string"]:
        return None
    page = await ra.take(request_key(request.scope), state.snapshot)
    if page is None:
        return None
    _read_ahead(request, page.next_url)
    response = Response(page.body)
    response.raw_headers = [
        *page.headers,
        (b"content-length", str(len(page.body)).encode("latin-1")),
    ]
    return response


async def _csv_body(reader: PageReader, header: list[str]) -> AsyncIterator[bytes]:
    try:
        nkeys = len(reader.q.keys)
        first = True
        async for rows in reader.chunks():
            if rows or first:
                yield csv_text(header if first else None, rows, nkeys).encode()
                first = False
        await reader.finish()
    finally:
        await reader.close()


def _fields(q: FeatureQuery, lang: str) -> list[dict]:
    c = q.collection
    names = q.properties if q.properties is not None else tuple(c.field_names)
    out = []
    for n in names:
        f = c.field(n)
        out.append(
            {"name": n, "title": (f.title_vi if lang == "vi" else f.title_en) or n, "unit": f.unit}
        )
    return out


@router.get("/collections/{collection_id}/items", include_in_schema=False)
async def items(request: Request, collection_id: str) -> Response:
    state = _state(request)
    taken = await _page_taken(request)
    if taken is not None:
        return taken
    info = state.snapshot.get(collection_id)
    fmt = negotiate(request, ITEM_FORMATS)
    lang = language(request)
    q = items_query(request, info.collection, state.settings)
    if fmt == "html":
        return await _items_html(request, info, q, lang)
    shape = {"json": "geojson", "jsonfg": "jsonfg", "csv": "csv"}[fmt]
    reader = await _open(request, info, q, shape)
    headers = _crs_headers(q) | _lang_headers(lang)
    if fmt == "csv":
        c = info.collection
        names = list(q.properties) if q.properties is not None else c.field_names
        header = [c.id_column, *names, "geometry"]
        headers["Content-Disposition"] = f'inline; filename="{c.id}.csv"'
        return StreamingResponse(
            _csv_body(reader, header), media_type="text/csv; charset=utf-8", headers=headers
        )
    if fmt == "jsonfg":
        media = MEDIA["jsonfg"]
        head = (
            orjson.dumps(
                {
                    "type": "FeatureCollection",
                    "conformsTo": JSONFG_CONFORMS,
                    "featureType": info.collection.id,
                    "coordRefSys": q.crs.uri,
                }
            )[:-1]
            + b',"features":['
        )
    else:
        media = MEDIA["geojson"]
        head = b'{"type":"FeatureCollection","features":['
    return StreamingResponse(
        _json_body(request, reader, head, media, fmt), media_type=media, headers=headers
    )


async def _items_html(
    request: Request, info: CollectionInfo, q: FeatureQuery, lang: str
) -> Response:
    from dataclasses import replace

    from gis.query import SUPPORTED_CRS as CRSS

    q = replace(q, crs=CRSS[CRS84_URI])  # the map is in CRS84
    reader = await _open(request, info, q, "geojson")
    try:
        texts = []
        async for rows in reader.chunks():
            texts.extend(r[0] for r in rows)
        await reader.finish()
    finally:
        await reader.close()
    geojson = '{"type":"FeatureCollection","features":[' + b",".join(texts).decode() + "]}"
    features = [orjson.loads(t) for t in texts]
    _, nav = _page_links(request, reader, MEDIA["html"], "html")
    return _html(
        request,
        "items.html",
        lang,
        _alternates(request, ITEM_FORMATS, "html"),
        cid=info.collection.id,
        title=info.collection.title(lang),
        features=features,
        geojson=geojson,
        fields=_fields(q, lang),
        returned=reader.page.returned,
        matched=reader.page.matched,
        **nav,
    )


@router.get("/collections/{collection_id}/items/{feature_id}", include_in_schema=False)
async def item(request: Request, collection_id: str, feature_id: str) -> Response:
    state = _state(request)
    info = state.snapshot.get(collection_id)
    fmt = negotiate(request, ITEM_FORMATS)
    lang = language(request)
    q = item_query(request, info.collection, feature_id)
    c = info.collection
    html = fmt == "html"
    if html:
        from dataclasses import replace

        q = replace(q, crs=SUPPORTED_CRS[CRS84_URI])
    shape = {"json": "geojson", "html": "geojson", "jsonfg": "jsonfg", "csv": "csv"}[fmt]
    reader = await _open(request, info, q, shape)
    try:
        rows = []
        async for chunk in reader.chunks():
            rows.extend(chunk)
    finally:
        await reader.close()
    if not rows:
        raise not_a_feature(c, feature_id)
    headers = _crs_headers(q) | _lang_headers(lang)
    if fmt == "csv":
        names = list(q.properties) if q.properties is not None else c.field_names
        body = csv_text([c.id_column, *names, "geometry"], rows, len(q.keys))
        return Response(body, media_type="text/csv; charset=utf-8", headers=headers)
    text = rows[0][0]
    if html:
        feature = orjson.loads(text)
        return _html(
            request,
            "item.html",
            lang,
            _alternates(request, ITEM_FORMATS, fmt),
            cid=c.id,
            title=c.title(lang),
            feature=feature,
            geojson=text.decode(),
            fields=_fields(q, lang),
        )
    media = MEDIA["jsonfg"] if fmt == "jsonfg" else MEDIA["geojson"]
    links = [
        _self_link(request, media),
        *_alternates(request, ITEM_FORMATS, fmt),
        {
            "href": _url(request, f"/collections/{c.id}"),
            "rel": "collection",
            "type": MEDIA["json"],
            "title": c.title(lang),
        },
    ]
    extra = {"links": links}
    if fmt == "jsonfg":
        extra = {"conformsTo": JSONFG_CONFORMS, "coordRefSys": q.crs.uri, "links": links}
    body = text[:-1] + b"," + orjson.dumps(extra)[1:]
    return Response(body, media_type=media, headers=headers)


def _plain(route: APIRoute) -> Route:
    """The route as a plain Starlette route: its endpoint takes the request and string path
    parameters only, so FastAPI's dependency solving per request is pure overhead (about a tenth
    of a single feature's CPU time)."""
    endpoint = route.endpoint

    async def call(request: Request) -> Response:
        return await endpoint(request, **request.path_params)

    return Route(route.path, call, methods=sorted(route.methods), name=route.name,
                 include_in_schema=False)


# Starlette tries routes in order: the feature routes, the hot paths, go first
_HOT = ("/collections/{collection_id}/items/{feature_id}", "/collections/{collection_id}/items")
router.routes[:] = sorted(
    (_plain(r) if isinstance(r, APIRoute) else r for r in router.routes),
    key=lambda r: _HOT.index(r.path) if getattr(r, "path", None) in _HOT else len(_HOT),
)
