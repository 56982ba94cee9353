"""Fire sales among the holders of common assets, one path (MODEL §6.4–6.6).

Holders h = 0..H−1 hold ``q[h, a] ≥ 0`` units of assets a = 0..A−1, plus cash c_h, other assets o_h
(never sold, valued at a constant) and debt d_h. Asset a is marked at p⁰_a before the shock and
is worth its fundamental price f_a after it. Forced sales of Q_a units in total move its price to

    p_a(Q) = f_a · exp(−β_a · Q_a / M_a)                                      (MODEL §6.5)

and every forced sale executes at ``x_a = f_a + θ·(p_a − f_a)``: θ = ½ is MODEL's midpoint of the
price before any forced sale (f_a) and the price after all of them (p_a); θ = 1 sells at the final
price, as Cifuentes–Ferrucci–Shin (2005) and Cont–Schaanning (2017) do.

Each holder's rule maps the prices it sees (its marks) p to the units it must have sold, T_h(p)
(below). Rules plan at the marks: a unit sold is counted at p_a, not at x_a. Planning at x_a lets
a lower mark relieve a leveraged seller (the gap x_a − p_a it pockets on each sale widens): a hedge
fund that could not meet its call at one price could meet it at a lower one, so the rules would not
be monotone and the greatest fixed point not guaranteed; with planning at marks every rule below is non-increasing in p (the insurer's when
``min_rbc_ratio·k_a ≤ 1``, true for NAIC factors ≤ 30% and ratios ≤ 333%), and the better execution
only shows in the realised losses. With θ = 1 the two coincide.

Starting from no sales and p = f, every round computes the targets of *all* holders from the
previous round's prices, then ``S ← max(S, T(p))`` (a forced sale is never bought back) and
``p ← p(Σ_h S)``. Sales only grow and prices only fall, so the iteration converges (a holder that
fails in some round stays failed, its liquidation being as final as any sale); with monotone rules
it is the Kleene iteration of a monotone map from the top, and its limit is the greatest-price fixed
point. It stops when no holder's sales of any asset move by more than ``tol`` times that asset's
depth.

Rules, with V = Σ_a q_a·p_a and equity at marks E(p) = c + o + V − d:

* hedge_fund (0): repo margin call ``MC = d − Σ_a (1 − h_a)·q_a·p_a``. Cash pays min(c, MC); the
  rest R is met by selling the same fraction φ of every position, each unit repaying p_a of repo and
  releasing (1 − h_a)·p_a of collateral: ``φ = R / Σ_a h_a·q_a·p_a``. φ > 1 or E ≤ 0: it **fails**
  and its lenders liquidate every position (φ = 1).
* insurer (1): capital E, RBC = Σ_a k_a·q_a·p_a. Below ``min_rbc_ratio`` r it sells holdings in
  ``sale_order`` (highest factor first; zero-factor assets never, as they do not help), each unit
  cutting the shortfall ``r·RBC − E`` by ``r·k_a·p_a`` (proceeds are cash, charged 0), until the
  ratio is restored. If E ≤ 0 no sale restores it: it **fails**, having sold every charged holding
  (with E > 0, selling every charged holding takes RBC to 0, so the ratio is always restored).
* pension (2): never sells, never fails.
* asset_manager (3): investors redeem ``ε·max(0, E⁰ − E(p))`` (the NAV loss at marks); cash pays
  first, the rest by selling the same fraction of every position. If the fraction exceeds 1 it
  **fails** and sells everything.
* bank (4), Cont–Schaanning leverage: assets A = c + o + V, leverage A/E. If A/E > ``max_leverage``
  it sells the same fraction ``Γ = min(1, (A − λ_t·E)/V)`` of every position, repaying debt, which
  brings its leverage to ``target_leverage`` λ_t. E ≤ 0: it **fails** and liquidates (Γ = 1).

Losses per holder, with S its sales at the end: ``direct = Σ_a q_a·(p⁰_a − f_a)`` and
``fire_sale = Σ_a (q_a − S_a)·(f_a − p_a) + Σ_a S_a·(f_a − x_a)`` (marks on what it kept plus the
shortfall of what it sold against the fundamental price).
"""

