/* AES-GCM with AES-NI and PCLMULQDQ for short messages (see uid2_gcm_ni.h).
 *
 * Why it is faster than EVP for 68- and 129-byte messages: no per-call context bookkeeping; one pass in
 * which each group of 8 blocks goes through the AES rounds side by side and is hashed (H^8 .. H^1, one
 * reduction) while still in registers; the blocks left and J0 share one batch of exactly their count (up to 12),
 * and that tail is unrolled for each count so a short message runs as straight-line code with one chain of
 * rounds. On a CPU with VAES that batch of counter blocks goes two or four to an instruction (ctr_blocks_y,
 * ctr_blocks_z; uid2_gcm_ni_width). Everything runs under function-level target
 * attributes, so the rest of the build needs no -maes/-mpclmul; the caller checks uid2_gcm_ni_available().
 *
 * GHASH representation (the usual one for PCLMULQDQ): a block is byte-reversed, which puts the GCM bit
 * for x^i at integer bit 127-i ("reflected"). The carry-less product of two reflected values is then the
 * product shifted right by one bit; instead of shifting every product back we store each power of H
 * already multiplied by x^-1 (a one-bit left shift, folding the carry with 0xC2..01, done once per key).
 * The 256-bit product is reduced modulo x^128 + x^7 + x^2 + x + 1 in two folds of 64 bits, each one
 * PCLMULQDQ by 0xC200000000000000 (that constant is x^127 + x^126 + x^121 reflected into 64 bits).
 *
 * Constant time: no branch or memory index depends on key, plaintext, ciphertext or tag; branches and
 * indices depend only on lengths and the key size. The tag comparison is a vector xor tested as a whole. */
#include "uid2_gcm_ni.h"
#include "uid2_kernels.h"

#include <stdlib.h>
#include <string.h>

static void wipe(void *p, size_t n)
{
    uid2_secure_zero(p, n);
}

void uid2_gcm_ni_key_wipe(uid2_gcm_ni_key *k)
{
    wipe(k, sizeof *k);
}

#if defined(UID2_KERNELS_X86)

#include <emmintrin.h>
#include <smmintrin.h>
#include <tmmintrin.h>
#include <wmmintrin.h>

#include "uid2_simd.h"

/* GCC and Clang compile the intrinsics only inside functions built for them (so the rest of the build
 * needs no -maes); MSVC compiles them anywhere. */
#if defined(UID2_GNUC)
#define NI_TARGET __attribute__((target("aes,pclmul,sse4.1,ssse3")))
#else
#define NI_TARGET
#endif
#define NI_INLINE UID2_ALWAYS_INLINE NI_TARGET

int uid2_gcm_ni_available(void)
{
    return uid2_hw_kernels() == UID2_HW_X86_AESNI;
}

/* ---- AES key schedule (once per key, so written for clarity: FIPS-197 5.2 word by word) ------------ */

NI_TARGET static uint32_t sub_word(uint32_t w)
{
    /* AESKEYGENASSIST puts SubWord(dword 1) in dword 0; the round constant is xored by the caller. */
    __m128i v = _mm_set_epi32(0, 0, (int)w, 0);
    return (uint32_t)_mm_cvtsi128_si32(_mm_aeskeygenassist_si128(v, 0));
}

NI_TARGET static void expand_key(uint8_t rk[15][16], const uint8_t *key, size_t nk, unsigned rounds)
{
    static const uint8_t rcon[10] = {0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1b, 0x36};
    uint32_t w[60]; /* little-endian words: byte 0 of a key word is the low byte */
    size_t total = 4u * (rounds + 1u);
    memcpy(w, key, 4u * nk);
    for (size_t i = nk; i < total; i++) {
        uint32_t t = w[i - 1];
        if (i % nk == 0) {
            t = sub_word(t);
            t = ((t >> 8) | (t << 24)) ^ rcon[i / nk - 1]; /* RotWord on a little-endian word */
        } else if (nk > 6 && i % nk == 4) {
            t = sub_word(t);
        }
        w[i] = w[i - nk] ^ t;
    }
    memcpy(rk, w, 4u * total);
    wipe(w, sizeof w);
}

/* ---- GF(2^128) ------------------------------------------------------------------------------------ */

NI_INLINE __m128i bswap_mask(void)
{
    return _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}

NI_INLINE __m128i ld(const void *p)
{
    return _mm_loadu_si128((const __m128i *)p);
}

/* Reduces the 256-bit reflected product hi:lo (Karatsuba middle term still separate). */
NI_INLINE __m128i gf_reduce(__m128i lo, __m128i mid, __m128i hi)
{
    const __m128i poly = _mm_set_epi64x(0, (long long)0xC200000000000000ULL);
    mid = _mm_xor_si128(mid, _mm_xor_si128(lo, hi));
    __m128i x = _mm_xor_si128(lo, _mm_slli_si128(mid, 8)); /* bits 0..127: degrees 255..128 */
    __m128i y = _mm_xor_si128(hi, _mm_srli_si128(mid, 8)); /* bits 128..255: degrees 127..0 */
    /* fold the low 64 bits into bits 64..191, then the (updated) next 64 bits into bits 128..255 */
    __m128i v = _mm_xor_si128(_mm_shuffle_epi32(x, 0x4E), _mm_clmulepi64_si128(x, poly, 0x00));
    __m128i t = _mm_xor_si128(_mm_shuffle_epi32(v, 0x4E), _mm_clmulepi64_si128(v, poly, 0x00));
    return _mm_xor_si128(y, t);
}

