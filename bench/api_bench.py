#!/usr/bin/env python
"""Reproducible OGC API Features benchmark: our server against tipg and pygeoapi, side by side.

Run from the project root::

    .venv/bin/python bench/api_bench.py             # 500,000 parcels, 15 s per wrk run
    .venv/bin/python bench/api_bench.py --quick     # 50,000 parcels, 5 s runs, no ogr2ogr

What it does (bench/README.md '## Features API' has the results and how to read them):

1. Generates (or reuses, cached by n and seed in ``bench/out/``) a GeoPackage of N parcels
   (:func:`gis.sample.write_parcels`) and loads it with ``gis ingest cadastral FILE``
   (``DATABASE_URL`` = the bench database) into a bench cluster of its own in ``var/bench-api``
   (the project's embedded cluster code; not ``var/bench``, which bench/ingest_bench.py drops and
   recreates databases in). A database already holding the same file's N parcels is reused.
2. Installs tipg and pygeoapi in their own virtual environments under ``bench/out/`` (once),
   and starts, each on a free loopback port with ONE worker process: ``gis serve`` (ours),
   ``uvicorn tipg.main:app`` (uvicorn[standard]), ``gunicorn pygeoapi.flask_app:APP`` (gthread, 4
   threads), plus ours with 2 workers as an extra row (``ours2``); ``ours_patched`` runs ours with a
   patched copy of ``api/`` and ``gis/`` ahead on PYTHONPATH (``--patched-api DIR``), and
   ``ours@NAME=VALUE+...`` ours with these environment settings (e.g. ``GIS_API_STREAM_CHUNK=10000``). All serve the same rows: the view ``cadastral.parcels_current``
   with the same 8 properties, id ``parcel_id``, in CRS84.
3. Checks that the servers answer the same features for a sample of every case's URLs.
4. Load: ``wrk --latency`` (16 connections, fixed duration, ``bench/api_bench_rotate.lua``
   rotating over a fixed, seeded list of URLs), one server at a time, after a short warm-up:
   a) items, random 200 m boxes centred on random parcels, limit=100;
   b) items, limit=1000 (no bbox) and items with boxes sized to hold about 1,000 parcels;
   c) single features /items/{id}, random ids.
   d) the whole table paged at limit=10000 following ``next`` links with httpx (one client, which
   parses every page), the same walk with curl (no parsing: the servers' own time), and
   ``ogr2ogr -f GPKG out.gpkg OAPIF:...`` of the whole layer (capped, default 10 minutes).
   e) (``abort``) clients that go away: requests closed after their first 64 KB; the CPU each
   server spends on them and the database connections it discards.
   For each case the "floor": PostgreSQL alone running our server's own SQL (which builds the
   GeoJSON text in the database) from psycopg, 1 connection (latency) and 16 (throughput), and
   ``EXPLAIN ANALYZE`` of one representative query.
5. Records the 1-minute load average before and after every run, the CPU seconds used by each
   server's processes and by its PostgreSQL backends (``application_name``), writes JSON to
   ``bench/out/api_bench-*.json`` and prints a markdown table.

Every process started is stopped at the end (servers, and the bench cluster unless
``--keep-db``), also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import datetime as dt
import hashlib
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import orjson  # noqa: E402
import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

from gis import db  # noqa: E402
from gis.settings import LIBPQ_ENV, Settings  # noqa: E402

OUT = ROOT / "bench" / "out"
LUA = ROOT / "bench" / "api_bench_rotate.lua"
DEFAULT_DATA_DIR = ROOT / "var" / "bench-api"
DB_PREFIX = "bench_api"
SCHEMA, VIEW, ID = "cadastral", "parcels_current", "parcel_id"
#: the properties our catalog publishes for `parcels`; the peers are configured to serve the same
PROPS = ["commune_code", "sheet_no", "parcel_no", "land_use", "legal_area_m2", "address",
         "owner_type", "valid_from"]
GOALS = {"items_vs_tipg": 3.0, "paging_vs_tipg": 5.0, "vs_pygeoapi": 5.0, "p99_over_p50": 2.0}
#: earlier reference measurements on this machine (noisy; one worker each, 16 connections)
REFERENCE = {"tipg": {"a_bbox100": 85, "b_limit1000": 9, "paging_s": 84, "ogr2ogr_s": 119},
             "pygeoapi": {"a_bbox100": 32, "b_limit1000": 7, "paging_s": 64, "ogr2ogr_s": 77}}

STARTED: list[subprocess.Popen] = []
DB_NAME = DB_PREFIX  # set by load(): bench_api_n<N>
PATCHED_API: Path | None = None  # --patched-api: a folder holding a patched copy of api/


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- processes -------------------------------------------------------------------------------------
def start(cmd: list[str], env: dict, logfile: Path, cwd: Path = ROOT) -> subprocess.Popen:
    """Start a server in its own session (so that it and its workers are stopped together)."""
    fh = open(logfile, "w")
    fh.write(f"$ {' '.join(cmd)}\n")
    fh.flush()
    proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=str(cwd),
                            start_new_session=True)
    STARTED.append(proc)
    return proc


def stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM the session started for ``proc`` (its id), then SIGKILL if it lingers."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(5)
    # workers of the session that outlived their parent
    for pid in session_pids(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def stop_all() -> None:
    while STARTED:
        stop(STARTED.pop())


def session_pids(sid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            st = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(st[3]) == sid:  # field 6 (session) is index 3 after the command
            out.append(int(d.name))
    return out


def cpu_seconds(pids) -> dict[int, float]:
    hz = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in pids:
        try:
            st = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(st[11]) + int(st[12])) / hz
    return out


# --- dataset and database --------------------------------------------------------------------------
def dataset(n: int, seed: int) -> Path:
    from gis.sample import write_parcels

    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"parcels_n{n}_s{seed}.gpkg"
    if path.exists():
        log(f"dataset: reusing {path.relative_to(ROOT)}")
        return path
    tmp = path.with_name(path.stem + ".partial.gpkg")
    log(f"dataset: generating {n:,} parcels (seed {seed}) into {path.relative_to(ROOT)}")
    write_parcels(tmp, n, seed=seed)
    tmp.rename(path)
    return path


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 24):
            h.update(chunk)
    return h.hexdigest()


def with_db(dsn: str, name: str) -> str:
    return dsn.rsplit("/", 1)[0] + "/" + name


def with_app(dsn: str, app: str) -> str:
    return f"{dsn}?application_name={quote(app)}"


def migrate(dsn: str) -> list[str]:
    """gis.db.migrate, tolerating a migration that fails (work in progress of another engineer in
    this shared tree): it is recorded as applied in the bench database only, and reported."""
    from gis.errors import GisError

    skipped = []
    while True:
        try:
            db.migrate(dsn)
            return skipped
        except GisError as exc:
            if "was changed after it was applied" in str(exc):
                # another engineer is editing an applied migration in this shared tree: keep the
                # bench database as it is (reported), unless a migration is still missing
                if db.pending(dsn):
                    raise SystemExit(f"{exc}; and migrations are pending: run with --reload")
                skipped.append(f"not re-checked: {exc}")
                log(f"WARNING: {exc} (bench database kept as it is)")
                return skipped
            with psycopg.connect(dsn, autocommit=True) as conn:
                applied = db.applied_versions(conn)
                todo = [m for m in db.migrations() if m.version not in applied]
                if not todo or "failed" not in str(exc):
                    raise
                mig = todo[0]
                conn.execute("INSERT INTO gis_meta.schema_migrations (version, name, checksum) "
                             "VALUES (%s, %s, %s)", (mig.version, mig.name, mig.checksum))
            skipped.append(f"{mig.version:04d}_{mig.name} ({exc})")
            log(f"WARNING: migration {skipped[-1]}: marked as applied in the bench database only")


def load(cluster_dsn: str, path: Path, n: int, data_dir: Path, reload: bool, logdir: Path) -> dict:
    """The bench database with the file's n parcels in force (loaded with `gis ingest` if needed)."""
    global DB_NAME
    DB_NAME = f"{DB_PREFIX}_n{n}"
    dsn = with_db(cluster_dsn, DB_NAME)
    digest = file_sha256(path)
    info: dict = {"file": str(path.relative_to(ROOT)), "file_sha256": digest}
    with psycopg.connect(with_db(cluster_dsn, "postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
        if exists and reload:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(DB_NAME)))
            exists = None
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DB_NAME)))
    info["skipped_migrations"] = migrate(dsn)
    with psycopg.connect(dsn) as conn:
        current = conn.execute(f"SELECT count(*) FROM {SCHEMA}.{VIEW}").fetchone()[0]
    if current == n and not reload:
        log(f"database {DB_NAME}: {current:,} parcels in force already (reused)")
        info.update(reused=True, ingest_s=None)
    else:
        if current:
            raise SystemExit(f"database {DB_NAME} holds {current:,} parcels, not {n:,}: run with --reload")
        env = clean_env() | {"DATABASE_URL": dsn, "GIS_DATA_DIR": str(data_dir)}
        cmd = [str(ROOT / ".venv" / "bin" / "gis"), "ingest", "cadastral", str(path)]
        log(f"ingest: {' '.join(cmd)}")
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        (logdir / "ingest.log").write_text(proc.stdout + "\n--- stderr\n" + proc.stderr)
        if proc.returncode != 0:
            print(proc.stdout[-2000:], proc.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"gis ingest failed ({proc.returncode}); log: {logdir / 'ingest.log'}")
        info.update(reused=False, ingest_s=round(time.perf_counter() - t0, 1),
                    ingest_summary=proc.stdout.strip().splitlines()[-1:] if proc.stdout else [])
        log(f"ingest: {info['ingest_s']} s")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"VACUUM (ANALYZE) {SCHEMA}.parcels")
        info["rows_in_force"] = conn.execute(f"SELECT count(*) FROM {SCHEMA}.{VIEW}").fetchone()[0]
        info["table_mb"] = round(conn.execute(
            f"SELECT pg_total_relation_size('{SCHEMA}.parcels') / 1048576.0").fetchone()[0], 1)
    if info["rows_in_force"] != n:
        raise SystemExit(f"{info['rows_in_force']:,} parcels in force, expected {n:,}")
    return info | {"dsn_db": DB_NAME}


def clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", *LIBPQ_ENV)
            and not k.startswith(("TIPG_", "GIS_API_", "PYGEOAPI_"))}


# --- workload ------------------------------------------------------------------------------------
M_PER_DEG_LAT = 110_574.0


def m_per_deg_lon(lat: float) -> float:
    import math

    return 111_320.0 * math.cos(math.radians(lat))


def box_around(x: float, y: float, side_m: float) -> tuple[float, float, float, float]:
    hx = side_m / 2 / m_per_deg_lon(y)
    hy = side_m / 2 / M_PER_DEG_LAT
    return (round(x - hx, 6), round(y - hy, 6), round(x + hx, 6), round(y + hy, 6))


def count_in(conn, box) -> int:
    return conn.execute(
        f"SELECT count(*) FROM {SCHEMA}.{VIEW} WHERE geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326) "
        "AND ST_Intersects(geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326))", (*box, *box)).fetchone()[0]


def workload(dsn: str, seed: int, n_urls: int) -> dict:
    """Seeded lists: small boxes, ~1000-feature boxes, ids; with the number of parcels each box holds."""
    rng = random.Random(seed)
    with psycopg.connect(dsn) as conn:
        ids = [r[0] for r in conn.execute(f"SELECT {ID} FROM {SCHEMA}.{VIEW} ORDER BY {ID}")]
        extent = conn.execute(f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                              f"(SELECT ST_Extent(geom)::geometry AS e FROM {SCHEMA}.{VIEW}) q").fetchone()
        centre_ids = rng.sample(ids, 2 * n_urls)
        centres = dict(conn.execute(
            f"SELECT {ID}, ARRAY[ST_X(c), ST_Y(c)] FROM (SELECT {ID}, ST_PointOnSurface(geom) AS c "
            f"FROM {SCHEMA}.{VIEW} WHERE {ID} = ANY(%s)) q", (centre_ids,)).fetchall())
        small, small_n = [], []
        for i in centre_ids[:n_urls]:
            x, y = centres[i]
            # a random 200 m box that holds the parcel's point (not always centred on it)
            dx, dy = rng.uniform(-80, 80), rng.uniform(-80, 80)
            x2, y2 = x + dx / m_per_deg_lon(y), y + dy / M_PER_DEG_LAT
            b = box_around(x2, y2, 200)
            small.append(b)
            small_n.append(count_in(conn, b))
        big, big_n = [], []
        for i in centre_ids[n_urls:]:
            x, y = centres[i]
            side = 600.0
            for _ in range(4):  # size the box to hold about 1,000-1,200 parcels
                c = count_in(conn, box_around(x, y, side))
                if 1000 <= c <= 1200:
                    break
                side *= (1100 / max(c, 1)) ** 0.5
                side = min(side, 20_000)
            b = box_around(x, y, side)
            big.append(b)
            big_n.append(count_in(conn, b))
        single = rng.sample(ids, n_urls)

    def summary(v):
        v = sorted(v)
        return {"min": v[0], "median": v[len(v) // 2], "max": v[-1], "mean": round(sum(v) / len(v), 1)}

    return {"extent": extent, "small_boxes": small, "small_counts": summary(small_n),
            "small_counts_all": small_n, "big_boxes": big, "big_counts": summary(big_n),
            "big_counts_all": big_n, "ids": single, "n_ids": len(ids)}


def bbox_param(b) -> str:
    return ",".join(f"{v:.6f}" for v in b)


CASES = {
    "a_bbox100": "items, 200 m bbox, limit=100",
    "b_limit1000": "items, limit=1000, no bbox",
    "b_bbox1000": "items, bbox of ~1,000 parcels, limit=1000",
    "c_item": "single feature /items/{id}",
}


# --- servers -------------------------------------------------------------------------------------
@dataclass
class Server:
    key: str
    label: str
    cid: str
    fparam: str
    port: int
    proc: subprocess.Popen | None = None
    app_name: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def items(self, **params) -> str:
        q = "&".join([f"f={self.fparam}"] + [f"{k}={v}" for k, v in params.items()])
        return f"/collections/{self.cid}/items?{q}"

    def item(self, fid) -> str:
        return f"/collections/{self.cid}/items/{fid}?f={self.fparam}"

    def paths(self, case: str, wl: dict) -> list[str]:
        if case == "a_bbox100":
            return [self.items(limit=100, bbox=bbox_param(b)) for b in wl["small_boxes"]]
        if case == "b_limit1000":
            return [self.items(limit=1000)]
        if case == "b_bbox1000":
            return [self.items(limit=1000, bbox=bbox_param(b)) for b in wl["big_boxes"]]
        if case == "c_item":
            return [self.item(i) for i in wl["ids"]]
        raise KeyError(case)


def ensure_venv(name: str, packages: list[str]) -> Path:
    venv = OUT / f"venv-{name}"
    marker = venv / ".bench-installed"
    if marker.exists() and marker.read_text().strip() == " ".join(packages):
        return venv
    log(f"installing {' '.join(packages)} into {venv.relative_to(ROOT)}")
    subprocess.run(["python3", "-m", "venv", str(venv)], check=True)  # the system Python, not ours
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *packages], check=True)
    marker.write_text(" ".join(packages) + "\n")
    return venv


