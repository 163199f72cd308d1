/* Base64 codecs replicating CPython 3.11 Modules/binascii.c (non-strict a2b_base64) bit for bit. */
#include "uid2_base64.h"

#include <string.h>

/* Sextet values; X (0xFF) marks characters a2b_base64 skips. '=' is handled before the lookup.
 * tab_url also maps '-' and '_' to 62 and 63 (urlsafe_b64decode translates them to '+' and '/'). */
#define X 0xFF
static const uint8_t tab_std[256] = {
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, 62, X, X, X, 63,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, X, X, X, X, X, X,
    X, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, X, X, X, X, X,
    X, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
};

const uint8_t uid2_b64_tab_url[256] = {
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, 62, X, 62, X, 63,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, X, X, X, X, X, X,
    X, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, X, X, X, X, 63,
    X, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
};
#undef X

ptrdiff_t uid2_b64_decode(const uint8_t *in, size_t len, size_t extra_pad, int url, uint8_t *out)
{
    const uint8_t *tab = url ? uid2_b64_tab_url : tab_std;
    uint8_t *o = out;
    size_t i = 0;

    /* Fast path: whole quads of alphabet characters (the normal case for a token). Stops at the first
     * '=' or skipped character; the state machine below then continues from a quad boundary. */
    while (i + 4 <= len) {
        unsigned a = tab[in[i]], b = tab[in[i + 1]], c = tab[in[i + 2]], d = tab[in[i + 3]];
        if ((a | b | c | d) > 63u)
            break;
        uint32_t w = (a << 18) | (b << 12) | (c << 6) | d;
        o[0] = (uint8_t)(w >> 16);
        o[1] = (uint8_t)(w >> 8);
        o[2] = (uint8_t)w;
        o += 3;
        i += 4;
    }

    /* The CPython loop (binascii_a2b_base64_impl, strict_mode == 0). */
    int quad_pos = 0;
    unsigned leftchar = 0;
    int pads = 0;
    size_t total = len + extra_pad;
    for (; i < total; i++) {
        uint8_t ch = i < len ? in[i] : (uint8_t)'=';
        if (ch == '=') {
            if (quad_pos >= 2 && quad_pos + ++pads >= 4)
                return o - out; /* a complete pad sequence: the rest of the input is ignored */
            continue;
        }
        unsigned v = tab[ch];
        if (v > 63u)
            continue;
        pads = 0;
        switch (quad_pos) {
        case 0:
            quad_pos = 1;
            leftchar = v;
            break;
        case 1:
            quad_pos = 2;
            *o++ = (uint8_t)((leftchar << 2) | (v >> 4));
            leftchar = v & 0x0f;
            break;
        case 2:
            quad_pos = 3;
            *o++ = (uint8_t)((leftchar << 4) | (v >> 2));
            leftchar = v & 0x03;
            break;
        default:
            quad_pos = 0;
            *o++ = (uint8_t)((leftchar << 6) | v);
            leftchar = 0;
            break;
        }
    }
    if (quad_pos != 0)
        return -1; /* "Incorrect padding" or "cannot be 1 more than a multiple of 4" */
    return o - out;
}

static const char enc_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char enc_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t encode(const uint8_t *in, size_t len, char *out, const char *alpha, int pad)
{
    char *o = out;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t w = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
        o[0] = alpha[w >> 18];
        o[1] = alpha[(w >> 12) & 63];
        o[2] = alpha[(w >> 6) & 63];
        o[3] = alpha[w & 63];
        o += 4;
    }
    size_t rest = len - i;
    if (rest == 1) {
        uint32_t w = (uint32_t)in[i] << 16;
        *o++ = alpha[w >> 18];
        *o++ = alpha[(w >> 12) & 63];
        if (pad) {
            *o++ = '=';
            *o++ = '=';
        }
    } else if (rest == 2) {
        uint32_t w = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
        *o++ = alpha[w >> 18];
        *o++ = alpha[(w >> 12) & 63];
        *o++ = alpha[(w >> 6) & 63];
        if (pad)
            *o++ = '=';
    }
    return (size_t)(o - out);
}

size_t uid2_b64_encode(const uint8_t *in, size_t len, char *out)
{
    return encode(in, len, out, enc_std, 1);
}

size_t uid2_b64url_encode_nopad(const uint8_t *in, size_t len, char *out)
{
    return encode(in, len, out, enc_url, 0);
}
