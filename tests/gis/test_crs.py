"""Tests of gis.crs: VN-2000 transformation, parsing, reprojection and extent sanity checks.

No database is needed. The VN-2000 -> WGS 84 shift is pinned independently of PROJ's Helmert:
the tests carry their own geodetic -> ECEF -> 7-parameter Helmert (coordinate frame) -> geodetic
implementation on the WGS 84 ellipsoid (VN-2000 uses the WGS 84 ellipsoid).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import shapely
from pyproj import CRS, Geod, Transformer
from pyproj.transformer import TransformerGroup

from gis import crs as gcrs
from gis.crs import (
    HCMC_BOUNDS,
    HCMC_GRID,
    STORAGE_CRS,
    VN2000_GRIDS,
    VN2000_OPERATION_NAME,
    VN2000_TOWGS84,
    Reprojector,
    check_extent,
    crs_uri,
    describe_crs,
    guess_crs,
    is_vn2000,
    make_transformer,
    parse_crs,
    resolve_crs,
)
from gis.errors import CRSError, InputError

GEOD = Geod(ellps="WGS84")

# ---------------------------------------------------------------------------------------------
# Independent geodesy (numpy only; pyproj is NOT used for the datum shift)
# ---------------------------------------------------------------------------------------------

WGS84_A = 6378137.0
WGS84_F = 1 / 298.257223563
WGS84_E2 = WGS84_F * (2 - WGS84_F)
ARCSEC = math.pi / (180 * 3600)


def geodetic_to_ecef(lon_deg, lat_deg, h=0.0):
    lam, phi = np.radians(lon_deg), np.radians(lat_deg)
    n = WGS84_A / np.sqrt(1 - WGS84_E2 * np.sin(phi) ** 2)
    return np.array(
        [
            (n + h) * np.cos(phi) * np.cos(lam),
            (n + h) * np.cos(phi) * np.sin(lam),
            (n * (1 - WGS84_E2) + h) * np.sin(phi),
        ]
    )


def ecef_to_geodetic(xyz):
    x, y, z = xyz
    lon = np.arctan2(y, x)
    p = np.hypot(x, y)
    lat = np.arctan2(z, p * (1 - WGS84_E2))
    for _ in range(20):  # converges to < 1e-15 rad in a handful of iterations
        n = WGS84_A / np.sqrt(1 - WGS84_E2 * np.sin(lat) ** 2)
        lat = np.arctan2(z + WGS84_E2 * n * np.sin(lat), p)
    return np.degrees(lon), np.degrees(lat)


def helmert_coordinate_frame(xyz, params):
    """EPSG method 9607: X_t = T + (1 + s) * R * X_s, R with coordinate-frame rotation signs."""
    tx, ty, tz, rx, ry, rz, s_ppm = params
    rx, ry, rz = rx * ARCSEC, ry * ARCSEC, rz * ARCSEC
    rot = np.array([[1.0, rz, -ry], [-rz, 1.0, rx], [ry, -rx, 1.0]])
    xyz = np.asarray(xyz, dtype=float)
    t = np.array([tx, ty, tz]).reshape((3,) + (1,) * (xyz.ndim - 1))
    return t + (1 + s_ppm * 1e-6) * np.tensordot(rot, xyz, axes=1)


#: Circular 973/2001/TT-TCĐC, written out again here on purpose (not imported from the module).
OFFICIAL = (-191.90441429, -39.30318279, -111.45032835, -0.00928836, 0.01975479, -0.00427372,
            0.252906278)


def vn2000_to_wgs84_independent(lon, lat):
    """VN-2000 lon/lat -> WGS 84 lon/lat, ellipsoidal height 0 (as PROJ's 2D operation)."""
    return ecef_to_geodetic(helmert_coordinate_frame(geodetic_to_ecef(lon, lat), OFFICIAL))


def metres_between(lon1, lat1, lon2, lat2) -> float:
    return float(np.max(GEOD.inv(np.atleast_1d(lon1), np.atleast_1d(lat1),
                                 np.atleast_1d(lon2), np.atleast_1d(lat2))[2]))


# ---------------------------------------------------------------------------------------------
# VN-2000 -> WGS 84
# ---------------------------------------------------------------------------------------------


def test_constant_is_the_circular_973_parameter_set():
    assert VN2000_TOWGS84 == OFFICIAL
    assert HCMC_GRID == 9210


def test_constant_matches_epsg_operation_vn2000_to_wgs84_2():
    group = TransformerGroup(CRS.from_epsg(4756), CRS.from_epsg(4326), always_xy=True)
    ops = [t for t in group.transformers if VN2000_OPERATION_NAME in t.description]
    assert len(ops) == 1, [t.description for t in group.transformers]
    definition = ops[0].definition
    params = dict(re.findall(r"\b(x|y|z|rx|ry|rz|s|convention)=(\S+)", definition))
    assert params["convention"] == "coordinate_frame"
    got = tuple(float(params[k]) for k in ("x", "y", "z", "rx", "ry", "rz", "s"))
    assert got == VN2000_TOWGS84


@pytest.mark.parametrize(
    "lon, lat",
    [
        (106.7, 10.78),  # HCMC, District 1
        (106.65, 11.0),  # former Binh Duong
        (107.08, 10.35),  # Vung Tau
        (106.6, 8.68),  # Con Dao
        (105.85, 21.03),  # Hanoi
        (108.2, 16.05),  # Da Nang
    ],
)
def test_geographic_shift_matches_independent_helmert(lon, lat):
    expected_lon, expected_lat = vn2000_to_wgs84_independent(lon, lat)
    got_lon, got_lat = make_transformer(CRS.from_epsg(4756)).transform_xy(lon, lat)
    assert metres_between(got_lon, got_lat, expected_lon, expected_lat) < 0.001


# Control point: Notre-Dame Cathedral Basilica of Saigon (District 1), ~WGS 84 lon 106.69902,
# lat 10.77979. E/N in VN-2000 / TM-3 105-45 (EPSG:9210) rounded to the millimetre; the WGS 84
# lon/lat below were computed once from these E/N by the INDEPENDENT path (pyproj's inverse
# TM-3 on the VN-2000 geographic CRS, a pure map-projection step, then the numpy Helmert above).
CONTROL_E = 603590.651
CONTROL_N = 1192261.348
CONTROL_VN2000_LON = 106.69723374109023
CONTROL_VN2000_LAT = 10.780808485588379
CONTROL_WGS84_LON = 106.69902000008965
CONTROL_WGS84_LAT = 10.779789999506281


def test_projected_control_point_literals_follow_from_independent_path():
    vn_lon, vn_lat = Transformer.from_crs(9210, 4756, always_xy=True).transform(
        CONTROL_E, CONTROL_N
    )
    assert metres_between(vn_lon, vn_lat, CONTROL_VN2000_LON, CONTROL_VN2000_LAT) < 1e-6
    lon, lat = vn2000_to_wgs84_independent(vn_lon, vn_lat)
    assert metres_between(lon, lat, CONTROL_WGS84_LON, CONTROL_WGS84_LAT) < 1e-6


def test_projected_control_point_tm3_105_45_to_wgs84():
    lon, lat = make_transformer("EPSG:9210").transform_xy(CONTROL_E, CONTROL_N)
    assert metres_between(lon, lat, CONTROL_WGS84_LON, CONTROL_WGS84_LAT) < 0.001
    e, n = make_transformer(STORAGE_CRS, "EPSG:9210").transform_xy(
        CONTROL_WGS84_LON, CONTROL_WGS84_LAT
    )
    assert math.hypot(e - CONTROL_E, n - CONTROL_N) < 0.001


def test_vn2000_to_wgs84_shift_size_in_hcmc():
    # Measured: the same point has VN-2000 and WGS 84 lon/lat about 225.5 m apart in HCMC
    # (azimuth ~120 deg: WGS 84 coordinates are ~120 m east and ~60 m south of the VN-2000 ones).
    # This is far more than "a few metres": VN-2000 is a local datum whose origin is ~225 m from
    # the geocentre, on the same (WGS 84) ellipsoid, so the shift is mostly horizontal. A transform
    # without the datum shift (PROJ "ballpark") would misplace HCMC data by ~225 m.
    shift = metres_between(CONTROL_VN2000_LON, CONTROL_VN2000_LAT,
                           CONTROL_WGS84_LON, CONTROL_WGS84_LAT)
    assert 224.0 < shift < 227.0
    az, _, _ = GEOD.inv(CONTROL_VN2000_LON, CONTROL_VN2000_LAT,
                        CONTROL_WGS84_LON, CONTROL_WGS84_LAT)
    assert 115.0 < az < 125.0


def test_transform_differs_measurably_from_operation_1():
    group = TransformerGroup(CRS.from_epsg(9210), CRS.from_epsg(4326), always_xy=True)
    op1 = [t for t in group.transformers if "VN-2000 to WGS 84 (1)" in t.description]
    assert len(op1) == 1
    lon1, lat1 = op1[0].transform(CONTROL_E, CONTROL_N)
    lon, lat = make_transformer("EPSG:9210").transform_xy(CONTROL_E, CONTROL_N)
    # ~0.80 m between the two EPSG operations at the control point: the test above (< 1 mm)
    # would fail by three orders of magnitude if operation (1) were used.
    assert 0.5 < metres_between(lon, lat, lon1, lat1) < 2.0


def test_transform_differs_from_position_vector_misreading():
    # The same 7 numbers applied with the position-vector convention (the usual .prj TOWGS84
    # mistake) land ~0.55 m away: the convention matters and is pinned by the 1 mm tests.
    tx, ty, tz, rx, ry, rz, s = OFFICIAL
    wrong = (tx, ty, tz, -rx, -ry, -rz, s)
    vn_lon, vn_lat = CONTROL_VN2000_LON, CONTROL_VN2000_LAT
    lon, lat = ecef_to_geodetic(helmert_coordinate_frame(geodetic_to_ecef(vn_lon, vn_lat), wrong))
    assert metres_between(lon, lat, CONTROL_WGS84_LON, CONTROL_WGS84_LAT) > 0.3


def test_reprojector_pipeline_is_explicit():
    r = make_transformer("EPSG:9210")
    assert r.uses_vn2000_helmert
    assert not r.is_identity
    assert "+proj=helmert" in r.definition
    assert "+convention=coordinate_frame" in r.definition
    for value in ("-191.90441429", "-39.30318279", "-111.45032835", "-0.00928836", "0.01975479",
                  "-0.00427372", "0.252906278"):
        assert value in r.definition
    back = make_transformer(STORAGE_CRS, "EPSG:9210")
    assert back.uses_vn2000_helmert and "+inv +proj=helmert" in back.definition


# ---------------------------------------------------------------------------------------------
# Round trips and all grids
# ---------------------------------------------------------------------------------------------


def _hcmc_grid_points():
    lon, lat = np.meshgrid(np.linspace(106.35, 107.6, 11), np.linspace(8.6, 11.5, 11))
    return lon.ravel(), lat.ravel()


def test_round_trip_4326_9210_4326_under_1mm():
    lon, lat = _hcmc_grid_points()
    e, n = make_transformer(STORAGE_CRS, "EPSG:9210").transform_xy(lon, lat)
    lon2, lat2 = make_transformer("EPSG:9210", STORAGE_CRS).transform_xy(e, n)
    assert metres_between(lon, lat, lon2, lat2) < 0.001
    e2, n2 = make_transformer(STORAGE_CRS, "EPSG:9210").transform_xy(lon2, lat2)
    assert np.max(np.hypot(e2 - e, n2 - n)) < 0.001


def test_grids_constant_matches_epsg():
    codes = [g.epsg for g in VN2000_GRIDS]
    assert set(range(9205, 9219)) | {3405, 3406} <= set(codes)
    assert len(codes) == len(set(codes))
    names = dict((g.epsg, g.name) for g in VN2000_GRIDS)
    assert names[9210] == "VN-2000 / TM-3 105-45"
    for grid in VN2000_GRIDS:
        crs = CRS.from_epsg(grid.epsg)
        assert crs.name == grid.name
        params = {p.name: p.value for p in crs.coordinate_operation.params}
        assert params["Longitude of natural origin"] == pytest.approx(grid.central_meridian)
        assert params["Scale factor at natural origin"] == pytest.approx(grid.scale_factor)


@pytest.mark.parametrize("grid", VN2000_GRIDS, ids=lambda g: str(g.epsg))
def test_every_vn2000_grid_builds_and_round_trips(grid):
    crs = CRS.from_epsg(grid.epsg)
    assert is_vn2000(crs)
    fwd = make_transformer(crs)
    back = make_transformer(STORAGE_CRS, crs)
    assert fwd.uses_vn2000_helmert and back.uses_vn2000_helmert
    lon0 = grid.central_meridian + 0.3 if grid.epsg != 3406 else 109.0
    lon = np.array([lon0, lon0 - 0.5])
    lat = np.array([12.0, 16.0])
    e, n = back.transform_xy(lon, lat)
    lon2, lat2 = fwd.transform_xy(e, n)
    assert metres_between(lon, lat, lon2, lat2) < 0.001
    # and it is the official shift: same as going through VN-2000 geographic + own Helmert
    vn_lon, vn_lat = Transformer.from_crs(crs, CRS.from_epsg(4756), always_xy=True).transform(
        e, n
    )
    ind_lon, ind_lat = vn2000_to_wgs84_independent(vn_lon, vn_lat)
    assert metres_between(lon2, lat2, ind_lon, ind_lat) < 0.001


def test_between_two_vn2000_grids_there_is_no_datum_shift():
    r = make_transformer("EPSG:9210", "EPSG:3405")
    assert not r.uses_vn2000_helmert
    assert "helmert" not in r.definition
    e, n = r.transform_xy(CONTROL_E, CONTROL_N)
    expected = Transformer.from_crs(4756, 3405, always_xy=True).transform(
        CONTROL_VN2000_LON, CONTROL_VN2000_LAT
    )
    assert math.hypot(e - expected[0], n - expected[1]) < 0.001


def test_vn2000_to_wgs84_utm_goes_through_the_helmert():
    e, n = make_transformer("EPSG:9210", "EPSG:32648").transform_xy(CONTROL_E, CONTROL_N)
    expected = Transformer.from_crs(4326, 32648, always_xy=True).transform(
        CONTROL_WGS84_LON, CONTROL_WGS84_LAT
    )
    assert math.hypot(e - expected[0], n - expected[1]) < 0.001


def test_non_vn2000_uses_proj():
    r = make_transformer("EPSG:32648")
    assert not r.uses_vn2000_helmert
    lon, lat = r.transform_xy(686000.0, 1192000.0)
    assert (lon, lat) == pytest.approx(
        Transformer.from_crs(32648, 4326, always_xy=True).transform(686000.0, 1192000.0)
    )


# ---------------------------------------------------------------------------------------------
# Reprojector behaviour
# ---------------------------------------------------------------------------------------------


def test_identity_returns_input_untouched():
    for src in ("EPSG:4326", "OGC:CRS84", "CRS84"):
        r = make_transformer(src)
        assert r.is_identity and not r.uses_vn2000_helmert
        x, y = np.array([106.7]), np.array([10.78])
        x2, y2 = r.transform_xy(x, y)
        assert x2 is x and y2 is y
        geoms = np.array([shapely.Point(106.7, 10.78)])
        assert r.transform_geoms(geoms) is geoms


def test_make_transformer_is_cached():
    assert make_transformer("EPSG:9210") is make_transformer(CRS.from_epsg(9210))
    assert isinstance(make_transformer("EPSG:9210"), Reprojector)


def test_transform_xy_does_not_modify_inputs_and_keeps_shape():
    r = make_transformer("EPSG:9210")
    x = np.array([[CONTROL_E, CONTROL_E + 10]])
    y = np.array([[CONTROL_N, CONTROL_N + 10]])
    x_copy, y_copy = x.copy(), y.copy()
    lon, lat = r.transform_xy(x, y)
    assert lon.shape == (1, 2) and lat.shape == (1, 2)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(y, y_copy)
    assert metres_between(lon[0, 0], lat[0, 0], CONTROL_WGS84_LON, CONTROL_WGS84_LAT) < 0.001
    lon_i, lat_i = r.transform_xy([int(CONTROL_E)], [int(CONTROL_N)])  # ints and lists work
    assert np.isfinite(lon_i).all() and np.isfinite(lat_i).all()


def test_transform_geoms_matches_transform_xy_and_keeps_z():
    r = make_transformer("EPSG:9210")
    poly = shapely.box(CONTROL_E, CONTROL_N, CONTROL_E + 50, CONTROL_N + 30)
    line3d = shapely.LineString([(CONTROL_E, CONTROL_N, 5.0), (CONTROL_E + 10, CONTROL_N, 7.5)])
    geoms = np.array([poly, None, line3d, shapely.Point(), shapely.Point(CONTROL_E, CONTROL_N)],
                     dtype=object)
    out = r.transform_geoms(geoms)
    assert out.shape == geoms.shape
    assert out[1] is None
    assert out[3].is_empty
    assert not out[0].has_z and out[2].has_z
    coords = shapely.get_coordinates(poly)
    lon, lat = r.transform_xy(coords[:, 0], coords[:, 1])
    np.testing.assert_allclose(shapely.get_coordinates(out[0]), np.column_stack([lon, lat]),
                               rtol=0, atol=1e-12)
    z = shapely.get_coordinates(out[2], include_z=True)[:, 2]
    np.testing.assert_array_equal(z, [5.0, 7.5])
    p = out[4]
    assert metres_between(p.x, p.y, CONTROL_WGS84_LON, CONTROL_WGS84_LAT) < 0.001
    # the input geometries are not modified
    assert shapely.equals_exact(geoms[0], poly, tolerance=0)


def test_transform_geoms_parallel_chunks_match_serial(monkeypatch):
    rng = np.random.default_rng(42)
    n = 2000
    centres = shapely.points(rng.uniform(560_000, 700_000, n), rng.uniform(1_150_000, 1_270_000, n))
    geoms = shapely.buffer(centres, 20.0, quad_segs=2)
    r = Reprojector("EPSG:9210")
    serial = r.transform_geoms(geoms)
    monkeypatch.setattr(gcrs, "_PARALLEL_CHUNK", 1000)
    monkeypatch.setattr(gcrs, "_cpus", lambda: 4)
    parallel = r.transform_geoms(geoms)
    assert shapely.equals_exact(serial, parallel, tolerance=0).all()


def test_transform_geoms_raises_on_untransformable_coordinates():
    r = Reprojector(STORAGE_CRS, "EPSG:9210")
    with pytest.raises(CRSError, match="cannot be transformed"):
        r.transform_geoms(np.array([shapely.Point(106.7, 95.0)]))


def test_reverse_direction_for_api_output():
    r = make_transformer(STORAGE_CRS, "EPSG:9210")
    out = r.transform_geoms(np.array([shapely.Point(CONTROL_WGS84_LON, CONTROL_WGS84_LAT)]))
    assert math.hypot(out[0].x - CONTROL_E, out[0].y - CONTROL_N) < 0.001


# ---------------------------------------------------------------------------------------------
# ESRI / GDAL .prj forms of VN-2000
# ---------------------------------------------------------------------------------------------

ESRI_TM3_105_45 = (
    'PROJCS["VN_2000_KT105_45",GEOGCS["GCS_VN_2000",DATUM["D_Vietnam_2000",'
    'SPHEROID["WGS_1984",6378137.0,298.257223563]],PRIMEM["Greenwich",0.0],'
    'UNIT["Degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],'
    'PARAMETER["False_Easting",500000.0],PARAMETER["False_Northing",0.0],'
    'PARAMETER["Central_Meridian",105.75],PARAMETER["Scale_Factor",0.9999],'
    'PARAMETER["Latitude_Of_Origin",0.0],UNIT["Meter",1.0]]'
)

# A custom name and datum PROJ cannot match to EPSG, with a TOWGS84: recognised by the TOWGS84.
CUSTOM_TOWGS84_TM3_105_45 = (
    'PROJCS["HCM_VN2000_mui3",GEOGCS["GCS_Custom",DATUM["D_Custom",'
    'SPHEROID["WGS_1984",6378137.0,298.257223563],'
    "TOWGS84[-191.90441429,-39.30318279,-111.45032835,0.00928836,-0.01975479,0.00427372,"
    '0.252906278]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]],'
    'PROJECTION["Transverse_Mercator"],PARAMETER["False_Easting",500000.0],'
    'PARAMETER["False_Northing",0.0],PARAMETER["Central_Meridian",105.75],'
    'PARAMETER["Scale_Factor",0.9999],PARAMETER["Latitude_Of_Origin",0.0],UNIT["Meter",1.0]]'
)

# The VN-2000 name with a TOWGS84 whose rotations carry the wrong sign for WKT1: ignored.
GDAL_WRONG_SIGN_TM3_105_45 = (
    'PROJCS["VN_2000_TM3_105_45",GEOGCS["VN_2000",DATUM["Vietnam_2000",'
    'SPHEROID["WGS 84",6378137,298.257223563],'
    "TOWGS84[-191.90441429,-39.30318279,-111.45032835,-0.00928836,0.01975479,-0.00427372,"
    '0.252906278]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],'
    'PROJECTION["Transverse_Mercator"],PARAMETER["latitude_of_origin",0],'
    'PARAMETER["central_meridian",105.75],PARAMETER["scale_factor",0.9999],'
    'PARAMETER["false_easting",500000],PARAMETER["false_northing",0],UNIT["metre",1],'
    'AXIS["Easting",EAST],AXIS["Northing",NORTH]]'
)

PROJ_STRING_TM3_105_45 = (
    "+proj=tmerc +lat_0=0 +lon_0=105.75 +k=0.9999 +x_0=500000 +y_0=0 +ellps=WGS84 "
    "+towgs84=-191.90441429,-39.30318279,-111.45032835,0.00928836,-0.01975479,0.00427372,"
    "0.252906278 +units=m +no_defs"
)


@pytest.mark.parametrize(
    "text",
    [ESRI_TM3_105_45, CUSTOM_TOWGS84_TM3_105_45, GDAL_WRONG_SIGN_TM3_105_45,
     PROJ_STRING_TM3_105_45],
    ids=["esri", "custom-towgs84", "wrong-sign-towgs84", "proj-string"],
)
def test_non_epsg_vn2000_forms_use_the_official_transform(text):
    crs = parse_crs(text)
    assert is_vn2000(crs)
    r = make_transformer(crs)
    assert r.uses_vn2000_helmert
    lon, lat = r.transform_xy(CONTROL_E, CONTROL_N)
    assert metres_between(lon, lat, CONTROL_WGS84_LON, CONTROL_WGS84_LAT) < 0.001
    assert crs_uri(crs) == "http://www.opengis.net/def/crs/EPSG/0/9210"
    assert describe_crs(crs).startswith("EPSG:9210 ")


def test_wgs84_based_tm_is_not_vn2000():
    crs = parse_crs("+proj=tmerc +lon_0=105.75 +k=0.9999 +x_0=500000 +datum=WGS84")
    assert not is_vn2000(crs)
    assert not make_transformer(crs).uses_vn2000_helmert
    assert not is_vn2000(CRS.from_epsg(32648))
    assert not is_vn2000(STORAGE_CRS)


def test_vn2000_named_datum_on_wrong_ellipsoid_is_rejected():
    crs = parse_crs("+proj=tmerc +lon_0=105.75 +k=0.9999 +x_0=500000 +ellps=bessel "
                    "+towgs84=-191.9,-39.3,-111.45")
    assert is_vn2000(crs)
    with pytest.raises(CRSError, match="ellipsoid"):
        make_transformer(crs)


# ---------------------------------------------------------------------------------------------
# parse_crs / crs_uri
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        ("EPSG:9210", ("EPSG", "9210")),
        ("epsg:9210", ("EPSG", "9210")),
        ("9210", ("EPSG", "9210")),
        (" 9210 ", ("EPSG", "9210")),
        (9210, ("EPSG", "9210")),
        ("http://www.opengis.net/def/crs/EPSG/0/9210", ("EPSG", "9210")),
        ("https://www.opengis.net/def/crs/EPSG/0/9210", ("EPSG", "9210")),
        ("http://www.opengis.net/def/crs/OGC/1.3/CRS84", ("OGC", "CRS84")),
        ("urn:ogc:def:crs:EPSG::4326", ("EPSG", "4326")),
        ("urn:ogc:def:crs:OGC:1.3:CRS84", ("OGC", "CRS84")),
        ("CRS84", ("OGC", "CRS84")),
        ("CRS:84", ("OGC", "CRS84")),
        ("OGC:CRS84", ("OGC", "CRS84")),
        (CRS.from_epsg(9210).to_wkt(), ("EPSG", "9210")),
        (CRS.from_epsg(9210).to_wkt("WKT1_GDAL"), ("EPSG", "9210")),
        ("+proj=utm +zone=48 +datum=WGS84 +units=m +no_defs", ("EPSG", "32648")),
        (CRS.from_epsg(3405), ("EPSG", "3405")),
    ],
)
def test_parse_crs_accepted_forms(value, expected):
    crs = parse_crs(value)
    assert isinstance(crs, CRS)
    assert crs.to_authority() == expected


