"""A plain vectorised-numpy implementation of the dcabs model (docs/model.md §0–5), for benchmarking.

This is the code a quant would write without numba: every array is [paths, ...] and Python loops run
only over months, tenants (hazard classes), leases and waterfall steps, never over paths. It has its
own random numbers (``np.random.default_rng(seed)``), so it agrees with the engine statistically,
not path by path.

Supported: AR(1) factor with stationary start and geometric/fixed burst; Gaussian one-factor
per-tenant hazards with Exp(1) thresholds on the cumulative hazard and forced default months;
straight-line/exponential GPU curve, scheduled obsolescence, factor loadings; rent with escalators,
`sale`/`fixed` recovery, terminal sales; the waterfall steps fees, interest, reserve (target, draws,
release), principal (sequential/pro_rata; sweep/level/bullet/schedule), trap and residual; the
trailing 3-month DSCR triggers (cash trap, rapid amortisation: per-path state, vectorised); the
loss-allocation view.
Unsupported (raise NotImplementedError, naming the feature): the t-copula, Poisson chip releases,
the network, deterministic what-ifs, lease options (renewals, RVG, re-letting, early termination),
deferrable (PIK) classes, the ARD (and `io` classes, which need it), ABS-of-ABS collateral
tranches.

Thresholds c_i are taken from ``engine.plan.compile.compile_plan(cfg).tenant_threshold`` (calibration is
not what is benchmarked).

    .venv/bin/python benchmarks/numpy_reference.py [config.toml|base|qlpool] [paths]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from scipy.special import ndtr

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# --------------------------------------------------------------------------- config -> arrays


def _as_config(cfg):
    import engine
    from engine.config import Config, validate_config

    if isinstance(cfg, Config):
        return cfg
    if isinstance(cfg, dict):
        return validate_config(cfg)
    return engine.load_config(cfg)


def _check_supported(cfg):
    if cfg.factor.student_t_dof is not None:
        raise NotImplementedError("t-copula (factor.student_t_dof) is not supported by the numpy reference")
    if cfg.gpu.releases == "poisson":
        raise NotImplementedError("Poisson chip releases are not supported by the numpy reference")
    if cfg.network is not None and cfg.network.enabled:
        raise NotImplementedError("the circular-financing network is not supported by the numpy reference")
    if cfg.deterministic is not None:
        raise NotImplementedError("deterministic what-ifs are not supported by the numpy reference")
    for deal in cfg.deals:
        where = f"deal {deal.name!r}: "
        if deal.collateral_tranches:
            raise NotImplementedError(where + "ABS-of-ABS (collateral_tranches) is not supported by the numpy reference")
        if deal.ard is not None:
            raise NotImplementedError(where + "the ARD is not supported by the numpy reference")
        for tr in deal.tranches:
            if tr.deferrable:
                raise NotImplementedError(where + f"deferrable (PIK) class {tr.name!r} is not supported by the numpy reference")
            if tr.amortization == "io":
                raise NotImplementedError(where + f"`io` class {tr.name!r} (needs the ARD) is not supported by the numpy reference")
        optioned = [x for x in deal.all_leases if x.has_options]
        if optioned:
            raise NotImplementedError(where + f"{len(optioned)} lease(s) with options (renewals, RVG, re-letting or early "
                                      "termination) are not supported by the numpy reference")


def prepare(cfg) -> dict:
    """Everything deterministic: thresholds, lease arrays, rent schedules, tranche schedules."""
    from engine.plan.compile import compile_plan

    cfg = _as_config(cfg)
    _check_supported(cfg)
    T = cfg.run.months
    months = np.arange(T + 1)
    tenants = cfg.tenants
    tindex = {t.name: i for i, t in enumerate(tenants)}
    c = np.asarray(compile_plan(cfg).tenant_threshold, dtype=float)
    rho = np.array([t.rho for t in tenants])
    forced = np.array([t.default_month if t.default_month is not None else T + 1 for t in tenants])
    forced = np.minimum(forced, T + 1)
    # Tenants sharing (c, rho) have the same q_i(t): compute it once per class.
    classes, tenant_class = np.unique(np.stack([c, rho], axis=1), axis=0, return_inverse=True)

    g = cfg.gpu
    n_rel = np.where(months >= g.first_release_month,
                     np.floor((months - g.first_release_month) / g.generation_interval_months) + 1, 0)
    obsolescence = (1.0 - g.obsolescence_haircut) ** n_rel

    deals = []
    for deal in cfg.deals:
        L = deal.all_leases
        lease = {
            "tenant": np.array([tindex[x.tenant] for x in L]),
            "start": np.array([x.start_month for x in L]),
            "end": np.array([x.start_month + x.term_months for x in L]),
            "gpu": np.array([x.gpu_cost for x in L], dtype=float),
            "shell": np.array([x.shell_value for x in L], dtype=float),
            "a0": np.array([x.start_month if x.gpu_in_service_month is None else x.gpu_in_service_month for x in L]),
            "fixed": np.array([x.recovery == "fixed" for x in L]),
            "rr": np.array([x.recovery_rate for x in L], dtype=float),
            "rec_lag": np.array([x.recovery_lag for x in L]),
            "sale_lag": np.array([x.sale_lag for x in L]),
            "liq": np.array([x.liquidation_cost for x in L], dtype=float),
        }
        s, e = lease["start"][:, None], lease["end"][:, None]
        esc = np.array([x.escalator for x in L])[:, None]
        R = np.array([x.monthly_rent for x in L])[:, None]
        live = (months[None, :] > s) & (months[None, :] <= e)
        rent = np.where(live, R * (1.0 + esc) ** np.floor_divide(np.maximum(months[None, :] - s - 1, 0), 12), 0.0)
        lease["rent"] = rent
        # Rent schedules summed per tenant of the deal (rent stops for all of a tenant's leases at once).
        deal_tenants = np.unique(lease["tenant"])
        group_rent = np.stack([rent[lease["tenant"] == i].sum(axis=0) for i in deal_tenants])
        group_suffix = np.cumsum(group_rent[:, ::-1], axis=1)[:, ::-1]          # rent of months t..T
        group_suffix = np.concatenate([group_suffix, np.zeros((len(deal_tenants), 1))], axis=1)
        p0 = rent.sum() + lease["gpu"].sum() + lease["shell"].sum()

        tr = deal.tranches
        names = [x.name for x in tr]
        kinds = [st.type for st in deal.waterfall]
        reserve_at = kinds.index("reserve") if "reserve" in kinds else len(kinds)
        senior = {cl for si, st in enumerate(deal.waterfall) if st.type == "interest" and si < reserve_at for cl in st.classes}
        LF = deal.legal_final_month
        targets = []
        for x in tr:
            tgt = np.zeros(T + 1)
            if x.amortization == "level":
                a, b = x.amort_start_month, x.amort_end_month or LF
                tgt = x.balance * np.clip((b - months) / (b - a), 0.0, 1.0)
            elif x.amortization == "bullet":
                tgt = np.where(months < LF, x.balance, 0.0)
            elif x.amortization == "schedule":
                tgt = np.full(T + 1, x.balance)
                for month, b in x.target_schedule:
                    tgt[month:] = b
            targets.append(tgt)
        steps = []
        for si, st in enumerate(deal.waterfall):
            steps.append({
                "type": st.type,
                "idx": np.array([names.index(cl) for cl in getattr(st, "classes", ())], dtype=int),
                "pro_rata": getattr(st, "mode", "sequential") == "pro_rata",
                "draws": st.type in ("fees", "interest") and si < reserve_at,
            })
        deals.append({
            "name": deal.name, "lease": lease, "tenants": deal_tenants, "group_rent": group_rent,
            "group_suffix": group_suffix, "p0": p0, "LF": LF,
            "names": names,
            "balance": np.array([x.balance for x in tr], dtype=float),
            "coupon_m": np.array([x.coupon / 12.0 for x in tr]),
            "ios": np.array([x.interest_on_shortfall for x in tr]),
            "senior": np.array([x.name in senior for x in tr]),
            "scheduled": np.array([x.amortization != "sweep" for x in tr]),
            "target": np.array(targets).reshape(len(tr), T + 1),
            "attach": np.array([np.nan if x.attach is None else x.attach for x in tr]),
            "detach": np.array([np.nan if x.detach is None else x.detach for x in tr]),
            "reserve0": deal.reserve.initial_balance, "reserve_months": deal.reserve.target_months,
            "reserve_rate_m": deal.reserve.rate / 12.0,
            "fee_rate_m": deal.fees.bps / 1e4 / 12.0, "fee_fixed": deal.fees.fixed_monthly,
            "trap_dscr": deal.triggers.cash_trap_dscr, "rapid_dscr": deal.triggers.rapid_amortization_dscr,
            "steps": steps,
        })
    return {
        "cfg": cfg, "T": T, "months": months,
        "phi": cfg.factor.persistence, "burst_h": cfg.factor.burst.monthly_hazard,
        "burst_month": cfg.factor.burst.month, "burst_shift": cfg.factor.burst.shift,
        "class_c": classes[:, 0], "class_rho": classes[:, 1], "tenant_class": tenant_class.reshape(-1),
        "forced": forced, "n_tenants": len(tenants),
        "curve": g.curve, "gpu_life": g.economic_life_months, "half_life": g.half_life_months,
        "salvage": g.salvage, "obsolescence": obsolescence, "beta_g": g.factor_beta,
        "beta_s": cfg.facility.factor_beta, "shell_life": cfg.facility.life_months,
        "deals": deals,
    }


# --------------------------------------------------------------------------- factor and defaults


def factor_paths(P, n, rng):
    """X[n, T+1]: AR(1) with stationary start plus the burst shift from month B on."""
    T, phi = P["T"], P["phi"]
    eps = rng.standard_normal((n, T + 1))
    u = rng.random(n)
    if P["burst_month"] is not None:
        B = np.full(n, min(P["burst_month"], T + 1))
    elif P["burst_h"] <= 0.0:
        B = np.full(n, T + 1)
    elif P["burst_h"] >= 1.0:
        B = np.ones(n, dtype=int)
    else:
        B = np.clip(np.ceil(np.log1p(-u) / np.log1p(-P["burst_h"])), 1, T + 1)
    Y = np.empty((n, T + 1))
    Y[:, 0] = eps[:, 0]
    scale = np.sqrt(max(0.0, 1.0 - phi * phi))
    for t in range(1, T + 1):
        Y[:, t] = phi * Y[:, t - 1] + scale * eps[:, t]
    return Y + P["burst_shift"] * (P["months"][None, :] >= B[:, None])


def class_pd(P, X, k):
    """q_k(t)[n, T+1] of hazard class k (column 0 unused)."""
    c, r = P["class_c"][k], P["class_rho"][k]
    return ndtr((c - np.sqrt(r) * X) / np.sqrt(1.0 - r))


def default_months_hazard(P, X, rng):
    """tau[n, N]: first t ≥ 1 with Σ_{u≤t} −ln(1 − q_i(u)) ≥ E_i, E_i ~ Exp(1); T+1 if none."""
    n, T1 = X.shape
    E = rng.standard_exponential((n, P["n_tenants"]))
    tau = np.empty((n, P["n_tenants"]), dtype=np.int64)
    for k in range(len(P["class_c"])):
        q = class_pd(P, X[:, 1:], k)
        with np.errstate(divide="ignore"):
            H = np.cumsum(-np.log1p(-q), axis=1)                              # [n, T], months 1..T
        for i in np.flatnonzero(P["tenant_class"] == k):
            # H is non-decreasing: the number of months with H < E is τ − 1.
            tau[:, i] = 1 + (H < E[:, i:i + 1]).sum(axis=1)
    return np.minimum(tau, P["forced"][None, :])


# --------------------------------------------------------------------------- collateral and leases


def gpu_depreciation(P, age):
    age = np.maximum(age, 0.0)
    if P["curve"] == "straight_line":
        return np.maximum(P["salvage"], 1.0 - (1.0 - P["salvage"]) * age / P["gpu_life"])
    return P["salvage"] + (1.0 - P["salvage"]) * 2.0 ** (-age / P["half_life"])


def value_indices(P, X):
    bg, bs = P["beta_g"], P["beta_s"]
    gidx = P["obsolescence"][None, :] * np.exp(bg * X - 0.5 * bg * bg)
    sidx = np.exp(bs * X - 0.5 * bs * bs)
    return gidx, sidx


def deal_collections(P, D, tau, gidx, sidx):
    """Collections [n, T+1] of deal D and its net-loss fraction NL_T [n]."""
    n = tau.shape[0]
    T, months = P["T"], P["months"]
    rows = np.arange(n)
    cash = np.zeros((n, T + 1))
    loss = np.zeros(n)
    # Rent: each tenant's aggregated schedule, stopping from month τ.
    for g, i in enumerate(D["tenants"]):
        ti = tau[:, i]
        cash += D["group_rent"][g][None, :] * (months[None, :] < ti[:, None])
        loss += np.where(ti <= T, D["group_suffix"][g][np.minimum(ti, T + 1)], 0.0)
    L = D["lease"]
    for j in range(len(L["tenant"])):
        ti = tau[:, L["tenant"][j]]
        gpu, shell, keep = L["gpu"][j], L["shell"][j], 1.0 - L["liq"][j]
        collateral = gpu + shell
        # Natural end: terminal sale at end + sale_lag if the tenant survived the term.
        m = L["end"][j] + L["sale_lag"][j]
        if m <= T and collateral > 0.0:
            value = (gpu * gpu_depreciation(P, m - L["a0"][j]) * gidx[:, m]
                     + shell * max(0.0, 1.0 - m / P["shell_life"]) * sidx[:, m]) * keep
            cash[:, m] += np.where(ti > L["end"][j], value, 0.0)
        # Default by the end of the term (within the horizon): recovery at τ + recovery_lag.
        dflt = (ti <= T) & (ti <= L["end"][j])
        if not dflt.any():
            continue
        r = ti + L["rec_lag"][j]
        paid = dflt & (r <= T)
        rc = np.minimum(r, T)
        if L["fixed"][j]:
            proceeds = np.full(n, L["rr"][j] * collateral)
        else:
            proceeds = (gpu * gpu_depreciation(P, rc - L["a0"][j]) * gidx[rows, rc]
                        + shell * np.maximum(0.0, 1.0 - rc / P["shell_life"]) * sidx[rows, rc]) * keep
        proceeds = np.where(paid, proceeds, 0.0)
        cash[rows[paid], rc[paid]] += proceeds[paid]
        loss += np.where(dflt, np.maximum(0.0, collateral - proceeds), 0.0)
    nl = np.minimum(loss / D["p0"], 1.0) if D["p0"] > 0 else np.zeros(n)
    return cash, nl


# --------------------------------------------------------------------------- waterfall


def waterfall(D, cash, trace: dict | None = None):
    """Run the deal's priority of payments over months 1..legal final, vectorised over paths.

    Triggers are per-path state: the trailing 3-month DSCR (numerator and denominator sums kept as
    [n] arrays), ``trap_on`` [n] (re-tested every month, it cures) and ``sweep`` [n] (once on, on
    for good). Every step computes the sweeping and the normal behaviour for all paths and selects
    with ``np.where``. Returns principal loss [n, K] (unpaid balance / original) and interest
    shortfall [n, K]; fills ``trace`` (if given) with the first trap and rapid-amortisation months [n].
    """
    n = cash.shape[0]
    K = len(D["names"])
    bal = np.tile(D["balance"], (n, 1))
    short = np.zeros((n, K))
    res = np.full(n, float(D["reserve0"]))
    trapped = np.zeros(n)
    fee_short = np.zeros(n)
    cpn = D["coupon_m"]
    LF = D["LF"]
    senior, scheduled = D["senior"], D["scheduled"]
    trap_level, rapid_level = D["trap_dscr"], D["rapid_dscr"]
    triggers = trap_level > 0.0 or rapid_level > 0.0
    window = 3
    cf = [np.zeros(n) for _ in range(window)]     # collections − new fees, months t−3..t−1
    ds = [np.zeros(n) for _ in range(window)]     # senior interest + scheduled principal, same months
    trap_on = np.zeros(n, dtype=bool)
    sweep = np.zeros(n, dtype=bool)
    trap_month = np.zeros(n, dtype=np.int64)
    rapid_month = np.zeros(n, dtype=np.int64)
    for t in range(1, LF + 1):
        final = t == LF
        bal0 = bal.copy()
        behind = np.maximum(0.0, bal0 - D["target"][:, t][None, :])
        new_fee = D["fee_rate_m"] * bal0.sum(axis=1) + D["fee_fixed"]
        if triggers:
            if t > window:
                num = cf[0] + cf[1] + cf[2]
                den = ds[0] + ds[1] + ds[2]
                dscr = np.where(den > 0.0, num / np.where(den > 0.0, den, 1.0), np.inf)
                trap_on = (dscr < trap_level) if trap_level > 0.0 else trap_on
                trap_month = np.where(trap_on & (trap_month == 0), t, trap_month)
                if rapid_level > 0.0:
                    hit = dscr < rapid_level
                    rapid_month = np.where(hit & (rapid_month == 0), t, rapid_month)
                    sweep = sweep | hit
            service = (bal0[:, senior] * cpn[senior][None, :]).sum(axis=1) + behind[:, scheduled].sum(axis=1)
            cf = cf[1:] + [cash[:, t] - new_fee]
            ds = ds[1:] + [service]
        avail = cash[:, t] + res * D["reserve_rate_m"]
        if final:
            avail = avail + res
            res = np.zeros(n)
            trapped = np.zeros(n)
        for st in D["steps"]:
            kind = st["type"]
            if kind in ("fees", "interest"):
                if kind == "fees":
                    due = fee_short + new_fee
                else:
                    idx = st["idx"]
                    carried = short[:, idx] * np.where(D["ios"][idx], 1.0 + cpn[idx], 1.0)[None, :]
                    due_k = cpn[idx][None, :] * bal0[:, idx] + carried
                    due = due_k.sum(axis=1)
                pay = np.minimum(avail, due)
                avail = avail - pay
                if st["draws"]:
                    gap = due - pay
                    draw = np.minimum(res, gap)
                    pay = np.where(res >= gap, due, pay + draw)
                    res = res - draw
                full = pay >= due
                if kind == "fees":
                    fee_short = np.where(full, 0.0, due - pay)
                else:
                    frac = np.where(due > 0, pay / np.where(due > 0, due, 1.0), 1.0)
                    paid_k = np.where(full[:, None], due_k, due_k * frac[:, None])
                    short[:, idx] = np.where(full[:, None], 0.0, due_k - paid_k)
            elif kind == "reserve":
                if final:
                    target = np.zeros(n)
                else:
                    target = D["reserve_months"] * (bal0[:, senior] * cpn[senior][None, :]).sum(axis=1)
                # Trapped cash sits in the reserve account but does not count towards its target.
                dep = np.minimum(avail, np.maximum(0.0, target - (res - trapped)))
                res = res + dep
                avail = avail - dep
            elif kind == "principal":
                idx = st["idx"]
                b = bal[:, idx]
                if final:
                    due_k = b
                else:
                    sched = scheduled[idx][None, :] & ~sweep[:, None]
                    due_k = np.where(sched, np.maximum(0.0, b - D["target"][idx, t][None, :]), b)
                total = due_k.sum(axis=1)
                full = avail >= total
                # Sequential: each class in list order takes what is left (a sweeping deal always pays so).
                seq = b.copy()
                left = avail.copy()
                for c in range(len(idx)):
                    p = np.minimum(left, due_k[:, c])
                    left = left - p
                    seq[:, c] = np.where(p >= b[:, c], 0.0, b[:, c] - p)
                if st["pro_rata"]:
                    pot = np.minimum(avail, total)
                    frac = np.where(total > 0, pot / np.where(total > 0, total, 1.0), 1.0)
                    paid_k = np.where(full[:, None], due_k, due_k * frac[:, None])
                    paid_k = np.minimum(paid_k, avail[:, None])
                    pro = np.where(paid_k >= b, 0.0, b - paid_k)
                    new = np.where(sweep[:, None], seq, pro)
                    left = np.where(sweep, left, avail - paid_k.sum(axis=1))
                else:
                    new = seq
                bal[:, idx] = new
                avail = np.maximum(left, 0.0)
            elif kind == "trap":
                if final:
                    continue
                # On: everything left goes to the reserve account, as trapped cash. Off: the trapped
                # cash still there (draws may have used some) comes back into the waterfall here.
                back = np.where(trap_on, 0.0, np.minimum(trapped, res))
                into = np.where(trap_on, avail, 0.0)
                res = res + into - back
                avail = avail - into + back
                trapped = np.where(trap_on, trapped + into, 0.0)
            elif kind == "residual":
                avail = np.zeros(n)
    if trace is not None:
        trace["cash_trap_month"] = trap_month
        trace["rapid_amortization_month"] = rapid_month
    orig = D["balance"][None, :]
    return bal / orig, short / orig


# --------------------------------------------------------------------------- driver


def deal_outputs(D, cash, nl):
    """Waterfall and loss-allocation view of deal D from its collections [n, T+1] and NL_T [n]:
    (principal loss [n, K], allocated loss [n, K], first cash-trap month [n], first rapid-amortisation month [n])."""
    trace: dict = {}
    pl, _ = waterfall(D, cash, trace)
    A, Dt = D["attach"][None, :], D["detach"][None, :]
    w = Dt - A
    al = np.minimum(np.maximum(nl[:, None] - A, 0.0), w) / w      # NaN where no attach/detach
    return pl, al, trace["cash_trap_month"], trace["rapid_amortization_month"]


def assemble(P, per_deal, nls):
    """Stack the per-deal outputs of one block into the arrays ``simulate`` returns."""
    pl, al, trap, rapid = zip(*per_deal)
    return (np.concatenate(pl, axis=1), np.concatenate(al, axis=1), np.stack(nls, axis=1),
            np.stack(trap, axis=1), np.stack(rapid, axis=1))


def simulate_block(P, n, rng, default_months=default_months_hazard):
    X = factor_paths(P, n, rng)
    tau = default_months(P, X, rng)
    gidx, sidx = value_indices(P, X)
    per_deal, nls = [], []
    for D in P["deals"]:
        cash, nl = deal_collections(P, D, tau, gidx, sidx)
        per_deal.append(deal_outputs(D, cash, nl))
        nls.append(nl)
    return assemble(P, per_deal, nls)


def simulate(cfg, n_paths: int, seed: int = 0, *, chunk: int = 50_000, default_months=default_months_hazard,
             prepared: dict | None = None, block=None) -> dict:
    """Simulate ``n_paths`` paths. Returns per-path arrays:

    ``principal_loss`` [n, K] and ``alloc_loss`` [n, K] (NaN for tranches without attach/detach),
    K = all tranches of all deals in config order; ``net_loss``, ``cash_trap_month`` and
    ``rapid_amortization_month`` [n, n_deals] (0 when the trigger never fired); plus the labels
    ``tranches`` [(deal, tranche)] and ``deals``. ``block(P, n, rng)`` replaces the per-block
    simulation (the naive version's).
    """
    P = prepared if prepared is not None else prepare(cfg)
    rng = np.random.default_rng(seed)
    block = block or (lambda P_, n_, rng_: simulate_block(P_, n_, rng_, default_months))
    parts = []
    for s in range(0, n_paths, chunk):   # blocks bound memory; every block is vectorised over its paths
        parts.append(block(P, min(chunk, n_paths - s), rng))
    loss, alloc, nl, trap, rapid = (np.concatenate(a, axis=0) for a in zip(*parts))
    return {
        "principal_loss": loss,
        "alloc_loss": alloc,
        "net_loss": nl,
        "cash_trap_month": trap,
        "rapid_amortization_month": rapid,
        "tranches": [(D["name"], nm) for D in P["deals"] for nm in D["names"]],
        "deals": [D["name"] for D in P["deals"]],
    }


# --------------------------------------------------------------------------- checks


def base_dict() -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    from builders import base_dict as bd

    return bd()


def qlpool_dict(months: int = 60) -> dict:
    """100 single-lease tenants of PD 2%, ρ 0.3; static factor; fixed 40% recovery; 6 tranches."""
    points = [0.0, 0.03, 0.07, 0.10, 0.15, 0.30, 1.0]
    names = ["T1", "T2", "T3", "T4", "T5", "T6"]
    total = 100e6
    tranches = [{"name": nm, "balance": total * (b - a), "attach": a, "detach": b}
                for nm, a, b in zip(names, points[:-1], points[1:])]
    return {
        "run": {"months": months, "paths": 10000, "seed": 7},
        "factor": {"persistence": 1.0},
        "tenants": [{"name": f"t{i:03d}", "pd": 0.02, "rho": 0.3} for i in range(100)],
        "deals": [{
            "name": "qlpool", "legal_final_month": months,
            "leases": [{"tenant": f"t{i:03d}", "term_months": months, "monthly_rent": 0.0, "gpu_cost": 0.0,
                        "shell_value": 1e6, "recovery": "fixed", "recovery_rate": 0.4, "recovery_lag": 0}
                       for i in range(100)],
            "tranches": tranches,
            "waterfall": [{"type": "principal", "classes": names}, {"type": "residual"}],
        }],
    }


def _named(spec):
    if spec == "base":
        return base_dict()
    if spec == "qlpool":
        return qlpool_dict()
    return spec


def check_against_engine(config_path_or_dict, paths: int = 50_000, seed: int = 12345, *,
                         simulate_fn=None, label: str = "reference", verbose: bool = True):
    """Run the engine and this implementation; print per tranche and view both ELs, SEs and z.

    Returns (table DataFrame, timings dict in paths/s).
    """
    import pandas as pd

    import engine

    cfg = _as_config(_named(config_path_or_dict))
    simulate_fn = simulate_fn or simulate
    res = engine.run(cfg, paths=paths)
    eng_pps = res.manifest["timings"]["paths_per_s"]
    P = prepare(cfg)
    t0 = time.perf_counter()
    out = simulate_fn(cfg, paths, seed, prepared=P)
    ref_pps = paths / (time.perf_counter() - t0)
    rows = []
    et = res.tranches
    for k, (deal, tr) in enumerate(out["tranches"]):
        for view, arr in (("cashflow", out["principal_loss"][:, k]), ("allocation", out["alloc_loss"][:, k])):
            e = et[(et.deal == deal) & (et.tranche == tr) & (et.view == view)]
            if e.empty or np.isnan(arr).all():
                continue
            el_e, se_e = float(e.el.iloc[0]), float(e.el_se.iloc[0])
            el_r, se_r = float(arr.mean()), float(arr.std(ddof=1) / np.sqrt(len(arr)))
            se = np.hypot(se_e, se_r)
            z = (el_r - el_e) / se if se > 0 else (0.0 if el_r == el_e else np.inf)
            rows.append({"deal": deal, "tranche": tr, "view": view, "el_engine": el_e, "se_engine": se_e,
                         f"el_{label}": el_r, f"se_{label}": se_r, "z": z})
    ed = res.deals
    for d, deal in enumerate(out["deals"]):
        e = ed[ed.deal == deal]
        arr = out["net_loss"][:, d]
        el_e, se_e = float(e.nl_mean.iloc[0]), float(e.nl_se.iloc[0])
        el_r, se_r = float(arr.mean()), float(arr.std(ddof=1) / np.sqrt(len(arr)))
        se = np.hypot(se_e, se_r)
        rows.append({"deal": deal, "tranche": "(NL_T)", "view": "deal", "el_engine": el_e, "se_engine": se_e,
                     f"el_{label}": el_r, f"se_{label}": se_r, "z": (el_r - el_e) / se if se > 0 else 0.0})
        # Trigger firing shares (binomial standard errors), where the deal has the trigger.
        for col, key in (("p_cash_trap", "cash_trap_month"), ("p_rapid_amortization", "rapid_amortization_month")):
            if col not in e or not (out[key][:, d] > 0).any() and float(e[col].iloc[0]) == 0.0:
                continue
            p_e, p_r = float(e[col].iloc[0]), float((out[key][:, d] > 0).mean())
            se_e, se_r = np.sqrt(p_e * (1 - p_e) / paths), np.sqrt(p_r * (1 - p_r) / paths)
            se = np.hypot(se_e, se_r)
            rows.append({"deal": deal, "tranche": f"({col})", "view": "deal", "el_engine": p_e, "se_engine": se_e,
                         f"el_{label}": p_r, f"se_{label}": se_r, "z": (p_r - p_e) / se if se > 0 else 0.0})
    table = pd.DataFrame(rows)
    timings = {"engine_paths_per_s": eng_pps, f"{label}_paths_per_s": round(ref_pps, 1)}
    if verbose:
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            print(table.to_string(index=False, float_format=lambda v: f"{v:.6f}"))
        print(timings, "max |z| =", round(float(np.abs(table.z).max()), 3))
    return table, timings


if __name__ == "__main__":
    spec = sys.argv[1] if len(sys.argv) > 1 else "base"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 50_000
    check_against_engine(spec, n)
