"""The campaigns file: reading and validating the TOML, looking campaigns up, listing them.

Errors name the file, the field's location and what is wrong (``campaign.0.steps.1.offset:
…``), as a ConfigError, so an operator's typo stops at load time rather than mid-plan.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from pydantic import ValidationError

from crm.contacts.tag_text import clean_tags
from crm.core.errors import BadValue, ConfigError, InputError, NotFound, Problem
from crm.core.settings import Settings
from crm.core.vocabulary import Tier
from crm.outreach.campaign_spec import Anchor, Campaign, CampaignFile


def bundled_path() -> Path:
    """The bundled campaigns file."""
    return Path(str(files("crm.outreach") / "campaigns.toml"))


def load_campaigns(path: Path | None = None) -> dict[str, Campaign]:
    """Read and validate campaigns (settings.campaigns_path, else the bundled file)."""
    path = path or bundled_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        parsed = CampaignFile.model_validate(data)
    except FileNotFoundError as exc:
        raise ConfigError("error.outreach.campaigns_missing", path=str(path)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("error.outreach.campaigns_toml", path=str(path), detail=str(exc)) from exc
    except ValidationError as exc:
        raise _invalid(path, exc) from exc
    for position, c in enumerate(parsed.campaign):
        try:
            c.audience.tags = clean_tags(c.audience.tags)
        except InputError as exc:  # worded as pydantic words a field's ValueError
            raise ConfigError(
                "error.outreach.campaigns_rule",
                path=str(path),
                where=f"campaign.{position}.audience.tags",
                detail=Problem(exc.key, **exc.params),
            ) from exc
    out: dict[str, Campaign] = {}
    for c in parsed.campaign:
        if c.name in out:
            raise ConfigError("error.outreach.campaign_twice", path=str(path), name=c.name)
        out[c.name] = c
    return out


def _invalid(path: Path, exc: ValidationError) -> ConfigError:
    # The first problem, at its place in the file: one of our rules in the reader's words,
    # else pydantic's own sentence (a missing field, a wrong type, a misspelt key).
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, BadValue):
        return ConfigError(
            "error.outreach.campaigns_rule", path=str(path), where=where, detail=cause.problem
        )
    return ConfigError(
        "error.outreach.campaigns_invalid", path=str(path), where=where, detail=first["msg"]
    )


def find_campaign(settings: Settings, name: str) -> Campaign:
    """The campaign ``name`` of the settings' campaigns file; NotFound lists the defined ones."""
    campaigns = load_campaigns(settings.campaigns_path)
    if name not in campaigns:
        raise NotFound(
            "error.outreach.campaign_missing", name=name, defined=", ".join(sorted(campaigns))
        )
    return campaigns[name]


def needs_parameters(campaign: Campaign) -> bool:
    """True for an event campaign without its event: it is started with the event's details."""
    return campaign.anchor == "event" and campaign.event is None


def campaign_names(settings: Settings) -> list[str]:
    """Names of the defined campaigns."""
    return sorted(load_campaigns(settings.campaigns_path))


def triggerable_names(settings: Settings) -> list[str]:
    """Campaigns that can be started without parameters (event campaigns need their event).

    Those written to people come first, so a menu for chosen prospects starts on one of them
    rather than on a campaign that posts in their groups.
    """
    defined = load_campaigns(settings.campaigns_path)
    usable = [(c.target == "groups", n) for n, c in defined.items() if not needs_parameters(c)]
    return [n for _, n in sorted(usable)]


@dataclass(frozen=True)
class StepSummary:
    """One step of a listed campaign."""

    name: str
    channel: str
    template: str
    offset: str | None
    day_offset: int | None
    at: str | None  # HH:MM
    weekdays: list[str] | None


@dataclass(frozen=True)
class CampaignSummary:
    """A defined campaign, for listing."""

    name: str
    purpose: str
    anchor: Anchor
    tiers: list[Tier]
    steps: list[StepSummary]
    description: str


def describe(settings: Settings) -> list[CampaignSummary]:
    """The defined campaigns, for listing."""
    return [
        CampaignSummary(
            name=c.name,
            purpose=c.purpose,
            anchor=c.anchor,
            tiers=list(c.audience.tiers),
            steps=[
                StepSummary(
                    name=s.name,
                    channel=s.channel,
                    template=s.template,
                    offset=s.offset,
                    day_offset=s.day_offset,
                    at=s.at.isoformat("minutes") if s.at else None,
                    weekdays=s.weekdays,
                )
                for s in c.steps
            ],
            description=c.description,
        )
        for c in load_campaigns(settings.campaigns_path).values()
    ]
