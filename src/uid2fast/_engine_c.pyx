# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
# cython: embedsignature=True
"""The C engine: a thin Cython layer over csrc/ (see csrc/uid2_engine.h).

Same names and results as ``_engine_py`` (the semantic reference). Scalar calls keep the GIL (they take
about a microsecond); batch calls collect (pointer, length) pairs with the GIL held, keeping every input
object alive, then release the GIL for the whole decode/decrypt and split the rows across threads. The C
workers never touch the Python API; statuses are mapped to enums by the public layer.
"""
import os

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_Check, PyBytes_GET_SIZE
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.object cimport PyObject
from cpython.ref cimport Py_DECREF, Py_INCREF
from cpython.unicode cimport PyUnicode_Check, PyUnicode_DecodeASCII, PyUnicode_DecodeUTF8
from libc.stdint cimport INT64_MAX, INT64_MIN, int8_t, int16_t, int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy


cdef extern from "Python.h":
    bint PyUnicode_IS_ASCII(object o)
    bint PyUnicode_CheckExact(object o)
    void *PyUnicode_DATA(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)
    PyObject *PyList_GET_ITEM_PTR "PyList_GET_ITEM" (object lst, Py_ssize_t i)
    const char *PyUnicode_AsUTF8AndSize(object o, Py_ssize_t *size) except NULL


cdef extern from "uid2_engine.h" nogil:
    ctypedef struct uid2_table_t:
        pass
    ctypedef struct uid2_worker_t:
        pass
    ctypedef struct uid2_bytes_t:
        const uint8_t *ptr
        size_t len
    ctypedef struct uid2_key_spec_t:
        uint32_t id
        int id_is_u32
        int64_t site_id
        int32_t keyset_group
        int64_t activates_us
        int64_t expires_us
        const uint8_t *secret
        size_t secret_len
    ctypedef struct uid2_site_spec_t:
        uint32_t site_id
        size_t first_name
        size_t n_names
    ctypedef struct uid2_table_params_t:
        int64_t identity_scope
        int caller_site_state
        uint32_t caller_site_id
        int32_t master_group
        int32_t default_group
        int64_t token_expiry_seconds
        int64_t max_sharing_lifetime_seconds
        int64_t max_bidstream_lifetime_seconds
        int64_t allow_clock_skew_seconds
        int has_latest_expires
        int64_t latest_expires_us
        int no_fastpath
    ctypedef struct uid2_result_t:
        int status
        unsigned have
        const char *uid
        size_t uid_len
        uint64_t established_ms
        uint32_t site_id
        size_t site_key_index
        int64_t site_key_site_id
        int identity_type
        int version
        int is_client_side_generated
        uint64_t expiry_ms
    ctypedef struct uid2_columns_t:
        uint8_t *status
        char *uid
        int64_t *established_ms
        int64_t *expiry_ms
        int64_t *site_id
        int64_t *site_key_site_id
        int8_t *identity_type
        int16_t *version
        int8_t *is_client_side_generated
        uint8_t *uid_overflow
    ctypedef struct uid2_encrypt_args_t:
        int has_keyset
        int32_t keyset_group
        int has_scope
        int64_t scope
        int established_ok
        uint64_t established_ms

    enum:
        UID2_OPT_NONE
        UID2_OPT_OK
        UID2_OPT_INVALID
        UID2_HAVE_UID
        UID2_HAVE_ESTABLISHED
        UID2_HAVE_SITE_ID
        UID2_HAVE_SITE_KEY
        UID2_HAVE_IDENTITY_TYPE
        UID2_HAVE_VERSION
        UID2_HAVE_CSG
        UID2_HAVE_EXPIRY
        UID2_TOKEN_BYTES
        UID2_TOKEN_UNDECODABLE
        UID2_UID_WIDTH
        UID2_VERSION_V2

    size_t UID2_UID_BUF_LEN(size_t n)

    uid2_table_t *uid2_table_new(const uid2_key_spec_t *keys, size_t n_keys, size_t n_groups,
                                 const uid2_site_spec_t *sites, size_t n_sites, const uid2_bytes_t *names,
                                 size_t n_names, const uid2_table_params_t *params)
    void uid2_table_free(uid2_table_t *t)
    size_t uid2_table_size(const uid2_table_t *t)
    ptrdiff_t uid2_table_find(const uid2_table_t *t, uint32_t key_id)
    unsigned uid2_table_fastpath(const uid2_table_t *t)
    enum:
        UID2_FAST_AESNI
        UID2_FAST_B64
    ptrdiff_t uid2_table_active_key(const uid2_table_t *t, int32_t group, int64_t now_us)
    int uid2_decrypt_token(const uid2_table_t *t, uid2_worker_t *w, const char *token, size_t len,
                           unsigned flags, int64_t now_us, int client, const uint8_t *domain, size_t domain_len,
                           char *uid_buf, uid2_result_t *r)
    ptrdiff_t uid2_decrypt_many(const uid2_table_t *t, const uid2_bytes_t *tokens, size_t n,
                                const uid2_bytes_t *domains, const uid2_bytes_t *single_domain, int64_t now_us,
                                int client, const uid2_columns_t *cols, int threads)
    size_t uid2_batch_threads(size_t n, int threads)
    ptrdiff_t uid2_decrypt_rows(const uid2_table_t *t, uid2_worker_t *w, const uid2_bytes_t *tokens, size_t lo,
                                size_t hi, const uid2_bytes_t *domains, const uid2_bytes_t *single_domain,
                                int64_t now_us, int client, const uid2_columns_t *cols)
    uid2_worker_t *uid2_worker_new(const uid2_table_t *t)
    void uid2_worker_free(uid2_worker_t *w)
    size_t uid2_token_max_len(size_t uid_len)
    int uid2_encrypt_token(const uid2_table_t *t, uid2_worker_t *w, const char *uid, size_t uid_len,
                           unsigned flags, int64_t now_us, const uid2_encrypt_args_t *a, char *out,
                           size_t *out_len)
    int uid2_encrypt_many(const uid2_table_t *t, const uid2_bytes_t *uids, size_t n, int64_t now_us,
                          const uid2_encrypt_args_t *a, uint8_t *status, char *out, const size_t *out_offsets,
                          size_t *out_lens, int threads)


cdef extern from "uid2_gcm_ni.h" nogil:
    int uid2_gcm_ni_available()


cdef extern from "uid2_b64fast.h" nogil:
    int uid2_b64fast_enabled()


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


