"""A FlatGeobuf writer for exports: features encoded from Arrow batches by array kernels.

GDAL's FlatGeobuf writer builds one ``OGRFeature`` per row, writes every feature to a temporary file,
sorts the index entries (computing each Hilbert code inside the sort's comparator, about 40 million
times for a million features) and rewrites the temporary file in index order. This writer does the
same job in fewer passes: each Arrow batch (WKB geometry, typed columns) is encoded at once with numpy
and Arrow kernels (no per-row Python), kept in memory or, beyond :data:`MEMORY`, in a side file; the
boxes are Hilbert-sorted once with numpy; the final file (header, packed Hilbert R-tree, features in
index order) is assembled by Arrow from Arrow binary views of the kept features, and written (and
hashed) in a thread. Memory stays bounded by :data:`MEMORY` and the batch size, plus 64 bytes a
feature (size, box, view).

The format (https://flatgeobuf.org, version 3): magic bytes, a size-prefixed ``Header`` FlatBuffer,
the packed R-tree (40-byte nodes, root first, leaves in feature order), then each feature as a
size-prefixed ``Feature`` FlatBuffer. The FlatBuffers are laid out here directly (tables with their
vtables, vectors aligned to their element size, every offset pointing forward), as the format's
schema (``header.fbs``, ``feature.fbs``) defines them; readers verify them (GDAL does by default).

What is encoded: 2D Point, LineString, Polygon and their Multi types (a single type promoted to the
layer's Multi type), and columns of Arrow type int16/32/64, float32/64, bool, string, date32 and
timestamp (written as GDAL writes them: dates as ``YYYY-MM-DDT00:00:00``, times as ISO 8601 with
milliseconds when there are some and ``Z`` for UTC). Anything else (NULL or empty geometries, Z or M
coordinates, other types) raises :class:`Unsupported`, and the caller writes the layer with GDAL.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gis.arrow import fixed_width_binary

MAGIC = b"fgb\x03fgb\x01"
#: bytes of encoded features kept in memory until the index is written; beyond, they wait in a side file
#: (measured: no faster than the side file at 1,000,000 parcels, so small: small layers need no file)
MEMORY = 64 << 20
NODE_SIZE = 16

#: FlatGeobuf geometry types (the WKB 2D codes)
GEOMETRY_TYPES = {"Point": 1, "LineString": 2, "Polygon": 3, "MultiPoint": 4, "MultiLineString": 5,
                  "MultiPolygon": 6}

# ColumnType of header.fbs
_BOOL, _SHORT, _INT, _LONG, _FLOAT, _DOUBLE, _STRING, _DATETIME = 2, 3, 5, 7, 9, 10, 11, 13
_FIXED = {  # Arrow type id -> (ColumnType, numpy dtype of the value)
    "int16": (_SHORT, "<i2"), "int32": (_INT, "<i4"), "int64": (_LONG, "<i8"),
    "float": (_FLOAT, "<f4"), "double": (_DOUBLE, "<f8"), "bool": (_BOOL, "u1"),
}


class Unsupported(Exception):
    """The data holds something this writer does not encode; write the layer with GDAL instead."""


# ------------------------------------------------------------------------------------------------
# columns
# ------------------------------------------------------------------------------------------------
def _column_kind(typ: pa.DataType) -> tuple[int, str]:
    """(ColumnType, how the values are encoded) of an Arrow type; :class:`Unsupported` otherwise."""
    if pa.types.is_boolean(typ):
        return _BOOL, "bool"
    for name, (ctype, _) in _FIXED.items():
        if str(typ) == name:
            return ctype, name
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return _STRING, "string"
    if pa.types.is_date32(typ):
        return _DATETIME, "date"
    if pa.types.is_timestamp(typ) and typ.tz in (None, "UTC", "+00:00", "Etc/UTC"):
        return _DATETIME, "timestamp"
    raise Unsupported(f"column type {typ}")


def _fixed_pieces(index: int, col: pa.Array, dtype: str) -> pa.Array:
    """``ushort index`` + the value, per row (NULL where the value is NULL: nothing is written)."""
    n = len(col)
    rec = np.empty(n, dtype=[("i", "<u2"), ("v", dtype)])
    rec["i"] = index
    if pa.types.is_boolean(col.type):
        rec["v"] = _bits(col.buffers()[1], col.offset, len(col))
    else:
        rec["v"] = _values(col, dtype)
    return _fixed_binary(rec.view(np.uint8), rec.itemsize, n, col)


def _bits(buffer: pa.Buffer | None, offset: int, n: int) -> np.ndarray:
    """A bitmap (validity or booleans) as a numpy bool array; all True without a buffer."""
    if buffer is None:
        return np.ones(n, bool)
    bits = np.unpackbits(np.frombuffer(buffer, np.uint8), count=offset + n, bitorder="little")
    return bits[offset:].view(bool)


def _valid(col: pa.Array) -> np.ndarray:
    return _bits(col.buffers()[0] if col.null_count else None, col.offset, len(col))


def _values(col: pa.Array, dtype: str) -> np.ndarray:
    """The values of a fixed-width Arrow array as numpy, 0 where NULL (``fill_null`` with a Python
    scalar would make pyarrow import pandas, 0.3 s)."""
    v = np.frombuffer(col.buffers()[1], dtype, count=col.offset + len(col))[col.offset:]
    return np.where(_valid(col), v, 0) if col.null_count else v


def _indices(values: np.ndarray) -> pa.Array:
    """An Arrow int64 array over a numpy array (``pa.array`` would import pandas to look at it)."""
    values = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), values.size, [None, pa.py_buffer(values)])


def _fixed_binary(data: np.ndarray, width: int, n: int, validity_of: pa.Array | None) -> pa.Array:
    """``n`` binary values of ``width`` bytes from ``data``, NULL where ``validity_of`` is NULL."""
    validity = None
    if validity_of is not None and validity_of.null_count:
        validity = pc.is_valid(validity_of).buffers()[1]
    return fixed_width_binary(data, width, n, validity)


def _text_pieces(index: int, text: pa.Array) -> list[pa.Array]:
    """``ushort index`` + ``uint length`` per row (NULL where NULL), and the UTF-8 bytes."""
    values = text.cast(pa.binary())
    n = len(values)
    rec = np.empty(n, dtype=[("i", "<u2"), ("n", "<u4")])
    rec["i"] = index
    rec["n"] = _values(pc.binary_length(values), "<i4")
    return [_fixed_binary(rec.view(np.uint8), 6, n, values), values]


def _digits(out: np.ndarray, col: int, value: np.ndarray, width: int) -> None:
    """Write ``value`` as ``width`` ASCII digits into ``out[:, col:col + width]``."""
    for i in range(width - 1, -1, -1):
        out[:, col + i] = 48 + value % 10
        value = value // 10


def _iso_pieces(index: int, col: pa.Array, kind: str) -> pa.Array:
    """``ushort index`` + ``uint length`` + ISO 8601 text of dates and times, as GDAL writes them.

    Dates as ``YYYY-MM-DDT00:00:00``; times rounded to milliseconds, with ``.mmm`` when the time has a
    fraction of a second and ``Z`` when it is in UTC. Built with integer arithmetic (civil dates from
    day numbers) for each distinct value of the batch (a layer's dates repeat: one per ingest run).
    """
    n = len(col)
    valid = _valid(col)
    if kind == "date":
        raw, inv = np.unique(_values(col.cast(pa.int32()), "<i4").astype(np.int64), return_inverse=True)
        days = raw
        secs = ms = np.zeros(raw.size, np.int64)
        frac = np.zeros(raw.size, bool)
        utc = False
    else:
        per_s = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[col.type.unit]
        raw, inv = np.unique(_values(col.cast(pa.int64()), "<i8"), return_inverse=True)
        sub = raw % per_s
        total_ms = (raw // per_s) * 1000 + (sub * 2000 + per_s) // (2 * per_s)  # rounded to milliseconds
        whole, ms = np.divmod(total_ms, 1000)
        days, secs = np.divmod(whole, 86_400)
        frac = sub != 0
        utc = col.type.tz is not None
    z = days + 719_468  # civil date from the day number (H. Hinnant's algorithm)
    era = np.floor_divide(z, 146_097)
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    if ((year < 0) | (year > 9999)).any():
        raise Unsupported("dates outside the years 0-9999")
    u = raw.size
    text = np.full((u, 6 + 24), ord("0"), np.uint8)  # index, length, YYYY-MM-DDTHH:MM:SS.mmmZ
    length = 19 + 4 * frac + (1 if utc else 0)
    head = np.empty(u, dtype=[("i", "<u2"), ("n", "<u4")])
    head["i"] = index
    head["n"] = length
    text[:, :6] = head.view(np.uint8).reshape(u, 6)
    _digits(text, 6, year, 4)
    text[:, 10] = text[:, 13] = ord("-")
    _digits(text, 11, month, 2)
    _digits(text, 14, day, 2)
    text[:, 16] = ord("T")
    hour, rest = np.divmod(secs, 3600)
    _digits(text, 17, hour, 2)
    text[:, 19] = text[:, 22] = ord(":")
    _digits(text, 20, rest // 60, 2)
    _digits(text, 23, rest % 60, 2)
    text[:, 25] = ord(".")
    _digits(text, 26, ms, 3)
    text[~frac, 25] = ord("Z")  # moved up where there are no milliseconds (cut off when not UTC)
    text[:, 29] = ord("Z")
    text, length = text[inv], length[inv]
    keep = np.arange(30) < (6 + length)[:, None]
    keep &= valid[:, None]
    sizes = np.where(valid, 6 + length, 0)
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum(sizes, out=offsets[1:])
    validity = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(pa.binary(), n, [validity, pa.py_buffer(offsets), pa.py_buffer(text[keep])])


def _properties(batch: pa.RecordBatch, kinds: list[tuple[int, str]], names: list[str]) -> list[pa.Array]:
    """Pieces of the ``properties`` bytes of each row (NULL: nothing): for each column, in order,
    (column index, value) of its non-NULL values."""
    pieces: list[pa.Array] = []
    for i, (name, (_, how)) in enumerate(zip(names, kinds, strict=True)):
        col = batch.column(name)
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks()
        if how in _FIXED:
            pieces.append(_fixed_pieces(i, col, _FIXED[how][1]))
        elif how == "string":
            pieces.extend(_text_pieces(i, col))
        else:
            pieces.append(_iso_pieces(i, col, how))
    return pieces


# ------------------------------------------------------------------------------------------------
# geometries: WKB -> coordinate runs
# ------------------------------------------------------------------------------------------------
def _u32(b: np.ndarray, pos: np.ndarray) -> np.ndarray:
    p = pos.astype(np.int64)
    return (b[p].astype(np.int64) | (b[p + 1].astype(np.int64) << 8) | (b[p + 2].astype(np.int64) << 16)
            | (b[p + 3].astype(np.int64) << 24))


def _wkb_runs(wkb: pa.Array, layer_type: int):
    """Parse a batch of little-endian 2D WKB of the layer's type (or its single type, promoted).

    Returns
    -------
    data : np.ndarray
        The WKB bytes (uint8 view of the Arrow data buffer).
    runs : tuple of arrays
        Per coordinate run (a ring, a line or a point), in feature order: feature, FlatGeobuf geometry
        (a polygon of a MultiPolygon, else the feature), first byte of its coordinates, point count.
    """
    if wkb.null_count:
        raise Unsupported("NULL geometries")
    n = len(wkb)
    buffers = wkb.buffers()
    off_dtype = np.int64 if pa.types.is_large_binary(wkb.type) else np.int32
    offsets = np.frombuffer(buffers[1], dtype=off_dtype)[wkb.offset:wkb.offset + n + 1].astype(np.int64)
    data = np.frombuffer(buffers[2], dtype=np.uint8)
    start = offsets[:-1]
    if n and (data[start] != 1).any():
        raise Unsupported("big-endian WKB")
    types = _u32(data, start + 1) if n else np.zeros(0, np.int64)
    single = {4: 1, 5: 2, 6: 3}.get(layer_type, layer_type)
    is_multi = types == layer_type if layer_type in (4, 5, 6) else np.zeros(n, bool)
    if not ((types == layer_type) | (types == single)).all():
        raise Unsupported("geometry types other than the layer's (or Z/M coordinates)")
    # parts: (feature, order, position of the part's WKB)
    nparts = np.where(is_multi, _u32(data, start + 5) if n else 0, 1)
    if (nparts < 1).any():
        raise Unsupported("empty geometries")
    part_feat, part_k, part_pos = [], [], []
    pos = np.where(is_multi, start + 9, start)
    k = 0
    active = np.arange(n)
    while active.size:
        p = pos[active]
        part_feat.append(active)
        part_k.append(np.full(active.size, k))
        part_pos.append(p)
        pos[active] = _part_end(data, p, single)
        k += 1
        active = active[nparts[active] > k]
    if not part_feat:
        return data, (np.zeros(0, np.int64),) * 4
    pf, pk, pp = (np.concatenate(a) for a in (part_feat, part_k, part_pos))
    order = np.lexsort((pk, pf))
    pf, pp = pf[order], pp[order]
    # runs of each part
    if single == 1:
        run_part, run_start, run_n = np.arange(pf.size), pp + 5, np.ones(pf.size, np.int64)
    elif single == 2:
        run_part, run_start, run_n = np.arange(pf.size), pp + 9, _u32(data, pp + 5)
    else:
        rings = _u32(data, pp + 5)
        if (rings < 1).any():
            raise Unsupported("empty polygons")
        rp, rk, rs, rn = [], [], [], []
        q = pp + 9
        r = 0
        act = np.arange(pf.size)
        while act.size:
            cnt = _u32(data, q[act])
            rp.append(act)
            rk.append(np.full(act.size, r))
            rs.append(q[act] + 4)
            rn.append(cnt)
            q[act] = q[act] + 4 + 16 * cnt
            r += 1
            act = act[rings[act] > r]
        run_part, rk, run_start, run_n = (np.concatenate(a) for a in (rp, rk, rs, rn))
        order = np.lexsort((rk, run_part))
        run_part, run_start, run_n = run_part[order], run_start[order], run_n[order]
    if (run_n < 1).any():
        raise Unsupported("empty geometries")
    run_feat = pf[run_part]
    run_geom = run_part if layer_type == 6 else run_feat
    return data, (run_feat, run_geom, run_start, run_n)


def _part_end(data: np.ndarray, p: np.ndarray, single: int) -> np.ndarray:
    """End of each single geometry's WKB (Point, LineString or Polygon) starting at ``p``."""
    if single == 1:
        return p + 21
    if single == 2:
        return p + 9 + 16 * _u32(data, p + 5)
    rings = _u32(data, p + 5)
    q = p + 9
    r = 0
    act = np.arange(p.size)
    while act.size:
        q[act] = q[act] + 4 + 16 * _u32(data, q[act])
        r += 1
        act = act[rings[act] > r]
    return q


# ------------------------------------------------------------------------------------------------
# features
# ------------------------------------------------------------------------------------------------
def _u16pair(lo: int, hi: int) -> int:
    """Two ``uint16`` (little-endian) as one ``uint32`` word."""
    return (lo & 0xFFFF) | ((hi & 0xFFFF) << 16)


def encode_batch(batch: pa.RecordBatch, geometry: str, layer_type: int, kinds: list[tuple[int, str]],
                 names: list[str]) -> tuple[pa.Buffer, np.ndarray, np.ndarray]:
    """Encode one batch as size-prefixed Feature FlatBuffers.

    Each feature is laid out as: ``uint32`` size prefix, root offset, the Feature's vtable and table,
    [the MultiPolygon's table and its parts vector], per FlatGeobuf geometry ("G": the feature's
    geometry, or each polygon of a MultiPolygon) its vtable, table, [ends vector] and xy vector, then
    the properties vector. Everything up to the properties' bytes is written into one numpy buffer
    (offsets and words scattered, coordinates copied as aligned doubles); Arrow then appends each
    feature's properties.

    Returns
    -------
    data : pyarrow.Buffer
        The features, one after the other, each with its ``uint32`` size prefix.
    sizes : np.ndarray
        Bytes of each feature with its prefix.
    boxes : np.ndarray
        (n, 4) minx, miny, maxx, maxy of each feature.
    """
    n = batch.num_rows
    wkb = batch.column(geometry)
    if isinstance(wkb, pa.ChunkedArray):
        wkb = wkb.combine_chunks()
    data, (run_feat, run_geom, run_start, run_n) = _wkb_runs(wkb, layer_type)
    n_runs = run_start.size
    # the coordinates of every run, back to back (one memcpy a run): aligned doubles
    bounds = np.empty(2 * n_runs, np.int64)
    bounds[0::2] = run_start
    bounds[1::2] = run_start + 16 * run_n
    view = pa.Array.from_buffers(pa.binary(), 2 * n_runs - 1,
                                 [None, pa.py_buffer(bounds.astype(np.int32)), pa.py_buffer(data)])
    taken = view.take(_indices(np.arange(0, 2 * n_runs, 2)))
    tb = taken.buffers()
    to = np.frombuffer(tb[1], dtype=np.int32)[taken.offset:taken.offset + n_runs + 1]
    coords = np.frombuffer(tb[2], dtype="<f8", count=int(to[-1] - to[0]) // 8, offset=int(to[0]))
    xy = coords.reshape(-1, 2)

    # boxes
    first_pt = np.zeros(n_runs, np.int64)
    np.cumsum(run_n[:-1], out=first_pt[1:])
    feat_first_run = np.searchsorted(run_feat, np.arange(n))
    feat_first_pt = first_pt[feat_first_run]
    boxes = np.empty((n, 4))
    boxes[:, 0] = np.minimum.reduceat(xy[:, 0], feat_first_pt)
    boxes[:, 1] = np.minimum.reduceat(xy[:, 1], feat_first_pt)
    boxes[:, 2] = np.maximum.reduceat(xy[:, 0], feat_first_pt)
    boxes[:, 3] = np.maximum.reduceat(xy[:, 1], feat_first_pt)

    # the Gs: their runs, points and sizes (every size a multiple of 8 bytes)
    multi_polygon = layer_type == 6
    if multi_polygon:
        g_of_run = run_geom
        g_ids, g_first_run, g_runs = np.unique(g_of_run, return_index=True, return_counts=True)
        run_g = np.searchsorted(g_ids, g_of_run)
    else:
        g_first_run, g_runs, run_g = feat_first_run, np.bincount(run_feat, minlength=n), run_feat
    n_g = g_first_run.size
    g_feat = run_feat[g_first_run]
    g_pts = np.add.reduceat(run_n, g_first_run)
    with_ends = (g_runs > 1) & (layer_type != 4)  # a MultiPoint's points are not parts
    ends_words = np.where(with_ends, 1 + g_runs, 0)
    pad_words = np.where(with_ends & (g_runs % 2 == 0), 1, 0)
    head_words = 10 + ends_words + pad_words  # vtable (20) + table (16) + [ends] + [pad] + xy length
    g_bytes = head_words * 4 + 16 * g_pts

    props = _properties(batch, kinds, names)
    prop_len = np.zeros(n, np.int64)
    for piece in props:
        prop_len += _values(pc.binary_length(piece), "<i4")
    f_parts = np.bincount(g_feat, minlength=n)
    mhead_words = (9 + f_parts + (f_parts % 2 == 0)) if multi_polygon else np.zeros(n, np.int64)
    f_geom = mhead_words * 4 + np.bincount(g_feat, weights=g_bytes, minlength=n).astype(np.int64)
    f_size = 24 + f_geom + 4 + prop_len  # the Feature FlatBuffer (without its size prefix)
    unit = 4 + 24 + f_geom + 4  # prefix .. properties length: a multiple of 8
    u0 = np.zeros(n, np.int64)
    np.cumsum(unit[:-1], out=u0[1:])
    total = int(unit.sum())
    raw = np.zeros(total + 8, np.uint8)  # 4 bytes of lead, so that F (the Feature buffer) is 8-aligned
    w = raw[: (total + 8) // 4 * 4].view("<u4")
    d = raw[: (total + 8) // 8 * 8].view("<f8")
    fw = (8 + u0) // 4  # word index of each feature's F
    w[fw - 1] = f_size
    w[fw] = 12  # root: the table at 12
    w[fw + 1] = _u16pair(8, 12)  # vtable: 2 fields, table of 12 bytes
    w[fw + 2] = _u16pair(4, 8)  # geometry at +4, properties at +8
    w[fw + 3] = 8  # soffset to the vtable
    w[fw + 4] = 28  # geometry: the table at 44
    w[fw + 5] = 24 + f_geom - 20  # properties vector right after the geometry
    w[fw + 6 + f_geom // 4] = prop_len

    g_first_of_f = np.searchsorted(g_feat, np.arange(n))
    g_rank = np.arange(n_g) - g_first_of_f[g_feat]
    csum = np.cumsum(g_bytes) - g_bytes
    q = 24 + mhead_words[g_feat] * 4 + csum - csum[g_first_of_f[g_feat]]  # G's vtable, from F
    if multi_polygon:
        m = fw + 6  # the MultiPolygon's vtable at F + 24
        w[m] = _u16pair(20, 12)  # vtable: 8 fields, table of 12 bytes
        w[m + 4] = _u16pair(8, 4)  # type at +8, parts at +4
        w[m + 5] = 20
        w[m + 6] = 8  # parts vector at F + 56
        w[m + 7] = 6  # MultiPolygon
        w[m + 8] = f_parts
        w[m[g_feat] + 9 + g_rank] = q + 20 - (60 + 4 * g_rank)  # parts[i] -> the part's table
    gw = fw[g_feat] + q // 4
    w[gw] = _u16pair(18, 16)  # vtable: 7 fields (ends .. type), table of 16 bytes
    w[gw + 1] = np.where(with_ends, _u16pair(4, 8), _u16pair(0, 8))  # ends, xy
    w[gw + 4] = _u16pair(12, 0)  # type
    w[gw + 5] = 20  # soffset to the vtable
    w[gw + 6] = np.where(with_ends, 12, 0)  # ends vector at +36
    xy_len = head_words - 1  # word of the xy length, from the G
    w[gw + 7] = xy_len * 4 - 28
    w[gw + 8] = 3 if multi_polygon else layer_type
    w[gw + xy_len] = 2 * g_pts
    run_rank = np.arange(n_runs) - g_first_run[run_g]
    if with_ends.any():
        cum = np.cumsum(run_n)
        within = cum - (cum - run_n)[g_first_run[run_g]]
        sel = with_ends[run_g]
        w[gw[with_ends] + 9] = g_runs[with_ends]
        w[gw[run_g[sel]] + 10 + run_rank[sel]] = within[sel]
    # coordinates: the G's xy right after its length word
    g_first_double = (gw + xy_len + 1) // 2
    g_doubles = 2 * g_pts
    first_d = np.cumsum(g_doubles) - g_doubles
    d[np.repeat(g_first_double - first_d, g_doubles) + np.arange(coords.size)] = coords

    offsets = (4 + np.r_[u0, total]).astype(np.int32)
    heads = pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(raw)])
    empty = pa.Array.from_buffers(pa.binary(), 1,
                                  [None, pa.py_buffer(np.zeros(2, np.int32)), pa.py_buffer(b"")])[0]
    out = pc.binary_join_element_wise(heads, *props, empty, null_handling="replace", null_replacement=b"")
    ob = out.buffers()
    o = np.frombuffer(ob[1], dtype=np.int32)[out.offset:out.offset + n + 1]
    buf = ob[2].slice(int(o[0]), int(o[-1] - o[0]))
    sizes = f_size + 4
    if int(sizes.sum()) != buf.size:  # pragma: no cover - a layout error, never written
        raise AssertionError("FlatGeobuf layout: feature sizes do not add up")
    return buf, sizes, boxes


# ------------------------------------------------------------------------------------------------
# header and index
# ------------------------------------------------------------------------------------------------
class _Table:
    """A FlatBuffers table written front to back: scalars inline, strings/vectors/tables after it."""

    def __init__(self) -> None:
        self.fields: dict[int, tuple[str, object]] = {}

    def scalar(self, slot: int, fmt: str, value) -> _Table:
        self.fields[slot] = (fmt, value)
        return self

    def ref(self, slot: int, kind: str, value) -> _Table:
        self.fields[slot] = (kind, value)
        return self


def _align(buf: bytearray, n: int, extra: int = 0) -> None:
    while (len(buf) + extra) % n:
        buf.append(0)


_REFS = ("str", "vec", "table", "tables")


def _slot_size(fmt: str) -> int:
    return 4 if fmt in _REFS else struct.calcsize("<" + fmt)


def _write_table(buf: bytearray, table: _Table) -> int:
    """Append ``table`` (and what it refers to) to ``buf``; the table's position."""
    slots = max(table.fields) + 1 if table.fields else 0
    layout: list[tuple[int, int, str, object]] = []  # (slot, offset in table, fmt, value)
    pos = 4
    items = sorted(table.fields.items(), key=lambda kv: -_slot_size(kv[1][0]))
    for slot, (fmt, value) in items:
        size = _slot_size(fmt)
        while pos % size:
            pos += 1
        layout.append((slot, pos, fmt, value))
        pos += size
    table_size = pos
    vt = [4 + 2 * slots, table_size] + [0] * slots
    for slot, off, _, _ in layout:
        vt[2 + slot] = off
    vt_bytes = struct.pack(f"<{len(vt)}H", *vt)
    _align(buf, 8, len(vt_bytes))
    vt_pos = len(buf)
    buf += vt_bytes
    tpos = len(buf)
    assert tpos % 4 == 0
    body = bytearray(table_size)
    struct.pack_into("<i", body, 0, tpos - vt_pos)
    refs = []
    for slot, off, fmt, value in layout:
        if fmt in _REFS:
            refs.append((off, fmt, value))
        else:
            struct.pack_into("<" + fmt, body, off, value)
    buf += body
    for off, fmt, value in refs:
        if fmt == "str":
            _align(buf, 4)
            target = len(buf)
            raw = value.encode("utf-8")
            buf += struct.pack("<I", len(raw)) + raw + b"\0"
        elif fmt == "vec":  # (element format, values)
            efmt, values = value
            esize = struct.calcsize(efmt)
            _align(buf, max(4, esize), 4)
            target = len(buf)
            buf += struct.pack(f"<I{len(values)}{efmt}", len(values), *values)
        elif fmt == "table":
            target = _write_table(buf, value)
        else:  # vector of tables
            _align(buf, 4)
            target = len(buf)
            buf += struct.pack("<I", len(value)) + bytes(4 * len(value))
            for i, t in enumerate(value):
                tp = _write_table(buf, t)
                struct.pack_into("<I", buf, target + 4 + 4 * i, tp - (target + 4 + 4 * i))
        struct.pack_into("<I", buf, tpos + off, target - (tpos + off))
    return tpos


def header_bytes(*, name: str, geometry_type: int, columns: list[tuple[str, int]], count: int,
                 envelope: list[float] | None, srid: int | None, title: str, description: str) -> bytes:
    """The size-prefixed Header FlatBuffer."""
    h = _Table().ref(0, "str", name).scalar(2, "B", geometry_type)
    if envelope is not None:
        h.ref(1, "vec", ("d", envelope))
    if columns:
        h.ref(7, "tables", [_Table().ref(0, "str", c).scalar(1, "B", t) for c, t in columns])
    h.scalar(8, "Q", count)
    if count == 0:
        h.scalar(9, "H", 0)  # no features: no index
    if srid:
        h.ref(10, "table", _Table().ref(0, "str", "EPSG").scalar(1, "i", srid))
    if title:
        h.ref(11, "str", title)
    if description:
        h.ref(12, "str", description)
    buf = bytearray(8)  # root offset, then padding so that the tables are 8-aligned
    root = _write_table(buf, h)
    struct.pack_into("<I", buf, 0, root)
    _align(buf, 8)
    return struct.pack("<I", len(buf)) + bytes(buf)


def hilbert(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The Hilbert code of 16-bit cell coordinates (the fast bit-twiddling form FlatGeobuf uses)."""
    x = x.astype(np.uint32)
    y = y.astype(np.uint32)
    a = x ^ y
    b = 0xFFFF ^ a
    c = 0xFFFF ^ (x | y)
    d = x & (y ^ 0xFFFF)
    A = a | (b >> 1)
    B = (a >> 1) ^ a
    C = ((c >> 1) ^ (b & (d >> 1))) ^ c
    D = ((a & (c >> 1)) ^ (d >> 1)) ^ d
    a, b, c, d = A, B, C, D
    A = (a & (a >> 2)) ^ (b & (b >> 2))
    B = (a & (b >> 2)) ^ (b & ((a ^ b) >> 2))
    C = C ^ ((a & (c >> 2)) ^ (b & (d >> 2)))
    D = D ^ ((b & (c >> 2)) ^ ((a ^ b) & (d >> 2)))
    a, b, c, d = A, B, C, D
    A = (a & (a >> 4)) ^ (b & (b >> 4))
    B = (a & (b >> 4)) ^ (b & ((a ^ b) >> 4))
    C = C ^ ((a & (c >> 4)) ^ (b & (d >> 4)))
    D = D ^ ((b & (c >> 4)) ^ ((a ^ b) & (d >> 4)))
    a, b, c, d = A, B, C, D
    C = C ^ ((a & (c >> 8)) ^ (b & (d >> 8)))
    D = D ^ ((b & (c >> 8)) ^ ((a ^ b) & (d >> 8)))
    a = C ^ (C >> 1)
    b = D ^ (D >> 1)
    i0 = x ^ y
    i1 = b | (0xFFFF ^ (i0 | a))
    i0 = (i0 | (i0 << 8)) & 0x00FF00FF
    i0 = (i0 | (i0 << 4)) & 0x0F0F0F0F
    i0 = (i0 | (i0 << 2)) & 0x33333333
    i0 = (i0 | (i0 << 1)) & 0x55555555
    i1 = (i1 | (i1 << 8)) & 0x00FF00FF
    i1 = (i1 | (i1 << 4)) & 0x0F0F0F0F
    i1 = (i1 | (i1 << 2)) & 0x33333333
    i1 = (i1 | (i1 << 1)) & 0x55555555
    return ((i1 << 1) | i0).astype(np.uint32)


def hilbert_order(boxes: np.ndarray, ties: np.ndarray | None = None) -> np.ndarray:
    """Feature order of the packed Hilbert R-tree: descending Hilbert code of the box centres (as GDAL's
    writer sorts), then ascending ``ties`` if given."""
    if boxes.shape[0] == 0:
        return np.zeros(0, np.int64)
    minx, miny = boxes[:, 0].min(), boxes[:, 1].min()
    width, height = boxes[:, 2].max() - minx, boxes[:, 3].max() - miny
    hmax = (1 << 16) - 1
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    hx = np.floor(hmax * (cx - minx) / width) if width else np.zeros(cx.size)
    hy = np.floor(hmax * (cy - miny) / height) if height else np.zeros(cy.size)
    codes = ~hilbert(hx, hy)  # ~code: descending
    if ties is None:
        return np.argsort(codes)
    if ties.size and ties.min() >= 0 and ties.max() < 1 << 32:  # one 64-bit key sorts faster than two
        return np.argsort((codes.astype(np.uint64) << np.uint64(32)) | ties.astype(np.uint64))
    return np.lexsort((ties, codes))


def packed_rtree(boxes: np.ndarray, offsets: np.ndarray, node_size: int = NODE_SIZE) -> np.ndarray:
    """The packed R-tree's nodes (root first) over leaves ``boxes`` with feature byte ``offsets``.

    Each node is minx, miny, maxx, maxy (float64) and an offset (uint64): for a leaf the byte offset
    of its feature in the features section, for an inner node the index of its first child.
    """
    n = boxes.shape[0]
    level_sizes = [n]
    m = n
    while m != 1:
        m = -(-m // node_size)
        level_sizes.append(m)
    total = sum(level_sizes)
    nodes = np.empty((total, 5), np.float64)
    as_u64 = nodes.view(np.uint64)
    start = total - n
    cols = [np.ascontiguousarray(boxes[:, i]) for i in range(4)]
    nodes[start:, :4] = boxes
    as_u64[start:, 4] = offsets
    for size in level_sizes[1:]:
        groups = np.arange(0, cols[0].size, node_size)
        cols = [np.minimum.reduceat(cols[0], groups), np.minimum.reduceat(cols[1], groups),
                np.maximum.reduceat(cols[2], groups), np.maximum.reduceat(cols[3], groups)]
        parent = start - size
        for i in range(4):
            nodes[parent:start, i] = cols[i]
        as_u64[parent:start, 4] = start + groups
        start = parent
    return nodes


# ------------------------------------------------------------------------------------------------
# the writer
# ------------------------------------------------------------------------------------------------
class _Background:
    """Writes (and hashes) buffers in a thread while the caller prepares the next one.

    ``file.write`` and ``hashlib`` release the GIL, so the kernel's copy into the page cache and the
    SHA-256 overlap the encoding. At most one buffer waits: memory stays bounded.
    """

    def __init__(self, file, hasher=None) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._file, self._hasher = file, hasher
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="gis-fgb-write")
        self._pending = None

    def _do(self, data) -> None:
        self._file.write(data)
        if self._hasher is not None:
            self._hasher.update(data)

    def write(self, data) -> None:
        self.wait()
        self._pending = self._pool.submit(self._do, data)

    def wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)


def write(batches: Iterable[pa.RecordBatch], schema: pa.Schema, path: Path, *, geometry: str,
          geometry_type: str, srid: int | None, name: str, title: str = "", description: str = "",
          chunk: int = 65_536, hasher=None, memory: int = MEMORY, tiebreak: str | None = None) -> int:
    """Write a FlatGeobuf file with a packed Hilbert R-tree from Arrow batches.

    The features are encoded batch by batch and kept (up to ``memory`` bytes, then in a side file
    ``<path>.features``) until the last box is known; then the header, the index and the features in
    index order are written, each feature copied once from where it was kept.

    Parameters
    ----------
    batches : iterable of pyarrow.RecordBatch
        The features: property columns and the WKB geometry column ``geometry``.
    schema : pyarrow.Schema
        Their schema (checked before the first batch is read).
    path : Path
        The file to write.
    geometry : str
        The geometry column.
    geometry_type : str
        The layer's geometry type (Point ... MultiPolygon).
    srid : int or None
        EPSG code of the coordinates.
    name, title, description : str
        The header's dataset name, title and description.
    chunk : int
        Features copied at once into the final file.
    hasher : hashlib object, optional
        Updated with every byte of the file as it is written (the caller's checksum, without
        reading the file again).
    memory : int
        Bytes of encoded features kept in memory; the rest waits in the side file (removed at the end).
    tiebreak : str, optional
        An integer column ordering the features of equal Hilbert code (else: the order they came in).

    Returns
    -------
    int
        The number of features.

    Raises
    ------
    Unsupported
        The layer holds something this writer does not encode (the caller removes ``path`` and
        writes the layer another way).
    """
    layer_type = GEOMETRY_TYPES.get(geometry_type)
    if layer_type is None:
        raise Unsupported(f"geometry type {geometry_type}")
    names = [f.name for f in schema if f.name != geometry]
    kinds = [_column_kind(schema.field(c).type) for c in names]
    side = path.with_name(path.name + ".features")
    sizes_l, boxes_l, ties_l = [], [], []
    kept: list = []  # per batch: its buffer, or (offset, size) in the side file
    held = spilled = 0
    side_file = spill = None
    try:
        try:
            for batch in batches:
                if batch.num_rows == 0:
                    continue
                buf, sizes, boxes = encode_batch(batch, geometry, layer_type, kinds, names)
                sizes_l.append(sizes)
                boxes_l.append(boxes)
                if tiebreak is not None:  # a copy: a view would keep the whole batch alive
                    ties_l.append(_values(batch.column(tiebreak).cast(pa.int64()), "<i8").copy())
                if side_file is None and held + buf.size <= memory:
                    kept.append(buf)
                    held += buf.size
                    continue
                if side_file is None:
                    side_file = open(side, "wb")  # noqa: SIM115 - closed below, removed in finally
                    spill = _Background(side_file)
                spill.write(buf)
                kept.append((spilled, buf.size))
                spilled += buf.size
        finally:
            if spill is not None:
                spill.close()
            if side_file is not None:
                side_file.close()
        sizes = np.concatenate(sizes_l) if sizes_l else np.zeros(0, np.int64)
        boxes = np.concatenate(boxes_l) if boxes_l else np.zeros((0, 4))
        count = sizes.size
        order = hilbert_order(boxes, np.concatenate(ties_l) if ties_l else None)
        envelope = None
        if count:
            envelope = [float(boxes[:, 0].min()), float(boxes[:, 1].min()), float(boxes[:, 2].max()),
                        float(boxes[:, 3].max())]
        header = header_bytes(name=name, geometry_type=layer_type,
                              columns=[(c, k[0]) for c, k in zip(names, kinds, strict=True)], count=count,
                              envelope=envelope, srid=srid, title=title, description=description)
        with open(path, "wb") as out:
            bg = _Background(out, hasher)
            try:
                bg.write(MAGIC + header)
                if count == 0:
                    return 0
                sorted_sizes = sizes[order]
                offsets = np.zeros(count, np.int64)
                np.cumsum(sorted_sizes[:-1], out=offsets[1:])
                bg.write(packed_rtree(boxes[order], offsets).data)
                mapping: list = []  # the side file and its read-only mapping, if batches were spilled
                try:
                    buffers = _kept_buffers(kept, side, mapping)
                    views = _views(sizes_l)
                    for i in range(0, count, chunk):
                        v = views[order[i:i + chunk]]
                        part = pa.Array.from_buffers(pa.binary_view(), len(v),
                                                     [None, pa.py_buffer(v), *buffers])
                        part = part.cast(pa.large_binary())
                        pb = part.buffers()
                        po = np.frombuffer(pb[1], dtype=np.int64)[part.offset:part.offset + len(part) + 1]
                        bg.write(pb[2].slice(int(po[0]), int(po[-1] - po[0])))
                        del part, pb
                finally:
                    bg.wait()  # the last write may refer to the mapping
                    buffers = kept = None
                    if mapping:
                        mapping[1].close()
                        mapping[0].close()
            finally:
                bg.close()
        return count
    finally:
        try:
            os.unlink(side)
        except FileNotFoundError:
            pass


def _views(sizes_l: list[np.ndarray]) -> np.ndarray:
    """Arrow binary-view structs (length, first 4 bytes, buffer, offset) of every kept feature."""
    n = sum(s.size for s in sizes_l)
    views = np.empty((n, 4), np.int32)
    at = 0
    for b, sizes in enumerate(sizes_l):
        m = sizes.size
        views[at:at + m, 0] = sizes
        views[at:at + m, 1] = sizes - 4  # a feature starts with its size prefix
        views[at:at + m, 2] = b
        views[at + 1:at + m, 3] = np.cumsum(sizes[:-1])
        views[at, 3] = 0
        at += m
    return views


def _kept_buffers(kept: list, side: Path, mapping: list) -> list:
    """The kept batches as Arrow buffers: in memory, or slices of the side file mapped read-only
    (the file and the mapping are appended to ``mapping``, for the caller to close)."""
    buffers = []
    whole = None
    for k in kept:
        if isinstance(k, tuple):
            if whole is None:
                f = open(side, "rb")  # noqa: SIM115 - closed by the caller
                mapping.append(f)
                mapping.append(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))
                whole = pa.py_buffer(mapping[1])
            buffers.append(whole.slice(*k))
        else:
            buffers.append(k)
    return buffers
