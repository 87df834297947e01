"""The job store and the worker of gis.analysis.jobs, on a real database (no HTTP)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest

from gis.analysis import jobs
from gis.analysis.registry import get_analysis
from gis.errors import InputError, NotFoundError
from gis.sample import generate
from ingest.job import IngestOptions, run_ingest

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "hcmc"
WARDS_2025 = SHARED / "vn-provinces-db-2025" / "hcmc_wards_2025.geojson"


def _conn(dsn: str) -> psycopg.Connection:
    return psycopg.connect(dsn, autocommit=True)


@pytest.fixture
def plan_dsn(dsn, tmp_path, shared_data):
    """The 2025 wards and the sample's zoning plan."""
    files = generate(tmp_path / "sample")
    (tmp_path / "results").mkdir()
    for kind, path in (("admin", WARDS_2025), ("planning", files["planning"])):
        assert run_ingest(dsn, kind, path, IngestOptions()).outcome == "loaded"
    return dsn


def test_store_life_cycle(dsn):
    with _conn(dsn) as conn:
        job = jobs.create_job(
            conn, "planning.land-use", {"source": "lots"}, execution={"response": "raw"}
        )
        assert job.status == "accepted" and job.progress == 0 and job.inputs == {"source": "lots"}
        other = jobs.create_job(conn, "planning.capacity", {}, mode="sync")
        claimed = jobs.claim_job(conn, job.job_id, "here:1")
        assert (
            claimed.status == "running"
            and claimed.started is not None
            and claimed.runner == "here:1"
        )
        assert jobs.claim_job(conn, job.job_id, "there:2") is None  # only one worker gets it
        assert jobs.set_progress(conn, job.job_id, 40, "half way")
        assert jobs.get_job(conn, job.job_id).progress == 40
        assert not jobs.set_progress(conn, other.job_id, 10)  # not running
        assert jobs.finish_job(
            conn,
            job.job_id,
            result_dir="/nowhere",
            formats=["geojson"],
            table=None,
            collection=None,
            rows=3,
            meta={"title": "t"},
            message="done",
        )
        done = jobs.get_job(conn, job.job_id)
        assert done.status == "successful" and done.progress == 100 and done.result_rows == 3
        assert not jobs.fail_job(conn, job.job_id, "too late")  # a finished job stays finished
        found, total = jobs.list_jobs(conn, statuses=("successful",))
        assert total == 1 and found[0].job_id == job.job_id
        found, total = jobs.list_jobs(conn, process_ids=("planning.capacity",))
        assert [j.job_id for j in found] == [other.job_id]
        assert jobs.list_jobs(conn, limit=1)[1] == 2 and len(jobs.list_jobs(conn, limit=1)[0]) == 1
        assert jobs.list_jobs(conn, min_duration=3600)[1] == 0
        before = jobs.dismiss_job(conn, job.job_id)
        assert before.status == "successful" and before.result_dir == "/nowhere"
        after = jobs.get_job(conn, job.job_id)
        assert (
            after.status == "dismissed"
            and after.result_dir is None
            and "results were removed" in after.message
        )
        with pytest.raises(NotFoundError, match="no job"):
            jobs.get_job(conn, "not-a-uuid")
        with pytest.raises(NotFoundError, match="no job"):
            jobs.dismiss_job(conn, "00000000-0000-0000-0000-000000000000")
        with pytest.raises(InputError, match="status"):
            jobs.list_jobs(conn, statuses=("sleeping",))


