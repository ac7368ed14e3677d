"""Qunflow's settings: environment variables prefixed ``QUNFLOW_`` and an optional ``.env``.

Read through :func:`get_settings` only, never at import time, and pass the result down.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from crm.core.database_url import (
    ENV_PREFIX,
    check_data_dir,
    check_database_url,
    default_data_dir,
    effective_database_url,
)
from crm.core.errors import BadValue, ConfigError
from crm.core.keys import KEYS_FILE, check_secret, stored_secret
from crm.core.language import lang_code, locale_lang


class Settings(BaseSettings):
    """Everything Qunflow reads from its environment, grouped by what it configures."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    # --- storage -------------------------------------------------------------
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Where Qunflow keeps its embedded database, QR codes and Prefect state.",
    )
    database_url: str | None = Field(
        default=None,
        description=(
            "SQLAlchemy URL of the CRM database. Default: a SQLite file in the data "
            "directory. Production: postgresql+psycopg://user:pass@host/db."
        ),
    )

    # --- time ----------------------------------------------------------------
    timezone: str = Field(
        default="Asia/Shanghai",
        description="IANA time zone for business days: caps, quiet hours, schedules.",
    )

    # --- language ------------------------------------------------------------
    lang: str = Field(
        default_factory=lambda: locale_lang(os.environ),
        description=(
            "Language of the command line's tables and lines: zh-CN or en. Default: the "
            "locale's language (LC_ALL, LC_MESSAGES, LANG) when it is Chinese or English, "
            "else zh-CN."
        ),
    )

    # --- rules and campaigns ---------------------------------------------------
    rules_path: Path | None = Field(
        default=None,
        description="Scoring and routing rules file (TOML). Default: the bundled rules.",
    )
    campaigns_path: Path | None = Field(
        default=None,
        description="Campaign definitions file (TOML). Default: the bundled campaigns.",
    )
    templates_dir: Path | None = Field(
        default=None,
        description="Operators' own message templates; searched before the bundled ones.",
    )

    # --- secrets -------------------------------------------------------------
    secret_key: SecretStr = Field(
        default_factory=lambda data: _generated(data, "secret_key"),
        description=(
            "Signs web sessions, QR sign-up tokens and unsubscribe links. Unset: a random key "
            f"generated once into the data directory ({KEYS_FILE}, mode 0600)."
        ),
    )
    webhook_secret: SecretStr = Field(
        default_factory=lambda data: _generated(data, "webhook_secret"),
        description=(
            "Shared HMAC secret for pushed leads and events (X-Qunflow-Signature). Unset: "
            f"generated like the secret key; senders read it from {KEYS_FILE}."
        ),
    )
    webhook_tolerance_seconds: int = Field(
        # Five minutes either way: room for a sender's retries and clock drift, short for a
        # replay of a captured request.
        default=300,
        ge=1,
        le=86_400,
        description=(
            "How far X-Qunflow-Timestamp of a pushed request may be from our clock, either "
            "way, in seconds; older or newer signed requests are refused (401)."
        ),
    )
    webhook_accept_untimed: bool = Field(
        default=False,
        description=(
            "Also accept pushed requests signed the old way (HMAC of the body alone, no "
            "X-Qunflow-Timestamp), which stay valid forever once captured. For migrating only."
        ),
    )
    public_base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Base URL of the web app as phones reach it; printed into QR codes.",
    )
    trusted_proxies: str = Field(
        default="",
        description=(
            "Comma-separated IPs or CIDRs of reverse proxies in front of the web app: only "
            "from these is X-Forwarded-For believed for the client address. Default: none."
        ),
    )

    # --- WeCom ---------------------------------------------------------------
    wecom_corp_id: str | None = Field(default=None, description="WeCom corp id (corpid).")
    wecom_secret: SecretStr | None = Field(
        default=None, description="Secret of the WeCom customer-contact application."
    )
    wecom_token: SecretStr | None = Field(
        default=None,
        description="Token of the WeCom callback (接收事件服务器 Token); signs each callback.",
    )
    wecom_aes_key: SecretStr | None = Field(
        default=None,
        description="EncodingAESKey of the WeCom callback: 43 characters from the admin console.",
    )
    wecom_welcome_window_seconds: float = Field(
        # WeCom allows send_welcome_msg within 20 s of the event; keep a margin for the call.
        default=18.0,
        gt=0,
        le=20,
        description="How long after an add_external_contact event a welcome is still sent.",
    )
    wecom_mass_per: Literal["month", "week", "day"] = Field(
        default="month",
        description=(
            "The enterprise mass-message (群发) limit set in the WeCom admin console: month (as "
            "many a month as it has days, WeCom's default), week (7) or day (1). A customer "
            "WeCom reports as already served (status 3) waits for the next such window."
        ),
    )
    wecom_base_url: str = Field(
        default="https://qyapi.weixin.qq.com/cgi-bin",
        description="WeCom API base URL; tests point it at a local server.",
    )

    # --- SMTP ----------------------------------------------------------------
    smtp_host: str | None = Field(default=None, description="SMTP server for email follow-ups.")
    smtp_port: int = Field(default=25, ge=1, le=65535, description="SMTP port.")
    smtp_user: str | None = Field(default=None, description="SMTP login, if any.")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password, if any.")
    smtp_from: str = Field(default="qunflow@localhost", description="From address of emails.")
    smtp_starttls: bool = Field(
        default=False, description="Upgrade the SMTP connection with STARTTLS."
    )

    # --- generic webhook channel --------------------------------------------------
    outbound_webhook_url: str | None = Field(
        default=None, description="URL the signed webhook channel posts messages to."
    )

    @field_validator("data_dir", mode="before")
    @classmethod
    def _data_dir_given(cls, value: object) -> object:
        return check_data_dir(value)

    @field_validator("secret_key", "webhook_secret")
    @classmethod
    def _not_public(cls, value: SecretStr) -> SecretStr:
        check_secret(value.get_secret_value())
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: str) -> str:
        parts = [p.strip() for p in value.split(",") if p.strip()]
        for part in parts:
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError as exc:
                raise BadValue("error.core.setting_network", value=part) from exc
        return ",".join(parts)

    @field_validator("lang", mode="before")
    @classmethod
    def _known_lang(cls, value: object) -> object:
        found = lang_code(str(value)) if isinstance(value, str) else None
        if found is None:
            raise BadValue("error.core.setting_lang", value=value)
        return found

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise BadValue("error.core.setting_zone", value=value) from exc
        return value

    @field_validator("database_url")
    @classmethod
    def _valid_url(cls, value: str | None) -> str | None:
        return check_database_url(value)

    @property
    def public_url_is_loopback(self) -> bool:
        """True when the public base URL names this machine: phones cannot open its links."""
        host = urlsplit(self.public_base_url).hostname or ""
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return host == "localhost" or host.endswith(".localhost")

    def loopback_note(self) -> str | None:
        """The warning to show when QR codes and links would point at this machine only."""
        if not self.public_url_is_loopback:
            return None
        return (
            f"note: QUNFLOW_PUBLIC_BASE_URL is {self.public_base_url}, an address of this"
            " machine: phones cannot open the QR codes and links made with it; set it to the"
            " address phones reach"
        )

    @property
    def zone(self) -> ZoneInfo:
        """The business time zone as a ZoneInfo."""
        return ZoneInfo(self.timezone)

    @property
    def sqlalchemy_url(self) -> str:
        """The effective database URL; a PostgreSQL URL always uses psycopg 3."""
        return effective_database_url(self.database_url, self.data_dir)


def _generated(data: dict[str, Any], name: str) -> SecretStr:
    # Runs only when the secret is not set; data_dir is validated before it (field order).
    if "data_dir" not in data:  # data_dir itself was refused: that error is reported
        return SecretStr("")
    return SecretStr(stored_secret(Path(data["data_dir"]), name))


def get_settings(**overrides: object) -> Settings:
    """Read the settings from the environment; a bad value raises ConfigError naming it."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        setting = ENV_PREFIX + (str(first["loc"][0]).upper() if first["loc"] else "?")
        cause = first.get("ctx", {}).get("error")
        if isinstance(cause, BadValue):
            problem = cause.problem
            raise ConfigError(problem.key, **problem.params, setting=setting) from exc
        # pydantic's own checks (numbers, booleans) keep its words
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError("error.core.setting_invalid", setting=setting, detail=message) from exc
