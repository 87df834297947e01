"""OGC API - Processes: the analyses as processes, synchronous execution, jobs, results published as
collections, bad input, a real server with two workers and a restart, and OWSLib as a client.

The database is the demo dataset (real ingest jobs) with the real 2025 wards; the analyses run on
the area of the sample (one ward, a few hundred parcels), so that each takes about a second.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import httpx
import psycopg
import pyogrio
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from gis.analysis.jobs import JobSettings
from gis.analysis.registry import ANALYSES, REGISTRY
from gis.settings import Settings
from ingest.job import IngestOptions, run_ingest

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "hcmc"
WARDS_2025 = SHARED / "vn-provinces-db-2025" / "hcmc_wards_2025.geojson"
WORLDPOP = "geoglue-kraemer/worldpop/hcmc_clip_vnm_ppp_2020_1km_UNadj.tif"  # relative to SHARED
GIS = str(Path(sys.executable).parent / "gis")
PROC = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf"


def _wait(predicate, timeout: float = 60.0, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("timed out")


@pytest.fixture(scope="module")
def proc_dsn(sample_dsn, shared_data) -> str:
    """The demo dataset plus the real 2025 wards (the zones of the analyses)."""
    result = run_ingest(sample_dsn, "admin", WARDS_2025, IngestOptions())
    assert result.outcome == "loaded", result.summary()
    return sample_dsn


@pytest.fixture(scope="module")
def aoi(proc_dsn) -> str:
    """The bounding box of the sample's plan lots, a little widened."""
    with psycopg.connect(proc_dsn) as conn:
        box = conn.execute(
            "SELECT ST_XMin(e) - 0.001, ST_YMin(e) - 0.001, ST_XMax(e) + 0.001, "
            "ST_YMax(e) + 0.001 FROM (SELECT ST_Extent(geom) e FROM "
            "planning.lots_published) s"
        ).fetchone()
    return ",".join(f"{v:.6f}" for v in box)


