"""The base of every operator client: credentials, transport, and the one request path ``_post``.

:class:`OperatorClient` is used by the publisher, identity map (v2, v3), opt-out and validate calls, by key
refresh (``refresh_keys_util`` and so the bidstream, sharing and legacy clients) and by ``uid2fast keys
fetch``. It owns:

- ``from_env()``, the credentials read from ``UID2_*`` or ``EUID_*`` variables (:mod:`uid2fast._env`);
- the credentials, checked once at construction (:func:`uid2fast._netpolicy.check_api_key`: surrounding
  whitespace is stripped, control characters and inner whitespace are refused without echoing the value);
- the transport (:class:`uid2fast._http.HttpTransport`: timeouts, deadlines, retries, size limits);
- ``_post(path, body, binary)``: one enveloped request with retries, each attempt a fresh envelope.

The steps of an attempt (``create_envelope``, ``make_request``/``make_binary_request``, ``parse_response``,
``auth_headers``, ``post``) are looked up at call time in the module named by the class's ``_hooks``
attribute, the client's own module: code that patches e.g. ``uid2fast.identity_map_client.make_request``
(as the official SDK's tests do) reaches the request, as it did with the official package.
"""
from __future__ import annotations

import datetime as dt
import sys
from typing import Any, ClassVar, Optional, Tuple

from ._env import FromEnv
from ._http import HttpConfig, HttpTransport, current_transport
from ._netpolicy import Deadline, check_api_key, check_secret_key

__all__ = ["ClientCredentials", "OperatorClient"]


class ClientCredentials(FromEnv):
    """The base URL and the credentials of an operator client, checked once, never printed.

    The blocking :class:`OperatorClient` and the asyncio clients (:mod:`uid2fast.aio`) both start here.
    """

    def __init__(self, base_url: str, auth_key: str, secret_key: Any) -> None:
        if not isinstance(base_url, str):
            raise TypeError(f"base_url must be a str, not {type(base_url).__name__}")
        self._base_url = base_url
        self._auth_key = check_api_key(auth_key)
        self._secret_raw = secret_key if isinstance(secret_key, str) else None
        self._secret_key = check_secret_key(secret_key)

    def __repr__(self) -> str:
        # Never the API key or the secret.
        return f"{type(self).__name__}(base_url={self._base_url!r})"

    def _secrets(self) -> Tuple[Any, ...]:
        """Every secret this client holds, for scrubbing error messages."""
        return tuple(s for s in (self._auth_key, self._secret_raw, self._secret_key) if s)


class OperatorClient(ClientCredentials):
    """Credentials, a transport and ``_post``; subclasses add the endpoints.

    ``from_env()`` (:class:`uid2fast._env.FromEnv`) builds any of them from ``UID2_BASE_URL``,
    ``UID2_API_KEY`` and ``UID2_SECRET_KEY`` (``EUID_...`` with ``prefix="EUID"``).

    Parameters
    ----------
    base_url : str
        The operator, e.g. ``"https://prod.uidapi.com"``.
    auth_key : str
        The API key. Surrounding whitespace (a trailing newline from a secrets file) is stripped.
    secret_key : str or bytes
        The base64 client secret (or, for the key-refresh functions, the decoded bytes).
    http : HttpConfig or HttpTransport, optional
        Timeouts, deadlines, retries and response limits, or a transport to share.
    session : requests.Session, optional
        A session to share connections with.
    shared : bool
        Without ``http``/``session``, use the calling context's transport (the shared default) instead of
        creating one: the key-holding clients and the module-level refresh functions do this.

    Raises
    ------
    TypeError, ValueError
        Invalid credentials; the message never contains them.
    """

    #: The module whose names the request steps are looked up in (patchable hooks).
    _hooks: ClassVar[str] = "uid2fast.request_response_util"

    def __init__(self, base_url: str, auth_key: str, secret_key: Any, *, http: Optional[Any] = None,
                 session: Optional[Any] = None, shared: bool = False) -> None:
        super().__init__(base_url, auth_key, secret_key)
        self._transport: Optional[HttpTransport]
        if isinstance(http, HttpTransport):
            self._transport = http
        elif http is not None or session is not None or not shared:
            if http is not None and not isinstance(http, HttpConfig):
                raise TypeError(f"http must be an HttpConfig, not {type(http).__name__}")
            self._transport = HttpTransport(http, session)
        else:
            self._transport = None  # the calling context's transport, looked up per call

    @property
    def _http(self) -> HttpTransport:
        return self._transport if self._transport is not None else current_transport()

    def close(self) -> None:
        """Release pooled connections (of a transport this client created)."""
        if self._transport is not None:
            self._transport.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _call_deadline(self) -> Deadline:
        """One deadline for all the requests of a public call that sends several (split inputs)."""
        return Deadline(self._http.config.call_timeout)

    def _post(self, path: str, body: Optional[bytes], binary: bool = False, *, enveloped: bool = True,
              deadline: Optional[Deadline] = None) -> bytes:
        """POST to ``path`` with retries; return the decrypted JSON payload.

        Parameters
        ----------
        path : str
            The endpoint, e.g. ``"/v2/identity/map"``.
        body : bytes or None
            The JSON request (None for the key endpoints).
        binary : bool
            Send and receive the raw envelope (``/v3/identity/map``) instead of base64 text.
        enveloped : bool
            False sends ``body`` as is and returns the raw response body (``/v2/token/refresh``).
        deadline : Deadline, optional
            A deadline shared with other requests of the same public call (see :meth:`_call_deadline`).

        Raises
        ------
        Uid2HttpError
            The request failed (no response, a non-2xx status, a deadline, an oversized body).
        ValueError
            The response could not be decrypted, or its nonce does not match.
        """
        hooks = sys.modules[self._hooks]
        base_url, auth_key, secret = self._base_url, self._auth_key, self._secret_key

        def attempt() -> bytes:
            headers = hooks.auth_headers(auth_key)
            if not enveloped:
                return bytes(hooks.post(base_url, path, headers=headers, data=body).read())
            envelope = hooks.create_envelope(secret, dt.datetime.now(tz=dt.timezone.utc), body)
            make = hooks.make_binary_request if binary else hooks.make_request
            uid2_response = make(base_url, path, headers=headers, envelope=envelope)
            return hooks.parse_response(secret, uid2_response, envelope.nonce)

        return self._http.call(attempt, endpoint=path, secrets=self._secrets(), deadline=deadline)
