"""The priority of payments as an opcode interpreter (MODEL §5).

A deal's waterfall is a program: ``step_op[s]`` for s in the deal's step range, with CSR targets.
Triggers, the ARD and the legal final change how the steps behave (the sweep, the trap), never
which code runs. Nothing here knows about any particular deal; a new structure is new data.
"""

import math
from typing import NamedTuple

import numpy as np

from ._jit import jit, jit_inline
from .plan import (
    ARD_REFINANCED,
    ARD_SWEPT,
    L_DSCR,
    L_FEES,
    L_INTEREST,
    L_PRINCIPAL,
    L_REFINANCED,
    L_RESERVE_BALANCE,
    L_RESERVE_DEPOSIT,
    L_RESERVE_DRAW,
    L_RESERVE_INTEREST,
    L_RESERVE_RELEASE,
    L_RESIDUAL,
    L_STEP_UP,
    L_SWEEP_ON,
    L_TRAP_ON,
    L_TRAPPED,
    MODE_SEQUENTIAL,
    OP_FEES,
    OP_INTEREST,
    OP_PRINCIPAL,
    OP_RESERVE,
    OP_RESIDUAL,
    OP_TRAP,
    TL_BALANCE,
    TL_INTEREST,
    TL_PRINCIPAL,
    TL_SHORTFALL,
    TL_WRITEDOWN,
)

# Rows of the tranche state scratch ``st``.
BAL, BAL0, SHORT, PV, WALN, PRIN, DUE, FIRST, SUP, LWALN, LPRIN = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
STATE_ROWS = 11
DSCR_WINDOW = 3
# A month that repays every note pays at least their balance at its start (less rounding).
SETTLE_GATE = 1.0 - 1e-9


class DealPath(NamedTuple):
    """The monthly arrays of one deal-path's waterfall (the caller's scratch, reused by every deal).

    X : f8[T+1]                    the factor (the ARD's market test)
    cash : f8[T+1]                 collections of the deal by month
    st : f8[STATE_ROWS, K]         tranche state; rows BAL .. LPRIN above
    tcash : f8[K, T+1] (out)       cash paid to each of the deal's tranches by month (ABS-of-ABS)
    """

    X: np.ndarray
    cash: np.ndarray
    st: np.ndarray
    tcash: np.ndarray


@jit_inline
def _draw(due, paid, reserve):
    """Cover ``due − paid`` from the reserve. Returns (paid, reserve, draw).

    When the reserve covers the whole gap the step is paid exactly ``due``: adding the draw to the
    cash paid could land one rounding step short and record a spurious shortfall.
    """
    gap = due - paid
    if reserve >= gap:
        return due, reserve - gap, gap
    return paid + reserve, 0.0, reserve


@jit_inline
def _pay(k, amount, principal, t, disc, st, tcash, late):
    """Book ``amount`` of cash to tranche ``k`` in month ``t`` (principal also reduces the balance);
    ``late``: after the stress horizon, where principal also counts towards the WAL from it."""
    st[PV, k] += amount * disc
    tcash[k, t] += amount
    if principal:
        if amount >= st[BAL, k]:
            st[BAL, k] = 0.0
        else:
            st[BAL, k] -= amount
        st[WALN, k] += amount * (t / 12.0)
        st[PRIN, k] += amount
        if late:
            # Summed apart, not as a difference of running totals: a small late payment after a
            # large early one would cancel away.
            st[LWALN, k] += amount * (t / 12.0)
            st[LPRIN, k] += amount


