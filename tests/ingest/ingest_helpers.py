"""Helpers of the ingest tests, imported by the test modules: digests, run log, CLI.

Every test loads real files into a real PostGIS database (the ``dsn`` fixture of the top-level
conftest: a fresh migrated database per test) and asserts on the database's contents.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg

from gis.settings import PROJECT_ROOT
from ingest.job import IngestOptions, RunResult, run_ingest

GIS = str(Path(sys.executable).with_name("gis"))

#: Every table an ingest job may write to (besides the run log).
DATA_TABLES = (
    "admin.units", "cadastral.parcels", "cadastral.parcel_lineage", "private.parcel_owners",
    "planning.plans", "planning.lots", "city.buildings", "city.roads", "city.poi",
)
KIND_TABLE = {"admin": "admin.units", "cadastral": "cadastral.parcels", "planning": "planning.lots",
              "buildings": "city.buildings", "roads": "city.roads", "poi": "city.poi"}


def ingest(dsn: str, kind: str, path, tmp_path: Path | None = None, **options) -> RunResult:
    """Run an ingest job through the Python API."""
    rejects = (tmp_path / "rejects") if tmp_path is not None else None
    return run_ingest(dsn, kind, path, IngestOptions(**options), rejects_dir=rejects)


def digest(dsn: str, table: str) -> tuple[int, str | None]:
    """(row count, md5 of all rows in a fixed order). A row's text includes its geometry's EWKB
    (hex), so any change of any column or any coordinate bit changes the digest."""
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            f"SELECT count(*), md5(string_agg(t::text, E'\\n' ORDER BY t::text)) FROM {table} t"
        ).fetchone()


def geom_digest(dsn: str, table: str, key: str) -> str:
    """md5 of ST_AsBinary(geom) in key order (key: a column list)."""
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            f"SELECT md5(string_agg(encode(ST_AsBinary(geom), 'hex'), ',' ORDER BY {key})) FROM {table}"
        ).fetchone()[0]


def snapshot(dsn: str) -> dict[str, tuple[int, str | None]]:
    """Digest of every data table."""
    return {t: digest(dsn, t) for t in DATA_TABLES}


def count(dsn: str, query: str, params=()) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, params).fetchone()[0]


def rows(dsn: str, query: str, params=()) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, params).fetchall()


def runs(dsn: str) -> list[dict]:
    """The run log, oldest first."""
    with psycopg.connect(dsn) as conn:
        cur = conn.execute("SELECT * FROM ingest.runs ORDER BY run_id")
        names = [d.name for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]


def assert_nothing_written(dsn: str, before: dict | None = None) -> None:
    """The data tables are as before (empty when no snapshot is given), and the run log holds no
    successful run besides the ones already there."""
    if before is None:
        for table in DATA_TABLES:
            assert count(dsn, f"SELECT count(*) FROM {table}") == 0, f"{table} was written"
    else:
        assert snapshot(dsn) == before
    log = runs(dsn)
    assert log, "the failure was not recorded in ingest.runs"
    assert log[-1]["outcome"] in ("failed", "interrupted")


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def cli(args: list[str], dsn: str | None, tmp_path: Path, *, timeout: float = 120,
        env: dict | None = None) -> CliResult:
    """Run ``gis ARGS`` in a subprocess with DATABASE_URL=dsn (rejects go under tmp_path)."""
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("DATABASE_URL", "PGHOST", "PGPORT", "PGDATABASE", "PGSERVICE", "PGUSER",
                             "PGHOSTADDR")}
    full_env["GIS_DATA_DIR"] = str(tmp_path / "gisdata")
    if dsn is not None:
        full_env["DATABASE_URL"] = dsn
    full_env.update(env or {})
    proc = subprocess.run([GIS, *args], capture_output=True, text=True, env=full_env, timeout=timeout,
                          cwd=str(PROJECT_ROOT))
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def assert_clean_error(res: CliResult, *fragments: str, code: int = 2) -> None:
    """The CLI failed with ``error: <message>`` naming the problem, and no traceback."""
    assert "Traceback" not in res.stderr + res.stdout, res.stderr
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    assert "error: " in res.stderr, res.stderr
    for f in fragments:
        assert f.lower() in res.stderr.lower(), (f, res.stderr)
