/* NEON base64 for aarch64: the bodies behind uid2_b64fast.h's decoder and encoder there (uid2_b64fast.c
 * forwards to these when uid2_b64_neon_built() and the CPU has NEON; the SSSE3 code is the x86-64
 * counterpart). Same contracts as the SSSE3 functions in uid2_b64fast.c:
 *   decode: `body` characters with no '=' (clean alphabet for `url`), into exactly `dec` bytes
 *           (dec = body / 4 * 3 + (body % 4 * 3) / 4, body % 4 != 1); 0, or -1 if any character is
 *           outside the alphabet (out is then unspecified). Never reads past in[body) nor writes past
 *           out[dec). Not constant time (tokens are public).
 *   encode: len bytes -> the standard alphabet with '=' padding (url == 0) or url-safe without padding;
 *           returns the character count. Constant time in the data, no table lookups in memory (it
 *           encodes decrypted raw UIDs). encode32: exactly 32 bytes -> 44 characters.
 * No Python.h, no allocation. */
#ifndef UID2_B64_NEON_H
#define UID2_B64_NEON_H

#include <stddef.h>
#include <stdint.h>

/* 1 when this build carries the NEON codecs (aarch64 with GCC or Clang; 0 elsewhere). */
int uid2_b64_neon_built(void);

int uid2_b64_neon_decode(const uint8_t *in, size_t body, uint8_t *out, size_t dec, int url);
size_t uid2_b64_neon_encode(const uint8_t *in, size_t len, char *out, int url);
void uid2_b64_neon_encode32(const uint8_t *in, char *out);

#endif
