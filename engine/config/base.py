"""Field types and the frozen, closed base model every section derives from."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.\-]*$"
Name = Annotated[str, Field(pattern=NAME_PATTERN, min_length=1, max_length=64)]
Month = Annotated[int, Field(ge=0, le=600)]
Usd = Annotated[float, Field(ge=0.0, le=1e13)]
FactorValue = Annotated[float, Field(ge=-20.0, le=20.0)]
BASE_SCENARIO = "base"
# The waterfall step types: the error formatter names a step by its tag.
_STEP_TAGS = {"fees", "interest", "reserve", "principal", "trap", "residual"}
# A tape's bad rows listed in an error; the rest are counted.
_SHOWN_BAD_ROWS = 20
# Attach/detach points closer than this meet: a computed 1 − 0.88 must still tile with 0.12.
POINT_TOL = 1e-9


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
