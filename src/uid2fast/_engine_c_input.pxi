# Batch input collection: (pointer, length) per row with the objects that keep them alive (included by
# _engine_c.pyx).

from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.string cimport memset

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
        self.release_str_rows(self.str_lo, upto)
        if upto > self.str_lo:
            self.str_lo = upto

    cdef void release_str_above(self, Py_ssize_t at):
        """Drops the references of the str rows from `at` up still held."""
        self.release_str_rows(at if at > self.str_lo else self.str_lo, self.str_hi)
        if at < self.str_hi:
            self.str_hi = at if at > self.str_lo else self.str_lo

    cdef void release_str_rows(self, Py_ssize_t lo, Py_ssize_t hi):
        """Drops the references of the str rows [lo, hi), which lie in [str_lo, str_hi), leaving str_lo as it
        is: release_str's loop, and for a caller that releases chunks out of order and then empties
        [str_lo, str_hi) itself (release_str_except)."""
        cdef Py_ssize_t i
        for i in range(lo, hi):
            if i + 32 < hi and self.rows[i + 32].ptr != NULL:
                uid2_prefetch_w(uid2_str_of_data(self.rows[i + 32].ptr))
            if self.rows[i].ptr != NULL:  # a None row holds no reference
                Py_DECREF(<object>uid2_str_of_data(self.rows[i].ptr))

    cdef void release_str_except(self, list done):
        """Drops every reference still held but those of the rows in ``done``, sorted disjoint (lo, hi)
        ranges already released by release_str_rows; then nothing is held."""
        cdef Py_ssize_t at = self.str_lo, lo, hi
        for lo, hi in done:
            if lo > at:
                self.release_str_rows(at, lo if lo < self.str_hi else self.str_hi)
            if hi > at:
                at = hi
        if at < self.str_hi:
            self.release_str_rows(at, self.str_hi)
        self.str_lo = self.str_hi

    cdef int alloc(self, Py_ssize_t n, bint zeroed=True) except -1:
        """Room for n rows, all empty (ptr NULL), or left unset with ``zeroed=False`` for a caller that writes
        every row it lets anything read (_fill_str_rows: no memset of 16 bytes a row ahead of it)."""
        self.n = n
        if zeroed:
            self.rows = <uid2_bytes_t *>calloc(<size_t>(n if n > 0 else 1), sizeof(uid2_bytes_t))
        else:
            self.rows = <uid2_bytes_t *>malloc(<size_t>(n if n > 0 else 1) * sizeof(uid2_bytes_t))
        if self.rows == NULL:
            raise MemoryError()
        return 0


cdef bint _fill_from_str_list(_Items it, list items) except -1:
    """The common batch: a list of ASCII str (None rows allowed). Takes a reference to each item (what keeps
    the bytes alive while the GIL is released, whatever the caller does to the list) and its UTF-8 pointer;
    no Python code can run meanwhile. False (the rows filled so far still held, released with ``it``) at the
    first item of any other kind: then the caller takes the general path, which snapshots the list."""
    it.alloc(PyList_GET_SIZE(items), False)
    it.str_rows = True
    return _fill_str_rows(it, items, 0, PyList_GET_SIZE(items))


cdef bint _fill_str_rows(_Items it, list items, Py_ssize_t lo, Py_ssize_t hi) noexcept:
    """Rows [lo, hi) of ``_fill_from_str_list`` (``it`` allocated for the whole list, rows below ``lo``
    filled; ``hi`` at most the list's length, which the caller holds with the GIL). A None item makes its
    row empty (ptr NULL: what the general path gives None) and holds no reference. Every row in [lo, hi) is
    written (the rows need not be zeroed first) up to the first item of another kind."""
    cdef Py_ssize_t i
    cdef PyObject *item
    cdef const void *data
    for i in range(lo, hi):
        if i + 32 < hi:
            uid2_prefetch_w(PyList_GET_ITEM_PTR(items, i + 32))  # its header: read here, refcount written
        item = PyList_GET_ITEM_PTR(items, i)
        if <object>item is None:
            it.rows[i].ptr = NULL
            it.rows[i].len = 0
            continue
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
    it.str_hi = hi
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


