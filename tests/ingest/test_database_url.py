"""The DATABASE_URL path: a configured PostgreSQL server instead of the embedded cluster.

Uses the server on 127.0.0.1:5432 (trust authentication, user postgres) when there is one: a fresh
database is created there, migrated and loaded with the CLI, then dropped.
"""

from __future__ import annotations

import os
import uuid

import psycopg
import pytest
from ingest_helpers import assert_clean_error, cli
from psycopg import sql

SERVER = os.environ.get("GIS_TEST_SERVER_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="module")
def server():
    try:
        with psycopg.connect(SERVER, connect_timeout=3, autocommit=True) as conn:
            has_postgis = conn.execute(
                "SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'").fetchone()
    except psycopg.Error as exc:
        pytest.skip(f"no PostgreSQL server at {SERVER} (trust auth, user postgres): "
                    f"{str(exc).strip().splitlines()[0] if str(exc).strip() else exc}")
    if not has_postgis:
        pytest.skip(f"the server at {SERVER} has no PostGIS extension available")
    return SERVER


@pytest.fixture
def server_db(server):
    """A fresh, empty (unmigrated) database on the server; dropped afterwards."""
    name = f"gis_ingest_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield server.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_migrate_ingest_and_status_on_a_configured_server(server_db, demo, tmp_path):
    # an unmigrated database: jobs refuse with the fix in the message
    res = cli(["ingest", "poi", str(demo["poi"])], server_db, tmp_path)
    assert_clean_error(res, "run `gis db migrate`", code=1)
    res = cli(["db", "status"], server_db, tmp_path)
    assert res.returncode == 0, res.stderr
    assert "configured database" in res.stdout and "schema 0/" in res.stdout

    res = cli(["db", "migrate"], server_db, tmp_path)
    assert res.returncode == 0, res.stderr
    assert "applied 0001_core" in res.stdout
    res = cli(["db", "migrate"], server_db, tmp_path)
    assert res.returncode == 0 and "The schema is current." in res.stdout

    res = cli(["db", "status"], server_db, tmp_path)
    assert res.returncode == 0, res.stderr
    assert server_db.rsplit("/", 1)[1] in res.stdout and "PostGIS 3" in res.stdout
    latest = res.stdout.split("schema ")[1].split("/")
    assert latest[0] == latest[1].strip()
    res = cli(["db", "url"], server_db, tmp_path)
    assert res.returncode == 0 and res.stdout.strip() == server_db

    res = cli(["ingest", "cadastral", str(demo["cadastral"]), "--valid-from", "2024-01-01"], server_db, tmp_path)
    assert res.returncode == 0, res.stderr
    assert "inserted 600" in res.stdout and "repaired 1" in res.stdout
    res = cli(["ingest", "poi", str(demo["poi"])], server_db, tmp_path)
    assert res.returncode == 0, res.stderr
    res = cli(["ingest", "poi", str(demo["poi"])], server_db, tmp_path)
    assert res.returncode == 0 and "Nothing changed" in res.stdout
    with psycopg.connect(server_db) as conn:
        assert conn.execute("SELECT count(*) FROM cadastral.parcels").fetchone()[0] == 600
        assert conn.execute("SELECT count(*) FROM city.poi").fetchone()[0] == 15
        assert conn.execute("SELECT count(*) FROM private.parcel_owners").fetchone()[0] > 0
        outcomes = [r[0] for r in conn.execute("SELECT outcome FROM ingest.runs ORDER BY run_id")]
        assert outcomes == ["loaded", "loaded", "unchanged"]
        # the embedded cluster was not used: no data folder was made for it
    assert not (tmp_path / "gisdata" / "pg").exists()


def test_unreachable_database_url(tmp_path, demo):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://postgres:hunter2@127.0.0.1:{port}/nowhere"
    for args in (["db", "status"], ["db", "migrate"], ["ingest", "poi", str(demo["poi"])]):
        res = cli(args, url, tmp_path)
        assert_clean_error(res, "Cannot connect to the database", code=1)
        assert "hunter2" not in res.stderr + res.stdout
