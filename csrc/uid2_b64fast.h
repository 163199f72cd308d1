/* A fast base64 / base64url decoder for the clean case only (uid2_base64.c stays the exact decoder), and a
 * fast encoder.
 *
 * "Clean" means a string CPython decodes without skipping anything:
 *   url == 0: standard alphabet (A-Z a-z 0-9 + /), length a multiple of 4, 0..2 '=' at the very end
 *             (what base64.b64decode(s) accepts unchanged);
 *   url != 0: url-safe alphabet (A-Z a-z 0-9 - _), no '=', len % 4 != 1 (decoded as the SDK's
 *             Uid2Base64UrlCoder.decode does after it pads to a multiple of 4).
 * Anything else (other characters, mixed alphabets, whitespace, misplaced '=') returns -1 and the caller
 * falls back to uid2_b64_decode, which reproduces CPython's non-validating decoder including its errors.
 * Tokens are not secret, so the decoder is not constant time. No Python.h, no allocation. */
#ifndef UID2_B64FAST_H
#define UID2_B64FAST_H

#include <stddef.h>
#include <stdint.h>

/* Decodes a clean input of len characters into out, which must hold UID2_B64FAST_DECODED_MAX(len) bytes
 * (exactly the decoded length suffices: nothing is written past it). Returns 0 and sets *out_len, or -1
 * (not clean: the contents of out are then unspecified). */
int uid2_b64fast_decode(const char *in, size_t len, uint8_t *out, size_t *out_len, int url);

/* Upper bound of the decoded size (the exact size for clean url input; for standard input padding
 * makes the exact size 1 or 2 smaller). */
#define UID2_B64FAST_DECODED_MAX(len) (((size_t)(len)) / 4u * 3u + (((size_t)(len)) % 4u * 3u) / 4u)

/* Encodes len bytes: the standard alphabet with '=' padding (url == 0, as uid2_b64_encode) or the url-safe
 * alphabet without padding (url != 0, as uid2_b64url_encode_nopad), the same characters as those; returns
 * their count (no NUL). AVX-512 VBMI or SSSE3 on x86-64 (elsewhere it calls those encoders): constant time
 * in the data, no table lookups, so it may encode a decrypted raw UID. Never reads past in[len). */
size_t uid2_b64fast_encode(const uint8_t *in, size_t len, char *out, int url);

/* uid2_b64fast_encode(in, 32, out, 0) for the common raw UID: exactly 44 characters (standard alphabet, one
 * '='), written with three 16-byte groups and no tail loop. */
void uid2_b64fast_encode32(const uint8_t *in, char *out);

/* The codecs this process uses: "avx512vbmi" (x86-64 with AVX-512 VBMI; UID2FAST_NO_VBMI=1 steps down),
 * "ssse3", "neon" or "scalar". Chosen once, cached. */
const char *uid2_b64fast_kernel(void);

/* 0 when UID2FAST_NO_FASTPATH is set (not "" or "0"): then the engine should use the exact decoder only
 * (so one switch runs the whole suite on the reference paths). 1 otherwise. Read once, cached. */
int uid2_b64fast_enabled(void);

#endif
