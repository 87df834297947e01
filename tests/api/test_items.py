"""/collections/{id}/items and /items/{featureId}: Part 1 core, paging, formats, errors."""

from __future__ import annotations

import csv
import io

import orjson
import pytest
from api_helpers import link, next_link, walk

from gis.query import Cursor


def ids_from_db(db, sql: str, params=()) -> list:
    return [r[0] for r in db.execute(sql, params).fetchall()]


# --- basic responses ---------------------------------------------------------------------------


def test_items_geojson(client, db):
    r = client.get("/collections/parcels/items")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/geo+json"
    assert r.headers["content-crs"] == "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"
    doc = r.json()
    assert doc["type"] == "FeatureCollection"
    assert doc["numberReturned"] == 10 == len(doc["features"])  # default limit
    total = db.execute("SELECT count(*) FROM cadastral.parcels_current").fetchone()[0]
    assert doc["numberMatched"] == total
    f = doc["features"][0]
    assert f["type"] == "Feature" and isinstance(f["id"], int)
    assert f["geometry"]["type"] == "MultiPolygon"
    assert set(f["properties"]) == {
        "commune_code",
        "sheet_no",
        "parcel_no",
        "land_use",
        "legal_area_m2",
        "address",
        "owner_type",
        "valid_from",
    }
    assert doc["timeStamp"].endswith("Z")
    rels = {lk["rel"] for lk in doc["links"]}
    assert {"self", "alternate", "next", "collection"} <= rels
    assert "prev" not in rels


def test_geometry_matches_database(client, db):
    doc = client.get("/collections/poi/items?limit=3").json()
    for f in doc["features"]:
        x, y = db.execute(
            "SELECT ST_X(geom), ST_Y(geom) FROM city.poi WHERE poi_id = %s", (f["id"],)
        ).fetchone()
        lon, lat = f["geometry"]["coordinates"]
        assert abs(lon - x) < 1e-8 and abs(lat - y) < 1e-8


def test_single_feature(client, db):
    fid = db.execute("SELECT min(parcel_id) FROM cadastral.parcels_current").fetchone()[0]
    r = client.get(f"/collections/parcels/items/{fid}")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/geo+json"
    assert r.headers["content-crs"] == "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"
    f = r.json()
    assert f["type"] == "Feature" and f["id"] == fid
    rels = {lk["rel"] for lk in f["links"]}
    assert {"self", "alternate", "collection"} <= rels


@pytest.mark.parametrize("fid", ["999999999", "abc", "1.5", "-0", "' OR 1=1 --"])
def test_unknown_feature_404(client, fid):
    r = client.get(f"/collections/parcels/items/{fid}")
    assert r.status_code == 404
    body = r.json()
    assert body["code"] == "NotFound"
    assert "has no feature" in body["description"]


def test_retired_parcel_is_not_in_force_but_is_in_history(client, db):
    retired = db.execute(
        "SELECT parcel_id FROM cadastral.parcels WHERE valid_to IS NOT NULL "
        "ORDER BY parcel_id LIMIT 1"
    ).fetchone()[0]
    assert client.get(f"/collections/parcels/items/{retired}").status_code == 404
    assert client.get(f"/collections/parcel-history/items/{retired}").status_code == 200


# --- limit, offset -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, message",
    [
        ("0", "Parameter limit: 0 is out of range; it must be between 1 and 10000"),
        ("10001", "Parameter limit: 10001 is out of range; it must be between 1 and 10000"),
        ("-5", "Parameter limit: -5 is out of range; it must be between 1 and 10000"),
        ("ten", "Parameter limit: 'ten' is not an integer"),
        ("1.5", "Parameter limit: '1.5' is not an integer"),
    ],
)
def test_limit_errors(client, value, message):
    r = client.get(f"/collections/parcels/items?limit={value}")
    assert r.status_code == 400
    assert r.json() == {"code": "InvalidParameterValue", "description": message}


