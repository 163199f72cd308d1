/* libFuzzer harness for the C engine's token parsing and decryption (csrc/uid2_engine.h).
 *
 * One input describes a key table and what to do with it; the layout is in fuzz/README.md and is written by
 * fuzz/make_corpus.py. Modes:
 *   0  raw token text: every token through the scalar decrypt (str and bytes flags, with and without a
 *      worker, with and without a uid buffer, the UNDECODABLE claim) and through the batch API;
 *   1  a v2 token built around fuzzed plaintexts: the harness does the AES-CBC with the table's own keys so
 *      the parsing behind the crypto (master payload, identity, id length, UTF-8, PKCS7) is reached;
 *   2  a v3/v4 token built the same way with AES-GCM (master payload, site payload, privacy bits, domains);
 *   3  v4 encryption of a fuzzed uid (scalar and batch, 1-2 threads), then decryption of every token made:
 *      it must give back the uid.
 * Besides ASan/UBSan/LSan, the oracles are: a worker and the pool give the same result; the uid buffer does
 * not change the status; a batch row equals the scalar result; statuses and `have` bits are consistent;
 * encryption round-trips. A violated oracle aborts with a message (a libFuzzer "crash").
 *
 * Every buffer handed to the engine is its own heap block of exactly the documented size, so any read or
 * write past it is an ASan report. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "uid2_engine.h"

#define MAX_KEYS 8
#define MAX_SITES 4
#define MAX_NAMES 8
#define MAX_TOKENS 16
#define MAX_SECRET 40
#define BATCH_ROWS_2T 520 /* with scripts/fuzz.sh's UID2_MIN_ROWS_PER_THREAD of 256: 2 threads, chunks 256+256+8 */
/* At least this many rows on one thread: two full groups of the batch's multi-buffer path (8 rows whose GCM
 * payloads are opened side by side, uid2_decrypt_fast_group) and a short one */
#define BATCH_ROWS_MIN 19

#define CHECK(cond, ...)                                                                                       \
    do {                                                                                                       \
        if (!(cond)) {                                                                                         \
            fprintf(stderr, "fuzz_decrypt oracle failed at %s:%d: %s\n  ", __FILE__, __LINE__, #cond);        \
            fprintf(stderr, __VA_ARGS__);                                                                      \
            fputc('\n', stderr);                                                                               \
            abort();                                                                                           \
        }                                                                                                      \
    } while (0)

/* The same table built with params.no_fastpath = 1 (the exact base64 codecs and the general token path;
 * AES on the same hardware kernel): every scalar decrypt and every token made is also run through it and
 * must give the same answer as the fast paths. The tokens themselves are sealed by OpenSSL below (GCM and
 * CBC), so every token the engine opens checks its AES kernels against OpenSSL. */
static uid2_table_t *g_ref;

/* UID2_FUZZ_VERBOSE=1: print each scalar result (to see which paths a seed reaches). */
static int verbose(void)
{
    static int v = -1;
    if (v < 0) {
        const char *e = getenv("UID2_FUZZ_VERBOSE");
        v = e != NULL && e[0] != '\0' && strcmp(e, "0") != 0;
    }
    return v;
}

/* ---- input reader: little-endian fields from the front; zeros once the input runs out ------------------ */

typedef struct {
    const uint8_t *p;
    size_t n;
} reader_t;

static uint64_t rd_le(reader_t *r, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) {
        uint64_t b = 0;
        if (r->n > 0) {
            b = *r->p++;
            r->n--;
        }
        v |= b << (8 * i);
    }
    return v;
}

static uint8_t rd_u8(reader_t *r) { return (uint8_t)rd_le(r, 1); }
static int8_t rd_i8(reader_t *r) { return (int8_t)rd_le(r, 1); }
static uint32_t rd_u32(reader_t *r) { return (uint32_t)rd_le(r, 4); }
static int64_t rd_i64(reader_t *r) { return (int64_t)rd_le(r, 8); }

/* Up to n bytes (fewer if the input ends); returns how many were copied, zero-filling the rest of dst. */
static size_t rd_bytes(reader_t *r, uint8_t *dst, size_t n)
{
    size_t k = n < r->n ? n : r->n;
    memcpy(dst, r->p, k);
    memset(dst + k, 0, n - k);
    r->p += k;
    r->n -= k;
    return k;
}

/* ---- the table description -------------------------------------------------------------------------- */

typedef struct {
    uid2_key_spec_t keys[MAX_KEYS];
    uint8_t secrets[MAX_KEYS][MAX_SECRET];
    size_t n_keys, n_groups;
    uid2_site_spec_t sites[MAX_SITES];
    size_t n_sites;
    uid2_bytes_t names[MAX_NAMES];
    uint8_t name_buf[MAX_NAMES][64];
    size_t n_names;
    uid2_table_params_t p;
    int64_t now_us;
    int client;
    unsigned opts;
    int has_domain;
    uint8_t domain[64];
    size_t domain_len;
} desc_t;

enum {
    OPT_BYTES = 1u << 2,       /* mode 0: also the UID2_TOKEN_BYTES call; mode 1: the token is bytes */
    OPT_ALT = 1u << 3,         /* mode 2: v4 text (base64url, no padding); mode 3: a bytes uid */
    OPT_TWO_THREADS = 1u << 4, /* batch of > 512 rows: two threads */
    OPT_ROW_DOMAINS = 1u << 5, /* batch: a domain per row (alternating with None) */
    OPT_UNDECODABLE = 1u << 6, /* mode 0: also the UNDECODABLE claim; mode 3: an undecodable uid */
};

