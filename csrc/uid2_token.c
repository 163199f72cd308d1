/* Token layouts v2 / v3 / v4, the order of checks, lifetime, scope and domain checks, and v4 encryption.
 * Mirrors src/uid2fast/_engine_py.py; byte offsets are zero-based [start:end). */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "uid2_b64fast.h"
#include "uid2_base64.h"
#include "uid2_gcm_mb.h"
#include "uid2_internal.h"

/* ---- reads with Python slice semantics ------------------------------------------------------------ */

/* int.from_bytes(buf[start:end], 'big') with the slice clipped to the buffer (empty -> 0); end - start <= 8 */
static inline uint64_t be(const uint8_t *buf, size_t n, size_t start, size_t end)
{
    if (end <= n && end - start == 8) { /* the whole field is there (the usual case): one load */
        uint64_t v;
        memcpy(&v, buf + start, 8);
        return uid2_bswap64(v);
    }
    if (end <= n && end - start == 4) {
        uint32_t v;
        memcpy(&v, buf + start, 4);
        return uid2_bswap32(v);
    }
    if (end > n)
        end = n;
    uint64_t v = 0;
    for (size_t i = start; i < end; i++)
        v = (v << 8) | buf[i];
    return v;
}

/* buf[start:] clipped */
static inline size_t tail_len(size_t n, size_t start)
{
    return start < n ? n - start : 0;
}

/* ---- time -------------------------------------------------------------------------------------------- */

/* Microseconds of datetime.fromtimestamp(ms / 1000.0, tz=utc), replaying CPython's float path
 * (_PyTime_DoubleToDenominator with ROUND_HALF_EVEN); -1 where that raises (beyond datetime.max). */
static int ms_to_us_float(uint64_t ms, int64_t *us)
{
    double x = (double)ms / 1000.0; /* int / float: the int is rounded to double first */
    double ip;
    double fp = modf(x, &ip);
    fp = nearbyint(fp * 1e6); /* round half to even in the default rounding mode */
    if (fp >= 1e6) {
        fp -= 1e6;
        ip += 1.0;
    }
    if (!(ip <= 253402300799.0)) /* 9999-12-31T23:59:59: year 10000 raises; also catches NaN */
        return -1;
    *us = (int64_t)ip * 1000000 + (int64_t)fp;
    return 0;
}

static inline int ms_to_us(uint64_t ms, int64_t *us)
{
    if (ms < UINT64_C(4294967296000)) { /* below 2**32 s the float is within 0.5 us of exact */
        *us = (int64_t)ms * 1000;
        return 0;
    }
    return ms_to_us_float(ms, us);
}

/* a / 1_000_000 with Python int semantics: the correctly rounded double of the exact quotient. */
static double div_1e6(int64_t a)
{
    if (a >= -(INT64_C(1) << 53) && a <= (INT64_C(1) << 53))
        return (double)a / 1e6; /* exact operands: one IEEE rounding */
    int neg = a < 0;
    uint64_t m = neg ? (uint64_t)0 - (uint64_t)a : (uint64_t)a;
    /* q = floor(m * 2^64 / 10^6) as hi:lo by long division in 32-bit steps (each remainder < 10^6, so
     * remainder << 32 fits in 64 bits and each partial quotient in 32); sticky: the division was inexact */
    uint64_t hi = m / 1000000u, rem = m % 1000000u;
    uint64_t q1 = (rem << 32) / 1000000u;
    rem = (rem << 32) % 1000000u;
    uint64_t q0 = (rem << 32) / 1000000u;
    rem = (rem << 32) % 1000000u;
    uint64_t lo = (q1 << 32) | q0;
    int sticky = rem != 0;
    /* m > 2^53 makes q >= 2^97 (hi != 0) and m < 2^63 keeps q < 2^107: shift is in 43..53 */
    int nbits = 128 - uid2_clz64(hi);
    int shift = nbits - 54; /* keep 53 bits plus a rounding bit */
    sticky |= (lo & ((UINT64_C(1) << shift) - 1)) != 0;
    uint64_t m54 = (lo >> shift) | (hi << (64 - shift));
    uint64_t m53 = m54 >> 1;
    if ((m54 & 1) && (sticky || (m53 & 1)))
        m53++;
    double r = ldexp((double)m53, shift + 1 - 64);
    return neg ? -r : r;
}

/* float > int compared exactly, as Python does. */
static int dbl_gt_i64(double q, int64_t m)
{
    if (q >= 9223372036854775808.0)
        return 1;
    if (q < -9223372036854775808.0)
        return 0;
    double f = floor(q);
    int64_t fi = (int64_t)f;
    if (fi != m)
        return fi > m;
    return q > f;
}

static int64_t sat_sub(int64_t a, int64_t b)
{
    int64_t r;
    if (uid2_sub_overflow_i64(a, b, &r))
        return b < 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/* (a / 1_000_000) > m as Python computes it (a float quotient compared exactly with an int). */
static int quotient_gt(int64_t a, int64_t m)
{
    /* Without the division where the answer is certain: if m * 10^6 overflows, |m| >= 9223372036855 lies
     * beyond every quotient (|a| / 10^6 <= 9223372036854.78, and so is its rounding); otherwise |m| < 2^53 is
     * exact as a double, and a <= m * 10^6 puts the real quotient at or below m, where rounding to the
     * nearest double keeps it. (The default lifetime limit, sys.maxsize, takes the first way.) */
    int64_t lim;
    if (uid2_mul_overflow_i64(m, INT64_C(1000000), &lim))
        return m < 0;
    if (a <= lim)
        return 0;
    return dbl_gt_i64(div_1e6(a), m);
}

/* _lifetime_ok: SHARING / BIDSTREAM limits; LEGACY skips. */
static inline int lifetime_ok(const uid2_table_t *t, int client, int64_t generated_us, int64_t expires_us,
                              int64_t now_us)
{
    int64_t max_lifetime;
    if (client == UID2_CLIENT_BIDSTREAM)
        max_lifetime = t->p.max_bidstream_lifetime_seconds;
    else if (client == UID2_CLIENT_SHARING)
        max_lifetime = t->p.max_sharing_lifetime_seconds;
    else
        return 1;
    if (quotient_gt(sat_sub(expires_us, generated_us), max_lifetime))
        return 0;
    if (generated_us > now_us)
        return !quotient_gt(sat_sub(generated_us, now_us), t->p.allow_clock_skew_seconds);
    return 1;
}

static int table_valid(const uid2_table_t *t, int64_t now_us)
{
    return t->p.has_latest_expires && t->p.latest_expires_us > now_us;
}

/* ---- domain check (docs/differences.md#domain-check) ------------------------------------------------- */

/* w with its ASCII capitals lowered, eight bytes at once: a byte gets 0x20 added where its low seven bits lie
 * in 'A'..'Z' and its top bit is clear (the two sums stay below 0x100 per byte, so nothing carries). */
static inline uint64_t ascii_lower8(uint64_t w)
{
    const uint64_t ones = UINT64_C(0x0101010101010101), high = UINT64_C(0x8080808080808080);
    uint64_t h = w & ~high;
    uint64_t ge_a = h + ones * (0x80 - 'A'), gt_z = h + ones * (0x80 - 'Z' - 1);
    return w | ((ge_a & ~gt_z & ~w & high) >> 2);
}

/* ascii_lower(d[0..n)) == nm[0..n): whole words, then the last eight bytes again (overlapping: the step is
 * per byte, so comparing a byte twice changes nothing); under eight bytes, one word assembled bytewise. */
static int ascii_lower_equal(const uint8_t *d, const uint8_t *nm, size_t n)
{
    uint64_t a = 0, b = 0;
    if (n >= 8) {
        for (size_t i = 0; i + 8 < n; i += 8) {
            memcpy(&a, d + i, 8);
            memcpy(&b, nm + i, 8);
            if (ascii_lower8(a) != b)
                return 0;
        }
        memcpy(&a, d + n - 8, 8);
        memcpy(&b, nm + n - 8, 8);
        return ascii_lower8(a) == b;
    }
    for (size_t i = 0; i < n; i++) {
        a |= (uint64_t)d[i] << (8 * i);
        b |= (uint64_t)nm[i] << (8 * i);
    }
    return ascii_lower8(a) == b;
}

const uint8_t uid2_domain_later[1] = {0};

static int domain_allowed(const uid2_table_t *t, uint32_t site_id, const uint8_t *domain, size_t dlen)
{
    if (domain == NULL)
        return 0;
    /* the first site whose id is >= site_id, by a binary search whose steps are selects, not branches (the
     * sites of a bidstream's tokens come in no order a predictor could learn) */
    const uid2_site_spec_t *s = t->sites;
    size_t n = t->n_sites;
    if (n == 0)
        return 0;
    while (n > 1) {
        size_t half = n / 2;
        s += half & (0 - (size_t)(s[half - 1].site_id < site_id)); /* a mask, so no branch */
        n -= half;
    }
    if (s->site_id != site_id)
        return 0;
    for (size_t i = 0; i < s->n_names; i++) {
        const uid2_bytes_t *nm = &t->names[s->first_name + i];
        if (nm->ptr == NULL || nm->len != dlen)
            continue;
        if (ascii_lower_equal(domain, nm->ptr, dlen))
            return 1;
    }
    return 0;
}

int uid2_domain_allowed(const uid2_table_t *t, uint32_t site_id, const uint8_t *domain, size_t dlen)
{
    return t != NULL && domain != uid2_domain_later && domain_allowed(t, site_id, domain, dlen);
}

/* ---- UTF-8 (Python's strict decoder: no overlongs, no surrogates, <= U+10FFFF) --------------------- */

static int utf8_valid(const uint8_t *s, size_t n, int *ascii)
{
    size_t i = 0;
    int only_ascii = 1;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        only_ascii = 0;
        size_t need;
        uint8_t lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF)
            need = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0;
            else if (c == 0xED)
                hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90;
            else if (c == 0xF4)
                hi = 0x8F;
        } else
            return 0;
        if (n - i - 1 < need)
            return 0;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k <= need; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF)
                return 0;
        i += need + 1;
    }
    *ascii = only_ascii;
    return 1;
}

