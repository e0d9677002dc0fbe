/* test_runtime.c — CUnit tests of the runtime's model-independent parts.
 *
 * Covers the safetensors reader and atomic writer (round trips, every corrupt-file case
 * the reader must name), IDX files raw and gzip-compressed (and the real Fashion-MNIST
 * labels Debian ships), CSV, the random number generator, the initializers, the
 * learning-rate schedules, the sparse products' limit, the products cut into blocks for
 * nnc's threads (the same bits at 1-3 threads), and model init/save/load through a
 * hand-written two-parameter model.  Every file the tests write lives in one mkdtemp directory under /tmp that is
 * removed at the end.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <cblas.h>   /* before nnr.h, which declares nnr_sgemm when it is there */

#include "nnr.h"

#include <CUnit/Basic.h>
#include <dirent.h>
#include <ftw.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

static char tmpdir[] = "/tmp/nnr_test_XXXXXX";

/* A path inside the temporary directory; four rotating buffers so a test can hold a few. */
static const char *tpath(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void write_text(const char *path, const char *text) {
    write_bytes(path, text, strlen(text));
}

/* Reads a whole file; the caller frees. */
static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    rewind(f);
    unsigned char *b = malloc(*n + 1);
    if (fread(b, 1, *n, f) != *n) *n = 0;
    fclose(f);
    return b;
}

