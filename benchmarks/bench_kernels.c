/* Microbenchmark of the kernels alone: AES-256-GCM messages of 68 and 129 bytes (the site and master
 * payloads of a v4 token) through the engine's EVP path (uid2_aead.c, pre-keyed context) and through the
 * AES-NI kernel (uid2_gcm_ni.c); base64url decode of a 218-character v4 token through the exact decoder
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

#include "uid2_aead.h"
#include "uid2_b64fast.h"
#include "uid2_base64.h"
#include "uid2_gcm_ni.h"

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
    const char *token = argc > 3 ? argv[3] : NULL;
    if (runs < 1 || runs > 255 || iters < 1) {
        fprintf(stderr, "usage: bench_kernels [runs (1..255)] [iters] [v4 token]\n");
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
    EVP_CIPHER_CTX *dctx = uid2_aead_ctx_new(UID2_AEAD_GCM_DECRYPT, key, 32);
    EVP_CIPHER_CTX *ectx = uid2_aead_ctx_new(UID2_AEAD_GCM_ENCRYPT, key, 32);
    uid2_gcm_ni_key *nk = aligned_alloc(16, sizeof *nk);
    int have_ni = uid2_gcm_ni_available();
    if (dctx == NULL || ectx == NULL || nk == NULL || (have_ni && uid2_gcm_ni_key_init(nk, key, 32) != 0)) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    printf("%-38s %18s %18s %8s\n", "AES-256-GCM, no AAD", "EVP (min)", "NI (min)", "EVP/NI");
    static const size_t sizes[] = {68, 129};
    double total_evp = 0, total_ni = 0;
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
        char label[64];
        snprintf(label, sizeof label, "decrypt %zu bytes", len);
        row(label, evp_d, m_evp_d, ni_d, m_ni_d);
        snprintf(label, sizeof label, "encrypt %zu bytes", len);
        row(label, evp_e, m_evp_e, ni_e, m_ni_e);
        sink ^= out[0] ^ out2[0];
    }
    printf("%-38s %18.1f %18.1f %7.1fx\n", "both payloads of a v4 token (decrypt)", total_evp, total_ni,
           total_ni > 0 ? total_evp / total_ni : 0.0);
    uid2_aead_ctx_free(dctx);
    uid2_aead_ctx_free(ectx);
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
    return 0;
}
