"""``IdentityMapV3Response`` for ``/v3/identity/map``.

Unknown keys in the response body are ignored; the official SDK raised ``ValueError``
(docs/differences.md#identity-map-v3-keys).
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, Optional, Union

from .identity_map_v3_input import HashKind, IdentityMapV3Input
from .unmapped_identity_reason import UnmappedIdentityReason

__all__ = ["IdentityMapV3Response", "ApiResponse", "ApiIdentity", "MappedIdentity", "UnmappedIdentity"]

_HASH_KINDS = ("email_hash", "phone_hash")


class IdentityMapV3Response:
    """Mapped and unmapped identities keyed by the raw input.

    Raises
    ------
    ValueError
        A non-success status (``"Got unexpected identity map status: ..."``) or a malformed element.
    """

    def __init__(self, response: Union[str, bytes], identity_map_input: IdentityMapV3Input) -> None:
        self._init_from(json.loads(response), identity_map_input)

    @classmethod
    def _from_parsed(cls, response_json: Mapping[str, Any],
                     identity_map_input: IdentityMapV3Input) -> "IdentityMapV3Response":
        self = cls.__new__(cls)
        self._init_from(response_json, identity_map_input)
        return self

    def _init_from(self, response_json: Mapping[str, Any], identity_map_input: IdentityMapV3Input) -> None:
        self._mapped_identities: Dict[str, MappedIdentity] = {}
        self._unmapped_identities: Dict[str, UnmappedIdentity] = {}
        api_response = ApiResponse.from_json(response_json)
        self._status: str = api_response.status
        if not self.is_success():
            raise ValueError("Got unexpected identity map status: " + self._status)
        self._populate_identities(api_response.body, identity_map_input)

    def __repr__(self) -> str:
        return (f"<IdentityMapV3Response {self._status}: {len(self._mapped_identities)} mapped, "
                f"{len(self._unmapped_identities)} unmapped>")

    def _populate_identities(self, api_response: Mapping[str, List["ApiIdentity"]],
                             identity_map_input: IdentityMapV3Input) -> None:
        for identity_type, identities in api_response.items():
            self._populate_identities_for_type(identity_map_input, identity_type, identities)  # type: ignore[arg-type]

    def _populate_identities_for_type(self, identity_map_input: IdentityMapV3Input, identity_type: HashKind,
                                      identities: List["ApiIdentity"]) -> None:
        for i, api_identity in enumerate(identities):
            input_diis = identity_map_input.get_input_diis(identity_type, i)
            if not input_diis:
                continue
            if api_identity.error is None:
                mapped = MappedIdentity.from_api_identity(api_identity)
                for dii in input_diis:
                    self._mapped_identities[dii] = mapped
            else:
                for dii in input_diis:
                    self._unmapped_identities[dii] = UnmappedIdentity(api_identity.error)

    def is_success(self) -> bool:
        return self._status == "success"

    @property
    def mapped_identities(self) -> Dict[str, "MappedIdentity"]:
        """A copy of the mapped identities (as the official SDK: mutating it changes nothing)."""
        return self._mapped_identities.copy()

    @property
    def unmapped_identities(self) -> Dict[str, "UnmappedIdentity"]:
        """A copy of the unmapped identities."""
        return self._unmapped_identities.copy()

    @property
    def status(self) -> str:
        return self._status


class ApiResponse:
    """The decoded response: ``status`` and the ``email_hash``/``phone_hash`` result arrays."""

    def __init__(self, status: str, body: Dict[str, List["ApiIdentity"]]) -> None:
        self.status = status
        self.body = body

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ApiResponse":
        body = data.get("body") or {}
        if not isinstance(body, Mapping):
            raise ValueError("api response body is not an object")
        # Unknown keys (e.g. a future "email" result array) are ignored: docs/differences.md#identity-map-v3-keys.
        api_body = {k: [ApiIdentity.from_json(item) for item in body[k]] if body.get(k) else []
                    for k in _HASH_KINDS}
        return cls(status=data["status"], body=api_body)


class ApiIdentity:
    """One result element: ``u``/``p``/``r`` when mapped, ``e`` when not."""

    __slots__ = ("current_uid", "previous_uid", "refresh_from_seconds", "error")

    def __init__(self, current_uid: Optional[str], previous_uid: Optional[str],
                 refresh_from_seconds: Optional[int], error: Optional[str]) -> None:
        self.current_uid = current_uid
        self.previous_uid = previous_uid
        self.refresh_from_seconds = refresh_from_seconds
        self.error = error

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ApiIdentity":
        mapped = "u" in data and "p" in data and "r" in data
        if not mapped and "e" not in data:
            raise ValueError("api identity does not contain the correct keys")
        return cls(current_uid=data.get("u"), previous_uid=data.get("p"),
                   refresh_from_seconds=data.get("r"), error=data.get("e"))


class MappedIdentity:
    """The current raw UID, the previous one (for 90 days after a salt rotation) and when to refresh."""

    __slots__ = ("_current_uid", "_previous_uid", "_refresh_from")

    def __init__(self, current_uid: str, previous_uid: Optional[str], refresh_from_seconds: datetime) -> None:
        self._current_uid = current_uid
        self._previous_uid = previous_uid
        self._refresh_from = refresh_from_seconds

    def __repr__(self) -> str:
        return f"MappedIdentity(refresh_from={self._refresh_from.isoformat()!r})"

    @classmethod
    def from_api_identity(cls, api_identity: ApiIdentity) -> "MappedIdentity":
        if api_identity.current_uid is None or api_identity.refresh_from_seconds is None:
            raise ValueError("Mapped identity cannot be created from API identity with missing current_uid "
                             "or refresh_from_seconds")
        return cls(api_identity.current_uid, api_identity.previous_uid,
                   datetime.fromtimestamp(api_identity.refresh_from_seconds, tz=timezone.utc))

    @property
    def current_raw_uid(self) -> str:
        return self._current_uid

    @property
    def previous_raw_uid(self) -> Optional[str]:
        return self._previous_uid

    @property
    def refresh_from(self) -> datetime:
        return self._refresh_from


class UnmappedIdentity:
    """Why an input was not mapped: ``reason`` (enum) and ``raw_reason`` (the operator's string)."""

    __slots__ = ("_reason", "_raw_reason")

    def __init__(self, reason: str) -> None:
        self._reason = UnmappedIdentityReason.from_string(reason)
        self._raw_reason = reason

    def __repr__(self) -> str:
        return f"UnmappedIdentity(reason={self._reason.name})"

    @property
    def reason(self) -> UnmappedIdentityReason:
        return self._reason

    @property
    def raw_reason(self) -> str:
        return self._raw_reason
