"""Staging normalised batches on a database thread while the next batch is read and normalised.

The job's main thread reads and normalises batch N+1 (pyogrio, shapely, pyproj and Arrow release
the GIL) while a worker thread streams batch N into PostgreSQL over the job's connection, so that
the client's and the server's work overlap on two cores instead of taking turns.

Two modes:

staging (every kind, every load)
    each batch is COPYed into the ``stage`` table; the merge runs after the last batch.
direct (a first load of a large cadastral file into an empty ``cadastral.parcels``)
    the secondary indexes and the foreign keys of the parcels (except those to ``ingest.runs``) are
    dropped before the first batch (plain btree indexes stay: the database keeps them up to date
    while the client normalises the next batch), and each batch goes from its own staging table
    straight into ``cadastral.parcels`` and ``private.parcel_owners`` (the parcel ids are drawn
    during the COPY): there is nothing to compare with, so no history comparison is needed. ``stage`` keeps only the
    keys and lineage references, for the checks across the whole file. The rows those checks reject
    are deleted again (:func:`ingest.merge.drop_rejected`), and the indexes and foreign keys are
    rebuilt and validated in one pass each at the end (:func:`ingest.merge.merge`), inside the same
    transaction. The tile cache's change log gets one "anywhere" record for the load instead of one
    per batch and area (:func:`_suspend_tile_log`).

Everything happens in the job's single transaction: an error, an interruption or a rejected file
rolls all of it back. The worker never commits; the main thread waits for it (or cancels its
statement) before it rolls back or goes on with the merge.
"""

from __future__ import annotations

import contextlib
import queue
import threading

import pandas as pd
import psycopg
from psycopg import sql

from ingest import merge as m
from ingest.kinds import Kind

#: A file this large loaded into an empty table takes the direct path.
DIRECT_MIN_ROWS = 20_000


def takes_direct_path(conn: psycopg.Connection, kind: Kind, count: int) -> bool:
    """Whether a job of ``count`` features loads ``kind`` by the direct first-load path: a cadastral
    file of at least :data:`DIRECT_MIN_ROWS` features into an empty ``cadastral.parcels`` (the job
    holds the kind's advisory lock, so the table stays empty until it commits)."""
    if kind.name != "cadastral" or count < DIRECT_MIN_ROWS:
        return False
    return conn.execute("SELECT NOT EXISTS (SELECT 1 FROM cadastral.parcels)").fetchone()[0]


