"""Runners of the registered analyses: read the layers from PostGIS, call the library functions.

Each runner takes the database DSN and the validated parameters of its
:class:`~gis.analysis.registry.Analysis`, reports progress as ``progress(done, total)`` and
returns the (Geo)DataFrame of the library function, metadata in ``attrs``.
"""

from __future__ import annotations

import numpy as np

from gis.analysis import health as _health
from gis.analysis import logistics as _logistics
from gis.analysis import planning as _planning
from gis.analysis import population as _population
from gis.analysis._common import Steps
from gis.analysis.layers import load_facilities, load_layer


def _zones(dsn: str, zones: str, aoi):
    return load_layer(dsn, zones, aoi=aoi)


def _graph(dsn: str, directed: bool, aoi):
    from gis.analysis.network import build_graph

    roads = load_layer(dsn, "roads", aoi=_grow(aoi, dsn))
    return build_graph(roads, directed=directed)


def _grow(aoi, dsn):
    """The AOI widened by about 2 km, so that routes may leave it a little."""
    from gis.analysis.layers import aoi_geometry

    g = aoi_geometry(dsn, aoi)
    return None if g is None else g.buffer(0.02)


def _points(worldpop, zones_gdf, client=None):
    cells = _population.worldpop_cells(worldpop, bounds=tuple(zones_gdf.total_bounds))
    return _population.population_points(cells, zones_gdf, client=client)


# --- planning -----------------------------------------------------------------------------------
def land_use(dsn, *, source, zones, by, aoi, progress=None, client=None):
    steps = Steps(progress, 2)
    z = _zones(dsn, zones, aoi)
    feats = load_layer(dsn, source, aoi=aoi)
    steps.next()
    col = "land_use" if source == "parcels" else "use_code"
    if source == "lots" and feats["use_code"].isna().all():
        col = "use_class"
    out = _planning.land_use_by_zone(feats, z, use_column=col, by=by, client=client, source=source)
    steps.next()
    return out


def compliance(dsn, *, check, storey_height_m, zero_is_unset, aoi, progress=None, client=None):
    steps = Steps(progress, 2)
    lots = load_layer(dsn, "lots", aoi=aoi)
    b = load_layer(dsn, "buildings", aoi=aoi, allow_empty=True) if check in ("buildings", "both") else None
    p = load_layer(dsn, "parcels", aoi=aoi, allow_empty=True) if check in ("parcels", "both") else None
    steps.next()
    out = _planning.plan_compliance(lots, b, p, storey_height_m=storey_height_m, zero_is_unset=zero_is_unset)
    steps.next()
    return out


def built_density(dsn, *, zones, storey_height_m, aoi, progress=None, client=None):
    steps = Steps(progress, 2)
    z = load_layer(dsn, zones, aoi=aoi)
    key = "code"
    if zones == "lots":
        z = z.reset_index()
        key = "lot_id"
    b = load_layer(dsn, "buildings", aoi=aoi, allow_empty=True)
    steps.next()
    out = _planning.built_density(b, z, zone_key=key, storey_height_m=storey_height_m)
    steps.next()
    return out


def capacity(dsn, *, level, zones, storey_height_m, aoi, progress=None, client=None):
    steps = Steps(progress, 2)
    lots = load_layer(dsn, "lots", aoi=aoi)
    b = load_layer(dsn, "buildings", aoi=aoi, allow_empty=True)
    steps.next()
    cap = _planning.lot_capacity(lots, b, storey_height_m=storey_height_m)
    if level == "zone":
        cap = _planning.capacity_by_zone(cap, _zones(dsn, zones, aoi))
    steps.next()
    return cap


def population(dsn, *, zones, worldpop, aoi, progress=None, client=None):
    steps = Steps(progress, 1)
    out = _population.ward_population(_zones(dsn, zones, aoi), worldpop=worldpop)
    steps.next()
    return out


def crosswalk(dsn, *, method, worldpop, min_share, progress=None, client=None):
    steps = Steps(progress, 1)
    out = _population.ward_crosswalk(load_layer(dsn, "wards_2019"), load_layer(dsn, "wards_2025"),
                                     method=method, worldpop=worldpop, min_share=min_share)
    steps.next()
    return out


