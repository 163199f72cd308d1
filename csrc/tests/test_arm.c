/* Tests of the aarch64 kernels (uid2_gcm_arm.c, uid2_b64_neon.c), built by scripts/arm64_check.sh with
 * aarch64-linux-gnu-gcc against arm64 OpenSSL and run under qemu-aarch64 (or natively on an arm64 host).
 *
 *   test_arm VECTOR_DIR [CASES [SEED]]
 *
 * VECTOR_DIR is the cryptography_vectors package directory (it holds ciphers/AES/GCM and ciphers/AES/CBC).
 * Checks, each of which must see its cases (a missing file fails, it does not skip):
 *   1. the kernels are compiled in, the CPU reports AES, PMULL and ASIMD, and the engine's dispatch layer
 *      (uid2_kernels.c) selects them (so nothing below is vacuous);
 *   2. NIST CAVP AES-GCM (gcmDecrypt*, gcmEncryptExtIV*: every 96-bit-IV case, all tag lengths, FAIL cases
 *      rejected with the output zeroed) and AES-CBC (CBCGFSbox, CBCKeySbox, CBCVarKey, CBCVarTxt, CBCMMT;
 *      the decryption of every case, both sections);
 *   3. CASES random GCM cases against OpenSSL EVP (128/192/256-bit keys, 0..600 bytes, some AAD, in place
 *      too), every 4th with a random bit of nonce, AAD, ciphertext or tag flipped, which must be rejected
 *      with the output zeroed; CASES random CBC cases against EVP (in place too);
 *   4. the NEON base64 codecs against OpenSSL's encoder and a scalar reference decoder: clean inputs of
 *      every length 0..400, random corruptions (declined exactly when a character is outside the alphabet),
 *      nothing written past the output. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "uid2_b64_neon.h"
#include "uid2_gcm_arm.h"
#include "uid2_kernels.h"

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

static long failures = 0;

#define CHECK(cond, ...)                                                                                      \
    do {                                                                                                      \
        if (!(cond)) {                                                                                        \
            if (failures++ < 20) {                                                                            \
                fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                          \
                fprintf(stderr, __VA_ARGS__);                                                                 \
                fputc('\n', stderr);                                                                          \
            }                                                                                                 \
        }                                                                                                     \
    } while (0)

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

static int all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

static uid2_gcm_arm_key *key_new(void)
{
    uid2_gcm_arm_key *k = aligned_alloc(16, sizeof *k);
    if (k == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return k;
}

/* ---- 1. the kernels are active -------------------------------------------------------------------- */

static int kernels_active(void)
{
    int ok = uid2_gcm_arm_built() && uid2_b64_neon_built();
#if defined(__aarch64__) && defined(__linux__)
    const unsigned long need = (1UL << 1) | (1UL << 3) | (1UL << 4); /* HWCAP_ASIMD | HWCAP_AES | HWCAP_PMULL */
    unsigned long hw = getauxval(AT_HWCAP);
    printf("kernels: gcm_arm built %d, b64_neon built %d, AT_HWCAP %#lx (ASIMD+AES+PMULL %s)\n",
           uid2_gcm_arm_built(), uid2_b64_neon_built(), hw, (hw & need) == need ? "present" : "MISSING");
    ok = ok && (hw & need) == need;
    /* and the engine's dispatch layer picks them */
    printf("dispatch: %s\n", uid2_hw_name());
    ok = ok && uid2_hw_kernels() == UID2_HW_ARMV8;
#else
    ok = 0;
#endif
    return ok;
}

/* ---- 2. NIST CAVP files ------------------------------------------------------------------------------ */

#define FIELD_MAX 1024

typedef struct {
    char name[16];
    uint8_t v[FIELD_MAX];
    size_t n;
} field;

