"""The ``gis`` command: the composition root of the platform.

It may import every package (gis, ingest, tiles, api), lazily inside each command so that
``gis --help`` stays instant. Settings are built here, once per invocation.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from gis.errors import GisError

app = typer.Typer(
    help="HCMC GIS platform: database, ingest jobs and services.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="The database: embedded PostGIS cluster or the server in DATABASE_URL.",
                     no_args_is_help=True)
app.add_typer(db_app, name="db")


def _settings():
    from gis.settings import Settings

    try:
        return Settings()
    except Exception as exc:  # pydantic ValidationError: name the bad variable
        raise GisError(f"Invalid settings in the environment: {exc}") from None


def _err(message: str) -> None:
    typer.secho(message, err=True, fg=typer.colors.RED)


# --- gis db ------------------------------------------------------------------------------------
@db_app.command("up")
def db_up() -> None:
    """Start the embedded database (initialising it on first use) and apply migrations."""
    from gis import db

    settings = _settings()
    dsn = db.resolve_dsn(settings)
    applied = db.migrate(dsn)
    where = "embedded database" if settings.uses_embedded else "configured database"
    typer.echo(f"The {where} is up at {db.redact(dsn) or 'libpq defaults'}; "
               f"{len(applied)} migration(s) applied.")


@db_app.command("down")
def db_down() -> None:
    """Stop the embedded database (a configured server is left alone)."""
    from gis.embedded import EmbeddedCluster

    settings = _settings()
    if not settings.uses_embedded:
        typer.echo("DATABASE_URL (or PG*) is set: that server is not managed by gis; nothing to stop.")
        return
    stopped = EmbeddedCluster(settings).stop()
    typer.echo("The embedded database is stopped." if stopped else "The embedded database was not running.")


@db_app.command("status")
def db_status() -> None:
    """Say where the database is, whether it answers, and its schema version."""
    from gis import db
    from gis.embedded import EmbeddedCluster

    settings = _settings()
    if settings.uses_embedded:
        cluster = EmbeddedCluster(settings)
        if not cluster.running():
            typer.echo(f"embedded database at {cluster.root}: stopped"
                       + ("" if cluster.initialised else " (not initialised)"))
            raise typer.Exit(3)
        dsn = cluster.url
        typer.echo(f"embedded database at {cluster.root}: running on 127.0.0.1:{cluster.port}")
    else:
        dsn = db.resolve_dsn(settings)
        typer.echo(f"configured database: {db.redact(dsn) or 'libpq defaults'}")
    with db.connect(dsn) as conn:
        version = conn.execute("SELECT version()").fetchone()[0].split(",")[0]
        postgis = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'postgis'").fetchone()
        applied = db.applied_versions(conn)
    latest = max((m.version for m in db.migrations()), default=0)
    typer.echo(f"server: {version}; PostGIS {postgis[0] if postgis else 'not installed'}; "
               f"schema {max(applied, default=0)}/{latest}")


@db_app.command("url")
def db_url() -> None:
    """Print the database URL (starting the embedded database if needed)."""
    from gis import db

    typer.echo(db.resolve_dsn(_settings()))


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply pending schema migrations."""
    from gis import db

    settings = _settings()
    applied = db.migrate(db.resolve_dsn(settings))
    if applied:
        for m in applied:
            typer.echo(f"applied {m.version:04d}_{m.name}")
    else:
        typer.echo("The schema is current.")


# --- gis sample --------------------------------------------------------------------------------
@app.command("sample")
def sample_cmd(
    out: Annotated[Path, typer.Argument(help="Folder to write the sample data into.")] = Path("data/sample"),
    seed: Annotated[int, typer.Option(help="Random seed (the same seed gives the same data).")] = 2025,
) -> None:
    """Generate the platform's small synthetic demo dataset: cadastre, plan, city layers,
    administrative units, a population raster and Sentinel-2-like scenes."""
    from gis.sample import generate

    files = generate(out, seed=seed)
    for kind, path in files.items():
        typer.echo(f"{kind:<18} {path}")


# --- gis ingest --------------------------------------------------------------------------------
ingest_app = typer.Typer(help="Load source files into PostGIS: validated, reprojected, all or nothing.",
                         no_args_is_help=True)
app.add_typer(ingest_app, name="ingest")

#: the vector kinds (see ingest.kinds) and their one-line help
VECTOR_KINDS = {
    "admin": "Administrative units (wards, districts) with their validity period.",
    "cadastral": "Cadastral parcels (thửa đất): history kept, owners stored apart.",
    "planning": "Zoning / land-use plan lots and their regulations.",
    "buildings": "Building footprints with height and storeys.",
    "roads": "Road centre lines with class, lanes and width.",
    "poi": "Points of interest: hospitals, clinics, schools, markets, ...",
}


