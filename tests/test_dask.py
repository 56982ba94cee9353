"""The Dask backend: bit-identical to in-process, survives a worker killed mid-task, and stays an
optional import. Few and small: a cluster costs seconds to start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")

from builders import make_config, small, with_network  # noqa: E402
from engine import run, validate_config  # noqa: E402
from engine.simulation.backends import Dask, chunk_task  # noqa: E402
from engine.cli.main import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def kill_worker_once(marker: str, *args):
    """A chunk task whose first call, on whichever worker, kills that worker's process mid-task."""
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return chunk_task(*args)
    os._exit(1)


def fail_once(marker: str, *args):
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return chunk_task(*args)
    raise RuntimeError("a transient failure")


@pytest.fixture(scope="module")
def cluster():
    import cloudpickle

    # The test's task wrappers travel by value: workers need not import this module.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address="127.0.0.1:0") as c:
        yield c
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def network_config():
    """The network test config (with its without-network comparison pass) plus a scenario."""
    d = with_network()
    d["scenarios"] = {"stress": {"set": {"tenants.lab.pd": 0.2}}}
    # Holders too: every worker fits the marks on the same pilot paths, so their tables must match.
    d["contagion"] = {"horizon_month": 18, "pilot_paths": 1000, "nested_paths": 2, "nested_inner": 32}
    d["holders"] = [
        {"name": "hf", "type": "hedge_fund", "cash": 1e6, "debt": 15e6, "positions": {"d1.B": 12e6, "d1.E": 6e6}},
        {"name": "life", "type": "insurer", "cash": 1e6, "debt": 28e6, "positions": {"d1.A": 30e6}},
    ]
    return validate_config(d)


def test_dask_results_are_bit_identical_to_in_process(cluster, tmp_path):
    cfg = network_config()
    kw = dict(scenario="all", paths=5000, chunk_paths=1000)
    here = run(cfg, **kw)
    # A grace period far shorter than the run: workers that are there are seen as there.
    backend = Dask(scheduler=cluster.scheduler_address, no_workers_grace=0.5)
    there = run(cfg, backend=backend, out=tmp_path / "d", **kw)
    assert there.manifest["backend"] == "dask"
    for name in here.tables:
        pd.testing.assert_frame_equal(here.tables[name], there.tables[name], check_exact=True)


def test_a_worker_killed_mid_task_or_a_failing_task_still_gives_the_full_result(cluster, tmp_path):
    cfg = make_config()
    kw = dict(paths=6000, chunk_paths=1000)
    here = run(cfg, **kw)
    for task in (kill_worker_once, fail_once):
        marker = tmp_path / task.__name__
        there = run(cfg, backend=Dask(scheduler=cluster.scheduler_address, task=partial(task, str(marker))), **kw)
        assert marker.exists()  # the failure did happen
        pd.testing.assert_frame_equal(here.tranches, there.tranches, check_exact=True)
        pd.testing.assert_frame_equal(here.deals, there.deals, check_exact=True)
    with pytest.raises(RuntimeError, match="transient"):
        run(cfg, backend=Dask(scheduler=cluster.scheduler_address, retries=0,
                              task=partial(fail_once, str(tmp_path / "again"))), **kw)


def test_cli_local_cluster_of_two_workers(tmp_path, capsys):
    cfg = small(tmp_path)
    args = ["run", str(cfg), "--chunk-paths", "1000", "--no-report", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "local")]) == 0
    assert main([*args, "--out", str(tmp_path / "dask"), "--backend", "dask", "--workers", "2"]) == 0
    for table in ("tranches", "deals", "fans"):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "local" / "summary" / f"{table}.parquet"),
                                      pd.read_parquet(tmp_path / "dask" / "summary" / f"{table}.parquet"), check_exact=True)
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "x"), "--workers", "2"]) == 2
    assert "--workers and --scheduler need --backend dask" in capsys.readouterr().err


