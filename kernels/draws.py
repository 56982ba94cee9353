"""A path's random inputs from the counter-based generator (kernels/philox.py), under the model's law
or the importance-sampling law of a DrawPlan (MODEL §1–2, §9).

Every kind of draw has its own stream, and draw i of a stream is block i // 2 of it, so adding a
tenant, a month or a feature leaves every other draw where it was (common random numbers across
scenarios), and a path is the same numbers whichever thread, chunk or backend draws it.
"""

import math

import numpy as np

from ._jit import jit
from .credit import class_cumulative_hazard, default_month, norm_cdf
from .factor import factor_path
from .philox import gamma_variate, norm_ppf, normals, poisson_variate, uniform_at, uniform_pair, word64

(STREAM_FACTOR, STREAM_DEFAULT, STREAM_BURST, STREAM_TCOPULA, STREAM_RELEASES, STREAM_LEASE_KEY, STREAM_MIXTURE,
 STREAM_FACTOR_TILT) = range(8)

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
def tilted_burst_month(u, hq, h, hz, T):
    """B from the uniform u under the hazard hq in months 1..hz and h after (0 < h, hq < 1), by
    inversion of P(B > k) = (1 − hq)^k to hz and (1 − hq)^hz·(1 − h)^(k − hz) after; T+1: none by T."""
    b = burst_month(u, hq, -1, T)
    if b <= hz:
        return b
    rest = math.ceil((math.log1p(-u) - hz * math.log1p(-hq)) / math.log1p(-h))
    return int(min(hz + max(rest, 1.0), float(T + 1)))


@jit
def path_draws(gp, path, eps, counts):
    """Draw path ``path``'s factor normals into ``eps`` (f8[T+1]) and, in Poisson mode, its chip
    releases into ``counts`` (i4[T+1]). Returns (B, 1/sqrt(W), the lease-option key, ln dQ_tilt/dP
    of the factor's normals and the burst month, whether the path is from the tilted component).

    Under importance sampling a path is drawn from the tilted component unless its mixture uniform
    falls below α; the tilted component shifts the normals by m·d and draws B with the tilted
    hazard. With K > 1 strata the projection of the normals on d is stratified under the mixture
    and the component drawn given it (``_stratify``). The log-ratio is evaluated at the drawn point
    for every path: with the tilted defaults' (``tilted_defaults``) it makes the path's weight
    (``mixture_weight``, the defensive mixture)."""
    T = gp.months
    normals(gp.key0, gp.key1, STREAM_FACTOR, path, eps, gp.n_normals)
    for t in range(gp.n_normals, T + 1):
        eps[t] = 0.0
    u_burst = uniform_at(gp.key0, gp.key1, STREAM_BURST, path, 0)
    log_ratio = 0.0  # log dQ_tilt/dP at the drawn point
    tilted = gp.weighted
    stratified = gp.weighted and gp.strata > 1
    if stratified:
        u_mix, u_cell = uniform_pair(gp.key0, gp.key1, STREAM_MIXTURE, path, 0)
        tilted = _stratify(gp, path, u_mix, u_cell, eps)
    elif gp.weighted and gp.plain_share > 0.0:
        tilted = uniform_at(gp.key0, gp.key1, STREAM_MIXTURE, path, 0) >= gp.plain_share
    if gp.weighted and gp.shift != 0.0:
        m = gp.shift if tilted and not stratified else 0.0  # a stratified projection already has its shift
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
        hz = gp.horizon
        b = tilted_burst_month(u_burst, hq, h, hz, T) if tilted else burst_month(u_burst, h, -1, T)
        fails = min(b, hz + 1) - 1  # months to the horizon without a burst before it
        log_ratio += fails * (math.log1p(-hq) - math.log1p(-h))
        if b <= hz:
            log_ratio += math.log(hq) - math.log(h)
    else:
        b = burst_month(u_burst, h, gp.burst_month, T)
    winv = 1.0
    if gp.nu > 0.0:
        chi2 = 2.0 * gamma_variate(gp.key0, gp.key1, STREAM_TCOPULA, path, 0.5 * gp.nu)
        winv = math.sqrt(chi2 / gp.nu)
    if gp.poisson_rate > 0.0:
        for t in range(T + 1):
            counts[t] = poisson_variate(uniform_at(gp.key0, gp.key1, STREAM_RELEASES, path, t), gp.poisson_rate)
    key = word64(gp.key0, gp.key1, STREAM_LEASE_KEY, path)
    return b, winv, key, log_ratio, tilted and gp.weighted


