"""Signed sign-up codes for in-person promotion (地推) and members' invite codes (裂变).

A code is a URL ``{base_url}/s/{token}``; the token is signed with the secret key and carries
the code id, promoter, location, campaign, expiry and (for invite codes) the referring
contact, so a scanned code needs no database look-up to be trusted and cannot be altered.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import segno
from itsdangerous import BadSignature, URLSafeSerializer
from pydantic import SecretStr
from sqlalchemy import Engine, select

from crm.contacts.queries import resolve_contact_id
from crm.core.clock import parse_expiry
from crm.core.db import transaction
from crm.core.errors import InputError, os_problem
from crm.core.vocabulary import SourceKind
from crm.intake.records import SourceSpec
from crm.intake.sources import ensure_source
from crm.models import QrCode, utcnow

_SALT = "qunflow.qr-signup.v1"
_NONCE_SALT = "qunflow.signup-nonce.v1"
MAX_EXPIRY = timedelta(days=366)


class InvalidToken(InputError):
    """The sign-up token was altered, truncated or signed with another key."""

    http_status = 400


class ExpiredToken(InvalidToken):
    """The sign-up code is past its expiry."""

    http_status = 410


@dataclass(frozen=True)
class QrClaims:
    """What a signed sign-up token says."""

    code_id: str
    promoter: str | None
    location: str | None
    campaign: str | None
    expires_at: datetime
    referrer_contact_id: int | None = None

    @property
    def source_kind(self) -> SourceKind:
        """Invite codes of members are referrals; everything else is an in-person code."""
        return SourceKind.REFERRAL if self.referrer_contact_id else SourceKind.QR_SIGNUP

    def source_spec(self) -> SourceSpec:
        """The source instance sign-ups through this code belong to (one per code)."""
        label = " / ".join(p for p in (self.campaign, self.location, self.promoter) if p)
        return SourceSpec(
            kind=self.source_kind,
            key=self.code_id,
            name=f"扫码 {label}" if label else f"扫码 {self.code_id}",
            promoter=self.promoter,
            location=self.location,
            campaign=self.campaign,
            referrer_contact_id=self.referrer_contact_id,
        )


@dataclass(frozen=True)
class QrResult:
    """A created code: its id, the signed URL and the image files written."""

    code_id: str
    url: str
    token: str
    png: Path
    svg: Path
    expires_at: datetime
    source_instance_id: int

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape the CLI prints."""
        return {
            "code_id": self.code_id,
            "url": self.url,
            "png": str(self.png),
            "svg": str(self.svg),
            "expires_at": self.expires_at.isoformat(),
            "source_instance_id": self.source_instance_id,
        }


def _secret(secret_key: SecretStr | str) -> str:
    return secret_key.get_secret_value() if isinstance(secret_key, SecretStr) else secret_key


def parse_duration(text: str) -> timedelta:
    """How long a code stays valid: ``7d``, ``12h``, ``30m``, at most a year; else InputError."""
    return parse_expiry(text, longest=MAX_EXPIRY)


def sign_token(claims: QrClaims, secret_key: SecretStr | str) -> str:
    """The URL-safe signed token for ``claims``."""
    body: dict[str, Any] = {
        "i": claims.code_id,
        "p": claims.promoter,
        "l": claims.location,
        "c": claims.campaign,
        "e": int(claims.expires_at.timestamp()),
    }
    if claims.referrer_contact_id is not None:
        body["r"] = claims.referrer_contact_id
    return str(URLSafeSerializer(_secret(secret_key), salt=_SALT).dumps(body))


def verify_token(
    token: str, secret_key: SecretStr | str, *, now: datetime | None = None
) -> QrClaims:
    """The claims of a genuine, unexpired token; InvalidToken or ExpiredToken otherwise."""
    try:
        body = URLSafeSerializer(_secret(secret_key), salt=_SALT).loads(token)
        claims = QrClaims(
            code_id=str(body["i"]),
            promoter=body.get("p"),
            location=body.get("l"),
            campaign=body.get("c"),
            expires_at=datetime.fromtimestamp(int(body["e"]), UTC),
            referrer_contact_id=int(body["r"]) if body.get("r") is not None else None,
        )
    except (BadSignature, KeyError, TypeError, ValueError) as exc:
        raise InvalidToken("error.intake.signup_link_invalid") from exc
    if (now or utcnow()) >= claims.expires_at:
        raise ExpiredToken("error.intake.signup_expired", at=f"{claims.expires_at:%Y-%m-%d %H:%M}")
    return claims


