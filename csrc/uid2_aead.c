/* AES-GCM / AES-CBC over OpenSSL 3 EVP with pre-keyed contexts (see uid2_aead.h). */
#include "uid2_aead.h"

#include <limits.h>
#include <string.h>
#include <pthread.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>
#include <openssl/rand.h>

/* Fetched once per process and never freed: immutable after uid2_aead_init. Index: [mode][key size]
 * with mode 0 = GCM, 1 = CBC and key size 0/1/2 = 128/192/256 bits. */
static EVP_CIPHER *ciphers[2][3];
static pthread_once_t ciphers_once = PTHREAD_ONCE_INIT;

static void fetch_ciphers(void)
{
    static const char *const names[2][3] = {
        {"AES-128-GCM", "AES-192-GCM", "AES-256-GCM"},
        {"AES-128-CBC", "AES-192-CBC", "AES-256-CBC"},
    };
    for (int m = 0; m < 2; m++)
        for (int k = 0; k < 3; k++)
            ciphers[m][k] = EVP_CIPHER_fetch(NULL, names[m][k], NULL);
}

int uid2_aead_key_len_ok(size_t key_len)
{
    return key_len == 16 || key_len == 24 || key_len == 32;
}

EVP_CIPHER_CTX *uid2_aead_ctx_new(int kind, const uint8_t *key, size_t key_len)
{
    if (!uid2_aead_key_len_ok(key_len) || kind < 0 || kind >= UID2_AEAD_KINDS)
        return NULL;
    pthread_once(&ciphers_once, fetch_ciphers);
    const EVP_CIPHER *cipher = ciphers[kind == UID2_AEAD_CBC_DECRYPT][(key_len - 16) / 8];
    if (cipher == NULL)
        return NULL;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        return NULL;
    int ok;
    if (kind == UID2_AEAD_GCM_ENCRYPT)
        ok = EVP_EncryptInit_ex(ctx, cipher, NULL, key, NULL);
    else
        ok = EVP_DecryptInit_ex(ctx, cipher, NULL, key, NULL);
    if (ok && kind == UID2_AEAD_CBC_DECRYPT)
        ok = EVP_CIPHER_CTX_set_padding(ctx, 0); /* PKCS7 is checked strictly by the caller */
    if (!ok) {
        EVP_CIPHER_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

void uid2_aead_ctx_free(EVP_CIPHER_CTX *ctx)
{
    EVP_CIPHER_CTX_free(ctx); /* the provider wipes its key schedule (OPENSSL_clear_free) */
}

int uid2_gcm_open(EVP_CIPHER_CTX *ctx, const uint8_t *blob, size_t blob_len, uint8_t *out)
{
    if (blob_len < UID2_GCM_OVERHEAD || blob_len - UID2_GCM_OVERHEAD > (size_t)INT_MAX)
        return -1;
    const uint8_t *nonce = blob;
    const uint8_t *ct = blob + UID2_GCM_NONCE_LEN;
    size_t ct_len = blob_len - UID2_GCM_OVERHEAD;
    uint8_t tag[UID2_GCM_TAG_LEN];
    memcpy(tag, blob + blob_len - UID2_GCM_TAG_LEN, sizeof tag);
    int n1 = 0, n2 = 0;
    /* Only the IV (and the expected tag) change: the key schedule and GHASH key stay in the context.
     * Passing the tag with the init saves a separate parameter round trip. */
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, sizeof tag);
    params[1] = OSSL_PARAM_construct_end();
    if (!EVP_DecryptInit_ex2(ctx, NULL, NULL, nonce, params))
        return -1;
    if (ct_len > 0 && !EVP_DecryptUpdate(ctx, out, &n1, ct, (int)ct_len))
        return -1;
    if (EVP_DecryptFinal_ex(ctx, out + n1, &n2) <= 0)
        return -1; /* the tag is compared in constant time by OpenSSL */
    return (size_t)n1 + (size_t)n2 == ct_len ? 0 : -1;
}

int uid2_gcm_seal(EVP_CIPHER_CTX *ctx, const uint8_t *nonce, const uint8_t *pt, size_t len, uint8_t *out)
{
    if (len > (size_t)INT_MAX)
        return -1;
    int n1 = 0, n2 = 0;
    memcpy(out, nonce, UID2_GCM_NONCE_LEN);
    uint8_t *ct = out + UID2_GCM_NONCE_LEN;
    if (!EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, nonce))
        return -1;
    if (len > 0 && !EVP_EncryptUpdate(ctx, ct, &n1, pt, (int)len))
        return -1;
    if (!EVP_EncryptFinal_ex(ctx, ct + n1, &n2))
        return -1;
    if ((size_t)n1 + (size_t)n2 != len)
        return -1;
    if (!EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, (int)UID2_GCM_TAG_LEN, ct + len))
        return -1;
    return 0;
}

