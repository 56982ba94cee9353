"""Lease tapes read as columns: the column check accepts exactly the rows `Lease` accepts (the slow
oracle, one pydantic object per row, as the engine once read every tape), a tape compiles to the same
plan as the same leases given inline, and a large tape's errors are capped."""

from __future__ import annotations

import contextlib
import hashlib
import pickle
import tempfile
import tomllib
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from builders import SMALL, TAPE, _tape, write
from engine.config import tables as C
from engine.cli.main import main
from engine.plan.compile import compile_plan
from engine.config import ConfigError, load_config, validate_config
from engine.config.leases import Lease, LeaseColumns

INT_FIELDS = [n for n, f in Lease.model_fields.items() if f.annotation in (int, int | None)]
FLOAT_FIELDS = [n for n, f in Lease.model_fields.items() if f.annotation in (float, float | None)]
REQUIRED = ["tenant", "term_months", "monthly_rent"]
OPTIONAL = [n for n in Lease.model_fields if n not in REQUIRED]


def _missing(v) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def oracle(frame: pd.DataFrame) -> list:
    """Each row as ``Lease(**row)`` makes it (empty cells left out), or its errors as (loc, message)."""
    out = []
    for row in frame.to_dict("records"):
        try:
            out.append(Lease(**{k: v for k, v in row.items() if not _missing(v)}))
        except ValidationError as exc:
            out.append([(e["loc"], e["msg"]) for e in exc.errors()])
    return out


# CSV cells as text: pandas infers each column's type, as from a user's file. In range for every
# field of the kind, or not, or not even of the kind.
GOOD = {
    "int": st.integers(1, 20).map(str),
    "float": st.floats(0.0, 0.9).map(repr),
    "name": st.sampled_from(["lab", "hyper", "_a.b-c"]),
    "recovery": st.sampled_from(["sale", "fixed", "relet"]),
    "id": st.text("Lx0-", min_size=1, max_size=5).map(lambda s: "L" + s),
}
BAD = {
    "int": st.one_of(st.integers(-3, 700).map(str),
                     st.sampled_from(["", "2.5", "3.0", "1e3", "abc", " 7 ", "inf", "nan", "True", "-0", "1_0"])),
    "float": st.one_of(st.floats(-20.0, 2e13, allow_nan=False).map(repr),
                       st.sampled_from(["", "-0.0", "inf", "-inf", "nan", "1e14", "abc", "1", "0.99999999", "True", " 2 "])),
    "name": st.one_of(st.sampled_from(["", "9lab", "a b", "x" * 64, "x" * 65, "12", "1.5", "True", "é"]),
                      st.text("ab_-.9 ", min_size=1, max_size=4)),
    "recovery": st.sampled_from(["", "Sale", "1", "relet ", "none"]),
    "id": st.sampled_from(["", "x" * 64, "x" * 65, "7", "1.5"]),
}


# How a column with bad cells is bad; most make pandas read it as another type than the field's.
STYLES = {
    "mixed": lambda k: st.one_of(GOOD[k], BAD[k]),
    "gaps": lambda k: st.one_of(GOOD[k], st.just("")),  # an int column with gaps is read as floats
    "floats": lambda k: st.one_of(st.integers(0, 20).map(lambda i: f"{i}.0"), st.sampled_from(["2.5", "-0.0", ""])),
    "bools": lambda k: st.sampled_from(["True", "False"]),
    "numbers": lambda k: st.integers(-2, 30).map(str),
    "empty": lambda k: st.just(""),
}


def kind(field: str) -> str:
    if field in INT_FIELDS:
        return "int"
    if field in FLOAT_FIELDS:
        return "float"
    return {"tenant": "name", "rvg_guarantor": "name", "recovery": "recovery", "id": "id"}[field]


@st.composite
def tapes(draw) -> tuple[pd.DataFrame, str]:
    """A text frame of 1–25 rows, the required columns and some optional ones, of which at most
    three hold bad cells (often none, so that whole tapes are valid too)."""
    rows = draw(st.integers(1, 25))
    fields = REQUIRED + draw(st.lists(st.sampled_from(OPTIONAL), unique=True, max_size=10))
    if "rvg_threshold" in fields and "rvg_months" not in fields and draw(st.integers(0, 3)):
        fields.append("rvg_months")  # else every positive threshold breaks Lease's RVG rule
    dirty = draw(st.lists(st.sampled_from(fields), unique=True, max_size=3))
    data = {}
    for field in fields:
        k = kind(field)
        cell = STYLES[draw(st.sampled_from(sorted(STYLES)))](k) if field in dirty else GOOD[k]
        data[field] = draw(st.lists(cell, min_size=rows, max_size=rows))
    return pd.DataFrame(data), draw(st.sampled_from(["csv", "parquet", "nullable", "objects"]))


