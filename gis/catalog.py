"""The catalog: which layers are published, how, and with which fields.

The catalog lives in ``gis_meta.collections`` (seeded by migrations, extended by jobs that publish
tables). This module reads it and checks it against the database: a field is published only when it
is declared public AND exists in the relation. Nothing here knows about HTTP; the API, tiles and
exports all ask this module what they may show.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import psycopg

from gis.errors import NotFoundError

log = logging.getLogger("gis.catalog")

#: Collection ids that no feature collection may take: ``/collections/catalog`` is the records
#: catalogue of the API. Migration 0010 forbids them in ``gis_meta.collections`` (a CHECK
#: constraint); :func:`load_catalog` also leaves out such a row, should a database lack it.
RESERVED_IDS = frozenset({"catalog"})

#: ISO 19115 maintenance frequency codes (``update_frequency``) accepted by the catalog
FREQUENCIES = ("continual", "daily", "weekly", "fortnightly", "monthly", "quarterly", "biannually",
               "annually", "asNeeded", "irregular", "notPlanned", "unknown")

#: PostgreSQL type name -> (JSON Schema type, format)
JSON_TYPES = {
    "text": ("string", None), "varchar": ("string", None), "bpchar": ("string", None),
    "int2": ("integer", None), "int4": ("integer", None), "int8": ("integer", None),
    "float4": ("number", None), "float8": ("number", None), "numeric": ("number", None),
    "bool": ("boolean", None), "date": ("string", "date"), "timestamptz": ("string", "date-time"),
    "timestamp": ("string", "date-time"),
}


@dataclass(frozen=True)
class FieldInfo:
    """A published field of a collection."""

    name: str
    pg_type: str
    title_vi: str | None = None
    title_en: str | None = None
    unit: str | None = None
    description_vi: str | None = None
    description_en: str | None = None

    def title(self, lang: str = "en") -> str:
        """The field's title in ``lang`` (the other language, then its name, when missing)."""
        first, second = (self.title_vi, self.title_en) if lang == "vi" else (self.title_en, self.title_vi)
        return first or second or self.name

    def description(self, lang: str = "en") -> str | None:
        """The field's description in ``lang`` (the other language when missing), or None."""
        first, second = ((self.description_vi, self.description_en) if lang == "vi"
                         else (self.description_en, self.description_vi))
        return first or second

    @property
    def json_type(self) -> str:
        return JSON_TYPES.get(self.pg_type, ("string", None))[0]

    @property
    def json_format(self) -> str | None:
        return JSON_TYPES.get(self.pg_type, ("string", None))[1]


@dataclass(frozen=True)
class Contact:
    """A point of contact: a person or team, an e-mail address, an organisation."""

    name: str | None
    email: str | None
    organisation: str | None = None


@dataclass(frozen=True)
class Publisher:
    """The catalogue itself and who publishes it (``gis_meta.publisher``, migration 0010)."""

    title_vi: str
    title_en: str
    description_vi: str | None
    description_en: str | None
    name: str
    contact: Contact
    homepage: str | None = None
    licence_id: str | None = None
    licence_url: str | None = None

    def title(self, lang: str = "en") -> str:
        return self.title_vi if lang == "vi" else self.title_en

    def description(self, lang: str = "en") -> str | None:
        return self.description_vi if lang == "vi" else self.description_en


