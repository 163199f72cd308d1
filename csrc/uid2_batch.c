/* Batches: a thread fan-out (pthreads, or Win32 threads: uid2_port.h) over threads kept between batches (the
 * pool, below). The rows are cut into chunks
 * that the threads take in turn from one shared cursor (an atomic add), so a thread that starts late or
 * shares its core with something else takes fewer chunks instead of holding everyone up at the end; each
 * thread has its own worker (scratch memory and keyed contexts) and writes only the rows of its chunks. */
#include <stdlib.h>
#include <string.h>

#include "uid2_gcm_mb.h"
#include "uid2_internal.h"

/* Handing rows to another thread (waking it, a cold cache; starting it, the first time or when the pool is
 * held) costs about as much as decrypting several hundred tokens here (benchmarks/bench_scaling.py: 2,000
 * tokens on 2 threads were slower than on one before the pool), so each thread gets at least this many rows. */
#ifndef UID2_MIN_ROWS_PER_THREAD /* the fuzz build lowers it, so that its small batches run on two threads */
#define UID2_MIN_ROWS_PER_THREAD 2048u
#endif

/* Rows a thread takes from the cursor at a time: a few hundred microseconds of work, so the cursor's cache
 * line moves rarely, and small enough (16 chunks a thread) that the last chunks even the threads out. */
static size_t chunk_rows(size_t n, size_t nt)
{
    size_t c = n / (nt * 16);
    return c < 256 ? 256 : c > 4096 ? 4096 : c;
}

/* The next chunk [*lo, *hi) of rows 0..n from the shared cursor; 0 when every row has been taken. */
static int take_chunk(uint64_t *next, size_t n, size_t chunk, size_t *lo, size_t *hi)
{
    uint64_t at = uid2_atomic_fetch_add_u64(next, chunk);
    if (at >= n)
        return 0;
    *lo = (size_t)at;
    *hi = n - *lo < chunk ? n : *lo + chunk;
    return 1;
}

typedef struct {
    const uid2_table_t *t;
    const uid2_bytes_t *tokens;
    const uid2_bytes_t *domains;
    const uid2_bytes_t *single_domain;
    int64_t now_us;
    int client;
    const uid2_columns_t *cols;
    uint64_t *next; /* the shared cursor: the first row no thread has taken yet */
    size_t n, chunk;
    const uint64_t *ready; /* rows [0, *ready) are filled in (a run: uid2_decrypt_run_ready); NULL: all are */
    const int *stop;       /* set: take no more chunks (a run's uid2_decrypt_run_stop); NULL: never */
    int *done;             /* a run's chunk states (uid2_decrypt_run_done), stored as each chunk is done; or NULL */
    int caller;            /* the caller's job (jobs[0]): its chunks are reported as the caller's */
    uid2_worker_t *w;      /* made at the job's first chunk */
    ptrdiff_t overflow;    /* rows whose uid overflowed so far; -1: out of memory */
} decrypt_job_t;

/* Waits until the rows below hi are filled in; 0 if the run is stopped first. Filling runs far ahead of
 * decrypting (a pointer and a length per row against a whole token), so this waits only at a run's start:
 * a few hundred spins, then the CPU is given up between looks. */
static int wait_ready(const decrypt_job_t *j, size_t hi)
{
    unsigned spins = 0;
    while (uid2_atomic_load_acquire_u64(j->ready) < hi) {
        if (uid2_atomic_load_int(j->stop))
            return 0;
        if (++spins < 512)
            uid2_spin_pause();
        else
            uid2_thread_yield();
    }
    return 1;
}

