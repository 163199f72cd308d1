"""Normalization and hashing of emails and phone numbers (same names as ``uid2_client``).

The rules: docs/keys-and-envelope.md#normalization.

Same results as the official SDK, except ``is_phone_number_normalized``: only ASCII digits count
(docs/differences.md#phone-digits, as the Java SDK and the operator's E.164 rule); the official one accepted
any Unicode digit.
"""
from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timezone
from typing import List, Optional, Union

__all__ = [
    "EmailParsingState",
    "normalize_email_string",
    "is_phone_number_normalized",
    "is_ascii_digit",
    "base64_to_byte_array",
    "byte_array_to_base64",
    "get_base64_encoded_hash",
    "get_sha256_bytes",
    "normalize_and_hash_email",
    "normalize_and_hash_phone",
    "get_datetime_utc_iso_format",
]

_MIN_PHONE_DIGITS = 10
_MAX_PHONE_DIGITS = 15
_ASCII_DIGITS = frozenset("0123456789")


def is_phone_number_normalized(phone_number: Optional[str]) -> bool:
    """True for ``+`` followed by 10 to 15 ASCII digits (E.164), nothing else.

    Parameters
    ----------
    phone_number : str or None
        The candidate, e.g. ``"+12345678901"``.
    """
    if phone_number is None or len(phone_number) < _MIN_PHONE_DIGITS + 1 or phone_number[0] != "+":
        return False
    digits = phone_number[1:]
    return len(digits) <= _MAX_PHONE_DIGITS and _ASCII_DIGITS.issuperset(digits)


class EmailParsingState:
    """Parser states (plain ints, not an Enum: enum access is slow on 3.11, as the official notes)."""

    Starting = 1
    Pre = 2
    SubDomain = 3


def normalize_email_string(email: str) -> Optional[str]:
    """Normalize an email address the UID2 way, or return None if it is invalid.

    ASCII ``A``-``Z`` are lower-cased; leading spaces are dropped; for ``gmail.com`` exactly, dots and a
    ``+extension`` are removed from the local part; trailing spaces of the domain are dropped.
    """
    pre: List[str] = []
    pre_specialized: List[str] = []
    domain: List[str] = []
    ws_buffer: List[str] = []
    state = EmailParsingState.Starting
    in_extension = False

    for c in email:
        if "A" <= c <= "Z":
            c = chr(ord(c) + 32)
        if state == EmailParsingState.Starting:
            if c == " ":
                continue
            state = EmailParsingState.Pre
        if state == EmailParsingState.Pre:
            if c == "@":
                state = EmailParsingState.SubDomain
            elif c == ".":
                pre.append(c)
            elif c == "+":
                pre.append(c)
                in_extension = True
            else:
                pre.append(c)
                if not in_extension:
                    pre_specialized.append(c)
        else:  # SubDomain
            if c == "@":
                return None
            if c == " ":
                ws_buffer.append(c)
                continue
            if ws_buffer:
                domain.extend(ws_buffer)
                ws_buffer = []
            domain.append(c)

    if not domain:
        return None
    domain_part = "".join(domain)
    local = pre_specialized if domain_part == "gmail.com" else pre
    if not local:
        return None
    return "".join(local) + "@" + domain_part


def is_ascii_digit(d: str) -> bool:
    """True for a character in ``0``-``9``."""
    return "0" <= d <= "9"


def base64_to_byte_array(str: Union[str, bytes]) -> bytes:  # noqa: A002 - the official parameter name
    """``base64.b64decode`` (standard alphabet)."""
    return base64.b64decode(str)


def byte_array_to_base64(b: bytes) -> str:
    """Standard padded base64 as ``str``."""
    return base64.b64encode(b).decode()


def get_sha256_bytes(input: str) -> bytes:  # noqa: A002 - the official parameter name
    """SHA-256 of the UTF-8 encoding of ``input``."""
    return hashlib.sha256(input.encode()).digest()


def get_base64_encoded_hash(input: str) -> str:  # noqa: A002 - the official parameter name
    """Base64 of SHA-256 of UTF-8 ``input`` (44 characters)."""
    return base64.b64encode(hashlib.sha256(input.encode()).digest()).decode()


def normalize_and_hash_email(email: str) -> str:
    """Normalize then hash an email.

    Raises
    ------
    ValueError
        ``"invalid email address: <email>"``.
    """
    normalized = normalize_email_string(email)
    if normalized is None:
        raise ValueError("invalid email address: " + email)
    return get_base64_encoded_hash(normalized)


def normalize_and_hash_phone(phone: str) -> str:
    """Hash a phone number that is already normalized (``+`` and 10-15 ASCII digits).

    Raises
    ------
    ValueError
        ``"phone number is not normalized: <phone>"``.
    """
    if not is_phone_number_normalized(phone):
        raise ValueError("phone number is not normalized: " + phone)
    return get_base64_encoded_hash(phone)


def get_datetime_utc_iso_format(timestamp: datetime) -> str:
    """``timestamp`` in UTC as a naive ISO string (a naive input is taken as local time, as the official)."""
    return timestamp.astimezone(timezone.utc).replace(tzinfo=None).isoformat()
