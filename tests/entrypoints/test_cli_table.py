"""CLI tables print stored text as text: no control character reaches the terminal."""

from __future__ import annotations

from flows.cli.common import print_table


def test_control_characters_in_values_print_as_spaces(capsys) -> None:
    print_table([{"name": "小美\r\t\x1b[31m红\n字\x9b", "tier": "open"}])
    out = capsys.readouterr().out
    assert "\r" not in out and "\t" not in out and "\x1b" not in out and "\x9b" not in out
    lines = out.splitlines()
    assert len(lines) == 3 and "小美" in lines[2] and "open" in lines[2]


def test_columns_line_up_for_chinese_emoji_and_combining_marks(capsys) -> None:
    from rich.cells import cell_len

    print_table(
        [
            {"name": "学费多少？可以试听吗", "tier": "prospect"},
            {"name": "Zoe\u0301 👍", "tier": "open"},
        ]
    )
    lines = capsys.readouterr().out.splitlines()
    starts = {
        cell_len(line[: line.index(tier)]) for line, tier in zip(lines[2:], ["prospect", "open"])
    }
    assert len(starts) == 1, lines  # the tier column starts at one terminal column


def test_times_print_in_the_team_zone_with_its_offset_or_in_utc(monkeypatch) -> None:
    from datetime import UTC, datetime

    from flows.cli import common

    monkeypatch.setenv("QUNFLOW_TIMEZONE", "Asia/Shanghai")
    common.settings.cache_clear()
    joined = datetime(2026, 12, 3, 12, 16, tzinfo=UTC)  # 20:16 in Shanghai
    try:
        assert common.when(joined) == "2026-12-03 20:16 +08:00"
        common.print_utc(True)
        assert common.when(joined) == "2026-12-03 12:16 UTC"
    finally:
        common.print_utc(False)
        common.settings.cache_clear()
