"""Settings of the HTTP API, built late (by ``create_app`` or a test), never at import time."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    """Settings of the OGC API server, read from ``GIS_API_*`` environment variables.

    Parameters
    ----------
    pool_min_size, pool_max_size : int
        Database connections per worker process.
    default_limit, max_limit : int
        The ``limit`` parameter's default and maximum (declared in the OpenAPI document).
    count_cap : int
        ``numberMatched`` of a filtered request is counted exactly up to this many features;
        above it, it is left out (OGC API Features allows that) rather than paid for with a full
        ``COUNT(*)``.
    exact_total_max_rows : int
        Collections with at most this many rows (planner estimate) get their exact size counted
        when the catalog is loaded: unfiltered requests then report it for free.
    catalog_poll_seconds : float
        How often the catalog is checked for changes (``gis_meta.collections``, ``ingest.runs``,
        table writes); a change reloads it in the background.
    statement_timeout_ms : int
        Longest a query may run; past it the request fails with 503.
    stream_chunk : int
        Rows fetched from the database at a time when a response is streamed.
    read_ahead_bytes : int
        Bytes of pages (per worker process) computed ahead for clients that walk a collection
        by its ``next`` links (:mod:`api.readahead`); 0 turns read-ahead off.
    read_ahead_seconds : float
        How long a page computed ahead waits for its request.
    basemap_url : str
        Tile URL template of the HTML pages' base map ('' for none: features on a blank map).
    basemap_attribution : str
        Its attribution (HTML).
    """

    model_config = SettingsConfigDict(env_prefix="GIS_API_", extra="ignore")

    pool_min_size: int = Field(2, ge=1)
    pool_max_size: int = Field(10, ge=1)
    default_limit: int = Field(10, ge=1)
    max_limit: int = Field(10_000, ge=1)
    count_cap: int = Field(1_000, ge=0)
    exact_total_max_rows: int = Field(5_000_000, ge=0)
    catalog_poll_seconds: float = Field(3.0, gt=0)
    statement_timeout_ms: int = Field(60_000, ge=0)
    stream_chunk: int = Field(1000, ge=1)
    read_ahead_bytes: int = Field(64 * 2**20, ge=0)
    read_ahead_seconds: float = Field(30.0, gt=0)
    basemap_url: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    basemap_attribution: str = (
        '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'
    )

    @field_validator("max_limit")
    @classmethod
    def _max_not_below_default(cls, v: int, info) -> int:
        default = info.data.get("default_limit", 10)
        if v < default:
            raise ValueError(f"max_limit ({v}) is below default_limit ({default})")
        return v
