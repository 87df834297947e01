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
    """Generate the platform's small synthetic demo dataset (cadastral, planning, city layers)."""
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
) -> None:
    from datetime import datetime, timezone

    from gis import db
    from gis.errors import InputError
    from ingest.job import IngestOptions, run_ingest

    settings = _settings()
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
    ) -> None:
        _vector_ingest(kind, path, crs, mapping, layer, encoding, invalid, max_rejects, valid_from)

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
