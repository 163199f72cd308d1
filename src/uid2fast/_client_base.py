"""What the key-holding clients share: credentials, key swap, HTTP options, auto-refresh."""
import datetime as dt
from typing import Any, Optional

from . import _engine
from ._env import FromEnv
from ._netpolicy import check_api_key, check_secret_key, has_control
from ._results import DECRYPTION_STATUSES, ENCRYPTION_STATUSES
from .metrics import Metrics, RefreshRecorder, status_counts
from .refresh_response import RefreshResponse


def _engine_arg(engine: Any) -> Any:
    """An engine module from an ``engine=`` argument: None (the import-time choice), "c"/"py" or a module."""
    if engine is None:
        return _engine.engine
    if isinstance(engine, str):
        return _engine.by_name(engine)
    return engine


class _KeyHolder(FromEnv):
    """Holds the current key set; a refresh swaps it with one assignment (atomic for readers).

    ``from_env()`` (:class:`uid2fast._env.FromEnv`) builds a client from ``UID2_*`` or ``EUID_*`` variables.
    ``metrics()`` (:class:`uid2fast.metrics.Metrics`) reports the key set's age, the refreshes and the decrypt
    (encrypt) calls by status: each refresh goes through ``_apply`` (or records itself, as ``refresh_keys``
    does), and the public decrypt and encrypt methods count each answer after the engine gives it.
    """

    # The two attributes every scalar decrypt reads live in slots, which the C method reads directly
    # (_engine_c_client.pxi); instances keep their __dict__ for everything else.
    __slots__ = ("_keys", "_decrypts")

    _ENCRYPTS = True  # whether this client encrypts (has encrypt status counts)
    _CLIENT = -1  # the engine's client code of this client's scalar decrypt (_codes.CLIENT_*), where it has one

    def __init__(self, base_url: str, auth_key: str, secret_key: str, *, http: Optional[Any] = None,
                 session: Optional[Any] = None, engine: Optional[Any] = None):
        self._keys: Any = None
        # The engine this client's key sets are built on (fixed for its life; tests pick one per client).
        self._engine = _engine_arg(engine)
        self._base_url = base_url
        # Checked now, as every operator client does (see uid2fast._operator_client): surrounding
        # whitespace stripped, control characters refused without echoing the value.
        self._auth_key = check_api_key(auth_key)
        self._secret_key: Any
        try:
            self._secret_key = check_secret_key(secret_key)
        except ValueError:
            if not isinstance(secret_key, str) or has_control(secret_key.strip()) or not secret_key.strip():
                raise
            # Not base64: kept as given, so refresh() fails with that reason (the official client, too,
            # accepts it here and fails on refresh) while a client fed keys from files works.
            self._secret_key = secret_key
        # Without options, requests go through the shared default transport (one pooled session);
        # with them, this client gets its own transport (timeouts, retries, session).
        self._http: Any = None
        if http is not None or session is not None:
            from ._http import HttpTransport

            self._http = HttpTransport(http, session)
        # Metrics: refreshes and installs, and the statuses of the decrypt (encrypt) calls, counted on this
        # client's engine (the C counters are atomic adds, cheap enough for every call).
        self._refreshes = RefreshRecorder()
        self._decrypts = self._engine.StatusCounter(DECRYPTION_STATUSES)
        self._encrypts: Any = self._engine.StatusCounter(ENCRYPTION_STATUSES) if self._ENCRYPTS else None

    def __repr__(self) -> str:
        # Never the API key or the secret.
        return f"{type(self).__name__}(base_url={self._base_url!r}, keys={self._keys!r})"

    @property
    def keys(self) -> Any:
        """The current EncryptionKeysCollection, or None before the first successful refresh."""
        return self._keys

    def _adopt(self, keys: Any) -> Any:
        """Swap a new key set in (one assignment: readers see the old set or the new one, table included), on
        this client's engine (a key set built on another engine is copied onto it first)."""
        on_engine = getattr(keys, "_on_engine", None)  # (None for anything but an EncryptionKeysCollection)
        if on_engine is not None:
            keys = on_engine(self._engine)
        self._keys = keys
        self._refreshes.keys_installed(keys)
        return self._keys  # (what the client holds: the legacy client may give it its own scope)

    def _apply(self, refresh_response: RefreshResponse) -> RefreshResponse:
        """Install the keys of a successful refresh and record the outcome (the refresh methods, sync or
        async, end here)."""
        if refresh_response.success:
            self._adopt(refresh_response.keys)
        self._refreshes.record_response(refresh_response)
        return refresh_response

    def _decrypt_slow(self, token: Any, domain_name: Optional[str]) -> Any:
        """The public scalar decrypt in Python, counted: ``decrypt_token_into_raw_uid`` where the C engine is not
        in use, and what its C version (``_engine_c_client.pxi``) falls back to for anything but a C key table."""
        from .encryption import _decrypt_result

        keys = self._keys
        if keys is not None:
            table = keys._table
            if table is not None:  # the key set's engine applied to its table
                t = keys._engine.decrypt_result(table, token, self._CLIENT, domain_name)
                self._decrypts.add_status(t.status)
                return t
        t = _decrypt_result(keys, token, self._CLIENT, domain_name, None)
        self._decrypts.add_status(t.status)
        return t

    def metrics(self) -> Metrics:
        """A snapshot of this client's metrics: key-set age, the last refresh and its outcome, refresh counts and
        the decrypt (encrypt) calls by status (see :class:`uid2fast.metrics.Metrics`)."""
        return self._refreshes.snapshot(status_counts(self._decrypts), status_counts(self._encrypts))

    def _http_kwargs(self) -> dict:
        # Only passed when set, so code that patches the refresh functions sees the official call.
        return {} if self._http is None else {"http": self._http}

    def start_auto_refresh(self, interval: dt.timedelta = dt.timedelta(hours=1),
                           retry_interval: dt.timedelta = dt.timedelta(seconds=30)) -> Any:
        """Start a background :class:`~uid2fast.refresher.KeyRefresher` for this client and return it.

        It refreshes now, then every ``interval`` (``retry_interval`` after a failure), keeping the
        last good key set when a refresh fails. Stop it with ``.stop()`` or use it as a context manager.
        """
        from .refresher import KeyRefresher

        refresher = KeyRefresher(self, interval, retry_interval)
        refresher.start()
        return refresher


def _c_slots() -> None:
    """Tell the C engine where the scalar decrypt's attributes live (``_KeyHolder._keys``/``_decrypts`` and
    ``EncryptionKeysCollection._table``), so it reads them from their slots."""
    c = _engine.c_engine
    if c is not None:
        from .keys import EncryptionKeysCollection

        c.client_slots(_KeyHolder, EncryptionKeysCollection)


_c_slots()


def _c_method(cls: type, name: str, c_name: str) -> None:
    """Make ``cls.<name>`` the C engine's function ``c_name`` where the C engine is in use (a binding function:
    a method like the Python one, with its name, docstring and signature); the Python method stays otherwise.
    The C function does what the Python one does and hands anything it does not take to ``_decrypt_slow``."""
    c = _engine.c_engine
    if c is None:
        return
    py, fn = cls.__dict__[name], getattr(c, c_name)
    for attr in ("__doc__", "__name__", "__qualname__", "__module__"):
        setattr(fn, attr, getattr(py, attr))
    setattr(cls, name, fn)