def test_recovery_fails_only_the_running_jobs_nobody_holds(dsn, tmp_path):
    with _conn(dsn) as conn:
        alive, dead, waiting = (jobs.create_job(conn, "planning.land-use", {}) for _ in range(3))
    # a live worker: claims and holds the lock
    holder = _conn(dsn)
    holder.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (jobs.LOCK_CLASS, alive.job_id))
    jobs.claim_job(holder, alive.job_id, "live:1")
    # a worker that died: its connection (and lock) is gone, its job still says running
    with _conn(dsn) as gone:
        gone.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (jobs.LOCK_CLASS, dead.job_id))
        jobs.claim_job(gone, dead.job_id, "dead:2")
    (tmp_path / f".{dead.job_id}.tmp").mkdir()
    try:
        failed, accepted = jobs.recover_jobs(dsn, tmp_path)
        assert failed == [dead.job_id] and accepted == [waiting.job_id]
        with _conn(dsn) as conn:
            assert jobs.get_job(conn, alive.job_id).status == "running"
            d = jobs.get_job(conn, dead.job_id)
        assert (
            d.status == "failed" and d.message == jobs.INTERRUPTED and d.error_code == "Interrupted"
        )
        assert not (tmp_path / f".{dead.job_id}.tmp").exists()
    finally:
        holder.close()
    assert jobs.recover_jobs(dsn, tmp_path)[0] == [alive.job_id]  # its holder is gone now


def test_a_failing_job_records_the_reason_and_writes_nothing(dsn, tmp_path):
    with _conn(dsn) as conn:
        job = jobs.create_job(conn, "planning.land-use", {"source": "lots"})
    end = jobs.run_job(dsn, job.job_id, results_root=tmp_path)
    assert end.status == "failed" and end.error_status == 400 and end.error_code == "EmptyInput"
    assert "wards_2025" in end.message and "Traceback" not in end.message
    assert list(tmp_path.iterdir()) == []
    assert jobs.run_job(dsn, job.job_id, results_root=tmp_path).status == "failed"  # not run twice


def test_the_worker_publishes_the_result_and_a_dismissal_removes_it(plan_dsn, tmp_path):
    with _conn(plan_dsn) as conn:
        job = jobs.create_job(conn, "planning.land-use", {"source": "lots"})
    end = jobs.run_job(plan_dsn, job.job_id, results_root=tmp_path / "results")
    assert end.status == "successful", end.message
    assert set(end.result_formats) == {"geojson", "csv", "gpkg"} and end.result_rows > 0
    assert (
        end.result_table == f"job_{end.short}" and end.result_collection == f"stats-job-{end.short}"
    )
    assert (
        end.result_file("gpkg").stat().st_size > 0
        and end.result_meta["analysis"] == "planning.land-use"
    )
    with _conn(plan_dsn) as conn:
        assert (
            conn.execute(f"SELECT count(*) FROM stats.{end.result_table}").fetchone()[0]
            == end.result_rows
        )
        assert (
            conn.execute(
                "SELECT public FROM gis_meta.collections WHERE id = %s", (end.result_collection,)
            ).fetchone()[0]
            is True
        )
        before = jobs.dismiss_job(conn, job.job_id)
    jobs.remove_results(plan_dsn, before)
    with _conn(plan_dsn) as conn:
        assert (
            conn.execute("SELECT to_regclass(%s)", (f"stats.{end.result_table}",)).fetchone()[0]
            is None
        )
        assert (
            conn.execute(
                "SELECT count(*) FROM gis_meta.collections WHERE id = %s", (end.result_collection,)
            ).fetchone()[0]
            == 0
        )
        assert conn.execute("SELECT count(*) FROM stats.analysis_outputs").fetchone()[0] == 0
    assert not Path(end.result_dir).exists()


