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

from . import _engine
from . import _engine_py as _codes
from ._time import ms_to_datetime, now_us as _wall_us, to_us
from .advertising_token_version import AdvertisingTokenVersion
from .client_type import ClientType
from .decryption_status import DecryptionStatus
from .encryption_data_response import EncryptionDataResponse
from .encryption_status import EncryptionStatus
from .identity_scope import IdentityScope
from .identity_type import IdentityType
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


_UNSET: Any = object()


class DecryptedToken:
    """Details extracted from a decrypted advertising or sharing token.

    Attributes
    ----------
    status : DecryptionStatus
    uid : str or None
        The raw UID2 (base64), None unless ``status`` is SUCCESS.
    established : datetime.datetime or None
        When the identity was first established (UTC).
    site_id : int or None
        The site the token comes from.
    site_key_site_id : int or None
        The ``site_id`` of the key the token is encrypted with (-1 for keys from the key endpoints).
    identity_scope : IdentityScope or None
        The key set's scope.
    identity_type : IdentityType or None
        Email or Phone (None for v2 tokens).
    advertising_token_version : AdvertisingTokenVersion or None
        2, 112 (v3) or 128 (v4).
    is_client_side_generated : bool or None
        Privacy bit 1 (mask 0x2), as the Java and .NET SDKs read it.
    expiry : datetime.datetime or None
        When the token expires (UTC).
    """

    __slots__ = ("status", "uid", "site_id", "site_key_site_id", "identity_type", "identity_scope",
                 "advertising_token_version", "is_client_side_generated", "_established", "_expiry",
                 "_established_ms", "_expiry_ms", "__dict__")

    _established_ms: Optional[int]
    _expiry_ms: Optional[int]

    def __init__(self, status, uid, established, site_id, site_key_site_id, identity_scope, identity_type,  # type: ignore[no-untyped-def]
                 advertising_token_version, is_client_side_generated, expiry):
        self.status = status
        self.uid = uid
        self._established = established
        self.site_id = site_id
        self.site_key_site_id = site_key_site_id
        self.identity_type = identity_type
        self.identity_scope = identity_scope
        self.advertising_token_version = advertising_token_version
        self.is_client_side_generated = is_client_side_generated
        self._expiry = expiry

    # The engines give milliseconds; the datetimes are made when first read.
    @property
    def established(self) -> Optional[dt.datetime]:
        value = self._established
        if value is _UNSET:
            value = self._established = ms_to_datetime(self._established_ms)
        return value

    @established.setter
    def established(self, value: Optional[dt.datetime]) -> None:
        self._established = value

    @property
    def expiry(self) -> Optional[dt.datetime]:
        value = self._expiry
        if value is _UNSET:
            value = self._expiry = ms_to_datetime(self._expiry_ms)
        return value

    @expiry.setter
    def expiry(self, value: Optional[dt.datetime]) -> None:
        self._expiry = value

    @property
    def success(self) -> bool:
        return self.status == DecryptionStatus.SUCCESS

    @property
    def uid2(self) -> Optional[str]:  # for backward compatibility
        return self.uid

    @staticmethod
    def make_error(decryption_status: DecryptionStatus) -> "DecryptedToken":
        return DecryptedToken(decryption_status, None, None, None, None, None, None, None, None, None)

    def _fields(self) -> tuple:
        return (self.status, self.uid, self.established, self.site_id, self.site_key_site_id, self.identity_scope,
                self.identity_type, self.advertising_token_version, self.is_client_side_generated, self.expiry)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DecryptedToken):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (f"DecryptedToken(status={self.status}, uid={self.uid!r}, established={self.established!r}, "
                f"site_id={self.site_id!r}, site_key_site_id={self.site_key_site_id!r}, "
                f"identity_scope={self.identity_scope!r}, identity_type={self.identity_type!r}, "
                f"advertising_token_version={self.advertising_token_version!r}, "
                f"is_client_side_generated={self.is_client_side_generated!r}, expiry={self.expiry!r})")


