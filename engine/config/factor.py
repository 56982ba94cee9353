"""The `factor` section: the AI-demand factor and its burst (MODEL §1)."""

from __future__ import annotations

from pydantic import Field, ValidationError, ValidationInfo, model_validator

from engine.config.base import _Section
from engine.config.errors import _ref_error


class BurstConfig(_Section):
    """The regime shift of the AI-demand factor: the month the narrative collapses."""

    monthly_hazard: float = Field(
        0.0, ge=0.0, le=1.0, description="Monthly hazard of the burst; 0 means it never happens."
    )
    shift: float = Field(
        0.0, ge=-10.0, le=0.0, description="Shift s of the factor mean from the burst month on (s ≤ 0)."
    )
    month: int | None = Field(
        None, ge=1, le=600, description="Fix the burst month B (overrides the hazard)."
    )

    @model_validator(mode="after")
    def _within_horizon(self, info: ValidationInfo) -> BurstConfig:
        T = (info.context or {}).get("months")
        if isinstance(T, int) and self.month is not None and self.month > T:
            raise ValidationError.from_exception_data(
                "BurstConfig", [_ref_error(("month",), f"beyond run.months ({T})", self.month)]
            )
        return self


class FactorConfig(_Section):
    """The AI-demand factor X_t = Y_t + s·1{t ≥ B}, Y an AR(1) with stationary N(0,1) law."""

    persistence: float = Field(
        0.98, ge=0.0, le=1.0, description="AR(1) coefficient φ; 1 gives a static factor X_t = Y_0."
    )
    student_t_dof: float | None = Field(
        None,
        ge=2.0,
        le=1000.0,
        description="Degrees of freedom ν of a one-factor t-copula; omit for the Gaussian copula.",
    )
    burst: BurstConfig = Field(default_factory=BurstConfig, description="The burst regime.")