def _mixed(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Object columns holding Python numbers in some cells and text in others (what a CSV reader
    gives a column whose blocks parse differently), NaN for empty cells."""
    rng = np.random.default_rng(seed)

    def parse(s: str):
        for convert in (int, float):
            try:
                return convert(s)
            except ValueError:
                pass
        return {"True": True}.get(s, s)

    out = frame.astype(object).copy()
    for c in out.columns:
        out[c] = [np.nan if s == "" else (parse(s) if rng.random() < 0.5 else s) for s in frame[c]]
    return out.astype(object)


@settings(max_examples=30)
@given(tapes(), st.integers(0, 2**16))
def test_the_column_check_accepts_exactly_the_rows_lease_accepts(case, seed):
    text, fmt = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tape.csv"
        text.to_csv(path, index=False)
        frame = pd.read_csv(path)
        if fmt in ("parquet", "nullable"):
            path = Path(tmp) / "tape.parquet"
            (frame.convert_dtypes() if fmt == "nullable" else frame).to_parquet(path)
            frame = pd.read_parquet(path)
        reader = contextlib.nullcontext()
        if fmt == "objects":  # no file format keeps such columns: the reader is bypassed
            frame = _mixed(text, seed)
            reader = mock.patch.object(C, "_read_frame", return_value=frame)
        expected = oracle(frame)
        bad = [j for j, r in enumerate(expected) if isinstance(r, list)]
        event(f"{fmt}: {'valid' if not bad else 'over 20 bad rows' if len(bad) > 20 else 'some bad rows'}")
        with reader:
            if not bad:
                cols, digest = C._read_lease_tape(path)
                assert [repr(x) for x in cols.leases()] == [repr(x) for x in expected]  # types and -0.0 included
                assert cols == LeaseColumns.from_leases(expected)
                assert cols.has_options().tolist() == [x.has_options for x in expected]
                assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
                return
            with pytest.raises(ValidationError) as exc:
                C._read_lease_tape(path)
    want = [(("lease_tape", f"row {j}", *loc), msg) for j in bad[:20] for loc, msg in expected[j]]
    if len(bad) > 20:
        want.append((("lease_tape",), f"{len(bad):,} rows have errors; only the first 20 are listed"))
    assert [(e["loc"], e["msg"]) for e in exc.value.errors()] == want


def _rich(n: int, seed: int) -> pd.DataFrame:
    """Every lease column, optional ones partly empty, option leases, relet pairs with -0.0."""
    rng = np.random.default_rng(seed)

    def sometimes(values):
        return pd.Series(values).where(rng.random(n) < 0.5)

    return pd.DataFrame({
        "id": sometimes([f"L{i}" for i in range(n)]),
        "tenant": rng.choice(["lab", "hyper"], n),
        "start_month": rng.integers(0, 30, n),
        "term_months": rng.integers(1, 60, n),
        "monthly_rent": np.round(rng.uniform(0, 2e6, n), 2),
        "escalator": rng.choice([0.0, 0.02, -0.1], n),
        "gpu_cost": rng.uniform(0, 3e7, n),
        "gpu_in_service_month": sometimes(rng.integers(0, 20, n)),
        "shell_value": rng.choice([0.0, 1e7], n),
        "recovery": rng.choice(["sale", "fixed", "relet"], n),
        "recovery_rate": rng.uniform(0, 1, n),
        "recovery_lag": rng.integers(0, 12, n),
        "liquidation_cost": rng.uniform(0, 0.3, n),
        "renewals": rng.choice([0, 0, 1, 2], n),
        "renewal_intercept": rng.normal(0, 1, n),
        "rvg_threshold": rng.choice([0.0, 0.0, 1e6], n),
        "rvg_threshold_end": sometimes(rng.uniform(0, 1e6, n)),
        "rvg_months": rng.integers(1, 40, n),
        "rvg_cap": sometimes(rng.uniform(0, 3e6, n)),
        "rvg_guarantor": sometimes(rng.choice(["lab", "hyper"], n)),
        "relet_pd": rng.choice([0.05, -0.0, 0.0], n),
        "relet_rho": rng.choice([0.2, 0.0, -0.0], n),
        "termination_threshold": rng.choice([0.0, 0.5], n),
        "termination_earliest_month": rng.integers(1, 24, n),
    })


def _plan_arrays(cfg) -> dict:
    plan = compile_plan(cfg)
    out = {f"{part}.{f}": getattr(getattr(plan, part), f) for part in ("credit", "pool", "deals") for f in getattr(plan, part)._fields}
    return {k: (v.dtype, v.shape, v.tobytes()) if isinstance(v, np.ndarray) else v for k, v in out.items()}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_tape_compiles_to_the_plan_of_the_same_leases_inline(tmp_path, fmt):
    base = tomllib.loads(SMALL.format(leases=""))
    base["deals"].append({**base["deals"][0], "name": "d2"})
    frames = [_rich(150, 1), _rich(90, 2)]
    taped, inline = ({**base, "deals": [dict(d) for d in base["deals"]]} for _ in range(2))
    for d, frame in enumerate(frames):
        name = f"tape{d}.{fmt}"
        frame.to_csv(tmp_path / name, index=False) if fmt == "csv" else frame.to_parquet(tmp_path / name)
        taped["deals"][d]["lease_tape"] = name
        inline["deals"][d]["leases"] = [{k: v for k, v in row.items() if not _missing(v)} for row in frame.to_dict("records")]
    a, b = validate_config(taped, base_dir=tmp_path), validate_config(inline, base_dir=tmp_path)
    assert _plan_arrays(a) == _plan_arrays(b)
    for da, db in zip(a.deals, b.deals):
        assert [repr(x) for x in da.all_leases] == [repr(x) for x in db.all_leases]
        assert da.lease_columns() == db.lease_columns()


def test_a_pickled_config_carries_its_tape_as_arrays(tmp_path):
    frame = _rich(200, 3)
    frame.to_csv(tmp_path / "t.csv", index=False)
    cfg = load_config(write(tmp_path, SMALL.format(leases='lease_tape = "t.csv"')))
    size = len(pickle.dumps(cfg))
    assert len(cfg.deals[0].all_leases) == 200
    assert len(pickle.dumps(cfg)) == size  # the Lease objects built for all_leases stay behind
    copy = pickle.loads(pickle.dumps(cfg))
    assert copy.deals[0] == cfg.deals[0] and _plan_arrays(copy) == _plan_arrays(cfg)
    assert cfg.deals[0]._tape_sha256 == hashlib.sha256((tmp_path / "t.csv").read_bytes()).hexdigest()


def _validate_err(tmp_path, frame, capsys) -> list[str]:
    assert main(["validate", str(write(tmp_path, SMALL.format(leases=_tape(tmp_path, frame, "csv"))))]) == 2
    header, *lines = capsys.readouterr().err.splitlines()
    assert header.endswith("invalid config")
    return [line.strip() for line in lines]


def test_a_large_bad_tape_lists_its_first_20_rows_and_a_count(tmp_path, capsys):
    big = pd.concat([TAPE] * 500, ignore_index=True)
    lines = _validate_err(tmp_path, big.assign(term_months=-1), capsys)
    assert lines[:20] == [f"deals[0].lease_tape.row {j}.term_months: Input should be greater than or equal to 1" for j in range(20)]
    assert lines[20:] == ["deals[0].lease_tape: 1,000 rows have errors; only the first 20 are listed"]

    lines = _validate_err(tmp_path, big.assign(start_month=np.arange(1000) % 2 * 40), capsys)  # run.months = 36
    assert lines[0].startswith("deals[0].lease_tape.row 1.start_month: month 40 is not before run.months (36)")
    assert lines[19].startswith("deals[0].lease_tape.row 39.start_month:")
    assert lines[20:] == ["deals[0].lease_tape: 500 rows start at or after run.months (36); only the first 20 are listed"]

    lines = _validate_err(tmp_path, big.assign(rvg_guarantor="ghost"), capsys)
    assert lines[:2] == ["deals[0].lease_tape.row 0.rvg_guarantor: unknown tenant 'ghost'",
                         "deals[0].lease_tape.row 1.rvg_guarantor: unknown tenant 'ghost'"]
    assert lines[20:] == ["deals[0].lease_tape: 1,000 rows name an unknown tenant; only the first 20 are listed"]


def test_inline_leases_still_list_every_error():
    d = tomllib.loads(SMALL.format(leases=""))
    d["deals"][0]["leases"] = [{"tenant": "ghost", "term_months": 12, "monthly_rent": 1.0}] * 25
    with pytest.raises(ConfigError) as exc:
        validate_config(d)
    assert [p for p, _ in exc.value.errors] == [f"deals[0].leases[{j}].tenant" for j in range(25)]


def test_progress_only_for_a_large_tape(tmp_path, capsys, monkeypatch):
    cfg = write(tmp_path, SMALL.format(leases=_tape(tmp_path, TAPE, "csv")))
    assert main(["validate", str(cfg)]) == 0
    assert capsys.readouterr() == ("ok\n", "")
    monkeypatch.setattr(C, "_PROGRESS_ROWS", 2)
    assert main(["validate", str(cfg)]) == 0
    out, err = capsys.readouterr()
    assert out == "ok\n" and "lease tape tape.csv" in err


def test_the_rent_schedule_in_blocks_of_leases_gives_the_same_plan(monkeypatch):
    # compile.py builds the [leases × months] rent schedule a block of leases at a time, so a
    # million-lease tape never holds it whole; the block size must not move a bit.
    import engine.plan.compile as compile_mod
    from engine import load_config

    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "neocloud_gpu_abs.toml")
    monkeypatch.setattr(compile_mod, "_LEASE_BLOCK", 1 << 30)
    whole = compile_mod.compile_plan(cfg).pool
    monkeypatch.setattr(compile_mod, "_LEASE_BLOCK", 7)
    blocks = compile_mod.compile_plan(cfg).pool
    for field in whole._fields:
        a, b = np.asarray(getattr(whole, field)), np.asarray(getattr(blocks, field))
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), field
