"""The two languages Qunflow speaks, as settings and locales name them (no pydantic here: the
command line's help reads them before any setting is loaded)."""

from __future__ import annotations

from collections.abc import Mapping


def lang_code(value: str) -> str | None:
    """'zh-CN', 'zh', 'zh_CN.UTF-8' → 'zh-CN'; 'en', 'en_US' → 'en'; anything else → None."""
    head = value.strip().split(".")[0].replace("_", "-").split("-")[0].lower()
    return {"zh": "zh-CN", "en": "en"}.get(head)


def locale_lang(environ: Mapping[str, str]) -> str:
    """The language of the first locale variable set (as gettext reads them), else zh-CN."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name)
        if value:
            return lang_code(value) or "zh-CN"
    return "zh-CN"
