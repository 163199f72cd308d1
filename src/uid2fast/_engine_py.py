"""The pure-Python engine: the semantic reference that the C engine (``_engine_c``) mirrors exactly.

Both engines expose the same names. Everything is in integer microseconds (times) and integer codes
(statuses); ``_results`` turns codes into enums and milliseconds into datetimes, for both engines.

Reads follow Python slice semantics on purpose: the official SDK reads every field with
``int.from_bytes(buf[a:b], 'big')``, which yields 0 (or a short value) past the end of a buffer rather
than failing, and token handling must give the official answer for every input.

Decrypt result: ``(status, uid, established_ms, site_id, site_key_site_id, identity_type, version,
is_client_side_generated, expiry_ms)``; fields not populated for a status are None.
"""
import base64
import binascii
import os
import sys
from bisect import bisect_right
from typing import Any, Dict, List, Optional, Sequence, Tuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# The code tables both engines share (statuses, clients, privacy bits).
from ._codes import (  # noqa: F401 - re-exported: the engine's interface
    SUCCESS, NOT_AUTHORIZED_FOR_MASTER_KEY, NOT_AUTHORIZED_FOR_KEY, NOT_INITIALIZED,
    INVALID_PAYLOAD, EXPIRED_TOKEN, KEYS_NOT_SYNCED, VERSION_NOT_SUPPORTED, INVALID_PAYLOAD_TYPE,
    INVALID_IDENTITY_SCOPE, USER_OPTED_OUT, DOMAIN_NAME_CHECK_FAILED, INVALID_TOKEN_LIFETIME, MALFORMED,
    ENC_SUCCESS, ENC_NOT_AUTHORIZED_FOR_MASTER_KEY, ENC_NOT_AUTHORIZED_FOR_KEY, ENC_NOT_INITIALIZED,
    ENC_KEYS_NOT_SYNCED, ENC_ENCRYPTION_FAILURE, CLIENT_SHARING, CLIENT_BIDSTREAM, CLIENT_LEGACY,
    PRIVACY_CLIENT_SIDE_GENERATED, PRIVACY_OPTED_OUT, UID_WIDTH, NONE_I64)
from ._counters import StatusCounter  # noqa: F401 - the engine's interface (the clients' status counters)
from ._results import COLUMNS, make_token
from ._time import ms_to_us, now_us as _wall_us

NAME = "python"

_VERSION_V2 = 2
_VERSION_V3 = 112
_VERSION_V4 = 128
_U32 = 1 << 32
_GCM_NONCE = 12
_GCM_TAG = 16

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(s: str) -> str:
    """Lower-case ASCII letters only: the domain check compares names this way in both engines."""
    return s.translate(_ASCII_LOWER)


def _be(buf: bytes, start: int, end: int) -> int:
    # int.from_bytes of a clipped slice: the official SDK's read, 0 past the end.
    return int.from_bytes(buf[start:end], "big")


class _Key:
    __slots__ = ("key_id", "site_id", "keyset_id", "activates_us", "expires_us", "secret", "gcm")

    def __init__(self, key_id: int, site_id: int, keyset_id: Optional[int], activates_us: int, expires_us: int,
                 secret: bytes):
        self.key_id = key_id
        self.site_id = site_id
        self.keyset_id = keyset_id
        self.activates_us = activates_us
        self.expires_us = expires_us
        self.secret = secret
        # One GCM object per key, built once; None where the secret is not an AES key length.
        self.gcm = AESGCM(secret) if len(secret) in (16, 24, 32) else None


