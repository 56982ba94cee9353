"""Sweeps: a grid of overrides by dotted path, run on common random numbers; and the smallest value
of one dimension that brings a tranche's EL under a target (``min_subordination``).

Every point is the config with the point's overrides applied and validated, before any path is
simulated; an error names the point (``point deals.hyperion.tranches.A.detach=1.5: …``). All
points share the seed, so the differences between points are not blurred by Monte Carlo noise,
and a point equal to the base config reproduces the base run bit for bit.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import math
import numbers
import tomllib
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # the CLI builds its parser from this module; `dcabs validate` must not load pandas
    import pandas as pd

log = logging.getLogger(__name__)

SWEEP_TABLE = "sweep"


class NoSolution(ValueError):
    """The bracket of a bisection holds no value that meets the target."""


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


def grid(dims: dict[str, list]) -> list[dict[str, Any]]:
    """Every point of the product of ``dims``, the last dimension varying fastest."""
    if any(len(v) == 0 for v in dims.values()):
        empty = [p for p, v in dims.items() if not v]
        raise ValueError(f"sweep dimension {empty[0]!r} has no values")
    return [dict(zip(dims, combo)) for combo in itertools.product(*dims.values())]


def check_target_el(value: Any, name: str = "target_el") -> float:
    """An expected-loss target: a fraction of the tranche's balance strictly between 0 and 1. At 0
    no finite bracket can be shown to meet it, at 1 or more every value meets it; 5 is 5%'s typo."""
    real = _is_real(value)
    if not real or not 0.0 < value < 1.0:
        hint = f"; did you mean {value / 100:g} ({value:g}%)?" if real and 1.0 <= value < 100.0 else ""
        raise ValueError(f"{name} {value!r}: an expected-loss target is a fraction of the tranche's balance "
                         f"in (0, 1), e.g. 0.01 for 1%{hint}")
    return float(value)


def check_tolerance(value: Any, name: str = "tol") -> float:
    """A bisection tolerance: finite and > 0 (0 never stops, NaN and ∞ stop at once)."""
    if not _is_real(value) or not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name} {value!r}: the tolerance must be a finite number > 0")
    return float(value)


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


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def point_label(point: dict[str, Any]) -> str:
    return ", ".join(f"{p}={v}" for p, v in point.items())


def point_configs(config, dims: dict[str, list], scenarios: list[str], run_overrides: dict,
                  resize_notes: bool = True) -> list[tuple[dict, str, Any]]:
    """(point, scenario, merged config) for every point and scenario, all validated; every error
    is collected and names its point.

    With ``resize_notes`` a point that moves a class's attach or detach resizes the notes
    (:func:`resize_notes_in`), so the stack stays tiled and the cash-flow view sees the new
    thicknesses. Without it the point moves only that number: the allocation view alone changes,
    and the stack's tiling is not checked at the points (the minimum subordination in the
    allocation view needs only the class's own points)."""
    from .config import ConfigError, validate_config
    from .run import _one_path_if_deterministic
    from .scenarios import PathError, scenario_config, set_path

    errors: list[tuple[str, str]] = []
    bases = {name: scenario_config(config, name) for name in scenarios}
    # An unknown path is one error, not one per point.
    probe = config.resolved()
    for path, values in dims.items():
        try:
            set_path(probe, path, values[0] if values else None)
        except PathError as exc:
            errors.append((f"--set {path}", f"unknown path {path!r}: {exc}"))
    if errors:
        raise ConfigError(errors)
    pools: dict[tuple, dict[str, float]] = {}
    out = []
    for point in grid(dims):
        for name, base in bases.items():
            data = base.resolved()
            data.pop("scenarios", None)
            data["run"].update({k: v for k, v in run_overrides.items() if v is not None})
            where = f"point {point_label(point)}" + (f" (scenario {name})" if name != "base" else "")
            try:
                moves = _point_moves(point) if resize_notes else []
                if moves:
                    # P0 does not depend on the tranches: one plan per scenario and set of other overrides.
                    key = (name, *((p, v) for p, v in point.items() if not _is_tranche_point(p)))
                    if key not in pools:
                        pools[key] = _pool_values(data, {p: v for p, v in point.items() if not _is_tranche_point(p)},
                                                  config._base_dir)
                    resize_notes_in(data, point, pools[key])
                for path, value in point.items():
                    if not (moves and _is_tranche_point(path)):
                        set_path(data, path, value)
                cfg = validate_config(data, base_dir=config._base_dir, check_tranche_stack=resize_notes)
                out.append((point, name, _one_path_if_deterministic(cfg)))
            except ConfigError as exc:
                errors.extend((where, f"{where}: {p}: {m}" if p else f"{where}: {m}") for p, m in exc.errors)
            except PathError as exc:  # a scenario without the item the base config has
                errors.append((where, f"{where}: {exc}"))
    if errors:
        raise ConfigError(errors)
    return out