@dataclass(frozen=True)
class Collection:
    """A published layer.

    Only ``fields`` may ever be shown to an anonymous caller; ``internal_fields`` lists the relation's
    other columns (never shown), kept so that tests and audits can check nothing leaks.
    """

    id: str
    schema: str
    relation: str
    id_column: str
    geometry_column: str
    geometry_type: str
    srid: int
    title_vi: str
    title_en: str
    description_vi: str | None
    description_en: str | None
    keywords: tuple[str, ...]
    licence: str | None
    attribution: str | None
    datetime_start: str | None
    datetime_end: str | None
    fields: tuple[FieldInfo, ...]
    internal_fields: tuple[str, ...] = ()
    id_type: str = "int8"
    min_zoom: int = 0
    max_zoom: int = 22
    extra: dict = field(default_factory=dict, compare=False)
    # --- metadata (migration 0010); all optional --------------------------------------------
    #: keywords by language (``keywords`` above is the legacy list, in both languages)
    keywords_en: tuple[str, ...] = ()
    keywords_vi: tuple[str, ...] = ()
    #: SPDX identifier or expression of the licence, or "other" (``licence`` is the statement)
    licence_id: str | None = None
    licence_url: str | None = None
    source_en: str | None = None
    source_vi: str | None = None
    source_urls: tuple[str, ...] = ()
    #: how the data was processed (the runs themselves are in ``ingest.runs``)
    lineage_en: str | None = None
    lineage_vi: str | None = None
    #: the ``ingest.runs.kind`` values whose runs load this layer
    ingest_kinds: tuple[str, ...] = ()
    #: ISO 19115 maintenance frequency (:data:`FREQUENCIES`)
    update_frequency: str = "unknown"
    contact: Contact | None = None
    iso_topics: tuple[str, ...] = ()
    eu_themes: tuple[str, ...] = ()

    def field(self, name: str) -> FieldInfo:
        """The public field called ``name``; :class:`NotFoundError` otherwise."""
        for f in self.fields:
            if f.name == name:
                return f
        raise NotFoundError(f"Collection {self.id!r} has no public field {name!r}; its fields are: "
                            f"{', '.join(f.name for f in self.fields)}.")

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def title(self, lang: str = "en") -> str:
        return self.title_vi if lang == "vi" else self.title_en

    def description(self, lang: str = "en") -> str | None:
        return self.description_vi if lang == "vi" else self.description_en

    def source(self, lang: str = "en") -> str | None:
        """Where the data comes from, in ``lang`` (the other language when missing)."""
        return (self.source_vi or self.source_en) if lang == "vi" else (self.source_en or self.source_vi)

    def lineage(self, lang: str = "en") -> str | None:
        """How the data was processed, in ``lang`` (the other language when missing)."""
        return (self.lineage_vi or self.lineage_en) if lang == "vi" else (self.lineage_en or self.lineage_vi)

    @property
    def all_keywords(self) -> tuple[str, ...]:
        """Every keyword of the layer, in both languages, without repeats."""
        return tuple(dict.fromkeys((*self.keywords_en, *self.keywords_vi, *self.keywords)))


_CATALOG_SQL = """
SELECT c.id, c.relation_schema, c.relation_name, c.id_column, c.geometry_column, c.title_vi, c.title_en,
       c.description_vi, c.description_en, c.keywords, c.licence, c.attribution, c.datetime_start,
       c.datetime_end, c.fields, c.min_zoom, c.max_zoom, to_jsonb(c) AS meta
FROM gis_meta.collections c
WHERE c.public OR %(all)s
ORDER BY c.sort_order, c.id
"""