def test_limit_maximum_accepted(client, db):
    doc = client.get("/collections/parcels/items?limit=10000").json()
    total = db.execute("SELECT count(*) FROM cadastral.parcels_current").fetchone()[0]
    assert doc["numberReturned"] == total == doc["numberMatched"]
    assert next_link(doc) is None


def test_offset(client, db):
    expected = ids_from_db(db, "SELECT parcel_id FROM cadastral.parcels_current ORDER BY parcel_id")
    doc = client.get("/collections/parcels/items?limit=5&offset=7").json()
    assert [f["id"] for f in doc["features"]] == expected[7:12]
    assert link(doc, "prev") == "/collections/parcels/items?limit=5&offset=2"
    # the next link of an offset page is a keyset cursor, not a bigger offset
    nxt = next_link(doc)
    assert "cursor=" in nxt and "offset" not in nxt
    assert [f["id"] for f in client.get(nxt).json()["features"]] == expected[12:17]
    r = client.get("/collections/parcels/items?offset=-1")
    assert r.status_code == 400 and "offset" in r.json()["description"]
    last = client.get(f"/collections/parcels/items?limit=5&offset={len(expected) - 2}").json()
    assert last["numberReturned"] == 2 and last["numberMatched"] == len(expected)
    assert next_link(last) is None


# --- keyset paging -----------------------------------------------------------------------------


def test_keyset_walk_is_complete_without_duplicates(client, db):
    expected = ids_from_db(db, "SELECT parcel_id FROM cadastral.parcels_current ORDER BY parcel_id")
    ids, pages = walk(client, "/collections/parcels/items?limit=37")
    assert ids == expected
    assert len(pages) == -(-len(expected) // 37)
    for i, page in enumerate(pages):
        assert page["numberMatched"] == len(expected)
        assert page["numberReturned"] == len(page["features"])
        nxt = next_link(page)
        if nxt:
            assert "cursor=" in nxt and "offset=" not in nxt
        if i:
            assert link(page, "prev") is not None


def test_keyset_walk_with_filter_and_bbox(client, db):
    bbox = (106.7195, 10.7745, 106.7215, 10.7760)
    expected = ids_from_db(
        db,
        "SELECT parcel_id FROM cadastral.parcels_current WHERE land_use = 'ODT' "
        "AND ST_Intersects(geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326)) "
        "ORDER BY parcel_id",
        bbox,
    )
    assert len(expected) > 20
    ids, _ = walk(
        client, "/collections/parcels/items?limit=9&land_use=ODT&bbox=" + ",".join(map(str, bbox))
    )
    assert ids == expected


@pytest.mark.parametrize(
    "sortby, order",
    [
        ("-height_m", "height_m DESC NULLS FIRST, building_id"),
        ("height_m", "height_m ASC NULLS LAST, building_id"),
        ("use,-storeys", "use ASC NULLS LAST, storeys DESC NULLS FIRST, building_id"),
        ("+name,-building_id", "name ASC NULLS LAST, building_id DESC"),
    ],
)
def test_keyset_walk_sorted_with_nulls(client, db, sortby, order):
    expected = ids_from_db(db, f"SELECT building_id FROM city.buildings ORDER BY {order}")
    ids, pages = walk(client, f"/collections/buildings/items?limit=13&sortby={sortby}")
    assert ids == expected
    # and back again with the prev links, from the last page
    back: list = []
    page = pages[-1]
    while True:
        back = [f["id"] for f in page["features"]] + back
        prev = link(page, "prev")
        if prev is None:
            break
        page = client.get(prev).json()
    assert back == expected


def test_sortby_errors(client):
    r = client.get("/collections/buildings/items?sortby=owner_name")
    assert r.status_code == 400
    assert r.json()["description"].startswith("Parameter sortby: 'owner_name' is not a field")
    r = client.get("/collections/buildings/items?sortby=row_hash")
    assert r.status_code == 400
    r = client.get("/collections/buildings/items?sortby=name,,height_m")
    assert r.status_code == 400


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "eyJrIjpbXX0",
        Cursor(("1",), sort="x").encode(),
        Cursor(("abc",)).encode(),
        Cursor(("1", "2")).encode(),
    ],
)
def test_bad_cursor_400(client, cursor):
    r = client.get(f"/collections/parcels/items?cursor={cursor}")
    assert r.status_code == 400
    assert r.json()["description"].startswith("Parameter cursor")