@pytest.mark.parametrize("value", ["xyz", "", "   ", "EPSG:99999", "foo bar", "tmerc", True])
def test_parse_crs_garbage(value):
    with pytest.raises(CRSError) as info:
        parse_crs(value)
    assert info.value.message.startswith("Unknown CRS ")
    assert "give an EPSG code such as EPSG:9210 (VN-2000 / TM-3 105-45, HCMC) or EPSG:4326" in (
        info.value.message
    )
    assert isinstance(info.value, InputError)


def test_parse_crs_garbage_exact_message():
    with pytest.raises(CRSError) as info:
        parse_crs("xyz")
    assert info.value.message == (
        "Unknown CRS 'xyz': give an EPSG code such as EPSG:9210 (VN-2000 / TM-3 105-45, HCMC) "
        "or EPSG:4326"
    )


@pytest.mark.parametrize("value", ["EPSG:5773", "EPSG:4978"])
def test_parse_crs_rejects_non_horizontal(value):
    with pytest.raises(CRSError, match="no horizontal coordinates"):
        parse_crs(value)


def test_compound_crs_uses_horizontal_part():
    assert make_transformer(parse_crs("EPSG:4326+5773")).is_identity
    r = make_transformer(parse_crs("EPSG:9210+5773"))
    assert r.uses_vn2000_helmert
    lon, lat = r.transform_xy(CONTROL_E, CONTROL_N)
    assert metres_between(lon, lat, CONTROL_WGS84_LON, CONTROL_WGS84_LAT) < 0.001


