"""`qunflow qr …`: sign-up QR codes for promoters (地推) and members' invite codes (裂变)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from crm.core.errors import InputError
from crm.intake.qr import create_qr, list_qr, parse_duration
from flows.cli import qr_wecom
from flows.cli.common import (
    engine,
    print_json,
    print_table,
    settings,
    t,
    warn_if_loopback,
    when,
)

app = typer.Typer(help="Create and list sign-up QR codes.", no_args_is_help=True)


@app.command()
def create(
    promoter: str | None = typer.Option(None, help="Who shows the code (credited with sign-ups)."),
    location: str | None = typer.Option(
        None, help="Where the code is shown (event, street stand)."
    ),
    campaign: str | None = typer.Option(None, help="Campaign; picks the screening questions."),
    expires: str = typer.Option("7d", help="Validity: 7d, 12h or 30m."),
    referrer: int | None = typer.Option(
        None, "--referrer", help="Contact id of the member whose invite code this is (裂变)."
    ),
    out: Path | None = typer.Option(None, "--out", help="Directory for the PNG and SVG files."),
    wecom: bool = typer.Option(
        False, "--wecom", help="A WeCom channel live code (add_contact_way) instead."
    ),
    staff: list[str] = typer.Option(
        [], "--staff", help="WeCom userid the code adds (repeat for a multi-staff code)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Create a signed sign-up code and write it as PNG and SVG, or (--wecom) a WeCom
    "contact me" code whose state names the promoter, location and campaign."""
    if wecom:
        qr_wecom.create(staff, promoter, location, campaign, as_json)
        return
    for name, value in (
        ("--promoter", promoter),
        ("--location", location),
        ("--campaign", campaign),
        ("--out", out),
    ):
        if not value:
            raise InputError("error.cli.qr_option_missing", name=name)
    assert promoter and location and campaign and out
    duration = parse_duration(expires)
    cfg = settings()
    result = create_qr(
        engine(),
        promoter=promoter,
        location=location,
        campaign=campaign,
        expires=duration,
        out_dir=out,
        referrer_contact_id=referrer,
        base_url=cfg.public_base_url,
        secret_key=cfg.secret_key,
    )
    warn_if_loopback(cfg)  # after the code is made: a refusal stays one line
    if as_json:
        print_json(result.as_dict())
        return
    typer.echo(t("cli.qr_made", code=result.code_id, until=when(result.expires_at)))
    typer.echo(result.url)
    typer.echo(f"{result.png}\n{result.svg}")


@app.command("list")
def list_(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON array."),
    wecom: bool = typer.Option(False, "--wecom", help="List WeCom channel live codes instead."),
) -> None:
    """List sign-up codes (or --wecom channel live codes), newest first."""
    if wecom:
        qr_wecom.list_(as_json)
        return
    rows = list_qr(engine())
    if as_json:
        print_json(rows)
        return
    print_table(
        [dataclasses.asdict(r) for r in rows],
        ["code_id", "promoter", "location", "campaign", "referrer_contact_id", "expires_at"],
    )


@app.command()
def update(
    state: str = typer.Argument(..., help="State of the WeCom channel live code."),
    staff: list[str] = typer.Option(..., "--staff", help="WeCom userid(s) the code adds now."),
    wecom: bool = typer.Option(True, "--wecom", help="Only WeCom codes can be updated."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Change the staff of a WeCom channel live code (update_contact_way)."""
    qr_wecom.update(state, staff, as_json)


@app.command()
def delete(
    state: str = typer.Argument(..., help="State of the WeCom channel live code."),
    wecom: bool = typer.Option(True, "--wecom", help="Only WeCom codes can be deleted."),
) -> None:
    """Delete a WeCom channel live code (del_contact_way); its scans stay attributed."""
    qr_wecom.delete(state)
