"""The path loop: factor -> defaults -> collateral -> collections -> waterfall, one path after another."""

import math
from typing import NamedTuple

import numpy as np

from ._jit import jit
from .collateral import value_indices
from .credit import NetworkScratch, class_cumulative_hazard, default_month, network_defaults, network_scratch
from .draws import class_survival, hazard_tilted_factor, mixture_weight, path_draws, tenant_defaults, tilt_hazards, tilted_defaults
from .factor import factor_path
from .leases import LeaseScratch, OptionKeys, PathState, deal_collections
from .plan import COVERAGE_CAP, FACTOR_LO, FACTOR_WIDTH, FAN_BINS, GPU_LO, GPU_WIDTH, L_FACTOR, L_GPU_INDEX, N_SRC, SRC_ABS, SRC_RECOVERY, SRC_RVG, SRC_SALE
from .waterfall import STATE_ROWS, DealPath, run_waterfall


class Scratch(NamedTuple):
    """One thread's work arrays, allocated once per chunk and refilled by every path. T months,
    C credit classes, N tenants, K tranches.

    X : f8[T+1]                        the factor
    H : f8[C, T+1]                     cumulative hazard by class
    tau : i4[N]                        default month by tenant
    gidx, sidx, midx : f8[T+1]         GPU, facility and market-rent indices
    cash : f8[T+1]                     one deal's collections, all sources
    st : f8[STATE_ROWS, K]             tranche state (kernels/waterfall.py)
    tcash : f8[K, T+1]                 cash paid to each tranche (zeroed: read by ABS-of-ABS deals)
    eps : f8[T+1]; counts : i4[T+1]    the path's normals and release counts (counts zeroed)
    surv, lam, surv_tilt : f8[C]       class survival and tilted hazards (kernels/draws.py)
    lease : LeaseScratch; network : NetworkScratch
    """

    X: np.ndarray
    H: np.ndarray
    tau: np.ndarray
    gidx: np.ndarray
    sidx: np.ndarray
    midx: np.ndarray
    cash: np.ndarray
    st: np.ndarray
    tcash: np.ndarray
    eps: np.ndarray
    counts: np.ndarray
    surv: np.ndarray
    lam: np.ndarray
    surv_tilt: np.ndarray
    lease: LeaseScratch
    network: NetworkScratch


