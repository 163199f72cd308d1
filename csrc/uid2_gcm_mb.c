/* Multi-buffer AES-256-GCM decryption of short messages (see uid2_gcm_mb.h).
 *
 * Why: one 129-byte message is 10 AES blocks (9 of data, J0) of 14 dependent rounds each; the one-message
 * kernel runs them as one chain of 8 and one of 2, so the AES units wait on their own latency most of the
 * time. Here the blocks of up to 8 messages go through the rounds together (80 independent blocks), and with
 * VAES four blocks share one instruction.
 *
 * Layout: message m of a pass sits in one 128-bit lane; a register holds the same block index of 1, 2 or 4
 * messages, so every operation of the one-message algorithm (AES rounds, the byte swap, carry-less multiplies
 * and the two-fold reduction, all lane-wise) applies unchanged. Each lane's round keys and powers of H are
 * gathered from its own uid2_gcm_ni_key where they are used (a key is used once per round and pass, so
 * gathering on the fly costs what gathering up front would). Messages of one call share their length, so
 * messages of one pass have the same number of blocks, so they share every loop too: branches and indices
 * depend only on the lengths, the message count and the instruction set (constant time in keys and data). The template is uid2_gcm_mb_tmpl.h, instantiated below
 * for 128-, 256- and 512-bit registers under per-function target attributes. */
#include "uid2_gcm_mb.h"

#include <stdlib.h>
#include <string.h>

#include "uid2_kernels.h"

static void mb_wipe(void *p, size_t n)
{
    if (p != NULL && n != 0)
        uid2_secure_zero(p, n);
}

static int env_set(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

/* Messages the wide kernels cannot take (longer than UID2_GCM_MB_MAX_LEN, or a key that is not AES-256) go
 * through the one-message kernel. */
static uint32_t one_by_one(const uid2_gcm_mb_msg *msgs, size_t n, uint32_t todo)
{
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++)
        if ((todo >> i) & 1u)
            if (uid2_gcm_ni_decrypt(msgs[i].key, msgs[i].nonce, msgs[i].ct, msgs[i].len, msgs[i].tag,
                                    msgs[i].out) != 0)
                bad |= 1u << i;
    return bad;
}

static uint32_t lanes_mask(size_t n)
{
    return n >= 32 ? UINT32_MAX : (1u << n) - 1u;
}

/* The wide kernels need GCC/Clang target attributes (MSVC builds use the one-message kernel). */
#if defined(UID2_KERNELS_X86) && defined(UID2_GNUC)

#include <immintrin.h>

#include "uid2_simd.h"

#define NI_TGT __attribute__((target("aes,pclmul,sse4.1,ssse3")))
#define NI_INL static inline __attribute__((always_inline)) NI_TGT

NI_INL __m128i bswap_mask(void)
{
    return _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}

NI_INL __m128i ld(const void *p)
{
    return _mm_loadu_si128((const __m128i *)p);
}

/* the 12-byte nonce in bytes 0..11, zeros above (counter field 0) */
NI_INL __m128i load_nonce(const uint8_t *nonce)
{
    uint64_t a;
    uint32_t c;
    memcpy(&a, nonce, 8);
    memcpy(&c, nonce + 8, 4);
    return _mm_insert_epi32(_mm_cvtsi64_si128((long long)a), (int)c, 2);
}

/* The last len % 16 (non-zero) bytes of p[0 .. len) in the low bytes of a zeroed block, as uid2_gcm_ni.c
 * reads them (one load and a byte shift when a full block precedes them; never a read outside p). */
NI_INL __m128i load_partial(const uint8_t *p, size_t len)
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

