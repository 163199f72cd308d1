/* Multi-buffer AES-256-GCM decryption of short messages on x86-64 (beside the one-message kernel,
 * uid2_gcm_ni.h).
 *
 * A v4 token holds two short GCM messages (129-130 and 68-69 bytes), each far too short to keep the AES
 * units busy: the rounds of one message form a dependent chain. This kernel decrypts up to 8 messages, each
 * with its own key, nonce, length and tag, side by side: every counter block of every message goes through
 * the rounds together, four to a 512-bit register (VAES), two to a 256-bit one, or one to a 128-bit AES-NI
 * register, and each message's GHASH runs in its own 128-bit lane with that message's powers of H. Messages
 * with the same number of 16-byte blocks share a pass (129 and 130 bytes do, so do 68 and 69).
 *
 * Keys are the read-only uid2_gcm_ni_key of the one-message kernel (AES-256 here; other sizes go one by one).
 * Constant time in the data: branches and indices depend only on the lengths, the message count and the
 * instruction set; each message's tag is compared in constant time and a message whose tag does not match has
 * its output zeroed. No Python.h, no allocation. */
#ifndef UID2_GCM_MB_H
#define UID2_GCM_MB_H

#include <stddef.h>
#include <stdint.h>

#include "uid2_gcm_ni.h"

/* Messages decrypted side by side per pass; uid2_gcm_mb_decrypt takes up to 32 and runs passes of 8. */
#define UID2_GCM_MB_LANES 8u
#define UID2_GCM_MB_MAX_MSGS 32u
/* Messages longer than this (9 blocks) go through the one-message kernel one after another. */
#define UID2_GCM_MB_MAX_LEN 144u

/* Instruction sets; uid2_gcm_mb_impl() says which one this process uses. */
#define UID2_GCM_MB_NONE 0    /* off: UID2FAST_NO_MULTIBUF or UID2FAST_NO_FASTPATH set, or no AES-NI */
#define UID2_GCM_MB_AESNI 1   /* AES-NI + PCLMULQDQ, 128-bit registers, 2 messages interleaved */
#define UID2_GCM_MB_VAES256 2 /* VAES + VPCLMULQDQ + AVX2, two messages per register */
#define UID2_GCM_MB_VAES512 3 /* VAES + VPCLMULQDQ + AVX-512 (F, BW), four messages per register */

typedef struct {
    const uid2_gcm_ni_key *key; /* initialised with a 32-byte key (uid2_gcm_ni_key_init) */
    const uint8_t *nonce;       /* 12 bytes */
    const uint8_t *ct;          /* len bytes */
    size_t len;
    const uint8_t *tag;         /* 16 bytes */
    uint8_t *out;               /* len bytes; may be exactly ct, must not overlap another message's buffers */
} uid2_gcm_mb_msg;

/* The best instruction set the CPU and the OS (XSAVE state for the wider registers) support, or
 * UID2_GCM_MB_NONE when UID2FAST_NO_MULTIBUF or UID2FAST_NO_FASTPATH is set (not "" or "0") or the one-message
 * kernel is unavailable. Probed once; thread-safe. */
int uid2_gcm_mb_impl(void);

/* 1 if the CPU and the OS support `impl` (whatever the environment says): for tests and benchmarks. */
int uid2_gcm_mb_supported(int impl);

/* Decrypts msgs[0 .. n) (n <= UID2_GCM_MB_MAX_MSGS; more: nothing done, every bit set), no AAD, 16-byte tags.
 * Returns a mask with bit i set when message i failed (its tag does not match): its len output bytes are
 * then zeroed. Messages longer than UID2_GCM_MB_MAX_LEN or with a key other than AES-256 are decrypted by the
 * one-message kernel. Uses uid2_gcm_mb_impl(); call it only when that is not UID2_GCM_MB_NONE. */
uint32_t uid2_gcm_mb_decrypt(const uid2_gcm_mb_msg *msgs, size_t n);

/* The same with an explicit instruction set (one uid2_gcm_mb_supported() accepts); anything else fails every
 * message. */
uint32_t uid2_gcm_mb_decrypt_with(int impl, const uid2_gcm_mb_msg *msgs, size_t n);

#endif
