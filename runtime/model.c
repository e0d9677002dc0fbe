/* model.c — whole-model helpers behind the generated _init, _save and _load.
 *
 * A generated model keeps all its parameters in one block laid out by its nnr_param
 * table.  Here that table drives initialization (one generator, parameters in table
 * order), checkpoints (one safetensors tensor per parameter, named and shaped as in
 * PyTorch's state dict) and loading, which validates the whole file before it changes a
 * single parameter.
 */
#include "nnr.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static char *param_at(const nnr_model_info *info, void *block, const nnr_param *p) {
    return (char *)block + (size_t)p->offset * nnr_dtype_size(info->dtype);
}

void nnr_model_init(const nnr_model_info *info, void *m, uint64_t seed) {
    size_t es = nnr_dtype_size(info->dtype);
    nnr_rng rng;
    nnr_rng_seed(&rng, seed);
    void *params = info->params(m);
    for (int i = 0; i < info->nparam; i++) {
        const nnr_param *p = &info->param[i];
        nnr_init_fill(param_at(info, params, p), info->dtype, p->rank, p->shape, p->init, &rng);
    }
    memset(info->grads(m), 0, (size_t)info->param_size * es);
    if (info->state_size > 0) memset(info->state(m), 0, (size_t)info->state_size * es);
    *info->step(m) = 0;
    if (info->set_seed) info->set_seed(m, seed);   /* dropout's masks follow the same seed */
}

int nnr_model_save(const nnr_model_info *info, void *m, const char *path) {
    nnr_tensor *ts = calloc((size_t)info->nparam + 1, sizeof *ts);
    if (!ts) {
        nnr_set_error("%s: out of memory", path);
        return -1;
    }
    /* The tensors borrow the names and the parameter block; they are never freed. */
    void *params = info->params(m);
    for (int i = 0; i < info->nparam; i++) {
        const nnr_param *p = &info->param[i];
        ts[i].name = (char *)p->name;
        ts[i].dtype = info->dtype;
        ts[i].rank = p->rank;
        memcpy(ts[i].shape, p->shape, sizeof p->shape);
        ts[i].data = param_at(info, params, p);
    }
    char hash[17];
    snprintf(hash, sizeof hash, "%016" PRIx64, info->schema_hash);
    const char *meta[] = {"nnc_model", info->name, "nnc_schema", hash};
    int rc = nnr_st_write(path, ts, info->nparam, meta, 2);
    free(ts);
    return rc;
}

static int same_shape(const nnr_tensor *t, const nnr_param *p) {
    if (t->rank != p->rank) return 0;
    for (int i = 0; i < p->rank; i++)
        if (t->shape[i] != p->shape[i]) return 0;
    return 1;
}

/* Converts the file's tensor for p into dst, in the model's dtype, after checking it. */
static int load_param(const nnr_model_info *info, const char *path, const nnr_tensors *ts,
                      const nnr_param *p, void *dst) {
    const nnr_tensor *t = nnr_tensors_find(ts, p->name);
    if (!t) {
        nnr_set_error("%s: parameter '%s' is missing", path, p->name);
        return -1;
    }
    if (!same_shape(t, p)) {
        char a[256], b[256];
        nnr_set_error("%s: parameter '%s' has shape %s in the file but %s in model %s", path,
                      p->name, nnr_shape_str(a, sizeof a, t->rank, t->shape),
                      nnr_shape_str(b, sizeof b, p->rank, p->shape), info->name);
        return -1;
    }
    if (t->dtype != NNR_F32 && t->dtype != NNR_F64) {
        nnr_set_error("%s: parameter '%s' has dtype %s; parameters must be F32 or F64", path,
                      p->name, nnr_dtype_name(t->dtype));
        return -1;
    }
    for (int64_t i = 0; i < p->size; i++) {
        double x = t->dtype == NNR_F64 ? ((const double *)t->data)[i] : ((const float *)t->data)[i];
        /* An F64 value beyond F32's range would become infinite in an F32 model. */
        if (!isfinite(x) || (info->dtype == NNR_F32 && !isfinite((float)x))) {
            nnr_set_error("%s: parameter '%s' holds a non-finite value at element %lld", path,
                          p->name, (long long)i);
            return -1;
        }
        if (info->dtype == NNR_F64) ((double *)dst)[i] = x;
        else ((float *)dst)[i] = (float)x;
    }
    return 0;
}

int nnr_model_load(const nnr_model_info *info, void *m, const char *path) {
    nnr_tensors ts;
    if (nnr_st_read(path, &ts)) return -1;
    size_t bytes = (size_t)info->param_size * nnr_dtype_size(info->dtype);
    void *staged = malloc(bytes ? bytes : 1);
    int rc = 0;
    if (!staged) {
        nnr_set_error("%s: out of memory", path);
        rc = -1;
    }
    for (int i = 0; rc == 0 && i < info->nparam; i++)
        rc = load_param(info, path, &ts, &info->param[i], param_at(info, staged, &info->param[i]));
    if (rc == 0) memcpy(info->params(m), staged, bytes);
    free(staged);
    nnr_tensors_free(&ts);
    return rc;
}
