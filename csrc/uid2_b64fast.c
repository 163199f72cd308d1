/* Fast clean-case base64 decoding (see uid2_b64fast.h).
 *
 * x86-64 with SSSE3: 16 characters per step, classified with two nibble lookups (PSHUFB), translated with
 * a third, and packed 16 -> 12 bytes with two multiply-adds and a shuffle (the technique of Muła and
 * Lemire, "Faster Base64 Encoding and Decoding Using AVX2 Instructions", 2018; tables derived here).
 * Validity is accumulated over the whole input and tested once at the end. Elsewhere: a scalar loop
 * over a 256-byte table per alphabet. */
#include "uid2_b64fast.h"

#include <stdlib.h>
#include <string.h>

#define BAD 0xFFu

/* 256-entry tables: value 0..63, or BAD. Built from the alphabets at first use would need state; they
 * are small enough to spell out as ranges instead (see scalar_value). */
static inline uint32_t scalar_value(uint8_t c, int url)
{
    if (c >= 'A' && c <= 'Z')
        return (uint32_t)(c - 'A');
    if (c >= 'a' && c <= 'z')
        return (uint32_t)(c - 'a' + 26);
    if (c >= '0' && c <= '9')
        return (uint32_t)(c - '0' + 52);
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return BAD;
}

/* Decodes `body` characters (no '=') into exactly dec bytes; dec follows from body. 0 or -1. */
static int decode_scalar(const uint8_t *in, size_t body, uint8_t *out, int url)
{
    size_t i = 0;
    uint32_t bad = 0;
    for (; i + 4 <= body; i += 4) {
        uint32_t a = scalar_value(in[i], url), b = scalar_value(in[i + 1], url);
        uint32_t c = scalar_value(in[i + 2], url), d = scalar_value(in[i + 3], url);
        bad |= a | b | c | d;
        uint32_t v = (a << 18) | (b << 12) | (c << 6) | d;
        *out++ = (uint8_t)(v >> 16);
        *out++ = (uint8_t)(v >> 8);
        *out++ = (uint8_t)v;
    }
    size_t r = body - i; /* 0, 2 or 3 */
    if (r >= 2) {
        uint32_t a = scalar_value(in[i], url), b = scalar_value(in[i + 1], url);
        uint32_t c = r == 3 ? scalar_value(in[i + 2], url) : 0;
        bad |= a | b | c;
        uint32_t v = (a << 18) | (b << 12) | (c << 6);
        *out++ = (uint8_t)(v >> 16);
        if (r == 3)
            *out++ = (uint8_t)(v >> 8);
    }
    return (bad & ~63u) ? -1 : 0;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(UID2_FASTPATH_GENERIC)
#include <cpuid.h>
#include <tmmintrin.h>

#define B64_TARGET __attribute__((target("ssse3")))

static int have_ssse3 = -1; /* probed once; every thread computes and stores the same value */

static int ssse3(void)
{
    int v = __atomic_load_n(&have_ssse3, __ATOMIC_RELAXED);
    if (v < 0) {
        unsigned a = 0, b = 0, c = 0, d = 0;
        v = __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 9)) != 0;
        __atomic_store_n(&have_ssse3, v, __ATOMIC_RELAXED);
    }
    return v;
}

/* 16 characters -> 12 bytes in the low lanes of the result; *bad |= a non-zero byte for any character
 * outside the alphabet.
 *
 * Validity: each high nibble h gets a class bit (lut_hi); lut_lo[l] holds the class bits of the high
 * nibbles for which (h, l) is NOT an alphabet character. h = 0, 1, 8..15 share class 0x01 (never valid);
 * 2 -> 0x02 ("+/" or "-"), 3 -> 0x04 (digits), 4 and 6 -> 0x08 (letters from 1), 5 -> 0x10, 7 -> 0x20
 * (letters up to 0xA; url adds '_' = 0x5F to class 0x10).
 * Translation: value = c + roll[idx], idx = h, except '/' -> 1 (standard) and '_' -> 8 (url). */
