"""What a run's tables warn about (poor effective sample size, unconverged fire sales, ...), and the estimator line; no matplotlib."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from engine.analytics.frames import _optional_table, _ordered, _scenarios, _tranche_keys


def _pct(x: float) -> str:
    v = 100.0 * float(x)
    if 99.95 <= v < 100.0:
        return ">99.9%"
    if v > 100.0:
        # An importance-sampled (unbiased) estimate of a probability near 1 exceeds it by its error.
        return "about 100%"
    return f"{v:.3g}%"


def _by_scenario(items: list[tuple[str, str]], unit: str = "") -> str:
    """'2.65% of paths (scenario base), 29% (weaker_tenant)' from [(scenario, value text)]."""
    (first, value), rest = items[0], items[1:]
    text = f"{value}{unit} (scenario {first})"
    return text + "".join(f", {v} ({s})" for s, v in rest)


POOR_ESS = 30.0
"""Below this effective sample size a tranche's EL, its standard error and its tail are warned about."""


def estimator_line(manifest: dict, scenarios: list[str]) -> str:
    """Which estimator ran, in words, for the report's lede."""
    scen = manifest.get("scenarios") or {}
    parts = []
    for name in scenarios:
        imp = (scen.get(name) or {}).get("importance")
        if not imp:
            continue
        law = f"factor level shifted by {imp['factor_shift']:+.3f}"
        if imp.get("factor_tilt") == "hazard":
            law += ", drawn towards the target deal's hazard"
        if imp.get("burst_hazard") is not None:
            law += f", burst hazard {imp['burst_hazard']:.4g} a month"
        if (imp.get("strata") or 1) > 1:
            law += f", {imp['strata']:,} strata along the shift"
        if imp.get("default_floor"):
            law += f", the target deal's defaults tilted to at least {imp['default_floor']:.3g}"
        if imp.get("horizon"):
            law += f", tilted to month {imp['horizon']}"
        parts.append(f"{name}: importance sampling towards {imp['target']} ({law}; chosen by {imp['chosen_by']}; "
                     f"weights' mean {imp['weight_mean']:.4f} ± {imp['weight_mean_se']:.4f}, Kish ESS {imp['weight_ess']:,.0f})")
    if not parts:
        return "Estimator: plain Monte Carlo."
    return "Estimator: " + "; ".join(parts) + ". Every statistic is weighted by the likelihood ratio (docs/model.md §9)."


