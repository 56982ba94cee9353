"""The self-contained HTML report of a run directory: tables, figures inlined, config and manifest."""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from engine.analytics.diagnostics import _pct, estimator_line, run_warnings
from engine.analytics.frames import BASE, _optional_table, _ordered, _scenarios
from engine.io.files import atomic_write_bytes
from engine.io.rundir import read_run
from engine.report.figures import DPI, FIGURES, FIGURES_DIR, NOT_YET, REPORT, FigureNotApplicable

# ----------------------------------------------------------------------------------------- HTML


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return buf.getvalue()


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _money(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    v = float(v)
    for scale, unit in ((1e9, " bn"), (1e6, " m")):
        if abs(v) >= scale:
            return f"{v / scale:,.2f}{unit}"
    return f"{v:,.0f}"


def _num(v, digits: int = 4) -> str:
    if v is None:
        return "–"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v)).lower()
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        return "–" if math.isnan(v) else f"{float(v):.{digits}g}"
    return str(v)


def _frac(v) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else _pct(v)


def _html_table(header: list[str], rows: list[list[str]], numeric_from: int = 0, cls: str = "") -> str:
    """A table of already escaped cells; columns from ``numeric_from`` on are right-aligned."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{c}</td>' if i >= numeric_from > 0 else f"<td>{c}</td>" for i, c in enumerate(r))
        + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _frame_table(frame: pd.DataFrame, columns: list[tuple[str, str, Callable]], numeric_from: int) -> str:
    cols = [(c, label, fmt) for c, label, fmt in columns if c in frame.columns]
    rows = [[_e(fmt(r[c])) for c, _, fmt in cols] for _, r in frame.iterrows()]
    return _html_table([_e(label) for _, label, _ in cols], rows, numeric_from)


_TRANCHE_COLUMNS = [
    ("scenario", "scenario", str), ("deal", "deal", str), ("tranche", "tranche", str), ("view", "view", str),
    ("balance", "balance", _money), ("el", "EL", _frac), ("el_se", "EL s.e.", _frac),
    ("ess", "effective paths", lambda v: _num(v, 4)),
    ("el_cv", "EL, control variate", _frac), ("el_cv_se", "its s.e.", _frac), ("pd", "PD", _frac),
    ("lgd", "LGD", _frac), ("var99", "VaR 99%", _frac), ("es99", "ES 99%", _frac), ("pv_mean", "PV mean", _num),
    ("wal_mean", "WAL (years)", lambda v: _num(v, 3)), ("p_interest_shortfall", "P(interest shortfall)", _frac),
    ("el_without_network", "EL without network", _frac),
]
_DEAL_COLUMNS = [
    ("scenario", "scenario", str), ("deal", "deal", str), ("pool_balance", "pool balance", _money),
    ("nl_mean", "net loss mean", _frac), ("nl_se", "net loss s.e.", _frac), ("p_nl_positive", "P(net loss > 0)", _frac),
    ("nl_var99", "net loss VaR 99%", _frac), ("nl_es99", "net loss ES 99%", _frac),
    ("defaults_mean", "defaults mean", lambda v: _num(v, 3)), ("p_any_default", "P(any default)", _frac),
    ("reserve_used_mean", "reserve used", _frac), ("p_reserve_exhausted", "P(reserve exhausted)", _frac),
    ("p_cash_trap", "P(cash trap)", _frac), ("p_rapid_amortization", "P(rapid amortisation)", _frac),
    ("p_ard_refinanced", "P(ARD refinanced)", _frac), ("p_ard_swept", "P(ARD swept)", _frac),
    ("rvg_paid_mean", "RVG paid", _frac), ("recoveries_mean", "recoveries", _frac),
]
_NETWORK_COLUMNS = [
    ("scenario", "scenario", str), ("firm", "firm", str), ("p_default", "P(default)", _frac), ("p_own", "P(own)", _frac),
    ("p_contagion", "P(contagion)", _frac), ("clearing_ratio_mean", "clearing ratio", lambda v: _num(v, 3)),
    ("expected_defaults_caused", "defaults caused", lambda v: _num(v, 3)),
]


def _config_section(config: dict, scenarios: list[str]) -> str:
    parts = []
    for deal in config.get("deals") or []:
        leases = deal.get("leases") or []
        tape = deal.get("lease_tape")
        lease_text = f"{len(leases)} lease{'s' if len(leases) != 1 else ''}" if leases else f"lease tape {tape}"
        tenants = _ordered(l.get("tenant") for l in leases if l.get("tenant"))
        reserve = deal.get("reserve") or {}
        meta = (f"legal final month {deal.get('legal_final_month', '–')}; {lease_text}"
                + (f" (tenants: {', '.join(tenants)})" if tenants else "")
                + f"; reserve {_money(reserve.get('initial_balance', 0.0))} at closing")
        rows = [[_e(t.get("name")), _e(_money(t.get("balance"))), _e(_frac(t.get("coupon"))),
                 _e(_frac(t.get("attach"))), _e(_frac(t.get("detach"))), _e(t.get("amortization", "–"))]
                for t in deal.get("tranches") or []]
        parts.append(f"<h3>Deal {_e(deal.get('name'))}</h3><p>{_e(meta)}</p>"
                     + _html_table(["tranche", "balance", "coupon", "attach", "detach", "amortization"], rows, 1))
    tenants = config.get("tenants") or []
    if tenants:
        rows = [[_e(t.get("name")), _e(_frac(t.get("pd"))), _e(_num(t.get("rho"), 3)),
                 _e(t.get("default_month") if t.get("default_month") is not None else "–")] for t in tenants]
        parts.append("<h3>Tenants</h3>" + _html_table(["tenant", "annual PD", "ρ", "forced default month"], rows, 1))
    network = config.get("network") or {}
    firms = network.get("firms") or []
    if firms:
        rows = [[_e(f.get("name")), _e(f.get("tenant") or "–"), _e(_money(f.get("revenue"))),
                 _e(_frac(f.get("revenue_growth", 0.0))), _e(_money(f.get("cash"))), _e(_money(f.get("external_debt"))),
                 _e(_num(f.get("factor_beta"), 3))] for f in firms]
        state = "enabled" if network.get("enabled", True) else "disabled"
        parts.append(f"<h3>Network ({_e(state)}; α = {_e(_num(network.get('alpha'), 3))}, "
                     f"β = {_e(_num(network.get('beta'), 3))})</h3>"
                     + _html_table(["firm", "tenant", "revenue / year", "revenue growth", "cash", "external debt", "factor β"],
                                   rows, 2))
        obligations = network.get("obligations") or []
        if obligations:
            rows = [[_e(o.get("payer")), _e(o.get("payee")), _e(o.get("kind", "–")), _e(_money(o.get("amount"))),
                     _e(f"{o.get('start_year', '–')}–{o.get('end_year', '–')}"), _e(_frac(o.get("growth", 0.0)))]
                    for o in obligations]
            parts.append("<h3>Obligations</h3>"
                         + _html_table(["payer", "payee", "kind", "amount / year", "years", "growth"], rows, 3))
    defined = config.get("scenarios") or {}
    rows = []
    for name in _ordered([*scenarios, *defined]):
        spec = defined.get(name) or {}
        desc = "The config as written." if name == BASE else spec.get("description") or "–"
        overrides = "; ".join(f"{k} = {v}" for k, v in (spec.get("set") or {}).items()) or "–"
        ran = "yes" if name in scenarios else "no"
        rows.append([_e(name), _e(desc), f"<code>{_e(overrides)}</code>", _e(ran)])
    parts.append("<h3>Scenarios</h3>" + _html_table(["scenario", "description", "overrides", "in this run"], rows))
    return "".join(parts)


def _manifest_section(manifest: dict, scenarios: list[str]) -> str:
    keys = [("created_utc", "created (UTC)"), ("seed", "seed"), ("paths", "paths per scenario"), ("months", "months"),
            ("rng", "random numbers"), ("chunk_paths", "chunk (paths)"), ("threads", "threads"),
            ("config_sha256", "config SHA-256")]
    # The seed is an identifier to copy, not a quantity: no thousands separators.
    raw = {"seed", "config_sha256", "created_utc", "rng"}
    rows = [[_e(label), f"<code>{_e(manifest[k] if k in raw else _num(manifest[k]))}</code>"]
            for k, label in keys if k in manifest]
    out = _html_table(["field", "value"], rows, cls="kv")
    scen = manifest.get("scenarios") or {}
    if scen:
        srows = []
        # manifest.json is written with sorted keys; show the scenarios in run order.
        for name in _ordered([*(s for s in scenarios if s in scen), *scen]):
            info = scen[name]
            t = info.get("timings") or {}
            srows.append([_e(name), _e(_num(info.get("paths"))), f"<code>{_e(info.get('config_sha256', '–'))}</code>",
                          _e(_num(t.get("simulate_s"))), _e(_num(t.get("simulate_without_network_s"))),
                          _e(_num(t.get("paths_per_s"), 6))])
        out += "<h3>Scenarios run</h3>" + _html_table(
            ["scenario", "paths", "config SHA-256", "simulate (s)", "without network (s)", "paths / s"], srows, 3)
    timings = manifest.get("timings") or {}
    if timings:
        out += "<h3>Timings</h3>" + _html_table(
            ["field", "value"], [[_e(k), _e(_num(v, 6))] for k, v in timings.items()], cls="kv")
    versions = manifest.get("versions") or {}
    if versions:
        out += "<h3>Versions</h3><p>" + ", ".join(f"{_e(k)} <code>{_e(v)}</code>" for k, v in versions.items()) + "</p>"
    thresholds = manifest.get("tenant_thresholds") or {}
    if thresholds:
        out += "<h3>Tenant thresholds c<sub>i</sub> (base)</h3>" + _html_table(
            ["tenant", "threshold"], [[_e(k), _e(_num(v, 6))] for k, v in thresholds.items()], 1)
    return out


_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif; margin: 0 auto;
       max-width: 1180px; padding: 1.2em 2em 3em; color: #1d1d1f; line-height: 1.45; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.8em; }
h3 { font-size: 1.05em; margin: 1.2em 0 0.4em; }
.lede { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.4em 0 1em; font-size: 0.85em; }
th, td { border: 1px solid #d4d4d4; padding: 0.22em 0.55em; text-align: left; vertical-align: top; }
th { background: #f1f3f6; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #fafafa; }
code { font-size: 0.92em; word-break: break-all; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; height: auto; border: 1px solid #e2e2e2; }
figcaption { font-size: 0.9em; color: #333; max-width: 62em; }
ul.warnings li { margin: 0.2em 0; } .none { color: #666; font-style: italic; }
nav ol { columns: 2; font-size: 0.9em; } .scroll { overflow-x: auto; }
"""


