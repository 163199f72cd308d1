/* A portable self-test of the engine with no dependency but libc: built and run on every platform the
 * scripts check (Linux, musl, Windows under wine, macOS link check, aarch64 under qemu).
 *   - known-answer vectors through the kernel dispatch layer (uid2_hw_*): AES-GCM (McGrew-Viega test cases
 *     2 and 14: 128- and 256-bit keys) and AES-CBC (SP 800-38A F.2.2 and F.2.6);
 *   - a v4 token encrypted and decrypted by the engine, scalar and as a 7,000-row batch on two and three
 *     threads, five times (the kept threads, awake and asleep);
 *   - the OS random source (two draws differ) and the nonce pool.
 * Prints "ok <check>" lines and "<n> failures"; exits 0, 1 on a failure, or 0 with "SKIP" when the CPU has
 * no AES instructions (the engine is not used there).
 *   cc -O2 -std=c11 -Icsrc csrc/tests/test_portable.c csrc/uid2_*.c -lm [-lbcrypt on Windows] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uid2_internal.h"

static int failures;

static void check(int ok, const char *what)
{
    printf("%s %s\n", ok ? "ok" : "FAIL", what);
    failures += !ok;
}

static void hex(const char *s, uint8_t *out)
{
    for (size_t i = 0; s[2 * i]; i++) {
        unsigned v;
        sscanf(s + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
}

static void gcm_kat(const char *name, const char *key_hex, size_t key_len, const char *ct_hex, const char *tag_hex)
{
    uid2_hw_key *k = malloc(sizeof *k + 16);
    uint8_t key[32] = {0}, nonce[12] = {0}, pt[16] = {0}, ct[16], tag[16], want_ct[16], want_tag[16], back[16];
    hex(key_hex, key);
    hex(ct_hex, want_ct);
    hex(tag_hex, want_tag);
    /* uid2_hw_key wants 16-byte alignment: malloc gives at least that on the 64-bit targets checked here */
    int ok = k != NULL && uid2_hw_key_init(k, key, key_len) == 0 && uid2_hw_gcm_encrypt(k, nonce, pt, 16, ct, tag) == 0 &&
             memcmp(ct, want_ct, 16) == 0 && memcmp(tag, want_tag, 16) == 0 &&
             uid2_hw_gcm_decrypt(k, nonce, ct, 16, tag, back) == 0 && memcmp(back, pt, 16) == 0;
    tag[0] ^= 1;
    ok = ok && uid2_hw_gcm_decrypt(k, nonce, ct, 16, tag, back) == -1;
    check(ok, name);
    if (k != NULL)
        uid2_hw_key_wipe(k);
    free(k);
}

static void cbc_kat(const char *name, const char *key_hex, size_t key_len, const char *ct_hex)
{
    uid2_hw_key *k = malloc(sizeof *k);
    uint8_t key[32], iv[16], ct[16], pt[16], want[16];
    hex(key_hex, key);
    hex("000102030405060708090a0b0c0d0e0f", iv);
    hex(ct_hex, ct);
    hex("6bc1bee22e409f96e93d7e117393172a", want);
    check(k != NULL && uid2_hw_key_init(k, key, key_len) == 0 && uid2_hw_cbc_decrypt(k, iv, ct, 16, pt) == 0 &&
              memcmp(pt, want, 16) == 0,
          name);
    free(k);
}

