"""Chart images of a funnel report (PNG): the funnel by tier, retention cohorts, arrivals.

Drawn with matplotlib's Agg canvas directly (no pyplot, no display). Every label comes from
the caller's ``t(key)`` (the message catalog), drawn in a CJK font so Chinese shows; counts
have whole-number axes, and a chart with nothing to show is not drawn at all.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from crm.reports.conversion import TIERS

CHARTS = ("funnel", "retention", "arrivals")
# Fonts with CJK glyphs first (fonts-wqy-microhei on Debian), then matplotlib's own.
FONTS = ["WenQuanYi Micro Hei", "Noto Sans CJK SC", "DejaVu Sans"]
RETENTION = ("present_14", "active_14", "present_30", "active_30")
_KINDS = ("peer_group", "self_media", "qr_signup", "referral", "api")


def chart_words(t: Callable[[str], str]) -> dict[str, str]:
    """The catalog entries the charts use, in one language."""
    keys = [f"chart.{k}" for k in ("funnel", "retention", "arrivals", "contacts", "percent")]
    keys += [f"chart.{k}" for k in RETENTION] + ["stage.arrived"]
    keys += [f"tier.{k}" for k in TIERS] + [f"source.{k}" for k in _KINDS]
    return {k: t(k) for k in keys}


def render_charts(report: dict[str, Any], t: Callable[[str], str]) -> dict[str, bytes | None]:
    """PNG bytes of each chart, keyed by name (see CHARTS); None where there is no data.

    Drawing takes most of a manager page's time (≈0.1 s a chart) while the numbers behind
    the charts change only when new data arrives, so images are kept per distinct input.
    """
    inputs = {
        "cohort": report["conversion"]["cohort"],
        # Not the whole window: it says when the report was made ("as_of").
        "window": {k: report["window"][k] for k in ("first_day", "last_day")},
        "retention": report["retention"]["cohorts"],
        "arrivals": report["arrivals"]["by_day_kind"],
        "words": chart_words(t),
    }
    return dict(_drawn(json.dumps(inputs, sort_keys=True, default=str)))


@lru_cache(maxsize=64)
def _drawn(inputs_json: str) -> tuple[tuple[str, bytes | None], ...]:
    from matplotlib import rc_context

    inputs = json.loads(inputs_json)
    words = inputs["words"]
    report = {
        "conversion": {"cohort": inputs["cohort"]},
        "window": inputs["window"],
        "retention": {"cohorts": inputs["retention"]},
        "arrivals": {"by_day_kind": inputs["arrivals"]},
    }
    with rc_context({"font.family": "sans-serif", "font.sans-serif": FONTS, "font.size": 11}):
        return (
            ("funnel", _funnel(report, words)),
            ("retention", _retention(report, words)),
            ("arrivals", _arrivals(report, words)),
        )


def data_uri(png: bytes) -> str:
    """A PNG as a data: URI, for markdown and HTML pages."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _figure(width: float = 7.0, height: float = 3.6) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _whole_numbers(axis: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _legend_below(ax: Any, ncols: int) -> None:
    """Under the plot, where it hides no bar."""
    ax.legend(fontsize="small", ncols=ncols, loc="upper center", bbox_to_anchor=(0.5, -0.3))


def _word(words: Mapping[str, str], prefix: str, code: str) -> str:
    return words.get(f"{prefix}.{code}", code)


def _funnel(report: dict[str, Any], words: Mapping[str, str]) -> bytes | None:
    cohort = report["conversion"]["cohort"]
    stages = ["arrived", *TIERS]
    values = [cohort[s] for s in stages]
    if not any(values):
        return None
    names = [words["stage.arrived"], *(_word(words, "tier", s) for s in TIERS)]
    fig = _figure()
    ax = fig.add_subplot()
    bars = ax.barh(names[::-1], values[::-1], color="#3b7dd8")
    for bar, value in zip(bars, values[::-1], strict=True):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {value}", va="center")
    win = report["window"]
    ax.set_title(words["chart.funnel"].format(first=win["first_day"], last=win["last_day"]))
    ax.set_xlabel(words["chart.contacts"])
    _whole_numbers(ax.xaxis)
    ax.margins(x=0.15)
    return _png(fig)


def _retention(report: dict[str, Any], words: Mapping[str, str]) -> bytes | None:
    cohorts = report["retention"]["cohorts"]
    measured = [c[f"{k}_rate"] for c in cohorts for k in RETENTION]
    if all(rate is None for rate in measured):  # nobody joined, or too recent to tell
        return None
    fig = _figure(8.0, 3.8)
    ax = fig.add_subplot()
    width = 0.8 / len(RETENTION)
    xs = range(len(cohorts))
    for i, key in enumerate(RETENTION):
        values = [(c[f"{key}_rate"] or 0.0) * 100 for c in cohorts]
        ax.bar([x + i * width for x in xs], values, width, label=words[f"chart.{key}"])
    ax.set_xticks([x + 0.4 - width / 2 for x in xs])
    ax.set_xticklabels([c["week"][5:] for c in cohorts], rotation=45, ha="right")
    ax.set_ylim(0, 100)
    _legend_below(ax, ncols=len(RETENTION))
    ax.set_title(words["chart.retention"])
    ax.set_ylabel(words["chart.percent"])
    return _png(fig)


def _arrivals(report: dict[str, Any], words: Mapping[str, str]) -> bytes | None:
    rows = report["arrivals"]["by_day_kind"]
    if not rows:
        return None
    days = sorted({r["day"] for r in rows})
    kinds = sorted({r["kind"] for r in rows})
    fig = _figure()
    ax = fig.add_subplot()
    bottom = [0] * len(days)
    for kind in kinds:
        values = [
            next((r["uv"] for r in rows if r["day"] == d and r["kind"] == kind), 0) for d in days
        ]
        ax.bar([d[5:] for d in days], values, bottom=bottom, label=_word(words, "source", kind))
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    _legend_below(ax, ncols=len(kinds))
    ax.tick_params(axis="x", rotation=45)
    _whole_numbers(ax.yaxis)
    ax.set_title(words["chart.arrivals"])
    ax.set_ylabel(words["chart.contacts"])
    return _png(fig)
