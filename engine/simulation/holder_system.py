"""From tranche marks to holders: the per-path fire sale of a run and its mergeable statistics
(MODEL §6.3–6.6, docs/model.md §6).

Units. A unit of a tranche is a unit of its original balance; its pre-shock mark at h is the
fraction still outstanding (par), its fundamental price that fraction times the path's LSMC price.
A unit of another asset is worth 1 before the shock. A holder's balance sheet is stated at par; the
principal it was repaid by h on a path is cash on that path. Losses are measured from par, so a
holder's direct loss is what the marks take off its positions and its fire-sale loss what forced
sales take off after that (``kernels/contagion.py`` for the split).

Reconciliation. Every tranche's mark-to-market loss ``size × (par − f)`` (direct) and
``size × (f − p)`` (fire sale) is shared between the holders and one ``(outside)`` row: the par no
holder holds, and the buyers of forced sales, who pay the execution price x for paper then worth p.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.analytics.vulnerability import glt_vulnerability
from engine.market import ratings
from engine.plan.compile import Plan
from engine.simulation.fire_sale import Holder as RuleHolder, build_problem
from engine.simulation.marks import Marks, NestedCheck
from kernels.contagion import FireSaleProblem, PathFireSales, fire_sale_paths

EQUITY_RBC_FACTOR = 0.30
"""NAIC life RBC factor for unaffiliated common stock, the insurer charge on the AI-equity asset."""


@dataclass(frozen=True)
class HolderSystem:
    """Everything the per-path fire sale needs that does not change from path to path."""

    holder_names: tuple[str, ...]
    holder_types: tuple[str, ...]
    asset_names: tuple[str, ...]
    asset_kinds: tuple[str, ...]
    asset_tranche: np.ndarray      # i8[A]: plan tranche index, −1 for other assets
    asset_impact: np.ndarray       # f8[A]
    base: FireSaleProblem
    theta: float
    tol: float
    max_rounds: int
    haircut_by_notch: np.ndarray   # f8[len(NOTCHES)], after the haircut multiplier
    rbc_by_notch: np.ndarray
    other_haircut: np.ndarray      # f8[A] (used for non-tranche assets)
    other_rbc: np.ndarray
    equity_beta: float
    horizon: int
    tranche_size: np.ndarray       # f8[K] every plan tranche
    unheld: np.ndarray             # f8[K] par no holder holds
    assets0: np.ndarray            # f8[H] pre-shock assets at par
    equity0: np.ndarray            # f8[H]
    glt_gradient: np.ndarray       # f8[A]: aggregate vulnerability = glt_gradient · F1
    glt_weights: np.ndarray        # f8[H, A+1] portfolio weights (last column: cash and other assets)
    glt_ell: np.ndarray            # f8[A+1]
    marks: Marks
    nested: NestedCheck | None

    @property
    def glt_members(self) -> np.ndarray:
        return _glt_members(self.equity0, self.assets0)


def _glt_members(equity0: np.ndarray, assets0: np.ndarray) -> np.ndarray:
    """bool[H]: the holders GLT's measures cover (they need equity; an underfunded pension has none)."""
    return (equity0 > 0) & (assets0 > 0)


def _tables(c):
    hc = dict(ratings.HAIRCUT_BY_RATING)
    hc.update(c.haircuts)
    rbc = dict(ratings.NAIC_RBC_FACTOR)
    rbc.update({int(k): v for k, v in c.rbc_factors.items()})

    def haircut(r: str) -> float:
        return min(1.0, c.haircut_multiplier * hc[ratings.rating_grade(r)])

    def rbc_factor(r: str) -> float:
        return rbc[ratings.naic_designation(r)]

    return haircut, rbc_factor


