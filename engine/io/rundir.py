"""Run directory layout, Parquet tables and the manifest, every file written atomically.

Layout::

    RUN_DIR/.dcabs                   marker (which kind of directory dcabs made) and lock
    RUN_DIR/manifest.json            resolved config, its hash, seed, sizes, versions, timings
    RUN_DIR/summary/tranches.parquet
    RUN_DIR/summary/deals.parquet
    RUN_DIR/summary/network.parquet, cascades.parquet   (when the config has a network)

Each file is written under a temporary name in the same directory and renamed into place, so a
reader never sees a half-written file; files get the permissions the umask allows, like any other
program's. The manifest is written last: a run directory without one is not a finished run.

dcabs writes only into a new or empty directory, or one it made (it has the marker), and removes
only files whose paths it writes (:func:`remove_written`): a user's own files in a run directory,
or a directory passed as ``--out`` by mistake, are never deleted. One process at a time writes a
directory: the marker is locked while a run uses it.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import stat
import threading
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from engine.io.files import atomic_write

MANIFEST = "manifest.json"
MARKER = ".dcabs"
PATHS_DIR = "paths"
# The path-level tables of --paths-out (engine.analytics.stats.path_tables and the holders' rows).
PATH_TABLES = ("tranches", "deals", "firms", "cascades", "holders", "holder_sales")
# Every summary table a run can write; tranches and deals always.
SUMMARY_TABLES = ("tranches", "deals", "network", "cascades", "distributions", "fans", "triggers", "marks", "holders",
                  "holder_types", "assets", "system")
# The figures a report writes as figures/<name>.png (engine/report/figures.py FIGURES, which a test
# holds to this list): a replaced run directory loses exactly these, never a user's own image.
FIGURE_NAMES = ("exceedance", "el_vs_ratings", "factor_fan", "gpu_fan", "firm_defaults", "cascades", "trigger_timing",
                "network_effect", "holder_losses")


class OutputExistsError(Exception):
    """The output directory cannot be written: it holds a finished run, is not dcabs', or is in use."""


# --------------------------------------------------------------------------- what dcabs owns

# The paths (relative, "/"-separated) of the files dcabs writes in a run or sweep directory, by
# part. Anything else in the directory is the user's and is never removed.
_PARTS = {
    "finished": rf"{MANIFEST}|report\.html|sweep\.(?:parquet|csv)|summary/(?:{'|'.join(SUMMARY_TABLES)})\.parquet"
                r"|figures/[a-z0-9_]+\.png",
    "paths": rf"{PATHS_DIR}/(?:{'|'.join(PATH_TABLES)})/scenario=[^/]+/chunk=\d{{12}}\.parquet",
    "chunks": r"chunks/run\.json|chunks/[^/]+/\d{12}(?:\.without_network)?\.npz",
}
_PART_DIRS = {"finished": ("summary", "figures"), "paths": (PATHS_DIR,), "chunks": ("chunks",)}


def remove_written(out_dir: str | Path, parts=("finished", "paths", "chunks"), temporary_only: bool = False) -> int:
    """Remove the files dcabs wrote in ``out_dir`` (of the given ``parts``): each matched by its
    exact relative path, or a temporary file ``.<that name>.<8 characters>.tmp`` of an interrupted
    atomic write (only those with ``temporary_only``); then the directories that removing them left
    empty. Symlinked directories are never entered, and nothing else is touched. Returns how many
    files went."""
    root = Path(out_dir)
    if not root.is_dir() or root.is_symlink():
        return 0
    pattern = re.compile("|".join(f"(?:{_PARTS[p]})" for p in parts))
    tops = [d for p in parts for d in _PART_DIRS[p]]
    candidates = [root / name for name in (MANIFEST, "report.html", "sweep.parquet", "sweep.csv")]
    candidates += list(root.glob(".*.tmp"))
    for top in tops:
        candidates += _walk_files(root / top)
    removed: list[Path] = []
    for path in candidates:
        if path.is_symlink() or not path.is_file():
            continue
        rel = path.relative_to(root).as_posix()
        tmp = _TMP_NAME.fullmatch(path.name)
        if temporary_only and tmp is None:
            continue
        target = rel if tmp is None else Path(rel).with_name(tmp.group(1)).as_posix()
        if not pattern.fullmatch(target):
            continue
        if target.startswith("figures/") and Path(target).stem not in FIGURE_NAMES:
            continue
        path.unlink()
        removed.append(path)
    # Only the directories that held what was removed, deepest first, and only once empty.
    emptied = sorted({p for f in removed for p in f.parents if p != root and root in p.parents},
                     key=lambda p: -len(p.parts))
    for d in emptied:
        if d.is_dir() and not d.is_symlink() and not any(d.iterdir()):
            d.rmdir()
    return len(removed)


