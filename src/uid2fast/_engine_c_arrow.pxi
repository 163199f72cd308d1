# The Arrow buffers of a batch result that need a pass over the rows (included by _engine_c.pyx).
#
# DecryptedTokens._arrow_arrays (batch.py) builds the Arrow columns over the numpy result columns. What differs
# from the numpy buffers (each column's validity bitmap, the status names as string buffers, the identity scope
# column) is computed here in one pass, rather than by a few numpy calls per column: a DuckDB UDF call packs
# 2,048 rows at a time, where those calls cost more than the rows (docs/design.md, DuckDB).

from libc.stdint cimport INT32_MAX

cdef enum:
    # The bitmaps' rows, in this order.
    _AB_ESTABLISHED, _AB_EXPIRY, _AB_SITE_ID, _AB_SITE_KEY_SITE_ID, _AB_IDENTITY_TYPE, _AB_IDENTITY_SCOPE,
    _AB_VERSION, _AB_CSG_VALID, _AB_CSG_TRUE, _AB_UID_VALID, _AB_ROWS


def batch_arrow_parts(const uint8_t[::1] status, const uint8_t[:, ::1] uid, const int64_t[::1] established,
                      const int64_t[::1] expiry, const int64_t[::1] site_id, const int64_t[::1] site_key_site_id,
                      const int8_t[::1] identity_type, const int16_t[::1] version, const int8_t[::1] csg,
                      int scope, const uint8_t[::1] bare, const int32_t[::1] name_offsets,
                      const uint8_t[::1] name_bytes):
    """The per-row parts of ``DecryptedTokens.to_arrow()``'s columns, in one pass.

    ``uid`` is the uid column viewed as ``uint8[n, width]``; the integer columns hold ``NONE_I64`` or a
    negative value where absent, as the batch result does. ``scope`` is the key set's identity scope (-1:
    none), given to every row whose status is not one of ``bare`` (``uint8[256]``, 1 for the statuses reported
    without a scope). ``name_offsets`` (``int32[257]``) and ``name_bytes`` are every status code's name as
    Arrow string buffers.

    Returns ``(bitmaps, complete, uid_regular, offsets, data, scope_column)``: ``bitmaps`` is
    ``uint8[10, ceil(n / 8)]``, Arrow validity bitmaps (LSB first) of established, expiry, site_id,
    site_key_site_id, identity_type, identity_scope, version and is_client_side_generated, then the
    is_client_side_generated values, then the uid's validity (its last byte set: the UID fills the width);
    ``complete[k]`` is True when bitmap ``k`` has every row set; ``uid_regular`` is True when every UID fills
    the width or is empty (else the uid column needs the per-row path); ``offsets`` (int32[n + 1]) and
    ``data`` (uint8) are the status column's string buffers, or both None when they would pass 2**31 - 1
    bytes; ``scope_column`` is the int8 identity scope column (-1 where absent).
    """
    import numpy as np

    cdef Py_ssize_t n = status.shape[0]
    cdef Py_ssize_t width = uid.shape[1]
    if (uid.shape[0] != n or established.shape[0] != n or expiry.shape[0] != n or site_id.shape[0] != n
            or site_key_site_id.shape[0] != n or identity_type.shape[0] != n or version.shape[0] != n
            or csg.shape[0] != n):
        raise ValueError("the result columns differ in length")
    if bare.shape[0] != 256 or name_offsets.shape[0] != 257 or width == 0:
        raise ValueError("bare must have 256 entries, name_offsets 257, and the uid column a width")
    cdef Py_ssize_t c
    for c in range(256):
        if name_offsets[c] < 0 or name_offsets[c] > name_offsets[c + 1]:
            raise ValueError("name_offsets must be non-decreasing from 0")
    if name_offsets[256] > name_bytes.shape[0]:
        raise ValueError("name_offsets go past name_bytes")

    cdef Py_ssize_t nbytes = (n + 7) // 8
    bitmaps = np.empty((_AB_ROWS, nbytes), dtype=np.uint8)
    scope_column = np.empty(n, dtype=np.int8)
    offsets = np.empty(n + 1, dtype=np.int32)
    cdef uint8_t[:, ::1] bm = bitmaps
    cdef int8_t[::1] sc = scope_column
    cdef int32_t[::1] off = offsets
    # Eight rows make one byte of every bitmap, built in locals; a bitmap is complete when each byte is full.
    cdef uint8_t b_est, b_exp, b_site, b_sks, b_type, b_scope, b_ver, b_csg, b_true, b_uid, full
    cdef uint8_t gaps[_AB_ROWS]
    cdef int k
    for k in range(_AB_ROWS):
        gaps[k] = 0
    cdef uint8_t irregular = 0, has_scope = scope >= 0
    cdef int8_t given_scope = <int8_t>scope if scope >= 0 else -1
    cdef int64_t total = 0
    cdef Py_ssize_t byte, i, j, rows
    cdef uint8_t s, present
    with nogil:
        for byte in range(nbytes):
            rows = n - byte * 8 if n - byte * 8 < 8 else 8
            b_est = b_exp = b_site = b_sks = b_type = b_scope = b_ver = b_csg = b_true = b_uid = 0
            for j in range(rows):
                i = byte * 8 + j
                s = status[i]
                off[i] = <int32_t>total if total <= INT32_MAX else 0
                total += name_offsets[s + 1] - name_offsets[s]
                b_est |= <uint8_t>(established[i] != INT64_MIN) << j
                b_exp |= <uint8_t>(expiry[i] != INT64_MIN) << j
                b_site |= <uint8_t>(site_id[i] != INT64_MIN) << j
                b_sks |= <uint8_t>(site_key_site_id[i] != INT64_MIN) << j
                b_type |= <uint8_t>(identity_type[i] >= 0) << j
                present = has_scope & (bare[s] == 0)
                sc[i] = given_scope if present else -1
                b_scope |= present << j
                b_ver |= <uint8_t>(version[i] >= 0) << j
                b_csg |= <uint8_t>(csg[i] >= 0) << j
                b_true |= <uint8_t>(csg[i] == 1) << j
                present = uid[i, width - 1] != 0
                b_uid |= present << j
                irregular |= (present == 0) & (uid[i, 0] != 0)
            full = <uint8_t>((1 << rows) - 1)
            bm[_AB_ESTABLISHED, byte] = b_est
            bm[_AB_EXPIRY, byte] = b_exp
            bm[_AB_SITE_ID, byte] = b_site
            bm[_AB_SITE_KEY_SITE_ID, byte] = b_sks
            bm[_AB_IDENTITY_TYPE, byte] = b_type
            bm[_AB_IDENTITY_SCOPE, byte] = b_scope
            bm[_AB_VERSION, byte] = b_ver
            bm[_AB_CSG_VALID, byte] = b_csg
            bm[_AB_CSG_TRUE, byte] = b_true
            bm[_AB_UID_VALID, byte] = b_uid
            gaps[_AB_ESTABLISHED] |= b_est != full
            gaps[_AB_EXPIRY] |= b_exp != full
            gaps[_AB_SITE_ID] |= b_site != full
            gaps[_AB_SITE_KEY_SITE_ID] |= b_sks != full
            gaps[_AB_IDENTITY_TYPE] |= b_type != full
            gaps[_AB_IDENTITY_SCOPE] |= b_scope != full
            gaps[_AB_VERSION] |= b_ver != full
            gaps[_AB_CSG_VALID] |= b_csg != full
            gaps[_AB_UID_VALID] |= b_uid != full
    regular = irregular == 0
    complete = tuple(not gaps[k] for k in range(_AB_ROWS))
    if total > INT32_MAX:
        return bitmaps, complete, regular, None, None, scope_column
    off[n] = <int32_t>total
    data = np.empty(total, dtype=np.uint8)
    cdef uint8_t[::1] out = data
    cdef int64_t pos = 0
    cdef int32_t first, t, length
    with nogil:
        for i in range(n):  # names are a few bytes: a loop the compiler inlines beats a memcpy call per row
            s = status[i]
            first = name_offsets[s]
            length = name_offsets[s + 1] - first
            for t in range(length):
                out[pos + t] = name_bytes[first + t]
            pos += length
    return bitmaps, complete, regular, offsets, data, scope_column