@pytest.fixture(scope="module")
def pdb(proc_dsn):
    with psycopg.connect(proc_dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def pc(proc_dsn, tmp_path_factory):
    """A TestClient of the app, its jobs run by two worker threads, file inputs from shared/."""
    data = tmp_path_factory.mktemp("proc_data")
    app = create_app(
        Settings(database_url=proc_dsn, data_dir=data), ApiSettings(catalog_poll_seconds=0.5)
    )
    app.state.job_settings = JobSettings(
        workers=2, input_dirs=[SHARED], results_dir=data / "results"
    )
    with TestClient(app, raise_server_exceptions=False) as c:
        c.data_dir = data  # the raster store is data / "rasters"
        yield c


def _run_async(pc, process_id: str, inputs: dict, **extra) -> dict:
    r = pc.post(
        f"/processes/{process_id}/execution",
        json={"inputs": inputs, **extra},
        headers={"Prefer": "respond-async"},
    )
    assert r.status_code == 201, r.text
    loc = r.headers["location"].replace("http://testserver", "")
    assert loc == f"/jobs/{r.json()['jobID']}"
    return _wait(lambda: (d := pc.get(loc).json())["status"] not in ("accepted", "running") and d)


# --- processes --------------------------------------------------------------------------------
def test_landing_conformance_and_process_list(pc):
    links = {lk["rel"]: lk["href"] for lk in pc.get("/").json()["links"]}
    assert (
        links["http://www.opengis.net/def/rel/ogc/1.0/processes"] == "http://testserver/processes"
    )
    assert links["http://www.opengis.net/def/rel/ogc/1.0/job-list"] == "http://testserver/jobs"
    conf = pc.get("/conformance").json()["conformsTo"]
    for c in ("core", "ogc-process-description", "json", "html", "oas30", "job-list", "dismiss"):
        assert f"{PROC}/{c}" in conf
    doc = pc.get("/processes").json()
    assert [p["id"] for p in doc["processes"]] == [a.id for a in ANALYSES]
    for p in doc["processes"]:
        a = REGISTRY[p["id"]]
        assert p["jobControlOptions"] == (
            ["async-execute"] if a.long else ["sync-execute", "async-execute"]
        )
        assert any(
            lk["rel"] == "self" and lk["href"].endswith(f"/processes/{a.id}") for lk in p["links"]
        )
    page = pc.get("/processes", params={"limit": 4, "offset": 4}).json()
    assert [p["id"] for p in page["processes"]] == [a.id for a in ANALYSES[4:8]]
    assert any(lk["rel"] == "next" for lk in page["links"])
    vi = pc.get("/processes", params={"lang": "vi"}).json()["processes"][0]
    assert vi["title"] == ANALYSES[0].title_vi
    html = pc.get("/processes", params={"f": "html"})
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert (
        ANALYSES[0].title in html.text
        and 'href="http://testserver/processes/planning.land-use' in html.text
    )
    api = pc.get("/api").json()
    for path in (
        "/processes",
        "/processes/{processId}",
        "/processes/{processId}/execution",
        "/jobs",
        "/jobs/{jobId}",
        "/jobs/{jobId}/results",
    ):
        assert path in api["paths"], path
    assert set(api["paths"]["/jobs/{jobId}"]) == {"get", "delete"}
    assert "post" in api["paths"]["/processes/{processId}/execution"]


def test_process_description(pc):
    for a in ANALYSES:
        d = pc.get(f"/processes/{a.id}").json()
        assert d["id"] == a.id and d["version"]
        assert d["inputs"] == a.describe()["inputs"]
        media = [s["contentMediaType"] for s in d["outputs"]["result"]["schema"]["oneOf"]]
        assert media[0] == "application/geo+json" and "text/csv" in media
        rels = {lk["rel"] for lk in d["links"]}
        assert {"self", "alternate", "http://www.opengis.net/def/rel/ogc/1.0/execute"} <= rels
    d = pc.get("/processes/health.access").json()
    assert d["inputs"]["minutes"]["schema"]["items"]["exclusiveMinimum"] == 0
    assert d["inputs"]["worldpop"]["minOccurs"] == 1 and d["jobControlOptions"] == ["async-execute"]
    r = pc.get("/processes/planning.magic")
    assert r.status_code == 404 and r.json()["code"] == "NoSuchProcess"
    assert "planning.land-use" in r.json()["description"]
    html = pc.get("/processes/planning.land-use", params={"f": "html", "lang": "vi"})
    assert html.status_code == 200 and "Cơ cấu sử dụng đất theo phường" in html.text
    assert "storey_height_m" not in html.text and "zones" in html.text
    assert pc.get("/processes/planning.land-use", params={"colour": "red"}).status_code == 400


# --- synchronous execution --------------------------------------------------------------------
def test_sync_execution_returns_the_result(pc, pdb, aoi):
    inputs = {"source": "lots", "zones": "wards_2025", "aoi": aoi}
    r = pc.post("/processes/planning.land-use/execution", json={"inputs": inputs})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/geo+json"
    fc = r.json()
    assert fc["type"] == "FeatureCollection" and fc["features"]
    # the areas of the land uses of the ward in the AOI are what SQL says of the lots
    got = sum(
        f["properties"]["area_m2"] for f in fc["features"] if f["properties"]["use"] != "(unmapped)"
    )
    want = pdb.execute(
        "SELECT sum(ST_Area(ST_Intersection(l.geom, w.geom)::geography)) FROM "
        "planning.lots_published l JOIN admin.wards_2025 w ON ST_Intersects(l.geom, w.geom) "
        "WHERE ST_Intersects(l.geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326))",
        [float(v) for v in aoi.split(",")],
    ).fetchone()[0]
    assert got == pytest.approx(want, rel=0.01)
    # the execution is a job too, with the result published as a collection
    monitor = r.headers["link"].split(">")[0].lstrip("<").replace("http://testserver", "")
    job = pc.get(monitor).json()
    assert (
        job["status"] == "successful"
        and job["progress"] == 100
        and job["processID"] == "planning.land-use"
    )
    row = pdb.execute(
        "SELECT mode, result_table, result_rows, inputs FROM processes.jobs WHERE job_id = %s",
        (job["jobID"],),
    ).fetchone()
    assert row[0] == "sync" and row[2] == len(fc["features"]) and row[3]["aoi"] == aoi
    n = pdb.execute(f"SELECT count(*) FROM stats.{row[1]}").fetchone()[0]
    assert n == len(fc["features"])
    # same request as CSV
    r = pc.post(
        "/processes/planning.land-use/execution",
        json={"inputs": inputs, "outputs": {"result": {"format": {"mediaType": "text/csv"}}}},
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.text.count("\n") == len(fc["features"]) + 1 and "wkt" in r.text.splitlines()[0]


def test_sync_document_and_reference(pc, aoi):
    body = {
        "inputs": {"zones": "lots", "aoi": {"bbox": [float(v) for v in aoi.split(",")]}},
        "response": "document",
    }
    r = pc.post("/processes/planning.built-density/execution", json=body)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["result"]["type"] == "FeatureCollection" and len(doc["result"]["features"]) > 10
    body["outputs"] = {"result": {"transmissionMode": "reference"}}
    ref = pc.post("/processes/planning.built-density/execution", json=body).json()["result"]
    assert ref["type"] == "application/geo+json"
    fc = pc.get(ref["href"].replace("http://testserver", "")).json()
    assert len(fc["features"]) == len(doc["result"]["features"])
    body["response"] = "raw"
    r = pc.post("/processes/planning.built-density/execution", json=body)
    assert (
        r.status_code == 204
        and 'rel="http://www.opengis.net/def/rel/ogc/1.0/results"' in r.headers["link"]
    )
    # a GeoJSON polygon as the area of interest gives the same as the box
    x0, y0, x1, y1 = (float(v) for v in aoi.split(","))
    poly = {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}
    r = pc.post(
        "/processes/planning.built-density/execution",
        json={"inputs": {"zones": "lots", "aoi": poly}, "response": "document"},
    )
    assert len(r.json()["result"]["features"]) == len(doc["result"]["features"])


# --- jobs ---------------------------------------------------------------------------------------
def test_async_job_results_publication_and_dismissal(pc, pdb, aoi):
    job = _run_async(pc, "planning.land-use", {"source": "lots", "aoi": aoi})
    assert job["status"] == "successful", job
    assert job["progress"] == 100 and job["started"] <= job["finished"]
    jid = job["jobID"]
    links = {
        (lk["rel"], lk["type"]): lk["href"].replace("http://testserver", "") for lk in job["links"]
    }
    results = pc.get(links[("http://www.opengis.net/def/rel/ogc/1.0/results", "application/json")])
    assert results.status_code == 200 and results.headers["content-type"] == "application/geo+json"
    n = len(results.json()["features"])
    # downloads
    csv = pc.get(f"/jobs/{jid}/results", params={"f": "csv"})
    assert csv.status_code == 200 and csv.text.count("\n") == n + 1
    assert "attachment" in csv.headers["content-disposition"]
    gpkg = pc.get(f"/jobs/{jid}/results", params={"f": "gpkg"})
    assert (
        gpkg.status_code == 200 and gpkg.headers["content-type"] == "application/geopackage+sqlite3"
    )
    path = Path(pc.app.state.jobs.results_root) / "check.gpkg"
    path.write_bytes(gpkg.content)
    frame = pyogrio.read_dataframe(path)
    assert len(frame) == n and isinstance(frame, gpd.GeoDataFrame)
    meta = pyogrio.read_info(path)["layer_metadata"]
    assert "planning.land-use" in meta["GIS_ANALYSIS"]
    # published: the collection appears under /collections (catalog reload) with the same rows
    coll = next(lk for lk in job["links"] if lk["rel"] == "related")["href"].rsplit("/", 1)[1]
    assert coll == f"stats-job-{jid.replace('-', '')[:12]}"
    _wait(lambda: pc.get(f"/collections/{coll}").status_code == 200, timeout=20)
    items = pc.get(f"/collections/{coll}/items", params={"limit": 1000}).json()
    assert items["numberMatched"] == n
    assert coll in [c["id"] for c in pc.get("/collections").json()["collections"]]
    html = pc.get(f"/jobs/{jid}", params={"f": "html"})
    assert (
        html.status_code == 200
        and "successful" in html.text
        and f"/jobs/{jid}/results?f=gpkg" in html.text
    )
    # dismissal removes the results and the collection
    r = pc.delete(f"/jobs/{jid}")
    assert r.status_code == 200 and r.json()["status"] == "dismissed"
    assert pc.get(f"/jobs/{jid}").json()["status"] == "dismissed"
    r = pc.get(f"/jobs/{jid}/results")
    assert r.status_code == 404 and r.json()["code"] == "NoSuchJob"
    table = f"job_{jid.replace('-', '')[:12]}"
    assert pdb.execute("SELECT to_regclass(%s)", (f"stats.{table}",)).fetchone()[0] is None
    assert (
        pdb.execute("SELECT count(*) FROM gis_meta.collections WHERE id = %s", (coll,)).fetchone()[
            0
        ]
        == 0
    )
    assert not (Path(pc.app.state.jobs.results_root) / jid).exists()
    _wait(lambda: pc.get(f"/collections/{coll}").status_code == 404, timeout=20)
    assert pc.delete(f"/jobs/{jid}").status_code == 200  # dismissing again changes nothing


def test_long_process_runs_as_a_job_even_without_prefer(pc, aoi):
    r = pc.post(
        "/processes/logistics.service-areas/execution",
        json={"inputs": {"aoi": aoi, "minutes": [2, 5], "directed": False}},
    )
    assert r.status_code == 201 and "preference-applied" not in r.headers
    loc = r.headers["location"].replace("http://testserver", "")
    job = _wait(lambda: (d := pc.get(loc).json())["status"] not in ("accepted", "running") and d)
    assert job["status"] == "successful", job
    fc = pc.get(f"{loc}/results").json()
    assert sorted(f["properties"]["minutes"] for f in fc["features"]) == [2, 5]
    assert {f["geometry"]["type"] for f in fc["features"]} <= {"Polygon", "MultiPolygon"}


def test_file_inputs_are_confined_to_the_input_folders(pc, aoi):
    job = _run_async(
        pc,
        "health.access",
        {"worldpop": WORLDPOP, "aoi": aoi, "minutes": [5, 10], "distances_km": [1]},
    )
    assert job["status"] == "successful", job
    wards = pc.get(f"/jobs/{job['jobID']}/results").json()["features"]
    assert wards
    for f in wards:  # the raster was read: people counted, thresholds as asked
        props = f["properties"]
        assert props["population"] > 0
        assert props["pop_within_1km"] <= props["population"] + 1e-6
        assert props["pop_within_5min"] <= props["pop_within_10min"] <= props["population"] + 1e-6
    for bad in ("/etc/passwd", "../../../etc/passwd", "no/such.tif"):
        r = pc.post("/processes/health.access/execution", json={"inputs": {"worldpop": bad}})
        assert r.status_code == 400, r.text
        assert "worldpop" in r.json()["description"] and "etc" not in r.json()[
            "description"
        ].replace(bad, "")


def test_a_raster_of_the_catalog_is_an_input(pc, aoi):
    """raster:worldpop: the population grid of the platform's own raster store, no file path (the
    same result as the file itself)."""
    from gis.raster.store import RasterStore
    from ingest.raster import RasterIngestOptions, run_raster_ingest

    opts = RasterIngestOptions(collection="worldpop", sensor="worldpop", datetime="2020")
    dsn = pc.app.state.gis.dsn
    res = run_raster_ingest(dsn, [SHARED / WORLDPOP], opts, store=RasterStore(pc.data_dir / "rasters"))
    assert res.outcome in ("loaded", "unchanged")
    inputs = {"aoi": aoi, "minutes": [5], "distances_km": [1]}
    by_ref = _run_async(pc, "health.access", {**inputs, "worldpop": "raster:worldpop"})
    by_file = _run_async(pc, "health.access", {**inputs, "worldpop": WORLDPOP})
    assert by_ref["status"] == by_file["status"] == "successful", (by_ref, by_file)

    def people(job):
        fc = pc.get(f"/jobs/{job['jobID']}/results").json()
        return sorted(
            (f["properties"]["code"], round(f["properties"]["population"], 3)) for f in fc["features"]
        )

    assert people(by_ref) == people(by_file) and people(by_ref)
    r = pc.post("/processes/health.access/execution", json={"inputs": {"worldpop": "raster:none"}})
    assert r.status_code == 400 and "raster collection 'none'" in r.json()["description"]


def test_zonal_statistics_of_a_catalog_raster_per_ward(pc, aoi):
    """raster.zonal over the API: WorldPop from the raster store summed per ward, the same numbers
    as the library on the file, each row with its ward's code and geometry."""
    from gis.raster.store import RasterStore
    from gis.raster.zonal import compute_zonal
    from ingest.raster import RasterIngestOptions, run_raster_ingest

    opts = RasterIngestOptions(collection="worldpop", sensor="worldpop", datetime="2020")
    dsn = pc.app.state.gis.dsn
    res = run_raster_ingest(dsn, [SHARED / WORLDPOP], opts, store=RasterStore(pc.data_dir / "rasters"))
    assert res.outcome in ("loaded", "unchanged")
    r = pc.post("/processes/raster.zonal/execution",
                json={"inputs": {"raster": "raster:worldpop", "aoi": aoi, "percentiles": [50]}})
    assert r.status_code == 200, r.text
    fc = r.json()
    assert fc["type"] == "FeatureCollection" and fc["features"]
    props = [f["properties"] for f in fc["features"]]
    assert {"code", "name", "band", "count", "sum", "mean", "p50", "frac"} <= set(props[0])
    assert all(f["geometry"]["type"] in ("Polygon", "MultiPolygon") for f in fc["features"])
    from gis.analysis.layers import load_layer

    wards = load_layer(dsn, "wards_2025", aoi=aoi)
    ref = compute_zonal(SHARED / WORLDPOP, wards, percentiles=(50,), workers=1)
    got = {p["code"]: p["sum"] for p in props}
    want = dict(zip(wards["code"].iloc[ref["zone"]], ref["sum"], strict=True))
    assert got.keys() == want.keys()
    for code, v in want.items():
        assert got[code] == pytest.approx(v, rel=1e-9), code
    # bad input names the input
    r = pc.post("/processes/raster.zonal/execution", json={"inputs": {"raster": "raster:none"}})
    assert r.status_code == 400 and "raster collection 'none'" in r.json()["description"]
    r = pc.post("/processes/raster.zonal/execution",
                json={"inputs": {"raster": "raster:worldpop", "percentiles": [150]}})
    assert r.status_code == 400 and "percentiles" in r.json()["description"]


def test_new_built_up_area_between_two_scenes_per_ward(pc, pdb, aoi, sample_files, tmp_path):
    """raster.change over the API: the new built-up area per ward between the sample's two
    Sentinel-2-like scenes of the raster store, equal to the CLI's path (the change COG, then
    zonal_to_postgis) times the cell area."""
    import rasterio

    from gis.raster import change as ch
    from gis.raster.catalog import list_items
    from gis.raster.store import RasterStore
    from gis.raster.zonal import zonal_to_postgis
    from ingest.raster import RasterIngestOptions, run_raster_ingest

    dsn = pc.app.state.gis.dsn
    root = pc.data_dir / "rasters"
    scenes = [sample_files / "hcmc-s2-2019-01-15.tif", sample_files / "hcmc-s2-2024-01-20.tif"]
    opts = RasterIngestOptions(collection="s2-change", sensor="sentinel2")
    assert run_raster_ingest(dsn, scenes, opts, store=RasterStore(root)).outcome in ("loaded", "unchanged")
    a, b = list_items(dsn, "s2-change")[0], list_items(dsn, "s2-change")[-1]
    job = _run_async(pc, "raster.change", {"earlier": f"raster:{a.ref}", "later": f"raster:{b.ref}", "aoi": aoi})
    assert job["status"] == "successful", job
    fc = pc.get(f"/jobs/{job['jobID']}/results").json()
    got = {f["properties"]["code"]: f["properties"]["new_built_up_m2"] for f in fc["features"]}
    assert got and sum(got.values()) > 0
    tif = ch.write_change(ch.built_up_change(a.path(root), b.path(root), bands_meta_a=a.bands,
                                             bands_meta_b=b.bands), tmp_path / "change.tif")
    zonal_to_postgis(dsn, tif, "wards-2025", "test_change", bands=[ch.built_up_area_band()], percentiles=())
    with rasterio.open(tif) as ds:
        cell = abs(ds.transform.a * ds.transform.e)
    want = dict(pdb.execute("SELECT w.code, z.sum FROM stats.zonal_test_change z "
                            "JOIN admin.wards_2025 w USING (unit_id)").fetchall())
    for code, m2 in got.items():
        assert m2 == pytest.approx(want[code] * cell, rel=1e-6, abs=1e-6), code
    r = pc.post("/processes/raster.change/execution",
                json={"inputs": {"earlier": f"raster:{a.ref}", "later": "raster:s2-change/nope"}})
    assert r.status_code == 400 and "nope" in r.json()["description"]


def test_spectral_indices_of_a_scene_per_ward(pc, pdb, aoi, sample_files, tmp_path):
    """raster.indices over the API: NDVI and the built-up share per ward of a scene of the raster
    store, equal to the CLI's path (gis raster indices, then zonal_to_postgis)."""
    from gis.raster.catalog import list_items
    from gis.raster.indices import open_raster, spectral_indices, write_dataset
    from gis.raster.store import RasterStore
    from gis.raster.zonal import zonal_to_postgis
    from ingest.raster import RasterIngestOptions, run_raster_ingest

    dsn = pc.app.state.gis.dsn
    root = pc.data_dir / "rasters"
    opts = RasterIngestOptions(collection="s2-indices", sensor="sentinel2")
    scene = sample_files / "hcmc-s2-2024-01-20.tif"
    assert run_raster_ingest(dsn, [scene], opts, store=RasterStore(root)).outcome in ("loaded", "unchanged")
    [item] = list_items(dsn, "s2-indices")
    job = _run_async(pc, "raster.indices", {"raster": f"raster:{item.ref}", "indices": ["ndvi", "built_up"],
                                            "aoi": aoi})
    assert job["status"] == "successful", job
    props = [f["properties"] for f in pc.get(f"/jobs/{job['jobID']}/results").json()["features"]]
    assert {p["index"] for p in props} == {"ndvi", "built_up"}
    assert all(-1 <= p["mean"] <= 1 for p in props if p["index"] == "ndvi")
    assert all(0 <= p["mean"] <= 1 for p in props if p["index"] == "built_up")
    ds = spectral_indices(open_raster(item.path(root), 1024), indices=("ndvi", "built_up"), bands_meta=item.bands)
    tif = write_dataset(ds, tmp_path / "indices.tif")
    zonal_to_postgis(dsn, tif, "wards-2025", "test_indices", bands=[1, 2], percentiles=())
    want = {(c, b): m for c, b, m in pdb.execute(
        "SELECT w.code, z.band_name, z.mean FROM stats.zonal_test_indices z JOIN admin.wards_2025 w USING (unit_id)")}
    for p in props:
        assert p["mean"] == pytest.approx(want[(p["code"], p["index"])], rel=1e-6, abs=1e-9), p


def test_a_failing_job_keeps_the_reason_and_writes_nothing(pc, pdb, aoi):
    before = pdb.execute("SELECT count(*) FROM gis_meta.collections").fetchone()[0]
    # the 2019 wards are not loaded: the input is valid, the run fails
    job = _run_async(pc, "planning.land-use", {"source": "lots", "zones": "wards_2019", "aoi": aoi})
    assert job["status"] == "failed" and "wards_2019" in job["message"], job
    r = pc.get(f"/jobs/{job['jobID']}/results")
    assert r.status_code == 400 and "wards_2019" in r.json()["description"]
    table = f"job_{job['jobID'].replace('-', '')[:12]}"
    assert pdb.execute("SELECT to_regclass(%s)", (f"stats.{table}",)).fetchone()[0] is None
    assert pdb.execute("SELECT count(*) FROM gis_meta.collections").fetchone()[0] == before
    assert not (Path(pc.app.state.jobs.results_root) / job["jobID"]).exists()
    # the same synchronously: 400 with the reason
    r = pc.post(
        "/processes/planning.land-use/execution",
        json={"inputs": {"source": "lots", "zones": "wards_2019", "aoi": aoi}},
    )
    assert r.status_code == 400 and "wards_2019" in r.json()["description"]


BAD = [
    ("planning.land-use", {"inputs": {"colour": "red"}}, "colour"),
    ("planning.land-use", {"inputs": {"source": "rivers"}}, "source"),
    ("planning.land-use", {"inputs": {"source": 3}}, "source"),
    ("planning.land-use", {"inputs": {"aoi": {"href": "http://example.com/a.geojson"}}}, "aoi"),
    ("planning.built-density", {"inputs": {"storey_height_m": 99}}, "storey_height_m"),
    ("planning.built-density", {"inputs": {"storey_height_m": "tall"}}, "storey_height_m"),
    ("planning.built-density", {"inputs": {"storey_height_m": True}}, "storey_height_m"),
    ("planning.land-use", {"inputs": {"aoi": "106.7,10.7,106.7,10.7"}}, "aoi"),
    ("planning.land-use", {"inputs": {"aoi": "ward:99999"}}, "aoi"),
    ("planning.land-use", {"inputs": {"aoi": "somewhere nice"}}, "aoi"),
    ("planning.land-use", {"inputs": {"aoi": {"type": "Polygon", "coordinates": "x"}}}, "aoi"),
    ("logistics.service-areas", {"inputs": {"categories": ["spaceport"]}}, "categories"),
    ("logistics.service-areas", {"inputs": {"minutes": [-5]}}, "minutes"),
    ("logistics.p-median", {"inputs": {"k": 0, "worldpop": WORLDPOP}}, "k"),
    ("logistics.p-median", {"inputs": {}}, "worldpop"),
    ("planning.land-use", {"inputs": [1, 2]}, "inputs"),
    ("planning.land-use", {"inputs": {}, "response": "zip"}, "response"),
    ("planning.land-use", {"inputs": {}, "outputs": {"other": {}}}, "output"),
    (
        "planning.land-use",
        {"inputs": {}, "outputs": {"result": {"format": {"mediaType": "image/png"}}}},
        "mediaType",
    ),
    ("planning.land-use", {"inputs": {}, "colour": 1}, "colour"),
]


@pytest.mark.parametrize(("process_id", "body", "named"), BAD)
def test_bad_input_is_a_400_naming_it(pc, pdb, process_id, body, named):
    n = pdb.execute("SELECT count(*) FROM processes.jobs").fetchone()[0]
    for prefer in ("", "respond-async"):
        r = pc.post(f"/processes/{process_id}/execution", json=body, headers={"Prefer": prefer})
        assert r.status_code == 400, r.text
        assert (
            r.json()["code"] in ("InvalidParameterValue", "EmptyInput")
            and named in r.json()["description"]
        )
    assert pdb.execute("SELECT count(*) FROM processes.jobs").fetchone()[0] == n  # nothing queued


def test_bad_requests_elsewhere(pc):
    r = pc.post(
        "/processes/planning.land-use/execution",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400 and "JSON" in r.json()["description"]
    assert pc.post("/processes/nope/execution", json={}).json()["code"] == "NoSuchProcess"
    for jid in ("nope", "00000000-0000-0000-0000-000000000000", "%00", "x" * 500):
        for r in (
            pc.get(f"/jobs/{jid}"),
            pc.get(f"/jobs/{jid}/results"),
            pc.delete(f"/jobs/{jid}"),
        ):
            assert r.status_code == 404 and r.json()["code"] == "NoSuchJob", (jid, r.text)
    for params in (
        {"status": "sleeping"},
        {"limit": 0},
        {"limit": "x"},
        {"type": "magic"},
        {"datetime": "yesterday"},
        {"minDuration": -1},
        {"colour": "red"},
    ):
        r = pc.get("/jobs", params=params)
        assert r.status_code == 400 and r.json()["code"] == "InvalidParameterValue", params
    assert (
        pc.get(
            "/jobs/00000000-0000-0000-0000-000000000000/results", params={"f": "png"}
        ).status_code
        == 400
    )


def test_job_list_filters_and_pages(pc, aoi):
    ids = [
        _run_async(pc, "planning.built-density", {"zones": "lots", "aoi": aoi})["jobID"]
        for _ in range(3)
    ]
    doc = pc.get("/jobs", params={"processID": "planning.built-density", "limit": 2}).json()
    assert doc["numberMatched"] >= 3 and len(doc["jobs"]) == 2
    assert [j["jobID"] for j in doc["jobs"]] == ids[::-1][:2]  # newest first
    nxt = next(lk for lk in doc["links"] if lk["rel"] == "next")["href"].replace(
        "http://testserver", ""
    )
    second = pc.get(nxt).json()
    assert second["jobs"][0]["jobID"] == ids[0]
    assert {j["processID"] for j in second["jobs"]} == {"planning.built-density"}
    failed = pc.get("/jobs", params={"status": "failed"}).json()["jobs"]
    assert all(j["status"] == "failed" for j in failed)
    assert pc.get("/jobs", params={"type": "wps"}).json()["jobs"] == []
    assert pc.get("/jobs", params={"datetime": "2000-01-01/2000-12-31"}).json()["jobs"] == []
    recent = pc.get("/jobs", params={"datetime": "2020-01-01T00:00:00Z/..", "limit": 1000}).json()
    assert set(ids) <= {j["jobID"] for j in recent["jobs"]}
    assert pc.get("/jobs", params={"minDuration": 100000}).json()["jobs"] == []
    html = pc.get("/jobs", params={"f": "html"})
    assert html.status_code == 200 and ids[-1][:8] in html.text


# --- a real server: two worker processes, a restart, OWSLib ---------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server:
    def __init__(self, dsn: str, data: Path, workers: int, job_workers: int) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(
            DATABASE_URL=dsn,
            GIS_DATA_DIR=str(data),
            GIS_PROCESSES_WORKERS=str(job_workers),
            GIS_PROCESSES_INPUT_DIRS=f'["{SHARED}"]',
            GIS_API_CATALOG_POLL_SECONDS="0.5",
        )
        self.log = data / f"serve-{self.port}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [
                    GIS,
                    "serve",
                    "--port",
                    str(self.port),
                    "--workers",
                    str(workers),
                    "--no-access-log",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        try:
            _wait(self._up, timeout=90, step=0.2)
        except AssertionError:
            self.kill()
            pytest.fail(f"gis serve did not start: {self.log.read_text()[-2000:]}")

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(self.log.read_text()[-2000:])
        try:
            return httpx.get(self.base + "/processes", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """SIGKILL the server and its workers (its own process group): no clean shutdown."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        assert "unhandled error" not in self.log.read_text(), self.log.read_text()[-3000:]


def test_two_workers_share_the_job_status_and_a_restart_fails_interrupted_jobs(
    proc_dsn, aoi, tmp_path
):
    server = _Server(proc_dsn, tmp_path, workers=2, job_workers=1)
    try:
        with httpx.Client(base_url=server.base, timeout=60) as http:
            # an asynchronous job, polled through both workers: every answer comes from the database
            r = http.post(
                "/processes/planning.land-use/execution",
                json={"inputs": {"source": "lots", "aoi": aoi}},
                headers={"Prefer": "respond-async"},
            )
            assert r.status_code == 201
            loc = r.headers["location"]
            seen = []
            done = _wait(
                lambda: seen.append(d := http.get(loc).json()["status"]) or d == "successful"
            )
            assert done and set(seen) <= {"accepted", "running", "successful"}
            assert all(http.get(loc).json()["status"] == "successful" for _ in range(10))
            assert http.get(loc + "/results").json()["type"] == "FeatureCollection"
            # one job worker per process: a long job runs, three more wait; then the server dies
            first = http.post(
                "/processes/health.access/execution",
                json={"inputs": {"worldpop": WORLDPOP, "minutes": [10, 20, 30, 45, 60, 90]}},
            ).json()["jobID"]
            queued = [
                http.post(
                    "/processes/planning.built-density/execution",
                    json={"inputs": {"zones": "lots", "aoi": aoi}},
                    headers={"Prefer": "respond-async"},
                ).json()["jobID"]
                for _ in range(3)
            ]
            _wait(lambda: http.get(f"/jobs/{first}").json()["status"] == "running", step=0.02)
        server.kill()
        with psycopg.connect(proc_dsn) as conn:
            status = dict(
                conn.execute(
                    "SELECT job_id::text, status FROM processes.jobs WHERE job_id = ANY(%s)",
                    ([first, *queued],),
                ).fetchall()
            )
        assert status[first] == "running"  # as the dead server left it
    finally:
        server.kill()
    server = _Server(proc_dsn, tmp_path, workers=1, job_workers=2)
    try:
        with httpx.Client(base_url=server.base, timeout=60) as http:
            job = http.get(f"/jobs/{first}").json()
            assert job["status"] == "failed" and job["message"].startswith("Interrupted"), job
            assert http.get(f"/jobs/{first}/results").status_code == 500
            table = f"job_{first.replace('-', '')[:12]}"
            with psycopg.connect(proc_dsn) as conn:
                assert (
                    conn.execute("SELECT to_regclass(%s)", (f"stats.{table}",)).fetchone()[0]
                    is None
                )
            # the jobs that were waiting are run by the new server
            for jid in queued:
                assert _wait(
                    lambda jid=jid: (
                        http.get(f"/jobs/{jid}").json()["status"] in ("successful", "failed")
                    )
                )
                assert http.get(f"/jobs/{jid}").json()["status"] == "successful"
            # OWSLib's OGC API - Processes client against the same server
            from owslib.ogcapi.processes import Processes

            api = Processes(server.base)
            assert [p["id"] for p in api.processes()] == [a.id for a in ANALYSES]
            assert api.process("planning.land-use")["inputs"]["source"]["schema"]["enum"] == [
                "parcels",
                "lots",
            ]
            out = api.execute("planning.land-use", {"source": "lots", "aoi": aoi})
            assert out["result"]["type"] == "FeatureCollection" and out["result"]["features"]
            status = api.execute(
                "planning.land-use", {"source": "parcels", "aoi": aoi}, async_=True
            )
            assert status["status"] in ("accepted", "running", "successful")
            assert api.response_headers["Location"].endswith(f"/jobs/{status['jobID']}")
            job = _wait(
                lambda: (
                    (d := api._request(path=f"jobs/{status['jobID']}"))["status"] == "successful"
                    and d
                )
            )
            assert job["progress"] == 100
            with pytest.raises(RuntimeError, match="source"):
                api.execute("planning.land-use", {"source": "rivers"})
    finally:
        server.stop()
