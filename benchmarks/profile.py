"""Where a path's time goes: the path loop cut after each stage, timed on one thread.

`python benchmarks/profile.py [WORKLOAD ...]` (or `make profile`); `make bench` includes it.

``staged_paths`` is kernels/simulate.py's path loop for kernel-drawn paths (a run's), calling the same
kernel functions, with a ``stop`` after which each path ends. Timing it with stop = 1, 2, ... and
differencing gives each stage's cost per path; the full loop (`simulate_chunk`) is timed alongside,
and the last stage's total must come close to it, or the cut loop no longer measures the real one.
Stages that write nothing a later stage reads still run (every stage writes arrays that outlive
the loop), so the differences are the stages' own costs.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from engine import load_config  # noqa: E402
from engine.plan.compile import compile_plan  # noqa: E402
from engine.plan.rng import draw_source  # noqa: E402
from engine.simulation.execute import _no_draws  # noqa: E402
from kernels import empty_outputs, no_ledgers, simulate_chunk  # noqa: E402
from kernels._jit import jit  # noqa: E402
from kernels.collateral import value_indices  # noqa: E402
from kernels.credit import class_cumulative_hazard, network_defaults  # noqa: E402
from kernels.draws import class_survival, mixture_weight, path_draws, tenant_defaults  # noqa: E402
from kernels.factor import factor_path  # noqa: E402
from kernels.leases import OptionKeys, PathState, deal_collections  # noqa: E402
from kernels.plan import N_SRC  # noqa: E402
from kernels.simulate import _scratch  # noqa: E402
from kernels.waterfall import DealPath, run_waterfall  # noqa: E402

STAGES = ("draws", "factor", "hazard", "defaults", "network", "indices", "collections", "cash", "waterfall")
PATHS = {"large": 2048}
DEFAULT_PATHS = 16_384


@jit
def staged_paths(stop, fp, cp, col, pool, dp, net, gp, n, out, sc, led):
    """Paths 0..n-1 of simulate_paths, each ending after stage ``stop`` (1-based, STAGES)."""
    X, H, tau, gidx, sidx, midx, cash = sc.X, sc.H, sc.tau, sc.gidx, sc.sidx, sc.midx, sc.cash
    eps, counts, surv, flows = sc.eps, sc.counts, sc.surv, sc.lease.flows
    state = PathState(tau, X, gidx, sidx, midx, H)
    wf = DealPath(X, cash, sc.st, sc.tcash)
    T = X.shape[0] - 1
    midx_used = midx if pool.dyn_lease.shape[0] > 0 else midx[:0]
    for p in range(n):
        burst, winv, key, log_ratio, _ = path_draws(gp, p, eps, counts)
        out.weight[p] = mixture_weight(gp, log_ratio)
        if stop <= 1:
            continue
        factor_path(eps, fp.phi, fp.innovation_scale, burst, fp.burst_shift, X)
        if stop <= 2:
            continue
        class_cumulative_hazard(X, cp.class_c, cp.class_sqrt_rho, cp.class_inv_sqrt_1mrho, winv, cp.hazard_table, H)
        if stop <= 3:
            continue
        class_survival(H, surv)
        tenant_defaults(gp, p, H, cp.tenant_class, cp.tenant_forced, surv, tau)
        if stop <= 4:
            continue
        network_defaults(X, tau, net, p, out, sc.network)
        if stop <= 5:
            continue
        value_indices(X, counts if col.poisson_releases else counts[:0], col, gidx, sidx, midx_used)
        if stop <= 6:
            continue
        for d in dp.deal_order:
            deal_collections(d, pool, col, state, OptionKeys(key, key, T + 1), sc.lease)
            if stop <= 7:
                continue
            for t in range(T + 1):
                total = 0.0
                for r in range(N_SRC):
                    total += flows[r, t]
                cash[t] = total
            if stop <= 8:
                continue
            run_waterfall(d, dp, wf, p, out, led)


def profile(name: str, paths: int | None = None, repeat: int = 3) -> dict:
    """µs per path of each stage of workload ``name`` on one thread, and of the full loop."""
    cfg = load_config(HERE / "workloads" / f"{name}.toml")
    plan = compile_plan(cfg)
    gp = draw_source(cfg).plan()
    n = paths or PATHS.get(name, DEFAULT_PATHS)
    fp, cp, col, pool, dp, net = plan.kernel_args
    T, K, D = plan.months, dp.tranche_balance.size, len(plan.deal_names)
    out = empty_outputs(n, K, D, len(plan.firm_names), T)
    sc = _scratch(T, cp.class_c.shape[0], cp.tenant_class.shape[0], K, net.firm_tenant.shape[0])
    led = no_ledgers(D, K)

    def best(fn) -> float:
        fn()
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times) / n * 1e6

    cumulative = [best(lambda s=s: staged_paths(s, *plan.kernel_args, gp, n, out, sc, led))
                  for s in range(1, len(STAGES) + 1)]
    staged_loss = out.tranche_loss.copy()
    full_out = empty_outputs(n, K, D, len(plan.firm_names), T)
    draws = _no_draws(T, len(plan.tenant_names))
    full = best(lambda: simulate_chunk(*plan.kernel_args, gp, 0, draws, full_out, led))
    if not np.array_equal(staged_loss, full_out.tranche_loss):
        raise AssertionError(f"{name}: the staged loop's tranche losses differ from simulate_chunk's")
    stages = dict(zip(STAGES, np.diff([0.0, *cumulative]).tolist()))
    return {"paths": n, "full_us_per_path": full, "staged_us_per_path": cumulative[-1], "stages_us_per_path": stages}


def table(results: dict) -> str:
    head = f"{'workload':<10} {'full':>6} " + " ".join(f"{s:>11}" for s in STAGES)
    lines = [f"µs per path, 1 thread (stage costs by differences of the cut loop; 'full' is simulate_chunk)", head]
    for name, r in results.items():
        cells = " ".join(f"{r['stages_us_per_path'][s]:>11.2f}" for s in STAGES)
        lines.append(f"{name:<10} {r['full_us_per_path']:>6.2f} {cells}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or ["small", "medium", "large", "qlpool", "network"]
    results = {name: profile(name) for name in names}
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