/* lo/mid/hi += x * hpow[p] (Karatsuba: three carry-less multiplies; mid is fixed up in gf_reduce). */
NI_INLINE void gf_mul_acc(const uid2_gcm_ni_key *k, size_t p, __m128i x, __m128i *lo, __m128i *mid,
                          __m128i *hi)
{
    __m128i h = ld(k->hpow[p]);
    *lo = _mm_xor_si128(*lo, _mm_clmulepi64_si128(x, h, 0x00));
    *hi = _mm_xor_si128(*hi, _mm_clmulepi64_si128(x, h, 0x11));
    __m128i xs = _mm_xor_si128(x, _mm_shuffle_epi32(x, 0x4E));
    *mid = _mm_xor_si128(*mid, _mm_clmulepi64_si128(xs, ld(k->hkar[p]), 0x00));
}

/* value(a) * value(b) for b stored times x^-1 (so the result is in the same form as a). */
NI_TARGET static __m128i gf_mul(const __m128i a, const __m128i b)
{
    __m128i bs = _mm_xor_si128(b, _mm_shuffle_epi32(b, 0x4E));
    __m128i as = _mm_xor_si128(a, _mm_shuffle_epi32(a, 0x4E));
    return gf_reduce(_mm_clmulepi64_si128(a, b, 0x00), _mm_clmulepi64_si128(as, bs, 0x00),
                     _mm_clmulepi64_si128(a, b, 0x11));
}

/* The last len % 16 (non-zero) bytes of p[0 .. len) in the low bytes of a zeroed block. With a full block
 * before them it is one load and a byte shift (no store-to-load forwarding stall, no read outside p). */
NI_INLINE __m128i load_partial(const uint8_t *p, size_t len)
{
    static const int8_t shift[32] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
                                     -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1};
    size_t rem = len % 16;
    if (len >= 16)
        return _mm_shuffle_epi8(ld(p + len - 16), ld(shift + 16 - rem));
    uint8_t t[16] = {0};
    memcpy(t, p, rem);
    return ld(t);
}

/* One group of g blocks, blocks i .. i+g-1: full blocks come from p, the zero-padded partial block from
 * tail; y enters with the first block. */
NI_INLINE __m128i ghash_group(const uid2_gcm_ni_key *k, __m128i y, const uint8_t *p, size_t nfull,
                              const uint8_t *tail, size_t i, const size_t g)
{
    const __m128i bs = bswap_mask();
    __m128i lo = _mm_setzero_si128(), mid = lo, hi = lo;
UID2_UNROLL(8)
    for (size_t j = 0; j < g; j++) {
        size_t b = i + j;
        const uint8_t *src = b < nfull ? p + 16 * b : tail + 16 * (b - nfull);
        __m128i x = _mm_shuffle_epi8(ld(src), bs);
        if (j == 0)
            x = _mm_xor_si128(x, y);
        gf_mul_acc(k, g - 1 - j, x, &lo, &mid, &hi);
    }
    return gf_reduce(lo, mid, hi);
}

/* Absorbs n bytes (the last block zero-padded) into the GHASH state y: the AAD (messages go through
 * crypt8/final_r instead). The first group takes (blocks - 1) % 8 + 1 blocks so every later group is 8:
 * one reduction per group, block j of a group of g multiplied by H^(g-j). */
NI_TARGET UID2_NOINLINE static __m128i ghash(const uid2_gcm_ni_key *k, __m128i y, const uint8_t *p,
                                                         size_t n)
{
    size_t nfull = n / 16, rem = n % 16;
    size_t nb = nfull + (rem != 0);
    uint8_t tail[16];
    if (rem != 0)
        _mm_storeu_si128((__m128i *)tail, load_partial(p, n));
    size_t g = nb == 0 ? 0 : (nb - 1) % 8 + 1;
    switch (g) {
    case 1: y = ghash_group(k, y, p, nfull, tail, 0, 1); break;
    case 2: y = ghash_group(k, y, p, nfull, tail, 0, 2); break;
    case 3: y = ghash_group(k, y, p, nfull, tail, 0, 3); break;
    case 4: y = ghash_group(k, y, p, nfull, tail, 0, 4); break;
    case 5: y = ghash_group(k, y, p, nfull, tail, 0, 5); break;
    case 6: y = ghash_group(k, y, p, nfull, tail, 0, 6); break;
    case 7: y = ghash_group(k, y, p, nfull, tail, 0, 7); break;
    case 8: y = ghash_group(k, y, p, nfull, tail, 0, 8); break;
    default: break;
    }
    for (size_t i = g; i < nb; i += 8)
        y = ghash_group(k, y, p, nfull, tail, i, 8);
    return y;
}

/* ---- CTR + GHASH in one pass ---------------------------------------------------------------------- */

/* Round key r, loaded where it is used. GCC otherwise keeps all 15 round keys in the 16 xmm registers for the
 * whole function and spills the blocks in flight instead, which puts a store and a reload into every round of
 * the chain the message waits on. The empty asm makes each load opaque, so it is neither hoisted nor shared. */
NI_INLINE __m128i round_key(const uid2_gcm_ni_key *k, unsigned r)
{
    __m128i rk = ld(k->rk[r]);
#if defined(UID2_GNUC)
    __asm__ volatile("" : "+x"(rk));
#endif
    return rk;
}

