# The scalar decrypt straight into the public result object (included by _engine_c.pyx).

cdef enum:
    _N_STATUSES = 14  # UID2_STATUS_SUCCESS .. UID2_STATUS_MALFORMED


cdef class DecryptedTokenFactory:
    """Builds the public scalar result (``_results.DecryptedToken``) from a decrypt in one call: the C engine's
    result written straight into a new object (slots set through their descriptors, datetimes left lazy),
    exactly what ``_results.make_token`` builds from ``decrypt_token``'s tuple.

    ``decrypt(table, token, client, domain, now_us=None)`` takes any input. The common case (an ASCII ``str``
    token, a ``str`` or None domain, a table) is built here directly; anything else goes through
    ``decrypt_token`` and ``make`` (``_results.make_token``). The time is ``now_us``, else
    ``time.time_ns() // 1000`` as in ``_time.now_us`` (CLOCK_REALTIME read directly while ``time.time_ns`` is
    the builtin). The table's ``public_scope`` is the results' identity scope.
    """

    cdef object cls, unset, make, time_mod, time_ns
    cdef tuple statuses           # by engine code; None for a code the public layer does not map
    cdef unsigned bare            # bit per code: the official make_error shape (identity_scope None)
    cdef tuple itypes             # identity type 0 / 1
    cdef dict versions            # 2 / 112 / 128 -> AdvertisingTokenVersion
    cdef object d_status, d_uid, d_site_id, d_sksi, d_itype, d_scope, d_version, d_csg
    cdef object d_est, d_exp, d_est_ms, d_exp_ms

    def __init__(self, cls, unset, statuses, bare_codes, itypes, versions, make):
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
        self.make = make
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

    def decrypt(self, KeyTable table, token, int client, domain, now_us=None):
        cdef uid2_result_t r
        cdef const char *p
        cdef Py_ssize_t n, dn
        cdef const uint8_t *dptr = NULL
        cdef size_t dlen = 0
        cdef char ubuf_stack[512]
        cdef char *ubuf
        cdef int64_t ns, now
        cdef unsigned h
        cdef bint common = type(token) is str and PyUnicode_IS_ASCII(token) and table is not None
        if common and domain is not None:
            if type(domain) is not str:
                common = False
            else:
                try:
                    dptr = <const uint8_t *>PyUnicode_AsUTF8AndSize(domain, &dn)
                    dlen = <size_t>dn
                except UnicodeEncodeError:  # lone surrogates: decrypt_token encodes them
                    common = False
        if now_us is None:
            # time.time_ns() // 1000 as _time.now_us computes it; a patched time.time_ns (freezegun, mocks)
            # is called like before
            if self.time_mod.time_ns is not self.time_ns or not uid2_realtime_ns(&ns):
                ns = self.time_mod.time_ns()
            now = ns // 1000 if ns >= 0 else -((-ns + 999) // 1000)  # floor division, as `// 1000`
        else:
            now = now_us
        if not common:
            return self.make(decrypt_token(table, token, now, client, domain),
                             None if table is None else table.public_scope)
        p = PyUnicode_AsUTF8AndSize(token, &n)
        ubuf = _uid_buffer(<size_t>n, ubuf_stack, sizeof(ubuf_stack))
        try:
            uid2_decrypt_token(table._t, NULL, p, <size_t>n, 0, now, client, dptr, dlen, ubuf, &r)
            status = self.statuses[r.status] if 0 <= r.status < _N_STATUSES else None
            if status is None:  # not a status of a token: the general path says what it is
                return self.make(decrypt_token(table, token, now, client, domain), table.public_scope)
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
                              else table.public_scope)
            uid2_py_descr_set(self.d_version, t, self.versions.get(r.version) if h & UID2_HAVE_VERSION else None)
            uid2_py_descr_set(self.d_csg, t, (r.is_client_side_generated != 0) if h & UID2_HAVE_CSG else None)
            uid2_py_descr_set(self.d_exp, t, self.unset)
            uid2_py_descr_set(self.d_exp_ms, t, r.expiry_ms if h & UID2_HAVE_EXPIRY else None)
            return t
        finally:
            if ubuf != ubuf_stack:
                free(ubuf)


# The public scalar decrypt of this engine: decrypt_result(table, token, client, domain, now_us=None).
cdef DecryptedTokenFactory _DECRYPTED_TOKENS = DecryptedTokenFactory(
    _results.DecryptedToken, _results.UNSET, _results.DECRYPTION_STATUSES, _results.BARE_CODES,
    _results.IDENTITY_TYPES, _results.VERSIONS, _results.make_token)
decrypt_result = _DECRYPTED_TOKENS.decrypt
