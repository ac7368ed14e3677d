"""The database settings read alone, as the settings model reads them, or left to it."""

from __future__ import annotations

import pytest

from crm.core.database_url import database_url_from_environment
from crm.core.errors import ConfigError
from crm.core.settings import get_settings


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"QUNFLOW_DATABASE_URL": "postgresql://u:p@db.example/crm"},
        {"QUNFLOW_DATABASE_URL": "sqlite:////srv/crm.db", "QUNFLOW_DATA_DIR": "/srv/q"},
        {"QUNFLOW_DATABASE_URL": ""},
    ],
)
def test_a_plain_environment_gives_the_url_the_settings_give(
    environ, tmp_path, monkeypatch
) -> None:
    environ = {"QUNFLOW_DATA_DIR": str(tmp_path / "data"), **environ}
    for name in ("QUNFLOW_DATA_DIR", "QUNFLOW_DATABASE_URL", "QUNFLOW_LANG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    found = database_url_from_environment(environ, tmp_path / ".env")
    assert found == get_settings().sqlalchemy_url


@pytest.mark.parametrize(
    "environ",
    [
        {"QUNFLOW_TIMEZONE": "Mars/Olympus"},  # the model refuses it: every command fails
        {"QUNFLOW_LANG": "en"},
        {"qunflow_database_url": "sqlite:///a.db", "QUNFLOW_DATABASE_URL": "sqlite:///b.db"},
    ],
)
def test_anything_more_is_left_to_the_settings_model(environ, tmp_path) -> None:
    assert database_url_from_environment(environ, tmp_path / ".env") is None


def test_a_dotenv_file_is_left_to_the_settings_model(tmp_path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("QUNFLOW_DATABASE_URL=sqlite:///other.db\n", "utf-8")
    assert database_url_from_environment({}, env_file) is None


@pytest.mark.parametrize(
    ("environ", "needle"),
    [
        ({"QUNFLOW_DATABASE_URL": "mysql://x/y"}, "QUNFLOW_DATABASE_URL"),
        ({"QUNFLOW_DATABASE_URL": "nonsense"}, "QUNFLOW_DATABASE_URL"),
        ({"QUNFLOW_DATA_DIR": " "}, "QUNFLOW_DATA_DIR"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(environ, needle, tmp_path) -> None:
    with pytest.raises(ConfigError, match=needle):
        database_url_from_environment(environ, tmp_path / ".env")
    with pytest.raises(ConfigError, match=needle) as by_model:
        get_settings(**{k.removeprefix("QUNFLOW_").lower(): v for k, v in environ.items()})
    with pytest.raises(ConfigError) as alone:
        database_url_from_environment(environ, tmp_path / ".env")
    assert str(alone.value) == str(by_model.value)
