"""The priority of payments as an opcode interpreter (MODEL §5).

A deal's waterfall is a program: ``step_op[s]`` for s in the deal's step range, with CSR targets.
Nothing here knows about any particular deal; a new structure is new data, not new code.
"""

import numpy as np

from ._jit import jit
from .plan import (
    L_FEES,
    L_INTEREST,
    L_PRINCIPAL,
    L_RESERVE_BALANCE,
    L_RESERVE_DEPOSIT,
    L_RESERVE_DRAW,
    L_RESERVE_INTEREST,
    L_RESERVE_RELEASE,
    L_RESIDUAL,
    MODE_SEQUENTIAL,
    OP_FEES,
    OP_INTEREST,
    OP_PRINCIPAL,
    OP_RESERVE,
    OP_RESIDUAL,
    TL_BALANCE,
    TL_INTEREST,
    TL_PRINCIPAL,
)


@jit
def _draw(due, paid, reserve):
    """Cover ``due − paid`` from the reserve. Returns (paid, reserve, draw).

    When the reserve covers the whole gap the step is paid exactly ``due``: adding the draw to the
    cash paid could land one rounding step short and record a spurious shortfall.
    """
    gap = due - paid
    if reserve >= gap:
        return due, reserve - gap, gap
    return paid + reserve, 0.0, reserve


@jit
def run_waterfall(d, dp, cash, st, out_p, out, ledger, tledger, record):
    """Run deal ``d``'s waterfall over months 1..legal final and write path ``out_p``'s results.

    Parameters
    ----------
    d : int
    dp : DealPlan
    cash : f8[T+1]                 collections of the deal by month
    st : f8[8, K] (scratch)        tranche state rows: balance, start-of-month balance, carried
                                   interest shortfall, pv, WAL numerator, principal received,
                                   amount due this step, first shortfall month
    out_p : int; out : PathOutputs
    ledger : f8[T+1, n_cols]; tledger : f8[K, T+1, 3]   written only when ``record``

    Returns
    -------
    float : total reserve draws (USD).
    """
    BAL, BAL0, SHORT, PV, WALN, PRIN, DUE, FIRST = 0, 1, 2, 3, 4, 5, 6, 7
    k0 = dp.deal_tranche_ptr[d]
    k1 = dp.deal_tranche_ptr[d + 1]
    for k in range(k0, k1):
        st[BAL, k] = dp.tranche_balance[k]
        for r in range(1, 8):
            st[r, k] = 0.0
        out.tranche_any_shortfall[out_p, k] = 0
    res = dp.deal_reserve0[d]
    fee_short = 0.0
    used = 0.0
    LF = dp.deal_legal_final[d]
    s0 = dp.deal_step_ptr[d]
    s1 = dp.deal_step_ptr[d + 1]
    disc = 1.0
    for t in range(1, LF + 1):
        disc *= dp.discount_m
        final = t == LF
        base = 0.0
        for k in range(k0, k1):
            st[BAL0, k] = st[BAL, k]
            base += st[BAL, k]
        res_int = res * dp.deal_reserve_rate_m[d]
        avail = cash[t] + res_int
        release = 0.0
        if final:
            release = res
            avail += res
            res = 0.0
        draws = 0.0
        fees_paid = 0.0
        int_paid = 0.0
        prin_paid = 0.0
        deposit = 0.0
        residual = 0.0
        for s in range(s0, s1):
            op = dp.step_op[s]
            if op == OP_FEES:
                due = fee_short + dp.deal_fee_rate_m[d] * base + dp.deal_fee_fixed[d]
                pay = min(avail, due)
                avail -= pay
                if pay < due and dp.step_draws_reserve[s] and res > 0.0:
                    pay, res, dr = _draw(due, pay, res)
                    draws += dr
                fee_short = 0.0 if pay >= due else due - pay
                fees_paid += pay
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
                full = pay >= total
                for ix in range(dp.step_target_ptr[s], dp.step_target_ptr[s + 1]):
                    k = dp.step_target[ix]
                    due = st[DUE, k]
                    if full:
                        paid = due
                    else:
                        paid = due * (pay / total)
                    st[SHORT, k] = 0.0 if full else due - paid
                    if st[SHORT, k] > 0.0:
                        out.tranche_any_shortfall[out_p, k] = 1
                        if st[FIRST, k] == 0.0:
                            st[FIRST, k] = t
                    st[PV, k] += paid * disc
                    int_paid += paid
                    if record:
                        tledger[k, t, TL_INTEREST] += paid
            elif op == OP_RESERVE:
                target = 0.0
                if not final:
                    for k in range(k0, k1):
                        if dp.tranche_senior[k]:
                            target += dp.tranche_coupon_m[k] * st[BAL0, k]
                    target *= dp.deal_reserve_months[d]
                dep = min(avail, max(0.0, target - res))
                res += dep
                avail -= dep
                deposit += dep
            elif op == OP_PRINCIPAL:
                total = 0.0
                for ix in range(dp.step_target_ptr[s], dp.step_target_ptr[s + 1]):
                    k = dp.step_target[ix]
                    if final or not dp.tranche_scheduled[k]:
                        due = st[BAL, k]
                    else:
                        due = max(0.0, st[BAL, k] - dp.tranche_target[k, t])
                    st[DUE, k] = due
                    total += due
                sequential = dp.step_mode[s] == MODE_SEQUENTIAL
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
                    if paid >= st[BAL, k]:
                        st[BAL, k] = 0.0
                    else:
                        st[BAL, k] -= paid
                    st[PV, k] += paid * disc
                    st[WALN, k] += paid * (t / 12.0)
                    st[PRIN, k] += paid
                    prin_paid += paid
                    if dp.tranche_scheduled[k] and paid < due and st[FIRST, k] == 0.0:
                        st[FIRST, k] = t
                    if record:
                        tledger[k, t, TL_PRINCIPAL] += paid
            elif op == OP_RESIDUAL:
                residual += avail
                avail = 0.0
        # Cash no step claimed goes to the residual holder: the waterfall ends with an implicit residual.
        residual += avail
        used += draws
        if record:
            ledger[t, L_RESERVE_INTEREST] = res_int
            ledger[t, L_RESERVE_DRAW] = draws
            ledger[t, L_RESERVE_RELEASE] = release
            ledger[t, L_FEES] = fees_paid
            ledger[t, L_INTEREST] = int_paid
            ledger[t, L_PRINCIPAL] = prin_paid
            ledger[t, L_RESERVE_DEPOSIT] = deposit
            ledger[t, L_RESIDUAL] = residual
            ledger[t, L_RESERVE_BALANCE] = res
            for k in range(k0, k1):
                tledger[k, t, TL_BALANCE] = st[BAL, k]
    for k in range(k0, k1):
        orig = dp.tranche_balance[k]
        loss = st[BAL, k] / orig
        out.tranche_loss[out_p, k] = loss
        out.tranche_shortfall[out_p, k] = st[SHORT, k] / orig
        out.tranche_pv[out_p, k] = st[PV, k] / orig
        out.tranche_wal[out_p, k] = st[WALN, k] / st[PRIN, k] if st[PRIN, k] > 0.0 else np.nan
        if loss > 0.0:
            first = int(st[FIRST, k])
            out.tranche_first_loss[out_p, k] = first if first > 0 else LF
        else:
            out.tranche_first_loss[out_p, k] = 0
    return used

