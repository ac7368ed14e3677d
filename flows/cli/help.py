"""``--help`` in the reader's language: every command's page written from the message catalog.

Each command and group gets its words from ``help.<command path>`` (``help.contacts.list``),
each parameter from ``help.<command path>.<parameter>`` (``help.contacts.list.tier``), the root
from ``help.qunflow``; Click's own words (headings, ``[default: …]``, the ``--help`` line) from
``help.click.*``. The code's English stays the fallback: a key the catalog lacks reads as the
code says it (a test keeps every key in both languages).

Click's wrapping counts characters and breaks only at spaces: Chinese would run twice as wide
and never break. Lines here are measured in terminal cells (CJK takes two, as in the tables)
and break between CJK characters too, but never inside a Latin word, a flag or a list of
choices.

The root's page is read without importing any command module, and without the rest of the
catalog machinery (``flows.i18n``): the compiled catalog is read with the standard library.
"""

from __future__ import annotations

import gettext
import inspect
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from rich.cells import cell_len
from typer._click import Context
from typer._click.formatting import HelpFormatter

# As flows.i18n names them (a test keeps the two the same).
DOMAIN = "qunflow"
LOCALE_DIR = Path(__file__).resolve().parents[1] / "i18n" / "locale"
ROOT_KEY = "help.qunflow"

# Click's own words, as ``help.click.<word>`` keys.
CLICK_WORDS = (
    "usage",
    "options",
    "arguments",
    "commands",
    "options_metavar",
    "command_metavar",
    "help_option",
    "default",
    "required",
    "extras",
    "extras_separator",
    "at_least",
    "at_most",
    "between",
    "true",
    "false",
)

# Typer's names for a value's type, as ``<str>`` shows them; the catalog words them.
_TYPES = {
    "str": "str",
    "int": "int",
    "int range": "int_range",
    "float": "float",
    "float range": "float_range",
    "path": "path",
    "list[str]": "list_str",
    "list[int]": "list_int",
}


@cache
def _catalog(lang: str) -> gettext.NullTranslations:
    locale = "en" if lang == "en" else "zh_CN"
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[locale])


class HelpWords:
    """The catalog's help words in one language; a missing key gives the code's English."""

    def __init__(self, lang: str) -> None:
        self.lang = "en" if lang == "en" else "zh-CN"
        self._words = _catalog(self.lang).gettext

    def get(self, key: str) -> str | None:
        found = self._words(key)
        return found if found != key else None

    def click(self, word: str, **params: Any) -> str:
        """One of Click's own words (``help.click.options``: ``Options:``)."""
        text = self.get(f"help.click.{word}") or word
        return text.format(**params) if params else text

    def command(self, path: Sequence[str], code_text: str | None) -> str:
        """A command's full help: the catalog's, else its docstring."""
        found = self.get(command_key(path))
        if found is not None:
            return found
        return inspect.cleandoc(code_text or "").partition("\f")[0]

    def param(self, path: Sequence[str], param: Any) -> str:
        """An option's or argument's help line."""
        if getattr(param, "name", None) == "help" and not param.expose_value:
            return self.click("help_option")
        return self.get(param_key(path, param.name)) or (param.help or "")


def command_key(path: Sequence[str]) -> str:
    """``help.contacts.list`` for ``qunflow contacts list``; ``help.qunflow`` for the root."""
    return f"help.{'.'.join(path)}" if path else ROOT_KEY


def param_key(path: Sequence[str], name: str) -> str:
    """``help.contacts.list.tier``: the ``--tier`` option of ``qunflow contacts list``."""
    return f"{command_key(path)}.{name}"


def command_path(ctx: Context) -> list[str]:
    """The names under the root: ``["contacts", "list"]`` for ``qunflow contacts list``."""
    names: list[str] = []
    while ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return names[::-1]


# --- wrapping by terminal cells ----------------------------------------------------------

# No line starts with a closing mark, none ends with an opening one (the usual rule for CJK).
_NO_BREAK_BEFORE = frozenset("，。、；：？！）」』》〉】…—,.;:?!)]}%")
_NO_BREAK_AFTER = frozenset("（「『《〈【([{")


def _wide(char: str) -> bool:
    return unicodedata.east_asian_width(char) in ("W", "F")