class Loader:
    """Stages normalised batches on a worker thread (see the module docstring).

    Parameters
    ----------
    conn : psycopg.Connection
        The job's connection, inside its transaction; the caller does not use it between
        :meth:`start` and :meth:`finish`.
    kind : Kind
        What is loaded.
    run_id : int
        The job's run (``ingest.runs``).
    valid_from : datetime
        Start of validity of the new parcel versions (direct mode).
    direct : bool
        Direct first-load mode (see :func:`takes_direct_path`).
    depth : int
        Batches queued for the worker at most (memory: about ``depth + 2`` batches in flight).

    Examples
    --------
    >>> loader = Loader(conn, kind, run_id=run_id, valid_from=now, direct=False)  # doctest: +SKIP
    >>> loader.start()  # doctest: +SKIP
    >>> for rows in batches:  # doctest: +SKIP
    ...     loader.put(rows)
    >>> loader.finish()  # doctest: +SKIP
    """

    def __init__(self, conn: psycopg.Connection, kind: Kind, *, run_id: int, valid_from, direct: bool,
                 depth: int = 1) -> None:
        self.conn, self.kind, self.run_id, self.valid_from = conn, kind, run_id, valid_from
        self.direct = direct
        self.restore: list[sql.Composable | str] = []  # direct mode: rebuilds indexes and foreign keys
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._busy = threading.Event()
        self._thread: threading.Thread | None = None

    # -- main thread ---------------------------------------------------------------------------
    def start(self) -> None:
        """Create the staging table(s) (direct mode: drop the indexes and foreign keys) and start
        the worker."""
        if self.direct:
            _create_direct_stage(self.conn, self.kind)
            self.restore = (m.drop_for_bulk_load(self.conn, self.kind, keep_btree=True)
                            + _suspend_tile_log(self.conn, self.kind))
            self._statements = _direct_statements(self.conn, self.kind, self.run_id, self.valid_from)
        else:
            m.create_stage(self.conn, self.kind)
        self._thread = threading.Thread(target=self._work, name=f"ingest-{self.kind.name}-copy", daemon=True)
        self._thread.start()

    def put(self, rows: pd.DataFrame) -> None:
        """Queue one normalised batch (blocks while the worker is ``depth`` batches behind)."""
        self._raise_error()
        if rows.empty:
            return
        while True:
            try:
                self._queue.put(rows, timeout=0.5)
                return
            except queue.Full:
                self._raise_error()

    def finish(self) -> None:
        """Wait until every queued batch is staged; raise the worker's error, if any."""
        if self._thread is None:
            return
        while self._thread.is_alive():
            try:
                self._queue.put(None, timeout=0.5)
                break
            except queue.Full:
                self._raise_error()
        self._thread.join()
        self._thread = None
        self._raise_error()
        if not self.direct:
            m.check_client_hashes(self.conn, self.kind, "stage")

    def abort(self) -> None:
        """Stop the worker now (an error or an interruption in the main thread): its statement in
        progress is cancelled; the caller then rolls the transaction back. No-op once finished."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        while True:  # make room for the stop marker
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put_nowait(None)
        if self._busy.is_set():
            # the connection may be gone already: then there is nothing to cancel
            with contextlib.suppress(psycopg.Error, OSError):
                self.conn.cancel_safe(timeout=5)
        thread.join(timeout=30)

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            self._stop.set()
            raise error

    # -- worker thread -------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            rows = self._queue.get()
            if rows is None or self._stop.is_set():
                return
            self._busy.set()
            try:
                if self.direct:
                    m.copy_rows(self.conn, self.kind, rows, table="stage_batch")
                    m.check_client_hashes(self.conn, self.kind, "stage_batch")
                    for stmt in self._statements:
                        self.conn.execute(stmt)
                else:
                    m.copy_rows(self.conn, self.kind, rows)
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which raises it
                self._error = exc
                self._stop.set()
                return
            finally:
                self._busy.clear()


def _suspend_tile_log(conn: psycopg.Connection, kind: Kind) -> list[sql.Composable]:
    """The tile cache's change log (``gis_meta.tile_changes``, migration 0007) records, per INSERT
    statement, the areas of the new rows (a statement trigger that reads every inserted row again).
    A first load into an empty table changes every tile of the table that will show a parcel, so
    the per-area record is replaced by one record with no box ("anywhere", as a TRUNCATE writes):
    the triggers are disabled for the load and the statements returned re-enable them and write that
    record, in the same transaction. No-op when the table has no such trigger."""
    names = [r[0] for r in conn.execute(
        "SELECT t.tgname FROM pg_trigger t WHERE t.tgrelid = %s::regclass AND NOT t.tgisinternal "
        "AND t.tgenabled <> 'D' AND (t.tgtype & 4) <> 0 "  # INSERT triggers ...
        "AND t.tgfoid = to_regprocedure('gis_meta.note_tile_changes()')",  # ... of the tile change log
        (kind.table,))]
    if not names:
        return []
    schema, table = kind.table.split(".")
    for name in names:
        conn.execute(sql.SQL("ALTER TABLE {} DISABLE TRIGGER {}").format(
            sql.Identifier(schema, table), sql.Identifier(name)))
    return [*(sql.SQL("ALTER TABLE {} ENABLE TRIGGER {}").format(sql.Identifier(schema, table), sql.Identifier(n))
              for n in names),
            sql.SQL("INSERT INTO gis_meta.tile_changes (table_schema, table_name, op) VALUES ({}, {}, 'INSERT')")
            .format(sql.Literal(schema), sql.Literal(table))]


def _create_direct_stage(conn: psycopg.Connection, kind: Kind) -> None:
    """``stage_batch``: one batch, each row with the parcel_id it will get; ``stage``: the keys and
    lineage references of every loaded row, for the checks across the whole file."""
    m.create_stage(conn, kind, table="stage_batch")
    seq = m.parcel_id_sequence(conn)
    conn.execute(sql.SQL("ALTER TABLE stage_batch ADD COLUMN new_id int8 NOT NULL DEFAULT nextval({}::regclass)")
                 .format(sql.Literal(seq)))
    cols = [sql.SQL("fid int8")]
    cols += [sql.SQL("{} {}").format(sql.Identifier(f.name), sql.SQL(m.PG_TYPES[f.type]))
             for f in kind.fields if f.name in (*kind.key, "parents")]
    cols.append(sql.SQL("new_id int8 NOT NULL"))
    conn.execute(sql.SQL("CREATE TEMP TABLE stage ({}) ON COMMIT DROP").format(sql.SQL(", ").join(cols)))


def _direct_statements(conn: psycopg.Connection, kind: Kind, run_id: int, valid_from) -> list[sql.Composable]:
    """What the worker runs for each batch in direct mode, after the COPY into stage_batch."""
    kept = sql.SQL(", ").join(map(sql.Identifier, ["fid", *[f.name for f in kind.fields
                                                         if f.name in (*kind.key, "parents")], "new_id"]))
    return [
        sql.SQL("""
            INSERT INTO cadastral.parcels (parcel_id, commune_code, sheet_no, parcel_no, land_use, legal_area_m2,
                address, owner_type, valid_from, source, licence, run_id, row_hash, geom)
            OVERRIDING SYSTEM VALUE
            SELECT s.new_id, s.commune_code, s.sheet_no, s.parcel_no, s.land_use, s.legal_area_m2, s.address,
                s.owner_type, {now}, s.source, s.licence, {run_id}, {h}, {g}
            FROM stage_batch s
        """).format(now=sql.Literal(valid_from), run_id=sql.Literal(run_id), h=m.hash_expr(m.hashed_fields(kind)),
                    g=m.geom_expr(kind)),
        sql.SQL("""
            INSERT INTO private.parcel_owners (parcel_id, owner_name, id_number, run_id)
            SELECT s.new_id, s.owner_name, s.id_number, {run_id} FROM stage_batch s
            WHERE s.owner_name IS NOT NULL
        """).format(run_id=sql.Literal(run_id)),
        sql.SQL("INSERT INTO stage ({kept}) SELECT {kept} FROM stage_batch").format(kept=kept),
        sql.SQL("TRUNCATE stage_batch"),
    ]
