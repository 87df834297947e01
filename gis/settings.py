"""Settings, built late: by the CLI entry point, the app factory or a test, never at import time."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: libpq environment variables whose presence means "the user configured a server".
LIBPQ_ENV = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGSERVICE", "PGUSER")


class Settings(BaseSettings):
    """Platform settings, read from ``GIS_*`` environment variables (and ``DATABASE_URL``).

    Parameters
    ----------
    database_url : str, optional
        A PostgreSQL URL. When unset (and no libpq ``PG*`` variable is set) the platform runs its own
        embedded PostGIS cluster under ``data_dir``.
    data_dir : Path
        The project's data folder (git-ignored): embedded cluster, ingest rejects, logs.
    """

    model_config = SettingsConfigDict(env_prefix="GIS_", extra="ignore")

    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    data_dir: Path = PROJECT_ROOT / "var"
    #: Operating-system user that runs the embedded cluster when the platform runs as root
    #: (``initdb`` refuses root). Created if missing.
    db_os_user: str = "gis"
    db_name: str = "gis"
    #: Features per batch read from a source file and copied to the database.
    ingest_batch_size: int = 50_000
    #: Folder of the raster store (Cloud-Optimised GeoTIFFs catalogued in ``raster.items``);
    #: ``data_dir / "rasters"`` when unset.
    raster_store: Path | None = None

    @property
    def uses_embedded(self) -> bool:
        """True when no server was configured, so the embedded cluster is used."""
        if self.database_url:
            return False
        return not any(os.environ.get(name) for name in LIBPQ_ENV)

    @property
    def raster_dir(self) -> Path:
        """Folder of the raster store (``raster_store``, else ``data_dir / "rasters"``)."""
        return self.raster_store if self.raster_store is not None else self.data_dir / "rasters"

    @property
    def embedded_dir(self) -> Path:
        """Folder of the embedded PostgreSQL cluster."""
        return self.data_dir / "pg"
