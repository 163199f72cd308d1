# Status counters for the clients' metrics (included by _engine_c.pyx). The clients count each call's status
# here after the engine has answered; the engine's own functions never touch a counter.

cimport cython
from libc.string cimport memset


cdef extern from "uid2_port.h" nogil:
    void uid2_atomic_add_u64(uint64_t *p, uint64_t n)
    uint64_t uid2_atomic_load_u64(const uint64_t *p)


cdef extern from *:
    """
    /* One count by a caller that holds the GIL. On a build with a GIL every writer of a counter holds it
     * (add_status, add, add_codes and add_code all run with it), so no two increments interleave and a plain
     * load and store will do (uid2_atomic_bump_u64); readers load each count atomically. A free-threaded build
     * takes the locked add. The bidder's call counts once per decrypt, and the locked add, which waits for the
     * decrypt's stores to drain, cost it a few ns. */
    static inline void uid2_count_with_gil(uint64_t *p)
    {
    #if defined(Py_GIL_DISABLED)
        uid2_atomic_add_u64(p, 1);
    #else
        uid2_atomic_bump_u64(p);
    #endif
    }
    """
    void uid2_count_with_gil(uint64_t *p)


cdef enum:
    _MAX_COUNTED = 32  # status codes a counter can hold (the engines have 14 decryption, 6 encryption codes)


@cython.final
cdef class StatusCounter:
    """Counts per status code, shared by any number of threads: every increment is one relaxed atomic add on a
    fixed array, so no count is ever lost (with or without the GIL) and a read never blocks a writer.

    ``StatusCounter(statuses)`` takes the public status objects by engine code (``_results.DECRYPTION_STATUSES``
    or ``ENCRYPTION_STATUSES``; None for a code no result carries). ``add_status`` finds the code of a status
    object by identity (the first code that has it), ``add(code, n=1)`` counts a code, ``add_codes`` a whole
    uint8 status column. ``counts()`` is the tuple of counts by code; each count is exact, the tuple is not one
    instant (counts taken while others add may be a few calls apart).
    """

    cdef uint64_t _c[_MAX_COUNTED]
    cdef Py_ssize_t _n
    cdef tuple _statuses

    def __cinit__(self, statuses):
        cdef tuple st = tuple(statuses)
        if not 0 < len(st) <= _MAX_COUNTED:
            raise ValueError(f"statuses: 1 to {_MAX_COUNTED} entries, got {len(st)}")
        self._statuses = st
        self._n = len(st)
        memset(self._c, 0, sizeof(self._c))

    @property
    def statuses(self):
        """The status objects by code, as given."""
        return self._statuses

    # A plain METH_O method descriptor (not a cyfunction): CPython's call specialization takes it directly, the
    # cheapest call a Python caller can make (the clients make it once per decrypt or encrypt).
    @cython.binding(False)
    @cython.always_allow_keywords(False)
    def add_status(self, status):
        """Count one call that answered ``status`` (a ValueError for an object that is none of the statuses)."""
        cdef Py_ssize_t i
        cdef PyObject *s = <PyObject *>status
        for i in range(self._n):
            if PyTuple_GET_ITEM_PTR(self._statuses, i) == s:
                uid2_atomic_add_u64(&self._c[i], 1)
                return None
        raise ValueError(f"{status!r} is not one of this counter's statuses")

    cdef inline void add_code(self, int code) noexcept:
        """Count one call that answered ``code`` (the C callers' path; a code out of range is not counted,
        which a caller that took it from the engine never passes)."""
        if 0 <= code < self._n:
            uid2_count_with_gil(&self._c[code])

    def add(self, Py_ssize_t code, uint64_t n=1):
        """Count ``n`` calls that answered ``code``."""
        if not 0 <= code < self._n:
            raise ValueError(f"status code {code} out of range 0..{self._n - 1}")
        uid2_atomic_add_u64(&self._c[code], n)

    def add_codes(self, const uint8_t[:] codes):
        """Count every entry of a uint8 status column (a batch's ``status``); a code out of range is a ValueError
        and nothing of the column is counted."""
        cdef uint64_t hist[256]
        cdef Py_ssize_t i, m = codes.shape[0]
        cdef int bad = 0
        memset(hist, 0, sizeof(hist))
        with nogil:
            for i in range(m):
                hist[codes[i]] += 1
            for i in range(self._n, 256):
                if hist[i]:
                    bad = 1
                    break
            if not bad:
                for i in range(self._n):
                    if hist[i]:
                        uid2_atomic_add_u64(&self._c[i], hist[i])
        if bad:
            raise ValueError(f"a status code out of range 0..{self._n - 1} in the column")

    def counts(self):
        """The counts by code (a tuple of ints)."""
        cdef Py_ssize_t i
        return tuple([uid2_atomic_load_u64(&self._c[i]) for i in range(self._n)])

    def __repr__(self):
        return f"<StatusCounter {self.counts()!r}>"

    def __reduce__(self):
        raise TypeError("a StatusCounter is not picklable")