@jit
def _tilt_threshold(c, sqrt_rho, inv_sqrt_1mrho, winv, burst_shift, k, after_burst):
    """a_{k,t} and β_k of ``hazard_tilted_factor``: class k's monthly default probability is
    Φ(a − β·Y_t), a taken before the burst month or from it on (X_t = Y_t + s)."""
    beta = sqrt_rho[k] * inv_sqrt_1mrho[k]
    a = c[k] * winv * inv_sqrt_1mrho[k]
    if after_burst:
        a -= beta * burst_shift
    return a, beta


@jit
def _mean_probability(a, beta, mu):
    """E[Φ(a − β·Y)] for Y ~ N(μ, 1)."""
    return norm_cdf((a - beta * mu) / math.sqrt(1.0 + beta * beta))


@jit
def hazard_tilted_factor(gp, path, b, winv, tilted, c, sqrt_rho, inv_sqrt_1mrho, phi, innovation_scale, burst_shift, eps):
    """The factor tilted towards the tilted tenants' hazard (importance.factor_tilt = "hazard",
    docs/model.md §9): the tilted component's normals have the law φ_m(ε)·S(Y)/Z, with
    S(Y) = Σ_{k, t ≤ h} n_k·Φ(a_{k,t} − β_k·Y_t) (n_k tilted tenants of class k, DrawPlan.factor_tilt;
    Φ(a_{k,t} − β_k·Y_t) the class's monthly default probability at X_t = Y_t + s·1{t ≥ B}) and
    Z = E_m[S] = Σ n_k·Φ((a_{k,t} − β_k·m)/sqrt(1 + β_k²)) in closed form. It is drawn as the mixture
    it is: a (class, month) with probability n_k·E_m[Φ(a_{k,t} − β_k·Y_t)]/Z, that month's Y_t from
    its extended skew-normal law (a truncated normal S and the Gaussian given it) and the rest of the
    path from its Gaussian law given Y_t (Y_u moves by φ^|u−t|·Δ: the normals at 0..t). Without the
    hazard the factor's weight would carry the whole spread of the conditional default probability
    over factor paths (dips, not the mean level, make it), which no mean shift removes; with it that
    spread cancels against the tilted defaults' ratio. Returns ln S(Y) − ln Z at the drawn path, on
    every path (the mixture's weight needs it), plus, on a tilted path, the change the move makes to
    the mean shift's log-ratio m·d·ε (``path_draws`` took it before the move)."""
    hz = gp.horizon
    K = gp.factor_tilt.shape[0]
    shift_term = 0.0
    mu = gp.shift  # E[Y_t] for 1 ≤ t ≤ h under the tilted component's shifted normals
    before = min(b - 1, hz)  # months 1..before precede the burst (segment 0), before+1..h follow it (1)
    Z = 0.0
    for k in range(K):
        n = gp.factor_tilt[k]
        if n > 0.0:
            a0, beta = _tilt_threshold(c, sqrt_rho, inv_sqrt_1mrho, winv, burst_shift, k, False)
            a1, _ = _tilt_threshold(c, sqrt_rho, inv_sqrt_1mrho, winv, burst_shift, k, True)
            Z += n * (before * _mean_probability(a0, beta, mu) + (hz - before) * _mean_probability(a1, beta, mu))
    if tilted and Z > 0.0:
        u_pick, u_trunc = uniform_pair(gp.key0, gp.key1, STREAM_FACTOR_TILT, path, 0)
        u_normal = uniform_at(gp.key0, gp.key1, STREAM_FACTOR_TILT, path, 2)
        goal = u_pick * Z
        acc = 0.0
        t_star = hz
        a_star = 0.0
        beta_star = 0.0
        for j in range(2 * K):  # (class, segment) pairs in Z's order
            k, seg = j >> 1, j & 1
            n = gp.factor_tilt[k]
            months = before if seg == 0 else hz - before
            if n <= 0.0 or months <= 0:
                continue
            a, beta = _tilt_threshold(c, sqrt_rho, inv_sqrt_1mrho, winv, burst_shift, k, seg == 1)
            mass = n * months * _mean_probability(a, beta, mu)
            if mass <= 0.0:
                continue
            first = 1 if seg == 0 else before + 1
            t_star = first + months - 1  # the last segment with mass, should rounding leave goal past the total
            a_star, beta_star = a, beta
            if goal < acc + mass:  # the month within the segment from the rest of the uniform
                t_star = first + min(int((goal - acc) / mass * months), months - 1)
                break
            acc += mass
        # Y_t = m + z, z with density ∝ φ(z)·Φ(a' − β·z), a' = a − β·m: z | (S = V + β·z < a') for V ~ N(0, 1)
        r2 = 1.0 + beta_star * beta_star
        r = math.sqrt(r2)
        a_p = a_star - beta_star * mu
        s_cut = r * norm_ppf(max(u_trunc * norm_cdf(a_p / r), 1e-300))
        y_new = mu + beta_star * s_cut / r2 + norm_ppf(u_normal) / r
        y = eps[0]
        for u in range(1, t_star + 1):
            y = phi * y + innovation_scale * eps[u]
        g = y_new - y
        moved = 0.0  # d·(the normals' change): the mean shift's log-ratio is taken at the final normals
        for u in range(t_star, 0, -1):
            eps[u] += g * innovation_scale
            moved += gp.direction[u] * g * innovation_scale
            g *= phi
        eps[0] += g
        moved += gp.direction[0] * g
        shift_term = gp.shift * moved
    S = 0.0
    y = eps[0]
    for t in range(1, hz + 1):
        y = phi * y + innovation_scale * eps[t]
        for k in range(K):
            n = gp.factor_tilt[k]
            if n > 0.0:
                a, beta = _tilt_threshold(c, sqrt_rho, inv_sqrt_1mrho, winv, burst_shift, k, t >= b)
                S += n * norm_cdf(a - beta * y)
    if S <= 0.0 or Z <= 0.0:
        return -math.inf
    return shift_term + math.log(S) - math.log(Z)


