"""Fire sales among holders of common assets, standalone (MODEL §6.4–6.6); the Greenwood–
Landier–Thesmar vulnerability measures are in engine/analytics/vulnerability.py.

Convention
----------
H holders, A assets. ``holdings[h, a] ≥ 0`` are units (par for a tranche, shares for equity).
``prices`` are the post-shock fundamental prices f_a per unit, ``marks`` the pre-shock prices p⁰_a
(default: ``prices``, so no direct loss). Forced sales of Q_a units move the price to
``f_a·exp(−β_a·Q_a/M_a)`` with ``β_a = −ln(1 − impact_a)/0.05``: selling 5% of the depth M_a moves
the price by ``impact_a``. Sales execute at ``f_a + θ·(p_a − f_a)``, θ = ``execution_weight`` (½,
MODEL's midpoint of the price before and after the forced sales).

Each holder has cash, debt and equity. Equity defaults to ``cash + Σ_a q_a·p⁰_a − debt``; a larger
equity means other assets ``o = equity + debt − cash − Σ_a q_a·p⁰_a`` that are never sold and keep
their value (a bank's loan book, an insurer's other investments). The rules by type, the fixed
point and the loss split are in ``kernels/contagion.py`` and docs/model.md §6.

References
----------
Cifuentes, R., Ferrucci, G. and Shin, H. S. (2005). Liquidity risk and contagion. Journal of the
European Economic Association 3(2–3), 556–566.

Cont, R. and Schaanning, E. (2017). Fire sales, indirect contagion and systemic stress testing.
Norges Bank Working Paper 2/2017.

Greenwood, R., Landier, A. and Thesmar, D. (2015). Vulnerable banks. Journal of Financial Economics
115(3), 471–485.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Mapping, Sequence

import numpy as np

from engine.market.arrays import check_finite_nonnegative
from engine.market.ratings import haircut as rating_haircut, rbc_factor as rating_rbc_factor
from kernels.contagion import HOLDER_TYPES, FireSaleOutputs, FireSaleProblem, fire_sale_fixed_point

IMPACT_REFERENCE_SALE = 0.05
"""β is calibrated so that selling this fraction of the market depth moves the price by ``impact``."""


@dataclass(frozen=True)
class Holder:
    """One holder's balance sheet and rule parameters.

    type : one of ``hedge_fund``, ``insurer``, ``pension``, ``asset_manager``, ``bank``.
    cash, debt : ≥ 0. Debt is repo (hedge fund), liabilities (pension: the funded ratio is
        assets/debt), or all debt (bank).
    equity : ≥ 0, or None for ``cash + holdings at marks − debt`` (no other assets).
    min_rbc_ratio : insurers; capital/RBC floor (2.0: NAIC Company Action Level, 200% of ACL).
    redemption_elasticity : asset managers; redemptions per unit of NAV loss (2.5, Farmer et al. 2020).
    max_leverage, target_leverage : banks; assets/equity trigger and target, both required for a bank,
        ``target_leverage ≤ max_leverage``.
    """

    type: str
    cash: float = 0.0
    debt: float = 0.0
    equity: float | None = None
    min_rbc_ratio: float = 2.0
    redemption_elasticity: float = 2.5
    max_leverage: float | None = None
    target_leverage: float | None = None


@dataclass(frozen=True)
class FireSaleResult:
    """The fire-sale equilibrium of one system.

    prices : f8[A]; equilibrium prices. fundamental : f8[A]; prices with no forced sale.
    sales : f8[H, A]; units each holder sold. total_sales : f8[A].
    direct_loss : f8[H]; ``Σ_a q_a·(p⁰_a − f_a)``.
    fire_sale_loss : f8[H]; ``Σ_a (q_a − S_a)·(f_a − p_a) + Σ_a S_a·(f_a − x_a)``.
    failed : bool[H]. capital_ratio : f8[H]; equity/assets (hedge_fund, asset_manager, bank),
        capital/RBC (insurer), assets/debt (pension); inf when the denominator is 0.
    equity : f8[H]; after losses (and, for asset managers, redemptions paid).
    rounds : int; rounds in which forced sales moved (0: nobody had to sell).
    converged : bool; False if ``max_rounds`` stopped the iteration first.
    beta : f8[A]; the impact coefficients used.
    """

    prices: np.ndarray
    fundamental: np.ndarray
    sales: np.ndarray
    total_sales: np.ndarray
    direct_loss: np.ndarray
    fire_sale_loss: np.ndarray
    failed: np.ndarray
    capital_ratio: np.ndarray
    equity: np.ndarray
    rounds: int
    converged: bool
    beta: np.ndarray

    @property
    def total_loss(self) -> np.ndarray:
        return self.direct_loss + self.fire_sale_loss


def beta_from_impact(impact) -> np.ndarray:
    """``β = −ln(1 − impact)/0.05`` (MODEL §6.5)."""
    return -np.log1p(-np.asarray(impact, dtype=np.float64)) / IMPACT_REFERENCE_SALE


def _number(name: str, value, *, lo=None, hi=None, lo_open=False, hi_open=False) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"{name} = {x:g} is not finite")
    if lo is not None and (x < lo or (lo_open and x == lo)):
        raise ValueError(f"{name} = {x:g} is {'not above' if lo_open else 'below'} {lo:g}")
    if hi is not None and (x > hi or (hi_open and x == hi)):
        raise ValueError(f"{name} = {x:g} is {'not below' if hi_open else 'above'} {hi:g}")
    return x


def _per_asset(name: str, value, n: int, *, positive=False, unit_open=False, unit=False) -> np.ndarray:
    v = np.asarray(value, dtype=np.float64)
    if v.ndim == 0:
        v = np.full(n, float(v))
    if v.ndim != 1 or v.shape[0] != n:
        raise ValueError(f"{name} must have one entry per asset ({n}), got shape {v.shape}")
    for a in range(n):
        x = v[a]
        if not np.isfinite(x):
            raise ValueError(f"{name}[{a}] = {x:g} is not finite")
        if unit_open and not 0.0 < x < 1.0:
            raise ValueError(f"{name}[{a}] = {x:g} is outside (0, 1)")
        if unit and not 0.0 <= x <= 1.0:
            raise ValueError(f"{name}[{a}] = {x:g} is outside [0, 1]")
        if positive and x <= 0.0:
            raise ValueError(f"{name}[{a}] = {x:g} is not positive")
        if x < 0.0:
            raise ValueError(f"{name}[{a}] = {x:g} is negative")
    return np.ascontiguousarray(v)


def _holder(i: int, h) -> Holder:
    if isinstance(h, Holder):
        return h
    if isinstance(h, Mapping):
        known = {f.name for f in fields(Holder)}
        extra = sorted(set(h) - known)
        if extra:
            raise ValueError(f"holders[{i}] has unknown field(s) {', '.join(extra)}")
        if "type" not in h:
            raise ValueError(f"holders[{i}] has no type")
        return Holder(**h)
    raise ValueError(f"holders[{i}] must be a Holder or a mapping, got {type(h).__name__}")


def _asset_table(name: str, explicit, ratings, lookup, n: int, needed: bool) -> np.ndarray:
    if explicit is not None:
        return _per_asset(name, explicit, n, unit=True)
    if ratings is not None:
        out = np.empty(n)
        for a, r in enumerate(ratings):
            try:
                out[a] = lookup(r)
            except ValueError as err:
                raise ValueError(f"ratings[{a}]: {err}") from None
        return out
    if needed:
        raise ValueError(f"{name} (or ratings) is required when a holder uses it")
    return np.zeros(n)


def fire_sale(holdings, prices, depth, impact, holders: Sequence[Holder | Mapping], *, marks=None,
              ratings: Sequence[str] | None = None, haircuts=None, rbc_factors=None,
              execution_weight: float = 0.5, tol: float = 1e-12, max_rounds: int = 10_000) -> FireSaleResult:
    """Greatest-price fire-sale equilibrium of one system of holders (convention in the module docstring).

    Parameters
    ----------
    holdings : array_like (H, A); units held, ≥ 0.
    prices : array_like (A,); fundamental prices after the shock, > 0.
    depth : array_like (A,) or scalar; market depth M_a in units, > 0.
    impact : array_like (A,) or scalar in (0, 1); price move from selling 5% of the depth.
    holders : sequence of H ``Holder`` (or mappings of its fields).
    marks : array_like (A,), optional; pre-shock prices, > 0 (default ``prices``).
    ratings : sequence of A ratings, optional; haircuts and RBC factors from ``engine.market.ratings``
        where ``haircuts`` / ``rbc_factors`` are not given.
    haircuts, rbc_factors : array_like (A,) in [0, 1], optional; required (or ``ratings``) when a
        hedge fund, respectively an insurer, is present.
    execution_weight : float in [0, 1]; θ (½: midpoint; 1: sales at the final price).
    tol : float > 0; convergence of sales, as a fraction of each asset's depth.
    max_rounds : int ≥ 1.

    Returns
    -------
    FireSaleResult

    Raises
    ------
    ValueError
        Naming the argument: shape mismatches, negative or non-finite holdings, non-positive
        prices or depth, impact outside (0, 1), an unknown holder type, a negative balance-sheet
        entry or equity, equity that the balance sheet cannot hold (other assets < 0), missing or
        inconsistent bank leverages, a missing haircut or RBC table.
    """
    prob, theta, tol, max_rounds = build_problem(
        holdings, prices, depth, impact, holders, marks=marks, ratings=ratings, haircuts=haircuts,
        rbc_factors=rbc_factors, execution_weight=execution_weight, tol=tol, max_rounds=max_rounds)
    return solve(prob, theta, tol, max_rounds)


def build_problem(holdings, prices, depth, impact, holders, *, marks=None, ratings=None, haircuts=None,
                  rbc_factors=None, execution_weight=0.5, tol=1e-12, max_rounds=10_000):
    """Check the inputs of ``fire_sale`` and build the kernel's ``FireSaleProblem``.

    Returns
    -------
    (FireSaleProblem, theta, tol, max_rounds)
    """
    q = np.asarray(holdings, dtype=np.float64)
    if q.ndim != 2:
        raise ValueError(f"holdings must be a holders × assets matrix, got shape {q.shape}")
    n_h, n_a = q.shape
    check_finite_nonnegative("holdings", q)
    f = _per_asset("prices", prices, n_a, positive=True)
    p0 = f.copy() if marks is None else _per_asset("marks", marks, n_a, positive=True)
    M = _per_asset("depth", depth, n_a, positive=True)
    imp = _per_asset("impact", impact, n_a, unit_open=True)
    theta = _number("execution_weight", execution_weight, lo=0.0, hi=1.0)
    tol = _number("tol", tol, lo=0.0, lo_open=True)
    if int(max_rounds) != max_rounds or max_rounds < 1:
        raise ValueError(f"max_rounds = {max_rounds!r} must be a positive integer")
    if ratings is not None and len(ratings) != n_a:
        raise ValueError(f"ratings must have one entry per asset ({n_a}), got {len(ratings)}")

    hs = [_holder(i, h) for i, h in enumerate(holders)]
    if len(hs) != n_h:
        raise ValueError(f"holders must have one entry per row of holdings ({n_h}), got {len(hs)}")
    kind = np.empty(n_h, dtype=np.int64)
    cash, debt, other = np.empty(n_h), np.empty(n_h), np.empty(n_h)
    min_rbc, elasticity = np.empty(n_h), np.empty(n_h)
    max_lev, target_lev = np.full(n_h, np.inf), np.full(n_h, np.inf)
    for i, h in enumerate(hs):
        if h.type not in HOLDER_TYPES:
            raise ValueError(f"holders[{i}].type = {h.type!r} is not one of {', '.join(HOLDER_TYPES)}")
        kind[i] = HOLDER_TYPES.index(h.type)
        cash[i] = _number(f"holders[{i}].cash", h.cash, lo=0.0)
        debt[i] = _number(f"holders[{i}].debt", h.debt, lo=0.0)
        at_marks = float(q[i] @ p0)
        if h.equity is None:
            other[i] = 0.0
            if cash[i] + at_marks - debt[i] < 0.0 and h.type != "pension":  # a pension may be underfunded
                raise ValueError(f"holders[{i}] has negative equity before the shock "
                                 f"(cash + holdings at marks − debt = {cash[i] + at_marks - debt[i]:g})")
        else:
            e = _number(f"holders[{i}].equity", h.equity)
            if e < 0.0:
                raise ValueError(f"holders[{i}].equity = {e:g} is negative")
            o = e + debt[i] - cash[i] - at_marks
            if o < -1e-12 * max(1.0, abs(e) + debt[i] + cash[i] + at_marks):
                raise ValueError(f"holders[{i}].equity = {e:g} is below cash + holdings at marks − debt "
                                 f"= {e - o:g}: the balance sheet cannot hold it")
            other[i] = max(o, 0.0)
        min_rbc[i] = _number(f"holders[{i}].min_rbc_ratio", h.min_rbc_ratio, lo=0.0, lo_open=True)
        elasticity[i] = _number(f"holders[{i}].redemption_elasticity", h.redemption_elasticity, lo=0.0)
        if h.type == "bank":
            if h.max_leverage is None or h.target_leverage is None:
                raise ValueError(f"holders[{i}] is a bank: max_leverage and target_leverage are required")
            max_lev[i] = _number(f"holders[{i}].max_leverage", h.max_leverage, lo=1.0)
            target_lev[i] = _number(f"holders[{i}].target_leverage", h.target_leverage, lo=1.0)
            if target_lev[i] > max_lev[i]:
                raise ValueError(f"holders[{i}].target_leverage = {target_lev[i]:g} is above "
                                 f"max_leverage = {max_lev[i]:g}")

    hc = _asset_table("haircuts", haircuts, ratings, rating_haircut, n_a, needed=bool(np.any(kind == 0)))
    rbc = _asset_table("rbc_factors", rbc_factors, ratings, rating_rbc_factor, n_a, needed=bool(np.any(kind == 1)))
    # Highest factor first; ties in asset order, so the result never depends on a sort's whims.
    order = np.argsort(-rbc, kind="stable").astype(np.int64)
    beta = beta_from_impact(imp)

    prob = FireSaleProblem(
        holdings=np.ascontiguousarray(q), marks=p0, fundamental=f, depth=M, beta=beta, haircut=hc,
        rbc_factor=rbc, sale_order=order, kind=kind, cash=cash, debt=debt, other=other,
        min_rbc_ratio=min_rbc, redemption_elasticity=elasticity, max_leverage=max_lev,
        target_leverage=target_lev,
    )
    return prob, theta, tol, int(max_rounds)


def solve(prob: FireSaleProblem, theta: float, tol: float, max_rounds: int) -> FireSaleResult:
    """Run the kernel on a checked problem (from ``build_problem``, possibly ``_replace``-d)."""
    n_h, n_a = prob.holdings.shape
    out = FireSaleOutputs(
        sales=np.empty((n_h, n_a)), prices=np.empty(n_a), total_sales=np.empty(n_a),
        direct_loss=np.empty(n_h), fire_sale_loss=np.empty(n_h), failed=np.empty(n_h, dtype=np.int8),
        capital_ratio=np.empty(n_h), equity=np.empty(n_h),
    )
    rounds, converged = fire_sale_fixed_point(prob, theta, tol, int(max_rounds), out)
    return FireSaleResult(
        prices=out.prices, fundamental=prob.fundamental.copy(), sales=out.sales, total_sales=out.total_sales,
        direct_loss=out.direct_loss, fire_sale_loss=out.fire_sale_loss, failed=out.failed.astype(bool),
        capital_ratio=out.capital_ratio, equity=out.equity, rounds=int(rounds), converged=bool(converged),
        beta=prob.beta.copy(),
    )
