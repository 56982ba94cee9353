"""Closed-form references of the homogeneous static-factor pool (MODEL §1–2), computed with
scipy/numpy from the model's equations, never from engine output. Used by test_validation.py and
test_importance.py (and by the command in docs/validation.md, through test_validation)."""

from __future__ import annotations

import numpy as np
from scipy import integrate, special, stats


def expect_normal(f, points=None) -> float:
    """E[f(X)], X ~ N(0, 1), by adaptive quadrature (the tails beyond ±12 weigh < 1e-32)."""
    val, _ = integrate.quad(lambda x: f(x) * stats.norm.pdf(x), -12.0, 12.0, points=points,
                            epsabs=1e-13, epsrel=1e-11, limit=500)
    return val


def monthly_pd(c: float, rho: float):
    """q(x) = Φ((c − √ρ x)/√(1−ρ)): the conditional monthly PD given a static factor x."""
    s, r = np.sqrt(rho), 1.0 / np.sqrt(1.0 - rho)
    return lambda x: special.ndtr((c - s * x) * r)


def horizon_pd(c: float, rho: float, months: int):
    """P(x) = 1 − (1 − q(x))^months: P(τ ≤ months | X = x) under a static factor."""
    q = monthly_pd(c, rho)
    return lambda x: 1.0 - (1.0 - q(x)) ** months


def binomial_tranche_el(n: int, c: float, rho: float, months: int, lgd: float, attach: float, detach: float) -> float:
    """E[min(max(NL − A, 0), D − A)/(D − A)] with NL = lgd·k/n, k | x ~ Binomial(n, P(x)), x ~ N(0, 1)."""
    k = np.arange(n + 1)
    payoff = np.minimum(np.maximum(lgd * k / n - attach, 0.0), detach - attach) / (detach - attach)
    P = horizon_pd(c, rho, months)
    return expect_normal(lambda x: float(stats.binom.pmf(k, n, P(x)) @ payoff))


def t_copula_horizon_pd(c: float, rho: float, nu: float, months: int, nx: int, nw: int, xmax: float = 12.0):
    """P(x, w) = 1 − (1 − Φ((c·w − √ρ x)/√(1−ρ)))^months on a tensor Gauss–Legendre grid, with its
    weights: X on [−xmax, xmax] (weights × the normal density), w = 1/sqrt(W) = sqrt(χ²_ν/ν) on
    [0, 7] (P(χ²_5 > 245) < 1e-50; weights × its density 2νw·f_{χ²_ν}(νw²)). Returns (P[w, x], ww, wx)."""
    x, wx = np.polynomial.legendre.leggauss(nx)
    x, wx = xmax * x, xmax * wx * stats.norm.pdf(xmax * x)
    w, ww = np.polynomial.legendre.leggauss(nw)
    w = 3.5 * (w + 1.0)
    ww = 3.5 * ww * 2.0 * nu * w * stats.chi2.pdf(nu * w * w, nu)
    q = special.ndtr((c * w[:, None] - np.sqrt(rho) * x[None, :]) / np.sqrt(1.0 - rho))
    with np.errstate(divide="ignore"):
        return -np.expm1(months * np.log1p(-q)), ww, wx
