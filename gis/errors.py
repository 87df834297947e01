"""Errors that carry a message safe to show to a user.

Every error raised on a user-facing path is a :class:`GisError` (or subclass). Its ``message`` names the
problem in words a user can act on; it never contains a traceback or database internals. The CLI prints
it, the API maps ``code`` to an HTTP status and an OGC exception.
"""

from __future__ import annotations


class GisError(Exception):
    """Base class of the platform's user-facing errors.

    Parameters
    ----------
    message : str
        A message safe to show to the user, naming the problem and, where possible, the fix.
    code : str, optional
        A short machine-readable code (OGC exception code style).
    """

    code = "GisError"
    http_status = 500

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message


class InputError(GisError):
    """The user's input (a file, an option, a parameter) is malformed or unusable."""

    code = "InvalidParameterValue"
    http_status = 400


class CRSError(InputError):
    """A coordinate reference system is missing, unknown or does not fit the data."""

    code = "InvalidCRS"


class NotFoundError(GisError):
    """A named thing (layer, collection, feature, run) does not exist."""

    code = "NotFound"
    http_status = 404


class DatabaseUnavailable(GisError):
    """The database cannot be reached or started."""

    code = "DatabaseUnavailable"
    http_status = 503


class ConfigError(GisError):
    """The platform's settings are inconsistent or incomplete."""

    code = "ConfigError"
