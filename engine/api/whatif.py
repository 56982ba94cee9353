"""One path at a time: the monthly cash-flow statement (`dcabs trace`) and the deterministic
break-even search (`dcabs breakeven`), the Intex/AbsBox way of reading a deal."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.config import BASE_SCENARIO, Config, ConfigError, PathError, get_path
from engine.plan.compile import compile_plan
from engine.plan.rng import draw_source
from engine.simulation.execute import simulate, trace
from kernels.plan import LEDGER_COLUMNS


def statement(config: Config, *, scenario: str | None = None, path: int = 0) -> pd.DataFrame:
    """The monthly statement of one path, a row per deal and month 0..T (with ``run.start_date``, a
    ``date`` column after ``month``: the last day of that calendar month).

    Columns: collections by source, the reserve and waterfall totals, trigger states (``dscr``,
    ``trap_on``, ``sweep_on``), the factor and the GPU value index, then for each waterfall step
    ``step<i>_<type>[_<classes>]`` (what it paid; a `trap` release is negative) and for each tranche
    ``<tranche>_interest``, ``<tranche>_principal``, ``<tranche>_balance``, ``<tranche>_shortfall``
    (interest carried unpaid at the month's end) and ``<tranche>_writedown`` (the balance written off
    when the deal ends, in its last month). ``dscr`` is every deal's trailing three-month DSCR (NaN
    in months 1-3), whether or not it has triggers. A deterministic config (``deterministic``) has
    one path; ``path`` must then be 0.
    """
    cfg = config.scenario(scenario or BASE_SCENARIO)
    if path < 0 or path >= cfg.run.paths:
        raise ConfigError([("path", f"path {path} is outside 0..{cfg.run.paths - 1} (run.paths = {cfg.run.paths})")])
    if cfg.deterministic is not None and path != 0:
        raise ConfigError([("path", "a deterministic what-if has one path: use --path 0")])
    plan = compile_plan(cfg)
    tr = trace(plan, draw_source(cfg, tilted=False), path)  # the model's own paths, unweighted
    months = np.arange(plan.months + 1)
    frames = []
    k = 0
    s = 0
    for d, deal in enumerate(cfg.deals):
        frame = {"scenario": scenario or BASE_SCENARIO, "path": path, "deal": deal.name, "month": months}
        for c, name in enumerate(LEDGER_COLUMNS):
            frame[name] = tr.ledger[d, :, c]
        for i, step in enumerate(deal.waterfall):
            label = f"step{i + 1}_{step.type}" + ("_" + "_".join(step.classes) if getattr(step, "classes", None) else "")
            frame[label] = tr.step_ledger[s + i]
        s += len(deal.waterfall)
        for tranche in deal.tranches:
            for c, what in enumerate(tr.tranche_columns):
                frame[f"{tranche.name}_{what}"] = tr.tranche_ledger[k, :, c]
            k += 1
        frames.append(pd.DataFrame(frame))
    out = pd.concat(frames, ignore_index=True)
    out.loc[out["month"] == 0, "dscr"] = np.nan  # closing: nothing has been collected or owed yet
    if cfg.run.start_date is not None:
        closing = pd.Period(cfg.run.start_date, freq="M")
        ends = pd.PeriodIndex([closing + m for m in range(plan.months + 1)]).end_time.normalize()
        out.insert(out.columns.get_loc("month") + 1, "date", np.tile(ends.date, len(cfg.deals)))
    for col in ("trap_on", "sweep_on"):
        out[col] = out[col].astype(bool)
    return out


# Unitless columns; every other number in a statement is US dollars.
RATIO_COLUMNS = ("dscr", "factor", "gpu_index")


def rounded(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` as a file shows it: dollars to the cent, ratios to 6 decimals (the DataFrame from
    :func:`statement` keeps full precision)."""
    money = [c for c in table.columns if table[c].dtype.kind == "f" and c not in RATIO_COLUMNS]
    return table.round({**{c: 2 for c in money}, **{c: 6 for c in RATIO_COLUMNS if c in table}})


