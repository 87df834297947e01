"""Vector tiles: ONE SQL statement per tile, built with ``ST_AsMVT`` from the catalog's layers.

Each layer of a tile is ``ST_AsMVT`` over ``ST_AsMVTGeom`` of the features whose geometry's bounding
box meets the tile (GiST index), generalised for the zoom as the catalog declares
(:class:`tiles.layers.VectorLayer`): features smaller than ``min_px`` screen pixels on both axes are
left out, lines and polygons are simplified by ``simplify_px`` pixels, and only the fields declared
for that zoom are carried. Several layers are concatenated in the same statement (an MVT is a
sequence of layers). The statement also returns the transaction snapshot it read, which the tile
cache keeps to tell later whether a change happened after the tile was made.

Identifiers are composed with :mod:`psycopg.sql`; every value is a bind parameter.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from psycopg import sql
from pyproj import CRS, Transformer

from tiles import tms as gtms
from tiles.layers import VectorLayer

#: MVT coordinate extent of a tile, and the buffer around it (in the same units)
EXTENT = 4096
BUFFER = 64
#: the screen size of a tile the pixel-based settings refer to
TILE_PX = 256

_TEXT_TYPES = {"date", "timestamptz", "timestamp", "time", "timetz", "interval"}
_FLOAT_TYPES = {"numeric"}


@dataclass(frozen=True)
class TilePlan:
    """The statement that renders one tile, and what it depends on."""

    build: Callable[[], sql.Composed]
    params: dict
    layers: tuple[VectorLayer, ...]
    #: what the statement's text depends on (all values are parameters): a key to keep its text
    shape: tuple = ()

    @property
    def query(self) -> sql.Composed:
        """The statement (composed on each call: keep its text by :attr:`shape`)."""
        return self.build()


@lru_cache(maxsize=64)
def _transformer(src: int, dst: int) -> Transformer:
    return Transformer.from_crs(CRS.from_epsg(src), CRS.from_epsg(dst), always_xy=True)


def storage_bounds(t: gtms.TileAddress, storage_srid: int, margin: float
                   ) -> tuple[float, float, float, float]:
    """The tile's bounds (widened by ``margin`` of a tile) in the storage CRS of a layer."""
    if storage_srid == 4326:
        return gtms.lonlat_bounds(t, margin)
    x0, y0, x1, y1 = gtms.xy_bounds(t)
    dx, dy = (x1 - x0) * margin, (y1 - y0) * margin
    tile_srid = gtms.srid(t.tms_id)
    if tile_srid == storage_srid:
        return (x0 - dx, y0 - dy, x1 + dx, y1 + dy)
    return _transformer(tile_srid, storage_srid).transform_bounds(
        x0 - dx, y0 - dy, x1 + dx, y1 + dy, densify_pts=5)


def _intersects(a, b) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def _column(layer: VectorLayer, name: str) -> sql.Composable:
    pg_type = layer.collection.field(name).pg_type
    col = sql.SQL("t.{}").format(sql.Identifier(name))
    if pg_type in ("timestamptz", "timestamp"):  # ISO 8601 (the session is in UTC); to_json costs 10x more
        return sql.SQL("replace({c}::text, ' ', 'T') AS {n}").format(c=col, n=sql.Identifier(name))
    if pg_type in _TEXT_TYPES:
        return sql.SQL("{c}::text AS {n}").format(c=col, n=sql.Identifier(name))
    if pg_type in _FLOAT_TYPES:
        return sql.SQL("{c}::float8 AS {n}").format(c=col, n=sql.Identifier(name))
    if pg_type not in ("text", "varchar", "bpchar", "int2", "int4", "int8", "float4", "float8", "bool"):
        return sql.SQL("{c}::text AS {n}").format(c=col, n=sql.Identifier(name))
    return col


#: largest error (MVT units) of the tile-local linear projection used for the fast path
LINEAR_MAX_ERROR = 0.125


_R = 6378137.0
_E = 0.0818191908426215  # WGS 84 first eccentricity


def _project_y(lat: float, tile_srid: int) -> float:
    """Northing of latitude ``lat`` in a Mercator-like tile CRS (4326: the latitude itself)."""
    if tile_srid == 4326:
        return lat
    phi = math.radians(lat)
    t = math.tan(math.pi / 4 + phi / 2)
    if tile_srid == 3395:  # ellipsoidal Mercator
        es = _E * math.sin(phi)
        t *= ((1 - es) / (1 + es)) ** (_E / 2)
    return _R * math.log(t)


