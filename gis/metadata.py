"""Metadata of the published layers: catalogue records (OGC API - Records) and a DCAT-AP feed.

Everything a harvester or a person needs to find a layer and judge it comes from the catalog
(:mod:`gis.catalog`, ``gis_meta.collections`` and ``gis_meta.publisher``, migration 0010) and from
what the platform recorded itself:

* lineage: the ingest runs (``ingest.runs``) of the kinds that load the layer (the catalog's
  ``ingest_kinds``), or for an analysis output the row of ``stats.analysis_outputs``;
* extents: computed from the data (:func:`gis.catalog.spatial_extent`, ``temporal_extent``);
* distributions: the published downloads (:func:`gis.downloads.published`) with size and SHA-256.

:func:`collect` reads all that with one connection into :class:`LayerMetadata` objects; then
:func:`record` builds the GeoJSON record of a layer, :func:`dcat_catalog` the JSON-LD catalogue and
:func:`search` filters records by text (accent- and case-insensitive, so ``phuong`` finds
``phường``), bounding box, time and type. Nothing here knows about HTTP: the links are built from
a base URL the caller gives.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import PurePath

import psycopg

from gis.catalog import (
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
    "Run",
    "collect",
    "dcat_catalog",
    "fold",
    "layer_metadata",
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
    mine = tuple(d for d in downloads if d.collection_id == coll.id)
    contact = coll.contact or (publisher.contact if publisher else None)
    text = fold(" ".join(filter(None, (coll.id, coll.title_vi, coll.title_en, coll.description_vi,
                                       coll.description_en, *coll.all_keywords))))
    return LayerMetadata(coll, bbox, interval, contact, tuple(runs), int(count or 0), analysis, mine,
                         created, updated, text)


def collect(conn: psycopg.Connection, catalog: dict[str, Collection] | None = None, *,
            extents: dict[str, tuple] | None = None) -> tuple[Publisher | None, list[LayerMetadata]]:
    """The publisher and the metadata of every public layer, in catalog order.

    Parameters
    ----------
    conn : psycopg.Connection
    catalog : dict, optional
        The public collections (:func:`gis.catalog.load_catalog`); read when omitted.
    extents : dict of id -> (bbox, interval), optional
        Extents already known; the others are computed.

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


def lineage_summary(meta: LayerMetadata, lang: str) -> str:
    """One sentence on the runs behind a layer (for pages and descriptions)."""
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


def record(meta: LayerMetadata, base: str, lang: str = "en", publisher: Publisher | None = None) -> dict:
    """The OGC API - Records record (GeoJSON) of a layer, in ``lang``.

    Parameters
    ----------
    meta : LayerMetadata
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
    c = meta.collection
    props: dict = {
        "type": RECORD_TYPE,
        "title": c.title(lang),
        "description": c.description(lang) or c.description("vi" if lang == "en" else "en") or "",
        "keywords": list(c.all_keywords),
        "language": {"code": lang},
        "languages": [{"code": "vi", "name": "Tiếng Việt"}, {"code": "en", "name": "English"}],
        "resourceLanguages": [{"code": "vi"}, *([{"code": "en"}] if c.source_en else [])],
        "license": c.licence_id or "other",
    }
    if c.licence:
        props["rights"] = c.licence
    if c.attribution:
        props["attribution"] = c.attribution
    contacts = []
    if meta.contact is not None:
        contacts.append(_contact_doc(meta.contact, "pointOfContact"))
    if publisher is not None:
        contacts.append(_contact_doc(Contact(publisher.name, publisher.contact.email, publisher.name),
                                     "publisher"))
    if contacts:
        props["contacts"] = contacts
    themes = _themes(c)
    if themes:
        props["themes"] = themes
    props["formats"] = _formats(meta)
    if meta.created:
        props["created"] = _iso(meta.created)
    if meta.updated:
        props["updated"] = _iso(meta.updated)
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
    time = None
    if meta.interval is not None:
        time = {"interval": [meta.interval[0] or "..", meta.interval[1] or ".."]}
    return {
        "id": c.id,
        "type": "Feature",
        "conformsTo": list(RECORD_CONFORMS),
        "time": time,
        "geometry": _bbox_polygon(meta.bbox) if meta.bbox else None,
        "properties": props,
        "links": record_links(meta, base, lang),
    }


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


def search(layers: Iterable[LayerMetadata], *, q: Sequence[str] = (), bbox=None, start: datetime | None = None,
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


def dataset(meta: LayerMetadata, base: str, publisher: Publisher | None = None) -> dict:
    """The ``dcat:Dataset`` (JSON-LD, compact form with the :data:`JSONLD_CONTEXT` prefixes) of a layer."""
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


def dcat_catalog(layers: Iterable[LayerMetadata], base: str, publisher: Publisher | None = None) -> dict:
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
