# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
# cython: embedsignature=True
"""The C engine: a thin Cython layer over csrc/ (see csrc/uid2_engine.h).

Same names and results as ``_engine_py`` (the semantic reference). Scalar calls keep the GIL (they take
about a microsecond); batch calls collect (pointer, length) pairs with the GIL held, keeping every input
object alive, then release the GIL for the whole decode/decrypt and split the rows across threads. The C
workers never touch the Python API. What answers become (enums, the public result object, the batch
columns) is defined once in ``_results``, which both engines import.
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
# What answers become (the public result, its builder, the batch column spec): shared with the twin.
from . import _results

_U32 = 1 << 32
_U64 = 1 << 64

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def hw_available():
    """True when this CPU has the instructions the engine's AES needs (AES-NI + PCLMULQDQ + SSSE3 + SSE4.1 on
    x86-64, the ARMv8 crypto extensions + NEON on aarch64; csrc/uid2_kernels.h). The engine has no other AES:
    without them the package uses the pure-Python engine (``uid2fast._engine`` asks this at import)."""
    return uid2_hw_available() != 0


def features():
    """Which implementations this process uses: ``kernels`` is the hardware kernel family (``"aesni"`` or
    ``"armv8"``; csrc/uid2_kernels.h), ``aes`` and ``cbc`` the AES-GCM and AES-CBC kernels on it, ``base64``
    ``"b64fast"`` (SIMD codecs for clean input in front of the exact ones) or ``"exact"``, ``fastpath`` whether
    the optional fast paths (SIMD base64, one-pass batch rows) are on: ``UID2FAST_NO_FASTPATH=1`` (read once
    per process) turns them off; AES stays on the hardware kernel. ``base64_kernel`` is the instruction set of
    the SIMD codecs (``"avx512vbmi"``, ``"ssse3"``, ``"neon"``, or ``"scalar"``; ``UID2FAST_NO_VBMI=1`` steps
    down from the first), None when the fast paths are off."""
    kernels = uid2_hw_name().decode("ascii")
    return {
        "engine": NAME,
        "kernels": kernels,
        "aes": f"{kernels}-gcm",
        "cbc": f"{kernels}-cbc",
        "base64": "b64fast" if uid2_fastpath_enabled() else "exact",
        "base64_kernel": uid2_b64fast_kernel().decode("ascii") if uid2_fastpath_enabled() else None,
        "fastpath": uid2_fastpath_enabled() != 0,
    }


def unavailable_reason():
    """Why this engine cannot run on this machine, or None: the dispatcher (``_engine``) asks once at import
    and takes the Python twin when there is a reason (the engine's only AES is the CPU's, see hw_available)."""
    if not hw_available():
        return ("the C engine needs AES instructions this CPU lacks (AES-NI + PCLMULQDQ on x86-64, the ARMv8 "
                "crypto extensions on aarch64): using the pure-Python engine")
    return None


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
include "_engine_c_counters.pxi"
include "_engine_c_client.pxi"
include "_engine_c_arrow.pxi"