def population_2025(dsn, *, method, worldpop, min_share, progress=None, client=None):
    steps = Steps(progress, 1)
    out = _population.population_2025_from_2019(load_layer(dsn, "wards_2019"), load_layer(dsn, "wards_2025"),
                                                method=method, worldpop=worldpop, min_share=min_share)
    steps.next()
    return out


# --- health -------------------------------------------------------------------------------------
def nearest(dsn, *, origins, worldpop, zones, categories, directed, max_snap_m, aoi, progress=None,
            client=None):
    from gis.errors import InputError

    steps = Steps(progress, 3)
    fac = load_facilities(dsn, tuple(categories), aoi=_grow(aoi, dsn))
    if origins == "cells":
        if not worldpop:
            raise InputError("origins=cells needs worldpop (a WorldPop raster).")
        pts = _points(worldpop, _zones(dsn, zones, aoi), client)
    else:
        parcels = load_layer(dsn, "parcels", aoi=aoi)
        pts = parcels[parcels["land_use"].isin(["ODT", "ONT"])]
        if len(pts) == 0:
            from gis.analysis._common import EmptyInputError

            raise EmptyInputError("No residential parcel (land use ODT or ONT) in the area of interest.")
    steps.next()
    g = _graph(dsn, directed, aoi)
    steps.next()
    out = _health.nearest_facility(pts, fac, graph=g, max_snap_m=max_snap_m)
    steps.next()
    return out


def _health_inputs(dsn, worldpop, zones, categories, directed, aoi, progress, client):
    """What the population-based health analyses start from, in three progress steps of which two
    are done here: the zones, the facilities (found a little beyond the area), the population points
    and the road graph."""
    steps = Steps(progress, 3)
    z = _zones(dsn, zones, aoi)
    fac = load_facilities(dsn, tuple(categories), aoi=_grow(aoi, dsn))
    pts = _points(worldpop, z, client)
    steps.next()
    g = _graph(dsn, directed, aoi)
    steps.next()
    return steps, z, fac, pts, g


def access(dsn, *, worldpop, zones, categories, distances_km, minutes, directed, max_snap_m, aoi,
           progress=None, client=None):
    steps, z, fac, pts, g = _health_inputs(dsn, worldpop, zones, categories, directed, aoi, progress, client)
    out = _health.population_access(pts, fac, graph=g, zones=z, distances_km=distances_km, minutes=minutes,
                                    max_snap_m=max_snap_m)
    steps.next()
    return out


def two_sfca(dsn, *, worldpop, zones, categories, catchment_min, decay, default_capacity, per, directed,
             max_snap_m, aoi, progress=None, client=None):
    steps, z, fac, pts, g = _health_inputs(dsn, worldpop, zones, categories, directed, aoi, progress, client)
    out = _health.two_step_fca(pts, fac, graph=g, catchment_min=catchment_min, decay=decay,
                               default_capacity=default_capacity, per=per, max_snap_m=max_snap_m,
                               client=client, progress=steps.sub)
    steps.next()
    return out


def underserved(dsn, *, worldpop, zones, categories, catchment_min, ratio, directed, max_snap_m, aoi,
                progress=None, client=None):
    steps, z, fac, pts, g = _health_inputs(dsn, worldpop, zones, categories, directed, aoi, progress, client)
    acc = _health.two_step_fca(pts, fac, graph=g, catchment_min=catchment_min, max_snap_m=max_snap_m,
                               client=client, progress=steps.sub)
    out = _health.underserved_wards(acc, z, ratio=ratio)
    steps.next()
    return out


# --- logistics ----------------------------------------------------------------------------------
def od_matrix(dsn, *, zones, directed, max_snap_m, aoi, progress=None, client=None):
    steps = Steps(progress, 2)
    z = _zones(dsn, zones, aoi)
    g = _graph(dsn, directed, aoi)
    steps.next()
    out = _logistics.od_travel_times(z, g, max_snap_m=max_snap_m, client=client, progress=steps.sub)
    steps.next()
    return out


