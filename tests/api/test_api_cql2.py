"""Part 3 filters: ``filter``, ``filter-lang``, ``filter-crs`` through :func:`gis.cql2.to_sql`.

The translator (:mod:`gis.cql2`) is written separately; these tests run when it is installed and
are skipped (with that reason) otherwise. The tests of the API's own side (parameters, errors,
paging, SQL composition) need it too, since without it ``filter`` is a 400 by design.
"""

from __future__ import annotations

import orjson
import pytest
from api_helpers import walk

from api.params import cql2_available

pytestmark = pytest.mark.skipif(
    not cql2_available(), reason="gis.cql2 (the CQL2 translator) is not installed yet"
)

VN2000 = "http://www.opengis.net/def/crs/EPSG/0/9210"


def ids(db, where: str, params=()) -> list[int]:
    return [
        r[0]
        for r in db.execute(
            f"SELECT parcel_id FROM cadastral.parcels_current WHERE {where} ORDER BY parcel_id",
            params,
        )
    ]


def test_cql2_text(client, db):
    expected = ids(db, "land_use = 'ODT' AND legal_area_m2 > 100")
    got, pages = walk(
        client,
        "/collections/parcels/items?limit=50&filter=land_use = 'ODT' AND legal_area_m2 > 100",
    )
    assert got == expected and len(pages) > 1
    assert pages[0]["numberMatched"] == len(expected)


def test_cql2_json(client, db):
    f = {
        "op": "and",
        "args": [
            {"op": "=", "args": [{"property": "land_use"}, "TMD"]},
            {"op": "<", "args": [{"property": "sheet_no"}, 3]},
        ],
    }
    r = client.get(
        "/collections/parcels/items",
        params={"filter": orjson.dumps(f).decode(), "filter-lang": "cql2-json", "limit": 1000},
    )
    assert r.status_code == 200
    assert [x["id"] for x in r.json()["features"]] == ids(db, "land_use = 'TMD' AND sheet_no < 3")


def test_like_with_percent(client, db):
    r = client.get(
        "/collections/parcels/items", params={"filter": "address LIKE '%Tố Hữu%'", "limit": 1000}
    )
    assert r.status_code == 200
    assert [x["id"] for x in r.json()["features"]] == ids(db, "address LIKE '%%Tố Hữu%%'")


def test_spatial_filter_with_filter_crs(client, db):
    # a box in VN-2000 / TM-3 105-45 metres
    poly = (
        "POLYGON((605850 1191850, 605910 1191850, 605910 1191890, 605850 1191890, 605850 1191850))"
    )
    r = client.get(
        "/collections/parcels/items",
        params={"filter": f"S_INTERSECTS(geometry, {poly})", "filter-crs": VN2000, "limit": 1000},
    )
    assert r.status_code == 200
    got = [x["id"] for x in r.json()["features"]]
    same_as_bbox = client.get(
        "/collections/parcels/items",
        params={"bbox": "605850,1191850,605910,1191890", "bbox-crs": VN2000, "limit": 1000},
    ).json()
    assert got == [x["id"] for x in same_as_bbox["features"]] and got


def test_filter_combines_with_other_parameters(client, db):
    r = client.get(
        "/collections/parcels/items",
        params={
            "filter": "legal_area_m2 > 120",
            "land_use": "ODT",
            "sortby": "-legal_area_m2",
            "limit": 5,
            "properties": "legal_area_m2",
        },
    )
    assert r.status_code == 200
    areas = [f["properties"]["legal_area_m2"] for f in r.json()["features"]]
    assert areas == sorted(areas, reverse=True) and min(areas) > 120


@pytest.mark.parametrize(
    "params, words",
    [
        ({"filter": "land_use = "}, ""),
        ({"filter": "owner_name = 'x'"}, "owner_name"),
        ({"filter": "sheet_no = 'abc'"}, "sheet_no"),
        ({"filter": "{not json", "filter-lang": "cql2-json"}, "filter"),
        ({"filter": "land_use = 'ODT'", "filter-lang": "ecql"}, "filter-lang"),
        ({"filter-lang": "cql2-text"}, "filter-lang is given without filter"),
        ({"filter": "land_use = 'ODT'", "filter-crs": "EPSG:2154"}, "filter-crs"),
    ],
)
def test_bad_filters_400(client, params, words):
    r = client.get("/collections/parcels/items", params=params)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["code"] in ("InvalidParameterValue", "InvalidCRS")
    assert words in body["description"]


@pytest.mark.parametrize("expr", ["legal_area_m2 ^ 400 > 1", "sheet_no ^ 1000 > 1"])
def test_arithmetic_overflow_on_the_data_is_400_not_500(client, expr):
    """Overflow met on some rows only (sheet 1 passes, sheet 2 overflows): still a clean 400,
    whether the page query or the count meets it (a filtered page is read before responding)."""
    r = client.get("/collections/parcels/items", params={"filter": expr, "limit": 10})
    assert r.status_code == 400, r.text
    assert r.json()["description"].startswith("Parameter filter")
