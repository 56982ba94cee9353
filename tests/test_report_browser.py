"""The HTML report renders in a real browser (headless Chromium): `make test-browser`.

Not part of the default suite: pyproject deselects the `browser` marker, and the test skips when
Chromium is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from engine import load_config, run
from engine.report import build_report

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium")
WIDTH, HEIGHT = 1280, 2000


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not on PATH (Debian: apt-get install chromium)")
def test_report_renders_in_chromium(tmp_path):
    res = run(load_config(ROOT / "configs" / "ai_bubble.toml"), scenario="all", paths=2000)
    report = build_report(res.write(tmp_path / "run"))
    shot = tmp_path / "screenshot.png"
    profile = tmp_path / "profile"
    cmd = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
        f"--user-data-dir={profile}", f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}",
        report.resolve().as_uri(),
    ]
    # HOME too: Chromium writes crash-report settings there even with its own profile directory.
    env = {**os.environ, "HOME": str(tmp_path)}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert shot.is_file(), f"no screenshot (exit {done.returncode}): {done.stderr[-2000:]}"

    pixels = imread(shot)
    assert pixels.shape[:2] == (HEIGHT, WIDTH)
    rgb = pixels[..., :3]
    assert np.var(rgb) > 1e-3, "the rendered page is blank"
    q = np.rint(rgb.reshape(-1, 3) * 255).astype(np.uint32)
    colours = np.unique((q[:, 0] << 16) | (q[:, 1] << 8) | q[:, 2]).size
    assert colours > 50, f"the rendered page shows only {colours} colours"
    # The page's text is grey and black; strongly coloured pixels beyond a few links mean that
    # the first embedded figure was decoded and drawn.
    saturated = int(((rgb.max(axis=-1) - rgb.min(axis=-1)) > 0.3).sum())
    assert saturated > 8000, f"only {saturated} coloured pixels: the figures did not render"
