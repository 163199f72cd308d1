"""Key refresh: fetching and parsing the keys JSON (the official ``uid2_client.refresh_keys_util`` API).

The format itself, parser and writer, lives in :mod:`uid2fast._keys_json`; this module keeps the official
names (``parse_keys_json``, ``_parse_keys_json``, ``_make_dt``) and fetches key sets from the operator.
"""
import json
from typing import Any, Optional

from ._keys_json import _make_dt  # noqa: F401 - upstream's namespace
from ._keys_json import error_reason as _error_reason, parse_keys_collection as _parse_keys_json, parse_keys_json
from ._netpolicy import scrub
from ._operator_client import OperatorClient
from .identity_scope import IdentityScope  # noqa: F401 - upstream's namespace
from .keys import EncryptionKey, EncryptionKeysCollection  # noqa: F401 - upstream's namespace
from .refresh_response import RefreshResponse
# Looked up in this module's namespace by _KeyFetcher._post, so code that patches
# ``refresh_keys_util.make_request`` (the official tests do) reaches the request.
from .request_response_util import auth_headers, create_envelope, make_request, parse_response  # noqa: F401
from .request_response_util import BINARY, make_binary_request, post  # noqa: F401 - upstream's namespace
from .envelope import Envelope  # noqa: F401
from .uid2_response import Uid2Response  # noqa: F401

__all__ = ["parse_keys_json", "refresh_sharing_keys", "refresh_bidstream_keys"]


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
