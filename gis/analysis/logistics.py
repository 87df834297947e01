"""Logistics and transport: travel-time matrices, service areas, OD flows, facility location.

The road graph, snapping and travel times are those of :mod:`gis.analysis.network`. Ward
"centroids" are centroids computed in UTM 48N (the representative point when the centroid falls
outside the ward).
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd

from gis.analysis._common import (
    METRIC_CRS,
    STORAGE_CRS,
    EmptyInputError,
    centroids,
    check_choice,
    check_range,
    check_thresholds,
    point_xy,
    require_columns,
    require_rows,
    stamp,
)
from gis.errors import InputError, NotFoundError

__all__ = ["od_flows", "od_travel_times", "p_median", "service_areas", "zone_centroids"]


def zone_centroids(zones, zone_key: str = "code"):
    """Centroids of zones as points (lon/lat), with ``zone_key`` and ``name``."""
    import geopandas as gpd

    require_rows(zones, "The zone layer")
    z = zones.reset_index() if zone_key not in zones.columns else zones.reset_index(drop=True)
    cols = [zone_key] + (["name"] if "name" in z else []) + (["population"] if "population" in z else [])
    return gpd.GeoDataFrame(z[cols].copy(), geometry=centroids(z).values, crs=STORAGE_CRS)


def od_travel_times(zones, graph, *, zone_key: str = "code", unreachable: str = "nan",
                    max_snap_m: float = 2000.0, client=None, progress=None):
    """Travel-time matrix between zone (ward) centroids by road, in long form.

    Parameters
    ----------
    zones : GeoDataFrame
        Wards or districts with ``zone_key``.
    graph : RoadGraph
    unreachable : {"nan", "error"}
        Pairs off the road graph give NaN (counted in ``attrs``), or raise
        :class:`~gis.analysis._common.NoRouteError`.
    client : optional
        Dask client or scheduler name (origin chunks).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per (origin, destination): ``origin``, ``destination``, ``time_min``,
        ``straight_km``, ``speed_kmh`` (straight_km / time: the effective speed), and a straight
        line between the centroids. :func:`matrix_frame` turns it into a square matrix.
    """
    import geopandas as gpd
    import shapely

    from gis.analysis import network as net

    check_range("max_snap_m", max_snap_m, 0, 50_000, lo_open=True)
    c = zone_centroids(zones, zone_key)
    xy = point_xy(c)
    labels = c[zone_key].astype(str).tolist()
    m = net.od_matrix(graph, xy, max_snap_m=max_snap_m, unreachable=unreachable, origin_labels=labels,
                      destination_labels=labels, client=client, progress=progress)
    k = len(c)
    oi, dj = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    oi, dj = oi.ravel(), dj.ravel()
    straight = np.hypot(*(xy[oi] - xy[dj]).T) / 1000.0
    t = m.ravel() / 60.0
    with np.errstate(invalid="ignore", divide="ignore"):
        speed = np.where(t > 0, straight / (t / 60.0), np.nan)
    lines = shapely.linestrings(np.stack([xy[oi], xy[dj]], axis=1))
    out = gpd.GeoDataFrame({"origin": c[zone_key].to_numpy()[oi], "destination": c[zone_key].to_numpy()[dj],
                            "time_min": t, "straight_km": straight,
                            "speed_kmh": speed},
                           geometry=gpd.GeoSeries(lines, crs=METRIC_CRS)).to_crs(STORAGE_CRS)
    return stamp(out, analysis="logistics.od-matrix", title="Travel times between ward centroids",
                 columns={"time_min": ("min", "fastest road travel time origin -> destination"),
                          "straight_km": ("km", "straight-line distance between the centroids"),
                          "speed_kmh": ("km/h", "straight_km / time (effective speed)")},
                 assumptions=["Centroids computed in UTM 48N; the representative point when the centroid "
                              "falls outside the ward.",
                              "Road times: gis.analysis.network class speeds, connectors at "
                              f"{graph.connector_speed_kmh:g} km/h; points sharing a node are joined directly."],
                 parameters={"max_snap_m": max_snap_m, "unreachable": unreachable},
                 n_zones=k, unreachable_pairs=int(np.isnan(m).sum()),
                 zones_off_network=int((~graph.snap(xy, max_snap_m).ok).sum()), graph=graph.summary())


def matrix_frame(long) -> pd.DataFrame:
    """The long OD table of :func:`od_travel_times` as a square matrix (minutes)."""
    return long.pivot(index="origin", columns="destination", values="time_min")


def service_areas(facilities, graph, *, minutes=(10, 20, 30), buffer_m: float = 100.0,
                  max_snap_m: float = 2000.0, per_facility: bool = False, population=None,
                  direction: str = "from"):
    """Service areas (isochrones): the area within each travel time of the facilities.

    Parameters
    ----------
    facilities : GeoDataFrame
        Any points (hospitals, depots, candidate sites).
    graph : RoadGraph
    minutes : sequence of float
        Thresholds (each in (0, 600]).
    buffer_m : float
        Width of the band along reached roads counted as served (the last stretch off the road).
    per_facility : bool
        One area per facility and threshold instead of one per threshold.
    population : GeoDataFrame, optional
        Population points: adds the people inside each area.
    direction : {"from", "to"}
        Travel from the facility (deliveries, ambulances) or to it.

    Returns
    -------
    geopandas.GeoDataFrame
        ``minutes``, (``facility``), ``area_km2``, (``population``), polygon geometry.
    """
    import geopandas as gpd
    import shapely

    from gis.analysis import network as net

    mins = check_thresholds("minutes", minutes, 0, 600)
    check_range("buffer_m", buffer_m, 0, 5000, lo_open=True)
    require_rows(facilities, "The facility set", "It has no points.")
    fxy = point_xy(facilities)
    snap = graph.snap(fxy, max_snap_m)
    if not snap.ok.any():
        raise EmptyInputError(f"None of the {len(fxy)} facilities is within {max_snap_m:g} m of the "
                              "road graph: no service area can be drawn.")
    rows = []
    groups = [(None, np.arange(len(fxy)))] if not per_facility else [(fid, np.array([i]))
                                                                       for i, fid in enumerate(facilities.index)]
    for fid, idx in groups:
        if not snap.ok[idx].any():
            continue
        polys = net.service_area_polygons(graph, fxy[idx], mins, max_snap_m=max_snap_m, buffer_m=buffer_m,
                                          direction=direction)
        for mm, poly in zip(mins, polys):
            rows.append({"facility": fid, "minutes": mm, "area_km2": poly.area / 1e6, "geometry": poly})
    out = gpd.GeoDataFrame(rows, geometry="geometry", crs=METRIC_CRS)
    if not per_facility:
        out = out.drop(columns="facility")
    if population is not None and len(population):
        pts = population.to_crs(METRIC_CRS)
        pop = pts["population"].to_numpy(dtype=float)
        geoms = np.asarray(pts.geometry.values)
        out["population"] = [float(pop[shapely.contains(g, geoms)].sum()) for g in out.geometry.values]
    out = out.to_crs(STORAGE_CRS)
    return stamp(out, analysis="logistics.service-areas", title="Service areas (isochrones)",
                 columns={"minutes": ("min", "travel-time threshold"),
                          "area_km2": ("km2", "area within the threshold (UTM 48N)"),
                          "population": ("persons", "people (population points) inside the area")},
                 assumptions=["Reached roads (cut where the time runs out) are buffered by "
                              f"{buffer_m:g} m and dissolved.",
                              "Road times: gis.analysis.network class speeds."],
                 parameters={"minutes": mins, "buffer_m": buffer_m, "max_snap_m": max_snap_m,
                             "per_facility": per_facility, "direction": direction},
                 facilities_off_network=int((~snap.ok).sum()), graph=graph.summary())


# --- OD flows -----------------------------------------------------------------------------------
#: Known survey layouts: (origin column, destination column, flow column, unit).
OD_LAYOUTS = (
    ("Start_Code", "End_Code", "NumberFlow", "trips (survey records)"),
    ("Start", "End", "Quantity_M", "as in the survey (Quantity_M)"),
)


def read_od_flows(path: str | Path):
    """Read an OD survey file (shapefile, GeoPackage, CSV) and find its columns.

    Returns
    -------
    (DataFrame, (origin_col, destination_col, flow_col, unit))
    """
    import pyogrio

    p = Path(path)
    if not p.exists():
        raise NotFoundError(f"The OD survey file {p} does not exist.")
    try:
        df = pyogrio.read_dataframe(p, read_geometry=False)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError):
        raise InputError(f"{p.name} is not a table GDAL can read.") from None
    for o, d, f, unit in OD_LAYOUTS:
        if {o, d, f} <= set(df.columns):
            return df, (o, d, f, unit)
    raise InputError(f"{p.name}: no known OD columns (expected one of "
                     + "; ".join(f"{o}/{d}/{f}" for o, d, f, _ in OD_LAYOUTS) + f"); it has {', '.join(df.columns)}.")


def _match_zones(values: pd.Series, zones: pd.DataFrame, zone_key: str) -> pd.Series:
    """Map survey zone identifiers to zone codes: by code, else by folded name."""
    from gis.analysis.population import _district_key, _unit_key

    codes = set(zones[zone_key].astype(str))
    v = values.astype(str).str.strip().str.replace(r"\.0$", "", regex=True)
    if v.isin(codes).mean() > 0.5:
        return v.where(v.isin(codes))
    names = {}
    for code, name in zip(zones[zone_key].astype(str), zones["name"].astype(str)):
        for key in {_unit_key(name), _district_key(name)}:
            names.setdefault(key, set()).add(code)
    def one(x):
        for key in (_unit_key(x), _district_key(x)):
            c = names.get(key)
            if c and len(c) == 1:
                return next(iter(c))
        return None
    return v.map(one)


def od_flows(flows, zones, *, zone_key: str = "code", level: str = "zone", origin_column=None,
             destination_column=None, flow_column=None, unit: str | None = None):
    """Survey OD flows summarised per zone or per corridor (unordered zone pair).

    Parameters
    ----------
    flows : DataFrame or path
        The survey table (e.g. ``2014_HIDS_OD_Matrix.shp``: Start_Code, End_Code, NumberFlow; or
        ``Survey_OD.shp``: Start, End, Quantity_M); a path is read with :func:`read_od_flows`.
    zones : GeoDataFrame
        Zones the survey refers to (2019 wards for ward codes, districts for district names).
    level : {"zone", "corridor"}

    Returns
    -------
    geopandas.GeoDataFrame
        ``zone``: per zone ``outgoing``, ``incoming``, ``internal``, ``total`` (outgoing + incoming -
        internal), zone geometry. ``corridor``: per unordered pair ``zone_a``, ``zone_b``,
        ``flow_ab``, ``flow_ba``, ``total``, ``straight_km`` and a line between the centroids; sorted by
        total. ``attrs`` counts the rows whose zones were not found.
    """
    import geopandas as gpd
    import shapely

    check_choice("level", level, ("zone", "corridor"))
    if isinstance(flows, (str, Path)):
        flows, (o, d, f, u) = read_od_flows(flows)
    else:
        o, d, f, u = origin_column, destination_column, flow_column, unit or "as in the input"
        if not all((o, d, f)):
            for lo, ld, lf, lu in OD_LAYOUTS:
                if {lo, ld, lf} <= set(flows.columns):
                    o, d, f, u = lo, ld, lf, lu
                    break
    require_rows(flows, "The OD survey table")
    require_columns(flows, [o, d, f], "The OD survey table")
    require_rows(zones, "The zone layer")
    z = zones.reset_index() if zone_key not in zones.columns else zones.reset_index(drop=True)
    z[zone_key] = z[zone_key].astype(str)
    ozone = _match_zones(flows[o], z, zone_key)
    dzone = _match_zones(flows[d], z, zone_key)
    qty = pd.to_numeric(flows[f], errors="coerce").fillna(0.0).to_numpy(dtype=float)
    ok = ozone.notna().to_numpy() & dzone.notna().to_numpy()
    df = pd.DataFrame({"o": ozone[ok].to_numpy(), "d": dzone[ok].to_numpy(), "q": qty[ok]})
    facts = {"rows": len(flows), "rows_matched": int(ok.sum()), "flow_total": float(qty.sum()),
             "flow_matched": float(df["q"].sum()), "unit": u}
    if not len(df):
        raise EmptyInputError("None of the OD survey's zones matches the zone layer (by code or name): "
                              "use the zones the survey refers to (2019 wards or districts).")
    cent = zone_centroids(z, zone_key).to_crs(METRIC_CRS)
    cxy = dict(zip(cent[zone_key], shapely.get_coordinates(cent.geometry.values)))
    if level == "zone":
        out_ = df.groupby("o")["q"].sum()
        in_ = df.groupby("d")["q"].sum()
        internal = df[df["o"] == df["d"]].groupby("o")["q"].sum()
        res = z[[zone_key] + (["name"] if "name" in z else []) + ["geometry"]].copy()
        res["outgoing"] = res[zone_key].map(out_).fillna(0.0)
        res["incoming"] = res[zone_key].map(in_).fillna(0.0)
        res["internal"] = res[zone_key].map(internal).fillna(0.0)
        res["total"] = res["outgoing"] + res["incoming"] - res["internal"]
        res = res[res["total"] > 0].sort_values("total", ascending=False).reset_index(drop=True)
        res = gpd.GeoDataFrame(res, geometry="geometry", crs=zones.crs).to_crs(STORAGE_CRS)
        cols = {c: (u, t) for c, t in (("outgoing", "flow leaving the zone"), ("incoming", "flow arriving"),
                                       ("internal", "flow within the zone"),
                                       ("total", "outgoing + incoming - internal"))}
        title = "OD survey flows per zone"
    else:
        a = np.where(df["o"] <= df["d"], df["o"], df["d"])
        b = np.where(df["o"] <= df["d"], df["d"], df["o"])
        df = df.assign(a=a, b=b, ab=np.where(df["o"] == a, df["q"], 0.0), ba=np.where(df["o"] == a, 0.0, df["q"]))
        df.loc[df["a"] == df["b"], "ba"] = 0.0
        g = df.groupby(["a", "b"]).agg(flow_ab=("ab", "sum"), flow_ba=("ba", "sum")).reset_index()
        g["total"] = g["flow_ab"] + g["flow_ba"]
        pa = np.array([cxy[x] for x in g["a"]])
        pb = np.array([cxy[x] for x in g["b"]])
        g["straight_km"] = np.hypot(*(pa - pb).T) / 1000.0
        names = dict(zip(z[zone_key], z["name"])) if "name" in z else {}
        g.insert(1, "name_a", g["a"].map(names))
        g.insert(3, "name_b", g["b"].map(names))
        g = g.rename(columns={"a": "zone_a", "b": "zone_b"})
        res = gpd.GeoDataFrame(g, geometry=gpd.GeoSeries(shapely.linestrings(np.stack([pa, pb], axis=1)),
                                                         crs=METRIC_CRS)).to_crs(STORAGE_CRS)
        res = res.sort_values("total", ascending=False).reset_index(drop=True)
        cols = {"flow_ab": (u, "flow from zone_a to zone_b"), "flow_ba": (u, "flow from zone_b to zone_a"),
                "total": (u, "flow_ab + flow_ba"), "straight_km": ("km", "distance between the centroids")}
        title = "OD survey flows per corridor"
    return stamp(res, analysis="logistics.od-flows", title=title, columns=cols,
                 assumptions=["Survey zones are matched to the zone layer by code, else by name "
                              "(diacritics and prefixes such as Phường / Ward / District ignored).",
                              "A corridor is an unordered pair of zones; internal flows are corridors of a zone "
                              "with itself."],
                 parameters={"level": level, "origin_column": o, "destination_column": d, "flow_column": f},
                 **facts)


# --- facility location --------------------------------------------------------------------------
def _objective(C: np.ndarray, w: np.ndarray, base: np.ndarray, chosen) -> float:
    cur = base if not len(chosen) else np.minimum(base, C[list(chosen)].min(axis=0))
    return float(w @ cur)


def p_median(demand, candidates, graph, k: int, *, existing=None, method: str = "auto",
             coverage_min: float = 15.0, penalty_min: float = 120.0, max_snap_m: float = 2000.0,
             max_combinations: int = 50_000, client=None, progress=None):
    """Choose ``k`` sites among candidates that minimise population-weighted travel time (p-median).

    Parameters
    ----------
    demand : GeoDataFrame
        Population points (``population``).
    candidates : GeoDataFrame
        Candidate sites (points or polygons: their representative point).
    graph : RoadGraph
    k : int
        Sites to open (1 <= k <= number of candidates).
    existing : GeoDataFrame, optional
        Facilities already open: each demand point is served by the nearest of the existing and
        the new sites.
    method : {"auto", "greedy", "exact"}
        ``exact`` enumerates every combination (refused beyond ``max_combinations``); ``greedy``
        adds the best site one at a time then improves by vertex substitution (Teitz-Bart);
        ``auto``: exact when the combinations are at most ``max_combinations``.
    coverage_min : float
        Threshold of the coverage reported before and after (population within this time).
    penalty_min : float
        Time counted for demand that no site reaches (off the network or disconnected).

    Returns
    -------
    geopandas.GeoDataFrame
        The chosen sites in order of choice: ``rank``, ``candidate`` (index of ``candidates``),
        ``name``, ``served_population`` (demand for which it is the nearest), geometry.
        ``attrs["summary"]``: mean time and coverage before and after, objective, method.
    """
    import geopandas as gpd

    from gis.analysis import network as net

    check_choice("method", method, ("auto", "greedy", "exact"))
    require_rows(demand, "The demand (population points)")
    require_rows(candidates, "The candidate set", "It has no points.")
    require_columns(demand, ["population"], "The demand")
    n_cand = len(candidates)
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool):
        raise InputError(f"k must be an integer; got {k!r}.")
    if k < 1 or k > n_cand:
        raise InputError(f"k must be between 1 and the number of candidates ({n_cand}); got {k}.")
    check_range("coverage_min", coverage_min, 0, 600, lo_open=True)
    check_range("penalty_min", penalty_min, 0, 10_000, lo_open=True)
    dxy, cxy = point_xy(demand), point_xy(candidates)
    w = demand["population"].to_numpy(dtype=float)
    pen = penalty_min * 60.0
    # time from every demand point to every candidate (searched from the candidates)
    C = net.od_matrix(graph, cxy, dxy, max_snap_m=max_snap_m, unreachable="nan", direction="to",
                      client=client, progress=progress)
    C = np.where(np.isnan(C), pen, np.minimum(C, pen))
    if existing is not None and len(existing):
        t0, _ = net.nearest_facility_times(graph, dxy, point_xy(existing), max_snap_m=max_snap_m)
        base = np.where(np.isnan(t0), pen, np.minimum(t0, pen))
    else:
        base = np.full(len(dxy), pen)
    combos = math.comb(n_cand, int(k))
    if method == "exact" and combos > max_combinations:
        raise InputError(f"method='exact' would try {combos:,} combinations (C({n_cand}, {k})), more than "
                         f"max_combinations={max_combinations:,}: use method='greedy' or fewer candidates.")
    use_exact = method == "exact" or (method == "auto" and combos <= max_combinations)
    if use_exact:
        best, best_v = None, np.inf
        batch = max(1, int(2e7 // max(1, k * len(dxy))))
        it = itertools.combinations(range(n_cand), int(k))
        while True:
            chunk = list(itertools.islice(it, batch))
            if not chunk:
                break
            arr = np.array(chunk)
            cur = np.minimum(base[None, :], C[arr].min(axis=1))
            vals = cur @ w
            i = int(np.argmin(vals))
            if vals[i] < best_v - 1e-9:
                best_v, best = float(vals[i]), list(chunk[i])
        # order the exact set by greedy marginal gain for the report
        order, rest = [], list(best)
        while rest:
            j = min(rest, key=lambda c: _objective(C, w, base, order + [c]))
            order.append(j)
            rest.remove(j)
        chosen, used = order, "exact"
    else:
        chosen = []
        cur = base.copy()
        for _ in range(int(k)):
            vals = np.minimum(cur[None, :], C).dot(w)
            vals[chosen] = np.inf
            j = int(np.argmin(vals))
            chosen.append(j)
            cur = np.minimum(cur, C[j])
        # vertex substitution: swap a chosen site for an unchosen one while it helps
        improved = True
        while improved:
            improved = False
            cur_v = _objective(C, w, base, chosen)
            for pos in range(len(chosen)):
                others = chosen[:pos] + chosen[pos + 1:]
                rest_t = base if not others else np.minimum(base, C[others].min(axis=0))
                vals = np.minimum(rest_t[None, :], C).dot(w)
                vals[chosen] = np.inf
                j = int(np.argmin(vals))
                if vals[j] < cur_v - 1e-6:
                    chosen[pos] = j
                    cur_v = float(vals[j])
                    improved = True
        used = "greedy + vertex substitution"
    after = np.minimum(base, C[chosen].min(axis=0))
    nearest = np.argmin(C[chosen], axis=0)
    served_by_new = C[chosen].min(axis=0) < base
    served = np.bincount(nearest[served_by_new], weights=w[served_by_new], minlength=len(chosen))
    tot = w.sum()
    cov = coverage_min * 60.0

    def summary(t):
        return {"mean_time_min": float((w @ np.minimum(t, pen)) / tot / 60.0) if tot > 0 else None,
                "coverage": float(w[t <= cov].sum() / tot) if tot > 0 else None,
                "population_covered": float(w[t <= cov].sum())}

    ids = candidates.index.to_numpy()
    names = candidates["name"].astype(object).to_numpy() if "name" in candidates else np.full(n_cand, None)
    geo = gpd.GeoSeries(gpd.points_from_xy(cxy[chosen, 0], cxy[chosen, 1]), crs=METRIC_CRS).to_crs(STORAGE_CRS)
    out = gpd.GeoDataFrame({"rank": np.arange(1, len(chosen) + 1), "candidate": ids[chosen],
                            "name": names[chosen], "served_population": served}, geometry=geo.values)
    before_s, after_s = summary(base), summary(after)
    return stamp(out, analysis="logistics.p-median", title=f"p-median: {k} new site(s)",
                 columns={"served_population": ("persons", "demand for which the site is now the nearest"),
                          "rank": (None, "order of choice (greedy marginal gain)")},
                 assumptions=["Demand travels to the nearest open site by road (gis.analysis.network).",
                              f"Demand no site reaches counts {penalty_min:g} min.",
                              f"Coverage: population within {coverage_min:g} min of an open site."],
                 parameters={"k": int(k), "method": method, "coverage_min": coverage_min,
                             "penalty_min": penalty_min, "max_snap_m": max_snap_m},
                 summary={"method": used, "candidates": n_cand, "combinations": combos,
                          "objective_person_min": float(w @ after) / 60.0, "before": before_s, "after": after_s,
                          "existing_facilities": 0 if existing is None else len(existing)})
