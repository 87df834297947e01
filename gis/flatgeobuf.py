"""FlatGeobuf files with a spatial index, assembled from encoded features.

A FlatGeobuf file is ``magic | header size | header | packed Hilbert R-tree | features``, where every
feature is a size-prefixed FlatBuffer (https://flatgeobuf.org). The features themselves are encoded
elsewhere (by PostGIS's ``ST_AsFlatGeobuf``, in :mod:`gis.downloads`); this module does the rest, which
is where a general-purpose writer spends most of its time:

* :func:`read_chunk` reads a FlatGeobuf file *without* an index (one chunk of a layer as PostGIS
  encodes it) into its header fields and the byte offsets of its features;
* :func:`hilbert_order` sorts feature boxes along the Hilbert curve over the layer's extent and
  :func:`packed_rtree` builds the index (the same packed R-tree as the reference implementation:
  node size 16, leaves in Hilbert order, root first), both vectorised with numpy;
* :func:`header` writes the final header (schema, CRS, feature count, extent, title, description)
  with the ``flatbuffers`` runtime;
* :class:`Assembler` collects chunks in a side file, then writes the final file: header, index, and
  the features in index order.

Memory: about 100 bytes per feature (boxes, offsets, the index), never the features themselves.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = b"fgb\x03fgb\x01"
#: node size of the index (the format's default, what GDAL writes)
NODE_SIZE = 16
#: FlatGeobuf ColumnType values used here
COLUMN_TYPES = {"Byte": 0, "UByte": 1, "Bool": 2, "Short": 3, "UShort": 4, "Int": 5, "UInt": 6, "Long": 7,
                "ULong": 8, "Float": 9, "Double": 10, "String": 11, "Json": 12, "DateTime": 13, "Binary": 14}
_NODE = np.dtype([("minx", "<f8"), ("miny", "<f8"), ("maxx", "<f8"), ("maxy", "<f8"), ("offset", "<u8")])
_U32 = struct.Struct("<I")


class FormatError(ValueError):
    """A chunk is not the FlatGeobuf this module expects (e.g. it already has an index)."""


@dataclass(frozen=True)
class Column:
    """A column of the header's schema."""

    name: str
    type: int


@dataclass(frozen=True)
class Chunk:
    """What :func:`read_chunk` finds in one FlatGeobuf chunk."""

    geometry_type: int
    has_z: bool
    has_m: bool
    columns: tuple[Column, ...]
    features_start: int  # offset of the first feature's size prefix in the chunk
    offsets: np.ndarray  # uint64, each feature's offset relative to features_start
    sizes: np.ndarray  # uint32, each feature's length with its 4-byte size prefix


# --- reading the FlatBuffer tables of a header ----------------------------------------------------
def _u32(buf, pos: int) -> int:
    return _U32.unpack_from(buf, pos)[0]


class _Table:
    """A FlatBuffer table in ``buf`` at ``pos`` (little-endian, as the format says)."""

    def __init__(self, buf, pos: int) -> None:
        self.buf, self.pos = buf, pos
        self.vtable = pos - struct.unpack_from("<i", buf, pos)[0]
        self.vsize = struct.unpack_from("<H", buf, self.vtable)[0]

    def _field(self, index: int) -> int:
        at = 4 + 2 * index
        if at >= self.vsize:
            return 0
        return struct.unpack_from("<H", self.buf, self.vtable + at)[0]

    def scalar(self, index: int, fmt: str, default):
        o = self._field(index)
        return struct.unpack_from("<" + fmt, self.buf, self.pos + o)[0] if o else default

    def string(self, index: int) -> str | None:
        o = self._field(index)
        if not o:
            return None
        at = self.pos + o + _u32(self.buf, self.pos + o)
        return bytes(self.buf[at + 4:at + 4 + _u32(self.buf, at)]).decode("utf-8")

    def tables(self, index: int) -> list[_Table]:
        o = self._field(index)
        if not o:
            return []
        vec = self.pos + o + _u32(self.buf, self.pos + o)
        out = []
        for i in range(_u32(self.buf, vec)):
            at = vec + 4 + 4 * i
            out.append(_Table(self.buf, at + _u32(self.buf, at)))
        return out


