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

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kernels.contagion import HOLDER_TYPES, FireSaleProblem, PathFireSales, fire_sale_paths

from . import ratings, rules
from .compile import Plan
from .contagion import Holder as RuleHolder, build_problem, glt_vulnerability
from .marks import Marks, NestedCheck
from .resume import committable
from .stats import (MERGE_MAX, Mass, Moments, PathWeights, Tally, count_histogram, counts_view, loss_histogram, merge_fields,
                    quantile_and_es, tail_columns)

OUTSIDE = "(outside)"
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
    hc = dict(rules.HAIRCUT_BY_RATING)
    hc.update(c.haircuts)
    rbc = dict(rules.NAIC_RBC_FACTOR)
    rbc.update({int(k): v for k, v in c.rbc_factors.items()})

    def haircut(r: str) -> float:
        return min(1.0, c.haircut_multiplier * hc[rules.rating_grade(r)])

    def rbc_factor(r: str) -> float:
        return rbc[rules.naic_designation(r)]

    return haircut, rbc_factor


def build_system(cfg, plan: Plan, marks: Marks, nested: NestedCheck | None) -> HolderSystem:
    """The holder system of a validated config with a ``contagion`` section (holders may be none)."""
    c = cfg.contagion
    K = plan.deals.tranche_balance.size
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


# --------------------------------------------------------------------------- statistics


def _scalar(x):
    """A whole-chunk count: a Python int, or the Mass of a weighted run."""
    return x if isinstance(x, Mass) else int(x)


