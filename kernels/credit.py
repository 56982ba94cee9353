"""Tenant default times from cumulative hazards of hazard classes (MODEL §2)."""

import math
from typing import NamedTuple

import numpy as np

from ._jit import jit, jit_inline
from .network import SOLVENCY_RTOL, ClearingScratch, clear_network_in, clearing_scratch

_INV_SQRT2 = 1.0 / math.sqrt(2.0)


@jit
def norm_cdf(x):
    """Standard normal CDF, accurate in both tails (erfc, not 1 − erf)."""
    return 0.5 * math.erfc(-x * _INV_SQRT2)


# The monthly hazard step −ln(1 − Φ(z)) = −ln Φ(−z) is one function of one variable for every class,
# path and copula, so it is tabulated once: ln of it as a cubic Hermite on a grid of 1/256 in z over
# [HAZARD_Z0, HAZARD_Z1), whose relative error is below 2e-13 (tests/test_kernels.py). An exact
# evaluation (an erfc and a log) cost 30 ns, a third of a medium path; the table costs 9.
HAZARD_Z0 = -16.0
HAZARD_Z1 = 8.25
HAZARD_PER_UNIT = 256.0
HAZARD_INTERVALS = round((HAZARD_Z1 - HAZARD_Z0) * HAZARD_PER_UNIT)


@jit
def hazard_step_exact(z):
    """−ln Φ(−z), the hazard of a month whose default probability is Φ(z), accurate in both tails:
    ln1p(−Φ(z)) below 0 and ln Φ(−z) above, where 1 − Φ(z) would cancel. +inf once Φ(−z) underflows."""
    if z < 0.0:
        return -math.log1p(-norm_cdf(z))
    s = 0.5 * math.erfc(z * _INV_SQRT2)
    if s <= 0.0:
        return math.inf
    return -math.log(s)


@jit
def hazard_table():
    """f8[HAZARD_INTERVALS, 4]: per interval of z, the cubic in u ∈ [0, 1) of ln(−ln Φ(−z)), from its
    values and derivatives at the ends (d/dz ln f = φ(z) / (Φ(−z)·f(z)))."""
    n = HAZARD_INTERVALS
    h = 1.0 / HAZARD_PER_UNIT
    v = np.empty(n + 1)
    dv = np.empty(n + 1)
    for i in range(n + 1):
        z = HAZARD_Z0 + i * h
        f = hazard_step_exact(z)
        v[i] = math.log(f)
        density = math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
        dv[i] = h * density / (0.5 * math.erfc(z * _INV_SQRT2) * f)
    out = np.empty((n, 4))
    for i in range(n):
        out[i, 0] = v[i]
        out[i, 1] = dv[i]
        out[i, 2] = 3.0 * (v[i + 1] - v[i]) - 2.0 * dv[i] - dv[i + 1]
        out[i, 3] = 2.0 * (v[i] - v[i + 1]) + dv[i] + dv[i + 1]
    return out


@jit
def hazard_step(z, table):
    """−ln Φ(−z) from ``hazard_table()``; exact outside its range (and for NaN)."""
    x = (z - HAZARD_Z0) * HAZARD_PER_UNIT
    if x >= 0.0 and x < table.shape[0]:
        j = int(x)
        u = x - j
        return math.exp(((table[j, 3] * u + table[j, 2]) * u + table[j, 1]) * u + table[j, 0])
    return hazard_step_exact(z)


@jit
def class_cumulative_hazard(X, c, sqrt_rho, inv_sqrt_1mrho, winv, table, out):
    """Cumulative hazard of every class: ``out[k, t] = Σ_{u ≤ t} −ln(1 − q_k(u))``.

    q_k(t) = Φ((c_k·winv − sqrt(ρ_k)·X_t) / sqrt(1 − ρ_k)); ``winv`` = 1/sqrt(W) of the t-copula.

    Parameters
    ----------
    X : f8[T+1]
    c, sqrt_rho, inv_sqrt_1mrho : f8[K]
    winv : float
    table : f8[HAZARD_INTERVALS, 4], ``hazard_table()``
    out : f8[K, T+1]; out[:, 0] = 0.
    """
    for k in range(out.shape[0]):
        acc = 0.0
        out[k, 0] = 0.0
        ck = c[k] * winv
        # A month with the factor of the month before has its hazard too: a static factor (or a
        # long flat stretch) costs one step, not one a month.
        x_prev = math.nan
        step = 0.0
        for t in range(1, out.shape[1]):
            if X[t] != x_prev:
                x_prev = X[t]
                step = hazard_step((ck - sqrt_rho[k] * x_prev) * inv_sqrt_1mrho[k], table)
            acc += step
            out[k, t] = acc


@jit
def default_month(H, e):
    """First month t in 1..T with ``H[t] ≥ e`` (H non-decreasing), or T+1 if none."""
    T = H.shape[0] - 1
    if H[T] < e:
        return T + 1
    lo, hi = 1, T
    while lo < hi:
        mid = (lo + hi) // 2
        if H[mid] >= e:
            hi = mid
        else:
            lo = mid + 1
    return lo


