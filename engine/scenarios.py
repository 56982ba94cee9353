"""Named scenarios: overrides of the base config by dotted path, each validated before any work.

A path walks the resolved config: table keys by name, list items by their ``name`` field (or a
0-based index), e.g. ``deals.hyperion.tranches.A.detach`` or ``network.obligations.0.end_year``.
An unknown key or item is an error that names the scenario and the path, never ignored.
"""

from __future__ import annotations

from typing import Any

from .config import BASE_SCENARIO, Config, ConfigError, validate_config

BASE = BASE_SCENARIO  # reserved: Config refuses a scenario of this name


class PathError(Exception):
    """A dotted path that names nothing in the config."""


def _step(node: Any, key: str, where: str) -> tuple[Any, Any]:
    """The container and the key/index that ``key`` names inside ``node``."""
    if isinstance(node, dict):
        if key not in node:
            raise PathError(f"{where or 'the config'} has no field {key!r}")
        return node, key
    if isinstance(node, list):
        for i, item in enumerate(node):
            if isinstance(item, dict) and item.get("name") == key:
                return node, i
        if key.isdigit() and int(key) < len(node):
            return node, int(key)
        names = [item.get("name") for item in node if isinstance(item, dict) and item.get("name")]
        hint = f" (names: {', '.join(names)})" if names else f" (indexes 0–{len(node) - 1})"
        raise PathError(f"{where} has no item {key!r}{hint}")
    raise PathError(f"{where} is a value, not a table or list")


def _locate(data: dict, path: str) -> tuple[Any, Any]:
    """The container and key/index that dotted ``path`` names inside ``data``."""
    keys = path.split(".")
    node: Any = data
    where = ""
    for key in keys[:-1]:
        container, k = _step(node, key, where)
        node = container[k]
        where = f"{where}.{key}" if where else key
    return _step(node, keys[-1], where)


def set_path(data: dict, path: str, value: Any) -> None:
    """Set ``value`` at dotted ``path`` inside ``data`` (in place)."""
    container, k = _locate(data, path)
    container[k] = value


def get_path(data: dict, path: str) -> Any:
    """The value at dotted ``path`` inside ``data``."""
    container, k = _locate(data, path)
    return container[k]


def scenario_config(cfg: Config, name: str) -> Config:
    """The base config with scenario ``name``'s overrides applied, validated. ``base`` is the config."""
    if name == BASE:
        return cfg
    if name not in cfg.scenarios:
        known = ", ".join([BASE, *cfg.scenarios])
        raise ConfigError([("scenario", f"unknown scenario {name!r}; this config has: {known}")])
    data = cfg.resolved()
    data.pop("scenarios")
    errors = []
    for path, value in cfg.scenarios[name].set.items():
        try:
            set_path(data, path, value)
        except PathError as exc:
            errors.append((f"scenarios.{name}.set.{path}", f"Scenario {name!r}: {exc}"))
    if errors:
        raise ConfigError(errors)
    try:
        return validate_config(data, base_dir=cfg._base_dir, check_tranche_stack=cfg._check_tranche_stack)
    except ConfigError as exc:
        raise ConfigError(
            [(f"scenarios.{name}", f"Scenario {name!r} failed config validation: {p}: {m}") for p, m in exc.errors]
        ) from None


def check_scenarios(cfg: Config) -> None:
    """Validate every scenario of ``cfg``; report all failures at once."""
    errors = []
    for name in cfg.scenarios:
        try:
            scenario_config(cfg, name)
        except ConfigError as exc:
            errors.extend(exc.errors)
    if errors:
        raise ConfigError(errors)


def select(cfg: Config, selector: str | None) -> list[str]:
    """Scenario names for ``--scenario``: none → base; ``all`` → base and every scenario; else a comma list."""
    if selector is None:
        return [BASE]
    if selector == "all":
        return [BASE, *cfg.scenarios]
    names = [s.strip() for s in selector.split(",") if s.strip()]
    unknown = [n for n in names if n != BASE and n not in cfg.scenarios]
    if unknown or not names:
        known = ", ".join([BASE, *cfg.scenarios])
        raise ConfigError([("scenario", f"unknown scenario {', '.join(map(repr, unknown)) or '(none)'}; this config has: {known}")])
    return names
