/* data.c — data sets: the files named on the trainer's command line turned into one
 * column per io entry of a model, and the split and gather the training loop feeds from.
 *
 * A spec is "NAME=FILE" (column NAME from FILE) or a bare "FILE", which must be
 * safetensors and gives every needed column from the tensor of the same name.  A FILE's
 * format is decided by its name first: ".safetensors"; ".csv"; ".idx", ".gz" or an
 * MNIST-style "-ubyte" / "-idx" name.  When the name says nothing, its first bytes decide:
 * an 8-byte header length followed by '{' is safetensors, a gzip or IDX magic (00 00 type
 * rank) is IDX, anything else is read as CSV text.  A safetensors FILE given as NAME=FILE
 * supplies its tensor NAME, or its only tensor whatever that is called.
 *
 * Columns are converted once, on load, so the training loop never converts: float
 * columns to the model's dtype (IDX ubyte values divided by 255, every other type taken
 * as the number it holds) and checked finite; class columns to int32, checked integral
 * and inside [0, classes).
 *
 * A CSV file with a header row can also feed a whole model (nnr_data_load_csv): the
 * column named on the command line (--label-column) gives the label, the others the one
 * float input.  Standardization (--standardize) rescales the float inputs in place, once,
 * with per-feature statistics of the training set.  The training file's feature names and string labels' class names are learned into a
 * checkpoint, and later files are matched against them by name.  (Text files for
 * character models: text.c.)
 */
#include "nnr.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef enum { FMT_SAFETENSORS, FMT_IDX, FMT_CSV } file_format;

const char *nnr_io_kind_name(nnr_io_kind kind) {
    switch (kind) {
    case NNR_IO_INPUT:  return "input";
    case NNR_IO_LABEL:  return "label";
    case NNR_IO_TARGET: return "target";
    case NNR_IO_OUTPUT: return "output";
    }
    return "?";
}

static size_t col_elem_size(const nnr_model_info *info, int k) {
    return info->io[k].classes ? sizeof(int32_t) : nnr_dtype_size(info->dtype);
}

/* Appends ", name" (or "name" first) to the list a message shows, while it fits. */
static void add_name(char *buf, size_t cap, size_t *len, const char *name) {
    if (*len < cap) *len += (size_t)snprintf(buf + *len, cap - *len, "%s%s", *len ? ", " : "", name);
}

/* "x, y": what a message offers when a name is wrong. */
static const char *io_names(const nnr_model_info *info, char *buf, size_t cap) {
    size_t len = 0;
    buf[0] = '\0';
    for (int k = 0; k < info->nio; k++) add_name(buf, cap, &len, info->io[k].name);
    return buf;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* fopen opens a directory, and only the first read fails (EISDIR, "read error"), so a
 * directory is refused by name before.  fd: PATH open already, or -1. */
static int refuse_directory(const char *path, int fd) {
    struct stat st;
    if ((fd >= 0 ? fstat(fd, &st) : stat(path, &st)) || !S_ISDIR(st.st_mode)) return 0;
    nnr_set_error("%s: is a directory; a data file is needed", path);
    return -1;
}

FILE *nnr_open_input(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) nnr_set_error("%s: cannot open: %s", path, strerror(errno));
    else if (refuse_directory(path, fileno(f))) fclose(f), f = NULL;
    return f;
}

