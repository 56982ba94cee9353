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
    "rent", "rvg", "termination_fee", "recovery", "sale", "abs_collateral",
    "reserve_interest", "reserve_draw", "reserve_release", "fees", "interest", "principal", "step_up_interest",
    "reserve_deposit", "trapped", "refinanced", "residual", "reserve_balance", "dscr", "trap_on", "sweep_on",
    "factor", "gpu_index",
)
SOURCES = ("rent", "rvg", "termination_fee", "recovery", "sale", "abs_collateral")
TRANCHE_LEDGER_COLUMNS = ("interest", "principal", "balance", "shortfall", "writedown")
COL = {name: i for i, name in enumerate(LEDGER_COLUMNS)}


def phi(x: float) -> float:
    """Standard normal CDF."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def hazard_step(z: float) -> float:
    """−ln(1 − Φ(z)), written as −ln Φ(−z) above 0, where 1 − Φ(z) would cancel."""
    if z < 0.0:
        return -math.log1p(-phi(z))
    upper = phi(-z)
    return -math.log(upper) if upper > 0.0 else math.inf


# --------------------------------------------------------------------------- §1 factor


def factor_path(cfg, eps, burst_month) -> list[float]:
    """X_0..X_T: Y_0 = ε_0, Y_t = φ Y_{t−1} + sqrt(1−φ²) ε_t, X_t = Y_t + s·1{t ≥ B}.

    With `deterministic`, X_t is given: linear between the [month, X] points, flat outside them."""
    T = cfg.run.months
    if cfg.deterministic is not None:
        pts = [(int(m), float(x)) for m, x in cfg.deterministic.factor]
        out = []
        for t in range(T + 1):
            if t <= pts[0][0]:
                out.append(pts[0][1])
            elif t >= pts[-1][0]:
                out.append(pts[-1][1])
            else:
                for (m0, x0), (m1, x1) in zip(pts, pts[1:]):
                    if m0 <= t <= m1:
                        out.append(x0 + (x1 - x0) * (t - m0) / (m1 - m0))
                        break
        return out
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
            H += hazard_step((c[i] * winv - math.sqrt(rho) * X[t]) / math.sqrt(1.0 - rho))
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


def market_rent(cfg, t, X, counts) -> float:
    """m_t = O_t · exp(β_r X_t − β_r²/2) (docs/model.md §3, market-rent index)."""
    b = cfg.market_rent.factor_beta
    return obsolescence(cfg, t, counts) * math.exp(b * X[t] - b * b / 2.0)


_MASK = (1 << 64) - 1


def splitmix_uniform(key: int, lease: int, slot: int) -> float:
    """The counter-based uniform of docs/model.md §4: the SplitMix64 finaliser of
    ``key + (lease·2^20 + slot + 1)·γ`` (mod 2^64), in plain Python integers.

    **Reading**: the finaliser's 64 bits become a uniform in (0, 1) as (z >> 11 + ½)/2^53 (the top 53
    bits, centred, so never 0 or 1); "lease" is the lease's position among the option leases of
    the config (deals in order, leases in order)."""
    gamma = 0x9E3779B97F4A7C15
    z = (int(key) + (lease * (1 << 20) + slot + 1) * gamma) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    z = z ^ (z >> 31)
    return ((z >> 11) + 0.5) / 2.0**53


def has_options(lease) -> bool:
    return lease.renewals > 0 or lease.rvg_threshold > 0 or lease.recovery == "relet" or lease.termination_threshold > 0


def cumulative_hazard(c: float, rho: float, X, winv: float) -> list[float]:
    """H(0..T) of a tenant with threshold c and correlation ρ (§2): H(t) = Σ_{u≤t} −ln(1 − q(u))."""
    H = [0.0]
    for t in range(1, len(X)):
        H.append(H[-1] + hazard_step((c * winv - math.sqrt(rho) * X[t]) / math.sqrt(1.0 - rho)))
    return H


def option_lease_cash(cfg, lease, number, tau, tau_guarantor, X, counts, key, relet_H, deterministic, events=None):
    """One option lease walked term by term (docs/model.md §4 "Lease options").

    Returns the cash by source (dict of lists over months 0..T), the renewals exercised, and the
    lease's NL_T numerator: max(0, scheduled rent of the original term within T − rent, re-let rent and
    termination fee received for months ≤ end_j) + Σ max(0, C − recovery) over default recoveries.
    """
    T = cfg.run.months
    cash = {k: [0.0] * (T + 1) for k in ("rent", "rvg", "termination_fee", "recovery", "sale")}
    s = lease.start_month
    end0 = s + lease.term_months
    R, esc = lease.monthly_rent, lease.escalator
    collateral = lease.gpu_cost + lease.shell_value
    got = [0.0]  # rent, re-let rent and termination fee received for months ≤ end_j (and ≤ T)
    lost_collateral = 0.0
    events = {} if events is None else events  # tallies of what happened (for the tests' coverage checks)

    def note(what):
        events[what] = events.get(what, 0) + 1

    def value(t):
        return gpu_value(cfg, lease, t, X, counts) + shell_value(cfg, lease, t, X)

    def rent_in(u, base):
        return base * (1.0 + esc) ** ((u - s - 1) // 12)

    def pay(kind, u, amount):
        if 1 <= u <= T:
            cash[kind][u] += amount
            if kind in ("rent", "termination_fee") and u <= end0:
                got[0] += amount

    def sell(u):
        if u <= T:
            cash["sale"][u] += value(u) * (1.0 - lease.liquidation_cost)

    def recover(u, rule):
        """Default recovery arriving in month u; returns the amount received by T."""
        if u > T:
            return 0.0
        amount = lease.recovery_rate * collateral if rule == "fixed" else value(u) * (1.0 - lease.liquidation_cost)
        cash["recovery"][u] += amount
        return amount

    a, e, mu, renewed = s, end0, 1.0, 0
    while True:
        term = None  # early termination month
        if lease.termination_threshold > 0:
            for u in range(a + 1, min(e, T) + 1):
                if u >= s + lease.termination_earliest_month and u < tau and \
                        market_rent(cfg, u, X, counts) < lease.termination_threshold * mu:
                    term = u
                    break
        # **Reading**: τ = T+1 encodes "no default within the horizon", so only τ ≤ T is a default.
        if tau <= T and tau <= e and (term is None or tau <= term):
            for u in range(a + 1, tau):
                pay("rent", u, rent_in(u, R * mu))
            r = tau + lease.downtime
            if lease.recovery == "relet" and r < e and r <= T:
                tau2 = T + 1  # replacement tenant's default month
                if not deterministic:  # a deterministic what-if's replacement tenants never default
                    need = -math.log(splitmix_uniform(key, number, 1))
                    for u in range(r + 1, T + 1):
                        if relet_H[u] - relet_H[r] >= need:
                            tau2 = u
                            break
                base = R * market_rent(cfg, r, X, counts)
                for u in range(r + 1, min(e, tau2 - 1) + 1):
                    pay("rent", u, rent_in(u, base))
                note("relet")
                if tau2 <= e:
                    note("relet_default")
                    lost_collateral += max(0.0, collateral - recover(tau2 + lease.recovery_lag, "sale"))
                else:
                    sell(e + lease.sale_lag)
            else:
                rule = "fixed" if lease.recovery == "fixed" else "sale"
                lost_collateral += max(0.0, collateral - recover(tau + lease.recovery_lag, rule))
            break
        if term is not None:
            for u in range(a + 1, term + 1):
                pay("rent", u, rent_in(u, R * mu))
            note("termination")
            pay("termination_fee", term, lease.termination_fee_months * rent_in(term, R * mu))
            sell(term + lease.sale_lag)
            break
        for u in range(a + 1, e + 1):
            pay("rent", u, rent_in(u, R * mu))
        if e >= T:
            break
        if renewed < lease.renewals:
            p = phi(lease.renewal_intercept + lease.renewal_beta * X[e])
            # deterministic what-if (engine/config/root.py DeterministicConfig): renew iff Φ(a + b·X_t) ≥ ½
            renew = p >= 0.5 if deterministic else splitmix_uniform(key, number, 2 * renewed + 2) < p
            note("renewal_taken" if renew else "renewal_declined")
            if renew:
                mu = market_rent(cfg, e, X, counts)
                a, e = e, e + lease.renewal_term
                renewed += 1
                continue
        if lease.rvg_threshold > 0 and tau_guarantor > e and e - s <= lease.rvg_months:
            k_end = lease.rvg_threshold if lease.rvg_threshold_end is None else lease.rvg_threshold_end
            K = lease.rvg_threshold + (k_end - lease.rvg_threshold) * (e - s) / lease.rvg_months
            cap = math.inf if lease.rvg_cap is None else lease.rvg_cap
            paid = min(cap, max(0.0, K - value(e)))
            note("rvg_paid" if paid > 0 else "rvg_nothing")
            pay("rvg", e, paid)
        sell(e + lease.sale_lag)
        break
    scheduled = sum(contract_rent(lease, t) for t in range(1, T + 1))
    lost_rent = max(0.0, scheduled - got[0])
    if lost_rent <= 1e-9 * scheduled:  # rounding dust of an exact cancellation
        lost_rent = 0.0
    return cash, renewed, lost_rent + lost_collateral


# --------------------------------------------------------------------------- §5 notes


def scheduled_balance(tranche, legal_final: int, t: int) -> float:
    """Balance target after month t's principal step; None for `sweep` (docs/model.md §5 item 3)."""
    B0 = tranche.balance
    if tranche.amortization == "level":
        s = tranche.amort_start_month
        e = tranche.amort_end_month if tranche.amort_end_month is not None else legal_final
        if t <= s:
            return B0
        if t >= e:
            return 0.0
        return B0 * (e - t) / (e - s)
    if tranche.amortization in ("bullet", "io"):  # io: interest-only; the ARD refinances or sweeps it
        return B0 if t < legal_final else 0.0
    if tranche.amortization == "schedule":
        target = B0
        for month, bal in tranche.target_schedule:
            if month <= t:
                target = bal
        return target
    return None


