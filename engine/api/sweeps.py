"""Sweeps: a grid of overrides by dotted path, run on common random numbers; and the smallest value
of one dimension that brings a tranche's EL under a target (``min_subordination``).

Every point is the config with the point's overrides applied and validated, before any path is
simulated; an error names the point (``point deals.hyperion.tranches.A.detach=1.5: …``). All
points share the seed, so the differences between points are not blurred by Monte Carlo noise,
and a point equal to the base config reproduces the base run bit for bit.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from engine.api.checks import check_target_el, check_tolerance
from engine.api.runs import _one_path_if_deterministic, _scenario_run
from engine.config import ConfigError, OverrideError, PathError, select
from engine.config.paths import apply_overrides, locate
from engine.io.files import atomic_write
from engine.io.rundir import check_writable, claim, remove_written, write_manifest, write_table
from engine.plan.compile import compile_plan
from engine.simulation.backends import make_backend
from engine.simulation.batch import run_batch
from engine.simulation.chunk import Job
from engine.simulation.execute import set_threads

log = logging.getLogger(__name__)

SWEEP_TABLE = "sweep"


class NoSolution(ValueError):
    """The bracket of a bisection holds no value that meets the target."""


def grid(dims: dict[str, list]) -> list[dict[str, Any]]:
    """Every point of the product of ``dims``, the last dimension varying fastest."""
    if any(len(v) == 0 for v in dims.values()):
        empty = [p for p, v in dims.items() if not v]
        raise ValueError(f"sweep dimension {empty[0]!r} has no values")
    return [dict(zip(dims, combo)) for combo in itertools.product(*dims.values())]


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
    errors: list[tuple[str, str]] = []
    bases = {name: config.scenario(name) for name in scenarios}
    # An unknown path is one error, not one per point.
    probe = config.resolved()
    for path, values in dims.items():
        for _, message in apply_overrides(probe, {path: values[0] if values else None}):
            errors.append((f"--set {path}", f"unknown path {path!r}: {message}"))
    if errors:
        raise ConfigError(errors)
    pools: dict[tuple, dict[str, float]] = {}
    out = []
    for point in grid(dims):
        for name, base in bases.items():
            where = f"point {point_label(point)}" + (f" (scenario {name})" if name != "base" else "")
            moves = _point_moves(point) if resize_notes else []
            others = {p: v for p, v in point.items() if not (moves and _is_tranche_point(p))}
            try:
                edit = None
                if moves:
                    # P0 does not depend on the tranches: one plan per scenario and set of other overrides.
                    key = (name, *others.items())
                    if key not in pools:
                        pools[key] = _pool_values(base, others, run_overrides)
                    edit = functools.partial(resize_notes_in, point=point, pool=pools[key])
                cfg = base.derive(others, run=run_overrides, keep_scenarios=False, check_tranche_stack=resize_notes, edit=edit)
                out.append((point, name, _one_path_if_deterministic(cfg)))
            except OverrideError as exc:  # a scenario without the item the base config has
                errors.extend((where, f"{where}: {m}") for _, m in exc.errors)
            except ConfigError as exc:
                errors.extend((where, f"{where}: {p}: {m}" if p else f"{where}: {m}") for p, m in exc.errors)
            except PathError as exc:  # resizing the notes of a tranche the scenario lacks
                errors.append((where, f"{where}: {exc}"))
    if errors:
        raise ConfigError(errors)
    return out


def _is_tranche_point(path: str) -> bool:
    parts = path.split(".")
    return len(parts) == 5 and parts[0] == "deals" and parts[2] == "tranches" and parts[4] in ("attach", "detach")


def _point_moves(point: dict[str, Any]) -> list[str]:
    return [p for p in point if _is_tranche_point(p)]


def _pool_values(base, others: dict[str, Any], run_overrides: dict) -> dict[str, float]:
    """Each deal's P0 (the pool's scheduled rent within the run plus its collateral, docs/model.md)
    under ``others``, the point's overrides that are not tranche points."""
    cfg = base.derive(others, run=run_overrides, keep_scenarios=False, check_tranche_stack=False)
    plan = compile_plan(cfg)
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
    moves: dict[int, list[tuple[dict, dict, str, Any, str]]] = {}
    kept_balance: set[int] = set()
    for path, value in point.items():
        parts = path.split(".")
        if len(parts) == 5 and parts[0] == "deals" and parts[2] == "tranches" and parts[4] == "balance":
            container, _ = locate(data, path)
            kept_balance.add(id(container))
        if not _is_tranche_point(path):
            continue
        deals, d = locate(data, ".".join(parts[:2]))
        tranche, end = locate(data, path)
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
    frame = pd.concat(frames, ignore_index=True)
    first = [*dims, "scenario"]
    return frame[first + [c for c in frame.columns if c not in first]]


def write_sweep(frame: pd.DataFrame, out: str | Path, manifest: dict, overwrite: bool = False) -> Path:
    """``out/sweep.parquet`` and ``out/sweep.csv``, then ``out/manifest.json`` (last: a directory
    without it is not a finished sweep), each written atomically."""
    out = Path(out)
    check_writable(out, overwrite, kind="sweep")
    with claim(out, "sweep", overwrite):
        remove_written(out, ("finished",))
        write_table(frame, out / f"{SWEEP_TABLE}.parquet")
        atomic_write(out / f"{SWEEP_TABLE}.csv", lambda tmp: frame.to_csv(tmp, index=False))
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
