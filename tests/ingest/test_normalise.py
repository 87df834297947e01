"""ingest.normalise: the canonical polygon form built with numpy is GEOS's, byte for byte."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import shapely

from ingest.normalise import _simple_polygons_ewkb, canonical_ewkb, ewkb


def _geos(geoms: np.ndarray) -> list[bytes]:
    """What the rows held before: GEOS's normalize, exteriors counter-clockwise, EWKB."""
    return pa.array(ewkb(shapely.orient_polygons(shapely.normalize(geoms), exterior_cw=False), 4326)).to_pylist()


def _polygons(rng: np.random.Generator, n: int) -> np.ndarray:
    """Parcel-sized polygons near HCMC in lon/lat: convex hulls of random points (some with a
    repeated smallest x), started anywhere and turning either way."""
    out = []
    for i in range(n):
        cx, cy = 106.6 + rng.uniform(0, 0.3), 10.7 + rng.uniform(0, 0.2)
        pts = rng.uniform(-1e-4, 1e-4, size=(rng.integers(3, 12), 2)) + (cx, cy)
        if i % 5 == 0:  # two points share the smallest x: the smaller y starts the ring
            j = int(np.argmin(pts[:, 0]))
            pts = np.vstack([pts, [pts[j, 0], pts[j, 1] + 5e-5]])
        ring = np.asarray(shapely.convex_hull(shapely.multipoints(pts)).exterior.coords)[:-1]
        if len(ring) < 3:
            continue
        ring = np.roll(ring, int(rng.integers(len(ring))), axis=0)
        if rng.random() < 0.5:
            ring = ring[::-1]
        out.append(shapely.Polygon(ring))
    return np.array(out, dtype=object)


def test_simple_polygons_match_geos_byte_for_byte():
    geoms = _polygons(np.random.default_rng(3), 3000)
    ours = _simple_polygons_ewkb(geoms, 4326)
    assert ours is not None
    assert ours.to_pylist() == _geos(geoms)


def test_every_polygon_form_matches_geos_in_the_rows_order():
    rng = np.random.default_rng(5)
    simple = list(_polygons(rng, 200))
    with_hole = shapely.Polygon([(0, 0), (0, 10), (10, 10), (10, 0)], [[(2, 2), (4, 2), (4, 4), (2, 4)]])
    multi = shapely.MultiPolygon([shapely.box(5, 5, 6, 6), shapely.box(0, 0, 1, 1)])
    with_z = shapely.Polygon([(1, 1, 5), (0, 1, 5), (0, 0, 5), (1, 0, 5)])
    geoms = np.array(simple[:50] + [with_hole] + simple[50:120] + [multi, with_z] + simple[120:], dtype=object)
    assert pa.array(canonical_ewkb(geoms, "polygon", 4326)).to_pylist() == _geos(geoms)


def test_a_ring_whose_orientation_is_uncertain_is_left_to_geos():
    # a sliver: its area is far below what the coordinates' rounding can decide
    sliver = shapely.Polygon([(106.7, 10.8), (106.7 + 1e-3, 10.8 + 1e-3), (106.7 + 2e-3, 10.8 + 2e-3 + 1e-15)])
    geoms = np.array([sliver, shapely.box(0, 0, 1, 1)], dtype=object)
    assert _simple_polygons_ewkb(geoms, 4326) is None
    assert pa.array(canonical_ewkb(geoms, "polygon", 4326)).to_pylist() == _geos(geoms)


def test_lines_and_points_are_not_reoriented():
    line = shapely.LineString([(1, 1), (0, 0), (2, 0)])
    assert pa.array(canonical_ewkb(np.array([line], dtype=object), "line", 4326)).to_pylist() == \
        pa.array(ewkb(np.array([line], dtype=object), 4326)).to_pylist()
