"""The config schema: one pydantic model per section of MODEL.md, plus the cross-reference check.

Everything a user can write is declared here, with a description and bounds. Validation happens
entirely before any array exists, so the kernels never see a bad value. ``load_config`` is the one
way in from a file; it resolves lease tapes relative to the config file and turns every pydantic or
reference error into a :class:`ConfigError` whose lines name the field path.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import math
import operator
import sys
import time
import tomllib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Callable, Literal, Union

import annotated_types
import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

if TYPE_CHECKING:
    import pandas as pd  # imported where a tape is read: `dcabs validate` of inline leases does without it

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.\-]*$"
Name = Annotated[str, Field(pattern=NAME_PATTERN, min_length=1, max_length=64)]
Month = Annotated[int, Field(ge=0, le=600)]
Usd = Annotated[float, Field(ge=0.0, le=1e13)]
FactorValue = Annotated[float, Field(ge=-20.0, le=20.0)]
BASE_SCENARIO = "base"
log = logging.getLogger(__name__)
# Attach/detach points closer than this meet: a computed 1 − 0.88 must still tile with 0.12.
POINT_TOL = 1e-9


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- errors


class ConfigError(Exception):
    """A config that failed validation. ``errors`` is a list of ``(path, message)`` pairs."""

    def __init__(self, errors: list[tuple[str, str]]):
        self.errors = errors
        super().__init__("\n".join(f"{p}: {m}" if p else m for p, m in errors))


def format_loc(loc: tuple[Any, ...]) -> str:
    """Turn a pydantic location tuple into ``deals[0].tranches[1].detach``."""
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif i >= 2 and loc[i - 2] == "waterfall" and isinstance(loc[i - 1], int) and part in _STEP_TAGS:
            # pydantic inserts the discriminator tag of a union member; users never wrote it.
            continue
        else:
            out += ("." if out else "") + str(part)
    return out


def _errors_from_validation(exc: ValidationError, prefix: tuple = ()) -> list[tuple[str, str]]:
    out = []
    for e in exc.errors(include_url=False):
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling; see `dcabs schema`)"
        out.append((format_loc(prefix + tuple(e["loc"])), msg))
    return out


def _line_errors(exc: ValidationError) -> list[InitErrorDetails]:
    """Re-raise-able line errors of a ValidationError, keeping location, message and input."""
    return [
        _ref_error(tuple(e["loc"]), e["msg"], e.get("input")) for e in exc.errors(include_url=False)
    ]


def _ref_error(loc: tuple, message: str, value: Any) -> InitErrorDetails:
    return InitErrorDetails(
        type=PydanticCustomError("reference", message), loc=loc, input=value
    )


# --------------------------------------------------------------------------- run and factor


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


# --------------------------------------------------------------------------- collateral


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


# --------------------------------------------------------------------------- tenants and leases


class Tenant(_Section):
    """A lessee with an annual PD and an asset correlation with the factor (§2)."""

    name: Name = Field(..., description="Unique tenant name, referenced by leases.")
    pd: float = Field(
        ..., ge=0.0, lt=1.0, description="Unconditional probability of default within 12 months."
    )
    rho: float = Field(..., ge=0.0, lt=1.0, description="Asset correlation ρ with the factor.")
    default_month: int | None = Field(
        None, ge=1, le=600, description="Force a default in this month (a scenario lever)."
    )


class Lease(_Section):
    """One lease: who pays, when, how much, and what collateral stands behind it (§3–4)."""

    id: str | None = Field(None, max_length=64, description="Optional label.")
    tenant: Name = Field(..., description="Name of the tenant who pays the rent.")
    start_month: int = Field(
        0, ge=0, le=600,
        description="s_j: rent is paid in months s_j < t ≤ s_j + term; must be before `run.months`.",
    )
    term_months: int = Field(..., ge=1, le=600, description="Lease term T_j in months.")
    monthly_rent: float = Field(..., ge=0.0, le=1e12, description="Initial monthly rent R_j (USD).")
    escalator: float = Field(0.0, ge=-0.5, le=1.0, description="Annual rent escalator e_j.")
    gpu_cost: float = Field(0.0, ge=0.0, le=1e13, description="Original GPU fleet cost C_g (USD).")
    gpu_in_service_month: int | None = Field(
        None, ge=0, le=600, description="Month a_0 the fleet entered service; defaults to start_month."
    )
    shell_value: float = Field(
        0.0, ge=0.0, le=1e13, description="Original facility value C_s (USD)."
    )
    recovery: Literal["sale", "fixed", "relet"] = Field(
        "sale",
        description=(
            "On tenant default: `sale` sells the collateral at market value; `fixed` recovers "
            "`recovery_rate` × (gpu_cost + shell_value), the rating-agency convention; `relet` "
            "re-lets the space after `downtime` months at R·m_t to a replacement tenant with PD "
            "`relet_pd` (a sale as in `sale` when the term ends first)."
        ),
    )
    recovery_rate: float = Field(
        0.0, ge=0.0, le=1.0, description="Recovery fraction of original collateral when `fixed`."
    )
    recovery_lag: int = Field(
        6, ge=0, le=120, description="Months from default to the recovery proceeds."
    )
    sale_lag: int = Field(
        3, ge=0, le=120, description="Months from a lease's natural end to the sale proceeds."
    )
    liquidation_cost: float = Field(
        0.10, ge=0.0, le=1.0, description="Fraction of market value lost when selling collateral."
    )
    renewals: int = Field(0, ge=0, le=20, description="Number of renewal options at term end.")
    renewal_term: int = Field(60, ge=1, le=600, description="Months of each renewal.")
    renewal_intercept: float = Field(
        0.0, ge=-10.0, le=10.0, description="a_j: the tenant renews with probability Φ(a_j + b_j·X_t)."
    )
    renewal_beta: float = Field(0.0, ge=-10.0, le=10.0, description="b_j: the renewal probability's loading on X_t.")
    rvg_threshold: float = Field(
        0.0, ge=0.0, le=1e13, description="Residual value guarantee: threshold K (USD) at lease start; 0 means no RVG."
    )
    rvg_threshold_end: float | None = Field(
        None, ge=0.0, le=1e13, description="K after `rvg_months` (linear in between; default: `rvg_threshold`)."
    )
    rvg_months: int = Field(0, ge=0, le=600, description="Months from lease start over which the RVG applies; 0 after.")
    rvg_cap: float | None = Field(None, ge=0.0, le=1e13, description="Most the RVG pays (USD); default no cap.")
    rvg_guarantor: Name | None = Field(
        None, description="Tenant giving the RVG (default: the lease's tenant); it pays only while alive."
    )
    downtime: int = Field(6, ge=0, le=120, description="`relet`: months from default until the space is re-let.")
    relet_pd: float = Field(0.05, ge=0.0, lt=1.0, description="`relet`: annual PD of the replacement tenant.")
    relet_rho: float = Field(0.2, ge=0.0, lt=1.0, description="`relet`: asset correlation of the replacement tenant.")
    termination_threshold: float = Field(
        0.0, ge=0.0, le=1.0,
        description=(
            "Early termination: the tenant leaves in the first month the market rent falls below this "
            "fraction of its contract rent (m_t < f × the term's rent multiplier); 0 means no option."
        ),
    )
    termination_fee_months: float = Field(
        0.0, ge=0.0, le=120.0, description="Termination fee in months of current contract rent."
    )
    termination_earliest_month: int = Field(
        12, ge=1, le=600, description="Months after lease start before the termination option can be used."
    )

    @model_validator(mode="after")
    def _options(self) -> Lease:
        if self.rvg_threshold > 0 and self.rvg_months == 0:
            raise ValidationError.from_exception_data(
                "Lease", [_ref_error(("rvg_months",), "an RVG (rvg_threshold > 0) needs rvg_months > 0", self.rvg_months)]
            )
        return self

    @property
    def has_options(self) -> bool:
        """Whether the lease branches on the path (simulated lease by lease)."""
        return (self.renewals > 0 or self.rvg_threshold > 0 or self.recovery == "relet"
                or self.termination_threshold > 0)


LEASE_COLUMNS = tuple(Lease.model_fields)
_REQUIRED_LEASE_COLUMNS = tuple(n for n, f in Lease.model_fields.items() if f.is_required())


@dataclass(frozen=True)
class _LeaseField:
    """How one Lease field is stored as a column and checked without building a Lease."""

    name: str
    kind: str  # "int", "float", or "str" (a str, a Name or a Literal of strings)
    required: bool
    nullable: bool  # None is a value (stored as the column's absent marker)
    fill: Any  # stored for an empty cell: the default, or the column's "absent" marker
    bounds: tuple[tuple[Callable, float], ...]  # (operator, limit) of a number field
    many: TypeAdapter  # a list of the field's own type and constraints: pydantic's coercions of strings and objects

    @property
    def dtype(self) -> np.dtype:
        return np.dtype({"int": np.int64, "float": np.float64, "str": object}[self.kind])


_BOUND_OPS = {annotated_types.Ge: ("ge", operator.ge), annotated_types.Gt: ("gt", operator.gt),
              annotated_types.Le: ("le", operator.le), annotated_types.Lt: ("lt", operator.lt)}
# An absent optional value: -1 in an int column (every int field is ≥ 0), NaN in a float column
# (every float field has bounds, which NaN fails), None in a str column.
_ABSENT = {"int": -1, "float": math.nan, "str": None}


def _lease_field(name: str, f: Any) -> _LeaseField:
    ann = f.annotation
    args = typing.get_args(ann) if typing.get_origin(ann) in (Union, types.UnionType) else (ann,)
    base = [a for a in args if a is not type(None)]
    if len(base) != 1:
        raise TypeError(f"Lease.{name}: a lease tape column needs one type, got {ann}")
    inner = typing.get_args(base[0])[0] if typing.get_origin(base[0]) is Annotated else base[0]
    if inner is bool or (inner not in (int, float, str) and typing.get_origin(inner) is not Literal):
        raise TypeError(f"Lease.{name}: no column check for type {inner}")
    if typing.get_origin(inner) is Literal and not all(isinstance(a, str) for a in typing.get_args(inner)):
        # The column check rejects every number in a str column, which holds only for str choices.
        raise TypeError(f"Lease.{name}: only Literals of strings have a column check")
    kind = {int: "int", float: "float"}.get(inner, "str")
    bounds = []
    for m in f.metadata:
        if kind == "str":
            continue  # string constraints are checked by `many`, pydantic itself
        if type(m) not in _BOUND_OPS:
            raise TypeError(f"Lease.{name}: no column check for constraint {m!r}")
        attr, op = _BOUND_OPS[type(m)]
        bounds.append((op, getattr(m, attr)))
    if kind == "int" and type(None) in args and not any(op in (operator.ge, operator.gt) and lim >= 0 for op, lim in bounds):
        raise TypeError(f"Lease.{name}: an optional int column marks absence with -1, which its bounds must exclude")
    required = f.is_required()
    default = None if required else f.default
    return _LeaseField(name, kind, required, type(None) in args, _ABSENT[kind] if default is None else default, tuple(bounds),
                       TypeAdapter(list[Annotated[base[0], *f.metadata]] if f.metadata else list[base[0]]))


_LEASE_FIELDS = {n: _lease_field(n, f) for n, f in Lease.model_fields.items()}


class LeaseColumns:
    """A deal's leases as one numpy array per :class:`Lease` field, in lease order.

    int64 for integer fields, float64 for real ones, object (str) for names and choices; an absent
    optional value is -1 in an int column, NaN in a float column and None in a str column. A lease
    tape is only ever held this way: a million Lease objects would take gigabytes."""

    __slots__ = ("_cols", "_leases")

    def __init__(self, cols: dict[str, np.ndarray]):
        self._cols = cols
        self._leases: list[Lease] | None = None

    @classmethod
    def from_leases(cls, leases: list[Lease]) -> LeaseColumns:
        cols = {}
        for name, spec in _LEASE_FIELDS.items():
            absent = _ABSENT[spec.kind]
            cols[name] = np.array([absent if (v := getattr(x, name)) is None else v for x in leases], dtype=spec.dtype)
        return cls(cols)

    def __len__(self) -> int:
        return len(self._cols["tenant"])

    def __getitem__(self, name: str) -> np.ndarray:
        return self._cols[name]

    def has_options(self) -> np.ndarray:
        """:attr:`Lease.has_options` of every lease."""
        c = self._cols
        return (c["renewals"] > 0) | (c["rvg_threshold"] > 0) | (c["recovery"] == "relet") | (c["termination_threshold"] > 0)

    def leases(self) -> list[Lease]:
        """The rows as Lease objects, built once (the values are already valid)."""
        if self._leases is None:
            rows = []
            for name, spec in _LEASE_FIELDS.items():
                vals = self._cols[name].tolist()
                if spec.nullable and spec.kind == "int":
                    vals = [None if v == -1 else v for v in vals]
                elif spec.nullable and spec.kind == "float":
                    vals = [None if v != v else v for v in vals]
                rows.append(vals)
            self._leases = [Lease.model_construct(**dict(zip(_LEASE_FIELDS, row))) for row in zip(*rows)]
        return self._leases

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LeaseColumns):
            return NotImplemented
        return self._cols.keys() == other._cols.keys() and all(
            np.array_equal(a, other._cols[k], equal_nan=a.dtype.kind == "f") for k, a in self._cols.items())

    __hash__ = None  # type: ignore[assignment]  # mutable arrays, like the list of Lease it replaces

    def __reduce__(self):
        # The built Lease objects stay behind: a pickled config (a Dask task's) carries only arrays.
        return (LeaseColumns, (self._cols,))

    def __repr__(self) -> str:
        return f"LeaseColumns({len(self)} leases)"


# --------------------------------------------------------------------------- deals


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
_STEP_TAGS = {"fees", "interest", "reserve", "principal", "trap", "residual"}


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


class Deal(_Section):
    """An SPV: a lease pool, notes, a reserve, fees and an ordered waterfall (§5)."""

    name: Name = Field(..., description="Unique deal name.")
    legal_final_month: int = Field(
        ..., ge=1, le=600, description="Month at which unpaid principal becomes a loss."
    )
    leases: list[Lease] | None = Field(None, description="Inline leases (or give `lease_tape`, or only `collateral_tranches`).")
    lease_tape: str | None = Field(
        None,
        description=(
            "CSV or Parquet file of leases, one row each, columns named as the inline lease fields; "
            "relative to the config file."
        ),
    )
    collateral_tranches: list[CollateralTranche] = Field(
        default_factory=list, description="Tranches of other deals held as collateral (ABS-of-ABS)."
    )
    tranches: list[Tranche] = Field(..., min_length=1, description="Note classes.")
    triggers: Triggers = Field(default_factory=Triggers, description="DSCR cash-trap and rapid-amortisation triggers.")
    ard: Ard | None = Field(None, description="Anticipated repayment date and refinancing test.")
    reserve: Reserve = Field(default_factory=Reserve, description="Reserve account.")
    fees: Fees = Field(default_factory=Fees, description="Senior fees.")
    waterfall: list[Step] = Field(..., min_length=1, description="Priority of payments, in order.")

    _tape: LeaseColumns | None = PrivateAttr(None)
    _tape_sha256: str | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _structure(self, info: ValidationInfo) -> Deal:
        errs: list[InitErrorDetails] = []
        if self.leases is not None and self.lease_tape is not None:
            errs.append(_ref_error(("leases",), "give at most one of `leases` and `lease_tape`", None))
        elif self.leases is None and self.lease_tape is None and not self.collateral_tranches:
            errs.append(_ref_error(("leases",), "give `leases`, `lease_tape` or `collateral_tranches`", None))
        elif self.leases is not None and not self.leases:
            errs.append(_ref_error(("leases",), "a deal needs at least one lease", None))
        names = [t.name for t in self.tranches]
        for k, n in enumerate(names):
            if n in names[:k]:
                errs.append(_ref_error(("tranches", k, "name"), f"duplicate tranche name {n!r}", n))
        known = set(names)
        interest_of: dict[str, int] = {}
        principal_of: dict[str, int] = {}
        seen: dict[str, int] = {}
        rank = {t.name: t.rank for t in self.tranches if t.rank is not None}
        for s, step in enumerate(self.waterfall):
            pooled = step.type == "interest" or (step.type == "principal" and step.mode == "pro_rata")
            ranks = {rank[c] for c in getattr(step, "classes", ()) if c in rank}
            if pooled and len(ranks) > 1:
                mixed = ", ".join(f"{c} (rank {rank[c]})" for c in step.classes if c in rank)
                errs.append(_ref_error(("waterfall", s, "classes"), f"a pro-rata group must share one seniority rank: {mixed}", None))
            if step.type in ("fees", "reserve", "residual", "trap") and step.type in seen:
                errs.append(_ref_error(("waterfall", s, "type"), f"only one `{step.type}` step is allowed", step.type))
            seen.setdefault(step.type, s)
            if step.type == "residual" and s != len(self.waterfall) - 1:
                errs.append(_ref_error(("waterfall", s, "type"), "the `residual` step must be the last step", step.type))
            if step.type in ("interest", "principal"):
                owner = interest_of if step.type == "interest" else principal_of
                for c, cls in enumerate(step.classes):
                    if cls not in known:
                        errs.append(_ref_error(("waterfall", s, "classes", c), f"unknown tranche {cls!r}", cls))
                    elif cls in owner:
                        errs.append(
                            _ref_error(
                                ("waterfall", s, "classes", c),
                                f"tranche {cls!r} is already paid {step.type} by waterfall[{owner[cls]}]",
                                cls,
                            )
                        )
                    else:
                        owner[cls] = s
        for k, t in enumerate(self.tranches):
            if t.name not in principal_of:
                errs.append(_ref_error(("tranches", k, "name"), f"tranche {t.name!r} is paid principal by no waterfall step", t.name))
            if t.coupon > 0 and t.name not in interest_of:
                errs.append(_ref_error(("tranches", k, "coupon"), f"tranche {t.name!r} has a coupon but no interest step", t.coupon))
            if t.amortization == "level" and (t.amort_end_month or self.legal_final_month) > self.legal_final_month:
                errs.append(_ref_error(("tranches", k, "amort_end_month"), "must not exceed legal_final_month", t.amort_end_month))
            if t.amortization == "level" and t.amort_start_month >= (t.amort_end_month or self.legal_final_month):
                errs.append(_ref_error(("tranches", k, "amort_start_month"),
                                       "must come before amort_end_month (default: legal_final_month)", t.amort_start_month))
            if t.amortization == "io" and self.ard is None:
                errs.append(_ref_error(("tranches", k, "amortization"), "`io` (interest-only until the ARD) needs an `ard`", t.amortization))
            if t.target_schedule and t.target_schedule[-1][0] > self.legal_final_month:
                errs.append(_ref_error(("tranches", k, "target_schedule"), "a month is beyond legal_final_month", None))
        if self.ard is not None and self.ard.month > self.legal_final_month:
            errs.append(_ref_error(("ard", "month"), f"after legal_final_month ({self.legal_final_month})", self.ard.month))
        if (self.triggers.cash_trap_dscr > 0) != ("trap" in seen):
            where = ("triggers", "cash_trap_dscr") if "trap" not in seen else ("waterfall", seen["trap"], "type")
            errs.append(_ref_error(where, "a cash-trap trigger and a `trap` step go together: give both or neither", None))
        if self.reserve.target_months > 0 and "reserve" not in seen:
            errs.append(_ref_error(("reserve", "target_months"), "a reserve target needs a `reserve` waterfall step", self.reserve.target_months))
        ctx = info.context or {}
        if ctx.get("check_tranche_stack", True):
            errs.extend(self.stack_errors())
        T = ctx.get("months")
        if isinstance(T, int) and self.legal_final_month > T:
            errs.append(_ref_error(("legal_final_month",), f"beyond run.months ({T})", self.legal_final_month))
        if self.lease_tape is not None and self.leases is None:
            try:
                self._tape, self._tape_sha256 = _read_lease_tape(Path(ctx.get("base_dir", ".")) / self.lease_tape)
            except ValidationError as exc:
                errs.extend(_line_errors(exc))
        if isinstance(T, int) and T >= 1:  # below 1, run.months itself is the error
            errs.extend(self.lease_start_errors(T))
        # Tenant names are known here only when validate_config passed them in; otherwise the
        # root check covers leases. Checking here lets one report hold every missing name.
        cols = self.lease_columns()
        # A lease starting at or after T is refused above, so only a zero rent leaves a lease worthless.
        if len(cols) and not self.collateral_tranches and not np.any(
            (cols["gpu_cost"] + cols["shell_value"] != 0) | (cols["monthly_rent"] != 0)
        ):
            where = ("leases",) if self.leases is not None else ("lease_tape",)
            errs.append(_ref_error(where, "the pool is worth nothing: no rent within the horizon and no collateral", None))
        tenants = ctx.get("tenant_names")
        if tenants is not None:
            errs.extend(self.tenant_errors(tenants))
        if errs:
            raise ValidationError.from_exception_data("Deal", errs)
        return self

    def _lease_loc(self, j: int, field: str, prefix: tuple = ()) -> tuple:
        """Where lease ``j``'s ``field`` is: ``leases[j].field`` inline, ``lease_tape.row j.field`` in a tape."""
        if self.leases is not None:
            return (*prefix, "leases", j, field)
        return (*prefix, "lease_tape", f"row {j}", field)

    def _row_errors(self, rows: np.ndarray, errors_of: Callable[[int], list[InitErrorDetails]], what: str,
                    prefix: tuple) -> list[InitErrorDetails]:
        """The errors of leases ``rows`` (sorted): every one inline; for a tape, those of the first
        rows and a count, since a bad column of a million-row tape would otherwise print a million lines."""
        shown = rows if self.leases is not None else rows[:_SHOWN_BAD_ROWS]
        errs = [e for j in shown.tolist() for e in errors_of(j)]
        if len(shown) < len(rows):
            errs.append(_ref_error((*prefix, "lease_tape"),
                                   f"{len(rows):,} rows {what}; only the first {len(shown)} are listed", None))
        return errs

    def tenant_errors(self, tenants: set[str], prefix: tuple = ()) -> list[InitErrorDetails]:
        """An error for every lease whose tenant or RVG guarantor is not in ``tenants``, located under ``prefix``."""
        cols = self.lease_columns()
        known = set(tenants)
        tenant, guarantor = cols["tenant"], cols["rvg_guarantor"]
        bad_tenant = np.fromiter((t not in known for t in tenant.tolist()), dtype=bool, count=len(tenant))
        bad_guarantor = np.fromiter((g is not None and g not in known for g in guarantor.tolist()), dtype=bool,
                                    count=len(guarantor))

        def errors_of(j: int) -> list[InitErrorDetails]:
            fields = (("tenant", tenant, bad_tenant), ("rvg_guarantor", guarantor, bad_guarantor))
            return [_ref_error(self._lease_loc(j, field, prefix), f"unknown tenant {col[j]!r}", col[j])
                    for field, col, bad in fields if bad[j]]

        return self._row_errors(np.flatnonzero(bad_tenant | bad_guarantor), errors_of, "name an unknown tenant", prefix)

    def lease_start_errors(self, months: int, prefix: tuple = ()) -> list[InitErrorDetails]:
        """An error for every lease that starts at or after ``months``: it would pay no rent in the
        simulation, yet its collateral would still count in the pool P_0 and dilute the net loss."""
        start = self.lease_columns()["start_month"]

        def errors_of(j: int) -> list[InitErrorDetails]:
            s = int(start[j])
            return [_ref_error(self._lease_loc(j, "start_month", prefix),
                               f"month {s} is not before run.months ({months}): the lease would pay "
                               f"no rent within the simulation (rent starts in month start_month + 1)", s)]

        return self._row_errors(np.flatnonzero(start >= months), errors_of, f"start at or after run.months ({months})", prefix)

    def stack_errors(self) -> list[InitErrorDetails]:
        """An error for every class whose attach/detach points overlap or leave a gap below them.

        The allocation view cuts each class out of the pool's net loss on its own points, so an overlap
        counts a slice of the loss in two classes and a gap allocates it to none, and nothing else would
        say so. Sorted by attach, each class must attach where the ones below it reach; classes with
        identical points are pari passu. The stack need not start at 0 (overcollateralisation below the
        notes) nor reach 1 (a senior layer outside the deal)."""
        pointed = sorted((t.attach, t.detach, k) for k, t in enumerate(self.tranches) if t.attach is not None)
        errs: list[InitErrorDetails] = []
        top: tuple[float, float, int] | None = None  # the class reaching highest so far
        for a, d, k in pointed:
            if top is not None:
                ta, td, tk = top
                below = f"tranche {self.tranches[tk].name!r} (attach {ta:g}, detach {td:g})"
                if math.isclose(a, ta, abs_tol=POINT_TOL) and math.isclose(d, td, abs_tol=POINT_TOL):
                    continue
                if a < td - POINT_TOL:
                    errs.append(_ref_error(
                        ("tranches", k, "attach"),
                        f"{a:g} overlaps {below}: that slice of the pool's loss would be counted in both classes; "
                        f"each class attaches where the next junior class detaches, and pari-passu classes share "
                        f"the same points", a))
                elif a > td + POINT_TOL:
                    errs.append(_ref_error(
                        ("tranches", k, "attach"),
                        f"{a:g} leaves a gap above {below}: the pool's loss between {td:g} and {a:g} would be "
                        f"allocated to no class; each class attaches where the next junior class detaches", a))
            if top is None or d > top[1]:
                top = (a, d, k)
        return errs

    def lease_columns(self) -> LeaseColumns:
        """The leases as columns: the inline ones converted, a tape's as it was read."""
        if self.leases is not None:
            return LeaseColumns.from_leases(self.leases)
        return self._tape if self._tape is not None else LeaseColumns.from_leases([])

    @property
    def all_leases(self) -> list[Lease]:
        """The inline leases, or the rows of the lease tape as Lease objects (built on first use, about
        4 KiB each: for a large tape use :meth:`lease_columns`)."""
        if self.leases is not None:
            return self.leases
        return self._tape.leases() if self._tape is not None else []


