"""Health access: nearest hospital, population within distance and time, 2SFCA, underserved wards.

Inputs are population points (:func:`gis.analysis.population.population_points`: WorldPop cells
cut by wards, or any points with a ``population`` column such as residential parcels), facilities
(``city.poi`` of category hospital / clinic: :func:`gis.analysis.layers.load_facilities`) and a
road graph (:func:`gis.analysis.network.build_graph`).

Straight-line distances are planar distances in UTM 48N (metres). Network times are the fastest
road travel times of :mod:`gis.analysis.network` (class speeds, connectors at 15 km/h) from the
point to the facility. Points farther than ``max_snap_m`` from the road graph have no network
time: they count as "not within" every time threshold and are reported as ``off_network``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gis.analysis._common import (
    METRIC_CRS,
    STORAGE_CRS,
    EmptyInputError,
    check_choice,
    check_range,
    check_thresholds,
    point_xy,
    require_columns,
    require_rows,
    stamp,
)

__all__ = ["nearest_facility", "population_access", "two_step_fca", "underserved_wards"]

_NET_ASSUMPTIONS = [
    "Network times: fastest path on the road graph at typical class speeds (gis.analysis.network."
    "DEFAULT_SPEEDS_KMH), from the point to the facility.",
    "A point reaches its nearest road node along a straight connector at the connector speed.",
    "Straight-line distances are planar distances in UTM 48N (EPSG:32648).",
]


def _facility_ids(facilities) -> tuple[np.ndarray, np.ndarray]:
    ids = facilities.index.to_numpy()
    names = facilities["name"].astype(object).to_numpy() if "name" in facilities else np.full(len(ids), None)
    return ids, names


def nearest_facility(points, facilities, *, graph=None, max_snap_m: float = 2000.0,
                     direction: str = "to"):
    """The nearest facility of each point, by straight line and by road travel time.

    Parameters
    ----------
    points : GeoDataFrame
        Population points, parcels or any features (polygons use their representative point).
    facilities : GeoDataFrame
        Points (e.g. hospitals and clinics), index = facility id, optional ``name``.
    graph : RoadGraph, optional
        Without a graph only straight-line distances are computed.
    max_snap_m : float
        Points or facilities farther than this from the road graph have no network time.
    direction : {"to", "from"}
        Travel from the point to the facility (default) or back.

    Returns
    -------
    geopandas.GeoDataFrame
        The points (their index and ``population`` if any) with ``nearest_id``, ``nearest_name``,
        ``distance_m`` (straight line), and with a graph ``network_id``, ``network_name``,
        ``time_min`` (NaN when off the network).
    """
    import geopandas as gpd

    from gis.analysis import network as net

    require_rows(points, "The set of points")
    require_rows(facilities, "The facility set", "It has no points.")
    check_range("max_snap_m", max_snap_m, 0, 50_000, lo_open=True)
    pxy, fxy = point_xy(points), point_xy(facilities)
    ids, names = _facility_ids(facilities)
    d, i = net.straight_line_nearest(pxy, fxy)
    out = gpd.GeoDataFrame(
        {"nearest_id": ids[i], "nearest_name": names[i], "distance_m": d},
        index=points.index, geometry=gpd.GeoSeries(gpd.points_from_xy(pxy[:, 0], pxy[:, 1]),
                                                   index=points.index, crs=METRIC_CRS))
    if "population" in points:
        out.insert(0, "population", points["population"].to_numpy(dtype=float))
    for c in ("code", "zone"):
        if c in points:
            out.insert(0, c, points[c].to_numpy())
    extra = {}
    if graph is not None:
        t, j = net.nearest_facility_times(graph, pxy, fxy, max_snap_m=max_snap_m, direction=direction)
        ok = j >= 0
        out["network_id"] = pd.array(np.where(ok, ids[np.clip(j, 0, None)], None), dtype=object)
        out["network_name"] = np.where(ok, names[np.clip(j, 0, None)], None)
        out["time_min"] = t / 60.0
        extra = {"off_network": int((~ok).sum()), "graph": graph.summary()}
    out = out.to_crs(STORAGE_CRS)
    return stamp(out, analysis="health.nearest", title="Nearest hospital or clinic",
                 columns={"distance_m": ("m", "straight-line distance to the nearest facility"),
                          "time_min": ("min", "road travel time to the nearest facility by time"),
                          "population": ("persons", "people the point stands for"),
                          "nearest_id": (None, "facility nearest in straight line"),
                          "network_id": (None, "facility nearest by road time")},
                 assumptions=_NET_ASSUMPTIONS, parameters={"max_snap_m": max_snap_m, "direction": direction},
                 n_points=len(out), n_facilities=len(facilities), **extra)


def population_access(points, facilities, *, graph=None, zones=None, zone_key: str = "code",
                      distances_km=(1, 3, 5), minutes=(10, 20, 30), max_snap_m: float = 2000.0):
    """Population within distances and travel times of the nearest facility, per zone (ward).

    Parameters
    ----------
    points : GeoDataFrame
        Population points with ``population`` and ``zone_key`` (from
        :func:`~gis.analysis.population.population_points`).
    facilities : GeoDataFrame
        Hospitals / clinics.
    graph : RoadGraph, optional
        Needed for the time thresholds.
    zones : GeoDataFrame, optional
        The zones (for names and geometry in the output).
    distances_km, minutes : sequences of float
        Thresholds (each > 0; at most 100 km and 600 min).

    Returns
    -------
    geopandas.GeoDataFrame
        Per zone: ``population``, ``pop_within_{d}km`` and ``share_within_{d}km`` for each distance,
        ``pop_within_{m}min`` / ``share_within_{m}min`` for each time, ``pop_off_network``,
        ``mean_distance_m`` and ``mean_time_min`` (population-weighted; time over points on the
        network).
    """
    import geopandas as gpd

    dists = check_thresholds("distances_km", distances_km, 0, 100)
    mins = check_thresholds("minutes", minutes, 0, 600) if graph is not None else []
    require_rows(points, "The population points")
    require_columns(points, ["population", zone_key], "The population points")
    near = nearest_facility(points, facilities, graph=graph, max_snap_m=max_snap_m)
    pop = points["population"].to_numpy(dtype=float)
    df = pd.DataFrame({zone_key: points[zone_key].to_numpy(), "population": pop,
                       "_dw": pop * near["distance_m"].to_numpy()})
    cols: dict[str, tuple[str | None, str]] = {"population": ("persons", "people in the zone (sum of points)")}
    for dk in dists:
        name = f"{dk:g}km".replace(".", "_")
        df[f"pop_within_{name}"] = np.where(near["distance_m"].to_numpy() <= dk * 1000, pop, 0.0)
        cols[f"pop_within_{name}"] = ("persons", f"people within {dk:g} km (straight line) of a facility")
        cols[f"share_within_{name}"] = ("fraction", f"pop_within_{name} / population")
    if graph is not None:
        t = near["time_min"].to_numpy(dtype=float)
        on = np.isfinite(t)
        df["pop_off_network"] = np.where(on, 0.0, pop)
        df["_tw"] = np.where(on, pop * np.nan_to_num(t), 0.0)
        df["_pon"] = np.where(on, pop, 0.0)
        cols["pop_off_network"] = ("persons", f"people farther than {max_snap_m:g} m from the road graph")
        for mm in mins:
            name = f"{mm:g}min".replace(".", "_")
            df[f"pop_within_{name}"] = np.where(on & (np.nan_to_num(t, nan=np.inf) <= mm), pop, 0.0)
            cols[f"pop_within_{name}"] = ("persons", f"people within {mm:g} min by road of a facility")
            cols[f"share_within_{name}"] = ("fraction", f"pop_within_{name} / population")
    agg = df.groupby(zone_key).sum()
    agg["mean_distance_m"] = agg["_dw"] / agg["population"].where(agg["population"] > 0)
    cols["mean_distance_m"] = ("m", "population-weighted mean straight-line distance")
    if graph is not None:
        agg["mean_time_min"] = agg["_tw"] / agg["_pon"].where(agg["_pon"] > 0)
        cols["mean_time_min"] = ("min", "population-weighted mean road time (points on the network)")
    for c in list(agg.columns):
        if c.startswith("pop_within_"):
            agg[c.replace("pop_", "share_", 1)] = agg[c] / agg["population"].where(agg["population"] > 0)
    agg = agg.drop(columns=[c for c in agg.columns if c.startswith("_")]).reset_index()
    if zones is not None:
        z = zones.reset_index() if zone_key not in zones.columns else zones.reset_index(drop=True)
        keep = [zone_key] + (["name"] if "name" in z else [])
        agg = z[keep + ["geometry"]].merge(agg, on=zone_key, how="inner")
        agg = gpd.GeoDataFrame(agg, geometry="geometry", crs=zones.crs).to_crs(STORAGE_CRS)
    totals = {c: float(agg[c].sum()) for c in agg.columns if c.startswith("pop_") or c == "population"}
    return stamp(agg, analysis="health.access", title="Population within reach of a hospital, per ward",
                 columns=cols, assumptions=_NET_ASSUMPTIONS
                 + ["Zone population is the sum of the population points in the zone (WorldPop cells "
                    "cut by the zone)."],
                 parameters={"distances_km": dists, "minutes": mins, "max_snap_m": max_snap_m},
                 totals=totals, n_facilities=len(facilities),
                 graph=graph.summary() if graph is not None else None)


def two_step_fca(points, facilities, *, graph=None, catchment_min: float = 30.0,
                 catchment_km: float | None = None, capacity_column: str = "capacity",
                 default_capacity: float | None = None, decay: str = "step", per: float = 1000.0,
                 max_snap_m: float = 2000.0, client=None, progress=None):
    """Two-step floating catchment area (2SFCA) accessibility of each population point.

    Step 1: each facility j gets ``R_j = S_j / sum_k P_k w(t_kj)`` over the population points k
    within its catchment (capacity per person). Step 2: each point gets
    ``A_k = per * sum_j R_j w(t_kj)`` over the facilities within its catchment: capacity (beds)
    per ``per`` people.

    Parameters
    ----------
    points : GeoDataFrame
        Population points (``population``).
    facilities : GeoDataFrame
        With ``capacity_column`` (beds) where known.
    graph : RoadGraph, optional
        Catchments by road time (``catchment_min``); without a graph, by straight-line distance
        (``catchment_km``, default 5 km).
    default_capacity : float, optional
        Capacity of a facility whose capacity is unknown; default: the median of the known
        capacities, or 1 when none is known (then the index counts facilities per ``per`` people).
    decay : {"step", "gaussian"}
        ``step``: w = 1 inside the catchment (classic 2SFCA); ``gaussian``: the enhanced 2SFCA
        weight ``(exp(-0.5 (t/d0)^2) - exp(-0.5)) / (1 - exp(-0.5))``.
    per : float
        Express the index per this many people (default 1000).
    client : optional
        Dask client or scheduler name (facility chunks of the catchment search).

    Returns
    -------
    geopandas.GeoDataFrame
        The points with ``population``, ``access`` (capacity per ``per`` people), ``n_facilities``
        (facilities within the catchment). ``attrs``: the capacity basis, the city-wide ratio.
    """
    import geopandas as gpd
    from scipy.spatial import cKDTree

    from gis.analysis import network as net

    check_choice("decay", decay, ("step", "gaussian"))
    check_range("per", per, 0, 1e7, lo_open=True)
    require_rows(points, "The population points")
    require_rows(facilities, "The facility set", "It has no points.")
    require_columns(points, ["population"], "The population points")
    pxy, fxy = point_xy(points), point_xy(facilities)
    pop = points["population"].to_numpy(dtype=float)
    cap = (pd.to_numeric(facilities[capacity_column], errors="coerce").to_numpy(dtype=float)
           if capacity_column in facilities else np.full(len(facilities), np.nan))
    known = np.isfinite(cap) & (cap > 0)
    if default_capacity is not None:
        fill, basis = check_range("default_capacity", default_capacity, 0, lo_open=True), "given default"
    elif known.any():
        fill, basis = float(np.median(cap[known])), "median of the known capacities"
    else:
        fill, basis = 1.0, "1 per facility (no capacity known: the index counts facilities)"
    cap = np.where(known, cap, fill)
    if graph is not None:
        d0 = check_range("catchment_min", catchment_min, 0, 600, lo_open=True)
        pi, fj, t = net.pairs_within(graph, pxy, fxy, d0 * 60.0, max_snap_m=max_snap_m,
                                     direction="to", client=client, progress=progress)
        x = t / (d0 * 60.0)
        unit, thr = "min", d0
    else:
        d0 = check_range("catchment_km", catchment_km if catchment_km is not None else 5.0, 0, 100, lo_open=True)
        sm = cKDTree(pxy).sparse_distance_matrix(cKDTree(fxy), d0 * 1000.0, output_type="coo_matrix")
        pi, fj, dist = sm.row.astype(np.int64), sm.col.astype(np.int64), sm.data
        # sparse_distance_matrix leaves out exact zeros: add coincident pairs
        zero_p, zero_f = _coincident(pxy, fxy)
        pi, fj = np.concatenate([pi, zero_p]), np.concatenate([fj, zero_f])
        dist = np.concatenate([dist, np.zeros(len(zero_p))])
        x = dist / (d0 * 1000.0)
        unit, thr = "km", d0
    if decay == "step":
        w = np.ones_like(x)
    else:
        e = np.exp(-0.5)
        w = np.clip((np.exp(-0.5 * x ** 2) - e) / (1 - e), 0, 1)
    demand = np.bincount(fj, weights=pop[pi] * w, minlength=len(fxy))
    R = np.where(demand > 0, cap / np.where(demand > 0, demand, 1), 0.0)
    A = per * np.bincount(pi, weights=R[fj] * w, minlength=len(pxy))
    nf = np.bincount(pi, minlength=len(pxy))
    if graph is not None:
        on = graph.snap(pxy, max_snap_m).ok
    else:
        on = np.ones(len(pxy), dtype=bool)
    out = gpd.GeoDataFrame({"population": pop, "access": A, "n_facilities": nf, "on_network": on},
                           index=points.index,
                           geometry=gpd.GeoSeries(gpd.points_from_xy(pxy[:, 0], pxy[:, 1]),
                                                  index=points.index, crs=METRIC_CRS)).to_crs(STORAGE_CRS)
    for c in ("code", "zone"):
        if c in points:
            out.insert(0, c, points[c].to_numpy())
    city = per * cap.sum() / pop.sum() if pop.sum() > 0 else float("nan")
    return stamp(out, analysis="health.2sfca", title="2SFCA accessibility to hospitals",
                 columns={"access": (f"capacity per {per:g} people",
                                     "2SFCA index: facility capacity (beds) reachable per "
                                     f"{per:g} people, shared among competing demand"),
                          "population": ("persons", "people the point stands for"),
                          "n_facilities": (None, "facilities within the catchment"),
                          "on_network": (None, "the point is within max_snap_m of the road graph")},
                 assumptions=[f"Catchment: {thr:g} {unit} ({'road time' if graph is not None else 'straight line'}).",
                              f"Distance decay: {decay}.",
                              f"Capacity = {capacity_column} where known; otherwise {fill:g} ({basis}).",
                              *(_NET_ASSUMPTIONS if graph is not None else [])],
                 parameters={"catchment_min": catchment_min if graph is not None else None,
                             "catchment_km": d0 if graph is None else None, "decay": decay, "per": per,
                             "default_capacity": default_capacity, "capacity_column": capacity_column},
                 capacity_basis=basis, capacity_known=int(known.sum()), n_facilities=len(fxy),
                 city_ratio=city, total_capacity=float(cap.sum()), total_population=float(pop.sum()),
                 pairs_within_catchment=int(len(pi)))


def _coincident(pxy: np.ndarray, fxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from scipy.spatial import cKDTree

    hits = cKDTree(fxy).query_ball_point(pxy, r=1e-9)
    p = [i for i, h in enumerate(hits) for _ in h]
    f = [j for h in hits for j in h]
    return np.asarray(p, dtype=np.int64), np.asarray(f, dtype=np.int64)


def underserved_wards(access, zones=None, *, zone_key: str = "code", ratio: float = 0.5,
                      min_covered: float = 0.5):
    """Wards whose population-weighted 2SFCA index is below ``ratio`` x the city-wide ratio.

    Parameters
    ----------
    access : GeoDataFrame
        From :func:`two_step_fca` (points with ``zone_key``, ``population``, ``access``).
    zones : GeoDataFrame, optional
        Ward geometries and names for the output.
    ratio : float in (0, 1]
        A ward is underserved when its index < ``ratio`` x the city-wide capacity per person.
    min_covered : float in [0, 1]
        Wards with less than this share of their people on the road graph are not judged (the
        road data does not cover them): ``underserved`` is False and ``reason`` says so.

    Returns
    -------
    geopandas.GeoDataFrame or pandas.DataFrame
        Every ward with ``population``, ``access`` (population-weighted mean index),
        ``relative_access`` (access / city-wide ratio), ``underserved`` (bool) and ``reason``;
        sorted by ``relative_access``. ``attrs["underserved"]`` lists the underserved ward codes.
    """
    import geopandas as gpd

    check_range("ratio", ratio, 0, 1, lo_open=True)
    require_columns(access, [zone_key, "population", "access"], "The 2SFCA result")
    require_rows(access, "The 2SFCA result")
    city = float(access.attrs.get("city_ratio", np.nan))
    if not np.isfinite(city) or city <= 0:
        raise EmptyInputError("The 2SFCA result has no city-wide ratio (no population or capacity).")
    check_range("min_covered", min_covered, 0, 1)
    pop = access["population"].to_numpy(dtype=float)
    on = access["on_network"].to_numpy(dtype=bool) if "on_network" in access else np.ones(len(pop), dtype=bool)
    df = pd.DataFrame({zone_key: access[zone_key].to_numpy(), "population": pop,
                       "_aw": pop * access["access"].to_numpy(dtype=float), "_on": np.where(on, pop, 0.0)})
    agg = df.groupby(zone_key).sum()
    agg["access"] = agg["_aw"] / agg["population"].where(agg["population"] > 0)
    agg["covered"] = agg["_on"] / agg["population"].where(agg["population"] > 0)
    agg = agg.drop(columns=["_aw", "_on"]).reset_index()
    agg["relative_access"] = agg["access"] / city
    judged = agg["covered"].fillna(0) >= min_covered
    none = agg["access"].fillna(0) <= 0
    agg["underserved"] = judged & ((agg["relative_access"] < ratio) | none)
    agg["reason"] = np.select(
        [~judged, none & judged, agg["underserved"]],
        ["outside the road data (not judged)", "no facility within the catchment",
         f"access below {ratio:g} x the city-wide ratio"], "")
    if zones is not None:
        z = zones.reset_index() if zone_key not in zones.columns else zones.reset_index(drop=True)
        agg = z[[zone_key] + (["name"] if "name" in z else []) + ["geometry"]].merge(agg, on=zone_key)
        agg = gpd.GeoDataFrame(agg, geometry="geometry", crs=zones.crs).to_crs(STORAGE_CRS)
    agg = agg.sort_values(["relative_access", zone_key], na_position="first").reset_index(drop=True)
    under = agg.loc[agg["underserved"], zone_key].tolist()
    return stamp(agg, analysis="health.underserved", title="Underserved wards (2SFCA)",
                 columns={"access": (access.attrs.get("units", {}).get("access"),
                                     "population-weighted mean 2SFCA index of the ward"),
                          "relative_access": ("ratio", "access / city-wide capacity per person"),
                          "population": ("persons", "people in the ward"),
                          "covered": ("fraction", "share of the ward's people on the road graph"),
                          "underserved": (None, f"relative_access < {ratio:g} or no facility in reach")},
                 assumptions=list(access.attrs.get("assumptions", [])),
                 parameters={**access.attrs.get("parameters", {}), "ratio": ratio, "min_covered": min_covered},
                 city_ratio=city, underserved=[str(u) for u in under], n_underserved=len(under))
