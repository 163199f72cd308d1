# Batch decrypt and encrypt into numpy columns (included by _engine_c.pyx).

# The batch columns in block order: (name, dtype, bytes per row), _results.COLUMNS; decrypt_tokens fills
# uid2_columns_t (csrc/uid2_engine.h) field by field from these names. Their dtypes are built once, at import,
# not per call: a small batch's fixed cost is mostly Python object work.
from libc.string cimport memset

cdef tuple _COLUMN_SPECS = _results.COLUMNS
cdef enum:
    _N_COLUMNS = 10  # the pointers of uid2_columns_t


cdef Py_ssize_t _column(str name, size_t width) except -1:
    """Where a uid2_columns_t member's column is in the spec; an ImportError if the spec and the C struct
    disagree on its element size (the build would otherwise write past the columns)."""
    cdef Py_ssize_t k
    if len(_COLUMN_SPECS) != _N_COLUMNS:
        raise ImportError(f"_results.COLUMNS has {len(_COLUMN_SPECS)} columns, uid2_columns_t {_N_COLUMNS}")
    for k in range(_N_COLUMNS):
        if _COLUMN_SPECS[k][0] == name:
            if _COLUMN_SPECS[k][2] != <Py_ssize_t>width:
                raise ImportError(f"_results.COLUMNS: {name} has {_COLUMN_SPECS[k][2]} bytes a row, C {width}")
            return k
    raise ImportError(f"_results.COLUMNS lacks {name}")


cdef Py_ssize_t _C_ESTABLISHED = _column("established_ms", sizeof(int64_t))
cdef Py_ssize_t _C_EXPIRY = _column("expiry_ms", sizeof(int64_t))
cdef Py_ssize_t _C_SITE_ID = _column("site_id", sizeof(int64_t))
cdef Py_ssize_t _C_SKSI = _column("site_key_site_id", sizeof(int64_t))
cdef Py_ssize_t _C_VERSION = _column("version", sizeof(int16_t))
cdef Py_ssize_t _C_UID = _column("uid", UID2_UID_WIDTH)
cdef Py_ssize_t _C_STATUS = _column("status", sizeof(uint8_t))
cdef Py_ssize_t _C_ITYPE = _column("identity_type", sizeof(int8_t))
cdef Py_ssize_t _C_CSG = _column("is_client_side_generated", sizeof(int8_t))
cdef Py_ssize_t _C_OVERFLOW = _column("uid_overflow", sizeof(uint8_t))


import numpy as _np  # (the package imports numpy anyway: batch.py)
cdef list _COLUMN_DTYPES = [_np.dtype(spec[1]) for spec in _COLUMN_SPECS]


# Rows per GIL release on the single-thread list path (~100 us of work): the str objects of a chunk are still
# in cache when their references are dropped.
cdef enum:
    _STR_CHUNK = 1024


cdef ptrdiff_t _decrypt_str_rows(KeyTable table, _Items it, const uid2_bytes_t *doms_p,
                                 const uid2_bytes_t *single_p, int64_t now_us, int client,
                                 const uid2_columns_t *cols, list later, dict overflow,
                                 Py_ssize_t *settled) except? -2:
    """A list of str on one thread, in chunks: decrypt a chunk without the GIL, then (with it) release that
    chunk's references while those objects are still in cache, instead of in one more pass over the whole heap
    afterwards. Every reference was taken before the first chunk (the input is still a snapshot). The chunks
    go from the last rows to the first: the last rows' objects are the ones the pass that took the references
    left in cache. From the first chunk with a uid too long for the column on, nothing more is released here:
    the caller decrypts those rows again (_redo_overflow), reading their tokens, and ``it`` drops the rest
    when it goes. With ``later`` (a list of domain names, read after the engine: _settle_domains), the chunks
    released are settled too, while their columns are in cache; rows [*settled, n) are then settled, and the
    caller settles the rest after _redo_overflow."""
    cdef const uid2_table_t *t = table._t if table is not None else NULL
    cdef uid2_worker_t *w = NULL
    cdef Py_ssize_t lo = 0, hi, n = it.n
    cdef ptrdiff_t part, total = 0
    if t != NULL:
        w = uid2_worker_new(t)
        if w == NULL:
            return -1
    try:
        hi = n
        while hi > 0:
            lo = hi - _STR_CHUNK if hi > _STR_CHUNK else 0
            with nogil:
                part = uid2_decrypt_rows(t, w, it.rows, <size_t>lo, <size_t>hi, doms_p, single_p, now_us, client,
                                         cols)
            if part < 0:
                return -1
            total += part
            if total == 0:
                it.release_str_above(lo)
                if later is not None:
                    _settle_domains(table, later, n, lo, hi, cols, overflow)
                settled[0] = lo
            hi = lo
    finally:
        uid2_worker_free(w)
    return total


