/* uid2fast C engine: the public C API (no Python.h).
 *
 * (pointer, length) in, integer status out. Key tables are immutable snapshots that many threads may use
 * at once. Times are integer microseconds since the Unix epoch; token timestamps are milliseconds.
 * The semantics are those of src/uid2fast/_engine_py.py (the reference), which mirrors uid2-client 2.9.0
 * with the fixes listed in docs/differences.md.
 *
 * The status lists below are parsed by tests/test_engine_c_internal.py and compared with the Python
 * table: keep one `UID2_..._NAME = value,` per line. */
#ifndef UID2_ENGINE_H
#define UID2_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Decryption status codes (DecryptionStatus). */
enum uid2_status {
    UID2_STATUS_SUCCESS = 0,
    UID2_STATUS_NOT_AUTHORIZED_FOR_MASTER_KEY = 1,
    UID2_STATUS_NOT_AUTHORIZED_FOR_KEY = 2,
    UID2_STATUS_NOT_INITIALIZED = 3,
    UID2_STATUS_INVALID_PAYLOAD = 4,
    UID2_STATUS_EXPIRED_TOKEN = 5,
    UID2_STATUS_KEYS_NOT_SYNCED = 6,
    UID2_STATUS_VERSION_NOT_SUPPORTED = 7,
    UID2_STATUS_INVALID_PAYLOAD_TYPE = 8,
    UID2_STATUS_INVALID_IDENTITY_SCOPE = 9,
    UID2_STATUS_USER_OPTED_OUT = 10,
    UID2_STATUS_DOMAIN_NAME_CHECK_FAILED = 11,
    UID2_STATUS_INVALID_TOKEN_LIFETIME = 12,
    UID2_STATUS_MALFORMED = 13, /* where the official SDK raised; batches store INVALID_PAYLOAD */
};

/* Encryption status codes (EncryptionStatus). */
enum uid2_enc_status {
    UID2_ENC_SUCCESS = 0,
    UID2_ENC_NOT_AUTHORIZED_FOR_MASTER_KEY = 1,
    UID2_ENC_NOT_AUTHORIZED_FOR_KEY = 2,
    UID2_ENC_NOT_INITIALIZED = 3,
    UID2_ENC_KEYS_NOT_SYNCED = 4,
    UID2_ENC_ENCRYPTION_FAILURE = 5,
};

/* Client types: which lifetime limit applies, and whether the bidstream checks run. */
enum uid2_client {
    UID2_CLIENT_SHARING = 1,
    UID2_CLIENT_BIDSTREAM = 2,
    UID2_CLIENT_LEGACY = 3,
};

#define UID2_PRIVACY_CLIENT_SIDE_GENERATED 0x2u
#define UID2_PRIVACY_OPTED_OUT 0x4u
#define UID2_VERSION_V2 2
#define UID2_VERSION_V3 112
#define UID2_VERSION_V4 128
#define UID2_UID_WIDTH 44 /* batch uid column width: base64 of a 31..33-byte raw UID */
#define UID2_MAX_US INT64_C(253402300799999999) /* datetime.max as UTC microseconds */

typedef struct {
    const uint8_t *ptr; /* NULL: None / not a usable value */
    size_t len;
} uid2_bytes_t;

/* ---- key table ------------------------------------------------------------------------------------ */

typedef struct {
    uint32_t id;            /* meaningful only if id_is_u32 */
    int id_is_u32;          /* 0: the id can never match a token and cannot be written into one */
    int64_t site_id;        /* the key's site id (-1 for key/sharing and key/bidstream keys) */
    int32_t keyset_group;   /* index of the key's keyset (assigned by the caller), -1 for none */
    int64_t activates_us;
    int64_t expires_us;
    const uint8_t *secret;  /* copied */
    size_t secret_len;
} uid2_key_spec_t;

typedef struct {
    uint32_t site_id;
    size_t first_name; /* index into the names array */
    size_t n_names;
} uid2_site_spec_t;

enum uid2_opt { UID2_OPT_NONE = 0, UID2_OPT_OK = 1, UID2_OPT_INVALID = 2 };

