"""The sign-up form's rules: screening questions (门槛) per campaign and server-side validation."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from crm.contacts.normalize import clean_name, clean_text, normalize_phone, normalize_wechat_id
from crm.core.errors import ConfigError, Problem

QUESTIONS_PATH = Path(__file__).parent / "signup_questions.toml"
MAX_ANSWER = 200
MAX_NAME = 50


@dataclass(frozen=True)
class Question:
    """One screening question; ``choice`` answers must be one of ``options``. ``label_en`` and
    ``options_en`` are what an English page shows (the answer stored is still the option)."""

    id: str
    label: str
    kind: str = "text"
    options: tuple[str, ...] = ()
    required: bool = False
    label_en: str | None = None
    options_en: tuple[str, ...] = ()

    def shown(self, lang: str) -> tuple[str, tuple[tuple[str, str], ...]]:
        """The label and (value, words) of each option on a page in ``lang``."""
        english = lang == "en"
        label = self.label_en if english and self.label_en else self.label
        words = self.options_en if english and self.options_en else self.options
        return label, tuple(zip(self.options, words, strict=True))


@dataclass
class Submission:
    """A checked sign-up: the cleaned values and the errors to show (field -> problem, worded
    in the reader's language by the page)."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, Problem] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the form can be stored."""
        return not self.errors


def _parse(doc: dict[str, Any], source: Path) -> dict[str, tuple[Question, ...]]:
    sets: dict[str, tuple[Question, ...]] = {}
    for campaign, section in doc.items():
        questions = []
        for q in section.get("questions", []):
            try:
                question = Question(
                    id=str(q["id"]),
                    label=str(q["label"]),
                    kind=str(q.get("kind", "text")),
                    options=tuple(str(o) for o in q.get("options", [])),
                    required=bool(q.get("required", False)),
                    label_en=str(q["label_en"]) if "label_en" in q else None,
                    options_en=tuple(str(o) for o in q.get("options_en", [])),
                )
            except (KeyError, TypeError) as exc:
                raise ConfigError(
                    "error.intake.question_incomplete", path=str(source), campaign=campaign
                ) from exc
            if question.options_en and len(question.options_en) != len(question.options):
                raise ConfigError(
                    "error.intake.question_options_en",
                    path=str(source),
                    campaign=campaign,
                    question=question.id,
                )
            if question.kind not in ("text", "choice") or (
                question.kind == "choice" and not question.options
            ):
                raise ConfigError(
                    "error.intake.question_kind",
                    path=str(source),
                    campaign=campaign,
                    question=question.id,
                )
            questions.append(question)
        sets[campaign] = tuple(questions)
    if "default" not in sets:
        raise ConfigError("error.intake.questions_no_default", path=str(source))
    return sets


@cache
def load_questions(path: Path = QUESTIONS_PATH) -> dict[str, tuple[Question, ...]]:
    """Question sets keyed by campaign, read once from the TOML file."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            "error.intake.questions_unreadable", path=str(path), detail=str(exc)
        ) from exc
    return _parse(doc, path)


def questions_for(campaign: str | None, path: Path = QUESTIONS_PATH) -> tuple[Question, ...]:
    """The campaign's screening questions, or the default set."""
    sets = load_questions(path)
    return sets.get(campaign or "", sets["default"])


def validate_signup(form: dict[str, str], questions: tuple[Question, ...]) -> Submission:
    """Check a posted form: consent, a reachable identity (phone or WeChat id), the answers."""
    result = Submission()
    name = clean_name(form.get("name"))
    if not name:
        result.errors["name"] = Problem("signup.error.name_missing")
    elif len(name) > MAX_NAME:
        result.errors["name"] = Problem("signup.error.name_long", limit=MAX_NAME)
    else:
        result.values["name"] = name
    phone_raw, wechat_raw = clean_text(form.get("phone")), clean_text(form.get("wechat_id"))
    if not phone_raw and not wechat_raw:
        result.errors["phone"] = Problem("signup.error.reach_missing")
    if phone_raw:
        phone = normalize_phone(phone_raw[:40])
        if phone.value is None:
            result.errors["phone"] = Problem("signup.error.phone_bad")
        else:
            result.values["phone"] = phone.value
    if wechat_raw:
        wechat = normalize_wechat_id(wechat_raw[:40])
        if wechat.value is None:
            result.errors["wechat_id"] = Problem("signup.error.wechat_bad")
        else:
            result.values["wechat_id"] = wechat.value
    if form.get("consent") not in ("1", "on", "yes", "true"):
        result.errors["consent"] = Problem("signup.error.consent_missing")
    answers: dict[str, str] = {}
    for q in questions:
        answer = clean_text(form.get(f"q_{q.id}"))[: MAX_ANSWER + 1]
        if not answer:
            if q.required:
                result.errors[f"q_{q.id}"] = Problem("signup.error.answer_required")
            continue
        if q.kind == "choice" and answer not in q.options:
            result.errors[f"q_{q.id}"] = Problem("signup.error.choose_one")
        elif len(answer) > MAX_ANSWER:
            result.errors[f"q_{q.id}"] = Problem("signup.error.answer_long", limit=MAX_ANSWER)
        else:
            answers[q.id] = answer
    result.values["consent"] = "consent" not in result.errors
    result.values["answers"] = answers
    return result
