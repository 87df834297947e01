"""Settings of the tile services, built late (by the API's router factory, the CLI or a test)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class TileSettings(BaseSettings):
    """Tile settings, read from ``GIS_TILES_*`` environment variables.

    Parameters
    ----------
    cache : bool
        Keep rendered tiles (memory LRU, and files under ``Settings.data_dir / "tiles"``). Tiles of
        layers whose tables are not all tracked by the change log are never cached.
    cache_memory_mb : int
        Memory held by the in-process LRU of each worker.
    poll_seconds : float
        How often the change log is read: a write is reflected in cached tiles within this time.
    max_age : int
        ``Cache-Control: max-age`` of vector tiles (seconds); clients revalidate with the ETag.
    raster_max_age : int
        ``max-age`` of raster tiles (their COGs are immutable: a new version is a new item).
    concurrency : int
        Tile queries run at once per worker; 0: the pool size less two, so that tiles under load
        never take every connection from the rest of the API.
    """

    model_config = SettingsConfigDict(env_prefix="GIS_TILES_", extra="ignore")

    cache: bool = True
    cache_memory_mb: int = Field(128, ge=0)
    poll_seconds: float = Field(1.0, ge=0)
    max_age: int = Field(60, ge=0)
    raster_max_age: int = Field(3600, ge=0)
    concurrency: int = Field(0, ge=0)
