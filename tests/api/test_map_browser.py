"""The web map in a real browser: headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core
(npm, tests/browser) over a real `gis serve`: no console errors, tiles arrive, the layers are drawn
(screenshots kept under the test's tmp folder), a click on a parcel opens a popup with that parcel's
public attributes as the database has them, and the language switch works."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from api_helpers import GisServer

from gis.raster.store import RasterStore
from ingest.raster import RasterIngestOptions, run_raster_ingest

BROWSER = Path(__file__).resolve().parents[1] / "browser"
WORLDPOP = "geoglue-kraemer/worldpop/hcmc_clip_vnm_ppp_2020_1km_UNadj.tif"


@pytest.fixture(scope="module")
def map_server(sample_dsn, shared_data, tmp_path_factory):
    data = tmp_path_factory.mktemp("map_data")
    store = data / "rasters"
    res = run_raster_ingest(sample_dsn, [shared_data / WORLDPOP],
                            RasterIngestOptions(collection="worldpop", sensor="worldpop", datetime="2020"),
                            store=RasterStore(store))
    assert res.outcome in ("loaded", "unchanged")
    env = {"DATABASE_URL": sample_dsn, "GIS_DATA_DIR": str(data), "GIS_RASTER_STORE": str(store)}
    with GisServer(env, data / "serve.log", ("--no-access-log",)) as server:
        yield server.base, server.log


def test_map_in_headless_chromium(map_server, db, tmp_path):
    base, log = map_server
    node = shutil.which("node")
    assert node, "node is missing: run ./dev setup"
    assert (BROWSER / "node_modules" / "playwright-core").exists(), "run `npm ci` in tests/browser (./dev setup)"
    assert Path(os.environ.get("CHROMIUM", "/usr/bin/chromium")).exists(), "chromium is missing: run ./dev setup"
    # a parcel well inside the sample, big enough to hit at zoom 19; a point of it off any POI symbol
    pid, lon, lat = db.execute(
        "SELECT parcel_id, ST_X(pt), ST_Y(pt) FROM (SELECT p.parcel_id, ST_PointOnSurface(ST_Difference(p.geom, "
        "coalesce((SELECT ST_Union(ST_Buffer(q.geom, 0.00003)) FROM city.poi q WHERE ST_DWithin(q.geom, p.geom, "
        "0.0001)), ST_GeomFromText('POLYGON EMPTY', 4326)))) AS pt, ST_Area(p.geom) AS a FROM cadastral.parcels_current p) s "
        "ORDER BY a DESC, parcel_id LIMIT 1 OFFSET 3").fetchone()
    out = Path(os.environ.get("GIS_TEST_SCREENSHOTS", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    run = subprocess.run([node, str(BROWSER / "map_check.mjs"), base, repr(lon), repr(lat), "19", str(out)],
                         capture_output=True, text=True, timeout=240, cwd=BROWSER)
    assert run.returncode == 0, run.stderr[-3000:] + log.read_text()[-2000:]
    res = json.loads(run.stdout.strip().splitlines()[-1])
    assert res["console"] == [] and res["pageErrors"] == [] and res["mapErrors"] == [], res
    assert res["failed"] == [] and res["badTiles"] == [], res
    assert res["tiles"].get("parcels", {}).get("200", 0) >= 1, res["tiles"]
    assert res["tiles"].get("population", {}).get("200", 0) >= 1, res["tiles"]
    assert res["rendered"].get("parcels-fill", 0) > 0 and res["rendered"].get("buildings-fill", 0) > 0, res["rendered"]
    assert {"parcels", "population", "roads"} <= set(res["layerList"])
    assert "parcels" in res["legend"]
    for name in ("map.png", "popup.png", "map_vi.png"):
        assert (out / name).stat().st_size > 10_000

    # the popup shows that parcel's public attributes, as the database has them
    popup = res["popup"]
    assert popup["layer"] == "parcels" and int(popup["fid"]) == pid, popup
    row = db.execute("SELECT commune_code, sheet_no, parcel_no, land_use, legal_area_m2, address, owner_type "
                     "FROM cadastral.parcels_current WHERE parcel_id = %s", (pid,)).fetchone()
    want = dict(zip(("commune_code", "sheet_no", "parcel_no", "land_use", "legal_area_m2", "address", "owner_type"),
                    row))
    rows = popup["rows"]
    for name in ("commune_code", "sheet_no", "parcel_no", "land_use", "address", "owner_type"):
        if want[name] is not None:
            assert rows[name].split(" ")[0] == str(want[name]) if name != "address" else rows[name] == want[name]
    assert float(rows["legal_area_m2"].split(" ")[0]) == pytest.approx(float(want["legal_area_m2"]))
    owners = db.execute("SELECT count(*) FROM private.parcel_owners").fetchone()[0]
    assert owners > 0
    names = {r[0] for r in db.execute("SELECT owner_name FROM private.parcel_owners").fetchall() if r[0]}
    assert not any(n in json.dumps(popup, ensure_ascii=False) for n in names)  # never an owner's name

    assert res["vi"]["lang"] == "vi" and res["vi"]["heading"] == "Lớp dữ liệu"


def test_folium_map_uses_the_same_tiles(map_server, db):
    """gis.maps.folium_map puts catalog layers on a folium map through the API's tiles."""
    from gis.maps import folium_map

    base, _ = map_server
    m = folium_map(["parcels", "population"], base)
    html = m.get_root().render()
    assert f"{base}/xyz/parcels/{{z}}/{{x}}/{{y}}.mvt" in html
    assert f"{base}/xyz/population/{{z}}/{{x}}/{{y}}.png" in html
    # the URLs the map will ask for answer with tiles
    lon, lat = db.execute("SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) "
                          "FROM cadastral.parcels_current LIMIT 1").fetchone()
    import morecantile

    t = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, 16)
    r = httpx.get(f"{base}/xyz/parcels/16/{t.x}/{t.y}.mvt", timeout=30)
    assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    t = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, 10)
    assert httpx.get(f"{base}/xyz/population/10/{t.x}/{t.y}.png", timeout=30).headers["content-type"] == "image/png"
    with pytest.raises(Exception, match="no tiles of a layer 'nope'"):
        folium_map(["nope"], base)
