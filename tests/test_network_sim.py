"""The network inside the simulation: switched off it is the hazard-only model; switched on it can
only make tenant defaults earlier; its tables reconcile; bad network input names the field."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from builders import base_dict, make_config, with_network
from engine import load_config, run
from engine.cli.main import main
from engine.plan.compile import compile_plan
from engine.config import ConfigError
from engine.plan.rng import DrawSource
from engine.simulation.execute import simulate, trace

ROOT = Path(__file__).resolve().parents[1]
def test_switched_off_network_is_the_hazard_only_model():
    plain = run(make_config(base_dict()), paths=3000)
    off = run(make_config(with_network(enabled=False)), paths=3000)
    pd.testing.assert_frame_equal(plain.tranches, off.tranches, check_exact=True)
    pd.testing.assert_frame_equal(plain.deals, off.deals, check_exact=True)
    assert off.network is None and off.cascades is None  # no firm table that would read as "never defaults"


def test_network_only_makes_defaults_earlier_on_every_path():
    on = make_config(with_network())
    plan = compile_plan(on)
    source = DrawSource.for_config(on)
    off_plan = plan.without_network()
    out_on, out_off = simulate(plan, source, 0, 2000), simulate(off_plan, source, 0, 2000)
    assert (out_on.deal_defaults >= out_off.deal_defaults).all()
    assert (out_on.deal_defaults > out_off.deal_defaults).any(), "the network never bit: the test is vacuous"
    for p in range(0, 2000, 97):
        assert (trace(plan, source, p).tau <= trace(off_plan, source, p).tau).all()
    assert (out_on.cascade > 0).any()


def test_network_tables_reconcile_and_compare_without_matches_a_network_free_run():
    cfg = make_config(with_network())
    res = run(cfg, paths=4000)
    net, cas = res.network, res.cascades
    np.testing.assert_allclose(net["p_own"] + net["p_contagion"], net["p_default"], rtol=0, atol=1e-15)
    # The firm table against the per-path outputs it summarises, counted here from the kernel's rows.
    plan, source = compile_plan(cfg), DrawSource.for_config(cfg)
    on, off = simulate(plan, source, 0, 4000), simulate(plan.without_network(), source, 0, 4000)
    by_T = on.firm_default_month <= cfg.run.months
    np.testing.assert_allclose(net["p_default"], by_T.mean(axis=0), rtol=0, atol=1e-15)
    np.testing.assert_allclose(net["p_own"], (by_T & (on.firm_own == 1)).mean(axis=0), rtol=0, atol=1e-15)
    assert net["p_contagion"].max() > 0.1  # contagion happens in this network: the checks below are not vacuous
    assert cas["probability"].sum() == pytest.approx(1.0, abs=1e-12)
    # Every contagion default is attributed to some own failure: the attributions add up to the cascades.
    n = res.stats['base'].n_paths
    mean_cascade = (cas["cascade_size"] * cas["paths_with_size"]).sum() / n
    assert net["expected_defaults_caused"].sum() == pytest.approx(mean_cascade, rel=1e-12)
    # Contagion defaults: E[# contagion] = Σ_i P(contagion_i)
    assert net["p_contagion"].sum() == pytest.approx(mean_cascade, rel=1e-12)
    plain = run(make_config(base_dict()), paths=4000)
    np.testing.assert_array_equal(res.tranches["el_without_network"].to_numpy(), plain.tranches["el"].to_numpy())
    # On common random numbers the network's effect is a paired difference: earlier defaults can
    # lower a path's loss (an earlier sale at a higher collateral value), so no per-path inequality
    # holds, but the mean difference is the table's, and the paired SE shows it is an increase.
    cash = res.tranches[res.tranches["view"] == "cashflow"]
    diff = on.tranche_loss - off.tranche_loss
    np.testing.assert_allclose(cash["el"] - cash["el_without_network"], diff.mean(axis=0), rtol=1e-9, atol=1e-15)
    paired_se = diff.std(axis=0, ddof=1) / np.sqrt(diff.shape[0])
    assert (paired_se < cash["el_se"].to_numpy()).all()  # pairing is what makes the comparison sharp
    assert (diff.mean(axis=0) > -3 * paired_se).all()
    assert (diff.mean(axis=0)[1:] > 3 * paired_se[1:]).all()  # B and E lose more with the network


@pytest.mark.parametrize("edit,needle", [
    (lambda n: n["obligations"][0].update(amount=-5.0), "network.obligations[0].amount: Input should be greater than or equal to 0"),
    (lambda n: n["obligations"][1].update(payee="nobody"), "network.obligations[1].payee: unknown firm 'nobody'"),
    (lambda n: n["obligations"][2].update(payee="cloud"), "network.obligations[2].payee: firm 'cloud' cannot pay itself"),
    (lambda n: n["firms"][1].update(tenant="ghost"), "network.firms[1].tenant: unknown tenant 'ghost'"),
    (lambda n: n["firms"][2].update(tenant="lab"), "network.firms[2].tenant: tenant 'lab' is already firm 'lab'"),
    (lambda n: n.update(alpha=1.5), "network.alpha: Input should be less than or equal to 1"),
])
def test_bad_network_input_names_the_field(edit, needle):
    d = with_network()
    edit(d["network"])
    with pytest.raises(ConfigError) as exc:
        make_config(d)
    assert needle in str(exc.value)


def test_ai_bubble_example_end_to_end(tmp_path, capsys):
    out = tmp_path / "ab"
    assert main(["run", str(ROOT / "configs" / "ai_bubble.toml"), "--paths", "4000", "--out", str(out), "--no-progress", "--no-report"]) == 0
    printed = capsys.readouterr().out
    assert "own failure vs contagion" in printed and "el_without_network" in printed
    net = pd.read_parquet(out / "summary" / "network.parquet")
    assert list(net["firm"]) == ["chip_vendor", "ai_lab", "cloud_vendor", "hyperscaler", "neocloud"]
    assert (out / "summary" / "cascades.parquet").exists()
    res = run(load_config(ROOT / "configs" / "ai_bubble.toml"), paths=4000)
    pd.testing.assert_frame_equal(res.network, net, check_exact=True)
