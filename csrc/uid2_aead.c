/* The OS random source, the per-thread nonce pool and secret wiping (see uid2_aead.h). */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* syscall(), O_CLOEXEC under -std=c11 */
#endif
#include "uid2_aead.h"
#include "uid2_port.h"

#include <string.h>

#if defined(_WIN32)
#include <bcrypt.h>
#elif defined(__linux__)
#include <errno.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>
#else /* macOS, the BSDs */
#include <unistd.h>
#if defined(__APPLE__)
#include <sys/random.h>
#endif
#endif

int uid2_aead_key_len_ok(size_t key_len)
{
    return key_len == 16 || key_len == 24 || key_len == 32;
}

#if defined(__linux__)
/* /dev/urandom for kernels older than 3.17 (no getrandom): opened per call, read fully. */
static int urandom(uint8_t *buf, size_t n)
{
    int fd;
    do
        fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return -1;
    while (n > 0) {
        ssize_t r = read(fd, buf, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            close(fd);
            return -1;
        }
        buf += r;
        n -= (size_t)r;
    }
    close(fd);
    return 0;
}
#endif

int uid2_random_bytes(uint8_t *buf, size_t n)
{
#if defined(_WIN32)
    while (n > 0) {
        ULONG chunk = n > 0x40000000u ? 0x40000000u : (ULONG)n;
        if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, buf, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG)))
            return -1;
        buf += chunk;
        n -= chunk;
    }
    return 0;
#elif defined(__linux__)
    /* the system call directly: glibc has had a getrandom() wrapper only since 2.25, and the wheels are
     * built against 2.17. Blocks only until the kernel's pool is first initialised. */
    while (n > 0) {
        long r = syscall(SYS_getrandom, buf, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ENOSYS)
                return urandom(buf, n);
            return -1;
        }
        buf += r;
        n -= (size_t)r;
    }
    return 0;
#else
    while (n > 0) { /* getentropy gives at most 256 bytes per call */
        size_t chunk = n > 256 ? 256 : n;
        if (getentropy(buf, chunk) != 0)
            return -1;
        buf += chunk;
        n -= chunk;
    }
    return 0;
#endif
}

/* Nonces for calls without a batch worker come from a per-thread pool refilled NONCE_POOL bytes at a time
 * (a system call per token would cost more than the token). A forked child must never reuse its parent's
 * pool (a GCM nonce repeated under one key is fatal), so every fork bumps a generation (pthread_atfork,
 * child side) and a pool filled in an older generation is thrown away before use. If the fork handler
 * cannot be installed, every call goes to the OS. Windows has no fork. Bytes are wiped as taken. */
#define NONCE_POOL 1024u
static UID2_THREAD_LOCAL struct {
    uint8_t buf[NONCE_POOL];
    size_t pos;
    unsigned gen;
} nonce_pool = {{0}, NONCE_POOL, 0};
static unsigned fork_generation;
static int fork_watched;
static uid2_once_t fork_once = UID2_ONCE_INIT;

#if defined(_WIN32)
static void watch_forks(void)
{
    fork_watched = 1; /* no fork(): the generation never changes */
}
#else
static void bump_fork_generation(void)
{
    uid2_atomic_inc_uint(&fork_generation);
}

static void watch_forks(void)
{
    fork_watched = pthread_atfork(NULL, NULL, bump_fork_generation) == 0;
}
#endif

int uid2_nonce_bytes(uint8_t *out, size_t n)
{
    uid2_once(&fork_once, watch_forks);
    if (!fork_watched || n > NONCE_POOL)
        return uid2_random_bytes(out, n);
    unsigned gen = uid2_atomic_load_uint(&fork_generation);
    if (nonce_pool.gen != gen || NONCE_POOL - nonce_pool.pos < n) {
        nonce_pool.pos = NONCE_POOL; /* empty until the refill succeeds */
        if (uid2_random_bytes(nonce_pool.buf, NONCE_POOL) != 0)
            return -1;
        nonce_pool.pos = 0;
        nonce_pool.gen = gen;
    }
    memcpy(out, nonce_pool.buf + nonce_pool.pos, n);
    uid2_wipe(nonce_pool.buf + nonce_pool.pos, n); /* each nonce is used once */
    nonce_pool.pos += n;
    return 0;
}

void uid2_wipe(void *p, size_t n)
{
    uid2_secure_zero(p, n);
}
