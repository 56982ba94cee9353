"""Clearing of a network of mutual obligations (MODEL §7).

Eisenberg–Noe (2001) clearing with the default costs of Rogers–Veraart (2013) and senior external
debt. ``L[i, j]`` is what firm i owes firm j, p̄_i = Σ_j L[i, j], Π[i, j] = L[i, j]/p̄_i (a zero row
when p̄_i = 0), and with payments p firm i holds ``A_i(p) = e_i + Σ_j Π[j, i]·p_j``. Firm i is solvent
when ``A_i(p) ≥ d_i + p̄_i`` and pays p̄_i; otherwise its assets are cut to ``α·e_i + β·Σ_j Π[j, i]·p_j``,
its external creditors take d_i of that first, and the other firms share
``p_i = max(0, α·e_i + β·Σ_j Π[j, i]·p_j − d_i)``. The clearing vector is the greatest fixed point of
this map; it lies in [0, p̄]. A firm short by less than ``SOLVENCY_RTOL`` of ``d_i + p̄_i`` counts as
solvent, so that a firm exactly at the boundary stays solvent whatever the rounding.

``clear_network`` finds it with the fictitious-default algorithm (Rogers–Veraart 2013, Definition
3.6): the default set only grows, and each round solves for the payments of the current defaulters
with everyone else paying in full. The floor at 0 makes that round a small linear complementarity
problem; it is solved by growing the set of defaulters that pay something, starting from none
(Chandrasekaran 1970), not by starting from all of them and dropping negative solutions: with β = 1,
a closed group of defaulters (firms owing only each other) that all owe senior debt gives a singular
system when every one of them is assumed to pay, while the set grown from below never contains such a
group unless its payments are exactly undetermined. Then (and only then) the round falls back to
iterating the map from the previous round's payments, which converges down to the greatest solution.
"""

from typing import NamedTuple

import numpy as np

from ._jit import jit

# Solvency is ``A_i ≥ (d_i + p̄_i)·(1 − SOLVENCY_RTOL)``. A firm exactly at the boundary is solvent by the
# convention, but rounding in Πᵀp can put it a hair below, and with α < 1 that hair triggers a
# default that may wipe out a whole group. 1e-12 is far above the rounding of these sums and far
# below any economic quantity.
SOLVENCY_RTOL = 1e-12
# A pivot below this marks a singular round: I − βΠᵀ restricted to paying defaulters has pivots of
# order 1 down to the share of their obligations that leaves the group, so 1e-12 means "closed".
_SINGULAR = 1e-12
# The fallback iteration stops when a sweep moves no payment by more than this fraction of the
# largest one, or after this many sweeps (reached only by groups whose leak is near _SINGULAR).
_FALLBACK_RTOL = 1e-15
_FALLBACK_SWEEPS = 100_000


class ClearingScratch(NamedTuple):
    """Work arrays of ``clear_network_in`` for networks of up to n firms, so that a caller clearing
    once a year on every path allocates them once (per thread) instead of every round.

    pbar : f8[n]; Pi : f8[n, n]        p̄ and Π of the network being cleared
    idx, cols : i8[n]; b, x, rhs : f8[n]; paying : b1[n]; A : f8[n, n]   one fictitious round
    """

    pbar: np.ndarray
    Pi: np.ndarray
    idx: np.ndarray
    cols: np.ndarray
    b: np.ndarray
    x: np.ndarray
    rhs: np.ndarray
    paying: np.ndarray
    A: np.ndarray


@jit
def clearing_scratch(n):
    return ClearingScratch(np.empty(n), np.empty((n, n)), np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64),
                           np.empty(n), np.empty(n), np.empty(n), np.empty(n, dtype=np.bool_), np.empty((n, n)))


@jit
def _relative_liabilities(L, pbar, Pi):
    """Fill p̄ (f8[n]) and Π (f8[n, n]) from L; Π has a zero row where p̄ = 0."""
    n = L.shape[0]
    for i in range(n):
        s = 0.0
        for j in range(n):
            s += L[i, j]
        pbar[i] = s
        for j in range(n):
            Pi[i, j] = L[i, j] / s if s > 0.0 else 0.0


@jit
def _inflow(Pi, p, i):
    """What firm i receives from the others: Σ_j Π[j, i]·p_j, always summed in the order j = 0..n−1,
    so the solvency test gives the same answer wherever it is evaluated."""
    s = 0.0
    for j in range(p.shape[0]):
        s += Pi[j, i] * p[j]
    return s