static void read_desc(reader_t *r, desc_t *d, int *mode)
{
    memset(d, 0, sizeof *d);
    *mode = rd_u8(r) % 4;
    d->opts = rd_u8(r);
    static const int clients[4] = {UID2_CLIENT_BIDSTREAM, UID2_CLIENT_SHARING, UID2_CLIENT_BIDSTREAM,
                                   UID2_CLIENT_LEGACY};
    d->client = clients[d->opts & 3];
    d->now_us = rd_i64(r);
    d->p.identity_scope = rd_i8(r);
    d->p.caller_site_state = rd_u8(r) % 3;
    d->p.caller_site_id = rd_u32(r);
    d->p.master_group = rd_i8(r);
    d->p.default_group = rd_i8(r);
    d->p.token_expiry_seconds = rd_i64(r);
    d->p.max_sharing_lifetime_seconds = rd_i64(r);
    d->p.max_bidstream_lifetime_seconds = rd_i64(r);
    d->p.allow_clock_skew_seconds = rd_i64(r);
    d->p.has_latest_expires = rd_u8(r) & 1;
    d->p.latest_expires_us = rd_i64(r);
    d->n_groups = rd_u8(r) % (MAX_KEYS + 1);
    d->n_keys = rd_u8(r) % (MAX_KEYS + 1);
    for (size_t i = 0; i < d->n_keys; i++) {
        uid2_key_spec_t *k = &d->keys[i];
        k->id = rd_u32(r);
        k->id_is_u32 = rd_u8(r) & 1;
        k->site_id = rd_i64(r);
        k->keyset_group = rd_i8(r);
        if (k->keyset_group >= (int32_t)d->n_groups && d->n_groups > 0 && !(k->keyset_group & 0x40))
            k->keyset_group %= (int32_t)d->n_groups; /* mostly valid; sometimes out of range (NULL table) */
        k->activates_us = rd_i64(r);
        k->expires_us = rd_i64(r);
        k->secret_len = rd_u8(r) % (MAX_SECRET + 1);
        rd_bytes(r, d->secrets[i], k->secret_len);
        k->secret = (d->opts & 0x80) && k->secret_len == 0 ? NULL : d->secrets[i];
    }
    d->n_sites = rd_u8(r) % (MAX_SITES + 1);
    for (size_t i = 0; i < d->n_sites; i++) {
        d->sites[i].site_id = rd_u32(r);
        d->sites[i].first_name = rd_u8(r) % (MAX_NAMES + 2);
        d->sites[i].n_names = rd_u8(r) % (MAX_NAMES + 2);
    }
    d->n_names = rd_u8(r) % (MAX_NAMES + 1);
    for (size_t i = 0; i < d->n_names; i++) {
        uint8_t len = rd_u8(r);
        if (len == 0xFF) {
            d->names[i].ptr = NULL;
            d->names[i].len = 0;
            continue;
        }
        len %= 64;
        d->names[i].len = rd_bytes(r, d->name_buf[i], len);
        d->names[i].ptr = d->name_buf[i];
    }
    uint8_t dl = rd_u8(r);
    d->has_domain = dl != 0xFF;
    if (d->has_domain)
        d->domain_len = rd_bytes(r, d->domain, dl % 64);
}

/* ---- exact-size heap copies (so ASan sees every overread) -------------------------------------------- */

static uint8_t *dup_exact(const void *p, size_t n)
{
    uint8_t *q = malloc(n ? n : 1);
    if (q == NULL)
        abort();
    if (n)
        memcpy(q, p, n);
    return q;
}

/* n uninitialised-looking bytes (0xA5) of their own heap block */
static char *alloc_exact(size_t n)
{
    char *q = malloc(n ? n : 1);
    if (q == NULL)
        abort();
    memset(q, 0xA5, n ? n : 1);
    return q;
}

/* ---- base64 for building tokens (independent of the engine's codec) ---------------------------------- */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t b64_encode(const uint8_t *in, size_t n, char *out, int url)
{
    const char *a = url ? B64URL : B64;
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t w = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
        out[o++] = a[w >> 18];
        out[o++] = a[(w >> 12) & 63];
        out[o++] = a[(w >> 6) & 63];
        out[o++] = a[w & 63];
    }
    if (n - i == 1) {
        uint32_t w = (uint32_t)in[i] << 16;
        out[o++] = a[w >> 18];
        out[o++] = a[(w >> 12) & 63];
        if (!url) {
            out[o++] = '=';
            out[o++] = '=';
        }
    } else if (n - i == 2) {
        uint32_t w = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
        out[o++] = a[w >> 18];
        out[o++] = a[(w >> 12) & 63];
        out[o++] = a[(w >> 6) & 63];
        if (!url)
            out[o++] = '=';
    }
    return o;
}

static int b64_val(char c, int url)
{
    const char *a = url ? B64URL : B64;
    const char *f = c ? memchr(a, c, 64) : NULL;
    return f ? (int)(f - a) : -1;
}

/* Strict decode of canonical padded standard base64 (what b64encode produces); -1 if not canonical. */
static ptrdiff_t b64_decode_canonical(const char *in, size_t n, uint8_t *out)
{
    if (n % 4 != 0)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int last = i + 4 == n;
        int v[4];
        for (int j = 0; j < 4; j++) {
            v[j] = b64_val(in[i + j], 0);
            if (v[j] < 0 && !(last && j >= 2 && in[i + j] == '='))
                return -1;
        }
        if (v[2] < 0 && v[3] >= 0)
            return -1;
        uint32_t w = ((uint32_t)v[0] << 18) | ((uint32_t)v[1] << 12) | ((uint32_t)(v[2] < 0 ? 0 : v[2]) << 6) |
                     (uint32_t)(v[3] < 0 ? 0 : v[3]);
        out[o++] = (uint8_t)(w >> 16);
        if (v[2] < 0) {
            if (w & 0xFFFF)
                return -1; /* non-zero padding bits: not what an encoder writes */
            continue;
        }
        out[o++] = (uint8_t)(w >> 8);
        if (v[3] < 0) {
            if (w & 0xFF)
                return -1;
            continue;
        }
        out[o++] = (uint8_t)w;
    }
    return (ptrdiff_t)o;
}

