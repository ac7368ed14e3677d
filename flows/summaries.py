"""The funnel and route runs' summaries in words: the CLI's lines and the Prefect artifacts.

Artifacts are read by operators in the Prefect UI, so they speak the team's language
(QUNFLOW_LANG); the CLI passes the reader's. Codes (sources, tiers, outbox states, table
columns) are named through the catalog; the figures are the JSON's own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from crm.intake.reasons import ALREADY_QUARANTINED
from flows.i18n import normalize_lang, translator

if TYPE_CHECKING:
    from crm.outreach.campaign_spec import Campaign
    from crm.outreach.planning import PlanReport
    from crm.outreach.step_names import StepName
    from crm.reports.alerts import OpenAlerts

Translate = Callable[[str], str]


def team_words(lang: str) -> Translate:
    """The catalog in the team's language (``zh-CN`` or ``en``, as the settings hold it)."""
    return translator(normalize_lang(lang) or "zh")


def _word(t: Translate, prefix: str, code: object) -> str:
    key = f"{prefix}.{code}"
    found = t(key)
    return str(code) if found == key else found


def _counts(t: Translate, prefix: str, counts: Mapping[str, Any]) -> str:
    """``{"open": 3, "active": 1}`` → 普通 3、活跃 1 (an empty mapping: the catalog's "none")."""
    shown = [f"{_word(t, prefix, code)} {n}" for code, n in counts.items()]
    return t("cli.list_sep").join(shown) if shown else t("none")


def _moves(t: Translate, moves: Mapping[str, Any]) -> str:
    """``{"open->active": 2}`` → 普通 → 活跃 2."""
    shown = [
        " → ".join(_word(t, "tier", part) for part in move.split("->")) + f" {n}"
        for move, n in moves.items()
    ]
    return t("cli.list_sep").join(shown)


