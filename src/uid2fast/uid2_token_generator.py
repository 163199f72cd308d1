"""Token generators (the official ``UID2TokenGenerator`` and ``Params``), used by tests and the local operator.

Unlike the official generator, timestamps keep their milliseconds (docs/differences.md#encrypt-settings).
"""
import base64
import datetime as dt
import os
from typing import Any, Optional

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ._codes import _PayloadType  # noqa: F401 - the official module defines it here
from ._time import to_us
from .advertising_token_version import AdvertisingTokenVersion
from .identity_scope import IdentityScope
from .identity_type import IdentityType
from .uid2_base64_url_coder import Uid2Base64UrlCoder

__all__ = ["encryption_block_size", "Params", "UID2TokenGenerator"]

# This module is the test-side writer of the v3/v4 token layout (docs/formats.md#v3-v4-token), independent of
# both engines: the tests, the benchmarks and uid2fast.testing.LocalOperator mint tokens here, and the engines
# (csrc/uid2_token.c, _engine_py.encrypt_token) are checked against it.

encryption_block_size = 16
"""int: the AES block size: the size of CBC IVs and of the PKCS7 padding unit."""


def _add_pkcs7_padding(data: bytes, block_size: int) -> bytes:
    pad_len = block_size - (len(data) % block_size)
    return data + bytes([pad_len]) * pad_len


def _encrypt_gcm(data: bytes, iv: Optional[bytes], secret: bytes) -> bytes:
    """nonce (12) | ciphertext | tag (16); a fresh random nonce unless one is given."""
    if iv is None:
        iv = os.urandom(12)
    elif len(iv) != 12:
        raise ValueError("iv must be 12 bytes")
    return bytes(iv) + AESGCM(bytes(secret)).encrypt(bytes(iv), bytes(data), None)


def _decrypt_gcm(encrypted: bytes, secret: bytes) -> bytes:
    return AESGCM(bytes(secret)).decrypt(bytes(encrypted[:12]), bytes(encrypted[12:]), None)


def _encrypt(data: bytes, iv: bytes, key: Any) -> bytes:
    enc = Cipher(algorithms.AES(bytes(key.secret)), modes.CBC(bytes(iv))).encryptor()
    return enc.update(_add_pkcs7_padding(data, encryption_block_size)) + enc.finalize()


def _encrypt_data_v1(data: bytes, key: Any, iv: bytes) -> bytes:
    return int.to_bytes(key.key_id, 4, "big") + iv + _encrypt(data, iv, key)


def _ms(value: dt.datetime) -> int:
    # Exact milliseconds for aware datetimes (a float product can be off by one).
    if value.tzinfo is not None and value.utcoffset() is not None:
        return to_us(value) // 1000
    return int(value.timestamp() * 1000)


def identity_type_of(id_str: Any, raw_uid: bytes) -> int:
    """0 (email) or 1 (phone) for a token's prefix: a 33-byte raw UID's metadata byte carries it (bits 2-3:
    ``scope << 4 | type << 2``, plus ``env << 6 | 1 << 5`` in the v4 layout); otherwise the official rule on
    the text, phone iff it starts with ``F`` or ``B``."""
    if len(raw_uid) == 33:
        return IdentityType.Phone.value if (raw_uid[0] >> 2) & 3 else IdentityType.Email.value
    return IdentityType.Phone.value if str(id_str)[:1] in ("F", "B") else IdentityType.Email.value


def token_v3_v4(raw_uid: bytes, *, site_id: int, master_key_id: int, master_secret: bytes, site_key_id: int,
                site_secret: bytes, identity_scope: int, identity_type: int, version: int, privacy_bits: int = 0,
                established_ms: int, generated_ms: int, expires_ms: int, operator_site_id: int = 0) -> str:
    """A v3 (``version`` 112) or v4 (128) advertising/sharing token with every field given.

    Layout (docs/formats.md#v3-v4-token): ``prefix | version | master key id | GCM_master(master payload)``;
    master payload ``expires | generated | operator site | operator type 1 | operator version | operator key
    id | site key id | GCM_site(site payload)``; site payload ``site id | publisher id 0 | client key id 0 |
    privacy bits | established | refreshed (= generated) | raw UID``. v4 (128) text is base64url without
    padding, any other version byte (tests write invalid ones on purpose) standard base64.
    """
    site_payload = b"".join((
        int.to_bytes(site_id, 4, "big"), bytes(8), bytes(4),  # site, publisher id, client key id
        int.to_bytes(privacy_bits, 4, "big"), int.to_bytes(established_ms, 8, "big"),
        int.to_bytes(generated_ms, 8, "big"),  # last refreshed/generated
        bytes(raw_uid),
    ))
    master_payload = b"".join((
        int.to_bytes(expires_ms, 8, "big"), int.to_bytes(generated_ms, 8, "big"),
        int.to_bytes(operator_site_id, 4, "big"), b"\x01", bytes(4), bytes(4),  # operator type, version, key id
        int.to_bytes(site_key_id, 4, "big"), _encrypt_gcm(site_payload, None, site_secret),
    ))
    token = bytes([(identity_scope << 4 | identity_type << 2) | 3, version])
    token += int.to_bytes(master_key_id, 4, "big") + _encrypt_gcm(master_payload, None, master_secret)
    if version == AdvertisingTokenVersion.ADVERTISING_TOKEN_V4.value:
        return Uid2Base64UrlCoder.encode(token)
    return base64.b64encode(token).decode("ascii")


