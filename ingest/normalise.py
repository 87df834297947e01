"""Normalising one batch: geometry (validity, type, CRS) and attributes (mapping, types, codes).

Each feature either comes out clean or is rejected with a reason; nothing is silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from ingest.kinds import Kind
from ingest.mapping import Mapping

FAMILY_TYPES = {
    "polygon": {"Polygon", "MultiPolygon"},
    "line": {"LineString", "MultiLineString"},
    "point": {"Point"},
}


@dataclass
class Lookups:
    """Code lists the attributes are checked against (loaded from the database)."""

    land_use: set[str]
    owner_type: set[str]


@dataclass
class Normalised:
    """A normalised batch: clean rows, rejected rows, the number of repaired geometries and of
    features skipped on purpose (geometry types the mapping's ``skip_geometry_types`` names)."""

    rows: pd.DataFrame       # target fields + fid + geom (EWKB bytes, EPSG:4326) + geom_md5 (its md5, hex)
    rejects: pd.DataFrame    # fid, reason
    repaired: int
    skipped: int = 0


class Rejector:
    """Collects per-feature reasons; a feature with any reason is rejected (first reason kept)."""

    def __init__(self, n: int) -> None:
        self.reason = np.full(n, None, dtype=object)

    def add(self, mask: np.ndarray, reason) -> None:
        mask = np.asarray(mask, dtype=bool) & pd.isna(self.reason)
        if not mask.any():
            return
        if callable(reason):
            idx = np.flatnonzero(mask)
            self.reason[idx] = [reason(i) for i in idx]
        else:
            self.reason[mask] = reason

    @property
    def ok(self) -> np.ndarray:
        return pd.isna(self.reason)


def _extract_family(geom, family: str):
    """From a GeometryCollection (e.g. after make_valid), keep the parts of the wanted family."""
    wanted = FAMILY_TYPES[family]
    parts = [g for g in shapely.get_parts(geom) if g.geom_type in wanted and not g.is_empty]
    if not parts:
        return None
    if family == "polygon":
        polys = []
        for p in parts:
            polys.extend(shapely.get_parts(p) if p.geom_type == "MultiPolygon" else [p])
        return shapely.MultiPolygon(polys) if len(polys) > 1 else polys[0]
    if family == "line":
        lines = []
        for p in parts:
            lines.extend(shapely.get_parts(p) if p.geom_type == "MultiLineString" else [p])
        return shapely.MultiLineString(lines) if len(lines) > 1 else lines[0]
    return parts[0] if len(parts) == 1 else None


def normalise_geometry(geoms: np.ndarray, kind: Kind, rej: Rejector, invalid: str, reproject) -> tuple[np.ndarray, int]:
    """Check, repair and reproject geometries; returns (geometries in EPSG:4326, repaired count)."""
    n = len(geoms)
    missing = pd.isna(geoms)
    rej.add(missing, "no geometry (null or unreadable)")
    geoms = np.where(missing, None, geoms)
    empty = np.zeros(n, dtype=bool)
    present = ~missing
    empty[present] = shapely.is_empty(geoms[present])
    rej.add(empty, "empty geometry")
    live = rej.ok
    if shapely.has_z(geoms[live]).any():
        geoms[live] = shapely.force_2d(geoms[live])

    # multipoints of one point are points
    if kind.geometry == "point":
        tid = np.full(n, -1)
        tid[live] = shapely.get_type_id(geoms[live])
        mp = live & (tid == 4)
        if mp.any():
            single = shapely.get_num_geometries(geoms[mp]) == 1
            idx = np.flatnonzero(mp)[single]
            geoms[idx] = shapely.get_geometry(geoms[idx], 0)

    repaired = 0
    live = rej.ok
    valid = np.ones(n, dtype=bool)
    valid[live] = shapely.is_valid(geoms[live])
    bad = live & ~valid
    if bad.any():
        if invalid == "reject":
            reasons = shapely.is_valid_reason(geoms[bad])
            rej.add(bad, lambda i, _r=dict(zip(np.flatnonzero(bad), reasons)): f"invalid geometry: {_r[i]}")
        else:
            fixed = shapely.make_valid(geoms[bad])
            for j, i in enumerate(np.flatnonzero(bad)):
                g = fixed[j]
                if g.geom_type not in FAMILY_TYPES[kind.geometry]:
                    g = _extract_family(g, kind.geometry)
                if g is None or g.is_empty:
                    rej.reason[i] = "invalid geometry that cannot be repaired into a " + kind.geometry
                else:
                    geoms[i] = g
                    repaired += 1

    live = rej.ok
    types = np.full(n, None, dtype=object)
    types[live] = shapely.get_type_id(geoms[live])
    names = {0: "Point", 1: "LineString", 2: "LinearRing", 3: "Polygon", 4: "MultiPoint",
             5: "MultiLineString", 6: "MultiPolygon", 7: "GeometryCollection"}
    allowed = FAMILY_TYPES[kind.geometry]
    wrong = live & np.array([names.get(t) not in allowed if t is not None else False for t in types])
    if wrong.any():
        rej.add(wrong, lambda i: f"a {names.get(types[i])} in a {kind.geometry} layer (mixed geometry types)")

    live = rej.ok
    if live.any():
        geoms[live] = reproject(geoms[live])
        # reprojection can, rarely, make a ring touch itself: check again
        again = np.zeros(n, dtype=bool)
        again[live] = ~shapely.is_valid(geoms[live])
        if again.any():
            geoms[again] = shapely.make_valid(geoms[again])
            for i in np.flatnonzero(again):
                if geoms[i].geom_type not in allowed:
                    g = _extract_family(geoms[i], kind.geometry)
                    if g is None:
                        rej.reason[i] = "geometry degenerates when reprojected"
                    else:
                        geoms[i] = g
    return geoms, repaired


def canonical_ewkb(geoms: np.ndarray, family: str, srid: int) -> pd.api.extensions.ExtensionArray:
    """EWKB of normalised geometries, polygons in their canonical form.

    One canonical form whatever the format wrote (Shapefiles store exteriors clockwise, GeoPackage
    and GeoJSON usually counter-clockwise; a repair's output depends on the input ring's start and
    direction): the same parcel gives the same bytes, so the same row hash, from every format.
    Canonical ring starts and part order (``shapely.normalize``), then exteriors counter-clockwise
    (``shapely.orient_polygons``: OGC, RFC 7946). Lines are left alone: their direction means
    something.

    Polygons of one ring, most parcels, lots and footprints, are put in that form by
    :func:`_simple_polygons_ewkb` with numpy on their coordinates, to the same bytes; the others by
    GEOS.
    """
    if family != "polygon" or not len(geoms):
        return ewkb(geoms, srid)
    simple = ((shapely.get_type_id(geoms) == 3) & (shapely.get_num_interior_rings(geoms) == 0)
              & ~shapely.has_z(geoms))
    done = _simple_polygons_ewkb(geoms[simple], srid) if simple.any() else None
    if done is None:  # none simple, or an orientation numpy cannot be sure of: GEOS for all
        simple[:] = False
        done = pa.array([], pa.binary())
    if simple.all():
        return pd.arrays.ArrowExtensionArray(done)
    other = pa.array(ewkb(shapely.orient_polygons(shapely.normalize(geoms[~simple]), exterior_cw=False), srid))
    # the two parts back in the rows' order: the simple ones first in the joined array
    order = np.empty(len(geoms), dtype=np.int64)
    order[simple] = np.arange(len(done))
    order[~simple] = np.arange(len(other)) + len(done)
    return pd.arrays.ArrowExtensionArray(pa.concat_arrays([done, other]).take(pa.array(order)))


def _simple_polygons_ewkb(geoms: np.ndarray, srid: int) -> pa.Array | None:
    """EWKB of 2D Polygons without holes in GEOS's normalised, counter-clockwise form.

    What ``orient_polygons(normalize(g), exterior_cw=False)`` does to one ring: it starts at its
    smallest point (x, then y; the first one if it occurs twice) and turns counter-clockwise.
    The orientation is the sign of the ring's area (shoelace on coordinates relative to the
    ring's first point). None when one area is too close to 0 for its sign to be certain: GEOS
    decides then.
    """
    coords = shapely.get_coordinates(geoms)
    counts = shapely.get_num_coordinates(geoms).astype(np.int64)  # closed rings: first == last
    n = len(counts)
    starts = np.zeros(n, dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    ring = np.repeat(np.arange(n), counts)
    pos = np.arange(len(coords)) - starts[ring]
    x, y = coords[:, 0], coords[:, 1]
    closing = pos == counts[ring] - 1
    # smallest point: smallest x, then smallest y among those, first occurrence
    minx = np.minimum.reduceat(np.where(closing, np.inf, x), starts)
    cand = ~closing & (x == minx[ring])
    miny = np.minimum.reduceat(np.where(cand, y, np.inf), starts)
    hit = np.flatnonzero(cand & (y == miny[ring]))
    first = np.ones(len(hit), dtype=bool)
    first[1:] = ring[hit][1:] != ring[hit][:-1]
    k = pos[hit[first]]  # one per ring, in ring order
    # twice the signed area, relative to each ring's first point (exact enough to trust its sign
    # when far from 0; else None)
    dx, dy = x - x[starts][ring], y - y[starts][ring]
    nxt = np.minimum(np.arange(len(coords)) + 1, len(coords) - 1)
    term = np.where(closing, 0.0, dx * dy[nxt] - dx[nxt] * dy)
    area2 = np.add.reduceat(term, starts)
    width = np.maximum.reduceat(np.abs(dx), starts)
    height = np.maximum.reduceat(np.abs(dy), starts)
    if not (np.abs(area2) > 1e-9 * counts * width * height).all():
        return None
    ccw = area2 > 0
    # the source point of each output point: rotated to start at k, reversed when clockwise
    m1 = (counts - 1)[ring]
    j = pos
    src = np.where(ccw[ring], (k[ring] + j) % m1, (k[ring] - j) % m1) + starts[ring]
    out_xy = coords[src]
    # EWKB: byte order, type (Polygon | SRID flag), SRID, 1 ring, point count, points
    head = np.zeros((n, 17), dtype=np.uint8)
    head[:, 0] = 1
    head[:, 1:5] = np.frombuffer(np.uint32(0x20000003).astype("<u4").tobytes(), np.uint8)
    head[:, 5:9] = np.frombuffer(np.uint32(srid).astype("<u4").tobytes(), np.uint8)
    head[:, 9:13] = np.frombuffer(np.uint32(1).astype("<u4").tobytes(), np.uint8)
    head[:, 13:17] = counts.astype("<u4").view(np.uint8).reshape(n, 4)
    sizes = 17 + 16 * counts
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    if offsets[-1] >= 2 ** 31:
        return None
    data = np.empty(int(offsets[-1]), dtype=np.uint8)
    hpos = offsets[:-1, None] + np.arange(17)
    data[hpos] = head
    body = np.ones(len(data), dtype=bool)
    body[hpos.ravel()] = False
    data[body] = out_xy.astype("<f8").view(np.uint8).ravel()
    return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)])


