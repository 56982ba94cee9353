"""Checks of the search APIs' numeric arguments, light enough for the command line's parser."""

from __future__ import annotations

import math
import numbers
from typing import Any


def check_target_el(value: Any, name: str = "target_el") -> float:
    """An expected-loss target: a fraction of the tranche's balance strictly between 0 and 1. At 0
    no finite bracket can be shown to meet it, at 1 or more every value meets it; 5 is 5%'s typo."""
    real = _is_real(value)
    if not real or not 0.0 < value < 1.0:
        hint = f"; did you mean {value / 100:g} ({value:g}%)?" if real and 1.0 <= value < 100.0 else ""
        raise ValueError(f"{name} {value!r}: an expected-loss target is a fraction of the tranche's balance "
                         f"in (0, 1), e.g. 0.01 for 1%{hint}")
    return float(value)


def check_tolerance(value: Any, name: str = "tol") -> float:
    """A bisection tolerance: finite and > 0 (0 never stops, NaN and ∞ stop at once)."""
    if not _is_real(value) or not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name} {value!r}: the tolerance must be a finite number > 0")
    return float(value)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
