"""Committed chunks, resume and clean stops.

With an output directory, every finished chunk's statistics are committed as one file,
``DIR/chunks/<scenario>/<start>.npz`` (``<start>.without_network.npz`` for the comparison pass),
written under a temporary name and renamed. The file carries its own manifest entry (run identity,
seed, chunk bounds), so data and entry are committed by the same rename: there is no second file
that could disagree with it after a crash. ``DIR/chunks/run.json`` holds the identity of the run the
chunks belong to; a resume against a different config, seed, path count or chunk size is refused.

Statistics are serialised generically: every dataclass field of :class:`RunStats` (and of any
dataclass inside it, such as ``Moments``) is stored by name, so a field added to ``RunStats``
later is committed and restored without touching this module. Nothing is pickled, and reading a
chunk never imports anything: a chunk names its dataclasses, and only classes registered with
:func:`committable` are rebuilt. A SHA-256 of the content (the layout and every array's dtype,
shape and bytes) is stored with it and checked on reading, so a chunk whose numbers were edited is
refused even when its zip is valid.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import io
import json
import logging
import os
import signal
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from engine.io.files import atomic_write
from engine.io.rundir import remove_written
from engine.plan.rng import RNG

log = logging.getLogger(__name__)

CHUNKS_DIR = "chunks"
RUN_FILE = "run.json"
_META = "__meta__"


class ResumeError(Exception):
    """Committed chunks that cannot be used by this run (a user error: exit code 2)."""


class Interrupted(Exception):
    """The run stopped on SIGINT/SIGTERM after committing the chunks that had finished."""

    def __init__(self, signum: int, committed: int, total: int, run_dir: Path | None):
        self.signum, self.committed, self.total, self.run_dir = signum, committed, total, run_dir
        name = signal.Signals(signum).name
        super().__init__(f"stopped by {name}: {committed} of {total} chunks are committed in {run_dir}/{CHUNKS_DIR}")


# --------------------------------------------------------------------------- serialisation

# The dataclasses a committed chunk may name, by "module:qualname". A decoder that imported the
# module a file names would run code from any file put in the directory.
_COMMITTABLE: dict[str, type] = {}
# The engine's own committed classes. They live in a higher layer (engine/analytics) and register
# with @committable on import; a decoder in a fresh process imports the module of a name on this
# list, and only of one on it, never the module a file names.
ENGINE_CLASSES = ("engine.analytics.stats:StratumSums", "engine.analytics.stats:Mass", "engine.analytics.stats:Moments",
           "engine.analytics.stats:RunStats", "engine.analytics.holders:HolderStats")


def committable(cls: type) -> type:
    """Class decorator: allow ``cls`` (a dataclass of ints, floats, arrays and committable
    dataclasses) in committed chunks."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls.__qualname__} is not a dataclass")
    _COMMITTABLE[_class_name(cls)] = cls
    return cls


