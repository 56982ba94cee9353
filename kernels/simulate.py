"""The path loop: factor -> defaults -> collateral -> collections -> waterfall, prange over paths."""

import math

import numpy as np

from ._jit import jit, jit_parallel, prange
from .collateral import value_indices
from .credit import class_cumulative_hazard, default_month, network_defaults
from .factor import factor_path
from .leases import deal_collections
from .plan import FACTOR_LO, FACTOR_WIDTH, FAN_BINS, GPU_LO, GPU_WIDTH, L_FACTOR, L_GPU_INDEX, L_RECOVERY, L_RENT, L_SALE
from .waterfall import run_waterfall

# Paths per scratch allocation inside the parallel loop: large enough that allocation is noise,
# small enough that prange has many tasks to balance across threads.
SUB_BLOCK = 64


@jit
def simulate_path(p, fp, cp, col, pool, dp, net, draws, out, X, H, tau, gidx, sidx, rent, rec, sale, lost, adj_g, adj_s, cash, st, ledger, tledger, record):
    """Simulate path ``p`` of ``draws`` and write its row of ``out``. Scratch arrays are overwritten.

    When ``record`` is true, ``ledger`` (f8[D, T+1, n_cols]) and ``tledger`` (f8[K, T+1, 3])
    receive the monthly statement of every deal; otherwise they may be empty.
    """
    T = X.shape[0] - 1
    factor_path(draws.eps[p], fp.phi, fp.innovation_scale, draws.burst_month[p], fp.burst_shift, X)
    class_cumulative_hazard(X, cp.class_c, cp.class_sqrt_rho, cp.class_inv_sqrt_1mrho, draws.winv[p], H)
    for i in range(tau.shape[0]):
        m = default_month(H[cp.tenant_class[i]], draws.expo[p, i])
        forced = cp.tenant_forced[i]
        tau[i] = forced if forced < m else m
    network_defaults(X, tau, net, p, out)
    if col.poisson_releases:
        value_indices(X, draws.release_counts[p], col, gidx, sidx)
    else:
        value_indices(X, draws.release_counts[0, :0], col, gidx, sidx)
    if out.factor_bin.shape[1] > 0:
        for t in range(T + 1):
            out.factor_bin[p, t] = _bin(X[t], FACTOR_LO, FACTOR_WIDTH)
            out.gpu_bin[p, t] = _bin(gidx[t], GPU_LO, GPU_WIDTH)
    n_deals = pool.deal_pool_balance.shape[0]
    for d in range(n_deals):
        loss_amt, ndef = deal_collections(d, pool, col, tau, gidx, sidx, rent, rec, sale, lost, adj_g, adj_s)
        for t in range(T + 1):
            cash[t] = rent[t] + rec[t] + sale[t]
        if record:
            for t in range(T + 1):
                ledger[d, t, L_RENT] = rent[t]
                ledger[d, t, L_RECOVERY] = rec[t]
                ledger[d, t, L_SALE] = sale[t]
                ledger[d, t, L_FACTOR] = X[t]
                ledger[d, t, L_GPU_INDEX] = gidx[t]
        used = run_waterfall(d, dp, cash, st, p, out, ledger[d], tledger, record)
        p0 = pool.deal_pool_balance[d]
        nl = loss_amt / p0 if p0 > 0.0 else 0.0
        if nl > 1.0:
            nl = 1.0
        out.deal_net_loss[p, d] = nl
        out.deal_defaults[p, d] = ndef
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


@jit
def _bin(x, lo, width):
    b = int(math.floor((x - lo) / width)) if x > lo else 0
    return min(max(b, 0), FAN_BINS - 1)


@jit
def _scratch(T, n_classes, n_tenants, n_tranches, n_deals):
    return (
        np.empty(T + 1), np.empty((n_classes, T + 1)), np.empty(n_tenants, dtype=np.int32),
        np.empty(T + 1), np.empty(T + 1), np.empty(T + 1), np.empty(T + 1), np.empty(T + 1),
        np.empty(T + 1), np.empty(T + 1), np.empty(T + 1), np.empty(T + 1), np.empty((8, n_tranches)),
    )


@jit_parallel
def simulate_chunk(fp, cp, col, pool, dp, net, draws, out):
    """Simulate every path of ``draws`` into ``out`` (PathOutputs of the same length), in parallel.

    Each path is a pure function of its draws, so the result does not depend on the thread count.
    """
    n = draws.eps.shape[0]
    T = draws.eps.shape[1] - 1
    n_classes = cp.class_c.shape[0]
    n_tenants = cp.tenant_class.shape[0]
    n_tranches = dp.tranche_balance.shape[0]
    n_deals = pool.deal_pool_balance.shape[0]
    n_sub = (n + SUB_BLOCK - 1) // SUB_BLOCK
    ledger = np.empty((n_deals, 0, 0))
    tledger = np.empty((n_tranches, 0, 0))
    for b in prange(n_sub):
        X, H, tau, gidx, sidx, rent, rec, sale, lost, adj_g, adj_s, cash, st = _scratch(
            T, n_classes, n_tenants, n_tranches, n_deals
        )
        for p in range(b * SUB_BLOCK, min(n, (b + 1) * SUB_BLOCK)):
            simulate_path(p, fp, cp, col, pool, dp, net, draws, out, X, H, tau, gidx, sidx, rent, rec, sale, lost, adj_g, adj_s, cash, st, ledger, tledger, False)


@jit
def trace_path(fp, cp, col, pool, dp, net, draws, out, ledger, tledger):
    """Simulate path 0 of ``draws`` serially, recording the monthly statement into the ledgers."""
    T = draws.eps.shape[1] - 1
    X, H, tau, gidx, sidx, rent, rec, sale, lost, adj_g, adj_s, cash, st = _scratch(
        T, cp.class_c.shape[0], cp.tenant_class.shape[0], dp.tranche_balance.shape[0], pool.deal_pool_balance.shape[0]
    )
    simulate_path(0, fp, cp, col, pool, dp, net, draws, out, X, H, tau, gidx, sidx, rent, rec, sale, lost, adj_g, adj_s, cash, st, ledger, tledger, True)
    return tau.copy()