def test_cursor_and_offset_together_400(client):
    cur = Cursor(("5",)).encode()
    r = client.get(f"/collections/parcels/items?cursor={cur}&offset=3")
    assert r.status_code == 400


# --- bbox --------------------------------------------------------------------------------------


def test_bbox(client, db):
    bbox = (106.7195, 10.7745, 106.7205, 10.7755)
    expected = ids_from_db(
        db,
        "SELECT parcel_id FROM cadastral.parcels_current WHERE "
        "ST_Intersects(geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326)) "
        "ORDER BY parcel_id",
        bbox,
    )
    doc = client.get(
        "/collections/parcels/items?limit=10000&bbox=" + ",".join(map(str, bbox))
    ).json()
    assert [f["id"] for f in doc["features"]] == expected
    assert doc["numberMatched"] == len(expected)
    six = client.get(
        "/collections/parcels/items?limit=10000&bbox="
        f"{bbox[0]},{bbox[1]},-10,{bbox[2]},{bbox[3]},100"
    ).json()
    assert [f["id"] for f in six["features"]] == expected


def test_bbox_elsewhere_is_empty(client):
    doc = client.get("/collections/parcels/items?bbox=105.8,21.0,105.9,21.1").json()
    assert doc["features"] == [] and doc["numberMatched"] == 0


@pytest.mark.parametrize(
    "bbox, words",
    [
        ("1,2,3", "is not a bounding box"),
        ("a,b,c,d", "is not a bounding box"),
        ("106.8,10.8,106.7", "is not a bounding box"),
        ("106.7,10.8,106.8,10.7", "lower latitude above its upper one"),
        ("106.7,95,106.8,96", "latitude outside -90..90"),
        ("106.7,10.7,106.8,10.8,1", "is not a bounding box"),
        ("nan,10,106,11", "is not a bounding box"),
    ],
)
def test_bad_bbox_400(client, bbox, words):
    r = client.get(f"/collections/parcels/items?bbox={bbox}")
    assert r.status_code == 400
    d = r.json()["description"]
    assert d.startswith("Parameter bbox:") and words in d, d


# --- datetime ----------------------------------------------------------------------------------


def test_datetime_on_history(client, db):
    def expected(where, params=()):
        return ids_from_db(
            db, f"SELECT parcel_id FROM cadastral.parcels WHERE {where} ORDER BY parcel_id", params
        )

    all_2024 = expected(
        "valid_from <= '2024-06-01' AND (valid_to IS NULL OR valid_to > '2024-06-01')"
    )
    ids, _ = walk(
        client, "/collections/parcel-history/items?limit=10000&datetime=2024-06-01T00:00:00Z"
    )
    assert ids == all_2024
    now = expected("valid_from <= now() AND (valid_to IS NULL OR valid_to > now())")
    ids, _ = walk(client, "/collections/parcel-history/items?limit=10000&datetime=2025-06-01/..")
    assert ids == expected("valid_to IS NULL OR valid_to > '2025-06-01'")
    assert set(now) <= set(ids)
    ids, _ = walk(client, "/collections/parcel-history/items?limit=10000&datetime=../2024-12-31")
    assert ids == expected("valid_from <= '2024-12-31T23:59:59.999999Z'")
    # the versions replaced on 2025-01-01 are valid during 2024 but not after
    changed = expected("valid_to IS NOT NULL")
    assert changed
    ids, _ = walk(client, "/collections/parcel-history/items?limit=10000&datetime=2025-03-01")
    assert not set(changed) & set(ids)