class KeyTable:
    """An immutable snapshot of a key set, ready for decryption (see ``keys._table_args``)."""

    __slots__ = ("_by_id", "_by_keyset", "_keyset_activates", "identity_scope", "caller_site_id",
                 "master_keyset_id", "default_keyset_id", "token_expiry_seconds", "max_sharing_lifetime_seconds",
                 "max_bidstream_lifetime_seconds", "allow_clock_skew_seconds", "site_domains", "latest_expires_us",
                 "public_scope")

    def __init__(self, keys: Sequence[Tuple[int, int, Optional[int], int, int, bytes]], *, identity_scope: int,
                 caller_site_id: Optional[int], master_keyset_id: Optional[int], default_keyset_id: Optional[int],
                 token_expiry_seconds: int, max_sharing_lifetime_seconds: int, max_bidstream_lifetime_seconds: int,
                 allow_clock_skew_seconds: int, site_domains: Dict[int, List[str]],
                 latest_expires_us: Optional[int], public_scope: Any = None):
        # ``keys`` may repeat an id: lookups by id see the last entry, keyset lists see every entry.
        self._by_id: Dict[int, _Key] = {}
        by_keyset: Dict[int, List[_Key]] = {}
        for key_id, site_id, keyset_id, activates_us, expires_us, secret in keys:
            k = _Key(key_id, site_id, keyset_id, activates_us, expires_us, bytes(secret))
            self._by_id[key_id] = k
            if keyset_id is not None:
                by_keyset.setdefault(keyset_id, []).append(k)
        for lst in by_keyset.values():
            lst.sort(key=lambda k: k.activates_us)  # stable: ties keep key order
        self._by_keyset = by_keyset
        self._keyset_activates = {ks: [k.activates_us for k in lst] for ks, lst in by_keyset.items()}
        self.identity_scope = identity_scope
        self.caller_site_id = caller_site_id
        self.master_keyset_id = master_keyset_id
        self.default_keyset_id = default_keyset_id
        self.token_expiry_seconds = token_expiry_seconds
        self.max_sharing_lifetime_seconds = max_sharing_lifetime_seconds
        self.max_bidstream_lifetime_seconds = max_bidstream_lifetime_seconds
        self.allow_clock_skew_seconds = allow_clock_skew_seconds
        self.site_domains = {int(s): frozenset(names) for s, names in site_domains.items()}
        self.latest_expires_us = latest_expires_us
        self.public_scope = public_scope  # the key set's scope as its collection gives it, for results

    def __repr__(self) -> str:
        return f"<KeyTable (python engine): {len(self._by_id)} keys>"

    def key(self, key_id: int) -> Optional[_Key]:
        return self._by_id.get(key_id)

    def active_keyset_key(self, keyset_id: Optional[int], now_us: int) -> Optional[_Key]:
        keys = self._by_keyset.get(keyset_id)  # type: ignore[arg-type]
        if not keys:
            return None
        i = bisect_right(self._keyset_activates[keyset_id], now_us)  # type: ignore[index]
        while i > 0:
            i -= 1
            k = keys[i]
            if k.activates_us <= now_us < k.expires_us:
                return k
        return None

    def valid(self, now_us: int) -> bool:
        return self.latest_expires_us is not None and self.latest_expires_us > now_us


class _Malformed(Exception):
    """Internal: the token cannot be parsed (the official SDK raised here)."""


def _cbc_decrypt(key: _Key, iv: bytes, data: bytes) -> bytes:
    if len(iv) != 16 or not data or len(data) % 16 or len(key.secret) not in (16, 24, 32):
        raise _Malformed
    dec = Cipher(algorithms.AES(key.secret), modes.CBC(iv)).decryptor()
    out = dec.update(data) + dec.finalize()
    pad = out[-1]
    # Strict PKCS7 (docs/differences.md#cbc-padding): the official SDK strips data[-1] bytes without checking.
    if pad < 1 or pad > 16 or out[-pad:] != bytes([pad]) * pad:
        raise _Malformed
    return out[:-pad]


def _gcm_decrypt(key: _Key, blob: bytes) -> bytes:
    if key.gcm is None or len(blob) < _GCM_NONCE + _GCM_TAG:
        raise _Malformed
    try:
        return key.gcm.decrypt(blob[:_GCM_NONCE], blob[_GCM_NONCE:], None)
    except InvalidTag:
        raise _Malformed from None


def _ts_us(ms: int) -> int:
    us = ms_to_us(ms)
    if us is None:
        raise _Malformed
    return us


