"""``IdentityMapV3Input``: a builder of emails, phones and hashes for ``/v3/identity/map``."""
from __future__ import annotations

import json
from typing import Dict, List, Sequence, Tuple

from .input_util import normalize_and_hash_email, normalize_and_hash_phone

from typing import Literal

__all__ = ["IdentityMapV3Input"]

HashKind = Literal["email_hash", "phone_hash"]


class IdentityMapV3Input:
    """Emails and/or phone numbers (raw or hashed) to map; types may be mixed.

    Raw values are normalized and hashed as they are added (``ValueError`` if invalid).
    """

    def __init__(self) -> None:
        self._hashed_dii_to_raw_diis: Dict[str, List[str]] = {}
        self._hashed_emails: List[str] = []
        self._hashed_phones: List[str] = []

    def __repr__(self) -> str:
        return f"<IdentityMapV3Input {len(self._hashed_emails)} emails, {len(self._hashed_phones)} phones>"

    @staticmethod
    def from_emails(emails: Sequence[str]) -> "IdentityMapV3Input":
        return IdentityMapV3Input().with_emails(emails)

    @staticmethod
    def from_phones(phones: Sequence[str]) -> "IdentityMapV3Input":
        return IdentityMapV3Input().with_phones(phones)

    @staticmethod
    def from_hashed_emails(hashed_emails: Sequence[str]) -> "IdentityMapV3Input":
        return IdentityMapV3Input().with_hashed_emails(hashed_emails)

    @staticmethod
    def from_hashed_phones(hashed_phones: Sequence[str]) -> "IdentityMapV3Input":
        return IdentityMapV3Input().with_hashed_phones(hashed_phones)

    def with_emails(self, emails: Sequence[str]) -> "IdentityMapV3Input":
        for email in emails:
            self.with_email(email)
        return self

    def with_email(self, email: str) -> "IdentityMapV3Input":
        hashed = normalize_and_hash_email(email)
        self._hashed_emails.append(hashed)
        self._add_to_dii_mappings(hashed, email)
        return self

    def with_phones(self, phones: Sequence[str]) -> "IdentityMapV3Input":
        for phone in phones:
            self.with_phone(phone)
        return self

    def with_phone(self, phone: str) -> "IdentityMapV3Input":
        hashed = normalize_and_hash_phone(phone)
        self._hashed_phones.append(hashed)
        self._add_to_dii_mappings(hashed, phone)
        return self

    def with_hashed_emails(self, hashed_emails: Sequence[str]) -> "IdentityMapV3Input":
        for hashed in hashed_emails:
            self.with_hashed_email(hashed)
        return self

    def with_hashed_email(self, hashed_email: str) -> "IdentityMapV3Input":
        self._hashed_emails.append(hashed_email)
        self._add_to_dii_mappings(hashed_email, hashed_email)
        return self

    def with_hashed_phones(self, hashed_phones: Sequence[str]) -> "IdentityMapV3Input":
        for hashed in hashed_phones:
            self.with_hashed_phone(hashed)
        return self

    def with_hashed_phone(self, hashed_phone: str) -> "IdentityMapV3Input":
        self._hashed_phones.append(hashed_phone)
        self._add_to_dii_mappings(hashed_phone, hashed_phone)
        return self

    def get_input_diis(self, identity_type: HashKind, index: int) -> List[str]:
        """The raw inputs behind the ``index``-th hash of a type."""
        return self._hashed_dii_to_raw_diis.get(self._get_hashed_dii(identity_type, index), [])

    def _add_to_dii_mappings(self, hashed_dii: str, raw_dii: str) -> None:
        self._hashed_dii_to_raw_diis.setdefault(hashed_dii, []).append(raw_dii)

    def _get_hashed_dii(self, identity_type: HashKind, index: int) -> str:
        if identity_type == "email_hash":
            return self._hashed_emails[index]
        if identity_type == "phone_hash":
            return self._hashed_phones[index]
        raise ValueError(f"Unexpected identity type: {identity_type}")

    def get_identity_map_input_as_json_string(self) -> str:
        return json.dumps({"email_hash": self._hashed_emails, "phone_hash": self._hashed_phones})

    # -- uid2fast: chunking ------------------------------------------------------------------------
    def _size(self) -> int:
        return len(self._hashed_emails) + len(self._hashed_phones)

    def _chunk_json_strings(self, chunk_size: int) -> List[str]:
        """Request JSONs of at most ``chunk_size`` hashes in total, emails first then phones, in order.

        Concatenating the chunks' result arrays per type gives the index-aligned arrays of one request.
        """
        n_e = len(self._hashed_emails)
        out: List[str] = []
        for start in range(0, self._size(), chunk_size):
            stop = start + chunk_size
            e: Tuple[int, int] = (min(start, n_e), min(stop, n_e))
            p: Tuple[int, int] = (max(start - n_e, 0), max(stop - n_e, 0))
            out.append(json.dumps({"email_hash": self._hashed_emails[e[0]:e[1]],
                                   "phone_hash": self._hashed_phones[p[0]:p[1]]}))
        return out
