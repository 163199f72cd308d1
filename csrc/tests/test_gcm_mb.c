/* Test harness for the multi-buffer kernel (uid2_gcm_mb.c), built by tests/test_gcm_mb.py into a shared
 * library with -lcrypto and driven through ctypes (or, with -DUID2_MB_MAIN, an executable for the
 * sanitizers). OpenSSL EVP is the reference: every message of every case is sealed by EVP and must come back
 * from the kernel, lane by lane. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "uid2_gcm_mb.h"
#include "uid2_gcm_ni.h"

#define EXPORT __attribute__((visibility("default")))

EXPORT int t_mb_supported(int impl)
{
    return uid2_gcm_mb_supported(impl);
}

EXPORT int t_mb_impl(void)
{
    return uid2_gcm_mb_impl();
}

/* n messages of len bytes, laid out back to back: keys (32 bytes each), nonces (12), cts (len), tags (16);
 * out receives n * len bytes. Keys are expanded here. Returns the failure mask, or UINT32_MAX - 1 when keys
 * cannot be set up. `in_place`: decrypt in the cts buffer (then copied to out). */
EXPORT uint32_t t_mb_open(int impl, size_t n, size_t len, const uint8_t *keys, size_t key_len, const uint8_t *nonces,
                          uint8_t *cts, const uint8_t *tags, uint8_t *out, int in_place)
{
    if (n > UID2_GCM_MB_MAX_MSGS)
        return UINT32_MAX - 1;
    uid2_gcm_ni_key *k = aligned_alloc(16, (n ? n : 1) * sizeof *k);
    uid2_gcm_mb_msg m[UID2_GCM_MB_MAX_MSGS];
    if (k == NULL)
        return UINT32_MAX - 1;
    for (size_t i = 0; i < n; i++) {
        if (uid2_gcm_ni_key_init(&k[i], keys + i * key_len, key_len) != 0) {
            free(k);
            return UINT32_MAX - 1;
        }
        m[i] = (uid2_gcm_mb_msg){&k[i], nonces + 12 * i, cts + len * i, len, tags + 16 * i,
                                 in_place ? cts + len * i : out + len * i};
    }
    uint32_t bad = impl == 0 ? uid2_gcm_mb_decrypt(m, n) : uid2_gcm_mb_decrypt_with(impl, m, n);
    if (in_place && n * len > 0)
        memcpy(out, cts, n * len);
    for (size_t i = 0; i < n; i++)
        uid2_gcm_ni_key_wipe(&k[i]);
    free(k);
    return bad;
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void fill(uint64_t *s, uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)splitmix(s);
}

static int evp_seal(EVP_CIPHER_CTX *c, const uint8_t *key, size_t key_len, const uint8_t *nonce, const uint8_t *pt,
                    size_t len, uint8_t *ct, uint8_t *tag)
{
    const EVP_CIPHER *cipher = key_len == 16 ? EVP_aes_128_gcm() : key_len == 24 ? EVP_aes_192_gcm()
                                                                                  : EVP_aes_256_gcm();
    int n = 0;
    if (!EVP_EncryptInit_ex(c, cipher, NULL, key, nonce))
        return -1;
    if (len > 0 && !EVP_EncryptUpdate(c, ct, &n, pt, (int)len))
        return -1;
    if (!EVP_EncryptFinal_ex(c, ct + len, &n))
        return -1;
    return EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1 ? 0 : -1;
}

typedef struct {
    uint8_t key[32];
    size_t key_len, len;
    uint8_t nonce[12];
    uint8_t tag[16];
    uint8_t *pt, *ct, *out; /* exact-size heap buffers (AddressSanitizer sees any access past a message) */
    uid2_gcm_ni_key *k;
} lane_t;

/* Runs the kernel over lanes[0 .. n) and checks: the mask is `expect_bad`, every other lane decrypted to its
 * plaintext, every failed lane's output zeroed. 0 if all holds. */
