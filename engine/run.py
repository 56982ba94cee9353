"""The chunk loop: draws -> kernels -> mergeable statistics -> summary tables."""

from __future__ import annotations

import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from importlib import metadata

import numba
import numpy as np
import pandas as pd

from kernels import Draws, empty_outputs, simulate_chunk
from kernels.plan import LEDGER_COLUMNS, TRANCHE_LEDGER_COLUMNS

from . import holders
from .compile import Plan
from .config import Config, ConfigError
from .outputs import (SUMMARY_TABLES, OutputExistsError, check_writable, claim, read_path_table, read_run, remove_written,
                      write_run)
from .rng import RNG, DrawSource, explicit_plan
from .stats import RunStats, cascade_table, deal_table, distribution_table, fan_table, network_table, tranche_table, trigger_table


# Summary tables a run writes only when it has the data for them, besides tranches and deals.
OPTIONAL_TABLES = SUMMARY_TABLES[2:]


@dataclass
class Results:
    """The outcome of a run. ``tranches``, ``deals`` and (with a network) ``network`` and
    ``cascades``, (with DSCR triggers) ``triggers``, (with a ``contagion`` section) ``marks`` and,
    with holders, ``holders``, ``holder_types``, ``assets`` and ``system`` are tidy DataFrames with a
    ``scenario`` column; ``stats`` holds each scenario's merged statistics."""

    tranches: pd.DataFrame
    deals: pd.DataFrame
    manifest: dict
    stats: dict[str, RunStats] = field(repr=False)
    network: pd.DataFrame | None = None
    cascades: pd.DataFrame | None = None
    distributions: pd.DataFrame | None = None
    fans: pd.DataFrame | None = None
    triggers: pd.DataFrame | None = None
    marks: pd.DataFrame | None = None
    holders: pd.DataFrame | None = None
    holder_types: pd.DataFrame | None = None
    assets: pd.DataFrame | None = None
    system: pd.DataFrame | None = None
    run_dir: Path | None = None

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """Every summary table of the run, by file name."""
        out = {"tranches": self.tranches, "deals": self.deals}
        for name in OPTIONAL_TABLES:
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out

    @property
    def plot(self):
        """The report's figures, one method each: ``res.plot.exceedance()`` returns a matplotlib Figure."""
        from .report import PlotAccessor

        return PlotAccessor(self.tables)

    def write(self, out_dir: str | Path, overwrite: bool = False) -> Path:
        """Write ``manifest.json`` and ``summary/*.parquet`` under ``out_dir``."""
        self.run_dir = write_run(out_dir, self.tables, self.manifest, overwrite)
        return self.run_dir

    def paths(self, table: str = "tranches", *, scenario: str | None = None, columns: list[str] | None = None,
              filters=None) -> pd.DataFrame:
        """Path-level rows (``tranches``, ``deals``, and with a network ``firms`` and ``cascades``),
        read lazily from the run directory's ``paths/`` dataset; a run made with ``--paths-out``.

        ``filters`` is a ``pyarrow.dataset`` expression, e.g. ``pyarrow.dataset.field("deal") == "hyperion"``.
        """
        if self.run_dir is None:
            raise FileNotFoundError("these results were not written to a run directory; run with out=... and paths_out=True")
        return read_path_table(self.run_dir, table, scenario=scenario, columns=columns, filters=filters)


