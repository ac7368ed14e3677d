"""The message catalog: every word in both languages, every key the code uses defined, the
compiled files current, and the running service free of the extraction tooling."""

from __future__ import annotations

import gettext
import string
import subprocess
import sys
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from flows.i18n import DOMAIN, LANGS, LOCALE_DIR, LOCALES, translator

ROOT = Path(__file__).resolve().parents[2]


def _po(lang: str):
    with (LOCALE_DIR / LOCALES[lang] / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as fh:
        return read_po(fh)


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def test_every_word_is_in_both_languages_with_the_same_placeholders():
    catalogs = {lang: {m.id: m for m in _po(lang) if m.id} for lang in LANGS}
    zh, en = catalogs["zh"], catalogs["en"]
    assert len(zh) > 300
    assert set(zh) == set(en), set(zh) ^ set(en)
    for lang, messages in catalogs.items():
        assert not [k for k, m in messages.items() if not m.string], lang
        assert not [k for k, m in messages.items() if m.fuzzy], lang
        assert not _po(lang).obsolete, lang
    differ = [k for k in zh if _fields(zh[k].string) != _fields(en[k].string)]
    assert not differ, differ


def test_every_key_the_code_and_templates_use_is_in_the_catalog():
    with (ROOT / "babel.cfg").open() as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    used = {
        (message if isinstance(message, str) else message[0], path)
        for path, _, message, _, _ in extract_from_dir(ROOT, method_map, options_map)
    }
    keys = {key for key, _ in used}
    assert {"claim_next", "too_many", "signal.source", "no_data"} <= keys  # templates and Python
    known = {m.id for m in _po("zh")}
    missing = sorted((path, key) for key, path in used if key not in known)
    assert not missing, missing


def test_the_compiled_catalogs_say_what_the_po_files_say():
    for lang in LANGS:
        with (LOCALE_DIR / LOCALES[lang] / "LC_MESSAGES" / f"{DOMAIN}.mo").open("rb") as fh:
            compiled = gettext.GNUTranslations(fh)
        stale = [m.id for m in _po(lang) if m.id and compiled.gettext(m.id) != m.string]
        assert not stale, f"{lang}: run `make messages` ({stale[:5]})"


def test_a_missing_key_reads_as_itself_and_other_languages_read_chinese():
    assert translator("en")("no-such-key") == "no-such-key"
    assert translator("zh")("no-such-key") == "no-such-key"
    assert translator("en")("") == ""  # not the catalog's header
    assert translator("fr")("claim") == translator("zh")("claim") == "认领"
    assert translator("en")("sum.title").format(label="7d", timezone="UTC", by="Source") == (
        "Funnel report 7d (UTC), by Source"
    )


def test_reading_the_catalog_loads_no_extraction_tooling():
    probe = (
        "import sys\nfrom flows.i18n import translator\n"
        "print(translator('en')('claim'))\nprint('babel' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    assert out == ["Claim", "False"]
