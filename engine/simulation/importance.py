"""Importance sampling of the AI-demand factor: choosing the sampling law (docs/model.md §9).

Under the sampling law Q a share ``plain_share`` of the paths keep the model's own law and on the
others the factor's normals are shifted by m·d (so every Y_t to the horizon h_I has mean m instead
of 0; engine/plan/rng.py ``shift_direction``) and, when the burst month is random, it is drawn with a
tilted monthly hazard h_Q instead of h in months 1..h_I (a defensive mixture: every weight stays
below 1/plain_share); with ``default_floor`` the target deal's defaults are tilted too
(kernels/draws.py ``tilted_defaults``), and with ``factor_tilt = "hazard"`` the tilted paths' factor
is drawn towards the months where those tenants' hazard is high (``hazard_tilted_factor``; the
shift then defaults to 0 and is not fitted). The horizon, the floor and the factor tilt are the user's. Each path carries the likelihood ratio dP/dQ; every statistic is
weighted by it (engine/analytics/stats.py), so every estimate stays unbiased for the model's own law P.

The parameters (m, h_Q) are the user's (``[importance]``) or chosen by the cross-entropy method
(Rubinstein; for credit portfolios e.g. Chan & Kroese 2010): Q is moved towards the zero-variance
law, whose density is ∝ L·p for the target tranche's loss L, by maximising the weighted
log-likelihood of pilot paths. For the normal mean shift along d and the geometric burst month the
maximiser is explicit:

    m ← Σ s_i (d·ε_i) / (|d|² Σ s_i),     h_Q ← Σ s_i 1{B_i ≤ h_I} / Σ s_i (min(B_i, h_I+1) − 1 + 1{B_i ≤ h_I}),

with s_i = w_i·L_i. While fewer than ``MIN_HITS`` of the pilot's paths give the target a loss, the
rounds climb towards it on the deal's net loss instead (multi-level CE: s_i = w_i·1{NL_i ≥ γ}, γ
the (1 − RARE) quantile). The pilot's paths are numbered from ``PILOT_START``, apart from any run's,
so the estimates use draws the choice never saw; they are the same paths on every machine, so the
choice, like everything else, does not depend on chunking, threads or backend.
"""

from __future__ import annotations

import numpy as np

from engine.plan.compile import Plan
from engine.plan.rng import TiltedDrawSource, shift_direction, strata_count, tiltable_burst

PILOT_START = 1 << 40  # far past any run's paths (run.paths ≤ 10^10 < 2^34)
RARE = 0.1
MIN_HITS = 32  # pilot paths on which the target loses before the rounds aim at its loss itself
MAX_SHIFT = 8.0
HAZARD_RANGE = (1e-6, 0.5)


def target_tranche(cfg, plan: Plan) -> int:
    """Index (in the plan's tranche order) of the tranche the sampling law is tuned for."""
    imp = cfg.importance
    keys = [f"{d}.{t}" for d, t in zip(plan.tranche_deal, plan.tranche_names)]
    if imp.target is not None:
        return keys.index(imp.target)
    deal = cfg.deals[0]
    points = [(t.attach, t.name) for t in deal.tranches if t.attach is not None]
    if imp.view == "allocation" and not points:
        raise ValueError(f"importance.view: deal {deal.name!r} has no attach/detach points; name a `target`")
    if points:
        name = max(points)[1]
    else:
        first = next((s for s in deal.waterfall if s.type == "principal"), None)
        name = first.classes[0] if first is not None else deal.tranches[0].name
    return keys.index(f"{deal.name}.{name}")


def _burst_tiltable(cfg) -> bool:
    return tiltable_burst(cfg.factor.burst.monthly_hazard, cfg.factor.burst.month)


def _fits_shift(cfg) -> bool:
    """Whether the pilot chooses the factor shift: under ``factor_tilt = "hazard"`` an unset shift is 0,
    since the hazard tilt already draws the factor where the defaults are (and the explicit update
    below is the maximiser for the shifted normals alone, not for their hazard-tilted law)."""
    imp = cfg.importance
    return imp.factor_shift is None and imp.factor_tilt == "shift"


def resolved(cfg) -> bool:
    """Whether every parameter of the sampling law is fixed (no pilot needed)."""
    imp = cfg.importance
    return not _fits_shift(cfg) and (imp.burst_hazard is not None or not _burst_tiltable(cfg))


