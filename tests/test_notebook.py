"""The tour notebook runs top to bottom (small paths), and its tables are those of a run of the
path count the test asked for."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
PATHS = 3000  # the notebook's default is 20,000


class _Table(HTMLParser):
    """The cells of the first HTML table, row by row (header cells included)."""

    def __init__(self):
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _table(nb, start: str) -> list[list[str]]:
    """The HTML table shown by the code cell whose source starts with ``start``."""
    cell, = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(start)]
    html, = [o["data"]["text/html"] for o in cell.outputs if "text/html" in o.get("data", {})]
    parser = _Table()
    parser.feed(html)
    return parser.rows


def _is_count_over(value: float, n: int) -> bool:
    """``value``, shown to 6 decimals, is k/n for an integer k."""
    return abs(value * n - round(value * n)) <= n * 5e-7 + 1e-9


def test_tour_notebook_executes(monkeypatch):
    monkeypatch.setenv("DCABS_TOUR_PATHS", str(PATHS))
    nb = nbformat.read(ROOT / "docs" / "examples" / "tour.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the figure cell produced no image"
    # What the notebook printed is a run of PATHS paths: the deal table says so, and every
    # probability it shows is a count of paths over PATHS, k/PATHS, which needs no engine to check
    # (a run of the default 20,000 paths gives multiples of 1/20,000, few of them multiples of 1/3,000).
    deals = {row[0]: row[1] for row in _table(nb, "res.deals.T")[1:]}
    assert int(deals["paths"]) == PATHS
    for name in ("p_nl_positive", "p_any_default", "p_reserve_exhausted"):
        assert _is_count_over(float(deals[name]), PATHS), (name, deals[name])
    header, *rows = _table(nb, "res = engine.run(cfg, paths=PATHS)")
    pds = [float(row[header.index("pd")]) for row in rows]
    assert len(pds) == 6 and any(0 < p < 1 for p in pds)  # A, B, E in both views; some strictly inside (0, 1)
    assert all(_is_count_over(p, PATHS) for p in pds), pds
