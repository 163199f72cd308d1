"""``IdentityMapResponse`` for ``/v2/identity/map``."""
from __future__ import annotations

import json
from typing import Any, Dict, Mapping, Optional, Union

__all__ = ["IdentityMapResponse", "MappedIdentity", "UnmappedIdentity"]


class IdentityMapResponse:
    """``mapped_identities`` / ``unmapped_identities`` keyed by the raw input.

    Raises
    ------
    ValueError
        A non-success status: ``"Got unexpected identity map status: ..."``.
    """

    def __init__(self, response: Union[str, bytes], identity_map_input: Any) -> None:
        self._init_from(json.loads(response), identity_map_input)

    @classmethod
    def _from_parsed(cls, response_json: Mapping[str, Any], identity_map_input: Any) -> "IdentityMapResponse":
        """Build from an already parsed response (the merge of chunked requests)."""
        self = cls.__new__(cls)
        self._init_from(response_json, identity_map_input)
        return self

    def _init_from(self, response_json: Mapping[str, Any], identity_map_input: Any) -> None:
        self._mapped_identities: Dict[str, MappedIdentity] = {}
        self._unmapped_identities: Dict[str, UnmappedIdentity] = {}
        self._status: str = response_json["status"]
        if not self.is_success():
            raise ValueError("Got unexpected identity map status: " + self._status)
        body = response_json["body"]
        for identity in body.get("mapped", []):
            mapped = MappedIdentity.from_json(identity)
            for raw_dii in identity_map_input.get_raw_diis(identity["identifier"]):
                self._mapped_identities[raw_dii] = mapped
        for identity in body.get("unmapped", []):
            unmapped = UnmappedIdentity.from_json(identity)
            for raw_dii in identity_map_input.get_raw_diis(identity["identifier"]):
                self._unmapped_identities[raw_dii] = unmapped

    def __repr__(self) -> str:
        return (f"<IdentityMapResponse {self._status}: {len(self._mapped_identities)} mapped, "
                f"{len(self._unmapped_identities)} unmapped>")

    @staticmethod
    def _get_raw_diis(identity: Mapping[str, Any], identity_map_input: Any) -> Any:
        return identity_map_input.get_raw_diis(identity["identifier"])

    def is_success(self) -> bool:
        return self._status == "success"

    @property
    def mapped_identities(self) -> Dict[str, "MappedIdentity"]:
        return self._mapped_identities

    @property
    def unmapped_identities(self) -> Dict[str, "UnmappedIdentity"]:
        return self._unmapped_identities

    @property
    def status(self) -> str:
        return self._status


class MappedIdentity:
    """A v2 mapping: the raw UID (``advertising_id``) and its salt bucket."""

    def __init__(self, raw_uid: Optional[str], bucket_id: Optional[str]) -> None:
        self._raw_uid = raw_uid
        self._bucket_id = bucket_id

    def __repr__(self) -> str:
        return f"MappedIdentity(bucket_id={self._bucket_id!r})"

    def get_raw_uid(self) -> Optional[str]:
        return self._raw_uid

    def get_bucket_id(self) -> Optional[str]:
        return self._bucket_id

    @staticmethod
    def from_json(json_obj: Mapping[str, Any]) -> "MappedIdentity":
        return MappedIdentity(json_obj.get("advertising_id"), json_obj.get("bucket_id"))


class UnmappedIdentity:
    """A v2 input that was not mapped, with the operator's ``reason`` string."""

    def __init__(self, reason: Optional[str]) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"UnmappedIdentity(reason={self.reason!r})"

    def get_reason(self) -> Optional[str]:
        return self.reason

    @staticmethod
    def from_json(json_obj: Mapping[str, Any]) -> "UnmappedIdentity":
        return UnmappedIdentity(json_obj.get("reason"))
