"""Benchmark of the analysis network code (gis.analysis.network) against plain networkx.

Two workloads, each on two graphs:

* **health access**: the road travel time from every origin to the nearest of N hospitals. Origins:
  every populated WorldPop 1 km cell of the HCMC clip, and a synthetic 100 m grid. Ours: ONE
  multi-source Dijkstra (scipy.sparse.csgraph, hospitals as virtual sources) + vectorised lookups.
  Baseline (osmnx-style, networkx): one single-source Dijkstra per hospital
  (``nx.single_source_dijkstra_path_length`` on the reversed graph), element-wise minimum.
* **ward OD matrix**: travel times between the centroids of the 322 wards of 2019. Ours: csgraph
  Dijkstra over origin chunks. Baseline: one ``single_source_dijkstra_path_length`` per origin.

Graphs: the real roads (UrbanReflex OSM RoadSegment + CSL District 7 network, read from the shared
files, directed with one-way streets) and a synthetic city-scale grid of streets (200 x 200
junctions, 100 m apart, classes by row). Both implementations use the same snapping and connectors,
so the results must be equal (max |difference| is reported).

Each measurement runs in its own process: time (wall), peak RSS of the process and the RSS growth
during the computation (psutil sampling), after the inputs are loaded.

    .venv/bin/python bench/analysis_bench.py            # everything (a few minutes)
    .venv/bin/python bench/analysis_bench.py --quick    # smaller synthetic grid
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

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data" / "hcmc"
OUT = ROOT / "bench" / "out"


# --- inputs -------------------------------------------------------------------------------------
def real_roads():
    import geopandas as gpd
    import pandas as pd

    osm = gpd.read_file(SHARED / "urbanreflex" / "RoadSegment.geojson")
    osm = gpd.GeoDataFrame({"road_class": osm["roadType"], "oneway": osm["oneway"].fillna(0).astype(float) > 0,
                            "maxspeed_kmh": pd.to_numeric(osm["maximumAllowedSpeed"], errors="coerce"),
                            "width_m": pd.to_numeric(osm["width"], errors="coerce")}, geometry=osm.geometry)
    csl = gpd.read_file(SHARED / "csl-saigon-peninsula" / "GIS" / "road_network" / "shapefile" / "RoadNetwork_WGS84.shp")
    csl = gpd.GeoDataFrame({"road_class": csl["Type"], "oneway": False, "maxspeed_kmh": np.nan,
                            "width_m": csl["RoadWidth"]}, geometry=csl.geometry.to_crs(4326))
    return pd.concat([osm, csl], ignore_index=True).set_crs(4326, allow_override=True)


def synthetic_roads(n: int):
    """A grid of n x n junctions 100 m apart around HCMC's centre; every 10th street is primary,
    every 5th secondary, the rest residential; one in 7 residential streets is one-way."""
    import geopandas as gpd
    import shapely

    x0, y0, step = 680_000.0, 1_190_000.0, 100.0
    lines, cls, oneway = [], [], []
    for i in range(n):
        for horizontal in (True, False):
            pts = [(x0 + j * step, y0 + i * step) if horizontal else (x0 + i * step, y0 + j * step) for j in range(n)]
            c = "primary" if i % 10 == 0 else "secondary" if i % 5 == 0 else "residential"
            for a, b in zip(pts, pts[1:]):
                lines.append(shapely.LineString([a, b]))
                cls.append(c)
                oneway.append(c == "residential" and i % 7 == 3)
    return gpd.GeoDataFrame({"road_class": cls, "oneway": oneway}, geometry=lines, crs=32648)


def worldpop_points():
    from gis.analysis import population

    cells = population.worldpop_cells(SHARED / "geoglue-kraemer" / "worldpop" / "hcmc_clip_vnm_ppp_2020_1km_UNadj.tif")
    return population.population_points(cells)


def grid_points(bounds, step=100.0):
    import geopandas as gpd

    minx, miny, maxx, maxy = bounds
    xs, ys = np.meshgrid(np.arange(minx, maxx, step), np.arange(miny, maxy, step))
    return gpd.GeoDataFrame(geometry=gpd.points_from_xy(xs.ravel(), ys.ravel()), crs=32648)


def hospitals_real():
    import geopandas as gpd

    poi = gpd.read_file(SHARED / "urbanreflex" / "PointOfInterest.geojson")
    return poi[poi["category"].astype(str).str.contains("hospital")]


def ward_centroids():
    import geopandas as gpd

    from gis.analysis.logistics import zone_centroids

    w = gpd.read_file(SHARED / "vn-demographic" / "CityScope_HCMC" / "Population_Ward_Level.shp")
    w = w.rename(columns={"Com_ID": "code", "Com_Name": "name"}).to_crs(4326)
    return zone_centroids(w)


# --- the case runner (one process per measurement) ----------------------------------------------
class PeakRSS:
    """Samples this process's RSS every 5 ms while the block runs."""

    def __enter__(self):
        import psutil

        self.proc = psutil.Process()
        self.start = self.peak = self.proc.memory_info().rss
        self.stop = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()
        return self

    def _run(self):
        while not self.stop:
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.005)

    def __exit__(self, *exc):
        self.stop = True
        self.t.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def _nx_to_nearest(G, fnodes, fconn, n):
    """Baseline: one Dijkstra per facility on the reversed graph; min over facilities."""
    import networkx as nx

    R = G.reverse(copy=False) if G.is_directed() else G
    best = np.full(n, np.inf)
    for node, c in zip(fnodes, fconn):
        d = nx.single_source_dijkstra_path_length(R, int(node), weight="time")
        idx = np.fromiter(d.keys(), dtype=np.int64, count=len(d))
        val = np.fromiter(d.values(), dtype=float, count=len(d)) + c
        np.minimum.at(best, idx, val)
    return best


