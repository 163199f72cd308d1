/* NEON base64 decode (clean input) and encode for aarch64 (see uid2_b64_neon.h).
 *
 * Decode: LD4 splits 64 characters into the 1st, 2nd, 3rd and 4th character of 16 quads; each character
 * is classified and translated with the same nibble tables as the SSSE3 kernel in uid2_b64fast.c (TBL in
 * place of PSHUFB), then the four 6-bit values of each quad are shifted together into three bytes and ST3
 * interleaves them back. 64 characters per step, then one step of 32 (LD4/ST3 on 8 lanes), then the last
 * 0..31 characters padded with 'A' (value 0) in a stack buffer. Validity is accumulated over the whole input
 * and tested once at the end. Tokens are not secret: this decoder need not be constant time.
 *
 * Encode: the reverse (LD3, shifts, ST4); each 6-bit value gets its ASCII offset from a 16-entry register
 * table (TBL) indexed by a class of the value, so no memory is indexed by the data: constant time.
 *
 * Advanced SIMD is part of the aarch64 baseline that compilers target by default, so no target attribute
 * is needed; the caller still checks the CPU (HWCAP_ASIMD) first. */
#include "uid2_b64_neon.h"
#include "uid2_base64.h"

#include <string.h>

#if defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(UID2_FASTPATH_GENERIC) &&     \
    defined(__ARM_NEON)

#include <arm_neon.h>
#define NEON_INLINE static inline __attribute__((always_inline))

int uid2_b64_neon_built(void)
{
    return 1;
}

/* ---- decode ----------------------------------------------------------------------------------------- */

/* Class bits of each high nibble, and for each low nibble the classes that are NOT in the alphabet
 * (uid2_b64fast.c's decode16 explains the classes); roll[h] (h = the high nibble, or 1 for '/', 8 for '_')
 * turns a valid character into its value. */
static const uint8_t lut_hi[16] = {0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x08, 0x20,
                                   0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01};
static const uint8_t lut_lo_std[16] = {0x0B, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03,
                                       0x03, 0x03, 0x07, 0x35, 0x37, 0x37, 0x37, 0x35};
static const uint8_t lut_lo_url[16] = {0x0B, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03,
                                       0x03, 0x03, 0x07, 0x37, 0x37, 0x35, 0x37, 0x27};
static const uint8_t roll_std[16] = {0, 16, 19, 4, (uint8_t)-65, (uint8_t)-65, (uint8_t)-71, (uint8_t)-71,
                                     0, 0,  0,  0, 0,            0,            0,            0};
static const uint8_t roll_url[16] = {0, 0, 17, 4, (uint8_t)-65, (uint8_t)-65, (uint8_t)-71, (uint8_t)-71,
                                     (uint8_t)-32, 0, 0, 0, 0, 0, 0, 0};

typedef struct {
    uint8x16_t hi, lo, roll;
} dec_tables;

NEON_INLINE dec_tables tables(int url)
{
    dec_tables t = {vld1q_u8(lut_hi), vld1q_u8(url ? lut_lo_url : lut_lo_std), vld1q_u8(url ? roll_url : roll_std)};
    return t;
}

/* 16 characters -> their 16 values (0..63 when valid); *bad gets non-zero lanes for invalid ones. */
NEON_INLINE uint8x16_t values16(uint8x16_t c, const dec_tables *t, uint8x16_t *bad, int url)
{
    uint8x16_t hi = vshrq_n_u8(c, 4), lo = vandq_u8(c, vdupq_n_u8(0x0F));
    *bad = vorrq_u8(*bad, vandq_u8(vqtbl1q_u8(t->lo, lo), vqtbl1q_u8(t->hi, hi)));
    uint8x16_t idx = url ? vaddq_u8(hi, vandq_u8(vceqq_u8(c, vdupq_n_u8('_')), vdupq_n_u8(3)))
                         : vsubq_u8(hi, vandq_u8(vceqq_u8(c, vdupq_n_u8('/')), vdupq_n_u8(1)));
    return vaddq_u8(c, vqtbl1q_u8(t->roll, idx));
}

