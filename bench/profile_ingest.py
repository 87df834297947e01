#!/usr/bin/env python
"""Where the time of ``gis ingest cadastral`` goes: per-phase and per-SQL-statement timings.

Runs :func:`ingest.job.run_ingest` in this process against a fresh database ``bench_prof`` of the
bench cluster (``var/bench``), with timers wrapped around the job's phases (read, normalise and its
parts, the extent check, COPY, stage checks, each merge statement, index rebuild, commit, ANALYZE),
then the idempotent re-run. Nothing in ``ingest/`` is edited: the timers are installed at run time.

    .venv/bin/python bench/profile_ingest.py --n 100000
    .venv/bin/python bench/profile_ingest.py --n 1000000 --cprofile     # + cProfile top functions

The job stages batches on a worker thread (``ingest.loader``) while the main thread normalises the
next one: phases are timed per thread (client CPU: ``time.thread_time``), the statements the worker
runs are labelled ``worker:``, and the backend CPU of a main-thread phase includes whatever the
worker's statements cost meanwhile. The totals (client CPU of the process, backend CPU of the job's
connection) are exact. Results go to ``bench/out/profile_*.json``.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import functools
import io
import json
import os
import pstats
import re
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

import ingest_bench as ib  # noqa: E402
from gis import db  # noqa: E402

PROF_DB = "bench_prof"


_HZ = os.sysconf("SC_CLK_TCK")


def backend_cpu(pid: int | None) -> float:
    """CPU seconds used so far by a PostgreSQL backend (same machine), 0 when unknown."""
    if not pid:
        return 0.0
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(f[11]) + int(f[12])) / _HZ


class Timers:
    """Wall time, client CPU (this process, all threads) and backend CPU of the job's connection."""

    def __init__(self) -> None:
        self.t: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.be: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.order: list[str] = []
        self.backend_pid: int | None = None

    def snap(self) -> tuple[float, float, float]:
        return time.perf_counter(), time.thread_time(), backend_cpu(self.backend_pid)

    def add(self, key: str, start: tuple[float, float, float]) -> None:
        end = self.snap()
        if key not in self.t:
            self.order.append(key)
        self.t[key] += end[0] - start[0]
        self.cpu[key] += end[1] - start[1]
        self.be[key] += max(0.0, end[2] - start[2])
        self.calls[key] += 1

    def wrap(self, owner, name: str, key: str | None = None):
        fn = getattr(owner, name)
        key = key or name

        @functools.wraps(fn)
        def wrapper(*a, **kw):
            t0 = self.snap()
            try:
                return fn(*a, **kw)
            finally:
                self.add(key, t0)

        setattr(owner, name, wrapper)
        return fn

    def wrap_gen(self, owner, name: str, key: str):
        fn = getattr(owner, name)

        @functools.wraps(fn)
        def wrapper(*a, **kw):
            it = iter(fn(*a, **kw))
            while True:
                t0 = self.snap()
                try:
                    item = next(it)
                except StopIteration:
                    self.add(key, t0)
                    return
                self.add(key, t0)
                yield item

        setattr(owner, name, wrapper)


