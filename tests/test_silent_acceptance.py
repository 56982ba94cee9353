"""Inputs that used to be accepted and give a wrong answer without a word (issue 17, point 4): each is
now a validation error that names the field. Nothing here simulates a path."""

from __future__ import annotations

import argparse
import copy
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from builders import ANY_VALUE, FUZZ_BASE, FUZZ_PATHS, INLINE, SMALL, TAPE, _tape, base_dict, make_config, set_at, small, write
from engine.cli.main import main
from engine.config import Config, ConfigError, validate_config


def errors_of(d: dict) -> str:
    with pytest.raises(ConfigError) as exc:
        make_config(d)
    return str(exc.value)


def points(d: dict, **by_name: tuple[float, float]) -> dict:
    for tr in d["deals"][0]["tranches"]:
        if tr["name"] in by_name:
            tr["attach"], tr["detach"] = by_name[tr["name"]]
    return d


# --------------------------------------------------------------------------- the tranche stack
# base_dict's stack: E [0, 0.1], B [0.1, 0.3], A [0.3, 1].


def test_overlapping_tranches_are_refused():
    text = errors_of(points(base_dict(), B=(0.1, 0.35)))
    assert "deals[0].tranches[0].attach: 0.3 overlaps tranche 'B' (attach 0.1, detach 0.35)" in text
    # A class inside another one's span overlaps it too.
    text = errors_of(points(base_dict(), E=(0.0, 1.0)))
    assert "deals[0].tranches[1].attach: 0.1 overlaps tranche 'E'" in text
    assert "deals[0].tranches[0].attach: 0.3 overlaps tranche 'E'" in text


def test_a_gap_in_the_tranche_stack_is_refused():
    text = errors_of(points(base_dict(), A=(0.35, 1.0)))
    assert "deals[0].tranches[0].attach: 0.35 leaves a gap above tranche 'B' (attach 0.1, detach 0.3)" in text
    assert "between 0.3 and 0.35" in text


def test_legitimate_stacks_still_validate():
    # Overcollateralisation below the notes, a senior layer outside the deal, a class without points,
    # pari-passu classes with the same points, and points that meet only to rounding.
    d = points(base_dict(), A=(0.3 + 1e-12, 0.9))
    d["deals"][0]["tranches"][2].pop("attach"), d["deals"][0]["tranches"][2].pop("detach")
    d["deals"][0]["tranches"].append({"name": "A2", "balance": 5e6, "attach": 0.3, "detach": 0.9})
    d["deals"][0]["waterfall"][4]["classes"].append("A2")
    make_config(d)


