"""Message templates: one sandboxed Jinja environment, operators' templates before the bundled ones.

A template is named without locale or suffix (``welcome``) and found as
``<locale>/<name>.txt.j2`` in the operator directory (``settings.templates_dir``), then in the
bundled ``templates/messages``; a locale without the template falls back to zh-CN.
Templates compile once per process and recompile when their file changes (Jinja checks the
file's mtime on lookup); dispatch looks each template up once per batch and renders many.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from crm.core.errors import InputError

DEFAULT_LOCALE = "zh-CN"
SUFFIX = ".txt.j2"
# A follow-up is a chat message or a short email: far below this. An operator's template that
# grows past it is a mistake (or ``{{ 'a' * 10**9 }}``, which took 25 s and 1 GB unbounded).
MAX_MESSAGE_CHARS = 20_000
# Loop steps over range() in one render, all loops together (nested loops multiply).
MAX_RANGE_STEPS = 10_000


class TemplateError(InputError):
    """A message template is missing or failed to render; carries its name and line.

    ``where`` (``name:line``) fills the sentence; name and line are kept as parameters too,
    so they survive pickling like every error's key and parameters.
    """

    def __init__(self, name: str, key: str, line: int | None = None, **params: object) -> None:
        where = f"{name}:{line}" if line else name
        super().__init__(key, where=where, template=name, line=line, **params)

    @property
    def template(self) -> str:
        """The template's name."""
        return str(self.params["template"])

    @property
    def line(self) -> int | None:
        """The template's line where it failed, when known."""
        line = self.params.get("line")
        return line if isinstance(line, int) else None


class _TooLarge(SecurityError):
    """A render past one of the bounds below; its catalog key and parameters."""

    def __init__(self, key: str, /, **params: object) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


def bundled_dir() -> Path:
    """The bundled message templates (inside the installed package, else the repository)."""
    try:
        from importlib.resources import files

        path = Path(str(files("templates") / "messages"))
        if path.is_dir():
            return path
    except (ModuleNotFoundError, TypeError):  # pragma: no cover - broken install
        pass
    return Path(__file__).resolve().parents[2] / "templates" / "messages"


class _Bounded(SandboxedEnvironment):
    """The sandbox, with ``*`` and ``**`` refused when their result would be huge."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*" and _repeat_size(left, right) > MAX_MESSAGE_CHARS:
            raise _TooLarge("error.outreach.template_repeat", limit=MAX_MESSAGE_CHARS)
        numbers = isinstance(left, int | float) and isinstance(right, int | float)
        if operator == "**" and numbers and abs(right) > 64 and abs(left) > 1:
            raise _TooLarge("error.outreach.template_power")
        return super().call_binop(context, operator, left, right)


def _repeat_size(left: Any, right: Any) -> int:
    for seq, times in ((left, right), (right, left)):
        if isinstance(seq, str | list | tuple) and isinstance(times, int):
            return len(seq) * times
    return 0


class _RangeBudget:
    """``range`` for one render: every loop step counts against :data:`MAX_RANGE_STEPS`."""

    def __init__(self) -> None:
        self.left = MAX_RANGE_STEPS

    def __call__(self, *args: int) -> range:
        steps = range(*args)
        self.left -= len(steps)
        if self.left < 0:
            raise _TooLarge("error.outreach.template_loops", limit=MAX_RANGE_STEPS)
        return steps


@lru_cache(maxsize=8)
def environment(operator_dir: Path | None = None) -> SandboxedEnvironment:
    """The sandboxed environment for message text: undefined names are errors, no autoescape."""
    search = [str(p) for p in (operator_dir, bundled_dir()) if p is not None]
    return _Bounded(
        loader=jinja2.FileSystemLoader(search),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
        auto_reload=True,  # compiled once; an edited file (newer mtime) is compiled again
        trim_blocks=True,
        lstrip_blocks=True,
    )


def template_path(name: str, locale: str | None) -> list[str]:
    """Candidate loader paths for a template in a locale, most specific first."""
    locales = [locale] if locale and locale != DEFAULT_LOCALE else []
    if locale and "-" in locale:
        locales.append(locale.split("-")[0])
    locales.append(DEFAULT_LOCALE)
    return [f"{loc}/{name}{SUFFIX}" for loc in locales]


def available(operator_dir: Path | None = None) -> list[str]:
    """Names of every template found in the bundled and operator directories."""
    names: set[str] = set()
    for base in (operator_dir, bundled_dir()):
        if base is not None and base.is_dir():
            names.update(p.name.removesuffix(SUFFIX) for p in base.glob(f"*/*{SUFFIX}"))
    return sorted(names)


class MessageTemplate:
    """A compiled message template, rendered many times with different contexts."""

    def __init__(self, name: str, template: jinja2.Template) -> None:
        self.name = name
        self._template = template
        self._env = template.environment
        # Jinja copies and iterates its globals (a ChainMap) for every render; flatten once.
        self._globals = dict(template.globals)

    def render(self, context: Mapping[str, Any]) -> str:
        """Render with ``context``; raises TemplateError with the template's name and line."""
        tpl = self._template
        try:
            try:
                ctx = self._env.context_class(
                    self._env,
                    {**self._globals, "range": _RangeBudget(), **context},
                    tpl.name,
                    tpl.blocks,
                    globals=self._globals,
                )
                return _bounded_text(tpl.root_render_func(ctx)).strip()
            except Exception:
                self._env.handle_exception()  # rewrites the traceback to template lines
        except _TooLarge as exc:
            raise TemplateError(self.name, exc.key, _line_of(exc), **exc.params) from exc
        except jinja2.TemplateError as exc:  # Jinja's own words (an undefined name, the sandbox)
            raise TemplateError(
                self.name, "error.outreach.template_failed", _line_of(exc), detail=str(exc)
            ) from exc
        except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
            detail = f"{type(exc).__name__}: {exc}"
            raise TemplateError(
                self.name, "error.outreach.template_failed", _line_of(exc), detail=detail
            ) from exc


def load(
    name: str, *, locale: str | None = None, operator_dir: Path | None = None
) -> MessageTemplate:
    """The compiled template for a name and locale; raises TemplateError if missing or invalid."""
    env = environment(operator_dir)
    try:
        template = env.select_template(template_path(name, locale))
    except jinja2.TemplateSyntaxError as exc:
        if not exc.message:
            raise TemplateError(name, "error.outreach.template_syntax", exc.lineno) from exc
        raise TemplateError(
            name, "error.outreach.template_failed", exc.lineno, detail=exc.message
        ) from exc
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(
            name, "error.outreach.template_missing", locale=locale or DEFAULT_LOCALE
        ) from exc
    return MessageTemplate(name, template)


def render(
    name: str,
    context: Mapping[str, Any],
    *,
    locale: str | None = None,
    operator_dir: Path | None = None,
) -> str:
    """Render a message template; raises TemplateError with the template's name and line."""
    return load(name, locale=locale, operator_dir=operator_dir).render(context)


def _bounded_text(chunks: Iterable[str]) -> str:
    # Read the render as it streams: a runaway template stops at the limit, not at the end.
    parts: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_MESSAGE_CHARS:
            raise _TooLarge("error.outreach.template_long", limit=MAX_MESSAGE_CHARS)
        parts.append(chunk)
    return "".join(parts)


def _line_of(exc: BaseException) -> int | None:
    # Jinja rewrites tracebacks so frames of the compiled template carry the template's line.
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(SUFFIX):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
