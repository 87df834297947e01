"""Each kind of the demo dataset loads; the counts match; a second run of the same file changes
nothing; the run log records checksum, counts, duration, outcome and user."""

from __future__ import annotations

import getpass
import hashlib

import pyogrio
import pytest
from ingest_helpers import KIND_TABLE, cli, count, digest, ingest, runs, snapshot

from gis import sample

CASES = [  # kind, demo file, expected rows in the kind's table
    ("cadastral", "cadastral", 600),
    ("planning", "planning", 33),
    ("buildings", "buildings", 300),
    ("roads", "roads", 58),
    ("poi", "poi", 15),
]


@pytest.mark.parametrize(("kind", "key", "expected"), CASES, ids=[c[0] for c in CASES])
def test_kind_loads_and_second_run_changes_nothing(dsn, demo, tmp_path, kind, key, expected):
    path = demo[key]
    n_features = pyogrio.read_info(path)["features"]
    assert n_features == expected

    first = ingest(dsn, kind, path, tmp_path)
    assert first.outcome == "loaded"
    assert first.read == n_features
    assert first.inserted == expected and first.updated == 0 and first.rejected == 0
    table = KIND_TABLE[kind]
    assert count(dsn, f"SELECT count(*) FROM {table}") == expected
    assert count(dsn, f"SELECT count(*) FROM {table} WHERE NOT ST_IsValid(geom)") == 0
    assert count(dsn, f"SELECT count(*) FROM {table} WHERE ST_SRID(geom) <> 4326") == 0
    before = snapshot(dsn)

    second = ingest(dsn, kind, path, tmp_path)
    assert second.outcome == "unchanged"
    assert (second.inserted, second.updated, second.retired) == (0, 0, 0)
    assert second.unchanged == expected
    assert snapshot(dsn) == before  # byte-identical, geometry included

    log = runs(dsn)
    assert [r["outcome"] for r in log] == ["loaded", "unchanged"]
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    for r in log:
        assert r["kind"] == kind
        assert r["checksum"] == sha
        assert r["source_path"] == str(path.resolve())
        assert r["os_user"] == getpass.getuser()
        assert r["db_user"]
        assert r["duration_s"] is not None and 0 <= r["duration_s"] < 60
        assert r["finished_at"] >= r["started_at"]
        assert r["n_read"] == expected
        assert r["mapping"] and r["source_crs"]
    assert (log[0]["n_loaded"], log[0]["n_inserted"]) == (expected, expected)
    assert (log[1]["n_loaded"], log[1]["n_unchanged"]) == (0, expected)
    # every row of the table names the run that wrote it
    assert count(dsn, f"SELECT count(*) FROM {table} WHERE run_id = %s", (log[0]["run_id"],)) == expected


def test_planning_plan_and_regulations(dsn, demo, tmp_path):
    ingest(dsn, "planning", demo["planning"], tmp_path)
    plans = count(dsn, "SELECT count(*) FROM planning.plans")
    assert plans == 1
    # MatDoXD is a percentage in the file, a fraction in the table
    assert count(dsn, "SELECT count(*) FROM planning.lots WHERE max_coverage > 1") == 0
    assert count(dsn, "SELECT count(*) FROM planning.lots WHERE max_coverage IS NOT NULL") > 0


def test_repaired_invalid_parcel_is_counted(dsn, demo, tmp_path):
    result = ingest(dsn, "cadastral", demo["cadastral"], tmp_path)
    assert result.repaired == 1
    assert runs(dsn)[-1]["n_repaired"] == 1
    commune, sheet, number = sample.INVALID_PARCEL
    assert count(dsn, "SELECT count(*) FROM cadastral.parcels WHERE commune_code = %s AND sheet_no = %s "
                      "AND parcel_no = %s AND ST_IsValid(geom)", (commune, sheet, number)) == 1


def test_cli_loads_and_reports(dsn, demo, tmp_path):
    res = cli(["ingest", "poi", str(demo["poi"])], dsn, tmp_path)
    assert res.returncode == 0, res.stderr
    assert "Loaded: poi" in res.stdout and "inserted 15" in res.stdout
    res = cli(["ingest", "poi", str(demo["poi"])], dsn, tmp_path)
    assert res.returncode == 0, res.stderr
    assert "Nothing changed" in res.stdout
    assert digest(dsn, "city.poi")[0] == 15
    res = cli(["runs"], dsn, tmp_path)
    assert res.returncode == 0 and "unchanged" in res.stdout and "loaded" in res.stdout
