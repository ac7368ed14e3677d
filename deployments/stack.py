"""`make serve`: a local Prefect server, the deployments and the web app, stopped together.

    python -m deployments.stack [--prefect-port 4200] [--web-port 8000]

Start order: Prefect server (wait for /api/health) → web app → `serve` of every deployment.
Stop order on Ctrl-C / SIGTERM is the reverse, because `serve` talks to the server while it
pauses its deployments and hangs if the server is already gone.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from crm.core.settings import get_settings


def _wait_http(url: str, proc: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args!r} exited with {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - local URL
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"{url} did not answer within {seconds:.0f} s")


def prefect_env(data_dir: Path, port: int) -> dict[str, str]:
    """Environment for every process of the stack: Prefect state under the data directory."""
    env = dict(os.environ)
    env.setdefault("PREFECT_HOME", str(data_dir / "prefect"))
    env["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env.setdefault("PREFECT_UI_API_URL", env["PREFECT_API_URL"])
    return env


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--prefect-port", type=int, default=4200)
    parser.add_argument("--web-port", type=int, default=8000)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()

    settings = get_settings()
    note = settings.loopback_note()
    if note:
        print(note, file=sys.stderr, flush=True)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    env = prefect_env(settings.data_dir, args.prefect_port)
    bin_dir = Path(sys.executable).parent
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    stopping: list[bool] = []

    def stop(*_: object) -> None:
        if stopping:  # a second Ctrl-C while stopping: keep stopping in order
            return
        stopping.append(True)
        for name, proc in reversed(procs):
            if proc.poll() is None:
                print(f"stopping {name} …", flush=True)
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        raise SystemExit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    subprocess.run([str(bin_dir / "qunflow"), "db", "upgrade"], env=env, check=True)
    server = subprocess.Popen(
        [
            str(bin_dir / "prefect"),
            "server",
            "start",
            "--host",
            args.host,
            "--port",
            str(args.prefect_port),
        ],
        env=env,
    )
    procs.append(("prefect server", server))
    _wait_http(f"http://{args.host}:{args.prefect_port}/api/health", server, 120)

    web = subprocess.Popen(
        [str(bin_dir / "qunflow"), "web", "--host", args.host, "--port", str(args.web_port)],
        env=env,
    )
    procs.append(("web app", web))
    _wait_http(f"http://{args.host}:{args.web_port}/healthz", web, 60)

    served = subprocess.Popen([sys.executable, "-m", "deployments.serve"], env=env)
    procs.append(("deployments", served))

    print(
        "\nQunflow is up:\n"
        f"  Prefect UI      http://{args.host}:{args.prefect_port}  (deployments, runs)\n"
        f"  sales workspace http://{args.host}:{args.web_port}\n"
        f"  Prefect state   {env['PREFECT_HOME']}\n"
        "Ctrl-C stops everything.\n",
        flush=True,
    )
    while True:
        for name, proc in procs:
            if proc.poll() is not None:
                print(f"{name} exited with {proc.returncode}; stopping the rest", flush=True)
                stop()
        time.sleep(1)


if __name__ == "__main__":
    main()