@pytest.mark.parametrize(
    "value, uri",
    [
        ("EPSG:9210", "http://www.opengis.net/def/crs/EPSG/0/9210"),
        ("EPSG:4326", "http://www.opengis.net/def/crs/EPSG/0/4326"),
        ("CRS84", "http://www.opengis.net/def/crs/OGC/1.3/CRS84"),
        ("EPSG:3405", "http://www.opengis.net/def/crs/EPSG/0/3405"),
        ("EPSG:4756", "http://www.opengis.net/def/crs/EPSG/0/4756"),
    ],
)
def test_crs_uri(value, uri):
    assert crs_uri(parse_crs(value)) == uri
    assert crs_uri(value) == uri
    assert parse_crs(uri).equals(parse_crs(value))


def test_crs_uri_of_custom_crs_raises():
    with pytest.raises(CRSError, match="no EPSG or OGC code"):
        crs_uri(parse_crs("+proj=tmerc +lon_0=100.123 +k=1 +x_0=0 +ellps=intl +units=m"))


# ---------------------------------------------------------------------------------------------
# Extent checks
# ---------------------------------------------------------------------------------------------

GOOD_9210 = (603_000.0, 1_191_000.0, 606_000.0, 1_194_000.0)
GOOD_LONLAT = (106.65, 10.74, 106.74, 10.82)


