/* safetensors.c — reading and writing safetensors files.
 *
 * The format (huggingface/safetensors): an 8-byte little-endian header length N, N bytes
 * of JSON mapping each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}
 * plus an optional "__metadata__" object of strings, then the data region, which the
 * tensors tile exactly.  Offsets are relative to the start of the data region.
 *
 * The reader trusts nothing in the file: every length, dtype, shape and offset is checked
 * against the file's real size before any data is read, and a failure names the file,
 * the tensor and the problem.  The writer never leaves a half-written file at PATH: it
 * writes PATH.tmp.<pid>, fsyncs it, renames it over PATH and fsyncs the directory; the
 * temporary files of writers killed before their rename are removed by the next write.
 *
 * Tensor data is stored little-endian; nnr reads and writes it in host order, which the
 * check below pins to little-endian.
 */
#include "nnr.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian and nnr copies it in host byte order"
#endif

/* Python's safetensors refuses larger headers; so do we, before allocating them. */
#define ST_HEADER_MAX 100000000

static const nnr_dtype all_dtypes[] = {NNR_F32, NNR_F64, NNR_I32, NNR_I64, NNR_U8, NNR_I8, NNR_I16};
#define NDTYPES ((int)(sizeof all_dtypes / sizeof all_dtypes[0]))

static int parse_dtype(const char *s, nnr_dtype *dt) {
    for (int i = 0; i < NDTYPES; i++)
        if (strcmp(s, nnr_dtype_name(all_dtypes[i])) == 0) {
            *dt = all_dtypes[i];
            return 0;
        }
    return -1;
}

/* Bytes of `rank` dims of `dt`, or -1 when the count does not fit in an int64. */
static int64_t shape_bytes(nnr_dtype dt, int rank, const int64_t *shape) {
    int64_t n = (int64_t)nnr_dtype_size(dt);
    for (int i = 0; i < rank; i++) {
        if (shape[i] != 0 && n > INT64_MAX / shape[i]) return -1;
        n *= shape[i];
    }
    return n;
}

/* ---- reading --------------------------------------------------------------------------- */

/* A tensor of the header with where its bytes lie in the data region. */
typedef struct slot { nnr_tensor t; int64_t begin, end; } slot;

static int by_offset(const void *pa, const void *pb) {
    const slot *a = pa, *b = pb;
    if (a->begin != b->begin) return a->begin < b->begin ? -1 : 1;
    if (a->end != b->end) return a->end < b->end ? -1 : 1;
    return strcmp(a->t.name, b->t.name);
}

static int parse_shape(const char *path, slot *s, json_t *shape) {
    const char *name = s->t.name;
    if (!json_is_array(shape)) {
        nnr_set_error("%s: tensor '%s': \"shape\" is not an array", path, name);
        return -1;
    }
    size_t rank = json_array_size(shape);
    if (rank > NNR_MAXRANK) {
        nnr_set_error("%s: tensor '%s': rank %zu is more than the %d nnc supports", path, name,
                      rank, NNR_MAXRANK);
        return -1;
    }
    s->t.rank = (int)rank;
    for (size_t i = 0; i < rank; i++) {
        json_t *d = json_array_get(shape, i);
        if (!json_is_integer(d)) {
            nnr_set_error("%s: tensor '%s': shape entry %zu is not an integer", path, name, i);
            return -1;
        }
        if (json_integer_value(d) < 0) {
            nnr_set_error("%s: tensor '%s': shape entry %zu is negative (%lld)", path, name, i,
                          (long long)json_integer_value(d));
            return -1;
        }
        s->t.shape[i] = json_integer_value(d);
    }
    return 0;
}

static int parse_offsets(const char *path, slot *s, json_t *offs, int64_t data_size) {
    const char *name = s->t.name;
    json_t *b = json_array_get(offs, 0), *e = json_array_get(offs, 1);
    if (!json_is_array(offs) || json_array_size(offs) != 2 || !json_is_integer(b) ||
        !json_is_integer(e)) {
        nnr_set_error("%s: tensor '%s': \"data_offsets\" is not a pair of integers", path, name);
        return -1;
    }
    s->begin = json_integer_value(b);
    s->end = json_integer_value(e);
    if (s->begin < 0 || s->end < s->begin || s->end > data_size) {
        nnr_set_error("%s: tensor '%s': data_offsets [%lld, %lld] are out of range (the data "
                      "region holds %lld bytes)", path, name, (long long)s->begin,
                      (long long)s->end, (long long)data_size);
        return -1;
    }
    return 0;
}

