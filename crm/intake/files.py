"""File sources: member lists, self-media lead exports, QR sign-ups and activity events.

Reads CSV (UTF-8, UTF-8 with BOM, GBK/GB18030 — detected from the bytes), XLSX (streamed with
openpyxl's read-only mode) and JSON Lines, one row at a time. Column headers are mapped through
:data:`crm.contacts.normalize.HEADER_ALIASES`. Each row becomes a :class:`RawItem` whose record
key is a hash of its normalized content (or the export's own id), so importing a file twice adds
nothing; a row that cannot be read becomes a :class:`RejectedRow`. A file that is not what it
claims raises :class:`crm.core.errors.InputError` before anything is stored.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import warnings
from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from crm.contacts.normalize import (
    IDENTITY_FIELDS,
    MAX_FIELD_CHARS,
    canonical_header,
    clean_name,
    clean_text,
    normalize_platform,
)
from crm.core.errors import InputError
from crm.core.vocabulary import SourceKind
from crm.intake.records import RawItem, RejectedRow, SourceSpec

_SNIFF_BYTES = 64 * 1024
_RAW_KEEP = 10_000  # quarantined raw content is kept up to this many characters
_VERBATIM = frozenset({"name", "message", "note"})
_NATURAL_KEYS = ("record_id", "lead_id", "event_id", "id", "submission_id")
_IDENTITY_COLUMNS = frozenset(IDENTITY_FIELDS) | {f"referrer_{f}" for f in IDENTITY_FIELDS}
csv.field_size_limit(16 * 1024 * 1024)  # our own rule (MAX_FIELD_CHARS) refuses long cells

Row = tuple[int, dict[str, Any]]


def detect_encoding(sample: bytes, name: str) -> str:
    """The text encoding of a file's first bytes: UTF-8 (with or without BOM) or GB18030."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in sample:
        raise InputError(f"{name}: binary data, not a text export")
    for encoding in ("utf-8", "gb18030"):
        try:
            sample.decode(encoding)
            return encoding
        except UnicodeDecodeError as exc:
            # The sample may end in the middle of a character; only earlier errors count.
            if exc.start >= len(sample) - 4 and len(sample) >= _SNIFF_BYTES:
                return encoding
    raise InputError(f"{name}: cannot tell the text encoding (not UTF-8 or GBK/GB18030)")


