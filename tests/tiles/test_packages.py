"""`gis tiles export` (PMTiles, MBTiles) read back by the reference readers, and `gis tiles seed`."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mapbox_vector_tile
import psycopg
import pytest

from tiles import tms as gtms
from tiles.service import open_service
from tiles.settings import TileSettings

GIS = str(Path(sys.executable).parent / "gis")


def _gis(args, dsn, data_dir, check=True):
    env = {**os.environ, "DATABASE_URL": dsn, "GIS_DATA_DIR": str(data_dir)}
    res = subprocess.run([GIS, *args], capture_output=True, text=True, env=env, timeout=300)
    if check:
        assert res.returncode == 0, res.stdout + res.stderr
    return res


def test_pmtiles_export_reads_back(shared_dsn, tmp_path):
    from pmtiles.reader import MmapSource, Reader, all_tiles
    from pmtiles.tile import Compression, TileType

    out = tmp_path / "parcels.pmtiles"
    res = _gis(["tiles", "export", "parcels", "--minzoom", "14", "--maxzoom", "17", "--out", str(out)],
               shared_dsn, tmp_path)
    assert "tiles written" in res.stdout and out.exists()
    with open(out, "rb") as f:
        r = Reader(MmapSource(f))
        h = r.header()
        assert h["tile_type"] == TileType.MVT and h["tile_compression"] == Compression.GZIP
        assert h["max_zoom"] == 17
        meta = r.metadata()
        assert meta["vector_layers"][0]["id"] == "parcels"
        assert "land_use" in meta["vector_layers"][0]["fields"]
        tiles = dict(all_tiles(r.get_bytes))
    assert tiles
    z17 = [k for k in tiles if k[0] == 17]
    z, x, y = z17[0]
    doc = mapbox_vector_tile.decode(gzip.decompress(tiles[(z, x, y)]))
    ids = {f["id"] for f in doc["parcels"]["features"]}
    b = gtms.lonlat_bounds(gtms.TileAddress("WebMercatorQuad", z, x, y), 64 / 4096)
    with psycopg.connect(shared_dsn) as conn:
        want = {r[0] for r in conn.execute(
            "SELECT parcel_id FROM cadastral.parcels_current WHERE geom && ST_MakeEnvelope(%s,%s,%s,%s,4326)",
            b).fetchall()}
    assert ids == want


def test_mbtiles_export_opens_in_gdal(shared_dsn, tmp_path):
    ogrinfo = shutil.which("ogrinfo")
    assert ogrinfo, "ogrinfo (gdal-bin) is missing: run ./dev setup"
    out = tmp_path / "city.mbtiles"
    _gis(["tiles", "export", "parcels,buildings", "--format", "mbtiles", "--minzoom", "15", "--maxzoom", "16",
          "--out", str(out)], shared_dsn, tmp_path)
    info = subprocess.run([ogrinfo, "-ro", "-so", "-al", str(out)], capture_output=True, text=True, timeout=60)
    assert info.returncode == 0, info.stderr
    assert "using driver `MBTiles'" in info.stdout or "MBTiles" in info.stdout
    assert "Layer name: parcels" in info.stdout and "Layer name: buildings" in info.stdout
    assert "land_use" in info.stdout
    count = int(info.stdout.split("Layer name: parcels", 1)[1].split("Feature Count: ", 1)[1].split()[0])
    assert count > 0


def test_export_bad_input(shared_dsn, tmp_path):
    res = _gis(["tiles", "export", "parcels", "--format", "geojson", "--out", str(tmp_path / "x.json")],
               shared_dsn, tmp_path, check=False)
    assert res.returncode == 2 and "pmtiles or mbtiles" in res.stderr
    res = _gis(["tiles", "export", "nope", "--out", str(tmp_path / "x.pmtiles")], shared_dsn, tmp_path, check=False)
    assert res.returncode == 1 and "parcels" in res.stderr
    res = _gis(["tiles", "export", "parcels", "--minzoom", "9", "--maxzoom", "3", "--out", str(tmp_path / "x.pmtiles")],
               shared_dsn, tmp_path, check=False)
    assert res.returncode == 2 and "minzoom" in res.stderr
    res = _gis(["tiles", "seed", "parcels", "--bbox", "1,2,3"], shared_dsn, tmp_path, check=False)
    assert res.returncode == 2 and "--bbox" in res.stderr


def test_seed_fills_the_servers_cache(shared_dsn, tmp_path):
    res = _gis(["tiles", "seed", "parcels", "--minzoom", "15", "--maxzoom", "16"], shared_dsn, tmp_path)
    assert "tiles written" in res.stdout
    assert list((tmp_path / "tiles").rglob("*.tile"))
    # the server (same data folder) finds them
    svc, conn = open_service(shared_dsn, TileSettings(), tmp_path / "tiles")
    try:
        lon, lat = conn.execute("SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) "
                                "FROM cadastral.parcels_current LIMIT 1").fetchone()
        import morecantile

        t = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, 16)
        res = svc.vector_tile_sync(conn, [svc.layers["parcels"]], gtms.check_tile("WebMercatorQuad", 16, t.y, t.x))
        assert res.cached and res.body
    finally:
        conn.close()


@pytest.mark.parametrize("cmd", [["tiles", "--help"], ["tiles", "export", "--help"], ["tiles", "seed", "--help"]])
def test_help(cmd):
    res = subprocess.run([GIS, *cmd], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "Usage" in res.stdout
