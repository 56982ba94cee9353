"""The hot-loop benchmark suite: `make bench`, `dcabs bench [--quick] [--json PATH]`.

Every speed is reported next to a baseline measured in the same process (the vectorised-numpy
reference of the same model, the engine on one thread, numpy's own RNG throughput), because
absolute times on a shared 2-core machine mean little. Compilation is measured separately, in
fresh processes, cold (empty cache) and cached. Peak memory is measured in fresh processes too.
pytest does not collect this directory.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

from engine import load_config
from engine import run  # noqa: E402

WARM_PATHS = 4096  # a warm-up run: compiles or loads the cache, calibrates

WORKLOADS = ("small", "medium", "large", "qlpool", "network", "contagion")
REFERENCE = {"medium", "qlpool"}  # workloads the numpy reference (and the naive version) implement
NO_REFERENCE = {"network": "n/a: the numpy reference has no network clearing",
                "contagion": "n/a: the numpy reference has no network clearing or holders"}


def _engine_rate(cfg, paths: int, threads: int = 0, repeat: int = 2) -> tuple[float, object]:
    """Best paths/s of ``repeat`` in-process runs on ``threads`` kernel threads (``run(threads=...)``
    sizes the engine's pool of Python threads over the nogil kernel)."""
    best, res = 0.0, None
    for _ in range(repeat):
        res = run(cfg, paths=paths, threads=threads)
        best = max(best, res.manifest["timings"]["paths_per_s"])
    return best, res


def dask_rate(cfg, paths: int, workers: int = 2) -> dict:
    """Paths/s of the Dask backend on a local cluster of ``workers`` processes, against in-process in
    the same run: steady state (cluster up, workers warm; best of 2) and a cold run that starts the cluster."""
    import importlib.util

    from engine.simulation.backends import Dask

    if importlib.util.find_spec("distributed") is None:
        return {}
    t = time.perf_counter()
    run(cfg, paths=paths, backend="dask", workers=workers)
    cold = paths / (time.perf_counter() - t)
    best = 0.0
    with Dask(workers=workers) as backend:
        run(cfg, paths=WARM_PATHS, backend=backend)  # workers load the kernels from numba's cache
        for _ in range(2):
            best = max(best, run(cfg, paths=paths, backend=backend).manifest["timings"]["paths_per_s"])
    return {"dask_workers": workers, "dask_paths_per_s": best, "dask_cold_paths_per_s": cold}


def _child(code: str, env: dict | None = None) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, **(env or {})}, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def compile_times(config: Path) -> dict:
    """Seconds to the first simulated path in a fresh process: cold (empty numba cache), then cached."""
    code = (
        "import json, sys, time; t = time.perf_counter();"
        f"sys.path.insert(0, {str(ROOT)!r});"
        "from engine import load_config; from engine.plan.compile import compile_plan; from engine.plan.rng import DrawSource;"
        "from engine.simulation.execute import simulate;"
        f"cfg = load_config({str(config)!r}); plan = compile_plan(cfg); t1 = time.perf_counter();"
        "simulate(plan, DrawSource.for_config(cfg), 0, 1);"
        "print(json.dumps({'first_path_s': time.perf_counter() - t1, 'startup_s': time.perf_counter() - t}))"
    )
    with tempfile.TemporaryDirectory() as cache:
        cold = _child(code, {"NUMBA_CACHE_DIR": cache})
        cached = _child(code, {"NUMBA_CACHE_DIR": cache})
    return {"compile_cold_s": cold["first_path_s"], "compile_cached_s": cached["first_path_s"],
            "startup_cached_s": cached["startup_s"]}


def peak_rss_mb(config: Path, paths: int) -> float:
    """Peak resident memory (MB) of a fresh process that runs ``paths`` paths of ``config``.

    Read from VmHWM in /proc/self/status: Linux carries ``ru_maxrss`` across fork and exec, so a
    child started by a big parent would report the parent's peak (every workload read 609 MB).
    """
    code = (
        "import json, sys;"
        f"sys.path.insert(0, {str(ROOT)!r});"
        "from engine import load_config, run;"
        f"run(load_config({str(config)!r}), paths={paths});"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1];"
        "print(json.dumps({'rss': int(hwm) / 1024}))"
    )
    return _child(code)["rss"]


def rng_throughput() -> dict:
    """Draws per second of the engine's own generator on one thread (kernels/philox.py, best of 3):
    normals (Φ⁻¹ of Philox uniforms, as the factor draws them) and uniforms (as tenants draw them)."""
    from kernels.draws import STREAM_DEFAULT, STREAM_FACTOR
    from kernels.philox import normals, uniforms

    k0, k1 = np.uint64(1), np.uint64(0)
    n = 4_000_000
    out = np.empty(n)
    normals(k0, k1, STREAM_FACTOR, 0, out[:1000], 1000)  # compiles, or loads numba's cache
    uniforms(k0, k1, STREAM_DEFAULT, 0, out[:1000], 1000)
    normal = uniform = 0.0
    for _ in range(3):
        t = time.perf_counter()
        normals(k0, k1, STREAM_FACTOR, 0, out, n)
        normal = max(normal, n / (time.perf_counter() - t))
        t = time.perf_counter()
        uniforms(k0, k1, STREAM_DEFAULT, 0, out, n)
        uniform = max(uniform, n / (time.perf_counter() - t))
    return {"normal_per_s": normal, "uniform_per_s": uniform, "threads": 2}


