"""OGC API - Records: the catalogue of the published layers, and its DCAT (JSON-LD) feed.

A part of the API (see :mod:`api.parts` for the interface), at the same root as the features:

* ``/collections/catalog``: a record collection (``itemType: record``) listed by ``/collections``;
* ``/collections/catalog/items``: the records, one per public layer and one per raster collection
  with items (its id as ``/collections`` lists the coverage: ``raster-<id>`` when a feature
  collection has the raster collection's id), searchable with ``q`` (free
  text over titles, descriptions and keywords in both languages, accent-insensitive), ``bbox``,
  ``datetime``, ``type`` and ``ids``, paged with ``limit``/``offset``; JSON (GeoJSON) or HTML;
* ``/collections/catalog/items/{recordId}``: one record, JSON or HTML;
* ``/catalog.jsonld`` and ``/.well-known/dcat``: the DCAT-AP catalogue (JSON-LD) for harvesting by
  national and international portals, linked from the landing page.

The records are built by :mod:`gis.metadata` from the catalog snapshot the API holds (extents
included) plus the lineage and downloads, read in a thread with one connection and kept for
``catalog_poll_seconds`` (so a burst of requests costs one read). No collection of the catalog can
be called ``catalog``: migration 0010 forbids the id and :func:`gis.catalog.load_catalog` skips it.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from api import coverages
from api.negotiation import MEDIA, language, negotiate
from api.params import COMMON, check_params
from gis import metadata as gmeta
from gis.errors import InputError, NotFoundError

CATALOG_ID = "catalog"
JSONLD = "application/ld+json"
GEOJSON = MEDIA["geojson"]
JSON = MEDIA["json"]
HTML = MEDIA["html"]
FORMATS = ("json", "html")

_R = "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf/"
CONFORMANCE = [
    _R + "record-core",
    _R + "record-collection",
    _R + "record-core-query-parameters",
    _R + "records-api",
    _R + "searchable-catalog",
    _R + "json",
    _R + "html",
]
REL_CATALOG = "http://www.opengis.net/def/rel/ogc/1.0/ogc-catalog"

ITEMS_PARAMS = (*COMMON, "q", "bbox", "datetime", "limit", "offset", "type", "ids")
MAX_Q = 500

TITLES = {
    "en": ("Catalogue of the layers",
           ("One metadata record per public layer (features and rasters): what it is, where it comes "
            "from, how it was processed, its extent, update frequency, contact, field or band "
            "schema and downloads.")),
    "vi": ("Danh mục lớp dữ liệu",
           ("Mỗi lớp dữ liệu công khai (vector và raster) một bản ghi siêu dữ liệu: nội dung, nguồn, "
            "quá trình xử lý, phạm vi, tần suất cập nhật, liên hệ, lược đồ trường hoặc băng và tệp "
            "tải về.")),
}


# ---------------------------------------------------------------------------------------------
# the metadata of the snapshot
# ---------------------------------------------------------------------------------------------


def _collect(dsn: str, catalog: dict, extents: dict):
    from gis.db import connect

    with connect(dsn, autocommit=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        return gmeta.collect(conn, catalog, extents=extents)


async def _layers(request: Request):
    """(publisher, [LayerMetadata]) of the current catalog snapshot, refreshed every few seconds."""
    state = request.app.state.gis
    snap = state.snapshot
    ttl = state.settings.catalog_poll_seconds
    hit = snap.memo.get("records:layers")
    if hit is not None and time.monotonic() - hit[0] < ttl:
        return hit[1]
    lock = snap.memo.setdefault("records:lock", asyncio.Lock())
    async with lock:
        hit = snap.memo.get("records:layers")
        if hit is not None and time.monotonic() - hit[0] < ttl:
            return hit[1]
        catalog = {cid: i.collection for cid, i in snap.collections.items()}
        extents = {cid: (i.bbox, i.interval) for cid, i in snap.collections.items()}
        value = await asyncio.to_thread(_collect, state.dsn, catalog, extents)
        snap.memo["records:layers"] = (time.monotonic(), value)
        return value


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _with(request: Request, drop: tuple[str, ...] = (), **set_: str) -> str:
    names = set(drop) | set(set_)
    q = [(k, v) for k, v in request.query_params.multi_items() if k not in names]
    q += list(set_.items())
    return _base(request) + request.url.path + (("?" + urlencode(q)) if q else "")


def _json(body, media: str = JSON, lang: str | None = None, status: int = 200) -> Response:
    headers = {"Content-Language": lang} if lang else None
    return Response(orjson.dumps(body), status_code=status, media_type=media, headers=headers)


def _html(request: Request, template: str, lang: str, alternates: list[dict], **ctx) -> Response:
    pages = request.app.state.pages
    return pages.render(template, lang=lang, base=_base(request), self_url=str(request.url),
                        alternates=alternates, **ctx)


def _alternates(request: Request, current: str, json_media: str) -> list[dict]:
    out = []
    if current != "json":
        out.append({"href": _with(request, ("f",), f="json"), "rel": "alternate", "type": json_media,
                    "title": "This document as JSON"})
    if current != "html":
        out.append({"href": _with(request, ("f",), f="html"), "rel": "alternate", "type": HTML,
                    "title": "This document as HTML"})
    return out


# ---------------------------------------------------------------------------------------------
# the part interface
# ---------------------------------------------------------------------------------------------


def landing_links(base: str) -> list[dict]:
    """The catalogue and the DCAT feed, from the landing page."""
    return [
        {"href": f"{base}/collections/{CATALOG_ID}", "rel": REL_CATALOG, "type": JSON,
         "title": "Catalogue of the layers (OGC API - Records)"},
        {"href": f"{base}/collections/{CATALOG_ID}/items?f=html", "rel": REL_CATALOG, "type": HTML,
         "title": "Catalogue of the layers (HTML)"},
        {"href": f"{base}/catalog.jsonld", "rel": "describedby", "type": JSONLD,
         "title": "DCAT-AP catalogue (JSON-LD), for harvesting"},
    ]


def collection_links(base: str, info) -> list[dict]:
    """A feature collection's link to its metadata record."""
    return [{"href": f"{base}/collections/{CATALOG_ID}/items/{info.collection.id}", "rel": "describedby",
             "type": GEOJSON, "title": "Metadata record (OGC API - Records)"}]


