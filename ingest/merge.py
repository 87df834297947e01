"""Staging (binary COPY) and the merge of staged rows into the model, per kind.

All statements run inside the job's single transaction; identifiers are composed with
``psycopg.sql.Identifier`` and values passed as bind parameters.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql

from gis.arrow import fixed_width_binary
from ingest.kinds import Kind

#: The job's temporary staging tables (their names appear in the job's statements as they are).
STAGE_TABLES = ("stage", "stage_batch", "stage_sample")

PG_TYPES = {"text": "text", "int": "int8", "float": "float8", "date": "date", "bool": "bool"}


@dataclass
class MergeCounts:
    """What a merge did."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    retired: int = 0


def create_stage(conn: psycopg.Connection, kind: Kind, table: str = "stage") -> None:
    """A temporary staging table for the kind's fields (dropped at commit or rollback)."""
    cols = [sql.SQL("fid int8")]
    cols += [sql.SQL("{} {}").format(sql.Identifier(f.name), sql.SQL(PG_TYPES[f.type])) for f in kind.fields]
    cols.append(sql.SQL("geom bytea NOT NULL"))
    cols.append(sql.SQL("geom_md5 text NOT NULL"))  # md5(geom), computed by the client (see geom_md5)
    cols.append(sql.SQL("client_hash text"))  # the row hash when the client computed it (see client_hashes)
    if table not in STAGE_TABLES:
        raise ValueError(f"not a staging table: {table!r}")
    conn.execute(sql.SQL("CREATE TEMP TABLE {} ({}) ON COMMIT DROP").format(sql.SQL(table), sql.SQL(", ").join(cols)))


def copy_rows(conn: psycopg.Connection, kind: Kind, rows: pd.DataFrame, table: str = "stage") -> int:
    """Binary COPY of normalised rows into the staging table.

    The COPY data is built column by column with Arrow (:func:`encode_binary_copy`); a batch with
    values of other types (dates, booleans, a text field holding non-text values) goes through
    psycopg's row-by-row dumpers instead.
    """
    if rows.empty:
        return 0
    names = ["fid", *kind.field_names, "geom", "geom_md5", "client_hash"]
    types = ["int8", *[PG_TYPES[f.type] for f in kind.fields], "bytea", "text", "text"]
    if "geom_md5" not in rows:
        rows = rows.assign(geom_md5=geom_md5(rows["geom"]))
    if "client_hash" not in rows:  # the database computes every row hash
        rows = rows.assign(client_hash=pd.Series([None] * len(rows), index=rows.index, dtype=object))
    if table not in STAGE_TABLES:
        raise ValueError(f"not a staging table: {table!r}")
    if copy_columns(conn, sql.SQL(table), names, [(t, rows[name]) for name, t in zip(names, types)]):
        return len(rows)
    stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.SQL(table), sql.SQL(", ").join(map(sql.Identifier, names)))
    with conn.cursor().copy(stmt) as copy:
        copy.set_types(types)
        columns = []
        for name in names:
            col = rows[name]
            if col.dtype == object:
                arr = col.to_numpy()
                arr = np.where(pd.isna(arr), None, arr) if name != "geom" else arr
            else:
                arr = col.astype(object).where(col.notna(), None).to_numpy()
            columns.append(arr.tolist())
        for row in zip(*columns):
            copy.write_row(row)
    return len(rows)


def copy_columns(conn: psycopg.Connection, table: sql.Composable, names, columns: list) -> bool:
    """Binary COPY of typed columns (see :func:`encode_binary_copy`) into ``table``'s ``names``;
    False, with nothing sent, when some column holds values the encoder does not handle."""
    data = encode_binary_copy(columns)
    if data is None:
        return False
    stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        table, sql.SQL(", ").join(map(sql.Identifier, names)))
    with conn.cursor().copy(stmt) as copy:
        for chunk in data:
            copy.write(chunk)
    return True


def geom_md5(geoms: pd.Series) -> list[str]:
    """The md5 (hex) of each geometry's EWKB: part of the row hash, computed by the client rather
    than by the server (PostgreSQL's md5() of a bytea is the hex digest of the same bytes)."""
    if isinstance(geoms.dtype, pd.ArrowDtype):  # normalise's EWKB: Arrow's list, not pandas' iteration
        values = pa.array(geoms.array).to_pylist()
    else:
        values = geoms.tolist()
    return md5_hex(values)


def md5_hex(values: list[bytes]) -> list[str]:
    """The md5 (hex digest) of each bytes value."""
    return [hashlib.md5(v).hexdigest() for v in values]


