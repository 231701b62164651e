"""User-facing errors: the CLI prints them on one line and exits with code 2.

The kernels package (``vaebench_kernels``) stands alone and defines its own
input error; :class:`InputError` here is both, so one ``except`` catches either.
"""

from vaebench_kernels.errors import KernelInputError


class VaebenchError(Exception):
    """A problem the user can fix (bad option, missing data, bad checksum...)."""


class DataError(VaebenchError):
    """Data could not be found, downloaded or verified."""


class InputError(VaebenchError, KernelInputError):
    """An argument has the wrong shape, dtype, device or values."""


class TrainingDiverged(VaebenchError):
    """The loss became NaN or infinite during training."""


class RunLocked(VaebenchError):
    """Another process holds the run folder's lock."""


def user_errors() -> tuple[type[Exception], ...]:
    """The exception types the CLI reports as one line with exit code 2."""
    return (VaebenchError, KernelInputError)