def _vector_ingest(
    kind: str,
    path: Path,
    crs: Optional[str],
    mapping: Optional[str],
    layer: Optional[str],
    encoding: Optional[str],
    invalid: str,
    max_rejects: str,
    valid_from: Optional[str],
    publish: bool = False,
    publish_formats: Optional[str] = None,
) -> None:
    from datetime import datetime, timezone

    from gis import db
    from gis.errors import InputError
    from ingest.job import IngestOptions, run_ingest

    settings = _settings()
    if publish_formats is not None:
        if not publish:
            raise InputError("--publish-format is an option of --publish: add --publish.")
        from gis.downloads import VECTOR_FORMATS, check_format

        for f in _split_list(publish_formats) or ():  # checked before the load, not after it
            try:
                name = check_format(f).name
            except InputError:
                name = None
            if name not in VECTOR_FORMATS:
                raise InputError(f"--publish-format {f!r} is not a format `gis publish` builds; use some of: "
                                 f"{', '.join(VECTOR_FORMATS)}.")
    vf = None
    if valid_from:
        try:
            vf = datetime.fromisoformat(valid_from)
        except ValueError:
            raise InputError(f"--valid-from {valid_from!r} is not an ISO date such as 2025-07-01.") from None
        if vf.tzinfo is None:
            vf = vf.replace(tzinfo=timezone.utc)
    opts = IngestOptions(crs=crs, mapping=mapping, layer=layer, encoding=encoding, invalid=invalid,
                         max_rejects=max_rejects, valid_from=vf, batch_size=settings.ingest_batch_size)
    dsn = db.ready(settings)
    with _progress(f"{kind} {path.name}") as progress:
        result = run_ingest(dsn, kind, path, opts, rejects_dir=settings.data_dir / "rejects",
                            progress=progress)
    typer.echo(result.summary())
    if publish:
        _publish_after_ingest(dsn, settings, kind, publish_formats)


def _publish_after_ingest(dsn: str, settings, kind: str, formats: Optional[str]) -> None:
    """`gis ingest KIND ... --publish`: bring the downloads of the layers that read KIND's table up to date.

    Runs only after the ingest committed (a failed ingest raised before): the load stays whatever
    happens here. :func:`gis.downloads.publish` rebuilds only the layers whose data changed.
    """
    from gis.db import connect
    from gis.downloads import PublishError, collections_reading, publish
    from ingest.kinds import get_kind

    table = get_kind(kind).table
    with connect(dsn, autocommit=True) as conn:
        layers = collections_reading(conn, [table])
    if not layers:
        typer.echo(f"publish: no public layer reads {table}; no download to build.")
        return
    typer.echo(f"publish: downloads of {', '.join(layers)} (the public layers that read {table}) ...")
    try:
        with _feature_progress() as bar:
            results = publish(dsn, settings.data_dir, layers, formats=_split_list(formats),
                              tile_packager=_tile_packager(),
                              progress=lambda cid, fmt, n: bar.update(f"{cid} {fmt}", n))
    except GisError as exc:
        for r in exc.results if isinstance(exc, PublishError) else ():
            typer.echo(r.summary())
        raise GisError(f"The ingest was loaded, but publishing its downloads failed: {exc.message} Run "
                       f"`gis publish {' '.join(layers)}` to try again.", code=exc.code) from None
    _echo_publish(results)


def _make_vector_command(kind: str, help_text: str) -> None:
    def command(
        path: Annotated[Path, typer.Argument(help="A vector file: Shapefile (.shp or .zip), GeoPackage, "
                                                  "GeoJSON, FlatGeobuf, CSV with WKT, GML.")],
        crs: Annotated[Optional[str], typer.Option(help="CRS of a file that has none, or to override a "
                                                        "wrong one, e.g. EPSG:9210 (VN-2000 / TM-3 105-45).")] = None,
        mapping: Annotated[Optional[str], typer.Option(help="Mapping preset name or .toml file "
                                                            "(default: chosen by the file's fields).")] = None,
        layer: Annotated[Optional[str], typer.Option(help="Layer of a multi-layer file.")] = None,
        encoding: Annotated[Optional[str], typer.Option(help="Text encoding: utf-8, tcvn3, vni, cp1258, ... "
                                                             "(default: detected).")] = None,
        invalid: Annotated[str, typer.Option(help="Invalid geometries: repair (make_valid) or reject.")] = "repair",
        max_rejects: Annotated[str, typer.Option(help="Rejected features tolerated: a count or a percentage "
                                                      "(default 0: any reject fails the job, nothing written).")] = "0",
        valid_from: Annotated[Optional[str], typer.Option(help="Validity start of new parcel versions "
                                                               "(ISO date; default now).")] = None,
        publish: Annotated[bool, typer.Option("--publish", help="After a successful load, rebuild the "
                                                                "open-data downloads of the public layers "
                                                                "that read this kind's table (as `gis "
                                                                "publish`: only what changed).")] = False,
        publish_format: Annotated[Optional[str], typer.Option(help="With --publish: comma-separated formats "
                                                                   "(default: every download format).")] = None,
    ) -> None:
        _vector_ingest(kind, path, crs, mapping, layer, encoding, invalid, max_rejects, valid_from, publish,
                       publish_format)

    command.__doc__ = help_text + " All or nothing; the run is recorded in ingest.runs."
    ingest_app.command(kind)(command)


for _kind, _help in VECTOR_KINDS.items():
    _make_vector_command(_kind, _help)


@ingest_app.command("presets")
def ingest_presets() -> None:
    """List the attribute-mapping presets (for --mapping)."""
    from ingest.mapping import presets

    for m in sorted(presets().values(), key=lambda m: (m.kind, m.name)):
        typer.echo(f"{m.kind:<10} {m.name:<30} {m.description}")


