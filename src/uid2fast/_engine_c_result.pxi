# The scalar decrypt straight into the public result object (included by _engine_c.pyx).

from cpython.dict cimport PyDict_GetItem
from libc.string cimport memchr


cdef extern from *:
    """
    #define uid2_bool_ptr(b) ((b) ? Py_True : Py_False)
    """
    PyObject *uid2_bool_ptr(bint b)  # True or False, borrowed

import_datetime()  # the datetime C API (PyDateTimeAPI) for the result's datetimes and a `now` argument

cdef enum:
    _N_STATUSES = 14  # UID2_STATUS_SUCCESS .. UID2_STATUS_MALFORMED

# The result's slots, by index into DecryptedTokenFactory.off.
cdef enum:
    _S_STATUS, _S_UID, _S_ESTABLISHED, _S_SITE_ID, _S_SITE_KEY_SITE_ID, _S_IDENTITY_TYPE, _S_IDENTITY_SCOPE,
    _S_VERSION, _S_CSG, _S_EXPIRY, _N_SLOTS

cdef tuple _SLOT_NAMES = ("status", "uid", "established", "site_id", "site_key_site_id", "identity_type",
                          "identity_scope", "advertising_token_version", "is_client_side_generated", "expiry")

# Timestamps below 2**32 seconds become datetimes here (exactly ms * 1000 µs, as _time explains); a result with
# a later one goes through _results.make_token, which replays the official float conversion. (The engine answers
# INVALID_PAYLOAD for a timestamp that conversion cannot hold, as the official decrypt fails on it.)
cdef uint64_t _EXACT_MS_LIMIT = (<uint64_t>1 << 32) * 1000


