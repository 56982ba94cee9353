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
    fire_sale(holdings, prices, depth, impact, holders)   # one fire-sale equilibrium, standalone
    clear(L, e)                    # Eisenberg–Noe / Rogers–Veraart clearing, standalone
    min_subordination(cfg, "hyperion", "A", 0.001, "deals.hyperion.tranches.A.attach", 0.12, 0.6, 0.005, view="cashflow")
"""

# Loaded on first use (PEP 562): `import engine`, `dcabs --help` and `dcabs validate` must not pay
# for numba, pandas and the kernels.
_EXPORTS = {
    "Config": "config", "ConfigError": "config", "load_config": "config", "validate_config": "config",
    "Results": "api.runs", "open_run": "api.runs", "run": "api.runs",
    "min_subordination": "api.sweeps", "sweep": "api.sweeps",
    "Breakeven": "api.whatif", "breakeven": "api.whatif", "statement": "api.whatif",
    "fire_sale": "simulation.fire_sale", "clear": "simulation.clearing",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    import importlib  # lazy by design: see _EXPORTS

    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
