"""The counter-based generator every path draws from (ARCHITECTURE: Randomness).

Philox4x32-10 (Salmon, Moraes, Dror & Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC 2011)
maps a 128-bit counter and a 64-bit key to 128 random bits. The key is the run's seed; the counter
is (j, stream, path low word, path high word), so the j-th block of a stream of a path is a pure
function of (seed, path, stream, j): any thread can draw any path, in any order, and no draw array
is ever materialised. Each block gives two uniforms with 52 random bits each.
"""

import math

import numpy as np

from ._jit import jit

_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_MASK = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_S6 = np.uint64(6)


@jit
def philox4x32(c0, c1, c2, c3, k0, k1):
    """The 10-round Philox4x32 block of counter (c0, c1, c2, c3) under key (k0, k1): four words < 2^32.

    Every argument is a uint64 below 2^32, so each 32×32-bit product fits in one 64-bit word.
    """
    for _ in range(10):
        p0 = _M0 * c0
        p1 = _M1 * c2
        c0, c1, c2, c3 = (p1 >> _S32) ^ c1 ^ k0, p1 & _MASK, (p0 >> _S32) ^ c3 ^ k1, p0 & _MASK
        k0 = (k0 + _W0) & _MASK
        k1 = (k1 + _W1) & _MASK
    return c0, c1, c2, c3


@jit
def to_unit(a, b):
    """U(0, 1) from two 32-bit words: (k + ½)·2^-52 with k the top 26 bits of each, never 0 or 1.

    52 bits, not 53: k + ½ then needs at most 53 significant bits, so the sum is exact and the
    largest value is 1 − 2^-53 (with 53 bits the top k + ½ would round up to exactly 1)."""
    return (float(a >> _S6) * 67108864.0 + float(b >> _S6) + 0.5) * (1.0 / 4503599627370496.0)


@jit
def uniform_pair(k0, k1, stream, path, j):
    """The two uniforms of block j of ``stream`` on ``path`` (k0, k1: the key words, uint64)."""
    p = np.uint64(path)
    a, b, c, d = philox4x32(np.uint64(j), np.uint64(stream), p & _MASK, p >> _S32, k0, k1)
    return to_unit(a, b), to_unit(c, d)


@jit
def uniform_at(k0, k1, stream, path, i):
    """Uniform number i of ``stream`` on ``path`` (the (i mod 2)-th of block i // 2)."""
    u0, u1 = uniform_pair(k0, k1, stream, path, i >> 1)
    return u0 if i & 1 == 0 else u1


@jit
def word64(k0, k1, stream, path):
    """One uniform 64-bit word of ``stream`` on ``path`` (block 0, words 0 and 1)."""
    p = np.uint64(path)
    a, b, _, _ = philox4x32(np.uint64(0), np.uint64(stream), p & _MASK, p >> _S32, k0, k1)
    return (a << _S32) | b


@jit
def norm_ppf(u):
    """Φ⁻¹(u) for 0 < u < 1: Wichura's AS241 (PPND16), relative error about 1e-16.

    The inverse CDF (not Box–Muller) keeps each normal a monotone function of one uniform, so
    normals drawn in any order are the same numbers and a stratified or shifted uniform maps
    to a stratified or shifted normal.
    """
    q = u - 0.5
    if abs(q) <= 0.425:
        r = 0.180625 - q * q
        return q * (((((((r * 2509.0809287301226727 + 33430.575583588128105) * r + 67265.770927008700853) * r
                        + 45921.953931549871457) * r + 13731.693765509461125) * r + 1971.5909503065514427) * r
                      + 133.14166789178437745) * r + 3.387132872796366608) / \
            (((((((r * 5226.495278852545925 + 28729.085735721942674) * r + 39307.89580009271061) * r
                 + 21213.794301586595867) * r + 5394.1960214247511077) * r + 687.1870074920579083) * r
              + 42.313330701600911252) * r + 1.0)
    r = u if q < 0.0 else 1.0 - u
    r = math.sqrt(-math.log(r))
    if r <= 5.0:
        r -= 1.6
        x = (((((((r * 7.7454501427834140764e-4 + 0.0227238449892691845833) * r + 0.24178072517745061177) * r
                 + 1.27045825245236838258) * r + 3.64784832476320460504) * r + 5.7694972214606914055) * r
               + 4.6303378461565452959) * r + 1.42343711074968357734) / \
            (((((((r * 1.05075007164441684324e-9 + 5.475938084995344946e-4) * r + 0.0151986665636164571966) * r
                 + 0.14810397642748007459) * r + 0.68976733498510000455) * r + 1.6763848301838038494) * r
              + 2.05319162663775882187) * r + 1.0)
    else:
        r -= 5.0
        x = (((((((r * 2.01033439929228813265e-7 + 2.71155556874348757815e-5) * r + 0.0012426609473880784386) * r
                 + 0.026532189526576123093) * r + 0.29656057182850489123) * r + 1.7848265399172913358) * r
               + 5.4637849111641143699) * r + 6.6579046435011037772) / \
            (((((((r * 2.04426310338993978564e-15 + 1.4215117583164458887e-7) * r + 1.8463183175100546818e-5) * r
                 + 7.868691311456132591e-4) * r + 0.0148753612908506148525) * r + 0.13692988092273580531) * r
              + 0.59983220655588793769) * r + 1.0)
    return -x if q < 0.0 else x


@jit
def normals(k0, k1, stream, path, out, n):
    """``out[0..n-1]``: the first n standard normals of ``stream`` on ``path``."""
    for j in range((n + 1) >> 1):
        u0, u1 = uniform_pair(k0, k1, stream, path, j)
        out[2 * j] = norm_ppf(u0)
        if 2 * j + 1 < n:
            out[2 * j + 1] = norm_ppf(u1)


@jit
def gamma_variate(k0, k1, stream, path, shape):
    """Gamma(shape, 1) by Marsaglia & Tsang (2000), drawing blocks 0, 1, ... of ``stream`` as it needs
    them; shape < 1 by Gamma(shape + 1)·U^(1/shape), with U from the first block's second half."""
    boost = 1.0
    a = shape
    j = 0
    if shape < 1.0:
        _, u = uniform_pair(k0, k1, stream, path, j)
        j += 1
        boost = u ** (1.0 / shape)
        a = shape + 1.0
    d = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        u0, u1 = uniform_pair(k0, k1, stream, path, j)
        j += 1
        x = norm_ppf(u0)
        v = 1.0 + c * x
        if v <= 0.0:
            continue
        v = v * v * v
        if math.log(u1) < 0.5 * x * x + d - d * v + d * math.log(v):
            return d * v * boost


@jit
def poisson_variate(u, rate):
    """Poisson(rate) by inversion of the uniform u (sequential search: a few steps for rate ≪ 1)."""
    k = 0
    p = math.exp(-rate)
    cdf = p
    while u > cdf and p > 0.0:
        k += 1
        p *= rate / k
        cdf += p
    return k


@jit
def uniforms(k0, k1, stream, path, out, n):
    """``out[0..n-1]``: the first n uniforms of ``stream`` on ``path``."""
    for j in range((n + 1) >> 1):
        u0, u1 = uniform_pair(k0, k1, stream, path, j)
        out[2 * j] = u0
        if 2 * j + 1 < n:
            out[2 * j + 1] = u1
