"""The server-side tile cache: invalidated by writes under a tile (SQL, and a real ingest job), not
by writes elsewhere, right when transactions commit out of order, and kept on disk."""

from __future__ import annotations

from datetime import UTC, datetime

import mapbox_vector_tile
import morecantile
import psycopg

from ingest.job import IngestOptions, run_ingest
from tiles import tms as gtms
from tiles.service import SESSION_OPTIONS, TileService
from tiles.settings import TileSettings

WM = morecantile.tms.get("WebMercatorQuad")


def _service(dsn, root):
    conn = psycopg.connect(dsn, autocommit=True, options=SESSION_OPTIONS)
    svc = TileService(TileSettings(poll_seconds=0), root)
    svc.load(conn)
    svc.refresh_changes_sync(conn)
    return svc, conn


def _tile_of(conn, parcel_id, z=19):
    lon, lat = conn.execute("SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) "
                            "FROM cadastral.parcels WHERE parcel_id = %s", (parcel_id,)).fetchone()
    t = WM.tile(lon, lat, z)
    return gtms.check_tile("WebMercatorQuad", z, t.y, t.x)


def _props(body, fid):
    doc = mapbox_vector_tile.decode(body)
    return {f["id"]: f["properties"] for f in doc["parcels"]["features"]}.get(fid)


def _two_far_parcels(conn):
    """Two parcels in force whose zoom-19 tiles are apart (not neighbours)."""
    rows = conn.execute("SELECT parcel_id FROM cadastral.parcels_current ORDER BY ST_X(ST_Centroid(geom))").fetchall()
    a, b = rows[0][0], rows[-1][0]
    ta, tb = _tile_of(conn, a), _tile_of(conn, b)
    assert abs(ta.x - tb.x) > 2
    return a, b, ta, tb


def test_a_write_under_a_tile_invalidates_it_and_only_it(loaded_dsn, tmp_path):
    svc, conn = _service(loaded_dsn, tmp_path / "tiles")
    layers = [svc.layers["parcels"]]
    a, b, ta, tb = _two_far_parcels(conn)
    first_a = svc.vector_tile_sync(conn, layers, ta)
    first_b = svc.vector_tile_sync(conn, layers, tb)
    assert not first_a.cached and svc.vector_tile_sync(conn, layers, ta).cached
    assert _props(first_a.body, a)["land_use"] != "TMD"

    with psycopg.connect(loaded_dsn, autocommit=True) as w:
        w.execute("UPDATE cadastral.parcels SET land_use = 'TMD' WHERE parcel_id = %s", (a,))
    svc.refresh_changes_sync(conn)
    again_a = svc.vector_tile_sync(conn, layers, ta)
    assert not again_a.cached and _props(again_a.body, a)["land_use"] == "TMD"
    assert again_a.etag != first_a.etag
    again_b = svc.vector_tile_sync(conn, layers, tb)
    assert again_b.cached and again_b.etag == first_b.etag  # far from the write: still served from cache
    conn.close()


def test_out_of_order_commits_are_not_missed(loaded_dsn, tmp_path):
    """T1 writes under tile A and commits late; T2 writes elsewhere and commits first. A tile rendered
    between the two commits did not see T1, whatever the order of their change ids."""
    svc, conn = _service(loaded_dsn, tmp_path / "tiles")
    layers = [svc.layers["parcels"]]
    a, b, ta, tb = _two_far_parcels(conn)
    t1 = psycopg.connect(loaded_dsn)
    t2 = psycopg.connect(loaded_dsn)
    try:
        t1.execute("UPDATE cadastral.parcels SET address = 'T1 address' WHERE parcel_id = %s", (a,))
        t2.execute("UPDATE cadastral.parcels SET address = 'T2 address' WHERE parcel_id = %s", (b,))
        t2.commit()
        svc.refresh_changes_sync(conn)
        mid = svc.vector_tile_sync(conn, layers, ta)  # rendered before T1 commits
        assert _props(mid.body, a)["address"] != "T1 address"
        assert svc.vector_tile_sync(conn, layers, ta).cached
        t1.commit()
    finally:
        t1.close()
        t2.close()
    svc.refresh_changes_sync(conn)
    after = svc.vector_tile_sync(conn, layers, ta)
    assert not after.cached and _props(after.body, a)["address"] == "T1 address"
    conn.close()


