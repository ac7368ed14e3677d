"""Operating from Prefect: a real server, the served deployments and a process work pool.

Starts `prefect server start` on a free port, then
1. one machine: `python -m deployments.serve`, triggers the route deployment through the
   API and waits for the run to complete with its artifact;
2. scale-out: the same server's catalog deployed with `prefect deploy --all` from
   deployments/prefect.yaml onto a process work pool, run by `prefect worker start`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from deployments.serve import CATALOG, prefect_yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(predicate, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_prefect_yaml_is_generated_from_the_catalog():
    assert (ROOT / "deployments" / "prefect.yaml").read_text(encoding="utf-8") == prefect_yaml()
    names = [spec.name for spec in CATALOG]
    assert len(names) == len(set(names))


@pytest.fixture
def prefect_server(tmp_path):
    port = _free_port()
    env = dict(os.environ)
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
    )
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    api = env["PREFECT_API_URL"]
    try:
        _wait(lambda: httpx.get(f"{api}/health", timeout=3).status_code == 200, 120, "server")
        yield api, env
    finally:
        _stop(proc)
        log.close()


def _api(method: str, url: str, **kw: Any) -> httpx.Response:
    """One API call, retried while the server is busy, as Prefect's own client retries.

    Under load its SQLite store is locked: a request then waits up to the store's own
    10 s timeout and may still come back 503, so the client waits longer than that and
    also retries a request that timed out. Only idempotent calls go through here (the
    flow-run trigger carries an idempotency key)."""
    for pause in (0.5, 1, 2, 4, 8, 15):
        try:
            resp = httpx.request(method, url, timeout=30, **kw)
        except httpx.TransportError:
            time.sleep(pause)
            continue
        if resp.status_code not in (429, 502, 503):
            return resp
        time.sleep(pause)
    return httpx.request(method, url, timeout=30, **kw)


def _deployment_id(api: str, flow_name: str, name: str) -> str:
    resp = _api("GET", f"{api}/deployments/name/{flow_name}/{name}")
    resp.raise_for_status()
    return resp.json()["id"]


def _run_and_wait(api: str, deployment_id: str, parameters: dict, seconds: float) -> dict:
    run = _api(
        "POST",
        f"{api}/deployments/{deployment_id}/create_flow_run",
        # A retried trigger returns the run the first attempt created, never a second one.
        json={"parameters": parameters, "idempotency_key": str(uuid.uuid4())},
    )
    run.raise_for_status()
    run_id = run.json()["id"]

    def finished():
        state = _api("GET", f"{api}/flow_runs/{run_id}").json()["state"]
        return state if state and state["type"] in ("COMPLETED", "FAILED", "CRASHED") else None

    state = _wait(finished, seconds, "the flow run")
    assert state["type"] == "COMPLETED", state
    return {"id": run_id, "state": state}


def _artifact_keys(api: str, run_id: str) -> set[str]:
    resp = _api(
        "POST",
        f"{api}/artifacts/filter",
        json={"artifacts": {"flow_run_id": {"any_": [run_id]}}},
    )
    resp.raise_for_status()
    return {a["key"] for a in resp.json() if a.get("key")}


@pytest.mark.slow
def test_served_deployment_runs_from_the_api(prefect_server, tmp_path):
    """One machine: embedded SQLite and `serve` (the work pool test uses PostgreSQL)."""
    api, env = prefect_server
    db_url = f"sqlite:///{tmp_path / 'qunflow.db'}"
    env = dict(env, QUNFLOW_DATABASE_URL=db_url, QUNFLOW_DATA_DIR=str(tmp_path / "data"))
    subprocess.run(
        [str(BIN / "qunflow"), "db", "upgrade"], env=env, check=True, capture_output=True
    )
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115
    serve = subprocess.Popen(
        [sys.executable, "-m", "deployments.serve"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        dep = _wait(lambda: _deployment_id(api, "route", "every-15-minutes"), 120, "deployments")
        detail = _api("GET", f"{api}/deployments/{dep}").json()
        assert detail["schedules"], "the route deployment carries its schedule"
        cron = detail["schedules"][0]["schedule"]
        assert cron["cron"] == "*/15 * * * *" and cron["timezone"] == "Asia/Shanghai"
        assert "dry_run" in detail["parameter_openapi_schema"]["properties"]
        run = _run_and_wait(api, dep, {"dry_run": True}, 180)
        assert "route-moves" in _artifact_keys(api, run["id"])
        # The CLI trigger goes through the same served deployment as the UI's "Run" form.
        cli = subprocess.run(
            [str(BIN / "qunflow"), "campaign", "run", "prospect-nudge", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert cli.returncode == 0, cli.stderr
        triggered = json.loads(cli.stdout)
        assert triggered["via"] == "prefect" and triggered["state"] == "COMPLETED", triggered
        flow_run = _api("GET", f"{api}/flow_runs/{triggered['flow_run_id']}").json()
        assert flow_run["parameters"]["campaign"] == "prospect-nudge"
    finally:
        _stop(serve)
        log.close()


@pytest.mark.slow
def test_work_pool_path_on_postgres(tmp_path, pg_server):
    """The scale-out path: Prefect's own database on PostgreSQL, deploy --all, a process worker."""
    if pg_server is None:
        pytest.skip("PostgreSQL not available")
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from crm.core.db import make_engine

    admin = make_engine(pg_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text('CREATE DATABASE "prefect_e2e"'))
        conn.execute(text('CREATE DATABASE "qunflow_e2e"'))
    admin.dispose()
    server_url = make_url(pg_server)
    prefect_db = server_url.set(drivername="postgresql+asyncpg", database="prefect_e2e")
    crm_db = server_url.set(database="qunflow_e2e").render_as_string(hide_password=False)
    subprocess.run(
        [str(BIN / "qunflow"), "db", "upgrade"],
        check=True,
        capture_output=True,
        env=dict(os.environ, QUNFLOW_DATABASE_URL=crm_db),
    )

    port = _free_port()
    env = dict(os.environ)
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_API_DATABASE_CONNECTION_URL=prefect_db.render_as_string(hide_password=False),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
        QUNFLOW_DATABASE_URL=crm_db,
        QUNFLOW_DATA_DIR=str(tmp_path / "data"),
        QUNFLOW_HOME=str(ROOT),
    )
    api = env["PREFECT_API_URL"]
    procs = []
    logs = tmp_path / "logs"
    logs.mkdir()

    def start(name, args):
        out = open(logs / f"{name}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        procs.append(proc)
        return proc

    try:
        start(
            "server",
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        )
        _wait(lambda: httpx.get(f"{api}/health", timeout=3).status_code == 200, 120, "server")
        prefect = str(BIN / "prefect")
        subprocess.run(
            [prefect, "work-pool", "create", "qunflow", "--type", "process"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        deployed = subprocess.run(
            [
                prefect,
                "--no-prompt",
                "deploy",
                "--all",
                "--prefect-file",
                "deployments/prefect.yaml",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
        start("worker", [prefect, "worker", "start", "--pool", "qunflow"])
        dep = _deployment_id(api, "route", "every-15-minutes")
        _run_and_wait(api, dep, {"dry_run": True}, 240)
    finally:
        for proc in reversed(procs):
            _stop(proc)
