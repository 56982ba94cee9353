"""The command line: ``dcabs [-v] validate | schema | run | sweep | report | trace | breakeven | bench``.

User errors (a bad config, an existing output directory) print every problem and exit with status
2, never a traceback. Nothing is created on disk before the config has validated.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path

from engine.cli.common import (
    add_backend_arguments, add_run_overrides, backend_kwargs, fail, invalid_config, os_error, resume_command
)
from engine.cli.sweep import add_sweep_parser, tolerance_arg

MAX_WARNINGS_PRINTED = 8


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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    try:
        return _main(args, argv)
    except OSError as exc:  # a full disk, an unwritable or misnamed output: the user's to fix, not a bug
        return fail([f"dcabs {args.command}: cannot write or read a file: {os_error(exc)}", *_resume_hint(args, argv)])
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
    # Start-up: imported here so `dcabs --help` answers without loading pydantic or numba.
    from engine.config import ConfigError, json_schema, load_config  # start-up: pydantic only past the parser

    if args.command == "validate":  # before the backends, so it answers without numba
        try:
            load_config(args.config)
        except ConfigError as exc:
            return invalid_config(args.config, exc)
        print("ok")
        return 0
    from engine.io.rundir import OutputExistsError  # start-up: pandas and pyarrow only past validate

    if args.command == "schema":
        print(json.dumps(json_schema(), indent=2))
        return 0
    if args.command == "bench":
        script = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"
        if not script.is_file():
            return fail(["dcabs bench needs the source checkout: benchmarks/run.py was not found next to the engine"])
        argv = [str(script)] + (["--quick"] if args.quick else []) + (["--json", str(args.json)] if args.json else [])
        import subprocess  # start-up: only for `dcabs bench`

        return subprocess.call([sys.executable, *argv])
    if args.command == "report":
        if not (args.run_dir / "manifest.json").is_file():
            return fail([f"{args.run_dir} is not a finished run directory (no manifest.json)"])
        from engine.report.html import build_report  # lazy: matplotlib only when a report is built

        try:
            path = build_report(args.run_dir)
        except (ValueError, OSError) as exc:  # a damaged run directory is a user error
            return fail([f"{args.run_dir}: cannot build the report: {exc}"])
        except (KeyError, TypeError, AttributeError, IndexError) as exc:  # deeper than read_manifest checks
            return fail([f"{args.run_dir}: cannot build the report: manifest.json or summary/ does not have the layout "
                          f"dcabs writes ({type(exc).__name__}: {exc}); rerun the run to rebuild them"])
        print(f"report: {path}")
        if args.open:
            import webbrowser  # start-up: only for `dcabs report --open`

            webbrowser.open(path.resolve().as_uri())
        return 0
    from engine.io.chunks import Interrupted, ResumeError  # start-up: numba only for the commands that simulate
    from engine.simulation.backends import BackendError  # start-up: numba only for the commands that simulate

    if args.command == "sweep":
        from engine.cli.sweep_run import sweep_main  # start-up: the sweep's API only when it runs

        return sweep_main(args)
    try:
        cfg = load_config(args.config)
        if args.command in ("trace", "breakeven"):
            from engine.cli.whatif import whatif  # start-up: numba only for the commands that simulate

            return whatif(args, cfg)
        out = args.out = args.out or Path("runs") / args.config.stem
        if args.resume and args.overwrite:
            return fail(["--resume continues a run and --overwrite starts it again: pass one of them"])
        from engine.api.runs import run  # start-up: numba only for the commands that simulate

        # run() merges and validates every scenario and checks `out` before it simulates or writes anything.
        res = run(cfg, scenario=args.scenario, progress=not args.no_progress, out=out, overwrite=args.overwrite,
                  paths_out=args.paths_out, paths=args.paths, seed=args.seed, chunk_paths=args.chunk_paths,
                  threads=args.threads, resume=args.resume, **backend_kwargs(args))
    except ConfigError as exc:
        return invalid_config(args.config, exc)
    except (OutputExistsError, ResumeError, BackendError) as exc:
        return fail([str(exc)])
    except Interrupted as exc:
        print(f"\n{exc}\nresume with:\n  {resume_command(argv, out)}", file=sys.stderr)
        return 128 + exc.signum
    from engine.analytics.diagnostics import estimator_line, run_warnings  # start-up: pandas only after a run
    from engine.cli.format import format_one_scenario, format_scenarios  # start-up: pandas only after a run

    t = res.manifest["timings"]
    if len(res.manifest["scenarios"]) > 1:
        print(format_scenarios(res, cfg))
    else:
        print(format_one_scenario(res))
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
    found = run_warnings(res.tables)
    if found:
        print("\nwarnings:")
        for line in found[:MAX_WARNINGS_PRINTED]:
            print(f"  - {line}")
        if len(found) > MAX_WARNINGS_PRINTED:
            print(f"  ... and {len(found) - MAX_WARNINGS_PRINTED} more in the report")
    if not args.no_report:
        from engine.report.html import build_report  # matplotlib: only when a report is built

        print(f"report: {build_report(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