_TRUE = {"true", "t", "yes", "y", "1", "1.0", "-1", "có"}
_FALSE = {"false", "f", "no", "n", "0", "0.0", "không"}


def convert_types(raw: pd.DataFrame, kind: Kind, resolved: dict, rej: Rejector) -> pd.DataFrame:
    """Convert raw mapped values to the kind's field types; bad values reject the feature."""
    out = {}
    for f in kind.fields:
        if f.name not in raw:
            out[f.name] = pd.Series([None] * len(raw), index=raw.index, dtype=object)
            continue
        col = raw[f.name]
        src = resolved.get(f.name) or f.name
        fast = _clean_text(col) if f.type == "text" else None
        if fast is not None:
            notnull = fast[1]
        elif _is_number(col):  # str() of a number is never "", "None" or, unless NaN, "nan"
            notnull = col.notna()
        else:
            notnull = col.notna() & ~col.astype(str).str.strip().isin(["", "nan", "None", "NaN"])
        if fast is not None:
            vals = fast[0]
        elif f.type == "text":
            vals = pd.Series(
                [str(v).strip() or None if ok else None for v, ok in zip(col.to_numpy(dtype=object), notnull)],
                index=col.index, dtype=object)
            # integral floats (e.g. codes read as numbers) lose the ".0"
            vals = vals.map(lambda v: v[:-2] if isinstance(v, str) and v.endswith(".0") and v[:-2].isdigit() else v)
        elif f.type in ("int", "float"):
            num = pd.to_numeric(col.where(notnull, None), errors="coerce")
            bad = notnull & num.isna()
            if f.type == "int":
                bad |= notnull & num.notna() & (np.abs(num - np.round(num)) > 1e-9)
            if bad.any():
                rej.add(bad.to_numpy(), lambda i, c=col, s=src, t=f.type: (
                    f"field {s!r}: {c.iloc[i]!r} is not {'an integer' if t == 'int' else 'a number'}"))
            vals = num.round().astype("Int64") if f.type == "int" else num.astype("Float64")
        elif f.type == "date":
            parsed = to_dates(col.where(notnull, None))
            bad = notnull & parsed.isna()
            if bad.any():
                rej.add(bad.to_numpy(), lambda i, c=col, s=src: f"field {s!r}: {c.iloc[i]!r} is not a date")
            vals = parsed.dt.date.where(parsed.notna(), None)
        elif f.type == "bool":
            low = col.where(notnull, None).map(lambda v: None if v is None else str(v).strip().lower())
            vals = low.map(lambda v: True if v in _TRUE else False if v in _FALSE else None)
            bad = notnull & vals.isna()
            if bad.any():
                rej.add(bad.to_numpy(), lambda i, c=col, s=src: f"field {s!r}: {c.iloc[i]!r} is not yes/no")
        else:  # pragma: no cover - kinds are declared in code
            raise ValueError(f.type)
        if f.required:
            missing = pd.isna(vals).to_numpy()
            rej.add(missing, f"missing value for {f.name} (source field {src!r})")
        out[f.name] = vals
    return pd.DataFrame(out, index=raw.index)