from typing import NamedTuple

import numpy as np

from ._jit import jit

HEDGE_FUND = 0
INSURER = 1
PENSION = 2
ASSET_MANAGER = 3
BANK = 4
HOLDER_TYPES = ("hedge_fund", "insurer", "pension", "asset_manager", "bank")

# A shortfall below this fraction of the holder's balance sheet counts as met: rounding in the
# sums leaves a holder that exactly restores its ratio a hair short, which must not read as failure.
_MET_RTOL = 1e-12


class FireSaleProblem(NamedTuple):
    """One path's fire-sale problem: H holders, A assets.

    holdings : f8[H, A]        q, units held (≥ 0)
    marks : f8[A]              p⁰, pre-shock prices (direct losses are measured from these)
    fundamental : f8[A]        f, post-shock fundamental prices (> 0); the prices with no forced sale
    depth : f8[A]              M, market depth in units (> 0)
    beta : f8[A]               β, exponential impact
    haircut : f8[A]            repo haircut h (hedge funds)
    rbc_factor : f8[A]         RBC factor k (insurers)
    sale_order : i8[A]         assets by RBC factor, highest first (insurers sell in this order)
    kind : i8[H]               holder type code (HEDGE_FUND ... BANK)
    cash, debt, other : f8[H]  balance sheet besides the holdings; ``other`` is never sold
    min_rbc_ratio : f8[H]      insurers
    redemption_elasticity : f8[H]  asset managers
    max_leverage, target_leverage : f8[H]  banks (assets / equity)
    """

    holdings: np.ndarray
    marks: np.ndarray
    fundamental: np.ndarray
    depth: np.ndarray
    beta: np.ndarray
    haircut: np.ndarray
    rbc_factor: np.ndarray
    sale_order: np.ndarray
    kind: np.ndarray
    cash: np.ndarray
    debt: np.ndarray
    other: np.ndarray
    min_rbc_ratio: np.ndarray
    redemption_elasticity: np.ndarray
    max_leverage: np.ndarray
    target_leverage: np.ndarray


class FireSaleOutputs(NamedTuple):
    """Caller-allocated outputs of ``fire_sale_fixed_point``.

    sales : f8[H, A]           units each holder sold
    prices : f8[A]             equilibrium prices
    total_sales : f8[A]        Q, units sold of each asset
    direct_loss, fire_sale_loss : f8[H]
    failed : i1[H]
    capital_ratio : f8[H]      equity/assets (hedge_fund, asset_manager, bank), capital/RBC (insurer),
                               assets/debt (pension: the funded ratio); inf when the denominator is 0
    equity : f8[H]             E⁰ − direct − fire_sale − redemptions paid (asset managers)
    """

    sales: np.ndarray
    prices: np.ndarray
    total_sales: np.ndarray
    direct_loss: np.ndarray
    fire_sale_loss: np.ndarray
    failed: np.ndarray
    capital_ratio: np.ndarray
    equity: np.ndarray


@jit
def _execution_price(f, p, theta):
    return f + theta * (p - f)


@jit
def _pro_rata(q, need, denom, row):
    """Sell the fraction need/denom of every position into ``row``; True if that fraction is > 1
    (the holder cannot cover ``need`` and sells everything)."""
    n_assets = q.shape[0]
    if need <= 0.0:
        for a in range(n_assets):
            row[a] = 0.0
        return False
    if denom <= 0.0 or need > denom * (1.0 + _MET_RTOL):
        for a in range(n_assets):
            row[a] = q[a]
        return True
    frac = min(1.0, need / denom)
    for a in range(n_assets):
        row[a] = frac * q[a]
    return False


