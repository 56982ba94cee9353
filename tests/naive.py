"""A slow, direct, pure-Python reference implementation of one path of the model ("naive oracle").

Written from docs/model.md (sections 0–5, "Per-path outputs" and "The loss-allocation view") and
nothing else: it does not read the kernels or the compiled plan, only the validated config, the
tenant thresholds c_i (calibration is tested elsewhere) and one path's random draws. Everything is
a plain loop over months and leases, with ``math`` for the arithmetic; numpy only holds the
returned arrays.

The choices made where docs/model.md leaves room are marked **Reading** below:

- a tenant "defaults" only when τ ≤ T (τ = T+1 encodes "never"), so a lease running past T whose
  tenant survives is not counted in NL_T;
- "paid in full" is decided exactly: when a reserve draw makes up a step's whole shortfall, the
  step is paid in full and no interest shortfall is recorded;
- the `reserve` step only tops up (a deposit is never negative; excess reserve stays put);
- the "interest shortfall" in `first_loss_month` is the tranche's own;
- trace layout: row 0 carries nothing but `factor`/`gpu_index`; balance columns are end-of-month
  state for months 1..LF and 0 elsewhere; collections are shown for every month 1..T; `gpu_index`
  is O_t·exp(β_g X_t − β_g²/2) (V_t per unit of depreciated cost).
"""

from __future__ import annotations

import math

import numpy as np

# Same names and order as kernels.plan.LEDGER_COLUMNS / TRANCHE_LEDGER_COLUMNS (checked by the tests).
LEDGER_COLUMNS = (
    "rent", "recovery", "sale", "reserve_interest", "reserve_draw", "reserve_release",
    "fees", "interest", "principal", "reserve_deposit", "residual", "reserve_balance",
    "factor", "gpu_index",
)
TRANCHE_LEDGER_COLUMNS = ("interest", "principal", "balance")
COL = {name: i for i, name in enumerate(LEDGER_COLUMNS)}