def cross_entropy(cfg, plan: Plan, simulate) -> dict:
    """Choose the parameters the config leaves open by cross-entropy rounds on pilot paths.

    ``simulate(plan, source, start, stop)`` runs the kernel. Returns the chosen ``factor_shift``
    and ``burst_hazard`` (None: untilted) and the rounds' record."""
    imp = cfg.importance
    k = target_tranche(cfg, plan)
    deal = plan.deal_names.index(plan.tranche_deal[k])
    T = cfg.run.months
    hz = imp.horizon or T
    d = shift_direction(cfg.factor.persistence, T, hz)
    dd = float((d * d).sum())
    fit_m = _fits_shift(cfg)
    fit_h = imp.burst_hazard is None and _burst_tiltable(cfg)
    m = imp.factor_shift or 0.0
    h = (cfg.factor.burst.monthly_hazard if fit_h else imp.burst_hazard) if _burst_tiltable(cfg) else None
    n, a = imp.pilot_paths, PILOT_START
    rounds = []
    for r in range(imp.pilot_rounds):
        src = TiltedDrawSource.for_config(cfg, shift=m, tilted_hazard=h, strata=1, plan=plan)
        out = simulate(plan, src, a, a + n)
        w, draws = out.weight, src.draws(a, a + n)  # the kernel's weights: the same bits as src.weights
        loss = out.tranche_alloc_loss[:, k] if imp.view == "allocation" else out.tranche_loss[:, k]
        hit = float((loss > 0).mean())
        if (loss > 0).sum() >= MIN_HITS:
            s, level = w * loss, "target"
        else:
            score = out.deal_net_loss[:, deal]
            if not (score > 0).any():  # no losses yet at all: climb on a low factor level
                score = -(draws.eps * d[None, :]).sum(axis=1)
            gamma = float(np.quantile(score, 1.0 - RARE))
            s, level = w * (score >= gamma), "net_loss"
        rounds.append({"round": r, "factor_shift": m, "burst_hazard": h, "target_hit": hit, "level": level})
        if s.sum() <= 0.0:
            break
        new_m, new_h = m, h
        if fit_m:
            proj = (draws.eps * d[None, :]).sum(axis=1)
            new_m = float(np.clip((s @ proj) / (dd * s.sum()), -MAX_SHIFT, MAX_SHIFT))
        if fit_h:
            B = draws.burst_month.astype(np.int64)
            burst = B <= hz  # the tilted hazard's months: 1..horizon
            tries = np.minimum(B, hz + 1) - 1 + burst
            new_h = float(np.clip((s @ burst) / (s @ tries), *HAZARD_RANGE)) if s @ tries > 0 else h
        settled = abs(new_m - m) < 0.02 and (h is None or abs(np.log(new_h / h)) < 0.05)
        m, h = new_m, new_h
        if level == "target" and settled:
            break
    return {"factor_shift": m, "burst_hazard": h, "target": f"{plan.tranche_deal[k]}.{plan.tranche_names[k]}",
            "chosen_by": "cross-entropy", "pilot_paths": n, "rounds": rounds}


def resolve(cfg, plan: Plan, simulate):
    """The config with its sampling law fixed, and a record of how it was chosen (for the manifest)."""
    imp = cfg.importance
    # The parts of the law the user fixes, recorded the same way whether or not a pilot ran.
    given = {"strata": strata_count(imp.strata, cfg.run.paths), "horizon": imp.horizon, "default_floor": imp.default_floor,
             "factor_tilt": imp.factor_tilt}
    if resolved(cfg):
        k = target_tranche(cfg, plan)
        info = {"factor_shift": imp.factor_shift or 0.0, "burst_hazard": imp.burst_hazard,
                "target": f"{plan.tranche_deal[k]}.{plan.tranche_names[k]}", "chosen_by": "config", "rounds": [], **given}
        if imp.factor_shift is None:  # a hazard tilt's unset shift: 0, written so the run's draws are the tilted ones
            cfg = cfg.with_overrides({"importance.factor_shift": 0.0})
        return cfg, info
    info = {**cross_entropy(cfg, plan, simulate), **given}
    changes = {"importance.factor_shift": info["factor_shift"], "importance.target": info["target"]}
    if info["burst_hazard"] is not None:
        changes["importance.burst_hazard"] = info["burst_hazard"]
    return cfg.with_overrides(changes), info
