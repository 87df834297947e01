#!/usr/bin/env python
"""Equivalence checks of the bench/proto.py prototypes against the code they replace.

    .venv/bin/python bench/check_proto.py [FILE.gpkg]

1. normalise_batch with and without the ``convert`` and ``geom`` prototypes gives identical rows
   and rejects, on the batches of a generated file and on a frame of edge-case text values.
2. The numpy binary COPY encoder (``copy``) and psycopg's write_row load identical staging rows.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import ingest_bench as ib  # noqa: E402
import psycopg  # noqa: E402


def normalised(path, batches=2, edge=None):
    import ingest.job as job
    import ingest.merge as m
    from gis import crs as gcrs
    from ingest.kinds import get_kind
    from ingest.mapping import choose_mapping
    from ingest.normalise import Lookups, normalise_batch
    from ingest.reader import Batch, iter_batches, open_source

    kind = get_kind("cadastral")
    src = open_source(path)
    mapping = choose_mapping(kind, src.fields, None)
    resolved = mapping.resolve(kind, src.fields)
    tr = gcrs.make_transformer(gcrs.resolve_crs(src.crs, None))
    lk = Lookups(land_use={"ODT", "CLN", "TMD", "DGD", "DYT", "DGT", "SON", "DKV", "TON"},
                 owner_type={"GDC", "TKT", "UBS", "TCN", "TTG", "CDS"})
    out = []
    it = iter_batches(src, 20_000)
    for i, b in enumerate(it):
        if i >= batches:
            break
        if edge is not None and i == 0:
            k = min(len(edge), len(b.fids))
            attrs = b.attrs.copy().astype(object)
            for c in edge.columns:
                attrs.loc[: k - 1, c] = edge[c].to_numpy()[:k]
            b = Batch(attrs, b.wkb, b.fids)
        job._check_extent(src, gcrs.resolve_crs(src.crs, None), b)
        n = normalise_batch(b, kind, mapping, resolved, tr.transform_geoms, lk, "repair")
        out.append(n)
    del m
    return out


EDGE_TEXT = ["  abc ", "", "nan", "None", " NaN ", "12.0", "\u0661\u0662.0", "x.0", None, np.nan,
             "\u00a0abc\u00a0", "abc\x1c", "a\nb", "ê", " 7.0 ", ".0", "0.0", "Đường  ", "\tODT",
             "odt", "gdc "]


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else ib.dataset(100_000, 2025, ib.OUT)[0]
    edge = pd.DataFrame({
        "DiaChiThuaDat": EDGE_TEXT, "TenChuSuDung": EDGE_TEXT[::-1],
        "KyHieuMucDichSuDung": ["odt", " ODT", "ODT ", "tmd", "ODT", None, "ODT", "ODT", "ODT", "ODT",
                                "ODT", "ODT", "ODT", "ODT", "ODT", "ODT", "ODT", "ODT", "ODT", "odt", "cln"],
        "KyHieuDoiTuong": ["gdc", "GDC", " tkt", None, "GDC", "GDC", "xyz", "GDC", "GDC", "GDC", "GDC",
                           "GDC", "GDC", "GDC", "GDC", "GDC", "GDC", "GDC", "GDC", "GDC", "GDC"],
        "SoGiayTo": ["079179838227", "  0791", "", "None", "1.0", "12.0", None, "a", "b", "c", "d", "e",
                     "f", "g", "h", "i", "j", "k", "l", "m", "n"],
    })
    ok = True
    for label, e in (("file batches", None), ("edge-case text", edge)):
        base = normalised(path, edge=e)
        import proto
        import ingest.job
        import ingest.merge
        import ingest.normalise
        import ingest.reader
        proto.apply("convert,geom")
        fast = normalised(path, edge=e)
        for mod in (ingest.reader, ingest.normalise, ingest.merge, ingest.job):
            importlib.reload(mod)
        importlib.reload(proto)
        for i, (a, b) in enumerate(zip(base, fast)):
            same_rows = a.rows.reset_index(drop=True).equals(b.rows.reset_index(drop=True))
            same_rej = a.rejects.reset_index(drop=True).equals(b.rejects.reset_index(drop=True))
            dtypes = (a.rows.dtypes == b.rows.dtypes).all()
            print(f"{label} batch {i}: rows equal {same_rows}, dtypes equal {dtypes}, rejects equal {same_rej} "
                  f"({len(a.rows)} rows, {len(a.rejects)} rejects)")
            if not (same_rows and same_rej and dtypes):
                ok = False
                for c in a.rows.columns:
                    x, y = a.rows[c].reset_index(drop=True), b.rows[c].reset_index(drop=True)
                    if not x.equals(y):
                        idx = [i for i in range(len(x)) if not (x[i] == y[i] or (pd.isna(x[i]) and pd.isna(y[i])))][:5]
                        print(f"   differs: {c} dtypes {x.dtype}/{y.dtype}; first values {[(x[i], y[i]) for i in idx]}")
                print(a.rejects.head(5), b.rejects.head(5))

    # COPY encoder: the same staged rows through write_row and through the numpy encoder
    import proto
    import ingest.merge as m
    from ingest.kinds import get_kind

    kind = get_kind("cadastral")
    rows = normalised(path, batches=1, edge=edge)[0].rows
    rows.loc[rows.index[:3], "legal_area_m2"] = pd.NA
    rows.loc[rows.index[3:5], "sheet_no"] = pd.NA
    settings = ib.bench_settings(ib.DEFAULT_DATA_DIR)
    from gis import db
    dsn = ib.with_db(db.resolve_dsn(settings), "bench_gis")
    with psycopg.connect(dsn) as conn:
        m.create_stage(conn, kind)
        m.copy_rows(conn, kind, rows)
        conn.execute("ALTER TABLE stage RENAME TO stage_a")
        importlib.reload(m)
        proto.apply("copy")
        m.create_stage(conn, kind)
        m.copy_rows(conn, kind, rows)
        diff = conn.execute("SELECT (SELECT count(*) FROM (SELECT * FROM stage_a EXCEPT ALL SELECT * FROM stage) x),"
                            " (SELECT count(*) FROM (SELECT * FROM stage EXCEPT ALL SELECT * FROM stage_a) y),"
                            " (SELECT count(*) FROM stage)").fetchone()
        print(f"binary COPY encoder: rows only in write_row copy {diff[0]}, only in numpy copy {diff[1]}, "
              f"staged {diff[2]}")
        ok &= diff[0] == 0 and diff[1] == 0 and diff[2] == len(rows)
        conn.rollback()
    print("ALL EQUIVALENT" if ok else "DIFFERENCES FOUND")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