@jit
def simulate_paths(fp, cp, col, pool, dp, net, gp, start, draws, out, sc, led):
    """Simulate paths ``start, start+1, ...`` into the rows of ``out``, in the work arrays of ``sc``
    (Scratch).

    With an empty ``draws`` (no rows) each path draws its own random inputs from the counter-based
    generator as the DrawPlan ``gp`` says (kernels/draws.py); otherwise row p of ``draws`` is path p's.

    The loop over paths lives here, not in a caller: each call of a function that takes the plan
    tuples pays reference counting on every one of their arrays, which cost more than a small
    path's whole simulation.

    ``led`` (Ledgers) receives the monthly statement of every deal when it has a month axis.
    """
    X, H, tau, gidx, sidx, midx, cash = sc.X, sc.H, sc.tau, sc.gidx, sc.sidx, sc.midx, sc.cash
    tcash, eps, counts, surv, lam, surv_tilt = sc.tcash, sc.eps, sc.counts, sc.surv, sc.lam, sc.surv_tilt
    flows = sc.lease.flows
    state = PathState(tau, X, gidx, sidx, midx, H)
    wf = DealPath(X, cash, sc.st, tcash)
    record = led.deal.shape[1] > 0
    T = X.shape[0] - 1
    midx_used = midx if pool.dyn_lease.shape[0] > 0 else midx[:0]
    generate = draws.eps.shape[0] == 0
    for p in range(out.cascade.shape[0]):
        path = start + p
        if generate:
            burst, winv, key, log_ratio, tilted = path_draws(gp, path, eps, counts)
            if gp.factor_tilt.shape[0] > 0:
                log_ratio += hazard_tilted_factor(gp, path, burst, winv, tilted, cp.class_c, cp.class_sqrt_rho,
                                                  cp.class_inv_sqrt_1mrho, fp.phi, fp.innovation_scale,
                                                  fp.burst_shift, eps)
            key_late = key
            split = T + 1
        else:
            for t in range(T + 1):
                eps[t] = draws.eps[p, t]
            if col.poisson_releases:
                for t in range(T + 1):
                    counts[t] = draws.release_counts[p, t]
            burst, winv, key = draws.burst_month[p], draws.winv[p], draws.key[p]
            key_late, split = draws.key_late[p], draws.split[p]
        if fp.fixed_path.shape[0] > 0:
            for t in range(T + 1):
                X[t] = fp.fixed_path[t]
        else:
            factor_path(eps, fp.phi, fp.innovation_scale, burst, fp.burst_shift, X)
        class_cumulative_hazard(X, cp.class_c, cp.class_sqrt_rho, cp.class_inv_sqrt_1mrho, winv, cp.hazard_table, H)
        if generate:
            class_survival(H, surv)
            if gp.default_floor > 0.0:
                tilt_hazards(gp, H, surv, lam, surv_tilt)
                log_ratio += tilted_defaults(gp, path, H, cp.tenant_class, cp.tenant_forced, surv, lam, surv_tilt,
                                             tilted, tau, eps[:0])
            else:
                tenant_defaults(gp, path, H, cp.tenant_class, cp.tenant_forced, surv, tau)
            out.weight[p] = mixture_weight(gp, log_ratio)
        else:
            for i in range(tau.shape[0]):
                m = default_month(H[cp.tenant_class[i]], draws.expo[p, i])
                forced = cp.tenant_forced[i]
                tau[i] = forced if forced < m else m
        if out.deal_control.shape[1] > 0:
            _deal_controls(p, pool, cp, H, tau, out)
        network_defaults(X, tau, net, p, out, sc.network)
        value_indices(X, counts if col.poisson_releases else counts[:0], col, gidx, sidx, midx_used)
        if out.factor_bin.shape[1] > 0:
            for t in range(T + 1):
                out.factor_bin[p, t] = _bin(X[t], FACTOR_LO, FACTOR_WIDTH)
                out.gpu_bin[p, t] = _bin(gidx[t], GPU_LO, GPU_WIDTH)
        hm = dp.horizon_month
        if hm > 0:
            out.h_factor[p] = X[hm]
            out.h_gpu[p] = gidx[hm]
        for d in dp.deal_order:
            loss_amt, ndef, nren = deal_collections(d, pool, col, state, OptionKeys(key, key_late, split), sc.lease)
            p0 = pool.deal_pool_balance[d]
            # ABS-of-ABS: the held share of each collateral tranche's cash, and of its written-off balance.
            # (A written-off tranche is no tenant default: `defaults` counts the deal's tenants only.)
            for c in range(dp.deal_coll_ptr[d], dp.deal_coll_ptr[d + 1]):
                k = dp.coll_tranche[c]
                f = dp.coll_fraction[c]
                for t in range(T + 1):
                    flows[SRC_ABS, t] += f * tcash[k, t]
                written = out.tranche_loss[p, k] * dp.tranche_balance[k]
                if written > 0.0:
                    loss_amt += f * written
            recovered = 0.0
            rvg = 0.0
            for t in range(T + 1):
                total = 0.0
                for r in range(N_SRC):
                    total += flows[r, t]
                cash[t] = total
                recovered += flows[SRC_RECOVERY, t] + flows[SRC_SALE, t]
                rvg += flows[SRC_RVG, t]
            if record:
                for t in range(T + 1):
                    for r in range(N_SRC):
                        led.deal[d, t, r] = flows[r, t]
                    led.deal[d, t, L_FACTOR] = X[t]
                    led.deal[d, t, L_GPU_INDEX] = gidx[t]
            used = run_waterfall(d, dp, wf, p, out, led)
            nl = loss_amt / p0 if p0 > 0.0 else 0.0
            if nl > 1.0:
                nl = 1.0
            out.deal_net_loss[p, d] = nl
            out.deal_defaults[p, d] = ndef
            out.deal_renewals[p, d] = nren
            out.deal_rvg[p, d] = rvg / p0 if p0 > 0.0 else 0.0
            out.deal_recovery[p, d] = recovered / p0 if p0 > 0.0 else 0.0
            note_total = 0.0
            for k in range(dp.deal_tranche_ptr[d], dp.deal_tranche_ptr[d + 1]):
                note_total += dp.tranche_balance[k]
                a = dp.tranche_attach[k]
                if math.isnan(a):
                    out.tranche_alloc_loss[p, k] = np.nan
                else:
                    w = dp.tranche_detach[k] - a
                    out.tranche_alloc_loss[p, k] = min(max(nl - a, 0.0), w) / w
            out.deal_reserve_used[p, d] = used / note_total
            if hm > 0:
                _deal_horizon_state(d, p, hm, pool, dp, tau, cash, out)
        if record:
            led.tau[:] = tau