# Arrow layouts a batch reads in place: offsets (int32 or int64) into one data buffer, or 16-byte views.
cdef enum:
    _ARROW_OFFSETS32 = 0
    _ARROW_OFFSETS64 = 1
    _ARROW_VIEWS = 2


cdef int _fill_arrow(_Items it, object arr, Py_ssize_t at, int layout, str what) except -1:
    # Arrow string/binary layout: validity bitmap, then offsets and one data buffer, or (the view types)
    # 16-byte views, each an int32 length and either the bytes inline (<= 12) or a 4-byte prefix, an int32
    # data buffer index and an int32 offset into that buffer. Nulls stay (NULL, 0).
    cdef Py_ssize_t i, j, n = len(arr), off = arr.offset
    cdef const uint8_t[::1] valid_mv
    cdef const uint8_t[::1] off_mv
    cdef const uint8_t[::1] data_mv
    cdef const uint8_t *valid = NULL
    cdef const uint8_t *offs
    cdef const uint8_t *data = NULL
    cdef const uint8_t *view
    cdef int32_t o32a, o32b, vlen, vbuf, voff
    cdef int64_t o64a, o64b
    cdef Py_ssize_t data_len = 0, n_data
    cdef const uint8_t **datas = NULL
    cdef Py_ssize_t *data_lens = NULL
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
    if layout == _ARROW_VIEWS:
        if <Py_ssize_t>off_mv.shape[0] < (off + n) * 16:
            raise ValueError(f"{what}: Arrow views buffer is too short")
        n_data = len(bufs) - 2
        datas = <const uint8_t **>calloc(<size_t>(n_data + 1), sizeof(uint8_t *))
        data_lens = <Py_ssize_t *>calloc(<size_t>(n_data + 1), sizeof(Py_ssize_t))
        try:
            if datas == NULL or data_lens == NULL:
                raise MemoryError()
            for j in range(n_data):
                if bufs[2 + j] is not None and len(bufs[2 + j]) > 0:
                    data_mv = memoryview(bufs[2 + j]).cast("B")
                    datas[j] = &data_mv[0]
                    data_lens[j] = data_mv.shape[0]
            for i in range(n):
                if valid != NULL and not ((valid[(off + i) >> 3] >> ((off + i) & 7)) & 1):
                    continue
                view = offs + (off + i) * 16
                memcpy(&vlen, view, 4)
                if vlen < 0:
                    raise ValueError(f"{what}: Arrow view length out of range")
                if vlen <= 12:
                    it.rows[at + i].ptr = view + 4
                else:
                    memcpy(&vbuf, view + 8, 4)
                    memcpy(&voff, view + 12, 4)
                    if vbuf < 0 or vbuf >= n_data or voff < 0 or <Py_ssize_t>voff + vlen > data_lens[vbuf]:
                        raise ValueError(f"{what}: Arrow view out of range")
                    it.rows[at + i].ptr = datas[vbuf] + voff
                it.rows[at + i].len = <size_t>vlen
        finally:
            free(datas)
            free(data_lens)
        return 0
    if bufs[2] is not None and len(bufs[2]) > 0:
        data_mv = memoryview(bufs[2]).cast("B")
        data = &data_mv[0]
        data_len = len(bufs[2])
    cdef Py_ssize_t width = 8 if layout == _ARROW_OFFSETS64 else 4
    if <Py_ssize_t>off_mv.shape[0] < (off + n + 1) * width:
        raise ValueError(f"{what}: Arrow offsets buffer is too short")
    for i in range(n):
        if valid != NULL and not ((valid[(off + i) >> 3] >> ((off + i) & 7)) & 1):
            continue  # null: INVALID_PAYLOAD
        if layout == _ARROW_OFFSETS64:
            memcpy(&o64a, offs + (off + i) * 8, 8)
            memcpy(&o64b, offs + (off + i + 1) * 8, 8)
        else:
            memcpy(&o32a, offs + (off + i) * 4, 4)
            memcpy(&o32b, offs + (off + i + 1) * 4, 4)
            o64a = o32a
            o64b = o32b
        if o64a < 0 or o64b < o64a or o64b > data_len:
            raise ValueError(f"{what}: Arrow offsets out of range")
        it.rows[at + i].ptr = (data + o64a) if data != NULL else <const uint8_t *>""
        it.rows[at + i].len = <size_t>(o64b - o64a)
    return 0


