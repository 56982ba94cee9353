"""`run`: scenarios → jobs → a batch → summary tables and the run directory; `Results` and `open_run`."""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from engine.analytics import holders
from engine.analytics.stats import (
    RunStats, cascade_table, deal_table, distribution_table, fan_table, network_table, tranche_table, trigger_table
)
from engine.config import Config, select
from engine.io.chunks import ChunkStore, Interrupted, run_identity
from engine.io.rundir import (
    SUMMARY_TABLES, OutputExistsError, check_writable, claim, read_path_table, read_run, remove_written, write_run
)
from engine.plan.rng import RNG
from engine.simulation.backends import make_backend
from engine.simulation.batch import run_batch
from engine.simulation.chunk import Job
from engine.simulation.execute import set_threads
from engine.simulation.signals import stop_on_signals

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
        from engine.report.accessor import PlotAccessor  # lazy: matplotlib only when a figure is drawn

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
    progress, raising :class:`engine.io.chunks.Interrupted`); ``paths_out`` (which needs ``out``) also
    writes every path's outputs as the Parquet dataset ``out/paths/``, chunk by chunk, read back
    with ``Results.paths``. ``backend="dask"`` runs the chunks as Dask tasks on a local cluster of
    ``workers`` processes or on the scheduler at ``scheduler``, each task retried ``retries`` times.
    Results are bit-identical whatever the backend, chunking or interruptions.
    """
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
    cfgs = {name: _one_path_if_deterministic(config.scenario(name).with_run(**overrides)) for name in names}
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
