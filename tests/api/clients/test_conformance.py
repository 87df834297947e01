"""Conformance of the live server, from the abstract test suites (ATS) of the classes it declares.

OGC API - Features Part 1 (core, geojson, html, oas30), Part 2 (crs), Part 3 (queryables,
queryables as parameters, filter, features-filter), the CQL2 classes, records sorting and JSON-FG
core: every class the server lists at ``/conformance`` must be covered here
(:data:`COVERED`), and each test uses the server as a black box over HTTP, with SQL on its
database as the oracle for which features a request must return.

The ``ogctests`` package on PyPI (0.1.15, "[WIP]") was tried first; see the report of issue 3:
its dependency pins (httpx<0.28, pytest<9, pyarrow<18) do not fit this environment, and its
Part 3 suite cannot run against any server that does not send ``Link`` headers.
"""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import openapi_spec_validator
import pytest
import shapely
from client_helpers import count, ids

P1 = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/"
P2 = "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/"
P3 = "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/"
COMMON1 = "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/"
COMMON2 = "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/"
CQL2 = "http://www.opengis.net/spec/cql2/1.0/conf/"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/{}"

#: declared class -> the tests of this module that check it
COVERED = {
    COMMON1 + "core": [
        "test_landing_page",
        "test_unknown_parameters_are_400",
        "test_extreme_values_are_400_or_answered_never_500",
    ],
    COMMON1 + "landing-page": ["test_landing_page"],
    COMMON1 + "json": ["test_json_encodings"],
    COMMON1 + "html": ["test_html_encoding"],
    COMMON1 + "oas30": ["test_api_definition"],
    COMMON2 + "collections": ["test_collections", "test_collection"],
    P1 + "core": [
        "test_landing_page",
        "test_api_definition",
        "test_conformance_declaration",
        "test_collections",
        "test_collection",
        "test_items_limit",
        "test_items_paging_follows_next_links",
        "test_items_bbox",
        "test_items_datetime",
        "test_items_response",
        "test_feature",
    ],
    P1 + "oas30": ["test_api_definition"],
    P1 + "html": ["test_html_encoding"],
    P1 + "geojson": ["test_geojson_encoding"],
    P2 + "crs": ["test_crs_lists", "test_crs_parameter", "test_bbox_crs", "test_content_crs"],
    P3 + "queryables": ["test_queryables"],
    P3 + "queryables-query-parameters": ["test_queryables_as_query_parameters"],
    P3 + "filter": ["test_filter_cases", "test_filter_errors", "test_filter_crs"],
    P3 + "features-filter": ["test_filter_cases", "test_filter_lang_default"],
    "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf/sorting": ["test_sortby"],
    "http://www.opengis.net/spec/json-fg-1/0.2/conf/core": ["test_jsonfg"],
    CQL2 + "cql2-text": ["test_filter_cases"],
    CQL2 + "cql2-json": ["test_filter_cases"],
    CQL2 + "basic-cql2": ["test_filter_cases"],
    CQL2 + "advanced-comparison-operators": ["test_filter_cases"],
    CQL2 + "case-insensitive-comparison": ["test_filter_cases"],
    CQL2 + "accent-insensitive-comparison": ["test_accent_insensitive"],
    CQL2 + "basic-spatial-functions": ["test_filter_cases"],
    CQL2 + "basic-spatial-functions-plus": ["test_filter_cases"],
    CQL2 + "spatial-functions": ["test_filter_cases", "test_spatial_equals_and_touches"],
    CQL2 + "temporal-functions": ["test_filter_cases"],
    CQL2 + "arithmetic": ["test_filter_cases"],
    CQL2 + "property-property": ["test_filter_cases"],
}

JSON = "application/json"
GEOJSON = "application/geo+json"
HTML = "text/html"
SCHEMA = "application/schema+json"


def _media(r) -> str:
    return r.headers["content-type"].split(";")[0].strip()


def _links(doc: dict, rel: str) -> list[dict]:
    return [lk for lk in doc.get("links", []) if lk["rel"] == rel]


def _all(http, cid: str, **params) -> tuple[list, dict]:
    """Every feature of one request (one page of up to 10 000); checks the page is whole."""
    r = http.get(f"/collections/{cid}/items", params={"limit": 10000, **params})
    assert r.status_code == 200, r.text
    doc = r.json()
    got = sorted(f["id"] for f in doc["features"])
    assert doc["numberReturned"] == len(got)
    assert doc["numberMatched"] == len(got)  # numberMatched is exact, whatever the filter
    assert not _links(doc, "next")
    return got, doc


# ---------------------------------------------------------------------------------------------
# every declared class is covered
# ---------------------------------------------------------------------------------------------


#: classes of the other parts of the API (api/parts.py), tested with their own code: prefix ->
#: the test modules that exercise them
ELSEWHERE_TESTS = {
    "http://www.opengis.net/spec/ogcapi-tiles-1/": ("api/test_tiles.py", "tiles/test_vector_tiles.py"),
    "http://www.opengis.net/spec/tms/": ("api/test_tiles.py",),
    "http://www.opengis.net/spec/ogcapi-coverages-1/": ("api/test_coverages.py",),
    "http://www.opengis.net/spec/ogcapi-processes-1/": ("api/test_processes.py",),
    "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf/record": ("api/test_records.py",),
    "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf/records-api": ("api/test_records.py",),
    "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf/searchable": ("api/test_records.py",),
    "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf/json": ("api/test_records.py",),
    "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf/html": ("api/test_records.py",),
}
ELSEWHERE = tuple(ELSEWHERE_TESTS)


def test_other_parts_have_their_tests():
    tests = Path(__file__).resolve().parents[2]
    for prefix, modules in ELSEWHERE_TESTS.items():
        assert any((tests / m).is_file() for m in modules), (prefix, modules)


def test_every_declared_class_is_covered(http):
    declared = http.get("/conformance").json()["conformsTo"]
    assert len(declared) == len(set(declared))
    missing = [c for c in declared if c not in COVERED and not c.startswith(ELSEWHERE)]
    assert not missing, f"declared but not tested: {missing}"
    tests = {name for name in globals() if name.startswith("test_")}
    assert {t for ts in COVERED.values() for t in ts} <= tests