static int hex_nibble(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* "Name = hex" -> f (hex may be empty). 1 if the line is such a field. */
static int parse_field(const char *line, field *f)
{
    const char *eq = strstr(line, " = ");
    if (eq == NULL || (size_t)(eq - line) >= sizeof f->name)
        return 0;
    memcpy(f->name, line, (size_t)(eq - line));
    f->name[eq - line] = '\0';
    const char *h = eq + 3;
    f->n = 0;
    while (hex_nibble(h[0]) >= 0 && hex_nibble(h[1]) >= 0 && f->n < FIELD_MAX) {
        f->v[f->n++] = (uint8_t)(hex_nibble(h[0]) << 4 | hex_nibble(h[1]));
        h += 2;
    }
    return 1;
}

typedef struct {
    field key, iv, pt, ct, aad, tag;
    int fail, have;
} record;

static field *record_field(record *r, const char *name)
{
    if (!strcmp(name, "Key") || !strcmp(name, "KEY"))
        return &r->key;
    if (!strcmp(name, "IV"))
        return &r->iv;
    if (!strcmp(name, "PT") || !strcmp(name, "PLAINTEXT"))
        return &r->pt;
    if (!strcmp(name, "CT") || !strcmp(name, "CIPHERTEXT"))
        return &r->ct;
    if (!strcmp(name, "AAD"))
        return &r->aad;
    if (!strcmp(name, "Tag"))
        return &r->tag;
    return NULL;
}

typedef void (*record_fn)(const char *file, long count, const record *r, long *done);

/* Calls fn for each record (a run of fields started by "Count"/"COUNT"). Returns the records seen, or -1
 * when the file cannot be opened. */
static long each_record(const char *path, record_fn fn, long *done)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    static char line[8192];
    record r;
    memset(&r, 0, sizeof r);
    long count = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!strncmp(line, "Count = ", 8) || !strncmp(line, "COUNT = ", 8) || line[0] == '[') {
            if (r.have)
                fn(path, count++, &r, done);
            memset(&r, 0, sizeof r);
            r.have = line[0] != '[';
            continue;
        }
        if (!strcmp(line, "FAIL")) {
            r.fail = 1;
            continue;
        }
        field tmp;
        if (r.have && parse_field(line, &tmp)) {
            field *dst = record_field(&r, tmp.name);
            if (dst != NULL)
                *dst = tmp;
        }
    }
    if (r.have)
        fn(path, count++, &r, done);
    fclose(f);
    return count;
}

static void gcm_decrypt_record(const char *file, long count, const record *r, long *done)
{
    if (r->iv.n != 12)
        return; /* the kernels take 96-bit nonces only (all the engine uses) */
    uid2_gcm_arm_key *k = key_new();
    uint8_t out[FIELD_MAX + 1];
    memset(out, 0xAA, sizeof out);
    CHECK(uid2_gcm_arm_key_init(k, r->key.v, r->key.n) == 0, "%s #%ld: key_init", file, count);
    int rc = uid2_gcm_arm_decrypt_ex(k, r->iv.v, r->aad.v, r->aad.n, r->ct.v, r->ct.n, r->tag.v, r->tag.n, out);
    if (r->fail)
        CHECK(rc == -1 && all_zero(out, r->ct.n), "%s #%ld: a FAIL case was accepted (rc %d)", file, count, rc);
    else
        CHECK(rc == 0 && r->pt.n == r->ct.n && memcmp(out, r->pt.v, r->pt.n) == 0, "%s #%ld: decrypt (rc %d)",
              file, count, rc);
    CHECK(out[r->ct.n] == 0xAA, "%s #%ld: wrote past the output", file, count);
    uid2_gcm_arm_key_wipe(k);
    free(k);
    (*done)++;
}

static void gcm_encrypt_record(const char *file, long count, const record *r, long *done)
{
    if (r->iv.n != 12)
        return;
    uid2_gcm_arm_key *k = key_new();
    uint8_t out[FIELD_MAX], tag[16];
    CHECK(uid2_gcm_arm_key_init(k, r->key.v, r->key.n) == 0, "%s #%ld: key_init", file, count);
    int rc = uid2_gcm_arm_encrypt_ex(k, r->iv.v, r->aad.v, r->aad.n, r->pt.v, r->pt.n, out, tag);
    CHECK(rc == 0 && r->ct.n == r->pt.n && memcmp(out, r->ct.v, r->ct.n) == 0 && r->tag.n <= 16 &&
              memcmp(tag, r->tag.v, r->tag.n) == 0,
          "%s #%ld: encrypt (rc %d)", file, count, rc);
    uid2_gcm_arm_key_wipe(k);
    free(k);
    (*done)++;
}

static void cbc_record(const char *file, long count, const record *r, long *done)
{
    uid2_gcm_arm_key *k = key_new();
    uint8_t out[FIELD_MAX + 1];
    memset(out, 0xAA, sizeof out);
    CHECK(uid2_gcm_arm_key_init(k, r->key.v, r->key.n) == 0, "%s #%ld: key_init", file, count);
    int rc = uid2_cbc_arm_decrypt(k, r->iv.v, r->ct.v, r->ct.n, out);
    CHECK(rc == 0 && r->pt.n == r->ct.n && memcmp(out, r->pt.v, r->pt.n) == 0 && out[r->ct.n] == 0xAA,
          "%s #%ld: CBC decrypt (rc %d)", file, count, rc);
    uid2_gcm_arm_key_wipe(k);
    free(k);
    (*done)++;
}

