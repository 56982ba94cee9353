"""The run report: figures of a finished run and one self-contained HTML page.

``build_report(run_dir)`` reads a run directory, draws every figure that applies to it into
``run_dir/figures/<name>.png`` and writes ``run_dir/report.html`` with the same images embedded as
data URIs, so the page can be mailed or archived on its own. ``PlotAccessor`` gives the same
figures to notebooks (``Results.plot``).

Figures are drawn on ``matplotlib.figure.Figure`` objects, never through pyplot: that needs no GUI
backend, touches no global state and leaves no open figures behind when a report is built.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from engine.analytics.frames import BASE, _optional_table, _ordered, _scenarios, _tranche_keys
from engine.market import ratings

DPI = 110
REPORT = "report.html"
FIGURES_DIR = "figures"

# The 10-year column of the idealized expected-loss table the implied ratings use (engine/market/ratings.py,
# where its source and caveats are); the figure does not pick each tranche's WAL, so the lines are a scale.
MOODYS_IDEALIZED_EL_10Y = tuple((r, ratings.IDEALIZED_EL[r][-1]) for r in ("Aaa", "Aa2", "A2", "Baa2", "Ba2", "B2"))

# A 95% Monte Carlo interval: EL is a mean over independent paths.
_Z95 = 1.96

_LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 4)))
_MARKERS = ("o", "s", "D", "^", "v", "P")

NOT_YET = {
    "sweep": "Tranche EL across a grid of a parameter (e.g. GPU economic life): a run is one config and its "
             "named scenarios; `dcabs sweep` writes the grid as its own table (sweep.parquet).",
}


class FigureNotApplicable(ValueError):
    """The run has no data for a figure, e.g. a network figure of a run without a network."""


_NO_NETWORK = "this run has no network (the config has no enabled [network] section)"


# ---------------------------------------------------------------------------------------- tables


def _table(tables: dict[str, pd.DataFrame], name: str, reason: str | None = None) -> pd.DataFrame:
    """Table ``name`` with a scenario column; FigureNotApplicable (with ``reason``) when absent or empty."""
    frame = _optional_table(tables, name)
    if frame is None:
        raise FigureNotApplicable(reason or f"this run has no {name} table (summary/{name}.parquet)")
    return frame


def _reference(scenarios: list[str]) -> str:
    return BASE if BASE in scenarios else scenarios[0]


def _colours(scenarios: list[str]) -> dict[str, str]:
    return {s: f"C{i % 10}" for i, s in enumerate(scenarios)}


def _cashflow(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    tranches = _table(tables, "tranches")
    cash = tranches[tranches["view"] == "cashflow"]
    if cash.empty:
        raise FigureNotApplicable("this run has no cash-flow tranche rows")
    return cash


def _has_network(tables: dict[str, pd.DataFrame]) -> bool:
    frame = tables.get("network")
    return frame is not None and not frame.empty


# -------------------------------------------------------------------------------------- drawing


def _optional(draw: Callable[[dict], Figure]) -> Callable[[dict], Figure | None]:
    """Wrap a figure drawer so that a figure the run has no data for is None instead of an error.

    The unwrapped drawer stays reachable as ``.draw``; it raises FigureNotApplicable with the reason.
    """

    @functools.wraps(draw)
    def figure(tables: dict[str, pd.DataFrame]) -> Figure | None:
        try:
            return draw(tables)
        except FigureNotApplicable:
            return None

    figure.draw = draw
    return figure


def _percent_axis(ax, axis: str = "y") -> None:
    fmt = FuncFormatter(lambda v, _: f"{v:.10g}%")
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def _grid(n: int, ncols_max: int = 2) -> tuple[int, int]:
    ncols = min(ncols_max, n)
    return math.ceil(n / ncols), ncols


def _survival(loss: np.ndarray, probability: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points (x, P(L > x)) of a discrete loss distribution, for a post-step plot from x = 0.

    P(L > v_k) is the mass strictly above v_k, summed from the top: a small tail probability is
    then a sum of small numbers, not a difference of numbers near 1, and the last one is exactly 0.
    """
    order = np.argsort(loss)
    v, p = np.asarray(loss, float)[order], np.asarray(probability, float)[order]
    above = np.append(np.cumsum(p[::-1])[::-1][1:], 0.0)
    if v[0] > 0.0:
        v, above = np.append(0.0, v), np.append(p.sum(), above)
    # A zero is kept as NaN, not dropped: the step up to it is still drawn, the log axis skips it.
    return v, np.where(above > 0.0, above, np.nan)


