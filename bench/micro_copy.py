#!/usr/bin/env python
"""Client CPU of copy_rows: psycopg write_row (ingest/merge.py) against the Arrow-built binary COPY
of bench/proto.py, on the normalised rows of one 50,000-feature batch (alternating, 5 rounds each).

    .venv/bin/python bench/micro_copy.py
"""
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import psycopg  # noqa: E402

import check_proto  # noqa: E402
import ingest_bench as ib  # noqa: E402
from gis import db  # noqa: E402


def main():
    import ingest.merge as m
    import proto
    from ingest.kinds import get_kind

    kind = get_kind("cadastral")
    path = ib.dataset(100_000, 2025, ib.OUT)[0]
    rows = check_proto.normalised(path, batches=1)[0].rows  # 20,000-row batches there
    rows = check_proto.pd.concat([rows] * 3, ignore_index=True)  # ~60,000 rows
    dsn = ib.with_db(db.resolve_dsn(ib.bench_settings(ib.DEFAULT_DATA_DIR)), "bench_gis")
    orig = m.copy_rows
    proto.apply("copy")
    fast = m.copy_rows
    res = {"write_row": [], "arrow": []}
    with psycopg.connect(dsn) as conn:
        m.create_stage(conn, kind)
        for _ in range(5):
            for name, fn in (("write_row", orig), ("arrow", fast)):
                c0, t0 = time.process_time(), time.perf_counter()
                fn(conn, kind, rows)
                res[name].append((time.process_time() - c0, time.perf_counter() - t0))
        conn.rollback()
    for name, v in res.items():
        cpu = sorted(c for c, _ in v)
        print(f"{name:9s}: client CPU median {cpu[len(cpu) // 2]:.3f} s (min {cpu[0]:.3f}) for {len(rows):,} rows "
              f"-> {cpu[len(cpu) // 2] / len(rows) * 1e6:.2f} us/row")


if __name__ == "__main__":
    main()