int nnr_read_file(const char *path, unsigned char **buf, int64_t *len) {
    *buf = NULL;
    *len = 0;
    FILE *f = nnr_open_input(path);
    if (!f) return -1;
    size_t cap = 0, n = 0;
    unsigned char *b = NULL;
    for (;;) {
        if (n + 1 >= cap) {                      /* room for the NUL after the data */
            unsigned char *p = realloc(b, cap = cap ? 2 * cap : 1 << 16);
            if (!p) {
                free(b);
                fclose(f);
                nnr_set_error("%s: out of memory reading it", path);
                return -1;
            }
            b = p;
        }
        size_t got = fread(b + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f) ? errno : 0;
    fclose(f);
    if (bad) {
        free(b);
        nnr_set_error("%s: read failed: %s", path, strerror(bad));
        return -1;
    }
    b[n] = 0;
    *buf = b;
    *len = (int64_t)n;
    return 0;
}

static int sniff_format(const char *path, file_format *fmt) {
    FILE *f = nnr_open_input(path);
    if (!f) return -1;
    unsigned char b[9];
    size_t got = fread(b, 1, sizeof b, f);
    fclose(f);
    if (got == 9 && b[8] == '{')
        *fmt = FMT_SAFETENSORS;
    else if (got >= 2 && ((b[0] == 0x1f && b[1] == 0x8b) || (b[0] == 0 && b[1] == 0)))
        *fmt = FMT_IDX;
    else
        *fmt = FMT_CSV;
    return 0;
}

static int file_format_of(const char *path, file_format *fmt) {
    if (refuse_directory(path, -1)) return -1;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (ends_with(base, ".safetensors")) *fmt = FMT_SAFETENSORS;
    else if (ends_with(base, ".csv")) *fmt = FMT_CSV;
    else if (ends_with(base, ".idx") || ends_with(base, ".gz") || strstr(base, "-ubyte") ||
             strstr(base, "-idx"))
        *fmt = FMT_IDX;
    else return sniff_format(path, fmt);
    return 0;
}

static double elem(const void *p, nnr_dtype dt, int64_t i) {
    switch (dt) {
    case NNR_F32: return ((const float *)p)[i];
    case NNR_F64: return ((const double *)p)[i];
    case NNR_I32: return ((const int32_t *)p)[i];
    case NNR_I64: return (double)((const int64_t *)p)[i];
    case NNR_U8:  return ((const uint8_t *)p)[i];
    case NNR_I8:  return ((const int8_t *)p)[i];
    case NNR_I16: return ((const int16_t *)p)[i];
    }
    return 0;
}

/* "812" or "28x29=812": the per-example part of a file's shape, as a message shows it. */
static const char *per_example_str(char *buf, size_t cap, const nnr_tensor *t, int64_t per) {
    if (t->rank <= 2) {
        snprintf(buf, cap, "%lld", (long long)per);
        return buf;
    }
    size_t len = 0;
    for (int i = 1; i < t->rank && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%lld", i > 1 ? "x" : "",
                                (long long)t->shape[i]);
    if (len < cap) snprintf(buf + len, cap - len, "=%lld", (long long)per);
    return buf;
}

static int convert_float(const nnr_model_info *info, const nnr_io *io, const nnr_tensor *t,
                         int scale_u8, const char *where, void *col) {
    int64_t numel = nnr_tensor_numel(t);
    double div = scale_u8 && t->dtype == NNR_U8 ? 255.0 : 1.0;
    for (int64_t i = 0; i < numel; i++) {
        double v = elem(t->data, t->dtype, i) / div;
        if (info->dtype == NNR_F32) {
            float f = (float)v;
            ((float *)col)[i] = f;
            v = f;                         /* a double too large for float is caught too */
        } else {
            ((double *)col)[i] = v;
        }
        if (!isfinite(v)) {
            nnr_set_error("%s: non-finite value at example %lld", where,
                          (long long)(i / io->size));
            return -1;
        }
    }
    return 0;
}

static int convert_class(const nnr_io *io, const nnr_tensor *t, const char *where,
                         int32_t *col) {
    const char *what = io->kind == NNR_IO_LABEL ? "label" : "class";
    int64_t numel = nnr_tensor_numel(t);
    for (int64_t i = 0; i < numel; i++) {
        double v = elem(t->data, t->dtype, i);
        long long ex = (long long)(i / io->size);
        if (v != floor(v)) {               /* NaN fails this too */
            nnr_set_error("%s: %s %g at example %lld is not an integer", where, what, v, ex);
            return -1;
        }
        if (v < 0 || v >= io->classes) {
            nnr_set_error("%s: %s %g at example %lld is outside [0, %d)", where, what, v, ex,
                          io->classes);
            return -1;
        }
        col[i] = (int32_t)v;
    }
    return 0;
}

/* What nnr_data_load tracks while it reads specs: the column each spec filled and how
 * many examples each column has, for the checks made once every spec is read. */
typedef struct loader {
    const nnr_model_info *info;
    unsigned     need;
    nnr_dataset *out;
    const char **from;               /* from[k]: the spec that gave column k */
    int64_t     *rows;               /* rows[k]: its example count */
    char         bare[600];          /* the last bare FILE and its tensors, for a message */
} loader;

/* Column k from tensor t; `where` names the file (and tensor) in messages. */
static int set_column(loader *ld, int k, const nnr_tensor *t, int scale_u8, const char *where) {
    const nnr_model_info *info = ld->info;
    const nnr_io *io = &info->io[k];
    if (t->rank < 1) {
        nnr_set_error("%s: a scalar; %s '%s' needs examples along the first dimension", where,
                      nnr_io_kind_name(io->kind), io->name);
        return -1;
    }
    int64_t per = 1;
    for (int i = 1; i < t->rank; i++)    /* saturating: [0, 2^32, 2^32] is a valid IDX file */
        per = t->shape[i] && per > INT64_MAX / t->shape[i] ? INT64_MAX : per * t->shape[i];
    if (per != io->size) {
        char buf[128];
        nnr_set_error("%s: %lld elements per example expected for %s '%s', the file has %s",
                      where, (long long)io->size, nnr_io_kind_name(io->kind), io->name,
                      per_example_str(buf, sizeof buf, t, per));
        return -1;
    }
    if (t->shape[0] == 0) {
        nnr_set_error("%s: no examples", where);
        return -1;
    }
    void *col = nnr_alloc_aligned((size_t)nnr_tensor_numel(t) * col_elem_size(info, k));
    if (!col) {
        nnr_set_error("%s: out of memory", where);
        return -1;
    }
    int rc = io->classes ? convert_class(io, t, where, col)
                         : convert_float(info, io, t, scale_u8, where, col);
    if (rc) {
        free(col);
        return -1;
    }
    ld->out->col[k] = col;
    ld->rows[k] = t->shape[0];
    return 0;
}

/* Whether the data set must provide column k: its kind is asked for and, for predict's
 * data (NNR_NEED_PREDICT), some output depends on it. */
static int needed(const loader *ld, int k) {
    const nnr_io *io = &ld->info->io[k];
    if (!(ld->need & 1u << io->kind)) return 0;
    return !(ld->need & NNR_NEED_PREDICT && io->kind == NNR_IO_INPUT && io->predict_unused);
}

static int find_io(const nnr_model_info *info, const char *name, size_t len) {
    for (int k = 0; k < info->nio; k++)
        if (strlen(info->io[k].name) == len && strncmp(info->io[k].name, name, len) == 0)
            return k;
    return -1;
}

/* A spec is NAME=FILE when what precedes the first '=' could be a name; otherwise the
 * whole spec is a path (which may itself contain '='). */
static size_t spec_name_len(const char *spec) {
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec) return 0;
    for (const char *p = spec; p < eq; p++)
        if (!(*p == '_' || *p == '.' || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
              (*p >= 'A' && *p <= 'Z')))
            return 0;
    return (size_t)(eq - spec);
}

