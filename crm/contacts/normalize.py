"""Normalization of what sources give us: text, phones, WeChat ids, emails, handles, headers, times.

Pure functions over plain values. A value that cannot be normalized is never dropped silently:
the caller gets a :class:`Norm` with ``value=None`` and an ``error`` to flag or quarantine on.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any
from zoneinfo import ZoneInfo

# Characters that are invisible in a spreadsheet cell but break equality: zero-width space,
# non-joiner, joiner, word joiner, BOM, soft hyphen, LRM/RLM and the bidi embeddings.
_INVISIBLE = dict.fromkeys(
    map(
        ord,
        "\u200b\u200c\u200d\u2060\ufeff\u00ad\u200e\u200f"
        "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u180e",
    )
)
# Control characters (C0, DEL, C1) carry nothing a person typed and can drive a terminal
# (escape sequences, bell, backspace) when a stored name is printed: they are removed. Tab, line
# feed and carriage return are ordinary whitespace in messages and notes and stay there.
_WHITESPACE = "\t\n\r"
_CONTROL = {c: None for c in (*range(0x20), *range(0x7F, 0xA0)) if chr(c) not in _WHITESPACE}
_INVISIBLE.update(_CONTROL)
# In nicknames the zero-width joiner glues emoji sequences (👨‍👩‍👧): keep it there.
_INVISIBLE_NAME = {k: v for k, v in _INVISIBLE.items() if k != ord("\u200d")}


@cache
def mobile_cn() -> re.Pattern[str]:
    """Mainland mobile numbers exactly as phonenumbers' own metadata defines them, so the fast
    path of :func:`normalize_phone` agrees with the full parser: a loose ``1[3-9]`` + 9 digits
    took unassigned prefixes (140-149, 154, 160, 174x, 194 …) for valid mobiles.

    Built on first use: phonenumbers is imported only by what handles phone numbers, not by
    every command that cleans text.
    """
    import phonenumbers

    metadata = phonenumbers.PhoneMetadata.metadata_for_region("CN")
    pattern = metadata.mobile.national_number_pattern if metadata and metadata.mobile else None
    if not pattern:  # pragma: no cover - phonenumbers always carries CN
        raise RuntimeError("phonenumbers has no mainland mobile pattern")
    return re.compile(str(pattern))


_PHONE_JUNK = re.compile(r"[\s\-().\[\]/·—_]+")
_WECHAT_ID = re.compile(r"[a-z][a-z0-9_-]{5,19}")
_WXID = re.compile(r"wxid_[a-z0-9_-]{4,40}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")

_MOBILE_FLAGS: dict[str, Any] = {"type": "mobile"}  # shared: flags are read, never changed
MAX_FIELD_CHARS = 2000  # a cell longer than this is refused: exports never need more


@dataclass(frozen=True)
class Norm:
    """A normalized value, or why there is none; ``flags`` say what is special about it."""

    value: str | None
    flags: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    # The error's catalog key (``reason.*``); its one parameter, if any, is ``checked``.
    error_key: str | None = None
    checked: str | None = None


def clean_text(raw: object) -> str:
    """NFKC (full-width to half-width), invisible and control characters removed, trimmed."""
    if raw is None:
        return ""
    text = raw if isinstance(raw, str) else str(raw)
    if text.isascii():
        if text.isprintable():
            return text.strip()  # ASCII is NFKC-stable and has no invisible characters
        return text.translate(_INVISIBLE).strip()
    return unicodedata.normalize("NFKC", text).translate(_INVISIBLE).strip()


def clean_name(raw: object) -> str:
    """A nickname kept verbatim (emoji, full-width, tabs and line breaks and all); only
    invisible and control characters removed."""
    if raw is None:
        return ""
    text = raw if isinstance(raw, str) else str(raw)
    if text.isascii() and text.isprintable():
        return text.strip()
    return text.translate(_INVISIBLE_NAME).strip()


def _bad(key: str, what: str, checked: str | None = None) -> Norm:
    """An invalid value: the English error (kept in the identity's flags) and its catalog key."""
    error = f"{what}: {checked}" if checked is not None else what
    return Norm(None, {"invalid": True}, error=error, error_key=key, checked=checked)


def normalize_phone(raw: object, region: str = "CN") -> Norm:
    """E.164 for any written form; landlines flagged, invalid numbers carry an error."""
    text = clean_text(raw)
    if not text:
        return Norm(None, error="empty")
    compact = _PHONE_JUNK.sub("", text)
    # Fast path: the common mainland mobile forms, without the phonenumbers parser.
    if compact.startswith("+86"):
        national = compact[3:]
    elif compact.startswith("0086"):
        national = compact[4:]
    elif compact.startswith("86") and len(compact) == 13:
        national = compact[2:]
    else:
        national = compact
    if len(national) == 11 and mobile_cn().fullmatch(national):
        return Norm("+86" + national, _MOBILE_FLAGS)
    import phonenumbers

    candidate = "+" + compact[2:] if compact.startswith("00") else compact
    try:
        parsed = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        return _bad("reason.not_phone", "not a phone number", text[:40])
    if not phonenumbers.is_valid_number(parsed):
        return _bad("reason.invalid_phone", "invalid phone number", text[:40])
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    kind = phonenumbers.number_type(parsed)
    if kind == phonenumbers.PhoneNumberType.FIXED_LINE:
        return Norm(e164, {"type": "landline", "landline": True})
    if kind in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        return Norm(e164, {"type": "mobile"})
    return Norm(e164, {"type": "other"})


def normalize_wechat_id(raw: object) -> Norm:
    """WeChat's rule: 6–20 chars, a letter first, then letters, digits, _ or -; ``wxid_`` ids too.

    WeChat ids are case-insensitive, so the normalized form is lowercase.
    """
    text = clean_text(raw).lower()
    if not text:
        return Norm(None, error="empty")
    if _WXID.fullmatch(text) or _WECHAT_ID.fullmatch(text):
        return Norm(text)
    return _bad("reason.invalid_wechat_id", "invalid WeChat id", text[:40])


def normalize_email(raw: object) -> Norm:
    """Lowercased address; anything without one @ and a dotted domain is invalid."""
    text = clean_text(raw).lower()
    if not text:
        return Norm(None, error="empty")
    if _EMAIL.fullmatch(text):
        return Norm(text)
    return _bad("reason.invalid_email", "invalid email", text[:40])


def normalize_handle(platform: object, handle: object) -> Norm:
    """A platform handle scoped by its platform (``xiaohongshu:abc``); handles need a platform."""
    name = clean_text(handle).lstrip("@").lower()
    plat = normalize_platform(platform)
    if not name:
        return Norm(None, error="empty")
    if not plat:
        return _bad("reason.handle_without_platform", "handle without a platform")
    return Norm(f"{plat}:{name}")


def normalize_external_userid(raw: object) -> Norm:
    """A WeCom external user id, kept as given (case matters there)."""
    text = clean_text(raw)
    return Norm(text) if text else Norm(None, error="empty")


_PLATFORMS = {
    "小红书": "xiaohongshu",
    "xhs": "xiaohongshu",
    "red": "xiaohongshu",
    "抖音": "douyin",
    "tiktok": "douyin",
    "知乎": "zhihu",
    "微博": "weibo",
    "公众号": "wechat_mp",
    "微信公众号": "wechat_mp",
    "mp": "wechat_mp",
    "视频号": "wechat_channels",
    "b站": "bilibili",
    "哔哩哔哩": "bilibili",
    "快手": "kuaishou",
}


def normalize_platform(raw: object) -> str:
    """The canonical name of a self-media platform (小红书 → xiaohongshu)."""
    text = clean_text(raw).lower()
    return _PLATFORMS.get(text, text)


# Header aliases: what operators' exports call a column → the payload key the resolver reads.
HEADER_ALIASES: dict[str, str] = {}
for _key, _aliases in {
    "group": ["群名称", "群名", "群", "群聊", "group", "group_name", "groupname", "community"],
    "name": [
        "昵称",
        "群昵称",
        "微信昵称",
        "姓名",
        "名字",
        "nickname",
        "nick",
        "name",
        "display_name",
    ],
    "wechat_id": ["微信号", "微信", "微信id", "wechat_id", "wechat", "wechatid", "wxid", "weixin"],
    "phone": [
        "手机号",
        "手机号码",
        "手机",
        "电话",
        "电话号码",
        "联系电话",
        "phone",
        "mobile",
        "tel",
    ],
    "email": ["邮箱", "电子邮箱", "email", "e-mail", "mail"],
    "wecom_external_userid": ["external_userid", "外部联系人id", "wecom_external_userid"],
    "unionid": ["unionid"],
    "occurred_at": [
        "入群时间",
        "加入时间",
        "时间",
        "留言时间",
        "报名时间",
        "发生时间",
        "joined_at",
        "join_time",
        "time",
        "timestamp",
        "occurred_at",
        "created_at",
        "date",
    ],
    "note": ["备注", "note", "notes", "remark", "comment_note"],
    "platform": ["平台", "渠道平台", "platform"],
    "post": [
        "帖子",
        "文章",
        "笔记",
        "作品",
        "帖子链接",
        "链接",
        "post",
        "post_url",
        "post_id",
        "url",
    ],
    "handle": ["账号", "用户名", "用户", "handle", "username", "user", "author"],
    "message": ["留言", "内容", "评论", "私信", "消息", "message", "text", "content", "comment"],
    "event": ["事件", "类型", "event", "kind", "type", "event_type"],
    "consent": ["同意", "授权", "consent"],
    "promoter": ["推广员", "地推", "promoter"],
    "location": ["地点", "场地", "location"],
    "campaign": ["活动", "campaign"],
    "community": ["我们的群", "community_name"],
    "amount": ["金额", "amount"],
    "product": ["产品", "商品", "product"],
    "activity": ["活动名称", "activity"],
    "violation": ["违规", "violation"],
    "channel": ["通道", "channel"],
    "referrer_phone": ["邀请人手机", "推荐人手机", "referrer_phone"],
    "referrer_wechat_id": ["邀请人微信", "推荐人微信", "referrer_wechat_id", "referrer_wechat"],
    "referrer_handle": ["邀请人账号", "referrer_handle"],
    "referrer_email": ["referrer_email"],
    "referrer_wecom_external_userid": ["referrer_external_userid"],
    "operator": ["运营号", "操作账号", "operator", "account"],
}.items():
    for _alias in _aliases:
        HEADER_ALIASES[_alias] = _key
del _key, _aliases, _alias

_HEADER_JUNK = re.compile(r"[\s:：*()（）]+")


def canonical_header(raw: object) -> str | None:
    """The payload key for an export's column header, or None if we do not know it."""
    text = _HEADER_JUNK.sub("", clean_text(raw)).lower().replace(" ", "_")
    if not text:
        return None
    return HEADER_ALIASES.get(text) or HEADER_ALIASES.get(text.replace("-", "_"))


# Unix times (seconds) taken as plausible record times: 2000-01-01 to 2100-01-01.
_EPOCH_FIRST, _EPOCH_LAST = 946_684_800, 4_102_444_800
_TIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y年%m月%d日 %H:%M",
    "%Y年%m月%d日",
    "%Y.%m.%d",
)


