"""The ingest job: read -> normalise -> stage (COPY) -> merge, in ONE transaction, then record the run.

A job that fails, is interrupted or meets bad input leaves the data exactly as before (the transaction
is rolled back; a killed process's connection is dropped and PostgreSQL rolls back); the failure is
recorded in ``ingest.runs`` afterwards. Running the same file twice changes nothing the second time.
"""

from __future__ import annotations

import getpass
import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import psycopg.sql
import shapely

from gis import crs as gcrs
from gis.db import connect
from gis.errors import GisError, InputError
from ingest import merge as m
from ingest.kinds import get_kind
from ingest.loader import Loader, takes_direct_path
from ingest.mapping import choose_mapping
from ingest.normalise import Lookups, normalise_batch
from ingest.reader import check_encoding_name, iter_batches, open_source


class RejectsExceeded(InputError):
    """More features were rejected than the job allows."""


@dataclass
class IngestOptions:
    """Options of one ingest job (the CLI's flags).

    Parameters
    ----------
    crs : str, optional
        CRS of a file that has none (e.g. ``EPSG:9210``); overrides the file's CRS when given.
    mapping : str, optional
        A preset name or a ``.toml`` mapping file; chosen by the file's fields when omitted.
    layer : str, optional
        The layer of a multi-layer source.
    encoding : str, optional
        Text encoding of the attributes: ``utf-8``, ``tcvn3``, ``vni``, ``cp1258``, ...
    invalid : {"repair", "reject"}
        What to do with invalid geometries.
    max_rejects : str
        How many rejected features the job tolerates: a count (``"0"``, the default: any reject fails
        the job and nothing is written) or a percentage (``"1%"``).
    valid_from : datetime, optional
        Start of validity of new parcel versions (default: the job's time).
    """

    crs: str | None = None
    mapping: str | None = None
    layer: str | None = None
    encoding: str | None = None
    invalid: str = "repair"
    max_rejects: str = "0"
    valid_from: datetime | None = None
    batch_size: int = 50_000


@dataclass
class RunResult:
    """What an ingest job did; the same figures are recorded in ``ingest.runs``."""

    kind: str
    source: str
    outcome: str = "failed"
    run_id: int | None = None
    layer: str | None = None
    mapping: str | None = None
    source_crs: str | None = None
    text_encoding: str | None = None
    checksum: str | None = None
    read: int = 0
    loaded: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    retired: int = 0
    repaired: int = 0
    rejected: int = 0
    skipped: int = 0
    rejects_path: str | None = None
    duration_s: float = 0.0
    message: str | None = None
    extra: dict = field(default_factory=dict)

    def summary(self) -> str:
        """One paragraph for the CLI."""
        head = {
            "loaded": "Loaded", "unchanged": "Nothing changed", "failed": "FAILED",
            "interrupted": "INTERRUPTED",
        }[self.outcome]
        s = (f"{head}: {self.kind} from {self.source}"
             + (f" (layer {self.layer})" if self.layer else "")
             + f" in {self.duration_s:.1f} s. read {self.read}, inserted {self.inserted}, "
               f"updated {self.updated}, unchanged {self.unchanged}, retired {self.retired}, "
               f"repaired {self.repaired}, rejected {self.rejected}."
             + (f" Skipped {self.skipped} features of types the mapping leaves out." if self.skipped else ""))
        if self.mapping:
            s += f" Mapping {self.mapping}; CRS {self.source_crs}"
            s += f"; text {self.text_encoding}." if self.text_encoding else "."
        if self.rejects_path:
            s += f" Rejected features and reasons: {self.rejects_path}"
        if self.run_id:
            s += f" Run {self.run_id}."
        return s


def _allowed_rejects(spec: str, total: int) -> int:
    spec = str(spec).strip()
    m_ = re.fullmatch(r"(\d+(?:\.\d+)?)\s*%", spec)
    if m_:
        return int(total * float(m_.group(1)) / 100)
    if re.fullmatch(r"\d+", spec):
        return int(spec)
    raise InputError(f"--max-rejects {spec!r}: give a count (e.g. 0, 10) or a percentage (e.g. 1%).")