static int check_run(int impl, lane_t *ln, size_t n, uint32_t expect_bad, int in_place, char *err, size_t errcap,
                     long case_no)
{
    uid2_gcm_mb_msg m[UID2_GCM_MB_MAX_MSGS] = {{0}};
    uint8_t *saved[UID2_GCM_MB_MAX_MSGS] = {0};
    for (size_t i = 0; i < n; i++) {
        size_t len = ln[i].len;
        if (in_place) { /* decrypt a copy of the ciphertext in place */
            saved[i] = malloc(len + 1);
            if (saved[i] == NULL)
                abort();
            memcpy(saved[i], ln[i].ct, len);
        }
        memset(ln[i].out, 0xAA, len);
        m[i] = (uid2_gcm_mb_msg){ln[i].k, ln[i].nonce, in_place ? saved[i] : ln[i].ct, len, ln[i].tag,
                                 in_place ? saved[i] : ln[i].out};
    }
    uint32_t bad = uid2_gcm_mb_decrypt_with(impl, m, n);
    int rc = 0;
    if (bad != expect_bad) {
        snprintf(err, errcap, "case %ld impl %d: %zu msgs (the first of %zu bytes): mask %#x, expected %#x", case_no,
                 impl, n, ln[0].len, bad, expect_bad);
        rc = 1;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t len = ln[i].len;
        const uint8_t *got = in_place ? saved[i] : ln[i].out;
        if ((expect_bad >> i) & 1u) {
            for (size_t j = 0; j < len; j++)
                if (got[j] != 0) {
                    snprintf(err, errcap, "case %ld impl %d: lane %zu failed but its output is not zeroed", case_no,
                             impl, i);
                    rc = 1;
                    break;
                }
        } else if (len > 0 && memcmp(got, ln[i].pt, len) != 0) {
            snprintf(err, errcap, "case %ld impl %d: lane %zu of %zu (%zu bytes, key %zu) decrypted wrongly",
                     case_no, impl, i, n, len, ln[i].key_len);
            rc = 1;
        }
    }
    for (size_t i = 0; i < n; i++)
        free(saved[i]);
    return rc;
}

/* n random cases: 1..8 messages (every 8th case up to 32) of random lengths in [min_len, max_len] (a third of
 * the cases one length for all, a third one block count for all, a third any lengths), AES-256
 * keys (one case in 8 mixes in 128/192-bit keys, which go one by one; one in 4 gives all lanes one key),
 * a random subset of lanes corrupted (a bit of nonce, ciphertext or tag flipped), a quarter decrypted in
 * place. Every flip_every-th case (no lane corrupted up front) then flips every bit of every lane's nonce,
 * ciphertext and tag, one at a time: exactly that lane must fail, zeroed, and every other lane must still
 * decrypt. Returns the number of failing cases (the first described in err); *flipped counts the cases that
 * had the bit flips. */
