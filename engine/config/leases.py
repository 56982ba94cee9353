"""Tenants and leases (MODEL §2, §4), and a lease tape's columns as arrays."""

from __future__ import annotations

import math
import operator
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Callable, Literal, Union

import annotated_types
import numpy as np
from pydantic import Field, TypeAdapter, ValidationError, model_validator

from engine.config.base import Name, _Section
from engine.config.errors import _ref_error


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