static void put_row(const uid2_columns_t *c, size_t i, const uid2_result_t *r, ptrdiff_t *overflow)
{
    int st = r->status == UID2_STATUS_MALFORMED ? UID2_STATUS_INVALID_PAYLOAD : r->status;
    unsigned h = r->have;
    if (h & UID2_HAVE_DOMAIN_LATER)
        st |= UID2_STATUS_DOMAIN_LATER;
    c->status[i] = (uint8_t)st;
    char *u = c->uid + i * UID2_UID_WIDTH;
    c->uid_overflow[i] = 0;
    /* v3/v4 uids are base64 text (ASCII); a v2 uid is any UTF-8 */
    if ((h & UID2_HAVE_UID) && r->uid_len == UID2_UID_WIDTH &&
        (r->version != UID2_VERSION_V2 || uid2_all_ascii((const uint8_t *)r->uid, r->uid_len))) {
        memcpy(u, r->uid, UID2_UID_WIDTH);
    } else {
        memset(u, 0, UID2_UID_WIDTH);
        if (h & UID2_HAVE_UID) {
            c->uid_overflow[i] = 1;
            (*overflow)++;
        }
    }
    c->established_ms[i] = (h & UID2_HAVE_ESTABLISHED) ? (int64_t)r->established_ms : INT64_MIN;
    c->expiry_ms[i] = (h & UID2_HAVE_EXPIRY) ? (int64_t)r->expiry_ms : INT64_MIN;
    c->site_id[i] = (h & UID2_HAVE_SITE_ID) ? (int64_t)r->site_id : INT64_MIN;
    c->site_key_site_id[i] = (h & UID2_HAVE_SITE_KEY) ? r->site_key_site_id : INT64_MIN;
    c->identity_type[i] = (h & UID2_HAVE_IDENTITY_TYPE) ? (int8_t)r->identity_type : -1;
    c->version[i] = (h & UID2_HAVE_VERSION) ? (int16_t)r->version : -1;
    c->is_client_side_generated[i] = (h & UID2_HAVE_CSG) ? (int8_t)(r->is_client_side_generated != 0) : -1;
}

/* One row through the general path (uid2_decrypt_token) into the columns. -1 if memory ran out. */
static int general_row(const uid2_table_t *t, uid2_worker_t *w, const uid2_bytes_t *tok, const uint8_t *dptr,
                       size_t dlen, int64_t now_us, int client, const uid2_columns_t *c, size_t i,
                       ptrdiff_t *overflow)
{
    uid2_result_t r;
    r.uid = NULL;
    r.uid_len = 0;
    if (t == NULL) {
        r.status = UID2_STATUS_NOT_INITIALIZED;
        r.have = 0;
    } else if (tok->ptr == NULL) {
        /* pre-checks first, as the Python twin: NOT_INITIALIZED / KEYS_NOT_SYNCED win */
        uid2_decrypt_token(t, w, "", 0, 0, now_us, client, NULL, 0, NULL, &r);
    } else {
        char *ub = w != NULL ? uid2_worker_uid_buf(w, UID2_UID_BUF_LEN(tok->len)) : NULL;
        if (ub == NULL)
            return -1;
        /* a non-ASCII row is INVALID_PAYLOAD after the same pre-checks; the engine tests ASCII only when
         * the fast base64 decoder has not already proved it */
        uid2_decrypt_token(t, w, (const char *)tok->ptr, tok->len, UID2_TOKEN_ASCII_UNCHECKED, now_us, client, dptr,
                           dlen, ub, &r);
    }
    put_row(c, i, &r, overflow);
    return 0;
}

/* Every cache line of the first 256 bytes (a v4 token) of the token, counted from the line its first byte is
 * in: the rows are scattered over the heap. */
UID2_ALWAYS_INLINE void prefetch_token(const uid2_bytes_t *tok)
{
    if (tok->ptr != NULL) {
        uintptr_t nx = (uintptr_t)tok->ptr;
        uintptr_t end = nx + (tok->len < 256 ? tok->len : 256);
        for (uintptr_t p = nx & ~(uintptr_t)63; p < end; p += 64)
            UID2_PREFETCH((const void *)p);
    }
}