typedef struct {
    int64_t identity_scope;
    int caller_site_state;   /* uid2_opt: INVALID = not representable in 32 unsigned bits */
    uint32_t caller_site_id;
    int32_t master_group;    /* keyset group of master_keyset_id, -1 if none */
    int32_t default_group;   /* keyset group of default_keyset_id, -1 if none */
    int64_t token_expiry_seconds;          /* saturated to int64 */
    int64_t max_sharing_lifetime_seconds;  /* saturated to int64 */
    int64_t max_bidstream_lifetime_seconds;
    int64_t allow_clock_skew_seconds;
    int has_latest_expires;
    int64_t latest_expires_us;             /* saturated to int64 */
    int no_fastpath;         /* 1: the exact base64 codecs and the general token path for this table (no
                              * SIMD base64, no one-pass batch rows); AES stays on the hardware kernel.
                              * Tests compare the two. */
} uid2_table_params_t;

typedef struct uid2_table uid2_table_t;

/* Keys in input order. Lookup by id finds the last key with that id (dict semantics); keyset groups keep
 * every key, repeated ids included, sorted by activates (stable). keyset_group values must be < n_groups. Names are UTF-8, compared after ASCII-lowering the domain.
 * Everything is copied. NULL on allocation failure or invalid arguments. */
uid2_table_t *uid2_table_new(const uid2_key_spec_t *keys, size_t n_keys, size_t n_groups,
                             const uid2_site_spec_t *sites, size_t n_sites, const uid2_bytes_t *names,
                             size_t n_names, const uid2_table_params_t *params);
/* Frees the table, wiping every secret and keyed context. No call may be using it. */
void uid2_table_free(uid2_table_t *t);
size_t uid2_table_size(const uid2_table_t *t);
/* Which optional fast paths the table uses: UID2_FAST_B64 if token and uid text go through the SIMD base64
 * codecs first (uid2_b64fast.h), UID2_FAST_ONEPASS if batch rows try uid2_decrypt_fast first. 0 with
 * UID2FAST_NO_FASTPATH=1 or params.no_fastpath. AES always runs on the hardware kernel (uid2_kernels.h). */
enum uid2_fast { UID2_FAST_ONEPASS = 1, UID2_FAST_B64 = 2 };
unsigned uid2_table_fastpath(const uid2_table_t *t);
/* Index of the key with this id, or -1. */
ptrdiff_t uid2_table_find(const uid2_table_t *t, uint32_t key_id);
/* Index of the latest-activated key of the group active at now_us (activates <= now < expires), or -1. */
ptrdiff_t uid2_table_active_key(const uid2_table_t *t, int32_t group, int64_t now_us);

/* ---- per-thread state ----------------------------------------------------------------------------- */

/* Scratch memory and keyed-context cache for one thread. A worker may be used with one table only.
 * Calls without a worker (NULL) use a stack buffer and the table's lock-free context pool instead. */
typedef struct uid2_worker uid2_worker_t;
uid2_worker_t *uid2_worker_new(const uid2_table_t *t);
void uid2_worker_free(uid2_worker_t *w);

/* ---- decrypt -------------------------------------------------------------------------------------- */

enum uid2_have {
    UID2_HAVE_UID = 1u << 0,
    UID2_HAVE_ESTABLISHED = 1u << 1,
    UID2_HAVE_SITE_ID = 1u << 2,
    UID2_HAVE_SITE_KEY = 1u << 3, /* site_key_index / site_key_site_id */
    UID2_HAVE_IDENTITY_TYPE = 1u << 4,
    UID2_HAVE_VERSION = 1u << 5,
    UID2_HAVE_CSG = 1u << 6,
    UID2_HAVE_EXPIRY = 1u << 7,
    UID2_HAVE_DOMAIN_LATER = 1u << 8, /* the domain check is the caller's: uid2_domain_later */
};

typedef struct {
    int status;                 /* uid2_status */
    unsigned have;              /* uid2_have: which fields below are populated (the rest are None) */
    const char *uid;            /* UTF-8 (v2) or base64 (v3/v4) text, not NUL-terminated; lives in the */
    size_t uid_len;             /* caller's buffer (see uid2_decrypt_token) */
    uint64_t established_ms;
    uint32_t site_id;
    size_t site_key_index;      /* index of the site key in the table */
    int64_t site_key_site_id;
    int identity_type;          /* 0 email, 1 phone */
    int version;                /* 2, 112, 128 */
    int is_client_side_generated;
    uint64_t expiry_ms;
} uid2_result_t;

/* Token flags. */
#define UID2_TOKEN_BYTES 1u       /* a bytes token: the header is never read as base64url, v4 fails */
#define UID2_TOKEN_UNDECODABLE 2u /* a non-ASCII str: `len` is its length in characters and `token` holds
                                     its first 4 characters (ASCII); the full decode always fails */
