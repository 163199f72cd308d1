"""Client for sharers: encrypt raw UID2s into sharing tokens and decrypt them (the official ``SharingClient``)."""
import datetime as dt
from typing import Any, Optional

from . import _codes
from ._client_base import _c_method, _KeyHolder
from .batch import DecryptedTokens, EncryptedTokens, decrypt_tokens, encrypt_tokens
from .client_type import ClientType  # noqa: F401 - the official module's namespace
from .encryption import DecryptedToken, _decrypt_result, decrypt_token, encrypt  # noqa: F401 - as upstream
from .encryption_data_response import EncryptionDataResponse
from .refresh_keys_util import parse_keys_json, refresh_sharing_keys
from .refresh_response import RefreshResponse

__all__ = ["SharingClient"]

_SHARING = _codes.CLIENT_SHARING


class SharingClient(_KeyHolder):
    """Client for UID2/EUID sharing: ``encrypt_raw_uid_into_token`` and ``decrypt_token_into_raw_uid``.

    Parameters are those of :class:`~uid2fast.BidstreamClient`.
    """

    _CLIENT = _SHARING

    def __init__(self, base_url: str, auth_key: str, secret_key: str, *, http: Optional[Any] = None,
                 session: Optional[Any] = None, engine: Optional[Any] = None):
        super().__init__(base_url, auth_key, secret_key, http=http, session=session, engine=engine)

    def _encrypt_raw_uid_into_token(self, uid2: Any, keyset_id: Optional[int] = None,
                                    now: Optional[dt.datetime] = None) -> EncryptionDataResponse:
        return encrypt(uid2, None, self._keys, keyset_id, now=now)

    def _decrypt_token_into_raw_uid(self, token: Any, now: Optional[dt.datetime] = None) -> DecryptedToken:
        return _decrypt_result(self._keys, token, _SHARING, None, now)

    def encrypt_raw_uid_into_token(self, uid2: str, keyset_id: Optional[int] = None) -> EncryptionDataResponse:
        """Encrypt a raw UID2 into a v4 sharing token (the default keyset unless ``keyset_id``)."""
        r = encrypt(uid2, None, self._keys, keyset_id)
        self._encrypts.add_status(r.status)
        return r

    def decrypt_token_into_raw_uid(self, token: str) -> DecryptedToken:
        """Decrypt a sharing token; every outcome is a status, a malformed token included."""
        return self._decrypt_slow(token, None)

    def decrypt_tokens_into_raw_uids(self, tokens: Any, *, now: Optional[dt.datetime] = None,
                                     threads: Optional[int] = None) -> DecryptedTokens:
        """Decrypt many sharing tokens at once (see :func:`uid2fast.decrypt_tokens`)."""
        result = decrypt_tokens(tokens, self._keys, now=now, client="sharing", threads=threads)
        self._decrypts.add_codes(result.status)
        return result

    def encrypt_raw_uids_into_tokens(self, uids: Any, keyset_id: Optional[int] = None, *,
                                     now: Optional[dt.datetime] = None,
                                     threads: Optional[int] = None) -> EncryptedTokens:
        """Encrypt many raw UID2s; a per-item EncryptionStatus column and the tokens."""
        result = encrypt_tokens(uids, self._keys, keyset_id=keyset_id, now=now, threads=threads)
        self._encrypts.add_codes(result.status)
        return result

    def refresh(self) -> RefreshResponse:
        """Fetch the latest sharing keys (``/v2/key/sharing``); the current keys stay on failure."""
        return self._apply(refresh_sharing_keys(self._base_url, self._auth_key, self._secret_key,
                                                **self._http_kwargs()))

    def _refresh_json(self, json_str: str) -> RefreshResponse:
        import json

        return self._apply(parse_keys_json(json.loads(json_str)["body"]))


_c_method(SharingClient, "decrypt_token_into_raw_uid", "sharing_decrypt_token_into_raw_uid")
