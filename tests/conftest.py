"""Test fixtures: a real embedded PostGIS cluster, and a fresh migrated database per test.

The cluster lives in ``var/test`` (git-ignored), apart from the demo's ``var/pg``. Each test that asks
for ``dsn`` gets its own database, cloned from a template that has all migrations applied, so tests
never see each other's data. No test talks to a mock.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from gis import db
from gis.embedded import EmbeddedCluster
from gis.settings import PROJECT_ROOT, Settings

SHARED = PROJECT_ROOT.parent / "shared" / "data" / "hcmc"
TEMPLATE = "gis_template"
_counter = itertools.count()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real HCMC data beside the checkout (read-only)."""
    if not SHARED.exists():
        pytest.fail(f"The shared HCMC data is missing at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def test_settings(tmp_path_factory) -> Settings:
    """Settings of the test cluster: embedded, in var/test, whatever the environment says."""
    for name in ("DATABASE_URL", "PGHOST", "PGPORT", "PGDATABASE", "PGSERVICE", "PGUSER", "PGHOSTADDR"):
        os.environ.pop(name, None)
    data_dir = Path(os.environ.get("GIS_TEST_DATA_DIR", PROJECT_ROOT / "var" / "test"))
    settings = Settings(data_dir=data_dir, database_url=None)
    if not EmbeddedCluster(settings).reachable():
        # running as root in a checkout under a private folder (e.g. /root): the cluster's unprivileged
        # user cannot reach it, so the test cluster lives in a world-traversable place instead
        fallback = Path("/var/tmp") / ("hcmc-gis-test-" + hashlib.sha1(str(PROJECT_ROOT).encode()).hexdigest()[:10])
        settings = Settings(data_dir=fallback, database_url=None)
    return settings


def _template_name() -> str:
    """The template database of the current migrations (a new migration gives a new template)."""
    digest = hashlib.sha1("".join(m.checksum for m in db.migrations()).encode()).hexdigest()[:12]
    return f"{TEMPLATE}_{digest}"


@pytest.fixture(scope="session")
def cluster_dsn(test_settings) -> str:
    """DSN of the test cluster's maintenance database, with a migrated template database ready.

    Several test sessions may share the cluster (parallel runs): each only drops the databases left
    by sessions whose process is gone, and the template is built once per set of migrations.
    """
    dsn = db.resolve_dsn(test_settings)  # starts the embedded cluster
    admin = dsn.rsplit("/", 1)[0] + "/postgres"
    template = _template_name()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(727000002)")
        try:
            for (name,) in conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE 't\\_%%' OR "
                "(datname LIKE %s AND datname <> %s)", (TEMPLATE + "%", template)
            ).fetchall():
                pid = name.split("_")[1] if name.startswith("t_") else None
                if pid is not None and pid.isdigit() and _alive(int(pid)):
                    continue
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (template,)).fetchone()
            if not exists:
                building = template + "_new"
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(building)))
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(building)))
                db.migrate(dsn.rsplit("/", 1)[0] + "/" + building)
                conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                    sql.Identifier(building), sql.Identifier(template)))
        finally:
            conn.execute("SELECT pg_advisory_unlock(727000002)")
    return admin


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def new_database(cluster_dsn: str) -> str:
    """Create a fresh migrated database from the template; return its DSN."""
    name = f"t_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(cluster_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(_template_name())))
    return cluster_dsn.rsplit("/", 1)[0] + "/" + name


@pytest.fixture
def dsn(cluster_dsn) -> str:
    """A fresh, migrated, empty database for one test."""
    url = new_database(cluster_dsn)
    yield url
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(cluster_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def module_dsn(cluster_dsn) -> str:
    """A fresh migrated database shared by the tests of one module (for read-only tests)."""
    url = new_database(cluster_dsn)
    yield url
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(cluster_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
