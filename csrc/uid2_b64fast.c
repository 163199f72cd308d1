/* Fast clean-case base64 decoding (see uid2_b64fast.h).
 *
 * x86-64 with SSSE3: 16 characters per step, classified with two nibble lookups (PSHUFB), translated with
 * a third, and packed 16 -> 12 bytes with two multiply-adds and a shuffle (the technique of Muła and
 * Lemire, "Faster Base64 Encoding and Decoding Using AVX2 Instructions", 2018; tables derived here).
 * Validity is accumulated over the whole input and tested once at the end. With AVX-512 VBMI, 64 characters
 * per step instead (decode_vbmi and encode_vbmi, below). aarch64: the NEON codecs of uid2_b64_neon.c once
 * built; elsewhere a scalar loop.
 * The encoder (SSSE3 as well) is the reverse: two multiplies spread 12 bytes over 16 six-bit fields, a
 * register table adds each field's ASCII offset. */
#include "uid2_b64fast.h"
#include "uid2_b64_neon.h"
#include "uid2_base64.h"
#include "uid2_kernels.h"

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

#if defined(UID2_KERNELS_X86)
#include <immintrin.h>
#include <tmmintrin.h>

#include "uid2_simd.h"

#if defined(UID2_GNUC)
#define B64_TARGET __attribute__((target("ssse3")))
#else
#define B64_TARGET
#endif

/* The x86-64 codec level, chosen once: 2 AVX-512 VBMI (unless UID2FAST_NO_VBMI is set to anything but "" or
 * "0"), 1 SSSE3, 0 none (the scalar loops). */
static int x86_level_cache = -1;

static int x86_level(void)
{
    int v = uid2_atomic_load_int(&x86_level_cache);
    if (v < 0) {
        unsigned f = uid2_cpu_features();
        const char *e = getenv("UID2FAST_NO_VBMI");
        int no_vbmi = e != NULL && e[0] != '\0' && strcmp(e, "0") != 0;
        v = (f & UID2_CPU_X86_AVX512VBMI) && !no_vbmi ? 2 : (f & UID2_CPU_X86_SSSE3) ? 1 : 0;
        uid2_atomic_store_int(&x86_level_cache, v);
    }
    return v;
}


/* The last n (1..16) bytes of p[0 .. len), len >= 16, in the low n lanes (the others zero): one load that
 * ends at p + len and a byte shift, so nothing past the input is read. *fill_mask gets 0xFF in the lanes
 * from n on. */
static const int8_t shift_tab[32] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
                                     -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1};

UID2_ALWAYS_INLINE B64_TARGET __m128i load_tail(const uint8_t *p, size_t len, size_t n,
                                                                          __m128i *fill_mask)
{
    __m128i idx = _mm_loadu_si128((const __m128i *)(shift_tab + 16 - n));
    *fill_mask = _mm_cmpgt_epi8(_mm_setzero_si128(), idx);
    return _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + len - 16)), idx);
}

/* 16 characters -> 12 bytes in the low lanes of the result; *bad |= a non-zero byte for any character
 * outside the alphabet.
 *
 * Validity: each high nibble h gets a class bit (lut_hi); lut_lo[l] holds the class bits of the high
 * nibbles for which (h, l) is NOT an alphabet character. h = 0, 1, 8..15 share class 0x01 (never valid);
 * 2 -> 0x02 ("+/" or "-"), 3 -> 0x04 (digits), 4 and 6 -> 0x08 (letters from 1), 5 -> 0x10, 7 -> 0x20
 * (letters up to 0xA; url adds '_' = 0x5F to class 0x10).
 * Translation: value = c + roll[idx], idx = h, except '/' -> 1 (standard) and '_' -> 8 (url). */
UID2_ALWAYS_INLINE B64_TARGET __m128i decode16(__m128i c, __m128i *bad, int url)
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

UID2_ALWAYS_INLINE B64_TARGET int decode_ssse3(const uint8_t *in, size_t body,
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
        i = quads;
    }
    if (body > i) {
        /* fewer than 16 characters left (the 2 or 3 after the last quad, or a short input): padded with 'A'
         * (value 0) to 16; only their bytes are stored */
        __m128i c, fill;
        if (body >= 16) {
            c = load_tail(in, body, body - i, &fill);
            c = _mm_or_si128(c, _mm_and_si128(fill, _mm_set1_epi8('A')));
        } else {
            uint8_t cbuf[16];
            memset(cbuf, 'A', sizeof cbuf);
            memcpy(cbuf, in, body);
            c = _mm_loadu_si128((const __m128i *)cbuf);
        }
        uid2_store_low(out + i / 4 * 3, decode16(c, &bad, url), dec - i / 4 * 3);
    }
    return _mm_movemask_epi8(_mm_cmpeq_epi8(bad, _mm_setzero_si128())) == 0xFFFF ? 0 : -1;
}

