"""WeCom live intake: channel live codes (渠道活码) and the customers their scans bring.

A "contact me" code (``externalcontact/add_contact_way``) carries a ``state`` of at most 30
characters; the registry maps it back to the promoter, location and campaign, i.e. to the
source instance reports group by. ``add_external_contact`` and the churn events are resolved
like every other record: a raw item keyed by the event, through :func:`ingest_items`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, update

from crm.core.db import transaction
from crm.core.errors import InputError, NotFound
from crm.core.vocabulary import EventKind, IdentityKind, SourceKind
from crm.intake.pipeline import ingest_items
from crm.intake.records import IngestReport, RawItem, SourceSpec
from crm.intake.sources import ensure_source
from crm.intake.wecom import WeComClient
from crm.intake.wecom_inbox import Claimed
from crm.models import Identity, WecomContactWay, utcnow

MAX_STATE = 30  # add_contact_way: state 不超过30个字符
UNKNOWN_STATE_KEY = "wecom-state:?"
ORIGIN = "wecom callback"


@dataclass(frozen=True)
class ContactWay:
    """A channel live code as the registry holds it."""

    state: str
    config_id: str | None
    staff: tuple[str, ...]
    promoter: str | None
    location: str | None
    campaign: str | None
    qr_code: str | None
    deleted: bool = False


def state_for(promoter: str | None, location: str | None, campaign: str | None) -> str:
    """A fresh state of at most 30 characters; the registry, not the text, holds the meaning."""
    head = "-".join(p for p in (campaign, promoter) if p)[:17]
    return f"{head}-{secrets.token_hex(6)}" if head else f"q-{secrets.token_hex(8)}"


def way_spec(
    state: str, promoter: str | None, location: str | None, campaign: str | None
) -> SourceSpec:
    """The source instance a code's scans are attributed to (in-person QR, 地推扫码)."""
    label = " / ".join(p for p in (campaign, promoter, location) if p) or state
    return SourceSpec(
        kind=SourceKind.QR_SIGNUP,
        key=f"wecom-state:{state}",
        name=f"企业微信渠道码 {label}",
        platform="wecom",
        promoter=promoter,
        location=location,
        campaign=campaign,
        extra={"state": state},
    )


def unknown_spec() -> SourceSpec:
    """Where scans of a code we have no record of go: still stored, as "unknown code"."""
    return SourceSpec(
        kind=SourceKind.QR_SIGNUP,
        key=UNKNOWN_STATE_KEY,
        name="未知渠道码 (unknown code)",
        platform="wecom",
    )


def create_contact_way(
    engine: Engine,
    client: WeComClient,
    *,
    staff: list[str],
    promoter: str | None = None,
    location: str | None = None,
    campaign: str | None = None,
    remark: str | None = None,
) -> ContactWay:
    """Make a "contact me" QR code for one or more staff members and register its state."""
    staff = [s.strip() for s in staff if s.strip()]
    if not staff:
        raise InputError("error.intake.live_no_staff")
    state = state_for(promoter, location, campaign)
    payload: dict[str, Any] = {
        "type": 1 if len(staff) == 1 else 2,
        "scene": 2,  # 通过二维码联系
        "state": state,
        "user": staff,
        "skip_verify": True,
    }
    if remark:
        payload["remark"] = remark[:30]
    body = client.post("externalcontact/add_contact_way", payload)
    config_id = str(body["config_id"])
    qr_code = str(body.get("qr_code") or "") or None
    with transaction(engine) as session:
        source_id = ensure_source(session, way_spec(state, promoter, location, campaign))
        session.add(
            WecomContactWay(
                state=state,
                config_id=config_id,
                staff=staff,
                promoter=promoter,
                location=location,
                campaign=campaign,
                qr_code=qr_code,
                source_instance_id=source_id,
            )
        )
    return ContactWay(state, config_id, tuple(staff), promoter, location, campaign, qr_code)


def list_contact_ways(engine: Engine, *, include_deleted: bool = False) -> list[ContactWay]:
    """The registered channel live codes, newest first."""
    with transaction(engine) as session:
        stmt = select(WecomContactWay).order_by(WecomContactWay.id.desc())
        if not include_deleted:
            stmt = stmt.where(WecomContactWay.deleted_at.is_(None))
        return [_way(w) for w in session.scalars(stmt)]


def _way(w: WecomContactWay) -> ContactWay:
    return ContactWay(
        w.state,
        w.config_id,
        tuple(w.staff or ()),
        w.promoter,
        w.location,
        w.campaign,
        w.qr_code,
        w.deleted_at is not None,
    )


def _registered(engine: Engine, state: str) -> WecomContactWay:
    with transaction(engine) as session:
        found = session.scalar(select(WecomContactWay).where(WecomContactWay.state == state))
    if found is None or found.deleted_at is not None:
        raise NotFound("error.intake.live_code_missing", state=state)
    return found


def update_contact_way(
    engine: Engine, client: WeComClient, state: str, *, staff: list[str]
) -> ContactWay:
    """Change who a code adds (update_contact_way); its state, and so its source, stay."""
    way = _registered(engine, state)
    client.post("externalcontact/update_contact_way", {"config_id": way.config_id, "user": staff})
    with transaction(engine) as session:
        session.execute(
            update(WecomContactWay).where(WecomContactWay.id == way.id).values(staff=staff)
        )
    return ContactWay(
        way.state,
        way.config_id,
        tuple(staff),
        way.promoter,
        way.location,
        way.campaign,
        way.qr_code,
    )


