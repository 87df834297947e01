"""Metadata of the published layers: catalogue records (OGC API - Records) and a DCAT-AP feed.

Everything a harvester or a person needs to find a layer and judge it comes from the catalog
(:mod:`gis.catalog`, ``gis_meta.collections`` and ``gis_meta.publisher``, migration 0010) and from
what the platform recorded itself:

* lineage: the ingest runs (``ingest.runs``) of the kinds that load the layer (the catalog's
  ``ingest_kinds``), or for an analysis output the row of ``stats.analysis_outputs``;
* extents: computed from the data (:func:`gis.catalog.spatial_extent`, ``temporal_extent``);
* distributions: the published downloads (:func:`gis.downloads.published`) with size and SHA-256.

The raster collections that have items (``raster.collections``, migration 0005) have records too
(:class:`RasterMetadata`, read by :func:`raster_metadata`): title, description, keywords, licence
and providers from their STAC Collection, the bands as their schema, the runs of the raster ingest
as lineage, their coverage, STAC collection and map tiles as links and each COG (``/rasters/...``)
as an enclosure and a DCAT distribution. A raster collection's record id is the id ``/collections``
lists it by (:func:`raster_record_ids`: ``raster-<id>`` when a feature collection has its id).
Nothing of the server's folders is published: not the source paths of the runs (only file
names), never ``raster.items.source_path``.

:func:`collect` reads all that with one connection into :class:`LayerMetadata` objects; then
:func:`record` builds the GeoJSON record of a layer, :func:`dcat_catalog` the JSON-LD catalogue and
:func:`search` filters records by text (accent- and case-insensitive, so ``phuong`` finds
``phường``), bounding box, time and type. Nothing here knows about HTTP: the links are built from
a base URL the caller gives.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import PurePath
from urllib.parse import quote

import psycopg

from gis.catalog import (
    RESERVED_IDS,
    Collection,
    Contact,
    Publisher,
    load_catalog,
    load_publisher,
    spatial_extent,
    temporal_extent,
)

__all__ = [
    "RECORD_CONFORMS",
    "AnalysisRun",
    "LayerMetadata",
    "RasterFile",
    "RasterMetadata",
    "Run",
    "collect",
    "dcat_catalog",
    "fold",
    "layer_metadata",
    "raster_dataset",
    "raster_metadata",
    "raster_record",
    "raster_record_ids",
    "record",
    "search",
]

#: what a record says it conforms to
RECORD_CONFORMS = ["http://www.opengis.net/spec/ogcapi-records-1/1.0/req/record-core"]
#: the one record type of this catalogue: every record describes a dataset (a layer)
RECORD_TYPE = "dataset"
#: the runs listed in a record's lineage (the count covers all of them)
MAX_RUNS = 20

ISO_TOPIC_SCHEME = "https://standards.iso.org/iso/19139/resources/gmxCodelists.xml#MD_TopicCategoryCode"
EU_THEME_SCHEME = "http://publications.europa.eu/resource/authority/data-theme"
EU_FREQUENCY = "http://publications.europa.eu/resource/authority/frequency/"
EU_LANGUAGE = "http://publications.europa.eu/resource/authority/language/"
IANA_MEDIA = "https://www.iana.org/assignments/media-types/"
OGC_FEATURES_CORE = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"

#: ISO 19115 maintenance frequency -> EU "frequency" authority table code (DCAT-AP)
FREQUENCY_CODES = {
    "continual": "CONT", "daily": "DAILY", "weekly": "WEEKLY", "fortnightly": "BIWEEKLY",
    "monthly": "MONTHLY", "quarterly": "QUARTERLY", "biannually": "ANNUAL_2", "annually": "ANNUAL",
    "asNeeded": "IRREG", "irregular": "IRREG", "notPlanned": "NEVER", "unknown": "UNKNOWN",
}
FREQUENCY_TITLES = {
    "en": {"continual": "continual", "daily": "daily", "weekly": "weekly", "fortnightly": "every two weeks",
           "monthly": "monthly", "quarterly": "quarterly", "biannually": "twice a year",
           "annually": "yearly", "asNeeded": "as needed (after each new edition of the source)",
           "irregular": "irregular", "notPlanned": "not planned (historical data)", "unknown": "unknown"},
    "vi": {"continual": "liên tục", "daily": "hằng ngày", "weekly": "hằng tuần", "fortnightly": "hai tuần một lần",
           "monthly": "hằng tháng", "quarterly": "hằng quý", "biannually": "hai lần mỗi năm",
           "annually": "hằng năm", "asNeeded": "khi cần (sau mỗi lần nguồn cập nhật)",
           "irregular": "không định kỳ", "notPlanned": "không cập nhật (dữ liệu lịch sử)",
           "unknown": "không rõ"},
}

JSONLD_CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "vcard": "http://www.w3.org/2006/vcard/ns#",
    "spdx": "http://spdx.org/rdf/terms#",
    "locn": "http://www.w3.org/ns/locn#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "gsp": "http://www.opengis.net/ont/geosparql#",
}


@dataclass(frozen=True)
class Run:
    """One ingest run behind a layer (``ingest.runs``). Only the file name of the source is kept:
    the folders of the server are nobody's business."""

    run_id: int
    kind: str
    source: str
    layer: str | None
    checksum: str | None
    started_at: datetime
    finished_at: datetime
    outcome: str
    n_read: int
    n_loaded: int
    n_inserted: int
    n_updated: int
    n_retired: int
    n_rejected: int

    def as_dict(self) -> dict:
        return {"run": self.run_id, "kind": self.kind, "source": self.source, "layer": self.layer,
                "sha256": self.checksum, "started": _iso(self.started_at), "finished": _iso(self.finished_at),
                "outcome": self.outcome, "read": self.n_read, "loaded": self.n_loaded,
                "inserted": self.n_inserted, "updated": self.n_updated, "retired": self.n_retired,
                "rejected": self.n_rejected}


@dataclass(frozen=True)
class AnalysisRun:
    """The analysis that wrote an output table (``stats.analysis_outputs``)."""

    analysis: str
    parameters: dict
    created_at: datetime
    n_rows: int

    def as_dict(self) -> dict:
        return {"analysis": self.analysis, "parameters": self.parameters, "created": _iso(self.created_at),
                "rows": self.n_rows}


@dataclass(frozen=True)
class LayerMetadata:
    """What the catalogue knows of one published layer."""

    collection: Collection
    bbox: tuple[float, float, float, float] | None
    interval: tuple[str | None, str | None] | None
    contact: Contact | None
    runs: tuple[Run, ...] = ()
    run_count: int = 0
    analysis: AnalysisRun | None = None
    downloads: tuple = ()  # gis.downloads.DownloadFile
    created: datetime | None = None
    updated: datetime | None = None
    #: folded searchable text of the layer (titles, descriptions, keywords in both languages)
    text: str = field(default="", compare=False, repr=False)

    @property
    def id(self) -> str:
        return self.collection.id

    @property
    def update_frequency(self) -> str:
        return self.collection.update_frequency


# --------------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------------

_RUNS_SQL = """
SELECT run_id, kind, source_path, source_layer, checksum, started_at, finished_at, outcome, n_read,
       n_loaded, n_inserted, n_updated, n_retired, n_rejected
FROM ingest.runs
WHERE kind = ANY(%(kinds)s) AND outcome IN ('loaded', 'unchanged')
ORDER BY started_at DESC, run_id DESC
LIMIT %(limit)s
"""

