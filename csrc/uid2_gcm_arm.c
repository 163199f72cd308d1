/* AES-GCM and AES-CBC decryption with the ARMv8 cryptography extensions (see uid2_gcm_arm.h).
 *
 * The structure follows uid2_gcm_ni.c (read its header comment for the why): groups of 8 counter blocks go
 * through the AES rounds side by side and are hashed with H^8 .. H^1 and one reduction; the last 0..8 blocks
 * and J0 share one batch, unrolled for each count. The GHASH arithmetic is the same as there, because PMULL
 * (vmull_p64) is the same 64 x 64 -> 128-bit carry-less multiply as PCLMULQDQ: blocks are byte-reversed,
 * powers of H are stored times x^-1, and the 256-bit product is reduced in two folds by 0xC2 << 56.
 *
 * AES: AESE is AddRoundKey + SubBytes + ShiftRows and AESMC is MixColumns, so round r is
 * AESMC(AESE(s, rk[r])) for r < Nr - 1, then AESE(s, rk[Nr - 1]) ^ rk[Nr]. Decryption (CBC) uses AESD +
 * AESIMC with the round keys of the equivalent inverse cipher: rk[Nr], InvMixColumns(rk[Nr-1 .. 1]), rk[0].
 *
 * Everything that needs the extensions is compiled under a function-level target attribute (the rest of the
 * build needs no -march flag); uid2_kernels.c checks the CPU (HWCAP) before anything here is called.
 *
 * Constant time: hardware AES, carry-less multiplies, no branch or memory index depends on key, data or
 * tag (only on lengths and the key size); the tag comparison ORs the masked difference and tests once. */
#include "uid2_gcm_arm.h"

#include <string.h>

void uid2_gcm_arm_key_wipe(uid2_gcm_arm_key *k)
{
    uid2_secure_zero(k, sizeof *k);
}


/* Old clang defines the crypto intrinsics only when the whole unit is built with them; without that (and
 * with MSVC) this file builds no kernel and uid2_gcm_arm_built() says so. */
#if defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(UID2_FASTPATH_GENERIC) &&     \
    !(defined(__clang__) && __clang_major__ < 16 && !defined(__ARM_FEATURE_AES))
#define UID2_HAVE_ARM_KERNEL 1
#endif

#ifdef UID2_HAVE_ARM_KERNEL

#include <arm_neon.h>

#if defined(__clang__)
#define ARM_TARGET __attribute__((target("aes")))
#else
#define ARM_TARGET __attribute__((target("+crypto")))
#endif
#define ARM_INLINE static inline __attribute__((always_inline)) ARM_TARGET

typedef uint8x16_t v128;

int uid2_gcm_arm_built(void)
{
    return 1;
}

/* ---- AES -------------------------------------------------------------------------------------------- */

/* SubWord: AESE with a zero round key on a vector whose four columns are all w (ShiftRows then moves
 * nothing), lane 0 read back. */
ARM_TARGET static uint32_t sub_word(uint32_t w)
{
    v128 v = vaeseq_u8(vreinterpretq_u8_u32(vdupq_n_u32(w)), vdupq_n_u8(0));
    return vgetq_lane_u32(vreinterpretq_u32_u8(v), 0);
}

/* FIPS-197 5.2, word by word (once per key, so written for clarity). */
ARM_TARGET static void expand_key(uint8_t rk[15][16], const uint8_t *key, size_t nk, unsigned rounds)
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
    uid2_secure_zero(w, sizeof w);
}

ARM_INLINE v128 ld(const void *p)
{
    return vld1q_u8((const uint8_t *)p);
}

ARM_INLINE void st(void *p, v128 x)
{
    vst1q_u8((uint8_t *)p, x);
}

/* One block through all nr rounds. */
ARM_INLINE v128 aes_block(const uint8_t rk[15][16], const unsigned nr, v128 s)
{
#pragma GCC unroll 14
    for (unsigned r = 0; r + 1 < nr; r++)
        s = vaesmcq_u8(vaeseq_u8(s, ld(rk[r])));
    return veorq_u8(vaeseq_u8(s, ld(rk[nr - 1])), ld(rk[nr]));
}