_NULL_TEXT = pa.array(["", "nan", "None", "NaN"])
# the characters str.strip() removes (str.isspace(); none lies above U+3000): a value whose first
# and last characters are none of them is its own strip()
_SPACES = pa.array([c for c in map(chr, range(0x3001)) if c.isspace()], pa.string())


def _is_number(col: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype)


def _arrow_text(col: pd.Series) -> pa.Array | None:
    """The column as an Arrow string array when every value is a str or missing, else None."""
    if str(col.dtype) == "str" or isinstance(col.dtype, pd.StringDtype):
        arr = pa.array(col, from_pandas=True)
    elif col.dtype == object:
        values = col.to_numpy(dtype=object)
        if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
            return None
        arr = pa.array(values, type=pa.string(), from_pandas=True)
    else:
        return None
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.cast(pa.string()) if arr.type != pa.string() else arr


def _clean_text(col: pd.Series) -> tuple[pd.Series, pd.Series] | None:
    """A text field's (values, notnull) as the row-by-row code computes them, in Arrow: values
    stripped, "", "nan", "None", "NaN" missing, "12.0" -> "12". Python touches only the rare values
    that strip() or the ".0" rule may change. None when some value is not a str."""
    arr = _arrow_text(col)
    if arr is None:
        return None
    valid = arr.is_valid()
    odd = pc.fill_null(pc.or_(pc.is_in(pc.utf8_slice_codeunits(arr, 0, 1), _SPACES),
                              pc.is_in(pc.utf8_slice_codeunits(arr, -1, 2 ** 31 - 1), _SPACES)), False)
    if pc.any(odd).as_py():
        arr = pc.replace_with_mask(arr, odd, pa.array([v.strip() for v in arr.filter(odd).to_pylist()],
                                                      pa.string()))
    isnull = pc.or_(pc.invert(valid), pc.fill_null(pc.is_in(arr, _NULL_TEXT), False))
    arr = pc.if_else(isnull, pa.scalar(None, pa.string()), arr)
    dot0 = pc.fill_null(pc.ends_with(arr, ".0"), False)
    if pc.any(dot0).as_py():
        arr = pc.replace_with_mask(arr, dot0, pa.array(
            [v[:-2] if v[:-2].isdigit() else v for v in arr.filter(dot0).to_pylist()], pa.string()))
    notnull = pd.Series(pc.invert(isnull).to_numpy(zero_copy_only=False), index=col.index)
    if arr.null_count == len(arr):  # the row-by-row code's .map() infers object for all-None
        return pd.Series([None] * len(arr), index=col.index, dtype=object), notnull
    out = arr.to_pandas()  # pandas' "str" dtype, as the row-by-row code's .map() infers
    out.index = col.index
    return out, notnull


