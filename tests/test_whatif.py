"""Deterministic what-ifs: the monthly statement (`dcabs trace`) and the break-even search
(`dcabs breakeven`), checked against closed forms worked out here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from builders import base_dict, make_config
from engine import ConfigError, breakeven, run, statement
from engine.cli.main import main

COST, RENT, MONTHS, BALANCE, LIQ, SALVAGE = 100e6, 1e6, 24, 90e6, 0.1, 0.05


def one_lease(life: float = 30.0) -> dict:
    """One 24-month lease, no default, factor fixed at 0 with no factor loading and no chip release
    within the horizon: the note is repaid from 24 months of rent and the GPU sale at month 24."""
    return {
        "run": {"months": 30, "paths": 10, "seed": 1},
        "factor": {"persistence": 0.9},
        "gpu": {"economic_life_months": life, "salvage": SALVAGE, "factor_beta": 0.0, "first_release_month": 600},
        "facility": {"factor_beta": 0.0},
        "market_rent": {"factor_beta": 0.0},
        "tenants": [{"name": "t", "pd": 0.0, "rho": 0.0}],
        "deals": [{
            "name": "d", "legal_final_month": 30,
            "leases": [{"tenant": "t", "term_months": MONTHS, "monthly_rent": RENT, "gpu_cost": COST, "sale_lag": 0,
                        "liquidation_cost": LIQ}],
            "tranches": [{"name": "A", "balance": BALANCE}],
            "waterfall": [{"type": "principal", "classes": ["A"]}, {"type": "residual"}],
        }],
        "deterministic": {"factor": [[0, 0.0]]},
    }


def closed_form_life() -> float:
    """L* with RENT·MONTHS + COST·(1 − (1−s)·MONTHS/L*)·(1 − LIQ) = BALANCE."""
    sale_needed = (BALANCE - RENT * MONTHS) / (COST * (1 - LIQ))
    return (1 - SALVAGE) * MONTHS / (1 - sale_needed)


def test_breakeven_matches_the_closed_form():
    cfg = make_config(one_lease())
    res = breakeven(cfg, tranche="A", vary="gpu.economic_life_months", lo=10, hi=100, tol=1e-6)
    star = closed_form_life()
    assert min(res.losing, res.safe) <= star <= max(res.losing, res.safe)
    assert abs(res.losing - res.safe) <= 1e-6
    assert res.losing < res.safe  # shorter lives lose: the GPUs are worth less at the sale
    assert res.loss_at_losing > 0


def test_deterministic_run_is_one_path_equal_to_the_statement():
    cfg = make_config(one_lease(life=20.0))
    res = run(cfg, paths=500)
    assert int(res.tranches["paths"].iloc[0]) == 1
    table = statement(cfg)
    a = table[table["deal"] == "d"]
    expected_sale = COST * max(SALVAGE, 1 - (1 - SALVAGE) * MONTHS / 20.0) * (1 - LIQ)  # the salvage floor binds
    assert a.loc[a["month"] == MONTHS, "sale"].item() == pytest.approx(expected_sale, rel=1e-12)
    assert a.loc[a["month"].between(1, MONTHS), "rent"].eq(RENT).all()
    shortfall = max(0.0, BALANCE - RENT * MONTHS - expected_sale)
    assert res.tranches.loc[res.tranches["view"] == "cashflow", "el"].item() == pytest.approx(shortfall / BALANCE, rel=1e-9)


def test_statement_columns_and_conservation():
    d = base_dict()
    cfg = make_config(d)
    table = statement(cfg, path=5)
    assert {"rent", "rvg", "recovery", "sale", "fees", "interest", "principal", "residual", "dscr", "trap_on",
            "sweep_on", "factor", "gpu_index", "A_balance", "step1_fees", "step5_principal_A_B_E"} <= set(table.columns)
    m = table[table["month"].between(1, 60)]
    inflow = m[["rent", "rvg", "termination_fee", "recovery", "sale", "abs_collateral", "reserve_interest",
                "reserve_draw", "reserve_release"]].sum(axis=1)
    outflow = m[["fees", "interest", "principal", "step_up_interest", "reserve_deposit", "trapped", "residual"]].sum(axis=1)
    np.testing.assert_allclose(inflow, outflow, rtol=0, atol=1e-6 * 1e8)
    # base_dict ends with an explicit residual step, so every payment is some step's.
    steps = m[[c for c in m.columns if c.startswith("step")]].sum(axis=1)
    np.testing.assert_allclose(steps, m[["fees", "interest", "principal", "reserve_deposit", "residual"]].sum(axis=1), rtol=0, atol=1e-3)


def test_breakeven_errors_name_the_problem():
    with pytest.raises(ConfigError, match="deterministic"):
        breakeven(make_config(), tranche="A", vary="gpu.economic_life_months")
    cfg = make_config(one_lease())
    with pytest.raises(ConfigError, match="no tranche 'Z'"):
        breakeven(cfg, tranche="Z", vary="gpu.economic_life_months")
    with pytest.raises(ConfigError, match="both ends"):
        breakeven(cfg, tranche="A", vary="gpu.economic_life_months", lo=200, hi=240)
    with pytest.raises(ConfigError, match="names nothing"):
        breakeven(cfg, tranche="A", vary="gpu.no_such_field", lo=1, hi=2)


def test_cli_trace_writes_csv_and_parquet(tmp_path, capsys):
    cfg_path = _write_toml(tmp_path, one_lease())
    out = tmp_path / "t.parquet"
    assert main(["trace", str(cfg_path), "--out", str(out)]) == 0
    table = pd.read_parquet(out)
    assert len(table) == 31 and table["sale"].sum() > 0
    assert main(["trace", str(cfg_path), "--path", "3"]) == 2
    assert "one path" in capsys.readouterr().err
    assert main(["trace", str(cfg_path), "--out", str(tmp_path / "t.txt")]) == 2
    assert main(["breakeven", str(cfg_path), "--tranche", "A", "--vary", "gpu.economic_life_months", "--lo", "10", "--hi", "100"]) == 0
    assert "first loses principal at gpu.economic_life_months" in capsys.readouterr().out


def _write_toml(tmp_path, d: dict):
    lines = []

    def emit(prefix: str, table: dict):
        scalars = {k: v for k, v in table.items() if not isinstance(v, dict) and not (isinstance(v, list) and v and isinstance(v[0], dict))}
        if prefix:
            lines.append(f"[{prefix}]")
        for k, v in scalars.items():
            lines.append(f"{k} = {_toml(v)}")
        for k, v in table.items():
            if isinstance(v, dict):
                emit(f"{prefix}.{k}" if prefix else k, v)
            elif isinstance(v, list) and v and isinstance(v[0], dict):
                for item in v:
                    lines.append(f"[[{prefix + '.' if prefix else ''}{k}]]")
                    for kk, vv in item.items():
                        lines.append(f"{kk} = {_toml(vv)}")

    emit("", d)
    path = tmp_path / "c.toml"
    path.write_text("\n".join(lines))
    return path


def _toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_toml(x)}" for k, x in v.items()) + "}"
    return repr(v)


def test_trigger_table_matches_the_path_level_first_months(tmp_path):
    """The triggers table is the distribution of the per-path first-firing months, and ends at the
    deal table's firing probability."""
    d = base_dict()
    deal = d["deals"][0]
    deal["triggers"] = {"cash_trap_dscr": 1.6, "rapid_amortization_dscr": 1.2}
    deal["waterfall"].insert(-1, {"type": "trap"})
    cfg = make_config(d)
    res = run(cfg, paths=1500, out=tmp_path / "r", paths_out=True)
    paths = res.paths("deals")
    trig = res.triggers
    for trigger, column in (("cash_trap", "cash_trap_month"), ("rapid_amortization", "rapid_amortization_month")):
        rows = trig[trig["trigger"] == trigger].set_index("month")
        fired = paths[column].to_numpy()
        assert (fired > 0).mean() > 0.01, f"{trigger} never fired: the check would be vacuous"
        expected = np.bincount(fired, minlength=61)[1:] / len(fired)
        np.testing.assert_array_equal(rows["p_first"].to_numpy(), expected)
        p = res.deals[f"p_{trigger}"].item()
        assert rows["p_by_month"].iloc[-1] == pytest.approx(p, abs=1e-15)
    assert "trigger_timing" in res.plot.available()
    from matplotlib.figure import Figure

    assert isinstance(res.plot.trigger_timing(), Figure)