def headed(t: Translate, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An artifact table's rows with each column headed by its words (``col.KEY``)."""
    return [{_word(t, "col", k): v for k, v in row.items()} for row in rows]


def ingest_totals(ingested: dict[str, dict[str, Any]]) -> dict[str, int]:
    """This run's imports added up; ``already_quarantined`` rows were quarantined before."""
    names = ("read", "new_contacts", "matched", "skipped_duplicates", "quarantined", "events")
    totals = {name: sum(int(r.get(name, 0)) for r in ingested.values()) for name in names}
    totals["already_quarantined"] = sum(
        int(r.get("reasons", {}).get(ALREADY_QUARANTINED, 0)) for r in ingested.values()
    )
    return totals


def funnel_summary_lines(summary: dict[str, Any], t: Translate) -> list[str]:
    """The demo's summary as readable lines (CLI and markdown artifact), with the JSON's figures."""
    run = summary.get("this_run", {})
    totals = run.get("totals") or ingest_totals(run.get("ingested", {}))
    moves = {k: v for k, v in run.get("routed", {}).get("moves", {}).items() if v}
    followups = summary["followups"]
    return [
        t("run.demo.contacts").format(
            contacts=summary["contacts"],
            raw_records=summary["raw_records"],
            duplicates=summary["duplicate_records"],
            merged=summary["merged"],
            removed=summary["removed"],
        ),
        t("run.demo.by_source").format(items=_counts(t, "source", summary["by_source"])),
        t("run.demo.by_tier").format(items=_counts(t, "tier", summary["by_tier"])),
        t("run.demo.this_run").format(
            read=totals.get("read", 0),
            new_contacts=totals.get("new_contacts", 0),
            matched=totals.get("matched", 0),
            skipped=totals.get("skipped_duplicates", 0),
            new_quarantined=totals.get("quarantined", 0) - totals.get("already_quarantined", 0),
            already_quarantined=totals.get("already_quarantined", 0),
            moves=t("run.demo.moves").format(items=_moves(t, moves))
            if moves
            else t("run.demo.no_moves"),
        ),
        t("run.demo.followups").format(
            total=followups["planned_total"],
            states=_counts(t, "outbox", followups["by_state"]),
            planned=run.get("planned", {}).get("planned", 0),
            placed=run.get("routed", {}).get("placed", 0),
        ),
        t("run.demo.queue").format(
            queue=summary["prospect_queue"], quarantined=summary["quarantined"]
        ),
    ]


def route_summary_lines(result: dict[str, Any], title: str, t: Translate) -> list[str]:
    """A route or clean-out run as the markdown artifact's lines."""
    return [
        f"# {title}" + (t("run.route.dry_run") if result["dry_run"] else ""),
        "",
        "- " + t("run.route.rules").format(version=result["rules_version"]),
        "- " + t("run.route.scored").format(scored=result["scored"], batches=result["batches"]),
        "- " + t("run.route.moves").format(n=sum(result["moves"].values())),
        "- "
        + t("run.route.placed").format(
            placed=result["placed"], pending=_counts(t, "tier", result["pending_placement"])
        ),
        "- "
        + t("run.route.unreachable").format(
            unreachable=_counts(t, "tier", result["waiting_address"])
        ),
        "- " + t("run.route.queued").format(queued=result["queued"]),
    ]


def move_rows(t: Translate, moves: Mapping[str, int]) -> list[dict[str, Any]]:
    """The route artifact's table: one row per tier move, tiers in words."""
    rows = []
    for move, n in moves.items():
        before, _, after = move.partition("->")
        rows.append(
            {"from": _word(t, "tier", before), "to": _word(t, "tier", after), "contacts": n}
        )
    return headed(t, rows)


def ingest_summary_lines(
    rows: list[dict[str, Any]], reasons: Mapping[str, int], t: Translate
) -> list[str]:
    """An import's markdown artifact: one table row per file, then the first quarantine reasons."""
    from flows.i18n.quarantine_reasons import reason_count_text

    columns = ("file", "read", "new_contacts", "matched", "merged", "quarantined")
    lines = [
        f"# {t('run.ingest.title')}",
        "",
        "| " + " | ".join(_word(t, "col", c) for c in columns) + " |",
        "|" + "---|" * len(columns),
    ]
    lines += ["| " + " | ".join(str(r[c]) for c in columns) + " |" for r in rows]
    corrected = sum(r["corrected"] for r in rows)
    if corrected:
        lines += ["", t("run.ingest.corrected").format(n=corrected)]
    failed = [r["file"] for r in rows if r["error"]]
    if failed:
        lines += ["", t("run.ingest.failed").format(n=len(failed)), ""]
        lines += [f"- {name}" for name in failed[:20]]
    if reasons:
        lines += ["", f"## {t('run.ingest.reasons')}", ""]
        top = sorted(reasons.items(), key=lambda kv: -kv[1])[:10]
        lines += [f"- {n} × {reason_count_text(t, r)}" for r, n in top]
    return lines


def campaign_name(t: Translate, name: str) -> str:
    """A campaign by its catalog name (入群欢迎), else its own."""
    return _word(t, "campaign", name)


def counted(t: Translate, key: str) -> str:
    """A count's label: the column words (``col.sent``), ``confirmed_X`` as 已确认：X."""
    if key.startswith("confirmed_"):
        return t("run.dispatch.confirmed").format(
            what=_word(t, "col", key.removeprefix("confirmed_"))
        )
    return _word(t, "col", key)


def step_words(t: Translate, step: StepName) -> str:
    """A step as people read it: 第 1 步, its title if the campaign gives one, the occurrence."""
    if step.number is None:
        said = t("step.unknown").format(name=step.name)
    elif step.title:
        said = t("step.numbered_titled").format(n=step.number, title=step.title)
    else:
        said = t("step.numbered").format(n=step.number)
    return t("step.occurrence").format(step=said, day=step.occurrence) if step.occurrence else said


def plan_summary_lines(
    report: PlanReport, t: Translate, campaign: Campaign | None = None
) -> list[str]:
    """A campaign plan's markdown artifact: audience, planned, not planned and why, per step."""
    title = t("run.plan.title").format(name=campaign_name(t, report.campaign))
    from crm.outreach.step_names import step_name

    excluded = _counts(t, "exclusion", report.excluded)
    per_step = [f"{step_words(t, step_name(campaign, k))} {n}" for k, n in report.by_step.items()]
    return [
        f"# {title}" + (t("run.route.dry_run") if report.dry_run else ""),
        "",
        "- " + t("run.plan.audience").format(n=report.audience),
        "- " + t("run.plan.planned").format(n=report.planned, already=report.already_planned),
        "- " + t("run.plan.excluded").format(items=excluded),
        "- " + t("run.plan.by_step").format(items=t("cli.list_sep").join(per_step) or t("none")),
    ]


def alert_words(
    t: Translate, kind: str, subject: str, details: Mapping[str, Any], message: str
) -> str:
    """An open alert in words, from its kind and details; an unknown kind keeps its message."""
    key = f"cli.alert.{kind}"
    if kind == "no_group_room":
        params = {"waiting": details.get("waiting", "?"), "tier": _word(t, "tier", subject)}
    elif kind == "quarantine_growth":
        params = {"recent": details.get("recent", "?"), "threshold": details.get("threshold", "?")}
    elif kind == "flow_failed":
        params = {"flow": subject, "message": message.removeprefix(f"flow {subject} failed: ")}
    elif kind == "wecom_churn":
        params = {"contact": details.get("contact_id", "?"), "staff": details.get("staff", "?")}
    else:
        return message
    return t(key).format(**params)


def alerts_markdown(alerts: OpenAlerts, t: Translate) -> str:
    """The alerts artifact's text: every open alert listed, or how many more are open."""
    lines = [f"# {t('run.alerts.title')}", ""]
    lines += [
        f"- **{_word(t, 'alert', a.kind)}** ({a.subject}): "
        + alert_words(t, a.kind, a.subject, a.details, a.message)
        for a in alerts.items
    ] or [t("none")]
    if alerts.total > len(alerts.items):
        lines.append("- " + t("run.alerts.more").format(n=alerts.total - len(alerts.items)))
    return "\n".join(lines)
