"""OGC API - Coverages of the raster collections, a STAC API (``/stac``) of the raster store, and the
COG downloads (``/rasters/...``, HTTP range requests).

A part of the API (see :mod:`api.parts` for the interface).

Raster collections in ``/collections``
    Every raster collection (``raster.collections``) that has items is listed by ``/collections``
    beside the feature collections, as a coverage. **Ids:** a raster collection keeps its id,
    unless a feature collection has it already: the feature collection wins and the coverage is
    listed as ``raster-<id>`` (the STAC API always uses the raster collection's own id).

Coverages (``/collections/{id}/coverage``)
    One coverage per raster collection, read from its COG items by :mod:`gis.raster.coverage`
    (see there how items of several times and mosaics make one coverage). Parameters:
    ``subset`` (``Lat(a:b),Lon(c:d)`` in degrees, ``E(..),N(..)`` in the coverage's CRS,
    ``time("2020-01-01":"2020-12-31")``; repeatable), ``bbox`` + ``bbox-crs``, ``datetime``
    (also ``2020`` or ``2020-06``), ``properties`` (bands), ``scale-factor``, ``scale-axes``,
    ``scale-size``, ``width``/``height``, ``f`` (``GeoTIFF`` default, ``json``/``covjson``:
    CoverageJSON), ``crs`` (output CRS: the coverage's own by default; the CRSs of the Features
    API, listed in the collection's ``crs`` member; nearest-neighbour warp, VN-2000 by the
    official transformation; ``Content-Crs`` names it) and ``subset-crs`` (the CRS of the
    spatial axes of ``subset``). ``/coverage/domainset`` and ``/coverage/rangetype`` describe
    the grid and bands.

STAC API (``/stac``)
    Core, collections, OGC API - Features (items of a collection) and item search (GET and
    POST, ``bbox``, ``intersects``, ``datetime``, ``collections``, ``ids``, ``limit``), paged with
    keyset ``next`` links (``token``). Items are ``raster.stac_items``; their ``data`` asset is the
    COG at ``/rasters/{collection}/{file}``.

COG downloads (``/rasters/{collection}/{file}``)
    The files of the raster store that a catalogue row points to, and no other (the path is
    looked up in the catalog, and checked to lie inside the store): ``Accept-Ranges``, ``206``
    with ``Content-Range``, ``416``, a strong ``ETag`` (the file's sha256), ``Last-Modified``,
    ``304`` on ``If-None-Match``, ``HEAD``. GDAL's ``/vsicurl/`` and rio-tiler read them remotely.
    A file that is missing or whose size differs from the catalog's is ``503 RasterUnavailable``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

import orjson
import psycopg
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import FileResponse, MalformedRangeHeader, RangeNotSatisfiable, Response

from gis.errors import GisError, InputError, NotFoundError
from gis import metadata as gmeta
from gis.raster import coverage as gcov
from gis.settings import Settings

log = logging.getLogger("gis.api")

JSON = "application/json"
GEOJSON = "application/geo+json"
GEOTIFF = "image/tiff; application=geotiff"
COG = "image/tiff; application=geotiff; profile=cloud-optimized"
COVJSON = "application/prs.coverage+json"

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-coverages-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-coverages-1/1.0/conf/geodata-coverage",
    "http://www.opengis.net/spec/ogcapi-coverages-1/1.0/conf/subsetting",
    "http://www.opengis.net/spec/ogcapi-coverages-1/1.0/conf/coverage-subset",
    "http://www.opengis.net/spec/ogcapi-coverages-1/1.0/conf/coverage-bbox",
    "http://www.opengis.net/spec/ogcapi-coverages-1/1.0/conf/coverage-datetime",
    "http://www.opengis.net/spec/ogcapi-coverages-1/1.0/conf/fieldselection",
    "http://www.opengis.net/spec/ogcapi-coverages-1/1.0/conf/coverage-rangesubset",
    "http://www.opengis.net/spec/ogcapi-coverages-1/1.0/conf/scaling",
    "http://www.opengis.net/spec/ogcapi-coverages-1/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-coverages-1/1.0/conf/geotiff",
    "http://www.opengis.net/spec/ogcapi-coverages-1/1.0/conf/coveragejson",
    "http://www.opengis.net/spec/ogcapi-coverages-1/1.0/conf/oas30",
]

STAC_VERSION = "1.1.0"
STAC_CONFORMANCE = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/collections",
    "https://api.stacspec.org/v1.0.0/ogcapi-features",
    "https://api.stacspec.org/v1.0.0/item-search",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]

REL_COVERAGE = "http://www.opengis.net/def/rel/ogc/1.0/coverage"
REL_DOMAINSET = "http://www.opengis.net/def/rel/ogc/1.0/coverage-domainset"
REL_RANGETYPE = "http://www.opengis.net/def/rel/ogc/1.0/coverage-rangetype"
REL_TILESETS_MAP = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-map"

COVERAGE_PARAMS = (
    "f",
    "lang",
    "subset",
    "bbox",
    "bbox-crs",
    "subset-crs",
    "crs",
    "datetime",
    "properties",
    "scale-factor",
    "scale-axes",
    "scale-size",
    "scaleSize",  # its name in earlier drafts, which GDAL's OGCAPI driver (3.6) sends
    "width",
    "height",
)
STAC_ITEMS_PARAMS = (
    "bbox",
    "intersects",
    "datetime",
    "collections",
    "ids",
    "limit",
    "token",
    "f",
    "lang",
)
SEARCH_PARAMS = ("bbox", "intersects", "datetime", "collections", "ids", "limit", "token", "f")
DEFAULT_LIMIT = 10
MAX_LIMIT = 10_000  # as the Features API (GIS_API_MAX_LIMIT default)

_MEMO = "coverages"

_F_COVERAGE = {
    "geotiff": "geotiff",
    "tif": "geotiff",
    "tiff": "geotiff",
    "image/tiff": "geotiff",
    "image/tiff; application=geotiff": "geotiff",
    "application/geotiff": "geotiff",
    "json": "covjson",
    "covjson": "covjson",
    "coveragejson": "covjson",
    "application/json": "covjson",
    COVJSON: "covjson",
}


# ---------------------------------------------------------------------------------------------
# The raster collections, memoised per catalog snapshot
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RasterCatalog:
    """The raster collections as the API publishes them (one per catalog snapshot)."""

    #: raster collection id -> coverage
    coverages: dict[str, gcov.CoverageInfo]
    #: id in /collections -> raster collection id (collections with items only)
    public: dict[str, str]
    #: raster collection id -> [(raster layer id, title_en, title_vi)] of its map tiles
    layers: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)

    def public_id(self, raster_id: str) -> str | None:
        for pid, rid in self.public.items():
            if rid == raster_id:
                return pid
        return None

    def get(self, public_id: str) -> tuple[str, gcov.CoverageInfo]:
        """The coverage published as ``public_id``; NotFoundError otherwise."""
        rid = self.public.get(public_id)
        if rid is None:
            known = ", ".join(self.public) or "(none)"
            raise NotFoundError(f"There is no coverage {public_id!r}; coverages: {known}.")
        return rid, self.coverages[rid]


def load_raster_catalog(dsn: str, feature_ids: set[str]) -> RasterCatalog:
    """Read the raster collections and their map layers (blocking)."""
    from gis.db import connect

    with connect(dsn, autocommit=True) as conn:
        try:
            covs = gcov.load_coverages(conn)
        except psycopg.errors.UndefinedTable:  # a database before migration 0005
            covs = {}
        layers: dict[str, list[tuple[str, str, str]]] = {}
        try:
            rows = conn.execute(
                "SELECT id, collection, title_en, title_vi FROM gis_meta.raster_layers "
                "WHERE public ORDER BY sort_order, id"
            ).fetchall()
        except psycopg.errors.UndefinedTable:
            rows = []
        for lid, coll, ten, tvi in rows:
            layers.setdefault(coll, []).append((lid, ten, tvi))
    from gis.metadata import raster_record_ids

    # the same ids as the records catalogue gives them (raster-<id> when a feature collection or
    # the catalogue itself has the id)
    with_items = sorted(rid for rid, info in covs.items() if info.n_items)
    public = raster_record_ids(with_items, feature_ids)
    for rid in set(with_items) - set(public.values()):
        log.warning("raster collection %r is not listed in /collections: its id is taken", rid)
    return RasterCatalog(covs, public, layers)


def _catalog_now(request: Request) -> RasterCatalog:
    """The raster catalog of the current snapshot; loaded (blocking, once per snapshot) if needed.

    ``extra_collections`` and ``find_collection`` are synchronous (api.parts), so a first call
    after a catalog change reads the raster catalog in the event loop: one short query.
    """
    state = request.app.state.gis
    snap = state.snapshot
    cat = snap.memo.get(_MEMO)
    if cat is None:
        cat = load_raster_catalog(state.dsn, set(snap.collections))
        snap.memo[_MEMO] = cat
    return cat


async def _catalog(request: Request) -> RasterCatalog:
    state = request.app.state.gis
    snap = state.snapshot
    cat = snap.memo.get(_MEMO)
    if cat is None:
        cat = await asyncio.to_thread(load_raster_catalog, state.dsn, set(snap.collections))
        snap.memo[_MEMO] = cat
    return cat


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _json(doc, media: str = JSON, status: int = 200, headers: dict | None = None) -> Response:
    return Response(orjson.dumps(doc), status_code=status, media_type=media, headers=headers)


def _check_params(
    request: Request, allowed: tuple[str, ...], repeatable: tuple[str, ...] = ()
) -> None:
    """400 for an unknown parameter, or one given twice (except ``repeatable`` ones)."""
    seen: set[str] = set()
    for name, _ in request.query_params.multi_items():
        if name not in allowed:
            shown = name if len(name) <= 60 else name[:57] + "..."
            raise InputError(
                f"Unknown parameter {shown!r}; the parameters of this resource are: "
                f"{', '.join(allowed)}"
            )
        if name in seen and name not in repeatable:
            raise InputError(f"Parameter {name} is given more than once")
        seen.add(name)


def _check_json_f(request: Request, allowed: tuple[str, ...] = ("json",)) -> None:
    f = request.query_params.get("f")
    if f is not None and f.strip().lower() not in allowed + (
        "application/json",
        "geojson",
        "application/geo+json",
    ):
        raise InputError(f"Parameter f: {f!r} is not a format of this resource; give json")


# ---------------------------------------------------------------------------------------------
# the api.parts interface: collection documents
# ---------------------------------------------------------------------------------------------


def landing_links(base: str) -> list[dict]:
    """The landing page's links to the STAC API."""
    return [
        {
            "href": f"{base}/stac",
            "rel": "related",
            "type": JSON,
            "title": "STAC API of the raster catalog (satellite scenes, gridded data)",
        },
    ]