@jit
def mixture_weight(gp, log_ratio):
    """dP/dQ of a path whose tilted component has ln dQ_tilt/dP = ``log_ratio`` at its draws: 1 for
    the model's own law, else 1 / (α + (1 − α)·e^ℓ), as −logaddexp(ln α, ln(1 − α) + ℓ)."""
    if not gp.weighted:
        return 1.0
    a = gp.plain_share
    if a > 0.0:
        x, y = math.log(a), math.log1p(-a) + log_ratio
        hi = max(x, y)
        return math.exp(-(hi + math.log1p(math.exp(-abs(x - y)))))
    return math.exp(-log_ratio)


@jit
def mixture_ppf(v, vc, a, mu):
    """The z with α·Φ(z) + (1 − α)·Φ(z − μ) = v, given v and vc = 1 − v (0 < v < 1, each rounded once):
    the inverse CDF of the factor projection's law under the defensive mixture. Newton steps kept
    inside the bracket between the two components' quantiles; above the median on the upper tail
    α·Φ(−z) + (1 − α)·Φ(μ − z) = vc, so neither tail loses digits to cancellation."""
    upper = v > 0.5
    x0 = -norm_ppf(vc) if upper else norm_ppf(v)
    if mu == 0.0 or a >= 1.0:
        return x0
    if a <= 0.0:
        return x0 + mu
    lo = min(x0, x0 + mu)
    hi = max(x0, x0 + mu)
    z = x0 + (1.0 - a) * mu
    for _ in range(100):
        if upper:  # vc − (1 − F(z)) = F(z) − v, increasing in z like the lower branch
            f = vc - a * 0.5 * math.erfc(z * _SQRT_HALF) - (1.0 - a) * 0.5 * math.erfc((z - mu) * _SQRT_HALF)
        else:
            f = a * 0.5 * math.erfc(-z * _SQRT_HALF) + (1.0 - a) * 0.5 * math.erfc(-(z - mu) * _SQRT_HALF) - v
        if f > 0.0:
            hi = z
        else:
            lo = z
        slope = (a * math.exp(-0.5 * z * z) + (1.0 - a) * math.exp(-0.5 * (z - mu) * (z - mu))) * _INV_SQRT_2PI
        nz = z - f / slope if slope > 0.0 else 0.5 * (lo + hi)
        if not (lo < nz < hi):
            nz = 0.5 * (lo + hi)
        if abs(nz - z) <= 1e-14 * (1.0 + abs(z)) or hi - lo <= 1e-14 * (1.0 + abs(z)):
            return nz
        z = nz
    return z


