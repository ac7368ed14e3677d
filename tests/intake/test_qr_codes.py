"""Signed sign-up codes: tokens, expiry parsing, created images and rows, the `qr` CLI."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from crm.core.db import transaction
from crm.core.errors import InputError
from crm.core.vocabulary import SourceKind
from crm.intake.qr import (
    ExpiredToken,
    InvalidToken,
    QrClaims,
    create_qr,
    parse_duration,
    sign_nonce,
    sign_token,
    verify_nonce,
    verify_token,
)
from crm.models import Contact, QrCode, SourceInstance

KEY = "test-secret-key-0123456789"
QR_CREATE = (".venv/bin/qunflow", "qr", "create")
NOW = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def claims(**kw) -> QrClaims:
    base = dict(
        code_id="abc123",
        promoter="小李",
        location="五道口地铁站",
        campaign="spring-open-day",
        expires_at=NOW + timedelta(days=7),
    )
    base.update(kw)
    return QrClaims(**base)


def test_token_round_trip_keeps_every_claim():
    c = claims(referrer_contact_id=42)
    assert verify_token(sign_token(c, KEY), KEY, now=NOW) == c
    assert c.source_kind is SourceKind.REFERRAL
    assert claims().source_kind is SourceKind.QR_SIGNUP


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("AA" if t[-2:] != "AA" else "BB"),  # signature changed
        lambda t: "x" + t,  # payload changed
        lambda t: t.split(".")[0],  # signature cut off
        lambda t: "",
    ],
)
def test_tampered_token_is_invalid(mangle):
    token = sign_token(claims(), KEY)
    with pytest.raises(InvalidToken):
        verify_token(mangle(token), KEY, now=NOW)


def test_token_signed_with_another_key_is_invalid():
    with pytest.raises(InvalidToken):
        verify_token(sign_token(claims(), "other-key"), KEY, now=NOW)


def test_changed_claims_cannot_be_resigned_by_swapping_payloads():
    a, b = sign_token(claims(promoter="A"), KEY), sign_token(claims(promoter="B"), KEY)
    mixed = a.split(".")[0] + "." + b.split(".")[1]
    with pytest.raises(InvalidToken):
        verify_token(mixed, KEY, now=NOW)


def test_expired_token_is_refused_with_410():
    token = sign_token(claims(expires_at=NOW + timedelta(hours=1)), KEY)
    assert verify_token(token, KEY, now=NOW + timedelta(minutes=59)).code_id == "abc123"
    with pytest.raises(ExpiredToken) as info:
        verify_token(token, KEY, now=NOW + timedelta(hours=1))
    assert info.value.http_status == 410


def test_form_nonce_is_bound_to_its_code():
    signed = sign_nonce("abc123", "n-1", KEY)
    assert verify_nonce("abc123", signed, KEY) == "n-1"
    with pytest.raises(InvalidToken):
        verify_nonce("other", signed, KEY)
    with pytest.raises(InvalidToken):
        verify_nonce("abc123", "n-1", KEY)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("7d", timedelta(days=7)), ("12h", timedelta(hours=12)), (" 30M ", timedelta(minutes=30))],
)
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "7", "d7", "7w", "0d", "1.5h", "-3d", "9999d"])
def test_parse_duration_refuses_bad_values(text):
    with pytest.raises(InputError):
        parse_duration(text)


def test_create_qr_writes_images_row_and_source(engine, tmp_path):
    result = create_qr(
        engine,
        promoter="小李",
        location="五道口",
        campaign="spring",
        expires=timedelta(days=7),
        out_dir=tmp_path / "codes",
        base_url="https://q.example.cn/",
        secret_key=KEY,
        now=NOW,
    )
    assert result.png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in result.svg.read_text()
    assert result.url.startswith("https://q.example.cn/s/")
    decoded = verify_token(result.url.rsplit("/", 1)[1], KEY, now=NOW)
    assert (decoded.promoter, decoded.location, decoded.campaign) == ("小李", "五道口", "spring")
    with transaction(engine) as s:
        row = s.scalar(select(QrCode).where(QrCode.token_id == result.code_id))
        assert row is not None and row.expires_at == NOW + timedelta(days=7)
        src = s.get(SourceInstance, row.source_instance_id)
        assert src is not None
        assert (src.kind, src.promoter, src.location, src.campaign) == (
            "qr_signup",
            "小李",
            "五道口",
            "spring",
        )


def test_invite_code_of_a_member_is_a_referral_source(engine, tmp_path):
    with transaction(engine) as s:
        member = Contact(display_name="老会员")
        s.add(member)
        s.flush()
        member_id = member.id
    result = create_qr(
        engine,
        promoter="老会员",
        location="朋友圈",
        campaign="invite",
        expires=timedelta(days=30),
        out_dir=tmp_path,
        referrer_contact_id=member_id,
        base_url="http://x",
        secret_key=KEY,
    )
    assert verify_token(result.token, KEY).referrer_contact_id == member_id
    with transaction(engine) as s:
        src = s.get(SourceInstance, result.source_instance_id)
        assert src is not None and src.kind == "referral"
        assert src.referrer_contact_id == member_id


def test_cli_create_and_list(cli_env, tmp_path, db_url):
    out = tmp_path / "out"
    run = subprocess.run(
        [
            *QR_CREATE,
            *("--promoter", "P1", "--location", "L1", "--campaign", "C1"),
            *("--expires", "12h", "--out", str(out), "--json"),
        ],
        env=cli_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    created = json.loads(run.stdout)
    assert (out / f"qr-{created['code_id']}.png").exists()
    listed = subprocess.run(
        [".venv/bin/qunflow", "qr", "list", "--json"],
        env=cli_env,
        capture_output=True,
        text=True,
        check=True,
    )
    rows = json.loads(listed.stdout)
    assert [r["code_id"] for r in rows] == [created["code_id"]]
    assert rows[0]["promoter"] == "P1" and rows[0]["expired"] is False


@pytest.mark.parametrize("bad", ["7x"])
def test_cli_bad_expiry_is_one_line_exit_2(cli_env, tmp_path, bad, engine):
    run = subprocess.run(
        [
            *QR_CREATE,
            *("--promoter", "P", "--location", "L", "--campaign", "C"),
            *("--expires", bad, "--out", str(tmp_path)),
        ],
        env=cli_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "bad duration" in run.stderr
    with transaction(engine) as s:
        assert s.scalar(select(func.count()).select_from(QrCode)) == 0
