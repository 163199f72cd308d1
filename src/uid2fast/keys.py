"""Encryption keys and key collections (the official ``uid2_client.keys`` API).

An :class:`EncryptionKeysCollection` is what a key refresh returns. Besides the official accessors it
holds an immutable engine key table (per-key ciphers initialised once), built with the collection, so
decrypting never re-derives anything per token and the first call after a refresh costs what every other
does. A refresh creates a new collection, table included, and the clients swap it in with one attribute
assignment, so readers never see a half-built set. The collection carries the engine that built its table.
"""
import copy
import datetime as dt
import logging
import sys
from bisect import bisect_right
from typing import Any, Dict, Iterable, KeysView, List, Mapping, Optional, ValuesView

from . import _engine
from ._keyset_check import collection_problem
from ._time import to_us
from .identity_scope import IdentityScope

__all__ = ["EncryptionKey", "EncryptionKeysCollection"]

logger = logging.getLogger("uid2fast.keys")

DEFAULT_TOKEN_EXPIRY_SECONDS = 30 * 24 * 60 * 60
DEFAULT_CLOCK_SKEW_SECONDS = 30 * 60


class EncryptionKey:
    """One key of a key set.

    Attributes
    ----------
    key_id : int
    site_id : int
        The site the key belongs to; -1 for keys from the sharing and bidstream endpoints.
    created, activates, expires : datetime.datetime
        UTC times.
    secret : bytes
        The key material. Never shown by ``repr``.
    keyset_id : int or None
    """

    __slots__ = ("_id", "_site_id", "_created", "_activates", "_expires", "_secret", "_keyset_id")

    def __init__(self, key_id, site_id, created, activates, expires, secret, keyset_id=None):  # type: ignore[no-untyped-def]
        self._id = key_id
        self._site_id = site_id
        self._created = created
        self._activates = activates
        self._expires = expires
        self._secret = secret
        self._keyset_id = keyset_id

    @property
    def key_id(self) -> int:
        return self._id

    @property
    def site_id(self) -> int:
        return self._site_id

    @property
    def keyset_id(self) -> Optional[int]:
        return self._keyset_id

    @property
    def created(self) -> dt.datetime:
        return self._created

    @property
    def activates(self) -> dt.datetime:
        return self._activates

    @property
    def expires(self) -> dt.datetime:
        return self._expires

    @property
    def secret(self) -> bytes:
        return self._secret

    def is_active(self, now: dt.datetime) -> bool:
        """Whether the key is active at ``now`` (``activates <= now < expires``)."""
        return self._activates <= now < self._expires

    def __repr__(self) -> str:
        return (
            f"EncryptionKey(key_id={self._id!r}, site_id={self._site_id!r}, keyset_id={self._keyset_id!r}, "
            f"activates={self._activates!r}, expires={self._expires!r}, secret=<redacted>)"
        )


class _ActivatesView:
    """Lets bisect search a key list by activation time."""

    __slots__ = ("_keys",)

    def __init__(self, keys: List[EncryptionKey]):
        self._keys = keys

    def __len__(self) -> int:
        return len(self._keys)

    def __getitem__(self, i: int) -> dt.datetime:
        return self._keys[i].activates


def _latest_active(keys: Optional[List[EncryptionKey]], now: dt.datetime) -> Optional[EncryptionKey]:
    # The latest-activated key that is active now: walk back from the first key activating after now.
    if not keys:
        return None
    i = bisect_right(_ActivatesView(keys), now)
    while i > 0:
        i -= 1
        if keys[i].is_active(now):
            return keys[i]
    return None


_NAME_LISTS = (list, tuple, set, frozenset)