/* ---- AES for building tokens ---------------------------------------------------------------------------- */

static const uint8_t FALLBACK_KEY[32] = "fuzz: a key the table never has";

/* The secret a token made for key id `id` is sealed with: the table's (last key with that id, if its secret
 * is usable), else a key the table does not have. */
static void key_for(const desc_t *d, uint32_t id, const uint8_t **key, size_t *len)
{
    *key = FALLBACK_KEY;
    *len = 32;
    for (size_t i = d->n_keys; i-- > 0;) {
        const uid2_key_spec_t *k = &d->keys[i];
        if (k->id_is_u32 && k->id == id) {
            if (k->secret != NULL && (k->secret_len == 16 || k->secret_len == 24 || k->secret_len == 32)) {
                *key = k->secret;
                *len = k->secret_len;
            }
            return;
        }
    }
}

static const EVP_CIPHER *aes(int gcm, size_t key_len)
{
    if (gcm)
        return key_len == 16 ? EVP_aes_128_gcm() : key_len == 24 ? EVP_aes_192_gcm() : EVP_aes_256_gcm();
    return key_len == 16 ? EVP_aes_128_cbc() : key_len == 24 ? EVP_aes_192_cbc() : EVP_aes_256_cbc();
}

/* out = nonce (12) | ct | tag (16); returns the length. */
static size_t gcm_seal(const uint8_t *key, size_t key_len, const uint8_t nonce[12], const uint8_t *pt, size_t n,
                       uint8_t *out, int corrupt_tag)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int l1 = 0, l2 = 0;
    memcpy(out, nonce, 12);
    if (c == NULL || !EVP_EncryptInit_ex(c, aes(1, key_len), NULL, key, nonce) ||
        (n > 0 && !EVP_EncryptUpdate(c, out + 12, &l1, pt, (int)n)) || !EVP_EncryptFinal_ex(c, out + 12 + l1, &l2) ||
        !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, out + 12 + n))
        abort();
    EVP_CIPHER_CTX_free(c);
    if (corrupt_tag)
        out[12 + n + 15] ^= 1;
    return 12 + n + 16;
}

/* CBC over pt padded per `pad` (0: PKCS7; 1: PKCS7 with a wrong byte; 2: zero fill to a block, none if
 * aligned; 3: a pad value of 0 or 17). Returns the ciphertext length. */
static size_t cbc_seal(const uint8_t *key, size_t key_len, const uint8_t iv[16], const uint8_t *pt, size_t n,
                       int pad, uint8_t *out)
{
    size_t padded = n;
    uint8_t *buf = malloc(n + 32);
    if (buf == NULL)
        abort();
    memcpy(buf, pt, n);
    size_t pv = 16 - n % 16;
    switch (pad) {
    case 0:
    case 1:
        memset(buf + n, (int)pv, pv);
        padded = n + pv;
        if (pad == 1 && pv > 1)
            buf[n] ^= 0x40;
        else if (pad == 1)
            buf[n] = 0;
        break;
    case 2:
        if (n % 16) {
            memset(buf + n, 0, pv);
            padded = n + pv;
        }
        break;
    default:
        memset(buf + n, (n & 1) ? 17 : 0, pv);
        padded = n + pv;
        break;
    }
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int l1 = 0, l2 = 0;
    if (c == NULL || !EVP_EncryptInit_ex(c, aes(0, key_len), NULL, key, iv) || !EVP_CIPHER_CTX_set_padding(c, 0) ||
        (padded > 0 && !EVP_EncryptUpdate(c, out, &l1, buf, (int)padded)) || !EVP_EncryptFinal_ex(c, out + l1, &l2))
        abort();
    EVP_CIPHER_CTX_free(c);
    free(buf);
    return padded;
}

