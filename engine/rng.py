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
        n, T = BLOCK_PATHS, self.T
        eps = _generator(self.seed, b, STREAM_FACTOR).standard_normal((n, T + 1))
        # Tenant-major fill: adding a tenant at the end leaves every other tenant's draws unchanged.
        expo = np.ascontiguousarray(_generator(self.seed, b, STREAM_DEFAULT).standard_exponential((self.n_tenants, n)).T)
        u = _generator(self.seed, b, STREAM_BURST).random(n)
        burst = self._burst_months(u)
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
        self._cached = (b, draws)
        return draws

    def _burst_months(self, u: np.ndarray) -> np.ndarray:
        never = self.T + 1
        if self.burst_month is not None:
            return np.full(u.shape, min(self.burst_month, never), dtype=np.int32)
        h = self.burst_hazard
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


class FixedDraws:
    """The inputs of a deterministic what-if (config ``deterministic``): no hazard defaults (every
    Exp(1) draw is +∞), no burst, the Gaussian copula, no random releases. The factor path and the
    renewal rule live in the plan; every path is the same path."""

    def __init__(self, months: int, n_tenants: int):
        self.T = months
        self.n_tenants = n_tenants

    def draws(self, start: int, stop: int) -> Draws:
        n = stop - start
        return Draws(
            eps=np.zeros((n, self.T + 1)), expo=np.full((n, self.n_tenants), np.inf),
            burst_month=np.full(n, self.T + 1, dtype=np.int32), winv=np.ones(n),
            release_counts=np.zeros((n, 0), dtype=np.int32), key=np.zeros(n, dtype=np.uint64),
            key_late=np.zeros(n, dtype=np.uint64), split=np.full(n, self.T + 1, dtype=np.int32),
        )


def draw_source(cfg) -> DrawSource | FixedDraws:
    """The draws a config runs on: random blocks, or the fixed inputs of a deterministic what-if."""
    if cfg.deterministic is not None:
        return FixedDraws(cfg.run.months, len(cfg.tenants))
    return DrawSource.for_config(cfg)
