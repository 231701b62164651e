"""Numerical constants shared by the kernels and ``vaebench.ops`` (cheap to import: no torch,
numba or triton)."""

# Every backend clamps the log-variance to [LOGVAR_MIN, LOGVAR_MAX], with zero gradient
# outside (as torch.clamp's).
LOGVAR_MIN = -30.0
LOGVAR_MAX = 20.0