static uint64_t be_read(const uint8_t *p, size_t n, size_t start, size_t end)
{
    uint64_t v = 0;
    for (size_t i = start; i < end && i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* ---- results ----------------------------------------------------------------------------------------- */

static void check_result(const uid2_result_t *r, size_t len, const char *what)
{
    CHECK(r->status >= 0 && r->status <= UID2_STATUS_MALFORMED, "%s: status %d", what, r->status);
    if (r->status == UID2_STATUS_SUCCESS)
        CHECK(r->have & UID2_HAVE_UID, "%s: SUCCESS without a uid", what);
    else
        CHECK(!(r->have & UID2_HAVE_UID), "%s: a uid with status %d", what, r->status);
    if (r->have & UID2_HAVE_UID)
        CHECK(r->uid_len <= UID2_UID_BUF_LEN(len), "%s: uid of %zu chars for a token of %zu", what, r->uid_len,
              len);
    if (r->have & UID2_HAVE_VERSION)
        CHECK(r->version == UID2_VERSION_V2 || r->version == UID2_VERSION_V3 || r->version == UID2_VERSION_V4,
              "%s: version %d", what, r->version);
}

static void same_result(const uid2_result_t *a, const uid2_result_t *b, int compare_uid, const char *what)
{
    CHECK(a->status == b->status && a->have == b->have, "%s: status %d/%d have %#x/%#x", what, a->status,
          b->status, a->have, b->have);
    unsigned h = a->have;
    if (h & UID2_HAVE_UID) {
        CHECK(a->uid_len == b->uid_len, "%s: uid length %zu/%zu", what, a->uid_len, b->uid_len);
        if (compare_uid)
            CHECK(memcmp(a->uid, b->uid, a->uid_len) == 0, "%s: uid differs", what);
    }
    if (h & UID2_HAVE_ESTABLISHED)
        CHECK(a->established_ms == b->established_ms, "%s: established", what);
    if (h & UID2_HAVE_SITE_ID)
        CHECK(a->site_id == b->site_id, "%s: site_id", what);
    if (h & UID2_HAVE_SITE_KEY)
        CHECK(a->site_key_index == b->site_key_index && a->site_key_site_id == b->site_key_site_id,
              "%s: site key", what);
    if (h & UID2_HAVE_IDENTITY_TYPE)
        CHECK(a->identity_type == b->identity_type, "%s: identity_type", what);
    if (h & UID2_HAVE_VERSION)
        CHECK(a->version == b->version, "%s: version", what);
    if (h & UID2_HAVE_CSG)
        CHECK(a->is_client_side_generated == b->is_client_side_generated, "%s: csg", what);
    if (h & UID2_HAVE_EXPIRY)
        CHECK(a->expiry_ms == b->expiry_ms, "%s: expiry", what);
}

/* Scalar decrypt of one token in every way the wrappers call it; *out gets the pool result with a uid
 * buffer (its uid copied into *uid_copy, which the caller frees). */
static void decrypt_all_ways(const uid2_table_t *t, uid2_worker_t *w, const desc_t *d, const uint8_t *tok, size_t len,
                             unsigned flags, uid2_result_t *out, char **uid_copy)
{
    const uint8_t *dom = d->has_domain ? dup_exact(d->domain, d->domain_len) : NULL;
    uint8_t *tk = dup_exact(tok, len);
    char *ub1 = alloc_exact(UID2_UID_BUF_LEN(len));
    char *ub2 = alloc_exact(UID2_UID_BUF_LEN(len));
    uid2_result_t a, b, c;
    uid2_decrypt_token(t, NULL, (const char *)tk, len, flags, d->now_us, d->client, dom, d->domain_len, ub1, &a);
    check_result(&a, len, "pool");
    if (verbose())
        fprintf(stderr, "decrypt: client %d flags %u len %zu -> status %d have %#x uid '%.*s'\n", d->client, flags, len,
                a.status, a.have, (a.have & UID2_HAVE_UID) ? (int)a.uid_len : 0, (a.have & UID2_HAVE_UID) ? a.uid : "");
    if (w != NULL) {
        uid2_decrypt_token(t, w, (const char *)tk, len, flags, d->now_us, d->client, dom, d->domain_len, ub2, &b);
        check_result(&b, len, "worker");
        same_result(&a, &b, 1, "pool vs worker");
    }
    uid2_decrypt_token(t, NULL, (const char *)tk, len, flags, d->now_us, d->client, dom, d->domain_len, NULL, &c);
    CHECK(c.uid == NULL, "no buffer but a uid pointer");
    same_result(&a, &c, 0, "with vs without uid buffer");
    if (g_ref != NULL) {
        uid2_result_t e;
        uid2_decrypt_token(g_ref, NULL, (const char *)tk, len, flags, d->now_us, d->client, dom, d->domain_len, ub2,
                           &e);
        same_result(&a, &e, 1, "fast paths vs reference paths (no_fastpath)");
    }
    if (out != NULL) {
        *out = a;
        *uid_copy = (a.have & UID2_HAVE_UID) ? (char *)dup_exact(a.uid, a.uid_len) : NULL;
        out->uid = *uid_copy;
    }
    free(ub1);
    free(ub2);
    free(tk);
    free((void *)dom);
}

static int ascii(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] >= 0x80)
            return 0;
    return 1;
}

/* The batch API over tokens[0..n) (rows repeated to > 512 for two threads, to BATCH_ROWS_MIN for one); each row
 * must equal the scalar str-token result (a non-ASCII or NULL row: the result of an empty token). */
