"""The STAC API (``/stac``) and the COG downloads (``/rasters/...``): over TestClient, and with real
clients against a real ``gis serve`` process: pystac-client searches it, GDAL's ``/vsicurl/``
(rasterio) and rio-tiler read the COGs through HTTP range requests.

The oracle is the database (``raster.items``) and the files of the raster store.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import psycopg
import pytest
import rasterio
from api_helpers import GisServer
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from gis.raster.store import RasterStore
from gis.settings import Settings
from ingest.raster import RasterIngestOptions, run_raster_ingest

POP = "geoglue-kraemer/worldpop/hcmc_clip_vnm_ppp_{}_1km_UNadj.tif"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> RasterStore:
    return RasterStore(tmp_path_factory.mktemp("stac_rasters"))


@pytest.fixture(scope="module")
def stac_dsn(module_dsn, store, shared_data, tmp_path_factory) -> str:
    """Two synthetic Sentinel-2 scenes, WorldPop 2000 and 2020 (HCMC clips), through the ingest job."""
    from gis.raster.synthetic import generate_pair

    scenes = generate_pair(
        tmp_path_factory.mktemp("stac_s2"),
        seed=11,
        resolution=20.0,
        size_m=6000.0,
        growth_patches=4,
    )
    for paths, opts in [
        (
            [scenes.before, scenes.after],
            RasterIngestOptions(collection="s2-synthetic", sensor="sentinel2"),
        ),
        (
            [shared_data / POP.format(2000)],
            RasterIngestOptions(collection="worldpop", datetime="2000", sensor="worldpop"),
        ),
        (
            [shared_data / POP.format(2020)],
            RasterIngestOptions(collection="worldpop", datetime="2020", sensor="worldpop"),
        ),
    ]:
        assert run_raster_ingest(module_dsn, paths, opts, store=store).outcome == "loaded"
    return module_dsn


@pytest.fixture(scope="module")
def db(stac_dsn):
    with psycopg.connect(stac_dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def client(stac_dsn, store, tmp_path_factory):
    settings = Settings(
        database_url=stac_dsn,
        data_dir=tmp_path_factory.mktemp("stac_data"),
        raster_store=store.root,
    )
    with TestClient(create_app(settings, ApiSettings()), raise_server_exceptions=False) as c:
        yield c


def _ids(fc: dict) -> list[tuple[str, str]]:
    return [(f["collection"], f["id"]) for f in fc["features"]]


def _db_ids(db, where: str = "true", params=()) -> list[tuple[str, str]]:
    return [
        tuple(r)
        for r in db.execute(
            f"SELECT collection, id FROM raster.items WHERE {where} ORDER BY collection, id", params
        ).fetchall()
    ]


def err(resp, status: int, *words: str) -> None:
    assert resp.status_code == status, (resp.status_code, resp.text[:400])
    body = resp.json()
    assert set(body) == {"code", "description"}
    for w in words:
        assert w in body["description"], body["description"]


# ---------------------------------------------------------------------------------------------
# TestClient
# ---------------------------------------------------------------------------------------------


def test_landing_conformance_and_collections(client, db):
    root = client.get("/stac").json()
    assert (
        root["type"] == "Catalog"
        and "https://api.stacspec.org/v1.0.0/item-search" in root["conformsTo"]
    )
    rels = [(link["rel"], link.get("method")) for link in root["links"]]
    assert (
        ("search", "GET") in rels and ("search", "POST") in rels and ("conformance", None) in rels
    )
    children = sorted(
        link["href"].rsplit("/", 1)[1] for link in root["links"] if link["rel"] == "child"
    )
    assert children == ["s2-synthetic", "worldpop"]
    assert client.get("/stac/conformance").json()["conformsTo"] == root["conformsTo"]
    colls = client.get("/stac/collections").json()["collections"]
    assert [c["id"] for c in colls] == ["s2-synthetic", "worldpop"]
    wp = client.get("/stac/collections/worldpop").json()
    assert wp["type"] == "Collection" and wp["extent"]["temporal"]["interval"][0][0].startswith(
        "2000"
    )
    assert {link["rel"] for link in wp["links"]} >= {"self", "root", "parent", "items", "related"}
    # the landing page of the OGC API links to the STAC API
    assert any(link["href"].endswith("/stac") for link in client.get("/").json()["links"])


def test_items_paging_and_item(client, db):
    seen = []
    url = "/stac/collections/s2-synthetic/items?limit=1"
    while url:
        page = client.get(url).json()
        assert page["numberMatched"] == 2 and page["numberReturned"] == len(page["features"]) == 1
        seen += _ids(page)
        nxt = [link for link in page["links"] if link["rel"] == "next"]
        url = nxt[0]["href"] if nxt else None
    assert seen == _db_ids(db, "collection = 's2-synthetic'")
    cid, iid = seen[0]
    item = client.get(f"/stac/collections/{cid}/items/{iid}")
    assert item.status_code == 200 and item.headers["content-type"] == "application/geo+json"
    doc = item.json()
    href = doc["assets"]["data"]["href"]
    asset_href = db.execute(
        "SELECT asset_href FROM raster.items WHERE collection = %s AND id = %s", (cid, iid)
    ).fetchone()[0]
    assert href.endswith("/rasters/" + asset_href)
    assert {link["rel"] for link in doc["links"]} == {"self", "parent", "collection", "root"}
    assert [b["name"] for b in doc["assets"]["data"]["bands"]] == [
        "B02",
        "B03",
        "B04",
        "B08",
        "B11",
    ]


def test_search_get_and_post(client, db):
    # bbox: the S2 scenes are around central HCMC; the WorldPop clips cover the province
    fc = client.get(
        "/stac/search", params={"bbox": "106.69,10.77,106.71,10.79", "limit": 100}
    ).json()
    expect = _db_ids(db, "ST_Intersects(geom, ST_MakeEnvelope(106.69, 10.77, 106.71, 10.79, 4326))")
    assert _ids(fc) == expect and len(expect) == 4
    far = client.get("/stac/search", params={"bbox": "107.0,11.15,107.05,11.19"}).json()
    assert {c for c, _ in _ids(far)} == {"worldpop"}
    # datetime, collections, ids
    fc = client.get(
        "/stac/search", params={"datetime": "2019-01-01T00:00:00Z/2020-06-30T00:00:00Z"}
    ).json()
    assert _ids(fc) == _db_ids(db, "dt_end >= '2019-01-01' AND dt_start <= '2020-06-30'")
    fc = client.get("/stac/search", params={"collections": "worldpop", "datetime": "2000"}).json()
    assert [i for _, i in _ids(fc)] == ["hcmc_clip_vnm_ppp_2000_1km_UNadj"]
    ids = [i for _, i in _db_ids(db, "collection = 's2-synthetic'")]
    fc = client.get("/stac/search", params={"ids": ids[0]}).json()
    assert [i for _, i in _ids(fc)] == [ids[0]]
    # POST with paging: the next link carries the body and a token
    body = {
        "collections": ["s2-synthetic", "worldpop"],
        "limit": 3,
        "intersects": {"type": "Point", "coordinates": [106.70, 10.78]},
    }
    page = client.post("/stac/search", json=body).json()
    got = _ids(page)
    nxt = next(link for link in page["links"] if link["rel"] == "next")
    assert nxt["method"] == "POST" and nxt["body"]["token"]
    page2 = client.post("/stac/search", json=nxt["body"]).json()
    got += _ids(page2)
    assert not [link for link in page2["links"] if link["rel"] == "next"]
    assert got == _db_ids(db, "ST_Intersects(geom, ST_SetSRID(ST_Point(106.70, 10.78), 4326))")


@pytest.mark.parametrize(
    ("method", "path", "payload", "status", "words"),
    [
        ("get", "/stac/search", {"bbox": "1,2,3"}, 400, ("bbox",)),
        ("get", "/stac/search", {"datetime": "soon"}, 400, ("datetime",)),
        ("get", "/stac/search", {"limit": "0"}, 400, ("limit",)),
        ("get", "/stac/search", {"limit": "abc"}, 400, ("limit",)),
        ("get", "/stac/search", {"token": "not-a-token"}, 400, ("token",)),
        ("get", "/stac/search", {"intersects": "{bad"}, 400, ("intersects",)),
        (
            "get",
            "/stac/search",
            {"bbox": "106,10,107,11", "intersects": '{"type":"Point","coordinates":[1,2]}'},
            400,
            ("intersects",),
        ),
        ("get", "/stac/search", {"sortby": "id"}, 400, ("sortby",)),
        ("post", "/stac/search", {"bbox": "x"}, 400, ("bbox",)),
        ("post", "/stac/search", {"limit": True}, 400, ("limit",)),
        ("post", "/stac/search", {"collections": "worldpop", "query": {}}, 400, ("query",)),
        (
            "post",
            "/stac/search",
            {"intersects": {"type": "Point", "coordinates": [500, 2]}},
            400,
            ("intersects",),
        ),
        ("get", "/stac/collections/nothing", {}, 404, ("nothing",)),
        ("get", "/stac/collections/nothing/items", {}, 404, ("nothing",)),
        ("get", "/stac/collections/worldpop/items/nothing", {}, 404, ("nothing",)),
        ("get", "/stac/collections/worldpop/items", {"ids": ""}, 400, ("ids",)),
        ("get", "/rasters/worldpop/nothing.tif", {}, 404, ("nothing",)),
        ("get", "/rasters/worldpop/..%2F..%2Fetc%2Fpasswd", {}, 404, ()),
    ],
)
def test_bad_input(client, method, path, payload, status, words):
    if method == "get":
        r = client.get(path, params=payload)
    else:
        r = client.post(path, json=payload)
    err(r, status, *words)


def test_post_body_that_is_not_a_search(client):
    err(
        client.post(
            "/stac/search", content=b"[1, 2]", headers={"content-type": "application/json"}
        ),
        400,
        "object",
    )
    err(
        client.post("/stac/search", content=b"{nope", headers={"content-type": "application/json"}),
        400,
        "JSON",
    )


def test_downloads_ranges_etag_and_no_traversal(client, db, store):
    href, checksum, size = db.execute(
        "SELECT asset_href, asset_checksum, asset_size FROM raster.items ORDER BY id LIMIT 1"
    ).fetchone()
    data = store.path(href).read_bytes()
    full = client.get(f"/rasters/{href}")
    assert full.status_code == 200 and full.content == data
    assert full.headers["accept-ranges"] == "bytes" and full.headers["etag"] == f'"{checksum}"'
    assert full.headers["content-type"].startswith("image/tiff") and "last-modified" in full.headers
    part = client.get(f"/rasters/{href}", headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206 and part.content == data[100:1100]
    assert part.headers["content-range"] == f"bytes 100-1099/{size}"
    tail = client.get(f"/rasters/{href}", headers={"Range": "bytes=-16"})
    assert tail.status_code == 206 and tail.content == data[-16:]
    head = client.head(f"/rasters/{href}")
    assert (
        head.status_code == 200
        and head.content == b""
        and head.headers["content-length"] == str(size)
    )
    assert (
        client.get(f"/rasters/{href}", headers={"If-None-Match": f'"{checksum}"'}).status_code
        == 304
    )
    r416 = client.get(f"/rasters/{href}", headers={"Range": f"bytes={size + 10}-"})
    assert r416.status_code == 416 and r416.headers["content-range"] == f"bytes */{size}"
    assert r416.json()["code"] == "RangeNotSatisfiable"
    # a malformed Range is ignored: the whole file
    assert client.get(f"/rasters/{href}", headers={"Range": "pages=1-2"}).content == data
    # a file in the store that no item points to is not served (a leftover temporary file)
    (store.root / "worldpop" / ".tmp-leftover.tif").write_bytes(b"secret")
    err(client.get("/rasters/worldpop/.tmp-leftover.tif"), 404)


# ---------------------------------------------------------------------------------------------
# real clients against a real server process
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live(stac_dsn, store, tmp_path_factory):
    """``gis serve`` with the raster store of these tests, its access log in a file."""
    log = tmp_path_factory.mktemp("stac_live") / "serve.log"
    env = {
        "DATABASE_URL": stac_dsn,
        "GIS_RASTER_STORE": str(store.root),
        "GIS_DATA_DIR": str(tmp_path_factory.mktemp("stac_live_data")),
    }
    with GisServer(env, log, ("--workers", "1"), ready="/stac") as server:
        yield server.base, log
    assert "unhandled error" not in log.read_text(errors="replace")


def test_pystac_client_searches_the_server(live, db):
    from pystac_client import Client

    base, _log = live
    cat = Client.open(f"{base}/stac")
    assert sorted(c.id for c in cat.get_collections()) == ["s2-synthetic", "worldpop"]
    search = cat.search(
        bbox=[106.69, 10.77, 106.71, 10.79], datetime="2019-01-01/2025-01-01", max_items=10, limit=1
    )  # one per page: the client follows the next links
    items = list(search.items())
    expect = _db_ids(
        db,
        "ST_Intersects(geom, ST_MakeEnvelope(106.69, 10.77, 106.71, 10.79, 4326)) "
        "AND dt_end >= '2019-01-01' AND dt_start <= '2025-01-01'",
    )
    assert [(i.collection_id, i.id) for i in items] == expect and len(expect) == 3
    assert search.matched() == 3
    got = list(cat.search(collections=["worldpop"], method="GET").items())
    assert sorted(i.id for i in got) == sorted(i for _, i in _db_ids(db, "collection = 'worldpop'"))
    coll = cat.get_collection("s2-synthetic")
    assert sorted(i.id for i in coll.get_items()) == sorted(
        i for _, i in _db_ids(db, "collection = 's2-synthetic'")
    )
    item = items[0]
    assert item.assets["data"].media_type.startswith("image/tiff")
    assert item.assets["data"].href.startswith(base + "/rasters/")


def test_vsicurl_and_rio_tiler_read_the_cogs_remotely(live, db, store):
    from rio_tiler.io import Reader

    base, log = live
    href = db.execute(
        "SELECT asset_href FROM raster.items WHERE collection = 's2-synthetic' "
        "ORDER BY id DESC LIMIT 1"
    ).fetchone()[0]
    url = f"{base}/rasters/{href}"
    mark = log.stat().st_size
    with rasterio.Env(
        GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR", CPL_VSIL_CURL_ALLOWED_EXTENSIONS=".tif"
    ):
        with rasterio.open(f"/vsicurl/{url}") as remote, rasterio.open(store.path(href)) as local:
            assert remote.profile["blockxsize"] == local.profile["blockxsize"]
            win = rasterio.windows.Window(40, 60, 100, 80)
            np.testing.assert_array_equal(remote.read(3, window=win), local.read(3, window=win))
            assert remote.overviews(1) == local.overviews(1)
            np.testing.assert_array_equal(
                remote.read(1, out_shape=(1, 75, 75)), local.read(1, out_shape=(1, 75, 75))
            )
        with Reader(url) as r:
            info = r.info()
            assert info.count == 5 if hasattr(info, "count") else True
            img = r.preview(indexes=4, max_size=64)
            assert img.data.shape[0] == 1 and img.mask.any()
    time.sleep(0.3)
    text = log.read_bytes()[mark:].decode(errors="replace")
    # GDAL read the file by ranges: partial responses, not one whole download
    assert '" 206' in text, text[-2000:]


def test_schemathesis_on_coverages_stac_and_downloads(live, tmp_path):
    """The fuzzer on this part's operations with real rasters behind them (the suite-wide fuzz run,
    tests/api/clients/test_schemathesis.py, has no raster so its coverage requests all end in 404):
    no 5xx, declared statuses, media types and schemas."""
    base, _log = live
    st = Path(sys.executable).parent / "schemathesis"
    config = tmp_path / "schemathesis.toml"
    config.write_text('[parameters]\n"path.collectionId" = "worldpop"\n')
    out = subprocess.run(
        [
            str(st),
            "--config-file",
            str(config),
            "run",
            f"{base}/api",
            "--checks",
            (
                "not_a_server_error,status_code_conformance,content_type_conformance,"
                "response_schema_conformance"
            ),
            "--phases",
            "coverage,fuzzing",
            "--max-examples",
            "20",
            "--seed",
            "20252",
            "--workers",  # one: CPython 3.11.7's ast.parse is not thread-safe (gh-106905)
            "1",
            "--request-timeout",
            "60",
            "--generation-database",
            "none",
            "--no-color",
            "--include-path-regex",
            r"^/(stac|rasters|collections/\{collectionId\}/coverage)",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-6000:]
    generated = re.search(r"(\d+) generated, (\d+) passed", text)
    assert (
        generated and generated.group(1) == generated.group(2) and int(generated.group(1)) > 300
    ), text[-3000:]


# ---------------------------------------------------------------------------------------------
# HTML pages
# ---------------------------------------------------------------------------------------------

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


class Page(HTMLParser):
    """An HTML page's links, images, embedded JSON scripts and text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.links: list[str] = []
        self.imgs: list[str] = []
        self.scripts: dict[str, str] = {}
        self.chunks: list[str] = []
        self._script: str | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        elif tag == "img":
            self.imgs.append(a["src"])
        elif tag == "script" and a.get("id"):
            self._script = a["id"]

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = None

    def handle_data(self, data):
        if self._script:
            self.scripts[self._script] = self.scripts.get(self._script, "") + data
        else:
            self.chunks.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.chunks).split())


