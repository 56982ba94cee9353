"""The chunk loop: draws -> kernels -> mergeable statistics -> summary tables."""

from __future__ import annotations

import platform
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from importlib import metadata

import numba
import numpy as np
import pandas as pd
from tqdm import tqdm

from kernels import empty_outputs, simulate_chunk, trace_path
from kernels.plan import LEDGER_COLUMNS, TRANCHE_LEDGER_COLUMNS

from .compile import Plan, compile_plan
from .config import Config, ConfigError
from .outputs import write_run
from .rng import BLOCK_PATHS, DrawSource
from .stats import RunStats, cascade_table, deal_table, network_table, tranche_table


@dataclass
class Results:
    """The outcome of a run. ``tranches``, ``deals`` and (with a network) ``network`` and
    ``cascades`` are tidy DataFrames."""

    tranches: pd.DataFrame
    deals: pd.DataFrame
    manifest: dict
    stats: RunStats = field(repr=False)
    network: pd.DataFrame | None = None
    cascades: pd.DataFrame | None = None

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """Every summary table of the run, by file name."""
        out = {"tranches": self.tranches, "deals": self.deals}
        if self.network is not None:
            out["network"] = self.network
            out["cascades"] = self.cascades
        return out

    def write(self, out_dir: str | Path, overwrite: bool = False) -> Path:
        """Write ``manifest.json`` and ``summary/*.parquet`` under ``out_dir``."""
        return write_run(out_dir, self.tables, self.manifest, overwrite)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("dcabs", "numpy", "numba", "pandas", "pyarrow", "pydantic", "scipy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def set_threads(threads: int) -> int:
    """Apply ``run.threads`` (0 = numba's default) and return the count in force."""
    available = numba.config.NUMBA_NUM_THREADS
    if threads > available:
        raise ConfigError([("run.threads", f"{threads} threads requested but only {available} are available")])
    numba.set_num_threads(threads or available)
    return numba.get_num_threads()


def _simulate_all(plan: Plan, source: DrawSource, n: int, chunk: int, max_defaults: int, bar) -> RunStats:
    stats = RunStats()
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        stats = stats.merge(RunStats.of_chunk(simulate(plan, source, start, stop), max_defaults, plan.months))
        bar.update(stop - start)
    return stats


def simulate(plan: Plan, source: DrawSource, start: int, stop: int):
    """Path outputs of paths ``start .. stop-1``."""
    draws = source.draws(start, stop)
    out = empty_outputs(stop - start, plan.deals.tranche_balance.size, len(plan.deal_names), len(plan.firm_names))
    simulate_chunk(*plan.kernel_args, draws, out)
    return out


@dataclass
class Trace:
    """The monthly statement of one path.

    ledger : f8[D, T+1, len(LEDGER_COLUMNS)]; tranche_ledger : f8[K, T+1, 3]; tau : default month per
    tenant (T+1 = none); outputs : that path's PathOutputs row (length-1 arrays).
    """

    ledger: np.ndarray
    tranche_ledger: np.ndarray
    tau: np.ndarray
    outputs: object
    columns: tuple = LEDGER_COLUMNS
    tranche_columns: tuple = TRANCHE_LEDGER_COLUMNS


def trace(plan: Plan, source: DrawSource, path: int) -> Trace:
    """Simulate one path serially and return its monthly ledgers (same code path as a run)."""
    draws = source.draws(path, path + 1)
    out = empty_outputs(1, plan.deals.tranche_balance.size, len(plan.deal_names), len(plan.firm_names))
    T = plan.months
    ledger = np.zeros((len(plan.deal_names), T + 1, len(LEDGER_COLUMNS)))
    tledger = np.zeros((plan.deals.tranche_balance.size, T + 1, len(TRANCHE_LEDGER_COLUMNS)))
    tau = trace_path(*plan.kernel_args, draws, out, ledger, tledger)
    return Trace(ledger=ledger, tranche_ledger=tledger, tau=tau, outputs=out)


def run(config: Config, *, paths: int | None = None, seed: int | None = None, chunk_paths: int | None = None,
        threads: int | None = None, progress: bool = False, out: str | Path | None = None,
        overwrite: bool = False) -> Results:
    """Run the Monte Carlo for a validated config and return its summary tables.

    Keyword arguments override the config's ``run`` section (and are validated like it). With
    ``out``, the run directory is written too.
    """
    t_start = time.perf_counter()
    cfg = config.with_run(paths=paths, seed=seed, chunk_paths=chunk_paths, threads=threads)
    n_threads = set_threads(cfg.run.threads)
    plan = compile_plan(cfg)
    source = DrawSource.for_config(cfg)
    max_defaults = int(np.diff(plan.pool.deal_group_ptr).max())

    t0 = time.perf_counter()
    simulate(plan, source, 0, 1)  # compiles on first use, or loads numba's cache
    t_compile = time.perf_counter() - t0

    n, chunk = cfg.run.paths, cfg.run.chunk_paths
    compare = plan.network.enabled and cfg.network.compare_without
    t0 = time.perf_counter()
    bar = tqdm(total=n * (2 if compare else 1), unit="path", unit_scale=True, disable=not progress, file=sys.stderr,
               desc="simulating")
    with bar:
        stats = _simulate_all(plan, source, n, chunk, max_defaults, bar)
        t_sim = time.perf_counter() - t0
        without = _simulate_all(plan.without_network(), source, n, chunk, max_defaults, bar) if compare else None
    t_without = time.perf_counter() - t0 - t_sim

    has_points = ~np.isnan(plan.deals.tranche_attach)
    tranches = tranche_table(stats, plan.tranche_deal, plan.tranche_names, plan.deals.tranche_balance, has_points)
    if without is not None:
        other = tranche_table(without, plan.tranche_deal, plan.tranche_names, plan.deals.tranche_balance, has_points)
        tranches["el_without_network"] = other["el"].to_numpy()
        tranches["el_se_without_network"] = other["el_se"].to_numpy()
    deals = deal_table(stats, plan.deal_names, plan.pool.deal_pool_balance)
    network = network_table(stats, plan.firm_names) if plan.firm_names else None
    cascades = cascade_table(stats) if plan.firm_names else None
    total = time.perf_counter() - t_start
    manifest = {
        "config": cfg.resolved(),
        "config_sha256": cfg.digest(),
        "seed": cfg.run.seed,
        "paths": n,
        "months": cfg.run.months,
        "block_paths": BLOCK_PATHS,
        "chunk_paths": chunk,
        "threads": n_threads,
        "tenant_thresholds": dict(zip(plan.tenant_names, map(float, plan.tenant_threshold))),
        "versions": _versions(),
        "timings": {
            "compile_s": round(t_compile, 4),
            "simulate_s": round(t_sim, 4),
            "simulate_without_network_s": round(t_without, 4) if compare else None,
            "total_s": round(total, 4),
            "paths_per_s": round(n / t_sim, 1) if t_sim > 0 else None,
        },
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    results = Results(tranches=tranches, deals=deals, manifest=manifest, stats=stats, network=network, cascades=cascades)
    if out is not None:
        results.write(out, overwrite=overwrite)
    return results
