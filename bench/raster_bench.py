#!/usr/bin/env python
"""Reproducible raster benchmark: zonal statistics and COG writing against the peers.

Run from the project root::

    .venv/bin/python bench/raster_bench.py                  # 10,000 x 10,000, 168 wards, 100,000 parcels
    .venv/bin/python bench/raster_bench.py --size 4000 --parcels 20000   # quick
    .venv/bin/python bench/raster_bench.py --zones wards --repeat 3 --reuse   # peers interleaved 3x

What it does (results and how to read them: bench/README.md, section "Raster"):

1. Makes (or reuses, cached in ``bench/out/raster/``) a population-like float32 raster of SIZE x
   SIZE cells over HCMC (106.08-107.58 E, 10.01-11.51 N, square cells): WorldPop 2020 (1 km)
   resampled bilinearly, times log-normal noise per cell (people per cell; nodata -99999 outside
   Vietnam's land). Written first as an uncompressed tiled GeoTIFF (the COG-writing input), then
   as the platform's COG (DEFLATE + predictor, 512 tiles, overviews).
2. COG writing rate: :func:`gis.raster.store.write_cog_from_dataset` (GDAL's COG driver in
   rasterio's wheel, GDAL 3.10, then rio-cogeo validation) against ``gdal_translate -of COG`` of
   the system GDAL with the same creation options, on the same input; MB/s of input.
3. Starts the embedded PostGIS in ``var/bench`` and creates the database ``raster_bench`` afresh:
   the 168 real 2025 wards in ``admin.units`` and PARCELS synthetic parcels
   (:func:`gis.sample.iter_parcel_batches`, reprojected to EPSG:4326) in ``bench.parcels``; the
   COG loaded with ``raster2pgsql -t 256x256`` (Debian's postgis package) into ``bench.pop``.
4. Runs each method in its own process, one after the other, and samples the resident memory of
   the whole process tree (and, for PostGIS, of the server backend) from ``/proc`` every 50 ms:

   * ``gis`` - :func:`gis.raster.zonal.zonal_to_postgis`: zones read from PostGIS, exact
     coverage, count/sum/mean/min/max/std/p10/p25/p50/p75/p90/frac, written to ``stats.*``;
   * ``gis-moments`` - the same without percentiles (``--percentiles ''``);
   * ``gis:1``, ``gis-moments:1`` - the same on one worker process (``METHOD:N``: N workers;
     plain ``gis`` uses ``--workers``), to compare single-core work with the single-threaded
     peers;
   * ``rasterstats`` - ``rasterstats.zonal_stats`` with the same statistics (centre-of-cell rule,
     no coverage weighting; zones from the same GeoJSON/parcels in memory, results not stored);
   * ``exactextract`` - exactextract's own count/sum/mean/min/max/stdev (reference);
   * ``postgis`` - ``ST_SummaryStatsAgg(ST_Clip(rast, geom))`` per zone (count/sum/mean/std/min/
     max; PostGIS has no exact coverage weighting and no percentiles in that aggregate).
5. With ``--repeat N`` runs every method N times, interleaved (round 1: all methods, round
   2: all methods, ...), so that a load change on a shared machine hits every method alike.
   Each run reports wall-clock seconds and **CPU seconds** (user + system of the process and
   its workers, plus the server backend's for PostGIS): on a machine shared with other jobs
   CPU seconds vary much less than wall-clock time.
6. Writes JSON to ``bench/out/raster_bench_<zones>.json`` and a markdown table to stdout (median and
   best of the repeats).

``--reuse`` keeps the raster, the COG and the database of an earlier run with the same
``--size`` and ``--parcels`` (no COG-writing measurement, no reload).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OUT = ROOT / "bench" / "out" / "raster"
SHARED = ROOT.parent / "shared" / "data" / "hcmc"
WARDS = SHARED / "vn-provinces-db-2025" / "hcmc_wards_2025.geojson"
POP2020 = SHARED / "geoglue-kraemer" / "worldpop" / "vnm_ppp_2020_1km_Aggregated_UNadj.tif"
BOUNDS = (106.08, 10.01, 107.58, 11.51)
DB = "raster_bench"
PCT = (10, 25, 50, 75, 90)


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------


def make_raster(size: int, seed: int = 7) -> Path:
    import numpy as np
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.transform import from_bounds
    from rasterio.windows import Window
    from rasterio.windows import from_bounds as win_from_bounds

    raw = OUT / f"pop{size}_raw.tif"
    if raw.exists():
        return raw
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    transform = from_bounds(*BOUNDS, size, size)
    cells_per_km = (0.0083333333 / ((BOUNDS[2] - BOUNDS[0]) / size)) ** 2
    profile = dict(
        driver="GTiff",
        width=size,
        height=size,
        count=1,
        dtype="float32",
        crs="EPSG:4326",
        transform=transform,
        nodata=-99999.0,
        tiled=True,
        blockxsize=512,
        blockysize=512,
        BIGTIFF="IF_SAFER",
    )
    tmp = raw.with_suffix(".part.tif")
    with rasterio.open(POP2020) as src, rasterio.open(tmp, "w", **profile) as dst:
        rows = 512
        for r0 in range(0, size, rows):
            h = min(rows, size - r0)
            top = BOUNDS[3] - r0 * (BOUNDS[3] - BOUNDS[1]) / size
            bottom = top - h * (BOUNDS[3] - BOUNDS[1]) / size
            w = win_from_bounds(BOUNDS[0], bottom, BOUNDS[2], top, transform=src.transform)
            pop = src.read(
                1,
                window=w,
                out_shape=(h, size),
                resampling=Resampling.bilinear,
                boundless=True,
                fill_value=-99999.0,
                masked=True,
            )
            val = (pop.filled(np.nan) / cells_per_km) * rng.lognormal(0.0, 0.35, (h, size))
            val = np.where(np.isfinite(val) & (val >= 0), val, -99999.0).astype("float32")
            dst.write(val, 1, window=Window(0, r0, size, h))
    tmp.replace(raw)
    return raw


def cog_rate(raw: Path) -> tuple[Path, dict]:
    from gis.raster.store import COG_OPTIONS, write_cog_from_dataset

    cog = OUT / (raw.stem.replace("_raw", "") + "_cog.tif")
    size_mb = raw.stat().st_size / 1e6
    res: dict = {"input_mb": round(size_mb, 1)}
    for f in (cog, OUT / "gdal_cog.tif"):
        f.unlink(missing_ok=True)
    t = time.perf_counter()
    write_cog_from_dataset(raw, cog, resampling="average")
    res["gis_s"] = round(time.perf_counter() - t, 2)
    opts = {
        **COG_OPTIONS,
        "BLOCKSIZE": "512",
        "RESAMPLING": "AVERAGE",
        "OVERVIEW_RESAMPLING": "AVERAGE",
    }
    cmd = ["gdal_translate", "-q", "-of", "COG"]
    for k, v in opts.items():
        cmd += ["-co", f"{k}={v}"]
    t = time.perf_counter()
    subprocess.run(cmd + [str(raw), str(OUT / "gdal_cog.tif")], check=True)
    res["gdal_translate_s"] = round(time.perf_counter() - t, 2)
    res["gis_mb_s"] = round(size_mb / res["gis_s"], 1)
    res["gdal_translate_mb_s"] = round(size_mb / res["gdal_translate_s"], 1)
    res["gis_cog_mb"] = round(cog.stat().st_size / 1e6, 1)
    res["gdal_cog_mb"] = round((OUT / "gdal_cog.tif").stat().st_size / 1e6, 1)
    gv = subprocess.run(
        ["gdal_translate", "--version"], capture_output=True, text=True
    ).stdout.strip()
    res["gdal_translate_version"] = gv
    (OUT / "gdal_cog.tif").unlink(missing_ok=True)
    return cog, res


def parcels_gdf(n: int):
    import geopandas as gpd
    import numpy as np
    import pandas as pd

    from gis import crs as gcrs
    from gis.sample import iter_parcel_batches

    parts = list(iter_parcel_batches(n, seed=11))
    g = pd.concat(parts, ignore_index=True)
    geoms = gcrs.make_transformer("EPSG:9210").transform_geoms(g.geometry.values)
    return gpd.GeoDataFrame({"id": np.arange(1, len(g) + 1)}, geometry=list(geoms), crs="EPSG:4326")


def setup_db(cog: Path, n_parcels: int, skip_postgis: bool) -> str:
    import geopandas as gpd
    import psycopg
    import shapely

    from gis import db
    from gis.settings import Settings

    for name in ("DATABASE_URL", "PGHOST", "PGPORT", "PGDATABASE", "PGSERVICE", "PGUSER"):
        os.environ.pop(name, None)
    settings = Settings(data_dir=ROOT / "var" / "bench", database_url=None)
    base = db.resolve_dsn(settings)
    admin = base.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")
    dsn = base.rsplit("/", 1)[0] + "/" + DB
    db.migrate(dsn)
    wards = gpd.read_file(WARDS)
    parcels = parcels_gdf(n_parcels)
    with psycopg.connect(dsn) as conn:
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY admin.units (level, code, name, valid_from, source, row_hash, geom) FROM STDIN"
            ) as cp,
        ):
            for r in wards.itertuples():
                g = (
                    r.geometry
                    if r.geometry.geom_type == "MultiPolygon"
                    else shapely.MultiPolygon([r.geometry])
                )
                cp.write_row(
                    ("ward", r.code, r.fullName, "2025-07-01", "bench", "x", "SRID=4326;" + g.wkt)
                )
        conn.execute("CREATE SCHEMA bench")
        conn.execute(
            "CREATE TABLE bench.parcels (id integer PRIMARY KEY, geom geometry(Polygon, 4326))"
        )
        with conn.cursor() as cur, cur.copy("COPY bench.parcels (id, geom) FROM STDIN") as cp:
            for i, g in zip(
                parcels["id"], shapely.to_wkt(parcels.geometry.values, rounding_precision=9)
            ):
                cp.write_row((int(i), "SRID=4326;" + g))
        conn.execute("CREATE INDEX ON bench.parcels USING gist (geom)")
        conn.execute("CREATE TABLE bench.wards AS SELECT unit_id AS id, geom FROM admin.wards_2025")
        conn.execute("CREATE INDEX ON bench.wards USING gist (geom)")
        conn.execute("ANALYZE")
    parcels.to_file(OUT / "parcels.gpkg", driver="GPKG")
    if not skip_postgis:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis_raster")
        t = time.perf_counter()
        r2p = subprocess.Popen(
            [
                "raster2pgsql",
                "-q",
                "-s",
                "4326",
                "-t",
                "256x256",
                "-I",
                "-C",
                "-Y",
                str(cog),
                "bench.pop",
            ],
            stdout=subprocess.PIPE,
        )
        subprocess.run(
            ["psql", "-q", "-v", "ON_ERROR_STOP=1", dsn],
            stdin=r2p.stdout,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        r2p.wait()
        (OUT / "postgis_load_s.txt").write_text(f"{time.perf_counter() - t:.1f}")
    return dsn


# ---------------------------------------------------------------------------------------------
# methods (each run in its own process: --run METHOD --zones wards|parcels)
# ---------------------------------------------------------------------------------------------


def _cpu_s() -> float:
    import resource

    me = resource.getrusage(resource.RUSAGE_SELF)
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)  # pool workers, once joined
    return me.ru_utime + me.ru_stime + ch.ru_utime + ch.ru_stime


def _proc_cpu_s(pid: int) -> float:
    """utime + stime of a process (the PostgreSQL backend) from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