cdef object _column_block(Py_ssize_t n, uid2_columns_t *cols):
    """The result columns of an n-row batch (``decrypt_tokens``'s dict, the overflow dict empty) and their
    pointers in ``cols``. One allocation for every column (each a contiguous view starting a multiple of 64
    bytes into it, in the machine's byte order; the engine writes every byte): one malloc instead of ten, and a
    block large enough that glibc's dynamic thresholds keep it on the heap between calls instead of returning
    the pages to the kernel and faulting them back in."""
    import numpy as np
    cdef list dtypes = _COLUMN_DTYPES
    cdef Py_ssize_t offsets[_N_COLUMNS]
    cdef Py_ssize_t total = 0, k
    for k in range(_N_COLUMNS):
        offsets[k] = total
        total = (total + n * <Py_ssize_t>_COLUMN_SPECS[k][2] + 63) & ~63
    block = np.empty(total if total > 0 else 1, dtype=np.uint8)
    cdef uint8_t[::1] block_v = block
    cdef uint8_t *base = &block_v[0]
    columns = [block[offsets[k]:offsets[k] + n * <Py_ssize_t>_COLUMN_SPECS[k][2]].view(dtypes[k])
               for k in range(_N_COLUMNS)]
    result = {_COLUMN_SPECS[k][0]: columns[k] for k in range(_N_COLUMNS) if k != _C_OVERFLOW}
    result["uid_overflow"] = {}
    cols.established_ms = <int64_t *>(base + offsets[_C_ESTABLISHED])
    cols.expiry_ms = <int64_t *>(base + offsets[_C_EXPIRY])
    cols.site_id = <int64_t *>(base + offsets[_C_SITE_ID])
    cols.site_key_site_id = <int64_t *>(base + offsets[_C_SKSI])
    cols.version = <int16_t *>(base + offsets[_C_VERSION])
    cols.uid = <char *>(base + offsets[_C_UID])
    cols.status = base + offsets[_C_STATUS]
    cols.identity_type = <int8_t *>(base + offsets[_C_ITYPE])
    cols.is_client_side_generated = <int8_t *>(base + offsets[_C_CSG])
    cols.uid_overflow = base + offsets[_C_OVERFLOW]
    return result, columns[_C_OVERFLOW]


cdef int _redo_overflow(KeyTable table, _Items it, const uid2_bytes_t *doms_p, const uid2_bytes_t *single_p,
                        int64_t now_us, int client, over_flags, dict overflow) except -1:
    """Rare: uids that are not 44 ASCII chars. Decrypting is deterministic: those rows again, one by one."""
    import numpy as np
    cdef const uid2_table_t *t = table._t if table is not None else NULL
    cdef uid2_result_t r
    cdef char *ubuf
    cdef Py_ssize_t i
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
    return 0


