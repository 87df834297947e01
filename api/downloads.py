"""Open-data downloads: prebuilt files of every public collection, linked as ``enclosure``.

A part of the API (see :mod:`api.parts` for the interface). The files are built by ``gis publish``
(:func:`gis.downloads.publish`), never on a request, and registered in ``gis_meta.downloads``; this
module only serves what the registry lists for a public collection:

- ``GET /downloads``: the list of every published file (JSON, or an HTML page with ``f=html`` or
  ``Accept: text/html``; ``lang=vi|en``);
- ``GET /collections/{collectionId}/downloads``: those of one collection (JSON or HTML);
- ``GET|HEAD /downloads/{collectionId}/{filename}``: the file, with ``Content-Length``, a strong ``ETag``
  (its SHA-256), ``Last-Modified`` (its build time), ``Accept-Ranges`` and range requests (206, 416,
  ``If-Range``), and 304 on ``If-None-Match`` / ``If-Modified-Since``;
  ``.../{filename}.sha256`` its checksum file. A raster layer's COGs are served from the raster store.

What is served is the immutable copy of the registered build (``.objects/<sha256>``), so the bytes
always match the ETag, even while ``gis publish`` replaces the file. A collection document gets one
``rel: enclosure`` link per file (type, title, length), from a registry list refreshed every
``GIS_API_CATALOG_POLL_SECONDS``.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import re
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path

import orjson
from fastapi import APIRouter, Request
from starlette.responses import FileResponse, Response

from api.negotiation import MEDIA, language, negotiate
from gis import downloads as gdl
from gis.errors import InputError, NotFoundError
from gis.settings import Settings

log = logging.getLogger("gis.api.downloads")

CONFORMANCE: list[str] = []
JSON = "application/json"
HTML = MEDIA["html"]
#: the representations of the listings
LIST_FORMATS = ("json", "html")
#: words of the pages and link titles, by language
WORDS = {
    "en": {"download": "Download", "features": "features", "title": "Open-data downloads",
           "coll_title": "Downloads of the collection", "collection": "The collection"},
    "vi": {"download": "Tải về", "features": "đối tượng", "title": "Dữ liệu mở để tải về",
           "coll_title": "Tệp tải về của lớp dữ liệu", "collection": "Lớp dữ liệu"},
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*\s*-\s*\d*)(\s*,\s*\d*\s*-\s*\d*)*\s*$", re.IGNORECASE)
#: extra key in :attr:`gis.catalog.Collection.extra` holding the collection's files (set by the poller)
EXTRA_KEY = "downloads"

_FILE_SQL = """
SELECT d.collection_id, d.format, d.media_type, d.filename, d.size, d.sha256, d.built_at, d.feature_count
FROM gis_meta.downloads d JOIN gis_meta.collections c ON c.id = d.collection_id
WHERE c.public AND d.collection_id = %s AND d.filename = %s
"""
_COG_FILE_SQL = """
SELECT i.asset_href, i.asset_size, i.asset_checksum, i.updated_at
FROM gis_meta.raster_layers l
JOIN raster.items i ON i.collection = l.collection AND (l.item IS NULL OR i.id = l.item)
WHERE l.public AND l.id = %s AND i.id || '.tif' = %s
"""
_PUBLIC_SQL = """
SELECT 'collection' FROM gis_meta.collections WHERE id = %(id)s AND public
UNION ALL SELECT 'raster' FROM gis_meta.raster_layers WHERE id = %(id)s AND public
"""


def _item(base: str, d: gdl.DownloadFile, lang: str = "en") -> dict:
    out = {
        "collection": d.collection_id, "format": d.format, "title": d.title_in(lang), "type": d.media_type,
        "href": base + d.path, "length": d.size, "sha256": d.sha256,
        "checksum": base + d.path + ".sha256", "updated": d.built_at.astimezone(UTC).isoformat(),
    }
    if d.feature_count is not None:
        out["featureCount"] = d.feature_count
    return out


def _count_text(n: int, lang: str) -> str:
    """1,000,000 (en) or 1.000.000 (vi)."""
    text = f"{n:,}"
    return text.replace(",", ".") if lang == "vi" else text


def enclosure_title(d: gdl.DownloadFile, lang: str) -> str:
    """``Download: GeoPackage (3.2 MB, 601 features)`` in ``lang``."""
    w = WORDS[lang]
    count = "" if d.feature_count is None else f", {_count_text(d.feature_count, lang)} {w['features']}"
    return f"{w['download']}: {d.title_in(lang)} ({_size_text(d.size)}{count})"


def enclosure(base: str, d: gdl.DownloadFile) -> dict:
    """The ``rel: enclosure`` link of a download; its title in English and Vietnamese (a collection
    document's links are built without a language)."""
    return {"href": base + d.path, "rel": "enclosure", "type": d.media_type,
            "title": f"{enclosure_title(d, 'en')} / {enclosure_title(d, 'vi')}", "length": d.size}


def _size_text(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} bytes"  # pragma: no cover


def collection_links(base: str, info) -> list[dict]:
    """One ``enclosure`` link per published file of the collection (``info``: api.state.CollectionInfo),
    and the page listing them."""
    files = info.collection.extra.get(EXTRA_KEY, ())
    if not files:
        return []
    page = {"href": f"{base}/collections/{info.collection.id}/downloads?f=html", "rel": "related", "type": HTML,
            "title": "Downloads of the collection (HTML) / Tệp tải về của lớp dữ liệu"}
    return [enclosure(base, d) for d in files] + [page]


def landing_links(base: str) -> list[dict]:
    """The landing page's links to the list of downloads (JSON and HTML)."""
    # not rel "data": OGC API - Common reserves it for /collections, which clients follow
    return [{"href": f"{base}/downloads", "rel": "related", "type": JSON,
             "title": "Open-data downloads of every public collection (GeoPackage, GeoParquet, ...)"},
            {"href": f"{base}/downloads?f=html", "rel": "related", "type": HTML,
             "title": "Open-data downloads (HTML) / Dữ liệu mở để tải về"}]


def openapi_paths(snapshot=None) -> dict:
    """The downloads' paths of the OpenAPI 3.0 document."""
    nf = {"$ref": "#/components/responses/NotFound"}
    err = {"$ref": "#/components/responses/InvalidParameter"}
    coll = {"name": "collectionId", "in": "path", "required": True, "schema": {"type": "string"},
            "description": "Collection id (see /collections)."}
    fname = {"name": "filename", "in": "path", "required": True, "schema": {"type": "string"},
             "description": "File name, as listed by /downloads (e.g. parcels.gpkg); add .sha256 for its "
                            "checksum file."}
    listing = {JSON: {"schema": {"type": "object", "required": ["downloads"],
                                 "properties": {"downloads": {"type": "array", "items": {"type": "object"}},
                                                "links": {"type": "array"}}}}}
    binary = {"schema": {"type": "string", "format": "binary"}}
    types = sorted({f.media_type.split(";")[0] for f in gdl.FORMATS.values()} | {"text/plain"})
    file_responses = {
        "200": {"description": "The file (Content-Length, ETag = its SHA-256, Last-Modified, Accept-Ranges).",
                "content": {t: binary for t in types}},
        "206": {"description": "A byte range of the file (Range request).", "content": {t: binary for t in types}},
        "304": {"description": "Not modified (If-None-Match / If-Modified-Since)."},
        "400": err, "404": nf,
        "416": {"description": "Range not satisfiable."},
    }

    def file_op(method: str) -> dict:
        return {"tags": ["Downloads"], "summary": "A download file of a collection",
                "description": "Prebuilt by `gis publish`; supports HTTP range requests.",
                "operationId": f"{method}DownloadFile", "parameters": [coll, fname], "responses": file_responses}

    page = {"text/html": {"schema": {"type": "string"}}}
    f = {"name": "f", "in": "query", "required": False, "description": "Response format (also by the Accept "
         "header): json or html (a page listing each file with its size, feature count, SHA-256 and date).",
         "schema": {"type": "string", "enum": list(LIST_FORMATS)}}
    lang = {"$ref": "#/components/parameters/lang"}
    return {
        "/downloads": {"get": {"tags": ["Downloads"], "summary": "Open-data downloads of every public collection",
                               "operationId": "getDownloads", "parameters": [f, lang],
                               "responses": {"200": {"description": "The published files.",
                                                     "content": listing | page},
                                             "400": err}}},
        "/collections/{collectionId}/downloads": {"get": {
            "tags": ["Downloads"], "summary": "Open-data downloads of a collection",
            "operationId": "getCollectionDownloads", "parameters": [coll, f, lang],
            "responses": {"200": {"description": "The collection's published files.", "content": listing | page},
                          "400": err, "404": nf}}},
        "/downloads/{collectionId}/{filename}": {"get": file_op("get"), "head": file_op("head")},
    }


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _json(doc, lang: str | None = None) -> Response:
    return Response(orjson.dumps(doc), media_type=JSON, headers={"Content-Language": lang} if lang else None)


def _layer_titles(request: Request, lang: str) -> dict[str, str]:
    """Title of each public layer in ``lang``: the feature collections of the catalog snapshot."""
    snapshot = request.app.state.gis.snapshot
    out: dict[str, str] = {}
    for cid, info in (snapshot.collections.items() if snapshot is not None else ()):
        c = info.collection
        out[cid] = (c.title_vi if lang == "vi" else c.title_en) or cid
    return out


def _page(request: Request, lang: str, files: list[gdl.DownloadFile], collection_id: str | None) -> Response:
    """The HTML page of the downloads (of one collection, or of all)."""
    base = _base(request)
    titles = _layer_titles(request, lang)
    rows = [{
        "collection": d.collection_id, "layer": titles.get(d.collection_id, d.collection_id),
        "format": d.title_in(lang), "type": d.media_type, "filename": d.filename, "href": base + d.path,
        "checksum": base + d.path + ".sha256", "size": _size_text(d.size), "bytes": d.size,
        "count": None if d.feature_count is None else _count_text(d.feature_count, lang),
        "sha256": d.sha256, "built": d.built_at.astimezone(UTC),
        "link_title": enclosure_title(d, lang),
    } for d in files]
    path = f"/collections/{collection_id}/downloads" if collection_id else "/downloads"
    alternates = [{"href": f"{base}{path}?f=json&lang={lang}", "rel": "alternate", "type": JSON,
                   "title": "JSON"}]
    w = WORDS[lang]
    title = f"{w['coll_title']}: {titles.get(collection_id, collection_id)}" if collection_id else w["title"]
    return request.app.state.pages.render(
        "downloads.html", lang=lang, base=base, self_url=str(request.url), alternates=alternates,
        rows=rows, page_title=title, collection_id=collection_id)


async def _fetch(pool, query: str, params) -> list:
    async with pool.connection() as conn:
        cur = await conn.execute(query, params)
        return await cur.fetchall()


async def load_files(pool, collection_id: str | None = None) -> list[gdl.DownloadFile]:
    """The published files (as :func:`gis.downloads.published`), read on the API's async pool."""
    if not (await _fetch(pool, gdl.REGISTRY_EXISTS_SQL, ()))[0][0]:
        return []
    params = gdl.published_params(collection_id)
    return gdl.files_from_rows(await _fetch(pool, gdl.PUBLISHED_SQL, params),
                               await _fetch(pool, gdl.COG_SQL, params))


def _annotate(snapshot, files: list[gdl.DownloadFile]) -> None:
    """Put each collection's files in its ``Collection.extra`` (read by :func:`collection_links`)."""
    by_id: dict[str, list] = {}
    for d in files:
        by_id.setdefault(d.collection_id, []).append(d)
    for cid, info in snapshot.collections.items():
        info.collection.extra[EXTRA_KEY] = tuple(by_id.get(cid, ()))


def _check_name(value: str, what: str) -> None:
    if not _NAME.match(value) or ".." in value:
        raise InputError(f"Parameter {what}: {value[:80]!r} is not a valid name (letters, digits, '.', '_', "
                         "'-'; no path).")


def _not_modified(request: Request, etag: str, modified: datetime) -> bool:
    inm = request.headers.get("if-none-match")
    if inm is not None:
        tags = [v.strip().removeprefix("W/") for v in inm.split(",")]
        return "*" in tags or etag in tags
    ims = request.headers.get("if-modified-since")
    if ims:
        try:
            since = parsedate_to_datetime(ims)
        except (TypeError, ValueError, IndexError):
            return False
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return modified.replace(microsecond=0) <= since
    return False


@asynccontextmanager
async def lifespan(app):
    """Keep the registry's files in each collection of the current catalog snapshot (enclosure links).

    Runs inside the app's lifespan (after it opened ``app.state.gis``): reads the registry at start-up
    and every ``catalog_poll_seconds``, and puts each collection's files in ``Collection.extra``.
    """
    state = app.state.gis
    poll = getattr(getattr(app.state, "api_settings", None), "catalog_poll_seconds", 3.0)

    async def refresh() -> None:
        files = await load_files(state.pool)
        if state.snapshot is not None:
            _annotate(state.snapshot, files)

    async def watch() -> None:
        while True:
            await asyncio.sleep(poll)
            try:
                await refresh()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep the last list
                log.exception("reading the downloads registry failed; keeping the last list")

    try:
        await refresh()
    except Exception:  # a database without the registry yet: no links, still serve the rest
        log.exception("reading the downloads registry failed")
    task = asyncio.create_task(watch(), name="gis-downloads-watch")
    try:
        yield
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass


def make_router(settings: Settings) -> APIRouter:
    """The router of the downloads, bound to the platform ``settings`` (where the files are)."""
    root = gdl.downloads_root(settings.data_dir)

    router = APIRouter(lifespan=lifespan)

    async def _public_kind(request: Request, collection_id: str) -> str:
        """'collection' or 'raster' for a public layer; NotFoundError (naming the public ones) otherwise."""
        _check_name(collection_id, "collectionId")
        rows = await _fetch(request.app.state.gis.pool, _PUBLIC_SQL, {"id": collection_id})
        if rows:
            return rows[0][0]
        known = sorted(request.app.state.gis.snapshot.collections)
        raise NotFoundError(f"There is no public collection {collection_id!r} with downloads; collections: "
                            f"{', '.join(known) or '(none)'}.")

    @router.get("/downloads", include_in_schema=False)
    async def downloads(request: Request) -> Response:
        fmt, lang = negotiate(request, LIST_FORMATS), language(request)
        base = _base(request)
        files = await load_files(request.app.state.gis.pool)
        if fmt == "html":
            return _page(request, lang, files, None)
        return _json({"downloads": [_item(base, d, lang) for d in files],
                      "links": [{"href": f"{base}/downloads", "rel": "self", "type": JSON,
                                 "title": WORDS[lang]["title"]},
                                {"href": f"{base}/downloads?f=html", "rel": "alternate", "type": HTML,
                                 "title": WORDS[lang]["title"] + " (HTML)"}]}, lang)

    @router.get("/collections/{collection_id}/downloads", include_in_schema=False)
    async def collection_downloads(request: Request, collection_id: str) -> Response:
        fmt, lang = negotiate(request, LIST_FORMATS), language(request)
        await _public_kind(request, collection_id)
        base = _base(request)
        files = await load_files(request.app.state.gis.pool, collection_id)
        if fmt == "html":
            return _page(request, lang, files, collection_id)
        w = WORDS[lang]
        return _json({"downloads": [_item(base, d, lang) for d in files], "links": [
            {"href": f"{base}/collections/{collection_id}/downloads", "rel": "self", "type": JSON,
             "title": w["coll_title"]},
            {"href": f"{base}/collections/{collection_id}/downloads?f=html", "rel": "alternate", "type": HTML,
             "title": w["coll_title"] + " (HTML)"},
            {"href": f"{base}/collections/{collection_id}", "rel": "collection", "type": JSON,
             "title": w["collection"]}]}, lang)

    @router.api_route("/downloads/{collection_id}/{filename}", methods=["GET", "HEAD"], include_in_schema=False)
    async def download_file(request: Request, collection_id: str, filename: str) -> Response:
        kind = await _public_kind(request, collection_id)
        _check_name(filename, "filename")
        checksum = filename.endswith(".sha256")
        name = filename.removesuffix(".sha256") if checksum else filename
        pool = request.app.state.gis.pool
        for _attempt in range(2):  # a build may replace the file between the lookup and the open
            found = await _lookup(pool, kind, collection_id, name)
            if found is None:
                files = await load_files(pool, collection_id)
                listing = ", ".join(d.filename for d in files) or "none yet (run `gis publish`)"
                raise NotFoundError(f"Collection {collection_id!r} has no download {filename!r}; its files: "
                                    f"{listing}.")
            d, path = found
            try:
                st = await asyncio.to_thread(os.stat, path)
                break
            except FileNotFoundError:
                continue
        else:
            raise NotFoundError(f"The download {filename!r} of {collection_id!r} is being rebuilt; try again "
                                "in a moment.")
        etag = f'"{d.sha256}"'
        headers = {"ETag": etag, "Last-Modified": formatdate(d.built_at.timestamp(), usegmt=True),
                   "Cache-Control": "public, max-age=60"}
        if checksum:
            body = f"{d.sha256}  {d.filename}\n".encode()
            headers["ETag"] = f'"{d.sha256}-sha256"'
            if _not_modified(request, headers["ETag"], d.built_at):
                return Response(status_code=304, headers=headers)
            return Response(b"" if request.method == "HEAD" else body, media_type="text/plain; charset=utf-8",
                            headers=headers | {"Content-Length": str(len(body))})
        if _not_modified(request, etag, d.built_at):
            return Response(status_code=304, headers=headers)
        rng = request.headers.get("range")
        if rng is not None and not _RANGE.match(rng):
            raise InputError(f"Header Range: {rng[:80]!r} is not a byte range such as bytes=0-1023.")
        try:
            headers["Repr-Digest"] = f"sha-256=:{base64.b64encode(bytes.fromhex(d.sha256)).decode()}:"
        except ValueError:
            pass
        return FileResponse(path, media_type=d.media_type, headers=headers, filename=d.filename,
                            stat_result=st)

    async def _lookup(pool, kind: str, collection_id: str, name: str) -> tuple[gdl.DownloadFile, Path] | None:
        if kind == "raster":
            rows = await _fetch(pool, _COG_FILE_SQL, (collection_id, name))
            if not rows:
                return None
            href, size, checksum, updated = rows[0]
            from gis.raster.store import RasterStore

            cog = gdl.FORMATS["cog"]
            d = gdl.DownloadFile(collection_id, "cog", cog.media_type, name, int(size), checksum, updated, None)
            return d, RasterStore(settings.raster_dir).path(href)
        rows = await _fetch(pool, _FILE_SQL, (collection_id, name))
        if not rows:
            return None
        d = gdl.DownloadFile(*rows[0])
        return d, gdl.registered_object(root, d)

    return router