def run_deal(cfg, deal, collections: list[float], X) -> dict:
    """The waterfall of one deal, month by month, step by step (docs/model.md §5).

    **Readings** where §5 leaves room (each also the engine's convention):
    - DSCR_t is the ledger's `dscr` for every deal (NaN for t ≤ 3, ∞ for a zero denominator); only a
      deal with a trigger acts on it;
    - the tranche ledger's `shortfall` is the interest carried unpaid at the month's end, and its
      `writedown` the balance left when the deal ends, in its last month;
    - the trapped cash "still in the reserve" is min(trapped so far, reserve balance) (draws may use
      it); the `reserve` step tops up the reserve excluding the trapped cash;
    - at an open ARD, as at the legal final, the reserve target is 0 and the trap step is idle;
    - ARD step-up accrues at the end of each month from the ARD on, on the end-of-month balance, and
      is paid by the `residual` step or, without one, by the implicit residual; it counts in the
      tranche's pv and in the cash an ABS-of-ABS holder receives, not in the tranche ledger's
      interest column;
    - while the deal sweeps, a principal payment short of the balance is not a "missed scheduled
      principal payment";
    - `reserve_exhausted`: a draw on a fees/interest step emptied the reserve with part still unpaid;
    - `ard_outcome` is decided at the ARD month whatever the balances then are.
    """
    T = cfg.run.months
    LF = deal.legal_final_month
    K = len(deal.tranches)
    trs = deal.tranches
    names = [tr.name for tr in trs]
    k_of = {n: k for k, n in enumerate(names)}
    steps = [s.type for s in deal.waterfall]
    reserve_at = steps.index("reserve") if "reserve" in steps else len(steps)
    senior = set()
    for s, step in enumerate(deal.waterfall):
        if step.type == "interest" and s < reserve_at:
            senior.update(step.classes)
    trap_level = deal.triggers.cash_trap_dscr
    rapid_level = deal.triggers.rapid_amortization_dscr
    ard = deal.ard

    ledger = np.zeros((T + 1, len(LEDGER_COLUMNS)))
    sledger = np.zeros((len(deal.waterfall), T + 1))
    tledger = np.zeros((K, T + 1, len(TRANCHE_LEDGER_COLUMNS)))
    received = [[0.0] * (T + 1) for _ in range(K)]  # everything a class receives (for ABS-of-ABS and pv)
    balance = [tr.balance for tr in trs]
    carry = [0.0] * K  # carried interest shortfall
    step_up = [0.0] * K  # carried ARD step-up interest
    fee_carry = 0.0
    reserve = deal.reserve.initial_balance
    trapped = 0.0
    any_short = [0] * K
    first_miss = [0] * K
    reserve_draws = 0.0
    reserve_out = 0
    covered = [[] for _ in range(K)]
    sweeping = False
    trap_month = rapid_month = 0
    ard_outcome = 0  # 0 none, 1 refinanced, 2 swept
    history = []  # (collections_u − new fees_u, senior interest_u + scheduled principal_u) per month

    for t in range(1, LF + 1):
        row = ledger[t]
        start_balance = list(balance)
        new_fees = deal.fees.bps / 1e4 / 12.0 * sum(start_balance) + deal.fees.fixed_monthly
        service = sum(trs[k].coupon / 12.0 * start_balance[k] for k in range(K) if names[k] in senior)
        for k in range(K):
            target = scheduled_balance(trs[k], LF, t)
            if target is not None:
                service += max(0.0, start_balance[k] - target)
        trap_on = False
        row[COL["dscr"]] = math.nan
        if t >= 4:
            num = sum(h[0] for h in history[t - 4:t - 1])
            den = sum(h[1] for h in history[t - 4:t - 1])
            dscr = num / den if den > 0 else math.inf
            row[COL["dscr"]] = dscr
            trap_on = trap_level > 0 and dscr < trap_level
            if trap_on and not trap_month:
                trap_month = t
            if rapid_level > 0 and dscr < rapid_level and not rapid_month:
                rapid_month = t
                sweeping = True
        history.append((collections[t] - new_fees, service))
        refinance = False
        if ard is not None and t == ard.month:
            if X[t] >= ard.refinance_threshold:
                refinance, ard_outcome = True, 1
            else:
                sweeping, ard_outcome = True, 2
        ends = t == LF or refinance

        r_int = reserve * deal.reserve.rate / 12.0
        cash = collections[t] + r_int
        row[COL["reserve_interest"]] = r_int
        if ends:
            row[COL["reserve_release"]] = reserve
            cash += reserve
            reserve = 0.0
            trapped = 0.0

        def draw_reserve(unpaid: float) -> float:
            nonlocal reserve, reserve_draws, reserve_out
            draw = min(reserve, unpaid)
            reserve -= draw
            reserve_draws += draw
            row[COL["reserve_draw"]] += draw
            if draw > 0 and unpaid - draw > 0:
                reserve_out = 1
            return unpaid - draw

        def pay_step_up(cash: float) -> float:
            for k in range(K):
                p = min(step_up[k], cash)
                if p > 0:
                    step_up[k] -= p
                    cash -= p
                    received[k][t] += p
                    row[COL["step_up_interest"]] += p
            return cash

        for s, step in enumerate(deal.waterfall):
            draws_reserve = step.type in ("fees", "interest") and s < reserve_at
            if step.type == "fees":
                due = fee_carry + new_fees
                from_cash = min(cash, due)
                cash -= from_cash
                unpaid = due - from_cash
                if draws_reserve and unpaid > 0.0:
                    unpaid = draw_reserve(unpaid)
                fee_carry = unpaid
                row[COL["fees"]] += due - unpaid
                sledger[s, t] = due - unpaid
            elif step.type == "interest":
                ks = [k_of[n] for n in step.classes]
                due = {}
                for k in ks:
                    c = trs[k].coupon / 12.0
                    grow = (1.0 + c) if trs[k].interest_on_shortfall else 1.0
                    due[k] = c * start_balance[k] + carry[k] * grow
                total = sum(due.values())
                if total <= 0.0:
                    continue
                from_cash = min(cash, total)
                cash -= from_cash
                unpaid = total - from_cash
                if draws_reserve and unpaid > 0.0:
                    unpaid = draw_reserve(unpaid)
                    if unpaid == 0.0:
                        for k in ks:
                            if due[k] > 0.0:
                                covered[k].append(t)
                for k in ks:
                    paid = due[k] if unpaid == 0.0 else (total - unpaid) * due[k] / total
                    if trs[k].deferrable:  # PIK: capitalised, not a shortfall
                        balance[k] += due[k] - paid
                        carry[k] = 0.0
                    else:
                        carry[k] = due[k] - paid
                        if unpaid > 0.0 and due[k] > 0.0:
                            any_short[k] = 1
                            if first_miss[k] == 0:
                                first_miss[k] = t
                    tledger[k, t, 0] += paid
                    received[k][t] += paid
                    row[COL["interest"]] += paid
                    sledger[s, t] += paid
            elif step.type == "reserve":
                if ends:
                    target = 0.0
                else:
                    target = deal.reserve.target_months * sum(
                        trs[k].coupon / 12.0 * start_balance[k] for k in range(K) if names[k] in senior
                    )
                deposit = min(cash, max(0.0, target - (reserve - trapped)))
                cash -= deposit
                reserve += deposit
                row[COL["reserve_deposit"]] += deposit
                sledger[s, t] = deposit
            elif step.type == "principal":
                ks = [k_of[n] for n in step.classes]
                due = {}
                for k in ks:
                    target = scheduled_balance(trs[k], LF, t)
                    if t == LF or sweeping or target is None:
                        due[k] = balance[k]
                    else:
                        due[k] = max(0.0, balance[k] - target)
                paid = {}
                if step.mode == "sequential" or sweeping:
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
                    received[k][t] += paid[k]
                    row[COL["principal"]] += paid[k]
                    sledger[s, t] += paid[k]
                    scheduled = trs[k].amortization != "sweep"
                    if scheduled and not sweeping and t < LF and paid[k] < due[k] and first_miss[k] == 0:
                        first_miss[k] = t
            elif step.type == "trap":
                if trap_on and not ends:
                    reserve += cash
                    trapped += cash
                    row[COL["trapped"]] += cash
                    sledger[s, t] = cash
                    cash = 0.0
                elif trapped > 0.0:
                    back = min(trapped, reserve)
                    reserve -= back
                    cash += back
                    trapped = 0.0
                    row[COL["trapped"]] -= back
                    sledger[s, t] = -back
            elif step.type == "residual":
                cash = pay_step_up(cash)
                row[COL["residual"]] += cash
                sledger[s, t] = cash
                cash = 0.0
        cash = pay_step_up(cash)  # the implicit residual step
        row[COL["residual"]] += cash
        if ard_outcome == 2:  # step-up accrues from the end of the ARD month on
            for k in range(K):
                step_up[k] += ard.step_up_bps / 1e4 / 12.0 * balance[k]
        if refinance:  # new money repays every class's balance and carried shortfall
            for k in range(K):
                row[COL["refinanced"]] += balance[k] + carry[k]
                tledger[k, t, 0] += carry[k]
                tledger[k, t, 1] += balance[k]
                received[k][t] += carry[k] + balance[k]
                balance[k] = 0.0
                carry[k] = 0.0
        row[COL["reserve_balance"]] = reserve
        row[COL["trap_on"]] = float(trap_on)
        row[COL["sweep_on"]] = float(sweeping)
        for k in range(K):
            tledger[k, t, 2] = balance[k]
            tledger[k, t, 3] = carry[k]
        if refinance:
            break  # the deal ends
    for k in range(K):
        tledger[k, t, 4] = balance[k]

    v = (1.0 + cfg.run.discount_rate) ** (-1.0 / 12.0)
    out = {"loss": [], "shortfall": [], "pv": [], "wal": [], "any_shortfall": [], "first_loss": []}
    for k, tr in enumerate(trs):
        B0 = tr.balance
        loss = min(balance[k], B0) / B0  # a PIK balance above the original is interest written off
        out["loss"].append(loss)
        out["shortfall"].append((carry[k] + max(0.0, balance[k] - B0)) / B0)
        out["pv"].append(sum(v**t * received[k][t] for t in range(1, T + 1)) / B0)
        principal = sum(tledger[k, t, 1] for t in range(1, T + 1))
        out["wal"].append(
            sum(t / 12.0 * tledger[k, t, 1] for t in range(1, T + 1)) / principal if principal > 0 else math.nan
        )
        out["any_shortfall"].append(any_short[k])
        out["first_loss"].append((first_miss[k] or LF) if loss > 0 else 0)
    # docs/model.md §6.1: the state at the stress horizon h (all zero without a `contagion` section).
    h = cfg.contagion.horizon_month if cfg.contagion is not None else 0
    out.update(h_balance=[], h_value=[], h_wal=[])
    for k, tr in enumerate(trs):
        B0 = tr.balance
        if h == 0:
            out["h_balance"].append(0.0)
            out["h_value"].append(0.0)
            out["h_wal"].append(0.0)
            continue
        rate = tr.coupon / 12.0 if tr.coupon > 0 else (1.0 + cfg.run.discount_rate) ** (1.0 / 12.0) - 1.0
        out["h_balance"].append(tledger[k, h, 2] / B0)
        out["h_value"].append(sum(received[k][t] * (1.0 + rate) ** -(t - h) for t in range(h + 1, T + 1)) / B0)
        late = sum(tledger[k, t, 1] for t in range(h + 1, T + 1))
        out["h_wal"].append(sum((t - h) / 12.0 * tledger[k, t, 1] for t in range(h + 1, T + 1)) / late if late > 0 else math.nan)
    if h > 0:
        due = sum(tr.coupon / 12.0 * tledger[k, h, 2] for k, tr in enumerate(trs))
        got = sum(collections[t] for t in range(max(1, h - 2), h + 1))
        out["h_coverage"] = min(got / (3.0 * due), 10.0) if due > 0 else 10.0
    else:
        out["h_coverage"] = 0.0
    out.update(ledger=ledger, step_ledger=sledger, tranche_ledger=tledger, received=received, reserve_covered=covered,
               reserve_used=reserve_draws / sum(tr.balance for tr in trs), reserve_out=reserve_out,
               trap_month=trap_month, rapid_month=rapid_month, ard=ard_outcome,
               written_off=[min(balance[k], trs[k].balance) for k in range(K)])
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


