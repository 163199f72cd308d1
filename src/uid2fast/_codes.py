"""The codes both engines answer with: decryption and encryption statuses, client types, privacy bits and the
batch column constants; and the payload types of the (deprecated) encrypted-data format.
``csrc/uid2_engine.h`` has the same lists as C enums; tests/test_engine_c_internal.py
checks the two against each other."""

from enum import Enum


class _PayloadType(Enum):
    """First byte of the encrypted-data formats (``encrypt_data``/``decrypt_data``, docs/formats.md)."""

    ENCRYPTED_DATA = 128
    ENCRYPTED_DATA_V3 = 96


# --- decryption status codes (UID2_STATUS_* in csrc/uid2_engine.h) ---------------------------
SUCCESS = 0
NOT_AUTHORIZED_FOR_MASTER_KEY = 1
NOT_AUTHORIZED_FOR_KEY = 2
NOT_INITIALIZED = 3
INVALID_PAYLOAD = 4
EXPIRED_TOKEN = 5
KEYS_NOT_SYNCED = 6
VERSION_NOT_SUPPORTED = 7
INVALID_PAYLOAD_TYPE = 8  # reserved (encrypted data); never returned for tokens
INVALID_IDENTITY_SCOPE = 9
USER_OPTED_OUT = 10
DOMAIN_NAME_CHECK_FAILED = 11
INVALID_TOKEN_LIFETIME = 12
# Where the official SDK raised: INVALID_PAYLOAD for the clients, EncryptionError('invalid payload')
# for the legacy functions. Batch results store it as INVALID_PAYLOAD.
MALFORMED = 13

# --- encryption status codes (UID2_ENC_* in csrc/uid2_engine.h) -------------------------------
ENC_SUCCESS = 0
ENC_NOT_AUTHORIZED_FOR_MASTER_KEY = 1
ENC_NOT_AUTHORIZED_FOR_KEY = 2
ENC_NOT_INITIALIZED = 3
ENC_KEYS_NOT_SYNCED = 4
ENC_ENCRYPTION_FAILURE = 5

# --- client types ---------------------------------------------------------------------------
CLIENT_SHARING = 1
CLIENT_BIDSTREAM = 2
CLIENT_LEGACY = 3

PRIVACY_CLIENT_SIDE_GENERATED = 0x2
PRIVACY_OPTED_OUT = 0x4

UID_WIDTH = 44  # a raw UID2 in base64: the width of the batch uid column
NONE_I64 = -(1 << 63)  # "absent" in the batch int64 columns