def test_statement_has_dscr_without_triggers_and_each_tranches_shortfall_and_writedown(tmp_path):
    d = base_dict()
    d["tenants"][0]["pd"] = 0.5  # losses on most paths, so write-downs show
    cfg = make_config(d)
    assert cfg.deals[0].triggers.cash_trap_dscr == 0 and cfg.deals[0].triggers.rapid_amortization_dscr == 0
    from engine.plan.compile import compile_plan
    from engine.plan.rng import draw_source
    from engine.simulation.execute import trace

    plan = compile_plan(cfg)
    for path in range(8):
        table = statement(cfg, path=path)
        assert table.loc[table["month"] <= 3, "dscr"].isna().all() and table.loc[table["month"] >= 4, "dscr"].notna().all()
        out = trace(plan, draw_source(cfg, tilted=False), path).outputs
        for k, tr in enumerate(cfg.deals[0].tranches):
            # The write-down is the path's principal loss; the last month's shortfall its unpaid interest.
            assert table[f"{tr.name}_writedown"].sum() / tr.balance == pytest.approx(out.tranche_loss[0, k], abs=1e-12)
            assert table[f"{tr.name}_shortfall"].iloc[-1] / tr.balance == pytest.approx(out.tranche_shortfall[0, k], abs=1e-12)
            assert (table[f"{tr.name}_writedown"] > 0).sum() <= 1


