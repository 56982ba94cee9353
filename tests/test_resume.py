"""Committed chunks: exact generic serialisation, clean stops on signals, bit-identical resume,
and refusal to resume against a different run."""

from __future__ import annotations

import dataclasses
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from builders import make_config, small
from engine import run, validate_config
from engine.simulation import backends
from engine.simulation.chunk import Chunk, Job, compute
from engine.cli.main import main
from engine.io.rundir import OutputExistsError
from engine.io.chunks import CHUNKS_DIR, Interrupted, ResumeError, committable, dumps_stats, loads_stats
from engine.analytics.stats import Moments, RunStats

ROOT = Path(__file__).resolve().parents[1]
HYPERION = ROOT / "configs" / "hyperion.toml"


def assert_same(a, b, where="stats"):
    """Field by field, dtype and every bit (Python ints compared as ints)."""
    assert type(a) is type(b), where
    if dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert a.tolist() == b.tolist(), where
    else:
        assert a == b, where


@pytest.fixture(scope="module")
def chunk_stats():
    job = Job.prepare(make_config())
    return compute(job, Chunk("base", 0, 1500))


def test_run_stats_round_trip_exactly(chunk_stats):
    back, entry = loads_stats(dumps_stats(chunk_stats, {"start": 0, "stop": 1500}))
    assert entry == {"start": 0, "stop": 1500}
    assert_same(chunk_stats, back)
    # Exact sums are Python ints beyond int64 once merged: they must survive too.
    big = dataclasses.replace(chunk_stats, loss=Moments(chunk_stats.loss.count * 2**70, chunk_stats.loss.total * 2**70,
                                                        chunk_stats.loss.squares - 2**90))
    assert_same(big, loads_stats(dumps_stats(big))[0])


@committable
@dataclasses.dataclass
class Extended(RunStats):
    """RunStats as another engineer might grow it: new arrays, moments and scalars."""

    extra_hist: np.ndarray | None = None
    extra_moments: Moments | None = None
    extra_count: int = 0
    extra_none: np.ndarray | None = None


def test_serialisation_picks_up_fields_added_later(chunk_stats):
    grown = Extended(**{f.name: getattr(chunk_stats, f.name) for f in dataclasses.fields(RunStats)},
                     extra_hist=np.arange(12, dtype=np.int64).reshape(3, 4),
                     extra_moments=Moments.of(np.linspace(0, 1, 10)[:, None]), extra_count=2**80)
    back, _ = loads_stats(dumps_stats(grown))
    assert isinstance(back, Extended)
    assert_same(grown, back)


def test_unknown_field_types_are_refused_not_pickled(chunk_stats):
    with pytest.raises(TypeError, match="stats.extra_hist"):
        dumps_stats(dataclasses.replace(Extended(), extra_hist={"a": 1}))


def _interrupt_after(monkeypatch, chunks: int, signum=signal.SIGTERM):
    """Make the in-process backend deliver ``signum`` to this process while computing chunk ``chunks``."""
    calls = []
    real = backends.compute

    def compute_then_signal(job, chunk, source=None):
        calls.append(chunk)
        if len(calls) == chunks:
            os.kill(os.getpid(), signum)
        return real(job, chunk, source)

    monkeypatch.setattr(backends, "compute", compute_then_signal)
    return calls


def test_a_signal_stops_after_the_chunk_and_resume_is_bit_identical(tmp_path, monkeypatch):
    cfg = make_config()
    kw = dict(paths=7000, chunk_paths=1000)
    full = run(cfg, **kw)
    out = tmp_path / "run"
    calls = _interrupt_after(monkeypatch, 3)
    with pytest.raises(Interrupted) as exc:
        run(cfg, out=out, **kw)
    assert exc.value.committed == 3 and exc.value.total == 7 and exc.value.signum == signal.SIGTERM
    assert len(calls) == 3  # the chunk in progress finished and was committed; nothing after it started
    files = sorted((out / CHUNKS_DIR / "base").iterdir())
    assert [f.name for f in files] == [f"{s:012d}.npz" for s in (0, 1000, 2000)]
    assert not (out / "manifest.json").exists()
    monkeypatch.undo()
    # Without --resume an interrupted run is never silently restarted.
    with pytest.raises(OutputExistsError, match="--resume"):
        run(cfg, out=out, **kw)
    resumed = run(cfg, out=out, resume=True, threads=1, **kw)  # threads never change results
    assert resumed.manifest["chunks_resumed"] == 3
    for name in ("tranches", "deals", "distributions", "fans"):
        pd.testing.assert_frame_equal(full.tables[name], resumed.tables[name], check_exact=True)
    assert (out / "manifest.json").exists() and not (out / CHUNKS_DIR).exists()


