/* The body of the multi-buffer kernel, included by uid2_gcm_mb.c once per register width (no include guard).
 *
 * The includer defines: MB_W (messages per register: 1, 2, 4), MB_G (registers side by side: MB_W * MB_G
 * messages per pass), V (the register type), MB_FN(name) (a per-width name), MB_TGT (the target attribute)
 * and the lane-wise operations V_XOR, V_AESENC, V_AESLAST, V_CLMUL, V_SHUF8, V_SWAP64, V_BSLLI8, V_BSRLI8,
 * V_ZERO, V_BCAST (one 128-bit value in every lane), V_SET (lane l from t[l]) and V_GET (t[l] from lane l).
 *
 * Message m of a pass sits in lane m % MB_W of register group m / MB_W. All messages of a pass have the same
 * number of blocks, so they share every loop: the code is the one-message algorithm of uid2_gcm_ni.c run on
 * wider registers, with each lane's round keys and powers of H gathered from its own key, and each lane's
 * own length for its last (partial) block and its length block. */

#define MB_L (MB_W * MB_G)
#define MB_INL static inline __attribute__((always_inline)) MB_TGT

/* lane l of the result: round key r of message (g, l); with one_key (every message of the pass has the same
 * key: the master key of a batch's tokens) one broadcast instead of a gather */
MB_INL V MB_FN(rk)(const uid2_gcm_mb_msg *ms, size_t g, size_t r, const int one_key)
{
    if (one_key)
        return V_BCAST(ld(ms[0].key->rk[r]));
    __m128i t[MB_W];
#pragma GCC unroll 4
    for (size_t l = 0; l < MB_W; l++)
        t[l] = ld(ms[g * MB_W + l].key->rk[r]);
    return V_SET(t);
}

/* the Karatsuba products of x and H^(p+1) of each lane's key, added to lo / mid / hi */
MB_INL void MB_FN(mul_acc)(const uid2_gcm_mb_msg *ms, size_t g, size_t p, V x, V *lo, V *mid, V *hi,
                           const int one_key)
{
    V h, hk;
    if (one_key) {
        h = V_BCAST(ld(ms[0].key->hpow[p]));
        hk = V_BCAST(ld(ms[0].key->hkar[p]));
    } else {
        __m128i t[MB_W], u[MB_W];
#pragma GCC unroll 4
        for (size_t l = 0; l < MB_W; l++) {
            t[l] = ld(ms[g * MB_W + l].key->hpow[p]);
            u[l] = ld(ms[g * MB_W + l].key->hkar[p]);
        }
        h = V_SET(t);
        hk = V_SET(u);
    }
    *lo = V_XOR(*lo, V_CLMUL(x, h, 0x00));
    *hi = V_XOR(*hi, V_CLMUL(x, h, 0x11));
    *mid = V_XOR(*mid, V_CLMUL(V_XOR(x, V_SWAP64(x)), hk, 0x00));
}

/* gf_reduce of uid2_gcm_ni.c, lane by lane */
MB_INL V MB_FN(reduce)(V lo, V mid, V hi)
{
    const V poly = V_BCAST(_mm_set_epi64x(0, (long long)0xC200000000000000ULL));
    mid = V_XOR(mid, V_XOR(lo, hi));
    V x = V_XOR(lo, V_BSLLI8(mid));
    V y = V_XOR(hi, V_BSRLI8(mid));
    V v = V_XOR(V_SWAP64(x), V_CLMUL(x, poly, 0x00));
    V t = V_XOR(V_SWAP64(v), V_CLMUL(v, poly, 0x00));
    return V_XOR(y, t);
}

/* One pass: messages ms[0 .. MB_L) of nb blocks each (a constant after inlining, 0..9; the lengths may differ
 * in the last, partial block). Writes the plaintexts and diff[m] = computed tag xor given tag. */