/* ---- 128-bit registers (AES-NI): 2 messages, one per register (4 spill: 40 blocks in 16 registers) ------ */
#define MB_W 1
#define MB_G 2
#define V __m128i
#define MB_FN(n) n##_x1
#define MB_TGT NI_TGT
#define V_XOR _mm_xor_si128
#define V_AESENC _mm_aesenc_si128
#define V_AESLAST _mm_aesenclast_si128
#define V_CLMUL _mm_clmulepi64_si128
#define V_SHUF8 _mm_shuffle_epi8
#define V_SWAP64(x) _mm_shuffle_epi32((x), 0x4E)
#define V_BSLLI8(x) _mm_slli_si128((x), 8)
#define V_BSRLI8(x) _mm_srli_si128((x), 8)
#define V_ZERO _mm_setzero_si128
#define V_BCAST(x) (x)
#define V_SET(t) ((t)[0])
#define V_GET(v, t) ((t)[0] = (v))
#include "uid2_gcm_mb_tmpl.h"
#undef MB_W
#undef MB_G
#undef V
#undef MB_FN
#undef MB_TGT
#undef V_XOR
#undef V_AESENC
#undef V_AESLAST
#undef V_CLMUL
#undef V_SHUF8
#undef V_SWAP64
#undef V_BSLLI8
#undef V_BSRLI8
#undef V_ZERO
#undef V_BCAST
#undef V_SET
#undef V_GET

/* ---- 256-bit registers (VAES, VPCLMULQDQ, AVX2): 8 messages, two per register ---------------------------- */
#define Y_TGT __attribute__((target("aes,pclmul,sse4.1,ssse3,avx,avx2,vaes,vpclmulqdq")))

static inline __attribute__((always_inline)) Y_TGT __m256i y_set(const __m128i *t)
{
    return _mm256_inserti128_si256(_mm256_castsi128_si256(t[0]), t[1], 1);
}

static inline __attribute__((always_inline)) Y_TGT void y_get(__m256i v, __m128i *t)
{
    t[0] = _mm256_castsi256_si128(v);
    t[1] = _mm256_extracti128_si256(v, 1);
}

#define MB_W 2
#define MB_G 4
#define V __m256i
#define MB_FN(n) n##_y2
#define MB_TGT Y_TGT
#define V_XOR _mm256_xor_si256
#define V_AESENC _mm256_aesenc_epi128
#define V_AESLAST _mm256_aesenclast_epi128
#define V_CLMUL _mm256_clmulepi64_epi128
#define V_SHUF8 _mm256_shuffle_epi8
#define V_SWAP64(x) _mm256_shuffle_epi32((x), 0x4E)
#define V_BSLLI8(x) _mm256_bslli_epi128((x), 8)
#define V_BSRLI8(x) _mm256_bsrli_epi128((x), 8)
#define V_ZERO _mm256_setzero_si256
#define V_BCAST(x) _mm256_broadcastsi128_si256(x)
#define V_SET(t) y_set(t)
#define V_GET(v, t) y_get((v), (t))
#include "uid2_gcm_mb_tmpl.h"
#undef MB_W
#undef MB_G
#undef V
#undef MB_FN
#undef MB_TGT
#undef V_XOR
#undef V_AESENC
#undef V_AESLAST
#undef V_CLMUL
#undef V_SHUF8
#undef V_SWAP64
#undef V_BSLLI8
#undef V_BSRLI8
#undef V_ZERO
#undef V_BCAST
#undef V_SET
#undef V_GET

/* ---- 512-bit registers (VAES, VPCLMULQDQ, AVX-512 F/BW): 8 messages, four per register ------------------- */
#define Z_TGT __attribute__((target("aes,pclmul,sse4.1,ssse3,avx,avx2,avx512f,avx512bw,avx512vl,vaes,vpclmulqdq")))

static inline __attribute__((always_inline)) Z_TGT __m512i z_set(const __m128i *t)
{
    __m512i v = _mm512_castsi128_si512(t[0]);
    v = _mm512_inserti32x4(v, t[1], 1);
    v = _mm512_inserti32x4(v, t[2], 2);
    return _mm512_inserti32x4(v, t[3], 3);
}