# record_out (the text of ROW(...)) quotes a value that is empty or holds one of these
_QUOTED = '["\\\\(),\t\n\x0b\x0c\r ]'


def _text_array(col: pd.Series) -> pa.Array | pa.ChunkedArray | None:
    """A text column as an Arrow string array, or None when it holds values that are not text."""
    if str(col.dtype) == "str" or isinstance(col.dtype, pd.StringDtype):
        return pa.array(col, from_pandas=True)
    values = col.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
        return None
    return pa.array(values, type=pa.string(), from_pandas=True)


def _row_text_field(pg_type: str, col: pd.Series) -> tuple[pa.Array, np.ndarray] | None:
    """(text of the field in ROW(...)::text, where that text is exact), or None."""
    n = len(col)
    if pg_type == "text":
        arr = _text_array(col)
        if arr is None:
            return None
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        arr = arr.cast(pa.string())
        quote = pc.fill_null(pc.or_(pc.equal(arr, ""), pc.match_substring_regex(arr, _QUOTED)), False)
        escaped = pc.replace_substring(pc.replace_substring(arr, "\\", "\\\\"), '"', '""')
        quoted = pc.binary_join_element_wise(pa.scalar('"'), escaped, pa.scalar('"'), pa.scalar(""))
        return pc.if_else(quote, quoted, arr).fill_null(""), np.ones(n, dtype=bool)
    if pg_type == "int8":
        if not pd.api.types.is_integer_dtype(col.dtype):
            return None
        return pc.cast(pa.array(col, from_pandas=True), pa.string()).fill_null(""), np.ones(n, dtype=bool)
    if pg_type == "float8":
        if not (pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype)):
            return None
        null = col.isna().to_numpy(dtype=bool)
        values = col.to_numpy(dtype=np.float64, na_value=np.nan)
        size = np.abs(values)
        # float8out (extra_float_digits > 0) writes the shortest exact digits, as repr() does, in
        # positional notation for decimal exponents -4 to 14 (repr: to 15), without repr's ".0".
        # Arrow's cast writes the same shortest digits, but in places with an exponent (from about
        # 17 digits on): those values are written by repr().
        exact = null | (np.isfinite(values) & ((values == 0) | ((size >= 1e-4) & (size < 1e15))))
        written = exact & ~null
        text = pc.cast(pa.array(np.where(written, values, 0.0)), pa.string())
        exponent = pc.match_substring(text, "e")
        if pc.any(exponent).as_py():
            other = values[exponent.to_numpy(zero_copy_only=False)].tolist()
            text = pc.replace_with_mask(text, exponent, pa.array(
                [r[:-2] if (r := repr(v)).endswith(".0") else r for v in other], pa.string()))
        return pc.if_else(pa.array(written), text, ""), exact
    return None


def client_hashes(rows: pd.DataFrame, kind: Kind) -> list[str | None]:
    """The row hash of each row (see :func:`server_hash_expr`), computed by the client: the text of
    ``ROW(...)`` built column-wise with Arrow, then an md5 per row. None where the text might not be
    the database's exactly (dates, booleans, floats written with an exponent): the database computes
    those. :func:`check_client_hashes` compares a sample with the database's."""
    n = len(rows)
    types = {f.name: PG_TYPES[f.type] for f in kind.fields}
    parts, exact = [pa.scalar("(")], np.ones(n, dtype=bool)
    for i, name in enumerate(hashed_fields(kind)):
        field = _row_text_field(types[name], rows[name]) if n else None
        if field is None:
            return [None] * n
        if i:
            parts.append(pa.scalar(","))
        parts.append(field[0])
        exact &= field[1]
    md5s = pa.array(rows["geom_md5"].tolist() if "geom_md5" in rows else geom_md5(rows["geom"]), pa.string())
    parts += [pa.scalar(")"), md5s]
    text = pc.binary_join_element_wise(*parts, pa.scalar("")).cast(pa.binary())
    hashes: list[str | None] = md5_hex(text.to_pylist())
    for i in np.flatnonzero(~exact).tolist():
        hashes[i] = None
    return hashes


_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_COPY_TRAILER = b"\xff\xff"


def _lengths(lens: np.ndarray) -> pa.Array:
    """The 4-byte big-endian length words of a binary COPY (-1: NULL)."""
    return fixed_width_binary(lens.astype(">i4").tobytes(), 4, len(lens))


