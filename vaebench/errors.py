"""User-facing errors: the CLI prints them on one line and exits with code 2."""


class VaebenchError(Exception):
    """A problem the user can fix (bad option, missing data, bad checksum...)."""


class DataError(VaebenchError):
    """Data could not be found, downloaded or verified."""


class InputError(VaebenchError, ValueError):
    """An argument has the wrong shape, dtype, device or values."""


class TrainingDiverged(VaebenchError):
    """The loss became NaN or infinite during training."""
