"""Real clients against a real server: ``gis serve`` started once for the session, over HTTP.

The server runs as its own process (as ``tests/api/test_server.py`` does), on a free port, with
``DATABASE_URL`` set to a database of the test cluster that holds the whole demo dataset, loaded
through the real ingest jobs. Its access log is kept in a file, so that a test can see which
requests a client really sent (``live.requests_since(mark)``). The database is the oracle: every
count, type and value a client reports is compared with SQL on it (``live_db``).
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import psycopg
import pytest
from api_helpers import GisServer
from psycopg import sql

from gis.catalog import Collection, load_catalog

TESTS = Path(__file__).resolve().parents[2]

_ACCESS = re.compile(r'"GET (\S+) HTTP/1\.[01]" (\d{3})')


def _conftest(config: pytest.Config, path: Path):
    """The already-imported conftest module at ``path`` (to reuse its helpers, not copy them)."""
    for plugin in config.pluginmanager.get_plugins():
        f = getattr(plugin, "__file__", None)
        if f and Path(f).resolve() == path:
            return plugin
    raise RuntimeError(f"conftest {path} is not loaded")


@dataclass
class Request:
    """One GET the server logged: its path, query parameters and status."""

    path: str
    params: dict[str, str]
    status: int


@dataclass
class LiveServer:
    """A running ``gis serve`` process."""

    base: str
    proc: subprocess.Popen
    log: Path

    def mark(self) -> int:
        """A position in the access log; see :meth:`requests_since`."""
        time.sleep(0.05)  # let the server write the lines of requests already answered
        return self.log.stat().st_size

    def requests_since(self, mark: int) -> list[Request]:
        """The GET requests logged after ``mark``."""
        time.sleep(0.2)
        text = self.log.read_bytes()[mark:].decode("utf-8", "replace")
        out = []
        for target, status in _ACCESS.findall(text):
            parts = urlsplit(target)
            out.append(Request(parts.path, dict(parse_qsl(parts.query)), int(status)))
        return out

    def text(self) -> str:
        return self.log.read_text("utf-8", "replace")


@pytest.fixture(scope="session")
def live_dsn(request, cluster_dsn, tmp_path_factory) -> str:
    """A database of the test cluster with the demo dataset ingested (read-only, session-wide)."""
    root = _conftest(request.config, TESTS / "conftest.py")
    api = _conftest(request.config, TESTS / "api" / "conftest.py")
    url = root.new_database(cluster_dsn)
    api.load_sample(url, tmp_path_factory.mktemp("clients_sample"))
    yield url
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(cluster_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def live_db(live_dsn):
    """A connection to the server's database, to compare what clients report with."""
    with psycopg.connect(live_dsn, autocommit=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        yield conn


@pytest.fixture(scope="session")
def catalog(live_db) -> dict[str, Collection]:
    """The published collections, as :mod:`gis.catalog` reads them from the database."""
    return load_catalog(live_db)


@pytest.fixture(scope="session")
def live(live_dsn, tmp_path_factory) -> LiveServer:
    """``gis serve`` on a free port, started once, with its access log in a file."""
    log = tmp_path_factory.mktemp("live") / "serve.log"
    with GisServer({"DATABASE_URL": live_dsn}, log, ("--workers", "1")) as proc:
        server = LiveServer(proc.base, proc.proc, log)
        yield server
    # no request of the whole session may have crashed the server
    assert "unhandled error" not in server.text(), server.text()[-3000:]


@pytest.fixture(scope="session")
def http(live):
    with httpx.Client(base_url=live.base, timeout=60) as client:
        yield client
