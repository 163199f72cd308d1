# C declarations of the engine (csrc/uid2_engine.h and its helpers) and the small C helpers the Cython layer
# inlines. Read by _engine_c.pyx (a .pxd beside a .pyx of the same name is part of that module).

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
    object PyUnicode_New(Py_ssize_t size, Py_UCS4 maxchar)
    PyObject *PyList_GET_ITEM_PTR "PyList_GET_ITEM" (object lst, Py_ssize_t i)
    PyObject *PyTuple_GET_ITEM_PTR "PyTuple_GET_ITEM" (object t, Py_ssize_t i)
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
        UID2_STATUS_DOMAIN_LATER
        UID2_STATUS_DOMAIN_NAME_CHECK_FAILED

    const uint8_t uid2_domain_later[1]
    int uid2_domain_allowed(const uid2_table_t *t, uint32_t site_id, const uint8_t *domain, size_t dlen)

    size_t UID2_UID_BUF_LEN(size_t n)

    uid2_table_t *uid2_table_new(const uid2_key_spec_t *keys, size_t n_keys, size_t n_groups,
                                 const uid2_site_spec_t *sites, size_t n_sites, const uid2_bytes_t *names,
                                 size_t n_names, const uid2_table_params_t *params)
    void uid2_table_free(uid2_table_t *t)
    size_t uid2_table_size(const uid2_table_t *t)
    ptrdiff_t uid2_table_find(const uid2_table_t *t, uint32_t key_id)
    unsigned uid2_table_fastpath(const uid2_table_t *t)
    enum:
        UID2_FAST_ONEPASS
        UID2_FAST_B64
    ptrdiff_t uid2_table_active_key(const uid2_table_t *t, int32_t group, int64_t now_us)
    int uid2_decrypt_token(const uid2_table_t *t, uid2_worker_t *w, const char *token, size_t len,
                           unsigned flags, int64_t now_us, int client, const uint8_t *domain, size_t domain_len,
                           char *uid_buf, uid2_result_t *r)
    ptrdiff_t uid2_decrypt_many(const uid2_table_t *t, const uid2_bytes_t *tokens, size_t n,
                                const uid2_bytes_t *domains, const uid2_bytes_t *single_domain, int64_t now_us,
                                int client, const uid2_columns_t *cols, int threads)
    size_t uid2_batch_threads(size_t n, int threads)
    ctypedef struct uid2_decrypt_run_t:
        pass
    enum: UID2_RUN_STOPPED
    uid2_decrypt_run_t *uid2_decrypt_run_start(const uid2_table_t *t, const uid2_bytes_t *tokens, size_t n,
                                               const uid2_bytes_t *domains, const uid2_bytes_t *single_domain,
                                               int64_t now_us, int client, const uid2_columns_t *cols,
                                               int threads)
    void uid2_decrypt_run_ready(uid2_decrypt_run_t *r, size_t rows)
    int uid2_decrypt_run_take(uid2_decrypt_run_t *r, size_t *lo, size_t *hi, ptrdiff_t *overflow)
    int uid2_decrypt_run_done(const uid2_decrypt_run_t *r, size_t index, size_t *lo, size_t *hi)
    void uid2_decrypt_run_stop(uid2_decrypt_run_t *r)
    ptrdiff_t uid2_decrypt_run_finish(uid2_decrypt_run_t *r)
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
                          const uid2_encrypt_args_t *a, uint8_t *status, char *const *outs, size_t *out_lens,
                          int threads)


cdef extern from "uid2_kernels.h" nogil:
    int uid2_hw_available()
    const char *uid2_hw_name()
    int uid2_fastpath_enabled()


cdef extern from "uid2_b64fast.h" nogil:
    int uid2_b64fast_enabled()
    const char *uid2_b64fast_kernel()


