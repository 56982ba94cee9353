"""Run directory layout, Parquet tables and the manifest, every file written atomically.

Layout::

    RUN_DIR/manifest.json            resolved config, its hash, seed, sizes, versions, timings
    RUN_DIR/summary/tranches.parquet
    RUN_DIR/summary/deals.parquet
    RUN_DIR/summary/network.parquet, cascades.parquet   (when the config has a network)

Each file is written under a temporary name in the same directory and renamed into place, so a
reader never sees a half-written file. The manifest is written last: a run directory without one
is not a finished run.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

MANIFEST = "manifest.json"


class OutputExistsError(Exception):
    """The output directory already holds a finished run."""


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_writable(out_dir: Path, overwrite: bool) -> None:
    """Refuse to replace a finished run unless asked to: a rerun must never silently lose results."""
    if Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise OutputExistsError(f"{out_dir} is a file, not a run directory; choose another --out")
    if (Path(out_dir) / MANIFEST).exists() and not overwrite:
        raise OutputExistsError(f"{out_dir} already holds a finished run; pass --overwrite or choose another --out")


def write_table(frame: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    _atomic_write(path, lambda tmp: pq.write_table(table, tmp))


def write_run(out_dir: str | Path, tables: dict[str, pd.DataFrame], manifest: dict, overwrite: bool = False) -> Path:
    out_dir = Path(out_dir)
    check_writable(out_dir, overwrite)
    for name, frame in tables.items():
        write_table(frame, out_dir / "summary" / f"{name}.parquet")
    # An overwritten run must not keep tables the new run did not produce (read_run reads them all).
    for stale in (out_dir / "summary").glob("*.parquet"):
        if stale.stem not in tables:
            stale.unlink()
    text = json.dumps(manifest, indent=2, sort_keys=True, default=str, allow_nan=False)
    _atomic_write(out_dir / MANIFEST, lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))
    return out_dir


def read_run(out_dir: str | Path) -> tuple[dict[str, pd.DataFrame], dict]:
    out_dir = Path(out_dir)
    manifest = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
    tables = {path.stem: pd.read_parquet(path) for path in sorted((out_dir / "summary").glob("*.parquet"))}
    return tables, manifest


PATHS_DIR = "paths"


def clear_path_tables(out_dir: str | Path) -> None:
    """Remove the path-level dataset of an earlier run in ``out_dir`` (when overwriting it, or before
    writing a new dataset)."""
    import shutil

    target = Path(out_dir) / PATHS_DIR
    if target.exists():
        shutil.rmtree(target)


def write_path_chunk(out_dir: str | Path, scenario: str, start: int, tables: dict[str, pd.DataFrame]) -> None:
    """Write one chunk's path-level rows as ``paths/<table>/scenario=<name>/chunk=<start>.parquet``:
    a Hive-partitioned Parquet dataset, one file per chunk, each written atomically."""
    for name, frame in tables.items():
        write_table(frame, Path(out_dir) / PATHS_DIR / name / f"scenario={scenario}" / f"chunk={start:012d}.parquet")


def read_path_table(out_dir: str | Path, table: str, scenario: str | None = None, columns: list[str] | None = None,
                    filters=None) -> pd.DataFrame:
    """Read a path-level table lazily from the dataset (only the files and columns asked for)."""
    import pyarrow.dataset as ds

    root = Path(out_dir) / PATHS_DIR / table
    if not root.is_dir():
        have = sorted(p.name for p in (Path(out_dir) / PATHS_DIR).glob("*")) if (Path(out_dir) / PATHS_DIR).is_dir() else []
        hint = f"; it has: {', '.join(have)}" if have else "; run with --paths-out (paths_out=True) to write them"
        raise FileNotFoundError(f"{out_dir} has no path-level table {table!r}{hint}")
    dataset = ds.dataset(root, format="parquet", partitioning="hive")
    expr = None
    if scenario is not None:
        expr = ds.field("scenario") == scenario
    if filters is not None:
        expr = filters if expr is None else expr & filters
    frame = dataset.to_table(columns=columns, filter=expr).to_pandas()
    sort = [c for c in ("scenario", "path") if c in frame.columns]
    return frame.sort_values(sort, kind="stable").reset_index(drop=True) if sort else frame
