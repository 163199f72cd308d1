/* Microbenchmark of the kernels alone: AES-256-GCM messages of 68 and 129 bytes (the site and master
 * payloads of a v4 token) through OpenSSL EVP (pre-keyed context: the engine's AES before it had its own,
 * kept here as the baseline) and through the AES-NI kernel (uid2_gcm_ni.c); base64url decode of a 218-character v4 token through the exact decoder
 * (uid2_base64.c) and the fast one (uid2_b64fast.c). Built and run by bench_kernels.py.
 *
 * Every kernel's answer is checked before it is timed. Each figure is the median over `runs` runs of
 * back-to-back calls (throughput of independent calls, the batch case), ns per call, with the fastest
 * run in brackets (a loaded machine inflates the median, rarely the minimum). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "uid2_aead.h"
#include "uid2_b64fast.h"
#include "uid2_base64.h"
#include "uid2_engine.h"
#include "uid2_gcm_mb.h"
#include "uid2_gcm_ni.h"

/* OpenSSL's AES-256-GCM with a pre-keyed context (only the IV set per message): the baseline. */
static EVP_CIPHER_CTX *evp_ctx(int enc, const uint8_t *key)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (c != NULL && !(enc ? EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, NULL)
                           : EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, NULL))) {
        EVP_CIPHER_CTX_free(c);
        return NULL;
    }
    return c;
}

/* blob = nonce | ct | tag -> out; 0 or -1 */
static int uid2_gcm_open(EVP_CIPHER_CTX *c, const uint8_t *blob, size_t blob_len, uint8_t *out)
{
    int n1 = 0, n2 = 0, len = (int)(blob_len - 28);
    uint8_t tag[16];
    memcpy(tag, blob + blob_len - 16, 16);
    if (!EVP_DecryptInit_ex(c, NULL, NULL, NULL, blob) || !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag))
        return -1;
    if (len > 0 && !EVP_DecryptUpdate(c, out, &n1, blob + 12, len))
        return -1;
    return EVP_DecryptFinal_ex(c, out + n1, &n2) > 0 ? 0 : -1;
}

/* out = nonce | ct | tag; 0 or -1 */
static int uid2_gcm_seal(EVP_CIPHER_CTX *c, const uint8_t *nonce, const uint8_t *pt, size_t len, uint8_t *out)
{
    int n1 = 0, n2 = 0;
    memcpy(out, nonce, 12);
    if (!EVP_EncryptInit_ex(c, NULL, NULL, NULL, nonce) || (len > 0 && !EVP_EncryptUpdate(c, out + 12, &n1, pt, (int)len)) ||
        !EVP_EncryptFinal_ex(c, out + 12 + n1, &n2))
        return -1;
    return EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, out + 12 + len) == 1 ? 0 : -1;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static volatile uint8_t sink;
static double last_min; /* the fastest run of the last TIME_NS, printed in brackets */

/* The median over runs of ns per call of one kernel invocation; `iters` calls per run. */
#define TIME_NS(result, runs, iters, call)                                                                    \
    do {                                                                                                      \
        double samples_[256];                                                                                  \
        for (int r_ = 0; r_ < (runs); r_++) {                                                                 \
            double t0_ = now_ns();                                                                            \
            for (long i_ = 0; i_ < (iters); i_++) {                                                           \
                call;                                                                                         \
            }                                                                                                 \
            samples_[r_] = (now_ns() - t0_) / (double)(iters);                                                \
        }                                                                                                     \
        qsort(samples_, (size_t)(runs), sizeof(double), cmp_double);                                          \
        (result) = samples_[(runs) / 2];                                                                      \
        last_min = samples_[0];                                                                               \
    } while (0)

static void cpu_name(char *buf, size_t cap)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    snprintf(buf, cap, "unknown CPU");
    if (f == NULL)
        return;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0) {
            char *p = strchr(line, ':');
            if (p != NULL) {
                p += 1 + (p[1] == ' ');
                p[strcspn(p, "\n")] = 0;
                snprintf(buf, cap, "%s", p);
            }
            break;
        }
    fclose(f);
}