/* ---- AEAD helpers over table keys ----------------------------------------------------------------- */

/* GCM blob (nonce | ct | tag) with key index `key` on the hardware kernel; -1 for anything _gcm_decrypt
 * rejects. A blob longer than INT_MAX is refused as OpenSSL's int lengths refused it (so both engines and
 * every earlier version accept the same blobs). */
UID2_ALWAYS_INLINE ptrdiff_t gcm_open_key(const uid2_table_t *t, size_t key, const uint8_t *blob, size_t blob_len,
                                          uint8_t *out)
{
    const uid2_key_t *k = &t->keys[key];
    if (blob_len < UID2_GCM_OVERHEAD || !k->hw_ok)
        return -1;
    size_t ct_len = blob_len - UID2_GCM_OVERHEAD;
    if (ct_len > (size_t)INT_MAX)
        return -1;
    int rc = uid2_hw_gcm_decrypt(&k->hw, blob, blob + UID2_GCM_NONCE_LEN, ct_len, blob + blob_len - UID2_GCM_TAG_LEN,
                                 out);
    return rc == 0 ? (ptrdiff_t)ct_len : -1;
}

/* CBC + strict PKCS7 (docs/formats.md); returns the unpadded length or -1. The padding is checked without a
 * branch or an index on the decrypted bytes: the last 16 bytes are always read, each compared under a mask
 * that selects the padding bytes; only the verdict (and, when valid, the length) comes out. */
static ptrdiff_t cbc_open_key(const uid2_table_t *t, size_t key, const uint8_t *iv, size_t iv_len, const uint8_t *ct,
                              size_t ct_len, uint8_t *out)
{
    if (iv_len != UID2_CBC_BLOCK || ct_len == 0 || ct_len % UID2_CBC_BLOCK != 0 || !t->keys[key].hw_ok)
        return -1;
    if (uid2_hw_cbc_decrypt(&t->keys[key].hw, iv, ct, ct_len, out) != 0)
        return -1;
    uint32_t pad = out[ct_len - 1];
    /* bad if pad == 0 or pad > 16: the top bit of (pad - 1) or of (16 - pad) as a 32-bit wrap */
    uint32_t bad = ((pad - 1u) >> 31) | ((16u - pad) >> 31);
    for (uint32_t i = 0; i < 16; i++) {
        uint32_t in_pad = 0u - ((i - pad) >> 31); /* all ones when i < pad */
        bad |= ((uint32_t)out[ct_len - 1 - i] ^ pad) & in_pad;
    }
    return bad ? -1 : (ptrdiff_t)(ct_len - pad);
}

/* ---- base64 ----------------------------------------------------------------------------------------- */

/* uid2_b64_decode (CPython's non-strict a2b_base64, see uid2_base64.h) with the fast decoder in front for
 * clean input: it accepts only strings on which CPython skips nothing (url: '-'/'_' alphabet, no '=', the
 * SDK's padding virtual) and declines everything else, which then takes the exact decoder. The result is
 * the same bytes either way; `out` holds UID2_B64_DECODED_MAX(len + extra_pad) >= the fast decoder's need. */
static ptrdiff_t b64_decode(const uid2_table_t *t, const uint8_t *in, size_t len, size_t extra_pad, int url,
                            uint8_t *out, int *clean)
{
    size_t n;
    /* url input: the virtual padding is exactly what makes it a multiple of 4 (the fast decoder's rule);
     * anything else (stray padding, standard input with extra_pad) is left to the exact decoder */
    if (t->b64fast && (url ? extra_pad == (4 - len % 4) % 4 : extra_pad == 0) &&
        uid2_b64fast_decode((const char *)in, len, out, &n, url) == 0) {
        *clean = 1; /* only alphabet characters: ASCII */
        return (ptrdiff_t)n;
    }
    return uid2_b64_decode(in, len, extra_pad, url, out);
}

/* The uid text of a v3/v4 raw UID: standard base64 with padding. */
static size_t b64_encode(const uid2_table_t *t, const uint8_t *in, size_t len, char *out, int url)
{
    if (t->b64fast)
        return uid2_b64fast_encode(in, len, out, url); /* constant time */
    return url ? uid2_b64url_encode_nopad(in, len, out) : uid2_b64_encode(in, len, out);
}

/* ---- decrypt ----------------------------------------------------------------------------------------- */

#define SET_ERR(r, st) ((r)->status = (st), (r)->have = 0, (st))