def linear_projection(t: gtms.TileAddress, storage_srid: int
                      ) -> tuple[float, float, float, float] | None:
    """A linear map from storage coordinates to MVT units of tile ``t``, when one is exact enough.

    Mercator-like tile matrix sets project longitude and latitude separately (x from longitude,
    linear; y from latitude), and a map tile spans so little latitude at street zooms that y is a
    straight line in latitude to within a fraction of an MVT unit. Returns ``(ax, xoff, ey, yoff)``
    with ``X = ax*lon + xoff`` and ``Y = ey*lat + yoff`` (Y pointing down), or None when the error
    over the tile and its buffer would exceed :data:`LINEAR_MAX_ERROR` (then ST_Transform is used).
    The line is the chord of y(lat) shifted by half its largest deviation (the minimax line of a
    convex function).
    """
    tile_srid = gtms.srid(t.tms_id)
    if storage_srid != 4326 or tile_srid not in (3857, 3395, 4326):
        return None
    x0, y0, x1, y1 = gtms.xy_bounds(t)
    sx, sy = EXTENT / (x1 - x0), EXTENT / (y1 - y0)
    _, lat0, _, lat1 = storage_bounds(t, 4326, BUFFER / EXTENT)
    if tile_srid == 4326:
        ax = sx
    else:
        ax = sx * _R * math.pi / 180
    xoff = -x0 * sx if tile_srid == 4326 else -x0 * sx
    Y0, Y1 = (y1 - _project_y(lat0, tile_srid)) * sy, (y1 - _project_y(lat1, tile_srid)) * sy
    if lat1 <= lat0:
        return None
    ey = (Y1 - Y0) / (lat1 - lat0)
    devs = []
    for k in range(17):
        lat = lat0 + (lat1 - lat0) * k / 16
        devs.append((y1 - _project_y(lat, tile_srid)) * sy - (Y0 + ey * (lat - lat0)))
    hi, lo = max(devs), min(devs)
    err = (hi - lo) / 2
    if not math.isfinite(err) or err > LINEAR_MAX_ERROR:
        return None
    yoff = Y0 - ey * lat0 + (hi + lo) / 2
    return ax, xoff, ey, yoff


def _layer_sql(layer: VectorLayer, t: gtms.TileAddress, i: int, compose: bool = True
               ) -> tuple[sql.Composable | None, dict]:
    """The statement part of one layer (None unless ``compose``) and its parameters."""
    c = layer.collection
    tile_srid = gtms.srid(t.tms_id)
    x0, y0, x1, y1 = gtms.xy_bounds(t)
    margin = BUFFER / EXTENT
    sb = storage_bounds(t, c.srid, margin)
    p = f"l{i}_"
    P = lambda name: sql.Placeholder(p + name)  # noqa: E731
    params = {
        p + "x0": x0, p + "y0": y0, p + "x1": x1, p + "y1": y1,
        p + "sx0": sb[0], p + "sy0": sb[1], p + "sx1": sb[2], p + "sy1": sb[3],
    }
    # one screen pixel in storage units (of the unwidened tile)
    ub = storage_bounds(t, c.srid, 0.0)
    px_w, px_h = (ub[2] - ub[0]) / TILE_PX, (ub[3] - ub[1]) / TILE_PX
    kind = layer.geometry_kind
    min_area = layer.min_px > 0 and kind == "polygon"
    min_side = layer.min_px > 0 and kind == "line"
    simplify = layer.simplify_px > 0 and kind != "point"
    if min_area:  # bounding box under min_px^2 square pixels
        params[p + "ma"] = px_w * px_h * layer.min_px ** 2
    elif min_side:  # shorter than min_px on both axes
        params[p + "mw"], params[p + "mh"] = px_w * layer.min_px, px_h * layer.min_px
    if simplify:
        params[p + "tol"] = min(px_w, px_h) * layer.simplify_px
    lin = linear_projection(t, c.srid)
    if lin is not None:
        params[p + "ax"], params[p + "xo"], params[p + "ey"], params[p + "yo"] = lin
    if not compose:
        return None, params

    geom = sql.SQL("t.{}").format(sql.Identifier(c.geometry_column))
    box = sql.SQL("ST_MakeEnvelope({a}, {b}, {c}, {d}, {srid})").format(
        a=P("sx0"), b=P("sy0"), c=P("sx1"), d=P("sy1"), srid=sql.Literal(c.srid))
    where = [sql.SQL("{g} && {box}").format(g=geom, box=box)]
    if min_area:
        where.append(sql.SQL("gis_meta.bbox_area({g}) >= {ma}").format(g=geom, ma=P("ma")))
    elif min_side:
        where.append(sql.SQL("(gis_meta.bbox_width({g}) >= {mw} OR gis_meta.bbox_height({g}) >= {mh})")
                     .format(g=geom, mw=P("mw"), mh=P("mh")))
    shaped = geom
    if simplify:
        shaped = sql.SQL("ST_Simplify({g}, {tol}, true)").format(g=geom, tol=P("tol"))
    projected = shaped
    if c.srid != tile_srid:
        projected = sql.SQL("ST_Transform({g}, {srid})").format(g=shaped, srid=sql.Literal(tile_srid))
    mvtgeom = sql.SQL(
        "ST_AsMVTGeom({g}, ST_MakeEnvelope({x0}, {y0}, {x1}, {y1}, {srid}), {ext}, {buf}, true)"
    ).format(g=projected, x0=P("x0"), y0=P("y0"), x1=P("x1"), y1=P("y1"), srid=sql.Literal(tile_srid),
             ext=sql.Literal(EXTENT), buf=sql.Literal(BUFFER))
    if lin is not None:
        # Fast path for features wholly inside the tile and its buffer: nothing to clip, so the
        # projection is the tile-local linear map and quantisation a snap to the MVT grid (no PROJ,
        # no GEOS). Rings are put in MVT order (exterior clockwise on screen, Y down). Features
        # crossing the buffer's edge take ST_AsMVTGeom.
        fast = sql.SQL("ST_SnapToGrid(ST_Affine({g}, {ax}, 0, 0, {ey}, {xo}, {yo}), 1)").format(
            g=shaped, ax=P("ax"), ey=P("ey"), xo=P("xo"), yo=P("yo"))
        if kind == "polygon":
            fast = sql.SQL("ST_ForcePolygonCCW({})").format(fast)
        mvtgeom = sql.SQL("CASE WHEN {g} @ {box} THEN {fast} ELSE {slow} END").format(
            g=geom, box=box, fast=fast, slow=mvtgeom)
    int_id = c.id_type in ("int2", "int4", "int8")
    cols = [sql.SQL("{} AS __geom").format(mvtgeom)]
    if int_id:  # the MVT feature id (clients read it as the feature's id)
        cols.append(sql.SQL("t.{} AS __fid").format(sql.Identifier(c.id_column)))
    else:  # text ids cannot be MVT ids: a property instead
        cols.append(sql.SQL("t.{}").format(sql.Identifier(c.id_column)))
    cols += [_column(layer, name) for name in layer.fields_at(gtms.web_zoom(t.tms_id, t.z))]
    # OFFSET 0 keeps the geometry expression from being pushed into the filters (computed once)
    inner = sql.SQL("SELECT {cols} FROM {rel} t WHERE {where} OFFSET 0").format(
        cols=sql.SQL(", ").join(cols), rel=sql.Identifier(c.schema, c.relation),
        where=sql.SQL(" AND ").join(where))
    mvt = sql.SQL(
        "coalesce((SELECT ST_AsMVT(q, {name}, {ext}, '__geom'{fid}) FROM ({inner}) q "
        "WHERE q.__geom IS NOT NULL AND NOT ST_IsEmpty(q.__geom)), ''::bytea)"
    ).format(name=sql.Literal(layer.id), ext=sql.Literal(EXTENT),
             fid=sql.SQL(", '__fid'") if int_id else sql.SQL(""), inner=inner)
    return mvt, params


