"""OGC API - Records: the catalogue of the published layers, and its DCAT (JSON-LD) feed.

A part of the API (see :mod:`api.parts` for the interface). Not built yet.
"""

from __future__ import annotations

CONFORMANCE: list[str] = []