def _copy_field(pg_type: str, col: pd.Series) -> tuple[pa.Array | pa.Scalar, pa.Array] | None:
    """(length words, payloads) of one column of a binary COPY, or None when the column holds
    values this encoder does not handle."""
    n = len(col)
    if pg_type in ("int8", "float8"):
        if not (pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype)):
            return None
        if pg_type == "int8" and not pd.api.types.is_integer_dtype(col.dtype):
            return None
        null = col.isna().to_numpy(dtype=bool)
        np_type, be_type = (np.int64, ">i8") if pg_type == "int8" else (np.float64, ">f8")
        values = col.to_numpy(dtype=np_type, na_value=0)
        if not null.any():
            return pa.scalar(b"\x00\x00\x00\x08", pa.binary()), fixed_width_binary(
                values.astype(be_type).tobytes(), 8, n)
        offsets = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(np.where(null, 0, 8), out=offsets[1:])
        payload = pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets),
                                                         pa.py_buffer(values[~null].astype(be_type).tobytes())])
        return _lengths(np.where(null, -1, 8)), payload
    if pg_type in ("text", "bytea"):
        if pg_type == "text":
            arr = _text_array(col)
            if arr is None:
                return None
        elif isinstance(col.dtype, pd.ArrowDtype) and pa.types.is_binary(col.dtype.pyarrow_dtype):
            arr = pa.array(col)  # Arrow-backed (normalise's EWKB): no copy
        else:
            values = col.to_numpy(dtype=object)
            if pd.api.types.infer_dtype(values, skipna=True) not in ("bytes", "empty"):
                return None
            arr = pa.array(values, type=pa.binary(), from_pandas=True)
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if arr.type != pa.binary():
            arr = arr.cast(pa.string()).cast(pa.binary())
        lens = pc.binary_length(arr).to_numpy(zero_copy_only=False)
        if arr.null_count:
            lens = np.where(arr.is_null().to_numpy(zero_copy_only=False), -1, lens)
            arr = arr.fill_null(b"")
        return _lengths(lens), arr
    return None


def encode_binary_copy(columns: list[tuple[str, pd.Series]]) -> list | None:
    """PostgreSQL binary COPY data of typed columns (``int8``, ``float8``, ``text``, ``bytea``),
    built column-wise with Arrow: per row the field count, then per field its length word and
    payload, joined row by row in one Arrow kernel. Returns the chunks to write, or None when some
    column holds values of another type.

    Parameters
    ----------
    columns : list of (str, pandas.Series)
        PostgreSQL type and values of each column, in the COPY's column order; missing values
        (None, NaN, NA) are written as NULL.
    """
    parts: list = [pa.scalar(len(columns).to_bytes(2, "big"), pa.binary())]
    for pg_type, col in columns:
        field = _copy_field(pg_type, col)
        if field is None:
            return None
        parts.extend(field)
    try:
        rows = pc.binary_join_element_wise(*parts, pa.scalar(b"", pa.binary()))
    except (pa.ArrowCapacityError, pa.ArrowInvalid):  # a batch over 2 GB: row by row
        return None
    if isinstance(rows, pa.ChunkedArray):
        rows = rows.combine_chunks()
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int32, count=len(rows) + 1, offset=rows.offset * 4)
    body = memoryview(rows.buffers()[2])[offsets[0]:offsets[-1]]
    return [_COPY_HEADER, body, _COPY_TRAILER]


def key_hashes(rows: pd.DataFrame, kind: Kind) -> np.ndarray:
    """A 64-bit hash of each row's natural key, the same for equal keys whatever the batch's dtypes:
    numbers as float64 (exact below 2**53), everything else as Python objects, NULLs alike."""
    cols = {}
    for name in kind.key:
        col = rows[name]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            cols[name] = pd.to_numeric(col).astype("float64")
        else:
            cols[name] = col.astype(object).where(col.notna(), None)
    return pd.util.hash_pandas_object(pd.DataFrame(cols), index=False).to_numpy()


def all_distinct(hashes: list[np.ndarray]) -> bool:
    """True when no two of the hashes are equal: then no two staged rows share their natural key
    (equal keys hash alike), and the database need not look for duplicates. A False (a shared key,
    or a collision) leaves the finding, and its message, to the database."""
    if not hashes:
        return True
    h = np.sort(np.concatenate(hashes))
    return not bool((h[1:] == h[:-1]).any())


