# The clients' scalar decrypt as C methods (included by _engine_c.pyx).
#
# A bidder calls BidstreamClient.decrypt_token_into_raw_uid once per bid request, so the client layer's own
# cost is part of every call. These functions are installed as the methods of BidstreamClient and
# SharingClient when the C engine is in use (uid2fast.bidstream_client and sharing_client do it, at import):
# a binding function is a method like a Python one (``self`` first, keywords, inspect.signature), but its body
# runs here, so the call is the engine's decrypt plus two attribute reads and one atomic count.
#
# Each call reads ``self._keys`` and the collection's ``_table`` afresh, as the Python method does, so a
# refresh, ``_adopt`` or a direct ``client._keys = ...`` (the official tests do that) is seen by the next call
# with nothing to keep in step. Anything but a C key table (no keys, keys on the Python engine, an object
# that is not a key collection) goes to the client's ``_decrypt_slow``: the Python method, unchanged.

cimport cython

cdef int _BIDSTREAM_CODE = CLIENT_BIDSTREAM
cdef int _SHARING_CODE = CLIENT_SHARING


cdef object _client_decrypt(self, token, domain, int client):
    cdef int code
    keys = self._keys
    if keys is not None:
        table = getattr(keys, "_table", None)
        if type(table) is KeyTable:
            counter = self._decrypts
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
