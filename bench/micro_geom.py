#!/usr/bin/env python
"""Client CPU of each geometry step of normalise (per 1M parcels, extrapolated from 100k), incl.
make_valid (which the synthetic file never triggers: it has no invalid parcel).

    .venv/bin/python bench/micro_geom.py
"""
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
import shapely  # noqa: E402

import ingest_bench as ib  # noqa: E402
from gis import crs as gcrs  # noqa: E402
from ingest.reader import iter_batches, open_source  # noqa: E402


def main():
    src = open_source(ib.dataset(100_000, 2025, ib.OUT)[0])
    wkb = np.concatenate([b.wkb for b in iter_batches(src, 50_000)])
    tr = gcrs.make_transformer(gcrs.resolve_crs(src.crs, None))
    scale = 1_000_000 / len(wkb)
    g = shapely.from_wkb(wkb)
    steps = [
        ("from_wkb", lambda: shapely.from_wkb(wkb)),
        ("has_z (instead of force_2d)", lambda: shapely.has_z(g)),
        ("force_2d", lambda: shapely.force_2d(g)),
        ("is_valid", lambda: shapely.is_valid(g)),
        ("make_valid (all, as if every parcel were invalid)", lambda: shapely.make_valid(g)),
        ("reproject (gis.crs transform_geoms)", lambda: tr.transform_geoms(g)),
        ("normalize", lambda: shapely.normalize(g)),
        ("orient_polygons", lambda: shapely.orient_polygons(g, exterior_cw=False)),
        ("set_srid", lambda: shapely.set_srid(g, 4326)),
        ("to_wkb (EWKB)", lambda: shapely.to_wkb(g, include_srid=True)),
        ("total_bounds", lambda: shapely.total_bounds(g)),
    ]
    print("| step | client CPU s per 1M parcels |\n|---|---:|")
    for name, fn in steps:
        best = min(_cpu(fn) for _ in range(3))
        print(f"| {name} | {best * scale:.2f} |")


def _cpu(fn):
    c = time.process_time()
    fn()
    return time.process_time() - c


if __name__ == "__main__":
    main()
