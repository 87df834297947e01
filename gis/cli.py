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


def main() -> None:
    """Entry point: run the CLI, turning platform errors into a message and an exit code."""
    try:
        app()
    except GisError as exc:
        _err(f"error: {exc.message}")
        sys.exit(2 if exc.http_status == 400 else 1)
    except KeyboardInterrupt:
        _err("interrupted: nothing was written.")
        sys.exit(130)


if __name__ == "__main__":
    main()
