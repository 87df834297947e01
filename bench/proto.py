"""Prototypes of the ingest speed-ups proposed in bench/README.md, installed at run time.

Nothing under ``ingest/`` is edited: each prototype replaces one function of the running process
(module attributes that the job looks up at call time) with a modified copy. They are measured
with ``bench/profile_ingest.py --proto NAMES`` (in process, per phase) and end to end with
``bench/ingest_bench.py --gis-cmd ".venv/bin/python bench/proto.py NAMES"`` (the same CLI as
``gis ingest``, the prototypes applied first).

Prototypes (``all`` = every one):

dupcheck   stage_problems: keep only the duplicate keys in SQL instead of fetching every staged
           row to the client and filtering in Python.
tempbuf    SET temp_buffers = '256MB' on the job's connection (the staging and cmp temp tables
           live in 8 MB of local buffers by default).
fk         first load into an empty table (the existing bulk path): also drop the foreign keys of
           the target table and of the tables referencing it (except those to ingest.runs) and
           re-add them at the end (validated in one pass each) instead of one RI trigger per row.
btree      same bulk path: also drop the target table's btree indexes (not the primary key) and
           rebuild them after the load.
ids        _merge_cadastral: give each new version its parcel_id (nextval) in the cmp table, so
           that owners are inserted straight from cmp (no join back to parcels on the natural key,
           no DISTINCT ON sort).
convert    convert_types / check_codes: vectorised text clean-up (Arrow compute), Python only for
           the rare values that need it; numeric columns skip the str() round trip.
geom       parse the WKB once (the extent check's geometries are reused by normalise) and skip
           force_2d when no geometry has Z.
copy       copy_rows: the binary COPY stream encoded with numpy (one buffer per batch) instead of
           one psycopg write_row call per row.
nojit      SET jit = off on the job's connection.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ORDER = ["dupcheck", "tempbuf", "fk", "fkall", "btree", "ids", "direct", "stream", "convert", "geom", "copy",
         "nojit"]
_BULK = {"fk": False, "btree": False, "fkall": False}


# --- dupcheck ------------------------------------------------------------------------------------
def _install_dupcheck() -> None:
    import ingest.merge as m

    orig = m.stage_problems

    class _Filtering:
        """A connection proxy whose duplicate-key query returns only the rows with n > 1."""

        def __init__(self, conn):
            self._conn = conn

        def __getattr__(self, name):
            return getattr(self._conn, name)

        def execute(self, query, params=None, **kw):
            text = query.as_string(self._conn) if hasattr(query, "as_string") else str(query)
            if "OVER w" in text and "PARTITION BY" in text and text.lstrip().startswith("SELECT fid"):
                query = sql.SQL("SELECT * FROM ({}) q WHERE q.count > 1").format(query)
            return self._conn.execute(query, params, **kw)

    def stage_problems(conn, kind):
        return orig(_Filtering(conn), kind)

    m.stage_problems = stage_problems


# --- tempbuf / nojit: session settings on the job's connection -----------------------------------
_SESSION: list[str] = []


def _install_session() -> None:
    import ingest.job as job

    if getattr(job.connect, "_proto", False):
        return
    orig = job.connect

    def connect(dsn, **kw):
        conn = orig(dsn, **kw)
        for stmt in _SESSION:
            conn.execute(stmt)
        conn.commit()
        return conn

    connect._proto = True
    job.connect = connect


# --- fk / btree: a wider bulk first-load path -----------------------------------------------------
def _bulk_drop(conn, kind) -> list[str]:
    """Drop the GiST (and with btree, all secondary) indexes of the empty target table and (with
    fk) the foreign keys; return the statements that restore them."""
    schema, table = kind.table.split(".")
    restore: list[str] = []
    pattern = "%USING gist%" if not _BULK["btree"] else "%"
    rows = conn.execute(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i "
        "JOIN pg_class c ON c.relname = i.indexname "
        "JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = i.schemaname "
        "JOIN pg_index x ON x.indexrelid = c.oid "
        "WHERE i.schemaname = %s AND i.tablename = %s AND i.indexdef ILIKE %s "
        "AND NOT x.indisprimary "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = c.oid)",
        (schema, table, pattern)).fetchall()
    for name, _ in rows:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(schema, name)))
    restore += [d for _, d in rows]
    if _BULK["fk"]:
        fks = conn.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE contype = 'f' AND (conrelid = %s::regclass OR confrelid = %s::regclass) "
            "AND (%s OR confrelid <> 'ingest.runs'::regclass) "
            "ORDER BY conrelid = %s::regclass DESC, conname",
            (kind.table, kind.table, _BULK["fkall"], kind.table)).fetchall()
        for rel, name, _ in fks:
            conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                sql.SQL(rel), sql.Identifier(name)))
        restore += [f"ALTER TABLE {rel} ADD CONSTRAINT {sql.Identifier(name).as_string(conn)} {d}"
                    for rel, name, d in fks]
    return restore


def _install_bulk() -> None:
    import ingest.merge as m

    if getattr(m._bulk_first_load, "_proto", False):
        return

    def bulk_first_load(conn, kind) -> list[str]:
        schema, table = kind.table.split(".")
        staged = conn.execute("SELECT count(*) FROM stage").fetchone()[0]
        if staged < 20_000:
            return []
        empty = conn.execute(sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM {})").format(
            sql.Identifier(schema, table))).fetchone()[0]
        if not empty:
            return []
        return _bulk_drop(conn, kind)

    # merge() calls _bulk_first_load and runs each returned statement after the merge
    bulk_first_load._proto = True
    m._bulk_first_load = bulk_first_load


# --- ids -------------------------------------------------------------------------------------------
def _seq(conn, table: str, column: str) -> str:
    """nextval() of a column's sequence with the sequence resolved once (a constant regclass), not
    pg_get_serial_sequence() evaluated for every row."""
    name = conn.execute("SELECT pg_get_serial_sequence(%s, %s)", (table, column)).fetchone()[0]
    return sql.Literal(name).as_string(conn) + "::regclass"


def _install_ids() -> None:
    import ingest.merge as m

    def _merge_cadastral(conn, kind, run_id, now):
        hashed = ["land_use", "legal_area_m2", "address", "owner_type", "owner_name", "id_number",
                  "source", "licence"]
        conn.execute(sql.SQL("""
            CREATE TEMP TABLE cmp ON COMMIT DROP AS
            SELECT q.*, CASE WHEN q.old_id IS NULL OR q.old_hash <> q.h
                             THEN nextval({seq}) END AS new_id
            FROM (SELECT s.*, {h} AS h, p.parcel_id AS old_id, p.row_hash AS old_hash
                  FROM stage s LEFT JOIN cadastral.parcels p
                    ON p.valid_to IS NULL AND p.commune_code = s.commune_code
                   AND p.sheet_no = s.sheet_no AND p.parcel_no = s.parcel_no
                  OFFSET 0) q
        """).format(h=m._hash_expr(hashed), seq=sql.SQL(_seq(conn, "cadastral.parcels", "parcel_id"))))
        conn.execute("""
            DELETE FROM cmp c WHERE EXISTS (
                SELECT 1 FROM cadastral.parcels p
                WHERE p.commune_code = c.commune_code AND p.sheet_no = c.sheet_no AND p.parcel_no = c.parcel_no
                  AND coalesce(p.valid_to, p.valid_from) >= %s)
              AND (c.old_hash IS DISTINCT FROM c.h)
        """, (now,))
        inserted, updated = conn.execute("""
            SELECT count(*) FILTER (WHERE old_id IS NULL), count(*) FILTER (WHERE old_hash <> h)
            FROM cmp""").fetchone()
        unchanged = conn.execute("SELECT count(*) FROM stage").fetchone()[0] - inserted - updated
        conn.execute("""
            CREATE TEMP TABLE lineage ON COMMIT DROP AS
            SELECT c.commune_code, c.sheet_no, c.parcel_no, p.parcel_id AS parent_id
            FROM cmp c, unnest(string_to_array(c.parents, ';')) AS r(ref)
            JOIN cadastral.parcels p
              ON p.valid_to IS NULL
             AND p.sheet_no = split_part(split_part(trim(r.ref), ':', -1), '/', 1)::int
             AND p.parcel_no = split_part(split_part(trim(r.ref), ':', -1), '/', 2)::int
            WHERE c.parents IS NOT NULL AND c.new_id IS NOT NULL
              AND p.commune_code = coalesce(nullif(split_part(trim(r.ref), ':', -2), ''), c.commune_code)
        """)
        conn.execute("UPDATE cadastral.parcels p SET valid_to = %s FROM cmp "
                     "WHERE p.parcel_id = cmp.old_id AND cmp.old_hash <> cmp.h", (now,))
        conn.execute(sql.SQL("""
            INSERT INTO cadastral.parcels (parcel_id, commune_code, sheet_no, parcel_no, land_use,
                legal_area_m2, address, owner_type, valid_from, source, licence, run_id, row_hash, geom)
            OVERRIDING SYSTEM VALUE
            SELECT s.new_id, s.commune_code, s.sheet_no, s.parcel_no, s.land_use, s.legal_area_m2, s.address,
                s.owner_type, %(now)s, s.source, s.licence, %(run_id)s, s.h, {g}
            FROM cmp s WHERE s.new_id IS NOT NULL
        """).format(g=m._geom_expr(kind)), {"now": now, "run_id": run_id})
        # one staged row per natural key (duplicates were rejected), so one owner row per new id
        conn.execute("""
            INSERT INTO private.parcel_owners (parcel_id, owner_name, id_number, run_id)
            SELECT c.new_id, c.owner_name, c.id_number, %s
            FROM cmp c WHERE c.owner_name IS NOT NULL AND c.new_id IS NOT NULL
        """, (run_id,))
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
        return m.MergeCounts(inserted=inserted, updated=updated, unchanged=unchanged, retired=retired)

    m._merge_cadastral = _merge_cadastral


# --- direct: first load into an empty table without the cmp table ----------------------------------
def _install_direct() -> None:
    import ingest.merge as m

    orig_create = m.create_stage
    orig_merge = m._merge_cadastral

    def create_stage(conn, kind):
        orig_create(conn, kind)
        conn._bench_direct = False
        if kind.name != "cadastral":
            return
        # the job holds the kind's advisory lock: the table stays empty until this job commits
        if conn.execute("SELECT NOT EXISTS (SELECT 1 FROM cadastral.parcels)").fetchone()[0]:
            # each staged row gets the parcel_id of the version it will insert, during COPY
            conn.execute("ALTER TABLE stage ADD COLUMN new_id int8 "
                         f"DEFAULT nextval({_seq(conn, 'cadastral.parcels', 'parcel_id')})")
            conn._bench_direct = True

    def _merge_cadastral(conn, kind, run_id, now):
        if not getattr(conn, "_bench_direct", False):
            return orig_merge(conn, kind, run_id, now)
        # empty target: every staged row is new; no parent can be in force, so stage_problems has
        # rejected every lineage reference (and drop_rejected removed those rows): no lineage work
        hashed = ["land_use", "legal_area_m2", "address", "owner_type", "owner_name", "id_number",
                  "source", "licence"]
        inserted = conn.execute(sql.SQL("""
            INSERT INTO cadastral.parcels (parcel_id, commune_code, sheet_no, parcel_no, land_use,
                legal_area_m2, address, owner_type, valid_from, source, licence, run_id, row_hash, geom)
            OVERRIDING SYSTEM VALUE
            SELECT s.new_id, s.commune_code, s.sheet_no, s.parcel_no, s.land_use, s.legal_area_m2, s.address,
                s.owner_type, %(now)s, s.source, s.licence, %(run_id)s, {h}, {g}
            FROM stage s
        """).format(h=m._hash_expr(hashed), g=m._geom_expr(kind)), {"now": now, "run_id": run_id}).rowcount
        conn.execute("""
            INSERT INTO private.parcel_owners (parcel_id, owner_name, id_number, run_id)
            SELECT s.new_id, s.owner_name, s.id_number, %s FROM stage s WHERE s.owner_name IS NOT NULL
        """, (run_id,))
        return m.MergeCounts(inserted=inserted, updated=0, unchanged=0, retired=0)

    m.create_stage = create_stage
    m._merge_cadastral = _merge_cadastral


# --- stream: direct first load, merged batch by batch while the client normalises the next --------
def _install_stream() -> None:
    """A database thread stages each normalised batch (COPY into a per-batch temp table) and inserts
    it into cadastral.parcels and the owners right away, in the job's transaction, while the main
    thread reads and normalises the next batch: client and server work overlap on two cores. Only
    for a first load into an empty table (the direct path); indexes and foreign keys are dropped
    before the first batch and restored at the end. Rows rejected at the end (duplicate keys,
    unknown lineage parents) are deleted again; any reject over --max-rejects rolls back anyway."""
    import queue
    import threading

    import ingest.merge as m

    _install_direct()
    orig_create = m.create_stage
    orig_problems = m.stage_problems
    orig_drop = m.drop_rejected
    orig_merge = m._merge_cadastral
    st: dict = {}

    def _copy(conn, kind, rows, table):
        names = ["fid", *kind.field_names, "geom"]
        types = ["int8", *[m.PG_TYPES[f.type] for f in kind.fields], "bytea"]
        columns = []
        for name in names:
            col = rows[name]
            if col.dtype == object:
                arr = col.to_numpy()
                arr = np.where(pd.isna(arr), None, arr) if name != "geom" else arr
            else:
                arr = col.astype(object).where(col.notna(), None).to_numpy()
            columns.append(arr.tolist())
        stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, names)))
        with conn.cursor().copy(stmt) as copy:
            copy.set_types(types)
            for row in zip(*columns):
                copy.write_row(row)

    hashed = ["land_use", "legal_area_m2", "address", "owner_type", "owner_name", "id_number",
              "source", "licence"]

    def worker(conn, kind, q):
        run_id = conn.execute("SELECT currval(pg_get_serial_sequence('ingest.runs', 'run_id'))").fetchone()[0]
        insert = sql.SQL("""
            INSERT INTO cadastral.parcels (parcel_id, commune_code, sheet_no, parcel_no, land_use,
                legal_area_m2, address, owner_type, valid_from, source, licence, run_id, row_hash, geom)
            OVERRIDING SYSTEM VALUE
            SELECT s.new_id, s.commune_code, s.sheet_no, s.parcel_no, s.land_use, s.legal_area_m2, s.address,
                s.owner_type, now(), s.source, s.licence, {run_id}, {h}, {g}
            FROM stage_b s
        """).format(h=m._hash_expr(hashed), g=m._geom_expr(kind), run_id=sql.Literal(run_id))
        while True:
            rows = q.get()
            if rows is None:
                return
            if "error" in st:
                continue  # drain
            try:
                _copy(conn, kind, rows, "stage_b")
                conn.execute("INSERT INTO stage SELECT * FROM stage_b")
                conn.execute(insert)
                conn.execute("INSERT INTO private.parcel_owners (parcel_id, owner_name, id_number, run_id) "
                             "SELECT s.new_id, s.owner_name, s.id_number, %s "
                             "FROM stage_b s WHERE s.owner_name IS NOT NULL", (run_id,))
                conn.execute("TRUNCATE stage_b")
            except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
                st["error"] = exc

    def create_stage(conn, kind):
        orig_create(conn, kind)
        st.clear()
        if not getattr(conn, "_bench_direct", False):
            return
        conn.execute("CREATE TEMP TABLE stage_b (LIKE stage INCLUDING DEFAULTS) ON COMMIT DROP")
        conn.execute("ALTER TABLE stage ALTER COLUMN new_id DROP DEFAULT")
        st["restore"] = _bulk_drop(conn, kind)
        st["queue"] = queue.Queue(maxsize=2)
        st["thread"] = threading.Thread(target=worker, args=(conn, kind, st["queue"]), daemon=True)
        st["thread"].start()

    def copy_rows(conn, kind, rows):
        if "queue" not in st:
            return orig_copy(conn, kind, rows)
        if "error" in st:
            raise st["error"]
        if not rows.empty:
            st["queue"].put(rows)
        return len(rows)

    def flush():
        if "thread" in st and st["thread"].is_alive():
            st["queue"].put(None)
            st["thread"].join()
        if "error" in st:
            raise st["error"]

    def stage_problems(conn, kind):
        flush()
        return orig_problems(conn, kind)

    def drop_rejected(conn, fids):
        if "queue" in st and fids:
            conn.execute("DELETE FROM private.parcel_owners WHERE parcel_id IN "
                         "(SELECT new_id FROM stage WHERE fid = ANY(%s))", (fids,))
            conn.execute("DELETE FROM cadastral.parcels WHERE parcel_id IN "
                         "(SELECT new_id FROM stage WHERE fid = ANY(%s))", (fids,))
        orig_drop(conn, fids)

    def _merge_cadastral(conn, kind, run_id, now):
        if "queue" not in st:
            return orig_merge(conn, kind, run_id, now)
        flush()
        if now != conn.execute("SELECT now()").fetchone()[0]:  # --valid-from
            conn.execute("UPDATE cadastral.parcels SET valid_from = %s WHERE run_id = %s", (now, run_id))
        for stmt in st.pop("restore"):
            conn.execute(stmt)
        inserted = conn.execute("SELECT count(*) FROM stage").fetchone()[0]
        return m.MergeCounts(inserted=inserted, updated=0, unchanged=0, retired=0)

    orig_copy = m.copy_rows
    m.create_stage = create_stage
    m.copy_rows = copy_rows
    m.stage_problems = stage_problems
    m.drop_rejected = drop_rejected
    m._merge_cadastral = _merge_cadastral


# --- convert -----------------------------------------------------------------------------------------
_NULL_WORDS = pa.array(["", "nan", "None", "NaN"])
# str.strip() removes only whitespace, which is never a letter or a digit: a value that starts and
# ends with a letter or a digit is its own strip()
_NO_STRIP = r"(?s)^[\p{L}\p{N}](.*[\p{L}\p{N}])?$"


def _to_arrow_strings(col: pd.Series) -> pa.Array | None:
    """The column as an Arrow string array when every value is a str or missing; else None."""
    if isinstance(col.dtype, pd.StringDtype) or str(col.dtype) == "str":
        arr = pa.array(col, from_pandas=True)
        return arr.cast(pa.string()) if arr.type != pa.string() else arr
    if col.dtype != object:
        return None
    values = col.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
        return None
    return pa.array(values, type=pa.string(), from_pandas=True)


def _fast_text(col: pd.Series) -> tuple[pd.Series, pd.Series] | None:
    """(values, notnull) exactly as convert_types computes them for a text field, in Arrow;
    Python only for the rare values that strip() or the ".0" rule may change."""
    arr = _to_arrow_strings(col)
    if arr is None:
        return None
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    valid = arr.is_valid()
    odd = pc.and_(valid, pc.invert(pc.fill_null(pc.match_substring_regex(arr, _NO_STRIP), False)))
    if pc.any(odd).as_py():
        stripped = [v.strip() for v in arr.filter(odd).to_pylist()]
        arr = pc.replace_with_mask(arr, odd, pa.array(stripped, pa.string()))
    isnull = pc.or_(pc.invert(valid), pc.fill_null(pc.is_in(arr, _NULL_WORDS), False))
    arr = pc.if_else(isnull, pa.scalar(None, pa.string()), arr)
    # integral floats written as text lose the ".0"
    cand = pc.fill_null(pc.ends_with(arr, ".0"), False)
    if pc.any(cand).as_py():
        vals = arr.filter(cand).to_pylist()
        new = [v[:-2] if v[:-2].isdigit() else v for v in vals]
        arr = pc.replace_with_mask(arr, cand, pa.array(new, pa.string()))
    notnull = pd.Series(pc.invert(isnull).to_numpy(zero_copy_only=False), index=col.index)
    if arr.null_count == n:  # the original's .map() infers object for all-None
        return pd.Series([None] * n, index=col.index, dtype=object), notnull
    # the dtype the original's final .map() infers (pandas 3: "str", Arrow-backed, NaN missing)
    out = arr.to_pandas()
    out.index = col.index
    return out, notnull


def _install_convert() -> None:
    import ingest.normalise as nz

    orig_convert = nz.convert_types

    def convert_types(raw, kind, resolved, rej):
        # fields whose text or numeric fast path applies are converted here; the others by the
        # original function, on a frame holding just them (it converts field by field)
        fast = {}
        for f in kind.fields:
            if f.name not in raw:
                continue
            col = raw[f.name]
            src = resolved.get(f.name) or f.name
            if f.type == "text":
                got = _fast_text(col)
                if got is None:
                    continue
                vals, _ = got
            elif f.type in ("int", "float") and pd.api.types.is_numeric_dtype(col.dtype) \
                    and not pd.api.types.is_bool_dtype(col.dtype):
                # str() of a number is never "", "None" or (unless NaN) "nan": notnull is notna
                num = pd.to_numeric(col, errors="coerce")
                if f.type == "int":
                    bad = num.notna() & (np.abs(num - np.round(num)) > 1e-9)
                    if bad.any():
                        rej.add(bad.to_numpy(), lambda i, c=col, s=src: (
                            f"field {s!r}: {c.iloc[i]!r} is not an integer"))
                vals = num.round().astype("Int64") if f.type == "int" else num.astype("Float64")
            else:
                continue
            if f.required:
                rej.add(pd.isna(vals).to_numpy(), f"missing value for {f.name} (source field {src!r})")
            fast[f.name] = vals
        rest = [f.name for f in kind.fields if f.name not in fast]
        slow = orig_convert(raw.drop(columns=list(fast)), _SubKind(kind, rest), resolved, rej) if rest else None
        out = {f.name: (fast[f.name] if f.name in fast else slow[f.name]) for f in kind.fields}
        return pd.DataFrame(out, index=raw.index)

    orig_codes = nz.check_codes

    def _upper(col: pd.Series) -> pd.Series:
        arr = _to_arrow_strings(col)
        if arr is None or pc.all(pc.string_is_ascii(arr)).as_py() not in (True, None):
            return col.map(lambda v: v.upper() if isinstance(v, str) else v)
        up = pc.ascii_upper(arr).to_numpy(zero_copy_only=False).astype(object)
        return pd.Series(up, index=col.index, dtype=object).infer_objects()

    def check_codes(df, kind, lookups, rej):
        # the original, with the two upper-casing maps vectorised (ASCII values; else the map)
        if kind.name == "cadastral":
            lu = _upper(df["land_use"])
            df["land_use"] = lu
            unknown = lu.notna() & ~lu.isin(lookups.land_use)
            rej.add(unknown.to_numpy(), lambda i: f"unknown land-use code {lu.iloc[i]!r}")
            ot = _upper(df["owner_type"])
            df["owner_type"] = ot
            bad_ot = ot.notna() & ~ot.isin(lookups.owner_type)
            rej.add(bad_ot.to_numpy(), lambda i: f"unknown owner-type code {ot.iloc[i]!r}")
            for name in ("sheet_no", "parcel_no"):
                nonpos = (df[name].fillna(1) <= 0).to_numpy(dtype=bool)
                rej.add(nonpos, lambda i, n=name: f"{n} must be a positive number, not {df[n].iloc[i]}")
            neg = (df["legal_area_m2"].fillna(0) < 0).to_numpy(dtype=bool)
            rej.add(neg, "legal area is negative")
            for f in kind.fields:
                if f.type in ("int", "float") and f.name not in ("legal_area_m2",):
                    neg = (df[f.name].fillna(0) < 0).to_numpy(dtype=bool)
                    if f.name not in ("sheet_no", "parcel_no"):
                        rej.add(neg, f"{f.name} is negative")
            return None
        return orig_codes(df, kind, lookups, rej)

    nz.convert_types = convert_types
    nz.check_codes = check_codes


class _SubKind:
    """A kind restricted to some fields (for the original convert_types)."""

    def __init__(self, kind, names):
        self._kind = kind
        self.fields = tuple(f for f in kind.fields if f.name in names)

    def __getattr__(self, name):
        return getattr(self._kind, name)


# --- geom --------------------------------------------------------------------------------------------
class _ShapelyNo2D:
    """shapely, except that force_2d returns 2D input untouched (geometries are immutable)."""

    def __getattr__(self, name):
        return getattr(shapely, name)

    @staticmethod
    def force_2d(geoms):
        if not np.any(shapely.has_z(geoms)):
            return geoms
        return shapely.force_2d(geoms)


def _install_geom() -> None:
    import ingest.job as job
    import ingest.normalise as nz
    import ingest.reader as rd

    orig_extent = job._check_extent
    orig_geometries = rd.geometries

    class _ParsedWkb(np.ndarray):
        pass

    def _check_extent(src, source_crs, batch, *rest):
        geoms = shapely.from_wkb(batch.wkb, on_invalid="ignore")
        batch._geoms = geoms
        keep = geoms[~pd.isna(geoms)]
        if len(keep):
            bounds = tuple(float(b) for b in shapely.total_bounds(keep))
            if not any(np.isnan(bounds)):
                job.gcrs.check_extent(source_crs, bounds, label=str(src.path.name))

    def geometries(batch):
        cached = batch.__dict__.pop("_geoms", None)
        return cached if cached is not None else orig_geometries(batch)

    job._check_extent = _check_extent
    rd.geometries = geometries
    nz.shapely = _ShapelyNo2D()
    del orig_extent


# --- copy --------------------------------------------------------------------------------------------
_SIGNATURE = b"PGCOPY\n\xff\r\n\0" + b"\0\0\0\0" + b"\0\0\0\0"
_TRAILER = b"\xff\xff"


def _be_fixed(values: np.ndarray, dtype: str, width: int) -> pa.Array:
    """Big-endian fixed-width payloads as an Arrow binary array."""
    buf = pa.py_buffer(np.ascontiguousarray(values.astype(dtype)).tobytes())
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), len(values), [None, buf]).cast(pa.binary())


def encode_binary_copy(columns: list[tuple[str, object]]) -> bytes:
    """PostgreSQL binary COPY data (signature, tuples, trailer) for typed columns, built with Arrow
    kernels: per column a binary array of (4-byte length + payload) per row, joined row-wise.

    ``columns``: (pg type, values) with types int8, float8, text, bytea; NULL as None / NaN / pd.NA.
    """
    n = len(columns[0][1])
    parts: list[pa.Array] = [_be_fixed(np.full(n, len(columns)), ">i2", 2)]
    null_len = pa.scalar(b"\xff\xff\xff\xff", pa.binary())
    for typ, values in columns:
        if typ in ("int8", "float8"):
            s = pd.Series(values)
            valid = s.notna().to_numpy()
            if typ == "int8":
                payload = _be_fixed(s.fillna(0).to_numpy(dtype=np.int64), ">i8", 8)
            else:
                payload = _be_fixed(s.astype("float64").fillna(0.0).to_numpy(dtype=np.float64), ">f8", 8)
            length = _be_fixed(np.full(n, 8), ">i4", 4)
            mask = pa.array(~valid)
        else:
            if isinstance(values, pd.Series) and str(values.dtype) == "str":
                arr = pa.array(values, from_pandas=True)  # Arrow-backed: no Python objects
                if isinstance(arr, pa.ChunkedArray):
                    arr = arr.combine_chunks()
                if pa.types.is_large_string(arr.type) or pa.types.is_string_view(arr.type):
                    arr = arr.cast(pa.string())
            else:
                arr = pa.array(np.asarray(values, dtype=object),
                               type=pa.binary() if typ == "bytea" else pa.string(), from_pandas=True)
            if arr.type == pa.string():
                arr = arr.cast(pa.binary())
            lens = pc.binary_length(arr).fill_null(0).to_numpy(zero_copy_only=False).astype(">i4")
            length = _be_fixed(lens, ">i4", 4)
            mask = arr.is_null()
            payload = arr.fill_null(b"")
        parts.append(pc.if_else(mask, null_len, length))
        parts.append(pc.if_else(mask, pa.scalar(b"", pa.binary()), payload))
    rows = pc.binary_join_element_wise(*parts, pa.scalar(b"", pa.binary()))
    if isinstance(rows, pa.ChunkedArray):
        rows = rows.combine_chunks()
    rows = rows.cast(pa.large_binary())
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int64, count=n + 1, offset=rows.offset * 8)
    body = rows.buffers()[2].to_pybytes()[offsets[0]:offsets[-1]]
    return _SIGNATURE + body + _TRAILER


def _install_copy() -> None:
    import ingest.merge as m

    orig = m.copy_rows

    def copy_rows(conn, kind, rows):
        if rows.empty:
            return 0
        names = ["fid", *kind.field_names, "geom"]
        types = ["int8", *[m.PG_TYPES[f.type] for f in kind.fields], "bytea"]
        if any(t not in ("int8", "float8", "text", "bytea") for t in types):
            return orig(conn, kind, rows)
        cols = []
        for name, typ in zip(names, types):
            col = rows[name]
            if typ == "text" and str(col.dtype) == "str":
                cols.append((typ, col))
            elif typ in ("text", "bytea"):
                vals = col.to_numpy(dtype=object)
                if typ == "text" and pd.api.types.infer_dtype(vals, skipna=True) not in ("string", "empty"):
                    return orig(conn, kind, rows)  # non-str values: the original's dumpers decide
                cols.append((typ, vals))
            else:
                cols.append((typ, col.to_numpy(dtype=object) if col.dtype == object else col.to_numpy()))
        data = encode_binary_copy(cols)
        stmt = sql.SQL("COPY stage ({}) FROM STDIN (FORMAT BINARY)").format(
            sql.SQL(", ").join(map(sql.Identifier, names)))
        with conn.cursor().copy(stmt) as copy:
            copy.write(data)
        return len(rows)

    m.copy_rows = copy_rows


# --- applying ----------------------------------------------------------------------------------------
def apply(spec: str) -> list[str]:
    names = ORDER if spec.strip() == "all" else [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [n for n in names if n not in ORDER]
    if unknown:
        raise SystemExit(f"unknown prototype(s) {unknown}; known: {ORDER}")
    for name in names:
        if name == "dupcheck":
            _install_dupcheck()
        elif name == "tempbuf":
            _SESSION.append("SET temp_buffers = '256MB'")
            _install_session()
        elif name == "nojit":
            _SESSION.append("SET jit = off")
            _install_session()
        elif name == "direct":
            _install_direct()
        elif name == "stream":
            _install_stream()
        elif name in ("fk", "btree", "fkall"):
            if name == "fkall":
                _BULK["fk"] = True
            _BULK[name] = True
            _install_bulk()
        elif name == "ids":
            _install_ids()
        elif name == "convert":
            _install_convert()
        elif name == "geom":
            _install_geom()
        elif name == "copy":
            _install_copy()
    return [n for n in ORDER if n in names]


def main() -> None:
    """``proto.py NAMES ingest KIND FILE ...``: the gis CLI with the prototypes applied."""
    spec = sys.argv[1]
    apply(spec)
    sys.argv = ["gis", *sys.argv[2:]]
    from gis.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
