"""Large pages are read with a server-side cursor, a chunk at a time: chunk boundaries, the extra
row that says a next page exists, the VN-2000 path and numberMatched rules, with tiny chunks."""

from __future__ import annotations

import pytest
from api_helpers import link, next_link, walk
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from gis.crs import make_transformer
from gis.settings import Settings


@pytest.fixture(scope="module")
def chunky(sample_dsn):
    """The API reading 7 rows at a time, counting at most 50 features, no exact totals."""
    settings = ApiSettings(stream_chunk=7, count_cap=50, exact_total_max_rows=0)
    with TestClient(create_app(Settings(database_url=sample_dsn), settings)) as c:
        yield c


def expected_ids(db) -> list[int]:
    return [
        r[0]
        for r in db.execute("SELECT parcel_id FROM cadastral.parcels_current ORDER BY parcel_id")
    ]


@pytest.mark.parametrize("limit", [6, 7, 8, 14, 21, 50])
def test_walk_across_chunk_boundaries(chunky, db, limit):
    ids, pages = walk(chunky, f"/collections/parcels/items?limit={limit}")
    assert ids == expected_ids(db)
    assert all(p["numberReturned"] == limit for p in pages[:-1])


def test_chunked_csv_and_jsonfg(chunky, db):
    r = chunky.get("/collections/parcels/items?limit=30&f=csv")
    lines = r.text.strip().splitlines()
    assert len(lines) == 31
    assert [int(x.split(",", 1)[0]) for x in lines[1:]] == expected_ids(db)[:30]
    doc = chunky.get("/collections/parcels/items?limit=30&f=jsonfg").json()
    assert [f["id"] for f in doc["features"]] == expected_ids(db)[:30]


def test_chunked_vn2000(chunky, client):
    crs = "http://www.opengis.net/def/crs/EPSG/0/9210"
    a = chunky.get(f"/collections/buildings/items?limit=40&crs={crs}").json()
    b = client.get("/collections/buildings/items?limit=40").json()
    t = make_transformer("EPSG:4326", "EPSG:9210")
    assert [f["id"] for f in a["features"]] == [f["id"] for f in b["features"]]
    for fa, fb in zip(a["features"], b["features"], strict=True):
        x, y = fa["geometry"]["coordinates"][0][0][0]
        lon, lat = fb["geometry"]["coordinates"][0][0][0]
        ex, ey = t.transform_xy(lon, lat)
        assert abs(x - ex) < 0.01 and abs(y - ey) < 0.01


def test_number_matched_rules(chunky, db):
    total = len(expected_ids(db))
    # unfiltered, no exact total, more than the count cap: left out
    first = chunky.get("/collections/parcels/items?limit=10").json()
    assert "numberMatched" not in first and first["numberReturned"] == 10
    # filtered, under the cap: counted exactly, and carried along by the cursor
    n = db.execute(
        "SELECT count(*) FROM cadastral.parcels_current WHERE land_use = 'DGD'"
    ).fetchone()[0]
    assert 10 < n <= 50
    page = chunky.get("/collections/parcels/items?limit=4&land_use=DGD").json()
    assert page["numberMatched"] == n
    page2 = chunky.get(next_link(page)).json()
    assert page2["numberMatched"] == n
    # the last page knows it exactly from its position
    last = chunky.get(f"/collections/parcels/items?limit=10&offset={total - 3}").json()
    assert last["numberReturned"] == 3 and last["numberMatched"] == total
    ids, pages = walk(chunky, "/collections/parcels/items?limit=250")
    assert "numberMatched" not in pages[0] and pages[-1]["numberMatched"] == total


def test_prev_from_deep_page(chunky, db):
    expected = expected_ids(db)
    _, pages = walk(chunky, "/collections/parcels/items?limit=25", max_pages=5)
    prev = chunky.get(link(pages[4], "prev")).json()
    assert [f["id"] for f in prev["features"]] == expected[75:100]
    assert [f["id"] for f in chunky.get(next_link(prev)).json()["features"]] == expected[100:125]
