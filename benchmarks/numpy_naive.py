"""The naive vectorised-numpy version: one Bernoulli per tenant per month for default.

Same model as ``numpy_reference`` (docs/model.md §0–5): tenant i, alive at the start of month t,
defaults in month t with probability q_i(t), drawn as one uniform per (path, tenant, month) with
default at the first month where u_t < q_i(t). That is the same law as the reference's Exp(1) /
cumulative-hazard draw (P(τ = t | τ ≥ t) = q_i(t) in both), only with T uniforms per tenant instead
of one exponential, and q_i(t) recomputed for every tenant. Factor, collateral, leases and
waterfall are the reference's code.

    .venv/bin/python benchmarks/numpy_naive.py [config.toml|base|qlpool] [paths]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy.special import ndtr

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy_reference as ref  # noqa: E402


def default_months_bernoulli(P, X, rng):
    """tau[n, N]: first month t ≥ 1 with u_{i,t} < q_i(t), u ~ U(0,1) per tenant and month; T+1 if none."""
    n, T1 = X.shape
    T = T1 - 1
    N = P["n_tenants"]
    tau = np.empty((n, N), dtype=np.int64)
    for i in range(N):
        k = P["tenant_class"][i]
        c, r = P["class_c"][k], P["class_rho"][k]
        q = ndtr((c - np.sqrt(r) * X[:, 1:]) / np.sqrt(1.0 - r))        # [n, T], months 1..T
        hit = rng.random((n, T)) < q
        tau[:, i] = np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, T + 1)
    return np.minimum(tau, P["forced"][None, :])


def simulate(cfg, n_paths: int, seed: int = 0, *, chunk: int = 50_000, prepared: dict | None = None) -> dict:
    """Same outputs as :func:`numpy_reference.simulate`, with per-month Bernoulli defaults."""
    return ref.simulate(cfg, n_paths, seed, chunk=chunk, default_months=default_months_bernoulli, prepared=prepared)


def check_against_engine(config_path_or_dict, paths: int = 50_000, seed: int = 54321, verbose: bool = True):
    """Engine vs this naive implementation: ELs, SEs and z per tranche and view."""
    return ref.check_against_engine(config_path_or_dict, paths, seed, simulate_fn=simulate, label="naive",
                                    verbose=verbose)


if __name__ == "__main__":
    spec = sys.argv[1] if len(sys.argv) > 1 else "base"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 50_000
    check_against_engine(spec, n)
