"""Write configs/neocloud_tape.csv: the 10,000-lease tape of configs/neocloud_gpu_abs.toml.

Deterministic (seeded numpy; same file on every run and machine with the same numpy):

    .venv/bin/python configs/make_neocloud_tape.py

Every number below is an assumption for an archetypal neocloud GPU pool, sized from
docs/calibration.md ("GPU-backed lending", "GPU value and rent"):
- fleets of 4–128 GPUs at about $30–50k a GPU (a B200 costs about $50k), ≈ $9bn in total;
- rent of 4.0–5.5% of fleet cost a month (an H100 at ≈ $2.35/hour on a 1-year contract is
  ≈ $1,700 a month, ≈ 5.7% of a ≈ $30k card), so a contract pays back the fleet in ≈ 2 years;
- contracts of 12–48 months, mostly 24–36 (CoreWeave amortises its GPU loans over the contracts);
- most leases have no options; ≈ 15% carry 1–2 twelve-month renewals, ≈ 10% are re-let after a
  default, ≈ 5% have an early-termination option (the tenant leaves when market rent falls below a
  share of its contract rent, paying a fee).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

N = 10_000
SEED = 20260301
OUT = Path(__file__).with_name("neocloud_tape.csv")

# Tenant archetypes and their share of leases (names match [[tenants]] in neocloud_gpu_abs.toml).
STARTUPS = [f"ai_startup_{k:02d}" for k in range(1, 21)]
TENANTS = ["hyperscaler", "ai_lab", "enterprise", *STARTUPS]
WEIGHTS = np.array([0.30, 0.30, 0.10, *([0.30 / len(STARTUPS)] * len(STARTUPS))])


def main() -> None:
    rng = np.random.default_rng(SEED)
    tenant = rng.choice(len(TENANTS), size=N, p=WEIGHTS / WEIGHTS.sum())
    gpus = rng.choice([4, 8, 16, 32, 64, 128], size=N, p=[0.15, 0.25, 0.30, 0.18, 0.09, 0.03])
    gpu_price = rng.uniform(30e3, 50e3, size=N)
    gpu_cost = np.round(gpus * gpu_price, -3)
    rent = np.round(gpu_cost * rng.uniform(0.040, 0.055, size=N), 0)
    term = rng.choice([12, 18, 24, 30, 36, 48], size=N, p=[0.05, 0.10, 0.30, 0.20, 0.25, 0.10])
    start = rng.integers(0, 3, size=N)          # the pool ramps up over the first 2 months

    kind = rng.uniform(size=N)
    renew = kind < 0.15
    relet = (kind >= 0.15) & (kind < 0.25)
    term_opt = (kind >= 0.25) & (kind < 0.30)

    df = pd.DataFrame({
        "id": [f"L{j:05d}" for j in range(N)],
        "tenant": np.array(TENANTS)[tenant],
        "start_month": start,
        "term_months": term,
        "monthly_rent": rent,
        "escalator": 0.0,
        "gpu_cost": gpu_cost,
        "shell_value": 0.0,                     # colocated: the SPV owns GPUs, not buildings
        "recovery": np.where(relet, "relet", "sale"),
        "recovery_lag": rng.integers(3, 7, size=N),
        "sale_lag": 3,
        "liquidation_cost": 0.20,               # used-GPU resale through brokers
        "renewals": np.where(renew, rng.integers(1, 3, size=N), 0),
        "renewal_term": 12,
        "renewal_intercept": np.where(renew, 0.3, 0.0),
        "renewal_beta": np.where(renew, 0.8, 0.0),
        "downtime": np.where(relet, 3, 6),
        "relet_pd": 0.08,
        "relet_rho": 0.5,
        "termination_threshold": np.where(term_opt, 0.6, 0.0),
        "termination_fee_months": np.where(term_opt, 3.0, 0.0),
        "termination_earliest_month": 12,
    })
    df.to_csv(OUT, index=False, float_format="%.10g")
    print(f"wrote {OUT} ({len(df)} leases, gpu_cost {df.gpu_cost.sum() / 1e9:.2f}bn, "
          f"rent {df.monthly_rent.sum() / 1e6:.0f}m a month)")
    print_schedules(df)


def print_schedules(df: pd.DataFrame, share: float = 0.50, notes=(("A", 4.5e9), ("B", 1.1e9), ("C", 0.5e9))) -> None:
    """Print the `target_schedule` of classes A, B and C in neocloud_gpu_abs.toml: matched to the
    contracts, the classes are paid down in turn with `share` of each month's contracted rent
    (original terms, no renewals, no defaults)."""
    months = np.arange(0, 61)
    s, e = df.start_month.to_numpy(), (df.start_month + df.term_months).to_numpy()
    rent = np.array([df.monthly_rent.to_numpy()[(s < t) & (t <= e)].sum() for t in months])
    paid = np.minimum(np.cumsum(share * rent), sum(b for _, b in notes))
    before = 0.0
    for name, balance in notes:
        target = np.clip(balance - (paid - before), 0.0, balance)
        pts = [(int(t), float(np.round(target[t] / 1e6) * 1e6)) for t in months if target[t] < balance]
        last = next(i for i, (_, b) in enumerate(pts) if b == 0.0) if pts[-1][1] == 0.0 else len(pts) - 1
        pts = pts[: last + 1]
        body = ", ".join(f"[{t}, {b / 1e9:.3f}e9]" for t, b in pts)
        print(f"{name}: target_schedule = [{body}]")
        before += balance


if __name__ == "__main__":
    main()