def test_hcmc_bounds_cover_the_merged_city():
    minx, miny, maxx, maxy = HCMC_BOUNDS
    for lon, lat in [(106.70, 10.78), (106.65, 11.45), (107.55, 10.55), (106.60, 8.68),
                     (106.40, 10.40), (107.08, 10.35)]:
        assert minx < lon < maxx and miny < lat < maxy
    assert not (minx < 105.85 < maxx and miny < 21.03 < maxy)  # Hanoi


def test_good_data_passes():
    lonlat = check_extent(CRS.from_epsg(9210), GOOD_9210)
    assert lonlat is not None
    assert HCMC_BOUNDS[0] < lonlat[0] < lonlat[2] < HCMC_BOUNDS[2]
    assert check_extent(STORAGE_CRS, GOOD_LONLAT) == GOOD_LONLAT
    assert check_extent("CRS84", GOOD_LONLAT) == GOOD_LONLAT
    assert check_extent(CRS.from_epsg(32648), (680_000, 1_185_000, 690_000, 1_195_000))
    assert check_extent(parse_crs(ESRI_TM3_105_45), GOOD_9210)
    # empty data: nothing to check
    assert check_extent(STORAGE_CRS, (math.nan,) * 4) is None


def test_metres_declared_as_4326():
    with pytest.raises(CRSError) as info:
        check_extent(STORAGE_CRS, (690_000, 1_187_000, 700_000, 1_195_000), label="parcels.shp")
    msg = info.value.message
    assert "parcels.shp" in msg
    assert "EPSG:4326" in msg
    assert "690 000" in msg and "1 187 000" in msg  # the data bounds are named
    assert "metres of a projected CRS" in msg
    assert "--crs EPSG:9210" in msg
    assert "fix the .prj" in msg