static void row(const char *label, double a, double amin, double b, double bmin)
{
    printf("%-38s %10.1f (%5.1f) %10.1f (%5.1f) %7.1fx\n", label, a, amin, b, bmin, b > 0 ? a / b : 0.0);
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 11;
    long iters = argc > 2 ? atol(argv[2]) : 200000;
    const char *token = argc > 3 && argv[3][0] != '\0' ? argv[3] : NULL;
    /* the engine's long run: back-to-back batches for this many seconds, best and median (0: none) */
    double engine_secs = argc > 4 ? atof(argv[4]) : 0.0;
    if (runs < 1 || runs > 255 || iters < 1 || !(engine_secs >= 0.0 && engine_secs <= 600.0)) {
        fprintf(stderr, "usage: bench_kernels [runs (1..255)] [iters] [v4 token or \"\"] [engine seconds (0..600)]\n");
        return 2;
    }
    char cpu[256];
    cpu_name(cpu, sizeof cpu);
    printf("CPU: %s | %s | compiler: gcc %s | ni available: %d\n", cpu, OpenSSL_version(OPENSSL_VERSION),
           __VERSION__, uid2_gcm_ni_available());
    printf("median of %d runs x %ld calls, ns per call\n\n", runs, iters);

    /* ---- GCM --------------------------------------------------------------------------------------- */
    uint8_t key[32], nonce[12], pt[256], blob[12 + 256 + 16], out[256], out2[256], tag[16];
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (uint8_t)(i * 7 + 1);
    for (size_t i = 0; i < sizeof nonce; i++)
        nonce[i] = (uint8_t)(i * 13 + 5);
    for (size_t i = 0; i < sizeof pt; i++)
        pt[i] = (uint8_t)(i * 31 + 3);
    EVP_CIPHER_CTX *dctx = evp_ctx(0, key);
    EVP_CIPHER_CTX *ectx = evp_ctx(1, key);
    uid2_gcm_ni_key *nk = aligned_alloc(16, sizeof *nk);
    int have_ni = uid2_gcm_ni_available();
    if (dctx == NULL || ectx == NULL || nk == NULL || (have_ni && uid2_gcm_ni_key_init(nk, key, 32) != 0)) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    printf("%-38s %18s %18s %8s\n", "AES-256-GCM, no AAD", "EVP (min)", "NI (min)", "EVP/NI");
    static const size_t sizes[] = {68, 129};
    double total_evp = 0, total_ni = 0, ni_68 = 0, ni_129 = 0, m_ni_68 = 0, m_ni_129 = 0, m_evp_68 = 0,
           m_evp_129 = 0;
    for (size_t s = 0; s < 2; s++) {
        size_t len = sizes[s];
        if (uid2_gcm_seal(ectx, nonce, pt, len, blob) != 0) {
            fprintf(stderr, "EVP seal failed\n");
            return 1;
        }
        const uint8_t *ct = blob + 12, *btag = blob + 12 + len;
        if (uid2_gcm_open(dctx, blob, len + 28, out) != 0 || memcmp(out, pt, len) != 0) {
            fprintf(stderr, "EVP open failed\n");
            return 1;
        }
        double evp_d, evp_e, ni_d = 0, ni_e = 0, m_evp_d, m_evp_e, m_ni_d = 0, m_ni_e = 0;
        TIME_NS(evp_d, runs, iters, uid2_gcm_open(dctx, blob, len + 28, out));
        m_evp_d = last_min;
        TIME_NS(evp_e, runs, iters, uid2_gcm_seal(ectx, nonce, pt, len, out2));
        m_evp_e = last_min;
        if (have_ni) {
            if (uid2_gcm_ni_decrypt(nk, nonce, ct, len, btag, out) != 0 || memcmp(out, pt, len) != 0 ||
                uid2_gcm_ni_encrypt(nk, nonce, pt, len, out2, tag) != 0 || memcmp(out2, ct, len) != 0 ||
                memcmp(tag, btag, 16) != 0) {
                fprintf(stderr, "NI kernel disagrees with EVP at %zu bytes\n", len);
                return 1;
            }
            TIME_NS(ni_d, runs, iters, uid2_gcm_ni_decrypt(nk, nonce, ct, len, btag, out));
            m_ni_d = last_min;
            TIME_NS(ni_e, runs, iters, uid2_gcm_ni_encrypt(nk, nonce, pt, len, out2, tag));
            m_ni_e = last_min;
        }
        total_evp += evp_d;
        total_ni += ni_d;
        if (len == 68)
            ni_68 = ni_d, m_ni_68 = m_ni_d, m_evp_68 = m_evp_d;
        else
            ni_129 = ni_d, m_ni_129 = m_ni_d, m_evp_129 = m_evp_d;
        char label[64];
        snprintf(label, sizeof label, "decrypt %zu bytes", len);
        row(label, evp_d, m_evp_d, ni_d, m_ni_d);
        snprintf(label, sizeof label, "encrypt %zu bytes", len);
        row(label, evp_e, m_evp_e, ni_e, m_ni_e);
        sink ^= out[0] ^ out2[0];
    }
    printf("%-38s %18.1f %18.1f %7.1fx\n", "both payloads of a v4 token (decrypt)", total_evp, total_ni,
           total_ni > 0 ? total_evp / total_ni : 0.0);

    /* ---- the multi-buffer kernel: 8 messages per call, each with its own key (16 site keys in a batch) ---- */
    static const char *mb_names[4] = {"", "AES-NI x2", "VAES 256-bit", "VAES 512-bit"};
    double mb_ns[4][2] = {{0}}, mb_min[4][2] = {{0}};
    int mb_best = uid2_gcm_mb_impl();
    if (have_ni) {
        enum { L = 8 };
        uid2_gcm_ni_key *mk = aligned_alloc(16, L * sizeof *mk);
        static uint8_t mct[L][256], mtag[L][16], mout[L][256], mnonce[L][12];
        uint8_t k8[32];
        if (mk == NULL) {
            fprintf(stderr, "setup failed\n");
            return 1;
        }
        printf("\n%-38s %18s %18s %8s\n", "AES-256-GCM decrypt, 8 keys per call", "one by one (min)",
               "multi-buffer (min)", "ratio");
        for (size_t s2 = 0; s2 < 2; s2++) {
            size_t len = sizes[s2];
            uid2_gcm_mb_msg msgs[L];
            for (size_t l = 0; l < L; l++) {
                memcpy(k8, key, 32);
                k8[0] ^= (uint8_t)(l + 1);
                memcpy(mnonce[l], nonce, 12);
                mnonce[l][11] ^= (uint8_t)l;
                EVP_CIPHER_CTX *e = evp_ctx(1, k8);
                if (e == NULL || uid2_gcm_seal(e, mnonce[l], pt, len, blob) != 0 ||
                    uid2_gcm_ni_key_init(&mk[l], k8, 32) != 0) {
                    fprintf(stderr, "multi-buffer setup failed\n");
                    return 1;
                }
                EVP_CIPHER_CTX_free(e);
                memcpy(mct[l], blob + 12, len);
                memcpy(mtag[l], blob + 12 + len, 16);
                msgs[l] = (uid2_gcm_mb_msg){&mk[l], mnonce[l], mct[l], len, mtag[l], mout[l]};
            }
            double one, one_min;
            TIME_NS(one, runs, iters / 8 + 1,
                    for (size_t l = 0; l < L; l++)
                        uid2_gcm_ni_decrypt(&mk[l], mnonce[l], mct[l], len, mtag[l], mout[l]));
            one /= L;
            one_min = last_min / L;
            for (int impl = UID2_GCM_MB_AESNI; impl <= UID2_GCM_MB_VAES512; impl++) {
                if (!uid2_gcm_mb_supported(impl))
                    continue;
                memset(mout, 0, sizeof mout);
                if (uid2_gcm_mb_decrypt_with(impl, msgs, L) != 0) {
                    fprintf(stderr, "multi-buffer kernel %d rejects a message\n", impl);
                    return 1;
                }
                for (size_t l = 0; l < L; l++)
                    if (memcmp(mout[l], pt, len) != 0) {
                        fprintf(stderr, "multi-buffer kernel %d disagrees with EVP at %zu bytes\n", impl, len);
                        return 1;
                    }
                TIME_NS(mb_ns[impl][s2], runs, iters / 8 + 1, uid2_gcm_mb_decrypt_with(impl, msgs, L));
                mb_ns[impl][s2] /= L;
                mb_min[impl][s2] = last_min / L;
                char label[64];
                snprintf(label, sizeof label, "%zu bytes, %s%s", len, mb_names[impl], impl == mb_best ? " *" : "");
                row(label, one, one_min, mb_ns[impl][s2], mb_min[impl][s2]);
            }
            sink ^= mout[0][0];
        }
        printf("(* the one this process uses; ns per message)\n");
        for (size_t l = 0; l < L; l++)
            uid2_gcm_ni_key_wipe(&mk[l]);
        free(mk);
    }
    EVP_CIPHER_CTX_free(dctx);
    EVP_CIPHER_CTX_free(ectx);
    uid2_gcm_ni_key_wipe(nk);
    free(nk);

    /* ---- base64url --------------------------------------------------------------------------------- */
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char synth[219];
    uint32_t x = 12345;
    for (size_t i = 0; i < 218; i++) {
        x = x * 1103515245u + 12345u;
        synth[i] = alphabet[(x >> 16) & 63];
    }
    synth[218] = 0;
    const char *tok = token != NULL ? token : synth;
    size_t tlen = strlen(tok);
    size_t pad = (4 - tlen % 4) % 4;
    uint8_t d1[UID2_B64_DECODED_MAX(4096)], d2[UID2_B64_DECODED_MAX(4096)];
    if (tlen > 4000) {
        fprintf(stderr, "token too long\n");
        return 1;
    }
    ptrdiff_t n1 = uid2_b64_decode((const uint8_t *)tok, tlen, pad, 1, d1);
    size_t n2 = 0;
    if (n1 < 0 || uid2_b64fast_decode(tok, tlen, d2, &n2, 1) != 0 || (size_t)n1 != n2 || memcmp(d1, d2, n2)) {
        fprintf(stderr, "base64 decoders disagree on the token\n");
        return 1;
    }
    double b_exact, b_fast, m_exact, m_fast;
    TIME_NS(b_exact, runs, iters, uid2_b64_decode((const uint8_t *)tok, tlen, pad, 1, d1));
    m_exact = last_min;
    TIME_NS(b_fast, runs, iters, uid2_b64fast_decode(tok, tlen, d2, &n2, 1));
    m_fast = last_min;
    sink ^= d1[0] ^ d2[0];
    char label[64];
    snprintf(label, sizeof label, "base64url decode, %zu chars%s", tlen, token != NULL ? "" : " (synthetic)");
    printf("\n%-38s %18s %18s %8s\n", "", "exact (min)", "fast (min)", "ratio");
    row(label, b_exact, m_exact, b_fast, m_fast);

    /* the raw UID of a v3/v4 token back to text: 32 bytes -> 44 characters */
    char e1[64], e2[64];
    if (uid2_b64_encode(pt, 32, e1) != 44 || uid2_b64fast_encode(pt, 32, e2, 0) != 44 || memcmp(e1, e2, 44) != 0) {
        fprintf(stderr, "base64 encoders disagree\n");
        return 1;
    }
    double e_exact, e_fast, me_exact, me_fast;
    TIME_NS(e_exact, runs, iters, uid2_b64_encode(pt, 32, e1));
    me_exact = last_min;
    TIME_NS(e_fast, runs, iters, uid2_b64fast_encode(pt, 32, e2, 0));
    me_fast = last_min;
    sink ^= (uint8_t)(e1[0] ^ e2[0]);
    row("base64 encode, 32 bytes (the raw UID)", e_exact, me_exact, e_fast, me_fast);

    /* ---- the engine: a batch of distinct v4 tokens on one thread (no Python) -------------------------- */
    size_t nt = (size_t)(iters < 2000 ? 2000 : iters > 20000 ? 20000 : iters);
    /* one master key and SITES site keys (each its own keyset), tokens spread over the sites at random as in
     * bidstream traffic (uid2fast._bench does the same) */
    enum { SITES = 16 };
    static uint8_t secrets[1 + SITES][32];
    uid2_key_spec_t keys[1 + SITES];
    for (size_t k = 0; k < 1 + SITES; k++) {
        for (size_t i = 0; i < 32; i++)
            secrets[k][i] = (uint8_t)(i * (2 * k + 5) + 7 * k + 3);
        keys[k] = (uid2_key_spec_t){.id = (uint32_t)(1 + k), .id_is_u32 = 1, .site_id = -1,
                                    .keyset_group = (int32_t)k, .activates_us = 0, .expires_us = INT64_MAX,
                                    .secret = secrets[k], .secret_len = 32};
    }
    const int64_t now = INT64_C(1780315200000000);
    /* the limits a key set gets from the operator (3 days bidstream lifetime, 30 min skew) */
    uid2_table_params_t p = {.identity_scope = 0, .caller_site_state = UID2_OPT_OK, .caller_site_id = 1001,
                             .master_group = 0, .default_group = 1, .token_expiry_seconds = 3600,
                             .max_sharing_lifetime_seconds = 2592000, .max_bidstream_lifetime_seconds = 259200,
                             .allow_clock_skew_seconds = 1800, .has_latest_expires = 1,
                             .latest_expires_us = INT64_MAX};
    uid2_table_t *t = uid2_table_new(keys, 1 + SITES, 1 + SITES, NULL, 0, NULL, 0, &p);
    /* two corpora over the same keys and sites: legacy 32-byte raw UIDs, and the operator's current 33-byte
     * ones (a metadata byte, then 32 hash bytes) */
    uid2_bytes_t *toks = calloc(nt, sizeof *toks), *toks33 = calloc(nt, sizeof *toks33);
    char *tbuf = malloc(nt * 256), *tbuf33 = malloc(nt * 256);
    char *want = malloc(nt * UID2_UID_WIDTH), *want33 = malloc(nt * UID2_UID_WIDTH);
    uid2_columns_t c = {.status = malloc(nt), .uid = malloc(nt * UID2_UID_WIDTH), .established_ms = malloc(nt * 8),
                        .expiry_ms = malloc(nt * 8), .site_id = malloc(nt * 8), .site_key_site_id = malloc(nt * 8),
                        .identity_type = malloc(nt), .version = malloc(nt * 2),
                        .is_client_side_generated = malloc(nt), .uid_overflow = malloc(nt)};
    if (t == NULL || toks == NULL || tbuf == NULL || toks33 == NULL || tbuf33 == NULL || want == NULL ||
        want33 == NULL || c.status == NULL || c.uid == NULL || c.established_ms == NULL || c.expiry_ms == NULL ||
        c.site_id == NULL || c.site_key_site_id == NULL || c.identity_type == NULL || c.version == NULL ||
        c.is_client_side_generated == NULL || c.uid_overflow == NULL) {
        fprintf(stderr, "engine setup failed\n");
        return 1;
    }
    uid2_encrypt_args_t ea = {.established_ok = 1, .established_ms = 1780315200000, .has_keyset = 1};
    for (size_t i = 0; i < nt; i++) {
        x = x * 1103515245u + 12345u;
        ea.keyset_group = (int32_t)(1 + (x >> 16) % SITES);
        uint8_t raw[33];
        char uid[48];
        raw[0] = 0x0C; /* scope 0, type 3 << 2 as the operator's v4 metadata byte lays it out */
        for (size_t j = 1; j < 33; j++) {
            x = x * 1103515245u + 12345u;
            raw[j] = (uint8_t)(x >> 16);
        }
        for (int w33 = 0; w33 < 2; w33++) {
            char *buf = (w33 ? tbuf33 : tbuf) + i * 256;
            size_t tl = 0, ul = uid2_b64_encode(w33 ? raw : raw + 1, w33 ? 33 : 32, uid);
            if (ul != UID2_UID_WIDTH || uid2_encrypt_token(t, NULL, uid, ul, 0, now, &ea, buf, &tl) != UID2_ENC_SUCCESS) {
                fprintf(stderr, "engine: encrypt failed\n");
                return 1;
            }
            memcpy((w33 ? want33 : want) + i * UID2_UID_WIDTH, uid, UID2_UID_WIDTH);
            (w33 ? toks33 : toks)[i] = (uid2_bytes_t){(const uint8_t *)buf, tl};
        }
    }
    /* bid logs carry a domain on every row (these tokens are not client-side generated: it is not compared) */
    static const char dom_name[] = "example.com";
    const uid2_bytes_t dom = {(const uint8_t *)dom_name, sizeof dom_name - 1};
    for (int w33 = 0; w33 < 2; w33++) {
        memset(c.status, 0xFF, nt);
        if (uid2_decrypt_many(t, w33 ? toks33 : toks, nt, NULL, &dom, now, UID2_CLIENT_BIDSTREAM, &c, 1) != 0 ||
            memcmp(c.uid, w33 ? want33 : want, nt * UID2_UID_WIDTH) != 0) {
            fprintf(stderr, "engine: decrypt failed (%d-byte raw UIDs)\n", 32 + w33);
            return 1;
        }
        for (size_t i = 0; i < nt; i++)
            if (c.status[i] != UID2_STATUS_SUCCESS) {
                fprintf(stderr, "engine: row %zu not SUCCESS (%d-byte raw UIDs)\n", i, 32 + w33);
                return 1;
            }
    }
    /* the two corpora alternate run by run, so their ratio is taken over the same stretch of load */
    int eruns = runs < 31 ? runs : 31;
    double e32[64], e33[64];
    for (int r = 0; r < eruns; r++) {
        double t0 = now_ns();
        uid2_decrypt_many(t, toks, nt, NULL, &dom, now, UID2_CLIENT_BIDSTREAM, &c, 1);
        double t1 = now_ns();
        uid2_decrypt_many(t, toks33, nt, NULL, &dom, now, UID2_CLIENT_BIDSTREAM, &c, 1);
        e32[r] = (t1 - t0) / (double)nt;
        e33[r] = (now_ns() - t1) / (double)nt;
    }
    qsort(e32, (size_t)eruns, sizeof(double), cmp_double);
    qsort(e33, (size_t)eruns, sizeof(double), cmp_double);
    double engine_ns = e32[eruns / 2], engine_min = e32[0], engine33 = e33[eruns / 2], engine33_min = e33[0];
    /* the GCM the engine uses here: the kernel, or EVP on a CPU without it */
    double kernels = (have_ni ? total_ni : total_evp) + b_fast;
    double kernels_min = (have_ni ? m_ni_68 + m_ni_129 : m_evp_68 + m_evp_129) + m_fast;
    printf("\nv4 token (%zu chars, payloads of 129 and 68 bytes), a batch of %zu distinct tokens from %d sites, "
           "a domain on every row, one thread:\n", tlen, nt, (int)SITES);
    printf("  kernel sum: base64url decode + GCM 129 + GCM 68     %7.1f ns (min %.1f)\n", kernels, kernels_min);
    printf("  ... + base64 encode of the raw UID                  %7.1f ns (min %.1f)\n", kernels + e_fast,
           kernels_min + me_fast);
    printf("  engine, uid2_decrypt_many (C, no Python)            %7.1f ns (min %.1f) = %.2fx the kernel sum\n",
           engine_ns, engine_min, engine_ns / kernels);
    printf("  engine, 33-byte raw UIDs (219 chars)                %7.1f ns (min %.1f) = %.2fx the 32-byte "
           "tokens (min/min %.2fx)\n", engine33, engine33_min, engine33 / engine_ns, engine33_min / engine_min);
    if (engine_secs > 0) {
        /* On a VM whose vCPU shares a core with a neighbour's, a batch runs at full speed only while the sibling
         * is quiet: many short batches, back to back, catch those moments (the best) and the typical one (the
         * median). 33-byte raw UIDs, the operator's current shape. */
        size_t cap = 1024, nr = 0;
        double *ts = malloc(cap * sizeof *ts);
        double t_end = now_ns() + engine_secs * 1e9;
        while (ts != NULL && now_ns() < t_end) {
            if (nr == cap) {
                double *more = realloc(ts, 2 * cap * sizeof *ts);
                if (more == NULL)
                    break;
                ts = more;
                cap *= 2;
            }
            double t0 = now_ns();
            uid2_decrypt_many(t, toks33, nt, NULL, &dom, now, UID2_CLIENT_BIDSTREAM, &c, 1);
            ts[nr++] = (now_ns() - t0) / (double)nt;
        }
        if (nr > 0) {
            qsort(ts, nr, sizeof(double), cmp_double);
            printf("  engine, 33-byte raw UIDs, %zu batches over %.1f s     best %.1f ns, median %.1f ns\n", nr,
                   engine_secs, ts[0], ts[nr / 2]);
            printf("ENGINE_LONG best=%.2f median=%.2f batches=%zu\n", ts[0], ts[nr / 2], nr);
        }
        free(ts);
    }
    printf("  (GCM in the engine: %s)\n", mb_best != UID2_GCM_MB_NONE ? mb_names[mb_best]
                                           : have_ni ? "one message at a time (UID2FAST_NO_MULTIBUF or no VAES)" : "EVP");
    /* machine-readable, for bench_kernels.py */
    printf("KERNELS ni=%d gcm68=%.2f gcm129=%.2f b64=%.2f enc=%.2f sum=%.2f summin=%.2f engine=%.2f "
           "enginemin=%.2f engine33=%.2f engine33min=%.2f mb=%d mb68=%.2f mb129=%.2f\n",
           have_ni, ni_68, ni_129, b_fast, e_fast, kernels, kernels_min, engine_ns, engine_min, engine33,
           engine33_min, mb_best, mb_ns[mb_best][0], mb_ns[mb_best][1]);
    uid2_table_free(t);
    free(toks33), free(tbuf33), free(want), free(want33);
    free(toks), free(tbuf), free(c.status), free(c.uid), free(c.established_ms), free(c.expiry_ms), free(c.site_id);
    free(c.site_key_site_id), free(c.identity_type), free(c.version), free(c.is_client_side_generated);
    free(c.uid_overflow);
    return 0;
}
