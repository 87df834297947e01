"""Tiles served or written: rendering with the cache in front, for the API (async) and the CLI (sync).

:class:`TileService` holds the tile layers (reloaded when the catalog changes), the cache and the
change log. The API calls :meth:`TileService.vector_tile` with its connection pool; the CLI's
seeding and export call :meth:`TileService.vector_tile_sync` with a connection.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from gis import catalog as gcat
from tiles import tms as gtms
from tiles.cache import CHANGES_SQL, ChangeLog, Entry, Snapshot, TileCache, etag_of
from tiles.layers import VectorLayer, load_vector_layers
from tiles.settings import TileSettings
from tiles.vector import BUFFER, EXTENT, layers_in, plan_tile

#: session settings of tile connections (as the API's pool): no JIT, no parallel workers, plans
#: made with the actual values (the partial overview indexes need the constants)
SESSION_OPTIONS = "-c jit=off -c max_parallel_workers_per_gather=0 -c plan_cache_mode=force_custom_plan"

_DB_KEY_SQL = """
SELECT current_database(), (SELECT oid FROM pg_database WHERE datname = current_database()),
       coalesce(inet_server_port(), 0)
"""


def database_key(conn: psycopg.Connection) -> str:
    """A name for the database, so that caches of two databases never mix."""
    name, oid, port = conn.execute(_DB_KEY_SQL).fetchone()
    try:
        sysid = conn.execute("SELECT system_identifier FROM pg_control_system()").fetchone()[0]
    except psycopg.Error:  # not allowed: the port tells clusters of one machine apart
        if not conn.autocommit:
            conn.rollback()
        sysid = port
    raw = f"{sysid}/{oid}/{name}"
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)[:40]
    return f"{safe}-{hashlib.blake2b(raw.encode(), digest_size=5).hexdigest()}"


def load_extents(conn: psycopg.Connection, layers: dict[str, VectorLayer]) -> dict:
    """Each layer's extent (lon/lat), None when empty."""
    return {lid: gcat.spatial_extent(conn, layer.collection) for lid, layer in layers.items()}


@dataclass(frozen=True)
class TileResult:
    """A rendered (or cached) tile. ``body`` is empty for an empty tile."""

    body: bytes
    etag: str
    cached: bool = False