cdef class KeyTable:
    """An immutable snapshot of a key set, ready for decryption (see ``keys._table_args``).

    Safe to use from many threads at once; the key material is wiped when it is freed. ``fastpath=False``
    keeps this table on OpenSSL EVP and the exact base64 decoder (tests compare it with the fast paths).
    """

    cdef uid2_table_t *_t
    cdef list _site_ids          # per key index: the exact Python site_id (site_key_site_id results)
    cdef dict _groups            # keyset id -> group index
    cdef readonly object identity_scope, caller_site_id, master_keyset_id, default_keyset_id
    cdef readonly object token_expiry_seconds, max_sharing_lifetime_seconds, max_bidstream_lifetime_seconds
    cdef readonly object allow_clock_skew_seconds, site_domains, latest_expires_us

    def __cinit__(self, keys, *, identity_scope, caller_site_id, master_keyset_id, default_keyset_id,
                  token_expiry_seconds, max_sharing_lifetime_seconds, max_bidstream_lifetime_seconds,
                  allow_clock_skew_seconds, site_domains, latest_expires_us, fastpath=True):
        cdef uid2_key_spec_t *specs = NULL
        cdef uid2_site_spec_t *sites = NULL
        cdef uid2_bytes_t *names = NULL
        cdef uid2_table_params_t p
        cdef Py_ssize_t i, n, n_sites, n_names, j
        cdef bytes secret
        # Every key, in input order: the C lookup by id finds the last one with an id (a dict's answer),
        # keyset lists keep them all (as the twin and the official SDK do).
        all_keys = []
        for k in keys:
            key_id, site_id, keyset_id, activates_us, expires_us, secret_obj = k
            all_keys.append((key_id, site_id, keyset_id, activates_us, expires_us, bytes(secret_obj)))
        groups = {}
        for k in all_keys:
            if k[2] is not None:
                groups.setdefault(k[2], len(groups))
        self._groups = groups
        self._site_ids = [k[1] for k in all_keys]
        # site domains: {int(site): names}; only u32 site ids can match a token, only str names a domain
        domains = {int(s): list(v) for s, v in site_domains.items()}
        site_rows = []
        name_bytes = []
        for s, v in domains.items():
            if 0 <= s < _U32:
                first = len(name_bytes)
                for nm in v:
                    if isinstance(nm, str):
                        name_bytes.append(_utf8(nm))
                site_rows.append((s, first, len(name_bytes) - first))
        n = len(all_keys)
        n_sites = len(site_rows)
        n_names = len(name_bytes)
        try:
            specs = <uid2_key_spec_t *>calloc(n + 1, sizeof(uid2_key_spec_t))
            sites = <uid2_site_spec_t *>calloc(n_sites + 1, sizeof(uid2_site_spec_t))
            names = <uid2_bytes_t *>calloc(n_names + 1, sizeof(uid2_bytes_t))
            if specs == NULL or sites == NULL or names == NULL:
                raise MemoryError()
            for i in range(n):
                key_id, site_id, keyset_id, activates_us, expires_us, secret = all_keys[i]
                if isinstance(key_id, int) and 0 <= key_id < _U32:
                    specs[i].id = <uint32_t>key_id
                    specs[i].id_is_u32 = 1
                specs[i].site_id = _sat64(site_id, "site_id")
                specs[i].keyset_group = -1 if keyset_id is None else groups[keyset_id]
                specs[i].activates_us = _sat64(activates_us, "activates_us")
                specs[i].expires_us = _sat64(expires_us, "expires_us")
                specs[i].secret = <const uint8_t *>PyBytes_AS_STRING(secret)
                specs[i].secret_len = <size_t>PyBytes_GET_SIZE(secret)
            for i in range(n_sites):
                sites[i].site_id = <uint32_t>site_rows[i][0]
                sites[i].first_name = <size_t>site_rows[i][1]
                sites[i].n_names = <size_t>site_rows[i][2]
            for i in range(n_names):
                names[i].ptr = <const uint8_t *>PyBytes_AS_STRING(name_bytes[i])
                names[i].len = <size_t>PyBytes_GET_SIZE(name_bytes[i])
            p.identity_scope = _sat64(identity_scope, "identity_scope")
            if caller_site_id is None:
                p.caller_site_state = UID2_OPT_NONE
                p.caller_site_id = 0
            elif isinstance(caller_site_id, int) and 0 <= caller_site_id < _U32:
                p.caller_site_state = UID2_OPT_OK
                p.caller_site_id = <uint32_t>caller_site_id
            else:
                p.caller_site_state = UID2_OPT_INVALID
                p.caller_site_id = 0
            p.master_group = groups.get(master_keyset_id, -1)
            p.default_group = groups.get(default_keyset_id, -1)
            p.token_expiry_seconds = _sat64(token_expiry_seconds, "token_expiry_seconds")
            p.max_sharing_lifetime_seconds = _sat64(max_sharing_lifetime_seconds, "max_sharing_lifetime_seconds")
            p.max_bidstream_lifetime_seconds = _sat64(max_bidstream_lifetime_seconds,
                                                      "max_bidstream_lifetime_seconds")
            p.allow_clock_skew_seconds = _sat64(allow_clock_skew_seconds, "allow_clock_skew_seconds")
            p.no_fastpath = 0 if fastpath else 1
            if latest_expires_us is None:
                p.has_latest_expires = 0
                p.latest_expires_us = 0
            else:
                p.has_latest_expires = 1
                p.latest_expires_us = _sat64(latest_expires_us, "latest_expires_us")
            self._t = uid2_table_new(specs, <size_t>n, <size_t>len(groups), sites, <size_t>n_sites, names,
                                     <size_t>n_names, &p)
            if self._t == NULL:
                raise MemoryError("could not build the key table")
        finally:
            free(specs)
            free(sites)
            free(names)
        self.identity_scope = identity_scope
        self.caller_site_id = caller_site_id
        self.master_keyset_id = master_keyset_id
        self.default_keyset_id = default_keyset_id
        self.token_expiry_seconds = token_expiry_seconds
        self.max_sharing_lifetime_seconds = max_sharing_lifetime_seconds
        self.max_bidstream_lifetime_seconds = max_bidstream_lifetime_seconds
        self.allow_clock_skew_seconds = allow_clock_skew_seconds
        self.site_domains = {s: frozenset(v) for s, v in domains.items()}
        self.latest_expires_us = latest_expires_us

    def __dealloc__(self):
        if self._t != NULL:
            uid2_table_free(self._t)  # wipes secrets and keyed contexts
            self._t = NULL

    def __len__(self):
        return uid2_table_size(self._t)

    @property
    def fastpath(self):
        """The fast paths this table uses: a subset of ``{"aesni-gcm", "b64fast"}`` (empty with
        ``UID2FAST_NO_FASTPATH=1``, ``fastpath=False``, or on a CPU without AES-NI for the first)."""
        cdef unsigned f = uid2_table_fastpath(self._t)
        names = []
        if f & UID2_FAST_AESNI:
            names.append("aesni-gcm")
        if f & UID2_FAST_B64:
            names.append("b64fast")
        return frozenset(names)

    def __repr__(self):
        return f"<KeyTable (c engine): {uid2_table_size(self._t)} keys>"

    def valid(self, int64_t now_us):
        return self.latest_expires_us is not None and self.latest_expires_us > now_us

    def key_index(self, key_id):
        """Index of the key with this id (C lookup), or None: for tests."""
        if not (isinstance(key_id, int) and 0 <= key_id < _U32):
            return None
        cdef ptrdiff_t i = uid2_table_find(self._t, <uint32_t>key_id)
        return None if i < 0 else i

    def active_keyset_key_index(self, keyset_id, int64_t now_us):
        """Index of the active key of a keyset (encryption's choice), or None: for tests."""
        cdef ptrdiff_t i = uid2_table_active_key(self._t, self._groups.get(keyset_id, -1), now_us)
        return None if i < 0 else i


