"""Fixtures of the tile tests: the demo dataset loaded through the real ingest jobs into PostGIS."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from gis.sample import generate
from ingest.job import IngestOptions, run_ingest

#: (kind, sample file key, valid_from) in load order; the cadastral update comes later in tests
BASE_LOADS = (
    ("cadastral", "cadastral", datetime(2024, 1, 1, tzinfo=UTC)),
    ("planning", "planning", None),
    ("buildings", "buildings", None),
    ("roads", "roads", None),
    ("poi", "poi", None),
)


def load(dsn: str, paths: dict[str, Path], loads=BASE_LOADS) -> None:
    for kind, key, valid_from in loads:
        result = run_ingest(dsn, kind, paths[key], IngestOptions(valid_from=valid_from))
        assert result.outcome == "loaded", result.summary()


@pytest.fixture(scope="session")
def sample_paths(tmp_path_factory) -> dict[str, Path]:
    return generate(tmp_path_factory.mktemp("tiles_sample"))


@pytest.fixture
def loaded_dsn(dsn, sample_paths) -> str:
    """A fresh database with the demo dataset (first cadastral edition only): tests may write."""
    load(dsn, sample_paths)
    return dsn


@pytest.fixture(scope="module")
def shared_dsn(module_dsn, sample_paths) -> str:
    """The demo dataset (both cadastral editions), shared read-only by a module's tests."""
    load(module_dsn, sample_paths, BASE_LOADS + (
        ("cadastral", "cadastral_update", datetime(2025, 1, 1, tzinfo=UTC)),))
    return module_dsn


@pytest.fixture
def conn_of():
    opened = []

    def make(dsn: str) -> psycopg.Connection:
        c = psycopg.connect(dsn, autocommit=True)
        c.execute("SET TimeZone = 'UTC'")
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.close()