cdef int _settle_domains(KeyTable table, list domains, Py_ssize_t n, Py_ssize_t lo, Py_ssize_t hi,
                         const uid2_columns_t *cols, dict overflow) except -1:
    """Rows [lo, hi) of a batch whose domain checks the engine left to the caller (uid2_domain_later, for a
    list of ``n`` domain names): each flagged row's domain name is read from the list now, with the GIL held,
    and checked (uid2_domain_allowed). Allowed: the row keeps its answer. Not: DOMAIN_NAME_CHECK_FAILED, and
    no uid. Only those rows' items are read, so a batch takes no reference to a domain name and reads none but
    the client-side generated tokens' (a quarter of a bid log, or none). The list is read as it is now: it
    must still have one item per token. A row with an overflowing uid is settled only after _redo_overflow
    (which would put its uid back)."""
    cdef const uid2_table_t *t = table._t if table is not None else NULL
    cdef uint8_t *st = cols.status
    cdef Py_ssize_t i, k, m = 0
    cdef const uint8_t *p
    cdef size_t ln
    cdef list keep = []
    cdef Py_ssize_t *rows
    if hi <= lo:
        return 0
    rows = <Py_ssize_t *>malloc(<size_t>(hi - lo) * sizeof(Py_ssize_t))
    if rows == NULL:
        raise MemoryError()
    try:
        for i in range(lo, hi):
            if st[i] & UID2_STATUS_DOMAIN_LATER:
                rows[m] = i
                m += 1
        for k in range(m):
            if PyList_GET_SIZE(domains) != n:
                raise RuntimeError(f"decrypt_tokens: domain_names changed size during the call "
                                   f"({PyList_GET_SIZE(domains)} items for {n} tokens)")
            if k + 8 < m:  # the item 8 rows on: the rows are scattered, and each item is a cache miss
                uid2_prefetch_w(PyList_GET_ITEM_PTR(domains, rows[k + 8]))
            i = rows[k]
            item = <object>PyList_GET_ITEM(domains, i)
            _list_domain(item, &p, &ln, keep)
            if uid2_domain_allowed(t, <uint32_t>cols.site_id[i], p, ln):
                st[i] &= ~UID2_STATUS_DOMAIN_LATER
            else:
                st[i] = UID2_STATUS_DOMAIN_NAME_CHECK_FAILED
                memset(cols.uid + i * UID2_UID_WIDTH, 0, UID2_UID_WIDTH)
                if overflow:
                    overflow.pop(i, None)
            if keep:
                del keep[:]
    finally:
        free(rows)
    return 0


cdef int _settle_domains_except(KeyTable table, list domains, Py_ssize_t n, list done, const uid2_columns_t *cols,
                                dict overflow) except -1:
    """_settle_domains on every row but those of ``done``'s sorted, disjoint (lo, hi) ranges, settled already."""
    cdef Py_ssize_t at = 0, lo, hi
    for lo, hi in done:
        if lo > at:
            _settle_domains(table, domains, n, at, lo, cols, overflow)
        if hi > at:
            at = hi
    _settle_domains(table, domains, n, at, n, cols, overflow)
    return 0


# Rows the caller's thread gathers from the lists before the other threads may take them.
cdef enum:
    _FILL_STEP = 256


cdef inline void _release_chunk(_Items it, list done, size_t lo, size_t hi):
    """Drops the references of rows [lo, hi) of the tokens and notes the chunk as released in ``done`` (for
    _Items.release_str_except)."""
    done.append((<Py_ssize_t>lo, <Py_ssize_t>hi))
    it.release_str_rows(<Py_ssize_t>lo, <Py_ssize_t>hi)


