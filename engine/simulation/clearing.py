"""Clearing one network of mutual obligations, standalone (MODEL §7).

Convention
----------
n firms. ``L[i, j] ≥ 0`` is what firm i owes firm j this period (``L[i, i] = 0``);
p̄_i = Σ_j L[i, j] and Π[i, j] = L[i, j]/p̄_i (a row of zeros when p̄_i = 0). Firm i has external
assets e_i ≥ 0 and senior external debt d_i ≥ 0, due before any claim of another firm. Given the
payments p, firm i holds ``A_i(p) = e_i + Σ_j Π[j, i]·p_j``.

* Firm i is **solvent** if ``A_i(p) ≥ d_i + p̄_i``: it pays d_i and p̄_i in full, p_i = p̄_i. (The
  test allows a relative 1e-12, ``SOLVENCY_RTOL``, so that a firm exactly at the boundary is not
  pushed into default by rounding.)
* Otherwise it **defaults**: its assets are cut to ``α·e_i + β·Σ_j Π[j, i]·p_j`` (Rogers–Veraart),
  its external creditors are paid first, and the other firms share
  ``p_i = max(0, α·e_i + β·Σ_j Π[j, i]·p_j − d_i)`` in proportion to their claims.

The clearing vector is the **greatest** fixed point of this map. With d = 0 it is the Rogers–Veraart
clearing vector; with also α = β = 1 it is Eisenberg–Noe's, ``p = min(p̄, e + Πᵀp)``. It is found
exactly by the fictitious-default algorithm (``kernels.network.clear_network``).

References
----------
Eisenberg, L. and Noe, T. H. (2001). Systemic risk in financial systems. Management Science 47(2),
236–249.

Rogers, L. C. G. and Veraart, L. A. M. (2013). Failure and rescue in an interbank network.
Management Science 59(4), 882–898.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.market.arrays import check_finite_nonnegative, check_vector
from kernels.network import SOLVENCY_RTOL, clear_network


@dataclass(frozen=True)
class ClearingResult:
    """The clearing of one network.

    Attributes
    ----------
    payments : f8[n]; p, what each firm pays the other firms in total (0 ≤ p ≤ p̄).
    defaulted : bool[n]
    rounds : int; waves of the fictitious-default algorithm that found new defaulters (0..n).
    nominal : f8[n]; p̄, what each firm owes the other firms.
    ratios : f8[n]; p/p̄, 1 where p̄ = 0.
    external_payments : f8[n]; what the senior external creditors receive: d_i from a solvent firm,
        ``min(d_i, α·e_i + β·Σ_j Π[j, i]·p_j)`` from a defaulter.
    equity : f8[n]; ``A_i(p) − d_i − p̄_i`` for a solvent firm, 0 for a defaulter.
    """

    payments: np.ndarray
    defaulted: np.ndarray
    rounds: int
    nominal: np.ndarray
    ratios: np.ndarray
    external_payments: np.ndarray
    equity: np.ndarray


def _unit_interval(name: str, value) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= x <= 1.0:  # also rejects nan
        raise ValueError(f"{name} = {x:g} is outside [0, 1]")
    return x


def _validate(L, e, external_debt) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    L = np.asarray(L, dtype=np.float64)
    if L.ndim != 2 or L.shape[0] != L.shape[1]:
        raise ValueError(f"L must be a square n×n matrix of obligations, got shape {L.shape}")
    n = L.shape[0]
    check_finite_nonnegative("L", L)
    for i in range(n):
        if L[i, i] != 0.0:
            raise ValueError(f"firm {i} owes itself (L[{i},{i}] = {L[i, i]:g}); the diagonal of L must be 0")
    e = check_vector("e", e, n)
    d = np.zeros(n) if external_debt is None else check_vector("external_debt", external_debt, n)
    return np.ascontiguousarray(L), e, d


def clear(L, e, alpha: float = 1.0, beta: float = 1.0, external_debt=None) -> ClearingResult:
    """Greatest clearing vector of the network (convention in the module docstring).

    Parameters
    ----------
    L : array_like, (n, n); L[i, j] is what firm i owes firm j; non-negative, zero diagonal.
    e : array_like, (n,); external assets, non-negative.
    alpha, beta : float in [0, 1]; the share of external and of inter-firm assets a defaulter
        realises (1, 1: no default costs).
    external_debt : array_like, (n,), optional; senior external debt due, non-negative (default 0).

    Returns
    -------
    ClearingResult

    Raises
    ------
    ValueError
        Naming the offending entry: a non-square L or a vector of the wrong length, a negative or
        non-finite obligation, asset or debt, a firm that owes itself, alpha or beta outside [0, 1].
    """
    alpha = _unit_interval("alpha", alpha)
    beta = _unit_interval("beta", beta)
    L, e, d = _validate(L, e, external_debt)
    n = L.shape[0]
    p = np.empty(n)
    flags = np.empty(n, dtype=np.int8)
    rounds = int(clear_network(L, e, d, alpha, beta, p, flags))
    defaulted = flags.astype(bool)
    pbar = L.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(pbar > 0.0, p / np.where(pbar > 0.0, pbar, 1.0), 1.0)
        share = np.where(pbar[:, None] > 0.0, L / np.where(pbar > 0.0, pbar, 1.0)[:, None], 0.0)
    inflow = share.T @ p
    cut = alpha * e + beta * inflow
    external = np.where(defaulted, np.minimum(d, cut), d)
    equity = np.where(defaulted, 0.0, e + inflow - d - pbar)
    return ClearingResult(
        payments=p, defaulted=defaulted, rounds=rounds, nominal=pbar, ratios=ratios,
        external_payments=external, equity=equity,
    )


def fundamental_defaults(L, e, external_debt=None) -> np.ndarray:
    """Firms that default even if every other firm pays in full: ``e_i + Σ_j L[j, i] < d_i + p̄_i``.

    These are the first wave of ``clear``; the rest of its defaulters are contagion.

    Returns
    -------
    bool[n]
    """
    L, e, d = _validate(L, e, external_debt)
    need = d + L.sum(axis=1)
    return e + L.sum(axis=0) < need - SOLVENCY_RTOL * need
