"""What a pushed JSON body may be: strict RFC 8259 JSON within bounds, and storable objects.

Python's parser accepts ``NaN`` and ``Infinity``, turns ``1e999`` into infinity, recurses once
per nesting level and converts integers of any length; none of that can end in a stored row
(PostgreSQL refuses NaN in JSON, SQLite would keep invalid JSON), so :func:`parse_pushed`
refuses it with one reason for the whole body. A parsed object whose strings PostgreSQL
cannot hold (NUL, or half of a UTF-16 surrogate pair written as ``\\udXXX``) is refused on its
own by :func:`unstorable`, so the rest of a batch still goes in.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from crm.core.errors import InputError
from crm.intake.reasons import Reason, Why, why

# A pushed lead or event is a flat object with a few nested fields (answers, meta): 32 levels
# is far beyond any sender's shape and far below the parser's recursion limit (about 1000).
MAX_DEPTH = 32
# Ids, amounts and phone numbers sent as numbers fit in 20 digits (an unsigned 64-bit
# integer); 40 characters leave room for a sign, decimals and an exponent.
MAX_NUMBER_CHARS = 40
# One body is one batch written in one transaction; larger batches are split by the sender.
MAX_PUSHED_OBJECTS = 1000

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class BodyRefused(InputError):
    """A pushed body that is not acceptable JSON; the message says why and where."""


def _int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise BodyRefused(
            "error.intake.push_int_long", head=text[:12], length=len(text), limit=MAX_NUMBER_CHARS
        )
    return int(text)


def _float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise BodyRefused(
            "error.intake.push_float_long", head=text[:12], length=len(text), limit=MAX_NUMBER_CHARS
        )
    value = float(text)
    if not math.isfinite(value):
        raise BodyRefused("error.intake.push_number_range", number=text)
    return value


def _constant(name: str) -> Any:
    raise BodyRefused("error.intake.push_constant", name=name)


def _depth(data: Any) -> int:
    """The nesting depth of parsed JSON (a scalar is 0), walked without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            break
        stack.extend((child, level + 1) for child in children)
    return deepest


def parse_pushed(body: bytes) -> list[Any]:
    """The values a webhook body carries (one object or a list); BodyRefused otherwise."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BodyRefused("error.intake.push_not_utf8", byte=exc.start) from exc
    try:
        data = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise BodyRefused(
            "error.intake.push_not_json", detail=exc.msg, line=exc.lineno, column=exc.colno
        ) from exc
    except RecursionError as exc:  # the parser's own bound, hit long before memory runs out
        raise BodyRefused("error.intake.push_too_deep", limit=MAX_DEPTH) from exc
    if _depth(data) > MAX_DEPTH:
        raise BodyRefused("error.intake.push_too_deep", limit=MAX_DEPTH)
    values = data if isinstance(data, list) else [data]
    if not values:
        raise BodyRefused("error.intake.push_empty")
    if len(values) > MAX_PUSHED_OBJECTS:
        raise BodyRefused("error.intake.push_too_many", count=len(values), limit=MAX_PUSHED_OBJECTS)
    return values


def _where(path: list[str | int]) -> str:
    # ASCII-escaped, so a name holding the very characters refused can be shown and stored.
    return "".join(f"[{p}]" if isinstance(p, int) else f"[{json.dumps(p)}]" for p in path)


def unstorable(obj: Any) -> Why | None:
    """Why a parsed value cannot be stored (a NUL or lone surrogate in a string), or None."""
    stack: list[tuple[Any, list[str | int]]] = [(obj, [])]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if _UNSTORABLE.search(value):
                return _bad(value, _where(path) or "top level", Reason.TEXT_NUL)
        elif isinstance(value, dict):
            for key, child in value.items():
                if _UNSTORABLE.search(key):
                    return _bad(key, _where([*path, key]), Reason.NAME_NUL)
                stack.append((child, [*path, key]))
        elif isinstance(value, list):
            stack.extend((child, [*path, n]) for n, child in enumerate(value))
    return None


def _bad(text: str, where: str, nul: Reason) -> Why:
    found = _UNSTORABLE.search(text)
    char = found.group() if found else "\x00"
    if char == "\x00":
        return why(nul, where=where)
    surrogate = Reason.TEXT_SURROGATE if nul is Reason.TEXT_NUL else Reason.NAME_SURROGATE
    return why(surrogate, where=where, code=f"\\u{ord(char):04x}")


def storable_text(obj: Any) -> str:
    """``obj`` as JSON text that any database column holds (unstorable characters escaped)."""
    raw = json.dumps(obj, ensure_ascii=False, sort_keys=True)
    if _UNSTORABLE.search(raw):
        return json.dumps(obj, ensure_ascii=True, sort_keys=True)
    return raw