def html_page(resp) -> Page:
    assert resp.status_code == 200, resp.text[:300]
    assert resp.headers["content-type"].startswith("text/html")
    assert resp.text.startswith("<!doctype html>")
    return Page(resp.text)


def test_html_pages_by_accept_and_f(client, db):
    item_coll, item_id = _db_ids(db, "collection = 'worldpop'")[0]
    urls = [
        "/stac",
        "/stac/collections",
        "/stac/collections/worldpop",
        "/stac/collections/worldpop/items",
        f"/stac/collections/{item_coll}/items/{item_id}",
    ]
    for url in urls:
        page = html_page(client.get(url, headers={"Accept": BROWSER}))
        assert "STAC" in page.text
        html_page(client.get(url, params={"f": "html", "lang": "vi"}))
        r = client.get(url, params={"f": "json"}, headers={"Accept": BROWSER})
        assert r.status_code == 200 and "json" in r.headers["content-type"]
        assert "json" in client.get(url).headers["content-type"]  # no Accept: JSON
        err(client.get(url, params={"f": "xml"}), 400, "Parameter f", "xml")
        # the page's JSON alternate is the JSON document
        alt = [h for h in page.links if "f=json" in h]
        assert alt and client.get(alt[-1]).json() == r.json()


def test_html_landing_collections_and_collection(client, db):
    ids = [r[0] for r in db.execute("SELECT id FROM raster.collections ORDER BY id").fetchall()]
    landing = html_page(client.get("/stac?f=html"))
    for cid in ids:
        assert f"http://testserver/stac/collections/{cid}?f=html&lang=en" in landing.links
    colls = html_page(client.get("/stac/collections?f=html"))
    for cid in ids:
        assert cid in colls.text
        assert f"http://testserver/stac/collections/{cid}/items?f=html&lang=en" in colls.links
    doc = client.get("/stac/collections/worldpop").json()
    page = html_page(client.get("/stac/collections/worldpop?f=html"))
    assert doc["title"] in page.text and doc["description"] in page.text
    assert json.loads(page.scripts["extent"]) == doc["extent"]["spatial"]["bbox"][0]
    # the OGC API - Coverages collection of the same rasters
    assert "http://testserver/collections/worldpop?f=html&lang=en" in page.links
    html_page(client.get("/collections/worldpop?f=html&lang=en"))


