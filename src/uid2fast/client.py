"""The legacy ``Uid2Client`` (create it with Uid2ClientFactory or EuidClientFactory).

Do not use this module directly, import from uid2fast instead. Its ``encrypt`` and ``decrypt`` raise
:class:`EncryptionError` for any failure, as documented upstream.
"""
import json
from typing import Any, Optional

from . import _codes
from ._client_base import _KeyHolder
from .encryption import DecryptedToken, EncryptionError, _decrypt_code, _decrypt_result, _legacy, encrypt
from .encryption import decrypt  # noqa: F401 - a name of the official module (its star-import)
from .encryption_status import EncryptionStatus
from .identity_scope import IdentityScope
from .refresh_keys_util import parse_keys_json, refresh_sharing_keys

# Names the official ``uid2_client.client`` gets from its star-imports, importable from here too.
from .advertising_token_version import AdvertisingTokenVersion  # noqa: E402,F401
from .client_type import ClientType  # noqa: E402,F401
from .decryption_status import DecryptionStatus  # noqa: E402,F401
from .encryption import (  # noqa: E402,F401
    DecryptedData, base64_url_special_chars, decrypt_data, decrypt_token, encrypt_data,
)
from .encryption_data_response import EncryptionDataResponse  # noqa: E402,F401
from .envelope import Envelope  # noqa: E402,F401
from .identity_type import IdentityType  # noqa: E402,F401
from .request_response_util import (  # noqa: E402,F401
    BINARY, auth_headers, create_envelope, make_binary_request, make_request, parse_response, post,
)
from .uid2_base64_url_coder import Uid2Base64UrlCoder  # noqa: E402,F401
from .uid2_response import Uid2Response  # noqa: E402,F401
from .uid2_token_generator import Params, UID2TokenGenerator  # noqa: E402,F401

__all__ = ["Uid2Client", "Uid2ClientError"]


# DO NOT INSTANTIATE THIS CLASS DIRECTLY, USE Uid2ClientFactory OR EuidClientFactory
class Uid2Client(_KeyHolder):
    """The legacy client: ``refresh_keys()``, ``encrypt()`` and ``decrypt()``, raising on failure."""

    def __init__(self, base_url: str, auth_key: str, secret_key: str, *, http: Optional[Any] = None,
                 session: Optional[Any] = None, engine: Optional[Any] = None):
        self._identity_scope: Optional[IdentityScope] = None
        super().__init__(base_url, auth_key, secret_key, http=http, session=session, engine=engine)

    # Every key set this client holds goes through here. A keys JSON without ``identity_scope`` (the legacy
    # array body, a sharing body without the field) takes the client's own scope, as the Java, .NET and C++
    # clients check tokens against theirs: an EUID client's keys are EUID keys.
    @property  # type: ignore[override]
    def _keys(self) -> Any:
        return self.__dict__.get("_scoped_keys")

    @_keys.setter
    def _keys(self, keys: Any) -> None:
        scope = self.__dict__.get("_identity_scope")
        if (keys is not None and scope is not None and not getattr(keys, "_identity_scope_stated", True)
                and keys.get_identity_scope() != scope):
            keys = keys._with_identity_scope(scope)
        self.__dict__["_scoped_keys"] = keys

    # ``from_env()`` (inherited) builds the client as ``Uid2Client(...)`` does, with no scope of its own;
    # Uid2ClientFactory.from_env() and EuidClientFactory.from_env() give it one, as their create() does.
    @classmethod
    def create_uid2(cls, base_url: str, auth_key: str, secret_key: str, **kwargs: Any) -> "Uid2Client":
        client = cls(base_url, auth_key, secret_key, **kwargs)
        client._identity_scope = IdentityScope.UID2
        return client

    @classmethod
    def create_euid(cls, base_url: str, auth_key: str, secret_key: str, **kwargs: Any) -> "Uid2Client":
        client = cls(base_url, auth_key, secret_key, **kwargs)
        client._identity_scope = IdentityScope.EUID
        return client

    def refresh_keys(self) -> Any:
        """Fetch the latest keys (``/v2/key/sharing``) and return them; raises on failure."""
        refresh_response = self._apply(refresh_sharing_keys(self._base_url, self._auth_key, self._secret_key,
                                                            **self._http_kwargs()))
        if refresh_response.success:
            return self._keys
        raise Exception(refresh_response.reason)

    def refresh(self) -> Any:
        """Like ``refresh_keys`` but returns a RefreshResponse (so every client refreshes the same way)."""
        response = refresh_sharing_keys(self._base_url, self._auth_key, self._secret_key, **self._http_kwargs())
        return self._apply(response)

    def refresh_json(self, json_str: str) -> Any:
        """Load keys from a keys response JSON string and return them; raises on failure."""
        body = json.loads(json_str)
        refresh_response = self._apply(parse_keys_json(body["body"]))
        if refresh_response.success:
            return self._keys
        raise Exception(refresh_response.reason)

    def encrypt(self, uid2: str, keyset_id: Optional[int] = None) -> str:
        """Encrypt a raw UID2 into a sharing token; raises EncryptionError(status value) on failure."""
        result = encrypt(uid2, self._identity_scope, self._keys, keyset_id)
        self._encrypts.add_status(result.status)
        if result.status == EncryptionStatus.SUCCESS:
            return result.encrypted_data  # type: ignore[return-value]
        raise EncryptionError(result.status.value)

    def decrypt(self, token: str) -> DecryptedToken:
        """Decrypt a token (no lifetime checks); raises EncryptionError for any failure."""
        keys = self._keys
        try:
            t = _decrypt_result(keys, token, _codes.CLIENT_LEGACY, None, None)
        except EncryptionError:  # no key set or no token the official SDK could compare: an invalid payload
            self._decrypts.add(_codes.INVALID_PAYLOAD)
            raise
        self._decrypts.add_status(t.status)
        if t.status is DecryptionStatus.SUCCESS:
            return t
        # The error the official client raises, from the engine code (uid2fast.encryption.decrypt does the same).
        return _legacy(_decrypt_code(token, keys, None, _codes.CLIENT_LEGACY, None), keys)


class Uid2ClientError(Exception):
    """Raised for problems encountered while interacting with UID2 services."""