def _lifetime_ok(table: KeyTable, client: int, generated_us: int, expires_us: int, now_us: int) -> bool:
    if client == CLIENT_BIDSTREAM:
        max_lifetime = table.max_bidstream_lifetime_seconds
    elif client == CLIENT_SHARING:
        max_lifetime = table.max_sharing_lifetime_seconds
    else:
        return True
    # Float seconds compared with the int limit, as timedelta.total_seconds() does in the SDK.
    if (expires_us - generated_us) / 1_000_000 > max_lifetime:
        return False
    if generated_us > now_us:
        return (generated_us - now_us) / 1_000_000 <= table.allow_clock_skew_seconds
    return True


def _b64decode_header(header: Any) -> bytes:
    # Iterating (not ``in``) so a bytes token behaves as in the official SDK.
    if any(ch == "-" or ch == "_" for ch in header):
        pad = -len(header) % 4
        return base64.urlsafe_b64decode(header + "=" * pad)
    return base64.b64decode(header)


def _b64url_to_std(token: str) -> str:
    value = token.replace("-", "+").replace("_", "/")
    rem = len(value) % 4
    if rem == 1:
        raise _Malformed
    return value + "=" * (-rem % 4)


_E = None


def _error(status: int) -> tuple:
    return (status, _E, _E, _E, _E, _E, _E, _E, _E)


def decrypt_token(table: Optional[KeyTable], token: Any, now_us: int, client: int, domain: Optional[str]) -> tuple:
    """Decrypt one token; see the module docstring for the result tuple."""
    if table is None:
        return _error(NOT_INITIALIZED)
    if not table.valid(now_us):
        return _error(KEYS_NOT_SYNCED)
    try:
        if len(token) < 4:
            return _error(INVALID_PAYLOAD)
        header = _b64decode_header(token[0:4])
        if header[0] == 2:
            return _decrypt_v2(table, base64.b64decode(token), now_us, client, domain)
        if header[1] == _VERSION_V3:
            return _decrypt_v3(table, base64.b64decode(token), now_us, client, domain, _VERSION_V3)
        if header[1] == _VERSION_V4:
            return _decrypt_v3(table, base64.b64decode(_b64url_to_std(token)), now_us, client, domain, _VERSION_V4)
        return _error(VERSION_NOT_SUPPORTED)
    except (_Malformed, binascii.Error, ValueError, TypeError, IndexError, AttributeError, UnicodeError):
        return _error(MALFORMED)


def decrypt_result(table: Optional[KeyTable], token: Any, client: int, domain: Optional[str],
                   now_us: Optional[int] = None) -> Any:
    """Decrypt one token into the public result (a ``DecryptedToken``); the clock is read when ``now_us`` is
    None. What ``make_token(decrypt_token(...), table.public_scope)`` gives, as the C engine's does."""
    r = decrypt_token(table, token, _wall_us() if now_us is None else now_us, client, domain)
    return make_token(r, None if table is None else table.public_scope)


def _decrypt_v2(table: KeyTable, tb: bytes, now_us: int, client: int, domain: Optional[str]) -> tuple:
    # v2: 0x02 | master key id (4) | master IV (16) | CBC(master payload)
    master = table.key(_be(tb, 1, 5))
    if master is None:
        return _error(NOT_AUTHORIZED_FOR_MASTER_KEY)
    payload = _cbc_decrypt(master, tb[5:21], tb[21:])
    # master payload: expires (8) | site key id (4) | identity IV (16) | CBC(identity)
    expires_ms = _be(payload, 0, 8)
    expires_us = _ts_us(expires_ms)
    if expires_us < now_us:
        return (EXPIRED_TOKEN, _E, _E, _E, _E, _E, _VERSION_V2, False, expires_ms)
    site_key = table.key(_be(payload, 8, 12))
    if site_key is None:
        return (NOT_AUTHORIZED_FOR_KEY, _E, _E, _E, _E, _E, _VERSION_V2, False, expires_ms)
    identity = _cbc_decrypt(site_key, payload[12:28], payload[28:])
    # identity: site id (4) | id length L (4) | id (L, UTF-8) | privacy bits (4) | established (8)
    site_id = _be(identity, 0, 4)
    id_len = _be(identity, 4, 8)
    uid = identity[8:8 + id_len].decode("utf-8")
    idx = 8 + id_len + 4
    established_ms = _be(identity, idx, idx + 8)
    privacy = _be(identity, 8 + id_len, idx)
    _ts_us(established_ms)
    # The privacy bits read as in v3/v4 (Java and .NET read them in v2 too).
    is_csg = bool(privacy & PRIVACY_CLIENT_SIDE_GENERATED)
    partial = (_E, established_ms, site_id, site_key.site_id, _E, _VERSION_V2, is_csg, expires_ms)
    if client == CLIENT_BIDSTREAM:
        if privacy & PRIVACY_OPTED_OUT:
            return (USER_OPTED_OUT,) + partial
        if is_csg and not _domain_allowed(table, site_id, domain):
            return (DOMAIN_NAME_CHECK_FAILED,) + partial
    # v2 has no "generated" field: the remaining lifetime (from now) is checked.
    if not _lifetime_ok(table, client, now_us, expires_us, now_us):
        # docs/differences.md#cbc-padding: no uid with INVALID_TOKEN_LIFETIME.
        return (INVALID_TOKEN_LIFETIME,) + partial
    return (SUCCESS, uid) + partial[1:]


