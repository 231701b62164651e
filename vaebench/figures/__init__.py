"""One module per reproduced paper figure (each a vaebench.engine.study.Study), the pieces they
share (common) and the registry of studies that ``vaebench reproduce`` offers (registry)."""
