"""Jobs: the analyses of the registry run in the background, their status kept in PostgreSQL.

A job is one execution of an analysis (:mod:`gis.analysis.registry`) with validated inputs. Its
row in ``processes.jobs`` (migration 0008) is the only record of its status, so every process of a
server with several workers, and every later server, answers the same about it:

``accepted`` -> ``running`` -> ``successful`` | ``failed``; ``dismissed`` from any of them.

* :class:`JobManager` is what a server holds: a small connection pool, a thread pool of
  ``JobSettings.workers`` threads that run jobs, and the in-process cancellation flags.
* :func:`run_job` is the worker: it claims an accepted job (``accepted`` -> ``running``, atomic,
  so that of two processes that were handed the same job only one runs it) while holding a
  session advisory lock on it, runs the analysis, reports progress, writes the result files
  (GeoJSON, CSV, GeoPackage; into a temporary folder renamed at the end) and publishes the result
  as the table ``stats.job_<12 hex>`` (:func:`gis.analysis.output.write_table`, one transaction),
  then marks the job successful. An analysis that raises fails the job with the user-safe
  message of its :class:`~gis.errors.GisError` (an unexpected error with a reference to the log)
  and leaves nothing behind.
* :func:`recover_jobs` runs at start-up: a ``running`` job whose lock nobody holds was interrupted
  (its server stopped) and is marked failed; ``accepted`` ones are handed to the new workers.
* Dismissing (:meth:`JobManager.dismiss`) marks the job dismissed and removes its results. A
  running job stops at its next progress report (cancellation is cooperative: Python threads
  cannot be killed) and writes nothing; a result written meanwhile is removed.

Why not pygeoapi's process manager: :mod:`pygeoapi.process.manager.postgresql` runs pygeoapi
processor classes from a pygeoapi configuration, through SQLAlchemy on psycopg2 with a table it
creates itself outside our migrations; it has no notion of an interrupted job, of cooperative
cancellation, of user-safe failure messages, or of publishing a result as a collection. Wrapping
every analysis in a processor class and a configuration would have been more code than this
module, which uses the project's own pieces (psycopg 3, migrations, ``gis.errors``, the
registry, ``write_table``).

Nothing here knows HTTP: :mod:`api.processes` maps it to OGC API - Processes.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from gis.db import connect
from gis.errors import GisError, InputError, NotFoundError

log = logging.getLogger("gis.jobs")

#: The statuses of a job (OGC API - Processes ``statusCode``).
STATUSES = ("accepted", "running", "successful", "failed", "dismissed")
#: Advisory lock class of running jobs (the object key is ``hashtext(job_id::text)``).
LOCK_CLASS = 727_000_100
INTERRUPTED = (
    "Interrupted: the server stopped while the job was running; nothing was kept. Run it again."
)
#: Result files: format name -> (file name, media type).
RESULT_FILES = {
    "geojson": ("result.geojson", "application/geo+json"),
    "csv": ("result.csv", "text/csv"),
    "gpkg": ("result.gpkg", "application/geopackage+sqlite3"),
    "json": ("result.json", "application/json"),
}
_TABLE = re.compile(r"^job_[0-9a-f]{12}$")


class JobSettings(BaseSettings):
    """Settings of the job runner, read from ``GIS_PROCESSES_*`` environment variables.

    Parameters
    ----------
    workers : int
        Jobs run at once by one server process (the rest wait, accepted).
    input_dirs : list of Path
        Folders whose files the file inputs of the analyses (``worldpop``, ``flows``) may name, by
        a path relative to one of them. Empty (the default): no file input is accepted over HTTP.
    results_dir : Path, optional
        Folder of the result files; ``data_dir / "processes"`` when unset.
    publish : bool
        Publish each result with a geometry as a collection (``stats.job_<id>``).
    """

    model_config = SettingsConfigDict(env_prefix="GIS_PROCESSES_", extra="ignore")

    workers: int = Field(2, ge=1, le=64)
    input_dirs: list[Path] = Field(default_factory=list)
    results_dir: Path | None = None
    publish: bool = True


class JobCancelled(BaseException):
    """Raised inside a running analysis (at a progress report) when its job was dismissed or the
    server is stopping. A BaseException, so that no ``except Exception`` of an analysis swallows it."""


@dataclass(frozen=True)
class Job:
    """One row of ``processes.jobs``."""

    job_id: str
    process_id: str
    status: str
    mode: str
    inputs: dict
    execution: dict
    progress: int
    message: str | None
    error_code: str | None
    error_status: int | None
    created: datetime
    started: datetime | None
    finished: datetime | None
    updated: datetime
    runner: str | None
    result_dir: str | None
    result_formats: list[str]
    result_table: str | None
    result_collection: str | None
    result_rows: int | None
    result_meta: dict

    @property
    def short(self) -> str:
        """The first 12 hex digits of the id (names the result table ``job_<short>``)."""
        return self.job_id.replace("-", "")[:12]

    @property
    def done(self) -> bool:
        return self.status in ("successful", "failed", "dismissed")

    def result_file(self, fmt: str) -> Path | None:
        """The result file of format ``fmt`` (a key of :data:`RESULT_FILES`), if the job has it."""
        if self.status != "successful" or not self.result_dir or fmt not in self.result_formats:
            return None
        p = Path(self.result_dir) / RESULT_FILES[fmt][0]
        return p if p.is_file() else None


_COLUMNS = sql.SQL(", ").join(sql.Identifier(n) for n in Job.__dataclass_fields__)


def _job(row: tuple) -> Job:
    values = list(row)
    values[0] = str(values[0])
    values[16] = list(values[16] or [])
    return Job(*values)


def parse_job_id(text: str) -> str:
    """The canonical form of a job id; :class:`NotFoundError` for anything that is not a UUID."""
    try:
        return str(uuid.UUID(str(text)))
    except (ValueError, TypeError, AttributeError):
        shown = str(text)[:60]
        raise NotFoundError(f"There is no job {shown!r}.", code="NoSuchJob") from None


# --- the store --------------------------------------------------------------------------------
def create_job(
    conn: psycopg.Connection,
    process_id: str,
    inputs: dict[str, Any],
    *,
    execution: dict | None = None,
    mode: str = "async",
) -> Job:
    """Insert an accepted job and return it.

    Parameters
    ----------
    conn : psycopg.Connection
    process_id : str
        Registry id of the analysis.
    inputs : dict
        Its validated parameters (JSON-serialisable).
    execution : dict, optional
        What the client asked for the results (OGC ``response`` and ``outputs``).
    mode : {"async", "sync"}
    """
    if mode not in ("async", "sync"):
        raise InputError(f"mode must be async or sync; got {mode!r}.")
    row = conn.execute(
        sql.SQL(
            "INSERT INTO processes.jobs (job_id, process_id, mode, inputs, execution, message) "
            "VALUES (%s, %s, %s, %s, %s, 'accepted, waiting for a worker') RETURNING {}"
        ).format(_COLUMNS),
        (uuid.uuid4(), process_id, mode, json.dumps(inputs), json.dumps(execution or {})),
    ).fetchone()
    return _job(row)


def get_job(conn: psycopg.Connection, job_id: str) -> Job:
    """The job ``job_id``.

    Raises
    ------
    NotFoundError
        No such job (code ``NoSuchJob``).
    """
    jid = parse_job_id(job_id)
    row = conn.execute(
        sql.SQL("SELECT {} FROM processes.jobs WHERE job_id = %s").format(_COLUMNS), (jid,)
    ).fetchone()
    if row is None:
        raise NotFoundError(f"There is no job {jid!r}.", code="NoSuchJob")
    return _job(row)


def list_jobs(
    conn: psycopg.Connection,
    *,
    process_ids: tuple[str, ...] = (),
    statuses: tuple[str, ...] = (),
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    min_duration: float | None = None,
    max_duration: float | None = None,
    limit: int = 10,
    offset: int = 0,
) -> tuple[list[Job], int]:
    """Jobs, newest first, filtered; and how many match in all.

    Parameters
    ----------
    process_ids, statuses : tuple of str
        Keep jobs of these processes / in these statuses (empty: all).
    created_from, created_to : datetime, optional
        Keep jobs created in this interval (either end open).
    min_duration, max_duration : float, optional
        Keep jobs that ran (or have been running) at least / at most this many seconds.
    limit, offset : int
        The page.

    Returns
    -------
    (list of Job, int)
    """
    bad = [s for s in statuses if s not in STATUSES]
    if bad:
        raise InputError(
            f"status {bad[0]!r} is not a job status; give one of {', '.join(STATUSES)}."
        )
    conds: list[sql.Composable] = []
    params: list[Any] = []
    if process_ids:
        conds.append(sql.SQL("process_id = ANY(%s)"))
        params.append(list(process_ids))
    if statuses:
        conds.append(sql.SQL("status = ANY(%s)"))
        params.append(list(statuses))
    if created_from is not None:
        conds.append(sql.SQL("created >= %s"))
        params.append(created_from)
    if created_to is not None:
        conds.append(sql.SQL("created <= %s"))
        params.append(created_to)
    duration = sql.SQL("extract(epoch FROM (coalesce(finished, now()) - started))")
    if min_duration is not None:
        conds.append(sql.SQL("{} >= %s").format(duration))
        params.append(min_duration)
    if max_duration is not None:
        conds.append(sql.SQL("{} <= %s").format(duration))
        params.append(max_duration)
    where = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conds) if conds else sql.SQL("")
    total = conn.execute(
        sql.SQL("SELECT count(*) FROM processes.jobs{}").format(where), params
    ).fetchone()[0]
    rows = conn.execute(
        sql.SQL(
            "SELECT {} FROM processes.jobs{} ORDER BY created DESC, job_id LIMIT %s OFFSET %s"
        ).format(_COLUMNS, where),
        [*params, limit, offset],
    ).fetchall()
    return [_job(r) for r in rows], total


def claim_job(conn: psycopg.Connection, job_id: str, runner: str) -> Job | None:
    """``accepted`` -> ``running`` (atomic); None when the job is not accepted any more."""
    row = conn.execute(
        sql.SQL(
            "UPDATE processes.jobs SET status = 'running', started = now(), updated = now(), "
            "runner = %s, progress = 0, message = 'running' "
            "WHERE job_id = %s AND status = 'accepted' RETURNING {}"
        ).format(_COLUMNS),
        (runner, job_id),
    ).fetchone()
    return None if row is None else _job(row)


def set_progress(
    conn: psycopg.Connection, job_id: str, progress: int, message: str | None = None
) -> bool:
    """Record the progress (0-100) of a running job; False when it is not running any more
    (dismissed, or failed by a shutdown)."""
    row = conn.execute(
        "UPDATE processes.jobs SET progress = %s, message = coalesce(%s, message), updated = now() "
        "WHERE job_id = %s AND status = 'running' RETURNING 1",
        (max(0, min(100, int(progress))), message, job_id),
    ).fetchone()
    return row is not None


def finish_job(
    conn: psycopg.Connection,
    job_id: str,
    *,
    result_dir: str,
    formats: list[str],
    table: str | None,
    collection: str | None,
    rows: int,
    meta: dict,
    message: str,
) -> bool:
    """``running`` -> ``successful`` with where the results are; False when it was not running."""
    row = conn.execute(
        "UPDATE processes.jobs SET status = 'successful', progress = 100, finished = now(), "
        "updated = now(), message = %s, result_dir = %s, result_formats = %s, result_table = %s, "
        "result_collection = %s, result_rows = %s, result_meta = %s "
        "WHERE job_id = %s AND status = 'running' RETURNING 1",
        (message, result_dir, formats, table, collection, rows, json.dumps(meta), job_id),
    ).fetchone()
    return row is not None


def fail_job(
    conn: psycopg.Connection,
    job_id: str,
    message: str,
    code: str = "GisError",
    http_status: int = 500,
) -> bool:
    """An accepted or running job -> ``failed`` with a user-safe message; False otherwise."""
    row = conn.execute(
        "UPDATE processes.jobs SET status = 'failed', finished = now(), updated = now(), message = %s, "
        "error_code = %s, error_status = %s WHERE job_id = %s AND status IN ('accepted', 'running') "
        "RETURNING 1",
        (message[:2000], code, http_status, job_id),
    ).fetchone()
    return row is not None


def dismiss_job(conn: psycopg.Connection, job_id: str) -> Job:
    """Mark a job dismissed (whatever its status) and return it AS IT WAS (to find its results).

    The result columns are cleared: the caller removes the results (:func:`remove_results`).
    """
    jid = parse_job_id(job_id)
    with conn.transaction():
        row = conn.execute(
            sql.SQL("SELECT {} FROM processes.jobs WHERE job_id = %s FOR UPDATE").format(_COLUMNS),
            (jid,),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"There is no job {jid!r}.", code="NoSuchJob")
        before = _job(row)
        if before.status != "dismissed":
            was = {
                "accepted": "before it started",
                "running": "while it was running",
                "successful": "after it finished; its results were removed",
                "failed": "after it failed",
            }[before.status]
            conn.execute(
                "UPDATE processes.jobs SET status = 'dismissed', finished = coalesce(finished, now()), "
                "updated = now(), message = %s, result_dir = NULL, result_formats = '{}', "
                "result_table = NULL, result_collection = NULL WHERE job_id = %s",
                (f"Dismissed {was}.", jid),
            )
    return before


def _drop_table(dsn: str, name: str) -> None:
    """Drop a result table ``stats.job_<id>`` and its catalog entries, in one transaction."""
    if not _TABLE.match(name or ""):
        return
    with connect(dsn) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"stats:{name}",))
        conn.execute(
            "DELETE FROM gis_meta.collections WHERE relation_schema = 'stats' "
            "AND relation_name = %s",
            (name,),
        )
        if conn.execute("SELECT to_regclass('stats.analysis_outputs')").fetchone()[0] is not None:
            conn.execute("DELETE FROM stats.analysis_outputs WHERE table_name = %s", (name,))
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier("stats", name)))


def remove_results(dsn: str, job: Job) -> None:
    """Remove what a job left: its published table and its result folder (missing ones are fine)."""
    _drop_table(dsn, job.result_table or f"job_{job.short}")
    for folder in (job.result_dir,):
        if folder:
            shutil.rmtree(folder, ignore_errors=True)


def recover_jobs(dsn: str, results_root: Path | None = None) -> tuple[list[str], list[str]]:
    """At start-up: fail the running jobs nobody runs any more; list the accepted ones.

    A worker holds a session advisory lock on the job it runs; when its process dies, the lock
    goes with the connection. A ``running`` job whose lock can be taken is therefore orphaned:
    it is marked failed ("interrupted") and whatever it may have left is removed.

    Returns
    -------
    (list of str, list of str)
        Ids of the jobs marked failed, and ids of the jobs still waiting (accepted).
    """
    failed = []
    with connect(dsn, autocommit=True) as conn:
        running = [
            str(r[0])
            for r in conn.execute(
                "SELECT job_id FROM processes.jobs WHERE status = 'running'"
            ).fetchall()
        ]
        for jid in running:
            if not conn.execute(
                "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (LOCK_CLASS, jid)
            ).fetchone()[0]:
                continue  # a live worker runs it
            try:
                if fail_job(conn, jid, INTERRUPTED, "Interrupted", 500):
                    failed.append(jid)
                    job = get_job(conn, jid)
                    remove_results(dsn, job)
                    if results_root is not None:
                        shutil.rmtree(results_root / f".{jid}.tmp", ignore_errors=True)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (LOCK_CLASS, jid))
        accepted = [
            str(r[0])
            for r in conn.execute(
                "SELECT job_id FROM processes.jobs WHERE status = 'accepted' ORDER BY created"
            ).fetchall()
        ]
    if failed:
        log.warning("%d interrupted job(s) marked failed: %s", len(failed), ", ".join(failed))
    return failed, accepted


# --- inputs -----------------------------------------------------------------------------------
RASTER_PREFIX = "raster:"


def _raster_input(name: str, raw: str, dsn: str, raster_root: Path) -> str:
    """The file of ``raster:<collection>`` (its latest item) or ``raster:<collection>/<item>``."""
    from gis.raster.catalog import get_item, list_items

    ref = raw[len(RASTER_PREFIX):].strip()
    if "/" in ref:
        try:
            item = get_item(dsn, ref)
        except NotFoundError as exc:  # an input that names nothing is a bad input (400), not a 404
            raise InputError(f"Input {name}: {exc.message}") from None
    else:
        items = list_items(dsn, ref)
        if not items:
            raise InputError(f"Input {name}: there is no raster collection {ref!r} (or it is empty).")
        item = items[-1]  # by time: the latest
    path = item.path(raster_root)
    if not path.is_file():
        raise InputError(f"Input {name}: the file of raster item {item.ref} is missing from the store.")
    return str(path)


def resolve_path_inputs(
    analysis,
    values: dict[str, Any],
    input_dirs: list[Path] | tuple[Path, ...],
    *,
    dsn: str | None = None,
    raster_root: Path | None = None,
) -> dict:
    """The values with each file input (``format: path``) resolved inside ``input_dirs``, or in
    the raster catalog.

    A file input names a file by a path relative to one of the input folders (an absolute path
    inside one is accepted too). Anything outside them (``..``, a symbolic link leading out) or
    missing is refused, without saying where the folders are. ``raster:<collection>`` (its latest
    item) or ``raster:<collection>/<item>`` names a raster of the platform's own catalog (given
    ``dsn`` and ``raster_root``), e.g. ``raster:worldpop`` for the population grid.

    Raises
    ------
    InputError
        Naming the input.
    """
    out = dict(values)
    roots = [Path(d).resolve() for d in input_dirs]
    for p in analysis.inputs:
        raw = out.get(p.name)
        if p.format != "path" or raw in (None, ""):
            continue
        if str(raw).startswith(RASTER_PREFIX) and dsn is not None and raster_root is not None:
            out[p.name] = _raster_input(p.name, str(raw), dsn, Path(raster_root))
            continue
        if not roots:
            raise InputError(
                f"Input {p.name}: this server takes no file inputs (no input folder is "
                "configured, GIS_PROCESSES_INPUT_DIRS); name a raster of the catalog instead, "
                f"e.g. {RASTER_PREFIX}worldpop."
            )
        given = Path(str(raw))
        found = None
        for root in roots:
            try:
                cand = (given if given.is_absolute() else root / given).resolve()
            except (OSError, RuntimeError, ValueError):
                continue
            if cand.is_relative_to(root) and cand.is_file():
                found = cand
                break
        if found is None:
            raise InputError(
                f"Input {p.name}: {str(raw)[:120]!r} is not a file in the server's input "
                "folders; give its path relative to one of them."
            )
        out[p.name] = str(found)
    return out


def check_inputs(
    analysis,
    params: dict[str, Any] | None,
    dsn: str,
    input_dirs: list[Path] | tuple[Path, ...] = (),
    raster_root: Path | None = None,
) -> dict[str, Any]:
    """Validate the parameters of a job before it is queued: types and ranges (the registry),
    file inputs (:func:`resolve_path_inputs`) and the database checks of
    :func:`gis.analysis.processes.precheck` (area of interest, facilities).

    Returns the validated values as given (file inputs NOT resolved: the job stores what the user
    gave, and the worker resolves it again).
    """
    from gis.analysis.processes import precheck

    values = analysis.validate(params)
    resolve_path_inputs(analysis, values, input_dirs, dsn=dsn, raster_root=raster_root)
    precheck(analysis.id, dsn, values)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in values.items()}


# --- the worker -------------------------------------------------------------------------------
class _Reporter:
    """``progress(done, total)`` of a running analysis: writes the percentage to the job (at most
    about twice a second) and raises :class:`JobCancelled` once the job is not running any more."""

    def __init__(
        self, conn: psycopg.Connection, job_id: str, cancel: threading.Event | None
    ) -> None:
        self.conn, self.job_id, self.cancel = conn, job_id, cancel
        self.last, self.pct = 0.0, -1
        self.lock = threading.Lock()

    def __call__(self, done: int, total: int) -> None:
        pct = int(90 * done / total) if total else 0
        self.update(max(0, min(90, pct)), None, force=False)

    def update(self, pct: int, message: str | None, force: bool = True) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise JobCancelled
        with self.lock:
            now = time.monotonic()
            if not force and now - self.last < (0.5 if pct != self.pct else 5.0):
                return
            self.last, self.pct = now, pct
            ok = set_progress(self.conn, self.job_id, pct, message)
        if not ok:
            raise JobCancelled


def _write_files(result, folder: Path) -> list[str]:
    """Write the result files into ``folder`` (created); their format names."""
    from gis.analysis import output
    from gis.analysis._common import metadata_json

    folder.mkdir(parents=True)
    geo = output._is_geo(result)
    formats = ["geojson", "csv", "gpkg"] if geo else ["json", "csv"]
    if geo and len(result) == 0:
        formats.remove("gpkg")  # a GeoPackage layer needs a geometry type: none to tell from 0 rows
    for fmt in formats:
        path = folder / RESULT_FILES[fmt][0]
        if fmt == "json":
            data = output._clean_columns(result)
            path.write_text(
                data.to_json(orient="records", force_ascii=False, date_format="iso"),
                encoding="utf-8",
            )
        else:
            output.write_file(result, path, layer="result" if fmt == "gpkg" else None)
    (folder / "metadata.json").write_text(metadata_json(result), encoding="utf-8")
    return formats


def run_job(
    dsn: str,
    job_id: str,
    *,
    results_root: Path,
    input_dirs: list[Path] | tuple[Path, ...] = (),
    raster_root: Path | None = None,
    publish: bool = True,
    cancel: threading.Event | None = None,
) -> Job:
    """Run an accepted job to its end (the worker); returns the job as it ended.

    Never raises for a failure of the analysis: the job fails, with the error's user-safe message,
    and nothing of it is left (no result folder, no table). Returns at once, doing nothing, when
    the job is not accepted any more or another worker holds it.

    Parameters
    ----------
    dsn : str
    job_id : str
    results_root : Path
        Folder of the result folders (``<root>/<job id>/``).
    input_dirs : list of Path
        See :class:`JobSettings`.
    raster_root : Path, optional
        The raster store, for ``raster:<collection>`` file inputs.
    publish : bool
        Publish a result with a geometry as ``stats.job_<short id>`` (a public collection).
    cancel : threading.Event, optional
        Set it to stop the job at its next progress report (it then fails as interrupted).
    """
    from gis.analysis import output
    from gis.analysis._common import _jsonable
    from gis.analysis.registry import get_analysis

    job_id = parse_job_id(job_id)
    runner = f"{socket.gethostname()}:{os.getpid()}"
    with connect(dsn, autocommit=True) as conn:
        if not conn.execute(
            "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (LOCK_CLASS, job_id)
        ).fetchone()[0]:
            return get_job(conn, job_id)
        job = claim_job(conn, job_id, runner)
        if job is None:
            return get_job(conn, job_id)
        tmp = Path(results_root) / f".{job_id}.tmp"
        final = Path(results_root) / job_id
        table = None
        try:
            analysis = get_analysis(job.process_id)
            values = resolve_path_inputs(
                analysis, job.inputs, input_dirs, dsn=dsn, raster_root=raster_root
            )
            report = _Reporter(conn, job_id, cancel)
            t0 = time.monotonic()
            result = analysis.run(dsn, values, progress=report)
            took = time.monotonic() - t0
            title = f"{analysis.title} (job {job.short})"
            result.attrs["title"] = (
                f"{result.attrs.get('title') or analysis.title} (job {job.short})"
            )
            report.update(92, "writing the results")
            shutil.rmtree(tmp, ignore_errors=True)
            formats = _write_files(result, tmp)
            collection = None
            if publish and output._is_geo(result):
                report.update(96, "publishing the result as a collection")
                info = output.write_table(
                    result,
                    dsn,
                    f"job_{job.short}",
                    replace=False,
                    title=title,
                    title_vi=f"{analysis.title_vi} (job {job.short})",
                    public=True,
                    duration_s=took,
                )
                table, collection = f"job_{job.short}", info["collection"]
            report.update(99, "finishing")
            os.replace(tmp, final)
            meta = _jsonable(dict(result.attrs))
            if finish_job(
                conn,
                job_id,
                result_dir=str(final),
                formats=formats,
                table=table,
                collection=collection,
                rows=len(result),
                meta=meta,
                message=f"done: {len(result)} rows in {took:.1f} s",
            ):
                return get_job(conn, job_id)
            raise JobCancelled  # dismissed between the last report and now
        except JobCancelled:
            _clean(dsn, tmp, final, table)
            if cancel is not None and cancel.is_set():
                fail_job(conn, job_id, INTERRUPTED, "Interrupted", 500)
        except GisError as exc:
            _clean(dsn, tmp, final, table)
            fail_job(conn, job_id, exc.message, exc.code, exc.http_status)
        except Exception as exc:
            ref = uuid.uuid4().hex[:12]
            log.exception(
                "job %s (%s) failed unexpectedly, reference %s", job_id, job.process_id, ref
            )
            _clean(dsn, tmp, final, table)
            fail_job(
                conn,
                job_id,
                f"The analysis failed unexpectedly ({type(exc).__name__}, reference "
                f"{ref} in the server log); nothing was written.",
                "ServerError",
                500,
            )
        return get_job(conn, job_id)


def _clean(dsn: str, tmp: Path, final: Path, table: str | None) -> None:
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(final, ignore_errors=True)
    if table:
        try:
            _drop_table(dsn, table)
        except (GisError, psycopg.Error):  # pragma: no cover - the database went away
            log.exception("could not drop the result table stats.%s", table)


# --- the manager of a server process ------------------------------------------------------------
class JobManager:
    """The jobs of one server process: a pool of worker threads, and a small connection pool for
    the status reads and writes of the API.

    Parameters
    ----------
    dsn : str
    settings : JobSettings
    data_dir : Path
        The platform's data folder (results go to ``data_dir / "processes"`` unless
        ``settings.results_dir`` says otherwise).

    Examples
    --------
    >>> mgr = JobManager(dsn, JobSettings(), Path("var"))  # doctest: +SKIP
    >>> mgr.open()  # doctest: +SKIP
    >>> job = mgr.submit(get_analysis("planning.land-use"), {"source": "lots"})  # doctest: +SKIP
    >>> mgr.wait(job.job_id).status  # doctest: +SKIP
    'successful'
    """

    def __init__(self, dsn: str, settings: JobSettings, data_dir: Path,
                 raster_root: Path | None = None) -> None:
        from psycopg_pool import ConnectionPool

        self.dsn = dsn
        self.settings = settings
        self.results_root = Path(settings.results_dir or Path(data_dir) / "processes")
        self.raster_root = raster_root
        self.pool = ConnectionPool(
            dsn,
            min_size=1,
            max_size=settings.workers + 4,
            open=False,
            kwargs={"autocommit": True, "connect_timeout": 10},
            name="gis-jobs",
        )
        self._executor: ThreadPoolExecutor | None = None
        self._cancel: dict[str, threading.Event] = {}
        self._futures: dict[str, Future] = {}
        self._lock = threading.Lock()

    # life cycle
    def open(self) -> list[str]:
        """Open the pool, start the workers, recover the jobs of a previous run.

        Returns the ids of the jobs found interrupted (marked failed).
        """
        self.results_root.mkdir(parents=True, exist_ok=True)
        self.pool.open(wait=True, timeout=30)
        self._executor = ThreadPoolExecutor(self.settings.workers, thread_name_prefix="gis-job")
        failed, accepted = recover_jobs(self.dsn, self.results_root)
        for jid in accepted:
            self._start(jid)
        return failed

    def close(self, timeout: float = 10.0) -> None:
        """Stop: queued jobs stay accepted (the next start runs them); running ones are asked to
        stop and, if still running after ``timeout`` seconds, marked failed (interrupted)."""
        with self._lock:
            events = dict(self._cancel)
            futures = dict(self._futures)
        for ev in events.values():
            ev.set()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + timeout
        for jid, fut in futures.items():
            try:
                fut.result(timeout=max(0.0, deadline - time.monotonic()))
            except BaseException:  # noqa: BLE001 - timeout, or cancelled before it started
                with self.pool.connection() as conn:
                    row = conn.execute(
                        "SELECT runner FROM processes.jobs WHERE job_id = %s AND status = "
                        "'running'",
                        (jid,),
                    ).fetchone()
                    if row and row[0] and row[0].endswith(f":{os.getpid()}"):
                        fail_job(conn, jid, INTERRUPTED, "Interrupted", 500)
        self.pool.close()

    # jobs
    def _start(self, job_id: str) -> Future:
        assert self._executor is not None, "JobManager.open() was not called"
        ev = threading.Event()
        with self._lock:
            self._cancel[job_id] = ev
            fut = self._executor.submit(self._run, job_id, ev)
            self._futures[job_id] = fut

        def forget(_f: Future) -> None:
            with self._lock:
                self._cancel.pop(job_id, None)
                self._futures.pop(job_id, None)

        fut.add_done_callback(forget)
        return fut

    def _run(self, job_id: str, cancel: threading.Event) -> Job | None:
        try:
            return run_job(
                self.dsn,
                job_id,
                results_root=self.results_root,
                input_dirs=self.settings.input_dirs,
                raster_root=self.raster_root,
                publish=self.settings.publish,
                cancel=cancel,
            )
        except BaseException:
            log.exception("the worker of job %s stopped", job_id)
            return None

    def submit(
        self,
        analysis,
        params: dict[str, Any] | None,
        *,
        execution: dict | None = None,
        mode: str = "async",
    ) -> Job:
        """Check the inputs, record an accepted job and hand it to a worker.

        Raises
        ------
        InputError
            Bad inputs (nothing recorded).
        """
        values = check_inputs(
            analysis, params, self.dsn, self.settings.input_dirs, self.raster_root
        )
        with self.pool.connection() as conn:
            job = create_job(conn, analysis.id, values, execution=execution, mode=mode)
        self._start(job.job_id)
        return job

    def future(self, job_id: str) -> Future | None:
        """The future of a job this process runs or queued (None otherwise)."""
        with self._lock:
            return self._futures.get(job_id)

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Wait for a job of this process to end (or ``timeout``); the job as it is then."""
        fut = self.future(job_id)
        if fut is not None:
            try:
                fut.result(timeout=timeout)
            except TimeoutError:
                pass
        return self.get(job_id)

    def get(self, job_id: str) -> Job:
        with self.pool.connection() as conn:
            return get_job(conn, job_id)

    def list(self, **filters: Any) -> tuple[list[Job], int]:
        """See :func:`list_jobs`."""
        with self.pool.connection() as conn:
            return list_jobs(conn, **filters)

    def dismiss(self, job_id: str) -> Job:
        """Dismiss a job: stop it if it runs here (elsewhere it stops at its next progress report,
        which reads the status), remove its results. Returns the job as it is now."""
        jid = parse_job_id(job_id)
        with self.pool.connection() as conn:
            before = dismiss_job(conn, jid)
        with self._lock:
            ev = self._cancel.get(jid)
        if before.status == "successful":
            remove_results(self.dsn, before)
        if ev is not None:
            # the worker would see the status at its next report anyway; the event makes it
            # sooner (the job stays dismissed: only a running or accepted job can fail)
            ev.set()
        return self.get(jid)
