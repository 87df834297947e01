"""The fast paths of a large cadastral load: the direct first load (batches streamed straight into an
empty cadastral.parcels while the next batch is normalised) gives the same rows as the history-keeping
merge, rejects what the merge rejects, re-runs as unchanged, and leaves nothing when interrupted; the
run references of the cadastral tables (migration 0011, checked per statement) still hold."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pyogrio
import pytest
from ingest_helpers import GIS, assert_nothing_written, count, ingest, rows, runs, snapshot

from gis import sample
from gis.errors import InputError
from gis.settings import PROJECT_ROOT
from ingest.loader import DIRECT_MIN_ROWS

N = DIRECT_MIN_ROWS + 5_000
WHEN = datetime(2025, 7, 1, tzinfo=UTC)
OTHER = "99999"  # commune of the few parcels that make the table non-empty (the merge path)

# everything a load writes of a parcel in force, except its ids and run
CONTENT = (
    "SELECT count(*), md5(string_agg(concat_ws('|', p.commune_code, p.sheet_no, p.parcel_no, p.land_use, "
    "p.legal_area_m2, p.address, p.owner_type, p.valid_from, p.source, p.licence, p.row_hash, "
    "encode(ST_AsEWKB(p.geom), 'hex'), o.owner_name, o.id_number), E'\\n' "
    "ORDER BY p.commune_code, p.sheet_no, p.parcel_no)) "
    "FROM cadastral.parcels p LEFT JOIN private.parcel_owners o USING (parcel_id) "
    f"WHERE p.valid_to IS NULL AND p.commune_code <> '{OTHER}'"
)


@pytest.fixture(scope="module")
def parcels(tmp_path_factory):
    """N parcels, with two features sharing a natural key and one naming a lineage parent (on a first
    load no parent can be in force): three rejects; one area only the database hashes."""
    d = tmp_path_factory.mktemp("perf")
    base = sample.write_parcels(d / "base.gpkg", N, seed=11)
    df = pyogrio.read_dataframe(base, layer=sample.LAYER_PARCELS)
    df["ThuaGoc"] = None
    df.loc[101, ["MaXa", "SoHieuToBanDo", "SoThuTuThua"]] = df.loc[100, ["MaXa", "SoHieuToBanDo", "SoThuTuThua"]]
    df.loc[20_500, "ThuaGoc"] = "1/1"
    # an area written with an exponent: its row hash is the database's, so a direct load's batch
    # holding it goes through the staging table (the other batches are COPYed straight in)
    df.loc[22_000, "DienTich"] = 0.00001
    path = d / "parcels.gpkg"
    pyogrio.write_dataframe(df, path, layer=sample.LAYER_PARCELS)
    other = df.head(40).copy()
    other["MaXa"] = OTHER
    other["ThuaGoc"] = None
    other_path = d / "other.gpkg"
    pyogrio.write_dataframe(other, other_path, layer=sample.LAYER_PARCELS)
    return {"file": path, "other": other_path}


def _current(dsn):
    return rows(dsn, CONTENT)[0]


def _rejects(path) -> list[str]:
    """The lines of a rejects file, without its header, sorted."""
    return sorted(Path(path).read_text(encoding="utf-8").splitlines()[1:])


def test_direct_first_load_gives_the_rows_of_the_merge(dsn, tmp_path, parcels):
    # the merge path: the table holds a few parcels of another commune
    assert ingest(dsn, "cadastral", parcels["other"], tmp_path, valid_from=WHEN).inserted == 40
    merged = ingest(dsn, "cadastral", parcels["file"], tmp_path, valid_from=WHEN, max_rejects="10")
    assert merged.extra["direct_first_load"] is False
    assert (merged.inserted, merged.rejected) == (N - 3, 3)
    by_merge = _current(dsn)
    rejected_merge = _rejects(merged.rejects_path)

    # the direct path: the same file into the emptied tables
    with psycopg.connect(dsn) as conn:
        conn.execute("TRUNCATE cadastral.parcel_lineage, private.parcel_owners, cadastral.parcels")
    direct = ingest(dsn, "cadastral", parcels["file"], tmp_path, valid_from=WHEN, max_rejects="10",
                    batch_size=10_000)
    assert direct.extra["direct_first_load"] is True
    assert (direct.outcome, direct.inserted, direct.updated, direct.rejected) == ("loaded", N - 3, 0, 3)
    assert _current(dsn) == by_merge and by_merge[0] == N - 3
    assert _rejects(direct.rejects_path) == rejected_merge
    # the rejected features left nothing behind, and every owner belongs to a parcel
    assert count(dsn, "SELECT count(*) FROM cadastral.parcels") == N - 3
    assert count(dsn, "SELECT count(*) FROM private.parcel_owners") == count(
        dsn, "SELECT count(*) FROM private.parcel_owners o JOIN cadastral.parcels p USING (parcel_id)")
    # indexes and foreign keys are back, the foreign keys validated
    idx = {r[0] for r in rows(dsn, "SELECT indexname FROM pg_indexes WHERE schemaname = 'cadastral' "
                                   "AND tablename = 'parcels'")}
    assert {"parcels_current_key", "parcels_key_idx", "parcels_geom_idx", "parcels_land_use_idx"} <= idx
    assert count(dsn, "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated AND conrelid IN "
                      "('cadastral.parcels'::regclass, 'private.parcel_owners'::regclass, "
                      "'cadastral.parcel_lineage'::regclass)") == 6

    # the tile cache's change log: one record of the load, anywhere (no box), and the trigger is back
    # (and the areas of the rejected rows, deleted again)
    log = rows(dsn, "SELECT op, min_x FROM gis_meta.tile_changes WHERE table_name = 'parcels' "
                    "AND xid = (SELECT max(xid) FROM gis_meta.tile_changes) AND op = 'INSERT'")
    assert log == [("INSERT", None)]
    assert count(dsn, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'cadastral.parcels'::regclass "
                      "AND tgname = 'tile_changes_ins' AND tgenabled = 'O'") == 1

    # the same file again: the rows of the direct load are unchanged (their row hashes are the
    # merge's); only the feature whose lineage parent is now a parcel in force is loaded
    again = ingest(dsn, "cadastral", parcels["file"], tmp_path, valid_from=WHEN, max_rejects="10")
    assert (again.outcome, again.unchanged, again.inserted, again.updated, again.rejected) == (
        "loaded", N - 3, 1, 0, 2)
    assert count(dsn, "SELECT count(*) FROM cadastral.parcel_lineage") == 1
    third = ingest(dsn, "cadastral", parcels["file"], tmp_path, valid_from=WHEN, max_rejects="10")
    assert (third.outcome, third.unchanged, third.inserted, third.updated) == ("unchanged", N - 2, 0, 0)


def test_direct_first_load_with_rejects_over_the_limit_writes_nothing(dsn, tmp_path, parcels):
    with pytest.raises(InputError) as info:
        ingest(dsn, "cadastral", parcels["file"], tmp_path)
    assert "3 of" in info.value.message and "Nothing was written" in info.value.message
    assert_nothing_written(dsn)
    # the indexes and foreign keys dropped for the load are back (rolled back with it)
    assert count(dsn, "SELECT count(*) FROM pg_indexes WHERE schemaname = 'cadastral' "
                      "AND tablename = 'parcels'") >= 5
    assert count(dsn, "SELECT count(*) FROM pg_constraint WHERE contype = 'f' "
                      "AND conrelid = 'cadastral.parcels'::regclass") == 2


# --- interrupted while streaming --------------------------------------------------------------------
STREAMED = 160_000


@pytest.fixture(scope="module")
def streamed(tmp_path_factory):
    """Enough parcels for several batches: the first ones are in cadastral.parcels while later ones
    are still being read."""
    return sample.write_parcels(tmp_path_factory.mktemp("streamed") / "streamed.gpkg", STREAMED, seed=5)


def _start(dsn, path, tmp_path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(DATABASE_URL=dsn, GIS_DATA_DIR=str(tmp_path / "gisdata"))
    return subprocess.Popen([GIS, "ingest", "cadastral", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=str(PROJECT_ROOT))


def _wait_for_streamed_insert(dsn, proc, timeout: float = 120) -> None:
    """Wait until the job has inserted a batch into cadastral.parcels (its worker runs the insert
    of batch 2 or later: batch 1 is in the table, uncommitted)."""
    deadline = time.monotonic() + timeout
    seen = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            hit = conn.execute(
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND state = 'active' AND (query ILIKE '%%INSERT INTO cadastral.parcels%%' "
                "OR query ILIKE '%%COPY \"cadastral\".\"parcels\"%%')").fetchone()
            if hit:
                seen += 1
                if seen > 1:
                    return
                time.sleep(1.0)  # the next batch's insert: batch 1 is in the table by then
            time.sleep(0.02)
    proc.kill()
    pytest.fail("the job never inserted a batch")


def _no_job_left(dsn, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            n = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                             "AND pid <> pg_backend_pid() AND backend_type = 'client backend'").fetchone()[0]
            if n == 0:
                return
            time.sleep(0.1)
    pytest.fail("the job's transaction is still open")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_interrupted_direct_load_leaves_nothing(dsn, streamed, tmp_path, sig):
    before = snapshot(dsn)
    proc = _start(dsn, streamed, tmp_path)
    _wait_for_streamed_insert(dsn, proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    _no_job_left(dsn)
    assert snapshot(dsn) == before
    assert count(dsn, "SELECT count(*) FROM cadastral.parcels") == 0
    # the indexes and foreign keys dropped for the load are there as before
    assert count(dsn, "SELECT count(*) FROM pg_indexes WHERE schemaname = 'cadastral' "
                      "AND tablename = 'parcels'") >= 5
    assert count(dsn, "SELECT count(*) FROM pg_constraint WHERE contype = 'f' "
                      "AND confrelid = 'cadastral.parcels'::regclass") == 3
    if sig == signal.SIGINT:
        assert proc.returncode == 130, (out, err)
        assert "interrupted (SIGINT)" in err and "Traceback" not in err
        log = runs(dsn)
        assert [r["outcome"] for r in log] == ["interrupted"] and 0 < log[0]["n_read"] <= STREAMED
    else:
        assert proc.returncode == -signal.SIGKILL
        assert runs(dsn) == []


# --- the run references of the cadastral tables (migration 0011) --------------------------------------
def test_run_references_are_enforced(dsn, demo, tmp_path):
    loaded = ingest(dsn, "cadastral", demo["cadastral"], tmp_path)
    assert loaded.inserted == 600
    run_id = loaded.run_id
    parcel_id = count(dsn, "SELECT min(parcel_id) FROM cadastral.parcels")
    bad = [
        ("DELETE FROM ingest.runs WHERE run_id = %s", (run_id,)),
        ("UPDATE ingest.runs SET run_id = DEFAULT WHERE run_id = %s", (run_id,)),
        ("TRUNCATE ingest.runs CASCADE", ()),
        ("UPDATE cadastral.parcels SET run_id = 999999 WHERE parcel_id = %s", (parcel_id,)),
        (("INSERT INTO cadastral.parcels (commune_code, sheet_no, parcel_no, land_use, valid_from, run_id, "
          "row_hash, geom) VALUES ('1', 1, 1, 'ODT', now(), 999999, 'x', "
          "'SRID=4326;MULTIPOLYGON(((106 10,106.1 10,106.1 10.1,106 10)))')"), ()),
        ("INSERT INTO private.parcel_owners (parcel_id, owner_name, run_id) VALUES (%s, 'X', 999999)",
         (parcel_id,)),
    ]
    before = snapshot(dsn)
    for stmt, params in bad:
        with psycopg.connect(dsn) as conn, pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute(stmt, params)
    assert snapshot(dsn) == before
    assert [r["run_id"] for r in runs(dsn)] == [run_id]
    with psycopg.connect(dsn) as conn:
        # rows without a run, and runs nothing references, are fine
        conn.execute("INSERT INTO private.parcel_owners (parcel_id, owner_name) VALUES (%s, 'Y')", (parcel_id,))
        other = conn.execute("INSERT INTO ingest.runs (kind, source_path, outcome, started_at) "
                             "VALUES ('cadastral', 'x', 'failed', now()) RETURNING run_id").fetchone()[0]
        conn.execute("UPDATE cadastral.parcels SET run_id = %s WHERE parcel_id = %s", (other, parcel_id))
        conn.execute("UPDATE cadastral.parcels SET run_id = %s WHERE parcel_id = %s", (run_id, parcel_id))
        conn.execute("DELETE FROM ingest.runs WHERE run_id = %s", (other,))
        conn.rollback()


# --- row hashes computed by the client --------------------------------------------------------------
def test_client_row_hashes_are_the_databases(dsn):
    """The client's text of ROW(...) (quoting, escapes, float digits) and its md5 are the database's,
    for awkward text and numbers; values the client cannot write exactly are left to the database."""
    import random

    import numpy as np
    import pandas as pd
    import shapely
    from psycopg import sql

    from ingest import merge as m
    from ingest.kinds import get_kind
    from ingest.normalise import ewkb

    kind = get_kind("cadastral")
    rnd = random.Random(7)
    chars = ["a", " ", '"', "\\", "(", ")", ",", "\t", "\n", "\r", "\x0b", "\x0c", "ạ", "é", "{", "'", ";",
             "\x1c", "\xa0", "\u2028", "\x85", "0", "."]
    n = 3000

    def text():
        return None if rnd.random() < 0.1 else "".join(rnd.choice(chars) for _ in range(rnd.randint(0, 6)))

    floats = [0.0, -0.0, 1e-4, 9.999e-5, 1e15, 999999999999999.9, 1e14, 123.0, 0.1 + 0.2, 1 / 3, 5e-324,
              1.7976931348623157e308, 12345.678, 100.25, float("nan")]
    area = [None if rnd.random() < 0.1 else rnd.choice(floats) if rnd.random() < 0.3
            else rnd.uniform(-1e6, 1e6) * 10 ** rnd.randint(-6, 12) for _ in range(n)]
    rows = pd.DataFrame({
        "fid": np.arange(1, n + 1), "commune_code": ["1"] * n,
        "sheet_no": pd.array(np.arange(1, n + 1), dtype="Int64"), "parcel_no": pd.array([1] * n, dtype="Int64"),
        **{f: pd.Series([text() for _ in range(n)], dtype=object)
           for f in ("land_use", "address", "owner_type", "owner_name", "id_number", "parents", "source", "licence")},
        "legal_area_m2": pd.array([np.nan if v is None else v for v in area], dtype="Float64"),
    })
    rows.loc[rows.index[::10], "legal_area_m2"] = pd.NA
    rows["geom"] = ewkb(np.array([shapely.box(i, 0, i + 1, 1) for i in range(n)], dtype=object), 4326)
    rows["geom_md5"] = m.geom_md5(rows["geom"])
    rows["client_hash"] = m.client_hashes(rows, kind)
    client = rows["client_hash"].notna().sum()
    assert 0.8 * n < client < n  # most by the client; NaN and floats with an exponent by the database
    with psycopg.connect(dsn) as conn:
        m.create_stage(conn, kind)
        m.copy_rows(conn, kind, rows)
        differ, hashed, md5_differ = conn.execute(sql.SQL(
            "SELECT count(*) FILTER (WHERE s.client_hash <> {h}), count(s.client_hash), "
            "count(*) FILTER (WHERE s.geom_md5 <> md5(s.geom)) FROM stage s"
        ).format(h=m.server_hash_expr(m.hashed_fields(kind)))).fetchone()
        assert (differ, hashed, md5_differ) == (0, client, 0)
        m.check_client_hashes(conn, kind)  # the job's own sample check passes
        conn.execute("UPDATE stage SET client_hash = 'x' WHERE fid = 50")
        with pytest.raises(RuntimeError, match="feature 50"):
            m.check_client_hashes(conn, kind)


def test_the_clients_key_check_sees_equal_keys_whatever_the_dtypes():
    """The duplicate search is left out only when the client's key hashes are all distinct: equal
    keys must hash alike across batches of other dtypes (nullable ints, floats, NaN or None)."""
    import numpy as np
    import pandas as pd

    from ingest import merge as m
    from ingest.kinds import KINDS

    kind = KINDS["cadastral"]
    a = pd.DataFrame({"commune_code": ["26734", "26734", None],
                      "sheet_no": pd.array([5, 5, None], dtype="Int64"), "parcel_no": [1, 2, 3]})
    b = pd.DataFrame({"commune_code": ["26734", np.nan], "sheet_no": np.array([5.0, np.nan]),
                      "parcel_no": np.array([1, 3], dtype=np.int32)})
    assert m.all_distinct([m.key_hashes(a, kind)])
    assert not m.all_distinct([m.key_hashes(a, kind), m.key_hashes(b, kind)])  # both rows of b repeat a's
    assert m.all_distinct([m.key_hashes(a, kind), m.key_hashes(b.iloc[[1]].assign(parcel_no=4), kind)])
    assert m.all_distinct([])


def test_direct_copy_stores_areas_and_geometries_as_the_casts_do(dsn):
    """The direct COPY writes the legal area as numeric(14,2) and the geometry as a MultiPolygon
    itself; the database must read back what its own casts (float8 -> numeric(14,2), ST_Multi of the
    EWKB) give for the same values, half cents and 15-digit rounding included."""
    import random

    import numpy as np
    import pandas as pd
    import shapely

    from ingest.loader import _copy, _multi_ewkb, _numeric_cents, _raw
    from ingest.normalise import ewkb

    rnd = random.Random(11)
    areas = [0.0, 0.005, 0.015, 0.125, 1.005, 2.675, 97.8, 1e11 + 0.005, 999999999999.99, 123.45678901234567,
             0.1 + 0.2, 5e-324, 1 / 3, 450359962737.0495, 12345.675, 0.285, None]
    areas += [round(rnd.uniform(0, 1e4), rnd.randint(0, 4)) for _ in range(3000)]
    areas += [rnd.uniform(0, 1e12) for _ in range(1000)] + [rnd.randint(0, 10 ** 6) / 1000 for _ in range(1000)]
    n = len(areas)
    col = pd.Series(areas, dtype="Float64")
    polys = [shapely.box(i, 0, i + 1, 1) for i in range(n - 1)] + [
        shapely.MultiPolygon([shapely.box(0, 0, 1, 1), shapely.box(2, 2, 3, 3)])]
    geoms = pd.Series(ewkb(np.array(polys, dtype=object), 4326))
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TEMP TABLE t (i int8, f float8, a numeric(14,2), g bytea, "
                     "m geometry(MultiPolygon, 4326))")
        idx = pd.Series(np.arange(n, dtype=np.int64))
        _copy(conn, "t", ("i", "f", "a", "g", "m"),
              [("int8", idx), ("float8", col), ("bytea", _raw(_numeric_cents(col), idx.index)),
               ("bytea", geoms), ("bytea", _raw(_multi_ewkb(geoms), idx.index))])
        bad = conn.execute("SELECT i, f, a, f::numeric(14,2) FROM t WHERE a IS DISTINCT FROM f::numeric(14,2) "
                           "OR a::text IS DISTINCT FROM (f::numeric(14,2))::text").fetchall()
        assert bad == []
        assert conn.execute("SELECT count(*) FROM t WHERE ST_AsEWKB(m) <> ST_AsEWKB(ST_Multi(ST_GeomFromEWKB(g)))"
                            ).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM t WHERE a IS NULL").fetchone()[0] == 1