static int parse_entry(const char *path, const char *name, json_t *v, int64_t data_size,
                       slot *s) {
    if (!(s->t.name = strdup(name))) {
        nnr_set_error("%s: out of memory", path);
        return -1;
    }
    if (!json_is_object(v)) {
        nnr_set_error("%s: tensor '%s': header entry is not an object", path, name);
        return -1;
    }
    json_t *dt = json_object_get(v, "dtype");
    if (!json_is_string(dt)) {
        nnr_set_error("%s: tensor '%s': \"dtype\" is missing or not a string", path, name);
        return -1;
    }
    if (parse_dtype(json_string_value(dt), &s->t.dtype)) {
        nnr_set_error("%s: tensor '%s': unsupported dtype '%s' (nnc reads F32 F64 I32 I64 U8 "
                      "I8 I16)", path, name, json_string_value(dt));
        return -1;
    }
    if (parse_shape(path, s, json_object_get(v, "shape")) ||
        parse_offsets(path, s, json_object_get(v, "data_offsets"), data_size))
        return -1;
    char sh[256];
    int64_t bytes = shape_bytes(s->t.dtype, s->t.rank, s->t.shape);
    if (bytes < 0) {
        nnr_set_error("%s: tensor '%s': shape %s of %s is too large", path, name,
                      nnr_shape_str(sh, sizeof sh, s->t.rank, s->t.shape),
                      nnr_dtype_name(s->t.dtype));
        return -1;
    }
    if (s->end - s->begin != bytes) {
        nnr_set_error("%s: tensor '%s': data_offsets [%lld, %lld] do not match shape %s of %s "
                      "(%lld bytes)", path, name, (long long)s->begin, (long long)s->end,
                      nnr_shape_str(sh, sizeof sh, s->t.rank, s->t.shape),
                      nnr_dtype_name(s->t.dtype), (long long)bytes);
        return -1;
    }
    return 0;
}

/* Sorted by offset, the tensors must tile [0, data_size) with no gap and no overlap. */
static int check_tiling(const char *path, const slot *s, int n, int64_t data_size) {
    int64_t at = 0;
    for (int i = 0; i < n; i++) {
        if (s[i].begin < at) {
            nnr_set_error("%s: tensor '%s': data_offsets [%lld, %lld] overlap tensor '%s'", path,
                          s[i].t.name, (long long)s[i].begin, (long long)s[i].end,
                          s[i - 1].t.name);
            return -1;
        }
        if (s[i].begin > at) break;
        at = s[i].end;
    }
    if (at != data_size) {
        nnr_set_error("%s: bytes from %lld of the %lld-byte data region belong to no tensor",
                      path, (long long)at, (long long)data_size);
        return -1;
    }
    return 0;
}

static int parse_metadata(const char *path, json_t *meta, nnr_tensors *out) {
    if (json_is_null(meta)) return 0;
    const char *key;
    json_t *v;
    int ok = json_is_object(meta);
    json_object_foreach(meta, key, v) ok = ok && json_is_string(v);
    if (!ok) {
        nnr_set_error("%s: \"__metadata__\" is not an object of strings", path);
        return -1;
    }
    if (!(out->metadata = json_dumps(meta, JSON_COMPACT))) {
        nnr_set_error("%s: out of memory", path);
        return -1;
    }
    return 0;
}

/* Fills out->metadata and the sorted, validated slots s[0..*n) from the header. */
static int parse_header(const char *path, json_t *root, int64_t data_size, slot **s, int *n,
                        nnr_tensors *out) {
    if (!json_is_object(root)) {
        nnr_set_error("%s: the header is not a JSON object", path);
        return -1;
    }
    *s = calloc(json_object_size(root) + 1, sizeof **s);
    if (!*s) {
        nnr_set_error("%s: out of memory", path);
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "__metadata__") == 0) {
            if (parse_metadata(path, v, out)) return -1;
            continue;
        }
        if (parse_entry(path, key, v, data_size, &(*s)[(*n)++])) return -1;
    }
    qsort(*s, (size_t)*n, sizeof **s, by_offset);
    return check_tiling(path, *s, *n, data_size);
}

static int read_data(const char *path, FILE *f, slot *s, int n) {
    for (int i = 0; i < n; i++) {
        size_t bytes = (size_t)(s[i].end - s[i].begin);
        if (!(s[i].t.data = malloc(bytes ? bytes : 1))) {
            nnr_set_error("%s: out of memory for tensor '%s' (%zu bytes)", path, s[i].t.name,
                          bytes);
            return -1;
        }
        if (fread(s[i].t.data, 1, bytes, f) != bytes) {
            nnr_set_error("%s: read failed in tensor '%s': %s", path, s[i].t.name,
                          ferror(f) ? strerror(errno) : "unexpected end of file");
            return -1;
        }
    }
    return 0;
}