/* ---- GF(2^128) -------------------------------------------------------------------------------------- */

ARM_INLINE v128 bswap128(v128 x)
{
    x = vrev64q_u8(x);
    return vextq_u8(x, x, 8);
}

ARM_INLINE v128 swap64(v128 x)
{
    return vextq_u8(x, x, 8);
}

/* Carry-less products of the low (resp. high) 64-bit lanes. */
ARM_INLINE v128 clmul_lo(v128 a, v128 b)
{
    return vreinterpretq_u8_p128(
        vmull_p64(vgetq_lane_p64(vreinterpretq_p64_u8(a), 0), vgetq_lane_p64(vreinterpretq_p64_u8(b), 0)));
}

ARM_INLINE v128 clmul_hi(v128 a, v128 b)
{
    return vreinterpretq_u8_p128(vmull_high_p64(vreinterpretq_p64_u8(a), vreinterpretq_p64_u8(b)));
}

/* Reduces the 256-bit reflected product hi:lo (Karatsuba middle term still separate). */
ARM_INLINE v128 gf_reduce(v128 lo, v128 mid, v128 hi)
{
    const v128 poly = vreinterpretq_u8_u64(vdupq_n_u64(0xC200000000000000ULL));
    const v128 z = vdupq_n_u8(0);
    mid = veorq_u8(mid, veorq_u8(lo, hi));
    v128 x = veorq_u8(lo, vextq_u8(z, mid, 8)); /* lo ^ (mid << 64): degrees 255..128 */
    v128 y = veorq_u8(hi, vextq_u8(mid, z, 8)); /* hi ^ (mid >> 64): degrees 127..0 */
    /* fold the low 64 bits into bits 64..191, then the (updated) next 64 bits into bits 128..255 */
    v128 v = veorq_u8(swap64(x), clmul_lo(x, poly));
    v128 t = veorq_u8(swap64(v), clmul_lo(v, poly));
    return veorq_u8(y, t);
}

/* lo/mid/hi += x * hpow[p] (Karatsuba: three carry-less multiplies; mid is fixed up in gf_reduce). */
ARM_INLINE void gf_mul_acc(const uid2_gcm_arm_key *k, size_t p, v128 x, v128 *lo, v128 *mid, v128 *hi)
{
    v128 h = ld(k->hpow[p]);
    *lo = veorq_u8(*lo, clmul_lo(x, h));
    *hi = veorq_u8(*hi, clmul_hi(x, h));
    *mid = veorq_u8(*mid, clmul_lo(veorq_u8(x, swap64(x)), ld(k->hkar[p])));
}

/* value(a) * value(b) for b stored times x^-1 (so the result is in the same form as a). */
ARM_TARGET static v128 gf_mul(v128 a, v128 b)
{
    return gf_reduce(clmul_lo(a, b), clmul_lo(veorq_u8(a, swap64(a)), veorq_u8(b, swap64(b))), clmul_hi(a, b));
}