static int decrypt_v2(const uid2_table_t *t, const uint8_t *tb, size_t tn, uint8_t *m, uint8_t *id,
                      int64_t now_us, int client, const uint8_t *domain, size_t dlen, char *uid_buf, uid2_result_t *r)
{
    /* token: 0x02 | master key id [1:5] | master IV [5:21] | CBC(master payload) [21:] */
    ptrdiff_t mk = uid2_find(t, (uint32_t)be(tb, tn, 1, 5));
    if (mk < 0)
        return SET_ERR(r, UID2_STATUS_NOT_AUTHORIZED_FOR_MASTER_KEY);
    size_t iv_len = tn >= 21 ? 16 : tail_len(tn, 5);
    ptrdiff_t mn = cbc_open_key(t, (size_t)mk, tb + (tn > 5 ? 5 : tn), iv_len, tb + (tn > 21 ? 21 : tn),
                                tail_len(tn, 21), m);
    if (mn < 0)
        return SET_ERR(r, UID2_STATUS_MALFORMED);
    /* master payload: expires [0:8] | site key id [8:12] | identity IV [12:28] | CBC(identity) [28:] */
    size_t mlen = (size_t)mn;
    uint64_t expires_ms = be(m, mlen, 0, 8);
    int64_t expires_us;
    if (ms_to_us(expires_ms, &expires_us) != 0)
        return SET_ERR(r, UID2_STATUS_MALFORMED);
    r->version = UID2_VERSION_V2;
    r->is_client_side_generated = 0;
    r->expiry_ms = expires_ms;
    if (expires_us < now_us) {
        r->have = UID2_HAVE_VERSION | UID2_HAVE_CSG | UID2_HAVE_EXPIRY;
        return r->status = UID2_STATUS_EXPIRED_TOKEN;
    }
    ptrdiff_t sk = uid2_find(t, (uint32_t)be(m, mlen, 8, 12));
    if (sk < 0) {
        r->have = UID2_HAVE_VERSION | UID2_HAVE_CSG | UID2_HAVE_EXPIRY;
        return r->status = UID2_STATUS_NOT_AUTHORIZED_FOR_KEY;
    }
    size_t iv2_len = mlen >= 28 ? 16 : tail_len(mlen, 12);
    ptrdiff_t in = cbc_open_key(t, (size_t)sk, m + (mlen > 12 ? 12 : mlen), iv2_len,
                                m + (mlen > 28 ? 28 : mlen), tail_len(mlen, 28), id);
    if (in < 0)
        return SET_ERR(r, UID2_STATUS_MALFORMED);
    /* identity: site id [0:4] | id length L [4:8] | id [8:8+L] (UTF-8) | privacy [8+L:12+L] |
     * established [12+L:20+L] */
    size_t ilen = (size_t)in;
    uint32_t site_id = (uint32_t)be(id, ilen, 0, 4);
    uint64_t id_len = be(id, ilen, 4, 8);
    size_t u0 = ilen < 8 ? ilen : 8;
    size_t u1 = 8 + id_len < ilen ? (size_t)(8 + id_len) : ilen;
    if (u1 < u0)
        u1 = u0;
    int ascii;
    if (!utf8_valid(id + u0, u1 - u0, &ascii))
        return SET_ERR(r, UID2_STATUS_MALFORMED);
    size_t idx = (size_t)(8 + id_len + 4);
    uint32_t privacy = (uint32_t)be(id, ilen, (size_t)(8 + id_len), idx);
    uint64_t established_ms = be(id, ilen, idx, idx + 8);
    int64_t established_us;
    if (ms_to_us(established_ms, &established_us) != 0)
        return SET_ERR(r, UID2_STATUS_MALFORMED);
    /* the privacy bits read as in v3/v4 (Java and .NET read them in v2 too) */
    int is_csg = (privacy & UID2_PRIVACY_CLIENT_SIDE_GENERATED) != 0;
    r->established_ms = established_ms;
    r->site_id = site_id;
    r->site_key_index = (size_t)sk;
    r->site_key_site_id = t->keys[sk].site_id;
    r->is_client_side_generated = is_csg;
    r->have = UID2_HAVE_ESTABLISHED | UID2_HAVE_SITE_ID | UID2_HAVE_SITE_KEY | UID2_HAVE_VERSION | UID2_HAVE_CSG |
              UID2_HAVE_EXPIRY;
    if (client == UID2_CLIENT_BIDSTREAM) {
        if (privacy & UID2_PRIVACY_OPTED_OUT)
            return r->status = UID2_STATUS_USER_OPTED_OUT;
        if (is_csg && domain == uid2_domain_later)
            r->have |= UID2_HAVE_DOMAIN_LATER; /* the caller's (uid2_engine.h) */
        else if (is_csg && !domain_allowed(t, site_id, domain, dlen))
            return r->status = UID2_STATUS_DOMAIN_NAME_CHECK_FAILED;
    }
    /* v2 has no "generated" field: the remaining lifetime (from now) is checked */
    if (!lifetime_ok(t, client, now_us, expires_us, now_us))
        return r->status = UID2_STATUS_INVALID_TOKEN_LIFETIME; /* docs/differences.md#cbc-padding: no uid */
    r->have |= UID2_HAVE_UID;
    r->uid_len = u1 - u0;
    if (uid_buf != NULL) {
        memcpy(uid_buf, id + u0, u1 - u0);
        r->uid = uid_buf;
    }
    return r->status = UID2_STATUS_SUCCESS;
}

/* v3 and v4 tokens. uid2_decrypt_fast (below) repeats these steps for the common v3/v4 row of a batch: a change to
 * the checks, their order or the offsets here belongs there too (tests/test_fastpath.py compares the two). */
