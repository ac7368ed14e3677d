"""Which language the command line speaks: the root ``--lang`` option, else QUNFLOW_LANG,
else the locale's. Kept apart from the settings so ``--help`` can ask without loading them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from crm.core.errors import InputError, QunflowError
from crm.core.language import lang_code, locale_lang

_SETTING = "QUNFLOW_LANG"
_CHOSEN: dict[str, str | None] = {"value": None}


def use_lang(value: str | None) -> None:
    """Print in this language (the root ``--lang`` option); None: the configured one."""
    if value is None:
        _CHOSEN["value"] = None
        return
    code = lang_code(value)
    if code is None:
        raise InputError("error.cli.lang_unknown", value=value)
    _CHOSEN["value"] = code


def chosen_lang() -> str | None:
    """The language ``--lang`` asked for, if it did."""
    return _CHOSEN["value"]


def plain_lang(environ: Mapping[str, str], env_file: Path) -> str | None:
    """The configured language from the environment alone; None when a ``.env`` file may set it.

    A value the settings would refuse reads as the locale's language here: help stays readable,
    and the command itself still reports the bad setting.
    """
    if env_file.exists():
        return None
    given = next((v for k, v in environ.items() if k.upper() == _SETTING), None)
    return (lang_code(given) if given else None) or locale_lang(environ)


def help_lang() -> str:
    """The language ``--help`` is written in (never fails: a bad setting gives the locale's)."""
    chosen = chosen_lang()
    if chosen is not None:
        return chosen
    quick = plain_lang(os.environ, Path(".env"))
    if quick is not None:
        return quick
    from crm.core.settings import get_settings  # a .env file: the settings decide

    try:
        return get_settings().lang
    except QunflowError:
        return locale_lang(os.environ)
