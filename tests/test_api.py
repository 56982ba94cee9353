"""The notebook-facing API: open_run round trips, with_overrides, Results.plot."""

from __future__ import annotations

import pandas as pd
import pytest

from builders import base_dict, make_config, with_network
from engine import ConfigError, open_run, run


def test_open_run_round_trips_every_table_with_dtypes(tmp_path):
    d = base_dict()
    d["scenarios"] = {"high_pd": {"set": {"tenants.lab.pd": 0.3}}}
    res = run(make_config(d), scenario="all", paths=2000)
    res.write(tmp_path / "r")
    back = open_run(tmp_path / "r")
    assert set(back.tables) == set(res.tables)
    for name, frame in res.tables.items():
        pd.testing.assert_frame_equal(back.tables[name], frame, check_exact=True)
    assert back.manifest["config_sha256"] == res.manifest["config_sha256"]


def test_open_run_refuses_an_unfinished_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no manifest.json"):
        open_run(tmp_path)


def test_with_overrides_changes_only_what_it_names():
    cfg = make_config()
    new = cfg.with_overrides({"deals.d1.tranches.A.detach": 0.9, "gpu.economic_life_months": 18})
    assert new.deals[0].tranches[0].detach == 0.9 and new.gpu.economic_life_months == 18
    assert new.tenants == cfg.tenants and cfg.deals[0].tranches[0].detach == 1.0
    with pytest.raises(ConfigError, match="no item 'Z'"):
        cfg.with_overrides({"deals.d1.tranches.Z.detach": 0.9})
    with pytest.raises(ConfigError, match="detach"):
        cfg.with_overrides({"deals.d1.tranches.A.detach": 0.1})


def test_overwrite_drops_tables_the_new_run_does_not_produce_and_manifest_is_strict_json(tmp_path):
    import json

    net = with_network()
    net["tenants"][1]["pd"] = 0.0  # threshold −∞: the manifest must still be strict JSON
    run(make_config(net), paths=1000).write(tmp_path / "r")
    assert (tmp_path / "r" / "summary" / "network.parquet").exists()
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text(), parse_constant=lambda c: pytest.fail(c))
    assert manifest["tenant_thresholds"]["hyper"] is None
    run(make_config(), paths=1000).write(tmp_path / "r", overwrite=True)
    assert not (tmp_path / "r" / "summary" / "network.parquet").exists()
    assert open_run(tmp_path / "r").network is None


def test_path_level_tables_reconcile_with_the_summary_and_ignore_chunking(tmp_path):
    import numpy as np

    cfg = make_config(with_network())
    a = run(cfg, paths=2500, chunk_paths=1000, out=tmp_path / "a", paths_out=True)
    b = run(cfg, paths=2500, chunk_paths=2500, out=tmp_path / "b", paths_out=True)
    ta, tb = a.paths("tranches"), open_run(tmp_path / "b").paths("tranches")
    pd.testing.assert_frame_equal(ta, tb, check_exact=True)
    assert len(ta) == 2500 * 3 and ta["path"].nunique() == 2500
    cash = a.tranches[a.tranches.view == "cashflow"]
    el = ta.groupby("tranche", sort=False)["principal_loss"].mean().to_numpy()
    np.testing.assert_allclose(el, cash["el"].to_numpy(), rtol=0, atol=1e-12)
    firms = a.paths("firms")
    p_default = (firms["default_month"] <= 60).groupby(firms["firm"], sort=False).mean().to_numpy()
    np.testing.assert_allclose(p_default, a.network["p_default"].to_numpy(), rtol=0, atol=1e-15)
    assert set(a.paths("deals").columns) >= {"path", "deal", "net_loss", "defaults", "reserve_used", "scenario"}
    import pyarrow.dataset as ds
    only = a.paths("tranches", filters=ds.field("tranche") == "B", columns=["path", "principal_loss"])
    assert list(only.columns[:2]) == ["path", "principal_loss"] and len(only) == 2500


