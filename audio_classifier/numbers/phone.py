"""Phone numbers to E.164, with the reason a number is refused."""

from __future__ import annotations

import phonenumbers

from ..errors import AudioClassifierError

DEFAULT_REGION = "CN"
"""Region of numbers written without a country code."""


class InvalidNumber(AudioClassifierError, ValueError):
    """A number that is malformed or cannot exist; the message says which."""


_PARSE_REASONS = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "no such country code",
    phonenumbers.NumberParseException.NOT_A_NUMBER: "not a phone number",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
    phonenumbers.NumberParseException.TOO_LONG: "too long",
}


_REASONS = {
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "no such country code",
    phonenumbers.ValidationResult.TOO_SHORT: "too short",
    phonenumbers.ValidationResult.TOO_LONG: "too long",
    phonenumbers.ValidationResult.INVALID_LENGTH: "a length no number of its region has",
}


def normalise(text: str, region: str = DEFAULT_REGION) -> str:
    """*text* as E.164 (``+8613800138000``); raises :class:`InvalidNumber` with the reason."""
    text = (text or "").strip()
    if not text:
        raise InvalidNumber("empty")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumber(_PARSE_REASONS.get(exc.error_type, "not a phone number")) from None
    if not phonenumbers.is_possible_number(number):
        reason = _REASONS.get(phonenumbers.is_possible_number_with_reason(number), "impossible")
        raise InvalidNumber(f"impossible number: {reason}")
    if not phonenumbers.is_valid_number(number):
        raise InvalidNumber("no such number range in its region's numbering plan")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