static inline __attribute__((always_inline)) Z_TGT void z_get(__m512i v, __m128i *t)
{
    t[0] = _mm512_castsi512_si128(v);
    t[1] = _mm512_extracti32x4_epi32(v, 1);
    t[2] = _mm512_extracti32x4_epi32(v, 2);
    t[3] = _mm512_extracti32x4_epi32(v, 3);
}

#define MB_W 4
#define MB_G 2
#define V __m512i
#define MB_FN(n) n##_z4
#define MB_TGT Z_TGT
#define V_XOR _mm512_xor_si512
#define V_AESENC _mm512_aesenc_epi128
#define V_AESLAST _mm512_aesenclast_epi128
#define V_CLMUL _mm512_clmulepi64_epi128
#define V_SHUF8 _mm512_shuffle_epi8
#define V_SWAP64(x) _mm512_shuffle_epi32((x), (_MM_PERM_ENUM)0x4E)
#define V_BSLLI8(x) _mm512_bslli_epi128((x), 8)
#define V_BSRLI8(x) _mm512_bsrli_epi128((x), 8)
#define V_ZERO _mm512_setzero_si512
#define V_BCAST(x) _mm512_broadcast_i32x4(x)
#define V_SET(t) z_set(t)
#define V_GET(v, t) z_get((v), (t))
#include "uid2_gcm_mb_tmpl.h"
#undef MB_W
#undef MB_G
#undef V
#undef MB_FN
#undef MB_TGT
#undef V_XOR
#undef V_AESENC
#undef V_AESLAST
#undef V_CLMUL
#undef V_SHUF8
#undef V_SWAP64
#undef V_BSLLI8
#undef V_BSRLI8
#undef V_ZERO
#undef V_BCAST
#undef V_SET
#undef V_GET

/* ---- dispatch -------------------------------------------------------------------------------------------- */

/* CPU and OS support (uid2_kernels.c probes CPUID and XCR0 once). */
static int cpu_supports(int impl)
{
    const unsigned f = uid2_cpu_features();
    const unsigned ni = UID2_CPU_X86_AESNI | UID2_CPU_X86_PCLMUL | UID2_CPU_X86_SSSE3 | UID2_CPU_X86_SSE41;
    if ((f & ni) != ni)
        return 0;
    if (impl == UID2_GCM_MB_AESNI)
        return 1;
    if (impl == UID2_GCM_MB_VAES256)
        return (f & UID2_CPU_X86_VAES) != 0;
    if (impl == UID2_GCM_MB_VAES512)
        return (f & UID2_CPU_X86_VAES) && (f & UID2_CPU_X86_AVX512);
    return 0;
}

int uid2_gcm_mb_supported(int impl)
{
    static int cache[4] = {-1, -1, -1, -1}; /* each written once with the same value by any thread */
    if (impl < UID2_GCM_MB_AESNI || impl > UID2_GCM_MB_VAES512)
        return 0;
    int v = __atomic_load_n(&cache[impl], __ATOMIC_RELAXED);
    if (v < 0) {
        v = cpu_supports(impl);
        __atomic_store_n(&cache[impl], v, __ATOMIC_RELAXED);
    }
    return v;
}

int uid2_gcm_mb_impl(void)
{
    static int cached = -1;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v >= 0)
        return v;
    v = UID2_GCM_MB_NONE;
    if (!env_set("UID2FAST_NO_MULTIBUF") && uid2_fastpath_enabled() && uid2_gcm_ni_available()) {
        for (int impl = UID2_GCM_MB_VAES512; impl >= UID2_GCM_MB_AESNI; impl--)
            if (uid2_gcm_mb_supported(impl)) {
                v = impl;
                break;
            }
    }
    __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    return v;
}

/* 1 when the lane's computed tag equals its tag (diff all zero), as a vector test */
NI_TGT static int tag_ok(__m128i diff)
{
    return _mm_testz_si128(diff, diff);
}

