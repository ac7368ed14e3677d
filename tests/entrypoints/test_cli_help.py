"""``--help`` in the reader's language: every command, option and argument has catalog words
in Chinese and English, the pages use them, and Chinese lines fit the terminal."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from rich.cells import cell_len
from typer.testing import CliRunner

import flows.i18n
from flows.cli import COMMANDS, app, load_command
from flows.cli.help import (
    _TYPES,
    CLICK_WORDS,
    DOMAIN,
    LOCALE_DIR,
    HelpWords,
    command_key,
    param_key,
    wrap,
)

QUNFLOW = str(Path(sys.executable).with_name("qunflow"))
CJK = re.compile(r"[\u4e00-\u9fff]")
# Three English words in a row: a sentence, not a flag, a code or a name.
ENGLISH = re.compile(r"\b[A-Za-z][a-z]+ [a-z]{2,} [a-z]{2,}\b")
ZH, EN = HelpWords("zh-CN"), HelpWords("en")


def _tree() -> Iterator[tuple[list[str], Any]]:
    """Every command under the root, with the names that lead to it (the root: [])."""

    def walk(command: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
        yield path, command
        for name, sub in (getattr(command, "commands", None) or {}).items():
            yield from walk(sub, [*path, name])

    root = typer.main.get_command(app)
    yield [], root
    for name in COMMANDS:
        yield from walk(load_command(name), [name])


def _texts() -> Iterator[tuple[str, str]]:
    """Every help text the code writes, by its catalog key."""
    for path, command in _tree():
        yield command_key(path), inspect.cleandoc(command.help or "").partition("\f")[0]
        for param in command.params:
            yield param_key(path, param.name), param.help or ""


def test_every_command_option_and_argument_has_words_in_both_languages():
    texts = list(_texts())
    assert len(texts) > 250
    keys = [key for key, _ in texts]
    assert len(keys) == len(set(keys)), "two help texts share a key"
    for key, english in texts:
        zh, en = ZH.get(key), EN.get(key)
        assert zh is not None and en is not None, f"no catalog entry for {key}"
        # The code's English is the English help: the two never drift apart.
        assert en == english, (key, en, english)
        assert zh != en and CJK.search(zh), (key, zh)


def test_clicks_own_words_are_in_both_languages():
    words = [*CLICK_WORDS, *(f"type.{name}" for name in _TYPES.values())]
    for word in words:
        zh, en = ZH.get(f"help.click.{word}"), EN.get(f"help.click.{word}")
        assert zh is not None and en is not None, word
    assert CJK.search(ZH.click("usage")) and EN.click("usage") == "Usage:"


def test_help_reads_the_catalog_flows_i18n_reads():
    assert (flows.i18n.DOMAIN, flows.i18n.LOCALE_DIR.resolve()) == (DOMAIN, LOCALE_DIR)


def _page(runner: CliRunner, lang: str, path: list[str]) -> str:
    result = runner.invoke(app, ["--lang", lang, *path, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, (path, result.output)
    return result.output


def _prose(page: str) -> str:
    """The page without its usage line and quoted commands (`qunflow alerts list`)."""
    lines = [line for line in page.splitlines() if not line.startswith(("用法：", "Usage:"))]
    return re.sub(r"`[^`]*`", " ", " ".join(line.strip() for line in lines))


def test_every_page_reads_in_chinese_and_in_english_and_fits_80_columns():
    runner = CliRunner()
    for path, _ in _tree():
        zh = _page(runner, "zh-CN", path)
        assert zh.startswith("用法：qunflow") and "选项：" in zh, (path, zh)
        assert not ENGLISH.findall(_prose(zh)), (path, ENGLISH.findall(_prose(zh)), zh)
        assert "显示本帮助并退出。" in zh and "help.click" not in zh
        for line in zh.splitlines():  # the test runner's terminal is 80 columns wide
            assert cell_len(line) <= 80, (path, line)
        en = _page(runner, "en", path)
        assert en.startswith("Usage: qunflow") and "Options:" in en, (path, en)
        assert "Show this message and exit." in en and "help.click" not in en
        said = " ".join(EN.get(command_key(path)).split("\n\n")[0].split())
        assert said in " ".join(en.split()), path


def test_contacts_list_help_in_each_language(tmp_path):
    def run(*args: str, **env: str) -> str:
        locale = ("LANG", "LC_ALL", "LC_MESSAGES")
        plain = {k: v for k, v in os.environ.items() if not k.startswith("QUNFLOW")}
        plain = {k: v for k, v in plain.items() if k not in locale}
        proc = subprocess.run(
            [QUNFLOW, *args],
            env={**plain, "QUNFLOW_DATA_DIR": str(tmp_path), "COLUMNS": "80", **env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, (args, proc.stderr)
        return proc.stdout

    zh = run("--lang", "zh-CN", "contacts", "list", "--help")
    assert "用法：qunflow contacts list [选项]" in zh
    assert "列出客户，分数高的在前。" in zh and "只看这个等级的客户。" in zh
    assert "（默认：50；1–10000）" in zh and "<open|active|prospect|paid>" in zh
    assert not ENGLISH.findall(_prose(zh)), zh
    en = run("--lang", "en", "contacts", "list", "--help")
    assert "Usage: qunflow contacts list [OPTIONS]" in en and "Only contacts in this tier." in en
    assert "[default: 50; 1<=x<=10000]" in " ".join(en.split()) and not CJK.search(en)
    # Without --lang: QUNFLOW_LANG, else the locale, else Chinese; a bad setting still helps.
    assert run("contacts", "list", "--help", QUNFLOW_LANG="en") == en
    assert run("contacts", "list", "--help", LANG="en_US.UTF-8") == en
    assert run("contacts", "list", "--help") == zh
    assert run("contacts", "list", "--help", QUNFLOW_LANG="fr") == zh
    # The root's page, read without loading any command, in both languages.
    assert "列出客户" not in run("--help") and "查看 CRM 里的客户" in run("--help")
    assert "Look at contacts in the CRM" in run("--lang", "en", "--help")
    assert run("--help", "--lang", "en") == run("--lang=en", "--help")  # in either order


def test_a_group_called_bare_shows_its_page_in_words(tmp_path):
    proc = subprocess.run(
        [QUNFLOW, "--lang", "en", "contacts"],
        env={"PATH": "/usr/bin:/bin", "QUNFLOW_DATA_DIR": str(tmp_path), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2 and proc.stderr.startswith("Usage: qunflow contacts"), proc.stderr
    assert "Commands:" in proc.stderr


@pytest.mark.parametrize("width", [20, 36, 60])
def test_chinese_wraps_by_cells_and_never_inside_a_word_or_before_a_comma(width):
    text = (
        "按等级列出群（按群活码里的顺序），以及成员数、二维码有效期和 open|active|prospect|paid。"
    )
    lines = wrap(text, width, "  ", "  ")
    assert "".join(line.strip() for line in lines).replace(" ", "") == text.replace(" ", "")
    for line in lines:
        assert cell_len(line) <= width or " " not in line.strip(), line
        assert not line.strip().startswith(("，", "。", "、", "）")), line
        assert not line.endswith("（"), line
    assert any("open|active|prospect|paid" in line for line in lines)


def test_english_wraps_at_spaces_as_click_does():
    lines = wrap("Only contacts with this tag, highest score first.", 20)
    assert lines == ["Only contacts with", "this tag, highest", "score first."]


def test_the_language_of_help_comes_from_a_plain_environment_unless_a_dotenv_may_set_it(
    tmp_path,
):
    from flows.cli.lang import plain_lang

    env_file = tmp_path / ".env"
    assert plain_lang({"qunflow_lang": "en"}, env_file) == "en"  # names in any case
    assert plain_lang({"LANG": "en_US.UTF-8"}, env_file) == "en"
    assert plain_lang({"QUNFLOW_LANG": "fr", "LANG": "en_US.UTF-8"}, env_file) == "en"
    assert plain_lang({}, env_file) == "zh-CN"
    env_file.write_text("QUNFLOW_LANG=en\n")
    assert plain_lang({}, env_file) is None  # the settings read the file
