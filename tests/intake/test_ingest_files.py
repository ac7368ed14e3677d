"""File adapters: encodings, formats, header aliases, bad files and bad rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openpyxl import Workbook

from crm.core.errors import InputError
from crm.intake.files import open_adapter
from crm.intake.records import RawItem, RejectedRow

ROWS = (
    "昵称,微信号,手机号,入群时间,备注\n"
    "小美🌸,Mei_Mei88,+86 138-0013-8000,2024-05-06 09:00,同行\n"
    "阿强,,０１３９００１３９０００,,\n"
)


def _items(kind: str, path: Path, **kw: str) -> list[RawItem | RejectedRow]:
    return list(open_adapter(kind, path, **kw).items())


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_csv_encodings_detected(tmp_path: Path, encoding: str) -> None:
    text = ROWS.replace("🌸", "") if encoding == "gbk" else ROWS
    path = tmp_path / "members.csv"
    path.write_bytes(text.encode(encoding))
    items = _items("peer-group", path, group="宝妈群")
    assert next(i.payload["name"] for i in items if isinstance(i, RawItem)).startswith("小美")
    first = items[0]
    assert isinstance(first, RawItem)
    assert first.payload["wechat_id"] == "Mei_Mei88"
    assert first.payload["phone"] == "+86 138-0013-8000"
    assert first.row_number == 2


def test_record_keys_are_stable(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(ROWS, encoding="utf-8")
    keys1 = [i.record_key for i in _items("peer-group", path) if isinstance(i, RawItem)]
    keys2 = [i.record_key for i in _items("peer-group", path) if isinstance(i, RawItem)]
    assert keys1 == keys2 and len(set(keys1)) == 2


def test_group_column_gives_per_row_source(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("Group,Nickname,WeChat\nA群,x,abcdef1\nB群,y,abcdef2\n", encoding="utf-8")
    items = [i for i in _items("peer-group", path, account="op1") if isinstance(i, RawItem)]
    assert [i.source.group_name if i.source else None for i in items] == ["A群", "B群"]
    assert items[0].source is not None and items[0].source.operator_handle == "op1"


def test_xlsx_streamed(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["群名称", "群昵称", "手机", "微信"])
    sheet.append(["考研群", "李雷", 13800138000, "li_lei_01"])
    sheet.append([None, None, None, None])
    sheet.append(["考研群", "韩梅梅", "139 0013 9000", None])
    path = tmp_path / "m.xlsx"
    book.save(path)
    items = [i for i in _items("peer-group", path) if isinstance(i, RawItem)]
    assert [i.payload.get("phone") for i in items] == ["13800138000", "139 0013 9000"]
    assert items[0].row_number == 2 and items[1].row_number == 4


def test_jsonl_self_media_post_sources(tmp_path: Path) -> None:
    path = tmp_path / "leads.jsonl"
    lines = [
        {
            "平台": "小红书",
            "帖子": "note-1",
            "账号": "@Cat",
            "留言": "多少钱",
            "时间": "2024-05-06",
        },
        {"platform": "douyin", "post_url": "https://v.douyin.com/x", "handle": "dog"},
        "not json",
        [1, 2],
    ]
    path.write_text(
        "\n".join(x if isinstance(x, str) else json.dumps(x, ensure_ascii=False) for x in lines),
        encoding="utf-8",
    )
    items = _items("self-media", path)
    raw = [i for i in items if isinstance(i, RawItem)]
    bad = [i for i in items if isinstance(i, RejectedRow)]
    assert [i.source.key if i.source else None for i in raw] == [
        "xiaohongshu:note-1",
        "douyin:https://v.douyin.com/x",
    ]
    assert raw[0].payload["message"] == "多少钱"
    assert [b.row_number for b in bad] == [3, 4]


def test_oversized_field_is_rejected_row(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("昵称,微信号,备注\nx,abcdef1," + "长" * 5000 + "\n", encoding="utf-8")
    (item,) = _items("peer-group", path)
    assert isinstance(item, RejectedRow) and item.reason.key == "reason.oversized_field"
    assert item.reason.params == {"field": "note", "size": 5000, "limit": 2000}
    assert item.reason.text == "oversized field: note (5000 characters, limit 2000)"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        ("星座,血型\n白羊,A\n".encode(), "no recognizable columns"),
        ("昵称,备注\n小美,x\n".encode(), "no recognizable columns"),
        ("昵称,手机号\n".encode(), "only a header"),
    ],
)
def test_bad_files_raise_input_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "members.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as info:
        open_adapter("peer-group", path)
    assert "members.csv" in str(info.value)


def test_fake_xlsx_and_missing_file(tmp_path: Path) -> None:
    fake = tmp_path / "m.xlsx"
    fake.write_text("昵称,手机号\n", encoding="utf-8")
    with pytest.raises(InputError, match="not an XLSX"):
        open_adapter("peer-group", fake)
    with pytest.raises(InputError, match="no such file"):
        open_adapter("peer-group", tmp_path / "nope.csv")