# mkstemp(prefix=".<name>.", suffix=".tmp"): 8 random characters from [a-z0-9_].
_TMP_NAME = re.compile(r"\.(.+)\.[a-z0-9_]{8}\.tmp")


def _walk_files(top: Path) -> list[Path]:
    """The files under ``top``, without entering a symlinked directory (``top`` included)."""
    if top.is_symlink() or not top.is_dir():
        return []
    out = []
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        out += [Path(dirpath) / f for f in filenames]
    return out


def _kind_of(out_dir: Path) -> str | None:
    """Which kind of dcabs directory ``out_dir`` is: its marker's, or for a directory written before
    markers existed, what its files say; None for a directory dcabs did not make."""
    marker = out_dir / MARKER
    if marker.is_file():
        try:
            kind = json.loads(marker.read_text(encoding="utf-8") or "{}").get("dcabs")
        except (ValueError, AttributeError):
            kind = None
        if kind in ("run", "sweep"):
            return kind
    # Unmarked: dcabs' only if its files say so, not just their names (a web project has a manifest.json).
    manifest = _json_object(out_dir / MANIFEST)
    if manifest is not None and "config_sha256" in manifest and isinstance(manifest.get("config"), dict):
        return "sweep" if "dimensions" in manifest else "run"
    run_file = _json_object(out_dir / "chunks" / "run.json")
    # "block_paths" in the run.json of a run made before the counter-based generator, "rng" since
    if run_file is not None and {"config_sha256", "chunk_paths"} <= set(run_file) and {"rng", "block_paths"} & set(run_file):
        return "run"
    return None


