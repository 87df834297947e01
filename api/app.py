"""The app factory: ``create_app(settings)`` builds the OGC API application.

Works with ``uvicorn --factory api.app:create_app`` (settings then come from the environment, read
when the factory is called) and with ``TestClient(create_app(Settings(database_url=dsn)))``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
import psycopg
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from api.html import Pages
from api.settings import ApiSettings
from api.state import ApiState
from gis.errors import ConfigError, GisError
from gis.settings import Settings

log = logging.getLogger("gis.api")

STATIC = Path(__file__).resolve().parent / "static"


def _exception(status: int, code: str, description: str, headers: dict | None = None) -> Response:
    return Response(
        orjson.dumps({"code": code, "description": description}),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _asset_dirs() -> dict[str, Path]:
    """Folders of the JavaScript/CSS packages served locally (no CDN)."""
    try:
        import swagger_ui_bundle
        from xstatic.pkg import leaflet
    except ImportError as exc:  # pragma: no cover - an installation problem
        raise ConfigError(
            f"A web asset package is missing ({exc.name}): install the project's requirements "
            "(swagger-ui-bundle and XStatic-Leaflet provide the API docs page and the maps)"
        ) from None
    return {
        "swagger-ui": Path(swagger_ui_bundle.swagger_ui_path),
        "leaflet": Path(leaflet.BASE_DIR),
    }


class CatchAll:
    """Last line of defence: an unexpected exception becomes a generic 500, its detail logged.

    A pure ASGI middleware (cheap), placed inside Starlette's error middleware so that no traceback
    or database text ever reaches a client.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            ref = uuid.uuid4().hex[:12]
            log.exception(
                "unhandled error %s on %s %s", ref, scope.get("method"), scope.get("path")
            )
            if started:  # mid-stream: the client sees a truncated body
                return
            resp = _exception(
                500,
                "ServerError",
                f"Internal server error (reference {ref}); the details were logged.",
            )
            await resp(scope, receive, send)


def create_app(
    settings: Settings | None = None, api_settings: ApiSettings | None = None
) -> FastAPI:
    """Build the OGC API application.

    Parameters
    ----------
    settings : gis.settings.Settings, optional
        Platform settings (where the database is). Built from the environment when omitted (as
        ``uvicorn --factory`` does), at call time.
    api_settings : ApiSettings, optional
        HTTP API settings (pool size, limits); from ``GIS_API_*`` variables when omitted.

    Returns
    -------
    fastapi.FastAPI
        The application. The pool is opened and the catalog loaded in its lifespan.

    Examples
    --------
    >>> from fastapi.testclient import TestClient  # doctest: +SKIP
    >>> with TestClient(create_app(Settings(database_url=dsn))) as client:  # doctest: +SKIP
    ...     client.get("/collections").json()["collections"][0]["id"]
    'parcels'
    """
    settings = settings if settings is not None else Settings()
    api_settings = api_settings if api_settings is not None else ApiSettings()
    assets = _asset_dirs()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from gis.db import resolve_dsn

        dsn = await asyncio.to_thread(resolve_dsn, settings)
        state = ApiState(dsn, api_settings)
        await state.open()
        app.state.gis = state
        try:
            yield
        finally:
            await state.close()

    app = FastAPI(
        title="HCMC open GIS - OGC API",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.pages = Pages(api_settings.basemap_url, api_settings.basemap_attribution)
    app.state.api_settings = api_settings

    @app.exception_handler(GisError)
    async def gis_error(request: Request, exc: GisError) -> Response:
        if exc.http_status >= 500:
            log.error("%s: %s", exc.code, exc.message)
        return _exception(exc.http_status, exc.code, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "HTTPError")
        text = (
            f"There is no resource at {request.url.path}"
            if exc.status_code == 404
            else str(exc.detail)
        )
        return _exception(exc.status_code, code, text, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        parts = []
        for e in exc.errors()[:3]:
            loc = ".".join(str(x) for x in e.get("loc", ())[1:]) or "request"
            parts.append(f"{loc}: {e.get('msg')}")
        return _exception(400, "InvalidParameterValue", "; ".join(parts))

    @app.exception_handler(psycopg.errors.QueryCanceled)
    async def timeout(request: Request, exc: Exception) -> Response:
        log.warning("query cancelled (statement timeout) on %s", request.url.path)
        return _exception(
            503,
            "Timeout",
            "The query took too long and was stopped; narrow it "
            "(bbox, filter) or ask for smaller pages (limit).",
        )

    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(PoolTimeout)
    async def unavailable(request: Request, exc: Exception) -> Response:
        log.error("database unavailable: %s", exc)
        return _exception(
            503, "DatabaseUnavailable", "The database is unavailable; try again later."
        )

    from api import parts
    from api.routes import router

    claims, others = parts.routers(settings)  # Tiles, Coverages, Processes, downloads, Records
    app.include_router(claims)  # a part's /collections/<fixed id>/... (the records catalogue)
    app.include_router(router)  # Features: the hot paths, tried early
    app.include_router(others)
    app.mount("/static/gis", StaticFiles(directory=STATIC), name="static-gis")
    app.mount("/static/leaflet", StaticFiles(directory=assets["leaflet"]), name="static-leaflet")
    app.mount(
        "/static/swagger-ui", StaticFiles(directory=assets["swagger-ui"]), name="static-swagger"
    )
    # open data: any web page may read it (and run processes), and see the CRS, paging and
    # download headers
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "HEAD", "POST", "DELETE"],
        expose_headers=[
            "Content-Crs", "Content-Language", "Location", "ETag", "Last-Modified",
            "Content-Range", "Accept-Ranges", "Content-Length",
        ],
    )
    app.add_middleware(CatchAll)
    return app
