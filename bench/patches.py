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


# bulk, geom and convert were applied to ingest/ on 2026-11-26 (see git log); only the
# proposals not yet applied are kept here.

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
