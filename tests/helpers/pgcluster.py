"""A throwaway local PostgreSQL cluster for tests and benchmarks.

Uses the server binaries on the machine (initdb, postgres). As root, the cluster runs as the
unprivileged ``postgres`` user, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

SEARCH = ["/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"]


def find_binary(name: str) -> str | None:
    for folder in SEARCH:
        candidate = Path(folder) / name
        if candidate.exists():
            return str(candidate)
    return shutil.which(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_user() -> tuple[list[str], int | None, int | None]:
    if os.geteuid() != 0:
        return [], None, None
    pw = pwd.getpwnam("postgres")
    return ["runuser", "-u", "postgres", "--"], pw.pw_uid, pw.pw_gid


@contextlib.contextmanager
def local_cluster() -> Iterator[str]:
    """Start a fresh cluster on a free port; yield a SQLAlchemy URL to its ``postgres`` db."""
    initdb, postgres = find_binary("initdb"), find_binary("postgres")
    if not initdb or not postgres:
        raise RuntimeError("PostgreSQL server binaries (initdb, postgres) not found")
    prefix, uid, gid = _as_user()
    root = Path(tempfile.mkdtemp(prefix="qunflow-pg-"))
    data = root / "data"
    if uid is not None and gid is not None:
        os.chown(root, uid, gid)
    port = _free_port()
    subprocess.run(
        [
            *prefix,
            initdb,
            "-D",
            str(data),
            "-U",
            "qunflow",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    log = root / "server.log"
    proc = subprocess.Popen(
        [
            *prefix,
            postgres,
            "-D",
            str(data),
            "-p",
            str(port),
            "-k",
            str(root),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=200",
            "-c",
            "shared_buffers=256MB",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(log, "wb"),  # noqa: SIM115
    )
    url = f"postgresql+psycopg://qunflow@127.0.0.1:{port}/postgres"
    try:
        _wait_ready(port, proc, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(root, ignore_errors=True)


def _wait_ready(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    import psycopg

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"postgres exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            with psycopg.connect(f"host=127.0.0.1 port={port} user=qunflow dbname=postgres"):
                return
        except psycopg.OperationalError:
            time.sleep(0.2)
    raise RuntimeError("postgres did not become ready within 60 s")


if __name__ == "__main__":
    # Manual use: python -m tests.helpers.pgcluster  → prints a URL and keeps the server up.
    with local_cluster() as u:
        print(u, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