cdef object _decrypt_str_lists(KeyTable table, list tokens, int64_t now_us, int client, domains, int nthreads):
    """A list of str on several threads, with the list read while they run: the caller's thread (which must
    hold the GIL to take the references) gathers the rows a step at a time while the other threads already
    decrypt the rows gathered so far (uid2_decrypt_run_*), then joins them without the GIL. Before, that
    gathering ran alone ahead of the threads: a sixth of a two-thread batch with domains.

    ``domains`` is None, a str or a list as long as ``tokens``, whose items are read after the threads, and
    only the rows that need a domain check (_settle_domains). None (nothing kept, nothing to undo) where the
    caller's general path must decide: a token that is not an ASCII str or None (the threads are stopped and
    the rows they did are thrown away) or a domains argument of another shape."""
    cdef Py_ssize_t n = PyList_GET_SIZE(tokens), lo, hi
    cdef _Items it = _Items()
    cdef uid2_bytes_t single
    cdef const uid2_bytes_t *single_p = NULL
    cdef list keep = []
    cdef list later = None  # a list of domain names, read after the engine (_settle_domains)
    cdef uid2_columns_t cols
    cdef ptrdiff_t n_over
    cdef uid2_decrypt_run_t *run
    cdef bint filled = False
    if isinstance(domains, str):
        _domain_ptr(domains, &single.ptr, &single.len, keep)
        single_p = &single
    elif domains is not None:
        if type(domains) is not list or PyList_GET_SIZE(<list>domains) != n:
            return None
        single.ptr = uid2_domain_later
        single.len = 0
        single_p = &single
        later = <list>domains
    it.alloc(n, False)
    it.str_rows = True
    result, over_flags = _column_block(n, &cols)
    run = uid2_decrypt_run_start(table._t if table is not None else NULL, it.rows, <size_t>n, NULL, single_p,
                                 now_us, client, &cols, nthreads)
    if run == NULL:
        raise MemoryError("decrypt_tokens: out of memory")
    cdef size_t c_lo, c_hi
    cdef ptrdiff_t c_over
    cdef int got = 0, st
    cdef size_t scan = 0  # the chunks below it are released (or kept for their overflowing rows)
    cdef list done = []  # the chunks released so far
    try:  # whatever happens, the references still held are dropped once, and only those (the finally below)
        try:
            lo = 0
            while lo < n:  # the GIL is held throughout: no Python code can change the list meanwhile
                hi = lo + _FILL_STEP if lo + _FILL_STEP < n else n
                if not _fill_str_rows(it, tokens, lo, hi):
                    break
                uid2_decrypt_run_ready(run, <size_t>hi)
                lo = hi
            filled = lo == n
            # Then this thread decrypts chunks too, each released at once while its objects are still in
            # cache (the 1-thread path does the same, _decrypt_str_rows); a chunk with an overflowing uid keeps
            # its references until those rows are done again below. Between its own chunks, and once more
            # when none is left to take, it releases the chunks the other threads have done meanwhile, so
            # that only the chunks still running then are released after the join.
            while filled:
                with nogil:
                    got = uid2_decrypt_run_take(run, &c_lo, &c_hi, &c_over)
                if got > 0 and c_over == 0:
                    _release_chunk(it, done, c_lo, c_hi)
                    if later is not None:
                        _settle_domains(table, later, n, c_lo, c_hi, &cols, result["uid_overflow"])
                while True:  # the others' chunks done so far, in order
                    st = uid2_decrypt_run_done(run, scan, &c_lo, &c_hi)
                    if st <= 0:
                        break
                    scan += 1
                    if st == 1:
                        _release_chunk(it, done, c_lo, c_hi)
                        if later is not None:
                            _settle_domains(table, later, n, c_lo, c_hi, &cols, result["uid_overflow"])
                if got <= 0:
                    break
        finally:
            if not filled:
                uid2_decrypt_run_stop(run)
            with nogil:
                n_over = uid2_decrypt_run_finish(run)  # no thread reads a row from here on
        if n_over == UID2_RUN_STOPPED:
            return None
        if n_over < 0:
            raise MemoryError("decrypt_tokens: out of memory")
        if n_over > 0:  # (their chunks' references are still held)
            _redo_overflow(table, it, NULL, single_p, now_us, client, over_flags, result["uid_overflow"])
        if later is not None:  # the chunks not settled yet: those of overflowing uids, and the last ones
            done.sort()
            _settle_domains_except(table, later, n, done, &cols, result["uid_overflow"])
    finally:
        done.sort()
        it.release_str_except(done)
    return result


