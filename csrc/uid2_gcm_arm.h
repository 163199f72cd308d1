/* AES-GCM and AES-CBC decryption on aarch64 with the ARMv8 cryptography extensions (AESE/AESD/AESMC/AESIMC
 * and PMULL): the same interface as uid2_gcm_ni.h, one name prefix apart, so uid2_kernels.h forwards to
 * either.
 *
 * A uid2_gcm_arm_key holds everything derived from the AES key (round keys for both directions, the GHASH
 * key powers); it is computed once (uid2_gcm_arm_key_init) and read-only afterwards, so any number of
 * threads use one key at once and it can live in the immutable key table. The layout below belongs to
 * uid2_gcm_arm.c, which may change it; nothing else looks inside.
 *
 * Contract (every function; the same as the uid2_gcm_ni_* functions of the same suffix):
 *   - constant time: no branch or memory index depends on key, plaintext, ciphertext or tag (lengths and
 *     the key size are public); the tag is compared in constant time;
 *   - decryption that fails the tag zeroes the ct_len bytes of out (never a partial result);
 *   - out may be exactly the input (in place), but must not overlap it otherwise;
 *   - lengths up to UID2_GCM_ARM_MAX_LEN (the GCM limit); no allocation, no Python.h.
 * uid2_kernels.c decides whether the CPU has the instructions (HWCAP_AES | HWCAP_PMULL | HWCAP_ASIMD on
 * Linux, always on Apple silicon) and calls these only then. Elsewhere (another architecture) the file
 * compiles to nothing that is ever called. */
#ifndef UID2_GCM_ARM_H
#define UID2_GCM_ARM_H

#include <stddef.h>
#include <stdint.h>

#include "uid2_port.h"

#define UID2_GCM_ARM_MAX_LEN (((uint64_t)1 << 36) - 32u)

typedef struct {
    UID2_ALIGN16 uint8_t rk[15][16]; /* encryption round keys 0 .. rounds */
    uint8_t drk[15][16];             /* decryption round keys (InvMixColumns applied) for CBC */
    uint8_t hpow[8][16];             /* H^1 .. H^8, byte-reversed and times x^-1 (as uid2_gcm_ni.c) */
    uint8_t hkar[8][16];             /* low 8 bytes: the two halves of hpow[i] xored (Karatsuba) */
    uint32_t rounds;                 /* 10, 12 or 14 (0: not initialised) */
    uint32_t pad_[3];
} uid2_gcm_arm_key;

/* 1 when this build carries the ARMv8 kernels (aarch64 with GCC or Clang; 0 elsewhere, e.g. MSVC, where
 * uid2_gcm_arm.c compiles to refusing stubs): uid2_kernels.c uses the family only then. */
int uid2_gcm_arm_built(void);

/* Expands a 16-, 24- or 32-byte key. 0, or -1 for any other length (then *k is zeroed). */
int uid2_gcm_arm_key_init(uid2_gcm_arm_key *k, const uint8_t *key, size_t key_len);
void uid2_gcm_arm_key_wipe(uid2_gcm_arm_key *k);

/* No AAD, 16-byte tag. 0, or -1 (tag mismatch, or beyond the GCM limit; out zeroed). */
int uid2_gcm_arm_decrypt(const uid2_gcm_arm_key *k, const uint8_t nonce[12], const uint8_t *ct, size_t ct_len,
                         const uint8_t tag[16], uint8_t *out);
int uid2_gcm_arm_encrypt(const uid2_gcm_arm_key *k, const uint8_t nonce[12], const uint8_t *pt, size_t len,
                         uint8_t *out, uint8_t tag[16]);

/* With AAD, and (decrypt) a tag of tag_len bytes: 4, 8 or 12..16 (for the NIST vectors). */
int uid2_gcm_arm_decrypt_ex(const uid2_gcm_arm_key *k, const uint8_t nonce[12], const uint8_t *aad,
                            size_t aad_len, const uint8_t *ct, size_t ct_len, const uint8_t *tag, size_t tag_len,
                            uint8_t *out);
int uid2_gcm_arm_encrypt_ex(const uid2_gcm_arm_key *k, const uint8_t nonce[12], const uint8_t *aad,
                            size_t aad_len, const uint8_t *pt, size_t len, uint8_t *out, uint8_t tag[16]);

/* Raw AES-CBC decryption of len bytes (a non-zero multiple of 16), no padding removed. 0 or -1. */
int uid2_cbc_arm_decrypt(const uid2_gcm_arm_key *k, const uint8_t iv[16], const uint8_t *ct, size_t len,
                         uint8_t *out);

#endif
