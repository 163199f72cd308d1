"""``TokenGenerateInput``: what ``/v2/token/generate`` is asked to tokenize.

See docs/keys-and-envelope.md#token-generate.
"""
from __future__ import annotations

import functools
import json
import warnings
from typing import Any, Callable, Dict, Optional, TypeVar

from .identity_type import IdentityType
from .input_util import (  # the official module star-imports input_util; keep its names here
    EmailParsingState,
    base64_to_byte_array,
    byte_array_to_base64,
    get_base64_encoded_hash,
    get_datetime_utc_iso_format,
    get_sha256_bytes,
    is_ascii_digit,
    is_phone_number_normalized,
    normalize_and_hash_email,
    normalize_and_hash_phone,
    normalize_email_string,
)

# Besides the class, the names the official module has (it star-imports input_util).
__all__ = ["TokenGenerateInput", "EmailParsingState", "base64_to_byte_array", "byte_array_to_base64",
           "get_base64_encoded_hash", "get_datetime_utc_iso_format", "get_sha256_bytes", "is_ascii_digit",
           "is_phone_number_normalized", "normalize_and_hash_email", "normalize_and_hash_phone",
           "normalize_email_string"]

F = TypeVar("F", bound=Callable[..., Any])


def _deprecated(message: str) -> Callable[[F], F]:
    """Mark a method deprecated: a ``DeprecationWarning`` at call time and ``__deprecated__`` (PEP 702)."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            warnings.warn(message, DeprecationWarning, stacklevel=2)
            return func(*args, **kwargs)

        wrapper.__deprecated__ = message  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


class TokenGenerateInput:
    """An email, phone number or hash to generate a token for.

    Build it with :meth:`from_email`, :meth:`from_phone`, :meth:`from_hashed_email` or
    :meth:`from_hashed_phone`. Raw values are normalized and hashed before sending unless
    :meth:`do_not_hash` is called.
    """

    def __init__(self, identity_type: IdentityType, email_or_phone: str, need_hash: bool,
                 already_hashed: bool) -> None:
        self.identity_type = identity_type
        self.email_or_phone = email_or_phone
        self.need_hash = need_hash
        self.already_hashed = already_hashed
        self.transparency_and_consent_string: Optional[str] = None

    def __repr__(self) -> str:
        # The identity itself is personal data: keep it out of logs.
        return (f"TokenGenerateInput(identity_type={IdentityType(self.identity_type).name}, "
                f"need_hash={self.need_hash}, already_hashed={self.already_hashed})")

    @staticmethod
    def from_email(email: str) -> "TokenGenerateInput":
        return TokenGenerateInput(IdentityType.Email, email, True, False)

    @staticmethod
    def from_phone(phone: str) -> "TokenGenerateInput":
        return TokenGenerateInput(IdentityType.Phone, phone, True, False)

    @staticmethod
    def from_hashed_email(hashed_email: str) -> "TokenGenerateInput":
        return TokenGenerateInput(IdentityType.Email, hashed_email, False, True)

    @staticmethod
    def from_hashed_phone(hashed_phone: str) -> "TokenGenerateInput":
        return TokenGenerateInput(IdentityType.Phone, hashed_phone, False, True)

    def with_transparency_and_consent_string(self, tc_string: str) -> "TokenGenerateInput":
        """Send a TCF consent string (EUID)."""
        self.transparency_and_consent_string = tc_string
        return self

    def do_not_hash(self) -> "TokenGenerateInput":
        """Send the raw ``email``/``phone`` instead of its hash."""
        self.need_hash = False
        return self

    @_deprecated("The optout_check/policy parameter has been removed from /token/generate")
    def do_not_generate_tokens_for_opted_out(self) -> "TokenGenerateInput":
        """Deprecated no-op: the operator never generates tokens for opted-out users."""
        return self

    def get_as_json_string(self) -> str:
        """The request JSON, spaced like ``json.dumps``."""
        if self.already_hashed:
            return self.create_already_hashed_json_request_for_generate_token()
        if self.need_hash:
            return self.create_hashed_json_request_for_generate_token()
        return self.create_json_request_for_generate_token()

    def create_json_request_for_generate_token(self) -> str:
        prop = "email" if self.identity_type == IdentityType.Email else "phone"
        return self._create_json_request_for_generate_token(prop, self.email_or_phone,
                                                            self.transparency_and_consent_string)

    @staticmethod
    def _create_json_request_for_generate_token(prop: str, value: str, tc_string: Optional[str]) -> str:
        obj: Dict[str, Any] = {prop: value}
        if tc_string is not None:
            obj["tcf_consent_string"] = tc_string
        return json.dumps(obj)

    def create_hashed_json_request_for_generate_token(self) -> str:
        if self.identity_type == IdentityType.Email:
            normalized = normalize_email_string(self.email_or_phone)
            if normalized is None:
                raise ValueError("invalid email address")
            return self._create_json_request_for_generate_token("email_hash", get_base64_encoded_hash(normalized),
                                                                self.transparency_and_consent_string)
        if not is_phone_number_normalized(self.email_or_phone):
            raise ValueError("phone number is not normalized")
        return self._create_json_request_for_generate_token("phone_hash",
                                                            get_base64_encoded_hash(self.email_or_phone),
                                                            self.transparency_and_consent_string)

    def create_already_hashed_json_request_for_generate_token(self) -> str:
        prop = "email_hash" if self.identity_type == IdentityType.Email else "phone_hash"
        return self._create_json_request_for_generate_token(prop, self.email_or_phone,
                                                            self.transparency_and_consent_string)