static int decrypt_v3(const uid2_table_t *t, const uint8_t *tb, size_t tn, uint8_t *m,
                      uint8_t *s, int64_t now_us, int client, const uint8_t *domain, size_t dlen, int version,
                      char *uid_buf, uid2_result_t *r)
{
    /* token: prefix [0] | version [1] | master key id [2:6] | GCM(master payload) [6:] */
    if (tn == 0)
        return SET_ERR(r, UID2_STATUS_MALFORMED);
    int identity_type = ((tb[0] & 0x0F) >> 2) == 0 ? 0 : 1;
    if ((int64_t)((tb[0] >> 4) & 1) != t->p.identity_scope) /* docs/differences.md#identity-scope */
        return SET_ERR(r, UID2_STATUS_INVALID_IDENTITY_SCOPE);
    ptrdiff_t mk = uid2_find(t, (uint32_t)be(tb, tn, 2, 6));
    if (mk < 0)
        return SET_ERR(r, UID2_STATUS_NOT_AUTHORIZED_FOR_MASTER_KEY);
    ptrdiff_t mn = gcm_open_key(t, (size_t)mk, tb + (tn > 6 ? 6 : tn), tail_len(tn, 6), m);
    if (mn < 0)
        return SET_ERR(r, UID2_STATUS_MALFORMED);
    /* master payload: expires [0:8] | generated [8:16] | operator site [16:20] | type [20] |
     * version [21:25] | operator key id [25:29] | site key id [29:33] | GCM(site payload) [33:] */
    size_t mlen = (size_t)mn;
    uint64_t expires_ms = be(m, mlen, 0, 8);
    int64_t expires_us;
    if (ms_to_us(expires_ms, &expires_us) != 0)
        return SET_ERR(r, UID2_STATUS_MALFORMED);
    r->identity_type = identity_type;
    r->version = version;
    r->expiry_ms = expires_ms;
    if (expires_us < now_us) {
        r->have = UID2_HAVE_IDENTITY_TYPE | UID2_HAVE_VERSION | UID2_HAVE_EXPIRY;
        return r->status = UID2_STATUS_EXPIRED_TOKEN;
    }
    uint64_t generated_ms = be(m, mlen, 8, 16);
    ptrdiff_t sk = uid2_find(t, (uint32_t)be(m, mlen, 29, 33));
    if (sk < 0) {
        r->have = UID2_HAVE_IDENTITY_TYPE | UID2_HAVE_VERSION | UID2_HAVE_EXPIRY;
        return r->status = UID2_STATUS_NOT_AUTHORIZED_FOR_KEY;
    }
    ptrdiff_t sn = gcm_open_key(t, (size_t)sk, m + (mlen > 33 ? 33 : mlen), tail_len(mlen, 33), s);
    if (sn < 0)
        return SET_ERR(r, UID2_STATUS_MALFORMED);
    /* site payload: site id [0:4] | publisher id [4:12] | client key id [12:16] | privacy [16:20] |
     * established [20:28] | refreshed [28:36] | raw UID [36:] */
    size_t slen = (size_t)sn;
    uint32_t site_id = (uint32_t)be(s, slen, 0, 4);
    uint32_t privacy = (uint32_t)be(s, slen, 16, 20);
    uint64_t established_ms = be(s, slen, 20, 28);
    int64_t established_us, generated_us;
    if (ms_to_us(established_ms, &established_us) != 0 || ms_to_us(generated_ms, &generated_us) != 0)
        return SET_ERR(r, UID2_STATUS_MALFORMED);
    int is_csg = (privacy & UID2_PRIVACY_CLIENT_SIDE_GENERATED) != 0; /* docs/differences.md#csg-bit: bit 1 */
    r->established_ms = established_ms;
    r->site_id = site_id;
    r->site_key_index = (size_t)sk;
    r->site_key_site_id = t->keys[sk].site_id;
    r->is_client_side_generated = is_csg;
    r->have = UID2_HAVE_ESTABLISHED | UID2_HAVE_SITE_ID | UID2_HAVE_SITE_KEY | UID2_HAVE_IDENTITY_TYPE |
              UID2_HAVE_VERSION | UID2_HAVE_CSG | UID2_HAVE_EXPIRY;
    if (client == UID2_CLIENT_BIDSTREAM) {
        if (privacy & UID2_PRIVACY_OPTED_OUT) /* docs/differences.md#cstg-opt-out */
            return r->status = UID2_STATUS_USER_OPTED_OUT;
        if (is_csg && domain == uid2_domain_later)
            r->have |= UID2_HAVE_DOMAIN_LATER; /* the caller's (uid2_engine.h) */
        else if (is_csg && !domain_allowed(t, site_id, domain, dlen)) /* docs/differences.md#domain-check */
            return r->status = UID2_STATUS_DOMAIN_NAME_CHECK_FAILED;
    }
    if (!lifetime_ok(t, client, generated_us, expires_us, now_us))
        return r->status = UID2_STATUS_INVALID_TOKEN_LIFETIME;
    size_t raw_len = tail_len(slen, 36);
    r->have |= UID2_HAVE_UID;
    r->uid_len = UID2_B64_ENCODED_LEN(raw_len);
    if (uid_buf != NULL) {
        b64_encode(t, s + (slen > 36 ? 36 : slen), raw_len, uid_buf, 0);
        r->uid = uid_buf;
    }
    return r->status = UID2_STATUS_SUCCESS;
}

/* Scratch memory for one call: the worker's (wiped when the worker is freed), else the caller's stack
 * buffer when it fits, else the heap (*heap set: give it back with scratch_drop_heap, which wipes it). */
static uint8_t *scratch_get(uid2_worker_t *w, size_t need, uint8_t *stack, size_t stack_len, uint8_t **heap)
{
    *heap = NULL;
    if (w != NULL)
        return uid2_worker_scratch(w, need);
    if (need <= stack_len)
        return stack;
    return *heap = malloc(need);
}

static void scratch_drop_heap(uint8_t *heap, size_t need)
{
    if (heap != NULL) {
        uid2_wipe(heap, need);
        free(heap);
    }
}

static int decrypt_token(const uid2_table_t *t, uid2_worker_t *w, const char *token, size_t len, unsigned flags,
                         int64_t now_us, int client, const uint8_t *domain, size_t domain_len, char *uid_buf,
                         uid2_result_t *r, int *clean)
{
    r->uid = NULL;
    r->uid_len = 0;
    if (t == NULL)
        return SET_ERR(r, UID2_STATUS_NOT_INITIALIZED);
    if (!table_valid(t, now_us))
        return SET_ERR(r, UID2_STATUS_KEYS_NOT_SYNCED);
    if (len < 4)
        return SET_ERR(r, UID2_STATUS_INVALID_PAYLOAD);
    const uint8_t *tok = (const uint8_t *)token;

    /* Version from the first 4 characters: base64url if any is '-' or '_' (str tokens only). */
    uint8_t hdr[3];
    ptrdiff_t hn = 3;
    if ((flags & UID2_TOKEN_BYTES) || uid2_b64_quad(tok, hdr) != 0) {
        int url = 0;
        if (!(flags & UID2_TOKEN_BYTES))
            for (int i = 0; i < 4; i++)
                url |= tok[i] == '-' || tok[i] == '_';
        hn = uid2_b64_decode(tok, 4, 0, url, hdr);
    }
    if (hn < 1)
        return SET_ERR(r, UID2_STATUS_MALFORMED); /* binascii.Error, or header[0] IndexError */
    int version;
    if (hdr[0] == 2)
        version = UID2_VERSION_V2;
    else if (hn < 2)
        return SET_ERR(r, UID2_STATUS_MALFORMED); /* header[1] IndexError */
    else if (hdr[1] == UID2_VERSION_V3)
        version = UID2_VERSION_V3;
    else if (hdr[1] == UID2_VERSION_V4)
        version = UID2_VERSION_V4;
    else
        return SET_ERR(r, UID2_STATUS_VERSION_NOT_SUPPORTED);
    if (flags & UID2_TOKEN_UNDECODABLE)
        return SET_ERR(r, UID2_STATUS_MALFORMED); /* b64decode of a non-ASCII str raises */
    if (version == UID2_VERSION_V4 && (flags & UID2_TOKEN_BYTES))
        return SET_ERR(r, UID2_STATUS_MALFORMED); /* bytes.replace('-', '+') raises TypeError */

    size_t extra_pad = 0;
    if (version == UID2_VERSION_V4) {
        /* replace '-'/'_' by '+'/'/' (decoding with url = 1 is the same), then pad to a multiple of 4 */
        if (len % 4 == 1)
            return SET_ERR(r, UID2_STATUS_MALFORMED);
        extra_pad = (4 - len % 4) % 4;
    }
    size_t dmax = UID2_B64_DECODED_MAX(len + extra_pad);
    if (dmax > (SIZE_MAX - 64) / 3)
        return SET_ERR(r, UID2_STATUS_MALFORMED);
    size_t need = 3 * dmax + 48;
    uint8_t stack_buf[2048];
    uint8_t *heap;
    uint8_t *buf = scratch_get(w, need, stack_buf, sizeof stack_buf, &heap);
    if (buf == NULL)
        return SET_ERR(r, UID2_STATUS_MALFORMED); /* out of memory */
    uint8_t *tb = buf, *m = buf + dmax + 16, *s = buf + 2 * dmax + 32;
    int st;
    ptrdiff_t tn = b64_decode(t, tok, len, extra_pad, version == UID2_VERSION_V4, tb, clean);
    if (tn < 0)
        st = SET_ERR(r, UID2_STATUS_MALFORMED);
    else if (version == UID2_VERSION_V2)
        st = decrypt_v2(t, tb, (size_t)tn, m, s, now_us, client, domain, domain_len, uid_buf, r);
    else
        st = decrypt_v3(t, tb, (size_t)tn, m, s, now_us, client, domain, domain_len, version, uid_buf, r);
    /* the decrypted payloads (m and s; tb is the decoded token, public); a worker's scratch is wiped when
     * the worker is freed */
    if (buf == stack_buf)
        uid2_wipe(m, need - dmax - 16);
    scratch_drop_heap(heap, need);
    return st;
}

