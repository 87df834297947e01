"""Open-data downloads: prebuilt files of every public collection, linked as ``enclosure``.

A part of the API (see :mod:`api.parts` for the interface). Not built yet.
"""

from __future__ import annotations

CONFORMANCE: list[str] = []
