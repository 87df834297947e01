"""Reading a page of features from the pool and writing it out as GeoJSON, JSON-FG, CSV or rows.

Features arrive from PostgreSQL already encoded (one text per feature, built by
:func:`gis.query.page_sql`); Python joins them and streams the response in chunks while the
database is still sending. Only for the VN-2000 output CRSs does Python touch the geometries:
one vectorised :func:`gis.crs.make_transformer` pass per chunk.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import psycopg
import shapely
from anyio import CancelScope
from psycopg_pool import AsyncConnectionPool

from api.state import CollectionInfo
from gis.errors import InputError
from gis.query import Cursor, FeatureQuery, count_sql, page_sql

log = logging.getLogger("gis.api")


@dataclass
class PageInfo:
    """What a page turned out to be, known once its rows are read."""

    returned: int = 0
    has_more: bool = False
    first_key: tuple | None = None
    last_key: tuple | None = None
    position: int = 0
    matched: int | None = None


def _python_finisher(q: FeatureQuery, shape: str) -> Callable[[list], list]:
    """Turns rows (text, wkb, keys...) into finished texts, reprojecting the geometries."""
    reproj = q.crs.from_storage()
    grid = 10.0**-q.crs.decimals

    def geoms(rows: list, i: int):
        arr = shapely.from_wkb([r[i] for r in rows])
        out = reproj.transform_geoms(arr)
        return shapely.set_precision(out, grid, mode="pointwise")

    if shape == "csv":

        def finish_csv(rows: list) -> list:
            n = len(rows[0]) - len(q.keys)
            wkt = shapely.to_wkt(geoms(rows, n - 1), rounding_precision=q.crs.decimals, trim=True)
            return [r[: n - 1] + (w,) + r[n:] for r, w in zip(rows, wkt, strict=True)]

        return finish_csv

    def finish(rows: list) -> list:
        gj = shapely.to_geojson(geoms(rows, 1))
        return [
            (r[0] + (g.encode() if g is not None else b"null") + b"}",) + r[2:]
            for r, g in zip(rows, gj, strict=True)
        ]

    return finish


async def _shielded(awaitable):
    """Await a database call that a cancellation must not interrupt.

    Starlette cancels a streaming response's task when the client goes away (an anyio cancel
    scope, which cancels again at every await). Cancelled mid-query, psycopg sends a cancel
    request and waits for it; cancelled again there it closes the connection, and the pool opens
    a new one (fork + SCRAM authentication). Shielded, the call ends (a chunk or a capped count:
    milliseconds, bounded by statement_timeout) and the connection goes back to the pool clean.
    """
    with CancelScope(shield=True):
        return await awaitable


class _Abandoned(Exception):
    """Rolls back the transaction of a cursor that was not read to the end."""


class PageReader:
    """One page of a feature query, read from a pooled connection in chunks.

    Call :meth:`start` first (it runs the query and reads the first chunk, so that errors surface
    before a response starts), then iterate :meth:`chunks`, then :meth:`finish` (numberMatched,
    connection returned). :meth:`close` always returns the connection.
    """

    def __init__(
        self,
        pool: AsyncConnectionPool,
        info: CollectionInfo,
        q: FeatureQuery,
        shape: str,
        chunk: int,
        count_cap: int,
    ) -> None:
        self.pool = pool
        self.info = info
        self.q = q
        self.shape = shape
        self.chunk = max(1, chunk)
        self.count_cap = count_cap
        self.page = PageInfo(position=q.cursor.position if q.cursor else q.offset)
        self._conn: psycopg.AsyncConnection | None = None
        self._cursor: psycopg.AsyncServerCursor | None = None
        self._tx = None
        self._fetched = 0
        self._first: list = []
        self._nkeys = len(q.keys)
        stmt, params, python_geometry = page_sql(q, shape)
        self._stmt, self._params = stmt, params
        self._finish = _python_finisher(q, shape) if python_geometry else None
        self._before = q.cursor is not None and q.cursor.before
        self._settled = False

    async def start(self) -> None:
        self._conn = await self.pool.getconn()
        try:
            if self._before:  # a "prev" page comes in reverse order: read it whole
                cur = self._conn.cursor(binary=True)
                await cur.execute(self._stmt, self._params)
                self._first = self._trim(await cur.fetchall())[::-1]
            elif self.q.limit <= self.chunk or self.q.cql is not None:
                # A small page: one prepared round trip. A CQL2 filter's arithmetic can fail on
                # any row: its page is read whole before the response starts, so that such an
                # error is a 400, not a truncated 200.
                cur = self._conn.cursor(binary=True)
                await cur.execute(self._stmt, self._params)
                self._first = self._trim(await cur.fetchall())
            else:
                # A large page: a server-side cursor, fetched a chunk at a time while the
                # response is being sent (the database streams too; memory stays one chunk).
                self._tx = self._conn.transaction()
                await self._tx.__aenter__()
                self._cursor = self._conn.cursor(name="gis_page", binary=True)
                await self._cursor.execute(self._stmt, self._params)
                self._first = await self._read_chunk()
        except BaseException:
            await self.close()
            raise

    def _trim(self, rows: list) -> list:
        if len(rows) > self.q.limit:
            self.page.has_more = True
            rows = rows[: self.q.limit]
        return rows

    async def _read_chunk(self) -> list:
        assert self._cursor is not None
        rows = await _shielded(self._cursor.fetchmany(self.chunk))
        self._fetched += len(rows)
        if self._fetched > self.q.limit:  # the extra row: there is a next page
            self.page.has_more = True
            rows = rows[: len(rows) - (self._fetched - self.q.limit)]
            await self._end_stream()
        elif len(rows) < self.chunk:
            await self._end_stream()
        return rows

    async def _end_stream(self, exc: BaseException | None = None) -> None:
        cursor, self._cursor = self._cursor, None
        tx, self._tx = self._tx, None
        with CancelScope(shield=True):
            try:
                if cursor is not None and exc is None:
                    await cursor.close()
            finally:
                if tx is not None:
                    await tx.__aexit__(type(exc) if exc else None, exc, None)

    def _account(self, rows: list) -> list:
        if not rows:
            return rows
        n = self._nkeys
        if self.page.first_key is None:
            self.page.first_key = tuple(rows[0][-n:])
        self.page.last_key = tuple(rows[-1][-n:])
        self.page.returned += len(rows)
        if self._finish is not None:
            rows = self._finish(rows)
        return rows

    async def chunks(self) -> AsyncIterator[list]:
        """Lists of rows: for JSON shapes ``row[0]`` is the feature (UTF-8 bytes); keys last."""
        first, self._first = self._first, []
        yield self._account(first)
        while self._cursor is not None:
            rows = await self._read_chunk()
            if rows:
                yield self._account(rows)

    async def settle(self) -> None:
        """Compute numberMatched now (before the response starts), raising database errors."""
        self._settle_position()
        self.page.matched = await self._matched(raise_errors=True)
        self._settled = True

    def _settle_position(self) -> None:
        p, q = self.page, self.q
        if self._before:
            p.position = q.cursor.position if p.has_more else 0

    async def finish(self) -> PageInfo:
        """numberMatched where cheap; then the connection goes back to the pool."""
        p = self.page
        try:
            if not self._settled:
                self._settle_position()
                p.matched = await self._matched(raise_errors=False)
        finally:
            await self.close()
        return p

    async def _matched(self, raise_errors: bool) -> int | None:
        p, q = self.page, self.q
        if q.cursor is not None and q.cursor.matched is not None:
            return q.cursor.matched
        # rows read but not yet handed out count too: :meth:`settle` runs before :meth:`chunks`
        returned = p.returned + len(self._first)
        if not p.has_more and not self._before and (returned or not p.position):
            return p.position + returned
        if not q.filtered and self.info.total is not None:
            return self.info.total
        if q.cursor is None and self.count_cap > 0 and self._conn is not None:
            # this page alone shows more than count_cap features match (limit >= count_cap, or a
            # deep offset): the capped count could only answer "more than cap", so skip it
            if p.position + returned + (1 if p.has_more else 0) > self.count_cap:
                return None
            stmt, params = count_sql(q, self.count_cap)
            try:
                cur = await _shielded(self._conn.execute(stmt, params))
                n = (await _shielded(cur.fetchone()))[0]
            except psycopg.Error:
                if raise_errors:
                    raise
                # the page is already being sent: leave numberMatched out (it is optional)
                log.warning(
                    "numberMatched of %s left out: the count failed", q.collection.id, exc_info=True
                )
                return None
            return n if n <= self.count_cap else None
        return None

    async def close(self) -> None:
        """Return the connection to the pool (a half-read cursor is closed, its transaction
        rolled back; a connection left unusable is discarded by the pool)."""
        with CancelScope(shield=True):  # also when the client went away (see _shielded)
            try:
                if self._cursor is not None or self._tx is not None:
                    await self._end_stream(exc=_Abandoned())
            except Exception:  # the connection is discarded below if it is not clean
                pass
            conn, self._conn = self._conn, None
            if conn is not None:
                await self.pool.putconn(conn)

    def next_cursor(self) -> Cursor | None:
        p = self.page
        if p.last_key is None or not (p.has_more or self._before):
            return None
        return Cursor(p.last_key, False, p.position + p.returned, p.matched, self.q.sort_text)

    def prev_cursor(self) -> tuple[Cursor | None, bool]:
        """(cursor, first_page): the previous page's cursor, or True when it is the first page."""
        p = self.page
        if p.first_key is None:
            return None, False
        if self._before:
            if not p.has_more:
                return None, False
        elif self.q.cursor is None:
            return None, False  # offset pages link back with offset
        if p.position <= self.q.limit:
            return None, p.position > 0
        return Cursor(
            p.first_key, True, max(0, p.position - self.q.limit), p.matched, self.q.sort_text
        ), False


