"""JSON Lines exports: one object per line, keys mapped like column headers.

A line that is not a JSON object within bounds (nesting depth, number size, line length, only
standard JSON: no ``NaN`` or ``Infinity``) becomes a :class:`RejectedRow` with its reason; the
rest of the file is read on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from crm.contacts.normalize import canonical_header, clean_text
from crm.core.errors import InputError
from crm.intake.columns import RAW_KEEP, HeaderSeen, Row, checked_row
from crm.intake.reasons import Reason, Refusal, why
from crm.intake.records import RejectedRow

# An export's record has a few dozen fields of at most MAX_FIELD_CHARS (2,000) characters; a
# line a hundred times that is not a record, and reading it whole would hold it all in memory.
MAX_LINE_CHARS = 200_000
# Payloads are flat objects with one level of nesting (screening answers): 32 levels is far
# beyond any export, and well below what recursive JSON code (ours, the drivers') survives.
MAX_DEPTH = 32
# Phones and ids are at most ~20 digits; amounts fewer. Python refuses ints over 4,300 digits
# only after spending the time; 100 digits is plenty and cheap to refuse.
MAX_NUMBER_DIGITS = 100

_READ = 64 * 1024  # characters read at a time when skipping the rest of an overlong line
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _refuse_constant(name: str) -> Any:
    raise Refusal(why(Reason.JSON_CONSTANT, name=name))


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise Refusal(why(Reason.NUMBER_LONG, limit=MAX_NUMBER_DIGITS))
    return int(text)


def _bounded_float(text: str) -> float:
    if len(text) > MAX_NUMBER_DIGITS:
        raise Refusal(why(Reason.NUMBER_LONG, limit=MAX_NUMBER_DIGITS))
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise Refusal(why(Reason.NUMBER_RANGE))
    return value


def _depth(text: str) -> int:
    """How deeply a line's arrays and objects nest (brackets inside strings do not count)."""
    depth = deepest = 0
    for match in _TOKENS.finditer(text):
        bracket = match.group()
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif bracket in "]}":
            depth -= 1
    return deepest


def parse_line(text: str) -> Any:
    """One line's JSON value; a Refusal (with the reason) if it is not JSON within bounds."""
    if (text.count("[") + text.count("{")) > MAX_DEPTH and _depth(text) > MAX_DEPTH:
        raise Refusal(why(Reason.TOO_DEEP, limit=MAX_DEPTH))
    try:
        return json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_int=_bounded_int,
            parse_float=_bounded_float,
        )
    except Refusal:
        raise
    except json.JSONDecodeError as exc:
        raise Refusal(why(Reason.NOT_JSON, detail=exc.msg)) from exc
    except (ValueError, RecursionError) as exc:  # pragma: no cover - bounded above
        raise Refusal(why(Reason.NOT_JSON, detail=str(exc))) from exc


def _lines(fh: IO[str]) -> Iterator[tuple[int, str, bool]]:
    """(line number, text, whole) for each line; an overlong line is cut and the rest skipped."""
    n = 0
    while True:
        line = fh.readline(MAX_LINE_CHARS + 1)
        if not line:
            return
        n += 1
        if len(line) <= MAX_LINE_CHARS or line.endswith("\n"):
            yield n, line, True
            continue
        while True:  # the rest of the overlong line, without holding it
            rest = fh.readline(_READ)
            if not rest or rest.endswith("\n"):
                break
        yield n, line, False


def jsonl_rows(path: Path, encoding: str, header_seen: HeaderSeen) -> Iterator[Row | RejectedRow]:
    """One row per object line; a file whose first lines are all invalid is not JSON Lines."""
    good = bad = 0
    with path.open("r", encoding=encoding, errors="replace") as fh:
        for n, line, whole in _lines(fh):
            text = line.strip()
            if not text:
                continue
            if not whole:
                bad += 1
                reason = why(Reason.LINE_TOO_LONG, limit=MAX_LINE_CHARS)
                yield RejectedRow(n, text[:RAW_KEEP], reason)
                continue
            try:
                obj = parse_line(text)
            except Refusal as exc:
                bad += 1
                if good == 0 and bad >= 5 and exc.why.key is Reason.NOT_JSON:
                    raise InputError(
                        "error.intake.jsonl_invalid",
                        name=path.name,
                        line=n,
                        detail=exc.why.params["detail"],
                    ) from exc
                yield RejectedRow(n, text[:RAW_KEEP], exc.why)
                continue
            if not isinstance(obj, dict):
                bad += 1
                yield RejectedRow(n, text[:RAW_KEEP], why(Reason.NOT_OBJECT))
                continue
            good += 1
            header_seen.seen = True
            keys = list(obj)
            header = [canonical_header(k) or clean_text(k) for k in keys]
            yield from checked_row(n, header, [obj[k] for k in keys], text)
