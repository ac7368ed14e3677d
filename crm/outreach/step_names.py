"""What a campaign calls its steps: their place in the campaign and the title its file gives.

Outbox rows keep the step's name (``nudge-1``, or ``rules@2026-03-03`` for one occurrence of a
repeating step); people read 第 1 步 / Step 1, so the number comes from the campaign's order.
"""

from __future__ import annotations

from dataclasses import dataclass

from crm.outreach.campaign_spec import Campaign


@dataclass(frozen=True)
class StepName:
    """A step as people name it; ``number`` is None when the campaign has no such step."""

    name: str
    number: int | None
    title: str | None
    occurrence: str | None  # the day (or event) of one occurrence of a repeating step


def step_name(campaign: Campaign | None, key: str) -> StepName:
    """The step an outbox row's step key refers to, numbered from 1 in the campaign's order."""
    name, _, occurrence = key.partition("@")
    for number, step in enumerate(campaign.steps if campaign else [], start=1):
        if step.name == name:
            return StepName(name, number, step.title, occurrence or None)
    return StepName(name, None, None, occurrence or None)
