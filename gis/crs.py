"""Coordinate reference systems: parsing, VN-2000, reprojection and sanity checks.

The platform stores every geometry in EPSG:4326 with **lon/lat** axis order (x = longitude,
y = latitude), as PostGIS does. This module is the single place where coordinates change CRS:
ingest jobs reproject into storage with it, and the API reprojects storage geometries for output.

VN-2000
-------
Vietnamese cadastral, planning and construction data is mostly in the national datum VN-2000
(EPSG:4756), projected on a 3-degree Transverse Mercator grid ("TM-3", k = 0.9999, false easting
500 000 m) whose central meridian is fixed per province: 105°45' (EPSG:9210) for Ho Chi Minh City
and former Binh Duong, 107°45' (EPSG:5899) for former Ba Ria-Vung Tau, and VN-2000 / UTM zones
48N / 49N (EPSG:3405 / 3406) for small-scale maps.

The shift VN-2000 -> WGS 84 used here is **always** the official 7-parameter Helmert of Circular
973/2001/TT-TCĐC, which is EPSG operation "VN-2000 to WGS 84 (2)" (:data:`VN2000_TOWGS84`,
coordinate-frame convention). It is built into an explicit PROJ pipeline (:class:`Reprojector`) so
that PROJ never chooses the operation itself: PROJ could otherwise pick "VN-2000 to WGS 84 (1)"
(about 0.8 m off in HCMC; PROJ 9.5 does so for an ESRI ``.prj`` of TM-3 105-45), a TOWGS84 written
in the file's ``.prj`` (whose rotation signs depend on the convention the writer assumed), or a
ballpark (no shift at all: about 225 m off in HCMC).

Any CRS whose datum is VN-2000 (by EPSG code, by a datum or geographic CRS name such as
"Vietnam 2000", "VN-2000", "D_Vietnam_2000", "GCS_VN_2000", or by a TOWGS84 whose translations are
those of VN-2000 on the WGS 84 ellipsoid) gets the official transformation, including ESRI / GDAL
``.prj`` WKT that PROJ cannot match to an EPSG code.

Sanity checks
-------------
:func:`check_extent` catches the classic mislabelled ``.prj`` (metres declared as EPSG:4326,
degrees declared as a projected CRS, latitude-first axis order, data that is not in HCMC at all),
:func:`guess_crs` proposes CRSs for a file that declares none, and :func:`resolve_crs` applies the
``--crs`` override.
"""

from __future__ import annotations

import functools
import math
import os
import re
import threading
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
import pyproj
import shapely
from pyproj import CRS, Transformer
from pyproj.transformer import TransformerGroup

from gis.errors import CRSError

__all__ = [
    "CRS84_URI",
    "HCMC_BOUNDS",
    "HCMC_GRID",
    "STORAGE_CRS",
    "STORAGE_EPSG",
    "VIETNAM_BOUNDS",
    "VN2000_EPSG",
    "VN2000_GRIDS",
    "VN2000_OPERATION_NAME",
    "VN2000_TOWGS84",
    "VN2000Grid",
    "Reprojector",
    "check_extent",
    "crs_uri",
    "describe_crs",
    "guess_crs",
    "is_vn2000",
    "make_transformer",
    "parse_crs",
    "resolve_crs",
]

# ---------------------------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------------------------

STORAGE_EPSG = 4326
#: Storage CRS of the platform. Coordinates are always handled as x = lon, y = lat (``always_xy``).
STORAGE_CRS = CRS.from_epsg(STORAGE_EPSG)

#: OGC URI of lon/lat WGS 84 (what storage coordinates are, axis-order-wise).
CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"

#: Geographic CRS of the VN-2000 datum.
VN2000_EPSG = 4756

#: Official VN-2000 -> WGS 84 Helmert (Circular 973/2001/TT-TCĐC, EPSG "VN-2000 to WGS 84 (2)").
#: (dX m, dY m, dZ m, rX arc-second, rY arc-second, rZ arc-second, scale ppm), **coordinate-frame**
#: rotation convention (EPSG method 9607). In position-vector convention (WKT1 ``TOWGS84``, PROJ
#: ``+towgs84``) the three rotations change sign.
VN2000_TOWGS84: tuple[float, float, float, float, float, float, float] = (
    -191.90441429,
    -39.30318279,
    -111.45032835,
    -0.00928836,
    0.01975479,
    -0.00427372,
    0.252906278,
)

#: Name of the official operation in the EPSG dataset (used by tests to pin the parameters).
VN2000_OPERATION_NAME = "VN-2000 to WGS 84 (2)"


class VN2000Grid(NamedTuple):
    """A VN-2000 projected grid of the EPSG dataset.

    Attributes
    ----------
    epsg : int
        EPSG code of the projected CRS.
    name : str
        EPSG name.
    central_meridian : float
        Longitude of the central meridian, degrees.
    scale_factor : float
        Scale factor on the central meridian (0.9999 for TM-3, 0.9996 for UTM).
    """

    epsg: int
    name: str
    central_meridian: float
    scale_factor: float


#: VN-2000 projected grids: the TM-3 grids of cadastral maps (EPSG:9205-9218, plus the older
#: EPSG:5896-5899, among which 5899 "TM-3 107-45" is the grid of former Ba Ria-Vung Tau) and the
#: UTM zones 48N / 49N. All use false easting 500 000 m and false northing 0 on the WGS 84
#: ellipsoid.
VN2000_GRIDS: list[VN2000Grid] = [
    VN2000Grid(9205, "VN-2000 / TM-3 103-00", 103.0, 0.9999),
    VN2000Grid(9206, "VN-2000 / TM-3 104-00", 104.0, 0.9999),
    VN2000Grid(9207, "VN-2000 / TM-3 104-30", 104.5, 0.9999),
    VN2000Grid(9208, "VN-2000 / TM-3 104-45", 104.75, 0.9999),
    VN2000Grid(9209, "VN-2000 / TM-3 105-30", 105.5, 0.9999),
    VN2000Grid(9210, "VN-2000 / TM-3 105-45", 105.75, 0.9999),
    VN2000Grid(9211, "VN-2000 / TM-3 106-00", 106.0, 0.9999),
    VN2000Grid(9212, "VN-2000 / TM-3 106-15", 106.25, 0.9999),
    VN2000Grid(9213, "VN-2000 / TM-3 106-30", 106.5, 0.9999),
    VN2000Grid(9214, "VN-2000 / TM-3 107-00", 107.0, 0.9999),
    VN2000Grid(9215, "VN-2000 / TM-3 107-15", 107.25, 0.9999),
    VN2000Grid(9216, "VN-2000 / TM-3 107-30", 107.5, 0.9999),
    VN2000Grid(9217, "VN-2000 / TM-3 108-15", 108.25, 0.9999),
    VN2000Grid(9218, "VN-2000 / TM-3 108-30", 108.5, 0.9999),
    VN2000Grid(5896, "VN-2000 / TM-3 zone 481", 102.0, 0.9999),
    VN2000Grid(5897, "VN-2000 / TM-3 zone 482", 105.0, 0.9999),
    VN2000Grid(5898, "VN-2000 / TM-3 zone 491", 108.0, 0.9999),
    VN2000Grid(5899, "VN-2000 / TM-3 107-45", 107.75, 0.9999),
    VN2000Grid(3405, "VN-2000 / UTM zone 48N", 105.0, 0.9996),
    VN2000Grid(3406, "VN-2000 / UTM zone 49N", 111.0, 0.9996),
]

