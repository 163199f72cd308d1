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

/* Sextet values of the url-safe decoder: [A-Za-z0-9], '+' and '-' (62), '/' and '_' (63); 0xFF elsewhere. */
extern const uint8_t uid2_b64_tab_url[256];

/* The first four characters of a str token decoded the way the version check does it (the url alphabet
 * when any of them is '-' or '_', else the standard one), when all four are alphabet characters: then both
 * alphabets agree on them and nothing is skipped. 0 and out[0..3), or -1 (take uid2_b64_decode). */
static inline int uid2_b64_quad(const uint8_t *in, uint8_t out[3])
{
    uint32_t a = uid2_b64_tab_url[in[0]], b = uid2_b64_tab_url[in[1]], c = uid2_b64_tab_url[in[2]],
             d = uid2_b64_tab_url[in[3]];
    if ((a | b | c | d) & 0x80u)
        return -1;
    uint32_t v = a << 18 | b << 12 | c << 6 | d;
    out[0] = (uint8_t)(v >> 16);
    out[1] = (uint8_t)(v >> 8);
    out[2] = (uint8_t)v;
    return 0;
}

#endif