@jit
def holder_target(prob, h, p, row):
    """Units holder h must have sold at marks p (into ``row``, f8[A]); returns its failed flag
    (1/0) and the redemptions it owes (asset managers; 0 otherwise)."""
    q = prob.holdings[h]
    n_assets = q.shape[0]
    c = prob.cash[h]
    d = prob.debt[h]
    o = prob.other[h]
    v = 0.0
    for a in range(n_assets):
        v += q[a] * p[a]
    equity = c + o + v - d
    kind = prob.kind[h]
    for a in range(n_assets):
        row[a] = 0.0
    if kind == PENSION:
        return 0, 0.0
    scale = c + o + v + d
    if kind == HEDGE_FUND:
        collateral = 0.0
        relief = 0.0
        for a in range(n_assets):
            collateral += (1.0 - prob.haircut[a]) * q[a] * p[a]
            relief += q[a] * prob.haircut[a] * p[a]
        need = d - collateral - c
        if need <= _MET_RTOL * scale:
            need = 0.0
        cannot = _pro_rata(q, need, relief, row)
        if equity <= 0.0 and d > 0.0:
            for a in range(n_assets):
                row[a] = q[a]
            return 1, 0.0
        return (1 if cannot else 0), 0.0
    if kind == ASSET_MANAGER:
        nav0 = c + o - d
        for a in range(n_assets):
            nav0 += q[a] * prob.marks[a]
        redemptions = prob.redemption_elasticity[h] * max(0.0, nav0 - equity)
        need = redemptions - c
        if need <= _MET_RTOL * scale:
            need = 0.0
        cannot = _pro_rata(q, need, v, row)
        return (1 if cannot else 0), redemptions
    if kind == BANK:
        if equity <= 0.0:
            for a in range(n_assets):
                row[a] = q[a]
            return 1, 0.0
        assets = c + o + v
        if assets <= prob.max_leverage[h] * equity * (1.0 + _MET_RTOL):
            return 0, 0.0
        _pro_rata(q, assets - prob.target_leverage[h] * equity, v, row)
        return 0, 0.0
    # INSURER
    r = prob.min_rbc_ratio[h]
    rbc = 0.0
    for a in range(n_assets):
        rbc += prob.rbc_factor[a] * q[a] * p[a]
    gap = r * rbc - equity
    if gap <= _MET_RTOL * scale and equity > 0.0:
        return 0, 0.0
    for i in range(n_assets):
        a = prob.sale_order[i]
        k = prob.rbc_factor[a]
        if k <= 0.0 or q[a] <= 0.0:
            continue
        per_unit = r * k * p[a]
        if equity > 0.0 and gap < q[a] * per_unit:
            row[a] = gap / per_unit
            return 0, 0.0
        row[a] = q[a]
        gap -= q[a] * per_unit
    if equity > 0.0 and gap <= _MET_RTOL * scale:
        return 0, 0.0
    return 1, 0.0


@jit
def impact_prices(fundamental, depth, beta, total_sales, prices):
    """``prices[a] = f_a·exp(−β_a·Q_a/M_a)``."""
    for a in range(fundamental.shape[0]):
        prices[a] = fundamental[a] * np.exp(-beta[a] * total_sales[a] / depth[a])


@jit
def _total(S, Q):
    """Q_a = Σ_h S[h, a], summed in holder order 0..H−1: a permutation of the holders changes
    only the rounding of this sum."""
    n_holders, n_assets = S.shape
    for a in range(n_assets):
        s = 0.0
        for h in range(n_holders):
            s += S[h, a]
        Q[a] = s


class FireSaleScratch(NamedTuple):
    """Work arrays of ``fire_sale_in`` for H holders and A assets, allocated once per call of
    ``fire_sale_paths`` instead of once per path.

    target : f8[H, A]          each holder's target sales in the current round
    row : f8[A]                one holder's targets at the final prices (``_settle``)
    order : i8[A]              the assets by RBC factor, highest first (``_by_factor``)
    """

    target: np.ndarray
    row: np.ndarray
    order: np.ndarray


@jit
def fire_sale_scratch(n_holders, n_assets):
    return FireSaleScratch(np.empty((n_holders, n_assets)), np.empty(n_assets), np.empty(n_assets, dtype=np.int64))