def build_system(cfg, plan: Plan, marks: Marks, nested: NestedCheck | None) -> HolderSystem:
    """The holder system of a validated config with a ``contagion`` section (holders may be none)."""
    c = cfg.contagion
    tranche_id = {f"{d}.{t}": k for k, (d, t) in enumerate(zip(plan.tranche_deal, plan.tranche_names))}
    positions = cfg.positions()
    held_tranches = sorted({tranche_id[a] for _, a, _ in positions if a in tranche_id})
    others = [a for a in c.assets if any(a == b for _, b, _ in positions)]
    names = tuple(f"{plan.tranche_deal[k]}.{plan.tranche_names[k]}" for k in held_tranches) + tuple(others)
    kinds = ("tranche",) * len(held_tranches) + tuple(c.assets[a].kind for a in others)
    A, H = len(names), len(cfg.holders)
    index = {a: i for i, a in enumerate(names)}
    hindex = {h.name: i for i, h in enumerate(cfg.holders)}
    q = np.zeros((H, A))
    for h, a, x in positions:
        q[hindex[h], index[a]] += x
    size = plan.deals.tranche_balance.copy()
    unheld = size.copy()
    for j, k in enumerate(held_tranches):
        unheld[k] = max(0.0, size[k] - q[:, j].sum())
    depth = np.array([c.tranche_depth * size[k] for k in held_tranches] + [c.assets[a].depth for a in others], dtype=float)
    impact = np.array([c.impact] * len(held_tranches) + [c.assets[a].impact or c.impact for a in others], dtype=float)
    haircut, rbc_factor = _tables(c)
    hc_notch = np.array([haircut(ratings.to_sp(r)) for r in ratings.NOTCHES])
    rbc_notch = np.array([rbc_factor(ratings.to_sp(r)) for r in ratings.NOTCHES])
    other_hc, other_rbc = np.zeros(A), np.zeros(A)
    for i, a in enumerate(others, start=len(held_tranches)):
        m = c.assets[a]
        rating = "equity" if m.kind == "ai_equity" else m.rating
        other_hc[i] = haircut(rating)
        if m.rbc_factor is not None:
            other_rbc[i] = m.rbc_factor
        else:
            other_rbc[i] = EQUITY_RBC_FACTOR if m.kind == "ai_equity" else rbc_factor(rating)
    holders = [RuleHolder(type=h.type, cash=h.cash, debt=h.debt, equity=h.equity, min_rbc_ratio=h.min_rbc_ratio,
                          redemption_elasticity=h.redemption_elasticity, max_leverage=h.max_leverage,
                          target_leverage=h.target_leverage) for h in cfg.holders]
    ones = np.ones(A)
    if H:
        try:
            base, theta, tol, max_rounds = build_problem(q, ones, depth, impact, holders, haircuts=np.minimum(1.0, other_hc),
                                                         rbc_factors=other_rbc, execution_weight=c.execution_weight,
                                                         tol=c.tol, max_rounds=c.max_rounds)
        except ValueError as err:  # the config validated these; a failure here names the holder by index
            raise ValueError(f"holders: {err}") from None
    else:
        base = _empty_problem(A)
        theta, tol, max_rounds = c.execution_weight, c.tol, c.max_rounds
    assets0 = base.cash + base.other + q.sum(axis=1)
    equity0 = assets0 - base.debt
    # GLT (2015) on the pre-shock balance sheets: weights over the assets plus one non-traded
    # column (cash and other assets), price impact per dollar sold ℓ_a = β_a / M_a (a unit is worth 1).
    weights = np.concatenate([q, (base.cash + base.other)[:, None]], axis=1)
    ok = assets0 > 0
    weights[ok] /= assets0[ok, None]
    ell = np.concatenate([base.beta / depth, [0.0]]) if A else np.zeros(1)
    gradient = np.zeros(A)
    levered = _glt_members(equity0, assets0)
    if levered.any():
        for a in range(A):  # AV is linear in the shock F1: its gradient, one unit shock at a time
            F1 = np.zeros(A + 1)
            F1[a] = 1.0
            gradient[a] = glt_vulnerability(assets0[levered], equity0[levered], weights[levered], ell, F1).aggregate_vulnerability
    return HolderSystem(
        holder_names=tuple(h.name for h in cfg.holders), holder_types=tuple(h.type for h in cfg.holders),
        asset_names=names, asset_kinds=kinds,
        asset_tranche=np.array(held_tranches + [-1] * len(others), dtype=np.int64), asset_impact=impact,
        base=base, theta=theta, tol=tol, max_rounds=max_rounds, haircut_by_notch=hc_notch, rbc_by_notch=rbc_notch,
        other_haircut=other_hc, other_rbc=other_rbc, equity_beta=c.equity_beta, horizon=c.horizon_month,
        tranche_size=size, unheld=unheld, assets0=assets0, equity0=equity0, glt_gradient=gradient,
        glt_weights=weights, glt_ell=ell, marks=marks, nested=nested,
    )


def _empty_problem(A: int) -> FireSaleProblem:
    z, zi = np.zeros(0), np.zeros(0, dtype=np.int64)
    return FireSaleProblem(
        holdings=np.zeros((0, A)), marks=np.ones(A), fundamental=np.ones(A), depth=np.ones(A), beta=np.ones(A),
        haircut=np.zeros(A), rbc_factor=np.zeros(A), sale_order=np.arange(A, dtype=np.int64), kind=zi, cash=z,
        debt=z, other=z, min_rbc_ratio=z, redemption_elasticity=z, max_leverage=z, target_leverage=z,
    )


