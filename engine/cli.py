"""The command line: ``dcabs [-v] validate | schema | run | sweep | report | trace | breakeven | bench``.

User errors (a bad config, an existing output directory) print every problem and exit with status
2, never a traceback. Nothing is created on disk before the config has validated.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas costs ~0.2 s to import; `dcabs --help` and `validate` don't need it
    import pandas as pd

EXIT_USER_ERROR = 2
MAX_WARNINGS_PRINTED = 8
SUMMARY_COLUMNS = ["scenario", "deal", "tranche", "view", "el", "el_se", "ess", "pd", "lgd", "var99", "es99", "pv_mean", "wal_mean", "p_interest_shortfall"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dcabs", description="Data-center lease ABS contagion Monte Carlo.")
    p.add_argument("-v", "--verbose", action="store_true", help="log chunk commits, resume skips and backend start-up")
    sub = p.add_subparsers(dest="command", required=True)
    v = sub.add_parser("validate", help="check a config; print `ok` or every error")
    v.add_argument("config", type=Path)
    sub.add_parser("schema", help="print the config's JSON Schema")
    r = sub.add_parser("run", help="run the Monte Carlo and write the run directory")
    r.add_argument("config", type=Path)
    r.add_argument("--scenario", help="a scenario name, a comma-separated list, or `all` (base and every scenario)")
    add_run_overrides(r)
    r.add_argument("--out", type=Path, help="run directory (default: runs/<config name>)")
    r.add_argument("--overwrite", action="store_true", help="replace a finished run in --out")
    r.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    r.add_argument("--no-report", action="store_true", help="skip report.html and figures/")
    r.add_argument("--paths-out", action="store_true", help="also write every path's outputs as the Parquet dataset DIR/paths/")
    r.add_argument("--resume", action="store_true", help="continue an interrupted run in --out from its committed chunks")
    add_backend_arguments(r)
    from .sweep import add_sweep_parser, tolerance_arg

    add_sweep_parser(sub)
    b = sub.add_parser("bench", help="run the hot-loop benchmark suite in benchmarks/")
    b.add_argument("--quick", action="store_true", help="fewer paths; peak RSS at 10^5 vs 10^6 paths")
    b.add_argument("--json", type=Path, help="also write the measurements as JSON")
    rep = sub.add_parser("report", help="build report.html and figures/ for a finished run directory")
    rep.add_argument("run_dir", type=Path)
    rep.add_argument("--open", action="store_true", help="open the report in a web browser")
    tr = sub.add_parser("trace", help="write the monthly cash-flow statement of one path (CSV or Parquet)")
    tr.add_argument("config", type=Path)
    tr.add_argument("--scenario", help="a scenario name (default: the config as written)")
    tr.add_argument("--path", type=int, default=0, help="path index (0 for a deterministic what-if)")
    tr.add_argument("--out", type=Path, help="output file, .csv or .parquet (default: runs/<config>-trace-<path>.csv)")
    be = sub.add_parser("breakeven", help="bisect a config value for the point where a tranche first loses principal (deterministic what-if)")
    be.add_argument("config", type=Path)
    be.add_argument("--tranche", required=True, help="tranche name, or DEAL.TRANCHE")
    be.add_argument("--vary", required=True, help="dotted config path, e.g. gpu.economic_life_months")
    be.add_argument("--lo", type=float, help="bracket low end (default: a quarter of the current value)")
    be.add_argument("--hi", type=float, help="bracket high end (default: four times the current value)")
    be.add_argument("--tol", type=tolerance_arg, default=1e-3, help="bracket width at which to stop (default 0.001)")
    be.add_argument("--scenario", help="a scenario that sets the deterministic what-if")
    return p


def _whatif(args, cfg) -> int:
    """`dcabs trace` and `dcabs breakeven`, after the config has validated."""
    from .whatif import breakeven, statement

    if args.command == "breakeven":
        result = breakeven(cfg, tranche=args.tranche, vary=args.vary, lo=args.lo, hi=args.hi, scenario=args.scenario, tol=args.tol)
        print(result.describe())
        return 0
    out = args.out or Path("runs") / f"{args.config.stem}-trace-{args.path}.csv"
    if out.suffix.lower() not in (".csv", ".parquet"):
        return _fail([f"{out}: the statement is written as .csv or .parquet"])
    table = statement(cfg, scenario=args.scenario, path=args.path)
    from .outputs import _atomic_write
    from .whatif import rounded

    if out.suffix.lower() == ".csv":
        _atomic_write(out, lambda tmp: rounded(table).to_csv(tmp, index=False))
    else:
        _atomic_write(out, lambda tmp: table.to_parquet(tmp, index=False))
    print(f"wrote {out}: {len(table)} rows ({table['deal'].nunique()} deal(s) × {table['month'].max() + 1} months)")
    return 0


def add_run_overrides(p: argparse.ArgumentParser) -> None:
    """--paths, --seed, --chunk-paths, --threads: the fields of [run] a command line may override."""
    p.add_argument("--paths", type=int, help="override run.paths")
    p.add_argument("--seed", type=int, help="override run.seed")
    p.add_argument("--chunk-paths", type=int, help="override run.chunk_paths")
    p.add_argument("--threads", type=int, help="override run.threads (0, the default: every available core)")


def add_backend_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=("inprocess", "dask"), default="inprocess",
                   help="where chunks run: this process (default) or Dask tasks")
    p.add_argument("--workers", type=int, help="--backend dask: a local cluster of N worker processes")
    p.add_argument("--scheduler", help="--backend dask: the address of a running Dask scheduler")
    p.add_argument("--retries", type=int, default=3, help="--backend dask: retries of a failed chunk task (default 3)")


def backend_kwargs(args: argparse.Namespace) -> dict:
    return dict(backend=args.backend, workers=args.workers, scheduler=args.scheduler, retries=args.retries)


def resume_command(argv: list[str], out: Path) -> str:
    """The command that continues an interrupted ``dcabs run``: the same arguments, the same
    --out, --resume, and never --overwrite (which would discard the committed chunks)."""
    args = [a for a in argv if a not in ("--overwrite", "--resume")]
    if not any(a == "--out" or a.startswith("--out=") for a in args):
        args += ["--out", str(out)]
    prog = sys.argv[0] if Path(sys.argv[0]).name == "dcabs" else "dcabs"
    return shlex.join([prog, *args, "--resume"])


def _fail(lines: list[str]) -> int:
    for line in lines:
        print(line, file=sys.stderr)
    return EXIT_USER_ERROR


def _invalid_config(path: Path, exc) -> int:
    """Print every error of a ConfigError raised loading ``path``; the exit status."""
    return _fail([f"{path}: invalid config"] + [f"  {p}: {m}" if p else f"  {m}" for p, m in exc.errors])


def format_summary(tranches: pd.DataFrame) -> str:
    t = tranches[SUMMARY_COLUMNS].copy()
    fmt = {c: "{:.6f}".format for c in ("el", "el_se", "pd", "lgd", "var99", "es99", "pv_mean", "p_interest_shortfall")}
    fmt["wal_mean"] = "{:.2f}".format
    fmt["ess"] = "{:.0f}".format
    return t.to_string(index=False, formatters=fmt, na_rep="-")


def format_one_scenario(res) -> str:
    """The full tables of a one-scenario run: every tranche statistic, firm defaults, the network's
    effect and who bears the loss."""
    parts = [format_summary(res.tranches)]
    if res.network is not None:
        parts += ["\nfirm defaults (own failure vs contagion through the network):",
                  res.network.drop(columns="paths").to_string(index=False, float_format="{:.4f}".format)]
        if "el_without_network" in res.tranches:
            both = res.tranches[["scenario", "deal", "tranche", "view", "el", "el_without_network"]].rename(
                columns={"el": "el_with_network"})
            parts += ["\ntranche EL with and without the network (same paths):", both.to_string(index=False, float_format="{:.6f}".format)]
    if res.holder_types is not None:
        parts.append(format_who_bears(res))
    return "\n".join(parts)


def _pivot(frame: pd.DataFrame, columns: str, value: str, order: list[str], fmt: str) -> str:
    table = frame.pivot_table(index="scenario", columns=columns, values=value, sort=False, dropna=False)
    table = table.reindex([s for s in order if s in table.index])
    table.index.name = None
    table.columns.name = None
    return table.to_string(float_format=fmt.format, na_rep="-")


def format_scenarios(res, cfg) -> str:
    """A run of several scenarios, compactly: what each scenario stresses, then scenario × tranche
    (and × firm, × holder type) pivots of the headline numbers. The full tables are in summary/."""
    import pandas as pd  # noqa: F811  (a type name only, at module level)

    order = list(res.manifest["scenarios"])
    width = max(len(n) for n in order)
    lines = ["scenarios:"]
    for name in order:
        what = "the config as written" if name == "base" else (cfg.scenarios[name].description or "(no description)")
        lines.append(f"  {name:<{width}}  {what}")
    t = res.tranches.assign(tranche=res.tranches["deal"] + "." + res.tranches["tranche"])
    se = float(t["el_se"].max())
    for view, what in (("cashflow", "what the notes lose in the waterfall"), ("allocation", "the pool's loss cut at attach/detach")):
        part = t[t["view"] == view]
        if len(part):
            lines += [f"\nexpected loss per unit of par, {view} view ({what}; Monte Carlo SE at most {se:.4f}):",
                      _pivot(part, "tranche", "el", order, "{:.4f}")]
    if res.network is not None:
        lines += ["\nP(firm default), own failure or contagion through the network:",
                  _pivot(res.network, "firm", "p_default", order, "{:.4f}")]
    if res.holder_types is not None:
        h = res.holder_types.assign(el_total=res.holder_types["el_total"] / 1e6)
        month = int(res.system["horizon_month"].iloc[0])
        lines += [f"\nwho bears the loss at month {month} (the stress horizon): expected loss by holder type, $m (direct + fire-sale):",
                  _pivot(h, "type", "el_total", order, "{:,.1f}"),
                  "\nP(a holder of that type fails):",
                  _pivot(res.holder_types.assign(p_any_failure=res.holder_types["p_any_failure"].where(
                      res.holder_types["type"] != "pension")), "type", "p_any_failure", order, "{:.4f}"),
                  PENSION_NOTE]
        system = res.system.set_index("scenario").reindex(order)
        system = pd.DataFrame({"direct $m": system["el_direct"] / 1e6, "fire-sale $m": system["el_fire_sale"] / 1e6,
                               "amplif.": system["amplification"], "P(a holder fails)": system["p_any_failure"]})
        system.index.name = None
        lines += ["\nthe system (every holder):", system.to_string(formatters={
            "direct $m": "{:,.1f}".format, "fire-sale $m": "{:,.1f}".format, "amplif.": "{:.2f}x".format,
            "P(a holder fails)": "{:.4f}".format})]
    lines.append("\nevery statistic (SEs, PD, LGD, VaR, ES, WAL, per holder) is in summary/*.parquet and the report; "
                 "`--scenario NAME` prints one scenario's full tables")
    return "\n".join(lines)


# A pension fund losing billions with no failure reads as a bug; it is the model's rule.
PENSION_NOTE = ("  (pension '-': pensions never fail in the model (no margin call, capital floor or redemptions);\n"
                "   their loss shows as a lower funded ratio: docs/model.md, holder rules)")


def format_who_bears(res) -> str:
    """"Who bears the loss": expected losses by holder type at the stress horizon, direct and from
    fire sales, with the amplification ratio; then the system line of each scenario."""
    t = res.holder_types.copy()
    t["p_any_failure"] = t["p_any_failure"].where(t["type"] != "pension")
    for c in ("el_direct", "el_fire_sale", "el_total"):
        t[c] = t[c] / 1e6
    t = t.rename(columns={"el_direct": "direct $m", "el_fire_sale": "fire-sale $m", "el_total": "total $m",
                          "share_of_system_loss": "share", "amplification": "amplif.", "p_any_failure": "P(failure)"})
    fmt = {"direct $m": "{:,.1f}".format, "fire-sale $m": "{:,.1f}".format, "total $m": "{:,.1f}".format,
           "share": "{:.1%}".format, "amplif.": "{:.2f}x".format, "P(failure)": "{:.4f}".format}
    month = int(res.system["horizon_month"].iloc[0])
    lines = [f"\nwho bears the loss at month {month} (expected, by holder type; amplification = (direct + fire-sale) / direct):",
             t.to_string(index=False, formatters=fmt, na_rep="-")]
    if (t["type"] == "pension").any():
        lines.append(PENSION_NOTE)
    for row in res.system.itertuples(index=False):
        lines.append(f"  {row.scenario}: system {row.el_direct / 1e6:,.1f} $m direct + {row.el_fire_sale / 1e6:,.1f} $m fire-sale "
                     f"({row.amplification:.2f}x), P(a holder fails) {row.p_any_failure:.4f}, {row.rounds_mean:.2f} rounds on average")
    outside = res.holders[res.holders["type"] == "outside"]
    for row in outside.itertuples(index=False):
        lines.append(f"  {row.scenario}: unheld par and buyers of forced sales lose {row.el_total / 1e6:,.1f} $m more (holders.parquet, `(outside)`)")
    return "\n".join(lines)


def _os_error(exc: OSError) -> str:
    import errno

    if exc.errno in (errno.EEXIST, errno.ENOTDIR) and exc.filename:
        # mkdir under a file says "File exists" of the file, which reads as if the target existed.
        for part in (Path(exc.filename), *Path(exc.filename).parents):
            if part.exists() and not part.is_dir():
                return f"{part} is a file, not a directory"
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    try:
        return _main(args, argv)
    except OSError as exc:  # a full disk, an unwritable or misnamed output: the user's to fix, not a bug
        return _fail([f"dcabs {args.command}: cannot write or read a file: {_os_error(exc)}", *_resume_hint(args, argv)])
    except KeyboardInterrupt:  # a second Ctrl-C: stop now, without the chunk in progress
        print("\n" + "\n".join(["interrupted", *_resume_hint(args, argv)]), file=sys.stderr)
        return 128 + signal.SIGINT


def _resume_hint(args: argparse.Namespace, argv: list[str]) -> list[str]:
    out = getattr(args, "out", None)
    if args.command != "run" or out is None or not any((Path(out) / "chunks").rglob("*.npz")):
        return []
    return [f"the committed chunks in {out} are kept; resume with:\n  {resume_command(argv, out)}"]


def _main(args: argparse.Namespace, argv: list[str]) -> int:
    if args.verbose:
        # The engine's own INFO lines only; libraries (distributed, numba) stay at WARNING.
        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
        logging.getLogger("engine").setLevel(logging.INFO)
    # Imported here so `dcabs --help` answers without loading numba.
    from .config import ConfigError, json_schema, load_config

    if args.command == "validate":  # before the backends, so it answers without numba
        try:
            load_config(args.config)
        except ConfigError as exc:
            return _invalid_config(args.config, exc)
        print("ok")
        return 0
    from .outputs import OutputExistsError

    if args.command == "schema":
        print(json.dumps(json_schema(), indent=2))
        return 0
    if args.command == "bench":
        script = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"
        if not script.is_file():
            return _fail(["dcabs bench needs the source checkout: benchmarks/run.py was not found next to the engine"])
        argv = [str(script)] + (["--quick"] if args.quick else []) + (["--json", str(args.json)] if args.json else [])
        import subprocess

        return subprocess.call([sys.executable, *argv])
    if args.command == "report":
        if not (args.run_dir / "manifest.json").is_file():
            return _fail([f"{args.run_dir} is not a finished run directory (no manifest.json)"])
        from .report import build_report

        try:
            path = build_report(args.run_dir)
        except (ValueError, OSError) as exc:  # a damaged run directory is a user error
            return _fail([f"{args.run_dir}: cannot build the report: {exc}"])
        except (KeyError, TypeError, AttributeError, IndexError) as exc:  # deeper than read_manifest checks
            return _fail([f"{args.run_dir}: cannot build the report: manifest.json or summary/ does not have the layout "
                          f"dcabs writes ({type(exc).__name__}: {exc}); rerun the run to rebuild them"])
        print(f"report: {path}")
        if args.open:
            import webbrowser

            webbrowser.open(path.resolve().as_uri())
        return 0
    from .backends import BackendError
    from .resume import Interrupted, ResumeError

    if args.command == "sweep":
        from .sweep import sweep_main

        return sweep_main(args)
    try:
        cfg = load_config(args.config)
        if args.command in ("trace", "breakeven"):
            return _whatif(args, cfg)
        out = args.out = args.out or Path("runs") / args.config.stem
        if args.resume and args.overwrite:
            return _fail(["--resume continues a run and --overwrite starts it again: pass one of them"])
        from .run import run

        # run() merges and validates every scenario and checks `out` before it simulates or writes anything.
        res = run(cfg, scenario=args.scenario, progress=not args.no_progress, out=out, overwrite=args.overwrite,
                  paths_out=args.paths_out, paths=args.paths, seed=args.seed, chunk_paths=args.chunk_paths,
                  threads=args.threads, resume=args.resume, **backend_kwargs(args))
    except ConfigError as exc:
        return _invalid_config(args.config, exc)
    except (OutputExistsError, ResumeError, BackendError) as exc:
        return _fail([str(exc)])
    except Interrupted as exc:
        print(f"\n{exc}\nresume with:\n  {resume_command(argv, out)}", file=sys.stderr)
        return 128 + exc.signum
    t = res.manifest["timings"]
    if len(res.manifest["scenarios"]) > 1:
        print(format_scenarios(res, cfg))
    else:
        print(format_one_scenario(res))
    from .report import estimator_line

    if any(info.get("importance") for info in res.manifest["scenarios"].values()):
        print("\n" + estimator_line(res.manifest, list(res.manifest["scenarios"])))
    print(
        f"\n{len(res.manifest['scenarios'])} scenario(s) × {res.manifest['paths']:,} paths in {t['simulate_s']:.2f} s ({t['paths_per_s'] or 0:,.0f} paths/s, "
        f"{res.manifest['threads']} threads; compile/cache load {t['compile_s']:.2f} s)"
        + (f"; {res.manifest['chunks_resumed']} chunk(s) resumed" if res.manifest["chunks_resumed"] else "")
        + (f"; backend {res.manifest['backend']}" if res.manifest["backend"] != "inprocess" else "")
        + (f" with {res.manifest['workers']} local workers" if res.manifest.get("workers") else "")
    )
    print(f"wrote {out}/manifest.json and {out}/summary/{{{','.join(res.tables)}}}.parquet")
    from .report import build_report, warnings

    found = warnings(res.tables)
    if found:
        print("\nwarnings:")
        for line in found[:MAX_WARNINGS_PRINTED]:
            print(f"  - {line}")
        if len(found) > MAX_WARNINGS_PRINTED:
            print(f"  ... and {len(found) - MAX_WARNINGS_PRINTED} more in the report")
    if not args.no_report:
        print(f"report: {build_report(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