def test_trace_csv_rounds_dollars_to_cents_and_ratios_to_6_decimals(tmp_path):
    cfg_path = _write_toml(tmp_path, base_dict())
    out = tmp_path / "t.csv"
    assert main(["trace", str(cfg_path), "--path", "2", "--out", str(out)]) == 0
    text = out.read_text().splitlines()
    header = text[0].split(",")
    full = statement(make_config(), path=2)
    for line in text[1:]:
        for name, cell in zip(header, line.split(",")):
            if "." in cell and cell.replace(".", "").replace("-", "").replace("e", "").isdigit():
                decimals = len(cell.split(".")[1])
                assert decimals <= (6 if name in ("dscr", "factor", "gpu_index") else 2), (name, cell)
    back = pd.read_csv(out)
    np.testing.assert_allclose(back["A_balance"], full["A_balance"], rtol=0, atol=0.005)


def test_a_start_date_gives_the_statement_calendar_month_ends(tmp_path):
    import datetime

    d = base_dict()
    assert "date" not in statement(make_config(d), path=0).columns
    d["run"]["start_date"] = "2025-10-31"
    table = statement(make_config(d), path=0)
    assert list(table.columns[:5]) == ["scenario", "path", "deal", "month", "date"]
    by_month = dict(zip(table["month"], table["date"]))
    # By hand: the closing, then each month's last day (a leap February in 2028).
    assert by_month[0] == datetime.date(2025, 10, 31) and by_month[1] == datetime.date(2025, 11, 30)
    assert by_month[4] == datetime.date(2026, 2, 28) and by_month[28] == datetime.date(2028, 2, 29)
    assert by_month[60] == datetime.date(2030, 10, 31)
    cfg_path = _write_toml(tmp_path, d)
    assert main(["trace", str(cfg_path), "--out", str(tmp_path / "t.csv")]) == 0
    assert pd.read_csv(tmp_path / "t.csv")["date"].iloc[1] == "2025-11-30"
    with pytest.raises(ConfigError, match="run.start_date"):
        make_config({**d, "run": {**d["run"], "start_date": "2025-13-01"}})