def pip_versions(venv: Path, names: list[str]) -> dict:
    out = subprocess.run([str(venv / "bin" / "pip"), "list", "--format=json"], capture_output=True,
                         text=True).stdout
    have = {p["name"].lower(): p["version"] for p in json.loads(out or "[]")}
    return {n: have.get(n.lower()) for n in names}


def pygeoapi_config(path: Path, dsn: str, port: int, openapi: Path) -> None:
    u = urlsplit(dsn)
    cfg = f"""server:
  bind: {{host: 127.0.0.1, port: {port}}}
  url: http://127.0.0.1:{port}
  mimetype: application/json; charset=UTF-8
  encoding: utf-8
  languages: [en-US]
  limits: {{default_items: 10, max_items: 10000}}
  map: {{url: 'https://tile.openstreetmap.org/{{z}}/{{x}}/{{y}}.png', attribution: 'OSM'}}
logging:
  level: ERROR
metadata:
  identification:
    title: bench
    description: bench
    keywords: [bench]
    keywords_type: theme
    terms_of_service: https://creativecommons.org/licenses/by/4.0/
    url: http://example.org
  license: {{name: CC-BY 4.0, url: 'https://creativecommons.org/licenses/by/4.0/'}}
  provider: {{name: bench, url: 'http://example.org'}}
  contact: {{name: bench, position: bench, address: x, city: x, stateorprovince: x, postalcode: x, country: x, phone: x, fax: x, email: x, url: x, hours: x, instructions: x, role: pointOfContact}}
resources:
  parcels:
    type: collection
    title: parcels
    description: cadastral parcels in force
    keywords: [parcels]
    extents:
      spatial: {{bbox: [106.3, 10.3, 107.1, 11.2], crs: 'http://www.opengis.net/def/crs/OGC/1.3/CRS84'}}
    providers:
      - type: feature
        name: PostgreSQL
        data:
          host: {u.hostname}
          port: {u.port}
          dbname: {u.path.lstrip('/')}
          user: {u.username}
          password: {json.dumps(unquote_pw(u.password))}
          search_path: [{SCHEMA}, public]
        options:
          application_name: pygeoapi
        id_field: {ID}
        table: {VIEW}
        geom_field: geom
        properties: [{', '.join(PROPS)}]
"""
    path.write_text(cfg)


def unquote_pw(pw: str | None) -> str:
    from urllib.parse import unquote

    return unquote(pw or "")


def start_servers(keys: list[str], dsn: str, data_dir: Path, logdir: Path) -> dict[str, Server]:
    servers: dict[str, Server] = {}
    env0 = clean_env()
    for key in keys:
        port = free_port()
        if key in ("ours", "ours2", "ours_patched") or key.startswith("ours@"):
            workers = 2 if key == "ours2" else 1
            app = f"bench-{key}"[:60]
            label = f"ours ({workers} worker{'s' if workers > 1 else ''})"
            env = env0 | {"DATABASE_URL": with_app(dsn, app), "GIS_DATA_DIR": str(data_dir)}
            if key.startswith("ours@"):  # ours@NAME=VALUE+NAME=VALUE: ours with these settings
                extra = dict(kv.split("=", 1) for kv in key[5:].split("+"))
                env |= extra
                label = f"ours (1 worker, {', '.join(f'{k}={v}' for k, v in extra.items())})"
            if key == "ours_patched":  # a patched copy of api/ ahead of the project's (see --patched-api)
                if PATCHED_API is None:
                    raise SystemExit("server ours_patched needs --patched-api DIR")
                env["PYTHONPATH"] = str(PATCHED_API)
                label = f"ours, patched ({PATCHED_API.name}, 1 worker)"
            s = Server(key, label, "parcels", "json", port, app_name=app)
            cmd = [str(ROOT / ".venv" / "bin" / "gis"), "serve", "--port", str(port), "--workers",
                   str(workers), "--log-level", "warning", "--no-access-log"]
        elif key == "tipg":
            # uvicorn[standard]: uvloop and httptools, the HTTP stack ours runs on too (requirements.lock)
            venv = ensure_venv("tipg", ["tipg", "uvicorn[standard]"])
            app = "bench-tipg"
            s = Server(key, "tipg (1 worker)", f"{SCHEMA}.{VIEW}", "geojson", port, app_name=app)
            s.extra["versions"] = pip_versions(venv, ["tipg", "uvicorn", "uvloop", "httptools", "asyncpg",
                                                    "fastapi", "orjson"])
            env = env0 | {
                "DATABASE_URL": with_app(dsn, app),
                "TIPG_DB_SCHEMAS": json.dumps([SCHEMA]),
                "TIPG_DB_TABLES": json.dumps([f"{SCHEMA}.{VIEW}"]),
                f"TIPG_TABLE_CONFIG__{SCHEMA}_{VIEW}__PK": ID,
                f"TIPG_TABLE_CONFIG__{SCHEMA}_{VIEW}__GEOMCOL": "geom",
                f"TIPG_TABLE_CONFIG__{SCHEMA}_{VIEW}__PROPERTIES": json.dumps(PROPS),
                "TIPG_DB_SPATIAL_EXTENT": "false", "TIPG_DB_DATETIME_EXTENT": "false",
            }
            cmd = [str(venv / "bin" / "uvicorn"), "tipg.main:app", "--host", "127.0.0.1", "--port",
                   str(port), "--workers", "1", "--log-level", "warning", "--no-access-log"]
        elif key == "pygeoapi":
            venv = ensure_venv("pygeoapi", ["pygeoapi", "psycopg2-binary", "SQLAlchemy", "GeoAlchemy2",
                                            "gunicorn"])
            s = Server(key, "pygeoapi (1 worker)", "parcels", "json", port, app_name="pygeoapi")  # it sets its own
            s.extra["versions"] = pip_versions(venv, ["pygeoapi", "gunicorn", "SQLAlchemy", "GeoAlchemy2",
                                                      "psycopg2-binary", "Flask"])
            cfgdir = OUT / "pygeoapi"
            cfgdir.mkdir(exist_ok=True)
            cfg, oas = cfgdir / "config.yml", cfgdir / "openapi.yml"
            pygeoapi_config(cfg, dsn, port, oas)
            env = env0 | {"PYGEOAPI_CONFIG": str(cfg), "PYGEOAPI_OPENAPI": str(oas)}
            gen = subprocess.run([str(venv / "bin" / "pygeoapi"), "openapi", "generate", str(cfg),
                                  "--output-file", str(oas)], env=env, capture_output=True, text=True)
            if gen.returncode != 0:
                raise SystemExit(f"pygeoapi openapi generate failed: {gen.stderr[-2000:]}")
            threads = 4
            s.extra["gunicorn"] = f"1 worker, gthread, {threads} threads"
            cmd = [str(venv / "bin" / "gunicorn"), "--workers", "1", "--threads", str(threads),
                   "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "--timeout", "300",
                   "pygeoapi.flask_app:APP"]
        else:
            raise SystemExit(f"unknown server {key}")
        s.proc = start(cmd, env, logdir / f"server-{key}.log")
        s.extra["cmd"] = cmd
        servers[key] = s
    for s in servers.values():
        wait_ready(s, logdir)
    return servers


