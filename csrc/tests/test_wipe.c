/* Key material is wiped when a key table or a worker is freed (docs/design.md#safety-rules).
 *
 * White-box test, run by tests/test_secrets.py. Linked with -Wl,--wrap=uid2_wipe, so every call one engine
 * object makes to uid2_wipe (the engine's one wipe function, uid2_aead.c) comes here first. The wrapper
 * records each wiped region, which of the test's secrets it held just before the wipe, and whether it reads
 * zero afterwards.
 *
 * For each mode (argv[1] = "fast", or "general": params.no_fastpath) it builds a table with a 32-byte master
 * key, a 16-byte site key and a 24-byte spare key (each expanded for the hardware kernel), encrypts and
 * decrypts without a worker, with a worker and in a two-thread batch, then frees everything and checks:
 *   - the whole t->keys array (secrets, round keys and powers of H) was wiped by uid2_table_free, and not
 *     before it, and held every secret at that moment (so it is the copy the engine used);
 *   - the worker's scratch buffer (decrypted payloads) and its nonce pool were wiped by uid2_worker_free;
 *   - no wiped region is left non-zero.
 * Prints "ok <check>" per check and exits 0, or "FAIL <check>" and exits 1.
 *
 * Build (from the repository root; the test builds it the same way):
 *   gcc -O1 -std=gnu11 -D_GNU_SOURCE -pthread -Icsrc csrc/tests/test_wipe.c csrc/uid2_*.c -lm \
 *       -Wl,--wrap=uid2_wipe -o /tmp/test_wipe */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uid2_internal.h"

#define N_SECRETS 3
#define MAX_REGIONS 4096

void __real_uid2_wipe(void *p, size_t n);

typedef struct {
    const uint8_t *p;
    size_t n;
    unsigned held; /* bit i: secret i was in the region just before the wipe */
    int zero_after;
} region_t;

static region_t regions[MAX_REGIONS];
static size_t n_regions;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static uint8_t secrets[N_SECRETS][32];
static const size_t secret_len[N_SECRETS] = {32, 16, 24};
static int failures;

void __wrap_uid2_wipe(void *p, size_t n)
{
    unsigned held = 0;
    for (int i = 0; i < N_SECRETS; i++)
        if (p != NULL && memmem(p, n, secrets[i], secret_len[i]) != NULL)
            held |= 1u << i;
    __real_uid2_wipe(p, n);
    int zero = 1;
    for (size_t i = 0; p != NULL && i < n; i++)
        zero &= ((const volatile uint8_t *)p)[i] == 0;
    pthread_mutex_lock(&mu);
    if (n_regions < MAX_REGIONS)
        regions[n_regions++] = (region_t){p, n, held, zero};
    pthread_mutex_unlock(&mu);
}

static void check(int ok, const char *what)
{
    printf("%s %s\n", ok ? "ok" : "FAIL", what);
    failures += !ok;
}

/* The first region recorded at or after index `from` that covers [p, p + n), or NULL. */
static const region_t *covering(size_t from, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = from; i < n_regions; i++)
        if (regions[i].p <= b && b + n <= regions[i].p + regions[i].n)
            return &regions[i];
    return NULL;
}

