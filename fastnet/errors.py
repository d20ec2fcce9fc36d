"""The library's own exceptions.

Every error a user can cause derives from ``FastnetError``; the command line turns those into
one line on stderr and exit code 2 instead of a traceback.  ``InputError`` also derives from
``ValueError`` so code written against the book-style API can keep catching ``ValueError``.
"""


class FastnetError(Exception):
    """Base class of every error fastnet raises on purpose."""

    exit_code = 2


class InputError(FastnetError, ValueError):
    """An argument (array, label, option) is not what the function needs."""


class DataError(InputError):
    """A data file is missing, truncated, corrupt or inconsistent."""


class CheckpointError(InputError):
    """A checkpoint or parameter file cannot be used."""


class BackendUnavailable(FastnetError, RuntimeError):
    """A backend cannot be used on this machine; the message says why."""


class ResourceError(FastnetError, MemoryError):
    """The requested work would not fit in memory (or on disk)."""


class DivergenceError(FastnetError, FloatingPointError):
    """Training produced a non-finite loss."""

    exit_code = 3
