"""Holders' mergeable statistics and their tables: per holder, holder type, asset and system (docs/model.md §6)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from engine.analytics.stats import (
    MERGE_MAX, Mass, Moments, PathWeights, Tally, count_histogram, counts_view, loss_histogram, merge_fields, quantile_and_es,
    tail_columns
)
from engine.analytics.vulnerability import glt_vulnerability
from engine.io.chunks import committable
from engine.market import ratings
from engine.plan.compile import Plan
from kernels.contagion import HOLDER_TYPES

if TYPE_CHECKING:  # what the tables describe; the simulation layer builds them
    from engine.simulation.holder_system import HolderSystem, PathContagion

OUTSIDE = "(outside)"


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