def _collection_doc(
    base: str,
    pid: str,
    rid: str,
    info: gcov.CoverageInfo,
    cat: RasterCatalog,
    lang: str,
    full: bool = False,
) -> dict:
    stac = info.stac
    path = f"{base}/collections/{quote(pid)}"
    links = [
        {"href": path, "rel": "self", "type": JSON, "title": "This document"},
        {
            "href": f"{path}?f=html",
            "rel": "alternate",
            "type": "text/html",
            "title": "This document as HTML",
        },
        {
            "href": f"{path}/coverage?f=GeoTIFF",
            "rel": REL_COVERAGE,
            "type": GEOTIFF,
            "title": "The coverage as GeoTIFF",
        },
        {
            "href": f"{path}/coverage?f=covjson",
            "rel": REL_COVERAGE,
            "type": COVJSON,
            "title": "The coverage as CoverageJSON",
        },
        {
            "href": f"{path}/coverage/domainset",
            "rel": REL_DOMAINSET,
            "type": JSON,
            "title": "Domain set (grid and times) of the coverage",
        },
        {
            "href": f"{path}/coverage/rangetype",
            "rel": REL_RANGETYPE,
            "type": JSON,
            "title": "Range type (bands) of the coverage",
        },
        {
            "href": f"{base}/stac/collections/{quote(rid)}",
            "rel": "alternate",
            "type": JSON,
            "title": "STAC Collection",
        },
        {
            "href": f"{base}/stac/collections/{quote(rid)}/items",
            "rel": "related",
            "type": GEOJSON,
            "title": "STAC Items (the COGs of the coverage)",
        },
    ]
    for lid, ten, tvi in cat.layers.get(rid, []):
        links.append(
            {
                "href": f"{base}/collections/{quote(lid)}/map/tiles",
                "rel": REL_TILESETS_MAP,
                "type": JSON,
                "title": f"Map tiles: {tvi if lang == 'vi' else ten}",
            }
        )
    ext = stac.get("extent", {})
    interval = ext.get("temporal", {}).get("interval") or [[None, None]]
    providers = ", ".join(p.get("name", "") for p in stac.get("providers") or [] if p.get("name"))
    doc = {
        "id": pid,
        # not a feature collection: clients that list collections as vector layers (GDAL's OAPIF
        # driver) skip any itemType other than "feature"
        "itemType": "coverage",
        "title": info.title,
        "description": stac.get("description") or "",
        "keywords": list(stac.get("keywords") or []),
        "license": stac.get("license"),
        "extent": {
            "spatial": {"bbox": [info.bbox], "crs": gcov.CRS84_URI},
            "temporal": {"interval": interval, "trs": gcov.GREGORIAN},
        },
        "crs": gcov.supported_crs_uris(info),
        "storageCrs": info.crs_uri,
        "links": links,
    }
    if info.primary is not None:
        t = info.primary.transform
        doc["extent"]["spatial"]["grid"] = [
            {"cellsCount": info.primary.width, "resolution": t[0]},
            {"cellsCount": info.primary.height, "resolution": -t[4]},
        ]
        doc["x-raster"] = {"items": info.n_items, "bands": info.primary.band_names}
        if full:  # the draft lets a coverage's own description hold its range type
            doc["rangeType"] = gcov.rangetype(info)
        layers = cat.layers.get(rid, [])
        if layers:
            preview = _preview(base, layers[0][0], info.bbox)
            if preview:
                doc["x-raster"]["preview"] = preview
    if providers:
        doc["attribution"] = providers
    return doc