/* 64 characters -> 48 bytes. */
NEON_INLINE void dec64(const uint8_t *in, uint8_t *out, const dec_tables *t, uint8x16_t *bad, int url)
{
    uint8x16x4_t c = vld4q_u8(in);
    uint8x16_t a = values16(c.val[0], t, bad, url), b = values16(c.val[1], t, bad, url);
    uint8x16_t d = values16(c.val[2], t, bad, url), e = values16(c.val[3], t, bad, url);
    uint8x16x3_t o;
    o.val[0] = vorrq_u8(vshlq_n_u8(a, 2), vshrq_n_u8(b, 4));
    o.val[1] = vorrq_u8(vshlq_n_u8(b, 4), vshrq_n_u8(d, 2));
    o.val[2] = vorrq_u8(vshlq_n_u8(d, 6), e);
    vst3q_u8(out, o);
}

/* 32 characters -> 24 bytes. */
NEON_INLINE void dec32(const uint8_t *in, uint8_t *out, const dec_tables *t, uint8x16_t *bad, int url)
{
    uint8x8x4_t c = vld4_u8(in);
    uint8x16_t ab = values16(vcombine_u8(c.val[0], c.val[1]), t, bad, url);
    uint8x16_t de = values16(vcombine_u8(c.val[2], c.val[3]), t, bad, url);
    uint8x8_t a = vget_low_u8(ab), b = vget_high_u8(ab), d = vget_low_u8(de), e = vget_high_u8(de);
    uint8x8x3_t o;
    o.val[0] = vorr_u8(vshl_n_u8(a, 2), vshr_n_u8(b, 4));
    o.val[1] = vorr_u8(vshl_n_u8(b, 4), vshr_n_u8(d, 2));
    o.val[2] = vorr_u8(vshl_n_u8(d, 6), e);
    vst3_u8(out, o);
}

NEON_INLINE int decode_body(const uint8_t *in, size_t body, uint8_t *out, size_t dec, int url)
{
    const dec_tables t = tables(url);
    uint8x16_t bad = vdupq_n_u8(0);
    size_t i = 0, o = 0;
    /* i stays a multiple of 4, so a whole step that fits in body covers whole quads only */
    for (; i + 64 <= body; i += 64, o += 48)
        dec64(in + i, out + o, &t, &bad, url);
    if (i + 32 <= body) {
        dec32(in + i, out + o, &t, &bad, url);
        i += 32;
        o += 24;
    }
    if (i < body) {
        uint8_t cbuf[32], obuf[24];
        memset(cbuf, 'A', sizeof cbuf);
        memcpy(cbuf, in + i, body - i);
        dec32(cbuf, obuf, &t, &bad, url);
        memcpy(out + o, obuf, dec - o);
    }
    return vmaxvq_u8(bad) == 0 ? 0 : -1;
}

int uid2_b64_neon_decode(const uint8_t *in, size_t body, uint8_t *out, size_t dec, int url)
{
    return url ? decode_body(in, body, out, dec, 1) : decode_body(in, body, out, dec, 0);
}

/* ---- encode ----------------------------------------------------------------------------------------- */

/* Values 0..63 -> characters: class = saturating v - 51 (0 for 0..51, 1..12 for 52..63), 13 where v < 26;
 * offset[class] = 'a' - 26, '0' - 52 (x10), '+' or '-' minus 62, '/' or '_' minus 63, 'A'. */
NEON_INLINE uint8x16_t chars16(uint8x16_t v, uint8x16_t offsets)
{
    uint8x16_t cls = vqsubq_u8(v, vdupq_n_u8(51));
    cls = vorrq_u8(cls, vandq_u8(vcltq_u8(v, vdupq_n_u8(26)), vdupq_n_u8(13)));
    return vaddq_u8(v, vqtbl1q_u8(offsets, cls));
}

NEON_INLINE uint8x16_t offsets(int url)
{
    static const uint8_t std[16] = {71, (uint8_t)-4, (uint8_t)-4, (uint8_t)-4, (uint8_t)-4, (uint8_t)-4,
                                    (uint8_t)-4, (uint8_t)-4, (uint8_t)-4, (uint8_t)-4, (uint8_t)-4,
                                    (uint8_t)('+' - 62), (uint8_t)('/' - 63), 65, 0, 0};
    static const uint8_t urlsafe[16] = {71, (uint8_t)-4, (uint8_t)-4, (uint8_t)-4, (uint8_t)-4, (uint8_t)-4,
                                        (uint8_t)-4, (uint8_t)-4, (uint8_t)-4, (uint8_t)-4, (uint8_t)-4,
                                        (uint8_t)('-' - 62), (uint8_t)('_' - 63), 65, 0, 0};
    return vld1q_u8(url ? urlsafe : std);
}

