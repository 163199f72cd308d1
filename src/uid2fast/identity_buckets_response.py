"""``IdentityBucketsResponse`` for ``/v2/identity/buckets``."""
from __future__ import annotations

import json
from typing import Any, List, Mapping, Optional, Union

__all__ = ["IdentityBucketsResponse", "Bucket"]


class IdentityBucketsResponse:
    """The salt buckets rotated since a time.

    Raises
    ------
    ValueError
        A non-success status.
    """

    def __init__(self, response: Union[str, bytes]) -> None:
        self._buckets: List[Bucket] = []
        response_json = json.loads(response)
        self._status: str = response_json["status"]
        if not self.is_success():
            raise ValueError("Got unexpected identity buckets status: " + self._status)
        for bucket in response_json["body"]:
            self._buckets.append(Bucket.from_json(bucket))

    def __repr__(self) -> str:
        return f"<IdentityBucketsResponse {self._status}: {len(self._buckets)} buckets>"

    def is_success(self) -> bool:
        return self._status == "success"

    @property
    def buckets(self) -> List["Bucket"]:
        return self._buckets

    @property
    def status(self) -> str:
        return self._status


class Bucket:
    """A salt bucket id and when it last rotated (the operator's ISO string, UTC, no offset)."""

    def __init__(self, bucket_id: Optional[str], last_updated: Optional[str]) -> None:
        self._bucket_id = bucket_id
        self._last_updated = last_updated

    def __repr__(self) -> str:
        return f"Bucket({self._bucket_id!r}, {self._last_updated!r})"

    def get_bucket_id(self) -> Optional[str]:
        return self._bucket_id

    def get_last_updated(self) -> Optional[str]:
        return self._last_updated

    @staticmethod
    def from_json(json_obj: Mapping[str, Any]) -> "Bucket":
        return Bucket(json_obj.get("bucket_id"), json_obj.get("last_updated"))