def decrypt_tokens(KeyTable table, tokens, int64_t now_us, int client, domains, threads):
    """Decrypt a batch into numpy columns (see _engine_py.decrypt_tokens), without the GIL, on
    ``threads`` threads (None or 0: one per CPU)."""
    cdef int nthreads = _resolve_threads(threads)
    if type(tokens) is list and uid2_batch_threads(<size_t>PyList_GET_SIZE(<list>tokens), nthreads) > 1:
        result = _decrypt_str_lists(table, <list>tokens, now_us, client, domains, nthreads)
        if result is not None:
            return result
    cdef _Items it = _collect(tokens)
    cdef Py_ssize_t n = it.n
    cdef _Items doms = None
    cdef uid2_bytes_t single
    cdef const uid2_bytes_t *single_p = NULL
    cdef const uid2_bytes_t *doms_p = NULL
    cdef list keep = []
    cdef uid2_columns_t cols
    cdef ptrdiff_t n_over
    cdef const uid2_table_t *t = table._t if table is not None else NULL
    cdef bint later = type(domains) is list  # its items read after the batch, where needed (_settle_domains)
    if domains is None or isinstance(domains, str):
        if domains is not None:
            _domain_ptr(domains, &single.ptr, &single.len, keep)
            single_p = &single
    elif later:
        if PyList_GET_SIZE(<list>domains) != n:
            raise ValueError(f"domain_names has {PyList_GET_SIZE(<list>domains)} items for {n} tokens")
        single.ptr = uid2_domain_later
        single.len = 0
        single_p = &single
    else:
        doms = _collect_domains(domains, n)
        doms_p = doms.rows
    result, over_flags = _column_block(n, &cols)
    if n == 0:
        return result
    cdef Py_ssize_t settled = n  # rows [settled, n) have their domains settled
    if it.str_rows and uid2_batch_threads(<size_t>n, nthreads) == 1:
        n_over = _decrypt_str_rows(table, it, doms_p, single_p, now_us, client, &cols,
                                   <list>domains if later else None, result["uid_overflow"], &settled)
    else:
        with nogil:
            n_over = uid2_decrypt_many(t, it.rows, <size_t>n, doms_p, single_p, now_us, client, &cols, nthreads)
    if n_over < 0:
        raise MemoryError("decrypt_tokens: out of memory")
    if n_over > 0:
        _redo_overflow(table, it, doms_p, single_p, now_us, client, over_flags, result["uid_overflow"])
    if later:
        _settle_domains(table, <list>domains, n, 0, settled, &cols, result["uid_overflow"])
    return result


def one_pass_rows(KeyTable table, list tokens, int64_t now_us, int client, domain=None):
    """Which rows of a list of ASCII str tokens the batch's one-pass path takes (for the tests; decrypt_tokens
    gives the answers): ``(single, group)``, lists of bools, row by row through uid2_decrypt_fast, and in groups
    of UID2_FAST_GROUP rows through uid2_decrypt_fast_group (``group`` None when the multi-buffer kernel is
    off). ``domain`` is every row's domain name, or None."""
    cdef Py_ssize_t n = len(tokens), i, sz
    cdef uid2_columns_t cols
    cdef uid2_key_memo_t memo
    cdef uid2_bytes_t single
    cdef const uid2_bytes_t *single_p = NULL
    cdef size_t cap = UID2_FAST_GROUP * UID2_FAST_ROW_SCRATCH, lo, k
    cdef uint32_t mask
    cdef list keep = []
    if table is None:
        raise ValueError("no key table")
    tokens = list(tokens)  # a private copy: its items stay alive, whatever runs while this allocates
    for tok in tokens:
        if type(tok) is not str or not PyUnicode_IS_ASCII(tok):
            raise TypeError("one_pass_rows takes ASCII str tokens")
    if domain is not None:
        _domain_ptr(domain, &single.ptr, &single.len, keep)
        single_p = &single
    cdef _Items it = _Items()
    it.alloc(n)
    for i in range(n):
        it.rows[i].ptr = <const uint8_t *>PyUnicode_AsUTF8AndSize(tokens[i], &sz)
        it.rows[i].len = <size_t>sz
    block = _column_block(n, &cols)  # held while the rows are written into its columns
    cdef uint8_t *scratch = <uint8_t *>malloc(cap)
    if scratch == NULL:
        raise MemoryError()
    single_rows = []
    group_rows = None
    try:
        memo.idx[0] = memo.idx[1] = -1
        for i in range(n):
            single_rows.append(uid2_decrypt_fast(table._t, &memo, scratch, cap, <const char *>it.rows[i].ptr,
                                                 it.rows[i].len, now_us, client, single.ptr if single_p else NULL,
                                                 single.len if single_p else 0, &cols, <size_t>i) != 0)
        if uid2_gcm_mb_impl() != UID2_GCM_MB_NONE:
            group_rows = []
            memo.idx[0] = memo.idx[1] = -1
            lo = 0
            while lo < <size_t>n:
                k = min(<size_t>n - lo, <size_t>UID2_FAST_GROUP)
                mask = uid2_decrypt_fast_group(table._t, &memo, scratch, cap, it.rows, lo, k, NULL, single_p,
                                               now_us, client, &cols)
                group_rows.extend([(mask >> j) & 1 == 1 for j in range(k)])
                lo += k
    finally:
        uid2_wipe(scratch, cap)  # the payloads of the last rows opened
        free(scratch)
    return single_rows, group_rows


