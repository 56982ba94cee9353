"""Tranche marks at the stress horizon by least-squares Monte Carlo, checked against a nested
re-simulation, and the implied ratings they give (MODEL §6.1–6.2).

A tranche's price at h, per unit of the balance outstanding then, is the expected value of the
cash it receives after h, discounted to h at its own coupon (so a tranche paid as promised is worth
par), given the state at h. Each path's realised value ``y = tranche_h_value / tranche_h_balance``
is regressed on the basis

    1, X_h, D_h, G_h, B_h, C_h, and the squares of the last five

(X_h the factor, D_h the deal's defaulted share of scheduled rent, G_h the GPU value index, B_h the
tranche's outstanding fraction, C_h the deal's interest coverage), on the paths where the tranche is
still outstanding. The fit uses paths 0..pilot−1 of the run (``contagion.pilot_paths``): the same
paths whatever the chunking, so the marks, like everything else, do not depend on how a run is cut.
The fitted value, clipped to [0, 1.05], is the path's price.

The nested check re-simulates, for a few outer paths, many inner paths that share the outer path's
whole history up to h and draw everything after h afresh: new factor innovations, a new burst month
if the burst had not happened (the geometric law is memoryless), for every tenant that had not
defaulted a new Exp(1) default threshold above its cumulative hazard at h (memoryless again), and
new option draws after h (``Draws.key_late``). The inner paths' mean value is the price given the
full state at h; its difference from the regression's price is the error of the marks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.market import ratings
from engine.plan.compile import Plan
from kernels.credit import class_cumulative_hazard
from kernels.factor import factor_path
from kernels.plan import Draws

PRICE_CAP = 1.05
BASIS = ("const", "factor", "defaulted", "gpu_index", "outstanding", "coverage",
         "factor^2", "defaulted^2", "gpu_index^2", "outstanding^2", "coverage^2")
# Spawn key of the nested re-simulation's draws, apart from the run's (block, stream) keys.
_NESTED_STREAM = 1_000_003


def basis(out, k: int, d: int) -> np.ndarray:
    """The regression basis of tranche k (of deal d) on every path of ``out`` (PathOutputs): f8[n, 11]."""
    x = np.stack([out.h_factor, out.deal_h_defaulted[:, d], out.h_gpu, out.tranche_h_balance[:, k], out.deal_h_coverage[:, d]], axis=1)
    return np.concatenate([np.ones((x.shape[0], 1)), x, x * x], axis=1)


def realised(out, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(alive, y): paths where tranche k is outstanding at h, and their value per unit outstanding."""
    bal = out.tranche_h_balance[:, k]
    alive = bal > 0.0
    y = np.full(bal.shape, np.nan)
    y[alive] = out.tranche_h_value[alive, k] / bal[alive]
    return alive, y


@dataclass(frozen=True)
class Marks:
    """The fitted marks of every tranche.

    coef : f8[K, 11]; standardised regression coefficients (``scale``, ``shift`` undo it).
    r2 : f8[K]; in-sample R² of the fit (NaN when fewer alive pilot paths than basis functions).
    fit_paths : i8[K]; pilot paths the tranche was outstanding on.
    wal : f8[K]; mean remaining WAL after h on the pilot (years), the implied ratings' horizon.
    """

    coef: np.ndarray
    shift: np.ndarray
    scale: np.ndarray
    r2: np.ndarray
    fit_paths: np.ndarray
    wal: np.ndarray
    tranche_deal: np.ndarray

    def price(self, out) -> np.ndarray:
        """Price per unit outstanding of every tranche on every path of ``out``: f8[n, K], NaN where
        the tranche is no longer outstanding at h."""
        n, K = out.tranche_h_balance.shape
        prices = np.full((n, K), np.nan)
        for k in range(K):
            alive = out.tranche_h_balance[:, k] > 0.0
            if not alive.any():
                continue
            Z = (basis(out, k, self.tranche_deal[k])[alive] - self.shift[k]) / self.scale[k]
            prices[alive, k] = np.clip(Z @ self.coef[k], 0.0, PRICE_CAP)
        return prices

    def notches(self, prices: np.ndarray) -> np.ndarray:
        """Implied rating notch (``ratings.NOTCHES`` index) per path and tranche: EL = 1 − price at the
        tranche's remaining WAL. A tranche no longer outstanding gets the best notch (it is not held)."""
        el = np.clip(1.0 - np.nan_to_num(prices, nan=1.0), 0.0, 1.0)
        return np.asarray(ratings.implied_notch(el, np.broadcast_to(self.wal, el.shape)), dtype=np.int64)


