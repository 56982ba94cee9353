"""The Dask backend ends in bounded time whatever the cluster does: a task that kills its workers,
a cluster with no workers and an unreachable scheduler raise BackendError; Ctrl-C stops a run at
once, even while it waits for the merged result, and closes the local cluster; a local cluster
listens on loopback only, dashboard included, and its workers leave Ctrl-C to the client.

Each test runs under a SIGALRM guard: a hang fails the test instead of the suite."""

from __future__ import annotations

import os
import signal
import sys
import time
from contextlib import contextmanager
from functools import partial

import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")

from builders import make_config, small  # noqa: E402
from engine import run  # noqa: E402
from engine.simulation import backends
from engine.simulation.backends import BackendError, Dask, make_backend  # noqa: E402
from engine.cli.main import main  # noqa: E402

HANG_S = 120  # far beyond what any of these takes when it works: reaching it means a hang


class Hung(Exception):
    pass


@contextmanager
def guard(seconds: int = HANG_S):
    def hung(signum, frame):
        raise Hung(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module", autouse=True)
def by_value():
    import cloudpickle

    # The test's task wrappers travel by value: workers need not import this module.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def die(*args):
    os._exit(1)


def interrupt_then_sleep(client_pid: int, pid_file: str, *args):
    """A chunk task that records its worker's pid, sends the client SIGINT, then takes its time."""
    with open(pid_file, "w") as f:
        f.write(str(os.getpid()))
    os.kill(client_pid, signal.SIGINT)
    time.sleep(30)


def slow_merge(client_pid: int, a, b):
    """A merge that sends the client SIGINT once every chunk is long committed, then takes its time."""
    time.sleep(1)
    os.kill(client_pid, signal.SIGINT)
    time.sleep(8)
    return a.merge(b)


@pytest.mark.parametrize("kw", [dict(connect_timeout=0), dict(no_workers_grace=0), dict(no_workers_grace=-1)])
def test_bad_timeouts_are_refused(kw):
    with pytest.raises(BackendError, match="must be positive"):
        Dask(workers=1, **kw)


def test_a_task_that_kills_every_worker_that_runs_it_raises_backend_error():
    import dask

    # Dask gives up on a task after allowed-failures + 1 worker deaths; 0 makes the first one final.
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), guard():
        with pytest.raises(BackendError, match=r"chunk base \[\d+, \d+\): every Dask worker that ran it died"):
            run(make_config(), paths=2000, chunk_paths=1000, backend=Dask(workers=1, task=die))


def test_a_cluster_without_workers_raises_backend_error_after_the_grace_period():
    with distributed.LocalCluster(n_workers=0, processes=True, dashboard_address=None) as cluster, guard():
        with pytest.raises(BackendError, match="has had no workers for 1 s"):
            run(make_config(), paths=2000, chunk_paths=1000,
                backend=Dask(scheduler=cluster.scheduler_address, no_workers_grace=1))


def test_an_unreachable_scheduler_raises_backend_error(tmp_path, capsys):
    with guard():
        backend = Dask(scheduler="tcp://127.0.0.1:1", connect_timeout=1)
        with pytest.raises(BackendError, match="cannot connect to the Dask scheduler at tcp://127.0.0.1:1 within 1 s"):
            with backend:
                pass
        with pytest.raises(BackendError, match="cannot connect"):
            run(make_config(), paths=1000, backend=backend)
        args = ["run", str(small(tmp_path)), "--no-report", "--no-progress", "--out", str(tmp_path / "out"),
                "--backend", "dask", "--scheduler", "tcp://127.0.0.1:1"]
        assert main(args) == 2  # a user error, not a traceback
    assert "cannot connect to the Dask scheduler at tcp://127.0.0.1:1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # it used to leave chunks/run.json behind


def sigint_handler():
    return signal.getsignal(signal.SIGINT)


def test_a_local_cluster_listens_on_loopback_only_and_leaves_ctrl_c_to_the_client():
    from distributed.comm.utils import get_tcp_server_addresses

    assert make_backend("dask", workers=1).dashboard_address == "127.0.0.1:0"
    for address in ("127.0.0.1:0", None):
        with guard(), Dask(workers=1, dashboard_address=address) as backend:
            client, cluster = backend._open
            assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
            hosts = {host for host, *_ in get_tcp_server_addresses(cluster.scheduler.http_server)}
            assert hosts == {"127.0.0.1"}, (address, hosts)
            if address is not None:
                assert client.dashboard_link.startswith("http://127.0.0.1:")
            # A terminal's Ctrl-C reaches the workers too; they ignore it and the client stops the run.
            assert set(client.run(sigint_handler).values()) == {signal.SIG_IGN}


def test_ctrl_c_while_the_merges_run_stops_at_once_and_the_run_resumes(tmp_path, monkeypatch):
    """The first SIGINT only asks the run to stop; it must be honoured while the client waits for
    the merged result too, not just between chunks. Every chunk is committed by then."""
    from engine.io.chunks import CHUNKS_DIR, Interrupted

    cfg = make_config()
    kw = dict(paths=2000, chunk_paths=1000)
    whole = run(cfg, **kw)
    monkeypatch.setattr(backends, "merge_pair", partial(slow_merge, os.getpid()))
    out = tmp_path / "run"
    with guard(), pytest.raises(Interrupted) as exc:
        run(cfg, out=out, backend=Dask(workers=1), **kw)
    assert exc.value.committed == 2
    assert len(list((out / CHUNKS_DIR / "base").glob("*.npz"))) == 2
    monkeypatch.undo()
    resumed = run(cfg, out=out, resume=True, **kw)
    assert resumed.manifest["chunks_resumed"] == 2
    pd.testing.assert_frame_equal(whole.tranches, resumed.tranches, check_exact=True)


def test_ctrl_c_without_a_run_directory_raises_keyboard_interrupt_and_closes_the_cluster(tmp_path):
    pid_file = tmp_path / "worker.pid"
    task = partial(interrupt_then_sleep, os.getpid(), str(pid_file))
    with guard(), pytest.raises(KeyboardInterrupt):
        run(make_config(), paths=1000, backend=Dask(workers=1, task=task))
    worker = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):  # the cluster was closed on the way out, its worker with it
        os.kill(worker, 0)