/* Entries of the temporary directory whose name contains `part`. */
static int count_files(const char *part) {
    DIR *d = opendir(tmpdir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += strstr(e->d_name, part) != NULL;
    if (d) closedir(d);
    return n;
}

/* The last call failed, and said which file and what is wrong. */
#define ASSERT_FAILS(rc, path, what)                                                    \
    do {                                                                                \
        CU_ASSERT_EQUAL((rc), -1);                                                      \
        CU_ASSERT_PTR_NOT_NULL(strstr(nnr_error(), (path)));                            \
        CU_ASSERT_PTR_NOT_NULL(strstr(nnr_error(), (what)));                            \
        if (!strstr(nnr_error(), (path)) || !strstr(nnr_error(), (what)))               \
            fprintf(stderr, "\n    expected '%s' in: %s\n", (what), nnr_error());       \
    } while (0)

/* ---- safetensors ---------------------------------------------------------------------- */

/* A safetensors file with header length hlen, the given header text, and ndata bytes of
 * data 0, 1, 2, ... */
static void write_st_file(const char *path, uint64_t hlen, const char *header, size_t ndata) {
    size_t hl = strlen(header);
    unsigned char *b = calloc(8 + hl + ndata + 1, 1);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(hlen >> (8 * i));
    memcpy(b + 8, header, hl);
    for (size_t i = 0; i < ndata; i++) b[8 + hl + i] = (unsigned char)i;
    write_bytes(path, b, 8 + hl + ndata);
    free(b);
}

static void write_st(const char *path, const char *header, size_t ndata) {
    write_st_file(path, strlen(header), header, ndata);
}

static nnr_tensor make_tensor(const char *name, nnr_dtype dt, int rank, const int64_t *shape) {
    nnr_tensor t = {.name = (char *)name, .dtype = dt, .rank = rank};
    for (int i = 0; i < rank; i++) t.shape[i] = shape[i];
    size_t bytes = (size_t)nnr_tensor_numel(&t) * nnr_dtype_size(dt);
    t.data = malloc(bytes + 1);
    for (size_t i = 0; i < bytes; i++) ((unsigned char *)t.data)[i] = (unsigned char)(i * 7 + 3);
    return t;
}

static void test_st_roundtrip(void) {
    const char *path = tpath("round.safetensors");
    nnr_tensor ts[] = {
        make_tensor("w", NNR_F32, 2, (int64_t[]){3, 4}),
        make_tensor("d", NNR_F64, 1, (int64_t[]){2}),
        make_tensor("i32", NNR_I32, 1, (int64_t[]){5}),
        make_tensor("i64", NNR_I64, 2, (int64_t[]){2, 2}),
        make_tensor("u8", NNR_U8, 1, (int64_t[]){7}),
        make_tensor("i8", NNR_I8, 3, (int64_t[]){1, 1, 3}),
        make_tensor("i16", NNR_I16, 2, (int64_t[]){2, 3}),
        make_tensor("loss", NNR_F32, 0, NULL),
        make_tensor("empty", NNR_F32, 2, (int64_t[]){0, 3}),
    };
    int n = (int)(sizeof ts / sizeof ts[0]);
    const char *meta[] = {"format", "pt", "nnc_model", "tiny"};
    CU_ASSERT_EQUAL_FATAL(nnr_st_write(path, ts, n, meta, 2), 0);

    nnr_tensors got;
    CU_ASSERT_EQUAL_FATAL(nnr_st_read(path, &got), 0);
    CU_ASSERT_EQUAL_FATAL(got.n, n);
    CU_ASSERT_STRING_EQUAL(got.metadata, "{\"format\":\"pt\",\"nnc_model\":\"tiny\"}");
    for (int i = 0; i < n; i++) {           /* file order is the order written */
        const nnr_tensor *t = nnr_tensors_find(&got, ts[i].name);
        CU_ASSERT_PTR_EQUAL(t, &got.t[i]);
        CU_ASSERT_EQUAL(t->dtype, ts[i].dtype);
        CU_ASSERT_EQUAL(t->rank, ts[i].rank);
        CU_ASSERT_EQUAL(memcmp(t->shape, ts[i].shape, (size_t)t->rank * sizeof *t->shape), 0);
        size_t bytes = (size_t)nnr_tensor_numel(t) * nnr_dtype_size(t->dtype);
        CU_ASSERT_EQUAL(memcmp(t->data, ts[i].data, bytes), 0);
    }
    CU_ASSERT_EQUAL(nnr_tensor_numel(nnr_tensors_find(&got, "loss")), 1);
    CU_ASSERT_EQUAL(nnr_tensor_numel(nnr_tensors_find(&got, "empty")), 0);
    CU_ASSERT_PTR_NULL(nnr_tensors_find(&got, "nope"));
    nnr_tensors_free(&got);
    CU_ASSERT_EQUAL(got.n, 0);

    /* The layout Python's safetensors expects: LE length, 8-aligned JSON, then the data
     * of the first tensor right after the header. */
    size_t size;
    unsigned char *b = slurp(path, &size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | b[i];
    CU_ASSERT_EQUAL(hlen % 8, 0);
    CU_ASSERT_EQUAL(b[8], '{');
    CU_ASSERT_EQUAL(memcmp(b + 8 + hlen, ts[0].data, 48), 0);
    free(b);
    for (int i = 0; i < n; i++) free(ts[i].data);
}

/* A file as Python's st_write (json.dumps) writes it: spaces after separators, padding. */
static void test_st_python_layout(void) {
    const char *path = tpath("py.safetensors");
    const char *h = "{\"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [16, 24]}, "
                    "\"w\": {\"dtype\": \"F32\", \"shape\": [2, 2], \"data_offsets\": [0, 16]}}";
    size_t hl = strlen(h), padded = (hl + 7) / 8 * 8;
    float vals[6] = {1, -2, 3.5f, 4, 0.25f, -8};
    unsigned char *b = malloc(8 + padded + sizeof vals);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memset(b + 8, ' ', padded);
    memcpy(b + 8, h, hl);
    memcpy(b + 8 + padded, vals, sizeof vals);
    write_bytes(path, b, 8 + padded + sizeof vals);
    free(b);

    nnr_tensors got;
    CU_ASSERT_EQUAL_FATAL(nnr_st_read(path, &got), 0);
    CU_ASSERT_EQUAL(got.n, 2);
    CU_ASSERT_PTR_NULL(got.metadata);
    const nnr_tensor *w = nnr_tensors_find(&got, "w"), *bias = nnr_tensors_find(&got, "b");
    CU_ASSERT_FATAL(w && bias);
    CU_ASSERT_EQUAL(w->shape[1], 2);
    CU_ASSERT_EQUAL(((float *)w->data)[2], 3.5f);
    CU_ASSERT_EQUAL(((float *)bias->data)[1], -8.0f);
    nnr_tensors_free(&got);
}

static void test_st_atomic(void) {
    const char *path = tpath("ckpt.safetensors");
    nnr_tensor a = make_tensor("a", NNR_F32, 1, (int64_t[]){4});
    nnr_tensor b = make_tensor("b", NNR_I64, 1, (int64_t[]){3});
    CU_ASSERT_EQUAL(nnr_st_write(path, &a, 1, NULL, 0), 0);
    CU_ASSERT_EQUAL(nnr_st_write(path, &b, 1, NULL, 0), 0);    /* replaces the old file */
    CU_ASSERT_EQUAL(count_files(".tmp."), 0);

    nnr_tensors got;
    CU_ASSERT_EQUAL_FATAL(nnr_st_read(path, &got), 0);
    CU_ASSERT_EQUAL(got.n, 1);
    CU_ASSERT_STRING_EQUAL(got.t[0].name, "b");
    CU_ASSERT_EQUAL(got.t[0].dtype, NNR_I64);
    nnr_tensors_free(&got);

    /* A failed write (two tensors named alike) keeps the old file and leaves no temp. */
    nnr_tensor twice[] = {a, a};
    ASSERT_FAILS(nnr_st_write(path, twice, 2, NULL, 0), path, "used twice");
    nnr_tensor neg = a;
    neg.shape[0] = -1;
    ASSERT_FAILS(nnr_st_write(path, &neg, 1, NULL, 0), path, "negative");
    CU_ASSERT_EQUAL(count_files(".tmp."), 0);
    CU_ASSERT_EQUAL_FATAL(nnr_st_read(path, &got), 0);
    CU_ASSERT_STRING_EQUAL(got.t[0].name, "b");
    nnr_tensors_free(&got);

    const char *nodir = "/nonexistent-nnr-dir/x.safetensors";
    ASSERT_FAILS(nnr_st_write(nodir, &a, 1, NULL, 0), nodir, "cannot create");
    free(a.data);
    free(b.data);
}

/* PATH.tmp.PID files: a dead writer's is removed by the next write to PATH; a live
 * process's, another PATH's and a name that is no PID stay. */
static void test_st_stale_temps(void) {
    const char *path = tpath("st.safetensors");
    pid_t dead = fork();
    CU_ASSERT_FATAL(dead >= 0);
    if (dead == 0) _exit(0);
    CU_ASSERT_EQUAL_FATAL(waitpid(dead, NULL, 0), dead);
    char stale[600], live[600], other[600], word[600];
    snprintf(stale, sizeof stale, "%s.tmp.%ld", path, (long)dead);
    snprintf(live, sizeof live, "%s.tmp.%ld", path, (long)getppid());
    snprintf(other, sizeof other, "%s.tmp.%ld", tpath("other.safetensors"), (long)dead);
    snprintf(word, sizeof word, "%s.tmp.x%ld", path, (long)dead);
    const char *planted[] = {stale, live, other, word};
    for (int i = 0; i < 4; i++) write_text(planted[i], "half a file");
    nnr_tensor a = make_tensor("a", NNR_F32, 1, (int64_t[]){4});
    CU_ASSERT_EQUAL(nnr_st_write(path, &a, 1, NULL, 0), 0);
    CU_ASSERT_NOT_EQUAL(access(stale, F_OK), 0);
    for (int i = 1; i < 4; i++) CU_ASSERT_EQUAL(access(planted[i], F_OK), 0);
    for (int i = 1; i < 4; i++) remove(planted[i]);
    free(a.data);
}

typedef struct corrupt_case {
    const char *file, *header;
    size_t      ndata;
    const char *expect;
} corrupt_case;

static const corrupt_case corrupt[] = {
    {"badjson.st", "{\"x\": {\"dtype\": ", 0, "bad JSON header"},
    {"array.st", "[1, 2]", 0, "not a JSON object"},
    {"dup.st", "{\"x\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}, "
               "\"x\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
     "duplicate"},
    {"dtype.st", "{\"x\": {\"dtype\": \"BF16\", \"shape\": [2], \"data_offsets\": [0, 4]}}", 4,
     "tensor 'x': unsupported dtype 'BF16'"},
    {"nodtype.st", "{\"x\": {\"shape\": [2], \"data_offsets\": [0, 8]}}", 8,
     "\"dtype\" is missing"},
    {"size.st", "{\"x\": {\"dtype\": \"F32\", \"shape\": [3, 4], \"data_offsets\": [0, 40]}}", 40,
     "tensor 'x': data_offsets [0, 40] do not match shape [3, 4] of F32 (48 bytes)"},
    {"range.st", "{\"x\": {\"dtype\": \"F32\", \"shape\": [3, 4], \"data_offsets\": [0, 48]}}", 40,
     "tensor 'x': data_offsets [0, 48] are out of range"},
    {"backwards.st", "{\"x\": {\"dtype\": \"U8\", \"shape\": [0], \"data_offsets\": [8, 0]}}", 8,
     "out of range"},
    {"overlap.st", "{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}, "
                   "\"b\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [8, 24]}}", 24,
     "overlap tensor 'a'"},
    {"gap.st", "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, "
               "\"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [16, 24]}}", 24,
     "bytes from 8 of the 24-byte data region belong to no tensor"},
    {"tail.st", "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 16,
     "belong to no tensor"},
    {"rank.st", "{\"x\": {\"dtype\": \"U8\", \"shape\": [1,1,1,1,1,1,1,1,1], "
                "\"data_offsets\": [0, 1]}}", 1, "rank 9"},
    {"negdim.st", "{\"x\": {\"dtype\": \"U8\", \"shape\": [2, -1], \"data_offsets\": [0, 0]}}", 0,
     "negative"},
    {"realdim.st", "{\"x\": {\"dtype\": \"U8\", \"shape\": [2.0], \"data_offsets\": [0, 2]}}", 2,
     "not an integer"},
    {"overflow.st", "{\"x\": {\"dtype\": \"F64\", \"shape\": [4294967296, 4294967296, 16], "
                    "\"data_offsets\": [0, 8]}}", 8, "too large"},
    {"offsets.st", "{\"x\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [0]}}", 2,
     "not a pair of integers"},
    {"entry.st", "{\"x\": [1, 2]}", 0, "not an object"},
    {"meta.st", "{\"__metadata__\": {\"a\": 1}}", 0,
     "\"__metadata__\" is not an object of strings"},
};

static void test_st_corrupt(void) {
    nnr_tensors got;
    for (size_t i = 0; i < sizeof corrupt / sizeof corrupt[0]; i++) {
        const char *path = tpath(corrupt[i].file);
        write_st(path, corrupt[i].header, corrupt[i].ndata);
        ASSERT_FAILS(nnr_st_read(path, &got), path, corrupt[i].expect);
        CU_ASSERT_EQUAL(got.n, 0);
        CU_ASSERT_PTR_NULL(got.t);
    }
    const char *path = tpath("data.safetensors");
    write_st_file(path, 9999999, "{}", 1224);
    ASSERT_FAILS(nnr_st_read(path, &got), path,
                 "header length 9999999 is past the end of the file (1234 bytes)");
    write_bytes(path, "abc", 3);
    ASSERT_FAILS(nnr_st_read(path, &got), path, "too short");
    ASSERT_FAILS(nnr_st_read(tpath("absent.st"), &got), "absent.st", "cannot open");
}

/* ---- IDX -------------------------------------------------------------------------------- */

/* An IDX file of type `type` with big-endian payload `data`; gzip-compressed if gz. */
static void write_idx(const char *path, int gz, unsigned char type, int rank,
                      const uint32_t *dims, const void *data, size_t nbytes) {
    gzFile g = gzopen(path, gz ? "wb" : "wbT");   /* T: zlib writes plain bytes */
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    unsigned char h[4 + 4 * NNR_MAXRANK] = {0, 0, type, (unsigned char)rank};
    for (int i = 0; i < rank; i++)
        for (int k = 0; k < 4; k++) h[4 + 4 * i + k] = (unsigned char)(dims[i] >> (24 - 8 * k));
    gzwrite(g, h, 4 + 4 * (unsigned)rank);
    if (nbytes) gzwrite(g, data, (unsigned)nbytes);
    gzclose(g);
}

static void test_idx_roundtrip(void) {
    nnr_tensor t;
    const unsigned char u8[12] = {0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255};
    for (int gz = 0; gz < 2; gz++) {
        const char *path = tpath(gz ? "u8.idx.gz" : "u8.idx");
        write_idx(path, gz, 0x08, 3, (uint32_t[]){3, 2, 2}, u8, sizeof u8);
        CU_ASSERT_EQUAL_FATAL(nnr_idx_read(path, &t), 0);
        CU_ASSERT_EQUAL(t.dtype, NNR_U8);
        CU_ASSERT_EQUAL(t.rank, 3);
        CU_ASSERT(t.shape[0] == 3 && t.shape[1] == 2 && t.shape[2] == 2);
        CU_ASSERT_EQUAL(memcmp(t.data, u8, sizeof u8), 0);
        nnr_tensor_free(&t);
    }
    /* Multi-byte types arrive big-endian and must come out in host order. */
    const unsigned char i16[] = {0x01, 0x02, 0xFF, 0xFE, 0x80, 0x00};
    write_idx(tpath("i16.idx.gz"), 1, 0x0B, 1, (uint32_t[]){3}, i16, sizeof i16);
    CU_ASSERT_EQUAL_FATAL(nnr_idx_read(tpath("i16.idx.gz"), &t), 0);
    CU_ASSERT_EQUAL(t.dtype, NNR_I16);
    int16_t *s = t.data;
    CU_ASSERT(s[0] == 0x0102 && s[1] == -2 && s[2] == INT16_MIN);
    nnr_tensor_free(&t);

    const unsigned char i32[] = {0x00, 0x00, 0x01, 0x00, 0xFF, 0xFF, 0xFF, 0xFD};
    write_idx(tpath("i32.idx"), 0, 0x0C, 2, (uint32_t[]){1, 2}, i32, sizeof i32);
    CU_ASSERT_EQUAL_FATAL(nnr_idx_read(tpath("i32.idx"), &t), 0);
    CU_ASSERT(((int32_t *)t.data)[0] == 256 && ((int32_t *)t.data)[1] == -3);
    nnr_tensor_free(&t);

    const unsigned char f32[] = {0x3F, 0xC0, 0x00, 0x00, 0xC0, 0x20, 0x00, 0x00}; /* 1.5, -2.5 */
    write_idx(tpath("f32.idx.gz"), 1, 0x0D, 1, (uint32_t[]){2}, f32, sizeof f32);
    CU_ASSERT_EQUAL_FATAL(nnr_idx_read(tpath("f32.idx.gz"), &t), 0);
    CU_ASSERT(t.dtype == NNR_F32 && ((float *)t.data)[0] == 1.5f && ((float *)t.data)[1] == -2.5f);
    nnr_tensor_free(&t);

    const unsigned char f64[] = {0x40, 0x09, 0x21, 0xFB, 0x54, 0x44, 0x2D, 0x18};  /* pi */
    write_idx(tpath("f64.idx"), 0, 0x0E, 1, (uint32_t[]){1}, f64, sizeof f64);
    CU_ASSERT_EQUAL_FATAL(nnr_idx_read(tpath("f64.idx"), &t), 0);
    CU_ASSERT(t.dtype == NNR_F64 && ((double *)t.data)[0] == 3.141592653589793);
    nnr_tensor_free(&t);

    const signed char i8[] = {-1, 5};
    write_idx(tpath("i8.idx"), 0, 0x09, 1, (uint32_t[]){2}, i8, sizeof i8);
    CU_ASSERT_EQUAL_FATAL(nnr_idx_read(tpath("i8.idx"), &t), 0);
    CU_ASSERT(t.dtype == NNR_I8 && ((int8_t *)t.data)[0] == -1);
    nnr_tensor_free(&t);
}

static void test_idx_errors(void) {
    nnr_tensor t;
    unsigned char d[64] = {0};
    const char *p = tpath("short.idx.gz");
    write_idx(p, 1, 0x08, 2, (uint32_t[]){3, 4}, d, 5);
    ASSERT_FAILS(nnr_idx_read(p, &t), p, "truncated: expected 12 bytes of data, got 5");
    CU_ASSERT_PTR_NULL(t.data);

    p = tpath("long.idx");
    write_idx(p, 0, 0x08, 1, (uint32_t[]){4}, d, 6);
    ASSERT_FAILS(nnr_idx_read(p, &t), p, "trailing data");

    p = tpath("magic.idx");
    write_bytes(p, "\x01\x00\x08\x01\x00\x00\x00\x01\x07", 9);
    ASSERT_FAILS(nnr_idx_read(p, &t), p, "not an IDX file");

    p = tpath("type.idx");
    write_idx(p, 0, 0x07, 1, (uint32_t[]){1}, d, 1);
    ASSERT_FAILS(nnr_idx_read(p, &t), p, "unknown IDX element type 0x07");

    p = tpath("rank0.idx");
    write_idx(p, 0, 0x08, 0, NULL, d, 1);
    ASSERT_FAILS(nnr_idx_read(p, &t), p, "rank 0");

    p = tpath("dims.idx");
    write_bytes(p, "\x00\x00\x08\x02\x00\x00\x00\x01\x00\x00", 10);
    ASSERT_FAILS(nnr_idx_read(p, &t), p, "inside the dimensions");

    p = tpath("huge.idx");
    write_idx(p, 0, 0x0E, 3, (uint32_t[]){0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, d, 8);
    ASSERT_FAILS(nnr_idx_read(p, &t), p, "more data than can be addressed");

    /* A gzip stream cut short mid-data: zlib's "unexpected end of file" is a truncation. */
    unsigned char big[4000];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (unsigned char)(i * 131 + (i >> 5));
    p = tpath("cut.idx.gz");
    write_idx(p, 1, 0x08, 1, (uint32_t[]){sizeof big}, big, sizeof big);
    size_t n;
    unsigned char *whole = slurp(p, &n);
    write_bytes(p, whole, n / 2);
    free(whole);
    ASSERT_FAILS(nnr_idx_read(p, &t), p, "truncated: expected 4000 bytes of data");

    /* A damaged gzip stream (here its CRC) is reported as such, not as a short file. */
    write_idx(p, 1, 0x08, 1, (uint32_t[]){sizeof big}, big, sizeof big);
    whole = slurp(p, &n);
    whole[n - 8] ^= 0xFF;
    write_bytes(p, whole, n);
    free(whole);
    ASSERT_FAILS(nnr_idx_read(p, &t), p, "corrupt gzip data: incorrect data check");

    ASSERT_FAILS(nnr_idx_read(tpath("absent.idx"), &t), "absent.idx", "cannot open");
}

static void test_idx_fashion(void) {
    const char *path = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
    nnr_tensor t;
    CU_ASSERT_EQUAL_FATAL(nnr_idx_read(path, &t), 0);
    CU_ASSERT_EQUAL(t.dtype, NNR_U8);
    CU_ASSERT_EQUAL(t.rank, 1);
    CU_ASSERT_EQUAL(t.shape[0], 10000);
    int below = 1, seen[10] = {0};
    for (int i = 0; i < 10000; i++) {
        unsigned char y = ((unsigned char *)t.data)[i];
        below &= y < 10;
        if (y < 10) seen[y]++;
    }
    CU_ASSERT(below);
    for (int k = 0; k < 10; k++) CU_ASSERT_EQUAL(seen[k], 1000);   /* the test set is balanced */
    nnr_tensor_free(&t);
}

/* ---- CSV -------------------------------------------------------------------------------- */

static void test_csv_read(void) {
    nnr_tensor t;
    const char *p = tpath("plain.csv");
    write_text(p, "1,2,3\r\n4.5, -6 ,7e-1\r\n\n");
    CU_ASSERT_EQUAL_FATAL(nnr_csv_read(p, &t), 0);
    CU_ASSERT(t.dtype == NNR_F32 && t.rank == 2 && t.shape[0] == 2 && t.shape[1] == 3);
    float *v = t.data;
    CU_ASSERT(v[0] == 1 && v[2] == 3 && v[3] == 4.5f && v[4] == -6 && v[5] == 0.7f);
    nnr_tensor_free(&t);

    p = tpath("header.csv");
    write_text(p, "x1, x2,label\n0.5,1,0\n2,3,1\n-1,0,2");
    CU_ASSERT_EQUAL_FATAL(nnr_csv_read(p, &t), 0);
    CU_ASSERT(t.shape[0] == 3 && t.shape[1] == 3);
    v = t.data;
    CU_ASSERT(v[0] == 0.5f && v[8] == 2);
    nnr_tensor_free(&t);

    p = tpath("bom.csv");                   /* spreadsheets start UTF-8 files with a BOM */
    write_text(p, "\xEF\xBB\xBF" "7,8\n");
    CU_ASSERT_EQUAL_FATAL(nnr_csv_read(p, &t), 0);
    CU_ASSERT(t.shape[0] == 1 && t.shape[1] == 2 && ((float *)t.data)[0] == 7);
    nnr_tensor_free(&t);
}

static void test_csv_errors(void) {
    nnr_tensor t;
    const char *p = tpath("data.csv");
    write_text(p, "a,b,c,d,e\n1,2,3,4,5\n1,2,3,4\n");
    ASSERT_FAILS(nnr_csv_read(p, &t), p, "data.csv:3: expected 5 fields, found 4");
    CU_ASSERT_PTR_NULL(t.data);
    write_text(p, "1,2\n3,4,5\n");
    ASSERT_FAILS(nnr_csv_read(p, &t), p, "data.csv:2: expected 2 fields, found 3");
    write_text(p, "x,y\n1,2\n3,oops\n");
    ASSERT_FAILS(nnr_csv_read(p, &t), p, "data.csv:3: field 2 'oops' is not a number");
    write_text(p, "1,,2\n");
    ASSERT_FAILS(nnr_csv_read(p, &t), p, "data.csv:1: field 2 '' is empty");
    write_text(p, "1,2\n\n3,4\n");
    ASSERT_FAILS(nnr_csv_read(p, &t), p, "data.csv:2: empty line");
    write_text(p, "1,1e999\n");
    ASSERT_FAILS(nnr_csv_read(p, &t), p, "out of range");
    write_text(p, "x,y\n");
    ASSERT_FAILS(nnr_csv_read(p, &t), p, "no data rows");
    write_text(p, "");
    ASSERT_FAILS(nnr_csv_read(p, &t), p, "no data rows");
    ASSERT_FAILS(nnr_csv_read(tpath("absent.csv"), &t), "absent.csv", "cannot open");
}

/* Hostile CSV files (issue 22): each case was silently misread or misreported before. */
static void test_csv_hostile(void) {
    nnr_tensor t;
    const char *p = tpath("hostile.csv");
    /* a corrupted first row is not a header */
    write_text(p, "1,2,x3,4\n1,2,3,4\n");
    ASSERT_FAILS(nnr_csv_read(p, &t), p, "hostile.csv:1: field 3 'x3' is not a number, but "
                 "field 1 '1' is: a first row is a header only when none of its fields is a number");
    write_text(p, "\"a\",,c\n1,2,3\n");            /* names and empty names: a header */
    CU_ASSERT_EQUAL_FATAL(nnr_csv_read(p, &t), 0);
    CU_ASSERT(t.shape[0] == 1 && t.shape[1] == 3);
    nnr_tensor_free(&t);
    char **names;
    CU_ASSERT_EQUAL_FATAL(nnr_csv_read_named(p, &t, &names), 0);
    CU_ASSERT(names && strcmp(names[0], "a") == 0 && strcmp(names[1], "") == 0 &&
              strcmp(names[2], "c") == 0 && names[3] == NULL);
    free(names);
    nnr_tensor_free(&t);
    /* CR-only line ends, as pandas reads them */
    write_text(p, "x,y\r1,2\r3,4\r");
    CU_ASSERT_EQUAL_FATAL(nnr_csv_read(p, &t), 0);
    CU_ASSERT(t.shape[0] == 2 && t.shape[1] == 2 && ((float *)t.data)[3] == 4);
    nnr_tensor_free(&t);
    write_text(p, "1,2\r3,oops\r");
    ASSERT_FAILS(nnr_csv_read(p, &t), p, "hostile.csv:2: field 2 'oops' is not a number");
    /* UTF-16, with and without a byte order mark */
    write_bytes(p, "\xFF\xFE" "1\0,\0" "2\0\n\0", 10);
    ASSERT_FAILS(nnr_csv_read(p, &t), p, "hostile.csv: the file is UTF-16 text (byte order mark "
                 "FF FE); save it as UTF-8");
    write_bytes(p, "\xFE\xFF" "\0" "1", 4);
    ASSERT_FAILS(nnr_csv_read(p, &t), p, "(byte order mark FE FF)");
    write_bytes(p, "1,2\n3\0,\0", 9);
    ASSERT_FAILS(nnr_csv_read(p, &t), p, "hostile.csv:2: a NUL byte (offset 5): the file looks "
                 "like UTF-16");
    /* only finite decimal numbers */
    write_text(p, "1,0x10\n");
    ASSERT_FAILS(nnr_csv_read(p, &t), p, "hostile.csv:1: field 2 '0x10' is hexadecimal; only "
                 "decimal numbers are read");
    write_text(p, "a,b\n1,inf\n");
    ASSERT_FAILS(nnr_csv_read(p, &t), p, "hostile.csv:2: field 2 'inf' is not finite");
    write_text(p, "a,b\n-NaN,1\n");
    ASSERT_FAILS(nnr_csv_read(p, &t), p, "hostile.csv:2: field 1 '-NaN' is not finite");
    write_text(p, "a,b\n1,-1e999\n");
    ASSERT_FAILS(nnr_csv_read(p, &t), p, "hostile.csv:2: field 2 '-1e999' is out of range for F32");
    write_text(p, "a,b\n1, \n");
    ASSERT_FAILS(nnr_csv_read(p, &t), p, "hostile.csv:2: field 2 '' is empty");
    write_text(p, "a,b\n1,1e\n");
    ASSERT_FAILS(nnr_csv_read(p, &t), p, "hostile.csv:2: field 2 '1e' is not a number");
    write_text(p, "a,b\n.5,-7.\n");
    CU_ASSERT_EQUAL_FATAL(nnr_csv_read(p, &t), 0);
    CU_ASSERT(((float *)t.data)[0] == 0.5f && ((float *)t.data)[1] == -7);
    nnr_tensor_free(&t);
    /* a directory */
    ASSERT_FAILS(nnr_csv_read(tpath(""), &t), "", "is a directory; a data file is needed");
    ASSERT_FAILS(nnr_idx_read(tpath(""), &t), "", "is a directory; a data file is needed");
}

/* ---- random numbers ----------------------------------------------------------------------- */

static void test_rng_determinism(void) {
    nnr_rng a, b, c;
    nnr_rng_seed(&a, 42);
    nnr_rng_seed(&b, 42);
    nnr_rng_seed(&c, 43);
    /* Known answers from the reference xoshiro256** seeded by splitmix64(42). */
    CU_ASSERT_EQUAL(nnr_rng_next(&a), 0x15780b2e0c2ec716ULL);
    CU_ASSERT_EQUAL(nnr_rng_next(&a), 0x6104d9866d113a7eULL);
    CU_ASSERT_EQUAL(nnr_rng_next(&a), 0xae17533239e499a1ULL);
    nnr_rng_seed(&a, 42);
    int same = 1, differ = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = nnr_rng_next(&a), y = nnr_rng_next(&b), z = nnr_rng_next(&c);
        same &= x == y;
        differ += x != z;
    }
    CU_ASSERT(same);
    CU_ASSERT(differ > 990);
}

static void test_rng_distributions(void) {
    enum { N = 100000 };
    nnr_rng r;
    nnr_rng_seed(&r, 7);
    double s = 0, s2 = 0, lo = 1, hi = 0;
    for (int i = 0; i < N; i++) {
        double u = nnr_rng_uniform(&r);
        s += u, s2 += u * u;
        lo = fmin(lo, u), hi = fmax(hi, u);
    }
    double mean = s / N, var = s2 / N - mean * mean;
    CU_ASSERT(lo >= 0 && hi < 1);
    CU_ASSERT(fabs(mean - 0.5) < 0.005);
    CU_ASSERT(fabs(var - 1.0 / 12) < 0.002);

    s = s2 = 0;
    for (int i = 0; i < N; i++) {
        double z = nnr_rng_normal(&r);
        s += z, s2 += z * z;
    }
    mean = s / N;
    CU_ASSERT(fabs(mean) < 0.015);
    CU_ASSERT(fabs(sqrt(s2 / N - mean * mean) - 1) < 0.015);

    int count[3] = {0}, ok = 1;
    for (int i = 0; i < 30000; i++) {
        uint64_t k = nnr_rng_below(&r, 3);
        ok &= k < 3;
        if (k < 3) count[k]++;
    }
    CU_ASSERT(ok);
    for (int k = 0; k < 3; k++) CU_ASSERT(abs(count[k] - 10000) < 500);
    CU_ASSERT_EQUAL(nnr_rng_below(&r, 1), 0);

    /* For n = 3 * 2^62 a plain x % n would land below 2^62 half the time, not a third. */
    int low = 0;
    for (int i = 0; i < 30000; i++) low += nnr_rng_below(&r, 3ULL << 62) < 1ULL << 62;
    CU_ASSERT(abs(low - 10000) < 500);
}

static void test_rng_shuffle(void) {
    enum { N = 1000 };
    int64_t idx[N];
    int seen[N] = {0}, moved = 0, ok = 1;
    for (int i = 0; i < N; i++) idx[i] = i;
    nnr_rng r;
    nnr_rng_seed(&r, 1);
    nnr_rng_shuffle(&r, idx, N);
    for (int i = 0; i < N; i++) {
        ok &= idx[i] >= 0 && idx[i] < N;
        if (idx[i] >= 0 && idx[i] < N) seen[idx[i]]++;
        moved += idx[i] != i;
    }
    CU_ASSERT(ok);
    for (int i = 0; i < N; i++) ok &= seen[i] == 1;
    CU_ASSERT(ok);
    CU_ASSERT(moved > N / 2);

    /* Every order of three is equally likely (Sattolo's off-by-one makes only cycles). */
    int orders[9] = {0};
    for (int i = 0; i < 60000; i++) {
        int64_t v[3] = {0, 1, 2};
        nnr_rng_shuffle(&r, v, 3);
        orders[v[0] * 3 + v[1]]++;
    }
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            if (a != b) CU_ASSERT(abs(orders[a * 3 + b] - 10000) < 500);
}

/* ---- initializers --------------------------------------------------------------------------- */

static void stats(const float *w, int64_t n, double *mean, double *std, double *maxabs) {
    double s = 0, s2 = 0;
    *maxabs = 0;
    for (int64_t i = 0; i < n; i++) {
        s += w[i], s2 += (double)w[i] * w[i];
        *maxabs = fmax(*maxabs, fabs(w[i]));
    }
    *mean = s / n;
    *std = sqrt(s2 / n - *mean * *mean);
}

static void test_init_bounds(void) {
    static float w[256 * 400];
    double mean, std, maxabs;
    nnr_rng r;
    nnr_rng_seed(&r, 3);
    int64_t dense[] = {256, 400}, conv[] = {64, 16, 5, 5};   /* conv: fan_in 400, fan_out 1600 */

    double lim = sqrt(6.0 / (400 + 256));
    nnr_init_fill(w, NNR_F32, 2, dense, (nnr_init){NNR_INIT_GLOROT_UNIFORM, 0, 0}, &r);
    stats(w, 256 * 400, &mean, &std, &maxabs);
    CU_ASSERT(maxabs <= lim && maxabs > 0.99 * lim);
    CU_ASSERT(fabs(std - lim / sqrt(3)) < 0.01 * lim);
    CU_ASSERT(fabs(mean) < 0.01 * lim);

    lim = sqrt(6.0 / (400 + 1600));
    nnr_init_fill(w, NNR_F32, 4, conv, (nnr_init){NNR_INIT_GLOROT_UNIFORM, 0, 0}, &r);
    stats(w, 64 * 400, &mean, &std, &maxabs);
    CU_ASSERT(maxabs <= lim && fabs(std - lim / sqrt(3)) < 0.02 * lim);

    nnr_init_fill(w, NNR_F32, 2, dense, (nnr_init){NNR_INIT_LECUN_UNIFORM, 0, 0}, &r);
    stats(w, 256 * 400, &mean, &std, &maxabs);
    CU_ASSERT(maxabs <= 1 / sqrt(400.0) && maxabs > 0.99 / sqrt(400.0));

    nnr_init_fill(w, NNR_F32, 2, dense, (nnr_init){NNR_INIT_HE_UNIFORM, 0, 0}, &r);
    stats(w, 256 * 400, &mean, &std, &maxabs);
    CU_ASSERT(maxabs <= sqrt(6.0 / 400) && fabs(std - sqrt(2.0 / 400)) < 0.01 * sqrt(2.0 / 400));

    nnr_init_fill(w, NNR_F32, 2, dense, (nnr_init){NNR_INIT_HE_NORMAL, 0, 0}, &r);
    stats(w, 256 * 400, &mean, &std, &maxabs);
    CU_ASSERT(fabs(std - sqrt(2.0 / 400)) < 0.01 * sqrt(2.0 / 400));

    nnr_init_fill(w, NNR_F32, 4, conv, (nnr_init){NNR_INIT_GLOROT_NORMAL, 0, 0}, &r);
    stats(w, 64 * 400, &mean, &std, &maxabs);
    CU_ASSERT(fabs(std - sqrt(2.0 / 2000)) < 0.02 * sqrt(2.0 / 2000));

    nnr_init_fill(w, NNR_F32, 2, dense, (nnr_init){NNR_INIT_NORMAL, 2.0, 0.5}, &r);
    stats(w, 256 * 400, &mean, &std, &maxabs);
    CU_ASSERT(fabs(mean - 2.0) < 0.01 && fabs(std - 0.5) < 0.01);

    nnr_init_fill(w, NNR_F32, 2, dense, (nnr_init){NNR_INIT_UNIFORM, -3.0, -1.0}, &r);
    stats(w, 256 * 400, &mean, &std, &maxabs);
    CU_ASSERT(fabs(mean + 2.0) < 0.01 && maxabs <= 3.0 && fabs(std - 1 / sqrt(3)) < 0.01);
}

static void test_init_constants(void) {
    double d[6];
    float f[6];
    int64_t shape[] = {6};
    nnr_rng r;
    nnr_rng_seed(&r, 0);
    nnr_init_fill(d, NNR_F64, 1, shape, (nnr_init){NNR_INIT_CONST, 0.25, 0}, &r);
    nnr_init_fill(f, NNR_F32, 1, shape, (nnr_init){NNR_INIT_ONES, 0, 0}, &r);
    CU_ASSERT(d[0] == 0.25 && d[5] == 0.25 && f[0] == 1 && f[5] == 1);
    nnr_init_fill(f, NNR_F32, 1, shape, (nnr_init){NNR_INIT_ZEROS, 0, 0}, &r);
    CU_ASSERT(f[0] == 0 && f[5] == 0);

    /* The same seed gives the same weights in F32 and F64, up to rounding. */
    nnr_rng a, b;
    nnr_rng_seed(&a, 9);
    nnr_rng_seed(&b, 9);
    int64_t m[] = {2, 3};
    nnr_init_fill(d, NNR_F64, 2, m, (nnr_init){NNR_INIT_GLOROT_NORMAL, 0, 0}, &a);
    nnr_init_fill(f, NNR_F32, 2, m, (nnr_init){NNR_INIT_GLOROT_NORMAL, 0, 0}, &b);
    for (int i = 0; i < 6; i++) CU_ASSERT_EQUAL(f[i], (float)d[i]);
}

/* Largest |G - I| for G the Gram matrix of the k vectors of length m in w (vector j,
 * element r at j*vs + r*es). */
static double gram_error(const double *w, int64_t k, int64_t m, int64_t vs, int64_t es) {
    double worst = 0;
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < k; j++) {
            double g = 0;
            for (int64_t r = 0; r < m; r++) g += w[i * vs + r * es] * w[j * vs + r * es];
            worst = fmax(worst, fabs(g - (i == j)));
        }
    return worst;
}

static void test_init_orthogonal(void) {
    double w[28];
    float f[28];
    double wf[28];
    nnr_rng r;
    nnr_rng_seed(&r, 5);
    nnr_init orth = {NNR_INIT_ORTHOGONAL, 0, 0};

    nnr_init_fill(w, NNR_F64, 2, (int64_t[]){4, 7}, orth, &r);
    CU_ASSERT(gram_error(w, 4, 7, 7, 1) < 1e-12);           /* W W^T = I_4: rows */
    nnr_init_fill(w, NNR_F64, 2, (int64_t[]){7, 4}, orth, &r);
    CU_ASSERT(gram_error(w, 4, 7, 1, 4) < 1e-12);           /* W^T W = I_4: columns */
    nnr_init_fill(w, NNR_F64, 3, (int64_t[]){4, 1, 7}, orth, &r);
    CU_ASSERT(gram_error(w, 4, 7, 7, 1) < 1e-12);           /* viewed as [4, 7] */

    nnr_init_fill(f, NNR_F32, 2, (int64_t[]){7, 4}, orth, &r);
    for (int i = 0; i < 28; i++) wf[i] = f[i];
    CU_ASSERT(gram_error(wf, 4, 7, 1, 4) < 1e-6);
    nnr_init_fill(w, NNR_F64, 2, (int64_t[]){5, 5}, orth, &r);
    CU_ASSERT(gram_error(w, 5, 5, 5, 1) < 1e-12 && gram_error(w, 5, 5, 1, 5) < 1e-12);
}

/* ---- schedules -------------------------------------------------------------------------- */

static double lr_at(nnr_sched_kind k, double a, double b, double c, int t) {
    nnr_train_config cfg = {.sched = k, .sched_a = a, .sched_b = b, .sched_c = c};
    return nnr_schedule_lr(&cfg, 0.1, t);
}

#define NEAR(x, y) CU_ASSERT_DOUBLE_EQUAL((x), (y), 1e-12)

static void test_schedules(void) {
    NEAR(lr_at(NNR_SCHED_CONSTANT, 0, 0, 0, 0), 0.1);
    NEAR(lr_at(NNR_SCHED_CONSTANT, 0, 0, 0, 99), 0.1);
    NEAR(lr_at(NNR_SCHED_STEP, 2, 0.5, 0, 0), 0.1);       /* StepLR(step_size=2, gamma=0.5) */
    NEAR(lr_at(NNR_SCHED_STEP, 2, 0.5, 0, 1), 0.1);
    NEAR(lr_at(NNR_SCHED_STEP, 2, 0.5, 0, 2), 0.05);
    NEAR(lr_at(NNR_SCHED_STEP, 2, 0.5, 0, 5), 0.025);
    NEAR(lr_at(NNR_SCHED_EXPONENTIAL, 0.9, 0, 0, 0), 0.1);
    NEAR(lr_at(NNR_SCHED_EXPONENTIAL, 0.9, 0, 0, 3), 0.0729);
    NEAR(lr_at(NNR_SCHED_POLYNOMIAL, 1, 2, 0.5, 0), 1 / sqrt(2));  /* alpha / (beta + t)^gamma */
    NEAR(lr_at(NNR_SCHED_POLYNOMIAL, 1, 2, 0.5, 2), 0.5);
    NEAR(lr_at(NNR_SCHED_POLYNOMIAL, 3, 1, 1, 5), 0.5);
    NEAR(lr_at(NNR_SCHED_COSINE, 10, 0, 0, 0), 0.1);      /* CosineAnnealingLR(T_max=10) */
    NEAR(lr_at(NNR_SCHED_COSINE, 10, 0, 0, 5), 0.05);
    NEAR(lr_at(NNR_SCHED_COSINE, 10, 0, 0, 10), 0.0);
    NEAR(lr_at(NNR_SCHED_COSINE, 4, 0, 0, 1), 0.1 * (1 + sqrt(0.5)) / 2);
    /* warmup_cosine(warmup=4, t_max=8): LambdaLR's (t + 1) / 4, then the half cosine, then 0 */
    NEAR(lr_at(NNR_SCHED_WARMUP_COSINE, 4, 8, 0, 0), 0.025);
    NEAR(lr_at(NNR_SCHED_WARMUP_COSINE, 4, 8, 0, 3), 0.1);
    NEAR(lr_at(NNR_SCHED_WARMUP_COSINE, 4, 8, 0, 4), 0.1);
    NEAR(lr_at(NNR_SCHED_WARMUP_COSINE, 4, 8, 0, 6), 0.05);
    NEAR(lr_at(NNR_SCHED_WARMUP_COSINE, 4, 8, 0, 8), 0.0);
    NEAR(lr_at(NNR_SCHED_WARMUP_COSINE, 4, 8, 0, 1000000), 0.0);
    NEAR(lr_at(NNR_SCHED_WARMUP_COSINE, 0, 2, 0, 0), 0.1);   /* no warmup: the cosine from t = 0 */
    NEAR(lr_at(NNR_SCHED_WARMUP_COSINE, 0, 2, 0, 1), 0.05);
}

/* tril, triu, eye, causal_mask over the last two axes (each leading index alike), arange */
static void test_init_structured(void) {
    double w[12];
    nnr_rng r;
    nnr_rng_seed(&r, 1);
    static const double tril[6] = {1, 0, 0, 1, 1, 0}, triu[6] = {1, 1, 1, 0, 1, 1}, eye[6] = {1, 0, 0, 0, 1, 0};
    const struct { nnr_init_kind k; const double *want; } cases[] = {
        {NNR_INIT_TRIL, tril}, {NNR_INIT_TRIU, triu}, {NNR_INIT_EYE, eye}};
    for (int c = 0; c < 3; c++) {
        nnr_init_fill(w, NNR_F64, 3, (int64_t[]){2, 2, 3}, (nnr_init){cases[c].k, 0, 0}, &r);
        for (int i = 0; i < 12; i++) CU_ASSERT_EQUAL(w[i], cases[c].want[i % 6]);
    }
    float f[6];
    nnr_init_fill(f, NNR_F32, 2, (int64_t[]){2, 3}, (nnr_init){NNR_INIT_CAUSAL_MASK, 0, 0}, &r);
    CU_ASSERT(f[0] == 0 && f[3] == 0 && f[4] == 0);
    CU_ASSERT(isinf(f[1]) && f[1] < 0 && isinf(f[2]) && isinf(f[5]));
    nnr_init_fill(w, NNR_F64, 3, (int64_t[]){2, 3, 2}, (nnr_init){NNR_INIT_ARANGE, 0, 0}, &r);
    for (int i = 0; i < 12; i++) CU_ASSERT_EQUAL(w[i], i);
}

/* ---- model init / save / load, through a hand-written model ---------------------------- */

typedef struct fake { float p[9], g[9], s[18]; int64_t step; } fake;

static const nnr_param fake_params[] = {
    {.name = "w", .rank = 2, .shape = {2, 3}, .size = 6, .offset = 0,
     .init = {NNR_INIT_GLOROT_UNIFORM, 0, 0}},
    {.name = "b", .rank = 1, .shape = {3}, .size = 3, .offset = 6,
     .init = {NNR_INIT_CONST, 0.5, 0}},
};

static void *fake_params_of(void *m) { return ((fake *)m)->p; }
static void *fake_grads(void *m) { return ((fake *)m)->g; }
static void *fake_state(void *m) { return ((fake *)m)->s; }
static int64_t *fake_step(void *m) { return &((fake *)m)->step; }

static const nnr_model_info fake_info = {
    .name = "fake", .dtype = NNR_F32, .batch = 1,
    .nparam = 2, .param = fake_params, .param_size = 9, .state_size = 18,
    .acc_out = -1, .acc_label = -1, .schema_hash = 0xdeadbeefULL,
    .params = fake_params_of, .grads = fake_grads, .state = fake_state, .step = fake_step,
};

static void test_model_init(void) {
    fake a, b;
    memset(&a, 0x7f, sizeof a);
    nnr_model_init(&fake_info, &a, 11);
    double lim = sqrt(6.0 / 5);
    for (int i = 0; i < 6; i++) CU_ASSERT(fabs(a.p[i]) <= lim && a.p[i] != 0);
    for (int i = 6; i < 9; i++) CU_ASSERT_EQUAL(a.p[i], 0.5f);
    for (int i = 0; i < 9; i++) CU_ASSERT_EQUAL(a.g[i], 0.0f);
    for (int i = 0; i < 18; i++) CU_ASSERT_EQUAL(a.s[i], 0.0f);
    CU_ASSERT_EQUAL(a.step, 0);
    nnr_model_init(&fake_info, &b, 11);
    CU_ASSERT_EQUAL(memcmp(a.p, b.p, sizeof a.p), 0);
    nnr_model_init(&fake_info, &b, 12);
    CU_ASSERT_NOT_EQUAL(memcmp(a.p, b.p, sizeof a.p), 0);
}

static void test_model_roundtrip(void) {
    const char *path = tpath("model.safetensors");
    fake a, b;
    nnr_model_init(&fake_info, &a, 1);
    nnr_model_init(&fake_info, &b, 2);
    CU_ASSERT_EQUAL_FATAL(nnr_model_save(&fake_info, &a, path), 0);
    CU_ASSERT_EQUAL(count_files(".tmp."), 0);
    CU_ASSERT_EQUAL_FATAL(nnr_model_load(&fake_info, &b, path), 0);
    CU_ASSERT_EQUAL(memcmp(a.p, b.p, sizeof a.p), 0);

    nnr_tensors ts;
    CU_ASSERT_EQUAL_FATAL(nnr_st_read(path, &ts), 0);
    CU_ASSERT_STRING_EQUAL(ts.metadata,
                           "{\"nnc_model\":\"fake\",\"nnc_schema\":\"00000000deadbeef\"}");
    CU_ASSERT_EQUAL(ts.n, 2);
    CU_ASSERT(ts.t[0].dtype == NNR_F32 && ts.t[0].rank == 2 && ts.t[0].shape[1] == 3);
    CU_ASSERT_STRING_EQUAL(ts.t[1].name, "b");
    nnr_tensors_free(&ts);

    /* F64 parameters (a PyTorch double state dict) load converted; extra tensors are ignored. */
    double w[6] = {1, 2, 3, 4, 5, 6}, bias[3] = {-1, -2, -3};
    nnr_tensor f64[] = {
        {.name = "b", .dtype = NNR_F64, .rank = 1, .shape = {3}, .data = bias},
        {.name = "w", .dtype = NNR_F64, .rank = 2, .shape = {2, 3}, .data = w},
        {.name = "num_batches_tracked", .dtype = NNR_I64, .rank = 0, .data = &(int64_t){7}},
    };
    CU_ASSERT_EQUAL_FATAL(nnr_st_write(path, f64, 3, NULL, 0), 0);
    CU_ASSERT_EQUAL_FATAL(nnr_model_load(&fake_info, &b, path), 0);
    CU_ASSERT(b.p[0] == 1 && b.p[5] == 6 && b.p[6] == -1 && b.p[8] == -3);
}

static void test_model_load_errors(void) {
    const char *path = tpath("ckpt.safetensors");
    fake m, before;
    nnr_model_init(&fake_info, &m, 4);
    before = m;
    float w[6] = {0}, wt[6] = {0}, bias[3] = {0}, bad[3] = {0, NAN, 0};
    double huge[3] = {0, 1e300, 0};
    int32_t ints[3] = {0};
    nnr_tensor good_w = {.name = "w", .dtype = NNR_F32, .rank = 2, .shape = {2, 3}, .data = w};

    CU_ASSERT_EQUAL(nnr_st_write(path, &good_w, 1, NULL, 0), 0);
    ASSERT_FAILS(nnr_model_load(&fake_info, &m, path), path, "parameter 'b' is missing");
    CU_ASSERT_EQUAL(memcmp(&m, &before, sizeof m), 0);

    nnr_tensor shape[] = {{.name = "w", .dtype = NNR_F32, .rank = 2, .shape = {3, 2}, .data = wt},
                          {.name = "b", .dtype = NNR_F32, .rank = 1, .shape = {3}, .data = bias}};
    CU_ASSERT_EQUAL(nnr_st_write(path, shape, 2, NULL, 0), 0);
    ASSERT_FAILS(nnr_model_load(&fake_info, &m, path), path,
                 "parameter 'w' has shape [3, 2] in the file but [2, 3] in model fake");
    CU_ASSERT_EQUAL(memcmp(&m, &before, sizeof m), 0);

    /* w is valid and comes first: the failure on b must not have copied it in. */
    nnr_tensor nan[] = {good_w, {.name = "b", .dtype = NNR_F32, .rank = 1, .shape = {3},
                                 .data = bad}};
    CU_ASSERT_EQUAL(nnr_st_write(path, nan, 2, NULL, 0), 0);
    ASSERT_FAILS(nnr_model_load(&fake_info, &m, path), path,
                 "parameter 'b' holds a non-finite value");
    CU_ASSERT_EQUAL(memcmp(&m, &before, sizeof m), 0);

    nnr_tensor big[] = {good_w, {.name = "b", .dtype = NNR_F64, .rank = 1, .shape = {3},
                                 .data = huge}};
    CU_ASSERT_EQUAL(nnr_st_write(path, big, 2, NULL, 0), 0);
    ASSERT_FAILS(nnr_model_load(&fake_info, &m, path), path, "non-finite value at element 1");
    CU_ASSERT_EQUAL(memcmp(&m, &before, sizeof m), 0);

    nnr_tensor in[] = {good_w, {.name = "b", .dtype = NNR_I32, .rank = 1, .shape = {3},
                                .data = ints}};
    CU_ASSERT_EQUAL(nnr_st_write(path, in, 2, NULL, 0), 0);
    ASSERT_FAILS(nnr_model_load(&fake_info, &m, path), path, "dtype I32");
    CU_ASSERT_EQUAL(memcmp(&m, &before, sizeof m), 0);

    ASSERT_FAILS(nnr_model_load(&fake_info, &m, tpath("none.safetensors")), "none.safetensors",
                 "cannot open");
    CU_ASSERT_EQUAL(memcmp(&m, &before, sizeof m), 0);
}

/* Nothing is written from a block that is not finite, and the message says what is not;
 * a checkpoint whose optimizer state is not finite, or whose sums of squares are negative,
 * is refused. */
static void test_model_finite(void) {
    float f[5] = {1, 2, -INFINITY, NAN, 0};
    double d[3] = {0, 1e300, NAN};
    CU_ASSERT_EQUAL(nnr_first_nonfinite(NNR_F32, f, 2), -1);
    CU_ASSERT_EQUAL(nnr_first_nonfinite(NNR_F32, f, 5), 2);
    CU_ASSERT_EQUAL(nnr_first_nonfinite(NNR_F64, d, 3), 2);
    CU_ASSERT_EQUAL(nnr_first_nonfinite(NNR_F64, d, 2), -1);

    const char *path = tpath("finite.safetensors");
    fake m;
    nnr_model_init(&fake_info, &m, 3);
    CU_ASSERT_EQUAL_FATAL(nnr_checkpoint_save(&fake_info, &m, path, &(nnr_checkpoint){.best_loss = NAN}), 0);
    size_t n0, n1;
    unsigned char *before = slurp(path, &n0);
    CU_ASSERT_EQUAL(nnr_model_check_finite(&fake_info, &m, 1), 0);

    m.p[7] = NAN;   /* b element 1 */
    m.g[4] = INFINITY;   /* w element 4 */
    CU_ASSERT_EQUAL(nnr_model_check_finite(&fake_info, &m, 1), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(nnr_error(), "parameter 'b' holds nan at element 1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(nnr_error(), "the gradient of 'w' holds inf at element 4"));
    ASSERT_FAILS(nnr_checkpoint_save(&fake_info, &m, path, &(nnr_checkpoint){.best_loss = NAN}), path,
                 "not written: parameter 'b' holds nan at element 1");
    ASSERT_FAILS(nnr_model_save(&fake_info, &m, path), path, "parameter 'b'");
    m.p[7] = 0;
    m.s[11] = -INFINITY;
    ASSERT_FAILS(nnr_checkpoint_save(&fake_info, &m, path, &(nnr_checkpoint){.best_loss = NAN}), path,
                 "'optimizer.state' holds -inf at element 11");
    unsigned char *after = slurp(path, &n1);
    CU_ASSERT(n0 == n1 && memcmp(before, after, n0) == 0);   /* the good file stays */
    CU_ASSERT_EQUAL(count_files(".tmp."), 0);
    free(before);
    free(after);

    /* the same file with its optimizer state damaged */
    nnr_tensors ts;
    CU_ASSERT_EQUAL_FATAL(nnr_st_read(path, &ts), 0);
    nnr_tensor *st = (nnr_tensor *)nnr_tensors_find(&ts, "optimizer.state");
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    ((float *)st->data)[5] = NAN;
    const char *meta[] = {"nnc_model", "fake", "nnc_schema", "00000000deadbeef", "nnc_checkpoint", "1",
                          "step", "0", "epoch", "0", "batch", "0", "epochs", "1", "examples", "1",
                          "seed", "0", "lr", "0.1", "loss_sum", "0"};
    const char *bad = tpath("badstate.safetensors");
    CU_ASSERT_EQUAL_FATAL(nnr_st_write(bad, ts.t, ts.n, meta, 11), 0);
    nnr_tensors_free(&ts);
    nnr_model_init(&fake_info, &m, 3);
    fake keep = m;
    nnr_checkpoint ck;
    ASSERT_FAILS(nnr_checkpoint_load(&fake_info, &m, bad, &ck, 1), bad,
                 "'optimizer.state' holds nan at element 5");
    ASSERT_FAILS(nnr_checkpoint_load(&fake_info, &m, bad, &ck, 0), bad,
                 "'optimizer.state' holds nan at element 5");
    CU_ASSERT_EQUAL(memcmp(&m, &keep, sizeof m), 0);
}

/* Adam's second moments (the second half of its state) are sums of squares: a negative
 * one cannot come from training. */
static void test_model_state_squares(void) {
    nnr_model_info adam = fake_info;
    adam.train.opt = NNR_OPT_ADAM;
    const char *path = tpath("adam.safetensors");
    fake m, r;
    nnr_model_init(&adam, &m, 3);
    m.s[2] = -1;   /* a first moment may be negative */
    nnr_checkpoint ck = {.best_loss = NAN, .epochs = 1};
    CU_ASSERT_EQUAL_FATAL(nnr_checkpoint_save(&adam, &m, path, &ck), 0);
    CU_ASSERT_EQUAL(nnr_checkpoint_load(&adam, &r, path, &ck, 1), 0);
    m.s[9 + 4] = -0.5f;
    CU_ASSERT_EQUAL_FATAL(nnr_checkpoint_save(&adam, &m, path, &ck), 0);
    ASSERT_FAILS(nnr_checkpoint_load(&adam, &r, path, &ck, 1), path,
                 "'optimizer.state' holds -0.5 at element 13, a negative sum of squares (slot 2 "
                 "of 'w' element 4)");
}

/* ---- data memory ---------------------------------------------------------------------------- */

/* Batches and columns start on a cache line whatever their size: glibc's malloc gives
 * 16-byte alignment, and a Fashion-MNIST batch (200,704 bytes) would start 16 bytes into
 * one. */
static void test_alloc_aligned(void) {
    const size_t sizes[] = {0, 1, 63, 64, 65, 200704, 3136 * 1000 + 4};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *p = nnr_alloc_aligned(sizes[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        CU_ASSERT_EQUAL((uintptr_t)p % 64, 0);
        memset(p, 0xab, sizes[i]);   /* the whole size is usable (ASan checks the bounds) */
        if (sizes[i]) CU_ASSERT_EQUAL(p[sizes[i] - 1], 0xab);
        free(p);
    }
}

/* ---- the sparse products' limit ----------------------------------------------------------- */

/* The fraction below which a backward product goes sparse: 3/4 of it for a large product,
 * the same at any thread count (so is the path a batch takes), and 1 (the tests'
 * "always") or 0 ("never") kept as they are. */
static void test_sparse_limit(void) {
    int threads = nnr_threads();
    for (int t = 1; t <= 3; t++) {
        nnr_set_threads(t);
        CU_ASSERT_DOUBLE_EQUAL(nnr_gemm_sparse_limit(0.4, 0), 0.4, 1e-12);
        CU_ASSERT_DOUBLE_EQUAL(nnr_gemm_sparse_limit(0.4, 1), 0.3, 1e-12);
        CU_ASSERT_DOUBLE_EQUAL(nnr_gemm_sparse_limit(1, 1), 1, 0);
        CU_ASSERT_DOUBLE_EQUAL(nnr_gemm_sparse_limit(0, 0), 0, 0);
    }
    nnr_set_threads(threads);
}

/* How idle threads wait: a bounded spin only when the threads other processes run leave
 * a core for each of nnc's; sleep when they do not, when it is not known, or with one thread. */
static void test_wait_policy(void) {
    CU_ASSERT_TRUE(nnr_wait_spins(2, 2, 0));
    CU_ASSERT_FALSE(nnr_wait_spins(2, 2, 1));      /* a busy process beside two threads on two cores */
    CU_ASSERT_TRUE(nnr_wait_spins(4, 8, 4));
    CU_ASSERT_FALSE(nnr_wait_spins(4, 8, 5));
    CU_ASSERT_FALSE(nnr_wait_spins(2, 2, -1));     /* no /proc */
    CU_ASSERT_FALSE(nnr_wait_spins(1, 8, 0));      /* one thread never waits */
    CU_ASSERT_FALSE(nnr_wait_spins(16, 2, 0));     /* more threads than cores */
}

/* ---- products cut into blocks ------------------------------------------------------------- */

/* nnr_sgemm against a double-precision product, for each transpose and shapes that are one
 * block, cut along rows, cut along columns, with a last block shorter than the others,
 * strides wider than the rows, alpha and beta; and the same bits at 1, 2 and 3 threads
 * (the blocks depend on the shape alone).  nnr_dgemm likewise, to double rounding. */
static float gemm_rand(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((*s >> 40) % 2001) / 1000.0f - 1.0f;
}

static void gemm_case(int m, int n, int k, int ta, int tb, uint64_t *seed) {
    int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 2;
    size_t sa = (size_t)(ta ? k : m) * lda, sb = (size_t)(tb ? n : k) * ldb, sc = (size_t)m * ldc;
    float *a = malloc(sa * 4), *b = malloc(sb * 4), *c0 = malloc(sc * 4), *c = malloc(sc * 4), *c1 = malloc(sc * 4);
    double *da = malloc(sa * 8), *db = malloc(sb * 8), *ab = malloc(sc * 8), *dc = malloc(sc * 8), *dc1 = malloc(sc * 8);
    CU_ASSERT_FATAL(a && b && c0 && c && c1 && da && db && ab && dc && dc1);
    for (size_t i = 0; i < sa; i++) da[i] = a[i] = gemm_rand(seed);
    for (size_t i = 0; i < sb; i++) db[i] = b[i] = gemm_rand(seed);
    for (size_t i = 0; i < sc; i++) c0[i] = gemm_rand(seed), ab[i] = 0;
    for (int i = 0; i < m; i++)   /* op(A) op(B) in double */
        for (int j = 0; j < n; j++) {
            double sum = 0;
            for (int p = 0; p < k; p++)
                sum += da[ta ? (size_t)p * lda + i : (size_t)i * lda + p] * db[tb ? (size_t)j * ldb + p : (size_t)p * ldb + j];
            ab[(size_t)i * ldc + j] = sum;
        }
    enum CBLAS_TRANSPOSE TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
    for (int t = 1; t <= 3; t++) {
        nnr_set_threads(t);
        memcpy(c, c0, sc * 4);
        nnr_sgemm(CblasRowMajor, TA, TB, m, n, k, 0.5f, a, lda, b, ldb, -2.0f, c, ldc);
        for (size_t i = 0; i < sc; i++) dc[i] = 0;
        nnr_dgemm(CblasRowMajor, TA, TB, m, n, k, 1.0, da, lda, db, ldb, 0.0, dc, ldc);
        if (t == 1) {
            double worst = 0, dworst = 0;
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++) {
                    size_t at = (size_t)i * ldc + j;
                    worst = fmax(worst, fabs(c[at] - (0.5 * ab[at] - 2.0 * c0[at])));
                    dworst = fmax(dworst, fabs(dc[at] - ab[at]));
                }
            CU_ASSERT(worst < 1e-5 * k);
            CU_ASSERT(dworst < 1e-13 * k);
            memcpy(c1, c, sc * 4);
            memcpy(dc1, dc, sc * 8);
        } else {   /* the same blocks, hence the same bits, at any thread count */
            CU_ASSERT_EQUAL(memcmp(c, c1, sc * 4), 0);
            CU_ASSERT_EQUAL(memcmp(dc, dc1, sc * 8), 0);
        }
    }
    free(a), free(b), free(c0), free(c), free(c1), free(da), free(db), free(ab), free(dc), free(dc1);
}

static void test_gemm_blocks(void) {
    /* one block; cut along rows (m >= n) and columns, with a short last block; 8 blocks */
    const int shapes[][3] = {{3, 5, 7}, {64, 256, 784}, {256, 784, 64}, {1000, 40, 300}, {37, 1030, 250},
                             {520, 520, 130}};
    int threads = nnr_threads();
    uint64_t seed = 1;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) gemm_case(shapes[si][0], shapes[si][1], shapes[si][2], ta, tb, &seed);
    nnr_set_threads(threads);
}

/* ---- driver ------------------------------------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

typedef struct test { const char *name; void (*fn)(void); } test;

static const struct suite { const char *name; test tests[8]; } suites[] = {
    {"safetensors", {{"round trip", test_st_roundtrip}, {"python layout", test_st_python_layout},
                     {"atomic write", test_st_atomic}, {"stale temporary files", test_st_stale_temps},
                     {"corrupt files", test_st_corrupt}}},
    {"idx", {{"round trip", test_idx_roundtrip}, {"errors", test_idx_errors},
             {"fashion-mnist labels", test_idx_fashion}}},
    {"csv", {{"read", test_csv_read}, {"errors", test_csv_errors}, {"hostile", test_csv_hostile}}},
    {"rng", {{"determinism", test_rng_determinism}, {"distributions", test_rng_distributions},
             {"shuffle", test_rng_shuffle}}},
    {"init", {{"bounds", test_init_bounds}, {"constants", test_init_constants},
              {"orthogonal", test_init_orthogonal}, {"structured", test_init_structured}}},
    {"schedule", {{"values", test_schedules}}},
    {"data", {{"aligned memory", test_alloc_aligned}}},
    {"sparse products", {{"limit", test_sparse_limit}}},
    {"threads", {{"wait policy", test_wait_policy}}},
    {"products in blocks", {{"same bits at 1-3 threads", test_gemm_blocks}}},
    {"model", {{"init", test_model_init}, {"save and load", test_model_roundtrip},
               {"load errors", test_model_load_errors}, {"finite checks", test_model_finite},
               {"sums of squares", test_model_state_squares}}},
};

int main(void) {
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++) {
        CU_pSuite s = CU_add_suite(suites[i].name, NULL, NULL);
        for (const test *t = suites[i].tests; s && t->name; t++) CU_add_test(s, t->name, t->fn);
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failed = CU_get_number_of_failures() != 0 || CU_get_error();
    CU_cleanup_registry();
    nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return failed;
}