def _paths(tables: dict[str, pd.DataFrame]) -> int | None:
    frame = tables.get("tranches")
    if frame is None or "paths" not in frame.columns or frame.empty:
        return None
    return int(frame["paths"].max())


@_optional
def exceedance(tables: dict[str, pd.DataFrame]) -> Figure:
    """Tranche loss exceedance curves P(loss > x), cash-flow view, one panel per deal."""
    dist = _table(tables, "distributions", "this run has no loss distributions (summary/distributions.parquet)")
    dist = dist[dist["view"] == "cashflow"]
    if dist.empty:
        raise FigureNotApplicable("this run has no cash-flow loss distributions")
    scenarios = [s for s in _scenarios(tables) if s in set(dist["scenario"])]
    deals = _ordered(dist["deal"].astype(str))
    nrows, ncols = _grid(len(deals))
    fig = Figure(figsize=(5.4 * ncols + 0.6, 4.2 * nrows + 0.5), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True).ravel()
    n = _paths(tables)
    lowest = 1.0
    for ax, deal in zip(axes, deals):
        d = dist[dist["deal"] == deal]
        tranches = _ordered(d["tranche"].astype(str))
        for k, tranche in enumerate(tranches):
            for j, scenario in enumerate(scenarios):
                g = d[(d["tranche"] == tranche) & (d["scenario"] == scenario)]
                if g.empty:
                    continue
                x, y = _survival(g["loss"].to_numpy(), g["probability"].to_numpy())
                if np.isfinite(y).any():
                    lowest = min(lowest, float(np.nanmin(y)))
                ax.step(x, y, where="post", color=f"C{k % 10}", linestyle=_LINESTYLES[j % len(_LINESTYLES)], lw=1.6)
        ax.set_yscale("log")
        ax.set_xlim(0.0, 1.0)
        ax.set_title(f"deal {deal}")
        ax.set_xlabel("loss x (fraction of the tranche's balance)")
        ax.grid(True, which="major", alpha=0.3)
        # Below the panel: inside, a legend would hide the curves of thin tranches.
        handles = [Line2D([], [], color=f"C{k % 10}", lw=2, label=f"tranche {t}") for k, t in enumerate(tranches)]
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncols=min(len(tranches), 5),
                  fontsize=8, frameon=False)
    for ax in axes[len(deals):]:
        ax.set_visible(False)
    for row in range(nrows):
        axes[row * ncols].set_ylabel("P(loss > x)")
    # Down to half of one path's probability, so a loss seen on a single path still shows.
    floor = 0.5 / n if n else lowest / 2
    axes[0].set_ylim(min(floor, lowest / 2), 1.5)
    if len(scenarios) > 1:
        fig.legend(handles=[Line2D([], [], color="0.25", lw=1.6, linestyle=_LINESTYLES[j % len(_LINESTYLES)], label=s)
                            for j, s in enumerate(scenarios)],
                   loc="outside upper center", ncols=min(4, len(scenarios)), fontsize=8, title="scenario (line style)",
                   title_fontsize=8)
    return fig


def _tranche_axis(ax, keys: list[tuple[str, str]]) -> np.ndarray:
    """Tick each tranche, name each deal under its tranches and separate the deals; returns positions."""
    x = np.arange(len(keys), dtype=float)
    ax.set_xticks(x, [t for _, t in keys])
    ax.set_xlim(-0.6, len(keys) - 0.4)
    deals = _ordered(d for d, _ in keys)
    trans = ax.get_xaxis_transform()
    for deal in deals:
        idx = [i for i, (d, _) in enumerate(keys) if d == deal]
        ax.text(float(np.mean(idx)), -0.11, deal, transform=trans, ha="center", va="top", fontsize=9)
        if idx[0] > 0:
            ax.axvline(idx[0] - 0.5, color="0.6", lw=0.8)
    return x