def test_html_items_pages_and_item(client, db, store):
    expect = _db_ids(db, "collection = 's2-synthetic'")
    seen, url, pages = [], "/stac/collections/s2-synthetic/items?f=html&limit=1", 0
    while url:
        page = html_page(client.get(url))
        fc = json.loads(page.scripts["features"])
        seen += [("s2-synthetic", f["id"]) for f in fc["features"]]
        for f in fc["features"]:  # the footprints on the map are the items' geometries
            item = client.get(f"/stac/collections/s2-synthetic/items/{f['id']}").json()
            assert f["geometry"] == item["geometry"]
        # the next page's link (not the JSON alternate nor the language switch of this page)
        nxt = [h for h in page.links if "token=" in h and "f=html" in h and "lang=vi" not in h]
        url = nxt[0] if nxt else None
        pages += 1
    assert seen == expect and pages == len(expect) == 2
    # an item: its bands (from the catalog) and its COG, downloadable from the page
    cid, iid = expect[0]
    bands, href = db.execute(
        "SELECT bands, asset_href FROM raster.items WHERE collection = %s AND id = %s", (cid, iid)
    ).fetchone()
    page = html_page(client.get(f"/stac/collections/{cid}/items/{iid}", params={"f": "html"}))
    for b in bands:
        assert b["name"] in page.text and b["eo:common_name"] in page.text
    cog_url = f"http://testserver/rasters/{href}"
    assert cog_url in page.links
    # the data asset describes its bands (STAC 1.1 "bands", eo and raster fields): the COG's
    data = client.get(f"/stac/collections/{cid}/items/{iid}").json()["assets"]["data"]
    assert data["bands"] == bands
    with rasterio.open(store.path(href)) as src:
        assert [b["name"] for b in data["bands"]] == list(src.descriptions)
        assert [b.get("nodata") for b in data["bands"]] == list(src.nodatavals)
    assert client.get(cog_url).content == store.path(href).read_bytes()
    assert json.loads(page.scripts["features"])["features"][0]["id"] == iid
    # Vietnamese labels
    vi = html_page(client.get(f"/stac/collections/{cid}/items", params={"f": "html", "lang": "vi"}))
    assert "các cảnh" in vi.text


