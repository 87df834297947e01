#!/usr/bin/env python
"""The proposed ingest patches as code: applied to a COPY of ingest/, never to ingest/ itself.

    .venv/bin/python bench/patches.py            # -> bench/out/patched/ingest/ + bench/out/patches.diff
    .venv/bin/python bench/patches.py --only bulk,ids

Each patch is a list of exact (old, new) text replacements; a patch whose old text is no longer in
the current ingest/ (someone changed it meanwhile) is reported and skipped. The patched package is
importable ahead of the real one, which is how the benchmark measures the patches end to end:

    PYTHONPATH=bench/out/patched .venv/bin/python bench/ingest_bench.py --gis-cmd \
        "env PYTHONPATH=bench/out/patched .venv/bin/gis ingest" --label "gis ingest (patched)"

(``ingest_bench.py --patched`` does exactly that.)
"""

from __future__ import annotations

import argparse
import difflib
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"

PATCHES: dict[str, list[tuple[str, str, str]]] = {}  # name -> [(file, old, new)]


def patch(name: str, file: str, old: str, new: str) -> None:
    PATCHES.setdefault(name, []).append((file, old, new))


# --- bulk: the first-load path also drops secondary btree indexes and foreign keys ----------------
patch("bulk", "merge.py", '''def _bulk_first_load(conn: psycopg.Connection, kind: Kind) -> list[str]:
    """For a large load into an empty table, drop its GiST indexes (rebuilt after, in one sorted
    pass, inside the same transaction) instead of growing them row by row."""
    schema, table = kind.table.split(".")
    staged = conn.execute("SELECT count(*) FROM stage").fetchone()[0]
    if staged < 20_000:
        return []
    empty = conn.execute(sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM {})").format(
        sql.Identifier(schema, table))).fetchone()[0]
    if not empty:
        return []
    rows = conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = %s "
        "AND indexdef ILIKE %s", (schema, table, "%USING gist%")).fetchall()
    for name, _ in rows:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(schema, name)))
    return [d for _, d in rows]
''', '''def _bulk_first_load(conn: psycopg.Connection, kind: Kind) -> list:
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
''')
patch("bulk", "merge.py", '''            for indexdef in bulk:
                conn.execute(indexdef)''', '''            for stmt in bulk:  # indexes, then foreign keys (whose checks use them)
                conn.execute(stmt)''')

# --- ids: parcel ids drawn in cmp; owners straight from cmp ---------------------------------------
patch("ids", "merge.py", '''    conn.execute(sql.SQL("""
        CREATE TEMP TABLE cmp ON COMMIT DROP AS
        SELECT s.*, {h} AS h, p.parcel_id AS old_id, p.row_hash AS old_hash
        FROM stage s LEFT JOIN cadastral.parcels p
          ON p.valid_to IS NULL AND p.commune_code = s.commune_code
         AND p.sheet_no = s.sheet_no AND p.parcel_no = s.parcel_no
    """).format(h=_hash_expr(hashed)))''', '''    # new_id: the parcel_id of the version this row will insert (new or changed rows), drawn here so
    # that the owners are inserted without a join back to cadastral.parcels on the natural key (the
    # sequence is resolved once: pg_get_serial_sequence() per row costs ~3 s a million rows)
    seq = conn.execute("SELECT pg_get_serial_sequence('cadastral.parcels', 'parcel_id')").fetchone()[0]
    conn.execute(sql.SQL("""
        CREATE TEMP TABLE cmp ON COMMIT DROP AS
        SELECT q.*, CASE WHEN q.old_id IS NULL OR q.old_hash <> q.h THEN nextval({seq}::regclass) END AS new_id
        FROM (SELECT s.*, {h} AS h, p.parcel_id AS old_id, p.row_hash AS old_hash
              FROM stage s LEFT JOIN cadastral.parcels p
                ON p.valid_to IS NULL AND p.commune_code = s.commune_code
               AND p.sheet_no = s.sheet_no AND p.parcel_no = s.parcel_no
              OFFSET 0) q  -- OFFSET 0: h computed once per row, not once per reference
    """).format(h=_hash_expr(hashed), seq=sql.Literal(seq)))''')
patch("ids", "merge.py", '''        INSERT INTO cadastral.parcels (commune_code, sheet_no, parcel_no, land_use, legal_area_m2, address,
            owner_type, valid_from, source, licence, run_id, row_hash, geom)
        SELECT s.commune_code, s.sheet_no, s.parcel_no, s.land_use, s.legal_area_m2, s.address, s.owner_type,
            %(now)s, s.source, s.licence, %(run_id)s, s.h, {g}
        FROM cmp s WHERE s.old_id IS NULL OR s.old_hash <> s.h''', '''        INSERT INTO cadastral.parcels (parcel_id, commune_code, sheet_no, parcel_no, land_use, legal_area_m2,
            address, owner_type, valid_from, source, licence, run_id, row_hash, geom)
        OVERRIDING SYSTEM VALUE
        SELECT s.new_id, s.commune_code, s.sheet_no, s.parcel_no, s.land_use, s.legal_area_m2, s.address,
            s.owner_type, %(now)s, s.source, s.licence, %(run_id)s, s.h, {g}
        FROM cmp s WHERE s.new_id IS NOT NULL''')
