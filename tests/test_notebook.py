"""The tour notebook runs top to bottom (small paths)."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def test_tour_notebook_executes(monkeypatch):
    monkeypatch.setenv("DCABS_TOUR_PATHS", "3000")
    nb = nbformat.read(ROOT / "docs" / "examples" / "tour.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the figure cell produced no image"
    assert os.environ["DCABS_TOUR_PATHS"] == "3000"