class Params:
    """Token parameters: expiry (default now + 1 h), scope, generated and established times (default now)."""

    def __init__(self, expiry=None, identity_scope=IdentityScope.UID2.value, token_generated=None,  # type: ignore[no-untyped-def]
                 identity_established=None):
        now = dt.datetime.now(tz=dt.timezone.utc)
        self.identity_established = now if identity_established is None else identity_established
        self.token_generated = now if token_generated is None else token_generated
        self.token_expiry = now + dt.timedelta(hours=1) if expiry is None else expiry
        self.identity_scope = identity_scope

    def __repr__(self) -> str:
        return (f"Params(expiry={self.token_expiry!r}, identity_scope={self.identity_scope!r}, "
                f"token_generated={self.token_generated!r}, identity_established={self.identity_established!r})")


class UID2TokenGenerator:
    """Builds v2, v3 and v4 tokens from a raw UID and keys (for tests and the local operator)."""

    @staticmethod
    def generate_uid2_token_v2(id_str, master_key, site_id, site_key, params=None, version=2,  # type: ignore[no-untyped-def]
                               privacy_bits=0):
        """A v2 token; ``privacy_bits`` (an addition) sets e.g. 0x2 for client-side generated."""
        if params is None:
            params = Params()
        uid = bytes(id_str, "utf-8")
        identity = b"".join((
            int.to_bytes(site_id, 4, "big"), int.to_bytes(len(uid), 4, "big"), uid,
            int.to_bytes(privacy_bits, 4, "big"),
            int.to_bytes(_ms(params.identity_established), 8, "big"),
        ))
        master_payload = int.to_bytes(_ms(params.token_expiry), 8, "big")
        master_payload += _encrypt_data_v1(identity, key=site_key, iv=os.urandom(16))
        token = int.to_bytes(version, 1, "big") + _encrypt_data_v1(master_payload, key=master_key, iv=os.urandom(16))
        return base64.b64encode(token).decode("ascii")

    @staticmethod
    def generate_uid2_token_v3(id_str, master_key, site_id, site_key, params=None):  # type: ignore[no-untyped-def]
        return UID2TokenGenerator.generate_uid2_token_with_debug_info(
            id_str, master_key, site_id, site_key, params, AdvertisingTokenVersion.ADVERTISING_TOKEN_V3.value)

    @staticmethod
    def generate_uid2_token_v4(id_str, master_key, site_id, site_key, params=None):  # type: ignore[no-untyped-def]
        return UID2TokenGenerator.generate_uid2_token_with_debug_info(
            id_str, master_key, site_id, site_key, params, AdvertisingTokenVersion.ADVERTISING_TOKEN_V4.value)

    @staticmethod
    def generate_uid_token(id_str, master_key, site_id, site_key, identity_scope, token_version,  # type: ignore[no-untyped-def]
                           identity_established=None, token_generated=None, token_expiry=None):
        params = Params(token_expiry, identity_scope, token_generated, identity_established)
        if token_version == AdvertisingTokenVersion.ADVERTISING_TOKEN_V2:
            return UID2TokenGenerator.generate_uid2_token_v2(id_str, master_key, site_id, site_key, params)
        if token_version == AdvertisingTokenVersion.ADVERTISING_TOKEN_V3:
            return UID2TokenGenerator.generate_uid2_token_v3(id_str, master_key, site_id, site_key, params)
        if token_version == AdvertisingTokenVersion.ADVERTISING_TOKEN_V4:
            return UID2TokenGenerator.generate_uid2_token_v4(id_str, master_key, site_id, site_key, params)
        raise Exception("invalid version")

    @staticmethod
    def generate_uid2_token_with_debug_info(id_str, master_key, site_id, site_key, params, version,  # type: ignore[no-untyped-def]
                                            privacy_bits=0):
        """A v3/v4 token; ``privacy_bits`` (an addition) sets e.g. 0x2 for client-side generated."""
        if params is None:
            params = Params()
        raw_uid = base64.b64decode(id_str)
        return token_v3_v4(
            raw_uid, site_id=site_id, master_key_id=master_key.key_id, master_secret=master_key.secret,
            site_key_id=site_key.key_id, site_secret=site_key.secret, identity_scope=int(params.identity_scope),
            identity_type=identity_type_of(id_str, raw_uid), version=version, privacy_bits=privacy_bits,
            established_ms=_ms(params.identity_established), generated_ms=_ms(params.token_generated),
            expires_ms=_ms(params.token_expiry))

    @staticmethod
    def encrypt_data_v2(data, key, site_id, now):  # type: ignore[no-untyped-def]
        result = bytes([_PayloadType.ENCRYPTED_DATA.value, 1])
        result += int.to_bytes(int(now.timestamp() * 1000), 8, "big") + int.to_bytes(site_id, 4, "big")
        result += _encrypt_data_v1(data, key, os.urandom(encryption_block_size))
        return base64.b64encode(result).decode("ascii")
