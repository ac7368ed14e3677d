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


class QunflowError(Exception):
    """Base of every error Qunflow raises on purpose; its message is for the user."""

    exit_code = 1
    http_status = 500


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
    """A delivery channel failed to send a message."""


class TransientChannelError(ChannelError):
    """The channel may succeed later (timeouts, 5xx, rate limiting)."""


class PermanentChannelError(ChannelError):
    """The channel refused the message for good (bad address, rejected content)."""