# --- decrypt ----------------------------------------------------------------------------------

cdef tuple _ERRORS = tuple((st, None, None, None, None, None, None, None, None) for st in range(14))


cdef tuple _result_tuple(KeyTable table, uid2_result_t *r):
    cdef unsigned h = r.have
    if h == 0:
        return _ERRORS[r.status]
    uid = None
    if h & UID2_HAVE_UID:
        if r.version == UID2_VERSION_V2:
            uid = PyUnicode_DecodeUTF8(r.uid, <Py_ssize_t>r.uid_len, NULL)  # validated by the engine
        else:
            uid = PyUnicode_DecodeASCII(r.uid, <Py_ssize_t>r.uid_len, NULL)
    return (
        r.status,
        uid,
        r.established_ms if h & UID2_HAVE_ESTABLISHED else None,
        r.site_id if h & UID2_HAVE_SITE_ID else None,
        <object>PyList_GET_ITEM(table._site_ids, <Py_ssize_t>r.site_key_index) if h & UID2_HAVE_SITE_KEY else None,
        r.identity_type if h & UID2_HAVE_IDENTITY_TYPE else None,
        r.version if h & UID2_HAVE_VERSION else None,
        (r.is_client_side_generated != 0) if h & UID2_HAVE_CSG else None,
        r.expiry_ms if h & UID2_HAVE_EXPIRY else None,
    )


cdef int _domain_ptr(object domain, const uint8_t **ptr, size_t *n, list keep) except -1:
    # A str domain as UTF-8 (surrogates kept); anything else is "not a str": the check fails.
    cdef Py_ssize_t sz
    cdef bytes b
    if PyUnicode_Check(domain):
        try:
            ptr[0] = <const uint8_t *>PyUnicode_AsUTF8AndSize(domain, &sz)
        except UnicodeEncodeError:
            b = _utf8(domain)
            keep.append(b)
            ptr[0] = <const uint8_t *>PyBytes_AS_STRING(b)
            sz = PyBytes_GET_SIZE(b)
        n[0] = <size_t>sz
    else:
        ptr[0] = NULL
        n[0] = 0
    return 0


cdef inline char *_uid_buffer(size_t n, char *stack, size_t stack_len) except NULL:
    """Where the engine writes the uid of a token of ``n`` characters: ``stack`` when it fits, else a malloc'd
    buffer (the caller frees it when it is not ``stack``)."""
    cdef size_t need = UID2_UID_BUF_LEN(n)
    if need <= stack_len:
        return stack
    cdef char *p = <char *>malloc(need)
    if p == NULL:
        raise MemoryError()
    return p


def decrypt_token(KeyTable table, token, int64_t now_us, int client, domain):
    """Decrypt one token: ``(status, uid, established_ms, site_id, site_key_site_id, identity_type,
    version, is_client_side_generated, expiry_ms)``; fields not populated for a status are None."""
    cdef uid2_result_t r
    cdef const char *p
    cdef Py_ssize_t n
    cdef unsigned flags = 0
    cdef const uint8_t *dptr = NULL
    cdef size_t dlen = 0
    cdef char ubuf_stack[512]
    cdef char *ubuf
    cdef list keep = None
    if table is None:
        return _ERRORS[NOT_INITIALIZED]
    if PyUnicode_Check(token):
        if PyUnicode_IS_ASCII(token):
            p = PyUnicode_AsUTF8AndSize(token, &n)
        else:
            n = len(token)
            head = token[:4]
            flags = UID2_TOKEN_UNDECODABLE
            if n >= 4 and head.isascii():
                head_b = head.encode("ascii")
                p = PyBytes_AS_STRING(head_b)
            else:
                p = "!!!!"  # not base64: the header decode fails as b64decode does
    elif PyBytes_Check(token):
        p = PyBytes_AS_STRING(token)
        n = PyBytes_GET_SIZE(token)
        flags = UID2_TOKEN_BYTES
    elif isinstance(token, bytearray) or (isinstance(token, memoryview) and token.ndim == 1 and
                                          token.itemsize == 1):
        token = bytes(token)
        p = PyBytes_AS_STRING(token)
        n = PyBytes_GET_SIZE(token)
        flags = UID2_TOKEN_BYTES
    else:
        # Nothing else decodes: len() (if any) decides between INVALID_PAYLOAD and a failure.
        try:
            n = len(token)
        except Exception:
            n = 4
        p = "!!!!"
        flags = UID2_TOKEN_UNDECODABLE
    if domain is not None:
        keep = []
        _domain_ptr(domain, &dptr, &dlen, keep)
    ubuf = _uid_buffer(<size_t>n, ubuf_stack, sizeof(ubuf_stack))
    try:
        uid2_decrypt_token(table._t, NULL, p, <size_t>n, flags, now_us, client, dptr, dlen, ubuf, &r)
        return _result_tuple(table, &r)
    finally:
        if ubuf != ubuf_stack:
            free(ubuf)


# --- scalar decrypt straight into the public result object ---------------------------------------

cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define uid2_prefetch_w(p) __builtin_prefetch((const void *)(p), 1, 3)
    #else
    #define uid2_prefetch_w(p) ((void)(p))
    #endif
    /* The compact ASCII str whose characters start at `data` (PyUnicode_DATA inverted: they follow the
     * object's header); the caller checks uid2_str_of_data(PyUnicode_DATA(s)) == s before relying on it. */
    #define uid2_str_of_data(data) ((PyObject *)((PyASCIIObject *)(data) - 1))
    """
    void uid2_prefetch_w(const void *p) nogil
    PyObject *uid2_str_of_data(const void *data) nogil


cdef extern from *:
    """
    /* Store through a slot's member descriptor (what `obj.name = value` ends in, without the lookups). */
    static int uid2_py_descr_set(PyObject *descr, PyObject *obj, PyObject *value)
    {
        return Py_TYPE(descr)->tp_descr_set(descr, obj, value);
    }
    /* time.time_ns() without the call: CPython reads CLOCK_REALTIME (_PyTime_GetSystemClock); 0 = not
     * available here (then the caller calls time.time_ns). */
    #include <time.h>
    static int uid2_realtime_ns(int64_t *ns)
    {
    #if defined(CLOCK_REALTIME) && !defined(_WIN32)
        struct timespec ts;
        if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
            return 0;
        *ns = (int64_t)ts.tv_sec * 1000000000 + (int64_t)ts.tv_nsec;
        return 1;
    #else
        (void)ns;
        return 0;
    #endif
    }
    /* cls.__new__(cls) for a class whose __new__ is object.__new__: just the allocation. */
    static PyObject *uid2_py_alloc(PyObject *cls)
    {
        PyTypeObject *tp = (PyTypeObject *)cls;
        return tp->tp_alloc(tp, 0);
    }
    """
    int uid2_py_descr_set(object descr, object obj, object value) except -1
    object uid2_py_alloc(object cls)
    int uid2_realtime_ns(int64_t *ns)


_N_STATUSES = 14  # UID2_STATUS_SUCCESS .. UID2_STATUS_MALFORMED


cdef class TokenFactory:
    """Scalar decryption for the public API in one call: the C engine's result written straight into a new
    ``DecryptedToken`` (slots set through their descriptors, datetimes left lazy), exactly what
    ``encryption._make_token`` builds from ``decrypt_token``'s tuple.

    ``decrypt(keys, token, client, domain, now_us=None)`` takes the common case only: the C engine selected
    in ``engine`` (``engine.impl is c_impl``), ``keys`` with a C table already built, an ASCII ``str`` token
    and a ``str`` (or None) domain; the time is ``now_us``, else ``time.time_ns() // 1000`` as in
    ``_time.now_us`` (CLOCK_REALTIME read directly while ``time.time_ns`` is the builtin). For anything else it returns None and the caller takes its general path.
    """

    cdef object cls, unset, engine, c_impl, time_mod, time_ns
    cdef tuple statuses           # by engine code; None for a code the public layer does not map
    cdef unsigned bare            # bit per code: the official make_error shape (identity_scope None)
    cdef tuple itypes             # identity type 0 / 1
    cdef dict versions            # 2 / 112 / 128 -> AdvertisingTokenVersion
    cdef object d_status, d_uid, d_site_id, d_sksi, d_itype, d_scope, d_version, d_csg
    cdef object d_est, d_exp, d_est_ms, d_exp_ms

    def __init__(self, cls, unset, engine, c_impl, statuses, bare_codes, itypes, versions):
        import time
        import types
        if cls.__new__ is not object.__new__:
            raise TypeError("the result class must not define __new__")
        descrs = {}
        for name in ("status", "uid", "site_id", "site_key_site_id", "identity_type", "identity_scope",
                     "advertising_token_version", "is_client_side_generated", "_established", "_expiry",
                     "_established_ms", "_expiry_ms"):
            d = cls.__dict__.get(name)
            if type(d) is not types.MemberDescriptorType or d.__objclass__ is not cls:
                raise TypeError(f"{cls.__name__}.{name} is not a slot of the class")
            descrs[name] = d
        self.cls = cls
        self.unset = unset
        self.engine = engine
        self.c_impl = c_impl
        self.time_mod = time
        self.time_ns = time.time_ns  # the builtin: while time.time_ns is still it, read the clock directly
        self.statuses = tuple(statuses)
        if len(self.statuses) != _N_STATUSES:
            raise ValueError("statuses: one entry per engine status code")
        self.bare = 0
        for c in bare_codes:
            self.bare |= 1u << <unsigned>c
        self.itypes = tuple(itypes)
        if len(self.itypes) != 2:
            raise ValueError("itypes: two entries")
        self.versions = dict(versions)
        self.d_status = descrs["status"]
        self.d_uid = descrs["uid"]
        self.d_site_id = descrs["site_id"]
        self.d_sksi = descrs["site_key_site_id"]
        self.d_itype = descrs["identity_type"]
        self.d_scope = descrs["identity_scope"]
        self.d_version = descrs["advertising_token_version"]
        self.d_csg = descrs["is_client_side_generated"]
        self.d_est = descrs["_established"]
        self.d_exp = descrs["_expiry"]
        self.d_est_ms = descrs["_established_ms"]
        self.d_exp_ms = descrs["_expiry_ms"]

    def decrypt(self, keys, token, int client, domain, now_us=None):
        cdef uid2_result_t r
        cdef const char *p
        cdef Py_ssize_t n, dn
        cdef const uint8_t *dptr = NULL
        cdef size_t dlen = 0
        cdef char ubuf_stack[512]
        cdef char *ubuf
        cdef int64_t ns, now
        cdef unsigned h
        cdef KeyTable table
        if type(token) is not str or not PyUnicode_IS_ASCII(token) or keys is None:
            return None
        if domain is not None:
            if type(domain) is not str:
                return None
            try:
                dptr = <const uint8_t *>PyUnicode_AsUTF8AndSize(domain, &dn)
            except UnicodeEncodeError:  # lone surrogates: the general path encodes them
                return None
            dlen = <size_t>dn
        if self.engine.impl is not self.c_impl:
            return None
        cached = getattr(keys, "_table", None)
        if type(cached) is not tuple or len(<tuple>cached) != 2 or type((<tuple>cached)[1]) is not KeyTable:
            return None
        table = <KeyTable>(<tuple>cached)[1]
        if now_us is None:
            # time.time_ns() // 1000 as _time.now_us computes it; a patched time.time_ns (freezegun, mocks)
            # is called like before
            if self.time_mod.time_ns is not self.time_ns or not uid2_realtime_ns(&ns):
                ns = self.time_mod.time_ns()
            now = ns // 1000 if ns >= 0 else -((-ns + 999) // 1000)  # floor division, as `// 1000`
        else:
            now = now_us
        p = PyUnicode_AsUTF8AndSize(token, &n)
        ubuf = _uid_buffer(<size_t>n, ubuf_stack, sizeof(ubuf_stack))
        try:
            uid2_decrypt_token(table._t, NULL, p, <size_t>n, 0, now, client, dptr, dlen, ubuf, &r)
            status = self.statuses[r.status] if 0 <= r.status < 14 else None
            if status is None:
                return None
            h = r.have
            t = uid2_py_alloc(self.cls)
            uid2_py_descr_set(self.d_status, t, status)
            if h & UID2_HAVE_UID:
                if r.version == UID2_VERSION_V2:
                    uid = PyUnicode_DecodeUTF8(r.uid, <Py_ssize_t>r.uid_len, NULL)
                else:
                    uid = PyUnicode_DecodeASCII(r.uid, <Py_ssize_t>r.uid_len, NULL)
                uid2_py_descr_set(self.d_uid, t, uid)
            else:
                uid2_py_descr_set(self.d_uid, t, None)
            uid2_py_descr_set(self.d_est, t, self.unset)
            uid2_py_descr_set(self.d_est_ms, t, r.established_ms if h & UID2_HAVE_ESTABLISHED else None)
            uid2_py_descr_set(self.d_site_id, t, r.site_id if h & UID2_HAVE_SITE_ID else None)
            uid2_py_descr_set(self.d_sksi, t, <object>PyList_GET_ITEM(table._site_ids, <Py_ssize_t>r.site_key_index)
                              if h & UID2_HAVE_SITE_KEY else None)
            uid2_py_descr_set(self.d_itype, t, self.itypes[r.identity_type != 0]
                              if h & UID2_HAVE_IDENTITY_TYPE else None)
            uid2_py_descr_set(self.d_scope, t, None if (self.bare >> <unsigned>r.status) & 1u
                              else keys.get_identity_scope())
            uid2_py_descr_set(self.d_version, t, self.versions.get(r.version) if h & UID2_HAVE_VERSION else None)
            uid2_py_descr_set(self.d_csg, t, (r.is_client_side_generated != 0) if h & UID2_HAVE_CSG else None)
            uid2_py_descr_set(self.d_exp, t, self.unset)
            uid2_py_descr_set(self.d_exp_ms, t, r.expiry_ms if h & UID2_HAVE_EXPIRY else None)
            return t
        finally:
            if ubuf != ubuf_stack:
                free(ubuf)


# --- encrypt ----------------------------------------------------------------------------------

cdef int _encrypt_args(KeyTable table, object keyset_id, object identity_scope, object established_ms,
                       uid2_encrypt_args_t *a) except -1:
    a.has_keyset = keyset_id is not None
    a.keyset_group = table._groups.get(keyset_id, -1) if keyset_id is not None else -1
    a.has_scope = identity_scope is not None
    a.scope = _sat64(int(identity_scope), "identity_scope") if identity_scope is not None else 0
    if isinstance(established_ms, int) and 0 <= established_ms < _U64:
        a.established_ok = 1
        a.established_ms = <uint64_t>established_ms
    else:
        a.established_ok = 0
        a.established_ms = 0
    return 0


def encrypt_token(KeyTable table, uid, int64_t now_us, keyset_id, identity_scope, established_ms):
    """Encrypt a raw UID (base64 text) into a v4 sharing token: ``(status, token or None)``."""
    cdef uid2_encrypt_args_t a
    cdef const char *p = ""
    cdef Py_ssize_t n = 0
    cdef unsigned flags = 0
    cdef size_t out_len = 0
    cdef char out_stack[1024]
    cdef char *out
    cdef int st
    if table is None:
        return (ENC_NOT_INITIALIZED, None)
    _encrypt_args(table, keyset_id, identity_scope, established_ms, &a)
    if PyUnicode_Check(uid):
        if PyUnicode_IS_ASCII(uid):
            p = PyUnicode_AsUTF8AndSize(uid, &n)
        else:
            flags = UID2_TOKEN_UNDECODABLE  # b64decode raises ValueError
    elif PyBytes_Check(uid):
        p = PyBytes_AS_STRING(uid)
        n = PyBytes_GET_SIZE(uid)
        flags = UID2_TOKEN_BYTES  # uid[0] is an int: never 'F'/'B'
    elif isinstance(uid, (bytearray, memoryview)):
        uid = bytes(uid)
        p = PyBytes_AS_STRING(uid)
        n = PyBytes_GET_SIZE(uid)
        flags = UID2_TOKEN_BYTES
    else:
        flags = UID2_TOKEN_UNDECODABLE
    cdef size_t need = uid2_token_max_len(<size_t>n)
    if need <= sizeof(out_stack):
        out = out_stack
    else:
        out = <char *>malloc(need)
        if out == NULL:
            raise MemoryError()
    try:
        st = uid2_encrypt_token(table._t, NULL, p, <size_t>n, flags, now_us, &a, out, &out_len)
        if st != ENC_SUCCESS:
            return (st, None)
        return (st, PyUnicode_DecodeASCII(out, <Py_ssize_t>out_len, NULL))
    finally:
        if out != out_stack:
            free(out)


# --- batches ----------------------------------------------------------------------------------

cdef int _resolve_threads(object threads) except -1:
    if threads is None:
        return max_threads()
    if not isinstance(threads, int):
        raise TypeError(f"threads must be an int or None, not {type(threads).__name__}")
    if threads <= 0:
        return max_threads()
    return min(threads, 1024)


cdef class _Items:
    """(pointer, length) for each input row, and the objects that keep those bytes alive and unmoved."""
    cdef uid2_bytes_t *rows
    cdef Py_ssize_t n
    cdef list keep
    # The list fast path: rows [str_lo, str_hi) each own a reference to their str object, found again from
    # the row's data pointer (uid2_str_of_data), so the pass over the list stores nothing else per item.
    cdef Py_ssize_t str_lo, str_hi
    cdef bint str_rows            # the rows come from _fill_from_str_list

    def __cinit__(self):
        self.rows = NULL
        self.n = 0
        self.keep = []
        self.str_lo = 0
        self.str_hi = 0
        self.str_rows = False

    def __dealloc__(self):
        self.release_str(self.str_hi)
        free(self.rows)

    cdef void release_str(self, Py_ssize_t upto):
        """Drops the references of the str rows below `upto` still held."""
        cdef Py_ssize_t i
        for i in range(self.str_lo, upto):
            if i + 32 < upto:
                uid2_prefetch_w(uid2_str_of_data(self.rows[i + 32].ptr))
            Py_DECREF(<object>uid2_str_of_data(self.rows[i].ptr))
        if upto > self.str_lo:
            self.str_lo = upto

    cdef int alloc(self, Py_ssize_t n) except -1:
        self.n = n
        self.rows = <uid2_bytes_t *>calloc(<size_t>(n if n > 0 else 1), sizeof(uid2_bytes_t))
        if self.rows == NULL:
            raise MemoryError()
        return 0


cdef bint _fill_from_str_list(_Items it, list items) except -1:
    """The common batch: a list of ASCII str. One pass takes a reference to each item (what keeps the bytes
    alive while the GIL is released, whatever the caller does to the list) and its UTF-8 pointer; no Python
    code can run meanwhile. False (nothing kept) at the first item of any other kind: then the caller takes
    the general path, which snapshots the list."""
    cdef Py_ssize_t i, n = PyList_GET_SIZE(items)
    cdef PyObject *item
    cdef const void *data
    it.alloc(n)
    it.str_rows = True
    for i in range(n):
        if i + 32 < n:
            uid2_prefetch_w(PyList_GET_ITEM_PTR(items, i + 32))  # its header: read here, refcount written
        item = PyList_GET_ITEM_PTR(items, i)
        if not PyUnicode_CheckExact(<object>item) or not PyUnicode_IS_ASCII(<object>item):
            it.str_hi = i
            return False
        data = PyUnicode_DATA(<object>item)  # ASCII: the UTF-8 bytes themselves
        if uid2_str_of_data(data) != item:  # not the compact layout this build expects: the general path
            it.str_hi = i
            return False
        it.rows[i].ptr = <const uint8_t *>data
        it.rows[i].len = <size_t>PyUnicode_GET_LENGTH(<object>item)
        Py_INCREF(<object>item)
    it.str_hi = n
    return True


cdef int _fill_from_list(_Items it, list items, Py_ssize_t at) except -1:
    # Items as the twin's _as_token: ASCII str, or bytes-like (ASCII is checked in C); else None.
    cdef Py_ssize_t i, n = PyList_GET_SIZE(items), sz
    cdef object item
    cdef bytes b
    for i in range(n):
        item = <object>PyList_GET_ITEM(items, i)
        if PyUnicode_Check(item):
            if PyUnicode_IS_ASCII(item):
                it.rows[at + i].ptr = <const uint8_t *>PyUnicode_AsUTF8AndSize(item, &sz)
                it.rows[at + i].len = <size_t>sz
        elif PyBytes_Check(item):
            it.rows[at + i].ptr = <const uint8_t *>PyBytes_AS_STRING(item)
            it.rows[at + i].len = <size_t>PyBytes_GET_SIZE(item)
        elif isinstance(item, (bytearray, memoryview)):
            b = bytes(item)  # a private copy: the original may change while the GIL is released
            it.keep.append(b)
            it.rows[at + i].ptr = <const uint8_t *>PyBytes_AS_STRING(b)
            it.rows[at + i].len = <size_t>PyBytes_GET_SIZE(b)
    it.keep.append(items)
    return 0


cdef int _fill_arrow(_Items it, object arr, Py_ssize_t at, bint large) except -1:
    # Arrow string/binary layout: validity bitmap, offsets (int32 or int64), data.
    cdef Py_ssize_t i, n = len(arr), off = arr.offset
    cdef const uint8_t[::1] valid_mv
    cdef const uint8_t[::1] off_mv
    cdef const uint8_t[::1] data_mv
    cdef const uint8_t *valid = NULL
    cdef const uint8_t *offs
    cdef const uint8_t *data = NULL
    cdef int32_t o32a, o32b
    cdef int64_t o64a, o64b
    cdef Py_ssize_t data_len = 0
    if n == 0:
        return 0
    bufs = arr.buffers()
    it.keep.append(arr)
    it.keep.append(bufs)
    if bufs[0] is not None and arr.null_count > 0:
        valid_mv = memoryview(bufs[0]).cast("B")
        valid = &valid_mv[0]
    off_mv = memoryview(bufs[1]).cast("B")
    offs = &off_mv[0]
    if bufs[2] is not None and len(bufs[2]) > 0:
        data_mv = memoryview(bufs[2]).cast("B")
        data = &data_mv[0]
        data_len = len(bufs[2])
    cdef Py_ssize_t width = 8 if large else 4
    if <Py_ssize_t>off_mv.shape[0] < (off + n + 1) * width:
        raise ValueError("tokens: Arrow offsets buffer is too short")
    for i in range(n):
        if valid != NULL and not ((valid[(off + i) >> 3] >> ((off + i) & 7)) & 1):
            continue  # null: INVALID_PAYLOAD
        if large:
            memcpy(&o64a, offs + (off + i) * 8, 8)
            memcpy(&o64b, offs + (off + i + 1) * 8, 8)
        else:
            memcpy(&o32a, offs + (off + i) * 4, 4)
            memcpy(&o32b, offs + (off + i + 1) * 4, 4)
            o64a = o32a
            o64b = o32b
        if o64a < 0 or o64b < o64a or o64b > data_len:
            raise ValueError("tokens: Arrow offsets out of range")
        it.rows[at + i].ptr = (data + o64a) if data != NULL else <const uint8_t *>""
        it.rows[at + i].len = <size_t>(o64b - o64a)
    return 0


cdef object _arrow_kind(object pa, object typ):
    t = pa.types
    if t.is_string(typ) or t.is_binary(typ):
        return False
    if t.is_large_string(typ) or t.is_large_binary(typ):
        return True
    return None


cdef _Items _collect(object tokens):
    """The rows of a batch input, as the twin's _iter_items + _as_token see them."""
    cdef _Items it = _Items()
    cdef Py_ssize_t i, n, w, k, ln, pos
    cdef const uint8_t[::1] raw
    cdef const uint32_t *u32
    cdef uint8_t *dst
    cdef const uint8_t *src
    cdef bint ok
    if isinstance(tokens, list):
        if type(tokens) is list and _fill_from_str_list(it, <list>tokens):
            return it
        it = _Items()
        items = list(tokens)  # a snapshot: the caller's list may change while the GIL is released
        it.alloc(len(items))
        _fill_from_list(it, items, 0)
        return it
    mod = type(tokens).__module__
    if mod.startswith("pyarrow"):
        import pyarrow as pa
        chunks = None
        if isinstance(tokens, pa.ChunkedArray):
            chunks = list(tokens.chunks)
        elif isinstance(tokens, pa.Array):
            chunks = [tokens]
        if chunks is not None:
            prepared = []
            for c in chunks:
                if pa.types.is_string_view(c.type):
                    c = c.cast(pa.large_string())
                elif pa.types.is_binary_view(c.type):
                    c = c.cast(pa.large_binary())
                kind = _arrow_kind(pa, c.type)
                if kind is None:
                    prepared = None
                    break
                prepared.append((c, kind))
            if prepared is not None:
                it.alloc(sum(len(c) for c, _ in prepared))
                pos = 0
                for c, kind in prepared:
                    _fill_arrow(it, c, pos, kind)
                    pos += len(c)
                return it
        items = tokens.to_pylist()
        it.alloc(len(items))
        _fill_from_list(it, items, 0)
        return it
    import numpy as np
    if isinstance(tokens, np.ndarray) and tokens.ndim == 1 and tokens.dtype.kind in ("U", "S"):
        arr = tokens
        if arr.dtype.kind == "U" and not arr.dtype.isnative:
            arr = arr.astype(arr.dtype.newbyteorder("="))
        arr = np.ascontiguousarray(arr)
        n = arr.shape[0]
        it.alloc(n)
        it.keep.append(arr)
        if n == 0 or arr.dtype.itemsize == 0:
            for i in range(n):
                it.rows[i].ptr = <const uint8_t *>""
            return it
        raw = arr.view(np.uint8).reshape(-1)
        if arr.dtype.kind == "S":
            # tolist() strips trailing NULs from each item
            w = arr.dtype.itemsize
            with nogil:
                for i in range(n):
                    src = &raw[0] + i * w
                    ln = w
                    while ln > 0 and src[ln - 1] == 0:
                        ln -= 1
                    it.rows[i].ptr = src
                    it.rows[i].len = <size_t>ln
            return it
        # UCS4: strip trailing NULs, keep ASCII items (as 1-byte text), others are INVALID_PAYLOAD
        w = arr.dtype.itemsize // 4
        text = bytearray(n * w)
        it.keep.append(text)
        dst = <uint8_t *><char *>text
        u32 = <const uint32_t *>&raw[0]
        with nogil:
            for i in range(n):
                ln = w
                while ln > 0 and u32[i * w + ln - 1] == 0:
                    ln -= 1
                ok = True
                for k in range(ln):
                    if u32[i * w + k] >= 128:
                        ok = False
                        break
                    dst[i * w + k] = <uint8_t>u32[i * w + k]
                if ok:
                    it.rows[i].ptr = dst + i * w
                    it.rows[i].len = <size_t>ln
        return it
    if isinstance(tokens, np.ndarray):
        items = tokens.tolist()
    else:
        items = list(tokens)
    if not isinstance(items, list):
        items = list(items)
    it.alloc(len(items))
    _fill_from_list(it, items, 0)
    return it


