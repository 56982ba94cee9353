"""Every file the repository cites by path (in configs, docs, README and benchmarks) is in it, and
the package metadata carries an SPDX licence with its text."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CITING = [*ROOT.glob("configs/*.toml"), *ROOT.glob("configs/*.py"), ROOT / "README.md", *ROOT.glob("docs/*.md"),
          *ROOT.glob("benchmarks/*.md"), *ROOT.glob("benchmarks/workloads/*.toml")]
# A repository path: a top-level directory of ours, then a file name with an extension.
CITED = re.compile(r"(?<![\w/.-])((?:\.\./)*(?:docs|configs|benchmarks|engine|kernels|tests|shared)/[\w./-]*\w\.(?:md|toml|py|csv|parquet|ipynb))")


def test_every_cited_file_exists():
    missing, seen = [], 0
    for doc in CITING:
        for cited in CITED.findall(doc.read_text(encoding="utf-8")):
            seen += 1
            if not (ROOT / cited).resolve().is_file() or not (ROOT / cited).resolve().is_relative_to(ROOT):
                missing.append(f"{doc.relative_to(ROOT)} cites {cited}")
    assert seen > 20 and not missing, "\n".join(missing)


def test_the_calibration_page_is_cited_by_the_example_configs():
    citing = [p.name for p in ROOT.glob("configs/*.toml") if "docs/calibration.md" in p.read_text(encoding="utf-8")]
    assert len(citing) >= 4, citing


def test_the_licence_is_spdx_with_its_text():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "Apache-2.0"
    assert "Apache License" in (ROOT / project["license-files"][0]).read_text(encoding="utf-8")
