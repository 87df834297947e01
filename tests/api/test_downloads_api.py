"""The downloads part of the API: listing, enclosure links, files with ETag, ranges and 304, errors.

The demo dataset is published with the real publishing job (:func:`gis.downloads.publish`, tile packages
through tiles.export as `gis publish` does) into a data folder of the test; the API serves it. One test
reads a file with GDAL through /vsicurl/ (HTTP range requests) from a real `gis serve` process.
"""

from __future__ import annotations

import hashlib
import html as htmllib
import re
import time
from datetime import UTC
from email.utils import formatdate
from pathlib import Path

import httpx
import psycopg
import pyogrio
import pytest
from api_helpers import GisServer
from fastapi.testclient import TestClient

from api.app import create_app
from api.downloads import _size_text
from api.settings import ApiSettings
from gis import downloads as gdl
from gis.cli import _tile_packager
from gis.settings import Settings


@pytest.fixture(scope="module")
def data_dir(sample_dsn, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("var")
    gdl.publish(sample_dsn, folder, tile_packager=_tile_packager())
    return folder


@pytest.fixture(scope="module")
def dl(sample_dsn, data_dir) -> TestClient:
    app = create_app(Settings(database_url=sample_dsn, data_dir=data_dir), ApiSettings(catalog_poll_seconds=0.2))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def files(sample_dsn, data_dir) -> list[gdl.DownloadFile]:
    with psycopg.connect(sample_dsn) as conn:
        return gdl.published(conn)


def test_listing_and_enclosure_links(dl, files):
    doc = dl.get("/downloads").json()
    assert len(doc["downloads"]) == len(files) > 50
    assert {(d["collection"], d["format"]) for d in doc["downloads"]} == {(f.collection_id, f.format) for f in files}
    parcels = [f for f in files if f.collection_id == "parcels"]
    assert {f.format for f in parcels} == set(gdl.VECTOR_FORMATS)
    coll = dl.get("/collections/parcels").json()
    links = [lk for lk in coll["links"] if lk["rel"] == "enclosure"]
    assert [(lk["href"], lk["type"], lk["length"]) for lk in links] == [
        (f"http://testserver{f.path}", f.media_type, f.size) for f in parcels]
    assert all(lk["title"].startswith("Download: ") for lk in links)
    listing = dl.get("/collections").json()["collections"]
    assert any(lk["rel"] == "enclosure" for c in listing for lk in c["links"])
    one = dl.get("/collections/parcels/downloads").json()["downloads"]
    assert [d["href"] for d in one] == [lk["href"] for lk in links]
    assert any(lk["href"].endswith("/downloads") for lk in dl.get("/").json()["links"])


def test_enclosure_titles_in_both_languages(dl, files):
    f = next(f for f in files if f.collection_id == "parcels" and f.format == "fgb")
    [link] = [lk for lk in dl.get("/collections/parcels").json()["links"] if lk.get("href", "").endswith(f.path)]
    count = f"{f.feature_count:,}"
    assert link["title"] == (f"Download: FlatGeobuf (with spatial index) ({link['title'].split('(')[2].split(',')[0]}, "
                             f"{count} features) / Tải về: FlatGeobuf (có chỉ mục không gian) "
                             f"({link['title'].split('(')[2].split(',')[0]}, {count.replace(',', '.')} đối tượng)")
    vi = dl.get("/downloads?lang=vi")
    assert vi.headers["content-language"] == "vi"
    assert {d["title"] for d in vi.json()["downloads"] if d["format"] == "csv"} == {"CSV (hình học dạng WKT)"}


def test_html_pages_list_every_file_in_both_languages(dl, files):
    def cells(page: str) -> list[list[str]]:
        rows = re.findall(r"<tr>(.*?)</tr>", page, re.DOTALL)
        return [[htmllib.unescape(re.sub(r"<[^>]+>", " ", c)).split() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.DOTALL)]
                for r in rows if "<td" in r]

    for lang, head, word in (("en", "Open-data downloads", "Features"), ("vi", "Dữ liệu mở để tải về", "Số đối tượng")):
        r = dl.get(f"/downloads?f=html&lang={lang}")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), r.text[:300]
        assert r.headers["content-language"] == lang
        page = r.text
        assert f"<h1>{head}</h1>" in page and f"<th>{word}</th>" in page
        rows = cells(page)
        assert len(rows) == len(files)
        for f, row in zip(files, rows, strict=True):
            layer, fmt, name, size, count, digest, built = row
            assert layer[-1] == f.collection_id and name == [f.filename]
            assert " ".join(fmt) == f"{f.title_in(lang)} {f.media_type}"
            assert " ".join(size) == _size_text(f.size)
            expect = "-" if f.feature_count is None else f"{f.feature_count:,}"
            assert count == [expect.replace(",", ".") if lang == "vi" else expect]
            assert digest[0] == f.sha256 and digest[1] == f.filename + ".sha256"
            assert built == [*f.built_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M").split(), "UTC"]
            assert f'href="http://testserver{f.path}"' in page
        # the other language and the JSON are linked
        assert "lang=" + ("vi" if lang == "en" else "en") in page and 'type="application/json"' in page
    # the landing page and each collection with files link their page
    assert any(lk["href"] == "http://testserver/downloads?f=html" and lk["type"] == "text/html"
               for lk in dl.get("/").json()["links"])
    assert any(lk["href"] == "http://testserver/collections/poi/downloads?f=html"
               for lk in dl.get("/collections/poi").json()["links"])
    # a browser (Accept: text/html) gets the page; one collection's page lists its files only
    assert dl.get("/downloads", headers={"Accept": "text/html"}).headers["content-type"].startswith("text/html")
    page = dl.get("/collections/poi/downloads?f=html&lang=vi").text
    poi = [f for f in files if f.collection_id == "poi"]
    assert len(cells(page)) == len(poi) > 5 and "parcels.gpkg" not in page and "poi.gpkg" in page
    assert "Tệp tải về của lớp dữ liệu" in page
    # bad parameters are clear errors
    for url, text in (("/downloads?f=xml", "Parameter f"), ("/downloads?lang=fr", "Parameter lang"),
                      ("/collections/poi/downloads?f=pdf", "Parameter f")):
        r = dl.get(url)
        assert r.status_code == 400 and text in r.json()["description"], (url, r.text[:200])
    r = dl.get("/collections/nope/downloads?f=html")
    assert r.status_code == 404 and "nope" in r.text


def test_every_file_is_served_whole_with_its_checksum(dl, files):
    for f in files:
        r = dl.get(f.path)
        assert r.status_code == 200, (f.path, r.text[:200])
        assert hashlib.sha256(r.content).hexdigest() == f.sha256
        assert r.headers["etag"] == f'"{f.sha256}"'
        assert int(r.headers["content-length"]) == f.size == len(r.content)
        assert r.headers["content-type"] == f.media_type
        assert r.headers["accept-ranges"] == "bytes"
        assert r.headers["last-modified"] == formatdate(f.built_at.timestamp(), usegmt=True)
        assert r.headers["content-disposition"] == f'attachment; filename="{f.filename}"'
        s = dl.get(f.path + ".sha256")
        assert s.status_code == 200 and s.text == f"{f.sha256}  {f.filename}\n"


def test_head_ranges_and_conditional_requests(dl, files):
    f = next(f for f in files if f.format == "gpkg" and f.collection_id == "parcels")
    whole = dl.get(f.path).content
    h = dl.head(f.path)
    assert h.status_code == 200 and h.content == b"" and int(h.headers["content-length"]) == f.size
    r = dl.get(f.path, headers={"Range": "bytes=0-15"})
    assert r.status_code == 206 and r.content == whole[:16] == b"SQLite format 3\x00"
    assert r.headers["content-range"] == f"bytes 0-15/{f.size}"
    r = dl.get(f.path, headers={"Range": "bytes=-100"})
    assert r.status_code == 206 and r.content == whole[-100:]
    r = dl.get(f.path, headers={"Range": f"bytes={f.size + 10}-"})
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{f.size}"
    r = dl.get(f.path, headers={"Range": "lines=1-2"})
    assert r.status_code == 400 and r.json()["code"] == "InvalidParameterValue"
    # If-Range with another version's ETag: the whole (new) file, never a splice of two versions
    r = dl.get(f.path, headers={"Range": "bytes=0-15", "If-Range": '"' + "0" * 64 + '"'})
    assert r.status_code == 200 and r.content == whole
    r = dl.get(f.path, headers={"Range": "bytes=0-15", "If-Range": f'"{f.sha256}"'})
    assert r.status_code == 206
    assert dl.get(f.path, headers={"If-None-Match": f'"{f.sha256}"'}).status_code == 304
    assert dl.get(f.path, headers={"If-None-Match": '"other"'}).status_code == 200
    lm = dl.get(f.path).headers["last-modified"]
    assert dl.get(f.path, headers={"If-Modified-Since": lm}).status_code == 304
    assert dl.get(f.path, headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}).status_code == 200