patch("ids", "merge.py", '''        INSERT INTO private.parcel_owners (parcel_id, owner_name, id_number, run_id)
        SELECT DISTINCT ON (p.parcel_id, c.owner_name) p.parcel_id, c.owner_name, c.id_number, %s
        FROM cmp c JOIN cadastral.parcels p
          ON p.valid_to IS NULL AND p.commune_code = c.commune_code AND p.sheet_no = c.sheet_no
         AND p.parcel_no = c.parcel_no
        WHERE c.owner_name IS NOT NULL AND (c.old_id IS NULL OR c.old_hash <> c.h)''', '''        INSERT INTO private.parcel_owners (parcel_id, owner_name, id_number, run_id)
        SELECT c.new_id, c.owner_name, c.id_number, %s  -- one staged row per key: no duplicates
        FROM cmp c WHERE c.owner_name IS NOT NULL AND c.new_id IS NOT NULL''')

# --- geom: WKB parsed once (extent check -> normalise); force_2d only when some geometry has Z ----
patch("geom", "job.py", '''                    _check_extent(src, source_crs, batch)''',
      '''                    batch.geoms = _check_extent(src, source_crs, batch)''')
patch("geom", "job.py", '''def _check_extent(src, source_crs, batch) -> None:
    geoms = shapely.from_wkb(batch.wkb, on_invalid="ignore")
    geoms = geoms[~pd.isna(geoms)]
    if len(geoms):
        bounds = tuple(float(b) for b in shapely.total_bounds(geoms))
        if not any(np.isnan(bounds)):
            gcrs.check_extent(source_crs, bounds, label=str(src.path.name))''', '''def _check_extent(src, source_crs, batch) -> np.ndarray:
    """Check the batch's extent; return its parsed geometries (normalise reuses them)."""
    parsed = shapely.from_wkb(batch.wkb, on_invalid="ignore")
    geoms = parsed[~pd.isna(parsed)]
    if len(geoms):
        bounds = tuple(float(b) for b in shapely.total_bounds(geoms))
        if not any(np.isnan(bounds)):
            gcrs.check_extent(source_crs, bounds, label=str(src.path.name))
    return parsed''')
patch("geom", "reader.py", '''    fids: np.ndarray             # 1-based position of each feature in the layer
''', '''    fids: np.ndarray             # 1-based position of each feature in the layer
    geoms: np.ndarray | None = None  # the parsed geometries, once parsed (see geometries())
''')
patch("geom", "reader.py", '''    """Shapely geometries of a batch (None where the WKB is missing or unreadable)."""
    return shapely.from_wkb(batch.wkb, on_invalid="ignore")''', '''    """Shapely geometries of a batch (None where the WKB is missing or unreadable)."""
    if batch.geoms is not None:
        return batch.geoms
    return shapely.from_wkb(batch.wkb, on_invalid="ignore")''')
patch("geom", "normalise.py", '''    live = rej.ok
    geoms[live] = shapely.force_2d(geoms[live])
''', '''    live = rej.ok
    if shapely.has_z(geoms[live]).any():
        geoms[live] = shapely.force_2d(geoms[live])
''')

# --- convert: text fields cleaned in Arrow; numeric columns skip the str() round trip -------------
patch("convert", "normalise.py", '''import numpy as np
import pandas as pd
import shapely
''', '''import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely
''')
patch("convert", "normalise.py", '''        notnull = col.notna() & ~col.astype(str).str.strip().isin(["", "nan", "None", "NaN"])
        if f.type == "text":
            vals = pd.Series(''', '''        fast = _clean_text(col) if f.type == "text" else None
        if fast is not None:
            notnull = fast[1]
        elif _is_number(col):  # str() of a number is never "", "None" or, unless NaN, "nan"
            notnull = col.notna()
        else:
            notnull = col.notna() & ~col.astype(str).str.strip().isin(["", "nan", "None", "NaN"])
        if fast is not None:
            vals = fast[0]
        elif f.type == "text":
            vals = pd.Series(''')
