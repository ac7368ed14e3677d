"""`qunflow web`: serve the sales workspace, QR sign-up pages and the lead webhook."""

from __future__ import annotations

import typer

from flows.cli.common import engine, settings, warn_if_loopback


def web(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, min=1, max=65535, help="Port to listen on."),
) -> None:
    """Serve the web app with uvicorn until interrupted."""
    import uvicorn

    from flows.web.app import create_app

    warn_if_loopback(settings())
    app = create_app(settings(), engine())
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False)
