"""OGC API - Processes: the analyses of :mod:`gis.analysis` as processes, run synchronously or as jobs.

A part of the API (see :mod:`api.parts` for the interface). Not built yet.
"""

from __future__ import annotations

CONFORMANCE: list[str] = []