static void cavp(const char *dir)
{
    static const char *sizes[3] = {"128", "192", "256"};
    static const char *cbc_kinds[5] = {"CBCGFSbox", "CBCKeySbox", "CBCVarKey", "CBCVarTxt", "CBCMMT"};
    char path[4096];
    long dec = 0, enc = 0, cbc = 0;
    for (int s = 0; s < 3; s++) {
        snprintf(path, sizeof path, "%s/ciphers/AES/GCM/gcmDecrypt%s.rsp", dir, sizes[s]);
        CHECK(each_record(path, gcm_decrypt_record, &dec) > 0, "cannot read %s", path);
        snprintf(path, sizeof path, "%s/ciphers/AES/GCM/gcmEncryptExtIV%s.rsp", dir, sizes[s]);
        CHECK(each_record(path, gcm_encrypt_record, &enc) > 0, "cannot read %s", path);
        for (int c = 0; c < 5; c++) {
            snprintf(path, sizeof path, "%s/ciphers/AES/CBC/%s%s.rsp", dir, cbc_kinds[c], sizes[s]);
            CHECK(each_record(path, cbc_record, &cbc) > 0, "cannot read %s", path);
        }
    }
    printf("CAVP: %ld GCM decrypt and %ld GCM encrypt cases (96-bit IV), %ld CBC cases\n", dec, enc, cbc);
    CHECK(dec > 3000 && enc > 3000 && cbc > 1000, "too few CAVP cases: the vector files are not the expected ones");
}

/* ---- 3. differential against OpenSSL --------------------------------------------------------------- */

static const EVP_CIPHER *gcm_cipher(size_t n)
{
    return n == 16 ? EVP_aes_128_gcm() : n == 24 ? EVP_aes_192_gcm() : EVP_aes_256_gcm();
}

static const EVP_CIPHER *cbc_cipher(size_t n)
{
    return n == 16 ? EVP_aes_128_cbc() : n == 24 ? EVP_aes_192_cbc() : EVP_aes_256_cbc();
}