def test_a_stack_error_through_the_cli_exits_2(tmp_path, capsys):
    cfg = write(tmp_path, SMALL.format(leases=INLINE).replace("attach = 0.0, detach = 0.2", "attach = 0.0, detach = 0.15"))
    assert main(["validate", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "deals[0].tranches[0].attach: 0.2 leaves a gap above tranche 'B'" in err and "Traceback" not in err


def test_a_scenario_that_moves_one_point_alone_is_refused():
    d = base_dict()
    d["scenarios"] = {"thin_b": {"set": {"deals.d1.tranches.B.detach": 0.25}}}
    text = errors_of(d)
    assert "Scenario 'thin_b' failed config validation: deals[0].tranches[0].attach: 0.3 leaves a gap" in text


def test_a_sweep_point_may_move_one_point_alone():
    # The minimum subordination moves the senior's attach only; every class's allocation view depends
    # on its own points, so the sweep's points are not held to the tiling.
    from engine.cli.sweep_run import _outer_config
    from engine.api.sweeps import point_configs

    cfg = make_config()
    (point, name, moved), = point_configs(cfg, {"deals.d1.tranches.A.attach": [0.5]}, ["base"], {})
    assert moved.deals[0].tranches[0].attach == 0.5 and moved.with_run(paths=10).deals[0].tranches[0].attach == 0.5
    d = base_dict()
    d["scenarios"] = {"high_pd": {"set": {"tenants.lab.pd": 0.3}}}
    outer = _outer_config(make_config(d), {"deals.d1.tranches.B.detach": 0.2})
    assert outer.deals[0].tranches[1].detach == 0.2
    # The config as loaded is still held to it.
    with pytest.raises(ConfigError, match="leaves a gap"):
        cfg.with_overrides({"deals.d1.tranches.A.attach": 0.5})


# --------------------------------------------------------------------------- scenarios


def test_a_scenario_named_base_is_refused():
    d = base_dict()
    d["scenarios"] = {"base": {"set": {"tenants.lab.pd": 0.3}}, "ok": {"set": {"tenants.lab.pd": 0.2}}}
    text = errors_of(d)
    assert "scenarios.base: the name 'base' is reserved for the config as written" in text
    assert "would never be applied" in text


# --------------------------------------------------------------------------- lease starts


@pytest.mark.parametrize("start", [60, 61, 600])
def test_a_lease_starting_at_or_after_the_horizon_is_refused(start):
    d = base_dict()  # run.months = 60
    d["deals"][0]["leases"][1]["start_month"] = start
    text = errors_of(d)
    assert f"deals[0].leases[1].start_month: month {start} is not before run.months (60)" in text
    # Without the context validate_config passes, the root check finds it.
    with pytest.raises(ValidationError) as exc:
        Config.model_validate(d)
    assert ("deals", 0, "leases", 1, "start_month") in [e["loc"] for e in exc.value.errors()]


def test_a_lease_starting_before_the_horizon_is_accepted():
    d = base_dict()
    d["deals"][0]["leases"][1].update(start_month=59, term_months=12)
    make_config(d)


def test_a_lease_tape_row_starting_after_the_horizon_names_the_row(tmp_path, capsys):
    tape = TAPE.assign(start_month=[0, 40])  # SMALL has run.months = 36
    cfg = write(tmp_path, SMALL.format(leases=_tape(tmp_path, tape, "csv")))
    assert main(["validate", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "deals[0].lease_tape.row 1.start_month: month 40 is not before run.months (36)" in err
    assert "row 0" not in err


def test_a_scenario_that_shortens_the_run_past_a_lease_start_is_refused():
    d = base_dict()
    d["deals"][0]["legal_final_month"] = 6
    d["scenarios"] = {"short": {"set": {"run.months": 6}}}
    assert "Scenario 'short' failed config validation: deals[0].leases[1].start_month: month 6" in errors_of(d)


# --------------------------------------------------------------------------- sweep targets and tolerances


@pytest.mark.parametrize("value", [5, 1.0, 0.0, -0.01, math.nan, math.inf, "0.01", True])
def test_a_target_el_outside_0_1_is_refused(value):
    from engine.api.sweeps import check_target_el, min_subordination

    with pytest.raises(ValueError, match="target_el .*in \\(0, 1\\)"):
        check_target_el(value)
    # Before any path is simulated: min_subordination would otherwise bisect.
    with pytest.raises(ValueError, match="target_el"):
        min_subordination(make_config(), "d1", "A", value, "deals.d1.tranches.A.attach", 0.3, 0.95, 0.01, paths=100)
    assert check_target_el(0.01) == 0.01


def test_a_target_el_of_5_suggests_a_percent():
    from engine.api.sweeps import check_target_el

    with pytest.raises(ValueError, match=r"did you mean 0\.05 \(5%\)"):
        check_target_el(5)


@pytest.mark.parametrize("tol", [0, 0.0, -1e-3, math.nan, math.inf])
def test_a_tolerance_that_is_not_finite_and_positive_is_refused(tol):
    from engine.api.sweeps import bisect_min, check_tolerance, min_subordination

    with pytest.raises(ValueError, match="tol .*finite number > 0"):
        check_tolerance(tol)
    with pytest.raises(ValueError, match="tol"):
        bisect_min(lambda x: pytest.fail("evaluated"), 0.0, 1.0, tol)
    with pytest.raises(ValueError, match="tol"):
        min_subordination(make_config(), "d1", "A", 0.01, "deals.d1.tranches.A.attach", 0.3, 0.95, tol, paths=100)


@pytest.mark.parametrize("text", ["0", "-0.001", "nan", "inf", "abc"])
def test_tolerance_arg_rejects_bad_values_with_exit_2(text, capsys):
    from engine.cli.sweep import tolerance_arg

    parser = argparse.ArgumentParser(prog="dcabs breakeven")
    parser.add_argument("--tol", type=tolerance_arg, default=1e-3)
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["--tol", text])
    assert exc.value.code == 2 and "argument --tol" in capsys.readouterr().err
    assert parser.parse_args(["--tol", "1e-4"]).tol == 1e-4


def test_breakeven_tol_is_checked_by_the_cli(tmp_path, capsys):
    from engine.cli.main import _parser

    with pytest.raises(SystemExit) as exc:
        _parser().parse_args(["breakeven", "c.toml", "--tranche", "A", "--vary", "gpu.salvage", "--tol", "nan"])
    assert exc.value.code == 2 and "the tolerance must be a finite number > 0" in capsys.readouterr().err


@pytest.mark.parametrize("target, step, needle", [
    ("5", "0.05", "--target-el 5.0: an expected-loss target is a fraction"),
    ("nan", "0.05", "--target-el nan"),
    ("inf", "0.05", "--target-el inf"),
    ("0.01", "nan", "must be finite numbers"),  # the step is the bisection's tolerance
    ("0.01", "inf", "must be finite numbers"),
    ("0.01", "0", "the step must be non-zero"),
])
def test_cli_min_subordination_refuses_bad_targets_before_simulating(tmp_path, capsys, target, step, needle):
    cfg, out = small(tmp_path), tmp_path / "never"
    rc = main(["sweep", str(cfg), "--set", f"deals.d1.tranches.A.attach=0.2:0.9:{step}", "--target-el", target,
               "--tranche", "d1.A", "--vary", "deals.d1.tranches.A.attach", "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and "Traceback" not in err
    assert not out.exists()


# --------------------------------------------------------------------------- fuzz


POINT = st.one_of(st.floats(-0.2, 1.2), st.sampled_from([0.0, 0.1, 0.3, 1.0, math.nan, math.inf, None]))


@settings(max_examples=50, deadline=None)
@given(mutations=st.lists(st.tuples(st.sampled_from(FUZZ_PATHS), ANY_VALUE), max_size=3),
       stack=st.lists(st.tuples(st.integers(0, 2), POINT, POINT), max_size=3))
def test_fuzzed_configs_validate_or_raise_config_errors(mutations, stack):
    """Any edit of a valid config (wrong types, NaN, ∞, negatives, deleted keys, random points)
    either validates or is a ConfigError with located messages, never another exception."""
    d = copy.deepcopy(FUZZ_BASE)
    for k, a, b in stack:
        d["deals"][0]["tranches"][k].update(attach=a, detach=b)
    for path, value in mutations:
        try:
            set_at(d, path, value)
        except (KeyError, IndexError, TypeError):  # an earlier mutation removed or replaced the parent
            pass
    frozen = copy.deepcopy(d)
    try:
        validate_config(d)
    except ConfigError as exc:
        assert exc.errors and all(isinstance(p, str) and isinstance(m, str) and m for p, m in exc.errors)
    try:
        Config.model_validate(frozen)
    except ValidationError:
        pass


def test_a_repeated_set_path_is_an_error_not_last_wins(tmp_path, capsys):
    from engine.cli.main import main
    cfg = small(tmp_path)
    code = main(["sweep", str(cfg), "--set", "gpu.economic_life_months=24,30", "--set", "gpu.economic_life_months=36",
                 "--paths", "1000", "--out", str(tmp_path / "s"), "--no-progress"])
    assert code == 2
    assert "--set gpu.economic_life_months is given twice" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_threads_0_is_documented_where_it_is_accepted(capsys):
    from engine.cli.main import _parser

    with pytest.raises(SystemExit):
        _parser().parse_args(["run", "--help"])
    assert "--threads THREADS override run.threads (0, the default: every available core)" in " ".join(capsys.readouterr().out.split())