class _progress:
    """A rich progress bar on a terminal; silent otherwise (CI logs stay readable)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar = None

    def __enter__(self):
        if not sys.stderr.isatty():
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self.bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                            TimeRemainingColumn(), transient=True)
        self.bar.start()
        self.task = self.bar.add_task(self.label, total=None)
        return self.update

    def update(self, done: int, total: int) -> None:
        self.bar.update(self.task, completed=done, total=total if total > 0 else None)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


# --- gis ingest raster / gis raster ----------------------------------------------------------
def _split_list(text: Optional[str]) -> Optional[list[str]]:
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    return items or None


def _float_list(text: Optional[str], option: str) -> Optional[list[float]]:
    from gis.errors import InputError

    items = _split_list(text)
    if items is None:
        return None
    try:
        return [float(t) for t in items]
    except ValueError:
        raise InputError(f"{option} {text!r}: give numbers separated by commas.") from None


@ingest_app.command("raster")
def ingest_raster(
    paths: Annotated[list[Path], typer.Argument(help="Raster files: GeoTIFF (any tiling), COG, JPEG 2000, "
                                                    "NetCDF. Each becomes one catalog item.")],
    collection: Annotated[str, typer.Option(help="STAC collection of the items (created if missing).")] = "rasters",
    datetime_: Annotated[Optional[str], typer.Option("--datetime", help="Time of the items when the files do "
                                                     "not say: 2020 (a year), 2024-01-15, 2024-01-15T03:20Z, "
                                                     "2000/2020 (an interval).")] = None,
    crs: Annotated[Optional[str], typer.Option(help="CRS of files without one (or to override a wrong one), "
                                                    "e.g. EPSG:32648.")] = None,
    nodata: Annotated[Optional[float], typer.Option(help="Nodata value overriding the files' (must fit the "
                                                         "data type).")] = None,
    sensor: Annotated[Optional[str], typer.Option(help="Sensor profile checked and applied: sentinel2 (5 bands "
                                                       "B02 B03 B04 B08 B11), worldpop, era5-precipitation.")] = None,
    bands: Annotated[Optional[str], typer.Option(help="Band names, comma-separated, in order.")] = None,
    variable: Annotated[Optional[str], typer.Option(help="NetCDF variable (default: the only gridded one).")] = None,
    item_id: Annotated[Optional[str], typer.Option("--id", help="Item id (one file; default: the file name).")] = None,
    title: Annotated[Optional[str], typer.Option(help="Title of a new collection.")] = None,
    resampling: Annotated[Optional[str], typer.Option(help="Overview resampling: average (default), nearest "
                                                           "(default for 8-bit), bilinear, cubic, mode.")] = None,
    update_frequency: Annotated[Optional[str], typer.Option(help="How often the collection is updated (its "
                                                                 "records, DCAT): annually, monthly, irregular, "
                                                                 "asNeeded... (ISO 19115 codes).")] = None,
) -> None:
    """Rasters into the raster store as Cloud-Optimised GeoTIFFs, catalogued (STAC) in PostGIS.

    All or nothing: a bad file fails the job and nothing is written (no file, no row). Running the same
    files again changes nothing. The run is recorded in ingest.runs (kind raster). A NetCDF variable with a
    time dimension becomes one item whose bands are the time steps.
    """
    from gis import db
    from gis.raster.store import RasterStore
    from ingest.raster import RasterIngestOptions, run_raster_ingest

    settings = _settings()
    opts = RasterIngestOptions(collection=collection, datetime=datetime_, crs=crs, nodata=nodata,
                               sensor=sensor, bands=_split_list(bands), variable=variable,
                               item_id=item_id, title=title, resampling=resampling,
                               update_frequency=update_frequency)
    dsn = db.ready(settings)
    with _progress(f"raster x{len(paths)}") as progress:
        result = run_raster_ingest(dsn, paths, opts, store=RasterStore(settings.raster_dir),
                                   progress=progress)
    typer.echo(result.summary())


raster_app = typer.Typer(help="Raster analysis on the catalog: list, spectral indices, change, zonal statistics.",
                         no_args_is_help=True)
app.add_typer(raster_app, name="raster")


@raster_app.command("list")
def raster_list(
    collection: Annotated[Optional[str], typer.Option(help="Only this collection.")] = None,
) -> None:
    """List the catalogued rasters: item, time, CRS, size, bands, COG."""
    from gis import db
    from gis.raster.catalog import list_items

    items = list_items(db.ready(_settings()), collection)
    if not items:
        typer.echo("The raster catalog is empty: load rasters with `gis ingest raster`.")
        return
    for it in items:
        names = it.band_names
        bands = ", ".join(names[:5]) + (f", ... ({len(names)} bands)" if len(names) > 5 else "")
        typer.echo(f"{it.ref:<50} {it.time_text():<25} EPSG:{it.epsg or '-':<6} {it.width}x{it.height} "
                   f"{it.data_type:<8} [{bands}] {it.asset_href} ({it.asset_size / 1e6:.1f} MB)")


@raster_app.command("show")
def raster_show(item: Annotated[str, typer.Argument(help="COLLECTION/ITEM (or ITEM when unambiguous).")]) -> None:
    """Print the STAC Item JSON of an item."""
    import json

    from gis import db
    from gis.raster.catalog import get_item, stac_item

    dsn = db.ready(_settings())
    it = get_item(dsn, item)
    typer.echo(json.dumps(stac_item(dsn, it.collection, it.id), indent=2, ensure_ascii=False))


@raster_app.command("indices")
def raster_indices(
    item: Annotated[str, typer.Argument(help="COLLECTION/ITEM with blue/green/red/nir/swir16 bands "
                                             "(e.g. ingested with --sensor sentinel2).")],
    out: Annotated[Path, typer.Option(help="Output COG: one float32 band per index, NaN nodata.")],
    index: Annotated[str, typer.Option(help="Indices, comma-separated: ndvi, ndbi, ndwi, built_up.")] =
        "ndvi,ndbi,ndwi,built_up",
    chunk: Annotated[int, typer.Option(help="Dask chunk size in pixels (memory per chunk).")] = 1024,
) -> None:
    """Spectral indices of an item (NDVI, NDBI, NDWI, built-up mask), computed chunk by chunk."""
    from gis import db
    from gis.raster.catalog import get_item
    from gis.raster.indices import open_raster, spectral_indices, write_dataset

    settings = _settings()
    it = get_item(db.ready(settings), item)
    ds = spectral_indices(open_raster(it.path(settings.raster_dir), chunk),
                          indices=_split_list(index) or [], bands_meta=it.bands)
    with _dask_progress():
        write_dataset(ds, out)
    typer.echo(f"Wrote {out}: {', '.join(ds.data_vars)} of {it.ref}.")


@raster_app.command("change")
def raster_change(
    item_a: Annotated[str, typer.Argument(help="The earlier item (COLLECTION/ITEM).")],
    item_b: Annotated[str, typer.Argument(help="The later item, on the same grid.")],
    out: Annotated[Path, typer.Option(help="Output COG of the change.")],
    method: Annotated[str, typer.Option(help="built-up (new built-up area from two multispectral scenes) or "
                                             "difference (B - A of one band, e.g. population).")] = "built-up",
    band: Annotated[int, typer.Option(help="Band of a difference.")] = 1,
    polygons_table: Annotated[Optional[str], typer.Option(help="Also write the new built-up patches as "
                                                               "polygons to stats.change_NAME.")] = None,
    zones: Annotated[Optional[str], typer.Option(help="Also sum the change per zone: wards-2025, parcels, "
                                                      "planning-lots or SCHEMA.TABLE[:KEY].")] = None,
    table: Annotated[Optional[str], typer.Option(help="Name of the per-zone table (stats.zonal_NAME).")] = None,
    chunk: Annotated[int, typer.Option(help="Dask chunk size in pixels.")] = 1024,
) -> None:
    """Change between two dates as a raster, and as areas (polygons and/or per-zone sums)."""
    from gis import db
    from gis.errors import InputError
    from gis.raster import change as ch
    from gis.raster.catalog import get_item
    from gis.raster.zonal import zonal_to_postgis

    if method not in ("built-up", "difference"):
        raise InputError(f"--method {method!r}: use built-up or difference.")
    if (zones is None) != (table is None):
        raise InputError("--zones and --table go together.")
    settings = _settings()
    dsn = db.ready(settings)
    a, b = get_item(dsn, item_a), get_item(dsn, item_b)
    pa, pb = a.path(settings.raster_dir), b.path(settings.raster_dir)
    if method == "built-up":
        da = ch.built_up_change(pa, pb, chunks=chunk, bands_meta_a=a.bands, bands_meta_b=b.bands)
    else:
        da = ch.difference(pa, pb, band=band, chunks=chunk)
    with _dask_progress():
        ch.write_change(da, out)
    typer.echo(f"Wrote {out} ({method} {a.ref} -> {b.ref}).")
    if polygons_table:
        if method != "built-up":
            raise InputError("--polygons-table needs --method built-up.")
        gdf = ch.change_polygons(out, value=1)
        name = ch.polygons_to_postgis(dsn, gdf, polygons_table, item_a=a, item_b=b)
        typer.echo(f"Wrote {name}: {len(gdf)} new built-up patches, {ch.total_area_m2(gdf) / 1e6:.3f} km2.")
    if zones:
        zb = [ch.built_up_area_band()] if method == "built-up" else [1]
        with _progress(f"zonal {zones}") as progress:
            res = zonal_to_postgis(dsn, out, zones, table, bands=zb, item=b, progress=progress)
        typer.echo(res.summary() + (" (new built-up area = sum x cell area)" if method == "built-up" else ""))


@raster_app.command("zonal")
def raster_zonal(
    item: Annotated[str, typer.Argument(help="COLLECTION/ITEM.")],
    zones: Annotated[str, typer.Option(help="wards-2025, parcels, planning-lots or SCHEMA.TABLE[:KEY].")],
    table: Annotated[str, typer.Option(help="Result table stats.zonal_NAME (replaced atomically).")],
    band: Annotated[str, typer.Option(help="Bands: 1, 1,3 or all.")] = "1",
    percentiles: Annotated[str, typer.Option(help="Percentiles, comma-separated (empty for none: faster).")] =
        "10,25,50,75,90",
    geometry: Annotated[Optional[bool], typer.Option("--geometry/--no-geometry", help="Copy the zone geometry "
                                                     "(default: when one band).")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Worker processes (default: by size of the job).")] = None,
) -> None:
    """Zonal statistics (count, sum, mean, min, max, std, percentiles, frac) with exact cell coverage."""
    from gis import db
    from gis.raster.catalog import get_item
    from gis.raster.zonal import zonal_to_postgis

    settings = _settings()
    dsn = db.ready(settings)
    it = get_item(dsn, item)
    if band.strip().lower() == "all":
        bands = list(range(1, len(it.bands) + 1))
    else:
        bands = [int(v) for v in _float_list(band, "--band") or [1]]
    pct = _float_list(percentiles, "--percentiles") or []
    with _progress(f"zonal {zones}") as progress:
        res = zonal_to_postgis(dsn, it.path(settings.raster_dir), zones, table, bands=bands,
                               percentiles=pct, with_geometry=geometry, workers=workers, item=it,
                               progress=progress)
    typer.echo(res.summary())


@raster_app.command("synthetic")
def raster_synthetic(
    out: Annotated[Path, typer.Argument(help="Folder for the two scenes and the change truth.")] = Path("data/rasters"),
    seed: Annotated[int, typer.Option(help="Random seed (the same seed gives the same files).")] = 2025,
    resolution: Annotated[float, typer.Option(help="Pixel size in metres.")] = 10.0,
) -> None:
    """Generate two Sentinel-2-like scenes of central HCMC with urban growth between them."""
    from gis.raster.synthetic import generate_pair

    pair = generate_pair(out, seed=seed, resolution=resolution)
    typer.echo(f"{pair.before}\n{pair.after}\n{pair.truth}\nnew built-up area: "
               f"{pair.new_built_up_m2 / 1e6:.3f} km2")


@raster_app.command("sweep")
def raster_sweep(
    older_than: Annotated[float, typer.Option(help="Only files older than this many seconds.")] = 3600,
) -> None:
    """Remove store files no catalog row refers to (left by a killed job) and stale temporary files."""
    from gis import db
    from gis.raster.catalog import list_items
    from gis.raster.store import RasterStore

    settings = _settings()
    refs = {it.asset_href for it in list_items(db.ready(settings))}
    removed = RasterStore(settings.raster_dir).sweep(refs, older_than_s=older_than)
    typer.echo(f"Removed {len(removed)} file(s).")


class _dask_progress:
    """A dask progress bar on a terminal; silent otherwise."""

    def __enter__(self):
        self.bar = None
        if sys.stderr.isatty():
            from dask.diagnostics import ProgressBar

            self.bar = ProgressBar(out=sys.stderr)
            self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


@app.command("runs")
def runs_cmd(limit: Annotated[int, typer.Option(help="How many runs to show.")] = 20) -> None:
    """Show the latest ingest runs (the run log)."""
    from gis import db

    dsn = db.ready(_settings())
    with db.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT run_id, started_at, kind, outcome, n_read, n_inserted, n_updated, n_unchanged, "
            "n_rejected, round(duration_s::numeric, 1), source_path, message FROM ingest.runs "
            "ORDER BY run_id DESC LIMIT %s", (limit,)).fetchall()
    for r in rows:
        typer.echo(f"#{r[0]} {r[1]:%Y-%m-%d %H:%M:%S} {r[2]:<9} {r[3]:<11} read {r[4]} ins {r[5]} "
                   f"upd {r[6]} same {r[7]} rej {r[8]} {r[9]}s {r[10]}" + (f" -- {r[11]}" if r[11] else ""))


# --- gis stats ---------------------------------------------------------------------------------
# The commands are built from gis.analysis.registry (pure declarations: no numpy import), one per
# analysis; the analysis itself is imported when the command runs.
stats_app = typer.Typer(help="Statistics: planning, health access and logistics (gis.analysis).",
                        no_args_is_help=True)
app.add_typer(stats_app, name="stats")


def _stats_client(spec: Optional[str]):
    """A Dask client or scheduler name from --dask: synchronous | threads | processes | local:N |
    tcp://HOST:PORT."""
    if not spec:
        return None, None
    if spec in ("synchronous", "threads", "processes"):
        return spec, None
    from gis.errors import InputError

    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise InputError("--dask needs the dask 'distributed' package.") from None
    if spec.startswith("local:"):
        try:
            n = int(spec.split(":", 1)[1])
        except ValueError:
            raise InputError(f"--dask {spec!r}: give local:N with N workers.") from None
        if not 1 <= n <= 64:
            raise InputError(f"--dask {spec!r}: N must be between 1 and 64.")
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
        return Client(cluster), cluster
    if spec.startswith("tcp://"):
        return Client(spec, timeout="10s"), None
    raise InputError(f"--dask {spec!r}: use synchronous, threads, processes, local:N or tcp://HOST:PORT.")