@jit
def _short(e_i, inflow, d_i, pbar_i):
    """True if a firm with external assets ``e_i`` and inflow ``inflow`` defaults."""
    need = d_i + pbar_i
    return e_i + inflow < need - SOLVENCY_RTOL * need


@jit
def _gauss_solve(A, b, k):
    """Solve ``A[:k, :k]·x = b[:k]`` in place (x overwrites b[:k]) by Gaussian elimination with
    partial pivoting. Returns False, leaving A and b spoiled, if a pivot is below ``_SINGULAR``.

    Parameters
    ----------
    A : f8[m, m] with m ≥ k (scratch; destroyed)
    b : f8[m] (right-hand side in, solution out)
    k : int
    """
    for c in range(k):
        piv = c
        big = abs(A[c, c])
        for r in range(c + 1, k):
            if abs(A[r, c]) > big:
                big = abs(A[r, c])
                piv = r
        if big < _SINGULAR:
            return False
        if piv != c:
            for cc in range(c, k):
                t = A[c, cc]
                A[c, cc] = A[piv, cc]
                A[piv, cc] = t
            t = b[c]
            b[c] = b[piv]
            b[piv] = t
        inv = 1.0 / A[c, c]
        for r in range(c + 1, k):
            f = A[r, c] * inv
            if f != 0.0:
                for cc in range(c + 1, k):
                    A[r, cc] -= f * A[c, cc]
                b[r] -= f * b[c]
    for c in range(k - 1, -1, -1):
        s = b[c]
        for cc in range(c + 1, k):
            s -= A[c, cc] * b[cc]
        b[c] = s / A[c, c]
    return True


@jit
def _pay_defaulters(ws, e, d, alpha, beta, defaulted, p):
    """Payments of the defaulters given that every other firm pays in full (one fictitious round).

    Solves ``x_i = max(0, b_i + β·Σ_{j∈D} Π[j, i]·x_j)`` for i in D, with
    ``b_i = α·e_i − d_i + β·Σ_{j∉D} Π[j, i]·p̄_j``. Paying set J grows from ∅: add every defaulter
    whose value at the current x is ≥ 0, solve the linear system on J with the rest at 0, repeat until
    no one is added. Each solution is ≥ the previous one (the previous x is a subsolution and
    (I − βΠ_JJᵀ)⁻¹ ≥ 0), so J never loses a member: at most |D| solves.

    Parameters
    ----------
    ws : ClearingScratch with p̄ and Π filled; e, d : f8[n]; alpha, beta : float
    defaulted : i1[n] (D)
    p : f8[n]; in: p̄ off D and an upper bound of the answer on D (last round's payments);
        out: the payments of D.
    """
    Pi, pbar, idx, b, x, paying, cols, A, rhs = ws.Pi, ws.pbar, ws.idx, ws.b, ws.x, ws.paying, ws.cols, ws.A, ws.rhs
    n = defaulted.shape[0]
    m = 0
    for i in range(n):
        if defaulted[i]:
            idx[m] = i
            m += 1
    for a in range(m):
        i = idx[a]
        s = 0.0
        for j in range(n):
            if not defaulted[j]:
                s += Pi[j, i] * pbar[j]
        b[a] = alpha * e[i] - d[i] + beta * s
        x[a] = 0.0
        paying[a] = False
    while True:
        added = False
        for a in range(m):
            if paying[a]:
                continue
            v = 0.0
            for c in range(m):
                v += Pi[idx[c], idx[a]] * x[c]
            # ≥, not >: a defaulter exactly at zero joins J, so a group whose payments are
            # undetermined shows up as a singular system below instead of being left at its least
            # solution.
            if b[a] + beta * v >= 0.0:
                paying[a] = True
                added = True
        if not added:
            break
        k = 0
        for a in range(m):
            if paying[a]:
                cols[k] = a
                k += 1
        for r in range(k):
            ir = idx[cols[r]]
            rhs[r] = b[cols[r]]
            for c in range(k):
                A[r, c] = (1.0 if r == c else 0.0) - beta * Pi[idx[cols[c]], ir]
        if not _gauss_solve(A, rhs, k):
            _pay_defaulters_fallback(Pi, idx, m, b, beta, p)
            return
        for r in range(k):
            # Rounding can leave a member exactly at the floor a hair below it.
            x[cols[r]] = max(0.0, rhs[r])
    for a in range(m):
        p[idx[a]] = x[a]