def read_chunk(buf) -> Chunk:
    """The header fields and the feature offsets of a FlatGeobuf file without an index.

    Parameters
    ----------
    buf : bytes-like
        A whole FlatGeobuf file (e.g. what ``ST_AsFlatGeobuf(row, false)`` returns).

    Raises
    ------
    FormatError
        Not FlatGeobuf, an index present, or a truncated feature.
    """
    if len(buf) < 12 or bytes(buf[:3]) != b"fgb" or bytes(buf[4:7]) != b"fgb":
        raise FormatError("not a FlatGeobuf file")
    size = _u32(buf, 8)
    head = memoryview(buf)[12:12 + size]
    root = _Table(head, _u32(head, 0))
    if root.scalar(9, "H", NODE_SIZE) != 0:
        raise FormatError("the chunk has a spatial index")
    columns = tuple(Column(c.string(0) or "", c.scalar(1, "B", 0)) for c in root.tables(7))
    start = 12 + size
    offsets, sizes = _scan(buf, start)
    return Chunk(root.scalar(2, "B", 0), bool(root.scalar(3, "?", False)), bool(root.scalar(4, "?", False)),
                 columns, start, offsets, sizes)


def _scan(buf, start: int) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (from ``start``) and prefixed sizes of the size-prefixed features from ``start`` on."""
    end = len(buf)
    pos = start
    unpack = _U32.unpack_from
    lengths = []
    append = lengths.append
    while pos < end:
        n = unpack(buf, pos)[0] + 4
        append(n)
        pos += n
    if pos != end:
        raise FormatError("a feature runs past the end of the chunk")
    sizes = np.fromiter(lengths, dtype=np.uint32, count=len(lengths))
    offsets = np.zeros(len(sizes), dtype=np.uint64)
    if len(sizes) > 1:
        np.cumsum(sizes[:-1], dtype=np.uint64, out=offsets[1:])
    return offsets, sizes


# --- properties ------------------------------------------------------------------------------------
#: bytes of a fixed-size value by ColumnType; the others (String, Json, DateTime, Binary) are
#: a uint32 length and that many bytes
_FIXED = {0: 1, 1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 8, 8: 8, 9: 4, 10: 8}


def property_indices(feature) -> list[int]:
    """The column indices of the values in one feature's properties (``feature``: the FlatBuffer
    without its size prefix). Only columns of fixed size can be stepped over without the schema, so
    this is for probes whose values are all Int (4 bytes)."""
    t = _Table(feature, _u32(feature, 0))
    o = t._field(1)
    if not o:
        return []
    vec = t.pos + o + _u32(feature, t.pos + o)
    end = vec + 4 + _u32(feature, vec)
    out, p = [], vec + 4
    while p < end:
        out.append(struct.unpack_from("<H", feature, p)[0])
        p += 6
    return out


def renumber_properties(buf: bytearray, chunk: Chunk, rows: np.ndarray, nulls: np.ndarray) -> None:
    """Give the values of some features their true column index, in place.

    PostGIS 3.3's ``ST_AsFlatGeobuf`` numbers the values it writes 0, 1, 2... skipping NULLs, instead
    of by column, so a NULL shifts every later value onto the wrong column. ``rows`` are the features
    (indices in the chunk) that hold a NULL, ``nulls`` their bit masks (bit i: column i is NULL); the
    k-th value written is the k-th non-NULL column. The values' sizes do not change.
    """
    types = [c.type for c in chunk.columns]
    ncols = len(types)
    unpack_h, pack_h = struct.Struct("<H").unpack_from, struct.Struct("<H").pack_into
    for row, mask in zip(rows.tolist(), nulls.tolist(), strict=True):
        present = [i for i in range(ncols) if not (mask >> i) & 1]
        base = chunk.features_start + int(chunk.offsets[row]) + 4
        t = _Table(buf, base + _u32(buf, base))
        o = t._field(1)
        if not o:
            continue
        vec = t.pos + o + _u32(buf, t.pos + o)
        end = vec + 4 + _u32(buf, vec)
        p = vec + 4
        while p < end:
            k = unpack_h(buf, p)[0]
            if k >= len(present):
                raise FormatError("a feature has more values than non-NULL columns")
            col = present[k]
            pack_h(buf, p, col)
            size = _FIXED.get(types[col])
            p += 2 + (size if size is not None else 4 + _u32(buf, p + 2))


# --- the spatial index ----------------------------------------------------------------------------
def _hilbert(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The Hilbert index of 16-bit grid cells (uint32 arrays; the branch-free form of the curve)."""
    f = np.uint32(0xFFFF)
    a = x ^ y
    b = f ^ a
    c = f ^ (x | y)
    d = x & (y ^ f)
    aa = a | (b >> 1)
    bb = (a >> 1) ^ a
    cc = ((c >> 1) ^ (b & (d >> 1))) ^ c
    dd = ((a & (c >> 1)) ^ (d >> 1)) ^ d
    for shift in (2, 4):
        a, b, c, d = aa, bb, cc, dd
        s = np.uint32(shift)
        aa = (a & (a >> s)) ^ (b & (b >> s))
        bb = (a & (b >> s)) ^ (b & ((a ^ b) >> s))
        cc = c ^ ((a & (c >> s)) ^ (b & (d >> s)))
        dd = d ^ ((b & (c >> s)) ^ ((a ^ b) & (d >> s)))
    a, b, c, d = aa, bb, cc, dd
    s = np.uint32(8)
    cc = c ^ ((a & (c >> s)) ^ (b & (d >> s)))
    dd = d ^ ((b & (c >> s)) ^ ((a ^ b) & (d >> s)))
    a = cc ^ (cc >> np.uint32(1))
    b = dd ^ (dd >> np.uint32(1))
    i0 = x ^ y
    i1 = b | (f ^ (i0 | a))
    for shift, mask in ((8, 0x00FF00FF), (4, 0x0F0F0F0F), (2, 0x33333333), (1, 0x55555555)):
        i0 = (i0 | (i0 << np.uint32(shift))) & np.uint32(mask)
        i1 = (i1 | (i1 << np.uint32(shift))) & np.uint32(mask)
    return (i1 << np.uint32(1)) | i0