def _preview(base: str, layer_id: str, bbox: list[float]) -> dict | None:
    """Up to 2 x 2 PNG map tiles (WebMercatorQuad) of a raster layer that hold ``bbox``: the
    preview of the coverage's HTML page."""
    import morecantile

    tms = morecantile.tms.get("WebMercatorQuad")
    w, s, e, n = bbox
    s, n = max(s, -85.0), min(n, 85.0)
    if not (w < e and s < n):
        return None
    for z in range(16, -1, -1):
        tl, br = tms.tile(w, n, z), tms.tile(e, s, z)
        if br.x - tl.x <= 1 and br.y - tl.y <= 1:
            break
    rows = [
        [f"{base}/xyz/{quote(layer_id)}/{z}/{x}/{y}.png" for x in range(tl.x, br.x + 1)]
        for y in range(tl.y, br.y + 1)
    ]
    return {"layer": layer_id, "zoom": z, "rows": rows}


def extents(request: Request) -> list[tuple[tuple | None, tuple | None]]:
    """(bbox in CRS84, time interval) of each raster collection ``/collections`` lists (the records
    catalogue's extent covers them too)."""
    cat = _catalog_now(request)
    return [gmeta.stac_extent(cat.coverages[rid].stac) for rid in cat.public.values()]


def extra_collections(request: Request, lang: str) -> list[dict]:
    """The raster collections (with items) as coverage collection documents."""
    cat = _catalog_now(request)
    base = _base(request)
    return [
        _collection_doc(base, pid, rid, cat.coverages[rid], cat, lang)
        for pid, rid in cat.public.items()
    ]


def find_collection(request: Request, collection_id: str, lang: str) -> dict | None:
    """The document of the coverage ``collection_id``, or None when it is not one."""
    cat = _catalog_now(request)
    rid = cat.public.get(collection_id)
    if rid is None:
        return None
    return _collection_doc(
        _base(request), collection_id, rid, cat.coverages[rid], cat, lang, full=True
    )


# ---------------------------------------------------------------------------------------------
# STAC documents
# ---------------------------------------------------------------------------------------------


def _stac_item(base: str, content: dict) -> dict:
    doc = dict(content)
    coll, iid = doc["collection"], doc["id"]
    cpath = f"{base}/stac/collections/{quote(coll)}"
    doc["links"] = [
        {"href": f"{cpath}/items/{quote(iid)}", "rel": "self", "type": GEOJSON},
        {"href": cpath, "rel": "parent", "type": JSON},
        {"href": cpath, "rel": "collection", "type": JSON},
        {"href": f"{base}/stac", "rel": "root", "type": JSON},
    ]
    assets = {}
    for key, asset in (doc.get("assets") or {}).items():
        a = dict(asset)
        a["href"] = f"{base}/rasters/{quote(a['href'], safe='/')}"
        assets[key] = a
    doc["assets"] = assets
    return doc


def _footprints(features: list[dict]) -> dict:
    """The items' footprints with a few properties, for the map of an HTML page."""
    keep = ("datetime", "start_datetime", "end_datetime", "proj:code", "gsd")
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": f["id"],
                "geometry": f.get("geometry"),
                "properties": {k: f["properties"][k] for k in keep if k in f.get("properties", {})},
            }
            for f in features
        ],
    }


def _stac_collection(base: str, content: dict, cat: RasterCatalog) -> dict:
    doc = dict(content)
    rid = doc["id"]
    cpath = f"{base}/stac/collections/{quote(rid)}"
    doc["links"] = [
        {"href": cpath, "rel": "self", "type": JSON},
        {"href": f"{base}/stac", "rel": "root", "type": JSON},
        {"href": f"{base}/stac", "rel": "parent", "type": JSON},
        {"href": f"{cpath}/items", "rel": "items", "type": GEOJSON},
    ]
    pid = cat.public_id(rid)
    if pid is not None:
        doc["links"].append(
            {
                "href": f"{base}/collections/{quote(pid)}",
                "rel": "related",
                "type": JSON,
                "title": "OGC API - Coverages collection",
            }
        )
    return doc


