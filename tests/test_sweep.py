"""Sweeps on common random numbers, and the bisection for minimum subordination."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from builders import make_config, small
from engine import ConfigError, load_config, run
from engine.plan.compile import compile_plan
from engine.plan.rng import DrawSource
from engine.simulation.execute import simulate
from engine.cli.main import main
from engine.api.sweeps import NoSolution, bisect_min, grid, min_subordination, point_configs, sweep
from engine.cli.sweep import parse_range, parse_set

PATHS = 3000


def test_ranges_include_stop_without_float_drift():
    assert parse_range("0.5:0.9:0.05") == [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9]
    assert parse_range("1:10:3") == [1, 4, 7, 10] and all(type(v) is int for v in parse_range("1:10:3"))
    assert parse_range("0:1:0.3") == [0.0, 0.3, 0.6, 0.9]
    assert parse_range("2e9:4e9:1e9") == [2e9, 3e9, 4e9]
    assert parse_range("0.9:0.5:-0.2") == [0.9, 0.7, 0.5]


def test_set_specs():
    assert parse_set("tenants.lab.pd=0.01,0.02") == ("tenants.lab.pd", [0.01, 0.02])
    assert parse_set("gpu.curve=straight_line,\"declining\"") == ("gpu.curve", ["straight_line", "declining"])
    assert parse_set("run.months=36") == ("run.months", [36])
    for bad, needle in [("tenants.lab.pd", "PATH=start:stop:step"), ("a=1:2:0", "non-zero"), ("a=1:x:1", "numbers"),
                        ("a=2:1:1", "towards stop")]:
        with pytest.raises(ValueError, match=needle):
            parse_set(bad)
    assert grid({"a": [1, 2], "b": [3, 4]}) == [{"a": 1, "b": 3}, {"a": 1, "b": 4}, {"a": 2, "b": 3}, {"a": 2, "b": 4}]


def test_a_point_equal_to_the_base_reproduces_the_base_run_exactly():
    cfg = make_config()
    table = sweep(cfg, {"tenants.lab.pd": [0.06, 0.2]}, paths=PATHS)
    assert list(table.columns[:2]) == ["tenants.lab.pd", "scenario"] and len(table) == 2 * 6
    base = run(cfg, paths=PATHS).tranches
    mine = table[table["tenants.lab.pd"] == 0.06].drop(columns="tenants.lab.pd").reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, base, check_exact=True)


def test_common_random_numbers_shrink_the_noise_of_differences():
    """Points share the seed, so the EL difference between two close points varies far less from
    seed to seed than the difference between runs on independent seeds."""
    cfg = make_config()
    path, lo, hi = "tenants.neo.pd", 0.10, 0.12
    shared, independent = [], []
    for seed in range(1, 7):
        t = sweep(cfg, {path: [lo, hi]}, paths=1000, seed=seed)
        el = t[t["view"] == "cashflow"].groupby(path)["el"].sum()
        shared.append(el[hi] - el[lo])
        other = run(cfg.with_overrides({path: hi}), paths=1000, seed=seed + 100).tranches
        independent.append(other[other["view"] == "cashflow"]["el"].sum() - el[lo])
    assert pd.Series(shared).std() < 0.25 * pd.Series(independent).std()


def test_two_dimensions_and_scenarios_form_the_product():
    d = make_config().resolved()
    d["scenarios"] = {"stress": {"set": {"gpu.economic_life_months": 18}}}
    from engine import validate_config

    table = sweep(validate_config(d), {"tenants.lab.pd": [0.05, 0.1], "deals.d1.tranches.B.coupon": [0.08, 0.1]}, scenario="all", paths=1000)
    assert len(table) == 2 * 2 * 2 * 6
    assert set(map(tuple, table[["tenants.lab.pd", "deals.d1.tranches.B.coupon", "scenario"]].drop_duplicates().values)) == {
        (a, b, s) for a in (0.05, 0.1) for b in (0.08, 0.1) for s in ("base", "stress")}


def test_every_bad_point_is_named_before_anything_runs():
    with pytest.raises(ConfigError) as exc:
        sweep(make_config(), {"deals.d1.tranches.A.detach": [0.9, 0.2, 0.25]}, paths=PATHS)
    text = str(exc.value)
    assert "point deals.d1.tranches.A.detach=0.2: deals[0].tranches[0].detach: detach (0.2) must exceed attach (0.3)" in text
    assert "detach=0.25" in text and "detach=0.9" not in text
    with pytest.raises(ConfigError, match="unknown path 'deals.d1.tranches.Z.coupon'.*has no item 'Z'"):
        sweep(make_config(), {"deals.d1.tranches.Z.coupon": [0.1]}, paths=PATHS)


def test_bisection_finds_the_threshold_of_a_monotone_function():
    calls = []

    def meets(x):
        calls.append(x)
        return math.exp(-x) <= 0.2  # true from x = ln 5 on

    x, n = bisect_min(meets, 0.0, 4.0, 1e-6)
    assert math.log(5) <= x <= math.log(5) + 1e-6 and n == len(calls)
    assert n == 2 + math.ceil(math.log2(4.0 / 1e-6))
    assert bisect_min(lambda x: True, 1.0, 2.0, 0.1) == (1.0, 2)
    with pytest.raises(NoSolution, match=r"no value in \[0.0, 1.0\]"):
        bisect_min(lambda x: x > 3, 0.0, 1.0, 0.1)


def net_losses(cfg, paths: int) -> np.ndarray:
    """NL_T of the config's first deal on paths 0..paths-1, straight from the kernel (no sweep)."""
    return simulate(compile_plan(cfg), DrawSource.for_config(cfg), 0, paths).deal_net_loss[:, 0]


