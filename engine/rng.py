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
STREAM_FACTOR, STREAM_DEFAULT, STREAM_BURST, STREAM_TCOPULA, STREAM_RELEASES, STREAM_LEASE_KEY = range(6)


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
        self._cached: tuple[int, Draws] | None = None

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
        eps, burst, log_weight = self._tilt(eps, u)
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

    def _tilt(self, eps: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
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
        parts = []
        b0, b1 = start // BLOCK_PATHS, (stop - 1) // BLOCK_PATHS
        for b in range(b0, b1 + 1):
            lo = max(start, b * BLOCK_PATHS) - b * BLOCK_PATHS
            hi = min(stop, (b + 1) * BLOCK_PATHS) - b * BLOCK_PATHS
            blk = self.block(b)
            parts.append(Draws(*(a[lo:hi] for a in blk)))
        if len(parts) == 1:
            return Draws(*(np.ascontiguousarray(a) for a in parts[0]))
        return Draws(*(np.concatenate(arrs) for arrs in zip(*parts)))


class TiltedDrawSource(DrawSource):
    """Draws under the importance-sampling law Q of ``[importance]`` (engine/importance.py): the same
    uniforms and normals as plain Monte Carlo, with the factor's normals shifted by ``shift·d`` and
    the burst month drawn with the tilted hazard; ``weights`` gives each path's dP/dQ."""

    def __init__(self, *args, phi: float, shift: float, tilted_hazard: float | None, **kwargs):
        super().__init__(*args, **kwargs)
        self.direction = shift_direction(phi, self.T)
        self.shift = shift
        self.tilted_hazard = tilted_hazard

    @classmethod
    def for_config(cls, cfg, shift: float | None = None, tilted_hazard: float | None = None) -> TiltedDrawSource:
        """The sampling law of ``cfg.importance`` (or of the ``shift`` and ``tilted_hazard`` given)."""
        imp = cfg.importance
        plain = DrawSource.for_config(cfg)
        return cls(plain.seed, plain.T, plain.n_tenants, burst_hazard=plain.burst_hazard, burst_month=plain.burst_month,
                   student_t_dof=plain.nu, poisson_rate=plain.poisson_rate, phi=cfg.factor.persistence,
                   shift=imp.factor_shift if shift is None else shift,
                   tilted_hazard=imp.burst_hazard if tilted_hazard is None else tilted_hazard)

    def _tilt(self, eps, u):
        m, d = self.shift, self.direction
        log_weight = np.zeros(eps.shape[0])
        if m != 0.0:
            eps = eps + m * d[None, :]
            # dP/dQ of N(0, I) against N(m·d, I) at the shifted draws; numpy's own sum, not BLAS,
            # so that no thread count can change a bit.
            log_weight += -m * (eps * d[None, :]).sum(axis=1) + 0.5 * m * m * float((d * d).sum())
        hq = self.tilted_hazard
        if hq is None or not tiltable_burst(self.burst_hazard, self.burst_month):
            return eps, self._burst_months(u, self.burst_hazard), log_weight
        burst = self._burst_months(u, hq)
        h, T = self.burst_hazard, self.T
        fails = np.minimum(burst, T + 1) - 1  # months without a burst before it (B = T+1: none by T)
        hit = burst <= T
        log_weight += fails * (np.log1p(-h) - np.log1p(-hq)) + np.where(hit, np.log(h) - np.log(hq), 0.0)
        return eps, burst, log_weight

    def weights(self, start: int, stop: int) -> np.ndarray:
        parts = []
        for b in range(start // BLOCK_PATHS, (stop - 1) // BLOCK_PATHS + 1):
            self.block(b)
            lo = max(start, b * BLOCK_PATHS) - b * BLOCK_PATHS
            hi = min(stop, (b + 1) * BLOCK_PATHS) - b * BLOCK_PATHS
            parts.append(self._cached[2][lo:hi])
        return np.exp(np.concatenate(parts))


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
