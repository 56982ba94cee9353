"""Reading a run's tidy tables: their scenario order, tranche keys and the tables a run may lack."""

from __future__ import annotations

import pandas as pd

from engine.config import BASE_SCENARIO as BASE


def _with_scenario(frame: pd.DataFrame) -> pd.DataFrame:
    # Tables built outside run() may lack the column; they are then a single, unnamed base case.
    if "scenario" in frame.columns:
        return frame
    return frame.assign(scenario=BASE)[["scenario", *frame.columns]]


def _optional_table(tables: dict[str, pd.DataFrame], name: str) -> pd.DataFrame | None:
    """Table ``name`` with a scenario column (its view a string), or None when the run lacks it or it is empty."""
    frame = tables.get(name)
    if frame is None or frame.empty:
        return None
    frame = _with_scenario(frame)
    if "view" in frame.columns:
        frame = frame.assign(view=frame["view"].astype(str))
    return frame


def _ordered(values) -> list:
    return list(dict.fromkeys(values))


def _scenarios(tables: dict[str, pd.DataFrame]) -> list[str]:
    """Scenario names in run order (the order of the tranche table, base first when it ran)."""
    names: list[str] = []
    for key in ("tranches", "deals", "distributions", "fans", "network", "cascades"):
        frame = tables.get(key)
        if frame is not None and not frame.empty:
            names += _ordered(_with_scenario(frame)["scenario"].astype(str))
    names = _ordered(names)
    return sorted(names, key=lambda s: s != BASE)


def _tranche_keys(frame: pd.DataFrame) -> list[tuple[str, str]]:
    return _ordered(zip(frame["deal"].astype(str), frame["tranche"].astype(str)))