def run_ingest(
    dsn: str,
    kind_name: str,
    path: str | Path,
    options: IngestOptions | None = None,
    *,
    rejects_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RunResult:
    """Load a vector file into the model, all or nothing.

    Parameters
    ----------
    dsn : str
        Database connection string (see :func:`gis.db.ready`).
    kind_name : str
        One of ``admin``, ``cadastral``, ``planning``, ``buildings``, ``roads``, ``poi``.
    path : str or Path
        Any vector file GDAL reads (Shapefile, zipped Shapefile, GeoPackage, GeoJSON, FlatGeobuf, CSV
        with WKT, GML).
    options : IngestOptions, optional
        Flags of the job.
    rejects_dir : Path, optional
        Where the rejected features are written (CSV with the reason per feature).
    progress : callable, optional
        Called as ``progress(done, total)`` after each batch.

    Returns
    -------
    RunResult
        Counts and outcome (also recorded in ``ingest.runs``).

    Raises
    ------
    InputError
        Bad input of any kind (file, CRS, mapping, too many rejected features); nothing is written.
    DatabaseUnavailable
        The database cannot be reached; nothing is written.

    Examples
    --------
    >>> result = run_ingest(dsn, "cadastral", "data/sample/cadastral.gpkg")  # doctest: +SKIP
    >>> result.outcome, result.inserted  # doctest: +SKIP
    ('loaded', 600)
    """
    opts = options or IngestOptions()
    started = datetime.now(timezone.utc)
    t0 = time.monotonic()
    result = RunResult(kind=kind_name, source=str(path))
    try:
        if opts.invalid not in ("repair", "reject"):
            raise InputError(f"--invalid {opts.invalid!r}: use repair or reject.")
        kind = get_kind(kind_name)
        encoding = check_encoding_name(opts.encoding)
        src = open_source(path, opts.layer)
        result.layer, result.checksum = src.layer, src.checksum
        allowed = _allowed_rejects(opts.max_rejects, src.count)
        mapping = choose_mapping(kind, src.fields, opts.mapping)
        resolved = mapping.resolve(kind, src.fields)
        result.mapping = mapping.name
        source_crs = gcrs.resolve_crs(src.crs, opts.crs, bounds=src.bounds)
        result.source_crs = gcrs.describe_crs(source_crs)
        transformer = gcrs.make_transformer(source_crs)
    except GisError as exc:
        result.message = exc.message
        result.duration_s = time.monotonic() - t0
        _record_failure(dsn, result, started, opts, "failed")
        raise
    except KeyboardInterrupt:
        result.message = "interrupted by the user"
        result.duration_s = time.monotonic() - t0
        _record_failure(dsn, result, started, opts, "interrupted")
        raise
    except Exception as exc:  # a bug, not bad input: recorded, and no traceback for the user
        raise _internal_error(dsn, result, started, opts, t0, exc) from exc

    rejects: list[pd.DataFrame] = []
    source_rows: dict[int, dict] = {}
    outcome = "failed"
    try:
        with connect(dsn) as conn:
            if conn.info.server_version >= 140000:
                # a killed job's connection is noticed within a second, even in the middle of a
                # long statement, so its transaction (and its lock) does not linger
                conn.execute("SET client_connection_check_interval = '1s'")
            lookups = Lookups(
                land_use={r[0] for r in conn.execute("SELECT code FROM cadastral.land_use_codes")},
                owner_type={r[0] for r in conn.execute("SELECT code FROM cadastral.owner_types")},
            )
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"ingest:{kind.name}",))
                run_id = conn.execute(
                    "INSERT INTO ingest.runs (kind, source_path, source_layer, checksum, source_crs, mapping, "
                    "options, os_user, started_at, outcome) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,'loaded') "
                    "RETURNING run_id",
                    (kind.name, str(Path(path).resolve()), src.layer, src.checksum, result.source_crs,
                     mapping.name, json.dumps(_opts_json(opts)), _os_user(), started),
                ).fetchone()[0]
                _tune_session(conn)
                now = opts.valid_from or conn.execute("SELECT now()").fetchone()[0]
                # batch N is hashed and staged by the loader's thread while batch N+1 is read and
                # normalised here
                loader = Loader(conn, kind, run_id=run_id, valid_from=now,
                                direct=takes_direct_path(conn, kind, src.count),
                                client_hashes=m.client_hashing(conn))
                result.extra["direct_first_load"] = loader.direct
                # personal data (owner names, id numbers) never leaves the database's private schema:
                # not even into the rejects file
                private_columns = {resolved[f.name] for f in kind.fields
                                   if f.private and resolved.get(f.name)}
                try:
                    loader.start()
                    for batch in iter_batches(src, opts.batch_size, encoding):
                        result.read += len(batch.fids)
                        # a wrong CRS fails the job before any coordinate is transformed
                        batch.geoms = _check_extent(src, source_crs, batch)
                        norm = normalise_batch(batch, kind, mapping, resolved, transformer.transform_geoms,
                                               lookups, opts.invalid)
                        result.repaired += norm.repaired
                        result.skipped += norm.skipped
                        if len(norm.rejects):
                            rejects.append(norm.rejects)
                            _keep_source_rows(source_rows, batch, norm.rejects["fid"], private_columns)
                        loader.put(norm.rows)
                        if progress:
                            progress(result.read, src.count)
                    loader.finish()
                finally:
                    loader.abort()  # an error or an interruption: stop the worker before the rollback
                result.text_encoding = src.text_encoding
                problems = m.stage_problems(conn, kind, first_load=loader.direct,
                                            keys_unique=m.all_distinct(loader.key_hashes))
                if problems:
                    extra = pd.DataFrame(problems, columns=["fid", "reason"])
                    rejects.append(extra)
                    m.drop_rejected(conn, [int(f) for f in extra["fid"]], direct=loader.direct)
                    source_rows.update({int(f): {} for f in extra["fid"] if int(f) not in source_rows})
                all_rejects = pd.concat(rejects) if rejects else pd.DataFrame(columns=["fid", "reason"])
                result.rejected = len(all_rejects)
                if result.rejected:
                    result.rejects_path = _write_rejects(rejects_dir, kind.name, src, all_rejects, source_rows)
                if result.rejected > allowed:
                    first = all_rejects.sort_values("fid").head(3)
                    examples = "; ".join(f"feature {int(r.fid)}: {r.reason}" for r in first.itertuples())
                    kinds = all_rejects["reason"].map(_reason_kind).value_counts()
                    by_reason = ", ".join(f"{n} {k}" for k, n in kinds.head(5).items())
                    raise RejectsExceeded(
                        f"{result.rejected} of {result.read} features rejected ({examples}"
                        f"{'; ...' if result.rejected > 3 else ''}). By reason: {by_reason}"
                        f"{', ...' if len(kinds) > 5 else ''}. Nothing was written. "
                        + (f"Reasons per feature: {result.rejects_path}. " if result.rejects_path else "")
                        + f"Fix the file, or allow rejects with --max-rejects (now {opts.max_rejects})."
                    )
                provided = ({t for t, col in resolved.items() if col is not None} | set(mapping.constants)
                            | {t for t, r in mapping.rules.items() if r.default is not None})
                counts = m.merge(conn, kind, run_id, now, provided,
                                 restore=loader.restore if loader.direct else None)
                result.inserted, result.updated = counts.inserted, counts.updated
                result.unchanged, result.retired = counts.unchanged, counts.retired
                result.loaded = counts.inserted + counts.updated
                outcome = "loaded" if (result.loaded or result.retired) else "unchanged"
                result.duration_s = time.monotonic() - t0
                conn.execute(
                    "UPDATE ingest.runs SET outcome=%s, n_read=%s, n_loaded=%s, n_inserted=%s, n_updated=%s, "
                    "n_unchanged=%s, n_retired=%s, n_repaired=%s, n_rejected=%s, rejects_path=%s, "
                    "duration_s=%s, finished_at=clock_timestamp(), message=%s WHERE run_id=%s",
                    (outcome, result.read, result.loaded, result.inserted, result.updated, result.unchanged,
                     result.retired, result.repaired, result.rejected, result.rejects_path,
                     result.duration_s, _run_message(src, mapping, result), run_id),
                )
            result.run_id = run_id
            result.outcome = outcome
            if outcome == "loaded":
                try:
                    with conn.transaction():
                        conn.execute(psycopg.sql.SQL("ANALYZE {}").format(
                            psycopg.sql.Identifier(*kind.table.split("."))))
                except (KeyboardInterrupt, psycopg.Error):
                    # the load is committed: fresh statistics are a nicety, autovacuum catches up
                    pass
    except KeyboardInterrupt:
        result.message = "interrupted by the user"
        result.duration_s = time.monotonic() - t0
        _record_failure(dsn, result, started, opts, "interrupted")
        raise
    except GisError as exc:
        result.message = exc.message
        result.duration_s = time.monotonic() - t0
        _record_failure(dsn, result, started, opts, "failed")
        raise
    except psycopg.Error as exc:
        result.duration_s = time.monotonic() - t0
        msg = exc.diag.message_primary if getattr(exc, "diag", None) else str(exc)
        result.message = f"database error: {msg}"
        _record_failure(dsn, result, started, opts, "failed")
        raise GisError(f"The load was rolled back, nothing was written: {result.message}") from exc
    except Exception as exc:  # a bug, not bad input: still all or nothing, recorded, no traceback
        raise _internal_error(dsn, result, started, opts, t0, exc) from exc
    result.duration_s = time.monotonic() - t0
    return result


