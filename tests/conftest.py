"""pytest configuration: the hypothesis profile. The config builders are in builders.py, which the
test modules import as ``from builders import ...``."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# numba compiles on first call, far beyond hypothesis' default deadline.
settings.register_profile(
    "dcabs", deadline=None, max_examples=int(os.environ.get("DCABS_HYPOTHESIS_EXAMPLES", "40")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    # CI must be reproducible: the same examples every run. Set DCABS_HYPOTHESIS_RANDOM=1 to explore.
    derandomize=not os.environ.get("DCABS_HYPOTHESIS_RANDOM"),
)
settings.load_profile("dcabs")