_RUN_SPAN_SQL = """
SELECT count(*), min(finished_at) FILTER (WHERE outcome = 'loaded'),
       max(finished_at) FILTER (WHERE outcome = 'loaded')
FROM ingest.runs
WHERE kind = ANY(%(kinds)s) AND outcome IN ('loaded', 'unchanged')
"""

_ANALYSIS_SQL = """
SELECT analysis, parameters, created_at, n_rows FROM stats.analysis_outputs WHERE table_name = %s
"""


def fold(text: str | None) -> str:
    """Text folded for searching: no accents (``đ`` -> ``d``), case-folded, single spaces.

    Examples
    --------
    >>> fold("  Thửa ĐẤT   địa chính ")
    'thua dat dia chinh'
    """
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(bare.casefold().split())


def _iso(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, datetime):
        v = v if v.tzinfo else v.replace(tzinfo=UTC)
        return v.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    if isinstance(v, date):
        return v.isoformat()
    return str(v)


def _downloads(conn: psycopg.Connection) -> list:
    """The published downloads (``gis.downloads``), or none when that module is not installed."""
    try:
        from gis.downloads import published
    except ImportError:  # the downloads are an optional part of the platform
        return []
    return list(published(conn))


def layer_metadata(conn: psycopg.Connection, coll: Collection, *, publisher: Publisher | None = None,
                   bbox=None, interval=None, downloads: Iterable | None = None,
                   extents: bool = True) -> LayerMetadata:
    """The metadata of one layer: the catalog entry, its lineage, extents and downloads.

    Parameters
    ----------
    conn : psycopg.Connection
        An open connection (nothing is written).
    coll : gis.catalog.Collection
        The layer.
    publisher : gis.catalog.Publisher, optional
        The catalogue's publisher: its contact stands in for a layer without one.
    bbox, interval : optional
        Extents already known (the API's catalog snapshot holds them); computed when omitted and
        ``extents`` is true.
    downloads : iterable of gis.downloads.DownloadFile, optional
        All published downloads (those of other layers are ignored); read when omitted.

    Returns
    -------
    LayerMetadata
    """
    if bbox is None and extents:
        bbox = spatial_extent(conn, coll)
    if interval is None and extents:
        interval = temporal_extent(conn, coll)
    runs: list[Run] = []
    count, created, updated = 0, None, None
    if coll.ingest_kinds:
        kinds = list(coll.ingest_kinds)
        for row in conn.execute(_RUNS_SQL, {"kinds": kinds, "limit": MAX_RUNS}).fetchall():
            run_id, kind, path, layer, checksum, started, finished, outcome, *counts = row
            runs.append(Run(run_id, kind, PurePath(path).name, layer, checksum, started, finished, outcome,
                            *(int(c or 0) for c in counts)))
        count, created, updated = conn.execute(_RUN_SPAN_SQL, {"kinds": kinds}).fetchone()
    analysis = None
    if coll.schema == "stats" and conn.execute("SELECT to_regclass('stats.analysis_outputs')").fetchone()[0]:
        row = conn.execute(_ANALYSIS_SQL, (coll.relation,)).fetchone()
        if row is not None:
            analysis = AnalysisRun(row[0], row[1] or {}, row[2], int(row[3]))
            created = updated = row[2]
    if downloads is None:
        downloads = _downloads(conn)
    # a feature layer's own downloads (COGs are a raster layer's, even should the ids be alike)
    mine = tuple(d for d in downloads if d.collection_id == coll.id and d.format != "cog")
    contact = coll.contact or (publisher.contact if publisher else None)
    text = fold(" ".join(filter(None, (coll.id, coll.title_vi, coll.title_en, coll.description_vi,
                                       coll.description_en, *coll.all_keywords))))
    return LayerMetadata(coll, bbox, interval, contact, tuple(runs), int(count or 0), analysis, mine,
                         created, updated, text)


def collect(conn: psycopg.Connection, catalog: dict[str, Collection] | None = None, *,
            extents: dict[str, tuple] | None = None,
            rasters: bool = True) -> tuple[Publisher | None, list[LayerMetadata | RasterMetadata]]:
    """The publisher and the metadata of every public layer, in catalog order, then the raster
    collections that have items (:func:`raster_metadata`), by id.

    Parameters
    ----------
    conn : psycopg.Connection
    catalog : dict, optional
        The public collections (:func:`gis.catalog.load_catalog`); read when omitted.
    extents : dict of id -> (bbox, interval), optional
        Extents already known; the others are computed.
    rasters : bool
        Include the raster collections (their record ids never clash with the layers').

    Examples
    --------
    >>> from gis.db import connect  # doctest: +SKIP
    >>> with connect(dsn) as conn:  # doctest: +SKIP
    ...     publisher, layers = collect(conn)
    ...     record(layers[0], "http://127.0.0.1:8000", "en", publisher)["properties"]["title"]
    'HCMC wards and communes (from 1 July 2025)'
    """
    catalog = load_catalog(conn) if catalog is None else catalog
    publisher = load_publisher(conn)
    downloads = _downloads(conn)
    extents = extents or {}
    out = []
    for cid, coll in catalog.items():
        bbox, interval = extents.get(cid, (None, None))
        known = cid in extents
        out.append(layer_metadata(conn, coll, publisher=publisher, bbox=bbox, interval=interval,
                                  downloads=downloads, extents=not known))
    if rasters:
        out.extend(raster_metadata(conn, set(catalog), publisher=publisher))
    return publisher, out


# --------------------------------------------------------------------------------------------------
# the record (OGC API - Records, GeoJSON encoding)
# --------------------------------------------------------------------------------------------------

def _bbox_polygon(b: Sequence[float]) -> dict:
    x0, y0, x1, y1 = b
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def _contact_doc(c: Contact, role: str) -> dict:
    doc: dict = {}
    if c.name:
        doc["name"] = c.name
    if c.organisation:
        doc["organization"] = c.organisation
    if c.email:
        doc["emails"] = [{"value": c.email}]
    doc["roles"] = [role]
    return doc


def fields_schema(coll: Collection, lang: str) -> list[dict]:
    """The public fields of a layer: name, title, type (JSON Schema), format, unit, description."""
    out = [{"name": coll.id_column, "title": "Identifier" if lang == "en" else "Mã định danh",
            "type": "integer" if coll.id_type in ("int2", "int4", "int8") else "string", "role": "id"}]
    for f in coll.fields:
        d = {"name": f.name, "title": f.title(lang), "type": f.json_type}
        if f.json_format:
            d["format"] = f.json_format
        if f.unit:
            d["unit"] = f.unit
        if f.description(lang):
            d["description"] = f.description(lang)
        out.append(d)
    out.append({"name": "geometry", "title": "Geometry" if lang == "en" else "Hình học",
                "type": coll.geometry_type, "crs": CRS84})
    return out