@jit
def _stratify(gp, path, u_mix, u_cell, eps):
    """Stratify the factor along the shift direction d (docs/model.md §9): path j falls in cell
    j mod K of K equally likely cells of the projection ẑ = d·ε/|d| under the sampling law, and ẑ is
    drawn within it by inversion; the normals keep their components orthogonal to d. The mixture's
    component is then drawn from its posterior given ẑ, so (ẑ, component, B) has the mixture's
    joint law exactly. Returns whether the path is from the tilted component."""
    T = gp.months
    K = gp.strata
    dd = 0.0
    proj = 0.0
    for t in range(T + 1):
        d = gp.direction[t]
        dd += d * d
        proj += d * eps[t]
    norm = math.sqrt(dd)
    a = gp.plain_share
    mu = gp.shift * norm
    cell = path % K
    z = mixture_ppf((cell + u_cell) / K, ((K - 1 - cell) + (1.0 - u_cell)) / K, a, mu)
    move = (z - proj / norm) / norm
    for t in range(T + 1):
        d = gp.direction[t]
        if d != 0.0:
            eps[t] += move * d
    if a <= 0.0:
        return True
    # P(plain | ẑ) = α·φ(ẑ) / (α·φ(ẑ) + (1 − α)·φ(ẑ − μ))
    x = math.log1p(-a) - math.log(a) + 0.5 * z * z - 0.5 * (z - mu) * (z - mu)
    p_plain = 1.0 / (1.0 + math.exp(x)) if x < 700.0 else 0.0
    return u_mix >= p_plain


_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


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


MAX_HAZARD_SCALE = 1e12


@jit
def tilt_hazards(gp, H, surv, lam, surv_tilt):
    """Per class c, the factor λ_c by which the tilted component scales a tilted tenant's cumulative
    hazard up to the sampling law's horizon h (DrawPlan.horizon), so that its probability of
    defaulting by h given the factor is at least the floor ℓ: λ_c = −ln(1 − ℓ)/H_c(h) when
    1 − e^{−H_c(h)} < ℓ, else 1 (at most MAX_HAZARD_SCALE, so that a vanishing hazard cannot make it
    infinite). The tilted hazard is λ_c·H_c(t) to h and H_c(t) + (λ_c − 1)·H_c(h) after it.
    ``surv_tilt[c]`` is the survivor cut of ``tilted_defaults`` for it."""
    T = H.shape[1] - 1
    hm = gp.horizon
    goal = -math.log1p(-gp.default_floor)
    for c in range(H.shape[0]):
        h = H[c, hm]
        if 0.0 < h < goal:
            lam[c] = min(goal / h, MAX_HAZARD_SCALE)
            surv_tilt[c] = math.exp(-(lam[c] - 1.0) * h - H[c, T]) * SURVIVOR_MARGIN
        else:
            lam[c] = 1.0
            surv_tilt[c] = surv[c]


@jit
def default_log_ratio(Hc, m, lam, hm):
    """ln Q/P of a tenant's default month m (T+1: none by T) when Q scales its cumulative hazard by λ
    up to month hm (``tilt_hazards``): for m ≤ hm, ln[(e^{−λH(m−1)} − e^{−λH(m)}) / (e^{−H(m−1)} −
    e^{−H(m)})] = −(λ − 1)·H(m−1) + ln[expm1(−λΔ) / expm1(−Δ)] with Δ = H(m) − H(m−1); after hm
    (or never), −(λ − 1)·H(hm), the two laws' odds of surviving to hm."""
    if m > hm:
        return -(lam - 1.0) * Hc[hm]
    a = Hc[m - 1]
    step = Hc[m] - a
    r = math.expm1(-lam * step) / math.expm1(-step) if step > 0.0 else lam
    return -(lam - 1.0) * a + math.log(r)