def test_bad_requests_are_clear_errors(dl, sample_dsn):
    cases = {
        "/downloads/nope/nope.gpkg": (404, "no public collection 'nope'"),
        "/downloads/parcels/parcels.xlsx": (404, "has no download 'parcels.xlsx'; its files: parcels.gpkg"),
        "/downloads/parcels/.hidden": (400, "filename"),
        "/downloads/parcels/..%2F..%2Fetc%2Fpasswd": (404, "There is no resource"),
        "/downloads/parcels/%2e%2e": (400, "filename"),
        "/downloads/parcels/.objects": (400, "filename"),
        "/collections/nope/downloads": (404, "no public collection 'nope'"),
    }
    for url, (status, text) in cases.items():
        r = dl.get(url)
        assert r.status_code == status, (url, r.text)
        assert r.headers["content-type"] == "application/json" and text in r.json()["description"], url
    # a layer made private is no longer served, at once (the registry is read on each request)
    with psycopg.connect(sample_dsn, autocommit=True) as conn:
        conn.execute("UPDATE gis_meta.collections SET public = false WHERE id = 'poi'")
        try:
            r = dl.get("/downloads/poi/poi.gpkg")
            assert r.status_code == 404 and "no public collection 'poi'" in r.json()["description"]
            assert dl.get("/collections/poi/downloads").status_code == 404
            assert all(d["collection"] != "poi" for d in dl.get("/downloads").json()["downloads"])
        finally:
            conn.execute("UPDATE gis_meta.collections SET public = true WHERE id = 'poi'")


