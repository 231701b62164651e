"""The reproduction engine: the Study interface, study configs, training many runs on an
executor (local processes or Ray), sweeps and the summary (vaebench.engine.study explains how
the pieces fit)."""