#: time and CPU when the method's libraries are imported (set by :func:`_mark`)
_MARK: dict[str, float] = {}


def _mark() -> None:
    _MARK.update(t=time.perf_counter(), cpu=_cpu_s())


def run_method(method: str, zones: str, dsn: str, cog: Path, workers: int) -> dict:
    """One method in this process: wall and CPU seconds, in total and without the imports of
    its libraries (``import_s``, ``import_cpu_s``: what a notebook or server pays once)."""
    t0, c0 = time.perf_counter(), _cpu_s()
    res = _run_method(method, zones, dsn, cog, workers)
    t1, c1 = time.perf_counter(), _cpu_s() + res.pop("backend_cpu_s", 0.0)
    tm, cm = _MARK.get("t", t0), _MARK.get("cpu", c0)
    factor = res.pop("extrapolate", 1.0)
    res["seconds"] = round(tm - t0 + (t1 - tm) * factor, 2)
    res["cpu_s"] = round(cm - c0 + (c1 - cm) * factor, 2)
    res["import_s"] = round(tm - t0, 2)
    res["import_cpu_s"] = round(cm - c0, 2)
    return res


def _run_method(method: str, zones: str, dsn: str, cog: Path, workers: int) -> dict:
    import numpy as np

    t = time.perf_counter()
    label = method
    method, _, nw = method.partition(":")
    if nw:
        workers = int(nw)
    if method in ("gis", "gis-moments"):
        import psycopg
        import rasterio

        from gis.raster.zonal import zonal_to_postgis

        _mark()

        spec = "wards-2025" if zones == "wards" else "bench.parcels:id"
        res = zonal_to_postgis(
            dsn,
            cog,
            spec,
            f"bench_{zones}_{method.replace('-', '_')}_{workers}",
            percentiles=PCT if method == "gis" else (),
            workers=workers,
            with_geometry=False,
        )
        with psycopg.connect(dsn) as conn:
            total = conn.execute(f"SELECT sum(sum) FROM {res.table}").fetchone()[0]
        n = res.n_zones
    elif method == "rasterstats":
        import geopandas
        import rasterio
        from rasterstats import zonal_stats

        _mark()
        geoms = _zones_in_memory(zones)
        limit = int(os.environ.get("RASTERSTATS_LIMIT", "0"))
        sample = limit and len(geoms) > limit
        if sample:  # rasterstats is per feature: time a sample, extrapolate linearly
            geoms = geoms.iloc[:limit]
        stats = ["count", "sum", "mean", "min", "max", "std"] + [f"percentile_{p}" for p in PCT]
        out = zonal_stats(list(geoms), str(cog), stats=stats)
        total, n = float(np.nansum([o["sum"] or 0 for o in out])), len(out)
        if sample:
            secs = time.perf_counter() - t
            return {
                "method": label,
                "zones": zones,
                "measured_seconds": round(secs, 2),
                "extrapolate": len(_zones_in_memory(zones)) / n,
                "n": n,
                "total_sum": total,
                "note": f"measured on the first {n} zones, time and CPU extrapolated linearly",
            }
    elif method == "exactextract":
        import geopandas  # noqa: F401
        import rasterio  # noqa: F401
        from exactextract import exact_extract

        _mark()
        geoms = _zones_in_memory(zones)
        df = exact_extract(
            str(cog),
            geoms.to_frame("geometry"),
            ["count", "sum", "mean", "min", "max", "stdev"],
            output="pandas",
        )
        total, n = float(df["sum"].sum()), len(df)
    elif method == "postgis":
        import psycopg

        _mark()
        table = "bench.wards" if zones == "wards" else "bench.parcels"
        with psycopg.connect(dsn) as conn:
            pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
            print(json.dumps({"backend_pid": pid}), flush=True)
            cpu0 = _proc_cpu_s(pid)
            rows = conn.execute(
                f"SELECT z.id, (ST_SummaryStatsAgg(ST_Clip(r.rast, z.geom, true), 1, true)).* "
                f"FROM {table} z JOIN bench.pop r ON ST_Intersects(r.rast, z.geom) GROUP BY z.id"
            ).fetchall()
            backend_cpu = _proc_cpu_s(pid) - cpu0
        total, n = float(sum(r[2] or 0 for r in rows)), len(rows)
        return {
            "method": label,
            "zones": zones,
            "seconds": round(time.perf_counter() - t, 2),
            "n": n,
            "total_sum": total,
            "backend_cpu_s": backend_cpu,
        }
    else:
        raise SystemExit(f"unknown method {method}")
    return {
        "method": label,
        "zones": zones,
        "seconds": round(time.perf_counter() - t, 2),
        "n": n,
        "total_sum": total,
    }