/* b[0..n) = AES of counter blocks: block i < m gets counter ctr + i, the blocks from m on get counter 1
 * (J0, whose encryption masks the tag). All n blocks go through the rounds side by side. */
NI_INLINE void aes_ctr_blocks(const uid2_gcm_ni_key *k, const unsigned nr, __m128i j0, uint32_t ctr, size_t m,
                              __m128i *b, const size_t n)
{
    /* the rounds run on a local copy: b escapes to the tail's functions, and rounds run on b itself would
     * keep every block in memory */
    __m128i x[12];
    __m128i r0 = ld(k->rk[0]);
UID2_UNROLL(12)
    for (size_t i = 0; i < n; i++) {
        uint32_t c = i < m ? ctr + (uint32_t)i : 1u;
        x[i] = _mm_xor_si128(_mm_insert_epi32(j0, (int)uid2_bswap32(c), 3), r0);
    }
UID2_UNROLL(14)
    for (unsigned r = 1; r < nr; r++) {
        __m128i rk = round_key(k, r);
UID2_UNROLL(12)
        for (size_t i = 0; i < n; i++)
            x[i] = _mm_aesenc_si128(x[i], rk);
    }
    __m128i rl = round_key(k, nr);
UID2_UNROLL(12)
    for (size_t i = 0; i < n; i++)
        b[i] = _mm_aesenclast_si128(x[i], rl);
}

/* ---- the keystream in wide registers (VAES) ------------------------------------------------------------ */

/* A message's counter blocks are independent, so on a CPU with VAES they go through the rounds two (256-bit) or
 * four (512-bit) to an instruction. A UID2 master payload is 10 blocks with J0: 140 AESENC on 128-bit registers,
 * which some cores issue only one every cycle or two, against 42 on 512-bit ones, whose chain is then as short
 * as one block's. Same counters, same output as aes_ctr_blocks (b[i] for block i); they only change how many
 * blocks each instruction carries. The width is chosen once (gcm_width), and the GHASH stays on 128-bit
 * registers. GCC and Clang only (target attributes); MSVC builds keep the 128-bit kernel. */
#if defined(UID2_GNUC)
#define WIDE_KERNELS 1
#define Y_TARGET __attribute__((target("aes,pclmul,sse4.1,ssse3,avx,avx2,vaes")))
#define Z_TARGET __attribute__((target("aes,pclmul,sse4.1,ssse3,avx,avx2,avx512f,avx512vl,vaes")))
#include <immintrin.h>

#define Y_INLINE UID2_ALWAYS_INLINE Y_TARGET
#define Z_INLINE UID2_ALWAYS_INLINE Z_TARGET

/* Counter block i of a batch, xored with round key 0: blocks before m count up from ctr, the rest are J0. */
NI_INLINE __m128i ctr_block(__m128i j0, uint32_t ctr, size_t m, size_t i, __m128i r0)
{
    return _mm_xor_si128(_mm_insert_epi32(j0, (int)uid2_bswap32(i < m ? ctr + (uint32_t)i : 1u), 3), r0);
}

/* Lanes in and out of the wide registers. */
Y_INLINE __m256i y_set(const __m128i *c)
{
    return _mm256_inserti128_si256(_mm256_castsi128_si256(c[0]), c[1], 1);
}
Y_INLINE void y_get(__m256i v, __m128i *o)
{
    o[0] = _mm256_castsi256_si128(v);
    o[1] = _mm256_extracti128_si256(v, 1);
}
Z_INLINE __m512i z_set(const __m128i *c)
{
    __m512i v = _mm512_inserti32x4(_mm512_castsi128_si512(c[0]), c[1], 1);
    return _mm512_inserti32x4(_mm512_inserti32x4(v, c[2], 2), c[3], 3);
}
Z_INLINE void z_get(__m512i v, __m128i *o)
{
    o[0] = _mm512_castsi512_si128(v);
    o[1] = _mm512_extracti32x4_epi32(v, 1);
    o[2] = _mm512_extracti32x4_epi32(v, 2);
    o[3] = _mm512_extracti32x4_epi32(v, 3);
}

/* b[0..n) as aes_ctr_blocks writes them, L blocks to a register of type VEC (n is a compile-time constant in
 * each use: the registers stay registers). A lane past the last block holds the first block of its register
 * again, and its output is dropped. One body for both widths. */
#define CTR_WIDE(NAME, INLINE, VEC, L, BCAST, ENC, LAST, SET, GET)                                            \
    INLINE void NAME(const uid2_gcm_ni_key *k, unsigned nr, __m128i j0, uint32_t ctr, size_t m, __m128i *b,      \
                     const size_t n)                                                                         \
    {                                                                                                        \
        const size_t nv = (n + (L) - 1) / (L);                                                               \
        const __m128i r0 = ld(k->rk[0]);                                                                     \
        VEC x[12 / (L)];                                                                                     \
        UID2_UNROLL(6)                                                                                       \
        for (size_t i = 0; i < nv; i++) {                                                                    \
            __m128i c[L];                                                                                    \
            UID2_UNROLL(4)                                                                                   \
            for (size_t j = 0; j < (L); j++)                                                                 \
                c[j] = ctr_block(j0, ctr, m, (L) * i + ((L) * i + j < n ? j : 0), r0);                       \
            x[i] = SET(c);                                                                                   \
        }                                                                                                    \
        for (unsigned r = 1; r < nr; r++) {                                                                  \
            const VEC rk = BCAST(ld(k->rk[r]));                                                              \
            UID2_UNROLL(6)                                                                                   \
            for (size_t i = 0; i < nv; i++)                                                                  \
                x[i] = ENC(x[i], rk);                                                                        \
        }                                                                                                    \
        const VEC rl = BCAST(ld(k->rk[nr]));                                                                 \
        UID2_UNROLL(6)                                                                                       \
        for (size_t i = 0; i < nv; i++) {                                                                    \
            __m128i o[L];                                                                                    \
            GET(LAST(x[i], rl), o);                                                                          \
            UID2_UNROLL(4)                                                                                   \
            for (size_t j = 0; j < (L); j++)                                                                 \
                if ((L) * i + j < n)                                                                         \
                    b[(L) * i + j] = o[j];                                                                   \
        }                                                                                                    \
    }

