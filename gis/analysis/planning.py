"""Planning and land statistics: land use by ward, plan compliance, built density, capacity.

Every area is computed from the geometries in WGS 84 / UTM 48N (EPSG:32648), in square metres,
never taken from a declared attribute (``legal_area_m2``, ``area_m2`` are kept for comparison).

Land-use groups
---------------
Cadastral codes (ODT, TMD, DGD, ...), plan codes (ODT, HH, CX, GD, YT, GT; NNO, CXDT, CCDT, ...)
and free-text uses (``"Residential - lowrise"``, ``"Đất ở"``, ``"house"``) are mapped to one
vocabulary of broad groups by :func:`use_group` (residential, mixed, commercial, industrial,
education, health, public, religious, cemetery, green, recreation, transport, infrastructure,
water, agriculture, defence, unused, other). Plan compliance compares groups through
:data:`ALLOWED`: which groups of buildings or parcels each group of plan lot admits.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from gis.analysis._common import (
    METRIC_CRS,
    STORAGE_CRS,
    check_choice,
    check_range,
    require_columns,
    require_rows,
    stamp,
    to_metric,
)
from gis.analysis.population import fold

__all__ = [
    "ALLOWED",
    "built_density",
    "capacity_by_zone",
    "estimate_storeys",
    "land_use_by_zone",
    "lot_capacity",
    "plan_compliance",
    "use_group",
]

# --- use groups ---------------------------------------------------------------------------------
_CODE_GROUPS = {
    # cadastral codes (Circulars 25/2014, 08/2024)
    "ODT": "residential", "ONT": "residential", "TMD": "commercial", "DCH": "commercial",
    "SKC": "industrial", "SKK": "industrial", "SKN": "industrial", "SKT": "industrial",
    "SKS": "industrial", "SKX": "industrial", "DGD": "education", "DYT": "health",
    "DGT": "transport", "DTL": "infrastructure", "DCK": "infrastructure", "DNL": "infrastructure",
    "DBV": "infrastructure", "DRA": "infrastructure", "DPC": "infrastructure", "DMT": "infrastructure",
    "SON": "water", "MNC": "water", "DKV": "recreation", "DTT": "recreation", "DVH": "public",
    "DSH": "public", "DXH": "public", "DKH": "public", "DKT": "public", "DNG": "public",
    "DSK": "public", "TSC": "public", "TSK": "public", "DTS": "public", "DDD": "public",
    "DDT": "public", "DDL": "public", "TON": "religious", "TIN": "religious", "NTD": "cemetery",
    "CQP": "defence", "CAN": "defence", "BCS": "unused", "DCS": "unused", "NCS": "unused",
    "PNK": "other",
    **{c: "agriculture" for c in ("LUC", "LUK", "LUN", "BHK", "NHK", "HNK", "CLN", "RSX", "RPH",
                                  "RDD", "NTS", "CNT", "LMU", "NKH")},
    # zoning plan codes
    "HH": "mixed", "CX": "green", "CXDT": "green", "GD": "education", "YT": "health",
    "GT": "transport", "NNO": "residential", "CCDT": "public", "CN": "industrial",
    "HTKT": "infrastructure", "MN": "water", "TGDT": "religious", "NT": "cemetery",
    "TM": "commercial", "TMDV": "commercial", "CQ": "public", "VH": "public", "TDTT": "recreation",
}
_WORDS = [  # (regex on folded text, group): first match wins
    (r"mix|hon hop", "mixed"),
    (r"health|hospital|clinic|medical|y te|benh vien", "health"),
    (r"educ|school|kindergar|universit|college|giao duc|truong", "education"),
    (r"green|park|open space|cay xanh|buffer|vegetat", "green"),
    (r"\bsport|recreat|cultur|club|the thao|vui choi", "recreation"),
    (r"relig|temple|church|pagoda|ton giao|tin nguong", "religious"),
    (r"cemet|nghia trang|martyr", "cemetery"),
    (r"industr|factory|warehouse|cong nghiep|san xuat", "industrial"),
    (r"water|river|lake|canal|mat nuoc|song", "water"),
    (r"\bport\b|marina|electric|sewage|infrastruct|ha tang|station", "infrastructure"),
    (r"transport|road|parking|giao thong", "transport"),
    (r"resid|villa|house|apartment|shophouse|dormitor|o tai|dat o|nha o|\bo\b", "residential"),
    (r"commerc|retail|office|shop|hotel|service|thuong mai|dich vu", "commercial"),
    (r"admin|public|government|cong cong|tru so", "public"),
    (r"defen|military|quoc phong|an ninh", "defence"),
    (r"agri|farm|paddy|rice|nong nghiep", "agriculture"),
]

#: Which groups of buildings / parcels a plan lot of each group admits.
ALLOWED: dict[str, frozenset[str]] = {k: frozenset(v) for k, v in {
    "residential": {"residential", "mixed"},
    "mixed": {"residential", "mixed", "commercial", "public", "health", "education"},
    "commercial": {"commercial", "mixed"},
    "industrial": {"industrial", "infrastructure"},
    "education": {"education"},
    "health": {"health"},
    "public": {"public", "health", "education", "religious", "recreation"},
    "religious": {"religious"},
    "cemetery": {"cemetery", "religious"},
    "green": {"green", "recreation"},
    "recreation": {"recreation", "green"},
    "transport": {"transport", "infrastructure"},
    "infrastructure": {"infrastructure", "transport"},
    "water": {"water"},
    "agriculture": {"agriculture"},
    "defence": {"defence"},
}.items()}


def use_group(*values) -> str:
    """The broad land-use group of a code or text (the first of ``values`` that tells).

    >>> use_group("ODT"), use_group("HH"), use_group(None, "Residential - lowrise")
    ('residential', 'mixed', 'residential')
    """
    for v in values:
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            continue
        s = str(v).strip()
        if not s:
            continue
        if s.upper() in _CODE_GROUPS:
            return _CODE_GROUPS[s.upper()]
        f = fold(s)
        for pat, group in _WORDS:
            if re.search(pat, f):
                return group
    return "other"


def _groups(df, *cols) -> np.ndarray:
    present = [c for c in cols if c in df.columns]
    if not present:
        return np.full(len(df), "other", dtype=object)
    vals = df[present].astype(object).to_numpy()
    return np.array([use_group(*row) for row in vals], dtype=object)


def estimate_storeys(buildings, storey_height_m: float = 3.5) -> tuple[np.ndarray, np.ndarray]:
    """Storeys of each building and where the figure came from.

    ``storeys`` when known (> 0); else ``round(height_m / storey_height_m)`` (at least 1); else 1.

    Returns
    -------
    storeys : ndarray of float
    basis : ndarray of str ("storeys", "height", "assumed 1")
    """
    n = len(buildings)
    st = pd.to_numeric(buildings["storeys"], errors="coerce").to_numpy(dtype=float) if "storeys" in buildings else np.full(n, np.nan)
    h = pd.to_numeric(buildings["height_m"], errors="coerce").to_numpy(dtype=float) if "height_m" in buildings else np.full(n, np.nan)
    out = np.ones(n)
    basis = np.full(n, "assumed 1", dtype=object)
    has_h = np.isfinite(h) & (h > 0)
    out[has_h] = np.maximum(1, np.round(h[has_h] / storey_height_m))
    basis[has_h] = "height"
    has_s = np.isfinite(st) & (st > 0)
    out[has_s] = st[has_s]
    basis[has_s] = "storeys"
    return out, basis


def _with_id(df, name: str):
    """The frame with its key as column ``name`` (from the index when it is not a column)."""
    if name in df.columns:
        return df.reset_index(drop=True)
    d = df.reset_index()
    return d.rename(columns={d.columns[0]: name})


def _zone_frame(zones, zone_key: str):
    z = zones.reset_index() if zone_key not in zones.columns else zones.reset_index(drop=True)
    require_columns(z, [zone_key], "The zone layer")
    return to_metric(z)


def _pieces(features, zones_m, zone_key: str, keep_cols: list[str]):
    """Features cut by zones (metric): one row per piece with its area (m2)."""
    import geopandas as gpd
    import shapely

    fm = to_metric(features)
    fi, zi = zones_m.sindex.query(fm.geometry.values, predicate="intersects")
    fg = np.asarray(fm.geometry.values)[fi]
    zg = np.asarray(zones_m.geometry.values)[zi]
    inter = shapely.intersection(fg, zg)
    area = shapely.area(inter)
    keep = area > 0
    data = {zone_key: zones_m[zone_key].to_numpy()[zi][keep], "_f": fm.index.to_numpy()[fi][keep],
            "area_m2": area[keep]}
    for c in keep_cols:
        data[c] = fm[c].to_numpy()[fi][keep]
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(inter[keep], crs=METRIC_CRS))


def _land_use_partition(part, zones_m, zone_key: str, use_column: str):
    return _pieces(part, zones_m, zone_key, [use_column, "_group"])


# --- land use by zone ---------------------------------------------------------------------------
def land_use_by_zone(features, zones, *, use_column: str, zone_key: str = "code", by: str = "use",
                     client=None, source: str = ""):
    """Land-use area and share per zone (ward, district), for parcels or plan lots.

    Parameters
    ----------
    features : GeoDataFrame
        Polygons with a land-use column (``cadastral.parcels_current``: ``land_use``;
        ``planning.lots_published``: ``use_code`` / ``use_class``).
    zones : GeoDataFrame
        Wards or districts with ``zone_key`` (and ``name``).
    use_column : str
        The land-use column of ``features``.
    by : {"use", "group"}
        Report each value of ``use_column``, or the broad groups of :func:`use_group`.
    client : optional
        Dask client or scheduler name: cut the features in partitions with dask-geopandas.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per (zone, use): ``code``, ``name``, ``use``, ``group``, ``area_m2``,
        ``share_of_zone`` (area / zone area), ``share_of_mapped`` (area / mapped area of the zone),
        ``zone_area_m2``, and the zone geometry. A row ``use = "(unmapped)"`` holds the zone area no
        feature covers, so that the areas of a zone sum to the zone's area; where features overlap
        each other the overlap is counted once per feature and ``attrs["overlap_m2"]`` says how
        much. ``attrs["max_residual_m2"]`` is the largest |sum of areas - overlap - zone area|
        (floating-point only, stated tolerance: 1e-6 of the zone area).
    """
    import geopandas as gpd
    import shapely

    from gis.analysis import parallel

    check_choice("by", by, ("use", "group"))
    require_rows(features, "The land-use layer", "Load parcels or plan lots first.")
    require_rows(zones, "The zone layer")
    require_columns(features, [use_column], "The land-use layer")
    zm = _zone_frame(zones, zone_key)
    f = features[[use_column, "geometry"]].copy()
    f["_group"] = _groups(features, use_column)
    f[use_column] = f[use_column].astype(object).where(f[use_column].notna(), "(none)")
    pieces = parallel.map_frame_partitions(_land_use_partition, f, npartitions=8, client=client,
                                           zones_m=zm, zone_key=zone_key, use_column=use_column)
    pieces = gpd.GeoDataFrame(pieces, geometry="geometry", crs=METRIC_CRS)
    key = use_column if by == "use" else "_group"
    agg = pieces.groupby([zone_key, key], sort=True).agg(area_m2=("area_m2", "sum"),
                                                         group=("_group", "first")).reset_index()
    agg = agg.rename(columns={key: "use"})
    if by == "group":
        agg["group"] = agg["use"]
    zone_area = pd.Series(zm.geometry.area.to_numpy(), index=zm[zone_key].to_numpy())
    zone_area = zone_area.groupby(level=0).sum()
    # mapped (union) area per zone: overlaps between features counted once
    union = {}
    for z, grp in pieces.groupby(zone_key, sort=False):
        union[z] = float(shapely.area(shapely.union_all(np.asarray(grp.geometry.values))))
    mapped = pd.Series(union, dtype=float)
    summed = pieces.groupby(zone_key)["area_m2"].sum()
    overlap = (summed - mapped).clip(lower=0)
    unm = pd.DataFrame({zone_key: zone_area.index, "use": "(unmapped)", "group": "(unmapped)",
                        "area_m2": (zone_area - mapped.reindex(zone_area.index).fillna(0.0)).clip(lower=0).to_numpy()})
    out = pd.concat([agg, unm[unm["area_m2"] > 0]], ignore_index=True)
    out["zone_area_m2"] = out[zone_key].map(zone_area)
    out["share_of_zone"] = out["area_m2"] / out["zone_area_m2"]
    mapped_by_zone = out[out["use"] != "(unmapped)"].groupby(zone_key)["area_m2"].sum()
    out["share_of_mapped"] = np.where(out["use"] == "(unmapped)", np.nan,
                                      out["area_m2"] / out[zone_key].map(mapped_by_zone))
    resid = (out.groupby(zone_key)["area_m2"].sum() - overlap.reindex(zone_area.index).fillna(0.0)
             - zone_area).abs()
    names = dict(zip(zm[zone_key], zm["name"])) if "name" in zm else {}
    out.insert(1, "name", out[zone_key].map(names))
    out = out.sort_values([zone_key, "area_m2"], ascending=[True, False]).reset_index(drop=True)
    geoms = dict(zip(zm[zone_key], zones.reset_index().to_crs(STORAGE_CRS).geometry.values
                     if zone_key not in zones.columns else zones.to_crs(STORAGE_CRS).geometry.values))
    out = gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(out[zone_key].map(geoms).values, crs=STORAGE_CRS))
    if zone_key != "code":
        out = out.rename(columns={zone_key: "code"})
    return stamp(out, analysis="planning.land-use", title=f"Land use by zone ({source or use_column})",
                 columns={"area_m2": ("m2", "area of the use inside the zone"),
                          "share_of_zone": ("fraction", "area_m2 / zone_area_m2"),
                          "share_of_mapped": ("fraction", "area_m2 / area of the zone covered by features"),
                          "zone_area_m2": ("m2", "area of the zone"),
                          "use": (None, f"value of {use_column}" if by == "use" else "broad land-use group"),
                          "group": (None, "broad land-use group (gis.analysis.planning.use_group)")},
                 assumptions=["Areas are computed from the geometries in UTM 48N (EPSG:32648), not "
                              "taken from declared areas.",
                              "'(unmapped)' is the zone area no feature covers; per zone the areas sum "
                              "to the zone area plus the overlap between features.",
                              "Stated tolerance: |sum - overlap - zone area| <= 1e-6 x zone area."],
                 parameters={"use_column": use_column, "by": by, "source": source},
                 overlap_m2=float(overlap.sum()), max_residual_m2=float(resid.max()) if len(resid) else 0.0,
                 tolerance_relative=1e-6, n_features=len(features), n_zones=len(zone_area))


# --- built density ------------------------------------------------------------------------------
def built_density(buildings, zones, *, zone_key: str = "code", storey_height_m: float = 3.5):
    """Building footprint, floor area and density per zone (ward or plan lot).

    Parameters
    ----------
    buildings : GeoDataFrame
        Footprints with ``storeys`` and/or ``height_m``.
    zones : GeoDataFrame
        Wards, districts or plan lots, with ``zone_key``.
    storey_height_m : float, default 3.5
        Storey height used where only the height is known (see :func:`estimate_storeys`).

    Returns
    -------
    geopandas.GeoDataFrame
        Per zone: ``n_buildings`` (footprints whose representative point is in the zone),
        ``footprint_m2`` (footprint inside the zone), ``floor_area_m2`` (footprint x storeys),
        ``zone_area_m2``, ``coverage`` (footprint / zone area), ``far`` (floor area / zone area),
        ``mean_storeys`` (footprint-weighted).
    """
    import geopandas as gpd

    check_range("storey_height_m", storey_height_m, 1.5, 10)
    require_rows(zones, "The zone layer")
    zm = _zone_frame(zones, zone_key)
    b = buildings.copy()
    st, basis = estimate_storeys(b, storey_height_m) if len(b) else (np.zeros(0), np.zeros(0, dtype=object))
    b["_storeys"] = st
    if len(b):
        pieces = _pieces(b[["_storeys", "geometry"]], zm, zone_key, ["_storeys"])
        pieces["floor"] = pieces["area_m2"] * pieces["_storeys"]
        bm = to_metric(b)
        rp = bm.geometry.representative_point()
        _, zi = zm.sindex.query(rp.values, predicate="within")
        counts = pd.Series(zm[zone_key].to_numpy()[zi]).value_counts()
    else:
        pieces = pd.DataFrame({zone_key: [], "area_m2": [], "floor": [], "_storeys": []})
        counts = pd.Series(dtype=int)
    agg = pieces.groupby(zone_key).agg(footprint_m2=("area_m2", "sum"), floor_area_m2=("floor", "sum"))
    z = zm[[zone_key] + (["name"] if "name" in zm else [])].copy()
    z["zone_area_m2"] = zm.geometry.area.to_numpy()
    z = z.join(agg, on=zone_key)
    z[["footprint_m2", "floor_area_m2"]] = z[["footprint_m2", "floor_area_m2"]].fillna(0.0)
    z["n_buildings"] = z[zone_key].map(counts).fillna(0).astype(int)
    z["coverage"] = z["footprint_m2"] / z["zone_area_m2"]
    z["far"] = z["floor_area_m2"] / z["zone_area_m2"]
    z["mean_storeys"] = np.where(z["footprint_m2"] > 0, z["floor_area_m2"] / z["footprint_m2"].where(z["footprint_m2"] > 0), np.nan)
    out = gpd.GeoDataFrame(z.drop(columns=[]), geometry=zm.geometry.values, crs=METRIC_CRS).to_crs(STORAGE_CRS)
    if zone_key != "code":
        out = out.rename(columns={zone_key: "code"})
    vc = pd.Series(basis).value_counts().to_dict() if len(b) else {}
    return stamp(out, analysis="planning.built-density", title="Built density per zone",
                 columns={"n_buildings": (None, "buildings whose representative point is in the zone"),
                          "footprint_m2": ("m2", "building footprint inside the zone"),
                          "floor_area_m2": ("m2", "footprint x storeys"),
                          "zone_area_m2": ("m2", "area of the zone"),
                          "coverage": ("fraction", "footprint_m2 / zone_area_m2 (building coverage)"),
                          "far": ("ratio", "floor_area_m2 / zone_area_m2 (floor area ratio)"),
                          "mean_storeys": ("storeys", "floor_area_m2 / footprint_m2")},
                 assumptions=["Floor area = footprint x storeys.",
                              f"Storeys: the recorded figure; else round(height / {storey_height_m:g} m); else 1.",
                              "A building across a zone boundary counts its footprint in each zone by area."],
                 parameters={"storey_height_m": storey_height_m},
                 storeys_basis={str(k): int(v) for k, v in vc.items()},
                 total_floor_area_m2=float(out["floor_area_m2"].sum()))


# --- compliance ---------------------------------------------------------------------------------
def _set(x) -> bool:
    """A limit or value that is given (not NaN)."""
    return x is not None and bool(np.isfinite(x))


def _limit(series, zero_is_unset: bool) -> np.ndarray:
    v = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
    if zero_is_unset:
        v = np.where(v > 0, v, np.nan)
    return v


def plan_compliance(lots, buildings=None, parcels=None, *, storey_height_m: float = 3.5,
                    zero_is_unset: bool = True, check_use: bool = True,
                    allowed: dict[str, set[str]] | None = None):
    """Buildings and parcels checked against the zoning plan; one row per violation.

    Rules
    -----
    Per building (assigned to the lot containing its representative point):

    * ``max_storeys``: storeys (recorded, else estimated from the height) > the lot's max storeys;
    * ``max_height``: recorded height > the lot's max height (m);
    * ``land_use``: the building's use group is not admitted by the lot's group (:data:`ALLOWED`).

    Per lot (from the buildings' footprints inside it):

    * ``max_coverage``: footprint / lot area > max coverage (fraction);
    * ``max_far``: floor area (footprint x storeys) / lot area > max FAR.

    Per parcel (assigned to the lot it overlaps most):

    * ``land_use``: the parcel's land-use group is not admitted by the lot's group.

    Parameters
    ----------
    lots : GeoDataFrame
        ``planning.lots_published`` (``lot_code``, ``use_class``, ``use_code``, limits).
    buildings, parcels : GeoDataFrame, optional
        At least one of them.
    zero_is_unset : bool, default True
        A limit of 0 means "not set" (sources write 0 for a missing value) rather than "nothing
        may be built".
    check_use : bool
        Check land use (rules ``land_use``).
    allowed : dict, optional
        Replaces :data:`ALLOWED` entries (lot group -> admitted groups).

    Returns
    -------
    geopandas.GeoDataFrame
        ``feature_type`` (building, parcel, lot), ``feature_id``, ``lot_id``, ``lot_code``,
        ``rule``, ``value``, ``limit``, ``excess`` (value - limit), ``unit``, ``message`` and the
        feature's geometry. ``attrs`` counts what was checked and what was not (features outside
        every lot, unknown use groups).
    """
    import geopandas as gpd
    import shapely

    check_range("storey_height_m", storey_height_m, 1.5, 10)
    require_rows(lots, "The plan lot layer", "Load a zoning plan with `gis ingest planning`.")
    if (buildings is None or len(buildings) == 0) and (parcels is None or len(parcels) == 0):
        from gis.analysis._common import EmptyInputError

        raise EmptyInputError("Plan compliance needs buildings or parcels; both are empty.")
    table = dict(ALLOWED)
    table.update({k: frozenset(v) for k, v in (allowed or {}).items()})
    L = to_metric(_with_id(lots, "lot_id"))
    lot_group = _groups(L, "use_code", "use_class", "use_name")
    lot_area = L.geometry.area.to_numpy()
    lim = {k: _limit(L[k], zero_is_unset) if k in L else np.full(len(L), np.nan)
           for k in ("max_storeys", "max_height_m", "max_far", "max_coverage")}
    rows: list[dict] = []
    facts: dict[str, int] = {}

    def add(ftype, fid, li, rule, value, limit, unit, msg, geom):
        rows.append({"feature_type": ftype, "feature_id": fid, "lot_id": L["lot_id"].iat[li],
                     "lot_code": L["lot_code"].iat[li] if "lot_code" in L else None, "rule": rule,
                     "value": value, "limit": limit, "excess": (value - limit) if _set(limit) and _set(value) else np.nan,
                     "unit": unit, "message": msg, "geometry": geom})

    if buildings is not None and len(buildings):
        B = to_metric(buildings)
        bid = B.index.to_numpy()
        st, basis = estimate_storeys(B, storey_height_m)
        h = pd.to_numeric(B["height_m"], errors="coerce").to_numpy(dtype=float) if "height_m" in B else np.full(len(B), np.nan)
        bgroup = _groups(B, "use")
        rp = B.geometry.representative_point().values
        bi, li = L.sindex.query(rp, predicate="within")
        # a point on a shared lot edge: keep the first lot
        first = np.unique(bi, return_index=True)[1]
        bi, li = bi[first], li[first]
        facts["buildings"] = len(B)
        facts["buildings_outside_lots"] = int(len(B) - len(bi))
        bgeom = np.asarray(B.to_crs(STORAGE_CRS).geometry.values)
        unknown_use = 0
        for b, l in zip(bi, li):
            ms = lim["max_storeys"][l]
            if _set(ms) and st[b] > ms:
                add("building", bid[b], l, "max_storeys", float(st[b]), float(ms), "storeys",
                    f"{st[b]:g} storeys ({basis[b]}) > {ms:g} allowed in lot {L['lot_code'].iat[l]}", bgeom[b])
            mh = lim["max_height_m"][l]
            if _set(mh) and _set(h[b]) and h[b] > mh:
                add("building", bid[b], l, "max_height", float(h[b]), float(mh), "m",
                    f"height {h[b]:g} m > {mh:g} m allowed in lot {L['lot_code'].iat[l]}", bgeom[b])
            if check_use:
                g_l, g_b = lot_group[l], bgroup[b]
                if g_l == "other" or g_b == "other":
                    unknown_use += 1
                elif g_b not in table.get(g_l, frozenset({g_l})):
                    add("building", bid[b], l, "land_use", np.nan, np.nan, None,
                        f"a {g_b} building in a lot planned for {g_l} ({L['lot_code'].iat[l]})", bgeom[b])
        facts["buildings_use_unchecked"] = unknown_use
        # lot-level coverage and FAR from footprints inside each lot
        fi, lj = L.sindex.query(B.geometry.values, predicate="intersects")
        inter = shapely.area(shapely.intersection(np.asarray(B.geometry.values)[fi], np.asarray(L.geometry.values)[lj]))
        foot = np.bincount(lj, weights=inter, minlength=len(L))
        floor = np.bincount(lj, weights=inter * st[fi], minlength=len(L))
        lgeom = np.asarray(L.to_crs(STORAGE_CRS).geometry.values)
        for l in np.flatnonzero(foot > 0):
            cov, far = foot[l] / lot_area[l], floor[l] / lot_area[l]
            mc, mf = lim["max_coverage"][l], lim["max_far"][l]
            if _set(mc) and cov > mc + 1e-9:
                add("lot", L["lot_id"].iat[l], l, "max_coverage", float(cov), float(mc), "fraction",
                    f"building coverage {cov:.0%} > {mc:.0%} allowed", lgeom[l])
            if _set(mf) and far > mf + 1e-9:
                add("lot", L["lot_id"].iat[l], l, "max_far", float(far), float(mf), "ratio",
                    f"floor area ratio {far:.2f} > {mf:g} allowed", lgeom[l])
    if parcels is not None and len(parcels) and check_use:
        P = to_metric(parcels)
        pid = P.index.to_numpy()
        pgroup = _groups(P, "land_use")
        pi, lj = L.sindex.query(P.geometry.values, predicate="intersects")
        inter = shapely.area(shapely.intersection(np.asarray(P.geometry.values)[pi], np.asarray(L.geometry.values)[lj]))
        df = pd.DataFrame({"p": pi, "l": lj, "a": inter}).sort_values(["p", "a"], ascending=[True, False])
        best = df[df["a"] > 0].drop_duplicates("p")
        facts["parcels"] = len(P)
        facts["parcels_outside_lots"] = int(len(P) - len(best))
        pgeom = np.asarray(P.to_crs(STORAGE_CRS).geometry.values)
        unknown = 0
        for p, l in zip(best["p"].to_numpy(), best["l"].to_numpy()):
            g_l, g_p = lot_group[l], pgroup[p]
            if g_l == "other" or g_p == "other":
                unknown += 1
            elif g_p not in table.get(g_l, frozenset({g_l})):
                add("parcel", pid[p], l, "land_use", np.nan, np.nan, None,
                    f"{g_p} land ({parcels['land_use'].iat[p] if 'land_use' in parcels else ''}) in a lot "
                    f"planned for {g_l} ({L['lot_code'].iat[l]})", pgeom[p])
        facts["parcels_use_unchecked"] = unknown
    cols = ["feature_type", "feature_id", "lot_id", "lot_code", "rule", "value", "limit", "excess",
            "unit", "message", "geometry"]
    out = gpd.GeoDataFrame(pd.DataFrame(rows, columns=cols), geometry="geometry", crs=STORAGE_CRS)
    counts = out.groupby("rule").size().to_dict() if len(out) else {}
    return stamp(out, analysis="planning.compliance", title="Plan compliance: violations",
                 columns={"value": (None, "the measured value (unit in 'unit')"),
                          "limit": (None, "the plan's limit (unit in 'unit')"),
                          "excess": (None, "value - limit"), "rule": (None, "the rule broken"),
                          "message": (None, "what is wrong, in words")},
                 assumptions=["A building belongs to the lot containing its representative point; a "
                              "parcel to the lot it overlaps most.",
                              f"Storeys: recorded, else round(height / {storey_height_m:g} m), else 1.",
                              "A limit of 0 means 'not set'." if zero_is_unset else "A limit of 0 means nothing may be built.",
                              "Land use is compared by broad group (gis.analysis.planning.ALLOWED)."],
                 parameters={"storey_height_m": storey_height_m, "zero_is_unset": zero_is_unset,
                             "check_use": check_use},
                 violations_by_rule={str(k): int(v) for k, v in counts.items()}, checked=facts)


# --- development capacity -----------------------------------------------------------------------
def lot_capacity(lots, buildings=None, *, storey_height_m: float = 3.5, zero_is_unset: bool = True):
    """Development capacity left per plan lot (floor area).

    The permitted floor area of a lot is ``max_far x lot area``; without a FAR,
    ``max_storeys x max_coverage x lot area``; with only a storey limit, ``max_storeys x lot
    area x 1`` (basis "storeys", an upper bound). The existing floor area is the footprint of the
    buildings inside the lot times their storeys.

    Returns
    -------
    geopandas.GeoDataFrame
        Per lot: ``lot_id``, ``lot_code``, ``group``, ``lot_area_m2``, ``permitted_floor_area_m2``,
        ``basis``, ``existing_floor_area_m2``, ``remaining_floor_area_m2`` (>= 0),
        ``utilisation`` (existing / permitted), lot geometry.
    """
    import geopandas as gpd
    import shapely

    require_rows(lots, "The plan lot layer", "Load a zoning plan with `gis ingest planning`.")
    L = to_metric(_with_id(lots, "lot_id"))
    area = L.geometry.area.to_numpy()
    far = _limit(L["max_far"], zero_is_unset) if "max_far" in L else np.full(len(L), np.nan)
    sto = _limit(L["max_storeys"], zero_is_unset) if "max_storeys" in L else np.full(len(L), np.nan)
    cov = _limit(L["max_coverage"], zero_is_unset) if "max_coverage" in L else np.full(len(L), np.nan)
    permitted = np.full(len(L), np.nan)
    basis = np.full(len(L), None, dtype=object)
    for mask, value, name in (
        (np.isfinite(sto), sto * area, "storeys"),
        (np.isfinite(sto) & np.isfinite(cov), sto * cov * area, "storeys x coverage"),
        (np.isfinite(far), far * area, "far"),
    ):
        permitted[mask], basis[mask] = value[mask], name
    existing = np.zeros(len(L))
    if buildings is not None and len(buildings):
        B = to_metric(buildings)
        st, _ = estimate_storeys(B, storey_height_m)
        bi, lj = L.sindex.query(B.geometry.values, predicate="intersects")
        inter = shapely.area(shapely.intersection(np.asarray(B.geometry.values)[bi], np.asarray(L.geometry.values)[lj]))
        existing = np.bincount(lj, weights=inter * st[bi], minlength=len(L))
    out = pd.DataFrame({"lot_id": L["lot_id"].to_numpy(), "lot_code": L["lot_code"].to_numpy() if "lot_code" in L else None,
                        "group": _groups(L, "use_code", "use_class", "use_name"), "lot_area_m2": area,
                        "permitted_floor_area_m2": permitted, "basis": basis,
                        "existing_floor_area_m2": existing})
    out["remaining_floor_area_m2"] = np.clip(permitted - existing, 0, None)
    out["utilisation"] = np.where(permitted > 0, existing / np.where(permitted > 0, permitted, 1), np.nan)
    out = gpd.GeoDataFrame(out, geometry=L.geometry.values, crs=METRIC_CRS).to_crs(STORAGE_CRS)
    return stamp(out, analysis="planning.capacity-lots", title="Development capacity per plan lot",
                 columns={"lot_area_m2": ("m2", "area of the lot (UTM 48N)"),
                          "permitted_floor_area_m2": ("m2", "floor area the plan permits (see basis)"),
                          "basis": (None, "far | storeys x coverage | storeys"),
                          "existing_floor_area_m2": ("m2", "footprint inside the lot x storeys"),
                          "remaining_floor_area_m2": ("m2", "max(0, permitted - existing)"),
                          "utilisation": ("fraction", "existing / permitted")},
                 assumptions=["Permitted floor area: FAR x area; else storeys x coverage x area; else "
                              "storeys x area (an upper bound).",
                              f"Existing storeys: recorded, else round(height / {storey_height_m:g} m), else 1."],
                 parameters={"storey_height_m": storey_height_m, "zero_is_unset": zero_is_unset},
                 lots_without_limits=int(np.isnan(permitted).sum()),
                 total_remaining_m2=float(np.nansum(out["remaining_floor_area_m2"])))


def capacity_by_zone(lot_cap, zones, *, zone_key: str = "code"):
    """Lot capacities summed per zone (ward): each lot split by its area share in the zone.

    Returns
    -------
    geopandas.GeoDataFrame
        Per zone: ``lots`` (lots intersecting), ``permitted_floor_area_m2``,
        ``existing_floor_area_m2``, ``remaining_floor_area_m2``, zone geometry.
    """
    import geopandas as gpd
    import shapely

    require_rows(zones, "The zone layer")
    zm = _zone_frame(zones, zone_key)
    L = to_metric(lot_cap).reset_index(drop=True)
    li, zi = zm.sindex.query(L.geometry.values, predicate="intersects")
    share = shapely.area(shapely.intersection(np.asarray(L.geometry.values)[li], np.asarray(zm.geometry.values)[zi]))
    share = share / L.geometry.area.to_numpy()[li]
    cols = ["permitted_floor_area_m2", "existing_floor_area_m2", "remaining_floor_area_m2"]
    part = pd.DataFrame({zone_key: zm[zone_key].to_numpy()[zi], "lots": (share > 0).astype(int)})
    for c in cols:
        part[c] = np.nan_to_num(L[c].to_numpy(dtype=float)[li]) * share
    agg = part.groupby(zone_key).sum()
    z = zm[[zone_key] + (["name"] if "name" in zm else [])].join(agg, on=zone_key)
    z[cols + ["lots"]] = z[cols + ["lots"]].fillna(0)
    z["lots"] = z["lots"].astype(int)
    out = gpd.GeoDataFrame(z, geometry=zm.geometry.values, crs=METRIC_CRS).to_crs(STORAGE_CRS)
    if zone_key != "code":
        out = out.rename(columns={zone_key: "code"})
    return stamp(out, analysis="planning.capacity", title="Development capacity per zone",
                 columns={c: ("m2", lot_cap.attrs.get("columns", {}).get(c, c)) for c in cols}
                 | {"lots": (None, "plan lots intersecting the zone")},
                 assumptions=list(lot_cap.attrs.get("assumptions", []))
                 + ["A lot across zones is split by its area share."],
                 parameters=lot_cap.attrs.get("parameters", {}),
                 total_remaining_m2=float(out["remaining_floor_area_m2"].sum()))