_SQL_LABELS = [
    (r"^CREATE TEMP TABLE stage", "sql: create stage"),
    (r'^COPY "?stage_batch', "sql: direct: COPY batch into stage_batch"),
    (r'^COPY "?stage', "sql: copy (server wait inside copy_rows)"),
    (r"^INSERT INTO stage ", "sql: direct: keys into stage"),
    (r"^TRUNCATE stage_batch", "sql: direct: truncate stage_batch"),
    (r"OVERRIDING SYSTEM VALUE.*FROM stage_batch", "sql: direct: INSERT batch INTO parcels"),
    (r"^INSERT INTO private.parcel_owners.*FROM stage_batch", "sql: direct: INSERT batch owners"),
    (r"^INSERT INTO cadastral.parcel_lineage", "sql: merge: INSERT lineage"),
    (r"PARTITION BY", "sql: stage_problems duplicate keys (window)"),
    (r"WITH refs AS", "sql: stage_problems lineage parents"),
    (r"^SELECT count\(\*\) FROM stage", "sql: count(*) stage"),
    (r"^SELECT NOT EXISTS", "sql: bulk-load: target empty?"),
    (r"^SELECT i?\.?indexname, i?\.?indexdef", "sql: bulk-load: list indexes"),
    (r"^SELECT conrelid", "sql: bulk-load: list foreign keys"),
    (r"^DROP INDEX", "sql: bulk-load: drop gist index"),
    (r"^CREATE INDEX .* USING gist", "sql: bulk-load: rebuild gist index"),
    (r"^CREATE (UNIQUE )?INDEX", "sql: bulk-load: rebuild btree indexes"),
    (r"^ALTER TABLE .* DROP CONSTRAINT", "sql: bulk-load: drop foreign keys"),
    (r"^ALTER TABLE .* ADD CONSTRAINT", "sql: bulk-load: re-add foreign keys (validation)"),
    (r"^SET ", "sql: session settings"),
    (r"CREATE TEMP TABLE cmp", "sql: merge: cmp = stage LEFT JOIN parcels + md5 hash"),
    (r"^DELETE FROM cmp", "sql: merge: DELETE older-edition rows from cmp"),
    (r"FILTER \(WHERE old_id IS NULL\)", "sql: merge: count inserted/updated"),
    (r"CREATE TEMP TABLE lineage", "sql: merge: lineage temp table"),
    (r"^UPDATE cadastral.parcels p SET valid_to = %s FROM cmp", "sql: merge: close changed versions"),
    (r"^INSERT INTO cadastral.parcels", "sql: merge: INSERT INTO parcels (ST_Multi(ST_GeomFromEWKB))"),
    (r"^INSERT INTO private.parcel_owners", "sql: merge: INSERT owners"),
    (r"^INSERT INTO cadastral.parcel_lineage", "sql: merge: INSERT lineage"),
    (r"^UPDATE cadastral.parcels p SET valid_to = %s\s+WHERE p.valid_to IS NULL", "sql: merge: retire parents"),
    (r"^ANALYZE", "sql: ANALYZE (after commit)"),
    (r"^INSERT INTO ingest.runs", "sql: ingest.runs insert"),
    (r"^UPDATE ingest.runs", "sql: ingest.runs update"),
]


def _label(conn, query) -> str:
    try:
        text = query if isinstance(query, str) else query.as_string(conn)
    except Exception:
        text = str(query)
    text = " ".join(text.split())
    worker = "" if threading.current_thread() is threading.main_thread() else "worker: "
    for pat, lab in _SQL_LABELS:
        if re.search(pat, text, re.S):
            return worker + lab
    return worker + "sql: other (" + text[:50] + ")"


def instrument(tm: Timers) -> None:
    """Install the timers (module attributes that the job looks up at call time)."""
    import ingest.job as job
    import ingest.merge as m
    import ingest.normalise as nz
    import ingest.reader as rd
    import ingest.mapping as mp

    tm.wrap(job, "open_source", "open_source (incl. sha256 checksum)")
    tm.wrap(rd, "file_checksum", "  of which file_checksum (sha256)")
    tm.wrap_gen(job, "iter_batches", "read: pyogrio Arrow batches + NFC text")
    tm.wrap(job, "normalise_batch", "normalise (total)")
    tm.wrap(rd, "geometries", "  normalise: shapely.from_wkb")
    tm.wrap(mp.Mapping, "apply", "  normalise: mapping.apply")
    tm.wrap(nz, "convert_types", "  normalise: convert_types")
    tm.wrap(nz, "check_codes", "  normalise: check_codes")
    tm.wrap(nz, "normalise_geometry", "  normalise: normalise_geometry (validity, reproject)")
    tm.wrap(job, "_check_extent", "extent check (from_wkb again + bounds)")
    tm.wrap(m, "create_stage", "create_stage")
    tm.wrap(m, "copy_rows", "copy_rows (Arrow -> binary COPY)")
    tm.wrap(m, "stage_problems", "stage_problems")
    tm.wrap(m, "merge", "merge (total, incl. index rebuild)")

    orig_exec = psycopg.Connection.execute

    def execute(self, query, params=None, **kw):
        t0 = tm.snap()
        try:
            return orig_exec(self, query, params, **kw)
        finally:
            tm.add(_label(self, query), t0)

    psycopg.Connection.execute = execute

    orig_exit = psycopg.Transaction.__exit__

    def tx_exit(self, exc_type, exc, tb):
        t0 = tm.snap()
        try:
            return orig_exit(self, exc_type, exc, tb)
        finally:
            tm.add("sql: COMMIT (transaction exit)", t0)

    psycopg.Transaction.__exit__ = tx_exit

    # the server side of COPY: time of the copy block exit (flush + wait for the server)
    orig_copy_exit = psycopg.Copy.__exit__

    def copy_exit(self, *a):
        t0 = tm.snap()
        try:
            return orig_copy_exit(self, *a)
        finally:
            tm.add("  copy_rows: COPY end (flush + server)", t0)

    psycopg.Copy.__exit__ = copy_exit

    # the job's connection: its backend's CPU is read from /proc
    orig_connect = job.connect

    def connect(dsn, **kw):
        conn = orig_connect(dsn, **kw)
        tm.backend_pid = conn.info.backend_pid
        tm.backend_start = backend_cpu(tm.backend_pid)
        orig_close = conn.close

        def close():  # the backend's total CPU, read before it exits
            tm.backend_total = backend_cpu(tm.backend_pid) - tm.backend_start
            orig_close()

        conn.close = close
        return conn

    job.connect = connect