cdef int _arrow_layout(object pa, object typ):
    """How a batch reads an Arrow array of this type in place, or -1 (then through to_pylist)."""
    t = pa.types
    if t.is_string(typ) or t.is_binary(typ):
        return _ARROW_OFFSETS32
    if t.is_large_string(typ) or t.is_large_binary(typ):
        return _ARROW_OFFSETS64
    if t.is_string_view(typ) or t.is_binary_view(typ):
        return _ARROW_VIEWS
    return -1


cdef list _arrow_chunks(object pa, object arr):
    """The chunks of an Arrow Array or ChunkedArray, or None for anything else (a Table, a Scalar...)."""
    if isinstance(arr, pa.ChunkedArray):
        return list(arr.chunks)
    if isinstance(arr, pa.Array):
        return [arr]
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
        chunks = _arrow_chunks(pa, tokens)
        if chunks is not None and all(_arrow_layout(pa, c.type) >= 0 for c in chunks):
            it.alloc(sum(len(c) for c in chunks))
            pos = 0
            for c in chunks:
                _fill_arrow(it, c, pos, _arrow_layout(pa, c.type), "tokens")
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


cdef extern from *:
    """
    #include "uid2_internal.h" /* uid2_all_ascii, the engine's own */

    /* What Python's strict UTF-8 decoder accepts (no overlongs, no surrogates, nothing above U+10FFFF): for
     * such bytes, decoding and encoding again gives the same bytes. ASCII runs go 32 bytes at a time, then
     * eight. */
    static int uid2_utf8_ok(const uint8_t *s, size_t n)
    {
        size_t i = 0;
        while (i < n) {
            if (n - i >= 32) {
                uint64_t w[4];
                memcpy(w, s + i, 32);
                if (((w[0] | w[1] | w[2] | w[3]) & UINT64_C(0x8080808080808080)) == 0) {
                    i += 32;
                    continue;
                }
            }
            if (n - i >= 8) {
                uint64_t w;
                memcpy(&w, s + i, 8);
                if ((w & UINT64_C(0x8080808080808080)) == 0) {
                    i += 8;
                    continue;
                }
            }
            uint8_t c = s[i];
            if (c < 0x80) {
                i++;
                continue;
            }
            size_t need;
            uint8_t lo = 0x80, hi = 0xBF;
            if (c >= 0xC2 && c <= 0xDF)
                need = 1;
            else if (c >= 0xE0 && c <= 0xEF) {
                need = 2;
                if (c == 0xE0)
                    lo = 0xA0;
                else if (c == 0xED)
                    hi = 0x9F;
            } else if (c >= 0xF0 && c <= 0xF4) {
                need = 3;
                if (c == 0xF0)
                    lo = 0x90;
                else if (c == 0xF4)
                    hi = 0x8F;
            } else
                return 0;
            if (n - i - 1 < need || s[i + 1] < lo || s[i + 1] > hi)
                return 0;
            for (size_t k = 2; k <= need; k++)
                if (s[i + k] < 0x80 || s[i + k] > 0xBF)
                    return 0;
            i += need + 1;
        }
        return 1;
    }

    /* 1 if the bytes from the lowest start to the highest end of rows [lo, hi) (NULL rows aside) are all
     * ASCII, which makes every one of those rows UTF-8; 0 otherwise (then each row must be checked alone).
     * The caller vouches that the rows lie in one buffer (an Arrow data buffer), so every byte between them
     * can be read: a whole chunk's domains are then one linear scan instead of a call per row. */
    static int uid2_rows_span_ascii(const uid2_bytes_t *rows, size_t lo, size_t hi)
    {
        const uint8_t *first = NULL, *end = NULL;
        for (size_t i = lo; i < hi; i++) {
            if (rows[i].ptr == NULL || rows[i].len == 0)
                continue;
            if (first == NULL || rows[i].ptr < first)
                first = rows[i].ptr;
            if (end == NULL || rows[i].ptr + rows[i].len > end)
                end = rows[i].ptr + rows[i].len;
        }
        return first == NULL || uid2_all_ascii(first, (size_t)(end - first));
    }

    /* Rows [lo, hi) that are not NULL and not such UTF-8. */
    static size_t uid2_rows_not_utf8(const uid2_bytes_t *rows, size_t lo, size_t hi)
    {
        size_t bad = 0;
        for (size_t i = lo; i < hi; i++)
            bad += rows[i].ptr != NULL && !uid2_utf8_ok(rows[i].ptr, rows[i].len);
        return bad;
    }

    /* UCS-4 rows of w code points each (numpy "U") as UTF-8 into dst (room for 4 * w bytes a row), trailing
     * NULs dropped as numpy's tolist() does; lone surrogates take three bytes, as "surrogatepass" writes them.
     * -1 (nothing usable) if a code point is beyond U+10FFFF, which no str can hold. */
    static int uid2_ucs4_rows_utf8(const uint32_t *u, size_t n, size_t w, uint8_t *dst, uid2_bytes_t *rows)
    {
        uint8_t *d = dst;
        for (size_t i = 0; i < n; i++) {
            const uint32_t *r = u + i * w;
            size_t ln = w;
            while (ln > 0 && r[ln - 1] == 0)
                ln--;
            rows[i].ptr = d;
            uint32_t any = 0;
            for (size_t k = 0; k < ln; k++) { /* the common row, ASCII: one narrowing copy */
                any |= r[k];
                d[k] = (uint8_t)r[k];
            }
            if (any < 0x80) {
                d += ln;
                rows[i].len = ln;
                continue;
            }
            for (size_t k = 0; k < ln; k++) {
                uint32_t cp = r[k];
                if (cp < 0x80) {
                    *d++ = (uint8_t)cp;
                } else if (cp < 0x800) {
                    *d++ = (uint8_t)(0xC0 | (cp >> 6));
                    *d++ = (uint8_t)(0x80 | (cp & 0x3F));
                } else if (cp < 0x10000) {
                    *d++ = (uint8_t)(0xE0 | (cp >> 12));
                    *d++ = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
                    *d++ = (uint8_t)(0x80 | (cp & 0x3F));
                } else if (cp <= 0x10FFFF) {
                    *d++ = (uint8_t)(0xF0 | (cp >> 18));
                    *d++ = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
                    *d++ = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
                    *d++ = (uint8_t)(0x80 | (cp & 0x3F));
                } else {
                    return -1;
                }
            }
            rows[i].len = (size_t)(d - rows[i].ptr);
        }
        return 0;
    }
    """
    bint uid2_utf8_ok(const uint8_t *s, size_t n) nogil
    size_t uid2_rows_not_utf8(const uid2_bytes_t *rows, size_t lo, size_t hi) nogil
    bint uid2_rows_span_ascii(const uid2_bytes_t *rows, size_t lo, size_t hi) nogil
    int uid2_ucs4_rows_utf8(const uint32_t *u, size_t n, size_t w, uint8_t *dst, uid2_bytes_t *rows) nogil


