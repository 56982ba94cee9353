"""The engine's layers: imports point down (import-linter), numba is spelled in one place, and
every import inside a function says why it is there."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")
NUMBA_DECORATORS = {"jit", "njit", "vectorize", "guvectorize", "cfunc", "stencil", "generated_jit", "jit_module"}


def _lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--config", str(root / "pyproject.toml"), "--no-cache"], cwd=root,
                          capture_output=True, text=True)


def _sources(*dirs: str) -> list[Path]:
    return sorted(p for d in dirs for p in (ROOT / d).rglob("*.py"))


def test_the_layers_contract_holds():
    done = _lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 2 kept, 0 broken" in done.stdout, done.stdout


@pytest.mark.parametrize("importer, imported", [
    ("engine/config/base.py", "engine.simulation.execute"),   # a lower layer importing a higher one
    ("engine/analytics/stats.py", "engine.report.figures"),    # the report's matplotlib into the analytics
    ("kernels/plan.py", "engine.config"),                      # a kernel importing the engine
])
def test_the_contract_fails_on_an_upward_import(tmp_path, importer, imported):
    for part in ("engine", "kernels"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / importer
    # Inside a function, as a lazy import would be: the contract sees those too.
    target.write_text(target.read_text() + f"\n\ndef _upward():\n    import {imported}  # noqa: F401\n")
    done = _lint(tmp_path)
    assert done.returncode != 0, done.stdout
    assert "BROKEN" in done.stdout and imported in done.stdout, done.stdout


def _numba_decorators(source: str) -> list[tuple[int, str]]:
    """(line, spelling) of every numba decorator ``source`` names: imported from numba, or numba.<name>."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "numba":
            found += [(node.lineno, f"from numba import {a.name}") for a in node.names if a.name in NUMBA_DECORATORS or a.name == "*"]
        elif (isinstance(node, ast.Attribute) and node.attr in NUMBA_DECORATORS
              and isinstance(node.value, ast.Name) and node.value.id == "numba"):
            found.append((node.lineno, f"numba.{node.attr}"))
    return found


def test_numba_decorators_are_spelled_only_in_kernels_jit():
    # The shipped code; tests/ may jit their own drivers (a parallel=True caller of a kernel, say),
    # which run under no cache and no policy of the engine's.
    found = [f"{path.relative_to(ROOT)}:{line} {spelling}" for path in _sources("engine", "kernels", "benchmarks")
             if path != ROOT / "kernels" / "_jit.py" for line, spelling in _numba_decorators(path.read_text())]
    assert not found, "numba decorators outside kernels/_jit.py:\n" + "\n".join(found)


def test_the_numba_check_sees_a_decorator():
    # The check above must be able to fail: the same walk finds both spellings in a file that uses them.
    src = "import numba\nfrom numba import njit\n\n@numba.njit(cache=True)\ndef f(x):\n    return x\n"
    assert _numba_decorators(src) == [(2, "from numba import njit"), (4, "numba.njit")]


def _function_imports(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every import inside a function of ``path``."""
    lines = path.read_text().splitlines()
    out = []
    for node in ast.walk(ast.parse("\n".join(lines), str(path))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for sub in ast.walk(node):
                if isinstance(sub, (ast.Import, ast.ImportFrom)):
                    out.append((sub.lineno, lines[sub.lineno - 1]))
    return sorted(set(out))


def test_every_function_level_import_in_the_engine_says_why():
    # Deliberate lazy imports only (Dask, matplotlib, pandas for a file, the command line's start-up),
    # each with a comment on its line; anything else belongs at the top of its module.
    bare = [f"{p.relative_to(ROOT)}:{n}: {text.strip()}" for p in _sources("engine") for n, text in _function_imports(p)
            if "#" not in text]
    assert not bare, "function-level imports without a reason:\n" + "\n".join(bare)
    assert _function_imports(ROOT / "engine" / "__init__.py"), "the walk found no lazy import at all"
