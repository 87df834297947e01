"""Open-data downloads (gis.downloads): every format, one snapshot, rebuilds, and failures that write nothing.

The demo dataset is loaded through the real ingest jobs into a real PostGIS database; each file is read
back with GDAL (pyogrio) or pyarrow and compared with SQL on the database. Interrupts are real signals in a
real process; the full disk is a real 400 kB tmpfs (root) or a real RLIMIT_FSIZE.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
import pyogrio
import pytest

from gis import downloads as gdl
from gis.catalog import load_catalog
from gis.errors import InputError, NotFoundError
from gis.sample import generate
from ingest.job import IngestOptions, run_ingest

OGR_FORMATS = ("gpkg", "fgb", "csv", "geojson", "geojsonseq", "shp.zip")
LOADS = (("cadastral", "cadastral", datetime(2024, 1, 1, tzinfo=UTC)),
         ("cadastral", "cadastral_update", datetime(2025, 1, 1, tzinfo=UTC)),
         ("planning", "planning", None), ("buildings", "buildings", None), ("roads", "roads", None),
         ("poi", "poi", None))


def _load(dsn: str, folder: Path) -> None:
    paths = generate(folder)
    for kind, key, valid_from in LOADS:
        res = run_ingest(dsn, kind, paths[key], IngestOptions(valid_from=valid_from))
        assert res.outcome == "loaded", res.summary()


@pytest.fixture(scope="module")
def loaded(module_dsn, tmp_path_factory) -> str:
    _load(module_dsn, tmp_path_factory.mktemp("sample"))
    return module_dsn


@pytest.fixture
def fresh(dsn, tmp_path) -> str:
    """A database of its own with the demo dataset (for tests that write)."""
    _load(dsn, tmp_path / "sample")
    return dsn


def _db(dsn: str):
    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute("SET TimeZone = 'UTC'")
    return conn


def _path(out: Path) -> str:
    return f"/vsizip/{out}" if out.name.endswith(".zip") else str(out)


def test_every_format_holds_every_feature_and_only_public_fields(loaded, tmp_path):
    with _db(loaded) as conn:
        coll = load_catalog(conn)["parcels"]
        count, addresses = conn.execute(
            "SELECT count(*), array_agg(address ORDER BY parcel_id) FROM cadastral.parcels_current").fetchone()
    assert count > 500
    public = set(coll.field_names) | {coll.id_column}
    (tmp_path / "out").mkdir()
    for fmt in (*OGR_FORMATS, "parquet"):
        res = gdl.export(loaded, "parcels", fmt, tmp_path / "out")  # a folder: the file is named for us
        out = res.path
        assert out == tmp_path / "out" / gdl.filename("parcels", fmt)
        assert res.feature_count == count, fmt
        # the checksum file says the file's sha256
        digest = hashlib.sha256(out.read_bytes()).hexdigest()
        assert res.sha256 == digest and res.size == out.stat().st_size
        assert (out.parent / (out.name + ".sha256")).read_text() == f"{digest}  {out.name}\n"
        if fmt == "parquet":
            table = pq.read_table(out)
            assert set(table.column_names) == public | {"geometry", "bbox"}
            assert table.num_rows == count
            assert table.column("address").to_pylist() == addresses
            continue
        info = pyogrio.read_info(_path(out))
        assert info["features"] == count, fmt
        fields = set(info["fields"]) - {"WKT"}
        if fmt == "shp.zip":  # dBase names are cut at 10 characters
            assert fields == {n[:10] for n in public}, fmt
        else:  # the id is the GeoPackage's fid and the GeoJSON features' id
            assert fields | {coll.id_column} == public, fmt
            assert not set(coll.internal_fields) & fields
        df = pyogrio.read_dataframe(_path(out), fid_as_index=True)
        got = [a if isinstance(a, str) and a else None for a in df["address"].tolist()]  # CSV: '' for null
        assert sorted(got, key=str) == sorted(addresses, key=str), fmt  # NFC Vietnamese, as stored
        if fmt != "csv":
            assert df.geometry.notna().all() and df.geometry.is_valid.all(), fmt
    # no temporary file is left anywhere
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


def test_format_specifics(loaded, tmp_path):
    # GeoParquet 1.1: geo metadata, WKB, a bbox covering column that matches the geometries
    out = gdl.export(loaded, "buildings", "parquet", tmp_path).path
    meta = pq.read_metadata(out)
    geo = json.loads(meta.metadata[b"geo"])
    col = geo["columns"]["geometry"]
    assert geo["version"] == "1.1.0" and geo["primary_column"] == "geometry"
    assert col["encoding"] == "WKB" and col["covering"]["bbox"]["xmin"] == ["bbox", "xmin"]
    assert col["crs"]["id"] == {"authority": "OGC", "code": "CRS84"}
    import geopandas as gpd
    import shapely

    gdf = gpd.read_parquet(out)  # geopandas reads it as GeoParquet (and knows the covering column)
    table = pq.read_table(out)
    bounds = shapely.bounds(shapely.from_wkb(table.column("geometry").to_numpy(zero_copy_only=False)))
    boxes = table.column("bbox").to_pylist()
    assert [[b["xmin"], b["ymin"], b["xmax"], b["ymax"]] for b in boxes] == bounds.tolist()
    assert list(col["bbox"]) == pytest.approx(list(gdf.total_bounds))
    assert gdf.crs.to_string() == "OGC:CRS84" and len(gdf) == table.num_rows
    assert meta.num_row_groups >= 1
    # FlatGeobuf has its spatial index (GDAL answers spatial filters from it)
    fgb = gdl.export(loaded, "buildings", "fgb", tmp_path).path
    assert pyogrio.read_info(str(fgb))["capabilities"]["fast_spatial_filter"]
    # zipped Shapefile with a UTF-8 .cpg
    shp = gdl.export(loaded, "poi", "shp.zip", tmp_path).path
    with zipfile.ZipFile(shp) as z:
        names = z.namelist()
        assert {"poi.shp", "poi.shx", "poi.dbf", "poi.prj", "poi.cpg"} <= set(names)
        assert z.read("poi.cpg").decode().strip().upper().replace("-", "") == "UTF8"
    # CSV: geometry as WKT
    csv_text = gdl.export(loaded, "poi", "csv", tmp_path).path.read_text(encoding="utf-8")
    assert csv_text.splitlines()[0].startswith("WKT,poi_id,") and "POINT (" in csv_text
    # GeoJSONSeq: one feature per line
    lines = gdl.export(loaded, "poi", "geojsonseq", tmp_path).path.read_text().splitlines()
    assert all(json.loads(line)["type"] == "Feature" for line in lines) and len(lines) == 15


def test_one_snapshot_whatever_commits_meanwhile(fresh, tmp_path):
    """A write committed while an export reads is not in the file (nor half in it)."""
    with _db(fresh) as conn:
        before = conn.execute("SELECT count(*) FROM cadastral.parcels_current").fetchone()[0]
        with gdl.ReadSnapshot(fresh) as snap:
            coll = snap.collection("parcels")
            version = gdl.data_version(snap.conn, coll)
            # another session changes every parcel and deletes some, and commits
            conn.execute("UPDATE cadastral.parcels SET address = 'CHANGED' WHERE valid_to IS NULL")
            conn.execute("DELETE FROM cadastral.parcels p WHERE valid_to IS NULL AND parcel_id % 7 = 0 "
                         "AND NOT EXISTS (SELECT 1 FROM cadastral.parcel_lineage l "
                         "WHERE p.parcel_id IN (l.child_id, l.parent_id))")
            batches = list(snap.stream(gdl._select(coll, bbox=False)))
            assert gdl.data_version(snap.conn, coll) == version  # the version read in the snapshot
        rows = sum(b.num_rows for b in batches)
        assert rows == before
        assert "CHANGED" not in {a for b in batches for a in b.column("address").to_pylist()}
        with conn.cursor() as cur:  # the database did change: a new snapshot sees a new version
            cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            assert gdl.data_version(conn, coll) != version
            cur.execute("ROLLBACK")
    # publish: a commit between two formats of one collection changes neither (one snapshot for both)
    writer = _db(fresh)
    now = writer.execute("SELECT count(*) FROM cadastral.parcels_current").fetchone()[0]
    assert now < rows

    def progress(cid, fmt, n):
        if fmt == "gpkg":
            writer.execute("UPDATE cadastral.parcels SET address = 'LATER' WHERE valid_to IS NULL")

    res = gdl.publish(fresh, tmp_path, ["parcels"], formats=["gpkg", "parquet"], progress=progress)
    writer.close()
    assert [r.feature_count for r in res] == [now, now]
    table = pq.read_table(res[1].path)
    assert "LATER" not in set(table.column("address").to_pylist())
    # the version recorded is the snapshot's: the next publish sees the change and rebuilds
    again = gdl.publish(fresh, tmp_path, ["parcels"], formats=["gpkg", "parquet"])
    assert all(r.built for r in again)
    assert set(pq.read_table(again[1].path).column("address").to_pylist()) == {"LATER"}


def test_publish_rebuilds_only_what_changed(fresh, tmp_path):
    fmts = ["parquet", "geojson"]
    first = gdl.publish(fresh, tmp_path, formats=fmts)
    with _db(fresh) as conn:
        public = [r[0] for r in conn.execute("SELECT id FROM gis_meta.collections WHERE public "
                                             "ORDER BY sort_order, id")]
        assert [(r.collection_id, r.format) for r in first] == [(c, f) for c in public for f in fmts]
        assert all(r.built for r in first)
        files = gdl.published(conn)
        assert {(d.collection_id, d.format) for d in files} == {(c, f) for c in public for f in fmts}
        for d in files:
            obj = gdl.registered_object(gdl.downloads_root(tmp_path), d)
            assert hashlib.sha256(obj.read_bytes()).hexdigest() == d.sha256 == obj.name[:64]
            assert d.path == f"/downloads/{d.collection_id}/{d.filename}"
            assert d.size == (gdl.downloads_root(tmp_path) / d.collection_id / d.filename).stat().st_size
        # nothing changed: nothing is rebuilt
        assert not any(r.built for r in gdl.publish(fresh, tmp_path, formats=fmts))
        # one POI changes: the POI downloads are rebuilt, nothing else
        conn.execute("UPDATE city.poi SET name = name || ' (mới)' WHERE poi_id = "
                     "(SELECT min(poi_id) FROM city.poi)")
        third = gdl.publish(fresh, tmp_path, formats=fmts)
        assert {r.collection_id for r in third if r.built} == {"poi"}
        assert "(mới)" in (gdl.downloads_root(tmp_path) / "poi" / "poi.geojson").read_text(encoding="utf-8")
        # the catalog entry changes (a field made private): rebuilt, and the field is gone
        conn.execute("UPDATE gis_meta.collections SET fields = fields - 'address' WHERE id = 'poi'")
        fourth = gdl.publish(fresh, tmp_path, ["poi"], formats=fmts)
        assert all(r.built for r in fourth)
        assert "address" not in pq.read_table(fourth[0].path).column_names
        # --force rebuilds what is current
        assert all(r.built for r in gdl.publish(fresh, tmp_path, ["roads"], formats=fmts, force=True))
        # a layer made private: its downloads are unregistered and removed at the next publish
        conn.execute("UPDATE gis_meta.collections SET public = false WHERE id = 'roads'")
        assert all(d.collection_id != "roads" for d in gdl.published(conn))
        gdl.publish(fresh, tmp_path, ["poi"], formats=fmts)
        assert not (gdl.downloads_root(tmp_path) / "roads").exists()
        assert conn.execute("SELECT count(*) FROM gis_meta.downloads WHERE collection_id = 'roads'"
                            ).fetchone()[0] == 0


def test_bad_input_names_the_problem(loaded, tmp_path):
    with pytest.raises(NotFoundError, match="no collection 'nope'.*parcels"):
        gdl.export(loaded, "nope", "gpkg", tmp_path)
    with pytest.raises(InputError, match="'xls' is not a download format.*gpkg"):
        gdl.export(loaded, "parcels", "xls", tmp_path)
    with pytest.raises(InputError, match="cog"):
        gdl.publish(loaded, tmp_path, ["parcels"], formats=["cog"])
    with pytest.raises(InputError, match="tile packages"):
        gdl.export(loaded, "parcels", "pmtiles", tmp_path)  # no packager given (gis does not import tiles)
    with pytest.raises(NotFoundError, match="no collection 'nope'"):
        gdl.publish(loaded, tmp_path, ["parcels", "nope"], formats=["csv"])
    assert not (tmp_path / "downloads" / "parcels").exists()  # names are checked before anything is built
    with _db(loaded) as conn:
        conn.execute("UPDATE gis_meta.collections SET public = false WHERE id = 'districts-2019'")
        try:
            with pytest.raises(NotFoundError, match="'districts-2019' is not public"):
                gdl.export(loaded, "districts-2019", "csv", tmp_path)
        finally:
            conn.execute("UPDATE gis_meta.collections SET public = true WHERE id = 'districts-2019'")
    assert list(tmp_path.iterdir()) == []


_CHILD = """
import os, signal, sys
from gis import downloads as gdl

