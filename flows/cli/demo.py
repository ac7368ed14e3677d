"""`qunflow demo`: the main job on the embedded default, end to end through Prefect."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from crm.core.errors import QunflowError
from flows.cli.common import database, lang, print_json, settings


def demo(
    as_json: bool = typer.Option(
        False, "--json", help="Print the funnel summary as one JSON object."
    ),
) -> None:
    """Migrate, load the bundled sample (three sources), and run the funnel flow once.

    Runs Prefect in local mode when no PREFECT_API_URL is set, so no server is needed.
    Running it again changes nothing: every stage is idempotent.
    """
    eng = database()  # migrated by the demo itself
    _quiet_local_prefect()
    from flows.funnel import run_demo  # Prefect imports are slow: only here
    from flows.summaries import funnel_summary_lines, team_words

    try:
        summary = run_demo(eng, settings())
    except RuntimeError as exc:
        # Prefect's temporary API server did not come up in time (a busy or slow machine).
        if "Prefect API server" not in str(exc):
            raise
        wait = os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS")
        raise QunflowError("error.cli.prefect_slow", detail=str(exc), wait=wait) from exc
    if as_json:
        print_json(summary)
    else:
        for line in funnel_summary_lines(summary, team_words(lang())):
            typer.echo(line)


def _quiet_local_prefect() -> None:
    """Local mode defaults: no telemetry, a patient start of the temporary API server."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_HOME", str(settings().data_dir / "prefect"))
    # Prefect creates its home without parents when imported: make it first on a new machine.
    Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)
