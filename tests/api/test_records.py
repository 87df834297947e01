"""OGC API - Records (the catalogue of the layers) and the DCAT feed, over the real API.

``client`` (tests/api/conftest.py) is a TestClient of create_app on a database with the demo dataset
ingested by the real jobs. OWSLib's Records client is run against a real uvicorn server.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time

import psycopg
import pytest
import uvicorn
from api_helpers import link, next_link
from fastapi.testclient import TestClient
from owslib.ogcapi.records import Records
from pyld import jsonld

from api import records as api_records
from api.app import create_app
from api.settings import ApiSettings
from api.state import load_snapshot
from gis.settings import Settings

REC = "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf/"


def _public_ids(db) -> list[str]:
    from gis.catalog import load_catalog

    return list(load_catalog(db))


def test_conformance_and_landing_links(client):
    conf = client.get("/conformance").json()["conformsTo"]
    for c in ("record-core", "record-collection", "records-api", "searchable-catalog", "json", "html"):
        assert REC + c in conf
    landing = client.get("/").json()
    dcat = [lk for lk in landing["links"] if lk["type"] == "application/ld+json"]
    assert dcat and dcat[0]["rel"] == "describedby" and dcat[0]["href"].endswith("/catalog.jsonld")
    assert link(landing, api_records.REL_CATALOG) == "/collections/catalog"
    html = client.get("/?f=html").text
    assert '<link rel="describedby" type="application/ld+json" href="http://testserver/catalog.jsonld">' in html


def test_the_catalogue_collection(client, db):
    listed = client.get("/collections").json()["collections"]
    cat = [c for c in listed if c["id"] == "catalog"]
    assert len(cat) == 1 and cat[0]["itemType"] == "record"
    assert [c["id"] for c in listed if c.get("itemType") == "feature"] == _public_ids(db)
    doc = client.get("/collections/catalog").json()
    assert doc["id"] == "catalog" and doc["itemType"] == "record" and doc["type"] == "Catalog"
    assert link(doc, "self").startswith("/collections/catalog")
    assert any(lk["rel"] == "items" and lk["type"] == "application/geo+json" for lk in doc["links"])
    x0, y0, x1, y1 = db.execute("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT "
                                "ST_Extent(geom) e FROM (SELECT geom FROM cadastral.parcels UNION ALL SELECT "
                                "geom FROM planning.lots UNION ALL SELECT geom FROM city.buildings UNION ALL "
                                "SELECT geom FROM city.roads UNION ALL SELECT geom FROM city.poi) g) s").fetchone()
    assert doc["extent"]["spatial"]["bbox"][0] == pytest.approx([x0, y0, x1, y1])
    page = client.get("/collections/catalog?f=html&lang=vi")
    assert page.status_code == 200 and "Danh mục lớp dữ liệu" in page.text


def test_records_list_every_public_layer_and_pages(client, db):
    ids = _public_ids(db)
    doc = client.get("/collections/catalog/items").json()
    assert doc["type"] == "FeatureCollection" and doc["numberMatched"] == len(ids)
    seen, url, pages = [], "/collections/catalog/items?limit=4", 0
    while url:
        r = client.get(url)
        assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
        page = r.json()
        assert page["numberReturned"] == len(page["features"]) <= 4
        seen += [f["id"] for f in page["features"]]
        url, pages = next_link(page), pages + 1
    assert seen == ids and pages == -(-len(ids) // 4)
    last = client.get(f"/collections/catalog/items?limit=4&offset={4 * (pages - 1)}").json()
    assert link(last, "prev") is not None and link(last, "next") is None


def _ids(client, query: str) -> set[str]:
    r = client.get("/collections/catalog/items?limit=100&" + query)
    assert r.status_code == 200, r.text
    return {f["id"] for f in r.json()["features"]}


def test_search_by_text_bbox_time_and_type(client, db):
    assert _ids(client, "q=thửa đất") == {"parcels", "parcel-history"}
    assert _ids(client, "q=thua dat") == {"parcels", "parcel-history"}  # accents do not count
    assert _ids(client, "q=ROADS,benh vien") == {"roads", "poi"}
    assert _ids(client, "q=nothing-like-this") == set()
    x, y = db.execute("SELECT ST_X(geom), ST_Y(geom) FROM city.poi LIMIT 1").fetchone()
    near = _ids(client, f"bbox={x - 1e-5},{y - 1e-5},{x + 1e-5},{y + 1e-5}")
    assert "poi" in near and "wards-2025" not in near
    assert _ids(client, "bbox=100,20,101,21") == set()
    lo, hi = db.execute("SELECT min(approval_date), max(approval_date) FROM planning.lots_published").fetchone()
    assert _ids(client, f"datetime={lo}/{hi}") == {"planning-lots"}  # the parcels start in 2024
    assert _ids(client, "datetime=1990-01-01/1990-12-31") == set()
    assert {"parcels", "parcel-history"} <= _ids(client, "datetime=2024-06-01T00:00:00Z/..")
    assert _ids(client, "type=dataset") == set(_public_ids(db))
    assert _ids(client, "type=service") == set()
    assert _ids(client, "ids=roads,poi") == {"roads", "poi"}


@pytest.mark.parametrize("query", ["limit=0", "limit=x", "offset=-1", "bbox=1,2,3", "bbox=106,11,107,10",
                                   "datetime=yesterday", "f=xml", "lang=fr", "nope=1", "q=a&q=b"])
def test_bad_parameters_are_400(client, query):
    r = client.get("/collections/catalog/items?" + query)
    assert r.status_code == 400, (query, r.text)
    body = r.json()
    assert body["code"] and body["description"]


@pytest.mark.parametrize("url", [
    "/collections/catalog/items?bbox=1e400,0,1,1", "/collections/catalog/items?q=" + "x" * 600,
    "/collections/catalog/items?limit=99999999999999999999", "/collections/catalog/items?offset=1000001",
    "/collections/catalog/items?datetime=../..", "/collections/catalog/items?ids=&type=&q=",
    "/collections/catalog/items?q=%00%ff", "/collections/catalog/items/%00", "/collections/catalog/items/"
    + "é" * 300, "/collections/catalog?f=csv", "/catalog.jsonld?lang=vi", "/.well-known/dcat?x=1",
    "/collections/catalog/queryables", "/collections/catalog/items?offset=500",
])
def test_odd_requests_never_fail_the_server(client, url):
    r = client.get(url)
    assert r.status_code < 500, (url, r.text)
    if r.status_code >= 400:
        assert set(r.json()) == {"code", "description"}


def test_one_record_json_and_html(client, db):
    r = client.get("/collections/catalog/items/parcels")
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    rec = r.json()
    assert rec["id"] == "parcels" and rec["properties"]["type"] == "dataset"
    assert link(rec, "self") == "/collections/catalog/items/parcels"
    assert link(rec, "collection") == "/collections/catalog"
    assert link(rec, "items") == "/collections/parcels/items"
    runs = db.execute("SELECT count(*) FROM ingest.runs WHERE kind = 'cadastral' AND outcome = 'loaded'").fetchone()[0]
    assert rec["properties"]["lineage"]["runCount"] == runs == 2
    html = client.get("/collections/catalog/items/parcels?f=html&lang=en").text
    for text in ("opendata@hcmc-gis.example", "Cadastral parcels (in force)", "legal_area_m2", "m2",
                 "cadastral_update.gpkg", "as needed", "CC0-1.0", "Downloads", "Văn phòng đăng ký đất đai"):
        assert text in html, text
    vi = client.get("/collections/catalog/items/parcels?f=html&lang=vi").text
    assert "Tần suất cập nhật" in vi and "Số tờ bản đồ" in vi
    missing = client.get("/collections/catalog/items/no-such-layer")
    assert missing.status_code == 404 and "parcels" in missing.json()["description"]


def test_catalogue_html_page_searches(client):
    r = client.get("/collections/catalog/items?f=html&q=quy hoạch&lang=vi")
    assert r.status_code == 200
    assert "Lô quy hoạch" in r.text and "Thửa đất (hiện hành)" not in r.text
    assert 'name="q" value="quy hoạch"' in r.text
    everything = client.get("/collections/catalog/items?f=html&limit=2").text
    assert "offset=2" in everything  # the next page


def test_dcat_feed(client, db):
    r = client.get("/catalog.jsonld")
    assert r.status_code == 200 and r.headers["content-type"] == "application/ld+json"
    doc = r.json()
    assert doc["@type"] == "dcat:Catalog"
    assert [d["dct:identifier"] for d in doc["dcat:dataset"]] == _public_ids(db)
    expanded = jsonld.expand(doc)
    datasets = expanded[0]["http://www.w3.org/ns/dcat#dataset"]
    assert len(datasets) == len(_public_ids(db))
    for ds in datasets:
        langs = {t["@language"] for t in ds["http://purl.org/dc/terms/title"]}
        assert langs == {"vi", "en"}
        assert ds["http://www.w3.org/ns/dcat#distribution"]
        assert ds["http://www.w3.org/ns/dcat#contactPoint"]
    assert client.get("/.well-known/dcat").json() == doc
    assert client.get("/catalog.jsonld?f=json").status_code == 400


def test_collection_page_shows_the_metadata_and_downloads(client, sample_dsn):
    """The collection's HTML page: the members the records part gives (contact, source, lineage,
    frequency, fields with units) and a Downloads section of its enclosure links."""
    info = load_snapshot(sample_dsn, ApiSettings()).collections["parcels"]
    doc = client.get("/collections/parcels").json()
    assert link(doc, "describedby") is not None  # the record
    members = api_records.collection_members(info, "en")
    assert members["contacts"][0]["emails"][0]["value"] == "opendata@hcmc-gis.example"
    assert {f["name"]: f for f in members["fields"]}["legal_area_m2"]["unit"] == "m2"
    doc.update({k: v for k, v in members.items() if k not in doc})
    doc["links"].append({"href": "http://testserver/downloads/parcels/parcels.gpkg", "rel": "enclosure",
                         "type": "application/geopackage+sqlite3", "title": "GeoPackage", "length": 123456})
    pages = client.app.state.pages
    page = pages.render("collection.html", lang="en", base="http://testserver", self_url="http://testserver/x",
                        alternates=[], doc=doc).body.decode()
    for text in ("opendata@hcmc-gis.example", "Văn phòng đăng ký đất đai", "asNeeded", "legal_area_m2",
                 "Legal area", "Downloads", "/downloads/parcels/parcels.gpkg", "123,456 bytes",
                 "/collections/catalog/items/parcels?f=html"):
        assert text in page, text
    live = client.get("/collections/parcels?f=html").text
    assert "Downloads" in live and "/collections/catalog/items/parcels?f=html" in live


def test_openapi_declares_the_records_paths(client):
    paths = client.get("/api").json()["paths"]
    for p in ("/collections/catalog", "/collections/catalog/items", "/collections/catalog/items/{recordId}",
              "/catalog.jsonld", "/.well-known/dcat"):
        assert p in paths, p
    names = {p["name"] for p in paths["/collections/catalog/items"]["get"]["parameters"] if "name" in p}
    assert {"q", "bbox", "datetime", "limit", "offset", "type", "ids", "f"} <= names


def test_downloads_appear_as_enclosures_and_distributions(dsn, tmp_path):
    """A download in the registry of the publishing job (gis_meta.downloads) appears in the record
    (enclosure link), on the record's page and in the DCAT feed (distribution with size and checksum)."""
    path = tmp_path / "poi.csv"
    path.write_bytes(b"poi_id,name,wkt\n")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("INSERT INTO gis_meta.downloads (collection_id, format, filename, media_type, size, sha256, "
                  "data_version, feature_count) VALUES ('poi', 'csv', 'poi.csv', 'text/csv; charset=utf-8', "
                  "%s, %s, 'v1', 0)", (path.stat().st_size, sha))
    with TestClient(create_app(Settings(database_url=dsn), ApiSettings()), raise_server_exceptions=False) as c:
        rec = c.get("/collections/catalog/items/poi").json()
        enclosures = [lk for lk in rec["links"] if lk["rel"] == "enclosure"]
        assert enclosures == [{"href": "http://testserver/downloads/poi/poi.csv", "rel": "enclosure",
                               "type": "text/csv; charset=utf-8", "title": "CSV (geometry as WKT)",
                               "length": path.stat().st_size}]
        assert "text/csv" in {f["mediaType"] for f in rec["properties"]["formats"]}
        assert "http://testserver/downloads/poi/poi.csv" in c.get("/collections/catalog/items/poi?f=html").text
        feed = c.get("/catalog.jsonld").json()
    ds = next(d for d in feed["dcat:dataset"] if d["dct:identifier"] == "poi")
    dist = next(d for d in ds["dcat:distribution"] if "dcat:downloadURL" in d)
    assert dist["dcat:mediaType"] == {"@id": "https://www.iana.org/assignments/media-types/text/csv"}
    assert dist["spdx:checksum"]["spdx:checksumValue"]["@value"] == sha
    assert dist["dcat:byteSize"]["@value"] == str(path.stat().st_size)
    expanded = jsonld.expand(feed)[0]["http://www.w3.org/ns/dcat#dataset"]
    poi = next(d for d in expanded if d["@id"] == "http://testserver/collections/poi")
    urls = [d.get("http://www.w3.org/ns/dcat#downloadURL") for d in poi["http://www.w3.org/ns/dcat#distribution"]]
    assert [{"@id": "http://testserver/downloads/poi/poi.csv"}] in urls


