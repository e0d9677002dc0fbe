/* fuzz_util.h — what the file-based fuzz targets share: the fuzzer's bytes written to a
 * file of this process's own (in /dev/shm when it exists, else /tmp), because the runtime's
 * readers take paths.  Included by fuzz_safetensors.c, fuzz_idx.c and fuzz_csv.c. */
#ifndef NNC_FUZZ_UTIL_H
#define NNC_FUZZ_UTIL_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Returns a path holding exactly data[0..size), or NULL; the same path every call of a
 * process with the same tag.  The file is removed at exit. */
static char fuzz_path_buf[3][256];
static int  fuzz_path_n;
static void fuzz_cleanup(void) {
    for (int i = 0; i < fuzz_path_n; i++) unlink(fuzz_path_buf[i]);
}
static const char *fuzz_file(int slot, const char *tag, const uint8_t *data, size_t size) {
    char *p = fuzz_path_buf[slot];
    if (!p[0]) {
        const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(p, sizeof fuzz_path_buf[slot], "%s/nnc-fuzz-%ld-%s", dir, (long)getpid(), tag);
        if (fuzz_path_n == 0) atexit(fuzz_cleanup);
        if (slot + 1 > fuzz_path_n) fuzz_path_n = slot + 1;
    }
    FILE *f = fopen(p, "wb");
    if (!f) return NULL;
    if (size && fwrite(data, 1, size, f) != size) { fclose(f); return NULL; }
    if (fclose(f) != 0) return NULL;
    return p;
}
#endif
