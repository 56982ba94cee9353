"""Random inputs from the counter-based generator (ARCHITECTURE: Randomness).

Every random number of a path is a pure function of (seed, path index, stream, position): the
Philox4x32-10 block (j, stream, path) under the seed as key (kernels/philox.py, kernels/draws.py).
The kernel draws each path's numbers itself, on whichever thread runs the path, so results are
bit-identical whatever the chunk size, thread count or backend, and draws of one kind do not
move when another kind is switched on or off (common random numbers across scenarios). A
DrawSource describes the law (a DrawPlan for the kernel) and can write any range of paths' draws
out as arrays, the same numbers, for traces, nested re-simulation and tests.
"""

from __future__ import annotations

import numpy as np

from engine.config import ConfigError
from engine.plan.compile import compile_plan
from kernels.draws import draw_paths, tilt_written_defaults
from kernels.plan import DrawPlan, Draws

RNG = "philox4x32-10"
"""The generator, recorded in the manifest and in a resumable run's identity."""


def _plan(seed: int, months: int, *, burst_hazard: float = 0.0, burst_month: int | None = None,
          nu: float | None = None, poisson_rate: float | None = None, static_factor: bool = False,
          shift: float = 0.0, direction: np.ndarray | None = None, tilted_hazard: float | None = None,
          plain_share: float = 0.0, weighted: bool = False, strata: int = 0, horizon: int | None = None,
          default_floor: float = 0.0, tilt_tenant: np.ndarray | None = None, factor_tilt: np.ndarray | None = None) -> DrawPlan:
    return DrawPlan(
        key0=np.uint64(seed & 0xFFFFFFFF), key1=np.uint64((seed >> 32) & 0xFFFFFFFF), months=months,
        n_normals=1 if static_factor else months + 1, burst_hazard=float(burst_hazard),
        burst_month=-1 if burst_month is None else int(burst_month), nu=float(nu or 0.0),
        poisson_rate=float(poisson_rate or 0.0), weighted=weighted, shift=float(shift),
        direction=np.zeros(months + 1) if direction is None else np.ascontiguousarray(direction, dtype=np.float64),
        tilted_hazard=-1.0 if tilted_hazard is None else float(tilted_hazard), plain_share=float(plain_share),
        strata=int(strata), horizon=months if horizon is None else min(int(horizon), months),
        default_floor=float(default_floor),
        tilt_tenant=np.zeros(0, dtype=np.uint8) if tilt_tenant is None else np.ascontiguousarray(tilt_tenant, dtype=np.uint8),
        factor_tilt=np.zeros(0) if factor_tilt is None else np.ascontiguousarray(factor_tilt, dtype=np.float64),
    )


def explicit_plan(months: int) -> DrawPlan:
    """The DrawPlan passed with explicit draws: the kernel reads only its month count."""
    return _plan(0, months)


class DrawSource:
    """The model's own law: every path drawn by the kernel from the run's seed."""

    weighted = False
    strata = 1

    def __init__(self, seed: int, months: int, n_tenants: int, *, burst_hazard: float, burst_month: int | None,
                 student_t_dof: float | None, poisson_rate: float | None, static_factor: bool = False):
        self.seed = seed
        self.T = months
        self.n_tenants = n_tenants
        self.burst_hazard = burst_hazard
        self.burst_month = burst_month
        self.nu = student_t_dof
        self.poisson_rate = poisson_rate
        self.static_factor = static_factor

    @classmethod
    def for_config(cls, cfg) -> DrawSource:
        g = cfg.gpu
        return cls(
            cfg.run.seed, cfg.run.months, len(cfg.tenants),
            burst_hazard=cfg.factor.burst.monthly_hazard, burst_month=cfg.factor.burst.month,
            student_t_dof=cfg.factor.student_t_dof,
            poisson_rate=1.0 / g.generation_interval_months if g.releases == "poisson" else None,
            # φ = 1: Y_t = Y_0 for every t, so no innovation is drawn
            static_factor=cfg.factor.persistence >= 1.0,
        )

    def _common(self) -> dict:
        return dict(burst_hazard=self.burst_hazard, burst_month=self.burst_month, nu=self.nu,
                    poisson_rate=self.poisson_rate, static_factor=self.static_factor)

    def plan(self) -> DrawPlan:
        """The DrawPlan the kernel draws with."""
        return _plan(self.seed, self.T, **self._common())

    def _write(self, start: int, stop: int) -> tuple[Draws, np.ndarray]:
        n, T = stop - start, self.T
        eps = np.empty((n, T + 1))
        expo = np.empty((n, self.n_tenants))
        burst = np.empty(n, dtype=np.int32)
        winv = np.empty(n)
        counts = np.zeros((n, T + 1 if self.poisson_rate is not None else 0), dtype=np.int32)
        key = np.empty(n, dtype=np.uint64)
        weight = np.empty(n)
        gp = self.plan()
        draw_paths(gp, start, eps, expo, burst, winv, counts, key, weight)
        if gp.default_floor > 0.0 or gp.factor_tilt.size:
            tilt_written_defaults(gp, self.factor_plan, self.credit_plan, start, eps, burst, winv, expo, weight)
        draws = Draws(eps=eps, expo=expo, burst_month=burst, winv=winv, release_counts=counts, key=key, key_late=key,
                      split=np.full(n, T + 1, dtype=np.int32))
        return draws, weight

    def draws(self, start: int, stop: int) -> Draws:
        """The draws of paths ``start .. stop-1`` written out as arrays (the kernel's own numbers)."""
        return self._write(start, stop)[0]

    def weights(self, start: int, stop: int) -> np.ndarray | None:
        """Likelihood ratios dP/dQ of paths ``start .. stop-1``: None for plain Monte Carlo."""
        return None


