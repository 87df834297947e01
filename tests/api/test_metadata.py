"""Landing page, conformance, OpenAPI, docs, collections, queryables, languages, negotiation."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from api.params import cql2_available
from gis.query import CRS84_URI, SUPPORTED_CRS

PUBLISHED = [
    "wards-2025",
    "wards-2019",
    "districts-2019",
    "parcels",
    "parcel-history",
    "planning-lots",
    "buildings",
    "roads",
    "poi",
]


def test_landing_page_links(client):
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    doc = r.json()
    rels = {lk["rel"]: lk for lk in doc["links"]}
    assert rels["service-desc"]["href"] == "http://testserver/api"
    assert rels["service-desc"]["type"] == "application/vnd.oai.openapi+json;version=3.0"
    assert rels["service-doc"]["href"] == "http://testserver/api.html"
    assert rels["conformance"]["href"] == "http://testserver/conformance"
    assert rels["data"]["href"] == "http://testserver/collections"
    assert "self" in rels and "alternate" in rels


def test_landing_page_languages(client):
    en = client.get("/").json()
    vi = client.get("/?lang=vi").json()
    assert en["title"] == "Ho Chi Minh City open GIS"
    assert vi["title"] == "Dữ liệu GIS mở TP. Hồ Chí Minh"
    by_header = client.get("/", headers={"Accept-Language": "vi-VN,vi;q=0.9,en;q=0.5"})
    assert by_header.json()["title"] == vi["title"]
    assert by_header.headers["content-language"] == "vi"
    assert (
        client.get("/", headers={"Accept-Language": "fr, en;q=0.1"}).json()["title"] == en["title"]
    )
    r = client.get("/?lang=fr")
    assert r.status_code == 400
    assert r.json() == {
        "code": "InvalidParameterValue",
        "description": "Parameter lang: 'fr' is not available; give vi or en",
    }


def test_conformance_declares_what_is_implemented(client):
    doc = client.get("/conformance").json()
    c = set(doc["conformsTo"])
    for cls in (
        "ogcapi-features-1/1.0/conf/core",
        "ogcapi-features-1/1.0/conf/geojson",
        "ogcapi-features-1/1.0/conf/html",
        "ogcapi-features-1/1.0/conf/oas30",
        "ogcapi-features-2/1.0/conf/crs",
        "ogcapi-features-3/1.0/conf/queryables",
        "ogcapi-features-3/1.0/conf/queryables-query-parameters",
    ):
        assert f"http://www.opengis.net/spec/{cls}" in c
    filt = "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter"
    if cql2_available():
        from gis import cql2

        assert filt in c
        assert set(cql2.CONFORMANCE) <= c
    else:
        assert filt not in c
        assert not any("/cql2/" in x for x in c)


def test_openapi_is_3_0_and_valid(client):
    r = client.get("/api")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.oai.openapi+json")
    doc = r.json()
    assert doc["openapi"].startswith("3.0.")
    validate(doc)  # raises on an invalid OpenAPI 3.0 document


def test_openapi_declares_limit_default_and_maximum(client):
    doc = client.get("/api").json()
    assert doc["components"]["parameters"]["limit"]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 10000,
        "default": 10,
    }
    items_paths = [  # the feature collections' (the records catalogue has its own limits)
        p for p in doc["paths"] if p.endswith("/items") and not p.startswith("/collections/catalog/")
    ]
    assert "/collections/{collectionId}/items" in items_paths
    assert "/collections/parcels/items" in items_paths
    for p in items_paths:
        params = doc["paths"][p]["get"]["parameters"]
        limit = [x for x in params if x.get("name") == "limit"]
        assert limit, p  # inline, not only a $ref: the way GDAL and QGIS read it
        assert limit[0]["schema"]["maximum"] == 10000
        assert limit[0]["schema"]["default"] == 10


def _names(doc: dict, params: list[dict]) -> set[str]:
    out = set()
    for p in params:
        if "$ref" in p:
            p = doc["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]]
        out.add(p["name"])
    return out


def test_openapi_lists_queryables_of_each_collection(client):
    doc = client.get("/api").json()
    names = _names(doc, doc["paths"]["/collections/parcels/items"]["get"]["parameters"])
    assert {"land_use", "sheet_no", "bbox", "crs", "sortby"} <= names
    assert "owner_name" not in names and "row_hash" not in names


def test_docs_page_is_served_locally(client):
    for url in ("/api.html", "/api?f=html"):
        r = client.get(url)
        assert r.status_code == 200
        assert "text/html" in r.headers["content-type"]
        page = r.text
        assert "http://testserver/static/swagger-ui/swagger-ui-bundle.js" in page
        assert "cdn" not in page.lower() and "unpkg" not in page.lower()
    for asset in (
        "/static/swagger-ui/swagger-ui-bundle.js",
        "/static/swagger-ui/swagger-ui.css",
        "/static/swagger-ui/swagger-ui-standalone-preset.js",
        "/static/gis/docs.js",
        "/static/leaflet/leaflet.js",
        "/static/leaflet/leaflet.css",
        "/static/gis/map.js",
        "/static/gis/gis.css",
    ):
        r = client.get(asset)
        assert r.status_code == 200, asset
        assert len(r.content) > 100


def test_collections_lists_the_catalog(client):
    doc = client.get("/collections").json()
    features = [c for c in doc["collections"] if c["itemType"] == "feature"]
    assert [c["id"] for c in features] == PUBLISHED
    # besides them: the records catalogue (and raster coverages, when there are any)
    assert {c["itemType"] for c in doc["collections"]} <= {"feature", "record", "coverage"}
    for c in features:
        assert c["crs"][0] == CRS84_URI
        assert set(c["crs"]) == set(SUPPORTED_CRS)
        assert c["storageCrs"] == CRS84_URI
        assert c["itemType"] == "feature"
        rels = [lk["rel"] for lk in c["links"]]
        assert "items" in rels and "http://www.opengis.net/def/rel/ogc/1.0/queryables" in rels


def test_collection_metadata(client):
    doc = client.get("/collections/parcels").json()
    assert doc["id"] == "parcels"
    assert doc["title"] == "Cadastral parcels (in force)"
    assert doc["keywords"] == ["cadastral", "parcels", "thửa đất", "địa chính"]
    assert doc["license"] == "CC0-1.0"  # SPDX id; the statement in rights
    assert doc["rights"].startswith("CC0-1.0 for the synthetic demo cadastre")
    bbox = doc["extent"]["spatial"]["bbox"][0]
    assert 106.7 < bbox[0] < bbox[2] < 106.75 and 10.76 < bbox[1] < bbox[3] < 10.79
    assert doc["extent"]["spatial"]["crs"] == CRS84_URI
    assert doc["extent"]["temporal"]["interval"][0][0].startswith("2024-01-01")
    assert "http://www.opengis.net/def/crs/EPSG/0/9210" in doc["crs"]
    for code in [*range(9205, 9219), 3405, 3406, 5896, 5897, 5898, 5899, 3857, 32648, 4326]:
        assert f"http://www.opengis.net/def/crs/EPSG/0/{code}" in doc["crs"]
    vi = client.get("/collections/parcels?lang=vi").json()
    assert vi["title"] == "Thửa đất (hiện hành)"
    assert vi["description"].startswith("Thửa đất địa chính")


def test_empty_collection_has_no_extent(client):
    doc = client.get("/collections/wards-2025").json()
    assert "extent" not in doc
    items = client.get("/collections/wards-2025/items").json()
    assert items["features"] == [] and items["numberReturned"] == 0 and items["numberMatched"] == 0


def test_queryables_json_schema(client):
    r = client.get("/collections/parcels/queryables")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/schema+json"
    doc = r.json()
    assert doc["$id"] == "http://testserver/collections/parcels/queryables"
    assert doc["type"] == "object" and doc["additionalProperties"] is False
    props = doc["properties"]
    assert props["sheet_no"]["type"] == "integer"
    assert props["land_use"]["type"] == "string"
    assert props["legal_area_m2"]["x-ogc-unit"] == "m2"
    assert props["geometry"]["x-ogc-role"] == "primary-geometry"
    assert props["geometry"]["format"] == "geometry-multipolygon"
    assert "owner_name" not in props and "row_hash" not in props and "source" not in props
    assert (
        client.get("/collections/parcels/queryables?lang=vi").json()["properties"]["sheet_no"][
            "title"
        ]
        == "Số tờ bản đồ"
    )


@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/conformance",
        "/collections",
        "/collections/parcels",
        "/collections/parcels/queryables",
    ],
)
def test_html_and_json_by_accept_and_f(client, url):
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    r = client.get(url, headers={"Accept": browser})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.text.startswith("<!doctype html>")
    r = client.get(url + "?f=json", headers={"Accept": browser})
    assert r.status_code == 200 and "json" in r.headers["content-type"]
    r = client.get(url + "?f=html")
    assert r.headers["content-type"].startswith("text/html")
    r = client.get(url, headers={"Accept": "application/json"})
    assert "json" in r.headers["content-type"]
    r = client.get(url + "?f=csv")
    assert r.status_code == 400
    assert r.json()["description"].startswith("Parameter f: 'csv' is not a format of this resource")


def test_unknown_parameter_is_named(client):
    r = client.get("/collections?foo=1")
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == "InvalidParameterValue"
    assert "Unknown parameter 'foo'" in body["description"]


def test_unknown_collection_404(client):
    r = client.get("/collections/owners")
    assert r.status_code == 404
    body = r.json()
    assert body["code"] == "NotFound"
    assert "'owners'" in body["description"] and "parcels" in body["description"]
    for sub in ("/items", "/items/1", "/queryables"):
        assert client.get("/collections/owners" + sub).status_code == 404


def test_unknown_path_and_method(client):
    r = client.get("/nothing/here")
    assert r.status_code == 404 and r.json()["code"] == "NotFound"
    r = client.post("/collections")
    assert r.status_code == 405 and r.json()["code"] == "MethodNotAllowed"