static int evp_gcm_seal(EVP_CIPHER_CTX *c, const uint8_t *key, size_t key_len, const uint8_t *nonce,
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

static int evp_cbc_encrypt(EVP_CIPHER_CTX *c, const uint8_t *key, size_t key_len, const uint8_t *iv,
                           const uint8_t *pt, size_t len, uint8_t *ct)
{
    int n = 0, m = 0;
    if (!EVP_EncryptInit_ex(c, cbc_cipher(key_len), NULL, key, iv) || !EVP_CIPHER_CTX_set_padding(c, 0))
        return -1;
    if (!EVP_EncryptUpdate(c, ct, &n, pt, (int)len) || !EVP_EncryptFinal_ex(c, ct + n, &m))
        return -1;
    return (size_t)(n + m) == len ? 0 : -1;
}

#define MAXLEN 600

static void differential(uint64_t seed, long cases)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    uid2_gcm_arm_key *k = key_new();
    uint64_t s = seed;
    long flips = 0;
    for (long i = 0; i < cases; i++) {
        uint8_t key[32], nonce[12], aad[64], tag[16], tag_ref[16], iv[16];
        uint8_t pt[MAXLEN + 16], ct[MAXLEN + 16], ref[MAXLEN + 16], out[MAXLEN + 16], buf[MAXLEN + 16];
        uint64_t r = splitmix(&s);
        size_t key_len = (r & 1) ? 32 : (r & 2) ? 24 : 16;
        /* mostly token-sized messages, all lengths up to MAXLEN */
        size_t len = (r & 0x40) ? (size_t)(splitmix(&s) % (MAXLEN + 1)) : (size_t)(splitmix(&s) % 200);
        size_t aad_len = (r & 0x30) == 0 ? (size_t)((r >> 8) % 65) : 0;
        fill(&s, key, key_len);
        fill(&s, nonce, 12);
        fill(&s, aad, aad_len);
        fill(&s, pt, len);
        CHECK(evp_gcm_seal(c, key, key_len, nonce, aad, aad_len, pt, len, ref, tag_ref) == 0, "EVP GCM failed");
        CHECK(uid2_gcm_arm_key_init(k, key, key_len) == 0, "key_init(%zu)", key_len);

        memset(ct, 0xAA, sizeof ct);
        int rc = aad_len ? uid2_gcm_arm_encrypt_ex(k, nonce, aad, aad_len, pt, len, ct, tag)
                         : uid2_gcm_arm_encrypt(k, nonce, pt, len, ct, tag);
        CHECK(rc == 0 && memcmp(ct, ref, len) == 0 && memcmp(tag, tag_ref, 16) == 0 && ct[len] == 0xAA,
              "GCM case %ld: encrypt differs from EVP (key %zu, len %zu, aad %zu)", i, key_len, len, aad_len);
        memset(out, 0xAA, sizeof out);
        rc = aad_len ? uid2_gcm_arm_decrypt_ex(k, nonce, aad, aad_len, ref, len, tag_ref, 16, out)
                     : uid2_gcm_arm_decrypt(k, nonce, ref, len, tag_ref, out);
        CHECK(rc == 0 && memcmp(out, pt, len) == 0 && out[len] == 0xAA,
              "GCM case %ld: decrypt of EVP output (key %zu, len %zu, aad %zu)", i, key_len, len, aad_len);
        /* in place, both directions */
        memcpy(buf, pt, len);
        CHECK(uid2_gcm_arm_encrypt_ex(k, nonce, aad, aad_len, buf, len, buf, tag) == 0 &&
                  memcmp(buf, ref, len) == 0 && memcmp(tag, tag_ref, 16) == 0,
              "GCM case %ld: in-place encrypt", i);
        CHECK(uid2_gcm_arm_decrypt_ex(k, nonce, aad, aad_len, buf, len, tag_ref, 16, buf) == 0 &&
                  memcmp(buf, pt, len) == 0,
              "GCM case %ld: in-place decrypt", i);

        if (i % 4 == 0) {
            /* one random bit of nonce, AAD, ciphertext or tag: the tag must not verify */
            uint8_t n2[12], a2[64], c2[MAXLEN + 16], t2[16];
            memcpy(n2, nonce, 12);
            memcpy(a2, aad, aad_len);
            memcpy(c2, ref, len);
            memcpy(t2, tag_ref, 16);
            size_t where = (size_t)(splitmix(&s) % (12 + aad_len + len + 16));
            uint8_t bit = (uint8_t)(1u << (splitmix(&s) % 8));
            if (where < 12)
                n2[where] ^= bit;
            else if (where < 12 + aad_len)
                a2[where - 12] ^= bit;
            else if (where < 12 + aad_len + len)
                c2[where - 12 - aad_len] ^= bit;
            else
                t2[where - 12 - aad_len - len] ^= bit;
            memset(out, 0xAA, sizeof out);
            rc = uid2_gcm_arm_decrypt_ex(k, n2, a2, aad_len, c2, len, t2, 16, out);
            CHECK(rc == -1 && all_zero(out, len) && out[len] == 0xAA,
                  "GCM case %ld: a flipped bit at %zu was accepted (rc %d)", i, where, rc);
            flips++;
        }

        /* CBC: EVP encrypts, the kernel decrypts (1..MAXLEN/16 blocks), out of place and in place */
        size_t blocks = 1 + (size_t)(splitmix(&s) % (MAXLEN / 16));
        fill(&s, iv, 16);
        fill(&s, pt, 16 * blocks);
        CHECK(evp_cbc_encrypt(c, key, key_len, iv, pt, 16 * blocks, ct) == 0, "EVP CBC failed");
        memset(out, 0xAA, sizeof out);
        CHECK(uid2_cbc_arm_decrypt(k, iv, ct, 16 * blocks, out) == 0 && memcmp(out, pt, 16 * blocks) == 0 &&
                  out[16 * blocks] == 0xAA,
              "CBC case %ld: decrypt differs (key %zu, %zu blocks)", i, key_len, blocks);
        CHECK(uid2_cbc_arm_decrypt(k, iv, ct, 16 * blocks, ct) == 0 && memcmp(ct, pt, 16 * blocks) == 0,
              "CBC case %ld: in-place decrypt", i);
    }
    /* lengths the contract refuses */
    uint8_t z[32] = {0}, o[32];
    CHECK(uid2_cbc_arm_decrypt(k, z, z, 0, o) == -1 && uid2_cbc_arm_decrypt(k, z, z, 17, o) == -1,
          "CBC accepted a length that is not a non-zero multiple of 16");
    CHECK(uid2_gcm_arm_key_init(k, z, 20) == -1 && k->rounds == 0, "key_init accepted a 20-byte key");
    CHECK(uid2_gcm_arm_decrypt_ex(k, z, NULL, 0, z, 0, z, 11, o) == -1, "tag length 11 accepted");
    printf("differential: %ld GCM cases (%ld with a flipped bit) and %ld CBC cases agree with OpenSSL\n", cases,
           flips, cases);
    free(k);
    EVP_CIPHER_CTX_free(c);
}