class TiltedDrawSource(DrawSource):
    """Draws under the importance-sampling law Q of ``[importance]`` (engine/simulation/importance.py): the same
    uniforms and normals as plain Monte Carlo; on a path drawn from the tilted component, the
    factor's normals are shifted by ``shift·d`` and the burst month is drawn with the tilted hazard.
    A share ``plain_share`` of the paths (chosen by a uniform of their own stream) keep the model's
    own law: the defensive mixture Q = α·P + (1 − α)·Q_tilt, whose weights never exceed 1/α.
    With ``strata`` K > 1 the factor's projection on the shift direction is stratified under Q
    (path j in cell j mod K; kernels/draws.py ``_stratify``), the weights' formula unchanged.
    With ``default_floor`` ℓ > 0 the tilted component also raises each tilted tenant's probability
    of defaulting by the ``horizon`` (default T) given the factor to at least ℓ (kernels/draws.py ``tilted_defaults``); the
    written-out draws then need the plan's factor and credit parts (``plan``).
    ``weights`` gives each path's dP/dQ; the kernel writes it into PathOutputs.weight."""

    weighted = True

    def __init__(self, *args, phi: float, shift: float, tilted_hazard: float | None, plain_share: float = 0.0,
                 strata: int = 1, horizon: int | None = None, default_floor: float = 0.0,
                 factor_tilt: np.ndarray | None = None, tilt_tenant: np.ndarray | None = None, plan=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.horizon = self.T if horizon is None else min(int(horizon), self.T)
        self.direction = shift_direction(phi, self.T, self.horizon)
        self.shift = shift
        self.tilted_hazard = tilted_hazard
        self.plain_share = plain_share
        self.strata = strata
        self.default_floor = default_floor
        self.factor_tilt = factor_tilt
        self.tilt_tenant = tilt_tenant
        self.factor_plan = None if plan is None else plan.factor
        self.credit_plan = None if plan is None else plan.credit

    @classmethod
    def for_config(cls, cfg, shift: float | None = None, tilted_hazard: float | None = None,
                   strata: int | None = None, plan=None) -> TiltedDrawSource:
        """The sampling law of ``cfg.importance`` (or of the ``shift``, ``tilted_hazard`` and
        ``strata`` given; the strata default to :func:`strata_count` of the config). Tilted
        defaults need the compiled ``plan`` (compiled here when not given)."""
        imp = cfg.importance
        plain = DrawSource.for_config(cfg)
        floor = imp.default_floor or 0.0
        tilt = counts = None
        needs_plan = floor > 0.0 or imp.factor_tilt == "hazard"
        if needs_plan:
            if plan is None:
                plan = compile_plan(cfg)
            tilt = tilted_tenants(cfg, plan)
            if imp.factor_tilt == "hazard":
                counts = np.bincount(plan.credit.tenant_class[tilt.astype(bool)],
                                     minlength=plan.credit.class_c.size).astype(np.float64)
        return cls(plain.seed, plain.T, plain.n_tenants, burst_hazard=plain.burst_hazard, burst_month=plain.burst_month,
                   student_t_dof=plain.nu, poisson_rate=plain.poisson_rate, static_factor=plain.static_factor,
                   phi=cfg.factor.persistence, shift=imp.factor_shift if shift is None else shift,
                   tilted_hazard=imp.burst_hazard if tilted_hazard is None else tilted_hazard, plain_share=imp.plain_share,
                   strata=strata_count(imp.strata, cfg.run.paths) if strata is None else strata,
                   horizon=imp.horizon, default_floor=floor, factor_tilt=counts,
                   tilt_tenant=tilt if floor > 0.0 else None, plan=plan if needs_plan else None)

    def plan(self) -> DrawPlan:
        hq = self.tilted_hazard if tiltable_burst(self.burst_hazard, self.burst_month) else None
        return _plan(self.seed, self.T, **self._common(), weighted=True, shift=self.shift, direction=self.direction,
                     tilted_hazard=hq, plain_share=self.plain_share, strata=self.strata,
                     horizon=self.horizon, default_floor=self.default_floor,
                     tilt_tenant=self.tilt_tenant, factor_tilt=self.factor_tilt)

    def weights(self, start: int, stop: int) -> np.ndarray:
        return self._write(start, stop)[1]


def tilted_tenants(cfg, plan) -> np.ndarray:
    """u1[N]: the tenants whose defaults ``importance.default_floor`` tilts (and whose hazard
    ``factor_tilt = "hazard"`` draws the factor towards): those with a lease in the
    target's deal (the deal of ``importance.target``, else the first deal, as engine/simulation/importance.py
    chooses the target), less any with a forced default month within the run (`default_month` ≤
    run.months: their month is fixed). ABS-of-ABS collateral is not looked through: the tenants of
    a deal's collateral deals are not its own (engine/config/root.py refuses a floor on a deal without
    leases)."""
    deal_name = cfg.importance_deal()
    d = plan.deal_names.index(deal_name)
    pool = plan.pool
    tenants = pool.ctrl_tenant[pool.deal_ctrl_ptr[d]:pool.deal_ctrl_ptr[d + 1]]
    tilt = np.zeros(len(plan.tenant_names), dtype=np.uint8)
    tilt[tenants] = 1
    tilt[plan.credit.tenant_forced <= cfg.run.months] = 0
    if not tilt.any():
        field = "default_floor" if cfg.importance.default_floor is not None else "factor_tilt"
        raise ConfigError([(f"importance.{field}", f"deal {deal_name!r} has no tenant whose default could be tilted "
                            f"(every tenant of its leases has a forced `default_month`); omit `{field}`")])
    return tilt


def shift_direction(phi: float, months: int, horizon: int | None = None) -> np.ndarray:
    """The direction d of the factor shift: the normals eps[0] (Y_0) and eps[1..h] (innovations to
    the horizon h, default T) shifted by m·d move the mean of every Y_t, t ≤ h, by m, since
    m = φ·m + sqrt(1 − φ²)·m·d_t; after h the shift decays as φ^(t−h)·m."""
    d = np.full(months + 1, np.sqrt((1.0 - phi) / (1.0 + phi)) if phi < 1.0 else 0.0)
    if horizon is not None:
        d[horizon + 1:] = 0.0
    d[0] = 1.0
    return d


MAX_STRATA = 1024
MIN_PER_STRATUM = 16


def strata_count(strata: int | None, paths: int) -> int:
    """K, the factor's strata in a run of ``paths`` paths: the config's ``importance.strata``, or by
    default the largest divisor of ``paths`` up to MAX_STRATA leaving MIN_PER_STRATUM paths a
    stratum (K must divide the paths, so every stratum holds the same number: then the plain
    weighted means are the stratified estimator). 1: not stratified."""
    if strata is not None:
        return strata
    top = min(MAX_STRATA, paths // MIN_PER_STRATUM)
    return next((k for k in range(top, 1, -1) if paths % k == 0), 1)


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

    weighted = False
    strata = 1

    def weights(self, start: int, stop: int) -> None:
        return None

    def plan(self) -> None:
        """None: the kernel reads these draws, it draws nothing itself."""
        return None

    def draws(self, start: int, stop: int) -> Draws:
        n = stop - start
        return Draws(
            eps=np.zeros((n, self.T + 1)), expo=np.full((n, self.n_tenants), np.inf),
            burst_month=np.full(n, self.T + 1, dtype=np.int32), winv=np.ones(n),
            release_counts=np.zeros((n, 0), dtype=np.int32), key=np.zeros(n, dtype=np.uint64),
            key_late=np.zeros(n, dtype=np.uint64), split=np.full(n, self.T + 1, dtype=np.int32),
        )


def draw_source(cfg, tilted: bool = True, plan=None) -> DrawSource | FixedDraws:
    """The draws a config runs on: the counter-based generator (tilted when ``[importance]`` is resolved, see
    engine/simulation/importance.py, unless ``tilted=False``), or the fixed inputs of a deterministic what-if.
    ``plan``: the config's compiled plan, which tilted defaults need (compiled when not given)."""
    if cfg.deterministic is not None:
        return FixedDraws(cfg.run.months, len(cfg.tenants))
    imp = cfg.importance
    if tilted and imp is not None and imp.factor_shift is not None:
        return TiltedDrawSource.for_config(cfg, plan=plan)
    return DrawSource.for_config(cfg)