def _cell(value: Any) -> Any:
    """A cell as text (XLSX numbers and dates become strings); JSON values stay as they are."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # phones typed as numbers in a spreadsheet
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return value


def _canonical_row(header: list[str], values: list[Any]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for key, value in zip(header, values, strict=False):
        if value is None or value == "" or not key:
            continue
        if isinstance(value, str):
            if value.isascii():
                value = value.strip()  # what clean_text/clean_name do to ASCII, cheaper
            else:
                value = clean_name(value) if key in _VERBATIM else clean_text(value)
            if value == "":
                continue
        else:
            value = _cell(value)
            if isinstance(value, str):
                value = value.strip()
                if value == "":
                    continue
        if key not in row:
            row[key] = value
    return row


def _map_header(raw: list[Any]) -> list[str]:
    mapped = []
    for col in raw:
        key = canonical_header(col)
        mapped.append(key or clean_text(col))
    return mapped


class _Reader:
    """Streams a file as (row number, canonical dict) or RejectedRow; checks the file on open."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.name
        if not path.exists():
            raise InputError(f"{path}: no such file")
        if path.is_dir():
            raise InputError(f"{path}: is a directory, not a file")
        if path.stat().st_size == 0:
            raise InputError(f"{self.name}: the file is empty")
        suffix = path.suffix.lower()
        if suffix in (".xlsx", ".xlsm"):
            self.format = "xlsx"
        elif suffix in (".jsonl", ".ndjson", ".json"):
            self.format = "jsonl"
        else:
            self.format = "csv"
        with path.open("rb") as fh:
            head = fh.read(_SNIFF_BYTES)
        if self.format == "xlsx":
            if not head.startswith(b"PK\x03\x04"):
                raise InputError(f"{self.name}: not an XLSX workbook")
            self.encoding = "binary"
        else:
            self.encoding = detect_encoding(head, self.name)

    def check(self, require_identity: bool = True) -> None:
        """Read ahead until the header and a first row prove the file is what it claims."""
        columns: set[str] = set()
        seen_row = rejected = False
        for n, item in enumerate(self.rows(check=True)):
            if isinstance(item, RejectedRow):
                rejected = True
                if n >= 50:
                    break
                continue
            seen_row = True
            columns |= set(item[1])
            if n >= 50 or (columns & _IDENTITY_COLUMNS):
                break
        if not seen_row:
            if rejected:
                return  # every row so far is bad: they will be quarantined one by one
            if self._header_seen:
                raise InputError(f"{self.name}: no data rows, only a header")
            raise InputError(f"{self.name}: no readable rows ({self.format})")
        if require_identity and not (columns & _IDENTITY_COLUMNS):
            known = sorted(self._columns or columns)[:8]
            raise InputError(
                f"{self.name}: no recognizable columns (need a phone, WeChat id, email or"
                f" handle column; found: {', '.join(known) or 'none'})"
            )

    _header_seen = False
    _columns: list[str] | None = None

    def rows(self, check: bool = False) -> Iterator[Row | RejectedRow]:
        if self.format == "xlsx":
            yield from self._xlsx_rows()
        elif self.format == "jsonl":
            yield from self._jsonl_rows()
        else:
            yield from self._csv_rows()

    def _csv_rows(self) -> Iterator[Row | RejectedRow]:
        with self.path.open("r", encoding=self.encoding, errors="replace", newline="") as fh:
            first = fh.readline()
            delimiter = max(",\t;|", key=first.count)
            fh.seek(0)
            reader = csv.reader(fh, delimiter=delimiter)
            header: list[str] | None = None
            while True:
                try:
                    values = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    yield RejectedRow(reader.line_num, "", f"unreadable CSV row: {exc}")
                    continue
                if header is None:
                    if not any(v.strip() for v in values):
                        continue
                    header = _map_header(values)
                    self._header_seen = True
                    self._columns = header
                    if not any(canonical_header(v) for v in values):
                        raise InputError(
                            f"{self.name}: no recognizable columns in the header"
                            f" ({', '.join(clean_text(v) for v in values[:6])[:120]})"
                        )
                    continue
                if not "".join(values).strip():
                    continue
                raw = delimiter.join(values)
                if "\ufffd" in raw:
                    yield RejectedRow(
                        reader.line_num, raw[:_RAW_KEEP], f"undecodable bytes ({self.encoding})"
                    )
                    continue
                if len(raw) <= MAX_FIELD_CHARS or max(map(len, values)) <= MAX_FIELD_CHARS:
                    yield reader.line_num, _canonical_row(header, values)
                else:
                    yield from self._checked(reader.line_num, header, values, raw)

    def _checked(
        self, n: int, header: list[str], values: list[Any], raw: str
    ) -> Iterator[Row | RejectedRow]:
        if not any(isinstance(v, str) and len(v) > MAX_FIELD_CHARS for v in values):
            yield n, _canonical_row(header, values)
            return
        for key, value in zip(header, values, strict=False):
            if isinstance(value, str) and len(value) > MAX_FIELD_CHARS:
                yield RejectedRow(
                    n,
                    raw[:_RAW_KEEP],
                    f"oversized field: {key} ({len(value)} characters, limit {MAX_FIELD_CHARS})",
                )
                return
        yield n, _canonical_row(header, values)

    def _xlsx_rows(self) -> Iterator[Row | RejectedRow]:
        from openpyxl import load_workbook

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # style warnings from other tools' exports
                book = load_workbook(self.path, read_only=True, data_only=True)
        except Exception as exc:
            raise InputError(f"{self.name}: not a readable XLSX workbook ({exc})") from exc
        try:
            sheet = book.worksheets[0]
            header: list[str] | None = None
            for n, values in enumerate(sheet.iter_rows(values_only=True), start=1):
                cells = list(values)
                if not any(v not in (None, "") for v in cells):
                    continue
                if header is None:
                    header = _map_header(cells)
                    self._header_seen = True
                    self._columns = header
                    if not any(canonical_header(v) for v in cells if v is not None):
                        raise InputError(f"{self.name}: no recognizable columns in the header")
                    continue
                raw = "\t".join("" if v is None else str(v) for v in cells)
                yield from self._checked(n, header, cells, raw)
        finally:
            book.close()

    def _jsonl_rows(self) -> Iterator[Row | RejectedRow]:
        good = bad = 0
        with self.path.open("r", encoding=self.encoding, errors="replace") as fh:
            for n, line in enumerate(fh, start=1):
                text = line.strip()
                if not text:
                    continue
                try:
                    obj = json.loads(text)
                except json.JSONDecodeError as exc:
                    bad += 1
                    if good == 0 and bad >= 5:
                        raise InputError(f"{self.name}: not JSON Lines ({exc.msg})") from exc
                    yield RejectedRow(n, text[:_RAW_KEEP], f"invalid JSON: {exc.msg}")
                    continue
                if not isinstance(obj, dict):
                    bad += 1
                    yield RejectedRow(n, text[:_RAW_KEEP], "not a JSON object")
                    continue
                good += 1
                self._header_seen = True
                keys = list(obj)
                header = [canonical_header(k) or clean_text(k) for k in keys]
                yield from self._checked(n, header, [obj[k] for k in keys], text)