#define UID2_TOKEN_ASCII_UNCHECKED 4u /* batch rows: bytes that may not be ASCII; a token that is not gets
                                         INVALID_PAYLOAD after the table checks (as an empty one would) */

/* Bytes of uid_buf that are always enough for a token of `len` characters. */
#define UID2_UID_BUF_LEN(len) ((size_t)(len) / 3u * 4u + 16u)

/* Decrypt one token. domain: NULL for None (or any non-str). uid_buf (at least UID2_UID_BUF_LEN(len)
 * bytes, or NULL when no uid is wanted — then r->uid is NULL and UID2_HAVE_UID still says whether the
 * result has one) receives the uid text. Returns r->status. Never reads outside the inputs. */
int uid2_decrypt_token(const uid2_table_t *t, uid2_worker_t *w, const char *token, size_t len,
                       unsigned flags, int64_t now_us, int client, const uint8_t *domain, size_t domain_len,
                       char *uid_buf, uid2_result_t *r);

/* The domain name of a batch whose domain names are read after it (a list of str: the caller reads only the
 * rows that need one, with the GIL held; docs/design.md#threads): pass it as every row's domain
 * (single_domain.ptr, length 0). A row that needs the domain check is then answered as if the check had passed,
 * with UID2_HAVE_DOMAIN_LATER set, and its status byte in the batch columns carries UID2_STATUS_DOMAIN_LATER.
 * The caller settles each such row with uid2_domain_allowed: the status without that bit if the domain is
 * allowed, else DOMAIN_NAME_CHECK_FAILED and no uid (the check comes before the lifetime's, and a failed one keeps
 * every other field, so nothing else changes). */
extern const uint8_t uid2_domain_later[1];
#define UID2_STATUS_DOMAIN_LATER 0x80u

/* 1 if `domain` is one of the site's domain names (the domain check of a client-side generated token). */
int uid2_domain_allowed(const uid2_table_t *t, uint32_t site_id, const uint8_t *domain, size_t dlen);

/* Batch output columns (each of n rows; see _engine_py.decrypt_tokens). */
typedef struct {
    uint8_t *status;          /* MALFORMED stored as INVALID_PAYLOAD */
    char *uid;                /* n * UID2_UID_WIDTH bytes, zero-filled where no uid */
    int64_t *established_ms;  /* INT64_MIN = None */
    int64_t *expiry_ms;
    int64_t *site_id;
    int64_t *site_key_site_id;
    int8_t *identity_type;    /* -1 = None */
    int16_t *version;         /* -1 = None */
    int8_t *is_client_side_generated; /* -1 = None */
    uint8_t *uid_overflow;    /* 1 where the uid is not exactly 44 ASCII chars: the caller re-decrypts */
} uid2_columns_t;

/* Decrypt tokens[0..n) (ptr NULL, or a byte >= 0x80: INVALID_PAYLOAD) across `threads` threads (each
 * writes only the rows of the chunks it takes). domains: NULL, or n entries (ptr NULL = None); single_domain is
 * used for every row when domains is NULL (NULL = None). Needs no Python and holds no lock.
 * Returns the number of uid_overflow rows, or -1 if memory ran out (the columns are then incomplete). */
ptrdiff_t uid2_decrypt_many(const uid2_table_t *t, const uid2_bytes_t *tokens, size_t n,
                            const uid2_bytes_t *domains, const uid2_bytes_t *single_domain, int64_t now_us,
                            int client, const uid2_columns_t *cols, int threads);

/* The same batch with its rows filled in while it runs: the caller that must gather the rows itself (from
 * Python objects, holding the GIL) lets the threads decrypt the rows it has filled in so far.
 *   uid2_decrypt_run_start   takes the arguments of uid2_decrypt_many, with tokens[] and domains[] not yet
 *                            filled in, and starts the batch's other threads; NULL if memory ran out;
 *   uid2_decrypt_run_ready   publishes that rows [0, rows) of tokens[] and domains[] are filled in (a
 *                            count that only grows; what was written before the call is seen by the threads);
 *   uid2_decrypt_run_take    decrypts the next chunk of rows on the calling thread: 1 with the chunk's
 *                            bounds [*lo, *hi) and its uid_overflow rows, 0 when no row is left to take (or
 *                            the run was stopped), -1 if memory ran out; for a caller that has work of its own
 *                            to do on each chunk it decrypted (finish then only joins the others);
 *   uid2_decrypt_run_done    whether chunk `index` (0, 1, ... in row order) is decrypted: 0 not yet (or not
 *                            taken), 1 by another thread, 2 by another thread with uid_overflow rows, 3 by
 *                            the caller (through take), -1 no such chunk; its bounds in [*lo, *hi) when it is
 *                            done. Once a chunk is done no thread reads its rows again: the caller may drop
 *                            what kept them alive while the others still run;
 *   uid2_decrypt_run_stop    tells the threads to take no more rows (the caller gave up on filling them in);
 *   uid2_decrypt_run_finish  decrypts on the calling thread too until every row is done, joins the others and
 *                            frees the run: what uid2_decrypt_many returns, or UID2_RUN_STOPPED if the run
 *                            was stopped (some rows not decrypted; also when rows were never published).
 * No row is read before it is published, and no thread touches any row after finish returns. */