class TileService:
    """Vector tiles of the catalog's layers, with the server-side cache.

    Parameters
    ----------
    settings : TileSettings
        Cache and concurrency settings.
    cache_root : Path, optional
        Folder of the disk cache (``Settings.data_dir / "tiles"``); None keeps the cache in memory.
    """

    def __init__(self, settings: TileSettings, cache_root: Path | None) -> None:
        self.settings = settings
        self.cache_root = cache_root
        self.layers: dict[str, VectorLayer] = {}
        self.extents: dict[str, tuple | None] = {}
        self.db_key: str | None = None
        self.cache: TileCache | None = None
        self.changes = ChangeLog()
        self._last_poll = float("-inf")
        self._poll_lock: asyncio.Lock | None = None
        self._sem: asyncio.Semaphore | None = None
        self._inflight: dict[str, asyncio.Future] = {}
        self.source_version = None  # what the layers were loaded from (the API's catalog snapshot)
        self._sql_texts: dict[tuple, str] = {}

    # --- set-up -----------------------------------------------------------------------------------
    def load(self, conn: psycopg.Connection, catalog: dict[str, gcat.Collection] | None = None,
             extents: dict | None = None) -> None:
        """Read the layers (and, unless given, the catalog and extents) with a blocking connection."""
        catalog = gcat.load_catalog(conn) if catalog is None else catalog
        layers = load_vector_layers(conn, catalog)
        self.extents = load_extents(conn, layers) if extents is None else extents
        self.layers = layers
        if self.db_key is None:
            self.db_key = database_key(conn)
            root = None
            if self.cache_root is not None:
                root = self.cache_root / self.db_key
            mem = self.settings.cache_memory_mb << 20
            self.cache = TileCache(root, mem)

    def layer_list(self, ids: Iterable[str]) -> list[VectorLayer]:
        from tiles.layers import get_layer

        return [get_layer(self.layers, i) for i in ids]

    def basemap_layers(self) -> list[VectorLayer]:
        return [layer for layer in self.layers.values() if layer.basemap]

    def _text(self, plan, conn) -> str:
        """The statement's text, composed once per shape (psycopg then prepares it once per connection)."""
        text = self._sql_texts.get(plan.shape)
        if text is None:
            if len(self._sql_texts) > 4096:
                self._sql_texts.clear()
            text = self._sql_texts[plan.shape] = plan.query.as_string(conn)
        return text

    # --- keys and validity ------------------------------------------------------------------------
    @staticmethod
    def key(layers: list[VectorLayer], t: gtms.TileAddress) -> str:
        name = "+".join(f"{layer.id}-{layer.fingerprint}" for layer in layers)
        if len(name) > 100:
            name = "multi-" + hashlib.blake2b(name.encode(), digest_size=10).hexdigest()
        return f"{name}/{t.tms_id}/{t.z}/{t.x}/{t.y}"

    def _cacheable(self, layers: Iterable[VectorLayer]) -> bool:
        return self.settings.cache and self.cache is not None and all(layer.tracked for layer in layers)

    def _fresh(self, e: Entry, layers: Iterable[VectorLayer], t: gtms.TileAddress) -> bool:
        if e.snapshot is None:
            return False
        tables = frozenset(tb for layer in layers for tb in layer.tables)
        return not self.changes.stale(e.snapshot, tables, gtms.lonlat_bounds(t, BUFFER / EXTENT))

    # --- async (API) ------------------------------------------------------------------------------
    async def refresh_changes(self, pool, force: bool = False) -> None:
        """Read new rows of the change log (at most every ``poll_seconds`` unless ``force``)."""
        if not force and time.monotonic() - self._last_poll < self.settings.poll_seconds:
            return
        if self._poll_lock is None:
            self._poll_lock = asyncio.Lock()
        async with self._poll_lock:
            if not force and time.monotonic() - self._last_poll < self.settings.poll_seconds:
                return
            async with pool.connection() as conn:
                cur = await conn.execute(CHANGES_SQL, {"horizon": str(self.changes.horizon)})
                snap, rows = await cur.fetchone()
            self.changes.apply(snap, rows)
            self._last_poll = time.monotonic()

    def _semaphore(self, pool) -> asyncio.Semaphore:
        if self._sem is None:
            n = self.settings.concurrency or max(1, (pool.max_size or 4) - 2)
            self._sem = asyncio.Semaphore(n)
        return self._sem

    async def vector_tile(self, pool, layers: list[VectorLayer], t: gtms.TileAddress) -> TileResult:
        """The tile ``t`` of ``layers``: from the cache when fresh, else rendered (one statement)."""
        used = layers_in(layers, t, self.extents)
        if not used:
            return TileResult(b"", etag_of(b""))
        key = None
        if self._cacheable(used):
            key = self.key(list(layers), t)
            await self.refresh_changes(pool)
            e = self.cache.get(key)
            if e is not None and self._fresh(e, used, t):
                return TileResult(e.body, e.etag, True)
            waiting = self._inflight.get(key)
            if waiting is not None:  # the same tile is being rendered: share the result
                return await asyncio.shield(waiting)
        plan = plan_tile(used, t)  # only on a miss: planning costs more than serving a cached tile
        fut = asyncio.get_running_loop().create_future() if key is not None else None
        if key is not None:
            self._inflight[key] = fut
        try:
            async with self._semaphore(pool):
                async with pool.connection() as conn:
                    cur = await conn.execute(self._text(plan, conn), plan.params, binary=True)
                    snap, body = await cur.fetchone()
            body = bytes(body)
            res = TileResult(body, etag_of(body))
            if key is not None:
                self.cache.put(key, Entry(body, res.etag, Snapshot.parse(snap)))
                fut.set_result(res)
            return res
        except BaseException as exc:
            if fut is not None and not fut.done():
                fut.set_exception(exc)
                fut.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        finally:
            if key is not None:
                self._inflight.pop(key, None)

    # --- sync (CLI: seed, export) -----------------------------------------------------------------
    def refresh_changes_sync(self, conn: psycopg.Connection) -> None:
        snap, rows = conn.execute(CHANGES_SQL, {"horizon": str(self.changes.horizon)}).fetchone()
        self.changes.apply(snap, rows)

    def vector_tile_sync(self, conn: psycopg.Connection, layers: list[VectorLayer], t: gtms.TileAddress,
                         use_cache: bool = True) -> TileResult:
        """As :meth:`vector_tile`, with a blocking connection (call :meth:`refresh_changes_sync` first)."""
        used = layers_in(layers, t, self.extents)
        if not used:
            return TileResult(b"", etag_of(b""))
        key = self.key(list(layers), t) if use_cache and self._cacheable(used) else None
        if key is not None:
            e = self.cache.get(key)
            if e is not None and self._fresh(e, used, t):
                return TileResult(e.body, e.etag, True)
        plan = plan_tile(used, t)
        snap, body = conn.execute(self._text(plan, conn), plan.params, binary=True).fetchone()
        body = bytes(body)
        res = TileResult(body, etag_of(body))
        if key is not None:
            self.cache.put(key, Entry(body, res.etag, Snapshot.parse(snap)))
        return res


def open_service(dsn: str, settings: TileSettings, cache_root: Path | None) -> tuple[TileService, psycopg.Connection]:
    """A loaded :class:`TileService` and a tile connection to ``dsn`` (the CLI's entry)."""
    from gis.db import connect

    conn = connect(dsn, autocommit=True, options=SESSION_OPTIONS)
    conn.execute("SET TimeZone = 'UTC'")
    svc = TileService(settings, cache_root)
    svc.load(conn)
    svc.refresh_changes_sync(conn)
    return svc, conn
