"""Read-ahead for clients that walk a collection page by page.

A client that downloads a whole collection (GDAL's OAPIF driver, QGIS, OWSLib, a script) asks for
a page, parses it, then asks for the ``next`` link; meanwhile the server and the database have
nothing to do. Once a client has followed a ``next`` link, the page after it is likely to be
asked for too: the server computes it while the client is still parsing, keeps the finished body
for a short time, and hands it out when exactly that request (same path, same query parameters,
same headers) arrives. A walk then takes about the client's own time rather than the client's
plus the server's.

What bounds it:

- only a request that came through a ``next`` link (it has a ``cursor``) reads ahead, and only
  one page ahead: the first page of a walk and a client that never follows a link cost nothing;
- a finished page is thrown away when the catalog snapshot changed in between (the published
  tables were written: see :mod:`api.state`) or after ``ttl`` seconds, so that a page is never
  older than the server's view of the catalog;
- ``max_bytes`` caps the bodies held (per worker process) and ``max_tasks`` the pages computed
  at the same time (each holds a pooled connection while it runs);
- a page is served once, to the request that matches it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

log = logging.getLogger("gis.api")

Key = tuple


@dataclass
class Page:
    """A finished 200 response, and where the walk goes on from it."""

    headers: list[tuple[bytes, bytes]]
    body: bytes
    next_url: str | None


@dataclass
class _Entry:
    task: asyncio.Task
    snapshot: object
    created: float = field(default_factory=time.monotonic)
    size: int = 0


def request_key(scope: dict) -> Key:
    """What identifies a request for read-ahead: its path, its query parameters (parsed, so that
    clients that re-encode a link still match) and all its headers."""
    qs = scope.get("query_string", b"").decode("latin-1")
    params = tuple(sorted(parse_qsl(qs, keep_blank_values=True)))
    return (scope.get("method"), scope.get("path"), params, tuple(scope.get("headers", ())))


def next_scope(scope: dict, next_url: str) -> dict:
    """The scope of the request a client makes when it follows ``next_url`` from ``scope``."""
    query = urlsplit(next_url).query.encode("latin-1")
    out = dict(scope)
    out["query_string"] = query
    out["gis.read_ahead"] = True  # computing a page ahead never reads further ahead
    return out


class ReadAhead:
    """Pages computed ahead of the requests that will ask for them (one per worker process).

    Parameters
    ----------
    max_bytes : int
        Most bytes of finished bodies held at once; a page that would pass it is dropped.
    ttl : float
        Seconds a finished page waits for its request before it is dropped.
    max_tasks : int
        Most pages computed at the same time.
    """

    def __init__(self, max_bytes: int, ttl: float = 30.0, max_tasks: int = 2) -> None:
        self.max_bytes = max_bytes
        self.ttl = ttl
        self.max_tasks = max_tasks
        self._entries: dict[Key, _Entry] = {}
        self.hits = 0
        self.started = 0

    def held(self) -> int:
        return sum(e.size for e in self._entries.values())

    def running(self) -> int:
        return sum(1 for e in self._entries.values() if not e.task.done())

    def _drop(self, key: Key, entry: _Entry) -> None:
        if self._entries.get(key) is entry:
            del self._entries[key]

    def schedule(
        self, key: Key, snapshot: object, produce: Callable[[int], Awaitable[Page | None]]
    ) -> bool:
        """Start computing the page of ``key`` with ``produce(byte_budget)``, unless it is
        already there or the limits are reached. True when a task was started."""
        if key in self._entries or self.running() >= self.max_tasks:
            return False
        budget = self.max_bytes - self.held()
        if budget <= 0:
            return False

        async def run() -> Page | None:
            try:
                page = await produce(budget)
            except asyncio.CancelledError:
                raise
            except Exception:  # the request itself will compute it, and report any error
                log.debug("read-ahead failed", exc_info=True)
                page = None
            entry = self._entries.get(key)
            if entry is not None:
                if page is None or len(page.body) > self.max_bytes - self.held():
                    self._entries.pop(key, None)
                    return None
                entry.size = len(page.body)
                entry.created = time.monotonic()
                # not asked for in time: let it go even if no other request comes
                asyncio.get_running_loop().call_later(self.ttl, self._drop, key, entry)
            return page

        self._entries[key] = _Entry(asyncio.create_task(run(), name="gis-read-ahead"), snapshot)
        self.started += 1
        return True

    async def take(self, key: Key, snapshot: object) -> Page | None:
        """The page computed for ``key`` (waiting for it if it is still being computed), or
        None: none was, it failed, it is too old or the catalog changed since."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return None
        if entry.snapshot is not snapshot:
            entry.task.cancel()
            return None
        try:
            page = await asyncio.shield(entry.task)
        except asyncio.CancelledError:
            if not entry.task.cancelled():  # this request was cancelled, not the page
                raise
            return None
        if page is None or time.monotonic() - entry.created > self.ttl:
            return None
        self.hits += 1
        log.debug("read-ahead: served %s from memory (%d bytes)", key[1], len(page.body))
        return page

    async def close(self) -> None:
        """Cancel what is still running and drop every page."""
        tasks = [e.task for e in self._entries.values()]
        self._entries.clear()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
