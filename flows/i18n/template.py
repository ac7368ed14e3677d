"""``make messages``: the extracted template plus the keys only the .po files know.

Keys built at run time (``t(f"col.{name}")``, reason codes read from the database) are found by no
extractor, so ``pybabel update`` would retire them; adding the Chinese catalog's ids to the
template keeps them. Run as ``python -m flows.i18n.template PATH.pot``; needs Babel (a dev tool,
never imported by the running service).
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

from flows.i18n import LOCALE_DIR, LOCALES

SOURCE_OF_TRUTH = LOCALE_DIR / LOCALES["zh"] / "LC_MESSAGES" / "qunflow.po"


def keep_runtime_keys(pot_path: Path) -> int:
    """Adds to the template every id of the Chinese catalog it lacks; returns how many."""
    with pot_path.open("rb") as fh:
        template = read_po(fh)
    with SOURCE_OF_TRUTH.open("rb") as fh:
        known = read_po(fh)
    added = 0
    for message in known:
        if message.id and message.id not in template:
            template.add(message.id)
            added += 1
    with pot_path.open("wb") as fh:
        write_po(fh, template, sort_output=True, include_lineno=False)
    return added


if __name__ == "__main__":
    print(f"{keep_runtime_keys(Path(sys.argv[1]))} keys built at run time kept")
