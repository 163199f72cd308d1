/* Test harness for the fast kernels (uid2_gcm_ni.c, uid2_b64fast.c), built by tests/test_gcm_ni.py into a
 * shared library with -lcrypto and driven through ctypes. The differential loops run here, in C, so a
 * million cases take seconds: every case is checked against OpenSSL EVP, the reference. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "uid2_b64fast.h"
#include "uid2_base64.h"
#include "uid2_gcm_ni.h"

#define EXPORT __attribute__((visibility("default")))

EXPORT size_t t_key_size(void)
{
    return sizeof(uid2_gcm_ni_key);
}

/* A 16-byte aligned key for the ctypes side (uid2_gcm_ni_key is declared aligned). */
EXPORT uid2_gcm_ni_key *t_key_new(void)
{
    return aligned_alloc(16, sizeof(uid2_gcm_ni_key));
}

EXPORT void t_key_free(uid2_gcm_ni_key *k)
{
    if (k != NULL)
        uid2_gcm_ni_key_wipe(k);
    free(k);
}

/* The CPU check without the UID2FAST_NO_FASTPATH switch: the kernel is tested wherever it can run
 * (never in a UID2_FASTPATH_GENERIC build, which has no kernel). */
#if defined(__x86_64__) && !defined(UID2_FASTPATH_GENERIC)
#include <cpuid.h>
EXPORT int t_cpu_has_ni(void)
{
    unsigned a = 0, b = 0, c = 0, d = 0;
    const unsigned need = (1u << 1) | (1u << 9) | (1u << 19) | (1u << 25);
    return __get_cpuid(1, &a, &b, &c, &d) && (c & need) == need;
}
#else
EXPORT int t_cpu_has_ni(void)
{
    return 0;
}
#endif

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

static const EVP_CIPHER *gcm_cipher(size_t key_len)
{
    return key_len == 16 ? EVP_aes_128_gcm() : key_len == 24 ? EVP_aes_192_gcm() : EVP_aes_256_gcm();
}

/* OpenSSL's answer: ct and the 16-byte tag. 0 or -1. */
static int evp_seal(EVP_CIPHER_CTX *c, const uint8_t *key, size_t key_len, const uint8_t *nonce,
                    const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t len, uint8_t *ct, uint8_t *tag)
{
    int n = 0;
    if (!EVP_EncryptInit_ex(c, gcm_cipher(key_len), NULL, key, nonce))
        return -1;
    if (aad_len > 0 && !EVP_EncryptUpdate(c, NULL, &n, aad, (int)aad_len))
        return -1;
    if (len > 0 && !EVP_EncryptUpdate(c, ct, &n, pt, (int)len))
        return -1;
    if (!EVP_EncryptFinal_ex(c, ct + len, &n))
        return -1;
    return EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1 ? 0 : -1;
}

static int all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

#define FAIL(...)                                                                                             \
    do {                                                                                                      \
        if (failures++ == 0)                                                                                  \
            snprintf(err, errcap, __VA_ARGS__);                                                               \
        goto next;                                                                                            \
    } while (0)

/* n random cases from seed: key size 16/24/32 (half of them 32), random key and nonce, length uniform in
 * [min_len, max_len], a quarter with 0..48 bytes of AAD (through the _ex functions). Each case checks
 *   encrypt == EVP (ciphertext and tag), decrypt(EVP output) == plaintext, both in place as well;
 * every flip_every-th case also flips every bit of nonce, ciphertext and tag one at a time: each must be
 * rejected with `out` zeroed. Returns the number of failing cases (the first described in err). */
