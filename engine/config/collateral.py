"""The `gpu`, `facility` and `market_rent` sections (MODEL §3)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from engine.config.base import _Section


class GpuConfig(_Section):
    """GPU fleet value: depreciation curve, obsolescence at chip releases, factor loading (§3)."""

    economic_life_months: float = Field(
        30.0, gt=0.0, le=240.0, description="Economic life L of a GPU fleet (straight-line curve)."
    )
    curve: Literal["straight_line", "exponential"] = Field(
        "straight_line", description="Depreciation curve D(a)."
    )
    half_life_months: float = Field(
        12.0, gt=0.0, le=240.0, description="Half-life of the exponential curve."
    )
    salvage: float = Field(0.05, ge=0.0, le=1.0, description="Floor of D(a) as a fraction of cost.")
    obsolescence_haircut: float = Field(
        0.10, ge=0.0, lt=1.0, description="Cut κ in every existing fleet's value at each chip release."
    )
    generation_interval_months: float = Field(
        18.0, gt=0.0, le=240.0, description="Months between chip releases (mean, when Poisson)."
    )
    first_release_month: int = Field(
        12, ge=1, le=600, description="Month of the first scheduled release."
    )
    releases: Literal["scheduled", "poisson"] = Field(
        "scheduled", description="Releases on a fixed schedule, or as a Poisson process."
    )
    factor_beta: float = Field(
        0.3, ge=0.0, le=5.0, description="Loading β_g of GPU value on the factor."
    )


class FacilityConfig(_Section):
    """Shell, power and cooling: slow straight-line depreciation and a factor loading (§3)."""

    life_months: float = Field(
        300.0, gt=0.0, le=1200.0, description="Life L_s of the facility in months."
    )
    factor_beta: float = Field(
        0.1, ge=0.0, le=5.0, description="Loading β_s of facility value on the factor."
    )


class MarketRentConfig(_Section):
    """The market-rent index m_t = O_t·exp(β_r X_t − β_r²/2), used for renewals, re-letting and early termination (§3)."""

    factor_beta: float = Field(0.2, ge=0.0, le=5.0, description="Loading β_r of market rent on the factor.")