int main(void)
{
    printf("kernels: %s\n", uid2_hw_name());
    if (!uid2_hw_available()) {
        puts("SKIP: no AES instructions on this CPU (the package uses its Python engine here)");
        return 0;
    }
    gcm_kat("AES-128-GCM test case 2", "00000000000000000000000000000000", 16, "0388dace60b6a392f328c2b971b2fe78",
            "ab6e47d42cec13bdf53a67b21257bddf");
    gcm_kat("AES-256-GCM test case 14", "0000000000000000000000000000000000000000000000000000000000000000", 32,
            "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919");
    cbc_kat("AES-128-CBC SP 800-38A F.2.2", "2b7e151628aed2a6abf7158809cf4f3c", 16, "7649abac8119b246cee98e9b12e9197d");
    cbc_kat("AES-256-CBC SP 800-38A F.2.6", "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4", 32,
            "f58c4c04d6e5f1ba779eabfb5f7bfbd6");

    uint8_t r1[32], r2[32];
    check(uid2_random_bytes(r1, sizeof r1) == 0 && uid2_random_bytes(r2, sizeof r2) == 0 && memcmp(r1, r2, 32) != 0,
          "OS random source");
    check(uid2_nonce_bytes(r1, 24) == 0 && uid2_nonce_bytes(r2, 24) == 0 && memcmp(r1, r2, 24) != 0, "nonce pool");

    uint8_t secrets[2][32];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 32; j++)
            secrets[i][j] = (uint8_t)(i * 101 + j * 7 + 3);
    uid2_key_spec_t keys[2] = {
        {.id = 7, .id_is_u32 = 1, .site_id = -1, .keyset_group = 0, .activates_us = 0, .expires_us = INT64_MAX,
         .secret = secrets[0], .secret_len = 32},
        {.id = 8, .id_is_u32 = 1, .site_id = 9000, .keyset_group = 1, .activates_us = 0, .expires_us = INT64_MAX,
         .secret = secrets[1], .secret_len = 32},
    };
    uid2_table_params_t p = {.identity_scope = 0, .caller_site_state = UID2_OPT_OK, .caller_site_id = 9000,
                             .master_group = 0, .default_group = 1, .token_expiry_seconds = 3600,
                             .max_sharing_lifetime_seconds = INT64_MAX,
                             .max_bidstream_lifetime_seconds = INT64_MAX, .allow_clock_skew_seconds = 1800,
                             .has_latest_expires = 1, .latest_expires_us = INT64_MAX};
    uid2_table_t *t = uid2_table_new(keys, 2, 2, NULL, 0, NULL, 0, &p);
    check(t != NULL, "key table");
    if (t == NULL)
        return 1;
    const int64_t now = INT64_C(1780315200000000);
    const char *uid = "ywsvDNINiZOVSsfkHpLpSJzXzhr6Jx9Z/4Q0+lsEUvM=";
    uid2_encrypt_args_t a = {.established_ok = 1, .established_ms = 1780315200000};
    char tok[512], ub[512];
    size_t tl = 0;
    check(uid2_encrypt_token(t, NULL, uid, strlen(uid), 0, now, &a, tok, &tl) == UID2_ENC_SUCCESS, "encrypt a v4 token");
    uid2_result_t r;
    int st = uid2_decrypt_token(t, NULL, tok, tl, 0, now, UID2_CLIENT_SHARING, NULL, 0, ub, &r);
    check(st == UID2_STATUS_SUCCESS && r.uid_len == strlen(uid) && memcmp(r.uid, uid, r.uid_len) == 0,
          "decrypt it (scalar)");

    enum { N = 7000 }; /* three threads of at least 2,048 rows */
    uid2_bytes_t *toks = calloc(N, sizeof *toks);
    uint8_t *status = calloc(N, 1), *over = calloc(N, 1);
    char *uids = calloc(N, UID2_UID_WIDTH);
    int64_t *est = calloc(N, 8), *exp = calloc(N, 8), *site = calloc(N, 8), *sks = calloc(N, 8);
    int8_t *itype = calloc(N, 1), *csg = calloc(N, 1);
    int16_t *ver = calloc(N, 2);
    if (!toks || !status || !over || !uids || !est || !exp || !site || !sks || !itype || !csg || !ver) {
        puts("FAIL out of memory");
        return 1;
    }
    for (int i = 0; i < N; i++)
        toks[i] = (uid2_bytes_t){(const uint8_t *)tok, i % 10 == 9 ? tl - 4 : tl}; /* every 10th truncated */
    uid2_columns_t cols = {status, uids, est, exp, site, sks, itype, ver, csg, over};
    /* Five batches on the kept threads (csrc/uid2_batch.c, the pool): back to back, on two and on three
     * threads, and once after the threads have gone to sleep (their spin is a fraction of a millisecond). */
    int good = 1;
    for (int round = 0; round < 5; round++) {
        if (round == 3)
            for (uint64_t t0 = uid2_monotonic_ns(); uid2_monotonic_ns() - t0 < 20000000u;)
                uid2_thread_yield();
        memset(status, 0xff, N);
        ptrdiff_t ov = uid2_decrypt_many(t, toks, N, NULL, NULL, now, UID2_CLIENT_SHARING, &cols, 2 + round % 2);
        good &= ov == 0;
        for (int i = 0; i < N; i++) {
            if (i % 10 == 9)
                good &= status[i] != UID2_STATUS_SUCCESS && status[i] != 0xff;
            else
                good &= status[i] == UID2_STATUS_SUCCESS &&
                        memcmp(uids + (size_t)i * UID2_UID_WIDTH, uid, 44) == 0 && site[i] == 9000;
        }
    }
    check(good, "decrypt_many: 7,000 rows on two and three threads, five times");
    uid2_table_free(t);
    free(toks), free(status), free(over), free(uids), free(est), free(exp), free(site), free(sks), free(itype);
    free(csg), free(ver);
    printf("%d failures\n", failures);
    return failures ? 1 : 0;
}
