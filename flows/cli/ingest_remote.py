"""`qunflow ingest qr-signups` and `qunflow ingest wecom-groups`: sources that push or serve us."""

from __future__ import annotations

import typer

from flows.cli.common import engine, settings
from flows.cli.ingest import print_report


def qr_signups(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Resolve new QR and invite sign-ups (and pushed leads/events) into contacts."""
    from crm.intake.inbox import ingest_qr_signups

    print_report(ingest_qr_signups(engine()), as_json)


def wecom_groups(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Pull the members of every WeCom customer group (QUNFLOW_WECOM_* settings)."""
    import httpx

    from crm.intake.wecom import client_from_settings, pull_wecom_groups

    with httpx.Client(timeout=30) as http:
        report = pull_wecom_groups(engine(), client_from_settings(settings(), http))
    print_report(report, as_json)
