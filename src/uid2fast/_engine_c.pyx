# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
# cython: embedsignature=True
"""The C engine: a thin Cython layer over csrc/ (see csrc/uid2_engine.h).

Same names and results as ``_engine_py`` (the semantic reference). Scalar calls keep the GIL (they take
about a microsecond); batch calls collect (pointer, length) pairs with the GIL held, keeping every input
object alive, then release the GIL for the whole decode/decrypt and split the rows across threads. The C
workers never touch the Python API; statuses are mapped to enums by the public layer.
"""
import os

NAME = "c"

# The code tables both engines share (statuses, clients, privacy bits), part of each engine's interface.
from ._codes import (SUCCESS, NOT_AUTHORIZED_FOR_MASTER_KEY, NOT_AUTHORIZED_FOR_KEY, NOT_INITIALIZED,
    INVALID_PAYLOAD, EXPIRED_TOKEN, KEYS_NOT_SYNCED, VERSION_NOT_SUPPORTED, INVALID_PAYLOAD_TYPE,
    INVALID_IDENTITY_SCOPE, USER_OPTED_OUT, DOMAIN_NAME_CHECK_FAILED, INVALID_TOKEN_LIFETIME, MALFORMED,
    ENC_SUCCESS, ENC_NOT_AUTHORIZED_FOR_MASTER_KEY, ENC_NOT_AUTHORIZED_FOR_KEY, ENC_NOT_INITIALIZED,
    ENC_KEYS_NOT_SYNCED, ENC_ENCRYPTION_FAILURE, CLIENT_SHARING, CLIENT_BIDSTREAM, CLIENT_LEGACY,
    PRIVACY_CLIENT_SIDE_GENERATED, PRIVACY_OPTED_OUT, UID_WIDTH, NONE_I64)

_U32 = 1 << 32
_U64 = 1 << 64

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def features():
    """Which implementations this process uses: ``aes`` is ``"aesni-gcm"`` (AES-GCM with AES-NI and
    PCLMULQDQ, csrc/uid2_gcm_ni.c, for 32-byte keys) or ``"evp"`` (OpenSSL), ``base64`` is ``"b64fast"`` (a
    vectorised decoder for clean input in front of the exact one) or ``"exact"``. The fast paths are chosen
    by CPUID and switched off by ``UID2FAST_NO_FASTPATH=1`` (read once per process). AES-CBC (v2) is EVP."""
    return {
        "engine": NAME,
        "aes": "aesni-gcm" if uid2_gcm_ni_available() else "evp",
        "cbc": "evp",
        "base64": "b64fast" if uid2_b64fast_enabled() else "exact",
    }


def ascii_lower(s):
    """Lower-case ASCII letters only: the domain check compares names this way in both engines."""
    return s.translate(_ASCII_LOWER)


def max_threads():
    """The default number of batch threads (one per CPU)."""
    return os.cpu_count() or 1


cdef int64_t _sat64(object v, str name) except? -1:
    # Saturating conversion: every comparison the engine makes with these values (times within the
    # datetime range, quotients below 2**39) gives the same answer as with the exact Python int.
    if not isinstance(v, int):
        raise TypeError(f"{name} must be an int, not {type(v).__name__}")
    if v > INT64_MAX:
        return INT64_MAX
    if v < INT64_MIN:
        return INT64_MIN
    return v


cdef bytes _utf8(str s):
    # Exact bytes for any str (lone surrogates included), so byte equality is str equality.
    return s.encode("utf-8", "surrogatepass")


# The module along its seams (C declarations in _engine_c.pxd).
include "_engine_c_table.pxi"
include "_engine_c_scalar.pxi"
include "_engine_c_result.pxi"
include "_engine_c_input.pxi"
include "_engine_c_batch.pxi"
