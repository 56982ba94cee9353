"""The HTML report renders in a real browser (headless Chromium), and so does every figure in it.

`make test` (and so CI) runs these and installs Debian's chromium when it is missing; a plain
`pytest` deselects the `browser` marker (pyproject), and `make test-browser` runs only these. With
DCABS_REQUIRE_BROWSER=1 (set by `make test`) a missing Chromium fails instead of skipping, so CI
cannot pass without rendering.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from engine import load_config
from engine import run
from engine.report.html import build_report

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium")
WIDTH, HEIGHT = 1280, 2000


def _chromium() -> str:
    if CHROMIUM is None:
        if os.environ.get("DCABS_REQUIRE_BROWSER"):
            pytest.fail("chromium is not on PATH and DCABS_REQUIRE_BROWSER is set (Debian: apt-get install chromium)")
        pytest.skip("chromium is not on PATH (Debian: apt-get install chromium)")
    return CHROMIUM


def screenshot(page: Path, tmp_path: Path, width: int, height: int) -> np.ndarray:
    """The RGB pixels of ``page`` rendered by headless Chromium in a ``width`` × ``height`` window."""
    shot = tmp_path / f"{page.stem}.png"
    cmd = [
        _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", f"--window-size={width},{height}",
        page.resolve().as_uri(),
    ]
    # HOME too: Chromium writes crash-report settings there even with its own profile directory.
    env = {**os.environ, "HOME": str(tmp_path)}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert shot.is_file(), f"no screenshot (exit {done.returncode}): {done.stderr[-2000:]}"
    pixels = imread(shot)
    assert pixels.shape[:2] == (height, width)
    return pixels[..., :3]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    _chromium()
    res = run(load_config(ROOT / "configs" / "ai_bubble.toml"), scenario="all", paths=2000)
    return build_report(res.write(tmp_path_factory.mktemp("browser") / "run"))


def test_report_renders_in_chromium(report, tmp_path):
    pixels = screenshot(report, tmp_path, WIDTH, HEIGHT)
    rgb = pixels
    assert np.var(rgb) > 1e-3, "the rendered page is blank"
    q = np.rint(rgb.reshape(-1, 3) * 255).astype(np.uint32)
    colours = np.unique((q[:, 0] << 16) | (q[:, 1] << 8) | q[:, 2]).size
    assert colours > 50, f"the rendered page shows only {colours} colours"
    # The page's text is grey and black; strongly coloured pixels beyond a few links mean that
    # the first embedded figure was decoded and drawn.
    saturated = int(((rgb.max(axis=-1) - rgb.min(axis=-1)) > 0.3).sum())
    assert saturated > 8000, f"only {saturated} coloured pixels: the figures did not render"


CELL_W, CELL_H = 640, 400


def test_every_figure_of_the_report_renders_non_empty(report, tmp_path):
    # Each embedded PNG alone in a fixed cell of one page: one Chromium start, and a figure that
    # failed to decode or drew nothing shows as a blank cell.
    images = re.findall(r'<img src="(data:image/png;base64,[^"]+)" alt="([^"]*)"', report.read_text(encoding="utf-8"))
    on_disk = sorted((report.parent / "figures").glob("*.png"))
    assert len(images) == len(on_disk) >= 5
    for (uri, _), png in zip(sorted(images), sorted(base64.b64encode(p.read_bytes()).decode() for p in on_disk)):
        assert uri.endswith(png)
    cols = 2
    rows = -(-len(images) // cols)
    cells = "".join(f'<img src="{uri}" style="position:absolute;left:{(i % cols) * CELL_W}px;top:{(i // cols) * CELL_H}px;'
                    f'width:{CELL_W}px;height:{CELL_H}px;object-fit:contain">' for i, (uri, _) in enumerate(images))
    page = tmp_path / "figures.html"
    page.write_text(f'<html><body style="margin:0;background:#fff">{cells}</body></html>', encoding="utf-8")
    pixels = screenshot(page, tmp_path, cols * CELL_W, rows * CELL_H)
    for i, (_, title) in enumerate(images):
        cell = pixels[(i // cols) * CELL_H:(i // cols + 1) * CELL_H, (i % cols) * CELL_W:(i % cols + 1) * CELL_W]
        ink = float((cell.min(axis=-1) < 0.9).mean())  # share of pixels that are not (near) white
        assert ink > 0.01, f"figure {title!r} renders (almost) blank: {ink:.4f} of its cell is drawn"