@dataclass
class SearchArgs:
    """A STAC item search, validated."""

    collections: list[str] | None = None
    ids: list[str] | None = None
    bbox: list[float] | None = None
    intersects: dict | None = None
    intersects_wkb: bytes | None = None
    datetime: str | None = None
    interval: object = None
    limit: int = DEFAULT_LIMIT
    token: str | None = None
    after: tuple[str, str] | None = None

    def body(self) -> dict:
        """The POST body of this search (for next links)."""
        out: dict = {"limit": self.limit}
        for k in ("collections", "ids", "bbox", "intersects", "datetime"):
            v = getattr(self, k)
            if v is not None:
                out[k] = v
        return out

    def query(self) -> list[tuple[str, str]]:
        """The GET parameters of this search (for next links)."""
        out: list[tuple[str, str]] = []
        if self.collections is not None:
            out.append(("collections", ",".join(self.collections)))
        if self.ids is not None:
            out.append(("ids", ",".join(self.ids)))
        if self.bbox is not None:
            out.append(("bbox", ",".join(repr(v) for v in self.bbox)))
        if self.intersects is not None:
            out.append(("intersects", orjson.dumps(self.intersects).decode()))
        if self.datetime is not None:
            out.append(("datetime", self.datetime))
        out.append(("limit", str(self.limit)))
        return out


def _str_list(value, name: str) -> list[str]:
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = [v.strip() for v in value if v.strip()]
    else:
        raise InputError(f"Parameter {name}: give a list of strings (comma-separated in a URL)")
    if not items:
        raise InputError(f"Parameter {name}: empty; give one or more values")
    return items


def _search_args(src: dict, *, allow: tuple[str, ...]) -> SearchArgs:
    """Validate search parameters (GET strings or a POST JSON body)."""
    from gis.query import SUPPORTED_CRS, parse_bbox

    for k in src:
        if k not in allow:
            shown = k if len(str(k)) <= 60 else str(k)[:57] + "..."
            raise InputError(
                f"Unknown parameter {shown!r}; the parameters of this search are: "
                f"{', '.join(a for a in allow if a != 'f')}"
            )
    a = SearchArgs()
    if src.get("collections") is not None:
        a.collections = _str_list(src["collections"], "collections")
    if src.get("ids") is not None:
        a.ids = _str_list(src["ids"], "ids")
    if src.get("bbox") is not None:
        raw = src["bbox"]
        if isinstance(raw, list):
            if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in raw):
                raise InputError("Parameter bbox: give 4 (or 6) numbers")
            raw = ",".join(repr(float(v)) for v in raw)
        if not isinstance(raw, str):
            raise InputError("Parameter bbox: give 4 (or 6) numbers")
        a.bbox = list(parse_bbox(raw, SUPPORTED_CRS[gcov.CRS84_URI], "bbox"))
    if src.get("intersects") is not None:
        if a.bbox is not None:
            raise InputError("Parameter intersects: give either bbox or intersects, not both")
        a.intersects, a.intersects_wkb = _geometry(src["intersects"])
    if src.get("datetime") is not None:
        if not isinstance(src["datetime"], str):
            raise InputError(
                "Parameter datetime: give an RFC 3339 date-time or interval as a string"
            )
        a.datetime = src["datetime"]
        a.interval = gcov.parse_time(a.datetime, "datetime")
    if src.get("limit") is not None:
        v = src["limit"]
        if isinstance(v, str) and re.fullmatch(r"\s*\d{1,9}\s*", v):
            v = int(v)
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= MAX_LIMIT:
            raise InputError(
                f"Parameter limit: {src['limit']!r} is not a whole number from 1 to {MAX_LIMIT}"
            )
        a.limit = v
    if src.get("token") is not None:
        if not isinstance(src["token"], str):
            raise InputError("Parameter token: not a token of this API")
        a.token = src["token"]
        a.after = gcov.decode_token(a.token)
    return a


def _geometry(value) -> tuple[dict, bytes]:
    import shapely
    from shapely.geometry import shape

    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise InputError(
                "Parameter intersects: not a GeoJSON geometry (invalid JSON)"
            ) from None
    try:
        if not isinstance(value, dict) or value.get("type") in (
            None,
            "Feature",
            "FeatureCollection",
        ):
            raise ValueError
        g = shape(value)
        if g.is_empty:
            raise ValueError
        b = g.bounds
        if not (-180 <= b[0] <= b[2] <= 180 and -90 <= b[1] <= b[3] <= 90):
            raise InputError(
                "Parameter intersects: the geometry is not in longitude/latitude degrees"
            )
        if not g.is_valid:
            g = shapely.make_valid(g)
        return value, shapely.to_wkb(g)
    except InputError:
        raise
    except Exception:  # noqa: BLE001  # shapely's errors on malformed GeoJSON vary by kind
        raise InputError(
            "Parameter intersects: not a GeoJSON geometry (Point, Polygon, ...) in "
            "longitude/latitude"
        ) from None


# ---------------------------------------------------------------------------------------------
# COG downloads
# ---------------------------------------------------------------------------------------------


class AssetResponse(FileResponse):
    """A file with range requests; a malformed Range header is ignored (RFC 9110: the whole file),
    an unsatisfiable one is a 416 OGC exception."""

    async def __call__(self, scope, receive, send) -> None:
        headers = Headers(scope=scope)
        rng = headers.get("range")
        if rng is not None and scope.get("method", "GET").upper() in ("GET", "HEAD"):
            size = (
                self.stat_result.st_size
                if self.stat_result is not None
                else os.stat(self.path).st_size
            )
            drop = False
            try:
                FileResponse._parse_range_header(rng, size)
            except MalformedRangeHeader:
                drop = True
            except RangeNotSatisfiable:
                resp = _json(
                    {
                        "code": "RangeNotSatisfiable",
                        "description": f"Header Range: {rng[:60]!r} lies beyond the file's "
                        f"{size} bytes",
                    },
                    status=416,
                    headers={
                        "Content-Range": f"bytes */{size}",
                        "ETag": self.headers.get("etag", ""),
                    },
                )
                await resp(scope, receive, send)
                return
            if drop:
                scope = dict(scope)
                scope["headers"] = [(k, v) for k, v in scope["headers"] if k.lower() != b"range"]
        await super().__call__(scope, receive, send)


