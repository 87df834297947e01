"""Staging normalised batches on a database thread while the next batch is read and normalised.

The job's main thread reads and normalises batch N+1 (pyogrio, shapely, pyproj and Arrow release
the GIL) while a worker thread streams batch N into PostgreSQL over the job's connection, so that
the client's and the server's work overlap on two cores instead of taking turns.

Two modes:

staging (every kind, every load)
    each batch is COPYed into the ``stage`` table; the merge runs after the last batch.
direct (a first load of a large cadastral file into an empty ``cadastral.parcels``)
    the secondary indexes and the foreign keys of the parcels (except those to ``ingest.runs``) are
    dropped before the first batch, and each batch is COPYed straight into ``cadastral.parcels``
    and ``private.parcel_owners``, its parcel ids drawn just before (:meth:`Loader._copy_direct`):
    there is nothing to compare with, so no history comparison is needed. The client writes the
    columns as the database's casts would store them (numeric areas, MultiPolygons, its row
    hashes, checked on a sample); a batch with a value it does not write exactly goes through its
    own staging table and ``INSERT ... SELECT`` instead. ``stage`` keeps only the keys and lineage
    references, for the checks across the whole file. The rows those checks reject
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
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql

from gis.arrow import fixed_width_binary
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
    client_hashes : bool
        Whether the worker computes the row hashes (:func:`ingest.merge.client_hashes`) before it
        stages a batch; else the database does. It also keeps a hash of each row's natural key
        (:attr:`key_hashes`, for :func:`ingest.merge.all_distinct`).
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
                 client_hashes: bool = False, depth: int = 1) -> None:
        self.conn, self.kind, self.run_id, self.valid_from = conn, kind, run_id, valid_from
        self.direct, self.client_hashes = direct, client_hashes
        self.key_hashes: list = []  # per staged batch, a hash of each row's natural key
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
            self._sequence = m.parcel_id_sequence(self.conn)
            self.restore = m.drop_for_bulk_load(self.conn, self.kind) + _suspend_tile_log(self.conn, self.kind)
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
                if self.client_hashes:
                    rows["client_hash"] = m.client_hashes(rows, self.kind)
                self.key_hashes.append(m.key_hashes(rows, self.kind))
                if self.direct:
                    if not self._copy_direct(rows):
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

    def _copy_direct(self, rows: pd.DataFrame) -> bool:
        """COPY one batch straight into ``cadastral.parcels``, ``private.parcel_owners`` and the
        keys into ``stage``, the values written as the statements path's casts write them (see
        :func:`parcel_copy_columns`). False, with nothing written, when the batch holds a value
        that path does not encode exactly: the caller then stages the batch and inserts it with
        SQL."""
        columns = parcel_copy_columns(rows, self.run_id, self.valid_from)
        if columns is None:
            return False
        conn, n = self.conn, len(rows)
        # the client's row hashes, checked against the database's on a sample, as on the other path
        sample = rows[rows["fid"].to_numpy() % 50 == 0]
        if len(sample):
            m.copy_rows(conn, self.kind, sample, table="stage_sample")
            m.check_client_hashes(conn, self.kind, "stage_sample")
            conn.execute("TRUNCATE stage_sample")
        # the parcel ids, in feature order, as the statements path draws them (one nextval a row)
        first, last = conn.execute(
            "SELECT min(v), max(v) FROM (SELECT nextval(%s::regclass) AS v FROM generate_series(1, %s)) q",
            (self._sequence, n)).fetchone()
        if last - first + 1 != n:  # another session drew ids meanwhile: the statements path
            return False
        ids = pd.Series(np.arange(first, last + 1, dtype=np.int64), index=rows.index)
        parcels = [("int8", ids), *columns]
        _copy(conn, "cadastral.parcels", _PARCEL_COLUMNS, parcels)
        owned = rows["owner_name"].notna().to_numpy()
        if owned.any():
            run = pd.Series(np.full(int(owned.sum()), self.run_id, dtype=np.int64))
            _copy(conn, "private.parcel_owners", ("parcel_id", "owner_name", "id_number", "run_id"),
                  [("int8", ids[owned].reset_index(drop=True)),
                   ("text", rows["owner_name"][owned].reset_index(drop=True)),
                   ("text", rows["id_number"][owned].reset_index(drop=True)), ("int8", run)])
        kept = ["fid", *[f.name for f in self.kind.fields if f.name in (*self.kind.key, "parents")]]
        types = {f.name: m.PG_TYPES[f.type] for f in self.kind.fields}
        _copy(conn, "stage", (*kept, "new_id"),
              [*(("int8" if c == "fid" else types[c], rows[c]) for c in kept), ("int8", ids)])
        return True


#: The columns a direct COPY writes into cadastral.parcels (valid_to: NULL, its default).
_PARCEL_COLUMNS = ("parcel_id", "commune_code", "sheet_no", "parcel_no", "land_use", "legal_area_m2", "address",
                   "owner_type", "valid_from", "source", "licence", "run_id", "row_hash", "geom")
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _copy(conn: psycopg.Connection, table: str, names, columns: list) -> None:
    if not m.copy_columns(conn, sql.Identifier(*table.split(".")), names, columns):
        # parcel_copy_columns hands over only columns the encoder takes: a bug if it comes here
        raise RuntimeError(f"a direct COPY into {table} could not be encoded")


def _raw(arr: pa.Array, index) -> pd.Series:
    """Binary COPY payloads (already in the column type's binary form) as a column."""
    return pd.Series(pd.arrays.ArrowExtensionArray(arr), index=index)


def parcel_copy_columns(rows: pd.DataFrame, run_id: int, valid_from) -> list | None:
    """The columns of :data:`_PARCEL_COLUMNS` after ``parcel_id``, as (type, values) for
    :func:`ingest.merge.encode_binary_copy`, holding what the statements path's ``INSERT ...
    SELECT`` from the staging table stores: sheet and parcel numbers as int4, the legal area as
    numeric(14,2) (float8 -> numeric as PostgreSQL casts it: 15 significant digits, then rounded
    half away from zero to cents), the client's row hash, the geometry as a MultiPolygon
    (``ST_Multi``). None when a value would not be stored exactly so (a row hash the database must
    compute, an out-of-range number, a geometry in another form).
    """
    if not isinstance(valid_from, datetime) or valid_from.tzinfo is None:
        return None  # the database decides what a time without a zone means
    n, index = len(rows), rows.index
    if "client_hash" not in rows or rows["client_hash"].isna().any():
        return None
    ints = []
    for name in ("sheet_no", "parcel_no"):
        col = rows[name]
        if not pd.api.types.is_integer_dtype(col.dtype) or col.isna().any():
            return None
        v = col.to_numpy(dtype=np.int64)
        if (v < -2 ** 31).any() or (v >= 2 ** 31).any():
            return None
        ints.append(_raw(fixed_width_binary(v.astype(">i4").tobytes(), 4, n), index))
    area = _numeric_cents(rows["legal_area_m2"])
    geom = _multi_ewkb(rows["geom"])
    if area is None or geom is None:
        return None
    micros = (valid_from - _PG_EPOCH) // timedelta(microseconds=1)
    const = pd.Series(np.full(n, micros, dtype=np.int64), index=index)
    run = pd.Series(np.full(n, run_id, dtype=np.int64), index=index)
    return [("text", rows["commune_code"]), ("bytea", ints[0]), ("bytea", ints[1]), ("text", rows["land_use"]),
            ("bytea", _raw(area, index)), ("text", rows["address"]), ("text", rows["owner_type"]),
            ("int8", const), ("text", rows["source"]), ("text", rows["licence"]), ("int8", run),
            ("text", rows["client_hash"]), ("bytea", _raw(geom, index))]


def _numeric_cents(col: pd.Series) -> pa.Array | None:
    """numeric(14,2) binary values of float8 areas, as PostgreSQL's float8 -> numeric(14,2) cast
    stores them (NULL stays NULL), or None (a NaN, an infinity, a negative or too large value)."""
    if not (pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype)):
        return None
    null = col.isna().to_numpy(dtype=bool)
    v = col.to_numpy(dtype=np.float64, na_value=0.0)
    if not (np.isfinite(v) & (v >= 0) & (v < 1e12)).all():
        return None
    c = v * 100
    cents = np.floor(c + 0.5).astype(np.int64)
    # the cast rounds the 15-digit decimal of the value: where that may fall on the other side of
    # a half cent, the decimal itself decides
    near = np.flatnonzero(np.abs(c - np.floor(c) - 0.5) <= 1e-13 * np.maximum(c, 1) + 1e-9)
    for i in near.tolist():
        cents[i] = int(Decimal(f"{v[i]:.15g}").quantize(Decimal("0.01"), ROUND_HALF_UP) * 100)
    whole, frac = np.divmod(cents, 100)
    digits = np.stack([whole // 10 ** 8, whole // 10 ** 4 % 10 ** 4, whole % 10 ** 4, frac * 100], axis=1)
    # ndigits 4, weight 2, sign +, dscale 2, then the 4 base-10000 digits (the database strips the
    # zeros, as it does for the cast's result)
    body = np.empty((len(v), 8), dtype=np.int64)
    body[:, :4] = (4, 2, 0, 2)
    body[:, 4:] = digits
    body = body.astype(">i2")
    validity = None
    if null.any():
        validity = pa.array(~null).buffers()[1]
    return fixed_width_binary(np.ascontiguousarray(body).tobytes(), 16, len(v), validity)


_MULTI_HEAD = bytes([1]) + (0x20000006).to_bytes(4, "little")
_POLYGON_EWKB = (0x20000003).to_bytes(4, "little")


def _multi_ewkb(col: pd.Series) -> pa.Array | None:
    """``ST_Multi`` of little-endian polygon EWKB, as EWKB: a MultiPolygon of the one polygon
    (its header without the SRID), or the value itself when it is a MultiPolygon already.
    None when some value is neither."""
    arr = pa.array(col.array) if isinstance(col.dtype, pd.ArrowDtype) else pa.array(col.tolist(), pa.binary())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.null_count or not len(arr):
        return None
    srid = pc.binary_slice(arr, 5, 9)
    poly = pc.equal(pc.binary_slice(arr, 0, 5), pa.scalar(bytes([1]) + _POLYGON_EWKB, pa.binary()))
    multi = pc.equal(pc.binary_slice(arr, 0, 5), pa.scalar(_MULTI_HEAD, pa.binary()))
    if not pc.all(pc.or_(poly, multi)).as_py():
        return None
    wrapped = pc.binary_join_element_wise(
        pa.scalar(_MULTI_HEAD, pa.binary()), srid,
        pa.scalar((1).to_bytes(4, "little") + bytes([1]) + (3).to_bytes(4, "little"), pa.binary()),
        pc.binary_slice(arr, 9, 1 << 30), pa.scalar(b"", pa.binary()))
    return pc.if_else(poly, wrapped, arr)


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
    m.create_stage(conn, kind, table="stage_sample")
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