/* 48 bytes -> 64 characters. */
NEON_INLINE void enc48(const uint8_t *in, char *out, uint8x16_t off)
{
    uint8x16x3_t b = vld3q_u8(in);
    uint8x16x4_t c;
    c.val[0] = chars16(vshrq_n_u8(b.val[0], 2), off);
    c.val[1] = chars16(vorrq_u8(vshlq_n_u8(vandq_u8(b.val[0], vdupq_n_u8(3)), 4), vshrq_n_u8(b.val[1], 4)), off);
    c.val[2] = chars16(vorrq_u8(vshlq_n_u8(vandq_u8(b.val[1], vdupq_n_u8(15)), 2), vshrq_n_u8(b.val[2], 6)), off);
    c.val[3] = chars16(vandq_u8(b.val[2], vdupq_n_u8(63)), off);
    vst4q_u8((uint8_t *)out, c);
}

/* 24 bytes -> 32 characters. */
NEON_INLINE void enc24(const uint8_t *in, char *out, uint8x16_t off)
{
    uint8x8x3_t b = vld3_u8(in);
    uint8x8_t a = vshr_n_u8(b.val[0], 2);
    uint8x8_t bb = vorr_u8(vshl_n_u8(vand_u8(b.val[0], vdup_n_u8(3)), 4), vshr_n_u8(b.val[1], 4));
    uint8x8_t c = vorr_u8(vshl_n_u8(vand_u8(b.val[1], vdup_n_u8(15)), 2), vshr_n_u8(b.val[2], 6));
    uint8x8_t d = vand_u8(b.val[2], vdup_n_u8(63));
    uint8x16_t ab = chars16(vcombine_u8(a, bb), off), cd = chars16(vcombine_u8(c, d), off);
    uint8x8x4_t o = {{vget_low_u8(ab), vget_high_u8(ab), vget_low_u8(cd), vget_high_u8(cd)}};
    vst4_u8((uint8_t *)out, o);
}

NEON_INLINE size_t encode(const uint8_t *in, size_t len, char *out, int url)
{
    const uint8x16_t off = offsets(url);
    size_t i = 0, o = 0;
    for (; i + 48 <= len; i += 48, o += 64)
        enc48(in + i, out + o, off);
    if (i + 24 <= len) {
        enc24(in + i, out + o, off);
        i += 24;
        o += 32;
    }
    if (i < len) {
        /* the last 1..23 bytes, zero-extended; only their characters are kept (lengths are public) */
        size_t r = len - i, chars = r / 3 * 4 + (r % 3 ? r % 3 + 1 : 0);
        uint8_t ibuf[24] = {0};
        char obuf[32];
        memcpy(ibuf, in + i, r);
        enc24(ibuf, obuf, off);
        memcpy(out + o, obuf, chars);
        o += chars;
    }
    if (!url)
        while (o % 4)
            out[o++] = '=';
    return o;
}

size_t uid2_b64_neon_encode(const uint8_t *in, size_t len, char *out, int url)
{
    return url ? encode(in, len, out, 1) : encode(in, len, out, 0);
}

/* 32 bytes -> 44 characters: bytes 0..23 straight to out[0..32), bytes 24..31 zero-extended to a group of
 * 24 whose first 11 characters are kept, then '='. */
void uid2_b64_neon_encode32(const uint8_t *in, char *out)
{
    const uint8x16_t off = offsets(0);
    uint8_t ibuf[24] = {0};
    char obuf[32];
    enc24(in, out, off);
    memcpy(ibuf, in + 24, 8);
    enc24(ibuf, obuf, off);
    memcpy(out + 32, obuf, 11);
    out[43] = '=';
}

#else /* no NEON kernel in this build */

int uid2_b64_neon_built(void)
{
    return 0;
}

int uid2_b64_neon_decode(const uint8_t *in, size_t body, uint8_t *out, size_t dec, int url)
{
    (void)in, (void)body, (void)out, (void)dec, (void)url;
    return -1; /* declined: the caller takes its scalar decoder */
}

/* never selected (uid2_b64_neon_built() is 0); correct all the same */
size_t uid2_b64_neon_encode(const uint8_t *in, size_t len, char *out, int url)
{
    return url ? uid2_b64url_encode_nopad(in, len, out) : uid2_b64_encode(in, len, out);
}

void uid2_b64_neon_encode32(const uint8_t *in, char *out)
{
    uid2_b64_encode(in, 32, out);
}

#endif