def allocation_el(nl: np.ndarray, attach: float, detach: float = 1.0) -> float:
    """The allocation view's EL by its definition (docs/model.md): the mean over paths of
    min(max(NL − attach, 0), detach − attach) / (detach − attach)."""
    w = detach - attach
    return float(np.mean(np.minimum(np.maximum(nl - attach, 0.0), w) / w))


def least_attach(nl: np.ndarray, target: float, lo: float, hi: float) -> float:
    """The smallest attach in [lo, hi] with allocation_el <= target (it falls continuously as attach
    rises), by 60 halvings of the bracket: far below any tolerance used here."""
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if allocation_el(nl, mid) <= target else (mid, hi)
    return hi


def test_min_subordination_end_to_end():
    cfg = make_config()
    kw = dict(paths=2000, chunk_paths=2000)
    path = "deals.d1.tranches.A.attach"
    kw["resize_notes"] = False  # the allocation view: only A's own points matter
    x = min_subordination(cfg, "d1", "A", 0.01, path, 0.3, 0.95, 0.01, **kw)

    def el(v):
        t = sweep(cfg, {path: [v]}, **kw)
        return float(t[(t.tranche == "A") & (t.view == "allocation")]["el"].iloc[0])

    assert 0.3 < x < 0.95 and not x.at_low_end
    assert el(x) <= 0.01 < el(x - 0.01)
    # Independently of sweep and the bisection: the allocation EL recomputed from the kernel's
    # per-path net losses on the same seed. It is the EL the run reports at the configured attach
    # (so these are the run's paths), the target is crossed between x - tol and x, and x lies
    # within tol above the exact minimum of the same function.
    nl = net_losses(cfg, 2000)
    base = run(cfg, paths=2000, chunk_paths=2000).tranches
    assert allocation_el(nl, 0.3) == pytest.approx(
        base[(base.tranche == "A") & (base.view == "allocation")]["el"].iloc[0], rel=1e-12)
    assert x.el == pytest.approx(allocation_el(nl, x), rel=1e-12)
    assert allocation_el(nl, x) <= 0.01 < allocation_el(nl, x - 0.01)
    exact = least_attach(nl, 0.01, 0.3, 0.95)
    assert exact <= x <= exact + 0.01
    # What the answer says it reaches is what a plain sweep at that value gives.
    t = sweep(cfg, {path: [float(x)]}, **kw)
    row = t[(t.tranche == "A") & (t.view == "allocation")].iloc[0]
    assert (x.el, x.el_se) == (row["el"], row["el_se"]) and x.evaluations >= 2
    low = min_subordination(cfg, "d1", "A", 0.5, path, 0.3, 0.95, 0.01, **kw)
    assert float(low) == 0.3 and low.at_low_end and low.el <= 0.5
    assert "the bracket's low end 0.3 already meets the target" in low.describe(path, 0.5, 0.3, 0.01)
    with pytest.raises(NoSolution, match="widen the bracket"):
        min_subordination(cfg, "d1", "A", 1e-9, path, 0.3, 0.4, 0.01, **kw)
    with pytest.raises(ValueError, match="no tranche d1.Z"):
        min_subordination(cfg, "d1", "Z", 0.01, path, 0.3, 0.95, 0.01, **kw)