static void batch_check(const uid2_table_t *t, const desc_t *d, const uid2_bytes_t *tokens, size_t n)
{
    if (n == 0)
        return;
    int threads = (d->opts & OPT_TWO_THREADS) ? 2 : 1;
    size_t rows = threads == 2 ? BATCH_ROWS_2T : n < BATCH_ROWS_MIN ? BATCH_ROWS_MIN : n;
    uid2_bytes_t *in = calloc(rows, sizeof *in);
    uid2_bytes_t *doms = (d->opts & OPT_ROW_DOMAINS) ? calloc(rows, sizeof *doms) : NULL;
    uint8_t *dom = d->has_domain ? dup_exact(d->domain, d->domain_len) : NULL;
    uid2_bytes_t single = {dom, d->domain_len};
    uid2_columns_t c;
    c.status = calloc(rows, 1);
    c.uid = calloc(rows, UID2_UID_WIDTH);
    c.established_ms = calloc(rows, 8);
    c.expiry_ms = calloc(rows, 8);
    c.site_id = calloc(rows, 8);
    c.site_key_site_id = calloc(rows, 8);
    c.identity_type = calloc(rows, 1);
    c.version = calloc(rows, 2);
    c.is_client_side_generated = calloc(rows, 1);
    c.uid_overflow = calloc(rows, 1);
    if (in == NULL || ((d->opts & OPT_ROW_DOMAINS) && doms == NULL) || !c.status || !c.uid || !c.established_ms ||
        !c.expiry_ms || !c.site_id || !c.site_key_site_id || !c.identity_type || !c.version ||
        !c.is_client_side_generated || !c.uid_overflow)
        abort();
    for (size_t i = 0; i < rows; i++) {
        in[i] = tokens[i % n];
        if (doms != NULL && ((i % n) & 1) == 0)
            doms[i] = single; /* row i is row i % n again, domain included */
    }
    const uid2_bytes_t *one_domain = (d->opts & OPT_ROW_DOMAINS) || !d->has_domain ? NULL : &single;
    ptrdiff_t over = uid2_decrypt_many(t, in, rows, doms, one_domain, d->now_us, d->client, &c, threads);
    CHECK(over >= 0, "decrypt_many ran out of memory");
    ptrdiff_t n_over = 0;
    for (size_t i = 0; i < n; i++) {
        const uid2_bytes_t *tk = &in[i];
        const uid2_bytes_t *dm = doms ? &doms[i] : (d->has_domain ? &single : NULL);
        int usable = tk->ptr != NULL && ascii(tk->ptr, tk->len);
        uint8_t *copy = usable ? dup_exact(tk->ptr, tk->len) : NULL;
        char *ub = alloc_exact(UID2_UID_BUF_LEN(usable ? tk->len : 0));
        uid2_result_t r;
        if (t == NULL) {
            r.status = UID2_STATUS_NOT_INITIALIZED;
            r.have = 0;
        } else {
            uid2_decrypt_token(t, NULL, usable ? (const char *)copy : "", usable ? tk->len : 0, 0, d->now_us,
                               d->client, dm ? dm->ptr : NULL, dm ? dm->len : 0, ub, &r);
        }
        int st = r.status == UID2_STATUS_MALFORMED ? UID2_STATUS_INVALID_PAYLOAD : r.status;
        CHECK(c.status[i] == st, "row %zu: status %d, scalar %d", i, c.status[i], r.status);
        unsigned h = r.have;
        int fits = (h & UID2_HAVE_UID) && r.uid_len == UID2_UID_WIDTH && ascii((const uint8_t *)r.uid, r.uid_len);
        if (fits)
            CHECK(memcmp(c.uid + i * UID2_UID_WIDTH, r.uid, UID2_UID_WIDTH) == 0 && !c.uid_overflow[i],
                  "row %zu: uid", i);
        else {
            static const char zero[UID2_UID_WIDTH];
            CHECK(memcmp(c.uid + i * UID2_UID_WIDTH, zero, UID2_UID_WIDTH) == 0, "row %zu: uid not zeroed", i);
            CHECK(c.uid_overflow[i] == ((h & UID2_HAVE_UID) ? 1 : 0), "row %zu: overflow flag", i);
            n_over += c.uid_overflow[i];
        }
        CHECK(c.established_ms[i] == ((h & UID2_HAVE_ESTABLISHED) ? (int64_t)r.established_ms : INT64_MIN),
              "row %zu: established", i);
        CHECK(c.expiry_ms[i] == ((h & UID2_HAVE_EXPIRY) ? (int64_t)r.expiry_ms : INT64_MIN), "row %zu: expiry", i);
        CHECK(c.site_id[i] == ((h & UID2_HAVE_SITE_ID) ? (int64_t)r.site_id : INT64_MIN), "row %zu: site_id", i);
        CHECK(c.site_key_site_id[i] == ((h & UID2_HAVE_SITE_KEY) ? r.site_key_site_id : INT64_MIN), "row %zu: sksi", i);
        CHECK(c.identity_type[i] == ((h & UID2_HAVE_IDENTITY_TYPE) ? r.identity_type : -1),
              "row %zu: identity_type", i);
        CHECK(c.version[i] == ((h & UID2_HAVE_VERSION) ? r.version : -1), "row %zu: version", i);
        CHECK(c.is_client_side_generated[i] == ((h & UID2_HAVE_CSG) ? (r.is_client_side_generated != 0) : -1),
              "row %zu: csg", i);
        free(ub);
        free(copy);
    }
    for (size_t i = n; i < rows; i++) {
        size_t j = i % n;
        n_over += c.uid_overflow[i];
        CHECK(c.status[i] == c.status[j] &&
                  memcmp(c.uid + i * UID2_UID_WIDTH, c.uid + j * UID2_UID_WIDTH, UID2_UID_WIDTH) == 0 &&
                  c.uid_overflow[i] == c.uid_overflow[j] && c.established_ms[i] == c.established_ms[j] &&
                  c.expiry_ms[i] == c.expiry_ms[j] && c.site_id[i] == c.site_id[j] &&
                  c.site_key_site_id[i] == c.site_key_site_id[j] && c.identity_type[i] == c.identity_type[j] &&
                  c.version[i] == c.version[j] && c.is_client_side_generated[i] == c.is_client_side_generated[j],
              "row %zu differs from row %zu (the same token)", i, j);
    }
    CHECK(over == n_over, "overflow count %td, rows flagged %td", over, n_over);
    free(c.status);
    free(c.uid);
    free(c.established_ms);
    free(c.expiry_ms);
    free(c.site_id);
    free(c.site_key_site_id);
    free(c.identity_type);
    free(c.version);
    free(c.is_client_side_generated);
    free(c.uid_overflow);
    free(dom);
    free(doms);
    free(in);
}

/* ---- modes ----------------------------------------------------------------------------------------------- */

static void mode_raw(const uid2_table_t *t, uid2_worker_t *w, const desc_t *d, const uint8_t *p, size_t n)
{
    /* tokens separated by 0xFF (never part of an ASCII token) */
    uid2_bytes_t toks[MAX_TOKENS];
    size_t nt = 0, start = 0;
    for (size_t i = 0; i <= n && nt < MAX_TOKENS; i++) {
        if (i == n || p[i] == 0xFF) {
            toks[nt].ptr = p + start;
            toks[nt].len = i - start;
            nt++;
            start = i + 1;
        }
    }
    for (size_t i = 0; i < nt; i++) {
        const uint8_t *tk = toks[i].ptr;
        size_t len = toks[i].len;
        if (ascii(tk, len))
            decrypt_all_ways(t, w, d, tk, len, 0, NULL, NULL);
        if (d->opts & OPT_BYTES)
            decrypt_all_ways(t, w, d, tk, len, UID2_TOKEN_BYTES, NULL, NULL);
        if (d->opts & OPT_UNDECODABLE) {
            /* a non-ASCII str: `len` characters claimed, only the first 4 (ASCII) are there */
            size_t have = len < 4 ? len : 4;
            uint8_t head[4] = {'!', '!', '!', '!'};
            for (size_t k = 0; k < have; k++)
                head[k] = tk[k] & 0x7F;
            uint8_t *hb = dup_exact(head, have);
            uid2_result_t r;
            uid2_decrypt_token(t, w, (const char *)hb, len, UID2_TOKEN_UNDECODABLE, d->now_us, d->client, NULL, 0, NULL,
                               &r);
            CHECK(r.status != UID2_STATUS_SUCCESS && r.have == 0, "undecodable: status %d have %#x", r.status, r.have);
            uid2_decrypt_token(t, NULL, (const char *)hb, len, UID2_TOKEN_UNDECODABLE | UID2_TOKEN_BYTES, d->now_us,
                               d->client, NULL, 0, NULL, &r);
            CHECK(r.status != UID2_STATUS_SUCCESS, "undecodable bytes: status %d", r.status);
            free(hb);
        }
    }
    batch_check(t, d, toks, nt);
}

