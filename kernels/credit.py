"""Tenant default times from cumulative hazards of hazard classes (MODEL §2)."""

import math

from ._jit import jit

_INV_SQRT2 = 1.0 / math.sqrt(2.0)


@jit
def norm_cdf(x):
    """Standard normal CDF, accurate in both tails (erfc, not 1 − erf)."""
    return 0.5 * math.erfc(-x * _INV_SQRT2)


@jit
def class_cumulative_hazard(X, c, sqrt_rho, inv_sqrt_1mrho, winv, out):
    """Cumulative hazard of every class: ``out[k, t] = Σ_{u ≤ t} −ln(1 − q_k(u))``.

    q_k(t) = Φ((c_k·winv − sqrt(ρ_k)·X_t) / sqrt(1 − ρ_k)); ``winv`` = 1/sqrt(W) of the t-copula.

    Parameters
    ----------
    X : f8[T+1]
    c, sqrt_rho, inv_sqrt_1mrho : f8[K]
    winv : float
    out : f8[K, T+1]; out[:, 0] = 0.
    """
    for k in range(out.shape[0]):
        acc = 0.0
        out[k, 0] = 0.0
        ck = c[k] * winv
        for t in range(1, out.shape[1]):
            q = norm_cdf((ck - sqrt_rho[k] * X[t]) * inv_sqrt_1mrho[k])
            if q >= 1.0:
                acc = math.inf
            else:
                acc -= math.log1p(-q)
            out[k, t] = acc


@jit
def default_month(H, e):
    """First month t in 1..T with ``H[t] ≥ e`` (H non-decreasing), or T+1 if none."""
    T = H.shape[0] - 1
    if H[T] < e:
        return T + 1
    lo, hi = 1, T
    while lo < hi:
        mid = (lo + hi) // 2
        if H[mid] >= e:
            hi = mid
        else:
            lo = mid + 1
    return lo