def _read_frame(path: Path, what: str, fail: Callable[[str], ValidationError]) -> pd.DataFrame:
    """A CSV or Parquet file (lease tape, holdings file) as a DataFrame; every problem raises
    ``fail(message)``, located by the caller."""
    import pandas as pd

    if not path.is_file():
        raise fail(f"file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise fail(f"unsupported {what} format {suffix!r} (use .csv or .parquet)")
    try:
        return pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - any reader error is a user error about this file
        raise fail(f"cannot read {path.name}: {exc}") from None


# Tapes from this many rows on show a progress bar; the first rows with errors that are listed.
_PROGRESS_ROWS = 100_000
_SHOWN_BAD_ROWS = 20


def _read_lease_tape(path: Path) -> tuple[LeaseColumns, str]:
    """The tape's leases as columns, and the SHA-256 of its bytes.

    Each column is checked as a whole against its Lease field (numbers with numpy, strings once per
    distinct value with the field's own pydantic type), so that the accepted rows are exactly those
    ``Lease(**row)`` accepts; the first rows with errors are then run through ``Lease`` itself, for
    its messages."""
    from tqdm import tqdm

    def fail(loc: tuple, msg: str) -> ValidationError:
        return ValidationError.from_exception_data("Deal", [_ref_error(("lease_tape",) + loc, msg, str(path))])

    big = _tape_rows_estimate(path) >= _PROGRESS_ROWS
    t0 = time.perf_counter()
    with tqdm(total=1 + len(LEASE_COLUMNS), desc=f"lease tape {path.name}", unit="column", file=sys.stderr,
              disable=not big) as bar:
        bar.set_postfix_str("reading")
        frame = _read_frame(path, "lease tape", lambda msg: fail((), msg))
        with path.open("rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        bar.update()
        t_read = time.perf_counter() - t0
        unknown = [c for c in frame.columns if c not in LEASE_COLUMNS]
        missing = [c for c in _REQUIRED_LEASE_COLUMNS if c not in frame.columns]
        column_errors = [_ref_error(("lease_tape", c), f"unknown column {c!r}; allowed: {', '.join(LEASE_COLUMNS)}", c) for c in unknown]
        column_errors += [_ref_error(("lease_tape", c), f"missing required column {c!r}", None) for c in missing]
        if column_errors:
            raise ValidationError.from_exception_data("Deal", column_errors)
        if frame.empty:
            raise fail((), "the lease tape has no rows")
        n = len(frame)
        at = {c: i for i, c in enumerate(frame.columns)}  # a repeated name: the last one, as a row dict keeps it
        cols: dict[str, np.ndarray] = {}
        rejected: dict[str, np.ndarray] = {}
        for name, spec in _LEASE_FIELDS.items():
            bar.set_postfix_str(name, refresh=False)
            if name in at:
                cols[name], ok = _lease_column(frame.iloc[:, at[name]], spec)
                if not ok.all():
                    rejected[name] = ~ok
            else:
                cols[name] = np.full(n, spec.fill, dtype=spec.dtype)
            bar.update()
    bad = np.zeros(n, dtype=bool)
    for mask in rejected.values():
        bad |= mask
    # Lease._options, checked by pydantic only on rows whose fields all pass.
    bad |= (cols["rvg_threshold"] > 0) & (cols["rvg_months"] == 0)
    if bad.any():
        raise ValidationError.from_exception_data("Deal", _tape_row_errors(frame, np.flatnonzero(bad), rejected))
    if big:
        log.info("lease tape %s: %d rows read in %.1f s, checked in %.1f s", path, n, t_read, time.perf_counter() - t0 - t_read)
    return LeaseColumns(cols), digest


def _tape_rows_estimate(path: Path) -> int:
    """About how many rows the tape has, from its first MiB (CSV) or its metadata (Parquet); 0 if unknown."""
    try:
        if path.suffix.lower() == ".csv":
            with path.open("rb") as f:
                head = f.read(1 << 20)
            return path.stat().st_size * head.count(b"\n") // max(len(head), 1)
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    except Exception:  # noqa: BLE001 - only sizes the progress bar; reading the tape reports the problem
        return 0


def _lease_column(column: pd.Series, spec: _LeaseField) -> tuple[np.ndarray, np.ndarray]:
    """One tape column as ``spec`` stores it, and which of its cells ``Lease`` accepts.

    The cell values are those the rows of ``frame.to_dict("records")`` hold, so both the coercions
    (a float 3.0 is the int 3, True is 1, the string " 7 " is 7) and the rejections are pydantic's."""
    import pandas as pd

    numbers = _numeric(column)
    if numbers is not None:
        x, missing = numbers
        values, ok = _check_numbers(x, spec)
    else:
        values, ok, missing = _check_objects(column, spec)
    if missing.any():
        # An empty cell is left out of the row, so the field takes its default; a required field has none.
        values = np.where(missing, spec.fill, values)
        ok[missing] = not spec.required
    return values, ok


def _numeric(column: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """A bool, integer or float column as a numpy array and its empty cells; None for any other column."""
    import pandas as pd

    dt = column.dtype
    if isinstance(dt, np.dtype):
        if dt.kind in "biu":
            return column.to_numpy(), np.zeros(len(column), dtype=bool)
        if dt.kind == "f":
            x = column.to_numpy()
            return x, np.isnan(x)
        return None
    # Nullable (masked) and Arrow-backed numbers, as pandas makes of some Parquet columns.
    npdt = getattr(dt, "numpy_dtype", None)
    if not (pd.api.types.is_bool_dtype(dt) or pd.api.types.is_numeric_dtype(dt)) or npdt is None or npdt.kind not in "biuf":
        return None
    missing = np.array(column.isna(), dtype=bool)  # a copy: the mask may be a read-only view
    x = column.to_numpy(dtype=npdt, na_value=npdt.type(0))
    if npdt.kind == "f":
        missing |= np.isnan(x)  # a NaN that is not NA is as empty to the row dict
    return x, missing


def _check_numbers(x: np.ndarray, spec: _LeaseField) -> tuple[np.ndarray, np.ndarray]:
    """Pydantic's lax rules for Python numbers, vectorised: an int field takes an integral finite
    float or a bool, a float field any number, a str field (or choice) no number at all."""
    n = len(x)
    if spec.kind == "str":
        return np.full(n, None, dtype=object), np.zeros(n, dtype=bool)
    if x.dtype.kind == "b":
        x = x.astype(np.int64)
    # A column already of the field's dtype is kept as it is (a read-only view of the frame), not
    # copied: the values of a tape with a bad cell are never used.
    with np.errstate(invalid="ignore"):
        if spec.kind == "float":
            values = x.astype(np.float64, copy=False)
            return values, _within(values, spec)
        if x.dtype.kind == "f":
            x = x.astype(np.float64, copy=False)
            ok = np.isfinite(x) & (np.floor(x) == x) & _within(x, spec)
            return np.where(ok, x, 0).astype(np.int64), ok
        return x.astype(np.int64, copy=False), _within(x, spec)


def _within(x: np.ndarray, spec: _LeaseField) -> np.ndarray:
    ok = np.ones(len(x), dtype=bool)
    for op, limit in spec.bounds:
        ok &= op(x, limit)
    return ok


def _check_objects(column: pd.Series, spec: _LeaseField) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A column of strings (or of anything else) checked by the field's pydantic type, once per
    distinct string: a tenant column of a million rows costs a few hundred validations."""
    import pandas as pd

    dt = column.dtype
    if isinstance(dt, pd.StringDtype) or (dt == object and pd.api.types.infer_dtype(column, skipna=True) in ("string", "empty")):
        codes, uniques = pd.factorize(column)  # an empty cell is code -1
        cells = uniques.to_numpy(dtype=object)
        u_missing = np.asarray(pd.isna(cells), dtype=bool)
        u_values, u_ok = _check_cells(list(cells), u_missing, spec)
        empty = codes < 0
        if not len(cells):
            return np.full(len(column), spec.fill, dtype=spec.dtype), np.ones(len(column), dtype=bool), empty
        codes = np.where(empty, 0, codes)
        return u_values[codes], u_ok[codes], empty | u_missing[codes]
    # Mixed or unusual cells (a CSV column that is numbers in some blocks and text in others, dates,
    # decimals), boxed as the row dicts box them.
    cells = column.to_frame(name="v").to_dict("list")["v"]
    missing = np.array([_is_missing(v) for v in cells], dtype=bool)
    return (*_check_cells(cells, missing, spec), missing)


_CHECK_BLOCK = 65_536  # cells per pydantic call: bounds the error list of a column of bad cells


def _check_cells(cells: list, missing: np.ndarray, spec: _LeaseField) -> tuple[np.ndarray, np.ndarray]:
    """The field's pydantic type on every present cell: the values it makes, and which it accepts."""
    values = np.full(len(cells), spec.fill, dtype=spec.dtype)
    ok = np.ones(len(cells), dtype=bool)
    present = np.flatnonzero(~missing)
    for b in range(0, len(present), _CHECK_BLOCK):
        at = present[b:b + _CHECK_BLOCK]
        block = [cells[i] for i in at.tolist()]
        try:
            out = spec.many.validate_python(block)
            good = at
        except ValidationError as exc:
            bad = np.zeros(len(block), dtype=bool)
            bad[[e["loc"][0] for e in exc.errors(include_url=False, include_context=False, include_input=False)]] = True
            ok[at[bad]] = False
            good = at[~bad]
            out = spec.many.validate_python([block[i] for i in np.flatnonzero(~bad).tolist()])
        if len(good):
            values[good] = np.array(out, dtype=spec.dtype)
    return values, ok


def _tape_row_errors(frame: pd.DataFrame, rows: np.ndarray, rejected: dict[str, np.ndarray]) -> list[InitErrorDetails]:
    """The errors of the first bad ``rows``, from ``Lease`` on the row as a dict (the messages a
    list of Lease objects gave), then how many rows have errors."""
    import pandas as pd

    errs: list[InitErrorDetails] = []
    for r in rows[:_SHOWN_BAD_ROWS].tolist():
        record = {k: v for k, v in frame.iloc[[r]].to_dict("records")[0].items() if not _is_missing(v)}
        try:
            Lease.model_validate(record)
        except ValidationError as exc:
            errs += [_ref_error(("lease_tape", f"row {r}", *e["loc"]), e["msg"], e.get("input"))
                     for e in exc.errors(include_url=False)]
        else:  # the column check and the model disagree: still an error, never a silent acceptance
            fields = [name for name, mask in rejected.items() if mask[r]] or ["rvg_months"]
            errs += [_ref_error(("lease_tape", f"row {r}", name), "rejected by the lease tape check", record.get(name))
                     for name in fields]
    if len(rows) > _SHOWN_BAD_ROWS:
        errs.append(_ref_error(("lease_tape",), f"{len(rows):,} rows have errors; only the first {_SHOWN_BAD_ROWS} are listed", None))
    return errs


def _is_missing(v: Any) -> bool:
    import pandas as pd

    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


# --------------------------------------------------------------------------- network


class Firm(_Section):
    """A firm of the circular-financing network (MODEL §7); it may be one of the tenants."""

    name: Name = Field(..., description="Unique firm name, referenced by obligations.")
    tenant: Name | None = Field(
        None, description="The tenant this firm is: its network default is that tenant's default."
    )
    revenue: float = Field(
        ..., ge=0.0, le=1e13, description="Yearly external revenue e_i (USD) at a neutral factor."
    )
    revenue_growth: float = Field(
        0.0, ge=-0.9, le=5.0, description="Yearly growth of external revenue: year y earns revenue·(1+g)^(y−1)."
    )
    factor_beta: float = Field(
        0.0, ge=0.0, le=5.0, description="Loading β_i of revenue on the factor's yearly average."
    )
    cash: float = Field(0.0, ge=0.0, le=1e14, description="Opening cash buffer (USD).")
    external_debt: float = Field(
        0.0, ge=0.0, le=1e13, description="Yearly senior external debt service (USD), paid before any inter-firm claim."
    )


class Obligation(_Section):
    """A contracted yearly payment from one firm to another."""

    payer: Name = Field(..., description="Firm that pays.")
    payee: Name = Field(..., description="Firm that is paid.")
    amount: float = Field(..., ge=0.0, le=1e13, description="Amount due in `start_year` (USD).")
    start_year: int = Field(1, ge=1, le=50, description="First year (1 = months 1–12) the obligation is due.")
    end_year: int = Field(..., ge=1, le=50, description="Last year it is due (inclusive).")
    growth: float = Field(0.0, ge=-0.9, le=5.0, description="Yearly growth of the amount.")
    kind: Literal["compute", "chips", "investment", "other"] = Field(
        "other", description="What the obligation is: a label for reports."
    )

    @model_validator(mode="after")
    def _shape(self) -> Obligation:
        errs = []
        if self.payer == self.payee:
            errs.append(_ref_error(("payee",), f"firm {self.payer!r} cannot pay itself", self.payee))
        if self.end_year < self.start_year:
            errs.append(_ref_error(("end_year",), f"before start_year ({self.start_year})", self.end_year))
        if errs:
            raise ValidationError.from_exception_data("Obligation", errs)
        return self


class NetworkConfig(_Section):
    """Eisenberg–Noe clearing between firms at each year end, with Rogers–Veraart default costs (§7)."""

    enabled: bool = Field(True, description="Switch the network off without deleting it.")
    alpha: float = Field(1.0, ge=0.0, le=1.0, description="Share of external assets a defaulting firm realises.")
    beta: float = Field(1.0, ge=0.0, le=1.0, description="Share of inter-firm receivables a defaulting firm realises.")
    compare_without: bool = Field(
        True, description="Also run the same paths without the network and report tranche EL both ways."
    )
    firms: list[Firm] = Field(..., min_length=1, description="The firms.")
    obligations: list[Obligation] = Field(default_factory=list, description="Yearly obligations between firms.")

    @model_validator(mode="after")
    def _references(self, info: ValidationInfo) -> NetworkConfig:
        errs: list[InitErrorDetails] = []
        names = [f.name for f in self.firms]
        for k, n in enumerate(names):
            if n in names[:k]:
                errs.append(_ref_error(("firms", k, "name"), f"duplicate firm name {n!r}", n))
        tenants = (info.context or {}).get("tenant_names")
        seen: dict[str, int] = {}
        for k, f in enumerate(self.firms):
            if f.tenant is None:
                continue
            if tenants is not None and f.tenant not in tenants:
                errs.append(_ref_error(("firms", k, "tenant"), f"unknown tenant {f.tenant!r}", f.tenant))
            elif f.tenant in seen:
                errs.append(_ref_error(("firms", k, "tenant"), f"tenant {f.tenant!r} is already firm {names[seen[f.tenant]]!r}", f.tenant))
            seen.setdefault(f.tenant, k)
        known = set(names)
        for k, o in enumerate(self.obligations):
            for field in ("payer", "payee"):
                if getattr(o, field) not in known:
                    errs.append(_ref_error(("obligations", k, field), f"unknown firm {getattr(o, field)!r}", getattr(o, field)))
        T = (info.context or {}).get("months")
        if isinstance(T, int):
            for k, o in enumerate(self.obligations):
                if o.start_year * 12 > T:
                    errs.append(_ref_error(("obligations", k, "start_year"), f"starts after run.months ({T})", o.start_year))
        if errs:
            raise ValidationError.from_exception_data("NetworkConfig", errs)
        return self


# --------------------------------------------------------------------------- holders and contagion


HOLDINGS_COLUMNS = ("holder", "asset", "par")
Impact = Annotated[float, Field(gt=0.0, lt=1.0)]


class MarketAsset(_Section):
    """An asset other than the deals' tranches that holders can hold (MODEL §6.3). A unit is
    worth 1 before the shock; ``depth`` is the market depth in units."""

    kind: Literal["ai_equity", "bond"] = Field(
        ..., description="`ai_equity`: price exp(β_e·X_h − β_e²/2) × (1 − share of network firms defaulted by h); "
        "`bond`: a generic bond whose fundamental price stays 1 (only fire sales move it).",
    )
    depth: float = Field(..., gt=0.0, le=1e14, description="Market depth M in units (USD at the pre-shock price of 1).")
    impact: Impact | None = Field(None, description="Price move from selling 5% of the depth; default `contagion.impact`.")
    rating: str = Field("A", description="Rating of a `bond` (its repo haircut and NAIC factor); `ai_equity` is `equity`.")
    rbc_factor: float | None = Field(
        None, ge=0.0, le=1.0,
        description="Insurer capital charge per unit of value; default: the NAIC factor of `rating` for a bond, "
        "0.30 for AI equity (life RBC, unaffiliated common stock).",
    )

    @field_validator("rating")
    @classmethod
    def _known_rating(cls, v: str) -> str:
        from .rules import rating_grade  # rules.py holds the tables

        rating_grade(v)
        return v


class ContagionConfig(_Section):
    """The stress horizon and the fire-sale market (MODEL §6)."""

    horizon_month: int = Field(..., ge=1, le=600, description="Stress horizon h: tranches are marked and holders react at the end of this month.")
    equity_beta: float = Field(1.0, ge=0.0, le=5.0, description="β_e of the AI-equity asset's price exp(β_e·X_h − β_e²/2).")
    impact: Impact = Field(0.05, description="Price move from selling 5% of an asset's depth (default for every asset).")
    tranche_depth: float = Field(
        1.0, gt=0.0, le=100.0, description="Market depth of a tranche's paper, as a multiple of its original balance."
    )
    haircut_multiplier: float = Field(
        1.0, ge=0.0, le=50.0, description="Scales every repo haircut (capped at 1): the repo market's stress (Gorton–Metrick 2012)."
    )
    haircuts: dict[str, float] = Field(
        default_factory=dict,
        description="Repo haircut by rating grade (`AAA` … `D`, `equity`), overriding the defaults of engine/rules.py.",
    )
    rbc_factors: dict[str, float] = Field(
        default_factory=dict, description="NAIC RBC factor by designation (`\"1\"` … `\"6\"`), overriding the defaults."
    )
    execution_weight: float = Field(0.5, ge=0.0, le=1.0, description="Forced sales execute at f + θ·(p − f); ½ is the midpoint.")
    tol: float = Field(1e-10, gt=0.0, le=1e-2, description="Fixed point: stop when no sale moves by more than tol × depth.")
    max_rounds: int = Field(1000, ge=1, le=1_000_000, description="Fixed point: at most this many rounds.")
    pilot_paths: int = Field(
        8192, ge=64, le=1_000_000,
        description="Paths 0..pilot_paths−1 of the run fit the least-squares Monte Carlo marks (fewer if the run is smaller).",
    )
    nested_paths: int = Field(
        32, ge=0, le=256,
        description="Outer paths re-simulated to check the marks (0: no check); the errors are heavy-tailed, so a few paths can miss them.",
    )
    nested_inner: int = Field(256, ge=16, le=65_536, description="Inner paths per outer path of that check.")
    assets: dict[Name, MarketAsset] = Field(default_factory=dict, description="Assets besides the tranches, by name.")
    holdings_file: str | None = Field(
        None, description="CSV or Parquet of positions, columns `holder`, `asset`, `par`; added to the holders' inline positions."
    )

    @field_validator("haircuts")
    @classmethod
    def _haircuts(cls, v: dict[str, float]) -> dict[str, float]:
        from .rules import HAIRCUT_BY_RATING

        errs = [_ref_error((k,), f"unknown rating grade; use one of {', '.join(HAIRCUT_BY_RATING)}", k)
                for k in v if k not in HAIRCUT_BY_RATING]
        errs += [_ref_error((k,), "a haircut must be in [0, 1]", x) for k, x in v.items() if not 0.0 <= x <= 1.0]
        if errs:
            raise ValidationError.from_exception_data("ContagionConfig", errs)
        return v

    @field_validator("rbc_factors")
    @classmethod
    def _rbc(cls, v: dict[str, float]) -> dict[str, float]:
        errs = [_ref_error((k,), "unknown NAIC designation; use \"1\" … \"6\"", k) for k in v if k not in ("1", "2", "3", "4", "5", "6")]
        errs += [_ref_error((k,), "an RBC factor must be in [0, 1]", x) for k, x in v.items() if not 0.0 <= x <= 1.0]
        if errs:
            raise ValidationError.from_exception_data("ContagionConfig", errs)
        return v


class Holder(_Section):
    """A holder of tranches and other assets, and the rule it follows under stress (MODEL §6.4).

    The balance sheet is at the horizon before the shock, with every position at par (a unit of a
    tranche is a unit of its original balance; principal repaid by h is held as cash)."""

    name: Name = Field(..., description="Holder name (unique; the holdings file refers to it).")
    type: Literal["hedge_fund", "insurer", "pension", "asset_manager", "bank"] = Field(..., description="Which rule it follows.")
    cash: Usd = Field(0.0, description="Cash (never sold; pays margin calls and redemptions first).")
    debt: Usd = Field(0.0, description="Repo (hedge fund), liabilities (pension: funded ratio = assets/debt) or debt.")
    equity: Usd | None = Field(
        None, description="Equity; more than cash + positions − debt means other assets that are never sold. Default: no other assets."
    )
    positions: dict[str, Usd] = Field(
        default_factory=dict, description="Par held, by `deal.tranche` or by the name of a `contagion.assets` entry."
    )
    min_rbc_ratio: float = Field(2.0, gt=0.0, le=10.0, description="Insurers: sell when capital / RBC falls below this (2.0: NAIC Company Action Level).")
    redemption_elasticity: float = Field(2.5, ge=0.0, le=20.0, description="Asset managers: redemptions per unit of NAV loss (Farmer et al. 2020).")
    max_leverage: float | None = Field(None, ge=1.0, le=1000.0, description="Banks: sell when assets / equity exceeds this.")
    target_leverage: float | None = Field(None, ge=1.0, le=1000.0, description="Banks: sell down to this leverage.")

    @model_validator(mode="after")
    def _bank(self) -> Holder:
        errs = []
        if self.type == "bank":
            for f in ("max_leverage", "target_leverage"):
                if getattr(self, f) is None:
                    errs.append(_ref_error((f,), "a bank needs max_leverage and target_leverage", None))
            if not errs and self.target_leverage > self.max_leverage:
                errs.append(_ref_error(("target_leverage",), f"above max_leverage ({self.max_leverage:g})", self.target_leverage))
        if errs:
            raise ValidationError.from_exception_data("Holder", errs)
        return self


def _read_holdings(path: Path) -> list[tuple[str, str, float]]:
    """Rows (holder, asset, par) of a holdings file; errors are located at `contagion.holdings_file`."""
    def fail(msg: str, where: tuple = ()) -> ValidationError:
        return ValidationError.from_exception_data("Config", [_ref_error(("contagion", "holdings_file", *where), msg, str(path))])

    frame = _read_frame(path, "holdings file", fail)
    cols = [c for c in frame.columns if c not in HOLDINGS_COLUMNS]
    missing = [c for c in HOLDINGS_COLUMNS if c not in frame.columns]
    if cols or missing:
        raise fail(f"columns must be exactly {', '.join(HOLDINGS_COLUMNS)}"
                   + (f"; unknown: {', '.join(map(str, cols))}" if cols else "") + (f"; missing: {', '.join(missing)}" if missing else ""))
    rows = []
    for i, (h, a, par) in enumerate(frame[list(HOLDINGS_COLUMNS)].itertuples(index=False)):
        try:
            x = float(par)
        except (TypeError, ValueError):
            raise fail(f"par {par!r} is not a number", (f"row {i}", "par")) from None
        if not np.isfinite(x) or x < 0.0:
            raise fail(f"par {x:g} must be finite and ≥ 0", (f"row {i}", "par"))
        rows.append((str(h), str(a), x))
    return rows


# --------------------------------------------------------------------------- scenarios


class ImportanceConfig(_Section):
    """Importance sampling of the AI-demand factor (docs/model.md §9): the factor's level is shifted
    and the burst tilted towards the losses of a target tranche (optionally the target deal's
    defaults too), every path weighted by dP/dQ."""

    target: str | None = Field(
        None,
        description="Tranche `deal.tranche` the sampling law is tuned for; default: the most senior tranche of the first deal "
                    "(highest `attach`, else the first class its first principal step pays).",
    )
    view: Literal["cashflow", "allocation"] = Field(
        "cashflow", description="Which loss of the target the law is tuned for: the waterfall's, or the attach/detach allocation's."
    )
    factor_shift: float | None = Field(
        None, ge=-8.0, le=8.0,
        description="Shift m of the factor's mean level, in standard deviations (negative: towards a bust); "
                    "omitted: chosen by a cross-entropy pilot (0 under `factor_tilt = \"hazard\"`).",
    )
    burst_hazard: float | None = Field(
        None, gt=0.0, lt=1.0,
        description="Monthly burst hazard of the sampling law (the config's burst must be random); "
                    "omitted: chosen by the pilot when the burst is random, else untilted.",
    )
    plain_share: float = Field(
        0.1, ge=0.0, lt=1.0,
        description="Share α of the paths drawn from the model's own law (a defensive mixture): every weight stays ≤ 1/α, "
                    "so the statistics far from the target stay sound, for at most 1/(1 − α) more variance at it.",
    )
    strata: int | None = Field(
        None, ge=1, le=4096,
        description="Strata K of the factor along the shift direction (path j in stratum j mod K; 1: not stratified). "
                    "Must divide `run.paths` with at least 2 paths a stratum; omitted: the largest divisor of `run.paths` "
                    "up to 1024 leaving 16 paths a stratum, or 1 when there is none (a prime path count, or under 32 paths).",
    )
    horizon: int | None = Field(
        None, ge=1,
        description="The months 1..horizon that can hurt the target: the factor's mean is shifted to it (decaying after), and the "
                    "burst hazard and the defaults are tilted in them only (the model's law after); omitted: `run.months`.",
    )
    default_floor: float | None = Field(
        None, gt=0.0, lt=1.0,
        description="Tilt the defaults too (Glasserman–Li's second stage): on the tilted paths, each tenant of the target's deal "
                    "whose probability of defaulting by the `horizon` given the factor is below this floor has its hazard "
                    "scaled to reach it, the default month's likelihood ratio joining the weight; omitted: defaults not tilted.",
    )
    factor_tilt: Literal["shift", "hazard"] = Field(
        "shift",
        description="How the tilted paths draw the factor: `shift` moves its mean by `factor_shift`; `hazard` also draws each "
                    "path towards the months where the target deal's tenants are likely to default (docs/model.md §9; best "
                    "with `default_floor`, whose weight it evens out).",
    )
    pilot_paths: int = Field(4096, ge=256, le=1_000_000, description="Paths per round of the cross-entropy pilot.")
    pilot_rounds: int = Field(8, ge=1, le=50, description="Most rounds of the cross-entropy pilot.")


class Scenario(_Section):
    """A named set of overrides on the base config (engine/scenarios.py applies them)."""

    description: str = Field("", max_length=500, description="What the scenario stresses, in words.")
    set: dict[str, Any] = Field(
        ...,
        min_length=1,
        description=(
            "Overrides: dotted path → value, e.g. `\"network.firms.ai_lab.revenue\" = 6.5e9`. "
            "List items are named by their `name` (or by a 0-based index)."
        ),
    )


# --------------------------------------------------------------------------- root


class Config(_Section):
    """A whole run: the sections of MODEL.md §1–5."""

    run: RunConfig = Field(..., description="Run size, seed and horizon.")
    factor: FactorConfig = Field(default_factory=FactorConfig, description="AI-demand factor (§1).")
    gpu: GpuConfig = Field(default_factory=GpuConfig, description="GPU collateral (§3).")
    facility: FacilityConfig = Field(default_factory=FacilityConfig, description="Facility collateral (§3).")
    market_rent: MarketRentConfig = Field(default_factory=MarketRentConfig, description="Market-rent index (§3).")
    tenants: list[Tenant] = Field(..., min_length=1, description="Lessees (§2).")
    deals: list[Deal] = Field(..., min_length=1, description="Deals (§5).")
    network: NetworkConfig | None = Field(None, description="Circular-financing network between firms (§7).")
    deterministic: DeterministicConfig | None = Field(
        None, description="Run one deterministic what-if path instead of the Monte Carlo (`dcabs trace`, `dcabs breakeven`)."
    )
    contagion: ContagionConfig | None = Field(None, description="Stress horizon, marks and the fire-sale market (§6).")
    holders: list[Holder] = Field(default_factory=list, description="Holders of the tranches and other assets (§6).")
    importance: ImportanceConfig | None = Field(
        None, description="Importance sampling of the factor (docs/model.md §9); omitted: plain Monte Carlo."
    )
    scenarios: dict[Name, Scenario] = Field(
        default_factory=dict,
        description="Named stress scenarios: overrides of this config, run with `--scenario`. "
                    "`base` is reserved: it names the config as written.",
    )

    _holdings: list[tuple[str, str, float]] = PrivateAttr(default_factory=list)

    @field_validator("tenants", "deals", "holders")
    @classmethod
    def _unique_names(cls, items: list, info: ValidationInfo) -> list:
        names = [item.name for item in items]
        errs = [
            _ref_error((k, "name"), f"duplicate {info.field_name[:-1]} name {n!r}", n)
            for k, n in enumerate(names)
            if n in names[:k]
        ]
        if errs:
            raise ValidationError.from_exception_data("Config", errs)
        return items

    @field_validator("scenarios")
    @classmethod
    def _base_reserved(cls, scenarios: dict[str, Scenario]) -> dict[str, Scenario]:
        # `--scenario base` selects the config as written, so a scenario of that name would never run.
        if BASE_SCENARIO in scenarios:
            raise ValidationError.from_exception_data("Config", [_ref_error(
                (BASE_SCENARIO,),
                f"the name {BASE_SCENARIO!r} is reserved for the config as written (the unstressed run that "
                f"`--scenario {BASE_SCENARIO}` selects), so these overrides would never be applied: rename the scenario",
                BASE_SCENARIO)])
        return scenarios

    @model_validator(mode="after")
    def _collateral_graph(self) -> Config:
        errs: list[InitErrorDetails] = []
        tranches = {d.name: {t.name for t in d.tranches} for d in self.deals}
        held: dict[tuple[str, str], float] = {}
        for d, deal in enumerate(self.deals):
            for c, ct in enumerate(deal.collateral_tranches):
                loc = ("deals", d, "collateral_tranches", c)
                if ct.deal == deal.name:
                    errs.append(_ref_error((*loc, "deal"), "a deal cannot hold its own tranches", ct.deal))
                elif ct.deal not in tranches:
                    errs.append(_ref_error((*loc, "deal"), f"unknown deal {ct.deal!r}", ct.deal))
                elif ct.tranche not in tranches[ct.deal]:
                    errs.append(_ref_error((*loc, "tranche"), f"deal {ct.deal!r} has no tranche {ct.tranche!r}", ct.tranche))
                else:
                    held[(ct.deal, ct.tranche)] = held.get((ct.deal, ct.tranche), 0.0) + ct.fraction
        for (deal, tranche), total in held.items():
            if total > 1.0 + 1e-12:
                d = next(i for i, x in enumerate(self.deals) if x.name == deal)
                errs.append(_ref_error(("deals", d, "name"), f"tranche {tranche!r} is held {total:.4g} times over by ABS-of-ABS deals (at most 1)", deal))
        if not errs:
            cycle = _find_cycle({d.name: [ct.deal for ct in d.collateral_tranches] for d in self.deals})
            if cycle:
                d = next(i for i, x in enumerate(self.deals) if x.name == cycle[0])
                errs.append(_ref_error(("deals", d, "collateral_tranches"), "deals hold each other's tranches in a cycle: " + " → ".join(cycle), None))
        if errs:
            raise ValidationError.from_exception_data("Config", errs)
        return self

    @model_validator(mode="after")
    def _holders(self, info: ValidationInfo) -> Config:
        errs: list[InitErrorDetails] = []
        c = self.contagion
        if self.holders and c is None:
            errs.append(_ref_error(("holders",), "holders need a `contagion` section (the stress horizon)", None))
        if c is None:
            if errs:
                raise ValidationError.from_exception_data("Config", errs)
            return self
        for d, deal in enumerate(self.deals):
            if c.horizon_month >= deal.legal_final_month:
                errs.append(_ref_error(("contagion", "horizon_month"),
                                       f"must come before every deal's legal final; deal {deal.name!r} ends in month {deal.legal_final_month}",
                                       c.horizon_month))
        size = {f"{d.name}.{t.name}": t.balance for d in self.deals for t in d.tranches}
        clash = sorted(set(size) & set(c.assets))
        for name in clash:
            errs.append(_ref_error(("contagion", "assets", name), "an asset cannot share its name with a tranche", name))
        known = {**size, **{a: None for a in c.assets}}
        names = {h.name: i for i, h in enumerate(self.holders)}
        rows: list[tuple[str, str, float]] = []
        if c.holdings_file is not None:
            try:
                rows = _read_holdings(Path((info.context or {}).get("base_dir", ".")) / c.holdings_file)
            except ValidationError as exc:
                errs.extend(_line_errors(exc))
            for r, (h, a, _) in enumerate(rows):
                if h not in names:
                    errs.append(_ref_error(("contagion", "holdings_file", f"row {r}", "holder"), f"unknown holder {h!r}", h))
                if a not in known:
                    errs.append(_ref_error(("contagion", "holdings_file", f"row {r}", "asset"),
                                           f"unknown tranche or asset {a!r} (tranches are named `deal.tranche`)", a))
        held: dict[str, float] = {}
        par_of = [dict(h.positions) for h in self.holders]
        for i, h in enumerate(self.holders):
            for a, x in h.positions.items():
                if a not in known:
                    errs.append(_ref_error(("holders", i, "positions", a),
                                           f"unknown tranche or asset {a!r} (tranches are named `deal.tranche`)", a))
        for h, a, x in rows:
            if h in names and a in known:
                par_of[names[h]][a] = par_of[names[h]].get(a, 0.0) + x
        for pos in par_of:
            for a, x in pos.items():
                held[a] = held.get(a, 0.0) + x
        for a, total in held.items():
            if a in size and total > size[a] * (1.0 + 1e-12):
                errs.append(_ref_error(("holders",), f"tranche {a!r} is held {total:,.6g} in total, above its balance {size[a]:,.6g}", total))
        for i, h in enumerate(self.holders):
            at_par = sum(x for a, x in par_of[i].items() if a in known)
            floor = h.cash + at_par - h.debt
            # A pension's surplus may be negative (underfunded); every other holder needs equity.
            if h.equity is None and floor < 0.0 and h.type != "pension":
                errs.append(_ref_error(("holders", i, "debt"),
                                       f"negative equity: cash + positions at par − debt = {floor:,.6g}", h.debt))
            elif h.equity is not None and h.equity < floor * (1.0 - 1e-12) - 1e-6:
                errs.append(_ref_error(("holders", i, "equity"),
                                       f"below cash + positions at par − debt = {floor:,.6g}: the balance sheet cannot hold it", h.equity))
        if errs:
            raise ValidationError.from_exception_data("Config", errs)
        self._holdings = [(h.name, a, x) for h, pos in zip(self.holders, par_of) for a, x in pos.items()]
        return self

    @model_validator(mode="after")
    def _importance(self) -> Config:
        imp = self.importance
        if imp is None:
            return self
        errs: list[InitErrorDetails] = []
        if imp.target is not None:
            deal, _, tranche = imp.target.partition(".")
            names = {d.name: {t.name for t in d.tranches} for d in self.deals}
            if deal not in names:
                errs.append(_ref_error(("importance", "target"), f"unknown deal {deal!r} (write `deal.tranche`)", imp.target))
            elif tranche not in names[deal]:
                errs.append(_ref_error(("importance", "target"), f"deal {deal!r} has no tranche {tranche!r}", imp.target))
            elif imp.view == "allocation" and next(t for d in self.deals if d.name == deal for t in d.tranches
                                                   if t.name == tranche).attach is None:
                errs.append(_ref_error(("importance", "view"), f"tranche {imp.target!r} has no attach/detach points to allocate", imp.view))
        n = self.run.paths
        if (imp.strata is not None and imp.strata > 1 and self.deterministic is None  # a what-if ignores [importance]
                and (n % imp.strata or n // imp.strata < 2)):
            errs.append(_ref_error(("importance", "strata"),
                                   f"must divide run.paths = {n} (after any --paths or scenario override) with at least 2 "
                                   "paths a stratum (every stratum holds the same number of paths); choose a divisor, "
                                   "or 1 for none", imp.strata))
        for field, value, remedy in (("default_floor", imp.default_floor, "omit `default_floor`"),
                                     ("factor_tilt", imp.factor_tilt if imp.factor_tilt == "hazard" else None,
                                      'use factor_tilt = "shift"')):
            if value is None or self.deterministic is not None:
                continue
            name = self.importance_deal()
            deal = next((d for d in self.deals if d.name == name), None)
            if deal is not None and deal.leases is None and deal.lease_tape is None:
                errs.append(_ref_error(("importance", field), f"deal {name!r} has no leases of its own (its "
                                       "collateral is other deals' tranches, whose tenants are not tilted); target a deal "
                                       f"with leases, or {remedy}", value))
        if imp.horizon is not None and imp.horizon > self.run.months and self.deterministic is None:
            errs.append(_ref_error(("importance", "horizon"), f"is past the run's horizon run.months = {self.run.months} "
                                   "(after any scenario override); omit it for the whole horizon", imp.horizon))
        b = self.factor.burst
        if imp.burst_hazard is not None and not (b.month is None and 0.0 < b.monthly_hazard < 1.0):
            errs.append(_ref_error(("importance", "burst_hazard"),
                                   "tilts a random burst, but factor.burst is fixed (`month`) or has hazard 0 or 1", imp.burst_hazard))
        if errs:
            raise ValidationError.from_exception_data("Config", errs)
        return self

    def importance_deal(self) -> str:
        """The deal of ``importance.target``, else the first deal (whose tranche engine/importance.py
        then chooses): the deal whose tenants ``importance.default_floor`` tilts."""
        target = self.importance.target if self.importance is not None else None
        return target.partition(".")[0] if target else self.deals[0].name

    def positions(self) -> list[tuple[str, str, float]]:
        """Every position as (holder, asset, par): inline positions plus the holdings file."""
        return list(self._holdings)

    def deal_order(self) -> list[int]:
        """Deal indices in dependency order: every deal after the deals whose tranches it holds."""
        index = {d.name: i for i, d in enumerate(self.deals)}
        order: list[int] = []
        done: set[int] = set()

        def visit(i: int) -> None:
            if i in done:
                return
            done.add(i)
            for ct in self.deals[i].collateral_tranches:
                visit(index[ct.deal])
            order.append(i)

        for i in range(len(self.deals)):
            visit(i)
        return order

    @model_validator(mode="after")
    def _references(self, info: ValidationInfo) -> Config:
        # validate_config passes tenant names and the horizon in the context, so deals check their
        # own references and every missing name is reported at once. Without a context (a direct
        # Config.model_validate), the same checks run here.
        if (info.context or {}).get("tenant_names") is not None:
            return self
        errs: list[InitErrorDetails] = []
        known = {t.name for t in self.tenants}
        T = self.run.months
        for d, deal in enumerate(self.deals):
            if deal.legal_final_month > T:
                errs.append(_ref_error(("deals", d, "legal_final_month"), f"beyond run.months ({T})", deal.legal_final_month))
            errs.extend(deal.lease_start_errors(T, prefix=("deals", d)))
            errs.extend(deal.tenant_errors(known, prefix=("deals", d)))
        if self.factor.burst.month is not None and self.factor.burst.month > T:
            errs.append(_ref_error(("factor", "burst", "month"), f"beyond run.months ({T})", self.factor.burst.month))
        for k, firm in enumerate(self.network.firms if self.network else []):
            if firm.tenant is not None and firm.tenant not in known:
                errs.append(_ref_error(("network", "firms", k, "tenant"), f"unknown tenant {firm.tenant!r}", firm.tenant))
        if errs:
            raise ValidationError.from_exception_data("Config", errs)
        return self

    # ----------------------------------------------------------------- conveniences

    def resolved(self) -> dict[str, Any]:
        """The config as plain JSON-able data, defaults filled in."""
        return self.model_dump(mode="json")

    def digest(self) -> str:
        """SHA-256 of the resolved config and the bytes of every lease tape it reads."""
        h = hashlib.sha256(json.dumps(self.resolved(), sort_keys=True).encode())
        for deal in self.deals:
            if deal._tape_sha256:
                h.update(deal._tape_sha256.encode())
        if self.contagion is not None and self.contagion.holdings_file is not None:
            h.update(json.dumps(self._holdings).encode())
        return h.hexdigest()

    def with_run(self, **changes: Any) -> Config:
        """A copy with fields of ``run`` replaced, re-validated."""
        data = self.resolved()
        data["run"].update({k: v for k, v in changes.items() if v is not None})
        return validate_config(data, base_dir=self._base_dir, check_tranche_stack=self._check_tranche_stack)

    def with_overrides(self, overrides: dict[str, Any]) -> Config:
        """A copy with fields replaced by dotted path (``{"deals.hyperion.tranches.A.detach": 0.9}``;
        list items by their ``name`` or index), re-validated. Raises ConfigError naming the path."""
        from .scenarios import PathError, set_path  # scenarios.py builds on this module

        data = self.resolved()
        errors = []
        for path, value in overrides.items():
            try:
                set_path(data, path, value)
            except PathError as exc:
                errors.append((path, str(exc)))
        if errors:
            raise ConfigError(errors)
        return validate_config(data, base_dir=self._base_dir, check_tranche_stack=self._check_tranche_stack)

    _base_dir: Path = PrivateAttr(Path("."))
    # False for a sweep's points and the configs derived from them (see validate_config).
    _check_tranche_stack: bool = PrivateAttr(True)


def _find_cycle(edges: dict[str, list[str]]) -> list[str] | None:
    """A cycle of the directed graph ``edges`` as [a, b, ..., a], or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in edges.get(node, []):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = dfs(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in edges:
        if node not in state:
            found = dfs(node)
            if found:
                return found
    return None


def validate_config(data: dict[str, Any], base_dir: Path | str = ".", *, check_tranche_stack: bool = True) -> Config:
    """Validate a config given as a dict. Lease tapes are read relative to ``base_dir``.

    ``check_tranche_stack=False`` skips only the check that each deal's attach/detach points tile
    (:meth:`Deal.stack_errors`): a sweep moves one class's points alone, e.g. the senior's attach
    when it searches for the minimum subordination, and each class's allocation view depends on its
    own points only. Configs derived from the result (scenarios, overrides) inherit the setting."""
    base_dir = Path(base_dir)
    raw = data if isinstance(data, dict) else {}
    tenants = raw.get("tenants")
    # Only string names: an unhashable one (a list) is reported by the field check, not raised here.
    names = {t["name"] for t in tenants if isinstance(t, dict) and isinstance(t.get("name"), str)} if isinstance(tenants, list) else set()
    run = raw.get("run")
    months = run.get("months") if isinstance(run, dict) else None
    context = {"base_dir": base_dir, "tenant_names": names, "months": months if type(months) is int else None,
               "check_tranche_stack": check_tranche_stack}
    try:
        cfg = Config.model_validate(data, context=context)
    except ValidationError as exc:
        raise ConfigError(_errors_from_validation(exc)) from None
    cfg._base_dir = base_dir
    cfg._check_tranche_stack = check_tranche_stack
    if cfg.scenarios:
        from .scenarios import check_scenarios  # scenarios.py builds on this module

        check_scenarios(cfg)
    return cfg


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config file. Raises :class:`ConfigError` on any problem."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError([("", f"config file not found: {path}")])
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError([("", f"{path}: not valid TOML: {exc}")]) from None
    return validate_config(data, base_dir=path.parent)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the config file."""
    return Config.model_json_schema()
