"""`qunflow alerts …`: the open alerts operators must act on, and acknowledging them."""

from __future__ import annotations

import getpass

import typer

from crm.reports.alerts import acknowledge_alerts, open_alerts
from flows.cli.common import engine, headings, print_json, print_table, t, when, word
from flows.cli.words import alert_text

app = typer.Typer(help="Open alerts (no group room, quarantine growth, failed flow runs).")


@app.command("list")
def list_(
    limit: int = typer.Option(50, min=1, max=1000, help="How many to show, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """The open alerts, newest first: the same ones the qunflow-alerts artifact shows."""
    alerts = open_alerts(engine(), limit=limit)
    if as_json:
        print_json(alerts)
        return
    rows = [
        {
            "id": a.id,
            "at": when(a.at),
            "alert_kind": word("alert", a.kind),
            "message": alert_text(a.kind, a.subject, a.details, a.message),
        }
        for a in alerts.items
    ]
    print_table(rows, headings("id", "at", "alert_kind", "message"))
    typer.echo(t("cli.alerts_open", n=len(alerts.items), total=alerts.total))


@app.command("ack")
def ack(
    ids: list[int] = typer.Argument(..., help="Alert ids (see `qunflow alerts list`)."),
    actor: str | None = typer.Option(None, help="Who, for the audit log (default: login name)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Acknowledge alerts someone has seen to; they leave the open list and the artifact."""
    done = acknowledge_alerts(engine(), ids, actor=actor or getpass.getuser())
    left = _republish()
    if as_json:
        print_json({"acknowledged": done, "open": left})
        return
    typer.echo(t("cli.alerts_acked", n=len(done), left=left))


def _republish() -> int:
    """Refresh the qunflow-alerts artifact where a Prefect server shows it; the open count."""
    from flows.trigger import prefect_api_configured

    if not prefect_api_configured():  # no UI to keep current: the next flow run publishes it
        return open_alerts(engine(), limit=1).total
    from flows.alerts import publish_alerts_flow  # Prefect is imported only here

    return publish_alerts_flow()