def phi(x: float) -> float:
    """Standard normal CDF."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


# --------------------------------------------------------------------------- §1 factor


def factor_path(cfg, eps, burst_month) -> list[float]:
    """X_0..X_T: Y_0 = ε_0, Y_t = φ Y_{t−1} + sqrt(1−φ²) ε_t, X_t = Y_t + s·1{t ≥ B}."""
    T = cfg.run.months
    p = cfg.factor.persistence
    s = cfg.factor.burst.shift
    y = [0.0] * (T + 1)
    y[0] = float(eps[0])
    for t in range(1, T + 1):
        y[t] = p * y[t - 1] + math.sqrt(1.0 - p * p) * float(eps[t])
    return [y[t] + (s if t >= burst_month else 0.0) for t in range(T + 1)]


# --------------------------------------------------------------------------- §2 default


def default_months(cfg, c, X, expo, winv) -> list[int]:
    """τ_i per tenant: first month whose cumulative hazard reaches E_i, T+1 for none."""
    T = cfg.run.months
    taus = []
    for i, tenant in enumerate(cfg.tenants):
        rho = tenant.rho
        H = 0.0
        tau = T + 1
        for t in range(1, T + 1):
            q = phi((c[i] * winv - math.sqrt(rho) * X[t]) / math.sqrt(1.0 - rho))
            H += -math.log1p(-q) if q < 1.0 else math.inf
            if H >= expo[i]:
                tau = t
                break
        if tenant.default_month is not None:
            tau = min(tau, tenant.default_month)
        taus.append(min(tau, T + 1))
    return taus


# --------------------------------------------------------------------------- §3 collateral


def releases_up_to(cfg, t: int, counts) -> int:
    """Number of chip releases in months 1..t."""
    g = cfg.gpu
    if g.releases == "poisson":
        return sum(int(counts[u]) for u in range(1, t + 1))
    n = 0
    k = 0
    while g.first_release_month + k * g.generation_interval_months <= t:
        n += 1
        k += 1
    return n


def gpu_depreciation(cfg, age: float) -> float:
    g = cfg.gpu
    a = max(0.0, age)
    if g.curve == "straight_line":
        return max(g.salvage, 1.0 - (1.0 - g.salvage) * a / g.economic_life_months)
    return g.salvage + (1.0 - g.salvage) * 2.0 ** (-a / g.half_life_months)


def obsolescence(cfg, t, counts) -> float:
    return (1.0 - cfg.gpu.obsolescence_haircut) ** releases_up_to(cfg, t, counts)


def gpu_value(cfg, lease, t, X, counts) -> float:
    """V_t = C_g · D(t − a_0) · O_t · exp(β_g X_t − β_g²/2)."""
    a0 = lease.start_month if lease.gpu_in_service_month is None else lease.gpu_in_service_month
    b = cfg.gpu.factor_beta
    return lease.gpu_cost * gpu_depreciation(cfg, t - a0) * obsolescence(cfg, t, counts) * math.exp(b * X[t] - b * b / 2.0)


def shell_value(cfg, lease, t, X) -> float:
    """S_t = C_s · max(0, 1 − t/L_s) · exp(β_s X_t − β_s²/2)."""
    b = cfg.facility.factor_beta
    return lease.shell_value * max(0.0, 1.0 - t / cfg.facility.life_months) * math.exp(b * X[t] - b * b / 2.0)


# --------------------------------------------------------------------------- §4 leases


def contract_rent(lease, t: int) -> float:
    """R·(1+e)^⌊(t − s − 1)/12⌋ in months s < t ≤ s + term, else 0 (ignores default)."""
    s, end = lease.start_month, lease.start_month + lease.term_months
    if not (s < t <= end):
        return 0.0
    return lease.monthly_rent * (1.0 + lease.escalator) ** ((t - s - 1) // 12)


def lease_cash(cfg, lease, tau: int, X, counts) -> tuple[list[float], list[float], list[float], float]:
    """Monthly rent, recovery and terminal-sale cash of one lease over 0..T, and the recovery amount
    received by T (for NL_T)."""
    T = cfg.run.months
    rent = [0.0] * (T + 1)
    recovery = [0.0] * (T + 1)
    sale = [0.0] * (T + 1)
    end = lease.start_month + lease.term_months
    for t in range(1, T + 1):
        if t < tau:  # rent stops from month τ (month τ pays nothing)
            rent[t] = contract_rent(lease, t)
    received = 0.0
    defaulted = tau <= T and tau <= end  # τ = T+1 means no default within the horizon
    if defaulted:
        m = tau + lease.recovery_lag
        if m <= T:
            if lease.recovery == "sale":
                amount = (gpu_value(cfg, lease, m, X, counts) + shell_value(cfg, lease, m, X)) * (1.0 - lease.liquidation_cost)
            else:
                amount = lease.recovery_rate * (lease.gpu_cost + lease.shell_value)
            recovery[m] += amount
            received = amount
    else:
        m = end + lease.sale_lag
        if m <= T:
            sale[m] += (gpu_value(cfg, lease, m, X, counts) + shell_value(cfg, lease, m, X)) * (1.0 - lease.liquidation_cost)
    return rent, recovery, sale, received


# --------------------------------------------------------------------------- §5 notes


def scheduled_balance(tranche, legal_final: int, t: int) -> float:
    """Balance target after month t's principal step (`level`/`bullet`); None for `sweep`."""
    B0 = tranche.balance
    if tranche.amortization == "level":
        s = tranche.amort_start_month
        e = tranche.amort_end_month if tranche.amort_end_month is not None else legal_final
        if t <= s:
            return B0
        if t >= e:
            return 0.0
        return B0 * (e - t) / (e - s)
    if tranche.amortization == "bullet":
        return B0 if t < legal_final else 0.0
    return None


