"""Figures and the HTML report of a run directory (matplotlib is imported here only)."""