# ---------------------------------------------------------------------------------------------
# the router
# ---------------------------------------------------------------------------------------------


def _coverage_format(request: Request) -> str:
    f = request.query_params.get("f")
    if f is not None:
        fmt = _F_COVERAGE.get(f.strip().lower())
        if fmt is None:
            raise InputError(
                f"Parameter f: {f!r} is not a format of the coverage; give GeoTIFF "
                "or covjson (CoverageJSON)"
            )
        return fmt
    accept = (request.headers.get("accept") or "").lower()
    for part in accept.split(","):
        media = part.split(";")[0].strip()
        if media in ("image/tiff", "application/geotiff"):
            return "geotiff"
        if media in (COVJSON, "application/json"):
            return "covjson"
    return "geotiff"


def _stac_format(request: Request) -> str:
    """``json`` or ``html`` (``f``, else the Accept header: browsers get HTML)."""
    from api.negotiation import negotiate

    return negotiate(request, ("json", "html"))


def _stac_html(request: Request, template: str, doc: dict, media: str = JSON, **ctx) -> Response:
    """A STAC document as an HTML page (api/templates/stac_*.html)."""
    from api.negotiation import language

    q = [(k, v) for k, v in request.query_params.multi_items() if k != "f"]
    json_href = f"{_base(request)}{request.url.path}?{urlencode([*q, ('f', 'json')])}"
    return request.app.state.pages.render(
        template,
        lang=language(request),
        base=_base(request),
        self_url=str(request.url),
        alternates=[{"href": json_href, "rel": "alternate", "type": media, "title": "JSON"}],
        doc=doc,
        **ctx,
    )


