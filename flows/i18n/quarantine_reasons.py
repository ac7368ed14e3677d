"""A quarantine or skip reason in the reader's words, for the quarantine page, the CLI and runs.

A reason is stored with a catalog key and its parameters (crm.intake.reasons); a row
quarantined before reasons had keys shows its stored English sentence. Import reports count
reasons by code (``Why.code``), said by the ``reason.kind.*`` entries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flows.i18n import render

Translate = Callable[[str], str]
_BAD_IDENTITY = "reason.bad_identity"


def quarantine_reason_text(
    t: Translate, key: str | None, params: Mapping[str, Any] | None, reason: str | None
) -> str:
    """The catalog's sentence for ``key`` with ``params``; without a key, ``reason`` as stored."""
    if not key:
        return reason or ""
    params = params or {}
    if key == _BAD_IDENTITY:
        problems = params.get("problems") or []
        params = {"detail": t("error.problems_separator").join(_problem(t, p) for p in problems)}
    return render(t, key, params)


def _problem(t: Translate, problem: Mapping[str, Any]) -> str:
    """One identity field's problem: the field in words, then what is wrong with its value."""
    field = t(f"identity.{problem.get('kind', '')}")
    if str(problem.get("field", "")).startswith("referrer_"):
        field = render(t, "reason.referrer_field", {"field": field})
    value = problem.get("value")
    what = render(t, str(problem.get("key", "")), {} if value is None else {"value": value})
    return render(t, "reason.identity_field", {"field": field, "problem": what})


def reason_count_text(t: Translate, code: str) -> str:
    """What an import report counts under ``code``; anything else (a file's error) as it is."""
    key = f"reason.kind.{code}"
    word = t(key)
    return code if word == key else word
