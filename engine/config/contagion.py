"""The `contagion` section and `holders`: the stress horizon, the market and the holders' rules (MODEL §6)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from engine.config.base import Name, Usd, _Section
from engine.config.errors import _ref_error
from engine.market.ratings import HAIRCUT_BY_RATING, rating_grade

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
        description="Repo haircut by rating grade (`AAA` … `D`, `equity`), overriding the defaults of engine/market/ratings.py.",
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
