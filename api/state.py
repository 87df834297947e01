"""What a running API holds: the connection pool and a snapshot of the catalog.

The catalog (:func:`gis.catalog.load_catalog`) with each collection's extent and size is read
once at start-up, in a thread, and kept in memory: no request queries it. A background task
checks every few seconds, with one cheap query, whether ``gis_meta.collections``,
``ingest.runs`` or the published tables changed, and if so loads a new snapshot and swaps it in.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from api.readahead import ReadAhead
from api.settings import ApiSettings
from gis import catalog as gcat
from gis.db import connect

log = logging.getLogger("gis.api")


@dataclass(frozen=True)
class CollectionInfo:
    """A published collection with what the API shows about it besides the catalog entry."""

    collection: gcat.Collection
    bbox: tuple[float, float, float, float] | None
    interval: tuple[str | None, str | None] | None
    #: exact number of rows, when counted at load time (small enough), else None
    total: int | None
    #: planner estimate of the number of rows
    estimate: int


@dataclass(frozen=True)
class Snapshot:
    """The catalog as loaded at one moment."""

    collections: dict[str, CollectionInfo]
    version: tuple
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: memo of documents derived from this snapshot (the OpenAPI document, by base URL...)
    memo: dict = field(default_factory=dict, compare=False, repr=False)

    def get(self, collection_id: str) -> CollectionInfo:
        """The collection ``collection_id``; :class:`gis.errors.NotFoundError` otherwise."""
        info = self.collections.get(collection_id)
        if info is not None:
            return info
        found = gcat.get_collection(
            {k: v.collection for k, v in self.collections.items()}, collection_id
        )  # raises, naming the known collections
        return self.collections[found.id]  # pragma: no cover


_VERSION_SQL = """
SELECT (SELECT coalesce(max(run_id), 0) FROM ingest.runs),
       (SELECT md5(coalesce(string_agg(c::text, '|' ORDER BY c.id), ''))
          FROM gis_meta.collections c),
       (SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint
          FROM pg_stat_user_tables
         WHERE schemaname IN (SELECT relation_schema FROM gis_meta.collections))
"""


def _estimate(conn: psycopg.Connection, coll: gcat.Collection) -> int:
    plan = conn.execute(
        sql.SQL("EXPLAIN (FORMAT JSON) SELECT 1 FROM {}").format(
            sql.Identifier(coll.schema, coll.relation)
        )
    ).fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def load_snapshot(dsn: str, settings: ApiSettings) -> Snapshot:
    """Read the catalog, each collection's extent and size (blocking; run it in a thread)."""
    with connect(dsn, autocommit=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute("SET jit = off")
        version = tuple(conn.execute(_VERSION_SQL).fetchone())
        out: dict[str, CollectionInfo] = {}
        for cid, coll in gcat.load_catalog(conn).items():
            estimate = _estimate(conn, coll)
            total = None
            if estimate <= settings.exact_total_max_rows:
                total = conn.execute(
                    sql.SQL("SELECT count(*) FROM {}").format(
                        sql.Identifier(coll.schema, coll.relation)
                    )
                ).fetchone()[0]
            bbox = gcat.spatial_extent(conn, coll) if (total or estimate) else None
            interval = gcat.temporal_extent(conn, coll) if (total or estimate) else None
            out[cid] = CollectionInfo(coll, bbox, interval, total, estimate)
    return Snapshot(out, version)


class ApiState:
    """The pool and the catalog snapshot of one worker process."""

    def __init__(self, dsn: str, settings: ApiSettings) -> None:
        self.dsn = dsn
        self.settings = settings
        # No JIT and no parallel workers: both cost more to start (ms to tens of ms) than a page
        # of features takes to read. Custom plans always: statements are prepared (parsed once
        # per connection) but planned with the actual values, since a bbox covering ten parcels
        # and one covering the city need opposite plans (GiST scan + sort vs id-order scan).
        options = (
            f"-c TimeZone=UTC -c jit=off -c max_parallel_workers_per_gather=0 "
            f"-c plan_cache_mode=force_custom_plan "
            f"-c statement_timeout={settings.statement_timeout_ms}"
        )
        self.pool = AsyncConnectionPool(
            dsn,
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            open=False,
            kwargs={"autocommit": True, "options": options, "connect_timeout": 10},
            name="gis-api",
        )
        self.snapshot: Snapshot | None = None
        self.read_ahead = (
            ReadAhead(settings.read_ahead_bytes, settings.read_ahead_seconds)
            if settings.read_ahead_bytes > 0
            else None
        )
        self._task: asyncio.Task | None = None
        self._last_check = 0.0

    async def open(self) -> None:
        """Open the pool and load the catalog; start the change watcher."""
        await self.pool.open(wait=True, timeout=30)
        self.snapshot = await asyncio.to_thread(load_snapshot, self.dsn, self.settings)
        log.info("catalog loaded: %d collections", len(self.snapshot.collections))
        self._task = asyncio.create_task(self._watch(), name="gis-catalog-watch")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self.read_ahead is not None:
            await self.read_ahead.close()
        await self.pool.close()

    async def check(self) -> bool:
        """Reload the catalog if it changed; True when a new snapshot was loaded."""
        snap = self.snapshot
        async with self.pool.connection() as conn:
            cur = await conn.execute(_VERSION_SQL)
            version = tuple(await cur.fetchone())
        self._last_check = time.monotonic()
        if snap is not None and version == snap.version:
            return False
        new = await asyncio.to_thread(load_snapshot, self.dsn, self.settings)
        self.snapshot = new
        log.info("catalog reloaded: %d collections", len(new.collections))
        return True

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.settings.catalog_poll_seconds)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep serving the last good snapshot
                log.exception("catalog check failed; keeping the loaded catalog")