def extent(boxes: np.ndarray) -> tuple[float, float, float, float]:
    """(minx, miny, maxx, maxy) of an (n, 4) array of boxes."""
    return (float(boxes[:, 0].min()), float(boxes[:, 1].min()), float(boxes[:, 2].max()),
            float(boxes[:, 3].max()))


def hilbert_order(boxes: np.ndarray) -> np.ndarray:
    """The order of the boxes along the Hilbert curve of their centres (descending, as the reference
    implementation sorts), on a 65,535 x 65,535 grid over their extent."""
    minx, miny, maxx, maxy = extent(boxes)
    top = 65535.0

    def cell(lo: np.ndarray, hi: np.ndarray, origin: float, width: float) -> np.ndarray:
        if not width > 0:
            return np.zeros(len(lo), dtype=np.uint32)
        v = np.floor(top * ((lo + hi) / 2 - origin) / width)
        return np.clip(v, 0, top).astype(np.uint32)

    h = _hilbert(cell(boxes[:, 0], boxes[:, 2], minx, maxx - minx),
                 cell(boxes[:, 1], boxes[:, 3], miny, maxy - miny))
    return np.argsort(~h, kind="stable")


def _level_sizes(n: int, node_size: int) -> list[int]:
    """Nodes per level, leaves first (the reference implementation's level bounds)."""
    sizes = [n]
    while True:
        n = (n + node_size - 1) // node_size
        sizes.append(n)
        if n == 1:
            return sizes


