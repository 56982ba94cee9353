"""The `deals` section: one deal's leases, structure and their cross-checks (MODEL §4–5)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np
from pydantic import Field, PrivateAttr, ValidationError, ValidationInfo, model_validator
from pydantic_core import InitErrorDetails

from engine.config.base import _SHOWN_BAD_ROWS, POINT_TOL, Name, _Section
from engine.config.errors import _line_errors, _ref_error
from engine.config.leases import Lease, LeaseColumns
from engine.config.structure import Ard, CollateralTranche, Fees, Reserve, Step, Tranche, Triggers


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
                from engine.config.tables import _read_lease_tape  # lazy: pandas only when a tape is read

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