ptrdiff_t uid2_decrypt_rows(const uid2_table_t *t, uid2_worker_t *w, const uid2_bytes_t *tokens, size_t lo,
                            size_t hi, const uid2_bytes_t *domains, const uid2_bytes_t *single_domain,
                            int64_t now_us, int client, const uid2_columns_t *cols)
{
    /* locals, not loads through the job: the column stores (char / int8 pointers) may alias anything */
    const uid2_columns_t c = *cols;
    ptrdiff_t overflow = 0;
    /* scratch for uid2_decrypt_fast (one row) and uid2_decrypt_fast_group (UID2_FAST_GROUP rows), the
     * worker's (wiped with it). Both decline every row when the kernels are off (UID2FAST_NO_FASTPATH, another
     * CPU). */
    const size_t fast_cap = UID2_FAST_GROUP * UID2_FAST_ROW_SCRATCH;
    uint8_t *fast = NULL;
    if (w != NULL && (fast = uid2_worker_scratch(w, fast_cap)) == NULL)
        return -1;
    uid2_key_memo_t memo = {{0, 0}, {-1, -1}};
    if (fast != NULL && uid2_gcm_mb_impl() != UID2_GCM_MB_NONE) {
        /* groups of rows: the GCM payloads of a group are opened side by side (uid2_gcm_mb.c); the rows the
         * group declines take the general path afterwards, one by one */
        for (size_t i = lo; i < hi;) {
            size_t n = hi - i < UID2_FAST_GROUP ? hi - i : UID2_FAST_GROUP;
            for (size_t j = i + n; j < hi && j < i + n + UID2_FAST_GROUP; j++)
                prefetch_token(&tokens[j]); /* the next group's */
            uint32_t done = uid2_decrypt_fast_group(t, &memo, fast, fast_cap, tokens, i, n, domains, single_domain,
                                                    now_us, client, &c);
            for (size_t j = 0; j < n; j++) {
                if ((done >> j) & 1u)
                    continue;
                const uid2_bytes_t *dom = domains ? &domains[i + j] : single_domain;
                if (general_row(t, w, &tokens[i + j], dom ? dom->ptr : NULL, dom ? dom->len : 0, now_us, client, &c,
                                i + j, &overflow) != 0)
                    return -1;
                /* a long row may have grown (moved) the worker's scratch: the fast path's pointer again */
                fast = uid2_worker_scratch(w, fast_cap);
            }
            i += n;
        }
        return overflow;
    }
    for (size_t i = lo; i < hi; i++) {
        const uid2_bytes_t *tok = &tokens[i];
        if (i + 2 < hi)
            prefetch_token(&tokens[i + 2]); /* the token after next */
        const uid2_bytes_t *dom = domains ? &domains[i] : single_domain;
        const uint8_t *dptr = dom ? dom->ptr : NULL;
        size_t dlen = dom ? dom->len : 0;
        if (fast != NULL && tok->ptr != NULL &&
            uid2_decrypt_fast(t, &memo, fast, fast_cap, (const char *)tok->ptr, tok->len, now_us, client, dptr,
                              dlen, &c, i))
            continue; /* the common row, written */
        if (general_row(t, w, tok, dptr, dlen, now_us, client, &c, i, &overflow) != 0)
            return -1;
        if (w != NULL) /* a long row may have grown (moved) the worker's scratch: the fast path's pointer again */
            fast = uid2_worker_scratch(w, fast_cap);
    }
    return overflow;
}

/* One chunk of the job's rows on the calling thread: 1 with its bounds and how many of its rows overflowed,
 * 0 when no row is left to take (or the run is stopped), -1 if memory ran out. The job's worker is made at
 * its first chunk (a thread that finds every row taken never builds one). */
static int job_step(decrypt_job_t *j, size_t *lo, size_t *hi, ptrdiff_t *over)
{
    if (j->overflow < 0)
        return -1;
    if ((j->stop != NULL && uid2_atomic_load_int(j->stop)) || !take_chunk(j->next, j->n, j->chunk, lo, hi) ||
        (j->ready != NULL && !wait_ready(j, *hi)))
        return 0;
    if (j->t != NULL && j->w == NULL && (j->w = uid2_worker_new(j->t)) == NULL) {
        j->overflow = -1;
        return -1;
    }
    ptrdiff_t o = uid2_decrypt_rows(j->t, j->w, j->tokens, *lo, *hi, j->domains, j->single_domain, j->now_us,
                                    j->client, j->cols);
    if (o < 0) {
        j->overflow = -1;
        return -1;
    }
    j->overflow += o;
    *over = o;
    if (j->done != NULL) /* after every read of the chunk's rows */
        uid2_atomic_store_int(&j->done[*lo / j->chunk], j->caller ? 3 : o > 0 ? 2 : 1);
    return 1;
}

static void *decrypt_job(void *arg)
{
    decrypt_job_t *j = arg;
    size_t lo, hi;
    ptrdiff_t o;
    while (job_step(j, &lo, &hi, &o) > 0)
        ;
    uid2_worker_free(j->w);
    j->w = NULL;
    return NULL;
}