typedef struct uid2_decrypt_run uid2_decrypt_run_t;
#define UID2_RUN_STOPPED (-2)
uid2_decrypt_run_t *uid2_decrypt_run_start(const uid2_table_t *t, const uid2_bytes_t *tokens, size_t n,
                                           const uid2_bytes_t *domains, const uid2_bytes_t *single_domain,
                                           int64_t now_us, int client, const uid2_columns_t *cols, int threads);
void uid2_decrypt_run_ready(uid2_decrypt_run_t *r, size_t rows);
int uid2_decrypt_run_take(uid2_decrypt_run_t *r, size_t *lo, size_t *hi, ptrdiff_t *overflow);
int uid2_decrypt_run_done(const uid2_decrypt_run_t *r, size_t index, size_t *lo, size_t *hi);
void uid2_decrypt_run_stop(uid2_decrypt_run_t *r);
ptrdiff_t uid2_decrypt_run_finish(uid2_decrypt_run_t *r);

/* How many threads uid2_decrypt_many / uid2_encrypt_many use for n rows when asked for `threads`: each
 * thread gets at least 2,048 rows (starting one costs about a thousand tokens' work). */
size_t uid2_batch_threads(size_t n, int threads);

/* Rows [lo, hi) of such a batch on the calling thread with the caller's worker (w from uid2_worker_new(t),
 * or NULL when t is NULL): what each thread of uid2_decrypt_many runs. Same return value. */
ptrdiff_t uid2_decrypt_rows(const uid2_table_t *t, uid2_worker_t *w, const uid2_bytes_t *tokens, size_t lo,
                            size_t hi, const uid2_bytes_t *domains, const uid2_bytes_t *single_domain,
                            int64_t now_us, int client, const uid2_columns_t *cols);

/* ---- encrypt -------------------------------------------------------------------------------------- */

typedef struct {
    int has_keyset;          /* 0: the default keyset */
    int32_t keyset_group;    /* -1: a keyset the table does not have */
    int has_scope;           /* 0: the table's identity scope */
    int64_t scope;           /* saturated */
    int established_ok;      /* 0: established_ms is not in [0, 2**64) */
    uint64_t established_ms;
} uid2_encrypt_args_t;

/* Longest token text uid2_encrypt_token can write for a uid of uid_len characters. */
size_t uid2_token_max_len(size_t uid_len);

/* The status that every uid of a batch gets before its own content matters (SUCCESS if none). */
int uid2_encrypt_precheck(const uid2_table_t *t, int64_t now_us, const uid2_encrypt_args_t *a);

/* Encrypt one raw UID (its base64 text) into a v4 token. flags: UID2_TOKEN_BYTES (a bytes uid: identity
 * type is always email), or UID2_TOKEN_UNDECODABLE (fails with ENCRYPTION_FAILURE after the pre-checks).
 * out must hold uid2_token_max_len(uid_len) bytes; *out_len receives the length. Returns the status. */
int uid2_encrypt_token(const uid2_table_t *t, uid2_worker_t *w, const char *uid, size_t uid_len,
                       unsigned flags, int64_t now_us, const uid2_encrypt_args_t *a, char *out,
                       size_t *out_len);

/* Encrypt uids[0..n) (ptr NULL or non-ASCII: ENCRYPTION_FAILURE after the pre-checks). Row i's token goes
 * to outs[i] (room for uid2_token_max_len(uids[i].len); the Python layer points it into the str object that
 * will hold the token), its length to out_lens[i]. Returns 0, or -1 if memory ran out. */
int uid2_encrypt_many(const uid2_table_t *t, const uid2_bytes_t *uids, size_t n, int64_t now_us,
                      const uid2_encrypt_args_t *a, uint8_t *status, char *const *outs, size_t *out_lens,
                      int threads);

#ifdef __cplusplus
}
#endif
#endif
