"""Client for DSPs: decrypt advertising tokens from the bidstream (the official ``BidstreamClient``)."""
import datetime as dt
from typing import Any, Optional

from . import _codes
from ._client_base import _c_method, _KeyHolder
from .batch import DecryptedTokens, decrypt_tokens
from .client_type import ClientType  # noqa: F401 - the official module's namespace
from .encryption import DecryptedToken, _decrypt_result, decrypt_token  # noqa: F401 - as upstream
from .refresh_keys_util import parse_keys_json, refresh_bidstream_keys
from .refresh_response import RefreshResponse

__all__ = ["BidstreamClient"]

_BIDSTREAM = _codes.CLIENT_BIDSTREAM


class BidstreamClient(_KeyHolder):
    """Client for UID2/EUID bidstream services.

    Parameters
    ----------
    base_url : str
        The operator, e.g. ``'https://prod.uidapi.com'``.
    auth_key : str
        The API key.
    secret_key : str
        The client secret (base64).
    http : uid2fast._http.HttpConfig, optional
        Timeouts and retries for ``refresh()`` (keyword only, an addition).
    session : requests.Session, optional
        A session of your own for ``refresh()`` (keyword only, an addition).
    """

    _ENCRYPTS = False
    _CLIENT = _BIDSTREAM

    def __init__(self, base_url: str, auth_key: str, secret_key: str, *, http: Optional[Any] = None,
                 session: Optional[Any] = None, engine: Optional[Any] = None):
        super().__init__(base_url, auth_key, secret_key, http=http, session=session, engine=engine)

    def _decrypt_token_into_raw_uid(self, token: Any, domain_name: Optional[str],
                                    now: Optional[dt.datetime] = None) -> DecryptedToken:
        return _decrypt_result(self._keys, token, _BIDSTREAM, domain_name, now)

    def decrypt_token_into_raw_uid(self, token: str, domain_name: Optional[str] = None) -> DecryptedToken:
        """Decrypt an advertising token.

        Parameters
        ----------
        token : str
            The advertising token from the bid request.
        domain_name : str, optional
            The publisher's domain or app name from the bid request; client-side generated tokens are
            only accepted when it matches the token's site (docs/differences.md#domain-check).

        Returns
        -------
        DecryptedToken
            Every outcome is a status, a malformed token included (``INVALID_PAYLOAD``).
        """
        return self._decrypt_slow(token, domain_name)

    def decrypt_tokens_into_raw_uids(self, tokens: Any, domain_names: Any = None, *, now: Optional[dt.datetime] = None,
                                     threads: Optional[int] = None) -> DecryptedTokens:
        """Decrypt many advertising tokens at once (see :func:`uid2fast.decrypt_tokens`)."""
        result = decrypt_tokens(tokens, self._keys, now=now, client="bidstream", domain_names=domain_names,
                                threads=threads)
        self._decrypts.add_codes(result.status)
        return result

    def refresh(self) -> RefreshResponse:
        """Fetch the latest bidstream keys (``/v2/key/bidstream``); the current keys stay on failure."""
        return self._apply(refresh_bidstream_keys(self._base_url, self._auth_key, self._secret_key,
                                                  **self._http_kwargs()))

    def _refresh_json(self, json_str: str) -> RefreshResponse:
        import json

        return self._apply(parse_keys_json(json.loads(json_str)["body"]))


_c_method(BidstreamClient, "decrypt_token_into_raw_uid", "bidstream_decrypt_token_into_raw_uid")