def _is_tranche_point(path: str) -> bool:
    parts = path.split(".")
    return len(parts) == 5 and parts[0] == "deals" and parts[2] == "tranches" and parts[4] in ("attach", "detach")


def _point_moves(point: dict[str, Any]) -> list[str]:
    return [p for p in point if _is_tranche_point(p)]


def _pool_values(data: dict, others: dict[str, Any], base_dir) -> dict[str, float]:
    """Each deal's P0 (the pool's scheduled rent within the run plus its collateral, docs/model.md)
    under ``others``, the point's overrides that are not tranche points."""
    import copy

    from .compile import compile_plan
    from .config import validate_config
    from .scenarios import set_path

    probe = copy.deepcopy(data)
    for path, value in others.items():
        set_path(probe, path, value)
    plan = compile_plan(validate_config(probe, base_dir=base_dir, check_tranche_stack=False))
    return dict(zip(plan.deal_names, map(float, plan.pool.deal_pool_balance)))


def resize_notes_in(data: dict, point: dict[str, Any], pool: dict[str, float]) -> None:
    """Apply ``point``'s attach/detach moves to the resolved config ``data`` the way a structurer
    resizes a deal. Per deal a point moves one boundary b → v (any of the classes meeting at b may
    name it): every class attaching at b then attaches at v and every class detaching at b detaches
    at v (the stack stays tiled, pari-passu classes together), and the slice of the pool between b
    and v, ``|v − b|·P0`` of par, passes from the classes on one side to those on the other, pro rata
    to balance on each side (the balances' sum is unchanged). A boundary with nothing beyond it (the
    top detach, the bottom attach) changes only its own side. A class whose balance the point also
    sets keeps that balance. Raises ConfigError for two boundaries of one deal in one point, or a
    class left with no balance; a value that is not a number, or a class without points, is set as
    given for validation to name."""
    from .config import ConfigError
    from .scenarios import _locate

    moves: dict[int, list[tuple[dict, dict, str, Any, str]]] = {}
    kept_balance: set[int] = set()
    for path, value in point.items():
        parts = path.split(".")
        if len(parts) == 5 and parts[0] == "deals" and parts[2] == "tranches" and parts[4] == "balance":
            container, _ = _locate(data, path)
            kept_balance.add(id(container))
        if not _is_tranche_point(path):
            continue
        deals, d = _locate(data, ".".join(parts[:2]))
        tranche, end = _locate(data, path)
        moves.setdefault(id(deals[d]), []).append((deals[d], tranche, end, value, path))
    errors = []
    for group in moves.values():
        deal = group[0][0]
        olds = [tranche[end] for _, tranche, end, _, _ in group]
        values = [value for *_, value, _ in group]
        if any(o is None for o in olds) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            for _, tranche, end, value, _ in group:
                tranche[end] = value  # validation names what is wrong with it
            continue
        b, v = olds[0], float(values[0])
        if any(abs(o - b) > 1e-9 for o in olds) or any(abs(float(x) - v) > 1e-12 for x in values):
            raise ConfigError([(" ".join(p for *_, p in group),
                                f"resizing the notes moves one boundary of deal {deal['name']!r} per point, and this point "
                                "moves several; pass --keep-notes and set the points and balances yourself")])
        tranches = deal["tranches"]
        upper = [t for t in tranches if t.get("attach") is not None and abs(t["attach"] - b) <= 1e-9]
        lower = [t for t in tranches if t.get("detach") is not None and abs(t["detach"] - b) <= 1e-9]
        for t in upper:
            t["attach"] = v
        for t in lower:
            t["detach"] = v
        if any(not t["attach"] < t["detach"] for t in upper + lower):
            continue  # an inverted class is the point's error; validation names it
        delta = (v - b) * pool[deal["name"]]
        for side, sign in ((upper, -1.0), (lower, 1.0)):  # a higher boundary thins the class above it
            free = [t for t in side if id(t) not in kept_balance]
            total = sum(t["balance"] for t in free)
            for t in free:
                t["balance"] += sign * delta * (t["balance"] / total if total > 0 else 1.0 / len(free))
        for t in upper + lower:
            if t["balance"] <= 0:
                errors.append((f"deals.{deal['name']}.tranches.{t['name']}.balance",
                               f"moving the boundary at {b:g} to {v:g} resizes the notes by {abs(delta):,.0f} (the slice "
                               f"of the pool's P0 {pool[deal['name']]:,.0f} between them) and leaves tranche "
                               f"{t['name']!r} a balance of {t['balance']:,.0f}; narrow the range, or pass --keep-notes "
                               "to move only the point"))
    if errors:
        raise ConfigError(errors)


