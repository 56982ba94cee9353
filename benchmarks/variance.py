"""Variance reduction per second of wall time: importance sampling against plain Monte Carlo.

For each target tranche, both estimators run the same number of paths in this process; the ratio
that counts is the variance of the EL estimate times the wall time it took (the pilot included),
plain over importance-sampled: how much more work plain Monte Carlo needs for the same standard
error. The 99.9% VaR's confidence interval is compared the same way through the standard error of
the tail probability P(L > v) at v = the VaR (a quantile's interval is that SE over the density at v,
and the density is the same for both estimators), as a width ratio at equal time.

On ``qlpool`` the importance-sampled ELs of every allocation tranche at 20,000 paths, under each
target's sampling law, are also
compared with the semi-analytic binomial mixture (a homogeneous pool, static factor: one
integral), as z-scores.

Run alone: ``python benchmarks/variance.py [--quick]``; ``dcabs bench`` includes it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

from engine import load_config
from engine import run  # noqa: E402
from engine.simulation.chunk import Job  # noqa: E402
from engine.config import validate_config  # noqa: E402
from engine.simulation.execute import simulate  # noqa: E402

# (workload, config, importance section, tranches compared, view): each senior tranche of qlpool
# with its own importance-sampled run targeting it, as a user asking about that tranche would run.
# The 10–15% tranche also tilts the defaults, to its detachment's default share 0.15 / LGD 0.6; the
# hyperion senior loses only when its one tenant defaults before about month 138 (docs/model.md §9),
# so its run tilts the default to a floor of 0.8, confines the law to those months and draws the
# factor towards the tenant's hazard.
QLPOOL = HERE / "workloads" / "qlpool.toml"
CASES = (
    ("qlpool", QLPOOL, {"target": "qlpool.T10_15", "view": "allocation", "default_floor": 0.25}, ("T10_15",), "allocation"),
) + tuple(
    ("qlpool", QLPOOL, {"target": f"qlpool.{t}", "view": "allocation"}, (t,), "allocation")
    for t in ("T15_30", "T30_100")
) + (("hyperion", ROOT / "configs" / "hyperion.toml", {"target": "hyperion.A", "default_floor": 0.8, "horizon": 138,
                                                     "factor_tilt": "hazard"},
      ("A",), "cashflow"),)
LEVEL = 0.999


def _with_importance(cfg, section: dict):
    d = cfg.resolved()
    d["importance"] = section
    return validate_config(d, base_dir=cfg._base_dir)


def _timed(cfg, n: int, repeat: int = 2) -> tuple[float, object]:
    """Best wall time of ``repeat`` runs (chunks, plus the importance pilot), and the last result."""
    best, res = np.inf, None
    for _ in range(repeat):
        res = run(cfg, paths=n)
        t = res.manifest["timings"]
        s = t["simulate_s"] + (res.manifest["scenarios"]["base"]["timings"].get("importance_s") or 0.0)
        best = min(best, s)
    return best, res


def _per_path(cfg, n: int, tranches: list[int], view: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-path losses [n, k], likelihood ratios and the factor's strata K of an n-path run's own
    paths (the draws a run uses; K = 1: not stratified)."""
    job = Job.prepare(cfg.with_run(paths=n))
    src = job.source()
    out = simulate(job.plan, src, 0, n)
    loss = (out.tranche_alloc_loss if view == "allocation" else out.tranche_loss)[:, tranches]
    return loss, out.weight, src.strata  # the kernel's likelihood ratios (all 1 for plain Monte Carlo)


def _tail_se(loss: np.ndarray, w: np.ndarray, v: float, strata: int = 1) -> float:
    """SE of the estimate of P(L > v): Σ_h n_h·s_h² / n² over the strata (path j in stratum j mod K)."""
    x = w * (loss > v)
    cells = x.reshape(-1, strata) if strata > 1 else x[:, None]  # column h: the paths of stratum h
    return float(np.sqrt((cells.var(axis=0, ddof=1) * cells.shape[0]).sum()) / x.size)


