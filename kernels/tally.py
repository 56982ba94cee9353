"""Per-chunk tallies for engine/analytics/stats.py in one pass each, releasing the GIL so that every kernel
thread tallies its own slice. Each returns exactly what the numpy formulation in engine/analytics/stats.py
gives (integers, so no order of summation can change a bit)."""

import math

import numpy as np

from ._jit import jit

_SPLIT = 31
_LOW = (1 << _SPLIT) - 1
_FIX = 2.0**40


@jit
def _split(y):
    """y rounded once to a multiple of 2^-40, as the 31-bit halves of its integer part and of its
    fraction in units of 2^-40 (whole-hi, whole-lo, frac-hi, frac-lo): exact to sum in int64."""
    whole = math.floor(y)
    w = np.int64(whole)
    f = np.int64(np.rint((y - whole) * _FIX))
    return w >> _SPLIT, w & _LOW, f >> _SPLIT, f & _LOW


@jit
def fixed_sums(v):
    """Column tallies of f8[n, m] for exact fixed-point moments: per column the count of finite
    values and, for the values (row 0) and their squares (row 1), the high and low 31-bit halves
    of the sums of their integer parts and of their fractions in units of 2^-40, as i8[2, 4, m]
    (whole-hi, whole-lo, frac-hi, frac-lo); non-finite values count as 0. Returns (count, sums, max |x|)."""
    n, m = v.shape
    count = np.zeros(m, dtype=np.int64)
    sums = np.zeros((2, 4, m), dtype=np.int64)
    top = 0.0
    for i in range(n):
        for j in range(m):
            x = v[i, j]
            if not math.isfinite(x):
                continue
            count[j] += 1
            for r in range(2):
                y = x if r == 0 else x * x
                a = abs(y)
                if a > top:
                    top = a
                if a >= 2.0**62:
                    continue  # the caller raises
                a0, a1, a2, a3 = _split(y)
                sums[r, 0, j] += a0
                sums[r, 1, j] += a1
                sums[r, 2, j] += a2
                sums[r, 3, j] += a3
    return count, sums, top


@jit
def month_bin_counts(bins, n_bins):
    """Counts per (month, bin) of i2[n, T+1] bin indices -> i8[T+1, n_bins]."""
    out = np.zeros((bins.shape[1], n_bins), dtype=np.int64)
    for i in range(bins.shape[0]):
        for t in range(bins.shape[1]):
            out[t, bins[i, t]] += 1
    return out


@jit
def loss_bin_counts(v, n_bins, width):
    """Counts per loss bin of each column of f8[n, m] -> i8[m, n_bins]: bin 0 for a loss ≤ 0, the last
    for a loss ≥ 1, else ⌈x / width⌉ clipped to 1..n_bins−2; NaN and ±∞ skipped."""
    out = np.zeros((v.shape[1], n_bins), dtype=np.int64)
    for i in range(v.shape[0]):
        for j in range(v.shape[1]):
            x = v[i, j]
            if not math.isfinite(x):
                continue
            if x <= 0.0:
                b = 0
            elif x >= 1.0:
                b = n_bins - 1
            else:
                b = int(min(max(math.ceil(x / width), 1.0), float(n_bins - 2)))
            out[j, b] += 1
    return out


@jit
def stratum_sums(y, stratum, n_strata):
    """Per stratum and column of f8[n, m] (all finite, |y| < 2^31), the paths and the fixed-point
    sums of y and y² as i8[2, K, m, 4] (whole-hi, whole-lo, frac-hi, frac-lo, not carried), with
    the rounding of ``fixed_sums``: engine/analytics/stats.py StratumSums."""
    n, m = y.shape
    count = np.zeros(n_strata, dtype=np.int64)
    out = np.zeros((2, n_strata, m, 4), dtype=np.int64)
    for i in range(n):
        h = stratum[i]
        count[h] += 1
        for j in range(m):
            x = y[i, j]
            for r in range(2):
                v = x if r == 0 else x * x
                a0, a1, a2, a3 = _split(v)
                out[r, h, j, 0] += a0
                out[r, h, j, 1] += a1
                out[r, h, j, 2] += a2
                out[r, h, j, 3] += a3
    return count, out


@jit
def weighted_fixed_sums(v, w):
    """The weighted counterpart of ``fixed_sums`` for f8[n, m] values and f8[n] weights: per
    column the count of finite values and the split fixed-point sums, as i8[4, 4, m], of w·x,
    w·x², (w·x)² and w over the finite values (non-finite values count as 0). Returns (count, sums, max |term|).

    The accumulation repeats ``fixed_sums``' lines on purpose: a shared helper taking the sums array
    (inlined or not) made both loops about 3× slower, measured."""
    n, m = v.shape
    count = np.zeros(m, dtype=np.int64)
    sums = np.zeros((4, 4, m), dtype=np.int64)
    top = 0.0
    for i in range(n):
        wi = w[i]
        for j in range(m):
            x = v[i, j]
            if not math.isfinite(x):
                continue
            count[j] += 1
            wx = wi * x
            for r in range(4):
                if r == 0:
                    y = wx
                elif r == 1:
                    y = wx * x
                elif r == 2:
                    y = wx * wx
                else:
                    y = wi
                a = abs(y)
                if a > top:
                    top = a
                if a >= 2.0**62:
                    continue  # the caller raises
                a0, a1, a2, a3 = _split(y)
                sums[r, 0, j] += a0
                sums[r, 1, j] += a1
                sums[r, 2, j] += a2
                sums[r, 3, j] += a3
    return count, sums, top


@jit
def weighted_bin_sums(idx, size, limbs):
    """Σ of the weights' fixed-point limbs (i8[n, 3]) per (column, value) of i8/i4 idx[n, m] with
    values in 0..size-1 (others skipped) -> i8[m, size, 3], not carried: engine/analytics/stats.py Mass."""
    n, m = idx.shape
    out = np.zeros((m, size, 3), dtype=np.int64)
    for i in range(n):
        for j in range(m):
            b = idx[i, j]
            if b < 0 or b >= size:
                continue
            for k in range(3):
                out[j, b, k] += limbs[i, k]
    return out
