"""A 300 MB unsigned chunked body sent to the lead webhook of the real web app, and what the
server's memory does meanwhile.

    python -m bench.webhook_body [--rows N] [--db sqlite|postgres] [--mb 300]

The app runs under uvicorn in its own process (``flows.web.app:create_app``, settings from the
environment), on a fresh migrated database. Baseline, same run: a normal signed push of N leads;
the server's peak resident memory after it (VmHWM in /proc/PID/status). Then the body: sent
with ``Transfer-Encoding: chunked`` (so no length announces it) in 1 MiB chunks, until the
server answers or all of it is sent. Reported: the answer, how much was sent before it, the
time to the answer, the server's peak memory after it and ``ratio`` = that peak ÷ the
baseline peak (1.0: the body cost the server nothing it had not already used). The goal is a
single 413 while the server stays under 300 MB.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import database
from crm.intake.signatures import signed_headers

SECRET = "bench-webhook-secret-0123456789"
CHUNK = 1 << 20


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmHWM for process {pid}")


def _start_server(url: str, workdir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "QUNFLOW_DATABASE_URL": url,
        "QUNFLOW_DATA_DIR": str(workdir / "data"),
        "QUNFLOW_SECRET_KEY": "bench-secret-key-0123456789abcdef",
        "QUNFLOW_WEBHOOK_SECRET": SECRET,
    }
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "flows.web.app:create_app"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    server = subprocess.Popen(cmd, env=env, cwd=workdir)  # cwd: no stray .env is read
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the web app exited with {server.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.kill()
    raise RuntimeError("the web app did not start within 60 s")


def _signed_push(port: int, rows: int) -> tuple[int, float]:
    leads = [
        {"platform": "xiaohongshu", "post": f"note-{n % 20}", "handle": f"@fan{n}", "id": f"b{n}"}
        for n in range(rows)
    ]
    body = json.dumps(leads, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", **signed_headers(body, SECRET, int(time.time()))}
    start = time.perf_counter()
    answer = httpx.post(
        f"http://127.0.0.1:{port}/hooks/leads", content=body, headers=headers, timeout=60
    )
    elapsed = time.perf_counter() - start
    if answer.status_code != 202 or answer.json()["accepted"] != rows:
        raise RuntimeError(f"the baseline push was not taken: {answer.status_code} {answer.text}")
    return answer.status_code, elapsed


def _read_answer(sock: socket.socket) -> bytes:
    data = b""
    sock.settimeout(10)
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return data


def _huge_chunked_post(port: int, total_mb: int) -> dict[str, Any]:
    """Send ``total_mb`` MiB chunked and unsigned; stop at the server's answer."""
    chunk = f"{CHUNK:x}\r\n".encode() + b"x" * CHUNK + b"\r\n"
    head = (
        f"POST /hooks/leads HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    pieces = itertools.chain(itertools.repeat(chunk, total_mb), [b"0\r\n\r\n"])
    pending: memoryview | None = memoryview(next(pieces))
    sent, answer = 0, b""
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head)
        while True:
            want_write = [sock] if pending is not None else []
            readable, writable, _ = select.select([sock], want_write, [], 30)
            if readable:
                answer = _read_answer(sock)
                break
            if not writable or pending is None:
                break  # 30 s with neither an answer nor room to send
            try:
                n = sock.send(pending)
            except (BrokenPipeError, ConnectionResetError):
                answer = _read_answer(sock)
                break
            sent += n
            pending = pending[n:]
            if not pending:
                nxt = next(pieces, None)
                pending = memoryview(nxt) if nxt is not None else None
    elapsed = time.perf_counter() - start
    status_line, _, rest = answer.partition(b"\r\n")
    return {
        "answer": status_line.decode("latin-1") or "no answer",
        "answer_body": rest.partition(b"\r\n\r\n")[2].decode("utf-8", "replace"),
        "sent_mb": round(sent / CHUNK, 1),
        "seconds": round(elapsed, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200, help="leads in the baseline push")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--mb", type=int, default=300, help="size of the unsigned body, MiB")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="qunflow-bench-") as tmp:
        workdir = Path(tmp)
        with database(args.db, workdir) as eng:
            url = eng.url.render_as_string(hide_password=False)
            port = _free_port()
            server = _start_server(url, workdir, port)
            try:
                idle_mb = _peak_rss_mb(server.pid)
                _, push_seconds = _signed_push(port, args.rows)
                baseline_mb = _peak_rss_mb(server.pid)
                huge = _huge_chunked_post(port, args.mb)
                peak_mb = _peak_rss_mb(server.pid)
                alive = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code
            finally:
                server.terminate()
                server.wait(timeout=30)
    figures = {
        "bench": "webhook_body",
        "db": args.db,
        "body_mb": args.mb,
        "answer": huge["answer"],
        "answer_body": huge["answer_body"],
        "sent_before_answer_mb": huge["sent_mb"],
        "seconds_to_answer": huge["seconds"],
        "server_alive_after": alive == 200,
        "server_idle_rss_mb": idle_mb,
        "baseline_rows": args.rows,
        "baseline_push_seconds": round(push_seconds, 3),
        "baseline_peak_rss_mb": baseline_mb,
        "peak_rss_mb": peak_mb,
        "ratio": round(peak_mb / baseline_mb, 3),
    }
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
