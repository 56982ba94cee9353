"""`dcabs trace` and `dcabs breakeven`: one deterministic what-if path's statement, and a bisection on it."""

from __future__ import annotations

from pathlib import Path

from engine.api.whatif import breakeven, rounded, statement
from engine.cli.common import fail
from engine.io.files import atomic_write


def whatif(args, cfg) -> int:
    """`dcabs trace` and `dcabs breakeven`, after the config has validated."""
    if args.command == "breakeven":
        result = breakeven(cfg, tranche=args.tranche, vary=args.vary, lo=args.lo, hi=args.hi, scenario=args.scenario, tol=args.tol)
        print(result.describe())
        return 0
    out = args.out or Path("runs") / f"{args.config.stem}-trace-{args.path}.csv"
    if out.suffix.lower() not in (".csv", ".parquet"):
        return fail([f"{out}: the statement is written as .csv or .parquet"])
    table = statement(cfg, scenario=args.scenario, path=args.path)
    if out.suffix.lower() == ".csv":
        atomic_write(out, lambda tmp: rounded(table).to_csv(tmp, index=False))
    else:
        atomic_write(out, lambda tmp: table.to_parquet(tmp, index=False))
    print(f"wrote {out}: {len(table)} rows ({table['deal'].nunique()} deal(s) × {table['month'].max() + 1} months)")
    return 0