class NetworkScratch(NamedTuple):
    """Work arrays of ``network_defaults`` for F firms, allocated once per chunk (so per thread).

    cash, e, d, pbar, pay : f8[F]; dead, dflt : i1[F]; L : f8[F, F]; clearing : ClearingScratch
    """

    cash: np.ndarray
    dead: np.ndarray
    L: np.ndarray
    e: np.ndarray
    d: np.ndarray
    pbar: np.ndarray
    pay: np.ndarray
    dflt: np.ndarray
    clearing: ClearingScratch


@jit
def network_scratch(F):
    return NetworkScratch(np.empty(F), np.empty(F, dtype=np.int8), np.empty((F, F)), np.empty(F), np.empty(F),
                          np.empty(F), np.empty(F), np.empty(F, dtype=np.int8), clearing_scratch(F))


@jit_inline
def network_defaults(X, tau, net, p, out, ws):
    """Year-end clearing of the firm network on one path (MODEL §7); tenant defaults feed ``tau``.

    At each year end m = 12y, firms still alive clear that year's obligations among themselves with
    external assets = revenue_y·exp(β_i X̄_y − β_i²/2) + cash, where X̄_y is the factor's average over
    the year. A firm whose tenant defaulted by hazard by month m is dead before the clearing (an
    own default). A clearing defaulter defaults in month m; it is an own default if it would fail
    even if every other firm, dead ones included, paid its contracted obligations in full, and a
    contagion default otherwise. Obligations to and
    from dead firms stop. A solvent firm keeps its surplus as cash.

    Parameters
    ----------
    X : f8[T+1]; tau : i4[N] (in/out: a tenant's default month becomes min(τ, m))
    net : NetworkPlan; p : int (row of ``out``); out : PathOutputs; ws : NetworkScratch
    """
    F = net.firm_tenant.shape[0]
    T = X.shape[0] - 1
    for i in range(F):
        out.firm_default_month[p, i] = T + 1
        out.firm_own[p, i] = 0
        out.firm_ratio[p, i] = np.nan
        out.firm_caused[p, i] = 0.0
    out.cascade[p] = 0
    if not net.enabled or F == 0:
        return
    Y = min(T // 12, net.obligations.shape[0] - 1)
    cash, dead, L, e, d, pbar, pay, dflt = ws.cash, ws.dead, ws.L, ws.e, ws.d, ws.pbar, ws.pay, ws.dflt
    # Every year overwrites L, e, d, pbar and the clearing's pay and dflt before reading them.
    for i in range(F):
        cash[i] = net.firm_cash[i]
        dead[i] = 0
    n_own = 0
    for y in range(1, Y + 1):
        m = 12 * y
        for i in range(F):
            t = net.firm_tenant[i]
            if dead[i] == 0 and t >= 0 and tau[t] <= m:
                dead[i] = 1
                out.firm_default_month[p, i] = tau[t]
                out.firm_own[p, i] = 1
                n_own += 1
        xbar = 0.0
        for u in range(m - 11, m + 1):
            xbar += X[u]
        xbar /= 12.0
        for i in range(F):
            pbar[i] = 0.0
            for j in range(F):
                L[i, j] = net.obligations[y, i, j] if dead[i] == 0 and dead[j] == 0 else 0.0
                pbar[i] += L[i, j]
            if dead[i]:
                e[i] = 0.0
                d[i] = 0.0
            else:
                b = net.firm_beta[i]
                e[i] = net.firm_revenue[y, i] * math.exp(b * xbar - 0.5 * b * b) + cash[i]
                d[i] = net.firm_debt[i]
        clear_network_in(ws.clearing, L, e, d, net.alpha, net.beta, pay, dflt)
        contagion = 0
        for i in range(F):
            if dead[i]:
                continue
            received = 0.0
            received_full = 0.0
            for j in range(F):
                if pbar[j] > 0.0:
                    received += L[j, i] / pbar[j] * pay[j]
                received_full += net.obligations[y, j, i]
            if dflt[i]:
                dead[i] = 1
                out.firm_default_month[p, i] = m
                out.firm_ratio[p, i] = pay[i] / pbar[i] if pbar[i] > 0.0 else np.nan
                if e[i] + received_full < (d[i] + pbar[i]) * (1.0 - SOLVENCY_RTOL):
                    out.firm_own[p, i] = 1
                    n_own += 1
                else:
                    contagion += 1
                t = net.firm_tenant[i]
                if t >= 0 and m < tau[t]:
                    tau[t] = m
            else:
                cash[i] = max(0.0, e[i] + received - d[i] - pbar[i])
        if contagion > 0:
            out.cascade[p] += contagion
            # Contagion is shared equally among the firms that have failed on their own so far: an
            # attribution, not a counterfactual (documented in docs/model.md §7).
            if n_own > 0:
                share = contagion / n_own
                for i in range(F):
                    if out.firm_own[p, i] == 1:
                        out.firm_caused[p, i] += share
    # Hazard defaults after the last year end still count as the firm's own default.
    for i in range(F):
        t = net.firm_tenant[i]
        if dead[i] == 0 and t >= 0 and tau[t] <= T:
            out.firm_default_month[p, i] = tau[t]
            out.firm_own[p, i] = 1
