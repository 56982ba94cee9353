"""`dcabs sweep` run: a grid of points, or a minimum-subordination search per outer point; the table printed and written."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandas as pd

from engine.api.checks import check_target_el, check_tolerance
from engine.api.sweeps import SWEEP_TABLE, grid, min_subordination, point_configs, sweep, write_sweep
from engine.cli.common import backend_kwargs, fail, invalid_config
from engine.cli.sweep import parse_sets
from engine.config import ConfigError, load_config, select
from engine.io.rundir import OutputExistsError, check_writable
from engine.simulation.backends import BackendError

SHOWN = ["scenario", "deal", "tranche", "view", "el", "el_se", "pd"]


def _targets(args, dims: dict[str, list]) -> tuple[str, str, str, float, float, float]:
    given = [args.target_el is not None, args.tranche is not None, args.vary is not None]
    if not all(given):
        raise ValueError("--target-el, --tranche and --vary go together")
    deal, dot, tranche = args.tranche.partition(".")
    if not dot or not deal or not tranche:
        raise ValueError(f"--tranche {args.tranche!r}: expected DEAL.TRANCHE")
    spec = next((s.partition("=")[2] for s in args.sets if s.partition("=")[0].strip() == args.vary), None)
    if spec is None or spec.count(":") != 2:
        raise ValueError(f"--vary {args.vary}: give its bracket as --set {args.vary}=lo:hi:tolerance")
    check_target_el(args.target_el, "--target-el")
    lo, hi, tol = (float(x) for x in spec.split(":"))
    check_tolerance(tol, f"--vary {args.vary}: the step (the bisection's tolerance)")
    return deal, tranche, args.vary, lo, hi, tol


def sweep_main(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        return invalid_config(args.config, exc)
    # A search and a grid on one config must not share a default directory (the second would be refused).
    default = f"{args.config.stem}-min-{args.tranche}" if args.tranche else f"{args.config.stem}-sweep"
    out = args.out or Path("runs") / default
    run_kw = dict(paths=args.paths, seed=args.seed, chunk_paths=args.chunk_paths, threads=args.threads)
    try:
        dims = parse_sets(args.sets)
        target = None
        if any(x is not None for x in (args.target_el, args.tranche, args.vary)):
            target = _targets(args, dims)
            outer = {p: v for p, v in dims.items() if p != target[2]}
            names = select(cfg, args.scenario)
            # Validate every outer point at both ends of the bracket before simulating anything.
            point_configs(cfg, {**outer, target[2]: [target[3], target[4]]}, names, run_kw, not args.keep_notes)
        check_writable(out, args.overwrite, kind="sweep")
        common = dict(progress=not args.no_progress, resize_notes=not args.keep_notes, **run_kw, **backend_kwargs(args))
        if target is None:
            frame = sweep(cfg, dims, scenario=args.scenario, **common)
        else:
            frame = _solve(cfg, outer, names, target, args.target_el, args.view, common)
    except ConfigError as exc:
        return fail([f"{args.config}: invalid sweep"] + [f"  {m}" for _, m in exc.errors])
    except (ValueError, OutputExistsError, BackendError) as exc:  # NoSolution and bad --set specs included
        return fail([str(exc)])
    manifest = {"config_sha256": cfg.digest(), "config": cfg.resolved(), "dimensions": {p: v for p, v in dims.items()},
                "seed": args.seed if args.seed is not None else cfg.run.seed,
                "paths": args.paths if args.paths is not None else cfg.run.paths, "rows": len(frame)}
    if target is not None:
        manifest["target"] = {"el": args.target_el, "tranche": args.tranche, "vary": target[2], "view": args.view,
                              "bracket": [target[3], target[4]], "tolerance": target[5]}
    try:
        write_sweep(frame, out, manifest, overwrite=args.overwrite)
    except OutputExistsError as exc:  # another process wrote or is writing `out` while this sweep ran
        return fail([str(exc)])
    shown = [c for c in dict.fromkeys([*dims, *SHOWN, "target_el"]) if c in frame.columns]
    print(frame[shown].to_string(index=False, float_format="{:.6f}".format))
    print(f"\nwrote {out}/{SWEEP_TABLE}.parquet, {out}/{SWEEP_TABLE}.csv and {out}/manifest.json")
    return 0


def _solve(cfg, outer: dict[str, list], names: list[str], target, target_el: float, view: str, common: dict) -> pd.DataFrame:
    """One minimum per outer point and scenario."""
    deal, tranche, path, lo, hi, tol = target
    rows = []
    for point in grid(outer) if outer else [{}]:
        base = _outer_config(cfg, point) if point else cfg
        for name in names:
            found = min_subordination(base, deal, tranche, target_el, path, lo, hi, tol, view=view,
                                      scenario=None if name == "base" else name, **common)
            where = ", ".join([*(f"{p}={v}" for p, v in point.items()), *([f"scenario {name}"] if name != "base" else [])])
            print((f"{where}: " if where else "") + found.describe(path, target_el, lo, tol))
            rows.append({**point, "scenario": name, "deal": deal, "tranche": tranche, "view": view,
                         "target_el": target_el, path: float(found), "el": found.el, "el_se": found.el_se,
                         "at_low_end": found.at_low_end, "evaluations": found.evaluations})
    return pd.DataFrame(rows)


def _outer_config(cfg, point: dict[str, Any]):
    """``cfg`` with an outer point's overrides, validated as a sweep point is (stack tiling unchecked);
    its scenarios are merged onto it, so they inherit that."""
    return cfg.derive(point, check_tranche_stack=False)  # point_configs has checked every path
