/* The kernel dispatch layer: the one place that decides which AES-GCM / AES-CBC and base64 kernels the
 * process uses.
 *
 * Two decisions, made once each:
 *   at compile time, the kernel family the build carries: x86-64 (uid2_gcm_ni.c: AES-NI + PCLMULQDQ;
 *     uid2_b64fast.c: SSSE3), aarch64 (uid2_gcm_arm.c: ARMv8 crypto extensions AES + PMULL;
 *     uid2_b64_neon.c: NEON), or none (any other architecture, or -DUID2_FASTPATH_GENERIC);
 *   at run time (uid2_hw_kernels(), probed once, thread-safe), whether this CPU has the instructions:
 *     x86-64 by CPUID; aarch64 by getauxval(AT_HWCAP) on Linux, elf_aux_info on FreeBSD,
 *     IsProcessorFeaturePresent on Windows, always on Apple silicon.
 * A process whose CPU has no AES instructions gets UID2_HW_NONE: the C engine then cannot decrypt, reports
 * so (uid2_hw_available() == 0), and the Python package uses its pure-Python engine instead.
 *
 * The engine calls only the uid2_hw_* names below; each is a static inline forward to the family's kernel,
 * so the dispatch costs nothing per call. A family's kernel file implements (see uid2_gcm_ni.h and
 * uid2_gcm_arm.h, which declare the same set):
 *   <fam>_key_init, <fam>_key_wipe, <fam>_decrypt, <fam>_encrypt, <fam>_decrypt_ex, <fam>_encrypt_ex
 *   (AES-GCM, 12-byte nonce), uid2_cbc_<x>_decrypt (raw AES-CBC decryption), all constant time.
 * Callers must not call them unless uid2_hw_available(). No Python.h, no allocation. */
#ifndef UID2_KERNELS_H
#define UID2_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "uid2_port.h"

/* CPU features (uid2_cpu_features(); bits are 0 on other architectures). */
#define UID2_CPU_X86_SSSE3 (1u << 0)
#define UID2_CPU_X86_SSE41 (1u << 1)
#define UID2_CPU_X86_AESNI (1u << 2)
#define UID2_CPU_X86_PCLMUL (1u << 3)
#define UID2_CPU_X86_AVX2 (1u << 4)       /* with the OS saving the YMM state */
#define UID2_CPU_X86_VAES (1u << 5)       /* VAES and VPCLMULQDQ, with AVX2 usable */
#define UID2_CPU_X86_AVX512 (1u << 6)     /* AVX-512 F/BW/VL, with the OS saving the ZMM state */
#define UID2_CPU_X86_AVX512VBMI (1u << 7) /* AVX-512 VBMI (byte permutes, multishift), with AVX512 usable */
#define UID2_CPU_ARM_NEON (1u << 16)
#define UID2_CPU_ARM_AES (1u << 17)       /* AESE/AESD/AESMC/AESIMC */
#define UID2_CPU_ARM_PMULL (1u << 18)     /* PMULL/PMULL2 on 64-bit lanes */

/* Kernel families (uid2_hw_kernels()). */
#define UID2_HW_NONE 0
#define UID2_HW_X86_AESNI 1 /* AES-NI + PCLMULQDQ + SSSE3 + SSE4.1 */
#define UID2_HW_ARMV8 2     /* ARMv8 AES + PMULL + NEON */

#if defined(UID2_X86_64) && (defined(UID2_GNUC) || defined(UID2_MSVC)) && !defined(UID2_FASTPATH_GENERIC)
#define UID2_KERNELS_X86 1
#include "uid2_gcm_ni.h"
typedef uid2_gcm_ni_key uid2_hw_key;
#elif defined(UID2_AARCH64) && !defined(UID2_FASTPATH_GENERIC)
#define UID2_KERNELS_ARM 1
#include "uid2_gcm_arm.h"
typedef uid2_gcm_arm_key uid2_hw_key;
#else
#define UID2_KERNELS_NONE 1
typedef struct {
    uint32_t rounds; /* always 0: there is no kernel to key */
} uid2_hw_key;
#endif

/* The CPU's features, probed once (thread-safe). */
unsigned uid2_cpu_features(void);

