"""Tile packages (PMTiles v3, MBTiles 1.3) of vector layers, and seeding of the server's tile cache.

Tiles are rendered by the same statements as the API's (:mod:`tiles.vector`), on a few connections
at once, in WebMercatorQuad (what both formats are defined for). Empty tiles are not written. Tiles
are stored gzip-compressed, as both formats' readers expect of vector tiles.
"""

from __future__ import annotations

import gzip
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from gis.errors import InputError
from tiles import tms as gtms
from tiles.layers import VectorLayer
from tiles.service import SESSION_OPTIONS, TileService

FORMATS = ("pmtiles", "mbtiles")
TMS_ID = "WebMercatorQuad"


@dataclass
class ExportResult:
    """What an export or a seeding did."""

    path: Path | None
    tiles: int  # tiles looked at
    written: int  # non-empty tiles written (or cached)
    bytes: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.tiles / self.seconds if self.seconds > 0 else float("inf")

    def summary(self) -> str:
        where = f" to {self.path}" if self.path else ""
        return (f"{self.written} tiles written of {self.tiles} ({self.bytes / 1e6:.1f} MB){where} in "
                f"{self.seconds:.1f} s ({self.rate:.0f} tiles/s).")


def check_zooms(layers: list[VectorLayer], minzoom: int | None, maxzoom: int | None) -> tuple[int, int]:
    """The zoom range to cut: the options, else the layers' range; InputError when empty."""
    lo = min(layer.min_zoom for layer in layers) if minzoom is None else minzoom
    hi = max(min(layer.max_zoom for layer in layers), lo) if maxzoom is None else maxzoom
    if maxzoom is None:
        hi = min(hi, 16)
    if not 0 <= lo <= hi <= 24:
        raise InputError(f"--minzoom {lo} / --maxzoom {hi}: give 0 <= minzoom <= maxzoom <= 24.")
    return lo, hi


def check_bbox(svc: TileService, layers: list[VectorLayer], bbox: tuple[float, ...] | None
               ) -> tuple[float, float, float, float] | None:
    """The area to cut: ``bbox`` (lon/lat), else the union of the layers' extents (None: all empty)."""
    if bbox is not None:
        if len(bbox) != 4 or not (-180 <= bbox[0] < bbox[2] <= 180 and -90 <= bbox[1] < bbox[3] <= 90):
            raise InputError(f"--bbox {','.join(map(str, bbox))}: give minlon,minlat,maxlon,maxlat.")
        return tuple(bbox)
    boxes = [svc.extents.get(layer.id) for layer in layers]
    boxes = [b for b in boxes if b is not None]
    if not boxes:
        return None
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
            max(b[3] for b in boxes))


def _render_all(dsn: str, svc: TileService, layers: list[VectorLayer], tiles: Iterator[gtms.TileAddress],
                workers: int, use_cache: bool, progress: Callable[[int], None] | None):
    """Yield (tile, body) in completion order, rendering on ``workers`` connections."""
    from gis.db import connect

    local = threading.local()
    conns = []
    lock = threading.Lock()

    def work(t: gtms.TileAddress):
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = connect(dsn, autocommit=True, options=SESSION_OPTIONS)
            conn.execute("SET TimeZone = 'UTC'")
            with lock:
                conns.append(conn)
        return t, svc.vector_tile_sync(conn, layers, t, use_cache=use_cache).body

    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            pending = []
            for t in tiles:
                pending.append(pool.submit(work, t))
                if len(pending) >= workers * 4:
                    done = pending.pop(0).result()
                    if progress:
                        progress(1)
                    yield done
            for f in pending:
                done = f.result()
                if progress:
                    progress(1)
                yield done
    finally:
        for c in conns:
            c.close()