def _decrypt_v3(table: KeyTable, tb: bytes, now_us: int, client: int, domain: Optional[str], version: int) -> tuple:
    # v3/v4: prefix (1) | version (1) | master key id (4) | GCM(master payload)
    identity_type = 0 if ((tb[0] & 0x0F) >> 2) == 0 else 1
    if (tb[0] >> 4) & 1 != table.identity_scope:  # docs/differences.md#identity-scope
        return _error(INVALID_IDENTITY_SCOPE)
    master = table.key(_be(tb, 2, 6))
    if master is None:
        return _error(NOT_AUTHORIZED_FOR_MASTER_KEY)
    payload = _gcm_decrypt(master, tb[6:])
    # master payload: expires (8) | generated (8) | operator site (4) | type (1) | version (4) |
    # operator key id (4) | site key id (4) @29 | GCM(site payload) @33
    expires_ms = _be(payload, 0, 8)
    expires_us = _ts_us(expires_ms)
    if expires_us < now_us:
        return (EXPIRED_TOKEN, _E, _E, _E, _E, identity_type, version, _E, expires_ms)
    generated_ms = _be(payload, 8, 16)
    site_key = table.key(_be(payload, 29, 33))
    if site_key is None:
        return (NOT_AUTHORIZED_FOR_KEY, _E, _E, _E, _E, identity_type, version, _E, expires_ms)
    site = _gcm_decrypt(site_key, payload[33:])
    # site payload: site id (4) | publisher id (8) | client key id (4) | privacy bits (4) @16 |
    # established (8) @20 | refreshed (8) @28 | raw UID @36
    site_id = _be(site, 0, 4)
    privacy = _be(site, 16, 20)
    established_ms = _be(site, 20, 28)
    _ts_us(established_ms)
    generated_us = _ts_us(generated_ms)
    is_csg = bool(privacy & PRIVACY_CLIENT_SIDE_GENERATED)  # docs/differences.md#csg-bit: bit 1, as Java/.NET
    partial = (_E, established_ms, site_id, site_key.site_id, identity_type, version, is_csg, expires_ms)
    if client == CLIENT_BIDSTREAM:
        if privacy & PRIVACY_OPTED_OUT:  # docs/differences.md#cstg-opt-out
            return (USER_OPTED_OUT,) + partial
        if is_csg and not _domain_allowed(table, site_id, domain):  # docs/differences.md#domain-check
            return (DOMAIN_NAME_CHECK_FAILED,) + partial
    if not _lifetime_ok(table, client, generated_us, expires_us, now_us):
        return (INVALID_TOKEN_LIFETIME,) + partial
    uid = base64.b64encode(site[36:]).decode("ascii")
    return (SUCCESS, uid) + partial[1:]


def _domain_allowed(table: KeyTable, site_id: int, domain: Optional[str]) -> bool:
    if not isinstance(domain, str):
        return False
    names = table.site_domains.get(site_id)
    return names is not None and ascii_lower(domain) in names


def _u32(value: Any) -> bytes:
    if not isinstance(value, int) or not 0 <= value < _U32:
        raise _Malformed
    return value.to_bytes(4, "big")