def _zones_in_memory(zones: str):
    import geopandas as gpd

    if zones == "wards":
        return gpd.read_file(WARDS).geometry
    return gpd.read_file(OUT / "parcels.gpkg").geometry


# ---------------------------------------------------------------------------------------------
# measuring
# ---------------------------------------------------------------------------------------------


def _tree_rss_kb(root: int) -> int:
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{d}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss[int(d)] = int(line.split()[1])
                        break
            children.setdefault(ppid, []).append(int(d))
        except (OSError, ValueError, IndexError):
            continue
    total, todo = 0, [root]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo.extend(children.get(p, []))
    return total


def _hwm_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure(method: str, zones: str, dsn: str, cog: Path, workers: int, timeout: float) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--run",
        method,
        "--zones",
        zones,
        "--dsn",
        dsn,
        "--cog",
        str(cog),
        "--workers",
        str(workers),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    peak = [0]
    backend = {"pid": None, "hwm": 0}
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_rss_kb(proc.pid))
            if backend["pid"]:
                backend["hwm"] = max(backend["hwm"], _hwm_kb(backend["pid"]))
            time.sleep(0.05)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    result = None
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + timeout
        for line in proc.stdout:
            d = json.loads(line)
            if "backend_pid" in d:
                backend["pid"] = d["backend_pid"]
            else:
                result = d
            if time.monotonic() > deadline:
                break
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        result = {
            "method": method,
            "zones": zones,
            "seconds": None,
            "note": f"timed out after {timeout:.0f} s",
        }
    finally:
        stop.set()
        th.join()
    result = result or {"method": method, "zones": zones, "seconds": None, "note": "failed"}
    result["peak_rss_mb"] = round(peak[0] / 1024, 0)
    if backend["hwm"]:
        result["backend_peak_rss_mb"] = round(backend["hwm"] / 1024, 0)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=10_000)
    ap.add_argument("--parcels", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--methods", default="gis,gis-moments,gis:1,rasterstats,exactextract,postgis")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument(
        "--rasterstats-limit",
        type=int,
        default=10_000,
        help="time rasterstats on the first N zones only and extrapolate (0: all)",
    )
    ap.add_argument("--repeat", type=int, default=1, help="rounds of all methods, interleaved")
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="reuse the COG and database of an earlier run (same --size and --parcels)",
    )
    ap.add_argument("--run")
    ap.add_argument(
        "--zones",
        help="with --run: the zones of one method; else the zone sets to "
        "run, comma-separated (default wards,parcels)",
    )
    ap.add_argument("--dsn")
    ap.add_argument("--cog")
    args = ap.parse_args()
    if args.run:
        print(
            json.dumps(run_method(args.run, args.zones, args.dsn, Path(args.cog), args.workers)),
            flush=True,
        )
        return
    methods = args.methods.split(",")
    os.environ["RASTERSTATS_LIMIT"] = str(args.rasterstats_limit)
    raw = make_raster(args.size)
    cog = OUT / (raw.stem.replace("_raw", "") + "_cog.tif")
    marker = OUT / f"db_{args.size}_{args.parcels}.json"
    need_pg = "postgis" in methods
    reuse = args.reuse and cog.exists()
    dsn = _reusable_db(marker, need_pg) if reuse else None
    cog_res = None
    if not reuse:
        cog, cog_res = cog_rate(raw)
        print(f"COG writing: {cog_res}", flush=True)
    if dsn is None:
        dsn = setup_db(cog, args.parcels, not need_pg)
        marker.write_text(json.dumps({"dsn": dsn, "postgis_raster": need_pg}))
    results = []
    for rnd in range(args.repeat):
        for zones in (args.zones or "wards,parcels").split(","):
            for m in methods:
                r = measure(m, zones, dsn, cog, args.workers, args.timeout)
                r["round"] = rnd + 1
                r["load_average_1m"] = round(os.getloadavg()[0], 2)
                print(json.dumps(r), flush=True)
                results.append(r)
    doc = {
        "size": args.size,
        "parcels": args.parcels,
        "workers": args.workers,
        "repeat": args.repeat,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "cog": cog_res,
        "postgis_load_s": (OUT / "postgis_load_s.txt").read_text()
        if (OUT / "postgis_load_s.txt").exists()
        else None,
        "results": results,
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    doc["load_average"] = os.getloadavg()
    zones_tag = (args.zones or "wards,parcels").replace(",", "-")
    out = ROOT / "bench" / "out" / f"raster_bench_{zones_tag}.json"
    out.write_text(json.dumps(doc, indent=2))
    print(f"wrote {out}")
    print(summary_table(results))


def _reusable_db(marker: Path, need_pg: bool) -> str | None:
    """The DSN of an earlier run's database when it is still there (and has the raster loaded
    if PostGIS is measured); None otherwise."""
    import psycopg

    from gis.errors import GisError

    if not marker.exists():
        return None
    info = json.loads(marker.read_text())
    if need_pg and not info.get("postgis_raster"):
        return None
    try:
        from gis import db
        from gis.settings import Settings

        for name in ("DATABASE_URL", "PGHOST", "PGPORT", "PGDATABASE", "PGSERVICE", "PGUSER"):
            os.environ.pop(name, None)
        db.resolve_dsn(Settings(data_dir=ROOT / "var" / "bench", database_url=None))
        with psycopg.connect(info["dsn"]) as conn:
            conn.execute("SELECT 1 FROM bench.parcels LIMIT 1")
            if need_pg:
                conn.execute("SELECT 1 FROM bench.pop LIMIT 1")
    except (psycopg.Error, OSError, GisError) as exc:  # gone or incomplete: set up again
        print(f"not reusing the database: {exc}", flush=True)
        return None
    print(f"reusing {info['dsn']}", flush=True)
    return info["dsn"]


def summary_table(results: list[dict]) -> str:
    """Markdown: per zone set and method, median and best wall time and CPU, peak memory."""
    import statistics

    groups: dict[tuple[str, str], list[dict]] = {}
    for r in results:
        groups.setdefault((r["zones"], r["method"]), []).append(r)
    lines = [
        (
            "| zones | method | runs | time median (best) s | without imports | "
            "CPU median (best) s | without imports | peak RSS MB | sum of sums |"
        ),
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (zones, method), rs in groups.items():
        secs = [r["seconds"] for r in rs if r.get("seconds") is not None]
        cpus = [r["cpu_s"] for r in rs if r.get("cpu_s") is not None]
        mem = max((r.get("peak_rss_mb") or 0) for r in rs)
        be = max((r.get("backend_peak_rss_mb") or 0) for r in rs)

        def med(xs):
            return f"{statistics.median(xs):.2f} ({min(xs):.2f})" if xs else "-"

        t, c = med(secs), med(cpus)
        t2 = med([r["seconds"] - r.get("import_s", 0) for r in rs if r.get("seconds") is not None])
        c2 = med([r["cpu_s"] - r.get("import_cpu_s", 0) for r in rs if r.get("cpu_s") is not None])
        note = " (extrapolated)" if any("note" in r for r in rs) else ""
        lines.append(
            f"| {zones} | {method}{note} | {len(secs)} | {t} | {t2} | {c} | {c2} | {mem:.0f}"
            + (f" + {be:.0f}" if be else "")
            + f" | {rs[-1].get('total_sum', '-')} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
