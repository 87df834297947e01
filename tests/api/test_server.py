"""`gis serve` as a real process: real HTTP requests, and GDAL's OGC API driver reading it."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyogrio
import pytest
from api_helpers import GisServer

GIS = str(Path(sys.executable).parent / "gis")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module", params=[1, 2], ids=["1-worker", "2-workers"])
def server(request, sample_dsn, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    args = ("--workers", str(request.param), "--no-access-log")
    with GisServer({"DATABASE_URL": sample_dsn}, log, args) as srv:
        yield srv.base, srv.proc, log


def test_real_http_requests(server, db):
    base, proc, _ = server
    with httpx.Client(base_url=base, timeout=30) as http:
        landing = http.get("/").json()
        assert any(lk["href"] == f"{base}/api" for lk in landing["links"])
        r = http.get("/collections/parcels/items", params={"limit": 1000})
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/geo+json"
        doc = r.json()
        total = db.execute("SELECT count(*) FROM cadastral.parcels_current").fetchone()[0]
        assert doc["numberReturned"] == total
        r = http.get(
            "/collections/parcels/items", params={"limit": 5, "crs": "EPSG:9210", "f": "csv"}
        )
        assert r.status_code == 200 and r.text.count("\n") == 6
        assert http.get("/api").json()["openapi"].startswith("3.0")
        assert http.get("/api.html").status_code == 200
        assert http.get("/static/leaflet/leaflet.js").status_code == 200
        r = http.get("/collections/parcels/items", params={"bbox": "oops"})
        assert r.status_code == 400 and r.json()["code"] == "InvalidParameterValue"
        assert "server" not in {k.lower() for k in r.headers}


def test_concurrent_requests(server):
    base, _, _ = server
    import concurrent.futures

    def get(i: int) -> int:
        with httpx.Client(base_url=base, timeout=30) as http:
            r = http.get("/collections/buildings/items", params={"limit": 50, "offset": i})
            return r.json()["numberReturned"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        counts = list(pool.map(get, range(40)))
    assert counts == [50] * 40


def test_gdal_reads_the_api(server, db):
    """GDAL's OAPIF driver (gdal-bin, installed by ./dev) lists, counts and pages features."""
    base, _, _ = server
    ogrinfo = shutil.which("ogrinfo")
    assert ogrinfo, "ogrinfo (gdal-bin) is missing: run ./dev setup"
    out = subprocess.run(
        [ogrinfo, "-ro", "-so", f"OAPIF:{base}", "parcels"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    total = db.execute("SELECT count(*) FROM cadastral.parcels_current").fetchone()[0]
    assert f"Feature Count: {total}" in out.stdout
    assert "land_use: String" in out.stdout
    assert "owner_name" not in out.stdout and "id_number" not in out.stdout
    out = subprocess.run(
        [ogrinfo, "-ro", "-q", f"OAPIF:{base}", "poi"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    n_poi = db.execute("SELECT count(*) FROM city.poi").fetchone()[0]
    assert out.stdout.count("OGRFeature(poi)") == n_poi > 10  # more than one page of 10


def test_stops_cleanly_on_sigterm(sample_dsn, tmp_path):
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": sample_dsn}
    proc = subprocess.Popen(
        [GIS, "serve", "--port", str(port), "--no-access-log"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/conformance", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out.decode()
    assert b"Application shutdown complete" in out
    assert b"interrupted" not in out


def test_gdal_walk_is_served_ahead(sample_dsn, db, tmp_path):
    """ogr2ogr pages through a layer; from the third page on, each page was computed while GDAL
    read the one before (the server's debug log says so), and the copy is exact."""
    ogr2ogr = shutil.which("ogr2ogr")
    assert ogr2ogr, "ogr2ogr (gdal-bin) is missing: run ./dev setup"
    log = tmp_path / "serve.log"
    args = ("--workers", "1", "--no-access-log", "--log-level", "debug")
    with GisServer({"DATABASE_URL": sample_dsn}, log, args) as srv:
        out = tmp_path / "parcels.gpkg"
        run = subprocess.run(
            [
                ogr2ogr,
                "-f",
                "GPKG",
                str(out),
                f"OAPIF:{srv.base}/collections/parcels",
                "-oo",
                "PAGE_SIZE=40",
                "-preserve_fid",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stderr
        text = srv.text()
    ids = sorted(int(i) for i in pyogrio.read_dataframe(out, columns=[], fid_as_index=True).index)
    expected = [
        r[0]
        for r in db.execute("SELECT parcel_id FROM cadastral.parcels_current ORDER BY parcel_id")
    ]
    assert ids == expected
    pages = -(-len(expected) // 40)
    assert pages > 5
    assert text.count("read-ahead: served /collections/parcels/items") == pages - 2