cdef _Items _collect_domains(object domains, Py_ssize_t n):
    # As the twin's _domains_list: aligned items; bytes decoded (UTF-8, 'replace'); non-str -> None.
    cdef _Items it = _Items()
    cdef Py_ssize_t i
    cdef const uint8_t *p
    cdef size_t ln
    mod = type(domains).__module__
    if isinstance(domains, list):
        items = list(domains)
    elif mod.startswith("pyarrow"):
        items = domains.to_pylist()
    else:
        try:
            import numpy as np
            items = domains.tolist() if isinstance(domains, np.ndarray) else list(domains)
        except ImportError:  # pragma: no cover
            items = list(domains)
    if len(items) != n:
        raise ValueError(f"domain_names has {len(items)} items for {n} tokens")
    it.alloc(n)
    it.keep.append(items)
    for i in range(n):
        d = items[i]
        if isinstance(d, (bytes, bytearray)):
            d = d.decode("utf-8", "replace")
            it.keep.append(d)
        if PyUnicode_Check(d):
            _domain_ptr(d, &p, &ln, it.keep)
            it.rows[i].ptr = p
            it.rows[i].len = ln
    return it


# The batch columns in block order: (name, dtype, bytes per row). Their dtypes are built once (on first use:
# numpy is imported lazily), not per call: a small batch's fixed cost is mostly Python object work.
cdef tuple _COLUMN_SPECS = (
    ("established_ms", "i8", 8), ("expiry_ms", "i8", 8), ("site_id", "i8", 8), ("site_key_site_id", "i8", 8),
    ("version", "i2", 2), ("uid", "S44", 44), ("status", "u1", 1), ("identity_type", "i1", 1),
    ("is_client_side_generated", "i1", 1), ("uid_overflow", "u1", 1),
)
cdef list _column_dtypes = None