def _error_bounds(el: np.ndarray, se: np.ndarray, floor: float) -> np.ndarray:
    lo = np.maximum(el - _Z95 * se, floor)
    return np.vstack([np.maximum(el - lo, 0.0), _Z95 * se])


@_optional
def el_vs_ratings(tables: dict[str, pd.DataFrame]) -> Figure:
    """Tranche EL (cash-flow view, every scenario) against Moody's idealized 10-year EL rates."""
    cash = _cashflow(tables)
    scenarios = [s for s in _scenarios(tables) if s in set(cash["scenario"])]
    keys = _tranche_keys(cash)
    fig = Figure(figsize=(max(7.0, 1.0 * len(keys) + 3.5), 5.0), layout="constrained")
    ax = fig.subplots()
    x = _tranche_axis(ax, keys)
    positive = 100 * cash["el"].to_numpy(float)
    positive = positive[positive > 0]
    rating_min = 100 * MOODYS_IDEALIZED_EL_10Y[0][1]
    floor = min(rating_min / 3, positive.min() / 3 if positive.size else rating_min / 3)
    width = 0.7 / max(1, len(scenarios))
    colours = _colours(scenarios)
    for j, scenario in enumerate(scenarios):
        rows = cash[cash["scenario"] == scenario].set_index(["deal", "tranche"])
        rows.index = rows.index.map(lambda k: (str(k[0]), str(k[1])))
        rows = rows.reindex(keys)
        el = 100 * rows["el"].to_numpy(float)
        se = 100 * rows["el_se"].to_numpy(float)
        xs = x + (j - (len(scenarios) - 1) / 2) * width
        seen = el > 0
        ax.errorbar(xs[seen], el[seen], yerr=_error_bounds(el[seen], se[seen], floor), fmt=_MARKERS[j % len(_MARKERS)],
                    color=colours[scenario], ms=6, capsize=3, lw=1.2, label=scenario)
        none = np.isfinite(el) & (el == 0)
        if none.any():
            ax.plot(xs[none], np.full(none.sum(), floor * 1.25), "v", color=colours[scenario], mfc="none", ms=7)
    for name, value in MOODYS_IDEALIZED_EL_10Y:
        ax.axhline(100 * value, color="0.45", lw=0.9, ls="--", zorder=0)
        ax.text(1.005, 100 * value, name, transform=ax.get_yaxis_transform(), va="center", fontsize=8, color="0.3")
    ax.set_yscale("log")
    ax.set_ylim(floor, 100)
    _percent_axis(ax)
    ax.set_ylabel("expected loss (% of the tranche's balance)")
    ax.set_title("Tranche EL (cash-flow view) against Moody's idealized 10-year EL", fontsize=11)
    ax.grid(True, axis="y", which="major", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if (cash["el"] == 0).any():
        handles.append(Line2D([], [], marker="v", color="0.3", mfc="none", ls="none"))
        labels.append("no loss on any path")
    fig.legend(handles, labels, loc="outside lower center", ncols=min(5, len(labels)), fontsize=8, title="scenario",
               title_fontsize=8)
    return fig


def _fan(tables: dict[str, pd.DataFrame], series: str, ylabel: str, level: float, title: str) -> Figure:
    fans = _table(tables, "fans", "this run has no fan table (summary/fans.parquet)")
    fans = fans[fans["series"] == series]
    if fans.empty:
        raise FigureNotApplicable(f"this run's fan table has no {series} series")
    scenarios = [s for s in _scenarios(tables) if s in set(fans["scenario"])]
    ref = _reference(scenarios)
    colours = _colours(scenarios)
    g = fans[fans["scenario"] == ref].sort_values("month")
    m = g["month"].to_numpy()
    fig = Figure(figsize=(9.5, 4.8), layout="constrained")
    ax = fig.subplots()
    c = colours[ref]
    ax.fill_between(m, g["q05"], g["q95"], color=c, alpha=0.16, lw=0, label=f"5–95% ({ref})")
    ax.fill_between(m, g["q25"], g["q75"], color=c, alpha=0.34, lw=0, label=f"25–75% ({ref})")
    ax.plot(m, g["q50"], color=c, lw=2.0, label=f"median ({ref})")
    ax.plot(m, g["mean"], color=c, lw=1.0, ls=":", label=f"mean ({ref})")
    for j, scenario in enumerate(s for s in scenarios if s != ref):
        o = fans[fans["scenario"] == scenario].sort_values("month")
        ax.plot(o["month"], o["q50"], color=colours[scenario], lw=1.5, ls=_LINESTYLES[(j + 1) % len(_LINESTYLES)],
                label=f"median ({scenario})")
    ax.axhline(level, color="0.3", lw=0.8)
    ax.set_xlim(m.min(), m.max())
    ax.set_xlabel("month")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=11)
    ax.grid(True, alpha=0.3)
    top = ax.secondary_xaxis("top", functions=(lambda v: v / 12, lambda v: v * 12))
    top.set_xlabel("year")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", fontsize=8, ncols=4)
    return fig