def _tune_session(conn: psycopg.Connection) -> None:
    """Memory for the job's transaction: sorts and hashes of the checks and the merge in memory,
    index rebuilds in one pass (never less than the server's own settings)."""
    for name, size in (("work_mem", "64MB"), ("maintenance_work_mem", "256MB")):
        conn.execute("SELECT set_config(%s, %s, true) WHERE pg_size_bytes(current_setting(%s)) < pg_size_bytes(%s)",
                     (name, size, name, size))


def _internal_error(dsn, result: RunResult, started, opts, t0, exc: Exception) -> GisError:
    detail = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    result.message = f"internal error: {type(exc).__name__}" + (f": {detail}" if detail else "")
    result.duration_s = time.monotonic() - t0
    _record_failure(dsn, result, started, opts, "failed")
    return GisError(f"The load failed on an internal error and was rolled back, nothing was written "
                    f"({result.message}). Please report it with the file {result.source}.")


def _reason_kind(reason: str) -> str:
    """The kind of a reject reason, without the values: "unknown land-use code 'XYZ'" -> "unknown
    land-use code"."""
    m_ = re.match(r"field '([^']*)': .* is (not .*)$", str(reason))
    if m_:
        return f"field {m_.group(1)!r} {m_.group(2)}"
    return re.split(r"[:'\[]| \(", str(reason), maxsplit=1)[0].strip() or str(reason)


