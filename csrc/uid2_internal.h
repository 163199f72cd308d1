/* Shared between the engine's .c files; not part of the C API. */
#ifndef UID2_INTERNAL_H
#define UID2_INTERNAL_H

#include <string.h>

#include "uid2_aead.h"
#include "uid2_engine.h"
#include "uid2_kernels.h"

#define UID2_MAX_SECRET 32u

typedef struct {
    /* The hardware kernel's round keys (both directions) and powers of H (uid2_kernels.h: AES-NI/PCLMULQDQ
     * or ARMv8), expanded once when the table is built for every 16/24/32-byte secret (hw_ok; 0 only on
     * a CPU without the instructions, where the package does not use this engine); read-only afterwards,
     * so any number of threads use it at once. */
    uid2_hw_key hw;
    int hw_ok;
    uint32_t id;
    int id_is_u32;
    int secret_ok; /* a 16/24/32-byte AES key */
    int64_t site_id;
    int64_t activates_us;
    int64_t expires_us;
    size_t secret_len;
    uint8_t secret[UID2_MAX_SECRET];
} uid2_key_t;

struct uid2_table {
    size_t n_keys;
    uid2_key_t *keys;
    /* open addressing on the u32 key id: slot -> key index + 1 (0 = empty) */
    uint32_t hmask;
    uint32_t hshift; /* 32 - log2(hmask + 1) */
    uint32_t *hid;
    uint32_t *hidx;
    /* keyset groups: keys of group g are group_keys[group_start[g] .. group_start[g+1]), sorted by
     * activates (stable); group_act mirrors their activates for the binary search */
    size_t n_groups;
    size_t *group_start;
    uint32_t *group_keys;
    int64_t *group_act;
    /* site domains, sorted by site id */
    size_t n_sites;
    uid2_site_spec_t *sites;
    uid2_bytes_t *names;
    uint8_t *names_blob;
    uid2_table_params_t p;
    int b64fast; /* decode with uid2_b64fast first (p.no_fastpath unset and UID2FAST_NO_FASTPATH unset) */
    int onepass; /* batches try uid2_decrypt_fast first (b64fast and the hardware kernel) */
};

struct uid2_worker {
    const uid2_table_t *t;
    uint8_t *buf;         /* scratch for decoded tokens and payloads */
    size_t cap;
    char *ubuf;           /* uid text for batch rows */
    size_t ucap;
    uint8_t rnd[24 * 64]; /* CSPRNG output for GCM nonces, drawn in bulk and used once */
    size_t rnd_pos;
};

/* Fibonacci hashing: the top bits of id * 2^32/phi. Operators number keys consecutively, and consecutive ids
 * land in distinct slots (the low bits of the product would cluster them: 5 probes per lookup for ids 1..18
 * in 64 slots, each probe loop a mispredicted branch). `shift` is 32 - log2(slots). */
static inline uint32_t uid2_hash_id(uint32_t id, uint32_t shift)
{
    return (id * 2654435761u) >> shift;
}

/* uid2_table_find, inlined into the token code. */
static inline ptrdiff_t uid2_find(const uid2_table_t *t, uint32_t key_id)
{
    uint32_t h = uid2_hash_id(key_id, t->hshift);
    for (;;) {
        uint32_t idx = t->hidx[h];
        if (idx == 0)
            return -1;
        if (t->hid[h] == key_id)
            return (ptrdiff_t)idx - 1;
        h = (h + 1) & t->hmask;
    }
}

/* 1 if p[0 .. n) is ASCII. */
static inline int uid2_all_ascii(const uint8_t *p, size_t n)
{
    uint64_t acc = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        acc |= v;
    }
    for (; i < n; i++)
        acc |= p[i];
    return (acc & UINT64_C(0x8080808080808080)) == 0;
}

/* The key indexes uid2_decrypt_fast resolved last in one batch call ([0] master, [1] site; idx -1: none),
 * each for a key the hardware kernel can use. The table does not change during a call, and a batch's tokens
 * nearly all share one master key (runs of them often one site key). */
typedef struct {
    uint32_t id[2];
    ptrdiff_t idx[2];
} uid2_key_memo_t;

/* The common batch row (a v3 or v4 token whose payloads open, with a 32- or 33-byte raw UID: SUCCESS, or opted
 * out, a failed domain check or a bad lifetime) in one pass: 1 with row i of the columns written, or 0 (nothing
 * written but scratch): then take uid2_decrypt_token. `scratch` holds `cap` >= UID2_FAST_ROW_SCRATCH bytes. */
#define UID2_FAST_ROW_SCRATCH 512u
int uid2_decrypt_fast(const uid2_table_t *t, uid2_key_memo_t *memo, uint8_t *scratch, size_t cap,
                      const char *token, size_t len, int64_t now_us, int client, const uint8_t *domain,
                      size_t dlen, const uid2_columns_t *c, size_t i);

/* uid2_decrypt_fast for rows lo .. lo + n - 1 (n <= UID2_FAST_GROUP) at once, their GCM payloads opened side
 * by side by the multi-buffer kernel (call it only when uid2_gcm_mb_impl() is not UID2_GCM_MB_NONE). Row
 * lo + j takes domains[lo + j] when domains is not NULL, else single_domain (may be NULL). Returns the mask
 * of rows written (bit j: row lo + j); every other row needs uid2_decrypt_token. `scratch` holds `cap` >=
 * n * UID2_FAST_ROW_SCRATCH bytes. */
#define UID2_FAST_GROUP 8u
uint32_t uid2_decrypt_fast_group(const uid2_table_t *t, uid2_key_memo_t *memo, uint8_t *scratch, size_t cap,
                                 const uid2_bytes_t *tokens, size_t lo, size_t n, const uid2_bytes_t *domains,
                                 const uid2_bytes_t *single_domain, int64_t now_us, int client,
                                 const uid2_columns_t *c);

/* Grow-only scratch of the worker; NULL if memory ran out. */
uint8_t *uid2_worker_scratch(uid2_worker_t *w, size_t need);
char *uid2_worker_uid_buf(uid2_worker_t *w, size_t need);

#endif
