"""What the engines' answers become: engine codes to public objects, the statuses reported without fields, the
batch column spec, and the scalar result (:class:`DecryptedToken`) with its builder.

Both engines, the batch API, the clients and Spark read these tables from here; the engines import this
module, never the public modules above it. ``uid2_columns_t`` in ``csrc/uid2_engine.h`` is the C side of
:data:`COLUMNS` (tests/test_engine_c_internal.py checks the two against each other).
"""
import datetime as dt
from typing import Any, Optional, Tuple

from . import _codes
from ._time import ms_to_datetime
from .advertising_token_version import AdvertisingTokenVersion
from .decryption_status import DecryptionStatus
from .encryption_status import EncryptionStatus
from .identity_type import IdentityType

__all__ = ["DecryptedToken", "DECRYPTION_STATUSES", "STATUS_CODES", "STATUS_BY_CODE", "BARE_CODES",
           "ENCRYPTION_STATUSES", "IDENTITY_TYPES", "VERSIONS", "COLUMNS", "RESULT_COLUMNS", "make_token"]

# --- engine codes to public objects -------------------------------------------------------------
# DecryptionStatus by engine code (index). MALFORMED (where the official SDK raised) is INVALID_PAYLOAD for
# the clients; the legacy functions raise EncryptionError('invalid payload') for it instead.
DECRYPTION_STATUSES: Tuple[Optional[DecryptionStatus], ...] = (
    DecryptionStatus.SUCCESS,                        # SUCCESS
    DecryptionStatus.NOT_AUTHORIZED_FOR_MASTER_KEY,  # NOT_AUTHORIZED_FOR_MASTER_KEY
    DecryptionStatus.NOT_AUTHORIZED_FOR_KEY,         # NOT_AUTHORIZED_FOR_KEY
    DecryptionStatus.NOT_INITIALIZED,                # NOT_INITIALIZED
    DecryptionStatus.INVALID_PAYLOAD,                # INVALID_PAYLOAD
    DecryptionStatus.EXPIRED_TOKEN,                  # EXPIRED_TOKEN
    DecryptionStatus.KEYS_NOT_SYNCED,                # KEYS_NOT_SYNCED
    DecryptionStatus.VERSION_NOT_SUPPORTED,          # VERSION_NOT_SUPPORTED
    None,                                            # INVALID_PAYLOAD_TYPE: reserved, never returned for tokens
    DecryptionStatus.INVALID_IDENTITY_SCOPE,         # INVALID_IDENTITY_SCOPE
    DecryptionStatus.USER_OPTED_OUT,                 # USER_OPTED_OUT
    DecryptionStatus.DOMAIN_NAME_CHECK_FAILED,       # DOMAIN_NAME_CHECK_FAILED
    DecryptionStatus.INVALID_TOKEN_LIFETIME,         # INVALID_TOKEN_LIFETIME
    DecryptionStatus.INVALID_PAYLOAD,                # MALFORMED
)
# The engine code of each DecryptionStatus (MALFORMED never: batches store it as INVALID_PAYLOAD).
STATUS_CODES = {status: code for code, status in enumerate(DECRYPTION_STATUSES)
                if status is not None and code != _codes.MALFORMED}
STATUS_BY_CODE = {code: status for status, code in STATUS_CODES.items()}

# The statuses the official SDK reports through make_error: every field None, identity_scope included.
BARE_CODES = frozenset((_codes.NOT_AUTHORIZED_FOR_MASTER_KEY, _codes.NOT_INITIALIZED, _codes.INVALID_PAYLOAD,
                        _codes.KEYS_NOT_SYNCED, _codes.VERSION_NOT_SUPPORTED, _codes.INVALID_IDENTITY_SCOPE,
                        _codes.MALFORMED))

# EncryptionStatus by engine code (UID2_ENC_*).
ENCRYPTION_STATUSES: Tuple[EncryptionStatus, ...] = (
    EncryptionStatus.SUCCESS, EncryptionStatus.NOT_AUTHORIZED_FOR_MASTER_KEY, EncryptionStatus.NOT_AUTHORIZED_FOR_KEY,
    EncryptionStatus.NOT_INITIALIZED, EncryptionStatus.KEYS_NOT_SYNCED, EncryptionStatus.ENCRYPTION_FAILURE,
)