def binomial_el(n: int, c: float, rho: float, months: int, lgd: float, a: float, d: float) -> float:
    """The semi-analytic EL of an allocation tranche of a homogeneous static-factor pool."""
    from scipy import integrate, special, stats

    k = np.arange(n + 1)
    payoff = np.minimum(np.maximum(lgd * k / n - a, 0.0), d - a) / (d - a)

    def f(x):
        q = special.ndtr((c - np.sqrt(rho) * x) / np.sqrt(1 - rho))
        P = 1.0 - (1.0 - q) ** months
        return float(stats.binom.pmf(k, n, P) @ payoff) * stats.norm.pdf(x)

    return integrate.quad(f, -12, 12, limit=500, epsabs=1e-13, epsrel=1e-11)[0]


def variance_reduction(quick: bool = False) -> dict:
    out: dict = {}
    plain_runs: dict = {}
    for name, path, section, names, view in CASES:
        cfg = load_config(path)
        n = {"qlpool": 200_000, "hyperion": 100_000}[name] // (10 if quick else 1)
        sampled = _with_importance(cfg, section)
        if name not in plain_runs:
            run(cfg, paths=4096)  # warm
            t_p, plain = _timed(cfg, n)
            plain_runs[name] = (t_p, plain, None)
        run(sampled, paths=4096)
        t_p, plain, _ = plain_runs[name]
        t_q, imp = _timed(sampled, n)
        keys = [f"{name}.{t}" for t in names]
        job = Job.prepare(cfg, warm=False)
        plan_keys = [f"{d}.{t}" for d, t in zip(job.plan.tranche_deal, job.plan.tranche_names)]
        idx = [plan_keys.index(k) for k in keys]
        if plain_runs[name][2] is None:
            plain_runs[name] = (t_p, plain, _per_path(cfg, n, list(range(len(plan_keys))), view))
        lp_all, wp, kp = plain_runs[name][2]
        lp = lp_all[:, idx]
        lq, wq, kq = _per_path(sampled, n, idx, view)
        rows = []
        for j, t in enumerate(names):
            rp = plain.tranches[(plain.tranches["tranche"] == t) & (plain.tranches["view"] == view)].iloc[0]
            rq = imp.tranches[(imp.tranches["tranche"] == t) & (imp.tranches["view"] == view)].iloc[0]
            el_ratio = (rp["el_se"] ** 2 * t_p) / (rq["el_se"] ** 2 * t_q)
            cv_ratio = (rp["el_se"] ** 2 * t_p) / (rq["el_cv_se"] ** 2 * t_q)
            v = float(rp["var999"])
            row = {"tranche": t, "el_plain": float(rp["el"]), "el_se_plain": float(rp["el_se"]), "el_is": float(rq["el"]),
                   "el_se_is": float(rq["el_se"]), "el_cv": float(rq["el_cv"]), "el_cv_se": float(rq["el_cv_se"]),
                   "ess_is": float(rq["ess"]), "var999_plain": v, "var999_is": float(rq["var999"]),
                   "el_variance_ratio_equal_paths": float(rp["el_se"] ** 2 / rq["el_se"] ** 2),
                   "el_variance_per_time_ratio": float(el_ratio), "el_cv_variance_per_time_ratio": float(cv_ratio)}
            if v < 1.0:  # an interior quantile; at the atom L = 1 both intervals are degenerate
                sp, sq = _tail_se(lp[:, j], wp, v, kp), _tail_se(lq[:, j], wq, v, kq)
                row["var999_ci_width_ratio_equal_time"] = float((sp / sq) * np.sqrt(t_p / t_q)) if sq > 0 else None
            else:
                row["var999_ci_width_ratio_equal_time"] = None
            rows.append(row)
        info = imp.manifest["scenarios"]["base"]["importance"]
        entry = {"paths": n, "plain_s": t_p, "importance_s": t_q, "factor_shift": info["factor_shift"],
                 "burst_hazard": info["burst_hazard"], "weight_mean": info["weight_mean"],
                 "weight_mean_se": info["weight_mean_se"], "strata": info.get("strata", 1),
                 "default_floor": info.get("default_floor"), "horizon": info.get("horizon"), "tranches": rows}
        if name == "qlpool":  # every tranche of each sampling law, against the binomial mixture
            entry["agreement"] = _qlpool_agreement(cfg, run(sampled, paths=20_000))
        out[f"{name} → {section['target']}"] = entry
    return out