def _upper(col: pd.Series) -> pd.Series:
    """str.upper() of the str values (vectorised when they are all ASCII)."""
    arr = _arrow_text(col)
    if arr is None or arr.null_count == len(arr) or pc.all(pc.string_is_ascii(arr)).as_py() is False:
        return col.map(lambda v: v.upper() if isinstance(v, str) else v)
    out = pc.ascii_upper(arr).to_pandas()
    out.index = col.index
    return out


_ISO_DATE = r"^\s*\d{4}-\d{1,2}-\d{1,2}"


def to_dates(values: pd.Series) -> pd.Series:
    """Parse dates: ISO 8601 (``2025-07-01``) year first, other text day first as written in
    Vietnam (``01/07/2025`` is the 1st of July); date and datetime values as they are.

    Returns datetime64 values (NaT where a value is not a date).
    """
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    obj = values.astype(object)
    is_str = obj.map(lambda v: isinstance(v, str))
    text = obj[is_str].astype(str).str.strip()
    iso = text.str.match(_ISO_DATE)
    if iso.any():
        out[text.index[iso]] = pd.to_datetime(text[iso].str.slice(0, 10).str.replace(r"-(\d)(?=-|$)", r"-0\1", regex=True),
                                              errors="coerce", format="%Y-%m-%d")
    if (~iso).any():
        out[text.index[~iso]] = pd.to_datetime(text[~iso], errors="coerce", format="mixed", dayfirst=True)
    other = ~is_str & obj.notna()
    if other.any():
        out[other] = pd.to_datetime(obj[other], errors="coerce", utc=True).dt.tz_localize(None)
    return out


