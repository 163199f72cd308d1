/* Portability shims: the one place that knows about compilers and operating systems.
 *
 * Everything else in csrc/ is plain C11 plus these names:
 *   attributes   UID2_ALWAYS_INLINE, UID2_NOINLINE, UID2_ALIGN16 (before a declaration), UID2_PREFETCH,
 *                UID2_UNUSED, UID2_UNROLL(n)
 *   threads      uid2_thread_t, uid2_thread_create, uid2_thread_join, uid2_thread_detach (pthreads, or
 *                Win32 threads)
 *   locks        uid2_mutex_t, uid2_mutex_init, uid2_mutex_lock, uid2_mutex_unlock; uid2_cond_t,
 *                uid2_cond_init, uid2_cond_wait, uid2_cond_signal
 *                (pthread mutexes and condition variables, or SRW locks and Win32 condition variables)
 *   clock        uid2_monotonic_ns (nanoseconds, for bounding spin-waits)
 *   once         uid2_once_t, UID2_ONCE_INIT, uid2_once              (pthread_once / InitOnceExecuteOnce)
 *   thread-local UID2_THREAD_LOCAL                                    (_Thread_local / __declspec(thread))
 *   atomics      uid2_atomic_load_int, uid2_atomic_store_int, uid2_atomic_xchg_int, uid2_atomic_add_fetch_int,
 *                uid2_atomic_inc_uint, uid2_atomic_load_uint, uid2_atomic_xchg_ptr (sequentially consistent;
 *                __atomic builtins / Interlocked*);
 *                uid2_atomic_add_u64, uid2_atomic_load_u64, uid2_atomic_fetch_add_u64 (relaxed: counters and
 *                work cursors, no ordering with other memory); uid2_atomic_bump_u64 (+1 by writers that a
 *                lock of the caller's serialises: no locked instruction); uid2_atomic_store_release_u64 and
 *                uid2_atomic_load_acquire_u64 (a count that publishes the memory written before it)
 *   waiting      uid2_spin_pause (one spin-wait step), uid2_thread_yield (give up the CPU for a moment)
 *   bit tricks   uid2_bswap32, uid2_bswap64, uid2_clz64
 *   overflow     uid2_add_overflow_i64, uid2_sub_overflow_i64, uid2_mul_overflow_i64
 *   CPUID        uid2_cpuid, uid2_xgetbv0 (x86 and x86-64 only: UID2_X86)
 *   wipe         uid2_secure_zero (a memset the compiler cannot remove)
 *
 * Supported: GCC and Clang (Linux, macOS, the BSDs, MinGW-w64, zig cc) and MSVC (C11 mode, /std:c11). On
 * Windows the Win32 primitives are used under every compiler, so a MinGW build needs no winpthreads. */
#ifndef UID2_PORT_H
#define UID2_PORT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(_MSC_VER) && !defined(__clang__)
#define UID2_MSVC 1
#endif
#if defined(__GNUC__) || defined(__clang__)
#define UID2_GNUC 1
#endif

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)
#define UID2_X86 1
#endif
#if defined(__x86_64__) || defined(_M_X64)
#define UID2_X86_64 1
#endif
#if defined(__aarch64__) || defined(_M_ARM64)
#define UID2_AARCH64 1
#endif

/* ---- attributes ------------------------------------------------------------------------------------- */

#if defined(UID2_GNUC)
#define UID2_ALWAYS_INLINE static inline __attribute__((always_inline))
#define UID2_NOINLINE __attribute__((noinline))
#define UID2_UNUSED __attribute__((unused))
#define UID2_PREFETCH(p) __builtin_prefetch(p)
#elif defined(UID2_MSVC)
#include <intrin.h>
#define UID2_ALWAYS_INLINE static __forceinline
#define UID2_NOINLINE __declspec(noinline)
#define UID2_UNUSED
#if defined(_M_X64) || defined(_M_IX86)
#define UID2_PREFETCH(p) _mm_prefetch((const char *)(p), _MM_HINT_T0)
#else
#define UID2_PREFETCH(p) ((void)(p))
#endif
#else
#define UID2_ALWAYS_INLINE static inline
#define UID2_NOINLINE
#define UID2_UNUSED
#define UID2_PREFETCH(p) ((void)(p))
#endif
/* Unroll the next loop n times (a hint; loops with constant trip counts in the kernels). */
#define UID2_PRAGMA_(x) _Pragma(#x)
#if defined(__clang__)
#define UID2_UNROLL(n) UID2_PRAGMA_(clang loop unroll_count(n))
#elif defined(__GNUC__)
#define UID2_UNROLL(n) UID2_PRAGMA_(GCC unroll n)
#else
#define UID2_UNROLL(n)
#endif
/* C11 alignment, written before the declaration: `UID2_ALIGN16 uint8_t rk[15][16];` */
#define UID2_ALIGN16 _Alignas(16)