def normalize_site_data(site_data: Any) -> Dict[int, List[str]]:
    """``site_data`` as ``{site_id: [ascii-lowercased names]}``; ValueError when it is malformed.

    Accepts the operator's list form (``[{"id": 1, "domain_names": [...]}]``, app names merged in, an
    ``app_names`` list honoured too) or an already built mapping ``{site_id: [names]}``. Sites with id 0
    are skipped (Java). Anything else (a number, a string, an element that is not an object or has no
    integer ``id``, names that are not strings) raises ValueError naming the element, never its value, in
    the words the keys JSON check uses (_keyset_check).
    """
    from ._engine_py import ascii_lower
    from ._keyset_check import INT32_MAX, INT32_MIN, setting_int

    out: Dict[int, List[str]] = {}
    if site_data is None:
        return out
    items: List[Any]
    if isinstance(site_data, Mapping):
        items = [{"id": k, "domain_names": v} for k, v in site_data.items()]
    elif isinstance(site_data, (list, tuple)):
        items = list(site_data)
    else:
        raise ValueError(f"site_data must be an array, not {type(site_data).__name__}")
    for i, site in enumerate(items):
        if not isinstance(site, Mapping) or site.get("id") is None:
            raise ValueError(f"site_data[{i}] must be an object with an id")
        site_id = setting_int(f"site_data[{i}].id", site["id"], INT32_MIN, INT32_MAX)
        if site_id is None:
            raise ValueError(f"site_data[{i}] must be an object with an id")
        names: List[str] = []
        for field in ("domain_names", "app_names"):
            value = site.get(field)
            if value is None:
                continue
            if not isinstance(value, _NAME_LISTS) or not all(isinstance(n, str) for n in value):
                raise ValueError(f"site_data[{i}].{field} must be an array of strings")
            names.extend(value)
        if site_id == 0:
            continue
        bucket = out.setdefault(site_id, [])
        for name in names:
            lowered = ascii_lower(name)
            if lowered not in bucket:
                bucket.append(lowered)
    return out


