"""QGIS (headless, Debian's python3-qgis) opens the live server's collections with its OAPIF provider.

QGIS runs in its own process with the system Python (``qgis_client.py``), as a desktop user's
QGIS would: it reads the landing page, the API definition, the collection and the items, and
pages through them. What it reports is compared with SQL.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from client_helpers import count, norm, sql_rows

SYSTEM_PYTHON = "/usr/bin/python3"
SCRIPT = Path(__file__).with_name("qgis_client.py")
LAYERS = ["parcels", "parcel-history", "planning-lots", "buildings", "roads", "poi", "wards-2025"]
BOX = (106.7195, 10.7745, 106.7205, 10.7755)
INSTALL = "apt-get install -y python3-qgis qgis-providers (see ./dev)"


@pytest.fixture(scope="module")
def qgis(live) -> dict:
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import qgis.core"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert probe.returncode == 0, f"QGIS's Python bindings are missing: {INSTALL}\n{probe.stderr}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(
        QT_QPA_PLATFORM="offscreen",
        XDG_RUNTIME_DIR=str(Path("/tmp") / "qgis-runtime"),
        QGIS_CLIENT_BOX=",".join(map(str, BOX)),
    )
    Path(env["XDG_RUNTIME_DIR"]).mkdir(mode=0o700, exist_ok=True)
    mark = live.mark()
    out = subprocess.run(
        [SYSTEM_PYTHON, str(SCRIPT), live.base, *LAYERS],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("QGIS-RESULT ")]
    assert out.returncode == 0 and lines, f"QGIS failed ({out.returncode}): {out.stderr[-3000:]}"
    result = json.loads(lines[0][len("QGIS-RESULT ") :])
    result["requests"] = live.requests_since(mark)
    return result


def _time(text: str | None):
    if text is None:
        return None
    return norm(datetime.fromisoformat(text).astimezone(UTC))


def test_qgis_opens_every_layer_with_the_databases_counts(qgis, live_db, catalog):
    for name in LAYERS:
        info, coll = qgis["layers"][name], catalog[name]
        n = count(live_db, coll)
        assert info["valid"], name
        assert info["count"] == n, name
        if n:  # QGIS 3.22 learns the fields from a sample page of features
            assert [f for f, _ in info["fields"]] == coll.field_names, name
            assert info["geometry"] == coll.geometry_type, name


def test_qgis_reads_every_parcel_intact(qgis, live_db, catalog):
    coll = catalog["parcels"]
    rows = sql_rows(live_db, coll)

    def key(props: dict) -> tuple:
        out = []
        for f in coll.fields:
            v = props[f.name]
            if f.pg_type in ("timestamptz", "timestamp", "date") and isinstance(v, str):
                v = _time(v)
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                v = float(v)  # QGIS 3.22 guesses a field's type from a sample page
            out.append(v)
        return tuple(out)

    got = sorted((key(p) for p in qgis["parcels"]), key=repr)
    want = sorted((key(r["properties"]) for r in rows.values()), key=repr)
    assert len(got) == len(rows) and got == want


def test_qgis_filtered_reads_match_sql(qgis, live_db, catalog):
    want = count(live_db, catalog["parcels"], "land_use = 'ODT'")
    assert 0 < want < count(live_db, catalog["parcels"])
    assert qgis["filtered"] == ["ODT"] * want
    assert qgis["subset_ok"] and qgis["subset_count"] == qgis["subset_features"] == want


def test_qgis_bbox_read_is_run_by_the_server(qgis, live_db, catalog):
    coll = catalog["buildings"]
    where = f"ST_Intersects(t.{coll.geometry_column}, ST_MakeEnvelope(%s, %s, %s, %s, 4326))"
    want = sorted(
        r[0]
        for r in live_db.execute(
            f"SELECT source_id FROM city.buildings AS t WHERE {where}",
            BOX,
        )
    )
    assert want and qgis["bbox"] == want
    # QGIS asked the server for the box (it does not download the whole layer to clip it)
    boxed = [r for r in qgis["requests"] if r.path == "/collections/buildings/items" and r.params]
    assert any("bbox" in r.params for r in boxed), boxed
    assert all(r.status == 200 for r in qgis["requests"])