def make_router(settings: Settings) -> APIRouter:
    """The routes of the coverages, the STAC API and the COG downloads."""
    router = APIRouter()

    def limits(request: Request) -> gcov.CoverageLimits:
        return getattr(request.app.state, "coverage_limits", None) or gcov.CoverageLimits()

    async def fetch(request: Request, query: str, params) -> list:
        async with request.app.state.gis.pool.connection() as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchall()

    # --- OGC API - Coverages --------------------------------------------------------------------
    @router.get("/collections/{collection_id}/coverage", include_in_schema=False)
    async def coverage(request: Request, collection_id: str) -> Response:
        cat = await _catalog(request)
        rid, info = cat.get(collection_id)
        _check_params(request, COVERAGE_PARAMS, repeatable=("subset",))
        fmt = _coverage_format(request)
        qp = request.query_params
        params = {k: qp.get(k) for k in COVERAGE_PARAMS}
        if params.pop("scaleSize") is not None:
            if params["scale-size"] is not None:
                raise InputError("Parameter scaleSize: give scale-size or scaleSize, not both")
            params["scale-size"] = qp.get("scaleSize")
        subsets = qp.getlist("subset")
        params["subset"] = ",".join(subsets) if subsets else None
        q = gcov.parse_coverage_query(params, info)
        lim = limits(request)
        rows = await fetch(request, gcov.ITEMS_SQL, gcov.items_params(rid, q, lim.max_items * 4))
        items = gcov.items_from_rows(rows)
        cov = await run_in_threadpool(
            gcov.read_coverage, items, settings.raster_dir, q, limits=lim, json_out=fmt == "covjson"
        )
        headers = {"Content-Crs": f"<{cov.crs_uri}>"}
        if fmt == "geotiff":
            body = await run_in_threadpool(gcov.to_geotiff, cov)
            headers["Content-Disposition"] = f'inline; filename="{collection_id}.tif"'
            return Response(body, media_type=GEOTIFF, headers=headers)
        body = await run_in_threadpool(lambda: orjson.dumps(gcov.to_covjson(cov)))
        return Response(body, media_type=COVJSON, headers=headers)

    @router.get("/collections/{collection_id}/coverage/domainset", include_in_schema=False)
    async def domainset(request: Request, collection_id: str) -> Response:
        cat = await _catalog(request)
        _rid, info = cat.get(collection_id)
        _check_params(request, ("f", "lang"))
        _check_json_f(request)
        return _json(gcov.domainset(info))

    @router.get("/collections/{collection_id}/coverage/rangetype", include_in_schema=False)
    async def rangetype(request: Request, collection_id: str) -> Response:
        cat = await _catalog(request)
        _rid, info = cat.get(collection_id)
        _check_params(request, ("f", "lang"))
        _check_json_f(request)
        return _json(gcov.rangetype(info))

    # --- STAC API -------------------------------------------------------------------------------
    @router.get("/stac", include_in_schema=False)
    async def stac_landing(request: Request) -> Response:
        _check_params(request, ("f", "lang"))
        fmt = _stac_format(request)
        base = _base(request)
        rows = await fetch(request, "SELECT id, title FROM raster.collections ORDER BY id", None)
        links = [
            {"href": f"{base}/stac", "rel": "self", "type": JSON, "title": "This catalog"},
            {"href": f"{base}/stac", "rel": "root", "type": JSON, "title": "This catalog"},
            {
                "href": f"{base}/stac/conformance",
                "rel": "conformance",
                "type": JSON,
                "title": "STAC API conformance classes",
            },
            {
                "href": f"{base}/stac/collections",
                "rel": "data",
                "type": JSON,
                "title": "Collections",
            },
            {
                "href": f"{base}/stac/search",
                "rel": "search",
                "type": GEOJSON,
                "method": "GET",
                "title": "Item search",
            },
            {
                "href": f"{base}/stac/search",
                "rel": "search",
                "type": GEOJSON,
                "method": "POST",
                "title": "Item search",
            },
            {
                "href": f"{base}/api",
                "rel": "service-desc",
                "type": "application/vnd.oai.openapi+json;version=3.0",
                "title": "OpenAPI document",
            },
            {"href": f"{base}/", "rel": "related", "type": JSON, "title": "The OGC API root"},
        ]
        links += [
            {
                "href": f"{base}/stac/collections/{quote(cid)}",
                "rel": "child",
                "type": JSON,
                "title": title,
            }
            for cid, title in rows
        ]
        doc = {
            "type": "Catalog",
            "stac_version": STAC_VERSION,
            "id": "hcmc-rasters",
            "title": "HCMC open GIS: raster catalog",
            "description": "Satellite scenes and gridded data of Ho Chi Minh City as Cloud-Optimised "
            "GeoTIFFs (STAC API).",
            "conformsTo": STAC_CONFORMANCE,
            "links": links,
        }
        if fmt == "html":
            return _stac_html(request, "stac_landing.html", doc)
        return _json(doc)

    @router.get("/stac/conformance", include_in_schema=False)
    async def stac_conformance(request: Request) -> Response:
        _check_params(request, ("f", "lang"))
        _check_json_f(request)
        return _json({"conformsTo": STAC_CONFORMANCE})

    @router.get("/stac/collections", include_in_schema=False)
    async def stac_collections(request: Request) -> Response:
        _check_params(request, ("f", "lang"))
        fmt = _stac_format(request)
        base = _base(request)
        cat = await _catalog(request)
        rows = await fetch(request, "SELECT content FROM raster.stac_collections ORDER BY id", None)
        doc = {
            "collections": [_stac_collection(base, r[0], cat) for r in rows],
            "links": [
                {"href": f"{base}/stac/collections", "rel": "self", "type": JSON},
                {"href": f"{base}/stac", "rel": "root", "type": JSON},
                {"href": f"{base}/stac", "rel": "parent", "type": JSON},
            ],
        }
        if fmt == "html":
            return _stac_html(request, "stac_collections.html", doc)
        return _json(doc)

    async def stac_collection_row(request: Request, collection_id: str) -> dict:
        rows = await fetch(
            request, "SELECT content FROM raster.stac_collections WHERE id = %s", (collection_id,)
        )
        if not rows:
            known = await fetch(
                request, "SELECT id FROM raster.collections ORDER BY id LIMIT 20", None
            )
            raise NotFoundError(
                f"There is no raster collection {collection_id!r}; collections: "
                f"{', '.join(r[0] for r in known) or '(none)'}."
            )
        return rows[0][0]

    @router.get("/stac/collections/{collection_id}", include_in_schema=False)
    async def stac_collection(request: Request, collection_id: str) -> Response:
        content = await stac_collection_row(request, collection_id)
        _check_params(request, ("f", "lang"))
        fmt = _stac_format(request)
        doc = _stac_collection(_base(request), content, await _catalog(request))
        if fmt == "html":
            return _stac_html(request, "stac_collection.html", doc)
        return _json(doc)

    async def search(
        request: Request,
        a: SearchArgs,
        self_href: str,
        method: str,
        fixed_collection: str | None = None,
        html: bool = False,
    ) -> Response:
        base = _base(request)
        page_sql, params, count_sql = gcov.stac_search_sql(
            collections=(
                [fixed_collection]
                if a.collections is None or fixed_collection in a.collections
                else []
            )
            if fixed_collection
            else a.collections,
            ids=a.ids,
            bbox=a.bbox,
            intersects_wkb=a.intersects_wkb,
            interval=a.interval,
            after=a.after,
            limit=a.limit,
        )
        rows = await fetch(request, page_sql, params)
        count = (await fetch(request, count_sql, params))[0][0]
        more = len(rows) > a.limit
        rows = rows[: a.limit]
        links = [
            {"href": self_href, "rel": "self", "type": GEOJSON},
            {"href": f"{base}/stac", "rel": "root", "type": JSON},
        ]
        if fixed_collection:
            links.append(
                {
                    "href": f"{base}/stac/collections/{quote(fixed_collection)}",
                    "rel": "collection",
                    "type": JSON,
                }
            )
        if more:
            token = gcov.encode_token(rows[-1][0], rows[-1][1])
            path = self_href.split("?")[0]
            if method == "POST":
                links.append(
                    {
                        "href": path,
                        "rel": "next",
                        "type": GEOJSON,
                        "method": "POST",
                        "body": {**a.body(), "token": token},
                        "merge": False,
                    }
                )
            else:
                links.append(
                    {
                        "href": f"{path}?{urlencode(a.query() + [('token', token)])}",
                        "rel": "next",
                        "type": GEOJSON,
                        "method": "GET",
                    }
                )
        doc = {
            "type": "FeatureCollection",
            "features": [_stac_item(base, r[2]) for r in rows],
            "links": links,
            "numberMatched": int(count),
            "numberReturned": len(rows),
        }
        if html:
            nxt = next((lk["href"] for lk in links if lk["rel"] == "next"), None)
            lang = request.query_params.get("lang")
            extra = [("f", "html")] + ([("lang", lang)] if lang else [])
            return _stac_html(
                request,
                "stac_items.html",
                doc,
                media=GEOJSON,
                cid=fixed_collection,
                geojson=_footprints(doc["features"]),
                next_url=f"{nxt}&{urlencode(extra)}" if nxt else None,
            )
        return _json(doc, media=GEOJSON)

    @router.get("/stac/collections/{collection_id}/items", include_in_schema=False)
    async def stac_items(request: Request, collection_id: str) -> Response:
        await stac_collection_row(request, collection_id)
        _check_params(request, STAC_ITEMS_PARAMS)
        fmt = _stac_format(request)
        src = {k: v for k, v in request.query_params.items() if k not in ("f", "lang")}
        a = _search_args(src, allow=STAC_ITEMS_PARAMS)
        self_href = str(request.url)
        if fmt == "html":  # the JSON document's self link
            q = [(k, v) for k, v in request.query_params.multi_items() if k not in ("f", "lang")]
            self_href = f"{_base(request)}{request.url.path}" + (f"?{urlencode(q)}" if q else "")
        return await search(
            request, a, self_href, "GET", fixed_collection=collection_id, html=fmt == "html"
        )

    @router.get("/stac/collections/{collection_id}/items/{item_id}", include_in_schema=False)
    async def stac_item(request: Request, collection_id: str, item_id: str) -> Response:
        await stac_collection_row(request, collection_id)
        _check_params(request, ("f", "lang"))
        fmt = _stac_format(request)
        rows = await fetch(
            request,
            "SELECT content FROM raster.stac_items WHERE collection = %s AND id = %s",
            (collection_id, item_id),
        )
        if not rows:
            raise NotFoundError(f"The raster collection {collection_id!r} has no item {item_id!r}.")
        doc = _stac_item(_base(request), rows[0][0])
        if fmt == "html":
            return _stac_html(
                request, "stac_item.html", doc, media=GEOJSON, geojson=_footprints([doc])
            )
        return _json(doc, media=GEOJSON)

    @router.get("/stac/search", include_in_schema=False)
    async def stac_search_get(request: Request) -> Response:
        _check_params(request, SEARCH_PARAMS)
        _check_json_f(request)
        src = {k: v for k, v in request.query_params.items() if k != "f"}
        a = _search_args(src, allow=SEARCH_PARAMS)
        return await search(request, a, str(request.url), "GET")

    @router.post("/stac/search", include_in_schema=False)
    async def stac_search_post(request: Request) -> Response:
        _check_params(request, ("f",))
        raw = await request.body()
        try:
            body = orjson.loads(raw) if raw.strip() else {}
        except orjson.JSONDecodeError:
            raise InputError("The request body is not JSON: send a STAC search object") from None
        if not isinstance(body, dict):
            raise InputError("The request body must be a JSON object (a STAC search)")
        a = _search_args(body, allow=SEARCH_PARAMS)
        return await search(request, a, f"{_base(request)}/stac/search", "POST")

    # --- COG downloads --------------------------------------------------------------------------
    @router.api_route(
        "/rasters/{collection_id}/{file_name}", methods=["GET", "HEAD"], include_in_schema=False
    )
    async def raster_file(request: Request, collection_id: str, file_name: str) -> Response:
        from gis.raster.store import RasterStore

        _check_params(request, ())
        href = f"{collection_id}/{file_name}"
        rows = await fetch(
            request,
            "SELECT collection, id, asset_checksum, asset_size FROM raster.items "
            "WHERE asset_href = %s",
            (href,),
        )
        if not rows or "/" in file_name or file_name.startswith("."):
            raise NotFoundError(
                f"There is no raster file {href!r} in the catalog; the STAC items "
                "(/stac/search) link to the files."
            )
        coll, iid, checksum, size = rows[0]
        try:
            path = RasterStore(settings.raster_dir).path(href)
            st = await asyncio.to_thread(os.stat, path)
        except (OSError, GisError):
            raise gcov.RasterUnavailable(
                f"The file of raster item {coll}/{iid} is missing from the "
                "raster store; the administrator should ingest it again."
            ) from None
        if st.st_size != size:
            raise gcov.RasterUnavailable(
                f"The file of raster item {coll}/{iid} is damaged in the raster "
                "store (its size is not the catalogued one); the administrator "
                "should ingest it again."
            )
        etag = f'"{checksum}"'
        headers = {
            "ETag": etag,
            "Cache-Control": "public, max-age=86400",
            "Content-Disposition": f'inline; filename="{file_name}"',
        }
        inm = request.headers.get("if-none-match")
        if inm and (
            inm.strip() == "*" or etag in [v.strip().removeprefix("W/") for v in inm.split(",")]
        ):
            return Response(status_code=304, headers=headers)
        return AssetResponse(path, stat_result=st, media_type=COG, headers=headers)

    return router


