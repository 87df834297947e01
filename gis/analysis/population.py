"""Population: per ward (2019 census, 2025 wards), WorldPop cells, and the 2019 -> 2025 crosswalk.

Population cells
----------------
WorldPop rasters give people per cell (1 km or 100 m). :func:`worldpop_cells` reads the populated
cells of a GeoTIFF as polygons; :func:`population_points` cuts them by the zones (wards) and turns
every piece into a point at the piece's representative point, carrying the cell's population times
the piece's share of the cell's area (population is assumed uniform within a cell). Those points
are the "residential cells" of the health-access analyses: a ward that is smaller than a cell still
gets its share, measured from inside the ward.

The 2019 -> 2025 crosswalk
--------------------------
On 1 July 2025 Ho Chi Minh City merged its 2019 wards into 168 new wards and communes (and absorbed
Binh Duong and Ba Ria - Vung Tau). :func:`ward_crosswalk` overlays the two boundary sets and gives,
for each 2019 ward, the share of it that went to each 2025 ward, weighted by **area** or by
**population** (WorldPop people in each piece; where a 2019 ward has no populated cell, by area).
Shares below ``min_share`` (boundary slivers from the two sources' different digitising) are
dropped and the rest renormalised, so every 2019 ward's shares sum to 1 and a carried total is
preserved exactly. :func:`carry_over` applies it to any extensive statistic (counts, areas,
people); :func:`official_crosswalk` parses the government's list of merged wards (by name) and
:func:`crosswalk_agreement` checks the geometric crosswalk against it.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd

from gis.analysis._common import (
    METRIC_CRS,
    STORAGE_CRS,
    EmptyInputError,
    check_choice,
    check_range,
    require_columns,
    require_rows,
    stamp,
    to_metric,
)
from gis.errors import InputError, NotFoundError

__all__ = [
    "carry_over",
    "crosswalk_agreement",
    "official_crosswalk",
    "population_2025_from_2019",
    "population_points",
    "ward_crosswalk",
    "ward_population",
    "worldpop_cells",
]


# --- WorldPop -----------------------------------------------------------------------------------
def worldpop_cells(path: str | Path, *, bounds: tuple[float, float, float, float] | None = None,
                   band: int = 1):
    """The populated cells of a population raster (WorldPop people per cell) as polygons.

    Parameters
    ----------
    path : str or Path
        A GeoTIFF (any CRS; WorldPop's are EPSG:4326).
    bounds : (minlon, minlat, maxlon, maxlat), optional
        Read only the cells that intersect this box.
    band : int
        1-based band.

    Returns
    -------
    geopandas.GeoDataFrame
        ``cell`` (row * width + col), ``population`` (persons, > 0), polygon geometry (lon/lat).

    Raises
    ------
    NotFoundError
        The file does not exist. ``InputError``: it is not a raster.
    EmptyInputError
        No populated cell in ``bounds``.
    """
    import geopandas as gpd
    import rasterio
    import shapely
    from rasterio.windows import from_bounds

    p = Path(path)
    if not p.exists():
        raise NotFoundError(f"The population raster {p} does not exist.")
    try:
        ds = rasterio.open(p)
    except rasterio.errors.RasterioIOError:
        raise InputError(f"{p.name} is not a raster GDAL can read.") from None
    with ds:
        if band < 1 or band > ds.count:
            raise InputError(f"{p.name} has {ds.count} band(s); band {band} does not exist.")
        if bounds is not None:
            b = bounds
            if ds.crs is not None and ds.crs.to_epsg() != 4326:
                from pyproj import Transformer

                tr = Transformer.from_crs(STORAGE_CRS, ds.crs, always_xy=True)
                b = tr.transform_bounds(*bounds)
            w = from_bounds(*b, transform=ds.transform)
            c0_, r0_ = max(0, int(np.floor(w.col_off))), max(0, int(np.floor(w.row_off)))
            c1_ = min(ds.width, int(np.ceil(w.col_off + w.width)))
            r1_ = min(ds.height, int(np.ceil(w.row_off + w.height)))
            if c1_ <= c0_ or r1_ <= r0_:
                raise EmptyInputError(f"{p.name} does not cover the area asked for.")
            win = rasterio.windows.Window(c0_, r0_, c1_ - c0_, r1_ - r0_)
        else:
            win = rasterio.windows.Window(0, 0, ds.width, ds.height)
        data = ds.read(band, window=win, masked=True).astype("float64")
        transform = ds.window_transform(win)
        crs = ds.crs or STORAGE_CRS
        r0, c0, width = int(win.row_off), int(win.col_off), ds.width
    vals = np.ma.filled(data, 0.0)
    rows, cols = np.nonzero(np.isfinite(vals) & (vals > 0))
    if len(rows) == 0:
        raise EmptyInputError(f"{p.name} has no populated cell in the area asked for.")
    a, b_, c, d, e, f = transform.a, transform.b, transform.c, transform.d, transform.e, transform.f
    x0, y0 = c + cols * a + rows * b_, f + cols * d + rows * e
    boxes = shapely.box(np.minimum(x0, x0 + a), np.minimum(y0, y0 + e), np.maximum(x0, x0 + a),
                        np.maximum(y0, y0 + e))
    gdf = gpd.GeoDataFrame({"cell": (rows + r0) * width + (cols + c0), "population": vals[rows, cols]},
                           geometry=gpd.GeoSeries(boxes, crs=crs))
    if gdf.crs.to_epsg() != 4326:
        gdf = gdf.to_crs(STORAGE_CRS)
    gdf.attrs = {"source": str(p), "band": band, "cell_size": [abs(a), abs(e)]}
    return gdf


def _pieces(cells, zones, zone_key: str):
    """Cells cut by zones: one row per (cell, zone) piece with its share of the cell's people."""
    import geopandas as gpd
    import shapely

    if len(cells) == 0:
        return gpd.GeoDataFrame({"cell": [], zone_key: [], "population": [], "share": []},
                                geometry=gpd.GeoSeries([], crs=METRIC_CRS))
    cm = to_metric(cells[["cell", "population", "geometry"]])
    zm = to_metric(zones[[zone_key, "geometry"]]).reset_index(drop=True)
    ci, zi = zm.sindex.query(cm.geometry.values, predicate="intersects")
    cg, zg = np.asarray(cm.geometry.values)[ci], np.asarray(zm.geometry.values)[zi]
    inter = shapely.intersection(cg, zg)
    area = shapely.area(inter)
    share = area / shapely.area(cg)
    keep = share > 1e-9
    inter, share, ci, zi = inter[keep], share[keep], ci[keep], zi[keep]
    return gpd.GeoDataFrame({
        "cell": cm["cell"].to_numpy()[ci],
        zone_key: zm[zone_key].to_numpy()[zi],
        "population": cm["population"].to_numpy()[ci] * share,
        "share": share,
    }, geometry=gpd.GeoSeries(shapely.point_on_surface(inter), crs=METRIC_CRS))


def population_points(cells, zones=None, *, zone_key: str = "code", client=None):
    """Population points: cells cut by zones, each piece a point carrying its people.

    Parameters
    ----------
    cells : GeoDataFrame
        From :func:`worldpop_cells` (``cell``, ``population``, polygons).
    zones : GeoDataFrame, optional
        Zones (wards) with a ``zone_key`` column. Without zones every cell is one point at its centre.
    zone_key : str
        Column naming the zone.
    client : optional
        Dask client or scheduler name: cut the cells in partitions with dask-geopandas.

    Returns
    -------
    geopandas.GeoDataFrame
        ``cell``, ``zone_key``, ``population`` (persons), ``share`` (of the cell's area), points
        (lon/lat). Cells outside every zone are left out (their people are outside the zones).
    """
    import geopandas as gpd

    from gis.analysis import parallel

    require_rows(cells, "The population cells")
    if zones is None:
        pts = to_metric(cells).geometry.centroid
        out = gpd.GeoDataFrame({"cell": cells["cell"].to_numpy(), "population": cells["population"].to_numpy(),
                                "share": 1.0}, geometry=pts.values, crs=METRIC_CRS)
    else:
        require_rows(zones, "The zone layer")
        zk = zones.reset_index() if zone_key not in zones.columns else zones
        require_columns(zk, [zone_key], "The zone layer")
        out = parallel.map_frame_partitions(_pieces, cells[["cell", "population", "geometry"]],
                                            npartitions=8, client=client, zones=zk, zone_key=zone_key)
        out = gpd.GeoDataFrame(out, geometry="geometry", crs=METRIC_CRS)
        out = out.sort_values(["cell", zone_key], kind="stable").reset_index(drop=True)
    out = out.to_crs(STORAGE_CRS)
    return stamp(out, analysis="population.points", title="Population points (WorldPop cells cut by zones)",
                 columns={"population": ("persons", "people in the piece (cell population x share)"),
                          "share": ("fraction", "share of the cell's area in the zone"),
                          "cell": (None, "row * width + column of the raster cell")},
                 assumptions=["Population is uniform within a raster cell.",
                              "Each piece of a cell inside a zone is represented by its representative point."],
                 total_population=float(out["population"].sum()), source=cells.attrs.get("source"))


# --- ward population ----------------------------------------------------------------------------
def _zonal_worldpop(worldpop: str | Path, wards) -> tuple[np.ndarray, str]:
    """WorldPop people per ward: the platform's exact zonal statistics when available."""
    try:
        from gis.raster.zonal import compute_zonal
    except ImportError:  # the raster package is optional here
        compute_zonal = None
    if compute_zonal is not None:
        try:
            df = compute_zonal(worldpop, wards[["geometry"]], percentiles=())
            return df.sort_values("zone")["sum"].to_numpy(dtype=float), "gis.raster.zonal (cell-coverage weighted)"
        except TypeError:
            pass
    cells = worldpop_cells(worldpop, bounds=tuple(wards.total_bounds))
    z = wards.reset_index(drop=True).assign(_z=np.arange(len(wards)))
    pieces = _pieces(cells, z, "_z")
    sums = pieces.groupby("_z")["population"].sum().reindex(range(len(wards)), fill_value=0.0)
    return sums.to_numpy(dtype=float), "area-weighted cell overlay (gis.analysis.population)"


def ward_population(wards, *, worldpop: str | Path | None = None):
    """Population, area and density of each ward.

    Parameters
    ----------
    wards : GeoDataFrame
        ``admin.wards_2019``, ``admin.wards_2025`` or ``admin.districts`` (``code``, ``name``,
        ``population``, ``population_year``).
    worldpop : path, optional
        A WorldPop raster: adds the WorldPop estimate per ward.

    Returns
    -------
    geopandas.GeoDataFrame
        ``code``, ``name``, ``population`` (persons, from the layer: the 2019 census for 2019
        wards), ``population_year``, ``area_km2`` (computed from the geometry in UTM 48N),
        ``density_per_km2``; with ``worldpop``: ``worldpop_population`` and ``worldpop_density_per_km2``.
        ``attrs`` holds units, the total and the method.

    Examples
    --------
    >>> df = ward_population(load_layer(dsn, "wards_2019"))  # doctest: +SKIP
    >>> int(df["population"].sum())  # doctest: +SKIP
    8993082
    """
    require_rows(wards, "The ward layer")
    w = wards.reset_index()
    require_columns(w, ["code", "name"], "The ward layer")
    area = to_metric(w).geometry.area.to_numpy() / 1e6
    pop = pd.to_numeric(w["population"], errors="coerce").astype(float) if "population" in w else np.nan
    out = w[["code", "name"] + [c for c in ("population_year",) if c in w]].copy()
    out["population"] = pd.array(pop, dtype="Float64").round().astype("Int64") if "population" in w else pd.NA
    out["area_km2"] = area
    out["density_per_km2"] = np.where(area > 0, np.asarray(pop, dtype=float) / area, np.nan)
    method = None
    if worldpop is not None:
        sums, method = _zonal_worldpop(worldpop, w)
        out["worldpop_population"] = sums
        out["worldpop_density_per_km2"] = np.where(area > 0, sums / area, np.nan)
    import geopandas as gpd

    out = gpd.GeoDataFrame(out, geometry=w.geometry.values, crs=w.crs)
    total = float(np.nansum(np.asarray(pop, dtype=float)))
    return stamp(out, analysis="planning.population", title="Population and density per ward",
                 columns={"population": ("persons", "population from the ward layer (census)"),
                          "population_year": (None, "year of the population figure"),
                          "area_km2": ("km2", "area computed from the geometry (UTM 48N)"),
                          "density_per_km2": ("persons/km2", "population / area_km2"),
                          "worldpop_population": ("persons", "WorldPop people in the ward"),
                          "worldpop_density_per_km2": ("persons/km2", "worldpop_population / area_km2")},
                 assumptions=["Areas are planimetric areas in WGS 84 / UTM 48N (EPSG:32648)."],
                 total_population=total, n_wards=len(out), worldpop_method=method,
                 worldpop_source=str(worldpop) if worldpop else None)


# --- crosswalk ----------------------------------------------------------------------------------
def ward_crosswalk(wards_2019, wards_2025, *, method: str = "area", worldpop=None,
                   min_share: float = 0.005):
    """Share of each 2019 ward that went to each 2025 ward (area- or population-weighted).

    Parameters
    ----------
    wards_2019, wards_2025 : GeoDataFrame
        With ``code`` and ``name``.
    method : {"area", "population"}
        Weight of a piece: its area, or its WorldPop people (needs ``worldpop``: a raster path or
        cells from :func:`worldpop_cells`).
    min_share : float, default 0.005
        Pieces below this share of their 2019 ward are boundary slivers: dropped, the rest
        renormalised.

    Returns
    -------
    geopandas.GeoDataFrame
        ``code_2019``, ``name_2019``, ``code_2025``, ``name_2025``, ``overlap_km2``, ``weight``
        (the shares of each 2019 ward sum to 1) and the piece (2019 ward inside 2025 ward) as
        geometry. ``attrs["method"]`` states the weighting.
    """
    import geopandas as gpd
    import shapely

    check_choice("method", method, ("area", "population"))
    check_range("min_share", min_share, 0, 0.5)
    require_rows(wards_2019, "The 2019 ward layer")
    require_rows(wards_2025, "The 2025 ward layer")
    a = to_metric(wards_2019.reset_index()[["code", "name", "geometry"]])
    b = to_metric(wards_2025.reset_index()[["code", "name", "geometry"]])
    ia, ib = b.sindex.query(a.geometry.values, predicate="intersects")
    inter = shapely.intersection(np.asarray(a.geometry.values)[ia], np.asarray(b.geometry.values)[ib])
    area = shapely.area(inter)
    pieces = pd.DataFrame({"code_2019": a["code"].to_numpy()[ia], "name_2019": a["name"].to_numpy()[ia],
                           "code_2025": b["code"].to_numpy()[ib], "name_2025": b["name"].to_numpy()[ib],
                           "overlap_km2": area / 1e6, "geometry": inter})
    pieces = pieces[pieces["overlap_km2"] > 0].reset_index(drop=True)
    pieces["w"] = pieces["overlap_km2"]
    fallback = 0
    if method == "population":
        if worldpop is None:
            raise InputError("method='population' needs worldpop (a WorldPop raster or its cells).")
        cells = worldpop if isinstance(worldpop, gpd.GeoDataFrame) else worldpop_cells(
            worldpop, bounds=tuple(wards_2019.to_crs(STORAGE_CRS).total_bounds))
        pg = gpd.GeoDataFrame(pieces[["code_2019", "code_2025"]].assign(
            key=pieces["code_2019"].astype(str) + "|" + pieces["code_2025"].astype(str)),
            geometry=gpd.GeoSeries(pieces["geometry"].to_numpy(), crs=METRIC_CRS))
        pts = _pieces(cells, pg, "key")
        people = pts.groupby("key")["population"].sum()
        pieces["w"] = pg["key"].map(people).fillna(0.0).to_numpy()
        tot = pieces.groupby("code_2019")["w"].transform("sum")
        nopop = tot <= 0
        fallback = int(pieces.loc[nopop, "code_2019"].nunique())
        pieces.loc[nopop, "w"] = pieces.loc[nopop, "overlap_km2"]
    share = pieces["w"] / pieces.groupby("code_2019")["w"].transform("sum")
    pieces = pieces[share >= min_share].copy()
    pieces["weight"] = pieces["w"] / pieces.groupby("code_2019")["w"].transform("sum")
    out = pieces.drop(columns="w").sort_values(["code_2019", "weight"], ascending=[True, False])
    out = gpd.GeoDataFrame(out.reset_index(drop=True), geometry="geometry", crs=METRIC_CRS).to_crs(STORAGE_CRS)
    covered = a["code"].isin(out["code_2019"]).sum()
    return stamp(out, analysis="planning.crosswalk", title="2019 -> 2025 ward crosswalk",
                 columns={"weight": ("fraction", f"share of the 2019 ward ({method}) in the 2025 ward"),
                          "overlap_km2": ("km2", "area of the 2019 ward inside the 2025 ward")},
                 assumptions=[f"Weights are {method}-weighted shares of each 2019 ward; they sum to 1 per 2019 ward.",
                              f"Pieces under {min_share:.1%} of a 2019 ward are slivers of the two boundary "
                              "sources' digitising: dropped and the rest renormalised."]
                 + (["Population weights use WorldPop people per piece; a 2019 ward without a populated "
                     "cell is split by area."] if method == "population" else []),
                 parameters={"method": method, "min_share": min_share},
                 method=method, n_wards_2019=len(a), n_wards_2019_mapped=int(covered),
                 n_wards_2025=len(b), area_fallback_wards=fallback)


def carry_over(values: pd.DataFrame, crosswalk: pd.DataFrame, columns=None, *,
               code_column: str = "code") -> pd.DataFrame:
    """Carry extensive statistics of 2019 wards to 2025 wards with a crosswalk.

    Each 2025 ward gets the sum over 2019 wards of ``weight * value``. Only extensive quantities
    (counts, areas, people) may be carried this way; recompute ratios afterwards.

    Parameters
    ----------
    values : DataFrame
        One row per 2019 ward: ``code_column`` and the value columns.
    crosswalk : DataFrame
        From :func:`ward_crosswalk`.
    columns : list of str, optional
        Columns to carry (default: every numeric column).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``code_2025``; ``attrs`` states the crosswalk's method.
    """
    require_columns(crosswalk, ["code_2019", "code_2025", "weight"], "The crosswalk")
    v = values.reset_index() if code_column not in values.columns else values
    require_columns(v, [code_column], "The values")
    cols = list(columns) if columns is not None else [
        c for c in v.columns if c != code_column and pd.api.types.is_numeric_dtype(v[c])]
    if not cols:
        raise InputError("No numeric column to carry over.")
    m = crosswalk[["code_2019", "code_2025", "weight"]].merge(
        v[[code_column, *cols]].rename(columns={code_column: "code_2019"}), on="code_2019", how="inner")
    for c in cols:
        m[c] = pd.to_numeric(m[c], errors="coerce").astype(float) * m["weight"]
    out = m.groupby("code_2025")[cols].sum()
    missing = sorted(set(v[code_column]) - set(crosswalk["code_2019"]))
    out.attrs = {"crosswalk_method": crosswalk.attrs.get("method"), "carried": cols,
                 "values_without_crosswalk": len(missing)}
    return out


def population_2025_from_2019(wards_2019, wards_2025, *, method: str = "area", worldpop=None,
                              min_share: float = 0.005):
    """2019 census population carried to the 2025 wards through the crosswalk.

    Returns
    -------
    geopandas.GeoDataFrame
        2025 wards: ``code``, ``name``, ``population_2019`` (persons, carried), ``area_km2``,
        ``density_2019_per_km2``, ``population`` (the 2025 layer's own figure, if any) and
        ``coverage`` (the 2025 ward's share of area covered by 2019 wards: 0 for the former
        Binh Duong and Ba Ria - Vung Tau). The carried total equals the 2019 total of the wards
        that have a crosswalk entry (``attrs["total_2019"]``, ``attrs["total_carried"]``).
    """
    import geopandas as gpd

    cw = ward_crosswalk(wards_2019, wards_2025, method=method, worldpop=worldpop, min_share=min_share)
    w19 = wards_2019.reset_index()
    vals = pd.DataFrame({"code": w19["code"],
                         "population_2019": pd.to_numeric(w19["population"], errors="coerce").astype(float)})
    carried = carry_over(vals, cw, ["population_2019"])
    w25 = wards_2025.reset_index()
    m25 = to_metric(w25)
    area = m25.geometry.area.to_numpy() / 1e6
    cover = cw.groupby("code_2025")["overlap_km2"].sum()
    out = pd.DataFrame({"code": w25["code"], "name": w25["name"]})
    out["population_2019"] = out["code"].map(carried["population_2019"]).astype(float)
    out["area_km2"] = area
    out["density_2019_per_km2"] = out["population_2019"] / area
    out["coverage"] = np.clip(out["code"].map(cover).fillna(0.0).to_numpy() / area, 0, 1)
    if "population" in w25:
        out["population"] = pd.array(pd.to_numeric(w25["population"], errors="coerce"), dtype="Float64")
    out = gpd.GeoDataFrame(out, geometry=w25.geometry.values, crs=w25.crs)
    total = float(vals["population_2019"].sum())
    mapped = float(vals.loc[vals["code"].isin(cw["code_2019"]), "population_2019"].sum())
    return stamp(out, analysis="planning.population-2025",
                 title=f"2019 census population carried to the 2025 wards ({method}-weighted)",
                 columns={"population_2019": ("persons", f"2019 census people carried ({method}-weighted)"),
                          "area_km2": ("km2", "area of the 2025 ward (UTM 48N)"),
                          "density_2019_per_km2": ("persons/km2", "population_2019 / area_km2"),
                          "coverage": ("fraction", "share of the 2025 ward covered by 2019 wards"),
                          "population": ("persons", "the 2025 layer's own population, if any")},
                 assumptions=cw.attrs["assumptions"]
                 + ["Only extensive quantities are carried; density is recomputed on the 2025 areas."],
                 parameters={"method": method, "min_share": min_share},
                 crosswalk_method=method, total_2019=total, total_carried=float(np.nansum(out["population_2019"])),
                 total_2019_mapped=mapped)


# --- the official list --------------------------------------------------------------------------
_PREFIX = re.compile(r"^(phuong|xa|thi tran|ward|commune|township|huyen|dac khu)\s+")


def fold(text: str) -> str:
    """Lower-case ASCII of a Vietnamese name (diacritics and đ removed), spaces collapsed."""
    t = unicodedata.normalize("NFD", str(text)).replace("đ", "d").replace("Đ", "D")
    t = "".join(ch for ch in t if unicodedata.category(ch) != "Mn").lower()
    return re.sub(r"\s+", " ", re.sub(r"[^a-z0-9 ]", " ", t)).strip()


def _unit_key(name: str) -> str:
    return _PREFIX.sub("", fold(name)).strip()


def _district_key(name: str) -> str:
    k = fold(name)
    k = re.sub(r"^(quan|huyen|thanh pho|thi xa|district|city)\s+", "", k).strip()
    return {"thu duc": "thu duc"}.get(k, k)


def official_crosswalk(csv_path: str | Path) -> pd.DataFrame:
    """Parse the official list of 2025 wards and the wards merged into each (by name).

    The file has one row per 2025 ward: province, new name, and a comma-separated list of former
    units (``"Phường 5, Phường 7, Phường 9 (Quận 5)"``: a district in brackets applies to the items
    before it back to the previous bracket; ``"Không sáp nhập"``: unchanged).

    Returns
    -------
    pandas.DataFrame
        ``name_2025``, ``old_name``, ``old_district`` (the bracketed context, or empty).
    """
    p = Path(csv_path)
    if not p.exists():
        raise NotFoundError(f"The crosswalk list {p} does not exist.")
    raw = pd.read_csv(p, dtype=str)
    if raw.shape[1] < 3:
        raise InputError(f"{p.name}: expected three columns (province, new ward, former units).")
    rows = []
    for new, olds in zip(raw.iloc[:, 1], raw.iloc[:, 2]):
        if not isinstance(new, str):
            continue
        olds = olds if isinstance(olds, str) else ""
        if fold(olds) in ("khong sap nhap", ""):
            rows.append((new.strip(), new.strip(), ""))
            continue
        items = [s.strip() for s in re.split(r",(?![^(]*\))", olds) if s.strip()]
        pending: list[str] = []
        for item in items:
            m = re.match(r"^(.*?)\s*\((.*)\)\s*$", item)
            if m:
                ctx = m.group(2).strip()
                for name in [*pending, m.group(1).strip()]:
                    rows.append((new.strip(), name, ctx))
                pending = []
            else:
                pending.append(item)
        rows.extend((new.strip(), name, "") for name in pending)
    return pd.DataFrame(rows, columns=["name_2025", "old_name", "old_district"])


def crosswalk_agreement(crosswalk: pd.DataFrame, official: pd.DataFrame, wards_2019, districts,
                        *, min_weight: float = 0.05) -> dict:
    """How far the geometric crosswalk agrees with the official list.

    Every (2025 ward, former unit) pair of the list whose former unit resolves to exactly one 2019
    ward (by folded name and district) is checked: does the crosswalk send at least ``min_weight``
    of that 2019 ward to that 2025 ward? Former units renamed or merged between 2019 and 2024 do not
    resolve and are counted apart.

    Returns
    -------
    dict
        ``pairs``, ``resolved``, ``agreeing``, ``agreement`` (agreeing / resolved) and a few
        ``disagreeing`` examples.
    """
    w = wards_2019.reset_index()
    d = districts.reset_index()
    dname = dict(zip(d["code"].astype(str), d["name"].map(_district_key)))
    w = w.assign(key=w["name"].map(_unit_key), dkey=w["parent_code"].astype(str).map(dname).fillna(""))
    by_name: dict[str, list[tuple[str, str]]] = {}
    for code, key, dk in zip(w["code"], w["key"], w["dkey"]):
        by_name.setdefault(key, []).append((str(code), dk))
    cw = crosswalk.assign(n25=crosswalk["name_2025"].map(_unit_key))
    have = {(str(a), b) for a, b, wt in zip(cw["code_2019"], cw["n25"], cw["weight"]) if wt >= min_weight}
    resolved = agreeing = 0
    bad = []
    for new, old, ctx in official.itertuples(index=False):
        cands = by_name.get(_unit_key(old), [])
        if ctx:
            ck = _district_key(ctx)
            if ck == "thu duc":  # Thủ Đức city (2021) = former districts 2, 9 and Thủ Đức
                cands = [c for c in cands if c[1] in ("2", "9", "thu duc")]
            else:
                cands = [c for c in cands if c[1] == ck]
        if len(cands) != 1:
            continue
        resolved += 1
        if (cands[0][0], _unit_key(new)) in have:
            agreeing += 1
        elif len(bad) < 10:
            bad.append(f"{old} ({ctx or '-'}) -> {new}")
    return {"pairs": len(official), "resolved": resolved, "agreeing": agreeing,
            "agreement": agreeing / resolved if resolved else float("nan"), "disagreeing": bad}
