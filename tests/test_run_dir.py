"""The run directory is dcabs' own: it never writes into a directory it did not make, removes only
the files it wrote, lets one process write at a time, leaves nothing behind a run that failed
before committing anything, and writes files with the user's umask."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from builders import make_config, small
from engine import run
from engine.simulation import backends
from engine.cli.main import main
from engine.io.rundir import MARKER, OutputExistsError, check_writable, claim, remove_written
from engine.io.chunks import CHUNKS_DIR, Interrupted, ResumeError

ROOT = Path(__file__).resolve().parents[1]
KW = dict(paths=2000, chunk_paths=1000)


def tree(d: Path) -> dict[str, bytes]:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_a_non_empty_directory_dcabs_did_not_make_is_refused_and_untouched(tmp_path):
    d = tmp_path / "mine"
    (d / "chunks").mkdir(parents=True)
    (d / "chunks" / "thesis.tex").write_text("years of work")
    (d / "summary").mkdir()
    (d / "summary" / "data.parquet").write_bytes(b"PAR1")
    before = tree(d)
    with pytest.raises(OutputExistsError, match="dcabs did not make it"):
        run(make_config(), out=d, overwrite=True, paths_out=True, **KW)
    assert tree(d) == before and not (d / MARKER).exists()


def test_out_dot_in_a_non_empty_working_directory_exits_2_and_writes_nothing(tmp_path, monkeypatch, capsys):
    cfg = small(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = tree(tmp_path)
    assert main(["run", str(cfg), "--out", ".", "--overwrite", "--no-report", "--no-progress"]) == 2
    assert "dcabs did not make it" in capsys.readouterr().err
    assert tree(tmp_path) == before


def test_overwrite_replaces_only_what_dcabs_wrote(tmp_path):
    cfg = make_config()
    d = tmp_path / "run"
    run(cfg, out=d, paths_out=True, **KW)
    user = {"notes.txt": b"mine", "summary/my_table.parquet": b"x", "summary/tranches.parquet.bak": b"x",
            "figures/my_plot.png": b"x", "paths/tranches/mine.parquet": b"x", "paths/mine/scenario=base/chunk=000000000000.parquet": b"x",
            "chunks/base/123.npz": b"x", "chunks/keep.json": b"x", ".hidden": b"x"}
    for rel, data in user.items():
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_bytes(data)
    old = tree(d)
    res = run(cfg.with_run(seed=12), out=d, overwrite=True, **KW)  # no --paths-out: the old dataset goes
    after = tree(d)
    assert {k: after[k] for k in user} == user
    assert not any(k.startswith("paths/tranches/scenario=") for k in after)
    assert after["summary/tranches.parquet"] != old["summary/tranches.parquet"]
    assert res.manifest["seed"] == 12
    assert set(after) == set(user) | {MARKER, "manifest.json", *(f"summary/{t}.parquet" for t in res.tables)}


def test_a_run_directory_from_before_markers_is_still_dcabs(tmp_path):
    d = tmp_path / "old"
    run(make_config(), out=d, **KW)
    (d / MARKER).unlink()
    with pytest.raises(OutputExistsError, match="already holds a finished run"):
        run(make_config(), out=d, **KW)
    run(make_config(), out=d, overwrite=True, **KW)
    assert (d / MARKER).read_text().strip() == '{"dcabs": "run"}'


def test_a_sweep_directory_is_not_a_run_directory(tmp_path):
    d = tmp_path / "s"
    with claim(d, "sweep"):
        pass
    (d / "sweep.csv").write_text("x")
    with pytest.raises(OutputExistsError, match="holds a dcabs sweep, not a run"):
        check_writable(d, overwrite=True)


def test_a_second_process_writing_the_same_directory_is_refused(tmp_path):
    d = tmp_path / "busy"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from engine.io.rundir import claim\n"
         f"with claim({str(d)!r}):\n    print('held', flush=True); sys.stdin.read()"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputExistsError, match="another dcabs process"):
            run(make_config(), out=d, **KW)
        assert sorted(p.name for p in d.iterdir()) == [MARKER]
    finally:
        holder.communicate("")
    run(make_config(), out=d, **KW)  # released when the holder exits
    assert (d / "manifest.json").is_file()


def test_a_run_that_fails_before_committing_leaves_nothing(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("worker lost")

    monkeypatch.setattr(backends, "compute", boom)
    new = tmp_path / "new"
    with pytest.raises(RuntimeError):
        run(make_config(), out=new, paths_out=True, **KW)
    assert not new.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RuntimeError):
        run(make_config(), out=empty, **KW)
    assert empty.is_dir() and not any(empty.iterdir())


def test_resume_with_nothing_to_resume_is_refused(tmp_path, capsys):
    with pytest.raises(ResumeError, match="nothing to resume"):
        run(make_config(), out=tmp_path / "never", resume=True, **KW)
    assert not (tmp_path / "never").exists()
    d = tmp_path / "done"
    run(make_config(), out=d, **KW)
    with pytest.raises(OutputExistsError, match="finished run: there is nothing to resume"):
        run(make_config(), out=d, resume=True, **KW)


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_outputs_follow_the_umask(tmp_path, monkeypatch, mask):
    old = os.umask(mask)
    try:
        d = tmp_path / "run"
        calls = []
        real = backends.compute

        def compute_then_stop(job, chunk, source=None):
            calls.append(chunk)
            if len(calls) == 1:
                os.kill(os.getpid(), signal.SIGTERM)
            return real(job, chunk, source)

        monkeypatch.setattr(backends, "compute", compute_then_stop)
        with pytest.raises(Interrupted):
            run(make_config(), out=d, **KW)
        chunk = next((d / CHUNKS_DIR).rglob("*.npz"))
        monkeypatch.undo()
        modes = {"chunk": chunk.stat().st_mode}
        run(make_config(), out=d, resume=True, **KW)
        from engine.report.html import build_report

        build_report(d)
        for name in ("manifest.json", "summary/tranches.parquet", "report.html", MARKER, "figures/exceedance.png"):
            modes[name] = (d / name).stat().st_mode
    finally:
        os.umask(old)
    assert {k: stat.S_IMODE(m) for k, m in modes.items()} == {k: 0o666 & ~mask for k in modes}


# --------------------------------------------------------------------------- remove_written against a list

# Written out by hand from docs/outputs.md, not derived from the patterns in engine/io/rundir.py.
OURS = ["manifest.json", "report.html", "sweep.csv", "sweep.parquet", "summary/tranches.parquet", "summary/holder_types.parquet",
        "summary/system.parquet", "figures/exceedance.png", "paths/tranches/scenario=base/chunk=000000001000.parquet",
        "paths/firms/scenario=burst 2027/chunk=000000000000.parquet", "chunks/run.json", "chunks/base/000000000000.npz",
        "chunks/rates up/000000002000.without_network.npz", "summary/.tranches.parquet.k2j3ab_9.tmp", ".manifest.json.x1yz2w3q.tmp",
        "chunks/base/.000000000000.npz.ab12cd34.tmp"]
NEAR_MISSES = ["manifest.json.bak", "Report.html", "summary/tranches.parquet.old", "summary/mine.parquet", "summary/tranches.csv",
               "figures/mine.png", "figures/exceedance.svg", "paths/tranches/mine.parquet", "paths/tranches/scenario=base/chunk=1.parquet",
               "paths/tranches/scenario=base/notes.txt", "chunks/base/1000.npz", "chunks/base/000000000000.npz.bak",
               "chunks/run.json.orig", "chunks/notes.md", "data/manifest.json", "notes.txt", "summary/sub/tranches.parquet",
               "sweep.xlsx", MARKER, ".notes.tmp", ".my_secret.tmp", "summary/.notes.abcdefgh.tmp", "figures/keep/x.txt",
               "summary/.tranches.parquet.k2.tmp"]


@given(ours=st.sets(st.sampled_from(OURS)), theirs=st.sets(st.sampled_from(NEAR_MISSES), min_size=0))
def test_remove_written_removes_exactly_dcabs_files(tmp_path_factory, ours, theirs):
    d = tmp_path_factory.mktemp("d")
    for rel in ours | theirs:
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_bytes(b"x")
    assert remove_written(d) == len(ours)
    assert set(tree(d)) == theirs
    # The layout's directories go once empty; a user's directory (data/) stays even when empty.
    left_dirs = {p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_dir()}
    assert all(any(t.startswith(x + "/") for t in theirs) for x in left_dirs)


def test_a_sweep_directory_is_rewritten_with_overwrite_and_keeps_the_users_files(tmp_path, capsys):
    cfg = small(tmp_path)
    out = tmp_path / "s"
    args = ["sweep", str(cfg), "--set", "gpu.economic_life_months=24:36:12", "--paths", "1000", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    (out / "notes.txt").write_text("mine")
    assert main(args) == 2 and "already holds a finished sweep" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([MARKER, "manifest.json", "notes.txt", "sweep.csv", "sweep.parquet"])
    assert main(["run", str(cfg), "--out", str(out), "--overwrite", "--no-progress"]) == 2
    assert "holds a dcabs sweep, not a run" in capsys.readouterr().err


def test_remove_written_never_follows_a_symlinked_directory_nor_removes_a_users_empty_one(tmp_path):
    elsewhere = tmp_path / "userdata"
    (elsewhere / "emptydir").mkdir(parents=True)
    (elsewhere / "tranches.parquet").write_bytes(b"mine")
    run_dir = tmp_path / "run"
    (run_dir / "figures" / "keep").mkdir(parents=True)
    (run_dir / "summary").symlink_to(elsewhere)
    (run_dir / "manifest.json").write_text("{}")
    assert remove_written(run_dir) == 1  # the manifest only
    assert (elsewhere / "tranches.parquet").read_bytes() == b"mine" and (elsewhere / "emptydir").is_dir()
    assert (run_dir / "figures" / "keep").is_dir()


def test_a_directory_with_someone_elses_manifest_json_is_not_a_dcabs_run(tmp_path, capsys):
    web = tmp_path / "extension"
    web.mkdir()
    (web / "manifest.json").write_text('{"manifest_version": 3}')
    (web / "report.html").write_text("<html>mine</html>")
    before = tree(web)
    assert main(["run", str(small(tmp_path)), "--out", str(web), "--overwrite", "--no-report", "--no-progress"]) == 2
    assert "dcabs did not make it" in capsys.readouterr().err
    assert tree(web) == before


def test_a_failed_overwrite_keeps_the_earlier_finished_run(tmp_path, monkeypatch):
    cfg = make_config()
    d = tmp_path / "run"
    first = run(cfg, out=d, **KW)

    def boom(*a, **k):
        raise RuntimeError("scheduler unreachable")

    monkeypatch.setattr(backends, "compute", boom)
    with pytest.raises(RuntimeError):
        run(cfg.with_run(seed=3), out=d, overwrite=True, **KW)
    monkeypatch.undo()
    from engine import open_run

    again = open_run(d)
    assert again.manifest["seed"] == first.manifest["seed"] and not (d / CHUNKS_DIR).exists()
    pd.testing.assert_frame_equal(again.tranches, first.tranches)


def test_a_marker_that_is_a_symlink_is_refused_and_its_target_untouched(tmp_path):
    (tmp_path / "thesis.txt").write_text("years of work")
    d = tmp_path / "run"
    d.mkdir()
    (d / MARKER).symlink_to(tmp_path / "thesis.txt")
    with pytest.raises(OutputExistsError):
        run(make_config(), out=d, **KW)
    assert (tmp_path / "thesis.txt").read_text() == "years of work"


def test_another_thread_cannot_claim_a_directory_this_thread_holds(tmp_path):
    import threading

    errors = []
    with claim(tmp_path / "d"):
        t = threading.Thread(target=lambda: errors.append(_try_claim(tmp_path / "d")))
        t.start()
        t.join()
    assert errors == ["refused"]


def _try_claim(path):
    try:
        with claim(path):
            return "claimed"
    except OutputExistsError:
        return "refused"