# Domain names. The engine compares a domain's UTF-8 bytes (ASCII-lowered) with the site's names, so a row
# needs only its UTF-8 pointer, found without making a Python object for it: the twin's _domains_list
# decodes bytes with errors="replace" and passes non-str items on as "no domain" (the check fails); the
# rows below give the engine the same bytes. Bytes that are already UTF-8 decode and encode back to
# themselves; the rare ones that are not are decoded here, one by one.


cdef int _utf8_domain(const uint8_t **p, size_t *ln, list keep) except -1:
    """A domain name's bytes (*p, *ln; *p not NULL) as UTF-8: if they are not, what bytes.decode("utf-8",
    "replace") makes of them, kept in ``keep``."""
    if not uid2_utf8_ok(p[0], ln[0]):
        d = PyBytes_FromStringAndSize(<const char *>p[0], <Py_ssize_t>ln[0]).decode("utf-8", "replace")
        keep.append(d)
        _domain_ptr(d, p, ln, keep)
    return 0


cdef int _fix_binary_domains(_Items it, Py_ssize_t lo, Py_ssize_t hi) except -1:
    """Rows [lo, hi) that came from bytes: the ones that are not UTF-8 become what bytes.decode("utf-8",
    "replace") makes of them."""
    cdef Py_ssize_t i
    for i in range(lo, hi):
        if it.rows[i].ptr != NULL:
            _utf8_domain(&it.rows[i].ptr, &it.rows[i].len, it.keep)
    return 0


