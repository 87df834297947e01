#!/usr/bin/env python
"""Reproducible export benchmark: ``gis export`` against ``ogr2ogr`` from PostGIS, on N synthetic parcels.

1. Loads N parcels (``bench/ingest_bench.py``'s cached GeoPackage of :func:`gis.sample.write_parcels`) into a
   database ``bench_export`` of the bench cluster with ``gis ingest cadastral`` (kept between runs while it
   holds N parcels in force).
2. Exports the ``parcels`` layer (``cadastral.parcels_current``: id, the 8 public fields, geometry) to
   GeoPackage, GeoParquet and FlatGeobuf with ``gis export``, and the same columns with
   ``ogr2ogr -f GPKG|FlatGeobuf out PG:... -sql "SELECT ..."`` (the Debian GDAL of the machine; it has no
   (Geo)Parquet driver, so GeoParquet has no ogr2ogr run). Both write a spatial index (GeoPackage R-tree,
   FlatGeobuf packed Hilbert R-tree).
3. Each run is timed under ``/usr/bin/time -v`` (wall, peak RSS of the tool, CPU) with the PostgreSQL
   backends sampled from /proc (``ingest_bench.timed``); each output is checked to hold N features.

Usage::

    .venv/bin/python bench/export_bench.py             # n = 1,000,000
    .venv/bin/python bench/export_bench.py --n 200000 --repeat 3   # its own database bench_export_n200000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest_bench import (
    DEFAULT_DATA_DIR,
    OUT,
    bench_settings,
    checkpoint,
    dataset,
    migrate,
    ogr_conninfo,
    timed,
    versions,
    with_db,
)

from gis import db
from gis.settings import LIBPQ_ENV

DB = "bench_export"


def db_name(n: int) -> str:
    """The bench database of n parcels: ``bench_export`` for 1,000,000, ``bench_export_n<N>`` otherwise
    (so iterating at a small n does not reload the 1,000,000 parcels)."""
    return DB if n == 1_000_000 else f"{DB}_n{n}"
COLUMNS = ("parcel_id", "commune_code", "sheet_no", "parcel_no", "land_use", "legal_area_m2", "address",
           "owner_type", "valid_from", "geom")
FORMATS = {"gpkg": ("GPKG", ".gpkg"), "parquet": (None, ".parquet"), "fgb": ("FlatGeobuf", ".fgb")}


def prepare(cluster_dsn: str, path: Path, n: int, env: dict, data_dir: Path) -> str:
    """The database with the N parcels loaded (through the real ingest job)."""
    import subprocess

    admin = with_db(cluster_dsn, "postgres")
    name = db_name(n)
    dsn = with_db(cluster_dsn, name)
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    migrate(dsn)
    with psycopg.connect(dsn) as conn:
        have = conn.execute("SELECT count(*) FROM cadastral.parcels_current").fetchone()[0]
    if have != n:
        print(f"loading {n:,} parcels with gis ingest cadastral ...", flush=True)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("TRUNCATE cadastral.parcels, private.parcel_owners, cadastral.parcel_lineage CASCADE")
        gis = str(ROOT / ".venv" / "bin" / "gis")
        subprocess.run([gis, "ingest", "cadastral", str(path)], check=True,
                       env={**env, "DATABASE_URL": dsn, "GIS_DATA_DIR": str(data_dir)})
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE cadastral.parcels")
    return dsn


def count_features(path: Path) -> int:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_metadata(path).num_rows
    import pyogrio

    return pyogrio.read_info(str(path))["features"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="parcels (default 1,000,000)")
    ap.add_argument("--seed", type=int, default=2025)
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="the bench cluster's data folder")
    ap.add_argument("--out", type=Path, default=OUT, help="results and cached datasets (default bench/out)")
    ap.add_argument("--formats", default="gpkg,parquet,fgb")
    ap.add_argument("--repeat", type=int, default=1, help="rounds (each round runs every tool once per format, "
                                                          "ogr2ogr and gis export back to back)")
    ap.add_argument("--prepare-only", action="store_true", help="only load the database, run nothing")
    args = ap.parse_args(argv)

    n = args.n
    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    logdir = args.out / "logs" / f"export-n{n}-{stamp}"
    logdir.mkdir(parents=True, exist_ok=True)
    files = args.out / "export"
    files.mkdir(parents=True, exist_ok=True)
    path, _ = dataset(n, args.seed, args.out)
    settings = bench_settings(args.data_dir)
    cluster_dsn = db.resolve_dsn(settings)
    admin = with_db(cluster_dsn, "postgres")
    base_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", *LIBPQ_ENV)}
    dsn = prepare(cluster_dsn, path, n, base_env, args.data_dir)
    if args.prepare_only:
        return 0
    conninfo, pwenv = ogr_conninfo(dsn)
    gis = str(ROOT / ".venv" / "bin" / "gis")
    select = f"SELECT {', '.join(COLUMNS)} FROM cadastral.parcels_current ORDER BY parcel_id"
    results: dict = {"n": n, "started": stamp, "versions": versions(cluster_dsn, db_name(n)), "runs": []}
    for rnd in range(1, args.repeat + 1):
        for fmt in args.formats.split(","):
            driver, suffix = FORMATS[fmt]
            runs = [("gis export", [gis, "export", "parcels", "--format", fmt, "--out", str(files / f"gis{suffix}")],
                     {**base_env, "DATABASE_URL": dsn, "GIS_DATA_DIR": str(args.data_dir)}, files / f"gis{suffix}")]
            if driver:
                out = files / f"ogr{suffix}"
                runs.insert(0, ("ogr2ogr", ["ogr2ogr", "-overwrite", "-f", driver, str(out), f"PG:{conninfo}",
                                            "-sql", select, "-nln", "parcels", "-nlt", "MULTIPOLYGON"],
                                {**base_env, **pwenv}, out))
            if rnd % 2 == 0:
                runs.reverse()  # alternate who goes first: a load change hits both sides alike
            for label, cmd, env, out in runs:
                for p in out.parent.glob(out.name + "*"):
                    p.unlink()
                checkpoint(admin)
                log = logdir / f"{label.replace(' ', '_')}_{fmt}_r{rnd}.log"
                r = timed(f"{label} {fmt} (round {rnd})", cmd, env, admin, db_name(n), log)
                r.update(format=fmt, tool=label, round=rnd, features=count_features(out),
                         file_mb=out.stat().st_size / 2**20)
                r["features_per_s"] = n / r["wall_s"]
                assert r["features"] == n, (label, fmt, r["features"])
                results["runs"].append(r)
    (args.out / f"export_n{n}_{stamp}.json").write_text(json.dumps(results, indent=2, default=str))
    print(table(results))
    return 0


def table(results: dict) -> str:
    """Markdown: every run (the ratio against ogr2ogr of the same round), then the medians per tool."""
    import statistics

    head = ("| format | tool | round | wall s | features/s | vs ogr2ogr | peak RSS MB | client CPU s | backend CPU s "
            "| other CPU s | file MB |")
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|---|"]
    ogr = {(r["format"], r.get("round", 1)): r["wall_s"] for r in results["runs"] if r["tool"] == "ogr2ogr"}
    for r in results["runs"]:
        key = (r["format"], r.get("round", 1))
        ratio = f"{ogr[key] / r['wall_s']:.2f}x" if r["tool"] != "ogr2ogr" and key in ogr else "-"
        lines.append(f"| {r['format']} | {r['tool']} | {r.get('round', 1)} | {r['wall_s']:.1f} | "
                     f"{r['features_per_s']:,.0f} | {ratio} | {r.get('peak_rss_mb', 0):.0f} | "
                     f"{r['client_cpu_s']:.1f} | {r['server_backend_cpu_s']:.1f} | {r['other_cpu_s']:.1f} | "
                     f"{r['file_mb']:.0f} |")
    groups: dict = {}
    for r in results["runs"]:
        groups.setdefault((r["format"], r["tool"]), []).append(r)
    lines += ["", ("| format | tool | runs | median wall s | median features/s | vs ogr2ogr (wall) | "
                   "median tool+backend CPU s | vs ogr2ogr (CPU) | max peak RSS MB |"),
              "|---|---|---|---|---|---|---|---|---|"]
    med = {k: (statistics.median(r["wall_s"] for r in v),
               statistics.median(r["client_cpu_s"] + r["server_backend_cpu_s"] for r in v)) for k, v in groups.items()}
    for (fmt, tool), v in groups.items():
        wall, cpu = med[(fmt, tool)]
        o = med.get((fmt, "ogr2ogr"))
        rw = f"{o[0] / wall:.2f}x" if o and tool != "ogr2ogr" else "-"
        rc = f"{o[1] / cpu:.2f}x" if o and tool != "ogr2ogr" else "-"
        lines.append(f"| {fmt} | {tool} | {len(v)} | {wall:.1f} | {results['n'] / wall:,.0f} | {rw} | {cpu:.1f} | "
                     f"{rc} | {max(r.get('peak_rss_mb', 0) for r in v):.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