cdef list _dtypes():
    global _column_dtypes
    if _column_dtypes is None:
        import numpy as np
        _column_dtypes = [np.dtype(spec[1]) for spec in _COLUMN_SPECS]
    return _column_dtypes


# Rows per GIL release on the single-thread list path (~100 us of work): the str objects of a chunk are still
# in cache when their references are dropped.
cdef enum:
    _STR_CHUNK = 1024


cdef ptrdiff_t _decrypt_str_rows(const uid2_table_t *t, _Items it, const uid2_bytes_t *doms_p,
                                 const uid2_bytes_t *single_p, int64_t now_us, int client,
                                 const uid2_columns_t *cols) except? -2:
    """A list of str on one thread, in chunks: decrypt a chunk without the GIL, then (with it) release that
    chunk's references while those objects are still in cache instead of in one more pass over the whole
    heap afterwards. Every reference was taken before the first chunk (the input is still a snapshot)."""
    cdef uid2_worker_t *w = NULL
    cdef Py_ssize_t lo = 0, hi, n = it.n
    cdef ptrdiff_t part, total = 0
    if t != NULL:
        w = uid2_worker_new(t)
        if w == NULL:
            return -1
    try:
        while lo < n:
            hi = lo + _STR_CHUNK if lo + _STR_CHUNK < n else n
            with nogil:
                part = uid2_decrypt_rows(t, w, it.rows, <size_t>lo, <size_t>hi, doms_p, single_p, now_us, client,
                                         cols)
            if part < 0:
                return -1
            total += part
            it.release_str(hi)
            lo = hi
    finally:
        uid2_worker_free(w)
    return total