def _run_stats(analysis_id: str, params: dict, out: Optional[Path], table: Optional[str], replace: bool,
               title: Optional[str], dask: Optional[str]) -> None:
    import time

    from gis import db
    from gis.analysis import output
    from gis.analysis.registry import get_analysis
    from gis.errors import InputError

    analysis = get_analysis(analysis_id)
    if out is not None and table is not None:
        raise InputError("Give --out FILE or --table NAME, not both.")
    values = analysis.validate(params)  # bad parameters fail before the database is touched
    if out is not None and output.FORMATS.get(out.suffix.lower()) is None:
        raise InputError(f"--out {out.name}: unknown format; use one of {', '.join(sorted(output.FORMATS))}.")
    dsn = db.ready(_settings())
    client, cluster = _stats_client(dask)
    t0 = time.monotonic()
    try:
        with _progress(analysis.title) as progress:
            result = analysis.run(dsn, values, progress=progress, client=client)
    finally:
        if client is not None and not isinstance(client, str):
            client.close()
        if cluster is not None:
            cluster.close()
    took = time.monotonic() - t0
    if title:
        result.attrs["title"] = title
    if out is not None:
        path = output.write_file(result, out)
        typer.echo(f"Wrote {len(result)} rows ({analysis.id}) to {path} in {took:.1f} s.")
    elif table is not None:
        info = output.write_table(result, dsn, table, replace=replace, title=title, title_vi=analysis.title_vi,
                                  duration_s=took)
        typer.echo(f"Wrote {info['rows']} rows ({analysis.id}) to {info['table']}, published as collection "
                   f"{info['collection']}, in {took:.1f} s.")
    else:
        import pandas as pd

        shown = pd.DataFrame(result.drop(columns=[result.geometry.name]) if hasattr(result, "geometry")
                             and result.geometry.name in result.columns else result)
        typer.echo(shown.head(20).to_string())
        typer.echo(f"... {len(result)} rows in {took:.1f} s (use --out FILE or --table NAME to keep them).")
    for key in ("summary", "totals", "violations_by_rule", "underserved", "total_population"):
        if key in result.attrs and result.attrs[key] not in (None, {}, []):
            val = result.attrs[key]
            text = str(val)
            typer.echo(f"{key}: {text[:400]}{'...' if len(text) > 400 else ''}")


