/* The key table (immutable snapshot) and per-thread workers. */
#include <stdlib.h>
#include <string.h>

#include "uid2_b64fast.h"
#include "uid2_internal.h"


typedef struct {
    uint32_t key;
    uint32_t order; /* position among the deduplicated keys: ties keep it (stable sort) */
    int64_t act;
} group_entry_t;

static int cmp_group_entry(const void *a, const void *b)
{
    const group_entry_t *x = a, *y = b;
    if (x->act != y->act)
        return x->act < y->act ? -1 : 1;
    return x->order < y->order ? -1 : (x->order > y->order);
}

static int cmp_site(const void *a, const void *b)
{
    uint32_t x = ((const uid2_site_spec_t *)a)->site_id, y = ((const uid2_site_spec_t *)b)->site_id;
    return x < y ? -1 : (x > y);
}

uid2_table_t *uid2_table_new(const uid2_key_spec_t *keys, size_t n_keys, size_t n_groups,
                             const uid2_site_spec_t *sites, size_t n_sites, const uid2_bytes_t *names,
                             size_t n_names, const uid2_table_params_t *params)
{
    if (params == NULL || (n_keys > 0 && keys == NULL) || n_keys >= (size_t)UINT32_MAX / 4 ||
        (n_sites > 0 && sites == NULL) || (n_names > 0 && names == NULL))
        return NULL;
    uid2_table_t *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->p = *params;
    t->b64fast = !params->no_fastpath && uid2_b64fast_enabled();
    t->onepass = t->b64fast && uid2_hw_available();
    t->n_keys = n_keys;
    t->n_groups = n_groups;
    size_t cap = 8;
    uint32_t bits = 3;
    while (cap < 4 * n_keys) { /* at most a quarter full: a lookup is nearly always one probe */
        cap <<= 1;
        bits++;
    }
    t->hmask = (uint32_t)(cap - 1);
    t->hshift = 32u - bits;
    t->keys = calloc(n_keys ? n_keys : 1, sizeof *t->keys);
    t->hid = calloc(cap, sizeof *t->hid);
    t->hidx = calloc(cap, sizeof *t->hidx);
    t->group_start = calloc(n_groups + 1, sizeof *t->group_start);
    t->group_keys = calloc(n_keys ? n_keys : 1, sizeof *t->group_keys);
    t->group_act = calloc(n_keys ? n_keys : 1, sizeof *t->group_act);
    group_entry_t *ge = calloc(n_keys ? n_keys : 1, sizeof *ge);
    if (!t->keys || !t->hid || !t->hidx || !t->group_start || !t->group_keys || !t->group_act || !ge)
        goto fail;

    size_t n_grouped = 0;
    for (size_t i = 0; i < n_keys; i++) {
        const uid2_key_spec_t *s = &keys[i];
        uid2_key_t *k = &t->keys[i];
        k->id = s->id;
        k->id_is_u32 = s->id_is_u32;
        k->site_id = s->site_id;
        k->activates_us = s->activates_us;
        k->expires_us = s->expires_us;
        k->secret_len = s->secret_len;
        k->secret_ok = uid2_aead_key_len_ok(s->secret_len) && s->secret != NULL;
        if (k->secret_ok)
            memcpy(k->secret, s->secret, s->secret_len);
        /* the hardware kernel's key schedule; wiped with the rest of the key on free */
        if (k->secret_ok && uid2_hw_available())
            k->hw_ok = uid2_hw_key_init(&k->hw, k->secret, s->secret_len) == 0;
        if (s->id_is_u32) {
            uint32_t h = uid2_hash_id(s->id, t->hshift);
            while (t->hidx[h] != 0 && t->hid[h] != s->id)
                h = (h + 1) & t->hmask;
            t->hid[h] = s->id;
            t->hidx[h] = (uint32_t)i + 1; /* a repeated id: the last key wins, as in a dict */
        }
        if (s->keyset_group >= 0) {
            if ((size_t)s->keyset_group >= n_groups)
                goto fail;
            t->group_start[s->keyset_group + 1]++;
            n_grouped++;
        }
    }
    for (size_t g = 0; g < n_groups; g++)
        t->group_start[g + 1] += t->group_start[g];
    {
        /* bucket by group (in key order), then sort each bucket by activates, ties by key order */
        size_t *fill = calloc(n_groups ? n_groups : 1, sizeof *fill);
        if (fill == NULL)
            goto fail;
        for (size_t i = 0; i < n_keys; i++) {
            int32_t g = keys[i].keyset_group;
            if (g < 0)
                continue;
            size_t pos = t->group_start[g] + fill[g]++;
            ge[pos].key = (uint32_t)i;
            ge[pos].order = (uint32_t)i;
            ge[pos].act = keys[i].activates_us;
        }
        free(fill);
        for (size_t g = 0; g < n_groups; g++) {
            size_t lo = t->group_start[g], hi = t->group_start[g + 1];
            if (hi - lo > 1)
                qsort(ge + lo, hi - lo, sizeof *ge, cmp_group_entry);
        }
        for (size_t i = 0; i < n_grouped; i++) {
            t->group_keys[i] = ge[i].key;
            t->group_act[i] = ge[i].act;
        }
    }
    free(ge);
    ge = NULL;

    /* site domains */
    size_t blob_len = 0;
    for (size_t i = 0; i < n_names; i++)
        blob_len += names[i].len;
    t->n_sites = n_sites;
    t->sites = calloc(n_sites ? n_sites : 1, sizeof *t->sites);
    t->names = calloc(n_names ? n_names : 1, sizeof *t->names);
    t->names_blob = malloc(blob_len ? blob_len : 1);
    if (!t->sites || !t->names || !t->names_blob)
        goto fail;
    size_t off = 0;
    for (size_t i = 0; i < n_names; i++) {
        if (names[i].len)
            memcpy(t->names_blob + off, names[i].ptr, names[i].len);
        t->names[i].ptr = names[i].ptr ? t->names_blob + off : NULL;
        t->names[i].len = names[i].len;
        off += names[i].len;
    }
    for (size_t i = 0; i < n_sites; i++) {
        if (sites[i].first_name > n_names || sites[i].n_names > n_names - sites[i].first_name)
            goto fail;
        t->sites[i] = sites[i];
    }
    if (n_sites > 1)
        qsort(t->sites, n_sites, sizeof *t->sites, cmp_site);
    return t;

fail:
    free(ge);
    uid2_table_free(t);
    return NULL;
}

