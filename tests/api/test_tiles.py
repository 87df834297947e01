"""OGC API - Tiles over HTTP (TestClient on the real app and database): metadata, vector and raster
tiles, caching headers, the dataset tiles, errors as OGC exceptions, and the pool under load."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx
import mapbox_vector_tile
import morecantile
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from gis.raster.store import RasterStore
from gis.settings import Settings
from ingest.raster import RasterIngestOptions, run_raster_ingest
from tiles.settings import TileSettings

WM = morecantile.tms.get("WebMercatorQuad")
MVT = "application/vnd.mapbox-vector-tile"
WORLDPOP = "geoglue-kraemer/worldpop/hcmc_clip_vnm_ppp_2020_1km_UNadj.tif"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("rasters")


@pytest.fixture(scope="module")
def tclient(sample_dsn, shared_data, store, tmp_path_factory):
    # the WorldPop population raster, as a COG through the raster ingest job: the first raster layer
    res = run_raster_ingest(sample_dsn, [shared_data / WORLDPOP],
                            RasterIngestOptions(collection="worldpop", sensor="worldpop", datetime="2020"),
                            store=RasterStore(store))
    assert res.outcome in ("loaded", "unchanged"), res.summary()
    settings = Settings(database_url=sample_dsn, data_dir=tmp_path_factory.mktemp("data"), raster_store=store)
    app = create_app(settings, ApiSettings())
    app.state.tile_settings = TileSettings(poll_seconds=0)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _parcel(db):
    return db.execute("SELECT parcel_id, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)), land_use "
                      "FROM cadastral.parcels_current ORDER BY parcel_id LIMIT 1 OFFSET 5").fetchone()


def _tile_url(lon, lat, z, collection="parcels"):
    t = WM.tile(lon, lat, z)
    return f"/collections/{collection}/tiles/WebMercatorQuad/{z}/{t.y}/{t.x}"


def test_tile_matrix_sets(tclient):
    doc = tclient.get("/tileMatrixSets").json()
    ids = {s["id"] for s in doc["tileMatrixSets"]}
    assert {"WebMercatorQuad", "WorldCRS84Quad"} <= ids
    tms = tclient.get("/tileMatrixSets/WebMercatorQuad").json()
    assert tms["id"] == "WebMercatorQuad" and len(tms["tileMatrices"]) == 25
    r = tclient.get("/tileMatrixSets/GoogleCRS84Quad")
    assert r.status_code == 404 and r.json()["code"] == "NotFound" and "WebMercatorQuad" in r.json()["description"]


def test_conformance_landing_and_openapi(tclient):
    conf = tclient.get("/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core" in conf
    assert "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt" in conf
    rels = {lk["rel"] for lk in tclient.get("/").json()["links"]}
    assert "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector" in rels
    coll = tclient.get("/collections/parcels").json()
    assert any(lk["href"].endswith("/collections/parcels/tiles") for lk in coll["links"])
    doc = tclient.get("/api").json()
    assert "/collections/{collectionId}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}" in doc["paths"]
    assert "/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}" in doc["paths"]
    from openapi_spec_validator import validate

    validate(doc)


def test_tilesets_tileset_and_tilejson(tclient):
    sets = tclient.get("/collections/parcels/tiles").json()["tilesets"]
    assert {s["links"][0]["href"].rsplit("/", 1)[1] for s in sets} >= {"WebMercatorQuad", "WorldCRS84Quad"}
    ts = tclient.get("/collections/parcels/tiles/WebMercatorQuad").json()
    assert ts["dataType"] == "vector" and ts["tileMatrixSetURI"].endswith("WebMercatorQuad")
    assert ts["layers"][0]["id"] == "parcels" and ts["layers"][0]["minTileMatrix"] == "12"
    assert "owner_name" not in ts["layers"][0]["propertiesSchema"]["properties"]
    item = next(lk for lk in ts["links"] if lk["rel"] == "item")
    assert item["href"].endswith("/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}") and item["type"] == MVT
    limits = {lim["tileMatrix"]: lim for lim in ts["tileMatrixSetLimits"]}
    assert limits["16"]["minTileCol"] <= limits["16"]["maxTileCol"]
    tj = tclient.get("/collections/parcels/tiles/WebMercatorQuad/tilejson.json").json()
    assert tj["tilejson"] == "3.0.0" and tj["tiles"][0].endswith("/parcels/tiles/WebMercatorQuad/{z}/{y}/{x}")
    assert tj["vector_layers"][0]["id"] == "parcels" and tj["minzoom"] == 12
    assert tclient.get("/collections/parcels/tiles/WebMercatorQuad?f=tilejson").json()["tilejson"] == "3.0.0"
    vi = tclient.get("/collections/parcels/tiles/WebMercatorQuad/tilejson.json?lang=vi").json()
    assert vi["vector_layers"][0]["fields"]["parcel_no"] == "Số thửa"


def test_vector_tile_etag_cache_control_and_304(tclient, db):
    pid, lon, lat, land_use = _parcel(db)
    r = tclient.get(_tile_url(lon, lat, 17))
    assert r.status_code == 200 and r.headers["content-type"] == MVT
    assert r.headers["etag"].startswith('"') and "max-age" in r.headers["cache-control"]
    feats = {f["id"]: f for f in mapbox_vector_tile.decode(r.content)["parcels"]["features"]}
    assert feats[pid]["properties"]["land_use"] == land_use
    again = tclient.get(_tile_url(lon, lat, 17))
    assert again.content == r.content and again.headers["etag"] == r.headers["etag"]
    nm = tclient.get(_tile_url(lon, lat, 17), headers={"If-None-Match": r.headers["etag"]})
    assert nm.status_code == 304 and not nm.content
    # XYZ alias: the same tile
    t = WM.tile(lon, lat, 17)
    assert tclient.get(f"/xyz/parcels/17/{t.x}/{t.y}.mvt").content == r.content


def test_empty_tiles_are_204(tclient):
    r = tclient.get("/collections/parcels/tiles/WebMercatorQuad/14/0/0")
    assert r.status_code == 204 and not r.content and r.headers["etag"] == '"empty"'
    assert "max-age" in r.headers["cache-control"]


@pytest.mark.parametrize("url,status,text", [
    ("/collections/parcels/tiles/WebMercatorQuad/25/0/0", 404, "tile matrices are 0 to 24"),
    ("/collections/parcels/tiles/WebMercatorQuad/3/8/0", 404, "rows 0 to 7"),
    ("/collections/parcels/tiles/WebMercatorQuad/3/0/-1", 404, "columns 0 to 7"),
    ("/collections/parcels/tiles/WebMercatorQuad/3/x/0", 400, "tileRow"),
    ("/collections/parcels/tiles/WebMercatorQuad/99999999999999/0/0", 400, "tileMatrix"),
    ("/collections/parcels/tiles/NoSuchTMS/3/0/0", 404, "WebMercatorQuad"),
    ("/collections/nope/tiles/WebMercatorQuad/3/0/0", 404, "parcels"),
    ("/collections/parcels/tiles/WebMercatorQuad/5/10/20", 404, "tile matrices 12 to 22"),
    ("/collections/parcels/tiles/WebMercatorQuad/14/0/0?f=png", 400, "mvt"),
    ("/collections/parcels/tiles/WebMercatorQuad/14/0/0?bogus=1", 400, "bogus"),
    ("/tiles/WebMercatorQuad/14/0/0?collections=parcels,nope", 404, "nope"),
    ("/tiles/WebMercatorQuad/2/0/0?collections=parcels", 404, "tile matrices 12 to 22"),
    ("/collections/population/map/tiles/WebMercatorQuad/20/0/0", 404, "zooms 0 to 16"),
    ("/collections/population/map/tiles/WebMercatorQuad/10/0/0?f=gif", 400, "png or webp"),
    ("/xyz/nope/1/0/0.mvt", 404, "population"),
])
def test_bad_input_is_a_clear_4xx(tclient, url, status, text):
    r = tclient.get(url)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] in ("NotFound", "InvalidParameterValue") and text in body["description"]


def test_dataset_tiles_have_several_layers(tclient, db):
    pid, lon, lat, _ = _parcel(db)
    t = WM.tile(lon, lat, 16)
    r = tclient.get(f"/tiles/WebMercatorQuad/16/{t.y}/{t.x}")
    assert r.status_code == 200
    doc = mapbox_vector_tile.decode(r.content)
    assert {"parcels", "buildings", "planning-lots"} <= set(doc)
    only = mapbox_vector_tile.decode(
        tclient.get(f"/tiles/WebMercatorQuad/16/{t.y}/{t.x}?collections=parcels,roads").content)
    assert set(only) <= {"parcels", "roads"} and "parcels" in only
    ts = tclient.get("/tiles/WebMercatorQuad").json()
    assert {lay["id"] for lay in ts["layers"]} >= {"parcels", "buildings"}
    tj = tclient.get("/tiles/WebMercatorQuad/tilejson.json?collections=parcels,roads").json()
    assert [v["id"] for v in tj["vector_layers"]] == ["parcels", "roads"]
    assert tj["tiles"][0].endswith("?collections=parcels,roads")


def test_other_tile_matrix_set(tclient, db):
    pid, lon, lat, _ = _parcel(db)
    t = morecantile.tms.get("WorldCRS84Quad").tile(lon, lat, 16)
    r = tclient.get(f"/collections/parcels/tiles/WorldCRS84Quad/16/{t.y}/{t.x}")
    assert r.status_code == 200
    assert pid in {f["id"] for f in mapbox_vector_tile.decode(r.content)["parcels"]["features"]}


def test_raster_tiles_png_and_webp(tclient):
    ts = tclient.get("/collections/population/map/tiles/WebMercatorQuad").json()
    assert ts["dataType"] == "map" and ts["item"]["collection"] == "worldpop"
    assert len(ts["legend"]["entries"]) >= 2
    t = WM.tile(106.70, 10.78, 10)
    png = tclient.get(f"/collections/population/map/tiles/WebMercatorQuad/10/{t.y}/{t.x}")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
    webp = tclient.get(f"/collections/population/map/tiles/WebMercatorQuad/10/{t.y}/{t.x}?f=webp")
    assert webp.status_code == 200 and webp.content[8:12] == b"WEBP"
    from io import BytesIO

    from PIL import Image

    img = Image.open(BytesIO(png.content)).convert("RGBA")
    assert img.size == (256, 256)
    colours = {img.getpixel((x, y)) for x in range(0, 256, 16) for y in range(0, 256, 16)}
    assert len(colours) > 3  # a colour ramp, not a blank tile
    assert tclient.get(f"/xyz/population/10/{t.x}/{t.y}.png").content == png.content
    assert tclient.get("/collections/population/map/tiles/WebMercatorQuad/10/0/0").status_code == 204
    tj = tclient.get("/collections/population/map/tiles/WebMercatorQuad?f=tilejson").json()
    assert tj["tiles"][0].endswith("/xyz/population/{z}/{x}/{y}.png")


def test_map_page_and_assets(tclient):
    r = tclient.get("/map?lang=vi")
    assert r.status_code == 200 and "Lớp dữ liệu" in r.text and "/static/maplibre/maplibre-gl.js" in r.text
    assert "cdn" not in r.text.lower() and "unpkg" not in r.text.lower()
    js = tclient.get("/static/maplibre/maplibre-gl.js")
    assert js.status_code == 200 and len(js.content) > 100_000
    assert tclient.get("/static/maplibre/package.json").status_code == 404
    assert tclient.get("/static/gis/webmap.js").status_code == 200


def test_tiles_under_load_leave_the_pool_to_the_rest_of_the_api(sample_dsn, tmp_path):
    """Tile queries blocked in the database (a lock on the parcels) hold at most `concurrency`
    connections: features of another table and the catalog are still served at once."""
    settings = Settings(database_url=sample_dsn, data_dir=tmp_path)
    app = create_app(settings, ApiSettings(pool_min_size=1, pool_max_size=4, statement_timeout_ms=20_000))
    app.state.tile_settings = TileSettings(cache=False, concurrency=2)
    with psycopg.connect(sample_dsn) as locker, TestClient(app) as client:
        client.get("/collections/parcels/tiles")  # builds the tile service
        pid, lon, lat, _ = _parcel(locker)
        locker.execute("LOCK TABLE cadastral.parcels IN ACCESS EXCLUSIVE MODE")
        urls = [_tile_url(lon, lat, z) for z in (15, 16, 17, 18, 19, 20)]
        results = {}

        async def load():
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as ac:
                tiles = [asyncio.create_task(ac.get(u, timeout=60)) for u in urls]
                await asyncio.sleep(0.5)  # the tile queries are waiting on the lock
                t0 = time.monotonic()
                r = await ac.get("/collections/poi/items?limit=5", timeout=10)
                results["items"] = (r.status_code, time.monotonic() - t0)
                r = await ac.get("/collections", timeout=10)
                results["collections"] = r.status_code
                threading.Timer(0.1, locker.rollback).start()  # release the lock
                done = await asyncio.gather(*tiles)
                results["tiles"] = [d.status_code for d in done]

        client.portal.call(load)
    assert results["items"][0] == 200 and results["items"][1] < 3, results
    assert results["collections"] == 200
    assert all(s in (200, 204) for s in results["tiles"]), results