def lineage_summary(meta: LayerMetadata | RasterMetadata, lang: str) -> str:
    """One sentence on the runs behind a layer (for pages and descriptions)."""
    if isinstance(meta, RasterMetadata):
        return raster_lineage_summary(meta, lang)
    vi = lang == "vi"
    if meta.analysis is not None:
        a = meta.analysis
        return (f"Kết quả phân tích {a.analysis} ({a.n_rows} dòng), tạo lúc {_iso(a.created_at)}." if vi else
                f"Output of the analysis {a.analysis} ({a.n_rows} rows), written {_iso(a.created_at)}.")
    if not meta.run_count:
        return "Chưa có lần nạp dữ liệu nào." if vi else "No ingest run has loaded it yet."
    last = meta.runs[0]
    if vi:
        return (f"{meta.run_count} lần nạp ({', '.join(meta.collection.ingest_kinds)}); lần gần nhất "
                f"{_iso(last.finished_at)} từ {last.source}: {last.n_loaded} dòng ghi, {last.n_read} dòng đọc.")
    return (f"{meta.run_count} ingest run{'s' if meta.run_count != 1 else ''} "
            f"({', '.join(meta.collection.ingest_kinds)}); the last on {_iso(last.finished_at)} from "
            f"{last.source}: {last.n_loaded} rows written of {last.n_read} read.")


def _formats(meta: LayerMetadata) -> list[dict]:
    out = [{"name": "GeoJSON", "mediaType": "application/geo+json"},
           {"name": "JSON-FG", "mediaType": "application/vnd.ogc.fg+json"},
           {"name": "CSV", "mediaType": "text/csv"},
           {"name": "Mapbox Vector Tiles", "mediaType": "application/vnd.mapbox-vector-tile"}]
    seen = {f["mediaType"] for f in out}
    for d in meta.downloads:
        if d.media_type not in seen:
            seen.add(d.media_type)
            out.append({"name": d.title, "mediaType": d.media_type})
    return out


def _themes(coll: Collection) -> list[dict]:
    themes = []
    if coll.iso_topics:
        themes.append({"concepts": [{"id": t} for t in coll.iso_topics], "scheme": ISO_TOPIC_SCHEME})
    if coll.eu_themes:
        themes.append({"concepts": [{"id": t, "url": f"{EU_THEME_SCHEME}/{t}"} for t in coll.eu_themes],
                       "scheme": EU_THEME_SCHEME})
    return themes


def record_links(meta: LayerMetadata, base: str, lang: str) -> list[dict]:
    """The links of a record to the data it describes: the collection, its items, tiles, schema,
    licence, sources, and each download as an ``enclosure``."""
    c = meta.collection
    coll = f"{base}/collections/{c.id}"
    links = [
        {"href": coll, "rel": "describes", "type": "application/json",
         "title": "The collection (OGC API - Features)" if lang == "en" else "Lớp dữ liệu (OGC API - Features)"},
        {"href": f"{coll}?f=html", "rel": "describes", "type": "text/html",
         "title": "The collection's page" if lang == "en" else "Trang của lớp dữ liệu"},
        {"href": f"{coll}/items", "rel": "items", "type": "application/geo+json",
         "title": "Features as GeoJSON" if lang == "en" else "Đối tượng (GeoJSON)"},
        {"href": f"{coll}/tiles", "rel": "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector",
         "type": "application/json", "title": "Vector tiles" if lang == "en" else "Tile vector"},
        {"href": f"{coll}/feature-schema", "rel": "describedby", "type": "application/schema+json",
         "title": "JSON Schema of the features" if lang == "en" else "Lược đồ JSON của đối tượng"},
    ]
    if c.licence_url:
        links.append({"href": c.licence_url, "rel": "license", "type": "text/html",
                      "title": c.licence_id or c.licence or "Licence"})
    for url in c.source_urls:
        links.append({"href": url, "rel": "via", "type": "text/html",
                      "title": "Source" if lang == "en" else "Nguồn"})
    for d in meta.downloads:
        links.append({"href": base + d.path, "rel": "enclosure", "type": d.media_type,
                      "title": d.title, "length": int(d.size)})
    return links


_LANGUAGES = ({"code": "vi", "name": "Tiếng Việt"}, {"code": "en", "name": "English"})


def _contacts(meta: LayerMetadata | RasterMetadata, publisher: Publisher | None) -> list[dict]:
    """The layer's point of contact and the platform's publisher, as record contacts."""
    contacts = []
    if meta.contact is not None:
        contacts.append(_contact_doc(meta.contact, "pointOfContact"))
    if publisher is not None:
        contacts.append(_contact_doc(Contact(publisher.name, publisher.contact.email, publisher.name),
                                     "publisher"))
    return contacts


def _dated(props: dict, meta: LayerMetadata | RasterMetadata) -> None:
    """``created`` and ``updated`` of a record's properties, where known."""
    if meta.created:
        props["created"] = _iso(meta.created)
    if meta.updated:
        props["updated"] = _iso(meta.updated)


def _record_doc(rid: str, meta: LayerMetadata | RasterMetadata, props: dict, links: list[dict]) -> dict:
    """A record's GeoJSON envelope: its extent as geometry and time, its properties and links."""
    time = None
    if meta.interval is not None:
        time = {"interval": [meta.interval[0] or "..", meta.interval[1] or ".."]}
    return {
        "id": rid,
        "type": "Feature",
        "conformsTo": list(RECORD_CONFORMS),
        "time": time,
        "geometry": _bbox_polygon(meta.bbox) if meta.bbox else None,
        "properties": props,
        "links": links,
    }


def record(meta: LayerMetadata | RasterMetadata, base: str, lang: str = "en",
           publisher: Publisher | None = None) -> dict:
    """The OGC API - Records record (GeoJSON) of a layer, in ``lang``.

    Parameters
    ----------
    meta : LayerMetadata or RasterMetadata
        A raster collection's record is :func:`raster_record`'s.
    base : str
        The API root URL (no trailing slash); links are absolute.
    lang : {"en", "vi"}
    publisher : gis.catalog.Publisher, optional
        Listed among the contacts with the role ``publisher``.

    Returns
    -------
    dict
        ``id``, ``type`` (Feature), ``conformsTo``, ``geometry`` (the extent as a polygon, or null),
        ``time``, ``properties`` (``type``: dataset, title, description, keywords, language,
        license, contacts, themes, formats, created, updated and the lineage, source, update
        frequency and field schema) and ``links`` (without ``self``: the API adds those).
    """
    if isinstance(meta, RasterMetadata):
        return raster_record(meta, base, lang, publisher)
    c = meta.collection
    props: dict = {
        "type": RECORD_TYPE,
        "title": c.title(lang),
        "description": c.description(lang) or c.description("vi" if lang == "en" else "en") or "",
        "keywords": list(c.all_keywords),
        "language": {"code": lang},
        "languages": [dict(x) for x in _LANGUAGES],
        "resourceLanguages": [{"code": "vi"}, *([{"code": "en"}] if c.source_en else [])],
        "license": c.licence_id or "other",
    }
    if c.licence:
        props["rights"] = c.licence
    if c.attribution:
        props["attribution"] = c.attribution
    contacts = _contacts(meta, publisher)
    if contacts:
        props["contacts"] = contacts
    themes = _themes(c)
    if themes:
        props["themes"] = themes
    props["formats"] = _formats(meta)
    _dated(props, meta)
    props["updateFrequency"] = c.update_frequency
    if c.source(lang):
        props["source"] = c.source(lang)
    lineage: dict = {"summary": lineage_summary(meta, lang)}
    if c.lineage(lang):
        lineage["statement"] = c.lineage(lang)
    if meta.analysis is not None:
        lineage["analysis"] = meta.analysis.as_dict()
    else:
        lineage["ingestKinds"] = list(c.ingest_kinds)
        lineage["runCount"] = meta.run_count
        lineage["runs"] = [r.as_dict() for r in meta.runs]
    props["lineage"] = lineage
    props["fields"] = fields_schema(c, lang)
    return _record_doc(c.id, meta, props, record_links(meta, base, lang))


