"""Deal-realism features checked against hand-computed deals, properties, and config errors.

The hand-computed deals are deterministic what-ifs (config `deterministic`: a given factor path, tenants
default only in their `default_month`, renewals by Φ(a + b·X) ≥ ½, replacement tenants never
default). Every expected number below is worked out from docs/model.md with small explicit
arithmetic, month by month, and never read off the engine.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import naive
from engine.plan.compile import compile_plan
from engine.config import ConfigError, validate_config
from engine.plan.rng import DrawSource, draw_source
from engine.simulation.execute import trace
from kernels.plan import LEDGER_COLUMNS
from kernels.uniforms import uniform

COL = {c: i for i, c in enumerate(LEDGER_COLUMNS)}
REL = 1e-12


def _hand_base(months: int) -> dict:
    """No depreciation surprises: X_t = 0, no factor loadings, straight-line GPU life of 10 months."""
    return {
        "run": {"months": months, "paths": 1, "seed": 1, "discount_rate": 0.0},
        "factor": {"persistence": 0.9},
        "gpu": {"economic_life_months": 10, "salvage": 0.0, "obsolescence_haircut": 0.0, "factor_beta": 0.0,
                "first_release_month": 1, "generation_interval_months": 100},
        "facility": {"life_months": 100, "factor_beta": 0.0},
        "market_rent": {"factor_beta": 0.0},
        "tenants": [],
        "deals": [],
        "deterministic": {"factor": [[0, 0.0]]},
    }


def _lease(tenant, rent, term, start=0, **kw):
    return {"tenant": tenant, "start_month": start, "term_months": term, "monthly_rent": rent, **kw}


def _trace(d: dict):
    cfg = validate_config(d)
    plan = compile_plan(cfg)
    return cfg, trace(plan, draw_source(cfg), 0)


def _check_month(L, t, **expected):
    for name, value in expected.items():
        assert L[t, COL[name]] == pytest.approx(value, rel=REL, abs=1e-12), f"month {t}: {name}"


def _check_steps(S, t, values):
    np.testing.assert_allclose(S[:, t], values, rtol=REL, atol=1e-12, err_msg=f"month {t}: step ledger")


# --------------------------------------------------------------------------- deal 1: fees, pro-rata group,
# PIK, reserve draws, schedule principal, legal final


def _deal_one() -> dict:
    d = _hand_base(4)
    d["tenants"] = [{"name": "a", "pd": 0.01, "rho": 0.1, "default_month": 3}, {"name": "b", "pd": 0.01, "rho": 0.1}]
    d["deals"] = [{
        "name": "one", "legal_final_month": 4,
        "leases": [
            _lease("a", 100, 4, gpu_cost=200, recovery="fixed", recovery_rate=0.5, recovery_lag=1),
            _lease("b", 4, 4, sale_lag=0),
        ],
        "tranches": [
            {"name": "A1", "balance": 800, "coupon": 0.15, "rank": 1, "amortization": "schedule",
             "target_schedule": [[1, 760], [2, 720]]},
            {"name": "A2", "balance": 400, "coupon": 0.15, "rank": 1},
            {"name": "B", "balance": 480, "coupon": 0.25, "rank": 2, "deferrable": True},
        ],
        "fees": {"fixed_monthly": 6},
        "reserve": {"initial_balance": 12, "target_months": 1, "rate": 0.12},
        "waterfall": [
            {"type": "fees"},
            {"type": "interest", "classes": ["A1", "A2"]},
            {"type": "reserve"},
            {"type": "interest", "classes": ["B"]},
            {"type": "principal", "classes": ["A1"]},
            {"type": "principal", "classes": ["A2", "B"]},
            {"type": "residual"},
        ],
    }]
    return d


def test_hand_deal_fees_pro_rata_pik_reserve_draws():
    cfg, tr = _trace(_deal_one())
    L, S, TL = tr.ledger[0], tr.step_ledger, tr.tranche_ledger
    c = 0.15 / 12  # A1 and A2 monthly coupon
    # Collections: a pays 100 in months 1–2 (defaults in 3); fixed recovery 0.5 × 200 in month 3 + 1; b pays 4.
    for t, rent in ((1, 104), (2, 104), (3, 4), (4, 4)):
        _check_month(L, t, rent=rent, recovery=100 if t == 4 else 0, sale=0, rvg=0, termination_fee=0, abs_collateral=0)

    # Month 1: reserve 12 earns 1% → 0.12. fees 6; A1 10 + A2 5; reserve target 1 × 15 → deposit 3;
    # B 10; A1 scheduled 800 → 760: 40; A2 sweeps the rest.
    cash = 104 + 0.12 - 6 - 15 - 3 - 10 - 40
    a2 = 400 - cash
    _check_month(L, 1, reserve_interest=0.12, fees=6, interest=25, reserve_deposit=3, principal=40 + cash, residual=0,
                 reserve_draw=0, reserve_balance=15)
    _check_steps(S, 1, [6, 15, 3, 10, 40, cash, 0])
    # Month 2: reserve 15 → 0.15; A1 on 760, A2 on a2; target = that senior interest < 15: no deposit.
    int_a = c * 760 + c * a2
    cash = 104 + 0.15 - 6 - int_a - 10 - 40
    a2_m2 = a2 - cash
    _check_month(L, 2, reserve_interest=0.15, fees=6, interest=int_a + 10, reserve_deposit=0, principal=40 + cash,
                 reserve_balance=15)
    _check_steps(S, 2, [6, int_a, 0, 10, 40, cash, 0])
    # Month 3: 4 + 0.15 of cash; fees draw 1.85 from the reserve (13.15 left); A1 + A2 interest is more than
    # that: the reserve is emptied and the classes are paid pro rata; B's coupon is capitalised (PIK).
    due_a1, due_a2 = c * 720, c * a2_m2
    paid = 13.15
    paid_a1, paid_a2 = paid * due_a1 / (due_a1 + due_a2), paid * due_a2 / (due_a1 + due_a2)
    short_a1, short_a2 = due_a1 - paid_a1, due_a2 - paid_a2
    _check_month(L, 3, reserve_interest=0.15, reserve_draw=1.85 + 13.15, fees=6, interest=paid, principal=0,
                 reserve_deposit=0, residual=0, reserve_balance=0)
    _check_steps(S, 3, [6, paid, 0, 0, 0, 0, 0])
    b_bal = 480 + 0.25 / 12 * 480
    assert TL[2, 3, 2] == pytest.approx(b_bal, rel=REL)
    # Month 4 (legal final): 104, nothing in the reserve; carried shortfalls accrue at the coupon.
    due_a1_4 = c * 720 + short_a1 * (1 + c)
    due_a2_4 = c * a2_m2 + short_a2 * (1 + c)
    int_b = 0.25 / 12 * b_bal
    cash = 104 - 6 - due_a1_4 - due_a2_4 - int_b
    _check_month(L, 4, reserve_interest=0, reserve_release=0, fees=6, interest=due_a1_4 + due_a2_4 + int_b,
                 principal=cash, residual=0, reserve_balance=0)
    _check_steps(S, 4, [6, due_a1_4 + due_a2_4, 0, int_b, cash, 0, 0])
    # Tranche ledgers.
    np.testing.assert_allclose(TL[0, 1:, 0], [10, c * 760, paid_a1, due_a1_4], rtol=REL)
    np.testing.assert_allclose(TL[1, 1:, 0], [5, c * a2, paid_a2, due_a2_4], rtol=REL)
    np.testing.assert_allclose(TL[2, 1:, 0], [10, 10, 0, int_b], rtol=REL)
    np.testing.assert_allclose(TL[0, 1:, 2], [760, 720, 720, 720 - cash], rtol=REL)
    np.testing.assert_allclose(TL[1, 1:, 2], [a2, a2_m2, a2_m2, a2_m2], rtol=REL)
    np.testing.assert_allclose(TL[2, 1:, 2], [480, 480, b_bal, b_bal], rtol=REL)
    o = tr.outputs
    np.testing.assert_allclose(o.tranche_loss[0], [(720 - cash) / 800, a2_m2 / 400, 1.0], rtol=REL)
    # B's capitalised coupon is written off as interest shortfall, not as principal loss.
    np.testing.assert_allclose(o.tranche_shortfall[0], [0, 0, (b_bal - 480) / 480], rtol=REL, atol=1e-15)
    np.testing.assert_array_equal(o.tranche_any_shortfall[0], [1, 1, 0])  # PIK is no shortfall event
    np.testing.assert_array_equal(o.tranche_first_loss[0], [3, 3, 4])
    assert o.deal_reserve_out[0, 0] == 1
    assert o.deal_reserve_used[0, 0] == pytest.approx(15.0 / 1680, rel=REL)
    # NL_T: a's rent of months 3–4 (200) + 200 − 100 of collateral, over 4·100 + 200 + 4·4.
    assert o.deal_net_loss[0, 0] == pytest.approx(300 / 616, rel=REL)
    assert o.deal_defaults[0, 0] == 1


# --------------------------------------------------------------------------- deal 2: cash trap and rapid amortisation


def _deal_two() -> dict:
    d = _hand_base(9)
    d["tenants"] = [{"name": "b", "pd": 0.01, "rho": 0.1}]
    # Collections 40, 40, 40, 15, 12, 25, 100, 30, 30 from leases of different terms (no collateral).
    d["deals"] = [{
        "name": "two", "legal_final_month": 9,
        "leases": [_lease("b", 12, 9), _lease("b", 28, 3), _lease("b", 3, 1, start=3), _lease("b", 13, 1, start=5),
                   _lease("b", 88, 1, start=6), _lease("b", 18, 2, start=7)],
        "tranches": [{"name": "A", "balance": 1200, "coupon": 0.1, "amortization": "bullet"},
                     {"name": "E", "balance": 1000}],
        "triggers": {"cash_trap_dscr": 3.0, "rapid_amortization_dscr": 2.0},
        "waterfall": [
            {"type": "interest", "classes": ["A"]},
            {"type": "trap"},
            {"type": "principal", "classes": ["A"]},
            {"type": "principal", "classes": ["E"]},
            {"type": "residual"},
        ],
    }]
    return d


def test_hand_deal_cash_trap_and_rapid_amortisation():
    cfg, tr = _trace(_deal_two())
    L, S = tr.ledger[0], tr.step_ledger
    cash = [None, 40, 40, 40, 15, 12, 25, 100, 30, 30]
    for t in range(1, 10):
        _check_month(L, t, rent=cash[t])
    # DSCR_t = Σ collections / Σ senior interest over t−3..t−1 (no fees; A is bullet: no scheduled principal).
    dscr = {4: 120 / 30, 5: 95 / 30, 6: 67 / 30, 7: 52 / 30, 8: 137 / 30, 9: 155 / 30}
    for t, v in dscr.items():
        assert L[t, COL["dscr"]] == pytest.approx(v, rel=REL), f"month {t}: dscr"
    assert np.isnan(L[1:4, COL["dscr"]]).all()
    np.testing.assert_array_equal(L[1:, COL["trap_on"]], [0, 0, 0, 0, 0, 1, 1, 0, 0])  # below 3 in months 6–7
    np.testing.assert_array_equal(L[1:, COL["sweep_on"]], [0, 0, 0, 0, 0, 0, 1, 1, 1])  # below 2 in month 7, for good
    # Months 1–5: interest 10, the rest to E (A is a bullet).
    e = 1000
    for t in range(1, 6):
        _check_steps(S, t, [10, 0, 0, cash[t] - 10, 0])
        e -= cash[t] - 10
    # Month 6: 15 trapped; month 7: 90 trapped (A is swept from month 7, but nothing reaches the principal
    # step); month 8: the trap is off and the 105 come back, all to A under the sweep.
    _check_steps(S, 6, [10, 15, 0, 0, 0])
    _check_month(L, 6, trapped=15, reserve_balance=15, principal=0)
    _check_steps(S, 7, [10, 90, 0, 0, 0])
    _check_month(L, 7, trapped=90, reserve_balance=105, principal=0)
    _check_steps(S, 8, [10, -105, 125, 0, 0])
    _check_month(L, 8, trapped=-105, reserve_balance=0, principal=125, interest=10)
    a = 1200 - 125
    int9 = 0.1 / 12 * a
    _check_steps(S, 9, [int9, 0, 30 - int9, 0, 0])
    o = tr.outputs
    assert o.deal_trap_month[0, 0] == 6 and o.deal_rapid_month[0, 0] == 7
    np.testing.assert_allclose(o.tranche_loss[0], [(a - (30 - int9)) / 1200, e / 1000], rtol=REL)


# --------------------------------------------------------------------------- deal 3: ARD, io, step-up


def _deal_three(x: float) -> dict:
    d = _hand_base(6)
    d["deterministic"] = {"factor": [[0, x]]}
    d["tenants"] = [{"name": "b", "pd": 0.01, "rho": 0.1}]
    d["deals"] = [{
        "name": "three", "legal_final_month": 6,
        "leases": [_lease("b", 30, 6)],
        "tranches": [{"name": "A", "balance": 60, "coupon": 0.1, "amortization": "io"},
                     {"name": "B", "balance": 24, "coupon": 0.1, "amortization": "io"}],
        "reserve": {"initial_balance": 10},
        "ard": {"month": 3, "refinance_threshold": 0.0, "step_up_bps": 1200},
        "waterfall": [{"type": "interest", "classes": ["A", "B"]}, {"type": "principal", "classes": ["A", "B"]}],
    }]
    return d


def test_hand_deal_ard_refinanced():
    cfg, tr = _trace(_deal_three(0.0))  # X_3 = 0 ≥ 0: the market is open
    L, TL = tr.ledger[0], tr.tranche_ledger
    for t in (1, 2):
        _check_month(L, t, rent=30, interest=0.7, principal=0, residual=29.3, reserve_balance=10)
    # Month 3: the reserve is released into the waterfall; after it, new money repays both classes.
    _check_month(L, 3, reserve_release=10, interest=0.7, principal=0, residual=39.3, refinanced=84, reserve_balance=0)
    assert (L[4:, COL["residual"]] == 0).all() and (L[4:, COL["interest"]] == 0).all()  # the deal has ended
    np.testing.assert_allclose(TL[:, 3, 1], [60, 24])
    np.testing.assert_allclose(TL[:, 3, 2], [0, 0])
    o = tr.outputs
    assert o.deal_ard[0, 0] == 1
    np.testing.assert_allclose(o.tranche_loss[0], [0, 0])
    np.testing.assert_allclose(o.tranche_pv[0], [(1.5 + 60) / 60, (0.6 + 24) / 24], rtol=REL)  # discount rate 0
    np.testing.assert_allclose(o.tranche_wal[0], [0.25, 0.25], rtol=REL)


def test_hand_deal_ard_closed_market_sweeps_with_step_up():
    cfg, tr = _trace(_deal_three(-1.0))  # X_3 = −1 < 0: closed
    L, TL = tr.ledger[0], tr.tranche_ledger
    su = 0.01  # 1200 bps a year
    for t in (1, 2):
        _check_month(L, t, interest=0.7, principal=0, residual=29.3, step_up_interest=0, sweep_on=0)
    # Month 3: swept; step-up accrues from the end of the month on the balances then.
    a3 = 60 - 29.3
    _check_month(L, 3, interest=0.7, principal=29.3, residual=0, sweep_on=1, refinanced=0)
    su_a, su_b = su * a3, su * 24
    # Month 4: interest on A 30.7 and B 24; the rest sweeps A; no cash left for the step-up.
    int4 = 0.1 / 12 * a3 + 0.2
    a4 = a3 - (30 - int4)
    _check_month(L, 4, interest=int4, principal=30 - int4, step_up_interest=0, residual=0)
    su_a += su * a4
    su_b += su * 24
    # Month 5: A and B repaid; the step-up is paid at the residual position, the rest to the residual holder.
    int5 = 0.1 / 12 * a4 + 0.2
    left = 30 - int5 - a4 - 24
    _check_month(L, 5, interest=int5, principal=a4 + 24, step_up_interest=su_a + su_b, residual=left - su_a - su_b)
    # Month 6 (legal final): nothing owed; the reserve is released.
    _check_month(L, 6, reserve_release=10, interest=0, principal=0, step_up_interest=0, residual=40)
    np.testing.assert_allclose(TL[:, 5, 2], [0, 0], atol=1e-12)
    o = tr.outputs
    assert o.deal_ard[0, 0] == 2
    np.testing.assert_allclose(o.tranche_loss[0], [0, 0], atol=1e-15)
    # pv counts the step-up interest received (discount rate 0).
    np.testing.assert_allclose(o.tranche_pv[0], [(0.5 * 3 + 0.1 / 12 * a3 + 0.1 / 12 * a4 + 60 + su_a) / 60,
                                                 (0.2 * 5 + 24 + su_b) / 24], rtol=REL)


# --------------------------------------------------------------------------- deal 4: option leases


def _deal_four(guarantor_default: int | None = None) -> dict:
    d = _hand_base(12)
    d["gpu"].update(obsolescence_haircut=0.5, first_release_month=7)  # O_t = m_t = 1, then ½ from month 7
    d["tenants"] = [{"name": n, "pd": 0.01, "rho": 0.1} for n in ("r", "g", "d", "t")]
    d["tenants"][2]["default_month"] = 3
    if guarantor_default is not None:
        d["tenants"].append({"name": "gg", "pd": 0.01, "rho": 0.1, "default_month": guarantor_default})
    d["deals"] = [{
        "name": "four", "legal_final_month": 12,
        "leases": [
            # renews at month 8 at μ = m_8 = ½ for months 9–12 (ends at T: nothing more)
            _lease("r", 10, 8, renewals=1, renewal_term=4, renewal_intercept=1.0),
            # RVG at month 6: K = 80 + (30 − 80)·6/12 = 55, V_6 = 100·(1 − 6/10) = 40, capped at 10; sale at 8
            _lease("g", 20, 6, gpu_cost=100, liquidation_cost=0.0, sale_lag=2, rvg_threshold=80, rvg_threshold_end=30,
                   rvg_months=12, rvg_cap=10, **({"rvg_guarantor": "gg"} if guarantor_default is not None else {})),
            # default at 3, re-let after 4 months at 30·m_7 = 15 for months 8–10; sold at 11: 100·(1 − 11/100)·0.9
            _lease("d", 30, 10, shell_value=100, recovery="relet", downtime=4, sale_lag=1),
            # m_7 = ½ < 0.8: terminated in month 7 with 2 months' fee; sold at 10: 50·(1 − 10/100)·0.9
            _lease("t", 40, 10, gpu_cost=200, shell_value=50, termination_threshold=0.8, termination_fee_months=2,
                   termination_earliest_month=3, sale_lag=3),
            _lease("r", 1, 3, renewals=1, renewal_term=2, sale_lag=0),  # Φ(0) = ½: renews (≥ ½)
            _lease("r", 2, 3, renewals=1, renewal_intercept=-1.0, sale_lag=0),  # Φ(−1) < ½: declines
        ],
        "tranches": [{"name": "A", "balance": 100}],
        "waterfall": [{"type": "principal", "classes": ["A"]}],
    }]
    return d


def test_hand_deal_option_leases():
    cfg, tr = _trace(_deal_four())
    L = tr.ledger[0]
    for t in range(1, 13):
        rent = ((10 if t <= 8 else 5) + (20 if t <= 6 else 0) + (30 if t <= 2 else 15 if 8 <= t <= 10 else 0)
                + (40 if t <= 7 else 0) + (1 if t <= 5 else 0) + (2 if t <= 3 else 0))
        sale = {8: 10.0, 10: 40.5, 11: 80.1}.get(t, 0.0)
        _check_month(L, t, rent=rent, rvg=10 if t == 6 else 0, termination_fee=80 if t == 7 else 0, recovery=0, sale=sale)
    o = tr.outputs
    assert o.deal_renewals[0, 0] == 2
    p0 = 80 + (120 + 100) + (300 + 100) + (400 + 250) + 3 + 6
    assert o.deal_rvg[0, 0] == pytest.approx(10 / p0, rel=REL)
    assert o.deal_recovery[0, 0] == pytest.approx((10 + 40.5 + 80.1) / p0, rel=REL)
    # NL_T: the re-let lease got 60 + 3·15 of its 300; the terminated one 7·40 + 80 of its 400.
    assert o.deal_net_loss[0, 0] == pytest.approx((300 - 105 + 400 - 360) / p0, rel=REL)
    assert o.deal_defaults[0, 0] == 1


def test_rvg_pays_nothing_once_the_guarantor_has_defaulted():
    _, alive = _trace(_deal_four(guarantor_default=7))  # defaults after the term end (6): pays
    _, dead = _trace(_deal_four(guarantor_default=6))  # defaulted by the term end: nothing
    assert alive.ledger[0, 6, COL["rvg"]] == pytest.approx(10, rel=REL)
    assert (dead.ledger[0, :, COL["rvg"]] == 0).all()
    assert dead.outputs.deal_rvg[0, 0] == 0
    # Nothing else about the lease changes.
    other = [COL[c] for c in ("rent", "sale", "recovery", "termination_fee")]
    np.testing.assert_array_equal(alive.ledger[0][:, other], dead.ledger[0][:, other])


def test_lease_past_the_horizon_with_a_surviving_tenant_is_no_loss():
    # Regression: an option lease whose term runs beyond T, tenant alive, once counted its whole
    # collateral as unrecovered in NL_T (τ = T+1 was read as a default).
    d = _hand_base(12)
    d["tenants"] = [{"name": "r", "pd": 0.01, "rho": 0.1}]
    d["deals"] = [{"name": "x", "legal_final_month": 12,
                   "leases": [_lease("r", 10, 20, gpu_cost=500, termination_threshold=0.5)],
                   "tranches": [{"name": "A", "balance": 100}], "waterfall": [{"type": "principal", "classes": ["A"]}]}]
    _, tr = _trace(d)
    assert tr.outputs.deal_net_loss[0, 0] == 0.0
    np.testing.assert_allclose(tr.ledger[0, 1:, COL["rent"]], 10)
    assert (tr.ledger[0, :, COL["recovery"]] == 0).all()


def test_abs_of_abs_written_off_tranche_is_no_tenant_default():
    d = _deal_three(-1.0)
    d["deals"][0]["leases"][0]["monthly_rent"] = 0.5  # A and B are never repaid
    d["deals"][0]["leases"][0]["gpu_cost"] = 1.0
    d["deals"].append({"name": "h", "legal_final_month": 6, "collateral_tranches": [{"deal": "three", "tranche": "B", "fraction": 0.5}],
                       "tranches": [{"name": "S", "balance": 5}], "waterfall": [{"type": "principal", "classes": ["S"]}]})
    _, tr = _trace(d)
    assert tr.outputs.tranche_loss[0, 1] > 0
    np.testing.assert_array_equal(tr.outputs.deal_defaults[0], [0, 0])  # docs/model.md: tenants that defaulted


def test_option_uniform_is_splitmix64_of_the_spec():
    rng = np.random.default_rng(5)
    for key in rng.integers(0, 2**64, 50, dtype=np.uint64):
        for lease, slot in ((0, 1), (3, 2), (1000, 8), (2**20 - 1, 2**20 - 1)):
            assert uniform(np.uint64(key), lease, slot) == naive.splitmix_uniform(int(key), lease, slot)


# --------------------------------------------------------------------------- properties

from builders import INFLOW, OUTFLOW, stressed_base, with_abs_of_abs, with_ard, with_options, with_structures  # noqa: E402


def _with(d, seed, **kw):
    d["run"]["seed"] = seed
    return d


@settings(max_examples=6)
@given(st.sampled_from(["options", "structures", "ard", "abs"]), st.integers(0, 2**31))
def test_cash_is_conserved_with_every_new_step(kind, seed):
    builder = {"options": with_options, "structures": with_structures, "ard": with_ard, "abs": with_abs_of_abs}[kind]
    d = _with(builder(stressed_base()), seed)
    cfg = validate_config(d)
    plan, source = compile_plan(cfg), DrawSource.for_config(cfg)
    for p in range(8):
        tr = trace(plan, source, p)
        for dl, deal in enumerate(cfg.deals):
            L = tr.ledger[dl]
            end = deal.ard.month if tr.outputs.deal_ard[0, dl] == 1 else deal.legal_final_month  # refinanced: ends
            scale = 1e-9 * max(1.0, np.abs(L[:, :COL["reserve_balance"]]).max())
            np.testing.assert_allclose(L[1:end + 1, INFLOW].sum(axis=1), L[1:end + 1, OUTFLOW].sum(axis=1), rtol=0, atol=scale)
            # each step's payments add up to the deal ledger
            s0 = sum(len(x.waterfall) for x in cfg.deals[:dl])
            steps = [s.type for s in deal.waterfall]
            S = tr.step_ledger[s0:s0 + len(steps)]
            for kind_, col in (("fees", "fees"), ("interest", "interest"), ("principal", "principal"),
                               ("reserve", "reserve_deposit"), ("trap", "trapped")):
                rows = [i for i, k in enumerate(steps) if k == kind_]
                np.testing.assert_allclose(S[rows].sum(axis=0), L[:, COL[col]], rtol=0, atol=scale)


@settings(max_examples=8)
@given(st.integers(0, 2**31), st.floats(0.8, 1.6))
def test_sweep_never_turns_off_once_rapid_amortisation_starts(seed, level):
    d = with_structures(stressed_base())
    d["run"]["seed"] = seed
    d["deals"][0]["triggers"]["rapid_amortization_dscr"] = level
    cfg = validate_config(d)
    plan, source = compile_plan(cfg), DrawSource.for_config(cfg)
    for p in range(10):
        tr = trace(plan, source, p)
        sweep = tr.ledger[0, 1:cfg.deals[0].legal_final_month + 1, COL["sweep_on"]]
        first = tr.outputs.deal_rapid_month[0, 0]
        if first:
            assert (sweep[first - 1:] == 1).all()
            assert (sweep[:first - 1] == 0).all()  # no ARD in this deal: nothing else sweeps
        else:
            assert (sweep == 0).all()


@settings(max_examples=6)
@given(st.integers(0, 2**31), st.floats(0.1, 1.0), st.floats(0.1, 1.0))
def test_abs_collateral_is_the_held_share_of_the_tranche_cash(seed, f_b, f_e):
    d = with_abs_of_abs(stressed_base())
    d["run"]["seed"] = seed
    d["deals"][2]["ard"]["step_up_bps"] = 0  # the tranche ledger has no step-up column: keep all cash in it
    d["deals"][1]["collateral_tranches"] = [{"deal": "d1", "tranche": "B", "fraction": f_b},
                                            {"deal": "d1", "tranche": "E", "fraction": f_e}]
    cfg = validate_config(d)
    plan, source = compile_plan(cfg), DrawSource.for_config(cfg)
    names = [(deal.name, tr.name) for deal in cfg.deals for tr in deal.tranches]
    kb, ke = names.index(("d1", "B")), names.index(("d1", "E"))
    kj = names.index(("h", "J"))
    cash_seen = 0
    for p in range(8):
        tr = trace(plan, source, p)
        TL = tr.tranche_ledger
        L = tr.ledger
        assert not (L[2, :, COL["step_up_interest"]] > 0).any()
        expected_h = f_b * (TL[kb, :, 0] + TL[kb, :, 1]) + f_e * (TL[ke, :, 0] + TL[ke, :, 1])
        np.testing.assert_allclose(L[1, :, COL["abs_collateral"]], expected_h, rtol=1e-12, atol=1e-6)
        cash_seen += int(expected_h.sum() > 0)
        np.testing.assert_allclose(L[0, :, COL["abs_collateral"]], TL[kj, :, 0] + TL[kj, :, 1], rtol=1e-12, atol=1e-6)
    assert cash_seen > 0


# --------------------------------------------------------------------------- bad configs


def _errors(d: dict) -> str:
    with pytest.raises(ConfigError) as exc:
        validate_config(d)
    return str(exc.value)


def _two_deal_dict() -> dict:
    d = with_abs_of_abs(stressed_base())
    return d


def test_cycle_between_deals_is_named():
    d = _two_deal_dict()
    d["deals"][2]["collateral_tranches"] = [{"deal": "top", "tranche": "T", "fraction": 0.5}]  # d1 → top → h → d1
    msg = _errors(d)
    assert "cycle" in msg and "collateral_tranches" in msg
    assert "d1" in msg and "top" in msg and "h" in msg


@pytest.mark.parametrize("change,field,words", [
    (lambda d: d["deals"][2]["waterfall"].insert(1, {"type": "interest", "classes": ["Z"]}), "waterfall", "unknown tranche 'Z'"),
    (lambda d: (d["deals"][2]["tranches"][0].update(rank=1), d["deals"][2]["tranches"][1].update(rank=2),
                d["deals"][2]["waterfall"].__setitem__(1, {"type": "interest", "classes": ["A", "B"]}),
                d["deals"][2]["waterfall"].pop(3)), "classes", "rank"),
    (lambda d: d["deals"][2].pop("ard"), "amortization", "io"),
    (lambda d: d["deals"][2].pop("triggers"), "trap", "cash-trap"),
    (lambda d: d["deals"][2]["leases"][0].update(rvg_threshold=5e6), "rvg_months", "rvg_months"),
    (lambda d: d["deals"][2]["leases"][0].update(rvg_threshold=5e6, rvg_months=12, rvg_guarantor="nobody"),
     "rvg_guarantor", "nobody"),
    (lambda d: d["deals"][1]["collateral_tranches"].append({"deal": "zz", "tranche": "A", "fraction": 0.1}),
     "collateral_tranches", "unknown deal 'zz'"),
    (lambda d: d["deals"][1]["collateral_tranches"].append({"deal": "d1", "tranche": "Q", "fraction": 0.1}),
     "collateral_tranches", "no tranche 'Q'"),
])
def test_bad_deal_configs_name_the_field(change, field, words):
    d = _two_deal_dict()
    change(d)
    msg = _errors(d)
    assert field in msg and words in msg, msg