# The batch's one-pass rows, called directly only by one_pass_rows (which rows they take, for the tests).
cdef extern from "uid2_internal.h" nogil:
    void uid2_wipe(void *p, size_t n)
    ctypedef struct uid2_key_memo_t:
        uint32_t id[2]
        ptrdiff_t idx[2]
    enum: UID2_FAST_ROW_SCRATCH, UID2_FAST_GROUP
    int uid2_decrypt_fast(const uid2_table_t *t, uid2_key_memo_t *memo, uint8_t *scratch, size_t cap,
                          const char *token, size_t len, int64_t now_us, int client, const uint8_t *domain,
                          size_t dlen, const uid2_columns_t *c, size_t i)
    uint32_t uid2_decrypt_fast_group(const uid2_table_t *t, uid2_key_memo_t *memo, uint8_t *scratch, size_t cap,
                                     const uid2_bytes_t *tokens, size_t lo, size_t n, const uid2_bytes_t *domains,
                                     const uid2_bytes_t *single_domain, int64_t now_us, int client,
                                     const uid2_columns_t *c)


cdef extern from "uid2_gcm_mb.h" nogil:
    enum: UID2_GCM_MB_NONE
    int uid2_gcm_mb_impl()


# Helpers for the scalar result and the batch input (prefetch, str from its data, slot stores, clock).
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


# The scalar result: slots written in place, datetimes through the datetime C API (cpython.datetime includes
# datetime.h; the module calls import_datetime() before the first use), the wall clock.
from cpython.datetime cimport import_datetime