static int claim(loader *ld, int k, const char *spec) {
    if (ld->from[k]) {
        nnr_set_error("'%s' is given twice (%s and %s)", ld->info->io[k].name, ld->from[k], spec);
        return -1;
    }
    ld->from[k] = spec;
    return 0;
}

/* "a, b, c": a safetensors file's tensor names, for a message. */
static const char *tensor_names(const nnr_tensors *ts, char *buf, size_t cap) {
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < ts->n; i++) add_name(buf, cap, &len, ts->t[i].name);
    return buf;
}

static int load_named(loader *ld, int k, const char *spec, const char *file) {
    file_format fmt;
    if (claim(ld, k, spec)) return -1;
    if (!needed(ld, k)) return 0;   /* accepted and not read: predict's labels, unused inputs */
    if (file_format_of(file, &fmt)) return -1;
    const char *name = ld->info->io[k].name;
    if (fmt == FMT_SAFETENSORS) {
        nnr_tensors ts = {0};
        if (nnr_st_read(file, &ts)) return -1;
        const nnr_tensor *t = nnr_tensors_find(&ts, name);
        if (!t && ts.n == 1) t = &ts.t[0];
        int rc = -1;
        if (!t) {
            char names[512];
            nnr_set_error("%s: no tensor '%s' among its %d tensors (%s)", file, name, ts.n,
                          tensor_names(&ts, names, sizeof names));
        } else {
            char where[1100];
            snprintf(where, sizeof where, "%s: tensor '%s'", file, t->name ? t->name : "");
            rc = set_column(ld, k, t, 0, where);
        }
        nnr_tensors_free(&ts);
        return rc;
    }
    nnr_tensor t = {0};
    if ((fmt == FMT_IDX ? nnr_idx_read(file, &t) : nnr_csv_read(file, &t))) return -1;
    int rc = set_column(ld, k, &t, fmt == FMT_IDX, file);
    nnr_tensor_free(&t);
    return rc;
}

/* A bare FILE: every needed column the safetensors file has a tensor for. */
static int load_bare(loader *ld, const char *file) {
    const nnr_model_info *info = ld->info;
    file_format fmt;
    if (file_format_of(file, &fmt)) return -1;
    if (fmt != FMT_SAFETENSORS) {
        char names[512];
        nnr_set_error("%s: not a safetensors file; give IDX and CSV files as NAME=FILE "
                      "(the model has %s)", file, io_names(info, names, sizeof names));
        return -1;
    }
    nnr_tensors ts = {0};
    if (nnr_st_read(file, &ts)) return -1;
    char names[512];
    snprintf(ld->bare, sizeof ld->bare, "%s (its tensors: %s)", file,
             tensor_names(&ts, names, sizeof names));
    int rc = 0;
    for (int k = 0; k < info->nio && rc == 0; k++) {
        const nnr_tensor *t = nnr_tensors_find(&ts, info->io[k].name);
        if (!t || !needed(ld, k)) continue;
        char where[1100];
        snprintf(where, sizeof where, "%s: tensor '%s'", file, t->name);
        rc = claim(ld, k, file) ? -1 : set_column(ld, k, t, 0, where);
    }
    nnr_tensors_free(&ts);
    return rc;
}