CTR_WIDE(ctr_y, Y_INLINE, __m256i, 2, _mm256_broadcastsi128_si256, _mm256_aesenc_epi128, _mm256_aesenclast_epi128,
         y_set, y_get)
CTR_WIDE(ctr_z, Z_INLINE, __m512i, 4, _mm512_broadcast_i32x4, _mm512_aesenc_epi128, _mm512_aesenclast_epi128,
         z_set, z_get)

/* One copy per block count (1..12). */
#define WIDE_SWITCH(f)                                                                                        \
    switch (n) {                                                                                              \
    case 1: f(k, nr, j0, ctr, m, b, 1); break;                                                                \
    case 2: f(k, nr, j0, ctr, m, b, 2); break;                                                                \
    case 3: f(k, nr, j0, ctr, m, b, 3); break;                                                                \
    case 4: f(k, nr, j0, ctr, m, b, 4); break;                                                                \
    case 5: f(k, nr, j0, ctr, m, b, 5); break;                                                                \
    case 6: f(k, nr, j0, ctr, m, b, 6); break;                                                                \
    case 7: f(k, nr, j0, ctr, m, b, 7); break;                                                                \
    case 8: f(k, nr, j0, ctr, m, b, 8); break;                                                                \
    case 9: f(k, nr, j0, ctr, m, b, 9); break;                                                                \
    case 10: f(k, nr, j0, ctr, m, b, 10); break;                                                              \
    case 11: f(k, nr, j0, ctr, m, b, 11); break;                                                              \
    default: f(k, nr, j0, ctr, m, b, 12); break;                                                              \
    }

Y_TARGET UID2_NOINLINE static void ctr_blocks_y(const uid2_gcm_ni_key *k, unsigned nr, __m128i j0, uint32_t ctr,
                                                size_t m, __m128i *b, size_t n)
{
    WIDE_SWITCH(ctr_y)
}

Z_TARGET UID2_NOINLINE static void ctr_blocks_z(const uid2_gcm_ni_key *k, unsigned nr, __m128i j0, uint32_t ctr,
                                                size_t m, __m128i *b, size_t n)
{
    WIDE_SWITCH(ctr_z)
}
#else
#define WIDE_KERNELS 0
#endif

/* Blocks per AES instruction in this process: 4 (VAES on 512-bit registers), 2 (VAES, 256-bit) or 1, the best
 * the CPU and the OS support, unless UID2FAST_NO_VAES is set (to anything but "" or "0"): then 1. Chosen on
 * first use; uid2_gcm_ni_use_width changes it (tests and benchmarks). */
static int g_width = 0;

static int width_supported(int w)
{
    const unsigned f = uid2_cpu_features();
    if (w == 1)
        return 1;
#if WIDE_KERNELS
    if (w == 2)
        return (f & UID2_CPU_X86_VAES) != 0;
    if (w == 4)
        return (f & UID2_CPU_X86_VAES) != 0 && (f & UID2_CPU_X86_AVX512) != 0;
#endif
    (void)f;
    return 0;
}

static int gcm_width(void)
{
    int w = uid2_atomic_load_int(&g_width);
    if (w != 0)
        return w;
    const char *e = getenv("UID2FAST_NO_VAES");
    w = 1;
    if (e == NULL || e[0] == '\0' || strcmp(e, "0") == 0)
        w = width_supported(4) ? 4 : width_supported(2) ? 2 : 1;
    uid2_atomic_store_int(&g_width, w); /* any thread that races here stores the same value */
    return w;
}

int uid2_gcm_ni_width(void)
{
    return gcm_width();
}

int uid2_gcm_ni_use_width(int w)
{
    if (w != 1 && w != 2 && w != 4)
        return -1;
    if (!width_supported(w))
        return -1;
    uid2_atomic_store_int(&g_width, w);
    return 0;
}

/* Eight full blocks at in/out with keystream b: out = in ^ b, and the GHASH state absorbs the ciphertext
 * (in when decrypting, out when encrypting) as one group: one reduction. */