cdef int _list_domain(object item, const uint8_t **p, size_t *ln, list keep) except -1:
    """One domain name from a list, as the twin's _domains_list reads it: a str as UTF-8, bytes and bytearray
    as their UTF-8 decoding (errors="replace"), anything else None (*p NULL). What it points into is ``item``
    or an object appended to ``keep``."""
    if PyUnicode_CheckExact(item) and PyUnicode_IS_ASCII(item):
        p[0] = <const uint8_t *>PyUnicode_DATA(item)
        ln[0] = <size_t>PyUnicode_GET_LENGTH(item)
    elif PyUnicode_Check(item):
        _domain_ptr(item, p, ln, keep)
    elif PyBytes_Check(item) or isinstance(item, bytearray):
        if not PyBytes_Check(item):
            item = bytes(item)  # a bytearray's private copy: it may change while the GIL is released
            keep.append(item)
        p[0] = <const uint8_t *>PyBytes_AS_STRING(item)
        ln[0] = <size_t>PyBytes_GET_SIZE(item)
        _utf8_domain(p, ln, keep)
    else:
        p[0] = NULL
        ln[0] = 0
    return 0


cdef int _fill_domains_from_list(_Items it, list items, Py_ssize_t at) except -1:
    # items is the caller's snapshot (its references keep every row's str alive; _list_domain keeps the rest)
    cdef Py_ssize_t i, n = PyList_GET_SIZE(items)
    it.keep.append(items)
    for i in range(n):
        _list_domain(<object>PyList_GET_ITEM(items, i), &it.rows[at + i].ptr, &it.rows[at + i].len, it.keep)
    return 0


cdef bint _fill_domains_arrow(_Items it, object pa, object c, Py_ssize_t at) except -1:
    """One Arrow chunk of domains in place; False (rows untouched) where to_pylist must decide: a type read
    otherwise, or a string chunk that is not UTF-8 (to_pylist raises UnicodeDecodeError for it)."""
    cdef int layout = _arrow_layout(pa, c.type)
    cdef Py_ssize_t n = len(c)
    cdef size_t bad
    if layout < 0:
        return False
    _fill_arrow(it, c, at, layout, "domain_names")
    with nogil:
        # the offsets layouts keep every row in the one data buffer: an all-ASCII span settles the chunk
        if layout != _ARROW_VIEWS and uid2_rows_span_ascii(it.rows, <size_t>at, <size_t>(at + n)):
            bad = 0
        else:
            bad = uid2_rows_not_utf8(it.rows, <size_t>at, <size_t>(at + n))
    if bad == 0:
        return True
    t = pa.types
    if t.is_binary(c.type) or t.is_large_binary(c.type) or t.is_binary_view(c.type):
        _fix_binary_domains(it, at, at + n)
        return True
    memset(&it.rows[at], 0, <size_t>n * sizeof(uid2_bytes_t))
    return False


