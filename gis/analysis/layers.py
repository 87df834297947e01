"""Reading the platform's layers from PostGIS for analysis, with an optional area of interest.

The layers an analysis may read are listed in :data:`LAYERS` (by short name; the catalog ids of
the same relations are accepted too). An area of interest (``aoi``) is a bounding box
``"minlon,minlat,maxlon,maxlat"``, a WKT geometry in lon/lat, or ``"ward:CODE"`` /
``"district:CODE"`` (an administrative unit in the database).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from gis.analysis._common import STORAGE_CRS, EmptyInputError
from gis.db import connect
from gis.errors import InputError, NotFoundError


@dataclass(frozen=True)
class Layer:
    """A relation analyses read, with its key and the columns they use."""

    name: str
    schema: str
    relation: str
    key: str
    columns: tuple[str, ...]
    where: str = ""  # a fixed SQL condition (no user input)
    title: str = ""


#: Layers the analyses read. Personal data (schema ``private``) is not among them.
LAYERS: dict[str, Layer] = {l.name: l for l in [
    Layer("wards_2025", "admin", "wards_2025", "unit_id",
          ("code", "name", "name_en", "unit_type", "population", "population_year", "area_km2"),
          title="Wards and communes from 1 July 2025"),
    Layer("wards_2019", "admin", "wards_2019", "unit_id",
          ("code", "name", "parent_code", "unit_type", "population", "population_year"),
          title="Wards before 2025 (2019 census)"),
    Layer("districts", "admin", "districts", "unit_id",
          ("code", "name", "population", "population_year"), title="Districts before 2025"),
    Layer("parcels", "cadastral", "parcels_current", "parcel_id",
          ("commune_code", "sheet_no", "parcel_no", "land_use", "legal_area_m2", "owner_type"),
          title="Cadastral parcels in force"),
    Layer("lots", "planning", "lots_published", "lot_id",
          ("plan_name", "lot_code", "use_class", "use_code", "use_name", "max_storeys",
           "max_height_m", "max_far", "max_coverage", "max_density_pph", "area_m2"),
          title="Zoning plan lots"),
    Layer("buildings", "city", "buildings", "building_id",
          ("source", "source_id", "name", "use", "height_m", "storeys"), title="Buildings"),
    Layer("roads", "city", "roads", "road_id",
          ("source", "source_id", "name", "road_class", "lanes", "width_m", "oneway", "maxspeed_kmh"),
          title="Roads"),
    Layer("poi", "city", "poi", "poi_id",
          ("source", "source_id", "name", "category", "subtype", "capacity"), title="Points of interest"),
    Layer("hospitals", "city", "poi", "poi_id",
          ("source", "source_id", "name", "category", "subtype", "capacity"),
          where="category IN ('hospital', 'clinic')", title="Hospitals and clinics"),
]}
#: Catalog ids (gis_meta.collections) of the same relations.
ALIASES = {"wards-2025": "wards_2025", "wards-2019": "wards_2019", "districts-2019": "districts",
           "planning-lots": "lots", "clinics": "hospitals", "health": "hospitals"}
ZONE_LAYERS = ("wards_2025", "wards_2019", "districts")


def get_layer(name: str) -> Layer:
    """The layer called ``name`` (or its catalog id); :class:`NotFoundError` listing them otherwise."""
    key = ALIASES.get(name, name)
    try:
        return LAYERS[key]
    except KeyError:
        raise NotFoundError(f"Unknown layer {name!r}: the analyses read {', '.join(LAYERS)}.") from None


_BBOX = re.compile(r"^\s*(-?\d+(\.\d+)?)\s*,\s*(-?\d+(\.\d+)?)\s*,\s*(-?\d+(\.\d+)?)\s*,\s*(-?\d+(\.\d+)?)\s*$")


def aoi_geometry(dsn: str | None, aoi):
    """The area of interest as a shapely geometry in lon/lat (None for no AOI).

    Raises
    ------
    InputError
        An unreadable AOI, or a box outside lon/lat ranges.
    EmptyInputError
        An empty geometry, or an administrative unit that does not exist.
    """
    import shapely

    if aoi is None or (isinstance(aoi, str) and not aoi.strip()):
        return None
    if isinstance(aoi, shapely.Geometry):
        geom = aoi
    elif isinstance(aoi, (tuple, list)) and len(aoi) == 4:
        geom = _box(*map(float, aoi))
    elif isinstance(aoi, str) and _BBOX.match(aoi):
        geom = _box(*(float(x) for x in aoi.split(",")))
    elif isinstance(aoi, str) and re.match(r"^(ward|ward2019|district):", aoi.strip()):
        kind, code = aoi.strip().split(":", 1)
        if dsn is None:
            raise InputError(f"aoi {aoi!r} names an administrative unit: a database is needed.")
        view = {"ward": "wards_2025", "ward2019": "wards_2019", "district": "districts"}[kind]
        with connect(dsn) as conn:
            row = conn.execute(f"SELECT ST_AsBinary(ST_Union(geom)) FROM admin.{view} "
                               "WHERE code = %s", (code.strip(),)).fetchone()
        if row is None or row[0] is None:
            raise EmptyInputError(f"The area of interest {aoi!r}: there is no {view} unit with code "
                                  f"{code.strip()!r}.")
        geom = shapely.from_wkb(bytes(row[0]))
    elif isinstance(aoi, str):
        try:
            geom = shapely.from_wkt(aoi)
        except shapely.errors.GEOSException:
            raise InputError(f"aoi {aoi[:60]!r} is neither a bounding box 'minlon,minlat,maxlon,maxlat', "
                             "a WKT geometry nor 'ward:CODE' / 'district:CODE'.") from None
    else:
        raise InputError(f"aoi must be a bounding box, WKT or 'ward:CODE'; got {type(aoi).__name__}.")
    if geom is None or geom.is_empty or (geom.area == 0 and geom.geom_type.endswith("Polygon")):
        raise EmptyInputError("The area of interest is empty.")
    minx, miny, maxx, maxy = geom.bounds
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        raise InputError("The area of interest is not in lon/lat (EPSG:4326) degrees.")
    return geom


def _box(minx: float, miny: float, maxx: float, maxy: float):
    import shapely

    if not (minx < maxx and miny < maxy):
        raise EmptyInputError(f"The area of interest box {minx},{miny},{maxx},{maxy} is empty "
                              "(give minlon,minlat,maxlon,maxlat with min < max).")
    return shapely.box(minx, miny, maxx, maxy)


def load_layer(dsn: str, name: str, *, aoi=None, columns: tuple[str, ...] | None = None,
               allow_empty: bool = False):
    """Read a layer into a GeoDataFrame (EPSG:4326), index = the layer's key.

    Parameters
    ----------
    dsn : str
        Database connection string.
    name : str
        A name of :data:`LAYERS` (or its catalog id).
    aoi : optional
        Area of interest (see the module docstring): only features that intersect it are read.
    columns : tuple of str, optional
        Columns to read (default: the layer's analysis columns).
    allow_empty : bool
        Return an empty frame instead of raising when nothing is found.

    Raises
    ------
    NotFoundError
        Unknown layer.
    EmptyInputError
        No feature (in the area of interest), unless ``allow_empty``.

    Examples
    --------
    >>> wards = load_layer(dsn, "wards_2025", aoi="106.68,10.76,106.72,10.80")  # doctest: +SKIP
    """
    import geopandas as gpd
    import pandas as pd
    import shapely
    from psycopg import sql

    layer = get_layer(name)
    cols = tuple(columns) if columns is not None else layer.columns
    unknown = [c for c in cols if c not in layer.columns]
    if unknown:
        raise InputError(f"Layer {layer.name} has no column(s) {', '.join(unknown)}.")
    geom = aoi_geometry(dsn, aoi)
    conds = [sql.SQL(layer.where)] if layer.where else []
    params: list = []
    if geom is not None:
        conds.append(sql.SQL("ST_Intersects(geom, ST_GeomFromWKB(%s, 4326))"))
        params.append(shapely.to_wkb(geom))
    query = sql.SQL("SELECT {key}, {cols}, ST_AsBinary(geom) FROM {rel}{where} ORDER BY {key}").format(
        key=sql.Identifier(layer.key),
        cols=sql.SQL(", ").join(sql.Identifier(c) for c in cols) if cols else sql.SQL("NULL"),
        rel=sql.Identifier(layer.schema, layer.relation),
        where=(sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conds)) if conds else sql.SQL(""),
    )
    with connect(dsn) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (f"{layer.schema}.{layer.relation}",)).fetchone()[0]
        if exists is None:
            raise NotFoundError(f"Layer {layer.name} ({layer.schema}.{layer.relation}) is missing from "
                                "the database: run `gis db migrate`.")
        rows = conn.execute(query, params).fetchall()
    if not rows and not allow_empty:
        where = " in the area of interest" if geom is not None else ""
        raise EmptyInputError(f"Layer {layer.name} has no features{where}.",)
    names = [layer.key, *cols] if cols else [layer.key, "_"]
    frame = pd.DataFrame([r[:-1] for r in rows], columns=names)
    if not cols:
        frame = frame.drop(columns="_")
    wkb = [bytes(r[-1]) for r in rows]
    geoms = shapely.from_wkb(np.array(wkb, dtype=object)) if wkb else np.array([], dtype=object)
    gdf = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=STORAGE_CRS)).set_index(layer.key)
    for c in ("population", "population_year", "max_storeys", "storeys", "lanes", "capacity",
              "sheet_no", "parcel_no"):
        if c in gdf:
            gdf[c] = pd.array(gdf[c], dtype="Int64")
    for c in ("legal_area_m2", "area_km2", "max_height_m", "max_far", "max_coverage",
              "max_density_pph", "area_m2", "height_m", "width_m", "maxspeed_kmh"):
        if c in gdf:
            gdf[c] = pd.to_numeric(gdf[c], errors="coerce").astype(float)
    gdf.attrs = {"layer": layer.name, "relation": f"{layer.schema}.{layer.relation}",
                 "aoi": None if geom is None else geom.wkt[:200]}
    return gdf


def load_facilities(dsn: str, categories: str | tuple[str, ...] = ("hospital", "clinic"), *, aoi=None):
    """Points of interest of the given categories (``city.poi``), e.g. hospitals and clinics.

    Raises :class:`EmptyInputError` ("the facility set has no points") when none exists.
    """
    cats = (categories,) if isinstance(categories, str) else tuple(categories)
    poi = load_layer(dsn, "poi", aoi=aoi, allow_empty=True)
    out = poi[poi["category"].isin(cats)]
    if len(out) == 0:
        raise EmptyInputError(f"The facility set has no points: no point of interest of category "
                              f"{', '.join(cats)}" + (" in the area of interest" if aoi else "") + ".")
    return out
