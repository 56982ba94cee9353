"""Numba kernels. Imports only numpy, numba and math; never pandas, pyarrow, pydantic or ``engine``."""

from .plan import CollateralPlan, CreditPlan, DealPlan, Draws, FactorPlan, Ledgers, PathOutputs, PoolPlan, empty_outputs, no_ledgers
from .simulate import simulate_chunk

__all__ = [
    "CollateralPlan", "CreditPlan", "DealPlan", "Draws", "FactorPlan", "Ledgers", "PathOutputs", "PoolPlan",
    "empty_outputs", "no_ledgers", "simulate_chunk",
]