/* ---- thread-local storage ------------------------------------------------------------------------------ */

#if defined(UID2_MSVC)
#define UID2_THREAD_LOCAL __declspec(thread)
#else
#define UID2_THREAD_LOCAL _Thread_local
#endif

/* ---- threads and once ---------------------------------------------------------------------------------- */

#if defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

typedef HANDLE uid2_thread_t;
typedef INIT_ONCE uid2_once_t;
#define UID2_ONCE_INIT INIT_ONCE_STATIC_INIT

typedef struct {
    void *(*fn)(void *);
    void *arg;
} uid2_thread_start_t;

/* The start routine's pointer and argument travel in a heap block the new thread frees. */
static inline DWORD WINAPI uid2_thread_trampoline(LPVOID p)
{
    uid2_thread_start_t s = *(uid2_thread_start_t *)p;
    HeapFree(GetProcessHeap(), 0, p);
    s.fn(s.arg);
    return 0;
}

/* 0 on success (as pthread_create). */
static inline int uid2_thread_create(uid2_thread_t *t, void *(*fn)(void *), void *arg)
{
    uid2_thread_start_t *s = (uid2_thread_start_t *)HeapAlloc(GetProcessHeap(), 0, sizeof *s);
    if (s == NULL)
        return -1;
    s->fn = fn;
    s->arg = arg;
    *t = CreateThread(NULL, 0, uid2_thread_trampoline, s, 0, NULL);
    if (*t == NULL) {
        HeapFree(GetProcessHeap(), 0, s);
        return -1;
    }
    return 0;
}

static inline int uid2_thread_join(uid2_thread_t t)
{
    DWORD rc = WaitForSingleObject(t, INFINITE);
    CloseHandle(t);
    return rc == WAIT_OBJECT_0 ? 0 : -1;
}

/* The thread runs on with nobody to join it. */
static inline void uid2_thread_detach(uid2_thread_t t)
{
    CloseHandle(t);
}

static inline void uid2_thread_yield(void)
{
    SwitchToThread();
}

typedef SRWLOCK uid2_mutex_t;
typedef CONDITION_VARIABLE uid2_cond_t;

static inline void uid2_mutex_init(uid2_mutex_t *m)
{
    InitializeSRWLock(m);
}
static inline void uid2_mutex_lock(uid2_mutex_t *m)
{
    AcquireSRWLockExclusive(m);
}
static inline void uid2_mutex_unlock(uid2_mutex_t *m)
{
    ReleaseSRWLockExclusive(m);
}
static inline void uid2_cond_init(uid2_cond_t *c)
{
    InitializeConditionVariable(c);
}
static inline void uid2_cond_wait(uid2_cond_t *c, uid2_mutex_t *m)
{
    SleepConditionVariableSRW(c, m, INFINITE, 0);
}
static inline void uid2_cond_signal(uid2_cond_t *c)
{
    WakeConditionVariable(c);
}

static inline uint64_t uid2_monotonic_ns(void)
{
    LARGE_INTEGER f, c;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&c);
    return (uint64_t)((double)c.QuadPart * (1e9 / (double)f.QuadPart));
}

static inline BOOL CALLBACK uid2_once_trampoline(PINIT_ONCE once, PVOID fn, PVOID *ctx)
{
    (void)once;
    (void)ctx;
    void (*f)(void);
    memcpy(&f, &fn, sizeof f); /* a function pointer carried through PVOID */
    f();
    return TRUE;
}