static int load_spec(loader *ld, const char *spec) {
    size_t len = spec_name_len(spec);
    if (!len) return load_bare(ld, spec);
    int k = find_io(ld->info, spec, len);
    if (k < 0) {
        char names[512];
        nnr_set_error("unknown tensor '%.*s' in %s; the model has %s", (int)len, spec, spec,
                      io_names(ld->info, names, sizeof names));
        return -1;
    }
    return load_named(ld, k, spec, spec + len + 1);
}

/* Every column holds the same number of examples, and every needed kind is there. */
static int check_columns(loader *ld) {
    const nnr_model_info *info = ld->info;
    int first = -1;
    for (int k = 0; k < info->nio; k++) {
        if (!ld->out->col[k]) continue;
        if (first < 0) {
            first = k;
        } else if (ld->rows[k] != ld->rows[first]) {
            nnr_set_error("'%s' has %lld examples (%s) but '%s' has %lld (%s)",
                          info->io[first].name, (long long)ld->rows[first], ld->from[first],
                          info->io[k].name, (long long)ld->rows[k], ld->from[k]);
            return -1;
        }
    }
    for (int k = 0; k < info->nio; k++) {
        const nnr_io *io = &info->io[k];
        if (ld->out->col[k] || !needed(ld, k)) continue;
        if (ld->bare[0])   /* a bare FILE gives what it has a tensor of the same name for */
            nnr_set_error("no data for %s '%s': no tensor '%s' in %s; give %s=FILE",
                          nnr_io_kind_name(io->kind), io->name, io->name, ld->bare, io->name);
        else if (ld->need & NNR_NEED_PREDICT)
            nnr_set_error("no data for %s '%s', which the model's outputs depend on (give "
                          "%s=FILE)", nnr_io_kind_name(io->kind), io->name, io->name);
        else
            nnr_set_error("no data for %s '%s' (give %s=FILE)", nnr_io_kind_name(io->kind), io->name,
                          io->name);
        return -1;
    }
    ld->out->n = first < 0 ? 0 : ld->rows[first];
    return 0;
}

int nnr_data_load(const nnr_model_info *info, int nspec, const char *const *spec,
                  unsigned need, nnr_dataset *out) {
    memset(out, 0, sizeof *out);
    out->ncol = info->nio;
    out->col = calloc((size_t)info->nio + 1, sizeof *out->col);
    loader ld = {info, need, out, calloc((size_t)info->nio + 1, sizeof(char *)),
                 calloc((size_t)info->nio + 1, sizeof(int64_t)), ""};
    int rc = -1;
    if (!out->col || !ld.from || !ld.rows) {
        nnr_set_error("out of memory loading data");
    } else {
        rc = 0;
        for (int s = 0; s < nspec && rc == 0; s++) rc = load_spec(&ld, spec[s]);
        if (rc == 0) rc = check_columns(&ld);
    }
    free(ld.from);
    free(ld.rows);
    if (rc) nnr_data_free(out);
    return rc;
}

void nnr_data_free(nnr_dataset *d) {
    if (!d) return;
    for (int k = 0; k < d->ncol && d->col; k++) free(d->col[k]);
    free(d->col);
    memset(d, 0, sizeof *d);
}

int nnr_data_split(const nnr_model_info *info, nnr_dataset *d, double frac, nnr_dataset *val) {
    memset(val, 0, sizeof *val);
    if (!(frac > 0 && frac < 1)) {
        nnr_set_error("validation split %g is not inside (0, 1)", frac);
        return -1;
    }
    /* Keras: split_at = int(n * (1 - validation_split)) */
    int64_t keep = (int64_t)((double)d->n * (1.0 - frac));
    if (keep < 1 || keep >= d->n) {
        nnr_set_error("validation split %g of %lld examples leaves an empty %s set", frac,
                      (long long)d->n, keep < 1 ? "training" : "validation");
        return -1;
    }
    val->n = d->n - keep;
    val->ncol = d->ncol;
    val->col = calloc((size_t)d->ncol + 1, sizeof *val->col);
    if (!val->col) goto oom;
    for (int k = 0; k < d->ncol; k++) {
        if (!d->col[k]) continue;
        size_t row = (size_t)info->io[k].size * col_elem_size(info, k);
        val->col[k] = nnr_alloc_aligned((size_t)val->n * row);
        if (!val->col[k]) goto oom;
        memcpy(val->col[k], (char *)d->col[k] + (size_t)keep * row, (size_t)val->n * row);
    }
    for (int k = 0; k < d->ncol; k++) {
        if (!d->col[k]) continue;
        /* giving the tail back is optional: without memory for the copy, the larger block
         * stays (a copy, not realloc, which would not keep the alignment) */
        size_t bytes = (size_t)keep * (size_t)info->io[k].size * col_elem_size(info, k);
        void *p = nnr_alloc_aligned(bytes);
        if (!p) continue;
        memcpy(p, d->col[k], bytes);
        free(d->col[k]);
        d->col[k] = p;
    }
    d->n = keep;
    return 0;
oom:
    nnr_data_free(val);
    nnr_set_error("out of memory splitting off validation data");
    return -1;
}

