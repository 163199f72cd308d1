"""Token decryption and encryption functions (the official ``uid2_client.encryption`` API).

For DSPs use :class:`~uid2fast.BidstreamClient`, for sharers :class:`~uid2fast.SharingClient`; the
functions here are the official SDK's deprecated-but-supported entry points, kept with their behaviour:
``decrypt`` and the legacy client raise :class:`EncryptionError` for any failure.
"""
import base64
import binascii
import datetime as dt
import logging
import os
from typing import Any, Optional

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from . import _codes, _engine
from ._results import DECRYPTION_STATUSES, ENCRYPTION_STATUSES, DecryptedToken, make_token
from ._time import ms_to_datetime, now_us as _wall_us, to_us
from .advertising_token_version import AdvertisingTokenVersion  # noqa: F401 - importable from here, as upstream
from .client_type import ClientType
from .decryption_status import DecryptionStatus
from .encryption_data_response import EncryptionDataResponse
from .encryption_status import EncryptionStatus
from .identity_scope import IdentityScope
from .identity_type import IdentityType  # noqa: F401 - importable from here, as upstream
from .uid2_base64_url_coder import Uid2Base64UrlCoder  # noqa: F401 - importable from here, as upstream
from ._codes import _PayloadType
from ._envelope import decrypt_gcm as _envelope_decrypt_gcm, encrypt_gcm as _envelope_encrypt_gcm
from .uid2_token_generator import Params, UID2TokenGenerator  # noqa: F401 - the official module's namespace

__all__ = [
    "decrypt", "decrypt_token", "encrypt", "encrypt_data", "decrypt_data", "EncryptionError", "DecryptedToken",
    "DecryptedData", "base64_url_special_chars",
]

_log = logging.getLogger("uid2fast")

base64_url_special_chars = {"-", "_"}


def _encrypt_gcm(data: bytes, iv: Optional[bytes], secret: bytes) -> bytes:
    """``nonce (12) | ciphertext | tag (16)``, a fresh random nonce unless ``iv`` is given (the official
    module's helper, which its tests import from here)."""
    return _envelope_encrypt_gcm(secret, data, iv)


def _decrypt_gcm(encrypted: bytes, secret: bytes) -> bytes:
    """The inverse of :func:`_encrypt_gcm`; ValueError when the tag does not verify."""
    return _envelope_decrypt_gcm(secret, encrypted)


class EncryptionError(Exception):
    """Raised for problems encountered while decrypting an advertising id."""


class DecryptedData:
    """Data decrypted by :func:`decrypt_data` and when it was encrypted."""

    def __init__(self, data: bytes, encrypted_at: dt.datetime):
        self.data = data
        self.encrypted_at = encrypted_at

    def __repr__(self) -> str:
        return f"DecryptedData(data=<{len(self.data)} bytes>, encrypted_at={self.encrypted_at!r})"


# -- the engine a key set runs on ------------------------------------------------------------------
def _client_code(client_type: Any) -> int:
    if client_type is ClientType.BIDSTREAM:
        return _codes.CLIENT_BIDSTREAM
    if client_type is ClientType.SHARING:
        return _codes.CLIENT_SHARING
    return _codes.CLIENT_LEGACY


# The C engine reads a timezone.utc datetime's fields directly (None for anything else).
_utc_datetime_us = None if _engine.c_engine is None else _engine.c_engine.utc_datetime_us


def _datetime_us(now: dt.datetime) -> int:
    """A `now` argument as microseconds (``to_us``: a naive datetime raises TypeError)."""
    if _utc_datetime_us is not None:
        us = _utc_datetime_us(now)
        if us is not None:
            return us  # type: ignore[no-any-return]
    return to_us(now)


def _now_us(now: Optional[dt.datetime]) -> int:
    return _wall_us() if now is None else _datetime_us(now)


def _engine_and_table(keys: Any) -> tuple:
    """The engine ``keys`` runs on and its key table (None for no keys, or keys that cannot make one: the engines
    answer NOT_INITIALIZED); AttributeError for what is no key set."""
    if keys is None:
        return _engine.engine, None
    return keys._engine, keys._engine_table()


def _decrypt_result(keys: Any, token: Any, client: int, domain_name: Any, now: Optional[dt.datetime]) -> DecryptedToken:
    """The clients' decrypt: every outcome a DecryptedToken, EncryptionError('invalid payload') where the
    official SDK failed inside its comparisons (a naive ``now``, something that is no key set)."""
    try:
        engine, table = _engine_and_table(keys)
        return engine.decrypt_result(table, token, client, domain_name, None if now is None else _datetime_us(now))
    except (TypeError, AttributeError, ValueError, OverflowError) as exc:
        raise EncryptionError("invalid payload") from exc