def run_deal(cfg, deal, collections: list[float]) -> dict:
    """The waterfall of one deal, month by month, step by step."""
    T = cfg.run.months
    LF = deal.legal_final_month
    K = len(deal.tranches)
    names = [tr.name for tr in deal.tranches]
    k_of = {n: k for k, n in enumerate(names)}
    steps = [s.type for s in deal.waterfall]
    reserve_at = steps.index("reserve") if "reserve" in steps else len(steps)
    senior = set()
    for s, step in enumerate(deal.waterfall):
        if step.type == "interest" and s < reserve_at:
            senior.update(step.classes)

    ledger = np.zeros((T + 1, len(LEDGER_COLUMNS)))
    tledger = np.zeros((K, T + 1, 3))
    balance = [tr.balance for tr in deal.tranches]
    carry = [0.0] * K  # carried interest shortfall
    fee_carry = 0.0
    reserve = deal.reserve.initial_balance
    any_short = [0] * K
    first_miss = [0] * K  # first month with an interest shortfall or a missed scheduled principal
    reserve_draws = 0.0
    covered = [[] for _ in range(K)]  # months the reserve covered the whole interest shortfall
    # **Reading** (a trace convention the doc leaves open): the balance columns hold end-of-month
    # state for the waterfall months 1..LF only; month 0 and months after the legal final are 0.

    for t in range(1, LF + 1):
        row = ledger[t]
        start_balance = list(balance)
        r_int = reserve * deal.reserve.rate / 12.0
        cash = collections[t] + r_int
        row[COL["reserve_interest"]] = r_int
        if t == LF:
            row[COL["reserve_release"]] = reserve
            cash += reserve
            reserve = 0.0
        def draw_reserve(unpaid: float) -> float:
            """Cover what cash left unpaid from the reserve; return what is still unpaid."""
            nonlocal reserve, reserve_draws
            draw = min(reserve, unpaid)
            reserve -= draw
            reserve_draws += draw
            row[COL["reserve_draw"]] += draw
            return unpaid - draw

        for s, step in enumerate(deal.waterfall):
            draws_reserve = step.type in ("fees", "interest") and s < reserve_at
            if step.type == "fees":
                due = fee_carry + deal.fees.bps / 1e4 / 12.0 * sum(start_balance) + deal.fees.fixed_monthly
                from_cash = min(cash, due)
                cash -= from_cash
                unpaid = due - from_cash
                if draws_reserve and unpaid > 0.0:
                    unpaid = draw_reserve(unpaid)
                fee_carry = unpaid
                row[COL["fees"]] += due - unpaid
            elif step.type == "interest":
                ks = [k_of[n] for n in step.classes]
                due = {}
                for k in ks:
                    c = deal.tranches[k].coupon / 12.0
                    grow = (1.0 + c) if deal.tranches[k].interest_on_shortfall else 1.0
                    due[k] = c * start_balance[k] + carry[k] * grow
                total = sum(due.values())
                if total <= 0.0:
                    continue
                from_cash = min(cash, total)
                cash -= from_cash
                unpaid = total - from_cash
                if draws_reserve and unpaid > 0.0:
                    unpaid = draw_reserve(unpaid)
                    if unpaid == 0.0:  # the reserve made up the whole shortfall: paid in full
                        for k in ks:
                            if due[k] > 0.0:
                                covered[k].append(t)
                # Paid in full exactly when nothing is left unpaid after cash and reserve.
                for k in ks:
                    paid = due[k] if unpaid == 0.0 else (total - unpaid) * due[k] / total
                    carry[k] = due[k] - paid
                    if unpaid > 0.0 and due[k] > 0.0:
                        any_short[k] = 1
                        if first_miss[k] == 0:
                            first_miss[k] = t
                    tledger[k, t, 0] += paid
                    row[COL["interest"]] += paid
            elif step.type == "reserve":
                if t == LF:
                    target = 0.0
                else:
                    target = deal.reserve.target_months * sum(
                        deal.tranches[k].coupon / 12.0 * start_balance[k] for k in range(K) if names[k] in senior
                    )
                deposit = min(cash, max(0.0, target - reserve))  # **Reading**: a top-up, never a withdrawal
                cash -= deposit
                reserve += deposit
                row[COL["reserve_deposit"]] += deposit
            elif step.type == "principal":
                ks = [k_of[n] for n in step.classes]
                due = {}
                for k in ks:
                    target = scheduled_balance(deal.tranches[k], LF, t)
                    if t == LF or target is None:
                        due[k] = balance[k]
                    else:
                        due[k] = max(0.0, balance[k] - target)
                paid = {}
                if step.mode == "sequential":
                    for k in ks:
                        paid[k] = min(cash, due[k])
                        cash -= paid[k]
                else:
                    total = sum(due.values())
                    pay = min(cash, total)
                    cash -= pay
                    for k in ks:
                        paid[k] = due[k] if pay >= total else (pay * due[k] / total if total > 0 else 0.0)
                for k in ks:
                    balance[k] -= paid[k]
                    tledger[k, t, 1] += paid[k]
                    row[COL["principal"]] += paid[k]
                    scheduled = deal.tranches[k].amortization != "sweep"
                    if scheduled and t < LF and paid[k] < due[k] and first_miss[k] == 0:
                        first_miss[k] = t
            elif step.type == "residual":
                row[COL["residual"]] += cash
                cash = 0.0
        row[COL["residual"]] += cash  # the implicit residual step
        row[COL["reserve_balance"]] = reserve
        for k in range(K):
            tledger[k, t, 2] = balance[k]

    v = (1.0 + cfg.run.discount_rate) ** (-1.0 / 12.0)
    out = {"loss": [], "shortfall": [], "pv": [], "wal": [], "any_shortfall": [], "first_loss": []}
    for k, tr in enumerate(deal.tranches):
        B0 = tr.balance
        loss = balance[k] / B0
        out["loss"].append(loss)
        out["shortfall"].append(carry[k] / B0)
        out["pv"].append(sum(v**t * (tledger[k, t, 0] + tledger[k, t, 1]) for t in range(1, T + 1)) / B0)
        principal = sum(tledger[k, t, 1] for t in range(1, T + 1))
        out["wal"].append(
            sum(t / 12.0 * tledger[k, t, 1] for t in range(1, T + 1)) / principal if principal > 0 else math.nan
        )
        out["any_shortfall"].append(any_short[k])
        out["first_loss"].append((first_miss[k] or LF) if loss > 0 else 0)
    out["ledger"] = ledger
    out["tranche_ledger"] = tledger
    out["reserve_covered"] = covered
    out["reserve_used"] = reserve_draws / sum(tr.balance for tr in deal.tranches)
    return out


