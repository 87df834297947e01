"""Population per ward, WorldPop points and the 2019 -> 2025 crosswalk, on the real data."""

from __future__ import annotations

import numpy as np
import pytest
from analysis_helpers import CENSUS_2019_TOTAL, CROSSWALK_CSV, WORLDPOP, real_db  # noqa: F401

from gis.analysis import population as pop
from gis.analysis._common import EmptyInputError
from gis.analysis.layers import load_layer
from gis.errors import InputError, NotFoundError


def test_2019_ward_populations_sum_to_the_census_total(real_db):
    wards = load_layer(real_db, "wards_2019")
    assert len(wards) == 322
    out = pop.ward_population(wards)
    assert int(out["population"].sum()) == CENSUS_2019_TOTAL
    assert out.attrs["total_population"] == CENSUS_2019_TOTAL
    assert out.attrs["units"]["density_per_km2"] == "persons/km2"
    # density is population over the computed area; areas sum to the city's land (about 2,095 km2)
    assert out["area_km2"].sum() == pytest.approx(2095, rel=0.02)
    row = out.iloc[0]
    assert row["density_per_km2"] == pytest.approx(row["population"] / row["area_km2"])
    # the districts hold the same people
    d = pop.ward_population(load_layer(real_db, "districts"))
    assert int(d["population"].sum()) == CENSUS_2019_TOTAL


def test_worldpop_estimate_per_ward_is_close_to_the_cells_total(real_db):
    wards = load_layer(real_db, "wards_2019")
    out = pop.ward_population(wards, worldpop=WORLDPOP)
    cells = pop.worldpop_cells(WORLDPOP, bounds=tuple(wards.total_bounds))
    points = pop.population_points(cells, wards)
    # two independent zonal sums (cell-coverage weighted vs area-weighted pieces) agree
    assert out["worldpop_population"].sum() == pytest.approx(points["population"].sum(), rel=0.01)
    # WorldPop 2020 (UN-adjusted) is of the order of the 2019 census
    assert 0.9 * CENSUS_2019_TOTAL < points["population"].sum() < 1.3 * CENSUS_2019_TOTAL
    per_ward = points.groupby("code")["population"].sum()
    assert per_ward.sum() == pytest.approx(points["population"].sum())


@pytest.mark.parametrize("method", ["area", "population"])
def test_crosswalk_weights_sum_to_one_and_carry_the_total(real_db, method):
    w19, w25 = load_layer(real_db, "wards_2019"), load_layer(real_db, "wards_2025")
    cw = pop.ward_crosswalk(w19, w25, method=method, worldpop=WORLDPOP)
    assert cw.attrs["method"] == method
    assert method in " ".join(cw.attrs["assumptions"])
    sums = cw.groupby("code_2019")["weight"].sum()
    assert np.allclose(sums, 1.0)
    assert cw.attrs["n_wards_2019_mapped"] == 322
    carried = pop.population_2025_from_2019(w19, w25, method=method, worldpop=WORLDPOP)
    assert carried.attrs["crosswalk_method"] == method
    assert carried["population_2019"].sum() == pytest.approx(CENSUS_2019_TOTAL, abs=1e-3)
    # the former Binh Duong and Ba Ria - Vung Tau get nothing: about 102 of the 168 wards are old HCMC
    assert 95 <= int((carried["coverage"] > 0.5).sum()) <= 110


def test_crosswalk_agrees_with_the_official_list(real_db):
    w19, w25 = load_layer(real_db, "wards_2019"), load_layer(real_db, "wards_2025")
    cw = pop.ward_crosswalk(w19, w25)
    official = pop.official_crosswalk(CROSSWALK_CSV)
    assert official["name_2025"].nunique() == 168
    agreement = pop.crosswalk_agreement(cw, official, w19, load_layer(real_db, "districts"))
    assert agreement["resolved"] > 250
    assert agreement["agreement"] > 0.9, agreement


def test_carry_over_preserves_totals_and_needs_numbers(real_db):
    w19, w25 = load_layer(real_db, "wards_2019"), load_layer(real_db, "wards_2025")
    cw = pop.ward_crosswalk(w19, w25)
    values = w19.reset_index()[["code"]].assign(n=1.0)
    carried = pop.carry_over(values, cw)
    assert carried["n"].sum() == pytest.approx(322)
    with pytest.raises(InputError, match="No numeric column"):
        pop.carry_over(w19.reset_index()[["code", "name"]], cw)


def test_bad_population_inputs(real_db, tmp_path):
    with pytest.raises(NotFoundError, match="does not exist"):
        pop.worldpop_cells(tmp_path / "nope.tif")
    (tmp_path / "bad.tif").write_text("not a raster")
    with pytest.raises(InputError, match="not a raster"):
        pop.worldpop_cells(tmp_path / "bad.tif")
    with pytest.raises(EmptyInputError):
        pop.worldpop_cells(WORLDPOP, bounds=(0.0, 0.0, 1.0, 1.0))
    w19 = load_layer(real_db, "wards_2019")
    with pytest.raises(InputError, match="method"):
        pop.ward_crosswalk(w19, w19, method="volume")
    with pytest.raises(InputError, match="worldpop"):
        pop.ward_crosswalk(w19, w19, method="population")
    with pytest.raises(EmptyInputError):
        pop.ward_population(w19.iloc[:0])
