"""The naive numpy version: the model evaluated lease by lease and month by month.

This is the baseline of the issue's "numpy, one Bernoulli draw per lease-month" row: what a quant
writes by transcribing the model literally, vectorised over paths (and over the leases of a month)
but with no algorithmic shortcut. It is the same model as ``numpy_reference`` (docs/model.md §0–5)
and the engine, with its own random numbers, so it agrees with them statistically (tranche ELs
within 4 standard errors), not path by path.

What is naive, exactly — per path, every month t = 1..T and every lease j (tenant i = i(j)):

- **Conditional PD per lease-month.** q = Φ((c_i − √ρ_i·X_t)/√(1−ρ_i)) is evaluated for every
  lease in every month (L·T normal CDFs a path), although it depends only on the tenant's hazard
  class and the month (the reference: classes·T; the engine: the same, per hazard class).
- **One Bernoulli evaluation per lease-month.** A lease whose tenant is still alive defaults in
  month t iff U_{i,t} < q, U_{i,t} being the tenant's uniform for that month (one draw per
  tenant-month), so the leases of one tenant default together, in the same month, as in the model.
  P(τ = t | τ ≥ t) = q_i(t) is exactly the law of the reference's one Exp(1) per tenant against the
  cumulative hazard Σ −ln(1 − q_i(u)); this version spends T uniforms per tenant and L·T comparisons
  where the reference spends one exponential and a search.
- **Collections per lease-month, with no aggregation.** Every month, every lease's contract rent
  is multiplied by its own alive flag and summed (the reference sums rent schedules per tenant once
  and stops a tenant's whole schedule at τ); the collateral value (depreciated GPU + facility, times
  the month's value indices) is computed for every lease every month, and used when that month is
  the lease's recovery month (τ + recovery_lag, after a default within the term) or terminal-sale
  month (end + sale_lag, tenant alive through the term). NL_T is accumulated month by month: rent
  lost in every month from τ, plus the collateral not recovered by T.

The factor paths and the waterfall (a per-deal, per-month recursion that has no per-lease work) are
the reference's functions (``numpy_reference.factor_paths``, ``numpy_reference.deal_outputs``).

    .venv/bin/python benchmarks/numpy_naive.py [config.toml|base|qlpool] [paths]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy.special import ndtr

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy_reference as ref  # noqa: E402


def _leases(P) -> dict:
    """All leases of all deals side by side, with their tenant's threshold and correlation."""
    c = P["class_c"][P["tenant_class"]]
    rho = P["class_rho"][P["tenant_class"]]
    cols = {k: np.concatenate([D["lease"][k] for D in P["deals"]])
            for k in ("tenant", "start", "end", "gpu", "shell", "a0", "fixed", "rr", "rec_lag", "sale_lag", "liq")}
    cols["rent"] = np.concatenate([D["lease"]["rent"] for D in P["deals"]], axis=0)       # [L, T+1]
    cols["deal"] = np.concatenate([np.full(len(D["lease"]["tenant"]), d) for d, D in enumerate(P["deals"])])
    cols["c"] = c[cols["tenant"]]
    cols["sqrt_rho"] = np.sqrt(rho[cols["tenant"]])
    cols["sqrt_1m_rho"] = np.sqrt(1.0 - rho[cols["tenant"]])
    cols["forced"] = P["forced"][cols["tenant"]]
    return cols


def simulate_block(P, n, rng):
    """One block of ``n`` paths, lease by lease and month by month (see the module docstring)."""
    T = P["T"]
    X = ref.factor_paths(P, n, rng)
    gidx, sidx = ref.value_indices(P, X)
    L = _leases(P)
    n_leases = len(L["tenant"])
    n_deals = len(P["deals"])
    collateral = L["gpu"] + L["shell"]
    keep = 1.0 - L["liq"]
    alive = np.ones((n, n_leases), dtype=bool)           # the lease's tenant has not defaulted yet
    tau = np.full((n, n_leases), T + 1, dtype=np.int64)
    loss = np.zeros((n, n_leases))                        # per-lease NL_T numerator
    cash = np.zeros((n_deals, n, T + 1))
    for t in range(1, T + 1):
        U = rng.random((n, P["n_tenants"]))               # one uniform per tenant and month
        # The conditional PD of every lease in this month, and its Bernoulli default test.
        q = ndtr((L["c"][None, :] - L["sqrt_rho"][None, :] * X[:, t:t + 1]) / L["sqrt_1m_rho"][None, :])
        hit = alive & ((U[:, L["tenant"]] < q) | (L["forced"] == t)[None, :])
        tau = np.where(hit, t, tau)
        alive = alive & ~hit
        # Rent of every lease this month, and the rent lost by every lease whose tenant has defaulted.
        rent_t = L["rent"][:, t][None, :]
        got = rent_t * alive
        loss += rent_t * ~alive
        # The collateral value of every lease this month (sale rule).
        age = np.maximum(t - L["a0"], 0.0)
        value = (L["gpu"][None, :] * ref.gpu_depreciation(P, age)[None, :] * gidx[:, t:t + 1]
                 + L["shell"][None, :] * max(0.0, 1.0 - t / P["shell_life"]) * sidx[:, t:t + 1]) * keep[None, :]
        # Recovery after a default within the term, in month τ + recovery_lag.
        recovering = (tau <= L["end"][None, :]) & (tau + L["rec_lag"][None, :] == t)
        proceeds = np.where(L["fixed"][None, :], (L["rr"] * collateral)[None, :], value)
        got = got + np.where(recovering, proceeds, 0.0)
        loss += np.where(recovering, np.maximum(0.0, collateral[None, :] - proceeds), 0.0)
        # Terminal sale at end + sale_lag of a lease whose tenant survived the term.
        selling = (tau > L["end"][None, :]) & (L["end"] + L["sale_lag"] == t)[None, :]
        got = got + np.where(selling, value, 0.0)
        for d in range(n_deals):
            cash[d, :, t] = got[:, L["deal"] == d].sum(axis=1)
    # A default within the term whose recovery falls after T recovers nothing.
    lost = (tau <= np.minimum(L["end"], T)[None, :]) & (tau + L["rec_lag"][None, :] > T)
    loss += np.where(lost, collateral[None, :], 0.0)
    per_deal, nls = [], []
    for d, D in enumerate(P["deals"]):
        total = loss[:, L["deal"] == d].sum(axis=1)
        nl = np.minimum(total / D["p0"], 1.0) if D["p0"] > 0 else np.zeros(n)
        per_deal.append(ref.deal_outputs(D, cash[d], nl))
        nls.append(nl)
    return ref.assemble(P, per_deal, nls)


def simulate(cfg, n_paths: int, seed: int = 0, *, chunk: int = 5_000, prepared: dict | None = None) -> dict:
    """Same outputs as :func:`numpy_reference.simulate`, computed lease by lease and month by month."""
    return ref.simulate(cfg, n_paths, seed, chunk=chunk, prepared=prepared, block=simulate_block)


def check_against_engine(config_path_or_dict, paths: int = 20_000, seed: int = 54321, verbose: bool = True):
    """Engine vs this naive implementation: ELs, SEs and z per tranche and view."""
    return ref.check_against_engine(config_path_or_dict, paths, seed, simulate_fn=simulate, label="naive",
                                    verbose=verbose)


if __name__ == "__main__":
    spec = sys.argv[1] if len(sys.argv) > 1 else "base"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
    check_against_engine(spec, n)
