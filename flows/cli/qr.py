"""`qunflow qr …`: sign-up QR codes for promoters (地推) and members' invite codes (裂变)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from crm.intake.qr import create_qr, list_qr, parse_duration
from flows.cli.common import engine, print_json, print_table, settings, warn_if_loopback

app = typer.Typer(help="Create and list sign-up QR codes.", no_args_is_help=True)


@app.command()
def create(
    promoter: str = typer.Option(..., help="Who shows the code (credited with sign-ups)."),
    location: str = typer.Option(..., help="Where the code is shown (event, street stand)."),
    campaign: str = typer.Option(..., help="Campaign; picks the screening questions."),
    expires: str = typer.Option("7d", help="Validity: 7d, 12h or 30m."),
    referrer: int | None = typer.Option(
        None, "--referrer", help="Contact id of the member whose invite code this is (裂变)."
    ),
    out: Path = typer.Option(..., "--out", help="Directory for the PNG and SVG files."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Create a signed sign-up code and write it as PNG and SVG."""
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
    typer.echo(f"code {result.code_id}, valid until {result.expires_at:%Y-%m-%d %H:%M} UTC")
    typer.echo(result.url)
    typer.echo(f"{result.png}\n{result.svg}")


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print one JSON array.")) -> None:
    """List sign-up codes, newest first."""
    rows = list_qr(engine())
    if as_json:
        print_json(rows)
        return
    print_table(
        [dataclasses.asdict(r) for r in rows],
        ["code_id", "promoter", "location", "campaign", "referrer_contact_id", "expires_at"],
    )
