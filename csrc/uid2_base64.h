/* Base64 as the official SDK uses it: CPython 3.11's non-validating binascii.a2b_base64 (the decoder behind
 * base64.b64decode(s) without validate=True) and plain / url-safe encoders. No Python.h. */
#ifndef UID2_BASE64_H
#define UID2_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Upper bound of the decoded size of `len` input characters (plus `extra_pad` virtual '=' characters). */
#define UID2_B64_DECODED_MAX(len) ((((size_t)(len)) + 3u) / 4u * 3u)
/* Exact size of the padded standard encoding of `len` bytes. */
#define UID2_B64_ENCODED_LEN(len) ((((size_t)(len)) + 2u) / 3u * 4u)

/* Decode like CPython 3.11 binascii.a2b_base64(data, strict_mode=False):
 *   - characters outside the alphabet are skipped;
 *   - '=' ends the data once a quad holds >= 2 characters and enough '=' completed it, else is skipped;
 *   - a trailing partial quad is an error ("Incorrect padding" / "1 more than a multiple of 4").
 * url != 0 also accepts '-' and '_' as 62 and 63 (what base64.urlsafe_b64decode does by translating first).
 * extra_pad '=' characters are treated as if appended to the input (v4 padding without a copy).
 * `out` must hold UID2_B64_DECODED_MAX(len + extra_pad) bytes.
 * Returns the decoded length, or -1 where Python raises binascii.Error. */
ptrdiff_t uid2_b64_decode(const uint8_t *in, size_t len, size_t extra_pad, int url, uint8_t *out);

/* Standard alphabet with '=' padding (base64.b64encode). Writes UID2_B64_ENCODED_LEN(len) chars, no NUL. */
size_t uid2_b64_encode(const uint8_t *in, size_t len, char *out);

/* URL-safe alphabet without padding (Uid2Base64UrlCoder.encode). Returns the number of chars written. */
size_t uid2_b64url_encode_nopad(const uint8_t *in, size_t len, char *out);

#endif
