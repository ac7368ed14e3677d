"""JSON Lines exports: one object per line, keys mapped like column headers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from crm.contacts.normalize import canonical_header, clean_text
from crm.core.errors import InputError
from crm.intake.columns import RAW_KEEP, HeaderSeen, Row, checked_row
from crm.intake.records import RejectedRow


def jsonl_rows(path: Path, encoding: str, header_seen: HeaderSeen) -> Iterator[Row | RejectedRow]:
    """One row per object line; a file whose first lines are all invalid is not JSON Lines."""
    good = bad = 0
    with path.open("r", encoding=encoding, errors="replace") as fh:
        for n, line in enumerate(fh, start=1):
            text = line.strip()
            if not text:
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                bad += 1
                if good == 0 and bad >= 5:
                    raise InputError(f"{path.name}: not JSON Lines ({exc.msg})") from exc
                yield RejectedRow(n, text[:RAW_KEEP], f"invalid JSON: {exc.msg}")
                continue
            if not isinstance(obj, dict):
                bad += 1
                yield RejectedRow(n, text[:RAW_KEEP], "not a JSON object")
                continue
            good += 1
            header_seen.seen = True
            keys = list(obj)
            header = [canonical_header(k) or clean_text(k) for k in keys]
            yield from checked_row(n, header, [obj[k] for k in keys], text)