def delete_contact_way(engine: Engine, client: WeComClient, state: str) -> None:
    """Delete a code at WeCom (del_contact_way); the registry keeps it so old scans still
    resolve to their source."""
    way = _registered(engine, state)
    client.post("externalcontact/del_contact_way", {"config_id": way.config_id})
    with transaction(engine) as session:
        session.execute(
            update(WecomContactWay).where(WecomContactWay.id == way.id).values(deleted_at=utcnow())
        )


def spec_for_state(engine: Engine, state: str | None) -> SourceSpec:
    """The source a scan with ``state`` is attributed to; "unknown code" if unregistered."""
    if state:
        with transaction(engine) as session:
            way = session.scalar(select(WecomContactWay).where(WecomContactWay.state == state))
        if way is not None:
            return way_spec(way.state, way.promoter, way.location, way.campaign)
    return unknown_spec()


def contact_of(engine: Engine, external_userid: str) -> int | None:
    """The contact holding a WeCom external userid, if any."""
    with transaction(engine) as session:
        return session.scalar(
            select(Identity.contact_id).where(
                Identity.kind == IdentityKind.WECOM_EXTERNAL_USERID.value,
                Identity.value == external_userid,
            )
        )


@dataclass(frozen=True)
class Resolved:
    """What resolving one callback did."""

    contact_id: int | None
    report: IngestReport
    source: SourceSpec


SCAN_CONSENT_VIA = "wecom channel code scan"


def scan_consent(state: str | None) -> dict[str, Any]:
    """The consent a scan of a channel live code records (payload keys; none without a state).

    A channel live code is an in-person QR source, and that source asks for consent before any
    marketing (crm.compliance.optout.CONSENT_SOURCES). WeCom shows no form: the customer's own
    request to add the staff member is that consent, for WeCom only, the channel they chose;
    other channels still need the sign-up form's. An add without a state (the staff member
    added them) is no scan and records none.
    """
    if not state:
        return {}
    return {"consent": True, "consent_channel": "wecom", "consent_via": SCAN_CONSENT_VIA}


def resolve_new_customer(engine: Engine, client: WeComClient, cb: Claimed) -> Resolved:
    """add_external_contact: read the customer (externalcontact/get) and resolve the person."""
    f = cb.fields
    external, staff = str(f.get("ExternalUserID") or ""), str(f.get("UserID") or "")
    if not external:
        raise InputError("error.intake.callback_no_external", change="add_external_contact")
    body = client.get("externalcontact/get", {"external_userid": external})
    person = body.get("external_contact") or {}
    follow: dict[str, Any] = next(
        (u for u in body.get("follow_user") or [] if u.get("userid") == staff),
        {},
    )
    state = str(f.get("State") or follow.get("state") or "") or None
    spec = spec_for_state(engine, state)
    payload: dict[str, Any] = {
        "wecom_external_userid": external,
        "unionid": person.get("unionid"),
        "name": person.get("name"),
        "occurred_at": _when(cb).isoformat(),
        "staff": staff,
        "state": state,
        "note": follow.get("remark") or None,
        "wecom_tags": [t.get("tag_name") for t in follow.get("tags") or [] if t.get("tag_name")],
        **scan_consent(state),
    }
    item = RawItem(
        record_key=f"wecom:add:{external}:{staff}:{f.get('CreateTime', '')}",
        payload={k: v for k, v in payload.items() if v not in (None, "", [])},
        source=spec,
    )
    report = ingest_items(engine, spec, [item], origin=f"{ORIGIN} add_external_contact")
    return Resolved(contact_of(engine, external), report, spec)


# The source of a staff member's relationship events; planning and dispatch read churn by it.
STAFF_SOURCE_PREFIX = "wecom-staff:"

CHURN_EVENTS = {
    "del_follow_user": "customer_deleted_staff",
    "del_external_contact": "staff_deleted_customer",
}


def churn_spec(staff: str) -> SourceSpec:
    """The feed of one staff member's WeCom relationship events. No operator handle: that
    would make a personal-WeChat account of the staff member; the key names them."""
    return SourceSpec(
        kind=SourceKind.API,
        key=f"{STAFF_SOURCE_PREFIX}{staff}",
        name=f"企业微信成员 {staff}",
        platform="wecom",
    )


def resolve_churn(engine: Engine, cb: Claimed) -> Resolved:
    """del_follow_user / del_external_contact: a churn event on the person (created if its
    add has not arrived yet, so a delete before its add is kept, not lost)."""
    f = cb.fields
    external, staff = str(f.get("ExternalUserID") or ""), str(f.get("UserID") or "")
    if not external:
        raise InputError("error.intake.callback_no_external", change=cb.change_type)
    spec = churn_spec(staff)
    item = RawItem(
        record_key=f"wecom:{cb.change_type}:{external}:{staff}:{f.get('CreateTime', '')}",
        payload={
            "wecom_external_userid": external,
            "event": EventKind.CHURN.value,
            "occurred_at": _when(cb).isoformat(),
            "staff": staff,
            "churn": CHURN_EVENTS.get(cb.change_type or "", cb.change_type),
        },
        source=spec,
    )
    report = ingest_items(engine, spec, [item], origin=f"{ORIGIN} {cb.change_type}")
    return Resolved(contact_of(engine, external), report, spec)


def _when(cb: Claimed) -> datetime:
    return cb.created_at_wecom or cb.received_at
