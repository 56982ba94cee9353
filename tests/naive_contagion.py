"""A slow, plain-Python oracle of the fire-sale fixed point (kernels/contagion.py).

Written from the rules as docs/model.md §6 states them, not from the kernel's closed forms: every
rule finds the smallest sale that satisfies its constraint by bisection on the constraint itself
(a margin call met, redemptions paid, leverage back at target, the RBC ratio restored), so a wrong
closed form in the kernel shows up as a disagreement.
"""

from __future__ import annotations

import math

_BISECT = 200
_SLACK = 1e-12


def _smallest(ok, hi):
    """Smallest x in [0, hi] with ok(x), for ok monotone in x (False → True)."""
    lo = 0.0
    for _ in range(_BISECT):
        mid = 0.5 * (lo + hi)
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


def _rule(prob, h, p):
    """(units to have sold per asset, failed) for holder h at marks p."""
    q = [float(x) for x in prob.holdings[h]]
    n = len(q)
    kind = int(prob.kind[h])
    c, d, o = float(prob.cash[h]), float(prob.debt[h]), float(prob.other[h])
    V = sum(q[a] * p[a] for a in range(n))
    E = c + o + V - d
    scale = c + o + V + d
    none, everything = [0.0] * n, list(q)
    if kind == 2:  # pension
        return none, False
    if kind == 0:  # hedge fund
        if E <= 0.0 and d > 0.0:
            return everything, True
        collateral = sum((1.0 - prob.haircut[a]) * q[a] * p[a] for a in range(n))
        cash_used = min(c, max(0.0, d - collateral))

        def met(phi):
            debt_left = d - cash_used - phi * V
            return debt_left <= (1.0 - phi) * collateral + _SLACK * scale

        if met(0.0):
            return none, False
        if not met(1.0):
            return everything, True
        phi = _smallest(met, 1.0)
        return [phi * x for x in q], False
    if kind == 3:  # asset manager
        nav0 = c + o - d + sum(q[a] * prob.marks[a] for a in range(n))
        R = prob.redemption_elasticity[h] * max(0.0, nav0 - E)

        def paid(phi):
            return c + phi * V >= R - _SLACK * scale

        if paid(0.0):
            return none, False
        if not paid(1.0):
            return everything, True
        phi = _smallest(paid, 1.0)
        return [phi * x for x in q], False
    if kind == 4:  # bank
        if E <= 0.0:
            return everything, True
        A = c + o + V
        if A <= prob.max_leverage[h] * E * (1.0 + _SLACK):
            return none, False

        def delevered(gamma):
            # Selling Γ·V at marks repays as much debt: assets fall by Γ·V, equity is unchanged.
            return (A - gamma * V) <= prob.target_leverage[h] * E * (1.0 + _SLACK)

        if not delevered(1.0):
            return everything, False
        gamma = _smallest(delevered, 1.0)
        return [gamma * x for x in q], False
    # insurer
    r = prob.min_rbc_ratio[h]
    x = [0.0] * n

    def ratio_ok(sold):
        rbc = sum(prob.rbc_factor[a] * (q[a] - sold[a]) * p[a] for a in range(n))
        return E > 0.0 and E >= r * rbc - _SLACK * scale

    if ratio_ok(x):
        return x, False
    for a in sorted(range(n), key=lambda a: (-prob.rbc_factor[a], a)):
        if prob.rbc_factor[a] <= 0.0 or q[a] <= 0.0:
            continue
        x[a] = q[a]
        if ratio_ok(x):
            def ok(u, a=a):
                y = list(x)
                y[a] = u
                return ratio_ok(y)

            x[a] = _smallest(ok, q[a])
            return x, False
    return x, True


def naive_fire_sale(prob, theta, tol, max_rounds=100_000):
    """The fixed point by the literal iteration: all holders from last round's prices, sales never
    reversed, failures final. Returns a dict of prices, sales, losses, failed, rounds."""
    H, A = prob.holdings.shape
    f = [float(x) for x in prob.fundamental]
    S = [[0.0] * A for _ in range(H)]
    p = list(f)
    failed = [False] * H
    rounds = 0
    while rounds < max_rounds:
        targets = [_rule(prob, h, p) for h in range(H)]
        moved = 0.0
        for h in range(H):
            row, flag = targets[h]
            failed[h] = failed[h] or flag
            for a in range(A):
                new = max(S[h][a], min(row[a], float(prob.holdings[h, a])))
                moved = max(moved, (new - S[h][a]) / prob.depth[a])
                S[h][a] = new
        if moved <= tol:
            break
        rounds += 1
        p = [f[a] * math.exp(-prob.beta[a] * sum(S[h][a] for h in range(H)) / prob.depth[a]) for a in range(A)]
    for h in range(H):
        failed[h] = failed[h] or _rule(prob, h, p)[1]
    x = [f[a] + theta * (p[a] - f[a]) for a in range(A)]
    direct = [sum(prob.holdings[h, a] * (prob.marks[a] - f[a]) for a in range(A)) for h in range(H)]
    fire = [sum((prob.holdings[h, a] - S[h][a]) * (f[a] - p[a]) + S[h][a] * (f[a] - x[a]) for a in range(A))
            for h in range(H)]
    return dict(prices=p, sales=S, direct_loss=direct, fire_sale_loss=fire, failed=failed, rounds=rounds)


def naive_glt_aggregate_vulnerability(a, E, M, ell, F1) -> float:
    """Greenwood, Landier and Thesmar (2015), "Vulnerable banks", Section 2, by explicit loops over
    banks n and assets k: bank returns R1_n = Σ_k M_nk F1_k; sales of asset k
    φ_k = Σ_n M_nk a_n b_n R1_n with leverage b_n = (a_n − E_n)/E_n; price impact F2_k = ell_k φ_k;
    bank returns R2_n = Σ_k M_nk F2_k; AV = Σ_n a_n R2_n / Σ_n E_n."""
    N, K = len(a), len(ell)
    b = [(float(a[n]) - float(E[n])) / float(E[n]) for n in range(N)]
    R1 = [sum(float(M[n][k]) * float(F1[k]) for k in range(K)) for n in range(N)]
    phi = [sum(float(M[n][k]) * float(a[n]) * b[n] * R1[n] for n in range(N)) for k in range(K)]
    F2 = [float(ell[k]) * phi[k] for k in range(K)]
    R2 = [sum(float(M[n][k]) * F2[k] for k in range(K)) for n in range(N)]
    return sum(float(a[n]) * R2[n] for n in range(N)) / sum(float(E[n]) for n in range(N))