NI_INLINE __m128i crypt8(const uid2_gcm_ni_key *k, const __m128i *b, const uint8_t *in, uint8_t *out, __m128i y,
                         const int decrypt)
{
    const __m128i bs = bswap_mask();
    __m128i lo = _mm_setzero_si128(), mid = lo, hi = lo;
UID2_UNROLL(8)
    for (size_t i = 0; i < 8; i++) {
        __m128i x = ld(in + 16 * i);
        __m128i o = _mm_xor_si128(x, b[i]);
        _mm_storeu_si128((__m128i *)(out + 16 * i), o);
        __m128i c = _mm_shuffle_epi8(decrypt ? x : o, bs);
        if (i == 0)
            c = _mm_xor_si128(c, y);
        gf_mul_acc(k, 7 - i, c, &lo, &mid, &hi);
    }
    return gf_reduce(lo, mid, hi);
}

/* The last r (0..8, a compile-time constant here) data blocks, starting at block d, with keystream
 * b[0..r), then the length block; b[r] is E(J0). Blocks before the last are full; the last is partial
 * when len % 16 != 0. Returns the tag. */
NI_INLINE __m128i final_r(const uid2_gcm_ni_key *k, const __m128i *b, const size_t r, const uint8_t *in,
                          uint8_t *out, size_t d, size_t len, __m128i y, __m128i len_block, const int decrypt)
{
    static const uint8_t ones_then_zeros[32] = {
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    };
    const __m128i bs = bswap_mask();
    const size_t total = r + 1, g = total > 8 ? 8 : total; /* a 9th GHASH block gets its own group */
    size_t rem = len % 16;
    __m128i lo = _mm_setzero_si128(), mid = lo, hi = lo;
UID2_UNROLL(9)
    for (size_t v = 0; v < total; v++) {
        __m128i c;
        if (v == r) {
            c = len_block;
        } else if (v + 1 < r || rem == 0) {
            uint8_t *o = out + 16 * (d + v);
            __m128i x = ld(in + 16 * (d + v));
            __m128i p = _mm_xor_si128(x, b[v]);
            _mm_storeu_si128((__m128i *)o, p);
            c = decrypt ? x : p;
        } else {
            __m128i x = load_partial(in, len);
            __m128i p = _mm_xor_si128(x, b[v]);
            uid2_store_low(out + 16 * (d + v), p, rem);
            /* the ciphertext block is hashed zero-padded */
            c = decrypt ? x : _mm_and_si128(p, ld(ones_then_zeros + 16 - rem));
        }
        c = _mm_shuffle_epi8(c, bs);
        if (v == 0 || v == 8)
            c = _mm_xor_si128(c, y);
        gf_mul_acc(k, v < 8 ? g - 1 - v : 0, c, &lo, &mid, &hi);
        if (v + 1 == g || v == 8) {
            y = gf_reduce(lo, mid, hi);
            lo = mid = hi = _mm_setzero_si128();
        }
    }
    return _mm_xor_si128(_mm_shuffle_epi8(y, bs), b[r]);
}

/* One copy per direction for every key size; each r unrolled. */
#define FINAL_SWITCH(decrypt)                                                                                 \
    switch (r) {                                                                                              \
    case 0: return final_r(k, b, 0, in, out, d, len, y, len_block, decrypt);                                  \
    case 1: return final_r(k, b, 1, in, out, d, len, y, len_block, decrypt);                                  \
    case 2: return final_r(k, b, 2, in, out, d, len, y, len_block, decrypt);                                  \
    case 3: return final_r(k, b, 3, in, out, d, len, y, len_block, decrypt);                                  \
    case 4: return final_r(k, b, 4, in, out, d, len, y, len_block, decrypt);                                  \
    case 5: return final_r(k, b, 5, in, out, d, len, y, len_block, decrypt);                                  \
    case 6: return final_r(k, b, 6, in, out, d, len, y, len_block, decrypt);                                  \
    case 7: return final_r(k, b, 7, in, out, d, len, y, len_block, decrypt);                                  \
    default: return final_r(k, b, 8, in, out, d, len, y, len_block, decrypt);                                 \
    }

NI_TARGET UID2_NOINLINE static __m128i final_dec(const uid2_gcm_ni_key *k, const __m128i *b, size_t r,
                                                            const uint8_t *in, uint8_t *out, size_t d, size_t len,
                                                            __m128i y, __m128i len_block)
{
    FINAL_SWITCH(1)
}

NI_TARGET UID2_NOINLINE static __m128i final_enc(const uid2_gcm_ni_key *k, const __m128i *b, size_t r,
                                                            const uint8_t *in, uint8_t *out, size_t d, size_t len,
                                                            __m128i y, __m128i len_block)
{
    FINAL_SWITCH(0)
}

NI_INLINE __m128i load_nonce(const uint8_t nonce[12])
{
    uint64_t a;
    uint32_t c;
    memcpy(&a, nonce, 8);
    memcpy(&c, nonce + 8, 4);
    return _mm_insert_epi32(_mm_cvtsi64_si128((long long)a), (int)c, 2);
}

/* b[0..n) for the n (1..12) counter blocks of aes_ctr_blocks (the first m count up from ctr, the rest are J0),
 * w blocks to an instruction (gcm_width). On 128-bit registers each count has its own unrolled copy, m = n (a
 * group of 8) or n - 1 (the last batch, with J0). */
