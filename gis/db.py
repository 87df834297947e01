"""Database access: where the database is, connections with errors translated, and migrations.

With ``DATABASE_URL`` (or libpq ``PG*`` variables) set, that server is used; otherwise the embedded
cluster (:mod:`gis.embedded`) is started on demand.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

import psycopg

from gis.errors import DatabaseUnavailable, GisError

if TYPE_CHECKING:  # only annotations: importing gis.db does not load the settings (pydantic, ~70 ms)
    from gis.settings import Settings

MIGRATION_LOCK = 727_000_001  # pg_advisory_lock key serialising migrations


def resolve_dsn(settings: Settings, start: bool = True) -> str:
    """Return the connection string to use, starting the embedded cluster when needed.

    Parameters
    ----------
    settings : Settings
        The platform settings.
    start : bool
        Start the embedded cluster if it is not running (default). With False, an embedded cluster
        that is down raises :class:`DatabaseUnavailable`.
    """
    if settings.database_url:
        return settings.database_url
    if not settings.uses_embedded:
        return ""  # libpq reads PGHOST, PGPORT, ... itself
    from gis.embedded import EmbeddedCluster

    cluster = EmbeddedCluster(settings)
    if start:
        cluster.start()
    elif not cluster.running():
        raise DatabaseUnavailable("The embedded database is not running: run `gis db up`.")
    return cluster.url


def redact(dsn: str) -> str:
    """The DSN with any password hidden, for messages and logs."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", re.sub(r"password=\S+", "password=***", dsn))


def connect(dsn: str, **kwargs) -> psycopg.Connection:
    """Open a connection, turning connection failures into :class:`DatabaseUnavailable`."""
    try:
        return psycopg.connect(dsn, connect_timeout=10, **kwargs)
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "no answer"
        raise DatabaseUnavailable(
            f"Cannot connect to the database at {redact(dsn) or 'the libpq defaults (PG* variables)'}: "
            f"{first}. Is it running? (`gis db status`)"
        ) from None


@dataclass(frozen=True)
class Migration:
    """One numbered SQL migration file."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations() -> list[Migration]:
    """The migrations shipped in ``gis/migrations``, in order."""
    found = []
    for entry in resources.files("gis.migrations").iterdir():
        m = re.fullmatch(r"(\d{4})_([a-z0-9_]+)\.sql", entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda mig: mig.version)
    versions = [mig.version for mig in found]
    if len(set(versions)) != len(versions):
        raise GisError("Two migrations share a number: fix gis/migrations.")
    return found


def applied_versions(conn: psycopg.Connection) -> dict[int, str]:
    """Versions already applied to the database, with their checksums (empty on a new database)."""
    exists = conn.execute("SELECT to_regclass('gis_meta.schema_migrations') IS NOT NULL").fetchone()[0]
    if not exists:
        return {}
    rows = conn.execute("SELECT version, checksum FROM gis_meta.schema_migrations").fetchall()
    return {int(v): c for v, c in rows}


def migrate(dsn: str) -> list[Migration]:
    """Apply the pending migrations, each in its own transaction, under an advisory lock.

    Returns
    -------
    list of Migration
        The migrations applied by this call (empty when the schema was current).

    Raises
    ------
    GisError
        When an applied migration's file was changed afterwards, or a migration fails.
    """
    done: list[Migration] = []
    with connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            applied = applied_versions(conn)
            for mig in migrations():
                if mig.version in applied:
                    if applied[mig.version] != mig.checksum:
                        raise GisError(
                            f"Migration {mig.version:04d}_{mig.name} was changed after it was applied; "
                            "add a new migration instead of editing an applied one."
                        )
                    continue
                try:
                    with conn.transaction():
                        conn.execute(mig.sql)
                        conn.execute(
                            "INSERT INTO gis_meta.schema_migrations (version, name, checksum) "
                            "VALUES (%s, %s, %s)",
                            (mig.version, mig.name, mig.checksum),
                        )
                except psycopg.Error as exc:
                    raise GisError(
                        f"Migration {mig.version:04d}_{mig.name} failed: {exc.diag.message_primary}"
                    ) from exc
                done.append(mig)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    return done


def pending(dsn: str) -> list[Migration]:
    """Migrations not yet applied to the database."""
    with connect(dsn) as conn:
        applied = applied_versions(conn)
    return [m for m in migrations() if m.version not in applied]


def ready(settings: Settings) -> str:
    """A DSN of a database with the current schema, ready for jobs.

    The embedded database is started and migrated on demand. A configured server is checked: if its
    schema is behind, the error says to run ``gis db migrate``.
    """
    dsn = resolve_dsn(settings)
    if settings.uses_embedded:
        migrate(dsn)
        return dsn
    todo = pending(dsn)
    if todo:
        raise GisError(
            f"The database at {redact(dsn)} lacks {len(todo)} schema migration(s) "
            f"(first: {todo[0].version:04d}_{todo[0].name}): run `gis db migrate`."
        )
    return dsn
