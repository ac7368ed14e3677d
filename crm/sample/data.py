"""Deterministic, realistic sample data: the three sources, activity events, and bench files.

Person ``i`` of seed ``s`` is always the same person (computed, not stored), so generators
stream: a million-row file needs no list of a million people in memory.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from crm.contacts.normalize import mobile_cn

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉晨阳欣怡子涵浩宇思雨"
_NICK_EXTRA = ["", "", "", "", "🌸", "😊", "🍀", "~", "（宝妈）", "-深圳", "🐱", "_学习中"]
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_GROUPS = ["宝妈交流群3群", "考研互助群", "职场英语打卡群", "深圳读书会2群"]
_OPERATORS = ["yunying_a01", "yunying_b02"]
_PLATFORMS = ["xiaohongshu", "douyin", "zhihu", "weibo"]
_MESSAGES = [
    "请问课程多少钱？",
    "怎么报名呀",
    "已关注，想了解一下",
    "有优惠吗？怎么买",
    "写得很好👍",
    "收藏了",
    "私信你了",
    "能发一下资料吗",
]
_PROMOTERS = ["小张", "小李", "阿强"]
_LOCATIONS = ["南山科技园", "福田会展中心", "高校招聘会"]
_CAMPAIGNS = ["spring-open-day", "summer-trial"]
_BASE = datetime(2024, 5, 6, 1, 0, tzinfo=UTC)
_SPAN = 10 * 24 * 60  # every sample time falls in the ten days after _BASE
# "Now" for the sample: after everything in it, so imports and routing see a consistent clock.
SAMPLE_AS_OF = _BASE + timedelta(days=14)


def _assigned(mobile: str) -> str:
    """A generated number moved into an assigned mobile range (13x) if it fell outside one.

    No random draw is spent on it, so every other value of the sample stays the same.
    """
    return mobile if mobile_cn().fullmatch(mobile) else "13" + mobile[2:]


def person(seed: int, i: int) -> dict[str, Any]:
    """Person number ``i``: a name, a mainland mobile, usually a WeChat id, maybe a handle."""
    rnd = random.Random(f"{seed}:{i}")
    name = rnd.choice(_SURNAMES) + "".join(rnd.choice(_GIVEN) for _ in range(rnd.randint(1, 2)))
    name += rnd.choice(_NICK_EXTRA)
    mobile = _assigned(
        "1" + rnd.choice("3456789") + "".join(rnd.choice("0123456789") for _ in range(9))
    )
    if rnd.random() < 0.1:
        wechat = "wxid_" + "".join(rnd.choice(_LETTERS + "0123456789") for _ in range(12))
    else:
        wechat = rnd.choice(_LETTERS) + "".join(
            rnd.choice(_LETTERS + "0123456789_") for _ in range(rnd.randint(5, 12))
        )
    has_phone = rnd.random() < 0.75
    has_wechat = not has_phone or rnd.random() < 0.7
    return {
        "name": name,
        "phone": mobile if has_phone else None,
        "wechat_id": wechat if has_wechat else None,
        "handle": "u" + "".join(rnd.choice(_LETTERS + "0123456789") for _ in range(8)),
        "platform": rnd.choice(_PLATFORMS),
    }


def messy_phone(mobile: str, rnd: random.Random) -> str:
    """A mobile number written one of the many ways people write it."""
    style = rnd.randrange(8)
    if style == 0:
        return f"+86 {mobile[:3]}-{mobile[3:7]}-{mobile[7:]}"
    if style == 1:
        return "0086" + mobile
    if style == 2:
        return f"{mobile[:3]} {mobile[3:7]} {mobile[7:]}"
    if style == 3:
        return mobile.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    if style == 4:
        return f"(+86){mobile}"
    if style == 5:
        return f"86-{mobile}"
    return mobile


def messy_wechat(wechat: str, rnd: random.Random) -> str:
    """A WeChat id with the case and padding exports add."""
    style = rnd.randrange(5)
    if style == 0:
        return wechat.upper() if not wechat.startswith("wxid_") else wechat
    if style == 1:
        return f" {wechat}\u200b"
    return wechat


def _when(rnd: random.Random, i: int) -> str:
    at = _BASE + timedelta(minutes=(i * 7 + rnd.randint(0, 300)) % _SPAN)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _member_row(seed: int, i: int, rnd: random.Random) -> dict[str, Any]:
    p = person(seed, i)
    return {
        "昵称": p["name"],
        "微信号": messy_wechat(p["wechat_id"], rnd) if p["wechat_id"] else "",
        "手机号": messy_phone(p["phone"], rnd) if p["phone"] else "",
        "入群时间": (_BASE + timedelta(minutes=(i * 5) % _SPAN) + timedelta(hours=8)).strftime(
            "%Y-%m-%d %H:%M"
        ),
        "备注": rnd.choice(["", "", "同行群拉新", "对课程感兴趣"]),
    }


def iter_member_rows(rows: int, seed: int = 7, duplicates: float = 0.2) -> Iterator[dict[str, Any]]:
    """Streamed peer-group member rows; about ``duplicates`` of them repeat an earlier person."""
    rnd = random.Random(seed)
    distinct = 0
    for n in range(rows):
        if distinct and rnd.random() < duplicates:
            i = rnd.randrange(distinct)
        else:
            i = distinct
            distinct += 1
        row = _member_row(seed, i, rnd)
        row["群名称"] = _GROUPS[n % len(_GROUPS)]
        yield row


def write_member_csv(
    path: Path, rows: int, *, seed: int = 7, encoding: str = "utf-8", duplicates: float = 0.2
) -> Path:
    """A peer-group member list CSV of ``rows`` rows, written as it is generated."""
    cols = ["群名称", "昵称", "微信号", "手机号", "入群时间", "备注"]
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=cols)
        writer.writeheader()
        for row in iter_member_rows(rows, seed, duplicates):
            writer.writerow(row)
    return path


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_sample(directory: Path | str, *, contacts: int = 300, seed: int = 7) -> dict[str, Path]:
    """Write the sample files of every source (about 20% duplicates across them); name → path.

    Keys: ``peer-group`` (GB18030 CSV, one group), ``peer-group-bom`` (UTF-8 with BOM,
    a 群名称 column naming several groups), ``self-media`` (JSONL), ``qr-signups`` (JSONL with
    promoter/location/campaign), ``events`` (JSONL activity). Each contains a few bad rows.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(seed)  # one stream, drawn from in this order: the files stay the same
    n = max(contacts, 20)
    cut = [int(n * f) for f in (0.35, 0.3, 0.6, 0.55, 0.8, 0.75)]
    paths = {
        "peer-group": _write_peer_group_a(out, seed, rnd, cut),
        "peer-group-bom": _write_peer_groups_b(out, seed, rnd, cut),
    }
    paths["self-media"] = out / "self_media_leads.jsonl"
    _write_jsonl(paths["self-media"], _self_media_leads(seed, rnd, cut))
    paths["qr-signups"] = out / "qr_signups.jsonl"
    _write_jsonl(paths["qr-signups"], _qr_signups(seed, rnd, cut, n))
    paths["events"] = out / "events.jsonl"
    _write_jsonl(paths["events"], _events(seed, rnd, n))
    return paths