def decrypt_tokens(KeyTable table, tokens, int64_t now_us, int client, domains, threads):
    """Decrypt a batch into numpy columns (see _engine_py.decrypt_tokens), without the GIL, on
    ``threads`` threads (None or 0: one per CPU)."""
    import numpy as np
    cdef int nthreads = _resolve_threads(threads)
    cdef _Items it = _collect(tokens)
    cdef Py_ssize_t n = it.n, i
    cdef _Items doms = None
    cdef uid2_bytes_t single
    cdef const uid2_bytes_t *single_p = NULL
    cdef const uid2_bytes_t *doms_p = NULL
    cdef list keep = []
    cdef uid2_columns_t cols
    cdef ptrdiff_t n_over
    cdef const uid2_table_t *t = table._t if table is not None else NULL
    cdef uid2_result_t r
    cdef char *ubuf
    if domains is None or isinstance(domains, str):
        if domains is not None:
            _domain_ptr(domains, &single.ptr, &single.len, keep)
            single_p = &single
    else:
        doms = _collect_domains(domains, n)
        doms_p = doms.rows
    # One allocation for every column (each a contiguous view starting a multiple of 64 bytes into it, in the
    # machine's byte order; the engine writes every byte): one malloc instead of ten, and a block large enough
    # that glibc's dynamic thresholds keep it on the heap between calls instead of returning the pages to the
    # kernel and faulting them back in.
    cdef list dtypes = _dtypes()
    cdef Py_ssize_t offsets[10]
    cdef Py_ssize_t total = 0, k
    for k in range(10):
        offsets[k] = total
        total = (total + n * <Py_ssize_t>_COLUMN_SPECS[k][2] + 63) & ~63
    block = np.empty(total if total > 0 else 1, dtype=np.uint8)
    cdef uint8_t[::1] block_v = block
    cdef uint8_t *base = &block_v[0]
    columns = [block[offsets[k]:offsets[k] + n * <Py_ssize_t>_COLUMN_SPECS[k][2]].view(dtypes[k]) for k in range(10)]
    overflow = {}
    result = {_COLUMN_SPECS[k][0]: columns[k] for k in range(9)}
    result["uid_overflow"] = overflow
    if n == 0:
        return result
    over_flags = columns[9]  # set for every row by the engine
    cols.established_ms = <int64_t *>(base + offsets[0])
    cols.expiry_ms = <int64_t *>(base + offsets[1])
    cols.site_id = <int64_t *>(base + offsets[2])
    cols.site_key_site_id = <int64_t *>(base + offsets[3])
    cols.version = <int16_t *>(base + offsets[4])
    cols.uid = <char *>(base + offsets[5])
    cols.status = base + offsets[6]
    cols.identity_type = <int8_t *>(base + offsets[7])
    cols.is_client_side_generated = <int8_t *>(base + offsets[8])
    cols.uid_overflow = base + offsets[9]
    if it.str_rows and uid2_batch_threads(<size_t>n, nthreads) == 1:
        n_over = _decrypt_str_rows(t, it, doms_p, single_p, now_us, client, &cols)
    else:
        with nogil:
            n_over = uid2_decrypt_many(t, it.rows, <size_t>n, doms_p, single_p, now_us, client, &cols, nthreads)
    if n_over < 0:
        raise MemoryError("decrypt_tokens: out of memory")
    if n_over > 0:
        # Rare: uids that are not 44 ASCII chars. Decrypting is deterministic: do those rows again here.
        for i in np.flatnonzero(over_flags):
            ubuf = <char *>malloc(UID2_UID_BUF_LEN(it.rows[i].len))
            if ubuf == NULL:
                raise MemoryError()
            try:
                uid2_decrypt_token(t, NULL, <const char *>it.rows[i].ptr, it.rows[i].len, 0, now_us, client,
                                   doms_p[i].ptr if doms_p != NULL else (single_p.ptr if single_p != NULL else NULL),
                                   doms_p[i].len if doms_p != NULL else (single_p.len if single_p != NULL else 0),
                                   ubuf, &r)
                overflow[int(i)] = _result_tuple(table, &r)[1]
            finally:
                free(ubuf)
    return result