EXPORT long t_mb_differential(int impl, uint64_t seed, long n_cases, size_t min_len, size_t max_len, long flip_every,
                              long *flipped, char *err, size_t errcap)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    uid2_gcm_ni_key *keys = aligned_alloc(16, UID2_GCM_MB_MAX_MSGS * sizeof *keys);
    if (c == NULL || keys == NULL) {
        snprintf(err, errcap, "out of memory");
        return 1;
    }
    long failures = 0, flips = 0;
    uint64_t s = seed;
    for (long cn = 0; cn < n_cases; cn++) {
        uint64_t r = splitmix(&s);
        size_t n = (cn % 8 == 7) ? 1 + (size_t)(r % UID2_GCM_MB_MAX_MSGS) : 1 + (size_t)(r % 8);
        size_t len0 = min_len + (size_t)(splitmix(&s) % (max_len - min_len + 1));
        int shape = (int)((r >> 16) % 3); /* 0: one length, 1: one block count, 2: any lengths */
        int mixed_keys = (r >> 8) % 8 == 0, one_key = (r >> 11) % 4 == 0, in_place = (r >> 13) % 4 == 0;
        lane_t ln[UID2_GCM_MB_MAX_MSGS];
        uint32_t expect_bad = 0;
        const int flip_case = flip_every > 0 && cn % flip_every == 0; /* no lane corrupted up front */
        for (size_t i = 0; i < n; i++) {
            lane_t *L = &ln[i];
            uint64_t q = splitmix(&s);
            L->key_len = mixed_keys ? (q % 3 == 0 ? 16 : q % 3 == 1 ? 24 : 32) : 32;
            if (one_key && i > 0) {
                L->key_len = ln[0].key_len;
                memcpy(L->key, ln[0].key, 32);
            } else {
                fill(&s, L->key, L->key_len);
            }
            fill(&s, L->nonce, 12);
            size_t len = len0;
            if (shape == 2) {
                len = min_len + (size_t)(q % (max_len - min_len + 1));
            } else if (shape == 1 && len0 > 0) { /* a length with len0's block count, within the range */
                size_t lo = (len0 - 1) / 16 * 16 + 1, hi = lo + 15;
                lo = lo < min_len ? min_len : lo;
                hi = hi > max_len ? max_len : hi;
                len = lo + (size_t)((q >> 40) % (hi - lo + 1));
            }
            L->len = len;
            L->pt = malloc(len + 1);
            L->ct = malloc(len + 1);
            L->out = malloc(len + 1);
            /* one key: mostly one key object for every lane (the kernel's broadcast path), sometimes a copy
             * per lane (the gather path with equal keys) */
            L->k = one_key && i > 0 && (r >> 20) % 4 != 0 ? &keys[0] : &keys[i];
            if (L->pt == NULL || L->ct == NULL || L->out == NULL)
                abort();
            fill(&s, L->pt, len);
            if (evp_seal(c, L->key, L->key_len, L->nonce, L->pt, len, L->ct, L->tag) != 0 ||
                (L->k == &keys[i] && uid2_gcm_ni_key_init(L->k, L->key, L->key_len) != 0)) {
                snprintf(err, errcap, "case %ld: setup failed", cn);
                failures++;
                n = i + 1;
                goto cleanup;
            }
            if (!flip_case && (q >> 8) % 5 == 0) { /* corrupt this lane */
                size_t bits = 8 * (12 + len + 16), b = (size_t)((q >> 16) % bits);
                uint8_t *p = b < 96 ? L->nonce : b < 96 + 8 * len ? L->ct : L->tag;
                size_t off = b < 96 ? b : b < 96 + 8 * len ? b - 96 : b - 96 - 8 * len;
                p[off / 8] ^= (uint8_t)(1u << (off % 8));
                expect_bad |= 1u << i;
            }
        }
        if (check_run(impl, ln, n, expect_bad, in_place, err, errcap, cn) != 0) {
            failures++;
            goto cleanup;
        }
        if (flip_case) {
            flips++;
            for (size_t i = 0; i < n; i++) {
                size_t len = ln[i].len, bits = 8 * (12 + len + 16);
                for (size_t b = 0; b < bits; b++) {
                    uint8_t *p = b < 96 ? ln[i].nonce : b < 96 + 8 * len ? ln[i].ct : ln[i].tag;
                    size_t off = b < 96 ? b : b < 96 + 8 * len ? b - 96 : b - 96 - 8 * len;
                    p[off / 8] ^= (uint8_t)(1u << (off % 8));
                    int bad = check_run(impl, ln, n, 1u << i, 0, err, errcap, cn);
                    p[off / 8] ^= (uint8_t)(1u << (off % 8));
                    if (bad) {
                        size_t e = strlen(err);
                        snprintf(err + e, errcap - e, " (bit %zu of lane %zu flipped)", b, i);
                        failures++;
                        goto cleanup;
                    }
                }
            }
        }
    cleanup:
        for (size_t i = 0; i < n; i++) {
            free(ln[i].pt), free(ln[i].ct), free(ln[i].out);
            uid2_gcm_ni_key_wipe(ln[i].k);
        }
    }
    *flipped = flips;
    EVP_CIPHER_CTX_free(c);
    free(keys);
    return failures;
}

#ifdef UID2_MB_MAIN
int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 2000;
    long total = 0;
    for (int impl = UID2_GCM_MB_AESNI; impl <= UID2_GCM_MB_VAES512; impl++) {
        if (!uid2_gcm_mb_supported(impl)) {
            printf("impl %d: not supported here\n", impl);
            continue;
        }
        char err[512] = "";
        long flipped = 0;
        long f = t_mb_differential(impl, 99 + (uint64_t)impl, n, 0, 200, 50, &flipped, err, sizeof err);
        printf("impl %d: %ld cases, %ld with every bit flipped, %ld failures %s\n", impl, n, flipped, f, err);
        total += f;
    }
    printf("total: %ld failures\n", total);
    return total != 0;
}
#endif