@pytest.mark.parametrize("change,needle", [
    (dict(seed=5), "the seed differs"),
    (dict(paths=8000), "the path count differs"),
    (dict(chunk_paths=500), "the chunk size differs"),
    (dict(config="tenants.lab.pd"), "the config changed"),
])
def test_resume_against_a_different_run_is_refused(tmp_path, monkeypatch, change, needle):
    cfg = make_config()
    kw = dict(paths=4000, chunk_paths=1000, seed=11)
    _interrupt_after(monkeypatch, 2)
    with pytest.raises(Interrupted):
        run(cfg, out=tmp_path, **kw)
    monkeypatch.undo()
    if "config" in change:
        cfg = cfg.with_overrides({change.pop("config"): 0.07})
    with pytest.raises(ResumeError, match=needle):
        run(cfg, out=tmp_path, resume=True, **{**kw, **change})
    assert sorted(p.name for p in (tmp_path / CHUNKS_DIR / "base").iterdir()) == ["000000000000.npz", "000000001000.npz"]


def test_cli_stops_with_the_resume_command_and_refuses_a_changed_resume_with_exit_2(tmp_path, monkeypatch, capsys):
    cfg = small(tmp_path)
    args = ["run", str(cfg), "--chunk-paths", "1000", "--out", str(tmp_path / "o"), "--no-report", "--no-progress"]
    _interrupt_after(monkeypatch, 1)
    assert main([*args, "--overwrite"]) == 128 + signal.SIGTERM
    err = capsys.readouterr().err
    assert "stopped by SIGTERM: 1 of 3 chunks are committed" in err
    assert err.strip().endswith("dcabs " + shlex.join(args) + " --resume")  # --overwrite dropped: it would discard them
    monkeypatch.undo()
    assert main([*args, "--seed", "3", "--resume"]) == 2
    assert "cannot resume" in capsys.readouterr().err
    assert main([*args, "--resume"]) == 0


def _hyperion_cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "engine.cli", "run", str(HYPERION), "--paths", "61440", "--chunk-paths", "4096",
            "--out", str(out), "--no-report", "--no-progress", *extra]


