/* weights.c — reads a checkpoint for `--weights`, which bakes it into the embedded target's
 * C file: every parameter of the model by name (docs/c-api.md's names, the ones `m save`
 * writes), each of its shape, in F32 or F64, laid out as the parameter block.  A whole
 * checkpoint holds more (optimizer state, the run's position): those tensors are not
 * parameters and are left out, as NAME_load leaves them.  The input standardization
 * (`standardize.mean`, `standardize.std`) comes along when the file has it, for predict.
 * The file is read and validated by the runtime's own reader (runtime/safetensors.c). */
#include "codegen.h"
#include "nnr.h"
#include <stdio.h>
#include <string.h>

static int fail(const char *path, const char *what, const char *name) {
    fprintf(stderr, "nnc: %s: %s%s%s\n", path, what, name ? " " : "", name ? name : "");
    return -1;
}

static double value_at(const nnr_tensor *t, int64_t i) {
    return t->dtype == NNR_F64 ? ((const double *)t->data)[i] : (double)((const float *)t->data)[i];
}

static const char *shape_text(arena *a, int rank, const int64_t *dim) {
    char *s = "[";
    for (int d = 0; d < rank; d++) s = arena_printf(a, "%s%s%lld", s, d ? ", " : "", (long long)dim[d]);
    return arena_printf(a, "%s]", s);
}

/* standardize.mean and .std: F64 vectors of one length, every std > 0 (as the runtime checks) */
static int read_standardization(ir_graph *g, const char *path, const nnr_tensors *ts, emit_weights *w) {
    const nnr_tensor *mean = nnr_tensors_find(ts, "standardize.mean"), *std = nnr_tensors_find(ts, "standardize.std");
    if (!mean && !std) return 0;
    if (!mean || !std || mean->dtype != NNR_F64 || std->dtype != NNR_F64 || mean->rank != 1 || std->rank != 1 ||
        mean->shape[0] != std->shape[0])
        return fail(path, "'standardize.mean' and 'standardize.std' must be F64 vectors of one length", NULL);
    int64_t features = 0;
    for (int i = 0; i < g->io.n; i++) {
        const ir_node *x = g->io.v[i];
        if (x->role == ROLE_INPUT && x->dtype != DT_CLASS) features += ir_numel(&x->shape);
    }
    if (mean->shape[0] != features) {
        fprintf(stderr, "nnc: %s: a standardization of %lld features, but model %s has %lld float input features\n",
                path, (long long)mean->shape[0], g->model, (long long)features);
        return -1;
    }
    double *m = arena_alloc(g->a, sizeof *m * (size_t)features + 1), *s = arena_alloc(g->a, sizeof *s * (size_t)features + 1);
    for (int64_t i = 0; i < features; i++) {
        m[i] = value_at(mean, i);
        s[i] = value_at(std, i);
        if (!(s[i] > 0) || m[i] != m[i] || s[i] - s[i] != 0)
            return fail(path, "the standardization has a std that is not > 0 and finite", NULL);
    }
    w->nstd = features;
    w->mean = m;
    w->std = s;
    return 0;
}

static int read_params(ir_graph *g, const char *path, const nnr_tensors *ts, emit_weights *w) {
    int errors = 0;
    w->params = arena_alloc(g->a, sizeof *w->params * (size_t)g->param_size + 1);
    memset(w->params, 0, sizeof *w->params * (size_t)g->param_size);
    for (int i = 0; i < g->params.n; i++) {
        const ir_node *p = g->params.v[i];
        const nnr_tensor *t = nnr_tensors_find(ts, p->name);
        int same = t && t->rank == p->shape.rank;
        for (int d = 0; same && d < t->rank; d++) same = t->shape[d] == p->shape.dim[d];
        if (!t) {
            errors += fail(path, "has no tensor for the model's parameter", p->name) != 0;
        } else if (!same) {
            fprintf(stderr, "nnc: %s: %s is %s; model %s's parameter is %s\n", path, p->name,
                    shape_text(g->a, t->rank, t->shape), g->model, shape_text(g->a, p->shape.rank, p->shape.dim));
            errors++;
        } else if (t->dtype != NNR_F32 && t->dtype != NNR_F64) {
            errors += fail(path, "a parameter must be F32 or F64:", p->name) != 0;
        } else {
            int64_t n = ir_numel(&p->shape);
            for (int64_t k = 0; k < n; k++) {
                double v = value_at(t, k);
                if (v - v != 0) {   /* NaN or an infinity: a checkpoint the trainer would refuse */
                    errors += fail(path, "holds a value that is not finite in", p->name) != 0;
                    break;
                }
                w->params[p->offset + k] = v;
            }
        }
    }
    return errors ? -1 : 0;
}

int weights_read(ir_graph *g, const char *path, emit_weights *w) {
    nnr_tensors ts = {0};
    *w = (emit_weights){path, NULL, 0, NULL, NULL};
    if (nnr_st_read(path, &ts)) {
        fprintf(stderr, "nnc: --weights: %s\n", nnr_error());
        return -1;
    }
    int r = read_params(g, path, &ts, w) || read_standardization(g, path, &ts, w) ? -1 : 0;
    nnr_tensors_free(&ts);
    return r;
}
