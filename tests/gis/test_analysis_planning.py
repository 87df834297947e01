"""Planning statistics on the real CSL plan and buildings and on the sample cadastre and plan,
cross-checked against independent PostGIS queries."""

from __future__ import annotations

import numpy as np
import pytest
from analysis_helpers import count, real_db, rows, sample_db, sample_files  # noqa: F401

from gis.analysis import planning
from gis.analysis._common import EmptyInputError
from gis.analysis.layers import load_layer
from gis.errors import InputError

TOL = 1e-6  # the stated relative tolerance of land-use areas against the ward's area


@pytest.mark.parametrize("zones", ["wards_2019", "wards_2025", "districts"])
def test_land_use_areas_sum_to_ward_area_real_plan(real_db, zones):
    lots = load_layer(real_db, "lots")
    wards = load_layer(real_db, zones, aoi=tuple(lots.total_bounds))
    out = planning.land_use_by_zone(lots, wards, use_column="use_class", source="lots")
    assert out.attrs["tolerance_relative"] == TOL
    per = out.groupby("code").agg(total=("area_m2", "sum"), zone=("zone_area_m2", "first"))
    overlap = out.attrs["overlap_m2"]
    assert ((per["total"] - per["zone"]).abs() <= TOL * per["zone"] + overlap + 1e-6).all()
    assert out.attrs["max_residual_m2"] <= TOL * per["zone"].max()
    # the mapped area equals the plan's area inside the wards (PostGIS, geography areas: 0.5 %)
    mapped = out[out["use"] != "(unmapped)"]["area_m2"].sum()
    ref = count(real_db, "SELECT sum(ST_Area(ST_Intersection(l.geom, w.geom)::geography)) FROM "
                         "planning.lots l JOIN admin.{} w ON ST_Intersects(l.geom, w.geom)".format(
                             {"wards_2019": "wards_2019", "wards_2025": "wards_2025", "districts": "districts"}[zones]))
    assert mapped == pytest.approx(ref, rel=0.005)
    shares = out[out["use"] != "(unmapped)"].groupby("code")["share_of_mapped"].sum()
    assert np.allclose(shares, 1.0)
    assert set(out["group"]) >= {"residential", "green", "water"}


def test_land_use_of_the_sample_cadastre_by_group(sample_db):
    parcels = load_layer(sample_db, "parcels")
    wards = load_layer(sample_db, "wards_2025", aoi=tuple(parcels.total_bounds))
    out = planning.land_use_by_zone(parcels, wards, use_column="land_use", by="group")
    assert "residential" in set(out["use"])
    ak = out[out["code"] == "27094"]
    assert ak["area_m2"].sum() == pytest.approx(ak["zone_area_m2"].iloc[0] + out.attrs["overlap_m2"], rel=TOL)
    # parcels of the sample overlap nothing (a tiling with gaps = streets)
    assert out.attrs["overlap_m2"] < 1.0


def test_compliance_matches_postgis_on_the_sample(sample_db):
    lots, b, p = (load_layer(sample_db, n) for n in ("lots", "buildings", "parcels"))
    out = planning.plan_compliance(lots, b, p)
    assert set(out["rule"]) <= {"max_storeys", "max_height", "land_use", "max_coverage", "max_far"}
    storeys = out[out["rule"] == "max_storeys"]
    # independent: buildings whose point on surface lies in a lot with fewer storeys allowed
    ref = count(sample_db, "SELECT count(*) FROM city.buildings b JOIN planning.lots l "
                           "ON ST_Within(ST_PointOnSurface(b.geom), l.geom) "
                           "WHERE b.storeys > 0 AND l.max_storeys > 0 AND b.storeys > l.max_storeys")
    assert len(storeys) == ref
    assert (storeys["value"] > storeys["limit"]).all() and (storeys["excess"] > 0).all()
    height = out[out["rule"] == "max_height"]
    ref_h = count(sample_db, "SELECT count(*) FROM city.buildings b JOIN planning.lots l "
                             "ON ST_Within(ST_PointOnSurface(b.geom), l.geom) "
                             "WHERE l.max_height_m > 0 AND b.height_m > l.max_height_m")
    assert len(height) == ref_h
    assert out["message"].str.len().min() > 10
    assert sum(out.attrs["violations_by_rule"].values()) == len(out)
    assert out.attrs["checked"]["buildings"] == len(b)


