"""The one atomic writer: every file dcabs writes goes to a temporary name and is renamed into place.

A reader never sees a half-written file; files get the permissions the umask allows, like any
other program's.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # the only portable read; racy only against threads creating files this instant
    os.umask(mask)
    return mask


def atomic_write(path: Path, write) -> None:
    """Write ``path`` by calling ``write(tmp)`` on a temporary file beside it, then renaming it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        # mkstemp makes the file private; outputs are shared like any file the user's umask allows.
        os.chmod(tmp, 0o666 & ~_umask())
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)

    atomic_write(path, write)
