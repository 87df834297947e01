"""Read-ahead: a client that follows next links gets the page after from memory, computed while
it read the one before; the pages are exactly those computed on request, never staler than the
catalog snapshot, and only for the same request (path, parameters, headers)."""

from __future__ import annotations

import time

import psycopg
import pytest
from api_helpers import next_link, walk
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from gis.sample import generate
from gis.settings import Settings
from ingest.job import IngestOptions, run_ingest


def _app(dsn: str, **kw) -> TestClient:
    kw.setdefault("catalog_poll_seconds", 3600)  # tests reload the catalog themselves
    return TestClient(create_app(Settings(database_url=dsn), ApiSettings(**kw)))


def _settled(client: TestClient) -> None:
    """Wait until no page is being computed ahead (so the next request finds a finished one)."""
    ra = client.app.state.gis.read_ahead
    deadline = time.monotonic() + 10
    while ra.running() and time.monotonic() < deadline:
        time.sleep(0.02)


def _strip(page: dict) -> dict:
    return {k: v for k, v in page.items() if k != "timeStamp"}


@pytest.mark.parametrize("fmt", ["json", "jsonfg"])
def test_walk_served_ahead_equals_walk_on_request(sample_dsn, fmt):
    url = f"/collections/parcels/items?limit=7&f={fmt}"
    with _app(sample_dsn, read_ahead_bytes=0) as plain:
        assert plain.app.state.gis.read_ahead is None
        ids0, pages0 = walk(plain, url)
    with _app(sample_dsn) as client:
        ids1, pages1 = walk(client, url)
        ra = client.app.state.gis.read_ahead
        # page 1 and page 2 are computed on request, every page after from read-ahead
        assert ra.hits == len(pages1) - 2 > 10
        assert ra.started == ra.hits  # the last page has no next: nothing is read beyond it
    assert ids1 == ids0 and len(set(ids1)) == len(ids1)
    assert [_strip(p) for p in pages1] == [_strip(p) for p in pages0]


def test_page_served_ahead_has_the_headers_and_length(sample_dsn):
    with _app(sample_dsn) as client:
        first = client.get("/collections/parcels/items?limit=5").json()
        second = client.get(next_link(first))
        _settled(client)
        third = client.get(next_link(second.json()))
        assert client.app.state.gis.read_ahead.hits == 1
        assert third.status_code == 200
        assert third.headers["content-type"] == second.headers["content-type"]
        assert third.headers["content-crs"] == second.headers["content-crs"]
        assert third.headers["content-language"] == second.headers["content-language"]
        assert int(third.headers["content-length"]) == len(third.content)
        assert third.json()["numberReturned"] == 5


def test_other_headers_are_a_different_request(sample_dsn):
    """A page computed for one set of headers is not served to another (here: the language)."""
    with _app(sample_dsn) as client:
        vi = {"Accept-Language": "vi"}
        first = client.get("/collections/parcels/items?limit=5", headers=vi).json()
        second = client.get(next_link(first), headers=vi).json()
        _settled(client)
        third = client.get(next_link(second), headers={"Accept-Language": "en"})
        assert client.app.state.gis.read_ahead.hits == 0
        assert third.headers["content-language"] == "en"
        # the same parameters in another order are the same request
        url = next_link(third.json())
        path, query = url.split("?")
        swapped = path + "?" + "&".join(reversed(query.split("&")))
        _settled(client)
        assert client.get(swapped, headers={"Accept-Language": "en"}).status_code == 200
        assert client.app.state.gis.read_ahead.hits == 1


def test_a_changed_catalog_drops_pages_read_ahead(dsn, tmp_path):
    """Data written between two pages: once the catalog snapshot knows, the page computed
    ahead is thrown away and the client gets the new values."""
    paths = generate(tmp_path / "sample")
    result = run_ingest(dsn, "poi", paths["poi"], IngestOptions())
    assert result.outcome == "loaded", result.summary()
    with _app(dsn) as client:
        first = client.get("/collections/poi/items?limit=3").json()
        second = client.get(next_link(first)).json()
        _settled(client)
        third_url = next_link(second)
        ids = [f["id"] for f in second["features"]]
        with psycopg.connect(dsn, autocommit=True) as conn:
            target = conn.execute(
                "SELECT min(poi_id) FROM city.poi WHERE poi_id > %s", (max(ids),)
            ).fetchone()[0]
            conn.execute("UPDATE city.poi SET name = 'Renamed' WHERE poi_id = %s", (target,))
        state = client.app.state.gis
        # the catalog sees the write (table statistics reach other sessions within a second)
        deadline = time.monotonic() + 10
        while not client.portal.call(state.check):
            assert time.monotonic() < deadline, "the catalog did not see the write"
            time.sleep(0.2)
        third = client.get(third_url).json()
        assert state.read_ahead.hits == 0
        names = {f["id"]: f["properties"]["name"] for f in third["features"]}
        assert names[target] == "Renamed"


def test_budget_and_time_limits(sample_dsn):
    # pages larger than the budget are never held (every page here: the links alone are more)
    with _app(sample_dsn, read_ahead_bytes=300) as client:
        _ids, pages = walk(client, "/collections/parcels/items?limit=20")
        ra = client.app.state.gis.read_ahead
        assert ra.started > 0 and ra.hits == 0
        assert len(pages) > 3
    # an abandoned walk: the page computed ahead expires
    with _app(sample_dsn, read_ahead_seconds=0.2) as client:
        first = client.get("/collections/parcels/items?limit=5").json()
        second = client.get(next_link(first)).json()
        _settled(client)
        ra = client.app.state.gis.read_ahead
        assert ra.held() > 0
        time.sleep(0.4)
        assert ra.held() == 0  # let go without waiting for another request
        third = client.get(next_link(second))
        assert third.status_code == 200 and client.app.state.gis.read_ahead.hits == 0


def test_first_pages_and_html_do_not_read_ahead(sample_dsn):
    with _app(sample_dsn) as client:
        for _ in range(3):
            assert client.get("/collections/parcels/items?limit=5").status_code == 200
        page = client.get("/collections/parcels/items?limit=5&f=html")
        assert page.status_code == 200
        nxt = client.get("/collections/parcels/items?limit=5").json()
        assert client.get(next_link(nxt) + "&f=csv").status_code == 200
        assert client.app.state.gis.read_ahead.started == 0
