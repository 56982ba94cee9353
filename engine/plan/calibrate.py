"""Default thresholds c_i from annual PDs (MODEL §2, "Calibrating c_i").

``unconditional`` (the default) solves E[1 − Π_{t=1..12}(1 − q(t))] = p under the configured factor
process without burst:
* ρ = 0 with the Gaussian copula: the factor drops out and q is the monthly hazard exactly;
* φ = 1 with the Gaussian copula: a one-dimensional integral over X = Y_0, by adaptive quadrature;
* otherwise: a fixed, scrambled Sobol sample of 2^16 factor paths (and t-copula mixing variables),
  seeded by ``CALIBRATION_SEED``, so every run and machine gets the same c_i.

``monthly_hazard`` is the naive c = F⁻¹(1 − (1 − p)^(1/12)), F the latent variable's CDF.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import integrate, optimize, special, stats
from scipy.stats import qmc

CALIBRATION_SEED = 0xDCAB5
CALIBRATION_LOG2_SAMPLE = 16
_BRACKET = (-60.0, 60.0)


def monthly_hazard_threshold(pd: float, nu: float | None) -> float:
    """The naive threshold: the monthly PD whose 12-fold survival gives 1 − p."""
    if pd <= 0.0:
        return -np.inf
    q = -np.expm1(np.log1p(-pd) / 12.0)
    return float(stats.t.ppf(q, nu) if nu else special.ndtri(q))


def _pd_static(c: float, rho: float) -> float:
    s, r = np.sqrt(rho), 1.0 / np.sqrt(1.0 - rho)

    def integrand(x: float) -> float:
        q = special.ndtr((c - s * x) * r)
        with np.errstate(divide="ignore"):
            return -np.expm1(12.0 * np.log1p(-q)) * np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi)

    val, _ = integrate.quad(integrand, -12.0, 12.0, epsabs=1e-14, epsrel=1e-12, limit=400)
    return val


class _Sample:
    """The fixed calibration sample: 12 months of X and the t-copula's 1/sqrt(W) per sample path."""

    def __init__(self, phi: float, nu: float | None):
        d = 13 + (1 if nu else 0)
        u = qmc.Sobol(d, scramble=True, seed=CALIBRATION_SEED).random_base2(CALIBRATION_LOG2_SAMPLE)
        u = np.clip(u, 1e-15, 1 - 1e-15)
        z = special.ndtri(u[:, :13])
        y = z[:, 0].copy()
        X = np.empty((z.shape[0], 12))
        scale = np.sqrt(max(0.0, 1.0 - phi * phi))
        for t in range(12):
            y = phi * y + scale * z[:, t + 1]
            X[:, t] = y
        self.X = X
        self.winv = np.sqrt(special.chdtri(nu, 1.0 - u[:, 13]) / nu)[:, None] if nu else 1.0

    def pd(self, c: float, rho: float) -> float:
        q = special.ndtr((c * self.winv - np.sqrt(rho) * self.X) / np.sqrt(1.0 - rho))
        with np.errstate(divide="ignore"):  # q = 1 at the far end of the bracket: survival 0
            return float(np.mean(-np.expm1(np.log1p(-q).sum(axis=1))))


@lru_cache(maxsize=8)
def _sample(persistence: float, student_t_dof: float | None) -> _Sample:
    return _Sample(persistence, student_t_dof)


@lru_cache(maxsize=4096)
def _threshold(p: float, r: float, persistence: float, student_t_dof: float | None, method: str) -> float:
    if p <= 0.0:
        return -np.inf
    if method == "monthly_hazard" or (r == 0.0 and not student_t_dof):
        return monthly_hazard_threshold(p, student_t_dof)
    if persistence == 1.0 and not student_t_dof:
        return optimize.brentq(lambda c: _pd_static(c, r) - p, *_BRACKET, xtol=1e-12)
    sample = _sample(persistence, student_t_dof)
    return optimize.brentq(lambda c: sample.pd(c, r) - p, *_BRACKET, xtol=1e-12)


def calibrate_thresholds(pds, rhos, *, persistence: float, student_t_dof: float | None, method: str) -> np.ndarray:
    """Threshold c for each (pd, rho) pair. Solutions are cached, so identical pairs are solved once
    per process (sweeps and scenarios re-use them)."""
    nu = float(student_t_dof) if student_t_dof else None
    return np.array([_threshold(float(p), float(r), float(persistence), nu, method) for p, r in zip(pds, rhos)])
