"""A routable road graph and fast many-to-many travel times (scipy.sparse.csgraph).

The graph
---------
:func:`build_graph` turns road centre lines (``city.roads`` or any line layer) into a graph whose
nodes are the distinct vertices of the lines (rounded to ``tolerance_m``, so that lines that share a
vertex - as OpenStreetMap ways do at junctions - are joined; lines that merely cross, such as a
bridge over a street, are not) and whose edges are the segments between consecutive vertices.
Each edge carries its length (metres, in :data:`~gis.analysis._common.METRIC_CRS`) and its travel
time (seconds) at the speed of its road class (:data:`DEFAULT_SPEEDS_KMH`, typical speeds in
Ho Chi Minh City traffic, not legal limits; a known ``maxspeed_kmh`` only lowers it). Roads of
an unknown or generic class get a class from their width. With ``directed=True`` one-way roads are
one-way edges; parallel edges keep the fastest.

Points and the graph
--------------------
A point (a population cell, a ward centroid, a hospital) is *snapped* to the nearest node of the
largest strongly connected component (so every snapped pair is connected), and reaches it along a
straight connector at ``connector_speed_kmh`` (default 15 km/h: riding or walking the alley from
the door to the street). Two points that snap to the same node are joined directly by a straight
connector at that speed: a facility placed on a point is zero seconds from it. Points farther than
``max_snap_m`` from every node are unreachable (NaN, counted in the output metadata; a single
route raises :class:`~gis.analysis._common.NoRouteError`).

Because every edge is at least as long as the straight line between its ends and no speed exceeds
:attr:`RoadGraph.max_speed_kmh`, a travel time is never shorter than the straight-line distance at
that speed; on an undirected graph travel times are symmetric.

Speed
-----
Travel times come from scipy's C Dijkstra. The times from many facilities to every node are ONE
multi-source search (each facility is a virtual node whose edge to its snapped node carries its
connector time, ``min_only=True``), not one search per facility; an origin-destination matrix runs
the origins in chunks whose size bounds memory, optionally spread over a Dask cluster.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from gis.analysis._common import (
    METRIC_CRS,
    EmptyInputError,
    NoRouteError,
    Progress,
    check_range,
    require_rows,
    to_metric,
)
from gis.errors import InputError

__all__ = [
    "CONNECTOR_SPEED_KMH",
    "DEFAULT_SPEEDS_KMH",
    "EXCLUDED_CLASSES",
    "RoadGraph",
    "Snap",
    "build_graph",
    "nearest_facility_times",
    "node_times",
    "od_matrix",
    "pairs_within",
    "route",
    "service_area_polygons",
]

#: Typical speeds (km/h) by road class in HCMC traffic (mixed motorbikes and cars, off-peak).
#: OpenStreetMap ``highway`` classes, and the CSL@HCMC road types (road, alley, road-in, bridge,
#: tunnel). A road's known ``maxspeed_kmh`` lowers its speed, never raises it.
DEFAULT_SPEEDS_KMH: dict[str, float] = {
    "motorway": 60.0, "motorway_link": 40.0, "trunk": 40.0, "trunk_link": 30.0,
    "primary": 30.0, "primary_link": 25.0, "secondary": 25.0, "secondary_link": 20.0,
    "tertiary": 22.0, "tertiary_link": 20.0, "unclassified": 20.0, "residential": 18.0,
    "living_street": 10.0, "service": 12.0, "road": 20.0, "track": 10.0,
    "alley": 10.0, "road-in": 15.0, "bridge": 30.0, "tunnel": 40.0,
}
#: Classes that are not driven on (paths, water, construction): left out of the graph.
EXCLUDED_CLASSES = frozenset({
    "footway", "path", "pedestrian", "steps", "cycleway", "bridleway", "corridor", "construction",
    "proposed", "platform", "waterway", "elevator", "raceway", "bus_stop", "abandoned", "razed",
})
#: Speed of the straight connector between a point and its snapped node (km/h).
CONNECTOR_SPEED_KMH = 15.0
#: Width (m) thresholds that give a class to roads of an unknown or generic class.
_WIDTH_CLASSES = ((30.0, "primary"), (16.0, "secondary"), (10.0, "tertiary"), (5.0, "residential"),
                  (0.0, "alley"))
_EPS = 1e-6  # seconds: a virtual edge must not weigh zero (csgraph drops explicit zeros)


@dataclass(frozen=True)
class Snap:
    """Points snapped to a graph: node index (``-1`` when too far), connector length (m)."""

    node: np.ndarray
    dist_m: np.ndarray
    xy: np.ndarray

    @property
    def ok(self) -> np.ndarray:
        return self.node >= 0


@dataclass
class RoadGraph:
    """A road graph in compressed sparse row form; build it with :func:`build_graph`.

    Attributes
    ----------
    xy : ndarray (n, 2)
        Node coordinates in :data:`METRIC_CRS` (metres).
    u, v : ndarray (m,)
        Edge ends (node indices); an undirected graph stores both directions.
    length_m, time_s, speed_kmh : ndarray (m,)
        Edge length, travel time and speed.
    road : ndarray (m,)
        Row of the input roads frame each edge comes from.
    directed : bool
        Whether one-way roads are one-way edges.
    connector_speed_kmh : float
        Speed of point-to-node connectors.
    """

    xy: np.ndarray
    u: np.ndarray
    v: np.ndarray
    length_m: np.ndarray
    time_s: np.ndarray
    speed_kmh: np.ndarray
    road: np.ndarray
    directed: bool
    connector_speed_kmh: float = CONNECTOR_SPEED_KMH
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from scipy.sparse import csr_matrix
        from scipy.sparse.csgraph import connected_components

        n = len(self.xy)
        self.csr = csr_matrix((self.time_s, (self.u, self.v)), shape=(n, n))
        self.csr.sort_indices()
        self._csr_t = None
        if n:
            ncomp, labels = connected_components(self.csr, directed=True, connection="strong")
        else:
            ncomp, labels = 0, np.zeros(0, dtype=np.int32)
        self.component = labels
        self.n_components = int(ncomp)
        if n:
            sizes = np.bincount(labels)
            self.main = labels == int(np.argmax(sizes))
        else:
            self.main = np.zeros(0, dtype=bool)
        self._trees: dict[bool, Any] = {}

    # -- facts ---------------------------------------------------------------------------------
    @property
    def n_nodes(self) -> int:
        return len(self.xy)

    @property
    def n_edges(self) -> int:
        return len(self.u)

    @property
    def max_speed_kmh(self) -> float:
        """The highest speed on the graph, connectors included (km/h)."""
        top = float(self.speed_kmh.max()) if len(self.speed_kmh) else 0.0
        return max(top, self.connector_speed_kmh)

    @property
    def connector_mps(self) -> float:
        return self.connector_speed_kmh / 3.6

    def csr_for(self, direction: str):
        """The time matrix to search: ``"from"`` the sources outwards, or ``"to"`` the sources
        (the transposed graph: times from every node to the nearest source)."""
        if direction == "from" or not self.directed:
            return self.csr
        if direction != "to":
            raise InputError(f"direction must be 'from' or 'to'; got {direction!r}.")
        if self._csr_t is None:
            self._csr_t = self.csr.T.tocsr()
            self._csr_t.sort_indices()
        return self._csr_t

    def summary(self) -> dict[str, Any]:
        """Size and connectivity, for output metadata."""
        return {
            "nodes": self.n_nodes, "edges": self.n_edges, "directed": self.directed,
            "components": self.n_components, "main_component_nodes": int(self.main.sum()),
            "total_length_km": round(float(self.length_m.sum()) / (1 if self.directed else 2) / 1000, 3),
            "max_speed_kmh": self.max_speed_kmh, "connector_speed_kmh": self.connector_speed_kmh,
            **self.info,
        }

    # -- snapping ------------------------------------------------------------------------------
    def _tree(self, main_only: bool):
        from scipy.spatial import cKDTree

        if main_only not in self._trees:
            idx = np.flatnonzero(self.main) if main_only else np.arange(self.n_nodes)
            self._trees[main_only] = (cKDTree(self.xy[idx]), idx)
        return self._trees[main_only]

    def snap(self, xy: np.ndarray, max_snap_m: float | None = None, main_only: bool = True) -> Snap:
        """Snap metric points (n, 2) to their nearest node (of the main component by default).

        Points farther than ``max_snap_m`` get node ``-1``.
        """
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        if self.n_nodes == 0:
            raise EmptyInputError("The road graph has no nodes: load roads first (`gis ingest roads`).")
        tree, idx = self._tree(main_only)
        if len(xy) == 0:
            return Snap(np.zeros(0, dtype=np.int64), np.zeros(0), xy)
        dist, pos = tree.query(xy)
        node = idx[pos].astype(np.int64)
        if max_snap_m is not None:
            node = np.where(dist <= max_snap_m, node, -1)
        return Snap(node, dist, xy)

    def to_networkx(self):
        """The graph as a networkx ``DiGraph`` (``Graph`` when undirected); edge attributes
        ``time`` (s) and ``length`` (m). For interoperability and the benchmark baseline."""
        import networkx as nx

        g = nx.DiGraph() if self.directed else nx.Graph()
        g.add_nodes_from(range(self.n_nodes))
        g.add_weighted_edges_from(zip(self.u.tolist(), self.v.tolist(), self.time_s.tolist()),
                                  weight="time")
        for a, b, length in zip(self.u.tolist(), self.v.tolist(), self.length_m.tolist()):
            g[a][b]["length"] = length
        return g

    def edges_frame(self):
        """The edges as a GeoDataFrame of segments (lon/lat), for maps."""
        import geopandas as gpd
        import shapely

        keep = self.u < self.v if not self.directed else np.ones(self.n_edges, dtype=bool)
        segs = shapely.linestrings(np.stack([self.xy[self.u[keep]], self.xy[self.v[keep]]], axis=1))
        return gpd.GeoDataFrame({"u": self.u[keep], "v": self.v[keep], "length_m": self.length_m[keep],
                                 "time_s": self.time_s[keep], "speed_kmh": self.speed_kmh[keep]},
                                geometry=gpd.GeoSeries(segs, crs=METRIC_CRS)).to_crs("EPSG:4326")


# --- building -----------------------------------------------------------------------------------
def _class_speeds(roads: pd.DataFrame, speeds: dict[str, float], class_column: str,
                  maxspeed_column: str, width_column: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """Per road: speed (km/h), kept mask, and counts for the metadata."""
    n = len(roads)
    cls = (roads[class_column].astype("string").str.strip().str.lower().fillna("")
           if class_column in roads else pd.Series([""] * n, index=roads.index, dtype="string"))
    cls = cls.to_numpy(dtype=object)
    keep = ~np.isin(cls, list(EXCLUDED_CLASSES))
    generic = np.isin(cls, ["", "road", "yes", "none"])
    inferred = 0
    if width_column in roads:
        width = pd.to_numeric(roads[width_column], errors="coerce").to_numpy(dtype=float)
        has_w = generic & np.isfinite(width) & (width > 0)
        for lo, name in _WIDTH_CLASSES:
            pick = has_w & (width >= lo)
            cls[pick] = name
            has_w &= ~pick
            inferred += int(pick.sum())
    fallback = speeds.get("road", 20.0)
    speed = np.array([speeds.get(c, fallback) for c in cls], dtype=float)
    unknown = int(sum(1 for c in cls if c not in speeds))
    if maxspeed_column in roads:
        ms = pd.to_numeric(roads[maxspeed_column], errors="coerce").to_numpy(dtype=float)
        lower = np.isfinite(ms) & (ms > 0) & (ms < speed)
        speed[lower] = ms[lower]
    return speed, keep, {"roads_class_from_width": inferred, "roads_unknown_class": unknown,
                         "roads_excluded": int((~keep).sum())}


def build_graph(roads, *, directed: bool = True, speeds: dict[str, float] | None = None,
                tolerance_m: float = 0.5, connector_speed_kmh: float = CONNECTOR_SPEED_KMH,
                class_column: str = "road_class", maxspeed_column: str = "maxspeed_kmh",
                oneway_column: str = "oneway", width_column: str = "width_m") -> RoadGraph:
    """Build a routable graph from road centre lines.

    Parameters
    ----------
    roads : geopandas.GeoDataFrame
        Lines (LineString / MultiLineString) with a CRS, e.g. ``city.roads``
        (:func:`gis.analysis.layers.load_layer` ``"roads"``).
    directed : bool, default True
        One-way roads (``oneway`` true) are driven in their digitised direction only. With False
        every road is two-way and travel times are symmetric.
    speeds : dict of str to float, optional
        Speeds (km/h) by road class, overriding :data:`DEFAULT_SPEEDS_KMH` entry by entry.
    tolerance_m : float, default 0.5
        Vertices closer than this (metres, on a grid) are the same node.
    connector_speed_kmh : float, default 15
        Speed between a point and its snapped node (km/h).

    Returns
    -------
    RoadGraph

    Raises
    ------
    EmptyInputError
        No drivable road.

    Examples
    --------
    >>> roads = load_layer(dsn, "roads")  # doctest: +SKIP
    >>> g = build_graph(roads, directed=False)  # doctest: +SKIP
    >>> g.summary()["nodes"]  # doctest: +SKIP
    31544
    """
    import shapely

    check_range("tolerance_m", tolerance_m, 0, 50, lo_open=True)
    check_range("connector_speed_kmh", connector_speed_kmh, 0, 130, lo_open=True)
    table = dict(DEFAULT_SPEEDS_KMH)
    for k, val in (speeds or {}).items():
        table[str(k).lower()] = check_range(f"speed of {k!r}", val, 0, 200, lo_open=True)
    require_rows(roads, "The road layer", "Load roads with `gis ingest roads`.")
    m = to_metric(roads).reset_index(drop=True)
    m = m[~m.geometry.isna() & ~m.geometry.is_empty]
    speed, keep, counts = _class_speeds(m, table, class_column, maxspeed_column, width_column)
    m, speed = m[keep], speed[keep]
    geoms = np.asarray(m.geometry.values)
    types = shapely.get_type_id(geoms)
    if not np.isin(types, [1, 5]).all():
        raise InputError("The road layer must hold lines (LineString or MultiLineString).")
    oneway = np.zeros(len(m), dtype=bool)
    if directed and oneway_column in m:
        ow = m[oneway_column]
        oneway = ow.map(lambda x: bool(x) if isinstance(x, (bool, np.bool_)) else
                        str(x).strip().lower() in ("true", "yes", "1", "1.0")).to_numpy(dtype=bool)
    parts, part_of = shapely.get_parts(geoms, return_index=True)
    coords, line = shapely.get_coordinates(parts, return_index=True)
    if len(coords) < 2:
        raise EmptyInputError("The road layer has no drivable road (after leaving out "
                              f"{', '.join(sorted(EXCLUDED_CLASSES)[:4])}, ...).")
    keys = np.round(coords / tolerance_m).astype(np.int64)
    uniq, node_of = np.unique(keys, axis=0, return_inverse=True)
    node_of = node_of.ravel()
    xy = np.zeros((len(uniq), 2))
    xy[node_of] = coords  # any vertex of the cell; they are within tolerance of each other
    same = line[:-1] == line[1:]
    a, b = node_of[:-1][same], node_of[1:][same]
    road_row = part_of[line[:-1][same]]
    length = np.hypot(*(xy[b] - xy[a]).T)
    ok = (a != b) & (length > 0)
    a, b, road_row, length = a[ok], b[ok], road_row[ok], length[ok]
    sp = speed[road_row]
    both = ~oneway[road_row]
    u = np.concatenate([a, b[both]])
    v = np.concatenate([b, a[both]])
    length = np.concatenate([length, length[both]])
    sp = np.concatenate([sp, sp[both]])
    road_row = np.concatenate([road_row, road_row[both]])
    t = length / (sp / 3.6)
    # parallel edges: keep the fastest
    order = np.lexsort((t, v, u))
    u, v, t, length, sp, road_row = (x[order] for x in (u, v, t, length, sp, road_row))
    first = np.ones(len(u), dtype=bool)
    first[1:] = (u[1:] != u[:-1]) | (v[1:] != v[:-1])
    u, v, t, length, sp, road_row = (x[first] for x in (u, v, t, length, sp, road_row))
    road_index = m.index.to_numpy()[road_row]
    counts["roads_oneway"] = int(oneway.sum())
    counts["tolerance_m"] = tolerance_m
    return RoadGraph(xy=xy, u=u.astype(np.int64), v=v.astype(np.int64), length_m=length, time_s=t,
                     speed_kmh=sp, road=road_index, directed=directed,
                     connector_speed_kmh=float(connector_speed_kmh), info=counts)


# --- searches -----------------------------------------------------------------------------------
def _augmented(csr, nodes: np.ndarray, offsets: np.ndarray):
    """The graph plus one virtual node per source, with an edge to its node weighing its offset."""
    from scipy.sparse import csr_matrix

    n, k = csr.shape[0], len(nodes)
    indptr = np.concatenate([csr.indptr, csr.indptr[-1] + np.arange(1, k + 1)])
    indices = np.concatenate([csr.indices, nodes]).astype(csr.indices.dtype, copy=False)
    data = np.concatenate([csr.data, np.maximum(offsets, 0) + _EPS])
    return csr_matrix((data, indices, indptr), shape=(n + k, n + k))


def node_times(graph: RoadGraph, snap: Snap, *, direction: str = "from",
               limit_s: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
    """Travel time (s) between every node and the nearest of the snapped sources, and which.

    One multi-source Dijkstra: the sources' connector times are the start offsets.

    Returns
    -------
    times : ndarray (n_nodes,)
        Seconds (``inf`` beyond ``limit_s`` or unreachable).
    source : ndarray (n_nodes,)
        Position (in ``snap``) of the nearest source; ``-1`` where unreachable.
    """
    from scipy.sparse.csgraph import dijkstra

    ok = np.flatnonzero(snap.ok)
    if len(ok) == 0:
        raise EmptyInputError("None of the sources is near the road graph (within the snapping "
                              "distance): nothing can be reached.")
    n = graph.n_nodes
    aug = _augmented(graph.csr_for(direction), snap.node[ok], snap.dist_m[ok] / graph.connector_mps)
    dist, _, src = dijkstra(aug, directed=True, indices=n + np.arange(len(ok)), min_only=True,
                            return_predecessors=True, limit=limit_s)
    dist, src = dist[:n], src[:n]
    source = np.where(src >= n, ok[np.clip(src - n, 0, len(ok) - 1)], -1)
    dist = np.where(np.isfinite(dist), np.maximum(dist - _EPS, 0.0), np.inf)
    return dist, source


def nearest_facility_times(graph: RoadGraph, points_xy: np.ndarray, facilities_xy: np.ndarray, *,
                           max_snap_m: float | None = 2000.0, direction: str = "to",
                           limit_s: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
    """Network travel time (s) from each point to its nearest facility, and which facility.

    Parameters
    ----------
    graph : RoadGraph
    points_xy, facilities_xy : ndarray (n, 2), (k, 2)
        Metric coordinates.
    max_snap_m : float, optional
        Points or facilities farther than this from the graph are unreachable.
    direction : {"to", "from"}
        ``"to"``: from each point to the facility (e.g. a patient's trip); ``"from"``: from the
        facility to the point (an ambulance's trip). Equal on an undirected graph.
    limit_s : float
        Stop searching beyond this time (faster when only short trips matter).

    Returns
    -------
    time_s : ndarray (n,)
        ``nan`` where unreachable (too far from the graph, or beyond ``limit_s``).
    facility : ndarray (n,)
        Index of the nearest facility (``-1`` where unreachable).
    """
    fac = graph.snap(facilities_xy, max_snap_m)
    pts = graph.snap(points_xy, max_snap_m)
    times, source = node_times(graph, fac, direction=direction, limit_s=limit_s)
    n = len(pts.node)
    out = np.full(n, np.nan)
    which = np.full(n, -1, dtype=np.int64)
    ok = pts.ok
    t = times[pts.node[ok]] + pts.dist_m[ok] / graph.connector_mps
    finite = np.isfinite(t)
    idx = np.flatnonzero(ok)
    out[idx[finite]] = t[finite]
    which[idx[finite]] = source[pts.node[ok]][finite]
    # a point and a facility on the same node: the direct connector
    _same_node_direct(graph, pts, fac, out, which)
    if np.isfinite(limit_s):
        beyond = out > limit_s
        out[beyond], which[beyond] = np.nan, -1
    return out, which


def _same_node_direct(graph: RoadGraph, pts: Snap, fac: Snap, out: np.ndarray,
                      which: np.ndarray) -> None:
    """Lower ``out`` to the direct connector time where a point shares its node with facilities."""
    fok = np.flatnonzero(fac.ok)
    if len(fok) == 0:
        return
    order = fok[np.argsort(fac.node[fok], kind="stable")]
    fnodes = fac.node[order]
    p = np.flatnonzero(pts.ok)
    lo = np.searchsorted(fnodes, pts.node[p], side="left")
    hi = np.searchsorted(fnodes, pts.node[p], side="right")
    has = hi > lo
    for i, a, b in zip(p[has], lo[has], hi[has]):
        cand = order[a:b]
        d = np.hypot(*(fac.xy[cand] - pts.xy[i]).T) / graph.connector_mps
        j = int(np.argmin(d))
        if not np.isfinite(out[i]) or d[j] <= out[i]:
            out[i], which[i] = d[j], cand[j]


def _od_chunk(origin_rows: np.ndarray, csr_aug, n: int, dest_nodes: np.ndarray,
              dest_conn_s: np.ndarray, limit_s: float) -> np.ndarray:
    from scipy.sparse.csgraph import dijkstra

    dist = dijkstra(csr_aug, directed=True, indices=n + origin_rows, limit=limit_s)
    out = dist[:, dest_nodes] + dest_conn_s[None, :]
    return np.maximum(out - _EPS, 0.0)


def od_matrix(graph: RoadGraph, origins_xy: np.ndarray, destinations_xy: np.ndarray | None = None,
              *, max_snap_m: float | None = 2000.0, unreachable: str = "error",
              origin_labels=None, destination_labels=None, limit_s: float = np.inf,
              chunk: int | None = None, client=None, progress: Progress | None = None,
              direction: str = "from") -> np.ndarray:
    """Origin-destination matrix of network travel times (seconds).

    Parameters
    ----------
    graph : RoadGraph
    origins_xy, destinations_xy : ndarray (k, 2), (m, 2)
        Metric coordinates; destinations default to the origins.
    max_snap_m : float, optional
        Points farther than this from the graph are unreachable.
    unreachable : {"error", "nan"}
        What an unreachable pair gives: :class:`NoRouteError` naming it (default), or NaN.
    origin_labels, destination_labels : sequence, optional
        Names used in error messages.
    chunk : int, optional
        Origins per Dijkstra call (default: what fits in about 32 MB).
    client : dask.distributed.Client or str, optional
        Spread the chunks over a Dask cluster (or a local scheduler name such as
        ``"synchronous"``); the result is identical.
    progress : callable, optional
        ``progress(done, total)`` over origins.
    direction : {"from", "to"}
        ``"from"``: element [i, j] is the time from origin i to destination j; ``"to"``: from
        destination j to origin i (searched from the origins on the reversed graph: e.g. from
        every home to each candidate site). Equal on an undirected graph.

    Returns
    -------
    ndarray (k, m)
        Seconds; the diagonal of a square matrix of identical points is 0.
    """
    from gis.analysis import parallel

    if unreachable not in ("error", "nan"):
        raise InputError(f"unreachable must be 'error' or 'nan'; got {unreachable!r}.")
    same = destinations_xy is None
    dest_xy = origins_xy if same else destinations_xy
    require_rows(origins_xy, "The set of origins")
    require_rows(dest_xy, "The set of destinations")
    o = graph.snap(origins_xy, max_snap_m)
    d = o if same else graph.snap(dest_xy, max_snap_m)
    if unreachable == "error":
        for s, labels, what in ((o, origin_labels, "origin"), (d, destination_labels, "destination")):
            bad = np.flatnonzero(~s.ok)
            if len(bad):
                name = labels[bad[0]] if labels is not None else f"#{bad[0]}"
                raise NoRouteError(
                    f"{len(bad)} {what}(s) are farther than {max_snap_m:g} m from the road graph "
                    f"(first: {name}, {s.dist_m[bad[0]]:.0f} m away); they cannot be routed. "
                    "Load the roads that serve them, or raise max_snap_m.")
    n = graph.n_nodes
    k, m = len(o.node), len(d.node)
    ok_o = np.flatnonzero(o.ok)
    aug = _augmented(graph.csr_for(direction), o.node[ok_o], o.dist_m[ok_o] / graph.connector_mps)
    dest_nodes = np.where(d.ok, d.node, 0)
    dest_conn = np.where(d.ok, d.dist_m / graph.connector_mps, np.inf)
    if chunk is None:
        chunk = max(1, min(512, int(32e6 // (8 * (n + len(ok_o))))))
    rows = [np.arange(i, min(i + chunk, len(ok_o))) for i in range(0, len(ok_o), chunk)]
    out = np.full((k, m), np.nan)
    done = 0

    def collect(part_rows, res):
        nonlocal done
        out[ok_o[part_rows]] = res
        done += len(part_rows)
        if progress:
            progress(done, len(ok_o))

    parallel.map_chunks(_od_chunk, rows, client=client, on_result=collect,
                        shared=dict(csr_aug=aug, n=n, dest_nodes=dest_nodes, dest_conn_s=dest_conn,
                                    limit_s=limit_s))
    out[~np.isfinite(out)] = np.nan
    # points on the same node: the direct connector
    oi, dj = np.nonzero(o.node[:, None] == d.node[None, :]) if k * m <= 4e7 else _same_pairs(o, d)
    keep = o.ok[oi] & d.ok[dj]
    oi, dj = oi[keep], dj[keep]
    direct = np.hypot(*(o.xy[oi] - d.xy[dj]).T) / graph.connector_mps
    cur = out[oi, dj]
    out[oi, dj] = np.where(np.isnan(cur), direct, np.minimum(cur, direct))
    if unreachable == "error" and np.isnan(out).any():
        i, j = (int(x[0]) for x in np.nonzero(np.isnan(out)))
        on = origin_labels[i] if origin_labels is not None else f"#{i}"
        dn = destination_labels[j] if destination_labels is not None else f"#{j}"
        raise NoRouteError(f"No route from origin {on} to destination {dn} on the road graph "
                           f"({int(np.isnan(out).sum())} pair(s) unreachable). Use "
                           "unreachable='nan' to get NaN for such pairs.")
    return out


def _pairs_chunk(rows: np.ndarray, csr_aug, n: int, pt_nodes: np.ndarray, pt_conn_s: np.ndarray,
                 limit_s: float):
    from scipy.sparse.csgraph import dijkstra

    dist = dijkstra(csr_aug, directed=True, indices=n + rows, limit=limit_s)[:, pt_nodes]
    t = np.maximum(dist + pt_conn_s[None, :] - _EPS, 0.0)
    fi, pi = np.nonzero(t <= limit_s)
    return rows[fi], pi, t[fi, pi]


def pairs_within(graph: RoadGraph, points_xy: np.ndarray, facilities_xy: np.ndarray, limit_s: float, *,
                 max_snap_m: float | None = 2000.0, direction: str = "to", chunk: int | None = None,
                 client=None, progress: Progress | None = None):
    """Every (point, facility) pair within ``limit_s`` seconds by the road graph (sparse).

    Searches from the facilities (in chunks, optionally on Dask) with the search cut at
    ``limit_s``; ``direction="to"`` gives times from the point to the facility.

    Returns
    -------
    point, facility : ndarray of int
    time_s : ndarray of float
    """
    from gis.analysis import parallel

    check_range("limit_s", limit_s, 0, lo_open=True)
    fac = graph.snap(facilities_xy, max_snap_m)
    pts = graph.snap(points_xy, max_snap_m)
    n = graph.n_nodes
    okf = np.flatnonzero(fac.ok)
    okp = np.flatnonzero(pts.ok)
    if len(okf) == 0 or len(okp) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0)
    aug = _augmented(graph.csr_for(direction), fac.node[okf], fac.dist_m[okf] / graph.connector_mps)
    if chunk is None:
        chunk = max(1, min(256, int(32e6 // (8 * (n + len(okf))))))
    chunks = [np.arange(i, min(i + chunk, len(okf))) for i in range(0, len(okf), chunk)]
    parts: list = []
    done = 0

    def collect(c, res):
        nonlocal done
        parts.append(res)
        done += len(c)
        if progress:
            progress(done, len(okf))

    parallel.map_chunks(_pairs_chunk, chunks, client=client, on_result=collect,
                        shared=dict(csr_aug=aug, n=n, pt_nodes=pts.node[okp],
                                    pt_conn_s=pts.dist_m[okp] / graph.connector_mps, limit_s=limit_s))
    f = np.concatenate([okf[p[0]] for p in parts]) if parts else np.zeros(0, dtype=np.int64)
    p = np.concatenate([okp[q[1]] for q in parts]) if parts else np.zeros(0, dtype=np.int64)
    t = np.concatenate([q[2] for q in parts]) if parts else np.zeros(0)
    # same node: the direct connector
    df = pd.DataFrame({"p": p, "f": f, "t": t})
    same = _same_pairs(pts, fac)
    if len(same[0]):
        direct = np.hypot(*(pts.xy[same[0]] - fac.xy[same[1]]).T) / graph.connector_mps
        extra = pd.DataFrame({"p": same[0], "f": same[1], "t": direct})
        extra = extra[pts.ok[extra["p"]] & fac.ok[extra["f"]] & (extra["t"] <= limit_s)]
        df = pd.concat([df, extra]).groupby(["p", "f"], as_index=False)["t"].min()
    df = df.sort_values(["p", "f"], kind="stable")
    return df["p"].to_numpy(np.int64), df["f"].to_numpy(np.int64), df["t"].to_numpy(float)


def _same_pairs(o: Snap, d: Snap) -> tuple[np.ndarray, np.ndarray]:
    df_o = pd.DataFrame({"node": o.node, "i": np.arange(len(o.node))})
    df_d = pd.DataFrame({"node": d.node, "j": np.arange(len(d.node))})
    mm = df_o.merge(df_d, on="node")
    return mm["i"].to_numpy(), mm["j"].to_numpy()


def route(graph: RoadGraph, origin_xy, destination_xy, *, max_snap_m: float | None = 2000.0
          ) -> dict[str, Any]:
    """The fastest route between two metric points.

    Returns
    -------
    dict
        ``time_s``, ``length_m`` (connectors included), ``nodes`` (node indices), ``geometry``
        (a shapely LineString in :data:`METRIC_CRS`).

    Raises
    ------
    NoRouteError
        A point is farther than ``max_snap_m`` from the graph, or no path joins them.
    """
    import shapely
    from scipy.sparse.csgraph import dijkstra

    s = graph.snap(np.vstack([origin_xy, destination_xy]), max_snap_m, main_only=False)
    for i, what in ((0, "origin"), (1, "destination")):
        if not s.ok[i]:
            raise NoRouteError(f"The {what} is {s.dist_m[i]:.0f} m from the nearest road, farther "
                               f"than max_snap_m={max_snap_m:g} m: it is not on the road graph.")
    a, b = int(s.node[0]), int(s.node[1])
    conn = s.dist_m / graph.connector_mps
    if a == b:
        d = float(np.hypot(*(s.xy[1] - s.xy[0])))
        return {"time_s": d / graph.connector_mps, "length_m": d, "nodes": [a],
                "geometry": shapely.LineString(s.xy)}
    dist, pred = dijkstra(graph.csr, directed=True, indices=a, return_predecessors=True)
    if not np.isfinite(dist[b]):
        raise NoRouteError("The origin and the destination are on parts of the road graph that "
                           "no road joins (disconnected): there is no route between them.")
    path = [b]
    while path[-1] != a:
        path.append(int(pred[path[-1]]))
    path.reverse()
    pts = np.vstack([s.xy[0], graph.xy[path], s.xy[1]])
    line = shapely.LineString(pts)
    return {"time_s": float(dist[b] + conn[0] + conn[1]), "length_m": float(line.length),
            "nodes": path, "geometry": line}


def service_area_polygons(graph: RoadGraph, facilities_xy: np.ndarray, minutes, *,
                          max_snap_m: float | None = 2000.0, buffer_m: float = 100.0,
                          direction: str = "from") -> list:
    """Polygons of the area reachable within each time (isochrones), metric CRS.

    The reachable part of every edge (cut where the time runs out) is buffered by ``buffer_m``
    (the last stretch off the road) and dissolved. Returns one polygon per threshold, in the
    order of ``minutes`` (ascending), each containing the previous one.
    """
    import shapely

    fac = graph.snap(facilities_xy, max_snap_m)
    limit = max(minutes) * 60.0
    times, _ = node_times(graph, fac, direction=direction, limit_s=limit)
    tu = times[graph.u]
    out = []
    for mins in minutes:
        T = mins * 60.0
        reach = tu < T
        # the part of each edge reached from its start (a two-way road is two edges, so its
        # other end is covered from there)
        frac = np.clip((T - tu[reach]) / graph.time_s[reach], 0.0, 1.0)
        u, v = graph.u[reach], graph.v[reach]
        # an edge reached whole is drawn once, whichever direction reached it
        full = frac >= 1.0
        pair = np.stack([np.minimum(u, v), np.maximum(u, v)], axis=1)
        first = np.zeros(len(u), dtype=bool)
        if full.any():
            _, idx = np.unique(pair[full], axis=0, return_index=True)
            first[np.flatnonzero(full)[idx]] = True
        keep = ~full | first
        a = graph.xy[u[keep]]
        b = a + frac[keep][:, None] * (graph.xy[v[keep]] - a)
        segs = shapely.linestrings(np.stack([a, b], axis=1))
        # merged into long lines first: buffering a few thousand lines and dissolving them is
        # several times faster than dissolving a buffer per segment
        lines = shapely.get_parts(shapely.line_merge(shapely.multilinestrings(segs))) if len(segs) else segs
        pts = shapely.points(fac.xy[fac.ok])
        geom = shapely.union_all(np.concatenate([shapely.buffer(lines, buffer_m, quad_segs=4),
                                                 shapely.buffer(pts, buffer_m, quad_segs=4)]))
        if out:  # nested by construction: a longer time covers everything a shorter one does
            geom = shapely.union(out[-1], geom)
        out.append(geom)
    return out


def straight_line_nearest(points_xy: np.ndarray, facilities_xy: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Straight-line distance (m) from each point to its nearest facility, and which (k-d tree)."""
    from scipy.spatial import cKDTree

    if len(facilities_xy) == 0:
        raise EmptyInputError("The facility set has no points.")
    d, i = cKDTree(facilities_xy).query(np.asarray(points_xy).reshape(-1, 2))
    return d, i.astype(np.int64)


def speed_table(speeds: dict[str, float] | None = None) -> pd.DataFrame:
    """The speeds in use by class (km/h), for documentation and notebooks."""
    table = dict(DEFAULT_SPEEDS_KMH)
    table.update({k.lower(): float(v) for k, v in (speeds or {}).items()})
    return pd.DataFrame({"road_class": list(table), "speed_kmh": list(table.values())})


def _check_minutes(minutes) -> list[float]:
    vals = sorted({float(x) for x in minutes})
    for x in vals:
        check_range("minutes", x, 0, 600, lo_open=True)
    return vals


def haversine_m(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Great-circle distance (m) on the WGS 84 mean radius."""
    r = 6_371_008.8
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi, dl = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * r * np.arcsin(np.sqrt(a))


_ = math  # keep the import for doctest namespaces