# --------------------------------------------------------------------------------------------------
# search
# --------------------------------------------------------------------------------------------------

def _parse_time(v: str | None, end: bool) -> datetime | None:
    if v is None:
        return None
    try:
        if len(v) == 10:
            d = date.fromisoformat(v)
            return datetime(d.year, d.month, d.day, 23, 59, 59, 999999, tzinfo=UTC) if end else \
                datetime(d.year, d.month, d.day, tzinfo=UTC)
        t = datetime.fromisoformat(v)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def search(layers: Iterable[LayerMetadata | RasterMetadata], *, q: Sequence[str] = (), bbox=None, start: datetime | None = None,
           end: datetime | None = None, types: Sequence[str] = (), ids: Sequence[str] = (),
           has_time: bool = False) -> list[LayerMetadata]:
    """The layers whose records match every given criterion (OGC API - Records query parameters).

    Parameters
    ----------
    q : sequence of str
        Search terms: a layer matches when ANY term occurs in its titles, descriptions or keywords
        (both languages); the words of one term must occur in that order. Accents and case do not
        count (:func:`fold`).
    bbox : (minlon, minlat, maxlon, maxlat), optional
        Layers whose extent intersects the box; a layer without extent (empty) never matches.
    start, end : datetime, optional
        A time interval (open ends allowed, ``has_time`` true when one was given): layers whose
        temporal extent intersects it; a layer without time never matches.
    types : sequence of str
        Record types (``dataset``).
    ids : sequence of str
        Record ids.
    """
    terms = [fold(t) for t in q if fold(t)]
    out = []
    for m in layers:
        if ids and m.id not in ids:
            continue
        if types and RECORD_TYPE not in types:
            continue
        if terms and not any(t in m.text for t in terms):
            continue
        if bbox is not None:
            if m.bbox is None:
                continue
            x0, y0, x1, y1 = m.bbox
            if x0 > bbox[2] or x1 < bbox[0] or y0 > bbox[3] or y1 < bbox[1]:
                continue
        if has_time:
            if m.interval is None:
                continue
            lo = _parse_time(m.interval[0], end=False)
            hi = _parse_time(m.interval[1], end=True)
            if end is not None and lo is not None and lo > end:
                continue
            if start is not None and hi is not None and hi < start:
                continue
        out.append(m)
    return out


# --------------------------------------------------------------------------------------------------
# DCAT-AP (JSON-LD)
# --------------------------------------------------------------------------------------------------

def _texts(vi: str | None, en: str | None) -> list[dict]:
    return [{"@value": v, "@language": lang} for lang, v in (("vi", vi), ("en", en)) if v]


def _media_iri(media_type: str) -> dict:
    return {"@id": IANA_MEDIA + media_type.split(";")[0].strip()}


def _dt(v) -> dict | None:
    s = _iso(v)
    if s is None:
        return None
    return {"@value": s, "@type": "xsd:date" if len(s) == 10 else "xsd:dateTime"}


def _agent(publisher: Publisher, base: str) -> dict:
    doc = {"@id": f"{base}/#publisher", "@type": "foaf:Agent", "foaf:name": publisher.name}
    if publisher.contact.email:
        doc["foaf:mbox"] = {"@id": f"mailto:{publisher.contact.email}"}
    if publisher.homepage:
        doc["foaf:homepage"] = {"@id": publisher.homepage}
    return doc


def _vcard(c: Contact) -> dict:
    doc: dict = {"@type": "vcard:Kind"}
    if c.name:
        doc["vcard:fn"] = c.name
    if c.organisation:
        doc["vcard:organization-name"] = c.organisation
    if c.email:
        doc["vcard:hasEmail"] = {"@id": f"mailto:{c.email}"}
    return doc


def dataset(meta: LayerMetadata | RasterMetadata, base: str, publisher: Publisher | None = None) -> dict:
    """The ``dcat:Dataset`` (JSON-LD, compact form with the :data:`JSONLD_CONTEXT` prefixes) of a layer
    (of a raster collection: :func:`raster_dataset`)."""
    if isinstance(meta, RasterMetadata):
        return raster_dataset(meta, base, publisher)
    c = meta.collection
    coll = f"{base}/collections/{c.id}"
    ds: dict = {
        "@id": coll,
        "@type": "dcat:Dataset",
        "dct:identifier": c.id,
        "dct:title": _texts(c.title_vi, c.title_en),
        "dct:description": _texts(c.description_vi, c.description_en),
        "dcat:landingPage": {"@id": f"{coll}?f=html"},
        "foaf:isPrimaryTopicOf": {"@id": f"{base}/collections/catalog/items/{c.id}"},
        "dct:language": [{"@id": EU_LANGUAGE + "VIE"}],
        "dct:accrualPeriodicity": {"@id": EU_FREQUENCY + FREQUENCY_CODES.get(c.update_frequency, "UNKNOWN")},
    }
    if c.keywords_en or c.keywords_vi:
        ds["dcat:keyword"] = ([{"@value": k, "@language": "en"} for k in c.keywords_en]
                              + [{"@value": k, "@language": "vi"} for k in c.keywords_vi])
    elif c.keywords:
        ds["dcat:keyword"] = list(c.keywords)
    if c.eu_themes:
        ds["dcat:theme"] = [{"@id": f"{EU_THEME_SCHEME}/{t}"} for t in c.eu_themes]
    if c.licence_url:
        ds["dct:license"] = {"@id": c.licence_url}
    if c.licence:
        ds["dct:rights"] = {"@type": "dct:RightsStatement", "rdfs:label": c.licence}
    if publisher is not None:
        ds["dct:publisher"] = {"@id": f"{base}/#publisher"}
    if meta.contact is not None:
        ds["dcat:contactPoint"] = _vcard(meta.contact)
    if meta.bbox is not None:
        x0, y0, x1, y1 = meta.bbox
        wkt = f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"
        ds["dct:spatial"] = {
            "@type": "dct:Location",
            "dcat:bbox": {"@value": wkt, "@type": "gsp:wktLiteral"},
            "locn:geometry": {"@value": json.dumps(_bbox_polygon(meta.bbox)),
                              "@type": "https://www.iana.org/assignments/media-types/application/vnd.geo+json"},
        }
    _dcat_times(ds, meta)
    provenance = " ".join(filter(None, (c.lineage_en, lineage_summary(meta, "en"))))
    ds["dct:provenance"] = {"@type": "dct:ProvenanceStatement", "rdfs:label": provenance}
    if c.source_en or c.source_vi:
        ds["dct:source"] = [{"@id": u} for u in c.source_urls] if c.source_urls else []
        ds["rdfs:comment"] = _texts(c.source_vi, c.source_en)
        if not ds["dct:source"]:
            del ds["dct:source"]
    distributions = [{
        "@id": f"{coll}/items",
        "@type": "dcat:Distribution",
        "dct:title": "OGC API - Features (GeoJSON)",
        "dcat:accessURL": {"@id": f"{coll}/items"},
        "dcat:mediaType": _media_iri("application/geo+json"),
        "dct:conformsTo": {"@id": OGC_FEATURES_CORE},
        **({"dct:license": {"@id": c.licence_url}} if c.licence_url else {}),
    }]
    for d in meta.downloads:
        url = base + d.path
        dist = {
            "@id": url,
            "@type": "dcat:Distribution",
            "dct:title": d.title,
            "dcat:accessURL": {"@id": url},
            "dcat:downloadURL": {"@id": url},
            "dcat:mediaType": _media_iri(d.media_type),
            "dcat:byteSize": {"@value": str(int(d.size)), "@type": "xsd:nonNegativeInteger"},
            "spdx:checksum": {
                "@type": "spdx:Checksum",
                "spdx:algorithm": {"@id": "spdx:checksumAlgorithm_sha256"},
                "spdx:checksumValue": {"@value": d.sha256, "@type": "xsd:hexBinary"},
            },
            "dct:modified": _dt(d.built_at),
        }
        if c.licence_url:
            dist["dct:license"] = {"@id": c.licence_url}
        distributions.append(dist)
    ds["dcat:distribution"] = distributions
    return ds


