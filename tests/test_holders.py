"""Holders inside a run (docs/model.md §6): config errors, the marks, the nested check, the per-path
fire sale and the tables' reconciliation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from builders import HOLDERS, holders_dict, make_config
from engine.simulation import marks as marks_mod
from engine.simulation.chunk import holder_system
from engine.plan.compile import compile_plan
from engine.config import ConfigError, load_config
from engine.analytics.holders import OUTSIDE
from engine.simulation.holder_system import build_system, run_paths
from engine.plan.rng import draw_source
from engine.api.runs import run
from engine.simulation.execute import simulate, simulate_draws
from naive_contagion import naive_glt_aggregate_vulnerability


def config_errors(d: dict, base_dir=".") -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as exc:
        make_config(d, base_dir=base_dir)
    return exc.value.errors


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("change, where, message", [
    (lambda d: d["holders"][0]["positions"].update({"d1.Z": 1e6}), "holders[0].positions.d1.Z", "unknown tranche or asset 'd1.Z'"),
    (lambda d: d["holders"][1]["positions"].update({"d1.A": 50e6}), "holders", "tranche 'd1.A' is held 7.3e+07 in total, above its balance 6e+07"),
    (lambda d: d["holders"][0].update(debt=60e6), "holders[0].debt", "negative equity"),
    (lambda d: d["holders"][1].update(equity=5e6), "holders[1].equity", "the balance sheet cannot hold it"),
    (lambda d: d["holders"][3].pop("target_leverage"), "holders[3].target_leverage", "a bank needs max_leverage and target_leverage"),
    (lambda d: d["contagion"].update(impact=1.0), "contagion.impact", "less than 1"),
    (lambda d: d["contagion"].update(impact=0.0), "contagion.impact", "greater than 0"),
    (lambda d: d["contagion"]["assets"]["eq"].update(impact=1.5), "contagion.assets.eq.impact", "less than 1"),
    (lambda d: d["contagion"].update(horizon_month=60), "contagion.horizon_month", "before every deal's legal final"),
    (lambda d: d.pop("contagion"), "holders", "holders need a `contagion` section"),
    (lambda d: d["contagion"].update(haircuts={"AAB": 0.1}), "contagion.haircuts.AAB", "unknown rating grade"),
    (lambda d: d["contagion"].update(rbc_factors={"7": 0.1}), "contagion.rbc_factors.7", "unknown NAIC designation"),
    (lambda d: d["contagion"]["assets"].update({"d1.A": {"kind": "bond", "depth": 1e6}}), "contagion.assets.d1.A", "cannot share its name"),
    (lambda d: d["holders"].append(dict(d["holders"][0])), "holders[5].name", "duplicate holder name 'hf'"),
])
def test_bad_holder_config_names_the_field(change, where, message):
    d = holders_dict()
    change(d)
    errors = config_errors(d)
    assert any(p == where and message in m for p, m in errors), errors


def test_an_underfunded_pension_is_allowed_but_other_negative_equity_is_not():
    d = holders_dict()
    d["holders"][4]["debt"] = 40e6  # surplus −14m: underfunded, as pensions often are
    cfg = make_config(d)
    assert cfg.holders[4].debt == 40e6


def test_holdings_file_adds_positions_and_its_errors_name_the_row(tmp_path):
    d = holders_dict()
    d["holders"][2]["positions"] = {}
    rows = pd.DataFrame({"holder": ["fund", "fund"], "asset": ["d1.A", "bonds"], "par": [10e6, 5e6]})
    rows.to_csv(tmp_path / "h.csv", index=False)
    rows.to_parquet(tmp_path / "h.parquet")
    inline = sorted(make_config(holders_dict()).positions())
    for name in ("h.csv", "h.parquet"):
        d["contagion"]["holdings_file"] = name
        assert sorted(make_config(d, base_dir=tmp_path).positions()) == inline
    bad = pd.DataFrame({"holder": ["fund", "nobody", "fund"], "asset": ["d1.A", "bonds", "d1.Q"], "par": [1.0, 1.0, 1.0]})
    bad.to_csv(tmp_path / "bad.csv", index=False)
    d["contagion"]["holdings_file"] = "bad.csv"
    errors = config_errors(d, base_dir=tmp_path)
    assert ("contagion.holdings_file.row 1.holder", "unknown holder 'nobody'") in errors
    assert any(p == "contagion.holdings_file.row 2.asset" and "unknown tranche or asset 'd1.Q'" in m for p, m in errors)
    pd.DataFrame({"holder": ["fund"], "asset": ["d1.A"], "par": [-5.0]}).to_csv(tmp_path / "neg.csv", index=False)
    d["contagion"]["holdings_file"] = "neg.csv"
    assert any(p == "contagion.holdings_file.row 0.par" for p, _ in config_errors(d, base_dir=tmp_path))
    pd.DataFrame({"holder": ["fund"], "par": [5.0]}).to_csv(tmp_path / "cols.csv", index=False)
    d["contagion"]["holdings_file"] = "cols.csv"
    assert any("missing: asset" in m for _, m in config_errors(d, base_dir=tmp_path))
    d["contagion"]["holdings_file"] = "absent.csv"
    assert any("file not found" in m for _, m in config_errors(d, base_dir=tmp_path))


# --------------------------------------------------------------------------- the marks


class _Fake:
    """The horizon fields of PathOutputs, one deal and one tranche."""

    def __init__(self, rng, n):
        self.h_factor = rng.standard_normal(n)
        self.h_gpu = rng.uniform(0.2, 1.0, n)
        self.deal_h_defaulted = rng.uniform(0.0, 0.5, (n, 1))
        self.deal_h_coverage = rng.uniform(0.5, 3.0, (n, 1))
        self.tranche_h_balance = rng.uniform(0.3, 1.0, (n, 1))
        self.tranche_h_wal = np.full((n, 1), 3.0)


def _truth(f):
    x, dft, g, b, c = f.h_factor, f.deal_h_defaulted[:, 0], f.h_gpu, f.tranche_h_balance[:, 0], f.deal_h_coverage[:, 0]
    return 0.9 + 0.03 * x - 0.4 * dft * dft + 0.05 * g - 0.02 * (c - 1.5) ** 2 + 0.01 * b


def test_least_squares_recovers_a_quadratic_conditional_price():
    # Closed form: y = m(state) + noise with m in the span of the basis; the fit's price must be
    # within a few standard errors of m, and its R² near var(m) / (var(m) + σ²).
    rng = np.random.default_rng(5)
    n, sigma = 40_000, 0.05
    f = _Fake(rng, n)
    m = _truth(f)
    f.tranche_h_value = ((m + sigma * rng.standard_normal(n)) * f.tranche_h_balance[:, 0])[:, None]
    fitted = marks_mod.fit(f, np.array([0]))
    test = _Fake(np.random.default_rng(6), 2000)
    err = fitted.price(test)[:, 0] - np.clip(_truth(test), 0, marks_mod.PRICE_CAP)
    # OLS prediction error: sd ≈ σ·sqrt(p/n) with p = 11 regressors.
    bound = 5 * sigma * np.sqrt(len(marks_mod.BASIS) / n)
    assert np.sqrt(np.mean(err**2)) < bound
    r2_true = m.var() / (m.var() + sigma**2)
    se_r2 = 2 * np.sqrt(2.0 / n)  # a few standard errors of an R² estimate at this n
    assert abs(fitted.r2[0] - r2_true) < 3 * se_r2
    assert fitted.fit_paths[0] == n


def test_marks_are_clipped_and_dead_tranches_have_no_price():
    rng = np.random.default_rng(1)
    f = _Fake(rng, 500)
    f.tranche_h_value = (2.0 * f.tranche_h_balance[:, 0])[:, None]  # worth 2 per unit: clipped to 1.05
    f.tranche_h_balance[:10, 0] = 0.0
    fitted = marks_mod.fit(f, np.array([0]))
    p = fitted.price(f)
    assert np.isnan(p[:10, 0]).all()
    np.testing.assert_allclose(p[10:, 0], marks_mod.PRICE_CAP, rtol=0, atol=1e-12)
    assert fitted.fit_paths[0] == 490


def test_nested_check_keeps_the_history_and_averages_to_the_unconditional_price():
    # Tower property: E[ E[y | F_h] ] = E[y]. The mean of the nested prices over outer paths must
    # match the mean of y over independent paths within a few (computed) standard errors. Hyperion
    # has renewals, an RVG and re-letting, so the late key and the memoryless redraws are exercised.
    cfg = load_config("configs/hyperion.toml")
    cfg = cfg.with_overrides({"contagion": {"horizon_month": 30, "nested_paths": 0}, "run.paths": 40_000})
    plan = compile_plan(cfg)
    source = draw_source(cfg)
    h, n_outer, inner = 30, 48, 128
    means, ses = [], []
    for p in range(n_outer):
        outer = source.draws(p, p + 1)
        draws = marks_mod.nested_draws(plan, outer, h, inner, cfg.run.seed, p, burst_hazard=cfg.factor.burst.monthly_hazard,
                                       fixed_burst=cfg.factor.burst.month is not None, poisson_rate=None)
        inn = simulate_draws(plan, draws)
        base = simulate_draws(plan, outer)
        np.testing.assert_allclose(inn.tranche_h_balance, np.repeat(base.tranche_h_balance, inner, axis=0), rtol=0, atol=0)
        np.testing.assert_array_equal(inn.h_factor, base.h_factor[0])
        means.append(inn.tranche_h_value[:, 0].mean())
        ses.append(inn.tranche_h_value[:, 0].std(ddof=1) / np.sqrt(inner))
    ref = simulate(plan, source, 1000, 21_000).tranche_h_value[:, 0]
    means = np.array(means)
    se = np.sqrt(means.var(ddof=1) / n_outer + ref.var(ddof=1) / ref.size)
    assert abs(means.mean() - ref.mean()) < 4 * se, (means.mean(), ref.mean(), se)
    # The inner paths differ after h: the check is not trivially the outer path again.
    assert np.mean(ses) > 0


# --------------------------------------------------------------------------- the run


@pytest.fixture(scope="module")
def ran():
    cfg = make_config(holders_dict(nested_paths=4, nested_inner=64))
    return cfg, run(cfg, paths=3000, chunk_paths=1000)


def test_holder_losses_reconcile_with_tranche_marks(ran):
    _, res = ran
    h, m = res.holders, res.marks
    for col, mcol in (("el_direct_tranches", "mtm_direct_el"), ("el_fire_sale_tranches", "mtm_fire_sale_el")):
        total = h[col].sum()
        np.testing.assert_allclose(total, m[mcol].sum(), rtol=1e-9)
    assert h.loc[h["holder"] == OUTSIDE, "el_direct"].iloc[0] > 0  # the unheld E tranche and A par
    assert (m["held_par"] + m["unheld_par"] == np.array([60e6, 20e6, 20e6])).all()
    assert res.holders["el_fire_sale"].sum() > 0 and res.system["p_any_forced_sale"].iloc[0] > 0


def test_type_table_is_the_sum_of_its_holders(ran):
    _, res = ran
    h, t = res.holders.set_index("holder"), res.holder_types.set_index("type")
    assert t.loc["insurer", "el_total"] == pytest.approx(h.loc["life", "el_total"], rel=1e-12)
    share = t["el_total"] / h.loc[h["type"] != "outside", "el_total"].sum()
    np.testing.assert_allclose(t["share_of_system_loss"], share, rtol=1e-12)
    np.testing.assert_allclose(t["amplification"], t["el_total"] / t["el_direct"], rtol=1e-12)
    assert (t["amplification"] >= 1.0).all()
    assert h.loc["plan", "p_forced_sale"] == 0.0 and h.loc["plan", "p_failure"] == 0.0


def test_run_is_independent_of_chunking_and_holder_order(ran):
    cfg, res = ran
    other = run(cfg, paths=3000, chunk_paths=3000)  # one chunk cut into two contagion slices
    assert run(cfg, paths=3000, chunk_paths=700, threads=1).holders.equals(res.holders)
    for name in ("holders", "holder_types", "assets", "marks"):
        pd.testing.assert_frame_equal(getattr(res, name), getattr(other, name))
    d = holders_dict(nested_paths=4, nested_inner=64)
    d["holders"] = d["holders"][::-1]
    flipped = run(make_config(d), paths=3000, chunk_paths=1000).holders.set_index("holder")
    same = res.holders.set_index("holder").loc[flipped.index]
    cols = ["el_direct", "el_fire_sale", "p_failure", "p_forced_sale", "var99"]
    pd.testing.assert_frame_equal(flipped[cols], same[cols], rtol=1e-12)


def _paths(d, n=1500):
    cfg = make_config(d)
    plan = compile_plan(cfg)
    system = holder_system(cfg, plan, draw_source(cfg))
    out = simulate(plan, draw_source(cfg), 0, n)
    return cfg, plan, system, out


def test_tiny_impact_means_almost_no_fire_sale_loss():
    _, _, system, out = _paths(holders_dict(impact=1e-9))
    pc = run_paths(system, out)
    # Prices move by at most β·(sales/depth) ≈ 2e-8 of the fundamental value: bound the loss by it.
    assert np.abs(pc.io.fire_sale_loss).max() <= 1e-7 * system.assets0.max()
    assert (pc.io.direct_loss != 0).any()


def test_losses_never_fall_as_haircuts_rise():
    d = holders_dict()
    cfg, plan, system, out = _paths(d)
    previous = first = None
    for mult in (1.0, 2.0, 4.0, 8.0):
        sys_m = build_system(cfg.with_overrides({"contagion.haircut_multiplier": mult}), plan, system.marks, None)
        pc = run_paths(sys_m, out)
        total = pc.io.direct_loss.sum(axis=1) + pc.io.fire_sale_loss.sum(axis=1) + pc.outside_direct + pc.outside_fire
        if previous is not None:
            # The fixed point stops when no sale moves by more than tol·depth (1e-10): prices agree to
            # β·H·tol ≈ 5e-10 of the fundamental, losses to that times the assets held.
            slack = 1.03 * len(system.holder_names) * cfg.contagion.tol
            assert (pc.io.prices <= previous[0] * (1 + slack) + slack).all()
            assert (total >= previous[1] - slack * system.assets0.sum()).all()
        previous = (pc.io.prices, total)
        first = total if first is None else first
    assert (previous[1] > first + 1e3).mean() > 0.05  # the repo channel bites on a good share of paths


def test_final_prices_never_exceed_fundamentals_and_every_path_converges():
    _, _, system, out = _paths(holders_dict())
    pc = run_paths(system, out)
    assert (pc.io.prices <= pc.io.fundamental + 1e-15).all()
    assert pc.io.converged.all()
    assert (pc.io.rounds > 0).any()


def test_in_run_glt_matches_the_standalone_measures_on_the_balance_sheets():
    # The reference is the GLT formula in plain loops (tests/naive_contagion.py), not the engine's
    # glt_vulnerability; first it reproduces the paper's two-bank example worked by hand in
    # test_contagion.test_glt_closed_form_two_banks_two_assets.
    assert naive_glt_aggregate_vulnerability([100, 50], [10, 10], [[0.5, 0.5], [1.0, 0.0]], [1e-3, 2e-3],
                                             [-0.1, 0.0]) == pytest.approx(-0.325, abs=1e-12)
    _, _, system, out = _paths(holders_dict(), n=800)
    pc = run_paths(system, out)
    # Path by path, applied to the configured balance sheets and the path's shock F1.
    q = system.base.holdings
    a = system.base.cash + system.base.other + q.sum(axis=1)
    E = a - system.base.debt
    ok = E > 0
    M = np.concatenate([q, (system.base.cash + system.base.other)[:, None]], axis=1)[ok] / a[ok, None]
    ell = np.concatenate([system.base.beta / system.base.depth, [0.0]])
    nonzero = 0
    for p in range(0, 800, 97):
        with np.errstate(divide="ignore", invalid="ignore"):
            F1 = np.where(pc.io.marks[p] > 0, pc.io.fundamental[p] / pc.io.marks[p] - 1.0, 0.0)
        ref = naive_glt_aggregate_vulnerability(a[ok], E[ok], M, ell, np.append(F1, 0.0))
        assert pc.aggregate_vulnerability[p] == pytest.approx(ref, rel=1e-9, abs=1e-15)
        nonzero += ref != 0.0
    assert nonzero >= 5  # compared paths had a shock (9 of 9 when written): not zeros against zeros


def test_cash_includes_principal_repaid_by_the_horizon():
    _, _, system, out = _paths(holders_dict(), n=300)
    pc = run_paths(system, out)
    q = system.base.holdings
    tr = system.asset_tranche
    cols = np.flatnonzero(tr >= 0)
    repaid = (1.0 - out.tranche_h_balance[:, tr[cols]]).clip(min=0) @ q[:, cols].T
    np.testing.assert_allclose(pc.io.cash, system.base.cash[None, :] + repaid, rtol=1e-15)
    # Before the shock every path's balance sheet is the configured one (positions at par).
    at_par = pc.io.cash + system.base.other[None, :] + (pc.io.marks[:, None, :] * q[None]).sum(axis=2)
    np.testing.assert_allclose(at_par, np.broadcast_to(system.assets0, at_par.shape), rtol=1e-12)


def test_ai_bubble_example_writes_the_holder_tables_and_the_cli_answers_who_bears_the_loss(tmp_path, capsys):
    from engine.cli.main import main

    rc = main(["run", "configs/ai_bubble.toml", "--paths", "3000", "--scenario", "base,repo_stress", "--out", str(tmp_path / "r"),
               "--no-progress", "--no-report"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "who bears the loss at month 24" in text and "amplif." in text
    for name in ("marks", "holders", "holder_types", "assets", "system"):
        assert (tmp_path / "r" / "summary" / f"{name}.parquet").is_file()
    h = pd.read_parquet(tmp_path / "r" / "summary" / "holders.parquet")
    base, stress = (h[h["scenario"] == s].set_index("holder") for s in ("base", "repo_stress"))
    # The scenarios differ only in haircuts: the same direct losses, more fire-sale losses.
    np.testing.assert_array_equal(base["el_direct"], stress["el_direct"])
    assert stress["el_fire_sale"].sum() > base["el_fire_sale"].sum()
    assert set(base.index) == {"apex_multistrat", "heartland_life", "summit_re_life", "state_teachers", "credit_income_fund", OUTSIDE}


def test_per_tranche_notches_equal_the_ratings_module():
    """A consistency check between two parts of the engine: the marks' per-tranche notches (from
    precomputed budgets) against engine.ratings.implied_notch on EL = 1 − price. The ratings module
    is checked against its sources in test_ratings.py; a few notches are also worked by hand here."""
    rng = np.random.default_rng(3)
    f = _Fake(rng, 3000)
    f.tranche_h_value = (rng.uniform(0.0, 1.06, 3000) * f.tranche_h_balance[:, 0])[:, None]
    for wal in (0.4, 2.0, 7.3, 14.0):
        fitted = dataclasses.replace(marks_mod.fit(f, np.array([0])), wal=np.array([wal]))
        prices = np.concatenate([rng.uniform(0.0, 1.05, 2990), [1.0, 0.0, 0.5, np.nan, 0.99, 0.9999, 1.02, 0.3, 0.7, 0.95]])[:, None]
        el = np.clip(1.0 - np.nan_to_num(prices, nan=1.0), 0.0, 1.0)
        from engine.market import ratings

        notches = fitted.notches(prices)[:, 0]
        np.testing.assert_array_equal(notches, ratings.implied_notch(el[:, 0], wal))
        # By hand: price 1 is EL 0, Aaa (notch 0); price 0 is EL 1, above every budget, C (notch 20).
        assert (notches[2990], notches[2991]) == (0, 20)
        if wal == 2.0:
            # Price 0.99 is EL 1%. 2-year budgets 0.55·(1 − (1 − PD10)^0.2) from the 10-year PDs:
            # Baa3 (6.10%) 0.688%, Ba1 (9.40%) 1.075%: the best notch whose budget covers 1% is Ba1 (10).
            assert notches[2994] == 10


def test_a_tranche_never_outstanding_on_the_pilot_is_marked_at_par():
    rng = np.random.default_rng(2)
    f = _Fake(rng, 200)
    f.tranche_h_balance[:, 0] = 0.0
    f.tranche_h_value = np.zeros((200, 1))
    fitted = marks_mod.fit(f, np.array([0]))
    g = _Fake(rng, 50)
    np.testing.assert_allclose(fitted.price(g)[:, 0], 1.0, rtol=0, atol=1e-15)
    assert fitted.fit_paths[0] == 0 and np.isnan(fitted.r2[0])


def test_path_level_holder_tables_add_up_to_the_summary(tmp_path):
    cfg = make_config(holders_dict())
    res = run(cfg, paths=1200, chunk_paths=500, out=tmp_path / "r", paths_out=True)
    rows = res.paths("holders")
    assert len(rows) == 1200 * len(HOLDERS) and rows["path"].nunique() == 1200
    h = res.holders.set_index("holder")
    for name, g in rows.groupby("holder"):
        assert g["direct_loss"].mean() == pytest.approx(h.loc[name, "el_direct"], rel=1e-9)
        assert g["failed"].mean() == pytest.approx(h.loc[name, "p_failure"], abs=0)
    sales = res.paths("holder_sales")
    value = (sales["units"] * sales["price"]).groupby(sales["holder"]).sum() / 1200
    np.testing.assert_allclose(value.to_numpy(), h.loc[value.index, "sold_value_mean"].to_numpy(), rtol=1e-9)
    assert (sales["units"] > 0).all()
