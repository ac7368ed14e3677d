"""The mainland-mobile fast path agrees with the full phonenumbers parser on every prefix."""

from __future__ import annotations

import phonenumbers

from crm.contacts.normalize import normalize_phone


def _parser_says(national: str) -> str | None:
    parsed = phonenumbers.parse(national, "CN")
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def test_every_five_digit_mobile_prefix_agrees_with_phonenumbers():
    disagree = []
    for prefix in range(10000, 20000):  # 1xxxx: every mainland mobile block and its neighbours
        for tail in ("000000", "512345"):
            national = f"{prefix}{tail}"
            ours = normalize_phone(national)
            if ours.value != _parser_says(national):
                disagree.append((national, ours.value))
    assert disagree == []


def test_unassigned_prefixes_are_invalid_and_assigned_ones_mobile():
    for typo in ("14012345678", "15412345678", "16012345678", "17412345678", "19412345678"):
        norm = normalize_phone(typo)
        assert norm.value is None and norm.flags.get("invalid"), typo
    for good in ("13800138000", "+86 147 1234 5678", "17400123456", "0086 199 1234 5678"):
        norm = normalize_phone(good)
        assert norm.value is not None and norm.flags["type"] == "mobile", good
