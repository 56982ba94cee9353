"""The run report: figures, warnings and the self-contained HTML page, on real runs of both example configs."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread

from engine import load_config
from engine import run
from engine.io.rundir import read_run
from engine.report.figures import FIGURES, NOT_YET, available
from engine.report.accessor import PlotAccessor
from engine.report.html import build_report, render_html
from engine.analytics.diagnostics import run_warnings

ROOT = Path(__file__).resolve().parents[1]
NETWORK_FIGURES = {"firm_defaults", "cascades", "network_effect"}
PATHS = 3000


def _build(name: str, tmp_path_factory) -> tuple[str, Path, Path]:
    """A run of the example config with every scenario, written and reported: (name, run dir, report path)."""
    res = run(load_config(ROOT / "configs" / f"{name}.toml"), scenario="all", paths=PATHS)
    out = res.write(tmp_path_factory.mktemp(name) / "run")
    return name, Path(out), build_report(out)


@pytest.fixture(scope="module")
def hyperion(tmp_path_factory):
    return _build("hyperion", tmp_path_factory)


@pytest.fixture(scope="module")
def ai_bubble(tmp_path_factory):
    return _build("ai_bubble", tmp_path_factory)


@pytest.fixture(params=["hyperion", "ai_bubble"])
def built(request):
    return request.getfixturevalue(request.param)


class _Refs(HTMLParser):
    """Every src/href attribute, <img> sources separately, and every tag name."""

    def __init__(self):
        super().__init__()
        self.img_src: list[str] = []
        self.refs: list[tuple[str, str, str]] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        for key, value in attrs:
            if key in ("src", "href", "srcset", "data", "poster"):
                self.refs.append((tag, key, value or ""))
            if tag == "img" and key == "src":
                self.img_src.append(value or "")


TRIGGER_FIGURES = {"trigger_timing"}  # neither example here has a DSCR trigger


HOLDER_FIGURES = {"holder_losses"}  # only ai_bubble has holders


def _expected(name: str) -> set[str]:
    return (set(FIGURES) if name == "ai_bubble" else set(FIGURES) - NETWORK_FIGURES - HOLDER_FIGURES) - TRIGGER_FIGURES


def _assert_not_blank(png: Path) -> None:
    pixels = imread(png)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    rgb = pixels[..., :3]
    assert np.var(rgb) > 1e-3, f"{png.name} is (nearly) one colour"
    assert _colours(rgb) > 10, f"{png.name} has too few colours to hold a plot"


def _colours(rgb: np.ndarray) -> int:
    """Number of distinct colours of an RGB image with channels in [0, 1]."""
    q = np.rint(rgb.reshape(-1, 3) * 255).astype(np.uint32)
    return np.unique((q[:, 0] << 16) | (q[:, 1] << 8) | q[:, 2]).size


def test_report_is_self_contained(built):
    _, run_dir, report = built
    assert report == run_dir / "report.html" and report.is_file()
    text = report.read_text(encoding="utf-8")
    parser = _Refs()
    parser.feed(text)
    assert parser.img_src, "the report embeds no image"
    assert all(src.startswith("data:image/png;base64,") for src in parser.img_src)
    for tag, key, value in parser.refs:
        if tag == "img" and key == "src":
            continue
        # In-page anchors are the only other references allowed.
        assert key == "href" and value.startswith("#"), (tag, key, value)
    assert not re.search(r"https?://", text), "the report refers to the network"
    assert not parser.tags & {"script", "link", "iframe", "object", "embed"}
    assert "url(" not in text


def test_report_figures(built):
    name, run_dir, report = built
    pngs = {p.stem for p in (run_dir / "figures").glob("*.png")}
    assert pngs == _expected(name)
    for stem in pngs:
        _assert_not_blank(run_dir / "figures" / f"{stem}.png")
    text = report.read_text(encoding="utf-8")
    assert text.count('<img src="data:image/png;base64,') == len(_expected(name))
    tables, _ = read_run(run_dir)
    assert {n for n, why in available(tables).items() if why is None} == _expected(name)


def test_report_contents(built):
    name, run_dir, report = built
    text = report.read_text(encoding="utf-8")
    tables, manifest = read_run(run_dir)
    assert f"<code>{manifest['seed']}</code>" in text
    assert manifest["config_sha256"] in text
    for scenario in manifest["scenarios"]:
        assert scenario in text
    for deal in manifest["config"]["deals"]:
        assert deal["name"] in text
    for title in (t for n, (_, t, _) in FIGURES.items() if n in _expected(name)):
        assert title in text
    assert "Figures not available for this run" in text
    for key in NOT_YET:
        assert key in text
    if name == "hyperion":
        assert "this run has no network" in text
    for description in (s["description"] for s in manifest["config"]["scenarios"].values()):
        assert description.replace("'", "&#x27;") in text
    found = run_warnings(tables)
    assert any(w.startswith("Tranche ") for w in found)
    assert len(found) == len(set(found))
    for w in found:
        assert w.replace("'", "&#x27;") in text


def test_warnings_read_from_tables(built):
    name, run_dir, _ = built
    tables, _ = read_run(run_dir)
    found = run_warnings(tables)
    cash = tables["tranches"][tables["tranches"]["view"].astype(str) == "cashflow"]
    lossy = cash[cash["pd"] > 0]
    for deal, tranche in set(zip(lossy["deal"], lossy["tranche"])):
        assert any(w.startswith(f"Tranche {tranche} of {deal} loses principal") for w in found)
    if (tables["deals"]["reserve_used_mean"] > 0).any():
        assert any(w.startswith("The reserve of deal") for w in found)
    if name == "ai_bubble":
        assert any(w.startswith("Firm ") for w in found)
    # Kinds keep their order: principal losses first, precision notes last.
    kinds = [0 if "loses principal at" in w else 1 if "full interest" in w else 2 for w in found]
    assert kinds == sorted(kinds)


def test_figure_functions(built):
    name, run_dir, _ = built
    tables, _ = read_run(run_dir)
    for fname, (figure, title, caption) in FIGURES.items():
        fig = figure(tables)
        if fname not in _expected(name):
            assert fig is None, fname
            continue
        assert isinstance(fig, Figure), fname
        assert any(ax.has_data() for ax in fig.axes), fname
        assert title and caption


def test_plot_accessor(built):
    name, run_dir, _ = built
    tables, _ = read_run(run_dir)
    plot = PlotAccessor(tables)
    assert set(FIGURES) <= set(dir(plot))
    assert set(plot.available()) == _expected(name)
    assert isinstance(plot.exceedance(), Figure)
    for fname in NETWORK_FIGURES:
        if name == "hyperion":
            with pytest.raises(ValueError, match="no network"):
                getattr(plot, fname)()
        else:
            assert isinstance(getattr(plot, fname)(), Figure)


def test_rebuild_removes_stale_figures_and_escapes(hyperion):
    _, run_dir, _ = hyperion
    stale = run_dir / "figures" / "cascades.png"
    stale.write_bytes(b"not a png")
    build_report(run_dir)
    assert not stale.exists()
    assert not list((run_dir / "figures").glob(".*.tmp")) and not list(run_dir.glob(".*.tmp"))

    tables, manifest = read_run(run_dir)
    manifest["config"]["scenarios"]["gpu_life_18m"]["description"] = "<script>alert('x')</script> & more"
    text = render_html(run_dir, tables, manifest, [], [])
    assert "<script>" not in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in text


def test_the_run_directory_knows_every_figure_file_the_report_writes():
    # io/rundir.py removes exactly these figures/<name>.png from a replaced run directory, without
    # importing the report; a figure added to FIGURES alone would be left behind.
    from engine.io.rundir import FIGURE_NAMES
    from engine.report.figures import FIGURES

    assert tuple(FIGURES) == FIGURE_NAMES