def test_lonlat_declared_as_projected():
    with pytest.raises(CRSError) as info:
        check_extent(CRS.from_epsg(9210), (106.6, 10.7, 106.8, 10.9))
    msg = info.value.message
    assert "EPSG:9210" in msg and "degrees" in msg and "--crs EPSG:4326" in msg


def test_small_values_under_projected_crs():
    with pytest.raises(CRSError, match="degrees"):
        check_extent(CRS.from_epsg(9210), (0.0, 0.0, 10.0, 10.0))


def test_far_outside_area_of_use():
    with pytest.raises(CRSError) as info:
        check_extent(CRS.from_epsg(9210), (-5e6, -5e6, -4e6, -4e6))
    assert "far outside the area" in info.value.message


@pytest.mark.parametrize("crs", ["EPSG:4326", "CRS84"])
def test_swapped_axis_order(crs):
    with pytest.raises(CRSError) as info:
        check_extent(parse_crs(crs), (10.70, 106.60, 10.90, 106.80))
    msg = info.value.message
    assert "axis order looks swapped" in msg
    assert "latitude first" in msg
    assert "x = longitude" in msg


def test_swapped_easting_northing():
    e0, n0, e1, n1 = GOOD_9210
    with pytest.raises(CRSError, match="axis order looks swapped"):
        check_extent(CRS.from_epsg(9210), (n0, e0, n1, e1))