IDENTITY_TYPES: Tuple[IdentityType, IdentityType] = (IdentityType.Email, IdentityType.Phone)  # by type code 0 / 1
VERSIONS = {int(v): v for v in AdvertisingTokenVersion}  # 2 / 112 / 128 -> AdvertisingTokenVersion

# --- the batch columns ---------------------------------------------------------------------------
# (name, numpy dtype, bytes per row) in the order the C engine lays them out in one block; ``uid_overflow`` is
# the engine's per-row flag for a uid that is not UID_WIDTH ASCII characters (the Python twin returns those
# uids in a dict under the same name). Absent values: NONE_I64 in the int64 columns, -1 in the small ones.
COLUMNS: Tuple[Tuple[str, str, int], ...] = (
    ("established_ms", "i8", 8), ("expiry_ms", "i8", 8), ("site_id", "i8", 8), ("site_key_site_id", "i8", 8),
    ("version", "i2", 2), ("uid", f"S{_codes.UID_WIDTH}", _codes.UID_WIDTH), ("status", "u1", 1),
    ("identity_type", "i1", 1), ("is_client_side_generated", "i1", 1), ("uid_overflow", "u1", 1),
)
# The columns of a DecryptedTokens result: every column but the engine's overflow flags.
RESULT_COLUMNS: Tuple[str, ...] = tuple(name for name, _, _ in COLUMNS if name != "uid_overflow")


# --- the scalar result ---------------------------------------------------------------------------
# Timestamps in [0, 2**32 s) convert exactly (ms * 1000 µs, see _time): the engines build those datetimes up front.
_EXACT_MS_LIMIT = (1 << 32) * 1000


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

    # Public home: uid2fast.encryption (as upstream's uid2_client.encryption); pickles name it there.
    __module__ = "uid2fast.encryption"

    # Plain slots: reading a field is one load (the C engine writes them straight into a new object).
    __slots__ = ("status", "uid", "established", "site_id", "site_key_site_id", "identity_type", "identity_scope",
                 "advertising_token_version", "is_client_side_generated", "expiry", "__dict__")

    established: Optional[dt.datetime]
    expiry: Optional[dt.datetime]

    def __init__(self, status, uid, established, site_id, site_key_site_id, identity_scope, identity_type,  # type: ignore[no-untyped-def]
                 advertising_token_version, is_client_side_generated, expiry):
        self.status = status
        self.uid = uid
        self.established = established
        self.site_id = site_id
        self.site_key_site_id = site_key_site_id
        self.identity_type = identity_type
        self.identity_scope = identity_scope
        self.advertising_token_version = advertising_token_version
        self.is_client_side_generated = is_client_side_generated
        self.expiry = expiry

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


_UTC = dt.timezone.utc
_fromtimestamp = dt.datetime.fromtimestamp


def _time_of(ms: Optional[int]) -> Optional[dt.datetime]:
    """The datetime the official SDK reports for a token timestamp in milliseconds (the engines answer
    INVALID_PAYLOAD for a timestamp where that conversion raises, as the official decrypt fails there)."""
    if ms is None:
        return None
    if 0 <= ms < _EXACT_MS_LIMIT:
        return _fromtimestamp(ms / 1000.0, tz=_UTC)
    return ms_to_datetime(ms)


def make_token(r: tuple, identity_scope: Any) -> DecryptedToken:
    """A DecryptedToken from an engine's decrypt tuple ``(status, uid, established_ms, site_id, site_key_site_id,
    identity_type, version, is_client_side_generated, expiry_ms)``.

    ``identity_scope`` is the key set's scope as the collection gives it; the statuses in :data:`BARE_CODES`
    report None instead. The C engine's result factory builds the same object, field for field.
    """
    code = r[0]
    established = _time_of(r[2])
    expiry = _time_of(r[8])
    t = DecryptedToken.__new__(DecryptedToken)
    t.status = DECRYPTION_STATUSES[code]
    t.uid = r[1]
    t.established = established
    t.site_id = r[3]
    t.site_key_site_id = r[4]
    itype = r[5]
    t.identity_type = None if itype is None else IDENTITY_TYPES[itype != 0]
    t.identity_scope = None if code in BARE_CODES else identity_scope
    t.advertising_token_version = VERSIONS.get(r[6])  # type: ignore[arg-type]
    t.is_client_side_generated = r[7]
    t.expiry = expiry
    return t
