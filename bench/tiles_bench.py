#!/usr/bin/env python
"""Reproducible vector-tile benchmark: our OGC API Tiles (`gis serve`) against tipg, side by side.

Run from the project root::

    .venv/bin/python bench/tiles_bench.py               # n = 500,000 parcels
    .venv/bin/python bench/tiles_bench.py --n 100000 --duration 5   # quick

What it does (results and how to read them: bench/README.md, section "Tiles"):

1. Generates (or reuses, cached in ``bench/out/``) a GeoPackage of N parcels with
   :func:`gis.sample.write_parcels`, starts the embedded PostGIS cluster in ``var/bench`` and loads the
   parcels into a fresh database ``bench_tiles`` with ``gis ingest cadastral`` (reused when it holds
   them already, ``--fresh`` forces a new load).
2. Installs tipg and uvicorn in their own virtual environment (``bench/out/venv-tipg``), once.
3. Lists every WebMercatorQuad tile over the parcels at z12, z14 and z16.
4. Serves the same database with ``gis serve`` (cache off: ``GIS_TILES_CACHE=false``), with tipg
   (``uvicorn tipg.main:app``, collection ``cadastral.parcels_current``), and with ``gis serve`` with
   its tile cache on (after one pass over the tiles), each with the same number of worker processes,
   on 127.0.0.1 only; and loads each with ``wrk`` (a Lua script cycling over the tile URLs, a fixed
   number of connections, a fixed duration) per zoom.
5. Exports the whole parcel layer z10-z16 to PMTiles with ``gis tiles export`` (tiles/s).
6. Writes the results as JSON to ``bench/out/tiles_bench.json`` and a markdown table to stdout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from gis import db  # noqa: E402
from gis.settings import LIBPQ_ENV, Settings  # noqa: E402

OUT = ROOT / "bench" / "out"
DEFAULT_DATA_DIR = ROOT / "var" / "bench"
DB_NAME = "bench_tiles"
GIS = str(ROOT / ".venv" / "bin" / "gis")
ZOOMS = (12, 14, 16)
GOAL_COLD, GOAL_WARM = 2.0, 20.0

LUA = r"""
local urls = {}
local i = 0
init = function(args)
  for line in io.lines(args[1]) do urls[#urls + 1] = line end
  i = math.random(#urls) - 1
end
request = function()
  i = i % #urls + 1
  return wrk.format("GET", urls[i])
end
done = function(summary, latency, requests)
  io.write(string.format(
    "RESULT {\"requests\": %d, \"duration_us\": %d, \"bytes\": %d, \"errors_status\": %d, " ..
    "\"errors_connect\": %d, \"errors_read\": %d, \"errors_timeout\": %d, " ..
    "\"p50_us\": %d, \"p90_us\": %d, \"p99_us\": %d, \"max_us\": %d, \"mean_us\": %f}\n",
    summary.requests, summary.duration, summary.bytes, summary.errors.status,
    summary.errors.connect, summary.errors.read, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


def log(msg: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- data -------------------------------------------------------------------------------------------
def dataset(n: int, seed: int, out: Path) -> Path:
    from gis.sample import write_parcels

    out.mkdir(parents=True, exist_ok=True)
    path = out / f"parcels_n{n}_s{seed}.gpkg"
    if not path.exists():
        tmp = path.with_name(path.stem + ".partial.gpkg")
        log(f"generating {n:,} parcels into {path}")
        write_parcels(tmp, n, seed=seed)
        tmp.rename(path)
    return path


def database(n: int, path: Path, data_dir: Path, fresh: bool) -> tuple[str, dict]:
    for name in ("DATABASE_URL", *LIBPQ_ENV):
        os.environ.pop(name, None)
    settings = Settings(data_dir=data_dir, database_url=None)
    cluster = db.resolve_dsn(settings)
    admin = cluster.rsplit("/", 1)[0] + "/postgres"
    dsn = cluster.rsplit("/", 1)[0] + "/" + DB_NAME
    info: dict = {}
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
    if exists and not fresh:
        try:
            with psycopg.connect(dsn) as conn:
                have = conn.execute("SELECT count(*) FROM cadastral.parcels_current").fetchone()[0]
            if have == n and not db.pending(dsn):
                log(f"reusing database {DB_NAME} ({have:,} parcels)")
                info["ingest"] = "reused"
                return dsn, info
        except psycopg.Error:
            pass
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    db.migrate(dsn)
    log(f"gis ingest cadastral {path.name}")
    t0 = time.perf_counter()
    subprocess.run([GIS, "ingest", "cadastral", str(path)], check=True, env={**os.environ, "DATABASE_URL": dsn},
                   stdout=subprocess.DEVNULL)
    info["ingest_s"] = round(time.perf_counter() - t0, 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE cadastral.parcels")
    return dsn, info


def tipg_venv(out: Path) -> tuple[Path, str]:
    venv = out / "venv-tipg"
    py = venv / "bin" / "python"
    if not (venv / "bin" / "uvicorn").exists():
        log("installing tipg and uvicorn in bench/out/venv-tipg")
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "tipg", "uvicorn"], check=True)
    ver = subprocess.run([str(py), "-c", "import tipg; print(tipg.__version__)"], capture_output=True,
                         text=True).stdout.strip()
    return venv, ver


def tile_lists(dsn: str, out: Path) -> dict[int, list[tuple[int, int, int]]]:
    import morecantile

    with psycopg.connect(dsn) as conn:
        b = conn.execute("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                         "(SELECT ST_Extent(geom) e FROM cadastral.parcels_current) s").fetchone()
    tms = morecantile.tms.get("WebMercatorQuad")
    return {z: [(t.z, t.x, t.y) for t in tms.tiles(*b, zooms=[z])] for z in ZOOMS}


# --- servers ----------------------------------------------------------------------------------------
class Server:
    def __init__(self, name: str, cmd: list[str], env: dict, port: int, probe: str, logfile: Path) -> None:
        self.name, self.cmd, self.env, self.port, self.probe, self.logfile = name, cmd, env, port, probe, logfile
        self.proc = None

    def __enter__(self):
        import httpx

        fh = open(self.logfile, "wb")
        self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=fh, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}{self.probe}", timeout=5).status_code < 500:
                    return self
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start: {self.logfile.read_text()[-2000:]}")
            time.sleep(0.3)

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def run_wrk(urls_file: Path, base: str, connections: int, duration: int, lua: Path) -> dict:
    cmd = ["wrk", "-t", "1", "-c", str(connections), "-d", f"{duration}s", "--timeout", "30s", "-s", str(lua),
           base, "--", str(urls_file)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120)
    line = next((x for x in res.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {res.stdout[-1500:]} {res.stderr[-1500:]}")
    r = json.loads(line[7:])
    r["tiles_per_s"] = r["requests"] / (r["duration_us"] / 1e6)
    r["mb_per_s"] = r["bytes"] / (r["duration_us"] / 1e6) / 1e6
    return r


def warm(base: str, paths: list[str]) -> dict:
    """Request every tile once (fills the cache); statuses and sizes."""
    import httpx

    stats = {"tiles": 0, "bytes": 0, "status": {}}
    with httpx.Client(base_url=base, timeout=120) as c:
        for p in paths:
            r = c.get(p)
            stats["tiles"] += 1
            stats["bytes"] += len(r.content)
            stats["status"][str(r.status_code)] = stats["status"].get(str(r.status_code), 0) + 1
    return stats


def features_per_tile(base: str, paths: list[str], layer: str, sample: int = 12) -> float:
    import httpx
    import mapbox_vector_tile

    step = max(1, len(paths) // sample)
    counts = []
    with httpx.Client(base_url=base, timeout=120) as c:
        for p in paths[::step]:
            r = c.get(p)
            if r.status_code == 200 and r.content:
                d = mapbox_vector_tile.decode(r.content)
                counts.append(sum(len(v["features"]) for v in d.values()))
            else:
                counts.append(0)
    return sum(counts) / len(counts) if counts else 0.0


# --- main -------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=500_000, help="parcels (default 500,000)")
    ap.add_argument("--seed", type=int, default=2025)
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--fresh", action="store_true", help="load the parcels again even if the database has them")
    ap.add_argument("--workers", type=int, default=2, help="server worker processes, both servers (default 2)")
    ap.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    ap.add_argument("--duration", type=int, default=15, help="seconds of each wrk run (default 15)")
    ap.add_argument("--skip-export", action="store_true")
    args = ap.parse_args(argv)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    if not shutil.which("wrk"):
        print("wrk is missing: apt-get install wrk", file=sys.stderr)
        return 2
    logdir = out / "logs" / f"tiles-{dt.datetime.now():%Y%m%dT%H%M%S}"
    logdir.mkdir(parents=True, exist_ok=True)

    path = dataset(args.n, args.seed, out)
    dsn, dbinfo = database(args.n, path, args.data_dir, args.fresh)
    venv, tipg_version = tipg_venv(out)
    tiles = tile_lists(dsn, out)
    lua = logdir / "tiles.lua"
    lua.write_text(LUA)
    results: dict = {
        "n": args.n, "when": dt.datetime.now().isoformat(timespec="seconds"), "machine": {
            "cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "workers": args.workers, "connections": args.connections, "duration_s": args.duration,
        "tipg_version": tipg_version, "database": dbinfo, "tiles": {str(z): len(v) for z, v in tiles.items()},
        "runs": {},
    }
    gis_env = {**os.environ, "DATABASE_URL": dsn, "GIS_DATA_DIR": str(logdir / "data"),
               "GIS_API_POOL_MAX_SIZE": "10"}
    tipg_env = {**os.environ, "DATABASE_URL": dsn, "TIPG_DB_SCHEMAS": '["cadastral"]',
                "TIPG_DB_EXCLUDE_FUNCTION_SCHEMAS": '["public", "gis_meta", "raster", "pg_catalog"]'}
    ours_paths = {z: [f"/collections/parcels/tiles/WebMercatorQuad/{z}/{y}/{x}" for z, x, y in v]
                  for z, v in tiles.items()}
    tipg_paths = {z: [f"/collections/cadastral.parcels_current/tiles/WebMercatorQuad/{z}/{x}/{y}" for z, x, y in v]
                  for z, v in tiles.items()}

    def load(name: str, base: str, paths: dict, prefill: bool) -> None:
        for z in ZOOMS:
            urls = logdir / f"{name}-z{z}.txt"
            urls.write_text("\n".join(paths[z]) + "\n")
            info = warm(base, paths[z])  # one pass: a warm PostgreSQL for all, the tile cache for "warm"
            feats = features_per_tile(base, paths[z], "parcels")
            log(f"{name} z{z}: {len(paths[z])} tiles, {info['bytes'] / max(1, info['tiles']) / 1e3:.0f} kB "
                f"mean, {feats:.0f} features/tile (sample); wrk {args.duration}s ...")
            r = run_wrk(urls, base, args.connections, args.duration, lua)
            r.update({"mean_tile_kb": info["bytes"] / max(1, info["tiles"]) / 1e3, "status": info["status"],
                      "features_per_tile": feats})
            results["runs"].setdefault(name, {})[str(z)] = r
            log(f"  {r['tiles_per_s']:.1f} tiles/s, p50 {r['p50_us'] / 1e3:.1f} ms, p99 {r['p99_us'] / 1e3:.1f} ms, "
                f"errors {r['errors_status'] + r['errors_timeout'] + r['errors_read']}")

    port = free_port()
    with Server("ours-cold", [GIS, "serve", "--port", str(port), "--workers", str(args.workers), "--no-access-log",
                              "--log-level", "warning"], {**gis_env, "GIS_TILES_CACHE": "false"}, port,
                "/collections", logdir / "ours-cold.log"):
        load("ours-cold", f"http://127.0.0.1:{port}", ours_paths, False)
    port = free_port()
    with Server("tipg", [str(venv / "bin" / "uvicorn"), "tipg.main:app", "--host", "127.0.0.1", "--port", str(port),
                         "--workers", str(args.workers), "--no-access-log", "--log-level", "warning"],
                tipg_env, port, "/collections", logdir / "tipg.log"):
        load("tipg", f"http://127.0.0.1:{port}", tipg_paths, False)
    port = free_port()
    with Server("ours-warm", [GIS, "serve", "--port", str(port), "--workers", str(args.workers), "--no-access-log",
                              "--log-level", "warning"], {**gis_env, "GIS_TILES_CACHE": "true"}, port,
                "/collections", logdir / "ours-warm.log"):
        load("ours-warm", f"http://127.0.0.1:{port}", ours_paths, True)

    if not args.skip_export:
        pm = out / "parcels_z10-16.pmtiles"
        log("gis tiles export parcels --minzoom 10 --maxzoom 16 (PMTiles)")
        t0 = time.perf_counter()
        res = subprocess.run([GIS, "tiles", "export", "parcels", "--minzoom", "10", "--maxzoom", "16", "--out", str(pm)],
                             env={**gis_env, "GIS_TILES_CACHE": "false"}, capture_output=True, text=True, check=True)
        took = time.perf_counter() - t0
        results["export"] = {"summary": res.stdout.strip(), "seconds_total": round(took, 2),
                             "file_mb": round(pm.stat().st_size / 1e6, 1)}
        log(res.stdout.strip())

    ratio = {}
    for z in map(str, ZOOMS):
        t = results["runs"]["tipg"][z]
        c = results["runs"]["ours-cold"][z]
        w = results["runs"]["ours-warm"][z]
        ratio[z] = {"cold_x": c["tiles_per_s"] / t["tiles_per_s"], "warm_x": w["tiles_per_s"] / t["tiles_per_s"],
                    "cold_p99_ok": c["p99_us"] <= t["p99_us"]}
    results["ratio"] = ratio
    (out / "tiles_bench.json").write_text(json.dumps(results, indent=2))
    print()
    print(f"| zoom | tiles | tipg tiles/s (p50 / p99 ms) | ours cold tiles/s (p50 / p99 ms) | cold x | "
          f"ours warm tiles/s (p99 ms) | warm x | features/tile tipg / ours |")
    print("|---|---|---|---|---|---|---|---|")
    for z in map(str, ZOOMS):
        t, c, w = (results["runs"][k][z] for k in ("tipg", "ours-cold", "ours-warm"))
        print(f"| {z} | {results['tiles'][z]} | {t['tiles_per_s']:.1f} ({t['p50_us'] / 1e3:.0f} / {t['p99_us'] / 1e3:.0f}) "
              f"| {c['tiles_per_s']:.1f} ({c['p50_us'] / 1e3:.0f} / {c['p99_us'] / 1e3:.0f}) | {ratio[z]['cold_x']:.1f} "
              f"| {w['tiles_per_s']:.0f} ({w['p99_us'] / 1e3:.1f}) | {ratio[z]['warm_x']:.0f} "
              f"| {t['features_per_tile']:.0f} / {c['features_per_tile']:.0f} |")
    if "export" in results:
        print(f"\nPMTiles export z10-z16: {results['export']['summary']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