/* ---- 4. base64 ---------------------------------------------------------------------------------------- */

static int ref_value(uint8_t c, int url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

/* The reference for clean bodies: 0 and the bytes, or -1 if any character is outside the alphabet. */
static int ref_decode(const uint8_t *in, size_t body, uint8_t *out, int url)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < body; i++) {
        int v = ref_value(in[i], url);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return 0;
}

/* OpenSSL's standard base64 of in, optionally turned url-safe (-_ and no '='). Returns the length. */
static size_t ref_encode(const uint8_t *in, size_t len, char *out, int url)
{
    int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    if (url) {
        for (int i = 0; i < n; i++)
            out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
        while (n > 0 && out[n - 1] == '=')
            n--;
    }
    return (size_t)n;
}

static void base64(uint64_t seed, long rounds)
{
    uint64_t s = seed;
    long decoded = 0, declined = 0;
    for (long round = 0; round < rounds; round++) {
        for (size_t len = 0; len <= 300; len++) {
            uint8_t raw[304], got[304], ref[304];
            char txt[512], enc[520];
            fill(&s, raw, len);
            for (int url = 0; url < 2; url++) {
                size_t n = ref_encode(raw, len, txt, url);
                memset(enc, '#', sizeof enc);
                size_t m = uid2_b64_neon_encode(raw, len, enc, url);
                CHECK(m == n && memcmp(enc, txt, n) == 0 && enc[n] == '#', "encode len %zu url %d", len, url);
                size_t body = n;
                while (body > 0 && txt[body - 1] == '=')
                    body--;
                size_t dec = body / 4 * 3 + (body % 4 * 3) / 4;
                memset(got, 0xAA, sizeof got);
                int rc = uid2_b64_neon_decode((const uint8_t *)txt, body, got, dec, url);
                CHECK(rc == 0 && dec == len && memcmp(got, raw, len) == 0 && got[len] == 0xAA,
                      "decode of clean input, len %zu url %d (rc %d)", len, url, rc);
                decoded++;
                if (body == 0)
                    continue;
                /* one random character replaced by a random byte, or a random in-alphabet body (trailing
                 * bits not zero): declined exactly when the reference declines, the same bytes otherwise */
                uint8_t *t = (uint8_t *)txt;
                if (splitmix(&s) & 1) {
                    t[splitmix(&s) % body] = (uint8_t)splitmix(&s);
                } else {
                    static const char az[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
                    for (size_t j = 0; j < body; j++) {
                        uint64_t x = splitmix(&s) % 64;
                        t[j] = x < 62 ? (uint8_t)az[x] : x == 62 ? (url ? '-' : '+') : (url ? '_' : '/');
                    }
                }
                int want = ref_decode(t, body, ref, url);
                memset(got, 0xAA, sizeof got);
                rc = uid2_b64_neon_decode(t, body, got, dec, url);
                CHECK(rc == want && (rc != 0 || memcmp(got, ref, dec) == 0) && got[dec] == 0xAA,
                      "decode of %s input, body %zu url %d: rc %d, reference %d",
                      want ? "corrupted" : "random", body, url, rc, want);
                declined += rc != 0;
            }
        }
        uint8_t uid[32];
        char a[48], b[48];
        fill(&s, uid, 32);
        memset(a, '#', sizeof a);
        uid2_b64_neon_encode32(uid, a);
        CHECK(ref_encode(uid, 32, b, 0) == 44 && memcmp(a, b, 44) == 0 && a[44] == '#', "encode32");
    }
    printf("base64: %ld clean decodes and encodes, %ld corrupted inputs declined, %ld encode32\n", decoded,
           declined, rounds);
    CHECK(declined > 0, "no corrupted input was declined");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s VECTOR_DIR [CASES [SEED]]\n", argv[0]);
        return 2;
    }
    long cases = argc > 2 ? atol(argv[2]) : 100000;
    uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 0) : 20260101u;
    if (!kernels_active()) {
        fprintf(stderr, "FAIL: the ARMv8 kernels are not active (not built in, or the CPU lacks AES/PMULL/ASIMD)\n");
        return 1;
    }
    cavp(argv[1]);
    differential(seed, cases);
    base64(seed ^ 0x5EED, 40);
    if (failures) {
        fprintf(stderr, "%ld check(s) failed\n", failures);
        return 1;
    }
    printf("all aarch64 kernel checks passed\n");
    return 0;
}
