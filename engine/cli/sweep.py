"""`dcabs sweep`'s arguments: the parser and the `--set` grids (light: the command line builds it at start-up)."""

from __future__ import annotations

import argparse
import tomllib
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from engine.api.checks import check_tolerance
from engine.cli.common import add_backend_arguments, add_run_overrides

# --------------------------------------------------------------------------- the grid


def _scalar(text: str) -> Any:
    """A TOML scalar (number, boolean, quoted string), or the text itself."""
    try:
        return tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return text.strip()


def parse_range(spec: str) -> list[int | float]:
    """``start:stop:step`` -> every value from start to stop, stop included when the steps reach it
    (to 1e-9 of a step). Decimal arithmetic, so 0.5:0.9:0.05 gives 0.55, not 0.5500000000000001."""
    parts = spec.split(":")
    if len(parts) != 3:
        raise ValueError(f"{spec!r} is not start:stop:step")
    try:
        start, stop, step = (Decimal(p.strip().replace("_", "")) for p in parts)
    except InvalidOperation:
        raise ValueError(f"{spec!r}: start, stop and step must be numbers") from None
    if not all(x.is_finite() for x in (start, stop, step)):
        raise ValueError(f"{spec!r}: start, stop and step must be finite numbers")
    if step == 0 or (stop - start) * step < 0:
        raise ValueError(f"{spec!r}: the step must be non-zero and go from start towards stop")
    count = int((stop - start) / step + Decimal("1e-9")) + 1
    if count > 10_000:
        raise ValueError(f"{spec!r} has {count} values; a sweep dimension holds at most 10,000")
    integral = all(p == p.to_integral_value() and "." not in s and "e" not in s.lower() for p, s in zip((start, stop, step), parts))
    values = [start + i * step for i in range(count)]
    return [int(v) for v in values] if integral else [float(v) for v in values]


def parse_set(text: str) -> tuple[str, list]:
    """``PATH=start:stop:step``, ``PATH=v1,v2,...`` or ``PATH=v`` -> (path, values)."""
    path, sep, spec = text.partition("=")
    path = path.strip()
    if not sep or not path or not spec.strip():
        raise ValueError(f"--set {text!r}: expected PATH=start:stop:step or PATH=v1,v2,...")
    try:
        if spec.count(":") == 2 and "," not in spec:
            return path, parse_range(spec)
    except ValueError as exc:
        raise ValueError(f"--set {path}: {exc}") from None
    return path, [_scalar(v) for v in spec.split(",")]


def parse_sets(texts: list[str]) -> dict[str, list]:
    """Every ``--set``, each PATH at most once (a repeated PATH would silently keep only the last)."""
    dims: dict[str, list] = {}
    for text in texts:
        path, values = parse_set(text)
        if path in dims:
            raise ValueError(f"--set {path} is given twice; give all its values once, e.g. --set {path}=v1,v2,v3")
        dims[path] = values
    return dims


def tolerance_arg(text: str) -> float:
    """argparse ``type=`` for a tolerance option (``dcabs breakeven --tol``), checked by :func:`check_tolerance`."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    try:
        return check_tolerance(value, "--tol")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# --------------------------------------------------------------------------- command line


def add_sweep_parser(sub) -> None:
    s = sub.add_parser("sweep", help="run a grid of overrides on common random numbers; write one table",
                       description="Run every point of a grid of dotted-path overrides on the same seed and write "
                                   "one table with a row per point, scenario, deal, tranche and view.")
    s.add_argument("config", type=Path)
    s.add_argument("--set", dest="sets", action="append", required=True, metavar="PATH=SPEC",
                   help="a dimension: PATH=start:stop:step (stop included) or PATH=v1,v2,...; repeat for a grid")
    s.add_argument("--scenario", help="a scenario name, a comma-separated list, or `all`")
    add_run_overrides(s)
    s.add_argument("--keep-notes", action="store_true",
                   help="a point that moves a class's attach/detach moves only that number (the allocation view); "
                        "by default the notes are resized with it")
    s.add_argument("--out", type=Path, help="output directory (default: runs/<config name>-sweep, or runs/<config name>-min-<DEAL.TRANCHE> for a --target-el search)")
    s.add_argument("--overwrite", action="store_true", help="replace a finished sweep in --out")
    s.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    s.add_argument("--target-el", type=float, help="with --tranche and --vary: find the smallest --vary value with EL <= this")
    s.add_argument("--tranche", metavar="DEAL.TRANCHE", help="the tranche whose EL must meet --target-el")
    s.add_argument("--vary", metavar="PATH", help="the --set dimension to bisect; its start:stop is the bracket, its step the tolerance")
    s.add_argument("--view", choices=("allocation", "cashflow"), default="allocation",
                   help="the EL that must meet --target-el (default: allocation)")
    add_backend_arguments(s)