def encrypt_tokens(KeyTable table, uids, int64_t now_us, keyset_id, identity_scope, established_ms, threads):
    """Encrypt a batch of raw UIDs: ``(status uint8 array, tokens)``, without the GIL, on ``threads``
    threads. Each GCM operation draws a fresh 12-byte nonce from the CSPRNG."""
    import numpy as np
    cdef int nthreads = _resolve_threads(threads)
    cdef uid2_encrypt_args_t a
    cdef _Items it = _collect(uids)
    cdef Py_ssize_t n = it.n, i
    cdef size_t *offsets = NULL
    cdef size_t *lens = NULL
    cdef char *out = NULL
    cdef size_t total = 0
    cdef int rc
    cdef const uid2_table_t *t = table._t if table is not None else NULL
    if table is not None:
        _encrypt_args(table, keyset_id, identity_scope, established_ms, &a)
    else:
        a.has_keyset = 0
        a.keyset_group = -1
        a.has_scope = 0
        a.scope = 0
        a.established_ok = 0
        a.established_ms = 0
    status = np.empty(n, dtype=np.uint8)
    tokens = [None] * n
    if n == 0:
        return status, tokens
    cdef uint8_t[::1] st_v = status
    try:
        offsets = <size_t *>malloc(<size_t>n * sizeof(size_t))
        lens = <size_t *>calloc(<size_t>n, sizeof(size_t))
        if offsets == NULL or lens == NULL:
            raise MemoryError()
        for i in range(n):
            offsets[i] = total
            total += uid2_token_max_len(it.rows[i].len if it.rows[i].ptr != NULL else 0)
        out = <char *>malloc(total if total > 0 else 1)
        if out == NULL:
            raise MemoryError()
        with nogil:
            rc = uid2_encrypt_many(t, it.rows, <size_t>n, now_us, &a, &st_v[0], out, offsets, lens, nthreads)
        if rc != 0:
            raise MemoryError("encrypt_tokens: out of memory")
        for i in range(n):
            if st_v[i] == ENC_SUCCESS:
                tokens[i] = PyUnicode_DecodeASCII(out + offsets[i], <Py_ssize_t>lens[i], NULL)
    finally:
        free(offsets)
        free(lens)
        free(out)
    return status, tokens
