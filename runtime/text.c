/* text.c — a text file as examples for a character model (nnr_data_load_text, --text):
 * each byte of the file is one example, the label, with the bytes before it as the
 * context window; or, for a label with the input's shape [T], windows of T bytes each
 * labelled with the window shifted by one byte (the next byte at every position).
 */
#include "nnr.h"

#include <stdlib.h>
#include <string.h>

/* ---- text files: (context window, next byte) examples -------------------------------- */

#define TEXT_PAD '\n'               /* the context before the file's first byte */

/* The roles a text file's bytes play in a model: the class input [T] they feed, the label,
 * and whether that label is one next byte (a window per byte) or a next byte per position
 * (label class(K) [T]: windows of T bytes, each label the window shifted by one). */
typedef struct text_roles {
    int     input, label;
    int     per_step;
    int64_t t;                      /* the window: bytes of input per example */
} text_roles;

static int text_label_shape(const nnr_model_info *info, const char *path, const text_roles *r) {
    const nnr_io *lab = &info->io[r->label];          /* a label is always class(K) */
    if (lab->size == 1 || (lab->rank == 1 && lab->shape[0] == r->t)) return 0;
    char shape[256];
    nnr_set_error("%s: label '%s' must be one class(K) per example (the next byte) or class(K) "
                  "[%lld] like the input (the next byte at every position), not %s", path,
                  lab->name, (long long)r->t, nnr_shape_str(shape, sizeof shape, lab->rank, lab->shape));
    return -1;
}

/* The class input [T] and the class label a text file feeds; any other io entry is an
 * error, since the file cannot give it. */
static int find_text_roles(const nnr_model_info *info, const char *path, text_roles *r) {
    r->input = r->label = -1;
    for (int k = 0; k < info->nio; k++) {
        const nnr_io *io = &info->io[k];
        int *slot = io->kind == NNR_IO_INPUT && io->classes ? &r->input
                  : io->kind == NNR_IO_LABEL ? &r->label : NULL;
        if (!slot || *slot >= 0) {
            nnr_set_error("%s: a text file feeds models of one class input [T] (the context) and "
                          "one class label (the next byte); %s '%s' cannot be fed from it", path,
                          nnr_io_kind_name(io->kind), io->name);
            return -1;
        }
        *slot = k;
    }
    if (r->input < 0) {
        nnr_set_error("%s: model %s has no class input to hold the context (e.g. "
                      "'input ids: class(256) [16]')", path, info->name);
        return -1;
    }
    const nnr_io *in = &info->io[r->input];
    if (in->rank > 1) {
        char shape[256];
        nnr_set_error("%s: input '%s' must be one window of bytes, [T], not %s", path, in->name,
                      nnr_shape_str(shape, sizeof shape, in->rank, in->shape));
        return -1;
    }
    r->t = in->size;
    if (r->label < 0) {
        nnr_set_error("%s: model %s has no label to hold the next byte (e.g. "
                      "'label y: class(256)')", path, info->name);
        return -1;
    }
    if (text_label_shape(info, path, r)) return -1;
    r->per_step = info->io[r->label].size > 1;
    if (!r->per_step && in->classes <= TEXT_PAD) {   /* only one byte per label pads */
        nnr_set_error("%s: input '%s' is class(%d), too few for the padding byte '\\n' (10)",
                      path, in->name, in->classes);
        return -1;
    }
    return 0;
}

/* Every byte but the last is context, and every byte is a label (but the first, when the
 * labels are the windows shifted by one): each must be a class of what it feeds. */
static int check_bytes(const nnr_model_info *info, const char *path, const unsigned char *b,
                       int64_t n, const text_roles *r) {
    const nnr_io *in = &info->io[r->input], *lab = &info->io[r->label];
    for (int64_t i = 0; i < n; i++) {
        const nnr_io *io = i >= r->per_step && b[i] >= lab->classes ? lab
                         : i + 1 < n && b[i] >= in->classes ? in : NULL;
        if (io) {
            nnr_set_error("%s: byte %d at offset %lld is outside the vocabulary of %s '%s', "
                          "class(%d)", path, b[i], (long long)i, nnr_io_kind_name(io->kind), io->name,
                          io->classes);
            return -1;
        }
    }
    return 0;
}

/* Example i of a label per byte: the t bytes before offset i (left-padded with '\n'),
 * then byte i. */
static void text_windows(const unsigned char *b, int64_t n, int64_t t, int32_t *ids, int32_t *y) {
    for (int64_t i = 0; i < n; i++) {
        for (int64_t j = 0; j < t; j++) {
            int64_t at = i - t + j;
            ids[i * t + j] = at >= 0 ? b[at] : TEXT_PAD;
        }
        y[i] = b[i];
    }
}

/* A label per position: consecutive windows b[s..s+t) with labels b[s+1..s+t+1), s = 0,
 * t, 2t, ..., so that each byte after the first is predicted once (min-char-rnn's chunks);
 * when (n - 1) is not a multiple of t, one more window ends at the file's end, so the
 * last bytes are predicted too.  The examples: (n - 1) / t, rounded up. */
static int64_t text_sequences(int64_t n, int64_t t) { return (n - 1 + t - 1) / t; }

static void text_shifted(const unsigned char *b, int64_t n, int64_t t, int32_t *ids, int32_t *y) {
    for (int64_t e = 0, count = text_sequences(n, t); e < count; e++) {
        int64_t s = e * t + t + 1 <= n ? e * t : n - 1 - t;
        for (int64_t j = 0; j < t; j++) {
            ids[e * t + j] = b[s + j];
            y[e * t + j] = b[s + j + 1];
        }
    }
}

int nnr_data_load_text(const nnr_model_info *info, const char *path, nnr_dataset *out) {
    memset(out, 0, sizeof *out);
    text_roles r;
    unsigned char *b;
    int64_t n;
    if (find_text_roles(info, path, &r) || nnr_read_file(path, &b, &n)) return -1;
    if (n == 0 || (r.per_step && n < r.t + 1)) {
        free(b);
        if (n == 0) nnr_set_error("%s: empty file, no examples", path);
        else nnr_set_error("%s: %lld bytes, too short for one example of label '%s': a window of "
                           "%lld bytes and the byte after it", path, (long long)n,
                           info->io[r.label].name, (long long)r.t);
        return -1;
    }
    if (check_bytes(info, path, b, n, &r)) {
        free(b);
        return -1;
    }
    const int64_t t = r.t, examples = r.per_step ? text_sequences(n, t) : n;
    const int64_t labels = r.per_step ? t : 1;
    out->ncol = info->nio;
    out->col = calloc((size_t)info->nio + 1, sizeof *out->col);
    int32_t *ids = out->col ? nnr_alloc_aligned((size_t)examples * (size_t)t * sizeof *ids) : NULL;
    int32_t *y = ids ? nnr_alloc_aligned((size_t)examples * (size_t)labels * sizeof *y) : NULL;
    if (!y) {
        free(ids);
        free(b);
        nnr_data_free(out);
        nnr_set_error("%s: out of memory for %lld windows of %lld bytes", path,
                      (long long)examples, (long long)t);
        return -1;
    }
    if (r.per_step) text_shifted(b, n, t, ids, y);
    else text_windows(b, n, t, ids, y);
    free(b);
    out->col[r.input] = ids;
    out->col[r.label] = y;
    out->n = examples;
    return 0;
}
