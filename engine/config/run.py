"""The `run` and `deterministic` sections: run size, seed and horizon; the one-path what-if."""

from __future__ import annotations

import datetime
from typing import Literal

from pydantic import Field, field_validator

from engine.config.base import FactorValue, Month, _Section


class RunConfig(_Section):
    """How many paths, over how many months, and how they are executed."""

    paths: int = Field(100_000, ge=1, le=10**10, description="Number of Monte Carlo paths.")
    seed: int = Field(20251022, ge=0, le=2**63 - 1, description="Root seed: the key of the counter-based generator every path draws from (docs/model.md §0).")
    months: int = Field(
        ..., ge=1, le=600, description="Simulation horizon T in months; every legal final must fit in it."
    )
    chunk_paths: int = Field(
        16_384,
        ge=1,
        le=10**7,
        description="Paths per execution chunk. Results do not depend on it; memory does.",
    )
    threads: int = Field(
        0, ge=0, le=1024, description="Numba threads; 0 uses numba's default (all cores)."
    )
    discount_rate: float = Field(
        0.045, ge=0.0, le=1.0, description="Annual rate used to discount tranche cash for `pv`."
    )
    start_date: datetime.date | None = Field(
        None,
        description=(
            "Calendar date of month 0, the closing (TOML `2025-10-31`). Statements (`dcabs trace`) then "
            "carry a `date` column, the last day of each month; nothing simulated depends on it."
        ),
    )
    pd_calibration: Literal["unconditional", "monthly_hazard"] = Field(
        "unconditional",
        description=(
            "How tenant thresholds c_i are set from annual PDs: `unconditional` matches the 12-month "
            "PD under the factor process (MODEL.md §2); `monthly_hazard` is the naive "
            "c = Φ⁻¹(1−(1−p)^(1/12))."
        ),
    )


class DeterministicConfig(_Section):
    """A what-if with no randomness: the factor path is given, tenants default only in their
    `default_month`, every renewal is decided by Φ(a + b·X_t) ≥ ½, replacement tenants never
    default, and chip releases follow the schedule. The run has one path."""

    factor: list[tuple[Month, FactorValue]] = Field(
        ..., min_length=1,
        description="[[month, X], ...]: X_t interpolated linearly between the points, flat outside them.",
    )

    @field_validator("factor")
    @classmethod
    def _increasing(cls, pts: list[tuple[int, float]]) -> list[tuple[int, float]]:
        months = [m for m, _ in pts]
        if any(b <= a for a, b in zip(months, months[1:])):
            raise ValueError("months must be increasing")
        return pts