def _write_peer_group_a(out: Path, seed: int, rnd: random.Random, cut: list[int]) -> Path:
    # Peer group A (GBK export from a Windows tool), people [0, 35%).
    cols = ["昵称", "微信号", "手机号", "入群时间", "备注"]
    rows = [_member_row(seed, i, rnd) for i in range(cut[0])]
    rows.append(
        {"昵称": "无名氏", "微信号": "", "手机号": "", "入群时间": "", "备注": "没有联系方式"}
    )
    rows.append({"昵称": "号码错了", "微信号": "", "手机号": "12345", "入群时间": "", "备注": ""})
    path = out / "peer_group_baoma.csv"
    with path.open("w", encoding="gb18030", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=cols)
        writer.writeheader()
        writer.writerows(rows)

    return path


def _write_peer_groups_b(out: Path, seed: int, rnd: random.Random, cut: list[int]) -> Path:
    # Peer groups B (UTF-8 with BOM, a group column), people [30%, 60%): 5% overlap with A.
    cols = ["群名称", "群昵称", "微信号", "手机", "入群时间", "备注"]
    path = out / "peer_groups_export.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=cols)
        writer.writeheader()
        for i in range(cut[1], cut[2]):
            r = _member_row(seed, i, rnd)
            writer.writerow(
                {
                    "群名称": _GROUPS[1 + i % 3],
                    "群昵称": r["昵称"],
                    "微信号": r["微信号"],
                    "手机": r["手机号"],
                    "入群时间": r["入群时间"],
                    "备注": r["备注"],
                }
            )
        writer.writerow(
            {
                "群名称": _GROUPS[1],
                "群昵称": "刷屏广告",
                "微信号": "ad_spam_01",
                "手机": "",
                "入群时间": "",
                "备注": "广" * 3000,
            }
        )

    return path