def _record_key(payload: dict[str, Any]) -> tuple[str, str]:
    """The record key of a row and its payload as JSON (encoded once, for the raw log too)."""
    blob = json.dumps(payload, ensure_ascii=False, sort_keys=True, default=str)
    for key in _NATURAL_KEYS:
        value = payload.get(key)
        if value not in (None, ""):
            return f"id:{value}"[:300], blob
    return "h:" + hashlib.sha256(blob.encode("utf-8")).hexdigest()[:40], blob


class FileAdapter:
    """One export file of one kind; ``items()`` streams it (call again to re-read)."""

    def __init__(
        self,
        kind: str,
        path: Path,
        *,
        group: str | None = None,
        account: str | None = None,
        platform: str | None = None,
    ) -> None:
        self.kind = kind
        self.path = path
        self.group = clean_text(group) or None
        self.account = clean_text(account) or None
        self.platform = normalize_platform(platform) or None
        self.reader = _Reader(path)
        self.reader.check()

    def source(self) -> SourceSpec:
        """The default source of the file's rows (rows may name their own group or post)."""
        if self.kind == "peer-group":
            group = self.group or self.path.stem
            return SourceSpec(
                kind=SourceKind.PEER_GROUP,
                key=group,
                name=group,
                group_name=group,
                operator_handle=self.account,
            )
        if self.kind == "self-media":
            plat = self.platform or "unknown"
            return SourceSpec(
                kind=SourceKind.SELF_MEDIA,
                key=f"{plat}:(no post)",
                name=f"{plat} (no post)",
                platform=plat,
            )
        if self.kind == "qr-signups":
            return SourceSpec(kind=SourceKind.QR_SIGNUP, key="qr:(file)", name="QR sign-ups")
        return SourceSpec(kind=SourceKind.API, key="events", name="activity events")

    def items(self) -> Iterator[RawItem | RejectedRow]:
        """Every row of the file as a raw item (or a rejected row), streamed."""
        default = self.source()
        specs: dict[tuple[Any, ...], SourceSpec] = {}
        for item in self.reader.rows():
            if isinstance(item, RejectedRow):
                yield item
                continue
            n, payload = item
            spec = self._spec_for(payload, default, specs)
            if isinstance(spec, str):
                yield RejectedRow(n, json.dumps(payload, ensure_ascii=False)[:_RAW_KEEP], spec)
                continue
            key, blob = _record_key(payload)
            yield RawItem(
                record_key=key,
                payload=payload,
                row_number=n,
                source=None if spec is default else spec,
                payload_json=blob,
            )

    def _spec_for(
        self,
        payload: dict[str, Any],
        default: SourceSpec,
        cache: dict[tuple[Any, ...], SourceSpec],
    ) -> SourceSpec | str:
        if self.kind == "peer-group":
            raw_group, raw_operator = payload.get("group"), payload.get("operator")
            if isinstance(raw_group, str | None) and isinstance(raw_operator, str | None):
                # A member list names a handful of groups over thousands of rows.
                hit = cache.get(("pg-raw", raw_group, raw_operator))
                if hit is None:
                    hit = self._group_spec(raw_group, raw_operator, default, cache)
                    cache[("pg-raw", raw_group, raw_operator)] = hit
                return hit
            return self._group_spec(raw_group, raw_operator, default, cache)
        return self._other_spec(payload, default, cache)

    def _group_spec(
        self,
        raw_group: Any,
        raw_operator: Any,
        default: SourceSpec,
        cache: dict[tuple[Any, ...], SourceSpec],
    ) -> SourceSpec:
        group = clean_text(raw_group) or None
        operator = clean_text(raw_operator) or None
        if group is None and operator is None:
            return default
        group = group or default.key
        operator = operator or self.account
        if group == default.key and operator == self.account:
            return default
        key = ("pg", group, operator)
        if key not in cache:
            cache[key] = SourceSpec(
                kind=SourceKind.PEER_GROUP,
                key=group,
                name=group,
                group_name=group,
                operator_handle=operator,
            )
        return cache[key]

    def _other_spec(
        self,
        payload: dict[str, Any],
        default: SourceSpec,
        cache: dict[tuple[Any, ...], SourceSpec],
    ) -> SourceSpec | str:
        if self.kind == "self-media":
            plat = normalize_platform(payload.get("platform")) or self.platform
            if not plat:
                return "self-media lead without a platform (give --platform or a 平台 column)"
            payload["platform"] = plat
            post = clean_text(payload.get("post")) or None
            if post is None and plat == default.platform:
                return default
            key = ("sm", plat, post)
            if key not in cache:
                cache[key] = SourceSpec(
                    kind=SourceKind.SELF_MEDIA,
                    key=f"{plat}:{post or '(no post)'}"[:300],
                    name=post or f"{plat} (no post)",
                    platform=plat,
                    post=post,
                )
            return cache[key]
        if self.kind == "qr-signups":
            promoter = clean_text(payload.get("promoter")) or None
            location = clean_text(payload.get("location")) or None
            campaign = clean_text(payload.get("campaign")) or None
            if not (promoter or location or campaign):
                return default
            qkey = ("qr", campaign, promoter, location)
            if qkey not in cache:
                label = " / ".join(x for x in (campaign, promoter, location) if x)
                cache[qkey] = SourceSpec(
                    kind=SourceKind.QR_SIGNUP,
                    key=f"qr:{campaign or ''}:{promoter or ''}:{location or ''}"[:300],
                    name=label,
                    promoter=promoter,
                    location=location,
                    campaign=campaign,
                )
            return cache[qkey]
        if clean_text(payload.get("event")).lower() == "referral":
            if ("ref",) not in cache:
                cache[("ref",)] = SourceSpec(
                    kind=SourceKind.REFERRAL, key="referrals", name="裂变 referrals"
                )
            return cache[("ref",)]
        return default


FILE_KINDS = ("peer-group", "self-media", "events", "qr-signups")


def open_adapter(
    kind: str,
    path: Path,
    *,
    group: str | None = None,
    account: str | None = None,
    platform: str | None = None,
) -> FileAdapter:
    """An adapter for a file of a kind; raises InputError if the file is not what it claims."""
    if kind not in FILE_KINDS:
        raise InputError(f"unknown import kind {kind!r} (one of: {', '.join(FILE_KINDS)})")
    return FileAdapter(kind, path, group=group, account=account, platform=platform)
