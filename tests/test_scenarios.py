"""Named scenarios: dotted-path overrides, validated up front, errors naming the scenario."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from builders import base_dict, make_config
from engine import load_config, run
from engine.cli.main import main
from engine.config import ConfigError
from engine.config import select, set_path

ROOT = Path(__file__).resolve().parents[1]


def with_scenarios(**scenarios) -> dict:
    d = base_dict()
    d["scenarios"] = scenarios
    return d


def test_set_path_names_list_items_by_name_or_index():
    d = base_dict()
    set_path(d, "deals.d1.tranches.B.coupon", 0.11)
    set_path(d, "tenants.1.pd", 0.2)
    set_path(d, "deals.0.reserve.target_months", 3)
    assert d["deals"][0]["tranches"][1]["coupon"] == 0.11
    assert d["tenants"][1]["pd"] == 0.2 and d["deals"][0]["reserve"]["target_months"] == 3


def test_a_scenario_is_the_base_config_with_its_overrides():
    cfg = make_config(with_scenarios(stress={"set": {"tenants.lab.pd": 0.3, "gpu.economic_life_months": 18}}))
    s = cfg.scenario("stress")
    assert s.tenants[0].pd == 0.3 and s.gpu.economic_life_months == 18
    assert s.tenants[1] == cfg.tenants[1] and not s.scenarios
    assert cfg.scenario("base") is cfg


@pytest.mark.parametrize("path,needle", [
    ("tenants.ghost.pd", "Scenario 'bad': tenants has no item 'ghost' (names: lab, hyper, neo)"),
    ("gpu.economic_lfe_months", "Scenario 'bad': gpu has no field 'economic_lfe_months'"),
    ("deals.d1.tranches.A.coupon.x", "deals.d1.tranches.A.coupon is a value"),
])
def test_an_unknown_dotted_path_is_an_error_naming_the_scenario(path, needle):
    with pytest.raises(ConfigError) as exc:
        make_config(with_scenarios(bad={"set": {path: 1}}))
    assert exc.value.errors[0][0] == f"scenarios.bad.set.{path}"
    assert needle in exc.value.errors[0][1]


def test_an_invalid_merged_config_names_the_scenario_and_the_field():
    d = with_scenarios(ok={"set": {"tenants.lab.pd": 0.2}}, broken={"set": {"deals.d1.tranches.A.detach": 0.1}},
                       worse={"set": {"tenants.neo.rho": 2}})
    with pytest.raises(ConfigError) as exc:
        make_config(d)
    text = str(exc.value)
    assert "Scenario 'broken' failed config validation: deals[0].tranches[0].detach: detach (0.1) must exceed attach (0.3)" in text
    assert "Scenario 'worse' failed config validation: tenants[2].rho" in text
    assert "'ok'" not in text


def test_select():
    cfg = make_config(with_scenarios(a={"set": {"tenants.lab.pd": 0.2}}, b={"set": {"tenants.lab.pd": 0.3}}))
    assert select(cfg, None) == ["base"] and select(cfg, "all") == ["base", "a", "b"] and select(cfg, "b,a") == ["b", "a"]
    with pytest.raises(ConfigError, match="unknown scenario 'c'"):
        select(cfg, "a,c")


def test_run_all_scenarios_equals_running_each_alone():
    cfg = make_config(with_scenarios(high_pd={"set": {"tenants.lab.pd": 0.3}}))
    both = run(cfg, scenario="all", paths=3000)
    assert list(both.tranches["scenario"].unique()) == ["base", "high_pd"] and both.tranches.columns[0] == "scenario"
    alone = run(cfg.scenario("high_pd"), paths=3000).tranches.drop(columns="scenario")
    mine = both.tranches[both.tranches.scenario == "high_pd"].drop(columns="scenario").reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, alone, check_exact=True)
    base = both.tranches[both.tranches.scenario == "base"].set_index(["tranche", "view"])["el"]
    high = both.tranches[both.tranches.scenario == "high_pd"].set_index(["tranche", "view"])["el"]
    assert (high >= base).all() and (high > base).any()  # common random numbers: a higher PD never helps here


def test_cli_scenario_all_on_the_examples(tmp_path, capsys):
    for name in ("hyperion", "ai_bubble"):
        out = tmp_path / name
        assert main(["run", str(ROOT / "configs" / f"{name}.toml"), "--scenario", "all", "--paths", "2000",
                     "--out", str(out), "--no-progress", "--no-report"]) == 0
        t = pd.read_parquet(out / "summary" / "tranches.parquet")
        cfg = load_config(ROOT / "configs" / f"{name}.toml")
        assert list(t["scenario"].unique()) == ["base", *cfg.scenarios]
    capsys.readouterr()
    assert main(["run", str(ROOT / "configs" / "hyperion.toml"), "--scenario", "nope", "--out", str(tmp_path / "x")]) == 2
    assert "unknown scenario 'nope'" in capsys.readouterr().err and not (tmp_path / "x").exists()
