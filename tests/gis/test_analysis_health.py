"""Health access on the real data (WorldPop, OSM roads and hospitals) and on the sample."""

from __future__ import annotations

import numpy as np
import pytest
from analysis_helpers import WORLDPOP, real_db, sample_db, sample_files  # noqa: F401
from scipy.spatial.distance import cdist

from gis.analysis import health, network, population
from gis.analysis._common import EmptyInputError, point_xy
from gis.analysis.layers import load_facilities, load_layer
from gis.errors import InputError

CENTRE = (106.655, 10.755, 106.695, 10.800)


@pytest.fixture(scope="module")
def setup(real_db):
    wards = load_layer(real_db, "wards_2019")
    cells = population.worldpop_cells(WORLDPOP, bounds=tuple(wards.total_bounds))
    pts = population.population_points(cells, wards)
    graph = network.build_graph(load_layer(real_db, "roads"), directed=True)
    return wards, pts, load_facilities(real_db), graph


def test_nearest_by_straight_line_is_the_brute_force_minimum(setup):
    wards, pts, hosp, graph = setup
    assert len(hosp) == 20 and set(hosp["category"]) == {"hospital"}
    out = health.nearest_facility(pts, hosp, graph=graph)
    d = cdist(point_xy(pts), point_xy(hosp))
    assert np.allclose(out["distance_m"], d.min(axis=1))
    assert (out["nearest_id"].to_numpy() == hosp.index.to_numpy()[d.argmin(axis=1)]).all()
    on = out["time_min"].notna()
    assert on.sum() > 300 and out.attrs["off_network"] == (~on).sum()
    # never faster than the straight line at the top speed
    assert (out.loc[on, "time_min"] * 60 >= out.loc[on, "distance_m"] / (graph.max_speed_kmh / 3.6) - 1e-6).all()


def test_population_within_thresholds_per_ward(setup):
    wards, pts, hosp, graph = setup
    out = health.population_access(pts, hosp, graph=graph, zones=wards)
    assert out["population"].sum() == pytest.approx(pts["population"].sum())
    for a, b in (("1km", "3km"), ("3km", "5km"), ("10min", "20min"), ("20min", "30min")):
        assert (out[f"pop_within_{a}"] <= out[f"pop_within_{b}"] + 1e-9).all()
    assert (out["pop_within_30min"] + out["pop_off_network"] <= out["population"] + 1e-6).all()
    assert out.attrs["units"]["pop_within_10min"] == "persons"
    assert out.attrs["totals"]["pop_within_10min"] > 1e6
    central = out[out.geometry.representative_point().within(
        __import__("shapely").box(*CENTRE))]
    assert (central["share_within_30min"] > 0.9).mean() > 0.8


def test_2sfca_conserves_capacity(setup):
    wards, pts, hosp, graph = setup
    acc = health.two_step_fca(pts, hosp, graph=graph, per=1000)
    assert acc.attrs["capacity_basis"].startswith("1 per facility")
    # sum_k P_k A_k / per = total capacity of the facilities that anyone reaches
    reached = acc.attrs["total_capacity"]  # every hospital of the centre is reached by someone
    assert (acc["population"] * acc["access"]).sum() / 1000 == pytest.approx(reached, rel=1e-9)
    gauss = health.two_step_fca(pts, hosp, graph=graph, decay="gaussian")
    assert (gauss["population"] * gauss["access"]).sum() / 1000 == pytest.approx(reached, rel=1e-6)
    beds = hosp.assign(capacity=np.arange(100, 100 + 20 * 50, 50))
    acc_b = health.two_step_fca(pts, beds, graph=graph)
    assert acc_b.attrs["capacity_known"] == 20
    assert (acc_b["population"] * acc_b["access"]).sum() / 1000 == pytest.approx(beds["capacity"].sum(), rel=1e-9)
    under = health.underserved_wards(acc, wards)
    assert set(under.attrs["underserved"]) == set(under.loc[under["underserved"], "code"])
    judged = under[under["covered"] >= 0.5]
    assert len(judged) > 50
    assert (under.loc[under["underserved"], "relative_access"].fillna(0) < 0.5).all()
    assert (under.loc[~under["covered"].fillna(0).ge(0.5), "underserved"] == False).all()  # noqa: E712


def test_straight_line_2sfca_and_coincident_points(setup):
    wards, pts, hosp, graph = setup
    acc = health.two_step_fca(pts, hosp, catchment_km=5)
    assert acc.attrs["parameters"]["catchment_km"] == 5
    on_site = health.two_step_fca(hosp.assign(population=1000.0), hosp, catchment_km=0.001)
    assert (on_site["n_facilities"] >= 1).all()


def test_sample_health_access_with_beds(sample_db):
    wards = load_layer(sample_db, "wards_2025", aoi="ward:27094")
    cells = population.worldpop_cells(WORLDPOP, bounds=tuple(wards.total_bounds))
    pts = population.population_points(cells, wards)
    fac = load_facilities(sample_db)
    assert fac["capacity"].notna().sum() == 3  # the three hospitals have beds
    g = network.build_graph(load_layer(sample_db, "roads"))
    acc = health.two_step_fca(pts, fac, graph=g, max_snap_m=5000)
    assert acc.attrs["capacity_basis"] == "median of the known capacities"
    near = health.nearest_facility(load_layer(sample_db, "parcels"), fac, graph=g)
    assert near["time_min"].notna().all()


def test_bad_health_inputs(setup, real_db):
    wards, pts, hosp, graph = setup
    with pytest.raises(EmptyInputError, match="no points"):
        health.nearest_facility(pts, hosp.iloc[:0])
    with pytest.raises(EmptyInputError, match="no points"):
        load_facilities(real_db, ("helipad",))
    with pytest.raises(InputError, match="minutes must be"):
        health.population_access(pts, hosp, graph=graph, minutes=[10, -1])
    with pytest.raises(InputError, match="decay"):
        health.two_step_fca(pts, hosp, decay="linear")
    with pytest.raises(InputError, match="catchment_min"):
        health.two_step_fca(pts, hosp, graph=graph, catchment_min=0)
    with pytest.raises(InputError, match="ratio"):
        health.underserved_wards(health.two_step_fca(pts, hosp), ratio=2)
