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