size_t uid2_batch_threads(size_t n, int threads)
{
    size_t nt = threads > 0 ? (size_t)threads : 1;
    size_t most = n / UID2_MIN_ROWS_PER_THREAD;
    if (nt > most)
        nt = most;
    if (nt < 1)
        nt = 1;
    if (nt > 1024)
        nt = 1024;
    return nt;
}

typedef void *(*job_fn)(void *);

/* ---- the pool: threads kept between batches ----------------------------------------------------------
 *
 * Starting a thread and joining it cost about 60 and 40 microseconds on a 2-vCPU VM (the new thread's vCPU
 * has to be woken, then the joiner's), a tenth of a 20,000-row batch on two threads. So the threads a batch
 * starts stay for the next batches. After each job a pool thread spins for UID2_POOL_SPIN_NS, then sleeps on
 * its condition variable: a batch that follows within the spin finds its threads running, a later one wakes
 * them (cheaper than starting them), and a pool thread no batch needs costs nothing.
 *
 * One batch holds the pool at a time (`pool_busy`); a batch that finds it held, or needs more than
 * UID2_POOL_MAX threads, starts and joins its own threads as before. The dispatcher gives pool thread k
 * (1 ..) job k: it stores the job in the thread's slot, then bumps the slot's ticket. The thread runs the job
 * and counts `pending` down; the dispatcher runs job 0 and waits for `pending` to reach 0 before the pool is
 * free again, so a slot is never rewritten while its thread still reads it. Sleeping on either side is
 * announced first (`sleeping`, `waiting`: sequentially consistent) and checked by the other side after its
 * own store, so a wake-up is never lost and costs no system call when nobody sleeps. A forked child has none
 * of its parent's threads: a fork handler forgets the pool there (the child builds its own). */
#ifndef UID2_POOL_MAX
#define UID2_POOL_MAX 64u
#endif
#ifndef UID2_POOL_SPIN_NS
#define UID2_POOL_SPIN_NS 200000u
#endif

typedef struct pool pool_t;

typedef struct {
    unsigned ticket; /* bumped for each job given to the thread */
    int sleeping;    /* the thread is in (or entering) its wait on cv */
    job_fn fn;
    void *job;
    pool_t *p;
    uid2_cond_t cv;
    char pad[64]; /* each thread spins on its own cache line */
} pool_slot_t;

struct pool {
    uid2_mutex_t mu;
    uid2_cond_t done; /* the dispatcher waits here for the last job */
    int waiting;      /* the dispatcher is in (or entering) its wait on done */
    int pending;      /* jobs given to pool threads and not yet finished */
    size_t nthreads;  /* threads started: slots[1 .. nthreads] */
    pool_slot_t slots[UID2_POOL_MAX + 1];
};

static pool_t *the_pool;  /* made at the first pooled batch */
static int pool_busy;     /* a batch holds the pool */
static int pool_forks_ok; /* the fork handler is installed (always on Windows) */
static uid2_once_t pool_once = UID2_ONCE_INIT;

#if defined(_WIN32)
static void pool_watch_forks(void)
{
    pool_forks_ok = 1;
}
#else
static void pool_forget(void)
{
    /* the child of a fork: its only thread is the one that forked; the old pool is left as it is (its mutex
     * may have been held at the fork) */
    the_pool = NULL;
    pool_busy = 0;
}

static void pool_watch_forks(void)
{
    pool_forks_ok = pthread_atfork(NULL, NULL, pool_forget) == 0;
}
#endif

/* One step of a bounded spin-wait: 0 once it has spun for UID2_POOL_SPIN_NS (the clock is read every 64th
 * step; *t0 starts at 0). */
static int pool_spin_step(unsigned *i, uint64_t *t0)
{
    uid2_spin_pause();
    if ((++*i & 63u) != 0)
        return 1;
    uint64_t now = uid2_monotonic_ns();
    if (*t0 == 0)
        *t0 = now;
    return now - *t0 <= UID2_POOL_SPIN_NS;
}

