"""The parts of the API beside OGC API - Features, all served at the one root.

Each part is a module that provides:

``CONFORMANCE``
    list of the conformance classes it implements (added to ``/conformance``);
``landing_links(base) -> list[dict]``
    links of the landing page;
``collection_links(base, info) -> list[dict]``
    links of a feature collection's document (``info`` is an :class:`api.state.CollectionInfo`);
``collection_members(info, lang) -> dict``
    members added to a feature collection's own document (``/collections/{id}``: contact,
    source, lineage... of the records part), never overriding the Features members;
``extra_collections(request, lang) -> list[dict]``
    collection documents that are not feature collections (raster coverages, the records
    catalogue...), listed by ``/collections``;
``find_collection(request, collection_id, lang) -> dict | None``
    the document of one of those by id, ``None`` when it is not one of this part's;
``openapi_paths(snapshot) -> dict``
    its paths of the OpenAPI document;
``make_router(settings) -> fastapi.APIRouter``
    its routes. They are tried AFTER the Features routes (the hot paths come first: Starlette tries
    routes in order), except routes under a fixed collection id (``/collections/catalog/items``, a
    literal second segment), which are tried before them so that a part may claim such a path.

A module may leave out any of these; :func:`parts` gives the modules in a fixed order.
"""

from __future__ import annotations

import importlib
from contextlib import AsyncExitStack, asynccontextmanager
from functools import cache
from types import ModuleType

#: the parts, in the order their links and paths appear
PART_MODULES = (
    "api.tiles",  # OGC API - Tiles and the web map
    "api.coverages",  # OGC API - Coverages and the STAC API of the raster store
    "api.processes",  # OGC API - Processes (the analyses of gis.analysis)
    "api.downloads",  # open-data downloads (enclosures)
    "api.records",  # OGC API - Records catalogue, DCAT feed
)


@cache
def parts() -> tuple[ModuleType, ...]:
    """The part modules, imported once."""
    return tuple(importlib.import_module(name) for name in PART_MODULES)


def conformance() -> list[str]:
    """The conformance classes of all parts."""
    out: list[str] = []
    for m in parts():
        out += [c for c in getattr(m, "CONFORMANCE", ()) if c not in out]
    return out


def landing_links(base: str) -> list[dict]:
    """The landing page links of all parts."""
    return [link for m in parts() if hasattr(m, "landing_links") for link in m.landing_links(base)]


def collection_links(base: str, info) -> list[dict]:
    """The links the parts add to a feature collection's document."""
    return [
        link
        for m in parts()
        if hasattr(m, "collection_links")
        for link in m.collection_links(base, info)
    ]


def collection_members(info, lang: str) -> dict:
    """Members the parts add to a feature collection's own document."""
    out: dict = {}
    for m in parts():
        if hasattr(m, "collection_members"):
            out.update(m.collection_members(info, lang))
    return out


def extra_collections(request, lang: str) -> list[dict]:
    """Collection documents of the parts (not feature collections)."""
    return [
        doc
        for m in parts()
        if hasattr(m, "extra_collections")
        for doc in m.extra_collections(request, lang)
    ]


def find_collection(request, collection_id: str, lang: str) -> dict | None:
    """A part's collection document by id, or ``None``."""
    for m in parts():
        if hasattr(m, "find_collection"):
            doc = m.find_collection(request, collection_id, lang)
            if doc is not None:
                return doc
    return None


def openapi_paths(snapshot) -> dict:
    """The OpenAPI paths of all parts."""
    paths: dict = {}
    for m in parts():
        if hasattr(m, "openapi_paths"):
            paths.update(m.openapi_paths(snapshot))
    return paths


def _claims_collection(path: str) -> bool:
    segments = path.split("/")
    return len(segments) > 2 and segments[1] == "collections" and not segments[2].startswith("{")


def routers(settings) -> tuple[list, list]:
    """The routes of all parts, bound to the platform settings, as two routers.

    Returns
    -------
    (before, after) : tuple of fastapi.APIRouter
        ``before``: the routes that claim a fixed collection id (to be included before the
        Features router); ``after``: all the others.
    """
    from fastapi import APIRouter

    made = [m.make_router(settings) for m in parts() if hasattr(m, "make_router")]

    @asynccontextmanager
    async def lifespan(app):  # the parts' own lifespans (the job manager of processes...)
        async with AsyncExitStack() as stack:
            for r in made:
                await stack.enter_async_context(r.lifespan_context(app))
            yield

    before, after = APIRouter(), APIRouter(lifespan=lifespan)
    for r in made:
        for route in r.routes:
            claims = _claims_collection(getattr(route, "path", ""))
            (before if claims else after).routes.append(route)
    return before, after