def test_compliance_real_csl_plan(real_db):
    lots, b = load_layer(real_db, "lots"), load_layer(real_db, "buildings")
    out = planning.plan_compliance(lots, b)
    h = out[out["rule"] == "max_height"]
    assert len(h) > 0 and (h["value"] > h["limit"]).all()
    assert out.attrs["checked"]["buildings_outside_lots"] < len(b)


def test_built_density_floor_area(real_db):
    b = load_layer(real_db, "buildings")
    wards = load_layer(real_db, "wards_2019", aoi=tuple(b.total_bounds))
    out = planning.built_density(b, wards)
    st, basis = planning.estimate_storeys(b)
    # all footprints lie in the wards: floor area = sum of footprint x storeys (geography areas, 0.5 %)
    ref = count(b_dsn := real_db, "SELECT sum(ST_Area(geom::geography) * CASE WHEN storeys > 0 THEN storeys "
                                  "WHEN height_m > 0 THEN greatest(1, round(height_m / 3.5)) ELSE 1 END) "
                                  "FROM city.buildings")
    assert b_dsn
    assert out["floor_area_m2"].sum() == pytest.approx(ref, rel=0.005)
    assert out["n_buildings"].sum() == len(b)
    assert ((out["coverage"] >= 0) & (out["coverage"] <= 1)).all()
    assert out.attrs["storeys_basis"]["storeys"] > 5000
    by_lot = planning.built_density(b, load_layer(real_db, "lots").reset_index(), zone_key="lot_id")
    assert len(by_lot) == 373


def test_capacity_per_lot_and_ward(sample_db):
    lots, b = load_layer(sample_db, "lots"), load_layer(sample_db, "buildings")
    cap = planning.lot_capacity(lots, b)
    far_lots = cap[cap["basis"] == "far"]
    assert len(far_lots) > 0
    row = far_lots.iloc[0]
    lot = lots.loc[row["lot_id"]]
    assert row["permitted_floor_area_m2"] == pytest.approx(lot["max_far"] * row["lot_area_m2"])
    assert (cap["remaining_floor_area_m2"].dropna() >= 0).all()
    wards = load_layer(sample_db, "wards_2025", aoi=tuple(lots.total_bounds))
    z = planning.capacity_by_zone(cap, wards)
    assert z["permitted_floor_area_m2"].sum() == pytest.approx(np.nansum(cap["permitted_floor_area_m2"]), rel=1e-6)


def test_use_groups():
    assert planning.use_group("ODT") == "residential"
    assert planning.use_group("CX") == "green"
    assert planning.use_group("Đất giáo dục") == "education"
    assert planning.use_group("Transportation, Infrastructure") == "infrastructure"
    assert planning.use_group(None, "") == "other"


def test_bad_planning_inputs(sample_db):
    lots, parcels = load_layer(sample_db, "lots"), load_layer(sample_db, "parcels")
    with pytest.raises(EmptyInputError):
        planning.land_use_by_zone(lots.iloc[:0], parcels, use_column="use_class")
    with pytest.raises(InputError, match="lacks the column"):
        planning.land_use_by_zone(lots, load_layer(sample_db, "wards_2025"), use_column="colour")
    with pytest.raises(InputError, match="by must be one of"):
        planning.land_use_by_zone(lots, load_layer(sample_db, "wards_2025"), use_column="use_class", by="x")
    with pytest.raises(EmptyInputError, match="buildings or parcels"):
        planning.plan_compliance(lots)
    with pytest.raises(InputError, match="storey_height_m"):
        planning.built_density(load_layer(sample_db, "buildings"), lots, storey_height_m=100)
