"""``IdentityTokens``: the identity returned by ``/v2/token/generate`` and ``/v2/token/refresh``.

Timestamps are epoch milliseconds, and are compared with milliseconds; the official SDK compared seconds
with milliseconds, so ``is_due_for_refresh`` was never true (docs/differences.md#identity-tokens-ms).
"""
from __future__ import annotations

import datetime
import json
import logging
from typing import Any, Mapping, Optional

__all__ = ["IdentityTokens"]

logger = logging.getLogger("uid2fast.publisher")


def _ms(timestamp: datetime.datetime) -> float:
    # A naive datetime is local time, as datetime.timestamp() takes it (the official behaviour).
    return timestamp.timestamp() * 1000.0


class IdentityTokens:
    """Advertising token, refresh token, refresh response key and their lifetimes (ms)."""

    def __init__(self, advertising_token: Optional[str], refresh_token: Optional[str],
                 refresh_response_key: Optional[str], identity_expires: Optional[int],
                 refresh_expires: Optional[int], refresh_from: Optional[int], json_string: str) -> None:
        self._advertising_token = advertising_token
        self._refresh_token = refresh_token
        self._refresh_response_key = refresh_response_key
        self._identity_expires = identity_expires
        self._refresh_expires = refresh_expires
        self._refresh_from = refresh_from
        self._json_string = json_string

    def __repr__(self) -> str:
        # Tokens and the response key are bearer credentials: never in a repr.
        return (f"IdentityTokens(identity_expires={self._identity_expires}, refresh_expires="
                f"{self._refresh_expires}, refresh_from={self._refresh_from})")

    @staticmethod
    def from_json_string(json_string: str) -> Optional["IdentityTokens"]:
        """Parse :meth:`get_json_string` output; logs and returns None for invalid JSON (as the official)."""
        assert json_string is not None, "jsonString must not be null"
        try:
            return IdentityTokens.from_json(json.loads(json_string))
        except json.JSONDecodeError:
            logger.warning("Invalid json string")
            return None
        except KeyError:
            logger.warning("Missing field in json string")
            return None

    @staticmethod
    def from_json(json_obj: Mapping[str, Any]) -> "IdentityTokens":
        return IdentityTokens(
            json_obj.get("advertising_token"),
            json_obj.get("refresh_token"),
            json_obj.get("refresh_response_key"),
            json_obj.get("identity_expires"),
            json_obj.get("refresh_expires"),
            json_obj.get("refresh_from"),
            json.dumps(json_obj),
        )

    def is_due_for_refresh(self) -> bool:
        """True once ``refresh_from`` has passed (or the identity expired)."""
        return self.is_due_for_refresh_impl(datetime.datetime.now(datetime.timezone.utc))

    def get_advertising_token(self) -> Optional[str]:
        return self._advertising_token

    def get_refresh_token(self) -> Optional[str]:
        return self._refresh_token

    def get_json_string(self) -> str:
        """The identity JSON (keeps every field the operator sent, e.g. ``user_token``)."""
        return self._json_string

    def is_refreshable(self) -> bool:
        """True while the refresh token has not expired."""
        return self.is_refreshable_impl(datetime.datetime.now(datetime.timezone.utc))

    def is_refreshable_impl(self, timestamp: datetime.datetime) -> bool:
        if self._refresh_expires is None or _ms(timestamp) > self._refresh_expires:
            return False
        return self._refresh_token is not None

    def is_due_for_refresh_impl(self, timestamp: datetime.datetime) -> bool:
        return _ms(timestamp) > self._refresh_from or self.has_identity_expired(timestamp)  # type: ignore[operator]

    def has_identity_expired(self, timestamp: datetime.datetime) -> bool:
        return _ms(timestamp) > self._identity_expires  # type: ignore[operator]

    def get_refresh_response_key(self) -> Optional[str]:
        return self._refresh_response_key

    def get_identity_expires(self) -> Optional[int]:
        return self._identity_expires

    def get_refresh_expires(self) -> Optional[int]:
        return self._refresh_expires

    def get_refresh_from(self) -> Optional[int]:
        return self._refresh_from