def _gcm_encrypt(key: _Key, plaintext: bytes) -> bytes:
    if key.gcm is None:
        raise _Malformed
    nonce = os.urandom(_GCM_NONCE)  # a fresh CSPRNG nonce per GCM operation
    return nonce + key.gcm.encrypt(nonce, plaintext, None)


def raw_uid_identity_type(uid: Any, raw: bytes) -> int:
    """Identity type (0 email, 1 phone) written into a sharing token's prefix for a raw UID.

    A 33-byte raw UID starts with a metadata byte that carries it: ``scope << 4 | type << 2`` for the v3
    layout, with ``version << 5`` and ``environment << 6`` added by the v4 layout; the type is bits 2-3,
    read as the token prefix is read. A 32-byte (legacy) raw UID has none, and the official SDK's rule
    applies: phone iff the text starts with ``F`` or ``B``.
    """
    if len(raw) == 33:
        return 1 if (raw[0] >> 2) & 3 else 0
    return 1 if uid[0] in ("F", "B") else 0


def encrypt_token(table: Optional[KeyTable], uid: Any, now_us: int, keyset_id: Optional[int],
                  identity_scope: Optional[int], established_ms: int) -> Tuple[int, Optional[str]]:
    """Encrypt a raw UID into a v4 sharing token: ``(status, token or None)``."""
    if table is None:
        return ENC_NOT_INITIALIZED, None
    if not table.valid(now_us):
        return ENC_KEYS_NOT_SYNCED, None
    key = table.active_keyset_key(table.default_keyset_id if keyset_id is None else keyset_id, now_us)
    master = table.active_keyset_key(table.master_keyset_id, now_us)
    if master is None:
        return ENC_NOT_AUTHORIZED_FOR_MASTER_KEY, None
    if table.caller_site_id is None:  # docs/differences.md#encrypt-settings: a status, not a print and None
        return ENC_ENCRYPTION_FAILURE, None
    if key is None:
        return ENC_NOT_AUTHORIZED_FOR_KEY, None
    scope = table.identity_scope if identity_scope is None else int(identity_scope)
    try:
        raw = base64.b64decode(uid)
        identity_type = raw_uid_identity_type(uid, raw)
        generated_ms = now_us // 1000
        expiry_ms = (now_us + table.token_expiry_seconds * 1_000_000) // 1000
        site_payload = b"".join((
            _u32(table.caller_site_id), bytes(8), bytes(4), bytes(4),  # site, publisher, client key, privacy
            established_ms.to_bytes(8, "big"), generated_ms.to_bytes(8, "big"), raw,
        ))
        master_payload = b"".join((
            expiry_ms.to_bytes(8, "big"), generated_ms.to_bytes(8, "big"),
            bytes(4), b"\x01", bytes(4), bytes(4),  # operator site, type, version, key id
            _u32(key.key_id), _gcm_encrypt(key, site_payload),
        ))
        token = b"".join((
            bytes([(scope << 4) | (identity_type << 2) | 3, _VERSION_V4]),
            _u32(master.key_id), _gcm_encrypt(master, master_payload),
        ))
    except (_Malformed, binascii.Error, ValueError, TypeError, IndexError, OverflowError):
        return ENC_ENCRYPTION_FAILURE, None
    return ENC_SUCCESS, base64.urlsafe_b64encode(token).decode("ascii").rstrip("=")


# --- batches ----------------------------------------------------------------------------------


def _as_token(item: Any) -> Optional[str]:
    # Batch items: ASCII str, or ASCII bytes; anything else is INVALID_PAYLOAD (never an exception).
    if isinstance(item, str):
        return item if item.isascii() else None
    if isinstance(item, (bytes, bytearray, memoryview)):
        b = bytes(item)
        return b.decode("ascii") if b.isascii() else None
    return None


def _iter_items(tokens: Any) -> List[Any]:
    if isinstance(tokens, list):
        # a snapshot, taken in one step: another thread may change the caller's list while this one loops
        return list(tokens)
    mod = type(tokens).__module__
    if mod.startswith("pyarrow"):
        return tokens.to_pylist()
    try:
        import numpy as np
        if isinstance(tokens, np.ndarray):
            return tokens.tolist()
    except ImportError:  # pragma: no cover
        pass
    return list(tokens)


