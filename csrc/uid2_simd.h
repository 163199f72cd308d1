/* SSE2 helpers shared by the x86-64 kernels (uid2_gcm_ni.c, uid2_b64fast.c). SSE2 is the x86-64 baseline,
 * so these need no target attribute and inline into functions built for any later instruction set. */
#ifndef UID2_SIMD_H
#define UID2_SIMD_H

#include <emmintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "uid2_port.h"

/* Stores the low n (< 16) bytes of x: pieces of 8, 4, 2, 1 chosen by the bits of the (public) length,
 * never writing past p + n. */
UID2_ALWAYS_INLINE void uid2_store_low(uint8_t *p, __m128i x, size_t n)
{
    if (n & 8) {
        _mm_storel_epi64((__m128i *)p, x);
        p += 8;
        x = _mm_srli_si128(x, 8);
    }
    uint64_t v = (uint64_t)_mm_cvtsi128_si64(x);
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

#endif
