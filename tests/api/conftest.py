"""Fixtures of the API tests: the demo dataset ingested once into a real PostGIS database.

``sample_dsn`` is the ``module_dsn`` database (cloned from the migrated template) that the read-only
tests of a module share: the sample data of :func:`gis.sample.generate` is loaded through the real
ingest jobs (:func:`ingest.job.run_ingest`), both cadastral editions included, so the parcels have
history, owners in ``private.parcel_owners`` and a split. Tests that change data use ``dsn``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from gis.sample import generate
from gis.settings import Settings
from ingest.job import IngestOptions, run_ingest

#: (kind, sample file key, valid_from) in load order.
LOADS = (
    ("cadastral", "cadastral", datetime(2024, 1, 1, tzinfo=UTC)),
    ("cadastral", "cadastral_update", datetime(2025, 1, 1, tzinfo=UTC)),
    ("planning", "planning", None),
    ("buildings", "buildings", None),
    ("roads", "roads", None),
    ("poi", "poi", None),
)


def load_sample(dsn: str, folder: Path) -> dict[str, Path]:
    """Generate the demo dataset in ``folder`` and ingest all of it into ``dsn``."""
    paths = generate(folder)
    for kind, key, valid_from in LOADS:
        result = run_ingest(dsn, kind, paths[key], IngestOptions(valid_from=valid_from))
        assert result.outcome == "loaded", result.summary()
    return paths


@pytest.fixture(scope="session")
def sample_files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sample")
    generate(folder)
    return folder


@pytest.fixture(scope="module")
def sample_dsn(module_dsn, tmp_path_factory) -> str:
    """A migrated database (``module_dsn``) with the whole demo dataset ingested (read-only)."""
    load_sample(module_dsn, tmp_path_factory.mktemp("sample_load"))
    return module_dsn


@pytest.fixture(scope="module")
def client(sample_dsn) -> TestClient:
    """A TestClient of ``create_app(Settings(database_url=...))`` on the sample database."""
    app = create_app(Settings(database_url=sample_dsn), ApiSettings())
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def db(sample_dsn):
    """A connection to the sample database, to compare responses with."""
    with psycopg.connect(sample_dsn, autocommit=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        yield conn