def run_warnings(tables: dict[str, pd.DataFrame]) -> list[str]:
    """Post-run warnings in plain words, read from the summary tables only.

    One line per finding, merging the scenarios in which it occurs, in this order: principal losses,
    interest shortfalls, reserve draws, contagion defaults, then Monte Carlo precision. Within a
    kind, deals and tranches keep their config order.
    """
    scenarios = _scenarios(tables)
    out: list[str] = []
    tranches = _optional_table(tables, "tranches")
    cash = tranches[tranches["view"] == "cashflow"] if tranches is not None else pd.DataFrame()

    def per_tranche(column: str, keep: Callable[[pd.Series], bool], fmt: Callable[[pd.Series], str]):
        for deal, tranche in _tranche_keys(cash) if not cash.empty else []:
            rows = cash[(cash["deal"].astype(str) == deal) & (cash["tranche"].astype(str) == tranche)]
            rows = rows.set_index("scenario")
            items = [(s, fmt(rows.loc[s])) for s in scenarios if s in rows.index and column in rows.columns
                     and keep(rows.loc[s])]
            if items:
                yield deal, tranche, items

    def per_key(frame: pd.DataFrame, key: str, column: str):
        """(name, rows by scenario, [(scenario, column as %)]) of each ``key`` value whose ``column`` is > 0."""
        for name in _ordered(frame[key].astype(str)):
            rows = frame[frame[key].astype(str) == name].set_index("scenario")
            items = [(s, _pct(rows.loc[s, column])) for s in scenarios if s in rows.index and rows.loc[s, column] > 0]
            if items:
                yield name, rows, items

    for deal, tranche, items in per_tranche("pd", lambda r: r["pd"] > 0, lambda r: _pct(r["pd"])):
        out.append(f"Tranche {tranche} of {deal} loses principal at legal final in {_by_scenario(items, ' of paths')}.")
    for deal, tranche, items in per_tranche("p_interest_shortfall", lambda r: r["p_interest_shortfall"] > 0,
                                            lambda r: _pct(r["p_interest_shortfall"])):
        out.append(f"Tranche {tranche} of {deal} is not paid its full interest in some month in "
                   f"{_by_scenario(items, ' of paths')}.")

    deals = _optional_table(tables, "deals")
    if deals is not None and "reserve_used_mean" in deals.columns:
        for deal, _, items in per_key(deals, "deal", "reserve_used_mean"):
            out.append(f"The reserve of deal {deal} pays on average {_by_scenario(items, ' of the note balance')}.")
        for column, what in (("p_reserve_exhausted", "The reserve of deal {deal} is exhausted with a shortfall left in "),
                             ("p_cash_trap", "The cash trap of deal {deal} fires in "),
                             ("p_rapid_amortization", "Rapid amortisation of deal {deal} starts in "),
                             ("p_ard_swept", "Deal {deal} cannot refinance at its ARD and sweeps in ")):
            if column not in deals.columns:
                continue
            for deal, _, items in per_key(deals, "deal", column):
                out.append(what.format(deal=deal) + f"{_by_scenario(items, ' of paths')}.")

    net = _optional_table(tables, "network")
    if net is not None:
        for firm, _, items in per_key(net, "firm", "p_contagion"):
            out.append(f"Firm {firm} defaults through contagion (a counterparty did not pay) in "
                       f"{_by_scenario(items, ' of paths')}.")

    for deal, tranche, items in per_tranche("pd", lambda r: r["pd"] == 0, lambda r: int(r["paths"])):
        n = min(paths for _, paths in items)
        names = ", ".join(s for s, _ in items)
        out.append(f"Tranche {tranche} of {deal} loses no principal on any path (scenario{'s' if len(items) > 1 else ''} "
                   f"{names}): with {n:,} paths its loss probability is only known to be below about {_pct(3 / n)} "
                   f"(95% confidence); run more paths to resolve it.")
    # Where the standard error looks small but rests on few paths: heavy-tailed weights make it unreliable.
    for deal, tranche, items in per_tranche("ess", lambda r: r["el"] > 0 and r["ess"] < POOR_ESS and r["el_se"] <= 0.2 * r["el"],
                                            lambda r: f"{r['ess']:.0f}"):
        out.append(f"The expected loss of tranche {tranche} of {deal} rests on few effective paths "
                   f"({_by_scenario(items)}; (Σw·L)²/Σ(w·L)², the paths with a loss when every weight is 1): its "
                   f"standard error and tail figures are unreliable; run more paths or importance-sample towards it.")
    for deal, tranche, items in per_tranche("el_se", lambda r: r["el"] > 0 and r["el_se"] > 0.2 * r["el"],
                                            lambda r: _pct(r["el_se"] / r["el"])):
        out.append(f"The expected loss of tranche {tranche} of {deal} is imprecise: its standard error is "
                   f"{_by_scenario(items, ' of the estimate')}; run more paths.")

    holders = _optional_table(tables, "holders")
    if holders is not None:
        for holder, rows, items in per_key(holders, "holder", "p_failure"):
            out.append(f"Holder {holder} ({rows['type'].iloc[0]}) fails at the stress horizon in {_by_scenario(items, ' of paths')}.")
    marks = _optional_table(tables, "marks")
    if marks is not None:
        for row in marks.itertuples(index=False):
            if row.scenario != scenarios[0]:
                continue
            if np.isfinite(row.nested_rmse) and row.nested_rmse > 0.02 and row.nested_rmse > 3 * row.nested_se:
                out.append(f"The marks of tranche {row.tranche} of {row.deal} at month {row.horizon_month} are off a nested "
                           f"re-simulation by {row.nested_rmse:.3f} per unit of par (RMSE over {row.nested_outer} paths; the "
                           f"check's own noise is {row.nested_se:.4f}); read its fire-sale losses as approximate.")
    return _ordered(out)