cdef extern from *:
    """
    /* Item i of the list, a str that only the list holds and that was made with PyUnicode_New (its characters
     * written in place since), cut to its first len characters: resized in place when CPython can (a fresh
     * compact str whose memory block keeps its size class is not even moved). 0, or -1 with an exception. */
    static int uid2_list_str_truncate(PyObject *list, Py_ssize_t i, Py_ssize_t len)
    {
        return PyUnicode_Resize(&((PyListObject *)list)->ob_item[i], len);
    }
    """
    int uid2_list_str_truncate(list lst, Py_ssize_t i, Py_ssize_t n) except -1


def encrypt_tokens(KeyTable table, uids, int64_t now_us, keyset_id, identity_scope, established_ms, threads):
    """Encrypt a batch of raw UIDs: ``(status uint8 array, tokens)``, without the GIL, on ``threads``
    threads. Each GCM operation draws a fresh 12-byte nonce from the CSPRNG.

    Each row's token is written straight into the str object that the result list holds: one ASCII str of
    the longest token the row's raw UID can give is made per row before the engine runs (the allocator
    needs the GIL), the engine writes into its characters, and a token that came out shorter (a padded raw
    UID) cuts its str to length. No intermediate buffer (which was megabytes per batch, mapped and faulted
    in afresh on every call) and no copy made while the other threads wait."""
    import numpy as np
    cdef int nthreads = _resolve_threads(threads)
    cdef uid2_encrypt_args_t a
    cdef _Items it = _collect(uids)
    cdef Py_ssize_t n = it.n, i
    cdef char **outs = NULL
    cdef size_t *lens = NULL
    cdef size_t cap
    cdef int rc
    cdef const uid2_table_t *t = table._t if table is not None else NULL
    if table is not None:
        deferred = _encrypt_args(table, keyset_id, identity_scope, established_ms, &a)
        if deferred is not None:  # (the public encrypt_tokens checks both before it gets here)
            raise deferred[1]
    else:
        a.has_keyset = 0
        a.keyset_group = -1
        a.has_scope = 0
        a.scope = 0
        a.established_ok = 0
        a.established_ms = 0
    status = np.empty(n, dtype=np.uint8)
    cdef list tokens = [None] * n
    if n == 0:
        return status, tokens
    cdef uint8_t[::1] st_v = status
    try:
        outs = <char **>malloc(<size_t>n * sizeof(char *))
        lens = <size_t *>calloc(<size_t>n, sizeof(size_t))
        if outs == NULL or lens == NULL:
            raise MemoryError()
        for i in range(n):
            cap = uid2_token_max_len(it.rows[i].len if it.rows[i].ptr != NULL else 0)
            token = PyUnicode_New(<Py_ssize_t>cap, 127)
            outs[i] = <char *>PyUnicode_DATA(token)
            tokens[i] = token
        del token  # the list holds each str alone (a str is cut in place only then)
        with nogil:
            rc = uid2_encrypt_many(t, it.rows, <size_t>n, now_us, &a, &st_v[0], outs, lens, nthreads)
        if rc != 0:
            raise MemoryError("encrypt_tokens: out of memory")
        for i in range(n):
            if st_v[i] != ENC_SUCCESS:
                tokens[i] = None  # its characters were never written
            elif <Py_ssize_t>lens[i] != PyUnicode_GET_LENGTH(<object>PyList_GET_ITEM_PTR(tokens, i)):
                uid2_list_str_truncate(tokens, i, <Py_ssize_t>lens[i])
    finally:
        free(outs)
        free(lens)
    return status, tokens