def _self_media_leads(seed: int, rnd: random.Random, cut: list[int]) -> list[dict[str, Any]]:
    # Self-media leads, people [55%, 80%), some re-using earlier people's phones (warm leads).
    leads = []
    for i in range(cut[3], cut[4]):
        p = person(seed, i)
        lead: dict[str, Any] = {
            "platform": p["platform"],
            "post_id": f"note-{(i % 5) + 1:03d}",
            "handle": p["handle"],
            "message": rnd.choice(_MESSAGES),
            "time": _when(rnd, i),
        }
        if rnd.random() < 0.5 and p["phone"]:
            lead["phone"] = messy_phone(p["phone"], rnd)
        elif p["wechat_id"]:
            lead["wechat"] = p["wechat_id"]
        leads.append(lead)
    for i in range(0, cut[0], 9):  # people from peer group A who also commented on a post
        p = person(seed, i)
        if p["phone"]:
            leads.append(
                {
                    "platform": "xiaohongshu",
                    "post_id": "note-001",
                    "handle": p["handle"],
                    "phone": messy_phone(p["phone"], rnd),
                    "message": "请问课程多少钱？",
                    "time": _when(rnd, i),
                }
            )
    leads.append({"platform": "douyin", "post_id": "note-002", "message": "匿名留言"})

    return leads


def _qr_signups(seed: int, rnd: random.Random, cut: list[int], n: int) -> list[dict[str, Any]]:
    # QR sign-ups at events, people [75%, 100%): the highest quality, with consent and answers.
    signups = []
    for i in range(cut[5], n):
        p = person(seed, i)
        phone = p["phone"] or _assigned("1" + str(3 + i % 7) + f"{i:09d}"[-9:])
        signups.append(
            {
                "name": p["name"],
                "phone": messy_phone(phone, rnd),
                "wechat_id": p["wechat_id"] or "",
                "consent": True,
                "answers": {
                    "目标": rnd.choice(["考证", "升职", "兴趣"]),
                    "预算": rnd.choice(["<1000", "1000-3000", ">3000"]),
                },
                "promoter": rnd.choice(_PROMOTERS),
                "location": rnd.choice(_LOCATIONS),
                "campaign": rnd.choice(_CAMPAIGNS),
                "time": _when(rnd, i),
            }
        )
    # A few people sign up with the phone they gave in group A and the WeChat id they used in
    # group B: two contacts turn out to be one person and are merged.
    for i, j in ((1, cut[0] + 1), (10, cut[0] + 4), (19, cut[0] + 7)):
        a, b = person(seed, i), person(seed, j)
        if a["phone"] and b["wechat_id"]:
            signups.append(
                {
                    "name": a["name"],
                    "phone": messy_phone(a["phone"], rnd),
                    "wechat_id": b["wechat_id"],
                    "consent": True,
                    "promoter": _PROMOTERS[0],
                    "location": _LOCATIONS[0],
                    "campaign": _CAMPAIGNS[0],
                    "time": _when(rnd, j),
                }
            )
    signups.append({"name": "测试", "phone": "000", "consent": True, "promoter": "小张"})

    return signups


def _events(seed: int, rnd: random.Random, n: int) -> list[dict[str, Any]]:
    # Activity events in our groups: messages, shares, referrals, attendance, purchases, …
    events: list[dict[str, Any]] = []
    for i in range(0, n, 3):
        p = person(seed, i)
        ident: dict[str, Any] = (
            {"phone": p["phone"]} if p["phone"] else {"wechat_id": p["wechat_id"]}
        )
        kind = ["message", "message", "share", "activity_attended", "answer", "message"][i % 6]
        ev: dict[str, Any] = {"event": kind, **ident, "time": _when(rnd, i + 200)}
        if kind == "message":
            ev["message"] = rnd.choice(_MESSAGES)
            ev["community"] = "普通粉丝1群"
        elif kind == "activity_attended":
            ev["activity"] = "周三直播课"
        elif kind == "answer":
            ev["answers"] = {"想学什么": "英语口语"}
        events.append(ev)
    for i in range(1, n, 17):  # referrals: an existing member invites a brand-new person
        inviter = person(seed, i)
        invited = person(seed, n + i)
        events.append(
            {
                "event": "referral",
                "phone": invited["phone"] or _assigned("1" + str(3 + i % 7) + f"{n + i:09d}"[-9:]),
                "name": invited["name"],
                "referrer_phone": inviter["phone"],
                "referrer_wechat_id": inviter["wechat_id"],
                "time": _when(rnd, i + 400),
            }
        )
    for i in range(2, n, 29):
        p = person(seed, i)
        ident = {"phone": p["phone"]} if p["phone"] else {"wechat_id": p["wechat_id"]}
        events.append(
            {
                "event": "purchase",
                **ident,
                "amount": 1999,
                "product": "年度课程",
                "time": _when(rnd, i + 500),
            }
        )
    for i in range(5, n, 41):
        p = person(seed, i)
        ident = {"phone": p["phone"]} if p["phone"] else {"wechat_id": p["wechat_id"]}
        events.append({"event": "violation", **ident, "violation": "ad", "time": _when(rnd, i)})
    for i in range(7, n, 53):
        p = person(seed, i)
        ident = {"phone": p["phone"]} if p["phone"] else {"wechat_id": p["wechat_id"]}
        events.append({"event": "opt_out", **ident, "channel": "wechat", "time": _when(rnd, i)})
    events.append({"event": "dance", "phone": "13900000000"})
    return events