@jit_inline
def run_waterfall(d, dp, wf, out_p, out, led):
    """Run deal ``d``'s waterfall over months 1..legal final and write path ``out_p``'s results.

    Parameters
    ----------
    d : int; dp : DealPlan; wf : DealPath
    out_p : int; out : PathOutputs
    led : Ledgers                  written only when it has a month axis (a statement)

    Returns
    -------
    float : total reserve draws (USD).
    """
    X, cash, st, tcash = wf.X, wf.cash, wf.st, wf.tcash
    record = led.deal.shape[1] > 0
    k0 = dp.deal_tranche_ptr[d]
    k1 = dp.deal_tranche_ptr[d + 1]
    T = cash.shape[0] - 1
    for k in range(k0, k1):
        st[BAL, k] = dp.tranche_balance[k]
        for r in range(1, STATE_ROWS):
            st[r, k] = 0.0
        for t in range(T + 1):
            tcash[k, t] = 0.0
        out.tranche_any_shortfall[out_p, k] = 0
        out.tranche_h_balance[out_p, k] = 0.0
    hm = dp.horizon_month
    reached = False  # a refinanced deal can end before the horizon
    res = dp.deal_reserve0[d]
    trapped = 0.0
    fee_short = 0.0
    used = 0.0
    LF = dp.deal_legal_final[d]
    ard = dp.deal_ard[d]
    s0 = dp.deal_step_ptr[d]
    s1 = dp.deal_step_ptr[d + 1]
    trap_level = dp.deal_trap_dscr[d]
    rapid_level = dp.deal_rapid_dscr[d]
    triggers = trap_level > 0.0 or rapid_level > 0.0
    # A statement shows the DSCR of every deal; only a deal with triggers acts on it.
    measured = triggers or record
    # The last three months' DSCR numerators and denominators, oldest first (no allocation per path).
    cf1 = cf2 = cf3 = 0.0
    ds1 = ds2 = ds3 = 0.0
    sweep = False
    # Step-up interest accrues and is paid only after a failed refinancing with a step-up.
    stepping = False
    trap_on = False
    refinance = False
    out.deal_reserve_out[out_p, d] = 0
    out.deal_trap_month[out_p, d] = 0
    out.deal_rapid_month[out_p, d] = 0
    out.deal_ard[out_p, d] = 0
    disc = 1.0
    last = 0  # the last month simulated (a refinanced deal ends early), for the statement's write-down
    # Once nothing is owed, the ARD is past, the DSCR window holds no debt service and the fixed fees
    # can never draw on the reserve, a month changes no output: its cash goes to fees and the residual
    # holder. A run (not a statement) stops there; on medium that skips 40% of the months, on small 65%.
    may_settle = not record
    settled = False
    for t in range(1, LF + 1):
        disc *= dp.discount_m
        final = t == LF
        base = 0.0
        service = 0.0
        for k in range(k0, k1):
            st[BAL0, k] = st[BAL, k]
            base += st[BAL, k]
            if measured:
                if dp.tranche_senior[k]:
                    service += dp.tranche_coupon_m[k] * st[BAL, k]
                if dp.tranche_scheduled[k]:
                    service += max(0.0, st[BAL, k] - dp.tranche_target[k, t])
        fees_due = fee_short + dp.deal_fee_rate_m[d] * base + dp.deal_fee_fixed[d]
        # Trailing DSCR over the three months before this one, tested before this month's payments.
        dscr = np.nan
        if measured and t > DSCR_WINDOW:
            num = cf1 + cf2 + cf3
            den = ds1 + ds2 + ds3
            dscr = num / den if den > 0.0 else math.inf
            trap_on = trap_level > 0.0 and dscr < trap_level
            if trap_on and out.deal_trap_month[out_p, d] == 0:
                out.deal_trap_month[out_p, d] = t
            if rapid_level > 0.0 and dscr < rapid_level and out.deal_rapid_month[out_p, d] == 0:
                out.deal_rapid_month[out_p, d] = t
                sweep = True
        cf1, cf2, cf3 = cf2, cf3, cash[t] - (dp.deal_fee_rate_m[d] * base + dp.deal_fee_fixed[d])
        ds1, ds2, ds3 = ds2, ds3, service
        if t == ard:
            if X[t] >= dp.deal_refi_threshold[d]:
                refinance = True
                out.deal_ard[out_p, d] = ARD_REFINANCED
            else:
                sweep = True
                stepping = dp.deal_step_up_m[d] > 0.0
                out.deal_ard[out_p, d] = ARD_SWEPT
        res_int = res * dp.deal_reserve_rate_m[d]
        avail = cash[t] + res_int
        release = 0.0
        if final or refinance:
            release = res
            avail += res
            res = 0.0
            trapped = 0.0
        draws = 0.0
        fees_paid = 0.0
        int_paid = 0.0
        prin_paid = 0.0
        step_up_paid = 0.0
        deposit = 0.0
        trapped_now = 0.0
        residual = 0.0
        for s in range(s0, s1):
            op = dp.step_op[s]
            step_paid = 0.0
            if op == OP_FEES:
                due = fees_due
                pay = min(avail, due)
                avail -= pay
                if pay < due and dp.step_draws_reserve[s] and res > 0.0:
                    pay, res, dr = _draw(due, pay, res)
                    draws += dr
                    if pay < due:
                        out.deal_reserve_out[out_p, d] = 1
                fee_short = 0.0 if pay >= due else due - pay
                fees_paid += pay
                step_paid = pay
            elif op == OP_INTEREST:
                total = 0.0
                for ix in range(dp.step_target_ptr[s], dp.step_target_ptr[s + 1]):
                    k = dp.step_target[ix]
                    c = dp.tranche_coupon_m[k]
                    carried = st[SHORT, k]
                    if dp.tranche_interest_on_shortfall[k]:
                        carried = carried * (1.0 + c)
                    st[DUE, k] = c * st[BAL0, k] + carried
                    total += st[DUE, k]
                pay = min(avail, total)
                avail -= pay
                if pay < total and dp.step_draws_reserve[s] and res > 0.0:
                    pay, res, dr = _draw(total, pay, res)
                    draws += dr
                    if pay < total:
                        out.deal_reserve_out[out_p, d] = 1
                full = pay >= total
                for ix in range(dp.step_target_ptr[s], dp.step_target_ptr[s + 1]):
                    k = dp.step_target[ix]
                    due = st[DUE, k]
                    paid = due if full else due * (pay / total)
                    gap = 0.0 if full else due - paid
                    if dp.tranche_deferrable[k]:
                        # PIK: the unpaid coupon is added to the balance and is no shortfall.
                        st[SHORT, k] = 0.0
                        st[BAL, k] += gap
                    else:
                        st[SHORT, k] = gap
                        if gap > 0.0:
                            out.tranche_any_shortfall[out_p, k] = 1
                            if st[FIRST, k] == 0.0:
                                st[FIRST, k] = t
                    _pay(k, paid, False, t, disc, st, tcash, reached)
                    int_paid += paid
                    step_paid += paid
                    if record:
                        led.tranche[k, t, TL_INTEREST] += paid
            elif op == OP_RESERVE:
                target = 0.0
                if not (final or refinance):
                    for k in range(k0, k1):
                        if dp.tranche_senior[k]:
                            target += dp.tranche_coupon_m[k] * st[BAL0, k]
                    target *= dp.deal_reserve_months[d]
                dep = min(avail, max(0.0, target - (res - trapped)))
                res += dep
                avail -= dep
                deposit += dep
                step_paid = dep
            elif op == OP_PRINCIPAL:
                total = 0.0
                for ix in range(dp.step_target_ptr[s], dp.step_target_ptr[s + 1]):
                    k = dp.step_target[ix]
                    if final or sweep or not dp.tranche_scheduled[k]:
                        due = st[BAL, k]
                    else:
                        due = max(0.0, st[BAL, k] - dp.tranche_target[k, t])
                    st[DUE, k] = due
                    total += due
                sequential = sweep or dp.step_mode[s] == MODE_SEQUENTIAL
                full = avail >= total
                pot = min(avail, total)
                for ix in range(dp.step_target_ptr[s], dp.step_target_ptr[s + 1]):
                    k = dp.step_target[ix]
                    due = st[DUE, k]
                    if full:
                        paid = due
                    elif sequential:
                        paid = min(avail, due)
                    else:
                        paid = due * (pot / total)
                    if paid > avail:
                        paid = avail
                    avail -= paid
                    _pay(k, paid, True, t, disc, st, tcash, reached)
                    prin_paid += paid
                    step_paid += paid
                    if dp.tranche_scheduled[k] and not sweep and paid < due and st[FIRST, k] == 0.0:
                        st[FIRST, k] = t
                    if record:
                        led.tranche[k, t, TL_PRINCIPAL] += paid
            elif op == OP_TRAP:
                if trap_on and not (final or refinance):
                    res += avail
                    trapped += avail
                    trapped_now += avail
                    step_paid = avail
                    avail = 0.0
                elif trapped > 0.0:
                    back = min(trapped, res)
                    res -= back
                    avail += back
                    trapped_now -= back
                    step_paid = -back
                    trapped = 0.0
            elif op == OP_RESIDUAL:
                if stepping:
                    paid = _step_up(k0, k1, avail, t, disc, st, tcash)
                    avail -= paid
                    step_up_paid += paid
                residual += avail
                step_paid = avail
                avail = 0.0
            if record:
                led.step[s, t] = step_paid
        # Cash no step claimed pays the step-up interest and then the residual holder.
        if stepping:
            paid = _step_up(k0, k1, avail, t, disc, st, tcash)
            avail -= paid
            step_up_paid += paid
        residual += avail
        if stepping:
            for k in range(k0, k1):
                st[SUP, k] += dp.deal_step_up_m[d] * st[BAL, k]
        refi_paid = 0.0
        if refinance:
            for k in range(k0, k1):
                owed = st[SHORT, k]
                st[SHORT, k] = 0.0
                _pay(k, owed, False, t, disc, st, tcash, reached)
                bal = st[BAL, k]
                _pay(k, bal, True, t, disc, st, tcash, reached)
                refi_paid += bal + owed
                if record:
                    led.tranche[k, t, TL_INTEREST] += owed
                    led.tranche[k, t, TL_PRINCIPAL] += bal
        used += draws
        if record:
            led.deal[d, t, L_RESERVE_INTEREST] = res_int
            led.deal[d, t, L_RESERVE_DRAW] = draws
            led.deal[d, t, L_RESERVE_RELEASE] = release
            led.deal[d, t, L_FEES] = fees_paid
            led.deal[d, t, L_INTEREST] = int_paid
            led.deal[d, t, L_PRINCIPAL] = prin_paid
            led.deal[d, t, L_STEP_UP] = step_up_paid
            led.deal[d, t, L_RESERVE_DEPOSIT] = deposit
            led.deal[d, t, L_TRAPPED] = trapped_now
            led.deal[d, t, L_REFINANCED] = refi_paid
            led.deal[d, t, L_RESIDUAL] = residual
            led.deal[d, t, L_RESERVE_BALANCE] = res
            led.deal[d, t, L_DSCR] = dscr
            led.deal[d, t, L_TRAP_ON] = 1.0 if trap_on else 0.0
            led.deal[d, t, L_SWEEP_ON] = 1.0 if sweep else 0.0
            for k in range(k0, k1):
                led.tranche[k, t, TL_BALANCE] = st[BAL, k]
                led.tranche[k, t, TL_SHORTFALL] = st[SHORT, k]
            last = t
        if t == hm:
            reached = True
            for k in range(k0, k1):
                out.tranche_h_balance[out_p, k] = st[BAL, k]
        if refinance:
            break
        # The notes can only have been repaid in a month whose principal reached their balance, and
        # repaid notes stay repaid: one comparison a month until then.
        if may_settle and (settled or prin_paid >= SETTLE_GATE * base):
            settled = settled or _settled(k0, k1, st)
            if settled and fee_short == 0.0 and (t >= ard or ard > LF) and ds1 + ds2 + ds3 == 0.0:
                if _fees_covered(d, t, LF, res, cash, dp):
                    break
                may_settle = False  # (decided once: a later month could still be short)
    for k in range(k0, k1):
        orig = dp.tranche_balance[k]
        if hm > 0:
            _horizon_state(k, hm, LF, reached, dp, st, tcash, out_p, out)
        # A PIK balance can exceed the original: the excess written off is unpaid interest.
        written_off = st[BAL, k]
        if record:
            led.tranche[k, last, TL_WRITEDOWN] = written_off
        loss = min(written_off, orig) / orig
        out.tranche_loss[out_p, k] = loss
        out.tranche_shortfall[out_p, k] = (st[SHORT, k] + max(0.0, written_off - orig)) / orig
        out.tranche_pv[out_p, k] = st[PV, k] / orig
        out.tranche_wal[out_p, k] = st[WALN, k] / st[PRIN, k] if st[PRIN, k] > 0.0 else np.nan
        if loss > 0.0:
            first = int(st[FIRST, k])
            out.tranche_first_loss[out_p, k] = first if first > 0 else LF
        else:
            out.tranche_first_loss[out_p, k] = 0
    return used


