"""Ingestion flows: import an export file, or every new file dropped in the inbox folder.

The flows call the same services as the CLI (crm.intake.pipeline); a task imports a whole file
in batches of thousands of rows, never a task per row.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import Field

from flows.alerts import check_after_ingest, on_failure
from flows.runtime import engine_for, settings
from flows.summaries import headed, ingest_summary_lines, team_words

FileKind = Literal["peer-group", "self-media", "events", "qr-signups"]
_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".jsonl", ".ndjson", ".json")


def _url(database_url: str | None) -> str:
    return database_url or settings().sqlalchemy_url


def _retry_unless_bad_input(task: Any, task_run: Any, state: Any) -> bool:
    """Retry what may pass next time (a busy database), not a file that is not acceptable."""
    from crm.core.errors import InputError

    try:
        state.result()
    except InputError:
        return False
    except Exception:
        return True
    return True


@task(
    name="ingest-file",
    retries=2,
    retry_delay_seconds=[2, 10],
    retry_condition_fn=_retry_unless_bad_input,
)
def ingest_file_task(
    database_url: str,
    kind: str,
    path: str,
    group: str | None = None,
    account: str | None = None,
    platform: str | None = None,
) -> dict[str, Any]:
    """Import one file (all its batches); InputError is not retried."""
    from crm.intake.pipeline import ingest_path

    report = ingest_path(
        engine_for(database_url), kind, Path(path), group=group, account=account, platform=platform
    )
    return report.as_dict()


@task(name="resolve-pending", retries=2, retry_delay_seconds=[2, 10])
def resolve_pending_task(database_url: str) -> dict[str, Any]:
    """Resolve raw records left pending (web sign-ups, webhook leads, replays)."""
    from crm.intake.pending import process_pending

    return process_pending(engine_for(database_url)).as_dict()


@task(name="publish-ingest-report")
def publish(results: dict[str, dict[str, Any]], key: str) -> None:
    """A table (one row per file) and a markdown summary with the first quarantine reasons."""
    rows = []
    for name, rep in results.items():
        rows.append(
            {
                "file": name,
                "read": rep.get("read", 0),
                "new_contacts": rep.get("new_contacts", 0),
                "matched": rep.get("matched", 0),
                "merged": rep.get("merged", 0),
                "quarantined": rep.get("quarantined", 0),
                "corrected": rep.get("corrected", 0),
                # the reason in the team's words (as in failed/*.reason.txt); the log keeps English
                "error": rep.get("error_said") or rep.get("error", ""),
            }
        )
    t = team_words(settings().lang)
    create_table_artifact(table=headed(t, rows), key=key, description=t("run.ingest.description"))
    reasons: dict[str, int] = {}
    for rep in results.values():
        for reason, n in rep.get("reasons", {}).items():
            reasons[reason] = reasons.get(reason, 0) + n
        said = rep.get("error_said") or rep.get("error")
        if said:
            reasons[said] = reasons.get(said, 0) + 1
    lines = ingest_summary_lines(rows, reasons, t)
    create_markdown_artifact(markdown="\n".join(lines), key=f"{key}-summary")


@flow(name="ingest-file", on_failure=[on_failure], on_crashed=[on_failure])
def ingest_file_flow(
    kind: FileKind = Field(description="What the file holds."),
    path: str = Field(description="Path of the export file (CSV, XLSX or JSONL)."),
    group: str | None = Field(
        None, description="Peer group name (default: a group column or the file name)."
    ),
    account: str | None = Field(None, description="Operator account that harvested a member list."),
    platform: str | None = Field(
        None, description="Self-media platform if the file has no platform column."
    ),
    database_url: str | None = Field(
        None, description="CRM database URL (default: QUNFLOW_DATABASE_URL)."
    ),
) -> dict[str, Any]:
    """Import one export file and publish its counts."""
    url = _url(database_url)
    report = ingest_file_task(url, kind, path, group, account, platform)
    publish({Path(path).name: report}, "ingest-file")
    check_after_ingest(url)
    return report


def _import_one(url: str, kind: str, path: Path, logger: Any) -> dict[str, Any]:
    """Import one inbox file and move it to done/ or, with the reason beside it, to failed/.

    The log and the run's result say why in English; the reason file, which the team opens
    beside the file, says it in the team's language.
    """
    from sqlalchemy.exc import InterfaceError, OperationalError

    from crm.core.errors import InputError
    from flows.i18n import error_text, normalize_lang

    lang = normalize_lang(settings().lang) or "zh"
    try:
        report = ingest_file_task(url, kind, str(path))
    except (OperationalError, InterfaceError):
        raise  # the database, not the file: leave it for the next run
    except InputError as exc:
        reason, said = str(exc), error_text(exc, lang)
        logger.warning("refused %s: %s", path.name, reason)
    except Exception as exc:
        fault = f"{type(exc).__name__}: {exc}"
        reason = f"import failed ({fault})"[:2000]
        said = team_words(lang)("ingest.import_failed").format(fault=fault)[:2000]
        logger.exception("could not import %s", path.name)
    else:
        _move(path, path.parent / "done")
        return report
    failed = path.parent / "failed"
    _move(path, failed)
    (failed / f"{path.name}.reason.txt").write_text(said + "\n", encoding="utf-8")
    return {"error": reason, "error_said": said}


def _move(path: Path, target: Path) -> None:
    target.mkdir(exist_ok=True)
    shutil.move(str(path), target / path.name)


@flow(name="ingest-folder", on_failure=[on_failure], on_crashed=[on_failure])
def ingest_folder_flow(
    folder: str | None = Field(
        None, description="Inbox folder with one subfolder per kind (default: data_dir/inbox)."
    ),
    database_url: str | None = Field(
        None, description="CRM database URL (default: QUNFLOW_DATABASE_URL)."
    ),
) -> dict[str, dict[str, Any]]:
    """Import files dropped in inbox/<kind>/ (peer-group, self-media, events, qr-signups).

    A file imported moves to inbox/<kind>/done/; a file that cannot be imported moves to
    inbox/<kind>/failed/ with <name>.reason.txt saying why, and the next files go on. Only a
    database that cannot be reached stops the run (the file stays for the next one). Pending
    raw records are resolved.
    """
    logger = get_run_logger()
    url = _url(database_url)
    inbox = Path(folder) if folder else settings().data_dir / "inbox"
    results: dict[str, dict[str, Any]] = {}
    for kind in ("peer-group", "self-media", "qr-signups", "events"):
        directory = inbox / kind
        if not directory.is_dir():
            continue
        for path in sorted(p for p in directory.iterdir() if p.suffix.lower() in _SUFFIXES):
            if not path.is_file():
                continue
            results[f"{kind}/{path.name}"] = _import_one(url, kind, path, logger)
    results["pending"] = resolve_pending_task(url)
    publish(results, "ingest-folder")
    check_after_ingest(url)
    return results