def dcat_catalog(layers: Iterable[LayerMetadata | RasterMetadata], base: str,
                 publisher: Publisher | None = None) -> dict:
    """The DCAT-AP catalogue (JSON-LD) of the public layers, for national and international portals.

    Parameters
    ----------
    layers : iterable of LayerMetadata
    base : str
        The API root URL (no trailing slash): every IRI is under it.
    publisher : gis.catalog.Publisher, optional

    Returns
    -------
    dict
        A ``dcat:Catalog`` with one ``dcat:Dataset`` per layer (titles and descriptions tagged
        ``@vi`` / ``@en``, keywords, licence, publisher, vCard contact point, spatial extent as WKT
        and GeoJSON, temporal extent, update frequency, provenance) and one ``dcat:Distribution``
        per download (download URL, media type, byte size, SPDX SHA-256 checksum) plus the API.
        A raster collection's dataset (:func:`raster_dataset`) has one distribution per COG and
        its coverage and STAC endpoints as ``dcat:DataService`` s.
    """
    layers = list(layers)
    cat: dict = {
        "@context": dict(JSONLD_CONTEXT),
        "@id": f"{base}/catalog.jsonld",
        "@type": "dcat:Catalog",
        "foaf:homepage": {"@id": f"{base}/"},
        "dct:language": [{"@id": EU_LANGUAGE + "VIE"}, {"@id": EU_LANGUAGE + "ENG"}],
    }
    if publisher is not None:
        cat["dct:title"] = _texts(publisher.title_vi, publisher.title_en)
        cat["dct:description"] = _texts(publisher.description_vi, publisher.description_en)
        cat["dct:publisher"] = _agent(publisher, base)
        cat["dcat:contactPoint"] = _vcard(publisher.contact)
        if publisher.licence_url:
            cat["dct:license"] = {"@id": publisher.licence_url}
    else:
        cat["dct:title"] = [{"@value": "Catalogue", "@language": "en"}]
    updated = [m.updated for m in layers if m.updated is not None]
    if updated:
        cat["dct:modified"] = _dt(max(updated))
    cat["dcat:dataset"] = [dataset(m, base, publisher) for m in layers]
    return cat


# --------------------------------------------------------------------------------------------------
# raster collections (migration 0005): records and DCAT datasets
# --------------------------------------------------------------------------------------------------

#: the media type of the raster store's files
COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
GEOTIFF_MEDIA_TYPE = "image/tiff; application=geotiff"
COVJSON_MEDIA_TYPE = "application/prs.coverage+json"
OGC_COVERAGES_CORE = "http://www.opengis.net/spec/ogcapi-coverages-1/1.0/conf/core"
STAC_API_CORE = "https://api.stacspec.org/v1.0.0/core"
#: the OGC Cloud Optimized GeoTIFF standard (OGC 21-026)
OGC_COG = "http://www.opengis.net/doc/is/COG/1.0"
EU_FILE_TYPE = "http://publications.europa.eu/resource/authority/file-type/"
REL_COVERAGE = "http://www.opengis.net/def/rel/ogc/1.0/coverage"
REL_TILESETS_MAP = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-map"
#: the COGs listed as enclosures / distributions of one raster record (the most recent first); the
#: STAC items link of the record lists them all
MAX_FILES = 1000
#: STAC licence values that are not SPDX identifiers
_NOT_SPDX = {"other", "proprietary", "various"}
_SPDX_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]{0,99}$")
#: the members of a STAC band object a record shows (and no other): STAC name -> record name
_BAND_MEMBERS = (("description", "description"), ("eo:common_name", "commonName"), ("unit", "unit"),
                 ("nodata", "nodata"), ("raster:scale", "scale"), ("raster:offset", "offset"),
                 ("datetime", "datetime"))


@dataclass(frozen=True)
class RasterFile:
    """One COG of a raster collection (one ``raster.items`` row), as published at ``/rasters/``."""

    item: str
    #: the file, relative to the raster store (``raster.items.asset_href``): its URL under /rasters/
    href: str
    size: int
    sha256: str
    start: str | None
    end: str | None
    updated: datetime | None

    @property
    def path(self) -> str:
        """The URL path of the file under the API root."""
        return "/rasters/" + quote(self.href, safe="/")


@dataclass(frozen=True)
class RasterLayer:
    """A public map layer (``gis_meta.raster_layers``) drawn from a raster collection."""

    id: str
    title_en: str
    title_vi: str
    attribution: str | None = None


@dataclass(frozen=True)
class RasterMetadata:
    """What the catalogue knows of one raster collection (with items)."""

    #: the record id: the id ``/collections`` lists the coverage by
    id: str
    #: the raster collection's own id (``raster.collections.id``, the STAC API's)
    raster_id: str
    title: str
    description: str
    keywords: tuple[str, ...]
    license: str
    #: STAC providers: ({"name", "roles", "url"}, ...), only those members
    providers: tuple[dict, ...]
    bbox: tuple[float, float, float, float] | None
    interval: tuple[str | None, str | None] | None
    n_items: int
    #: the STAC band objects of the most recent item (the coverage's bands)
    bands: tuple[dict, ...]
    data_type: str
    epsg: int | None
    resolution: tuple[float, float] | None
    files: tuple[RasterFile, ...] = ()
    layers: tuple[RasterLayer, ...] = ()
    contact: Contact | None = None
    runs: tuple[Run, ...] = ()
    run_count: int = 0
    created: datetime | None = None
    updated: datetime | None = None
    text: str = field(default="", compare=False, repr=False)

    #: ISO 19115 maintenance frequency (``raster.collections.update_frequency``, migration 0012)
    update_frequency: str = "unknown"

    @property
    def spdx(self) -> str | None:
        """The licence as an SPDX identifier, or None (``other``, ``proprietary``...)."""
        lic = self.license
        if lic and lic.lower() not in _NOT_SPDX and _SPDX_ID.match(lic):
            return lic
        return None

    @property
    def attribution(self) -> str | None:
        names = [p["name"] for p in self.providers if p.get("name")]
        if names:
            return ", ".join(names)
        marks = sorted({lyr.attribution for lyr in self.layers if lyr.attribution})
        return "; ".join(marks) or None


_RASTER_EXISTS_SQL = "SELECT to_regclass('raster.stac_collections') IS NOT NULL"

_RASTER_COLLECTIONS_SQL = """
SELECT s.id, s.content, s.n_items, c.created_at, c.updated_at, c.update_frequency
FROM raster.stac_collections s JOIN raster.collections c ON c.id = s.id
WHERE s.n_items > 0
ORDER BY s.id
"""