def _class_name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _encode(value: Any, key: str, arrays: dict[str, np.ndarray]) -> dict:
    if value is None or isinstance(value, (bool, str)):
        return {"kind": "value", "value": value}
    if isinstance(value, (int, np.integer)):
        # Python ints: exact sums outgrow int64; JSON holds them at any size.
        return {"kind": "int", "value": str(int(value))}
    if isinstance(value, (float, np.floating)):
        return {"kind": "float", "value": float(value).hex()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        if _COMMITTABLE.get(_class_name(cls)) is not cls:
            raise TypeError(f"cannot commit a {cls.__qualname__} ({key}): decorate it with engine.io.chunks.committable")
        return {"kind": "dataclass", "class": _class_name(cls),
                "fields": {f.name: _encode(getattr(value, f.name), f"{key}.{f.name}", arrays) for f in dataclasses.fields(value)}}
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            ints = [int(x) for x in value.ravel()]
            arrays[key] = np.array([str(x) for x in ints], dtype=str) if ints else np.zeros(0, dtype="U1")
            return {"kind": "pyint_array", "shape": list(value.shape)}
        arrays[key] = value
        return {"kind": "array"}
    raise TypeError(f"cannot commit a statistic of type {type(value).__name__} ({key}); "
                    "use an int, float, numpy array or dataclass of those")


def _decode(spec: dict, key: str, arrays) -> Any:
    kind = spec["kind"]
    if kind == "value":
        return spec["value"]
    if kind == "int":
        return int(spec["value"])
    if kind == "float":
        return float.fromhex(spec["value"])
    if kind == "array":
        return arrays[key]
    if kind == "pyint_array":
        flat = np.array([int(s) for s in arrays[key]], dtype=object)
        return flat.reshape(spec["shape"])
    if kind == "dataclass":
        if spec["class"] in ENGINE_CLASSES and spec["class"] not in _COMMITTABLE:
            importlib.import_module(spec["class"].partition(":")[0])  # lazy: the allow-listed module registers its class
        cls = _COMMITTABLE.get(spec["class"])
        if cls is None:
            raise ResumeError(f"a committed chunk names the class {spec['class']!r}, which dcabs does not commit")
        names = {f.name for f in dataclasses.fields(cls)}
        if set(spec["fields"]) != names:
            raise ResumeError(f"a committed chunk's {cls.__qualname__} has the fields {sorted(spec['fields'])}, "
                              f"not {sorted(names)}")
        return cls(**{name: _decode(sub, f"{key}.{name}", arrays) for name, sub in spec["fields"].items()})
    raise ResumeError(f"unknown kind {kind!r} in a committed chunk")


def _digest(layout: Any, arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256(json.dumps(layout, sort_keys=True).encode())
    for key in sorted(arrays):
        arr = np.ascontiguousarray(arrays[key])
        h.update(json.dumps([key, arr.dtype.str, list(arr.shape)]).encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def dumps_stats(stats, meta: dict | None = None) -> bytes:
    """``stats`` (any dataclass of ints, floats and arrays) as compressed ``.npz`` bytes with ``meta``."""
    arrays: dict[str, np.ndarray] = {}
    spec = _encode(stats, "stats", arrays)
    layout = {"stats": spec, "entry": meta or {}}
    arrays[_META] = np.array(json.dumps({**layout, "sha256": _digest(layout, arrays)}))
    buf = io.BytesIO()
    # The same layout as np.savez_compressed, at zlib level 1: the statistics are mostly empty
    # histogram bins, which level 1 already shrinks ~20x, at a quarter of the default level's time.
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for key, arr in arrays.items():
            with zf.open(f"{key}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(arr), allow_pickle=False)
    return buf.getvalue()


# Unpacked size above which a file is refused before any array is read: a chunk's statistics are a
# few MB (the fan-chart and loss histograms); a crafted zip could otherwise claim gigabytes.
_MAX_CHUNK_BYTES = 1 << 30


def loads_stats(data: bytes | Path) -> tuple[Any, dict]:
    """The statistics and the manifest entry of a committed chunk.

    Raises ResumeError for anything that is not a chunk dcabs wrote: a damaged file, a class
    outside the allow-list, or content that does not match its digest."""
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        with zipfile.ZipFile(source) as zf:
            declared = sum(info.file_size for info in zf.infolist())
        if declared > _MAX_CHUNK_BYTES:
            raise ResumeError(f"it declares {declared:,} bytes of arrays, more than any chunk holds "
                              f"({_MAX_CHUNK_BYTES:,}); it is not a chunk dcabs wrote")
        if isinstance(source, io.BytesIO):
            source.seek(0)
        with np.load(source, allow_pickle=False) as npz:
            meta = json.loads(str(npz[_META]))
            arrays = {k: npz[k] for k in npz.files if k != _META}
        layout = {"stats": meta.get("stats"), "entry": meta.get("entry")} if isinstance(meta, dict) else None
        if layout is None or meta.get("sha256") != _digest(layout, arrays):
            raise ResumeError("its content does not match the digest stored with it (edited or damaged)")
        return _decode(meta["stats"], "stats", arrays), meta["entry"]
    except ResumeError:
        raise
    except Exception as exc:  # zip, zlib, npy-header, JSON and layout damage all mean the same thing here
        raise ResumeError(f"it cannot be read ({type(exc).__name__}: {exc})") from None


# --------------------------------------------------------------------------- the chunk store


def run_identity(base, scenarios: list[str]) -> dict:
    """What a committed chunk must match to be reused. Threads are left out: they never change results."""
    return {
        "config_sha256": base.with_run(threads=0).digest(),
        "seed": base.run.seed,
        "paths": base.run.paths,
        "chunk_paths": base.run.chunk_paths,
        "rng": RNG,
        "scenarios": list(scenarios),
    }


def chunk_name(start: int, network: bool) -> str:
    return f"{start:012d}.npz" if network else f"{start:012d}.without_network.npz"


class ChunkStore:
    """``DIR/chunks``: one committed file per finished chunk."""

    def __init__(self, run_dir: str | Path, identity: dict):
        self.run_dir = Path(run_dir)
        self.root = self.run_dir / CHUNKS_DIR
        self.identity = identity
        # Called once, before the first chunk is committed (an overwrite removes the earlier run's files then).
        self.before_first_commit: Callable[[], object] | None = None

    def path(self, scenario: str, start: int, network: bool) -> Path:
        return self.root / scenario / chunk_name(start, network)

    def has_chunks(self) -> bool:
        return self.root.is_dir() and any(self.root.rglob("*.npz"))

    def check_resumable(self) -> None:
        """Refuse committed chunks made by a different run (raises ResumeError naming the difference)."""
        run_file = self.root / RUN_FILE
        if not run_file.is_file():
            if self.has_chunks():
                raise ResumeError(f"{self.root} has chunk files but no {RUN_FILE}; cannot tell which run made them")
            raise ResumeError(f"{self.run_dir} has nothing to resume: no interrupted run committed chunks there "
                              f"({CHUNKS_DIR}/{RUN_FILE} is missing); run without --resume")
        try:
            theirs = json.loads(run_file.read_text(encoding="utf-8"))
            if not isinstance(theirs, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            raise ResumeError(f"{run_file} cannot be read ({exc}); pass --overwrite to start again") from None
        for key, what in (("seed", "the seed"), ("paths", "the path count"), ("chunk_paths", "the chunk size"),
                          ("rng", "the random number generator"), ("scenarios", "the scenarios")):
            if theirs.get(key) != self.identity[key]:
                raise ResumeError(f"cannot resume {self.run_dir}: {what} differs ({key} = {self.identity[key]!r} now, "
                                  f"{theirs.get(key)!r} in the committed chunks); rerun with the same settings, or pass "
                                  "--overwrite to start again")
        if theirs.get("config_sha256") != self.identity["config_sha256"]:
            raise ResumeError(f"cannot resume {self.run_dir}: the config changed since its chunks were committed "
                              f"(sha256 {self.identity['config_sha256'][:12]}… now, {str(theirs.get('config_sha256'))[:12]}… "
                              "then); rerun with the same config, or pass --overwrite to start again")

    def begin(self, fresh: bool) -> None:
        """Start committing: ``fresh`` discards any earlier chunks (``--overwrite``)."""
        # Resuming keeps the committed chunks, but not the temporary file of one that was being
        # written when a process was killed.
        remove_written(self.run_dir, ("chunks",), temporary_only=not fresh)
        self.root.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.identity, indent=2, sort_keys=True)
        atomic_write(self.root / RUN_FILE, lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))

    def commit(self, scenario: str, start: int, stop: int, network: bool, stats) -> None:
        if self.before_first_commit is not None:
            hook, self.before_first_commit = self.before_first_commit, None
            hook()
        entry = {"scenario": scenario, "start": start, "stop": stop, "network": network,
                 "config_sha256": self.identity["config_sha256"], "seed": self.identity["seed"]}
        data = dumps_stats(stats, entry)
        target = self.path(scenario, start, network)

        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())

        atomic_write(target, write)
        log.info("committed chunk %s [%d, %d)%s", scenario, start, stop, "" if network else " without network")

    def load(self, scenario: str, start: int, stop: int, network: bool):
        """The committed statistics of a chunk, or None when it is not committed."""
        path = self.path(scenario, start, network)
        if not path.is_file():
            return None
        try:
            stats, entry = loads_stats(path)
        except ResumeError as exc:
            raise ResumeError(f"{path} is not a committed chunk this run can use: {exc}; delete that file to "
                              "recompute its chunk, or pass --overwrite to start again") from None
        expect = {"scenario": scenario, "start": start, "stop": stop, "network": network,
                  "config_sha256": self.identity["config_sha256"], "seed": self.identity["seed"]}
        if entry != expect:
            raise ResumeError(f"{path} belongs to another run (its entry {entry} does not match {expect}); "
                              "pass --overwrite to start again")
        log.info("resume: chunk %s [%d, %d)%s already committed, skipped", scenario, start, stop,
                 "" if network else " without network")
        return stats

    def remove(self) -> None:
        """Drop the chunks once the run directory is complete: the summaries hold everything."""
        remove_written(self.run_dir, ("chunks",))
