"""The raster ingest job: check -> write COGs (temporary) -> catalog rows + rename, one transaction.

``gis ingest raster PATH...`` runs one job over all the files given, all or nothing:

1. every file is opened and checked (:func:`gis.raster.source.inspect_raster`) before anything is
   written: a bad file fails the job with nothing written;
2. the COG of each new or changed item is written to a temporary file in the store folder it will
   live in, and validated;
3. in ONE transaction: the run row, the collection, the item rows are written; then the temporary
   files are renamed to their final names (``os.replace``, atomic); then the transaction commits.
   A final name is new for every new version of an item (it carries the row hash), so no file a
   committed row refers to is ever overwritten;
4. after the commit, the files of superseded versions are removed.

On any failure or interruption the transaction is rolled back and every file this job wrote
(temporary or already renamed) is removed, so neither half a file nor a row is left behind; the
failure is then recorded in ``ingest.runs``. Only a process killed between the renames and the
commit can leave files no row refers to: they are harmless and
:meth:`gis.raster.store.RasterStore.sweep` (``gis raster sweep``) removes them.

Running the same files twice changes nothing the second time: an item whose row hash (source
checksum and everything derived from it) is unchanged is not rewritten.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb

from gis import crs as gcrs
from gis.catalog import FREQUENCIES
from gis.db import connect
from gis.errors import GisError, InputError
from gis.raster import sensors
from gis.raster.source import RasterSource, TimeSpec, file_checksum, inspect_raster, parse_datetime
from gis.raster.store import COG_OPTIONS, RasterStore, default_resampling, write_cog

__all__ = [
    "RasterIngestOptions",
    "RasterItemResult",
    "RasterRunResult",
    "item_id_for",
    "run_raster_ingest",
]

KIND = "raster"
_COLLECTION_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_ITEM_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass
class RasterIngestOptions:
    """Options of a raster ingest job (the CLI's flags).

    Parameters
    ----------
    collection : str
        The STAC collection the items go into (created if missing).
    title, description, license : str, optional
        Of a new collection.
    datetime : str, optional
        The items' time (see :func:`gis.raster.source.parse_datetime`); required when a file does
        not carry one.
    crs : str, optional
        CRS of files that have none, or to override a wrong one.
    nodata : float, optional
        Nodata value overriding the files'.
    sensor : str, optional
        A sensor profile (:data:`gis.raster.sensors.SENSORS`): band count, data type, names,
        scale checked and applied.
    bands : list of str, optional
        Band names, in order.
    variable : str, optional
        The NetCDF variable.
    item_id : str, optional
        Id of the item (one file only; default: the file name without extension).
    resampling : str, optional
        Overview resampling (default: ``average``; ``nearest`` for 8-bit data).
    update_frequency : str, optional
        How often the collection is updated (an ISO 19115 code of :data:`gis.catalog.FREQUENCIES`:
        annually, monthly, irregular...), stated in its records and the DCAT feed.
    """

    collection: str = "rasters"
    title: str | None = None
    description: str | None = None
    license: str | None = None
    datetime: str | None = None
    crs: str | None = None
    nodata: float | None = None
    sensor: str | None = None
    bands: list[str] | None = None
    variable: str | None = None
    item_id: str | None = None
    resampling: str | None = None
    update_frequency: str | None = None


@dataclass
class RasterItemResult:
    """What the job did with one file."""

    path: str
    item_id: str
    outcome: str  # inserted | updated | unchanged
    href: str
    size: int = 0


@dataclass
class RasterRunResult:
    """What a raster ingest job did; the same figures are recorded in ``ingest.runs``."""

    collection: str
    sources: list[str]
    outcome: str = "failed"
    run_id: int | None = None
    items: list[RasterItemResult] = field(default_factory=list)
    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    written_bytes: int = 0
    duration_s: float = 0.0
    message: str | None = None

    def summary(self) -> str:
        """One paragraph for the CLI."""
        head = {
            "loaded": "Loaded",
            "unchanged": "Nothing changed",
            "failed": "FAILED",
            "interrupted": "INTERRUPTED",
        }[self.outcome]
        s = (
            f"{head}: {self.read} raster(s) into collection {self.collection} in "
            f"{self.duration_s:.1f} s: inserted {self.inserted}, updated {self.updated}, "
            f"unchanged {self.unchanged}."
        )
        if self.written_bytes:
            s += f" {self.written_bytes / 1e6:.1f} MB of COG written."
        for it in self.items:
            s += f"\n  {it.outcome:<9} {self.collection}/{it.item_id} -> {it.href}"
        if self.run_id:
            s += f"\nRun {self.run_id}."
        return s


def item_id_for(path: Path) -> str:
    """Default item id of a file: its name without extension, made URL-safe."""
    stem = path.name
    for suffix in (".tif", ".tiff", ".jp2", ".nc", ".nc4", ".vrt", ".img"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._")
    return stem[:128] or "item"


def _row_hash(src: RasterSource, collection: str, item_id: str, resampling: str) -> str:
    doc = {
        "checksum": src.checksum,
        "collection": collection,
        "id": item_id,
        "time": src.time.as_text(),
        "crs": src.crs.to_wkt(),
        "transform": list(src.transform)[:6],
        "shape": [src.height, src.width],
        "bands": [b.stac() for b in src.bands],
        "nodata": None if src.nodata is None else repr(src.nodata),
        "sensor": src.sensor,
        "properties": src.properties,
        "variable": src.variable,
        "cog": COG_OPTIONS,
        "resampling": resampling,
        "format": 1,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # pragma: no cover - no login name in some containers
        return "unknown"


def _opts_json(opts: RasterIngestOptions, paths: list[Path]) -> dict:
    d = asdict(opts)
    d["paths"] = [str(p) for p in paths]
    if (
        d["nodata"] is not None
        and isinstance(d["nodata"], float)
        and not math.isfinite(d["nodata"])
    ):
        d["nodata"] = str(d["nodata"])
    return d


def _record_failure(
    dsn: str,
    result: RasterRunResult,
    started: datetime,
    opts_json: dict,
    outcome: str,
    checksum: str | None,
) -> None:
    """Record a failed or interrupted run in its own transaction (best effort)."""
    result.outcome = outcome
    try:
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            result.run_id = conn.execute(
                "INSERT INTO ingest.runs (kind, source_path, checksum, mapping, options, os_user, "
                "started_at, outcome, n_read, duration_s, message) "
                "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) RETURNING run_id",
                (
                    KIND,
                    "; ".join(result.sources),
                    checksum,
                    opts_json.get("sensor"),
                    Jsonb(opts_json),
                    _os_user(),
                    started,
                    outcome,
                    result.read,
                    result.duration_s,
                    result.message,
                ),
            ).fetchone()[0]
    except Exception:  # the database is down or the schema is missing: the error itself is raised
        pass


def _unlink(p: Path) -> None:
    try:
        p.unlink()
    except FileNotFoundError:
        pass


def run_raster_ingest(
    dsn: str,
    paths: list[str | Path] | str | Path,
    options: RasterIngestOptions | None = None,
    *,
    store: RasterStore,
    progress: Callable[[int, int], None] | None = None,
) -> RasterRunResult:
    """Ingest raster files as COGs into the store and the catalog, all or nothing.

    Parameters
    ----------
    dsn : str
        Database connection string (see :func:`gis.db.ready`).
    paths : list of path
        GeoTIFF / COG / JPEG 2000 / NetCDF files; each becomes one item.
    options : RasterIngestOptions, optional
    store : RasterStore
        Where the COGs go (``RasterStore(settings.raster_dir)``).
    progress : callable, optional
        Called as ``progress(done, total)`` after each COG is written.

    Returns
    -------
    RasterRunResult

    Raises
    ------
    gis.errors.InputError, gis.errors.CRSError
        A bad file or option; nothing is written (no file in the store, no row).
    gis.errors.DatabaseUnavailable
        The database cannot be reached; nothing is written.

    Examples
    --------
    >>> from gis.raster.store import RasterStore
    >>> result = run_raster_ingest(dsn, ["vnm_ppp_2020_1km_Aggregated_UNadj.tif"],
    ...     RasterIngestOptions(collection="worldpop", datetime="2020", sensor="worldpop"),
    ...     store=RasterStore("var/rasters"))  # doctest: +SKIP
    >>> result.outcome, result.inserted  # doctest: +SKIP
    ('loaded', 1)
    """
    opts = options or RasterIngestOptions()
    plist = [Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
    started = datetime.now(UTC)
    t0 = time.monotonic()
    result = RasterRunResult(
        collection=opts.collection,
        sources=[str(p.resolve()) if p.exists() else str(p) for p in plist],
    )
    ojson = _opts_json(opts, plist)
    checksum: str | None = None

    temps: list[Path] = []
    placed: list[Path] = []
    try:
        # 1. check everything first ---------------------------------------------------------
        if not plist:
            raise InputError("Give at least one raster file.")
        if not _COLLECTION_RE.match(opts.collection or ""):
            raise InputError(
                f"--collection {opts.collection!r}: use lower-case letters, digits, "
                "'-' and '_' (e.g. sentinel2-l2a)."
            )
        if opts.item_id is not None and len(plist) > 1:
            raise InputError("--id names one item: give one file with it.")
        if opts.item_id is not None and not _ITEM_RE.match(opts.item_id):
            raise InputError(f"--id {opts.item_id!r}: use letters, digits, '.', '-' and '_'.")
        sensor = sensors.get_sensor(opts.sensor)
        when: TimeSpec | None = parse_datetime(opts.datetime) if opts.datetime else None
        if opts.crs is not None:
            gcrs.parse_crs(opts.crs)
        if opts.resampling is not None and opts.resampling.lower() not in (
            "nearest",
            "average",
            "bilinear",
            "cubic",
            "mode",
            "rms",
        ):
            raise InputError(
                f"--resampling {opts.resampling!r}: use average, nearest, bilinear, "
                "cubic, mode or rms."
            )
        if opts.update_frequency is not None and opts.update_frequency not in FREQUENCIES:
            raise InputError(
                f"--update-frequency {opts.update_frequency!r}: use one of {', '.join(FREQUENCIES)}."
            )
        sources: list[RasterSource] = []
        for p in plist:
            sources.append(
                inspect_raster(
                    p,
                    crs=opts.crs,
                    nodata=opts.nodata,
                    sensor=sensor,
                    time=when,
                    band_names=opts.bands,
                    variable=opts.variable,
                )
            )
            result.read += 1
        checksum = (
            sources[0].checksum
            if len(sources) == 1
            else hashlib.sha256("".join(s.checksum for s in sources).encode()).hexdigest()
        )
        ids = [opts.item_id or item_id_for(s.path) for s in sources]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise InputError(
                f"Several files would become the same item {sorted(dup)[0]!r}: "
                "rename them or ingest them into different collections."
            )
        resampling = [(opts.resampling or default_resampling(s.data_type)).lower() for s in sources]
        hashes = [_row_hash(s, opts.collection, i, r) for s, i, r in zip(sources, ids, resampling)]
    except GisError as exc:
        result.message = exc.message
        result.duration_s = time.monotonic() - t0
        _record_failure(dsn, result, started, ojson, "failed", checksum)
        raise

    outcome = "failed"
    try:
        with connect(dsn) as conn:
            # 2. which items change? write their COGs to temporary files ---------------------
            existing = _existing(conn, opts.collection, ids)
            conn.commit()
            planned: dict[str, tuple[Path, str, int, str]] = {}
            for k, (src, item_id, row_hash, res) in enumerate(
                zip(sources, ids, hashes, resampling)
            ):
                old = existing.get(item_id)
                if old is None or old[0] != row_hash:
                    href = store.href_for(opts.collection, item_id, row_hash)
                    tmp = store.temp_path(href)
                    temps.append(tmp)
                    write_cog(src, tmp, resampling=res, tags=_tags(src, opts.collection, item_id))
                    planned[item_id] = (tmp, href, tmp.stat().st_size, file_checksum(tmp))
                if progress:
                    progress(k + 1, len(sources))

            # 3. one transaction: run, collection, items; rename; commit ---------------------
            superseded: list[str] = []
            with conn.transaction():
                conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))",
                    (f"ingest:raster:{opts.collection}",),
                )
                run_id = conn.execute(
                    "INSERT INTO ingest.runs (kind, source_path, checksum, source_crs, mapping, "
                    "options, os_user, started_at, outcome, n_read) "
                    "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,'loaded',%s) RETURNING run_id",
                    (
                        KIND,
                        "; ".join(result.sources),
                        checksum,
                        gcrs.describe_crs(sources[0].crs),
                        opts.sensor,
                        Jsonb(ojson),
                        _os_user(),
                        started,
                        result.read,
                    ),
                ).fetchone()[0]
                _ensure_collection(conn, opts, sensor)
                existing = _existing(conn, opts.collection, ids, lock=True)
                for src, item_id, row_hash in zip(sources, ids, hashes):
                    old = existing.get(item_id)
                    if old is not None and old[0] == row_hash:
                        result.unchanged += 1
                        result.items.append(
                            RasterItemResult(str(src.path), item_id, "unchanged", old[1])
                        )
                        if item_id in planned:  # changed back meanwhile: our file is not needed
                            _unlink(planned.pop(item_id)[0])
                        continue
                    if item_id not in planned:  # changed meanwhile by another job: write now
                        href = store.href_for(opts.collection, item_id, row_hash)
                        tmp = store.temp_path(href)
                        temps.append(tmp)
                        write_cog(
                            src,
                            tmp,
                            resampling=resampling[ids.index(item_id)],
                            tags=_tags(src, opts.collection, item_id),
                        )
                        planned[item_id] = (tmp, href, tmp.stat().st_size, file_checksum(tmp))
                    tmp, href, size, asset_sum = planned[item_id]
                    _write_item(
                        conn,
                        src,
                        opts.collection,
                        item_id,
                        row_hash,
                        href,
                        size,
                        asset_sum,
                        run_id,
                        update=old is not None,
                    )
                    if old is None:
                        result.inserted += 1
                    else:
                        result.updated += 1
                        if old[1] != href:
                            superseded.append(old[1])
                    result.written_bytes += size
                    result.items.append(
                        RasterItemResult(
                            str(src.path), item_id, "updated" if old else "inserted", href, size
                        )
                    )
                outcome = "loaded" if (result.inserted or result.updated) else "unchanged"
                result.duration_s = time.monotonic() - t0
                conn.execute(
                    "UPDATE ingest.runs SET outcome=%s, n_loaded=%s, n_inserted=%s, n_updated=%s, "
                    "n_unchanged=%s, duration_s=%s, finished_at=clock_timestamp(), message=%s "
                    "WHERE run_id=%s",
                    (
                        outcome,
                        result.inserted + result.updated,
                        result.inserted,
                        result.updated,
                        result.unchanged,
                        result.duration_s,
                        f"{result.written_bytes} bytes of COG written",
                        run_id,
                    ),
                )
                # rename last, just before the commit; a failed commit removes them again
                for tmp, href, _size, _sum in planned.values():
                    placed.append(store.place(tmp, href))
                    temps.remove(tmp)
            # committed
            placed.clear()
            result.run_id = run_id
            result.outcome = outcome
            for href in superseded:
                if href not in {it.href for it in result.items}:
                    try:
                        _unlink(store.path(href))
                    except GisError:
                        pass
    except KeyboardInterrupt:
        _cleanup(temps, placed)
        result.message = "interrupted by the user"
        result.duration_s = time.monotonic() - t0
        _record_failure(dsn, result, started, ojson, "interrupted", checksum)
        raise
    except GisError as exc:
        _cleanup(temps, placed)
        result.message = exc.message
        result.duration_s = time.monotonic() - t0
        _record_failure(dsn, result, started, ojson, "failed", checksum)
        raise
    except psycopg.Error as exc:
        _cleanup(temps, placed)
        result.duration_s = time.monotonic() - t0
        msg = exc.diag.message_primary if getattr(exc, "diag", None) else str(exc)
        result.message = f"database error: {msg}"
        _record_failure(dsn, result, started, ojson, "failed", checksum)
        raise GisError(
            f"The raster ingest was rolled back, nothing was written: {result.message}"
        ) from exc
    except BaseException:
        _cleanup(temps, placed)
        raise
    result.duration_s = time.monotonic() - t0
    return result


def _cleanup(temps: list[Path], placed: list[Path]) -> None:
    for p in temps + placed:
        _unlink(p)
        _unlink(p.with_name(p.stem + ".src.vrt"))
        _unlink(p.with_name(p.stem + ".src.tif"))
    temps.clear()
    placed.clear()


def _tags(src: RasterSource, collection: str, item_id: str) -> dict[str, str]:
    t = {"STAC_COLLECTION": collection, "STAC_ITEM": item_id, "SOURCE_SHA256": src.checksum}
    if src.time.datetime is not None:
        t["DATETIME"] = src.time.datetime.isoformat()
    else:
        t["START_DATETIME"] = src.time.start.isoformat()
        t["END_DATETIME"] = src.time.end.isoformat()
    if src.sensor:
        t["SENSOR"] = src.sensor
    return t


def _existing(
    conn: psycopg.Connection, collection: str, ids: list[str], lock: bool = False
) -> dict[str, tuple[str, str]]:
    rows = conn.execute(
        "SELECT id, row_hash, asset_href FROM raster.items WHERE collection = %s AND id = ANY(%s)"
        + (" FOR UPDATE" if lock else ""),
        (collection, ids),
    ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def _ensure_collection(
    conn: psycopg.Connection, opts: RasterIngestOptions, sensor: sensors.Sensor | None
) -> None:
    title = opts.title or (sensor.title if sensor else opts.collection)
    keywords = list(sensor.keywords) if sensor else []
    conn.execute(
        "INSERT INTO raster.collections (id, title, description, license, keywords, update_frequency) "
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
        (opts.collection, title, opts.description or "", opts.license or "other", keywords,
         opts.update_frequency or "unknown"),
    )
    if opts.title or opts.description or opts.license or opts.update_frequency:
        conn.execute(
            "UPDATE raster.collections SET title = coalesce(%s, title), "
            "description = coalesce(%s, description), license = coalesce(%s, license), "
            "update_frequency = coalesce(%s, update_frequency), updated_at = now() WHERE id = %s",
            (opts.title, opts.description, opts.license, opts.update_frequency, opts.collection),
        )


def _write_item(
    conn: psycopg.Connection,
    src: RasterSource,
    collection: str,
    item_id: str,
    row_hash: str,
    href: str,
    size: int,
    asset_sum: str,
    run_id: int,
    update: bool,
) -> None:
    t = src.transform
    values = dict(
        collection=collection,
        id=item_id,
        geom=src.footprint.wkb,
        datetime=src.time.datetime,
        start_datetime=src.time.start,
        end_datetime=src.time.end,
        epsg=src.epsg,
        crs_wkt=src.crs.to_wkt(),
        transform=[t.a, t.b, t.c, t.d, t.e, t.f],
        width=src.width,
        height=src.height,
        resolution=list(src.resolution),
        data_type=src.data_type,
        bands=Jsonb([b.stac() for b in src.bands]),
        sensor=src.sensor,
        checksum=src.checksum,
        source_path=str(src.path.resolve()),
        asset_href=href,
        asset_size=size,
        asset_checksum=asset_sum,
        properties=Jsonb(src.properties),
        row_hash=row_hash,
        run_id=run_id,
    )
    if update:
        sets = ", ".join(
            f"{k} = %({k})s" if k != "geom" else "geom = ST_GeomFromWKB(%(geom)s, 4326)"
            for k in values
            if k not in ("collection", "id")
        )
        conn.execute(
            f"UPDATE raster.items SET {sets}, updated_at = now() "
            "WHERE collection = %(collection)s AND id = %(id)s",
            values,
        )
    else:
        cols = ", ".join(values)
        params = ", ".join(
            "ST_GeomFromWKB(%(geom)s, 4326)" if k == "geom" else f"%({k})s" for k in values
        )
        conn.execute(f"INSERT INTO raster.items ({cols}) VALUES ({params})", values)