EXPORT long t_gcm_differential(uint64_t seed, long n, size_t min_len, size_t max_len, long flip_every,
                               long *flipped_cases, char *err, size_t errcap)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    uid2_gcm_ni_key *k = aligned_alloc(16, sizeof *k);
    if (c == NULL || k == NULL) {
        snprintf(err, errcap, "out of memory");
        return 1;
    }
    long failures = 0, flips = 0;
    uint64_t s = seed;
    for (long i = 0; i < n; i++) {
        uint8_t key[32], nonce[12], aad[48], tag[16], tag_ref[16];
        uint64_t r = splitmix(&s);
        size_t key_len = (r & 1) ? 32 : (r & 2) ? 24 : 16;
        size_t len = min_len + (size_t)(splitmix(&s) % (max_len - min_len + 1));
        size_t aad_len = (r & 0x30) == 0 ? (size_t)((r >> 8) % 49) : 0;
        fill(&s, key, key_len);
        fill(&s, nonce, 12);
        fill(&s, aad, aad_len);
        /* exact-size heap buffers so AddressSanitizer sees any access past a message */
        uint8_t *pt = malloc(len + 1), *ct = malloc(len + 1), *ref = malloc(len + 16 + 1),
                *out = malloc(len + 1);
        if (pt == NULL || ct == NULL || ref == NULL || out == NULL) {
            snprintf(err, errcap, "out of memory");
            failures++;
            free(pt), free(ct), free(ref), free(out);
            break;
        }
        fill(&s, pt, len);
        if (evp_seal(c, key, key_len, nonce, aad, aad_len, pt, len, ref, tag_ref) != 0)
            FAIL("case %ld: EVP failed", i);
        if (uid2_gcm_ni_key_init(k, key, key_len) != 0)
            FAIL("case %ld: key_init(%zu) failed", i, key_len);
        int rc = aad_len ? uid2_gcm_ni_encrypt_ex(k, nonce, aad, aad_len, pt, len, ct, tag)
                         : uid2_gcm_ni_encrypt(k, nonce, pt, len, ct, tag);
        if (rc != 0 || memcmp(ct, ref, len) != 0 || memcmp(tag, tag_ref, 16) != 0)
            FAIL("case %ld: encrypt differs from EVP (key %zu, len %zu, aad %zu, rc %d)", i, key_len, len,
                 aad_len, rc);
        memset(out, 0xAA, len);
        rc = aad_len ? uid2_gcm_ni_decrypt_ex(k, nonce, aad, aad_len, ref, len, tag_ref, 16, out)
                     : uid2_gcm_ni_decrypt(k, nonce, ref, len, tag_ref, out);
        if (rc != 0 || memcmp(out, pt, len) != 0)
            FAIL("case %ld: decrypt of EVP output failed (key %zu, len %zu, aad %zu, rc %d)", i, key_len, len,
                 aad_len, rc);
        /* in place, both directions */
        memcpy(out, pt, len);
        if (uid2_gcm_ni_encrypt_ex(k, nonce, aad, aad_len, out, len, out, tag) != 0 ||
            memcmp(out, ref, len) != 0 || memcmp(tag, tag_ref, 16) != 0)
            FAIL("case %ld: in-place encrypt differs (len %zu)", i, len);
        if (uid2_gcm_ni_decrypt_ex(k, nonce, aad, aad_len, out, len, tag_ref, 16, out) != 0 ||
            memcmp(out, pt, len) != 0)
            FAIL("case %ld: in-place decrypt failed (len %zu)", i, len);
        if (flip_every > 0 && i % flip_every == 0) {
            flips++;
            uint8_t *fields[3] = {nonce, ref, tag_ref};
            size_t sizes[3] = {12, len, 16};
            for (int f = 0; f < 3; f++)
                for (size_t bit = 0; bit < 8 * sizes[f]; bit++) {
                    fields[f][bit / 8] ^= (uint8_t)(1u << (bit % 8));
                    memset(out, 0xAA, len);
                    rc = aad_len ? uid2_gcm_ni_decrypt_ex(k, nonce, aad, aad_len, ref, len, tag_ref, 16, out)
                                 : uid2_gcm_ni_decrypt(k, nonce, ref, len, tag_ref, out);
                    fields[f][bit / 8] ^= (uint8_t)(1u << (bit % 8));
                    if (rc != -1 || !all_zero(out, len))
                        FAIL("case %ld: flipped bit %zu of %s accepted or output not zeroed (len %zu)", i, bit,
                             f == 0 ? "nonce" : f == 1 ? "ciphertext" : "tag", len);
                }
            for (size_t bit = 0; bit < 8 * aad_len; bit++) {
                aad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
                rc = uid2_gcm_ni_decrypt_ex(k, nonce, aad, aad_len, ref, len, tag_ref, 16, out);
                aad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
                if (rc != -1)
                    FAIL("case %ld: flipped AAD bit %zu accepted", i, bit);
            }
        }
    next:
        free(pt), free(ct), free(ref), free(out);
    }
    uid2_gcm_ni_key_wipe(k);
    free(k);
    EVP_CIPHER_CTX_free(c);
    if (flipped_cases != NULL)
        *flipped_cases = flips;
    return failures;
}