static const uint8_t shift_tab[32] = {0,    1,    2,    3,    4,    5,    6,    7,    8,    9,    10,
                                      11,   12,   13,   14,   15,   0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
static const uint8_t ones_then_zeros[32] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

/* The last len % 16 (non-zero) bytes of p[0 .. len) in the low bytes of a zeroed block: with a full block
 * before them one load and a table shift (TBL gives 0 for an index >= 16), never reading outside p. */
ARM_INLINE v128 load_partial(const uint8_t *p, size_t len)
{
    size_t rem = len % 16;
    if (len >= 16)
        return vqtbl1q_u8(ld(p + len - 16), ld(shift_tab + 16 - rem));
    uint8_t t[16] = {0};
    memcpy(t, p, rem);
    return ld(t);
}

/* Stores the low n (< 16) bytes of x: pieces of 8, 4, 2, 1 chosen by the bits of the (public) length. */
ARM_INLINE void store_low(uint8_t *p, v128 x, size_t n)
{
    uint64_t v = vgetq_lane_u64(vreinterpretq_u64_u8(x), 0);
    if (n & 8) {
        memcpy(p, &v, 8);
        p += 8;
        v = vgetq_lane_u64(vreinterpretq_u64_u8(x), 1);
    }
    if (n & 4) {
        uint32_t w = (uint32_t)v;
        memcpy(p, &w, 4);
        p += 4;
        v >>= 32;
    }
    if (n & 2) {
        uint16_t w = (uint16_t)v;
        memcpy(p, &w, 2);
        p += 2;
        v >>= 16;
    }
    if (n & 1)
        *p = (uint8_t)v;
}

/* One group of g blocks, blocks i .. i+g-1: full blocks from p, the zero-padded partial block from tail. */
ARM_INLINE v128 ghash_group(const uid2_gcm_arm_key *k, v128 y, const uint8_t *p, size_t nfull, const uint8_t *tail,
                            size_t i, const size_t g)
{
    v128 lo = vdupq_n_u8(0), mid = lo, hi = lo;
#pragma GCC unroll 8
    for (size_t j = 0; j < g; j++) {
        size_t b = i + j;
        const uint8_t *src = b < nfull ? p + 16 * b : tail + 16 * (b - nfull);
        v128 x = bswap128(ld(src));
        if (j == 0)
            x = veorq_u8(x, y);
        gf_mul_acc(k, g - 1 - j, x, &lo, &mid, &hi);
    }
    return gf_reduce(lo, mid, hi);
}

/* Absorbs n bytes of AAD (the last block zero-padded): the first group takes (blocks - 1) % 8 + 1 blocks
 * so every later group is 8. */
ARM_TARGET __attribute__((noinline)) static v128 ghash(const uid2_gcm_arm_key *k, v128 y, const uint8_t *p, size_t n)
{
    size_t nfull = n / 16, rem = n % 16;
    size_t nb = nfull + (rem != 0);
    uint8_t tail[16];
    if (rem != 0)
        st(tail, load_partial(p, n));
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

/* ---- CTR + GHASH in one pass ------------------------------------------------------------------------ */

/* b[0..n) = AES of counter blocks: block i < m gets counter ctr + i, the blocks from m on get counter 1
 * (J0, whose encryption masks the tag). All n blocks go through the rounds side by side. */
ARM_INLINE void aes_ctr_blocks(const uid2_gcm_arm_key *k, const unsigned nr, v128 j0, uint32_t ctr, size_t m,
                               v128 *b, const size_t n)
{
    uint32x4_t j = vreinterpretq_u32_u8(j0);
#pragma GCC unroll 8
    for (size_t i = 0; i < n; i++) {
        uint32_t c = i < m ? ctr + (uint32_t)i : 1u;
        b[i] = vreinterpretq_u8_u32(vsetq_lane_u32(__builtin_bswap32(c), j, 3));
    }
#pragma GCC unroll 14
    for (unsigned r = 0; r + 1 < nr; r++) {
        v128 rk = ld(k->rk[r]);
#pragma GCC unroll 8
        for (size_t i = 0; i < n; i++)
            b[i] = vaesmcq_u8(vaeseq_u8(b[i], rk));
    }
    v128 rp = ld(k->rk[nr - 1]), rl = ld(k->rk[nr]);
#pragma GCC unroll 8
    for (size_t i = 0; i < n; i++)
        b[i] = veorq_u8(vaeseq_u8(b[i], rp), rl);
}

/* Eight full blocks: out = in ^ b, and GHASH absorbs the ciphertext (in when decrypting, out when
 * encrypting) as one group with one reduction. */
ARM_INLINE v128 crypt8(const uid2_gcm_arm_key *k, const v128 *b, const uint8_t *in, uint8_t *out, v128 y,
                       const int decrypt)
{
    v128 lo = vdupq_n_u8(0), mid = lo, hi = lo;
#pragma GCC unroll 8
    for (size_t i = 0; i < 8; i++) {
        v128 x = ld(in + 16 * i);
        v128 o = veorq_u8(x, b[i]);
        st(out + 16 * i, o);
        v128 c = bswap128(decrypt ? x : o);
        if (i == 0)
            c = veorq_u8(c, y);
        gf_mul_acc(k, 7 - i, c, &lo, &mid, &hi);
    }
    return gf_reduce(lo, mid, hi);
}

/* The last r (0..8, a compile-time constant here) data blocks, starting at block d, with keystream b[0..r),
 * then the length block; b[r] is E(J0). The last block is partial when len % 16 != 0. Returns the tag. */
ARM_INLINE v128 final_r(const uid2_gcm_arm_key *k, const v128 *b, const size_t r, const uint8_t *in, uint8_t *out,
                        size_t d, size_t len, v128 y, v128 len_block, const int decrypt)
{
    const size_t total = r + 1, g = total > 8 ? 8 : total; /* a 9th GHASH block gets its own group */
    size_t rem = len % 16;
    v128 lo = vdupq_n_u8(0), mid = lo, hi = lo;
#pragma GCC unroll 9
    for (size_t v = 0; v < total; v++) {
        v128 c;
        if (v == r) {
            c = len_block;
        } else if (v + 1 < r || rem == 0) {
            v128 x = ld(in + 16 * (d + v));
            v128 p = veorq_u8(x, b[v]);
            st(out + 16 * (d + v), p);
            c = decrypt ? x : p;
        } else {
            v128 x = load_partial(in, len);
            v128 p = veorq_u8(x, b[v]);
            store_low(out + 16 * (d + v), p, rem);
            /* the ciphertext block is hashed zero-padded */
            c = decrypt ? x : vandq_u8(p, ld(ones_then_zeros + 16 - rem));
        }
        c = bswap128(c);
        if (v == 0 || v == 8)
            c = veorq_u8(c, y);
        gf_mul_acc(k, v < 8 ? g - 1 - v : 0, c, &lo, &mid, &hi);
        if (v + 1 == g || v == 8) {
            y = gf_reduce(lo, mid, hi);
            lo = mid = hi = vdupq_n_u8(0);
        }
    }
    return veorq_u8(bswap128(y), b[r]);
}

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

ARM_TARGET __attribute__((noinline)) static v128 final_dec(const uid2_gcm_arm_key *k, const v128 *b, size_t r,
                                                          const uint8_t *in, uint8_t *out, size_t d, size_t len,
                                                          v128 y, v128 len_block)
{
    FINAL_SWITCH(1)
}

ARM_TARGET __attribute__((noinline)) static v128 final_enc(const uid2_gcm_arm_key *k, const v128 *b, size_t r,
                                                          const uint8_t *in, uint8_t *out, size_t d, size_t len,
                                                          v128 y, v128 len_block)
{
    FINAL_SWITCH(0)
}

/* GCM over len bytes of in -> out after the AAD (decrypt: GHASH over in; encrypt: over out). Data block i
 * uses counter i + 2; J0 (counter 1) rides in the last batch of 8, 4, 2 or 1 blocks. Returns the tag. */
ARM_INLINE v128 gcm_crypt(const uid2_gcm_arm_key *k, const unsigned nr, const uint8_t nonce[12], const uint8_t *aad,
                          size_t aad_len, const uint8_t *in, uint8_t *out, size_t len, const int decrypt)
{
    uint8_t nb[16] = {0};
    memcpy(nb, nonce, 12);
    v128 j0 = ld(nb), y = vdupq_n_u8(0), b[9];
    if (aad_len != 0)
        y = ghash(k, y, aad, aad_len);
    size_t nfull = len / 16, d = 0;
    for (; d + 8 <= nfull; d += 8) {
        aes_ctr_blocks(k, nr, j0, (uint32_t)d + 2, 8, b, 8);
        y = crypt8(k, b, in + 16 * d, out + 16 * d, y, decrypt);
    }
    size_t r = nfull - d + (len % 16 != 0); /* data blocks left, 0..8 */
    uint32_t c = (uint32_t)d + 2;
    if (r >= 8) {
        aes_ctr_blocks(k, nr, j0, c, r, b, 8);
        aes_ctr_blocks(k, nr, j0, c, 0, b + 8, 1);
    } else if (r >= 4) {
        aes_ctr_blocks(k, nr, j0, c, r, b, 8);
    } else if (r >= 2) {
        aes_ctr_blocks(k, nr, j0, c, r, b, 4);
    } else if (r == 1) {
        aes_ctr_blocks(k, nr, j0, c, r, b, 2);
    } else {
        aes_ctr_blocks(k, nr, j0, c, r, b, 1);
    }
    /* the length block: 64-bit big-endian bit lengths of the AAD and the data */
    uint64_t lens[2] = {(uint64_t)len * 8u, (uint64_t)aad_len * 8u};
    v128 len_block = bswap128(vreinterpretq_u8_u64(vld1q_u64(lens)));
    return decrypt ? final_dec(k, b, r, in, out, d, len, y, len_block)
                   : final_enc(k, b, r, in, out, d, len, y, len_block);
}

ARM_INLINE int gcm_open(const uid2_gcm_arm_key *k, const unsigned nr, const uint8_t nonce[12], const uint8_t *aad,
                        size_t aad_len, const uint8_t *ct, size_t len, v128 tag, v128 tag_mask, uint8_t *out)
{
    /* every ciphertext block is read before its plaintext is written, so out == ct works */
    v128 diff = vandq_u8(veorq_u8(gcm_crypt(k, nr, nonce, aad, aad_len, ct, out, len, 1), tag), tag_mask);
    uint64x2_t d64 = vreinterpretq_u64_u8(diff);
    if ((vgetq_lane_u64(d64, 0) | vgetq_lane_u64(d64, 1)) == 0)
        return 0;
    uid2_secure_zero(out, len); /* never a partial result */
    return -1;
}

static int lengths_ok(size_t aad_len, size_t len)
{
    return (uint64_t)len <= UID2_GCM_ARM_MAX_LEN && (uint64_t)aad_len < ((uint64_t)1 << 61);
}

/* Each key size gets its own fully unrolled copy (the round count is a compile-time constant inside). */
ARM_TARGET static int open_any(const uid2_gcm_arm_key *k, const uint8_t nonce[12], const uint8_t *aad,
                               size_t aad_len, const uint8_t *ct, size_t len, v128 tag, v128 mask, uint8_t *out)
{
    if (lengths_ok(aad_len, len)) {
        if (k->rounds == 14)
            return gcm_open(k, 14, nonce, aad, aad_len, ct, len, tag, mask, out);
        if (k->rounds == 12)
            return gcm_open(k, 12, nonce, aad, aad_len, ct, len, tag, mask, out);
        if (k->rounds == 10)
            return gcm_open(k, 10, nonce, aad, aad_len, ct, len, tag, mask, out);
    }
    if (out != ct && (uint64_t)len <= UID2_GCM_ARM_MAX_LEN)
        uid2_secure_zero(out, len);
    return -1;
}

ARM_TARGET static int seal_any(const uid2_gcm_arm_key *k, const uint8_t nonce[12], const uint8_t *aad,
                               size_t aad_len, const uint8_t *pt, size_t len, uint8_t *out, uint8_t tag[16])
{
    if (!lengths_ok(aad_len, len))
        return -1;
    if (k->rounds == 14)
        st(tag, gcm_crypt(k, 14, nonce, aad, aad_len, pt, out, len, 0));
    else if (k->rounds == 12)
        st(tag, gcm_crypt(k, 12, nonce, aad, aad_len, pt, out, len, 0));
    else if (k->rounds == 10)
        st(tag, gcm_crypt(k, 10, nonce, aad, aad_len, pt, out, len, 0));
    else
        return -1;
    return 0;
}

ARM_TARGET int uid2_gcm_arm_decrypt(const uid2_gcm_arm_key *k, const uint8_t nonce[12], const uint8_t *ct,
                                    size_t ct_len, const uint8_t tag[16], uint8_t *out)
{
    return open_any(k, nonce, NULL, 0, ct, ct_len, ld(tag), vdupq_n_u8(0xff), out);
}

ARM_TARGET int uid2_gcm_arm_decrypt_ex(const uid2_gcm_arm_key *k, const uint8_t nonce[12], const uint8_t *aad,
                                       size_t aad_len, const uint8_t *ct, size_t ct_len, const uint8_t *tag,
                                       size_t tag_len, uint8_t *out)
{
    if (!(tag_len == 4 || tag_len == 8 || (tag_len >= 12 && tag_len <= 16))) {
        if (out != ct && (uint64_t)ct_len <= UID2_GCM_ARM_MAX_LEN)
            uid2_secure_zero(out, ct_len);
        return -1;
    }
    uint8_t t[16] = {0};
    memcpy(t, tag, tag_len);
    return open_any(k, nonce, aad, aad_len, ct, ct_len, ld(t), ld(ones_then_zeros + 16 - tag_len), out);
}

ARM_TARGET int uid2_gcm_arm_encrypt(const uid2_gcm_arm_key *k, const uint8_t nonce[12], const uint8_t *pt,
                                    size_t len, uint8_t *out, uint8_t tag[16])
{
    return seal_any(k, nonce, NULL, 0, pt, len, out, tag);
}

ARM_TARGET int uid2_gcm_arm_encrypt_ex(const uid2_gcm_arm_key *k, const uint8_t nonce[12], const uint8_t *aad,
                                       size_t aad_len, const uint8_t *pt, size_t len, uint8_t *out,
                                       uint8_t tag[16])
{
    return seal_any(k, nonce, aad, aad_len, pt, len, out, tag);
}

ARM_TARGET int uid2_gcm_arm_key_init(uid2_gcm_arm_key *k, const uint8_t *key, size_t key_len)
{
    uid2_secure_zero(k, sizeof *k);
    if (key_len != 16 && key_len != 24 && key_len != 32)
        return -1;
    unsigned rounds = (unsigned)(key_len / 4 + 6);
    expand_key(k->rk, key, key_len / 4, rounds);
    k->rounds = rounds;
    /* the equivalent inverse cipher's round keys, for CBC: rk[Nr], InvMixColumns(rk[Nr-1 .. 1]), rk[0] */
    st(k->drk[0], ld(k->rk[rounds]));
    for (unsigned i = 1; i < rounds; i++)
        st(k->drk[i], vaesimcq_u8(ld(k->rk[rounds - i])));
    st(k->drk[rounds], ld(k->rk[0]));

    /* H = AES(0^128), reflected, then times x^-1: a one-bit left shift of the 128-bit value, folding bit
     * 127 back as x^-1 = x^127 + x^6 + x + 1 (0xC2..01) under a mask rather than a branch. */
    v128 h = bswap128(aes_block(k->rk, rounds, vdupq_n_u8(0)));
    uint64_t lo = vgetq_lane_u64(vreinterpretq_u64_u8(h), 0), hi = vgetq_lane_u64(vreinterpretq_u64_u8(h), 1);
    uint64_t carry = (uint64_t)0 - (hi >> 63);
    uint64_t s[2] = {(lo << 1) ^ (carry & 1u), ((hi << 1) | (lo >> 63)) ^ (carry & 0xC200000000000000ULL)};
    h = vreinterpretq_u8_u64(vld1q_u64(s));
    uid2_secure_zero(s, sizeof s);

    v128 p = h;
    for (size_t i = 0; i < 8; i++) {
        if (i > 0)
            p = gf_mul(p, h); /* value(p) * H: H^(i+1), still times x^-1 */
        st(k->hpow[i], p);
        st(k->hkar[i], veorq_u8(p, swap64(p)));
    }
    return 0;
}

/* ---- CBC decryption --------------------------------------------------------------------------------- */

/* n blocks (1..4, a constant here) through the inverse rounds side by side. */
ARM_INLINE void aes_dec_blocks(const uid2_gcm_arm_key *k, const unsigned nr, v128 *s, const size_t n)
{
#pragma GCC unroll 14
    for (unsigned r = 0; r + 1 < nr; r++) {
        v128 dk = ld(k->drk[r]);
#pragma GCC unroll 4
        for (size_t i = 0; i < n; i++)
            s[i] = vaesimcq_u8(vaesdq_u8(s[i], dk));
    }
    v128 dp = ld(k->drk[nr - 1]), dl = ld(k->drk[nr]);
#pragma GCC unroll 4
    for (size_t i = 0; i < n; i++)
        s[i] = veorq_u8(vaesdq_u8(s[i], dp), dl);
}

/* Four blocks at a time (CBC decryption has no chain between the block decryptions), then one at a time.
 * Each group's ciphertext is loaded before its plaintext is stored, so out == ct works. */
ARM_INLINE void cbc_dec(const uid2_gcm_arm_key *k, const unsigned nr, const uint8_t *iv, const uint8_t *ct, size_t len,
                        uint8_t *out)
{
    v128 prev = ld(iv), s[4], c[4];
    size_t i = 0;
    for (; i + 64 <= len; i += 64) {
#pragma GCC unroll 4
        for (size_t j = 0; j < 4; j++)
            s[j] = c[j] = ld(ct + i + 16 * j);
        aes_dec_blocks(k, nr, s, 4);
        st(out + i, veorq_u8(s[0], prev));
        st(out + i + 16, veorq_u8(s[1], c[0]));
        st(out + i + 32, veorq_u8(s[2], c[1]));
        st(out + i + 48, veorq_u8(s[3], c[2]));
        prev = c[3];
    }
    for (; i < len; i += 16) {
        s[0] = c[0] = ld(ct + i);
        aes_dec_blocks(k, nr, s, 1);
        st(out + i, veorq_u8(s[0], prev));
        prev = c[0];
    }
}

ARM_TARGET int uid2_cbc_arm_decrypt(const uid2_gcm_arm_key *k, const uint8_t iv[16], const uint8_t *ct, size_t len,
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

#else /* no ARMv8 kernel in this build: callers use their portable path */

int uid2_gcm_arm_built(void)
{
    return 0;
}

int uid2_gcm_arm_key_init(uid2_gcm_arm_key *k, const uint8_t *key, size_t key_len)
{
    (void)key, (void)key_len;
    uid2_secure_zero(k, sizeof *k);
    return -1;
}

int uid2_gcm_arm_decrypt(const uid2_gcm_arm_key *k, const uint8_t nonce[12], const uint8_t *ct, size_t ct_len,
                         const uint8_t tag[16], uint8_t *out)
{
    return uid2_gcm_arm_decrypt_ex(k, nonce, NULL, 0, ct, ct_len, tag, 16, out);
}

int uid2_gcm_arm_decrypt_ex(const uid2_gcm_arm_key *k, const uint8_t nonce[12], const uint8_t *aad,
                            size_t aad_len, const uint8_t *ct, size_t ct_len, const uint8_t *tag, size_t tag_len,
                            uint8_t *out)
{
    (void)k, (void)nonce, (void)aad, (void)aad_len, (void)tag, (void)tag_len;
    if (out != ct)
        uid2_secure_zero(out, ct_len);
    return -1;
}

int uid2_gcm_arm_encrypt(const uid2_gcm_arm_key *k, const uint8_t nonce[12], const uint8_t *pt, size_t len,
                         uint8_t *out, uint8_t tag[16])
{
    return uid2_gcm_arm_encrypt_ex(k, nonce, NULL, 0, pt, len, out, tag);
}

int uid2_gcm_arm_encrypt_ex(const uid2_gcm_arm_key *k, const uint8_t nonce[12], const uint8_t *aad,
                            size_t aad_len, const uint8_t *pt, size_t len, uint8_t *out, uint8_t tag[16])
{
    (void)k, (void)nonce, (void)aad, (void)aad_len, (void)pt, (void)len, (void)out, (void)tag;
    return -1;
}

int uid2_cbc_arm_decrypt(const uid2_gcm_arm_key *k, const uint8_t iv[16], const uint8_t *ct, size_t len,
                         uint8_t *out)
{
    (void)k, (void)iv, (void)ct, (void)len, (void)out;
    return -1;
}

#endif
