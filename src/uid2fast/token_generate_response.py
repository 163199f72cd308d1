"""``TokenGenerateResponse``: the decrypted ``/v2/token/generate`` response."""
from __future__ import annotations

import json
from typing import Any, Dict, Optional, Union

from .identity_tokens import IdentityTokens

__all__ = ["TokenGenerateResponse"]


class TokenGenerateResponse:
    """``status`` (``success`` or ``optout``) and ``tokens`` (None on opt-out).

    Raises
    ------
    ValueError
        For any other status: ``"Got unexpected token generate status: ..."``.
    """

    def __init__(self, response: Union[str, bytes]) -> None:
        response_json = json.loads(response)
        self.status: str = response_json["status"]
        self.tokens: Optional[IdentityTokens] = None
        if self.is_optout():
            return
        if not self.is_success():
            raise ValueError("Got unexpected token generate status: " + self.status)
        self.tokens = IdentityTokens.from_json(self.get_body_as_json(response_json))

    def __repr__(self) -> str:
        return f"TokenGenerateResponse(status={self.status!r})"

    def get_identity_json_string(self) -> Optional[str]:
        return self.get_identity().get_json_string() if self.is_success() else None  # type: ignore[union-attr]

    def is_success(self) -> bool:
        return self.status == "success"

    def is_optout(self) -> bool:
        return self.status == "optout"

    def get_identity(self) -> Optional[IdentityTokens]:
        return self.tokens

    @staticmethod
    def get_body_as_json(json_response: Dict[str, Any]) -> Any:
        return json_response["body"]
