"""The single jit policy. No other module spells a numba decorator.

``cache=True`` keeps compile time out of every run after the first; ``fastmath`` stays off because
the engine promises bit-identical results across chunkings and thread counts, and no test has yet
shown a fastmath variant harmless.

numba invalidates a cached function only when *its own* source file changes, not when a jitted
function it calls (and inlines) does. A stale ``simulate_chunk`` would then run old waterfall code.
So the cache lives in a directory named by a hash of every kernel source file: any kernel edit
starts a fresh cache.
"""

import hashlib
import os
from pathlib import Path

import numba

_HERE = Path(__file__).resolve().parent
_SOURCE_HASH = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(_HERE.glob("*.py")))).hexdigest()[:16]
_BASE = os.environ.get("NUMBA_CACHE_DIR") or str(_HERE / "__pycache__")
numba.config.CACHE_DIR = os.path.join(_BASE, f"dcabs-kernels-{_SOURCE_HASH}")

# nogil: engine/simulation/execute.py runs the kernel on Python threads. numba's own `parallel=True` is not used:
# parfor lowering re-optimises the whole call tree and tripled the compile time (46 s → 140 s CPU).
jit = numba.njit(cache=True, nogil=True)
# For the few functions called once per path or per deal-path that take plan tuples: inlined in
# numba's IR, the call, and the reference counting of every array in the tuples, disappear.
jit_inline = numba.njit(cache=True, nogil=True, inline="always")