_COLUMNS_SQL = """
SELECT a.attname, t.typname, format_type(a.atttypid, a.atttypmod)
FROM pg_attribute a
JOIN pg_class r ON r.oid = a.attrelid
JOIN pg_namespace n ON n.oid = r.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
WHERE n.nspname = %s AND r.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""


def load_catalog(conn: psycopg.Connection, include_private: bool = False) -> dict[str, Collection]:
    """Read the published collections, checked against the database.

    Parameters
    ----------
    conn : psycopg.Connection
        An open connection.
    include_private : bool
        Also return collections marked not public (for administrators and exports' audits).

    Returns
    -------
    dict of str to Collection
        By collection id, in catalog order. A collection whose relation is missing is left out.
    """
    out: dict[str, Collection] = {}
    rows = conn.execute(_CATALOG_SQL, {"all": include_private}).fetchall()
    for (cid, schema, rel, id_col, geom_col, tvi, ten, dvi, den, kw, lic, attr, dts, dte, fields,
         minz, maxz, meta) in rows:
        if cid in RESERVED_IDS:
            log.warning("catalog: collection id %r is reserved (the records catalogue); not published", cid)
            continue
        cols = conn.execute(_COLUMNS_SQL, (schema, rel)).fetchall()
        if not cols:
            continue
        types = {name: typ for name, typ, _ in cols}
        formatted = {name: fmt for name, _, fmt in cols}
        if geom_col not in types or id_col not in types:
            continue
        gtype, srid = _geometry_info(conn, schema, rel, geom_col, formatted[geom_col])
        declared = fields or {}
        public = tuple(  # in the relation's column order
            FieldInfo(name, types[name], declared[name].get("title_vi"), declared[name].get("title_en"),
                      declared[name].get("unit"), declared[name].get("description_vi"),
                      declared[name].get("description_en"))
            for name in types
            if declared.get(name, {}).get("public") and name not in (geom_col, id_col)
        )
        published = {f.name for f in public} | {id_col, geom_col}
        internal = tuple(n for n in types if n not in published)
        out[cid] = Collection(
            id=cid, schema=schema, relation=rel, id_column=id_col, geometry_column=geom_col,
            geometry_type=gtype, srid=srid, title_vi=tvi, title_en=ten, description_vi=dvi,
            description_en=den, keywords=tuple(kw or ()), licence=lic, attribution=attr,
            datetime_start=dts if dts in types else None, datetime_end=dte if dte in types else None,
            fields=public, internal_fields=internal, id_type=types[id_col], min_zoom=minz, max_zoom=maxz,
            **_metadata(meta or {}),
        )
    return out


def _metadata(m: dict) -> dict:
    """The metadata columns of a catalog row (``to_jsonb`` of it: absent before migration 0010)."""
    def tup(key: str) -> tuple[str, ...]:
        return tuple(v for v in (m.get(key) or ()) if v)

    contact = None
    if m.get("contact_name") or m.get("contact_email") or m.get("contact_organisation"):
        contact = Contact(m.get("contact_name"), m.get("contact_email"), m.get("contact_organisation"))
    freq = m.get("update_frequency") or "unknown"
    return {
        "keywords_en": tup("keywords_en"), "keywords_vi": tup("keywords_vi"),
        "licence_id": m.get("licence_id"), "licence_url": m.get("licence_url"),
        "source_en": m.get("source_en"), "source_vi": m.get("source_vi"), "source_urls": tup("source_urls"),
        "lineage_en": m.get("lineage_en"), "lineage_vi": m.get("lineage_vi"),
        "ingest_kinds": tup("ingest_kinds"),
        "update_frequency": freq if freq in FREQUENCIES else "unknown",
        "contact": contact, "iso_topics": tup("iso_topics"), "eu_themes": tup("eu_themes"),
    }


def load_publisher(conn: psycopg.Connection) -> Publisher | None:
    """The catalogue's own description and publisher (``gis_meta.publisher``).

    Returns
    -------
    Publisher or None
        None on a database without migration 0010 or without the row.
    """
    if conn.execute("SELECT to_regclass('gis_meta.publisher')").fetchone()[0] is None:
        return None
    row = conn.execute(
        "SELECT title_vi, title_en, description_vi, description_en, name, contact_name, contact_email, "
        "homepage, licence_id, licence_url FROM gis_meta.publisher").fetchone()
    if row is None:
        return None
    tvi, ten, dvi, den, name, cname, cemail, home, lic, licurl = row
    return Publisher(tvi, ten, dvi, den, name, Contact(cname, cemail, name), home, lic, licurl)


def _geometry_info(conn, schema: str, rel: str, col: str, formatted: str) -> tuple[str, int]:
    """Geometry type and SRID from the column's type modifier, else from geometry_columns."""
    import re

    m = re.match(r"geometry\((\w+),\s*(\d+)\)", formatted or "", re.IGNORECASE)
    if m:
        return m.group(1), int(m.group(2))
    row = conn.execute(
        "SELECT type, srid FROM geometry_columns WHERE f_table_schema = %s AND f_table_name = %s "
        "AND f_geometry_column = %s", (schema, rel, col)).fetchone()
    if row:
        return row[0].title().replace("string", "String").replace("polygon", "Polygon"), int(row[1])
    return "Geometry", 4326


def get_collection(catalog: dict[str, Collection], collection_id: str) -> Collection:
    """The collection ``collection_id``; :class:`NotFoundError` naming the known ones otherwise."""
    try:
        return catalog[collection_id]
    except KeyError:
        raise NotFoundError(
            f"There is no collection {collection_id!r}; collections: {', '.join(catalog) or '(none)'}."
        ) from None


def spatial_extent(conn: psycopg.Connection, coll: Collection) -> tuple[float, float, float, float] | None:
    """Bounding box (lon/lat) of a collection's features, or None when it is empty."""
    from psycopg import sql

    row = conn.execute(sql.SQL("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                               "(SELECT ST_Extent({g}) AS e FROM {t}) x").format(
        g=sql.Identifier(coll.geometry_column), t=sql.Identifier(coll.schema, coll.relation))).fetchone()
    if row is None or row[0] is None:
        return None
    return tuple(float(v) for v in row)


def temporal_extent(conn: psycopg.Connection, coll: Collection) -> tuple[str | None, str | None] | None:
    """First start and last end of validity (ISO strings; None for open ends), or None."""
    from psycopg import sql

    if not coll.datetime_start:
        return None
    end = coll.datetime_end or coll.datetime_start
    row = conn.execute(sql.SQL(
        "SELECT min({s}), CASE WHEN bool_or({e} IS NULL) THEN NULL ELSE max({e}) END FROM {t}").format(
        s=sql.Identifier(coll.datetime_start), e=sql.Identifier(end),
        t=sql.Identifier(coll.schema, coll.relation))).fetchone()
    if row is None or row[0] is None:
        return None
    return tuple(v.isoformat() if v is not None else None for v in row)


@dataclass(frozen=True)
class BaseTable:
    """A table a published relation reads from (itself, or what its view reads, recursively)."""

    schema: str
    name: str
    kind: str  # pg_class.relkind: r (table), p (partitioned), m (materialised view), f (foreign)
    filenode: int
    tile_tracked: bool  # has the tile cache's change-log triggers (migration 0007)
    writes: int  # rows inserted + updated + deleted since the statistics were reset


_BASE_TABLES_SQL = """
WITH RECURSIVE deps(oid) AS (
    SELECT to_regclass(%(rel)s)::oid
    UNION
    SELECT d.refobjid
    FROM deps
    JOIN pg_rewrite r ON r.ev_class = deps.oid
    JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
     AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> deps.oid
)
SELECT n.nspname, c.relname, c.relkind, c.relfilenode,
       EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = 'tile_changes_ins'),
       coalesce(s.n_tup_ins + s.n_tup_upd + s.n_tup_del, 0)
FROM deps JOIN pg_class c ON c.oid = deps.oid JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE c.relkind IN ('r', 'p', 'm', 'f')
ORDER BY 1, 2
"""


def base_tables(conn: psycopg.Connection, schema: str, relation: str) -> list[BaseTable]:
    """The tables ``schema.relation`` reads from: itself if it is a table, else (views) the tables
    of its definition, followed through views of views. Empty when the relation does not exist.

    Used to tell when a layer's data changed (downloads) and which tile caches a write touches.
    """
    from psycopg import sql

    rel = sql.Identifier(schema, relation).as_string(conn)
    return [BaseTable(*row) for row in conn.execute(_BASE_TABLES_SQL, {"rel": rel}).fetchall()]