/* ---- AES-CBC decryption ------------------------------------------------------------------------------ */

static const EVP_CIPHER *cbc_cipher(size_t key_len)
{
    return key_len == 16 ? EVP_aes_128_cbc() : key_len == 24 ? EVP_aes_192_cbc() : EVP_aes_256_cbc();
}

/* n random cases: key size 16/24/32, random key, IV and 1..max_blocks blocks encrypted by OpenSSL (no
 * padding); uid2_cbc_ni_decrypt must give the plaintext back, out of place and in place. Returns the number
 * of failing cases. */
EXPORT long t_cbc_differential(uint64_t seed, long n, size_t max_blocks, char *err, size_t errcap)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    uid2_gcm_ni_key *k = aligned_alloc(16, sizeof *k);
    if (c == NULL || k == NULL || max_blocks == 0) {
        snprintf(err, errcap, "out of memory");
        EVP_CIPHER_CTX_free(c);
        free(k);
        return 1;
    }
    long failures = 0;
    uint64_t s = seed;
    for (long i = 0; i < n; i++) {
        uint8_t key[32], iv[16];
        uint64_t r = splitmix(&s);
        size_t key_len = (r & 1) ? 32 : (r & 2) ? 24 : 16;
        size_t len = 16 * (1 + (size_t)(splitmix(&s) % max_blocks));
        fill(&s, key, key_len);
        fill(&s, iv, 16);
        uint8_t *pt = malloc(len), *ct = malloc(len), *out = malloc(len);
        int n1 = 0, n2 = 0;
        if (pt == NULL || ct == NULL || out == NULL) {
            snprintf(err, errcap, "out of memory");
            failures++;
            free(pt), free(ct), free(out);
            break;
        }
        fill(&s, pt, len);
        if (!EVP_EncryptInit_ex(c, cbc_cipher(key_len), NULL, key, iv) || !EVP_CIPHER_CTX_set_padding(c, 0) ||
            !EVP_EncryptUpdate(c, ct, &n1, pt, (int)len) || !EVP_EncryptFinal_ex(c, ct + n1, &n2) ||
            (size_t)(n1 + n2) != len)
            FAIL("case %ld: EVP failed", i);
        if (uid2_gcm_ni_key_init(k, key, key_len) != 0)
            FAIL("case %ld: key_init(%zu) failed", i, key_len);
        if (uid2_cbc_ni_decrypt(k, iv, ct, len, out) != 0 || memcmp(out, pt, len) != 0)
            FAIL("case %ld: CBC decrypt differs from EVP (key %zu, len %zu)", i, key_len, len);
        memcpy(out, ct, len);
        if (uid2_cbc_ni_decrypt(k, iv, out, len, out) != 0 || memcmp(out, pt, len) != 0)
            FAIL("case %ld: in-place CBC decrypt differs (key %zu, len %zu)", i, key_len, len);
        if (uid2_cbc_ni_decrypt(k, iv, ct, 0, out) != -1 || uid2_cbc_ni_decrypt(k, iv, ct, len - 1, out) != -1)
            FAIL("case %ld: a length that is not a non-zero multiple of 16 was accepted", i);
    next:
        free(pt), free(ct), free(out);
    }
    uid2_gcm_ni_key_wipe(k);
    free(k);
    EVP_CIPHER_CTX_free(c);
    return failures;
}

/* ---- base64 ---------------------------------------------------------------------------------------- */

