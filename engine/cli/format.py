"""The tables `dcabs run` prints: one scenario in full, or several as scenario × tranche pivots."""

from __future__ import annotations

import pandas as pd

SUMMARY_COLUMNS = ["scenario", "deal", "tranche", "view", "el", "el_se", "ess", "pd", "lgd", "var99", "es99", "pv_mean", "wal_mean", "p_interest_shortfall"]


def format_summary(tranches: pd.DataFrame) -> str:
    t = tranches[SUMMARY_COLUMNS].copy()
    fmt = {c: "{:.6f}".format for c in ("el", "el_se", "pd", "lgd", "var99", "es99", "pv_mean", "p_interest_shortfall")}
    fmt["wal_mean"] = "{:.2f}".format
    fmt["ess"] = "{:.0f}".format
    return t.to_string(index=False, formatters=fmt, na_rep="-")


def format_one_scenario(res) -> str:
    """The full tables of a one-scenario run: every tranche statistic, firm defaults, the network's
    effect and who bears the loss."""
    parts = [format_summary(res.tranches)]
    if res.network is not None:
        parts += ["\nfirm defaults (own failure vs contagion through the network):",
                  res.network.drop(columns="paths").to_string(index=False, float_format="{:.4f}".format)]
        if "el_without_network" in res.tranches:
            both = res.tranches[["scenario", "deal", "tranche", "view", "el", "el_without_network"]].rename(
                columns={"el": "el_with_network"})
            parts += ["\ntranche EL with and without the network (same paths):", both.to_string(index=False, float_format="{:.6f}".format)]
    if res.holder_types is not None:
        parts.append(format_who_bears(res))
    return "\n".join(parts)


def _pivot(frame: pd.DataFrame, columns: str, value: str, order: list[str], fmt: str) -> str:
    table = frame.pivot_table(index="scenario", columns=columns, values=value, sort=False, dropna=False)
    table = table.reindex([s for s in order if s in table.index])
    table.index.name = None
    table.columns.name = None
    return table.to_string(float_format=fmt.format, na_rep="-")


def format_scenarios(res, cfg) -> str:
    """A run of several scenarios, compactly: what each scenario stresses, then scenario × tranche
    (and × firm, × holder type) pivots of the headline numbers. The full tables are in summary/."""
    order = list(res.manifest["scenarios"])
    width = max(len(n) for n in order)
    lines = ["scenarios:"]
    for name in order:
        what = "the config as written" if name == "base" else (cfg.scenarios[name].description or "(no description)")
        lines.append(f"  {name:<{width}}  {what}")
    t = res.tranches.assign(tranche=res.tranches["deal"] + "." + res.tranches["tranche"])
    se = float(t["el_se"].max())
    for view, what in (("cashflow", "what the notes lose in the waterfall"), ("allocation", "the pool's loss cut at attach/detach")):
        part = t[t["view"] == view]
        if len(part):
            lines += [f"\nexpected loss per unit of par, {view} view ({what}; Monte Carlo SE at most {se:.4f}):",
                      _pivot(part, "tranche", "el", order, "{:.4f}")]
    if res.network is not None:
        lines += ["\nP(firm default), own failure or contagion through the network:",
                  _pivot(res.network, "firm", "p_default", order, "{:.4f}")]
    if res.holder_types is not None:
        h = res.holder_types.assign(el_total=res.holder_types["el_total"] / 1e6)
        month = int(res.system["horizon_month"].iloc[0])
        lines += [f"\nwho bears the loss at month {month} (the stress horizon): expected loss by holder type, $m (direct + fire-sale):",
                  _pivot(h, "type", "el_total", order, "{:,.1f}"),
                  "\nP(a holder of that type fails):",
                  _pivot(res.holder_types.assign(p_any_failure=res.holder_types["p_any_failure"].where(
                      res.holder_types["type"] != "pension")), "type", "p_any_failure", order, "{:.4f}"),
                  PENSION_NOTE]
        system = res.system.set_index("scenario").reindex(order)
        system = pd.DataFrame({"direct $m": system["el_direct"] / 1e6, "fire-sale $m": system["el_fire_sale"] / 1e6,
                               "amplif.": system["amplification"], "P(a holder fails)": system["p_any_failure"]})
        system.index.name = None
        lines += ["\nthe system (every holder):", system.to_string(formatters={
            "direct $m": "{:,.1f}".format, "fire-sale $m": "{:,.1f}".format, "amplif.": "{:.2f}x".format,
            "P(a holder fails)": "{:.4f}".format})]
    lines.append("\nevery statistic (SEs, PD, LGD, VaR, ES, WAL, per holder) is in summary/*.parquet and the report; "
                 "`--scenario NAME` prints one scenario's full tables")
    return "\n".join(lines)


# A pension fund losing billions with no failure reads as a bug; it is the model's rule.
PENSION_NOTE = ("  (pension '-': pensions never fail in the model (no margin call, capital floor or redemptions);\n"
                "   their loss shows as a lower funded ratio: docs/model.md, holder rules)")


def format_who_bears(res) -> str:
    """"Who bears the loss": expected losses by holder type at the stress horizon, direct and from
    fire sales, with the amplification ratio; then the system line of each scenario."""
    t = res.holder_types.copy()
    t["p_any_failure"] = t["p_any_failure"].where(t["type"] != "pension")
    for c in ("el_direct", "el_fire_sale", "el_total"):
        t[c] = t[c] / 1e6
    t = t.rename(columns={"el_direct": "direct $m", "el_fire_sale": "fire-sale $m", "el_total": "total $m",
                          "share_of_system_loss": "share", "amplification": "amplif.", "p_any_failure": "P(failure)"})
    fmt = {"direct $m": "{:,.1f}".format, "fire-sale $m": "{:,.1f}".format, "total $m": "{:,.1f}".format,
           "share": "{:.1%}".format, "amplif.": "{:.2f}x".format, "P(failure)": "{:.4f}".format}
    month = int(res.system["horizon_month"].iloc[0])
    lines = [f"\nwho bears the loss at month {month} (expected, by holder type; amplification = (direct + fire-sale) / direct):",
             t.to_string(index=False, formatters=fmt, na_rep="-")]
    if (t["type"] == "pension").any():
        lines.append(PENSION_NOTE)
    for row in res.system.itertuples(index=False):
        lines.append(f"  {row.scenario}: system {row.el_direct / 1e6:,.1f} $m direct + {row.el_fire_sale / 1e6:,.1f} $m fire-sale "
                     f"({row.amplification:.2f}x), P(a holder fails) {row.p_any_failure:.4f}, {row.rounds_mean:.2f} rounds on average")
    outside = res.holders[res.holders["type"] == "outside"]
    for row in outside.itertuples(index=False):
        lines.append(f"  {row.scenario}: unheld par and buyers of forced sales lose {row.el_total / 1e6:,.1f} $m more (holders.parquet, `(outside)`)")
    return "\n".join(lines)
