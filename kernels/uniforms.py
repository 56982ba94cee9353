"""Counter-based uniforms for draws whose number depends on the path (ARCHITECTURE: Randomness).

A lease's renewal decisions and its replacement tenant's default need a random number only when
the path reaches them, so they cannot be pre-drawn in fixed-shape blocks without allocating
paths × leases × renewals. Instead each path carries one 64-bit key (its own Philox stream, kernels/draws.py) and
the uniform for (lease, slot) is the SplitMix64 finaliser of ``key + counter·γ``: a pure function of
(seed, path, lease, slot), so chunking, threads and backends cannot change it.
"""

import numpy as np

from ._jit import jit

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_SLOTS = np.uint64(1 << 20)


@jit
def uniform(key, lease, slot):
    """U(0, 1), never 0 or 1, for option slot ``slot`` (< 2^20) of lease ``lease`` on the path keyed ``key``."""
    z = key + (np.uint64(lease) * _SLOTS + np.uint64(slot) + np.uint64(1)) * _GAMMA
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    z = z ^ (z >> _S31)
    return (float(z >> _S11) + 0.5) * (1.0 / 9007199254740992.0)