patch("convert", "normalise.py", '''_ISO_DATE = ''', '''_NULL_TEXT = pa.array(["", "nan", "None", "NaN"])
# str.strip() removes whitespace only, and whitespace is never a letter or a digit: a value that
# starts and ends with a letter or a digit is its own strip()
_STRIPPED = r"(?s)^[\\p{L}\\p{N}](.*[\\p{L}\\p{N}])?$"


def _is_number(col: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype)


def _arrow_text(col: pd.Series) -> pa.Array | None:
    """The column as an Arrow string array when every value is a str or missing, else None."""
    if str(col.dtype) == "str" or isinstance(col.dtype, pd.StringDtype):
        arr = pa.array(col, from_pandas=True)
    elif col.dtype == object:
        values = col.to_numpy(dtype=object)
        if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
            return None
        arr = pa.array(values, type=pa.string(), from_pandas=True)
    else:
        return None
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.cast(pa.string()) if arr.type != pa.string() else arr


def _clean_text(col: pd.Series) -> tuple[pd.Series, pd.Series] | None:
    """A text field's (values, notnull) as the row-by-row code computes them, in Arrow: values
    stripped, "", "nan", "None", "NaN" missing, "12.0" -> "12". Python touches only the rare values
    that strip() or the ".0" rule may change. None when some value is not a str."""
    arr = _arrow_text(col)
    if arr is None:
        return None
    valid = arr.is_valid()
    odd = pc.and_(valid, pc.invert(pc.fill_null(pc.match_substring_regex(arr, _STRIPPED), False)))
    if pc.any(odd).as_py():
        arr = pc.replace_with_mask(arr, odd, pa.array([v.strip() for v in arr.filter(odd).to_pylist()],
                                                      pa.string()))
    isnull = pc.or_(pc.invert(valid), pc.fill_null(pc.is_in(arr, _NULL_TEXT), False))
    arr = pc.if_else(isnull, pa.scalar(None, pa.string()), arr)
    dot0 = pc.fill_null(pc.ends_with(arr, ".0"), False)
    if pc.any(dot0).as_py():
        arr = pc.replace_with_mask(arr, dot0, pa.array(
            [v[:-2] if v[:-2].isdigit() else v for v in arr.filter(dot0).to_pylist()], pa.string()))
    notnull = pd.Series(pc.invert(isnull).to_numpy(zero_copy_only=False), index=col.index)
    if arr.null_count == len(arr):  # the row-by-row code's .map() infers object for all-None
        return pd.Series([None] * len(arr), index=col.index, dtype=object), notnull
    out = arr.to_pandas()  # pandas' "str" dtype, as the row-by-row code's .map() infers
    out.index = col.index
    return out, notnull


def _upper(col: pd.Series) -> pd.Series:
    """str.upper() of the str values (vectorised when they are all ASCII)."""
    arr = _arrow_text(col)
    if arr is None or arr.null_count == len(arr) or pc.all(pc.string_is_ascii(arr)).as_py() is False:
        return col.map(lambda v: v.upper() if isinstance(v, str) else v)
    out = pc.ascii_upper(arr).to_pandas()
    out.index = col.index
    return out


_ISO_DATE = ''')
patch("convert", "normalise.py", '''        lu = df["land_use"].map(lambda v: v.upper() if isinstance(v, str) else v)''',
      '''        lu = _upper(df["land_use"])''')
patch("convert", "normalise.py", '''        ot = df["owner_type"].map(lambda v: v.upper() if isinstance(v, str) else v)''',
      '''        ot = _upper(df["owner_type"])''')


def build(only: list[str] | None, dest: Path) -> tuple[list[str], list[str]]:
    """Copy ingest/ to dest/ingest and apply the patches; (applied, skipped) patch names."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(ROOT / "ingest", dest / "ingest", ignore=shutil.ignore_patterns("__pycache__"))
    applied, skipped = [], []
    for name, edits in PATCHES.items():
        if only and name not in only:
            continue
        texts = {}
        ok = True
        for file, old, new in edits:
            text = texts.get(file) or (dest / "ingest" / file).read_text()
            if text.count(old) != 1:
                ok = False
                print(f"patch {name}: {file} no longer holds the expected text ({text.count(old)} matches): "
                      "skipped", file=sys.stderr)
                break
            texts[file] = text.replace(old, new)
        if ok:
            for file, text in texts.items():
                (dest / "ingest" / file).write_text(text)
            applied.append(name)
        else:
            skipped.append(name)
    return applied, skipped


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="", help="comma-separated patch names (default: all)")
    ap.add_argument("--dest", type=Path, default=OUT / "patched")
    args = ap.parse_args()
    only = [s for s in args.only.split(",") if s] or None
    applied, skipped = build(only, args.dest)
    diff = []
    for f in sorted((ROOT / "ingest").glob("*.py")):
        new = args.dest / "ingest" / f.name
        a, b = f.read_text().splitlines(keepends=True), new.read_text().splitlines(keepends=True)
        diff += difflib.unified_diff(a, b, f"a/ingest/{f.name}", f"b/ingest/{f.name}")
    out = OUT / ("patches.diff" if not only else f"patches-{'+'.join(only)}.diff")
    out.write_text("".join(diff))
    print(f"applied: {', '.join(applied) or '-'}; skipped: {', '.join(skipped) or '-'}; "
          f"package: {args.dest.relative_to(ROOT)}/ingest; diff: {out.relative_to(ROOT)}")
    return 0 if not skipped else 1


if __name__ == "__main__":
    raise SystemExit(main())
