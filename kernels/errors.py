"""The kernels' error type: bad input (shape, dtype, device, values) named in one line.

``vaebench.errors.InputError`` subclasses it, so callers of either package catch both.
"""


class KernelInputError(ValueError):
    """An argument has the wrong shape, dtype, device or values."""