def test_a_rebuild_switches_atomically(dl, sample_dsn, data_dir):
    path = "/downloads/roads/roads.geojson"
    old = dl.get(path)
    with psycopg.connect(sample_dsn, autocommit=True) as conn:
        conn.execute("UPDATE city.roads SET name = name || ' *' WHERE road_id = (SELECT min(road_id) FROM city.roads)")
    [res] = gdl.publish(sample_dsn, data_dir, ["roads"], formats=["geojson"])
    assert res.built
    new = dl.get(path)
    assert new.headers["etag"] == f'"{res.sha256}"' != old.headers["etag"]
    assert hashlib.sha256(new.content).hexdigest() == res.sha256
    # the enclosure link follows the registry within the poll interval
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        links = dl.get("/collections/roads").json()["links"]
        if any(lk["rel"] == "enclosure" and lk["length"] == res.size and lk["href"].endswith(".geojson")
               for lk in links):
            break
        time.sleep(0.2)
    else:
        pytest.fail("the enclosure link did not follow the rebuild")


def test_gdal_reads_a_download_over_http_with_ranges(sample_dsn, data_dir, files):
    """A real client (GDAL /vsicurl/) reads the FlatGeobuf with range requests from a real server."""
    env = {"DATABASE_URL": sample_dsn, "GIS_DATA_DIR": str(data_dir)}
    with GisServer(env, data_dir / "serve.log", ("--log-level", "warning"), ready="/conformance") as srv:
        base = srv.base
        f = next(f for f in files if f.collection_id == "parcels" and f.format == "fgb")
        info = pyogrio.read_info(f"/vsicurl/{base}{f.path}")
        assert info["features"] == f.feature_count
        # a bbox read uses the spatial index: a few ranges, not the whole file
        x0, y0, x1, y1 = info["total_bounds"]
        df = pyogrio.read_dataframe(f"/vsicurl/{base}{f.path}", bbox=(x0, y0, (x0 + x1) / 2, (y0 + y1) / 2))
        assert 0 < len(df) < f.feature_count
        r = httpx.get(base + f.path, headers={"Range": "bytes=0-7"})
        assert r.status_code == 206 and r.content == b"fgb\x03fgb\x01"