static inline void uid2_once(uid2_once_t *o, void (*fn)(void))
{
    PVOID p;
    memcpy(&p, &fn, sizeof p);
    InitOnceExecuteOnce(o, uid2_once_trampoline, p, NULL);
}

#else /* POSIX */
#include <pthread.h>
#include <sched.h>
#include <time.h>

typedef pthread_t uid2_thread_t;
typedef pthread_once_t uid2_once_t;
#define UID2_ONCE_INIT PTHREAD_ONCE_INIT

static inline int uid2_thread_create(uid2_thread_t *t, void *(*fn)(void *), void *arg)
{
    return pthread_create(t, NULL, fn, arg) == 0 ? 0 : -1;
}

static inline int uid2_thread_join(uid2_thread_t t)
{
    return pthread_join(t, NULL) == 0 ? 0 : -1;
}

static inline void uid2_thread_detach(uid2_thread_t t)
{
    pthread_detach(t);
}

static inline void uid2_thread_yield(void)
{
    sched_yield();
}

typedef pthread_mutex_t uid2_mutex_t;
typedef pthread_cond_t uid2_cond_t;

static inline void uid2_mutex_init(uid2_mutex_t *m)
{
    pthread_mutex_init(m, NULL);
}
static inline void uid2_mutex_lock(uid2_mutex_t *m)
{
    pthread_mutex_lock(m);
}
static inline void uid2_mutex_unlock(uid2_mutex_t *m)
{
    pthread_mutex_unlock(m);
}
static inline void uid2_cond_init(uid2_cond_t *c)
{
    pthread_cond_init(c, NULL);
}
static inline void uid2_cond_wait(uid2_cond_t *c, uid2_mutex_t *m)
{
    pthread_cond_wait(c, m);
}
static inline void uid2_cond_signal(uid2_cond_t *c)
{
    pthread_cond_signal(c);
}

/* CLOCK_MONOTONIC where <time.h> declares it (POSIX feature macros); under a strict -std=c11 (musl) the C11
 * timespec_get, a wall clock, which is enough to bound a spin-wait: a step of the clock ends one spin early. */
static inline uint64_t uid2_monotonic_ns(void)
{
    struct timespec ts;
#if defined(CLOCK_MONOTONIC)
    clock_gettime(CLOCK_MONOTONIC, &ts);
#else
    timespec_get(&ts, TIME_UTC);
#endif
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void uid2_once(uid2_once_t *o, void (*fn)(void))
{
    pthread_once(o, fn);
}
#endif

/* ---- atomics (sequentially consistent; ints and pointers that are naturally aligned) -------------------- */

#if defined(UID2_GNUC)
static inline int uid2_atomic_load_int(const int *p)
{
    return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}
static inline void uid2_atomic_store_int(int *p, int v)
{
    __atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}
static inline int uid2_atomic_xchg_int(int *p, int v)
{
    return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST);
}
static inline int uid2_atomic_add_fetch_int(int *p, int v)
{
    return __atomic_add_fetch(p, v, __ATOMIC_SEQ_CST);
}
static inline unsigned uid2_atomic_load_uint(const unsigned *p)
{
    return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}