@jit_inline
def _settled(k0, k1, st):
    """No tranche has a balance, a shortfall or step-up interest left."""
    for k in range(k0, k1):
        if st[BAL, k] != 0.0 or st[SHORT, k] != 0.0 or st[SUP, k] != 0.0:
            return False
    return True


@jit_inline
def _fees_covered(d, t, LF, res, cash, dp):
    """After month t of a settled deal, no fee step can draw on the reserve: there is no fixed fee,
    no reserve, no fee step that draws, or every later month's collections cover every fee step's
    fixed fee (the only claims left before them)."""
    fixed = dp.deal_fee_fixed[d]
    if fixed == 0.0 or res == 0.0:
        return True
    n = 0
    drawing = False
    for s in range(dp.deal_step_ptr[d], dp.deal_step_ptr[d + 1]):
        if dp.step_op[s] == OP_FEES:
            n += 1
            drawing = drawing or dp.step_draws_reserve[s]
    if not drawing:
        return True
    for u in range(t + 1, LF + 1):
        if cash[u] < n * fixed:
            return False
    return True


@jit_inline
def _horizon_state(k, hm, LF, reached, dp, st, tcash, out_p, out):
    """Tranche k's state at the stress horizon (PathOutputs.tranche_h_*), once the path is done."""
    orig = dp.tranche_balance[k]
    value = 0.0
    df = 1.0
    for t in range(hm + 1, LF + 1):
        df *= dp.tranche_mark_disc[k]
        value += tcash[k, t] * df
    out.tranche_h_value[out_p, k] = value / orig
    out.tranche_h_balance[out_p, k] /= orig
    late = st[LPRIN, k] if reached else 0.0
    out.tranche_h_wal[out_p, k] = st[LWALN, k] / late - hm / 12.0 if late > 0.0 else np.nan


@jit_inline
def _step_up(k0, k1, avail, t, disc, st, tcash):
    """Pay carried ARD step-up interest from ``avail``, in tranche order; returns the amount paid."""
    paid = 0.0
    for k in range(k0, k1):
        owed = st[SUP, k]
        if owed <= 0.0 or avail - paid <= 0.0:
            continue
        p = min(owed, avail - paid)
        st[SUP, k] = owed - p
        _pay(k, p, False, t, disc, st, tcash, False)
        paid += p
    return paid