def packed_rtree(boxes: np.ndarray, offsets: np.ndarray, node_size: int = NODE_SIZE) -> np.ndarray:
    """The packed R-tree of boxes already in Hilbert order: a structured array of nodes, root first.

    Parameters
    ----------
    boxes : numpy.ndarray
        (n, 4) minx, miny, maxx, maxy of the features, in the order they are written.
    offsets : numpy.ndarray
        Byte offset of each feature in the features section (what a leaf points to).
    """
    sizes = _level_sizes(len(boxes), node_size)
    total = sum(sizes)
    nodes = np.empty(total, dtype=_NODE)
    starts = []  # first node of each level, leaves first; the levels are stored root first
    at = total
    for s in sizes:
        at -= s
        starts.append(at)
    leaves = nodes[starts[0]:]
    leaves["minx"], leaves["miny"], leaves["maxx"], leaves["maxy"] = boxes.T
    leaves["offset"] = offsets
    for level in range(len(sizes) - 1):
        child = nodes[starts[level]:starts[level] + sizes[level]]
        n, pad = sizes[level + 1], sizes[level + 1] * node_size - sizes[level]
        parent = nodes[starts[level + 1]:starts[level + 1] + n]
        for key, fn, fill in (("minx", np.min, np.inf), ("miny", np.min, np.inf),
                              ("maxx", np.max, -np.inf), ("maxy", np.max, -np.inf)):
            v = np.concatenate([child[key], np.full(pad, fill)]) if pad else child[key]
            parent[key] = fn(v.reshape(n, node_size), axis=1)
        parent["offset"] = starts[level] + np.arange(0, sizes[level], node_size, dtype=np.uint64)
    return nodes


# --- the header -------------------------------------------------------------------------------------
def header(*, name: str, geometry_type: int, has_z: bool, has_m: bool, columns: tuple[Column, ...],
           features_count: int, envelope: tuple[float, float, float, float] | None, srid: int | None,
           indexed: bool, title: str = "", description: str = "") -> bytes:
    """The header FlatBuffer (without the size prefix)."""
    import flatbuffers

    b = flatbuffers.Builder(1024)

    def string(s: str | None) -> int | None:
        return b.CreateString(s) if s else None

    col_offsets = []
    for c in columns:
        n = b.CreateString(c.name)
        b.StartObject(11)
        b.PrependUOffsetTRelativeSlot(0, n, 0)
        b.PrependUint8Slot(1, c.type, 0)
        col_offsets.append(b.EndObject())
    b.StartVector(4, len(col_offsets), 4)
    for o in reversed(col_offsets):
        b.PrependUOffsetTRelative(o)
    cols = b.EndVector()
    env = None
    if envelope is not None:
        b.StartVector(8, 4, 8)
        for v in reversed(envelope):
            b.PrependFloat64(v)
        env = b.EndVector()
    crs = None
    if srid:
        org = b.CreateString("EPSG")
        b.StartObject(6)
        b.PrependUOffsetTRelativeSlot(0, org, 0)
        b.PrependInt32Slot(1, srid, 0)
        crs = b.EndObject()
    name_o, title_o, desc_o = string(name), string(title), string(description)
    b.StartObject(14)
    if name_o:
        b.PrependUOffsetTRelativeSlot(0, name_o, 0)
    if env is not None:
        b.PrependUOffsetTRelativeSlot(1, env, 0)
    b.PrependUint8Slot(2, geometry_type, 0)
    b.PrependBoolSlot(3, has_z, False)
    b.PrependBoolSlot(4, has_m, False)
    b.PrependUOffsetTRelativeSlot(7, cols, 0)
    b.PrependUint64Slot(8, features_count, 0)
    b.PrependUint16Slot(9, NODE_SIZE if indexed else 0, NODE_SIZE)
    if crs is not None:
        b.PrependUOffsetTRelativeSlot(10, crs, 0)
    if title_o:
        b.PrependUOffsetTRelativeSlot(11, title_o, 0)
    if desc_o:
        b.PrependUOffsetTRelativeSlot(12, desc_o, 0)
    b.Finish(b.EndObject())
    return bytes(b.Output())


