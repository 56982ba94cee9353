"""ConfigError and the one way a pydantic error becomes lines that name the field path."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from engine.config.base import _STEP_TAGS


class ConfigError(Exception):
    """A config that failed validation. ``errors`` is a list of ``(path, message)`` pairs."""

    def __init__(self, errors: list[tuple[str, str]]):
        self.errors = errors
        super().__init__("\n".join(f"{p}: {m}" if p else m for p, m in errors))


class OverrideError(ConfigError):
    """Overrides whose dotted paths name nothing in the config (``errors``: path, message)."""


def format_loc(loc: tuple[Any, ...]) -> str:
    """Turn a pydantic location tuple into ``deals[0].tranches[1].detach``."""
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif i >= 2 and loc[i - 2] == "waterfall" and isinstance(loc[i - 1], int) and part in _STEP_TAGS:
            # pydantic inserts the discriminator tag of a union member; users never wrote it.
            continue
        else:
            out += ("." if out else "") + str(part)
    return out


def _errors_from_validation(exc: ValidationError, prefix: tuple = ()) -> list[tuple[str, str]]:
    out = []
    for e in exc.errors(include_url=False):
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling; see `dcabs schema`)"
        out.append((format_loc(prefix + tuple(e["loc"])), msg))
    return out


def _line_errors(exc: ValidationError) -> list[InitErrorDetails]:
    """Re-raise-able line errors of a ValidationError, keeping location, message and input."""
    return [
        _ref_error(tuple(e["loc"]), e["msg"], e.get("input")) for e in exc.errors(include_url=False)
    ]


def _ref_error(loc: tuple, message: str, value: Any) -> InitErrorDetails:
    return InitErrorDetails(
        type=PydanticCustomError("reference", message), loc=loc, input=value
    )