def stage_problems(conn: psycopg.Connection, kind: Kind, *, first_load: bool = False,
                   keys_unique: bool = False) -> list[tuple[int, str]]:
    """Problems only visible across the whole file: duplicate natural keys, unknown lineage parents.

    ``first_load``: the kind's table was empty when the job started (a :class:`Loader` in direct
    mode has inserted the staged rows already), so no lineage parent can be a parcel in force.
    ``keys_unique``: the client has proved that no two staged rows share their key
    (:func:`all_distinct` of :func:`key_hashes`), so the duplicate search is skipped (1-2 s for a
    million parcels, after the last batch, with nothing to overlap it).
    """
    key = sql.SQL(", ").join(map(sql.Identifier, kind.key))
    # the keys that occur more than once (a hash aggregate over the stage), then their features; the
    # key's text form groups NULLs together, as PARTITION BY does
    dup = [] if keys_unique else conn.execute(sql.SQL(
        "WITH k AS (SELECT fid, ({key})::text AS kv FROM stage), "
        "d AS (SELECT kv FROM k GROUP BY kv HAVING count(*) > 1) "
        "SELECT k.fid, k.kv, array_agg(k.fid) OVER (PARTITION BY k.kv ORDER BY k.fid "
        "ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS fids FROM k JOIN d USING (kv) ORDER BY k.fid"
    ).format(key=key)).fetchall()
    problems = []
    for fid, kv, fids in dup:
        others = [int(f) for f in fids if f != fid]
        shown = ", ".join(map(str, others[:5])) + (", ..." if len(others) > 5 else "")
        problems.append((fid, f"duplicate natural key {kv} ({', '.join(kind.key)}): also at feature"
                              f"{'s' if len(others) > 1 else ''} {shown} ({len(fids)} features share it)"))
    if kind.name == "cadastral" and first_load:
        # the table held no parcel when the job started: every parent reference names no parcel in
        # force (the query below, against the parcels of before this job)
        rows = conn.execute("""
            SELECT s.fid, trim(r) FROM stage s, unnest(string_to_array(s.parents, ';')) AS r
            WHERE s.parents IS NOT NULL AND trim(r) <> ''
        """).fetchall()
        problems += [(fid, f"lineage parent {ref!r} is not a parcel in force (expected 'sheet/parcel')")
                     for fid, ref in rows]
    elif kind.name == "cadastral":
        rows = conn.execute("""
            WITH refs AS (
                SELECT s.fid, s.commune_code, trim(r) AS ref
                FROM stage s, unnest(string_to_array(s.parents, ';')) AS r
                WHERE s.parents IS NOT NULL AND trim(r) <> ''),
            parsed AS (
                SELECT fid, ref,
                       CASE WHEN ref ~ '^([0-9A-Za-z]+:)?[0-9]{1,9}/[0-9]{1,9}$' THEN
                            coalesce(nullif(split_part(ref, ':', -2), ''), commune_code) END AS pc,
                       CASE WHEN ref ~ '^([0-9A-Za-z]+:)?[0-9]{1,9}/[0-9]{1,9}$' THEN
                            split_part(split_part(ref, ':', -1), '/', 1)::int END AS ps,
                       CASE WHEN ref ~ '^([0-9A-Za-z]+:)?[0-9]{1,9}/[0-9]{1,9}$' THEN
                            split_part(split_part(ref, ':', -1), '/', 2)::int END AS pp
                FROM refs)
            SELECT parsed.fid, parsed.ref FROM parsed
            WHERE NOT EXISTS (  -- the parent is in force ...
                SELECT 1 FROM cadastral.parcels p
                WHERE p.valid_to IS NULL AND p.commune_code = parsed.pc
                  AND p.sheet_no = parsed.ps AND p.parcel_no = parsed.pp)
              AND NOT EXISTS (  -- ... or this child already records it (a re-run of the same edition)
                SELECT 1 FROM stage s
                JOIN cadastral.parcels c ON c.valid_to IS NULL AND c.commune_code = s.commune_code
                 AND c.sheet_no = s.sheet_no AND c.parcel_no = s.parcel_no
                JOIN cadastral.parcel_lineage l ON l.child_id = c.parcel_id
                JOIN cadastral.parcels p ON p.parcel_id = l.parent_id
                WHERE s.fid = parsed.fid AND p.commune_code = parsed.pc
                  AND p.sheet_no = parsed.ps AND p.parcel_no = parsed.pp)
        """).fetchall()
        problems += [(fid, f"lineage parent {ref!r} is not a parcel in force (expected 'sheet/parcel')")
                     for fid, ref in rows]
    return problems


def drop_rejected(conn: psycopg.Connection, fids: list[int], *, direct: bool = False) -> None:
    """Remove rejected features from the stage (``direct``: and the rows a direct first load
    inserted for them already, see :mod:`ingest.loader`)."""
    if not fids:
        return
    if direct:
        conn.execute("DELETE FROM private.parcel_owners WHERE parcel_id IN "
                     "(SELECT new_id FROM stage WHERE fid = ANY(%s))", (fids,))
        conn.execute("DELETE FROM cadastral.parcels WHERE parcel_id IN "
                     "(SELECT new_id FROM stage WHERE fid = ANY(%s))", (fids,))
    conn.execute("DELETE FROM stage WHERE fid = ANY(%s)", (fids,))