def _frac(x: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return x / np.where(scale > 0, scale, 1.0)


@committable
@dataclass
class HolderStats:
    """The mergeable statistics of the contagion step (exact integers, like RunStats).

    Holder losses are kept as fractions of pre-shock assets (the outside row: of the total tranche
    balance); tranche losses as fractions of the tranche's balance.
    """

    n_paths: int = 0
    direct: Moments | None = None          # [H+1]
    fire: Moments | None = None            # [H+1]
    total: Moments | None = None           # [H+1]
    direct_tr: Moments | None = None       # [H+1] the tranche part (outside: all of it)
    fire_tr: Moments | None = None         # [H+1]
    total_hist: np.ndarray | None = None   # [H+1, N_BINS]
    failed: np.ndarray | None = None       # [H]
    forced: np.ndarray | None = None       # [H]
    sold_value: Moments | None = None      # [H] proceeds / pre-shock assets
    sold_share: Moments | None = None      # [H*A] share of each position sold
    capital_ratio: Moments | None = None   # [H] finite values only
    type_failed: np.ndarray | None = None  # [len(HOLDER_TYPES)] paths with a failure of that type
    any_failed: int = 0
    any_forced: int = 0
    rounds: Moments | None = None          # [1]
    rounds_max: int = dataclasses.field(default=0, metadata=MERGE_MAX)
    not_converged: int = 0
    av: Moments | None = None              # [1] aggregate vulnerability (a return, ≤ 0 for losses)
    tranche_direct: Moments | None = None  # [K]
    tranche_fire: Moments | None = None    # [K]
    price: Moments | None = None           # [K] LSMC price where outstanding
    alive: np.ndarray | None = None        # [K]
    notch_hist: np.ndarray | None = None   # [K, len(NOTCHES)] where outstanding
    asset_fund: Moments | None = None      # [A] f / p0
    asset_price: Moments | None = None     # [A] p / p0
    asset_drop_hist: np.ndarray | None = None  # [A, N_BINS] of 1 − p/p0
    asset_sold: Moments | None = None      # [A] Q / depth
    asset_p_sold: np.ndarray | None = None  # [A]
    nanoseconds: int = 0                   # wall time of the contagion step

    @classmethod
    def of_chunk(cls, system: HolderSystem, pc: PathContagion, weights: PathWeights | None = None) -> HolderStats:
        """Statistics of one chunk's contagion step (``weights``: the paths' likelihood ratios
        under importance sampling; None for plain Monte Carlo)."""
        io = pc.io
        tally = Tally(weights)
        moments, count = tally.moments, tally.count

        n = io.rounds.shape[0]
        H, A = len(system.holder_names), len(system.asset_names)
        tot_tr = system.tranche_size.sum()
        scale = np.concatenate([system.assets0, [tot_tr]])
        direct = _frac(np.concatenate([io.direct_loss, pc.outside_direct[:, None]], axis=1), scale)
        fire = _frac(np.concatenate([io.fire_sale_loss, pc.outside_fire[:, None]], axis=1), scale)
        dtr = _frac(np.concatenate([pc.direct_tranches, pc.outside_direct[:, None]], axis=1), scale)
        ftr = _frac(np.concatenate([pc.fire_tranches, pc.outside_fire[:, None]], axis=1), scale)
        q = system.base.holdings
        share = np.where(q[None] > 0, io.sales / np.where(q > 0, q, 1.0)[None], np.nan).reshape(n, H * A)
        ratio = np.where(np.isfinite(io.capital_ratio), io.capital_ratio, np.nan)
        kinds = system.base.kind
        any_type = np.stack([(io.failed[:, kinds == j] > 0).any(axis=1) for j in range(len(HOLDER_TYPES))], axis=1)
        type_failed = count(any_type)
        alive = pc.par > 0
        notch = np.where(alive, pc.notch, -1)
        nn = len(ratings.NOTCHES)
        if weights is not None:
            notch_hist = count_histogram(notch, nn, weights)
        else:
            notch_hist = np.stack([np.bincount(notch[:, k][notch[:, k] >= 0], minlength=nn) for k in range(notch.shape[1])]) \
                if notch.shape[1] else np.zeros((0, nn), dtype=np.int64)
            notch_hist = notch_hist.astype(np.int64)
        with np.errstate(divide="ignore", invalid="ignore"):
            fund_r = np.where(pc.asset_marks > 0, io.fundamental / pc.asset_marks, np.nan)
            price_r = np.where(pc.asset_marks > 0, io.prices / pc.asset_marks, np.nan)
        depth = system.base.depth
        return cls(
            n_paths=n,
            direct=moments(direct), fire=moments(fire), total=moments(direct + fire, se=True),
            direct_tr=moments(dtr), fire_tr=moments(ftr), total_hist=loss_histogram(direct + fire, weights),
            failed=count(io.failed > 0), forced=count(io.sales.sum(axis=2) > 0),
            sold_value=moments(_frac(pc.proceeds, system.assets0[None, :])),
            sold_share=moments(share), capital_ratio=moments(ratio), type_failed=type_failed,
            any_failed=_scalar(count((io.failed > 0).any(axis=1))), any_forced=_scalar(count((io.total_sales > 0).any(axis=1))),
            rounds=moments(io.rounds[:, None].astype(np.float64)), rounds_max=int(io.rounds.max()) if n else 0,
            not_converged=_scalar(count(io.converged == 0)),
            av=moments(pc.aggregate_vulnerability[:, None]),
            tranche_direct=moments(pc.par - pc.fundamental), tranche_fire=moments(pc.fundamental - pc.final),
            price=moments(pc.prices), alive=count(alive), notch_hist=notch_hist,
            asset_fund=moments(fund_r), asset_price=moments(price_r),
            asset_drop_hist=loss_histogram(1.0 - price_r, weights), asset_sold=moments(io.total_sales / depth[None, :]),
            asset_p_sold=count(io.total_sales > 0),
        )

    def merge(self, other: HolderStats) -> HolderStats:
        return merge_fields(self, other)


# --------------------------------------------------------------------------- tables


def marks_table(system: HolderSystem, st: HolderStats, plan: Plan) -> pd.DataFrame:
    """One row per tranche: the marks' fit and check, the implied ratings, and the tranche's
    mark-to-market loss at h (direct and from fire sales) in USD."""
    st = counts_view(st)
    m, nest, n = system.marks, system.nested, st.n_paths
    K = plan.deals.tranche_balance.size
    best = np.array([ratings.NOTCHES[int(np.argmax(h))] if h.sum() else "" for h in st.notch_hist])
    ig = np.array([h[: ratings.NOTCHES.index("Baa3") + 1].sum() / h.sum() if h.sum() else np.nan for h in st.notch_hist])
    size = system.tranche_size
    return pd.DataFrame({
        "deal": plan.tranche_deal, "tranche": plan.tranche_names, "horizon_month": system.horizon,
        "p_outstanding": st.alive / n, "price_mean": st.price.mean(), "r2": m.r2, "fit_paths": m.fit_paths,
        "nested_outer": nest.outer if nest else np.zeros(K, dtype=np.int64),
        "nested_inner": nest.inner if nest else 0,
        "nested_rmse": nest.rmse if nest else np.full(K, np.nan),
        "nested_max_abs": nest.max_abs if nest else np.full(K, np.nan),
        "nested_bias": nest.bias if nest else np.full(K, np.nan),
        "nested_se": nest.se if nest else np.full(K, np.nan),
        "wal_after_h": m.wal, "rating_mode": best, "p_investment_grade": ig,
        "mtm_direct_el": size * st.tranche_direct.mean(), "mtm_fire_sale_el": size * st.tranche_fire.mean(),
        "held_par": size - system.unheld, "unheld_par": system.unheld,
    })


def holders_table(system: HolderSystem, st: HolderStats) -> pd.DataFrame:
    """One row per holder plus the ``(outside)`` row; losses in USD."""
    st = counts_view(st)
    H = len(system.holder_names)
    n = st.n_paths
    scale = np.concatenate([system.assets0, [system.tranche_size.sum()]])
    el_d, el_f, el_t = st.direct.mean() * scale, st.fire.mean() * scale, st.total.mean() * scale
    se = st.total.mean_se(n) * scale
    total = n if st.total.weighted else None
    cols = {"holder": list(system.holder_names) + [OUTSIDE], "type": list(system.holder_types) + ["outside"],
            "assets": scale, "equity": np.concatenate([system.equity0, [np.nan]]),
            "el_direct": el_d, "el_fire_sale": el_f, "el_total": el_t, "el_total_se": se,
            "el_direct_tranches": st.direct_tr.mean() * scale, "el_fire_sale_tranches": st.fire_tr.mean() * scale}
    cols.update({name: v * scale for name, v in tail_columns(st.total_hist, total).items()})
    pad = lambda v: np.concatenate([np.asarray(v, dtype=float), [np.nan]])  # noqa: E731
    cols.update(
        p_failure=pad(st.failed / n), p_forced_sale=pad(st.forced / n), sold_value_mean=pad(st.sold_value.mean() * system.assets0),
        capital_ratio_mean=pad(st.capital_ratio.mean()),
    )
    cols["glt_systemicness"] = np.full(H + 1, np.nan)
    cols["glt_indirect_vulnerability"] = np.full(H + 1, np.nan)
    levered = system.glt_members
    if levered.any() and system.glt_gradient.any():
        # At the mean shock over the paths where each asset has a mark.
        F1 = np.concatenate([np.nan_to_num(st.asset_fund.mean() - 1.0), [0.0]])
        g = glt_vulnerability(system.assets0[levered], system.equity0[levered], system.glt_weights[levered], system.glt_ell, F1)
        idx = np.flatnonzero(levered)
        cols["glt_systemicness"][idx] = g.systemicness
        cols["glt_indirect_vulnerability"][idx] = g.indirect_vulnerability
    return pd.DataFrame(cols)


def holder_types_table(system: HolderSystem, st: HolderStats, holders: pd.DataFrame) -> pd.DataFrame:
    """Losses by holder type: share of the holders' total loss and the amplification ratio."""
    st = counts_view(st)
    rows = []
    inside = holders[holders["type"] != "outside"]
    system_loss = inside["el_total"].sum()
    for j, t in enumerate(HOLDER_TYPES):
        part = inside[inside["type"] == t]
        if part.empty:
            continue
        d, f = part["el_direct"].sum(), part["el_fire_sale"].sum()
        rows.append({"type": t, "holders": len(part), "el_direct": d, "el_fire_sale": f, "el_total": d + f,
                     "share_of_system_loss": (d + f) / system_loss if system_loss > 0 else np.nan,
                     "amplification": (d + f) / d if d > 0 else np.nan, "p_any_failure": st.type_failed[j] / st.n_paths})
    return pd.DataFrame(rows, columns=["type", "holders", "el_direct", "el_fire_sale", "el_total", "share_of_system_loss",
                                       "amplification", "p_any_failure"])


def assets_table(system: HolderSystem, st: HolderStats) -> pd.DataFrame:
    """The distribution of each held asset's price at h, relative to its pre-shock mark."""
    st = counts_view(st)
    cols = {"asset": list(system.asset_names), "kind": list(system.asset_kinds), "depth": system.base.depth,
            "impact": system.asset_impact, "fundamental_mean": st.asset_fund.mean(), "price_mean": st.asset_price.mean()}
    for lvl, name in ((0.95, "05"), (0.99, "01")):
        cols[f"price_p{name}"] = 1.0 - np.array([quantile_and_es(h, lvl, st.n_paths if st.total.weighted else None)[0]
                                                  for h in st.asset_drop_hist]) \
            if len(system.asset_names) else np.zeros(0)
    cols.update(p_forced_sale=st.asset_p_sold / st.n_paths, sold_share_of_depth_mean=st.asset_sold.mean())
    return pd.DataFrame(cols)


def system_table(system: HolderSystem, st: HolderStats, holders: pd.DataFrame) -> pd.DataFrame:
    """One row: the holder system as a whole, with Greenwood–Landier–Thesmar aggregate vulnerability."""
    st = counts_view(st)
    inside = holders[holders["type"] != "outside"]
    d, f = inside["el_direct"].sum(), inside["el_fire_sale"].sum()
    return pd.DataFrame([{
        "horizon_month": system.horizon, "holders": len(system.holder_names), "assets": len(system.asset_names),
        "el_direct": d, "el_fire_sale": f, "amplification": (d + f) / d if d > 0 else np.nan,
        "p_any_failure": st.any_failed / st.n_paths, "p_any_forced_sale": st.any_forced / st.n_paths,
        "rounds_mean": float(st.rounds.mean()[0]), "rounds_max": st.rounds_max,
        "p_not_converged": st.not_converged / st.n_paths,
        "glt_aggregate_vulnerability_mean": float(st.av.mean()[0]),
        "glt_aggregate_vulnerability_sd": float(np.sqrt(st.av.variance()[0])),
    }])


def holder_path_rows(system: HolderSystem, pc: PathContagion, start: int) -> pd.DataFrame:
    """Path-level rows of the contagion step: one per path and holder."""
    io = pc.io
    n, H = io.direct_loss.shape
    return pd.DataFrame({
        "path": np.repeat(np.arange(start, start + n, dtype=np.int64), H),
        "holder": np.tile(np.array(system.holder_names, dtype=object), n),
        "direct_loss": io.direct_loss.ravel(), "fire_sale_loss": io.fire_sale_loss.ravel(),
        "sales_value": pc.proceeds.ravel(),
        "failed": io.failed.ravel().astype(bool), "capital_ratio": io.capital_ratio.ravel(),
        "rounds": np.repeat(io.rounds, H),
    })


def holder_sales_rows(system: HolderSystem, pc: PathContagion, start: int) -> pd.DataFrame:
    """Path-level forced sales by asset: one row per path, holder and asset it sold (units > 0)."""
    io = pc.io
    p, h, a = np.nonzero(io.sales > 0.0)
    return pd.DataFrame({
        "path": (start + p).astype(np.int64),
        "holder": np.array(system.holder_names, dtype=object)[h],
        "asset": np.array(system.asset_names, dtype=object)[a],
        "units": io.sales[p, h, a], "price": pc.execution[p, a],
    })