def filter_error(exc: psycopg.Error, q: FeatureQuery) -> InputError | None:
    """A 400 for a database error caused by a user's CQL2 filter (type mismatch, bad cast)."""
    if q.cql is None:
        return None
    if exc.sqlstate in DATA_ERROR_SQLSTATES:
        return InputError(
            f"Parameter filter: the filter's arithmetic fails on the data of "
            f"collection {q.collection.id!r} (overflow or division by zero)"
        )
    if isinstance(
        exc,
        (
            psycopg.errors.DataError,
            psycopg.errors.UndefinedFunction,
            psycopg.errors.DatatypeMismatch,
        ),
    ):
        primary = exc.diag.message_primary or "type mismatch"
        return InputError(
            f"Parameter filter: the filter cannot be evaluated on collection "
            f"{q.collection.id!r}: {primary}"
        )
    return None


#: SQLSTATEs a filter's arithmetic can raise on the data (overflow, division by zero...); as
#: :data:`gis.cql2.DATA_ERROR_SQLSTATES`, kept here so the API works without the translator.
DATA_ERROR_SQLSTATES = frozenset({"22003", "22012", "2201E", "2201F"})


def csv_text(header: list[str] | None, rows: list, nkeys: int) -> str:
    """CSV lines of rows (the trailing key columns dropped)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    if header is not None:
        w.writerow(header)
    w.writerows(r[:-nkeys] for r in rows)
    return buf.getvalue()
