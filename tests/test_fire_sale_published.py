"""The fire-sale solver (engine.simulation.fire_sale.fire_sale) against open-source fire-sale code.

Each test takes a public repository's own example inputs and compares our equilibrium to either the
numbers that repository's tests assert, or to a plain-Python transcription of its algorithm run here
on those inputs (no number below comes from our solver). Tolerance 1e-6 throughout.

Only examples whose model maps exactly onto ours are used; the mapping is stated in each docstring.
Candidates that do *not* map (and why) are listed at the end of this module.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.simulation.fire_sale import Holder, fire_sale

TOL = 1e-6


def _impact_for_beta(beta_per_unit_fraction: float) -> float:
    """Our ``impact`` such that ``−ln(1 − impact)/0.05`` equals the given β (price factor
    ``exp(−β·Q/M)``)."""
    return -math.expm1(-0.05 * beta_per_unit_fraction)


# --------------------------------------------------------------------------------------------------
# 1. Farmer, Kleinnijenhuis, Nahai-Williamson and Wetzer (2020), "Foundations of system-wide
#    financial stress testing with heterogeneous institutions", Bank of England SWP 861: the
#    open-code fire-sale model github.com/ox-inet-resilience/firesale_stresstest
# --------------------------------------------------------------------------------------------------

# simple_balance_sheet.csv of that repository (bank_id, CET1E, leverage %, debt_sec, govbonds).
FSST_BANKS = [("B01", 25000.0, 3.10, 400000.0, 200000.0), ("B02", 25000.0, 3.10, 400000.0, 200000.0)]
# model.py (commit e616c33), class Parameters.
FSST_MIN, FSST_BUFFER, FSST_TARGET = 0.03, 0.05, 0.07
FSST_TIMESTEPS = 6


def _fsst_balance_sheet(cet1e, leverage_pct, debt_sec, gov_bonds):
    """model.py ``Model.initialize``: (cash, corp_bonds, gov_bonds, other_asset, loan, other_liability)."""
    corp_bonds = debt_sec - gov_bonds
    asset = cet1e / (leverage_pct / 100.0)
    cash = 0.05 * asset
    liability = asset - cet1e
    other_asset = asset - debt_sec - cash
    return cash, corp_bonds, gov_bonds, other_asset, liability / 2.0, liability / 2.0


def _fsst_oracle(shock, price_impact):
    """Transcription of firesale_stresstest (model.py ``run_schedule`` at commit e616c33, agents.py
    ``Bank``/``AssetMarket``/``Order`` at commit 06794d8): initial shock to GOV_BONDS, then per
    timestep every bank's ``step()`` (a bank marked for default puts all its tradables up for sale),
    ``AssetMarket.clear_the_market()`` (price ← price·exp(−price_impact·sold/total_quantity), orders
    settle at the mid-point of the price before and after this clearing) and ``act()`` (default if
    equity/assets < BANK_LEVERAGE_MIN). The de-leveraging branch (E/A below the buffer but above the
    minimum: pay liabilities with cash, then sell) has no counterpart in our bank rule, so the oracle
    refuses it rather than silently compare two different models.
    Returns (prices [corp, gov], units sold per bank [[corp, gov]], final equity per bank, defaulted)."""
    banks = []
    total = [0.0, 0.0]
    for _, cet1e, lev, debt_sec, gov in FSST_BANKS:
        cash, corp, gov_q, other, loan, other_l = _fsst_balance_sheet(cet1e, lev, debt_sec, gov)
        banks.append(dict(cash=cash, q=[corp, gov_q], sold=[0.0, 0.0], other=other, liab=loan + other_l,
                          alive=True, trigger=False))
        total[0] += corp
        total[1] += gov_q
    prices = [1.0, 1.0 * (1.0 - shock)]  # apply_initial_shock(GOV_BONDS, INITIAL_SHOCK)
    for _ in range(FSST_TIMESTEPS):
        orders = []
        sold = [0.0, 0.0]
        for b in banks:  # step(): trigger_default → sell_assets_proportionally() (everything)
            if b["trigger"]:
                b["trigger"] = False
                for a in range(2):
                    if b["q"][a] > 0.0:
                        orders.append((b, a, b["q"][a]))
                        sold[a] += b["q"][a]
        old = list(prices)  # clear_the_market
        for a in range(2):
            if sold[a] > 0.0:
                prices[a] = prices[a] * math.exp(-(sold[a] / total[a]) * price_impact)
        for b, a, qty in orders:  # Order.settle
            qty = min(b["q"][a], qty)
            b["q"][a] -= qty
            b["sold"][a] += qty
            b["cash"] += qty * (prices[a] + old[a]) / 2.0
        for b in banks:  # act()
            if not b["alive"]:
                continue
            assets = b["cash"] + b["other"] + sum(b["q"][a] * prices[a] for a in range(2))
            lev = (assets - b["liab"]) / assets
            if lev < FSST_MIN:
                b["trigger"] = True
                b["alive"] = False
            elif lev < FSST_BUFFER:
                raise AssertionError("de-leveraging branch: outside the regime that maps onto fire_sale")
    equity = [b["cash"] + b["other"] + sum(b["q"][a] * prices[a] for a in range(2)) - b["liab"] for b in banks]
    return prices, [b["sold"] for b in banks], equity, [not b["alive"] for b in banks]


def _fsst_ours(shock, price_impact):
    holdings, holders = [], []
    for _, cet1e, lev, debt_sec, gov in FSST_BANKS:
        cash, corp, gov_q, other, loan, other_l = _fsst_balance_sheet(cet1e, lev, debt_sec, gov)
        holdings.append([corp, gov_q])
        # E/A < 5% ⇔ A/E > 20 (max_leverage); target E/A = 7% ⇔ A/E = 1/0.07.
        holders.append(Holder("bank", cash=cash, debt=loan + other_l, equity=cet1e,
                              max_leverage=1.0 / FSST_BUFFER, target_leverage=1.0 / FSST_TARGET))
    depth = np.sum(holdings, axis=0)  # total_quantities of each tradable in the system
    return fire_sale(holdings, [1.0, 1.0 - shock], depth, _impact_for_beta(price_impact), holders,
                     marks=[1.0, 1.0], execution_weight=0.5)


# model.py experiment 2 ("Effect of initial shock"): PRICE_IMPACTS 0.05, initial_shocks =
# linspace(0, 0.3, 21) without 0 (see the module notes). model.py experiment 1 ("Effect of price
# impact"): INITIAL_SHOCK 0.2, price_impacts = linspace(0, 0.1, 21) without 0 (our impact must lie
# in (0, 1)).
FSST_CASES = ([(s, 0.05) for s in np.linspace(0.0, 0.3, 21) if s > 0.0]
              + [(0.2, pi) for pi in np.linspace(0.0, 0.1, 21) if pi > 0.0])


@pytest.mark.parametrize("shock, price_impact", FSST_CASES)
def test_farmer_et_al_firesale_stresstest_liquidation(shock, price_impact):
    """github.com/ox-inet-resilience/firesale_stresstest, simple_balance_sheet.csv under model.py's
    Parameters and its two experiment grids, against a transcription of the repository's algorithm
    (``_fsst_oracle``).

    Mapping. Tradables: CORPORATE_BONDS and GOV_BONDS, 1 unit = 1 at the pre-shock price 1; the
    initial shock sets the GOV_BONDS price to 1 − shock (our ``prices``, with ``marks`` 1). The
    repository's impact ``price·exp(−π·sold/total_quantities)`` compounds over clearings to
    ``f·exp(−π·Q/M)`` with M the system's total quantity: our β = π, i.e. ``impact = 1 − e^{−0.05π}``.
    Its banks hold cash (5% of assets) and other assets that are never sold; its liabilities (loan +
    other liability) are our debt. After the shock both banks' equity is negative, so both default
    at the first ``act()`` and liquidate every tradable in the next clearing, which settles at the
    mid-point of the post-shock price f and the post-sale price p: our execution weight θ = ½. Our
    bank with equity ≤ 0 fails and liquidates likewise; nothing else sells in either model.

    For 0 < shock < 0.125 the repository's banks default with positive equity (E/A < 3%); ours do
    not fail at the post-shock prices but are so far above their target leverage (A/E > 36 against
    1/0.07) that Γ = min(1, (A − λ_t·E)/V) = 1: they too sell everything at once, so prices, sales
    and equity still agree. The failure flags then follow our own rule (equity at the final prices
    ≤ 0), which differs from the repository's at shock 0.015 only: checked against that rule here.
    """
    prices, sold, equity, defaulted = _fsst_oracle(shock, price_impact)
    r = _fsst_ours(shock, price_impact)
    assert r.converged
    np.testing.assert_allclose(r.prices, prices, rtol=0, atol=TOL)
    np.testing.assert_allclose(r.sales, sold, rtol=0, atol=TOL)
    np.testing.assert_allclose(r.equity, equity, rtol=0, atol=TOL)
    assert defaulted == [True, True]
    for h, (_, cet1e, lev, debt_sec, gov) in enumerate(FSST_BANKS):
        cash, corp, gov_q, other, loan, other_l = _fsst_balance_sheet(cet1e, lev, debt_sec, gov)
        at_final_marks = cash + other + corp * prices[0] + gov_q * prices[1] - loan - other_l
        assert r.failed[h] == (at_final_marks <= 0.0)
    # The loss split: the shock's direct loss on the gov bonds, the rest is the fire sale.
    cet1e = np.array([b[1] for b in FSST_BANKS])
    gov = np.array([b[4] for b in FSST_BANKS])
    np.testing.assert_allclose(r.direct_loss, gov * shock, rtol=0, atol=TOL)
    np.testing.assert_allclose(r.fire_sale_loss, cet1e - gov * shock - np.array(equity), rtol=0, atol=TOL)


# --------------------------------------------------------------------------------------------------
# 2. The same authors' library github.com/ox-inet-resilience/resilience (the building blocks of
#    Farmer et al. 2020): tests/test_agents.py, TestBank.test_act_rwa_only
# --------------------------------------------------------------------------------------------------

# tests/test_agents.py: RWA_WEIGHTS_GROUPED and the `bank` fixture, assets
# (cash, equities, corp bonds, gov bonds, other tradables, other) = (1, [2], [2], [2], [2], 2),
# deposits 10.2, then apply_shock: deposits 10.5. RWCR_buffer 0.1, RWCR_target 0.145.
RES_WEIGHTS = dict(corpbonds=1.00, govbonds=0.00, equities=0.75, othertradables=1.00, other=0.0)
RES_CASH, RES_UNITS, RES_OTHER, RES_DEPOSITS = 1.0, 2.0, 2.0, 10.5
RES_BUFFER, RES_TARGET = 0.1, 0.145
# Asserted by test_act_rwa_only after bank.act(): check_ratios(rwa=RWCR_target, lev=0.045454545454545454547)
RES_ASSERTED_RWA_RATIO, RES_ASSERTED_LEVERAGE = RES_TARGET, 0.045454545454545454547
# Our asset order: the library's RWA pecking order (Bank.raise_liquidity_with_pecking_order_on_RWA:
# corp bonds, other tradables, equities), gov bonds last.
RES_ASSETS = ["corpbonds", "othertradables", "equities", "govbonds"]


def _resilience_rwa_oracle():
    """Transcription of ``Bank.raise_liquidity_with_pecking_order_on_RWA`` (resilience/agents/Bank.py)
    at unchanged prices (the test's market is never cleared): for each tradable type in pecking order,
    sell ``x = (RWA − CET1E/RWCR_target)/weight`` of value, capped at the holding
    (``perform_proportionally``), until the target is reached. Returns value sold per RES_ASSETS."""
    cet1e = RES_CASH + 4 * RES_UNITS + RES_OTHER - RES_DEPOSITS
    rwa = sum(RES_WEIGHTS[k] * RES_UNITS for k in RES_ASSETS) + RES_WEIGHTS["other"] * RES_OTHER
    assert cet1e / rwa < RES_BUFFER  # Bank.perform_liquidity_management step 5: below buffer
    sold = dict.fromkeys(RES_ASSETS, 0.0)
    for kind in ("corpbonds", "othertradables", "equities"):
        w = RES_WEIGHTS[kind]
        x = (rwa - cet1e / RES_TARGET) / w
        if x <= 0.0:
            break
        amount = min(x, RES_UNITS)
        sold[kind] = amount
        rwa -= amount * w
    assert cet1e / rwa == pytest.approx(RES_TARGET, rel=1e-12)
    return [sold[k] for k in RES_ASSETS]


def test_resilience_bank_rwa_pecking_order():
    """github.com/ox-inet-resilience/resilience, tests/test_agents.py::TestBank::test_act_rwa_only:
    a bank whose CET1E/RWA = 0.5/5.5 falls below the 10% buffer sells tradables in the RWA pecking
    order until CET1E/RWA = RWCR_target = 14.5%, its leverage CET1E/assets staying 0.5/11. The test
    asserts those two ratios; the units sold per asset come from ``_resilience_rwa_oracle``.

    Mapping. That rule is our insurer: capital = CET1E, RBC factor = RWA weight (cash and other assets
    weigh 0 in both), the ratio restored to ``min_rbc_ratio`` = RWCR_target by selling the highest
    weight first, proceeds held as cash. Our asset order lists the library's pecking order, so our
    ties (corp bonds and other tradables both weigh 1) are broken the same way. Differences that do
    not bind here: the library acts below a buffer (10%) and restores a higher target (14.5%), our
    insurer acts and restores at one ratio, so we set it to the target (the bank is below both);
    the library's test never clears the market (no price impact), so our market is deep enough that
    impact is below 1e-14; sales then execute at the price whatever θ is.
    """
    holdings = [[RES_UNITS] * 4]
    holder = Holder("insurer", cash=RES_CASH, debt=RES_DEPOSITS,
                    equity=RES_CASH + 4 * RES_UNITS + RES_OTHER - RES_DEPOSITS, min_rbc_ratio=RES_TARGET)
    r = fire_sale(holdings, np.ones(4), 1e15, 0.05, [holder],
                  rbc_factors=[RES_WEIGHTS[k] for k in RES_ASSETS], execution_weight=1.0)
    assert r.converged and not r.failed[0]
    np.testing.assert_allclose(r.sales[0], _resilience_rwa_oracle(), rtol=0, atol=TOL)
    # The ratios the library's test asserts.
    assert r.capital_ratio[0] == pytest.approx(RES_ASSERTED_RWA_RATIO, abs=TOL)
    assets = RES_CASH + RES_OTHER + float(r.sales[0] @ r.prices) + float((RES_UNITS - r.sales[0]) @ r.prices)
    assert r.equity[0] / assets == pytest.approx(RES_ASSERTED_LEVERAGE, abs=TOL)
    np.testing.assert_allclose(r.prices, 1.0, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------------------------------
# Candidates that do not map exactly onto fire_sale (kept out of the tests on purpose)
# --------------------------------------------------------------------------------------------------
#
# * firesale_stresstest default rule: its banks default when equity/assets < BANK_LEVERAGE_MIN = 3%
#   with equity still positive; our bank fails only at equity ≤ 0 and otherwise de-levers to its
#   target (on simple_balance_sheet.csv both end up selling everything, see test 1). At shock 0 its
#   banks (E/A = 3.1% < 5%)
#   de-lever by repaying liabilities with cash first, over several timesteps, each clearing settling
#   at the mid-point of that clearing's own before/after prices: our bank keeps its cash, sells pro
#   rata, and every sale settles at one θ between f and the final price. EBA_2018.csv (its main input)
#   mixes both regimes.
# * resilience test_act_lev_only: the bank restores its leverage by paying deposits with cash and
#   sells nothing; our bank never uses cash to de-lever.
# * resilience markets/AssetMarket.py: the active impact is linear, p − π·sold/total (the exponential
#   one is commented out); cascades there do not map onto our exponential impact.
# * Martin-Summer-1090/syslosseval (Breuer, Summer and Urošević, "Systemic loss evaluation"): its bank
#   rule θ = (A − λ̄E)/V at the discounted price is our bank with max = target leverage λ̄, but its
#   impact is the square-root law δ = σκ√(q/ADV), not exponential.
# * Julia implementations of Cont and Schaanning (2017) (CSModel, "two bank example": Π = [90, 70],
#   Θ = diag(10, 20), C = [4, 4.5], λ_max = 33): impact p = B + (S − B)·e^{−q/δ} with a price floor
#   B = S/2, q in value sold per round, and round losses weighted by α; neither the floor nor the
#   per-round value-based impact is our unit-based exp(−βQ/M).