def sign_nonce(code_id: str, nonce: str, secret_key: SecretStr | str) -> str:
    """A one-time form nonce bound to its code, so a form post must come from a served page."""
    return str(URLSafeSerializer(_secret(secret_key), salt=_NONCE_SALT).dumps([code_id, nonce]))


def verify_nonce(code_id: str, signed: str, secret_key: SecretStr | str) -> str:
    """The nonce inside ``signed`` if it was issued for ``code_id``; InvalidToken otherwise."""
    try:
        bound, nonce = URLSafeSerializer(_secret(secret_key), salt=_NONCE_SALT).loads(signed)
    except (BadSignature, TypeError, ValueError) as exc:
        raise InvalidToken("error.intake.signup_form_invalid") from exc
    if bound != code_id or not isinstance(nonce, str):
        raise InvalidToken("error.intake.signup_form_invalid")
    return nonce


def new_nonce() -> str:
    """A fresh random form nonce."""
    return secrets.token_urlsafe(16)


def create_qr(
    engine: Engine,
    *,
    promoter: str,
    location: str,
    campaign: str,
    expires: timedelta,
    out_dir: Path,
    referrer_contact_id: int | None = None,
    base_url: str,
    secret_key: SecretStr | str,
    now: datetime | None = None,
) -> QrResult:
    """Create a sign-up code: a qr_codes row, its source instance, and PNG + SVG images."""
    for label, value in (("promoter", promoter), ("location", location), ("campaign", campaign)):
        if not value or not value.strip():
            raise InputError("error.intake.qr_field_empty", field=label)
    if expires <= timedelta(0) or expires > MAX_EXPIRY:
        raise InputError("error.intake.qr_expiry_range", days=MAX_EXPIRY.days)
    at = now or utcnow()
    code_id = secrets.token_hex(8)
    with transaction(engine) as session:
        if referrer_contact_id is not None:
            referrer_contact_id = resolve_contact_id(session, referrer_contact_id)
        claims = QrClaims(
            code_id=code_id,
            promoter=promoter.strip(),
            location=location.strip(),
            campaign=campaign.strip(),
            expires_at=(at + expires).replace(microsecond=0),
            referrer_contact_id=referrer_contact_id,
        )
        source_id = ensure_source(session, claims.source_spec())
        session.add(
            QrCode(
                token_id=code_id,
                promoter=claims.promoter,
                location=claims.location,
                campaign=claims.campaign,
                referrer_contact_id=referrer_contact_id,
                source_instance_id=source_id,
                expires_at=claims.expires_at,
                created_at=at,
            )
        )
        token = sign_token(claims, secret_key)
        url = f"{base_url.rstrip('/')}/s/{token}"
        png, svg = out_dir / f"qr-{code_id}.png", out_dir / f"qr-{code_id}.svg"
        code = segno.make(url, error="m")
        try:  # inside the transaction: a code whose files cannot be written is not recorded
            out_dir.mkdir(parents=True, exist_ok=True)
            code.save(str(png), scale=8, border=2)
            code.save(str(svg), scale=4, border=2, title=claims.source_spec().name)
        except OSError as exc:
            raise InputError(
                "error.intake.qr_unwritable", path=str(out_dir), detail=os_problem(exc)
            ) from exc
    return QrResult(code_id, url, token, png, svg, claims.expires_at, source_id)


@dataclass(frozen=True)
class QrCodeInfo:
    """A sign-up code as listed: who shows it, where, for which campaign, until when."""

    code_id: str
    promoter: str | None
    location: str | None
    campaign: str | None
    referrer_contact_id: int | None
    source_instance_id: int | None
    created_at: datetime
    expires_at: datetime
    expired: bool


def list_qr(engine: Engine, *, now: datetime | None = None) -> list[QrCodeInfo]:
    """Every code, newest first, with whether it is still valid."""
    at = now or utcnow()
    with transaction(engine) as session:
        rows = session.scalars(select(QrCode).order_by(QrCode.created_at.desc(), QrCode.id.desc()))
        return [
            QrCodeInfo(
                code_id=q.token_id,
                promoter=q.promoter,
                location=q.location,
                campaign=q.campaign,
                referrer_contact_id=q.referrer_contact_id,
                source_instance_id=q.source_instance_id,
                created_at=q.created_at,
                expires_at=q.expires_at,
                expired=q.expires_at <= at,
            )
            for q in rows
        ]