# ---------------------------------------------------------------------------------------------
# OpenAPI
# ---------------------------------------------------------------------------------------------


def openapi_paths(snapshot=None) -> dict:
    """The Coverages, STAC and download paths of the OpenAPI 3.0 document."""

    def p(
        name: str, description: str, schema: dict | None = None, where: str = "query", **extra
    ) -> dict:
        d = {
            "name": name,
            "in": where,
            "required": where == "path",
            "description": description,
            "schema": schema or {"type": "string"},
        }
        d.update(extra)
        return d

    err = {"$ref": "#/components/responses/InvalidParameter"}
    nf = {"$ref": "#/components/responses/NotFound"}
    exc = {"application/json": {"schema": {"$ref": "#/components/schemas/exception"}}}
    unavailable = {
        "description": "A raster file cannot be read (missing or damaged).",
        "content": exc,
    }
    coll = p("collectionId", "Coverage id (see /collections).", where="path")
    stac_coll = p("collectionId", "Raster collection id (see /stac/collections).", where="path")
    lang = p("lang", "Language of titles.", {"type": "string", "enum": ["en", "vi"]})
    fjson = p("f", "Response format.", {"type": "string", "enum": ["json"]})
    fhtml = p("f", "Response format.", {"type": "string", "enum": ["json", "html"]})
    html = {"text/html": {"schema": {"type": "string"}}}
    obj = {"type": "object"}
    js = {JSON: {"schema": obj}}
    gj = {
        GEOJSON: {
            "schema": {
                "type": "object",
                "required": ["type"],
                "properties": {
                    "type": {"type": "string"},
                    "features": {"type": "array", "items": obj},
                    "links": {"type": "array", "items": obj},
                    "numberMatched": {"type": "integer"},
                    "numberReturned": {"type": "integer"},
                },
            }
        }
    }
    bbox = p(
        "bbox",
        "minLon,minLat,maxLon,maxLat (CRS84).",
        {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 6},
        style="form",
        explode=False,
    )
    datetime = p(
        "datetime",
        "RFC 3339 instant or interval (`..` for an open end); a year or "
        "month (2020, 2020-06) stands for all of it.",
    )
    limit = p(
        "limit",
        "Items per page.",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    )
    token = p("token", "Paging token (from a next link).")
    collections = p(
        "collections",
        "Collection ids, comma-separated.",
        {"type": "array", "items": {"type": "string"}},
        style="form",
        explode=False,
    )
    ids = p(
        "ids",
        "Item ids, comma-separated.",
        {"type": "array", "items": {"type": "string"}},
        style="form",
        explode=False,
    )
    intersects = p("intersects", "A GeoJSON geometry (lon/lat), as JSON.")

    def op(
        op_id: str,
        summary: str,
        params: list,
        content: dict,
        tag: str,
        extra: dict | None = None,
        method: str = "get",
    ) -> dict:
        responses = {"200": {"description": summary, "content": content}, "400": err, "404": nf}
        responses.update(extra or {})
        return {
            method: {
                "tags": [tag],
                "summary": summary,
                "operationId": op_id,
                "parameters": params,
                "responses": responses,
            }
        }

    cov_params = [
        coll,
        p(
            "subset",
            "Subset: `Lat(a:b),Lon(c:d)` (degrees), `E(a:b),N(c:d)` (the coverage's CRS), "
            '`time("2020-01-01":"2020-12-31")`; `*` is an open end.',
            {"type": "array", "items": {"type": "string"}},
            style="form",
            explode=True,
        ),
        p(
            "bbox",
            "minx,miny,maxx,maxy in bbox-crs (default CRS84).",
            {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 6},
            style="form",
            explode=False,
        ),
        p("bbox-crs", "CRS of bbox (an OGC URI).", {"type": "string"}),
        p(
            "subset-crs",
            "CRS of the spatial axes of subset (E/N, or Lon/Lat for a geographic CRS): an OGC "
            "URI or a CURIE of the collection's `crs` list.",
            {"type": "string"},
        ),
        p(
            "crs",
            "Output CRS (an OGC URI or a CURIE such as `[EPSG:9210]`, from the collection's "
            "`crs` list); the coverage's own CRS by default. Nearest-neighbour resampling.",
            {"type": "string"},
            example="http://www.opengis.net/def/crs/EPSG/0/9210",
        ),
        datetime,
        p(
            "properties",
            "Bands, comma-separated (names, common names or 1-based numbers).",
            {"type": "array", "items": {"type": "string"}},
            style="form",
            explode=False,
        ),
        p(
            "scale-factor",
            "Downsampling factor along every axis (2: half as many cells).",
            {"type": "number", "exclusiveMinimum": True, "minimum": 0},
        ),
        p("scale-axes", "Downsampling factor per axis, e.g. `Lon(2),Lat(2)` or `E(2),N(2)`."),
        p("scale-size", "Output size in cells per axis, e.g. `Lon(512),Lat(512)`."),
        p(
            "scaleSize",
            "The name of scale-size in earlier drafts of the standard (GDAL's OGCAPI driver "
            "sends it).",
            deprecated=True,
        ),
        p("width", "Output width in cells.", {"type": "integer", "minimum": 1}),
        p("height", "Output height in cells.", {"type": "integer", "minimum": 1}),
        p("f", "Output format.", {"type": "string", "enum": ["GeoTIFF", "covjson", "json"]}),
        lang,
    ]
    binary = {"type": "string", "format": "binary"}
    search_body = {
        "type": "object",
        "properties": {
            "collections": {"type": "array", "items": {"type": "string"}},
            "ids": {"type": "array", "items": {"type": "string"}},
            "bbox": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 6},
            "intersects": {"type": "object"},
            "datetime": {"type": "string"},
            "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
            "token": {"type": "string"},
        },
    }
    search_get = op(
        "stacSearch",
        "STAC item search",
        [collections, ids, bbox, intersects, datetime, limit, token],
        gj,
        "STAC",
    )
    search_post = op("stacSearchPost", "STAC item search (POST)", [], gj, "STAC", method="post")
    search_post["post"]["requestBody"] = {
        "required": False,
        "content": {JSON: {"schema": search_body}},
    }
    search_get.update(search_post)
    return {
        "/collections/{collectionId}/coverage": op(
            "getCoverage",
            "A coverage (or a part of it) as GeoTIFF or CoverageJSON",
            cov_params,
            {GEOTIFF: {"schema": binary}, COVJSON: {"schema": obj}},
            "Coverages",
            {"503": unavailable},
        ),
        "/collections/{collectionId}/coverage/domainset": op(
            "getCoverageDomainSet",
            "The domain set (grid, CRS, times) of a coverage",
            [coll, fjson, lang],
            js,
            "Coverages",
        ),
        "/collections/{collectionId}/coverage/rangetype": op(
            "getCoverageRangeType",
            "The range type (bands) of a coverage",
            [coll, fjson, lang],
            js,
            "Coverages",
        ),
        "/stac": op("stacLanding", "STAC API landing page", [fhtml, lang], {**js, **html}, "STAC"),
        "/stac/conformance": op(
            "stacConformance", "STAC API conformance classes", [fjson, lang], js, "STAC"
        ),
        "/stac/collections": op(
            "stacCollections", "STAC collections", [fhtml, lang], {**js, **html}, "STAC"
        ),
        "/stac/collections/{collectionId}": op(
            "stacCollection",
            "A STAC collection",
            [stac_coll, fhtml, lang],
            {**js, **html},
            "STAC",
        ),
        "/stac/collections/{collectionId}/items": op(
            "stacItems",
            "The STAC items of a collection",
            [stac_coll, bbox, intersects, datetime, collections, ids, limit, token, fhtml, lang],
            {**gj, **html},
            "STAC",
        ),
        "/stac/collections/{collectionId}/items/{itemId}": op(
            "stacItem",
            "A STAC item",
            [stac_coll, p("itemId", "Item id.", where="path"), fhtml, lang],
            {GEOJSON: {"schema": obj}, **html},
            "STAC",
        ),
        "/stac/search": search_get,
        "/rasters/{collectionId}/{fileName}": op(
            "getRasterFile",
            "A COG of the raster store (HTTP range requests)",
            [stac_coll, p("fileName", "File name (from a STAC item's data asset).", where="path")],
            {COG: {"schema": binary}},
            "STAC",
            {
                "206": {
                    "description": "Part of the file (Range).",
                    "content": {COG: {"schema": binary}},
                },
                "304": {"description": "Not modified (If-None-Match matched the ETag)."},
                "416": {"description": "Range not satisfiable.", "content": exc},
                "503": unavailable,
            },
        ),
    }
