"""The command line's own refusals (a bad value, an unknown option or command, a missing argument)
in the catalog's words, as one line naming the command.

Typer parses the command line with its copy of Click, whose messages are English sentences; the
exceptions carry most of what they say (the parameter, the option name, the close matches), and
the two that carry only a sentence (an unknown command, extra arguments) are read back from it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from typer._click import exceptions as click_errors

from flows.cli.common import t

# Click's sentences for refusals that have no exception class of their own.
_NO_COMMAND = re.compile(r"No such command '(?P<name>.*?)'\.(?: Did you mean (?P<close>.+)\?)?$")
_EXTRA_ARGS = re.compile(r"Got unexpected extra argument\(s\) \((?P<args>.*)\)$")
_MISSING_COMMAND = "Missing command."

# pydantic's error types for a value of the wrong kind, by the catalog key that says so.
_KIND_ERRORS = {
    "int_parsing": "error.usage.not_integer",
    "int_from_float": "error.usage.not_integer",
    "float_parsing": "error.usage.not_number",
    "bool_parsing": "error.usage.not_bool",
}
_BOUND_ERRORS = {
    "greater_than_equal": ("error.usage.too_small", "ge"),
    "greater_than": ("error.usage.too_small", "gt"),
    "less_than_equal": ("error.usage.too_large", "le"),
    "less_than": ("error.usage.too_large", "lt"),
}


@dataclass(frozen=True)
class Refusal:
    """A usage error as the reader sees it: the command it concerns and the sentence."""

    command: str
    sentence: str

    def line(self) -> str:
        return f"{self.command}: {self.sentence}{t('error.usage.see_help', command=self.command)}"


def refusal(error: click_errors.UsageError, argv: Sequence[str], root: Any) -> Refusal:
    """``error`` in the reader's language, naming the command it was raised for."""
    ctx = error.ctx
    command = ctx.command_path if ctx is not None else _command_path(root, argv)
    return Refusal(command, _sentence(error))


def _sentence(error: click_errors.UsageError) -> str:
    if isinstance(error, click_errors.MissingParameter):
        given = error.param_type or getattr(error.param, "param_type_name", "")
        kind = "argument" if given == "argument" else "option"
        return t(f"error.usage.missing_{kind}", name=_param_name(error.param))
    if isinstance(error, click_errors.BadParameter):
        return _bad_value(error)
    if isinstance(error, click_errors.NoSuchOption):
        if error.possibilities:
            close = _listed(error.possibilities)
            return t("error.usage.no_such_option_close", option=error.option_name, close=close)
        return t("error.usage.no_such_option", option=error.option_name)
    if isinstance(error, click_errors.BadOptionUsage):
        if "does not take a value" in error.message:
            return t("error.usage.option_takes_no_value", option=error.option_name)
        return t("error.usage.option_needs_value", option=error.option_name)
    return _plain_sentence(error)


def _plain_sentence(error: click_errors.UsageError) -> str:
    message = error.message
    if found := _NO_COMMAND.match(message):
        name, close = found["name"], found["close"]
        if close:
            return t("error.usage.no_such_command_close", name=name, close=_listed(close))
        return t("error.usage.no_such_command", name=name)
    if found := _EXTRA_ARGS.match(message):
        return t("error.usage.extra_arguments", args=found["args"])
    if message == _MISSING_COMMAND:
        return t("error.usage.missing_command")
    return t("error.usage.other", detail=message)


def _bad_value(error: click_errors.BadParameter) -> str:
    name = _param_name(error.param)
    cause = error.__cause__
    detail = cause.errors()[0] if cause is not None and hasattr(cause, "errors") else None
    if detail is None:
        return t("error.usage.bad_value", name=name, detail=error.message)
    value = detail.get("input", "")
    kind = detail.get("type", "")
    choices = _choices(error.param)
    if choices and kind == "value_error":
        return t("error.usage.not_a_choice", name=name, value=value, choices=_listed(choices))
    if kind in _KIND_ERRORS:
        return t(_KIND_ERRORS[kind], name=name, value=value)
    if kind in _BOUND_ERRORS:
        key, bound = _BOUND_ERRORS[kind]
        return t(key, name=name, value=value, limit=detail.get("ctx", {}).get(bound, ""))
    return t("error.usage.bad_value", name=name, detail=detail.get("msg", error.message))


def _param_name(param: Any) -> str:
    """An option by its flag (``--tier``), an argument by the metavar its usage line shows."""
    if param is None:
        return "?"
    if getattr(param, "param_type_name", "") == "argument":
        return str(param.metavar or param.name or "").upper()
    opts = sorted(param.opts, key=len, reverse=True)
    return str(opts[0]) if opts else str(param.name)


def _choices(param: Any) -> list[str]:
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return [str(member.value) for member in annotation]
    return []


def _listed(items: Sequence[str] | str) -> str:
    if isinstance(items, str):  # Click's own "'a', 'b'"
        items = [part.strip().strip("'") for part in items.split(",")]
    return t("error.usage.list_separator").join(f"`{item}`" for item in items)


def _command_path(root: Any, argv: Sequence[str]) -> str:
    """The command a refusal without a context was meant for, read from the words typed."""
    path = ["qunflow"]
    command = root
    for token in argv:
        commands = getattr(command, "commands", None)
        if commands is None:  # a command, not a group: the rest are its options
            break
        if not token.startswith("-") and token in commands:
            path.append(token)
            command = commands[token]
    return " ".join(path)
