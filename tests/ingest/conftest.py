"""Fixtures of the ingest tests (helpers live in ingest_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gis import sample


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> dict[str, Path]:
    """The synthetic demo dataset (read-only: tests that change files copy them first)."""
    return sample.generate(tmp_path_factory.mktemp("demo"))
