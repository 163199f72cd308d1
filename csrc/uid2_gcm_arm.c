/* Placeholder for the ARMv8 AES-GCM / AES-CBC kernels (interface: uid2_gcm_arm.h). Until they are written,
 * uid2_gcm_arm_built() says 0, so uid2_kernels.c never selects the family and an aarch64 process uses the
 * pure-Python engine; every function refuses. */
#include "uid2_gcm_arm.h"

int uid2_gcm_arm_built(void)
{
    return 0;
}

int uid2_gcm_arm_key_init(uid2_gcm_arm_key *k, const uint8_t *key, size_t key_len)
{
    (void)key;
    (void)key_len;
    uid2_secure_zero(k, sizeof *k);
    return -1;
}

void uid2_gcm_arm_key_wipe(uid2_gcm_arm_key *k)
{
    uid2_secure_zero(k, sizeof *k);
}

int uid2_gcm_arm_decrypt(const uid2_gcm_arm_key *k, const uint8_t nonce[12], const uint8_t *ct, size_t ct_len,
                         const uint8_t tag[16], uint8_t *out)
{
    return uid2_gcm_arm_decrypt_ex(k, nonce, NULL, 0, ct, ct_len, tag, 16, out);
}

int uid2_gcm_arm_encrypt(const uid2_gcm_arm_key *k, const uint8_t nonce[12], const uint8_t *pt, size_t len,
                         uint8_t *out, uint8_t tag[16])
{
    return uid2_gcm_arm_encrypt_ex(k, nonce, NULL, 0, pt, len, out, tag);
}

int uid2_gcm_arm_decrypt_ex(const uid2_gcm_arm_key *k, const uint8_t nonce[12], const uint8_t *aad,
                            size_t aad_len, const uint8_t *ct, size_t ct_len, const uint8_t *tag, size_t tag_len,
                            uint8_t *out)
{
    (void)k, (void)nonce, (void)aad, (void)aad_len, (void)tag, (void)tag_len;
    if (out != ct && (uint64_t)ct_len <= UID2_GCM_ARM_MAX_LEN)
        uid2_secure_zero(out, ct_len);
    return -1;
}

int uid2_gcm_arm_encrypt_ex(const uid2_gcm_arm_key *k, const uint8_t nonce[12], const uint8_t *aad,
                            size_t aad_len, const uint8_t *pt, size_t len, uint8_t *out, uint8_t tag[16])
{
    (void)k, (void)nonce, (void)aad, (void)aad_len, (void)pt, (void)len, (void)out, (void)tag;
    return -1;
}

int uid2_cbc_arm_decrypt(const uid2_gcm_arm_key *k, const uint8_t iv[16], const uint8_t *ct, size_t len,
                         uint8_t *out)
{
    (void)k, (void)iv, (void)ct, (void)len, (void)out;
    return -1;
}
