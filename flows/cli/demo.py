"""`qunflow demo`: the main job on the embedded default, end to end through Prefect."""

from __future__ import annotations

import os

import typer

from flows.cli.common import engine, print_json, settings


def demo(
    as_json: bool = typer.Option(
        False, "--json", help="Print the funnel summary as one JSON object."
    ),
) -> None:
    """Migrate, load the bundled sample (three sources), and run the funnel flow once.

    Runs Prefect in local mode when no PREFECT_API_URL is set, so no server is needed.
    Running it again changes nothing: every stage is idempotent.
    """
    eng = engine()
    _quiet_local_prefect()
    from flows.funnel import funnel_summary_lines, run_demo  # Prefect imports are slow: only here

    summary = run_demo(eng, settings())
    if as_json:
        print_json(summary)
    else:
        for line in funnel_summary_lines(summary):
            typer.echo(line)


def _quiet_local_prefect() -> None:
    """Local mode defaults: no telemetry, a patient start of the temporary API server."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_HOME", str(settings().data_dir / "prefect"))
