"""The scoring and routing rules as validated data: signals, weights, tier thresholds, clean-out."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from crm.core.errors import BadValue
from crm.core.vocabulary import EventKind, Tier


class _Strict(BaseModel):
    # Unknown keys are typos; TOML already gives exact types, so no coercion either.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SourceSignal(_Strict):
    """Points for the best source a contact arrived through (地推 > 自媒体 > 同行群)."""

    qr_signup: int = 30
    self_media: int = 15
    peer_group: int = 5
    referral: int = 20
    api: int = 5
    # A self-media lead whose own words show intent is worth more than a passer-by.
    self_media_intent_bonus: int = 10

    def points_for(self, kind: str) -> int:
        """Points for one source kind (unknown kinds score nothing)."""
        value = getattr(self, kind, 0) if kind in SOURCE_KINDS else 0
        return int(value)


SOURCE_KINDS = ("qr_signup", "self_media", "peer_group", "referral", "api")


class IntentSignal(_Strict):
    """Messages that ask about price, sign-up or purchase (价格, 报名, 多少钱 …)."""

    keywords: list[str] = Field(default_factory=lambda: ["价格", "报名", "多少钱", "怎么买"])
    weight: int = 10
    max_points: int = Field(default=40, ge=0)

    @field_validator("keywords")
    @classmethod
    def _not_blank(cls, value: list[str]) -> list[str]:
        if not value or any(not k.strip() for k in value):
            raise BadValue("error.routing.rules_keywords")
        return value


class EngagementSignal(_Strict):
    """Frequency and recency: each event counts weight × 0.5^(age / half-life)."""

    weight: int = 3
    half_life_days: float = Field(default=14.0, gt=0)
    kinds: list[EventKind] = Field(
        default_factory=lambda: [EventKind.MESSAGE, EventKind.SHARE, EventKind.ACTIVITY_ATTENDED]
    )
    max_points: int = Field(default=30, ge=0)

    @field_validator("kinds", mode="before")
    @classmethod
    def _kinds(cls, value: object) -> object:
        # Strict mode refuses plain strings for enums; TOML only has strings.
        if isinstance(value, list):
            return [EventKind(v) if isinstance(v, str) else v for v in value]
        return value


class ContributionSignal(_Strict):
    """Contribution volume (贡献量): all-time messages and shares."""

    message_weight: int = 1
    share_weight: int = 4
    max_points: int = Field(default=20, ge=0)


class ReferralSignal(_Strict):
    """Contacts brought in (裂变)."""

    weight: int = 15
    max_points: int = Field(default=45, ge=0)


class ScreeningQuestion(_Strict):
    """A sign-up question (门槛) and the answers (exact, any case) that mark a target customer."""

    key: str = Field(min_length=1)
    accept: list[str] = Field(min_length=1)
    weight: int


class ScreeningSignal(_Strict):
    """Screening answers that match what the business is looking for."""

    questions: list[ScreeningQuestion] = Field(default_factory=list)
    max_points: int = Field(default=30, ge=0)


class AttendanceSignal(_Strict):
    """Activities attended (sharing sessions, live events)."""

    weight: int = 8
    max_points: int = Field(default=24, ge=0)


class NegativeSignal(_Strict):
    """Ads, rule violations, opt-out and long silence (长期潜水) take points away."""

    ad_labels: list[str] = Field(default_factory=lambda: ["ad", "ads", "广告"])
    ad_weight: int = Field(default=-100, le=0)
    violation_weight: int = Field(default=-15, le=0)
    opt_out_weight: int = Field(default=-50, le=0)
    # Each WeCom churn event (the customer deleted the staff member, or was deleted).
    churn_weight: int = Field(default=-20, le=0)
    silence_days: int = Field(default=21, ge=1)
    silence_weight: int = Field(default=-10, le=0)


class Signals(_Strict):
    """Every signal with its weights."""

    source: SourceSignal = SourceSignal()
    intent: IntentSignal = IntentSignal()
    engagement: EngagementSignal = EngagementSignal()
    contribution: ContributionSignal = ContributionSignal()
    referrals: ReferralSignal = ReferralSignal()
    screening: ScreeningSignal = ScreeningSignal()
    attendance: AttendanceSignal = AttendanceSignal()
    negative: NegativeSignal = NegativeSignal()


class Threshold(_Strict):
    """Hysteresis: enter at ``enter_at`` or more, stay while the score is ``stay_above`` or more."""

    enter_at: int
    stay_above: int

    @model_validator(mode="after")
    def _hysteresis(self) -> Threshold:
        if self.stay_above > self.enter_at:
            raise BadValue(
                "error.routing.rules_hysteresis", stay_above=self.stay_above, enter_at=self.enter_at
            )
        return self


class Tiers(_Strict):
    """Score thresholds of the tiers reached by score (open is the entry, paid needs a purchase)."""

    active: Threshold = Threshold(enter_at=20, stay_above=10)
    prospect: Threshold = Threshold(enter_at=60, stay_above=45)

    @model_validator(mode="after")
    def _ordered(self) -> Tiers:
        if self.prospect.enter_at <= self.active.enter_at:
            raise BadValue("error.routing.rules_order")
        return self

    def threshold(self, tier: str) -> Threshold | None:
        """The threshold of a score-reached tier, None for open and paid."""
        if tier == Tier.ACTIVE:
            return self.active
        if tier == Tier.PROSPECT:
            return self.prospect
        return None


class Lifecycle(_Strict):
    """Demotion and clean-out: lurkers, ads, rule breakers; the purchase jump."""

    demote_after_silent_days: int = Field(default=30, ge=1)
    remove_after_silent_days: int = Field(default=90, ge=1)
    remove_on_ad: bool = True
    # Each violation is a warning (contacts.warnings); this many remove the contact.
    remove_after_violations: int = Field(default=3, ge=1)
    purchase_to_paid: bool = True


class Placement(_Strict):
    """Group placement: which theme each tier's groups have, how fresh a QR code must be."""

    tiers: list[Tier] = Field(
        default_factory=lambda: [Tier.OPEN, Tier.ACTIVE, Tier.PROSPECT, Tier.PAID]
    )
    themes: dict[str, str] = Field(default_factory=dict)
    qr_margin_hours: int = Field(default=24, ge=0)

    @field_validator("tiers", mode="before")
    @classmethod
    def _tiers(cls, value: object) -> object:
        if isinstance(value, list):
            return [Tier(v) if isinstance(v, str) else v for v in value]
        return value

    @field_validator("themes")
    @classmethod
    def _known_tiers(cls, value: dict[str, str]) -> dict[str, str]:
        for tier in value:
            Tier(tier)
        return value


class Queue(_Strict):
    """The prospect queue item created when a contact enters prospect."""

    sla_hours: int = Field(default=24, ge=1)


class Rules(_Strict):
    """A complete, versioned rules file."""

    version: str = Field(min_length=1, max_length=40)
    breakdown_event_cap: int = Field(default=5, ge=0)
    signals: Signals = Signals()
    tiers: Tiers = Tiers()
    lifecycle: Lifecycle = Lifecycle()
    placement: Placement = Placement()
    queue: Queue = Queue()