/* uid2_find for uid2_decrypt_fast through the call's memo: -1 unless the key is there and on the kernel */
UID2_ALWAYS_INLINE ptrdiff_t fast_key(const uid2_table_t *t, uid2_key_memo_t *memo,
                                                                int slot, uint32_t id)
{
    if (memo->idx[slot] >= 0 && memo->id[slot] == id)
        return memo->idx[slot];
    ptrdiff_t k = uid2_find(t, id);
    if (k < 0 || !t->keys[k].hw_ok || !t->keys[k].secret_ok)
        return -1;
    memo->id[slot] = id;
    memo->idx[slot] = k;
    return k;
}

/* The common batch row, in one straight pass: a v3 or v4 str token whose two payloads open, with a 32- or 33-byte
 * raw UID (44 uid characters either way), on the hardware AES kernels and the fast base64 decoder. The same steps
 * and checks as decrypt_token -> decrypt_v3 in the same order, without the general machinery (no uid buffer): such
 * a row ends in SUCCESS or in one of the statuses decided after the site payload (USER_OPTED_OUT,
 * DOMAIN_NAME_CHECK_FAILED, INVALID_TOKEN_LIFETIME), whose columns are those of a success without the uid, as
 * put_row writes them. Anything else -- another version, another length, a byte the fast decoder declines, an
 * unknown key, a failed tag, an expired token, a timestamp out of range -- returns 0 having written nothing but
 * scratch, and the caller runs decrypt_token, which gives that row its answer (a bid log's client-side generated
 * tokens without a domain no longer decrypt twice). So a 1 here is always exactly what decrypt_token would have
 * said; tests/test_fastpath.py and the differential tests compare the two on every kind of row. The steps are split
 * in three (fast_open_token before the master payload is opened, fast_open_master between the two payloads,
 * fast_finish after the site payload) so that uid2_decrypt_fast_group can open the payloads of several rows at once
 * with the multi-buffer kernel. */

/* A v3 or v4 token with a 32-byte raw UID is 163 bytes: 6 of header, the master GCM message (12 + 129 + 16), whose
 * payload is 33 bytes then the site GCM message (12 + 68 + 16), whose payload is 36 bytes then the raw UID. A
 * 33-byte raw UID adds one byte to each. The two versions differ only in their text: v4 is base64url without
 * padding (218 or 219 characters), v3 standard base64 with padding (220 either way). */
#define FAST_TN32 (6u + UID2_GCM_OVERHEAD + 33u + UID2_GCM_OVERHEAD + 36u + 32u)
/* Scratch of one row: the decoded token at 0 (at most 164 bytes), the master payload at 176 (130), the site
 * payload at 320 (69). */
#define FAST_M_OFF 176u
#define FAST_S_OFF 320u

typedef struct {
    const uint8_t *tb; /* prefix [0] | version [1] | master key id [2:6] | GCM(master payload) [6:tn] */
    uint8_t *m, *s;    /* the master and the site payload */
    size_t mlen, slen; /* 129 and 68, or 130 and 69 */
    ptrdiff_t mk, sk;
    uint64_t expires_ms, generated_ms;
    int64_t expires_us;
    int version; /* UID2_VERSION_V3 or UID2_VERSION_V4 */
} fast_row_t;

/* Up to the master payload: table, length, header, the decoded token, scope, master key. 1 with r->tb, r->mk
 * and the lengths set (the master message is tb[6:tn]). */
UID2_ALWAYS_INLINE int fast_open_token(const uid2_table_t *t, uid2_key_memo_t *memo, uint8_t *scratch,
                                       const char *token, size_t len, int64_t now_us, fast_row_t *r)
{
    const uint8_t *tok = (const uint8_t *)token;
    uint8_t hdr[3];
    /* 163 or 164 bytes are 218 or 219 base64url characters in v4 (no padding: the fast decoder's url rule), 220
     * standard ones in v3 (padded: decrypt_token decodes v3 with the standard alphabet and no added padding, and
     * the fast decoder takes the same strings; a v3 token in the url alphabet is left to decrypt_token) */
    const int v3 = len == 220;
    if (!t->onepass || !table_valid(t, now_us) || (len != 218 && len != 219 && !v3) ||
        uid2_b64_quad(tok, hdr) != 0 || hdr[0] == 2 || hdr[1] != (v3 ? UID2_VERSION_V3 : UID2_VERSION_V4))
        return 0;
    uint8_t *tb = scratch;
    size_t tn;
    if (uid2_b64fast_decode(token, len, tb, &tn, !v3) != 0 || (tn != FAST_TN32 && tn != FAST_TN32 + 1))
        return 0;
    if ((int64_t)((tb[0] >> 4) & 1) != t->p.identity_scope)
        return 0;
    ptrdiff_t mk = fast_key(t, memo, 0, (uint32_t)be(tb, tn, 2, 6));
    if (mk < 0)
        return 0;
    r->tb = tb;
    r->m = scratch + FAST_M_OFF;
    r->s = scratch + FAST_S_OFF;
    r->mk = mk;
    r->mlen = tn - 6 - UID2_GCM_OVERHEAD;
    r->slen = r->mlen - 33 - UID2_GCM_OVERHEAD;
    r->version = hdr[1];
    return 1;
}

/* Between the payloads: expiry and the site key (master payload: expires [0:8] | generated [8:16] | ... |
 * site key id [29:33] | GCM(site payload) [33:]). */
UID2_ALWAYS_INLINE int fast_open_master(const uid2_table_t *t, uid2_key_memo_t *memo, int64_t now_us,
                                        fast_row_t *r)
{
    const uint8_t *m = r->m;
    size_t mlen = r->mlen;
    r->expires_ms = be(m, mlen, 0, 8);
    r->generated_ms = be(m, mlen, 8, 16);
    if (ms_to_us(r->expires_ms, &r->expires_us) != 0 || r->expires_us < now_us)
        return 0;
    r->sk = fast_key(t, memo, 1, (uint32_t)be(m, mlen, 29, 33));
    return r->sk >= 0;
}

/* After the site payload: the remaining checks, in decrypt_v3's order (site payload: site id [0:4] | ... |
 * privacy [16:20] | established [20:28] | ... | raw UID [36:]). 0 to decline (a timestamp out of range), else 1
 * with *o set: the status, and UID2_STATUS_DOMAIN_LATER in `later` when the domain check is left to the caller
 * (uid2_engine.h). Each failed check keeps every field but the uid. */
typedef struct {
    int st;
    unsigned later;
    uint32_t site_id;
    uint64_t established_ms;
    int is_csg;
    int identity_type; /* 0 email, 1 phone: from the token's first byte */
} fast_out_t;