B64_TARGET static int decode_simd(const uint8_t *in, size_t body, uint8_t *out, size_t dec, int url)
{
    return url ? decode_ssse3(in, body, out, dec, 1) : decode_ssse3(in, body, out, dec, 0);
}

/* 12 bytes (the low lanes of in) -> 16 characters. Each 3 bytes b0 b1 b2 are spread over a 32-bit lane as
 * b1 b0 b2 b1; two masked multiplies move the four 6-bit fields a b c d to the low bits of the lane's four
 * bytes. The ASCII offset for each value comes from a 16-entry register table indexed by a classification
 * of the value (0..25 -> 13 ('A'), 26..51 -> 0 ('a' - 26), 52..61 -> 1..10 ('0' - 52), 62 -> 11, 63 -> 12),
 * so no memory is indexed by data: constant time, fit for a decrypted raw UID. */
UID2_ALWAYS_INLINE B64_TARGET __m128i encode12(__m128i in, int url)
{
    in = _mm_shuffle_epi8(in, _mm_set_epi8(10, 11, 9, 10, 7, 8, 6, 7, 4, 5, 3, 4, 1, 2, 0, 1));
    __m128i ac = _mm_mulhi_epu16(_mm_and_si128(in, _mm_set1_epi32(0x0fc0fc00)), _mm_set1_epi32(0x04000040));
    __m128i bd = _mm_mullo_epi16(_mm_and_si128(in, _mm_set1_epi32(0x003f03f0)), _mm_set1_epi32(0x01000010));
    __m128i v = _mm_or_si128(ac, bd);
    __m128i cls = _mm_subs_epu8(v, _mm_set1_epi8(51));
    cls = _mm_or_si128(cls, _mm_and_si128(_mm_cmpgt_epi8(_mm_set1_epi8(26), v), _mm_set1_epi8(13)));
    const __m128i offset = url ? _mm_setr_epi8(71, -4, -4, -4, -4, -4, -4, -4, -4, -4, -4, '-' - 62, '_' - 63, 65,
                                               0, 0)
                               : _mm_setr_epi8(71, -4, -4, -4, -4, -4, -4, -4, -4, -4, -4, '+' - 62, '/' - 63, 65,
                                               0, 0);
    return _mm_add_epi8(v, _mm_shuffle_epi8(offset, cls));
}

UID2_ALWAYS_INLINE B64_TARGET size_t encode_ssse3(const uint8_t *in, size_t len, char *out,
                                                                           int url)
{
    size_t i = 0, o = 0;
    /* 16-byte loads while 16 bytes remain (12 are used: nothing is read past the input) */
    for (; i + 16 <= len; i += 12, o += 16)
        _mm_storeu_si128((__m128i *)(out + o), encode12(_mm_loadu_si128((const __m128i *)(in + i)), url));
    /* the last 0..15 bytes, zero-extended, in groups of up to 12; only their characters are stored */
    while (i < len) {
        size_t r = len - i, m = r < 12 ? r : 12;
        size_t chars = m / 3 * 4 + (m % 3 ? m % 3 + 1 : 0);
        __m128i x, unused;
        if (len >= 16) {
            x = load_tail(in, len, r, &unused); /* lanes from r on are zero; encode12 reads lanes 0..11 */
        } else {
            uint8_t ibuf[16] = {0};
            memcpy(ibuf, in + i, r);
            x = _mm_loadu_si128((const __m128i *)ibuf);
        }
        x = encode12(x, url);
        if (chars == 16)
            _mm_storeu_si128((__m128i *)(out + o), x);
        else
            uid2_store_low((uint8_t *)out + o, x, chars);
        i += m;
        o += chars;
    }
    if (!url)
        while (o % 4)
            out[o++] = '=';
    return o;
}

B64_TARGET static size_t encode_simd(const uint8_t *in, size_t len, char *out, int url)
{
    return url ? encode_ssse3(in, len, out, 1) : encode_ssse3(in, len, out, 0);
}

/* 32 bytes -> 44 characters: bytes 0..11 and 12..23 as two full groups, bytes 24..31 (shifted down from the
 * 16-byte load at 16, zero above) as the last 11 characters, then '='. Reads in[0..32), writes out[0..44). */
B64_TARGET static void encode32_simd(const uint8_t *in, char *out)
{
    _mm_storeu_si128((__m128i *)out, encode12(_mm_loadu_si128((const __m128i *)in), 0));
    _mm_storeu_si128((__m128i *)(out + 16), encode12(_mm_loadu_si128((const __m128i *)(in + 12)), 0));
    __m128i t = encode12(_mm_srli_si128(_mm_loadu_si128((const __m128i *)(in + 16)), 8), 0);
    _mm_storel_epi64((__m128i *)(out + 32), t);
    uint32_t w = (uint32_t)_mm_cvtsi128_si32(_mm_srli_si128(t, 8));
    w = (w & 0x00FFFFFFu) | ((uint32_t)'=' << 24); /* little-endian: the 4th character is the pad */
    memcpy(out + 40, &w, 4);
}

