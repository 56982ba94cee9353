"""Where chunks run: in this process (the kernel's worker threads) or as Dask tasks.

A batch is a set of jobs (one per scenario, or per sweep point and scenario) cut into chunks.
A backend computes each chunk's :class:`RunStats`, calls ``done(chunk, stats, seconds)`` as each
one finishes (the run loop commits it, moves the progress bar and may stop the batch by raising),
and returns the merged statistics of each (job, pass). Because the merge is exact, the order in
which chunks finish and the shape of the reduction tree never change a bit of the result.

Dask is imported only when the Dask backend runs, so the engine itself never needs it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import os
import signal
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable

from engine.analytics.stats import RunStats
from engine.config import Config
from engine.simulation.chunk import Chunk, Job, compute
from engine.simulation.execute import available_threads, set_threads

log = logging.getLogger(__name__)

BACKENDS = ("inprocess", "dask")


class BackendError(ValueError):
    """A backend that cannot be used as asked (a user error: exit code 2)."""


Done = Callable[[Chunk, "RunStats | None", "float | None"], None]


class InProcess:
    """Chunks one after the other in this process; each chunk runs on the kernel's worker threads."""

    name = "inprocess"

    def __enter__(self) -> InProcess:
        return self

    def __exit__(self, *exc) -> None:
        pass

    def execute(self, jobs: dict[str, Job], chunks: list[Chunk], done: Done, need_stats: bool = True,
                check: Callable[[], None] = lambda: None) -> dict:
        merged: dict[tuple[str, bool], RunStats] = {}
        # One draw source per job, made once.
        sources = {name: job.source() for name, job in jobs.items()}
        for chunk in chunks:
            t0 = time.perf_counter()
            stats = compute(jobs[chunk.job], chunk, sources[chunk.job])
            key = (chunk.job, chunk.network)
            merged[key] = merged.get(key, RunStats()).merge(stats)
            done(chunk, stats, time.perf_counter() - t0)
        return merged


# --------------------------------------------------------------------------- Dask

# Worker-process state: compiled jobs by config hash, and one chunk at a time (the chunk already
# spreads over the worker's kernel threads; the thread count is process state).
_WORKER_JOBS: dict[str, Job] = {}
_WORKER_JOBS_KEPT = 32
_KERNEL_LOCK = threading.Lock()


def chunk_task(cfg: Config, chunk: Chunk, paths_to: tuple[Path, str] | None, threads: int) -> RunStats:
    """A Dask task: one chunk's statistics, computed in a worker process."""
    key = cfg.digest()
    job = _WORKER_JOBS.get(key)
    if job is None:
        if len(_WORKER_JOBS) >= _WORKER_JOBS_KEPT:  # a long-lived worker serves many sweeps and runs
            _WORKER_JOBS.pop(next(iter(_WORKER_JOBS)))
        job = _WORKER_JOBS[key] = Job.prepare(cfg, warm=False)
    job = dataclasses.replace(job, paths_to=paths_to)
    with _KERNEL_LOCK:
        set_threads(min(threads, available_threads()) if threads > 0 else 0)
        return compute(job, chunk)


