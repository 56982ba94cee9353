"""GPU fleet and facility values, and their path-level indices (MODEL §3)."""

import math

from ._jit import jit
from .plan import CURVE_STRAIGHT


@jit
def gpu_depreciation(age, curve, life, half_life, salvage):
    """D(a): straight-line to ``salvage`` over ``life`` months, or exponential with ``half_life``."""
    if age < 0.0:
        age = 0.0
    if curve == CURVE_STRAIGHT:
        return max(salvage, 1.0 - (1.0 - salvage) * age / life)
    return salvage + (1.0 - salvage) * math.pow(2.0, -age / half_life)


@jit
def facility_depreciation(t, life):
    """max(0, 1 − t / L_s)."""
    return max(0.0, 1.0 - t / life)


@jit
def value_indices(X, release_counts, col, gpu_index, shell_index, rent_index):
    """Path-level multipliers: ``gpu_index[t] = O_t·exp(β_g X_t − β_g²/2)``, ``shell_index[t] =
    exp(β_s X_t − β_s²/2)`` and the market-rent index ``rent_index[t] = m_t = O_t·exp(β_r X_t − β_r²/2)``.

    Parameters
    ----------
    X : f8[T+1]
    release_counts : i4[T+1] (Poisson releases) or i4[0]
    col : CollateralPlan
    gpu_index, shell_index : f8[T+1] (out)
    rent_index : f8[T+1] (out), or f8[0] to skip it
    """
    keep = 1.0 - col.kappa
    bg = col.beta_gpu
    bs = col.beta_shell
    br = col.beta_rent
    o = 1.0
    for t in range(X.shape[0]):
        if col.poisson_releases:
            if t > 0:
                for _ in range(release_counts[t]):
                    o *= keep
        else:
            o = col.scheduled_obsolescence[t]
        gpu_index[t] = o * math.exp(bg * X[t] - 0.5 * bg * bg)
        shell_index[t] = math.exp(bs * X[t] - 0.5 * bs * bs)
        # Only option leases read m_t; an exp per month is a visible share of a small path.
        if rent_index.shape[0] > 0:
            rent_index[t] = o * math.exp(br * X[t] - 0.5 * br * br)


@jit
def collateral_value(gpu, shell, a0, m, col, gpu_index, shell_index):
    """Market value V + S in month ``m`` (≤ T) of a GPU fleet of cost ``gpu`` in service from ``a0``
    and a facility share of value ``shell``.

    Scalars, not the pool plan, on purpose: every call that passes a plan tuple makes numba emit
    reference counting for each of its arrays, which multiplies compile time.
    """
    v = gpu * gpu_depreciation(m - a0, col.curve, col.gpu_life, col.gpu_half_life, col.gpu_salvage) * gpu_index[m]
    return v + shell * facility_depreciation(m, col.shell_life) * shell_index[m]


@jit
def gpu_depreciation_many(ages, curve, life, half_life, salvage, out):
    """Vector form of :func:`gpu_depreciation`, used when the plan is compiled."""
    for j in range(ages.shape[0]):
        out[j] = gpu_depreciation(ages[j], curve, life, half_life, salvage)