#: The TM-3 grid of Ho Chi Minh City: VN-2000 / TM-3 105-45.
HCMC_GRID = 9210

#: Lon/lat envelope (minlon, minlat, maxlon, maxlat) of Ho Chi Minh City after the 2025 merger
#: (former HCMC, former Binh Duong, former Ba Ria-Vung Tau including the Con Dao islands). The
#: merged city spans roughly lon 106.35-107.60, lat 10.35-11.50 on the mainland (Binh Duong's
#: northern tip near 11.5 N, Can Gio / Vung Tau coast near 10.35 N, Xuyen Moc near 107.6 E) and
#: Con Dao lies near lon 106.5-106.7, lat 8.6-8.8. A margin of 0.15-0.35 degree (15-40 km) is
#: added on every side. It is a coarse rectangle meant to catch mislabelled or foreign data, not a
#: boundary test: it also covers parts of neighbouring provinces (Tay Ninh / Long An, Dong Nai, Dong
#: Thap) and sea.
HCMC_BOUNDS: tuple[float, float, float, float] = (106.0, 8.4, 107.8, 11.6)

#: Lon/lat envelope of onshore Vietnam (EPSG area of use of VN-2000).
VIETNAM_BOUNDS: tuple[float, float, float, float] = (102.14, 8.33, 109.53, 23.4)

_HCMC_CENTRE = (106.70, 10.78)

#: Candidate projected CRSs for HCMC data, in order of likelihood (cadastral maps first).
_HCMC_PROJECTED_CANDIDATES: tuple[int, ...] = (HCMC_GRID, 32648, 3405, 5899)

#: Places used to say where data lies when it is not in HCMC (lon, lat).
_PLACES: tuple[tuple[str, float, float], ...] = (
    ("Hanoi", 105.854, 21.029),
    ("Hai Phong", 106.688, 20.845),
    ("Ha Long", 107.080, 20.950),
    ("Lao Cai", 103.970, 22.480),
    ("Vinh", 105.690, 18.670),
    ("Hue", 107.585, 16.463),
    ("Da Nang", 108.206, 16.047),
    ("Quy Nhon", 109.220, 13.780),
    ("Buon Ma Thuot", 108.050, 12.670),
    ("Nha Trang", 109.196, 12.238),
    ("Da Lat", 108.458, 11.940),
    ("Phan Thiet", 108.100, 10.930),
    ("Bien Hoa", 106.820, 10.950),
    ("Tay Ninh", 106.100, 11.310),
    ("Can Tho", 105.783, 10.045),
    ("Long Xuyen", 105.430, 10.380),
    ("Rach Gia", 105.080, 10.010),
    ("Ca Mau", 105.150, 9.180),
    ("Phu Quoc", 103.960, 10.230),
    ("Ho Chi Minh City", _HCMC_CENTRE[0], _HCMC_CENTRE[1]),
)

_EXAMPLE = "EPSG:9210 (VN-2000 / TM-3 105-45, HCMC) or EPSG:4326"
_NO_CRS_MESSAGE = (
    "The file has no CRS (no .prj or no CRS in its metadata): pass --crs, for example "
    "--crs EPSG:9210 for VN-2000 / TM-3 105-45 (HCMC)"
)
_HARD_TO_TELL = (
    "VN-2000 / TM-3 105-45 (EPSG:9210) and UTM zone 48N (EPSG:32648 on WGS 84, EPSG:3405 on "
    "VN-2000) give similar coordinates in HCMC (eastings around 600 000-700 000 m, northings "
    "around 1 180 000-1 200 000 m) and cannot be told apart from the numbers alone: ask the data "
    "provider, or load a sample with each and compare with a base map"
)

# ---------------------------------------------------------------------------------------------
# Parsing and describing CRSs
# ---------------------------------------------------------------------------------------------

_CRS84_ALIASES = {"CRS84", "CRS:84", "OGC:CRS84", "EPSG:CRS84", "WGS84LONLAT"}