def wait_ready(s: Server, logdir: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    url = s.base + s.items(limit=1)
    last = None
    while time.monotonic() < deadline:
        if s.proc.poll() is not None:
            raise SystemExit(f"{s.label} exited ({s.proc.returncode}); see {logdir}/server-{s.key}.log")
        try:
            r = httpx.get(url, timeout=30)
            if r.status_code == 200 and r.json().get("features"):
                log(f"{s.label} ready on {s.base}")
                return
            last = f"{r.status_code} {r.text[:200]}"
        except (httpx.HTTPError, ValueError) as exc:
            last = repr(exc)
        time.sleep(0.5)
    raise SystemExit(f"{s.label} not ready after {timeout} s: {last}")


def features_of(doc: dict) -> list:
    return doc.get("features") or []


def check_same(servers: dict[str, Server], wl: dict, per_case: int = 8) -> dict:
    """Every server answers the same features (ids, count) for a sample of each case's URLs."""
    out: dict = {}
    client = httpx.Client(timeout=120)
    with client:
        for case in CASES:
            mismatches = []
            sizes: dict[str, list[int]] = {k: [] for k in servers}
            n = min(per_case, len(next(iter(servers.values())).paths(case, wl)))
            for i in range(n):
                got = {}
                for k, s in servers.items():
                    r = client.get(s.base + s.paths(case, wl)[i])
                    sizes[k].append(len(r.content))
                    if r.status_code != 200:
                        got[k] = f"HTTP {r.status_code}"
                        continue
                    doc = r.json()
                    if case == "c_item":
                        got[k] = (str(doc.get("id")),)
                    else:
                        got[k] = tuple(sorted(str(f.get("id")) for f in features_of(doc)))
                ref = got[next(iter(got))]
                if any(v != ref for v in got.values()):
                    mismatches.append({"url_index": i, **{k: (v if isinstance(v, str) else len(v))
                                                          for k, v in got.items()}})
            out[case] = {"checked": n, "mismatches": mismatches,
                         "mean_response_bytes": {k: round(statistics.mean(v)) for k, v in sizes.items() if v}}
            log(f"same features, {case}: {n - len(mismatches)}/{n} URLs agree; mean bytes "
                + ", ".join(f"{k} {v:,}" for k, v in out[case]["mean_response_bytes"].items()))
    return out


# --- measuring -----------------------------------------------------------------------------------
class CpuWatch:
    """CPU seconds of a server's processes and of its PostgreSQL backends over a run."""

    def __init__(self, s: Server | None, admin_dsn: str) -> None:
        self.s, self.admin_dsn = s, admin_dsn

    def _snap(self) -> tuple[dict, dict]:
        app = cpu_seconds(session_pids(self.s.proc.pid)) if self.s else {}
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            pids = [r[0] for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
                (DB_NAME, self.s.app_name if self.s else "bench-floor"))]
        return app, cpu_seconds(pids)

    def __enter__(self):
        self.t0 = time.perf_counter()
        self.b_app, self.b_db = self._snap()
        self.machine0 = machine_busy()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t0
        a_app, a_db = self._snap()
        self.app_cpu = sum(v - self.b_app.get(p, 0.0) for p, v in a_app.items())
        self.db_cpu = sum(v - self.b_db.get(p, 0.0) for p, v in a_db.items())
        self.machine_busy = machine_busy() - self.machine0

    def result(self) -> dict:
        return {"server_cpu_s": round(self.app_cpu, 2), "db_backend_cpu_s": round(self.db_cpu, 2),
                "machine_busy_cpu_s": round(self.machine_busy, 2), "wall_s": round(self.wall, 2)}


def machine_busy() -> float:
    f = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(f[:8]) - f[3] - f[4]) / os.sysconf("SC_CLK_TCK")


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out: str) -> dict:
    res: dict = {}
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        if m:
            res[f"p{pct}_ms"] = round(_ms(m.group(1)), 2)
    m = re.search(r"^\s+Latency\s+(\S+)\s+(\S+)\s+(\S+)", out, re.M)
    if m:
        res["mean_ms"], res["stdev_ms"], res["max_ms"] = (round(_ms(g), 2) for g in m.groups())
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+), ([\d.]+)(\w+) read", out)
    if m:
        res["requests"] = int(m.group(1))
        res["read"] = f"{m.group(4)}{m.group(5)}"
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        res["rps"] = float(m.group(1))
    m = re.search(r"Transfer/sec:\s+(\S+)", out)
    if m:
        res["transfer_per_s"] = m.group(1)
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["socket_errors"] = sum(int(g) for g in m.groups()) if m else 0
    return res


def run_wrk(s: Server, case: str, wl: dict, args, admin_dsn: str, logdir: Path, rnd: int = 0) -> dict:
    paths = s.paths(case, wl)
    pfile = logdir / f"paths-{s.key}-{case}.txt"
    pfile.write_text("\n".join(paths) + "\n")
    base = ["wrk", "-t", str(args.threads), "-c", str(args.connections), "--latency", "--timeout",
            "60s", "-s", str(LUA)]
    if args.warmup > 0:
        subprocess.run([*base, "-d", f"{args.warmup}s", s.base, "--", str(pfile)], capture_output=True)
    before = loadavg()
    cmd = [*base, "-d", f"{args.duration}s", s.base, "--", str(pfile)]
    with CpuWatch(s, admin_dsn) as cw:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    after = loadavg()
    (logdir / f"wrk-{s.key}-{case}-r{rnd}.txt").write_text(proc.stdout + proc.stderr)
    res = parse_wrk(proc.stdout)
    res.update(cw.result())
    res.update(loadavg_before=before, loadavg_after=after, urls=len(paths), cmd=" ".join(cmd))
    if res.get("requests"):
        res["server_cpu_ms_per_req"] = round(1000 * cw.app_cpu / res["requests"], 2)
        res["db_cpu_ms_per_req"] = round(1000 * cw.db_cpu / res["requests"], 2)
        res["cpu_ms_per_req"] = round(res["server_cpu_ms_per_req"] + res["db_cpu_ms_per_req"], 2)
    if proc.returncode != 0:
        res["error"] = proc.stderr[-500:]
    log(f"  {case:12s} {s.label:20s} {res.get('rps', 0):8.1f} req/s  p50 {res.get('p50_ms', 0):8.1f} ms  "
        f"p99 {res.get('p99_ms', 0):8.1f} ms  non-2xx {res['non_2xx']} sockerr {res['socket_errors']}  "
        f"cpu ms/req app {res.get('server_cpu_ms_per_req', 0)} db {res.get('db_cpu_ms_per_req', 0)}  "
        f"load {before[0]}->{after[0]}")
    return res


def page_all(s: Server, limit: int, n: int, cap_s: float, admin_dsn: str) -> dict:
    """Follow `next` links from items?limit=LIMIT to the end (one httpx client); count and check ids."""
    url = s.base + s.items(limit=limit)
    ids: set = set()
    pages = nbytes = 0
    page_s: list[float] = []
    capped = False
    before = loadavg()
    c0 = time.process_time()  # this process is the client: its CPU (httpx, orjson, ids)
    with CpuWatch(s, admin_dsn) as cw, httpx.Client(timeout=600) as client:
        t0 = time.perf_counter()
        while url:
            t = time.perf_counter()
            r = client.get(url)
            if r.status_code != 200:
                raise SystemExit(f"{s.label}: paging got HTTP {r.status_code} at {url}: {r.text[:300]}")
            doc = orjson.loads(r.content)
            page_s.append(time.perf_counter() - t)
            nbytes += len(r.content)
            pages += 1
            ids.update(f.get("id") for f in doc["features"])
            url = next((lk["href"] for lk in doc.get("links", []) if lk.get("rel") == "next"), None)
            if not doc["features"]:
                url = None
            if url and time.perf_counter() - t0 > cap_s:
                capped = True
                break
        wall = time.perf_counter() - t0
    res = {"wall_s": round(wall, 2), "pages": pages, "features": len(ids), "complete": len(ids) == n,
           "capped": capped, "mb": round(nbytes / 2**20, 1), "features_per_s": round(len(ids) / wall),
           "page_s_first": round(page_s[0], 3), "page_s_last": round(page_s[-1], 3),
           "page_s_median": round(statistics.median(page_s), 3), "page_s_max": round(max(page_s), 3),
           "loadavg_before": before, "loadavg_after": loadavg(), **cw.result(),
           "client_cpu_s": round(time.process_time() - c0, 2)}
    log(f"  paging       {s.label:20s} {wall:8.1f} s  {pages} pages, {len(ids):,} features "
        f"({'complete' if res['complete'] else 'INCOMPLETE'}{', CAPPED' if capped else ''}), "
        f"page s first {res['page_s_first']} last {res['page_s_last']}, load {before[0]}->{res['loadavg_after'][0]}")
    return res