# --- putting a file together ------------------------------------------------------------------------
class Assembler:
    """Collects chunks of encoded features, then writes the indexed FlatGeobuf file.

    The features go to a side file (``<out>.features``) as they come, their boxes and offsets to
    memory; :meth:`write` sorts them along the Hilbert curve, builds the index, and writes the header,
    the index and the features in index order. The caller removes the side file (its name starts
    with the output's).
    """

    def __init__(self, out: Path) -> None:
        self.out = out
        self.side = out.with_name(out.name + ".features")
        self._f = open(self.side, "wb")  # noqa: SIM115 - closed in write() / close()
        self._size = 0
        self._offsets: list[np.ndarray] = []
        self._sizes: list[np.ndarray] = []
        self._boxes: list[np.ndarray] = []
        self.first: Chunk | None = None
        self.count = 0

    def add(self, buf, boxes: np.ndarray, nulls: np.ndarray | None = None) -> int:
        """Add one chunk (a FlatGeobuf file without index) and the boxes of its features, in order.

        ``nulls``: per feature, a bit mask of its NULL columns, when the encoder numbered the values
        in the order written (see :func:`renumber_properties`); None when it numbered them by column.
        Returns the number of features added. Raises :class:`FormatError` when the chunk's schema or
        geometry type differs from the first chunk's, or the box count from the feature count.
        """
        chunk = read_chunk(buf)
        if nulls is not None and len(nulls) == len(chunk.sizes):
            rows = np.flatnonzero(nulls)
            if len(rows):
                if len(chunk.columns) > 63:
                    raise FormatError("more than 63 columns")
                buf = bytearray(buf)
                renumber_properties(buf, chunk, rows, nulls[rows])
        if self.first is None:
            self.first = chunk
        elif (chunk.columns, chunk.geometry_type, chunk.has_z, chunk.has_m) != (
                self.first.columns, self.first.geometry_type, self.first.has_z, self.first.has_m):
            raise FormatError("the chunks of the layer differ in schema or geometry type")
        if len(boxes) != len(chunk.sizes) or (nulls is not None and len(nulls) != len(chunk.sizes)):
            raise FormatError(f"{len(boxes)} boxes for {len(chunk.sizes)} features")
        self._f.write(memoryview(buf)[chunk.features_start:])
        self._offsets.append(chunk.offsets + np.uint64(self._size))
        self._sizes.append(chunk.sizes)
        self._boxes.append(boxes)
        self._size += len(buf) - chunk.features_start
        self.count += len(chunk.sizes)
        return len(chunk.sizes)

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()

    def write(self, *, name: str, srid: int | None, title: str = "", description: str = "",
              column_types: dict[str, int] | None = None) -> int:
        """Write the indexed file to ``out``; the number of features.

        ``column_types`` overrides the type of named columns in the header (e.g. DateTime for a
        column the encoder was given as ISO 8601 text: both are stored as strings).
        """
        self.close()
        if self.first is None or self.count == 0:
            raise FormatError("no features")
        offsets = np.concatenate(self._offsets)
        sizes = np.concatenate(self._sizes)
        boxes = np.ascontiguousarray(np.concatenate(self._boxes), dtype=np.float64)
        self._offsets, self._sizes, self._boxes = [], [], []
        order = hilbert_order(boxes)
        sorted_sizes = sizes[order]
        new_offsets = np.zeros(len(order), dtype=np.uint64)
        if len(order) > 1:
            np.cumsum(sorted_sizes[:-1], dtype=np.uint64, out=new_offsets[1:])
        nodes = packed_rtree(boxes[order], new_offsets)
        del new_offsets
        types = column_types or {}
        columns = tuple(Column(c.name, types.get(c.name, c.type)) for c in self.first.columns)
        head = header(name=name, geometry_type=self.first.geometry_type, has_z=self.first.has_z,
                      has_m=self.first.has_m, columns=columns, features_count=self.count,
                      envelope=extent(boxes), srid=srid, indexed=True, title=title, description=description)
        del boxes
        starts = offsets[order].tolist()
        lengths = sorted_sizes.tolist()
        del offsets, sizes, order, sorted_sizes
        with open(self.out, "wb") as out, open(self.side, "rb") as side:
            out.write(MAGIC)
            out.write(_U32.pack(len(head)))
            out.write(head)
            out.write(nodes.tobytes())
            del nodes
            if self._size:
                with mmap.mmap(side.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                    view = memoryview(mm)
                    try:
                        _copy_in_order(view, starts, lengths, out)
                    finally:
                        view.release()
        self.side.unlink(missing_ok=True)
        return self.count


def _copy_in_order(view: memoryview, starts: list[int], lengths: list[int], out, block: int = 8 << 20) -> None:
    buf = bytearray()
    for s, n in zip(starts, lengths, strict=True):
        buf += view[s:s + n]
        if len(buf) >= block:
            out.write(buf)
            buf.clear()
    if buf:
        out.write(buf)
