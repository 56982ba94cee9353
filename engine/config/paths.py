"""Dotted paths into a resolved config: the one walker every override goes through.

A path walks the resolved config: table keys by name, list items by their ``name`` field (or a
0-based index), e.g. ``deals.hyperion.tranches.A.detach`` or ``network.obligations.0.end_year``.
An unknown key or item is an error that names the path, never ignored.
"""

from __future__ import annotations

from typing import Any


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


def locate(data: dict, path: str) -> tuple[Any, Any]:
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
    container, k = locate(data, path)
    container[k] = value


def get_path(data: dict, path: str) -> Any:
    """The value at dotted ``path`` inside ``data``."""
    container, k = locate(data, path)
    return container[k]


def apply_overrides(data: dict, overrides: dict[str, Any]) -> list[tuple[str, str]]:
    """Set every ``path → value`` of ``overrides`` inside ``data`` (in place); the (path, message)
    of each path that names nothing, all of them, for one error that lists every bad path."""
    errors = []
    for path, value in overrides.items():
        try:
            set_path(data, path, value)
        except PathError as exc:
            errors.append((path, str(exc)))
    return errors