def open_run(run_dir: str | Path) -> Results:
    """Reload a finished run directory as Results (tables and manifest; no per-chunk statistics)."""
    run_dir = Path(run_dir)
    if not (run_dir / "manifest.json").is_file():
        raise FileNotFoundError(f"{run_dir} is not a finished run: it has no manifest.json")
    tables, manifest = read_run(run_dir)
    return Results(
        tranches=tables["tranches"], deals=tables["deals"], manifest=manifest, stats={}, run_dir=run_dir,
        **{name: tables.get(name) for name in OPTIONAL_TABLES},
    )


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("dcabs", "numpy", "numba", "pandas", "pyarrow", "pydantic", "scipy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "unknown"
    return out


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
    n_deals, n_tranches = len(plan.deal_names), plan.deals.tranche_balance.size
    no_trace = (np.empty((n_deals, 0, 0)), np.empty((0, 0)), np.empty((n_tranches, 0, 0)), np.empty(0, dtype=np.int32))
    explicit = draws.eps.shape[0] > 0
    if _threads["count"] == 1 or n <= TASK_PATHS:
        simulate_chunk(*plan.kernel_args, gp, start, draws, out, *no_trace)
        return out
    # The kernel releases the GIL; each task owns disjoint rows of `out`, and a path depends only on
    # its own index (or its own row of draws), so the split cannot change a bit.
    def task(ab):
        a, b = ab
        simulate_chunk(*plan.kernel_args, gp, start + a, _rows(draws, a, b) if explicit else draws, _rows(out, a, b), *no_trace)

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
    simulate_chunk(*plan.kernel_args, explicit_plan(T), 0, draws, out, ledger, sledger, tledger, tau)
    return Trace(ledger=ledger, step_ledger=sledger, tranche_ledger=tledger, tau=tau, outputs=out)


@dataclass
class _ScenarioRun:
    tables: dict[str, pd.DataFrame]
    stats: RunStats
    info: dict


def _scenario_run(job, batch, name: str) -> _ScenarioRun:
    """The tables and manifest entry of one job from the batch's merged statistics."""
    cfg, plan = job.cfg, job.plan
    n = cfg.run.paths
    compare = job.compares()
    stats = batch.stats[(name, True)]
    without = batch.stats[(name, False)] if compare else None
    t_sim = batch.seconds.get((name, True), 0.0)
    t_without = batch.seconds.get((name, False), 0.0)

    has_points = ~np.isnan(plan.deals.tranche_attach)
    tables = {"tranches": tranche_table(stats, plan.tranche_deal, plan.tranche_names, plan.deals.tranche_balance, has_points)}
    if without is not None:
        other = tranche_table(without, plan.tranche_deal, plan.tranche_names, plan.deals.tranche_balance, has_points)
        tables["tranches"]["el_without_network"] = other["el"].to_numpy()
        tables["tranches"]["el_se_without_network"] = other["el_se"].to_numpy()
    tables["deals"] = deal_table(stats, plan.deal_names, plan.pool.deal_pool_balance)
    tables["distributions"] = distribution_table(stats, plan.tranche_deal, plan.tranche_names, has_points)
    tables["fans"] = fan_table(stats)
    has_trigger = np.stack([plan.deals.deal_trap_dscr > 0, plan.deals.deal_rapid_dscr > 0], axis=1)
    if has_trigger.any():
        tables["triggers"] = trigger_table(stats, plan.deal_names, has_trigger)
    if plan.firm_names and plan.network.enabled:
        tables["network"] = network_table(stats, plan.firm_names)
        tables["cascades"] = cascade_table(stats)
    contagion_s = None
    if job.system is not None and stats.holders is not None:
        held = stats.holders
        contagion_s = held.nanoseconds / 1e9
        tables["marks"] = holders.marks_table(job.system, held, plan)
        if job.system.holder_names:
            tables["holders"] = holders.holders_table(job.system, held)
            tables["holder_types"] = holders.holder_types_table(job.system, held, tables["holders"])
            tables["assets"] = holders.assets_table(job.system, held)
            tables["system"] = holders.system_table(job.system, held, tables["holders"])
    info = {
        "config_sha256": cfg.digest(),
        "paths": n,
        "estimator": "importance_sampling" if job.importance is not None else "plain",
        "importance": None if job.importance is None else {**job.importance, **stats.weight_summary()},
        # null for a tenant with PD 0 (threshold −∞, which strict JSON cannot hold)
        "tenant_thresholds": {t: float(c) if np.isfinite(c) else None for t, c in zip(plan.tenant_names, plan.tenant_threshold)},
        "timings": {
            "compile_s": round(job.compile_s, 4),
            "simulate_s": round(t_sim, 4),
            "simulate_without_network_s": round(t_without, 4) if compare else None,
            "paths_per_s": round(n / t_sim, 1) if t_sim > 0 else None,
            # the contagion step inside simulate_s (summed over chunks), and the marks' pilot fit and nested check
            "contagion_s": round(contagion_s, 4) if contagion_s is not None else None,
            "marks_s": round(job.marks_s, 4) if job.system is not None else None,
            # the cross-entropy pilot that chose the sampling law
            "importance_s": round(job.importance_s, 4) if job.importance is not None else None,
        },
    }
    return _ScenarioRun(tables, stats, info)


def _one_path_if_deterministic(cfg: Config) -> Config:
    """A deterministic what-if has one path: every other path would repeat it."""
    return cfg.with_run(paths=1, chunk_paths=1) if cfg.deterministic is not None else cfg


def run(config: Config, *, scenario: str | None = None, paths: int | None = None, seed: int | None = None,
        chunk_paths: int | None = None, threads: int | None = None, progress: bool = False,
        out: str | Path | None = None, overwrite: bool = False, paths_out: bool = False, resume: bool = False,
        backend="inprocess", workers: int | None = None, scheduler: str | None = None, retries: int = 3) -> Results:
    """Run the Monte Carlo for a validated config and return its summary tables.

    ``scenario`` selects what runs: None (the config as written, labelled ``base``), a scenario
    name, a comma-separated list, or ``"all"`` (base and every scenario). Every selected scenario
    is merged and validated before any path is simulated; the tables carry a ``scenario`` column.
    Keyword arguments override the ``run`` section (validated like it). With ``out``, the run
    directory is written too, and each finished chunk is committed under ``out/chunks/`` so that
    ``resume=True`` continues an interrupted run (SIGINT/SIGTERM stop it after the chunk in
    progress, raising :class:`engine.resume.Interrupted`); ``paths_out`` (which needs ``out``) also
    writes every path's outputs as the Parquet dataset ``out/paths/``, chunk by chunk, read back
    with ``Results.paths``. ``backend="dask"`` runs the chunks as Dask tasks on a local cluster of
    ``workers`` processes or on the scheduler at ``scheduler``, each task retried ``retries`` times.
    Results are bit-identical whatever the backend, chunking or interruptions.
    """
    from .backends import Job, make_backend, run_batch
    from .resume import ChunkStore, Interrupted, run_identity, stop_on_signals
    from .scenarios import scenario_config, select

    t_start = time.perf_counter()
    if paths_out and out is None:
        raise ValueError("paths_out=True needs out=RUN_DIR: path-level tables are written as the run goes")
    if resume and out is None:
        raise ValueError("resume=True needs out=RUN_DIR: the committed chunks live there")
    if resume and overwrite:
        raise ValueError("resume and overwrite contradict each other: resume continues a run, overwrite starts it again")
    executor = make_backend(backend, workers, scheduler, retries)
    names = select(config, scenario)
    overrides = dict(paths=paths, seed=seed, chunk_paths=chunk_paths, threads=threads)
    cfgs = {name: _one_path_if_deterministic(scenario_config(config, name).with_run(**overrides)) for name in names}
    base = config.with_run(**overrides)
    n_threads = set_threads(base.run.threads)
    if out is None:
        jobs = {name: Job.prepare(cfg) for name, cfg in cfgs.items()}
        batch = run_batch(jobs, executor, progress=progress)
        return _results(jobs, batch, names, base, executor, n_threads, t_start)
    check_writable(out, overwrite, resume=resume)
    with claim(out, "run", overwrite, resume) as owned:
        store = ChunkStore(out, run_identity(base, names))
        try:
            if resume:
                store.check_resumable()
            elif store.has_chunks() and not overwrite:
                raise OutputExistsError(f"{out} holds the committed chunks of an interrupted run; pass --resume to "
                                        "continue it or --overwrite to start again")
            if not resume:
                # A path dataset never mixes in another run's files (store.begin discards old chunks).
                # An overwritten run's summaries, manifest and report go only once this run has
                # committed a chunk: a run that fails before that (a scheduler that cannot be reached)
                # leaves the earlier results readable.
                remove_written(out, ("paths",))
                if overwrite:
                    store.before_first_commit = lambda: remove_written(out, ("finished",))
            jobs = {name: Job.prepare(cfg, (Path(out), name) if paths_out else None) for name, cfg in cfgs.items()}
            store.begin(fresh=not resume)
            with stop_on_signals() as flag:
                batch = run_batch(jobs, executor, store=store, progress=progress, stop=flag)
            results = _results(jobs, batch, names, base, executor, n_threads, t_start)
            results.write(out, overwrite=overwrite)
        except BaseException as exc:
            # A run that failed before committing a chunk leaves nothing in a directory it made;
            # committed chunks (an interruption) are kept for --resume.
            if not isinstance(exc, Interrupted) and not store.has_chunks():
                if owned.fresh:
                    owned.discard()
                elif not resume:
                    remove_written(out, ("chunks",))  # the run.json of a run that never committed
            raise
        store.remove()  # the run directory is complete; its summaries hold everything the chunks did
    return results


def _results(jobs: dict, batch, names: list[str], base: Config, executor, n_threads: int, t_start: float) -> Results:
    """The tables and manifest of a finished batch."""
    parts = {name: _scenario_run(jobs[name], batch, name) for name in names}
    tables: dict[str, pd.DataFrame] = {}
    # Scenarios may differ in which tables they produce (a scenario can switch the network off).
    keys = list(dict.fromkeys(key for part in parts.values() for key in part.tables))
    for key in keys:
        frames = [part.tables[key].assign(scenario=name) for name, part in parts.items() if key in part.tables]
        frame = pd.concat(frames, ignore_index=True)
        tables[key] = frame[["scenario", *[c for c in frame.columns if c != "scenario"]]]
    first = parts[names[0]].info
    manifest = {
        "config": base.resolved(),
        "config_sha256": base.digest(),
        "seed": base.run.seed,
        "paths": base.run.paths,
        "months": base.run.months,
        "rng": RNG,
        "chunk_paths": base.run.chunk_paths,
        "threads": n_threads,
        "backend": executor.name,
        "workers": getattr(executor, "workers", None),
        "chunks_resumed": batch.chunks_resumed,
        "tenant_thresholds": first["tenant_thresholds"],
        "scenarios": {name: part.info for name, part in parts.items()},
        "versions": _versions(),
        "timings": {
            "compile_s": first["timings"]["compile_s"],
            # wall time of the batch: every scenario and pass, on whichever backend
            "simulate_s": round(batch.wall_s, 4),
            "simulate_without_network_s": first["timings"]["simulate_without_network_s"],
            "total_s": round(time.perf_counter() - t_start, 4),
            "paths_per_s": round(batch.paths_simulated / batch.wall_s, 1) if batch.paths_simulated and batch.wall_s > 0 else None,
        },
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    results = Results(
        tranches=tables["tranches"], deals=tables["deals"], manifest=manifest,
        stats={name: part.stats for name, part in parts.items()},
        **{name: tables.get(name) for name in OPTIONAL_TABLES},
    )
    return results