def progress(n):
    os.kill(os.getpid(), signal.{sig})  # a real signal, delivered mid-export

try:
    gdl.export({dsn!r}, "parcels", {fmt!r}, {out!r}, progress=progress)
except KeyboardInterrupt:
    sys.exit(130)
print("not interrupted")
"""


@pytest.mark.parametrize("fmt", ["gpkg", "parquet", "fgb"])
def test_interrupted_export_keeps_the_old_file(loaded, tmp_path, fmt):
    old = gdl.export(loaded, "parcels", fmt, tmp_path)
    before = old.path.read_bytes()
    child = _CHILD.format(sig="SIGINT", dsn=loaded, fmt=fmt, out=str(old.path))
    proc = subprocess.run([sys.executable, "-c", child], check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 130, proc.stdout + proc.stderr
    assert old.path.read_bytes() == before
    assert (tmp_path / (old.path.name + ".sha256")).read_text().split()[0] == old.sha256
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([old.path.name, old.path.name + ".sha256"])


def test_interrupted_cli_export_says_so(loaded, tmp_path):
    out = tmp_path / "p.fgb"
    env = {**os.environ, "DATABASE_URL": loaded, "GIS_DATA_DIR": str(tmp_path / "var")}
    gis = str(Path(sys.executable).parent / "gis")
    proc = subprocess.Popen([gis, "export", "parcel-history", "--format", "fgb", "--out", str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.send_signal(signal.SIGTERM)  # at whatever point it is
    _, err = proc.communicate(timeout=60)
    assert proc.returncode in (143, -15), err  # -15: killed before Python installed its handler
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    if proc.returncode == 143:
        assert "interrupted" in err and "Traceback" not in err


_FULL = """
import resource, signal, sys
from gis import downloads as gdl
from gis.errors import GisError
if {limit}:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
try:
    gdl.export({dsn!r}, "parcel-history", {fmt!r}, {out!r})