def check_codes(df: pd.DataFrame, kind: Kind, lookups: Lookups, rej: Rejector) -> None:
    """Domain checks: known land-use and owner-type codes, ranges, positive sheet and parcel numbers."""
    if kind.name == "roads":
        # road data (OSM, CSL) writes 0 for "not surveyed": a width, lane count or speed of 0 is unknown
        for name in ("lanes", "width_m", "maxspeed_kmh"):
            df[name] = df[name].mask(df[name] == 0)
    if kind.name == "cadastral":
        lu = _upper(df["land_use"])
        df["land_use"] = lu
        unknown = lu.notna() & ~lu.isin(lookups.land_use)
        rej.add(unknown.to_numpy(), lambda i: f"unknown land-use code {lu.iloc[i]!r}")
        ot = _upper(df["owner_type"])
        df["owner_type"] = ot
        bad_ot = ot.notna() & ~ot.isin(lookups.owner_type)
        rej.add(bad_ot.to_numpy(), lambda i: f"unknown owner-type code {ot.iloc[i]!r}")
        for name in ("sheet_no", "parcel_no"):
            nonpos = (df[name].fillna(1) <= 0).to_numpy(dtype=bool)
            rej.add(nonpos, lambda i, n=name: f"{n} must be a positive number, not {df[n].iloc[i]}")
        neg = (df["legal_area_m2"].fillna(0) < 0).to_numpy(dtype=bool)
        rej.add(neg, "legal area is negative")
    if kind.name == "planning":
        cov = df["max_coverage"]
        out = (cov.notna() & ((cov < 0) | (cov > 1))).fillna(False).to_numpy(dtype=bool)
        rej.add(out, lambda i: f"building coverage {cov.iloc[i]} is outside 0..1 (percent given as fraction?)")
    for f in kind.fields:
        if f.type in ("int", "float") and f.name not in ("legal_area_m2",):
            neg = (df[f.name].fillna(0) < 0).to_numpy(dtype=bool)
            if f.name not in ("sheet_no", "parcel_no"):
                rej.add(neg, f"{f.name} is negative")


