"""Tests of gis.cql2: CQL2 text/JSON -> SQL, run against the real database with the sample data.

Every selection made by a filter is compared with the same selection computed independently in
Python from a plain SELECT of all the rows (shapely for the spatial predicates, a small reference of
the CQL2 temporal relations, a LIKE-to-regex reference...). A few counts derived by hand from the
sample data anchor the temporal semantics (half-open validity, open ends).

The sample: the demo cadastre loaded with validity from 2020-01-01, then a later edition of sheet 1
from 2023-06-15 that splits parcel 1/1 in two and changes the land use of parcel 1/10, so that
``parcel-history`` holds 598 rows valid [2020-01-01, open), 2 rows valid [2020-01-01, 2023-06-15)
and 3 rows valid [2023-06-15, open).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from datetime import UTC, date, datetime
from decimal import Decimal

import psycopg
import pytest
import shapely
from psycopg import sql

from gis import cql2, sample
from gis.catalog import load_catalog
from gis.crs import make_transformer
from gis.errors import InputError
from ingest.job import IngestOptions, run_ingest

T2020 = datetime(2020, 1, 1, tzinfo=UTC)
T2023 = datetime(2023, 6, 15, tzinfo=UTC)
MIN = datetime.min.replace(tzinfo=UTC)
MAX = datetime.max.replace(tzinfo=UTC)


# --------------------------------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dsn(module_dsn, tmp_path_factory):
    """The module's database with the sample data loaded (read-only for the tests)."""
    tmp = tmp_path_factory.mktemp("cql2")
    paths = sample.generate(tmp)
    run_ingest(module_dsn, "cadastral", paths["cadastral"], IngestOptions(valid_from=T2020),
               rejects_dir=tmp)
    run_ingest(module_dsn, "cadastral", paths["cadastral_update"], IngestOptions(valid_from=T2023),
               rejects_dir=tmp)
    for kind in ("planning", "poi", "roads"):
        run_ingest(module_dsn, kind, paths[kind], rejects_dir=tmp)
    with psycopg.connect(module_dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS unaccent")  # for the unaccent variant only
    return module_dsn


@pytest.fixture(scope="module")
def conn(dsn):
    with psycopg.connect(dsn, autocommit=True) as c:
        yield c


@pytest.fixture(scope="module")
def catalog(conn):
    return load_catalog(conn)


_ROWS: dict[tuple[str, str], list[dict]] = {}


def all_rows(conn, coll) -> list[dict]:
    """Every row of a collection: id, public fields and the geometry (shapely), by plain SELECT."""
    key = (conn.info.dbname, coll.id)
    if key not in _ROWS:
        cols = [coll.id_column, *coll.field_names]
        query = sql.SQL("SELECT {}, ST_AsBinary({}) FROM {}").format(
            sql.SQL(", ").join(map(sql.Identifier, cols)), sql.Identifier(coll.geometry_column),
            sql.Identifier(coll.schema, coll.relation))
        rows = []
        for rec in conn.execute(query).fetchall():
            row = dict(zip(cols, rec[:-1], strict=True))
            row["id"] = rec[0]
            row["geometry"] = shapely.from_wkb(bytes(rec[-1]))
            rows.append(row)
        _ROWS[key] = rows
    return _ROWS[key]


def select(conn, coll, filt, lang="cql2-text", crs=None, **kw) -> set:
    """Ids selected by the filter, run in the database."""
    where = cql2.to_sql(filt, lang, coll, crs, **kw)
    query = sql.SQL("SELECT {} FROM {} WHERE {}").format(
        sql.Identifier(coll.id_column), sql.Identifier(coll.schema, coll.relation), where)
    return {r[0] for r in conn.execute(query).fetchall()}


def expect(conn, coll, predicate) -> set:
    return {r["id"] for r in all_rows(conn, coll) if predicate(r)}


def like(value: str | None, pattern: str) -> bool:
    """Reference LIKE: % any string, _ one character, backslash escapes."""
    if value is None:
        return False
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.fullmatch("".join(out), value, flags=re.S) is not None


def fold(text: str) -> str:
    """Reference accent fold: decompose, drop combining marks, đ -> d."""
    text = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(ch for ch in text if not unicodedata.combining(ch))


def prop(name):
    return {"property": name}


# --------------------------------------------------------------------------------------------------
# basic-cql2 and advanced comparison operators, in both encodings
# --------------------------------------------------------------------------------------------------

BASIC = [
    ("land_use = 'ODT'",
     {"op": "=", "args": [prop("land_use"), "ODT"]},
     lambda r: r["land_use"] == "ODT"),
    ("legal_area_m2 > 150",
     {"op": ">", "args": [prop("legal_area_m2"), 150]},
     lambda r: r["legal_area_m2"] > 150),
    ("legal_area_m2 <= 80.5",
     {"op": "<=", "args": [prop("legal_area_m2"), 80.5]},
     lambda r: r["legal_area_m2"] <= Decimal("80.5")),
    ("sheet_no <> 1 AND parcel_no >= 140",
     {"op": "and", "args": [{"op": "<>", "args": [prop("sheet_no"), 1]},
                            {"op": ">=", "args": [prop("parcel_no"), 140]}]},
     lambda r: r["sheet_no"] != 1 and r["parcel_no"] >= 140),
    ("sheet_no = 2 OR land_use = 'TON' AND NOT owner_type = 'TTG'",
     {"op": "or", "args": [{"op": "=", "args": [prop("sheet_no"), 2]},
                           {"op": "and", "args": [
                               {"op": "=", "args": [prop("land_use"), "TON"]},
                               {"op": "not", "args": [{"op": "=", "args": [prop("owner_type"),
                                                                           "TTG"]}]}]}]},
     lambda r: r["sheet_no"] == 2 or (r["land_use"] == "TON" and r["owner_type"] != "TTG")),
    ("NOT (sheet_no = 1 OR sheet_no = 2)",
     {"op": "not", "args": [{"op": "or", "args": [{"op": "=", "args": [prop("sheet_no"), 1]},
                                                  {"op": "=", "args": [prop("sheet_no"), 2]}]}]},
     lambda r: r["sheet_no"] not in (1, 2)),
    ("address IS NULL",
     {"op": "isNull", "args": [prop("address")]},
     lambda r: r["address"] is None),
    ("address IS NOT NULL AND sheet_no = 3",
     {"op": "and", "args": [{"op": "not", "args": [{"op": "isNull", "args": [prop("address")]}]},
                            {"op": "=", "args": [prop("sheet_no"), 3]}]},
     lambda r: r["address"] is not None and r["sheet_no"] == 3),
    ("valid_from = TIMESTAMP('2023-06-15T00:00:00Z')",
     {"op": "=", "args": [prop("valid_from"), {"timestamp": "2023-06-15T00:00:00Z"}]},
     lambda r: r["valid_from"] == T2023),
    ("valid_from < DATE('2021-01-01')",
     {"op": "<", "args": [prop("valid_from"), {"date": "2021-01-01"}]},
     lambda r: r["valid_from"] < datetime(2021, 1, 1, tzinfo=UTC)),
    ("id = 5 OR parcel_id = 6",
     {"op": "or", "args": [{"op": "=", "args": [prop("id"), 5]},
                           {"op": "=", "args": [prop("parcel_id"), 6]}]},
     lambda r: r["id"] in (5, 6)),
    # advanced comparison operators
    ("address LIKE '1_ Đường%'",
     {"op": "like", "args": [prop("address"), "1_ Đường%"]},
     lambda r: like(r["address"], "1_ Đường%")),
    ("address NOT LIKE '%Tố Hữu%'",
     {"op": "not", "args": [{"op": "like", "args": [prop("address"), "%Tố Hữu%"]}]},
     lambda r: r["address"] is not None and not like(r["address"], "%Tố Hữu%")),
    ("legal_area_m2 BETWEEN 100 AND 120",
     {"op": "between", "args": [prop("legal_area_m2"), 100, 120]},
     lambda r: 100 <= r["legal_area_m2"] <= 120),
    ("legal_area_m2 NOT BETWEEN 70 AND 160",
     {"op": "not", "args": [{"op": "between", "args": [prop("legal_area_m2"), 70, 160]}]},
     lambda r: not 70 <= r["legal_area_m2"] <= 160),
    ("land_use IN ('TMD', 'DGD', 'TON')",
     {"op": "in", "args": [prop("land_use"), ["TMD", "DGD", "TON"]]},
     lambda r: r["land_use"] in ("TMD", "DGD", "TON")),
    ("parcel_no NOT IN (1, 2, 3) AND sheet_no IN (1)",
     {"op": "and", "args": [{"op": "not", "args": [{"op": "in", "args": [prop("parcel_no"),
                                                                         [1, 2, 3]]}]},
                            {"op": "in", "args": [prop("sheet_no"), [1]]}]},
     lambda r: r["parcel_no"] not in (1, 2, 3) and r["sheet_no"] == 1),
    # arithmetic
    ("sheet_no * 1000 + parcel_no = 2037",
     {"op": "=", "args": [{"op": "+", "args": [{"op": "*", "args": [prop("sheet_no"), 1000]},
                                               prop("parcel_no")]}, 2037]},
     lambda r: r["sheet_no"] * 1000 + r["parcel_no"] == 2037),
    ("legal_area_m2 / 2 > 80",
     {"op": ">", "args": [{"op": "/", "args": [prop("legal_area_m2"), 2]}, 80]},
     lambda r: r["legal_area_m2"] / 2 > 80),
    ("parcel_no % 50 = 0 AND parcel_no div 50 = 2",
     {"op": "and", "args": [{"op": "=", "args": [{"op": "%", "args": [prop("parcel_no"), 50]}, 0]},
                            {"op": "=", "args": [{"op": "div", "args": [prop("parcel_no"), 50]},
                                                 2]}]},
     lambda r: r["parcel_no"] == 100),
    ("sheet_no ^ 2 = 9 AND -parcel_no > -3",
     {"op": "and", "args": [{"op": "=", "args": [{"op": "^", "args": [prop("sheet_no"), 2]}, 9]},
                            {"op": ">", "args": [{"op": "-", "args": [0, prop("parcel_no")]},
                                                 -3]}]},
     lambda r: r["sheet_no"] == 3 and r["parcel_no"] < 3),
    ("parcel_no / (sheet_no - sheet_no) > 1 OR parcel_no = 7 - 2 * 3",
     {"op": "or", "args": [
         {"op": ">", "args": [{"op": "/", "args": [prop("parcel_no"), {"op": "-", "args": [
             prop("sheet_no"), prop("sheet_no")]}]}, 1]},
         {"op": "=", "args": [prop("parcel_no"), {"op": "-", "args": [7, {"op": "*", "args": [
             2, 3]}]}]}]},
     lambda r: r["parcel_no"] == 1),  # division by a zero value: NULL, the row does not match
    ("TRUE AND (FALSE OR sheet_no = 4)",
     {"op": "and", "args": [True, {"op": "or", "args": [False, {"op": "=", "args": [
         prop("sheet_no"), 4]}]}]},
     lambda r: r["sheet_no"] == 4),
]


@pytest.mark.parametrize("text, js, predicate", BASIC, ids=[c[0] for c in BASIC])
def test_comparisons_text_and_json(conn, catalog, text, js, predicate):
    coll = catalog["parcels"]
    want = expect(conn, coll, predicate)
    assert want, "the case should select something"
    assert select(conn, coll, text) == want
    assert select(conn, coll, js, "cql2-json") == want
    assert select(conn, coll, json.dumps(js, ensure_ascii=False), "cql2-json") == want


def test_like_single_character_and_escape(conn, catalog):
    lots = catalog["planning-lots"]
    want = expect(conn, lots, lambda r: re.fullmatch(r"A.", r["lot_code"]) is not None)
    assert want and select(conn, lots, "lot_code LIKE 'A_'") == want
    # an escaped wildcard is a literal character: no lot code contains '%' or '_'
    assert select(conn, lots, "lot_code LIKE 'A\\%'") == set()
    escaped = {"op": "like", "args": [prop("lot_code"), "A\\_"]}
    assert select(conn, lots, escaped, "cql2-json") == set()


def test_boolean_and_other_collections(conn, catalog):
    roads = catalog["roads"]
    want = expect(conn, roads, lambda r: r["oneway"] is False and (r["lanes"] or 0) >= 2)
    assert want and select(conn, roads, "oneway = FALSE AND lanes >= 2") == want
    assert select(conn, roads, {"op": "and", "args": [
        {"op": "=", "args": [prop("oneway"), False]},
        {"op": ">=", "args": [prop("lanes"), 2]}]}, "cql2-json") == want
    lots = catalog["planning-lots"]
    want = expect(conn, lots, lambda r: (r["max_far"] or 0) > 3 and r["use_class"] == "Đất hỗn hợp")
    assert want and select(conn, lots, "max_far > 3 AND use_class = 'Đất hỗn hợp'") == want


def test_literal_arithmetic_is_folded_like_postgresql(conn, catalog):
    """Literal-only arithmetic is computed in Python: it must agree with PostgreSQL."""
    coll = catalog["parcels"]
    every = {r["id"] for r in all_rows(conn, coll)}
    cases = [("7 div 2", "div(7, 2)", "3"), ("-7 div 2", "div(-7, 2)", "-3"),
             ("-7 % 3", "mod(-7, 3)", "-1"), ("7 % -3", "mod(7, -3)", "1"),
             ("2 ^ 10", "power(2, 10)", "1024"), ("2 ^ -1", "power(2, -1)", "0.5"),
             ("7 / 2", "7::numeric / 2", "3.5"), ("(1 + 2) * -3", "(1 + 2) * -3", "-9")]
    for cql, pg, value in cases:
        assert select(conn, coll, f"{cql} = {value}") == every, cql
        query = sql.SQL("SELECT ({})::numeric = {}").format(sql.SQL(pg), sql.SQL(value))
        assert conn.execute(query).fetchone()[0] is True, pg


def test_data_dependent_overflow_is_a_data_error(conn, catalog):
    """float8 overflow of ^ depends on the data: its SQLSTATE is one the API maps to a 400."""
    coll = catalog["parcels"]
    with pytest.raises(psycopg.Error) as info:
        select(conn, coll, "sheet_no ^ 1000 > 1")
    assert info.value.sqlstate in cql2.DATA_ERROR_SQLSTATES


def test_property_to_property_comparison(conn, catalog):
    coll = catalog["parcels"]
    want = expect(conn, coll, lambda r: r["parcel_no"] < r["sheet_no"] * 3)
    assert want and select(conn, coll, "parcel_no < sheet_no * 3") == want


# --------------------------------------------------------------------------------------------------
# CASEI and ACCENTI
# --------------------------------------------------------------------------------------------------


def test_casei(conn, catalog):
    coll = catalog["parcels"]
    assert select(conn, coll, "CASEI(land_use) = CASEI('odt')") == \
        expect(conn, coll, lambda r: r["land_use"] == "ODT")
    want = expect(conn, coll, lambda r: like(r["address"] and r["address"].lower(), "%tố hữu%"))
    assert want
    assert select(conn, coll, "CASEI(address) LIKE CASEI('%TỐ HỮU%')") == want
    assert select(conn, coll, {"op": "like", "args": [{"op": "casei", "args": [prop("address")]},
                                                      {"op": "casei", "args": ["%TỐ HỮU%"]}]},
                  "cql2-json") == want
    assert select(conn, coll, "address LIKE '%TỐ HỮU%'") == set()  # without CASEI: case matters


@pytest.mark.parametrize("unaccent", [False, True], ids=["translate", "unaccent"])
def test_accenti_vietnamese(conn, catalog, unaccent):
    kw = {"unaccent_schema": cql2.unaccent_schema(conn) if unaccent else None}
    if unaccent:
        assert kw["unaccent_schema"] == "public"
    coll = catalog["parcels"]
    want = expect(conn, coll, lambda r: like(r["address"] and fold(r["address"]),
                                             "%Nguyen Co Thach%"))
    assert want
    assert select(conn, coll, "ACCENTI(address) LIKE ACCENTI('%Nguyen Co Thach%')", **kw) == want
    assert select(conn, coll, {"op": "like", "args": [{"op": "accenti", "args": [prop("address")]},
                                                      {"op": "accenti",
                                                       "args": ["%Nguyen Co Thach%"]}]},
                  "cql2-json", **kw) == want
    assert select(conn, coll, "address LIKE '%Nguyen Co Thach%'") == set()

    poi = catalog["poi"]
    hospital = expect(conn, poi, lambda r: r["name"] == "Bệnh viện Đa khoa Thủ Thiêm")
    assert len(hospital) == 1
    assert select(conn, poi, "ACCENTI(name) = ACCENTI('Benh vien Da khoa Thu Thiem')",
                  **kw) == hospital
    # ACCENTI alone is case-sensitive (as in the standard); with CASEI it is not
    lower = "ACCENTI(name) = ACCENTI('benh vien da khoa thu thiem')"
    assert select(conn, poi, lower, **kw) == set()
    assert select(conn, poi, "CASEI(ACCENTI(name)) = CASEI(ACCENTI('BENH VIEN ĐA KHOA THU THIEM'))",
                  **kw) == hospital

    everything = {r["id"] for r in all_rows(conn, poi)}
    assert select(conn, poi, "ACCENTI('Bến Nghé') = ACCENTI('Ben Nghe')", **kw) == everything
    assert select(conn, poi, "ACCENTI('Bến Nghé') = ACCENTI('ben nghe')", **kw) == set()
    assert select(conn, poi, "CASEI(ACCENTI('Bến Nghé')) = CASEI(ACCENTI('ben nghe'))",
                  **kw) == everything
    # decomposed (NFD) input folds the same; the literal is normalised to NFC as well
    nfd = unicodedata.normalize("NFD", "Đường Tố Hữu")
    assert select(conn, poi, f"ACCENTI('{nfd}') = ACCENTI('Duong To Huu')", **kw) == everything
    assert select(conn, poi, f"'{nfd}' = 'Đường Tố Hữu'") == everything


def test_accent_fold_table_covers_vietnamese():
    src, dst = cql2._fold_table()
    table = dict(zip(src[:len(dst)], dst, strict=True))
    letters = "ăâêôơưđĂÂÊÔƠƯĐ" + "àáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ"
    letters += letters.upper()
    for ch in letters:
        assert table.get(ch) == fold(ch), ch


# --------------------------------------------------------------------------------------------------
# Spatial functions
# --------------------------------------------------------------------------------------------------

CENTRE = (106.7206, 10.77535)


def diamond(r=0.0004, cx=CENTRE[0], cy=CENTRE[1]):
    return shapely.Polygon([(cx + r, cy), (cx, cy + r * 0.9), (cx - r, cy), (cx, cy - r * 0.9)])


def wkt(geom) -> str:
    return shapely.to_wkt(geom, rounding_precision=-1)


SPATIAL = [
    ("S_INTERSECTS", lambda g, lit: g.intersects(lit), diamond()),
    ("S_DISJOINT", lambda g, lit: g.disjoint(lit), diamond()),
    ("S_WITHIN", lambda g, lit: g.within(lit), diamond()),
    ("S_OVERLAPS", lambda g, lit: g.overlaps(lit), diamond()),
    ("S_CONTAINS", lambda g, lit: g.contains(lit), shapely.Point(106.72061, 10.775525)),
    ("S_CROSSES", lambda g, lit: g.crosses(lit),
     shapely.LineString([(106.7195, 10.7748), (106.7216, 10.7760)])),
]


@pytest.mark.parametrize("name, predicate, literal", SPATIAL, ids=[c[0] for c in SPATIAL])
def test_spatial_functions(conn, catalog, name, predicate, literal):
    coll = catalog["parcels"]
    want = expect(conn, coll, lambda r: predicate(r["geometry"], literal))
    assert want  # S_TOUCHES: see test_spatial_equals_and_touches_with_a_parcel
    assert select(conn, coll, f"{name}(geometry, {wkt(literal)})") == want
    gj = shapely.geometry.mapping(literal)
    assert select(conn, coll, {"op": name.lower(), "args": [prop("geometry"), gj]},
                  "cql2-json") == want


def test_spatial_equals_and_touches_with_a_parcel(conn, catalog):
    coll = catalog["parcels"]
    target = next(r for r in all_rows(conn, coll) if r["sheet_no"] == 2 and r["parcel_no"] == 20)
    geom = target["geometry"]
    assert select(conn, coll, f"S_EQUALS(geom, {wkt(geom)})") == {target["id"]}
    neighbours = expect(conn, coll, lambda r: r["geometry"].touches(geom))
    assert len(neighbours) >= 2
    assert select(conn, coll, {"op": "s_touches", "args": [
        prop("geom"), shapely.geometry.mapping(geom)]}, "cql2-json") == neighbours


def test_bbox_literal(conn, catalog):
    coll = catalog["parcels"]
    box = (106.7199, 10.7749, 106.7211, 10.7757)
    want = expect(conn, coll, lambda r: r["geometry"].intersects(shapely.box(*box)))
    assert want
    assert select(conn, coll, "S_INTERSECTS(geometry, BBOX({}, {}, {}, {}))".format(*box)) == want
    js = {"op": "s_intersects", "args": [prop("geometry"), {"bbox": list(box)}]}
    assert select(conn, coll, js, "cql2-json") == want
    poi = catalog["poi"]
    want = expect(conn, poi, lambda r: r["geometry"].within(shapely.box(*box)))
    assert select(conn, poi, "S_WITHIN(geometry, BBOX({}, {}, {}, {}))".format(*box)) == want


@pytest.mark.parametrize("code", ["EPSG:9210", "EPSG:3857"])
def test_filter_crs(conn, catalog, code):
    """A literal in VN-2000 / TM-3 105-45 or Web Mercator selects what its CRS84 twin selects."""
    coll = catalog["parcels"]
    literal = diamond()
    want = select(conn, coll, f"S_INTERSECTS(geometry, {wkt(literal)})")
    assert want == expect(conn, coll, lambda r: r["geometry"].intersects(literal))
    projected = make_transformer("OGC:CRS84", code).transform_geoms(literal)
    assert projected.bounds[0] > 100_000  # metres, really
    uri = f"http://www.opengis.net/def/crs/EPSG/0/{code.split(':')[1]}"
    for crs in (code, uri):
        assert select(conn, coll, f"S_INTERSECTS(geometry, {wkt(projected)})", crs=crs) == want
    assert select(conn, coll, {"op": "s_intersects", "args": [
        prop("geometry"), shapely.geometry.mapping(projected)]}, "cql2-json", crs=uri) == want
    # a BBOX in the projected CRS
    box = shapely.box(*projected.bounds)
    box_ll = make_transformer(code).transform_geoms(box)
    want_box = expect(conn, coll, lambda r: r["geometry"].intersects(box_ll))
    assert select(conn, coll, "S_INTERSECTS(geometry, BBOX({}, {}, {}, {}))".format(
        *projected.bounds), crs=uri) == want_box


def test_filter_crs_axis_order(conn, catalog):
    coll = catalog["parcels"]
    literal = diamond()
    want = select(conn, coll, f"S_INTERSECTS(geometry, {wkt(literal)})")
    crs84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
    assert select(conn, coll, f"S_INTERSECTS(geometry, {wkt(literal)})", crs=crs84) == want
    latlon = shapely.transform(literal, lambda c: c[:, ::-1])
    epsg4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"
    assert select(conn, coll, f"S_INTERSECTS(geometry, {wkt(latlon)})", crs=epsg4326) == want
    with pytest.raises(InputError, match="latitude first"):
        cql2.to_sql(f"S_INTERSECTS(geometry, {wkt(literal)})", "cql2-text", coll, epsg4326)
    with pytest.raises(InputError, match="Unknown CRS"):
        cql2.to_sql("S_INTERSECTS(geometry, POINT(1 2))", "cql2-text", coll, "EPSG:999999")


# --------------------------------------------------------------------------------------------------
# Temporal functions
# --------------------------------------------------------------------------------------------------


def allen(name, a, b):
    """Reference CQL2 temporal relations on (start, end, end_open) triples (instants: s == e)."""
    (as_, ae, a_open), (bs, be, b_open) = a, b
    intersects = (as_ < be if b_open else as_ <= be) and (bs < ae if a_open else bs <= ae)
    return {
        "T_AFTER": as_ > be, "T_BEFORE": ae < bs, "T_CONTAINS": as_ < bs and ae > be,
        "T_DISJOINT": not intersects, "T_DURING": as_ > bs and ae < be,
        "T_EQUALS": as_ == bs and ae == be, "T_FINISHEDBY": as_ < bs and ae == be,
        "T_FINISHES": as_ > bs and ae == be, "T_INTERSECTS": intersects, "T_MEETS": ae == bs,
        "T_METBY": as_ == be, "T_OVERLAPPEDBY": as_ > bs and as_ < be and ae > be,
        "T_OVERLAPS": as_ < bs and ae > bs and ae < be, "T_STARTEDBY": as_ == bs and ae > be,
        "T_STARTS": as_ == bs and ae < be,
    }[name]


def _ts(text):
    if text == "..":
        return None
    if len(text) == 10:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    return datetime.fromisoformat(text)


def validity(row):
    return (row["valid_from"] or MIN, row["valid_to"] or MAX, True)


# (function, right operand as CQL2 text, as CQL2 JSON, as a reference triple, hand-derived count)
TEMPORAL = [
    ("T_INTERSECTS", "TIMESTAMP('2023-06-15T00:00:00Z')", {"timestamp": "2023-06-15T00:00:00Z"},
     (T2023, T2023, False), 601),
    ("T_INTERSECTS", "DATE('2021-06-01')", {"date": "2021-06-01"},
     (_ts("2021-06-01"), _ts("2021-06-01"), False), 600),
    ("T_DISJOINT", "TIMESTAMP('2023-06-15T00:00:00Z')", {"timestamp": "2023-06-15T00:00:00Z"},
     (T2023, T2023, False), 2),
    ("T_DISJOINT", "INTERVAL('..', '2019-12-31')", {"interval": ["..", "2019-12-31"]},
     (MIN, _ts("2019-12-31"), False), 603),
    ("T_MEETS", "INTERVAL('2023-06-15T00:00:00Z', '..')", {"interval": ["2023-06-15T00:00:00Z",
                                                                       ".."]},
     (T2023, MAX, False), 2),
    ("T_METBY", "INTERVAL('..', '2023-06-15')", {"interval": ["..", "2023-06-15"]},
     (MIN, T2023, False), 3),
    ("T_DURING", "INTERVAL('2019-01-01', '2024-01-01')", {"interval": ["2019-01-01", "2024-01-01"]},
     (_ts("2019-01-01"), _ts("2024-01-01"), False), 2),
    ("T_CONTAINS", "TIMESTAMP('2021-01-01T00:00:00Z')", {"timestamp": "2021-01-01T00:00:00Z"},
     (_ts("2021-01-01"), _ts("2021-01-01"), False), 600),
    ("T_STARTS", "INTERVAL('2020-01-01T00:00:00Z', '2030-01-01T00:00:00Z')",
     {"interval": ["2020-01-01T00:00:00Z", "2030-01-01T00:00:00Z"]},
     (T2020, _ts("2030-01-01"), False), 2),
    ("T_STARTEDBY", "INTERVAL('2020-01-01', '2021-01-01')",
     {"interval": ["2020-01-01", "2021-01-01"]}, (T2020, _ts("2021-01-01"), False), 600),
    ("T_FINISHES", "INTERVAL('2010-01-01', '..')", {"interval": ["2010-01-01", ".."]},
     (_ts("2010-01-01"), MAX, False), 601),
    ("T_FINISHEDBY", "INTERVAL('2021-01-01', '2023-06-15T00:00:00Z')",
     {"interval": ["2021-01-01", "2023-06-15T00:00:00Z"]}, (_ts("2021-01-01"), T2023, False), 2),
    ("T_OVERLAPS", "INTERVAL('2022-01-01', '2024-01-01')", {"interval": ["2022-01-01",
                                                                        "2024-01-01"]},
     (_ts("2022-01-01"), _ts("2024-01-01"), False), 2),
    ("T_OVERLAPPEDBY", "INTERVAL('2019-01-01', '2021-01-01')",
     {"interval": ["2019-01-01", "2021-01-01"]}, (_ts("2019-01-01"), _ts("2021-01-01"), False),
     600),
    ("T_EQUALS", "INTERVAL('2023-06-15T00:00:00Z', '..')", {"interval": ["2023-06-15T00:00:00Z",
                                                                        ".."]},
     (T2023, MAX, False), 3),
    ("T_BEFORE", "TIMESTAMP('2024-01-01T00:00:00Z')", {"timestamp": "2024-01-01T00:00:00Z"},
     (_ts("2024-01-01"), _ts("2024-01-01"), False), 2),
    ("T_AFTER", "DATE('2021-01-01')", {"date": "2021-01-01"},
     (_ts("2021-01-01"), _ts("2021-01-01"), False), 3),
]


@pytest.mark.parametrize("name, text, js, ref, count", TEMPORAL,
                         ids=[f"{c[0]}-{c[1][:20]}" for c in TEMPORAL])
def test_temporal_functions_on_validity(conn, catalog, name, text, js, ref, count):
    coll = catalog["parcel-history"]
    want = expect(conn, coll, lambda r: allen(name, validity(r), ref))
    assert len(want) == count  # the reference agrees with the hand-derived count
    assert select(conn, coll, f"{name}(INTERVAL(valid_from, valid_to), {text})") == want
    assert select(conn, coll, {"op": name.lower(), "args": [
        {"interval": [prop("valid_from"), prop("valid_to")]}, js]}, "cql2-json") == want


def test_temporal_instants_and_dates(conn, catalog):
    parcels = catalog["parcels"]
    want = expect(conn, parcels, lambda r: r["valid_from"] > datetime(2021, 1, 1, tzinfo=UTC))
    assert len(want) == 3
    assert select(conn, parcels, "T_AFTER(valid_from, DATE('2021-01-01'))") == want
    assert select(conn, parcels, "T_DURING(valid_from, INTERVAL('2021-01-01', '..'))") == want
    assert select(conn, parcels, "T_BEFORE(valid_from, TIMESTAMP('2021-01-01T07:00:00+07:00'))") \
        == expect(conn, parcels, lambda r: r["valid_from"] == T2020)
    lots = catalog["planning-lots"]
    every = {r["id"] for r in all_rows(conn, lots)}
    assert {r["approval_date"] for r in all_rows(conn, lots)} == {date(2023, 5, 12)}
    assert select(conn, lots, "T_EQUALS(approval_date, DATE('2023-05-12'))") == every
    # a date is midnight UTC when compared with a timestamp
    assert select(conn, lots, "T_EQUALS(approval_date, TIMESTAMP('2023-05-12T00:00:00Z'))") == every
    assert select(conn, lots, "approval_date < TIMESTAMP('2023-05-12T00:00:01Z')") == every
    assert select(conn, lots, "approval_date > TIMESTAMP('2023-05-12T00:00:00Z')") == set()
    assert select(conn, lots, "approval_date BETWEEN DATE('2023-01-01') AND "
                              "TIMESTAMP('2024-01-01T00:00:00Z')") == every
    # a property pair that is not the validity: closed interval, NULL bound = open
    history = catalog["parcel-history"]
    assert select(conn, history, "T_INTERSECTS(INTERVAL(valid_to, valid_from), "
                                 "TIMESTAMP('2023-06-15T00:00:00Z'))") == \
        expect(conn, history, lambda r: allen("T_INTERSECTS", (r["valid_to"] or MIN,
                                                               r["valid_from"], False),
                                              (T2023, T2023, False)))


# --------------------------------------------------------------------------------------------------
# Errors: each an InputError with a clear message
# --------------------------------------------------------------------------------------------------


def error(coll, filt, lang="cql2-text", crs=None) -> str:
    with pytest.raises(InputError) as info:
        cql2.to_sql(filt, lang, coll, crs)
    assert info.value.http_status == 400
    return info.value.message


def test_unknown_property(catalog):
    msg = error(catalog["parcels"], "owner_name = 'Nguyễn Văn A'")
    assert msg == ("Unknown property 'owner_name' in filter: queryables of parcels are parcel_id, "
                   "commune_code, sheet_no, parcel_no, land_use, legal_area_m2, address, "
                   "owner_type, valid_from, geometry")
    # a column of the relation that is not public is not a queryable
    private = {"op": "=", "args": [prop("row_hash"), "x"]}
    msg = error(catalog["parcel-history"], private, "cql2-json")
    assert "Unknown property 'row_hash'" in msg and "valid_to" in msg


@pytest.mark.parametrize("text, fragment", [
    ("land_use = 'ODT' AND", "at the end"),
    ("land_use == 'ODT'", "at position 11 near \"= 'ODT'\""),
    ("land_use = 'ODT", "unterminated string"),
    ("sheet_no = 1 $", "unexpected character '$'"),
    ("S_INTERSECTS(geometry, POLYGON((1 2, 3)))", "expected coordinates"),
    ("(sheet_no = 1", "expected ')'"),
])
def test_syntax_errors(catalog, text, fragment):
    msg = error(catalog["parcels"], text)
    assert msg.startswith("Invalid CQL2 text") and fragment in msg, msg


def test_json_errors(catalog):
    coll = catalog["parcels"]
    msg = error(coll, '{"op": "=", "args": [', "cql2-json")
    assert msg.startswith("Invalid CQL2 JSON at line 1")
    assert "takes 3 arguments" in error(coll, {"op": "between", "args": [prop("sheet_no"), 1]},
                                        "cql2-json")
    assert "null is not a CQL2 value" in error(coll, {"op": "=", "args": [prop("address"), None]},
                                               "cql2-json")
    assert "not finite" in error(coll, '{"op": "=", "args": [{"property": "sheet_no"}, NaN]}',
                                 "cql2-json")
    assert "must be a string" in error(coll, {"op": "="}, "cql2-text")


@pytest.mark.parametrize("filt, lang, fragments", [
    ("sheet_no = '1'", "cql2-text",
     ["property 'sheet_no' is a number (int4)", "the string '1'", "without quotes"]),
    ("commune_code = 27094", "cql2-text",
     ["property 'commune_code' is text", "the number 27094", "quote the value: '27094'"]),
    ({"op": "=", "args": [prop("commune_code"), 27094]}, "cql2-json",
     ["property 'commune_code' is text", "the number 27094", 'give the value as a string']),
    ("valid_from > '2021-01-01'", "cql2-text",
     ["property 'valid_from' is a timestamp", "the string '2021-01-01'", "DATE('2021-01-01')"]),
    ({"op": ">", "args": [prop("valid_from"), "2021-01-01T00:00:00Z"]}, "cql2-json",
     ["the string '2021-01-01T00:00:00Z'", '{"timestamp": "2021-01-01T00:00:00Z"}']),
    ("legal_area_m2 BETWEEN 'a' AND 'b'", "cql2-text", ["BETWEEN", "legal_area_m2", "'a'"]),
    ("land_use IN ('ODT', 5)", "cql2-text", ["IN", "land_use", "the number 5"]),
    ("sheet_no LIKE '1%'", "cql2-text", ["LIKE", "sheet_no", "not text"]),
    ("CASEI(sheet_no) = '1'", "cql2-text", ["CASEI applies to text", "sheet_no"]),
    ("sheet_no + 'a' > 1", "cql2-text", ["Arithmetic +", "the string 'a'"]),
    ("geometry = POINT(106.72 10.775)", "cql2-text", ["geometry", "S_EQUALS"]),
    ("S_INTERSECTS(land_use, POINT(106.72 10.775))", "cql2-text", ["S_INTERSECTS", "land_use"]),
    ("T_AFTER(sheet_no, DATE('2020-01-01'))", "cql2-text", ["T_AFTER", "sheet_no"]),
    ("T_AFTER(valid_from, '2020-01-01')", "cql2-text", ["T_AFTER", "DATE('...')"]),
    ("address", "cql2-text", ["Property 'address' alone is not a condition"]),
    ("pg_sleep(10) = 1", "cql2-text", ["Unsupported function 'pg_sleep'", "CASEI and ACCENTI"]),
    ({"op": "upper", "args": [prop("address")]}, "cql2-json", ["Unsupported function 'upper'"]),
    ("A_CONTAINS(land_use, ('ODT'))", "cql2-text", ["array functions are not supported"]),
    ("sheet_no / 0 > 1", "cql2-text", ["Division by zero"]),
    ("sheet_no > 10 ^ 4000", "cql2-text", ["too large"]),
    ("sheet_no > 1e308 * 10", "cql2-text", ["too large"]),
    ("DATE('2021-02-30') = valid_from", "cql2-text", ["Invalid date '2021-02-30'"]),
    ("valid_from = TIMESTAMP('2021-01-01')", "cql2-text", ["Invalid timestamp '2021-01-01'"]),
    ("land_use LIKE 'a' AND S_INTERSECTS(geometry, BBOX(3, 2, 1, 0))", "cql2-text",
     ["BBOX(3, 2, 1, 0) is empty"]),
    ({"op": "like", "args": [prop("address"), "abc\\"]}, "cql2-json", ["ends with the escape"]),
    ("S_INTERSECTS(geometry, POLYGON((106.72 10.77, 106.73 10.78, 106.73 10.77, "
     "106.72 10.78, 106.72 10.77)))", "cql2-text", ["Polygon in the filter is not valid",
                                                   "Self-intersection"]),
    ({"op": "s_intersects", "args": [prop("geometry"), {"type": "Polygon",
                                                        "coordinates": [[[1, 2], [3]]]}]},
     "cql2-json", ["Invalid GeoJSON position"]),
])
def test_type_and_value_errors(catalog, filt, lang, fragments):
    msg = error(catalog["parcels"], filt, lang)
    for fragment in fragments:
        assert fragment in msg, msg


def test_bad_lang(catalog):
    msg = error(catalog["parcels"], "sheet_no = 1", "cql2-xml")
    assert msg == "Unknown filter-lang 'cql2-xml': use one of cql2-text, cql2-json"
    assert cql2.to_sql("sheet_no = 1", " CQL2-Text ", catalog["parcels"])  # case and spaces


def test_limits(catalog):
    coll = catalog["parcels"]
    deep = "sheet_no = 1"
    for _ in range(cql2.MAX_DEPTH + 1):
        deep = f"NOT ({deep})"
    assert "nested too deeply" in error(coll, deep)
    nested = {"op": "=", "args": [prop("sheet_no"), 1]}
    for _ in range(cql2.MAX_DEPTH * 3):
        nested = {"op": "not", "args": [nested]}
    assert "nested too deeply" in error(coll, nested, "cql2-json")
    assert "nested too deeply" in error(coll, "(" * 500 + "sheet_no = 1" + ")" * 500)
    assert "nested too deeply" in error(coll, "[" * 100_000 + "]" * 100_000, "cql2-json")
    # a long AND chain is one level, not 120
    chain = " AND ".join(f"parcel_no <> {i}" for i in range(120))
    cql2.to_sql(chain, "cql2-text", coll)
    many = "parcel_no IN (" + ", ".join(str(i) for i in range(cql2.MAX_NODES)) + ")"
    assert "too large" in error(coll, many)
    ring = [(106.72 + 0.01 * math.cos(i / 2000), 10.775 + 0.01 * math.sin(i / 2000))
            for i in range(cql2.MAX_VERTICES)]
    ring.append(ring[0])
    polygon = "POLYGON((" + ", ".join(f"{x} {y}" for x, y in ring) + "))"
    assert "more than 10000 vertices" in error(coll, f"S_INTERSECTS(geometry, {polygon})")
    assert "more than 10000 vertices" in error(coll, {"op": "s_intersects", "args": [
        prop("geometry"), {"type": "Polygon", "coordinates": [[list(p) for p in ring]]}]},
        "cql2-json")
    assert "too long" in error(coll, "address = '" + "x" * cql2.MAX_FILTER_CHARS + "'")


def test_large_geometry_within_limits(conn, catalog):
    coll = catalog["parcels"]
    n = cql2.MAX_VERTICES - 1
    ring = [(CENTRE[0] + 0.0004 * math.cos(2 * math.pi * i / n),
             CENTRE[1] + 0.0004 * math.sin(2 * math.pi * i / n)) for i in range(n)]
    circle = shapely.Polygon(ring)
    want = expect(conn, coll, lambda r: r["geometry"].intersects(circle))
    assert want and select(conn, coll, f"S_INTERSECTS(geometry, {wkt(circle)})") == want


# --------------------------------------------------------------------------------------------------
# Injection attempts: harmless
# --------------------------------------------------------------------------------------------------


def test_injection_in_property_names(catalog):
    coll = catalog["parcels"]
    for name in ['parcel_id" = 1; DROP TABLE cadastral.parcels; --', "geom) OR (1=1",
                 "sheet_no;", "parcel_id'--"]:
        quoted = '"' + name.replace('"', '""') + '"'
        assert "Unknown property" in error(coll, f"{quoted} = 1")
        assert "Unknown property" in error(coll, {"op": "=", "args": [prop(name), 1]}, "cql2-json")


def test_injection_in_values(conn, catalog):
    coll = catalog["parcels"]
    before = conn.execute("SELECT count(*) FROM cadastral.parcels").fetchone()[0]
    nasty = ["x'; DROP TABLE cadastral.parcels; --", "x\\'; DELETE FROM cadastral.parcels; --",
             "%s; SELECT pg_sleep(5)", "'); DROP TABLE x; --", "\\", "$1", "%%", "%(x)s"]
    for value in nasty:
        like_want = expect(conn, coll, lambda r, v=value: like(r["address"], v))
        equal = {"op": "=", "args": [prop("address"), value]}
        assert select(conn, coll, equal, "cql2-json") == set()
        if value == "\\":  # a LIKE pattern ending with the escape character is refused
            assert "ends with the escape" in error(
                coll, {"op": "like", "args": [prop("address"), value]}, "cql2-json")
        else:
            assert select(conn, coll, {"op": "like", "args": [prop("address"), value]},
                          "cql2-json") == like_want
        if "\\" in value:  # CQL2 text reads \' as an escaped quote: such values go by JSON
            continue
        text_literal = "'" + value.replace("'", "''") + "'"
        assert select(conn, coll, f"address = {text_literal}") == set()
        assert select(conn, coll, f"address LIKE {text_literal}") == like_want
        folded = f"CASEI(ACCENTI(address)) = CASEI(ACCENTI({text_literal}))"
        assert select(conn, coll, folded) == set()
    assert conn.execute("SELECT count(*) FROM cadastral.parcels").fetchone()[0] == before
    assert "NUL character" in error(coll, {"op": "=", "args": [prop("address"), "a\x00b"]},
                                    "cql2-json")


def test_fragment_composes_into_a_query_with_parameters(conn, catalog):
    """'%' in values never reaches the SQL text: the fragment works with or without parameters."""
    coll = catalog["parcels"]
    where = cql2.to_sql("address LIKE '%Tố Hữu%' AND address NOT LIKE '%s%'", "cql2-text", coll)
    assert "%" not in where.as_string(conn)
    query = sql.SQL("SELECT parcel_id FROM cadastral.parcels_current WHERE {} AND sheet_no = %s"
                    ).format(where)
    got = {r[0] for r in conn.execute(query, [2]).fetchall()}
    want = expect(conn, coll, lambda r: like(r["address"], "%Tố Hữu%")
                  and not like(r["address"], "%s%") and r["sheet_no"] == 2)
    assert want and got == want


# --------------------------------------------------------------------------------------------------
# Queryables and conformance
# --------------------------------------------------------------------------------------------------


def test_queryables(catalog):
    schema = cql2.queryables(catalog["parcel-history"])
    assert schema["$schema"] == "https://json-schema.org/draft/2019-09/schema"
    assert "$id" not in schema and schema["type"] == "object"
    assert schema["additionalProperties"] is False
    props = schema["properties"]
    assert list(props) == ["parcel_id", "commune_code", "sheet_no", "parcel_no", "land_use",
                           "legal_area_m2", "owner_type", "valid_from", "valid_to", "geometry"]
    assert "row_hash" not in props and "run_id" not in props
    assert props["parcel_id"] == {"title": "Identifier", "type": "integer", "x-ogc-role": "id"}
    assert props["legal_area_m2"] == {"title": "Legal area", "type": "number", "x-ogc-unit": "m2"}
    assert props["valid_from"]["format"] == "date-time"
    assert props["valid_from"]["x-ogc-role"] == "primary-interval-start"
    assert props["valid_to"]["x-ogc-role"] == "primary-interval-end"
    assert props["geometry"]["format"] == "geometry-multipolygon"
    assert props["geometry"]["$ref"] == "https://geojson.org/schema/MultiPolygon.json"
    vi = cql2.queryables(catalog["poi"], "vi")
    assert vi["properties"]["name"]["title"] == "Tên"
    assert vi["properties"]["geometry"]["format"] == "geometry-point"
    lots = cql2.queryables(catalog["planning-lots"])["properties"]
    assert lots["approval_date"] == {"title": "Approval date", "type": "string", "format": "date",
                                     "x-ogc-role": "primary-instant"}
    # every queryable is accepted by the filter
    for name in props:
        cql2.to_sql(f"{name} IS NULL", "cql2-text", catalog["parcel-history"])


def test_conformance():
    base = "http://www.opengis.net/spec/cql2/1.0/conf/"
    assert set(cql2.CONFORMANCE) == {base + c for c in (
        "cql2-text", "cql2-json", "basic-cql2", "advanced-comparison-operators",
        "case-insensitive-comparison", "accent-insensitive-comparison", "basic-spatial-functions",
        "basic-spatial-functions-plus", "spatial-functions", "temporal-functions", "arithmetic",
        "property-property")}