class EncryptionKeysCollection:
    """A dictionary-like collection of :class:`EncryptionKey` objects and the key set's settings.

    The constructor and accessors are the official SDK's; ``site_data`` (the CSTG domain and app names
    per site, docs/differences.md#domain-check) is an addition.
    """

    # The engine table lives in a slot, which the C scalar decrypt reads directly (_engine_c_client.pxi);
    # everything else is in the instance dict, as before.
    __slots__ = ("_table", "__dict__", "__weakref__")

    def __init__(
        self,
        keys,  # type: ignore[no-untyped-def]
        identity_scope=IdentityScope.UID2,
        caller_site_id=None,
        master_keyset_id=None,
        default_keyset_id=None,
        token_expiry_seconds=None,
        max_sharing_lifetime_seconds=None,
        max_bidstream_lifetime_seconds=None,
        allow_clock_skew_seconds=None,
        site_data=None,
        *,
        engine=None,
    ):
        self._latest_expires: Optional[dt.datetime] = None
        self._keys: Dict[int, EncryptionKey] = {}
        # Every key in the order given, duplicates of an id included: keyset lookups see them all
        # (as the official lists do), lookups by id see the last one.
        self._all_keys: List[EncryptionKey] = []
        self._identity_scope = identity_scope
        self._keys_by_site: Dict[int, List[EncryptionKey]] = {}
        self._keys_by_keyset: Dict[int, List[EncryptionKey]] = {}
        # The engine (module) this collection runs on and its key table; the table is rebuilt (and swapped in
        # with one assignment) whenever the keys change; None when the keys cannot make one (_build_table).
        self._engine: Any = _engine.engine if engine is None else engine
        self._table: Any = None
        self._caller_site_id = caller_site_id
        self._master_keyset_id = master_keyset_id
        self._default_keyset_id = default_keyset_id
        self._token_expiry_seconds = token_expiry_seconds
        self._max_sharing_lifetime_seconds = (
            sys.maxsize if max_sharing_lifetime_seconds is None else max_sharing_lifetime_seconds
        )
        self._max_bidstream_lifetime_seconds = (
            sys.maxsize if max_bidstream_lifetime_seconds is None else max_bidstream_lifetime_seconds
        )
        self._allow_clock_skew_seconds = (
            DEFAULT_CLOCK_SKEW_SECONDS if allow_clock_skew_seconds is None else allow_clock_skew_seconds
        )
        self._site_data = normalize_site_data(site_data)
        # False when the keys JSON had no identity_scope (the legacy client then applies its own scope).
        self._identity_scope_stated = True
        self.set_keys(keys)

    def set_keys(self, keys: Iterable[EncryptionKey]) -> None:
        """Add keys to the collection (the official method; the engine table is rebuilt)."""
        for key in keys:
            self._keys[key.key_id] = key
            self._all_keys.append(key)
            if key.site_id > 0:
                self._keys_by_site.setdefault(key.site_id, []).append(key)
            if key.keyset_id is not None:
                self._keys_by_keyset.setdefault(key.keyset_id, []).append(key)
            if self._latest_expires is None or key.expires > self._latest_expires:
                self._latest_expires = key.expires
        # Sorted by activation, so the chosen key never depends on JSON order (docs/differences.md#key-selection).
        for site_keys in self._keys_by_site.values():
            site_keys.sort(key=lambda k: k.activates)
        for keyset_keys in self._keys_by_keyset.values():
            keyset_keys.sort(key=lambda k: k.activates)
        self._build_table()

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def __getitem__(self, key_id: int) -> EncryptionKey:
        return self._keys[key_id]

    # Pickling (multiprocessing, Dask, Ray): the keys and settings travel, the engine by name; the table (C
    # memory) does not, and is rebuilt when the receiving process unpickles the collection.
    def __getstate__(self) -> Dict[str, Any]:
        state = self.__dict__.copy()
        state["_engine"] = self._engine.NAME
        state["_table"] = None
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        name = state.pop("_engine", None)
        state.pop("_table", None)  # the slot is filled by _build_table below
        self.__dict__.update(state)
        self._engine = _engine.engines.get("py" if name == _engine.py_engine.NAME else "c", _engine.engine)
        self._build_table()

    def __repr__(self) -> str:
        return (
            f"EncryptionKeysCollection({len(self._keys)} keys, "
            f"identity_scope={IdentityScope(self._identity_scope).name}, "
            f"caller_site_id={self._caller_site_id!r}, latest_expires={self._latest_expires!r})"
        )

    def _with_identity_scope(self, identity_scope: IdentityScope) -> "EncryptionKeysCollection":
        """A copy of this collection with ``identity_scope`` (the keys and settings are shared, not copied)."""
        clone = copy.copy(self)  # through __getstate__/__setstate__: the same engine
        clone._identity_scope = identity_scope
        clone._identity_scope_stated = True
        clone._build_table()  # the table holds the scope: built again with the new one
        return clone

    def get_identity_scope(self):  # type: ignore[no-untyped-def]
        return self._identity_scope

    def get_caller_site_id(self) -> Optional[int]:
        return self._caller_site_id

    def get_master_keyset_id(self) -> Optional[int]:
        return self._master_keyset_id

    def get_default_keyset_id(self) -> Optional[int]:
        return self._default_keyset_id

    def get_token_expiry_seconds(self):  # type: ignore[no-untyped-def]
        return self._token_expiry_seconds

    def get_max_bidstream_lifetime_seconds(self) -> int:
        return self._max_bidstream_lifetime_seconds

    def get_max_sharing_lifetime_seconds(self) -> int:
        return self._max_sharing_lifetime_seconds

    def get_allow_clock_skew_seconds(self) -> int:
        return self._allow_clock_skew_seconds

    def get_site_data(self) -> Dict[int, List[str]]:
        """The CSTG domain and app names per site id (ASCII-lowercased)."""
        return {k: list(v) for k, v in self._site_data.items()}

    def get(self, key_id: int, default: Optional[EncryptionKey] = None) -> Optional[EncryptionKey]:
        return self._keys.get(key_id, default)

    def key_ids(self) -> KeysView[int]:
        return self._keys.keys()

    def values(self) -> ValuesView[EncryptionKey]:
        return self._keys.values()

    def get_default_keyset_key(self, now: dt.datetime) -> Optional[EncryptionKey]:
        return self.get_by_keyset_key(self._default_keyset_id, now)

    def get_master_key(self, now: dt.datetime) -> Optional[EncryptionKey]:
        return self.get_by_keyset_key(self._master_keyset_id, now)

    def get_by_keyset_key(self, keyset_id: Optional[int], now: dt.datetime) -> Optional[EncryptionKey]:
        """The latest-activated active key of a keyset, or None."""
        return _latest_active(self._keys_by_keyset.get(keyset_id), now)  # type: ignore[arg-type]

    def get_active_site_key(self, site_id: int, now: dt.datetime) -> Optional[EncryptionKey]:
        """The latest-activated active key of a site, or None."""
        return _latest_active(self._keys_by_site.get(site_id), now)

    def valid(self, now: dt.datetime) -> bool:
        """True while at least one key expires after ``now``."""
        return self._latest_expires is not None and self._latest_expires > now

    # -- engine table -------------------------------------------------------------------------
    def _on_engine(self, engine: Any) -> "EncryptionKeysCollection":
        """This key set on ``engine`` (an engine module): itself when it already runs there, else a copy."""
        if engine is self._engine:
            return self
        clone = EncryptionKeysCollection.__new__(EncryptionKeysCollection)
        clone.__dict__.update(self.__dict__)
        # Its own containers, so set_keys on one never changes the other.
        clone._keys = dict(self._keys)
        clone._all_keys = list(self._all_keys)
        clone._keys_by_site = {k: list(v) for k, v in self._keys_by_site.items()}
        clone._keys_by_keyset = {k: list(v) for k, v in self._keys_by_keyset.items()}
        clone._site_data = {k: list(v) for k, v in self._site_data.items()}
        clone._engine = engine
        clone._build_table()
        return clone

    def _build_table(self) -> None:
        """Builds this collection's table on its engine and swaps it in (one assignment), or None when a
        setting or key is of the wrong type or out of range.

        Collections from the keys parser are already checked (a bad key set is a failed refresh); this
        covers collections built by hand, so that decrypt and encrypt return a status (NOT_INITIALIZED, as
        for no keys at all) instead of raising.
        """
        table = None
        problem = collection_problem(self)
        if problem is None:
            try:
                table = self._engine.KeyTable(**self._table_args())
            except (TypeError, ValueError, OverflowError, AttributeError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
        if problem is not None:
            logger.warning("key set not usable (%s): decrypt and encrypt answer NOT_INITIALIZED", problem)
        self._table = table

    def _engine_table(self) -> Any:
        """The engine's immutable key table for this collection (None for one the engines cannot use)."""
        return self._table

    def _table_args(self) -> Dict[str, Any]:
        """What a KeyTable is built from; times as integer microseconds."""
        tes = self._token_expiry_seconds
        try:
            tes_int = int(tes) if tes is not None else 0
        except (TypeError, ValueError):
            tes_int = 0
        if tes_int <= 0:  # docs/differences.md#encrypt-settings: missing or 0 means 30 days.
            tes_int = DEFAULT_TOKEN_EXPIRY_SECONDS
        keys = [
            (k.key_id, k.site_id, k.keyset_id, to_us(k.activates), to_us(k.expires), bytes(k.secret))
            for k in self._all_keys
        ]
        return dict(
            keys=keys,
            identity_scope=int(self._identity_scope),
            caller_site_id=self._caller_site_id,
            master_keyset_id=self._master_keyset_id,
            default_keyset_id=self._default_keyset_id,
            token_expiry_seconds=tes_int,
            max_sharing_lifetime_seconds=int(self._max_sharing_lifetime_seconds),
            max_bidstream_lifetime_seconds=int(self._max_bidstream_lifetime_seconds),
            allow_clock_skew_seconds=int(self._allow_clock_skew_seconds),
            site_domains={k: list(v) for k, v in self._site_data.items()},
            public_scope=self._identity_scope,
            latest_expires_us=None if self._latest_expires is None else to_us(self._latest_expires),
        )
