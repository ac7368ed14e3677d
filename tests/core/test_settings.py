from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from crm.core.errors import ConfigError
from crm.core.keys import KEYS_FILE
from crm.core.settings import get_settings


def test_defaults_are_embedded_sqlite_in_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("QUNFLOW_DATA_DIR", str(tmp_path))
    s = get_settings()
    assert s.sqlalchemy_url == f"sqlite:///{tmp_path / 'qunflow.db'}"
    assert s.timezone == "Asia/Shanghai"


def test_postgres_url_always_uses_psycopg3(monkeypatch):
    monkeypatch.setenv("QUNFLOW_DATABASE_URL", "postgresql://u:p@db.example/crm")
    assert get_settings().sqlalchemy_url == "postgresql+psycopg://u:p@db.example/crm"


@pytest.mark.parametrize(
    ("var", "value", "needle"),
    [
        ("QUNFLOW_DATABASE_URL", "nonsense", "not a database URL"),
        ("QUNFLOW_DATABASE_URL", "mysql://x/y", "unsupported database"),
        ("QUNFLOW_TIMEZONE", "Mars/Olympus", "unknown time zone"),
        ("QUNFLOW_SMTP_PORT", "99999", "65535"),
    ],
)
def test_bad_value_names_the_variable(monkeypatch, var, value, needle):
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as info:
        get_settings()
    message = str(info.value)
    assert message.startswith(var + ":")
    assert needle in message
    assert "\n" not in message


def test_a_fresh_install_generates_its_own_secrets_once(tmp_path, monkeypatch):
    monkeypatch.setenv("QUNFLOW_DATA_DIR", str(tmp_path / "a"))
    first = get_settings()
    again = get_settings()
    key, hook = first.secret_key.get_secret_value(), first.webhook_secret.get_secret_value()
    assert len(key) >= 32 and len(hook) >= 32 and key != hook
    assert again.secret_key.get_secret_value() == key  # a restart keeps sessions valid
    assert again.webhook_secret.get_secret_value() == hook
    stored = tmp_path / "a" / KEYS_FILE
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert json.loads(stored.read_text()) == {"secret_key": key, "webhook_secret": hook}
    monkeypatch.setenv("QUNFLOW_DATA_DIR", str(tmp_path / "b"))
    assert get_settings().secret_key.get_secret_value() != key  # every install its own


def test_first_starts_at_once_agree_on_one_key(tmp_path):
    env = dict(os.environ, QUNFLOW_DATA_DIR=str(tmp_path))
    env.pop("QUNFLOW_SECRET_KEY", None)
    code = (
        "from crm.core.settings import get_settings;"
        " print(get_settings().secret_key.get_secret_value())"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    keys = {p.communicate(timeout=120)[0].strip() for p in procs}
    assert len(keys) == 1 and all(keys)


@pytest.mark.parametrize(
    ("var", "value", "needle"),
    [
        ("QUNFLOW_SECRET_KEY", "change-me-in-production", "published default"),
        ("QUNFLOW_WEBHOOK_SECRET", "change-me-webhook", "published default"),
        ("QUNFLOW_SECRET_KEY", "short", "too short"),
        ("QUNFLOW_DATA_DIR", "", "set but empty"),
    ],
)
def test_public_or_weak_secrets_and_an_empty_data_dir_are_refused(monkeypatch, var, value, needle):
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as info:
        get_settings()
    assert str(info.value).startswith(var + ":") and needle in str(info.value)


def test_a_published_key_in_the_secrets_file_is_refused(tmp_path, monkeypatch):
    (tmp_path / KEYS_FILE).write_text(json.dumps({"secret_key": "change-me-in-production"}))
    monkeypatch.setenv("QUNFLOW_DATA_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match="published default"):
        get_settings()


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8000", True),
        ("http://localhost:8000", True),
        ("http://[::1]:8000", True),
        ("https://crm.example.com", False),
        ("http://192.168.1.20:8000", False),
    ],
)
def test_a_loopback_public_url_is_noticed(url, loopback):
    s = get_settings(public_base_url=url)
    assert s.public_url_is_loopback is loopback
    assert (s.loopback_note() is not None) is loopback