def service_areas(dsn, *, categories, minutes, buffer_m, per_facility, worldpop, directed, max_snap_m, aoi,
                  progress=None, client=None):
    steps = Steps(progress, 2)
    fac = load_facilities(dsn, tuple(categories), aoi=aoi)
    g = _graph(dsn, directed, aoi)
    pop = None
    if worldpop:
        cells = _population.worldpop_cells(worldpop, bounds=tuple(g.edges_frame().total_bounds))
        pop = _population.population_points(cells)
    steps.next()
    out = _logistics.service_areas(fac, g, minutes=minutes, buffer_m=buffer_m, per_facility=per_facility,
                                   population=pop, max_snap_m=max_snap_m)
    steps.next()
    return out


def od_flows(dsn, *, flows, zones, level, progress=None, client=None):
    steps = Steps(progress, 1)
    out = _logistics.od_flows(flows, load_layer(dsn, zones), level=level)
    steps.next()
    return out


def p_median(dsn, *, k, worldpop, zones, candidates, candidate_categories, existing, categories, method,
             coverage_min, directed, max_snap_m, aoi, progress=None, client=None):
    from gis.analysis._common import EmptyInputError

    steps = Steps(progress, 3)
    z = _zones(dsn, zones, aoi)
    pts = _points(worldpop, z, client)
    if candidates == "zone-centroids":
        cand = _logistics.zone_centroids(z)
        cand.index = cand["code"]
    else:
        cand = load_facilities(dsn, tuple(candidate_categories), aoi=aoi)
    ex = None
    if existing:
        try:
            ex = load_facilities(dsn, tuple(categories), aoi=_grow(aoi, dsn))
        except EmptyInputError:
            ex = None
    steps.next()
    g = _graph(dsn, directed, aoi)
    steps.next()
    out = _logistics.p_median(pts, cand, g, k, existing=ex, method=method, coverage_min=coverage_min,
                              max_snap_m=max_snap_m, client=client, progress=steps.sub)
    steps.next()
    return out


# --- raster -------------------------------------------------------------------------------------
def zonal_statistics(dsn, *, raster, zones, bands, percentiles, aoi, progress=None, client=None):
    """:func:`gis.raster.zonal.compute_zonal` of ``raster`` over a zone layer, with the zones' keys,
    attributes and geometry. One worker process: a job runs in a thread of the API server, which must
    not fork."""
    from gis.raster.zonal import compute_zonal

    steps = Steps(progress, 2)
    z = _zones(dsn, zones, aoi)
    steps.next()
    stats = compute_zonal(raster, z, bands=list(bands), percentiles=tuple(percentiles), workers=1)
    out = _with_zones(z, stats)
    out.attrs["summary"] = {"zones": int(len(z)), "bands": list(bands), "sum_of_sums": float(stats["sum"].sum())}
    steps.next()
    return out


def _with_zones(z, stats):
    """The zonal ``stats`` rows (column ``zone``: position in ``z``) with the zones' keys, attributes
    and geometry."""
    import geopandas as gpd
    import pandas as pd

    keys = z.reset_index()
    rows = keys.iloc[stats["zone"].to_numpy()].reset_index(drop=True)
    geom = rows.geometry.name
    return gpd.GeoDataFrame(pd.concat([rows.drop(columns=geom), stats.drop(columns="zone")], axis=1),
                            geometry=rows[geom].values, crs=z.crs)


def indices(dsn, *, raster, indices, zones, percentiles, aoi, progress=None, client=None):
    """Spectral indices of a multispectral scene (:mod:`gis.raster.indices`) summarised per zone:
    one row per zone and index (``band_name``), coverage-weighted."""
    import tempfile
    from pathlib import Path

    from gis.raster.indices import open_raster, spectral_indices, write_dataset
    from gis.raster.zonal import compute_zonal

    steps = Steps(progress, 3)
    z = _zones(dsn, zones, aoi)
    ds = spectral_indices(open_raster(raster, 1024), indices=tuple(indices))
    with tempfile.TemporaryDirectory(prefix="gis-indices-") as tmp:
        path = write_dataset(ds, Path(tmp) / "indices.tif")
        steps.next()
        stats = compute_zonal(path, z, bands=list(range(1, len(ds.data_vars) + 1)),
                              percentiles=tuple(percentiles), workers=1)
    steps.next()
    out = _with_zones(z, stats)
    out = out.rename(columns={"band_name": "index"})
    out.attrs["summary"] = {"zones": int(len(z)), "indices": list(ds.data_vars)}
    steps.next()
    return out