void *nnr_alloc_aligned(size_t bytes) {
    size_t size = (bytes + 63) / 64 * 64;   /* aligned_alloc wants a multiple of the alignment */
    return aligned_alloc(64, size ? size : 64);
}

void nnr_data_gather(const nnr_model_info *info, const nnr_dataset *d, const int64_t *idx,
                     int n, void *const *dst) {
    for (int k = 0; k < d->ncol; k++) {
        if (!d->col[k] || !dst[k]) continue;
        size_t row = (size_t)info->io[k].size * col_elem_size(info, k);
        const char *src = d->col[k];
        char *to = dst[k];
        for (int i = 0; i < n; i++) memcpy(to + (size_t)i * row, src + (size_t)idx[i] * row, row);
    }
}

/* ---- CSV files with a header naming the label column ------------------------------- */

/* The index of the header field called name; -1: none (or no header). */
static int header_column(char **names, const char *name) {
    for (int i = 0; names && names[i]; i++)
        if (strcmp(names[i], name) == 0) return i;
    return -1;
}

/* The one float input and the one label or target a CSV file feeds. */
static int csv_roles(const nnr_model_info *info, const char *path, int *label, int *input) {
    *label = *input = -1;
    for (int k = 0; k < info->nio; k++) {
        const nnr_io *io = &info->io[k];
        int *slot = io->kind == NNR_IO_LABEL || io->kind == NNR_IO_TARGET ? label
                  : io->kind == NNR_IO_INPUT && !io->classes ? input : NULL;
        if (!slot) {
            nnr_set_error("%s: --label-column feeds models of one float input and one label or "
                          "target; %s '%s' cannot be fed from it", path, nnr_io_kind_name(io->kind), io->name);
            return -1;
        }
        if (*slot >= 0) {
            nnr_set_error("%s: --label-column feeds models of one float input and one label or "
                          "target; model %s has more than one %s", path, info->name,
                          slot == label ? "label or target" : "float input");
            return -1;
        }
        *slot = k;
    }
    if (*input < 0) {
        nnr_set_error("%s: model %s has no float input to feed", path, info->name);
        return -1;
    }
    if (*label >= 0 && info->io[*label].size != 1) {
        const nnr_io *lab = &info->io[*label];
        nnr_set_error("%s: %s '%s' must be one %s per example to come from a column", path,
                      nnr_io_kind_name(lab->kind), lab->name, lab->classes ? "class(K)" : "float ([1])");
        return -1;
    }
    return 0;
}

/* Whether s is UTF-8 text, which a checkpoint's JSON metadata can hold. */
static int utf8_ok(const unsigned char *s) {
    while (*s) {
        int extra = *s < 0x80 ? 0 : (*s & 0xE0) == 0xC0 && *s >= 0xC2 ? 1
                  : (*s & 0xF0) == 0xE0 ? 2 : (*s & 0xF8) == 0xF0 && *s <= 0xF4 ? 3 : -1;
        if (extra < 0) return 0;
        for (s++; extra > 0; extra--, s++)
            if ((*s & 0xC0) != 0x80) return 0;
    }
    return 1;
}

/* "a, b, c": a list of names, for a message. */
static const char *name_list(char *const *v, int n, char *buf, size_t cap) {
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < n; i++) add_name(buf, cap, &len, v[i]);
    return buf;
}

/* Which file column feeds feature j: the file's columns but the label's, in file order; or,
 * when names stores the training file's feature names and this file has a header, the
 * column of the j-th stored name, so the same columns in another order still line up. */