void uid2_table_free(uid2_table_t *t)
{
    if (t == NULL)
        return;
    if (t->keys != NULL) /* secrets, hardware round keys and powers of H */
        uid2_wipe(t->keys, t->n_keys * sizeof *t->keys);
    free(t->keys);
    free(t->hid);
    free(t->hidx);
    free(t->group_start);
    free(t->group_keys);
    free(t->group_act);
    free(t->sites);
    free(t->names);
    free(t->names_blob);
    free(t);
}

unsigned uid2_table_fastpath(const uid2_table_t *t)
{
    if (t == NULL)
        return 0;
    return (t->onepass ? UID2_FAST_ONEPASS : 0u) | (t->b64fast ? UID2_FAST_B64 : 0u);
}

size_t uid2_table_size(const uid2_table_t *t)
{
    return t ? t->n_keys : 0;
}

ptrdiff_t uid2_table_find(const uid2_table_t *t, uint32_t key_id)
{
    return uid2_find(t, key_id);
}

ptrdiff_t uid2_table_active_key(const uid2_table_t *t, int32_t group, int64_t now_us)
{
    if (group < 0 || (size_t)group >= t->n_groups)
        return -1;
    size_t lo = t->group_start[group], hi = t->group_start[group + 1];
    /* upper_bound: first key with activates > now; then walk back to the first one not yet expired */
    size_t a = lo, b = hi;
    while (a < b) {
        size_t mid = a + (b - a) / 2;
        if (t->group_act[mid] <= now_us)
            a = mid + 1;
        else
            b = mid;
    }
    while (a > lo) {
        a--;
        const uid2_key_t *k = &t->keys[t->group_keys[a]];
        if (k->activates_us <= now_us && now_us < k->expires_us)
            return (ptrdiff_t)t->group_keys[a];
    }
    return -1;
}

uid2_worker_t *uid2_worker_new(const uid2_table_t *t)
{
    uid2_worker_t *w = calloc(1, sizeof *w);
    if (w == NULL)
        return NULL;
    w->t = t;
    w->rnd_pos = sizeof w->rnd; /* empty: refilled on first use */
    return w;
}

void uid2_worker_free(uid2_worker_t *w)
{
    if (w == NULL)
        return;
    if (w->buf != NULL)
        uid2_wipe(w->buf, w->cap); /* decrypted payloads */
    free(w->buf);
    if (w->ubuf != NULL)
        uid2_wipe(w->ubuf, w->ucap);
    free(w->ubuf);
    uid2_wipe(w->rnd, sizeof w->rnd); /* unused nonces */
    free(w);
}

static int grow(uint8_t **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 1024;
    while (n < need)
        n *= 2;
    uint8_t *p = malloc(n);
    if (p == NULL)
        return -1;
    if (*buf != NULL) {
        uid2_wipe(*buf, *cap);
        free(*buf);
    }
    *buf = p;
    *cap = n;
    return 0;
}

uint8_t *uid2_worker_scratch(uid2_worker_t *w, size_t need)
{
    return grow(&w->buf, &w->cap, need) == 0 ? w->buf : NULL;
}

char *uid2_worker_uid_buf(uid2_worker_t *w, size_t need)
{
    return grow((uint8_t **)&w->ubuf, &w->ucap, need) == 0 ? w->ubuf : NULL;
}
