"""``IdentityMapInput``: emails, phones or their hashes for ``/v2/identity/map``."""
from __future__ import annotations

import json
from typing import Dict, List, Optional, Sequence

from .identity_type import IdentityType
from .input_util import normalize_and_hash_email, normalize_and_hash_phone

__all__ = ["IdentityMapInput"]


class IdentityMapInput:
    """One identity type; raw inputs are normalized and hashed (invalid ones raise ``ValueError``).

    ``hashed_dii_to_raw_diis`` maps each hash back to every raw input that produced it, so duplicates and
    inputs that normalize alike all get their result.
    """

    def __init__(self, identity_type: IdentityType, emails_or_phones: Sequence[str], already_hashed: bool) -> None:
        self.hashed_dii_to_raw_diis: Dict[str, List[str]] = {}
        self.hashed_normalized_emails: Optional[List[str]] = None
        self.hashed_normalized_phones: Optional[List[str]] = None
        if already_hashed:
            hashes = emails_or_phones
        else:
            hash_one = normalize_and_hash_email if identity_type == IdentityType.Email else normalize_and_hash_phone
            hashes = []
            for dii in emails_or_phones:
                hashed = hash_one(dii)
                self._add_hashed_to_raw_dii_mapping(hashed, dii)
                hashes.append(hashed)
        if identity_type == IdentityType.Email:
            self.hashed_normalized_emails = hashes  # type: ignore[assignment]
        else:
            self.hashed_normalized_phones = hashes  # type: ignore[assignment]

    def __repr__(self) -> str:
        n = len(self.hashed_normalized_emails or self.hashed_normalized_phones or ())
        kind = "emails" if self.hashed_normalized_emails is not None else "phones"
        return f"<IdentityMapInput {n} {kind}>"

    @staticmethod
    def from_emails(emails: Sequence[str]) -> "IdentityMapInput":
        return IdentityMapInput(IdentityType.Email, emails, False)

    @staticmethod
    def from_phones(phones: Sequence[str]) -> "IdentityMapInput":
        return IdentityMapInput(IdentityType.Phone, phones, False)

    @staticmethod
    def from_hashed_emails(hashed_emails: Sequence[str]) -> "IdentityMapInput":
        return IdentityMapInput(IdentityType.Email, hashed_emails, True)

    @staticmethod
    def from_hashed_phones(hashed_phones: Sequence[str]) -> "IdentityMapInput":
        return IdentityMapInput(IdentityType.Phone, hashed_phones, True)

    def _add_hashed_to_raw_dii_mapping(self, hashed_dii: str, raw_dii: str) -> None:
        self.hashed_dii_to_raw_diis.setdefault(hashed_dii, []).append(raw_dii)

    def get_raw_diis(self, identifier: str) -> List[str]:
        """The raw inputs behind a hash (the hash itself for hashed input)."""
        if len(self.hashed_dii_to_raw_diis) <= 0:
            return [identifier]
        return self.hashed_dii_to_raw_diis[identifier]

    def get_identity_map_input_as_json_string(self) -> str:
        json_object = {"email_hash": self.hashed_normalized_emails, "phone_hash": self.hashed_normalized_phones}
        return json.dumps({k: v for k, v in json_object.items() if v is not None})

    # -- uid2fast: chunking ------------------------------------------------------------------------
    def _hashes(self) -> Sequence[str]:
        emails = self.hashed_normalized_emails
        return emails if emails is not None else (self.hashed_normalized_phones or [])

    def _size(self) -> int:
        return len(self._hashes())

    def _chunk_json_strings(self, chunk_size: int) -> List[str]:
        """Request JSONs of at most ``chunk_size`` hashes each, in input order."""
        key = "email_hash" if self.hashed_normalized_emails is not None else "phone_hash"
        hashes = list(self._hashes())
        return [json.dumps({key: hashes[i:i + chunk_size]}) for i in range(0, len(hashes), chunk_size)]