@pytest.fixture
def served_records(sample_dsn):
    """A real uvicorn server on the sample database, in a thread."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(Settings(database_url=sample_dsn), ApiSettings())
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_owslib_records_client(served_records, db):
    w = Records(served_records)
    assert w.records() == ["catalog"]
    found = w.collection_items("catalog", q="thua dat")
    assert {f["id"] for f in found["features"]} == {"parcels", "parcel-history"}
    one = w.collection_item("catalog", "roads")
    assert one["properties"]["title"] == "Roads"
    everything = w.collection_items("catalog", limit=100)
    assert everything["numberMatched"] == len(_public_ids(db))


# --- raster collections -----------------------------------------------------------------------------

@pytest.fixture
def raster_client(dsn, sample_files, tmp_path):
    """A TestClient on a database whose raster store holds the demo's population grid twice: as
    'worldpop' (with its map layer 'population', migration 0007) and as the raster collection
    'buildings', whose id a feature collection has (so /collections lists it as 'raster-buildings')."""
    from gis.raster.store import RasterStore
    from ingest.raster import RasterIngestOptions, run_raster_ingest

    store = RasterStore(tmp_path / "rasters")
    src = sample_files / "population.tif"
    for collection, title, freq in (("worldpop", None, "annually"), ("buildings", "Lưới dân số (bản thử)", None)):
        opts = RasterIngestOptions(collection=collection, sensor="worldpop", datetime="2020", license="CC-BY-4.0",
                                   title=title, update_frequency=freq)
        assert run_raster_ingest(dsn, [src], opts, store=store).outcome == "loaded"
    with psycopg.connect(dsn, autocommit=True) as db:  # a STAC provider, as a curator sets it
        db.execute("UPDATE raster.collections SET providers = '[{\"name\": \"WorldPop\", \"roles\": "
                   "[\"producer\", \"licensor\"], \"url\": \"https://www.worldpop.org\"}]' WHERE id = 'worldpop'")
    settings = Settings(database_url=dsn, data_dir=tmp_path / "data", raster_store=store.root)
    with TestClient(create_app(settings, ApiSettings()), raise_server_exceptions=False) as c:
        c.store, c.source = store, src
        yield c


def _rel(href: str) -> str:
    return href.replace("http://testserver", "")


def test_raster_collections_are_records(raster_client):
    c = raster_client
    listed = c.get("/collections").json()["collections"]
    coverages = sorted(x["id"] for x in listed if x.get("itemType") == "coverage")
    assert coverages == ["raster-buildings", "worldpop"]
    everything = c.get("/collections/catalog/items?limit=100").json()
    records = {f["id"]: f for f in everything["features"]}
    features = [x["id"] for x in listed if x.get("itemType") == "feature"]
    assert set(records) == set(features) | set(coverages) and everything["numberMatched"] == len(records)
    # found by text, bbox and time, like the layers
    assert _ids(c, "q=worldpop") == {"worldpop", "raster-buildings"}  # the keywords of the sensor
    assert _ids(c, "q=LUOI DAN SO") == {"raster-buildings"}  # its title, accents do not count
    assert _ids(c, "q=people per cell") == {"worldpop", "raster-buildings"}  # the band's description
    x0, y0, x1, y1 = records["worldpop"]["geometry"]["coordinates"][0][0] + \
        records["worldpop"]["geometry"]["coordinates"][0][2]
    assert _ids(c, f"bbox={x0},{y0},{x1},{y1}") == {"worldpop", "raster-buildings"}  # the layers are empty
    assert _ids(c, "bbox=100,20,101,21") == set()
    assert _ids(c, "datetime=2020-06-01T00:00:00Z") == {"worldpop", "raster-buildings"}
    assert _ids(c, "datetime=2021-01-01/2021-12-31") == set()
    assert _ids(c, "ids=raster-buildings") == {"raster-buildings"}
    # the catalogue's own extent covers the raster collections (here, with empty layers, only them)
    extent = c.get("/collections/catalog").json()["extent"]
    assert extent["spatial"]["bbox"][0] == pytest.approx([x0, y0, x1, y1])
    assert extent["temporal"]["interval"] == [records["worldpop"]["time"]["interval"]]
    # the record, and what its links point to
    rec = c.get("/collections/catalog/items/raster-buildings").json()
    assert rec["id"] == "raster-buildings" and rec["properties"]["type"] == "dataset"
    assert link(rec, "self") == "/collections/catalog/items/raster-buildings"
    assert [(b["name"], b["unit"]) for b in rec["properties"]["bands"]] == [("population", "persons")]
    for lk in rec["links"]:
        if lk["rel"] in ("license", "enclosure"):
            continue
        r = c.get(_rel(lk["href"]))
        assert r.status_code == 200, (lk, r.text[:300])
        assert r.headers["content-type"].split(";")[0] == lk["type"].split(";")[0], lk
    assert c.get("/collections/raster-buildings").json()["id"] == "raster-buildings"
    wp = c.get("/collections/catalog/items/worldpop").json()
    assert link(wp, REL_MAP) == "/collections/population/map/tiles"
    # the update frequency its ingest stated (migration 0012), "unknown" where none was
    assert (wp["properties"]["updateFrequency"], rec["properties"]["updateFrequency"]) == ("annually", "unknown")
    # the enclosures are the COGs, downloaded byte for byte through the API
    rows = psycopg.connect(c.app.state.gis.dsn, autocommit=True).execute(
        "SELECT collection, asset_href, asset_size, asset_checksum FROM raster.items ORDER BY collection").fetchall()
    for rid, pid in (("buildings", "raster-buildings"), ("worldpop", "worldpop")):
        doc = rec if pid == "raster-buildings" else wp
        enclosures = [lk for lk in doc["links"] if lk["rel"] == "enclosure"]
        href, size, sha = next((h, s, x) for col, h, s, x in rows if col == rid)
        assert [(_rel(lk["href"]), lk["length"], lk["file:checksum"]) for lk in enclosures] == [
            (f"/rasters/{href}", size, "1220" + sha)]
        body = c.get(_rel(enclosures[0]["href"]))
        assert body.status_code == 200 and body.headers["content-type"] == enclosures[0]["type"]
        assert len(body.content) == size and hashlib.sha256(body.content).hexdigest() == sha
        assert body.content == c.store.path(href).read_bytes()
    # HTML: the record's page (bands, downloads) and the catalogue page
    html = c.get("/collections/catalog/items/worldpop?f=html&lang=en").text
    for text in ("WorldPop population count", "Bands", "population", "persons", "Downloads",
                 f"/rasters/{next(h for col, h, _, _ in rows if col == 'worldpop')}", "CC-BY-4.0",
                 "/stac/collections/worldpop", "Provider (producer, licensor)", "https://www.worldpop.org"):
        assert text in html, text
    assert "Các băng" in c.get("/collections/catalog/items/worldpop?f=html&lang=vi").text
    page = c.get("/collections/catalog/items?f=html&q=worldpop").text
    assert "/collections/catalog/items/worldpop?f=html" in page and "/rasters/worldpop/" in page
    missing = c.get("/collections/catalog/items/buildings-raster")
    assert missing.status_code == 404 and "raster-buildings" in missing.json()["description"]


REL_MAP = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-map"


def test_raster_datasets_in_the_dcat_feed_and_no_server_path(raster_client):
    c = raster_client
    feed = c.get("/catalog.jsonld")
    assert feed.status_code == 200
    doc = feed.json()
    ids = [d["dct:identifier"] for d in doc["dcat:dataset"]]
    assert ids[-2:] == ["raster-buildings", "worldpop"] and len(set(ids)) == len(ids)
    expanded = jsonld.expand(doc)[0]["http://www.w3.org/ns/dcat#dataset"]
    wp = next(d for d in expanded if d["@id"] == "http://testserver/collections/worldpop")
    assert wp["http://purl.org/dc/terms/accrualPeriodicity"][0]["@id"].endswith("/frequency/ANNUAL")
    dists = wp["http://www.w3.org/ns/dcat#distribution"]
    downloads = [d["http://www.w3.org/ns/dcat#downloadURL"][0]["@id"] for d in dists
                 if "http://www.w3.org/ns/dcat#downloadURL" in d]
    assert len(downloads) == 1
    body = c.get(_rel(downloads[0])).content
    cog = next(d for d in dists if "http://www.w3.org/ns/dcat#downloadURL" in d)
    assert cog["http://www.w3.org/ns/dcat#byteSize"][0]["@value"] == str(len(body))
    checksum = cog["http://spdx.org/rdf/terms#checksum"][0]["http://spdx.org/rdf/terms#checksumValue"][0]["@value"]
    assert checksum == hashlib.sha256(body).hexdigest()
    access = [d["http://www.w3.org/ns/dcat#accessURL"][0]["@id"] for d in dists
              if "http://www.w3.org/ns/dcat#accessService" in d]
    assert "http://testserver/collections/worldpop/coverage" in access
    assert c.get("/collections/worldpop/coverage").status_code == 200
    # nothing of the server's folders in any public metadata output
    outputs = [feed.text, c.get("/.well-known/dcat").text]
    for lang in ("en", "vi"):
        outputs.append(c.get(f"/collections/catalog/items?limit=100&lang={lang}").text)
        outputs.append(c.get(f"/collections/catalog/items?limit=100&f=html&lang={lang}").text)
        for rid in ("worldpop", "raster-buildings"):
            outputs += [c.get(f"/collections/catalog/items/{rid}?lang={lang}{f}").text for f in ("", "&f=html")]
    with psycopg.connect(c.app.state.gis.dsn, autocommit=True) as db:
        secrets = {r[0] for r in db.execute("SELECT source_path FROM raster.items")}
        for (path,) in db.execute("SELECT source_path FROM ingest.runs"):
            secrets |= {p.strip() for p in path.split(";")}
    secrets |= {str(c.store.root), str(c.store.root.resolve()), str(c.source.parent)}
    assert str(c.source) in secrets
    for text in outputs:
        for secret in secrets:
            assert secret not in text, secret
    assert c.source.name in outputs[-1]  # the lineage names the source file, by name only


def test_catalogue_extent_times_are_ordered_as_instants():
    """Times of other zones or forms order by the instant they name; text that is no time is left out."""
    from api.records import _instant

    times = ["2024-01-01T05:00:00+07:00", "2023-12-31T23:00:00Z", "2024-01-01"]
    assert min(times, key=_instant) == "2024-01-01T05:00:00+07:00"  # 22:00 UTC: before the "2023" text
    assert max(times, key=_instant) == "2024-01-01"
    assert _instant("not a time") is None and _instant(None) is None