static const char std_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* n random inputs from seed, half clean (encodings of random bytes, 0..max_raw bytes), half those with one
 * character replaced, inserted or removed. The fast decoder must accept every clean input with the right
 * bytes, and whenever it accepts anything the exact decoder (uid2_base64.c, CPython's rules; url inputs
 * padded as the SDK pads them) must agree byte for byte. Output buffers are exact-size heap blocks. */
EXPORT long t_b64_differential(uint64_t seed, long n, size_t max_raw, char *err, size_t errcap)
{
    uint64_t s = seed;
    long failures = 0;
    for (long i = 0; i < n; i++) {
        uint64_t r = splitmix(&s);
        int url = (int)(r & 1), dirty = (int)((r >> 1) & 1);
        size_t raw_len = (size_t)(splitmix(&s) % (max_raw + 1));
        size_t cap = UID2_B64_ENCODED_LEN(raw_len) + 2;
        uint8_t *raw = malloc(raw_len + 1), *exact = malloc(UID2_B64_DECODED_MAX(cap + 3) + 1);
        char *enc = malloc(cap);
        uint8_t *fast = NULL;
        if (raw == NULL || exact == NULL || enc == NULL) {
            snprintf(err, errcap, "out of memory");
            free(raw), free(exact), free(enc);
            return failures + 1;
        }
        fill(&s, raw, raw_len);
        const char *alpha = url ? url_alpha : std_alpha;
        size_t len = 0;
        for (size_t j = 0; j + 3 <= raw_len; j += 3) {
            uint32_t v = (uint32_t)raw[j] << 16 | (uint32_t)raw[j + 1] << 8 | raw[j + 2];
            enc[len++] = alpha[v >> 18], enc[len++] = alpha[(v >> 12) & 63];
            enc[len++] = alpha[(v >> 6) & 63], enc[len++] = alpha[v & 63];
        }
        if (raw_len % 3) {
            uint32_t v = (uint32_t)raw[raw_len - raw_len % 3] << 16;
            if (raw_len % 3 == 2)
                v |= (uint32_t)raw[raw_len - 1] << 8;
            enc[len++] = alpha[v >> 18], enc[len++] = alpha[(v >> 12) & 63];
            if (raw_len % 3 == 2)
                enc[len++] = alpha[(v >> 6) & 63];
            if (!url)
                while (len % 4)
                    enc[len++] = '=';
        }
        if (dirty) {
            static const char junk[] = "=+/-_ \n\r\t.*\0\x80\xff@[`{AQ";
            uint64_t q = splitmix(&s);
            char c = junk[(q >> 8) % (sizeof junk - 1)];
            size_t pos = len ? (size_t)((q >> 16) % (len + 1)) : 0;
            int op = (int)(q % 3);
            if (op == 0 && pos < len) {
                enc[pos] = c; /* replace */
            } else if (op == 1 || len == 0) {
                memmove(enc + pos + 1, enc + pos, len - pos); /* insert */
                enc[pos] = c;
                len++;
            } else if (pos < len) {
                memmove(enc + pos, enc + pos + 1, len - pos - 1); /* remove */
                len--;
            }
        }
        size_t dec = UID2_B64FAST_DECODED_MAX(len), out_len = (size_t)-1;
        if (!url && len >= 1 && enc[len - 1] == '=')
            dec -= 1 + (len >= 2 && enc[len - 2] == '=');
        if (dec > UID2_B64FAST_DECODED_MAX(len))
            dec = 0;
        fast = malloc(dec + 1);
        if (fast == NULL) {
            snprintf(err, errcap, "out of memory");
            failures++;
            goto next;
        }
        fast += 1; /* exact-size window: fast[0 .. dec) with the block's end right after it */
        int rc = uid2_b64fast_decode(enc, len, fast, &out_len, url);
        size_t pad = url ? (4 - len % 4) % 4 : 0;
        ptrdiff_t en = uid2_b64_decode((const uint8_t *)enc, len, pad, url, exact);
        if (!dirty && (rc != 0 || out_len != raw_len || memcmp(fast, raw, raw_len) != 0)) {
            if (failures++ == 0)
                snprintf(err, errcap, "case %ld: clean %s input of %zu chars not decoded (rc %d)", i,
                         url ? "url" : "std", len, rc);
        } else if (rc == 0 && (en < 0 || (size_t)en != out_len || memcmp(fast, exact, out_len) != 0)) {
            if (failures++ == 0)
                snprintf(err, errcap, "case %ld: fast decoder accepted a %s input of %zu chars the exact one "
                         "decodes differently (exact %td bytes, fast %zu)", i, url ? "url" : "std", len, en,
                         out_len);
        } else if (rc != 0 && rc != -1) {
            if (failures++ == 0)
                snprintf(err, errcap, "case %ld: rc %d", i, rc);
        }
        fast -= 1;
    next:
        free(raw), free(exact), free(enc), free(fast);
    }
    return failures;
}