@dataclass(frozen=True)
class Breakeven:
    """The result of :func:`breakeven`: the tranche loses principal at ``losing`` and not at
    ``safe``, two values at most ``tol`` apart (adjacent integers for an integer field)."""

    path: str
    deal: str
    tranche: str
    losing: float
    safe: float
    loss_at_losing: float
    evaluations: int

    def describe(self) -> str:
        side = "below" if self.losing < self.safe else "above"
        return (f"tranche {self.tranche} of {self.deal} first loses principal at {self.path} = {self.losing:g} "
                f"(loss {self.loss_at_losing:.4%}); it is repaid in full at {self.safe:g}, and loses {side} the break-even "
                f"({self.evaluations} deterministic runs)")


def breakeven(config: Config, *, tranche: str, vary: str, lo: float | None = None, hi: float | None = None,
              scenario: str | None = None, tol: float = 1e-3, max_evaluations: int = 200) -> Breakeven:
    """Bisect ``vary`` (a dotted config path) over [lo, hi] for the value at which ``tranche``
    (``B`` or ``deal.B``) first loses principal in the config's deterministic what-if.

    The bracket defaults to [¼, 4] × the current value. The tranche must lose at exactly one end.
    """
    cfg = config.scenario(scenario or BASE_SCENARIO)
    if cfg.deterministic is None:
        raise ConfigError([("deterministic", "breakeven needs a deterministic what-if: add a [deterministic] "
                                              "section, or pick a scenario that sets one")])
    deal_index, j = _find_tranche(cfg, tranche)
    deal = cfg.deals[deal_index]
    k = _first(cfg, deal_index) + j  # the tranche's column in the kernel outputs
    current = _current(cfg, vary)
    if not isinstance(current, (int, float)) or isinstance(current, bool):
        raise ConfigError([(vary, f"is {current!r}, not a number to vary")])
    integer = isinstance(current, int)
    lo = current / 4 if lo is None else lo
    hi = current * 4 if hi is None else hi
    if integer:
        lo, hi = int(np.floor(lo)), int(np.ceil(hi))
    if not lo < hi:
        raise ConfigError([("lo", f"the bracket [{lo}, {hi}] is empty")])
    evaluations = 0

    def loss(v: float) -> float:
        nonlocal evaluations
        evaluations += 1
        trial = cfg.with_overrides({vary: int(v) if integer else float(v)})
        plan = compile_plan(trial)
        return float(simulate(plan, draw_source(trial), 0, 1).tranche_loss[0, k])

    loss_lo, loss_hi = loss(lo), loss(hi)
    if (loss_lo > 0) == (loss_hi > 0):
        state = "loses principal" if loss_lo > 0 else "is repaid in full"
        raise ConfigError([(vary, f"tranche {deal.name}.{deal.tranches[j].name} "
                                  f"{state} at both ends of [{lo:g}, {hi:g}]: widen the bracket with --lo/--hi")])
    losing, safe, loss_losing = (lo, hi, loss_lo) if loss_lo > 0 else (hi, lo, loss_hi)
    while abs(losing - safe) > (1 if integer else tol) and evaluations < max_evaluations:
        mid = (losing + safe) // 2 if integer else 0.5 * (losing + safe)
        value = loss(mid)
        if value > 0:
            losing, loss_losing = mid, value
        else:
            safe = mid
    return Breakeven(path=vary, deal=deal.name, tranche=deal.tranches[j].name,
                     losing=losing, safe=safe, loss_at_losing=loss_losing, evaluations=evaluations)


def _first(cfg: Config, deal_index: int) -> int:
    return sum(len(d.tranches) for d in cfg.deals[:deal_index])


def _find_tranche(cfg: Config, name: str) -> tuple[int, int]:
    """(deal index, index within the deal) of ``B`` or ``deal.B``."""
    deal_name, _, tranche = name.rpartition(".")
    hits = [(d, j) for d, deal in enumerate(cfg.deals) for j, t in enumerate(deal.tranches)
            if t.name == tranche and deal_name in ("", deal.name)]
    if not hits:
        raise ConfigError([("tranche", f"no tranche {name!r} in this config")])
    if len(hits) > 1:
        raise ConfigError([("tranche", f"{name!r} is ambiguous: name it as DEAL.{tranche}")])
    return hits[0]


def _current(cfg: Config, path: str):
    try:
        return get_path(cfg.resolved(), path)
    except PathError as exc:
        raise ConfigError([(path, f"names nothing in the config: {exc}")]) from None


__all__ = ["Breakeven", "breakeven", "statement"]