def _json_object(path: Path) -> dict | None:
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 64 << 20:
            return None
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def check_writable(out_dir: str | Path, overwrite: bool, kind: str = "run", resume: bool = False) -> None:
    """Refuse a directory dcabs may not write: a file, a non-empty directory it did not make, one of
    another kind, or a finished run unless ``overwrite`` (a rerun must never silently lose results)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputExistsError(f"{out_dir} is a file, not a {kind} directory; choose another --out")
    if not out_dir.exists():
        return
    have = _kind_of(out_dir)
    if have is None:
        if any(p.name != MARKER for p in out_dir.iterdir()):
            raise OutputExistsError(f"{out_dir} is not empty and dcabs did not make it (it has no {MARKER} marker); dcabs "
                                    "writes only into a new or empty directory, or its own: choose another --out")
        return
    if have != kind:
        raise OutputExistsError(f"{out_dir} holds a dcabs {have}, not a {kind}; choose another --out")
    if (out_dir / MANIFEST).exists():
        if resume:
            raise OutputExistsError(f"{out_dir} holds a finished {kind}: there is nothing to resume; pass --overwrite "
                                    "to run it again, or choose another --out")
        if not overwrite:
            raise OutputExistsError(f"{out_dir} already holds a finished {kind}; pass --overwrite or choose another --out")


class Claim:
    """A directory this process holds the lock of. ``fresh`` when it was new or empty before."""

    def __init__(self, path: Path, existed: bool, marked: bool, fresh: bool):
        self.path, self.existed, self.marked, self.fresh = path, existed, marked, fresh
        self.thread = threading.get_ident()

    def release_marker(self) -> None:
        """Take back the marker (and the directory) this claim created, if it did."""
        if not self.marked:
            (self.path / MARKER).unlink(missing_ok=True)
        if not self.existed:
            try:
                self.path.rmdir()
            except OSError:
                pass

    def discard(self) -> None:
        """Undo a run that failed before committing anything in a fresh directory: remove what it
        wrote, its marker, and the directory itself if the run made it."""
        remove_written(self.path)
        self.release_marker()


_held: dict[Path, Claim] = {}


@contextmanager
def claim(out_dir: str | Path, kind: str = "run", overwrite: bool = False, resume: bool = False):
    """Create ``out_dir`` if needed, mark it as a dcabs ``kind`` directory and hold its lock until
    the block ends. Another process, or another thread of this one, gets OutputExistsError at once;
    the thread holding it may claim it again (``run`` then ``Results.write``). The contents are
    judged by :func:`check_writable` again once the lock is held, since another process may have
    written the directory since the caller checked it."""
    path = Path(out_dir).resolve()
    held = _held.get(path)
    if held is not None:
        if held.thread != threading.get_ident():
            raise OutputExistsError(f"{out_dir} is being written by another run in this process; choose another --out")
        yield held
        return
    existed = path.exists()
    marked = (path / MARKER).exists()
    fresh = not existed or not any(p.name != MARKER for p in path.iterdir())
    path.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path / MARKER, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
    except OSError as exc:  # a symlink (ELOOP) or something else in the marker's place
        raise OutputExistsError(f"{path / MARKER} is not a dcabs marker ({exc.strerror}); choose another --out") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OutputExistsError(f"{path / MARKER} is not a regular file; choose another --out")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # no advisory locks on this platform: one writer is the user's to ensure
            pass
        except BlockingIOError:
            raise OutputExistsError(f"{out_dir} is being written by another dcabs process; wait for it to finish or "
                                    "choose another --out") from None
        try:
            check_writable(path, overwrite, kind, resume)
        except OutputExistsError:
            Claim(path, existed, marked, fresh=False).release_marker()
            raise
        text = json.dumps({"dcabs": kind}) + "\n"
        if os.pread(fd, 4096, 0).decode("utf-8", "replace") != text:
            os.ftruncate(fd, 0)
            os.pwrite(fd, text.encode(), 0)
        _held[path] = Claim(path, existed, marked, fresh)
        try:
            yield _held[path]
        finally:
            del _held[path]
    finally:
        os.close(fd)  # releases the lock


def write_table(frame: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    atomic_write(path, lambda tmp: pq.write_table(table, tmp))


def write_run(out_dir: str | Path, tables: dict[str, pd.DataFrame], manifest: dict, overwrite: bool = False) -> Path:
    out_dir = Path(out_dir)
    check_writable(out_dir, overwrite)
    with claim(out_dir, "run", overwrite):
        # An overwritten run keeps no table, figure or report of the earlier one (read_run reads every table).
        remove_written(out_dir, ("finished",))
        for name, frame in tables.items():
            write_table(frame, out_dir / "summary" / f"{name}.parquet")
        write_manifest(out_dir, manifest)
    return out_dir


def write_manifest(out_dir: Path, manifest: dict) -> None:
    text = json.dumps(manifest, indent=2, sort_keys=True, default=str, allow_nan=False)
    atomic_write(Path(out_dir) / MANIFEST, lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))


# The manifest's sections and the JSON type each must have, for a reader to trust the rest.
_MANIFEST_SECTIONS = {"config": dict, "scenarios": dict, "timings": dict, "versions": dict, "tenant_thresholds": dict}


def read_manifest(out_dir: str | Path) -> dict:
    """The manifest of a finished run; ValueError naming the part that is not what dcabs writes."""
    path = Path(out_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not text ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(manifest, dict):
        raise ValueError(f"{path} holds a JSON {type(manifest).__name__}, not the object dcabs writes")
    for key, kind in _MANIFEST_SECTIONS.items():
        if key in manifest and not isinstance(manifest[key], kind):
            raise ValueError(f"{path}: `{key}` is a {type(manifest[key]).__name__}, not an object")
    bad = [name for name, part in manifest.get("scenarios", {}).items() if not isinstance(part, dict)]
    if bad:
        raise ValueError(f"{path}: `scenarios.{bad[0]}` is not an object")
    return manifest


def read_run(out_dir: str | Path) -> tuple[dict[str, pd.DataFrame], dict]:
    out_dir = Path(out_dir)
    manifest = read_manifest(out_dir)
    tables = {path.stem: pd.read_parquet(path) for path in sorted((out_dir / "summary").glob("*.parquet"))}
    return tables, manifest


def write_path_chunk(out_dir: str | Path, scenario: str, start: int, tables: dict[str, pd.DataFrame]) -> None:
    """Write one chunk's path-level rows as ``paths/<table>/scenario=<name>/chunk=<start>.parquet``:
    a Hive-partitioned Parquet dataset, one file per chunk, each written atomically."""
    for name, frame in tables.items():
        assert name in PATH_TABLES, name  # remove_written must know every file dcabs writes
        write_table(frame, Path(out_dir) / PATHS_DIR / name / f"scenario={scenario}" / f"chunk={start:012d}.parquet")


def read_path_table(out_dir: str | Path, table: str, scenario: str | None = None, columns: list[str] | None = None,
                    filters=None) -> pd.DataFrame:
    """Read a path-level table lazily from the dataset (only the files and columns asked for)."""
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
