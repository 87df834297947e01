"""Content and language negotiation: ``f``, ``lang``, ``Accept`` and ``Accept-Language``."""

from __future__ import annotations

from starlette.requests import Request

from gis.errors import InputError

#: Format name -> media type.
MEDIA = {
    "json": "application/json",
    "geojson": "application/geo+json",
    "html": "text/html",
    "csv": "text/csv",
    "jsonfg": "application/vnd.ogc.fg+json",
    "openapi": "application/vnd.oai.openapi+json;version=3.0",
    "schema": "application/schema+json",
}

# media type (lower case, no parameters) -> format name
_BY_MEDIA = {
    "application/geo+json": "json",
    "application/json": "json",
    "application/vnd.oai.openapi+json": "json",
    "application/openapi+json": "json",
    "application/schema+json": "json",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/csv": "csv",
    "application/vnd.ogc.fg+json": "jsonfg",
}

# values accepted for f= -> format name
_F_ALIASES = {
    "json": "json",
    "geojson": "json",
    "application/json": "json",
    "application/geo+json": "json",
    "html": "html",
    "text/html": "html",
    "csv": "csv",
    "text/csv": "csv",
    "jsonfg": "jsonfg",
    "json-fg": "jsonfg",
    "fg+json": "jsonfg",
    "application/vnd.ogc.fg+json": "jsonfg",
}

LANGS = ("en", "vi")


def _accept(header: str) -> list[str]:
    """Media ranges of an Accept header, best first (stable for equal weights)."""
    items = []
    for i, part in enumerate(header.split(",")):
        bits = [b.strip() for b in part.split(";")]
        media = bits[0].lower()
        if not media:
            continue
        q = 1.0
        for b in bits[1:]:
            if b.lower().startswith("q="):
                try:
                    q = float(b[2:])
                except ValueError:
                    q = 0.0
        if q > 0:
            items.append((-q, i, media))
    return [m for _, _, m in sorted(items)]


def negotiate(request: Request, allowed: tuple[str, ...]) -> str:
    """The response format: ``f`` when given, else the best of ``Accept``, else ``allowed[0]``.

    Raises
    ------
    gis.errors.InputError
        When ``f`` names a format this resource does not have.
    """
    f = request.query_params.get("f")
    if f is not None:
        fmt = _F_ALIASES.get(f.strip().lower())
        if fmt not in allowed:
            raise InputError(
                f"Parameter f: {f!r} is not a format of this resource; give one of: "
                f"{', '.join(allowed)}"
            )
        return fmt
    header = request.headers.get("accept")
    if header:
        for media in _accept(header):
            fmt = _BY_MEDIA.get(media)
            if fmt in allowed:
                return fmt
            if media in ("*/*", "application/*"):
                return allowed[0]
    return allowed[0]


def language(request: Request) -> str:
    """``vi`` or ``en``: the ``lang`` parameter, else the best of ``Accept-Language``, else en."""
    lang = request.query_params.get("lang")
    if lang is not None:
        value = lang.strip().lower()
        if value not in LANGS:
            raise InputError(f"Parameter lang: {lang!r} is not available; give vi or en")
        return value
    header = request.headers.get("accept-language")
    if header:
        for tag in _accept(header):
            primary = tag.split("-")[0]
            if primary in LANGS:
                return primary
    return "en"