@_optional
def factor_fan(tables: dict[str, pd.DataFrame]) -> Figure:
    """Fan chart of the AI-demand factor X_t by month."""
    return _fan(tables, "factor", "AI-demand factor X_t", 0.0, "AI-demand factor X_t: quantiles by month")


@_optional
def gpu_fan(tables: dict[str, pd.DataFrame]) -> Figure:
    """Fan chart of the GPU market-value multiplier O_t·exp(β_g X_t − β_g²/2) by month."""
    return _fan(tables, "gpu_index", "GPU value multiplier (1 = no change)", 1.0,
                "GPU market-value multiplier O_t·exp(β_g X_t − β_g²/2): quantiles by month")


def _stacked_panels(frame: pd.DataFrame, scenarios: list[str], key: str, lower: str, upper: str, *, scale: float,
                    label: Callable[[float, pd.Series], str], top: float, ylim: float, pad_floor: float, ylabel: str,
                    names: tuple[str, str], bar_inches: float) -> Figure:
    """One panel per scenario of bars per ``key``: ``lower`` (solid) with ``upper`` (hatched) on top,
    both times ``scale``, each labelled ``label(total, row)``. Shared by firm_defaults and holder_losses."""
    order = _ordered(frame[key].astype(str))
    nrows, ncols = _grid(len(scenarios))
    fig = Figure(figsize=(max(5.0, bar_inches * len(order) + 1.5) * ncols + 0.4, 3.6 * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True).ravel()
    x = np.arange(len(order))
    for ax, scenario in zip(axes, scenarios):
        rows = frame[frame["scenario"] == scenario].set_index(key).reindex(order)
        low = scale * rows[lower].to_numpy(float)
        high = scale * rows[upper].to_numpy(float)
        ax.bar(x, low, color="C0", width=0.65)
        ax.bar(x, high, bottom=low, color="C3", width=0.65, hatch="//", edgecolor="white", lw=0)
        for xi, total, (_, row) in zip(x, low + high, rows.iterrows()):
            ax.text(xi, total + 0.015 * max(top, pad_floor), label(total, row), ha="center", va="bottom", fontsize=7)
        ax.set_xticks(x, order, rotation=20, ha="right", fontsize=8)
        ax.set_title(f"scenario {scenario}", fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
    for ax in axes[len(scenarios):]:
        ax.set_visible(False)
    axes[0].set_ylim(0, ylim)
    for row in range(nrows):
        axes[row * ncols].set_ylabel(ylabel)
    handles = [Patch(color="C0", label=names[0]), Patch(facecolor="C3", hatch="//", edgecolor="white", label=names[1])]
    fig.legend(handles=handles, loc="outside upper center", ncols=2, fontsize=8)
    return fig


@_optional
def firm_defaults(tables: dict[str, pd.DataFrame]) -> Figure:
    """Per firm, P(default) stacked as own failure and contagion; one panel per scenario."""
    net = _table(tables, "network", _NO_NETWORK)
    scenarios = [s for s in _scenarios(tables) if s in set(net["scenario"])]
    top = 100 * float(net["p_default"].max())
    fig = _stacked_panels(net, scenarios, "firm", "p_own", "p_contagion", scale=100.0,
                          label=lambda total, _: f"{total:.3g}%", top=top, ylim=max(top * 1.15, 1.0), pad_floor=1.0,
                          ylabel="P(default within the horizon)", names=("own failure", "contagion"), bar_inches=0.9)
    for ax in fig.axes[:len(scenarios)]:
        _percent_axis(ax)
    return fig


@_optional
def cascades(tables: dict[str, pd.DataFrame]) -> Figure:
    """Distribution of the cascade size (contagion defaults per path), one bar per scenario."""
    casc = _table(tables, "cascades", _NO_NETWORK)
    scenarios = [s for s in _scenarios(tables) if s in set(casc["scenario"])]
    seen = casc.loc[casc["probability"] > 0, "cascade_size"]
    largest = max(1, int(seen.max()) if not seen.empty else 1)
    sizes = np.arange(largest + 1)
    fig = Figure(figsize=(max(6.5, 1.3 * len(sizes) + 3), 4.4), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / max(1, len(scenarios))
    colours = _colours(scenarios)
    for j, scenario in enumerate(scenarios):
        rows = casc[casc["scenario"] == scenario].set_index("cascade_size").reindex(sizes)
        p = 100 * rows["probability"].fillna(0.0).to_numpy(float)
        xs = sizes + (j - (len(scenarios) - 1) / 2) * width
        ax.bar(xs, p, width=width * 0.95, color=colours[scenario], label=scenario)
        if len(sizes) * len(scenarios) <= 40:
            rotation = 90 if len(scenarios) > 2 else 0
            for xi, pi in zip(xs, p):
                ax.text(xi, pi + 0.8, f"{pi:.3g}%", ha="center", va="bottom", fontsize=7, rotation=rotation)
    ax.set_xticks(sizes)
    ax.set_xlabel("cascade size (contagion defaults on a path)")
    ax.set_ylabel("probability")
    ax.set_ylim(0, 112)
    _percent_axis(ax)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8, title="scenario", title_fontsize=8, loc="upper right")
    return fig


@_optional
def network_effect(tables: dict[str, pd.DataFrame]) -> Figure:
    """Tranche EL with and without the network on the same paths (cash-flow view, base scenario)."""
    if not _has_network(tables):
        raise FigureNotApplicable(_NO_NETWORK)
    cash = _cashflow(tables)
    if "el_without_network" not in cash.columns or cash["el_without_network"].isna().all():
        raise FigureNotApplicable("this run was not also simulated without the network (set network.compare_without = true)")
    scenario = _reference([s for s in _scenarios(tables) if s in set(cash["scenario"])])
    rows = cash[cash["scenario"] == scenario]
    keys = _tranche_keys(rows)
    with_ = 100 * rows["el"].to_numpy(float)
    without = 100 * rows["el_without_network"].to_numpy(float)
    se_with = 100 * rows["el_se"].to_numpy(float)
    se_without = 100 * (rows["el_se_without_network"].fillna(0.0).to_numpy(float)
                        if "el_se_without_network" in rows.columns else np.zeros(len(rows)))
    fig = Figure(figsize=(max(7.0, 1.0 * len(keys) + 3.0), 4.8), layout="constrained")
    ax = fig.subplots()
    x = _tranche_axis(ax, keys)
    positive = np.concatenate([with_[with_ > 0], without[without > 0]])
    floor = positive.min() / 4 if positive.size else 1e-3
    w = 0.38
    ax.bar(x - w / 2, without, width=w, color="0.65", label="without the network (hazard only)", bottom=0)
    ax.bar(x + w / 2, with_, width=w, color="C3", label="with the network", bottom=0)
    ax.errorbar(x - w / 2, np.maximum(without, floor), yerr=_error_bounds(np.maximum(without, floor), se_without, floor),
                fmt="none", ecolor="0.2", capsize=3, lw=1)
    ax.errorbar(x + w / 2, np.maximum(with_, floor), yerr=_error_bounds(np.maximum(with_, floor), se_with, floor),
                fmt="none", ecolor="0.2", capsize=3, lw=1)
    for xi, a, b in zip(x, with_, without):
        label = f"×{a / b:.2f}" if b > 0 else ("new" if a > 0 else "0")
        ax.text(xi, max(a, b, floor) * 1.9, label, ha="center", va="bottom", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylim(floor, max(100.0, positive.max() * 8 if positive.size else 100.0))
    _percent_axis(ax)
    ax.set_ylabel("expected loss (% of the tranche's balance)")
    ax.set_title(f"Tranche EL with and without the network (scenario {scenario})", fontsize=11)
    ax.grid(True, axis="y", which="major", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return fig


_NO_TRIGGERS = "no deal of this run has a DSCR trigger (deals.triggers)"


@_optional
def trigger_timing(tables: dict[str, pd.DataFrame]) -> Figure:
    """P(a DSCR trigger has fired by month t), one panel per deal, one colour per trigger, one line style per scenario."""
    trig = _table(tables, "triggers", _NO_TRIGGERS)
    deals = list(dict.fromkeys(trig["deal"].astype(str)))
    scenarios = [s for s in _scenarios(tables) if s in set(trig["scenario"])]
    fig = Figure(figsize=(7.0, 3.2 * len(deals) + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(deals), 1, squeeze=False)[:, 0])
    for ax, deal in zip(axes, deals):
        for c, trigger in enumerate(("cash_trap", "rapid_amortization")):
            for j, scenario in enumerate(scenarios):
                rows = trig[(trig["deal"].astype(str) == deal) & (trig["trigger"] == trigger) & (trig["scenario"] == scenario)]
                if rows.empty:
                    continue
                ax.step(rows["month"], 100 * rows["p_by_month"], where="post", color=f"C{c}",
                        linestyle=_LINESTYLES[j % len(_LINESTYLES)], label=f"{trigger.replace('_', ' ')} ({scenario})")
        ax.set_title(f"deal {deal}", fontsize=10)
        ax.set_xlabel("month")
        ax.set_ylabel("P(fired by month)")
        _percent_axis(ax)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    return fig


@_optional
def holder_losses(tables: dict[str, pd.DataFrame]) -> Figure:
    """Expected loss by holder type at the stress horizon, direct and from fire sales; one panel per scenario."""
    types = _table(tables, "holder_types", "this run has no holders (the config has no [[holders]])")
    scenarios = [s for s in _scenarios(tables) if s in set(types["scenario"])]
    top = float(types["el_total"].max()) / 1e6

    def amplification(_, row: pd.Series) -> str:
        return f"{row['amplification']:.2f}x" if np.isfinite(row["amplification"]) else "-"

    return _stacked_panels(types, scenarios, "type", "el_direct", "el_fire_sale", scale=1e-6, label=amplification,
                           top=top, ylim=max(top * 1.18, 1e-9), pad_floor=1e-9, ylabel="expected loss at the horizon ($m)",
                           names=("direct (marks)", "fire sales"), bar_inches=1.1)


FIGURES: dict[str, tuple[Callable[[dict], Figure | None], str, str]] = {
    "exceedance": (
        exceedance, "Tranche loss exceedance curves",
        "P(loss > x) for each tranche's principal loss at legal final (cash-flow waterfall view), x as a fraction of "
        "the tranche's balance, on a log scale: one panel per deal, one colour per tranche, one line style per "
        "scenario. Where a curve starts (x = 0) is the tranche's probability of any loss; a curve that stays flat to "
        "x = 1 means that a loss, when it happens, wipes the tranche out. The smallest probability a run can show is "
        "one path's, 1/paths; a tranche that lost nothing on any path has no curve.",
    ),
    "el_vs_ratings": (
        el_vs_ratings, "Tranche expected loss against rating thresholds",
        "Expected principal loss of each tranche (cash-flow view), in % of its balance on a log scale, with "
        "±1.96 standard errors (a 95% Monte Carlo interval); one marker per scenario; a hollow downward triangle at "
        "the bottom marks a tranche that lost nothing on any path. The dashed lines are the 10-year idealized "
        "expected-loss rates the implied ratings use (Moody's 10-year idealized default rates × 55% severity; "
        "engine/market/ratings.py gives the source). They are not adjusted for each tranche's WAL (the rates grow with the "
        "horizon), so read them as a scale: a tranche below a line has a lower EL than that rating's 10-year budget.",
    ),
    "factor_fan": (
        factor_fan, "AI-demand factor over time",
        "Quantiles of the AI-demand factor X_t by month in the base scenario (the first scenario run when base was "
        "not): median (solid), mean (dotted), the 25–75% band (dark) and the 5–95% band (light); other scenarios' "
        "medians as coloured lines. Without a burst X_t is standard normal in every month; a burst shifts it down by "
        "factor.burst.shift for good. Read how far and how fast AI demand can fall, and where scenarios part. "
        "Quantiles are binned to 0.01.",
    ),
    "gpu_fan": (
        gpu_fan, "GPU market-value multiplier over time",
        "Quantiles of the GPU market-value multiplier O_t·exp(β_g X_t − β_g²/2) by month, bands and lines as in the "
        "factor fan. It scales the depreciated GPU cost in every recovery and terminal sale: 1 means no change, "
        "below 1 chip releases (O_t) and weak AI demand cut resale prices. Read the collateral haircut a GPU sale "
        "faces at each month. Quantiles are binned to 0.0025.",
    ),
    "firm_defaults": (
        firm_defaults, "Firm defaults: own failure against contagion",
        "For each firm of the network, the probability of defaulting within the horizon, split into own failure "
        "(the firm would fail even if every counterparty paid it in full) and contagion (it fails because a "
        "counterparty did not pay); one panel per scenario, total above each bar. Read which firms fail on their own "
        "and which the circle brings down.",
    ),
    "cascades": (
        cascades, "Cascade size distribution",
        "Probability of each cascade size, the number of contagion defaults on a path, per scenario. Size 0 means "
        "that no firm failed through contagion. Read how likely one failure is to bring others down, and how far.",
    ),
    "trigger_timing": (
        trigger_timing, "When DSCR triggers first fire",
        "For each deal with DSCR triggers, the probability that the cash trap (blue) and rapid amortisation "
        "(orange) have fired by each month, one line style per scenario. A trap cures when the DSCR recovers, so "
        "this is its first firing; rapid amortisation never turns off. Read how early in the deal's life the "
        "structure starts diverting cash from the residual to the notes.",
    ),
    "network_effect": (
        network_effect, "Tranche expected loss with and without the network",
        "Expected principal loss of each tranche (cash-flow view) on the same simulated paths with the network's "
        "year-end clearing (red) and with the hazard-only model (grey), base scenario, in % of balance on a log "
        "scale, with ±1.96 standard errors; the label over each pair is the ratio with/without. Read how much of each "
        "tranche's risk comes from contagion in the circle rather than from its tenants' own default probabilities.",
    ),
    "holder_losses": (
        holder_losses, "Who bears the loss: holders by type",
        "Expected loss of each holder type at the stress horizon (contagion.horizon_month), in $m: the direct loss "
        "from marking its tranches and assets to their fundamental prices (blue) and the further loss from fire "
        "sales, its own and everyone else's (red, hatched); the label is the amplification ratio (direct + fire "
        "sale) / direct. One panel per scenario. Losses are measured from par; unheld paper and the buyers of forced "
        "sales are the `(outside)` row of holders.parquet, not drawn here.",
    ),
}


def available(tables: dict[str, pd.DataFrame]) -> dict[str, str | None]:
    """For each FIGURES name, None when the figure applies to the run, else why it does not.

    Decided from the tables alone, without drawing.
    """
    out: dict[str, str | None] = {}
    for name in FIGURES:
        out[name] = None
        if name in ("firm_defaults", "cascades", "network_effect") and not _has_network(tables):
            out[name] = _NO_NETWORK
        elif name == "cascades" and (tables.get("cascades") is None or tables["cascades"].empty):
            out[name] = "this run has no cascade table (summary/cascades.parquet)"
        elif name == "network_effect" and "el_without_network" not in tables.get("tranches", pd.DataFrame()).columns:
            out[name] = "this run was not also simulated without the network (set network.compare_without = true)"
        elif name == "exceedance" and tables.get("distributions") is None:
            out[name] = "this run has no loss distributions (summary/distributions.parquet)"
        elif name in ("factor_fan", "gpu_fan") and tables.get("fans") is None:
            out[name] = "this run has no fan table (summary/fans.parquet)"
        elif name == "trigger_timing" and (tables.get("triggers") is None or tables["triggers"].empty):
            out[name] = _NO_TRIGGERS
        elif name == "holder_losses" and (tables.get("holder_types") is None or tables["holder_types"].empty):
            out[name] = "this run has no holders (the config has no [[holders]])"
    return out