def test_sigint_on_a_real_run_then_resume_gives_the_same_bits(tmp_path):
    out = tmp_path / "interrupted"
    proc = subprocess.Popen(_hyperion_cmd(out), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    chunks = out / CHUNKS_DIR / "base"
    while proc.poll() is None and len(list(chunks.glob("*.npz"))) < 2:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGINT, stderr
    committed = sorted(chunks.glob("*.npz"))
    assert 2 <= len(committed) < 15 and not list(chunks.glob(".*")) and not (out / "manifest.json").exists()
    for f in committed:  # every file left behind is a complete chunk
        assert loads_stats(f)[1]["stop"] - loads_stats(f)[1]["start"] == 4096
    command = stderr.strip().splitlines()[-1].strip()
    assert command.endswith("--resume") and f"--out {out}" in command
    argv = shlex.split(command)
    t0 = time.perf_counter()
    resumed = subprocess.run([sys.executable, "-m", "engine.cli", *argv[1:]], cwd=ROOT, capture_output=True, text=True)
    resume_s = time.perf_counter() - t0
    assert resumed.returncode == 0, resumed.stderr
    whole = tmp_path / "whole"
    subprocess.run(_hyperion_cmd(whole), cwd=ROOT, check=True, capture_output=True)
    for table in ("tranches", "deals", "distributions", "fans"):
        a = pd.read_parquet(out / "summary" / f"{table}.parquet")
        b = pd.read_parquet(whole / "summary" / f"{table}.parquet")
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    print(f"resumed {len(committed)} of 15 chunks in a {resume_s:.2f} s process")


def test_logs_are_quiet_by_default_and_verbose_with_v(tmp_path):
    cfg = small(tmp_path)
    args = ["run", str(cfg), "--chunk-paths", "1000", "--no-report", "--no-progress"]
    quiet = subprocess.run([sys.executable, "-m", "engine.cli", *args, "--out", str(tmp_path / "q")], cwd=ROOT,
                           capture_output=True, text=True, check=True)
    assert quiet.stderr == ""
    loud = subprocess.run([sys.executable, "-m", "engine.cli", "-v", *args, "--out", str(tmp_path / "v")], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    assert "inprocess backend: 3 chunks of 1 job(s) to simulate" in loud.stderr
    assert loud.stderr.count("committed chunk base") == 3


def test_an_importance_sampled_run_round_trips_and_resumes_bit_identically(tmp_path, monkeypatch):
    """Weighted statistics (Mass limbs, weighted moments) survive a chunk commit exactly, and an
    interrupted importance-sampled run resumes to the same bits."""
    d = make_config().resolved()
    d["importance"] = {"target": "d1.A", "pilot_paths": 512, "pilot_rounds": 3}
    cfg = validate_config(d)
    stats = compute(Job.prepare(cfg), Chunk("base", 0, 1500))
    assert stats.weighted
    assert_same(stats, loads_stats(dumps_stats(stats))[0])
    kw = dict(paths=4000, chunk_paths=1000)
    full = run(cfg, **kw)
    out = tmp_path / "run"
    _interrupt_after(monkeypatch, 2)
    with pytest.raises(Interrupted):
        run(cfg, out=out, **kw)
    monkeypatch.undo()
    resumed = run(cfg, out=out, resume=True, **kw)
    assert resumed.manifest["chunks_resumed"] == 2
    for name in full.tables:
        pd.testing.assert_frame_equal(full.tables[name], resumed.tables[name], check_exact=True)


# --------------------------------------------------------------------------- files dcabs did not write


def _rezip(data: bytes, edit) -> bytes:
    """The chunk ``data`` with its arrays (``{name: array}``, ``__meta__`` parsed to a dict) passed
    through ``edit`` and written back as a valid zip, as a hand-edit would be."""
    import io
    import json
    import zipfile

    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(str(arrays.pop("__meta__")))
    edit(arrays, meta)
    arrays["__meta__"] = np.array(json.dumps(meta))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for key, arr in arrays.items():
            with zf.open(f"{key}.npy", "w") as f:
                np.lib.format.write_array(f, arr, allow_pickle=False)
    return buf.getvalue()


def _redigest(arrays, meta):
    from engine.io.chunks import _digest

    meta["sha256"] = _digest({"stats": meta["stats"], "entry": meta["entry"]}, arrays)


def test_a_chunk_naming_any_other_class_is_refused_without_importing_it(chunk_stats, tmp_path, monkeypatch):
    # A module on the path that records being imported: the old decoder imported whatever a chunk named.
    (tmp_path / "dcabs_planted.py").write_text("import pathlib\npathlib.Path(__file__).with_suffix('.ran').touch()\n"
                                               "import dataclasses\n@dataclasses.dataclass\nclass X:\n    count: int = 0\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    def plant(arrays, meta):
        meta["stats"]["fields"]["loss"]["class"] = "dcabs_planted:X"
        _redigest(arrays, meta)  # a valid digest: the allow-list alone must stop it

    with pytest.raises(ResumeError, match="names the class 'dcabs_planted:X'"):
        loads_stats(_rezip(dumps_stats(chunk_stats), plant))
    assert not (tmp_path / "dcabs_planted.ran").exists()
    assert "dcabs_planted" not in sys.modules


def test_a_registered_class_with_other_fields_is_refused(chunk_stats):
    def rename(arrays, meta):
        fields = meta["stats"]["fields"]["loss"]["fields"]
        fields["counter"] = fields.pop("count")
        _redigest(arrays, meta)

    with pytest.raises(ResumeError, match="Moments has the fields"):
        loads_stats(_rezip(dumps_stats(chunk_stats), rename))


def test_an_unregistered_dataclass_is_refused_when_committing():
    @dataclasses.dataclass
    class Private:
        n: int = 1

    with pytest.raises(TypeError, match="engine.io.chunks.committable"):
        dumps_stats(Private())


def test_edited_statistics_in_a_valid_zip_are_refused_by_the_digest(chunk_stats):
    name = next(f.name for f in dataclasses.fields(chunk_stats) if isinstance(getattr(chunk_stats, f.name), np.ndarray))

    def edit(arrays, meta):
        key = f"stats.{name}"
        arrays[key] = arrays[key].copy()
        arrays[key].flat[0] += 1

    data = dumps_stats(chunk_stats)
    loads_stats(_rezip(data, lambda a, m: None))  # rewriting alone changes nothing that matters
    with pytest.raises(ResumeError, match="does not match the digest"):
        loads_stats(_rezip(data, edit))

    def entry(arrays, meta):
        meta["entry"]["start"] = 5

    with pytest.raises(ResumeError, match="does not match the digest"):
        loads_stats(_rezip(dumps_stats(chunk_stats, {"start": 0}), entry))


def _damage_kinds(data: bytes) -> dict[str, bytes]:
    mid = len(data) // 2
    flipped = lambda i: data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]  # noqa: E731
    return {
        "empty": b"", "one byte": data[:1], "truncated half": data[:mid], "truncated end": data[:-1],
        "text": b"not a chunk\n", "zeros": bytes(len(data)), "header flip": flipped(0), "middle flip": flipped(mid),
        "directory flip": flipped(len(data) - 30), "local header flip": flipped(35), "appended": data + b"junk",
        "doubled": data + data, "random": np.random.default_rng(3).bytes(len(data)),
        "other zip": _rezip(data, lambda a, m: a.clear()),
    }


def test_every_kind_of_damage_is_a_resume_error(chunk_stats):
    data = dumps_stats(chunk_stats)
    for kind, damaged in _damage_kinds(data).items():
        try:
            loads_stats(damaged)
        except ResumeError:
            continue
        # Bytes before or after an intact zip leave it readable; then the content must be intact.
        assert kind in ("appended", "doubled"), kind
        assert_same(chunk_stats, loads_stats(damaged)[0])


def test_cli_resume_with_a_damaged_chunk_exits_2_naming_the_file(tmp_path, monkeypatch, capsys):
    cfg = small(tmp_path)
    args = ["run", str(cfg), "--chunk-paths", "1000", "--out", str(tmp_path / "o"), "--no-report", "--no-progress"]
    _interrupt_after(monkeypatch, 2)
    assert main(args) == 128 + signal.SIGTERM
    monkeypatch.undo()
    capsys.readouterr()
    first = tmp_path / "o" / CHUNKS_DIR / "base" / "000000000000.npz"
    first.write_bytes(first.read_bytes()[:100])
    assert main([*args, "--resume"]) == 2
    err = capsys.readouterr().err
    assert str(first) in err and "delete that file" in err and "Traceback" not in err
    first.unlink()
    assert main([*args, "--resume"]) == 0  # only the deleted chunk is recomputed


def test_loads_stats_works_in_a_fresh_interpreter_and_refuses_oversized_files(chunk_stats, tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    path.write_bytes(dumps_stats(chunk_stats, {"start": 0}))
    code = f"from engine.io.chunks import loads_stats; print(loads_stats({str(path)!r})[1])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and done.stdout.strip() == "{'start': 0}", done.stderr
    import engine.io.chunks as resume_mod

    monkeypatch.setattr(resume_mod, "_MAX_CHUNK_BYTES", 1000)  # a crafted zip may declare gigabytes
    with pytest.raises(ResumeError, match="declares .* bytes of arrays"):
        loads_stats(path)


def test_the_engine_classes_listed_for_a_fresh_decoder_are_the_registered_ones():
    # A class added to the statistics without its name in ENGINE_CLASSES would load in the process
    # that wrote it and fail to resume in a fresh one.
    import engine.analytics.holders  # noqa: F401  (registers HolderStats)
    from engine.io import chunks

    engine_registered = {name for name in chunks._COMMITTABLE if name.startswith("engine.")}
    assert engine_registered == set(chunks.ENGINE_CLASSES)