def test_hanoi_is_not_hcmc():
    with pytest.raises(CRSError) as info:
        check_extent(STORAGE_CRS, (105.80, 21.00, 105.86, 21.05))
    msg = info.value.message
    assert "not in Ho Chi Minh City" in msg
    assert "Hanoi" in msg


def test_hanoi_in_vn2000_tm3_is_not_hcmc():
    # Hanoi in VN-2000 / TM-3 105-00 metres (EPSG:5897)
    e, n = make_transformer(STORAGE_CRS, "EPSG:5897").transform_xy(
        np.array([105.80, 105.86]), np.array([21.00, 21.05])
    )
    with pytest.raises(CRSError, match="not in Ho Chi Minh City.*Hanoi"):
        check_extent(CRS.from_epsg(5897), (e[0], n[0], e[1], n[1]))


def test_tm3_data_declared_as_utm_is_caught_and_the_right_grid_suggested():
    # District 1 in TM-3 105-45 metres, mislabelled WGS 84 / UTM 48N: lands ~80 km west, near
    # Tay Ninh, outside the city envelope
    with pytest.raises(CRSError) as info:
        check_extent(CRS.from_epsg(32648), GOOD_9210)
    msg = info.value.message
    assert "not in Ho Chi Minh City" in msg
    assert "EPSG:32648" in msg
    assert "--crs EPSG:9210" in msg