def fit(out, tranche_deal: np.ndarray) -> Marks:
    """Least-squares fit of every tranche's marks on the pilot paths ``out``."""
    n, K = out.tranche_h_balance.shape
    nb = len(BASIS)
    coef, shift, scale = np.zeros((K, nb)), np.zeros((K, nb)), np.ones((K, nb))
    r2, used, wal = np.full(K, np.nan), np.zeros(K, dtype=np.int64), np.full(K, 1.0)
    for k in range(K):
        alive, y = realised(out, k)
        used[k] = int(alive.sum())
        w = out.tranche_h_wal[alive, k]
        if np.isfinite(w).any():
            wal[k] = max(float(np.nanmean(w)), 1.0 / 12.0)
        if used[k] == 0:
            # Never outstanding on the pilot: no data to fit. Par is the neutral mark (no direct
            # loss) for the rare run path where it is outstanding; docs/model.md §6 says so.
            coef[k, 0] = 1.0
            continue
        X = basis(out, k, tranche_deal[k])[alive]
        yk = y[alive]
        # Standardised columns keep the normal equations well conditioned; a constant column (no
        # variation on the pilot) is left at scale 1 and the minimum-norm solution ignores it.
        mu = X.mean(axis=0)
        sd = X.std(axis=0)
        const = sd == 0.0  # the intercept, and any state that did not vary on the pilot
        mu[const], sd[const] = 0.0, 1.0
        Z = (X - mu) / sd
        beta, *_ = np.linalg.lstsq(Z, yk, rcond=None)
        coef[k], shift[k], scale[k] = beta, mu, sd
        resid = yk - Z @ beta
        sst = float(((yk - yk.mean()) ** 2).sum())
        if used[k] > nb:
            r2[k] = 1.0 - float(resid @ resid) / sst if sst > 0.0 else 1.0
    return Marks(coef=coef, shift=shift, scale=scale, r2=r2, fit_paths=used, wal=wal, tranche_deal=np.asarray(tranche_deal))


