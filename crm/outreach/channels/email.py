"""SMTP email (smtplib). The outbox idempotency key becomes the Message-ID."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import formatdate

from pydantic import SecretStr

from crm.core.errors import PermanentChannelError, TransientChannelError
from crm.outreach.channels.base import OutcomeUnknown, OutgoingMessage, SendResult


class SmtpChannel:
    """One SMTP connection per send; SMTP offers no "was this accepted?" query (no lookup)."""

    name = "email"
    # A relay may or may not dedupe on Message-ID; we cannot ask, so an interrupted send is
    # failed as "unknown outcome" rather than resent (at-most-once).
    can_lookup = False

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sender: str,
        user: str | None = None,
        password: SecretStr | None = None,
        starttls: bool = False,
        timeout: float = 30.0,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.user, self._password, self.starttls, self.timeout = user, password, starttls, timeout

    def __repr__(self) -> str:
        return f"SmtpChannel({self.host}:{self.port}, user={self.user!r})"

    def send(self, message: OutgoingMessage) -> SendResult:
        """Send one email; 4xx and network errors are transient, 5xx permanent."""
        if not message.address:
            raise PermanentChannelError("contact has no email address")
        mail = EmailMessage()
        first = message.text.partition("\n")
        mail["Subject"] = message.subject or first[0][:80]
        mail["From"] = self.sender
        mail["To"] = message.address
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = f"<{message.idempotency_key}@qunflow>"
        mail["X-Qunflow-Idempotency-Key"] = message.idempotency_key
        mail.set_content(message.text)
        in_data = False
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.user and self._password is not None:
                    smtp.login(self.user, self._password.get_secret_value())
                in_data = True
                smtp.send_message(mail)
                in_data = False
        except smtplib.SMTPResponseException as exc:
            detail = f"SMTP {exc.smtp_code}: {_text(exc.smtp_error)}"
            if 400 <= exc.smtp_code < 500:
                raise TransientChannelError(detail) from exc
            raise PermanentChannelError(detail) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentChannelError(f"recipient refused: {exc.recipients}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            if in_data:  # the link broke after the message may have been handed over
                raise OutcomeUnknown(f"SMTP {type(exc).__name__} during DATA: {exc}") from exc
            raise TransientChannelError(f"SMTP {type(exc).__name__}: {exc}") from exc
        return SendResult(provider_id=mail["Message-ID"])

    def lookup(self, message: OutgoingMessage) -> SendResult | None:
        """SMTP cannot tell; never called because can_lookup is False."""
        return None

    def close(self) -> None:
        """Connections are per send."""


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
