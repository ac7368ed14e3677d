"""The WeCom callback endpoint ``/hooks/wecom`` (加解密方案说明).

GET answers URL verification with the decrypted ``echostr``. POST checks the signature,
decrypts, stores the event in the inbox and answers at once; the event is then processed
after the answer is sent (the welcome message must go out within 20 s), and again by the
scheduled flow if that follow-up did not finish.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import httpx
from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from crm.core.settings import Settings
from crm.intake.wecom import client_from_settings
from crm.intake.wecom_crypto import CallbackRefused, WeComCrypto
from crm.intake.wecom_inbox import parse_xml, store_callback
from crm.outreach.wecom_callbacks import LiveConfig, process_inbox
from flows.web.public import _engine, _settings

router = APIRouter()


def crypto_from_settings(settings: Settings) -> WeComCrypto | None:
    """The callback crypto, or None while token, key or corp id are not set."""
    if not (settings.wecom_token and settings.wecom_aes_key and settings.wecom_corp_id):
        return None
    return WeComCrypto.from_settings(
        settings.wecom_token.get_secret_value(),
        settings.wecom_aes_key.get_secret_value(),
        settings.wecom_corp_id,
    )


def _crypto(request: Request) -> WeComCrypto | None:
    state = request.app.state
    if getattr(state, "wecom_crypto", None) is None:
        state.wecom_crypto = crypto_from_settings(_settings(request))
    crypto: WeComCrypto | None = state.wecom_crypto
    return crypto


def _refused(exc: CallbackRefused) -> Response:
    return JSONResponse({"error": str(exc), "code": exc.key}, status_code=exc.http_status)


def _not_configured() -> Response:
    message = "WeCom callback not configured: set QUNFLOW_WECOM_TOKEN, _AES_KEY and _CORP_ID"
    return JSONResponse({"error": message}, status_code=503)


@router.get("/hooks/wecom")
def verify_url(
    request: Request,
    msg_signature: str = "",
    timestamp: str = "",
    nonce: str = "",
    echostr: str = "",
) -> Response:
    """URL verification: the plaintext of a correctly signed ``echostr``."""
    crypto = _crypto(request)
    if crypto is None:
        return _not_configured()
    try:
        plain = crypto.open(msg_signature, timestamp, nonce, echostr)
    except CallbackRefused as exc:
        return _refused(exc)
    return PlainTextResponse(plain.decode("utf-8", errors="replace"))


@router.post("/hooks/wecom")
async def receive(
    request: Request,
    background: BackgroundTasks,
    msg_signature: str = "",
    timestamp: str = "",
    nonce: str = "",
) -> Response:
    """Store one encrypted event and answer at once; processing follows the answer."""
    crypto = _crypto(request)
    if crypto is None:
        return _not_configured()
    body = await request.body()  # bounded by the guards' body limit
    try:
        ciphertext = _encrypt_field(body)
        message = crypto.open(msg_signature, timestamp, nonce, ciphertext)
        fields = parse_xml(message)
    except CallbackRefused as exc:
        return _refused(exc)
    engine = _engine(request)
    received = await run_in_threadpool(
        store_callback, engine, fields, message.decode("utf-8", errors="replace")
    )
    if received.new and received.callback_id is not None:
        background.add_task(_follow_up, request, received.callback_id)
    return PlainTextResponse("success")


def _encrypt_field(body: bytes) -> str:
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise CallbackRefused("error.web.callback_dtd")
    try:
        root = ET.fromstring(body)  # noqa: S314 - DTDs refused above, size bounded by guards
    except ET.ParseError as exc:
        raise CallbackRefused("error.web.callback_not_xml", detail=str(exc)) from exc
    text = root.findtext("Encrypt")
    if not text:
        raise CallbackRefused("error.web.callback_no_encrypt")
    return text.strip()


def _follow_up(request: Request, callback_id: int) -> None:
    """Process the callback just stored (the scheduled flow picks it up if this fails)."""
    settings = _settings(request)
    if settings.wecom_secret is None or not settings.wecom_corp_id:
        return
    state = request.app.state
    if getattr(state, "wecom_http", None) is None:
        state.wecom_http = httpx.Client(timeout=5.0)
    client = client_from_settings(settings, state.wecom_http, backoff=(0.5,))
    config = LiveConfig(settings.wecom_welcome_window_seconds, settings.templates_dir)
    process_inbox(_engine(request), client, config, worker="web", only=callback_id)
