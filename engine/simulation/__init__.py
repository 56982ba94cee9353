"""Running the model: kernel calls, chunks, backends (in-process, Dask), marks, the contagion step, the standalone clearing and fire-sale solvers."""