def _decrypt_code(token: Any, keys: Any, domain_name: Any, client: int, now: Optional[dt.datetime]) -> tuple:
    try:
        now_us = _now_us(now)
        engine, table = _engine_and_table(keys)
        return engine.decrypt_token(table, token, now_us, client, domain_name)
    except (TypeError, AttributeError, ValueError, OverflowError) as exc:
        # A naive `now`, naive key times or an object that is not a key collection: the official
        # SDK fails inside its comparisons and reports it as an invalid payload.
        raise EncryptionError("invalid payload") from exc


# DEPRECATED upstream, supported: DSPs should use BidstreamClient, sharers SharingClient.
def decrypt(token, keys, now=None):  # type: ignore[no-untyped-def]
    """Decrypt an advertising token with no lifetime or domain checks (the legacy entry point).

    Raises
    ------
    EncryptionError
        For any failure: ``str(status)`` (e.g. ``'DecryptionStatus.EXPIRED_TOKEN'``) for a status,
        ``'invalid payload'`` for a token that cannot be parsed.
    """
    if now is None:
        t = _decrypt_result(keys, token, _codes.CLIENT_LEGACY, None, None)
        if t.status is DecryptionStatus.SUCCESS:
            return t  # failures raise below, after decrypting again for the engine code
    return _legacy(_decrypt_code(token, keys, None, _codes.CLIENT_LEGACY, now), keys)


def _legacy(r: tuple, keys: Any) -> DecryptedToken:
    code = r[0]
    if code == _codes.SUCCESS:
        return make_token(r, keys.get_identity_scope())
    if code == _codes.MALFORMED:
        raise EncryptionError("invalid payload")
    raise EncryptionError(str(DECRYPTION_STATUSES[code]))


def decrypt_token(token, keys, domain_name, client_type, now=None):  # type: ignore[no-untyped-def]
    """Decrypt an advertising or sharing token for a client type.

    With ``ClientType.LEGACY_WITHOUT_DOMAIN_CHECK`` it raises like :func:`decrypt`; otherwise every
    outcome, a malformed token included, is a status (docs/differences.md#malformed-tokens).
    """
    if client_type == ClientType.LEGACY_WITHOUT_DOMAIN_CHECK:
        return _legacy(_decrypt_code(token, keys, domain_name, _codes.CLIENT_LEGACY, now), keys)
    return _decrypt_result(keys, token, _client_code(client_type), domain_name, now)