except GisError as exc:
    print(exc.code, exc.message)
    sys.exit(2)
"""


@pytest.fixture
def small_disk(tmp_path):
    """A real 400 kB file system (tmpfs, as root), or None where mounting is not allowed."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    ok = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mnt)], check=False, capture_output=True).returncode == 0
    yield mnt if ok else None
    if ok:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.parametrize("fmt", ["gpkg", "parquet", "geojson", "fgb"])
def test_full_disk_leaves_the_old_file(loaded, tmp_path, small_disk, fmt):
    folder = small_disk or tmp_path
    old = folder / f"old{gdl.FORMATS[fmt].suffix}"
    old.write_bytes(b"previous download " * 1000)  # 18 kB: fits, the new file will not
    before = old.read_bytes()
    limit = 0 if small_disk else 20_000
    if small_disk:  # fill the file system but for 100 kB
        free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
        (folder / "filler").write_bytes(b"\0" * max(free - 20_000, 0))
    child = _FULL.format(limit=limit, dsn=loaded, fmt=fmt, out=str(old))
    proc = subprocess.run([sys.executable, "-c", child], check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout.startswith("DiskFull The disk is full"), proc.stdout
    assert "Traceback" not in proc.stderr
    assert old.read_bytes() == before
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]


def test_published_contract(loaded, tmp_path):
    """The records helper's contract: published(conn) -> DownloadFile with a URL path."""
    [res] = gdl.publish(loaded, tmp_path, ["poi"], formats=["csv"])
    with _db(loaded) as conn:
        [d] = gdl.published(conn, "poi")
        assert d in gdl.published(conn)
    assert isinstance(d, gdl.DownloadFile)
    assert (d.collection_id, d.format, d.filename, d.media_type) == ("poi", "csv", "poi.csv", "text/csv; charset=utf-8")
    assert (d.size, d.sha256, d.feature_count) == (res.size, res.sha256, 15)
    assert d.path == "/downloads/poi/poi.csv" and d.title == "CSV (geometry as WKT)"
    assert d.built_at.tzinfo is not None and abs((datetime.now(UTC) - d.built_at).total_seconds()) < 120
    with pytest.raises(AttributeError):
        d.size = 11  # frozen