# newest first, as gis.raster.coverage takes its primary item (the coverage's grid and bands)
_RASTER_ITEMS_SQL = """
SELECT collection, id, asset_href, asset_size, asset_checksum, raster.rfc3339(dt_start),
       raster.rfc3339(dt_end), updated_at, bands, data_type, epsg, resolution
FROM raster.items
ORDER BY collection, dt_start DESC, id
"""

_RASTER_LAYERS_SQL = """
SELECT id, collection, title_en, title_vi, attribution FROM gis_meta.raster_layers
WHERE public
ORDER BY sort_order, id
"""

# the runs of the raster ingest that loaded this collection (named in their options, or behind
# one of its items); source_path holds the sources' server paths: only their names are kept
_RASTER_RUNS_SQL = """
SELECT run_id, kind, source_path, checksum, started_at, finished_at, outcome, n_read, n_loaded,
       n_inserted, n_updated, n_retired, n_rejected, count(*) OVER ()
FROM ingest.runs
WHERE outcome IN ('loaded', 'unchanged')
  AND (run_id IN (SELECT run_id FROM raster.items WHERE collection = %(rid)s)
       OR (kind = 'raster' AND options->>'collection' = %(rid)s))
ORDER BY started_at DESC, run_id DESC
LIMIT %(limit)s
"""


def raster_record_ids(raster_ids: Iterable[str], feature_ids: Iterable[str]) -> dict[str, str]:
    """The record id of each raster collection: the id ``/collections`` lists it by.

    A raster collection keeps its id, unless a feature collection (or the records catalogue,
    :data:`gis.catalog.RESERVED_IDS`) has it: it is then ``raster-<id>``; one whose prefixed id is
    taken as well is left out (as :mod:`api.coverages` does).

    Parameters
    ----------
    raster_ids : iterable of str
        The raster collections with items, in id order.
    feature_ids : iterable of str
        The public feature collections.

    Returns
    -------
    dict
        record id -> raster collection id.

    Examples
    --------
    >>> raster_record_ids(["buildings", "worldpop"], {"buildings", "roads"})
    {'raster-buildings': 'buildings', 'worldpop': 'worldpop'}
    """
    taken = set(feature_ids) | RESERVED_IDS
    out: dict[str, str] = {}
    for rid in raster_ids:
        pid = rid if rid not in taken else f"raster-{rid}"
        if pid in taken or pid in out:
            continue
        out[pid] = rid
    return out


def _providers(stac: dict) -> tuple[dict, ...]:
    out = []
    for p in stac.get("providers") or []:
        if not isinstance(p, dict) or not isinstance(p.get("name"), str) or not p["name"].strip():
            continue
        d: dict = {"name": p["name"].strip()}
        roles = [r for r in p.get("roles") or [] if isinstance(r, str)]
        if roles:
            d["roles"] = roles
        url = p.get("url")
        if isinstance(url, str) and url.startswith(("https://", "http://")):
            d["url"] = url
        out.append(d)
    return tuple(out)


def stac_extent(stac: dict) -> tuple[tuple | None, tuple | None]:
    """(bbox, interval) of a STAC Collection's first extents (CRS84, RFC 3339), None where absent."""
    ext = stac.get("extent") or {}
    bbox = None
    try:
        b = ext["spatial"]["bbox"][0]
        if len(b) == 4:
            bbox = tuple(float(v) for v in b)
    except (KeyError, IndexError, TypeError, ValueError):
        pass
    interval = None
    try:
        t0, t1 = ext["temporal"]["interval"][0]
        if t0 or t1:
            interval = (t0, t1)
    except (KeyError, IndexError, TypeError, ValueError):
        pass
    return bbox, interval


def _band_names(meta: RasterMetadata, most: int = 6) -> str:
    names = [str(b.get("name") or i) for i, b in enumerate(meta.bands, 1)]
    return ", ".join(names[:most]) + (f", ... ({len(names)})" if len(names) > most else "")


def raster_description(meta: RasterMetadata, lang: str) -> str:
    """The STAC description of a raster collection, or one sentence on what it holds."""
    if meta.description:
        return meta.description
    n, k = meta.n_items, len(meta.bands)
    span = ""
    if meta.interval is not None:
        t0, t1 = ((meta.interval[0] or "..")[:10], (meta.interval[1] or "..")[:10])
        span = f", {t0}"
        if t0 != t1:
            span = f", từ {t0} đến {t1}" if lang == "vi" else f", from {t0} to {t1}"
    if lang == "vi":
        return (f"Dữ liệu lưới (raster): {n} tệp GeoTIFF tối ưu cho đám mây (COG), {k} băng "
                f"({_band_names(meta)}){span}.")
    return (f"Gridded data (raster): {n} Cloud-Optimised GeoTIFF file{'s' if n != 1 else ''} of {k} "
            f"band{'s' if k != 1 else ''} ({_band_names(meta)}){span}.")


def raster_metadata(conn: psycopg.Connection, feature_ids: Iterable[str] = (), *,
                    publisher: Publisher | None = None) -> list[RasterMetadata]:
    """The metadata of every raster collection that has items, by id.

    Parameters
    ----------
    conn : psycopg.Connection
        An open connection (nothing is written).
    feature_ids : iterable of str
        The public feature collections: a raster collection with one of their ids is recorded as
        ``raster-<id>`` (:func:`raster_record_ids`).
    publisher : gis.catalog.Publisher, optional
        Its contact is the point of contact of the raster collections.

    Returns
    -------
    list of RasterMetadata
        Empty on a database without the raster catalog (migration 0005).
    """
    if not conn.execute(_RASTER_EXISTS_SQL).fetchone()[0]:
        return []
    rows = {r[0]: r for r in conn.execute(_RASTER_COLLECTIONS_SQL).fetchall()}
    ids = raster_record_ids(list(rows), feature_ids)
    wanted = set(ids.values())
    items: dict[str, list] = {}
    for row in conn.execute(_RASTER_ITEMS_SQL).fetchall():
        if row[0] in wanted:
            items.setdefault(row[0], []).append(row)
    layers: dict[str, list[RasterLayer]] = {}
    if conn.execute("SELECT to_regclass('gis_meta.raster_layers') IS NOT NULL").fetchone()[0]:
        for lid, coll, ten, tvi, attribution in conn.execute(_RASTER_LAYERS_SQL).fetchall():
            layers.setdefault(coll, []).append(RasterLayer(lid, ten, tvi, attribution))
    contact = publisher.contact if publisher is not None else None
    out = []
    for pid, rid in ids.items():
        _, stac, n_items, created, coll_updated, frequency = rows[rid]
        mine = items.get(rid) or []
        if not mine:  # deleted between the two reads
            continue
        primary = mine[0]
        bands = tuple(b for b in (primary[8] or []) if isinstance(b, dict))
        files = tuple(RasterFile(r[1], r[2], int(r[3]), r[4], r[5], r[6], r[7]) for r in mine[:MAX_FILES])
        runs = []
        count = 0
        for r in conn.execute(_RASTER_RUNS_SQL, {"rid": rid, "limit": MAX_RUNS}).fetchall():
            run_id, kind, path, checksum, started, finished, outcome, *counts, total = r
            source = "; ".join(PurePath(p.strip()).name for p in (path or "").split(";") if p.strip())
            runs.append(Run(run_id, kind, source, None, checksum, started, finished, outcome,
                            *(int(c or 0) for c in counts)))
            count = int(total)
        updates = [t for t in (coll_updated, *(r[7] for r in mine)) if t is not None]
        bbox, interval = stac_extent(stac)
        keywords = tuple(k for k in stac.get("keywords") or [] if isinstance(k, str))
        resolution = primary[11]
        meta = RasterMetadata(
            id=pid, raster_id=rid, title=str(stac.get("title") or rid),
            description=str(stac.get("description") or ""), keywords=keywords,
            license=str(stac.get("license") or "other"), providers=_providers(stac), bbox=bbox,
            interval=interval, n_items=int(n_items or len(mine)), bands=bands, data_type=primary[9],
            epsg=primary[10], resolution=tuple(abs(float(v)) for v in resolution) if resolution else None,
            files=files, layers=tuple(layers.get(rid, ())), contact=contact, runs=tuple(runs),
            run_count=count, created=created, updated=max(updates) if updates else None,
            update_frequency=frequency)
        text = fold(" ".join(filter(None, (
            pid, rid, meta.title, raster_description(meta, "en"), raster_description(meta, "vi"),
            *keywords, *(p["name"] for p in meta.providers),
            *(str(b.get(k) or "") for b in bands for k in ("name", "description", "eo:common_name")),
            *(t for lyr in meta.layers for t in (lyr.title_en, lyr.title_vi))))))
        out.append(replace(meta, text=text))
    return out


