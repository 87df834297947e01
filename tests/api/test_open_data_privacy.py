"""No personal data leaves through the open-data door: every public output of every public layer is scanned.

Planted: the sample's owner names and identity numbers (in ``private.parcel_owners``, by the ingest job),
and a phone number and an e-mail written into internal columns (``row_hash``, ``source``, ``licence`` where
they are not public) of every table behind a public layer. Scanned: each download format of each public
layer (files decoded where compressed: Parquet, zipped Shapefile, tile packages), the API's items as
GeoJSON, JSON-FG, CSV and HTML, each layer's vector tiles, and the metadata documents. Each is searched for
every planted value and for the names of the internal columns.
"""

from __future__ import annotations

import gzip
import sqlite3
import zipfile
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
import pyogrio
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from api.app import create_app
from api.settings import ApiSettings
from gis import downloads as gdl
from gis.catalog import load_catalog
from gis.cli import _tile_packager
from gis.settings import Settings
from tiles import tms as gtms

PHONE = "+84 903 555 017"
EMAIL = "nguyen.van.an@example.vn"
#: internal names that must never appear as a field (anywhere)
PRIVATE_NAMES = ("owner_name", "id_number", "parcel_owners", "row_hash", "run_id")


#: (table, column) that no public layer publishes, where a phone number and an e-mail are planted
PLANT_INTO = (("cadastral.parcels", "source"), ("cadastral.parcels", "licence"), ("cadastral.parcels", "row_hash"),
              ("city.buildings", "row_hash"), ("city.roads", "row_hash"), ("city.poi", "row_hash"),
              ("planning.lots", "row_hash"))


@pytest.fixture(scope="module")
def planted(sample_dsn) -> list[str]:
    """Plant the personal values; return every value to look for."""
    with psycopg.connect(sample_dsn, autocommit=True) as conn:
        catalog = load_catalog(conn)
        for table, column in PLANT_INTO:
            schema, name = table.split(".")
            readers = [c for c in catalog.values() if table in _tables(conn, c)]
            assert readers, table
            for c in readers:  # internal to every layer that reads the table (a view may rename columns)
                assert column in c.internal_fields or column not in c.field_names, (c.id, column)
            conn.execute(sql.SQL("UPDATE {} SET {} = %s").format(sql.Identifier(schema, name),
                                                                 sql.Identifier(column)), (f"{PHONE} {EMAIL}",))
        owners = conn.execute("SELECT owner_name, id_number FROM private.parcel_owners "
                              "WHERE id_number IS NOT NULL").fetchall()
    names = sorted({o[0] for o in owners})
    numbers = sorted({o[1] for o in owners})
    assert len(names) > 100 and len(numbers) > 100
    return [PHONE, EMAIL, *names, *numbers]


def _tables(conn, coll) -> list[str]:
    rows = conn.execute(
        "WITH RECURSIVE deps(oid) AS (SELECT %s::regclass::oid UNION SELECT d.refobjid FROM deps "
        "JOIN pg_rewrite r ON r.ev_class = deps.oid JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass "
        "AND d.objid = r.oid AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> deps.oid) "
        "SELECT c.oid::regclass::text FROM deps JOIN pg_class c ON c.oid = deps.oid WHERE c.relkind = 'r'",
        (f"{coll.schema}.{coll.relation}",)).fetchall()
    return [r[0] for r in rows]


@pytest.fixture(scope="module")
def published(sample_dsn, planted, tmp_path_factory):
    folder = tmp_path_factory.mktemp("var")
    gdl.publish(sample_dsn, folder, tile_packager=_tile_packager())
    with psycopg.connect(sample_dsn) as conn:
        files = gdl.published(conn)
        catalog = load_catalog(conn)
    return folder, files, catalog


def _decoded(path: Path, fmt: str) -> bytes:
    """The file's content as bytes a string search can read (compressed formats decoded)."""
    if fmt == "parquet":
        t = pq.read_table(path)
        meta = pq.read_metadata(path).metadata or {}
        return (str(t.to_pylist()) + str(t.column_names) + str(meta)).encode()
    if fmt == "shp.zip":
        with zipfile.ZipFile(path) as z:
            return b"".join(z.read(n) for n in z.namelist())
    if fmt == "mbtiles":
        db = sqlite3.connect(path)
        try:
            tiles = [gzip.decompress(r[0]) for r in db.execute("SELECT tile_data FROM tiles")]
            meta = [f"{k}={v}".encode() for k, v in db.execute("SELECT name, value FROM metadata")]
        finally:
            db.close()
        assert tiles
        return b"".join(tiles + meta)
    if fmt == "pmtiles":
        from pmtiles.reader import MmapSource, Reader, all_tiles

        with open(path, "rb") as f:
            get = MmapSource(f)
            tiles = [gzip.decompress(body) for _, body in all_tiles(get)]
            meta = str(Reader(get).metadata()).encode()
        assert tiles
        return b"".join(tiles) + meta
    return path.read_bytes()


