"""`qunflow ingest …` and `qunflow quarantine …`: import source files, look at rejected rows."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from crm.contacts.normalize import clean_text
from crm.core.db import transaction
from crm.core.errors import InputError
from crm.intake.records import IngestReport
from flows.cli.common import coded, engine, headings, print_json, print_table, t

app = typer.Typer(help="Import contacts and activity from source exports.", no_args_is_help=True)
quarantine_app = typer.Typer(help="Rows that could not be imported, and why.", no_args_is_help=True)

_JSON = typer.Option(False, "--json", help="Print one JSON object with the counts.")


def print_report(report: IngestReport, as_json: bool) -> None:
    data = report.as_dict()
    if as_json:
        print_json(data)
        return
    from flows.cli.words import reason_count

    typer.echo(t("cli.ingest_counts", **data))
    if data["skipped_duplicates"]:
        typer.echo(t("cli.ingest_duplicates", n=data["skipped_duplicates"]))
    if data["corrected"]:
        typer.echo(t("cli.ingest_corrected", n=data["corrected"]))
    for reason, count in list(data["reasons"].items())[:5]:
        typer.echo(t("cli.ingest_reason", n=count, reason=reason_count(reason)))


def _run(
    kind: str,
    path: Path,
    group: str | None = None,
    account: str | None = None,
    platform: str | None = None,
) -> IngestReport:
    from crm.intake.pipeline import ingest_path

    return ingest_path(engine(), kind, path, group=group, account=account, platform=platform)


@app.command("peer-group")
def peer_group(
    path: Path = typer.Argument(..., help="Member-list export: CSV (UTF-8/BOM/GBK), XLSX, JSONL."),
    group: str | None = typer.Option(
        None, help="Group name (default: a 群名称 column or the file name)."
    ),
    account: str | None = typer.Option(None, help="Operator account that harvested the list."),
    peer: str | None = typer.Option(
        None, "--peer", help="The peer group (qunflow peers) it was harvested in: links the join."
    ),
    as_json: bool = _JSON,
) -> None:
    """Import a peer-group (同行群) member list."""
    if peer is not None:
        from crm.intake.peer_link import ingest_peer_list

        if group or account:
            raise InputError("error.cli.peer_with_group")
        print_report(ingest_peer_list(engine(), path, peer), as_json)
        return
    print_report(_run("peer-group", path, group=group, account=account), as_json)


@app.command("self-media")
def self_media(
    path: Path = typer.Argument(..., help="Lead export: CSV, XLSX or JSONL."),
    platform: str | None = typer.Option(
        None, help="Platform (xiaohongshu, douyin, …) if no 平台 column."
    ),
    as_json: bool = _JSON,
) -> None:
    """Import self-media (自媒体) leads; each post becomes its own source."""
    print_report(_run("self-media", path, platform=platform), as_json)


@app.command("events")
def events(
    path: Path = typer.Argument(
        ..., help="Activity export: CSV, XLSX or JSONL with an event column."
    ),
    as_json: bool = _JSON,
) -> None:
    """Import activity events: messages, shares, referrals, attendance, purchases, opt-outs …"""
    print_report(_run("events", path), as_json)


@app.command("qr-signups-file")
def qr_signups_file(
    path: Path = typer.Argument(..., help="Sign-ups with promoter, location and campaign columns."),
    as_json: bool = _JSON,
) -> None:
    """Import in-person QR sign-ups (地推扫码) from an export file."""
    print_report(_run("qr-signups", path), as_json)


@app.command("pending")
def pending(as_json: bool = _JSON) -> None:
    """Resolve raw records still pending (web sign-ups, webhook leads, replays)."""
    from crm.intake.pending import process_pending

    print_report(process_pending(engine()), as_json)


@quarantine_app.command("list")
def quarantine_list(
    limit: int = typer.Option(50, min=1, max=10_000, help="How many to show, newest first."),
    include_resolved: bool = typer.Option(
        False, "--all", help="Also rows already corrected, superseded or dismissed."
    ),
    origin: str | None = typer.Option(None, help="Only rows from origins containing this text."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """List quarantined rows still open: where they came from, the row, and why.

    Import the row again with the mistake fixed and its entry closes as corrected; rows
    nobody will fix are closed with `qunflow quarantine dismiss`.
    """
    from crm.intake.quarantine import list_quarantine

    with transaction(engine()) as session:
        rows = list_quarantine(
            session, limit=limit, include_resolved=include_resolved, origin=origin
        )
    if as_json:
        print_json({"items": rows, "count": len(rows)})
        return
    from flows.cli.words import quarantine_reason

    columns = ["id", "origin", "row", "reason", "raw"]
    if include_resolved:
        columns.append("resolution")
    shown = [
        # Raw rows are kept as they came: their control characters are not for a terminal.
        {
            **dataclasses.asdict(r),
            "origin": Path(r.origin).name,
            "reason": quarantine_reason(r.reason_key, r.reason_params, r.reason),
            "raw": clean_text(r.raw[:40]),
        }
        for r in rows
    ]
    print_table(coded(shown, resolution="resolution"), headings(*columns))


@quarantine_app.command("dismiss")
def quarantine_dismiss(
    ids: list[int] | None = typer.Argument(None, help="Quarantined row ids (see `list`)."),
    origin: str | None = typer.Option(
        None, help="Every open row from origins containing this text."
    ),
    note: str = typer.Option(..., help="Why nobody will correct them (kept with the rows)."),
    actor: str | None = typer.Option(None, help="Who, for the audit log (default: login name)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Close quarantined rows nobody will correct; they stay listed under `list --all`."""
    import getpass

    from crm.intake.quarantine import dismiss

    with transaction(engine()) as session:
        closed = dismiss(
            session, ids or [], origin=origin, actor=actor or getpass.getuser(), note=note
        )
    if as_json:
        print_json({"dismissed": closed.count})
    else:
        typer.echo(t("cli.dismissed", n=closed.count))
