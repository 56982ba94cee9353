"""A path's random inputs from the counter-based generator (kernels/philox.py), under the model's law
or the importance-sampling law of a DrawPlan (MODEL §1–2, §9).

Every kind of draw has its own stream, and draw i of a stream is block i // 2 of it, so adding a
tenant, a month or a feature leaves every other draw where it was (common random numbers across
scenarios), and a path is the same numbers whichever thread, chunk or backend draws it.
"""

import math

from ._jit import jit
from .credit import default_month
from .philox import gamma_variate, normals, poisson_variate, uniform_at, uniform_pair, word64

STREAM_FACTOR, STREAM_DEFAULT, STREAM_BURST, STREAM_TCOPULA, STREAM_RELEASES, STREAM_LEASE_KEY, STREAM_MIXTURE = range(7)

# A tenant's uniform below its class's survival probability to T, shrunk by this factor, is a
# survivor without computing its Exp(1) draw −ln U: the margin covers the rounding of exp and log.
SURVIVOR_MARGIN = 1.0 - 1e-12


@jit
def burst_month(u, h, fixed, T):
    """B from the uniform u: ``fixed`` when ≥ 0, else the geometric law of hazard h on {1, 2, ...},
    by inversion B = ⌈ln(1−U)/ln(1−h)⌉; T+1 stands for no burst within the horizon."""
    never = T + 1
    if fixed >= 0:
        return min(fixed, never)
    if h <= 0.0:
        return never
    if h >= 1.0:
        return 1
    m = math.ceil(math.log1p(-u) / math.log1p(-h))
    return int(min(max(m, 1.0), float(never)))


@jit
def path_draws(gp, path, eps, counts):
    """Draw path ``path``'s factor normals into ``eps`` (f8[T+1]) and, in Poisson mode, its chip
    releases into ``counts`` (i4[T+1]). Returns (B, 1/sqrt(W), the lease-option key, dP/dQ).

    Under importance sampling a path is drawn from the tilted component unless its mixture uniform
    falls below α; the tilted component shifts the normals by m·d and draws B with the tilted
    hazard. The weight is evaluated at the drawn point for every path (the defensive mixture)."""
    T = gp.months
    normals(gp.key0, gp.key1, STREAM_FACTOR, path, eps, gp.n_normals)
    for t in range(gp.n_normals, T + 1):
        eps[t] = 0.0
    u_burst = uniform_at(gp.key0, gp.key1, STREAM_BURST, path, 0)
    log_ratio = 0.0  # log dQ_tilt/dP at the drawn point
    tilted = gp.weighted
    if gp.weighted and gp.plain_share > 0.0:
        tilted = uniform_at(gp.key0, gp.key1, STREAM_MIXTURE, path, 0) >= gp.plain_share
    if gp.weighted and gp.shift != 0.0:
        m = gp.shift if tilted else 0.0
        proj = 0.0
        dd = 0.0
        for t in range(T + 1):
            d = gp.direction[t]
            if d != 0.0:
                eps[t] += m * d
                proj += eps[t] * d
                dd += d * d
        log_ratio += gp.shift * proj - 0.5 * gp.shift * gp.shift * dd
    h = gp.burst_hazard
    if gp.weighted and gp.tilted_hazard >= 0.0:
        hq = gp.tilted_hazard
        b = burst_month(u_burst, hq if tilted else h, -1, T)
        fails = min(b, T + 1) - 1  # months without a burst before it (B = T+1: none by T)
        log_ratio += fails * (math.log1p(-hq) - math.log1p(-h))
        if b <= T:
            log_ratio += math.log(hq) - math.log(h)
    else:
        b = burst_month(u_burst, h, gp.burst_month, T)
    weight = 1.0
    if gp.weighted:
        a = gp.plain_share
        if a > 0.0:
            # 1 / (α + (1 − α)·e^ℓ), as −logaddexp(ln α, ln(1 − α) + ℓ)
            x, y = math.log(a), math.log1p(-a) + log_ratio
            hi = max(x, y)
            weight = math.exp(-(hi + math.log1p(math.exp(-abs(x - y)))))
        else:
            weight = math.exp(-log_ratio)
    winv = 1.0
    if gp.nu > 0.0:
        chi2 = 2.0 * gamma_variate(gp.key0, gp.key1, STREAM_TCOPULA, path, 0.5 * gp.nu)
        winv = math.sqrt(chi2 / gp.nu)
    if gp.poisson_rate > 0.0:
        for t in range(T + 1):
            counts[t] = poisson_variate(uniform_at(gp.key0, gp.key1, STREAM_RELEASES, path, t), gp.poisson_rate)
    key = word64(gp.key0, gp.key1, STREAM_LEASE_KEY, path)
    return b, winv, key, weight


@jit
def tenant_defaults(gp, path, H, tenant_class, tenant_forced, surv, tau):
    """Every tenant's default month on path ``path``: the first month its class's cumulative hazard
    reaches its Exp(1) draw −ln U (MODEL §2), or its forced month if earlier. ``surv[k]`` is class
    k's survival probability to T times SURVIVOR_MARGIN: a uniform below it needs no logarithm."""
    N = tau.shape[0]
    T = H.shape[1] - 1
    for j in range((N + 1) >> 1):
        u0, u1 = uniform_pair(gp.key0, gp.key1, STREAM_DEFAULT, path, j)
        for i in range(2 * j, min(2 * j + 2, N)):
            u = u0 if i == 2 * j else u1
            c = tenant_class[i]
            m = T + 1
            if u >= surv[c]:
                m = default_month(H[c], -math.log(u))
            forced = tenant_forced[i]
            tau[i] = forced if forced < m else m


@jit
def draw_paths(gp, start, eps, expo, burst, winv, counts, key, weight):
    """Write out the draws of paths start, start+1, ... (one row each): the numbers the kernel
    draws for itself, for traces, nested re-simulation, the importance pilot and tests."""
    for p in range(eps.shape[0]):
        path = start + p
        b, w, k, wt = path_draws(gp, path, eps[p], counts[p])
        burst[p] = b
        winv[p] = w
        key[p] = k
        weight[p] = wt
        for i in range(expo.shape[1]):
            expo[p, i] = -math.log(uniform_at(gp.key0, gp.key1, STREAM_DEFAULT, path, i))


@jit
def class_survival(H, out):
    """``out[k]`` = exp(−H[k, T])·SURVIVOR_MARGIN, the uniform below which a tenant of class k survives."""
    T = H.shape[1] - 1
    for k in range(H.shape[0]):
        out[k] = math.exp(-H[k, T]) * SURVIVOR_MARGIN