/* Feed a built token (binary) as text: standard padded base64 (v2/v3) or base64url without padding (v4). */
static void feed_built(const uid2_table_t *t, uid2_worker_t *w, const desc_t *d, const uint8_t *bin, size_t n,
                       int url, unsigned flags, size_t chop)
{
    char *text = malloc((n + 2) / 3 * 4 + 1);
    if (text == NULL)
        abort();
    size_t tl = b64_encode(bin, n, text, url);
    if (chop > 0 && chop <= tl)
        tl -= chop; /* a truncated token */
    decrypt_all_ways(t, w, d, (const uint8_t *)text, tl, flags, NULL, NULL);
    uid2_bytes_t one = {(const uint8_t *)text, tl};
    batch_check(t, d, &one, 1);
    free(text);
}

static void mode_v2(const uid2_table_t *t, uid2_worker_t *w, const desc_t *d, reader_t *r)
{
    /* token: 0x02 | master key id [1:5] | IV [5:21] | CBC(master payload) */
    uint8_t hdr[40], m[48];
    size_t hl = rd_bytes(r, hdr, rd_u8(r) % sizeof hdr);
    size_t ml = rd_bytes(r, m, rd_u8(r) % sizeof m);
    uint8_t pads = rd_u8(r);
    size_t chop = rd_u8(r) % 8;
    const uint8_t *id = r->p;
    size_t il = r->n;
    uint8_t iv[16], iv2[16];
    memset(iv, 0, 16);
    memset(iv2, 0, 16);
    for (size_t i = 5; i < 21 && i < hl; i++)
        iv[i - 5] = hdr[i];
    for (size_t i = 12; i < 28 && i < ml; i++)
        iv2[i - 12] = m[i];
    const uint8_t *mk, *sk;
    size_t mkl, skl;
    key_for(d, (uint32_t)be_read(hdr, hl, 1, 5), &mk, &mkl);
    key_for(d, (uint32_t)be_read(m, ml, 8, 12), &sk, &skl);
    /* master payload: expires [0:8] | site key id [8:12] | IV [12:28] | CBC(identity) */
    uint8_t *mp = malloc(ml + il + 64);
    uint8_t *bin = malloc(hl + ml + il + 96);
    if (mp == NULL || bin == NULL)
        abort();
    memcpy(mp, m, ml);
    size_t mpl = ml + cbc_seal(sk, skl, iv2, id, il, (pads >> 2) & 3, mp + ml);
    memcpy(bin, hdr, hl);
    size_t bl = hl + cbc_seal(mk, mkl, iv, mp, mpl, pads & 3, bin + hl);
    feed_built(t, w, d, bin, bl, 0, (d->opts & OPT_BYTES) ? UID2_TOKEN_BYTES : 0, chop);
    free(bin);
    free(mp);
}

static void mode_v3(const uid2_table_t *t, uid2_worker_t *w, const desc_t *d, reader_t *r)
{
    /* token: prefix [0] | version [1] | master key id [2:6] | GCM(master payload) */
    uint8_t hdr[24], m[48], n1[12], n2[12];
    size_t hl = rd_bytes(r, hdr, rd_u8(r) % sizeof hdr);
    size_t ml = rd_bytes(r, m, rd_u8(r) % sizeof m);
    rd_bytes(r, n1, 12);
    rd_bytes(r, n2, 12);
    uint8_t tamper = rd_u8(r);
    const uint8_t *sp = r->p;
    size_t sl = r->n;
    const uint8_t *mk, *sk;
    size_t mkl, skl;
    key_for(d, (uint32_t)be_read(hdr, hl, 2, 6), &mk, &mkl);
    key_for(d, (uint32_t)be_read(m, ml, 29, 33), &sk, &skl);
    /* master payload: expires | generated | operator fields | site key id [29:33] | GCM(site payload) */
    uint8_t *mp = malloc(ml + sl + 32);
    uint8_t *bin = malloc(hl + ml + sl + 64);
    if (mp == NULL || bin == NULL)
        abort();
    memcpy(mp, m, ml);
    size_t mpl = ml + gcm_seal(sk, skl, n2, sp, sl, mp + ml, tamper & 1);
    memcpy(bin, hdr, hl);
    size_t bl = hl + gcm_seal(mk, mkl, n1, mp, mpl, bin + hl, tamper & 2);
    feed_built(t, w, d, bin, bl, (d->opts & OPT_ALT) != 0, 0, (tamper >> 2) % 8);
    free(bin);
    free(mp);
}

static int key_ids_unique(const desc_t *d)
{
    for (size_t i = 0; i < d->n_keys; i++)
        for (size_t j = i + 1; j < d->n_keys; j++)
            if (d->keys[i].id_is_u32 && d->keys[j].id_is_u32 && d->keys[i].id == d->keys[j].id)
                return 0;
    return 1;
}

