"""What every subcommand shares: the run and backend options, and the one place errors are printed."""

from __future__ import annotations

import argparse
import errno
import shlex
import sys
from pathlib import Path

EXIT_USER_ERROR = 2


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


def fail(lines: list[str]) -> int:
    for line in lines:
        print(line, file=sys.stderr)
    return EXIT_USER_ERROR


def invalid_config(path: Path, exc) -> int:
    """Print every error of a ConfigError raised loading ``path``; the exit status."""
    return fail([f"{path}: invalid config"] + [f"  {p}: {m}" if p else f"  {m}" for p, m in exc.errors])


def os_error(exc: OSError) -> str:
    if exc.errno in (errno.EEXIST, errno.ENOTDIR) and exc.filename:
        # mkdir under a file says "File exists" of the file, which reads as if the target existed.
        for part in (Path(exc.filename), *Path(exc.filename).parents):
            if part.exists() and not part.is_dir():
                return f"{part} is a file, not a directory"
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"
