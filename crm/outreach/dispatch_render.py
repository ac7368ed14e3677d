"""Rendering a claimed outbox row into the message a channel sends.

Templates are looked up (and their file's mtime checked) once per batch; a template that
fails to load or render raises TemplateError, which skips the row with the template's name
and line.
"""

from __future__ import annotations

from crm.compliance.optout import unsubscribe_url
from crm.core.settings import Settings
from crm.outreach.accounts import SendingAccount
from crm.outreach.channels.base import OutgoingMessage
from crm.outreach.outbox import Claimed
from crm.outreach.templates import MessageTemplate, TemplateError, load

# One batch's templates by (name, locale): loaded, or the error loading gave.
Templates = dict[tuple[str, str | None], MessageTemplate | TemplateError]


def _template(row: Claimed, templates: Templates, settings: Settings) -> MessageTemplate:
    locale = row.context.get("locale")
    key = (row.template, locale)
    tpl = templates.get(key)
    if tpl is None:
        try:
            tpl = load(row.template, locale=locale, operator_dir=settings.templates_dir)
        except TemplateError as exc:
            tpl = exc
        templates[key] = tpl
    if isinstance(tpl, TemplateError):
        raise tpl
    return tpl


def render_message(
    row: Claimed,
    account: SendingAccount | None,
    templates: Templates,
    *,
    settings: Settings,
    sending_at: str,
) -> OutgoingMessage:
    """The message for one claimed row, rendered from its template (TemplateError: skip it)."""
    tpl = _template(row, templates, settings)
    ctx = row.context
    contact = None
    if row.contact_id is not None:
        contact = {"id": row.contact_id, "name": row.contact_name, "tier": row.contact_tier}
    handle = account.handle if account else None
    model = {
        "contact": contact,
        "group": row.group,
        # copies: rows of a step share the context document, templates get their own
        "event": dict(ctx["event"]) if ctx.get("event") else None,
        "params": dict(ctx.get("params") or {}),
        "account": handle,
        "unsubscribe_url": unsubscribe_url(row.contact_id, row.channel, settings=settings)
        if ctx.get("purpose") == "marketing" and row.contact_id is not None
        else None,
    }
    meta = {"campaign": row.campaign, "step": row.step, "sending_at": sending_at}
    address = row.address
    if row.contact_id is None and row.group:  # a group post: the group is the recipient
        meta.update(group=row.group["name"], chat_id=row.group["chat_id"])
        address = row.group["chat_id"] or row.group["name"]
    return OutgoingMessage(
        outbox_id=row.id,
        idempotency_key=row.idempotency_key,
        contact_id=row.contact_id,
        channel=row.channel,
        text=tpl.render(model),
        address=address,
        subject=ctx.get("subject"),
        account=handle,
        action=row.action,
        meta=meta,
    )