static int read_header(const char *path, FILE *f, int64_t size, json_t **root) {
    unsigned char len8[8];
    if (size < 8 || fread(len8, 1, 8, f) != 8) {
        nnr_set_error("%s: file is too short (%lld bytes) to be safetensors", path,
                      (long long)size);
        return -1;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | len8[i];
    if (n > (uint64_t)size - 8) {
        nnr_set_error("%s: header length %llu is past the end of the file (%lld bytes)", path,
                      (unsigned long long)n, (long long)size);
        return -1;
    }
    if (n > ST_HEADER_MAX) {
        nnr_set_error("%s: header length %llu is over the %d-byte limit", path,
                      (unsigned long long)n, ST_HEADER_MAX);
        return -1;
    }
    char *text = malloc(n ? n : 1);
    if (!text) {
        nnr_set_error("%s: out of memory", path);
        return -1;
    }
    if (fread(text, 1, n, f) != n) {
        nnr_set_error("%s: read failed: %s", path, strerror(errno));
        free(text);
        return -1;
    }
    json_error_t err;
    *root = json_loadb(text, n, JSON_REJECT_DUPLICATES, &err);
    free(text);
    if (!*root) {
        nnr_set_error("%s: bad JSON header at byte %d: %s", path, err.position, err.text);
        return -1;
    }
    return 0;
}

static int read_file(const char *path, FILE *f, nnr_tensors *out) {
    struct stat st;
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
        nnr_set_error("%s: not a regular file", path);
        return -1;
    }
    json_t *root = NULL;
    if (read_header(path, f, st.st_size, &root)) return -1;
    int64_t data_size = st.st_size - ftell(f);
    slot *s = NULL;
    int n = 0;
    int rc = parse_header(path, root, data_size, &s, &n, out);
    json_decref(root);
    if (rc == 0) rc = read_data(path, f, s, n);
    if (rc == 0) {
        out->t = calloc((size_t)n + 1, sizeof *out->t);
        if (!out->t) {
            nnr_set_error("%s: out of memory", path);
            rc = -1;
        }
    }
    for (int i = 0; i < n; i++) {
        if (rc == 0) out->t[out->n++] = s[i].t;
        else nnr_tensor_free(&s[i].t);
    }
    free(s);
    return rc;
}

int nnr_st_read(const char *path, nnr_tensors *out) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) {
        nnr_set_error("%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    int rc = read_file(path, f, out);
    fclose(f);
    if (rc) nnr_tensors_free(out);
    return rc;
}

/* ---- writing --------------------------------------------------------------------------- */

static int check_tensor(const char *path, const nnr_tensor *t, json_t *root, int64_t *bytes) {
    if (!t->name || strcmp(t->name, "__metadata__") == 0 || json_object_get(root, t->name)) {
        nnr_set_error("%s: tensor name '%s' is missing, reserved or used twice", path,
                      t->name ? t->name : "(null)");
        return -1;
    }
    if (t->rank < 0 || t->rank > NNR_MAXRANK) {
        nnr_set_error("%s: tensor '%s': rank %d is out of range", path, t->name, t->rank);
        return -1;
    }
    for (int i = 0; i < t->rank; i++)
        if (t->shape[i] < 0) {
            nnr_set_error("%s: tensor '%s': negative dimension", path, t->name);
            return -1;
        }
    if ((*bytes = shape_bytes(t->dtype, t->rank, t->shape)) < 0) {
        nnr_set_error("%s: tensor '%s': shape is too large", path, t->name);
        return -1;
    }
    if (*bytes > 0 && !t->data) {
        nnr_set_error("%s: tensor '%s' has no data", path, t->name);
        return -1;
    }
    return 0;
}

static json_t *tensor_entry(const nnr_tensor *t, int64_t begin, int64_t end) {
    json_t *shape = json_array();
    for (int i = 0; i < t->rank; i++) json_array_append_new(shape, json_integer(t->shape[i]));
    return json_pack("{s:s, s:o, s:[I,I]}", "dtype", nnr_dtype_name(t->dtype), "shape", shape,
                     "data_offsets", (json_int_t)begin, (json_int_t)end);
}

/* The header JSON, padded with spaces to a multiple of 8 bytes so the data region is
 * aligned for every dtype when the file is mapped. */
static char *build_header(const char *path, const nnr_tensor *ts, int n,
                          const char *const *meta, int nmeta, size_t *len) {
    /* json_object_set_new fails (and drops the value) on keys or strings that are not
     * UTF-8, so every insertion is checked: a silently dropped entry would leave data
     * without a header entry. */
    json_t *root = json_object(), *m = json_object();
    int ok = root && m;
    for (int i = 0; ok && i < nmeta; i++)
        ok = meta[2 * i] && meta[2 * i + 1] &&
             json_object_set_new(m, meta[2 * i], json_string(meta[2 * i + 1])) == 0;
    if (ok && nmeta > 0) ok = json_object_set(root, "__metadata__", m) == 0;
    json_decref(m);
    int64_t at = 0, bytes;
    for (int i = 0; ok && i < n; i++) {
        if (check_tensor(path, &ts[i], root, &bytes)) {
            json_decref(root);
            return NULL;
        }
        ok = json_object_set_new(root, ts[i].name, tensor_entry(&ts[i], at, at + bytes)) == 0;
        at += bytes;
    }
    char *text = ok ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    char *padded = text ? malloc(strlen(text) + 8) : NULL;
    if (!padded) {
        free(text);
        nnr_set_error("%s: cannot encode the header: names and metadata must be UTF-8 strings",
                      path);
        return NULL;
    }
    *len = strlen(text);
    memcpy(padded, text, *len);
    while (*len % 8) padded[(*len)++] = ' ';
    free(text);
    return padded;
}

static int write_body(FILE *f, const char *header, size_t hlen, const nnr_tensor *ts, int n) {
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    if (fwrite(len8, 1, 8, f) != 8 || fwrite(header, 1, hlen, f) != hlen) return -1;
    for (int i = 0; i < n; i++) {
        size_t bytes = (size_t)shape_bytes(ts[i].dtype, ts[i].rank, ts[i].shape);
        if (bytes && fwrite(ts[i].data, 1, bytes, f) != bytes) return -1;
    }
    return 0;
}

static int write_temp(const char *path, const char *tmp, const char *header, size_t hlen,
                      const nnr_tensor *ts, int n) {
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        nnr_set_error("%s: cannot create %s: %s", path, tmp, strerror(errno));
        return -1;
    }
    int rc = write_body(f, header, hlen, ts, n);
    if (rc == 0) rc = fflush(f) ? -1 : fsync(fileno(f));
    int err = errno;
    if (fclose(f) && rc == 0) {
        rc = -1;
        err = errno;
    }
    if (rc) nnr_set_error("%s: write failed: %s", path, strerror(err));
    return rc;
}