# -- merges ---------------------------------------------------------------------------------------
CADASTRAL_HASHED = ("land_use", "legal_area_m2", "address", "owner_type", "owner_name", "id_number",
                    "source", "licence")
PLANNING_LOT_FIELDS = ("lot_code", "use_class", "use_code", "use_name", "max_storeys", "max_height_m", "max_far",
                       "max_coverage", "max_density_pph", "area_m2")


def hashed_fields(kind: Kind) -> list[str]:
    """The fields of a kind's row hash, in order (with the geometry's md5 after them)."""
    if kind.name == "cadastral":
        return list(CADASTRAL_HASHED)
    if kind.name == "planning":
        return ["plan_name", *PLANNING_LOT_FIELDS]
    return kind.field_names


def server_hash_expr(fields: list[str]) -> sql.Composable:
    """The row hash as the database computes it: md5 of the row's text and the geometry's md5."""
    return sql.SQL("md5(ROW({})::text || s.geom_md5)").format(  # s.geom_md5 = md5(s.geom)
        sql.SQL(", ").join(sql.SQL("s.{}").format(sql.Identifier(f)) for f in fields))


def hash_expr(fields: list[str]) -> sql.Composable:
    """The row hash of a staged row: the client's (:func:`client_hashes`), else the database's."""
    return sql.SQL("coalesce(s.client_hash, {})").format(server_hash_expr(fields))


def client_hashing(conn: psycopg.Connection) -> bool:
    """Whether :func:`client_hashes` matches the database's text of floats (its default shortest
    exact output, ``extra_float_digits`` > 0)."""
    return int(conn.execute("SELECT current_setting('extra_float_digits')").fetchone()[0]) > 0


def check_client_hashes(conn: psycopg.Connection, kind: Kind, table: str = "stage") -> None:
    """Compare the client's row hashes with the database's on a sample (every 50th feature): the
    row hashes decide what a later load sees as changed, so they must be the database's exactly.

    Raises
    ------
    RuntimeError
        When one differs (a bug: the job then fails and writes nothing).
    """
    if table not in STAGE_TABLES:
        raise ValueError(f"not a staging table: {table!r}")
    bad = conn.execute(sql.SQL(
        "SELECT s.fid, s.client_hash, {h} FROM {t} s WHERE s.fid % 50 = 0 AND s.client_hash IS NOT NULL "
        "AND s.client_hash <> {h} LIMIT 1").format(h=server_hash_expr(hashed_fields(kind)),
                                                   t=sql.SQL(table))).fetchone()
    if bad:
        raise RuntimeError(f"row hash of feature {bad[0]} computed by the client ({bad[1]}) differs from "
                           f"the database's ({bad[2]})")


def geom_expr(kind: Kind) -> sql.Composable:
    if kind.geometry == "point":
        return sql.SQL("ST_GeomFromEWKB(s.geom)")
    return sql.SQL("ST_Multi(ST_GeomFromEWKB(s.geom))")


def merge(conn: psycopg.Connection, kind: Kind, run_id: int, now,
          provided: set[str] | None = None, *, restore: list | None = None) -> MergeCounts:
    """Merge the staging table into the kind's table.

    ``provided`` names the fields the source file carries (a column or a constant of the mapping);
    an update of an existing row leaves the other fields as they are: a file without a population
    column says nothing about population, it does not erase the one another source gave.

    ``restore``: the rows are in the table already (a direct first load, :mod:`ingest.loader`);
    these statements rebuild the indexes and foreign keys it dropped.
    """
    if restore is not None:
        for stmt in restore:  # indexes, then foreign keys (whose checks use them)
            conn.execute(stmt)
        inserted = conn.execute("SELECT count(*) FROM stage").fetchone()[0]
        return MergeCounts(inserted=inserted)
    bulk = _bulk_first_load(conn, kind)
    try:
        if kind.name == "cadastral":
            return _merge_cadastral(conn, kind, run_id, now)
        if kind.name == "planning":
            return _merge_planning(conn, kind, run_id)
        return _merge_upsert(conn, kind, run_id, provided)
    finally:
        if bulk:
            for stmt in bulk:  # indexes, then foreign keys (whose checks use them)
                conn.execute(stmt)