# --------------------------------------------------------------------------- network (§7)


SOLVENCY_RTOL = 1e-12  # docs/model.md §7: a firm short by less than this fraction of what it owes is solvent


def greatest_clearing(L, e, d, alpha, beta, tol=1e-14, max_iter=100_000):
    """Picard iteration of the clearing map from p̄ (docs/model.md §7): the greatest fixed point."""
    n = len(e)
    pbar = [sum(L[i]) for i in range(n)]
    p = list(pbar)
    for _ in range(max_iter):
        new = []
        for i in range(n):
            recv = sum(L[j][i] / pbar[j] * p[j] for j in range(n) if pbar[j] > 0)
            if e[i] + recv >= (d[i] + pbar[i]) * (1 - SOLVENCY_RTOL):
                new.append(pbar[i])
            else:
                new.append(max(0.0, alpha * e[i] + beta * recv - d[i]))
        if max(abs(a - b) for a, b in zip(new, p)) <= tol * max(1.0, max(pbar)):
            p = new
            break
        p = new
    defaulted = []
    for i in range(n):
        recv = sum(L[j][i] / pbar[j] * p[j] for j in range(n) if pbar[j] > 0)
        defaulted.append(e[i] + recv < (d[i] + pbar[i]) * (1 - SOLVENCY_RTOL))
    return p, pbar, defaulted