def _pieces(text: str, cjk: bool) -> Iterator[str]:
    """The text cut where a line may break: runs of spaces and unbreakable runs."""
    run = ""
    for char in text:
        if run and (char.isspace() != run[-1].isspace() or (cjk and _may_break(run[-1], char))):
            yield run
            run = ""
        run += " " if char.isspace() else char
    if run:
        yield run


def _may_break(before: str, after: str) -> bool:
    if after in _NO_BREAK_BEFORE or before in _NO_BREAK_AFTER:
        return False
    if after in _NO_BREAK_AFTER and not _wide(before):  # a code and its gloss: "paid（付费群）"
        return False
    return _wide(before) or _wide(after)


def wrap(
    text: str, width: int, initial_indent: str = "", subsequent_indent: str = "", cjk: bool = True
) -> list[str]:
    """One paragraph filled to ``width`` cells (indents included); a run wider than a line
    stays whole on a line of its own."""
    lines: list[str] = []
    line, used, empty, space = initial_indent, cell_len(initial_indent), True, ""
    for piece in _pieces(text, cjk):
        if piece.isspace():
            space = "" if empty else piece  # kept as written ("help  [default: 1]")
            continue
        gap = space
        needed = cell_len(gap) + cell_len(piece)
        if not empty and used + needed > width:
            lines.append(line)
            line, used, gap = subsequent_indent, cell_len(subsequent_indent), ""
            needed = cell_len(piece)
        line += gap + piece
        used += needed
        empty, space = False, ""
    if not empty:
        lines.append(line)
    return lines


def wrap_text(text: str, width: int, indent: str = "") -> str:
    """Paragraphs (split by blank lines) filled to ``width``; a paragraph whose first line is
    ``\\b`` keeps its lines as written."""
    out = []
    for paragraph in text.expandtabs().split("\n\n"):
        lines = [line.strip() for line in paragraph.strip("\n").splitlines()]
        if lines and lines[0] == "\b":
            out.append("\n".join(indent + line for line in lines[1:]))
        elif lines:
            out.append("\n".join(wrap(_joined(lines), width, indent, indent)))
    return "\n\n".join(out)


def _joined(lines: list[str]) -> str:
    text = lines[0]
    for line in lines[1:]:
        text += ("" if text and line and _wide(text[-1]) and _wide(line[0]) else " ") + line
    return text


def _filled(text: str, extra: str, width: int) -> list[str]:
    lines = wrap_text(text, width).splitlines() if text else []
    if not extra:
        return lines
    # Click sets the bracket off by two spaces; after a Chinese sentence it needs none.
    gap = "" if lines and _wide(lines[-1][-1]) and _wide(extra[0]) else "  "
    if lines and cell_len(lines[-1] + gap + extra) <= width:
        return [*lines[:-1], lines[-1] + gap + extra]
    return lines + wrap(extra, width)


class CellFormatter(HelpFormatter):
    """Click's help layout, measured in terminal cells and wrapped for CJK."""

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        head = f"{'':>{self.current_indent}}{prefix or ''}{prog} "
        rest = " " * min(cell_len(head), 30)
        lines = wrap(args, self.width - self.current_indent, head, rest, cjk=False)
        self.write("\n".join(lines or [head.rstrip()]) + "\n")

    def write_heading(self, heading: str) -> None:
        """The heading as the catalog writes it, its colon included (``选项：``)."""
        self.write(f"{'':>{self.current_indent}}{heading}\n")

    def write_text(self, text: str) -> None:
        self.write(wrap_text(text, self.width, " " * self.current_indent) + "\n")

    def write_dl(
        self, rows: Sequence[tuple[str, ...]], col_max: int = 30, col_spacing: int = 2
    ) -> None:
        """Rows of a name, its help and (for a parameter) the bracket Click adds after it,
        which stays whole: on the help's last line if it fits, else on a line of its own."""
        rows = list(rows)
        first_col = min(max((cell_len(row[0]) for row in rows), default=0), col_max)
        first_col += col_spacing
        margin = " " * (first_col + self.current_indent)
        width = max(self.width - first_col - 2, 10)
        for first, second, *extra in rows:
            self.write(f"{'':>{self.current_indent}}{first}")
            lines = _filled(second, extra[0] if extra else "", width)
            if not lines:
                self.write("\n")
                continue
            if cell_len(first) <= first_col - col_spacing:
                self.write(" " * (first_col - cell_len(first)))
            else:
                self.write("\n" + margin)
            self.write("\n".join([lines[0], *(margin + x if x else "" for x in lines[1:])]) + "\n")

    @contextmanager
    def section(self, name: str) -> Iterator[None]:
        self.write_paragraph()
        self.write_heading(name)
        self.indent()
        try:
            yield
        finally:
            self.dedent()


