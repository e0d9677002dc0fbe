/* idx.c — reading IDX files, the format of MNIST and Fashion-MNIST.
 *
 * An IDX file is two zero bytes, an element-type byte, a rank byte, one big-endian u32
 * per dimension, then the elements, big-endian, row-major.  Files are read through zlib,
 * whose gzread passes raw files through unchanged, so "train-images-idx3-ubyte" and
 * "train-images-idx3-ubyte.gz" read alike.  The data must be exactly as long as the
 * header says: a short file is truncated, a longer one is not the file it claims to be.
 */
#include "nnr.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static const struct { unsigned char code; nnr_dtype dt; } idx_types[] = {
    {0x08, NNR_U8}, {0x09, NNR_I8}, {0x0B, NNR_I16}, {0x0C, NNR_I32}, {0x0D, NNR_F32},
    {0x0E, NNR_F64},
};

/* gzerror's messages start with "PATH: "; ours add the path themselves. */
static const char *strip_path(const char *path, const char *msg) {
    size_t n = strlen(path);
    return strncmp(msg, path, n) == 0 && strncmp(msg + n, ": ", 2) == 0 ? msg + n + 2 : msg;
}

/* Reads up to n bytes into buf, in pieces gzread's int count can express.  Returns the
 * bytes read, or -1 after recording a message when zlib reports an error first. */
static int64_t gz_read(const char *path, gzFile g, void *buf, int64_t n) {
    int64_t got = 0;
    while (got < n) {
        unsigned chunk = (unsigned)(n - got < (1 << 30) ? n - got : (1 << 30));
        int r = gzread(g, (char *)buf + got, chunk);
        if (r < 0) break;
        got += r;
        if (r == 0) return got;
    }
    int err;
    const char *msg = gzerror(g, &err);
    /* Z_BUF_ERROR is zlib's "unexpected end of file": a truncation, reported by count. */
    if (err != Z_OK && err != Z_BUF_ERROR) {
        if (err == Z_ERRNO) nnr_set_error("%s: read failed: %s", path, strerror(errno));
        else nnr_set_error("%s: corrupt gzip data: %s", path, strip_path(path, msg));
        return -1;
    }
    return got;
}

static int parse_type(const char *path, unsigned char code, nnr_dtype *dt) {
    for (size_t i = 0; i < sizeof idx_types / sizeof idx_types[0]; i++)
        if (idx_types[i].code == code) {
            *dt = idx_types[i].dt;
            return 0;
        }
    nnr_set_error("%s: unknown IDX element type 0x%02X", path, code);
    return -1;
}

static int read_header(const char *path, gzFile g, nnr_tensor *t) {
    unsigned char h[4], d[4 * NNR_MAXRANK];
    int64_t got = gz_read(path, g, h, 4);
    if (got < 0) return -1;
    if (got < 4 || h[0] != 0 || h[1] != 0) {
        nnr_set_error("%s: not an IDX file (it does not start with two zero bytes)", path);
        return -1;
    }
    if (parse_type(path, h[2], &t->dtype)) return -1;
    if (h[3] < 1 || h[3] > NNR_MAXRANK) {
        nnr_set_error("%s: IDX rank %d is outside 1..%d", path, h[3], NNR_MAXRANK);
        return -1;
    }
    t->rank = h[3];
    got = gz_read(path, g, d, 4 * t->rank);
    if (got < 0) return -1;
    if (got < 4 * t->rank) {
        nnr_set_error("%s: truncated: the header ends inside the dimensions", path);
        return -1;
    }
    for (int i = 0; i < t->rank; i++)
        t->shape[i] = (int64_t)d[4 * i] << 24 | d[4 * i + 1] << 16 | d[4 * i + 2] << 8 |
                      d[4 * i + 3];
    return 0;
}

/* Rewrites n big-endian elements of esize bytes in host order.  Assembling each value
 * from its bytes works whatever the host's byte order is. */
static void be_to_host(unsigned char *p, int64_t n, size_t esize) {
    for (int64_t i = 0; i < n; i++, p += esize) {
        uint64_t v = 0;
        for (size_t k = 0; k < esize; k++) v = v << 8 | p[k];
        if (esize == 2) { uint16_t x = (uint16_t)v; memcpy(p, &x, 2); }
        if (esize == 4) { uint32_t x = (uint32_t)v; memcpy(p, &x, 4); }
        if (esize == 8) memcpy(p, &v, 8);
    }
}

static int read_data(const char *path, gzFile g, nnr_tensor *t) {
    size_t esize = nnr_dtype_size(t->dtype);
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) {
        if (t->shape[i] != 0 && n > (INT64_MAX / (int64_t)esize) / t->shape[i]) {
            nnr_set_error("%s: the IDX dimensions describe more data than can be addressed", path);
            return -1;
        }
        n *= t->shape[i];
    }
    int64_t bytes = n * (int64_t)esize;
    /* The header's size is only a claim: the buffer grows as data arrives (doubling from
     * 1 MiB), so a short or corrupt file cannot make the reader allocate what it lacks. */
    int64_t cap = bytes < (1 << 20) ? bytes : (1 << 20), got = 0;
    if ((uint64_t)bytes > SIZE_MAX || !(t->data = malloc(cap ? (size_t)cap : 1))) {
        nnr_set_error("%s: out of memory for %lld bytes of data", path, (long long)bytes);
        return -1;
    }
    for (;;) {
        int64_t r = gz_read(path, g, (char *)t->data + got, cap - got);
        if (r < 0) return -1;
        got += r;
        if (got < cap || cap == bytes) break;
        int64_t ncap = cap > bytes / 2 ? bytes : 2 * cap;
        void *nd = realloc(t->data, (size_t)ncap);
        if (!nd) {
            nnr_set_error("%s: out of memory for %lld bytes of data", path, (long long)bytes);
            return -1;
        }
        t->data = nd;
        cap = ncap;
    }
    if (got < bytes) {
        nnr_set_error("%s: truncated: expected %lld bytes of data, got %lld", path,
                      (long long)bytes, (long long)got);
        return -1;
    }
    unsigned char extra;
    got = gz_read(path, g, &extra, 1);
    if (got < 0) return -1;
    if (got > 0) {
        nnr_set_error("%s: trailing data after the %lld bytes the header describes", path,
                      (long long)bytes);
        return -1;
    }
    if (esize > 1) be_to_host(t->data, n, esize);
    return 0;
}

int nnr_idx_read(const char *path, nnr_tensor *out) {
    memset(out, 0, sizeof *out);
    FILE *f = nnr_open_input(path);      /* refuses a directory by name */
    if (!f) return -1;
    fclose(f);
    errno = 0;
    gzFile g = gzopen(path, "rb");
    if (!g) {
        nnr_set_error("%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
        return -1;
    }
    int rc = read_header(path, g, out);
    if (rc == 0) rc = read_data(path, g, out);
    gzclose(g);
    if (rc) nnr_tensor_free(out);
    return rc;
}