UID2_ALWAYS_INLINE int fast_checks(const uid2_table_t *t, const fast_row_t *r, int64_t now_us, int client,
                                   const uint8_t *domain, size_t dlen, fast_out_t *o)
{
    const uint8_t *s = r->s;
    size_t slen = r->slen;
    uint32_t site_id = (uint32_t)be(s, slen, 0, 4);
    uint32_t privacy = (uint32_t)be(s, slen, 16, 20);
    uint64_t established_ms = be(s, slen, 20, 28);
    int64_t established_us, generated_us;
    if (ms_to_us(established_ms, &established_us) != 0 || ms_to_us(r->generated_ms, &generated_us) != 0)
        return 0;
    int is_csg = (privacy & UID2_PRIVACY_CLIENT_SIDE_GENERATED) != 0;
    int st = UID2_STATUS_SUCCESS;
    const unsigned later = client == UID2_CLIENT_BIDSTREAM && is_csg && !(privacy & UID2_PRIVACY_OPTED_OUT) &&
                           domain == uid2_domain_later ? UID2_STATUS_DOMAIN_LATER : 0;
    if (client == UID2_CLIENT_BIDSTREAM && (privacy & UID2_PRIVACY_OPTED_OUT))
        st = UID2_STATUS_USER_OPTED_OUT;
    else if (client == UID2_CLIENT_BIDSTREAM && is_csg && !later && !domain_allowed(t, site_id, domain, dlen))
        st = UID2_STATUS_DOMAIN_NAME_CHECK_FAILED;
    else if (!lifetime_ok(t, client, generated_us, r->expires_us, now_us))
        st = UID2_STATUS_INVALID_TOKEN_LIFETIME;
    o->st = st;
    o->later = later;
    o->site_id = site_id;
    o->established_ms = established_ms;
    o->is_csg = is_csg;
    o->identity_type = ((r->tb[0] & 0x0F) >> 2) == 0 ? 0 : 1;
    return 1;
}

/* The raw UID of a row that passed, in base64: 44 characters either way (a 32-byte one padded with '='). */
UID2_ALWAYS_INLINE void fast_uid(const fast_row_t *r, char *out)
{
    if (r->slen == 36 + 32)
        uid2_b64fast_encode32(r->s + 36, out); /* 43 characters and '=' */
    else
        uid2_b64fast_encode(r->s + 36, 33, out, 0); /* 44 characters, no padding */
}

/* fast_checks, then row i of the columns as uid2_batch.c's put_row writes the result. */
UID2_ALWAYS_INLINE int fast_finish(const uid2_table_t *t, const fast_row_t *r, int64_t now_us, int client,
                                   const uint8_t *domain, size_t dlen, const uid2_columns_t *c, size_t i)
{
    fast_out_t o;
    if (!fast_checks(t, r, now_us, client, domain, dlen, &o))
        return 0;
    /* the column pointers copied first: a store through one of the byte columns could alias *c, and the
     * compiler would reload them after every store */
    const uid2_columns_t cc = *c;
    const int64_t sksi = t->keys[r->sk].site_id;
    if (o.st != UID2_STATUS_SUCCESS)
        memset(cc.uid + i * UID2_UID_WIDTH, 0, UID2_UID_WIDTH); /* no uid, as put_row writes it */
    else
        fast_uid(r, cc.uid + i * UID2_UID_WIDTH);
    cc.status[i] = (uint8_t)((unsigned)o.st | o.later);
    cc.uid_overflow[i] = 0;
    cc.established_ms[i] = (int64_t)o.established_ms;
    cc.expiry_ms[i] = (int64_t)r->expires_ms;
    cc.site_id[i] = (int64_t)o.site_id;
    cc.site_key_site_id[i] = sksi;
    cc.identity_type[i] = (int8_t)o.identity_type;
    cc.version[i] = (int16_t)r->version;
    cc.is_client_side_generated[i] = (int8_t)o.is_csg;
    return 1;
}

/* After fast_open_token: both payloads opened one after the other (fast_open_master between them). 1 with the
 * site payload in r->s, or 0 to decline. */
UID2_ALWAYS_INLINE int fast_open_payloads(const uid2_table_t *t, uid2_key_memo_t *memo, int64_t now_us,
                                          fast_row_t *r)
{
    const uint8_t *b = r->tb + 6; /* the master message: nonce | ciphertext | tag */
    if (uid2_hw_gcm_decrypt(&t->keys[r->mk].hw, b, b + UID2_GCM_NONCE_LEN, r->mlen,
                            b + UID2_GCM_NONCE_LEN + r->mlen, r->m) != 0 ||
        !fast_open_master(t, memo, now_us, r))
        return 0;
    b = r->m + 33; /* the site message */
    return uid2_hw_gcm_decrypt(&t->keys[r->sk].hw, b, b + UID2_GCM_NONCE_LEN, r->slen,
                               b + UID2_GCM_NONCE_LEN + r->slen, r->s) == 0;
}

int uid2_decrypt_fast(const uid2_table_t *t, uid2_key_memo_t *memo, uint8_t *scratch, size_t cap,
                      const char *token, size_t len, int64_t now_us, int client, const uint8_t *domain,
                      size_t dlen, const uid2_columns_t *c, size_t i)
{
    fast_row_t r;
    if (t == NULL || cap < UID2_FAST_ROW_SCRATCH || !fast_open_token(t, memo, scratch, token, len, now_us, &r) ||
        !fast_open_payloads(t, memo, now_us, &r))
        return 0;
    return fast_finish(t, &r, now_us, client, domain, dlen, c, i);
}

/* The same row for uid2_decrypt_token (a str token, no worker: the scalar calls), into *res as decrypt_v3 fills
 * it. 1 when taken, else 0 and the general path answers. Its scratch is on the stack, and the payloads it held
 * are wiped before returning. */
static int decrypt_one_fast(const uid2_table_t *t, const char *token, size_t len, int64_t now_us, int client,
                            const uint8_t *domain, size_t dlen, char *uid_buf, uid2_result_t *res)
{
    uint8_t scratch[UID2_FAST_ROW_SCRATCH];
    uid2_key_memo_t memo = {{0, 0}, {-1, -1}};
    fast_row_t r;
    fast_out_t o;
    if (!fast_open_token(t, &memo, scratch, token, len, now_us, &r))
        return 0; /* nothing but the decoded token (public) written */
    const int ok = fast_open_payloads(t, &memo, now_us, &r) && fast_checks(t, &r, now_us, client, domain, dlen, &o);
    if (ok) {
        res->status = o.st;
        res->have = UID2_HAVE_ESTABLISHED | UID2_HAVE_SITE_ID | UID2_HAVE_SITE_KEY | UID2_HAVE_IDENTITY_TYPE |
                    UID2_HAVE_VERSION | UID2_HAVE_CSG | UID2_HAVE_EXPIRY |
                    (o.later ? UID2_HAVE_DOMAIN_LATER : 0u);
        res->established_ms = o.established_ms;
        res->site_id = o.site_id;
        res->site_key_index = (size_t)r.sk;
        res->site_key_site_id = t->keys[r.sk].site_id;
        res->identity_type = o.identity_type;
        res->version = r.version;
        res->is_client_side_generated = o.is_csg;
        res->expiry_ms = r.expires_ms;
        if (o.st == UID2_STATUS_SUCCESS) {
            res->have |= UID2_HAVE_UID;
            res->uid_len = UID2_UID_WIDTH;
            if (uid_buf != NULL) {
                fast_uid(&r, uid_buf);
                res->uid = uid_buf;
            }
        }
    }
    /* the master and site payloads (a failed tag has already wiped its own) */
    uid2_wipe(scratch + FAST_M_OFF, FAST_S_OFF + 69u - FAST_M_OFF);
    return ok;
}

