# Batch input collection: (pointer, length) per row with the objects that keep them alive (included by
# _engine_c.pyx).

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
