"""Ordinary mistakes, told in one line: every `nanog1` command turns them into `error: <message>`, exit 2.

`UserError` marks a problem with what the user gave (a missing or unreadable file, a cohort without the
labels a command needs, a bad option or config value); its message says what and where (file, line). The
operating system's file errors (not found, a folder where a file was expected, permission denied) count as
ordinary too. Anything else is a bug and keeps its traceback. `nanog1 --debug ...` (or NANOG1_DEBUG=1)
shows the traceback of ordinary mistakes as well.
"""

from __future__ import annotations

import os

#: Set to 1 to see tracebacks of ordinary mistakes too (`nanog1 --debug` sets it).
DEBUG_ENV = "NANOG1_DEBUG"

_FILE_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


class UserError(ValueError):
    """A mistake in the user's input; the message names the file (and line) and what is wrong there."""


def describe(err: BaseException) -> str | None:
    """The message for an ordinary mistake, None for anything else (a bug, shown with its traceback)."""
    if isinstance(err, UserError):
        return str(err)
    if isinstance(err, _FILE_ERRORS) and err.filename is not None:
        return f"{err.filename}: {err.strerror or err}"
    return None


def debug_enabled() -> bool:
    """True when tracebacks were asked for (NANOG1_DEBUG set to anything but '' or '0')."""
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")
