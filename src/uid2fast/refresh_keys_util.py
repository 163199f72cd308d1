"""Key refresh: fetching and parsing the keys JSON (the official ``uid2_client.refresh_keys_util`` API).

Parsing follows docs/keys-and-envelope.md#keys-json: unknown fields are ignored, ``token_expiry_seconds``
may be a string, ``site_data`` is read (docs/differences.md#domain-check) and the legacy ``/key/latest``
array body is accepted (docs/differences.md#key-latest-body).
"""
import base64
import datetime as dt
import json
from typing import Any, Optional

from ._keyset_check import check_body
from ._netpolicy import scrub
from ._operator_client import OperatorClient
from .identity_scope import IdentityScope
from .keys import EncryptionKey, EncryptionKeysCollection
from .refresh_response import RefreshResponse
# Looked up in this module's namespace by _KeyFetcher._post, so code that patches
# ``refresh_keys_util.make_request`` (the official tests do) reaches the request.
from .request_response_util import auth_headers, create_envelope, make_request, parse_response  # noqa: F401
from .request_response_util import BINARY, make_binary_request, post  # noqa: F401 - upstream's namespace
from .envelope import Envelope  # noqa: F401
from .uid2_response import Uid2Response  # noqa: F401

__all__ = ["parse_keys_json", "refresh_sharing_keys", "refresh_bidstream_keys"]


def _make_dt(timestamp: Any) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.timezone.utc)


def _parse_key(key: Any) -> EncryptionKey:
    return EncryptionKey(
        key["id"],
        key.get("site_id", -1),
        _make_dt(key["created"]),
        _make_dt(key["activates"]),
        _make_dt(key["expires"]),
        base64.b64decode(key["secret"]),
        key.get("keyset_id"),
    )


def _parse_keys_json(resp_body: Any) -> EncryptionKeysCollection:
    # Every setting and key checked for type and range first: a broken key set fails the refresh (the
    # last good one stays in use) instead of making every later decrypt fail.
    check_body(resp_body)
    if isinstance(resp_body, list):  # legacy /key/latest body: a bare array of keys
        legacy = EncryptionKeysCollection([_parse_key(k) for k in resp_body])
        legacy._identity_scope_stated = False
        return legacy
    if not isinstance(resp_body, dict):
        raise ValueError(f"keys body must be an object or an array, not {type(resp_body).__name__}")
    identity_scope = IdentityScope.EUID if resp_body.get("identity_scope") == "EUID" else IdentityScope.UID2
    raw_keys = resp_body["keys"]
    if raw_keys is None:
        raw_keys = []
    keys = [_parse_key(k) for k in raw_keys]
    site_data = resp_body.get("site_data")  # checked by check_body: null or the array form (Java, .NET)
    collection = EncryptionKeysCollection(
        keys, identity_scope, resp_body.get("caller_site_id"), resp_body.get("master_keyset_id"),
        resp_body.get("default_keyset_id"), resp_body.get("token_expiry_seconds"),
        resp_body.get("max_sharing_lifetime_seconds"), resp_body.get("max_bidstream_lifetime_seconds"),
        resp_body.get("allow_clock_skew_seconds"), site_data=site_data,
    )
    collection._identity_scope_stated = resp_body.get("identity_scope") is not None
    return collection


def _error_reason(exc: BaseException) -> str:
    # A readable string (docs/differences.md#refresh-reason: the official reason is a tuple of exc.args).
    text = str(exc)
    if isinstance(exc, KeyError):
        return f"missing field {text} in keys response"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def parse_keys_json(resp_body: Any) -> RefreshResponse:
    """Parse the ``body`` of a keys response into a RefreshResponse (never raises)."""
    try:
        return RefreshResponse.make_success(_parse_keys_json(resp_body))
    except Exception as exc:  # noqa: BLE001 - any malformed body is a failed refresh, as upstream
        return RefreshResponse.make_error(_error_reason(exc))


class _KeyFetcher(OperatorClient):
    """Fetches a key set: ``refresh_*_keys`` and ``uid2fast keys fetch`` use it.

    The request steps are looked up in this module (``refresh_keys_util.make_request`` is patchable, as in
    the official SDK). Without ``http``, requests go through the calling context's transport.
    """

    _hooks = __name__

    def __init__(self, base_url: str, auth_key: str, secret_key: Any, http: Optional[Any] = None) -> None:
        super().__init__(base_url, auth_key, secret_key, http=http, shared=True)

    def fetch(self, path: str) -> bytes:
        """The decrypted keys response (JSON bytes) of ``path``."""
        return self._post(path, None)


def _fetch_keys(base_url: str, path: str, auth_key: str, secret_key: bytes,
                http: Optional[Any] = None) -> RefreshResponse:
    """POST an empty envelope to a key endpoint, with retries (a fresh envelope on every attempt)."""
    try:
        return keys_response(_KeyFetcher(base_url, auth_key, secret_key, http).fetch(path))
    except Exception as exc:  # noqa: BLE001 - a refresh reports failure, it does not raise
        return keys_failure(exc, (auth_key, secret_key))


# The two ends of a key refresh, shared with the asyncio clients (uid2fast.aio).
def keys_response(payload: bytes) -> RefreshResponse:
    """A successful refresh from a decrypted keys response; raises for a body that fails the checks."""
    return RefreshResponse.make_success(_parse_keys_json(json.loads(payload).get("body")))


def keys_failure(exc: BaseException, secrets: Any) -> RefreshResponse:
    """A failed refresh whose reason names ``exc``, with every form of every secret scrubbed."""
    return RefreshResponse.make_error(scrub(_error_reason(exc), secrets))


def refresh_sharing_keys(base_url: str, auth_key: str, secret_key: bytes,
                         http: Optional[Any] = None) -> RefreshResponse:
    """Fetch the sharing key set (``/v2/key/sharing``)."""
    return _fetch_keys(base_url, "/v2/key/sharing", auth_key, secret_key, http)


def refresh_bidstream_keys(base_url: str, auth_key: str, secret_key: bytes,
                           http: Optional[Any] = None) -> RefreshResponse:
    """Fetch the bidstream key set (``/v2/key/bidstream``)."""
    return _fetch_keys(base_url, "/v2/key/bidstream", auth_key, secret_key, http)