# ---------------------------------------------------------------------------------------------
# Part 1 core: landing page, API definition, conformance
# ---------------------------------------------------------------------------------------------


def test_landing_page(http, live):
    """/ats/core/root-op, /ats/core/root-success."""
    r = http.get("/", headers={"Accept": JSON})
    assert r.status_code == 200 and _media(r) == JSON
    doc = r.json()
    rels = {lk["rel"] for lk in doc["links"]}
    assert {"self", "service-desc", "service-doc", "conformance", "data"} <= rels
    for lk in doc["links"]:
        assert lk["href"].startswith(live.base)
        target = http.get(lk["href"], headers={"Accept": lk.get("type", JSON)})
        assert target.status_code == 200, lk
        assert _media(target) == lk["type"].split(";")[0], lk


def test_api_definition(http):
    """/ats/core/api-definition-op, -success; /conf/oas30: a valid OpenAPI 3.0 document."""
    landing = http.get("/").json()
    (desc,) = _links(landing, "service-desc")
    r = http.get(desc["href"], headers={"Accept": "application/vnd.oai.openapi+json;version=3.0"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.oai.openapi+json;version=3.0"
    doc = r.json()
    assert doc["openapi"].startswith("3.0.")
    openapi_spec_validator.validate(doc)
    for path in (
        "/",
        "/conformance",
        "/collections",
        "/collections/{collectionId}",
        "/collections/{collectionId}/items",
        "/collections/{collectionId}/items/{featureId}",
    ):
        assert "get" in doc["paths"][path], path
    op_ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(op_ids) == len(set(op_ids))
    items = doc["paths"]["/collections/{collectionId}/items"]["get"]["parameters"]
    params = {p["name"] for p in items if "name" in p} | set(doc["components"]["parameters"])
    assert {"limit", "bbox", "datetime", "crs", "bbox-crs", "filter", "filter-lang"} <= params
    (service_doc,) = _links(landing, "service-doc")
    r = http.get(service_doc["href"])
    assert r.status_code == 200 and _media(r) == HTML


def test_conformance_declaration(http):
    """/ats/core/conformance-op, -success."""
    r = http.get("/conformance", headers={"Accept": JSON})
    assert r.status_code == 200 and _media(r) == JSON
    conf = r.json()["conformsTo"]
    assert all(isinstance(c, str) for c in conf)
    for c in ("core", "geojson", "oas30", "html"):
        assert P1 + c in conf


def test_unknown_parameters_are_400(http):
    """/req/core/query-param-unknown and -invalid: 400 with an exception document."""
    for path, params in [
        ("/collections/parcels/items", {"colour": "red"}),
        ("/collections/parcels/items", {"limit": "ten"}),
        ("/collections/parcels/items", {"bbox": "1,2,3"}),
        ("/collections/parcels/items", {"datetime": "yesterday"}),
        ("/collections/parcels", {"bbox": "1,2,3,4"}),
        ("/collections", {"f": "xml"}),
        ("/", {"lang": "fr"}),
    ]:
        r = http.get(path, params=params)
        assert r.status_code == 400, (path, params)
        assert _media(r) == JSON and r.json()["code"] and r.json()["description"]
    r = http.get("/collections/nope/items")
    assert r.status_code == 404 and r.json()["code"] == "NotFound"


def test_extreme_values_are_400_or_answered_never_500(http, live_db, catalog):
    """Values at and past the limits of the database's types (found by fuzzing: each was a 500)."""
    for cid, params in [
        ("parcels", {"offset": "130806024833856998295470080"}),  # past bigint
        ("parcels", {"legal_area_m2": "1e999999"}),  # past numeric
        ("parcels", {"legal_area_m2": "1e-20000"}),
        ("roads", {"maxspeed_kmh": "1e400"}),  # past double precision
        ("roads", {"width_m": "1e-400"}),  # underflows double precision
    ]:
        r = http.get(f"/collections/{cid}/items", params=params)
        assert r.status_code == 400 and r.json()["code"] == "InvalidParameterValue", params
    r = http.get("/collections/parcels/items", params={"offset": str(2**63 - 1)})
    assert r.status_code == 200 and r.json()["features"] == []
    history = catalog["parcel-history"]
    n, still_valid = count(live_db, history), count(live_db, history, "valid_to IS NULL")
    for value, want in (
        ("0001-01-01/9999-12-31", n),
        ("../9999-12-31T23:59:59Z", n),
        ("9999-12-31", still_valid),  # the versions with no end
    ):
        r = http.get("/collections/parcel-history/items", params={"datetime": value, "limit": 1})
        assert r.status_code == 200, (value, r.text)
        assert r.json()["numberMatched"] == want, value


# ---------------------------------------------------------------------------------------------
# collections
# ---------------------------------------------------------------------------------------------


def _extent(live_db, coll):
    g = coll.geometry_column
    return live_db.execute(
        f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
        f'(SELECT ST_Extent("{g}") AS e FROM "{coll.schema}"."{coll.relation}") x'
    ).fetchone()


def test_collections(http, live, live_db, catalog):
    """/ats/core/fc-md-op, -success, -links, -items, -extent."""
    r = http.get("/collections", headers={"Accept": JSON})
    assert r.status_code == 200 and _media(r) == JSON
    doc = r.json()
    assert _links(doc, "self") and any(lk["type"] == HTML for lk in _links(doc, "alternate"))
    features = [c for c in doc["collections"] if c["itemType"] == "feature"]
    assert [c["id"] for c in features] == list(catalog)
    for c in features:
        coll = catalog[c["id"]]
        items = [lk for lk in _links(c, "items") if lk["type"] == GEOJSON]
        assert items and items[0]["href"] == f"{live.base}/collections/{coll.id}/items"
        assert c["title"] == coll.title_en and c["itemType"] == "feature"
        if count(live_db, coll):
            (bbox,) = c["extent"]["spatial"]["bbox"]
            assert c["extent"]["spatial"]["crs"] == CRS84
            assert bbox == pytest.approx(_extent(live_db, coll), abs=1e-7)
        if coll.datetime_start and count(live_db, coll):
            (interval,) = c["extent"]["temporal"]["interval"]
            lo = live_db.execute(
                f'SELECT min("{coll.datetime_start}") FROM "{coll.schema}"."{coll.relation}"'
            ).fetchone()[0]
            assert interval[0][:10] == lo.isoformat()[:10]


def test_collection(http, catalog):
    """/ats/core/sfc-md-op, -success: the same description as in /collections."""
    listed = {c["id"]: c for c in http.get("/collections").json()["collections"]}
    for cid in catalog:
        r = http.get(f"/collections/{cid}", headers={"Accept": JSON})
        assert r.status_code == 200 and _media(r) == JSON
        doc = r.json()
        for key in ("id", "title", "description", "extent", "crs", "storageCrs", "itemType"):
            assert doc.get(key) == listed[cid].get(key), (cid, key)
        assert _links(doc, "self")[0]["href"].endswith(f"/collections/{cid}")


# ---------------------------------------------------------------------------------------------
# items
# ---------------------------------------------------------------------------------------------


def test_items_limit(http, live_db, catalog):
    """/ats/core/fc-limit-definition, -response: default 10, any limit in 1..max, else 400."""
    n = count(live_db, catalog["parcels"])
    doc = http.get("/collections/parcels/items").json()
    assert doc["numberReturned"] == len(doc["features"]) == 10 and doc["numberMatched"] == n
    for limit in (1, 7, 100, 10000):
        doc = http.get("/collections/parcels/items", params={"limit": limit}).json()
        assert doc["numberReturned"] == len(doc["features"]) == min(limit, n)
    for bad in (0, -1, 10001, "1.5"):
        assert http.get("/collections/parcels/items", params={"limit": bad}).status_code == 400


def test_items_paging_follows_next_links(http, live_db, catalog):
    """/ats/core/fc-links: next links walk every feature exactly once, prev links go back."""
    coll = catalog["parcel-history"]
    want = ids(live_db, coll)
    url, got, pages = "/collections/parcel-history/items?limit=100", [], []
    while url:
        r = http.get(url)
        assert r.status_code == 200
        doc = r.json()
        pages.append(doc)
        got += [f["id"] for f in doc["features"]]
        assert doc["numberMatched"] == len(want)
        nxt = _links(doc, "next")
        url = nxt[0]["href"] if nxt else None
        if url:
            assert nxt[0]["type"] == GEOJSON
    assert got == want and len(pages) == -(-len(want) // 100)
    prev = _links(pages[2], "prev")[0]["href"]
    assert [f["id"] for f in http.get(prev).json()["features"]] == want[100:200]


def test_items_bbox(http, live_db, catalog):
    """/ats/core/fc-bbox-definition, -response: exactly the features intersecting the box."""
    coll = catalog["buildings"]
    g = coll.geometry_column
    for box in [
        (106.7195, 10.7745, 106.7205, 10.7755),
        (106.0, 10.0, 107.0, 11.0),
        (106.72, 10.775, 106.7201, 10.7751),
        (0.0, 0.0, 1.0, 1.0),
    ]:
        want = ids(live_db, coll, f"ST_Intersects({g}, ST_MakeEnvelope(%s, %s, %s, %s, 4326))", box)
        got, _ = _all(http, "buildings", bbox=",".join(map(str, box)))
        assert got == want, box
    got6, _ = _all(http, "buildings", bbox="106.7195,10.7745,-10,106.7205,10.7755,100")
    got4, _ = _all(http, "buildings", bbox="106.7195,10.7745,106.7205,10.7755")
    assert got6 == got4 and got4
    assert _all(http, "buildings", bbox="170,10,-170,11")[0] == []  # across the antimeridian
    for bad in ("106.7,10.7,106.8", "a,b,c,d", "106.8,10.7,106.7,95"):
        assert http.get("/collections/buildings/items", params={"bbox": bad}).status_code == 400


def test_items_datetime(http, live_db, catalog):
    """/ats/core/fc-time-definition, -response: validity intervals [valid_from, valid_to)."""
    coll = catalog["parcel-history"]
    cases = {
        "2024-06-01T00:00:00Z": (
            "valid_from <= %(e)s AND (valid_to IS NULL OR valid_to > %(s)s)",
            "2024-06-01T00:00:00Z",
            "2024-06-01T00:00:00Z",
        ),
        "2025-06-01": (
            "valid_from <= %(e)s AND (valid_to IS NULL OR valid_to > %(s)s)",
            "2025-06-01T00:00:00Z",
            "2025-06-01T23:59:59.999999Z",
        ),
        "../2024-12-31T00:00:00Z": ("valid_from <= %(e)s", None, "2024-12-31T00:00:00Z"),
        "2025-01-01T00:00:00Z/..": (
            "(valid_to IS NULL OR valid_to > %(s)s)",
            "2025-01-01T00:00:00Z",
            None,
        ),
        "2023-01-01/2023-12-31": (
            "valid_from <= %(e)s AND (valid_to IS NULL OR valid_to > %(s)s)",
            "2023-01-01T00:00:00Z",
            "2023-12-31T23:59:59.999999Z",
        ),
    }
    seen = set()
    for value, (where, s, e) in cases.items():
        want = ids(live_db, coll, where, {"s": s, "e": e})
        got, _ = _all(http, "parcel-history", datetime=value)
        assert got == want, value
        seen.add(len(want))
    assert len(seen) >= 3  # the cases select different sets
    lots = catalog["planning-lots"]  # an instant property: approval_date
    (d,) = live_db.execute(
        f'SELECT min(approval_date) FROM "{lots.schema}"."{lots.relation}"'
    ).fetchone()
    want = ids(live_db, lots, "approval_date = %s", (d,))
    assert _all(http, "planning-lots", datetime=d.isoformat())[0] == want and want
    for bad in ("2024-13-01", "2025-01-01/2024-01-01", "../..x"):
        assert http.get("/collections/parcels/items", params={"datetime": bad}).status_code == 400


FC_SCHEMA = {
    "type": "object",
    "required": ["type", "features"],
    "properties": {
        "type": {"const": "FeatureCollection"},
        "features": {"type": "array", "items": {"$ref": "#/$defs/feature"}},
        "numberMatched": {"type": "integer", "minimum": 0},
        "numberReturned": {"type": "integer", "minimum": 0},
        "timeStamp": {"type": "string", "format": "date-time"},
        "links": {
            "type": "array",
            "items": {"type": "object", "required": ["href", "rel"]},
        },
    },
    "$defs": {
        "feature": {
            "type": "object",
            "required": ["type", "geometry", "properties"],
            "properties": {
                "type": {"const": "Feature"},
                "id": {"type": ["string", "integer"]},
                "properties": {"type": ["object", "null"]},
                "geometry": {
                    "oneOf": [
                        {"type": "null"},
                        {
                            "type": "object",
                            "required": ["type", "coordinates"],
                            "properties": {
                                "type": {
                                    "enum": [
                                        "Point",
                                        "MultiPoint",
                                        "LineString",
                                        "MultiLineString",
                                        "Polygon",
                                        "MultiPolygon",
                                    ]
                                },
                                "coordinates": {"type": "array"},
                            },
                        },
                    ]
                },
            },
        }
    },
}


def test_items_response(http, live):
    """/ats/core/fc-response, -links, -timeStamp, -numberMatched, -numberReturned."""
    import jsonschema

    for cid in ("parcels", "roads", "poi", "wards-2025"):
        r = http.get(f"/collections/{cid}/items", params={"limit": 5})
        doc = r.json()
        jsonschema.validate(doc, FC_SCHEMA)
        assert doc["numberReturned"] == len(doc["features"])
        stamp = datetime.fromisoformat(doc["timeStamp"])
        assert abs((datetime.now(UTC) - stamp).total_seconds()) < 120
        (self_,) = _links(doc, "self")
        assert self_["type"] == GEOJSON and self_["href"].startswith(live.base)
        assert any(lk["type"] == HTML for lk in _links(doc, "alternate"))
        if doc["numberMatched"] > 5:
            assert _links(doc, "next")


def test_feature(http, live, live_db, catalog):
    """/ats/core/f-op, -success, -links; unknown ids are 404."""
    coll = catalog["roads"]
    fid = ids(live_db, coll)[3]
    r = http.get(f"/collections/roads/items/{fid}", headers={"Accept": GEOJSON})
    assert r.status_code == 200 and _media(r) == GEOJSON
    f = r.json()
    assert f["type"] == "Feature" and f["id"] == fid
    assert f["geometry"]["type"] == coll.geometry_type
    assert _links(f, "self")[0]["href"] == f"{live.base}/collections/roads/items/{fid}"
    assert _links(f, "collection")[0]["href"] == f"{live.base}/collections/roads"
    (name,) = live_db.execute("SELECT name FROM city.roads WHERE road_id = %s", (fid,)).fetchone()
    assert f["properties"]["name"] == name
    for bad in ("999999999", "abc", "-1"):
        r = http.get(f"/collections/roads/items/{bad}")
        assert r.status_code == 404 and r.json()["code"] == "NotFound"


# ---------------------------------------------------------------------------------------------
# encodings
# ---------------------------------------------------------------------------------------------


def test_json_encodings(http, catalog):
    """/conf/json: JSON by default and on request, for every metadata resource."""
    for path in ("/", "/conformance", "/collections", "/collections/parcels"):
        for headers, params in (({}, {}), ({"Accept": JSON}, {}), ({}, {"f": "json"})):
            r = http.get(path, headers=headers, params=params)
            assert r.status_code == 200 and _media(r) == JSON, path
            json.loads(r.text)


def test_html_encoding(http, live_db, catalog):
    """/conf/html: every resource as HTML, by Accept and by f=html."""
    fid = ids(live_db, catalog["parcels"])[0]
    for path in (
        "/",
        "/conformance",
        "/collections",
        "/collections/parcels",
        "/collections/parcels/items",
        f"/collections/parcels/items/{fid}",
        "/collections/parcels/queryables",
        "/api",
    ):
        for headers, params in (({"Accept": "text/html"}, {}), ({}, {"f": "html"})):
            r = http.get(path, headers=headers, params=params)
            assert r.status_code == 200 and _media(r) == HTML, path
            assert "<html" in r.text.lower()


def test_geojson_encoding(http, catalog):
    """/conf/geojson: items and items/{id} as application/geo+json, valid GeoJSON."""
    import jsonschema

    for cid, coll in catalog.items():
        r = http.get(f"/collections/{cid}/items", headers={"Accept": GEOJSON}, params={"limit": 50})
        assert r.status_code == 200 and _media(r) == GEOJSON
        doc = r.json()
        jsonschema.validate(doc, FC_SCHEMA)
        for f in doc["features"]:
            assert f["geometry"]["type"] == coll.geometry_type, cid
            shapely.geometry.shape(f["geometry"])  # well-formed coordinates
            assert set(f["properties"]) == set(coll.field_names), cid
        if doc["features"]:
            fid = doc["features"][0]["id"]
            r = http.get(f"/collections/{cid}/items/{fid}", params={"f": "json"})
            assert _media(r) == GEOJSON and r.json()["id"] == fid


# ---------------------------------------------------------------------------------------------
# Part 2: coordinate reference systems
# ---------------------------------------------------------------------------------------------


def test_crs_lists(http, catalog):
    """/ats/crs/collections, /ats/crs/collection: crs lists with CRS84, and storageCrs."""
    doc = http.get("/collections").json()
    assert CRS84 in doc["crs"]
    for c in (c for c in doc["collections"] if c["itemType"] == "feature"):
        crs = doc["crs"] if c["crs"] == ["#/crs"] else c["crs"]
        assert CRS84 in crs and c["storageCrs"] in crs
        assert EPSG.format(9210) in crs  # the HCMC cadastral grid, VN-2000 / TM-3 105-45


def _coords(geom: dict) -> list[tuple[float, float]]:
    return [tuple(p) for p in shapely.get_coordinates(shapely.geometry.shape(geom)).tolist()]


def test_crs_parameter(http, live_db, catalog):
    """/ats/crs/fc-crs-*, /ats/crs/f-crs-*: coordinates in the CRS asked for, Content-Crs."""
    coll = catalog["buildings"]
    fid = ids(live_db, coll)[0]
    base = http.get(f"/collections/buildings/items/{fid}").json()["geometry"]
    for code, decimals in ((3857, 1e-3), (32648, 1e-3)):
        r = http.get(f"/collections/buildings/items/{fid}", params={"crs": EPSG.format(code)})
        assert r.headers["content-crs"] == f"<{EPSG.format(code)}>"
        (want,) = live_db.execute(
            f"SELECT ST_AsGeoJSON(ST_Transform({coll.geometry_column}, {code}), 6) "
            "FROM city.buildings WHERE building_id = %s",
            (fid,),
        ).fetchone()
        got, ref = _coords(r.json()["geometry"]), _coords(json.loads(want))
        assert len(got) == len(ref), code
        flat = [v for p in got for v in p]
        assert flat == pytest.approx([v for p in ref for v in p], abs=decimals), code
    # EPSG:4326 is latitude first
    r = http.get(f"/collections/buildings/items/{fid}", params={"crs": EPSG.format(4326)})
    assert _coords(r.json()["geometry"]) == [(y, x) for x, y in _coords(base)]
    # the storage CRS gives the coordinates as stored
    storage = http.get("/collections/buildings").json()["storageCrs"]
    r = http.get(f"/collections/buildings/items/{fid}", params={"crs": storage})
    assert r.json()["geometry"] == base
    # VN-2000 / TM-3 105-45 (metres, easting first), the same in the items response
    r = http.get("/collections/buildings/items", params={"crs": EPSG.format(9210), "limit": 3})
    assert r.headers["content-crs"] == f"<{EPSG.format(9210)}>"
    for f in r.json()["features"]:
        for x, y in _coords(f["geometry"]):
            assert 600_000 < x < 612_000 and 1_185_000 < y < 1_200_000
    for bad in ("EPSG:2154", "http://www.opengis.net/def/crs/EPSG/0/999999"):
        assert http.get("/collections/buildings/items", params={"crs": bad}).status_code == 400


def test_bbox_crs(http, live_db, catalog):
    """/ats/crs/fc-bbox-crs-*: a box in Web Mercator selects what the same box selects in SQL."""
    coll = catalog["buildings"]
    box = (11880038.0, 1206600.0, 11880150.0, 1206690.0)
    want = ids(
        live_db,
        coll,
        f"ST_Intersects({coll.geometry_column}, "
        "ST_Transform(ST_MakeEnvelope(%s, %s, %s, %s, 3857), 4326))",
        box,
    )
    got, _ = _all(
        http, "buildings", bbox=",".join(map(str, box)), **{"bbox-crs": EPSG.format(3857)}
    )
    assert got == want and want
    # EPSG:4326 boxes are latitude first
    ll = (106.7195, 10.7745, 106.7205, 10.7755)
    got, _ = _all(
        http,
        "buildings",
        bbox=f"{ll[1]},{ll[0]},{ll[3]},{ll[2]}",
        **{"bbox-crs": EPSG.format(4326)},
    )
    assert got == _all(http, "buildings", bbox=",".join(map(str, ll)))[0]
    r = http.get(
        "/collections/buildings/items", params={"bbox": "1,2,3,4", "bbox-crs": "EPSG:2154"}
    )
    assert r.status_code == 400


def test_content_crs(http, live_db, catalog):
    """/ats/crs/*-content-crs: every features response says its CRS."""
    fid = ids(live_db, catalog["poi"])[0]
    for path in ("/collections/poi/items", f"/collections/poi/items/{fid}"):
        r = http.get(path)
        assert r.headers["content-crs"] == f"<{CRS84}>"


# ---------------------------------------------------------------------------------------------
# Part 3: queryables and filters
# ---------------------------------------------------------------------------------------------


def test_queryables(http, live, catalog):
    """/ats/queryables/get-queryables-*: a JSON Schema per collection, linked from it."""
    for cid, coll in catalog.items():
        desc = http.get(f"/collections/{cid}").json()
        (lk,) = _links(desc, "http://www.opengis.net/def/rel/ogc/1.0/queryables")
        r = http.get(lk["href"], headers={"Accept": SCHEMA})
        assert r.status_code == 200 and _media(r) == SCHEMA
        doc = r.json()
        assert doc["$schema"] in (
            "https://json-schema.org/draft/2019-09/schema",
            "https://json-schema.org/draft/2020-12/schema",
        )
        assert doc["$id"] == f"{live.base}/collections/{cid}/queryables"
        assert doc["type"] == "object"
        props = doc["properties"]
        assert set(props) == {coll.id_column, *coll.field_names, "geometry"}
        assert not set(props) & set(coll.internal_fields)
        for f in coll.fields:
            assert props[f.name]["type"] == f.json_type, (cid, f.name)
        assert props["geometry"]["x-ogc-role"] == "primary-geometry"


def test_queryables_as_query_parameters(http, live_db, catalog):
    """/ats/queryables-query-parameters: ?field=value for every queryable field of every
    collection with data, with one of its values: exactly the rows SQL finds."""
    checked = 0
    for cid, coll in catalog.items():
        if not count(live_db, coll):
            continue
        for f in coll.fields:
            row = live_db.execute(
                f'SELECT "{f.name}", count(*) FROM "{coll.schema}"."{coll.relation}" '
                f'WHERE "{f.name}" IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1'
            ).fetchone()
            if row is None:
                continue
            value = row[0]
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif hasattr(value, "isoformat"):
                text = value.isoformat()
            else:
                text = str(value)
            want = ids(live_db, coll, f'"{f.name}" = %s', (value,))
            got, _ = _all(http, cid, **{f.name: text})
            assert got == want, (cid, f.name, text)
            checked += 1
    assert checked > 30


def prop(name: str) -> dict:
    return {"property": name}


def _parcel_wkt(live_db, where: str) -> str:
    (wkt,) = live_db.execute(
        f"SELECT ST_AsText(geom) FROM cadastral.parcels_current WHERE {where} "
        "ORDER BY parcel_id LIMIT 1"
    ).fetchone()
    return wkt


DIAMOND = "POLYGON((106.7206 10.7752, 106.7202 10.77556, 106.7198 10.7752, 106.7202 10.77484, 106.7206 10.7752))"
LINE = "LINESTRING(106.7195 10.7748, 106.7216 10.7760)"
POINT = "POINT(106.72061 10.775525)"

#: (collection, CQL2 text, CQL2 JSON, SQL oracle on the relation aliased t)
FILTERS = [
    # basic-cql2: comparisons, logic, null
    (
        "parcels",
        "land_use = 'ODT'",
        {"op": "=", "args": [prop("land_use"), "ODT"]},
        "land_use = 'ODT'",
    ),
    (
        "parcels",
        "land_use <> 'ODT' AND sheet_no >= 2",
        {
            "op": "and",
            "args": [
                {"op": "<>", "args": [prop("land_use"), "ODT"]},
                {"op": ">=", "args": [prop("sheet_no"), 2]},
            ],
        },
        "land_use <> 'ODT' AND sheet_no >= 2",
    ),
    (
        "parcels",
        "legal_area_m2 < 80 OR legal_area_m2 > 200",
        {
            "op": "or",
            "args": [
                {"op": "<", "args": [prop("legal_area_m2"), 80]},
                {"op": ">", "args": [prop("legal_area_m2"), 200]},
            ],
        },
        "legal_area_m2 < 80 OR legal_area_m2 > 200",
    ),
    (
        "parcels",
        "NOT (parcel_no <= 20)",
        {"op": "not", "args": [{"op": "<=", "args": [prop("parcel_no"), 20]}]},
        "NOT (parcel_no <= 20)",
    ),
    ("parcels", "address IS NULL", {"op": "isNull", "args": [prop("address")]}, "address IS NULL"),
    (
        "parcels",
        "address IS NOT NULL AND land_use = 'TMD'",
        {
            "op": "and",
            "args": [
                {"op": "not", "args": [{"op": "isNull", "args": [prop("address")]}]},
                {"op": "=", "args": [prop("land_use"), "TMD"]},
            ],
        },
        "address IS NOT NULL AND land_use = 'TMD'",
    ),
    ("roads", "oneway = TRUE", {"op": "=", "args": [prop("oneway"), True]}, "oneway"),
    (
        "parcels",
        "valid_from > TIMESTAMP('2024-06-01T00:00:00Z')",
        {"op": ">", "args": [prop("valid_from"), {"timestamp": "2024-06-01T00:00:00Z"}]},
        "valid_from > '2024-06-01T00:00:00Z'",
    ),
    # advanced-comparison-operators
    (
        "parcels",
        "address LIKE '1_ Đường%'",
        {"op": "like", "args": [prop("address"), "1_ Đường%"]},
        "address LIKE '1_ Đường%'",
    ),
    (
        "parcels",
        "legal_area_m2 BETWEEN 100 AND 120",
        {"op": "between", "args": [prop("legal_area_m2"), 100, 120]},
        "legal_area_m2 BETWEEN 100 AND 120",
    ),
    (
        "parcels",
        "land_use IN ('TMD', 'DGD', 'TON')",
        {"op": "in", "args": [prop("land_use"), ["TMD", "DGD", "TON"]]},
        "land_use IN ('TMD', 'DGD', 'TON')",
    ),
    # case-insensitive-comparison
    (
        "parcels",
        "CASEI(land_use) = CASEI('odt')",
        {
            "op": "=",
            "args": [{"op": "casei", "args": [prop("land_use")]}, {"op": "casei", "args": ["odt"]}],
        },
        "lower(land_use) = 'odt'",
    ),
    # basic-spatial-functions: S_INTERSECTS with points and boxes
    (
        "parcels",
        f"S_INTERSECTS(geometry, {POINT})",
        {
            "op": "s_intersects",
            "args": [prop("geometry"), {"type": "Point", "coordinates": [106.72061, 10.775525]}],
        },
        f"ST_Intersects(geom, ST_GeomFromText('{POINT}', 4326))",
    ),
    (
        "buildings",
        "S_INTERSECTS(geometry, BBOX(106.7195, 10.7745, 106.7205, 10.7755))",
        {
            "op": "s_intersects",
            "args": [prop("geometry"), {"bbox": [106.7195, 10.7745, 106.7205, 10.7755]}],
        },
        "ST_Intersects(geom, ST_MakeEnvelope(106.7195, 10.7745, 106.7205, 10.7755, 4326))",
    ),
    # basic-spatial-functions-plus: S_INTERSECTS with any geometry
    (
        "parcels",
        f"S_INTERSECTS(geometry, {LINE})",
        {
            "op": "s_intersects",
            "args": [prop("geometry"), shapely.geometry.mapping(shapely.from_wkt(LINE))],
        },
        f"ST_Intersects(geom, ST_GeomFromText('{LINE}', 4326))",
    ),
    (
        "buildings",
        f"S_INTERSECTS(geometry, {DIAMOND})",
        {
            "op": "s_intersects",
            "args": [prop("geometry"), shapely.geometry.mapping(shapely.from_wkt(DIAMOND))],
        },
        f"ST_Intersects(geom, ST_GeomFromText('{DIAMOND}', 4326))",
    ),
    # spatial-functions
    (
        "parcels",
        f"S_WITHIN(geometry, {DIAMOND})",
        {
            "op": "s_within",
            "args": [prop("geometry"), shapely.geometry.mapping(shapely.from_wkt(DIAMOND))],
        },
        f"ST_Within(geom, ST_GeomFromText('{DIAMOND}', 4326))",
    ),
    (
        "parcels",
        f"S_OVERLAPS(geometry, {DIAMOND})",
        {
            "op": "s_overlaps",
            "args": [prop("geometry"), shapely.geometry.mapping(shapely.from_wkt(DIAMOND))],
        },
        f"ST_Overlaps(geom, ST_GeomFromText('{DIAMOND}', 4326))",
    ),
    (
        "parcels",
        f"S_DISJOINT(geometry, {DIAMOND})",
        {
            "op": "s_disjoint",
            "args": [prop("geometry"), shapely.geometry.mapping(shapely.from_wkt(DIAMOND))],
        },
        f"ST_Disjoint(geom, ST_GeomFromText('{DIAMOND}', 4326))",
    ),
    (
        "parcels",
        f"S_CONTAINS(geometry, {POINT})",
        {
            "op": "s_contains",
            "args": [prop("geometry"), {"type": "Point", "coordinates": [106.72061, 10.775525]}],
        },
        f"ST_Contains(geom, ST_GeomFromText('{POINT}', 4326))",
    ),
    (
        "parcels",
        f"S_CROSSES(geometry, {LINE})",
        {
            "op": "s_crosses",
            "args": [prop("geometry"), shapely.geometry.mapping(shapely.from_wkt(LINE))],
        },
        f"ST_Crosses(geom, ST_GeomFromText('{LINE}', 4326))",
    ),
    # temporal-functions (no instant of the data on a boundary of the literals)
    (
        "parcel-history",
        "T_AFTER(valid_from, TIMESTAMP('2024-06-01T00:00:00Z'))",
        {"op": "t_after", "args": [prop("valid_from"), {"timestamp": "2024-06-01T00:00:00Z"}]},
        "valid_from > '2024-06-01T00:00:00Z'",
    ),
    (
        "parcel-history",
        "T_BEFORE(valid_from, DATE('2024-06-01'))",
        {"op": "t_before", "args": [prop("valid_from"), {"date": "2024-06-01"}]},
        "valid_from < '2024-06-01T00:00:00Z'",
    ),
    (
        "parcel-history",
        "T_INTERSECTS(INTERVAL(valid_from, valid_to), TIMESTAMP('2024-06-01T00:00:00Z'))",
        {
            "op": "t_intersects",
            "args": [
                {"interval": [prop("valid_from"), prop("valid_to")]},
                {"timestamp": "2024-06-01T00:00:00Z"},
            ],
        },
        (
            "valid_from <= '2024-06-01T00:00:00Z' AND "
            "(valid_to IS NULL OR valid_to >= '2024-06-01T00:00:00Z')"
        ),
    ),
    (
        "parcel-history",
        "T_DISJOINT(INTERVAL(valid_from, valid_to), TIMESTAMP('2024-06-01T00:00:00Z'))",
        {
            "op": "t_disjoint",
            "args": [
                {"interval": [prop("valid_from"), prop("valid_to")]},
                {"timestamp": "2024-06-01T00:00:00Z"},
            ],
        },
        "valid_from > '2024-06-01T00:00:00Z' OR valid_to < '2024-06-01T00:00:00Z'",
    ),
    (
        "parcel-history",
        "T_DURING(INTERVAL(valid_from, valid_to), INTERVAL('2023-06-01', '2025-06-01'))",
        {
            "op": "t_during",
            "args": [
                {"interval": [prop("valid_from"), prop("valid_to")]},
                {"interval": ["2023-06-01", "2025-06-01"]},
            ],
        },
        "valid_from > '2023-06-01' AND valid_to < '2025-06-01'",
    ),
    # arithmetic
    (
        "parcels",
        "sheet_no * 1000 + parcel_no > 2100",
        {
            "op": ">",
            "args": [
                {
                    "op": "+",
                    "args": [{"op": "*", "args": [prop("sheet_no"), 1000]}, prop("parcel_no")],
                },
                2100,
            ],
        },
        "sheet_no * 1000 + parcel_no > 2100",
    ),
    (
        "parcels",
        "legal_area_m2 / 2 > 60 AND parcel_no % 2 = 0",
        {
            "op": "and",
            "args": [
                {"op": ">", "args": [{"op": "/", "args": [prop("legal_area_m2"), 2]}, 60]},
                {"op": "=", "args": [{"op": "%", "args": [prop("parcel_no"), 2]}, 0]},
            ],
        },
        "legal_area_m2 / 2 > 60 AND parcel_no % 2 = 0",
    ),
    # property-property
    (
        "parcels",
        "sheet_no < parcel_no AND parcel_no < legal_area_m2",
        {
            "op": "and",
            "args": [
                {"op": "<", "args": [prop("sheet_no"), prop("parcel_no")]},
                {"op": "<", "args": [prop("parcel_no"), prop("legal_area_m2")]},
            ],
        },
        "sheet_no < parcel_no AND parcel_no < legal_area_m2",
    ),
    (
        "planning-lots",
        "max_height_m > max_storeys * 3.5",
        {
            "op": ">",
            "args": [prop("max_height_m"), {"op": "*", "args": [prop("max_storeys"), 3.5]}],
        },
        "max_height_m > max_storeys * 3.5",
    ),
]


@pytest.mark.parametrize(
    "cid, text, js, where", FILTERS, ids=[f"{c[0]}:{c[1][:48]}" for c in FILTERS]
)
def test_filter_cases(http, live_db, catalog, cid, text, js, where):
    """/ats/filter/*, /ats/features-filter/*, and the CQL2 classes: text and JSON encodings of a
    filter select exactly what SQL selects (also counted: numberMatched)."""
    want = ids(live_db, catalog[cid], where)
    assert want, "each case selects something"
    assert len(want) < count(live_db, catalog[cid]) or text.startswith("S_DISJOINT")
    got_text, _ = _all(http, cid, filter=text, **{"filter-lang": "cql2-text"})
    assert got_text == want
    got_json, _ = _all(
        http, cid, filter=json.dumps(js, ensure_ascii=False), **{"filter-lang": "cql2-json"}
    )
    assert got_json == want


def test_filter_lang_default(http, live_db, catalog):
    """/ats/filter/filter-lang-default: cql2-text when filter-lang is not given."""
    want = ids(live_db, catalog["parcels"], "land_use = 'DYT'")
    assert _all(http, "parcels", filter="land_use = 'DYT'")[0] == want and want


def test_filter_errors(http):
    """/ats/filter/filter-param (invalid filters), /ats/filter/filter-lang-param, unknown
    properties, and a 400 is an exception document."""
    for params in (
        {"filter": "land_use = "},
        {"filter": "owner_name = 'x'"},  # a private column: not a queryable
        {"filter": "nope > 1"},
        {"filter": "S_INTERSECTS(geometry, POINT(1))"},
        {"filter": "{", "filter-lang": "cql2-json"},
        {"filter": "land_use = 'ODT'", "filter-lang": "ecql"},
        {"filter-lang": "cql2-text"},
        {"filter": "land_use = 'ODT'", "filter-crs": "EPSG:2154"},
    ):
        r = http.get("/collections/parcels/items", params=params)
        assert r.status_code == 400, params
        assert r.json()["code"] in ("InvalidParameterValue", "InvalidCRS"), params


def test_filter_crs(http, live_db, catalog):
    """/ats/filter/filter-crs: a geometry literal in another CRS (Web Mercator, VN-2000)."""
    coll = catalog["parcels"]
    merc = (
        "POLYGON((11880040 1206600, 11880150 1206600, 11880150 1206690, 11880040 1206690, "
        "11880040 1206600))"
    )
    want = ids(
        live_db, coll, "ST_Intersects(geom, ST_Transform(ST_GeomFromText(%s, 3857), 4326))", (merc,)
    )
    got, _ = _all(
        http,
        "parcels",
        filter=f"S_INTERSECTS(geometry, {merc})",
        **{"filter-crs": EPSG.format(3857)},
    )
    assert got == want and want
    # EPSG:4326 literals are latitude first
    flipped = "POLYGON((10.7752 106.7206, 10.77556 106.7202, 10.7752 106.7198, 10.77484 106.7202, 10.7752 106.7206))"
    got, _ = _all(
        http,
        "parcels",
        filter=f"S_INTERSECTS(geometry, {flipped})",
        **{"filter-crs": EPSG.format(4326)},
    )
    assert got == _all(http, "parcels", filter=f"S_INTERSECTS(geometry, {DIAMOND})")[0] and got


def test_spatial_equals_and_touches(http, live_db, catalog):
    """S_EQUALS and S_TOUCHES, with a parcel's own geometry as the literal."""
    coll = catalog["parcels"]
    wkt = _parcel_wkt(live_db, "sheet_no = 2 AND parcel_no = 20")
    want = ids(live_db, coll, "ST_Equals(geom, ST_GeomFromText(%s, 4326))", (wkt,))
    assert len(want) == 1 and _all(http, "parcels", filter=f"S_EQUALS(geometry, {wkt})")[0] == want
    want = ids(live_db, coll, "ST_Touches(geom, ST_GeomFromText(%s, 4326))", (wkt,))
    assert len(want) >= 2 and _all(http, "parcels", filter=f"S_TOUCHES(geometry, {wkt})")[0] == want


def _fold(text: str) -> str:
    """Vietnamese without its accents (the oracle of ACCENTI)."""
    text = text.replace("đ", "d").replace("Đ", "D")
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


def test_accent_insensitive(http, live_db, catalog):
    """cql2 accent-insensitive-comparison: ACCENTI on Vietnamese text."""
    rows = live_db.execute(
        "SELECT parcel_id, address FROM cadastral.parcels_current WHERE address IS NOT NULL"
    ).fetchall()
    want = sorted(i for i, a in rows if "Nguyen Co Thach" in _fold(a))
    assert want and len(want) < len(rows)
    got, _ = _all(http, "parcels", filter="ACCENTI(address) LIKE ACCENTI('%Nguyen Co Thach%')")
    assert got == want
    got, _ = _all(
        http,
        "parcels",
        filter=json.dumps(
            {
                "op": "like",
                "args": [
                    {"op": "accenti", "args": [prop("address")]},
                    {"op": "accenti", "args": ["%Nguyễn Cơ Thạch%"]},
                ],
            }
        ),
        **{"filter-lang": "cql2-json"},
    )
    assert got == want
    poi = live_db.execute("SELECT poi_id, name FROM city.poi").fetchall()
    want = sorted(i for i, n in poi if _fold(n).lower() == "benh vien da khoa thu thiem")
    got, _ = _all(
        http, "poi", filter="CASEI(ACCENTI(name)) = CASEI(ACCENTI('benh vien da khoa thu thiem'))"
    )
    assert got == want and len(want) == 1


# ---------------------------------------------------------------------------------------------
# sorting and JSON-FG
# ---------------------------------------------------------------------------------------------


def test_sortby(http, live_db, catalog):
    """Records sorting: sortby orders the features, across pages too."""
    for sortby, order in (
        ("-legal_area_m2", "legal_area_m2 DESC NULLS FIRST, parcel_id"),
        ("address,-parcel_no", "address ASC NULLS LAST, parcel_no DESC, parcel_id"),
    ):
        want = [
            r[0]
            for r in live_db.execute(
                f"SELECT parcel_id FROM cadastral.parcels_current ORDER BY {order}"
            )
        ]
        url, got = f"/collections/parcels/items?limit=77&sortby={sortby}", []
        while url:
            doc = http.get(url).json()
            got += [f["id"] for f in doc["features"]]
            nxt = _links(doc, "next")
            url = nxt[0]["href"] if nxt else None
        assert got == want, sortby
    assert (
        http.get("/collections/parcels/items", params={"sortby": "owner_name"}).status_code == 400
    )


def test_jsonfg(http, catalog):
    """JSON-FG core: conformsTo, featureType, coordRefSys, place in the CRS asked, time."""
    r = http.get(
        "/collections/parcel-history/items",
        params={"f": "jsonfg", "limit": 3, "crs": EPSG.format(3857)},
    )
    assert r.status_code == 200 and _media(r) == "application/vnd.ogc.fg+json"
    doc = r.json()
    assert "http://www.opengis.net/spec/json-fg-1/0.2/conf/core" in doc["conformsTo"]
    assert doc["featureType"] == "parcel-history" and doc["coordRefSys"] == EPSG.format(3857)
    for f in doc["features"]:
        assert f["geometry"]["type"] == f["place"]["type"] == "MultiPolygon"
        lon, lat = _coords(f["geometry"])[0]
        x, y = _coords(f["place"])[0]
        assert 106 < lon < 107 and 10 < lat < 11 and x > 1e7 and 1e6 < y < 1.3e6
        assert re.match(r"\d{4}-\d{2}-\d{2}", f["time"]["interval"][0])