cdef class DecryptedTokenFactory:
    """Builds the public scalar result (``_results.DecryptedToken``) from a decrypt in one call: the C engine's
    result written straight into the slots of a new object, the datetimes made through the datetime C API
    (UTC, as ``datetime.fromtimestamp(ms / 1000.0, tz=timezone.utc)``), the enum members taken from tables
    filled once. The same object, field for field, as ``_results.make_token`` builds from ``decrypt_token``'s
    tuple.

    ``decrypt(table, token, client, domain, now_us=None)`` takes any input. The common case (an ASCII ``str``
    token, a ``str`` or None domain, a table, timestamps from 1970 to 2106) is built here directly; anything
    else goes through ``decrypt_token`` and ``make`` (``_results.make_token``). The time is ``now_us``, else
    ``time.time_ns() // 1000`` as in ``_time.now_us`` (CLOCK_REALTIME read directly while ``time.time_ns`` is
    the builtin). The table's ``public_scope`` is the results' identity scope.
    """

    cdef object cls, make, time_mod, time_ns
    cdef dict time_dict           # time.__dict__: time_ns looked up there (borrowed), not through getattr
    cdef tuple statuses           # by engine code; None for a code the public layer does not map
    cdef unsigned bare            # bit per code: the official make_error shape (identity_scope None)
    cdef object email, phone      # identity type 0 / 1
    cdef object v2, v3, v4        # AdvertisingTokenVersion by version code 2 / 112 / 128
    cdef dict versions
    cdef Py_ssize_t off[_N_SLOTS]  # where each field's slot lies in an instance
    cdef uid2_pool_t pool          # scalar results to fill again (uid2_pool_get)
    cdef uid2_int_cache_t site_ints  # site id ints made lately (uid2_int_like)
    cdef uid2_dict_memo_t clock_memo  # time.__dict__ seen with the builtin time_ns (uid2_dict_item_is)
    cdef uid2_day_memo_t days[2]   # the last established and expiry days converted (uid2_utc_datetime_ms_into)
    cdef uid2_day_memo_t row_days[2]  # and rows()'s (uid2_utc_datetime_ms_new)

    def __init__(self, cls, statuses, bare_codes, itypes, versions, make):
        import time
        if cls.__new__ is not object.__new__ or not isinstance(cls, type):
            raise TypeError("the result class must be a class that does not define __new__")
        for i, name in enumerate(_SLOT_NAMES):
            self.off[i] = uid2_slot_offset(cls.__dict__.get(name), cls)
            if self.off[i] < 0:
                raise TypeError(f"{cls.__name__}.{name} is not a slot of the class")
        self.cls = cls
        self.make = make
        # Recycling only where this build reads the instance dict right: none on a new object, one once an
        # attribute beyond the slots is set (else every result is a new object).
        probe = uid2_py_alloc(cls)
        self.pool.on = uid2_pool_dictless(probe)
        setattr(probe, "_uid2fast_probe", None)
        self.pool.on = self.pool.on and not uid2_pool_dictless(probe)
        del probe
        self.time_mod = time
        self.time_ns = time.time_ns  # the builtin: while time.time_ns is still it, read the clock directly
        self.time_dict = time.__dict__
        self.statuses = tuple(statuses)
        if len(self.statuses) != _N_STATUSES:
            raise ValueError(f"statuses: {_N_STATUSES} entries, one per engine code")
        self.bare = 0
        for code in bare_codes:
            self.bare |= 1u << <unsigned>code
        self.email, self.phone = itypes
        self.versions = dict(versions)
        self.v2 = self.versions[2]
        self.v3 = self.versions[112]
        self.v4 = self.versions[128]

    def __dealloc__(self):
        uid2_pool_clear(&self.pool)
        uid2_int_cache_clear(&self.site_ints)

    cdef inline PyObject *_version_ptr(self, int code):
        """``_version(code)`` borrowed (the factory holds the members): NULL for a code it does not know."""
        if code == 128:
            return <PyObject *>self.v4
        if code == 112:
            return <PyObject *>self.v3
        if code == 2:
            return <PyObject *>self.v2
        return PyDict_GetItem(self.versions, code)

    cdef inline object _version(self, int code):
        if code == 128:
            return self.v4
        if code == 112:
            return self.v3
        if code == 2:
            return self.v2
        return self.versions.get(code)

    def decrypt(self, KeyTable table, token, int client, domain, now_us=None):
        cdef int code
        return self.run(table, token, client, domain, now_us, &code)

    cdef object run(self, KeyTable table, token, int client, domain, now_us, int *code):
        """``decrypt``, also giving the result's engine status code in ``code`` (-1 when the result was built
        by ``make``, whose status object the caller then reads)."""
        cdef uid2_result_t r
        cdef const char *p
        cdef Py_ssize_t n, dn
        cdef const uint8_t *dptr = NULL
        cdef size_t dlen = 0
        cdef char ubuf_stack[512]
        cdef char *ubuf
        cdef int64_t ns = 0, now
        cdef unsigned h
        cdef bint common = type(token) is str and PyUnicode_IS_ASCII(token) and table is not None
        if common and domain is not None:
            if type(domain) is not str:
                common = False
            elif PyUnicode_IS_ASCII(domain):  # its UTF-8 is its own data: nothing to encode, nothing can fail
                dptr = <const uint8_t *>PyUnicode_AsUTF8AndSize(domain, &dn)
                dlen = <size_t>dn
            else:  # (the try sits here: entering one saves the thread's exception state, a few ns a call)
                try:
                    dptr = <const uint8_t *>PyUnicode_AsUTF8AndSize(domain, &dn)
                    dlen = <size_t>dn
                except UnicodeEncodeError:  # lone surrogates: decrypt_token encodes them
                    common = False
        if now_us is None:
            # time.time_ns() // 1000 as _time.now_us computes it; a patched time.time_ns (freezegun, mocks)
            # is called like before
            if (not uid2_dict_item_is(self.time_dict, "time_ns", self.time_ns, &self.clock_memo)
                    or not uid2_realtime_ns(&ns)):
                ns = self.time_mod.time_ns()
            now = ns // 1000 if ns >= 0 else -((-ns + 999) // 1000)  # floor division, as `// 1000`
        else:
            now = now_us
        code[0] = -1
        if not common:
            return self.make(decrypt_token(table, token, now, client, domain),
                             None if table is None else table.public_scope)
        p = PyUnicode_AsUTF8AndSize(token, &n)
        ubuf = _uid_buffer(<size_t>n, ubuf_stack, sizeof(ubuf_stack))
        try:
            uid2_decrypt_token(table._t, NULL, p, <size_t>n, 0, now, client, dptr, dlen, ubuf, &r)
            return self._build(table, &r, token, now, client, domain, code)
        finally:
            if ubuf != ubuf_stack:
                free(ubuf)

    cdef object _build(self, KeyTable table, uid2_result_t *r, token, int64_t now, int client, domain,
                       int *code_out):
        cdef unsigned h = r.have
        cdef int code = r.status
        status = self.statuses[code] if 0 <= code < _N_STATUSES else None
        if status is None:  # not a status of a token: the general path says what it is
            return self.make(decrypt_token(table, token, now, client, domain), table.public_scope)
        if ((h & UID2_HAVE_ESTABLISHED and r.established_ms >= _EXACT_MS_LIMIT)
                or (h & UID2_HAVE_EXPIRY and r.expiry_ms >= _EXACT_MS_LIMIT)):
            return self.make(_result_tuple(table, r), table.public_scope)
        # The object first: a recycled one's old datetimes and uid str serve again when only its slots hold them
        # (uid2_utc_datetime_ms_into, uid2_ascii_into), and so does an equal site id (or one from site_ints).
        # Its slots are then filled in one go; should making a value fail, the object goes back to the pool (or
        # away) whole, each slot holding an old value or NULL.
        t = uid2_pool_get(&self.pool, self.cls)
        uid = None
        if h & UID2_HAVE_UID:
            if r.version == UID2_VERSION_V2:
                uid = PyUnicode_DecodeUTF8(r.uid, <Py_ssize_t>r.uid_len, NULL)  # validated by the engine
            else:
                uid = uid2_ascii_into(r.uid, <Py_ssize_t>r.uid_len, uid2_slot_peek(t, self.off[_S_UID]))
        established = (uid2_utc_datetime_ms_into(r.established_ms, uid2_slot_peek(t, self.off[_S_ESTABLISHED]),
                                                 &self.days[0])
                       if h & UID2_HAVE_ESTABLISHED else None)
        expiry = (uid2_utc_datetime_ms_into(r.expiry_ms, uid2_slot_peek(t, self.off[_S_EXPIRY]), &self.days[1])
                  if h & UID2_HAVE_EXPIRY else None)
        site_id = (uid2_int_like(r.site_id, uid2_slot_peek(t, self.off[_S_SITE_ID]), &self.site_ints)
                   if h & UID2_HAVE_SITE_ID else None)
        # The slots filled in one go, from borrowed references (uid2_slots_put); the values they held go once
        # the object is whole.
        cdef PyObject *v[_N_SLOTS]
        cdef PyObject *none = <PyObject *>None
        v[_S_STATUS] = <PyObject *>status
        v[_S_UID] = <PyObject *>uid
        v[_S_ESTABLISHED] = <PyObject *>established
        v[_S_SITE_ID] = <PyObject *>site_id
        v[_S_SITE_KEY_SITE_ID] = none
        if h & UID2_HAVE_SITE_KEY:
            v[_S_SITE_KEY_SITE_ID] = PyList_GET_ITEM_PTR(table._site_ids, <Py_ssize_t>r.site_key_index)
        v[_S_IDENTITY_TYPE] = none
        if h & UID2_HAVE_IDENTITY_TYPE:
            v[_S_IDENTITY_TYPE] = <PyObject *>self.phone if r.identity_type != 0 else <PyObject *>self.email
        v[_S_IDENTITY_SCOPE] = none if (self.bare >> <unsigned>code) & 1u else <PyObject *>table.public_scope
        v[_S_VERSION] = none
        if h & UID2_HAVE_VERSION:
            v[_S_VERSION] = self._version_ptr(r.version)
            if v[_S_VERSION] == NULL:  # a code the factory does not know: None, as versions.get gives
                v[_S_VERSION] = none
        v[_S_CSG] = none
        if h & UID2_HAVE_CSG:
            v[_S_CSG] = uid2_bool_ptr(r.is_client_side_generated != 0)
        v[_S_EXPIRY] = <PyObject *>expiry
        uid2_slots_put(t, self.off, v, _N_SLOTS)
        code_out[0] = code
        return t


    def rows(self, const uint8_t[::1] status, const uint8_t[:, ::1] uid, const int64_t[::1] established,
             const int64_t[::1] site_id, const int64_t[::1] site_key_site_id, const int8_t[::1] identity_type,
             const int16_t[::1] version, const int8_t[::1] csg, const int64_t[::1] expiry, dict overflow,
             Py_ssize_t base, scope):
        """The rows of a batch result's columns as a list of ``DecryptedToken``: for each row the object
        ``make`` builds from its tuple (``batch.DecryptedTokens._row``), built here without the tuple or a
        numpy scalar per field. The columns are one chunk of the batch (equal lengths, C-contiguous, the
        batch's dtypes; ``uid`` as a 2-d uint8 view of the S column), ``overflow`` the batch's long raw UIDs
        by row index, ``base`` the chunk's first row index, ``scope`` the batch's identity scope. A row with a
        status no result carries or a timestamp outside 1970..2106 goes through ``make``, as in ``decrypt``."""
        cdef Py_ssize_t n = status.shape[0], w = uid.shape[1], i, k
        cdef const char *nul
        cdef int64_t e, x, none = NONE_I64
        cdef int code, v
        cdef list out = []
        if not (uid.shape[0] == established.shape[0] == site_id.shape[0] == site_key_site_id.shape[0] ==
                identity_type.shape[0] == version.shape[0] == csg.shape[0] == expiry.shape[0] == n):
            raise ValueError("the columns differ in length")
        for i in range(n):
            code = status[i]
            e = established[i]
            x = expiry[i]
            st = self.statuses[code] if code < _N_STATUSES else None
            if overflow and (base + i) in overflow:
                uid_s = overflow[base + i]
            else:  # NUL-padded to the column's width
                nul = <const char *>memchr(&uid[i, 0], 0, <size_t>w) if w else NULL
                k = w if nul == NULL else nul - <const char *>&uid[i, 0]
                uid_s = PyUnicode_DecodeASCII(<const char *>&uid[i, 0], k, NULL) if k else None
            itype = (None if identity_type[i] < 0 else self.phone if identity_type[i] != 0 else self.email)
            v = version[i]
            flag = None if csg[i] < 0 else csg[i] != 0
            # a batch's rows come from few sites: their ints are shared through site_ints
            site = None if site_id[i] == none else uid2_int_like(site_id[i], NULL, &self.site_ints)
            sksite = (None if site_key_site_id[i] == none else
                      uid2_int_like(site_key_site_id[i], NULL, &self.site_ints))
            if (st is None or (e != none and not (0 <= e < <int64_t>_EXACT_MS_LIMIT))
                    or (x != none and not (0 <= x < <int64_t>_EXACT_MS_LIMIT))):
                out.append(self.make((code, uid_s, None if e == none else e, site, sksite,
                                      None if identity_type[i] < 0 else identity_type[i], None if v < 0 else v,
                                      flag, None if x == none else x), scope))
                continue
            established_dt = None if e == none else uid2_utc_datetime_ms_new(<uint64_t>e, &self.row_days[0])
            expiry_dt = None if x == none else uid2_utc_datetime_ms_new(<uint64_t>x, &self.row_days[1])
            t = uid2_py_alloc(self.cls)
            uid2_slot_init(t, self.off[_S_STATUS], st)
            uid2_slot_init(t, self.off[_S_UID], uid_s)
            uid2_slot_init(t, self.off[_S_ESTABLISHED], established_dt)
            uid2_slot_init(t, self.off[_S_SITE_ID], site)
            uid2_slot_init(t, self.off[_S_SITE_KEY_SITE_ID], sksite)
            uid2_slot_init(t, self.off[_S_IDENTITY_TYPE], itype)
            uid2_slot_init(t, self.off[_S_IDENTITY_SCOPE], None if (self.bare >> <unsigned>code) & 1u else scope)
            uid2_slot_init(t, self.off[_S_VERSION], None if v < 0 else self._version(v))
            uid2_slot_init(t, self.off[_S_CSG], flag)
            uid2_slot_init(t, self.off[_S_EXPIRY], expiry_dt)
            out.append(t)
        return out


def utc_datetime_us(value):
    """Microseconds since the epoch of a ``datetime`` (not a subclass) in ``timezone.utc``, read straight from
    its fields: what ``_time.to_us`` gives for it. None for anything else (the caller converts it with
    ``to_us``)."""
    cdef int64_t us
    if uid2_utc_datetime_us(value, &us):
        return us
    return None


# The public scalar decrypt of this engine: decrypt_result(table, token, client, domain, now_us=None).
cdef DecryptedTokenFactory _DECRYPTED_TOKENS = DecryptedTokenFactory(
    _results.DecryptedToken, _results.DECRYPTION_STATUSES, _results.BARE_CODES, _results.IDENTITY_TYPES,
    _results.VERSIONS, _results.make_token)
decrypt_result = _DECRYPTED_TOKENS.decrypt


def result_recycling():
    """Whether ``decrypt_result`` fills dropped results again (uid2_pool_get) on this interpreter."""
    return bool(_DECRYPTED_TOKENS.pool.on)
decrypted_token_rows = _DECRYPTED_TOKENS.rows