def bands_schema(meta: RasterMetadata) -> list[dict]:
    """The bands of a raster collection: index, name, data type, unit, nodata, scale, offset..."""
    out = []
    for i, b in enumerate(meta.bands, 1):
        d: dict = {"index": i, "name": str(b.get("name") or f"b{i}"),
                   "dataType": str(b.get("data_type") or meta.data_type)}
        for key, name in _BAND_MEMBERS:
            v = b.get(key)
            if v is not None and v != "":
                d[name] = v
        out.append(d)
    return out


def raster_lineage_summary(meta: RasterMetadata, lang: str) -> str:
    """One sentence on the ingest runs behind a raster collection."""
    vi = lang == "vi"
    if not meta.runs:
        return "Không có lần nạp nào được ghi lại." if vi else "No ingest run is recorded."
    last = meta.runs[0]
    if vi:
        return (f"{meta.run_count} lần nạp raster; lần gần nhất {_iso(last.finished_at)} từ {last.source}: "
                f"{last.n_loaded} tệp COG ghi, {last.n_read} tệp đọc.")
    return (f"{meta.run_count} raster ingest run{'s' if meta.run_count != 1 else ''}; the last on "
            f"{_iso(last.finished_at)} from {last.source}: {last.n_loaded} COG{'s' if last.n_loaded != 1 else ''} "
            f"written of {last.n_read} read.")


def _crs_uri(epsg: int | None) -> str | None:
    if epsg is None:
        return None
    return CRS84 if epsg == 4326 else f"http://www.opengis.net/def/crs/EPSG/0/{epsg}"


def _file_title(f: RasterFile) -> str:
    if f.start and f.end and f.start != f.end:
        return f"{f.item} ({f.start[:10]} / {f.end[:10]})"
    if f.start:
        return f"{f.item} ({f.start[:10]})"
    return f.item


def raster_record_links(meta: RasterMetadata, base: str, lang: str) -> list[dict]:
    """The links of a raster record: its coverage (GeoTIFF, CoverageJSON, range type), its STAC
    collection and items, its map tiles, licence, and each COG as an ``enclosure`` (with its size
    and SHA-256, ``file:checksum`` as in the STAC items)."""
    en = lang != "vi"
    coll = f"{base}/collections/{quote(meta.id)}"
    stac = f"{base}/stac/collections/{quote(meta.raster_id)}"
    links = [
        {"href": coll, "rel": "describes", "type": "application/json",
         "title": "The coverage (OGC API - Coverages)" if en else "Lớp phủ (OGC API - Coverages)"},
        {"href": f"{coll}?f=html", "rel": "describes", "type": "text/html",
         "title": "The coverage's page" if en else "Trang của lớp phủ"},
        {"href": f"{coll}/coverage?f=GeoTIFF", "rel": REL_COVERAGE, "type": GEOTIFF_MEDIA_TYPE,
         "title": "The coverage as GeoTIFF" if en else "Lớp phủ dạng GeoTIFF"},
        {"href": f"{coll}/coverage?f=covjson", "rel": REL_COVERAGE, "type": COVJSON_MEDIA_TYPE,
         "title": "The coverage as CoverageJSON" if en else "Lớp phủ dạng CoverageJSON"},
        {"href": f"{coll}/coverage/rangetype", "rel": "describedby", "type": "application/json",
         "title": "Range type (bands) of the coverage" if en else "Các băng của lớp phủ"},
        {"href": stac, "rel": "alternate", "type": "application/json",
         "title": "STAC Collection" if en else "Bộ sưu tập STAC"},
        {"href": f"{stac}/items", "rel": "items", "type": "application/geo+json",
         "title": "STAC Items (one per COG)" if en else "Các mục STAC (mỗi tệp COG một mục)"},
    ]
    for lyr in meta.layers:
        links.append({"href": f"{base}/collections/{quote(lyr.id)}/map/tiles", "rel": REL_TILESETS_MAP,
                      "type": "application/json",
                      "title": f"{'Map tiles' if en else 'Tile bản đồ'}: {lyr.title_en if en else lyr.title_vi}"})
    if meta.spdx:
        links.append({"href": f"https://spdx.org/licenses/{meta.spdx}.html", "rel": "license",
                      "type": "text/html", "title": meta.spdx})
    for f in meta.files:
        links.append({"href": base + f.path, "rel": "enclosure", "type": COG_MEDIA_TYPE,
                      "title": f"Cloud-Optimised GeoTIFF: {_file_title(f)}", "length": f.size,
                      "file:checksum": "1220" + f.sha256})
    return links


def raster_record(meta: RasterMetadata, base: str, lang: str = "en", publisher: Publisher | None = None) -> dict:
    """The OGC API - Records record (GeoJSON) of a raster collection, in ``lang``.

    Parameters
    ----------
    meta : RasterMetadata
    base : str
        The API root URL (no trailing slash); links are absolute.
    lang : {"en", "vi"}
    publisher : gis.catalog.Publisher, optional

    Returns
    -------
    dict
        As :func:`record`; ``properties`` has the STAC collection's title, description, keywords,
        licence and providers (contacts), the bands as ``bands`` (index, name, data type, unit,
        nodata...), ``itemCount``, the native ``crs`` and ``resolution``, and the raster ingest
        runs as lineage.
    """
    props: dict = {
        "type": RECORD_TYPE,
        "title": meta.title,
        "description": raster_description(meta, lang),
        "keywords": list(meta.keywords),
        "language": {"code": lang},
        "languages": [dict(x) for x in _LANGUAGES],
        "license": meta.license,
    }
    if meta.attribution:
        props["attribution"] = meta.attribution
    contacts = _contacts(meta, publisher)
    for p in meta.providers:
        doc: dict = {"organization": p["name"], "roles": list(p.get("roles") or ["producer"])}
        if p.get("url"):
            doc["links"] = [{"href": p["url"], "rel": "about", "type": "text/html"}]
        contacts.append(doc)
    if contacts:
        props["contacts"] = contacts
    props["formats"] = [{"name": "Cloud-Optimised GeoTIFF", "mediaType": COG_MEDIA_TYPE},
                        {"name": "GeoTIFF", "mediaType": GEOTIFF_MEDIA_TYPE},
                        {"name": "CoverageJSON", "mediaType": COVJSON_MEDIA_TYPE}]
    if meta.layers:
        props["formats"].append({"name": "PNG map tiles", "mediaType": "image/png"})
    _dated(props, meta)
    props["updateFrequency"] = meta.update_frequency
    props["lineage"] = {"summary": raster_lineage_summary(meta, lang), "ingestKinds": ["raster"],
                        "runCount": meta.run_count, "runs": [r.as_dict() for r in meta.runs]}
    props["itemCount"] = meta.n_items
    crs = _crs_uri(meta.epsg)
    if crs:
        props["crs"] = crs
    if meta.resolution:
        props["resolution"] = list(meta.resolution)
    props["bands"] = bands_schema(meta)
    props["dataType"] = meta.data_type
    return _record_doc(meta.id, meta, props, raster_record_links(meta, base, lang))


