"""CLI tables print stored text as text: no control character reaches the terminal."""

from __future__ import annotations

from flows.cli.common import print_table


def test_control_characters_in_values_print_as_spaces(capsys) -> None:
    print_table([{"name": "小美\r\t\x1b[31m红\n字\x9b", "tier": "open"}])
    out = capsys.readouterr().out
    assert "\r" not in out and "\t" not in out and "\x1b" not in out and "\x9b" not in out
    lines = out.splitlines()
    assert len(lines) == 3 and "小美" in lines[2] and "open" in lines[2]