def nested_draws(plan: Plan, outer: Draws, h: int, inner: int, seed: int, path: int, *, burst_hazard: float,
                 fixed_burst: bool, poisson_rate: float | None) -> Draws:
    """``inner`` paths sharing outer path's history (``outer``, n = 1) up to month h, fresh after it."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(_NESTED_STREAM, path))))
    T = outer.eps.shape[1] - 1
    eps = np.repeat(outer.eps, inner, axis=0)
    eps[:, h + 1:] = rng.standard_normal((inner, T - h))
    B = int(outer.burst_month[0])
    burst = np.full(inner, B, dtype=np.int32)
    if B > h and not fixed_burst and burst_hazard > 0.0:
        if burst_hazard >= 1.0:
            burst[:] = h + 1
        else:
            g = np.ceil(np.log1p(-rng.random(inner)) / np.log1p(-burst_hazard))
            burst = np.clip(h + np.maximum(g, 1), 1, T + 1).astype(np.int32)
    # Which tenants had defaulted by h by their own hazard: those whose threshold the outer path's
    # cumulative hazard at h had reached. The others draw a new threshold above it.
    X = np.empty(T + 1)
    fp, cp = plan.factor, plan.credit
    factor_path(outer.eps[0], fp.phi, fp.innovation_scale, int(outer.burst_month[0]), fp.burst_shift, X)
    H = np.empty((cp.class_c.shape[0], T + 1))
    class_cumulative_hazard(X, cp.class_c, cp.class_sqrt_rho, cp.class_inv_sqrt_1mrho, float(outer.winv[0]), cp.hazard_table, H)
    Hh = H[cp.tenant_class, h]
    expo = np.repeat(outer.expo, inner, axis=0)
    survived = outer.expo[0] > Hh
    expo[:, survived] = Hh[survived] + rng.standard_exponential((inner, int(survived.sum())))
    counts = np.repeat(outer.release_counts, inner, axis=0)
    if poisson_rate is not None and counts.shape[1]:
        counts[:, h + 1:] = rng.poisson(poisson_rate, (inner, T - h)).astype(np.int32)
    return Draws(
        eps=eps, expo=np.ascontiguousarray(expo), burst_month=burst, winv=np.repeat(outer.winv, inner),
        release_counts=counts, key=np.repeat(outer.key, inner),
        key_late=rng.integers(0, 2**64, inner, dtype=np.uint64, endpoint=False), split=np.full(inner, h, dtype=np.int32),
    )


@dataclass(frozen=True)
class NestedCheck:
    """The marks against nested re-simulation, per tranche.

    outer : i8[K]; outer paths where the tranche was outstanding. rmse, max_abs : f8[K]; error of
    the regression price against the nested price. se : f8[K]; mean standard error of the nested
    prices (the check's own noise). bias : f8[K]; mean (regression − nested).
    """

    outer: np.ndarray
    rmse: np.ndarray
    max_abs: np.ndarray
    se: np.ndarray
    bias: np.ndarray
    inner: int


def nested_check(plan: Plan, source, marks: Marks, cfg, simulate) -> NestedCheck:
    """Re-simulate ``contagion.nested_paths`` outer paths with ``nested_inner`` inner paths each and
    compare the regression's prices with the inner means (``simulate(plan, draws)`` runs the kernel
    on given draws). The outer paths are the ones right after the pilot's, so the check is out of
    sample (their draws exist whether or not the run reaches them)."""
    c = cfg.contagion
    h, n_outer, inner = c.horizon_month, c.nested_paths, c.nested_inner
    first = min(c.pilot_paths, cfg.run.paths)
    K = plan.deals.tranche_balance.size
    errs: list[list[float]] = [[] for _ in range(K)]
    ses: list[list[float]] = [[] for _ in range(K)]
    g = cfg.gpu
    for p in range(first, first + n_outer):
        outer_draws = source.draws(p, p + 1)
        outer = simulate(plan, outer_draws)
        reg = marks.price(outer)[0]
        draws = nested_draws(plan, outer_draws, h, inner, cfg.run.seed, p, burst_hazard=cfg.factor.burst.monthly_hazard,
                             fixed_burst=cfg.factor.burst.month is not None,
                             poisson_rate=1.0 / g.generation_interval_months if g.releases == "poisson" else None)
        inn = simulate(plan, draws)
        if not np.allclose(inn.tranche_h_balance, outer.tranche_h_balance, rtol=1e-12, atol=1e-12):
            raise RuntimeError(f"nested re-simulation of path {p} changed the history before the horizon; this is a bug")
        for k in range(K):
            if outer.tranche_h_balance[0, k] <= 0.0:
                continue
            y = inn.tranche_h_value[:, k] / inn.tranche_h_balance[:, k]
            errs[k].append(reg[k] - y.mean())
            ses[k].append(y.std(ddof=1) / np.sqrt(inner))
    e = [np.array(x) for x in errs]
    return NestedCheck(
        outer=np.array([x.size for x in e], dtype=np.int64),
        rmse=np.array([np.sqrt(np.mean(x * x)) if x.size else np.nan for x in e]),
        max_abs=np.array([np.abs(x).max() if x.size else np.nan for x in e]),
        se=np.array([np.mean(s) if s else np.nan for s in ses]),
        bias=np.array([x.mean() if x.size else np.nan for x in e]),
        inner=inner,
    )