uint32_t uid2_gcm_mb_decrypt_with(int impl, const uid2_gcm_mb_msg *msgs, size_t n)
{
    if (n > UID2_GCM_MB_MAX_MSGS)
        return UINT32_MAX;
    if (!uid2_gcm_mb_supported(impl)) {
        for (size_t i = 0; i < n; i++)
            mb_wipe(msgs[i].out, msgs[i].len);
        return lanes_mask(n);
    }
    /* AES-256 keys and short messages ride the wide kernel, in passes of messages with one block count */
    uint32_t wide = 0;
    for (size_t i = 0; i < n; i++)
        if (msgs[i].key->rounds == 14 && msgs[i].len <= UID2_GCM_MB_MAX_LEN)
            wide |= 1u << i;
    uint32_t bad = one_by_one(msgs, n, lanes_mask(n) & ~wide);
    const size_t per_pass = impl == UID2_GCM_MB_AESNI ? 2 : 8;
    uint8_t spare[UID2_GCM_MB_MAX_LEN]; /* the output of the lanes that only fill a pass */
    int spare_used = 0;
    while (wide != 0) {
        const size_t nb = (msgs[__builtin_ctz(wide)].len + 15) / 16;
        uid2_gcm_mb_msg pass[8];
        size_t idx[8], k = 0;
        for (size_t i = 0; i < n && k < per_pass; i++)
            if (((wide >> i) & 1u) && (msgs[i].len + 15) / 16 == nb) {
                idx[k] = i;
                pass[k++] = msgs[i];
                wide &= ~(1u << i);
            }
        for (size_t f = k; f < per_pass; f++) { /* a copy of the first message, writing to the spare */
            pass[f] = pass[0];
            pass[f].out = spare;
            spare_used = 1;
        }
        /* a batch's master-key payloads all have one key (the same key object): its round keys and powers of
         * H are then broadcast to every lane instead of gathered lane by lane */
        int one_key = 1;
        for (size_t f = 1; f < per_pass; f++)
            one_key &= pass[f].key == pass[0].key;
        __m128i diff[8];
        if (impl == UID2_GCM_MB_VAES512)
            run_z4(pass, nb, diff, one_key);
        else if (impl == UID2_GCM_MB_VAES256)
            run_y2(pass, nb, diff, one_key);
        else
            run_x1(pass, nb, diff, one_key);
        for (size_t f = 0; f < k; f++)
            if (!tag_ok(diff[f])) {
                mb_wipe(pass[f].out, pass[f].len); /* never a partial result */
                bad |= 1u << idx[f];
            }
    }
    if (spare_used)
        mb_wipe(spare, sizeof spare);
    return bad;
}

uint32_t uid2_gcm_mb_decrypt(const uid2_gcm_mb_msg *msgs, size_t n)
{
    return uid2_gcm_mb_decrypt_with(uid2_gcm_mb_impl(), msgs, n);
}

#else /* no wide kernel in this build; uid2_gcm_mb_decrypt takes the one-message kernel (which fails every
       * message where it does not exist either) */

int uid2_gcm_mb_supported(int impl)
{
    (void)impl;
    return 0;
}

int uid2_gcm_mb_impl(void)
{
    (void)env_set;
    return UID2_GCM_MB_NONE;
}

uint32_t uid2_gcm_mb_decrypt_with(int impl, const uid2_gcm_mb_msg *msgs, size_t n)
{
    (void)impl;
    if (n > UID2_GCM_MB_MAX_MSGS)
        return UINT32_MAX;
    for (size_t i = 0; i < n; i++)
        mb_wipe(msgs[i].out, msgs[i].len);
    return lanes_mask(n);
}

uint32_t uid2_gcm_mb_decrypt(const uid2_gcm_mb_msg *msgs, size_t n)
{
    if (n > UID2_GCM_MB_MAX_MSGS)
        return UINT32_MAX;
    return one_by_one(msgs, n, lanes_mask(n));
}

#endif