@jit
def fire_sale_fixed_point(prob, theta, tol, max_rounds, out):
    """Greatest-price fixed point of the fire sale (module docstring), all holders simultaneously.

    Parameters
    ----------
    prob : FireSaleProblem
    theta : float in [0, 1]; execution weight (½: the midpoint of fundamental and final price)
    tol : float > 0; stop when no ``|ΔS[h, a]|/M_a`` exceeds it
    max_rounds : int ≥ 1
    out : FireSaleOutputs (filled)

    Returns
    -------
    (int, bool)
        Rounds in which the sales moved by more than ``tol`` (0: nobody was forced to sell), and
        whether the last round moved them by no more than ``tol``.
    """
    n_holders, n_assets = prob.holdings.shape
    return fire_sale_in(fire_sale_scratch(n_holders, n_assets), prob, theta, tol, max_rounds, out)


@jit
def fire_sale_in(ws, prob, theta, tol, max_rounds, out):
    """``fire_sale_fixed_point`` in the caller's FireSaleScratch (of the problem's H and A)."""
    n_holders, n_assets = prob.holdings.shape
    S = out.sales
    p = out.prices
    Q = out.total_sales
    target = ws.target
    for h in range(n_holders):
        for a in range(n_assets):
            S[h, a] = 0.0
    for a in range(n_assets):
        Q[a] = 0.0
        p[a] = prob.fundamental[a]
    for h in range(n_holders):
        out.failed[h] = 0
    rounds = 0
    converged = False
    while rounds < max_rounds:
        for h in range(n_holders):
            # A failure is final, like the liquidation it triggers: a holder that failed at
            # higher prices stays failed even if its rule would pass at the lower ones.
            if holder_target(prob, h, p, target[h])[0]:
                out.failed[h] = 1
        moved = 0.0
        for h in range(n_holders):
            for a in range(n_assets):
                new = max(S[h, a], min(target[h, a], prob.holdings[h, a]))
                moved = max(moved, (new - S[h, a]) / prob.depth[a])
                S[h, a] = new
        # Prices always follow the sales, including a last move below tol, so that the reported
        # prices are exactly the impact of the reported sales.
        _total(S, Q)
        impact_prices(prob.fundamental, prob.depth, prob.beta, Q, p)
        if moved <= tol:
            converged = True
            break
        rounds += 1
    if not converged:
        for h in range(n_holders):
            holder_target(prob, h, p, target[h])
        converged = True
        for h in range(n_holders):
            for a in range(n_assets):
                if min(target[h, a], prob.holdings[h, a]) - S[h, a] > tol * prob.depth[a]:
                    converged = False
    _settle(prob, theta, out, ws.row)
    return rounds, converged


@jit
def _settle(prob, theta, out, scratch):
    """Losses, failure flags, equity and capital ratios at the final sales and prices (``scratch``: f8[A])."""
    n_holders, n_assets = prob.holdings.shape
    f = prob.fundamental
    p = out.prices
    for h in range(n_holders):
        q = prob.holdings[h]
        S = out.sales[h]
        failed, redemptions = holder_target(prob, h, p, scratch)
        failed = max(failed, out.failed[h])
        direct = 0.0
        fire = 0.0
        kept = 0.0
        proceeds = 0.0
        rbc = 0.0
        collateral = 0.0
        for a in range(n_assets):
            collateral += (1.0 - prob.haircut[a]) * q[a] * p[a]
            x = _execution_price(f[a], p[a], theta)
            direct += q[a] * (prob.marks[a] - f[a])
            fire += (q[a] - S[a]) * (f[a] - p[a]) + S[a] * (f[a] - x)
            kept += (q[a] - S[a]) * p[a]
            proceeds += S[a] * x
            rbc += prob.rbc_factor[a] * (q[a] - S[a]) * p[a]
        c = prob.cash[h]
        d = prob.debt[h]
        o = prob.other[h]
        equity0 = c + o - d
        for a in range(n_assets):
            equity0 += q[a] * prob.marks[a]
        kind = prob.kind[h]
        paid = 0.0
        if kind == ASSET_MANAGER:
            paid = min(redemptions, c + proceeds)
        equity = equity0 - direct - fire - paid
        # Where the proceeds go decides the size of the balance sheet, not the equity.
        if kind == HEDGE_FUND or kind == BANK:
            assets = c + o + kept + proceeds
            # A hedge fund's cash pays the margin call only; a bank's cash stays.
            cash_used = min(c, max(0.0, d - collateral)) if kind == HEDGE_FUND else 0.0
            assets -= min(d, cash_used + proceeds)
        elif kind == ASSET_MANAGER:
            assets = c + o + kept + proceeds - paid
        else:
            assets = c + o + kept + proceeds
        if kind == INSURER:
            # With nothing charged left, the ratio is ±∞ by the sign of the capital (a failed
            # insurer that sold everything has no charge but no capital either).
            ratio = equity / rbc if rbc > 0.0 else (np.inf if equity > 0.0 else -np.inf)
        elif kind == PENSION:
            ratio = assets / d if d > 0.0 else np.inf
        else:
            ratio = equity / assets if assets > 0.0 else (np.inf if equity > 0.0 else -np.inf)
        out.direct_loss[h] = direct
        out.fire_sale_loss[h] = fire
        out.failed[h] = failed
        out.capital_ratio[h] = ratio
        out.equity[h] = equity