def _spatial(bbox: Sequence[float]) -> dict:
    x0, y0, x1, y1 = bbox
    wkt = f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"
    return {
        "@type": "dct:Location",
        "dcat:bbox": {"@value": wkt, "@type": "gsp:wktLiteral"},
        "locn:geometry": {"@value": json.dumps(_bbox_polygon(bbox)),
                          "@type": "https://www.iana.org/assignments/media-types/application/vnd.geo+json"},
    }


def _checksum(sha256: str) -> dict:
    return {"@type": "spdx:Checksum", "spdx:algorithm": {"@id": "spdx:checksumAlgorithm_sha256"},
            "spdx:checksumValue": {"@value": sha256, "@type": "xsd:hexBinary"}}


def raster_dataset(meta: RasterMetadata, base: str, publisher: Publisher | None = None) -> dict:
    """The ``dcat:Dataset`` (JSON-LD) of a raster collection.

    Its distributions: the coverage (``dcat:accessURL`` of an OGC API - Coverages
    ``dcat:DataService``), the STAC items (a STAC API ``dcat:DataService``) and each COG
    (``dcat:downloadURL``, media type ``image/tiff`` with the EU file type ``GEOTIFF`` and
    ``dct:conformsTo`` the OGC COG standard, byte size, SPDX SHA-256 checksum).
    """
    coll = f"{base}/collections/{quote(meta.id)}"
    stac = f"{base}/stac/collections/{quote(meta.raster_id)}"
    licence = {"@id": f"http://spdx.org/licenses/{meta.spdx}"} if meta.spdx else None
    ds: dict = {
        "@id": coll,
        "@type": "dcat:Dataset",
        "dct:identifier": meta.id,
        "dct:title": meta.title,
        # the STAC description (in no stated language), or the sentences of raster_description
        "dct:description": meta.description or _texts(raster_description(meta, "vi"),
                                                       raster_description(meta, "en")),
        "dcat:landingPage": {"@id": f"{coll}?f=html"},
        "foaf:isPrimaryTopicOf": {"@id": f"{base}/collections/catalog/items/{quote(meta.id)}"},
        "dct:accrualPeriodicity": {"@id": EU_FREQUENCY + FREQUENCY_CODES.get(meta.update_frequency, "UNKNOWN")},
        "rdfs:seeAlso": {"@id": stac},
    }
    if meta.keywords:
        ds["dcat:keyword"] = list(meta.keywords)
    if licence:
        ds["dct:license"] = licence
    elif meta.license:
        ds["dct:rights"] = {"@type": "dct:RightsStatement", "rdfs:label": meta.license}
    if publisher is not None:
        ds["dct:publisher"] = {"@id": f"{base}/#publisher"}
    if meta.contact is not None:
        ds["dcat:contactPoint"] = _vcard(meta.contact)
    for role, prop in (("producer", "dct:creator"), ("licensor", "dct:rightsHolder")):
        agents = [{"@type": "foaf:Agent", "foaf:name": p["name"],
                   **({"foaf:homepage": {"@id": p["url"]}} if p.get("url") else {})}
                  for p in meta.providers if role in (p.get("roles") or [])]
        if agents:
            ds[prop] = agents
    if meta.bbox is not None:
        ds["dct:spatial"] = _spatial(meta.bbox)
    _dcat_times(ds, meta)
    ds["dct:provenance"] = {"@type": "dct:ProvenanceStatement", "rdfs:label": raster_lineage_summary(meta, "en")}
    lic = {"dct:license": licence} if licence else {}
    distributions = [
        {
            "@id": f"{coll}/coverage",
            "@type": "dcat:Distribution",
            "dct:title": "OGC API - Coverages (GeoTIFF, CoverageJSON)",
            "dcat:accessURL": {"@id": f"{coll}/coverage"},
            "dcat:mediaType": _media_iri(GEOTIFF_MEDIA_TYPE),
            "dct:conformsTo": {"@id": OGC_COVERAGES_CORE},
            "dcat:accessService": {
                "@id": f"{coll}/coverage#service",
                "@type": "dcat:DataService",
                "dct:title": f"OGC API - Coverages: {meta.title}",
                "dcat:endpointURL": {"@id": f"{coll}/coverage"},
                "dcat:endpointDescription": {"@id": f"{base}/api"},
                "dct:conformsTo": {"@id": OGC_COVERAGES_CORE},
                "dcat:servesDataset": {"@id": coll},
            },
            **lic,
        },
        {
            "@id": f"{stac}/items",
            "@type": "dcat:Distribution",
            "dct:title": "STAC API (items with their COG assets)",
            "dcat:accessURL": {"@id": f"{stac}/items"},
            "dcat:mediaType": _media_iri("application/geo+json"),
            "dct:conformsTo": {"@id": STAC_API_CORE},
            "dcat:accessService": {
                "@id": f"{base}/stac#service",
                "@type": "dcat:DataService",
                "dct:title": "STAC API of the raster catalog",
                "dcat:endpointURL": {"@id": f"{base}/stac"},
                "dct:conformsTo": {"@id": STAC_API_CORE},
            },
            **lic,
        },
    ]
    for f in meta.files:
        url = base + f.path
        distributions.append({
            "@id": url,
            "@type": "dcat:Distribution",
            "dct:title": f"Cloud-Optimised GeoTIFF: {_file_title(f)}",
            "dcat:accessURL": {"@id": url},
            "dcat:downloadURL": {"@id": url},
            "dcat:mediaType": _media_iri(COG_MEDIA_TYPE),
            "dct:format": {"@id": EU_FILE_TYPE + "GEOTIFF"},
            "dct:conformsTo": {"@id": OGC_COG},
            "dcat:byteSize": {"@value": str(f.size), "@type": "xsd:nonNegativeInteger"},
            "spdx:checksum": _checksum(f.sha256),
            **({"dct:modified": _dt(f.updated)} if f.updated else {}),
            **lic,
        })
    ds["dcat:distribution"] = distributions
    return ds


def _dcat_times(ds: dict, meta) -> None:
    """The temporal extent, issue and modification dates of a dcat:Dataset (feature or raster)."""
    if meta.interval is not None and (meta.interval[0] or meta.interval[1]):
        period: dict = {"@type": "dct:PeriodOfTime"}
        if meta.interval[0]:
            period["dcat:startDate"] = _dt(meta.interval[0])
        if meta.interval[1]:
            period["dcat:endDate"] = _dt(meta.interval[1])
        ds["dct:temporal"] = period
    if meta.created:
        ds["dct:issued"] = _dt(meta.created)
    if meta.updated:
        ds["dct:modified"] = _dt(meta.updated)
