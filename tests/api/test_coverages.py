"""OGC API - Coverages of the raster collections (TestClient on the real app, a real database and
real COGs written by the raster ingest job): collection documents, subsets, scaling, bands, time,
GeoTIFF and CoverageJSON, domain set and range type, bad input, damaged files, and zonal
statistics published as feature collections.

Every pixel a response carries is compared with the COG (or the source file) read directly with
rasterio: the oracle is the file, not a hard-coded number.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import psycopg
import pytest
import rasterio
from covjson_pydantic.coverage import Coverage as CovJSON
from fastapi.testclient import TestClient
from rasterio.io import MemoryFile
from rasterio.windows import from_bounds

from api.app import create_app
from api.settings import ApiSettings
from gis.raster.store import RasterStore
from gis.settings import Settings
from ingest.raster import RasterIngestOptions, run_raster_ingest

POP = "geoglue-kraemer/worldpop/hcmc_clip_vnm_ppp_{}_1km_UNadj.tif"
ERA5 = "geoglue-kraemer/era5/VNM-2020-era5.daily_sum.nc"


def ingest_rasters(dsn: str, store: RasterStore, shared_data, scenes_dir) -> dict:
    """The rasters of these tests, through the real ingest job: two synthetic Sentinel-2 scenes,
    WorldPop 2000 and 2020 (HCMC clips), ERA5 daily rainfall 2020 (366 time-step bands), and a
    raster collection whose id ('buildings') is a feature collection's too."""
    from gis.raster.synthetic import generate_pair

    scenes = generate_pair(scenes_dir, seed=7, resolution=20.0, size_m=6000.0, growth_patches=6)
    jobs = [
        (
            [scenes.before, scenes.after],
            RasterIngestOptions(collection="s2-synthetic", sensor="sentinel2"),
        ),
        (
            [shared_data / POP.format(2000)],
            RasterIngestOptions(collection="worldpop", datetime="2000", sensor="worldpop"),
        ),
        (
            [shared_data / POP.format(2020)],
            RasterIngestOptions(collection="worldpop", datetime="2020", sensor="worldpop"),
        ),
        ([shared_data / ERA5], RasterIngestOptions(collection="era5")),
        (
            [shared_data / POP.format(2020)],
            RasterIngestOptions(collection="buildings", datetime="2020", sensor="worldpop"),
        ),
    ]
    for paths, opts in jobs:
        res = run_raster_ingest(dsn, paths, opts, store=store)
        assert res.outcome == "loaded", res.summary()
    return {"scenes": scenes}


def cog(db, store: RasterStore, collection: str, like: str = "%"):
    """The path of a catalogued COG."""
    href = db.execute(
        "SELECT asset_href FROM raster.items WHERE collection = %s AND id LIKE %s "
        "ORDER BY dt_start DESC LIMIT 1",
        (collection, like),
    ).fetchone()[0]
    return store.path(href)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> RasterStore:
    return RasterStore(tmp_path_factory.mktemp("cov_rasters"))


@pytest.fixture(scope="module")
def loaded(module_dsn, store, shared_data, tmp_path_factory):
    return ingest_rasters(module_dsn, store, shared_data, tmp_path_factory.mktemp("cov_s2"))