def change(dsn, *, earlier, later, method, band, zones, aoi, progress=None, client=None):
    """Change between two rasters of one grid, summed per zone: the new built-up area (m2) between
    two multispectral scenes, or the change of one band (e.g. people, WorldPop 2020 - 2000)."""
    import math
    import tempfile
    from pathlib import Path

    from gis.raster import change as ch
    from gis.raster.zonal import compute_zonal, open_grid

    steps = Steps(progress, 3)
    z = _zones(dsn, zones, aoi)
    da = ch.built_up_change(earlier, later) if method == "built-up" else ch.difference(earlier, later, band=band)
    with tempfile.TemporaryDirectory(prefix="gis-change-") as tmp:
        path = ch.write_change(da, Path(tmp) / "change.tif")
        steps.next()
        built = method == "built-up"
        stats = compute_zonal(path, z, bands=[ch.built_up_area_band()] if built else [1], percentiles=(),
                              workers=1)
        grid = open_grid(path)
    steps.next()
    out = _with_zones(z, stats)
    if built:
        from pyproj import CRS

        crs = CRS.from_wkt(grid.crs_wkt)
        cell = abs(grid.transform[0] * grid.transform[4])
        if crs.is_geographic:  # degrees: the cell's area at each zone's latitude
            lat = np.radians(out.geometry.representative_point().y.to_numpy())
            m2 = cell * 111_320.0 * 110_574.0 * np.cos(lat)  # m per degree of longitude at the equator, of latitude
        else:
            m2 = np.full(len(out), cell * ch._unit_m(crs) ** 2)
        out["new_built_up_m2"] = out["sum"].to_numpy() * m2
        out["new_built_up_share"] = [v / a if a else math.nan for v, a in
                                     zip(out["new_built_up_m2"], out.to_crs(6933).area, strict=True)]
    else:
        out = out.rename(columns={"sum": "change", "mean": "mean_change_per_cell"})
    out.attrs["summary"] = ({"new_built_up_m2": float(out["new_built_up_m2"].sum())} if built
                            else {"change": float(out["change"].sum())})
    steps.next()
    return out


# --- checks before a job is queued ----------------------------------------------------------------
#: analyses that need at least one facility (``categories``), and whether they look for them in
#: the area of interest itself (True) or in it widened by about 2 km (False), as their runners do
_NEED_FACILITIES = {"health.nearest": False, "health.access": False, "health.2sfca": False,
                    "health.underserved": False, "logistics.service-areas": True}


def precheck(analysis_id: str, dsn: str, values: dict) -> None:
    """Check the inputs of an analysis against the database, cheaply, before it is run or queued.

    What would otherwise only fail once a job runs (an area of interest that names no unit or
    is empty, a facility set with no points) fails here, with the input named, so that the API
    answers 400 at once instead of queuing a job bound to fail.

    Parameters
    ----------
    analysis_id : str
        Registry id, e.g. ``health.access``.
    dsn : str
    values : dict
        Parameters already checked by :meth:`~gis.analysis.registry.Analysis.validate`.

    Raises
    ------
    InputError
        Naming the input (``aoi``, ``categories``).
    """
    from gis.analysis._common import EmptyInputError
    from gis.analysis.layers import aoi_geometry
    from gis.errors import InputError

    aoi = values.get("aoi")
    if aoi:
        try:
            aoi_geometry(dsn, aoi)
        except InputError as exc:
            raise type(exc)(f"Input aoi: {exc.message}") from None
    if analysis_id in _NEED_FACILITIES and values.get("categories"):
        area = aoi if _NEED_FACILITIES[analysis_id] else _grow(aoi, dsn)
        try:
            load_facilities(dsn, tuple(values["categories"]), aoi=area)
        except EmptyInputError as exc:
            raise EmptyInputError(f"Input categories: {exc.message}") from None
