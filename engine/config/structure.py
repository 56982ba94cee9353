"""A deal's parts: tranches, reserve, fees, waterfall steps, triggers, ARD, collateral tranches (MODEL §5)."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, ValidationError, model_validator

from engine.config.base import Month, Name, Usd, _Section
from engine.config.errors import _ref_error


class Tranche(_Section):
    """A note class: balance, coupon, principal schedule and optional loss-allocation points (§5)."""

    name: Name = Field(..., description="Class name, unique within the deal.")
    balance: float = Field(..., gt=0.0, le=1e13, description="Original balance (USD).")
    coupon: float = Field(0.0, ge=0.0, le=1.0, description="Annual coupon; interest = coupon/12 × balance.")
    amortization: Literal["sweep", "level", "bullet", "io", "schedule"] = Field(
        "sweep",
        description=(
            "Principal target: `sweep` pays all cash the principal step reaches; `level` pays the "
            "balance down linearly between amort_start_month and amort_end_month; `bullet` is due "
            "at legal final; `io` is interest-only until the deal's ARD (refinanced there, or swept "
            "after); `schedule` follows `target_schedule`."
        ),
    )
    target_schedule: list[tuple[Month, Usd]] | None = Field(
        None,
        description=(
            "`schedule`: [[month, balance], ...] — the target balance (USD) from that month on, "
            "months increasing, balances not increasing."
        ),
    )
    deferrable: bool = Field(
        False, description="PIK: unpaid interest is added to the balance instead of being a shortfall."
    )
    rank: int | None = Field(
        None, ge=1, le=100,
        description=(
            "Seniority rank (1 = most senior). Optional; when given, the classes of an `interest` step "
            "or of a `pro_rata` principal step must share one rank."
        ),
    )
    amort_start_month: int = Field(
        0, ge=0, le=600, description="`level`: last month at full balance."
    )
    amort_end_month: int | None = Field(
        None, ge=1, le=600, description="`level`: month the scheduled balance reaches 0 (default: legal final)."
    )
    interest_on_shortfall: bool = Field(
        True, description="Whether carried interest shortfall itself accrues interest at the coupon."
    )
    attach: float | None = Field(
        None, ge=0.0, le=1.0,
        description=(
            "Attachment point A on the pool's net loss fraction. The classes with points tile the loss: "
            "each attaches where the next junior class detaches (no overlap, no gap); pari-passu classes "
            "share the same points."
        ),
    )
    detach: float | None = Field(
        None, ge=0.0, le=1.0, description="Detachment point D on the pool's net loss fraction (D > A)."
    )

    @model_validator(mode="after")
    def _points(self) -> Tranche:
        if (self.attach is None) != (self.detach is None):
            missing = "detach" if self.detach is None else "attach"
            raise ValidationError.from_exception_data(
                "Tranche",
                [_ref_error((missing,), "attach and detach must be given together", None)],
            )
        if self.attach is not None and self.detach <= self.attach:
            raise ValidationError.from_exception_data(
                "Tranche",
                [_ref_error(("detach",), f"detach ({self.detach}) must exceed attach ({self.attach})", self.detach)],
            )
        if (self.amortization == "schedule") != (self.target_schedule is not None):
            raise ValidationError.from_exception_data(
                "Tranche",
                [_ref_error(("target_schedule",), "give target_schedule exactly when amortization = \"schedule\"", None)],
            )
        if self.target_schedule is not None:
            months = [m for m, _ in self.target_schedule]
            bals = [b for _, b in self.target_schedule]
            problem = None
            if not months:
                problem = "needs at least one [month, balance] point"
            elif any(b < 0 or b > self.balance for b in bals):
                problem = f"balances must lie in [0, balance = {self.balance}]"
            elif any(m2 <= m1 for m1, m2 in zip(months, months[1:])) or months[0] < 1:
                problem = "months must be ≥ 1 and increasing"
            elif any(b2 > b1 for b1, b2 in zip(bals, bals[1:])):
                problem = "balances must not increase"
            if problem:
                raise ValidationError.from_exception_data(
                    "Tranche", [_ref_error(("target_schedule",), problem, None)]
                )
        if (
            self.amortization == "level"
            and self.amort_end_month is not None
            and self.amort_end_month <= self.amort_start_month
        ):
            raise ValidationError.from_exception_data(
                "Tranche",
                [_ref_error(("amort_end_month",), "must exceed amort_start_month", self.amort_end_month)],
            )
        return self


class Reserve(_Section):
    """The liquidity reserve account."""

    initial_balance: float = Field(0.0, ge=0.0, le=1e13, description="Balance funded at closing (USD).")
    target_months: float = Field(
        0.0, ge=0.0, le=36.0, description="Target = target_months × this month's senior interest due."
    )
    rate: float = Field(0.0, ge=0.0, le=1.0, description="Annual interest earned on the reserve balance.")


class Fees(_Section):
    """Senior fees, paid by the `fees` step."""

    bps: float = Field(
        0.0, ge=0.0, le=1000.0, description="Annual fee in bps of the outstanding note balance."
    )
    fixed_monthly: float = Field(0.0, ge=0.0, le=1e10, description="Fixed monthly fee (USD).")


class FeesStep(_Section):
    """Pay senior fees (plus any carried fee shortfall)."""

    type: Literal["fees"] = Field(..., description="Step kind: `fees`.")


class InterestStep(_Section):
    """Pay due interest to the named classes, pro rata within the step."""

    type: Literal["interest"] = Field(..., description="Step kind: `interest`.")
    classes: list[Name] = Field(..., min_length=1, description="Classes paid, pro rata by amount due.")


class ReserveStep(_Section):
    """Top up the reserve account to its target."""

    type: Literal["reserve"] = Field(..., description="Step kind: `reserve`.")


class PrincipalStep(_Section):
    """Pay principal due to the named classes."""

    type: Literal["principal"] = Field(..., description="Step kind: `principal`.")
    classes: list[Name] = Field(..., min_length=1, description="Classes paid, in this order.")
    mode: Literal["sequential", "pro_rata"] = Field(
        "sequential", description="`sequential` pays in list order; `pro_rata` by amount due."
    )


class TrapStep(_Section):
    """While the cash-trap trigger is on, move the remaining cash to the reserve account; once it is
    off, release the trapped cash back into the waterfall here."""

    type: Literal["trap"] = Field(..., description="Step kind: `trap`.")


class ResidualStep(_Section):
    """Carried ARD step-up interest, then everything left, goes to the residual holder."""

    type: Literal["residual"] = Field(..., description="Step kind: `residual`.")


Step = Annotated[
    Union[FeesStep, InterestStep, ReserveStep, PrincipalStep, TrapStep, ResidualStep],
    Field(discriminator="type"),
]


class Triggers(_Section):
    """Performance triggers on the trailing 3-month DSCR = (collections − fees) / (senior interest +
    scheduled principal), tested at the start of each month from month 4 on."""

    cash_trap_dscr: float = Field(
        0.0, ge=0.0, le=20.0, description="Below this DSCR the `trap` step traps cash (curable); 0 = no trigger."
    )
    rapid_amortization_dscr: float = Field(
        0.0, ge=0.0, le=20.0,
        description="Below this DSCR every principal step sweeps sequentially for the rest of the deal; 0 = no trigger.",
    )


class Ard(_Section):
    """Anticipated repayment date: refinance if the market is open, else sweep and step up."""

    month: int = Field(..., ge=1, le=600, description="ARD month.")
    refinance_threshold: float = Field(
        0.0, ge=-10.0, le=10.0, description="The notes are refinanced in full at the ARD if X_t ≥ this."
    )
    step_up_bps: float = Field(
        0.0, ge=0.0, le=2000.0, description="Extra subordinated interest (bps a year) after a failed refinancing."
    )


class CollateralTranche(_Section):
    """A holding of another deal's tranche, as collateral of an ABS-of-ABS deal."""

    deal: Name = Field(..., description="The deal that issued the tranche.")
    tranche: Name = Field(..., description="The tranche held.")
    fraction: float = Field(..., gt=0.0, le=1.0, description="Share of that tranche held (of its original balance).")