def _bulk_first_load(conn: psycopg.Connection, kind: Kind) -> list:
    """For a large load into an empty table, drop its secondary indexes and its foreign keys (and
    those of the tables that reference it), and return the statements that restore them after the
    merge, inside the same transaction: each index is then built in one sorted pass and each foreign
    key checked by one query, instead of per row (index insertions, one RI trigger per row and key).

    Foreign keys to ``ingest.runs`` stay: dropping one would lock ``ingest.runs`` (ACCESS EXCLUSIVE)
    until the commit, blocking every other job's run record. The primary key stays (the foreign
    keys that reference it need it), and so do the unique indexes of the kinds merged with
    INSERT ... ON CONFLICT (all but cadastral)."""
    schema, table = kind.table.split(".")
    staged = conn.execute("SELECT count(*) FROM stage").fetchone()[0]
    if staged < 20_000:
        return []
    empty = conn.execute(sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM {})").format(
        sql.Identifier(schema, table))).fetchone()[0]
    if not empty:
        return []
    return drop_for_bulk_load(conn, kind)


def drop_for_bulk_load(conn: psycopg.Connection, kind: Kind) -> list:
    """Drop the secondary indexes and the foreign keys of the kind's (empty) table and of the tables
    referencing it, except those to ``ingest.runs``; return the statements that restore them
    (indexes first, then the foreign keys, validated)."""
    schema = kind.table.split(".")[0]
    # unique indexes stay for the kinds whose merge is an INSERT ... ON CONFLICT on them
    rows = conn.execute(
        "SELECT c.relname, pg_get_indexdef(c.oid) FROM pg_index x "
        "JOIN pg_class c ON c.oid = x.indexrelid "
        "WHERE x.indrelid = %s::regclass AND NOT x.indisprimary AND (%s OR NOT x.indisunique) "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = c.oid)",
        (kind.table, kind.name == "cadastral")).fetchall()
    for name, _ in rows:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(schema, name)))
    restore: list = [d for _, d in rows]
    fks = conn.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = 'f' AND (conrelid = %s::regclass OR confrelid = %s::regclass) "
        "AND confrelid <> 'ingest.runs'::regclass ORDER BY 1, 2", (kind.table, kind.table)).fetchall()
    for rel, name, _ in fks:
        conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.SQL(rel), sql.Identifier(name)))
    restore += [sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
        sql.SQL(rel), sql.Identifier(name), sql.SQL(d)) for rel, name, d in fks]
    return restore


def _merge_upsert(conn: psycopg.Connection, kind: Kind, run_id: int,
                  provided: set[str] | None = None) -> MergeCounts:
    schema, table = kind.table.split(".")
    fields = [f.name for f in kind.fields]
    cols = sql.SQL(", ").join(map(sql.Identifier, [*fields, "run_id", "row_hash", "geom"]))
    sel = sql.SQL(", ").join([*(sql.SQL("s.{}").format(sql.Identifier(f)) for f in fields),
                              sql.Placeholder("run_id"), hash_expr(fields), geom_expr(kind)])
    updated = [c for c in fields if c not in kind.key and (provided is None or c in provided)]
    upd = sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c))
                             for c in [*updated, "run_id", "row_hash", "geom"])
    q = sql.SQL("""
        WITH up AS (
            INSERT INTO {tbl} AS t ({cols})
            SELECT {sel} FROM stage s
            ON CONFLICT ({key}) DO UPDATE SET {upd}
            WHERE t.row_hash IS DISTINCT FROM EXCLUDED.row_hash
            RETURNING (xmax = 0) AS inserted)
        SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up
    """).format(tbl=sql.Identifier(schema, table), cols=cols, sel=sel,
                key=sql.SQL(", ").join(map(sql.Identifier, kind.key)), upd=upd)
    ins, upd_n = conn.execute(q, {"run_id": run_id}).fetchone()
    staged = conn.execute("SELECT count(*) FROM stage").fetchone()[0]
    return MergeCounts(inserted=ins, updated=upd_n, unchanged=staged - ins - upd_n)