def encrypt(uid2, identity_scope, keys, keyset_id=None, **kwargs):  # type: ignore[no-untyped-def]
    """Encrypt a raw UID2 into a v4 sharing token.

    Parameters
    ----------
    uid2 : str
        The raw UID2 or EUID (base64).
    identity_scope : IdentityScope or None
        None uses the key set's scope.
    keys : EncryptionKeysCollection
    keyset_id : int, optional
        The keyset to encrypt with; the key set's default keyset otherwise.
    now : datetime.datetime, optional (keyword)

    Returns
    -------
    EncryptionDataResponse
    """
    now = kwargs.get("now")
    try:
        now_us = _now_us(now)
    except TypeError:
        return EncryptionDataResponse.make_error(EncryptionStatus.ENCRYPTION_FAILURE)
    try:
        engine, table = _engine_and_table(keys)
        status, token = engine.encrypt_token(table, uid2, now_us, keyset_id, identity_scope, _wall_us() // 1000)
    except (TypeError, AttributeError, ValueError, OverflowError):
        return EncryptionDataResponse.make_error(EncryptionStatus.ENCRYPTION_FAILURE)
    if status == _codes.ENC_SUCCESS:
        return EncryptionDataResponse.make_success(token)
    if status == _codes.ENC_ENCRYPTION_FAILURE and keys is not None and keys.get_caller_site_id() is None:
        _log.warning("cannot encrypt: the key set has no caller_site_id (keys from the bidstream endpoint?)")
    return EncryptionDataResponse.make_error(ENCRYPTION_STATUSES[status])


# DEPRECATED upstream, supported.
def encrypt_data(data, identity_scope, **kwargs):  # type: ignore[no-untyped-def]
    """Encrypt arbitrary bytes (encrypted-data v3); see the official SDK for the keyword combinations.

    Keyword arguments: ``key``, or ``keys`` with ``site_id`` or ``advertising_token``; ``now``; ``iv``.
    """
    now = kwargs.get("now")
    if now is None:
        now = dt.datetime.now(tz=dt.timezone.utc)
    keys = kwargs.get("keys")
    key = kwargs.get("key")
    if keys is not None and key is not None:
        raise ValueError("only one of keys and key can be specified")
    if key is None:
        site_id = kwargs.get("site_id")
        site_key_site_id = site_id
        advertising_token = kwargs.get("advertising_token")
        if site_id is not None and advertising_token is not None:
            raise ValueError("only one of site_id and advertising_token can be specified")
        if advertising_token is not None:
            decrypted_token = decrypt(advertising_token, keys, now)
            site_id = decrypted_token.site_id
            site_key_site_id = decrypted_token.site_key_site_id
        if keys is None:
            raise ValueError("keys must be given when key is not")
        key = keys.get_active_site_key(site_key_site_id, now)
        if key is None:
            raise EncryptionError("not authorized for key for the specified site")
    elif not key.is_active(now):
        raise EncryptionError("key is either expired or not active yet")
    else:
        site_id = key.site_id
        if site_id < 0:
            site_id += 1 << 32

    iv = kwargs.get("iv")
    if iv is None:
        iv = os.urandom(12)

    # Without site_id or advertising_token there is no site key (get_active_site_key(None) is None): raised above.
    assert site_id is not None
    payload = int.to_bytes(int(now.timestamp() * 1000), 8, "big") + int.to_bytes(site_id, 4, "big") + data
    result = bytes([_PayloadType.ENCRYPTED_DATA_V3.value | (int(identity_scope) << 4) | 0xB, 112])
    result += int.to_bytes(key.key_id, 4, "big") + _encrypt_gcm(payload, iv, key.secret)
    return base64.b64encode(result).decode("ascii")


# DEPRECATED upstream, supported.
def decrypt_data(encrypted_data, keys):  # type: ignore[no-untyped-def]
    """Decrypt data made by :func:`encrypt_data` (v3) or the legacy v2 format.

    Raises
    ------
    EncryptionError
        For a malformed input or a key that is not in ``keys``.
    """
    try:
        return _decrypt_data(encrypted_data, keys)
    except EncryptionError:
        raise
    except (ValueError, TypeError, IndexError, AttributeError, binascii.Error, InvalidTag) as exc:
        raise EncryptionError("invalid payload") from exc


def _decrypt_data(encrypted_data: Any, keys: Any) -> DecryptedData:
    encrypted_bytes = base64.b64decode(encrypted_data)
    if (encrypted_bytes[0] & 0xE0) == _PayloadType.ENCRYPTED_DATA_V3.value:
        return _decrypt_data_v3(encrypted_bytes, keys)
    return _decrypt_data_v2(encrypted_bytes, keys)


def _decrypt_data_v2(encrypted_bytes: bytes, keys: Any) -> DecryptedData:
    # 0x80 | version 1 | encrypted_at (8) | site id (4) | key id (4) @14 | IV (16) @18 | CBC data @34
    if encrypted_bytes[0] != _PayloadType.ENCRYPTED_DATA.value:
        raise EncryptionError("incorrect content type")
    if encrypted_bytes[1] != 1:
        raise EncryptionError("unsupported encrypted data format/version")
    key = keys.get(int.from_bytes(encrypted_bytes[14:18], "big"))
    if key is None:
        raise EncryptionError("not authorized for key")
    data = _cbc_decrypt_strict(encrypted_bytes[34:], encrypted_bytes[18:34], key.secret)
    encrypted_at = ms_to_datetime(int.from_bytes(encrypted_bytes[2:10], "big"))
    return DecryptedData(data, encrypted_at)  # type: ignore[arg-type]


def _decrypt_data_v3(encrypted_bytes: bytes, keys: Any) -> DecryptedData:
    # prefix | version 112 | key id (4) | GCM(encrypted_at (8) | site id (4) | data)
    if encrypted_bytes[1] != 112:
        raise EncryptionError("unsupported encrypted data format/version")
    key = keys.get(int.from_bytes(encrypted_bytes[2:6], "big"))
    if key is None:
        raise EncryptionError("not authorized for key")
    payload = _decrypt_gcm(encrypted_bytes[6:], key.secret)
    encrypted_at = ms_to_datetime(int.from_bytes(payload[:8], "big"))
    return DecryptedData(payload[12:], encrypted_at)  # type: ignore[arg-type]


def _cbc_decrypt_strict(data: bytes, iv: bytes, secret: bytes) -> bytes:
    dec = Cipher(algorithms.AES(bytes(secret)), modes.CBC(bytes(iv))).decryptor()
    out = dec.update(bytes(data)) + dec.finalize()
    pad = out[-1]
    if pad < 1 or pad > 16 or out[-pad:] != bytes([pad]) * pad:  # docs/differences.md#cbc-padding
        raise EncryptionError("invalid payload")
    return out[:-pad]


IdentityScope = IdentityScope  # re-exported: the official module leaks it too