def test_cli_sweep_writes_one_table(tmp_path, capsys):
    cfg = small(tmp_path)
    out = tmp_path / "sw"
    rc = main(["sweep", str(cfg), "--set", "tenants.lab.pd=0.02:0.06:0.02", "--set", "deals.d1.tranches.B.coupon=0.08,0.1",
               "--paths", "1000", "--out", str(out), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    table = pd.read_parquet(out / "sweep.parquet")
    assert len(table) == 3 * 2 * 4 and list(table.columns[:3]) == ["tenants.lab.pd", "deals.d1.tranches.B.coupon", "scenario"]
    assert len(pd.read_csv(out / "sweep.csv")) == len(table)
    assert json.loads((out / "manifest.json").read_text())["dimensions"]["tenants.lab.pd"] == [0.02, 0.04, 0.06]
    # A finished sweep is never replaced silently.
    assert main(["sweep", str(cfg), "--set", "tenants.lab.pd=0.02", "--out", str(out), "--no-progress"]) == 2


def test_cli_sweep_errors_exit_2_and_write_nothing(tmp_path, capsys):
    cfg = small(tmp_path)
    out = tmp_path / "never"
    assert main(["sweep", str(cfg), "--set", "deals.d1.tranches.A.attach=0.5:1.5:0.5", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "point deals.d1.tranches.A.attach=1.0: deals[0].tranches[0].detach" in err
    assert "point deals.d1.tranches.A.attach=1.5: deals[0].tranches[0].attach" in err
    assert main(["sweep", str(cfg), "--set", "tenants.nobody.pd=0.1", "--out", str(out)]) == 2
    assert "unknown path 'tenants.nobody.pd'" in capsys.readouterr().err
    assert main(["sweep", str(cfg), "--set", "tenants.lab.pd=0.1", "--tranche", "d1.A", "--out", str(out)]) == 2
    assert "go together" in capsys.readouterr().err
    assert not out.exists()


def test_cli_min_subordination(tmp_path, capsys):
    cfg = small(tmp_path)
    out = tmp_path / "sub"
    rc = main(["sweep", str(cfg), "--set", "deals.d1.tranches.A.attach=0.2:0.9:0.05", "--target-el", "0.01",
               "--tranche", "d1.A", "--vary", "deals.d1.tranches.A.attach", "--paths", "1000", "--out", str(out),
               "--no-progress", "--keep-notes"])
    assert rc == 0, capsys.readouterr().err
    row = pd.read_parquet(out / "sweep.parquet").iloc[0]
    found = row["deals.d1.tranches.A.attach"]
    assert row["tranche"] == "A" and row["target_el"] == 0.01 and 0.2 < found <= 0.9
    # The answer against the allocation EL recomputed from the kernel's per-path net losses of the
    # same config and seed (no sweep, no CLI): the EL it reports, the target crossed between
    # found - step and found, and found within one step above the exact minimum.
    nl = net_losses(load_config(cfg).with_overrides({"run.paths": 1000}), 1000)
    assert row["el"] == pytest.approx(allocation_el(nl, found), rel=1e-12)
    assert allocation_el(nl, found) <= 0.01 < allocation_el(nl, found - 0.05)
    exact = least_attach(nl, 0.01, 0.2, 0.9)
    assert exact <= found <= exact + 0.05
    assert main(["sweep", str(cfg), "--set", "deals.d1.tranches.A.attach=0.2:0.3:0.05", "--target-el", "1e-9",
                 "--tranche", "d1.A", "--vary", "deals.d1.tranches.A.attach", "--paths", "1000", "--out",
                 str(tmp_path / "none"), "--no-progress"]) == 2
    assert "widen the bracket" in capsys.readouterr().err


def test_a_grid_and_a_search_on_one_config_do_not_share_a_default_out(tmp_path, monkeypatch, capsys):
    cfg = small(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", str(cfg), "--set", "deals.d1.tranches.A.attach=0.3,0.4", "--paths", "1000", "--no-progress"]) == 0
    assert main(["sweep", str(cfg), "--set", "deals.d1.tranches.A.attach=0.2:0.9:0.05", "--target-el", "0.01", "--keep-notes",
                 "--tranche", "d1.A", "--vary", "deals.d1.tranches.A.attach", "--paths", "1000", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["c-min-d1.A", "c-sweep"]
    row = pd.read_parquet(tmp_path / "runs" / "c-min-d1.A" / "sweep.parquet").iloc[0]
    assert f"minimum deals.d1.tranches.A.attach = {row['deals.d1.tranches.A.attach']:g}" in out
    assert f"EL {row['el']:.6f} ± {row['el_se']:.6f} (Monte Carlo SE)" in out


def test_moving_an_attachment_resizes_the_notes_by_the_pools_slice():
    from engine.plan.compile import compile_plan

    cfg = make_config()
    p0 = float(compile_plan(cfg).pool.deal_pool_balance[0])
    (_, _, moved), = point_configs(cfg, {"deals.d1.tranches.A.attach": [0.4]}, ["base"], {})
    a, b, e = moved.deals[0].tranches
    # By hand from base_dict: A 60m on [0.3, 1], B 20m on [0.1, 0.3], E 20m on [0, 0.1].
    assert (a.attach, a.detach, b.attach, b.detach, e.attach, e.detach) == (0.4, 1.0, 0.1, 0.4, 0.0, 0.1)
    assert a.balance == pytest.approx(60e6 - 0.1 * p0, rel=1e-12) and b.balance == pytest.approx(20e6 + 0.1 * p0, rel=1e-12)
    assert e.balance == 20e6
    (_, _, top), = point_configs(cfg, {"deals.d1.tranches.A.detach": [0.9]}, ["base"], {})
    assert top.deals[0].tranches[0].balance == pytest.approx(60e6 - 0.1 * p0, rel=1e-12)  # nothing above A takes it
    assert [t.balance for t in top.deals[0].tranches[1:]] == [20e6, 20e6]
    (_, _, kept), = point_configs(cfg, {"deals.d1.tranches.A.attach": [0.4]}, ["base"], {}, resize_notes=False)
    assert [t.balance for t in kept.deals[0].tranches] == [60e6, 20e6, 20e6] and kept.deals[0].tranches[1].detach == 0.3
    with pytest.raises(ConfigError, match="leaves tranche 'A' a balance of"):
        point_configs(cfg, {"deals.d1.tranches.A.attach": [0.3 + 61e6 / p0]}, ["base"], {})


def test_a_resized_sweep_at_the_base_point_is_the_base_run_and_the_cashflow_view_answers_the_thickness():
    cfg = make_config()
    kw = dict(paths=2000, chunk_paths=2000)
    path = "deals.d1.tranches.A.attach"
    base = run(cfg, **kw).tranches
    at_base = sweep(cfg, {path: [0.3]}, **kw)
    pd.testing.assert_frame_equal(at_base.drop(columns=path).reset_index(drop=True), base.reset_index(drop=True),
                                  check_exact=True, check_like=True)
    # A thinner senior loses less in the waterfall; with --keep-notes the cash flows cannot see it.
    pts = [0.3, 0.35, 0.4]
    resized = sweep(cfg, {path: pts}, **kw)
    kept = sweep(cfg, {path: pts}, resize_notes=False, **kw)
    el = lambda t: t[(t.tranche == "A") & (t.view == "cashflow")]["el"].to_numpy()  # noqa: E731
    assert len(set(el(kept))) == 1
    assert el(resized)[0] > el(resized)[1] > el(resized)[2]
    target = float(el(resized)[1])
    found = min_subordination(cfg, "d1", "A", target, path, 0.3, 0.45, 0.005, view="cashflow", **kw)
    assert 0.3 < found <= 0.355 and found.el <= target
    # Independently of sweep's resizing: the notes resized by hand (the pool slice (v − 0.3)·P0
    # passes from A to B, as in test_moving_an_attachment_resizes_the_notes_by_the_pools_slice) and
    # run plainly on the same seed. The target is crossed between found - tol and found.
    p0 = float(compile_plan(cfg).pool.deal_pool_balance[0])

    def by_hand(v):
        moved = cfg.with_overrides({"deals.d1.tranches.A.attach": v, "deals.d1.tranches.B.detach": v,
                                    "deals.d1.tranches.A.balance": 60e6 - (v - 0.3) * p0,
                                    "deals.d1.tranches.B.balance": 20e6 + (v - 0.3) * p0})
        t = run(moved, **kw).tranches
        return float(t[(t.tranche == "A") & (t.view == "cashflow")]["el"].iloc[0])

    assert found.el == pytest.approx(by_hand(found), rel=1e-12)
    assert by_hand(found) <= target < by_hand(found - 0.005)


def test_resizing_moves_pari_passu_classes_together_and_one_boundary_per_point():
    from engine import validate_config
    from engine.plan.compile import compile_plan

    d = make_config().resolved()
    a = d["deals"][0]["tranches"][0]
    d["deals"][0]["tranches"].insert(1, {**a, "name": "A2", "balance": 30e6})
    a["balance"] = 30e6
    for step in d["deals"][0]["waterfall"]:
        if "A" in (step.get("classes") or []):
            step["classes"].insert(1, "A2")
    cfg = validate_config(d)
    p0 = float(compile_plan(cfg).pool.deal_pool_balance[0])
    (_, _, moved), = point_configs(cfg, {"deals.d1.tranches.A.attach": [0.4]}, ["base"], {})
    by = {t.name: t for t in moved.deals[0].tranches}
    assert by["A"].attach == by["A2"].attach == by["B"].detach == 0.4
    assert by["A"].balance == pytest.approx(30e6 - 0.05 * p0, rel=1e-12) == by["A2"].balance
    assert by["B"].balance == pytest.approx(20e6 + 0.1 * p0, rel=1e-12)
    assert sum(t.balance for t in moved.deals[0].tranches) == pytest.approx(100e6, rel=1e-12)
    # Two boundaries of one deal in one point are refused whatever the order of the --set options.
    for dims in ({"deals.d1.tranches.B.attach": [0.2], "deals.d1.tranches.B.detach": [0.4]},
                 {"deals.d1.tranches.B.detach": [0.4], "deals.d1.tranches.B.attach": [0.2]}):
        with pytest.raises(ConfigError, match="moves one boundary of deal 'd1' per point"):
            point_configs(cfg, dims, ["base"], {})


def test_resizing_accepts_index_paths_and_leaves_bad_values_to_validation(tmp_path, capsys):
    cfg = make_config()
    (_, _, by_name), = point_configs(cfg, {"deals.d1.tranches.A.attach": [0.35]}, ["base"], {})
    (_, _, by_index), = point_configs(cfg, {"deals.0.tranches.0.attach": [0.35]}, ["base"], {})
    assert by_name.resolved() == by_index.resolved()
    d = cfg.resolved()
    e = d["deals"][0]["tranches"][2]
    e["attach"] = e["detach"] = None
    from engine import validate_config

    no_points = validate_config(d)
    with pytest.raises(ConfigError, match="attach"):  # not silently dropped
        point_configs(no_points, {"deals.d1.tranches.E.detach": [0.05]}, ["base"], {})
    path = small(tmp_path)
    assert main(["sweep", str(path), "--set", "deals.d1.tranches.A.attach=abc", "--paths", "100", "--out", str(tmp_path / "s"),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "point deals.d1.tranches.A.attach=abc" in err and "Traceback" not in err