_NEXT = re.compile(rb'\{[^{}]*"rel"\s*:\s*"next"[^{}]*\}')
_RETURNED = re.compile(rb'"numberReturned"\s*:\s*(\d+)')


def page_all_curl(s: Server, limit: int, n: int, cap_s: float, admin_dsn: str, tmp: Path) -> dict:
    """The same walk with curl (a C client that does not parse the pages): the servers' own time.

    The next link and numberReturned are read from the first and last 16 KB of each page (the
    servers put them before or after the features)."""
    url = s.base + s.items(limit=limit)
    pages = nbytes = total = 0
    curl_s = 0.0
    capped = False
    before = loadavg()
    with CpuWatch(s, admin_dsn) as cw:
        t0 = time.perf_counter()
        while url:
            out = subprocess.run(["curl", "-s", "-o", str(tmp), "-w", "%{http_code} %{time_total} %{size_download}",
                                  url], capture_output=True, text=True).stdout.split()
            if not out or out[0] != "200":
                raise SystemExit(f"{s.label}: curl paging got {out} at {url}")
            curl_s += float(out[1])
            size = int(float(out[2]))
            nbytes += size
            pages += 1
            with open(tmp, "rb") as fh:
                head = fh.read(16384)
                fh.seek(max(0, size - 16384))
                tail = fh.read()
            m = _RETURNED.search(tail) or _RETURNED.search(head)
            returned = int(m.group(1)) if m else 0
            total += returned
            link = _NEXT.search(tail) or _NEXT.search(head)
            url = orjson.loads(link.group(0))["href"] if link and returned else None
            if url and time.perf_counter() - t0 > cap_s:
                capped = True
                break
        wall = time.perf_counter() - t0
    tmp.unlink(missing_ok=True)
    res = {"wall_s": round(wall, 2), "curl_time_total_s": round(curl_s, 2), "pages": pages,
           "features": total, "complete": total == n, "capped": capped, "mb": round(nbytes / 2**20, 1),
           "loadavg_before": before, "loadavg_after": loadavg(), **cw.result()}
    log(f"  paging curl  {s.label:20s} {wall:8.1f} s (curl {curl_s:.1f} s)  {pages} pages, {total:,} features"
        f"{', CAPPED' if capped else ''}, load {before[0]}->{res['loadavg_after'][0]}")
    return res


def log_lines(s: Server, logdir: Path, text: str) -> int:
    f = logdir / f"server-{s.key}.log"
    return f.read_text(errors="replace").count(text) if f.exists() else 0


def abort_case(s: Server, n_abort: int, admin_dsn: str, logdir: Path, settle_max: float = 180) -> dict:
    """Clients that go away: n requests items?limit=10000, each closed after its first 64 KB.

    What a web map does when the view moves on. Measured: the server's CPU and its PostgreSQL
    backends' CPU per aborted request until the server is idle again (a server that does not
    stream computes the whole page anyway), and the database connections it discards (ours logs
    "discarding closed connection")."""
    path = s.items(limit=10000)
    host, port = "127.0.0.1", s.port
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        pids0 = {r[0] for r in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
            (DB_NAME, s.app_name))}
    discards0 = log_lines(s, logdir, "discarding closed connection")
    before = loadavg()
    with CpuWatch(s, admin_dsn) as cw:
        t0 = time.perf_counter()
        for _ in range(n_abort):
            with socket.create_connection((host, port), timeout=60) as sock:
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
                got = 0
                while got < 65536:
                    b = sock.recv(65536)
                    if not b:
                        break
                    got += len(b)
            time.sleep(0.02)
        sent_s = time.perf_counter() - t0
        # wait until the server is idle again (it may still be computing abandoned pages)
        pids = session_pids(s.proc.pid)
        last = sum(cpu_seconds(pids).values())
        deadline = time.monotonic() + settle_max
        while time.monotonic() < deadline:
            time.sleep(1.0)
            now = sum(cpu_seconds(pids).values())
            if now - last < 0.03:
                break
            last = now
    time.sleep(1.0)  # the pool replaces discarded connections in the background
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        pids1 = {r[0] for r in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
            (DB_NAME, s.app_name))}
    res = {"aborted": n_abort, "send_s": round(sent_s, 2), **cw.result(),
           "server_cpu_ms_per_abort": round(1000 * cw.app_cpu / n_abort, 1),
           "db_cpu_ms_per_abort": round(1000 * cw.db_cpu / n_abort, 1),
           "backends_gone": len(pids0 - pids1), "backends_new": len(pids1 - pids0),
           "discarded_logged": log_lines(s, logdir, "discarding closed connection") - discards0,
           "loadavg_before": before, "loadavg_after": loadavg()}
    log(f"  abort        {s.label:20s} {n_abort} aborted: server CPU {res['server_cpu_ms_per_abort']} ms/abort, "
        f"db {res['db_cpu_ms_per_abort']} ms/abort (sampled), backends gone {res['backends_gone']}, "
        f"new {res['backends_new']}, discards logged {res['discarded_logged']}")
    return res


def connect_cost(dsn: str, n: int = 20) -> dict:
    """What one new database connection costs the client (SCRAM authentication, backend start)."""
    lat = []
    for _ in range(n):
        t = time.perf_counter()
        psycopg.connect(dsn, autocommit=True).close()
        lat.append((time.perf_counter() - t) * 1000)
    return {"p50_ms": round(pct(lat, 50), 2), "max_ms": round(max(lat), 2), "n": n}


def ogr_all(s: Server, page_size: int, n: int, cap_s: float, admin_dsn: str, logdir: Path) -> dict:
    dest = OUT / f"api_bench_ogr_{s.key}.gpkg"
    if dest.exists():
        dest.unlink()
    cmd = ["ogr2ogr", "-f", "GPKG", str(dest), f"OAPIF:{s.base}/collections/{s.cid}",
           "-oo", f"PAGE_SIZE={page_size}"]
    before = loadavg()
    capped = False
    import resource

    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with CpuWatch(s, admin_dsn) as cw:
        t0 = time.perf_counter()
        with open(logdir / f"ogr2ogr-{s.key}.log", "w") as fh:
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
            STARTED.append(proc)
            try:
                rc = proc.wait(cap_s)
            except subprocess.TimeoutExpired:
                capped = True
                stop(proc)
                rc = None
            STARTED.remove(proc)
        wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    count = None
    try:
        import pyogrio

        count = int(pyogrio.read_info(dest)["features"])
    except Exception as exc:  # noqa: BLE001 - a capped run may leave an unreadable file
        count = f"unreadable: {exc}"
    size_mb = round(dest.stat().st_size / 2**20, 1) if dest.exists() else None
    if dest.exists():
        dest.unlink()
    res = {"wall_s": round(wall, 1), "returncode": rc, "capped": capped, "features": count,
           "complete": count == n, "gpkg_mb": size_mb, "cmd": " ".join(cmd),
           "loadavg_before": before, "loadavg_after": loadavg(), **cw.result(),
           "client_cpu_s": round(client_cpu, 2)}
    log(f"  ogr2ogr      {s.label:20s} {wall:8.1f} s  rc {rc} features {count}"
        f"{' CAPPED' if capped else ''}  load {before[0]}->{res['loadavg_after'][0]}")
    return res