def test_a_stop_or_a_dismissal_while_running_leaves_nothing(plan_dsn, tmp_path):
    with _conn(plan_dsn) as conn:
        stopped = jobs.create_job(conn, "planning.land-use", {"source": "lots"})
        dismissed = jobs.create_job(conn, "planning.land-use", {"source": "lots"})
    # the server stops: the flag is seen at the first progress report
    flag = threading.Event()
    flag.set()
    end = jobs.run_job(plan_dsn, stopped.job_id, results_root=tmp_path / "results", cancel=flag)
    assert end.status == "failed" and end.message == jobs.INTERRUPTED
    # a client dismisses it while it runs (from another connection, as another worker process would)
    ended = {}
    t = threading.Thread(
        target=lambda: ended.update(
            job=jobs.run_job(plan_dsn, dismissed.job_id, results_root=tmp_path / "results")
        )
    )
    t.start()
    with _conn(plan_dsn) as conn:
        deadline = time.monotonic() + 30
        while (
            jobs.get_job(conn, dismissed.job_id).status == "accepted"
            and time.monotonic() < deadline
        ):
            time.sleep(0.005)
        jobs.dismiss_job(conn, dismissed.job_id)
    t.join(60)
    assert ended["job"].status == "dismissed"
    with _conn(plan_dsn) as conn:
        assert (
            conn.execute(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'stats' AND tablename "
                "LIKE 'job\\_%%'"
            ).fetchone()[0]
            == 0
        )
    assert list((tmp_path / "results").iterdir()) == []


def test_file_inputs_stay_inside_the_input_folders(tmp_path):
    inside = tmp_path / "inputs"
    (inside / "sub").mkdir(parents=True)
    (inside / "sub" / "pop.tif").write_bytes(b"x")
    secret = tmp_path / "secret.tif"
    secret.write_bytes(b"x")
    (inside / "link.tif").symlink_to(secret)
    a = get_analysis("health.access")
    ok = jobs.resolve_path_inputs(a, {"worldpop": "sub/pop.tif"}, [inside])
    assert ok["worldpop"] == str((inside / "sub" / "pop.tif").resolve())
    assert jobs.resolve_path_inputs(a, {"worldpop": str(inside / "sub" / "pop.tif")}, [inside])[
        "worldpop"
    ]
    for bad in ("../secret.tif", str(secret), "link.tif", "sub", "missing.tif"):
        with pytest.raises(InputError, match="Input worldpop") as err:
            jobs.resolve_path_inputs(a, {"worldpop": bad}, [inside])
        assert str(tmp_path) not in err.value.message.replace(bad, "")
    with pytest.raises(InputError, match="takes no file inputs"):
        jobs.resolve_path_inputs(a, {"worldpop": "sub/pop.tif"}, [])
    assert jobs.resolve_path_inputs(a, {"worldpop": None}, [])["worldpop"] is None


def test_a_raster_of_the_catalog_is_a_file_input(dsn, tmp_path):
    """``raster:<collection>`` (its latest item) and ``raster:<collection>/<item>`` name a raster of
    the platform's own store, with no input folder configured."""
    from gis.raster.store import RasterStore
    from ingest.raster import RasterIngestOptions, run_raster_ingest

    files = generate(tmp_path / "sample")
    store = tmp_path / "rasters"
    opts = RasterIngestOptions(collection="worldpop", sensor="worldpop", datetime="2020")
    res = run_raster_ingest(dsn, [files["population"]], opts, store=RasterStore(store))
    assert res.outcome == "loaded"
    a = get_analysis("health.access")
    got = jobs.resolve_path_inputs(a, {"worldpop": "raster:worldpop"}, [], dsn=dsn, raster_root=store)
    path = Path(got["worldpop"])
    assert path.is_file() and path.is_relative_to(store)
    with psycopg.connect(dsn) as conn:
        (item_id,) = conn.execute("SELECT id FROM raster.items WHERE collection = 'worldpop'").fetchone()
    by_item = jobs.resolve_path_inputs(
        a, {"worldpop": f"raster:worldpop/{item_id}"}, [], dsn=dsn, raster_root=store
    )
    assert by_item["worldpop"] == got["worldpop"]
    with pytest.raises(InputError, match="no raster collection 'nothing'"):
        jobs.resolve_path_inputs(a, {"worldpop": "raster:nothing"}, [], dsn=dsn, raster_root=store)
    with pytest.raises(InputError, match="Input worldpop: No raster item 'worldpop/nope'"):  # a 400, not a 404
        jobs.resolve_path_inputs(a, {"worldpop": "raster:worldpop/nope"}, [], dsn=dsn, raster_root=store)