def dask_setup(worker) -> None:
    """Dask preload hook, run as each local worker process starts (``preload=[__name__]``).

    A terminal's Ctrl-C reaches every process of its group, local workers included: ignored there,
    it neither kills a worker mid-chunk nor prints its traceback; the client alone decides to stop,
    and closing the cluster ends the workers."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def merge_pair(a: RunStats, b: RunStats) -> RunStats:
    return a.merge(b)


def _tree_reduce(client, futures: list, retries: int):
    level = list(futures)
    while len(level) > 1:
        # Merges outrank chunks, so partial results are folded as soon as they exist and
        # workers hold a few RunStats at a time, not one per chunk.
        pairs = [client.submit(merge_pair, level[i], level[i + 1], retries=retries, pure=False, priority=10)
                 for i in range(0, len(level) - 1, 2)]
        level = pairs + level[len(level) - len(level) % 2:]
    return level[0]


# How often a wait on the cluster wakes up to honour a stop request (the signal handler only sets
# a flag, so a wait that never returns would ignore the first Ctrl-C) and to look at the cluster.
_POLL_S = 0.05


class _Watch:
    """Fails the run once the cluster has had no worker for longer than ``grace`` seconds.

    The worker count is asked for without blocking: a query is sent to the scheduler and its
    answer read at a later poll, so an unresponsive scheduler cannot stall the wait loop (one
    that leaves a query unanswered for the grace period fails the run too). Only answers count:
    a caller that polls late (busy committing a chunk) is not mistaken for a cluster without workers."""

    def __init__(self, client, grace: float | None, where: str):
        self.client, self.grace, self.where = client, grace, where
        self.every = min(1.0, grace / 4) if grace is not None else 0.0  # a few queries per grace period
        self.empty_since: float | None = None  # since when the answers have said "no workers"
        self.query: concurrent.futures.Future | None = None
        self.asked = 0.0
        self.next = 0.0

    def poll(self) -> None:
        if self.grace is None:
            return
        now = time.monotonic()
        if self.query is not None and self.query.done():
            query, self.query = self.query, None
            try:
                workers = len(query.result())
            except Exception:  # a scheduler that cannot answer has no worker to offer either
                workers = 0
            if workers:
                self.empty_since = None
            elif self.empty_since is None:
                self.empty_since = self.asked
                log.warning("dask backend: %s has no workers; the run fails if none joins within %g s",
                            self.where, self.grace)
        if self.empty_since is not None and now - self.empty_since > self.grace:
            raise BackendError(f"{self.where} has had no workers for {self.grace:g} s "
                               "(were they killed, or did they never start?)")
        if self.query is not None and now - self.asked > self.grace:
            raise BackendError(f"{self.where} has not answered for {self.grace:g} s")
        if self.query is None and now >= self.next:
            self.asked, self.next = now, now + self.every
            self.query = _in_loop(self.client, self.client.nthreads(asynchronous=True))

    def close(self) -> None:
        if self.query is not None:
            self.query.cancel()


def _in_loop(client, coro) -> concurrent.futures.Future:
    """Run ``coro`` on the client's event loop; the caller waits on the result in slices."""
    return asyncio.run_coroutine_threadsafe(coro, client.loop.asyncio_loop)


