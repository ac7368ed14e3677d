"""Building the configured channels from settings."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from crm.core.errors import InputError
from crm.core.settings import Settings
from crm.outreach.channels.base import Channel
from crm.outreach.channels.email import SmtpChannel
from crm.outreach.channels.local import FileChannel, NullChannel
from crm.outreach.channels.webhook import WebhookChannel
from crm.outreach.channels.wecom import WecomChannel

KNOWN = ("console", "file", "null", "wechat", "email", "wecom", "webhook")
# The settings a channel needs before it can send (the others need none).
REQUIRES = {
    "email": "QUNFLOW_SMTP_HOST",
    "wecom": "QUNFLOW_WECOM_CORP_ID and QUNFLOW_WECOM_SECRET",
    "webhook": "QUNFLOW_OUTBOUND_WEBHOOK_URL",
}


def check_names(names: Iterable[str], option: str = "--channel") -> None:
    """InputError naming the first channel name that is not one of ``KNOWN``."""
    for name in names:
        if name not in KNOWN:
            raise InputError(
                "error.outreach.channel_unknown", option=option, name=name, known=", ".join(KNOWN)
            )


def build_channels(
    settings: Settings, names: Iterable[str] | None = None, *, file_path: Path | None = None
) -> dict[str, Channel]:
    """The channels that settings configure (or the named ones); unconfigured ones are left out."""
    wanted = set(names) if names is not None else set(KNOWN)
    out: dict[str, Channel] = {}
    if "console" in wanted:
        out["console"] = FileChannel(None, name="console")
    if "file" in wanted:
        out["file"] = FileChannel(file_path or settings.data_dir / "outbox.jsonl")
    if "wechat" in wanted:
        # Personal WeChat has no sending API: messages and group invitations for WeChat ids go
        # to a send list that the operator account works through by hand (or a device).
        out["wechat"] = FileChannel(settings.data_dir / "wechat-sendlist.jsonl", name="wechat")
    if "null" in wanted:
        out["null"] = NullChannel()
    if "email" in wanted and settings.smtp_host:
        out["email"] = SmtpChannel(
            settings.smtp_host,
            settings.smtp_port,
            sender=settings.smtp_from,
            user=settings.smtp_user,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
        )
    if "wecom" in wanted and settings.wecom_corp_id and settings.wecom_secret:
        out["wecom"] = WecomChannel(
            settings.wecom_base_url, settings.wecom_corp_id, settings.wecom_secret
        )
    if "webhook" in wanted and settings.outbound_webhook_url:
        out["webhook"] = WebhookChannel(settings.outbound_webhook_url, settings.webhook_secret)
    return out
