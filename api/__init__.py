"""The HTTP API: OGC API - Features (with CRS and CQL2), the catalog, HTML pages and OpenAPI.

``create_app(settings)`` builds the application; ``gis serve`` runs it.
"""

from __future__ import annotations

__all__ = ["create_app"]


def create_app(*args, **kwargs):
    """Build the OGC API application (see :func:`api.app.create_app`)."""
    from api.app import create_app as _create_app

    return _create_app(*args, **kwargs)