def test_outside_vietnam_is_reported():
    with pytest.raises(CRSError, match="outside Vietnam"):
        check_extent(STORAGE_CRS, (2.3, 48.8, 2.4, 48.9))


def test_custom_city_bounds():
    hanoi = (105.70, 20.90, 105.95, 21.10)
    assert check_extent(STORAGE_CRS, (105.80, 21.00, 105.86, 21.05), city_bounds=hanoi)


def test_bad_bounds_raise_value_error():
    with pytest.raises(ValueError):
        check_extent(STORAGE_CRS, (107.0, 10.0, 106.0, 11.0))


# ---------------------------------------------------------------------------------------------
# guess_crs / resolve_crs
# ---------------------------------------------------------------------------------------------


def test_guess_crs_lonlat():
    assert guess_crs(GOOD_LONLAT) == [4326]


def test_guess_crs_tm3_west_of_utm_range():
    # District 1 in TM-3 105-45: under UTM 48N these numbers would be ~80 km west, outside HCMC
    assert guess_crs(GOOD_9210) == [9210]


def test_guess_crs_ambiguous_tm3_and_utm():
    guesses = guess_crs((680_000, 1_180_000, 700_000, 1_200_000))
    assert guesses[0] == 9210
    assert {9210, 32648, 3405} <= set(guesses)