# --- the floor: PostgreSQL alone, running our server's own SQL -------------------------------------
CONN_OPTIONS = ("-c TimeZone=UTC -c jit=off -c max_parallel_workers_per_gather=0 "
                "-c plan_cache_mode=force_custom_plan")


def floor_queries(coll, case: str, wl: dict) -> list[tuple]:
    from gis.query import FeatureQuery, feature_sql, page_sql

    out = []
    if case == "a_bbox100":
        for b in wl["small_boxes"]:
            out.append(page_sql(FeatureQuery(collection=coll, bbox_envelope=tuple(b), limit=100))[:2])
    elif case == "b_limit1000":
        out.append(page_sql(FeatureQuery(collection=coll, limit=1000))[:2])
    elif case == "b_bbox1000":
        for b in wl["big_boxes"]:
            out.append(page_sql(FeatureQuery(collection=coll, bbox_envelope=tuple(b), limit=1000))[:2])
    elif case == "c_item":
        for i in wl["ids"]:
            out.append(feature_sql(FeatureQuery(collection=coll, feature_id=str(i)))[:2])
    return out


def pct(v: list[float], p: float) -> float:
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


async def _floor_concurrent(dsn: str, queries: list[tuple], conns: int, duration: float) -> dict:
    lat: list[float] = []
    stop_at = time.perf_counter() + duration

    cpu: list[float] = []

    async def worker(k: int) -> None:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True, options=CONN_OPTIONS,
                                                         application_name="bench-floor") as conn:
            pid = conn.info.backend_pid
            c0 = cpu_seconds([pid]).get(pid, 0.0)
            i = (k * 7919) % len(queries)
            while time.perf_counter() < stop_at:
                stmt, params = queries[i]
                t = time.perf_counter()
                cur = conn.cursor(binary=True)
                await cur.execute(stmt, params, prepare=True)
                await cur.fetchall()
                lat.append((time.perf_counter() - t) * 1000)
                i = (i + 1) % len(queries)
            cpu.append(cpu_seconds([pid]).get(pid, c0) - c0)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(conns)))
    wall = time.perf_counter() - t0
    return {"qps": round(len(lat) / wall, 1), "p50_ms": round(pct(lat, 50), 2),
            "p99_ms": round(pct(lat, 99), 2), "queries": len(lat), "db_backend_cpu_s": round(sum(cpu), 2),
            "db_cpu_ms_per_query": round(1000 * sum(cpu) / max(len(lat), 1), 2)}


