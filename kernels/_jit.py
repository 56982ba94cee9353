"""The single jit policy. No other module spells a numba decorator.

``cache=True`` keeps compile time out of every run after the first; ``fastmath`` stays off because
the engine promises bit-identical results across chunkings and thread counts, and no test has yet
shown a fastmath variant harmless.
"""

import numba

jit = numba.njit(cache=True, nogil=True)
jit_parallel = numba.njit(cache=True, nogil=True, parallel=True)
prange = numba.prange
