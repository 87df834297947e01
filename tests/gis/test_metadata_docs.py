"""Layer metadata (migration 0010, gis.catalog, gis.metadata) and the minimum-count rule (gis.privacy).

The database is real (the migrated template plus the demo dataset ingested through the real jobs);
the DCAT feed is checked as RDF by expanding it with pyld, the JSON-LD processor; the rule is
checked on real tables and files written by gis.analysis.output.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import geopandas as gpd
import pandas as pd
import psycopg
import pyogrio
import pytest
import shapely
from pyld import jsonld

from gis import metadata as gmeta
from gis.analysis import output
from gis.catalog import FREQUENCIES, load_catalog, load_publisher
from gis.errors import InputError
from gis.privacy import MIN_COUNT, apply_minimum_count
from gis.sample import generate
from ingest.job import IngestOptions, run_ingest

SEEDED = ("wards-2025", "wards-2019", "districts-2019", "parcels", "parcel-history", "planning-lots",
          "buildings", "roads", "poi")
BASE = "https://gis.example.org/api"


@pytest.fixture(scope="module")
def loaded(module_dsn, tmp_path_factory) -> str:
    """The demo dataset ingested (both cadastral editions, plan, buildings, roads, POIs)."""
    paths = generate(tmp_path_factory.mktemp("sample"))
    for kind, key, vf in (("cadastral", "cadastral", datetime(2024, 1, 1, tzinfo=UTC)),
                          ("cadastral", "cadastral_update", datetime(2025, 1, 1, tzinfo=UTC)),
                          ("planning", "planning", None), ("buildings", "buildings", None),
                          ("roads", "roads", None), ("poi", "poi", None)):
        assert run_ingest(module_dsn, kind, paths[key], IngestOptions(valid_from=vf)).outcome == "loaded"
    return module_dsn


@pytest.fixture(scope="module")
def conn(loaded):
    with psycopg.connect(loaded, autocommit=True) as c:
        c.execute("SET TimeZone = 'UTC'")
        yield c


@pytest.fixture(scope="module")
def layers(conn):
    return gmeta.collect(conn)


# --- the catalog's metadata ------------------------------------------------------------------------

def test_every_seeded_layer_has_its_metadata(conn):
    catalog = load_catalog(conn, include_private=True)
    assert set(SEEDED) <= set(catalog)
    for cid in SEEDED:
        c = catalog[cid]
        assert c.title_vi and c.title_en and c.description_vi and c.description_en, cid
        assert c.keywords_en and c.keywords_vi, cid
        assert c.licence and c.licence != "see source" and c.licence_id, cid
        assert c.source_en and c.source_vi and c.lineage_en and c.lineage_vi, cid
        assert c.ingest_kinds and c.update_frequency in FREQUENCIES and c.update_frequency != "unknown", cid
        assert c.contact is not None and c.contact.email == "opendata@hcmc-gis.example", cid
        assert c.iso_topics and c.eu_themes, cid
        if c.licence_url:
            assert c.licence_url.startswith("https://"), cid
    parcels = catalog["parcels"]
    assert parcels.licence_id == "CC0-1.0" and parcels.ingest_kinds == ("cadastral",)
    area = parcels.field("legal_area_m2")
    assert area.unit == "m2" and "cadastral register" in area.description("en")
    assert "sổ địa chính" in area.description("vi") and area.title("vi") == "Diện tích pháp lý"
    # every keyword list of 0004 is still there (the collection documents show it)
    assert parcels.keywords == ("cadastral", "parcels", "thửa đất", "địa chính")
    assert set(parcels.keywords) <= set(parcels.all_keywords)


def test_the_publisher_row(conn):
    p = load_publisher(conn)
    assert p is not None and p.contact.email == "opendata@hcmc-gis.example"
    assert p.title("vi").startswith("Danh mục") and p.licence_id == "CC0-1.0"


def test_bad_metadata_is_refused_by_the_database(dsn):
    with psycopg.connect(dsn, autocommit=True) as c:
        for column, value in (("update_frequency", "sometimes"), ("contact_email", "nobody"),
                              ("licence_url", "ftp://x"), ("eu_themes", ["XXXX"])):
            with pytest.raises(psycopg.errors.CheckViolation):
                c.execute(f"UPDATE gis_meta.collections SET {column} = %s WHERE id = 'parcels'", (value,))


def test_no_feature_collection_can_be_called_catalog(dsn):
    """The id of the records catalogue is reserved: refused by the table, skipped by the loader."""
    with psycopg.connect(dsn, autocommit=True) as c:
        with pytest.raises(psycopg.errors.CheckViolation):
            c.execute("INSERT INTO gis_meta.collections (id, relation_schema, relation_name, id_column, "
                      "title_vi, title_en) VALUES ('catalog', 'city', 'poi', 'poi_id', 'x', 'x')")
        with pytest.raises(psycopg.errors.CheckViolation):
            c.execute("UPDATE gis_meta.collections SET id = 'catalog' WHERE id = 'poi'")
        # a database where the constraint was dropped by hand: the loader still leaves it out
        c.execute("ALTER TABLE gis_meta.collections DROP CONSTRAINT collections_id_not_reserved")
        c.execute("UPDATE gis_meta.collections SET id = 'catalog' WHERE id = 'poi'")
        catalog = load_catalog(c)
        assert "catalog" not in catalog and "poi" not in catalog and "roads" in catalog


# --- lineage, extents, records -------------------------------------------------------------------

def test_lineage_lists_the_ingest_runs_of_the_layer(conn, layers):
    _, metas = layers
    by_id = {m.id: m for m in metas}
    parcels = by_id["parcels"]
    runs = conn.execute("SELECT run_id, source_path, finished_at FROM ingest.runs WHERE kind = 'cadastral' "
                        "AND outcome IN ('loaded', 'unchanged') ORDER BY started_at DESC").fetchall()
    assert parcels.run_count == len(runs) == 2
    assert [r.run_id for r in parcels.runs] == [r[0] for r in runs]
    assert parcels.runs[0].source == "cadastral_update.gpkg" and "/" not in parcels.runs[0].source
    assert parcels.created == min(r[2] for r in runs) and parcels.updated == max(r[2] for r in runs)
    assert by_id["roads"].run_count == 1 and by_id["roads"].runs[0].kind == "roads"
    assert by_id["wards-2025"].run_count == 0  # nothing loaded the admin units here
    assert "no ingest run" in gmeta.lineage_summary(by_id["wards-2025"], "en").lower()
    assert "2 ingest runs" in gmeta.lineage_summary(parcels, "en")


def test_the_record_of_a_layer(conn, layers):
    publisher, metas = layers
    m = next(x for x in metas if x.id == "parcels")
    rec = gmeta.record(m, BASE, "en", publisher)
    assert rec["id"] == "parcels" and rec["type"] == "Feature"
    assert rec["conformsTo"] == gmeta.RECORD_CONFORMS
    x0, y0, x1, y1 = conn.execute("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                                  "(SELECT ST_Extent(geom) e FROM cadastral.parcels_current) s").fetchone()
    assert shapely.geometry.shape(rec["geometry"]).equals(shapely.box(x0, y0, x1, y1))
    # no end column: the catalog's interval runs from the first to the last start of validity
    assert rec["time"]["interval"][0].startswith("2024-01-01")
    assert rec["time"]["interval"][1].startswith("2025-01-01")
    p = rec["properties"]
    assert p["type"] == "dataset" and p["title"] == "Cadastral parcels (in force)"
    assert {"thửa đất", "cadastre", "địa chính"} <= set(p["keywords"])
    assert p["license"] == "CC0-1.0" and p["updateFrequency"] == "asNeeded"
    assert p["contacts"][0]["emails"][0]["value"] == "opendata@hcmc-gis.example"
    assert p["contacts"][0]["roles"] == ["pointOfContact"] and p["contacts"][1]["roles"] == ["publisher"]
    assert {"id": "planningCadastre"} in p["themes"][0]["concepts"]
    assert p["lineage"]["runCount"] == 2 and len(p["lineage"]["runs"]) == 2
    fields = {f["name"]: f for f in p["fields"]}
    assert fields["legal_area_m2"]["unit"] == "m2" and fields["legal_area_m2"]["type"] == "number"
    assert fields["valid_from"]["format"] == "date-time"
    rels = {(lk["rel"], lk["href"]) for lk in rec["links"]}
    assert ("items", f"{BASE}/collections/parcels/items") in rels
    assert ("describes", f"{BASE}/collections/parcels") in rels
    assert ("license", "https://creativecommons.org/publicdomain/zero/1.0/") in rels
    vi = gmeta.record(m, BASE, "vi", publisher)["properties"]
    assert vi["title"] == "Thửa đất (hiện hành)" and vi["language"] == {"code": "vi"}
    assert {f["name"]: f for f in vi["fields"]}["sheet_no"]["title"] == "Số tờ bản đồ"
    # no personal data, not even the names of its columns
    text = json.dumps(gmeta.record(next(x for x in metas if x.id == "parcel-history"), BASE, "en", publisher))
    for secret in ("owner_name", "id_number", "row_hash", "run_id\""):
        assert secret not in text
    owner = conn.execute("SELECT owner_name, id_number FROM private.parcel_owners LIMIT 1").fetchone()
    assert owner[0] not in text and owner[1] not in text


def test_an_empty_layer_has_no_geometry_nor_time(layers):
    publisher, metas = layers
    rec = gmeta.record(next(x for x in metas if x.id == "wards-2025"), BASE, "en", publisher)
    assert rec["geometry"] is None and rec["time"] is None
    assert rec["properties"]["license"] == "MIT"


def _register_download(conn, cid: str, path) -> dict:
    data = path.read_bytes()
    row = {"cid": cid, "name": path.name, "size": len(data), "sha": hashlib.sha256(data).hexdigest()}
    conn.execute("INSERT INTO gis_meta.downloads (collection_id, format, filename, media_type, size, sha256, "
                 "data_version, feature_count) VALUES (%(cid)s, 'geojson', %(name)s, 'application/geo+json', "
                 "%(size)s, %(sha)s, 'test', 1)", row)
    return row


def test_downloads_are_enclosures_and_distributions(dsn, tmp_path):
    """A registered download (gis.downloads.published) appears in the record and the DCAT feed."""
    path = tmp_path / "roads.geojson"
    path.write_text('{"type":"FeatureCollection","features":[]}', encoding="utf-8")
    with psycopg.connect(dsn, autocommit=True) as c:
        row = _register_download(c, "roads", path)
        publisher, metas = gmeta.collect(c)
    m = next(x for x in metas if x.id == "roads")
    assert [d.filename for d in m.downloads] == ["roads.geojson"]
    enclosures = [lk for lk in gmeta.record(m, BASE, "en", publisher)["links"] if lk["rel"] == "enclosure"]
    assert enclosures == [{"href": f"{BASE}/downloads/roads/roads.geojson", "rel": "enclosure",
                           "type": "application/geo+json", "title": "GeoJSON", "length": row["size"]}]
    ds = next(d for d in gmeta.dcat_catalog(metas, BASE, publisher)["dcat:dataset"]
              if d["dct:identifier"] == "roads")
    dist = next(d for d in ds["dcat:distribution"] if "dcat:downloadURL" in d)
    assert dist["dcat:downloadURL"] == {"@id": f"{BASE}/downloads/roads/roads.geojson"}
    assert dist["dcat:byteSize"]["@value"] == str(row["size"])
    assert dist["spdx:checksum"]["spdx:checksumValue"]["@value"] == row["sha"]


# --- DCAT (JSON-LD) -------------------------------------------------------------------------------

def _compact_keys(node, out: set) -> set:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "@context":
                continue
            if not k.startswith("@"):
                out.add(k)
            _compact_keys(v, out)
    elif isinstance(node, list):
        for v in node:
            _compact_keys(v, out)
    return out


def _predicates(node, out: set) -> set:
    if isinstance(node, dict):
        for k, v in node.items():
            if not k.startswith("@"):
                out.add(k)
            _predicates(v, out)
    elif isinstance(node, list):
        for v in node:
            _predicates(v, out)
    return out


def test_dcat_feed_is_well_formed_json_ld(layers):
    publisher, metas = layers
    doc = gmeta.dcat_catalog(metas, BASE, publisher)
    expanded = jsonld.expand(json.loads(json.dumps(doc)))
    assert len(expanded) == 1
    # every term of the document expands to an IRI (pyld silently drops terms it cannot expand)
    ctx = gmeta.JSONLD_CONTEXT
    wanted = {ctx[k.split(":", 1)[0]] + k.split(":", 1)[1] for k in _compact_keys(doc, set())}
    assert wanted <= _predicates(expanded, set()), wanted - _predicates(expanded, set())
    cat = expanded[0]
    assert cat["@type"] == ["http://www.w3.org/ns/dcat#Catalog"]
    datasets = cat["http://www.w3.org/ns/dcat#dataset"]
    assert [d["http://purl.org/dc/terms/identifier"][0]["@value"] for d in datasets] == [m.id for m in metas]
    parcels = next(d for d in datasets if d["@id"] == f"{BASE}/collections/parcels")
    titles = {t["@language"]: t["@value"] for t in parcels["http://purl.org/dc/terms/title"]}
    assert titles == {"vi": "Thửa đất (hiện hành)", "en": "Cadastral parcels (in force)"}
    kws = {(k["@language"], k["@value"]) for k in parcels["http://www.w3.org/ns/dcat#keyword"]}
    assert ("vi", "thửa đất") in kws and ("en", "cadastre") in kws
    assert parcels["http://purl.org/dc/terms/license"] == [
        {"@id": "https://creativecommons.org/publicdomain/zero/1.0/"}]
    assert parcels["http://purl.org/dc/terms/accrualPeriodicity"] == [
        {"@id": "http://publications.europa.eu/resource/authority/frequency/IRREG"}]
    contact = parcels["http://www.w3.org/ns/dcat#contactPoint"][0]
    assert contact["http://www.w3.org/2006/vcard/ns#hasEmail"] == [{"@id": "mailto:opendata@hcmc-gis.example"}]
    spatial = parcels["http://purl.org/dc/terms/spatial"][0]
    wkt = spatial["http://www.w3.org/ns/dcat#bbox"][0]
    assert wkt["@type"] == "http://www.opengis.net/ont/geosparql#wktLiteral"
    assert shapely.from_wkt(wkt["@value"]).equals(shapely.box(*next(m.bbox for m in metas if m.id == "parcels")))
    period = parcels["http://purl.org/dc/terms/temporal"][0]
    assert period["http://www.w3.org/ns/dcat#startDate"][0]["@value"].startswith("2024-01-01")
    assert parcels["http://purl.org/dc/terms/publisher"] == [{"@id": f"{BASE}/#publisher"}]
    # as RDF: N-Quads with the catalogue and its datasets
    nquads = jsonld.to_rdf(json.loads(json.dumps(doc)), {"format": "application/n-quads"})
    assert f"<{BASE}/catalog.jsonld> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> " \
           "<http://www.w3.org/ns/dcat#Catalog>" in nquads
    assert nquads.count("<http://www.w3.org/ns/dcat#Dataset>") == len(metas)


# --- search -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("q", "expected"), [
    (["thửa đất"], {"parcels", "parcel-history"}),
    (["THUA DAT"], {"parcels", "parcel-history"}),  # no accents, upper case
    (["quy hoach"], {"planning-lots"}),
    (["zoning  plan"], {"planning-lots"}),  # words in order, any spaces
    (["plan zoning"], set()),  # not in that order
    (["roads", "benh vien"], {"roads", "poi"}),  # any of the terms
    (["phường"], {"wards-2025", "wards-2019"}),
])
def test_search_by_text(layers, q, expected):
    _, metas = layers
    assert {m.id for m in gmeta.search(metas, q=q)} == expected


def test_search_by_bbox_time_type_and_ids(layers):
    _, metas = layers
    parcels = next(m for m in metas if m.id == "parcels")
    x0, y0, _, _ = parcels.bbox
    inside = {m.id for m in gmeta.search(metas, bbox=(x0, y0, x0 + 1e-4, y0 + 1e-4))}
    assert "parcels" in inside and "wards-2025" not in inside  # empty layers have no extent
    assert gmeta.search(metas, bbox=(100.0, 20.0, 101.0, 21.0)) == []
    before = {m.id for m in gmeta.search(metas, start=None, end=datetime(2023, 1, 1, tzinfo=UTC), has_time=True)}
    assert "parcels" not in before
    during = {m.id for m in gmeta.search(metas, start=datetime(2024, 6, 1, tzinfo=UTC), end=None, has_time=True)}
    assert {"parcels", "parcel-history"} <= during and "roads" not in during  # roads have no time
    assert len(gmeta.search(metas, types=["dataset"])) == len(metas)
    assert gmeta.search(metas, types=["service"]) == []
    assert [m.id for m in gmeta.search(metas, ids=["roads", "nope"])] == ["roads"]


def test_fold():
    assert gmeta.fold("Đường Nguyễn Huệ") == "duong nguyen hue"
    import unicodedata

    nfd = unicodedata.normalize("NFD", "Thửa đất")
    assert nfd != "Thửa đất" and gmeta.fold(nfd) == gmeta.fold("Thửa đất") == "thua dat"
    assert gmeta.fold(None) == ""


# --- the minimum-count rule ------------------------------------------------------------------------

def _owner_counts() -> gpd.GeoDataFrame:
    """Owners per (block, owner type) with small cells planted: 1 and 2 must never be published."""
    df = gpd.GeoDataFrame({
        "block": ["A", "A", "A", "B", "B", "C", "C"],
        "owner_type": ["GDC", "TKT", "CNV", "GDC", "TKT", "GDC", "TKT"],
        "n_owners": [12, 1, 5, 0, 40, 2, 9],
        "share": [0.67, 0.06, 0.27, 0.0, 1.0, 0.18, 0.82],
    }, geometry=[shapely.box(i, 0, i + 1, 1) for i in range(7)], crs="EPSG:4326")
    df.attrs = {"analysis": "test.owners", "title": "Owners per block", "units": {"share": "fraction"},
                "person_counts": {"n_owners": ["share"]}, "person_count_groups": ["block"]}
    return df


def test_minimum_count_suppresses_small_cells_and_their_complement():
    out = apply_minimum_count(_owner_counts())
    got = out["n_owners"].tolist()
    # A: 1 suppressed, and the next smallest (5) so that A's total cannot give it back; B: 0 stays;
    # C: 2 suppressed and 9 with it
    assert got == [12, pd.NA, pd.NA, 0, 40, pd.NA, pd.NA]
    assert out["share"].isna().tolist() == [False, True, True, False, False, True, True]
    rule = out.attrs["minimum_count_rule"]
    assert rule["k"] == MIN_COUNT == 3 and rule["suppressed_cells"] == 2 and rule["secondary_cells"] == 2
    assert any("below 3" in a for a in out.attrs["assumptions"])
    # without groups: only the small cells themselves
    df = _owner_counts()
    df.attrs.pop("person_count_groups")
    assert apply_minimum_count(df)["n_owners"].isna().sum() == 2
    # a result that declares nothing is left alone
    plain = pd.DataFrame({"n": [1, 2]})
    assert apply_minimum_count(plain) is plain


@pytest.mark.parametrize("attrs", [{"person_counts": ["nope"]}, {"person_counts": ["name"]},
                                   {"person_counts": ["n"], "person_count_groups": ["zone"]}])
def test_minimum_count_bad_declarations(attrs):
    df = pd.DataFrame({"name": ["a"], "n": [1]})
    df.attrs = attrs
    with pytest.raises(InputError):
        apply_minimum_count(df)
    neg = pd.DataFrame({"n": [-1]})
    neg.attrs = {"person_counts": ["n"]}
    with pytest.raises(InputError, match="negative or fractional"):
        apply_minimum_count(neg)


def test_published_tables_and_files_never_hold_small_counts(dsn, tmp_path):
    info = output.write_table(_owner_counts(), dsn, "owners_by_block")
    with psycopg.connect(dsn, autocommit=True) as c:
        rows = c.execute("SELECT n_owners, share FROM stats.owners_by_block ORDER BY fid").fetchall()
        meta = c.execute("SELECT metadata FROM stats.analysis_outputs WHERE table_name = 'owners_by_block'"
                         ).fetchone()[0]
        published = {m.id for m in gmeta.collect(c)[1]}
    assert [r[0] for r in rows] == [12, None, None, 0, 40, None, None]
    assert rows[1][1] is None and rows[0][1] == pytest.approx(0.67)
    assert meta["minimum_count_rule"]["k"] == 3 and info["collection"] in published
    for suffix in (".gpkg", ".csv", ".parquet", ".geojson"):
        path = output.write_file(_owner_counts(), tmp_path / f"owners{suffix}")
        back = pyogrio.read_dataframe(path) if suffix != ".parquet" else gpd.read_parquet(path)
        values = pd.to_numeric(back["n_owners"], errors="coerce")
        assert not values.isin([1, 2]).any(), suffix
        assert values.isna().sum() == 4 and values.dropna().astype(int).tolist() == [12, 0, 40], suffix