def test_importing_and_running_the_engine_does_not_import_dask():
    code = ("import sys; sys.path.insert(0, 'tests'); from builders import make_config; import engine;"
            "engine.run(make_config(), paths=100); engine.sweep(make_config(), {'tenants.lab.pd': [0.1]}, paths=100);"
            "assert not {'dask', 'distributed'} & set(sys.modules), 'dask was imported'")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_a_sweep_on_dask_equals_the_sweep_in_process(cluster):
    from engine import sweep

    dims = {"tenants.lab.pd": [0.03, 0.06], "deals.d1.tranches.A.attach": [0.3, 0.5]}
    here = sweep(make_config(), dims, paths=2000)
    with Dask(scheduler=cluster.scheduler_address) as backend:  # one client for both batches
        there = sweep(make_config(), dims, paths=2000, backend=backend)
        again = sweep(make_config(), dims, paths=2000, backend=backend)
    pd.testing.assert_frame_equal(here, there, check_exact=True)
    pd.testing.assert_frame_equal(here, again, check_exact=True)


def signal_client_after(path_start: int, client_pid: int, chunks: str, need: int, *args):
    """A chunk task that, when it computes chunk ``path_start``, first waits (at most 120 s) until
    ``need`` chunks are committed in the directory ``chunks``, then sends SIGTERM to the client."""
    if args[1].start == path_start:
        deadline = time.monotonic() + 120
        while len(list(Path(chunks).glob("*.npz"))) < need and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(client_pid, signal.SIGTERM)
    return chunk_task(*args)


def test_a_signal_stops_a_dask_run_and_it_resumes_in_process_to_the_same_bits(cluster, tmp_path, monkeypatch):
    from engine.simulation import backends
    from engine.io.chunks import CHUNKS_DIR, Interrupted

    cfg = make_config()
    kw = dict(paths=12000, chunk_paths=1000)
    whole = run(cfg, **kw)
    out = tmp_path / "run"
    committed_dir = out / CHUNKS_DIR / "base"
    # The signal comes while chunk 6000 is computed, once at least 3 other chunks are committed:
    # the resume below then has work both to skip and to do.
    with pytest.raises(Interrupted) as exc:
        run(cfg, out=out, backend=Dask(scheduler=cluster.scheduler_address,
                                       task=partial(signal_client_after, 6000, os.getpid(), str(committed_dir), 3)), **kw)
    # Chunks that completed before the signal was seen are committed; those in flight are discarded.
    assert 3 <= exc.value.committed < 12
    committed = {int(f.name.split(".")[0]) for f in committed_dir.glob("*.npz")}
    assert len(committed) == exc.value.committed
    # The resumed run simulates exactly the chunks that were not committed, and loads the others.
    simulated = []
    compute = backends.compute
    monkeypatch.setattr(backends, "compute", lambda job, chunk, *a: simulated.append(chunk.start) or compute(job, chunk, *a))
    resumed = run(cfg, out=out, resume=True, **kw)
    assert sorted(simulated) == sorted(set(range(0, 12000, 1000)) - committed)
    assert resumed.manifest["chunks_resumed"] == exc.value.committed
    pd.testing.assert_frame_equal(whole.tranches, resumed.tranches, check_exact=True)
    pd.testing.assert_frame_equal(whole.deals, resumed.deals, check_exact=True)


def test_an_importance_sampled_run_on_dask_is_bit_identical_to_in_process(cluster):
    """Workers get the config with the sampling law the pilot chose, and weighted statistics merge
    exactly: tranche, deal, network and holder tables equal to the last bit."""
    d = network_config().resolved()
    d["importance"] = {"target": "d1.A", "pilot_paths": 512, "pilot_rounds": 3}
    cfg = validate_config(d)
    kw = dict(paths=3000, chunk_paths=1000)
    here = run(cfg, **kw)
    there = run(cfg, backend=Dask(scheduler=cluster.scheduler_address), **kw)
    assert here.manifest["scenarios"]["base"]["estimator"] == "importance_sampling"
    for name in here.tables:
        pd.testing.assert_frame_equal(here.tables[name], there.tables[name], check_exact=True)
