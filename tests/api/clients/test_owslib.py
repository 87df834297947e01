"""OWSLib's OGC API - Features client (``owslib.ogcapi.features.Features``) reads the live server.

Every answer is compared with SQL; the access log shows what went over the wire.
"""

from __future__ import annotations

import json

import pytest
from client_helpers import count, ids
from owslib.ogcapi.features import Features


@pytest.fixture(scope="module")
def api(live) -> Features:
    return Features(live.base)


def _ids(doc: dict) -> list:
    return sorted(f["id"] for f in doc["features"])


def test_landing_collections_and_conformance(api, catalog):
    assert any(lk["rel"] == "service-desc" for lk in api.links)
    listed = api.collections()["collections"]
    assert [c["id"] for c in listed if c["itemType"] == "feature"] == list(catalog)
    assert api.feature_collections() == list(catalog)
    assert api.collection("parcels")["id"] == "parcels"
    conf = api.conformance()["conformsTo"]
    for cls in (
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
        "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
        "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    ):
        assert cls in conf


def test_queryables(api, catalog):
    for cid, coll in catalog.items():
        q = api.collection_queryables(cid)
        assert q["type"] == "object"
        assert list(q["properties"]) == [coll.id_column, *coll.field_names, "geometry"]
        for f in coll.fields:
            assert q["properties"][f.name]["type"] == f.json_type


def test_items_with_bbox(api, live, live_db, catalog):
    coll = catalog["buildings"]
    box = [106.7195, 10.7745, 106.7205, 10.7755]
    where = f"ST_Intersects(t.{coll.geometry_column}, ST_MakeEnvelope(%s, %s, %s, %s, 4326))"
    mark = live.mark()
    doc = api.collection_items("buildings", bbox=box, limit=1000)
    assert doc["numberMatched"] == doc["numberReturned"] == count(live_db, coll, where, box) > 0
    assert _ids(doc) == ids(live_db, coll, where, box)
    (req,) = live.requests_since(mark)
    assert req.path == "/collections/buildings/items"
    assert req.params == {"bbox": ",".join(map(str, box)), "limit": "1000"}


def test_items_with_a_cql2_text_filter(api, live, live_db, catalog):
    coll = catalog["parcels"]
    text = "land_use = 'ODT' AND legal_area_m2 > 100"
    mark = live.mark()
    doc = api.collection_items("parcels", filter=text, limit=1000)
    assert _ids(doc) == ids(live_db, coll, "land_use = 'ODT' AND legal_area_m2 > 100")
    assert doc["numberMatched"] == len(doc["features"]) > 0
    (req,) = live.requests_since(mark)  # passed through as the standard parameter, on the wire
    assert req.params == {"filter": text, "limit": "1000"} and req.status == 200


def test_items_with_a_cql2_json_filter(api, live, live_db, catalog):
    coll = catalog["parcels"]
    flt = {
        "op": "and",
        "args": [
            {"op": "in", "args": [{"property": "land_use"}, ["TMD", "DGD"]]},
            {"op": "<", "args": [{"property": "sheet_no"}, 3]},
        ],
    }
    mark = live.mark()
    doc = api.collection_items(
        "parcels", filter=json.dumps(flt), limit=1000, **{"filter-lang": "cql2-json"}
    )
    assert _ids(doc) == ids(live_db, coll, "land_use IN ('TMD', 'DGD') AND sheet_no < 3")
    (req,) = live.requests_since(mark)
    assert req.params["filter-lang"] == "cql2-json" and json.loads(req.params["filter"]) == flt


def test_items_with_a_spatial_filter_in_another_crs(api, live_db, catalog):
    """CQL2 S_INTERSECTS with a polygon in Web Mercator (filter-crs) selects what SQL does."""
    coll = catalog["parcels"]
    poly = (
        "POLYGON((11880040 1206600, 11880150 1206600, 11880150 1206690, 11880040 1206690, "
        "11880040 1206600))"
    )
    doc = api.collection_items(
        "parcels",
        filter=f"S_INTERSECTS(geometry, {poly})",
        limit=1000,
        **{"filter-crs": "http://www.opengis.net/def/crs/EPSG/0/3857"},
    )
    where = (
        f"ST_Intersects(t.{coll.geometry_column}, ST_Transform(ST_GeomFromText(%s, 3857), 4326))"
    )
    want = ids(live_db, coll, where, (poly,))
    assert want and _ids(doc) == want


def test_items_with_queryable_parameters_and_paging(api, live_db, catalog):
    coll = catalog["parcels"]
    want = ids(live_db, coll, "land_use = 'DKV'")
    got, offset = [], 0
    while True:  # owslib does not follow links: page with offset
        doc = api.collection_items("parcels", land_use="DKV", limit=10, offset=offset)
        got += [f["id"] for f in doc["features"]]
        assert doc["numberMatched"] == len(want)
        if not any(lk["rel"] == "next" for lk in doc["links"]):
            break
        offset += 10
    assert sorted(got) == want and len(got) == len(set(got)) and len(want) > 10


def test_single_feature(api, live_db, catalog):
    coll = catalog["poi"]
    fid = ids(live_db, coll)[0]
    f = api.collection_item("poi", fid)
    assert f["id"] == fid and f["type"] == "Feature"
    name = live_db.execute("SELECT name FROM city.poi WHERE poi_id = %s", (fid,)).fetchone()[0]
    assert f["properties"]["name"] == name


def test_errors_are_reported(api):
    with pytest.raises(RuntimeError, match="InvalidParameterValue"):
        api.collection_items("parcels", filter="land_use = ")
    with pytest.raises(RuntimeError, match="NotFound"):
        api.collection("nope")