def test_datetime_on_instants(client, db):
    # planning lots: the approval date is an instant
    day = db.execute("SELECT min(approval_date) FROM planning.lots_published").fetchone()[0]
    n = db.execute(
        "SELECT count(*) FROM planning.lots_published WHERE approval_date = %s", (day,)
    ).fetchone()[0]
    doc = client.get(
        f"/collections/planning-lots/items?limit=1000&datetime={day.isoformat()}"
    ).json()
    assert doc["numberReturned"] == n > 0
    doc = client.get("/collections/planning-lots/items?datetime=1990-01-01/1990-12-31").json()
    assert doc["numberReturned"] == 0


@pytest.mark.parametrize(
    "value",
    ["yesterday", "2024-13-01", "2024-01-01/2023-01-01", "a/b/c", "2024-01-01T25:00:00Z", ".."],
)
def test_bad_datetime_400(client, value):
    r = client.get(f"/collections/parcel-history/items?datetime={value}")
    assert r.status_code == 400
    assert r.json()["description"].startswith("Parameter datetime:")


def test_datetime_on_collection_without_time_400(client):
    r = client.get("/collections/roads/items?datetime=2024-01-01")
    assert r.status_code == 400
    assert "no temporal property" in r.json()["description"]


# --- properties and property filters -------------------------------------------------------------


def test_properties_subset(client):
    doc = client.get("/collections/parcels/items?properties=land_use,sheet_no&limit=3").json()
    for f in doc["features"]:
        assert list(f["properties"]) == ["land_use", "sheet_no"]
    doc = client.get("/collections/parcels/items?properties=&limit=2").json()
    assert all(f["properties"] == {} for f in doc["features"])
    r = client.get("/collections/parcels/items?properties=land_use,owner_name")
    assert r.status_code == 400
    assert r.json()["description"].startswith("Parameter properties: 'owner_name' is not a field")


def test_property_filters(client, db):
    expected = ids_from_db(
        db,
        "SELECT parcel_id FROM cadastral.parcels_current WHERE land_use = 'ODT' "
        "AND sheet_no = 2 ORDER BY parcel_id",
    )
    doc = client.get("/collections/parcels/items?land_use=ODT&sheet_no=2&limit=10000").json()
    assert [f["id"] for f in doc["features"]] == expected
    assert doc["numberMatched"] == len(expected) > 0
    one = expected[0]
    doc = client.get(f"/collections/parcels/items?parcel_id={one}").json()
    assert [f["id"] for f in doc["features"]] == [one]
    doc = client.get("/collections/roads/items?oneway=true&limit=1000").json()
    assert doc["features"] and all(f["properties"]["oneway"] is True for f in doc["features"])
    doc = client.get(
        "/collections/parcel-history/items?valid_from=2025-01-01T00:00:00Z&limit=1000"
    ).json()
    assert (
        doc["numberReturned"]
        == db.execute(
            "SELECT count(*) FROM cadastral.parcels WHERE valid_from = '2025-01-01'"
        ).fetchone()[0]
    )


@pytest.mark.parametrize(
    "query, words",
    [
        ("sheet_no=abc", "Parameter sheet_no: 'abc' is not an integer"),
        ("sheet_no=99999999999", "Parameter sheet_no: '99999999999' is out of the range"),
        ("legal_area_m2=big", "Parameter legal_area_m2: 'big' is not a number"),
        ("valid_from=someday", "Parameter valid_from: 'someday' is not an RFC 3339"),
        ("owner_name=Nguyễn", "Unknown parameter 'owner_name'"),
        ("row_hash=abc", "Unknown parameter 'row_hash'"),
        ("LAND_USE=ODT", "Unknown parameter 'LAND_USE'"),
        ("land_use=ODT&land_use=TMD", "Parameter land_use is given more than once"),
    ],
)
def test_property_filter_errors(client, query, words):
    r = client.get(f"/collections/parcels/items?{query}")
    assert r.status_code == 400
    assert words in r.json()["description"]


def test_standard_parameters_tolerated(client):
    r = client.get("/collections/parcels/items?f=json&lang=vi&limit=2&skipGeometry=true")
    assert r.status_code == 200
    assert all(f["geometry"] is None for f in r.json()["features"])


# --- formats -----------------------------------------------------------------------------------


