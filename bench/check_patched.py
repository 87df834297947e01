#!/usr/bin/env python
"""The patched package (bench/patches.py) normalises exactly as ingest/ does.

    .venv/bin/python bench/check_patched.py

Normalises the batches of the 100k file (and the edge-case text frame of check_proto.py) in two
subprocesses, one importing ingest/ and one bench/out/patched/ingest, and compares the pickled rows.
"""
import os
import pickle
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def child(out: str) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    import check_proto
    import ingest_bench as ib
    if os.environ.get("PATCHED"):  # ahead of the checkout that the bench modules put first
        sys.path.insert(0, os.environ["PATCHED"])
    import ingest

    path = ib.dataset(100_000, 2025, ib.OUT)[0]
    res = {"file": [(n.rows, n.rejects) for n in check_proto.normalised(path, batches=5)],
           "edge": [(n.rows, n.rejects) for n in check_proto.normalised(path, batches=1, edge=check_proto.pd.DataFrame({
               "DiaChiThuaDat": check_proto.EDGE_TEXT, "TenChuSuDung": check_proto.EDGE_TEXT[::-1]}))],
           "module": ingest.__file__}
    Path(out).write_bytes(pickle.dumps(res))


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2])
        return 0
    outs = {}
    for label, extra in (("original", None), ("patched", str(ROOT / "bench" / "out" / "patched"))):
        env = dict(os.environ)
        if extra:
            env["PATCHED"] = extra
        out = ROOT / "bench" / "out" / f"check_{label}.pkl"
        subprocess.run([sys.executable, __file__, "--child", str(out)], env=env, check=True)
        outs[label] = pickle.loads(out.read_bytes())
        print(label, "imports", outs[label]["module"])
    ok = True
    for key in ("file", "edge"):
        for i, ((ra, ja), (rb, jb)) in enumerate(zip(outs["original"][key], outs["patched"][key])):
            same = ra.equals(rb) and (ra.dtypes == rb.dtypes).all() and ja.equals(jb)
            ok &= bool(same)
            print(f"{key} batch {i}: {'identical' if same else 'DIFFERENT'} ({len(ra)} rows, {len(ja)} rejects)")
    print("IDENTICAL" if ok else "DIFFERENCES FOUND")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
