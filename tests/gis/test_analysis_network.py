"""The road graph on the real roads: symmetry, lower bound, zero at a facility, disconnection,
and equality with a plain networkx Dijkstra."""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely
from analysis_helpers import real_db, sample_db, sample_files  # noqa: F401

from gis.analysis import logistics, network
from gis.analysis._common import EmptyInputError, NoRouteError, point_xy
from gis.analysis.layers import load_layer
from gis.errors import InputError

# the UrbanReflex OSM roads (central HCMC): wards of 2019 inside their extent
CENTRE = (106.655, 10.755, 106.695, 10.800)


@pytest.fixture(scope="module")
def roads(real_db):
    return load_layer(real_db, "roads")


@pytest.fixture(scope="module")
def undirected(roads):
    return network.build_graph(roads, directed=False)


@pytest.fixture(scope="module")
def directed(roads):
    return network.build_graph(roads, directed=True)


@pytest.fixture(scope="module")
def central_wards(real_db):
    return load_layer(real_db, "wards_2019", aoi=CENTRE)


def test_graph_is_built_from_both_sources(undirected, directed, roads):
    s = undirected.summary()
    assert s["nodes"] > 15_000 and s["edges"] > 30_000
    assert s["roads_class_from_width"] > 0  # the CSL roads have a width, no OSM class
    assert directed.summary()["roads_oneway"] > 1000
    # every edge is at least as long as the straight line between its ends, and positive
    seg = np.hypot(*(undirected.xy[undirected.u] - undirected.xy[undirected.v]).T)
    assert np.allclose(undirected.length_m, seg) and (undirected.length_m > 0).all()
    assert np.allclose(undirected.time_s, undirected.length_m / (undirected.speed_kmh / 3.6))


def test_travel_times_symmetric_on_undirected_graph(undirected, central_wards):
    xy = point_xy(logistics.zone_centroids(central_wards))
    m = network.od_matrix(undirected, xy, unreachable="nan")
    ok = ~np.isnan(m)
    assert ok.sum() > 0.8 * m.size
    assert np.allclose(m[ok], m.T[ok], rtol=1e-9, atol=1e-6)
    assert np.allclose(np.diag(m), 0.0)


@pytest.mark.parametrize("which", ["undirected", "directed"])
def test_never_faster_than_straight_line_at_top_speed(which, undirected, directed, central_wards):
    g = undirected if which == "undirected" else directed
    xy = point_xy(logistics.zone_centroids(central_wards))
    m = network.od_matrix(g, xy, unreachable="nan")
    straight = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    bound = straight / (g.max_speed_kmh / 3.6)
    ok = ~np.isnan(m)
    assert (m[ok] >= bound[ok] - 1e-6).all()


def test_facility_on_a_centroid_gives_that_centroid_zero(undirected, directed, central_wards):
    c = logistics.zone_centroids(central_wards)
    xy = point_xy(c)
    for g in (undirected, directed):
        for i in (0, len(xy) // 2, len(xy) - 1):
            t, which = network.nearest_facility_times(g, xy, xy[i:i + 1])
            assert t[i] == 0.0 and which[i] == 0
            assert (t[np.arange(len(t)) != i] >= 0).all()
    # and as a health facility set
    from gis.analysis import health

    fac = c.iloc[[3]]
    near = health.nearest_facility(c, fac, graph=undirected)
    assert near["distance_m"].iloc[3] == pytest.approx(0.0, abs=1e-6)
    assert near["time_min"].iloc[3] == 0.0


def test_equal_to_networkx_dijkstra(undirected, directed, central_wards):
    xy = point_xy(logistics.zone_centroids(central_wards))[:6]
    for g in (undirected, directed):
        m = network.od_matrix(g, xy, unreachable="nan")
        snap = g.snap(xy, 2000.0)
        G = g.to_networkx()
        for i in range(len(xy)):
            dist = nx.single_source_dijkstra_path_length(G, int(snap.node[i]), weight="time")
            for j in range(len(xy)):
                if i == j or snap.node[i] == snap.node[j]:
                    continue
                ref = dist.get(int(snap.node[j]), np.inf) + (snap.dist_m[i] + snap.dist_m[j]) / g.connector_mps
                assert m[i, j] == pytest.approx(ref, rel=1e-9, abs=1e-6)


def test_disconnected_origin_destination_raise_no_route(undirected, real_db):
    # two separate road pieces: the OSM centre and the CSL District 7 network are not joined
    g = undirected
    labels = g.component
    big = np.bincount(labels).argsort()[::-1]
    a = np.flatnonzero(labels == big[0])[0]
    b = np.flatnonzero(labels == big[1])[0]
    with pytest.raises(NoRouteError, match="disconnected"):
        network.route(g, g.xy[a], g.xy[b])
    r = network.route(g, g.xy[a], g.xy[np.flatnonzero(labels == big[0])[50]])
    assert r["time_s"] > 0 and r["length_m"] >= np.hypot(*(g.xy[a] - r["geometry"].coords[-1]))
    # a point 30 km away from every road cannot be routed
    far = g.xy[a] + np.array([30_000.0, 0.0])
    with pytest.raises(NoRouteError, match="from the nearest road"):
        network.route(g, g.xy[a], far)
    with pytest.raises(NoRouteError, match="farther than"):
        network.od_matrix(g, np.vstack([g.xy[a], far]), origin_labels=["home", "island"])
    m = network.od_matrix(g, np.vstack([g.xy[a], far]), unreachable="nan")
    assert np.isnan(m[0, 1]) and np.isnan(m[1, 0]) and m[0, 0] == 0


def test_bad_graph_inputs(roads):
    with pytest.raises(EmptyInputError):
        network.build_graph(roads.iloc[:0])
    with pytest.raises(InputError, match="tolerance_m"):
        network.build_graph(roads, tolerance_m=-1)
    with pytest.raises(InputError, match="speed"):
        network.build_graph(roads, speeds={"primary": 0})
    polys = gpd.GeoDataFrame(geometry=[shapely.box(106.7, 10.7, 106.71, 10.71)], crs=4326)
    with pytest.raises(InputError, match="lines"):
        network.build_graph(polys)
    g = network.build_graph(roads.iloc[:200])
    with pytest.raises(EmptyInputError, match="no points"):
        network.straight_line_nearest(np.zeros((3, 2)), np.zeros((0, 2)))
    with pytest.raises(EmptyInputError, match="origins"):
        network.od_matrix(g, np.zeros((0, 2)))


def test_sample_roads_form_one_connected_graph(sample_db):
    g = network.build_graph(load_layer(sample_db, "roads"), directed=False)
    assert g.n_components == 1
    assert g.summary()["nodes"] > 20