def _qlpool_agreement(cfg, imp) -> list[dict]:
    """z-scores of every importance-sampled allocation EL against the binomial mixture."""
    try:
        import scipy  # noqa: F401
    except ImportError:
        return []
    t0 = cfg.tenants[0]
    if any((t.pd, t.rho) != (t0.pd, t0.rho) for t in cfg.tenants):
        return []
    c = imp.manifest["tenant_thresholds"][t0.name]
    deal = cfg.deals[0]
    lgd = 1.0 - deal.leases[0].recovery_rate
    rows = []
    for tr in deal.tranches:
        r = imp.tranches[(imp.tranches["tranche"] == tr.name) & (imp.tranches["view"] == "allocation")].iloc[0]
        ref = binomial_el(len(cfg.tenants), c, t0.rho, cfg.run.months, lgd, tr.attach, tr.detach)
        rows.append({"tranche": tr.name, "el_is": float(r["el"]), "el_se_is": float(r["el_se"]), "reference": ref,
                     "z": float((r["el"] - ref) / r["el_se"]), "el_cv": float(r["el_cv"]), "el_cv_se": float(r["el_cv_se"]),
                     "z_cv": float((r["el_cv"] - ref) / r["el_cv_se"])})
    return rows


def table(results: dict) -> str:
    lines = ["| run (target) | tranche | EL plain (se) | EL IS (se) | EL IS + control variate (se) | IS effective paths "
             "| EL variance, plain / IS (equal paths) | EL variance × time, plain / IS | … plain / IS + control variate "
             "| 99.9% VaR CI width, plain / IS at equal time |", "|---" * 10 + "|"]
    for name, e in results.items():
        for r in e["tranches"]:
            ci = r["var999_ci_width_ratio_equal_time"]
            lines.append(f"| {name} | {r['tranche']} | {r['el_plain']:.3g} ({r['el_se_plain']:.2g}) | {r['el_is']:.3g} "
                         f"({r['el_se_is']:.2g}) | {r['el_cv']:.3g} ({r['el_cv_se']:.2g}) | {r['ess_is']:,.0f} | "
                         f"{r['el_variance_ratio_equal_paths']:.1f}× | {r['el_variance_per_time_ratio']:.1f}× | "
                         f"{r['el_cv_variance_per_time_ratio']:.1f}× | "
                         + (f"{ci:.1f}× |" if ci is not None else "– (VaR at the atom L = 1) |"))
    for name, e in results.items():
        for r in e.get("agreement", []):
            lines.append(f"{name}, {r['tranche']}: IS EL {r['el_is']:.6f} ± {r['el_se_is']:.6f}, binomial mixture "
                         f"{r['reference']:.6f}, z = {r['z']:+.2f}; with the control variate "
                         f"{r['el_cv']:.6f} ± {r['el_cv_se']:.6f}, z = {r['z_cv']:+.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    res = variance_reduction(args.quick)
    print(table(res))
    for name, e in res.items():
        print(f"{name}: {e['paths']:,} paths each; plain {e['plain_s']:.2f} s, importance {e['importance_s']:.2f} s "
              f"(pilot included); shift {e['factor_shift']:+.3f}, {e['strata']} strata, burst hazard {e['burst_hazard']}, "
              f"horizon {e['horizon']}, default floor {e['default_floor']}, weights' mean "
              f"{e['weight_mean']:.4f} ± {e['weight_mean_se']:.4f}")
    print(f"({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
