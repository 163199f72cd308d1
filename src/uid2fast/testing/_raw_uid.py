"""Raw UIDs as the operator mints them, for :class:`~uid2fast.testing.LocalOperator`.

The layouts (docs/formats.md#raw-uid):

* v2, legacy: 32 bytes, ``SHA-256(base64(first-level hash) || rotating salt)``;
* v3: a metadata byte ``scope << 4 | type << 2`` followed by that 32-byte hash;
* v4: 33 bytes, ``metadata | key id (3) | IV (12) | AES-256-CTR(last 16 bytes of the first-level hash) |
  XOR checksum (1)``, where the metadata byte adds ``env << 6 | 1 << 5`` and the IV is the first 12 bytes of
  ``SHA-256(key salt || hash tail || metadata || key id)``.

The first-level hash is ``SHA-256(identity hash (base64 text) || first-level salt)``. The salts and the v4
key material here derive from the operator's seed, per salt bucket and rotation, so the same seed gives the
same raw UIDs and a rotation changes them.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Tuple

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = ["RawUidMinter", "ENVIRONMENTS"]

ENVIRONMENTS = {"test": 0, "integ": 1, "prod": 2}
_TYPES = {"email": 0, "phone": 1}


class RawUidMinter:
    """Mints the raw UID of an identity for a salt bucket and its rotation count."""

    def __init__(self, seed: bytes, scope: str, version: int = 4, environment: str = "integ") -> None:
        if version not in (2, 3, 4):
            raise ValueError(f"raw_uid_version must be 2, 3 or 4, got {version!r}")
        if environment not in ENVIRONMENTS:
            raise ValueError(f"environment must be one of {sorted(ENVIRONMENTS)}, got {environment!r}")
        self._seed = bytes(seed)
        self._scope = 1 if scope == "EUID" else 0
        self.version = version
        self._env = ENVIRONMENTS[environment]
        self._first_level_salt = self._derive("first-level-salt").decode()

    def _derive(self, label: str) -> bytes:
        # 32 printable characters (the operator's salts and keys are strings)
        return base64.b64encode(hmac.new(self._seed, label.encode(), hashlib.sha256).digest())[:32]

    def metadata(self, kind: str) -> int:
        meta = self._scope << 4 | _TYPES[kind] << 2
        if self.version == 4:
            meta |= self._env << 6 | 1 << 5
        return meta

    def _key_material(self, bucket: int, rotation: int) -> Tuple[int, bytes, bytes]:
        key_id = (bucket * 4099 + rotation + 1) & 0xFFFFFF  # a 3-byte id per bucket and rotation
        label = f"bucket:{bucket}:{rotation}"
        return key_id, self._derive(label + ":key"), self._derive(label + ":salt")

    def raw_uid(self, kind: str, identity_hash: str, bucket: int, rotation: int) -> bytes:
        """The raw UID bytes (32 for version 2, else 33) of ``identity_hash`` (base64 text) of ``kind``."""
        first_level = hashlib.sha256((identity_hash + self._first_level_salt).encode()).digest()
        if self.version in (2, 3):
            rotating_salt = self._derive(f"bucket:{bucket}:{rotation}:rotating").decode()
            digest = hashlib.sha256((base64.b64encode(first_level).decode() + rotating_salt).encode()).digest()
            return digest if self.version == 2 else bytes([self.metadata(kind)]) + digest
        meta = self.metadata(kind)
        key_id, key, salt = self._key_material(bucket, rotation)
        key_id_bytes = key_id.to_bytes(3, "big")
        tail = first_level[-16:]
        iv = hashlib.sha256(salt + tail + bytes([meta]) + key_id_bytes).digest()[:12]
        ctr = Cipher(algorithms.AES(key), modes.CTR(iv + bytes(4))).encryptor()
        body = bytes([meta]) + key_id_bytes + iv + ctr.update(tail) + ctr.finalize()
        checksum = 0
        for b in body:
            checksum ^= b
        return body + bytes([checksum])
