"""The FlatGeobuf writer of exports (gis.flatgeobuf) against GDAL's own FlatGeobuf writer.

The judge is GDAL: the same Arrow data is written by :func:`gis.flatgeobuf.write` and by GDAL's
FlatGeobuf driver (pyogrio), and GDAL must read both back identically (schema, values, feature order,
layer metadata, answers to spatial filters). The demo layers, exported from a real PostGIS database,
must read back as GDAL's own export of the same snapshot does. Debian's older GDAL (ogrinfo) must read
the files too. (The demo layers exported from PostGIS: tests/gis/test_downloads.py.)
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyogrio
import pytest
import shapely

from gis import flatgeobuf as fgb

UTC = dt.UTC


def _columns(n: int, rng: np.random.Generator) -> dict[str, pa.Array]:
    """One column of every supported type, with NULLs, fractions of seconds, Vietnamese text."""
    def nulls(values, every=7):
        return [None if i % every == 3 else v for i, v in enumerate(values)]

    base = dt.datetime(2024, 2, 29, 23, 59, 58, tzinfo=UTC)
    times = [base + dt.timedelta(seconds=int(s), microseconds=int(us))
             for s, us in zip(rng.integers(-10**9, 10**8, n), rng.choice([0, 1, 999, 123456, 999600], n),
                              strict=True)]
    words = ["Phường Bến Nghé", "", "ODT", "Thủ Đức", "x" * 300, "a\"b'c\\d", "đường 3/2"]
    return {
        "i16": pa.array(nulls(rng.integers(-30000, 30000, n).tolist()), pa.int16()),
        "i32": pa.array(nulls(rng.integers(-2**31, 2**31 - 1, n).tolist(), 5), pa.int32()),
        "i64": pa.array(rng.integers(-2**62, 2**62, n).tolist(), pa.int64()),
        "f32": pa.array(nulls(rng.random(n).astype(np.float32).tolist()), pa.float32()),
        "f64": pa.array(nulls((rng.random(n) * 1e6).tolist(), 4), pa.float64()),
        "flag": pa.array(nulls((rng.random(n) > 0.5).tolist(), 6), pa.bool_()),
        "name": pa.array(nulls([words[i % len(words)] for i in range(n)], 5), pa.string()),
        "day": pa.array(nulls([dt.date(1900, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 60000, n)]),
                        pa.date32()),
        "at": pa.array(nulls(times, 8), pa.timestamp("us", tz="UTC")),
        "local": pa.array(nulls([t.replace(tzinfo=None) for t in times], 9), pa.timestamp("us")),
    }


def _geometries(kind: str, n: int, rng: np.random.Generator) -> list:
    """``n`` distinct geometries of ``kind``: holes, several parts, single types in Multi layers."""
    x = rng.random(n) * 0.2 + 106.6
    y = rng.random(n) * 0.2 + 10.7
    out = []
    for i in range(n):
        p = shapely.Point(x[i], y[i])
        line = shapely.LineString([(x[i], y[i]), (x[i] + 0.001, y[i] + 0.0005 * (i % 3)), (x[i] + 0.002, y[i])])
        shell = p.buffer(0.001, quad_segs=1 + i % 4)
        poly = shapely.Polygon(shell.exterior, [p.buffer(0.0003, quad_segs=1).exterior.coords] * (i % 2))
        if i % 5 == 0:  # two holes
            poly = shapely.Polygon(shell.exterior, [shapely.Point(x[i] - 0.0005, y[i]).buffer(0.0002, quad_segs=1)
                                                    .exterior.coords,
                                                    shapely.Point(x[i] + 0.0005, y[i]).buffer(0.0002, quad_segs=1)
                                                    .exterior.coords])
        far = shapely.affinity.translate(poly, 0.01, 0.01)
        out.append({
            "Point": p,
            "LineString": line,
            "Polygon": poly,
            "MultiPoint": shapely.MultiPoint([p, (x[i] + 0.001, y[i])][: 1 + i % 2]) if i % 4 else p,
            "MultiLineString": shapely.MultiLineString([line, shapely.affinity.translate(line, 0, 0.01)][: 1 + i % 2])
            if i % 4 else line,
            "MultiPolygon": shapely.MultiPolygon([poly, far, shapely.affinity.translate(poly, 0.02, 0)][: 1 + i % 3])
            if i % 4 else poly,
        }[kind])
    return out


def _table(kind: str, n: int = 3000, seed: int = 7) -> pa.Table:
    rng = np.random.default_rng(seed)
    cols = _columns(n, rng)
    cols["geometry"] = pa.array(shapely.to_wkb(_geometries(kind, n, rng)).tolist(), pa.binary())
    return pa.table(cols)


def _promoted(table: pa.Table, kind: str) -> pa.Table:
    """The table with single geometries made Multi (GDAL's FlatGeobuf driver refuses a Point in a
    MultiPoint layer; gis.flatgeobuf promotes it, writing what GDAL writes for the Multi one)."""
    if not kind.startswith("Multi"):
        return table
    geoms = shapely.from_wkb(table.column("geometry").to_numpy(zero_copy_only=False))
    single = shapely.get_type_id(geoms) == {"MultiPoint": 0, "MultiLineString": 1, "MultiPolygon": 3}[kind]
    multi = {"MultiPoint": shapely.multipoints, "MultiLineString": shapely.multilinestrings,
             "MultiPolygon": shapely.multipolygons}[kind]
    geoms[single] = [multi([g]) for g in geoms[single]]
    assert single.any()
    return table.set_column(table.schema.get_field_index("geometry"), "geometry",
                            pa.array(shapely.to_wkb(geoms).tolist(), pa.binary()))


def _write_both(table: pa.Table, kind: str, folder: Path, **kw) -> tuple[Path, Path]:
    ours, gdal = folder / f"ours_{kind}.fgb", folder / f"gdal_{kind}.fgb"
    fgb.write(table.to_batches(max_chunksize=700), table.schema, ours, geometry="geometry", geometry_type=kind,
              srid=4326, name="layer", title="Thửa đất / Parcels", description="A description", **kw)
    pyogrio.write_arrow(_promoted(table, kind), str(gdal), layer="layer", driver="FlatGeobuf", geometry_name="geometry",
                        geometry_type=kind, crs="EPSG:4326",
                        layer_options={"SPATIAL_INDEX": "YES", "TITLE": "Thửa đất / Parcels",
                                       "DESCRIPTION": "A description"})
    return ours, gdal


def _same_reading(ours: Path, gdal: Path) -> None:
    """GDAL reads both files identically: schema, every value in file order, layer facts, bbox filters."""
    a, b = pyogrio.read_arrow(str(ours))[1], pyogrio.read_arrow(str(gdal))[1]
    assert a.schema == b.schema
    assert a.num_rows == b.num_rows > 0
    for name in a.column_names:
        assert a.column(name).equals(b.column(name)), name
    info_a, info_b = pyogrio.read_info(str(ours)), pyogrio.read_info(str(gdal))
    for key in ("layer_name", "crs", "geometry_type", "features", "total_bounds", "layer_metadata"):
        assert info_a[key] == info_b[key], key
    assert list(info_a["fields"]) == list(info_b["fields"]) and list(info_a["dtypes"]) == list(info_b["dtypes"])
    assert info_a["capabilities"]["fast_spatial_filter"]
    minx, miny, maxx, maxy = info_a["total_bounds"]
    w, h = maxx - minx, maxy - miny
    for fx, fy, size in ((0.1, 0.1, 0.05), (0.5, 0.4, 0.2), (0.8, 0.7, 0.01), (0.0, 0.0, 1.0)):
        box = (minx + fx * w, miny + fy * h, minx + (fx + size) * w, miny + (fy + size) * h)
        got = pyogrio.read_arrow(str(ours), bbox=box)[1]
        want = pyogrio.read_arrow(str(gdal), bbox=box)[1]
        assert sorted(got.column("i64").to_pylist()) == sorted(want.column("i64").to_pylist()), box


@pytest.mark.parametrize("kind", list(fgb.GEOMETRY_TYPES))
def test_reads_back_as_gdal_writes_it(kind, tmp_path):
    ours, gdal = _write_both(_table(kind), kind, tmp_path)
    _same_reading(ours, gdal)


def test_older_gdal_reads_it_with_its_index(tmp_path):
    """Debian's GDAL (3.6: ogrinfo) verifies the FlatBuffers and answers a spatial filter from the index."""
    if shutil.which("ogrinfo") is None:
        pytest.skip("ogrinfo (Debian gdal-bin) is not installed")
    table = _table("MultiPolygon")
    ours, gdal = _write_both(table, "MultiPolygon", tmp_path)
    x0, y0, x1, y1 = pyogrio.read_info(str(ours))["total_bounds"]
    spat = [str(v) for v in (x0, y0, (x0 + x1) / 2, (y0 + y1) / 2)]
    counts = []
    for path in (ours, gdal):
        run = subprocess.run(["ogrinfo", "-ro", "-al", "-q", "-spat", *spat, str(path)], capture_output=True,
                             text=True, check=True, env={"PATH": "/usr/bin:/bin"})
        assert "ERROR" not in run.stderr, run.stderr
        counts.append(run.stdout.count("OGRFeature("))
        summary = subprocess.run(["ogrinfo", "-ro", "-so", "-al", str(path)], capture_output=True, text=True,
                                 check=True, env={"PATH": "/usr/bin:/bin"}).stdout
        assert f"Feature Count: {table.num_rows}" in summary and "Multi Polygon" in summary
    assert counts[0] == counts[1] > 0


