/* A main() for fuzz_decrypt.c where libFuzzer is not available (a cross build run under qemu-aarch64, see
 * scripts/arm64_check.sh): runs every input file given (directories are read one level deep), then
 * MUTATIONS random mutations of each (bytes overwritten, bits flipped, truncated, extended; a fixed seed so
 * a run is reproducible). Any oracle failure aborts, as under libFuzzer.
 *
 *   fuzz_replay [-mutations N] [-seed S] FILE_OR_DIR...
 *
 * The failing input of a mutation run is written to ./replay-crash before it runs, so it can be replayed. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_MAX_LEN 4096

static uint64_t rng(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static size_t mutate(uint64_t *s, uint8_t *buf, size_t n)
{
    int edits = 1 + (int)(rng(s) % 4);
    for (int e = 0; e < edits; e++) {
        uint64_t r = rng(s);
        switch (r % 4) {
        case 0: /* overwrite a byte */
            if (n > 0)
                buf[(r >> 8) % n] = (uint8_t)(r >> 40);
            break;
        case 1: /* flip a bit */
            if (n > 0)
                buf[(r >> 8) % n] ^= (uint8_t)(1u << ((r >> 40) % 8));
            break;
        case 2: /* truncate */
            if (n > 0)
                n = (size_t)((r >> 8) % n);
            break;
        default: /* extend with random bytes */
            for (size_t k = (size_t)((r >> 8) % 16); k > 0 && n < REPLAY_MAX_LEN; k--)
                buf[n++] = (uint8_t)rng(s);
            break;
        }
    }
    return n;
}

static long runs = 0;

static void run_file(const char *path, long mutations, uint64_t *s)
{
    static uint8_t orig[REPLAY_MAX_LEN], buf[REPLAY_MAX_LEN];
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return;
    size_t n = fread(orig, 1, sizeof orig, f);
    fclose(f);
    LLVMFuzzerTestOneInput(orig, n);
    runs++;
    for (long m = 0; m < mutations; m++) {
        memcpy(buf, orig, n);
        size_t k = mutate(s, buf, n);
        FILE *c = fopen("replay-crash", "wb");
        if (c != NULL) {
            fwrite(buf, 1, k, c);
            fclose(c);
        }
        LLVMFuzzerTestOneInput(buf, k);
        runs++;
    }
}

int main(int argc, char **argv)
{
    long mutations = 0;
    uint64_t seed = 1;
    int inputs = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-mutations") == 0 && i + 1 < argc) {
            mutations = atol(argv[++i]);
            continue;
        }
        if (strcmp(argv[i], "-seed") == 0 && i + 1 < argc) {
            seed = strtoull(argv[++i], NULL, 0);
            continue;
        }
        struct stat st;
        if (stat(argv[i], &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            DIR *d = opendir(argv[i]);
            struct dirent *e;
            while (d != NULL && (e = readdir(d)) != NULL) {
                if (e->d_name[0] == '.')
                    continue;
                char path[4096];
                snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
                run_file(path, mutations, &seed);
                inputs++;
            }
            if (d != NULL)
                closedir(d);
        } else {
            run_file(argv[i], mutations, &seed);
            inputs++;
        }
    }
    remove("replay-crash");
    printf("fuzz_replay: %d inputs, %ld runs, no oracle failed\n", inputs, runs);
    return inputs > 0 ? 0 : 1;
}
