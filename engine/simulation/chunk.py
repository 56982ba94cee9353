"""A job (one compiled config) cut into chunks, and the statistics of one chunk: simulate, contagion step, path rows."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from engine.analytics.holders import HolderStats, holder_path_rows, holder_sales_rows
from engine.analytics.stats import PathWeights, RunStats, path_tables
from engine.config import Config
from engine.io.rundir import write_path_chunk
from engine.plan.compile import Plan, compile_plan
from engine.plan.rng import DrawSource, FixedDraws, draw_source
from engine.simulation import importance, marks
from engine.simulation.execute import _rows, map_slices, simulate, simulate_draws
from engine.simulation.holder_system import HolderSystem, build_system, run_paths


@dataclass(frozen=True)
class Chunk:
    """Paths ``start .. stop-1`` of job ``job``; ``network=False`` is the without-network comparison pass."""

    job: str
    start: int
    stop: int
    network: bool = True


@dataclass
class Job:
    """One config to simulate, compiled; ``paths_to`` is (run dir, scenario) for path-level rows."""

    cfg: Config
    plan: Plan
    max_defaults: int
    compile_s: float = 0.0
    paths_to: tuple[Path, str] | None = None
    system: HolderSystem | None = None
    marks_s: float = 0.0
    importance: dict | None = None  # how the sampling law was chosen (engine/simulation/importance.py), with importance sampling
    importance_s: float = 0.0

    @classmethod
    def prepare(cls, cfg: Config, paths_to: tuple[Path, str] | None = None, warm: bool = True) -> Job:
        plan = compile_plan(cfg)
        job = cls(cfg, plan, int(np.diff(plan.pool.deal_group_ptr).max()), paths_to=paths_to)
        if cfg.importance is not None and cfg.deterministic is None:  # a what-if's one path has nothing to weight
            # The chosen law is written into the job's config, so that Dask workers get it fixed.
            t0 = time.perf_counter()
            job.cfg, job.importance = importance.resolve(cfg, plan, simulate)
            job.importance_s = time.perf_counter() - t0
        if warm:
            t0 = time.perf_counter()
            simulate(plan, job.source(), 0, 1)  # compiles on first use, or loads numba's cache
            job.compile_s = time.perf_counter() - t0
        if cfg.contagion is not None:
            t0 = time.perf_counter()
            # The marks are part of the model, not of the estimator: fitted and checked on plain
            # Monte Carlo paths, so importance sampling leaves them as they are.
            job.system = holder_system(job.cfg, plan, draw_source(job.cfg, tilted=False))
            job.marks_s = time.perf_counter() - t0
        return job

    def source(self) -> DrawSource | FixedDraws:
        """A fresh draw source: the one place a job's random numbers come from."""
        return draw_source(self.cfg, plan=self.plan)

    def compares(self) -> bool:
        net = self.cfg.network
        return bool(net and net.enabled and net.compare_without)

    def chunks(self, name: str) -> list[Chunk]:
        n, size = self.cfg.run.paths, self.cfg.run.chunk_paths
        passes = (True, False) if self.compares() else (True,)
        return [Chunk(name, s, min(n, s + size), net) for net in passes for s in range(0, n, size)]


def holder_system(cfg: Config, plan: Plan, source) -> HolderSystem:
    """Fit the marks on the pilot paths, check them by nested re-simulation and build the holder
    system of a config with a ``contagion`` section (engine/simulation/marks.py, engine/analytics/holders.py)."""
    c = cfg.contagion
    pilot = simulate(plan, source, 0, min(c.pilot_paths, cfg.run.paths))
    fitted = marks.fit(pilot, plan.tranche_deal_index)
    nested = None
    if c.nested_paths > 0 and cfg.deterministic is None:
        nested = marks.nested_check(plan, source, fitted, cfg, simulate_draws)
    return build_system(cfg, plan, fitted, nested)


def contagion_step(system: HolderSystem, out, start: int, network: bool, rows: bool,
                   weights: PathWeights | None = None) -> tuple[HolderStats, list[dict]]:
    """The contagion step of one chunk's outputs: its statistics and (``rows``) its path-level rows.

    The chunk is cut into one slice per kernel thread, run on the engine's thread pool (numba and
    most numpy work release the GIL), and the slices' statistics merged exactly: the split cannot
    change a bit."""
    def one(a, b):
        part = _rows(out, a, b)
        pc = run_paths(system, part, part.firm_default_month if network else None)
        extra = {"holders": holder_path_rows(system, pc, start + a),
                 "holder_sales": holder_sales_rows(system, pc, start + a)} if rows else None
        return HolderStats.of_chunk(system, pc, None if weights is None else weights.rows(a, b)), extra

    done = map_slices(out.h_factor.shape[0], one)
    stats = HolderStats()
    for part, _ in done:
        stats = stats.merge(part)
    return stats, [extra for _, extra in done if extra is not None]


def compute(job: Job, chunk: Chunk, source: DrawSource | None = None) -> RunStats:
    """The statistics of one chunk (and its path-level rows, when the job writes them)."""
    plan = job.plan if chunk.network else job.plan.without_network()
    source = source or job.source()
    out = simulate(plan, source, chunk.start, chunk.stop)
    w = out.weight if source.weighted else None  # the kernel computed each path's dP/dQ with its draws
    weights = None if w is None else PathWeights.of(w, chunk.start, source.strata)
    held = None
    holder_rows: list[dict] = []
    if job.system is not None and chunk.network:
        t0 = time.perf_counter_ns()
        want_rows = job.paths_to is not None and bool(job.system.holder_names)
        held, holder_rows = contagion_step(job.system, out, chunk.start, plan.network.enabled, want_rows, weights)
        held.nanoseconds = time.perf_counter_ns() - t0
    if job.paths_to is not None and chunk.network:
        firms = plan.firm_names if plan.network.enabled else ()
        rows = path_tables(out, chunk.start, plan.tranche_deal, plan.tranche_names, plan.deal_names, firms, w)
        for name in ("holders", "holder_sales"):
            if holder_rows:
                rows[name] = pd.concat([part[name] for part in holder_rows], ignore_index=True)
        write_path_chunk(job.paths_to[0], job.paths_to[1], chunk.start, rows)
    stats = chunk_stats(out, job.max_defaults, plan.months, weights, plan.tranche_deal_index)
    stats.holders = held
    return stats


def chunk_stats(out, max_defaults: int, months: int, weights: PathWeights | None,
                tranche_deal: np.ndarray | None = None) -> RunStats:
    """RunStats of a chunk's outputs, one slice per kernel thread, merged exactly (the same bits as
    one RunStats.of_chunk over the whole chunk). ``tranche_deal``: each tranche's deal index."""
    parts = map_slices(out.h_factor.shape[0], lambda a, b: RunStats.of_chunk(
        _rows(out, a, b), max_defaults, months, None if weights is None else weights.rows(a, b), tranche_deal),
        min_rows=2048)
    stats = parts[0]
    for part in parts[1:]:
        stats = stats.merge(part)
    return stats