def render_html(run_dir: Path, tables: dict[str, pd.DataFrame], manifest: dict,
                figures: list[tuple[str, str, str, bytes]], missing: list[tuple[str, str]]) -> str:
    """The report page. ``figures``: (name, title, caption, png); ``missing``: (name, why)."""
    config = manifest.get("config") or {}
    scenarios = _scenarios(tables)
    deal_names = [d.get("name") for d in config.get("deals") or []]
    if not deal_names and "tranches" in tables:
        deal_names = _ordered(tables["tranches"]["deal"].astype(str))
    title = f"dcabs run report: {', '.join(map(str, deal_names)) or run_dir.name}"
    lede = (f"Run directory {run_dir.name}; scenarios {', '.join(scenarios)}; "
            f"{_num(manifest.get('paths'))} paths per scenario, seed {manifest.get('seed', '–')}, "
            f"{_num(manifest.get('months'))} months. Config SHA-256 {manifest.get('config_sha256', '–')}.")
    # Findings first, then what produced them: a reader opens the page for the warnings and figures.
    sections = [("warnings", "Warnings"), ("figures", "Figures"), ("not-available", "Figures not available for this run"),
                ("tables", "Summary tables"), ("config", "Configuration"), ("manifest", "Manifest")]
    nav = "<nav><ol>" + "".join(f'<li><a href="#{k}">{_e(v)}</a></li>' for k, v in sections) + "</ol></nav>"

    warns = run_warnings(tables)
    warn_html = ('<ul class="warnings">' + "".join(f"<li>{_e(w)}</li>" for w in warns) + "</ul>") if warns else \
        '<p class="none">No warnings: no tranche lost principal or interest and no reserve was drawn.</p>'

    fig_html = []
    for name, ftitle, caption, png in figures:
        data = base64.b64encode(png).decode("ascii")
        fig_html.append(f'<figure id="fig-{_e(name)}"><h3>{_e(ftitle)}</h3>'
                        f'<img src="data:image/png;base64,{data}" alt="{_e(ftitle)}">'
                        f"<figcaption>{_e(caption)} <code>figures/{_e(name)}.png</code></figcaption></figure>")
    missing_html = "<ul>" + "".join(f"<li><strong>{_e(n)}</strong>: {_e(why)}</li>" for n, why in missing) + "</ul>"

    table_html = []
    for key, columns, numeric_from, heading in (
            ("tranches", _TRANCHE_COLUMNS, 4, "Tranches"), ("deals", _DEAL_COLUMNS, 2, "Deals"),
            ("network", _NETWORK_COLUMNS, 2, "Network firms")):
        frame = _optional_table(tables, key)
        if frame is not None:
            table_html.append(f"<h3>{_e(heading)}</h3><div class=\"scroll\">"
                              f"{_frame_table(frame, columns, numeric_from)}</div>")
    notes = ("<p class=\"lede\">EL, PD, LGD, VaR and ES are fractions of each tranche's balance; the cash-flow view is "
             "the waterfall, the allocation view the attach/detach cut of the pool's net loss. PV is per unit of "
             "balance. Effective paths: (Σw·L)²/Σ(w·L)², the number of equally weighted loss paths the EL rests on.</p>"
             f"<p class=\"lede\">{_e(estimator_line(manifest, scenarios))}</p>")

    no_figures = '<p class="none">No figure applies to this run.</p>'
    built = datetime.now(timezone.utc).isoformat(timespec="seconds")
    body = (
        f"<h1>{_e(title)}</h1><p class=\"lede\">{_e(lede)}</p>{nav}"
        f"<h2 id=\"warnings\">Warnings</h2>{warn_html}"
        f"<h2 id=\"figures\">Figures</h2>{''.join(fig_html) or no_figures}"
        f"<h2 id=\"not-available\">Figures not available for this run</h2>{missing_html}"
        f"<h2 id=\"tables\">Summary tables</h2>{notes}{''.join(table_html)}"
        f"<h2 id=\"config\">Configuration</h2>{_config_section(config, scenarios)}"
        f"<h2 id=\"manifest\">Manifest</h2>{_manifest_section(manifest, scenarios)}"
        f"<p class=\"lede\">Report built {_e(built)}.</p>"
    )
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>{body}</body></html>\n")


def build_report(run_dir: str | Path) -> Path:
    """Draw the figures of a finished run and write its self-contained HTML report.

    Parameters
    ----------
    run_dir : a run directory with ``manifest.json`` and ``summary/*.parquet``.

    Returns
    -------
    Path of ``run_dir/report.html``. Every figure that applies is also written to
    ``run_dir/figures/<name>.png``; a PNG left by an earlier report for a figure that no longer
    applies is removed, so the directory always matches the page.
    """
    run_dir = Path(run_dir)
    tables, manifest = read_run(run_dir)
    drawn, missing = [], []
    for name, (figure, title, caption) in FIGURES.items():
        target = run_dir / FIGURES_DIR / f"{name}.png"
        try:
            fig = figure.draw(tables)
        except FigureNotApplicable as why:
            target.unlink(missing_ok=True)
            missing.append((f"{title} ({name})", str(why)))
            continue
        png = _png(fig)
        atomic_write_bytes(target, png)
        drawn.append((name, title, caption, png))
    missing += [(name, why) for name, why in NOT_YET.items()]
    page = render_html(run_dir, tables, manifest, drawn, missing)
    path = run_dir / REPORT
    atomic_write_bytes(path, page.encode("utf-8"))
    return path