def floor(dsn: str, cases: list[str], wl: dict, args, paging: bool = True) -> dict:
    from gis.catalog import load_catalog

    out: dict = {}
    with psycopg.connect(dsn, autocommit=True, options=CONN_OPTIONS,
                         application_name="bench-floor") as conn:
        coll = load_catalog(conn)["parcels"]
        for case in cases:
            qs = floor_queries(coll, case, wl)
            # one connection, each query once (prepared, after one warm-up pass over a few)
            for stmt, params in qs[:5]:
                conn.cursor(binary=True).execute(stmt, params, prepare=True).fetchall()
            lat, nbytes = [], 0
            for stmt, params in (qs * max(1, 20 // len(qs)))[: max(len(qs), 20)]:
                t = time.perf_counter()
                rows = conn.cursor(binary=True).execute(stmt, params, prepare=True).fetchall()
                lat.append((time.perf_counter() - t) * 1000)
                nbytes += sum(len(r[0]) for r in rows)
            stmt, params = qs[0]
            plan = conn.execute(sql.SQL("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ") + stmt, params).fetchone()[0]
            plan = plan if isinstance(plan, list) else json.loads(plan)
            res = {"one_conn": {"queries": len(lat), "p50_ms": round(pct(lat, 50), 2),
                                "p99_ms": round(pct(lat, 99), 2),
                                "mean_feature_bytes_per_query": round(nbytes / len(lat))},
                   "explain_execution_ms": round(plan[0]["Execution Time"], 2),
                   "explain_planning_ms": round(plan[0]["Planning Time"], 2),
                   "explain_top_node": plan[0]["Plan"]["Node Type"]}
            before = loadavg()
            busy0 = machine_busy()
            res["conns"] = asyncio.run(_floor_concurrent(dsn, qs, args.connections, args.floor_duration))
            res["conns"].update(connections=args.connections, loadavg_before=before, loadavg_after=loadavg(),
                                machine_busy_cpu_s=round(machine_busy() - busy0, 2))
            out[case] = res
            log(f"  floor {case:12s} 1 conn p50 {res['one_conn']['p50_ms']} ms p99 {res['one_conn']['p99_ms']} ms; "
                f"{args.connections} conns {res['conns']['qps']} q/s p50 {res['conns']['p50_ms']} ms "
                f"p99 {res['conns']['p99_ms']} ms; EXPLAIN exec {res['explain_execution_ms']} ms")
        if not paging:
            return out
        # the whole table as one query (server-side cursor), as our server's SQL builds it
        from gis.query import FeatureQuery, page_sql

        stmt, params, _ = page_sql(FeatureQuery(collection=coll, limit=args.n))
        t0 = time.perf_counter()
        nrows = nbytes = 0
        with conn.transaction():
            cur = conn.cursor(name="floor_all", binary=True)
            cur.execute(stmt, params)
            while rows := cur.fetchmany(10_000):
                nrows += len(rows)
                nbytes += sum(len(r[0]) for r in rows)
            cur.close()
        out["paging"] = {"wall_s": round(time.perf_counter() - t0, 2), "features": min(nrows, args.n),
                         "mb": round(nbytes / 2**20, 1)}
        log(f"  floor paging: whole table as one query {out['paging']['wall_s']} s, {out['paging']['mb']} MB")
    return out


# --- reporting -----------------------------------------------------------------------------------
def aggregate(results: dict) -> None:
    """results["wrk"]: per case and server, the round with the most req/s (its latencies with it),
    and the CPU per request averaged over all rounds (a sampled figure: backends are found by pid)."""
    results["wrk"] = {}
    for case, rounds in results.get("wrk_rounds", {}).items():
        results["wrk"][case] = {}
        for k, v in rounds.items():
            best = dict(max(v, key=lambda r: r.get("rps", 0)))
            best["rps_rounds"] = [r.get("rps") for r in v]
            for m in ("server_cpu_ms_per_req", "db_cpu_ms_per_req", "cpu_ms_per_req"):
                vals = [r[m] for r in v if r.get(m) is not None]
                best[m + "_rounds"] = vals
                best[m] = round(statistics.mean(vals), 2) if vals else None
            results["wrk"][case][k] = best


def report(path: Path) -> int:
    """Recompute the aggregates, goals and table of a results file (no measuring)."""
    results = json.loads(path.read_text())
    aggregate(results)
    results["goals"] = goals(results)
    results["markdown"] = markdown(results)
    path.write_text(json.dumps(results, indent=2, default=str))
    print(results["markdown"])
    print()
    print(json.dumps(results["goals"], indent=1))
    return 0


def ratio(a, b):
    return round(a / b, 2) if a and b else None


def goals(results: dict) -> dict:
    runs, g = results["wrk"], {}
    for case in CASES:
        r = runs.get(case, {})
        ours = r.get("ours", {}).get("rps")
        g[case] = {"ours_over_tipg": ratio(ours, r.get("tipg", {}).get("rps")),
                   "ours_over_pygeoapi": ratio(ours, r.get("pygeoapi", {}).get("rps")),
                   "ours2_over_tipg": ratio(r.get("ours2", {}).get("rps"), r.get("tipg", {}).get("rps")),
                   "ours_p99_over_p50": ratio(r.get("ours", {}).get("p99_ms"), r.get("ours", {}).get("p50_ms"))}
        cpu = {k: r.get(k, {}).get("cpu_ms_per_req") for k in ("ours", "tipg", "pygeoapi")}
        g[case]["cpu_per_req_tipg_over_ours"] = ratio(cpu["tipg"], cpu["ours"])
        g[case]["cpu_per_req_pygeoapi_over_ours"] = ratio(cpu["pygeoapi"], cpu["ours"])
        g[case]["met_vs_tipg"] = (g[case]["ours_over_tipg"] or 0) >= GOALS["items_vs_tipg"]
        g[case]["met_vs_pygeoapi"] = (g[case]["ours_over_pygeoapi"] or 0) >= GOALS["vs_pygeoapi"]
        g[case]["met_p99"] = (g[case]["ours_p99_over_p50"] or 99) < GOALS["p99_over_p50"]
    for key in ("paging", "paging_curl", "ogr2ogr"):
        r = results.get(key, {})
        ours = r.get("ours", {}).get("wall_s")
        def scpu(k):
            x = r.get(k)
            return x["server_cpu_s"] + x["db_backend_cpu_s"] if x else None

        g[key] = {"tipg_over_ours": ratio(r.get("tipg", {}).get("wall_s"), ours),
                  "pygeoapi_over_ours": ratio(r.get("pygeoapi", {}).get("wall_s"), ours),
                  "server_cpu_tipg_over_ours": ratio(scpu("tipg"), scpu("ours")),
                  "server_cpu_pygeoapi_over_ours": ratio(scpu("pygeoapi"), scpu("ours"))}
        g[key]["met_vs_tipg"] = (g[key]["tipg_over_ours"] or 0) >= GOALS["paging_vs_tipg"]
        g[key]["met_vs_pygeoapi"] = (g[key]["pygeoapi_over_ours"] or 0) >= GOALS["vs_pygeoapi"]
    return g


def markdown(results: dict) -> str:
    labels = {k: v["label"] for k, v in results["servers"].items()}
    lines = ["| case | server | req/s, best (all rounds) | p50 ms | p99 ms | p99/p50 | non-2xx | CPU ms/req server + db (mean of rounds) | load 1m before -> after |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for case, title in CASES.items():
        for key, r in results["wrk"].get(case, {}).items():
            allr = ", ".join(f"{x:,.0f}" for x in r.get("rps_rounds", []) if x is not None)
            lines.append(f"| {title} | {labels[key]} | **{r.get('rps', 0):,.1f}** ({allr}) | {r.get('p50_ms', 0):,.1f} | "
                         f"{r.get('p99_ms', 0):,.1f} | {ratio(r.get('p99_ms'), r.get('p50_ms'))} | "
                         f"{r['non_2xx'] + r['socket_errors']} | {r.get('server_cpu_ms_per_req')} + "
                         f"{r.get('db_cpu_ms_per_req')} | {r['loadavg_before'][0]} -> {r['loadavg_after'][0]} |")
        f = results.get("floor", {}).get(case)
        if f:
            c = f["conns"]
            lines.append(f"| {title} | *PostgreSQL alone (our SQL)* | {c['qps']:,.1f} | "
                         f"{f['one_conn']['p50_ms']} (1 conn) / {c['p50_ms']} | {f['one_conn']['p99_ms']} / "
                         f"{c['p99_ms']} | | | - + {c['db_cpu_ms_per_query']} | "
                         f"{c['loadavg_before'][0]} -> {c['loadavg_after'][0]} |")
    lines += ["", "| whole table | server | wall s | features | pages / GPKG MB | MB received | CPU s server + db / client | load 1m before -> after |",
              "|---|---|---:|---:|---:|---:|---:|---|"]
    for key, r in results.get("paging", {}).items():
        lines.append(f"| paging, limit={results['page_limit']}, httpx | {labels[key]} | {r['wall_s']:,.1f}"
                     f"{' (capped)' if r['capped'] else ''} | {r['features']:,} | {r['pages']} | {r['mb']} | "
                     f"{r['server_cpu_s']} + {r['db_backend_cpu_s']} / {r.get('client_cpu_s')} | "
                     f"{r['loadavg_before'][0]} -> {r['loadavg_after'][0]} |")
    fp = results.get("floor", {}).get("paging")
    if fp:
        lines.append(f"| paging | *PostgreSQL alone (our SQL, one query)* | {fp['wall_s']} | {fp['features']:,} | 1 | "
                     f"{fp['mb']} | | |")
    for key, r in results.get("paging_curl", {}).items():
        lines.append(f"| paging, limit={results['page_limit']}, curl (no parsing) | {labels[key]} | "
                     f"{r['wall_s']:,.1f}{' (capped)' if r['capped'] else ''} (curl {r['curl_time_total_s']}) | "
                     f"{r['features']:,} | {r['pages']} | {r['mb']} | {r['server_cpu_s']} + {r['db_backend_cpu_s']} / - | "
                     f"{r['loadavg_before'][0]} -> {r['loadavg_after'][0]} |")
    for key, r in results.get("ogr2ogr", {}).items():
        feats = f"{r['features']:,}" if isinstance(r["features"], int) else str(r["features"])
        lines.append(f"| ogr2ogr OAPIF -> GPKG, PAGE_SIZE={results['page_limit']} | {labels[key]} | "
                     f"{r['wall_s']:,.1f}{' (capped)' if r['capped'] else ''} | {feats} | {r['gpkg_mb']} | | "
                     f"{r['server_cpu_s']} + {r['db_backend_cpu_s']} / {r.get('client_cpu_s')} | "
                     f"{r['loadavg_before'][0]} -> {r['loadavg_after'][0]} |")
    if results.get("abort"):
        lines += ["", "| clients that go away (items?limit=10000 closed after 64 KB) | server | server CPU ms per aborted request | "
                  "DB backend CPU ms (sampled) | DB connections discarded / aborted requests |",
                  "|---|---|---:|---:|---:|"]
        for key, r in results["abort"].items():
            lines.append(f"| {r['aborted']} aborted requests | {labels[key]} | {r['server_cpu_ms_per_abort']} | "
                         f"{r['db_cpu_ms_per_abort']} | {max(r['discarded_logged'], r['backends_gone'])} / {r['aborted']} |")
    return "\n".join(lines)


def versions(dsn: str) -> dict:
    v = {"python": platform.python_version(), "cpus": os.cpu_count(),
         "mem_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
         "cpu_model": next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                            if ln.startswith("model name")), platform.machine()),
         "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.strip().splitlines()[:1],
         "ogr2ogr": subprocess.run(["ogr2ogr", "--version"], capture_output=True, text=True).stdout.strip()}
    with psycopg.connect(dsn) as conn:
        v["postgres"] = conn.execute("SHOW server_version").fetchone()[0]
        v["postgis"] = conn.execute("SELECT postgis_lib_version()").fetchone()[0]
        v["pg_settings"] = dict(conn.execute(
            "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name IN "
            "('shared_buffers','work_mem','max_connections','effective_cache_size')").fetchall())
    return v


def code_fingerprint() -> dict:
    out = {}
    for pkg in ("api", "gis"):
        h = hashlib.sha256()
        for f in sorted((ROOT / pkg).rglob("*")):
            if f.is_file() and f.suffix in (".py", ".sql", ".html", ".toml"):
                h.update(str(f.relative_to(ROOT)).encode() + b"\0" + f.read_bytes())
        out[pkg] = h.hexdigest()[:16]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=500_000, help="parcels (default 500,000)")
    ap.add_argument("--seed", type=int, default=2025)
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                    help="data folder of the bench cluster (default var/bench-api)")
    ap.add_argument("--servers", default="ours,tipg,pygeoapi,ours2",
                    help="servers, in the order they are run within each case")
    ap.add_argument("--cases", default="a_bbox100,b_limit1000,b_bbox1000,c_item,paging,paging_curl,abort,ogr2ogr,floor")
    ap.add_argument("--duration", type=int, default=15, help="seconds per wrk run (default 15)")
    ap.add_argument("--warmup", type=int, default=3, help="seconds of wrk warm-up before each run")
    ap.add_argument("--rounds", type=int, default=2, help="wrk runs per server and case (best one shown)")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--urls", type=int, default=200, help="URLs per rotating list (default 200)")
    ap.add_argument("--page-limit", type=int, default=10_000)
    ap.add_argument("--cap", type=float, default=600, help="seconds at most per server for paging / ogr2ogr")
    ap.add_argument("--floor-duration", type=float, default=8)
    ap.add_argument("--aborts", type=int, default=40, help="aborted requests per server (case abort)")
    ap.add_argument("--reload", action="store_true", help="drop the bench database and load again")
    ap.add_argument("--keep-db", action="store_true", help="leave the bench cluster running at the end")
    ap.add_argument("--quick", action="store_true", help="50,000 parcels, 5 s runs, no ogr2ogr")
    ap.add_argument("--tag", default="")
    ap.add_argument("--patched-api", type=Path, default=None,
                    help="folder with a patched copy of api/ (DIR/api/...): server key ours_patched runs it")
    ap.add_argument("--report", type=Path, default=None,
                    help="only recompute the table and goals of an earlier results JSON")
    args = ap.parse_args(argv)
    if args.report is None and shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (the load generator of this benchmark).")
    if args.report:
        return report(args.report)
    global PATCHED_API
    PATCHED_API = args.patched_api.resolve() if args.patched_api else None
    if args.quick:
        args.n, args.duration, args.warmup, args.urls, args.floor_duration, args.rounds = 50_000, 5, 1, 50, 3, 1
        args.cases = args.cases.replace(",ogr2ogr", "")
    cases = args.cases.split(",")
    keys = args.servers.split(",")

    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    logdir = OUT / "logs" / f"api-{stamp}"
    logdir.mkdir(parents=True, exist_ok=True)
    for name in ("DATABASE_URL", *LIBPQ_ENV):
        os.environ.pop(name, None)  # the bench cluster, whatever the environment says
    settings = Settings(data_dir=args.data_dir, database_url=None)

    from gis.embedded import EmbeddedCluster

    cluster = EmbeddedCluster(settings)
    was_running = cluster.running()

    def cleanup() -> None:
        stop_all()
        if not args.keep_db and not was_running and cluster.running():
            log(f"stopping the bench cluster in {cluster.root}")
            cluster.stop()

    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    results: dict = {"n": args.n, "seed": args.seed, "started": stamp, "argv": sys.argv[1:],
                     "duration_s": args.duration, "connections": args.connections,
                     "wrk_threads": args.threads, "page_limit": args.page_limit,
                     "code_at_start": code_fingerprint(), "goals_def": GOALS, "reference": REFERENCE,
                     "loadavg_start": loadavg()}
    path = dataset(args.n, args.seed)
    cluster_dsn = db.resolve_dsn(settings)  # starts the bench cluster
    log(f"bench cluster: {cluster.root} (port {cluster.port}; was running: {was_running})")
    results["load"] = load(cluster_dsn, path, args.n, args.data_dir, args.reload, logdir)
    dsn = with_db(cluster_dsn, DB_NAME)
    admin = with_db(cluster_dsn, "postgres")
    results["versions"] = versions(dsn)
    wl = workload(dsn, args.seed, args.urls)
    results["workload"] = {k: v for k, v in wl.items() if k not in ("small_boxes", "big_boxes", "ids",
                                                                   "small_counts_all", "big_counts_all")}
    (logdir / "workload.json").write_text(json.dumps(wl))
    log(f"workload: 200 m boxes hold {wl['small_counts']} parcels; big boxes {wl['big_counts']}")

    servers = start_servers(keys, dsn, args.data_dir, logdir)
    results["servers"] = {k: {"label": s.label, "collection": s.cid, "port": s.port, **s.extra}
                          for k, s in servers.items()}
    results["same_features"] = check_same(servers, wl)

    # Each case is run `rounds` times, the servers in turn (reversed order every other round); the
    # table shows each server's best round: other work on the shared machine only ever slows a run.
    results["wrk"], results["wrk_rounds"] = {}, {}
    for case in [c for c in cases if c in CASES]:
        log(f"case {case}: {CASES[case]}")
        rounds: dict[str, list[dict]] = {k: [] for k in servers}
        for rnd in range(args.rounds):
            order = list(servers) if rnd % 2 == 0 else list(servers)[::-1]
            for k in order:
                rounds[k].append(run_wrk(servers[k], case, wl, args, admin, logdir, rnd))
        results["wrk_rounds"][case] = rounds
        if "floor" in cases:  # right after the servers' runs, in the same conditions as far as can be
            results.setdefault("floor", {}).update(floor(dsn, [case], wl, args, paging=False))
    aggregate(results)
    if "paging" in cases:
        log(f"paging the whole table at limit={args.page_limit}")
        results["paging"] = {k: page_all(s, args.page_limit, args.n, args.cap, admin)
                             for k, s in servers.items()}
        if "floor" in cases:
            results.setdefault("floor", {}).update(floor(dsn, [], wl, args, paging=True))
    if "paging_curl" in cases:
        log(f"paging the whole table at limit={args.page_limit} with curl (no parsing)")
        results["paging_curl"] = {k: page_all_curl(s, args.page_limit, args.n, args.cap, admin,
                                                   logdir / "curl-page.json") for k, s in servers.items()}
    if "abort" in cases:
        log(f"clients that go away: {args.aborts} requests per server closed after 64 KB")
        results["abort"] = {k: abort_case(s, args.aborts, admin, logdir) for k, s in servers.items()}
        results["connect_cost"] = connect_cost(dsn)
        log(f"  a new database connection: {results['connect_cost']}")
    if "ogr2ogr" in cases:
        log("ogr2ogr of the whole layer")
        results["ogr2ogr"] = {k: ogr_all(s, args.page_limit, args.n, args.cap, admin, logdir)
                              for k, s in servers.items() if k in ("ours", "tipg", "pygeoapi")}
    stop_all()

    results["goals"] = goals(results)
    results["loadavg_end"] = loadavg()
    results["code_at_end"] = code_fingerprint()
    if results["code_at_end"] != results["code_at_start"]:
        log("WARNING: api/ or gis/ changed during the run (concurrent edits): re-run to be sure")
    md = markdown(results)
    results["markdown"] = md
    tag = f"-{args.tag}" if args.tag else ""
    dest = OUT / f"api_bench_n{args.n}{tag}-{stamp}.json"
    dest.write_text(json.dumps(results, indent=2, default=str))
    shutil.copyfile(dest, OUT / f"api_bench_n{args.n}{tag}-latest.json")
    print()
    print(md)
    print()
    print(json.dumps(results["goals"], indent=1))
    print(f"results: {dest.relative_to(ROOT)}; logs: {logdir.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
