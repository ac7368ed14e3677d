from __future__ import annotations

import pytest

from crm.core.errors import ConfigError
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
