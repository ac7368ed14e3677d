"""Chart images of a funnel report (PNG): the funnel by tier, retention cohorts, arrivals.

Drawn with matplotlib's Agg canvas directly (no pyplot, no display, no global state), with
English labels only so no CJK font is needed.
"""

from __future__ import annotations

import base64
import io
import json
from functools import lru_cache
from typing import Any

from crm.reports.conversion import TIERS

CHARTS = ("funnel", "retention", "arrivals")


def render_charts(report: dict[str, Any]) -> dict[str, bytes]:
    """PNG bytes of each chart, keyed by name (see CHARTS).

    Drawing takes most of a manager page's time (≈0.1 s a chart) while the numbers behind
    the charts change only when new data arrives, so images are kept per distinct input.
    """
    inputs = {
        "cohort": report["conversion"]["cohort"],
        # Not the whole window: it says when the report was made ("as_of").
        "window": {k: report["window"][k] for k in ("first_day", "last_day")},
        "retention": report["retention"]["cohorts"],
        "arrivals": report["arrivals"]["by_day_kind"],
    }
    return dict(_drawn(json.dumps(inputs, sort_keys=True, default=str)))


@lru_cache(maxsize=64)
def _drawn(inputs_json: str) -> tuple[tuple[str, bytes], ...]:
    inputs = json.loads(inputs_json)
    report = {
        "conversion": {"cohort": inputs["cohort"]},
        "window": inputs["window"],
        "retention": {"cohorts": inputs["retention"]},
        "arrivals": {"by_day_kind": inputs["arrivals"]},
    }
    return (
        ("funnel", _funnel(report)),
        ("retention", _retention(report)),
        ("arrivals", _arrivals(report)),
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


def _funnel(report: dict[str, Any]) -> bytes:
    cohort = report["conversion"]["cohort"]
    stages = ["arrived", *TIERS]
    values = [cohort[s] for s in stages]
    fig = _figure()
    ax = fig.add_subplot()
    bars = ax.barh(stages[::-1], values[::-1], color="#3b7dd8")
    for bar, value in zip(bars, values[::-1], strict=True):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {value}", va="center")
    # Dates, not the label: a period's title may be Chinese, which the font may lack.
    win = report["window"]
    ax.set_title(f"Funnel of new contacts, {win['first_day']} to {win['last_day']}")
    ax.set_xlabel("contacts")
    ax.margins(x=0.15)
    return _png(fig)


def _retention(report: dict[str, Any]) -> bytes:
    cohorts = report["retention"]["cohorts"]
    series = [
        ("present_14_rate", "present d14"),
        ("active_14_rate", "active d14"),
        ("present_30_rate", "present d30"),
        ("active_30_rate", "active d30"),
    ]
    fig = _figure(8.0, 3.8)
    ax = fig.add_subplot()
    if cohorts:
        width = 0.8 / len(series)
        xs = range(len(cohorts))
        for i, (key, name) in enumerate(series):
            values = [(c[key] or 0.0) * 100 for c in cohorts]
            ax.bar([x + i * width for x in xs], values, width, label=name)
        ax.set_xticks([x + 0.4 - width / 2 for x in xs])
        ax.set_xticklabels([c["week"][5:] for c in cohorts], rotation=45)
        ax.set_ylim(0, 100)
        ax.legend(fontsize="small", ncols=4, loc="upper right")
    else:
        ax.text(0.5, 0.5, "no cohorts", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("Retention by join week (% of joined; empty = not yet measurable)")
    ax.set_ylabel("%")
    return _png(fig)


def _arrivals(report: dict[str, Any]) -> bytes:
    rows = report["arrivals"]["by_day_kind"]
    days = sorted({r["day"] for r in rows})
    kinds = sorted({r["kind"] for r in rows})
    fig = _figure()
    ax = fig.add_subplot()
    if rows:
        bottom = [0] * len(days)
        for kind in kinds:
            values = [
                next((r["uv"] for r in rows if r["day"] == d and r["kind"] == kind), 0)
                for d in days
            ]
            ax.bar([d[5:] for d in days], values, bottom=bottom, label=kind)
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        ax.legend(fontsize="small")
        ax.tick_params(axis="x", rotation=45)
    else:
        ax.text(0.5, 0.5, "no arrivals", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("Unique contacts (UV) by day and source kind")
    ax.set_ylabel("contacts")
    return _png(fig)
