"""uid2fast: a fast, drop-in replacement for the official UID2/EUID Python SDK (``uid2-client``).

``import uid2fast as uid2_client`` keeps code written for the official SDK working, with the same
results (except the fixes listed in the README, "Differences from uid2-client"); token decryption and
encryption run on a C engine when it is built (``uid2fast.backend == "c"``), else on a pure-Python twin.
:func:`install_as_uid2_client` also makes ``import uid2_client`` and ``from uid2_client.x import Y`` give
uid2fast's own modules.

Additions: batch APIs (:func:`decrypt_tokens`, :func:`encrypt_tokens`, the clients'
``decrypt_tokens_into_raw_uids`` and ``encrypt_raw_uids_into_tokens``), key auto-refresh for every
client, opt-out status and token validation clients, and :mod:`uid2fast.testing` (a local operator).
"""
from ._engine import backend
from ._dropin import install_as_uid2_client
from .advertising_token_version import AdvertisingTokenVersion
from .auto_refresh import EncryptionKeysAutoRefreshResult, EncryptionKeysAutoRefresher
from .batch import DecryptedTokens, EncryptedTokens, decrypt_tokens, encrypt_tokens
from .bidstream_client import BidstreamClient
from .client import Uid2Client, Uid2ClientError
from .client_type import ClientType
from .decryption_status import DecryptionStatus
from .encryption import (
    DecryptedData,
    DecryptedToken,
    EncryptionError,
    base64_url_special_chars,
    decrypt,
    decrypt_data,
    decrypt_token,
    encrypt,
    encrypt_data,
)
from .encryption_data_response import EncryptionDataResponse
from .encryption_status import EncryptionStatus
from .envelope import Envelope
from .euid_client_factory import EuidClientFactory
from .identity_buckets_response import IdentityBucketsResponse
from .identity_map_client import IdentityMapClient
from .identity_map_input import IdentityMapInput
from .identity_map_response import IdentityMapResponse
from .identity_map_v3_client import IdentityMapV3Client
from .identity_map_v3_input import IdentityMapV3Input
from .identity_map_v3_response import ApiIdentity, ApiResponse, IdentityMapV3Response, MappedIdentity, UnmappedIdentity
from .identity_scope import IdentityScope
from .identity_tokens import IdentityTokens
from .identity_type import IdentityType
from .input_util import (
    EmailParsingState,
    base64_to_byte_array,
    byte_array_to_base64,
    get_base64_encoded_hash,
    get_datetime_utc_iso_format,
    get_sha256_bytes,
    is_ascii_digit,
    is_phone_number_normalized,
    normalize_and_hash_email,
    normalize_and_hash_phone,
    normalize_email_string,
)
from .keys import EncryptionKey, EncryptionKeysCollection
from .publisher_client import Uid2PublisherClient
from .refresh_keys_util import parse_keys_json, refresh_bidstream_keys, refresh_sharing_keys
from .refresh_response import RefreshResponse
from ._http import HttpConfig, Uid2HttpError
from .optout_client import OptOutClient
from .refresher import KeyRefresher
from .request_response_util import (
    BINARY,
    auth_headers,
    create_envelope,
    make_binary_request,
    make_request,
    parse_response,
    post,
)
from .sharing_client import SharingClient
from .token_generate_input import TokenGenerateInput
from .token_generate_response import TokenGenerateResponse
from .token_refresh_response import TokenRefreshResponse
from .uid2_base64_url_coder import Uid2Base64UrlCoder
from .uid2_client_factory import Uid2ClientFactory
from .uid2_response import Uid2Response
from .uid2_token_generator import Params, UID2TokenGenerator, encryption_block_size
from .unmapped_identity_reason import UnmappedIdentityReason
from . import (  # noqa: E402 - the submodules, bound by name as upstream's star-import does
    advertising_token_version, auto_refresh, bidstream_client, client, client_type, decryption_status, encryption,
    encryption_data_response, encryption_status, envelope, euid_client_factory, identity_buckets_response,
    identity_map_client, identity_map_input, identity_map_response, identity_map_v3_client, identity_map_v3_input,
    identity_map_v3_response, identity_scope, identity_tokens, identity_type, input_util, keys, publisher_client,
    refresh_keys_util, refresh_response, request_response_util, sharing_client, token_generate_input,
    token_generate_response, token_refresh_response, uid2_base64_url_coder, uid2_client_factory, uid2_response,
    uid2_token_generator, unmapped_identity_reason,
)

