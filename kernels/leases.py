"""Lease cash flows of one deal on one path: rent, recoveries and terminal sales (MODEL §4)."""

from ._jit import jit
from .collateral import facility_depreciation, gpu_depreciation


@jit
def net_of(gross, lost):
    """gross − lost, with the rounding dust of an exact cancellation sent to 0."""
    r = gross - lost
    if r <= 1e-9 * gross:
        return 0.0
    return r


@jit
def deal_collections(d, pool, col, tau, gpu_index, shell_index, rent, recovery, sale, lost, adj_gpu, adj_shell):
    """Collections of deal ``d`` by month and source, given the tenants' default months.

    Rent of a group stops from its tenant's default month τ. A lease whose tenant defaults by the
    end of its term (τ ≤ end) loses its terminal sale and instead recovers, at τ + recovery_lag,
    either ``recovery_rate × (gpu_cost + shell_value)`` (`fixed`) or the market value of its
    collateral net of liquidation cost (`sale`).

    Parameters
    ----------
    d : int
    pool : PoolPlan; col : CollateralPlan
    tau : i4[N]                      default month per tenant (T+1 = none)
    gpu_index, shell_index : f8[T+1]
    rent, recovery, sale : f8[T+1] (out)
    lost, adj_gpu, adj_shell : f8[T+1] (scratch)

    Returns
    -------
    (net_loss_amount, defaults) : the numerator of NL_T (lost scheduled rent plus unrecovered
    collateral, USD) and the number of the deal's tenants that defaulted within the horizon.
    """
    T = rent.shape[0] - 1
    for t in range(T + 1):
        recovery[t] = 0.0
        lost[t] = 0.0
        adj_gpu[t] = 0.0
        adj_shell[t] = 0.0
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
            if pool.lease_deal[j] != d or ti > pool.lease_end[j]:
                continue
            m = pool.lease_term_month[j]
            if m <= T:
                adj_gpu[m] += pool.lease_term_gpu[j]
                adj_shell[m] += pool.lease_term_shell[j]
            collateral = pool.lease_gpu[j] + pool.lease_shell[j]
            proceeds = 0.0
            r = ti + pool.lease_rec_lag[j]
            if r <= T:
                if pool.lease_fixed_rr[j] >= 0.0:
                    proceeds = pool.lease_fixed_rr[j] * collateral
                else:
                    v = pool.lease_gpu[j] * gpu_depreciation(
                        r - pool.lease_a0[j], col.curve, col.gpu_life, col.gpu_half_life, col.gpu_salvage
                    ) * gpu_index[r]
                    s = pool.lease_shell[j] * facility_depreciation(r, col.shell_life) * shell_index[r]
                    proceeds = (v + s) * (1.0 - pool.lease_liq[j])
                recovery[r] += proceeds
            if collateral > proceeds:
                loss += collateral - proceeds
    for t in range(T + 1):
        rent[t] = net_of(pool.deal_rent[d, t], lost[t])
        sale[t] = gpu_index[t] * net_of(pool.deal_term_gpu[d, t], adj_gpu[t]) + shell_index[t] * net_of(
            pool.deal_term_shell[d, t], adj_shell[t]
        )
    return loss, defaults
