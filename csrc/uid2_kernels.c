/* Run-time kernel selection (see uid2_kernels.h): CPU feature probes per architecture and OS. */
#include "uid2_kernels.h"

#include <stdlib.h>
#include <string.h>

#if defined(UID2_AARCH64) && defined(__linux__)
#include <sys/auxv.h>
#elif defined(UID2_AARCH64) && defined(__FreeBSD__)
#include <sys/auxv.h>
#endif

#if defined(UID2_X86)
static unsigned probe(void)
{
    unsigned r[4], f = 0;
    if (uid2_cpuid(1, 0, r) != 0)
        return 0;
    unsigned ecx1 = r[2];
    if (ecx1 & (1u << 9))
        f |= UID2_CPU_X86_SSSE3;
    if (ecx1 & (1u << 19))
        f |= UID2_CPU_X86_SSE41;
    if (ecx1 & (1u << 25))
        f |= UID2_CPU_X86_AESNI;
    if (ecx1 & (1u << 1))
        f |= UID2_CPU_X86_PCLMUL;
    /* AVX state saved by the OS (OSXSAVE, then XCR0 bits 1 and 2) before any 256-bit feature counts */
    int os_avx = (ecx1 & (1u << 27)) && (ecx1 & (1u << 28)) && (uid2_xgetbv0() & 0x6) == 0x6;
    int os_avx512 = os_avx && (uid2_xgetbv0() & 0xE6) == 0xE6;
    if (os_avx && uid2_cpuid(7, 0, r) == 0) {
        unsigned ebx7 = r[1], ecx7 = r[2];
        if (ebx7 & (1u << 5))
            f |= UID2_CPU_X86_AVX2;
        if ((f & UID2_CPU_X86_AVX2) && (ecx7 & (1u << 9)) && (ecx7 & (1u << 10)))
            f |= UID2_CPU_X86_VAES;
        const unsigned f_bw_vl = (1u << 16) | (1u << 30) | (1u << 31);
        if (os_avx512 && (ebx7 & f_bw_vl) == f_bw_vl)
            f |= UID2_CPU_X86_AVX512;
        if ((f & UID2_CPU_X86_AVX512) && (ecx7 & (1u << 1)))
            f |= UID2_CPU_X86_AVX512VBMI;
    }
    return f;
}
#elif defined(UID2_AARCH64)
static unsigned probe(void)
{
#if defined(__APPLE__)
    /* every Apple silicon CPU has the crypto extensions */
    return UID2_CPU_ARM_NEON | UID2_CPU_ARM_AES | UID2_CPU_ARM_PMULL;
#elif defined(_WIN32)
    unsigned f = UID2_CPU_ARM_NEON; /* Windows on ARM requires NEON */
    if (IsProcessorFeaturePresent(PF_ARM_V8_CRYPTO_INSTRUCTIONS_AVAILABLE))
        f |= UID2_CPU_ARM_AES | UID2_CPU_ARM_PMULL;
    return f;
#elif defined(__linux__) || defined(__FreeBSD__)
    /* the arm64 HWCAP bits (linux/arch/arm64/include/uapi/asm/hwcap.h; FreeBSD uses the same values) */
    const unsigned long asimd = 1ul << 1, aes = 1ul << 3, pmull = 1ul << 4;
    unsigned long hw = 0;
#if defined(__linux__)
    hw = getauxval(AT_HWCAP);
#else
    if (elf_aux_info(AT_HWCAP, &hw, sizeof hw) != 0)
        hw = 0;
#endif
    unsigned f = 0;
    if (hw & asimd)
        f |= UID2_CPU_ARM_NEON;
    if (hw & aes)
        f |= UID2_CPU_ARM_AES;
    if (hw & pmull)
        f |= UID2_CPU_ARM_PMULL;
    return f;
#else
    return 0; /* an OS we cannot ask: no kernels */
#endif
}
#else
static unsigned probe(void)
{
    return 0;
}
#endif

/* -1: not probed yet. Every thread that probes computes and stores the same value. */
static int features_cache = -1;
static int fastpath_cache = -1;

unsigned uid2_cpu_features(void)
{
    int v = uid2_atomic_load_int(&features_cache);
    if (v < 0) {
        v = (int)(probe() & 0x7FFFFFFFu);
        uid2_atomic_store_int(&features_cache, v);
    }
    return (unsigned)v;
}

int uid2_hw_kernels(void)
{
    unsigned f = uid2_cpu_features();
#if defined(UID2_KERNELS_X86)
    const unsigned need = UID2_CPU_X86_AESNI | UID2_CPU_X86_PCLMUL | UID2_CPU_X86_SSSE3 | UID2_CPU_X86_SSE41;
    return (f & need) == need ? UID2_HW_X86_AESNI : UID2_HW_NONE;
#elif defined(UID2_KERNELS_ARM)
    const unsigned need = UID2_CPU_ARM_NEON | UID2_CPU_ARM_AES | UID2_CPU_ARM_PMULL;
    return (f & need) == need && uid2_gcm_arm_built() ? UID2_HW_ARMV8 : UID2_HW_NONE;
#else
    (void)f;
    return UID2_HW_NONE;
#endif
}

int uid2_hw_available(void)
{
    return uid2_hw_kernels() != UID2_HW_NONE;
}

const char *uid2_hw_name(void)
{
    switch (uid2_hw_kernels()) {
    case UID2_HW_X86_AESNI: return "aesni";
    case UID2_HW_ARMV8: return "armv8";
    default: return "none";
    }
}

int uid2_fastpath_enabled(void)
{
    int v = uid2_atomic_load_int(&fastpath_cache);
    if (v < 0) {
        const char *e = getenv("UID2FAST_NO_FASTPATH");
        v = !(e != NULL && e[0] != '\0' && strcmp(e, "0") != 0);
        uid2_atomic_store_int(&fastpath_cache, v);
    }
    return v;
}