static inline void uid2_atomic_inc_uint(unsigned *p)
{
    __atomic_add_fetch(p, 1u, __ATOMIC_SEQ_CST);
}
static inline void *uid2_atomic_xchg_ptr(void **p, void *v)
{
    return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST);
}
static inline void uid2_atomic_add_u64(uint64_t *p, uint64_t n)
{
    __atomic_fetch_add(p, n, __ATOMIC_RELAXED);
}
static inline uint64_t uid2_atomic_load_u64(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}
static inline uint64_t uid2_atomic_fetch_add_u64(uint64_t *p, uint64_t n)
{
    return __atomic_fetch_add(p, n, __ATOMIC_RELAXED);
}
static inline void uid2_atomic_bump_u64(uint64_t *p)
{
    __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + 1u, __ATOMIC_RELAXED);
}
static inline void uid2_atomic_store_release_u64(uint64_t *p, uint64_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}
static inline uint64_t uid2_atomic_load_acquire_u64(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
#elif defined(UID2_MSVC)
static inline int uid2_atomic_load_int(const int *p)
{
    return (int)InterlockedCompareExchange((volatile LONG *)p, 0, 0);
}
static inline void uid2_atomic_store_int(int *p, int v)
{
    InterlockedExchange((volatile LONG *)p, (LONG)v);
}
static inline int uid2_atomic_xchg_int(int *p, int v)
{
    return (int)InterlockedExchange((volatile LONG *)p, (LONG)v);
}
static inline int uid2_atomic_add_fetch_int(int *p, int v)
{
    return (int)InterlockedExchangeAdd((volatile LONG *)p, (LONG)v) + v;
}
static inline unsigned uid2_atomic_load_uint(const unsigned *p)
{
    return (unsigned)InterlockedCompareExchange((volatile LONG *)p, 0, 0);
}
static inline void uid2_atomic_inc_uint(unsigned *p)
{
    InterlockedIncrement((volatile LONG *)p);
}
static inline void *uid2_atomic_xchg_ptr(void **p, void *v)
{
    return InterlockedExchangePointer((PVOID volatile *)p, v);
}
/* 64-bit interlocked operations: every Windows target the package builds for (x64, ARM64) has them. */
static inline void uid2_atomic_add_u64(uint64_t *p, uint64_t n)
{
    InterlockedExchangeAdd64((volatile LONG64 *)p, (LONG64)n);
}
static inline uint64_t uid2_atomic_load_u64(const uint64_t *p)
{
    return (uint64_t)InterlockedCompareExchange64((volatile LONG64 *)p, 0, 0);
}
static inline uint64_t uid2_atomic_fetch_add_u64(uint64_t *p, uint64_t n)
{
    return (uint64_t)InterlockedExchangeAdd64((volatile LONG64 *)p, (LONG64)n);
}
static inline void uid2_atomic_bump_u64(uint64_t *p)
{
#if defined(_WIN64)
    /* an aligned 64-bit volatile access is one load or store on x64 and ARM64 */
    *(volatile uint64_t *)p = *(volatile uint64_t *)p + 1u;
#else
    InterlockedExchangeAdd64((volatile LONG64 *)p, 1);
#endif
}
/* (the Interlocked functions are full barriers: stronger than release and acquire) */
static inline void uid2_atomic_store_release_u64(uint64_t *p, uint64_t v)
{
    InterlockedExchange64((volatile LONG64 *)p, (LONG64)v);
}
static inline uint64_t uid2_atomic_load_acquire_u64(const uint64_t *p)
{
    return (uint64_t)InterlockedCompareExchange64((volatile LONG64 *)p, 0, 0);
}
#else
#error "uid2_port.h: no atomics for this compiler"
#endif

/* One step of a spin-wait: tells the CPU the loop is waiting (frees the core's resources for a sibling
 * hyperthread, saves power); a plain compiler barrier where there is no such instruction. */
static inline void uid2_spin_pause(void)
{
#if defined(UID2_GNUC) && defined(UID2_X86)
    __builtin_ia32_pause();
#elif defined(UID2_GNUC) && defined(UID2_AARCH64)
    __asm__ __volatile__("yield" ::: "memory");
#elif defined(UID2_MSVC)
    YieldProcessor();
#elif defined(UID2_GNUC)
    __asm__ __volatile__("" ::: "memory");
#endif
}

/* ---- byte swap, count leading zeros -------------------------------------------------------------------- */

#if defined(UID2_GNUC)
static inline uint32_t uid2_bswap32(uint32_t v)
{
    return __builtin_bswap32(v);
}
static inline uint64_t uid2_bswap64(uint64_t v)
{
    return __builtin_bswap64(v);
}
/* v != 0 */
static inline int uid2_clz64(uint64_t v)
{
    return __builtin_clzll(v);
}
#elif defined(UID2_MSVC)
#include <stdlib.h>
static inline uint32_t uid2_bswap32(uint32_t v)
{
    return _byteswap_ulong(v);
}
static inline uint64_t uid2_bswap64(uint64_t v)
{
    return _byteswap_uint64(v);
}
static inline int uid2_clz64(uint64_t v)
{
    unsigned long i;
#if defined(_M_X64) || defined(_M_ARM64)
    _BitScanReverse64(&i, v);
    return 63 - (int)i;
#else
    if (v >> 32) {
        _BitScanReverse(&i, (unsigned long)(v >> 32));
        return 31 - (int)i;
    }
    _BitScanReverse(&i, (unsigned long)v);
    return 63 - (int)i;
#endif
}
#endif

/* ---- overflow-checked int64 arithmetic: 1 on overflow (then *r is unspecified) --------------------------- */

#if defined(UID2_GNUC)
static inline int uid2_add_overflow_i64(int64_t a, int64_t b, int64_t *r)
{
    return __builtin_add_overflow(a, b, r);
}
static inline int uid2_sub_overflow_i64(int64_t a, int64_t b, int64_t *r)
{
    return __builtin_sub_overflow(a, b, r);
}
static inline int uid2_mul_overflow_i64(int64_t a, int64_t b, int64_t *r)
{
    return __builtin_mul_overflow(a, b, r);
}
#else
static inline int uid2_add_overflow_i64(int64_t a, int64_t b, int64_t *r)
{
    if ((b > 0 && a > INT64_MAX - b) || (b < 0 && a < INT64_MIN - b))
        return 1;
    *r = a + b;
    return 0;
}
static inline int uid2_sub_overflow_i64(int64_t a, int64_t b, int64_t *r)
{
    if ((b < 0 && a > INT64_MAX + b) || (b > 0 && a < INT64_MIN + b))
        return 1;
    *r = a - b;
    return 0;
}
static inline int uid2_mul_overflow_i64(int64_t a, int64_t b, int64_t *r)
{
    if (a == 0 || b == 0) {
        *r = 0;
        return 0;
    }
    if ((a == -1 && b == INT64_MIN) || (b == -1 && a == INT64_MIN))
        return 1;
    if (a > 0 ? (b > 0 ? a > INT64_MAX / b : b < INT64_MIN / a) : (b > 0 ? a < INT64_MIN / b : a < INT64_MAX / b))
        return 1;
    *r = a * b;
    return 0;
}
#endif

/* ---- CPUID (x86) -------------------------------------------------------------------------------------- */

#if defined(UID2_X86)
#if defined(UID2_MSVC)
/* regs = eax, ebx, ecx, edx of leaf/subleaf; 0, or -1 when the leaf is beyond the CPU's maximum. */
static inline int uid2_cpuid(unsigned leaf, unsigned sub, unsigned regs[4])
{
    int r[4];
    __cpuid(r, (int)(leaf & 0x80000000u));
    if ((unsigned)r[0] < leaf) {
        regs[0] = regs[1] = regs[2] = regs[3] = 0;
        return -1;
    }
    __cpuidex(r, (int)leaf, (int)sub);
    for (int i = 0; i < 4; i++)
        regs[i] = (unsigned)r[i];
    return 0;
}
/* XCR0 (which register states the OS saves); call only when CPUID.1:ECX.OSXSAVE is set. */
static inline uint64_t uid2_xgetbv0(void)
{
    return (uint64_t)_xgetbv(0);
}
#else
#include <cpuid.h>
static inline int uid2_cpuid(unsigned leaf, unsigned sub, unsigned regs[4])
{
    if ((unsigned)__get_cpuid_max(leaf & 0x80000000u, NULL) < leaf) {
        regs[0] = regs[1] = regs[2] = regs[3] = 0;
        return -1;
    }
    __cpuid_count(leaf, sub, regs[0], regs[1], regs[2], regs[3]);
    return 0;
}
static inline uint64_t uid2_xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif
#endif

/* ---- wiping secrets -------------------------------------------------------------------------------------- */

static inline void uid2_secure_zero(void *p, size_t n)
{
    if (p == NULL || n == 0)
        return;
#if defined(UID2_GNUC)
    /* a (vectorised) memset the compiler cannot drop: p escapes to an asm statement that may read memory */
    memset(p, 0, n);
    __asm__ __volatile__("" : : "r"(p) : "memory");
#elif defined(_WIN32)
    SecureZeroMemory(p, n);
#else
    volatile uint8_t *v = (volatile uint8_t *)p;
    while (n--)
        *v++ = 0;
#endif
}

#endif