/* A token from uid2_encrypt_token / _many: decrypt it and compare with what went in. */
static void check_roundtrip(const uid2_table_t *t, uid2_worker_t *w, const desc_t *d, const uid2_encrypt_args_t *a,
                            const uint8_t *uid, size_t ul, unsigned uflags, const char *tok, size_t tl)
{
    CHECK(tl > 0 && tl <= uid2_token_max_len(ul), "token of %zu chars for a uid of %zu", tl, ul);
    for (size_t i = 0; i < tl; i++)
        CHECK(b64_val(tok[i], 1) >= 0, "token char %zu is %#x", i, (unsigned)(uint8_t)tok[i]);
    desc_t dd = *d;
    dd.client = UID2_CLIENT_LEGACY; /* no lifetime limit: what the token says is checked below */
    uid2_result_t r;
    char *uidc = NULL;
    decrypt_all_ways(t, w, &dd, (const uint8_t *)tok, tl, 0, &r, &uidc);
    uid2_bytes_t one = {(const uint8_t *)tok, tl};
    batch_check(t, &dd, &one, 1);
    int64_t scope = a->has_scope ? a->scope : d->p.identity_scope;
    /* The cases where a fresh token legitimately does not decrypt: a repeated key id (the encryptor's key
     * is not the one a lookup finds), a scope other than the table's, an expiry less than a second ahead
     * (milliseconds are floored) or near datetime.max (float rounding), an established time near it. */
    const __int128 max_ms = (__int128)UID2_MAX_US / 1000 - 1000;
    __int128 exp_us = (__int128)d->now_us + (__int128)d->p.token_expiry_seconds * 1000000;
    __int128 exp_ms = exp_us / 1000 - (exp_us % 1000 < 0);
    int expect_ok = key_ids_unique(d) && (scope & 1) == d->p.identity_scope && d->p.token_expiry_seconds >= 1 &&
                    exp_ms < max_ms && (__int128)d->now_us / 1000 < max_ms && (__int128)a->established_ms < max_ms;
    if (expect_ok) {
        CHECK(r.status == UID2_STATUS_SUCCESS, "round trip: status %d", r.status);
        CHECK(r.version == UID2_VERSION_V4 && r.site_id == d->p.caller_site_id &&
                  r.established_ms == a->established_ms && r.is_client_side_generated == 0,
              "round trip: fields");
        /* The identity type: a 33-byte raw UID carries it in its metadata byte (bits 2-3); a legacy one is a
         * phone iff its text starts with F or B (a str only). The raw bytes are those of the uid that came back
         * (canonical base64 of what the encryptor decoded). */
        uint8_t *raw = malloc((ul > r.uid_len ? ul : r.uid_len) + 3);
        if (raw == NULL)
            abort();
        ptrdiff_t raw_len = b64_decode_canonical(r.uid, r.uid_len, raw);
        int want_type = raw_len == 33 ? ((raw[0] >> 2) & 3) != 0
                                      : !(uflags & UID2_TOKEN_BYTES) && ul > 0 && (uid[0] == 'F' || uid[0] == 'B');
        CHECK(r.identity_type == want_type, "round trip: identity type %d, expected %d (a raw UID of %td bytes)",
              r.identity_type, want_type, raw_len);
        ptrdiff_t rn = b64_decode_canonical((const char *)uid, ul, raw);
        if (rn >= 0)
            CHECK(r.uid_len == ul && memcmp(r.uid, uid, ul) == 0, "round trip: uid '%.*s' came back as '%.*s'", (int)ul,
                  (const char *)uid, (int)r.uid_len, r.uid);
        else
            CHECK(b64_decode_canonical(r.uid, r.uid_len, raw) >= 0, "round trip: the uid is not canonical base64");
        free(raw);
    }
    free(uidc);
}

