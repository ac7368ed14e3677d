"""The message catalog: every word a user reads, in Chinese (the default) and English.

The words live in ``locale/<locale>/LC_MESSAGES/qunflow.po``, keyed by the id that code and
templates pass to ``t(key)``; callers fill ``{placeholders}`` with ``str.format``. At run time the
standard library's gettext reads the compiled ``.mo`` files (``make messages`` or ``make install``
compiles them), so the CLI and the web app load no extraction tooling.
"""

from __future__ import annotations

import gettext
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from crm.core.errors import ChannelError, Problem, QunflowError, use_words

LANGS = ("zh", "en")
DOMAIN = "qunflow"
LOCALE_DIR = Path(__file__).parent / "locale"
LOCALES = {"zh": "zh_CN", "en": "en"}


def normalize_lang(value: str | None) -> str | None:
    """'en', 'en-US' → 'en'; 'zh-CN' → 'zh'; anything else → None."""
    if not value:
        return None
    head = value.split("-")[0].split("_")[0].lower()
    return head if head in LANGS else None


@cache
def _catalog(lang: str) -> gettext.GNUTranslations:
    # No fallback: a missing compiled catalog is a broken install, not a page full of keys.
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[LOCALES[lang]])


def translator(lang: str) -> Callable[[str], str]:
    """A ``t(key)`` for one language (unknown ones read Chinese); a key without an entry reads
    as itself, so a missing word shows instead of failing."""
    catalog = _catalog(lang if lang in LANGS else "zh")

    def t(key: str) -> str:
        return catalog.gettext(key) if key else key  # "" is the catalog's header, not a word

    return t


def render(t: Callable[[str], str], key: str, params: Mapping[str, object]) -> str:
    """The catalog's sentence for ``key`` with its ``{placeholders}`` filled.

    A key without an entry reads as itself; a sentence whose placeholders do not match the
    parameters falls back to the key and its parameters rather than failing the error path.
    """
    text = t(key)
    if not params:
        return text
    try:
        return text.format(**{name: _said(t, value) for name, value in params.items()})
    except (KeyError, IndexError, ValueError):
        return f"{text} ({', '.join(f'{k}={v!r}' for k, v in params.items())})"


def _said(t: Callable[[str], str], value: object) -> object:
    # A parameter may itself be a problem (or several: every bad field of a file), said in the
    # same language as the sentence around it.
    if isinstance(value, Problem):
        return render(t, value.key, value.params)
    if isinstance(value, tuple) and value and all(isinstance(v, Problem) for v in value):
        return t("error.problems_separator").join(str(_said(t, v)) for v in value)
    return value


def error_text(error: QunflowError, lang: str) -> str:
    """A Qunflow error in the reader's language."""
    if isinstance(error, ChannelError):
        return str(error)
    return render(translator(lang), error.key, error.params)


# str(error) anywhere (logs, Prefect task states, tests) reads the English sentence.
use_words(lambda key, params: render(translator("en"), key, params))


def keyed_text(
    t: Callable[[str], str],
    key: str | None,
    params: Mapping[str, Any] | None,
    stored: str | None,
) -> str:
    """Words the system stored with a catalog key (a tier move's reason, a queue note): the
    catalog's sentence for ``key`` with ``params``. Without a key, what someone typed, as typed."""
    if key:
        return render(t, key, params or {})
    return stored or ""