def layers_in(layers: list[VectorLayer], t: gtms.TileAddress,
              extents: dict[str, tuple[float, float, float, float] | None] | None = None) -> list[VectorLayer]:
    """The layers that may have features in tile ``t``: in their zoom range, and (given ``extents``,
    lon/lat) whose extent meets the tile."""
    keep = []
    lonlat = gtms.lonlat_bounds(t, BUFFER / EXTENT)
    wz = gtms.web_zoom(t.tms_id, t.z)
    for layer in layers:
        if not layer.min_zoom <= wz <= layer.max_zoom:
            continue
        if extents is not None:
            ext = extents.get(layer.id)
            if ext is None or not _intersects(ext, lonlat):
                continue
        keep.append(layer)
    return keep


def plan_tile(layers: list[VectorLayer], t: gtms.TileAddress,
              extents: dict[str, tuple[float, float, float, float] | None] | None = None
              ) -> TilePlan | None:
    """The statement rendering the layers ``layers`` of tile ``t``; None when the tile is surely empty.

    A layer outside its zoom range, or whose extent (``extents``, lon/lat) misses the tile, is left
    out without asking the database. The statement's text is composed only when asked for
    (:attr:`TilePlan.query`): a server keeps it by :attr:`TilePlan.shape`.
    """
    keep = layers_in(layers, t, extents)
    if not keep:
        return None
    params, shape = {}, [t.tms_id, gtms.web_zoom(t.tms_id, t.z)]
    for i, layer in enumerate(keep):
        _, p = _layer_sql(layer, t, i, compose=False)
        params.update(p)
        shape.append((layer.id, layer.fingerprint, f"l{i}_ax" in p))

    def build() -> sql.Composed:
        parts = [_layer_sql(layer, t, i)[0] for i, layer in enumerate(keep)]
        return sql.SQL("SELECT pg_current_snapshot()::text, {}").format(sql.SQL(" || ").join(parts))

    return TilePlan(build, params, tuple(keep), tuple(shape))
