"""The run loop's shortcuts against the full loop, path by path.

A run skips work a statement needs but no path output reads: a deal's waterfall stops once the deal
is settled (kernels/waterfall.py ``_settled``, ``_fees_covered``). A trace (``engine.simulation.execute.trace``)
records the monthly statement and so runs every month of every deal; its path outputs are the
general loop's. On every example config and benchmark workload, and on configs built to sit on each
condition of the stop, every output of every path must be the same bits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from builders import base_dict, make_config
from engine import load_config
from engine.plan.compile import compile_plan
from engine.plan.rng import DrawSource
from engine.simulation.execute import simulate, trace
from kernels.plan import OP_FEES, OP_INTEREST, TRANCHE_LEDGER_COLUMNS, PathOutputs

ROOT = Path(__file__).resolve().parent.parent
FILES = sorted(ROOT.glob("configs/*.toml")) + [ROOT / "benchmarks" / "workloads" / f"{w}.toml"
                                               for w in ("small", "medium", "qlpool", "network")]
PATHS = 48


def _compare(cfg, paths: int = PATHS) -> int:
    """Assert run outputs == trace outputs on paths 0..paths-1; return how many paths settle early."""
    plan = compile_plan(cfg)
    src = DrawSource.for_config(cfg)
    out = simulate(plan, src, 0, paths)
    bal = TRANCHE_LEDGER_COLUMNS.index("balance")
    early = 0
    for p in range(paths):
        tr = trace(plan, src, p)
        for field in PathOutputs._fields:
            a, b = getattr(out, field)[p], getattr(tr.outputs, field)[0]
            np.testing.assert_array_equal(a, b, err_msg=f"path {p}: {field}")
        # Paths whose notes are all repaid before the last legal final: where the stop can act.
        paid = tr.tranche_ledger[:, :, bal].sum(axis=0)
        early += int(paid[1:].min() == 0.0 and np.nonzero(paid[1:])[0].size < plan.months - 1)
    return early


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_run_outputs_equal_the_statement_loop_on_every_example(path):
    cfg = load_config(path)
    _compare(cfg)


def _settling(fixed_fee: float, lease_months: int, ard: int = 0):
    """The conftest deal, lightly levered so that it repays early: a fixed fee drawing on the reserve,
    and leases that end (cash below the fee) after the notes are repaid when ``lease_months`` is short;
    an ARD after the repayment when ``ard`` > 0."""
    d = base_dict()
    deal = d["deals"][0]
    for t in deal["tranches"]:
        t["balance"] /= 4.0
    deal["fees"] = {"bps": 20.0, "fixed_monthly": fixed_fee}
    if ard:
        deal["ard"] = {"month": ard, "refinance_threshold": 0.0, "step_up_bps": 100.0}
    for lease in deal["leases"]:
        lease["start_month"] = 0
        lease["term_months"] = lease_months
    return make_config(d)


@pytest.mark.parametrize("fixed_fee, lease_months, ard", [(0.0, 60, 0), (10_000.0, 60, 0), (10_000.0, 30, 0), (3e6, 30, 0),
                                                       (0.0, 60, 50)],
                         ids=["no-fixed-fee", "fee-covered", "cash-ends-below-the-fee", "fee-above-the-rent", "ard-after"])
def test_run_outputs_equal_the_statement_loop_where_the_stop_is_decided(fixed_fee, lease_months, ard):
    cfg = _settling(fixed_fee, lease_months, ard)
    early = _compare(cfg, 64)
    assert early > 0  # the stop is reachable on these paths, so the comparison tests it


def test_a_settled_deal_with_triggers_waits_for_the_dscr_window():
    """The trailing DSCR of the month after a repayment still holds the repayment month's debt
    service: here a 0.9m scheduled payment in month 24 against 1m of rent drops the 3-month DSCR from
    about 220 to 3.3, below the rapid-amortisation level 5, in month 25, after the notes are repaid.
    The run must record that month as the statement does."""
    d = base_dict()
    for t in d["tenants"]:
        t["pd"] = 1e-9
    deal = d["deals"][0]
    deal["leases"] = [{"tenant": "lab", "term_months": 60, "monthly_rent": 1e6, "gpu_cost": 5e6}]
    deal["tranches"] = [{"name": "A", "balance": 0.9e6, "coupon": 0.06, "amortization": "schedule",
                         "target_schedule": [[24, 0.0]]}]
    deal["triggers"] = {"rapid_amortization_dscr": 5.0}
    deal["waterfall"] = [{"type": "fees"}, {"type": "interest", "classes": ["A"]}, {"type": "reserve"},
                         {"type": "principal", "classes": ["A"]}, {"type": "residual"}]
    cfg = make_config(d)
    _compare(cfg, 8)
    out = simulate(compile_plan(cfg), DrawSource.for_config(cfg), 0, 8)
    assert (out.deal_rapid_month == 25).all()


def test_a_fee_step_after_the_reserve_step_never_draws_it():
    """`_fees_covered` counts on this rule of engine/plan/compile.py: only the steps before the reserve step
    draw on it. A fee step after it could otherwise be left short by a deposit of trapped cash."""
    d = base_dict()
    deal = d["deals"][0]
    deal["waterfall"] = [{"type": "interest", "classes": ["A"]}, {"type": "reserve"}, {"type": "fees"},
                         {"type": "interest", "classes": ["B"]}, {"type": "principal", "classes": ["A", "B", "E"]},
                         {"type": "residual"}]
    dp = compile_plan(make_config(d)).deals
    assert dp.step_op[0] == OP_INTEREST and dp.step_draws_reserve[0] == 1  # before the reserve: draws
    assert dp.step_op[2] == OP_FEES and dp.step_draws_reserve[2] == 0