def collection_members(info, lang: str) -> dict:
    """Metadata members for a feature collection's document (contact, source, lineage statement,
    update frequency, field schema with units), from the catalog entry alone (no query).

    Meant for :func:`api.routes._collection_doc` (``doc.update(...)`` of the members it lacks);
    the collection's HTML page shows them.
    """
    c = info.collection
    out: dict = {}
    if c.contact is not None:
        out["contacts"] = [gmeta._contact_doc(c.contact, "pointOfContact")]
    if c.source(lang):
        out["source"] = c.source(lang)
    if c.lineage(lang):
        out["lineage"] = c.lineage(lang)
    out["updateFrequency"] = c.update_frequency
    out["fields"] = gmeta.fields_schema(c, lang)
    return out


def _instant(text) -> datetime | None:
    """An RFC 3339 / ISO 8601 time as an aware datetime (UTC when it names no zone), for ordering;
    None when it is not one (then it does not count towards the catalogue's extent)."""
    try:
        t = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _catalog_doc(request: Request, lang: str, is_self: bool, fmt: str = "json") -> dict:
    base = _base(request)
    snap = request.app.state.gis.snapshot
    title, description = TITLES[lang]
    doc: dict = {
        "id": CATALOG_ID,
        "type": "Catalog",
        "itemType": "record",
        "title": title,
        "description": description,
        "keywords": ["catalogue", "metadata", "DCAT", "danh mục", "siêu dữ liệu"],
        "license": "CC0-1.0",
    }
    spans = [(i.bbox, i.interval) for i in snap.collections.values()] + coverages.extents(request)
    boxes = [b for b, _ in spans if b is not None]
    extent: dict = {}
    if boxes:
        extent["spatial"] = {"bbox": [[min(b[0] for b in boxes), min(b[1] for b in boxes),
                                       max(b[2] for b in boxes), max(b[3] for b in boxes)]],
                             "crs": gmeta.CRS84}
    intervals = [t for _, t in spans if t]
    starts = [t[0] for t in intervals if t[0] and _instant(t[0])]
    if starts:
        ends = [t[1] for t in intervals if t[1] and _instant(t[1])]
        open_end = any(not t[1] for t in intervals)
        extent["temporal"] = {"interval": [[min(starts, key=_instant),
                                            None if open_end or not ends else max(ends, key=_instant)]],
                              "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}
    if extent:
        doc["extent"] = extent
    doc["crs"] = [gmeta.CRS84]  # the records' geometries (layer extents) are in CRS84 only
    doc["storageCrs"] = gmeta.CRS84
    coll = f"{base}/collections/{CATALOG_ID}"
    links = []
    if is_self:
        links.append({"href": _with(request), "rel": "self", "type": MEDIA[fmt], "title": "This document"})
        links += _alternates(request, fmt, JSON)
    else:
        links.append({"href": coll, "rel": "collection", "type": JSON, "title": title})
    links += [
        {"href": f"{coll}/items", "rel": "items", "type": GEOJSON, "title": "Records (GeoJSON)"},
        {"href": f"{coll}/items?f=html", "rel": "items", "type": HTML, "title": "Records (HTML)"},
        {"href": f"{base}/catalog.jsonld", "rel": "alternate", "type": JSONLD,
         "title": "DCAT-AP catalogue (JSON-LD)"},
    ]
    doc["links"] = links
    return doc


def extra_collections(request: Request, lang: str) -> list[dict]:
    """The records catalogue, listed by ``/collections``."""
    return [_catalog_doc(request, lang, False)]


def find_collection(request: Request, collection_id: str, lang: str) -> dict | None:
    """The document of ``/collections/catalog``."""
    if collection_id != CATALOG_ID:
        return None
    return _catalog_doc(request, lang, True, negotiate(request, FORMATS))


# ---------------------------------------------------------------------------------------------
# query parameters
# ---------------------------------------------------------------------------------------------


def _int(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    text = raw.strip()
    if not text.lstrip("-").isdigit() or len(text) > 19:
        raise InputError(f"Parameter {name}: {raw!r} is not an integer")
    value = int(text)
    if not lo <= value <= hi:
        raise InputError(f"Parameter {name}: {value} is out of range; it must be between {lo} and {hi}")
    return value


def _list(request: Request, name: str) -> list[str]:
    raw = request.query_params.get(name)
    if raw is None:
        return []
    if len(raw) > MAX_Q:
        raise InputError(f"Parameter {name}: at most {MAX_Q} characters")
    return [t.strip() for t in raw.split(",") if t.strip()]


def _search_params(request: Request) -> dict:
    from gis.query import CRS84_URI, SUPPORTED_CRS, parse_bbox, parse_datetime

    out: dict = {"q": _list(request, "q"), "types": _list(request, "type"), "ids": _list(request, "ids")}
    bbox = request.query_params.get("bbox")
    out["bbox"] = parse_bbox(bbox, SUPPORTED_CRS[CRS84_URI]) if bbox is not None else None
    dt = request.query_params.get("datetime")
    out["has_time"] = False
    if dt is not None:
        interval = parse_datetime(dt)
        if interval is not None:
            out.update(start=interval.start, end=interval.end, has_time=True)
    return out


# ---------------------------------------------------------------------------------------------
# routes
# ---------------------------------------------------------------------------------------------


def _record_doc(request: Request, meta, lang: str, publisher) -> dict:
    base = _base(request)
    doc = gmeta.record(meta, base, lang, publisher)
    url = f"{base}/collections/{CATALOG_ID}/items/{meta.id}"
    doc["links"] = [
        {"href": url, "rel": "self", "type": GEOJSON, "title": "This record"},
        {"href": f"{url}?f=html", "rel": "alternate", "type": HTML, "title": "This record as HTML"},
        {"href": f"{base}/collections/{CATALOG_ID}", "rel": "collection", "type": JSON,
         "title": TITLES[lang][0]},
        *doc["links"],
    ]
    return doc


def _jsonld(request: Request, publisher, layers) -> Response:
    doc = gmeta.dcat_catalog(layers, _base(request), publisher)
    return Response(orjson.dumps(doc), media_type=JSONLD,
                    headers={"Link": f'<{_base(request)}/collections/{CATALOG_ID}>; rel="alternate"; '
                                     'type="application/json"'})


def make_router(settings) -> APIRouter:
    """The routes of the records catalogue and the DCAT feed."""
    router = APIRouter()

    @router.get(f"/collections/{CATALOG_ID}/items", include_in_schema=False)
    async def records(request: Request) -> Response:
        check_params(request, ITEMS_PARAMS)
        fmt = negotiate(request, FORMATS)
        lang = language(request)
        api = request.app.state.gis.settings
        limit = _int(request, "limit", api.default_limit, 1, api.max_limit)
        offset = _int(request, "offset", 0, 0, 1_000_000)
        params = _search_params(request)
        publisher, layers = await _layers(request)
        found = gmeta.search(layers, **params)
        page = found[offset:offset + limit]
        media = GEOJSON if fmt == "json" else HTML
        links = [{"href": _with(request), "rel": "self", "type": media, "title": "This document"},
                 *_alternates(request, fmt, GEOJSON),
                 {"href": f"{_base(request)}/collections/{CATALOG_ID}", "rel": "collection", "type": JSON,
                  "title": TITLES[lang][0]}]
        nav: dict = {"next_url": None, "prev_url": None}
        if offset + limit < len(found):
            nav["next_url"] = _with(request, ("offset",), offset=str(offset + limit))
            links.append({"href": nav["next_url"], "rel": "next", "type": media, "title": "Next page"})
        if offset > 0:
            prev = max(0, offset - limit)
            nav["prev_url"] = _with(request, ("offset",), **({"offset": str(prev)} if prev else {}))
            links.append({"href": nav["prev_url"], "rel": "prev", "type": media, "title": "Previous page"})
        features = [_record_doc(request, m, lang, publisher) for m in page]
        doc = {
            "type": "FeatureCollection",
            "features": features,
            "numberMatched": len(found),
            "numberReturned": len(features),
            "timeStamp": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "links": links,
        }
        if fmt == "html":
            summaries = {m.id: gmeta.lineage_summary(m, lang) for m in page}
            return _html(request, "catalogue.html", lang, _alternates(request, "html", GEOJSON), doc=doc,
                         query=request.query_params.get("q", ""),
                         bbox=request.query_params.get("bbox", ""),
                         datetime_=request.query_params.get("datetime", ""),
                         summaries=summaries, offset=offset, catalog_title=TITLES[lang][0],
                         publisher=publisher, **nav)
        return _json(doc, GEOJSON, lang)

    @router.get(f"/collections/{CATALOG_ID}/items/{{record_id}}", include_in_schema=False)
    async def record(request: Request, record_id: str) -> Response:
        check_params(request, COMMON)
        fmt = negotiate(request, FORMATS)
        lang = language(request)
        publisher, layers = await _layers(request)
        meta = next((m for m in layers if m.id == record_id), None)
        if meta is None:
            shown = record_id if len(record_id) <= 60 else record_id[:57] + "..."
            raise NotFoundError(f"There is no record {shown!r} in the catalogue; records: "
                                f"{', '.join(m.id for m in layers) or '(none)'}.")
        doc = _record_doc(request, meta, lang, publisher)
        if fmt == "html":
            return _html(request, "record.html", lang, _alternates(request, "html", GEOJSON), doc=doc,
                         summary=gmeta.lineage_summary(meta, lang), catalog_title=TITLES[lang][0],
                         frequency=gmeta.FREQUENCY_TITLES[lang].get(meta.update_frequency))
        return _json(doc, GEOJSON, lang)

    @router.get("/catalog.jsonld", include_in_schema=False)
    async def dcat(request: Request) -> Response:
        check_params(request, ())
        publisher, layers = await _layers(request)
        return _jsonld(request, publisher, layers)

    @router.get("/.well-known/dcat", include_in_schema=False)
    async def dcat_well_known(request: Request) -> Response:
        check_params(request, ())
        publisher, layers = await _layers(request)
        return _jsonld(request, publisher, layers)

    return router


# ---------------------------------------------------------------------------------------------
# OpenAPI
# ---------------------------------------------------------------------------------------------


def openapi_paths(snapshot=None) -> dict:
    """The Records paths of the OpenAPI 3.0 document (:mod:`api.openapi`)."""
    link = {"$ref": "#/components/schemas/link"}
    record_schema = {
        "type": "object",
        "required": ["id", "type", "geometry", "properties", "links"],
        "properties": {
            "id": {"type": "string"},
            "type": {"type": "string", "enum": ["Feature"]},
            "conformsTo": {"type": "array", "items": {"type": "string"}},
            "time": {"type": "object", "nullable": True},
            "geometry": {"type": "object", "nullable": True},
            "properties": {
                "type": "object",
                "required": ["type", "title"],
                "properties": {
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                    "description": {"type": "string"},
                    "keywords": {"type": "array", "items": {"type": "string"}},
                    "license": {"type": "string"},
                    "contacts": {"type": "array", "items": {"type": "object"}},
                    "themes": {"type": "array", "items": {"type": "object"}},
                    "formats": {"type": "array", "items": {"type": "object"}},
                    "created": {"type": "string", "format": "date-time"},
                    "updated": {"type": "string", "format": "date-time"},
                },
            },
            "links": {"type": "array", "items": link},
        },
    }
    collection_schema = {
        "type": "object",
        "required": ["type", "features", "links", "numberMatched", "numberReturned"],
        "properties": {
            "type": {"type": "string", "enum": ["FeatureCollection"]},
            "features": {"type": "array", "items": record_schema},
            "numberMatched": {"type": "integer", "minimum": 0},
            "numberReturned": {"type": "integer", "minimum": 0},
            "timeStamp": {"type": "string", "format": "date-time"},
            "links": {"type": "array", "items": link},
        },
    }

    def q(name: str, description: str, schema: dict, **extra) -> dict:
        return {"name": name, "in": "query", "required": False, "description": description,
                "schema": schema, **extra}

    f = q("f", "Response format (also by the Accept header).", {"type": "string", "enum": list(FORMATS)})
    lang = {"$ref": "#/components/parameters/lang"}
    terms = {"type": "array", "items": {"type": "string", "maxLength": 64}}
    items_params = [
        q("q", "Search terms, comma-separated (any of them); the words of a term must occur in that "
               "order. Titles, descriptions and keywords in Vietnamese and English; accents and case "
               "do not count.", terms, style="form", explode=False),
        q("bbox", "Records whose extent intersects this box: minlon,minlat,maxlon,maxlat (CRS84).",
          {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 6},
          style="form", explode=False),
        q("datetime", "Records whose time extent intersects this instant or interval (RFC 3339, '..' "
                      "for an open end).", {"type": "string"}),
        q("type", "Record types (this catalogue has 'dataset').", terms, style="form", explode=False),
        q("ids", "Record ids (layer ids, raster collections' ids as /collections lists them).", terms,
          style="form", explode=False),
        q("limit", "Records per page.", {"type": "integer", "minimum": 1, "maximum": 10_000, "default": 10}),
        q("offset", "Records to skip.", {"type": "integer", "minimum": 0, "maximum": 1_000_000, "default": 0}),
        f, lang,
    ]
    errors = {"400": {"$ref": "#/components/responses/InvalidParameter"},
              "404": {"$ref": "#/components/responses/NotFound"}}
    jsonld = {
        "get": {
            "tags": ["Records"], "summary": "The DCAT-AP catalogue of the layers (JSON-LD)",
            "operationId": "", "parameters": [],
            "responses": {"200": {"description": "A dcat:Catalog with one dcat:Dataset per public layer.",
                                  "content": {JSONLD: {"schema": {"type": "object",
                                                                  "required": ["@context", "@type"]}}}},
                          **errors},
        }
    }
    well_known = {"get": {**jsonld["get"], "operationId": "getDcatWellKnown",
                          "summary": "The DCAT-AP catalogue at its well-known URL (same as /catalog.jsonld)"}}
    jsonld["get"]["operationId"] = "getDcatCatalogue"
    return {
        f"/collections/{CATALOG_ID}": {
            "get": {
                "tags": ["Records"], "summary": "The catalogue of the layers (a record collection)",
                "operationId": "describeRecordsCatalogue", "parameters": [f, lang],
                "responses": {"200": {"description": "The catalogue's collection document (itemType record).",
                                      "content": {JSON: {"schema": {"$ref": "#/components/schemas/collection"}},
                                                  HTML: {"schema": {"type": "string"}}}},
                              **errors},
            }
        },
        f"/collections/{CATALOG_ID}/items": {
            "get": {
                "tags": ["Records"], "summary": "Search the catalogue of the layers",
                "operationId": "getRecords", "parameters": items_params,
                "responses": {"200": {"description": "The matching records, one per layer.",
                                      "content": {GEOJSON: {"schema": collection_schema},
                                                  HTML: {"schema": {"type": "string"}}}},
                              **errors},
            }
        },
        f"/collections/{CATALOG_ID}/items/{{recordId}}": {
            "get": {
                "tags": ["Records"], "summary": "A record of the catalogue (one layer's metadata)",
                "operationId": "getRecord",
                "parameters": [{"name": "recordId", "in": "path", "required": True,
                                "description": "The record id (the layer's collection id; a raster "
                                               "collection's id as /collections lists it).",
                                "schema": {"type": "string"}}, f, lang],
                "responses": {"200": {"description": "The record.",
                                      "content": {GEOJSON: {"schema": record_schema},
                                                  HTML: {"schema": {"type": "string"}}}},
                              **errors},
            }
        },
        "/catalog.jsonld": jsonld,
        "/.well-known/dcat": well_known,
    }
