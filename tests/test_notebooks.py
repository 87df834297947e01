"""The analyst notebooks run top to bottom (nbclient) on the sample and on the real data, each in
less than 60 seconds, and show maps (folium) and charts (matplotlib)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).parent / "gis"))
from analysis_helpers import WORLDPOP, real_db, sample_db, sample_files  # noqa: E402, F401

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


@pytest.mark.parametrize("dataset", ["sample", "real"])
@pytest.mark.parametrize("name", ["planning", "health", "logistics"])
def test_notebook_runs(name, dataset, request, monkeypatch):
    dsn = request.getfixturevalue("sample_db" if dataset == "sample" else "real_db")
    monkeypatch.setenv("GIS_NOTEBOOK_DSN", dsn)
    monkeypatch.setenv("GIS_NOTEBOOK_WORLDPOP", str(WORLDPOP))
    monkeypatch.setenv("GIS_NOTEBOOK_DATASET", dataset)
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    t0 = time.monotonic()
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    took = time.monotonic() - t0
    assert took < 60, f"{name} on {dataset} took {took:.0f} s"
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    html = " ".join(str(o.get("data", {}).get("text/html", "")) for o in outputs)
    assert "leaflet" in html.lower() or "folium" in html.lower(), "no folium map"
    assert any("image/png" in o.get("data", {}) for o in outputs), "no chart"