class PathFireSales(NamedTuple):
    """Per-path inputs and outputs of ``fire_sale_paths`` (n paths, H holders, A assets).

    Inputs: fundamental, marks, haircut, rbc_factor : f8[n, A]; cash : f8[n, H] (the base problem's
    cash plus the principal each holder was repaid by the horizon on that path).
    Outputs: sales : f8[n, H, A]; prices, total_sales : f8[n, A]; direct_loss, fire_sale_loss,
    capital_ratio, equity : f8[n, H]; failed : i1[n, H]; rounds : i4[n]; converged : i1[n].
    """

    fundamental: np.ndarray
    marks: np.ndarray
    haircut: np.ndarray
    rbc_factor: np.ndarray
    cash: np.ndarray
    sales: np.ndarray
    prices: np.ndarray
    total_sales: np.ndarray
    direct_loss: np.ndarray
    fire_sale_loss: np.ndarray
    capital_ratio: np.ndarray
    equity: np.ndarray
    failed: np.ndarray
    rounds: np.ndarray
    converged: np.ndarray


@jit
def fire_sale_paths(base, theta, tol, max_rounds, io):
    """The fire-sale equilibrium of every path of ``io`` (PathFireSales): the holders, holdings,
    depths, impact and rules of ``base`` (a FireSaleProblem), with each path's prices, haircuts,
    RBC factors and cash. Insurers sell in each path's own order of RBC factors."""
    n = io.fundamental.shape[0]
    ws = fire_sale_scratch(base.holdings.shape[0], base.holdings.shape[1])
    order = ws.order
    for p in range(n):
        _by_factor(io.rbc_factor[p], order)
        prob = FireSaleProblem(
            base.holdings, io.marks[p], io.fundamental[p], base.depth, base.beta, io.haircut[p], io.rbc_factor[p],
            order, base.kind, io.cash[p], base.debt, base.other, base.min_rbc_ratio, base.redemption_elasticity,
            base.max_leverage, base.target_leverage,
        )
        out = FireSaleOutputs(
            io.sales[p], io.prices[p], io.total_sales[p], io.direct_loss[p], io.fire_sale_loss[p], io.failed[p],
            io.capital_ratio[p], io.equity[p],
        )
        rounds, converged = fire_sale_in(ws, prob, theta, tol, max_rounds, out)
        io.rounds[p] = rounds
        io.converged[p] = 1 if converged else 0


@jit
def _by_factor(rbc, order):
    """``order[:] = np.argsort(-rbc, kind="mergesort")`` without allocating: a stable insertion sort
    on the same keys with numpy's order of floats (NaN last), and a stable sort's result is unique.
    A handful of assets per path make O(A²) the cheaper sort."""
    for i in range(rbc.shape[0]):
        v = -rbc[i]
        j = i
        while j > 0 and _before(v, -rbc[order[j - 1]]):
            order[j] = order[j - 1]
            j -= 1
        order[j] = i


@jit
def _before(a, b):
    """numpy's ascending order of floats: NaN after every number."""
    return a < b or (np.isnan(b) and not np.isnan(a))