def test_csv(client, db):
    r = client.get("/collections/parcels/items?f=csv&limit=20")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == [
        "parcel_id",
        "commune_code",
        "sheet_no",
        "parcel_no",
        "land_use",
        "legal_area_m2",
        "address",
        "owner_type",
        "valid_from",
        "geometry",
    ]
    assert len(rows) == 21
    expected = ids_from_db(
        db, "SELECT parcel_id FROM cadastral.parcels_current ORDER BY parcel_id LIMIT 20"
    )
    assert [int(r[0]) for r in rows[1:]] == expected
    assert all(r[-1].startswith("MULTIPOLYGON(((106.") for r in rows[1:])
    by_accept = client.get("/collections/parcels/items?limit=2", headers={"Accept": "text/csv"})
    assert by_accept.headers["content-type"].startswith("text/csv")


def test_csv_empty_page_has_header(client):
    r = client.get("/collections/wards-2025/items?f=csv")
    assert r.status_code == 200
    assert r.text.splitlines()[0].startswith("unit_id,code,name")


def test_jsonfg(client):
    r = client.get("/collections/parcel-history/items?f=jsonfg&limit=3")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.ogc.fg+json"
    doc = r.json()
    assert doc["conformsTo"] == ["http://www.opengis.net/spec/json-fg-1/0.2/conf/core"]
    assert doc["featureType"] == "parcel-history"
    assert doc["coordRefSys"] == "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
    f = doc["features"][0]
    assert f["featureType"] == "parcel-history"
    assert f["place"] is None and f["geometry"]["type"] == "MultiPolygon"
    assert f["time"]["interval"][0].startswith("2024-01-01")
    assert f["time"]["interval"][1] in ("..",) or f["time"]["interval"][1].startswith("2025")
    lots = client.get("/collections/planning-lots/items?f=jsonfg&limit=1").json()
    assert "date" in lots["features"][0]["time"]
    roads = client.get("/collections/roads/items?f=jsonfg&limit=1").json()
    assert roads["features"][0]["time"] is None
    by_accept = client.get(
        "/collections/roads/items?limit=1", headers={"Accept": "application/vnd.ogc.fg+json"}
    )
    assert by_accept.headers["content-type"] == "application/vnd.ogc.fg+json"


def test_jsonfg_single_feature(client):
    r = client.get("/collections/poi/items/1?f=jsonfg")
    assert r.status_code == 200
    f = r.json()
    assert f["featureType"] == "poi" and f["coordRefSys"].endswith("CRS84")


def test_html_items_page(client):
    r = client.get("/collections/parcels/items?f=html&limit=5&lang=vi")
    assert r.status_code == 200
    page = r.text
    assert page.startswith("<!doctype html>")
    assert '<html lang="vi">' in page
    assert "/static/leaflet/leaflet.js" in page and "/static/gis/map.js" in page
    assert "Thửa đất (hiện hành)" in page
    assert "Trang sau" in page  # next page link
    assert 'id="features" type="application/json"' in page
    embedded = page.split('id="features" type="application/json">', 1)[1].split("</script>", 1)[0]
    gj = orjson.loads(embedded)
    assert len(gj["features"]) == 5
    assert "unpkg" not in page and "cdnjs" not in page and "jsdelivr" not in page


def test_html_feature_page(client):
    r = client.get("/collections/buildings/items/3", headers={"Accept": "text/html"})
    assert r.status_code == 200
    assert "<h1>Buildings: 3</h1>" in r.text
    assert "leaflet.js" in r.text


def test_html_escapes_values(client):
    # the map data is embedded as JSON: '<' cannot close the script element
    page = client.get("/collections/poi/items?f=html&limit=20").text
    embedded = page.split('id="features" type="application/json">', 1)[1].split("</script>", 1)[0]
    assert "<" not in embedded


def test_unknown_format(client):
    r = client.get("/collections/parcels/items?f=xml")
    assert r.status_code == 400
    assert r.json()["description"] == (
        "Parameter f: 'xml' is not a format of this resource; give one of: json, html, csv, jsonfg"
    )