def test_an_ingest_job_invalidates_the_tiles_it_changed(loaded_dsn, sample_paths, tmp_path):
    svc, conn = _service(loaded_dsn, tmp_path / "tiles")
    layers = [svc.layers["parcels"]]
    # the update edition splits parcel 1 of sheet 1 and changes the land use of parcel 10
    split = conn.execute("SELECT parcel_id FROM cadastral.parcels WHERE sheet_no = 1 AND parcel_no = 1").fetchone()[0]
    t_split = _tile_of(conn, split, 18)
    far = conn.execute(
        "SELECT parcel_id FROM cadastral.parcels p ORDER BY ST_Distance(p.geom, "
        "(SELECT geom FROM cadastral.parcels WHERE parcel_id = %s)) DESC LIMIT 1", (split,)).fetchone()[0]
    t_far = _tile_of(conn, far, 18)
    before = svc.vector_tile_sync(conn, layers, t_split)
    far_before = svc.vector_tile_sync(conn, layers, t_far)
    assert split in {f["id"] for f in mapbox_vector_tile.decode(before.body)["parcels"]["features"]}

    result = run_ingest(loaded_dsn, "cadastral", sample_paths["cadastral_update"],
                        IngestOptions(valid_from=datetime(2025, 1, 1, tzinfo=UTC)))
    assert result.outcome == "loaded"
    svc.refresh_changes_sync(conn)
    after = svc.vector_tile_sync(conn, layers, t_split)
    assert not after.cached
    ids = {f["id"] for f in mapbox_vector_tile.decode(after.body)["parcels"]["features"]}
    assert split not in ids  # retired: its children are drawn instead
    children = {r[0] for r in conn.execute(
        "SELECT child_id FROM cadastral.parcel_lineage WHERE parent_id = %s", (split,)).fetchall()}
    assert children and children & ids
    far_after = svc.vector_tile_sync(conn, layers, t_far)
    assert far_after.cached and far_after.etag == far_before.etag
    # the same file again changes nothing: no tile is invalidated
    run_ingest(loaded_dsn, "cadastral", sample_paths["cadastral_update"],
               IngestOptions(valid_from=datetime(2025, 1, 1, tzinfo=UTC)))
    svc.refresh_changes_sync(conn)
    assert svc.vector_tile_sync(conn, layers, t_split).cached
    conn.close()


def test_the_cache_survives_a_restart_and_stays_correct(loaded_dsn, tmp_path):
    root = tmp_path / "tiles"
    svc, conn = _service(loaded_dsn, root)
    layers = [svc.layers["parcels"]]
    a, b, ta, tb = _two_far_parcels(conn)
    svc.vector_tile_sync(conn, layers, ta)
    svc.vector_tile_sync(conn, layers, tb)
    conn.close()
    assert list(root.rglob("*.tile"))
    with psycopg.connect(loaded_dsn, autocommit=True) as w:  # a write while no server runs
        w.execute("UPDATE cadastral.parcels SET address = 'while down' WHERE parcel_id = %s", (a,))
    svc2, conn2 = _service(loaded_dsn, root)
    l2 = [svc2.layers["parcels"]]
    assert svc2.vector_tile_sync(conn2, l2, tb).cached  # read back from disk
    fresh = svc2.vector_tile_sync(conn2, l2, ta)
    assert not fresh.cached and _props(fresh.body, a)["address"] == "while down"
    conn2.close()


def test_untracked_tables_are_never_cached(loaded_dsn, tmp_path):
    with psycopg.connect(loaded_dsn, autocommit=True) as w:
        w.execute("CREATE TABLE stats.zones (zone_id int PRIMARY KEY, name text, geom geometry(Polygon, 4326))")
        w.execute("INSERT INTO stats.zones VALUES (1, 'a', ST_MakeEnvelope(106.70, 10.80, 106.71, 10.81, 4326))")
        w.execute("INSERT INTO gis_meta.collections (id, relation_schema, relation_name, id_column, title_vi, "
                  "title_en, fields) VALUES ('zones', 'stats', 'zones', 'zone_id', 'Vùng', 'Zones', "
                  "'{\"name\": {\"public\": true}}')")
    svc, conn = _service(loaded_dsn, tmp_path / "tiles")
    zl = svc.layers["zones"]
    assert not zl.tracked
    t = gtms.check_tile("WebMercatorQuad", 15, *reversed(tuple(WM.tile(106.705, 10.805, 15))[:2]))
    first = svc.vector_tile_sync(conn, [zl], t)
    assert first.body and not svc.vector_tile_sync(conn, [zl], t).cached
    with psycopg.connect(loaded_dsn, autocommit=True) as w:
        w.execute("SELECT gis_meta.track_tile_changes('stats.zones', 'geom')")
    svc.load(conn)
    assert svc.layers["zones"].tracked
    svc.vector_tile_sync(conn, [svc.layers["zones"]], t)
    assert svc.vector_tile_sync(conn, [svc.layers["zones"]], t).cached
    conn.close()
