"""Calling the kernel: the worker-thread pool, path outputs of a range of paths, one path's trace."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numba
import numpy as np

from engine.config import ConfigError
from engine.plan.compile import Plan
from engine.plan.rng import DrawSource, explicit_plan
from kernels import Draws, Ledgers, empty_outputs, no_ledgers, simulate_chunk
from kernels.plan import LEDGER_COLUMNS, TRANCHE_LEDGER_COLUMNS

# Paths per kernel call on a worker thread: ~10 ms of work, so the queue balances the threads and
# the per-call Python overhead (slicing ~30 arrays) stays far below 1%.
TASK_PATHS = 256
_threads = {"count": os.cpu_count() or 1, "pool": None}


def available_threads() -> int:
    """Worker threads this machine offers (NUMBA_NUM_THREADS, which defaults to the cores)."""
    return numba.config.NUMBA_NUM_THREADS


def set_threads(threads: int) -> int:
    """Apply ``run.threads`` (0 = every available core) and return the count in force."""
    available = available_threads()
    if threads > available:
        raise ConfigError([("run.threads", f"{threads} threads requested but only {available} are available")])
    count = threads or available
    if count != _threads["count"] and _threads["pool"] is not None:
        _threads["pool"].shutdown()
        _threads["pool"] = None
    _threads["count"] = count
    return count


def _pool() -> ThreadPoolExecutor:
    if _threads["pool"] is None:
        _threads["pool"] = ThreadPoolExecutor(max_workers=_threads["count"], thread_name_prefix="dcabs-kernel")
    return _threads["pool"]


def map_slices(n: int, fn, min_rows: int = 1024) -> list:
    """``fn(a, b)`` over one slice of rows 0..n-1 per kernel thread (at least ``min_rows`` each), on
    the engine's thread pool, in slice order. numba and most numpy work release the GIL; callers
    merge the results exactly, so the split cannot change a bit."""
    parts = max(1, min(_threads["count"], n // min_rows))
    cuts = np.linspace(0, n, parts + 1).astype(np.int64)
    spans = list(zip(cuts[:-1].tolist(), cuts[1:].tolist()))
    if parts == 1:
        return [fn(*spans[0])]
    return list(_pool().map(lambda ab: fn(*ab), spans))


def _rows(arrays: tuple, a: int, b: int) -> tuple:
    """Paths a..b-1 of a NamedTuple of per-path arrays (views, no copies)."""
    return type(arrays)(*(x[a:b] for x in arrays))


def simulate(plan: Plan, source: DrawSource, start: int, stop: int):
    """Path outputs of paths ``start .. stop-1``: drawn by the kernel itself from a random source,
    read from written-out draws for a deterministic what-if."""
    gp = source.plan()
    if gp is None:
        return simulate_draws(plan, source.draws(start, stop))
    return _simulate(plan, gp, start, stop - start, _no_draws(plan.months, len(plan.tenant_names)))


def simulate_draws(plan: Plan, draws):
    """Path outputs of the paths of ``draws`` (a kernels.plan.Draws written out)."""
    return _simulate(plan, explicit_plan(plan.months), 0, draws.eps.shape[0], draws)


def _no_draws(T: int, n_tenants: int) -> Draws:
    """Draws with no rows: the kernel draws every path itself."""
    return Draws(eps=np.empty((0, T + 1)), expo=np.empty((0, n_tenants)), burst_month=np.empty(0, dtype=np.int32),
                 winv=np.empty(0), release_counts=np.empty((0, 0), dtype=np.int32), key=np.empty(0, dtype=np.uint64),
                 key_late=np.empty(0, dtype=np.uint64), split=np.empty(0, dtype=np.int32))


def _simulate(plan: Plan, gp, start: int, n: int, draws: Draws):
    out = empty_outputs(n, plan.deals.tranche_balance.size, len(plan.deal_names), len(plan.firm_names), plan.months,
                        control=bool(gp.weighted))  # the control variate is an importance-sampled run's (model.md §9)
    no_trace = no_ledgers(len(plan.deal_names), plan.deals.tranche_balance.size)
    explicit = draws.eps.shape[0] > 0
    if _threads["count"] == 1 or n <= TASK_PATHS:
        simulate_chunk(*plan.kernel_args, gp, start, draws, out, no_trace)
        return out
    # The kernel releases the GIL; each task owns disjoint rows of `out`, and a path depends only on
    # its own index (or its own row of draws), so the split cannot change a bit.
    def task(ab):
        a, b = ab
        simulate_chunk(*plan.kernel_args, gp, start + a, _rows(draws, a, b) if explicit else draws, _rows(out, a, b), no_trace)

    for _ in _pool().map(task, [(a, min(n, a + TASK_PATHS)) for a in range(0, n, TASK_PATHS)]):
        pass
    return out


@dataclass
class Trace:
    """The monthly statement of one path.

    ledger : f8[D, T+1, len(LEDGER_COLUMNS)]; step_ledger : f8[S, T+1] (what each waterfall step
    paid; a `trap` step's release is negative); tranche_ledger : f8[K, T+1, len(TRANCHE_LEDGER_COLUMNS)]; tau : default month
    per tenant (T+1 = none); outputs : that path's PathOutputs row (length-1 arrays).
    """

    ledger: np.ndarray
    step_ledger: np.ndarray
    tranche_ledger: np.ndarray
    tau: np.ndarray
    outputs: object
    columns: tuple = LEDGER_COLUMNS
    tranche_columns: tuple = TRANCHE_LEDGER_COLUMNS


def trace(plan: Plan, source: DrawSource, path: int) -> Trace:
    """Simulate one path serially and return its monthly ledgers (same code path as a run)."""
    draws = source.draws(path, path + 1)
    out = empty_outputs(1, plan.deals.tranche_balance.size, len(plan.deal_names), len(plan.firm_names), plan.months)
    T = plan.months
    ledger = np.zeros((len(plan.deal_names), T + 1, len(LEDGER_COLUMNS)))
    sledger = np.zeros((plan.deals.step_op.size, T + 1))
    tledger = np.zeros((plan.deals.tranche_balance.size, T + 1, len(TRANCHE_LEDGER_COLUMNS)))
    tau = np.empty(len(plan.tenant_names), dtype=np.int32)
    simulate_chunk(*plan.kernel_args, explicit_plan(T), 0, draws, out, Ledgers(deal=ledger, step=sledger, tranche=tledger, tau=tau))
    return Trace(ledger=ledger, step_ledger=sledger, tranche_ledger=tledger, tau=tau, outputs=out)
