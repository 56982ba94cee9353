"""Random inputs in fixed RNG blocks (ARCHITECTURE: Randomness).

Paths are grouped in blocks of ``BLOCK_PATHS``. Every kind of draw of block b comes from its own
stream, ``SeedSequence(seed, spawn_key=(b, stream))`` — the child ``(b, stream)`` of the seed's
spawn tree. A path is therefore a pure function of (seed, path index, config) whatever the chunk
size, thread count or backend, and draws of one kind do not move when another kind is switched on
or off (common random numbers across scenarios).
"""

from __future__ import annotations

import numpy as np

from kernels.plan import Draws

BLOCK_PATHS = 4096
STREAM_FACTOR, STREAM_DEFAULT, STREAM_BURST, STREAM_TCOPULA, STREAM_RELEASES, STREAM_LEASE_KEY, STREAM_MIXTURE = range(7)


def _generator(seed: int, block: int, stream: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(block, stream))))


class DrawSource:
    """Draws for any path range ``[start, stop)``, assembled from whole blocks.

    The most recently generated block is kept, so consecutive chunks that split a block do not
    generate it twice.
    """

    def __init__(self, seed: int, months: int, n_tenants: int, *, burst_hazard: float, burst_month: int | None,
                 student_t_dof: float | None, poisson_rate: float | None):
        self.seed = seed
        self.T = months
        self.n_tenants = n_tenants
        self.burst_hazard = burst_hazard
        self.burst_month = burst_month
        self.nu = student_t_dof
        self.poisson_rate = poisson_rate
        self._cached: tuple[int, Draws, np.ndarray | None] | None = None
        self._last_weights: tuple[int, int, np.ndarray] | None = None

    @classmethod
    def for_config(cls, cfg) -> DrawSource:
        g = cfg.gpu
        return cls(
            cfg.run.seed, cfg.run.months, len(cfg.tenants),
            burst_hazard=cfg.factor.burst.monthly_hazard, burst_month=cfg.factor.burst.month,
            student_t_dof=cfg.factor.student_t_dof,
            poisson_rate=1.0 / g.generation_interval_months if g.releases == "poisson" else None,
        )

    def block(self, b: int) -> Draws:
        if self._cached is not None and self._cached[0] == b:
            return self._cached[1]
        draws, log_weight = self._block(b)
        self._cached = (b, draws, log_weight)
        return draws

    def _block(self, b: int) -> tuple[Draws, np.ndarray | None]:
        n, T = BLOCK_PATHS, self.T
        eps = _generator(self.seed, b, STREAM_FACTOR).standard_normal((n, T + 1))
        # Tenant-major fill: adding a tenant at the end leaves every other tenant's draws unchanged.
        expo = np.ascontiguousarray(_generator(self.seed, b, STREAM_DEFAULT).standard_exponential((self.n_tenants, n)).T)
        u = _generator(self.seed, b, STREAM_BURST).random(n)
        eps, burst, log_weight = self._tilt(eps, u, b)
        if self.nu:
            chi2 = _generator(self.seed, b, STREAM_TCOPULA).chisquare(self.nu, n)
            winv = np.sqrt(chi2 / self.nu)
        else:
            winv = np.ones(n)
        if self.poisson_rate is not None:
            counts = _generator(self.seed, b, STREAM_RELEASES).poisson(self.poisson_rate, (n, T + 1)).astype(np.int32)
        else:
            counts = np.zeros((n, 0), dtype=np.int32)
        # One 64-bit key per path for the counter-based option uniforms (kernels/uniforms.py).
        key = _generator(self.seed, b, STREAM_LEASE_KEY).integers(0, 2**64, n, dtype=np.uint64, endpoint=False)
        draws = Draws(eps=eps, expo=expo, burst_month=burst, winv=winv, release_counts=counts, key=key, key_late=key,
                      split=np.full(n, T + 1, dtype=np.int32))
        return draws, log_weight

    def _tilt(self, eps: np.ndarray, u: np.ndarray, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The factor draws, burst months and log likelihood ratios of the sampling law (plain: none)."""
        return eps, self._burst_months(u, self.burst_hazard), None

    def weights(self, start: int, stop: int) -> np.ndarray | None:
        """Likelihood ratios dP/dQ of paths ``start .. stop-1``: None for plain Monte Carlo."""
        return None

    def _burst_months(self, u: np.ndarray, h: float) -> np.ndarray:
        never = self.T + 1
        if self.burst_month is not None:
            return np.full(u.shape, min(self.burst_month, never), dtype=np.int32)
        if h <= 0.0:
            return np.full(u.shape, never, dtype=np.int32)
        if h >= 1.0:
            return np.ones(u.shape, dtype=np.int32)
        # Inverse CDF of the geometric law on {1, 2, ...}: B = ⌈ln(1−U)/ln(1−h)⌉.
        m = np.ceil(np.log1p(-u) / np.log1p(-h))
        return np.clip(m, 1, never).astype(np.int32)

    def draws(self, start: int, stop: int) -> Draws:
        """Draws of paths ``start .. stop-1``."""
        parts, log_weights = [], []
        b0, b1 = start // BLOCK_PATHS, (stop - 1) // BLOCK_PATHS
        for b in range(b0, b1 + 1):
            lo = max(start, b * BLOCK_PATHS) - b * BLOCK_PATHS
            hi = min(stop, (b + 1) * BLOCK_PATHS) - b * BLOCK_PATHS
            blk = self.block(b)
            parts.append(Draws(*(a[lo:hi] for a in blk)))
            if self._cached[2] is not None:
                log_weights.append(self._cached[2][lo:hi])
        # The likelihood ratios of the range last drawn, so that `weights` need not draw it again.
        self._last_weights = (start, stop, np.exp(np.concatenate(log_weights))) if log_weights else None
        if len(parts) == 1:
            return Draws(*(np.ascontiguousarray(a) for a in parts[0]))
        return Draws(*(np.concatenate(arrs) for arrs in zip(*parts)))


class TiltedDrawSource(DrawSource):
    """Draws under the importance-sampling law Q of ``[importance]`` (engine/importance.py): the same
    uniforms and normals as plain Monte Carlo; on a path drawn from the tilted component, the
    factor's normals are shifted by ``shift·d`` and the burst month is drawn with the tilted hazard.
    A share ``plain_share`` of the paths (chosen by a uniform of their own stream) keep the model's
    own law: the defensive mixture Q = α·P + (1 − α)·Q_tilt, whose weights never exceed 1/α.
    ``weights`` gives each path's dP/dQ."""

    def __init__(self, *args, phi: float, shift: float, tilted_hazard: float | None, plain_share: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.direction = shift_direction(phi, self.T)
        self.shift = shift
        self.tilted_hazard = tilted_hazard
        self.plain_share = plain_share

    @classmethod
    def for_config(cls, cfg, shift: float | None = None, tilted_hazard: float | None = None) -> TiltedDrawSource:
        """The sampling law of ``cfg.importance`` (or of the ``shift`` and ``tilted_hazard`` given)."""
        imp = cfg.importance
        plain = DrawSource.for_config(cfg)
        return cls(plain.seed, plain.T, plain.n_tenants, burst_hazard=plain.burst_hazard, burst_month=plain.burst_month,
                   student_t_dof=plain.nu, poisson_rate=plain.poisson_rate, phi=cfg.factor.persistence,
                   shift=imp.factor_shift if shift is None else shift,
                   tilted_hazard=imp.burst_hazard if tilted_hazard is None else tilted_hazard, plain_share=imp.plain_share)

    def _tilt(self, eps, u, b):
        m, d, a = self.shift, self.direction, self.plain_share
        n = eps.shape[0]
        tilted = _generator(self.seed, b, STREAM_MIXTURE).random(n) >= a if a > 0.0 else np.ones(n, dtype=bool)
        log_ratio = np.zeros(n)  # log dQ_tilt/dP at the drawn point
        if m != 0.0:
            # numpy's own sums, not BLAS, so that no thread count can change a bit. A static factor
            # (d = e_0) moves Y_0 alone.
            if d[1:].any():
                eps = eps + np.where(tilted, m, 0.0)[:, None] * d[None, :]
                proj = (eps * d[None, :]).sum(axis=1)
            else:
                eps = eps.copy()
                eps[:, 0] += np.where(tilted, m, 0.0)
                proj = eps[:, 0] * d[0]
            log_ratio += m * proj - 0.5 * m * m * float((d * d).sum())
        hq, h, T = self.tilted_hazard, self.burst_hazard, self.T
        if hq is None or not tiltable_burst(h, self.burst_month):
            burst = self._burst_months(u, h)
        else:
            burst = np.where(tilted, self._burst_months(u, hq), self._burst_months(u, h)).astype(np.int32)
            fails = np.minimum(burst, T + 1) - 1  # months without a burst before it (B = T+1: none by T)
            hit = burst <= T
            log_ratio += fails * (np.log1p(-hq) - np.log1p(-h)) + np.where(hit, np.log(hq) - np.log(h), 0.0)
        if a > 0.0:
            return eps, burst, -np.logaddexp(np.log(a), np.log1p(-a) + log_ratio)
        return eps, burst, -log_ratio

    def weights(self, start: int, stop: int) -> np.ndarray:
        if self._last_weights is None or self._last_weights[:2] != (start, stop):
            self.draws(start, stop)
        return self._last_weights[2]


def shift_direction(phi: float, months: int) -> np.ndarray:
    """The direction d of the factor shift: the normals eps[0] (Y_0) and eps[1..T] (innovations)
    shifted by m·d move the mean of every Y_t by m, since m = φ·m + sqrt(1 − φ²)·m·d_t."""
    d = np.full(months + 1, np.sqrt((1.0 - phi) / (1.0 + phi)) if phi < 1.0 else 0.0)
    d[0] = 1.0
    return d


def tiltable_burst(hazard: float, month: int | None) -> bool:
    """Whether the burst month is random, so that its hazard can be tilted."""
    return month is None and 0.0 < hazard < 1.0


class FixedDraws:
    """The inputs of a deterministic what-if (config ``deterministic``): no hazard defaults (every
    Exp(1) draw is +∞), no burst, the Gaussian copula, no random releases. The factor path and the
    renewal rule live in the plan; every path is the same path."""

    def __init__(self, months: int, n_tenants: int):
        self.T = months
        self.n_tenants = n_tenants

    def weights(self, start: int, stop: int) -> None:
        return None

    def draws(self, start: int, stop: int) -> Draws:
        n = stop - start
        return Draws(
            eps=np.zeros((n, self.T + 1)), expo=np.full((n, self.n_tenants), np.inf),
            burst_month=np.full(n, self.T + 1, dtype=np.int32), winv=np.ones(n),
            release_counts=np.zeros((n, 0), dtype=np.int32), key=np.zeros(n, dtype=np.uint64),
            key_late=np.zeros(n, dtype=np.uint64), split=np.full(n, self.T + 1, dtype=np.int32),
        )


def draw_source(cfg, tilted: bool = True) -> DrawSource | FixedDraws:
    """The draws a config runs on: random blocks (tilted when ``[importance]`` is resolved, see
    engine/importance.py, unless ``tilted=False``), or the fixed inputs of a deterministic what-if."""
    if cfg.deterministic is not None:
        return FixedDraws(cfg.run.months, len(cfg.tenants))
    imp = cfg.importance
    if tilted and imp is not None and imp.factor_shift is not None:
        return TiltedDrawSource.for_config(cfg)
    return DrawSource.for_config(cfg)
