"""Reading the raster catalog: items, collections and their STAC JSON.

The catalog is the ``raster`` schema (migration 0005). An item is named ``collection/id``, or
just ``id`` when no other collection has an item of that id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from gis.db import connect
from gis.errors import InputError, NotFoundError

__all__ = ["Item", "get_item", "list_items", "stac_collection", "stac_item"]

_COLUMNS = (
    "collection, id, datetime, start_datetime, end_datetime, epsg, crs_wkt, transform, "
    "width, height, resolution, data_type, bands, sensor, checksum, source_path, "
    "asset_href, asset_size, properties, ST_AsText(geom)"
)


@dataclass(frozen=True)
class Item:
    """One catalogued raster (a row of ``raster.items``)."""

    collection: str
    id: str
    datetime: datetime | None
    start_datetime: datetime | None
    end_datetime: datetime | None
    epsg: int | None
    crs_wkt: str
    transform: tuple[float, ...]
    width: int
    height: int
    resolution: tuple[float, float]
    data_type: str
    bands: list[dict[str, Any]]
    sensor: str | None
    checksum: str
    source_path: str
    asset_href: str
    asset_size: int
    properties: dict[str, Any]
    footprint_wkt: str

    @property
    def ref(self) -> str:
        """``collection/id``."""
        return f"{self.collection}/{self.id}"

    @property
    def band_names(self) -> list[str]:
        return [b["name"] for b in self.bands]

    def band_index(self, name: str) -> int:
        """1-based index of a band by name or ``eo:common_name`` (case-insensitive)."""
        key = name.lower()
        for i, b in enumerate(self.bands):
            if b["name"].lower() == key or str(b.get("eo:common_name", "")).lower() == key:
                return i + 1
        raise InputError(
            f"Item {self.ref} has no band {name!r} (bands: {', '.join(self.band_names)})."
        )

    def path(self, store_root: str | Path) -> Path:
        """The COG's path in the store."""
        from gis.raster.store import RasterStore

        return RasterStore(store_root).path(self.asset_href)

    def time_text(self) -> str:
        if self.datetime is not None:
            return self.datetime.isoformat()
        return f"{self.start_datetime:%Y-%m-%d}/{self.end_datetime:%Y-%m-%d}"


def _item(row) -> Item:
    return Item(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        row[6],
        tuple(row[7]),
        row[8],
        row[9],
        tuple(row[10]),
        row[11],
        row[12],
        row[13],
        row[14],
        row[15],
        row[16],
        row[17],
        row[18],
        row[19],
    )


def list_items(dsn: str, collection: str | None = None) -> list[Item]:
    """Every item (of one collection), by collection and time."""
    with connect(dsn) as conn:
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM raster.items "
            "WHERE %(c)s::text IS NULL OR collection = %(c)s ORDER BY collection, dt_start, id",
            {"c": collection},
        ).fetchall()
    return [_item(r) for r in rows]


def get_item(dsn: str, ref: str) -> Item:
    """The item named ``collection/id`` (or ``id`` when unambiguous).

    Raises
    ------
    gis.errors.NotFoundError
        No such item (the message lists a few that exist).
    gis.errors.InputError
        ``id`` alone is ambiguous.
    """
    ref = ref.strip()
    coll, _, iid = ref.rpartition("/")
    with connect(dsn) as conn:
        if coll:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM raster.items WHERE collection = %s AND id = %s",
                (coll, iid),
            ).fetchall()
        else:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM raster.items WHERE id = %s",
                (iid,),
            ).fetchall()
        if len(rows) == 1:
            return _item(rows[0])
        if len(rows) > 1:
            raise InputError(
                f"Several collections have an item {iid!r} "
                f"({', '.join(r[0] for r in rows)}): name it as COLLECTION/{iid}."
            )
        some = [
            f"{r[0]}/{r[1]}"
            for r in conn.execute(
                "SELECT collection, id FROM raster.items ORDER BY updated_at DESC LIMIT 5"
            ).fetchall()
        ]
    hint = (
        f" Some items: {', '.join(some)}."
        if some
        else " The catalog is empty: `gis ingest raster`."
    )
    raise NotFoundError(f"No raster item {ref!r} in the catalog.{hint}")


def stac_item(dsn: str, collection: str, item_id: str) -> dict[str, Any]:
    """The STAC Item JSON of one item (links left to the API; asset href relative to the store)."""
    with connect(dsn) as conn:
        row = conn.execute(
            "SELECT content FROM raster.stac_items WHERE collection = %s AND id = %s",
            (collection, item_id),
        ).fetchone()
    if row is None:
        raise NotFoundError(f"No raster item {collection}/{item_id} in the catalog.")
    return row[0]


def stac_collection(dsn: str, collection: str) -> dict[str, Any]:
    """The STAC Collection JSON of one collection, with the extent of its items."""
    with connect(dsn) as conn:
        row = conn.execute(
            "SELECT content FROM raster.stac_collections WHERE id = %s", (collection,)
        ).fetchone()
    if row is None:
        raise NotFoundError(f"No raster collection {collection!r} in the catalog.")
    return row[0]
