"""Lease cash flows of one deal on one path: rent, RVG, fees, recoveries and sales (MODEL §4).

Leases without options are pre-aggregated by (deal, tenant) when the plan is compiled, so a path
costs one pass over the deal's defaulted tenants. Leases with options (renewals, an RVG, re-letting,
early termination) branch on the path, and are walked one by one: their rent goes into a
difference array in yearly segments, so a lease costs O(years), not O(months).
"""

import math
from typing import NamedTuple

import numpy as np

from ._jit import jit, jit_inline
from .collateral import collateral_value
from .credit import norm_cdf
from .plan import SRC_FEE, SRC_RECOVERY, SRC_RENT, SRC_RVG, SRC_SALE
from .uniforms import uniform


class PathState(NamedTuple):
    """One path's state that a deal's leases read (the caller's scratch, refilled each path).

    tau : i4[N]                       default month per tenant (T+1 = none)
    X, gidx, sidx, midx : f8[T+1]     factor, GPU, facility and market-rent indices
    H : f8[classes, T+1]              cumulative hazards (replacement tenants of re-let leases)
    """

    tau: np.ndarray
    X: np.ndarray
    gidx: np.ndarray
    sidx: np.ndarray
    midx: np.ndarray
    H: np.ndarray


class OptionKeys(NamedTuple):
    """The path's keys for option uniforms: draws of decisions after month ``split`` use
    ``key_late`` (engine/simulation/marks.py nested re-simulation; a run has key_late = key and
    split = T+1)."""

    key: np.uint64
    key_late: np.uint64
    split: np.int32


class LeaseScratch(NamedTuple):
    """Collections of one deal-path (``flows``, out) and the work arrays that build them.

    flows : f8[N_SRC, T+1]            collections by source; rows SRC_*
    lost, adj_gpu, adj_shell : f8[T+1]; drent : f8[T+2]
    """

    flows: np.ndarray
    lost: np.ndarray
    adj_gpu: np.ndarray
    adj_shell: np.ndarray
    drent: np.ndarray


@jit
def net_of(gross, lost):
    """gross − lost, with the rounding dust of an exact cancellation sent to 0."""
    r = gross - lost
    if r <= 1e-9 * gross:
        return 0.0
    return r


@jit
def _recovery(gpu, shell, a0, liq, fixed_rr, r, col, gidx, sidx):
    """Proceeds of repossessing a lease's collateral, arriving in month ``r`` (0 beyond T)."""
    if r >= gidx.shape[0]:
        return 0.0
    if fixed_rr >= 0.0:
        return fixed_rr * (gpu + shell)
    return collateral_value(gpu, shell, a0, r, col, gidx, sidx) * (1.0 - liq)


@jit_inline
def deal_collections(d, pool, col, path, keys, ls):
    """Collections of deal ``d`` by month and source, given the tenants' default months.

    Rent of a group stops from its tenant's default month τ. A lease whose tenant defaults by the
    end of its term (τ ≤ end) loses its terminal sale and instead recovers, at τ + recovery_lag,
    either ``recovery_rate × (gpu_cost + shell_value)`` (`fixed`) or the market value of its
    collateral net of liquidation cost (`sale`). Option leases follow :func:`option_leases`.

    Parameters
    ----------
    d : int; pool : PoolPlan; col : CollateralPlan
    path : PathState; keys : OptionKeys
    ls : LeaseScratch                 ``ls.flows`` (out): collections by source

    Returns
    -------
    (net_loss_amount, defaults, renewals) : the numerator of NL_T (lost scheduled rent plus
    unrecovered collateral, USD), the number of the deal's tenants that defaulted within the
    horizon, and the renewals exercised.
    """
    tau, gidx, sidx = path.tau, path.gidx, path.sidx
    flows, lost, adj_gpu, adj_shell, drent = ls.flows, ls.lost, ls.adj_gpu, ls.adj_shell, ls.drent
    T = lost.shape[0] - 1
    for t in range(T + 1):
        for r in range(flows.shape[0]):
            flows[r, t] = 0.0
        lost[t] = 0.0
        adj_gpu[t] = 0.0
        adj_shell[t] = 0.0
        drent[t] = 0.0
    drent[T + 1] = 0.0
    loss = 0.0
    defaults = 0
    for g in range(pool.deal_group_ptr[d], pool.deal_group_ptr[d + 1]):
        i = pool.group_tenant[g]
        ti = tau[i]
        if ti > T:
            continue
        defaults += 1
        for t in range(ti, T + 1):
            lost[t] += pool.group_rent[g, t]
        loss += pool.group_rent_suffix[g, ti]
        for idx in range(pool.tenant_lease_ptr[i], pool.tenant_lease_ptr[i + 1]):
            j = pool.tenant_lease_idx[idx]
            if pool.lease_deal[j] != d or ti > pool.lease_end[j] or pool.lease_dynamic[j]:
                continue
            m = pool.lease_term_month[j]
            if m <= T:
                adj_gpu[m] += pool.lease_term_gpu[j]
                adj_shell[m] += pool.lease_term_shell[j]
            proceeds = _recovery(pool.lease_gpu[j], pool.lease_shell[j], pool.lease_a0[j], pool.lease_liq[j],
                                 pool.lease_fixed_rr[j], ti + pool.lease_rec_lag[j], col, gidx, sidx)
            if proceeds > 0.0:
                flows[SRC_RECOVERY, ti + pool.lease_rec_lag[j]] += proceeds
            collateral = pool.lease_gpu[j] + pool.lease_shell[j]
            if collateral > proceeds:
                loss += collateral - proceeds
    lm, renewals, scale = option_leases(d, pool, col, path, keys, flows, drent)
    loss += lm
    acc = 0.0
    for t in range(T + 1):
        acc += drent[t]
        # Segments added and removed leave rounding dust where no lease pays.
        dyn = acc if acc > 1e-9 * scale else 0.0
        flows[SRC_RENT, t] = net_of(pool.deal_rent[d, t], lost[t]) + dyn
        flows[SRC_SALE, t] += gidx[t] * net_of(pool.deal_term_gpu[d, t], adj_gpu[t]) + sidx[t] * net_of(
            pool.deal_term_shell[d, t], adj_shell[t]
        )
    return loss, defaults, renewals