/* The kernel family this process uses: UID2_HW_X86_AESNI / UID2_HW_ARMV8 when the build carries the family
 * and the CPU has its instructions, else UID2_HW_NONE. Not affected by UID2FAST_NO_FASTPATH (that switch
 * turns off the optional fast paths, see uid2_fastpath_enabled). Probed once, thread-safe. */
int uid2_hw_kernels(void);

/* 1 when uid2_hw_kernels() != UID2_HW_NONE: the engine can encrypt and decrypt. */
int uid2_hw_available(void);

/* "aesni" (x86-64), "armv8" (aarch64) or "none": for backend_features and messages. */
const char *uid2_hw_name(void);

/* 0 when UID2FAST_NO_FASTPATH is set (not "" or "0"), else 1; read once. */
int uid2_fastpath_enabled(void);

/* ---- the kernels, whichever family was compiled in --------------------------------------------------- */

/* Expands a 16-, 24- or 32-byte AES key: round keys (encryption and decryption) and the GHASH key powers.
 * 0, or -1 (other length, or no kernel: then *k is zeroed). */
UID2_ALWAYS_INLINE int uid2_hw_key_init(uid2_hw_key *k, const uint8_t *key, size_t key_len)
{
#if defined(UID2_KERNELS_X86)
    return uid2_gcm_ni_key_init(k, key, key_len);
#elif defined(UID2_KERNELS_ARM)
    return uid2_gcm_arm_key_init(k, key, key_len);
#else
    (void)key;
    (void)key_len;
    uid2_secure_zero(k, sizeof *k);
    return -1;
#endif
}

UID2_ALWAYS_INLINE void uid2_hw_key_wipe(uid2_hw_key *k)
{
#if defined(UID2_KERNELS_X86)
    uid2_gcm_ni_key_wipe(k);
#elif defined(UID2_KERNELS_ARM)
    uid2_gcm_arm_key_wipe(k);
#else
    uid2_secure_zero(k, sizeof *k);
#endif
}

/* AES-GCM decryption of ct_len bytes, no AAD, 16-byte tag compared in constant time. 0, or -1 (tag
 * mismatch: out's ct_len bytes are zeroed). out may be exactly ct. */
UID2_ALWAYS_INLINE int uid2_hw_gcm_decrypt(const uid2_hw_key *k, const uint8_t nonce[12], const uint8_t *ct,
                                           size_t ct_len, const uint8_t tag[16], uint8_t *out)
{
#if defined(UID2_KERNELS_X86)
    return uid2_gcm_ni_decrypt(k, nonce, ct, ct_len, tag, out);
#elif defined(UID2_KERNELS_ARM)
    return uid2_gcm_arm_decrypt(k, nonce, ct, ct_len, tag, out);
#else
    (void)k, (void)nonce, (void)tag;
    if (out != ct)
        uid2_secure_zero(out, ct_len);
    return -1;
#endif
}

/* AES-GCM encryption of len bytes, no AAD: out gets len bytes, tag 16. 0 or -1. out may be exactly pt. */
UID2_ALWAYS_INLINE int uid2_hw_gcm_encrypt(const uid2_hw_key *k, const uint8_t nonce[12], const uint8_t *pt,
                                           size_t len, uint8_t *out, uint8_t tag[16])
{
#if defined(UID2_KERNELS_X86)
    return uid2_gcm_ni_encrypt(k, nonce, pt, len, out, tag);
#elif defined(UID2_KERNELS_ARM)
    return uid2_gcm_arm_encrypt(k, nonce, pt, len, out, tag);
#else
    (void)k, (void)nonce, (void)pt, (void)len, (void)out, (void)tag;
    return -1;
#endif
}

/* Raw AES-CBC decryption of len bytes (a non-zero multiple of 16; no padding removed). 0 or -1. out may
 * be exactly ct. */
UID2_ALWAYS_INLINE int uid2_hw_cbc_decrypt(const uid2_hw_key *k, const uint8_t iv[16], const uint8_t *ct,
                                           size_t len, uint8_t *out)
{
#if defined(UID2_KERNELS_X86)
    return uid2_cbc_ni_decrypt(k, iv, ct, len, out);
#elif defined(UID2_KERNELS_ARM)
    return uid2_cbc_arm_decrypt(k, iv, ct, len, out);
#else
    (void)k, (void)iv, (void)ct, (void)len, (void)out;
    return -1;
#endif
}

#endif
