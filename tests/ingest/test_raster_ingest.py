"""The raster ingest job against the real database and real files: COGs, catalog, idempotence,
bad input (nothing written), interruption and a failed commit (nothing left behind)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import psycopg
import pytest
import rasterio
import rasterio.shutil
from rasterio.transform import from_origin
from rio_cogeo.cogeo import cog_validate

from gis.errors import CRSError, GisError, InputError
from gis.raster.store import RasterStore
from ingest.raster import RasterIngestOptions, run_raster_ingest

POP = "geoglue-kraemer/worldpop/vnm_ppp_{}_1km_Aggregated_UNadj.tif"
ERA5 = "geoglue-kraemer/era5/VNM-2020-era5.daily_sum.nc"


def _items(dsn) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT collection, id, asset_href FROM raster.items ORDER BY 1, 2"
        ).fetchall()


def _store_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    from gis.raster.synthetic import generate_pair

    return generate_pair(
        tmp_path_factory.mktemp("s2"), seed=2025, resolution=20.0, size_m=12000.0, growth_patches=10
    )


def test_synthetic_scenes_twice_is_idempotent(dsn, scenes, tmp_path):
    store = RasterStore(tmp_path / "rasters")
    opts = RasterIngestOptions(collection="s2-synthetic", sensor="sentinel2")
    first = run_raster_ingest(dsn, [scenes.before, scenes.after], opts, store=store)
    assert (first.outcome, first.inserted, first.unchanged) == ("loaded", 2, 0)
    files = _store_files(store.root)
    assert len(files) == 2 and not any(p.name.startswith(".tmp") for p in files)
    for f in files:
        ok, errors, _ = cog_validate(str(f), quiet=True)
        assert ok, errors
        with rasterio.open(f) as d:
            assert d.count == 5 and d.nodata == 0 and d.dtypes[0] == "uint16"
            assert d.descriptions == ("B02", "B03", "B04", "B08", "B11")
            assert d.scales[0] == pytest.approx(1e-4) and d.overviews(1)
            assert d.profile["compress"] == "deflate" and d.profile["tiled"]
    mtimes = {f: f.stat().st_mtime_ns for f in files}
    second = run_raster_ingest(dsn, [scenes.before, scenes.after], opts, store=store)
    assert (second.outcome, second.inserted, second.updated, second.unchanged) == (
        "unchanged",
        0,
        0,
        2,
    )
    assert {f: f.stat().st_mtime_ns for f in _store_files(store.root)} == mtimes
    with psycopg.connect(dsn) as conn:
        runs = conn.execute(
            "SELECT outcome, n_inserted, n_unchanged FROM ingest.runs WHERE kind = 'raster' "
            "ORDER BY run_id"
        ).fetchall()
        stac = conn.execute(
            "SELECT content FROM raster.stac_items WHERE id = %s", (scenes.after.stem,)
        ).fetchone()[0]
        coll = conn.execute(
            "SELECT content FROM raster.stac_collections WHERE id = 's2-synthetic'"
        ).fetchone()[0]
    assert runs == [("loaded", 2, 0), ("unchanged", 0, 2)]
    assert stac["type"] == "Feature" and stac["properties"]["datetime"].startswith(
        "2024-01-20T03:20"
    )
    assert stac["properties"]["proj:code"] == "EPSG:32648" and stac["properties"][
        "instruments"
    ] == ["sentinel2"]
    bands = stac["assets"]["data"]["bands"]
    assert [b["eo:common_name"] for b in bands] == ["blue", "green", "red", "nir", "swir16"]
    assert bands[0]["raster:scale"] == pytest.approx(1e-4) and bands[0]["nodata"] == 0
    lon = [c[0] for c in stac["geometry"]["coordinates"][0]]
    assert 106.6 < min(lon) < max(lon) < 106.8
    assert coll["extent"]["temporal"]["interval"][0][0].startswith("2019-01-15")


def test_real_worldpop_and_era5(dsn, shared_data, tmp_path):
    store = RasterStore(tmp_path / "rasters")
    r = run_raster_ingest(
        dsn,
        [shared_data / POP.format(2000)],
        RasterIngestOptions(collection="worldpop", datetime="2000", sensor="worldpop"),
        store=store,
    )
    r2 = run_raster_ingest(
        dsn,
        [shared_data / POP.format(2020)],
        RasterIngestOptions(collection="worldpop", datetime="2020", sensor="worldpop"),
        store=store,
    )
    e = run_raster_ingest(
        dsn, [shared_data / ERA5], RasterIngestOptions(collection="era5"), store=store
    )
    assert r.inserted == r2.inserted == e.inserted == 1
    with psycopg.connect(dsn) as conn:
        rows = dict(
            conn.execute("SELECT id, jsonb_array_length(bands) FROM raster.items").fetchall()
        )
        era = conn.execute(
            "SELECT start_datetime, end_datetime, epsg, properties, bands->0 "
            "FROM raster.items WHERE collection = 'era5'"
        ).fetchone()
        wp = conn.execute(
            "SELECT start_datetime, end_datetime, bands->0->>'nodata', data_type FROM raster.items "
            "WHERE id = 'vnm_ppp_2020_1km_Aggregated_UNadj'"
        ).fetchone()
    assert rows["VNM-2020-era5.daily_sum"] == 366
    assert era[0].isoformat().startswith("2020-01-01") and era[1].isoformat().startswith(
        "2020-12-31"
    )
    assert era[2] == 4326 and era[3]["cube:dimensions"]["valid_time"]["type"] == "temporal"
    assert era[4]["name"] == "tp_20200101" and era[4]["unit"] == "m"
    assert wp[0].year == 2020 and wp[2] == "-99999" and wp[3] == "float32"
    # pixels survive unchanged
    import xarray as xr

    cog = store.root / _items(dsn)[0][2]
    with rasterio.open(cog) as d:
        data = d.read()
    ds = xr.open_dataset(shared_data / ERA5)
    np.testing.assert_array_equal(data, ds["tp"].values)
    with (
        rasterio.open(shared_data / POP.format(2020)) as src,
        rasterio.open(
            store.root
            / [h for c, i, h in _items(dsn) if i.endswith("2020_1km_Aggregated_UNadj")][0]
        ) as c,
    ):
        np.testing.assert_array_equal(src.read(1), c.read(1))
        assert c.nodata == src.nodata


def test_jpeg2000_and_update(dsn, scenes, tmp_path):
    jp2 = tmp_path / "scene.jp2"
    rasterio.shutil.copy(scenes.before, jp2, driver="JP2OpenJPEG", QUALITY=100, REVERSIBLE="YES")
    store = RasterStore(tmp_path / "rasters")
    opts = RasterIngestOptions(collection="jp2", sensor="sentinel2", datetime="2019-01-15")
    assert run_raster_ingest(dsn, [jp2], opts, store=store).inserted == 1
    old = _items(dsn)[0][2]
    # the same file declared at another time: the item is updated, the old COG removed
    opts2 = RasterIngestOptions(collection="jp2", sensor="sentinel2", datetime="2019-01-16")
    res = run_raster_ingest(dsn, [jp2], opts2, store=store)
    assert res.updated == 1
    new = _items(dsn)[0][2]
    assert new != old and not (store.root / old).exists() and (store.root / new).exists()
    with rasterio.open(store.root / new) as c, rasterio.open(scenes.before) as s:
        np.testing.assert_array_equal(c.read(), s.read())


def _tif(path: Path, data: np.ndarray, **kw) -> Path:
    profile = dict(
        driver="GTiff",
        width=data.shape[-1],
        height=data.shape[-2],
        count=data.shape[0],
        dtype=str(data.dtype),
        crs="EPSG:32648",
        transform=from_origin(686000, 1193000, 20, 20),
    )
    profile.update(kw)
    with rasterio.open(path, "w", **profile) as d:
        d.write(data)
    return path


def _assert_nothing_written(dsn, store: RasterStore):
    assert _items(dsn) == []
    assert _store_files(store.root) == []
    with psycopg.connect(dsn) as conn:
        outcome = conn.execute(
            "SELECT outcome FROM ingest.runs WHERE kind = 'raster' ORDER BY run_id DESC LIMIT 1"
        ).fetchone()
    assert outcome is not None and outcome[0] in ("failed", "interrupted")


def test_bad_inputs_write_nothing(dsn, scenes, tmp_path):
    store = RasterStore(tmp_path / "rasters")
    ok = np.ones((1, 64, 64), dtype="uint16") * 100

    truncated = tmp_path / "truncated.tif"
    big = _tif(
        tmp_path / "big.tif",
        (np.random.default_rng(1).random((1, 512, 512)) * 1000).astype("uint16"),
    )
    data = big.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.tif"
    garbage.write_bytes(b"II*\x00" + os.urandom(2000))
    nogeo = tmp_path / "nogeo.tif"
    with rasterio.open(
        nogeo, "w", driver="GTiff", width=64, height=64, count=1, dtype="uint16"
    ) as d:
        d.write(ok)
    badnod = _tif(tmp_path / "badnodata.tif", ok, nodata=65535)
    raw = badnod.read_bytes()  # GDAL refuses to write it; other writers do: patch the tag
    assert raw.count(b"65535\x00") == 1
    badnod.write_bytes(raw.replace(b"65535\x00", b"-9999\x00"))
    one_band = _tif(tmp_path / "oneband.tif", ok, dtype="uint16")

    cases = [
        ([truncated], RasterIngestOptions(datetime="2020"), InputError, "corrupt or truncated"),
        ([garbage], RasterIngestOptions(datetime="2020"), InputError, "corrupt|not a raster"),
        ([nogeo], RasterIngestOptions(datetime="2020"), CRSError, "no georeferencing"),
        (
            [one_band],
            RasterIngestOptions(datetime="2020", crs="EPSG:999999"),
            CRSError,
            "Unknown CRS",
        ),
        (
            [one_band],
            RasterIngestOptions(datetime="2020", sensor="sentinel2"),
            InputError,
            "expects 5 .*B02, B03, B04, B08, B11",
        ),
        ([badnod], RasterIngestOptions(datetime="2020"), InputError, "-9999.* cannot be stored"),
        (
            [one_band],
            RasterIngestOptions(datetime="2020", nodata=70000),
            InputError,
            "cannot be stored",
        ),
        ([one_band], RasterIngestOptions(), InputError, "pass --datetime"),
        (
            [one_band],
            RasterIngestOptions(datetime="2020", update_frequency="sometimes"),
            InputError,
            "--update-frequency 'sometimes': use one of continual, daily, .*annually",
        ),
        # a good file with a bad one: all or nothing
        (
            [scenes.before, truncated],
            RasterIngestOptions(datetime="2020"),
            InputError,
            "corrupt or truncated",
        ),
    ]
    for paths, opts, exc, pattern in cases:
        with pytest.raises(exc, match=pattern):
            run_raster_ingest(dsn, paths, opts, store=store)
        _assert_nothing_written(dsn, store)


def test_unknown_crs_in_file(dsn, tmp_path):
    store = RasterStore(tmp_path / "rasters")
    p = _tif(tmp_path / "local.tif", np.ones((1, 16, 16), dtype="uint8"), crs=None)
    # an engineering (local) CRS: no way to place it on the map
    with rasterio.open(p, "r+") as d:
        d.crs = rasterio.crs.CRS.from_wkt(
            'LOCAL_CS["site grid",UNIT["metre",1],AXIS["X",EAST],AXIS["Y",NORTH]]'
        )
    with pytest.raises(CRSError, match="unknown or unusable|pass --crs"):
        run_raster_ingest(dsn, [p], RasterIngestOptions(datetime="2020"), store=store)
    _assert_nothing_written(dsn, store)


def test_interrupted_job_leaves_nothing(dsn, scenes, tmp_path):
    store = RasterStore(tmp_path / "rasters")
    calls = []

    def ctrl_c(done, total):
        calls.append(done)
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_raster_ingest(
            dsn,
            [scenes.before, scenes.after],
            RasterIngestOptions(collection="s2", sensor="sentinel2"),
            store=store,
            progress=ctrl_c,
        )
    assert calls == [1, 2]  # both COGs had been written to temporary files
    _assert_nothing_written(dsn, store)


def test_failed_commit_removes_placed_files(dsn, scenes, tmp_path):
    """The files are renamed just before COMMIT; when the COMMIT itself fails (a deferred
    constraint here), the renamed files are removed again and no row exists."""
    with psycopg.connect(dsn) as conn:
        conn.execute("""
            CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$;
            CREATE CONSTRAINT TRIGGER refuse_items AFTER INSERT ON raster.items
                DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.refuse();
        """)
    store = RasterStore(tmp_path / "rasters")
    with pytest.raises(GisError, match="rolled back"):
        run_raster_ingest(
            dsn,
            [scenes.before],
            RasterIngestOptions(collection="s2", sensor="sentinel2"),
            store=store,
        )
    _assert_nothing_written(dsn, store)


def test_cli_ingest_list_and_zonal(dsn, shared_data, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from gis.cli import app

    env = {
        "DATABASE_URL": dsn,
        "GIS_RASTER_STORE": str(tmp_path / "rasters"),
        "GIS_DATA_DIR": str(tmp_path),
    }
    runner = CliRunner()
    r = runner.invoke(
        app,
        [
            "ingest",
            "raster",
            str(shared_data / POP.format(2020)),
            "--collection",
            "worldpop",
            "--datetime",
            "2020",
            "--sensor",
            "worldpop",
        ],
        env=env,
    )
    assert r.exit_code == 0, r.output
    assert "inserted 1" in r.output
    r = runner.invoke(app, ["raster", "list"], env=env)
    assert r.exit_code == 0 and "worldpop/vnm_ppp_2020_1km_Aggregated_UNadj" in r.output
    for cmd in (
        ["raster", "zonal", "--help"],
        ["raster", "change", "--help"],
        ["raster", "indices", "--help"],
    ):
        assert runner.invoke(app, cmd, env=env).exit_code == 0
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "_raster_helpers", Path(__file__).parents[1] / "gis" / "raster_helpers.py"
    )
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    helpers.load_wards(dsn, shared_data)
    r = runner.invoke(
        app,
        [
            "raster",
            "zonal",
            "worldpop/vnm_ppp_2020_1km_Aggregated_UNadj",
            "--zones",
            "wards-2025",
            "--table",
            "pop2020",
            "--workers",
            "1",
        ],
        env=env,
    )
    assert r.exit_code == 0, r.output
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM stats.zonal_pop2020").fetchone()[0] == 168
    shutil.rmtree(tmp_path / "rasters")
