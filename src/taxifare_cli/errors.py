"""Domain errors. Each carries the exit code the CLI maps it to (listed in the README and `taxifare --help`).

Services raise these with a message that says what went wrong and what to do;
the CLI prints the message on one line and exits with the code.
"""

from __future__ import annotations

import errno
import re


class TaxifareError(Exception):
    """Base of every error the tool expects; anything else is a bug (exit 1)."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(TaxifareError):
    """The command line asked for something that cannot be (exit 2)."""

    exit_code = 2


class ConfigError(TaxifareError):
    """The settings are missing, malformed or contradictory (exit 3)."""

    exit_code = 3


class DataError(TaxifareError):
    """Input data is missing, malformed, or unusable (exit 4)."""

    exit_code = 4


class NotFoundError(DataError):
    """A dataset, model version or stage that does not exist (exit 4)."""


class ServiceError(TaxifareError):
    """An external service could not be reached or refused (exit 5)."""

    exit_code = 5


class BusyError(TaxifareError):
    """Another run holds the lock this command needs (exit 6): try again when it is done."""

    exit_code = 6


class DiskFullError(TaxifareError):
    """No space left on a disk this command writes to (exit 7); nothing was left half-written."""

    exit_code = 7


class MissingExtraError(ConfigError):
    """A backend was chosen whose optional dependencies are not installed (exit 3)."""

    def __init__(self, backend: str, extra: str) -> None:
        super().__init__(
            f"the {backend!r} backend needs optional packages that are not installed",
            hint=f"pip install 'taxifare[{extra}]'",
        )


EXIT_CODES: dict[int, str] = {
    0: "done",
    1: "unexpected failure",
    2: "usage",
    3: "configuration",
    4: "bad input data",
    5: "external service unreachable or refused",
    6: "busy: another workflow run holds the lock",
    7: "disk full (nothing half-written)",
}

# [scheme://]user:PASSWORD@host: the password of a URL, however it reached a message or a traceback.
_URL_PASSWORD = re.compile(r"(?P<head>(?:[A-Za-z][A-Za-z0-9+.-]*://)?[^/\s:@'\"]*:)[^@\s/'\"]+@")


def redact(text: str) -> str:
    """`text` with the password of every URL in it replaced by `***`."""
    return _URL_PASSWORD.sub(r"\g<head>***@", text)


# errno values that mean "the disk (or this user's quota) is full".
NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def no_space(exc: BaseException) -> OSError | None:
    """The ENOSPC/EDQUOT OSError behind `exc` (itself, its cause or context), if there is one."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in NO_SPACE_ERRNOS:
            return current
        current = current.__cause__ or current.__context__
    return None


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: the command unwinds (temporary files go) and exits 128 + signal.

    A BaseException, like KeyboardInterrupt, so that no `except Exception` swallows it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


# The process-wide stop request lives beside the signal plumbing; imported here for the callers.
from taxifare_cli.stopping import STOP  # noqa: E402

__all__ = ["STOP"]