def test_spilled_batches_give_the_same_file(tmp_path):
    """Kept in memory or waiting in the side file: byte for byte the same file, and no side file left."""
    table = _table("MultiPolygon", 2000)
    paths = []
    for memory in (0, 50_000, fgb.MEMORY):
        out = tmp_path / f"m{memory}.fgb"
        n = fgb.write(table.to_batches(max_chunksize=300), table.schema, out, geometry="geometry",
                      geometry_type="MultiPolygon", srid=4326, name="layer", memory=memory)
        assert n == table.num_rows
        paths.append(out.read_bytes())
    assert paths[0] == paths[1] == paths[2]
    assert not list(tmp_path.glob("*.features"))


def test_hashed_as_written(tmp_path):
    import hashlib

    table = _table("Point", 500)
    hasher = hashlib.sha256()
    out = tmp_path / "p.fgb"
    fgb.write(table.to_batches(), table.schema, out, geometry="geometry", geometry_type="Point", srid=4326,
              name="p", hasher=hasher)
    assert hasher.hexdigest() == hashlib.sha256(out.read_bytes()).hexdigest()


def test_empty_layer(tmp_path):
    table = _table("Point", 10).slice(0, 0)
    out = tmp_path / "e.fgb"
    assert fgb.write(table.to_batches(), table.schema, out, geometry="geometry", geometry_type="Point",
                     srid=4326, name="e") == 0
    info = pyogrio.read_info(str(out))  # a count of 0 means "unknown" in FlatGeobuf, as GDAL writes it too
    assert info["features"] == -1 and info["crs"] == "EPSG:4326" and "i64" in list(info["fields"])
    assert pyogrio.read_arrow(str(out))[1].num_rows == 0


