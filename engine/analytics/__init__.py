"""From kernel outputs to numbers: mergeable statistics, summary and holder tables, path rows, diagnostics (no matplotlib)."""