def normalise_batch(batch, kind: Kind, mapping: Mapping, resolved: dict, reproject, lookups: Lookups,
                    invalid: str = "repair") -> Normalised:
    """Normalise one :class:`ingest.reader.Batch` for ``kind``."""
    from ingest.merge import geom_md5
    from ingest.reader import geometries

    n = len(batch.fids)
    rej = Rejector(n)
    geoms = geometries(batch)
    # features the mapping says to leave out (e.g. OSM building nodes: points, not footprints)
    skip_types = set(mapping.options.get("skip_geometry_types") or ())
    skip = np.zeros(n, dtype=bool)
    if skip_types:
        present = ~pd.isna(geoms)
        skip[present] = np.isin(shapely.get_type_id(geoms[present]),
                                [_TYPE_IDS[t] for t in skip_types])
        geoms = np.where(skip, None, geoms)
        rej.add(skip, "skipped")  # neither loaded nor rejected: counted apart below
    raw = mapping.apply(batch.attrs, resolved, batch.fids, batch.wkb)
    raw.index = range(n)
    df = convert_types(raw, kind, resolved, rej)
    check_codes(df, kind, lookups, rej)
    geoms, repaired = normalise_geometry(geoms, kind, rej, invalid, reproject)
    ok = rej.ok
    rows = df[ok].copy()
    rows.insert(0, "fid", batch.fids[ok])
    rows["geom"] = canonical_ewkb(geoms[ok], kind.geometry, 4326)
    rows["geom_md5"] = geom_md5(rows["geom"])
    bad = ~ok & ~skip
    rejects = pd.DataFrame({"fid": batch.fids[bad], "reason": rej.reason[bad]})
    return Normalised(rows, rejects, repaired, int(skip.sum()))


def ewkb(geoms: np.ndarray, srid: int) -> pd.api.extensions.ExtensionArray:
    """EWKB (with the SRID) of geometries, as ``shapely.to_wkb(shapely.set_srid(geoms, srid),
    include_srid=True)`` writes it, in an Arrow-backed column.

    The SRID is spliced into the plain WKB's header (byte order, type word with the SRID flag, SRID)
    instead of setting it on a copy of every geometry; the bytes are identical (row hashes depend on
    them). Big-endian or flagged (Z, M) WKB takes shapely's own path.
    """
    raw = pa.array(shapely.to_wkb(geoms), pa.binary()) if len(geoms) else pa.array([], pa.binary())
    n = len(raw)
    offsets = np.frombuffer(raw.buffers()[1], dtype=np.int32, count=n + 1) if n else np.zeros(1, np.int32)
    data = np.frombuffer(raw.buffers()[2], dtype=np.uint8) if n else np.zeros(0, np.uint8)
    starts = offsets[:-1]
    words = data[starts[:, None] + np.arange(1, 5)].copy().view("<u4").ravel() if n else np.zeros(0, "<u4")
    if n and ((data[starts] != 1).any() or (words & 0xE0000000).any()):
        out = pa.array(shapely.to_wkb(shapely.set_srid(geoms, srid), include_srid=True), pa.binary())
    else:
        head = np.empty((n, 9), dtype=np.uint8)
        head[:, 0] = 1  # little endian
        head[:, 1:5] = (words | 0x20000000).astype("<u4").view(np.uint8).reshape(n, 4)
        head[:, 5:9] = np.frombuffer(np.uint32(srid).astype("<u4").tobytes(), dtype=np.uint8)
        heads = pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(np.arange(0, 9 * n + 1, 9, dtype=np.int32)),
                                                       pa.py_buffer(head.tobytes())])
        out = pc.binary_join_element_wise(heads, pc.binary_slice(raw, 5, 1 << 30), pa.scalar(b"", pa.binary()))
    return pd.arrays.ArrowExtensionArray(out)


_TYPE_IDS = {"Point": 0, "LineString": 1, "LinearRing": 2, "Polygon": 3, "MultiPoint": 4,
             "MultiLineString": 5, "MultiPolygon": 6, "GeometryCollection": 7}