@pytest.fixture(scope="module")
def db(module_dsn, loaded):
    with psycopg.connect(module_dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def client(module_dsn, loaded, store, tmp_path_factory):
    settings = Settings(
        database_url=module_dsn,
        data_dir=tmp_path_factory.mktemp("cov_data"),
        raster_store=store.root,
    )
    with TestClient(create_app(settings, ApiSettings()), raise_server_exceptions=False) as c:
        yield c


def tif(resp):
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("image/tiff")
    mem = MemoryFile(resp.content)
    return mem.open()


def err(resp, status: int = 400, *words: str) -> str:
    assert resp.status_code == status, (resp.status_code, resp.text[:500])
    body = resp.json()
    assert set(body) == {"code", "description"}
    for w in words:
        assert w in body["description"], body["description"]
    return body["description"]


# ---------------------------------------------------------------------------------------------
# collection documents
# ---------------------------------------------------------------------------------------------


def test_raster_collections_in_the_catalog_root(client, db):
    docs = {c["id"]: c for c in client.get("/collections").json()["collections"]}
    # a feature collection keeps its id; the raster collection of the same id is prefixed
    assert docs["buildings"]["itemType"] == "feature"
    for cid in ("s2-synthetic", "worldpop", "era5", "raster-buildings"):
        assert cid in docs, sorted(docs)
    wp = client.get("/collections/worldpop").json()
    # the collection's own document adds its range type (bands) to the one of the list
    assert wp.pop("rangeType")["field"][0]["name"] == wp["x-raster"]["bands"][0]
    assert wp == docs["worldpop"]
    rels = {link["rel"]: link for link in wp["links"]}
    assert {
        "http://www.opengis.net/def/rel/ogc/1.0/coverage",
        "http://www.opengis.net/def/rel/ogc/1.0/coverage-domainset",
        "http://www.opengis.net/def/rel/ogc/1.0/coverage-rangetype",
        "http://www.opengis.net/def/rel/ogc/1.0/tilesets-map",
    } <= set(rels)
    # the map tiles of the raster layer 'population' (gis_meta.raster_layers -> worldpop)
    assert rels["http://www.opengis.net/def/rel/ogc/1.0/tilesets-map"]["href"].endswith(
        "/collections/population/map/tiles"
    )
    stac = [link for link in wp["links"] if link["href"].endswith("/stac/collections/worldpop")]
    assert stac and client.get(stac[0]["href"]).json()["id"] == "worldpop"
    # extent: the items' footprints and times, as the catalog says
    box, _t0, t1 = db.execute(
        "SELECT ARRAY[ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)], lo, hi FROM "
        "(SELECT ST_Extent(geom) e, min(dt_start) lo, max(dt_end) hi FROM raster.items "
        "WHERE collection = 'worldpop') x"
    ).fetchone()
    assert wp["extent"]["spatial"]["bbox"][0] == pytest.approx(box)
    assert wp["extent"]["temporal"]["interval"][0][0].startswith("2000-01-01")
    assert wp["extent"]["temporal"]["interval"][0][1].startswith(str(t1.year))
    assert wp["storageCrs"] == "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
    s2 = docs["s2-synthetic"]
    assert s2["storageCrs"] == "http://www.opengis.net/def/crs/EPSG/0/32648"
    assert s2["x-raster"]["bands"] == ["B02", "B03", "B04", "B08", "B11"]
    rb = client.get("/collections/raster-buildings").json()
    assert rb["id"] == "raster-buildings"
    assert any(link["href"].endswith("/stac/collections/buildings") for link in rb["links"])
    # the HTML page of a coverage collection renders
    assert client.get("/collections/worldpop?f=html").status_code == 200
    # and the conformance declares Coverages
    conf = client.get("/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-coverages-1/1.0/conf/core" in conf


def test_domainset_and_rangetype(client, db, store):
    ds = client.get("/collections/s2-synthetic/coverage/domainset").json()
    g = ds["generalGrid"]
    assert g["srsName"].endswith("/EPSG/0/32648") and g["axisLabels"] == ["E", "N", "time"]
    with rasterio.open(cog(db, store, "s2-synthetic")) as src:
        assert g["axis"][0]["lowerBound"] == pytest.approx(src.bounds.left)
        assert g["axis"][1]["upperBound"] == pytest.approx(src.bounds.top)
        assert g["axis"][0]["resolution"] == pytest.approx(src.res[0])
        assert g["gridLimits"]["axis"][0]["upperBound"] == src.width - 1
    times = db.execute(
        "SELECT count(DISTINCT dt_start) FROM raster.items WHERE collection = 's2-synthetic'"
    ).fetchone()[0]
    assert len(g["axis"][2]["coordinate"]) == times == 2
    rt = client.get("/collections/s2-synthetic/coverage/rangetype").json()
    assert [f["name"] for f in rt["field"]] == ["B02", "B03", "B04", "B08", "B11"]
    assert rt["field"][2]["definition"] == "red" and rt["field"][2]["nilValues"][0]["value"] == 0
    wp = client.get("/collections/worldpop/coverage/domainset").json()["generalGrid"]
    assert wp["axisLabels"][:2] == ["Lon", "Lat"]


def test_coverage_collection_html_page(client, db):
    from test_stac import BROWSER, html_page

    doc = client.get("/collections/worldpop").json()
    page = html_page(client.get("/collections/worldpop", headers={"Accept": BROWSER}))
    assert doc["title"] in page.text
    assert json.loads(page.scripts["extent"]) == doc["extent"]["spatial"]["bbox"][0]
    # the bands (the range type, also in the JSON document)
    assert [f["name"] for f in doc["rangeType"]["field"]] == doc["x-raster"]["bands"]
    for f in doc["rangeType"]["field"]:
        assert f["name"] in page.text
    # every link of the coverage block answers
    for href in page.links:
        if "/coverage" in href or "/stac/" in href:
            r = client.get(href)
            assert r.status_code == 200, (href, r.text[:200])
    assert any(h.endswith("/coverage?f=GeoTIFF") for h in page.links)
    # the preview: map tiles of the raster layer 'population', real PNGs that hold data
    rows = doc["x-raster"]["preview"]["rows"]
    assert 1 <= len(rows) <= 2 and page.imgs == [src for row in rows for src in row]
    painted = 0
    for src in page.imgs:
        r = client.get(src)
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        with MemoryFile(r.content) as mem, mem.open() as png:
            painted += int((png.read(png.count) > 0).any())
    assert painted >= 1
    # a coverage without map layer: no preview, its bands
    s2 = html_page(client.get("/collections/s2-synthetic?f=html&lang=vi"))
    assert not s2.imgs and all(b in s2.text for b in ("B02", "B08", "B11"))


# ---------------------------------------------------------------------------------------------
# Output CRS (crs, subset-crs)
# ---------------------------------------------------------------------------------------------

EPSG = "http://www.opengis.net/def/crs/EPSG/0/{}"


def warp_oracle(out, src_path, out_band: int = 1, src_band: int = 1):
    """Check each cell of a reprojected output against the source cell under its centre, found
    with gis.crs (the official VN-2000 transformation). Cells within 1/100 of a cell of a source
    cell's edge are ties and skipped. Returns (inside, clear) masks of the output cells."""
    from pyproj import CRS

    from gis.crs import make_transformer

    with rasterio.open(src_path) as src:
        data = src.read(src_band)
        rows, cols = np.mgrid[0 : out.height, 0 : out.width]
        xs, ys = out.transform * (cols + 0.5, rows + 0.5)
        tr = make_transformer(CRS.from_wkt(out.crs.to_wkt()), CRS.from_wkt(src.crs.to_wkt()))
        sx, sy = tr.transform_xy(xs, ys)
        fc, fr = ~src.transform * (sx, sy)
        inside = (fc >= 0) & (fc < src.width) & (fr >= 0) & (fr < src.height)
        frac_c, frac_r = fc - np.floor(fc), fr - np.floor(fr)
        clear = inside & (np.minimum(frac_c, 1 - frac_c) > 0.01)
        clear &= np.minimum(frac_r, 1 - frac_r) > 0.01
        got = out.read(out_band, masked=True)
        expect = data[fr[clear].astype(int), fc[clear].astype(int)]
        np.testing.assert_array_equal(got.data[clear], expect)
        # cells outside the source are no data
        outside = ~inside
        if outside.any():
            assert np.ma.getmaskarray(got)[outside].all()
        return inside, clear


def test_collection_lists_its_output_crss(client):
    from gis.query import SUPPORTED_CRS

    doc = client.get("/collections/s2-synthetic").json()
    assert doc["crs"][0] == doc["storageCrs"] == EPSG.format(32648)
    assert set(SUPPORTED_CRS) <= set(doc["crs"])
    conf = client.get("/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-coverages-1/1.0/conf/crs" in conf


def test_crs_warps_with_the_official_vn2000_transformation(client, db, store):
    # a UTM 48N scene to the HCMC cadastral grid (VN-2000 / TM-3 105-45)
    path = cog(db, store, "s2-synthetic")
    r = client.get(
        "/collections/s2-synthetic/coverage", params={"crs": "[EPSG:9210]", "properties": "B04"}
    )
    assert r.headers["content-crs"] == f"<{EPSG.format(9210)}>"
    with tif(r) as out, rasterio.open(path) as src:
        assert out.crs.to_epsg() == 9210 and out.nodata == src.nodata
        # about as many cells as the source (GDAL's suggested warp grid)
        assert abs(out.width * out.height / (src.width * src.height) - 1) < 0.1
        inside, clear = warp_oracle(out, path, 1, 3)
        assert clear.sum() > 0.9 * inside.sum() > 0
    # WorldPop (lon/lat grid) to VN-2000, an area given in Lat/Lon
    r = client.get(
        "/collections/worldpop/coverage",
        params={"subset": "Lat(10.6:10.9),Lon(106.5:106.8)", "crs": EPSG.format(9210)},
    )
    path = cog(db, store, "worldpop")
    with tif(r) as out:
        assert out.crs.to_epsg() == 9210
        inside, clear = warp_oracle(out, path)
        assert clear.sum() > 0.9 * inside.sum() > 0


def test_crs_and_bbox_in_the_same_crs_give_that_box(client, db, store):
    from gis.crs import make_transformer

    x0, y0, x1, y1 = make_transformer("OGC:CRS84", "EPSG:3857").transform_bounds(
        (106.62, 10.72, 106.78, 10.86)
    )
    params = {
        "bbox": f"{x0},{y0},{x1},{y1}",
        "bbox-crs": EPSG.format(3857),
        "crs": EPSG.format(3857),
    }
    r = client.get("/collections/worldpop/coverage", params=params)
    path = cog(db, store, "worldpop")
    with tif(r) as out:
        assert out.crs.to_epsg() == 3857
        assert out.bounds == pytest.approx((x0, y0, x1, y1))
        inside, clear = warp_oracle(out, path)
        assert inside.all() and clear.sum() > 0.9 * inside.size
        w, h = out.width, out.height
    # scaling applies to the warped grid; CoverageJSON is in the same CRS
    r = client.get("/collections/worldpop/coverage", params={**params, "scale-size": "Lon(7)"})
    with tif(r) as out:
        assert out.width == 7 and out.height == round(h * 7 / w)
        assert out.bounds == pytest.approx((x0, y0, x1, y1))
    cj = client.get("/collections/worldpop/coverage", params={**params, "f": "covjson"}).json()
    ref = cj["domain"]["referencing"][0]
    assert ref["system"]["id"] == EPSG.format(3857) and ref["coordinates"] == ["x", "y"]
    assert cj["domain"]["axes"]["x"]["num"] == w


def test_subset_crs_is_the_crs_of_the_subset_axes(client, db, store):
    from gis.crs import make_transformer

    path = cog(db, store, "s2-synthetic")
    with rasterio.open(path) as src:
        b = src.bounds
    box = make_transformer("EPSG:32648", "EPSG:9210").transform_bounds(
        (b.left + 1000, b.bottom + 1000, b.left + 3000, b.bottom + 2500)
    )
    x0, y0, x1, y1 = (round(v) for v in box)
    common = {"crs": "EPSG:9210", "properties": "B08"}
    r = client.get(
        "/collections/s2-synthetic/coverage",
        params={**common, "subset": f"E({x0}:{x1}),N({y0}:{y1})", "subset-crs": "[EPSG:9210]"},
    )
    with tif(r) as out:
        assert out.bounds == pytest.approx((x0, y0, x1, y1))
        warp_oracle(out, path, 1, 4)
        by_subset = out.read()
    r = client.get(
        "/collections/s2-synthetic/coverage",
        params={**common, "bbox": f"{x0},{y0},{x1},{y1}", "bbox-crs": EPSG.format(9210)},
    )
    with tif(r) as out:
        np.testing.assert_array_equal(out.read(), by_subset)
    # a geographic subset-crs takes Lat/Lon (EPSG:4326 or CRS84: the labels say which is which)
    r4326 = client.get(
        "/collections/worldpop/coverage",
        params={"subset": "Lat(10.7:10.8),Lon(106.6:106.7)", "subset-crs": "EPSG:4326"},
    )
    r84 = client.get(
        "/collections/worldpop/coverage", params={"subset": "Lat(10.7:10.8),Lon(106.6:106.7)"}
    )
    with tif(r4326) as a, tif(r84) as b:
        assert a.bounds == b.bounds
        np.testing.assert_array_equal(a.read(), b.read())


def test_crs_of_the_native_grid_reads_no_warp(client):
    base = client.get("/collections/worldpop/coverage", params={"subset": "Lat(10.7:10.8)"})
    for crs, header, coords in [
        ("EPSG:4326", EPSG.format(4326), ["y", "x"]),
        ("OGC:CRS84", "http://www.opengis.net/def/crs/OGC/1.3/CRS84", ["x", "y"]),
    ]:
        r = client.get(
            "/collections/worldpop/coverage", params={"subset": "Lat(10.7:10.8)", "crs": crs}
        )
        assert r.headers["content-crs"] == f"<{header}>"
        with tif(r) as out, tif(base) as ref:
            assert out.transform == ref.transform
            np.testing.assert_array_equal(out.read(), ref.read())
        cj = client.get(
            "/collections/worldpop/coverage",
            params={"subset": "Lat(10.7:10.8)", "crs": crs, "f": "covjson"},
        ).json()
        assert cj["domain"]["referencing"][0]["coordinates"] == coords


# ---------------------------------------------------------------------------------------------
# GeoTIFF: subsets, bands, time, scaling
# ---------------------------------------------------------------------------------------------


def test_lat_lon_subset_equals_the_source_pixels(client, shared_data):
    r = client.get(
        "/collections/worldpop/coverage",
        params={"subset": "Lat(10.70:10.85),Lon(106.60:106.75)", "f": "GeoTIFF"},
    )
    assert r.headers["content-crs"] == "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"
    with tif(r) as out, rasterio.open(shared_data / POP.format(2020)) as src:
        assert out.crs.to_epsg() == 4326 and out.nodata == src.nodata
        assert out.res == pytest.approx(src.res)
        # the output grid is the source grid, snapped outwards around the box
        assert out.bounds.left <= 106.60 < out.bounds.left + src.res[0]
        assert out.bounds.top >= 10.85 > out.bounds.top - src.res[1]
        win = from_bounds(*out.bounds, transform=src.transform).round_offsets().round_lengths()
        np.testing.assert_array_equal(out.read(1), src.read(1, window=win))
        assert out.descriptions == ("population",) or out.descriptions[0]
        assert out.tags()["DATETIME"].startswith("2020-01-01")


def test_datetime_and_time_subset_choose_the_item(client, shared_data):
    box = {"subset": "Lat(10.7:10.8),Lon(106.6:106.7)"}
    with (
        rasterio.open(shared_data / POP.format(2000)) as s00,
        rasterio.open(shared_data / POP.format(2020)) as s20,
    ):
        for params, src in [
            ({"datetime": "2000"}, s00),
            ({"datetime": "2000-06-01"}, s00),
            ({"datetime": "2019-01-01/.."}, s20),
            ({}, s20),
        ]:
            with tif(client.get("/collections/worldpop/coverage", params={**box, **params})) as out:
                win = (
                    from_bounds(*out.bounds, transform=src.transform)
                    .round_offsets()
                    .round_lengths()
                )
                np.testing.assert_array_equal(out.read(1), src.read(1, window=win))
        # the time as a subset axis (repeated subset parameters)
        r = client.get(
            "/collections/worldpop/coverage?subset=Lat(10.7:10.8)&subset=Lon(106.6:106.7)"
            '&subset=time("2000-01-01":"2000-12-31")'
        )
        with tif(r) as out:
            win = from_bounds(*out.bounds, transform=s00.transform).round_offsets().round_lengths()
            np.testing.assert_array_equal(out.read(1), s00.read(1, window=win))


def test_en_subset_bbox_crs_and_bands(client, db, store):
    path = cog(db, store, "s2-synthetic")  # the latest scene, the coverage's default
    with rasterio.open(path) as src:
        b = src.bounds
        x0, y0 = b.left + 1000, b.bottom + 1500
        x1, y1 = x0 + 2000, y0 + 1000
        r = client.get(
            "/collections/s2-synthetic/coverage",
            params={"subset": f"E({x0}:{x1}),N({y0}:{y1})", "properties": "red,B08"},
        )
        with tif(r) as out:
            assert out.crs.to_epsg() == 32648 and out.count == 2
            assert out.descriptions == ("B04", "B08") and out.nodata == 0
            assert out.scales[0] == pytest.approx(1e-4)
            assert (out.width, out.height) == (100, 50)  # 2000 m x 1000 m at 20 m
            assert out.bounds == pytest.approx((x0, y0, x1, y1))
            win = (
                from_bounds(x0, y0, x1, y1, transform=src.transform).round_offsets().round_lengths()
            )
            np.testing.assert_array_equal(out.read(), src.read([3, 4], window=win))
            via_en = out.read()
        # the same area as bbox in EPSG:32648, and with band numbers
        r2 = client.get(
            "/collections/s2-synthetic/coverage",
            params={
                "bbox": f"{x0},{y0},{x1},{y1}",
                "properties": "3,4",
                "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/32648",
            },
        )
        with tif(r2) as out2:
            np.testing.assert_array_equal(out2.read(), via_en)
    # the older scene by its date
    older = cog(db, store, "s2-synthetic", "%2019%")
    r3 = client.get(
        "/collections/s2-synthetic/coverage",
        params={
            "subset": f"E({x0}:{x1}),N({y0}:{y1})",
            "datetime": "2019-01-15",
            "properties": "swir16",
        },
    )
    with tif(r3) as out3, rasterio.open(older) as src:
        assert out3.count == 1 and out3.descriptions == ("B11",)
        assert out3.tags()["DATETIME"].startswith("2019-01-15")
        win = from_bounds(x0, y0, x1, y1, transform=src.transform).round_offsets().round_lengths()
        np.testing.assert_array_equal(out3.read(1), src.read(5, window=win))


def test_scaling_keeps_the_extent_and_bounds_the_size(client, db, store):
    full = client.get("/collections/s2-synthetic/coverage", params={"properties": "B04"})
    with tif(full) as f:
        w, h, bounds = f.width, f.height, f.bounds
    with tif(
        client.get(
            "/collections/s2-synthetic/coverage", params={"properties": "B04", "scale-factor": "2"}
        )
    ) as half:
        assert (half.width, half.height) == (round(w / 2), round(h / 2))
        assert half.bounds == pytest.approx(bounds)
        assert half.res == pytest.approx((40.0, 40.0))
    with tif(
        client.get(
            "/collections/s2-synthetic/coverage",
            params={"properties": "B04", "scale-size": "E(60),N(30)"},
        )
    ) as s:
        assert (s.width, s.height) == (60, 30)
    with tif(
        client.get(
            "/collections/s2-synthetic/coverage", params={"properties": "B04", "width": "75"}
        )
    ) as s:
        assert (s.width, s.height) == (75, round(h * 75 / w))
    with tif(
        client.get(
            "/collections/s2-synthetic/coverage",
            params={"properties": "B04", "scale-axes": "E(3),N(1)"},
        )
    ) as s:
        assert (s.width, s.height) == (round(w / 3), h)
    # nearest neighbour: the downsampled values are source values
    with (
        tif(
            client.get(
                "/collections/s2-synthetic/coverage",
                params={"properties": "B04", "scale-factor": "3"},
            )
        ) as s,
        rasterio.open(cog(db, store, "s2-synthetic")) as src,
    ):
        assert set(np.unique(s.read(1))) <= set(np.unique(src.read(3)))


def test_time_step_bands_follow_the_datetime(client, db, store):
    with tif(client.get("/collections/era5/coverage", params={"datetime": "2020-03-01"})) as one:
        assert one.count == 1 and one.descriptions == ("tp_20200301",)
        with rasterio.open(cog(db, store, "era5")) as src:
            k = list(src.descriptions).index("tp_20200301") + 1
            np.testing.assert_array_equal(one.read(1), src.read(k))
    with tif(
        client.get(
            "/collections/era5/coverage",
            params={"datetime": "2020-03", "subset": "Lat(9:12),Lon(105:108)"},
        )
    ) as month:
        assert month.count == 31 and month.descriptions[0] == "tp_20200301"
        assert month.width == 13 and month.height == 13  # 3 degrees at 0.25, snapped outwards


# ---------------------------------------------------------------------------------------------
# CoverageJSON
# ---------------------------------------------------------------------------------------------


def test_coveragejson_is_valid_and_holds_physical_values(client, db, store):
    path = cog(db, store, "s2-synthetic")
    with rasterio.open(path) as src:
        b = src.bounds
        x0, y0 = b.left, b.top - 400
        x1, y1 = b.left + 600, b.top
        r = client.get(
            "/collections/s2-synthetic/coverage",
            params={
                "subset": f"E({x0}:{x1}),N({y0}:{y1})",
                "properties": "B04,B08",
                "f": "covjson",
            },
        )
        assert r.status_code == 200 and r.headers["content-type"] == "application/prs.coverage+json"
        cj = CovJSON.model_validate_json(r.content)  # the CoverageJSON schema, as pydantic models
        doc = r.json()
        assert cj.domain.domainType == "Grid"
        assert doc["domain"]["axes"]["x"]["num"] == 30 and doc["domain"]["axes"]["y"]["num"] == 20
        assert doc["domain"]["axes"]["t"]["values"][0].startswith("2024-01-20")
        assert doc["domain"]["referencing"][0]["system"]["id"].endswith("/EPSG/0/32648")
        win = from_bounds(x0, y0, x1, y1, transform=src.transform).round_offsets().round_lengths()
        raw = src.read(3, window=win).astype("float64")
        expect = [None if v == 0 else v * 1e-4 for v in raw.ravel().tolist()]
        got = doc["ranges"]["B04"]["values"]
        assert len(got) == len(expect) == 600
        assert all((g is None and e is None) or g == pytest.approx(e) for g, e in zip(got, expect))
        assert doc["parameters"]["B04"]["observedProperty"]["label"]["en"] == "red"
    # nodata cells are null: WorldPop's -99999 over the sea
    wp = client.get("/collections/worldpop/coverage", params={"f": "json"}).json()
    vals = (
        wp["ranges"]["population"]["values"]
        if "population" in wp["ranges"]
        else next(iter(wp["ranges"].values()))["values"]
    )
    with rasterio.open(cog(db, store, "worldpop")) as src:
        a = src.read(1)
    assert sum(v is None for v in vals) == int((a == src.nodata).sum()) > 0
    assert sum(v for v in vals if v is not None) == pytest.approx(
        float(a[a != src.nodata].sum()), rel=1e-6
    )


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "status", "words"),
    [
        ("/collections/nothing/coverage", {}, 404, ("nothing",)),
        ("/collections/buildings/coverage", {}, 404, ("buildings",)),
        ("/collections/worldpop/coverage", {"subset": "Lat(10.7:10.8"}, 400, ("subset",)),
        ("/collections/worldpop/coverage", {"subset": "Height(1:2)"}, 400, ("subset", "Height")),
        ("/collections/worldpop/coverage", {"subset": "Lat(a:b)"}, 400, ("subset", "not a number")),
        ("/collections/worldpop/coverage", {"subset": "Lat(11:10)"}, 400, ("subset", "low above")),
        (
            "/collections/worldpop/coverage",
            {"subset": "Lat(1:2),Lon(3:4)"},
            400,
            ("subset", "outside"),
        ),
        (
            "/collections/worldpop/coverage",
            {"subset": "Lat(10:11),E(1:2)"},
            400,
            ("subset", "not both"),
        ),
        ("/collections/worldpop/coverage", {"bbox": "1,2,3"}, 400, ("bbox",)),
        (
            "/collections/worldpop/coverage",
            {"bbox": "106,10,107,11", "subset": "Lat(10:11)"},
            400,
            ("bbox",),
        ),
        (
            "/collections/worldpop/coverage",
            {"bbox": "106,10,107,11", "bbox-crs": "EPSG:2154"},
            400,
            ("bbox-crs",),
        ),
        ("/collections/worldpop/coverage", {"crs": "EPSG:2154"}, 400, ("crs", "EPSG:2154")),
        ("/collections/worldpop/coverage", {"crs": "[EPSG:"}, 400, ("crs",)),
        (
            "/collections/worldpop/coverage",
            {"subset": "E(1:2),N(3:4)", "subset-crs": "EPSG:27700"},
            400,
            ("subset-crs", "EPSG:27700"),
        ),
        (
            "/collections/worldpop/coverage",
            {"subset-crs": "EPSG:3857"},
            400,
            ("subset-crs", "spatial subset"),
        ),
        (
            "/collections/worldpop/coverage",
            {"subset": "Lat(10.7:10.8),Lon(106.6:106.7)", "subset-crs": "EPSG:3857"},
            400,
            ("subset", "E and N"),
        ),
        ("/collections/worldpop/coverage", {"datetime": "yesterday"}, 400, ("datetime",)),
        ("/collections/worldpop/coverage", {"datetime": "1990"}, 400, ("datetime", "no item")),
        (
            "/collections/worldpop/coverage",
            {"subset": 'time("1990-01-01":"1991-01-01")'},
            400,
            ("subset",),
        ),
        ("/collections/worldpop/coverage", {"properties": "nir"}, 400, ("properties", "nir")),
        ("/collections/worldpop/coverage", {"f": "png"}, 400, ("f",)),
        ("/collections/worldpop/coverage", {"scale-factor": "0"}, 400, ("scale-factor",)),
        (
            "/collections/worldpop/coverage",
            {"scale-factor": "0.001"},
            400,
            ("scale-factor", "limit"),
        ),
        ("/collections/worldpop/coverage", {"width": "100000"}, 400, ("width", "limit")),
        ("/collections/worldpop/coverage", {"scale-size": "Lon(x)"}, 400, ("scale-size",)),
        (
            "/collections/worldpop/coverage",
            {"scale-size": "Lon(5)", "scaleSize": "Lon(5)"},
            400,
            ("scaleSize", "not both"),
        ),
        ("/collections/worldpop/coverage", {"scale-factor": "2", "width": "10"}, 400, ("scale",)),
        ("/collections/worldpop/coverage", {"colour": "red"}, 400, ("colour",)),
        ("/collections/era5/coverage", {"datetime": "2020-02-30"}, 400, ("datetime",)),
        ("/collections/nothing/coverage/domainset", {}, 404, ("nothing",)),
        ("/collections/worldpop/coverage/rangetype", {"f": "xml"}, 400, ("f",)),
    ],
)
def test_bad_input_is_a_400_or_404_naming_it(client, path, params, status, words):
    err(client.get(path, params=params), status, *words)


def test_output_over_the_json_limit_says_how_to_shrink_it(client, loaded):
    app = client.app
    from gis.raster.coverage import CoverageLimits

    app.state.coverage_limits = CoverageLimits(max_json_values=5000)
    try:
        text = err(
            client.get("/collections/worldpop/coverage", params={"f": "covjson"}),
            400,
            "scale-factor",
            "limit",
        )
        assert "GeoTIFF" in text
        # the suggested factor works
        factor = float(text.split("scale-factor=")[1].split(")")[0].split(",")[0])
        ok = client.get(
            "/collections/worldpop/coverage", params={"f": "covjson", "scale-factor": str(factor)}
        )
        assert ok.status_code == 200, ok.text
    finally:
        app.state.coverage_limits = None


# ---------------------------------------------------------------------------------------------
# a damaged store: 503 with a reason, never a 500
# ---------------------------------------------------------------------------------------------


def test_damaged_or_missing_cog_is_a_503(dsn, shared_data, tmp_path):
    store = RasterStore(tmp_path / "rasters")
    res = run_raster_ingest(
        dsn,
        [shared_data / POP.format(2020)],
        RasterIngestOptions(collection="worldpop", datetime="2020", sensor="worldpop"),
        store=store,
    )
    path = store.root / res.items[0].href
    settings = Settings(database_url=dsn, data_dir=tmp_path / "data", raster_store=store.root)
    with TestClient(create_app(settings, ApiSettings()), raise_server_exceptions=False) as c:
        assert c.get("/collections/worldpop/coverage").status_code == 200
        good = path.read_bytes()
        # the same size, garbage where the pixels are: GDAL cannot decode the tiles
        with rasterio.open(path) as src:
            offset = int(src.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1))
        damaged = bytearray(good)
        damaged[offset : offset + 2000] = b"\xff" * 2000
        path.write_bytes(bytes(damaged))
        r = c.get("/collections/worldpop/coverage")
        err(r, 503, "damaged")
        assert r.json()["code"] == "RasterUnavailable"
        # truncated: the download refuses it too
        path.write_bytes(good[: len(good) // 2])
        err(c.get("/collections/worldpop/coverage"), 503, "worldpop")
        err(c.get(f"/rasters/{res.items[0].href}"), 503, "damaged")
        path.unlink()
        err(c.get("/collections/worldpop/coverage"), 503, "missing")
        err(c.get(f"/rasters/{res.items[0].href}"), 503, "missing")
        shutil.rmtree(store.root)


# ---------------------------------------------------------------------------------------------
# zonal statistics are published as feature collections
# ---------------------------------------------------------------------------------------------


def test_zonal_statistics_are_published(dsn, shared_data, tmp_path):
    from gis.raster.synthetic import generate_pair
    from gis.raster.zonal import zonal_to_postgis
    from ingest.job import IngestOptions, run_ingest

    wards = run_ingest(
        dsn, "admin", shared_data / "vn-provinces-db-2025/hcmc_wards_2025.geojson", IngestOptions()
    )
    assert wards.outcome == "loaded", wards.summary()
    raster = shared_data / POP.format(2020)
    zonal_to_postgis(dsn, raster, "wards-2025", "pop_wards", percentiles=(50,), workers=1)
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT relation_schema, relation_name, id_column, public FROM "
            "gis_meta.collections WHERE id = 'zonal-pop-wards'"
        ).fetchone()
        total, n = conn.execute("SELECT sum(sum), count(*) FROM stats.zonal_pop_wards").fetchone()
    assert row == ("stats", "zonal_pop_wards", "unit_id", True)
    # several bands: one row per zone and band, with a feature id of its own
    scenes = generate_pair(
        tmp_path / "s2", seed=3, resolution=40.0, size_m=8000.0, growth_patches=3
    )
    zonal_to_postgis(
        dsn,
        scenes.after,
        "wards-2025",
        "s2_wards",
        bands=[3, 4],
        percentiles=(),
        workers=1,
        with_geometry=True,
    )
    with psycopg.connect(dsn) as conn:
        n2 = conn.execute("SELECT count(*) FROM stats.zonal_s2_wards").fetchone()[0]
        assert conn.execute(
            "SELECT id_column FROM gis_meta.collections WHERE id = 'zonal-s2-wards'"
        ).fetchone() == ("fid",)
    settings = Settings(database_url=dsn, data_dir=tmp_path / "data", raster_store=tmp_path / "r")
    with TestClient(create_app(settings, ApiSettings()), raise_server_exceptions=False) as c:
        doc = c.get("/collections/zonal-pop-wards").json()
        assert doc["itemType"] == "feature"
        fc = c.get("/collections/zonal-pop-wards/items", params={"limit": 1000}).json()
        assert len(fc["features"]) == n == 168
        assert sum(f["properties"]["sum"] for f in fc["features"]) == pytest.approx(total)
        assert {"count", "mean", "p50", "frac", "code", "name"} <= set(
            fc["features"][0]["properties"]
        )
        fc2 = c.get("/collections/zonal-s2-wards/items", params={"limit": 1000}).json()
        assert len(fc2["features"]) == n2 and {
            f["properties"]["band_name"] for f in fc2["features"]
        } == {"B04", "B08"}
        assert len({f["id"] for f in fc2["features"]}) == n2
    # replaced without geometry: the publication is withdrawn with it, in the same transaction
    zonal_to_postgis(
        dsn, raster, "wards-2025", "pop_wards", percentiles=(), workers=1, with_geometry=False
    )
    with psycopg.connect(dsn) as conn:
        assert (
            conn.execute(
                "SELECT count(*) FROM gis_meta.collections WHERE id = 'zonal-pop-wards'"
            ).fetchone()[0]
            == 0
        )
        # and again with geometry: published again (the old table's names do not clash)
    zonal_to_postgis(
        dsn,
        scenes.after,
        "wards-2025",
        "s2_wards",
        bands=[3, 4],
        percentiles=(),
        workers=1,
        with_geometry=True,
    )
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM stats.zonal_s2_wards").fetchone()[0] == n2