# --------------------------------------------------------------------------- running a sweep


def sweep(config, dims: dict[str, list], *, scenario: str | None = None, paths: int | None = None,
          seed: int | None = None, chunk_paths: int | None = None, threads: int | None = None, progress: bool = False,
          backend="inprocess", workers: int | None = None, scheduler: str | None = None, retries: int = 3,
          resize_notes: bool = True) -> pd.DataFrame:
    """Run every point of the grid ``dims`` (dotted path -> values) and return one tidy table: a row
    per point, scenario, deal, tranche and view, with a column per swept path followed by the
    tranche table's columns (``el``, ``el_se``, ``pd``, ..., ``balance``). All points share one seed
    and one progress bar; every point is validated before any path is simulated. A point that moves
    a class's attach or detach resizes the notes (:func:`resize_notes_in`) unless ``resize_notes``
    is False."""
    from .backends import Job, make_backend, run_batch
    from .run import _scenario_run, set_threads
    from .scenarios import select

    if not dims:
        raise ValueError("a sweep needs at least one dimension (--set PATH=...)")
    executor = make_backend(backend, workers, scheduler, retries)
    names = select(config, scenario)
    overrides = dict(paths=paths, seed=seed, chunk_paths=chunk_paths, threads=threads)
    points = point_configs(config, dims, names, overrides, resize_notes)
    set_threads(points[0][2].run.threads)
    jobs = {f"{i}:{name}": Job.prepare(cfg) for i, (_, name, cfg) in enumerate(points)}
    batch = run_batch(jobs, executor, progress=progress)
    frames = []
    for (point, name, _), key in zip(points, jobs):
        table = _scenario_run(jobs[key], batch, key).tables["tranches"]
        frames.append(table.assign(scenario=name, **{p: [v] * len(table) for p, v in point.items()}))
    import pandas as pd

    frame = pd.concat(frames, ignore_index=True)
    first = [*dims, "scenario"]
    return frame[first + [c for c in frame.columns if c not in first]]


