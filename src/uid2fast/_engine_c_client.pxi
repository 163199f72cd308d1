# The clients' scalar decrypt as C methods (included by _engine_c.pyx).
#
# A bidder calls BidstreamClient.decrypt_token_into_raw_uid once per bid request, so the client layer's own
# cost is part of every call. These functions are installed as the methods of BidstreamClient and
# SharingClient when the C engine is in use (uid2fast.bidstream_client and sharing_client do it, at import):
# a binding function is a method like a Python one (``self`` first, keywords, inspect.signature), but its body
# runs here, so the call is the engine's decrypt plus three attribute reads (from their slots, below) and one
# atomic count.
#
# Each call reads ``self._keys`` and the collection's ``_table`` afresh, as the Python method does, so a
# refresh, ``_adopt`` or a direct ``client._keys = ...`` (the official tests do that) is seen by the next call
# with nothing to keep in step. Anything but a C key table (no keys, keys on the Python engine, an object
# that is not a key collection) goes to the client's ``_decrypt_slow``: the Python method, unchanged.

cimport cython

cdef int _BIDSTREAM_CODE = CLIENT_BIDSTREAM
cdef int _SHARING_CODE = CLIENT_SHARING


# Where the clients' hot attributes live. _KeyHolder keeps `_keys` and `_decrypts` in __slots__, and
# EncryptionKeysCollection keeps `_table` in one (both call client_slots at import): each call then reads them
# straight from their slots (uid2_slot_attr), which saves most of the three instance-dict lookups (20-35 ns of
# a ~400 ns call, measured A/B). What the type's lookup finds is checked on every call (memoized on the type's
# version tag, uid2_type_memo_t), so a subclass that makes one of them a property, an unset slot, or any other
# object as `_keys` takes the general getattr, as before.
cdef object _N_KEYS = "_keys", _N_DECRYPTS = "_decrypts", _N_TABLE = "_table"  # (interned by client_slots)
cdef object _D_KEYS = None, _D_DECRYPTS = None, _D_TABLE = None          # their member descriptors
cdef Py_ssize_t _O_KEYS = -1, _O_DECRYPTS = -1, _O_TABLE = -1            # and slot offsets (-1: not in use)
cdef uid2_type_memo_t _M_KEYS, _M_DECRYPTS, _M_TABLE                     # the types last looked through


def client_slots(holder, collection):
    """Register the classes whose slots the C scalar decrypt reads: ``holder`` (``_KeyHolder``) with slots
    ``_keys`` and ``_decrypts``, ``collection`` (``EncryptionKeysCollection``) with ``_table``. Returns whether
    slot reads are in use on this build (``False``: every read is a plain getattr)."""
    global _N_KEYS, _N_DECRYPTS, _N_TABLE, _D_KEYS, _D_DECRYPTS, _D_TABLE, _O_KEYS, _O_DECRYPTS, _O_TABLE
    global _M_KEYS, _M_DECRYPTS, _M_TABLE
    import sys
    found = []
    for cls, name in ((holder, "_keys"), (holder, "_decrypts"), (collection, "_table")):
        descr = cls.__dict__.get(name)
        off = uid2_slot_offset(descr, cls) if descr is not None else -1
        if off < 0:
            raise TypeError(f"{cls.__name__}.{name} is not a slot of the class")
        found.append((sys.intern(name), descr, off if UID2_SLOT_READS else -1))
    (_N_KEYS, _D_KEYS, _O_KEYS), (_N_DECRYPTS, _D_DECRYPTS, _O_DECRYPTS), (_N_TABLE, _D_TABLE, _O_TABLE) = found
    _M_KEYS.tag = _M_DECRYPTS.tag = _M_TABLE.tag = 0  # what they remembered was checked against the old ones
    return bool(UID2_SLOT_READS)


cdef inline object _attr(obj, name, descr, Py_ssize_t off, uid2_type_memo_t *memo, bint or_none=False):
    """``obj.<name>``: from its slot where uid2_slot_attr can read it (it declines with ``off`` -1), else
    getattr: AttributeError as usual, or None with ``or_none``."""
    cdef PyObject *v = uid2_slot_attr(<PyObject *>obj, <PyObject *>name, <PyObject *>descr, off, memo)
    if v != NULL:
        return <object>v
    return getattr(obj, name, None) if or_none else getattr(obj, name)


cdef object _client_decrypt(self, token, domain, int client):
    cdef int code
    keys = _attr(self, _N_KEYS, _D_KEYS, _O_KEYS, &_M_KEYS)
    if keys is not None:
        table = _attr(keys, _N_TABLE, _D_TABLE, _O_TABLE, &_M_TABLE, True)
        if type(table) is KeyTable:
            counter = _attr(self, _N_DECRYPTS, _D_DECRYPTS, _O_DECRYPTS, &_M_DECRYPTS)
            t = _DECRYPTED_TOKENS.run(<KeyTable>table, token, client, domain, None, &code)
            if type(counter) is StatusCounter and code >= 0:
                (<StatusCounter>counter).add_code(code)
            else:
                counter.add_status(t.status)
            return t
    return self._decrypt_slow(token, domain)


@cython.binding(True)
def bidstream_decrypt_token_into_raw_uid(self, token, domain_name=None):
    return _client_decrypt(self, token, domain_name, _BIDSTREAM_CODE)


@cython.binding(True)
def sharing_decrypt_token_into_raw_uid(self, token):
    return _client_decrypt(self, token, None, _SHARING_CODE)