def _merge_planning(conn: psycopg.Connection, kind: Kind, run_id: int) -> MergeCounts:
    conn.execute("""
        INSERT INTO planning.plans AS p (name, level, decision_no, approval_date, authority, source, licence)
        SELECT DISTINCT ON (plan_name) plan_name, plan_level, decision_no, approval_date, authority, source, licence
        FROM stage ORDER BY plan_name, fid
        ON CONFLICT (name) DO UPDATE SET level = EXCLUDED.level, decision_no = EXCLUDED.decision_no,
            approval_date = EXCLUDED.approval_date, authority = EXCLUDED.authority,
            source = EXCLUDED.source, licence = EXCLUDED.licence
        WHERE (p.level, p.decision_no, p.approval_date, p.authority, p.source, p.licence)
              IS DISTINCT FROM (EXCLUDED.level, EXCLUDED.decision_no, EXCLUDED.approval_date,
                                EXCLUDED.authority, EXCLUDED.source, EXCLUDED.licence)
    """)
    lot_fields = list(PLANNING_LOT_FIELDS)
    hash_fields = hashed_fields(kind)
    cols = sql.SQL(", ").join(map(sql.Identifier, ["plan_id", *lot_fields, "run_id", "row_hash", "geom"]))
    sel = sql.SQL(", ").join([sql.SQL("p.plan_id"), *(sql.SQL("s.{}").format(sql.Identifier(f)) for f in lot_fields),
                              sql.Placeholder("run_id"), hash_expr(hash_fields), geom_expr(kind)])
    upd = sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c))
                             for c in [*lot_fields[1:], "run_id", "row_hash", "geom"])
    q = sql.SQL("""
        WITH up AS (
            INSERT INTO planning.lots AS t ({cols})
            SELECT {sel} FROM stage s JOIN planning.plans p ON p.name = s.plan_name
            ON CONFLICT (plan_id, lot_code) DO UPDATE SET {upd}
            WHERE t.row_hash IS DISTINCT FROM EXCLUDED.row_hash
            RETURNING (xmax = 0) AS inserted)
        SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up
    """).format(cols=cols, sel=sel, upd=upd)
    ins, upd_n = conn.execute(q, {"run_id": run_id}).fetchone()
    staged = conn.execute("SELECT count(*) FROM stage").fetchone()[0]
    return MergeCounts(inserted=ins, updated=upd_n, unchanged=staged - ins - upd_n)


def parcel_id_sequence(conn: psycopg.Connection) -> str:
    """The sequence of cadastral.parcels.parcel_id, resolved once (pg_get_serial_sequence() in a
    per-row expression is evaluated for every row)."""
    return conn.execute("SELECT pg_get_serial_sequence('cadastral.parcels', 'parcel_id')").fetchone()[0]


