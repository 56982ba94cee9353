"""The `network` section: firms and obligations of the circular-financing network (MODEL §7)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationError, ValidationInfo, model_validator
from pydantic_core import InitErrorDetails

from engine.config.base import Name, _Section
from engine.config.errors import _ref_error


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