static inline __attribute__((always_inline)) B64_TARGET __m128i decode16(__m128i c, __m128i *bad, int url)
{
    const __m128i lut_hi = _mm_setr_epi8(0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x08, 0x20, 0x01, 0x01, 0x01,
                                         0x01, 0x01, 0x01, 0x01, 0x01);
    const __m128i lut_lo = url ? _mm_setr_epi8(0x0B, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03,
                                               0x07, 0x37, 0x37, 0x35, 0x37, 0x27)
                               : _mm_setr_epi8(0x0B, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03,
                                               0x07, 0x35, 0x37, 0x37, 0x37, 0x35);
    const __m128i roll = url ? _mm_setr_epi8(0, 0, 17, 4, -65, -65, -71, -71, -32, 0, 0, 0, 0, 0, 0, 0)
                             : _mm_setr_epi8(0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m128i nib = _mm_set1_epi8(0x0F);
    __m128i hi = _mm_and_si128(_mm_srli_epi32(c, 4), nib);
    __m128i lo = _mm_and_si128(c, nib);
    *bad = _mm_or_si128(*bad, _mm_and_si128(_mm_shuffle_epi8(lut_lo, lo), _mm_shuffle_epi8(lut_hi, hi)));
    __m128i idx = url ? _mm_add_epi8(hi, _mm_and_si128(_mm_cmpeq_epi8(c, _mm_set1_epi8('_')), _mm_set1_epi8(3)))
                      : _mm_add_epi8(hi, _mm_cmpeq_epi8(c, _mm_set1_epi8('/')));
    __m128i v = _mm_add_epi8(c, _mm_shuffle_epi8(roll, idx));
    /* aaaaaa bbbbbb -> 12 bits per 16-bit lane; two of those -> 24 bits per 32-bit lane */
    v = _mm_maddubs_epi16(v, _mm_set1_epi32(0x01400140));
    v = _mm_madd_epi16(v, _mm_set1_epi32(0x00011000));
    return _mm_shuffle_epi8(v, _mm_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1));
}

static inline __attribute__((always_inline)) B64_TARGET int decode_ssse3(const uint8_t *in, size_t body,
                                                                        uint8_t *out, size_t dec, int url)
{
    __m128i bad = _mm_setzero_si128();
    size_t quads = body / 4 * 4; /* characters in whole quads; 0, 2 or 3 more follow */
    size_t i = 0, o = 0;
    if (quads >= 16) {
        /* 16-byte stores (12 bytes of output) while 4 spare bytes remain in out */
        for (; i + 16 <= quads && o + 16 <= dec; i += 16, o += 12)
            _mm_storeu_si128((__m128i *)(out + o), decode16(_mm_loadu_si128((const __m128i *)(in + i)), &bad, url));
        /* the rest of the whole quads: their last 16 characters again (overlapping, so no partial load),
         * stored as exactly 12 bytes ending at the end of the quads' output */
        for (; i < quads; i += 16, o += 12) {
            size_t at = i + 16 <= quads ? i : quads - 16, to = at / 4 * 3;
            __m128i v = decode16(_mm_loadu_si128((const __m128i *)(in + at)), &bad, url);
            _mm_storel_epi64((__m128i *)(out + to), v);
            uint32_t w = (uint32_t)_mm_cvtsi128_si32(_mm_srli_si128(v, 8));
            memcpy(out + to + 8, &w, 4);
        }
        o = quads / 4 * 3;
    } else if (quads > 0) {
        /* fewer than 16 characters: pad with 'A' (value 0) in a copy */
        uint8_t cbuf[16], obuf[16];
        memset(cbuf, 'A', sizeof cbuf);
        memcpy(cbuf, in, quads);
        _mm_storeu_si128((__m128i *)obuf, decode16(_mm_loadu_si128((const __m128i *)cbuf), &bad, url));
        o = quads / 4 * 3;
        memcpy(out, obuf, o);
    }
    int rc = _mm_movemask_epi8(_mm_cmpeq_epi8(bad, _mm_setzero_si128())) == 0xFFFF ? 0 : -1;
    if (body > quads && rc == 0) /* 2 or 3 characters -> 1 or 2 bytes */
        rc = decode_scalar(in + quads, body - quads, out + o, url);
    return rc;
}

B64_TARGET static int decode_simd(const uint8_t *in, size_t body, uint8_t *out, size_t dec, int url)
{
    return url ? decode_ssse3(in, body, out, dec, 1) : decode_ssse3(in, body, out, dec, 0);
}
#endif

int uid2_b64fast_decode(const char *in, size_t len, uint8_t *out, size_t *out_len, int url)
{
    const uint8_t *s = (const uint8_t *)in;
    size_t body = len;
    if (url) {
        if (len % 4 == 1)
            return -1;
    } else {
        if (len % 4 != 0)
            return -1;
        /* at most two '=' at the very end; a third (or one elsewhere) is not clean and fails below */
        if (len > 0 && s[len - 1] == '=')
            body -= 1 + (s[len - 2] == '=');
    }
    size_t dec = body / 4 * 3 + (body % 4 * 3) / 4; /* 2 chars -> 1 byte, 3 -> 2 */
    if (body % 4 == 1)
        return -1; /* "A===" and the like */
    int rc;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(UID2_FASTPATH_GENERIC)
    if (ssse3())
        rc = decode_simd(s, body, out, dec, url != 0);
    else
#endif
        rc = decode_scalar(s, body, out, url != 0);
    if (rc == 0)
        *out_len = dec;
    return rc;
}

int uid2_b64fast_enabled(void)
{
    static int cached = -1;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v < 0) {
        const char *e = getenv("UID2FAST_NO_FASTPATH");
        v = !(e != NULL && e[0] != '\0' && strcmp(e, "0") != 0);
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v;
}