#if defined(UID2_GNUC)
#define VBMI_TARGET __attribute__((target("avx512f,avx512bw,avx512vbmi")))
#else
#define VBMI_TARGET
#endif

/* ---- AVX-512 VBMI: 64 characters (48 bytes) per step ---------------------------------------------------
 * Decoding looks each character up in a 128-entry table held in two registers (VPERMI2B on the low 7 bits):
 * its value, or 0x80 outside the alphabet; a character >= 0x80 is caught by its own top bit. Values are
 * packed as in decode16 (two multiply-adds), then one byte permute gathers the 48 bytes. The last step loads
 * only the characters left (a masked load, the other lanes 'A', value 0) and stores only their bytes.
 * Encoding (the method of Mula and Lemire's AVX-512 paper, written here from its description): a byte permute
 * lays each 3 input bytes b0 b1 b2 out as b1 b0 b2 b1 in a 32-bit lane, a multishift picks the four 6-bit
 * fields (bit offsets 10, 4, 22, 16 of the lane), and a permute over the 64-character alphabet held in a
 * register turns them into characters: no memory is indexed by data, so it is constant time. */
static const uint8_t vbmi_dec_std[128] = {
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x3E, 0x80, 0x80, 0x80, 0x3F,
    0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x3B, 0x3C, 0x3D, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
    0x80, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E,
    0x0F, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x80, 0x80, 0x80, 0x80, 0x80,
    0x80, 0x1A, 0x1B, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28,
    0x29, 0x2A, 0x2B, 0x2C, 0x2D, 0x2E, 0x2F, 0x30, 0x31, 0x32, 0x33, 0x80, 0x80, 0x80, 0x80, 0x80,
};
static const uint8_t vbmi_dec_url[128] = {
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x3E, 0x80, 0x80,
    0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x3B, 0x3C, 0x3D, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
    0x80, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E,
    0x0F, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x80, 0x80, 0x80, 0x80, 0x3F,
    0x80, 0x1A, 0x1B, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28,
    0x29, 0x2A, 0x2B, 0x2C, 0x2D, 0x2E, 0x2F, 0x30, 0x31, 0x32, 0x33, 0x80, 0x80, 0x80, 0x80, 0x80,
};
/* decode: output byte j is byte 2 - j % 3 of 32-bit lane j / 3 (bytes 48..63 unused) */
static const uint8_t vbmi_pack[64] = {
    2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, 18, 17, 16, 22,
    21, 20, 26, 25, 24, 30, 29, 28, 34, 33, 32, 38, 37, 36, 42, 41,
    40, 46, 45, 44, 50, 49, 48, 54, 53, 52, 58, 57, 56, 62, 61, 60,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};
/* encode: the 32-bit lane k holds input bytes 3k+1, 3k, 3k+2, 3k+1 */
static const uint8_t vbmi_spread[64] = {
    1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10,
    13, 12, 14, 13, 16, 15, 17, 16, 19, 18, 20, 19, 22, 21, 23, 22,
    25, 24, 26, 25, 28, 27, 29, 28, 31, 30, 32, 31, 34, 33, 35, 34,
    37, 36, 38, 37, 40, 39, 41, 40, 43, 42, 44, 43, 46, 45, 47, 46,
};
static const char vbmi_enc_std[65] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char vbmi_enc_url[65] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

UID2_ALWAYS_INLINE __mmask64 vbmi_mask(size_t n) /* the low n (0..64) lanes */
{
    return n >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << n) - 1);
}

UID2_ALWAYS_INLINE VBMI_TARGET __m512i vbmi_decode64(__m512i c, __m512i lo, __m512i hi, __m512i *bad)
{
    __m512i v = _mm512_permutex2var_epi8(lo, c, hi);
    *bad = _mm512_ternarylogic_epi32(*bad, v, c, 0xFE); /* bad | v | c: 0x80 marks a bad character */
    v = _mm512_maddubs_epi16(v, _mm512_set1_epi32(0x01400140));
    v = _mm512_madd_epi16(v, _mm512_set1_epi32(0x00011000));
    const __m512i pack = _mm512_loadu_si512((const void *)vbmi_pack);
    return _mm512_permutexvar_epi8(pack, v);
}