def _merge_cadastral(conn: psycopg.Connection, kind: Kind, run_id: int, now) -> MergeCounts:
    hashed = hashed_fields(kind)
    # new_id: the parcel_id of the version a new or changed row will insert, drawn here so that the
    # owners are inserted straight from cmp, without a join back to the parcels on the natural key
    conn.execute(sql.SQL("""
        CREATE TEMP TABLE cmp ON COMMIT DROP AS
        SELECT q.*, CASE WHEN q.old_id IS NULL OR q.old_hash <> q.h THEN nextval({seq}::regclass) END AS new_id
        FROM (SELECT s.*, {h} AS h, p.parcel_id AS old_id, p.row_hash AS old_hash, p.valid_from AS old_from
              FROM stage s LEFT JOIN cadastral.parcels p
                ON p.valid_to IS NULL AND p.commune_code = s.commune_code
               AND p.sheet_no = s.sheet_no AND p.parcel_no = s.parcel_no
              ORDER BY s.fid OFFSET 0) q  -- ids in feature order; the hash computed once per row
    """).format(h=hash_expr(hashed), seq=sql.Literal(parcel_id_sequence(conn))))
    # An edition older than what the database knows of a parcel (a version after this edition's date,
    # or a retirement at or after it) does not overwrite it: re-running an older file is a no-op, not a
    # revert. A changed parcel whose version in force starts at this very date is a correction of the
    # same edition: it is updated in place (a new version would have an empty validity period).
    conn.execute("""
        DELETE FROM cmp c WHERE EXISTS (
            SELECT 1 FROM cadastral.parcels p
            WHERE p.commune_code = c.commune_code AND p.sheet_no = c.sheet_no AND p.parcel_no = c.parcel_no
              AND ((p.valid_to IS NOT NULL AND p.valid_to >= %(now)s)
                   OR (p.valid_to IS NULL AND p.valid_from > %(now)s)))
          AND (c.old_hash IS DISTINCT FROM c.h)
    """, {"now": now})
    corrected = conn.execute(sql.SQL("""
        UPDATE cadastral.parcels p SET land_use = s.land_use, legal_area_m2 = s.legal_area_m2,
            address = s.address, owner_type = s.owner_type, source = s.source, licence = s.licence,
            run_id = %(run_id)s, row_hash = s.h, geom = {g}
        FROM cmp s WHERE p.parcel_id = s.old_id AND s.old_hash <> s.h AND s.old_from = %(now)s
        RETURNING p.parcel_id
    """).format(g=geom_expr(kind)), {"run_id": run_id, "now": now}).fetchall()
    if corrected:
        ids = [r[0] for r in corrected]
        conn.execute("DELETE FROM private.parcel_owners WHERE parcel_id = ANY(%s)", (ids,))
        conn.execute("""
            INSERT INTO private.parcel_owners (parcel_id, owner_name, id_number, run_id)
            SELECT DISTINCT ON (c.old_id, c.owner_name) c.old_id, c.owner_name, c.id_number, %s
            FROM cmp c WHERE c.old_id = ANY(%s) AND c.owner_name IS NOT NULL
        """, (run_id, ids))
        # what is corrected in place is done: the versioning below must not see it
        conn.execute("UPDATE cmp SET old_hash = h, new_id = NULL WHERE old_id = ANY(%s)", (ids,))
    inserted, updated = conn.execute("""
        SELECT count(*) FILTER (WHERE old_id IS NULL), count(*) FILTER (WHERE old_hash <> h)
        FROM cmp""").fetchone()
    updated += len(corrected)
    unchanged = conn.execute("SELECT count(*) FROM stage").fetchone()[0] - inserted - updated
    # parents named by split/merge lineage, resolved to their versions in force
    conn.execute("""
        CREATE TEMP TABLE lineage ON COMMIT DROP AS
        SELECT c.commune_code, c.sheet_no, c.parcel_no, p.parcel_id AS parent_id
        FROM cmp c, unnest(string_to_array(c.parents, ';')) AS r(ref)
        JOIN cadastral.parcels p
          ON p.valid_to IS NULL
         AND p.sheet_no = split_part(split_part(trim(r.ref), ':', -1), '/', 1)::int
         AND p.parcel_no = split_part(split_part(trim(r.ref), ':', -1), '/', 2)::int
        WHERE c.parents IS NOT NULL AND (c.old_id IS NULL OR c.old_hash <> c.h)
          AND p.commune_code = coalesce(nullif(split_part(trim(r.ref), ':', -2), ''), c.commune_code)
    """)
    conn.execute("UPDATE cadastral.parcels p SET valid_to = %s FROM cmp "
                 "WHERE p.parcel_id = cmp.old_id AND cmp.old_hash <> cmp.h", (now,))
    conn.execute(sql.SQL("""
        INSERT INTO cadastral.parcels (parcel_id, commune_code, sheet_no, parcel_no, land_use, legal_area_m2,
            address, owner_type, valid_from, source, licence, run_id, row_hash, geom)
        OVERRIDING SYSTEM VALUE
        SELECT s.new_id, s.commune_code, s.sheet_no, s.parcel_no, s.land_use, s.legal_area_m2, s.address,
            s.owner_type, %(now)s, s.source, s.licence, %(run_id)s, s.h, {g}
        FROM cmp s WHERE s.new_id IS NOT NULL
    """).format(g=geom_expr(kind)), {"now": now, "run_id": run_id})
    conn.execute("""
        INSERT INTO private.parcel_owners (parcel_id, owner_name, id_number, run_id)
        SELECT c.new_id, c.owner_name, c.id_number, %s  -- one staged row per key (duplicates are rejected)
        FROM cmp c WHERE c.owner_name IS NOT NULL AND c.new_id IS NOT NULL
    """, (run_id,))
    # lineage rows, then retire parents that this file does not carry any more
    conn.execute("""
        INSERT INTO cadastral.parcel_lineage (child_id, parent_id, event, run_id)
        SELECT p.parcel_id, l.parent_id,
               CASE WHEN count(*) OVER (PARTITION BY p.parcel_id) > 1 THEN 'merge' ELSE 'split' END, %s
        FROM lineage l JOIN cadastral.parcels p
          ON p.valid_to IS NULL AND p.commune_code = l.commune_code AND p.sheet_no = l.sheet_no
         AND p.parcel_no = l.parcel_no
        WHERE p.parcel_id <> l.parent_id
        ON CONFLICT DO NOTHING
    """, (run_id,))
    retired = conn.execute("""
        UPDATE cadastral.parcels p SET valid_to = %s
        WHERE p.valid_to IS NULL AND p.parcel_id IN (SELECT parent_id FROM lineage)
          AND NOT EXISTS (SELECT 1 FROM cmp c WHERE c.commune_code = p.commune_code
                          AND c.sheet_no = p.sheet_no AND c.parcel_no = p.parcel_no)
    """, (now,)).rowcount
    return MergeCounts(inserted=inserted, updated=updated, unchanged=unchanged, retired=retired)
