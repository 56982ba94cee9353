"""What users call: ``runs`` (run, Results, open_run), ``sweeps`` (sweep, min_subordination),
``whatif`` (statement, breakeven); the standalone clearing and fire-sale solvers are
engine.simulation.clearing and engine.simulation.fire_sale. ``engine`` re-exports them all, loaded
on first use; this package imports nothing itself, so the command line can load its light parts."""