def write_sweep(frame: pd.DataFrame, out: str | Path, manifest: dict, overwrite: bool = False) -> Path:
    """``out/sweep.parquet`` and ``out/sweep.csv``, then ``out/manifest.json`` (last: a directory
    without it is not a finished sweep), each written atomically."""
    from .outputs import _atomic_write, check_writable, claim, remove_written, write_manifest, write_table

    out = Path(out)
    check_writable(out, overwrite, kind="sweep")
    with claim(out, "sweep", overwrite):
        remove_written(out, ("finished",))
        write_table(frame, out / f"{SWEEP_TABLE}.parquet")
        _atomic_write(out / f"{SWEEP_TABLE}.csv", lambda tmp: frame.to_csv(tmp, index=False))
        write_manifest(out, manifest)
    return out


# --------------------------------------------------------------------------- minimum subordination


def bisect_min(meets: Callable[[float], bool], lo: float, hi: float, tol: float) -> tuple[float, int]:
    """The smallest x in [lo, hi] with ``meets(x)``, to within ``tol``, for a ``meets`` that is false
    below some threshold and true above it. Returns (x, evaluations); x always meets. Raises
    :class:`NoSolution` when even ``hi`` does not meet."""
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"the bracket needs finite lo < hi, got [{lo}, {hi}]")
    check_tolerance(tol)
    if not meets(hi):
        raise NoSolution(f"no value in [{lo}, {hi}] meets the target: not even {hi}")
    if meets(lo):
        return lo, 2
    evaluations = 2
    while hi - lo > tol:
        mid = lo + (hi - lo) / 2
        evaluations += 1
        if meets(mid):
            hi = mid
        else:
            lo = mid
    return hi, evaluations


class Minimum(float):
    """The answer of :func:`min_subordination`: a float (the value found) that also says what EL it
    reaches, that EL's Monte Carlo standard error, how many runs the bisection took, and whether it
    is the bracket's low end (then the true minimum may lie below the bracket)."""

    el: float
    el_se: float
    evaluations: int
    at_low_end: bool

    def __new__(cls, value: float, el: float, el_se: float, evaluations: int, at_low_end: bool):
        self = super().__new__(cls, value)
        self.el, self.el_se, self.evaluations, self.at_low_end = el, el_se, evaluations, at_low_end
        return self

    def describe(self, path: str, target_el: float, lo: float, tol: float) -> str:
        text = (f"minimum {path} = {float(self):g} (to {tol:g}): EL {self.el:.6f} ± {self.el_se:.6f} (Monte Carlo SE) "
                f"against the target {target_el:g}, in {self.evaluations} runs")
        if self.at_low_end:
            text += (f"; the bracket's low end {lo:g} already meets the target, so the minimum is at or below it: "
                     "lower the start of its --set range to find it")
        return text


def min_subordination(config, deal: str, tranche: str, target_el: float, path: str, lo: float, hi: float,
                      tol: float, *, view: str = "allocation", **run_kwargs) -> Minimum:
    """The smallest value of ``path`` in [lo, hi] (to ``tol``) at which tranche ``deal.tranche``'s EL
    (in ``view``: ``allocation`` or ``cashflow``) is at most ``target_el``, by bisection on common
    random numbers. The EL must fall as the value rises: for configs/hyperion.toml,
    ``deals.hyperion.tranches.A.attach`` in the allocation view gives the senior's minimum
    subordination (its attachment point on the pool's net loss). Raises :class:`NoSolution` when
    EL at ``hi`` is above the target. ``run_kwargs`` go to :func:`sweep` (paths, seed, scenario...).
    Returns a :class:`Minimum`: the value, with the EL reached there and its standard error."""
    if view not in ("allocation", "cashflow"):
        raise ValueError(f"view must be 'allocation' or 'cashflow', got {view!r}")
    check_target_el(target_el)
    check_tolerance(tol)
    names = {(d.name, t.name) for d in config.deals for t in d.tranches}
    if (deal, tranche) not in names:
        known = ", ".join(f"{d}.{t}" for d, t in sorted(names))
        raise ValueError(f"no tranche {deal}.{tranche}; this config has: {known}")
    # Both ends are validated before the first simulation.
    point_configs(config, {path: [lo, hi]}, [run_kwargs.get("scenario") or "base"],
                  {k: run_kwargs.get(k) for k in ("paths", "seed", "chunk_paths", "threads")},
                  run_kwargs.get("resize_notes", True))
    from .backends import make_backend

    executor = make_backend(run_kwargs.pop("backend", "inprocess"), run_kwargs.pop("workers", None),
                            run_kwargs.pop("scheduler", None), run_kwargs.pop("retries", 3))
    with executor:  # one Dask cluster for every step of the bisection
        return _bisect_el(config, deal, tranche, target_el, path, lo, hi, tol, view, dict(run_kwargs, backend=executor))