def network_year_ends(cfg, X, tau):
    """Year-end clearing, month by month as docs/model.md §7 states it; updates ``tau`` in place."""
    T = cfg.run.months
    net = cfg.network
    firms = net.firms if net else []
    F = len(firms)
    out = {"month": [T + 1] * F, "own": [0] * F, "ratio": [math.nan] * F, "caused": [0.0] * F, "cascade": 0}
    if not net or not net.enabled:
        return out
    tindex = {tn.name: i for i, tn in enumerate(cfg.tenants)}
    findex = {f.name: i for i, f in enumerate(firms)}
    cash = [f.cash for f in firms]
    dead = [False] * F
    for y in range(1, T // 12 + 1):
        m = 12 * y
        for i, f in enumerate(firms):
            if not dead[i] and f.tenant is not None and tau[tindex[f.tenant]] <= m:
                dead[i] = True
                out["month"][i] = tau[tindex[f.tenant]]
                out["own"][i] = 1
        xbar = sum(X[m - 11:m + 1]) / 12.0
        L = [[0.0] * F for _ in range(F)]
        for o in net.obligations:
            i, j = findex[o.payer], findex[o.payee]
            if o.start_year <= y <= o.end_year and not dead[i] and not dead[j]:
                L[i][j] += o.amount * (1.0 + o.growth) ** (y - o.start_year)
        e = [0.0 if dead[i] else f.revenue * (1 + f.revenue_growth) ** (y - 1) * math.exp(f.factor_beta * xbar - f.factor_beta ** 2 / 2) + cash[i]
             for i, f in enumerate(firms)]
        d = [0.0 if dead[i] else f.external_debt for i, f in enumerate(firms)]
        p, pbar, defaulted = greatest_clearing(L, e, d, net.alpha, net.beta)
        contagion = 0
        for i, f in enumerate(firms):
            if dead[i]:
                continue
            recv = sum(L[j][i] / pbar[j] * p[j] for j in range(F) if pbar[j] > 0)
            if defaulted[i]:
                dead[i] = True
                out["month"][i] = m
                out["ratio"][i] = p[i] / pbar[i] if pbar[i] > 0 else math.nan
                contracted = sum(o.amount * (1.0 + o.growth) ** (y - o.start_year) for o in net.obligations
                                 if findex[o.payee] == i and o.start_year <= y <= o.end_year)
                if e[i] + contracted < (d[i] + pbar[i]) * (1 - SOLVENCY_RTOL):
                    out["own"][i] = 1
                else:
                    contagion += 1
                if f.tenant is not None:
                    tau[tindex[f.tenant]] = min(tau[tindex[f.tenant]], m)
            else:
                cash[i] = max(0.0, e[i] + recv - d[i] - pbar[i])
        out["cascade"] += contagion
        owners = [i for i in range(F) if out["own"][i]]
        if contagion and owners:
            for i in owners:
                out["caused"][i] += contagion / len(owners)
    for i, f in enumerate(firms):  # a tenant's hazard default after the last year end is its own default
        if not dead[i] and f.tenant is not None and tau[tindex[f.tenant]] <= T:
            out["month"][i] = tau[tindex[f.tenant]]
            out["own"][i] = 1
    return out


# --------------------------------------------------------------------------- one path


def simulate_path(cfg, c, draws) -> dict:
    """Every per-path output of one path; ``draws`` is a Draws NamedTuple of one path (n = 1)."""
    T = cfg.run.months
    eps, expo = draws.eps[0], draws.expo[0]
    B = int(draws.burst_month[0])
    winv = float(draws.winv[0])
    counts = draws.release_counts[0] if cfg.gpu.releases == "poisson" else None
    X = factor_path(cfg, eps, B)
    tau = default_months(cfg, [float(x) for x in c], X, [float(e) for e in expo], winv)
    network = network_year_ends(cfg, X, tau)
    tenant_index = {tn.name: i for i, tn in enumerate(cfg.tenants)}
    b = cfg.gpu.factor_beta
    # **Reading**: the ledger's gpu_index column, not defined in docs/model.md, is V_t / (C_g·D).
    gpu_index = [obsolescence(cfg, t, counts) * math.exp(b * X[t] - b * b / 2.0) for t in range(T + 1)]

    res = {k: [] for k in ("principal_loss", "interest_shortfall", "pv", "wal", "any_shortfall", "first_loss_month", "alloc_loss")}
    res.update(net_loss=[], defaults=[], reserve_used=[], ledgers=[], tranche_ledgers=[])
    reserve_covered = []
    for deal in cfg.deals:
        rent = [0.0] * (T + 1)
        recovery = [0.0] * (T + 1)
        sale = [0.0] * (T + 1)
        lost = 0.0
        pool = 0.0
        for lease in deal.all_leases:
            tau_j = tau[tenant_index[lease.tenant]]
            r, rc, sl, received = lease_cash(cfg, lease, tau_j, X, counts)
            for t in range(T + 1):
                rent[t] += r[t]
                recovery[t] += rc[t]
                sale[t] += sl[t]
            end = lease.start_month + lease.term_months
            collateral = lease.gpu_cost + lease.shell_value
            pool += sum(contract_rent(lease, t) for t in range(1, T + 1)) + collateral
            if tau_j <= T and tau_j <= end:
                lost += sum(contract_rent(lease, t) for t in range(tau_j, min(end, T) + 1))
                lost += max(0.0, collateral - received)
        nl = lost / pool if pool > 0 else 0.0
        collections = [rent[t] + recovery[t] + sale[t] for t in range(T + 1)]
        d = run_deal(cfg, deal, collections)
        L = d["ledger"]
        for t in range(T + 1):
            # **Reading**: the ledger shows the pool's collections in every month 1..T. Those after the
            # legal final are outside the deal: no waterfall step runs then, so cash conservation is an
            # identity of months 1..LF.
            L[t, COL["rent"]] = rent[t]
            L[t, COL["recovery"]] = recovery[t]
            L[t, COL["sale"]] = sale[t]
            L[t, COL["factor"]] = X[t]
            L[t, COL["gpu_index"]] = gpu_index[t]
        res["principal_loss"] += d["loss"]
        res["interest_shortfall"] += d["shortfall"]
        res["pv"] += d["pv"]
        res["wal"] += d["wal"]
        res["any_shortfall"] += d["any_shortfall"]
        res["first_loss_month"] += d["first_loss"]
        reserve_covered += d["reserve_covered"]
        for tr in deal.tranches:
            if tr.attach is None:
                res["alloc_loss"].append(math.nan)
            else:
                A, D = tr.attach, tr.detach
                res["alloc_loss"].append(min(max(nl - A, 0.0), D - A) / (D - A))
        res["net_loss"].append(nl)
        deal_tenants = {tenant_index[lease.tenant] for lease in deal.all_leases}
        res["defaults"].append(sum(1 for i in deal_tenants if tau[i] <= T))
        res["reserve_used"].append(d["reserve_used"])
        res["ledgers"].append(L)
        res["tranche_ledgers"].append(d["tranche_ledger"])

    out = {k: np.array(v, dtype=float) for k, v in res.items() if k not in ("ledgers", "tranche_ledgers")}
    for k in ("any_shortfall", "first_loss_month", "defaults"):
        out[k] = out[k].astype(np.int64)
    out["tau"] = np.array(tau, dtype=np.int64)
    out["firm_default_month"] = np.array(network["month"], dtype=np.int64)
    out["firm_own"] = np.array(network["own"], dtype=np.int64)
    out["firm_ratio"] = np.array(network["ratio"], dtype=float)
    out["firm_caused"] = np.array(network["caused"], dtype=float)
    out["cascade"] = np.array(network["cascade"], dtype=np.int64)
    out["ledger"] = np.stack(res["ledgers"])  # [D, T+1, ncol]
    out["tranche_ledger"] = np.concatenate(res["tranche_ledgers"])  # [K, T+1, 3]
    out["X"] = np.array(X)
    # Fan-chart bins (kernels/plan.py): floor((x − lo)/width), clipped to the 1600 bins.
    out["factor_bin"] = np.array([min(max(math.floor((x + 8.0) / 0.01), 0), 1599) for x in X], dtype=np.int64)
    out["gpu_bin"] = np.array([min(max(math.floor(g / 0.0025), 0), 1599) for g in gpu_index], dtype=np.int64)
    # Per tranche, the months whose interest the reserve made whole (diagnostic: the engine's
    # floating-point 'paid in full' test can misfire in exactly these months).
    out["reserve_covered"] = reserve_covered
    return out