cdef bint _fill_domains_numpy(_Items it, object arr) except -1:
    """A 1-d numpy "U" or "S" array of domains; False (rows untouched) when tolist() must decide."""
    import numpy as np
    cdef Py_ssize_t i, n = arr.shape[0], w, ln
    cdef const uint8_t[::1] raw
    cdef uint8_t[::1] text_v
    cdef const uint8_t *src
    cdef size_t bad
    cdef int rc
    if arr.dtype.kind == "U" and not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    arr = np.ascontiguousarray(arr)
    it.keep.append(arr)
    if n == 0 or arr.dtype.itemsize == 0:
        for i in range(n):
            it.rows[i].ptr = <const uint8_t *>""
        return True
    raw = arr.view(np.uint8).reshape(-1)
    if arr.dtype.kind == "S":
        w = arr.dtype.itemsize
        with nogil:
            for i in range(n):
                src = &raw[0] + i * w
                ln = w
                while ln > 0 and src[ln - 1] == 0:  # tolist() strips trailing NULs from each item
                    ln -= 1
                it.rows[i].ptr = src
                it.rows[i].len = <size_t>ln
            bad = uid2_rows_not_utf8(it.rows, 0, <size_t>n)
        if bad:
            _fix_binary_domains(it, 0, n)
        return True
    w = arr.dtype.itemsize // 4
    text = np.empty(n * w * 4, dtype=np.uint8)
    it.keep.append(text)
    text_v = text
    with nogil:
        rc = uid2_ucs4_rows_utf8(<const uint32_t *>&raw[0], <size_t>n, <size_t>w, &text_v[0], it.rows)
    if rc != 0:
        memset(it.rows, 0, <size_t>n * sizeof(uid2_bytes_t))
        return False
    return True


cdef _Items _collect_domains(object domains, Py_ssize_t n):
    """One domain per token (``n``), as the twin's _domains_list sees them; no Python object per row for an
    Arrow string array, a numpy "U"/"S" array or a list of ASCII str."""
    cdef _Items it = _Items()
    cdef Py_ssize_t pos, count
    cdef list chunks
    if isinstance(domains, list):
        count = len(<list>domains)
        if count != n:
            raise ValueError(f"domain_names has {count} items for {n} tokens")
        items = list(domains)  # a snapshot: the caller's list may change while the GIL is released
        it.alloc(n)
        _fill_domains_from_list(it, items, 0)
        return it
    if type(domains).__module__.startswith("pyarrow"):
        import pyarrow as pa
        chunks = _arrow_chunks(pa, domains)
        if chunks is not None:
            count = sum(len(c) for c in chunks)
            if count != n:
                raise ValueError(f"domain_names has {count} items for {n} tokens")
            it.alloc(n)
            pos = 0
            for c in chunks:
                if not _fill_domains_arrow(it, pa, c, pos):
                    _fill_domains_from_list(it, c.to_pylist(), pos)
                pos += len(c)
            return it
        items = domains.to_pylist()
    else:
        import numpy as np
        if isinstance(domains, np.ndarray):
            if domains.ndim == 1 and domains.dtype.kind in ("U", "S") and domains.shape[0] == n:
                it.alloc(n)
                if _fill_domains_numpy(it, domains):
                    return it
            items = domains.tolist()
        else:
            items = list(domains)
    if not isinstance(items, list):
        items = list(items)
    if len(items) != n:
        raise ValueError(f"domain_names has {len(items)} items for {n} tokens")
    it = _Items()
    it.alloc(n)
    _fill_domains_from_list(it, items, 0)
    return it