MB_INL void MB_FN(pass)(const uid2_gcm_mb_msg *ms, const size_t nb, __m128i *diff, const int one_key)
{
    const V bs = V_BCAST(bswap_mask());
    V s[MB_G][10]; /* counter blocks 2 .. nb + 1, then J0 (counter 1) */
    __m128i t[MB_W];
#pragma GCC unroll 4
    for (size_t g = 0; g < MB_G; g++) {
#pragma GCC unroll 4
        for (size_t l = 0; l < MB_W; l++)
            t[l] = load_nonce(ms[g * MB_W + l].nonce);
        const V j0 = V_XOR(V_SET(t), MB_FN(rk)(ms, g, 0, one_key));
#pragma GCC unroll 10
        for (size_t i = 0; i <= nb; i++) {
            uint32_t c = i < nb ? (uint32_t)i + 2u : 1u;
            s[g][i] = V_XOR(j0, V_BCAST(_mm_set_epi32((int)__builtin_bswap32(c), 0, 0, 0)));
        }
    }
#pragma GCC unroll 13
    for (size_t r = 1; r < 14; r++) {
#pragma GCC unroll 4
        for (size_t g = 0; g < MB_G; g++) {
            const V k = MB_FN(rk)(ms, g, r, one_key);
#pragma GCC unroll 10
            for (size_t i = 0; i <= nb; i++)
                s[g][i] = V_AESENC(s[g][i], k);
        }
    }
#pragma GCC unroll 4
    for (size_t g = 0; g < MB_G; g++) {
        const V k = MB_FN(rk)(ms, g, 14, one_key);
#pragma GCC unroll 10
        for (size_t i = 0; i <= nb; i++)
            s[g][i] = V_AESLAST(s[g][i], k);
    }

#pragma GCC unroll 4
    for (size_t g = 0; g < MB_G; g++) {
        const uid2_gcm_mb_msg *m = ms + g * MB_W;
        V x[10];
#pragma GCC unroll 9
        for (size_t i = 0; i < nb; i++) {
            /* a lane's last block is partial when its length is not a multiple of 16 (a public length) */
#pragma GCC unroll 4
            for (size_t l = 0; l < MB_W; l++)
                t[l] = i + 1 == nb && m[l].len % 16 != 0 ? load_partial(m[l].ct, m[l].len) : ld(m[l].ct + 16 * i);
            V c = V_SET(t); /* every block is read before any is written: out may be ct */
            V_GET(V_XOR(c, s[g][i]), t);
#pragma GCC unroll 4
            for (size_t l = 0; l < MB_W; l++) {
                if (i + 1 == nb && m[l].len % 16 != 0)
                    uid2_store_low(m[l].out + 16 * i, t[l], m[l].len % 16);
                else
                    _mm_storeu_si128((__m128i *)(m[l].out + 16 * i), t[l]);
            }
            x[i] = V_SHUF8(c, bs); /* the (zero-padded) ciphertext block, reflected */
        }
#pragma GCC unroll 4
        for (size_t l = 0; l < MB_W; l++) /* the length blocks, reflected */
            t[l] = _mm_set_epi64x(0, (long long)((uint64_t)m[l].len * 8u));
        x[nb] = V_SET(t);

        /* GHASH over nb + 1 blocks with H^1 .. H^8: one reduction per group of up to 8 */
        const size_t n = nb + 1, first = n > 8 ? n - 8 : 0;
        V y = V_ZERO(), lo, mid, hi;
        if (first) {
            lo = mid = hi = V_ZERO();
#pragma GCC unroll 2
            for (size_t j = 0; j < first; j++)
                MB_FN(mul_acc)(ms, g, first - 1 - j, x[j], &lo, &mid, &hi, one_key);
            y = MB_FN(reduce)(lo, mid, hi);
        }
        lo = mid = hi = V_ZERO();
#pragma GCC unroll 10
        for (size_t j = first; j < n; j++)
            MB_FN(mul_acc)(ms, g, n - 1 - j, j == first ? V_XOR(x[j], y) : x[j], &lo, &mid, &hi, one_key);
        y = MB_FN(reduce)(lo, mid, hi);
        V tag = V_XOR(V_SHUF8(y, bs), s[g][nb]);
#pragma GCC unroll 4
        for (size_t l = 0; l < MB_W; l++)
            t[l] = ld(m[l].tag);
        V_GET(V_XOR(tag, V_SET(t)), diff + g * MB_W);
    }
}

/* A pass over ms[0 .. MB_L), all of nb blocks, with a copy of the code per block count; one_key: every
 * message has the same key (a copy of the code each way). */
MB_TGT __attribute__((noinline)) static void MB_FN(run)(const uid2_gcm_mb_msg *ms, size_t nb, __m128i *diff,
                                                        int one_key)
{
#define MB_PASS(n)                                                                                            \
    do {                                                                                                      \
        if (one_key)                                                                                          \
            MB_FN(pass)(ms, n, diff, 1);                                                                      \
        else                                                                                                  \
            MB_FN(pass)(ms, n, diff, 0);                                                                      \
    } while (0)
    switch (nb) {
    case 0: MB_PASS(0); break;
    case 1: MB_PASS(1); break;
    case 2: MB_PASS(2); break;
    case 3: MB_PASS(3); break;
    case 4: MB_PASS(4); break;
    case 5: MB_PASS(5); break;
    case 6: MB_PASS(6); break;
    case 7: MB_PASS(7); break;
    case 8: MB_PASS(8); break;
    default: MB_PASS(9); break; /* the caller keeps lengths <= 144 */
    }
#undef MB_PASS
}

#undef MB_L
#undef MB_INL