def rng_limit(cfg, rng: dict) -> float:
    """Paths/s on 2 threads if drawing the random numbers were the only work: the generator is
    stateless, so it scales with threads. A path draws T+1 normals (one for a static factor) and
    one uniform per tenant (the burst uniform and the key are negligible)."""
    normals = 1 if cfg.factor.persistence >= 1.0 else cfg.run.months + 1
    seconds = normals / rng["normal_per_s"] + len(cfg.tenants) / rng["uniform_per_s"]
    return rng["threads"] / seconds


def _reference_check(cfg, res, module, paths: int, seed: int) -> tuple[float, float]:
    """Paths/s of a numpy implementation, and the largest |z| of its tranche ELs against the engine's."""
    t = time.perf_counter()
    ref = module.simulate(cfg, paths, seed)
    rate = paths / (time.perf_counter() - t)
    cash = res.tranches[res.tranches["view"] == "cashflow"]
    loss = np.asarray(ref["principal_loss"])
    el, se = loss.mean(axis=0), loss.std(axis=0, ddof=1) / np.sqrt(paths)
    z = (cash["el"].to_numpy() - el) / np.sqrt(cash["el_se"].to_numpy() ** 2 + se**2 + 1e-300)
    return rate, float(np.max(np.abs(z)))


def bench(quick: bool = False) -> dict:
    paths = {"small": 100_000, "medium": 50_000, "large": 10_000, "qlpool": 200_000, "network": 50_000, "contagion": 50_000}
    if quick:
        paths = {k: max(v // 5, 2 * WARM_PATHS) for k, v in paths.items()}
    rng = rng_throughput()
    results: dict = {"quick": quick, "rng": rng, "workloads": {}}
    for name in WORKLOADS:
        path = HERE / "workloads" / f"{name}.toml"
        cfg = load_config(path)
        n = paths[name]
        run(cfg, paths=WARM_PATHS)  # warm: compile or load the cache, calibrate
        rate2, res = _engine_rate(cfg, n, threads=2)
        rate1, _ = _engine_rate(cfg, n, threads=1, repeat=1)
        entry = {
            "paths": n,
            "months": cfg.run.months,
            "paths_per_s": rate2,
            "path_months_per_s": rate2 * cfg.run.months,
            "thread_speedup": rate2 / rate1,
            "rng_limit_paths_per_s": rng_limit(cfg, rng),
        }
        entry["rng_limit_share"] = rate2 / entry["rng_limit_paths_per_s"]
        entry["numpy_paths_per_s"] = entry["ratio_vs_numpy"] = entry["max_abs_z_vs_numpy"] = None
        if name in NO_REFERENCE:
            entry["numpy_reference"] = NO_REFERENCE[name]
        if name in REFERENCE:
            try:
                import numpy_reference
                ref_rate, z = _reference_check(cfg, res, numpy_reference, min(n, 50_000), seed=99)
                entry.update(numpy_paths_per_s=ref_rate, ratio_vs_numpy=rate2 / ref_rate, max_abs_z_vs_numpy=z)
                import numpy_naive
                naive_rate, zn = _reference_check(cfg, res, numpy_naive, min(n, 5_000), seed=98)
                entry.update(numpy_naive_paths_per_s=naive_rate, ratio_vs_numpy_naive=rate2 / naive_rate,
                             max_abs_z_vs_numpy_naive=zn)
            except (ImportError, NotImplementedError) as exc:
                entry["numpy_error"] = str(exc)
        if "p_cash_trap" in res.deals:
            entry["p_cash_trap"] = [float(x) for x in res.deals["p_cash_trap"]]
            entry["p_rapid_amortization"] = [float(x) for x in res.deals["p_rapid_amortization"]]
        if name == "network" and "medium" in results["workloads"]:
            # Same tenants and deal as medium: the ratio is what the yearly network clearing costs.
            entry["vs_medium"] = rate2 / results["workloads"]["medium"]["paths_per_s"]
        if name == "contagion":
            # The contagion step runs inside each chunk, so it is part of simulate_s; the marks' pilot
            # fit and nested check run once before the chunks (marks_s).
            timing = res.manifest["scenarios"]["base"]["timings"]
            entry["contagion_share"] = timing["contagion_s"] / timing["simulate_s"]
            entry["marks_s"] = timing["marks_s"]
            entry["contagion_share_of_total"] = (timing["contagion_s"] + timing["marks_s"]) / (timing["simulate_s"] + timing["marks_s"])
            if "network" in results["workloads"]:
                entry["vs_network"] = rate2 / results["workloads"]["network"]["paths_per_s"]
        if name == "medium" and not quick:
            try:
                entry.update(dask_rate(cfg, n))
                if "dask_paths_per_s" in entry:
                    entry["dask_vs_inprocess"] = entry["dask_paths_per_s"] / rate2
            except Exception as exc:  # dask missing or a cluster that cannot start must not lose the other numbers
                entry["dask_error"] = repr(exc)
        entry.update(compile_times(path))
        small_n, big_n = (10**5, 10**6) if quick or name != "small" else (10**6, 10**7)
        if name in ("small", "qlpool"):
            entry["peak_rss_mb"] = peak_rss_mb(path, small_n)
            entry["peak_rss_mb_10x_paths"] = peak_rss_mb(path, big_n)
            entry["rss_paths"] = [small_n, big_n]
        else:
            entry["peak_rss_mb"] = peak_rss_mb(path, min(n, 20_000))
        results["workloads"][name] = entry
    import variance

    try:
        results["variance_reduction"] = variance.variance_reduction(quick)
    except Exception as exc:  # a failure here must not lose the hot-loop numbers
        results["variance_reduction_error"] = repr(exc)
    return results


def table(results: dict) -> str:
    cols = [("paths_per_s", "paths/s", "{:,.0f}"), ("path_months_per_s", "path-months/s", "{:,.0f}"),
            ("ratio_vs_numpy", "× numpy", "{:.2f}"), ("ratio_vs_numpy_naive", "× naive", "{:.0f}"),
            ("thread_speedup", "2 vs 1 thread", "{:.2f}"),
            ("rng_limit_share", "RNG-limit share", "{:.1%}"), ("compile_cold_s", "cold compile s", "{:.1f}"),
            ("compile_cached_s", "cached s", "{:.2f}"), ("peak_rss_mb", "peak RSS MB", "{:.0f}")]
    lines = ["| workload | " + " | ".join(c[1] for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, e in results["workloads"].items():
        cells = [fmt.format(e[k]) if e.get(k) is not None
                 else ("n/a" if k.startswith("ratio_vs_numpy") and "numpy_reference" in e else "–") for k, _, fmt in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="dcabs bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer paths; peak RSS at 10^5 vs 10^6 paths")
    p.add_argument("--json", type=Path, help="also write the measurements as JSON")
    args = p.parse_args(argv)
    results = bench(args.quick)
    print(table(results))
    if "variance_reduction" in results:
        import variance

        print("\nimportance sampling against plain Monte Carlo (benchmarks/variance.py):")
        print(variance.table(results["variance_reduction"]))
    for name, e in results["workloads"].items():
        if "peak_rss_mb_10x_paths" in e:
            print(f"{name}: peak RSS {e['peak_rss_mb']:.0f} MB at {e['rss_paths'][0]:,} paths, "
                  f"{e['peak_rss_mb_10x_paths']:.0f} MB at {e['rss_paths'][1]:,}")
        if e.get("dask_paths_per_s"):
            print(f"{name}: Dask on {e['dask_workers']} local workers {e['dask_paths_per_s']:,.0f} paths/s "
                  f"({e['dask_vs_inprocess']:.2f}× in-process at {e['paths_per_s']:,.0f}); "
                  f"{e['dask_cold_paths_per_s']:,.0f} paths/s counting the cluster start")
        if e.get("ratio_vs_numpy_naive"):
            print(f"{name}: {e['ratio_vs_numpy_naive']:.0f}× the naive per-lease-month numpy version "
                  f"({e['numpy_naive_paths_per_s']:,.0f} paths/s)")
        if e.get("max_abs_z_vs_numpy") is not None:
            naive = e.get("max_abs_z_vs_numpy_naive")
            print(f"{name}: largest |z| of tranche ELs against the engine: numpy reference {e['max_abs_z_vs_numpy']:.2f}"
                  + (f", naive {naive:.2f}" if naive is not None else ""))
        if any(e.get("p_cash_trap", ())) or any(e.get("p_rapid_amortization", ())):
            print(f"{name}: cash trap fired on {', '.join(f'{p:.1%}' for p in e['p_cash_trap'])} of paths, "
                  f"rapid amortisation on {', '.join(f'{p:.1%}' for p in e['p_rapid_amortization'])}")
        if e.get("contagion_share") is not None:
            print(f"{name}: the contagion step is {e['contagion_share']:.1%} of the chunks' time; with the marks' pilot fit "
                  f"and nested check ({e['marks_s']:.2f} s) {e['contagion_share_of_total']:.1%} of the run"
                  + (f"; {e['vs_network']:.2f}× network's paths/s" if e.get("vs_network") else ""))
        if e.get("vs_medium"):
            print(f"{name}: {e['vs_medium']:.2f}× medium's paths/s (same deal; the difference is the network clearing)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