class DecryptedData:
    """Data decrypted by :func:`decrypt_data` and when it was encrypted."""

    def __init__(self, data: bytes, encrypted_at: dt.datetime):
        self.data = data
        self.encrypted_at = encrypted_at

    def __repr__(self) -> str:
        return f"DecryptedData(data=<{len(self.data)} bytes>, encrypted_at={self.encrypted_at!r})"


# -- engine codes to public objects -------------------------------------------------------------
_STATUS = {
    _codes.SUCCESS: DecryptionStatus.SUCCESS,
    _codes.NOT_AUTHORIZED_FOR_MASTER_KEY: DecryptionStatus.NOT_AUTHORIZED_FOR_MASTER_KEY,
    _codes.NOT_AUTHORIZED_FOR_KEY: DecryptionStatus.NOT_AUTHORIZED_FOR_KEY,
    _codes.NOT_INITIALIZED: DecryptionStatus.NOT_INITIALIZED,
    _codes.INVALID_PAYLOAD: DecryptionStatus.INVALID_PAYLOAD,
    _codes.EXPIRED_TOKEN: DecryptionStatus.EXPIRED_TOKEN,
    _codes.KEYS_NOT_SYNCED: DecryptionStatus.KEYS_NOT_SYNCED,
    _codes.VERSION_NOT_SUPPORTED: DecryptionStatus.VERSION_NOT_SUPPORTED,
    _codes.INVALID_IDENTITY_SCOPE: DecryptionStatus.INVALID_IDENTITY_SCOPE,
    _codes.USER_OPTED_OUT: DecryptionStatus.USER_OPTED_OUT,
    _codes.DOMAIN_NAME_CHECK_FAILED: DecryptionStatus.DOMAIN_NAME_CHECK_FAILED,
    _codes.INVALID_TOKEN_LIFETIME: DecryptionStatus.INVALID_TOKEN_LIFETIME,
    _codes.MALFORMED: DecryptionStatus.INVALID_PAYLOAD,
}
STATUS_CODES = {v: k for k, v in _STATUS.items() if k != _codes.MALFORMED}
# Statuses that the official SDK reports through make_error (every field None, scope included).
_BARE = frozenset((_codes.NOT_AUTHORIZED_FOR_MASTER_KEY, _codes.NOT_INITIALIZED, _codes.INVALID_PAYLOAD,
                   _codes.KEYS_NOT_SYNCED, _codes.VERSION_NOT_SUPPORTED, _codes.INVALID_IDENTITY_SCOPE,
                   _codes.MALFORMED))
_ENC_STATUS = (
    EncryptionStatus.SUCCESS, EncryptionStatus.NOT_AUTHORIZED_FOR_MASTER_KEY, EncryptionStatus.NOT_AUTHORIZED_FOR_KEY,
    EncryptionStatus.NOT_INITIALIZED, EncryptionStatus.KEYS_NOT_SYNCED, EncryptionStatus.ENCRYPTION_FAILURE,
)
_ITYPE = {0: IdentityType.Email, 1: IdentityType.Phone}
_VERSION = {int(v): v for v in AdvertisingTokenVersion}


def _client_code(client_type: Any) -> int:
    if client_type is ClientType.BIDSTREAM:
        return _codes.CLIENT_BIDSTREAM
    if client_type is ClientType.SHARING:
        return _codes.CLIENT_SHARING
    return _codes.CLIENT_LEGACY


def _now_us(now: Optional[dt.datetime]) -> int:
    return _wall_us() if now is None else to_us(now)


