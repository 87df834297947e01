"""What is published as tiles: vector layers (catalog collections with their tile settings) and raster
layers (``gis_meta.raster_layers``), read from the database once and kept as plain values.

A vector layer's tile settings live in ``gis_meta.collections.tiles`` (migration 0007): the public
fields each zoom carries, generalisation (features smaller than a pixel dropped, simplification in
pixels) and the web map's style. Only public fields (:mod:`gis.catalog`) can ever be in a tile.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import psycopg

from gis import catalog as gcat
from gis.errors import NotFoundError


@dataclass(frozen=True)
class VectorLayer:
    """A collection published as vector tiles."""

    collection: gcat.Collection
    #: public field -> first zoom at which it is in the tiles
    fields: tuple[tuple[str, int], ...]
    min_px: float = 0.0
    simplify_px: float = 0.0
    basemap: bool = True
    style: dict = field(default_factory=dict, compare=False)
    #: the tables the collection's relation reads (schema, name)
    tables: tuple[tuple[str, str], ...] = ()
    #: every table is tracked by the change log: tiles may be cached server-side
    tracked: bool = False
    #: changes whenever anything that shapes the tiles changes (part of the cache key)
    fingerprint: str = ""

    @property
    def id(self) -> str:
        return self.collection.id

    @property
    def min_zoom(self) -> int:
        return self.collection.min_zoom

    @property
    def max_zoom(self) -> int:
        return self.collection.max_zoom

    def fields_at(self, z: int) -> list[str]:
        """The fields a tile of zoom ``z`` carries."""
        return [name for name, minz in self.fields if z >= minz]

    @property
    def geometry_kind(self) -> str:
        """point, line or polygon."""
        g = self.collection.geometry_type.lower()
        if "point" in g:
            return "point"
        if "line" in g:
            return "line"
        return "polygon"


@dataclass(frozen=True)
class RasterLayer:
    """A raster of the raster catalog published as raster tiles."""

    id: str
    collection: str
    item: str | None
    band: int
    colormap: str
    rescale: tuple[float, float] | None
    title_vi: str
    title_en: str
    unit: str | None
    attribution: str | None
    min_zoom: int
    max_zoom: int
    #: the cells hold counts: draw them per km2 of cell (migration 0013)
    per_km2: bool = False

    def title(self, lang: str = "en") -> str:
        return self.title_vi if lang == "vi" else self.title_en


@dataclass(frozen=True)
class RasterItem:
    """The COG a raster layer renders, and what identifies its content."""

    collection: str
    id: str
    asset_href: str
    checksum: str
    bbox: tuple[float, float, float, float]
    datetime: str | None
    nodata: float | None
    #: cell size (x, y) in the units of its CRS, and the CRS's EPSG code (None: no code)
    resolution: tuple[float, float] | None = None
    epsg: int | None = None


_TILES_SQL = "SELECT id, tiles FROM gis_meta.collections"

def _fingerprint(*parts) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


def load_vector_layers(conn: psycopg.Connection, catalog: dict[str, gcat.Collection]
                       ) -> dict[str, VectorLayer]:
    """The tile layers of the published collections ``catalog``, in catalog order."""
    try:
        settings = dict(conn.execute(_TILES_SQL).fetchall())
    except psycopg.errors.UndefinedColumn:  # a database before migration 0007
        conn.rollback() if not conn.autocommit else None
        settings = {}
    out: dict[str, VectorLayer] = {}
    for cid, coll in catalog.items():
        cfg = settings.get(cid) or {}
        public = coll.field_names
        declared = cfg.get("fields")
        if declared is None:
            fields = tuple((name, 0) for name in public)
        else:  # public fields only, in the relation's order
            fields = tuple((name, int(declared[name])) for name in public if name in declared)
        base = gcat.base_tables(conn, coll.schema, coll.relation)
        tables = tuple((t.schema, t.name) for t in base)
        tracked = bool(base) and all(t.kind in ("r", "p") and t.tile_tracked for t in base)
        out[cid] = VectorLayer(
            collection=coll,
            fields=fields,
            min_px=float(cfg.get("min_px", 0) or 0),
            simplify_px=float(cfg.get("simplify_px", 0) or 0),
            basemap=bool(cfg.get("basemap", True)),
            style=dict(cfg.get("style") or {}),
            tables=tables,
            tracked=tracked,
            fingerprint=_fingerprint(coll.schema, coll.relation, coll.id_column, coll.geometry_column,
                                     coll.srid, fields, coll.min_zoom, coll.max_zoom,
                                     cfg.get("min_px"), cfg.get("simplify_px")),
        )
    return out


def load_catalog_layers(conn: psycopg.Connection) -> dict[str, VectorLayer]:
    """Read the catalog and its tile layers (blocking)."""
    return load_vector_layers(conn, gcat.load_catalog(conn))


_RASTER_SQL = """
SELECT id, collection, item, band, colormap, rescale, title_vi, title_en, unit, attribution, min_zoom, max_zoom,
       per_km2
FROM gis_meta.raster_layers WHERE public ORDER BY sort_order, id
"""


def load_raster_layers(conn: psycopg.Connection) -> dict[str, RasterLayer]:
    """The published raster layers."""
    try:
        rows = conn.execute(_RASTER_SQL).fetchall()
    except psycopg.errors.UndefinedTable:
        return {}
    return {
        r[0]: RasterLayer(r[0], r[1], r[2], int(r[3]), r[4], tuple(r[5]) if r[5] else None, r[6], r[7],
                          r[8], r[9], int(r[10]), int(r[11]), bool(r[12]))
        for r in rows
    }


_ITEM_SQL = """
SELECT i.collection, i.id, i.asset_href, i.asset_checksum, ST_XMin(i.geom), ST_YMin(i.geom),
       ST_XMax(i.geom), ST_YMax(i.geom), raster.rfc3339(coalesce(i.datetime, i.start_datetime)),
       (i.bands -> (%(band)s - 1) ->> 'nodata'), i.resolution, i.epsg
FROM raster.items i
WHERE i.collection = %(collection)s AND (%(item)s::text IS NULL OR i.id = %(item)s)
ORDER BY i.dt_start DESC NULLS LAST, i.id DESC
LIMIT 1
"""


def _nodata(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def raster_item_sql(layer: RasterLayer, item: str | None = None) -> tuple[str, dict]:
    """The query that finds the item a raster layer renders (``item`` overrides the layer's)."""
    return _ITEM_SQL, {"collection": layer.collection, "item": item or layer.item, "band": layer.band}


def raster_item_from_row(layer: RasterLayer, row, item: str | None) -> RasterItem:
    """The :class:`RasterItem` of a row of :func:`raster_item_sql`; NotFound when there is none."""
    if row is None:
        which = f"item {item or layer.item!r} of " if (item or layer.item) else ""
        raise NotFoundError(
            f"Raster layer {layer.id!r} has no data yet: {which}raster collection {layer.collection!r} "
            "has no such item (load it with `gis ingest raster`)."
        )
    res = tuple(abs(float(v)) for v in row[10]) if row[10] else None
    return RasterItem(row[0], row[1], row[2], row[3], (row[4], row[5], row[6], row[7]), row[8],
                      _nodata(row[9]), res, row[11])


def get_layer(layers: dict, layer_id: str, kind: str = "collection"):
    """``layers[layer_id]``; :class:`NotFoundError` naming the known ones otherwise."""
    try:
        return layers[layer_id]
    except KeyError:
        raise NotFoundError(
            f"There is no {kind} {layer_id!r} with tiles; they are: {', '.join(layers) or '(none)'}."
        ) from None
