"""``TokenRefreshResponse``: the decrypted ``/v2/token/refresh`` response."""
from __future__ import annotations

import datetime
import json
from typing import Any, Dict, Optional, Union

from .identity_tokens import IdentityTokens

__all__ = ["TokenRefreshResponse"]


class TokenRefreshResponse:
    """``status`` (``success`` or ``optout``) and the refreshed identity.

    On success the identity must be refreshable and unexpired at ``timestamp`` (checked in milliseconds,
    docs/differences.md#identity-tokens-ms, so unlike the official SDK the check really applies).

    Raises
    ------
    Exception
        ``"Got unexpected token refresh status: ..."`` or ``"Invalid identity in token refresh response"``.
    """

    def __init__(self, response: Union[str, bytes], timestamp: datetime.datetime) -> None:
        response_json = json.loads(response)
        self.status: str = response_json["status"]
        self.refreshed_identity: Optional[IdentityTokens] = None
        if self.is_optout():
            return
        if not self.is_success():
            raise Exception("Got unexpected token refresh status: " + self.status)
        identity = IdentityTokens.from_json(self.get_body_as_json(response_json))
        self.refreshed_identity = identity
        if not identity.is_refreshable_impl(timestamp) or identity.has_identity_expired(timestamp):
            # The official message appends the whole response (tokens included); we keep the lifetimes only.
            raise Exception("Invalid identity in token refresh response: " + repr(identity))

    def __repr__(self) -> str:
        return f"TokenRefreshResponse(status={self.status!r})"

    def get_identity_json_string(self) -> Optional[str]:
        return self.get_identity().get_json_string() if self.is_success() else None  # type: ignore[union-attr]

    def is_success(self) -> bool:
        return self.status == "success"

    def is_optout(self) -> bool:
        return self.status == "optout"

    def get_identity(self) -> Optional[IdentityTokens]:
        return self.refreshed_identity if self.is_success() else None

    @staticmethod
    def get_body_as_json(json_response: Dict[str, Any]) -> Any:
        return json_response["body"]