cdef extern from *:
    """
    #include <structmember.h>
    #include <time.h>
    /* The byte offset of the object slot behind a member descriptor of `cls` (a `__slots__` entry), or -1 when
     * `descr` is something else. */
    static Py_ssize_t uid2_slot_offset(PyObject *descr, PyObject *cls)
    {
        PyMemberDef *m;
        if (Py_TYPE(descr) != &PyMemberDescr_Type || PyDescr_TYPE(descr) != (PyTypeObject *)cls)
            return -1;
        m = ((PyMemberDescrObject *)descr)->d_member;
        if (m->type != T_OBJECT_EX || (m->flags & READONLY) || m->offset <= 0)
            return -1;
        return m->offset;
    }
    /* `obj.<name>` read straight from its slot (borrowed: the caller takes its reference before anything else
     * runs), when that is what the attribute lookup would
     * do: `descr` is a member descriptor (a `__slots__` entry at byte `offset`), obj's type finds `descr` for
     * `name` (an interned str) through its MRO, obj is an instance of the class that defined it (so the slot is
     * part of its layout), and the slot is set. NULL, with no error set, in every other case: the caller then
     * reads the attribute the general way (a property in a subclass, an unset slot's AttributeError). Off where
     * _PyType_Lookup hands out borrowed references another thread may drop (free-threaded builds), and where
     * Cython does not use it either. */
    #if !defined(Py_GIL_DISABLED) && CYTHON_USE_PYTYPE_LOOKUP
    #define UID2_SLOT_READS 1
    #else
    #define UID2_SLOT_READS 0
    #endif
    /* What uid2_slot_attr found last for one attribute: the type it looked through, at that type's version tag.
     * CPython gives a type a new version tag whenever its dict, or a base's, or its bases change (the tags are
     * never reused), so while a type keeps that tag the lookup would find the same descriptor through the same
     * MRO: the check is then two loads and compares instead of _PyType_Lookup. Before 3.14, as the result pool. */
    typedef struct { PyTypeObject *type; unsigned int tag; } uid2_type_memo_t;
    #if UID2_SLOT_READS && defined(Py_TPFLAGS_VALID_VERSION_TAG) && PY_VERSION_HEX < 0x030E0000
    #define UID2_TYPE_MEMO 1
    #else
    #define UID2_TYPE_MEMO 0
    #endif
    static inline PyObject *uid2_slot_attr(PyObject *obj, PyObject *name, PyObject *descr, Py_ssize_t offset,
                                           uid2_type_memo_t *memo)
    {
    #if UID2_SLOT_READS
        PyTypeObject *tp = Py_TYPE(obj);
        if (offset <= 0)
            return NULL;
    #if UID2_TYPE_MEMO
        if (memo->type != tp || memo->tag == 0 || tp->tp_version_tag != memo->tag
                || !(tp->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG)) {
    #else
        (void)memo;
        {
    #endif
            if (_PyType_Lookup(tp, name) != descr || !PyObject_TypeCheck(obj, PyDescr_TYPE(descr)))
                return NULL;
    #if UID2_TYPE_MEMO
            if (tp->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG) {
                memo->type = tp;
                memo->tag = tp->tp_version_tag;
            }
    #endif
        }
        return *(PyObject **)((char *)obj + offset);
    #else
        (void)obj; (void)name; (void)descr; (void)offset; (void)memo;
        return NULL;
    #endif
    }
    /* Fill an empty slot of a new object (`obj.name = value` without the descriptor; the slot holds NULL). */
    static inline void uid2_slot_init(PyObject *obj, Py_ssize_t offset, PyObject *value)
    {
        Py_INCREF(value);
        *(PyObject **)((char *)obj + offset) = value;
    }
    /* Results recycled (uid2_pool_get): a bidder drops each result before its next call but one, so an
     * object the pool alone holds is filled again instead of freeing one object and allocating the next. Only
     * where the GIL makes "the pool holds the only reference" a fact no other thread can change, and before
     * CPython 3.14 (the instance dict is read through _PyObject_GetDictPtr, which the factory also checks at
     * start-up: uid2_pool_dictless must say no dict for a new object and a dict once an attribute is set). */
    #if !defined(Py_GIL_DISABLED) && PY_VERSION_HEX < 0x030E0000
    #define UID2_POOL 4
    #else
    #define UID2_POOL 0
    #endif
    typedef struct { PyObject *obj[4]; unsigned next; int on; } uid2_pool_t;
    /* 1 when `o` has no instance dict (no attribute set beyond its slots); 0 when it has one, or when this
     * build cannot tell. */
    static int uid2_pool_dictless(PyObject *o)
    {
    #if UID2_POOL
        PyObject **dp = _PyObject_GetDictPtr(o);
        return dp == NULL || *dp == NULL;
    #else
        (void)o;
        return 0;
    #endif
    }
    /* A new reference to an object of class `cls` (whose __new__ is object.__new__) to fill with
     * uid2_slot_swap: an idle one of the pool (held by the pool alone, so no one can see it change, of the
     * class, without an instance dict), its slots still holding the last result's values; or a new one
     * (slots NULL) that the pool then keeps in place of its oldest. NULL with an exception. */
    static PyObject *uid2_pool_get(uid2_pool_t *p, PyObject *cls)
    {
        PyTypeObject *tp = (PyTypeObject *)cls;
        PyObject *o;
        int i;
        if (!p->on)
            return tp->tp_alloc(tp, 0);
        for (i = 0; i < 4; i++) {
            o = p->obj[i];
            if (o != NULL && Py_REFCNT(o) == 1 && Py_TYPE(o) == tp && uid2_pool_dictless(o)) {
                Py_INCREF(o);
                return o;
            }
        }
        o = tp->tp_alloc(tp, 0);
        if (o != NULL) {
            PyObject *old = p->obj[p->next % 4];
            Py_INCREF(o);
            p->obj[p->next % 4] = o;
            p->next++;
            Py_XDECREF(old); /* last: whatever it runs sees the pool whole */
        }
        return o;
    }
    static void uid2_pool_clear(uid2_pool_t *p)
    {
        int i;
        for (i = 0; i < 4; i++)
            Py_CLEAR(p->obj[i]);
    }
    /* Put `value` in a slot of an object from uid2_pool_get; the reference the slot held (or NULL), for the
     * caller to drop once every slot is filled. A slot that already holds `value` (a recycled result's status,
     * version, identity type...) is left as it is: NULL, nothing to drop. */
    static PyObject *uid2_slot_swap(PyObject *obj, Py_ssize_t offset, PyObject *value)
    {
        PyObject **slot = (PyObject **)((char *)obj + offset);
        PyObject *old = *slot;
        if (old == value)
            return NULL;
        Py_INCREF(value);
        *slot = value;
        return old;
    }
    /* uid2_slot_swap for n slots at once, the values borrowed (the caller holds them until this returns):
     * each slot at off[i] gets v[i], then what the slots held before is dropped, once the object is whole
     * (so whatever a drop runs sees no slot half-filled). */
    static void uid2_slots_put(PyObject *obj, const Py_ssize_t *off, PyObject *const *v, int n)
    {
        PyObject *olds[16];
        int i;
        for (i = 0; i < n && i < 16; i++)
            olds[i] = uid2_slot_swap(obj, off[i], v[i]);
        for (i = 0; i < n && i < 16; i++)
            Py_XDECREF(olds[i]);
    }
    /* cls.__new__(cls) for a class whose __new__ is object.__new__: just the allocation (slots NULL). */
    static PyObject *uid2_py_alloc(PyObject *cls)
    {
        PyTypeObject *tp = (PyTypeObject *)cls;
        return tp->tp_alloc(tp, 0);
    }
    /* Days since 1970-01-01 of a proleptic Gregorian date, and back (H. Hinnant's civil calendar algorithms). */
    static int64_t uid2_days_from_civil(int64_t y, unsigned m, unsigned d)
    {
        int64_t era;
        unsigned yoe, doy, doe;
        y -= m <= 2;
        era = (y >= 0 ? y : y - 399) / 400;
        yoe = (unsigned)(y - era * 400);
        doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + (int64_t)doe - 719468;
    }
    static void uid2_civil_from_days(int64_t z, int *y, int *m, int *d)
    {
        int64_t era;
        unsigned doe, yoe, doy, mp;
        z += 719468;
        era = (z >= 0 ? z : z - 146096) / 146097;
        doe = (unsigned)(z - era * 146097);
        yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        mp = (5 * doy + 2) / 153;
        *d = (int)(doy - (153 * mp + 2) / 5 + 1);
        *m = (int)(mp < 10 ? mp + 3 : mp - 9);
        *y = (int)(yoe + era * 400 + (*m <= 2));
    }
    /* datetime.fromtimestamp(ms / 1000.0, tz=timezone.utc) for 0 <= ms < 2**32 * 1000, where that is exactly
     * ms * 1000 microseconds after the epoch (the caller checks the range). */
    static PyObject *uid2_utc_datetime_ms(uint64_t ms)
    {
        int y, mo, d;
        unsigned rem = (unsigned)(ms % 86400000u);
        uid2_civil_from_days((int64_t)(ms / 86400000u), &y, &mo, &d);
        return PyDateTimeAPI->DateTime_FromDateAndTime(y, mo, d, (int)(rem / 3600000u), (int)(rem / 60000u % 60u),
                                                       (int)(rem / 1000u % 60u), (int)(rem % 1000u) * 1000,
                                                       PyDateTime_TimeZone_UTC, PyDateTimeAPI->DateTimeType);
    }
    /* The date bytes (datetime.h's data[0:4]: year high, year low, month, day) of the day last converted, and
     * that day + 1 (0: none yet). A bidder's tokens were established and expire on few distinct days, and so
     * do a batch's rows; the conversion is a chain of a dozen dependent multiplies. */
    typedef struct { uint64_t day1; unsigned char ymd[4]; } uid2_day_memo_t;
    /* Writes ms (0 <= ms < 2**32 * 1000) into an aware datetime's fields: datetime.h's public layout, the bytes
     * its PyDateTime_GET_* macros read; the cached hash reset, fold 0. tzinfo is the caller's. */
    static void uid2_datetime_set_ms(PyDateTime_DateTime *v, uint64_t ms, uid2_day_memo_t *memo)
    {
        unsigned rem = (unsigned)(ms % 86400000u), us = (rem % 1000u) * 1000u;
        uint64_t day = ms / 86400000u;
        if (memo->day1 != day + 1) {
            int y, mo, d;
            uid2_civil_from_days((int64_t)day, &y, &mo, &d);
            memo->ymd[0] = (unsigned char)(y >> 8);
            memo->ymd[1] = (unsigned char)y;
            memo->ymd[2] = (unsigned char)mo;
            memo->ymd[3] = (unsigned char)d;
            memo->day1 = day + 1;
        }
        v->hashcode = -1;
        memcpy(v->data, memo->ymd, 4);
        v->data[4] = (unsigned char)(rem / 3600000u);
        v->data[5] = (unsigned char)(rem / 60000u % 60u);
        v->data[6] = (unsigned char)(rem / 1000u % 60u);
        v->data[7] = (unsigned char)(us >> 16);
        v->data[8] = (unsigned char)(us >> 8);
        v->data[9] = (unsigned char)us;
        v->fold = 0;
    }
    /* uid2_utc_datetime_ms(ms) as a new object made as the datetime type makes one (its tp_alloc with room for
     * tzinfo, then the fields), without the range checks of DateTime_FromDateAndTime (the caller's range is
     * valid) and with the day from `memo` when it is the last one converted. Where the GIL guards the memo
     * (UID2_POOL builds); elsewhere uid2_utc_datetime_ms. */
    static PyObject *uid2_utc_datetime_ms_new(uint64_t ms, uid2_day_memo_t *memo)
    {
    #if UID2_POOL
        PyTypeObject *tp = PyDateTimeAPI->DateTimeType;
        PyDateTime_DateTime *v = (PyDateTime_DateTime *)tp->tp_alloc(tp, 1);
        if (v == NULL)
            return NULL;
        v->hastzinfo = 1;
        Py_INCREF(PyDateTime_TimeZone_UTC);
        v->tzinfo = PyDateTime_TimeZone_UTC;
        uid2_datetime_set_ms(v, ms, memo);
        return (PyObject *)v;
    #else
        (void)memo;
        return uid2_utc_datetime_ms(ms);
    #endif
    }
    /* uid2_utc_datetime_ms(ms), written into `old` when that is a datetime only the caller's slot holds (a
     * recycled result's: no one else can see it change), exactly a datetime in timezone.utc; else a new one
     * (uid2_utc_datetime_ms_new). A new reference either way (NULL with an exception). */
    static PyObject *uid2_utc_datetime_ms_into(uint64_t ms, PyObject *old, uid2_day_memo_t *memo)
    {
    #if UID2_POOL
        if (old != NULL && Py_REFCNT(old) == 1 && PyDateTime_CheckExact(old)) {
            PyDateTime_DateTime *v = (PyDateTime_DateTime *)old;
            if (v->hastzinfo && v->tzinfo == PyDateTime_TimeZone_UTC) {
                uid2_datetime_set_ms(v, ms, memo);
                Py_INCREF(old);
                return old;
            }
        }
    #else
        (void)old;
    #endif
        return uid2_utc_datetime_ms_new(ms, memo);
    }
    /* The ASCII str s[0:n) (a v3/v4 raw UID in base64, which the engine wrote): `old` rewritten in place when
     * the slot is its only holder, as uid2_utc_datetime_ms_into does for datetimes: exactly a str, compact
     * ASCII, of length n, not interned (an interned str's refcount leaves out the interpreter's own
     * references), with no cached wchar_t copy (3.11); its cached hash is reset. Else a new str. A byte
     * >= 0x80 (never written by the engine) goes to PyUnicode_DecodeASCII, which raises. */
    static PyObject *uid2_ascii_into(const char *s, Py_ssize_t n, PyObject *old)
    {
        if (!uid2_all_ascii((const uint8_t *)s, (size_t)n)) /* uid2_internal.h, a word at a time */
            return PyUnicode_DecodeASCII(s, n, NULL);
    #if UID2_POOL
        if (old != NULL && Py_REFCNT(old) == 1 && PyUnicode_CheckExact(old) && PyUnicode_IS_COMPACT_ASCII(old)
                && PyUnicode_GET_LENGTH(old) == n && !PyUnicode_CHECK_INTERNED(old)
    #if PY_VERSION_HEX < 0x030C0000
                && ((PyASCIIObject *)old)->wstr == NULL
    #endif
                ) {
            memcpy(PyUnicode_DATA(old), s, (size_t)n);
            ((PyASCIIObject *)old)->hash = -1;
            Py_INCREF(old);
            return old;
        }
    #else
        (void)old;
    #endif
        PyObject *u = PyUnicode_New(n, 127);
        if (u != NULL)
            memcpy(PyUnicode_DATA(u), s, (size_t)n);
        return u;
    }
    /* The int `value`: `old` itself when it is an int of that value (ints are immutable: sharing is plain), else
     * the one the cache made last for a value with the same low 8 bits, else a new one (which the cache then
     * keeps). A bidder's tokens come from a limited set of publisher sites, and a site id above 256 is a new
     * object each time otherwise. The cache is used where the result pool is (the GIL guards it); it holds at
     * most 256 ints. */
    typedef struct { PyObject *obj[256]; } uid2_int_cache_t;
    static int uid2_is_int(PyObject *o, long long value)
    {
        int overflow;
        return o != NULL && PyLong_CheckExact(o) && PyLong_AsLongLongAndOverflow(o, &overflow) == value
               && !overflow;
    }
    static PyObject *uid2_int_like(long long value, PyObject *old, uid2_int_cache_t *cache)
    {
        if (uid2_is_int(old, value)) {
            Py_INCREF(old);
            return old;
        }
    #if UID2_POOL
        PyObject **slot = &cache->obj[(unsigned long long)value & 255u];
        if (uid2_is_int(*slot, value)) {
            Py_INCREF(*slot);
            return *slot;
        }
        PyObject *v = PyLong_FromLongLong(value);
        if (v != NULL) {
            PyObject *prev = *slot;
            Py_INCREF(v);
            *slot = v;
            Py_XDECREF(prev); /* an int: nothing runs */
        }
        return v;
    #else
        (void)cache;
        return PyLong_FromLongLong(value);
    #endif
    }
    static void uid2_int_cache_clear(uid2_int_cache_t *cache)
    {
        int i;
        for (i = 0; i < 256; i++)
            Py_CLEAR(cache->obj[i]);
    }
    /* The object in a slot (borrowed; NULL when empty). */
    static PyObject *uid2_slot_peek(PyObject *obj, Py_ssize_t offset)
    {
        return *(PyObject **)((char *)obj + offset);
    }
    /* Microseconds since the epoch of a datetime (exactly a datetime, not a subclass) whose tzinfo is
     * timezone.utc: (value - EPOCH) // timedelta(microseconds=1). 0 = not that case (the caller converts it
     * the general way). */
    static int uid2_utc_datetime_us(PyObject *o, int64_t *us)
    {
        PyDateTime_DateTime *v = (PyDateTime_DateTime *)o;
        int64_t days;
        if (!PyDateTime_CheckExact(o) || !v->hastzinfo || v->tzinfo != PyDateTime_TimeZone_UTC)
            return 0;
        days = uid2_days_from_civil(PyDateTime_GET_YEAR(o), (unsigned)PyDateTime_GET_MONTH(o),
                                    (unsigned)PyDateTime_GET_DAY(o));
        *us = ((days * 24 + PyDateTime_DATE_GET_HOUR(o)) * 60 + PyDateTime_DATE_GET_MINUTE(o)) * 60
              + PyDateTime_DATE_GET_SECOND(o);
        *us = *us * 1000000 + PyDateTime_DATE_GET_MICROSECOND(o);
        return 1;
    }
    /* Whether dict[name] is `expected` (the clock check: is time.time_ns still the builtin?). Before 3.14 the
     * answer is remembered with the dict's version tag, which CPython changes on every change to the dict (from
     * one interpreter-wide counter, so a tag is never reused; on 3.12 and 3.13 its low bits also say which
     * watchers watch the dict, so adding one changes it too): while the tag is the one remembered, no lookup.
     * The tag is deprecated from 3.12 (hence the pragmas) and gone in 3.14, which looks up every time, as a
     * free-threaded build does. 1 yes, 0 no, -1 with an error set. */
    #if PY_VERSION_HEX < 0x030E0000 && !defined(Py_GIL_DISABLED)
    #define UID2_DICT_MEMO 1
    #if defined(__GNUC__)
    #pragma GCC diagnostic push
    #pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    #elif defined(_MSC_VER)
    #pragma warning(push)
    #pragma warning(disable: 4996)
    #endif
    static unsigned long long uid2_dict_tag(PyObject *d)
    {
        return (unsigned long long)((PyDictObject *)d)->ma_version_tag;
    }
    #if defined(__GNUC__)
    #pragma GCC diagnostic pop
    #elif defined(_MSC_VER)
    #pragma warning(pop)
    #endif
    #else
    #define UID2_DICT_MEMO 0
    #endif
    typedef struct { unsigned long long version; int ok; } uid2_dict_memo_t;
    static int uid2_dict_item_is(PyObject *dict, PyObject *name, PyObject *expected, uid2_dict_memo_t *memo)
    {
    #if UID2_DICT_MEMO
        unsigned long long version = uid2_dict_tag(dict);
        if (memo->ok && memo->version == version)
            return 1;
    #endif
        PyObject *o = PyDict_GetItemWithError(dict, name);
        if (o == NULL && PyErr_Occurred())
            return -1;
        if (o != expected)
            return 0;
    #if UID2_DICT_MEMO
        memo->version = version;
        memo->ok = 1;
    #else
        (void)memo;
    #endif
        return 1;
    }
    /* time.time_ns() without the call: CPython reads CLOCK_REALTIME (_PyTime_GetSystemClock); 0 = not
     * available here (then the caller calls time.time_ns). */
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
    """
    Py_ssize_t uid2_slot_offset(object descr, object cls)
    int UID2_SLOT_READS
    ctypedef struct uid2_type_memo_t:
        unsigned int tag
    PyObject *uid2_slot_attr(PyObject *obj, PyObject *name, PyObject *descr, Py_ssize_t offset,
                             uid2_type_memo_t *memo)
    void uid2_slot_init(object obj, Py_ssize_t offset, object value)
    object uid2_py_alloc(object cls)
    ctypedef struct uid2_pool_t:
        int on
    int uid2_pool_dictless(object o)
    object uid2_pool_get(uid2_pool_t *p, object cls)
    void uid2_pool_clear(uid2_pool_t *p)
    PyObject *uid2_slot_swap(object obj, Py_ssize_t offset, object value)
    void uid2_slots_put(object obj, const Py_ssize_t *off, PyObject *const *v, int n)
    object uid2_utc_datetime_ms(uint64_t ms)
    ctypedef struct uid2_day_memo_t:
        pass
    object uid2_utc_datetime_ms_into(uint64_t ms, PyObject *old, uid2_day_memo_t *memo)
    object uid2_utc_datetime_ms_new(uint64_t ms, uid2_day_memo_t *memo)
    ctypedef struct uid2_int_cache_t:
        pass
    object uid2_int_like(long long value, PyObject *old, uid2_int_cache_t *cache)
    void uid2_int_cache_clear(uid2_int_cache_t *cache)
    object uid2_ascii_into(const char *s, Py_ssize_t n, PyObject *old)
    PyObject *uid2_slot_peek(object obj, Py_ssize_t offset)
    int uid2_utc_datetime_us(object o, int64_t *us)
    int uid2_realtime_ns(int64_t *ns)
    ctypedef struct uid2_dict_memo_t:
        int ok
    int uid2_dict_item_is(object d, object name, object expected, uid2_dict_memo_t *memo) except -1