def parse_time(raw: object, tz: str = "Asia/Shanghai") -> datetime | None:
    """An aware UTC time from ISO-8601, common Chinese forms or epoch seconds; naive = local."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, datetime):
        value = raw
    elif isinstance(raw, int | float) and not isinstance(raw, bool):
        seconds = raw / 1000 if raw > 1e11 else raw
        if not _EPOCH_FIRST <= seconds <= _EPOCH_LAST:
            return None  # e.g. a spreadsheet's day number (45432), not a Unix time
        return datetime.fromtimestamp(seconds, UTC)
    else:
        return _parse_time_text(str(raw), tz)
    if value.tzinfo is None:
        value = value.replace(tzinfo=_zone(tz))
    return value.astimezone(UTC)


@lru_cache(maxsize=64)
def _zone(tz: str) -> ZoneInfo:
    return ZoneInfo(tz)


# Exports repeat the same timestamps (minute resolution) across thousands of rows.
@lru_cache(maxsize=1 << 16)
def _parse_time_text(raw: str, tz: str) -> datetime | None:
    text = clean_text(raw)
    if not text:
        return None
    if text.isdigit() and len(text) in (10, 13):
        return parse_time(int(text), tz)
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        for fmt in _TIME_FORMATS:
            try:
                value = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        else:
            return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=_zone(tz))
    return value.astimezone(UTC)


def parse_bool(raw: object) -> bool:
    """True for the ways a form or export says yes (true, 1, yes, 是, 同意, ✓)."""
    if isinstance(raw, bool):
        return raw
    return clean_text(raw).lower() in {"true", "1", "yes", "y", "是", "同意", "已同意", "✓", "√"}


# unionid: one person across the WeChat apps of one developer account (WeCom, mini program, MP).
IDENTITY_FIELDS = ("phone", "wechat_id", "wecom_external_userid", "unionid", "email", "handle")


@dataclass(frozen=True)
class IdentityValue:
    """One identity found in a record; ``matchable`` False means flagged-only (never merges)."""

    kind: str
    value: str
    flags: dict[str, Any]
    matchable: bool = True


@dataclass(frozen=True)
class IdentityProblem:
    """Why an identity field of a record could not be used: which field, what is wrong."""

    field: str  # the payload key, ``referrer_`` prefix included
    kind: str  # the identity kind it would have been
    key: str  # the catalog key of what is wrong (``reason.not_phone``, ...)
    value: str | None  # the value checked, as the error shows it
    error: str  # the English error

    @property
    def text(self) -> str:
        """The English sentence, as quarantine reasons have always said it."""
        return f"{self.field}: {self.error}"


def extract_identities(
    payload: dict[str, Any], prefix: str = "", platform: object = None
) -> tuple[list[IdentityValue], list[IdentityProblem]]:
    """The identities a payload carries (``prefix='referrer_'`` for the inviter), and problems.

    Invalid phones and ids are kept as flagged, non-matchable identities so nothing is lost,
    and the problem is reported; the record is only unusable if nothing matchable remains.
    """
    found: list[IdentityValue] = []
    problems: list[IdentityProblem] = []
    for field_name, key in _FIELD_KEYS[prefix] if prefix in _FIELD_KEYS else _field_keys(prefix):
        raw = payload.get(key)
        if raw is None or raw == "":
            continue
        if field_name == "phone":
            norm = normalize_phone(raw)
            kind = "phone"
        elif field_name == "wechat_id":
            norm = normalize_wechat_id(raw)
            kind = "wechat_id"
        elif field_name == "email":
            norm = normalize_email(raw)
            kind = "email"
        elif field_name == "handle":
            norm = normalize_handle(payload.get(prefix + "platform") or platform, raw)
            kind = "platform_handle"
        elif field_name == "unionid":
            norm = normalize_external_userid(raw)
            kind = "unionid"
        else:
            norm = normalize_external_userid(raw)
            kind = "wecom_external_userid"
        if norm.value is not None:
            found.append(IdentityValue(kind, norm.value, norm.flags))
        elif norm.error_key is not None and norm.error is not None:  # not merely empty
            problems.append(
                IdentityProblem(prefix + field_name, kind, norm.error_key, norm.checked, norm.error)
            )
            kept = clean_text(raw)[:150]
            if kept:
                flags = {"invalid": norm.error}
                found.append(IdentityValue(kind, f"invalid:{kept}", flags, matchable=False))
    return found, problems


def _field_keys(prefix: str) -> tuple[tuple[str, str], ...]:
    return tuple((f, prefix + f) for f in IDENTITY_FIELDS)


_FIELD_KEYS = {p: _field_keys(p) for p in ("", "referrer_")}


def oversized_fields(payload: dict[str, Any], limit: int = MAX_FIELD_CHARS) -> list[str]:
    """Names of fields whose text is longer than the rule allows."""
    return [k for k, v in payload.items() if isinstance(v, str) and len(v) > limit]