def export(dsn: str, svc: TileService, layers: list[VectorLayer], out: Path, fmt: str | None = None, *,
           minzoom: int | None = None, maxzoom: int | None = None, bbox: tuple[float, ...] | None = None,
           workers: int = 2, progress_total: Callable[[int], None] | None = None,
           progress: Callable[[int], None] | None = None, name: str | None = None) -> ExportResult:
    """Write the layers' tiles of ``minzoom..maxzoom`` over ``bbox`` to a PMTiles or MBTiles file.

    Parameters
    ----------
    dsn : str
        The database.
    svc : TileService
        A loaded service (layers, extents).
    layers : list of VectorLayer
        The layers (one or several: a multi-layer package).
    out : Path
        The file (replaced atomically when complete).
    fmt : {"pmtiles", "mbtiles"}, optional
        Default: from the file's suffix.
    minzoom, maxzoom : int, optional
        Default: the layers' range (capped at 16).
    bbox : tuple, optional
        lon/lat; default: the layers' extent.
    workers : int
        Connections rendering at once.

    Examples
    --------
    >>> export(dsn, svc, [svc.layers["parcels"]], Path("parcels.pmtiles"), minzoom=14, maxzoom=16)  # doctest: +SKIP
    """
    out = Path(out)
    fmt = (fmt or out.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise InputError(f"--format {fmt!r}: use pmtiles or mbtiles (or name the file .pmtiles/.mbtiles).")
    lo, hi = check_zooms(layers, minzoom, maxzoom)
    area = check_bbox(svc, layers, bbox)
    n = gtms.count_tiles(TMS_ID, area, lo, hi) if area else 0
    if progress_total:
        progress_total(n)
    tiles = gtms.tiles_in_bbox(TMS_ID, area, lo, hi) if area else iter(())
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.partial")
    t0 = time.perf_counter()
    meta = _metadata(layers, area, lo, hi, name or "+".join(layer.id for layer in layers))
    written = size = count = 0
    rendered = _render_all(dsn, svc, layers, tiles, workers, False, progress)
    try:
        if fmt == "pmtiles":
            written, size, count = _write_pmtiles(tmp, rendered, meta, area, lo, hi)
        else:
            written, size, count = _write_mbtiles(tmp, rendered, meta, area, lo, hi)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return ExportResult(out, count, written, size, time.perf_counter() - t0)


def seed(dsn: str, svc: TileService, layers: list[VectorLayer], *, minzoom: int | None = None,
         maxzoom: int | None = None, bbox: tuple[float, ...] | None = None, tms_id: str = TMS_ID,
         workers: int = 2, progress_total: Callable[[int], None] | None = None,
         progress: Callable[[int], None] | None = None) -> ExportResult:
    """Render the layers' tiles into the server-side cache (tiles already fresh there are kept)."""
    if not svc._cacheable(layers):
        raise InputError("These layers' tiles are not cached by the server (the cache is off, or a "
                         "table of theirs is not tracked by the change log): nothing to seed.")
    gtms.get_tms(tms_id)
    lo, hi = check_zooms(layers, minzoom, maxzoom)
    area = check_bbox(svc, layers, bbox)
    n = gtms.count_tiles(tms_id, area, lo, hi) if area else 0
    if progress_total:
        progress_total(n)
    t0 = time.perf_counter()
    written = size = count = 0
    tiles = gtms.tiles_in_bbox(tms_id, area, lo, hi) if area else iter(())
    for _, body in _render_all(dsn, svc, layers, tiles, workers, True, progress):
        count += 1
        if body:
            written += 1
            size += len(body)
    return ExportResult(None, count, written, size, time.perf_counter() - t0)


def _metadata(layers: list[VectorLayer], bbox, lo: int, hi: int, name: str) -> dict:
    vector_layers = []
    for layer in layers:
        c = layer.collection
        fields = {}
        if c.id_type not in ("int2", "int4", "int8"):
            fields[c.id_column] = "String"
        for fname, _ in layer.fields:
            jt = c.field(fname).json_type
            fields[fname] = {"integer": "Number", "number": "Number", "boolean": "Boolean"}.get(jt, "String")
        vector_layers.append({"id": layer.id, "description": c.title_en, "minzoom": max(lo, layer.min_zoom),
                              "maxzoom": min(hi, layer.max_zoom), "fields": fields})
    attribution = "; ".join(sorted({layer.collection.attribution for layer in layers
                                    if layer.collection.attribution}))
    return {"name": name, "description": ", ".join(layer.collection.title_en for layer in layers),
            "attribution": attribution, "vector_layers": vector_layers,
            "bounds": list(bbox) if bbox else [-180, -85, 180, 85], "minzoom": lo, "maxzoom": hi}


def _write_pmtiles(path: Path, rendered, meta: dict, bbox, lo: int, hi: int) -> tuple[int, int, int]:
    from pmtiles.tile import Compression, TileType, zxy_to_tileid
    from pmtiles.writer import Writer

    bodies: list[tuple[int, bytes]] = []
    count = 0
    for t, body in rendered:
        count += 1
        if body:
            bodies.append((zxy_to_tileid(t.z, t.x, t.y), gzip.compress(body, 6)))
    bodies.sort()  # a clustered archive: tiles in tile-id order
    size = 0
    with open(path, "wb") as f:
        w = Writer(f)
        for tid, data in bodies:
            w.write_tile(tid, data)
            size += len(data)
        b = bbox or (-180, -85, 180, 85)
        header = {
            "tile_type": TileType.MVT,
            "tile_compression": Compression.GZIP,
            "min_zoom": lo, "max_zoom": hi,
            "min_lon_e7": int(b[0] * 1e7), "min_lat_e7": int(b[1] * 1e7),
            "max_lon_e7": int(b[2] * 1e7), "max_lat_e7": int(b[3] * 1e7),
            "center_zoom": lo,
            "center_lon_e7": int((b[0] + b[2]) / 2 * 1e7), "center_lat_e7": int((b[1] + b[3]) / 2 * 1e7),
        }
        w.finalize(header, meta)
    return len(bodies), size, count


def _write_mbtiles(path: Path, rendered, meta: dict, bbox, lo: int, hi: int) -> tuple[int, int, int]:
    if path.exists():
        path.unlink()
    db = sqlite3.connect(path)
    try:
        db.executescript("""
            CREATE TABLE metadata (name text, value text);
            CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer, tile_data blob);
            CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row);
        """)
        b = bbox or (-180, -85, 180, 85)
        rows = {
            "name": meta["name"], "format": "pbf", "type": "overlay", "version": "1.0",
            "description": meta["description"], "attribution": meta["attribution"],
            "minzoom": str(lo), "maxzoom": str(hi), "bounds": ",".join(f"{v:.7f}" for v in b),
            "center": f"{(b[0] + b[2]) / 2:.7f},{(b[1] + b[3]) / 2:.7f},{lo}",
            "json": json.dumps({"vector_layers": meta["vector_layers"]}),
        }
        db.executemany("INSERT INTO metadata VALUES (?, ?)", rows.items())
        written = size = count = 0
        batch = []
        for t, body in rendered:
            count += 1
            if not body:
                continue
            data = gzip.compress(body, 6)
            batch.append((t.z, t.x, (1 << t.z) - 1 - t.y, data))  # MBTiles rows count from the south
            written += 1
            size += len(data)
            if len(batch) >= 500:
                db.executemany("INSERT INTO tiles VALUES (?, ?, ?, ?)", batch)
                batch.clear()
        if batch:
            db.executemany("INSERT INTO tiles VALUES (?, ?, ?, ?)", batch)
        db.commit()
    finally:
        db.close()
    return written, size, count