def _unknown(value: object) -> CRSError:
    text = str(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return CRSError(f"Unknown CRS {text!r}: give an EPSG code such as {_EXAMPLE}")


def parse_crs(value: str | int | CRS) -> CRS:
    """Parse a user-supplied CRS.

    Parameters
    ----------
    value : str or int or pyproj.CRS
        One of: ``"EPSG:9210"``, ``"9210"`` (or the int ``9210``), an OGC URI
        (``"http://www.opengis.net/def/crs/EPSG/0/9210"``,
        ``"http://www.opengis.net/def/crs/OGC/1.3/CRS84"``), an OGC URN
        (``"urn:ogc:def:crs:EPSG::4326"``), ``"CRS84"`` / ``"OGC:CRS84"`` / ``"CRS:84"``, a WKT
        string (WKT1, WKT2 or ESRI ``.prj``), a PROJ string, an EPSG CRS name, or a
        :class:`pyproj.CRS` (returned after validation).

    Returns
    -------
    pyproj.CRS
        The CRS. ``CRS84`` gives ``OGC:CRS84``; note that the transformation code of this module
        always uses x = lon, y = lat, so ``OGC:CRS84`` and ``EPSG:4326`` behave the same.

    Raises
    ------
    gis.errors.CRSError
        If the value is not a CRS (``"Unknown CRS 'xyz': give an EPSG code such as EPSG:9210 ..."``)
        or has no horizontal component (a vertical or geocentric CRS).
    """
    if isinstance(value, CRS):
        crs = value
    elif isinstance(value, bool):
        raise _unknown(value)
    elif isinstance(value, int):
        try:
            crs = CRS.from_epsg(value)
        except pyproj.exceptions.CRSError:
            raise _unknown(value) from None
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise _unknown(value)
        upper = text.upper()
        if re.fullmatch(r"\d{3,6}", text):
            text = f"EPSG:{text}"
        elif upper in _CRS84_ALIASES:
            text = "OGC:CRS84"
        elif upper.startswith("HTTPS://WWW.OPENGIS.NET/"):
            text = "http://" + text[len("https://") :]
        try:
            crs = CRS.from_user_input(text)
        except (pyproj.exceptions.CRSError, ValueError, TypeError):
            raise _unknown(value) from None
    else:
        raise _unknown(value)
    _horizontal(crs, original=value)
    return crs


def _horizontal(crs: CRS, *, original: object = None, keep_bound: bool = True) -> CRS:
    """The horizontal (geographic or projected) part of ``crs``.

    Compound CRSs give their horizontal component; with ``keep_bound=False`` a BoundCRS gives
    its source CRS (the TOWGS84 clause dropped).
    """
    current = crs
    for _ in range(4):
        if current.is_compound:
            subs = [c for c in current.sub_crs_list if not c.is_vertical]
            if not subs:
                break
            current = subs[0]
            continue
        if current.is_bound and not keep_bound:
            current = current.source_crs
            continue
        break
    core = current.source_crs if current.is_bound else current
    if core is not None and (core.is_geographic or core.is_projected):
        return current
    label = original if original is not None else crs.name
    raise CRSError(
        f"CRS {str(label)[:80]!r} ({crs.type_name}) has no horizontal coordinates: give the "
        f"horizontal CRS of the data, for example {_EXAMPLE}"
    )


def _authority(crs: CRS) -> tuple[str, str] | None:
    """Authority and code of ``crs`` (EPSG or OGC), identifying equivalent WKT when needed.

    VN-2000 CRSs are identified by their grid parameters (their TOWGS84, if any, is ignored as
    the official shift always applies); others by PROJ's identification (confidence >= 70).
    """
    vn = is_vn2000(crs)
    target = crs if crs.is_compound else _horizontal(crs, keep_bound=not vn)
    try:
        ident = target.to_json_dict().get("id")
    except Exception:  # pragma: no cover - defensive: JSON export of exotic CRSs
        ident = None
    if ident and ident.get("authority") in ("EPSG", "OGC"):
        return str(ident["authority"]), str(ident["code"])
    if vn:
        code = _vn2000_grid_code(crs)
        return ("EPSG", str(code)) if code is not None else None
    found = target.to_authority(min_confidence=70)
    if found and found[0] in ("EPSG", "OGC"):
        return found[0], found[1]
    return None


def _vn2000_grid_code(crs: CRS) -> int | None:
    """EPSG code of the VN-2000 grid (or 4756) a custom VN-2000 CRS is equivalent to."""
    if not is_vn2000(crs):
        return None
    core = _horizontal(crs, keep_bound=False)
    ellipsoid = core.ellipsoid
    if ellipsoid is None or not (
        math.isclose(ellipsoid.semi_major_metre, _WGS84_A, abs_tol=0.01)
        and math.isclose(ellipsoid.inverse_flattening, _WGS84_INVF, abs_tol=1e-6)
    ):
        return None
    if core.is_geographic:
        return VN2000_EPSG
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        params = core.to_dict()
    if params.get("units", "m") != "m" or float(params.get("y_0", 0)) != 0:
        return None
    if params.get("proj") == "utm" and not params.get("south"):
        return {48: 3405, 49: 3406}.get(int(params.get("zone", 0)))
    if params.get("proj") != "tmerc" or float(params.get("lat_0", 0)) != 0:
        return None
    if float(params.get("x_0", 0)) != 500000:
        return None
    for grid in VN2000_GRIDS:
        if math.isclose(float(params.get("lon_0", 0)), grid.central_meridian, abs_tol=1e-9) and (
            math.isclose(float(params.get("k", params.get("k_0", 1))), grid.scale_factor,
                         abs_tol=1e-12)
        ):
            return grid.epsg
    return None


def describe_crs(crs: CRS) -> str:
    """A short description of a CRS for messages, e.g. ``"EPSG:9210 (VN-2000 / TM-3 105-45)"``.

    Parameters
    ----------
    crs : pyproj.CRS
        The CRS.

    Returns
    -------
    str
        ``"AUTH:CODE (name)"`` when the CRS has (or is equivalent to) an EPSG/OGC code, otherwise
        ``"'name' (custom CRS without EPSG code)"``.
    """
    auth = _authority(crs)
    if auth is None:
        return f"{crs.name!r} (custom CRS without EPSG code)"
    name = crs.name
    if auth[0] == "EPSG" and name in ("unknown", "unnamed", ""):
        name = CRS.from_epsg(int(auth[1])).name
    return f"{auth[0]}:{auth[1]} ({name})"


def crs_uri(crs: CRS | str) -> str:
    """The OGC URI of a CRS.

    ``EPSG:4326`` gives ``http://www.opengis.net/def/crs/EPSG/0/4326`` and ``OGC:CRS84`` gives
    ``http://www.opengis.net/def/crs/OGC/1.3/CRS84`` (:data:`CRS84_URI`): the URI names the CRS
    as given, it does not turn EPSG:4326 into CRS84. Storage coordinates are lon/lat, i.e. CRS84
    axis order; an API that serves them without reprojection should advertise :data:`CRS84_URI`.
    A custom VN-2000 WKT equivalent to an EPSG grid (e.g. an ESRI ``.prj`` of TM-3 105-45) gives
    that grid's URI: its own TOWGS84, if any, is ignored since the official shift is always used.

    Parameters
    ----------
    crs : pyproj.CRS or str
        The CRS (strings are parsed with :func:`parse_crs`).

    Returns
    -------
    str
        ``http://www.opengis.net/def/crs/{EPSG/0|OGC/1.3}/{code}``.

    Raises
    ------
    gis.errors.CRSError
        If the CRS has no EPSG or OGC identifier.
    """
    if not isinstance(crs, CRS):
        crs = parse_crs(crs)
    auth = _authority(crs)
    if auth is None:
        raise CRSError(
            f"CRS {crs.name!r} has no EPSG or OGC code, so it has no OGC URI: use an EPSG code "
            f"such as {_EXAMPLE}"
        )
    authority, code = auth
    version = "1.3" if authority == "OGC" else "0"
    return f"http://www.opengis.net/def/crs/{authority}/{version}/{code}"


# ---------------------------------------------------------------------------------------------
# VN-2000 identification
# ---------------------------------------------------------------------------------------------

_VN2000_NAME = re.compile(r"(VN|VIETNAM)2000")
_WGS84_A = 6378137.0
_WGS84_INVF = 298.257223563
#: A TOWGS84 whose translations are within this distance (m) of the official ones is VN-2000.
_TOWGS84_TOLERANCE_M = 5.0


def _normalise_name(name: str | None) -> str:
    return re.sub(r"[^A-Z0-9]", "", (name or "").upper())


def _bound_translation(crs: CRS) -> tuple[float, float, float] | None:
    """Translations (m) of the TOWGS84 of a BoundCRS whose hub is WGS 84, else None."""
    if not crs.is_bound:
        return None
    try:
        target = crs.target_crs
        if target is None or "WGS" not in _normalise_name(target.name):
            return None
        params = crs.to_json_dict()["transformation"]["parameters"]
    except (KeyError, TypeError, AttributeError):
        return None
    by_code = {}
    for p in params:
        code = (p.get("id") or {}).get("code")
        if code in (8605, 8606, 8607):
            unit = p.get("unit", "metre")
            factor = float(unit.get("conversion_factor", 1.0)) if isinstance(unit, dict) else 1.0
            by_code[code] = float(p["value"]) * factor
    if len(by_code) != 3:
        return None
    return by_code[8605], by_code[8606], by_code[8607]


def is_vn2000(crs: CRS) -> bool:
    """Whether the datum of ``crs`` is VN-2000.

    True for EPSG:4756 and every CRS based on it (TM-3 grids, UTM 48N/49N), and for custom WKT
    (ESRI / GDAL ``.prj``) whose datum or geographic CRS name contains "VN" or "Vietnam" and "2000"
    (``D_Vietnam_2000``, ``GCS_VN_2000``, ``VN-2000`` ...), or whose TOWGS84 translations are
    within 5 m of the official VN-2000 ones (-191.9, -39.3, -111.5 m) on a WGS 84 hub.

    Parameters
    ----------
    crs : pyproj.CRS
        The CRS (compound CRSs are judged by their horizontal part).

    Returns
    -------
    bool
    """
    try:
        horiz = _horizontal(crs)
    except CRSError:
        return False
    translation = _bound_translation(horiz)
    if translation is not None:
        distance = math.dist(translation, VN2000_TOWGS84[:3])
        if distance <= _TOWGS84_TOLERANCE_M:
            return True
    core = horiz.source_crs if horiz.is_bound else horiz
    geodetic = core.geodetic_crs
    if geodetic is None:
        return False
    datum = geodetic.datum
    names = [geodetic.name, datum.name if datum is not None else ""]
    if any(_VN2000_NAME.search(_normalise_name(n)) for n in names):
        return True
    ident = (datum.to_json_dict().get("id") or {}) if datum is not None else {}
    return ident.get("authority") == "EPSG" and ident.get("code") == 6756


def _check_vn2000_geodetic(core: CRS) -> CRS:
    """The geographic CRS of a VN-2000 CRS, checked to be usable by the official Helmert."""
    geodetic = core.geodetic_crs
    ellipsoid = geodetic.ellipsoid
    if not (
        math.isclose(ellipsoid.semi_major_metre, _WGS84_A, abs_tol=0.01)
        and math.isclose(ellipsoid.inverse_flattening, _WGS84_INVF, abs_tol=1e-6)
    ):
        raise CRSError(
            f"CRS {core.name!r} declares the VN-2000 datum but the {ellipsoid.name} ellipsoid; "
            "VN-2000 uses the WGS 84 ellipsoid (a = 6378137, 1/f = 298.257223563): fix the .prj "
            f"or pass --crs with the EPSG code of the grid, for example --crs EPSG:{HCMC_GRID}"
        )
    if geodetic.prime_meridian is not None and geodetic.prime_meridian.longitude != 0:
        raise CRSError(
            f"CRS {core.name!r} declares the VN-2000 datum with a prime meridian other than "
            f"Greenwich: fix the .prj or pass --crs, for example --crs EPSG:{HCMC_GRID}"
        )
    if geodetic.axis_info and geodetic.axis_info[0].unit_name not in ("degree", "Degree"):
        geodetic = CRS.from_epsg(VN2000_EPSG)
    return geodetic


# ---------------------------------------------------------------------------------------------
# PROJ pipeline assembly
# ---------------------------------------------------------------------------------------------

_SHIFT_TOKENS = ("proj=helmert", "proj=cart", "proj=molodensky", "proj=hgridshift",
                 "proj=vgridshift", "proj=deformation", "proj=xyzgridshift")


def _steps(definition: str) -> list[list[str]]:
    """Split a PROJ definition (as given by ``Transformer.definition``) into pipeline steps."""
    tokens = [t.lstrip("+") for t in definition.split()]
    if not tokens:
        return []
    if tokens[0] != "proj=pipeline":
        return [tokens]
    steps: list[list[str]] = []
    glob: list[str] = []
    current: list[str] | None = None
    for token in tokens[1:]:
        if token == "step":
            current = []
            steps.append(current)
        elif current is None:
            glob.append(token)
        else:
            current.append(token)
    if glob:  # pipeline-wide parameters apply to every step that does not set them
        for step in steps:
            keys = {t.split("=", 1)[0] for t in step}
            step.extend(g for g in glob if g.split("=", 1)[0] not in keys)
    return steps


def _conversion_steps(src: CRS, dst: CRS) -> list[list[str]]:
    """Steps of a CRS-to-CRS operation that must not contain a datum shift."""
    transformer = Transformer.from_crs(src, dst, always_xy=True)
    steps = _steps(transformer.definition)
    flat = " ".join(" ".join(s) for s in steps)
    if any(tok in flat for tok in _SHIFT_TOKENS) or "grids=" in flat:  # pragma: no cover
        raise RuntimeError(
            f"internal error: conversion {src.name!r} -> {dst.name!r} has a datum shift: {flat}"
        )
    return steps


def _default_steps(src: CRS, dst: CRS) -> list[list[str]]:
    """Steps of PROJ's own best operation ``src -> dst`` (no VN-2000 datum involved)."""
    definition = Transformer.from_crs(src, dst, always_xy=True).definition
    if definition.startswith("unavailable"):
        # several candidate operations: PROJ would choose per point; take its best-ranked one
        group = TransformerGroup(src, dst, always_xy=True)
        if not group.transformers:
            raise CRSError(
                f"No coordinate operation is available from {describe_crs(src)} to "
                f"{describe_crs(dst)}: pass --crs with another CRS, for example {_EXAMPLE}"
            )
        definition = group.transformers[0].definition
    return _steps(definition)


def _helmert_steps(inverse: bool) -> list[list[str]]:
    """VN-2000 lon/lat degrees -> WGS 84 lon/lat degrees (or the inverse), heights untouched."""
    tx, ty, tz, rx, ry, rz, s = VN2000_TOWGS84
    helmert = (
        f"proj=helmert x={tx!r} y={ty!r} z={tz!r} rx={rx!r} ry={ry!r} rz={rz!r} s={s!r} "
        "convention=coordinate_frame"
    ).split()
    return [
        ["proj=unitconvert", "xy_in=deg", "xy_out=rad"],
        ["proj=push", "v_3"],
        ["proj=cart", "ellps=WGS84"],
        (["inv"] if inverse else []) + helmert,
        ["inv", "proj=cart", "ellps=WGS84"],
        ["proj=pop", "v_3"],
        ["proj=unitconvert", "xy_in=rad", "xy_out=deg"],
    ]


def _simplify(steps: list[list[str]]) -> list[list[str]]:
    """Drop no-op steps and adjacent unit conversions that cancel."""
    out: list[list[str]] = []
    for step in steps:
        if step and step[0] == "proj=noop":
            continue
        if out and _cancels(out[-1], step):
            out.pop()
            continue
        out.append(step)
    return out


def _cancels(a: list[str], b: list[str]) -> bool:
    def unitconvert(step: list[str]) -> tuple[str, str] | None:
        if step[:1] != ["proj=unitconvert"] or len(step) != 3:
            return None
        kv = dict(t.split("=", 1) for t in step[1:] if "=" in t)
        if set(kv) != {"xy_in", "xy_out"}:
            return None
        return kv["xy_in"], kv["xy_out"]

    ua, ub = unitconvert(a), unitconvert(b)
    return ua is not None and ub is not None and ua == (ub[1], ub[0])


def _pipeline(steps: list[list[str]]) -> str:
    steps = _simplify(steps)
    if not steps:
        return "+proj=noop"
    return "+proj=pipeline " + " ".join(
        "+step " + " ".join("+" + t for t in step) for step in steps
    )


# ---------------------------------------------------------------------------------------------
# Reprojection
# ---------------------------------------------------------------------------------------------


class Reprojector:
    """Reprojects coordinates and shapely geometries from ``src`` to ``dst`` (x = lon, y = lat).

    When either CRS is VN-2000 (see :func:`is_vn2000`) the operation is an explicit PROJ pipeline:
    ``src`` -> VN-2000 lon/lat (map-projection inverse only) -> official Helmert
    (:data:`VN2000_TOWGS84`) -> WGS 84 lon/lat -> ``dst``. A TOWGS84 clause in a VN-2000 ``.prj``
    is ignored. Between two VN-2000 CRSs there is no datum shift. Otherwise PROJ's best operation
    is used. Geographic coordinates are always lon/lat order, whatever the CRS's official axis
    order.

    Parameters
    ----------
    src : pyproj.CRS or str
        Source CRS.
    dst : pyproj.CRS or str, default EPSG:4326
        Target CRS (storage CRS by default).

    Attributes
    ----------
    src, dst : pyproj.CRS
        The CRSs.
    is_identity : bool
        True when ``src`` and ``dst`` are equivalent (ignoring axis order, e.g. EPSG:4326 and
        OGC:CRS84): the transform methods then return their input objects untouched.
    uses_vn2000_helmert : bool
        True when the operation includes the official VN-2000 <-> WGS 84 Helmert.
    definition : str or None
        The PROJ definition of the operation (None for the identity).

    Notes
    -----
    Only horizontal coordinates are transformed. Z values are passed through unchanged (the VN-2000
    Helmert is applied at the point's height with ``push``/``pop v_3``, as in the EPSG operation,
    so heights are never altered), and 3D geometries stay 3D. Instances are safe to share between
    threads (pyproj >= 3.1).
    """

    def __init__(self, src: CRS | str, dst: CRS | str = STORAGE_CRS) -> None:
        self.src = src if isinstance(src, CRS) else parse_crs(src)
        self.dst = dst if isinstance(dst, CRS) else parse_crs(dst)
        src_h = _horizontal(self.src)
        dst_h = _horizontal(self.dst)
        src_vn, dst_vn = is_vn2000(src_h), is_vn2000(dst_h)
        self.uses_vn2000_helmert = src_vn != dst_vn
        self.is_identity = src_h.equals(dst_h, ignore_axis_order=True)
        self.definition: str | None = None
        self._transformer: Transformer | None = None
        if self.is_identity:
            self.uses_vn2000_helmert = False
            return
        if not (src_vn or dst_vn):
            self._transformer = Transformer.from_crs(src_h, dst_h, always_xy=True)
            self.definition = self._transformer.definition
            return
        steps: list[list[str]] = []
        # src -> lon/lat degrees of its datum (VN-2000 or WGS 84)
        if src_vn:
            core = _horizontal(src_h, keep_bound=False)
            steps += _conversion_steps(core, _check_vn2000_geodetic(core))
        else:
            steps += _default_steps(src_h, STORAGE_CRS)
        # datum shift
        if src_vn and not dst_vn:
            steps += _helmert_steps(inverse=False)
        elif dst_vn and not src_vn:
            steps += _helmert_steps(inverse=True)
        # lon/lat degrees -> dst
        if dst_vn:
            core = _horizontal(dst_h, keep_bound=False)
            steps += _conversion_steps(_check_vn2000_geodetic(core), core)
        else:
            steps += _default_steps(STORAGE_CRS, dst_h)
        self.definition = _pipeline(steps)
        self._transformer = Transformer.from_pipeline(self.definition)

    def __repr__(self) -> str:
        return f"Reprojector({describe_crs(self.src)} -> {describe_crs(self.dst)})"

    def _transform_inplace(self, x: np.ndarray, y: np.ndarray) -> None:
        """Transform contiguous float64 arrays in place, in parallel chunks when large."""
        transformer = self._transformer
        n = x.size
        workers = _worker_count(n)
        if workers <= 1:
            transformer.transform(x, y, errcheck=False, inplace=True)
            return
        bounds = np.linspace(0, n, workers + 1).astype(int)

        def run(i: int) -> None:
            lo, hi = bounds[i], bounds[i + 1]
            # slices of contiguous arrays are contiguous views: transformed in place
            transformer.transform(x[lo:hi], y[lo:hi], errcheck=False, inplace=True)

        list(_pool().map(run, range(workers)))

    def transform_xy(self, x, y):
        """Transform coordinate arrays.

        Parameters
        ----------
        x, y : array_like or float
            Coordinates in ``src`` (x = easting or longitude, y = northing or latitude).

        Returns
        -------
        tuple
            ``(x2, y2)`` in ``dst`` (lon/lat order for geographic CRSs): new float64 arrays of
            the input's shape (floats for scalar input); the inputs are not modified.
            Coordinates that cannot be transformed come back as ``inf``. For the identity the
            input objects are returned untouched.
        """
        if self.is_identity:
            return x, y
        if np.isscalar(x) and np.isscalar(y):
            return self._transformer.transform(x, y, errcheck=False)
        x2 = np.array(x, dtype=np.float64, order="C", copy=True)
        y2 = np.array(y, dtype=np.float64, order="C", copy=True)
        if x2.shape != y2.shape:
            raise ValueError(f"x and y have different shapes: {x2.shape} and {y2.shape}")
        self._transform_inplace(x2.reshape(-1), y2.reshape(-1))
        return x2, y2

    def transform_bounds(
        self, bounds: Sequence[float], densify: int = 21
    ) -> tuple[float, float, float, float]:
        """Transform a bounding box, sampling ``densify`` points along each edge.

        Parameters
        ----------
        bounds : sequence of float
            ``(minx, miny, maxx, maxy)`` in ``src``.
        densify : int, default 21
            Points per edge.

        Returns
        -------
        tuple of float
            ``(minx, miny, maxx, maxy)`` in ``dst``; all ``nan`` if no sampled point could be
            transformed.
        """
        minx, miny, maxx, maxy = (float(v) for v in bounds)
        t = np.linspace(0.0, 1.0, densify)
        xs = np.concatenate([minx + (maxx - minx) * t, np.full(densify, maxx),
                             maxx - (maxx - minx) * t, np.full(densify, minx)])
        ys = np.concatenate([np.full(densify, miny), miny + (maxy - miny) * t,
                             np.full(densify, maxy), maxy - (maxy - miny) * t])
        x2, y2 = self.transform_xy(xs, ys)
        x2, y2 = np.asarray(x2, dtype=float), np.asarray(y2, dtype=float)
        ok = np.isfinite(x2) & np.isfinite(y2)
        if not ok.any():
            return (math.nan,) * 4
        return (float(x2[ok].min()), float(y2[ok].min()), float(x2[ok].max()), float(y2[ok].max()))

    def transform_geoms(self, geoms):
        """Transform shapely geometries (vectorised: one PROJ pass over all coordinates).

        Parameters
        ----------
        geoms : numpy.ndarray of shapely.Geometry, or a single geometry
            Geometries in ``src``; ``None`` entries stay ``None``.

        Returns
        -------
        numpy.ndarray or shapely.Geometry
            New geometries in ``dst`` (same shape). 3D geometries keep their Z values unchanged
            (only x and y are transformed); 2D geometries stay 2D. For the identity the input is
            returned untouched.

        Raises
        ------
        gis.errors.CRSError
            If some coordinates cannot be transformed (outside the projection's domain), which
            means the declared CRS does not fit the data.
        """
        if self.is_identity:
            return geoms
        include_z = bool(np.any(shapely.has_z(geoms)))

        def apply(coords: np.ndarray) -> np.ndarray:
            x = coords[:, 0].copy()  # contiguous copies, transformed in place
            y = coords[:, 1].copy()
            self._transform_inplace(x, y)
            bad = ~(np.isfinite(x) & np.isfinite(y))
            if bad.any():
                bad &= np.isfinite(coords[:, 0]) & np.isfinite(coords[:, 1])
                if bad.any():
                    i = int(np.flatnonzero(bad)[0])
                    raise CRSError(
                        f"{int(bad.sum())} coordinates cannot be transformed from "
                        f"{describe_crs(self.src)} to {describe_crs(self.dst)} (first: "
                        f"x={coords[i, 0]!r}, y={coords[i, 1]!r}): the data does not fit its "
                        "declared CRS; fix the .prj or pass --crs"
                    )
            coords[:, 0] = x
            coords[:, 1] = y
            return coords

        return shapely.transform(geoms, apply, include_z=include_z)


#: Coordinates per thread below which transformation stays single-threaded.
_PARALLEL_CHUNK = 250_000
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _worker_count(n: int) -> int:
    return max(1, min(_cpus(), 8, n // _PARALLEL_CHUNK))


def _pool() -> ThreadPoolExecutor:
    """Process-wide threads for large transforms (PROJ releases the GIL)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="gis-crs")
        return _POOL


def _forget_pool_after_fork() -> None:  # pragma: no cover - runs in forked children
    # a forked child inherits the executor object but not its threads: start afresh
    global _POOL, _POOL_LOCK
    _POOL = None
    _POOL_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


@functools.lru_cache(maxsize=128)
def _cached_reprojector(src_wkt: str, dst_wkt: str) -> Reprojector:
    return Reprojector(CRS.from_wkt(src_wkt), CRS.from_wkt(dst_wkt))


def make_transformer(src: CRS | str, dst: CRS | str = STORAGE_CRS) -> Reprojector:
    """A (cached) :class:`Reprojector` from ``src`` to ``dst``.

    Parameters
    ----------
    src : pyproj.CRS or str
        Source CRS (strings are parsed with :func:`parse_crs`).
    dst : pyproj.CRS or str, default EPSG:4326
        Target CRS.

    Returns
    -------
    Reprojector
        Shared between calls with the same CRSs (it is immutable and thread-safe).
    """
    src = src if isinstance(src, CRS) else parse_crs(src)
    dst = dst if isinstance(dst, CRS) else parse_crs(dst)
    src_wkt, dst_wkt = src.to_wkt(), dst.to_wkt()
    if not src_wkt or not dst_wkt:  # pragma: no cover - CRS without a WKT form: not cached
        return Reprojector(src, dst)
    return _cached_reprojector(src_wkt, dst_wkt)


# ---------------------------------------------------------------------------------------------
# Sanity checks
# ---------------------------------------------------------------------------------------------


def _fmt(v: float) -> str:
    if not math.isfinite(v):
        return str(v)
    if abs(v) >= 1000:
        return f"{v:,.0f}".replace(",", " ")
    return f"{v:.4f}".rstrip("0").rstrip(".")


def _fmt_bounds(b: Sequence[float]) -> str:
    return f"x {_fmt(b[0])} to {_fmt(b[2])}, y {_fmt(b[1])} to {_fmt(b[3])}"


def _fmt_lonlat(b: Sequence[float]) -> str:
    return f"lon {b[0]:.4f} to {b[2]:.4f}, lat {b[1]:.4f} to {b[3]:.4f}"


def _intersects(a: Sequence[float], b: Sequence[float], margin: float = 0.0) -> bool:
    return not (a[2] < b[0] - margin or a[0] > b[2] + margin
                or a[3] < b[1] - margin or a[1] > b[3] + margin)


def _are_degrees(b: Sequence[float]) -> bool:
    return -180.5 <= b[0] and b[2] <= 360.5 and -90.5 <= b[1] and b[3] <= 90.5


def _haversine_km(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(h)))


def _where(lonlat: Sequence[float]) -> str:
    """Say in words where a lon/lat box lies."""
    lon, lat = (lonlat[0] + lonlat[2]) / 2, (lonlat[1] + lonlat[3]) / 2
    from_hcmc = _haversine_km(lon, lat, *_HCMC_CENTRE)
    if _intersects(lonlat, VIETNAM_BOUNDS, margin=0.5):
        name, plon, plat = min(_PLACES, key=lambda p: _haversine_km(lon, lat, p[1], p[2]))
        near = _haversine_km(lon, lat, plon, plat)
        place = f"near {name}" if near < 60 else f"about {near:,.0f} km from {name}"
        return f"in Vietnam, {place}, about {from_hcmc:,.0f} km from the centre of HCMC"
    return (
        f"outside Vietnam, about {from_hcmc:,.0f} km from HCMC "
        f"(centre lon {lon:.4f}, lat {lat:.4f})"
    )


def _guess_text(candidates: list[int]) -> str:
    parts = []
    for code in candidates:
        parts.append(f"EPSG:{code} ({CRS.from_epsg(code).name})")
    return ", ".join(parts)


def _vn2000_or_own_area(crs: CRS) -> tuple[tuple[float, float, float, float], str] | None:
    horiz = _horizontal(crs)
    core = horiz.source_crs if horiz.is_bound else horiz
    for candidate in (crs, horiz, core):
        aou = candidate.area_of_use
        if aou is not None:
            return tuple(aou.bounds), aou.name
    auth = _authority(crs)
    if auth is not None and auth[0] == "EPSG":
        aou = CRS.from_epsg(int(auth[1])).area_of_use
        if aou is not None:
            return tuple(aou.bounds), aou.name
    if is_vn2000(crs):
        return VIETNAM_BOUNDS, "Vietnam (VN-2000)"
    return None


def guess_crs(
    bounds: Sequence[float], *, city_bounds: Sequence[float] = HCMC_BOUNDS
) -> list[int]:
    """EPSG codes under which coordinates with these bounds would land in the city.

    Meant for files without a CRS: the result feeds the "pass --crs" suggestion.

    Parameters
    ----------
    bounds : sequence of float
        ``(minx, miny, maxx, maxy)`` of the data, CRS unknown.
    city_bounds : sequence of float, default HCMC_BOUNDS
        Lon/lat envelope the data is expected in.

    Returns
    -------
    list of int
        ``[4326]`` for lon/lat degrees touching the city; for metres, those of 9210 (VN-2000 /
        TM-3 105-45), 32648 (WGS 84 / UTM 48N), 3405 (VN-2000 / UTM 48N) and 5899 (VN-2000 / TM-3
        107-45, former Ba Ria-Vung Tau) under which the data lies entirely inside the city
        envelope, in that order (cadastral grid first); if none does, those under which it at
        least touches the envelope. In the east of the city 9210, 32648 and 3405 all fit (their
        coordinate ranges overlap), so several codes may come back and only the data provider
        can tell them apart. Empty when nothing fits (latitude-first lon/lat gives an empty list
        too).
    """
    b = tuple(float(v) for v in bounds)
    if not all(math.isfinite(v) for v in b):
        return []
    if _are_degrees(b):
        return [STORAGE_EPSG] if _intersects(b, city_bounds) else []
    within, touching = [], []
    for code in _HCMC_PROJECTED_CANDIDATES:
        lonlat = make_transformer(CRS.from_epsg(code)).transform_bounds(b)
        if not all(math.isfinite(v) for v in lonlat):
            continue
        if _within(lonlat, city_bounds):
            within.append(code)
        elif _intersects(lonlat, city_bounds):
            touching.append(code)
    return within or touching


def _within(inner: Sequence[float], outer: Sequence[float]) -> bool:
    return (inner[0] >= outer[0] and inner[1] >= outer[1]
            and inner[2] <= outer[2] and inner[3] <= outer[3])


def _suggest(candidates: list[int]) -> str:
    text = f"pass --crs EPSG:{candidates[0]}" if candidates else "pass --crs"
    if len(candidates) > 1:
        text += f" (candidates: {_guess_text(candidates)}"
        if len(set(candidates) & {HCMC_GRID, 32648, 3405}) > 1:
            text += f"; {_HARD_TO_TELL}"
        text += ")"
    elif candidates:
        text += f" ({_guess_text(candidates)}: the only candidate grid that puts the data in HCMC)"
    return text


def check_extent(
    crs: CRS | str,
    bounds: Sequence[float],
    *,
    city_bounds: Sequence[float] = HCMC_BOUNDS,
    label: str = "file",
) -> tuple[float, float, float, float] | None:
    """Check that data bounds are plausible in their declared CRS and lie in the city.

    Checks, in this order:

    1. axis order: lon/lat data written latitude first (x ~ 10.x, y ~ 106.x) under a geographic
       CRS, or northing first under a projected one;
    2. units: metres under a geographic CRS (x ~ 690 000, y ~ 1 187 000 declared as EPSG:4326),
       or lon/lat degrees under a projected CRS (x ~ 106, y ~ 10 declared as EPSG:9210);
    3. area of use: the data, converted to lon/lat, must touch the CRS's area of use (with a 1
       degree margin);
    4. city: the data's lon/lat box must intersect ``city_bounds``.

    Parameters
    ----------
    crs : pyproj.CRS or str
        The declared CRS of the data.
    bounds : sequence of float
        ``(minx, miny, maxx, maxy)`` of the data in ``crs``, x = lon for geographic CRSs (the
        order GDAL reads files in).
    city_bounds : sequence of float, default HCMC_BOUNDS
        Lon/lat envelope the data must intersect.
    label : str, default "file"
        What the data is, for messages (a file name, a layer name).

    Returns
    -------
    tuple of float or None
        The data's lon/lat (WGS 84) bounds, or None when ``bounds`` are empty (NaN): nothing to
        check.

    Raises
    ------
    gis.errors.CRSError
        Naming the declared CRS, the data bounds and the probable cause and fix.
    ValueError
        If ``bounds`` is not a box (min > max).
    """
    crs = crs if isinstance(crs, CRS) else parse_crs(crs)
    b = tuple(float(v) for v in bounds)
    if len(b) != 4:
        raise ValueError(f"bounds must be (minx, miny, maxx, maxy), got {bounds!r}")
    if not all(math.isfinite(v) for v in b):
        return None
    if b[0] > b[2] or b[1] > b[3]:
        raise ValueError(f"bounds must be (minx, miny, maxx, maxy), got {bounds!r}")
    declared = describe_crs(crs)
    horiz = _horizontal(crs)
    core = horiz.source_crs if horiz.is_bound else horiz
    swapped = (b[1], b[0], b[3], b[2])
    head = f"The {label} declares {declared} but its coordinates span {_fmt_bounds(b)}"
    reprojector = make_transformer(crs)

    if core.is_geographic:
        # 1. latitude first?
        if _are_degrees(swapped) and _intersects(swapped, city_bounds) and not (
            _are_degrees(b) and _intersects(b, city_bounds)
        ):
            raise CRSError(
                f"{head}: the axis order looks swapped (latitude first, longitude second), but "
                "the platform reads x = longitude, y = latitude: swap the coordinate columns "
                "(for CSV, X = longitude and Y = latitude) or re-export the file in "
                "longitude/latitude order"
            )
        # 2. metres under a lon/lat CRS?
        if not _are_degrees(b):
            candidates = guess_crs(b, city_bounds=city_bounds)
            if candidates:
                cause = (
                    "the coordinates look like metres of a projected CRS (VN-2000 / TM-3 or UTM "
                    "48N), not the longitude/latitude degrees the declared CRS expects: fix the "
                    ".prj or " + _suggest(candidates)
                )
            else:
                cause = (
                    "these are not longitude/latitude degrees (they look like metres of a "
                    "projected CRS): fix the .prj or pass --crs with the real CRS of the data "
                    f"(HCMC cadastral maps are usually --crs EPSG:{HCMC_GRID}, VN-2000 / TM-3 "
                    "105-45)"
                )
            raise CRSError(f"{head}: {cause}")
    else:
        units = core.axis_info[0].unit_name if core.axis_info else "metre"
        # 1. / 2. lon/lat degrees (in either order) under a projected CRS?
        if _are_degrees(b) and units in ("metre", "meter", "US survey foot", "foot"):
            tiny = (b[2] - b[0]) < 400 and (b[3] - b[1]) < 200
            if _intersects(b, city_bounds):
                raise CRSError(
                    f"{head}: these look like longitude/latitude degrees, not projected "
                    f"coordinates in {units}: fix the .prj or pass --crs EPSG:4326"
                )
            if _intersects(swapped, city_bounds):
                raise CRSError(
                    f"{head}: these look like longitude/latitude degrees with the axis order "
                    "swapped (latitude first), not a projected CRS: swap the columns and pass "
                    "--crs EPSG:4326"
                )
            if tiny:
                raise CRSError(
                    f"{head}: the values are too small for projected coordinates in {units} and "
                    "look like longitude/latitude degrees: fix the .prj or pass --crs EPSG:4326"
                )
        lonlat = reprojector.transform_bounds(b)
        area = _vn2000_or_own_area(crs)
        if not all(math.isfinite(v) for v in lonlat) or (
            area is not None and not _intersects(lonlat, area[0], margin=1.0)
        ):
            # northing first?
            swapped_ll = reprojector.transform_bounds(swapped)
            if all(math.isfinite(v) for v in swapped_ll) and _intersects(swapped_ll, city_bounds):
                raise CRSError(
                    f"{head}: the axis order looks swapped (northing first, easting second): "
                    "swap the x and y columns"
                )
            candidates = guess_crs(b, city_bounds=city_bounds)
            where = (
                f"they would land at {_fmt_lonlat(lonlat)}"
                if all(math.isfinite(v) for v in lonlat)
                else "they cannot be converted to longitude/latitude"
            )
            area_text = (
                f" (area of use: {area[1].rstrip('.')}, {_fmt_lonlat(area[0])})"
                if area is not None
                else ""
            )
            cause = f"the data falls far outside the area where {declared} is used{area_text}; "
            if candidates:
                cause += f"{where}. The CRS looks wrong: fix the .prj or " + _suggest(candidates)
            else:
                cause += f"{where}. Fix the .prj or pass --crs with the real CRS of the data"
            raise CRSError(f"{head}: {cause}")

    # lon/lat bounds (geographic CRSs need no area-of-use test: the city test below covers it)
    lonlat = reprojector.transform_bounds(b) if not reprojector.is_identity else b
    if not all(math.isfinite(v) for v in lonlat):
        raise CRSError(
            f"{head}: they cannot be converted to longitude/latitude: fix the .prj or pass --crs"
        )
    # 4. in the city?
    if not _intersects(lonlat, city_bounds):
        message = (
            f"The {label}'s data is not in Ho Chi Minh City: read as {declared} it covers "
            f"{_fmt_lonlat(lonlat)}, which is {_where(lonlat)}. Check that this is the right "
            "file; if it is, its CRS is probably wrong (fix the .prj or pass --crs)"
        )
        auth = _authority(crs)
        declared_code = int(auth[1]) if auth and auth[0] == "EPSG" else None
        others = [c for c in guess_crs(b, city_bounds=city_bounds) if c != declared_code]
        if others:
            message += (
                f". The same coordinates fall in HCMC under {_guess_text(others)}: if that is "
                f"the data's real CRS, pass --crs EPSG:{others[0]}"
            )
        raise CRSError(message)
    return tuple(float(v) for v in lonlat)  # type: ignore[return-value]


def resolve_crs(
    file_crs: CRS | str | None,
    override: str | None,
    *,
    bounds: Sequence[float] | None = None,
) -> CRS:
    """Choose the CRS of an input: the ``--crs`` override wins over the file's own CRS.

    Parameters
    ----------
    file_crs : pyproj.CRS or str or None
        The CRS declared by the file (``.prj`` WKT, GeoPackage srs, GeoJSON crs member...).
    override : str or None
        The user's ``--crs`` value.
    bounds : sequence of float, optional
        Data bounds; when given and there is no CRS, the message suggests the CRSs found by
        :func:`guess_crs`.

    Returns
    -------
    pyproj.CRS

    Raises
    ------
    gis.errors.CRSError
        If the override or the file CRS cannot be parsed, or if there is neither:
        ``"The file has no CRS (no .prj or no CRS in its metadata): pass --crs, for example
        --crs EPSG:9210 for VN-2000 / TM-3 105-45 (HCMC)"``.
    """
    if override is not None:
        return parse_crs(override)
    if file_crs is not None and not (isinstance(file_crs, str) and not file_crs.strip()):
        return parse_crs(file_crs)
    message = _NO_CRS_MESSAGE
    if bounds is not None:
        candidates = guess_crs(bounds)
        if candidates:
            message += (
                f". Its coordinates ({_fmt_bounds(tuple(float(v) for v in bounds))}) fit "
                + _guess_text(candidates)
            )
            if len(set(candidates) & {HCMC_GRID, 32648, 3405}) > 1:
                message += f"; {_HARD_TO_TELL}"
    raise CRSError(message)

