"""The `importance` section: the sampling law of importance sampling (docs/model.md §9)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from engine.config.base import _Section


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