def test_gdal_ogcapi_driver_reads_coverages(live, db, store, tmp_path):
    """GDAL's OGCAPI raster driver (Debian's GDAL 3.6, ``gdal_translate``) reads whole coverages
    from the server: it reads the collection, its domain set and range type, then asks for
    GeoTIFF blocks with ``subset=E(..),N(..)&scaleSize=E(..),N(..)``. Its pixels are the COG's.

    Known limits of that driver, outside this server: it always labels the raster EPSG:4326 (the
    UTM grid of the Sentinel-2 scene keeps its numbers but gets the wrong CRS), and it reads the
    data type only from a range type ``definition`` such as ``UINT16`` (ours holds the band's
    meaning), so it reads Float32. rasterio's bundled GDAL has no OGCAPI driver."""
    import shutil

    exe = shutil.which("gdal_translate", path="/usr/bin:/usr/local/bin")
    if exe is None:
        pytest.skip("GDAL's command line tools (gdal-bin) are not installed")
    base, log = live
    mark = log.stat().st_size
    for cid, band in (("worldpop", 1), ("s2-synthetic", 3)):
        href = db.execute(
            "SELECT asset_href FROM raster.items WHERE collection = %s "
            "ORDER BY dt_start DESC, id LIMIT 1",
            (cid,),
        ).fetchone()[0]
        out = tmp_path / f"{cid}.tif"
        run = subprocess.run(
            [exe, "-q", "-b", str(band), f"OGCAPI:{base}/collections/{cid}", str(out)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            # the driver caches tiles in ./gdalwmscache by default: keep them out of the checkout
            env={**os.environ, "GDAL_DEFAULT_WMS_CACHE_PATH": str(tmp_path / "wmscache")},
        )
        assert run.returncode == 0, run.stderr[-2000:]
        with rasterio.open(out) as got, rasterio.open(store.path(href)) as cog:
            assert (got.width, got.height) == (cog.width, cog.height)
            assert got.transform.almost_equals(cog.transform, precision=1e-9)
            np.testing.assert_array_equal(got.read(1), cog.read(band).astype(got.dtypes[0]))
            if cid == "worldpop":
                assert got.crs.to_epsg() == 4326
    time.sleep(0.3)
    text = log.read_bytes()[mark:].decode(errors="replace")
    assert "scaleSize=" in text and "/coverage?f=GeoTIFF" in text
    assert not re.search(r'/coverage\?[^"]*" (4|5)\d\d', text), text[-2000:]
