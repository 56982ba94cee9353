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
    min_subordination(cfg, "hyperion", "A", 0.001, "deals.hyperion.tranches.A.attach", 0.12, 0.6, 0.005, view="cashflow")
"""

import sys
import types

# Loaded on first use (PEP 562): `import engine`, `dcabs --help` and `dcabs validate` must not pay
# for numba, pandas and the kernels.
_EXPORTS = {
    "Config": "config", "ConfigError": "config", "load_config": "config", "validate_config": "config",
    "Results": "run", "open_run": "run", "run": "run",
    "min_subordination": "sweep", "sweep": "sweep",
    "Breakeven": "whatif", "breakeven": "whatif", "statement": "whatif",
}
__all__ = sorted(_EXPORTS)
# Functions named like their modules: importing the module engine.run must not rebind engine.run.
_SHADOWED = {"run", "sweep"}


class _Package(types.ModuleType):
    def __setattr__(self, name, value):
        if name in _SHADOWED and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
