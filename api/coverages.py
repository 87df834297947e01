"""OGC API - Coverages of the raster collections, and a STAC API (`/stac`) of the raster store.

A part of the API (see :mod:`api.parts` for the interface). Not built yet.
"""

from __future__ import annotations

CONFORMANCE: list[str] = []