int uid2_cbc_open(EVP_CIPHER_CTX *ctx, const uint8_t *iv, const uint8_t *ct, size_t len, uint8_t *out)
{
    if (len == 0 || len % UID2_CBC_BLOCK != 0 || len > (size_t)INT_MAX)
        return -1;
    int n1 = 0, n2 = 0;
    if (!EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, iv))
        return -1;
    if (!EVP_DecryptUpdate(ctx, out, &n1, ct, (int)len))
        return -1;
    if (!EVP_DecryptFinal_ex(ctx, out + n1, &n2))
        return -1;
    return (size_t)n1 + (size_t)n2 == len ? 0 : -1;
}

int uid2_random_bytes(uint8_t *buf, size_t n)
{
    if (n > (size_t)INT_MAX)
        return -1;
    return RAND_bytes(buf, (int)n) == 1 ? 0 : -1;
}

/* Nonces for calls without a batch worker come from a per-thread pool refilled NONCE_POOL bytes at a time:
 * RAND_bytes costs ~550 ns per call here whatever the size, ~6 ns per 24 bytes in bulk. A forked child
 * must never reuse its parent's pool (a GCM nonce repeated under one key is fatal), so every fork bumps a
 * generation (pthread_atfork, child side) and a pool filled in an older generation is thrown away before
 * use. If the fork handler cannot be installed, every call goes to RAND_bytes. Bytes are wiped as taken. */
#define NONCE_POOL 1024u
static _Thread_local struct {
    uint8_t buf[NONCE_POOL];
    size_t pos;
    unsigned gen;
} nonce_pool = {.pos = NONCE_POOL};
static unsigned fork_generation;
static int fork_watched;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void bump_fork_generation(void)
{
    __atomic_add_fetch(&fork_generation, 1u, __ATOMIC_SEQ_CST);
}

static void watch_forks(void)
{
    fork_watched = pthread_atfork(NULL, NULL, bump_fork_generation) == 0;
}

int uid2_nonce_bytes(uint8_t *out, size_t n)
{
    pthread_once(&fork_once, watch_forks);
    if (!fork_watched || n > NONCE_POOL)
        return uid2_random_bytes(out, n);
    unsigned gen = __atomic_load_n(&fork_generation, __ATOMIC_SEQ_CST);
    if (nonce_pool.gen != gen || NONCE_POOL - nonce_pool.pos < n) {
        nonce_pool.pos = NONCE_POOL; /* empty until the refill succeeds */
        if (uid2_random_bytes(nonce_pool.buf, NONCE_POOL) != 0)
            return -1;
        nonce_pool.pos = 0;
        nonce_pool.gen = gen;
    }
    memcpy(out, nonce_pool.buf + nonce_pool.pos, n);
    uid2_wipe(nonce_pool.buf + nonce_pool.pos, n); /* each nonce is used once */
    nonce_pool.pos += n;
    return 0;
}

void uid2_wipe(void *p, size_t n)
{
    if (p == NULL || n == 0)
        return;
#if defined(__GNUC__) || defined(__clang__)
    /* memset (vectorised, unlike OPENSSL_cleanse's byte loop) that the compiler cannot drop: p escapes to
     * an asm statement that may read all memory */
    memset(p, 0, n);
    __asm__ __volatile__("" : : "r"(p) : "memory");
#else
    OPENSSL_cleanse(p, n);
#endif
}
