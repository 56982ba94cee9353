"""Shared test set-up: hypothesis profile and small config builders."""

from __future__ import annotations

import copy
import os

import pytest
from hypothesis import HealthCheck, settings

from engine.config import validate_config

# numba compiles on first call, far beyond hypothesis' default deadline.
settings.register_profile(
    "dcabs", deadline=None, max_examples=int(os.environ.get("DCABS_HYPOTHESIS_EXAMPLES", "40")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    # CI must be reproducible: the same examples every run. Set DCABS_HYPOTHESIS_RANDOM=1 to explore.
    derandomize=not os.environ.get("DCABS_HYPOTHESIS_RANDOM"),
)
settings.load_profile("dcabs")

BASE = {
    "run": {"months": 60, "paths": 2000, "seed": 11, "chunk_paths": 1000},
    "factor": {"persistence": 0.95, "burst": {"monthly_hazard": 0.02, "shift": -1.0}},
    "gpu": {"economic_life_months": 30, "obsolescence_haircut": 0.1},
    "tenants": [
        {"name": "lab", "pd": 0.06, "rho": 0.3},
        {"name": "hyper", "pd": 0.01, "rho": 0.2},
        {"name": "neo", "pd": 0.10, "rho": 0.4},
    ],
    "deals": [
        {
            "name": "d1",
            "legal_final_month": 60,
            "leases": [
                {"tenant": "lab", "term_months": 48, "monthly_rent": 1.2e6, "gpu_cost": 50e6, "shell_value": 20e6},
                {"tenant": "hyper", "start_month": 6, "term_months": 54, "monthly_rent": 0.8e6, "escalator": 0.03, "shell_value": 30e6},
                {"tenant": "neo", "term_months": 36, "monthly_rent": 0.5e6, "gpu_cost": 20e6, "recovery_lag": 3},
            ],
            "tranches": [
                {"name": "A", "balance": 60e6, "coupon": 0.06, "attach": 0.3, "detach": 1.0},
                {"name": "B", "balance": 20e6, "coupon": 0.09, "attach": 0.1, "detach": 0.3},
                {"name": "E", "balance": 20e6, "attach": 0.0, "detach": 0.1},
            ],
            "reserve": {"initial_balance": 1e6, "target_months": 6, "rate": 0.03},
            "fees": {"bps": 20, "fixed_monthly": 10_000},
            "waterfall": [
                {"type": "fees"},
                {"type": "interest", "classes": ["A"]},
                {"type": "reserve"},
                {"type": "interest", "classes": ["B"]},
                {"type": "principal", "classes": ["A", "B", "E"]},
                {"type": "residual"},
            ],
        }
    ],
}


def base_dict() -> dict:
    """A deep copy of the small three-tenant, one-deal config used across tests."""
    return copy.deepcopy(BASE)


def make_config(data: dict | None = None, base_dir="."):
    return validate_config(base_dict() if data is None else data, base_dir=base_dir)


@pytest.fixture
def small_config():
    return make_config()
