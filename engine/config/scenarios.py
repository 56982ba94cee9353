"""Named scenarios: overrides of the config by dotted path, and which of them a run selects."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from engine.config.base import BASE_SCENARIO, _Section
from engine.config.errors import ConfigError


class Scenario(_Section):
    """A named set of overrides on the base config (Config.scenario applies them)."""

    description: str = Field("", max_length=500, description="What the scenario stresses, in words.")
    set: dict[str, Any] = Field(
        ...,
        min_length=1,
        description=(
            "Overrides: dotted path → value, e.g. `\"network.firms.ai_lab.revenue\" = 6.5e9`. "
            "List items are named by their `name` (or by a 0-based index)."
        ),
    )


def select(cfg, selector: str | None) -> list[str]:
    """Scenario names for ``--scenario`` in config ``cfg``: none → base; ``all`` → base and every
    scenario; else a comma list."""
    scenarios = cfg.scenarios
    if selector is None:
        return [BASE_SCENARIO]
    if selector == "all":
        return [BASE_SCENARIO, *scenarios]
    names = [s.strip() for s in selector.split(",") if s.strip()]
    unknown = [n for n in names if n != BASE_SCENARIO and n not in scenarios]
    if unknown or not names:
        known = ", ".join([BASE_SCENARIO, *scenarios])
        raise ConfigError([("scenario", f"unknown scenario {', '.join(map(repr, unknown)) or '(none)'}; this config has: {known}")])
    return names