def _make_stats_command(group_app: typer.Typer, analysis) -> None:
    import inspect

    params = []
    for p in analysis.inputs:
        flag = "--" + p.name.replace("_", "-")
        extra = (f" (default: {','.join(map(str, p.default)) if isinstance(p.default, tuple) else p.default})"
                 if p.default is not None and p.type != "boolean" else "")
        choices = f" One of: {', '.join(map(str, p.enum))}." if p.enum else ""
        unit = f" ({p.unit})" if p.unit else ""
        help_text = p.description + unit + choices + (" Required." if p.required else "") + extra
        if p.type == "boolean":
            opt = typer.Option(f"{flag}/--no-{flag[2:]}", help=help_text + f" (default: {p.default})")
            ann = Annotated[Optional[bool], opt]
        else:
            ann = Annotated[Optional[str], typer.Option(flag, help=help_text)]
        params.append(inspect.Parameter(p.name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ann))
    params += [
        inspect.Parameter("out", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[
            Optional[Path], typer.Option("--out", help="Write the result to FILE (.gpkg, .parquet, .geojson, "
                                                       ".csv), metadata included.")]),
        inspect.Parameter("table", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[
            Optional[str], typer.Option("--table", help="Write the result to PostGIS table stats.NAME in one "
                                                        "transaction and publish it in the catalog.")]),
        inspect.Parameter("replace", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Annotated[
            bool, typer.Option("--replace", help="Replace a stats.NAME table an analysis wrote before.")]),
        inspect.Parameter("title", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[
            Optional[str], typer.Option("--title", help="Title of the output (catalog, metadata).")]),
        inspect.Parameter("dask", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[
            Optional[str], typer.Option("--dask", help="Run on Dask: synchronous, threads, processes, local:N "
                                                       "(a local cluster of N workers) or tcp://HOST:PORT.")]),
    ]
    names = [p.name for p in analysis.inputs]

    def command(**kwargs) -> None:
        values = {n: kwargs[n] for n in names if kwargs.get(n) is not None}
        _run_stats(analysis.id, values, kwargs["out"], kwargs["table"], kwargs["replace"], kwargs["title"],
                   kwargs["dask"])

    command.__signature__ = inspect.Signature(params)
    command.__doc__ = f"{analysis.title}: {analysis.description}"
    command.__name__ = analysis.name.replace("-", "_")
    group_app.command(analysis.name)(command)