static void mode_encrypt(const uid2_table_t *t, uid2_worker_t *w, const desc_t *d, reader_t *r)
{
    uid2_encrypt_args_t a;
    a.has_keyset = rd_u8(r) & 1;
    a.keyset_group = rd_i8(r);
    a.has_scope = rd_u8(r) & 1;
    a.scope = rd_i8(r);
    a.established_ok = rd_u8(r) & 1;
    a.established_ms = (uint64_t)rd_i64(r);
    unsigned uflags = 0;
    if (d->opts & OPT_ALT)
        uflags |= UID2_TOKEN_BYTES;
    if (d->opts & OPT_UNDECODABLE)
        uflags |= UID2_TOKEN_UNDECODABLE;
    size_t ul = r->n;
    uint8_t *uid = dup_exact(r->p, ul);
    if (!(uflags & UID2_TOKEN_BYTES) && !ascii(uid, ul))
        uflags |= UID2_TOKEN_UNDECODABLE; /* the wrappers never pass a non-ASCII str */
    int pre = uid2_encrypt_precheck(t, d->now_us, &a);
    size_t cap = uid2_token_max_len(ul);
    char *out = alloc_exact(cap);
    size_t ol = 99;
    int st = uid2_encrypt_token(t, NULL, (const char *)uid, ul, uflags, d->now_us, &a, out, &ol);
    CHECK(st >= 0 && st <= UID2_ENC_ENCRYPTION_FAILURE, "encrypt status %d", st);
    CHECK(pre == UID2_ENC_SUCCESS ? 1 : st == pre, "precheck %d, encrypt %d", pre, st);
    CHECK(st == UID2_ENC_SUCCESS ? ol > 0 : ol == 0, "status %d with %zu chars", st, ol);
    CHECK(!(uflags & UID2_TOKEN_UNDECODABLE) || st != UID2_ENC_SUCCESS, "an undecodable uid encrypted");
    if (st == UID2_ENC_SUCCESS)
        check_roundtrip(t, w, d, &a, uid, ul, uflags, out, ol);
    if (g_ref != NULL) {
        int st3 = uid2_encrypt_token(g_ref, NULL, (const char *)uid, ul, uflags, d->now_us, &a, out, &ol);
        CHECK(st3 == st, "encrypt on the reference paths %d, fast %d", st3, st);
        if (st3 == UID2_ENC_SUCCESS)
            check_roundtrip(t, w, d, &a, uid, ul, uflags, out, ol);
    }
    if (w != NULL) {
        int st2 = uid2_encrypt_token(t, w, (const char *)uid, ul, uflags, d->now_us, &a, out, &ol);
        CHECK(st2 == st, "encrypt with a worker %d, without %d", st2, st);
        if (st2 == UID2_ENC_SUCCESS)
            check_roundtrip(t, w, d, &a, uid, ul, uflags, out, ol);
    }
    free(out);

    /* batch: the uid, its prefixes and NULL; 1 or 2 threads */
    if (uflags & UID2_TOKEN_BYTES) {
        free(uid);
        return; /* the batch takes text only */
    }
    int threads = (d->opts & OPT_TWO_THREADS) ? 2 : 1;
    size_t rows = threads == 2 ? BATCH_ROWS_2T : 4;
    uid2_bytes_t *u = calloc(rows, sizeof *u);
    size_t *lens = calloc(rows, sizeof *lens);
    char **outs = calloc(rows, sizeof *outs); /* each row's own exact block: a write past one is caught */
    uint8_t *status = calloc(rows, 1);
    if (u == NULL || outs == NULL || lens == NULL || status == NULL)
        abort();
    for (size_t i = 0; i < rows; i++) {
        switch (i % 4) {
        case 0: u[i].ptr = uid; u[i].len = ul; break;
        case 1: u[i].ptr = uid; u[i].len = ul / 2; break;
        case 2: u[i].ptr = NULL; u[i].len = 0; break;
        default: u[i].ptr = uid; u[i].len = ul > 0 ? ul - 1 : 0; break;
        }
        outs[i] = alloc_exact(uid2_token_max_len(u[i].ptr ? u[i].len : 0));
    }
    int rc = uid2_encrypt_many(t, u, rows, d->now_us, &a, status, outs, lens, threads);
    CHECK(rc == 0, "encrypt_many: %d", rc);
    for (size_t i = 0; i < rows && i < 4; i++) {
        CHECK(status[i] <= UID2_ENC_ENCRYPTION_FAILURE, "row %zu: encrypt status %d", i, status[i]);
        if (pre != UID2_ENC_SUCCESS)
            CHECK(status[i] == pre, "row %zu: status %d, precheck %d", i, status[i], pre);
        if (status[i] == UID2_ENC_SUCCESS) {
            int nonascii = u[i].ptr != NULL && !ascii(u[i].ptr, u[i].len);
            CHECK(u[i].ptr != NULL && !nonascii, "row %zu: a NULL or non-ASCII uid encrypted", i);
            check_roundtrip(t, w, d, &a, u[i].ptr, u[i].len, 0, outs[i], lens[i]);
        }
    }
    if (uflags == 0)
        CHECK(status[0] == st, "batch status %d, scalar %d", status[0], st);
    for (size_t i = 4; i < rows; i++)
        CHECK(status[i] == status[i % 4], "row %zu: status %d, row %zu: %d", i, status[i], i % 4, status[i % 4]);
    for (size_t i = 0; i < rows; i++)
        free(outs[i]);
    free(outs);
    free(status);
    free(lens);
    free(u);
    free(uid);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reader_t r = {data, size};
    desc_t d;
    int mode;
    read_desc(&r, &d, &mode);
    uid2_table_t *t = uid2_table_new(d.n_keys ? d.keys : NULL, d.n_keys, d.n_groups, d.n_sites ? d.sites : NULL,
                                     d.n_sites, d.n_names ? d.names : NULL, d.n_names, &d.p);
    /* A table is refused only for out-of-range arguments; then everything is NOT_INITIALIZED. */
    int bad_args = 0;
    for (size_t i = 0; i < d.n_keys; i++)
        bad_args |= d.keys[i].keyset_group >= (int32_t)d.n_groups;
    for (size_t i = 0; i < d.n_sites; i++)
        bad_args |= d.sites[i].first_name > d.n_names || d.sites[i].n_names > d.n_names - d.sites[i].first_name;
    CHECK((t == NULL) == bad_args, "table_new returned %p with bad_args %d", (void *)t, bad_args);
    uid2_worker_t *w = t != NULL ? uid2_worker_new(t) : NULL;
    if (t != NULL) {
        uid2_table_params_t ref = d.p;
        ref.no_fastpath = 1;
        g_ref = uid2_table_new(d.n_keys ? d.keys : NULL, d.n_keys, d.n_groups, d.n_sites ? d.sites : NULL, d.n_sites,
                               d.n_names ? d.names : NULL, d.n_names, &ref);
        CHECK(g_ref != NULL, "the no_fastpath table was refused");
    }
    switch (mode) {
    case 0:
        mode_raw(t, w, &d, r.p, r.n);
        break;
    case 1:
        mode_v2(t, w, &d, &r);
        break;
    case 2:
        mode_v3(t, w, &d, &r);
        break;
    default:
        mode_encrypt(t, w, &d, &r);
        break;
    }
    if (t != NULL) {
        /* lookups over every key id, and the active key of every group at now */
        for (size_t i = 0; i < d.n_keys; i++) {
            if (!d.keys[i].id_is_u32)
                continue;
            ptrdiff_t last = -1;
            for (size_t j = 0; j < d.n_keys; j++)
                if (d.keys[j].id_is_u32 && d.keys[j].id == d.keys[i].id)
                    last = (ptrdiff_t)j;
            CHECK(uid2_table_find(t, d.keys[i].id) == last, "key id %u: index %td, expected %td", d.keys[i].id,
                  uid2_table_find(t, d.keys[i].id), last);
        }
        for (int32_t g = -1; g <= (int32_t)d.n_groups; g++) {
            ptrdiff_t k = uid2_table_active_key(t, g, d.now_us);
            CHECK(k < (ptrdiff_t)d.n_keys, "active key %td", k);
            if (k >= 0)
                CHECK(d.keys[k].keyset_group == g && d.keys[k].activates_us <= d.now_us &&
                          d.now_us < d.keys[k].expires_us,
                      "active key %td of group %d", k, g);
        }
    }
    uid2_worker_free(w);
    uid2_table_free(t);
    uid2_table_free(g_ref);
    g_ref = NULL;
    return 0;
}