def _domains_list(domains: Any, n: int) -> List[Any]:
    if domains is None or isinstance(domains, str):
        return [domains] * n
    items = _iter_items(domains)
    if len(items) != n:
        raise ValueError(f"domain_names has {len(items)} items for {n} tokens")
    return [d.decode("utf-8", "replace") if isinstance(d, (bytes, bytearray)) else d for d in items]


def decrypt_tokens(table: Optional[KeyTable], tokens: Any, now_us: int, client: int, domains: Any,
                   threads: Optional[int]) -> Dict[str, Any]:
    """Decrypt a batch into columns (``threads`` is accepted for interface parity and ignored)."""
    import numpy as np

    items = _iter_items(tokens)
    n = len(items)
    doms = _domains_list(domains, n)
    # The columns of _results.COLUMNS, each filled with its "absent" value (the status column is always set).
    cols = {name: np.zeros(n, dtype=dtype) if dtype[0] in "uS" else
            np.full(n, NONE_I64 if dtype == "i8" else -1, dtype=dtype)
            for name, dtype, _ in COLUMNS if name != "uid_overflow"}
    status, uid, established, expiry = cols["status"], cols["uid"], cols["established_ms"], cols["expiry_ms"]
    site_id, sksi, itype = cols["site_id"], cols["site_key_site_id"], cols["identity_type"]
    version, csg = cols["version"], cols["is_client_side_generated"]
    overflow: Dict[int, str] = {}
    for i, item in enumerate(items):
        if table is None:
            r = _error(NOT_INITIALIZED)
        elif not table.valid(now_us):
            r = _error(KEYS_NOT_SYNCED)
        else:
            tok = _as_token(item)
            r = _error(INVALID_PAYLOAD) if tok is None else decrypt_token(table, tok, now_us, client, doms[i])
        st = r[0]
        status[i] = INVALID_PAYLOAD if st == MALFORMED else st
        if r[1] is not None:
            u = r[1]
            if len(u) == UID_WIDTH and u.isascii():
                uid[i] = u.encode("ascii")
            else:
                overflow[i] = u
        if r[2] is not None:
            established[i] = r[2]
        if r[3] is not None:
            site_id[i] = r[3]
        if r[4] is not None:
            sksi[i] = r[4]
        if r[5] is not None:
            itype[i] = r[5]
        if r[6] is not None:
            version[i] = r[6]
        if r[7] is not None:
            csg[i] = 1 if r[7] else 0
        if r[8] is not None:
            expiry[i] = r[8]
    # as the C engine returns them: the columns, and the uids that are not UID_WIDTH ASCII characters
    return {**cols, "uid_overflow": overflow}


def encrypt_tokens(table: Optional[KeyTable], uids: Any, now_us: int, keyset_id: Optional[int],
                   identity_scope: Optional[int], established_ms: int,
                   threads: Optional[int]) -> Tuple[Any, List[Optional[str]]]:
    """Encrypt a batch of raw UIDs: ``(status uint8 array, tokens)``; bad items get ENCRYPTION_FAILURE."""
    import numpy as np

    items = _iter_items(uids)
    status = np.empty(len(items), dtype=np.uint8)
    out: List[Optional[str]] = []
    for i, item in enumerate(items):
        u = _as_token(item)
        if u is None:
            st, tok = encrypt_token(table, "", now_us, keyset_id, identity_scope, established_ms)
            if st == ENC_SUCCESS:  # pragma: no cover - "" always fails
                st, tok = ENC_ENCRYPTION_FAILURE, None
        else:
            st, tok = encrypt_token(table, u, now_us, keyset_id, identity_scope, established_ms)
        status[i] = st
        out.append(tok)
    return status, out


def max_threads() -> int:
    return 1


def unavailable_reason() -> Optional[str]:
    """Why this engine cannot run here: never (the twin runs wherever Python does)."""
    return None


__all__ = [name for name in dir(sys.modules[__name__]) if name.isupper() and not name.startswith("_")] + [
    "KeyTable", "decrypt_token", "decrypt_result", "encrypt_token", "decrypt_tokens", "encrypt_tokens", "ascii_lower",
    "NAME", "unavailable_reason",
]