def _build_stats_commands() -> None:
    from gis.analysis.registry import ANALYSES, GROUPS

    helps = {"planning": "Planning and land: land use, compliance, density, capacity, population.",
             "health": "Health access: nearest hospital, population within reach, 2SFCA, underserved wards.",
             "logistics": "Logistics and transport: travel-time matrices, service areas, OD flows, p-median.",
             "raster": "Rasters: zonal statistics, spectral indices and change between two dates, per ward, "
                       "district, parcel or plan lot."}
    for group in GROUPS:
        sub = typer.Typer(help=helps[group], no_args_is_help=True)
        stats_app.add_typer(sub, name=group)
        for a in ANALYSES:
            if a.group == group:
                _make_stats_command(sub, a)


_build_stats_commands()


@stats_app.command("list")
def stats_list() -> None:
    """List the analyses with their parameters."""
    from gis.analysis.registry import ANALYSES

    for a in ANALYSES:
        typer.echo(f"{a.group} {a.name:<16} {a.title}")
        typer.echo(f"    {', '.join(p.name + ('*' if p.required else '') for p in a.inputs)}")


@stats_app.command("describe")
def stats_describe(analysis_id: Annotated[str, typer.Argument(help="GROUP.NAME, e.g. health.access.")]) -> None:
    """Print an analysis's description (inputs with JSON Schema, output) as JSON."""
    import json

    from gis.analysis.registry import get_analysis

    typer.echo(json.dumps(get_analysis(analysis_id).describe(), ensure_ascii=False, indent=2))


# --- gis tiles ---------------------------------------------------------------------------------
tiles_app = typer.Typer(help="Vector tiles: seed the server's tile cache, export PMTiles/MBTiles packages.",
                        no_args_is_help=True)
app.add_typer(tiles_app, name="tiles")


def _parse_bbox(text: Optional[str]) -> Optional[tuple]:
    from gis.errors import InputError

    if text is None:
        return None
    values = _float_list(text, "--bbox")
    if values is None or len(values) != 4:
        raise InputError(f"--bbox {text!r}: give minlon,minlat,maxlon,maxlat.")
    return tuple(values)


class _tile_progress:
    """A rich progress bar of tiles on a terminal; silent otherwise."""

    def __init__(self, label: str) -> None:
        self.label, self.bar, self.task = label, None, None

    def __enter__(self):
        if sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

            self.bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                                "tiles", TimeRemainingColumn(), transient=True)
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=None)
        return self

    def total(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, total=n)

    def advance(self, k: int) -> None:
        if self.bar is not None:
            self.bar.advance(self.task, k)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def _tile_service(settings, layer: str):
    from gis import db
    from tiles.service import open_service
    from tiles.settings import TileSettings

    dsn = db.ready(settings)
    ts = TileSettings()
    svc, conn = open_service(dsn, ts, settings.data_dir / "tiles" if ts.cache else None)
    ids = [v.strip() for v in layer.split(",") if v.strip()]
    return dsn, svc, conn, svc.layer_list(ids)


