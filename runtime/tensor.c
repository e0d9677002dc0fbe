/* tensor.c — dtypes, the owned tensor lists every reader returns, and the aligned memory
 * of generated code (nnr_aligned_alloc).
 *
 * A tensor owns its name and data; a tensor list owns its tensors and the safetensors
 * "__metadata__" text.  Free functions accept zeroed or already freed values so error
 * paths can call them unconditionally.
 */
#include "nnr.h"

#include <stdlib.h>
#include <string.h>

void *nnr_aligned_alloc(size_t align, size_t bytes) {
    return aligned_alloc(align, bytes);
}

size_t nnr_dtype_size(nnr_dtype dt) {
    switch (dt) {
    case NNR_F32: return 4;
    case NNR_F64: return 8;
    case NNR_I32: return 4;
    case NNR_I64: return 8;
    case NNR_U8:  return 1;
    case NNR_I8:  return 1;
    case NNR_I16: return 2;
    }
    return 0;
}

const char *nnr_dtype_name(nnr_dtype dt) {
    switch (dt) {
    case NNR_F32: return "F32";
    case NNR_F64: return "F64";
    case NNR_I32: return "I32";
    case NNR_I64: return "I64";
    case NNR_U8:  return "U8";
    case NNR_I8:  return "I8";
    case NNR_I16: return "I16";
    }
    return "?";
}

/* Rank 0 is a scalar: the empty product, one element. */
int64_t nnr_tensor_numel(const nnr_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) n *= t->shape[i];
    return n;
}

void nnr_tensor_free(nnr_tensor *t) {
    if (!t) return;
    free(t->name);
    free(t->data);
    t->name = NULL;
    t->data = NULL;
}

void nnr_tensors_free(nnr_tensors *ts) {
    if (!ts) return;
    for (int i = 0; i < ts->n; i++) nnr_tensor_free(&ts->t[i]);
    free(ts->t);
    free(ts->metadata);
    memset(ts, 0, sizeof *ts);
}

const nnr_tensor *nnr_tensors_find(const nnr_tensors *ts, const char *name) {
    for (int i = 0; i < ts->n; i++)
        if (ts->t[i].name && strcmp(ts->t[i].name, name) == 0) return &ts->t[i];
    return NULL;
}

const char *nnr_shape_str(char *buf, size_t cap, int rank, const int64_t *shape) {
    size_t len = 0;
    len += (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < rank && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (len < cap) snprintf(buf + len, cap - len, "]");
    return buf;
}