/* The rename is durable only once the directory entry itself reaches the disk.  File
 * systems that cannot fsync a directory (EINVAL) give no stronger promise to make. */
static int sync_dir(const char *path) {
    char *dir = strdup(path);
    if (!dir) {
        nnr_set_error("%s: out of memory", path);
        return -1;
    }
    char *slash = strrchr(dir, '/');
    const char *d = !slash ? "." : slash == dir ? "/" : (*slash = 0, dir);
    int fd = open(d, O_RDONLY | O_DIRECTORY);
    int rc = fd < 0 || (fsync(fd) && errno != EINVAL) ? -1 : 0;
    if (rc) nnr_set_error("%s: cannot sync directory %s: %s", path, d, strerror(errno));
    if (fd >= 0) close(fd);
    free(dir);
    return rc;
}

/* PATH.tmp.PID files that writers killed before their rename left behind: removed when
 * process PID no longer exists (kill(PID, 0) fails with ESRCH).  A live process's file,
 * or one of a process this user may not signal (EPERM), may be a write in progress and
 * stays.  Failures here cost only disk space, so they are ignored. */
static void remove_stale(const char *path) {
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t dlen = slash ? (size_t)(slash - path) : 0, blen = strlen(base);
    char *dir = strndup(slash ? path : ".", slash ? (dlen ? dlen : 1) : 1);
    DIR *d = dir ? opendir(dir) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        const char *tail = e->d_name + blen;
        if (strncmp(e->d_name, base, blen) || strncmp(tail, ".tmp.", 5) || !tail[5]) continue;
        char *end;
        errno = 0;
        long pid = strtol(tail + 5, &end, 10);
        if (*end || errno || pid <= 0 || pid == (long)getpid() || pid > INT_MAX) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        char *stale = malloc(strlen(dir) + strlen(e->d_name) + 2);
        if (stale) {
            sprintf(stale, "%s/%s", dir, e->d_name);
            unlink(stale);
        }
        free(stale);
    }
    if (d) closedir(d);
    free(dir);
}

int nnr_st_write(const char *path, const nnr_tensor *ts, int n, const char *const *meta,
                 int nmeta_pairs) {
    remove_stale(path);
    size_t hlen;
    char *header = build_header(path, ts, n, meta, nmeta_pairs, &hlen);
    if (!header) return -1;
    size_t cap = strlen(path) + 32;
    char *tmp = malloc(cap);
    if (!tmp) {
        free(header);
        nnr_set_error("%s: out of memory", path);
        return -1;
    }
    snprintf(tmp, cap, "%s.tmp.%ld", path, (long)getpid());
    int rc = write_temp(path, tmp, header, hlen, ts, n);
    if (rc == 0 && rename(tmp, path)) {
        nnr_set_error("%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
        rc = -1;
    }
    if (rc) remove(tmp);
    else rc = sync_dir(path);
    free(tmp);
    free(header);
    return rc;
}