# --- the page ------------------------------------------------------------------------------


def help_page(ctx: Context, words: HelpWords | None = None) -> str:
    """The whole ``--help`` page of ``ctx``'s command, in the reader's language by default."""
    if words is None:
        from flows.cli.lang import help_lang

        words = HelpWords(help_lang())
    command = ctx.command
    path = command_path(ctx)
    out = CellFormatter(width=ctx.terminal_width, max_width=ctx.max_content_width)
    _usage(command, ctx, words, out)
    text = words.command(path, command.help)
    if text:
        out.write_paragraph()
        with out.indentation():
            out.write_text(text)
    _params(command, ctx, path, words, out)
    if hasattr(command, "list_commands"):
        _commands(command, ctx, path, words, out)
    return out.getvalue().rstrip("\n")


def _usage(command: Any, ctx: Context, words: HelpWords, out: CellFormatter) -> None:
    said = {
        command.options_metavar: words.click("options_metavar"),
        getattr(command, "subcommand_metavar", None): words.click("command_metavar"),
    }
    pieces = [said.get(piece) or piece for piece in command.collect_usage_pieces(ctx)]
    prefix = words.click("usage")
    out.write_usage(ctx.command_path, " ".join(pieces), prefix + ("" if _wide(prefix[-1]) else " "))


def _params(
    command: Any, ctx: Context, path: list[str], words: HelpWords, out: CellFormatter
) -> None:
    rows: dict[str, list[tuple[str, str, str]]] = {"argument": [], "option": []}
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None or param.param_type_name not in rows:
            continue
        extras = _extras(param, ctx, words)
        said = words.click("extras_separator").join(extras)
        shown = words.click("extras", items=said) if extras else ""
        rows[param.param_type_name].append(
            (_typed(record[0], words), words.param(path, param), shown)
        )
    for kind, heading in (("argument", "arguments"), ("option", "options")):
        if rows[kind]:
            with out.section(words.click(heading)):
                out.write_dl(rows[kind])


def _typed(name: str, words: HelpWords) -> str:
    """``--limit <int range>`` with the type in words (``--limit <整数>``); choices stay."""
    head, sep, rest = name.rpartition(" <")
    if not sep or not rest.endswith(">") or rest[:-1] not in _TYPES:
        return name
    said = words.click("type." + _TYPES[rest[:-1]])
    if head.endswith("..."):  # an argument that takes several says so once: "ids... <整数>"
        said = said.removesuffix("…").removesuffix("...")
    return f"{head} <{said}>"


def _extras(param: Any, ctx: Context, words: HelpWords) -> list[str]:
    """What Click adds after the help in brackets: the default, the range, ``required``."""
    extras = []
    shown_as_text = isinstance(param.show_default, str)
    default = param._extract_default_help_str(ctx=ctx)
    if shown_as_text or (default is not None and (param.show_default or ctx.show_default)):
        text = param._get_default_string(
            ctx=ctx, show_default_is_str=shown_as_text, default_value=default
        )
        if text:
            text = words.click(text.lower()) if text in ("True", "False") else text
            extras.append(words.click("default", default=text))
    bounds = _bounds(param, words)
    if bounds:
        extras.append(bounds)
    if param.required:
        extras.append(words.click("required"))
    return extras


def _bounds(param: Any, words: HelpWords) -> str | None:
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    if low is None and high is None:
        return None
    if high is None:
        return words.click("at_least", min=low)
    if low is None:
        return words.click("at_most", max=high)
    return words.click("between", min=low, max=high)


def _commands(
    group: Any, ctx: Context, path: list[str], words: HelpWords, out: CellFormatter
) -> None:
    listed = getattr(group, "listed_command", group.get_command)
    rows = []
    for name in group.list_commands(ctx):
        command = listed(ctx, name)
        if command is None or command.hidden:
            continue
        text = words.command([*path, name], command.help)
        rows.append((name, text.split("\n\n")[0]))
    if rows:
        with out.section(words.click("commands")):
            out.write_dl(rows)
