/* Placeholder for the NEON base64 codecs (interface: uid2_b64_neon.h). uid2_b64_neon_built() says 0, so
 * uid2_b64fast.c keeps its scalar code; the functions forward to the exact codecs in case one is called. */
#include "uid2_b64_neon.h"
#include "uid2_base64.h"

int uid2_b64_neon_built(void)
{
    return 0;
}

int uid2_b64_neon_decode(const uint8_t *in, size_t body, uint8_t *out, size_t dec, int url)
{
    (void)in, (void)body, (void)out, (void)dec, (void)url;
    return -1; /* declined: the caller takes its scalar decoder */
}

size_t uid2_b64_neon_encode(const uint8_t *in, size_t len, char *out, int url)
{
    return url ? uid2_b64url_encode_nopad(in, len, out) : uid2_b64_encode(in, len, out);
}

void uid2_b64_neon_encode32(const uint8_t *in, char *out)
{
    uid2_b64_encode(in, 32, out);
}