def _make_token(r: tuple, keys: Any) -> DecryptedToken:
    """A DecryptedToken from an engine result tuple, without building datetimes yet."""
    code = r[0]
    t = DecryptedToken.__new__(DecryptedToken)
    t.status = _STATUS[code]
    t.uid = r[1]
    t._established = _UNSET
    t._established_ms = r[2]
    t.site_id = r[3]
    t.site_key_site_id = r[4]
    t.identity_type = _ITYPE.get(r[5])  # type: ignore[arg-type]
    t.identity_scope = None if code in _BARE else keys.get_identity_scope()
    t.advertising_token_version = _VERSION.get(r[6])  # type: ignore[arg-type]
    t.is_client_side_generated = r[7]
    t._expiry = _UNSET
    t._expiry_ms = r[8]
    return t


def _fast_decryptor() -> Any:
    """The C engine's one-call scalar decryption into a DecryptedToken (``_engine_c.TokenFactory``), or None.

    ``fast(keys, token, client, domain)`` returns what ``_make_token(_engine.decrypt_token(keys, token,
    now_us(), client, domain), keys)`` returns, or None for anything but the common case (then the caller
    takes that general path): the C engine selected, a built C key table, an ASCII str token.
    """
    c = _engine.c_engine
    factory = getattr(c, "TokenFactory", None)
    if factory is None:
        return None
    statuses = [_STATUS.get(code) for code in range(_codes.MALFORMED + 1)]
    try:
        return factory(DecryptedToken, _UNSET, _engine, c, statuses, sorted(_BARE), [_ITYPE[0], _ITYPE[1]],
                       _VERSION).decrypt
    except (TypeError, ValueError):  # pragma: no cover - a result class the factory cannot fill
        return None


_fast_decrypt = _fast_decryptor()


def _decrypt_code(token: Any, keys: Any, domain_name: Any, client: int, now: Optional[dt.datetime]) -> tuple:
    try:
        now_us = _now_us(now)
        return _engine.decrypt_token(keys, token, now_us, client, domain_name)
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
    if now is None and _fast_decrypt is not None:
        t = _fast_decrypt(keys, token, _codes.CLIENT_LEGACY, None)
        if t is not None and t.status is DecryptionStatus.SUCCESS:
            return t  # failures raise below, after decrypting again on the general path
    return _legacy(_decrypt_code(token, keys, None, _codes.CLIENT_LEGACY, now), keys)


def _legacy(r: tuple, keys: Any) -> DecryptedToken:
    code = r[0]
    if code == _codes.SUCCESS:
        return _make_token(r, keys)
    if code == _codes.MALFORMED:
        raise EncryptionError("invalid payload")
    raise EncryptionError(str(_STATUS[code]))


def decrypt_token(token, keys, domain_name, client_type, now=None):  # type: ignore[no-untyped-def]
    """Decrypt an advertising or sharing token for a client type.

    With ``ClientType.LEGACY_WITHOUT_DOMAIN_CHECK`` it raises like :func:`decrypt`; otherwise every
    outcome, a malformed token included, is a status (docs/differences.md#malformed-tokens).
    """
    if now is None and _fast_decrypt is not None and client_type is not ClientType.LEGACY_WITHOUT_DOMAIN_CHECK:
        t = _fast_decrypt(keys, token, _client_code(client_type), domain_name)
        if t is not None:
            return t
    r = _decrypt_code(token, keys, domain_name, _client_code(client_type), now)
    if client_type == ClientType.LEGACY_WITHOUT_DOMAIN_CHECK:
        return _legacy(r, keys)
    return _make_token(r, keys)


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
        status, token = _engine.encrypt_token(keys, uid2, now_us, keyset_id, identity_scope, _wall_us() // 1000)
    except (TypeError, AttributeError, ValueError, OverflowError):
        return EncryptionDataResponse.make_error(EncryptionStatus.ENCRYPTION_FAILURE)
    if status == _codes.ENC_SUCCESS:
        return EncryptionDataResponse.make_success(token)
    if status == _codes.ENC_ENCRYPTION_FAILURE and keys is not None and keys.get_caller_site_id() is None:
        _log.warning("cannot encrypt: the key set has no caller_site_id (keys from the bidstream endpoint?)")
    return EncryptionDataResponse.make_error(_ENC_STATUS[status])


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