@jit
def tilted_defaults(gp, path, H, tenant_class, tenant_forced, surv, lam, surv_tilt, tilted, tau, expo):
    """``tenant_defaults`` under the defensive mixture with tilted defaults (docs/model.md §9): on a
    path of the tilted component each tilted tenant (DrawPlan.tilt_tenant) draws its default month
    from the same uniform with its class's tilted hazard (``tilt_hazards``), by inversion: the
    untilted hazard's threshold −ln(U)/λ_c if the month is by the horizon h, else
    −ln(U) − (λ_c − 1)·H_c(h). Returns ln dQ_tilt/dP of the default months, on every path (the
    mixture's weight needs it at the drawn point). When ``expo`` has a row, each tenant's
    threshold goes into it (the draws written out, which the kernel turns into the same months)."""
    N = tau.shape[0]
    T = H.shape[1] - 1
    hm = gp.horizon
    log_ratio = 0.0
    write = expo.shape[0] > 0
    for j in range((N + 1) >> 1):
        u0, u1 = uniform_pair(gp.key0, gp.key1, STREAM_DEFAULT, path, j)
        for i in range(2 * j, min(2 * j + 2, N)):
            u = u0 if i == 2 * j else u1
            c = tenant_class[i]
            scale = lam[c] if gp.tilt_tenant[i] else 1.0
            m = T + 1
            if scale != 1.0 and tilted:
                if write or u >= surv_tilt[c]:
                    e = -math.log(u)
                    early = scale * H[c, hm]
                    e = e / scale if e <= early else e - (early - H[c, hm])
                    if write:
                        expo[i] = e
                    if u >= surv_tilt[c]:
                        m = default_month(H[c], e)
            else:
                if write:
                    expo[i] = -math.log(u)
                if u >= surv[c]:
                    m = default_month(H[c], -math.log(u))
            if scale != 1.0:
                log_ratio += default_log_ratio(H[c], m, scale, hm)
            forced = tenant_forced[i]
            tau[i] = forced if forced < m else m
    return log_ratio


@jit
def draw_paths(gp, start, eps, expo, burst, winv, counts, key, weight):
    """Write out the draws of paths start, start+1, ... (one row each): the numbers the kernel
    draws for itself, for traces, nested re-simulation, the importance pilot and tests. With tilted
    defaults (DrawPlan.default_floor > 0) the thresholds and weights need the factor's hazards:
    ``tilt_written_defaults`` then rewrites them."""
    for p in range(eps.shape[0]):
        path = start + p
        b, w, k, lr, _ = path_draws(gp, path, eps[p], counts[p])
        burst[p] = b
        winv[p] = w
        key[p] = k
        weight[p] = mixture_weight(gp, lr)
        for i in range(expo.shape[1]):
            expo[p, i] = -math.log(uniform_at(gp.key0, gp.key1, STREAM_DEFAULT, path, i))


@jit
def tilt_written_defaults(gp, fp, cp, start, eps, burst, winv, expo, weight):
    """The thresholds and weights of written-out paths (``draw_paths``) under tilted defaults: each
    path's factor and class hazards rebuilt from its draws as the kernel builds them, then
    ``tilted_defaults`` with the path's own component."""
    T = gp.months
    X = np.empty(T + 1)
    H = np.empty((cp.class_c.shape[0], T + 1))
    surv = np.empty(cp.class_c.shape[0])
    lam = np.empty_like(surv)
    surv_tilt = np.empty_like(surv)
    tau = np.empty(cp.tenant_class.shape[0], dtype=np.int32)
    counts = np.zeros(T + 1, dtype=np.int32)
    scratch = np.empty(T + 1)
    for p in range(eps.shape[0]):
        path = start + p
        _, _, _, lr, tilted = path_draws(gp, path, scratch, counts)
        if gp.factor_tilt.shape[0] > 0:
            lr += hazard_tilted_factor(gp, path, burst[p], winv[p], tilted, cp.class_c, cp.class_sqrt_rho,
                                       cp.class_inv_sqrt_1mrho, fp.phi, fp.innovation_scale, fp.burst_shift, scratch)
            for t in range(T + 1):
                eps[p, t] = scratch[t]
        if gp.default_floor > 0.0:
            factor_path(eps[p], fp.phi, fp.innovation_scale, burst[p], fp.burst_shift, X)
            class_cumulative_hazard(X, cp.class_c, cp.class_sqrt_rho, cp.class_inv_sqrt_1mrho, winv[p], cp.hazard_table, H)
            class_survival(H, surv)
            tilt_hazards(gp, H, surv, lam, surv_tilt)
            lr += tilted_defaults(gp, path, H, cp.tenant_class, cp.tenant_forced, surv, lam, surv_tilt, tilted, tau, expo[p])
        weight[p] = mixture_weight(gp, lr)


@jit
def class_survival(H, out):
    """``out[k]`` = exp(−H[k, T])·SURVIVOR_MARGIN, the uniform below which a tenant of class k survives."""
    T = H.shape[1] - 1
    for k in range(H.shape[0]):
        out[k] = math.exp(-H[k, T]) * SURVIVOR_MARGIN

