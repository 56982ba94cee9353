"""Failures a user can fix (a full disk, an output path under a file, a damaged manifest, a second
Ctrl-C) end with exit status 2 (130 for Ctrl-C) and a message, never a traceback; and a run that
failed before committing anything leaves nothing behind."""

from __future__ import annotations

import copy
import errno
import json
import shutil
import signal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builders import ANY_VALUE, FUZZ_BASE, FUZZ_PATHS, set_at, small
from engine.io import rundir as outputs
from engine.simulation import backends
from engine.cli.main import main


def run_args(cfg: Path, out: Path, *extra: str) -> list[str]:
    return ["run", str(cfg), "--out", str(out), "--no-report", "--no-progress", "--chunk-paths", "1000", *extra]


def test_a_full_disk_is_exit_2_and_keeps_committed_chunks(tmp_path, monkeypatch, capsys):
    cfg = small(tmp_path)

    def full(frame, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(outputs, "write_table", full)  # the summaries, after every chunk is committed
    assert main(run_args(cfg, tmp_path / "o")) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "tranches.parquet" in err and "Traceback" not in err
    assert "--resume" in err  # the chunks survive the failure
    monkeypatch.undo()
    assert main(run_args(cfg, tmp_path / "o", "--resume")) == 0


def test_an_out_under_a_file_is_exit_2_and_writes_nothing(tmp_path, capsys):
    cfg = small(tmp_path)
    (tmp_path / "plain").write_text("a file")
    assert main(run_args(cfg, tmp_path / "plain" / "run")) == 2
    assert "is a file, not a directory" in capsys.readouterr().err
    assert (tmp_path / "plain").read_text() == "a file"
    assert main(["trace", str(cfg), "--out", str(tmp_path / "plain" / "x.csv")]) == 2
    assert "is a file, not a directory" in capsys.readouterr().err


def test_a_second_ctrl_c_is_130_with_the_resume_command(tmp_path, monkeypatch, capsys):
    cfg = small(tmp_path)
    calls = []
    real = backends.compute

    def compute(job, chunk, source=None):
        calls.append(chunk)
        if len(calls) == 2:  # what the second SIGINT's handler raises, in the chunk in progress
            raise KeyboardInterrupt
        return real(job, chunk, source)

    monkeypatch.setattr(backends, "compute", compute)
    assert main(run_args(cfg, tmp_path / "o")) == 128 + signal.SIGINT
    err = capsys.readouterr().err
    assert "interrupted" in err and "--resume" in err and "Traceback" not in err
    monkeypatch.undo()
    assert main(run_args(cfg, tmp_path / "o", "--resume")) == 0


# --------------------------------------------------------------------------- damaged manifests


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    d = tmp_path_factory.mktemp("finished") / "run"
    cfg = small(d.parent)
    assert main(run_args(cfg, d)) == 0
    return d


def _sections(m: dict, prefix=()) -> list[tuple]:
    out = []
    for k, v in m.items():
        out.append((*prefix, k))
        if isinstance(v, dict):
            out += _sections(v, (*prefix, k))
    return out


@settings(max_examples=15)  # each example draws every figure
@given(data=st.data())
def test_report_on_a_damaged_manifest_is_exit_0_or_2(finished, tmp_path_factory, data, capsys):
    d = tmp_path_factory.mktemp("damaged") / "run"
    shutil.copytree(finished, d)
    manifest = json.loads((d / "manifest.json").read_text())
    edits = data.draw(st.lists(st.tuples(st.sampled_from(_sections(manifest)),
                                         st.sampled_from(["delete", None, "x", -1, 1.5e308, [], {}, [1, "a"]])), min_size=1, max_size=3))
    damaged = copy.deepcopy(manifest)
    for key, value in edits:
        node = damaged
        for k in key[:-1]:
            node = node.get(k) if isinstance(node, dict) else None
        if not isinstance(node, dict) or key[-1] not in node:
            continue
        if value == "delete":
            del node[key[-1]]
        else:
            node[key[-1]] = value
    (d / "manifest.json").write_text(json.dumps(damaged))
    code = main(["report", str(d)])
    err = capsys.readouterr().err
    assert code in (0, 2), err
    assert (code == 2) == ("cannot build the report" in err)


@pytest.mark.parametrize("text", ["", "{", "[1, 2]", '"a"', "\xff\xfe", '{"scenarios": [1]}', '{"scenarios": {"base": 3}}'])
def test_report_on_an_unreadable_manifest_is_exit_2(finished, tmp_path, text, capsys):
    d = tmp_path / "run"
    shutil.copytree(finished, d)
    (d / "manifest.json").write_bytes(text.encode("latin-1"))
    assert main(["report", str(d)]) == 2
    assert "manifest.json" in capsys.readouterr().err


# --------------------------------------------------------------------------- fuzzed configs and tapes, end to end


def _toml_value(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if v != v else ("inf" if v == float("inf") else "-inf" if v == float("-inf") else repr(v))
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(x for x in map(_toml_value, v) if x is not None) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {x}" for k, x in ((k, _toml_value(x)) for k, x in v.items()) if x is not None) + "}"
    raise TypeError(type(v))


def to_toml(d: dict) -> str:
    """Any JSON-like dict as TOML, every table inline (nulls dropped: TOML has none)."""
    return "".join(f"{json.dumps(str(k))} = {x}\n" for k, x in ((k, _toml_value(v)) for k, v in d.items()) if x is not None)


def _assert_clean(code: int, err: str, out: Path) -> None:
    assert code in (0, 2), err
    assert "Traceback" not in err
    if code == 2:
        assert err.strip() and not out.exists(), err  # a refused run writes nothing


@settings(max_examples=30)
@given(mutations=st.lists(st.tuples(st.sampled_from(FUZZ_PATHS), ANY_VALUE), min_size=1, max_size=3))
def test_fuzzed_configs_run_or_exit_2_without_writing(tmp_path_factory, mutations, capsys):
    d = copy.deepcopy(FUZZ_BASE)
    for path, value in mutations:
        try:
            set_at(d, path, value)
        except (KeyError, IndexError, TypeError):
            pass
    where = tmp_path_factory.mktemp("fuzz")
    cfg = where / "c.toml"
    cfg.write_text(to_toml(d), encoding="utf-8")
    out = where / "run"
    code = main(run_args(cfg, out, "--paths", "300", "--chunk-paths", "300"))
    _assert_clean(code, capsys.readouterr().err, out)


TAPE_CELLS = st.one_of(st.sampled_from(["", "nan", "inf", "-1", "0", "1e400", "x", "lab", "neo", "1,5", "true", "2026-01-01", " 12 "]),
                       st.text(max_size=5), st.integers(-5, 10**12).map(str), st.floats().map(repr))


@settings(max_examples=30)
@given(edits=st.lists(st.tuples(st.integers(0, 2), st.sampled_from(["tenant", "term_months", "monthly_rent", "gpu_cost",
                                                                  "start_month", "escalator", "shell_value", "recovery_lag", "extra"]),
                                TAPE_CELLS), min_size=1, max_size=4))
def test_fuzzed_lease_tapes_validate_or_exit_2(tmp_path_factory, edits, capsys):
    import csv

    d = copy.deepcopy(FUZZ_BASE)
    rows = [dict(r) for r in d["deals"][0].pop("leases")]
    columns = ["tenant", "term_months", "monthly_rent", "gpu_cost", "start_month", "escalator", "shell_value", "recovery_lag"]
    table = [{c: str(r.get(c, "")) for c in columns} for r in rows]
    for row, column, cell in edits:
        table[row][column] = cell
    where = tmp_path_factory.mktemp("tape")
    with open(where / "tape.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=sorted({k for r in table for k in r}, key=lambda c: (c not in columns, c)))
        writer.writeheader()
        writer.writerows(table)
    d["deals"][0]["lease_tape"] = "tape.csv"
    d.pop("scenarios")
    cfg = where / "c.toml"
    cfg.write_text(to_toml(d), encoding="utf-8")
    code = main(["validate", str(cfg)])
    captured = capsys.readouterr()
    assert code in (0, 2) and "Traceback" not in captured.err
    assert (code == 0) == (captured.out.strip() == "ok")