@jit
def add_rent(drent, base, e, s, a, b, cap):
    """Add ``base·(1+e)^⌊(u−s−1)/12⌋`` for months u in [a, b] ∩ [1, T] to the difference array.

    Returns (the amount added in months ≤ ``cap``, the largest monthly amount added).
    """
    T = drent.shape[0] - 2
    if a < 1:
        a = 1
    if b > T:
        b = T
    within = 0.0
    top = 0.0
    u = a
    while u <= b:
        y = (u - s - 1) // 12
        seg_end = min(b, s + 12 * (y + 1))
        v = base * (1.0 + e) ** y
        drent[u] += v
        drent[seg_end + 1] -= v
        hi = min(seg_end, cap)
        if hi >= u:
            within += v * (hi - u + 1)
        top = max(top, abs(v))
        u = seg_end + 1
    return within, top


@jit
def _sell(gpu, shell, a0, liq, m, col, gidx, sidx, flows, src):
    """Sell a lease's collateral with proceeds in month ``m`` (nothing beyond T); returns them."""
    if m >= gidx.shape[0]:
        return 0.0
    proceeds = collateral_value(gpu, shell, a0, m, col, gidx, sidx) * (1.0 - liq)
    flows[src, m] += proceeds
    return proceeds


@jit
def option_leases(d, pool, col, path, keys, flows, drent):
    """Walk deal ``d``'s option leases term by term on one path (MODEL §4), adding their cash to
    ``flows``/``drent``. One call per deal, not per lease: passing the pool plan costs reference
    counting on each of its arrays (so this takes only the two arrays of LeaseScratch it writes).

    In each term, the first of these ends it: the tenant's default (rent stops from τ; repossess and
    recover, or re-let after ``downtime`` to a replacement tenant who may default in turn), an early
    termination (the first month the market-rent index m_t falls below ``termination_threshold`` ×
    the term's rent multiplier; the fee is paid and the collateral sold after ``sale_lag``), or the
    term end. At a term end with renewals left, the tenant renews with probability Φ(a + b·X_t) and
    the rent multiplier resets to m_t. Otherwise the RVG pays, if its guarantor is alive, and the
    collateral is sold after ``sale_lag``.

    Returns (net-loss amount, renewals exercised, largest monthly rent added).
    """
    tau, X, gidx, sidx, midx, H = path.tau, path.X, path.gidx, path.sidx, path.midx, path.H
    key, key_late, split = keys.key, keys.key_late, keys.split
    T = X.shape[0] - 1
    loss_total = 0.0
    renewals_total = 0
    scale = 0.0
    for m in range(pool.deal_dyn_ptr[d], pool.deal_dyn_ptr[d + 1]):
        j = pool.dyn_lease[m]
        gpu, shell, a0, liq, rr = pool.lease_gpu[j], pool.lease_shell[j], pool.lease_a0[j], pool.lease_liq[j], pool.lease_fixed_rr[j]
        rec_lag, sale_lag = pool.lease_rec_lag[j], pool.lease_sale_lag[j]
        ti = tau[pool.lease_tenant[j]]
        s = pool.lease_start[j]
        E0 = pool.lease_end[j]
        R = pool.dyn_rent[m]
        e = pool.dyn_esc[m]
        mult = 1.0
        cur = s
        end = E0
        left = pool.dyn_renewals[m]
        renewed = 0
        received = 0.0
        lost_collateral = 0.0
        top = 0.0
        while True:
            tm = T + 1
            if pool.dyn_term_frac[m] > 0.0:
                thr = pool.dyn_term_frac[m] * mult
                for u in range(max(cur + 1, s + pool.dyn_term_from[m]), min(end, T, ti - 1) + 1):
                    if midx[u] < thr:
                        tm = u
                        break
            # ti = T+1 encodes "no default within the horizon": a term running past T is not a default.
            if ti <= T and ti <= end and ti <= tm:
                w, v = add_rent(drent, R * mult, e, s, cur + 1, ti - 1, E0)
                received += w
                top = max(top, v)
                c = pool.dyn_relet_class[m]
                r = ti + pool.dyn_downtime[m]
                collateral = pool.lease_gpu[j] + pool.lease_shell[j]
                if c >= 0 and r < end and r <= T:
                    tr = T + 1
                    if pool.fixed_uniform < 0.0:
                        need = -math.log(uniform(key if r < split else key_late, m, 1))
                        for u in range(r + 1, T + 1):
                            if H[c, u] - H[c, r] >= need:
                                tr = u
                                break
                        if tr > split and r < split:
                            # Survived to the split: redraw the rest of its life from there (memoryless).
                            need = H[c, split] - H[c, r] - math.log(uniform(key_late, m, 1))
                            tr = T + 1
                            for u in range(split + 1, T + 1):
                                if H[c, u] - H[c, r] >= need:
                                    tr = u
                                    break
                    w, v = add_rent(drent, R * midx[r], e, s, r + 1, min(end, tr - 1), E0)
                    received += w
                    top = max(top, v)
                    if tr <= end:
                        proceeds = _recovery(gpu, shell, a0, liq, rr, tr + rec_lag, col, gidx, sidx)
                        if proceeds > 0.0:
                            flows[SRC_RECOVERY, tr + rec_lag] += proceeds
                        lost_collateral += max(0.0, collateral - proceeds)
                    else:
                        _sell(gpu, shell, a0, liq, end + sale_lag, col, gidx, sidx, flows, SRC_SALE)
                else:
                    proceeds = _recovery(gpu, shell, a0, liq, rr, ti + rec_lag, col, gidx, sidx)
                    if proceeds > 0.0:
                        flows[SRC_RECOVERY, ti + rec_lag] += proceeds
                    lost_collateral += max(0.0, collateral - proceeds)
                break
            if tm <= T:  # found only within the term, before τ
                w, v = add_rent(drent, R * mult, e, s, cur + 1, tm, E0)
                top = max(top, v)
                fee = pool.dyn_term_fee[m] * R * mult * (1.0 + e) ** ((tm - s - 1) // 12)
                flows[SRC_FEE, tm] += fee
                received += w + (fee if tm <= E0 else 0.0)
                _sell(gpu, shell, a0, liq, tm + sale_lag, col, gidx, sidx, flows, SRC_SALE)
                break
            w, v = add_rent(drent, R * mult, e, s, cur + 1, end, E0)
            received += w
            top = max(top, v)
            if end >= T:
                break
            if left > 0:
                p_renew = norm_cdf(pool.dyn_ren_a[m] + pool.dyn_ren_b[m] * X[end])
                if pool.fixed_uniform >= 0.0:
                    # A deterministic what-if renews iff Φ(a + b·X_t) ≥ ½ (engine/config/run.py DeterministicConfig).
                    renew = p_renew >= pool.fixed_uniform
                else:
                    renew = uniform(key if end <= split else key_late, m, 2 * renewed + 2) < p_renew
                if renew:
                    mult = midx[end]
                    cur = end
                    end += pool.dyn_renewal_term[m]
                    left -= 1
                    renewed += 1
                    continue
            g = pool.dyn_guarantor[m]
            months = pool.dyn_rvg_months[m]
            if g >= 0 and months > 0 and tau[g] > end and end - s <= months:
                k = pool.dyn_rvg_start[m] + (pool.dyn_rvg_end[m] - pool.dyn_rvg_start[m]) * (end - s) / months
                gap = k - collateral_value(gpu, shell, a0, end, col, gidx, sidx)
                if gap > 0.0:
                    flows[SRC_RVG, end] += min(pool.dyn_rvg_cap[m], gap)
            _sell(gpu, shell, a0, liq, end + sale_lag, col, gidx, sidx, flows, SRC_SALE)
            break
        lost_rent = pool.dyn_sched[m] - received
        if lost_rent <= 1e-9 * pool.dyn_sched[m]:
            lost_rent = 0.0
        loss_total += lost_rent + lost_collateral
        renewals_total += renewed
        scale = max(scale, top)
    return loss_total, renewals_total, scale
