"""The local operator's state: clients, keys, salt buckets, opt-outs, token minting and fault injection.

:class:`OperatorState` holds everything a :class:`~uid2fast.testing.LocalOperator` knows, without HTTP; the
endpoints (:mod:`._endpoints`) answer requests from it and :class:`~uid2fast.testing.LocalOperator` adds the
server (:mod:`._server`). Tokens are minted by the test token generator (:mod:`uid2fast.uid2_token_generator`),
never by an engine, so what the engines decrypt is checked against an independent writer of the layout.
"""
from __future__ import annotations

import base64
import binascii
import collections
import datetime as dt
import hashlib
import hmac
import json
import os
import struct
import threading
import time
from typing import Any, Callable, Deque, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple, Union

from .. import _envelope
from .._keys_json import keys_json_body
from ..input_util import get_base64_encoded_hash, is_phone_number_normalized, normalize_email_string
from ..uid2_token_generator import identity_type_of, token_v3_v4
from ._model import (_DAY_MS, _OPTED_OUT_TEST_IDENTITIES, _REFRESH_OPTOUT_TEST_IDENTITIES, _ROLE_ALIASES,
                     INSUFFICIENT_CONSENT_TCF, MASTER_KEYSET_ID, Millis, RequestRecord, _Client, _ClientError,
                     _Fault, _Key, _to_ms)
from ._raw_uid import RawUidMinter

__all__ = ["OperatorState"]


