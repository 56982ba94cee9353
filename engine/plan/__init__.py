"""Compiling a validated config into the kernels' plan arrays, their calibration, and the random-number plan."""
