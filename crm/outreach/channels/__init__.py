"""Delivery channels behind one small interface: ``send(message) -> SendResult``, optional lookup.

console / file (dry runs, JSONL), null (benchmarks), email (SMTP), wecom (企业微信 customer
contact API), webhook (signed HTTP POST). :func:`build_channels` makes them from settings.
"""

from __future__ import annotations

from crm.outreach.channels.base import Channel, OutgoingMessage, SendResult, mask_phone
from crm.outreach.channels.registry import build_channels

__all__ = ["Channel", "OutgoingMessage", "SendResult", "build_channels", "mask_phone"]
