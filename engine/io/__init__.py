"""Files: atomic writes, the run directory (tables, manifest, path datasets) and the chunk store."""