def _check(where: str, blob: bytes, planted: list[str], internal: tuple[str, ...]) -> None:
    for value in planted:
        assert value.encode() not in blob, f"planted personal value found in {where}"
    for name in (*PRIVATE_NAMES, *internal):
        if name in ("source", "licence", "address"):  # ordinary words: checked as fields, not text
            continue
        assert name.encode() not in blob, f"internal name {name!r} found in {where}"


def test_no_personal_data_in_any_download(published, planted):
    folder, files, catalog = published
    root = gdl.downloads_root(folder)
    formats = {(d.collection_id, d.format) for d in files}
    for cid in catalog:  # every public layer has every format (tile packages when it has features)
        assert {f for c, f in formats if c == cid} >= {"gpkg", "parquet", "fgb", "csv", "geojson",
                                                        "geojsonseq", "shp.zip"}, cid
    assert ("parcels", "pmtiles") in formats and ("parcels", "mbtiles") in formats
    for d in files:
        coll = catalog[d.collection_id]
        path = gdl.registered_object(root, d)
        _check(d.path, _decoded(path, d.format), planted, coll.internal_fields)
        if d.format in ("pmtiles", "mbtiles", "parquet") or d.size == 0:  # an empty GeoJSONSeq has no schema
            continue
        # the fields are exactly the public ones (dBase names cut at 10 characters)
        src = f"/vsizip/{path}" if d.format == "shp.zip" else str(path)
        fields = set(pyogrio.read_info(src)["fields"]) - {"WKT"}
        public = set(coll.field_names) | {coll.id_column}
        if d.format == "shp.zip":  # dBase: names cut at 10 characters, duplicates renamed (populati_1)
            assert len(fields) == len(public), d.path
            assert not fields & {n[:10] for n in coll.internal_fields} - {n[:10] for n in public}, d.path
        else:
            assert fields <= public and not fields & set(coll.internal_fields), (d.path, fields - public)
    for d in files:
        if d.format == "parquet":
            names = set(pq.read_schema(gdl.registered_object(root, d)).names)
            coll = catalog[d.collection_id]
            assert names == set(coll.field_names) | {coll.id_column, "geometry", "bbox"}, d.path


@pytest.fixture(scope="module")
def client(sample_dsn, published):
    folder, _, _ = published
    app = create_app(Settings(database_url=sample_dsn, data_dir=folder), ApiSettings())
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_no_personal_data_in_the_api_or_tiles(client, published, planted):
    _, files, catalog = published
    urls = ["/", "/collections", "/collections?f=html", "/downloads", "/api"]
    for cid, coll in catalog.items():
        urls += [f"/collections/{cid}", f"/collections/{cid}?f=html", f"/collections/{cid}/queryables",
                 f"/collections/{cid}/downloads"]
        urls += [f"/collections/{cid}/items?limit=10000&f={f}" for f in ("json", "jsonfg", "csv", "html")]
    for d in files:
        urls.append(d.path + ".sha256")
    seen = 0
    for url in urls:
        r = client.get(url)
        assert r.status_code == 200, (url, r.text[:200])
        cid = url.split("/")[2].split("?")[0] if url.startswith("/collections/") else None
        internal = catalog[cid].internal_fields if cid in catalog else ()
        _check(url, r.content, planted, internal if "items" in url else ())
        seen += 1
    # the records catalogue, where it exists
    for url in ("/collections/catalog/items?limit=1000", "/collections/catalog/items?f=html"):
        r = client.get(url)
        if r.status_code == 200:
            _check(url, r.content, planted, ())
    # vector tiles of each layer over its extent, at the zoom where every tile field is present
    tiles_seen, with_extent, with_tiles = 0, set(), set()
    for cid, coll in catalog.items():
        ext = client.get(f"/collections/{cid}").json().get("extent", {}).get("spatial", {}).get("bbox")
        if not ext:
            continue
        with_extent.add(cid)
        z = max(coll.min_zoom, min(coll.max_zoom, 17))
        for t in list(gtms.tiles_in_bbox("WebMercatorQuad", tuple(ext[0]), z, z))[:400]:
            r = client.get(f"/collections/{cid}/tiles/WebMercatorQuad/{t.z}/{t.y}/{t.x}")
            assert r.status_code in (200, 204), r.text[:200]
            if r.status_code == 200:
                body = gzip.decompress(r.content) if r.content[:2] == b"\x1f\x8b" else r.content
                _check(f"tile {cid} {t.z}/{t.y}/{t.x}", body, planted, coll.internal_fields)
                tiles_seen += 1
                with_tiles.add(cid)
    assert seen > 60 and tiles_seen >= len(with_extent) >= 6 and with_tiles == with_extent
