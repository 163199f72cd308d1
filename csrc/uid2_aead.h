/* AEAD constants, the OS random source and secret wiping. AES itself runs in the hardware kernels
 * (uid2_kernels.h); the engine needs nothing but libc and the CPU. */
#ifndef UID2_AEAD_H
#define UID2_AEAD_H

#include <stddef.h>
#include <stdint.h>

#define UID2_GCM_NONCE_LEN 12u
#define UID2_GCM_TAG_LEN 16u
#define UID2_GCM_OVERHEAD (UID2_GCM_NONCE_LEN + UID2_GCM_TAG_LEN)
#define UID2_CBC_BLOCK 16u

/* 1 for the AES key sizes pycryptodome and OpenSSL accept (16, 24, 32 bytes). */
int uid2_aead_key_len_ok(size_t key_len);

/* n bytes from the operating system's CSPRNG: getrandom(2) on Linux (/dev/urandom where the kernel lacks
 * it), getentropy on macOS and the BSDs, BCryptGenRandom on Windows. 0 or -1. */
int uid2_random_bytes(uint8_t *buf, size_t n);
/* n random bytes for nonces, from a per-thread pool that a fork never shares with the child (see
 * uid2_aead.c); 0 on success. */
int uid2_nonce_bytes(uint8_t *out, size_t n);

/* Wipe memory that held secrets (a memset the compiler cannot remove). */
void uid2_wipe(void *p, size_t n);

#endif
