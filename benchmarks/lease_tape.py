"""Memory and time of a large lease tape: reading and checking it (`load_config`), then `compile_plan`.

    python benchmarks/lease_tape.py [--rows 100000 1000000] [--format csv] [--dir DIR]

Each size runs in a fresh process, which first loads and compiles a 2-row tape of the same shape,
so that every lazy import (the CSV parser, pyarrow, tqdm, the numba kernels from the cache) is in
its baseline. It then reports the peak RSS (``ru_maxrss``) above that baseline after `load_config`
and after `compile_plan`, per lease, and the seconds of each. A fresh process per size, because
``ru_maxrss`` only ever grows. The tapes (22 of the 29 lease columns, a unique `id` per row, 500
tenants, two thirds of the leases with options: renewals or re-letting) are written once into
``--dir``; a 1e6-row CSV is about 100 MB. 120 months, so compile_plan's lease x month arrays are
(rows, 121).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE / "workloads")]

import generate  # noqa: E402  (benchmarks/workloads/generate.py: the workloads' config text)

MONTHS = 120
TENANTS = 500


def tape(n: int, seed: int = 17) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    usd = min(1.0, 10_000 / n)  # a pool of the `large` workload's size, so that its notes stay within bounds
    return pd.DataFrame({
        "id": [f"L{i:07d}" for i in range(n)],
        "tenant": np.char.add("t", np.char.zfill(rng.integers(TENANTS, size=n).astype(str), 3)),
        "start_month": rng.integers(0, 12, n),
        "term_months": rng.integers(24, MONTHS - 12, n),
        "monthly_rent": np.round(rng.uniform(0.5e6, 3e6, n) * usd, 1),
        "escalator": 0.02,
        "gpu_cost": np.round(rng.uniform(10e6, 60e6, n) * usd, 1),
        "shell_value": np.round(rng.uniform(5e6, 30e6, n) * usd, 1),
        "recovery": rng.choice(["sale", "fixed", "relet"], n),
        "recovery_rate": 0.4,
        "recovery_lag": rng.integers(3, 12, n),
        "sale_lag": 3,
        "liquidation_cost": 0.1,
        "renewals": rng.choice([0, 0, 1, 2], n),
        "renewal_term": 24,
        "renewal_intercept": 0.3,
        "renewal_beta": 0.8,
        "downtime": 6,
        "relet_pd": rng.choice([0.05, 0.08], n),
        "relet_rho": 0.3,
        "termination_threshold": 0.0,
        "termination_earliest_month": 12,
    })


def config_text(tape_name: str, frame: pd.DataFrame) -> str:
    rng = np.random.default_rng(3)
    text = generate.HEAD.format(title=f"lease tape benchmark: {tape_name}", months=MONTHS, phi=0.97, burst="")
    text += "\n" + generate.tenants(TENANTS, rng) + "\n"
    return text + generate.deal("tape", MONTHS, f'lease_tape = "{tape_name}"\n', ["A", "B", "C", "E"], [0.6, 0.2, 0.1, 0.1],
                                generate.levered(frame), [0.055, 0.075, 0.1, 0.0])


def write_case(directory: Path, n: int, fmt: str) -> Path:
    """The config of an ``n``-row tape in ``directory`` (written unless it is there)."""
    cfg = directory / f"tape_{n}_{fmt}.toml"
    if not cfg.exists():
        frame = tape(n)
        name = f"tape_{n}.{fmt}"
        frame.to_csv(directory / name, index=False) if fmt == "csv" else frame.to_parquet(directory / name)
        cfg.write_text(config_text(name, frame))
    return cfg


def _peak_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def child(cfg_path: Path, warm_path: Path, rows: int) -> dict:
    from engine.plan.compile import compile_plan
    from engine.config import load_config

    compile_plan(load_config(warm_path))
    base = _peak_kib()
    t0 = time.perf_counter()
    cfg = load_config(cfg_path)
    t1 = time.perf_counter()
    validated = _peak_kib()
    compile_plan(cfg)
    t2 = time.perf_counter()
    compiled = _peak_kib()
    return {"rows": rows, "baseline_mib": base / 1024,
            "validate_s": t1 - t0, "validate_peak_mib": (validated - base) / 1024, "validate_kib_per_lease": (validated - base) / rows,
            "compile_s": t2 - t1, "compile_peak_mib": (compiled - base) / 1024, "compile_kib_per_lease": (compiled - base) / rows}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--format", choices=["csv", "parquet"], default="csv")
    ap.add_argument("--dir", type=Path, help="where the tapes are written (default: a temporary directory)")
    ap.add_argument("--json", type=Path, help="also write the measurements here")
    ap.add_argument("--child", nargs=3, metavar=("CONFIG", "WARM_CONFIG", "ROWS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(Path(args.child[0]), Path(args.child[1]), int(args.child[2]))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.dir or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        warm = write_case(directory, 2, args.format)
        results = []
        print(f"{'rows':>9} {'load_config s':>13} {'peak MiB':>9} {'KiB/lease':>9} {'compile s':>9} {'peak MiB':>9} {'KiB/lease':>9}")
        for n in args.rows:
            cfg = write_case(directory, n, args.format)
            proc = subprocess.run([sys.executable, __file__, "--child", str(cfg), str(warm), str(n)], capture_output=True, text=True)
            if proc.returncode:
                sys.exit(f"the {n:,}-row run failed:\n{proc.stderr}")
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            results.append(r)
            print(f"{n:>9,} {r['validate_s']:>13.2f} {r['validate_peak_mib']:>9.0f} {r['validate_kib_per_lease']:>9.2f} "
                  f"{r['compile_s']:>9.2f} {r['compile_peak_mib']:>9.0f} {r['compile_kib_per_lease']:>9.2f}")
        print(f"(peaks are above a baseline of {results[0]['baseline_mib']:.0f} MiB RSS; compile's peak includes load_config's)")
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
