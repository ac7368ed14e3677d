"""Qunflow's exceptions: one base, a few meanings, mapped once to exit codes and HTTP statuses.

QunflowError
├── ConfigError        a setting is invalid                      exit 2
├── InputError         a file or value given by the user is bad  exit 2 / HTTP 400
├── NotFound           the named thing does not exist            exit 2 / HTTP 404
├── Conflict           a duplicate, or someone got there first   exit 2 / HTTP 409
├── Forbidden          not allowed for this user                 exit 2 / HTTP 403
└── ChannelError       a delivery channel refused or failed      exit 1
    ├── TransientChannelError   retry later with backoff
    └── PermanentChannelError   do not retry; keep the provider's message
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Words = Callable[[str, Mapping[str, object]], str]


def _plain(key: str, params: Mapping[str, object]) -> str:
    """The error's key and parameters, for when no catalog has been attached (logs, bare crm)."""
    if not params:
        return key
    return f"{key} ({', '.join(f'{name}={value!r}' for name, value in params.items())})"


_words: Words = _plain


def use_words(words: Words) -> None:
    """Attach the message catalog that ``str(error)`` speaks (the presentation layer's English).

    crm/ names what went wrong with a catalog key and its parameters; the words live in the
    catalog, which belongs to the presentation layer, so it hands them down here once.
    """
    global _words
    _words = words


@dataclass(frozen=True, init=False)
class Problem:
    """What is wrong with a value, as a catalog key and its parameters, for the caller to raise
    (``raise InputError(p.key, **p.params, option=...)``) or to keep."""

    key: str
    params: Mapping[str, object]

    def __init__(self, key: str, /, **params: object) -> None:
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "params", params)


class BadValue(ValueError):
    """A ValueError that names its problem by catalog key (pydantic validators raise ValueError;
    the caller turns it into a QunflowError in the reader's language)."""

    def __init__(self, key: str, /, **params: object) -> None:
        super().__init__(key)
        self.problem = Problem(key, **params)

    def __str__(self) -> str:
        return _words(self.problem.key, self.problem.params)


# The refusals of the operating system a user meets when naming a file, in the catalog's words;
# any other keeps the system's own text.
_OS_WORDED = frozenset({"ENOENT", "EACCES", "EPERM", "EISDIR", "ENOTDIR", "ENOSPC", "EROFS"})


def os_problem(exc: OSError) -> Problem:
    """Why the operating system refused a file, as a problem to pass as a ``detail``."""
    name = errno.errorcode.get(exc.errno or 0, "")
    if name in _OS_WORDED:
        return Problem(f"error.os.{name}")
    return Problem("error.os.other", detail=exc.strerror or str(exc))


def _rebuild(cls: type[QunflowError], key: str, params: dict[str, Any]) -> QunflowError:
    error = Exception.__new__(cls)
    QunflowError.__init__(error, key, **params)
    return error


class QunflowError(Exception):
    """Base of every error Qunflow raises on purpose; it is for the user to read.

    ``key`` is the message catalog's id of the sentence (``error.group_missing``), ``params``
    fill its ``{placeholders}``. ``str(error)`` is the attached catalog's English; the CLI and
    the web render the reader's language from the same two.
    """

    exit_code = 1
    http_status = 500

    def __init__(self, key: str, /, **params: object) -> None:
        super().__init__(key)
        self.key = key
        self.params = params

    def __str__(self) -> str:
        return _words(self.key, self.params)

    def __reduce__(self) -> tuple[Any, ...]:  # keyword parameters survive pickling (workers)
        return (_rebuild, (type(self), self.key, dict(self.params)))


class ConfigError(QunflowError):
    """A setting is missing or invalid."""

    exit_code = 2
    http_status = 500


class InputError(QunflowError):
    """Input given by a user (a file, an argument, a form) is not acceptable."""

    exit_code = 2
    http_status = 400


class NotFound(QunflowError):
    """The thing asked for does not exist."""

    exit_code = 2
    http_status = 404


class Conflict(QunflowError):
    """The action lost a race or breaks a uniqueness rule."""

    exit_code = 2
    http_status = 409


class Forbidden(QunflowError):
    """The acting user may not do this."""

    exit_code = 2
    http_status = 403


class ChannelError(QunflowError):
    """A delivery channel failed to send a message; ``detail`` is the provider's own answer,
    kept as it came (it is logged with the attempt, not translated)."""

    def __init__(self, detail: str) -> None:
        super().__init__("error.channel", detail=detail)
        self.detail = detail

    def __str__(self) -> str:
        return self.detail

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.detail,))


class TransientChannelError(ChannelError):
    """The channel may succeed later (timeouts, 5xx, rate limiting)."""


class PermanentChannelError(ChannelError):
    """The channel refused the message for good (bad address, rejected content)."""
