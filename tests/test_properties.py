"""Invariants of the whole simulation, on random small configs (hypothesis).

Cash conservation every month, 0 ≤ loss ≤ 1, seniority under sequential pay, zero stress gives
zero loss, and monotonicity in PD under common random numbers (STYLE.md, "Invariants").
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from builders import base_dict, make_config
from engine.plan.compile import compile_plan
from engine.plan.rng import DrawSource
from engine.simulation.execute import simulate, trace
from kernels.plan import LEDGER_COLUMNS

PATHS = 300
IN = [LEDGER_COLUMNS.index(c) for c in ("rent", "recovery", "sale", "reserve_interest", "reserve_draw", "reserve_release")]
OUT = [LEDGER_COLUMNS.index(c) for c in ("fees", "interest", "principal", "reserve_deposit", "residual")]


@st.composite
def configs(draw, sweep_only=False):
    d = base_dict()
    d["run"]["seed"] = draw(st.integers(0, 2**31))
    d["factor"]["persistence"] = draw(st.sampled_from([1.0, 0.97, 0.8]))
    d["factor"]["burst"] = {"monthly_hazard": draw(st.sampled_from([0.0, 0.02, 0.1])), "shift": draw(st.floats(-2.5, 0))}
    d["gpu"]["economic_life_months"] = draw(st.floats(12, 72))
    d["gpu"]["releases"] = draw(st.sampled_from(["scheduled", "poisson"]))
    for t in d["tenants"]:
        t["pd"] = draw(st.floats(0.0, 0.4))
        t["rho"] = draw(st.floats(0.0, 0.8))
    deal = d["deals"][0]
    for lease in deal["leases"]:
        lease["recovery"] = draw(st.sampled_from(["sale", "fixed"]))
        lease["recovery_rate"] = draw(st.floats(0, 1))
        lease["liquidation_cost"] = draw(st.floats(0, 0.5))
    for tr in deal["tranches"]:
        tr["balance"] = draw(st.floats(5e6, 80e6))
        if not sweep_only:
            tr["amortization"] = draw(st.sampled_from(["sweep", "level", "bullet"]))
    deal["tranches"][0]["coupon"] = draw(st.floats(0, 0.15))
    deal["tranches"][1]["coupon"] = draw(st.floats(0, 0.2))
    deal["reserve"] = {"initial_balance": draw(st.floats(0, 5e6)), "target_months": draw(st.floats(0, 9)), "rate": draw(st.floats(0, 0.05))}
    deal["fees"] = {"bps": draw(st.floats(0, 100)), "fixed_monthly": draw(st.floats(0, 1e5))}
    if not sweep_only and draw(st.booleans()):
        deal["waterfall"][4] = {"type": "principal", "classes": ["A", "B", "E"], "mode": "pro_rata"}
    return d


def _outputs(d, paths=PATHS):
    cfg = make_config(d)
    plan = compile_plan(cfg)
    return plan, DrawSource.for_config(cfg), simulate(plan, DrawSource.for_config(cfg), 0, paths)


@settings(max_examples=25)
@given(configs())
def test_cash_is_conserved_every_month_and_the_reserve_balances(d):
    cfg = make_config(d)
    plan, source = compile_plan(cfg), DrawSource.for_config(cfg)
    for p in range(0, 40, 4):
        L = trace(plan, source, p).ledger[0]
        inflow, outflow = L[:, IN].sum(axis=1), L[:, OUT].sum(axis=1)
        scale = max(1.0, np.abs(L[:, IN]).max())
        np.testing.assert_allclose(inflow, outflow, rtol=0, atol=1e-9 * scale)
        assert (L[:, :11] >= -1e-9 * scale).all(), "a negative cash flow"
        # reserve_t = reserve_{t−1} − draw − release + deposit
        res = np.concatenate([[d["deals"][0]["reserve"]["initial_balance"]], L[1:, LEDGER_COLUMNS.index("reserve_balance")]])
        col = LEDGER_COLUMNS.index
        step = -L[1:, col("reserve_draw")] - L[1:, col("reserve_release")] + L[1:, col("reserve_deposit")]
        np.testing.assert_allclose(np.diff(res)[: plan.deals.deal_legal_final[0]], step[: plan.deals.deal_legal_final[0]], atol=1e-9 * scale)


@given(configs())
def test_losses_are_fractions_and_allocation_matches_its_definition(d):
    plan, _, out = _outputs(d)
    assert ((out.tranche_loss >= 0) & (out.tranche_loss <= 1)).all()
    assert ((out.deal_net_loss >= 0) & (out.deal_net_loss <= 1)).all()
    a, w = plan.deals.tranche_attach, plan.deals.tranche_detach - plan.deals.tranche_attach
    expected = np.clip(out.deal_net_loss[:, [0]] - a, 0, w) / w
    np.testing.assert_allclose(out.tranche_alloc_loss, expected, rtol=0, atol=1e-15)
    assert ((out.tranche_first_loss > 0) == (out.tranche_loss > 0)).all()


# The two properties below are implications on paths ("a senior loss only once the juniors are
# wiped", "a higher PD never lowers a loss"): an example where no senior class loses, or where the
# higher PD changes nothing, satisfies them trivially. Each test therefore runs its property inside
# itself and counts the examples that exercised it, and fails if fewer than a quarter did (in the
# derandomized runs, when written: 27 of 40 had a senior loss; 23 of 25 had more defaults and a
# strictly larger loss at the higher PD).
NON_TRIVIAL_SHARE = 0.25


def _enough(tally: dict, key: str) -> bool:
    return tally["examples"] > 0 and tally[key] >= max(1, NON_TRIVIAL_SHARE * tally["examples"])


def test_seniority_under_sequential_pay():
    tally = {"examples": 0, "senior_loss": 0}

    @given(configs(sweep_only=True))
    def seniority(d):
        _, _, out = _outputs(d)
        loss = out.tranche_loss  # classes A, B, E in order of seniority
        for senior in range(2):
            juniors_wiped = (loss[:, senior + 1:] == 1.0).all(axis=1)
            assert not ((loss[:, senior] > 0) & ~juniors_wiped).any()
        tally["examples"] += 1
        tally["senior_loss"] += bool((loss[:, :2] > 0).any())  # some path where the implication bites

    seniority()
    assert _enough(tally, "senior_loss"), f"the property was exercised too rarely: {tally}"


@given(st.integers(0, 2**31), st.floats(0.0, 0.9), st.sampled_from([1.0, 0.9]))
def test_zero_stress_gives_zero_loss(seed, rho, phi):
    d = base_dict()
    d["run"]["seed"] = seed
    d["factor"]["persistence"] = phi
    for t in d["tenants"]:
        t["pd"], t["rho"] = 0.0, rho
    for tr in d["deals"][0]["tranches"]:
        tr["balance"] = 10e6  # rents of ≈ $2.5m a month cover $30m of notes many times over
    plan, _, out = _outputs(d)
    assert (out.deal_defaults == 0).all()
    assert (out.tranche_loss == 0).all() and (out.deal_net_loss == 0).all()
    assert (out.tranche_any_shortfall == 0).all() and (out.tranche_shortfall == 0).all()
    assert (out.tranche_alloc_loss == 0).all()


def test_higher_pd_never_lowers_any_loss_under_common_random_numbers():
    tally = {"examples": 0, "more_defaults": 0, "more_loss": 0}

    @settings(max_examples=25)
    @given(configs(sweep_only=True), st.floats(1.05, 3.0))
    def monotone_in_pd(d, factor):
        # With no recovery, an earlier default only removes cash, month by month; the plain sequential
        # waterfall then pays every class no more than before. (Recoveries worth more than the lost rent
        # and terminal sale would break this, and so would a trigger.)
        for lease in d["deals"][0]["leases"]:
            lease["recovery"], lease["recovery_rate"] = "fixed", 0.0
        _, _, low = _outputs(d)
        for t in d["tenants"]:
            t["pd"] = min(0.95, t["pd"] * factor)
        _, _, high = _outputs(d)
        assert (high.deal_defaults >= low.deal_defaults).all()
        assert (high.deal_net_loss >= low.deal_net_loss - 1e-15).all()
        assert (high.tranche_loss >= low.tranche_loss - 1e-12).all()
        tally["examples"] += 1
        tally["more_defaults"] += bool((high.deal_defaults > low.deal_defaults).any())
        tally["more_loss"] += bool((high.tranche_loss > low.tranche_loss + 1e-12).any())  # a strict increase

    monotone_in_pd()
    assert _enough(tally, "more_defaults") and _enough(tally, "more_loss"), f"the property was exercised too rarely: {tally}"