class Dask:
    """Chunks as Dask tasks on a local cluster of ``workers`` processes or on the scheduler at
    ``scheduler``. Each (job, pass) is merged on the cluster as a binary tree of ``merge_pair``
    tasks; a chunk or merge that raises is retried (``retries``), and one whose worker dies is
    rescheduled by Dask (``distributed.scheduler.allowed-failures`` times, 3 by default).

    The run fails with :class:`BackendError` when the scheduler cannot be reached within
    ``connect_timeout`` seconds or is lost, when a task keeps killing its workers, and when the
    cluster has had no worker for ``no_workers_grace`` seconds (None waits for workers forever).
    Waits are polled, so a stop request (the run loop's ``check``) or a Ctrl-C is honoured at
    once. The local cluster's dashboard listens on ``dashboard_address``: loopback only by
    default; None switches the dashboard off."""

    name = "dask"

    def __init__(self, workers: int | None = None, scheduler: str | None = None, retries: int = 3,
                 threads: int = 0, task: Callable = chunk_task, dashboard_address: str | None = "127.0.0.1:0",
                 connect_timeout: float = 5.0, no_workers_grace: float | None = 60.0):
        if (workers is None) == (scheduler is None):
            raise BackendError("the Dask backend needs exactly one of workers=N (a local cluster) and scheduler=ADDRESS")
        if workers is not None and workers < 1:
            raise BackendError(f"workers must be at least 1, got {workers}")
        if retries < 0:
            raise BackendError(f"retries must be at least 0, got {retries}")
        if connect_timeout <= 0:
            raise BackendError(f"connect_timeout must be positive, got {connect_timeout}")
        if no_workers_grace is not None and no_workers_grace <= 0:
            raise BackendError(f"no_workers_grace must be positive (or None), got {no_workers_grace}")
        self.workers, self.scheduler, self.retries, self.task = workers, scheduler, retries, task
        self.dashboard_address = dashboard_address
        self.connect_timeout, self.no_workers_grace = connect_timeout, no_workers_grace
        self._open: tuple | None = None
        # Local workers share this machine's cores; kernel threads per worker are split to match.
        self.threads = threads or (max(1, (os.cpu_count() or 1) // workers) if workers else 0)

    def _client(self):
        try:
            from distributed import Client, LocalCluster  # lazy: Dask only when its backend runs
        except ImportError:
            raise BackendError("the Dask backend needs the dask extra: pip install 'dcabs[dask]'") from None
        if self.scheduler is not None:
            log.info("dask backend: connecting to the scheduler at %s", self.scheduler)
            try:
                # The client's timeout also bounds how long it tries to reconnect to a lost scheduler.
                return Client(self.scheduler, timeout=self.connect_timeout), None
            except Exception as exc:  # refused, timed out, unresolvable host or malformed address
                raise BackendError(f"cannot connect to the Dask scheduler at {self.scheduler} "
                                   f"within {self.connect_timeout:g} s: {exc}") from None
        quiet = not logging.getLogger("engine").isEnabledFor(logging.INFO)
        if self.dashboard_address is not None:
            dashboard = dict(dashboard_address=self.dashboard_address)
        else:
            # Without a dashboard the scheduler still serves its small HTTP API (health, metrics), on
            # port 8787 of its own host unless told otherwise: keep it on an ephemeral loopback port.
            dashboard = dict(dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
        # Worker processes inherit this environment, NUMBA_CACHE_DIR included, so they load the
        # kernels from numba's cache instead of compiling them again.
        try:
            cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True, preload=[__name__],
                                   silence_logs=logging.ERROR if quiet else logging.WARNING, **dashboard)
        except Exception as exc:  # a worker that dies while starting, a dashboard address that cannot be bound
            raise BackendError(f"cannot start a local Dask cluster of {self.workers} worker processes: {exc}") from exc
        log.info("dask backend: local cluster of %d worker processes at %s (%d kernel threads each)%s",
                 self.workers, cluster.scheduler_address, self.threads,
                 f", dashboard {cluster.dashboard_link}" if self.dashboard_address is not None else "")
        try:
            return Client(cluster), cluster
        except BaseException:
            cluster.close()
            raise

    def __enter__(self) -> Dask:
        """Keep one cluster and client for several batches (a bisection runs one batch per step)."""
        self._open = self._client()
        return self

    def __exit__(self, *exc) -> None:
        opened, self._open = self._open, None
        if opened is not None:
            self._close(*opened)

    @staticmethod
    def _close(client, cluster) -> None:
        try:
            client.close()
        finally:
            if cluster is not None:
                cluster.close()

    def _failure(self, fut, what: str) -> BackendError | None:
        """The error for a future that failed because of the cluster, not of its task; else None."""
        from distributed import KilledWorker  # lazy: Dask only when its backend runs

        if fut.status == "cancelled":
            # The client cancels every future when it loses the scheduler; nothing else here cancels one.
            return BackendError(f"{what}: the connection to {self._where()} was lost (or the task was cancelled)")
        if fut.status == "error":
            exc = fut.exception(timeout=self.connect_timeout)
            if isinstance(exc, KilledWorker):
                return BackendError(f"{what}: every Dask worker that ran it died (out of memory, or killed?): {exc}")
        return None

    def _where(self) -> str:
        return f"the Dask scheduler at {self.scheduler}" if self.scheduler is not None else "the local Dask cluster"

    def _raise_if_failed(self, fut, what: str) -> None:
        """A task that killed its workers or was lost with the scheduler raises BackendError; a
        task's own error (its retries exhausted) is raised as it is, as in-process."""
        failed = self._failure(fut, what)
        if failed is not None:
            raise failed
        if fut.status == "error":
            fut.result(timeout=self.connect_timeout)  # raises the task's exception, with its traceback

    def _wait(self, futs: list, labels: dict, check: Callable[[], None], watch: _Watch) -> None:
        """Return once every future has finished, polling: a blocking wait would miss a stop
        request (the signal handler only sets a flag: the first Ctrl-C) and a cluster that lost
        its workers."""
        while True:
            for fut in futs:
                self._raise_if_failed(fut, labels[fut])
            if all(fut.status == "finished" for fut in futs):
                return
            check()
            watch.poll()
            time.sleep(_POLL_S)

    def _gather(self, client, futs: list, labels: dict, check: Callable[[], None], watch: _Watch) -> list:
        """The results of finished futures, gathered on the event loop while this thread polls:
        data lost with its worker is recomputed first, on workers that may never come."""
        gathering = _in_loop(client, client.gather(futs, asynchronous=True))
        try:
            while not concurrent.futures.wait([gathering], timeout=_POLL_S).done:
                check()
                watch.poll()
            try:
                return gathering.result()
            except (Exception, asyncio.CancelledError):
                # A future cancelled under the gather cancels the gather itself, message and all.
                for fut in futs:
                    self._raise_if_failed(fut, labels[fut])
                raise
        finally:
            gathering.cancel()

    def execute(self, jobs: dict[str, Job], chunks: list[Chunk], done: Done, need_stats: bool = True,
                check: Callable[[], None] = lambda: None) -> dict:
        from distributed import as_completed  # lazy: Dask only when its backend runs

        client, cluster = self._open or self._client()
        futures: dict = {}
        finals: dict = {}
        watch = _Watch(client, self.no_workers_grace, self._where())
        labels: dict = {}  # what each future computes, for error messages
        try:
            groups = defaultdict(list)
            for chunk in chunks:
                job = jobs[chunk.job]
                fut = client.submit(self.task, job.cfg, chunk, job.paths_to if chunk.network else None, self.threads,
                                    retries=self.retries, pure=False)
                futures[fut] = chunk
                part = "" if chunk.network else " without network"
                labels[fut] = f"chunk {chunk.job} [{chunk.start}, {chunk.stop}){part}"
                groups[(chunk.job, chunk.network)].append(fut)
            finals = {key: _tree_reduce(client, futs, self.retries) for key, futs in groups.items()}
            for (job_name, network), fut in finals.items():
                labels.setdefault(fut, f"merging the statistics of {job_name}{'' if network else ' without network'}")
            del groups
            pending = as_completed(list(futures))
            while not pending.is_empty():
                ready = pending.next_batch(block=False)
                if not ready:
                    # Polled rather than blocking, so a stop request is honoured even while no
                    # chunk completes (say the cluster lost its workers).
                    check()
                    watch.poll()
                    time.sleep(_POLL_S)
                    continue
                for fut in ready:
                    self._raise_if_failed(fut, labels[fut])
                stats = self._gather(client, ready, labels, check, watch) if need_stats else [None] * len(ready)
                for fut, st in zip(ready, stats):
                    done(futures.pop(fut), st, None)
            del pending
            keys = list(finals)
            self._wait([finals[k] for k in keys], labels, check, watch)
            return dict(zip(keys, self._gather(client, [finals[k] for k in keys], labels, check, watch)))
        except BaseException:
            # Dropping the futures releases their tasks: the scheduler forgets work no client wants.
            # (An explicit client.cancel of a tree whose inner merges were already released trips
            # an assertion in the scheduler.) Chunks in flight are discarded, never committed.
            futures.clear()
            finals.clear()
            labels.clear()
            raise
        finally:
            watch.close()
            if self._open is None:
                self._close(client, cluster)


def make_backend(backend, workers: int | None = None, scheduler: str | None = None, retries: int = 3):
    """A backend object from its name (``inprocess`` or ``dask``), or ``backend`` itself if it is one."""
    if not isinstance(backend, str):
        return backend
    if backend == "inprocess":
        if workers is not None or scheduler is not None:
            raise BackendError("--workers and --scheduler need --backend dask")
        return InProcess()
    if backend == "dask":
        return Dask(workers=workers if workers is not None or scheduler is not None else os.cpu_count() or 1,
                    scheduler=scheduler, retries=retries)
    raise BackendError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
