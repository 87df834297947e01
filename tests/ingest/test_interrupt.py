"""Transactions under interruption: a job stopped by SIGINT, SIGTERM or SIGKILL in the middle of a
big load leaves the tables exactly as they were."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import psycopg
import pytest
from ingest_helpers import GIS, count, ingest, runs, snapshot

from gis import sample
from gis.settings import PROJECT_ROOT

BIG = 300_000
MEDIUM = 80_000


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """300,000 synthetic parcels (about 100 MB of GeoPackage; a full load takes ~25 s here)."""
    return sample.write_parcels(tmp_path_factory.mktemp("big") / "big.gpkg", BIG)


@pytest.fixture(scope="module")
def medium(tmp_path_factory):
    """80,000 parcels: enough for the merge to be caught running, quick to reach it."""
    return sample.write_parcels(tmp_path_factory.mktemp("medium") / "medium.gpkg", MEDIUM)


def _start(dsn, path, tmp_path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(DATABASE_URL=dsn, GIS_DATA_DIR=str(tmp_path / "gisdata"))
    return subprocess.Popen([GIS, "ingest", "cadastral", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=str(PROJECT_ROOT))


def _wait_for(dsn, proc, pattern: str, timeout: float = 60) -> str:
    """Wait until the job's connection runs a statement matching ``pattern`` (ILIKE)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            hit = conn.execute(
                "SELECT query FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state = 'active' AND query ILIKE %s", (pattern,)).fetchone()
            if hit:
                return hit[0]
            time.sleep(0.02)
    proc.kill()
    pytest.fail(f"the job never ran a statement like {pattern!r}")


def _no_job_left(dsn, timeout: float = 30) -> None:
    """The killed job's server process ends (its transaction rolled back, its lock released)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            n = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                             "AND pid <> pg_backend_pid() AND backend_type = 'client backend'").fetchone()[0]
            if n == 0:
                return
            time.sleep(0.1)
    pytest.fail("the killed job's transaction is still open")


@pytest.fixture
def earlier(dsn, demo, tmp_path):
    """The database already holds the demo cadastre: an interrupted job must leave it as it is."""
    assert ingest(dsn, "cadastral", demo["cadastral"], tmp_path).inserted == 600
    return snapshot(dsn)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_during_copy_rolls_back(dsn, demo, big, tmp_path, sig):
    # SIGINT on an empty database, SIGTERM on one that holds the demo cadastre
    earlier = snapshot(dsn)
    if sig == signal.SIGTERM:
        ingest(dsn, "cadastral", demo["cadastral"], tmp_path)
        earlier = snapshot(dsn)
    proc = _start(dsn, big, tmp_path)
    _wait_for(dsn, proc, "COPY %")  # into a staging table, or straight into the parcels (a first load)
    time.sleep(0.5)  # well inside the load: more batches to read, the merge still to come
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, (proc.returncode, out, err)
    assert "Traceback" not in err
    assert f"interrupted ({sig.name})" in err and "rolled back" in err and "nothing" in err
    assert snapshot(dsn) == earlier
    assert count(dsn, "SELECT count(*) FROM cadastral.parcels") == (600 if sig == signal.SIGTERM else 0)
    log = runs(dsn)
    assert [r["outcome"] for r in log] == (["loaded"] if sig == signal.SIGTERM else []) + ["interrupted"]
    assert log[-1]["message"] == "interrupted by the user"
    assert 0 < log[-1]["n_read"] < BIG
    assert log[-1]["checksum"] and log[-1]["kind"] == "cadastral"
    _no_job_left(dsn)


def test_sigint_during_merge_rolls_back(dsn, medium, tmp_path, earlier):
    proc = _start(dsn, medium, tmp_path)
    _wait_for(dsn, proc, "%INSERT INTO cadastral.parcels%", timeout=120)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert "interrupted (SIGINT)" in err and "Traceback" not in err
    assert snapshot(dsn) == earlier
    log = runs(dsn)
    assert log[-1]["outcome"] == "interrupted" and log[-1]["n_read"] == MEDIUM
    _no_job_left(dsn)


@pytest.mark.parametrize("stage", ["COPY %", "%INSERT INTO cadastral.parcels%"], ids=["copy", "merge"])
def test_sigkill_leaves_tables_as_before(dsn, demo, big, medium, tmp_path, earlier, stage):
    proc = _start(dsn, big if stage.startswith("COPY") else medium, tmp_path)
    _wait_for(dsn, proc, stage, timeout=120)
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    # the server notices the dead client and rolls back (client_connection_check_interval)
    _no_job_left(dsn)
    assert snapshot(dsn) == earlier
    # a killed process cannot record anything: the run log holds only the earlier load
    assert [r["outcome"] for r in runs(dsn)] == ["loaded"]
    # and the kind's lock is free: the next job runs at once
    assert ingest(dsn, "cadastral", demo["cadastral"], tmp_path).outcome == "unchanged"
    assert count(dsn, "SELECT count(*) FROM cadastral.parcels") == 600