def _gis(dsn: str, data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": dsn, "GIS_DATA_DIR": str(data_dir)}
    gis = str(Path(sys.executable).parent / "gis")
    return subprocess.run([gis, *args], env=env, capture_output=True, text=True, timeout=300, check=False)


def _registry(dsn: str) -> dict:
    with _db(dsn) as conn:
        return {(r[0], r[1]): (r[2], r[3]) for r in conn.execute(
            "SELECT collection_id, format, sha256, built_at FROM gis_meta.downloads")}


def test_ingest_publish_rebuilds_the_layers_of_the_ingested_kind(dsn, tmp_path):
    paths = generate(tmp_path / "sample")
    data = tmp_path / "var"
    # without --publish an ingest builds nothing (no slower than before)
    proc = _gis(dsn, data, "ingest", "roads", str(paths["roads"]))
    assert proc.returncode == 0, proc.stderr
    assert _registry(dsn) == {} and not gdl.downloads_root(data).exists()
    # --publish: after the load, the downloads of the layers that read city.poi, and only those
    proc = _gis(dsn, data, "ingest", "poi", str(paths["poi"]), "--publish", "--publish-format", "csv,parquet")
    assert proc.returncode == 0, proc.stderr
    assert "publish: downloads of poi " in proc.stdout and "2 download(s) built, 0 current." in proc.stdout
    reg = _registry(dsn)
    assert set(reg) == {("poi", "csv"), ("poi", "parquet")}
    with _db(dsn) as conn:
        n_poi = conn.execute("SELECT count(*) FROM city.poi").fetchone()[0]
    assert pq.read_metadata(gdl.downloads_root(data) / "poi" / "poi.parquet").num_rows == n_poi
    # the same file again: nothing changed, nothing rebuilt
    proc = _gis(dsn, data, "ingest", "poi", str(paths["poi"]), "--publish", "--publish-format", "csv,parquet")
    assert proc.returncode == 0, proc.stderr
    assert "0 download(s) built, 2 current." in proc.stdout and _registry(dsn) == reg
    # cadastral: both parcel layers (current and history) read cadastral.parcels; poi stays as it was
    proc = _gis(dsn, data, "ingest", "cadastral", str(paths["cadastral"]), "--valid-from", "2024-01-01",
                "--publish", "--publish-format", "csv")
    assert proc.returncode == 0, proc.stderr
    after = _registry(dsn)
    assert set(after) - set(reg) == {("parcels", "csv"), ("parcel-history", "csv")}
    assert {k: after[k] for k in reg} == reg
    with _db(dsn) as conn:
        n_parcels = conn.execute("SELECT count(*) FROM cadastral.parcels_current").fetchone()[0]
        assert gdl.collections_reading(conn, ["cadastral.parcels"]) == [
            r[0] for r in conn.execute("SELECT id FROM gis_meta.collections WHERE public AND id LIKE 'parcel%' "
                                       "ORDER BY sort_order, id")]
        assert gdl.collections_reading(conn, ["nowhere.nothing"]) == []
    assert pyogrio.read_info(str(gdl.downloads_root(data) / "parcels" / "parcels.csv"))["features"] == n_parcels
    # a bad format is refused before anything is loaded
    proc = _gis(dsn, data, "ingest", "cadastral", str(paths["cadastral_update"]), "--publish",
                "--publish-format", "xls")
    assert proc.returncode == 2 and "--publish-format 'xls'" in proc.stderr and "Traceback" not in proc.stderr
    with _db(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM cadastral.parcels_current").fetchone()[0] == n_parcels


def test_csv_dates_are_iso_8601_and_typed_by_readers(loaded, tmp_path):
    import pandas as pd

    out = gdl.export(loaded, "parcel-history", "csv", tmp_path).path
    with _db(loaded) as conn:
        rows = conn.execute("SELECT parcel_id, valid_from, valid_to FROM cadastral.parcels ORDER BY parcel_id"
                            ).fetchall()
    assert any(r[2] is not None for r in rows)  # retired versions: both columns have values
    # the text: 2024-01-01T00:00:00Z, never GDAL's 2024/01/01 00:00:00+00
    df = pd.read_csv(out, dtype={"valid_from": str, "valid_to": str}, keep_default_na=False)
    stamp = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?Z$"
    assert df["valid_from"].str.match(stamp).all(), df["valid_from"].head().tolist()
    assert df["valid_to"].map(lambda v: v == "" or bool(pd.Series([v]).str.match(stamp)[0])).all()
    # pandas reads them as UTC datetimes equal to the database's
    typed = pd.read_csv(out, parse_dates=["valid_from", "valid_to"])
    assert str(typed["valid_from"].dtype).startswith("datetime64") and "UTC" in str(typed["valid_from"].dtype)
    got = {(int(r.parcel_id), r.valid_from.to_pydatetime(), None if pd.isna(r.valid_to) else r.valid_to.to_pydatetime())
           for r in typed.itertuples()}
    assert got == {(pid, vf, vt) for pid, vf, vt in rows}
    # GDAL (with type detection, as QGIS does) reads them as DateTime fields
    info = pyogrio.read_info(str(out), AUTODETECT_TYPE="YES")
    types = dict(zip(info["fields"], info["dtypes"], strict=True))
    assert types["valid_from"].startswith("datetime64") and types["parcel_id"] == "int32"
    gdf = pyogrio.read_dataframe(str(out), AUTODETECT_TYPE="YES", read_geometry=False)
    first = gdf.sort_values("parcel_id").iloc[0]
    assert pd.Timestamp(first["valid_from"]).tz_localize(None) == pd.Timestamp(rows[0][1]).tz_convert(None)


def test_read_ahead_is_bounded_and_passes_errors_on():
    """The reading thread stays at most a few batches ahead, stops when the writer stops, and a read
    error is raised in the writing thread (where GDAL reports it)."""
    import threading

    import pyarrow as pa

    schema = pa.schema([pa.field("n", pa.int64())])
    produced: list[int] = []

    def source(fail_at: int | None):
        for i in range(1000):
            if i == fail_at:
                raise ValueError(f"read failed at batch {i}")
            produced.append(i)
            yield pa.record_batch([pa.array([i] * 10)], schema=schema)

    counter = [0]
    seen = []
    with gdl._ReadAhead(pa.RecordBatchReader.from_batches(schema, source(None)), depth=2) as ahead:
        it = ahead.batches(seen.append, counter)
        first = next(it)
        assert first.column("n").to_pylist() == [0] * 10 and counter == [10] and seen == [10]
        time.sleep(0.5)  # time enough for the thread to read far ahead, were it not bounded
        assert len(produced) <= 1 + 2 + 1  # the one taken, two queued, one waiting to be queued
    assert len(produced) < 10  # leaving stopped the thread: the other batches were never read
    assert not [t for t in threading.enumerate() if t.name == "gis-export-read"]
    with gdl._ReadAhead(pa.RecordBatchReader.from_batches(schema, source(5))) as ahead:
        got = []
        with pytest.raises(ValueError, match="read failed at batch 5"):
            got.extend(b.num_rows for b in ahead.batches(None, [0]))
        assert got == [10] * 5


def test_flatgeobuf_reads_back_as_gdals_export(loaded, tmp_path):
    """Every public layer of the demo, exported to FlatGeobuf by gis.flatgeobuf: read back exactly as
    GDAL's export of the same snapshot (which the exporter still uses for what that writer does not
    encode). More cases: tests/gis/test_flatgeobuf.py."""
    with gdl.ReadSnapshot(loaded) as snap:
        ids = sorted(snap.catalog)
        assert len(ids) >= 5
        for cid in ids:
            coll = snap.collection(cid)
            ours, gdal = tmp_path / f"{cid}.fgb", tmp_path / f"{cid}.gdal.fgb"
            count, digest = gdl._write_fgb(snap, coll, ours, None)
            assert digest is not None, f"{cid}: written by GDAL, not by gis.flatgeobuf"
            assert gdl._write_ogr(snap, coll, "fgb", gdal, None) == count
            a, b = pyogrio.read_arrow(str(ours))[1], pyogrio.read_arrow(str(gdal))[1]
            assert a.schema == b.schema and a.num_rows == b.num_rows == count, cid
            key = coll.id_column
            a, b = a.sort_by(key), b.sort_by(key)
            for name in a.column_names:
                assert a.column(name).equals(b.column(name)), (cid, name)
            ia, ib = pyogrio.read_info(str(ours)), pyogrio.read_info(str(gdal))
            for k in ("layer_name", "crs", "geometry_type", "features", "total_bounds", "layer_metadata"):
                assert ia[k] == ib[k], (cid, k)