@jit
def _pay_defaulters_fallback(Pi, idx, m, b, beta, p):
    """Greatest solution of the round below ``p`` by Gauss–Seidel sweeps of the map from ``p`` on D.

    Used only when the round is singular (β = 1 and a closed group of defaulters with undetermined
    payments). Starting above the answer, every sweep stays above it and moves down, so the limit is
    the greatest solution, whatever the sweep order.
    """
    scale = 0.0
    for a in range(m):
        scale = max(scale, abs(p[idx[a]]))
    tol = _FALLBACK_RTOL * max(scale, 1.0)
    for _ in range(_FALLBACK_SWEEPS):
        moved = 0.0
        for a in range(m):
            i = idx[a]
            v = 0.0
            for c in range(m):
                v += Pi[idx[c], i] * p[idx[c]]
            new = max(0.0, b[a] + beta * v)
            moved = max(moved, abs(new - p[i]))
            p[i] = new
        if moved <= tol:
            return


@jit
def clear_network(L, e, d, alpha, beta, p, defaulted):
    """Greatest clearing vector by the fictitious-default algorithm (Rogers–Veraart 2013).

    Round 0 assumes everyone pays in full. Each round marks the firms with
    ``e_i + Σ_j Π[j, i]·p_j < d_i + p̄_i`` at the current payments as defaulted (a defaulted firm
    stays so; up to ``SOLVENCY_RTOL``), then re-solves the defaulters' payments with every other firm
    paying p̄; it stops when a round marks no new firm. The payments fall monotonically to the
    greatest fixed point. Deterministic, allocates only O(n²) scratch (``clear_network_in`` none),
    callable per path from a worker thread.

    Parameters
    ----------
    L : f8[n, n]; L[i, j] ≥ 0 is what i owes j; zero diagonal.
    e : f8[n]; external assets, ≥ 0.
    d : f8[n]; senior external debt due, ≥ 0.
    alpha, beta : float in [0, 1]; the share of external and of inter-firm assets a defaulter realises.
    p : f8[n] (out); clearing payments to other firms, 0 ≤ p ≤ p̄.
    defaulted : i1[n] (out); 1 for a defaulter.

    Returns
    -------
    int
        The number of rounds that found new defaulters (waves of the cascade): 0 if nobody
        defaults, at most n.
    """
    return clear_network_in(clearing_scratch(L.shape[0]), L, e, d, alpha, beta, p, defaulted)


@jit
def clear_network_in(ws, L, e, d, alpha, beta, p, defaulted):
    """``clear_network`` in the caller's ClearingScratch of n = L.shape[0] firms."""
    n = L.shape[0]
    pbar, Pi = ws.pbar, ws.Pi
    _relative_liabilities(L, pbar, Pi)
    for i in range(n):
        p[i] = pbar[i]
        defaulted[i] = 0
    rounds = 0
    while True:
        grew = False
        for i in range(n):
            if defaulted[i] == 0 and _short(e[i], _inflow(Pi, p, i), d[i], pbar[i]):
                defaulted[i] = 1
                grew = True
        if not grew:
            return rounds
        rounds += 1
        _pay_defaulters(ws, e, d, alpha, beta, defaulted, p)


@jit
def picard_clearing(L, e, d, alpha, beta, p, defaulted, tol, max_iter):
    """Reference solver: iterate the clearing map from p = p̄ until no payment moves by more than
    ``tol``. The iterates fall monotonically to the greatest fixed point, linearly and, near closed
    groups of defaulters, slowly; ``clear_network`` is exact in at most n rounds.

    Parameters
    ----------
    L, e, d, alpha, beta : as for ``clear_network``
    p : f8[n] (out); defaulted : i1[n] (out; solvency test at the final p)
    tol : float; max_iter : int

    Returns
    -------
    int
        Iterations done; ``max_iter`` if not converged.
    """
    n = L.shape[0]
    pbar = np.empty(n)
    Pi = np.empty((n, n))
    _relative_liabilities(L, pbar, Pi)
    q = np.empty(n)
    for i in range(n):
        p[i] = pbar[i]
    it = 0
    while it < max_iter:
        it += 1
        moved = 0.0
        for i in range(n):
            inflow = _inflow(Pi, p, i)
            if _short(e[i], inflow, d[i], pbar[i]):
                q[i] = max(0.0, alpha * e[i] + beta * inflow - d[i])
            else:
                q[i] = pbar[i]
            moved = max(moved, abs(q[i] - p[i]))
        for i in range(n):
            p[i] = q[i]
        if moved <= tol:
            break
    for i in range(n):
        defaulted[i] = 1 if _short(e[i], _inflow(Pi, p, i), d[i], pbar[i]) else 0
    return it
