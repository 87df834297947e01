"""Layer metadata (migration 0010, gis.catalog, gis.metadata) and the minimum-count rule (gis.privacy).

The database is real (the migrated template plus the demo dataset ingested through the real jobs,
its rasters included: the population grid and the two Sentinel-2-like scenes, loaded by the raster
ingest job into a raster store in a temporary folder); the DCAT feed is checked as RDF by expanding
it with pyld, the JSON-LD processor; the rule is checked on real tables and files written by
gis.analysis.output.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import PurePath

import geopandas as gpd
import pandas as pd
import psycopg
import pyogrio
import pytest
import shapely
from psycopg.types.json import Jsonb
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


#: the raster collections of the demo loaded here: record id -> (raster collection id, sample files, options);
#: the scenes go into a raster collection called like a feature collection ('buildings')
RASTERS = {
    "worldpop": ("worldpop", ("population",), {"sensor": "worldpop", "license": "CC-BY-4.0"}),
    "raster-buildings": ("buildings", ("s2_before", "s2_after"), {"sensor": "sentinel2"}),
}
WORLDPOP_PROVIDERS = [{"name": "WorldPop, University of Southampton", "roles": ["producer", "licensor"],
                       "url": "https://www.worldpop.org"},
                      {"name": "HCMC GIS", "roles": ["host", "processor"]}]


@pytest.fixture(scope="module")
def raster_store(tmp_path_factory):
    from gis.raster.store import RasterStore

    return RasterStore(tmp_path_factory.mktemp("metadata_rasters"))


@pytest.fixture(scope="module")
def sample_paths(tmp_path_factory) -> dict:
    return generate(tmp_path_factory.mktemp("sample"))


@pytest.fixture(scope="module")
def loaded(module_dsn, sample_paths, raster_store) -> str:
    """The demo dataset ingested (both cadastral editions, plan, buildings, roads, POIs, rasters)."""
    from ingest.raster import RasterIngestOptions, run_raster_ingest

    paths = sample_paths
    for kind, key, vf in (("cadastral", "cadastral", datetime(2024, 1, 1, tzinfo=UTC)),
                          ("cadastral", "cadastral_update", datetime(2025, 1, 1, tzinfo=UTC)),
                          ("planning", "planning", None), ("buildings", "buildings", None),
                          ("roads", "roads", None), ("poi", "poi", None)):
        assert run_ingest(module_dsn, kind, paths[key], IngestOptions(valid_from=vf)).outcome == "loaded"
    for rid, keys, opts in RASTERS.values():
        res = run_raster_ingest(module_dsn, [paths[k] for k in keys],
                                RasterIngestOptions(collection=rid, **opts), store=raster_store)
        assert res.outcome == "loaded", res.summary()
    with psycopg.connect(module_dsn, autocommit=True) as c:  # STAC providers, as a curator sets them
        c.execute("UPDATE raster.collections SET providers = %s WHERE id = 'worldpop'",
                  (Jsonb(WORLDPOP_PROVIDERS),))
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


# --- raster collections --------------------------------------------------------------------------

def _raster(metas, rid: str):
    return next(m for m in metas if m.id == rid)


def test_raster_record_ids_follow_the_collections_list():
    assert gmeta.raster_record_ids(["buildings", "worldpop"], {"buildings", "roads"}) == {
        "raster-buildings": "buildings", "worldpop": "worldpop"}
    # a prefixed id that is taken too, and the records catalogue's own id
    assert gmeta.raster_record_ids(["a", "catalog"], {"a", "raster-a"}) == {"raster-catalog": "catalog"}


def test_every_raster_collection_with_items_has_a_record(conn, layers):
    _, metas = layers
    rasters = [m for m in metas if isinstance(m, gmeta.RasterMetadata)]
    assert [m.id for m in rasters] == sorted(RASTERS)
    features = [m.id for m in metas if isinstance(m, gmeta.LayerMetadata)]
    assert "buildings" in features and len({m.id for m in metas}) == len(metas)  # ids stay unique
    # a raster collection without items has none
    conn.execute("INSERT INTO raster.collections (id, title) VALUES ('empty-grid', 'Nothing yet')")
    try:
        assert "empty-grid" not in {m.id for m in gmeta.collect(conn)[1]}
    finally:
        conn.execute("DELETE FROM raster.collections WHERE id = 'empty-grid'")
    assert gmeta.collect(conn, rasters=False)[1] == [m for m in metas if isinstance(m, gmeta.LayerMetadata)]


def test_the_record_of_a_raster_collection(conn, layers, sample_paths):
    publisher, metas = layers
    m = _raster(metas, "worldpop")
    rec = gmeta.record(m, BASE, "en", publisher)
    assert rec["id"] == "worldpop" and rec["type"] == "Feature" and rec["conformsTo"] == gmeta.RECORD_CONFORMS
    stac = conn.execute("SELECT content FROM raster.stac_collections WHERE id = 'worldpop'").fetchone()[0]
    p = rec["properties"]
    assert p["type"] == "dataset" and p["title"] == stac["title"] == "WorldPop population count"
    assert p["keywords"] == stac["keywords"] and p["license"] == "CC-BY-4.0"
    assert p["attribution"] == "WorldPop, University of Southampton, HCMC GIS"
    orgs = {c.get("organization"): c["roles"] for c in p["contacts"]}
    assert orgs["WorldPop, University of Southampton"] == ["producer", "licensor"]
    assert {"pointOfContact", "publisher"} <= {r for c in p["contacts"] for r in c["roles"]}
    # extents: the items' footprints and times
    x0, y0, x1, y1, t0, t1, n = conn.execute(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e), lo, hi, n FROM (SELECT ST_Extent(geom) e, "
        "min(dt_start) lo, max(dt_end) hi, count(*) n FROM raster.items WHERE collection = 'worldpop') s").fetchone()
    assert shapely.geometry.shape(rec["geometry"]).equals(shapely.box(x0, y0, x1, y1))
    got = [datetime.fromisoformat(v) for v in rec["time"]["interval"]]
    assert got == [t0, t1] and p["itemCount"] == n == 1
    # the bands as schema: what the COG's items say, nothing else
    bands = conn.execute("SELECT bands, data_type FROM raster.items WHERE collection = 'worldpop'").fetchone()
    assert [(b["name"], b["dataType"], b.get("unit"), b.get("nodata")) for b in p["bands"]] == [
        (b["name"], b["data_type"], b.get("unit"), b.get("nodata")) for b in bands[0]]
    assert p["bands"][0]["name"] == "population" and p["bands"][0]["unit"] == "persons"
    assert p["dataType"] == bands[1]
    import rasterio

    with rasterio.open(sample_paths["population"]) as src:  # the file's own nodata, as a number
        assert src.nodata is not None and p["bands"][0]["nodata"] == src.nodata
    # lineage: the raster ingest run, its source by file name only
    runs = p["lineage"]["runs"]
    assert p["lineage"]["runCount"] == 1 and runs[0]["kind"] == "raster"
    assert runs[0]["source"] == sample_paths["population"].name
    assert "1 raster ingest run" in gmeta.lineage_summary(m, "en")
    rels = {lk["rel"]: lk for lk in rec["links"] if lk["rel"] != "enclosure"}
    cov = [lk for lk in rec["links"] if lk["rel"] == gmeta.REL_COVERAGE]
    assert {lk["type"] for lk in cov} == {gmeta.GEOTIFF_MEDIA_TYPE, gmeta.COVJSON_MEDIA_TYPE}
    assert all(lk["href"].startswith(f"{BASE}/collections/worldpop/coverage?f=") for lk in cov)
    assert rels["alternate"]["href"] == f"{BASE}/stac/collections/worldpop"
    assert rels["items"]["href"] == f"{BASE}/stac/collections/worldpop/items"
    assert rels[gmeta.REL_TILESETS_MAP]["href"] == f"{BASE}/collections/population/map/tiles"  # migration 0007
    assert rels["license"]["href"] == "https://spdx.org/licenses/CC-BY-4.0.html"
    # each COG an enclosure with its size and checksum
    items = conn.execute("SELECT asset_href, asset_size, asset_checksum FROM raster.items "
                         "WHERE collection = 'worldpop'").fetchall()
    enclosures = [lk for lk in rec["links"] if lk["rel"] == "enclosure"]
    assert [(lk["href"], lk["length"], lk["file:checksum"], lk["type"]) for lk in enclosures] == [
        (f"{BASE}/rasters/{h}", size, "1220" + sha, gmeta.COG_MEDIA_TYPE) for h, size, sha in items]
    vi = gmeta.record(m, BASE, "vi", publisher)["properties"]
    assert vi["language"] == {"code": "vi"} and vi["bands"] == p["bands"]


def test_the_record_of_a_raster_collection_named_like_a_layer(conn, layers, sample_paths):
    publisher, metas = layers
    m = _raster(metas, "raster-buildings")
    assert m.raster_id == "buildings"
    rec = gmeta.record(m, BASE, "en", publisher)
    rels = {lk["rel"]: lk["href"] for lk in rec["links"] if lk["type"] != "text/html"}
    assert rels["describes"] == f"{BASE}/collections/raster-buildings"
    assert rels["alternate"] == f"{BASE}/stac/collections/buildings"  # the STAC API keeps the raster id
    p = rec["properties"]
    assert [b["name"] for b in p["bands"]] == ["B02", "B03", "B04", "B08", "B11"]
    assert p["itemCount"] == 2 and p["license"] == "other" and gmeta.REL_TILESETS_MAP not in rels
    assert "license" not in rels  # 'other' is no SPDX licence
    assert p["crs"].startswith("http://www.opengis.net/def/crs/EPSG/0/")
    # no STAC description: one sentence on what the collection holds, in both languages
    assert p["description"].startswith("Gridded data (raster): 2 Cloud-Optimised GeoTIFF files of 5 bands")
    assert gmeta.record(m, BASE, "vi")["properties"]["description"].startswith("Dữ liệu lưới (raster): 2 tệp")
    names = sorted(sample_paths[k].name for k in ("s2_before", "s2_after"))
    assert sorted(p["lineage"]["runs"][0]["source"].split("; ")) == names
    times = conn.execute("SELECT raster.rfc3339(dt_start) FROM raster.items WHERE collection = 'buildings' "
                         "ORDER BY dt_start DESC").fetchall()
    enclosures = [lk for lk in rec["links"] if lk["rel"] == "enclosure"]
    assert len(enclosures) == 2 and times[0][0][:10] in enclosures[0]["title"]  # the newest first


def test_raster_records_are_searchable(layers):
    _, metas = layers
    wp = _raster(metas, "worldpop")
    assert {m.id for m in gmeta.search(metas, q=["worldpop"])} == {"worldpop"}
    assert {m.id for m in gmeta.search(metas, q=["DAN SO (worldpop"])} == {"worldpop"}  # its map layer, in Vietnamese
    assert {m.id for m in gmeta.search(metas, q=["B08"])} == {"raster-buildings"}  # band names
    assert "raster-buildings" in {m.id for m in gmeta.search(metas, q=["sentinel-2"])}
    x0, y0, _, _ = wp.bbox
    assert "worldpop" in {m.id for m in gmeta.search(metas, bbox=(x0, y0, x0 + 1e-3, y0 + 1e-3))}
    assert gmeta.search(metas, bbox=(100.0, 20.0, 101.0, 21.0)) == []
    t0 = datetime.fromisoformat(wp.interval[0])
    t1 = datetime.fromisoformat(wp.interval[1])
    found = {m.id for m in gmeta.search(metas, start=t0, end=t1, has_time=True)}
    assert "worldpop" in found
    before = {m.id for m in gmeta.search(metas, start=None, end=datetime(1999, 1, 1, tzinfo=UTC), has_time=True)}
    assert "worldpop" not in before and "raster-buildings" not in before
    assert {m.id for m in gmeta.search(metas, ids=["raster-buildings"])} == {"raster-buildings"}
    assert {m.id for m in gmeta.search(metas, types=["dataset"])} >= set(RASTERS)


def test_raster_datasets_in_the_dcat_feed(conn, layers):
    publisher, metas = layers
    doc = json.loads(json.dumps(gmeta.dcat_catalog(metas, BASE, publisher)))
    expanded = jsonld.expand(doc)[0]["http://www.w3.org/ns/dcat#dataset"]
    dcat, dct = "http://www.w3.org/ns/dcat#", "http://purl.org/dc/terms/"
    for rid, (raster_id, _, _) in RASTERS.items():
        ds = next(d for d in expanded if d["@id"] == f"{BASE}/collections/{rid}")
        assert ds["@type"] == [dcat + "Dataset"] and ds[dct + "identifier"] == [{"@value": rid}]
        assert ds[dct + "title"][0]["@value"]
        dists = ds[dcat + "distribution"]
        files = [d for d in dists if dcat + "downloadURL" in d]
        rows = conn.execute("SELECT asset_href, asset_size, asset_checksum FROM raster.items WHERE collection = %s "
                            "ORDER BY dt_start DESC, id", (raster_id,)).fetchall()
        assert [(d[dcat + "downloadURL"][0]["@id"], d[dcat + "byteSize"][0]["@value"],
                 d["http://spdx.org/rdf/terms#checksum"][0]["http://spdx.org/rdf/terms#checksumValue"][0]["@value"])
                for d in files] == [(f"{BASE}/rasters/{h}", str(size), sha) for h, size, sha in rows]
        for d in files:
            assert d[dcat + "mediaType"] == [{"@id": "https://www.iana.org/assignments/media-types/image/tiff"}]
            assert d[dct + "conformsTo"] == [{"@id": gmeta.OGC_COG}]
        cov = next(d for d in dists if d["@id"] == f"{BASE}/collections/{rid}/coverage")
        assert cov[dcat + "accessURL"] == [{"@id": f"{BASE}/collections/{rid}/coverage"}]
        service = cov[dcat + "accessService"][0]
        assert service["@type"] == [dcat + "DataService"]
        assert service[dcat + "endpointURL"] == [{"@id": f"{BASE}/collections/{rid}/coverage"}]
        assert service[dct + "conformsTo"] == [{"@id": gmeta.OGC_COVERAGES_CORE}]
        assert ds["http://www.w3.org/2000/01/rdf-schema#seeAlso"] == [{"@id": f"{BASE}/stac/collections/{raster_id}"}]
        assert ds[dct + "temporal"] and ds[dct + "spatial"]
    wp = next(d for d in expanded if d["@id"] == f"{BASE}/collections/worldpop")
    assert wp[dct + "license"] == [{"@id": "http://spdx.org/licenses/CC-BY-4.0"}]
    creators = [a["http://xmlns.com/foaf/0.1/name"][0]["@value"] for a in wp[dct + "creator"]]
    assert creators == ["WorldPop, University of Southampton"]
    rb = next(d for d in expanded if d["@id"] == f"{BASE}/collections/raster-buildings")
    assert {t["@language"] for t in rb[dct + "description"]} == {"vi", "en"}  # no STAC description
    nquads = jsonld.to_rdf(doc, {"format": "application/n-quads"})
    assert nquads.count("<http://www.w3.org/ns/dcat#Dataset>") == len(metas)


def test_no_server_path_in_raster_metadata(conn, layers, raster_store, sample_paths):
    """Neither the raster store's folder nor the sources' folders (raster.items.source_path,
    ingest.runs.source_path and options) appear in any record or in the DCAT feed."""
    publisher, metas = layers
    text = json.dumps([gmeta.record(m, BASE, lang, publisher) for m in metas for lang in ("en", "vi")]
                      + [gmeta.dcat_catalog(metas, BASE, publisher)], ensure_ascii=False)
    secrets = {str(raster_store.root), str(raster_store.root.resolve()), str(sample_paths["population"].parent)}
    secrets |= {r[0] for r in conn.execute("SELECT source_path FROM raster.items")}
    for (path,) in conn.execute("SELECT source_path FROM ingest.runs"):
        secrets |= {p.strip() for p in path.split(";")}
    secrets |= {str(PurePath(s).parent) for s in list(secrets)}
    for secret in secrets:
        assert secret not in text, secret
    assert "source_path" not in text and "os_user" not in text


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
