"""The same analyses on Dask (a LocalCluster of 2 workers, and the synchronous scheduler) give the
same results as in-process."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from analysis_helpers import WORLDPOP, real_db  # noqa: F401

from gis.analysis import health, logistics, network, planning, population
from gis.analysis.layers import load_facilities, load_layer
from gis.analysis.parallel import check_client
from gis.errors import InputError

CENTRE = (106.655, 10.755, 106.695, 10.800)


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster

    lc = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(lc)
    yield client
    client.close()
    lc.close()


@pytest.fixture(scope="module")
def inputs(real_db):
    wards = load_layer(real_db, "wards_2019", aoi=CENTRE)
    cells = population.worldpop_cells(WORLDPOP, bounds=tuple(wards.total_bounds))
    g = network.build_graph(load_layer(real_db, "roads"))
    return wards, cells, g, load_facilities(real_db)


@pytest.mark.parametrize("mode", ["synchronous", "cluster"])
def test_same_results_on_dask(mode, cluster, inputs, real_db):
    client = cluster if mode == "cluster" else "synchronous"
    wards, cells, g, hosp = inputs
    # population points: partitions cut with dask-geopandas
    a = population.population_points(cells, wards)
    b = population.population_points(cells, wards, client=client)
    pd.testing.assert_frame_equal(pd.DataFrame(a.drop(columns="geometry")), pd.DataFrame(b.drop(columns="geometry")))
    assert a.geometry.geom_equals_exact(b.geometry, 1e-9).all()
    # OD matrix: origin chunks mapped over the workers (small chunks: several tasks)
    xy = np.asarray([p.coords[0] for p in logistics.zone_centroids(wards).to_crs(32648).geometry])
    m0 = network.od_matrix(g, xy, unreachable="nan")
    m1 = network.od_matrix(g, xy, unreachable="nan", client=client, chunk=7)
    np.testing.assert_array_equal(m0, m1)
    # 2SFCA: facility chunks
    s0 = health.two_step_fca(a, hosp, graph=g)
    s1 = health.two_step_fca(a, hosp, graph=g, client=client)
    np.testing.assert_allclose(s0["access"], s1["access"], rtol=1e-12)
    # land use by ward with dask-geopandas partitions
    lots = load_layer(real_db, "lots")
    zones = load_layer(real_db, "wards_2019", aoi=tuple(lots.total_bounds))
    l0 = planning.land_use_by_zone(lots, zones, use_column="use_class")
    l1 = planning.land_use_by_zone(lots, zones, use_column="use_class", client=client)
    pd.testing.assert_frame_equal(pd.DataFrame(l0.drop(columns="geometry")), pd.DataFrame(l1.drop(columns="geometry")),
                                  rtol=1e-9)


def test_bad_client():
    with pytest.raises(InputError, match="client"):
        check_client("gpu")
    with pytest.raises(InputError, match="client"):
        check_client(42)