NI_INLINE void keystream(const uid2_gcm_ni_key *k, const unsigned nr, __m128i j0, uint32_t ctr, __m128i *b,
                         size_t m, const size_t n, int w)
{
#if WIDE_KERNELS
    if (w == 4) {
        ctr_blocks_z(k, nr, j0, ctr, m, b, n);
        return;
    }
    if (w == 2) {
        ctr_blocks_y(k, nr, j0, ctr, m, b, n);
        return;
    }
#else
    (void)w;
#endif
    if (m == n) {
        aes_ctr_blocks(k, nr, j0, ctr, 8, b, 8); /* the groups of 8 (n is 8 there) */
        return;
    }
    switch (n) {
    case 1: aes_ctr_blocks(k, nr, j0, ctr, 0, b, 1); break;
    case 2: aes_ctr_blocks(k, nr, j0, ctr, 1, b, 2); break;
    case 3: aes_ctr_blocks(k, nr, j0, ctr, 2, b, 3); break;
    case 4: aes_ctr_blocks(k, nr, j0, ctr, 3, b, 4); break;
    case 5: aes_ctr_blocks(k, nr, j0, ctr, 4, b, 5); break;
    case 6: aes_ctr_blocks(k, nr, j0, ctr, 5, b, 6); break;
    case 7: aes_ctr_blocks(k, nr, j0, ctr, 6, b, 7); break;
    case 8: aes_ctr_blocks(k, nr, j0, ctr, 7, b, 8); break;
    case 9: aes_ctr_blocks(k, nr, j0, ctr, 8, b, 9); break;
    case 10: aes_ctr_blocks(k, nr, j0, ctr, 9, b, 10); break;
    case 11: aes_ctr_blocks(k, nr, j0, ctr, 10, b, 11); break;
    default: aes_ctr_blocks(k, nr, j0, ctr, 11, b, 12); break;
    }
}

/* GCM over len bytes of in -> out (decrypt: GHASH over in; encrypt: over out), after the AAD. Data block i
 * uses counter i + 2; J0 (counter 1) rides in the last batch. Short messages are bound by the latency of one
 * chain of rounds (a round takes 4 cycles, and two blocks can start each cycle), so groups of 8 run only while
 * more than 11 blocks are left, and the keystream of the 0..11 blocks left, plus J0, is one batch of exactly
 * that count: 113..176 bytes (a UID2 master payload is 129 or 130) are 9..12 blocks in one chain, not a group
 * of 8 and then another chain. Each group of 8 is hashed with one reduction, and the rest with the length
 * block. Returns the tag. */
NI_INLINE __m128i gcm_crypt(const uid2_gcm_ni_key *k, const unsigned nr, const uint8_t nonce[12],
                            const uint8_t *aad, size_t aad_len, const uint8_t *in, uint8_t *out, size_t len,
                            const int decrypt)
{
    __m128i j0 = load_nonce(nonce), y = _mm_setzero_si128(), b[12];
    if (aad_len != 0)
        y = ghash(k, y, aad, aad_len);
    /* the length block as bytes: 64-bit big-endian bit lengths of the AAD and the data */
    __m128i len_block = _mm_shuffle_epi8(
        _mm_set_epi64x((long long)((uint64_t)aad_len * 8u), (long long)((uint64_t)len * 8u)), bswap_mask());
    size_t nb = len / 16 + (len % 16 != 0), d = 0;
    const int w = gcm_width();
    for (; nb - d > 11; d += 8) {
        keystream(k, nr, j0, (uint32_t)d + 2, b, 8, 8, w);
        y = crypt8(k, b, in + 16 * d, out + 16 * d, y, decrypt);
    }
    size_t r = nb - d; /* data blocks left, 0..11; J0 is one more */
    keystream(k, nr, j0, (uint32_t)d + 2, b, r, r + 1, w);
    const __m128i *t = b;
    if (r > 8) { /* the first 8 of the batch are full blocks, hashed as one group */
        y = crypt8(k, b, in + 16 * d, out + 16 * d, y, decrypt);
        t = b + 8;
        d += 8;
        r -= 8;
    }
    return decrypt ? final_dec(k, t, r, in, out, d, len, y, len_block)
                   : final_enc(k, t, r, in, out, d, len, y, len_block);
}

NI_INLINE int gcm_open(const uid2_gcm_ni_key *k, const unsigned nr, const uint8_t nonce[12], const uint8_t *aad,
                       size_t aad_len, const uint8_t *ct, size_t len, __m128i tag, __m128i tag_mask,
                       uint8_t *out)
{
    /* every ciphertext block is read before its plaintext is written, so out == ct works */
    __m128i diff = _mm_xor_si128(gcm_crypt(k, nr, nonce, aad, aad_len, ct, out, len, 1), tag);
    diff = _mm_and_si128(diff, tag_mask);
    if (_mm_testz_si128(diff, diff))
        return 0;
    wipe(out, len); /* never a partial result */
    return -1;
}

NI_INLINE void gcm_seal(const uid2_gcm_ni_key *k, const unsigned nr, const uint8_t nonce[12], const uint8_t *aad,
                        size_t aad_len, const uint8_t *pt, size_t len, uint8_t *out, uint8_t tag[16])
{
    _mm_storeu_si128((__m128i *)tag, gcm_crypt(k, nr, nonce, aad, aad_len, pt, out, len, 0));
}

static int lengths_ok(size_t aad_len, size_t len)
{
    return (uint64_t)len <= UID2_GCM_NI_MAX_LEN && (uint64_t)aad_len < ((uint64_t)1 << 61);
}