static int feature_order(const char *path, char **header, int64_t cols, int lc,
                         const nnr_checkpoint *names, int *feat) {
    int nf = 0;
    for (int c = 0; c < cols; c++)
        if (c != lc) feat[nf++] = c;
    if (!names || !names->columns || !header) return 0;
    char list[600];
    name_list(names->columns, names->ncolumns, list, sizeof list);
    for (int j = 0; j < nf; j++)
        if (header_column(names->columns, header[feat[j]]) < 0) {
            nnr_set_error("%s: column '%s' is not one of the %d feature columns the model was "
                          "trained on (%s)", path, header[feat[j]], names->ncolumns, list);
            return -1;
        }
    for (int j = 0; j < names->ncolumns; j++) {
        int found = -1;
        for (int i = 0; i < nf; i++)
            if (strcmp(header[feat[i]], names->columns[j]) == 0 && found < 0) found = i;
        if (found < 0) {
            nnr_set_error("%s: no column '%s', a feature column the model was trained on (%s)",
                          path, names->columns[j], list);
            return -1;
        }
    }
    if (nf != names->ncolumns) {   /* the same names, so some name is there twice */
        nnr_set_error("%s: %d feature columns, but the model was trained on %d (%s); a name is "
                      "repeated", path, nf, names->ncolumns, list);
        return -1;
    }
    /* the k-th use of a name (a repeated name, such as pandas' empty index name) goes to
     * the k-th column of that name: positional among equals */
    int *by_name = malloc((size_t)(nf ? nf : 1) * sizeof *by_name);
    if (!by_name) {
        nnr_set_error("%s: out of memory", path);
        return -1;
    }
    char *used = calloc((size_t)nf + 1, 1);
    for (int j = 0; used && j < nf; j++)
        for (int i = 0; i < nf; i++)
            if (!used[i] && strcmp(header[feat[i]], names->columns[j]) == 0) {
                by_name[j] = feat[i];
                used[i] = 1;
                break;
            }
    if (used) memcpy(feat, by_name, (size_t)nf * sizeof *feat);
    free(by_name);
    free(used);
    if (!used) nnr_set_error("%s: out of memory", path);
    return used ? 0 : -1;
}

/* The header names of the feature columns, stored in names when training learns them;
 * names that are not UTF-8 (which JSON cannot hold) are not stored, so not checked. */