#if defined(UID2_KERNELS_X86)
/* The master message of a row (tb[6:tn]: nonce, ciphertext, tag) and its site message (m[33:mlen]). */
static inline uid2_gcm_mb_msg fast_master_msg(const uid2_table_t *t, const fast_row_t *r)
{
    const uint8_t *b = r->tb + 6;
    return (uid2_gcm_mb_msg){&t->keys[r->mk].hw, b, b + UID2_GCM_NONCE_LEN, r->mlen, b + UID2_GCM_NONCE_LEN + r->mlen,
                             r->m};
}

static inline uid2_gcm_mb_msg fast_site_msg(const uid2_table_t *t, const fast_row_t *r)
{
    const uint8_t *b = r->m + 33;
    return (uid2_gcm_mb_msg){&t->keys[r->sk].hw, b, b + UID2_GCM_NONCE_LEN, r->slen, b + UID2_GCM_NONCE_LEN + r->slen,
                             r->s};
}

/* Opens the master (site == 0) or the site payloads of the rows in `live` side by side with the multi-buffer
 * kernel; returns `live` without the rows whose tag did not match. */
static uint32_t fast_open_group(const uid2_table_t *t, const fast_row_t *r, uint32_t live, int site)
{
    uid2_gcm_mb_msg msg[UID2_FAST_GROUP];
    unsigned idx[UID2_FAST_GROUP], k = 0;
    for (unsigned j = 0; j < UID2_FAST_GROUP; j++)
        if ((live >> j) & 1u) {
            msg[k] = site ? fast_site_msg(t, &r[j]) : fast_master_msg(t, &r[j]);
            idx[k++] = j;
        }
    uint32_t bad = uid2_gcm_mb_decrypt(msg, k);
    for (unsigned f = 0; f < k; f++)
        if ((bad >> f) & 1u)
            live &= ~(1u << idx[f]);
    return live;
}

uint32_t uid2_decrypt_fast_group(const uid2_table_t *t, uid2_key_memo_t *memo, uint8_t *scratch, size_t cap,
                                 const uid2_bytes_t *tokens, size_t lo, size_t n, const uid2_bytes_t *domains,
                                 const uid2_bytes_t *single_domain, int64_t now_us, int client,
                                 const uid2_columns_t *c)
{
    fast_row_t r[UID2_FAST_GROUP];
    uint32_t live = 0;
    if (t == NULL || n > UID2_FAST_GROUP || cap < n * UID2_FAST_ROW_SCRATCH)
        return 0;
    for (size_t j = 0; j < n; j++) {
        const uid2_bytes_t *tok = &tokens[lo + j];
        if (tok->ptr != NULL && fast_open_token(t, memo, scratch + j * UID2_FAST_ROW_SCRATCH,
                                                (const char *)tok->ptr, tok->len, now_us, &r[j]))
            live |= 1u << j;
    }
    if (live == 0)
        return 0;
    live = fast_open_group(t, r, live, 0);
    for (size_t j = 0; j < n; j++)
        if (((live >> j) & 1u) && !fast_open_master(t, memo, now_us, &r[j]))
            live &= ~(1u << j);
    if (live == 0)
        return 0;
    live = fast_open_group(t, r, live, 1);
    for (size_t j = 0; j < n; j++) {
        if (!((live >> j) & 1u))
            continue;
        const uid2_bytes_t *dom = domains ? &domains[lo + j] : single_domain;
        if (!fast_finish(t, &r[j], now_us, client, dom ? dom->ptr : NULL, dom ? dom->len : 0, c, lo + j))
            live &= ~(1u << j);
    }
    return live;
}

#else /* no multi-buffer kernel in this build: uid2_gcm_mb_impl() is UID2_GCM_MB_NONE and nothing calls this */

uint32_t uid2_decrypt_fast_group(const uid2_table_t *t, uid2_key_memo_t *memo, uint8_t *scratch, size_t cap,
                                 const uid2_bytes_t *tokens, size_t lo, size_t n, const uid2_bytes_t *domains,
                                 const uid2_bytes_t *single_domain, int64_t now_us, int client,
                                 const uid2_columns_t *c)
{
    (void)t, (void)memo, (void)scratch, (void)cap, (void)tokens, (void)lo, (void)n, (void)domains;
    (void)single_domain, (void)now_us, (void)client, (void)c;
    return 0;
}

#endif

int uid2_decrypt_token(const uid2_table_t *t, uid2_worker_t *w, const char *token, size_t len,
                       unsigned flags, int64_t now_us, int client, const uint8_t *domain, size_t domain_len,
                       char *uid_buf, uid2_result_t *r)
{
    int clean = 0;
    r->uid = NULL;
    r->uid_len = 0;
    if (flags == 0 && w == NULL && t != NULL &&
        decrypt_one_fast(t, token, len, now_us, client, domain, domain_len, uid_buf, r))
        return r->status;
    int st = decrypt_token(t, w, token, len, flags & ~UID2_TOKEN_ASCII_UNCHECKED, now_us, client, domain,
                           domain_len, uid_buf, r, &clean);
    if ((flags & UID2_TOKEN_ASCII_UNCHECKED) && !clean && st != UID2_STATUS_NOT_INITIALIZED &&
        st != UID2_STATUS_KEYS_NOT_SYNCED && !uid2_all_ascii((const uint8_t *)token, len)) {
        r->uid = NULL;
        r->uid_len = 0;
        return SET_ERR(r, UID2_STATUS_INVALID_PAYLOAD);
    }
    return st;
}

/* ---- encrypt (v4 sharing token) --------------------------------------------------------------------- */

size_t uid2_token_max_len(size_t uid_len)
{
    size_t raw = UID2_B64_DECODED_MAX(uid_len);
    size_t tok = 131 + raw; /* 6 + 12 + (33 + 12 + 36 + raw + 16) + 16 */
    return (tok * 4 + 2) / 3;
}

static int encrypt_keys(const uid2_table_t *t, int64_t now_us, const uid2_encrypt_args_t *a, ptrdiff_t *key,
                        ptrdiff_t *master)
{
    if (t == NULL)
        return UID2_ENC_NOT_INITIALIZED;
    if (!table_valid(t, now_us))
        return UID2_ENC_KEYS_NOT_SYNCED;
    *key = uid2_table_active_key(t, a->has_keyset ? a->keyset_group : t->p.default_group, now_us);
    *master = uid2_table_active_key(t, t->p.master_group, now_us);
    if (*master < 0)
        return UID2_ENC_NOT_AUTHORIZED_FOR_MASTER_KEY;
    /* docs/differences.md#encrypt-settings: a status, not a print and None */
    if (t->p.caller_site_state == UID2_OPT_NONE)
        return UID2_ENC_ENCRYPTION_FAILURE;
    if (*key < 0)
        return UID2_ENC_NOT_AUTHORIZED_FOR_KEY;
    return UID2_ENC_SUCCESS;
}

int uid2_encrypt_precheck(const uid2_table_t *t, int64_t now_us, const uid2_encrypt_args_t *a)
{
    ptrdiff_t k, m;
    return encrypt_keys(t, now_us, a, &k, &m);
}

