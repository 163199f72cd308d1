"""The result of encrypting a raw UID2 into a sharing token."""
from typing import Optional

from .encryption_status import EncryptionStatus

__all__ = ["EncryptionDataResponse"]


class EncryptionDataResponse:
    """Status and, on success, the sharing token."""

    __slots__ = ("_encryption_status", "_encrypted_data")

    def __init__(self, encryption_status: EncryptionStatus, encrypted_data: Optional[str]):
        self._encryption_status = encryption_status
        self._encrypted_data = encrypted_data

    @staticmethod
    def make_success(encrypted_data: str) -> "EncryptionDataResponse":
        return EncryptionDataResponse(EncryptionStatus.SUCCESS, encrypted_data)

    @staticmethod
    def make_error(encryption_status: EncryptionStatus) -> "EncryptionDataResponse":
        return EncryptionDataResponse(encryption_status, None)

    @property
    def success(self) -> bool:
        return self._encryption_status == EncryptionStatus.SUCCESS

    @property
    def encrypted_data(self) -> Optional[str]:
        return self._encrypted_data

    @property
    def status(self) -> EncryptionStatus:
        return self._encryption_status

    def __repr__(self) -> str:
        return f"EncryptionDataResponse(status={self._encryption_status.name}, encrypted_data={self._encrypted_data!r})"