@jit
def _deal_controls(p, pool, cp, H, tau, out):
    """Each deal's control variate (PathOutputs.deal_control), its tenants weighted by what their
    leases bring to the pool balance P0 (PoolPlan.ctrl_weight): given the factor (and W), a tenant's
    own default by T has probability 1 − e^{−H_T} exactly, so the deviation has mean 0 under the
    model's law, and w·C has mean 0 under importance sampling (also with tilted defaults). Taken
    before the network moves any default month; tenants forced by T are left out."""
    T = H.shape[1] - 1
    for d in range(out.deal_control.shape[1]):
        total = 0.0
        dev = 0.0
        for e in range(pool.deal_ctrl_ptr[d], pool.deal_ctrl_ptr[d + 1]):
            i = pool.ctrl_tenant[e]
            if cp.tenant_forced[i] <= T:
                continue
            w = pool.ctrl_weight[e]
            total += w
            dev += w * ((1.0 if tau[i] <= T else 0.0) + math.expm1(-H[cp.tenant_class[i], T]))
        out.deal_control[p, d] = dev / total if total > 0.0 else 0.0


@jit
def _deal_horizon_state(d, p, hm, pool, dp, tau, cash, out):
    """Deal d's coverage and defaulted share at the stress horizon (PathOutputs.deal_h_*)."""
    due = 0.0
    for k in range(dp.deal_tranche_ptr[d], dp.deal_tranche_ptr[d + 1]):
        due += dp.tranche_coupon_m[k] * out.tranche_h_balance[p, k] * dp.tranche_balance[k]
    got = 0.0
    for t in range(max(1, hm - 2), hm + 1):
        got += cash[t]
    cover = got / (3.0 * due) if due > 0.0 else COVERAGE_CAP
    out.deal_h_coverage[p, d] = min(cover, COVERAGE_CAP)
    total = 0.0
    gone = 0.0
    for g in range(pool.deal_group_ptr[d], pool.deal_group_ptr[d + 1]):
        w = pool.group_rent_suffix[g, 0]
        total += w
        if tau[pool.group_tenant[g]] <= hm:
            gone += w
    for m in range(pool.deal_dyn_ptr[d], pool.deal_dyn_ptr[d + 1]):
        w = pool.dyn_sched[m]
        total += w
        if tau[pool.lease_tenant[pool.dyn_lease[m]]] <= hm:
            gone += w
    out.deal_h_defaulted[p, d] = gone / total if total > 0.0 else 0.0


@jit
def _bin(x, lo, width):
    b = int(math.floor((x - lo) / width)) if x > lo else 0
    return min(max(b, 0), FAN_BINS - 1)


@jit
def _scratch(T, n_classes, n_tenants, n_tranches, n_firms):
    return Scratch(
        np.empty(T + 1), np.empty((n_classes, T + 1)), np.empty(n_tenants, dtype=np.int32),
        np.empty(T + 1), np.empty(T + 1), np.empty(T + 1), np.empty(T + 1), np.empty((STATE_ROWS, n_tranches)),
        np.zeros((n_tranches, T + 1)), np.empty(T + 1), np.zeros(T + 1, dtype=np.int32), np.empty(n_classes),
        np.empty(n_classes), np.empty(n_classes),
        LeaseScratch(np.empty((N_SRC, T + 1)), np.empty(T + 1), np.empty(T + 1), np.empty(T + 1), np.empty(T + 2)),
        network_scratch(n_firms),
    )


@jit
def simulate_chunk(fp, cp, col, pool, dp, net, gp, start, draws, out, led):
    """Simulate paths ``start .. start+n-1`` into ``out`` (PathOutputs of n rows), serially: drawn by
    the kernel as ``gp`` says when ``draws`` is empty, else read from the n rows of ``draws``.

    The kernel releases the GIL (``nogil``); engine/simulation/execute.py runs slices of a chunk on
    several Python threads, each call with its own Scratch. Each path is a pure function of its draws, so
    the split cannot change a bit. Ledgers with a month axis (``led.deal.shape[1] > 0``) record the
    monthly statement of a single path (n = 1) and copy its default months into ``led.tau``;
    otherwise pass ``no_ledgers``. One entry point serves runs and traces because numba compiles
    each entry's whole call tree anew.
    """
    sc = _scratch(gp.months, cp.class_c.shape[0], cp.tenant_class.shape[0], dp.tranche_balance.shape[0],
                  net.firm_tenant.shape[0])
    simulate_paths(fp, cp, col, pool, dp, net, gp, start, draws, out, sc, led)