/* n random inputs of 0..max_raw bytes (every length below 64 first): uid2_b64fast_encode must write exactly
 * what uid2_b64_encode (url == 0) and uid2_b64url_encode_nopad (url == 1) write, and nothing else. Input and
 * output are exact-size heap blocks, so AddressSanitizer sees any access beyond them. */
EXPORT long t_b64_encode_differential(uint64_t seed, long n, size_t max_raw, char *err, size_t errcap)
{
    uint64_t s = seed;
    long failures = 0;
    for (long i = 0; i < n; i++) {
        size_t raw_len = i < 128 ? (size_t)(i / 2)
                         : i % 8 == 0 ? 32 /* a raw UID: also through uid2_b64fast_encode32 */
                                      : (size_t)(splitmix(&s) % (max_raw + 1));
        int url = (int)(i & 1);
        size_t cap = UID2_B64_ENCODED_LEN(raw_len);
        uint8_t *raw = malloc(raw_len ? raw_len : 1);
        char *ref = malloc(cap + 1), *got = malloc(cap ? cap : 1);
        if (raw == NULL || ref == NULL || got == NULL) {
            snprintf(err, errcap, "out of memory");
            free(raw), free(ref), free(got);
            return failures + 1;
        }
        fill(&s, raw, raw_len);
        size_t rn = url ? uid2_b64url_encode_nopad(raw, raw_len, ref) : uid2_b64_encode(raw, raw_len, ref);
        size_t gn = uid2_b64fast_encode(raw, raw_len, got, url);
        if (rn != gn || memcmp(ref, got, rn) != 0) {
            if (failures++ == 0)
                snprintf(err, errcap, "case %ld: %s encode of %zu bytes differs (%zu vs %zu chars)", i,
                         url ? "url" : "std", raw_len, gn, rn);
        }
        if (raw_len == 32 && !url) { /* the raw UID shortcut: the same 44 characters, nothing around them */
            memset(got, 0, cap);
            uid2_b64fast_encode32(raw, got);
            if (memcmp(ref, got, 44) != 0 && failures++ == 0)
                snprintf(err, errcap, "case %ld: encode32 differs", i);
        }
        free(raw), free(ref), free(got);
    }
    return failures;
}

#ifdef UID2_KERNELS_MAIN
/* Standalone: `test_kernels [cases]` runs the differentials (used under AddressSanitizer). */
int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 20000;
    char err[512] = "";
    long flipped = 0, f1 = 0, f2;
    if (t_cpu_has_ni()) {
        f1 = t_gcm_differential(1, n, 0, 300, 100, &flipped, err, sizeof err);
        f1 += t_gcm_differential(2, n / 100 + 1, 0, 5000, 0, NULL, err, sizeof err);
        printf("gcm: %ld cases, %ld with bit flips, %ld failures %s\n", n, flipped, f1, err);
        err[0] = 0;
        long f3 = t_cbc_differential(5, n, 20, err, sizeof err);
        printf("cbc: %ld cases, %ld failures %s\n", n, f3, err);
        f1 += f3;
    }
    err[0] = 0;
    f2 = t_b64_differential(3, n, 300, err, sizeof err);
    f2 += t_b64_encode_differential(4, n, 300, err, sizeof err);
    printf("b64: %ld cases, %ld failures %s\n", n, f2, err);
    return f1 || f2;
}
#endif