def _bisect_el(config, deal, tranche, target_el, path, lo, hi, tol, view, run_kwargs) -> Minimum:
    seen: dict[float, tuple[float, float]] = {}

    def el_at(x: float) -> float:
        t = sweep(config, {path: [x]}, **run_kwargs)
        row = t[(t["deal"] == deal) & (t["tranche"] == tranche) & (t["view"] == view)]
        if row.empty:
            raise ValueError(f"tranche {deal}.{tranche} has no {view} view (an allocation view needs attach/detach)")
        seen[x] = float(row["el"].iloc[0]), float(row["el_se"].iloc[0])
        log.info("min_subordination: %s=%s gives EL %.6g (target %.6g)", path, x, seen[x][0], target_el)
        return seen[x][0]

    try:
        value, evaluations = bisect_min(lambda x: el_at(x) <= target_el, lo, hi, tol)
    except NoSolution:
        raise NoSolution(f"no value of {path} in [{lo}, {hi}] brings the {view} EL of {deal}.{tranche} to "
                         f"{target_el:g} or less: it is {seen[hi][0]:.6g} at {path}={hi}; widen the bracket") from None
    return Minimum(value, *seen[value], evaluations, at_low_end=value == lo)


# --------------------------------------------------------------------------- command line


def add_sweep_parser(sub) -> None:
    from .cli import add_backend_arguments, add_run_overrides

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


SHOWN = ["scenario", "deal", "tranche", "view", "el", "el_se", "pd"]


def _targets(args, dims: dict[str, list]) -> tuple[str, str, str, float, float, float]:
    given = [args.target_el is not None, args.tranche is not None, args.vary is not None]
    if not all(given):
        raise ValueError("--target-el, --tranche and --vary go together")
    deal, dot, tranche = args.tranche.partition(".")
    if not dot or not deal or not tranche:
        raise ValueError(f"--tranche {args.tranche!r}: expected DEAL.TRANCHE")
    spec = next((s.partition("=")[2] for s in args.sets if s.partition("=")[0].strip() == args.vary), None)
    if spec is None or spec.count(":") != 2:
        raise ValueError(f"--vary {args.vary}: give its bracket as --set {args.vary}=lo:hi:tolerance")
    check_target_el(args.target_el, "--target-el")
    lo, hi, tol = (float(x) for x in spec.split(":"))
    check_tolerance(tol, f"--vary {args.vary}: the step (the bisection's tolerance)")
    return deal, tranche, args.vary, lo, hi, tol