static int learn_columns(const char *path, char **header, const int *feat, int nf,
                         nnr_checkpoint *names) {
    char **v = malloc((size_t)(nf ? nf : 1) * sizeof *v);
    if (!v) {
        nnr_set_error("%s: out of memory", path);
        return -1;
    }
    int ok = 1;
    for (int j = 0; j < nf; j++) ok &= utf8_ok((const unsigned char *)(v[j] = header[feat[j]]));
    if (ok && !(names->columns = nnr_strings_copy(v, nf))) ok = -1;
    if (ok > 0) names->ncolumns = nf;
    free(v);
    if (ok < 0) nnr_set_error("%s: out of memory", path);
    return ok < 0 ? -1 : 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted distinct labels of a training file as class names into names (a scratch
 * list when names is NULL), at most the label's K of them. */
static int learn_classes(const char *path, const char *column, char **texts, int64_t rows,
                         const nnr_io *lab, nnr_checkpoint *names, nnr_checkpoint *scratch) {
    char **v = malloc((size_t)rows * sizeof *v);
    if (!v) {
        nnr_set_error("%s: out of memory", path);
        return -1;
    }
    memcpy(v, texts, (size_t)rows * sizeof *v);
    qsort(v, (size_t)rows, sizeof *v, cmp_str);
    int64_t n = 0;
    for (int64_t i = 0; i < rows; i++)
        if (n == 0 || strcmp(v[n - 1], v[i])) v[n++] = v[i];
    int rc = 0;
    for (int64_t i = 0; i < n && rc == 0; i++)
        if (!utf8_ok((const unsigned char *)v[i])) {
            nnr_set_error("%s: label '%.40s' in column '%s' is not UTF-8 text", path, v[i], column);
            rc = -1;
        }
    if (rc == 0 && n > lab->classes) {
        char list[600];
        nnr_set_error("%s: column '%s' has %lld distinct labels (%s), but label '%s' is "
                      "class(%d)", path, column, (long long)n,
                      name_list(v, n < 20 ? (int)n : 20, list, sizeof list), lab->name, lab->classes);
        rc = -1;
    }
    nnr_checkpoint *into = names ? names : scratch;
    if (rc == 0 && !(into->classes = nnr_strings_copy(v, (int)n))) {
        nnr_set_error("%s: out of memory", path);
        rc = -1;
    }
    if (rc == 0) into->nclasses = (int)n;
    free(v);
    return rc;
}

/* The label column as numbers into y: class ids looked up by name among the class names
 * (learned from this file when training on labels that are not all integers), or the
 * numbers themselves.  Data row r is line r + 2 (the header is line 1). */
static int csv_labels(const char *path, const nnr_tensor *t, int lc, const char *column,
                      char **texts, const nnr_io *lab, nnr_checkpoint *names, int learn,
                      float *y) {
    int64_t rows = t->shape[0], cols = t->shape[1], text_row = -1;
    const float *v = t->data;
    for (int64_t r = 0; r < rows; r++) {
        y[r] = v[r * cols + lc];
        if (isnan(y[r]) && text_row < 0) text_row = r;
    }
    const nnr_checkpoint *known = names && names->classes ? names : NULL;
    if (!lab->classes || (!known && text_row < 0)) {
        if (text_row < 0) return 0;
        nnr_set_error("%s:%lld: %s '%s' from column '%s': '%.40s' is not a number", path,
                      (long long)text_row + 2, nnr_io_kind_name(lab->kind), lab->name, column,
                      texts[text_row]);
        return -1;
    }
    nnr_checkpoint scratch = {0};
    if (!known && !learn) {
        nnr_set_error("%s:%lld: label '%.40s' in column '%s' is not a class number, and no "
                      "class names were stored with the model (it was trained on numeric "
                      "labels)", path, (long long)text_row + 2, texts[text_row], column);
        return -1;
    }
    if (!known) {
        if (learn_classes(path, column, texts, rows, lab, names, &scratch)) return -1;
        known = names ? names : &scratch;
    }
    int rc = 0;
    for (int64_t r = 0; r < rows && rc == 0; r++) {
        char **hit = bsearch(&texts[r], known->classes, (size_t)known->nclasses,
                             sizeof *known->classes, cmp_str);
        if (hit) {
            y[r] = (float)(hit - known->classes);
        } else {
            char list[600];
            nnr_set_error("%s:%lld: label '%.40s' in column '%s' is not one of the %d classes "
                          "the model was trained on (%s)", path, (long long)r + 2, texts[r],
                          column, known->nclasses,
                          name_list(known->classes, known->nclasses, list, sizeof list));
            rc = -1;
        }
    }
    nnr_checkpoint_free(&scratch);
    return rc;
}

/* Column `label` (when lc >= 0; its values y) and the feature columns feat[] of t into out. */
static int split_csv(const nnr_model_info *info, const char *path, const nnr_tensor *t,
                     const int *feat, int64_t feats, const float *y, int label, int input,
                     const char *column, nnr_dataset *out) {
    int64_t rows = t->shape[0], cols = t->shape[1];
    const nnr_io *in = &info->io[input];
    if (feats != in->size) {
        nnr_set_error("%s: %lld feature columns, but input '%s' has %lld elements per example",
                      path, (long long)feats, in->name, (long long)in->size);
        return -1;
    }
    const float *v = t->data;
    float *x = nnr_alloc_aligned((size_t)(rows * feats) * sizeof *x);
    int64_t *rowv = calloc((size_t)info->nio + 1, sizeof *rowv);
    int rc = 0;
    if (!x || !rowv) {
        nnr_set_error("%s: out of memory", path);
        rc = -1;
    }
    for (int64_t r = 0; rc == 0 && r < rows; r++)
        for (int64_t j = 0; j < feats; j++) x[r * feats + j] = v[r * cols + feat[j]];
    nnr_tensor tx = {NULL, NNR_F32, 2, {rows, feats}, x};
    nnr_tensor ty = {NULL, NNR_F32, 1 + (info->io[label < 0 ? 0 : label].rank > 0), {rows, 1},
                     (void *)y};
    char where[1100];
    loader lx = {info, 0, out, NULL, rowv, ""};
    if (rc == 0) {
        snprintf(where, sizeof where, "%s: feature columns", path);
        rc = set_column(&lx, input, &tx, 0, where);
    }
    if (rc == 0 && y && label >= 0) {
        snprintf(where, sizeof where, "%s: column '%s'", path, column);
        rc = set_column(&lx, label, &ty, 0, where);
    }
    free(rowv);
    free(x);
    out->n = rows;
    return rc;
}

int nnr_data_load_csv(const nnr_model_info *info, const char *path, const char *label_column,
                      unsigned need, nnr_checkpoint *names, int learn, nnr_dataset *out) {
    memset(out, 0, sizeof *out);
    int label, input;
    if (csv_roles(info, path, &label, &input)) return -1;
    nnr_tensor t = {0};
    char **header, **texts;
    if (nnr_csv_read_text(path, &t, &header, label_column, &texts)) return -1;
    int want_label = label >= 0 && (need & 1u << info->io[label].kind);
    int lc = header_column(header, label_column), rc = 0;
    int64_t rows = t.shape[0], feats = t.shape[1] - (lc >= 0);
    int *feat = malloc((size_t)t.shape[1] * sizeof *feat);
    float *y = want_label && lc >= 0 ? malloc((size_t)rows * sizeof *y) : NULL;
    out->ncol = info->nio;
    if (lc < 0 && want_label) {
        if (header)
            nnr_set_error("%s: no column named '%s' in its header row (%lld columns)", path,
                          label_column, (long long)t.shape[1]);
        else
            nnr_set_error("%s: no header row (line 1 holds numbers), so no column named '%s'",
                          path, label_column);
        rc = -1;
    } else if (!feat || (want_label && !y) ||
               !(out->col = calloc((size_t)info->nio + 1, sizeof *out->col))) {
        nnr_set_error("%s: out of memory", path);
        rc = -1;
    } else {
        rc = feature_order(path, header, t.shape[1], lc, names, feat) ||
             (y && csv_labels(path, &t, lc, label_column, texts, &info->io[label], names, learn, y)) ||
             (learn && names && !names->columns && header &&
              learn_columns(path, header, feat, (int)feats, names)) ||
             split_csv(info, path, &t, feat, feats, y, y ? label : -1, input, label_column, out)
                 ? -1 : 0;
    }
    free(feat);
    free(y);
    free(texts);
    free(header);
    nnr_tensor_free(&t);
    if (rc) nnr_data_free(out);
    return rc;
}

/* ---- standardization ----------------------------------------------------------------- */

static int is_feature(const nnr_io *io) { return io->kind == NNR_IO_INPUT && !io->classes; }

int64_t nnr_data_features(const nnr_model_info *info) {
    int64_t n = 0;
    for (int k = 0; k < info->nio; k++)
        if (is_feature(&info->io[k])) n += info->io[k].size;
    return n;
}

static double value_at(const nnr_model_info *info, const void *col, int64_t i) {
    return info->dtype == NNR_F64 ? ((const double *)col)[i] : ((const float *)col)[i];
}

void nnr_data_stats(const nnr_model_info *info, const nnr_dataset *d, double *mean, double *std) {
    int64_t f0 = 0;
    for (int k = 0; k < info->nio; k++) {
        const nnr_io *io = &info->io[k];
        if (!is_feature(io)) continue;
        for (int64_t j = 0; j < io->size; j++) {
            double sum = 0, sq = 0;
            for (int64_t i = 0; d->col[k] && i < d->n; i++) sum += value_at(info, d->col[k], i * io->size + j);
            double mu = d->n ? sum / (double)d->n : 0;
            for (int64_t i = 0; d->col[k] && i < d->n; i++) {
                double dv = value_at(info, d->col[k], i * io->size + j) - mu;
                sq += dv * dv;
            }
            double sd = d->n ? sqrt(sq / (double)d->n) : 0;
            mean[f0 + j] = mu;
            std[f0 + j] = sd > 1e-12 * fmax(1, fabs(mu)) ? sd : 1;   /* constant: left centred */
        }
        f0 += io->size;
    }
}

/* count values of one float input (size features per example, statistics from mean and
 * std) standardized from src into dst, which may be src: in double, rounded once to the
 * model's dtype.  The trainer's data sets and NAME_predict's staging both come through
 * here, so the two give the same bits. */
static void standardize_values(const nnr_model_info *info, const void *src, void *dst,
                               int64_t count, int64_t size, const double *mean,
                               const double *std) {
    for (int64_t i = 0; i < count; i++) {
        double v = (value_at(info, src, i) - mean[i % size]) / std[i % size];
        if (info->dtype == NNR_F64) ((double *)dst)[i] = v;
        else ((float *)dst)[i] = (float)v;
    }
}

void nnr_data_standardize(const nnr_model_info *info, nnr_dataset *d, const double *mean,
                          const double *std) {
    int64_t f0 = 0;
    for (int k = 0; k < info->nio; k++) {
        const nnr_io *io = &info->io[k];
        if (!is_feature(io)) continue;
        if (d->col[k])
            standardize_values(info, d->col[k], d->col[k], d->n * io->size, io->size, mean + f0,
                               std + f0);
        f0 += io->size;
    }
}

const void *nnr_standardize_input(const nnr_model_info *info, const nnr_standardization *z,
                                  int k, const void *x, int n) {
    if (!z || !z->n || !x) return x;
    int64_t f0 = 0;   /* the first feature of io[k] */
    for (int j = 0; j < k; j++)
        if (is_feature(&info->io[j])) f0 += info->io[j].size;
    void *dst = (char *)z->stage + (size_t)info->batch * (size_t)f0 * nnr_dtype_size(info->dtype);
    standardize_values(info, x, dst, (int64_t)n * info->io[k].size, info->io[k].size,
                       z->mean + f0, z->std + f0);
    return dst;
}
