"""Logistics on the real data: ward OD matrix, service areas, survey OD flows, p-median."""

from __future__ import annotations

import itertools

import numpy as np
import pyogrio
import pytest
from analysis_helpers import OD_2014, OD_2018, WORLDPOP, real_db  # noqa: F401

from gis.analysis import logistics, network, population
from gis.analysis._common import EmptyInputError
from gis.analysis.layers import load_facilities, load_layer
from gis.errors import InputError, NotFoundError

CENTRE = (106.655, 10.755, 106.695, 10.800)


@pytest.fixture(scope="module")
def graph(real_db):
    return network.build_graph(load_layer(real_db, "roads"), directed=False)


@pytest.fixture(scope="module")
def central(real_db):
    wards = load_layer(real_db, "wards_2019", aoi=CENTRE)
    cells = population.worldpop_cells(WORLDPOP, bounds=tuple(wards.total_bounds))
    return wards, population.population_points(cells, wards)


def test_ward_od_matrix(graph, central):
    wards, _ = central
    od = logistics.od_travel_times(wards, graph)
    k = len(wards)
    assert len(od) == k * k
    m = logistics.matrix_frame(od)
    assert np.allclose(np.diag(m.to_numpy()), 0)
    ok = m.notna().to_numpy()
    assert np.allclose(m.to_numpy()[ok], m.T.to_numpy()[ok], atol=1e-6 / 60)
    assert od.attrs["unreachable_pairs"] == int((~ok).sum())
    assert od.attrs["units"]["time_min"] == "min"
    assert (od["speed_kmh"].dropna() <= graph.max_speed_kmh + 1e-6).all()


def test_service_areas_grow_with_time(real_db, graph, central):
    _, pts = central
    hosp = load_facilities(real_db).iloc[:1]
    sa = logistics.service_areas(hosp, graph, minutes=[2, 5, 10], population=pts)
    assert list(sa["minutes"]) == [2, 5, 10]
    assert (np.diff(sa["area_km2"]) > 0).all()
    assert (np.diff(sa["population"]) >= 0).all()
    for small, big in itertools.pairwise(sa.geometry.values):
        assert big.buffer(1e-9).contains(small)
    per = logistics.service_areas(load_facilities(real_db).iloc[:3], graph, minutes=[5], per_facility=True)
    assert len(per) == 3 and "facility" in per


def test_od_flows_2014_wards(real_db):
    wards = load_layer(real_db, "wards_2019")
    raw = pyogrio.read_dataframe(OD_2014, read_geometry=False)
    out = logistics.od_flows(OD_2014, wards)
    assert out.attrs["rows"] == len(raw) and out.attrs["rows_matched"] > 0.95 * len(raw)
    matched = out.attrs["flow_matched"]
    assert out["outgoing"].sum() == pytest.approx(matched) and out["incoming"].sum() == pytest.approx(matched)
    corr = logistics.od_flows(OD_2014, wards, level="corridor")
    assert corr["total"].sum() == pytest.approx(matched)
    assert (corr["zone_a"] <= corr["zone_b"]).all()
    assert corr["total"].is_monotonic_decreasing


def test_od_flows_2018_districts_by_name(real_db):
    out = logistics.od_flows(OD_2018, load_layer(real_db, "districts"), level="corridor")
    assert out.attrs["rows_matched"] >= 70
    top = out.iloc[0]
    assert {top["name_a"], top["name_b"]} == {"District 1", "District 7"}


def test_p_median_exact_and_greedy(real_db, graph, central):
    wards, pts = central
    cand = logistics.zone_centroids(wards).iloc[:14]
    exact = logistics.p_median(pts, cand, graph, 2, method="exact")
    greedy = logistics.p_median(pts, cand, graph, 2, method="greedy")
    se, sg = exact.attrs["summary"], greedy.attrs["summary"]
    assert se["method"] == "exact" and se["combinations"] == 91
    assert se["objective_person_min"] <= sg["objective_person_min"] + 1e-6
    # brute force with the same cost matrix
    from gis.analysis._common import point_xy

    C = network.od_matrix(graph, point_xy(cand), point_xy(pts), unreachable="nan", direction="to")
    C = np.where(np.isnan(C), 120 * 60.0, np.minimum(C, 120 * 60.0))
    w = pts["population"].to_numpy()
    best = min(itertools.combinations(range(14), 2), key=lambda c: w @ C[list(c)].min(axis=0))
    assert set(exact["candidate"]) == set(cand.index[list(best)])
    # with the existing hospitals: coverage and mean time never get worse
    with_existing = logistics.p_median(pts, cand, graph, 2, existing=load_facilities(real_db))
    s = with_existing.attrs["summary"]
    assert s["after"]["coverage"] >= s["before"]["coverage"]
    assert s["after"]["mean_time_min"] <= s["before"]["mean_time_min"]


def test_bad_logistics_inputs(real_db, graph, central, tmp_path):
    wards, pts = central
    cand = logistics.zone_centroids(wards)
    with pytest.raises(InputError, match="k must be between 1"):
        logistics.p_median(pts, cand, graph, 0)
    with pytest.raises(InputError, match="k must be between 1"):
        logistics.p_median(pts, cand, graph, len(cand) + 1)
    with pytest.raises(InputError, match="max_combinations"):
        logistics.p_median(pts, cand, graph, 5, method="exact")
    with pytest.raises(EmptyInputError, match="no points"):
        logistics.p_median(pts, cand.iloc[:0], graph, 1)
    with pytest.raises(EmptyInputError, match="no points"):
        logistics.service_areas(cand.iloc[:0], graph)
    with pytest.raises(InputError, match="minutes"):
        logistics.service_areas(cand, graph, minutes=[0])
    with pytest.raises(NotFoundError):
        logistics.od_flows(tmp_path / "none.shp", wards)
    with pytest.raises(EmptyInputError, match="matches"):
        logistics.od_flows(OD_2018, wards.iloc[:3])
