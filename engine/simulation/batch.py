"""A batch of jobs run on a backend: chunks committed as they finish, progress, resumption and clean stops."""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from dataclasses import dataclass

from tqdm import tqdm

from engine.analytics.stats import RunStats
from engine.io.chunks import Interrupted
from engine.simulation.backends import log
from engine.simulation.chunk import Chunk, Job

# --------------------------------------------------------------------------- a batch


@dataclass
class BatchResult:
    """Merged statistics per (job, network pass), and what it took."""

    stats: dict[tuple[str, bool], RunStats]
    seconds: dict[tuple[str, bool], float]
    wall_s: float
    paths_simulated: int
    chunks_resumed: int


def run_batch(jobs: dict[str, Job], executor, *, store=None, progress: bool = False, stop=None) -> BatchResult:
    """Every chunk of every job, on ``executor``, under one progress bar.

    With a ``store`` (a :class:`engine.io.chunks.ChunkStore`), chunks it already holds are loaded
    instead of simulated and each new chunk is committed as it finishes. When ``stop`` becomes
    true (a signal arrived), :class:`engine.io.chunks.Interrupted` is raised after the next commit.
    """
    chunks = [c for name, job in jobs.items() for c in job.chunks(name)]
    merged: dict[tuple[str, bool], RunStats] = {}
    todo: list[Chunk] = []
    for chunk in chunks:
        stats = store.load(chunk.job, chunk.start, chunk.stop, chunk.network) if store is not None else None
        if stats is None:
            todo.append(chunk)
        else:
            key = (chunk.job, chunk.network)
            merged[key] = merged.get(key, RunStats()).merge(stats)
    resumed_paths = sum(c.stop - c.start for c in chunks) - sum(c.stop - c.start for c in todo)
    if resumed_paths:
        log.info("resume: %d of %d chunks already committed", len(chunks) - len(todo), len(chunks))
    log.info("%s backend: %d chunks of %d job(s) to simulate", executor.name, len(todo), len(jobs))
    seconds: dict[tuple[str, bool], float] = defaultdict(float)
    committed = len(chunks) - len(todo)
    t0 = time.perf_counter()
    bar = tqdm(total=sum(c.stop - c.start for c in chunks), initial=resumed_paths, unit="path", unit_scale=True,
               disable=not progress, file=sys.stderr, desc="simulating")

    def done(chunk: Chunk, stats: RunStats | None, secs: float | None) -> None:
        nonlocal committed
        if store is not None:
            store.commit(chunk.job, chunk.start, chunk.stop, chunk.network, stats)
        committed += 1
        key = (chunk.job, chunk.network)
        # Dask reports no per-chunk time: a job's time is then the wall time until its last chunk.
        seconds[key] = seconds[key] + secs if secs is not None else time.perf_counter() - t0
        bar.set_postfix_str(chunk.job, refresh=False)
        bar.update(chunk.stop - chunk.start)
        check()

    def check() -> None:
        if stop:
            raise Interrupted(stop.signum, committed, len(chunks), store.run_dir if store is not None else None)

    with bar:
        fresh = executor.execute(jobs, todo, done, need_stats=store is not None, check=check) if todo else {}
    for key, stats in fresh.items():
        merged[key] = merged.get(key, RunStats()).merge(stats)
    return BatchResult(merged, dict(seconds), time.perf_counter() - t0, sum(c.stop - c.start for c in todo),
                       len(chunks) - len(todo))