static void put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static int nonces(uid2_worker_t *w, uint8_t *out24)
{
    if (w == NULL)
        return uid2_nonce_bytes(out24, 24);
    if (w->rnd_pos + 24 > sizeof w->rnd) {
        if (uid2_random_bytes(w->rnd, sizeof w->rnd) != 0)
            return -1;
        w->rnd_pos = 0;
    }
    memcpy(out24, w->rnd + w->rnd_pos, 24);
    uid2_wipe(w->rnd + w->rnd_pos, 24); /* each nonce is used once */
    w->rnd_pos += 24;
    return 0;
}

/* out = nonce (12) | ciphertext (len) | tag (16), on the hardware kernel. 0 or -1. */
static int gcm_seal_key(const uid2_table_t *t, size_t key, const uint8_t *nonce, const uint8_t *pt, size_t len,
                        uint8_t *out)
{
    const uid2_key_t *k = &t->keys[key];
    if (!k->hw_ok || len > (size_t)INT_MAX)
        return -1;
    memcpy(out, nonce, UID2_GCM_NONCE_LEN);
    return uid2_hw_gcm_encrypt(&k->hw, nonce, pt, len, out + UID2_GCM_NONCE_LEN, out + UID2_GCM_NONCE_LEN + len);
}

static int floor_div_1000(int64_t a, int64_t *q)
{
    int64_t d = a / 1000;
    if ((a % 1000) != 0 && a < 0)
        d--;
    *q = d;
    return 0;
}

/* floor((now_us + seconds * 10^6) / 1000) exactly (= seconds * 1000 + floor(now_us / 1000)), which must lie
 * in 0 .. 2^64 - 1 (it is written as 8 bytes): 0, or -1 outside. Computed as A * 2^32 + B with small parts
 * (|A| < 2^42, |B| < 2^55), so no intermediate overflows. */
static int expiry_ms(int64_t now_us, int64_t seconds, uint64_t *out)
{
    int64_t f;
    floor_div_1000(now_us, &f);
    int64_t a = (seconds >> 32) * 1000; /* arithmetic shift: floor(seconds / 2^32) */
    int64_t b = (int64_t)((uint64_t)seconds & 0xFFFFFFFFu) * 1000 + f;
    a += b >> 32; /* floor: b = (b >> 32) * 2^32 + (b & 0xFFFFFFFF) */
    uint64_t low = (uint64_t)b & 0xFFFFFFFFu;
    if (a < 0 || a > (int64_t)0xFFFFFFFF)
        return -1;
    *out = ((uint64_t)a << 32) | low;
    return 0;
}

int uid2_encrypt_token(const uid2_table_t *t, uid2_worker_t *w, const char *uid, size_t uid_len,
                       unsigned flags, int64_t now_us, const uid2_encrypt_args_t *a, char *out,
                       size_t *out_len)
{
    *out_len = 0;
    ptrdiff_t key, master;
    int st = encrypt_keys(t, now_us, a, &key, &master);
    if (st != UID2_ENC_SUCCESS)
        return st;
    /* Everything below failed inside the SDK's try block: ENCRYPTION_FAILURE. */
    const uid2_key_t *k = &t->keys[key], *mk = &t->keys[master];
    if ((flags & UID2_TOKEN_UNDECODABLE) || uid_len == 0 || t->p.caller_site_state != UID2_OPT_OK ||
        !a->established_ok || !k->id_is_u32 || !mk->id_is_u32 || !k->secret_ok || !mk->secret_ok)
        return UID2_ENC_ENCRYPTION_FAILURE;
    int64_t scope = a->has_scope ? a->scope : t->p.identity_scope;
    if (scope < 0 || scope > 15) /* the prefix byte must fit in one byte */
        return UID2_ENC_ENCRYPTION_FAILURE;
    int64_t generated_ms;
    floor_div_1000(now_us, &generated_ms);
    if (generated_ms < 0)
        return UID2_ENC_ENCRYPTION_FAILURE;
    uint64_t exp_ms;
    if (expiry_ms(now_us, t->p.token_expiry_seconds, &exp_ms) != 0)
        return UID2_ENC_ENCRYPTION_FAILURE;

    size_t dmax = UID2_B64_DECODED_MAX(uid_len);
    if (dmax > (SIZE_MAX - 1024) / 5)
        return UID2_ENC_ENCRYPTION_FAILURE;
    size_t need = 4 * dmax + 400;
    uint8_t stack_buf[2048];
    uint8_t *heap;
    uint8_t *buf = scratch_get(w, need, stack_buf, sizeof stack_buf, &heap);
    if (buf == NULL)
        return UID2_ENC_ENCRYPTION_FAILURE;
    /* site payload at sp: raw decoded in place at sp + 36 */
    uint8_t *sp = buf;
    int clean = 0;
    ptrdiff_t rn = b64_decode(t, (const uint8_t *)uid, uid_len, 0, 0, sp + 36, &clean);
    uint8_t nonce[24];
    if (rn < 0 || nonces(w, nonce) != 0) {
        st = UID2_ENC_ENCRYPTION_FAILURE;
        goto done;
    }
    /* the identity type: a 33-byte raw UID carries it in its metadata byte (bits 2-3, under the scope bit and
     * the v4 version/environment bits); a legacy 32-byte one by the SDK's rule, phone iff it starts F or B */
    int identity_type = rn == 33 ? ((sp[36] >> 2) & 3) != 0
                                 : !(flags & UID2_TOKEN_BYTES) && (uid[0] == 'F' || uid[0] == 'B');
    size_t sp_len = 36 + (size_t)rn;
    /* site payload: site id [0:4] | publisher id [4:12] = 0 | client key id [12:16] = 0 |
     * privacy [16:20] = 0 | established [20:28] | generated [28:36] | raw UID [36:] */
    put_be(sp, t->p.caller_site_id, 4);
    memset(sp + 4, 0, 16);
    put_be(sp + 20, a->established_ms, 8);
    put_be(sp + 28, (uint64_t)generated_ms, 8);
    /* master payload: expires [0:8] | generated [8:16] | operator site [16:20] = 0 | type [20] = 1 |
     * version [21:25] = 0 | operator key id [25:29] = 0 | site key id [29:33] | GCM(site payload) [33:] */
    uint8_t *mp = sp + sp_len + 16;
    size_t mp_len = 33 + sp_len + UID2_GCM_OVERHEAD;
    put_be(mp, (uint64_t)exp_ms, 8);
    put_be(mp + 8, (uint64_t)generated_ms, 8);
    memset(mp + 16, 0, 13);
    mp[20] = 1;
    put_be(mp + 29, k->id, 4);
    /* token: prefix [0] | version 128 [1] | master key id [2:6] | GCM(master payload) [6:] */
    uint8_t *tk = mp + mp_len + 16;
    size_t tk_len = 6 + mp_len + UID2_GCM_OVERHEAD;
    tk[0] = (uint8_t)((scope << 4) | (identity_type << 2) | 3);
    tk[1] = UID2_VERSION_V4;
    put_be(tk + 2, mk->id, 4);
    if (gcm_seal_key(t, (size_t)key, nonce, sp, sp_len, mp + 33) != 0 ||
        gcm_seal_key(t, (size_t)master, nonce + 12, mp, mp_len, tk + 6) != 0) {
        st = UID2_ENC_ENCRYPTION_FAILURE;
        goto done;
    }
    *out_len = b64_encode(t, tk, tk_len, out, 1);
    st = UID2_ENC_SUCCESS;
done:
    uid2_wipe(nonce, sizeof nonce);
    if (buf == stack_buf)
        uid2_wipe(stack_buf, need);
    scratch_drop_heap(heap, need);
    return st;
}