/* Each key size gets its own fully unrolled copy (the round count is a compile-time constant inside). */
NI_TARGET static int open_any(const uid2_gcm_ni_key *k, const uint8_t nonce[12], const uint8_t *aad,
                              size_t aad_len, const uint8_t *ct, size_t len, __m128i tag, __m128i mask,
                              uint8_t *out)
{
    if (lengths_ok(aad_len, len)) {
        if (k->rounds == 14)
            return gcm_open(k, 14, nonce, aad, aad_len, ct, len, tag, mask, out);
        if (k->rounds == 12)
            return gcm_open(k, 12, nonce, aad, aad_len, ct, len, tag, mask, out);
        if (k->rounds == 10)
            return gcm_open(k, 10, nonce, aad, aad_len, ct, len, tag, mask, out);
    }
    if (out != ct && (uint64_t)len <= UID2_GCM_NI_MAX_LEN)
        wipe(out, len);
    return -1;
}

NI_TARGET static int seal_any(const uid2_gcm_ni_key *k, const uint8_t nonce[12], const uint8_t *aad,
                              size_t aad_len, const uint8_t *pt, size_t len, uint8_t *out, uint8_t tag[16])
{
    if (!lengths_ok(aad_len, len))
        return -1;
    if (k->rounds == 14)
        gcm_seal(k, 14, nonce, aad, aad_len, pt, len, out, tag);
    else if (k->rounds == 12)
        gcm_seal(k, 12, nonce, aad, aad_len, pt, len, out, tag);
    else if (k->rounds == 10)
        gcm_seal(k, 10, nonce, aad, aad_len, pt, len, out, tag);
    else
        return -1;
    return 0;
}

NI_TARGET int uid2_gcm_ni_decrypt(const uid2_gcm_ni_key *k, const uint8_t nonce[12], const uint8_t *ct,
                                  size_t ct_len, const uint8_t tag[16], uint8_t *out)
{
    return open_any(k, nonce, NULL, 0, ct, ct_len, ld(tag), _mm_set1_epi32(-1), out);
}

NI_TARGET int uid2_gcm_ni_decrypt_ex(const uid2_gcm_ni_key *k, const uint8_t nonce[12], const uint8_t *aad,
                                     size_t aad_len, const uint8_t *ct, size_t ct_len, const uint8_t *tag,
                                     size_t tag_len, uint8_t *out)
{
    static const uint8_t ones_then_zeros[32] = {
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    };
    if (!(tag_len == 4 || tag_len == 8 || (tag_len >= 12 && tag_len <= 16))) {
        if (out != ct && (uint64_t)ct_len <= UID2_GCM_NI_MAX_LEN)
            wipe(out, ct_len);
        return -1;
    }
    uint8_t t[16] = {0};
    memcpy(t, tag, tag_len);
    return open_any(k, nonce, aad, aad_len, ct, ct_len, ld(t), ld(ones_then_zeros + 16 - tag_len), out);
}

NI_TARGET int uid2_gcm_ni_encrypt(const uid2_gcm_ni_key *k, const uint8_t nonce[12], const uint8_t *pt,
                                  size_t len, uint8_t *out, uint8_t tag[16])
{
    return seal_any(k, nonce, NULL, 0, pt, len, out, tag);
}

NI_TARGET int uid2_gcm_ni_encrypt_ex(const uid2_gcm_ni_key *k, const uint8_t nonce[12], const uint8_t *aad,
                                     size_t aad_len, const uint8_t *pt, size_t len, uint8_t *out,
                                     uint8_t tag[16])
{
    return seal_any(k, nonce, aad, aad_len, pt, len, out, tag);
}

/* ---- AES-CBC decryption ----------------------------------------------------------------------------- */

/* Blocks are independent once the ciphertext is known, so four go through the rounds side by side. */
NI_INLINE void cbc_dec(const uid2_gcm_ni_key *k, const unsigned nr, const uint8_t iv[16], const uint8_t *ct,
                       size_t len, uint8_t *out)
{
    __m128i prev = ld(iv);
    size_t i = 0;
    for (; i + 64 <= len; i += 64) {
        __m128i c[4], x[4];
        UID2_UNROLL(4)
        for (int j = 0; j < 4; j++) {
            c[j] = ld(ct + i + 16 * j);
            x[j] = _mm_xor_si128(c[j], ld(k->drk[0]));
        }
        UID2_UNROLL(13)
        for (unsigned r = 1; r < nr; r++) {
            __m128i rk = ld(k->drk[r]);
            UID2_UNROLL(4)
            for (int j = 0; j < 4; j++)
                x[j] = _mm_aesdec_si128(x[j], rk);
        }
        __m128i rl = ld(k->drk[nr]);
        UID2_UNROLL(4)
        for (int j = 0; j < 4; j++) {
            x[j] = _mm_xor_si128(_mm_aesdeclast_si128(x[j], rl), j == 0 ? prev : c[j - 1]);
            _mm_storeu_si128((__m128i *)(out + i + 16 * j), x[j]); /* after every c[j] was loaded */
        }
        prev = c[3];
    }
    for (; i < len; i += 16) {
        __m128i c = ld(ct + i);
        __m128i x = _mm_xor_si128(c, ld(k->drk[0]));
        UID2_UNROLL(13)
        for (unsigned r = 1; r < nr; r++)
            x = _mm_aesdec_si128(x, ld(k->drk[r]));
        x = _mm_xor_si128(_mm_aesdeclast_si128(x, ld(k->drk[nr])), prev);
        _mm_storeu_si128((__m128i *)(out + i), x);
        prev = c;
    }
}