def simulate_path(cfg, c, draws, relet_c=None) -> dict:
    """Every per-path output of one path; ``draws`` is a Draws NamedTuple of one path (n = 1).

    ``relet_c`` maps (relet_pd, relet_rho) to the replacement tenant's calibrated threshold (see
    :func:`relet_thresholds`); needed only when some lease re-lets.
    """
    T = cfg.run.months
    deterministic = cfg.deterministic is not None
    eps, expo = draws.eps[0], draws.expo[0]
    B = int(draws.burst_month[0])
    winv = float(draws.winv[0])
    key = int(draws.key[0])
    counts = draws.release_counts[0] if cfg.gpu.releases == "poisson" and not deterministic else None
    X = factor_path(cfg, eps, B)
    tau = default_months(cfg, [float(x) for x in c], X, [float(e) for e in expo], winv)
    network = network_year_ends(cfg, X, tau)
    tenant_index = {tn.name: i for i, tn in enumerate(cfg.tenants)}
    b = cfg.gpu.factor_beta
    gpu_index = [obsolescence(cfg, t, counts) * math.exp(b * X[t] - b * b / 2.0) for t in range(T + 1)]
    relet_H = {pair: cumulative_hazard(cv, pair[1], X, winv) for pair, cv in (relet_c or {}).items()}

    # Deals in dependency order: a deal runs after the deals whose tranches it holds (§5 ABS-of-ABS).
    order, seen = [], set()

    def visit(i):
        if i in seen:
            return
        seen.add(i)
        for ct in cfg.deals[i].collateral_tranches:
            visit(next(j for j, x in enumerate(cfg.deals) if x.name == ct.deal))
        order.append(i)

    for i in range(len(cfg.deals)):
        visit(i)

    option_number = {}  # lease -> its position among the config's option leases
    for deal in cfg.deals:
        for lease in deal.all_leases:
            if has_options(lease):
                option_number[id(lease)] = len(option_number)

    results = {}
    events = {}
    for i in order:
        deal = cfg.deals[i]
        src = {k: [0.0] * (T + 1) for k in SOURCES}
        lost = 0.0
        pool = 0.0
        renewals = 0
        for lease in deal.all_leases:
            tau_j = tau[tenant_index[lease.tenant]]
            collateral = lease.gpu_cost + lease.shell_value
            pool += sum(contract_rent(lease, t) for t in range(1, T + 1)) + collateral
            if has_options(lease):
                g = tau[tenant_index[lease.rvg_guarantor or lease.tenant]]
                pair = (lease.relet_pd, lease.relet_rho)
                cash, nren, nl = option_lease_cash(cfg, lease, option_number[id(lease)], tau_j, g, X, counts, key,
                                                   relet_H.get(pair), deterministic, events)
                for kind, flow in cash.items():
                    for t in range(T + 1):
                        src[kind][t] += flow[t]
                renewals += nren
                lost += nl
                continue
            r, rc, sl, received = lease_cash(cfg, lease, tau_j, X, counts)
            for t in range(T + 1):
                src["rent"][t] += r[t]
                src["recovery"][t] += rc[t]
                src["sale"][t] += sl[t]
            end = lease.start_month + lease.term_months
            if tau_j <= T and tau_j <= end:
                lost += sum(contract_rent(lease, t) for t in range(tau_j, min(end, T) + 1))
                lost += max(0.0, collateral - received)
        for ct in deal.collateral_tranches:
            held = results[ct.deal]
            k = [tr.name for tr in cfg.deals[[x.name for x in cfg.deals].index(ct.deal)].tranches].index(ct.tranche)
            for t in range(T + 1):
                src["abs_collateral"][t] += ct.fraction * held["received"][k][t]
            pool += ct.fraction * held["tranches"][k].balance
            lost += ct.fraction * held["written_off"][k]
        nl = lost / pool if pool > 0 else 0.0
        collections = [sum(src[k][t] for k in SOURCES) for t in range(T + 1)]
        d = run_deal(cfg, deal, collections, X)
        d["tranches"] = deal.tranches
        L = d["ledger"]
        for t in range(T + 1):
            for kind in SOURCES:
                L[t, COL[kind]] = src[kind][t]
            L[t, COL["factor"]] = X[t]
            L[t, COL["gpu_index"]] = gpu_index[t]
        d["net_loss"] = nl
        h = cfg.contagion.horizon_month if cfg.contagion is not None else 0
        rent_in_T = [(sum(contract_rent(lease, t) for t in range(1, T + 1)), tau[tenant_index[lease.tenant]]) for lease in deal.all_leases]
        total_rent = sum(w for w, _ in rent_in_T)
        d["h_defaulted"] = sum(w for w, t in rent_in_T if t <= h) / total_rent if h > 0 and total_rent > 0 else 0.0
        deal_tenants = {tenant_index[lease.tenant] for lease in deal.all_leases}
        d["defaults"] = sum(1 for i in deal_tenants if tau[i] <= T)
        d["renewals"] = renewals
        d["rvg"] = sum(src["rvg"]) / pool if pool > 0 else 0.0
        d["recoveries"] = (sum(src["recovery"]) + sum(src["sale"])) / pool if pool > 0 else 0.0
        results[deal.name] = d

    res = {k: [] for k in ("principal_loss", "interest_shortfall", "pv", "wal", "any_shortfall", "first_loss_month", "alloc_loss")}
    res.update(net_loss=[], defaults=[], reserve_used=[], reserve_out=[], trap_month=[], rapid_month=[], ard=[],
               rvg=[], recoveries=[], renewals=[], h_balance=[], h_value=[], h_wal=[], h_coverage=[], h_defaulted=[])
    ledgers, step_ledgers, tranche_ledgers, reserve_covered = [], [], [], []
    for deal in cfg.deals:  # outputs in config order
        d = results[deal.name]
        res["principal_loss"] += d["loss"]
        res["interest_shortfall"] += d["shortfall"]
        res["pv"] += d["pv"]
        res["wal"] += d["wal"]
        res["h_balance"] += d["h_balance"]
        res["h_value"] += d["h_value"]
        res["h_wal"] += d["h_wal"]
        res["any_shortfall"] += d["any_shortfall"]
        res["first_loss_month"] += d["first_loss"]
        reserve_covered += d["reserve_covered"]
        nl = d["net_loss"]
        for tr in deal.tranches:
            if tr.attach is None:
                res["alloc_loss"].append(math.nan)
            else:
                A, D = tr.attach, tr.detach
                res["alloc_loss"].append(min(max(nl - A, 0.0), D - A) / (D - A))
        for key_out, key_in in (("net_loss", "net_loss"), ("defaults", "defaults"), ("reserve_used", "reserve_used"),
                                ("reserve_out", "reserve_out"), ("trap_month", "trap_month"), ("rapid_month", "rapid_month"),
                                ("ard", "ard"), ("rvg", "rvg"), ("recoveries", "recoveries"), ("renewals", "renewals"),
                                ("h_coverage", "h_coverage"), ("h_defaulted", "h_defaulted")):
            res[key_out].append(d[key_in])
        ledgers.append(d["ledger"])
        step_ledgers.append(d["step_ledger"])
        tranche_ledgers.append(d["tranche_ledger"])

    out = {k: np.array(v, dtype=float) for k, v in res.items()}
    for k in ("any_shortfall", "first_loss_month", "defaults", "reserve_out", "trap_month", "rapid_month", "ard", "renewals"):
        out[k] = out[k].astype(np.int64)
    out["tau"] = np.array(tau, dtype=np.int64)
    out["firm_default_month"] = np.array(network["month"], dtype=np.int64)
    out["firm_own"] = np.array(network["own"], dtype=np.int64)
    out["firm_ratio"] = np.array(network["ratio"], dtype=float)
    out["firm_caused"] = np.array(network["caused"], dtype=float)
    out["cascade"] = np.array(network["cascade"], dtype=np.int64)
    out["ledger"] = np.stack(ledgers)  # [D, T+1, ncol]
    out["step_ledger"] = np.concatenate(step_ledgers)  # [S, T+1]
    out["tranche_ledger"] = np.concatenate(tranche_ledgers)  # [K, T+1, 3]
    out["X"] = np.array(X)
    h = cfg.contagion.horizon_month if cfg.contagion is not None else 0
    out["h_factor"] = np.array(X[h] if h > 0 else 0.0)
    out["h_gpu"] = np.array(gpu_index[h] if h > 0 else 0.0)
    out["factor_bin"] = np.array([min(max(math.floor((x + 8.0) / 0.01), 0), 1599) for x in X], dtype=np.int64)
    out["gpu_bin"] = np.array([min(max(math.floor(g / 0.0025), 0), 1599) for g in gpu_index], dtype=np.int64)
    out["reserve_covered"] = reserve_covered
    out["events"] = events
    return out


def relet_thresholds(cfg) -> dict:
    """Calibrated thresholds of the replacement tenants, by (relet_pd, relet_rho): "calibrated like
    any tenant" (docs/model.md §4), with the run's factor persistence, copula and calibration method."""
    from engine.plan.calibrate import calibrate_thresholds

    pairs = sorted({(lease.relet_pd, lease.relet_rho) for deal in cfg.deals for lease in deal.all_leases
                    if lease.recovery == "relet"})
    if not pairs:
        return {}
    c = calibrate_thresholds(np.array([p for p, _ in pairs]), np.array([r for _, r in pairs]),
                             persistence=cfg.factor.persistence, student_t_dof=cfg.factor.student_t_dof,
                             method=cfg.run.pd_calibration)
    return {pair: float(x) for pair, x in zip(pairs, c)}
