"""dcabs: a structured-finance contagion Monte Carlo engine for data-center lease ABS.

Public API::

    from engine import load_config, run
    res = run(load_config("configs/hyperion.toml"), paths=20_000)
    res.tranches, res.deals        # pandas DataFrames
"""

from .config import Config, ConfigError, load_config, validate_config
from .run import Results, run

__all__ = ["Config", "ConfigError", "Results", "load_config", "run", "validate_config"]