cdef _Items _packed_str_rows(list items):
    """The rows of a list of ASCII str copied one after another, at a fixed stride, into one buffer the returned
    ``_Items`` keeps (``engine_times``: rows laid out as benchmarks/bench_kernels.c lays out its tokens, with no
    Python object behind them)."""
    cdef Py_ssize_t n, i, sz, stride = 16
    cdef const char *p
    items = list(items)  # a private copy: its items stay alive and in place while this allocates
    n = len(items)
    for s in items:
        if type(s) is not str or not PyUnicode_IS_ASCII(s):
            raise TypeError("engine_times takes ASCII str tokens and domains")
        stride = max(stride, (len(s) + 15) & ~15)
    cdef _Items it = _Items()
    it.alloc(n)
    cdef bytes buf = PyBytes_FromStringAndSize(NULL, n * stride)  # new, so this is its only reference
    it.keep.append(buf)
    cdef uint8_t *base = <uint8_t *>PyBytes_AS_STRING(buf)
    for i in range(n):
        p = PyUnicode_AsUTF8AndSize(items[i], &sz)
        memcpy(base + i * stride, p, <size_t>sz)
        it.rows[i].ptr = base + i * stride
        it.rows[i].len = <size_t>sz
    return it


def engine_times(KeyTable table, list tokens, list domains, int64_t now_us, int client, int runs):
    """For the benchmarks: the engine alone on a batch's own rows. Copies ``tokens`` and their per-row
    ``domains`` (ASCII str each; ``domains`` as long as ``tokens``, or None for no domains) into one contiguous
    buffer each (``_packed_str_rows``), so no Python object or reference count is left in the timed part, then
    runs uid2_decrypt_many on one thread ``runs`` times without the GIL. Returns ``(ns per token of each run,
    the last run's columns)``: the same columns ``decrypt_tokens`` gives for these rows, so a caller can check
    them before it trusts a time."""
    import time
    cdef Py_ssize_t n = len(tokens)
    cdef uid2_columns_t cols
    cdef ptrdiff_t n_over = 0
    cdef int r
    if table is None:
        raise ValueError("no key table")
    if runs < 1:
        raise ValueError("runs must be at least 1")
    if domains is not None and len(domains) != n:
        raise ValueError("domains must be as long as tokens")
    cdef _Items it = _packed_str_rows(tokens)
    cdef const uid2_bytes_t *doms_p = NULL
    if domains is not None:
        doms = _packed_str_rows(domains)
        doms_p = (<_Items>doms).rows
    times = []
    result = None
    for r in range(runs):
        result, over_flags = _column_block(n, &cols)
        t0 = time.perf_counter_ns()
        with nogil:
            n_over = uid2_decrypt_many(table._t, it.rows, <size_t>n, doms_p, NULL, now_us, client, &cols, 1)
        times.append((time.perf_counter_ns() - t0) / (n if n else 1))
        if n_over < 0:
            raise MemoryError("engine_times: out of memory")
        if n_over > 0:
            raise ValueError("engine_times: a raw UID too long for the uid column")
    return times, result