class OperatorState:
    """The state of a local operator (see :class:`~uid2fast.testing.LocalOperator` for the parameters)."""

    def __init__(
        self,
        identity_scope: Union[str, int] = "UID2",
        *,
        publisher_site_id: int = 1001,
        sharer_site_id: int = 1002,
        bidstream_site_id: int = 1003,
        mapper_site_id: int = 1004,
        site_data: Optional[Mapping[int, Sequence[str]]] = None,
        identity_ttl: dt.timedelta = dt.timedelta(days=3),
        refresh_from_after: dt.timedelta = dt.timedelta(hours=1),
        refresh_ttl: dt.timedelta = dt.timedelta(days=30),
        key_lifetime: dt.timedelta = dt.timedelta(days=30),
        token_expiry_seconds: int = 2_592_000,
        allow_clock_skew_seconds: int = 1800,
        max_identities_per_request: int = 5000,
        n_buckets: int = 16,
        salt: Optional[bytes] = None,
        clock: Optional[Callable[[], int]] = None,
        test_identities: bool = True,
        raw_uid_version: int = 4,
        environment: str = "integ",
    ) -> None:
        if isinstance(identity_scope, str):
            scope = identity_scope.upper()
        else:
            scope = "EUID" if int(identity_scope) else "UID2"
        if scope not in ("UID2", "EUID"):
            raise ValueError(f"identity_scope must be 'UID2' or 'EUID', got {identity_scope!r}")
        self.identity_scope = scope
        self._scope_bit = 1 if scope == "EUID" else 0
        self._clock = clock
        self.time_offset = dt.timedelta(0)
        self._lock = threading.RLock()
        self._salt = salt if salt is not None else os.urandom(32)
        self._raw_uids = RawUidMinter(self._salt, scope, raw_uid_version, environment)
        self._refresh_key = os.urandom(32)
        self._identity_ttl_ms = int(identity_ttl.total_seconds() * 1000)
        self._refresh_from_ms = int(refresh_from_after.total_seconds() * 1000)
        self._refresh_ttl_ms = int(refresh_ttl.total_seconds() * 1000)
        self._key_lifetime_s = int(key_lifetime.total_seconds())
        self.token_expiry_seconds = int(token_expiry_seconds)
        self.allow_clock_skew_seconds = int(allow_clock_skew_seconds)
        self.max_identities_per_request = int(max_identities_per_request)
        self.max_bidstream_lifetime_seconds = int(identity_ttl.total_seconds()) + 10
        self.max_sharing_lifetime_seconds = int(refresh_ttl.total_seconds()) + 10
        self.site_data: Dict[int, List[str]] = {int(k): sorted(v) for k, v in (site_data or {}).items()}
        self.publisher_site_id = publisher_site_id
        self.sharer_site_id = sharer_site_id
        self.bidstream_site_id = bidstream_site_id
        self.mapper_site_id = mapper_site_id

        self._keys: Dict[int, _Key] = {}
        self._keyset_site: Dict[int, int] = {MASTER_KEYSET_ID: -1}
        self._site_keyset: Dict[int, int] = {}
        self._next_key_id = 1
        self._next_keyset_id = 100
        self._clients: Dict[str, _Client] = {}
        self._default_credentials: Dict[str, Tuple[str, str]] = {}
        self._optouts: Dict[Tuple[str, str], int] = {}
        self._raw_uid_optouts: Dict[str, int] = {}
        self._refresh_optout: Set[Tuple[str, str]] = set()
        self._insufficient_consent: Set[str] = set()
        self._faults: List[_Fault] = []
        self.requests: Deque[RequestRecord] = collections.deque(maxlen=10_000)

        now_ms = self.now_ms()
        self._n_buckets = int(n_buckets)
        self._bucket_version = [0] * self._n_buckets
        self._bucket_updated = [now_ms - 30 * _DAY_MS] * self._n_buckets
        self._bucket_previous_rotation: List[Optional[int]] = [None] * self._n_buckets

        now_s = now_ms // 1000
        for keyset in (MASTER_KEYSET_ID, self._keyset_for_site(publisher_site_id),
                       self._keyset_for_site(sharer_site_id)):
            self._add_key(keyset, now_s - 86_400, now_s - 86_400, now_s + self._key_lifetime_s)
        for name, site in (("publisher", publisher_site_id), ("bidstream", bidstream_site_id),
                           ("sharer", sharer_site_id), ("mapper", mapper_site_id)):
            self._default_credentials[name] = self.add_client([name], site, name=name)
        if test_identities:
            for kind, value in _OPTED_OUT_TEST_IDENTITIES:
                self.opt_out(**{kind: value}, at=now_ms - _DAY_MS)
            for kind, value in _REFRESH_OPTOUT_TEST_IDENTITIES:
                self._refresh_optout.add(self._identity(kind, value))
            if scope == "EUID":
                self._insufficient_consent.add(INSUFFICIENT_CONSENT_TCF)

        # Set when the operator closes: cuts injected delays short.
        self._closing = threading.Event()

    def now_ms(self) -> int:
        """The operator's clock, epoch milliseconds (``clock`` plus :attr:`time_offset`)."""
        base = self._clock() if self._clock is not None else int(time.time() * 1000)
        return int(base + self.time_offset.total_seconds() * 1000)

    # ------------------------------------------------------------------------------------------------
    # clients and keys
    # ------------------------------------------------------------------------------------------------
    def credentials(self, role: str) -> Tuple[str, str]:
        """``(api_key, base64 secret)`` of the default client for ``"publisher"``, ``"bidstream"``,
        ``"sharer"`` or ``"mapper"``."""
        try:
            return self._default_credentials[role]
        except KeyError:
            raise ValueError(f"role must be one of {sorted(self._default_credentials)}, got {role!r}") from None

    def add_client(self, roles: Iterable[str], site_id: int, *, name: Optional[str] = None) -> Tuple[str, str]:
        """Register a client with the given roles (role names or aliases) for a site; returns credentials."""
        resolved = set()
        for r in roles:
            role = _ROLE_ALIASES.get(r, r).upper()
            if role not in {"GENERATOR", "ID_READER", "SHARER", "MAPPER"}:
                raise ValueError(f"unknown role {r!r}")
            resolved.add(role)
        api_key = f"{self.identity_scope}-L-{site_id}-" + base64.b64encode(os.urandom(24)).decode()
        secret = os.urandom(32)
        with self._lock:
            self._clients[api_key] = _Client(api_key, secret, resolved, int(site_id), name or ",".join(sorted(roles)))
            if "SHARER" in resolved or "GENERATOR" in resolved:
                self._keyset_for_site(int(site_id))
        return api_key, base64.b64encode(secret).decode()

    def _keyset_for_site(self, site_id: int) -> int:
        with self._lock:
            keyset = self._site_keyset.get(site_id)
            if keyset is None:
                keyset = self._next_keyset_id
                self._next_keyset_id += 1
                self._site_keyset[site_id] = keyset
                self._keyset_site[keyset] = site_id
                if self._keys:  # after construction: give the new keyset a key at once
                    now_s = self.now_ms() // 1000
                    self._add_key(keyset, now_s - 60, now_s - 60, now_s + self._key_lifetime_s)
            return keyset

    def _add_key(self, keyset_id: int, created: int, activates: int, expires: int) -> _Key:
        with self._lock:
            key = _Key(self._next_key_id, keyset_id, self._keyset_site[keyset_id], created, activates, expires,
                       os.urandom(32))
            self._next_key_id += 1
            self._keys[key.id] = key
            return key

    def rotate_keys(self, *, activates_in: dt.timedelta = dt.timedelta(0),
                    lifetime: Optional[dt.timedelta] = None) -> List[int]:
        """Add a new key to every keyset; old keys stay until they expire. Returns the new key ids."""
        now_s = self.now_ms() // 1000
        life = int(lifetime.total_seconds()) if lifetime is not None else self._key_lifetime_s
        act = now_s + int(activates_in.total_seconds())
        with self._lock:
            return [self._add_key(ks, now_s, act, act + life).id for ks in list(self._keyset_site)]

    def expire_keys(self, key_ids: Optional[Iterable[int]] = None, *, at: Optional[Millis] = None) -> None:
        """Make keys (default: all but the newest of each keyset) expire now.

        ``at`` (epoch ms or a datetime) sets the expiry to that time instead, rounded down to the second as
        the keys JSON carries it: a time in the future keeps the keys served and usable until then.
        """
        expires_s = _to_ms(at) // 1000 if at is not None else self.now_ms() // 1000 - 1
        with self._lock:
            if key_ids is None:
                newest: Dict[int, int] = {}
                for k in self._keys.values():
                    if k.id > newest.get(k.keyset_id, 0):
                        newest[k.keyset_id] = k.id
                key_ids = [k.id for k in self._keys.values() if newest[k.keyset_id] != k.id]
            for kid in key_ids:
                k = self._keys[kid]
                self._keys[kid] = _Key(k.id, k.keyset_id, k.site_id, k.created, min(k.activates, expires_s),
                                       expires_s, k.secret)

    def _active_key(self, keyset_id: int, now_s: float) -> _Key:
        with self._lock:
            candidates = [k for k in self._keys.values() if k.keyset_id == keyset_id and k.active(now_s)]
        if not candidates:
            raise _ClientError(f"no active key for keyset {keyset_id}", 500, "error")
        return max(candidates, key=lambda k: (k.activates, k.id))

    def _keys_json(self, client: _Client, *, bidstream: bool) -> Dict[str, Any]:
        now_s = self.now_ms() // 1000
        with self._lock:
            live = sorted((k for k in self._keys.values() if k.expires > now_s), key=lambda k: k.id)
            own = self._site_keyset.get(client.site_id)
        keys = [{"id": k.id, "created": k.created, "activates": k.activates, "expires": k.expires,
                 "secret": k.secret,
                 "keyset_id": k.keyset_id if not bidstream and k.keyset_id in (MASTER_KEYSET_ID, own) else None}
                for k in live]
        if bidstream:
            return keys_json_body(keys, identity_scope=self.identity_scope, site_data=self.site_data,
                                  max_bidstream_lifetime_seconds=self.max_bidstream_lifetime_seconds,
                                  allow_clock_skew_seconds=self.allow_clock_skew_seconds)
        return keys_json_body(
            keys, identity_scope=self.identity_scope, caller_site_id=client.site_id,
            master_keyset_id=MASTER_KEYSET_ID, default_keyset_id=own,
            token_expiry_seconds=str(self.token_expiry_seconds),  # a string, as the operator sends it
            max_sharing_lifetime_seconds=self.max_sharing_lifetime_seconds if "SHARER" in client.roles else None,
            allow_clock_skew_seconds=self.allow_clock_skew_seconds)

    # ------------------------------------------------------------------------------------------------
    # identities, raw UIDs, buckets, opt-outs
    # ------------------------------------------------------------------------------------------------
    @staticmethod
    def _identity(kind: str, value: str) -> Tuple[str, str]:
        """(``"email"``/``"phone"``, base64 hash) from a raw value or a hash (``email_hash``...)."""
        if kind == "email":
            normalized = normalize_email_string(value)
            if normalized is None:
                raise ValueError("invalid email address")
            return "email", get_base64_encoded_hash(normalized)
        if kind == "phone":
            if not is_phone_number_normalized(value):
                raise ValueError("phone number is not normalized")
            return "phone", get_base64_encoded_hash(value)
        if kind in ("email_hash", "phone_hash"):
            try:
                raw = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError, TypeError):
                raise ValueError("invalid hash") from None
            if len(raw) != 32:
                raise ValueError("invalid hash")
            return kind[:5], value
        raise ValueError(f"unknown identity kind {kind!r}")

    def _one_identity(self, **kwargs: Optional[str]) -> Tuple[str, str]:
        given = [(k, v) for k, v in kwargs.items() if v is not None]
        if len(given) != 1:
            raise ValueError("exactly one of email, phone, email_hash, phone_hash is required")
        return self._identity(*given[0])

    def _bucket(self, ident: Tuple[str, str]) -> int:
        digest = hmac.new(self._salt, b"bucket:" + ident[1].encode(), hashlib.sha256).digest()
        return int.from_bytes(digest[:4], "big") % self._n_buckets

    def _raw_uid_bytes(self, ident: Tuple[str, str], version: Optional[int] = None) -> bytes:
        bucket = self._bucket(ident)
        v = self._bucket_version[bucket] if version is None else version
        return self._raw_uids.raw_uid(ident[0], ident[1], bucket, v)

    def raw_uid(self, *, email: Optional[str] = None, phone: Optional[str] = None,
                email_hash: Optional[str] = None, phone_hash: Optional[str] = None) -> str:
        """The current raw UID (base64, 44 characters: 33 bytes by default, see ``raw_uid_version``) of an
        identity, as identity map and tokens give it."""
        return base64.b64encode(self._raw_uid_bytes(self._one_identity(
            email=email, phone=phone, email_hash=email_hash, phone_hash=phone_hash))).decode()

    @staticmethod
    def _bucket_id(index: int) -> str:
        return f"b{index:04d}"

    def bucket_id(self, *, email: Optional[str] = None, phone: Optional[str] = None,
                  email_hash: Optional[str] = None, phone_hash: Optional[str] = None) -> str:
        """The salt bucket id of an identity."""
        return self._bucket_id(self._bucket(self._one_identity(
            email=email, phone=phone, email_hash=email_hash, phone_hash=phone_hash)))

    def rotate_salts(self, bucket_ids: Optional[Iterable[str]] = None) -> List[str]:
        """Rotate salt buckets (default: all): their raw UIDs change and ``last_updated`` becomes now."""
        now = self.now_ms()
        with self._lock:
            indexes = range(self._n_buckets) if bucket_ids is None else [int(b[1:]) for b in bucket_ids]
            for i in indexes:
                self._bucket_version[i] += 1
                self._bucket_previous_rotation[i] = now
                self._bucket_updated[i] = now
            return [self._bucket_id(i) for i in indexes]

    def opt_out(self, *, email: Optional[str] = None, phone: Optional[str] = None,
                email_hash: Optional[str] = None, phone_hash: Optional[str] = None,
                raw_uid: Optional[str] = None, at: Optional[Millis] = None) -> Optional[str]:
        """Opt an identity out (token generate answers ``optout``, identity map and opt-out status report it).

        Returns the identity's current raw UID (None when ``raw_uid`` was given directly).
        """
        when = _to_ms(at) if at is not None else self.now_ms()
        if raw_uid is not None:
            with self._lock:
                self._raw_uid_optouts[raw_uid] = when
            return None
        ident = self._one_identity(email=email, phone=phone, email_hash=email_hash, phone_hash=phone_hash)
        with self._lock:
            self._optouts[ident] = when
        return base64.b64encode(self._raw_uid_bytes(ident)).decode()

    def _optout_time(self, ident: Tuple[str, str]) -> Optional[int]:
        with self._lock:
            return self._optouts.get(ident)

    # ------------------------------------------------------------------------------------------------
    # tokens
    # ------------------------------------------------------------------------------------------------
    def issue_token(self, *, email: Optional[str] = None, phone: Optional[str] = None,
                    email_hash: Optional[str] = None, phone_hash: Optional[str] = None,
                    raw_uid: Optional[str] = None, identity_type: Optional[int] = None,
                    site_id: Optional[int] = None, privacy_bits: int = 0, client_side: bool = False,
                    client_side_opted_out: bool = False, generated: Optional[Millis] = None,
                    expires: Optional[Millis] = None, established: Optional[Millis] = None,
                    version: int = 4) -> str:
        """An advertising token (v4 by default, or v3) signed with the current keys.

        Parameters
        ----------
        email, phone, email_hash, phone_hash : str, optional
            The identity (its raw UID as identity map returns it).
        raw_uid, identity_type : optional
            Or a raw UID directly (base64) and its type (0 email, 1 phone; by default a 33-byte raw UID's
            metadata byte says, else email unless the text starts with ``F`` or ``B``).
        site_id : int, optional
            The issuing site (default the publisher site); a site without keys gets a keyset.
        privacy_bits : int
            Raw privacy bits; ``client_side=True`` adds 0x2 (CSTG), ``client_side_opted_out`` 0x4.
        generated, expires, established : int (ms) or datetime, optional
            Timestamps; default now, now + identity TTL, now.
        version : {3, 4}
        """
        if raw_uid is not None:
            uid = base64.b64decode(raw_uid)
            itype = int(identity_type) if identity_type is not None else identity_type_of(raw_uid, uid)
        else:
            ident = self._one_identity(email=email, phone=phone, email_hash=email_hash, phone_hash=phone_hash)
            uid = self._raw_uid_bytes(ident)
            itype = 0 if ident[0] == "email" else 1
        bits = privacy_bits | (0x2 if client_side else 0) | (0x4 if client_side_opted_out else 0)
        now = self.now_ms()
        gen = _to_ms(generated) if generated is not None else now
        exp = _to_ms(expires) if expires is not None else gen + self._identity_ttl_ms
        est = _to_ms(established) if established is not None else gen
        site = self.publisher_site_id if site_id is None else int(site_id)
        return self._build_token(uid, itype, site, bits, est, gen, exp, version)

    def _build_token(self, uid: bytes, identity_type: int, site_id: int, privacy_bits: int,
                     established: int, generated: int, expires: int, version: int = 4) -> str:
        if version not in (3, 4):
            raise ValueError(f"version must be 3 or 4, got {version!r}")
        now_s = self.now_ms() / 1000
        site_key = self._active_key(self._keyset_for_site(site_id), now_s)
        master_key = self._active_key(MASTER_KEYSET_ID, now_s)
        # Minted by the test token generator, not by an engine: what the engines decrypt is checked
        # against an independent writer of the layout.
        return token_v3_v4(uid, site_id=site_id, master_key_id=master_key.id, master_secret=master_key.secret,
                           site_key_id=site_key.id, site_secret=site_key.secret, identity_scope=self._scope_bit,
                           identity_type=identity_type, version=128 if version == 4 else 112,
                           privacy_bits=privacy_bits, established_ms=established, generated_ms=generated,
                           expires_ms=expires)

    def decrypt_token(self, token: str) -> Tuple[str, int, int]:
        """Open an advertising token issued here: ``(raw_uid, site_id, privacy_bits)``; ValueError if invalid."""
        site_payload = self._open_token(token)[2]
        site_id, _, _, bits = struct.unpack(">iqii", site_payload[:20])
        return base64.b64encode(site_payload[36:]).decode(), site_id, bits

    def token_key_ids(self, token: str) -> Tuple[int, int]:
        """``(master key id, site key id)`` of an advertising token issued here: the keys a key set must hold
        to decrypt it. ValueError if the token is not one of this operator's."""
        master_id, site_key_id, _ = self._open_token(token)
        return master_id, site_key_id

    def _open_token(self, token: str) -> Tuple[int, int, bytes]:
        try:
            padded = token + "=" * (-len(token) % 4)
            data = base64.urlsafe_b64decode(padded) if ("-" in token or "_" in token) else base64.b64decode(padded)
            if len(data) < 6 + 28 or data[1] not in (112, 128):
                raise ValueError("not a v3/v4 token")
            with self._lock:
                master = self._keys[struct.unpack(">I", data[2:6])[0]]
            master_payload = _envelope.decrypt_gcm(master.secret, data[6:])
            with self._lock:
                site_key = self._keys[struct.unpack(">i", master_payload[29:33])[0]]
            site_payload = _envelope.decrypt_gcm(site_key.secret, master_payload[33:])
        except (KeyError, struct.error, binascii.Error) as exc:
            raise ValueError(f"invalid token ({type(exc).__name__})") from None
        return master.id, site_key.id, site_payload

    def _issue_identity(self, ident: Tuple[str, str], site_id: int, established: Optional[int] = None,
                        *, v1: bool = False) -> Dict[str, Any]:
        now = self.now_ms()
        est = now if established is None else established
        token = self._build_token(self._raw_uid_bytes(ident), 0 if ident[0] == "email" else 1, site_id, 0,
                                  est, now, now + self._identity_ttl_ms)
        response_key = None if v1 else base64.b64encode(os.urandom(32)).decode()
        refresh_expires = now + self._refresh_ttl_ms
        inner = json.dumps({"k": ident[0], "h": ident[1], "s": site_id, "e": est, "x": refresh_expires,
                            "r": response_key}).encode()
        refresh_token = base64.b64encode(b"\x02" + _envelope.encrypt_gcm(self._refresh_key, inner)).decode()
        body: Dict[str, Any] = {"advertising_token": token, "user_token": token, "refresh_token": refresh_token,
                                "identity_expires": now + self._identity_ttl_ms,
                                "refresh_expires": refresh_expires, "refresh_from": now + self._refresh_from_ms}
        if response_key is not None:
            body["refresh_response_key"] = response_key
        return body

    def generate_identity(self, *, email: Optional[str] = None, phone: Optional[str] = None,
                          email_hash: Optional[str] = None, phone_hash: Optional[str] = None,
                          site_id: Optional[int] = None, v1_session: bool = False) -> Dict[str, Any]:
        """The identity JSON ``/v2/token/generate`` would return (without HTTP).

        ``v1_session=True`` issues one without ``refresh_response_key``: its refresh is answered in plain JSON.
        """
        ident = self._one_identity(email=email, phone=phone, email_hash=email_hash, phone_hash=phone_hash)
        return self._issue_identity(ident, self.publisher_site_id if site_id is None else site_id, v1=v1_session)

    # ------------------------------------------------------------------------------------------------
    # fault injection
    # ------------------------------------------------------------------------------------------------
    def _add_fault(self, kind: str, n: int, value: float, path: Optional[str]) -> None:
        if n < 0:
            raise ValueError("n must be >= 0")
        with self._lock:
            self._faults.append(_Fault(kind, int(n), float(value), path))

    def fail_next(self, n: int, status: int = 503, *, path: Optional[str] = None) -> None:
        """The next ``n`` requests (to ``path`` if given) get HTTP ``status`` with a JSON error body."""
        self._add_fault("fail", n, status, path)

    def delay_next(self, n: int, seconds: float, *, path: Optional[str] = None) -> None:
        """The next ``n`` requests wait ``seconds`` before being handled (bounded: close() cuts it short)."""
        self._add_fault("delay", n, seconds, path)

    def rate_limit_next(self, n: int, retry_after: float = 1, *, path: Optional[str] = None) -> None:
        """The next ``n`` requests get ``429 Too Many Requests`` with ``Retry-After`` and no body."""
        self._add_fault("rate_limit", n, retry_after, path)

    def malformed_next(self, n: int, *, path: Optional[str] = None) -> None:
        """The next ``n`` requests get HTTP 200 with a body that is not a valid encrypted response."""
        self._add_fault("malformed", n, 0, path)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_faults(self, path: str) -> Tuple[float, Optional[_Fault]]:
        """Consume the faults that apply to this request: (total delay, the terminal fault if any)."""
        delay = 0.0
        terminal = None
        with self._lock:
            for f in self._faults:
                if f.remaining <= 0 or (f.path is not None and f.path != path):
                    continue
                if f.kind == "delay":
                    f.remaining -= 1
                    delay += f.value
                elif terminal is None:
                    f.remaining -= 1
                    terminal = f
            self._faults = [f for f in self._faults if f.remaining > 0]
        return delay, terminal

    def request_count(self, path: Optional[str] = None) -> int:
        """Requests received (to ``path`` if given)."""
        return sum(1 for r in list(self.requests) if path is None or r.path == path)