@pytest.mark.parametrize("case", ["null geometry", "empty geometry", "z coordinates", "other type",
                                  "decimal column", "layer type unknown"])
def test_what_it_does_not_encode_is_refused(case, tmp_path):
    """Refused with Unsupported (the export then writes the layer with GDAL), never written wrongly."""
    table = _table("Polygon", 50)
    kind = "Polygon"
    geoms = table.column("geometry").to_pylist()
    if case == "null geometry":
        geoms[30] = None
    elif case == "empty geometry":
        geoms[30] = shapely.to_wkb(shapely.Polygon())
    elif case == "z coordinates":
        geoms[30] = shapely.to_wkb(shapely.Polygon([(0, 0, 1), (1, 0, 1), (1, 1, 1), (0, 0, 1)]))
    elif case == "other type":
        geoms[30] = shapely.to_wkb(shapely.Point(1, 2))
    elif case == "decimal column":
        table = table.append_column("d", pa.array([1] * table.num_rows, pa.decimal128(10, 2)))
    else:
        kind = "GeometryCollection"
    table = table.set_column(table.schema.get_field_index("geometry"), "geometry", pa.array(geoms, pa.binary()))
    with pytest.raises(fgb.Unsupported):
        fgb.write(table.to_batches(max_chunksize=20), table.schema, tmp_path / "x.fgb", geometry="geometry",
                  geometry_type=kind, srid=4326, name="x")
    assert not list(tmp_path.glob("*.features"))


def test_hilbert_codes_trace_one_continuous_curve():
    """The first 4^8 codes fill the 256 x 256 corner, each cell next to the one before."""
    xs, ys = np.meshgrid(np.arange(256), np.arange(256))
    codes = fgb.hilbert(xs.ravel(), ys.ravel())
    assert np.array_equal(np.sort(codes), np.arange(65536))
    order = np.argsort(codes)
    steps = np.abs(np.diff(xs.ravel()[order])) + np.abs(np.diff(ys.ravel()[order]))
    assert (steps == 1).all()


@pytest.mark.parametrize("tie", ["i64", "seq"])  # ids beyond 32 bits, small ids
def test_the_row_order_does_not_change_the_file(tie, tmp_path):
    """With a tiebreak column, the rows in any order (a sequential scan) give the same bytes."""
    table = _table("MultiPolygon", 1500)
    table = table.append_column("seq", pa.array(np.arange(table.num_rows), pa.int64()))
    dup = table.take(pa.array(np.r_[np.arange(table.num_rows), np.arange(200)]))  # equal boxes: ties
    dup = dup.set_column(dup.schema.get_field_index(tie), tie,
                         pa.array(np.arange(dup.num_rows) * (2**40 if tie == "i64" else 1), pa.int64()))
    files = []
    for seed in (1, 2):
        shuffled = dup.take(pa.array(np.random.default_rng(seed).permutation(dup.num_rows)))
        out = tmp_path / f"{seed}.fgb"
        fgb.write(shuffled.to_batches(max_chunksize=400), shuffled.schema, out, geometry="geometry",
                  geometry_type="MultiPolygon", srid=4326, name="p", tiebreak=tie)
        files.append(out.read_bytes())
    assert files[0] == files[1]
