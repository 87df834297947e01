"""Helpers and fixtures of the analysis tests: databases loaded with the real data and the sample.

Both databases are built once per test session with the ingest jobs (``ingest.job.run_ingest``),
from the real HCMC files beside the checkout and from the generated sample, and are read-only
for the tests (a test that writes gets its own ``dsn``). Import the fixtures into a test module
with ``from analysis_helpers import real_db, sample_db``.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from gis import db, sample
from gis.settings import PROJECT_ROOT
from ingest.job import IngestOptions, run_ingest

SHARED = PROJECT_ROOT.parent / "shared" / "data" / "hcmc"
WORLDPOP = SHARED / "geoglue-kraemer" / "worldpop" / "hcmc_clip_vnm_ppp_2020_1km_UNadj.tif"
WARDS_2019 = SHARED / "vn-demographic" / "CityScope_HCMC" / "Population_Ward_Level.shp"
DISTRICTS_2019 = SHARED / "vn-demographic" / "CityScope_HCMC" / "Population_District_Level.shp"
WARDS_2025 = SHARED / "vn-provinces-db-2025" / "hcmc_wards_2025.geojson"
CROSSWALK_CSV = SHARED / "vn-admin-2025-crosswalk" / "hcmc_wards_2025_new_to_old.csv"
OD_2014 = SHARED / "csl-saigon-peninsula" / "GIS" / "OD matrix" / "2014" / "2014_HIDS_OD_Matrix.shp"
OD_2018 = SHARED / "csl-saigon-peninsula" / "GIS" / "OD matrix" / "2018" / "Survey_OD.shp"
ROADS_OSM = SHARED / "urbanreflex" / "RoadSegment.geojson"
ROADS_CSL = SHARED / "csl-saigon-peninsula" / "GIS" / "road_network" / "shapefile" / "RoadNetwork_WGS84.shp"
POI_OSM = SHARED / "urbanreflex" / "PointOfInterest.geojson"
LANDUSE_CSL = SHARED / "csl-saigon-peninsula" / "GIS" / "landuse" / "LandUse_Noninteractive.shp"
BUILDINGS_CSL = SHARED / "csl-saigon-peninsula" / "GIS" / "building" / "WGS84-LONLAT" / "Building_full.shp"

#: Census total of the 2019 wards (GSO 2019 for Ho Chi Minh City).
CENSUS_2019_TOTAL = 8_993_082

ADMIN = [WARDS_2019, DISTRICTS_2019, WARDS_2025]
REAL = ADMIN + [ROADS_OSM, ROADS_CSL, POI_OSM, LANDUSE_CSL, BUILDINGS_CSL]
_KIND = {WARDS_2019: "admin", DISTRICTS_2019: "admin", WARDS_2025: "admin", ROADS_OSM: "roads",
         ROADS_CSL: "roads", POI_OSM: "poi", LANDUSE_CSL: "planning", BUILDINGS_CSL: "buildings"}
_names = itertools.count()


def _template() -> str:
    """The migrated template database of the top-level conftest (same naming rule)."""
    digest = hashlib.sha1("".join(m.checksum for m in db.migrations()).encode()).hexdigest()[:12]
    return f"gis_template_{digest}"


def make_db(cluster_dsn: str) -> str:
    """A fresh migrated database (from the test template); its DSN."""
    name = f"t_{os.getpid()}_an{next(_names)}"
    with psycopg.connect(cluster_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name),
                                                                       sql.Identifier(_template())))
    return cluster_dsn.rsplit("/", 1)[0] + "/" + name


def drop_db(cluster_dsn: str, url: str) -> None:
    with psycopg.connect(cluster_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(url.rsplit("/", 1)[1])))


def load(dsn: str, kind: str, path: Path, **options) -> None:
    result = run_ingest(dsn, kind, path, IngestOptions(**options))
    assert result.outcome == "loaded", result.summary()


def load_real(dsn: str) -> None:
    for path in REAL:
        assert path.exists(), f"missing real data file {path}"
        load(dsn, _KIND[path], path)


def load_sample(dsn: str, files: dict[str, Path]) -> None:
    for path in ADMIN:
        load(dsn, "admin", path)
    load(dsn, "cadastral", files["cadastral"])
    load(dsn, "planning", files["planning"])
    load(dsn, "buildings", files["buildings"])
    load(dsn, "roads", files["roads"])
    load(dsn, "poi", files["poi"])


# Each test module that imports a fixture gets its own copy of it: the databases are cached here so
# that they are built once per process, and dropped at the end of the session.
_CACHE: dict[str, object] = {}


def _cached(key: str, make):
    if key not in _CACHE:
        _CACHE[key] = make()
    return _CACHE[key]


@pytest.fixture(scope="session")
def sample_files(tmp_path_factory) -> dict[str, Path]:
    return _cached("sample_files", lambda: sample.generate(tmp_path_factory.mktemp("analysis-sample")))


@pytest.fixture(scope="session")
def real_db(cluster_dsn, shared_data) -> str:
    """A database with the real data: 2019 wards and districts, 2025 wards, OSM and CSL roads, OSM
    POIs (20 hospitals), the CSL land-use plan and buildings (read-only)."""
    def make():
        url = make_db(cluster_dsn)
        load_real(url)
        return url

    url = _cached("real_db", make)
    yield url
    if _CACHE.pop("real_db", None):
        drop_db(cluster_dsn, url)


@pytest.fixture(scope="session")
def sample_db(cluster_dsn, sample_files, shared_data) -> str:
    """A database with the generated sample (cadastre, plan, buildings, roads, POIs) and the real
    administrative units (read-only)."""
    def make():
        url = make_db(cluster_dsn)
        load_sample(url, sample_files)
        return url

    url = _cached("sample_db", make)
    yield url
    if _CACHE.pop("sample_db", None):
        drop_db(cluster_dsn, url)


def count(dsn: str, query: str, params=()) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, params).fetchone()[0]


def rows(dsn: str, query: str, params=()) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, params).fetchall()