static void *pool_thread(void *arg)
{
    pool_slot_t *s = arg;
    pool_t *p = s->p;
    unsigned seen = 0; /* the slot's ticket is 0 when the thread starts */
    int spin = 0;      /* only after a job: a thread no batch has needed just sleeps */
    for (;;) {
        unsigned i = 0;
        uint64_t t0 = 0;
        while (spin && uid2_atomic_load_uint(&s->ticket) == seen && pool_spin_step(&i, &t0))
            ;
        if (uid2_atomic_load_uint(&s->ticket) == seen) {
            uid2_mutex_lock(&p->mu);
            uid2_atomic_store_int(&s->sleeping, 1);
            while (uid2_atomic_load_uint(&s->ticket) == seen)
                uid2_cond_wait(&s->cv, &p->mu);
            uid2_atomic_store_int(&s->sleeping, 0);
            uid2_mutex_unlock(&p->mu);
        }
        seen = uid2_atomic_load_uint(&s->ticket);
        s->fn(s->job);
        spin = 1;
        if (uid2_atomic_add_fetch_int(&p->pending, -1) == 0 && uid2_atomic_load_int(&p->waiting)) {
            uid2_mutex_lock(&p->mu);
            uid2_cond_signal(&p->done);
            uid2_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

/* The pool, held by the caller, with as many of nt - 1 threads as could be started; NULL when another batch
 * holds it, nt - 1 > UID2_POOL_MAX, or it cannot be made. */
static pool_t *pool_take(size_t nt)
{
    uid2_once(&pool_once, pool_watch_forks);
    if (!pool_forks_ok || nt - 1 > UID2_POOL_MAX || uid2_atomic_xchg_int(&pool_busy, 1) != 0)
        return NULL;
    pool_t *p = the_pool;
    if (p == NULL) {
        p = calloc(1, sizeof *p);
        if (p == NULL) {
            uid2_atomic_store_int(&pool_busy, 0);
            return NULL;
        }
        uid2_mutex_init(&p->mu);
        uid2_cond_init(&p->done);
        the_pool = p;
    }
    while (p->nthreads + 1 < nt) {
        pool_slot_t *s = &p->slots[p->nthreads + 1];
        uid2_thread_t tid;
        s->p = p;
        uid2_cond_init(&s->cv);
        if (uid2_thread_create(&tid, pool_thread, s) != 0)
            break;
        uid2_thread_detach(tid);
        p->nthreads++;
    }
    return p;
}

/* Gives jobs 1 .. n - 1 to the pool's threads 1 .. n - 1 (n - 1 <= nthreads). */
static void pool_give(pool_t *p, char *base, size_t size, size_t n, job_fn fn)
{
    uid2_atomic_store_int(&p->pending, (int)(n - 1));
    for (size_t k = 1; k < n; k++) {
        pool_slot_t *s = &p->slots[k];
        s->fn = fn;
        s->job = base + k * size;
        uid2_atomic_inc_uint(&s->ticket); /* publishes the job */
        if (uid2_atomic_load_int(&s->sleeping)) {
            uid2_mutex_lock(&p->mu);
            uid2_cond_signal(&s->cv);
            uid2_mutex_unlock(&p->mu);
        }
    }
}

/* Waits until the jobs given to the pool are done, then frees it for the next batch. */
static void pool_release(pool_t *p)
{
    unsigned i = 0;
    uint64_t t0 = 0;
    while (uid2_atomic_load_int(&p->pending) != 0 && pool_spin_step(&i, &t0))
        ;
    if (uid2_atomic_load_int(&p->pending) != 0) {
        uid2_mutex_lock(&p->mu);
        uid2_atomic_store_int(&p->waiting, 1);
        while (uid2_atomic_load_int(&p->pending) != 0)
            uid2_cond_wait(&p->done, &p->mu);
        uid2_atomic_store_int(&p->waiting, 0);
        uid2_mutex_unlock(&p->mu);
    }
    uid2_atomic_store_int(&pool_busy, 0);
}

/* jobs[0..nt) (each `size` bytes) on nt threads: the pool's, or nt - 1 new ones, started by fan_start, and the
 * caller's, which runs jobs[0] in fan_finish and then waits for the others. A job no thread took (a thread
 * that could not be started, or memory for the handles) is run by the caller in fan_finish, after its own. */
typedef struct {
    pool_t *pool;
    size_t pooled; /* jobs 1 .. pooled - 1 run on the pool */
    uid2_thread_t *tids;
    unsigned char *started;
    char *base;
    size_t size, nt;
    job_fn fn;
} fan_t;

static void fan_start(fan_t *f, void *jobs, size_t size, size_t nt, job_fn fn)
{
    f->base = jobs;
    f->size = size;
    f->nt = nt;
    f->fn = fn;
    f->tids = NULL;
    f->started = NULL;
    f->pooled = 1;
    f->pool = nt > 1 ? pool_take(nt) : NULL;
    if (f->pool != NULL) {
        f->pooled = f->pool->nthreads + 1 < nt ? f->pool->nthreads + 1 : nt;
        pool_give(f->pool, f->base, size, f->pooled, fn);
        return;
    }
    f->tids = calloc(nt, sizeof *f->tids);
    f->started = calloc(nt, 1);
    if (f->tids == NULL || f->started == NULL)
        return;
    for (size_t k = 1; k < nt; k++)
        f->started[k] = uid2_thread_create(&f->tids[k], fn, f->base + k * size) == 0;
}

static void fan_finish(fan_t *f)
{
    f->fn(f->base);
    if (f->pool != NULL) {
        for (size_t k = f->pooled; k < f->nt; k++)
            f->fn(f->base + k * f->size);
        pool_release(f->pool);
        return;
    }
    for (size_t k = 1; k < f->nt; k++) {
        if (f->started != NULL && f->started[k])
            uid2_thread_join(f->tids[k]);
        else
            f->fn(f->base + k * f->size);
    }
    free(f->tids);
    free(f->started);
}

static void fan_out(void *jobs, size_t size, size_t nt, job_fn fn)
{
    fan_t f;
    fan_start(&f, jobs, size, nt, fn);
    fan_finish(&f);
}

/* A decrypt batch whose rows are filled in while its threads already decrypt (uid2_engine.h). */
struct uid2_decrypt_run {
    fan_t fan;
    decrypt_job_t *jobs;
    uint64_t next;  /* the threads' shared cursor */
    uint64_t ready; /* rows [0, ready) are filled in */
    int stop;
    size_t n, chunk, nchunks;
    int *done; /* per chunk: 0, or the state uid2_decrypt_run_done reports */
};

static uid2_decrypt_run_t *run_start(const uid2_table_t *t, const uid2_bytes_t *tokens, size_t n,
                                     const uid2_bytes_t *domains, const uid2_bytes_t *single_domain, int64_t now_us,
                                     int client, const uid2_columns_t *cols, int threads, size_t ready)
{
    size_t nt = uid2_batch_threads(n, threads);
    uid2_decrypt_run_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->jobs = calloc(nt, sizeof *r->jobs);
    if (r->jobs == NULL) {
        free(r);
        return NULL;
    }
    r->n = n;
    r->ready = ready;
    size_t chunk = nt == 1 ? (n ? n : 1) : chunk_rows(n, nt);
    r->chunk = chunk;
    r->nchunks = (n + chunk - 1) / chunk;
    r->done = calloc(r->nchunks ? r->nchunks : 1, sizeof *r->done);
    if (r->done == NULL) {
        free(r->jobs);
        free(r);
        return NULL;
    }
    for (size_t k = 0; k < nt; k++) {
        decrypt_job_t *j = &r->jobs[k];
        j->t = t;
        j->tokens = tokens;
        j->domains = domains;
        j->single_domain = single_domain;
        j->now_us = now_us;
        j->client = client;
        j->cols = cols;
        j->next = &r->next;
        j->n = n;
        j->chunk = chunk;
        j->ready = &r->ready;
        j->stop = &r->stop;
        j->done = r->done;
        j->caller = k == 0;
    }
    fan_start(&r->fan, r->jobs, sizeof *r->jobs, nt, decrypt_job);
    return r;
}

uid2_decrypt_run_t *uid2_decrypt_run_start(const uid2_table_t *t, const uid2_bytes_t *tokens, size_t n,
                                           const uid2_bytes_t *domains, const uid2_bytes_t *single_domain,
                                           int64_t now_us, int client, const uid2_columns_t *cols, int threads)
{
    return run_start(t, tokens, n, domains, single_domain, now_us, client, cols, threads, 0);
}

void uid2_decrypt_run_ready(uid2_decrypt_run_t *r, size_t rows)
{
    uid2_atomic_store_release_u64(&r->ready, rows < r->n ? rows : r->n);
}

int uid2_decrypt_run_take(uid2_decrypt_run_t *r, size_t *lo, size_t *hi, ptrdiff_t *overflow)
{
    return job_step(&r->jobs[0], lo, hi, overflow);
}

int uid2_decrypt_run_done(const uid2_decrypt_run_t *r, size_t index, size_t *lo, size_t *hi)
{
    if (index >= r->nchunks)
        return -1;
    int st = uid2_atomic_load_int(&r->done[index]);
    if (st != 0) {
        *lo = index * r->chunk;
        *hi = r->n - *lo < r->chunk ? r->n : *lo + r->chunk;
    }
    return st;
}

void uid2_decrypt_run_stop(uid2_decrypt_run_t *r)
{
    uid2_atomic_store_int(&r->stop, 1);
}

ptrdiff_t uid2_decrypt_run_finish(uid2_decrypt_run_t *r)
{
    if (uid2_atomic_load_acquire_u64(&r->ready) < r->n)
        uid2_decrypt_run_stop(r); /* rows left unfilled would be waited for forever */
    fan_finish(&r->fan);
    ptrdiff_t total = 0;
    for (size_t k = 0; k < r->fan.nt; k++) {
        if (r->jobs[k].overflow < 0) {
            total = -1;
            break;
        }
        total += r->jobs[k].overflow;
    }
    if (total >= 0 && uid2_atomic_load_int(&r->stop))
        total = UID2_RUN_STOPPED;
    free(r->done);
    free(r->jobs);
    free(r);
    return total;
}

ptrdiff_t uid2_decrypt_many(const uid2_table_t *t, const uid2_bytes_t *tokens, size_t n,
                            const uid2_bytes_t *domains, const uid2_bytes_t *single_domain, int64_t now_us,
                            int client, const uid2_columns_t *cols, int threads)
{
    if (n == 0)
        return 0;
    uid2_decrypt_run_t *r = run_start(t, tokens, n, domains, single_domain, now_us, client, cols, threads, n);
    return r == NULL ? -1 : uid2_decrypt_run_finish(r);
}

typedef struct {
    const uid2_table_t *t;
    const uid2_bytes_t *uids;
    int64_t now_us;
    const uid2_encrypt_args_t *a;
    uint8_t *status;
    char *const *outs;
    size_t *lens;
    uint64_t *next; /* the shared cursor, as for decrypt_job_t */
    size_t n, chunk;
    int oom;
} encrypt_job_t;

static void *encrypt_job(void *arg)
{
    encrypt_job_t *j = arg;
    uid2_worker_t *w = NULL;
    if (j->t != NULL && (w = uid2_worker_new(j->t)) == NULL) {
        j->oom = 1;
        return NULL;
    }
    size_t lo, hi;
    while (take_chunk(j->next, j->n, j->chunk, &lo, &hi)) {
        for (size_t i = lo; i < hi; i++) {
            const uid2_bytes_t *u = &j->uids[i];
            unsigned flags = (u->ptr == NULL || !uid2_all_ascii(u->ptr, u->len)) ? UID2_TOKEN_UNDECODABLE : 0;
            const char *p = u->ptr ? (const char *)u->ptr : "";
            size_t len = u->ptr ? u->len : 0;
            j->status[i] = (uint8_t)uid2_encrypt_token(j->t, w, p, len, flags, j->now_us, j->a, j->outs[i],
                                                       &j->lens[i]);
        }
    }
    uid2_worker_free(w);
    return NULL;
}

int uid2_encrypt_many(const uid2_table_t *t, const uid2_bytes_t *uids, size_t n, int64_t now_us,
                      const uid2_encrypt_args_t *a, uint8_t *status, char *const *outs, size_t *out_lens,
                      int threads)
{
    if (n == 0)
        return 0;
    size_t nt = uid2_batch_threads(n, threads);
    encrypt_job_t *jobs = calloc(nt, sizeof *jobs);
    if (jobs == NULL)
        return -1;
    uint64_t next = 0;
    size_t chunk = nt == 1 ? n : chunk_rows(n, nt);
    for (size_t k = 0; k < nt; k++) {
        encrypt_job_t *j = &jobs[k];
        j->t = t;
        j->uids = uids;
        j->now_us = now_us;
        j->a = a;
        j->status = status;
        j->outs = outs;
        j->lens = out_lens;
        j->next = &next;
        j->n = n;
        j->chunk = chunk;
    }
    fan_out(jobs, sizeof *jobs, nt, encrypt_job);
    int rc = 0;
    for (size_t k = 0; k < nt; k++)
        rc |= jobs[k].oom ? -1 : 0;
    free(jobs);
    return rc;
}