@tiles_app.command("seed")
def tiles_seed(
    layer: Annotated[str, typer.Argument(help="Collection id (several, comma-separated: the multi-layer "
                                              "tiles of /tiles?collections=...).")],
    minzoom: Annotated[Optional[int], typer.Option(help="First zoom (default: the layer's).")] = None,
    maxzoom: Annotated[Optional[int], typer.Option(help="Last zoom (default: the layer's, at most 16).")] = None,
    bbox: Annotated[Optional[str], typer.Option(help="minlon,minlat,maxlon,maxlat (default: the layer's "
                                                     "extent).")] = None,
    tms: Annotated[str, typer.Option(help="Tile matrix set.")] = "WebMercatorQuad",
    workers: Annotated[int, typer.Option(min=1, max=16, help="Database connections rendering at once.")] = 2,
) -> None:
    """Render a layer's tiles into the server-side tile cache (Settings.data_dir/tiles)."""
    from tiles.export import seed

    settings = _settings()
    dsn, svc, conn, layers = _tile_service(settings, layer)
    try:
        with _tile_progress(f"seed {layer}") as bar:
            res = seed(dsn, svc, layers, minzoom=minzoom, maxzoom=maxzoom, bbox=_parse_bbox(bbox),
                       tms_id=tms, workers=workers, progress_total=bar.total, progress=bar.advance)
    finally:
        conn.close()
    typer.echo(res.summary())


@tiles_app.command("export")
def tiles_export(
    layer: Annotated[str, typer.Argument(help="Collection id (several, comma-separated: one package with "
                                              "one vector layer each).")],
    out: Annotated[Path, typer.Option("--out", help="The package file to write (.pmtiles or .mbtiles).")],
    fmt: Annotated[Optional[str], typer.Option("--format", help="pmtiles or mbtiles (default: from the "
                                                                "file's suffix).")] = None,
    minzoom: Annotated[Optional[int], typer.Option(help="First zoom (default: the layer's).")] = None,
    maxzoom: Annotated[Optional[int], typer.Option(help="Last zoom (default: the layer's, at most 16).")] = None,
    bbox: Annotated[Optional[str], typer.Option(help="minlon,minlat,maxlon,maxlat (default: the layer's "
                                                     "extent).")] = None,
    workers: Annotated[int, typer.Option(min=1, max=16, help="Database connections rendering at once.")] = 2,
) -> None:
    """Write a tile package (PMTiles v3 or MBTiles) of vector tiles, WebMercatorQuad, gzip-compressed."""
    from tiles.export import export

    settings = _settings()
    dsn, svc, conn, layers = _tile_service(settings, layer)
    try:
        with _tile_progress(f"export {layer}") as bar:
            res = export(dsn, svc, layers, out, fmt, minzoom=minzoom, maxzoom=maxzoom, bbox=_parse_bbox(bbox),
                         workers=workers, progress_total=bar.total, progress=bar.advance)
    finally:
        conn.close()
    typer.echo(res.summary())


@tiles_app.command("clear")
def tiles_clear() -> None:
    """Remove the server-side tile cache of the configured database (it refills on demand)."""
    import shutil

    from gis import db
    from tiles.service import database_key

    settings = _settings()
    with db.connect(db.ready(settings), autocommit=True) as conn:
        key = database_key(conn)
    folder = settings.data_dir / "tiles" / key
    if folder.exists():
        shutil.rmtree(folder)
        typer.echo(f"Removed {folder}.")
    else:
        typer.echo("The tile cache is empty.")


# --- gis export / gis publish (open-data downloads) --------------------------------------------
def _tile_packager():
    """Build tile packages for gis.downloads through tiles.export (gis does not import tiles)."""
    def package(dsn: str, collection_id: str, fmt: str, out: Path) -> None:
        from tiles.export import export
        from tiles.service import open_service
        from tiles.settings import TileSettings

        svc, conn = open_service(dsn, TileSettings(), None)  # rendered afresh: no server cache
        try:
            export(dsn, svc, svc.layer_list([collection_id]), out, fmt)
        finally:
            conn.close()

    return package


class _feature_progress:
    """A rich progress counter of features on a terminal; silent otherwise."""

    def __enter__(self):
        self.bar = None
        if sys.stderr.isatty():
            from rich.progress import Progress, SpinnerColumn, TimeElapsedColumn

            self.bar = Progress(SpinnerColumn(), "[progress.description]{task.description}",
                                "{task.completed:,} features", TimeElapsedColumn(), transient=True)
            self.bar.start()
            self.tasks: dict = {}
        return self

    def update(self, label: str, done: int) -> None:
        if self.bar is not None:
            if label not in self.tasks:
                self.tasks[label] = self.bar.add_task(label, total=None)
            self.bar.update(self.tasks[label], completed=done)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


@app.command("export")
def export_cmd(
    layer: Annotated[str, typer.Argument(help="A public collection id (see /collections), e.g. parcels.")],
    fmt: Annotated[str, typer.Option("--format", help="gpkg, parquet (GeoParquet 1.1), fgb (FlatGeobuf), csv "
                                                      "(WKT), geojson, geojsonseq, shp.zip, pmtiles, mbtiles.")],
    out: Annotated[Optional[Path], typer.Option("--out", help="File (or folder) to write; default: "
                                                              "LAYER.<suffix> in the current folder.")] = None,
) -> None:
    """Write one public layer to one file from one consistent snapshot (with a .sha256 beside it).

    Only the catalog's public fields are written. The file is replaced atomically when complete: a
    failed or interrupted export leaves the previous file as it was and no partial file.
    """
    from gis import db
    from gis.downloads import check_format, export, filename

    f = check_format(fmt)
    settings = _settings()
    dsn = db.ready(settings)
    target = out if out is not None else Path(filename(layer, f.name))
    with _feature_progress() as bar:
        res = export(dsn, layer, f.name, target, tile_packager=_tile_packager(),
                     progress=lambda n: bar.update(f"{layer} {f.name}", n))
    typer.echo(res.summary())