VBMI_TARGET static int decode_vbmi(const uint8_t *in, size_t body, uint8_t *out, size_t dec, int url)
{
    const uint8_t *t = url ? vbmi_dec_url : vbmi_dec_std;
    const __m512i lo = _mm512_loadu_si512((const void *)t), hi = _mm512_loadu_si512((const void *)(t + 64));
    __m512i bad = _mm512_setzero_si512();
    size_t i = 0, o = 0;
    for (; i + 64 <= body; i += 64, o += 48) {
        __m512i v = vbmi_decode64(_mm512_loadu_si512((const void *)(in + i)), lo, hi, &bad);
        if (o + 64 <= dec)
            _mm512_storeu_si512((void *)(out + o), v);
        else
            _mm512_mask_storeu_epi8(out + o, vbmi_mask(48), v);
    }
    if (i < body) {
        __m512i c = _mm512_mask_loadu_epi8(_mm512_set1_epi8('A'), vbmi_mask(body - i), in + i);
        _mm512_mask_storeu_epi8(out + o, vbmi_mask(dec - o), vbmi_decode64(c, lo, hi, &bad));
    }
    return _mm512_test_epi8_mask(bad, _mm512_set1_epi8((char)0x80)) == 0 ? 0 : -1;
}

UID2_ALWAYS_INLINE VBMI_TARGET __m512i vbmi_encode48(__m512i x, __m512i alphabet)
{
    const __m512i spread = _mm512_loadu_si512((const void *)vbmi_spread);
    x = _mm512_permutexvar_epi8(spread, x);
    x = _mm512_multishift_epi64_epi8(_mm512_set1_epi64(0x3036242a1016040aLL), x);
    return _mm512_permutexvar_epi8(x, alphabet);
}

VBMI_TARGET static size_t encode_vbmi(const uint8_t *in, size_t len, char *out, int url)
{
    const __m512i alphabet = _mm512_loadu_si512((const void *)(url ? vbmi_enc_url : vbmi_enc_std));
    size_t i = 0, o = 0;
    for (; i + 48 <= len; i += 48, o += 64)
        _mm512_storeu_si512((void *)(out + o), vbmi_encode48(_mm512_maskz_loadu_epi8(vbmi_mask(48), in + i),
                                                             alphabet));
    if (i < len) {
        size_t r = len - i, chars = r / 3 * 4 + (r % 3 ? r % 3 + 1 : 0);
        __m512i x = vbmi_encode48(_mm512_maskz_loadu_epi8(vbmi_mask(r), in + i), alphabet);
        _mm512_mask_storeu_epi8(out + o, vbmi_mask(chars), x);
        o += chars;
    }
    if (!url)
        while (o % 4)
            out[o++] = '=';
    return o;
}

#elif defined(UID2_KERNELS_ARM)

/* the NEON codecs (uid2_b64_neon.c) once they are built, on a CPU with NEON */
static int neon(void)
{
    return (uid2_cpu_features() & UID2_CPU_ARM_NEON) != 0 && uid2_b64_neon_built();
}
#endif

void uid2_b64fast_encode32(const uint8_t *in, char *out)
{
#if defined(UID2_KERNELS_X86)
    int level = x86_level();
    if (level == 2) {
        encode_vbmi(in, 32, out, 0);
        return;
    }
    if (level == 1) {
        encode32_simd(in, out);
        return;
    }
#elif defined(UID2_KERNELS_ARM)
    if (neon()) {
        uid2_b64_neon_encode32(in, out);
        return;
    }
#endif
    uid2_b64_encode(in, 32, out);
}

size_t uid2_b64fast_encode(const uint8_t *in, size_t len, char *out, int url)
{
#if defined(UID2_KERNELS_X86)
    int level = x86_level();
    if (level == 2)
        return encode_vbmi(in, len, out, url != 0);
    if (level == 1)
        return encode_simd(in, len, out, url != 0);
#elif defined(UID2_KERNELS_ARM)
    if (neon())
        return uid2_b64_neon_encode(in, len, out, url != 0);
#endif
    return url ? uid2_b64url_encode_nopad(in, len, out) : uid2_b64_encode(in, len, out);
}

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
#if defined(UID2_KERNELS_X86)
    int level = x86_level();
    if (level == 2)
        rc = decode_vbmi(s, body, out, dec, url != 0);
    else if (level == 1)
        rc = decode_simd(s, body, out, dec, url != 0);
    else
#elif defined(UID2_KERNELS_ARM)
    if (neon())
        rc = uid2_b64_neon_decode(s, body, out, dec, url != 0);
    else
#endif
        rc = decode_scalar(s, body, out, url != 0);
    if (rc == 0)
        *out_len = dec;
    return rc;
}

int uid2_b64fast_enabled(void)
{
    return uid2_fastpath_enabled();
}

const char *uid2_b64fast_kernel(void)
{
#if defined(UID2_KERNELS_X86)
    static const char *const names[] = {"scalar", "ssse3", "avx512vbmi"};
    return names[x86_level()];
#elif defined(UID2_KERNELS_ARM)
    return neon() ? "neon" : "scalar";
#else
    return "scalar";
#endif
}