def _nx_od(G, onodes, oconn, dnodes, dconn):
    import networkx as nx

    out = np.full((len(onodes), len(dnodes)), np.nan)
    for i, (node, c) in enumerate(zip(onodes, oconn)):
        d = nx.single_source_dijkstra_path_length(G, int(node), weight="time")
        out[i] = [d.get(int(t), np.nan) + c + dc for t, dc in zip(dnodes, dconn)]
    return out


def run_case(case: str, impl: str, quick: bool) -> dict:
    import scipy.sparse.csgraph  # noqa: F401 - imports are not part of the measured work
    import scipy.spatial  # noqa: F401

    from gis.analysis import network
    from gis.analysis._common import point_xy

    graph_name, work = case.split(":")
    roads = real_roads() if graph_name == "real" else synthetic_roads(120 if quick else 200)
    g = network.build_graph(roads, directed=True)
    if work.startswith("access"):
        if graph_name == "real":
            fac = hospitals_real()
        else:
            rng = np.random.default_rng(7)
            fac = g.edges_frame().sample(50, random_state=rng).representative_point().to_frame("geometry")
        if work == "access-worldpop":
            pts = worldpop_points()
        else:
            bounds = g.xy.min(axis=0).tolist() + g.xy.max(axis=0).tolist()
            pts = grid_points(bounds)
        pxy, fxy = point_xy(pts), point_xy(fac)
        G = g.to_networkx() if impl == "nx" else None
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            if impl == "ours":
                res, _ = network.nearest_facility_times(g, pxy, fxy, max_snap_m=None)
            else:
                fs, ps = g.snap(fxy), g.snap(pxy)
                node_t = _nx_to_nearest(G, fs.node, fs.dist_m / g.connector_mps, g.n_nodes)
                res = node_t[ps.node] + ps.dist_m / g.connector_mps
                network._same_node_direct(g, ps, fs, res, np.full(len(res), -1))
                res = np.where(np.isfinite(res), res, np.nan)
            took = time.perf_counter() - t0
        size = {"origins": len(pxy), "facilities": len(fxy)}
    else:  # od
        c = ward_centroids()
        xy = point_xy(c)
        G = g.to_networkx() if impl == "nx" else None
        if graph_name == "synthetic":  # the wards' shape moved onto the synthetic city
            lo, hi = xy.min(axis=0), xy.max(axis=0)
            glo, ghi = g.xy.min(axis=0), g.xy.max(axis=0)
            xy = glo + (xy - lo) / (hi - lo) * (ghi - glo)
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            if impl == "ours":
                res = network.od_matrix(g, xy, max_snap_m=None, unreachable="nan")
            else:
                s = g.snap(xy)
                conn = s.dist_m / g.connector_mps
                res = _nx_od(G, s.node, conn, s.node, conn)
                same = s.node[:, None] == s.node[None, :]
                direct = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1)) / g.connector_mps
                res = np.where(same, np.fmin(res, direct), res)
            took = time.perf_counter() - t0
        size = {"origins": len(xy), "destinations": len(xy)}
    np.save(OUT / f"analysis-{graph_name}-{work}-{impl}.npy", res)
    return {"case": case, "impl": impl, "seconds": took, "peak_rss_mb": mem.peak / 2**20,
            "rss_growth_mb": (mem.peak - mem.start) / 2**20, "nodes": g.n_nodes, "edges": g.n_edges, **size}


CASES = ["real:access-worldpop", "real:access-grid100m", "real:od-wards",
         "synthetic:access-grid100m", "synthetic:od-wards"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a 120 x 120 synthetic grid instead of 200 x 200")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--impl", help=argparse.SUPPRESS)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.case:
        print(json.dumps(run_case(args.case, args.impl, args.quick)))
        return
    results = []
    for case in CASES:
        row = {}
        for impl in ("ours", "nx"):
            cmd = [sys.executable, __file__, "--case", case, "--impl", impl] + (["--quick"] if args.quick else [])
            r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
            row[impl] = r
        g, w = case.split(":")
        a = np.load(OUT / f"analysis-{g}-{w}-ours.npy")
        b = np.load(OUT / f"analysis-{g}-{w}-nx.npy")
        both = np.isfinite(a) & np.isfinite(b)
        row["equal_reachability"] = bool((np.isfinite(a) == np.isfinite(b)).all())
        row["max_abs_diff_s"] = float(np.abs(a[both] - b[both]).max()) if both.any() else 0.0
        row["speedup"] = row["nx"]["seconds"] / row["ours"]["seconds"]
        results.append(row)
        o, n = row["ours"], row["nx"]
        print(f"{case:<28} nodes {o['nodes']:>6} | ours {o['seconds']:8.3f} s, +{o['rss_growth_mb']:6.1f} MB "
              f"(peak {o['peak_rss_mb']:6.0f}) | networkx {n['seconds']:8.2f} s, +{n['rss_growth_mb']:6.1f} MB "
              f"(peak {n['peak_rss_mb']:6.0f}) | x{row['speedup']:.0f} | max|diff| {row['max_abs_diff_s']:.2e} s "
              f"| same reach {row['equal_reachability']}", flush=True)
    env = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()}
    try:
        import networkx
        import scipy

        env.update(scipy=scipy.__version__, networkx=networkx.__version__)
    except ImportError:  # pragma: no cover
        pass
    (OUT / "analysis.json").write_text(json.dumps({"env": env, "results": results}, indent=1))
    print(f"results: {OUT / 'analysis.json'}")


if __name__ == "__main__":
    main()
