"""Signing secrets: set in the environment, or generated once per install into the data directory.

Qunflow has no built-in secret. A key that is not set is created at random on first use and
kept in ``<data dir>/secrets.json`` (mode 0600), so every install signs with its own keys and a
restart keeps sessions, QR codes and unsubscribe links valid. The defaults earlier versions
shipped are public, so they are refused wherever they appear.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from crm.core.errors import BadValue, ConfigError

KEYS_FILE = "secrets.json"
GENERATED = ("secret_key", "webhook_secret")
MIN_LENGTH = 16
# Shipped as defaults once: anyone could forge sessions, QR and unsubscribe tokens with them.
PUBLISHED = frozenset({"change-me-in-production", "change-me-webhook"})


def check_secret(value: str) -> str:
    """Refuse a published or short secret (a ValueError, for the settings validator)."""
    if value in PUBLISHED:
        raise BadValue("error.core.secret_published")
    if len(value) < MIN_LENGTH:
        raise BadValue("error.core.secret_short", length=MIN_LENGTH)
    return value


def stored_secret(data_dir: Path, name: str) -> str:
    """The install's own value for ``name``, generated into ``data_dir`` the first time."""
    path = data_dir / KEYS_FILE
    known = _read(path)
    if name not in known:
        with _locked(data_dir):
            known = _read(path)  # another process may have written it meanwhile
            if name not in known:
                for missing in (*GENERATED, name):
                    known.setdefault(missing, secrets.token_urlsafe(32))
                _write(path, known)
    value = known[name]
    try:
        return check_secret(value)
    except BadValue as exc:
        problem = exc.problem
        raise ConfigError(problem.key, **problem.params, setting=f"{path}: {name}") from exc


def _read(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError("error.core.secrets_not_json", path=str(path), detail=str(exc)) from exc
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ConfigError("error.core.secrets_not_text", path=str(path))
    return data


def _write(path: Path, values: dict[str, str]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(values, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, path)  # readers see the old file or the whole new one


@contextlib.contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(data_dir / f".{KEYS_FILE}.lock", os.O_WRONLY | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ConfigError(
            "error.core.secrets_unwritable", path=str(data_dir), detail=str(exc)
        ) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # two first starts at once generate one set of keys
        yield
    finally:
        os.close(fd)