__version__ = "0.1.0"

# Submodules beyond the official package's, loaded on first attribute access so that ``import uid2fast``
# stays cheap (spark, cli and testing pull in more) while ``uid2fast.keyfile.load_keys(...)`` works after a
# plain ``import uid2fast``.
_LAZY_SUBMODULES = frozenset(("cli", "keyfile", "spark", "testing"))


def __getattr__(name: str) -> object:
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list:
    return sorted(set(globals()) | _LAZY_SUBMODULES)


def _features() -> dict:
    from . import _engine

    features = getattr(_engine.engine, "features", None)
    return dict(features()) if callable(features) else {"engine": backend}


backend_features = _features()
"""What the active engine uses (e.g. the AES implementation); ``{"engine": "python"}`` for the twin."""

__all__ = [
    "AdvertisingTokenVersion", "ApiIdentity", "ApiResponse", "BINARY", "BidstreamClient", "ClientType",
    "DecryptedData", "DecryptedToken", "DecryptedTokens", "DecryptionStatus", "EmailParsingState",
    "EncryptedTokens", "EncryptionDataResponse", "EncryptionError", "EncryptionKey", "EncryptionKeysAutoRefreshResult",
    "EncryptionKeysAutoRefresher", "EncryptionKeysCollection", "EncryptionStatus", "Envelope", "EuidClientFactory",
    "IdentityBucketsResponse", "IdentityMapClient", "IdentityMapInput", "IdentityMapResponse", "IdentityMapV3Client",
    "IdentityMapV3Input", "IdentityMapV3Response", "IdentityScope", "IdentityTokens", "IdentityType", "KeyRefresher",
    "HttpConfig", "Uid2HttpError", "OptOutClient",
    "MappedIdentity", "Params", "RefreshResponse", "SharingClient", "TokenGenerateInput", "TokenGenerateResponse",
    "TokenRefreshResponse", "UID2TokenGenerator", "Uid2Base64UrlCoder", "Uid2Client", "Uid2ClientError",
    "Uid2ClientFactory", "Uid2PublisherClient", "Uid2Response", "UnmappedIdentity", "UnmappedIdentityReason",
    "auth_headers", "backend", "backend_features", "base64_to_byte_array", "base64_url_special_chars",
    "byte_array_to_base64", "create_envelope", "decrypt", "decrypt_data", "decrypt_token", "decrypt_tokens",
    "encrypt", "encrypt_data", "encrypt_tokens", "encryption_block_size", "get_base64_encoded_hash",
    "get_datetime_utc_iso_format", "get_sha256_bytes", "install_as_uid2_client", "is_ascii_digit",
    "is_phone_number_normalized",
    "make_binary_request", "make_request", "normalize_and_hash_email", "normalize_and_hash_phone",
    "normalize_email_string", "parse_keys_json", "parse_response", "post", "refresh_bidstream_keys",
    "refresh_sharing_keys",
    # The official package has no __all__, so ``from uid2_client import *`` also binds its submodules.
    "advertising_token_version", "auto_refresh", "bidstream_client", "client", "client_type", "decryption_status",
    "encryption", "encryption_data_response", "encryption_status", "envelope", "euid_client_factory",
    "identity_buckets_response", "identity_map_client", "identity_map_input", "identity_map_response",
    "identity_map_v3_client", "identity_map_v3_input", "identity_map_v3_response", "identity_scope",
    "identity_tokens", "identity_type", "input_util", "keys", "publisher_client", "refresh_keys_util",
    "refresh_response", "request_response_util", "sharing_client", "token_generate_input", "token_generate_response",
    "token_refresh_response", "uid2_base64_url_coder", "uid2_client_factory", "uid2_response", "uid2_token_generator",
    "unmapped_identity_reason",
]