def fresh_db(cluster_dsn: str, name: str) -> str:
    admin = ib.with_db(cluster_dsn, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = ib.with_db(cluster_dsn, name)
    ib.migrate(dsn)
    return dsn


def report(tm: Timers, total: float) -> list[dict]:
    rows = []
    for k in tm.order:
        rows.append({"phase": k, "s": round(tm.t[k], 3), "pct": round(100 * tm.t[k] / total, 1),
                     "client_cpu_s": round(tm.cpu[k], 3), "backend_cpu_s": round(tm.be[k], 3),
                     "calls": tm.calls[k]})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=2025)
    ap.add_argument("--data-dir", type=Path, default=ib.DEFAULT_DATA_DIR)
    ap.add_argument("--cprofile", action="store_true", help="also cProfile the first run")
    ap.add_argument("--no-rerun", action="store_true")
    ap.add_argument("--batch-size", type=int, default=None)
    args = ap.parse_args(argv)

    path, _ = ib.dataset(args.n, args.seed, ib.OUT)
    settings = ib.bench_settings(args.data_dir)
    cluster_dsn = db.resolve_dsn(settings)
    dsn = fresh_db(cluster_dsn, PROF_DB)
    tm = Timers()
    instrument(tm)
    from ingest.job import IngestOptions, run_ingest

    opts = IngestOptions(**({"batch_size": args.batch_size} if args.batch_size else {}))
    out = {"n": args.n, "batch_size": opts.batch_size, "runs": []}
    for i, label in enumerate(["first load", "re-run (unchanged)"]):
        if i and args.no_rerun:
            break
        ib.checkpoint(ib.with_db(cluster_dsn, "postgres"))
        tm.__init__()
        prof = cProfile.Profile() if (args.cprofile and i == 0) else None
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        c0 = time.process_time()
        if prof:
            prof.enable()
        res = run_ingest(dsn, "cadastral", path, opts)
        if prof:
            prof.disable()
        total = time.perf_counter() - t0
        client_cpu = time.process_time() - c0
        backend = getattr(tm, "backend_total", 0.0)
        rows = report(tm, total)
        print(f"\n## {label}: n={args.n:,}, {total:.2f} s ({args.n / total:,.0f} rows/s), outcome "
              f"{res.outcome}, inserted {res.inserted}, unchanged {res.unchanged}; CPU s: client "
              f"{client_cpu:.1f}, backend {backend:.1f}; load avg before {load0:.1f}; "
              f"direct first load: {res.extra.get('direct_first_load')}")
        print("| phase | wall s | % of run | client CPU s | backend CPU s | calls |\n|---|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['phase']} | {r['s']:.2f} | {r['pct']:.1f} | {r['client_cpu_s']:.2f} | "
                  f"{r['backend_cpu_s']:.2f} | {r['calls']} |")
        run = {"label": label, "total_s": total, "rows_per_s": args.n / total, "outcome": res.outcome,
               "client_cpu_s": client_cpu, "backend_cpu_s": backend,
               "direct_first_load": res.extra.get("direct_first_load"), "loadavg_before": load0, "phases": rows}
        if prof:
            s = io.StringIO()
            pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(25)
            run["cprofile_tottime"] = s.getvalue()
            print(s.getvalue())
        out["runs"].append(run)
    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    dest = ib.OUT / f"profile_n{args.n}-{stamp}.json"
    dest.write_text(json.dumps(out, indent=2))
    print(f"\nresults: {dest.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
