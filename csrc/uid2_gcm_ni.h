/* AES-GCM (and AES-CBC decryption) on x86-64 with AES-NI and PCLMULQDQ: the engine's AES on x86-64.
 *
 * A uid2_gcm_ni_key holds everything derived from the AES key: the round keys and H, H^2 .. H^8 for the
 * aggregated GHASH. It is computed once (uid2_gcm_ni_key_init) and is read-only afterwards, so one key
 * can be used by any number of threads at once and can be embedded in an immutable key table.
 *
 * The engine reaches these through uid2_kernels.h, which calls them only when uid2_hw_kernels() selected
 * this family (on a CPU without AES-NI and PCLMULQDQ, or on another architecture, they must not be called;
 * they return -1 on non-x86-64 builds). No Python.h, no allocation. */
#ifndef UID2_GCM_NI_H
#define UID2_GCM_NI_H

#include <stddef.h>
#include <stdint.h>

#include "uid2_port.h"

#define UID2_GCM_NI_NONCE_LEN 12u
#define UID2_GCM_NI_TAG_LEN 16u
/* The largest message GCM allows (2^39 - 256 bits, SP 800-38D 5.2.1.1). */
#define UID2_GCM_NI_MAX_LEN (((uint64_t)1 << 36) - 32u)

/* Everything derived from one AES key. Plain bytes so the header needs no intrinsics; the powers of H
 * are stored bit-reflected and multiplied by x^-1 (so a product needs no extra shift). */
typedef struct {
    UID2_ALIGN16 uint8_t rk[15][16];        /* encryption round keys 0 .. rounds */
    uint8_t drk[15][16];                    /* decryption round keys (InvMixColumns applied), for CBC */
    uint8_t hpow[8][16];                    /* H^1 .. H^8 */
    uint8_t hkar[8][16];                    /* low qword: the two halves of hpow[i] xored (Karatsuba) */
    uint32_t rounds;                        /* 10, 12 or 14 (0: not initialised) */
    uint32_t pad_[3];
} uid2_gcm_ni_key;

/* 1 when the CPU has AES-NI, PCLMULQDQ, SSSE3 and SSE4.1 (uid2_kernels.c: UID2_HW_X86_AESNI). Probed once
 * and cached; thread-safe. UID2FAST_NO_FASTPATH does not change it: AES has no other implementation. */
int uid2_gcm_ni_available(void);

/* How many counter blocks each AES instruction of the keystream carries in this process: 4 (VAES on 512-bit
 * registers, with AVX-512), 2 (VAES on 256-bit registers) or 1 (AES-NI). The best the CPU and the OS support,
 * chosen on first use, unless UID2FAST_NO_VAES is set (to anything but "" or "0"): then 1. Every width gives
 * the same bytes; only the speed differs (a message of several blocks runs faster the wider). GCC and Clang
 * builds only; an MSVC build always says 1. */
int uid2_gcm_ni_width(void);

/* Use width `w` (1, 2 or 4) from now on, for the whole process: 0, or -1 (nothing changed) when this CPU or
 * build cannot. For tests and benchmarks: the engine never calls it. */
int uid2_gcm_ni_use_width(int w);

/* Expands a 16-, 24- or 32-byte key. 0, or -1 for any other length (then *k is zeroed). */
int uid2_gcm_ni_key_init(uid2_gcm_ni_key *k, const uint8_t *key, size_t key_len);

/* Zeroes the key material in a way the compiler cannot drop. */
void uid2_gcm_ni_key_wipe(uid2_gcm_ni_key *k);

/* Decrypts ct_len bytes (no AAD, 16-byte tag). 0, or -1 when the tag does not match (or the length is
 * beyond the GCM limit): then the ct_len bytes of `out` are zeroed. The tag is compared in constant time.
 * `out` may be exactly `ct` (in place) but must not overlap it otherwise. */
int uid2_gcm_ni_decrypt(const uid2_gcm_ni_key *k, const uint8_t nonce[12], const uint8_t *ct, size_t ct_len,
                        const uint8_t tag[16], uint8_t *out);

/* Encrypts len bytes (no AAD); writes len bytes to out and the 16-byte tag. 0, or -1 beyond the GCM limit.
 * `out` may be exactly `pt`. The caller supplies a nonce never used before with this key. */
int uid2_gcm_ni_encrypt(const uid2_gcm_ni_key *k, const uint8_t nonce[12], const uint8_t *pt, size_t len,
                        uint8_t *out, uint8_t tag[16]);

/* The general forms: additional authenticated data, and (decrypt) a tag of tag_len bytes, one of the
 * lengths SP 800-38D allows (4, 8, 12..16; the engine uses 16 only: shorter tags are for test vectors).
 * uid2_gcm_ni_encrypt_ex always writes the full 16-byte tag; truncate it if you must. */
int uid2_gcm_ni_decrypt_ex(const uid2_gcm_ni_key *k, const uint8_t nonce[12], const uint8_t *aad,
                           size_t aad_len, const uint8_t *ct, size_t ct_len, const uint8_t *tag,
                           size_t tag_len, uint8_t *out);
int uid2_gcm_ni_encrypt_ex(const uid2_gcm_ni_key *k, const uint8_t nonce[12], const uint8_t *aad,
                           size_t aad_len, const uint8_t *pt, size_t len, uint8_t *out, uint8_t tag[16]);

/* Raw AES-CBC decryption of len bytes (a non-zero multiple of 16; no padding is removed) with the key's
 * decryption round keys. 0, or -1 for a bad length. `out` may be exactly `ct`. Constant time (AESDEC). */
int uid2_cbc_ni_decrypt(const uid2_gcm_ni_key *k, const uint8_t iv[16], const uint8_t *ct, size_t len,
                        uint8_t *out);

#endif