def test_path_tables_need_a_run_directory_and_say_so(tmp_path):
    with pytest.raises(ValueError, match="needs out"):
        run(make_config(), paths=100, paths_out=True)
    res = run(make_config(), paths=100, out=tmp_path / "r")
    with pytest.raises(FileNotFoundError, match="--paths-out"):
        res.paths()
    run(make_config(), paths=100, out=tmp_path / "s", paths_out=True)
    run(make_config(), paths=100, out=tmp_path / "s", overwrite=True)
    assert not (tmp_path / "s" / "paths").exists()  # no stale path tables from the overwritten run


def test_scenarios_that_switch_the_network_off_keep_every_table_whatever_the_order():
    d = with_network()
    d["scenarios"] = {"no_network": {"set": {"network.enabled": False}}}
    cfg = make_config(d)
    for order in ("base,no_network", "no_network,base"):
        res = run(cfg, scenario=order, paths=300)
        assert list(res.network["scenario"].unique()) == ["base"]
        assert set(res.tranches["scenario"]) == {"base", "no_network"}


def test_long_compounding_shortfalls_stay_exact():
    # (1 + c/12)^months compounding of an unpaid coupon reaches thousands of times the balance.
    d = base_dict()
    d["run"]["months"] = 360
    d["deals"][0]["legal_final_month"] = 360
    d["deals"][0]["tranches"][1]["coupon"] = 0.30
    import numpy as np

    from engine.plan.compile import compile_plan
    from engine.plan.rng import DrawSource
    from engine.simulation.execute import simulate

    cfg = make_config(d)
    res = run(cfg, paths=300)
    per_path = simulate(compile_plan(cfg), DrawSource.for_config(cfg), 0, 300).tranche_shortfall[:, 1]
    assert per_path.max() ** 2 > 2.0**21  # the squares overflowed the earlier fixed-point range
    b = res.tranches[(res.tranches.tranche == "B") & (res.tranches.view == "cashflow")]
    np.testing.assert_allclose(b["interest_shortfall_mean"].item(), per_path.mean(), rtol=1e-12)
    np.testing.assert_allclose(res.stats["base"].shortfall.variance()[1], per_path.var(ddof=1), rtol=1e-9)


@pytest.mark.parametrize("edit,needle", [
    (lambda d: d["deals"][0]["tranches"][0].update(amortization="level", amort_start_month=60),
     "deals[0].tranches[0].amort_start_month: must come before amort_end_month"),
    (lambda d: [lease.update(monthly_rent=0.0, gpu_cost=0.0, shell_value=0.0) for lease in d["deals"][0]["leases"]],
     "deals[0].leases: the pool is worth nothing"),
])
def test_configs_the_kernels_cannot_honour_are_refused(edit, needle):
    d = base_dict()
    edit(d)
    with pytest.raises(ConfigError) as exc:
        make_config(d)
    assert needle in str(exc.value)


def test_import_engine_and_validate_load_neither_numba_nor_the_kernels():
    # What is imported, not how long it takes: `import engine` and `dcabs validate` must stay light.
    import subprocess
    import sys

    code = ("import sys, engine\nheavy = {'numba', 'pandas', 'matplotlib', 'kernels', 'engine.api.runs'} & set(sys.modules)\n"
            "assert not heavy, heavy\nfrom engine.cli.main import main\nassert main(['validate', sys.argv[1]]) == 0\n"
            "heavy = {'numba', 'matplotlib', 'kernels', 'engine.api.runs', 'engine.simulation.backends'} & set(sys.modules)\nassert not heavy, heavy\n"
            "assert callable(engine.run) and callable(engine.sweep)\nimport engine.api.runs, engine.api.sweeps\n"
            "assert callable(engine.run) and callable(engine.sweep), 'importing the modules rebound the functions'\n")
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code, str(root / "configs" / "hyperion.toml")], capture_output=True, text=True, cwd=root)
    assert done.returncode == 0, done.stderr