def _run_message(src, mapping, result: RunResult) -> str:
    msg = f"text encoding: {src.text_encoding or 'ascii'}"
    if result.skipped:
        types = ", ".join(mapping.options.get("skip_geometry_types") or ())
        msg += f"; skipped {result.skipped} features of type {types} (mapping {mapping.name})"
    return msg


def _check_extent(src, source_crs, batch) -> np.ndarray:
    """Check the batch's extent; return its parsed geometries (normalise reuses them)."""
    parsed = shapely.from_wkb(batch.wkb, on_invalid="ignore")
    geoms = parsed[~pd.isna(parsed)]
    if len(geoms):
        bounds = tuple(float(b) for b in shapely.total_bounds(geoms))
        if not any(np.isnan(bounds)):
            gcrs.check_extent(source_crs, bounds, label=str(src.path.name))
    return parsed


def _keep_source_rows(store: dict, batch, fids, private_columns: set[str] = frozenset()) -> None:
    idx = np.searchsorted(batch.fids, np.asarray(fids))
    wkt = shapely.to_wkt(shapely.from_wkb(batch.wkb[idx], on_invalid="ignore"), rounding_precision=3)
    for j, i in enumerate(idx):
        row = {k: (None if _isna(v) else v) for k, v in batch.attrs.iloc[i].to_dict().items()
               if k not in private_columns}
        row["wkt"] = wkt[j]
        store[int(batch.fids[i])] = row


def _isna(v) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _write_rejects(rejects_dir: Path | None, kind: str, src, rejects: pd.DataFrame, rows: dict) -> str | None:
    if rejects_dir is None:
        return None
    rejects_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    path = rejects_dir / f"{stamp}-{kind}-{src.path.stem}.rejects.csv"
    table = rejects.sort_values("fid").copy()
    table["fid"] = table["fid"].astype(int)
    detail = pd.DataFrame([{"fid": f, **rows.get(int(f), {})} for f in table["fid"]])
    out = table.merge(detail, on="fid", how="left") if len(detail.columns) > 1 else table
    out = out.rename(columns={"fid": "feature"})
    out.to_csv(path, index=False)
    return str(path)


def _opts_json(opts: IngestOptions) -> dict:
    d = asdict(opts)
    d["valid_from"] = opts.valid_from.isoformat() if opts.valid_from else None
    return d


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # pragma: no cover - no login name in some containers
        return "unknown"


def _record_failure(dsn: str, result: RunResult, started: datetime, opts: IngestOptions, outcome: str) -> None:
    """Record a failed or interrupted run in its own transaction (best effort: the database may be down)."""
    result.outcome = outcome
    try:
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            result.run_id = conn.execute(
                "INSERT INTO ingest.runs (kind, source_path, source_layer, checksum, source_crs, mapping, options, "
                "os_user, started_at, outcome, n_read, n_repaired, n_rejected, rejects_path, duration_s, message) "
                "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) RETURNING run_id",
                (result.kind, str(Path(result.source).resolve()), result.layer, result.checksum,
                 result.source_crs, result.mapping,
                 json.dumps(_opts_json(opts)), _os_user(), started, outcome, result.read, result.repaired,
                 result.rejected, result.rejects_path, result.duration_s, result.message),
            ).fetchone()[0]
    except Exception:  # the database is down or the schema is missing: the error itself is raised
        pass
