/* AES-GCM and AES-CBC through OpenSSL 3 EVP, behind one small header.
 *
 * A context is created once per (key, kind) with the key schedule (and for GCM the GHASH table) already
 * expanded; each message then only resets the IV. A context is used by one thread at a time: callers keep
 * one per worker thread, or take it from a lock-free single-slot pool (uid2_engine.c). */
#ifndef UID2_AEAD_H
#define UID2_AEAD_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

enum uid2_aead_kind {
    UID2_AEAD_GCM_DECRYPT = 0,
    UID2_AEAD_GCM_ENCRYPT = 1,
    UID2_AEAD_CBC_DECRYPT = 2,
    UID2_AEAD_KINDS = 3
};

#define UID2_GCM_NONCE_LEN 12u
#define UID2_GCM_TAG_LEN 16u
#define UID2_GCM_OVERHEAD (UID2_GCM_NONCE_LEN + UID2_GCM_TAG_LEN)
#define UID2_CBC_BLOCK 16u

/* 1 for the AES key sizes pycryptodome and OpenSSL accept (16, 24, 32 bytes). */
int uid2_aead_key_len_ok(size_t key_len);

/* A keyed context, or NULL (key length not 16/24/32, or OpenSSL failure). */
EVP_CIPHER_CTX *uid2_aead_ctx_new(int kind, const uint8_t *key, size_t key_len);
void uid2_aead_ctx_free(EVP_CIPHER_CTX *ctx);

/* blob = nonce (12) | ciphertext | tag (16). Writes blob_len - 28 bytes to out. 0, or -1 (short blob,
 * failed tag, OpenSSL error). `out` must not overlap `blob`. */
int uid2_gcm_open(EVP_CIPHER_CTX *ctx, const uint8_t *blob, size_t blob_len, uint8_t *out);

/* Writes nonce (12) | ciphertext (len) | tag (16) to out. 0 or -1. */
int uid2_gcm_seal(EVP_CIPHER_CTX *ctx, const uint8_t *nonce, const uint8_t *pt, size_t len, uint8_t *out);

/* Raw CBC decryption of len bytes (a non-zero multiple of 16): no padding is removed. 0 or -1. */
int uid2_cbc_open(EVP_CIPHER_CTX *ctx, const uint8_t *iv, const uint8_t *ct, size_t len, uint8_t *out);

/* n bytes from the OpenSSL CSPRNG (seeded from the OS). 0 or -1. */
int uid2_random_bytes(uint8_t *buf, size_t n);
/* n random bytes for nonces, from a per-thread pool that a fork never shares with the child (see
 * uid2_aead.c); 0 on success. */
int uid2_nonce_bytes(uint8_t *out, size_t n);

/* Wipe memory that held secrets (a memset the compiler cannot remove; OPENSSL_cleanse elsewhere). */
void uid2_wipe(void *p, size_t n);

#endif