def sweep_main(args: argparse.Namespace) -> int:
    from .cli import _fail, _invalid_config, backend_kwargs
    from .config import ConfigError, load_config
    from .outputs import OutputExistsError, check_writable
    from .scenarios import select
    from .backends import BackendError

    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        return _invalid_config(args.config, exc)
    # A search and a grid on one config must not share a default directory (the second would be refused).
    default = f"{args.config.stem}-min-{args.tranche}" if args.tranche else f"{args.config.stem}-sweep"
    out = args.out or Path("runs") / default
    run_kw = dict(paths=args.paths, seed=args.seed, chunk_paths=args.chunk_paths, threads=args.threads)
    try:
        dims = parse_sets(args.sets)
        target = None
        if any(x is not None for x in (args.target_el, args.tranche, args.vary)):
            target = _targets(args, dims)
            outer = {p: v for p, v in dims.items() if p != target[2]}
            names = select(cfg, args.scenario)
            # Validate every outer point at both ends of the bracket before simulating anything.
            point_configs(cfg, {**outer, target[2]: [target[3], target[4]]}, names, run_kw, not args.keep_notes)
        check_writable(out, args.overwrite, kind="sweep")
        common = dict(progress=not args.no_progress, resize_notes=not args.keep_notes, **run_kw, **backend_kwargs(args))
        if target is None:
            frame = sweep(cfg, dims, scenario=args.scenario, **common)
        else:
            frame = _solve(cfg, outer, names, target, args.target_el, args.view, common)
    except ConfigError as exc:
        return _fail([f"{args.config}: invalid sweep"] + [f"  {m}" for _, m in exc.errors])
    except (ValueError, OutputExistsError, BackendError) as exc:  # NoSolution and bad --set specs included
        return _fail([str(exc)])
    manifest = {"config_sha256": cfg.digest(), "config": cfg.resolved(), "dimensions": {p: v for p, v in dims.items()},
                "seed": args.seed if args.seed is not None else cfg.run.seed,
                "paths": args.paths if args.paths is not None else cfg.run.paths, "rows": len(frame)}
    if target is not None:
        manifest["target"] = {"el": args.target_el, "tranche": args.tranche, "vary": target[2], "view": args.view,
                              "bracket": [target[3], target[4]], "tolerance": target[5]}
    try:
        write_sweep(frame, out, manifest, overwrite=args.overwrite)
    except OutputExistsError as exc:  # another process wrote or is writing `out` while this sweep ran
        return _fail([str(exc)])
    shown = [c for c in dict.fromkeys([*dims, *SHOWN, "target_el"]) if c in frame.columns]
    print(frame[shown].to_string(index=False, float_format="{:.6f}".format))
    print(f"\nwrote {out}/{SWEEP_TABLE}.parquet, {out}/{SWEEP_TABLE}.csv and {out}/manifest.json")
    return 0


def _solve(cfg, outer: dict[str, list], names: list[str], target, target_el: float, view: str, common: dict) -> pd.DataFrame:
    """One minimum per outer point and scenario."""
    deal, tranche, path, lo, hi, tol = target
    rows = []
    for point in grid(outer) if outer else [{}]:
        base = _outer_config(cfg, point) if point else cfg
        for name in names:
            found = min_subordination(base, deal, tranche, target_el, path, lo, hi, tol, view=view,
                                      scenario=None if name == "base" else name, **common)
            where = ", ".join([*(f"{p}={v}" for p, v in point.items()), *([f"scenario {name}"] if name != "base" else [])])
            print((f"{where}: " if where else "") + found.describe(path, target_el, lo, tol))
            rows.append({**point, "scenario": name, "deal": deal, "tranche": tranche, "view": view,
                         "target_el": target_el, path: float(found), "el": found.el, "el_se": found.el_se,
                         "at_low_end": found.at_low_end, "evaluations": found.evaluations})
    import pandas as pd

    return pd.DataFrame(rows)


def _outer_config(cfg, point: dict[str, Any]):
    """``cfg`` with an outer point's overrides, validated as a sweep point is (stack tiling unchecked);
    its scenarios are merged onto it, so they inherit that."""
    from .config import validate_config
    from .scenarios import set_path

    data = cfg.resolved()
    for path, value in point.items():
        set_path(data, path, value)  # point_configs has checked every path
    return validate_config(data, base_dir=cfg._base_dir, check_tranche_stack=False)