int main(int argc, char **argv)
{
    int general = argc > 1 && strcmp(argv[1], "general") == 0;
    for (int i = 0; i < N_SECRETS; i++)
        for (int j = 0; j < 32; j++)
            secrets[i][j] = (uint8_t)(0x5A ^ (i * 37 + j * 11 + 1));
    const int64_t now = INT64_C(1780315200000000);
    uid2_key_spec_t keys[N_SECRETS] = {
        {.id = 7, .id_is_u32 = 1, .site_id = -1, .keyset_group = 0, .activates_us = 0, .expires_us = INT64_MAX,
         .secret = secrets[0], .secret_len = 32},
        {.id = 8, .id_is_u32 = 1, .site_id = -1, .keyset_group = 1, .activates_us = 0, .expires_us = INT64_MAX,
         .secret = secrets[1], .secret_len = 16},
        {.id = 9, .id_is_u32 = 1, .site_id = -1, .keyset_group = -1, .activates_us = 0,
         .expires_us = INT64_MAX, .secret = secrets[2], .secret_len = 24},
    };
    uid2_table_params_t p = {.identity_scope = 0, .caller_site_state = UID2_OPT_OK, .caller_site_id = 9000,
                             .master_group = 0, .default_group = 1, .token_expiry_seconds = 3600,
                             .max_sharing_lifetime_seconds = INT64_MAX,
                             .max_bidstream_lifetime_seconds = INT64_MAX, .allow_clock_skew_seconds = 1800,
                             .has_latest_expires = 1, .latest_expires_us = INT64_MAX, .no_fastpath = general};
    uid2_table_t *t = uid2_table_new(keys, N_SECRETS, 2, NULL, 0, NULL, 0, &p);
    if (t == NULL) {
        puts("FAIL uid2_table_new");
        return 1;
    }
    printf("mode %s, kernels %s\n", general ? "general" : "fast", uid2_hw_name());
    check(t->keys[0].hw_ok && t->keys[1].hw_ok && t->keys[2].hw_ok, "every key expanded for the hardware kernel");

    /* Use every path that touches a key: calls without a worker, with one, batch workers. */
    const char *uid = "ywsvDNINiZOVSsfkHpLpSJzXzhr6Jx9Z/4Q0+lsEUvM=";
    uid2_encrypt_args_t a = {.established_ok = 1, .established_ms = 1780315200000};
    char tok[512], ub[512];
    size_t tl = 0;
    int st = uid2_encrypt_token(t, NULL, uid, strlen(uid), 0, now, &a, tok, &tl);
    check(st == UID2_ENC_SUCCESS, "encrypt (no worker)");
    uid2_result_t r;
    st = uid2_decrypt_token(t, NULL, tok, tl, 0, now, UID2_CLIENT_SHARING, NULL, 0, ub, &r);
    check(st == UID2_STATUS_SUCCESS && r.uid_len == strlen(uid) && memcmp(r.uid, uid, r.uid_len) == 0,
          "decrypt (no worker)");
    uid2_worker_t *w = uid2_worker_new(t);
    st = uid2_decrypt_token(t, w, tok, tl, 0, now, UID2_CLIENT_SHARING, NULL, 0, ub, &r);
    check(st == UID2_STATUS_SUCCESS, "decrypt (worker)");
    char tok2[512];
    size_t tl2 = 0;
    st = uid2_encrypt_token(t, w, uid, strlen(uid), 0, now, &a, tok2, &tl2);
    check(st == UID2_ENC_SUCCESS, "encrypt (worker)");

    enum { N = 64 };
    uid2_bytes_t toks[N];
    for (int i = 0; i < N; i++)
        toks[i] = (uid2_bytes_t){(const uint8_t *)tok, tl};
    uint8_t status[N];
    char uids[N * UID2_UID_WIDTH];
    int64_t est[N], exp[N], site[N], sksite[N];
    int8_t itype[N], csg[N];
    int16_t ver[N];
    uint8_t over[N];
    uid2_columns_t cols = {status, uids, est, exp, site, sksite, itype, ver, csg, over};
    ptrdiff_t ov = uid2_decrypt_many(t, toks, N, NULL, NULL, now, UID2_CLIENT_SHARING, &cols, 2);
    int all = ov == 0;
    for (int i = 0; i < N; i++)
        all &= status[i] == UID2_STATUS_SUCCESS;
    check(all, "decrypt_many (two threads)");

    /* The table holds its own copy of every secret. */
    int copies = 1;
    for (int i = 0; i < N_SECRETS; i++)
        copies &= memmem(t->keys, t->n_keys * sizeof *t->keys, secrets[i], secret_len[i]) != NULL;
    check(copies, "the table holds a copy of each secret");

    /* Worker: scratch (decrypted payloads) and nonce pool. */
    const uint8_t *wbuf = w->buf, *wrnd = w->rnd;
    size_t wcap = w->cap, wrnd_len = sizeof w->rnd;
    size_t mark = n_regions;
    uid2_worker_free(w);
    check(wbuf != NULL && covering(mark, wbuf, wcap) != NULL, "worker scratch wiped by uid2_worker_free");
    check(covering(mark, wrnd, wrnd_len) != NULL, "worker nonce pool wiped by uid2_worker_free");

    /* Table: the key array, secrets and expanded kernel keys included, wiped by uid2_table_free only. */
    const uint8_t *kp = (const uint8_t *)t->keys;
    size_t kn = t->n_keys * sizeof *t->keys;
    check(covering(0, kp, kn) == NULL, "the key array is not wiped while the table is alive");
    mark = n_regions;
    uid2_table_free(t);
    const region_t *reg = covering(mark, kp, kn);
    check(reg != NULL, "uid2_table_free wipes the whole key array");
    check(reg != NULL && reg->held == (1u << N_SECRETS) - 1, "the wiped key array held every secret");
    int zero = 1;
    for (size_t i = 0; i < n_regions; i++)
        zero &= regions[i].zero_after;
    check(zero, "every wiped region reads zero afterwards");
    printf("%zu regions wiped\n", n_regions);
    return failures ? 1 : 0;
}
