"""The config layer: pydantic models of every section, the checks across them, and the ways in.

Pydantic and the standard library only (pandas only when a lease tape or holdings file is read).
One module per section; ``root`` holds :class:`Config`; ``paths`` is the one dotted-path walker
every override goes through; ``tables`` the one CSV/Parquet reader.
"""

from engine.config.base import BASE_SCENARIO, POINT_TOL
from engine.config.errors import ConfigError, OverrideError, format_loc
from engine.config.leases import LEASE_COLUMNS
from engine.config.paths import PathError, get_path, set_path
from engine.config.root import Config, json_schema, load_config, validate_config
from engine.config.scenarios import select

__all__ = ["BASE_SCENARIO", "LEASE_COLUMNS", "POINT_TOL", "Config", "ConfigError", "OverrideError", "PathError",
           "format_loc", "get_path", "json_schema", "load_config", "select", "set_path", "validate_config"]