def test_guess_crs_ba_ria_vung_tau_grid():
    # Vung Tau in VN-2000 / TM-3 107-45 (EPSG:5899)
    e, n = make_transformer(STORAGE_CRS, "EPSG:5899").transform_xy(
        np.array([107.05, 107.15]), np.array([10.33, 10.42])
    )
    assert guess_crs((e[0], n[0], e[1], n[1])) == [5899]


def test_guess_crs_nothing_fits():
    assert guess_crs((10.70, 106.60, 10.90, 106.80)) == []  # swapped lon/lat
    assert guess_crs((105.80, 21.00, 105.86, 21.05)) == []  # Hanoi
    assert guess_crs((5e6, 5e6, 6e6, 6e6)) == []
    assert guess_crs((math.nan,) * 4) == []


def test_resolve_crs_override_wins():
    assert resolve_crs(STORAGE_CRS, "EPSG:9210").to_epsg() == 9210
    assert resolve_crs(None, "9210").to_epsg() == 9210
    assert resolve_crs("EPSG:32648", None).to_epsg() == 32648
    assert resolve_crs(CRS.from_epsg(3405), None).to_epsg() == 3405
    assert is_vn2000(resolve_crs(ESRI_TM3_105_45, None))


def test_resolve_crs_missing():
    with pytest.raises(CRSError) as info:
        resolve_crs(None, None)
    assert info.value.message == (
        "The file has no CRS (no .prj or no CRS in its metadata): pass --crs, for example "
        "--crs EPSG:9210 for VN-2000 / TM-3 105-45 (HCMC)"
    )


def test_resolve_crs_missing_with_bounds_suggests_candidates():
    with pytest.raises(CRSError) as info:
        resolve_crs(None, None, bounds=(680_000, 1_180_000, 700_000, 1_200_000))
    msg = info.value.message
    assert "--crs EPSG:9210" in msg
    assert "EPSG:32648" in msg and "EPSG:3405" in msg
    assert "cannot be told apart" in msg


def test_resolve_crs_bad_override():
    with pytest.raises(CRSError, match="Unknown CRS 'nope'"):
        resolve_crs(STORAGE_CRS, "nope")