@dataclass
class PathContagion:
    """One chunk's per-path results (n paths)."""

    prices: np.ndarray           # f8[n, K] LSMC price per unit outstanding (NaN: not outstanding)
    notch: np.ndarray            # i8[n, K]
    par: np.ndarray              # f8[n, K] outstanding fraction (the pre-shock mark)
    fundamental: np.ndarray      # f8[n, K] fundamental value per unit of original balance
    final: np.ndarray            # f8[n, K] after fire sales
    io: PathFireSales
    asset_marks: np.ndarray      # f8[n, A]
    execution: np.ndarray        # f8[n, A] forced sales' execution price f + θ·(p − f)
    proceeds: np.ndarray         # f8[n, H] each holder's forced sales at execution prices
    direct_tranches: np.ndarray  # f8[n, H] the part of direct_loss on tranches
    fire_tranches: np.ndarray    # f8[n, H]
    outside_direct: np.ndarray   # f8[n]
    outside_fire: np.ndarray     # f8[n]
    aggregate_vulnerability: np.ndarray  # f8[n]


def run_paths(system: HolderSystem, out, firm_default_month: np.ndarray | None = None) -> PathContagion:
    """Marks, ratings and the fire-sale equilibrium of every path of ``out`` (PathOutputs)."""
    marks = system.marks
    n, K = out.tranche_h_balance.shape
    price = marks.price(out)
    notch = marks.notches(price)
    par = out.tranche_h_balance
    fund_k = par * np.nan_to_num(price, nan=0.0)
    A, H = len(system.asset_names), len(system.holder_names)
    tr = system.asset_tranche
    is_tr = tr >= 0
    fund = np.ones((n, A))
    p0 = np.ones((n, A))
    hc = np.tile(system.other_haircut, (n, 1))
    rbc = np.tile(system.other_rbc, (n, 1))
    cols = np.flatnonzero(is_tr)
    fund[:, cols] = fund_k[:, tr[cols]]
    p0[:, cols] = par[:, tr[cols]]
    hc[:, cols] = system.haircut_by_notch[notch[:, tr[cols]]]
    rbc[:, cols] = system.rbc_by_notch[notch[:, tr[cols]]]
    eq = [a for a in range(A) if system.asset_kinds[a] == "ai_equity"]
    if eq:
        b = system.equity_beta
        level = np.exp(b * out.h_factor - 0.5 * b * b)
        if firm_default_month is not None and firm_default_month.shape[1]:
            level = level * (1.0 - (firm_default_month <= system.horizon).mean(axis=1))
        fund[:, eq] = level[:, None]
    q = system.base.holdings
    repaid = np.maximum(0.0, 1.0 - p0[:, cols]) @ q[:, cols].T if cols.size else np.zeros((n, H))
    cash = system.base.cash[None, :] + repaid
    f8 = lambda *s: np.zeros((n, *s))  # noqa: E731
    io = PathFireSales(
        fundamental=np.ascontiguousarray(fund), marks=np.ascontiguousarray(p0), haircut=np.ascontiguousarray(hc),
        rbc_factor=np.ascontiguousarray(rbc), cash=np.ascontiguousarray(cash), sales=f8(H, A), prices=f8(A),
        total_sales=f8(A), direct_loss=f8(H), fire_sale_loss=f8(H), capital_ratio=f8(H), equity=f8(H),
        failed=np.zeros((n, H), dtype=np.int8), rounds=np.zeros(n, dtype=np.int32), converged=np.zeros(n, dtype=np.int8),
    )
    if H:
        fire_sale_paths(system.base, system.theta, system.tol, system.max_rounds, io)
    else:
        io.prices[:] = fund
        io.converged[:] = 1
    x = fund + system.theta * (io.prices - fund)
    S = io.sales
    qt, St = q[None, :, cols], S[:, :, cols]
    f_t, p_t, x_t, m_t = fund[:, None, cols], io.prices[:, None, cols], x[:, None, cols], p0[:, None, cols]
    direct_tr = (qt * (m_t - f_t)).sum(axis=2)
    fire_tr = ((qt - St) * (f_t - p_t) + St * (f_t - x_t)).sum(axis=2)
    final = fund_k.copy()
    final[:, tr[cols]] = io.prices[:, cols]
    outside_direct = (system.unheld[None, :] * (par - fund_k)).sum(axis=1)
    gap = io.total_sales[:, cols] * (x[:, cols] - io.prices[:, cols])
    unheld_fire = system.unheld[tr[cols]][None, :] * (fund[:, cols] - io.prices[:, cols])
    outside_fire = (gap + unheld_fire).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        shock = np.where(p0 > 0, fund / p0 - 1.0, 0.0)
    av = shock @ system.glt_gradient if A else np.zeros(n)
    return PathContagion(prices=price, notch=notch, par=par, fundamental=fund_k, final=final, io=io, asset_marks=p0,
                         execution=x, proceeds=(S * x[:, None, :]).sum(axis=2),
                         direct_tranches=direct_tr, fire_tranches=fire_tr, outside_direct=outside_direct,
                         outside_fire=outside_fire, aggregate_vulnerability=av)