NI_TARGET int uid2_cbc_ni_decrypt(const uid2_gcm_ni_key *k, const uint8_t iv[16], const uint8_t *ct, size_t len,
                                  uint8_t *out)
{
    if (len == 0 || len % 16 != 0)
        return -1;
    if (k->rounds == 14)
        cbc_dec(k, 14, iv, ct, len, out);
    else if (k->rounds == 12)
        cbc_dec(k, 12, iv, ct, len, out);
    else if (k->rounds == 10)
        cbc_dec(k, 10, iv, ct, len, out);
    else
        return -1;
    return 0;
}

NI_TARGET int uid2_gcm_ni_key_init(uid2_gcm_ni_key *k, const uint8_t *key, size_t key_len)
{
    wipe(k, sizeof *k);
    if (key_len != 16 && key_len != 24 && key_len != 32)
        return -1;
    unsigned rounds = (unsigned)(key_len / 4 + 6);
    expand_key(k->rk, key, key_len / 4, rounds);
    k->rounds = rounds;
    /* the equivalent inverse cipher's schedule (FIPS-197 5.3.5): reversed, InvMixColumns on the inner keys */
    _mm_storeu_si128((__m128i *)k->drk[0], ld(k->rk[rounds]));
    for (unsigned r = 1; r < rounds; r++)
        _mm_storeu_si128((__m128i *)k->drk[r], _mm_aesimc_si128(ld(k->rk[rounds - r])));
    _mm_storeu_si128((__m128i *)k->drk[rounds], ld(k->rk[0]));

    /* H = AES(0^128), reflected, then times x^-1: shift left one bit, folding bit 127 back as
     * x^-1 = x^127 + x^6 + x + 1 (0xC2..01) under a mask rather than a branch. */
    __m128i h = _mm_xor_si128(_mm_setzero_si128(), ld(k->rk[0]));
    for (unsigned r = 1; r < rounds; r++)
        h = _mm_aesenc_si128(h, ld(k->rk[r]));
    h = _mm_aesenclast_si128(h, ld(k->rk[rounds]));
    h = _mm_shuffle_epi8(h, bswap_mask());
    __m128i carry = _mm_srai_epi32(_mm_shuffle_epi32(h, 0xFF), 31);
    __m128i shifted = _mm_or_si128(_mm_slli_epi64(h, 1), _mm_slli_si128(_mm_srli_epi64(h, 63), 8));
    __m128i fold = _mm_set_epi64x((long long)0xC200000000000000ULL, 1);
    h = _mm_xor_si128(shifted, _mm_and_si128(carry, fold));

    __m128i p = h;
    for (size_t i = 0; i < 8; i++) {
        if (i > 0)
            p = gf_mul(p, h); /* value(p) * H: H^(i+1), still times x^-1 */
        _mm_storeu_si128((__m128i *)k->hpow[i], p);
        _mm_storeu_si128((__m128i *)k->hkar[i], _mm_xor_si128(p, _mm_shuffle_epi32(p, 0x4E)));
    }
    return 0;
}

#else /* not an x86-64 build: the family does not exist here (uid2_kernels.c never selects it) */

int uid2_gcm_ni_width(void)
{
    return 1;
}

int uid2_gcm_ni_use_width(int w)
{
    return w == 1 ? 0 : -1;
}

int uid2_gcm_ni_available(void)
{
    return 0;
}

int uid2_cbc_ni_decrypt(const uid2_gcm_ni_key *k, const uint8_t iv[16], const uint8_t *ct, size_t len,
                        uint8_t *out)
{
    (void)k, (void)iv, (void)ct, (void)len, (void)out;
    return -1;
}

int uid2_gcm_ni_key_init(uid2_gcm_ni_key *k, const uint8_t *key, size_t key_len)
{
    (void)key;
    (void)key_len;
    wipe(k, sizeof *k);
    return -1;
}

int uid2_gcm_ni_decrypt(const uid2_gcm_ni_key *k, const uint8_t nonce[12], const uint8_t *ct, size_t ct_len,
                        const uint8_t tag[16], uint8_t *out)
{
    return uid2_gcm_ni_decrypt_ex(k, nonce, NULL, 0, ct, ct_len, tag, 16, out);
}

int uid2_gcm_ni_decrypt_ex(const uid2_gcm_ni_key *k, const uint8_t nonce[12], const uint8_t *aad,
                           size_t aad_len, const uint8_t *ct, size_t ct_len, const uint8_t *tag, size_t tag_len,
                           uint8_t *out)
{
    (void)k, (void)nonce, (void)aad, (void)aad_len, (void)tag, (void)tag_len;
    if (out != ct)
        wipe(out, ct_len);
    return -1;
}

int uid2_gcm_ni_encrypt(const uid2_gcm_ni_key *k, const uint8_t nonce[12], const uint8_t *pt, size_t len,
                        uint8_t *out, uint8_t tag[16])
{
    return uid2_gcm_ni_encrypt_ex(k, nonce, NULL, 0, pt, len, out, tag);
}

int uid2_gcm_ni_encrypt_ex(const uid2_gcm_ni_key *k, const uint8_t nonce[12], const uint8_t *aad,
                           size_t aad_len, const uint8_t *pt, size_t len, uint8_t *out, uint8_t tag[16])
{
    (void)k, (void)nonce, (void)aad, (void)aad_len, (void)pt, (void)len, (void)out, (void)tag;
    return -1;
}

#endif
