"""dcabs: a structured-finance contagion Monte Carlo engine for data-center lease ABS.

Public API::

    from engine import load_config, run
    res = run(load_config("configs/hyperion.toml"), paths=20_000)
    res.tranches, res.deals        # pandas DataFrames
    res.plot.exceedance()          # a matplotlib Figure
    res.write("runs/x"); open_run("runs/x")
    load_config(path).with_overrides({"gpu.economic_life_months": 18})
    statement(cfg, path=7)         # one path's monthly cash-flow statement
    breakeven(cfg, tranche="B", vary="gpu.economic_life_months")   # deterministic what-if
    sweep(cfg, {"tenants.hyperscaler.pd": [0.001, 0.01]}, paths=20_000)   # one table, a row per point
    min_subordination(cfg, "hyperion", "A", 0.01, "deals.hyperion.tranches.A.attach", 0.12, 0.95, 0.005)
"""

from .config import Config, ConfigError, load_config, validate_config
from .run import Results, open_run, run
from .sweep import min_subordination, sweep
from .whatif import Breakeven, breakeven, statement

__all__ = ["Breakeven", "Config", "ConfigError", "Results", "breakeven", "load_config", "min_subordination", "open_run",
           "run", "statement", "sweep", "validate_config"]
