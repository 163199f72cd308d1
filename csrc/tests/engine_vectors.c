/* The decrypt vectors (tests/vectors/decrypt.json, converted by scripts/arm64_vectors.py) through the C
 * engine's uid2_decrypt_token, with no Python: for a build that runs where there is no Python for it
 * (scripts/arm64_check.sh runs it under qemu-aarch64).
 *
 *   engine_vectors FILE [--no-fastpath] [--require-fast]
 *
 * Prints one line per case (every field of the result) so two builds can be compared line by line, and
 * checks on its own every case's status and, where the vector has one, its uid (the expectations of
 * tests/test_vectors.py, as far as the C level decides them: see scripts/arm64_vectors.py). --require-fast fails unless every table uses the batch's one-pass rows and the fast base64 codecs
 * (AES is always the hardware kernel: the engine has no other, and a table's one-pass rows need it);
 * --no-fastpath builds the tables with both turned off (the exact codecs and the general path). Exit status 1 on any
 * failed check. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uid2_engine.h"

#define MAX_TABLES 16
#define LINE_MAX_LEN 65536

static size_t unhex(const char *h, uint8_t *out, size_t cap)
{
    size_t n = 0;
    if (strcmp(h, "-") == 0)
        return 0;
    for (; h[0] && h[1] && n < cap; h += 2) {
        unsigned v;
        if (sscanf(h, "%2x", &v) != 1)
            break;
        out[n++] = (uint8_t)v;
    }
    return n;
}

typedef struct {
    uid2_table_params_t p;
    uid2_key_spec_t *keys;
    uint8_t (*secrets)[64];
    uid2_site_spec_t *sites;
    uid2_bytes_t *names;
    uint8_t (*name_buf)[256];
    size_t n_keys, n_groups, n_sites, n_names, k, s, m;
} table_build;

static char *next_tok(char **p)
{
    return strtok_r(NULL, " \n", p);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE [--no-fastpath] [--require-fast]\n", argv[0]);
        return 2;
    }
    int no_fast = 0, require_fast = 0;
    for (int i = 2; i < argc; i++) {
        no_fast |= strcmp(argv[i], "--no-fastpath") == 0;
        require_fast |= strcmp(argv[i], "--require-fast") == 0;
    }
    FILE *f = fopen(argv[1], "r");
    if (f == NULL) {
        perror(argv[1]);
        return 2;
    }
    static char line[LINE_MAX_LEN];
    static uint8_t token[LINE_MAX_LEN / 2];
    static char uid_buf[LINE_MAX_LEN];
    uid2_table_t *tables[MAX_TABLES];
    size_t n_tables = 0;
    table_build b;
    memset(&b, 0, sizeof b);
    long cases = 0, checked = 0, failures = 0;
    int pending = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        char *save = NULL, *kind = strtok_r(line, " \n", &save);
        if (kind == NULL)
            continue;
        if (pending && strcmp(kind, "KEY") && strcmp(kind, "SITE") && strcmp(kind, "NAME")) {
            /* the table's last line was read: build it */
            tables[n_tables] = uid2_table_new(b.keys, b.n_keys, b.n_groups, b.sites, b.n_sites, b.names, b.n_names,
                                              &b.p);
            if (tables[n_tables] == NULL) {
                fprintf(stderr, "uid2_table_new failed\n");
                return 2;
            }
            unsigned fast = uid2_table_fastpath(tables[n_tables]);
            fprintf(stderr, "table %zu: %zu keys, fast paths %#x (onepass %d, base64 %d)\n", n_tables, b.n_keys, fast,
                    (fast & UID2_FAST_ONEPASS) != 0, (fast & UID2_FAST_B64) != 0);
            if (require_fast && (fast & (UID2_FAST_ONEPASS | UID2_FAST_B64)) != (UID2_FAST_ONEPASS | UID2_FAST_B64)) {
                fprintf(stderr, "FAIL: table %zu does not use the fast paths\n", n_tables);
                failures++;
            }
            n_tables++;
            free(b.keys), free(b.secrets), free(b.sites), free(b.names), free(b.name_buf);
            memset(&b, 0, sizeof b);
            pending = 0;
        }
        if (strcmp(kind, "TABLE") == 0) {
            if (n_tables == MAX_TABLES)
                return 2;
            int64_t v[15];
            for (int i = 0; i < 15; i++) {
                char *t = next_tok(&save);
                v[i] = t ? strtoll(t, NULL, 10) : 0;
            }
            b.n_keys = (size_t)v[0], b.n_groups = (size_t)v[1], b.n_sites = (size_t)v[2], b.n_names = (size_t)v[3];
            b.p.identity_scope = v[4];
            b.p.caller_site_state = (int)v[5];
            b.p.caller_site_id = (uint32_t)v[6];
            b.p.master_group = (int32_t)v[7];
            b.p.default_group = (int32_t)v[8];
            b.p.token_expiry_seconds = v[9];
            b.p.max_sharing_lifetime_seconds = v[10];
            b.p.max_bidstream_lifetime_seconds = v[11];
            b.p.allow_clock_skew_seconds = v[12];
            b.p.has_latest_expires = (int)v[13];
            b.p.latest_expires_us = v[14];
            b.p.no_fastpath = no_fast;
            b.keys = calloc(b.n_keys + 1, sizeof *b.keys);
            b.secrets = calloc(b.n_keys + 1, sizeof *b.secrets);
            b.sites = calloc(b.n_sites + 1, sizeof *b.sites);
            b.names = calloc(b.n_names + 1, sizeof *b.names);
            b.name_buf = calloc(b.n_names + 1, sizeof *b.name_buf);
            if (!b.keys || !b.secrets || !b.sites || !b.names || !b.name_buf)
                return 2;
            pending = 1;
        } else if (strcmp(kind, "KEY") == 0 && pending && b.k < b.n_keys) {
            uid2_key_spec_t *k = &b.keys[b.k];
            int64_t v[6];
            for (int i = 0; i < 6; i++) {
                char *t = next_tok(&save);
                v[i] = t ? strtoll(t, NULL, 10) : 0;
            }
            k->id = (uint32_t)v[0];
            k->id_is_u32 = (int)v[1];
            k->site_id = v[2];
            k->keyset_group = (int32_t)v[3];
            k->activates_us = v[4];
            k->expires_us = v[5];
            char *h = next_tok(&save);
            k->secret_len = h ? unhex(h, b.secrets[b.k], sizeof b.secrets[b.k]) : 0;
            k->secret = b.secrets[b.k];
            b.k++;
        } else if (strcmp(kind, "SITE") == 0 && pending && b.s < b.n_sites) {
            char *a = next_tok(&save), *c = next_tok(&save), *d = next_tok(&save);
            if (!a || !c || !d)
                return 2;
            b.sites[b.s].site_id = (uint32_t)strtoul(a, NULL, 10);
            b.sites[b.s].first_name = (size_t)strtoul(c, NULL, 10);
            b.sites[b.s].n_names = (size_t)strtoul(d, NULL, 10);
            b.s++;
        } else if (strcmp(kind, "NAME") == 0 && pending && b.m < b.n_names) {
            char *h = next_tok(&save);
            b.names[b.m].len = h ? unhex(h, b.name_buf[b.m], sizeof b.name_buf[b.m]) : 0;
            b.names[b.m].ptr = b.name_buf[b.m];
            b.m++;
        } else if (strcmp(kind, "CASE") == 0) {
            char *ti = next_tok(&save), *cl = next_tok(&save), *now = next_tok(&save), *tok = next_tok(&save),
                 *want_status = next_tok(&save), *want = next_tok(&save);
            if (!ti || !cl || !now || !tok || !want_status || !want || (size_t)atoi(ti) >= n_tables)
                return 2;
            size_t len = unhex(tok, token, sizeof token);
            uid2_result_t r;
            memset(&r, 0, sizeof r);
            uid2_decrypt_token(tables[atoi(ti)], NULL, (const char *)token, len, 0, strtoll(now, NULL, 10),
                               atoi(cl), NULL, 0, uid_buf, &r);
            printf("%ld status %d have %#x uid %.*s established %" PRIu64 " site %" PRIu32 " site_key_site %" PRId64
                   " type %d version %d csg %d expiry %" PRIu64 "\n",
                   cases, r.status, r.have, (r.have & UID2_HAVE_UID) && r.uid ? (int)r.uid_len : 1,
                   (r.have & UID2_HAVE_UID) && r.uid ? r.uid : "-", r.established_ms, r.site_id,
                   r.site_key_site_id, r.identity_type, r.version, r.is_client_side_generated, r.expiry_ms);
            int st_ok = strcmp(want_status, "R") == 0 ? r.status != UID2_STATUS_SUCCESS
                        : atoi(want_status) == UID2_STATUS_INVALID_PAYLOAD
                            ? r.status == UID2_STATUS_INVALID_PAYLOAD || r.status == UID2_STATUS_MALFORMED
                            : r.status == atoi(want_status);
            if (!st_ok) {
                fprintf(stderr, "FAIL case %ld: status %d, expected %s\n", cases, r.status, want_status);
                failures++;
            } else if (strcmp(want, "-") != 0) {
                checked++;
                if (!(r.have & UID2_HAVE_UID) || r.uid_len != strlen(want) || memcmp(r.uid, want, r.uid_len) != 0) {
                    fprintf(stderr, "FAIL case %ld: uid %.*s, expected %s\n", cases, (int)r.uid_len,
                            r.uid ? r.uid : "", want);
                    failures++;
                }
            }
            cases++;
        }
    }
    fclose(f);
    for (size_t i = 0; i < n_tables; i++)
        uid2_table_free(tables[i]);
    fprintf(stderr, "engine vectors: %ld cases, %ld uids checked, %ld failure(s)\n",
            cases, checked, failures);
    return failures || cases == 0 || checked == 0 ? 1 : 0;
}
