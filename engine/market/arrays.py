"""Checks of the array arguments the standalone solvers share: each error names the argument and the entry."""

from __future__ import annotations

import numpy as np


def check_vector(name: str, value, n: int, what: str = "firm", nonnegative: bool = True) -> np.ndarray:
    """``value`` as a contiguous f8[n]; ValueError naming the first entry that is not finite (or negative)."""
    v = np.asarray(value, dtype=np.float64)
    if v.ndim != 1 or v.shape[0] != n:
        raise ValueError(f"{name} must have one entry per {what} ({n}), got shape {v.shape}")
    for i in range(n):
        if not np.isfinite(v[i]):
            raise ValueError(f"{name}[{i}] = {v[i]:g} is not finite")
        if nonnegative and v[i] < 0.0:
            raise ValueError(f"{name}[{i}] = {v[i]:g} is negative")
    return np.ascontiguousarray(v)


def check_finite_nonnegative(name: str, matrix: np.ndarray) -> None:
    """ValueError naming the first entry of ``matrix`` that is not finite, or negative."""
    for bad, what in ((~np.isfinite(matrix), "is not finite"), (matrix < 0.0, "is negative")):
        where = np.argwhere(bad)
        if where.size:
            idx = tuple(int(i) for i in where[0])
            raise ValueError(f"{name}[{','.join(map(str, idx))}] = {matrix[idx]:g} {what}")
