"""The server-side tile cache: in memory (LRU) in front of files under ``data_dir/tiles``.

Invalidation follows the data, not a timer. Every write to a tracked table appends rows to
``gis_meta.tile_changes`` (statement triggers of migration 0007, in the writing transaction: the
changed area in cells of about 2 km, and the transaction id). A cached tile keeps the snapshot
(``pg_current_snapshot()``) of the statement that rendered it. A tile is stale exactly when a change
of one of its layers' tables touches its area and that change's transaction was not visible in the
tile's snapshot; it is then rendered again. Comparing snapshots (not change ids) is what makes this
right while several writers commit in any order.

The change log is read by :meth:`ChangeLog.refresh` (one small query, at most every
``poll_seconds``): a change is seen by the server within that interval of its commit.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

#: ETag of an empty tile (204 responses)
EMPTY_ETAG = '"empty"'


@dataclass(frozen=True)
class Snapshot:
    """A PostgreSQL transaction snapshot (``xmin:xmax:xip,...``)."""

    xmin: int
    xmax: int
    xip: frozenset[int]

    @classmethod
    def parse(cls, text: str) -> Snapshot:
        a, b, c = text.split(":")
        return cls(int(a), int(b), frozenset(int(v) for v in c.split(",") if v))

    def sees(self, xid: int) -> bool:
        """Whether a (committed) transaction ``xid`` was visible in this snapshot."""
        return xid < self.xmin or (xid < self.xmax and xid not in self.xip)

    def text(self) -> str:
        return f"{self.xmin}:{self.xmax}:{','.join(map(str, sorted(self.xip)))}"


@dataclass(frozen=True)
class Change:
    """A changed area of a table, by transaction ``xid``; ``bbox`` None means anywhere."""

    change_id: int
    xid: int
    table: tuple[str, str]
    bbox: tuple[float, float, float, float] | None


CHANGES_SQL = """
SELECT pg_current_snapshot()::text,
       (SELECT coalesce(json_agg(json_build_array(change_id, xid::text, table_schema, table_name,
                                                  min_x, min_y, max_x, max_y)), '[]'::json)
          FROM gis_meta.tile_changes WHERE xid >= %(horizon)s::text::xid8)
"""


class ChangeLog:
    """The changes of ``gis_meta.tile_changes`` the server knows of, ordered by transaction id."""

    def __init__(self) -> None:
        self.horizon = 0  # every change of a transaction below it is known
        self._xids: list[int] = []
        self._changes: list[Change] = []
        self._ids: set[int] = set()
        self.lock = threading.Lock()

    def apply(self, snapshot_text: str, rows_json) -> int:
        """Take the result of :data:`CHANGES_SQL`; returns the number of new changes."""
        snap = Snapshot.parse(snapshot_text)
        rows = json.loads(rows_json) if isinstance(rows_json, (str, bytes)) else rows_json
        new = 0
        with self.lock:
            for cid, xid, schema, table, x0, y0, x1, y1 in rows:
                if cid in self._ids:
                    continue
                bbox = None if x0 is None else (x0, y0, x1, y1)
                ch = Change(int(cid), int(xid), (schema, table), bbox)
                i = bisect.bisect_right(self._xids, ch.xid)
                self._xids.insert(i, ch.xid)
                self._changes.insert(i, ch)
                self._ids.add(ch.change_id)
                new += 1
            # transactions below the snapshot's xmin are all finished: their changes were read
            self.horizon = max(self.horizon, snap.xmin)
        return new

    def stale(self, snap: Snapshot, tables: frozenset[tuple[str, str]],
              bbox: tuple[float, float, float, float]) -> bool:
        """Whether a change unseen by ``snap`` touches ``bbox`` (lon/lat) of one of ``tables``."""
        with self.lock:
            i = bisect.bisect_left(self._xids, snap.xmin)  # older ones were all visible
            for ch in self._changes[i:]:
                if ch.table not in tables or snap.sees(ch.xid):
                    continue
                b = ch.bbox
                if b is None or (b[0] <= bbox[2] and bbox[0] <= b[2] and b[1] <= bbox[3] and bbox[1] <= b[3]):
                    return True
        return False

    def __len__(self) -> int:
        return len(self._changes)


@dataclass(frozen=True)
class Entry:
    """A cached tile: body (empty for an empty tile), ETag and the snapshot it was rendered under."""

    body: bytes
    etag: str
    snapshot: Snapshot | None


def etag_of(body: bytes) -> str:
    """A strong ETag: a hash of the bytes."""
    if not body:
        return EMPTY_ETAG
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


class TileCache:
    """Tiles by key, in memory (bounded LRU) and on disk (``root``; None: memory only)."""

    def __init__(self, root: Path | None, memory_bytes: int = 64 << 20) -> None:
        self.root = Path(root) if root is not None else None
        self.memory_bytes = memory_bytes
        self._mem: OrderedDict[str, Entry] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def _path(self, key: str) -> Path:
        return self.root / (key + ".tile")

    def get(self, key: str) -> Entry | None:
        with self._lock:
            e = self._mem.get(key)
            if e is not None:
                self._mem.move_to_end(key)
                return e
        if self.root is None:
            return None
        try:
            with open(self._path(key), "rb") as f:
                data = f.read()
        except (FileNotFoundError, NotADirectoryError):
            return None
        head, _, body = data.partition(b"\n")
        try:
            meta = json.loads(head)
            e = Entry(body, meta["etag"], Snapshot.parse(meta["snapshot"]) if meta.get("snapshot") else None)
        except (ValueError, KeyError):
            return None
        self._remember(key, e)
        return e

    def _remember(self, key: str, e: Entry) -> None:
        size = len(e.body) + 200
        if size > self.memory_bytes // 8:
            return
        with self._lock:
            old = self._mem.pop(key, None)
            if old is not None:
                self._size -= len(old.body) + 200
            self._mem[key] = e
            self._size += size
            while self._size > self.memory_bytes and self._mem:
                _, ev = self._mem.popitem(last=False)
                self._size -= len(ev.body) + 200

    def put(self, key: str, e: Entry) -> None:
        self._remember(key, e)
        if self.root is None:
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"etag": e.etag, "snapshot": e.snapshot.text() if e.snapshot else None}
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        with open(tmp, "wb") as f:
            f.write(json.dumps(meta).encode() + b"\n" + e.body)
        os.replace(tmp, path)  # readers see the old file or the new one, never half of one

    def drop(self, key: str) -> None:
        with self._lock:
            old = self._mem.pop(key, None)
            if old is not None:
                self._size -= len(old.body) + 200
        if self.root is not None:
            try:
                self._path(key).unlink()
            except FileNotFoundError:
                pass

    def clear_memory(self) -> None:
        with self._lock:
            self._mem.clear()
            self._size = 0
