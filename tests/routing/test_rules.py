"""The rules file: the bundled default is valid; bad files fail naming the line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm.core.errors import InputError
from crm.core.settings import get_settings
from crm.routing.rules import DEFAULT_RULES, configured_rules, load_rules, parse_rules
from crm.routing.rules.loader import key_lines

DEFAULT_TEXT = DEFAULT_RULES.read_text(encoding="utf-8")


def line_of(text: str, needle: str, after: str = "") -> int:
    start = text.index(after) if after else 0
    return text[: text.index(needle, start)].count("\n") + 1


def test_default_rules_load_with_a_version() -> None:
    rules = load_rules()
    assert rules.version == "default-2026.11"
    assert rules.tiers.active.enter_at > rules.tiers.active.stay_above
    assert "多少钱" in rules.signals.intent.keywords


def test_settings_choose_the_rules_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "mine.toml"
    other.write_text(DEFAULT_TEXT.replace('"default-2026.11"', '"mine-1"'), encoding="utf-8")
    monkeypatch.setenv("QUNFLOW_RULES_PATH", str(other))
    assert configured_rules(get_settings()).version == "mine-1"
    assert configured_rules(get_settings(), DEFAULT_RULES).version == "default-2026.11"


def test_wrong_type_names_line_and_field() -> None:
    text = DEFAULT_TEXT.replace("weight = 10\n", 'weight = "ten"\n', 1)
    with pytest.raises(InputError) as err:
        parse_rules(text)
    line = line_of(text, 'weight = "ten"')
    assert str(err.value) == (
        f"rules.toml line {line}: signals.intent.weight: Input should be a valid integer"
    )


def test_unknown_key_names_its_line(tmp_path: Path) -> None:
    text = DEFAULT_TEXT.replace("stay_above = 45\n", "stay_above = 45\nstay_abve = 40\n")
    path = tmp_path / "typo.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_rules(path)
    line = line_of(text, "stay_abve")
    assert f"{path} line {line}: tiers.prospect.stay_abve: Extra inputs" in str(err.value)


def test_array_of_tables_entry_is_located() -> None:
    text = DEFAULT_TEXT.replace(
        "weight = 15\n\n[signals.attendance]", "weight = -1.5\n\n[signals.attendance]"
    )
    with pytest.raises(InputError) as err:
        parse_rules(text)
    line = line_of(text, "weight = -1.5")
    assert f"line {line}: signals.screening.questions.1.weight" in str(err.value)


def test_hysteresis_must_hold() -> None:
    text = DEFAULT_TEXT.replace("stay_above = 10", "stay_above = 25")
    with pytest.raises(InputError) as err:
        parse_rules(text)
    line = line_of(text, "[tiers.active]")
    assert f"line {line}: tiers.active: stay_above (25) must not exceed enter_at (20)" in str(
        err.value
    )


def test_missing_version_and_bad_event_kind() -> None:
    text = DEFAULT_TEXT.replace('version = "default-2026.11"\n', "").replace(
        '"activity_attended"]', '"dance"]'
    )
    with pytest.raises(InputError) as err:
        parse_rules(text)
    message = str(err.value)
    assert "line 1: version: Field required" in message
    assert f"line {line_of(text, 'kinds = ')}: signals.engagement.kinds" in message


def test_not_toml_at_all() -> None:
    with pytest.raises(InputError, match=r"rules.toml: not valid TOML: .*line 2"):
        parse_rules('version = "x"\nweight = = 3\n')


def test_key_lines_cover_tables_dotted_and_quoted_keys() -> None:
    lines = key_lines('a = 1\n[b.c]\n"d e" = 2\nf.g = 3\n[[h]]\nx = 1\n[[h]]\nx = 2\n')
    assert lines[("a",)] == 1
    assert lines[("b", "c")] == 2
    assert lines[("b", "c", "d e")] == 3
    assert lines[("b", "c", "f", "g")] == 4
    assert lines[("h", 1, "x")] == 8