@app.command("publish")
def publish_cmd(
    layers: Annotated[Optional[list[str]], typer.Argument(help="Public collection ids (default: all).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even the downloads that are current.")] = False,
    formats: Annotated[Optional[str], typer.Option("--format", help="Comma-separated formats (default: gpkg, "
                                                                    "parquet, fgb, csv, geojson, geojsonseq, "
                                                                    "shp.zip, pmtiles, mbtiles).")] = None,
) -> None:
    """Build the open-data downloads of the public layers whose data changed since their last build.

    Files go to GIS_DATA_DIR/downloads/<layer>/ and are served by `gis serve` at /downloads/<layer>/<file>
    (linked from each collection as rel=enclosure). Run it after an ingest; a layer whose data did not
    change is not rebuilt.
    """
    from gis import db
    from gis.downloads import PublishError, publish

    settings = _settings()
    dsn = db.ready(settings)
    try:
        with _feature_progress() as bar:
            results = publish(dsn, settings.data_dir, layers or None, formats=_split_list(formats),
                              force=force, tile_packager=_tile_packager(),
                              progress=lambda cid, fmt, n: bar.update(f"{cid} {fmt}", n))
    except PublishError as exc:
        for r in exc.results:
            typer.echo(r.summary())
        raise
    _echo_publish(results)


def _echo_publish(results) -> None:
    """Say what a publish built: a line per layer, where the files are, the totals."""
    for line in _publish_lines(results):
        typer.echo(line)
    built = sum(r.built for r in results)
    if results:
        typer.echo(f"Files in {results[0].path.parent.parent}/<layer>/, served at /downloads/<layer>/<file>.")
    typer.echo(f"{built} download(s) built, {len(results) - built} current.")


def _publish_lines(results) -> list[str]:
    """One line per layer: the formats built (size) and the time, and how many were current."""
    by: dict[str, list] = {}
    for r in results:
        by.setdefault(r.collection_id, []).append(r)
    lines = []
    for cid, rs in by.items():
        built = [r for r in rs if r.built]
        parts = []
        if built:
            n = next((r.feature_count for r in built if r.feature_count is not None), None)
            files = ", ".join(f"{r.format} {r.size / 1e6:.1f} MB" if r.size >= 1e6 else
                              f"{r.format} {max(r.size / 1e3, 1):.0f} kB" for r in built)
            parts.append(f"built {files} in {sum(r.seconds for r in built):.1f} s"
                         + (f" ({n:,} features)" if n is not None else ""))
        if len(built) < len(rs):
            parts.append(f"{len(rs) - len(built)} current")
        lines.append(f"{cid}: {'; '.join(parts)}.")
    return lines


# --- gis serve ---------------------------------------------------------------------------------
@app.command("serve")
def serve_cmd(
    host: Annotated[str, typer.Option(
        help="Address to listen on (0.0.0.0 for every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes, each with its own "
                                                     "connection pool (about one per core).")] = 1,
    log_level: Annotated[str, typer.Option(
        help="critical | error | warning | info | debug")] = "info",
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = True,
) -> None:
    """Serve the OGC API (landing page, collections, features, OpenAPI, HTML) over HTTP."""
    import copy
    import signal

    import uvicorn

    from gis import db

    settings = _settings()
    db.ready(settings)  # starts and migrates the embedded database, or checks the configured one
    typer.echo(f"Serving the OGC API on http://{host}:{port}/ with {workers} worker(s); "
               "Ctrl-C to stop.")
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then raises the signal again: end quietly
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: sys.exit(0))
    # the platform's own loggers (gis.api: catalog reloads, read-ahead, errors) print like
    # uvicorn's, at the level asked for
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    log_config["loggers"]["gis"] = {"handlers": ["default"], "level": log_level.upper(),
                                    "propagate": False}
    options = dict(host=host, port=port, log_level=log_level, access_log=access_log,
                   log_config=log_config, proxy_headers=True, server_header=False)
    if workers == 1:
        from api.app import create_app

        uvicorn.run(create_app(settings), **options)
    else:  # each worker builds its settings from the same environment
        uvicorn.run("api.app:create_app", factory=True, workers=workers, **options)


def main() -> None:
    """Entry point: run the CLI, turning platform errors into a message and an exit code.

    SIGINT (Ctrl-C) and SIGTERM (``kill``, a service manager, a CI timeout) both interrupt the
    command as a KeyboardInterrupt: an ingest job rolls its transaction back and records an
    'interrupted' run, and the CLI says so and exits 128 + the signal number (130 for SIGINT, 143
    for SIGTERM).
    """
    import signal

    received: list[int] = []

    def interrupt(signum, frame):  # noqa: ARG001 - the signal handler signature
        received.append(signum)
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, interrupt)
    try:
        app()
    except GisError as exc:
        _err(f"error: {exc.message}")
        sys.exit(2 if exc.http_status == 400 else 1)
    except KeyboardInterrupt:
        received = received or [int(signal.SIGINT)]
    except SystemExit as exc:
        # typer turns a KeyboardInterrupt into a silent exit 130: say what happened
        if not received or exc.code != 130:
            raise
    signum = received[0]
    _err(f"interrupted ({signal.Signals(signum).name}): the job in progress was rolled back; "
         "nothing of it was written.")
    sys.exit(128 + signum)


if __name__ == "__main__":
    main()
