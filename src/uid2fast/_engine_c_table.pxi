# KeyTable: an immutable key set snapshot in C memory (included by _engine_c.pyx).

cdef class KeyTable:
    """An immutable snapshot of a key set, ready for decryption (see ``keys._table_args``).

    Safe to use from many threads at once; the key material is wiped when it is freed. ``fastpath=False``
    keeps this table on the exact base64 codecs and the general token path (tests compare it with the fast
    paths); AES runs on the hardware kernel either way.
    """

    cdef uid2_table_t *_t
    cdef list _site_ids          # per key index: the exact Python site_id (site_key_site_id results)
    cdef dict _groups            # keyset id -> group index
    cdef readonly object identity_scope, caller_site_id, master_keyset_id, default_keyset_id
    cdef readonly object token_expiry_seconds, max_sharing_lifetime_seconds, max_bidstream_lifetime_seconds
    cdef readonly object allow_clock_skew_seconds, site_domains, latest_expires_us
    cdef readonly object public_scope  # the key set's scope as its collection gives it, put into results

    def __cinit__(self, keys, *, identity_scope, caller_site_id, master_keyset_id, default_keyset_id,
                  token_expiry_seconds, max_sharing_lifetime_seconds, max_bidstream_lifetime_seconds,
                  allow_clock_skew_seconds, site_domains, latest_expires_us, public_scope=None,
                  fastpath=True):
        cdef uid2_key_spec_t *specs = NULL
        cdef uid2_site_spec_t *sites = NULL
        cdef uid2_bytes_t *names = NULL
        cdef uid2_table_params_t p
        cdef Py_ssize_t i, n, n_sites, n_names, j
        cdef bytes secret
        # Every key, in input order: the C lookup by id finds the last one with an id (a dict's answer),
        # keyset lists keep them all (as the twin and the official SDK do).
        all_keys = []
        for k in keys:
            key_id, site_id, keyset_id, activates_us, expires_us, secret_obj = k
            all_keys.append((key_id, site_id, keyset_id, activates_us, expires_us, bytes(secret_obj)))
        groups = {}
        for k in all_keys:
            if k[2] is not None:
                groups.setdefault(k[2], len(groups))
        self._groups = groups
        self._site_ids = [k[1] for k in all_keys]
        # site domains: {int(site): names}; only u32 site ids can match a token, only str names a domain
        domains = {int(s): list(v) for s, v in site_domains.items()}
        site_rows = []
        name_bytes = []
        for s, v in domains.items():
            if 0 <= s < _U32:
                first = len(name_bytes)
                for nm in v:
                    if isinstance(nm, str):
                        name_bytes.append(_utf8(nm))
                site_rows.append((s, first, len(name_bytes) - first))
        n = len(all_keys)
        n_sites = len(site_rows)
        n_names = len(name_bytes)
        try:
            specs = <uid2_key_spec_t *>calloc(n + 1, sizeof(uid2_key_spec_t))
            sites = <uid2_site_spec_t *>calloc(n_sites + 1, sizeof(uid2_site_spec_t))
            names = <uid2_bytes_t *>calloc(n_names + 1, sizeof(uid2_bytes_t))
            if specs == NULL or sites == NULL or names == NULL:
                raise MemoryError()
            for i in range(n):
                key_id, site_id, keyset_id, activates_us, expires_us, secret = all_keys[i]
                if isinstance(key_id, int) and 0 <= key_id < _U32:
                    specs[i].id = <uint32_t>key_id
                    specs[i].id_is_u32 = 1
                specs[i].site_id = _sat64(site_id, "site_id")
                specs[i].keyset_group = -1 if keyset_id is None else groups[keyset_id]
                specs[i].activates_us = _sat64(activates_us, "activates_us")
                specs[i].expires_us = _sat64(expires_us, "expires_us")
                specs[i].secret = <const uint8_t *>PyBytes_AS_STRING(secret)
                specs[i].secret_len = <size_t>PyBytes_GET_SIZE(secret)
            for i in range(n_sites):
                sites[i].site_id = <uint32_t>site_rows[i][0]
                sites[i].first_name = <size_t>site_rows[i][1]
                sites[i].n_names = <size_t>site_rows[i][2]
            for i in range(n_names):
                names[i].ptr = <const uint8_t *>PyBytes_AS_STRING(name_bytes[i])
                names[i].len = <size_t>PyBytes_GET_SIZE(name_bytes[i])
            p.identity_scope = _sat64(identity_scope, "identity_scope")
            if caller_site_id is None:
                p.caller_site_state = UID2_OPT_NONE
                p.caller_site_id = 0
            elif isinstance(caller_site_id, int) and 0 <= caller_site_id < _U32:
                p.caller_site_state = UID2_OPT_OK
                p.caller_site_id = <uint32_t>caller_site_id
            else:
                p.caller_site_state = UID2_OPT_INVALID
                p.caller_site_id = 0
            p.master_group = groups.get(master_keyset_id, -1)
            p.default_group = groups.get(default_keyset_id, -1)
            p.token_expiry_seconds = _sat64(token_expiry_seconds, "token_expiry_seconds")
            p.max_sharing_lifetime_seconds = _sat64(max_sharing_lifetime_seconds, "max_sharing_lifetime_seconds")
            p.max_bidstream_lifetime_seconds = _sat64(max_bidstream_lifetime_seconds,
                                                      "max_bidstream_lifetime_seconds")
            p.allow_clock_skew_seconds = _sat64(allow_clock_skew_seconds, "allow_clock_skew_seconds")
            p.no_fastpath = 0 if fastpath else 1
            if latest_expires_us is None:
                p.has_latest_expires = 0
                p.latest_expires_us = 0
            else:
                p.has_latest_expires = 1
                p.latest_expires_us = _sat64(latest_expires_us, "latest_expires_us")
            self._t = uid2_table_new(specs, <size_t>n, <size_t>len(groups), sites, <size_t>n_sites, names,
                                     <size_t>n_names, &p)
            if self._t == NULL:
                raise MemoryError("could not build the key table")
            if not uid2_hw_available():
                # unreachable through the package (it picks the Python engine on such a CPU): a direct user
                # of this module must not get a table whose every decryption fails
                raise RuntimeError("the C engine needs AES instructions this CPU does not have")
        finally:
            free(specs)
            free(sites)
            free(names)
        self.identity_scope = identity_scope
        self.caller_site_id = caller_site_id
        self.master_keyset_id = master_keyset_id
        self.default_keyset_id = default_keyset_id
        self.token_expiry_seconds = token_expiry_seconds
        self.max_sharing_lifetime_seconds = max_sharing_lifetime_seconds
        self.max_bidstream_lifetime_seconds = max_bidstream_lifetime_seconds
        self.allow_clock_skew_seconds = allow_clock_skew_seconds
        self.site_domains = {s: frozenset(v) for s, v in domains.items()}
        self.latest_expires_us = latest_expires_us
        self.public_scope = public_scope

    def __dealloc__(self):
        if self._t != NULL:
            uid2_table_free(self._t)  # wipes secrets and key schedules
            self._t = NULL

    def __len__(self):
        return uid2_table_size(self._t)

    @property
    def fastpath(self):
        """The optional fast paths this table uses: a subset of ``{"b64fast", "onepass"}`` (SIMD base64
        codecs; batch rows in one pass), empty with ``UID2FAST_NO_FASTPATH=1`` or ``fastpath=False``."""
        cdef unsigned f = uid2_table_fastpath(self._t)
        names = []
        if f & UID2_FAST_ONEPASS:
            names.append("onepass")
        if f & UID2_FAST_B64:
            names.append("b64fast")
        return frozenset(names)

    def __repr__(self):
        return f"<KeyTable (c engine): {uid2_table_size(self._t)} keys>"

    def valid(self, int64_t now_us):
        return self.latest_expires_us is not None and self.latest_expires_us > now_us

    def key_index(self, key_id):
        """Index of the key with this id (C lookup), or None: for tests."""
        if not (isinstance(key_id, int) and 0 <= key_id < _U32):
            return None
        cdef ptrdiff_t i = uid2_table_find(self._t, <uint32_t>key_id)
        return None if i < 0 else i

    def active_keyset_key_index(self, keyset_id, int64_t now_us):
        """Index of the active key of a keyset (encryption's choice), or None: for tests."""
        cdef ptrdiff_t i = uid2_table_active_key(self._t, self._groups.get(keyset_id, -1), now_us)
        return None if i < 0 else i
