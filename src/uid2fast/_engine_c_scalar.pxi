# Scalar decrypt and encrypt into result tuples (included by _engine_c.pyx).

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
    if PyUnicode_Check(domain) and PyUnicode_IS_ASCII(domain):  # cannot fail (and no try to enter)
        ptr[0] = <const uint8_t *>PyUnicode_AsUTF8AndSize(domain, &sz)
        n[0] = <size_t>sz
    elif PyUnicode_Check(domain):
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


# --- encrypt ----------------------------------------------------------------------------------

cdef object _encrypt_args(KeyTable table, object keyset_id, object identity_scope, object established_ms,
                          uid2_encrypt_args_t *a):
    """Fills ``a``. Returns None, or ``(1 for the scope / 0 for the keyset, exception)`` for an argument the twin
    fails on (an unhashable keyset id, a scope int() rejects) only after some of its status checks: the caller
    raises it unless the engine answers with one of those statuses first."""
    deferred = None
    a.has_keyset = keyset_id is not None
    a.keyset_group = -1
    if keyset_id is not None:
        try:
            a.keyset_group = table._groups.get(keyset_id, -1)
        except TypeError as exc:
            deferred = (0, exc)
    a.has_scope = 0
    a.scope = 0
    if identity_scope is not None:
        try:
            a.scope = _sat64(int(identity_scope), "identity_scope")
            a.has_scope = 1
        except (TypeError, ValueError) as exc:
            if deferred is None:
                deferred = (1, exc)
    if isinstance(established_ms, int) and 0 <= established_ms < _U64:
        a.established_ok = 1
        a.established_ms = <uint64_t>established_ms
    else:
        a.established_ok = 0
        a.established_ms = 0
    return deferred


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
    deferred = _encrypt_args(table, keyset_id, identity_scope, established_ms, &a)
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
        if deferred is not None:
            # The twin checks the keys' validity, then looks the keyset up (an unhashable id raises), then
            # answers master / caller / keyset key statuses, then converts the scope (a bad one raises).
            if st == ENC_KEYS_NOT_SYNCED or (deferred[0] == 1 and (
                    st == ENC_NOT_AUTHORIZED_FOR_MASTER_KEY or st == ENC_NOT_AUTHORIZED_FOR_KEY
                    or (st == ENC_ENCRYPTION_FAILURE and table.caller_site_id is None))):
                return (st, None)
            raise deferred[1]
        if st != ENC_SUCCESS:
            return (st, None)
        return (st, PyUnicode_DecodeASCII(out, <Py_ssize_t>out_len, NULL))
    finally:
        if out != out_stack:
            free(out)
