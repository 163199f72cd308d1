/* Micro-benchmark of the C engine without Python: encrypt a v4 token, then decrypt it many times.
 * Build (from csrc/): gcc -O3 -D_GNU_SOURCE -I. tests/bench_engine.c uid2_[a-z]*.c -lpthread -lm */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "uid2_engine.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1000000;
    uint8_t s1[32], s2[32];
    for (int i = 0; i < 32; i++) {
        s1[i] = (uint8_t)i;
        s2[i] = (uint8_t)(100 + i);
    }
    int64_t now = INT64_C(1780315200000000);
    uid2_key_spec_t keys[2] = {
        {.id = 237, .id_is_u32 = 1, .site_id = -1, .keyset_group = 0, .activates_us = 0, .expires_us = INT64_MAX,
         .secret = s1, .secret_len = 32},
        {.id = 2674, .id_is_u32 = 1, .site_id = -1, .keyset_group = 1, .activates_us = 0,
         .expires_us = INT64_MAX, .secret = s2, .secret_len = 32},
    };
    uid2_table_params_t p = {.identity_scope = 0, .caller_site_state = UID2_OPT_OK, .caller_site_id = 9000,
                             .master_group = 0, .default_group = 1, .token_expiry_seconds = 3600,
                             .max_sharing_lifetime_seconds = INT64_MAX, .max_bidstream_lifetime_seconds = INT64_MAX,
                             .allow_clock_skew_seconds = 1800, .has_latest_expires = 1,
                             .latest_expires_us = INT64_MAX};
    uid2_table_t *t = uid2_table_new(keys, 2, 2, NULL, 0, NULL, 0, &p);
    const char *uid = "ywsvDNINiZOVSsfkHpLpSJzXzhr6Jx9Z/4Q0+lsEUvM=";
    uid2_encrypt_args_t a = {.established_ok = 1, .established_ms = 1780315200000};
    char tok[512];
    size_t tl;
    int st = uid2_encrypt_token(t, NULL, uid, strlen(uid), 0, now, &a, tok, &tl);
    printf("encrypt status %d len %zu\n", st, tl);
    uid2_worker_t *w = uid2_worker_new(t);
    char ub[512];
    uid2_result_t r;
    for (int mode = 0; mode < 2; mode++) {
        double t0 = now_s();
        for (int i = 0; i < n; i++)
            uid2_decrypt_token(t, mode ? w : NULL, tok, tl, 0, now, UID2_CLIENT_BIDSTREAM, NULL, 0, ub, &r);
        double el = now_s() - t0;
        printf("%s: status %d uid %.*s  %.1f ns/token\n", mode ? "worker" : "pool  ", r.status, (int)r.uid_len, r.uid,
               el / n * 1e9);
    }
    uid2_worker_free(w);
    uid2_table_free(t);
    return 0;
}
