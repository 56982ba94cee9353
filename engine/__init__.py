"""dcabs: a structured-finance contagion Monte Carlo engine for data-center lease ABS.

Public API::

    from engine import load_config, run
    res = run(load_config("configs/hyperion.toml"), paths=20_000)
    res.tranches, res.deals        # pandas DataFrames
    res.plot.exceedance()          # a matplotlib Figure
    res.write("runs/x"); open_run("runs/x")
    load_config(path).with_overrides({"gpu.economic_life_months": 18})
"""

from .config import Config, ConfigError, load_config, validate_config
from .run import Results, open_run, run

__all__ = ["Config", "ConfigError", "Results", "load_config", "open_run", "run", "validate_config"]
