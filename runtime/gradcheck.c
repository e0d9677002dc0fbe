/* gradcheck.c — `m grads` and `m gradcheck`, the two ways to check a generated backward
 * pass from outside: the analytic gradient of the mean loss over a batch, for every
 * parameter and grad input, written as safetensors beside the loss to be compared
 * elsewhere (grads), or compared here with central differences of the loss at sampled
 * elements (gradcheck).
 */
#include "nnr.h"
#include "trainer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TINY           1e-30

static void put(const nnr_model_info *info, void *p, int64_t i, double v) {
    if (info->dtype == NNR_F64) ((double *)p)[i] = v;
    else ((float *)p)[i] = (float)v;
}

/* Elements of the gradient tensors grads and gradcheck report: the parameter block, then
 * n examples of each `grad` input. */
static int64_t grad_elements(const nnr_model_info *info, int64_t n) {
    int64_t total = info->param_size;
    for (int k = 0; k < info->nio; k++)
        if (info->io[k].grad) total += n * info->io[k].size;
    return total;
}

/* Gradient of the mean loss over all of d into s->acc (parameters, then grad inputs),
 * in chunks of the compiled batch: the mean over n is sum_c (n_c / n) * mean over chunk c. */
static double full_gradient(const nnr_model_info *info, session *s, const nnr_dataset *d) {
    double loss = 0;
    for (int64_t at = 0; at < d->n; at += info->batch) {
        int nb = (int)(d->n - at < info->batch ? d->n - at : info->batch);
        double w = (double)nb / (double)d->n;
        nnr_session_point_at(info, d, at, &s->ev);
        loss += w * info->loss_grad(s->m, nb, s->ev.in);
        const void *g = info->grads(s->m);
        for (int64_t i = 0; i < info->param_size; i++) s->acc[i] += w * get(info, g, i);
        double *dst = s->acc + info->param_size;
        for (int k = 0; k < info->nio; k++) {
            if (!info->io[k].grad) continue;
            const void *gx = info->input_grad(s->m, k);
            int64_t size = info->io[k].size;
            for (int64_t i = 0; i < nb * size; i++) dst[at * size + i] = w * get(info, gx, i);
            dst += d->n * size;
        }
    }
    return loss;
}

static int write_grads(const nnr_model_info *info, session *s, int64_t n, double loss,
                       const char *path) {
    int64_t total = grad_elements(info, n);
    size_t es = nnr_dtype_size(info->dtype);
    nnr_tensor *ts = calloc((size_t)info->nparam + (size_t)info->nio + 1, sizeof *ts);
    if (!ts || !(s->block = malloc((size_t)(total + 1) * es))) {
        free(ts);
        return oom();
    }
    for (int64_t i = 0; i < total; i++) put(info, s->block, i, s->acc[i]);
    put(info, s->block, total, loss);
    /* The tensors borrow names and the block; only the array is freed. */
    int nt = 0;
    for (int i = 0; i < info->nparam; i++) {
        const nnr_param *p = &info->param[i];
        if (p->buffer) continue;   /* running statistics have no gradient */
        ts[nt] = (nnr_tensor){(char *)p->name, info->dtype, p->rank, {0},
                              (char *)s->block + (size_t)p->offset * es};
        memcpy(ts[nt].shape, p->shape, sizeof p->shape);
        nt++;
    }
    char *at = (char *)s->block + (size_t)info->param_size * es;
    for (int k = 0; k < info->nio; k++) {
        const nnr_io *io = &info->io[k];
        if (!io->grad) continue;
        ts[nt] = (nnr_tensor){(char *)io->name, info->dtype, io->rank + 1, {n}, at};
        memcpy(ts[nt].shape + 1, io->shape, (size_t)io->rank * sizeof(int64_t));
        at += (size_t)(n * io->size) * es;
        nt++;
    }
    ts[nt++] = (nnr_tensor){(char *)"loss", info->dtype, 0, {0}, at};
    int rc = nnr_st_write(path, ts, nt, NULL, 0);
    free(ts);
    return rc;
}

int nnr_cmd_grads(const nnr_model_info *info, const options *o) {
    if (!o->params) return nnr_trainer_usage_error(o->cmd, "grads needs --params PARAMS");
    if (!o->batch.n) return nnr_trainer_usage_error(o->cmd, "grads needs --batch BATCH");
    if (!o->out) return nnr_trainer_usage_error(o->cmd, "grads needs --out GRADS");
    session s = {0};
    int rc = nnr_session_open_model(info, &s, o->params, 0) ||
             nnr_session_load_data(info, o, "--batch", &o->batch, all_kinds(info), &s.data) ||
             nnr_session_evaluator_alloc(info, &s.ev);
    if (!rc && !(s.acc = calloc((size_t)grad_elements(info, s.data.n), sizeof(double))))
        rc = oom();
    if (!rc) {
        double loss = full_gradient(info, &s, &s.data);
        rc = write_grads(info, &s, s.data.n, loss, o->out);
        if (!rc) {
            printf("loss: ");
            printf(num_fmt(info), loss);
            putchar('\n');
        }
    }
    nnr_session_free(info, &s);
    return rc ? nnr_trainer_fail() : 0;
}

/* n examples drawn from seed: float inputs N(0, 1), targets U(0.05, 0.95) so bce-like
 * losses are defined, classes uniform in [0, K). */
static int random_batch(const nnr_model_info *info, int64_t n, uint64_t seed, nnr_dataset *d) {
    nnr_rng rng;
    nnr_rng_seed(&rng, seed ^ BATCH_STREAM);
    d->n = n;
    d->ncol = info->nio;
    if (!(d->col = calloc((size_t)info->nio + 1, sizeof *d->col))) return oom();
    for (int k = 0; k < info->nio; k++) {
        const nnr_io *io = &info->io[k];
        if (!(d->col[k] = nnr_alloc_aligned((size_t)(n * io->size) * col_elem_size(info, io)))) return oom();
        for (int64_t i = 0; i < n * io->size; i++) {
            if (io->classes) ((int32_t *)d->col[k])[i] = (int32_t)nnr_rng_below(&rng, (uint64_t)io->classes);
            else if (io->kind == NNR_IO_TARGET) put(info, d->col[k], i, 0.05 + 0.9 * nnr_rng_uniform(&rng));
            else put(info, d->col[k], i, nnr_rng_normal(&rng));
        }
    }
    return 0;
}

typedef struct checker {
    const nnr_model_info *info;
    void       *m;
    int         n;
    void *const *in;                /* the batch; probes perturb its grad inputs in place */
    double      h, floor;           /* relative step; 1e-3 x the largest analytic gradient */
    int64_t     samples;            /* per tensor; 0: all */
    int64_t    *pick;               /* scratch for choosing elements */
    nnr_rng     rng;
    int         name_w, shape_w;    /* column widths of the report */
} checker;

/* Central difference at element i of x.  The step actually taken is measured after
 * rounding to the model's dtype, which matters in F32. */
static double central_difference(checker *c, void *x, int64_t i) {
    const nnr_model_info *info = c->info;
    double x0 = get(info, x, i), h = c->h * fmax(1.0, fabs(x0));
    put(info, x, i, x0 + h);
    double xp = get(info, x, i), lp = info->loss(c->m, c->n, (const void *const *)c->in, 1);
    put(info, x, i, x0 - h);
    double xm = get(info, x, i), lm = info->loss(c->m, c->n, (const void *const *)c->in, 1);
    put(info, x, i, x0);
    return (lp - lm) / (xp - xm);
}

/* Checks sampled elements of tensor x against its analytic gradient ga, prints the
 * tensor's line and returns its worst relative error. */
static double check_tensor(checker *c, const char *name, int rank, const int64_t *shape,
                           void *x, const double *ga, int64_t size) {
    int64_t k = c->samples == 0 || c->samples >= size ? size : c->samples;
    for (int64_t i = 0; i < size; i++) c->pick[i] = i;
    for (int64_t i = 0; k < size && i < k; i++) {  /* a partial Fisher-Yates shuffle */
        int64_t j = i + (int64_t)nnr_rng_below(&c->rng, (uint64_t)(size - i));
        int64_t t = c->pick[i];
        c->pick[i] = c->pick[j];
        c->pick[j] = t;
    }
    double worst_abs = 0, most_fd = 0;
    int nan_seen = 0;
    for (int64_t i = 0; i < k; i++) {
        double fd = central_difference(c, x, c->pick[i]), a = ga[c->pick[i]];
        nan_seen |= isnan(fd) || isnan(a);
        worst_abs = fmax(worst_abs, fabs(a - fd));
        most_fd = fmax(most_fd, fabs(fd));
    }
    double err = nan_seen ? NAN : worst_abs / fmax(fmax(most_fd, c->floor), TINY);
    char buf[256];
    printf("  %-*s  %-*s  checked %lld  worst rel err %.2g\n", c->name_w, name, c->shape_w,
           nnr_shape_str(buf, sizeof buf, rank, shape), (long long)k, err);
    fflush(stdout);
    return err;
}

static void widen(checker *c, const char *name, int rank, const int64_t *shape) {
    char buf[256];
    int nw = (int)strlen(name), sw = (int)strlen(nnr_shape_str(buf, sizeof buf, rank, shape));
    if (nw > c->name_w) c->name_w = nw;
    if (sw > c->shape_w) c->shape_w = sw;
}

/* The report's column widths; returns the largest tensor, for the scratch index array. */
static int64_t layout(const nnr_model_info *info, checker *c) {
    int64_t biggest = 1, shape[NNR_MAXRANK + 1] = {c->n};
    for (int i = 0; i < info->nparam; i++) {
        const nnr_param *p = &info->param[i];
        widen(c, p->name, p->rank, p->shape);
        if (p->size > biggest) biggest = p->size;
    }
    for (int k = 0; k < info->nio; k++) {
        const nnr_io *io = &info->io[k];
        if (!io->grad) continue;
        memcpy(shape + 1, io->shape, (size_t)io->rank * sizeof(int64_t));
        widen(c, io->name, io->rank + 1, shape);
        if (c->n * io->size > biggest) biggest = c->n * io->size;
    }
    return biggest;
}

static double check_all(const nnr_model_info *info, session *s, checker *c) {
    double worst = 0;
    char *params = info->params(s->m);
    size_t es = nnr_dtype_size(info->dtype);
    for (int i = 0; i < info->nparam; i++) {
        const nnr_param *p = &info->param[i];
        if (p->buffer) continue;
        double err = check_tensor(c, p->name, p->rank, p->shape, params + (size_t)p->offset * es,
                                  s->acc + p->offset, p->size);
        worst = isnan(err) || err > worst ? err : worst;
    }
    const double *ga = s->acc + info->param_size;
    int64_t shape[NNR_MAXRANK + 1] = {c->n};
    for (int k = 0; k < info->nio; k++) {
        const nnr_io *io = &info->io[k];
        if (!io->grad) continue;
        memcpy(shape + 1, io->shape, (size_t)io->rank * sizeof(int64_t));
        double err = check_tensor(c, io->name, io->rank + 1, shape, c->in[k], ga, c->n * io->size);
        worst = isnan(err) || err > worst ? err : worst;
        ga += c->n * io->size;
    }
    return worst;
}

int nnr_cmd_gradcheck(const nnr_model_info *info, const options *o) {
    uint64_t seed = o->seed.set ? o->seed.v : info->train.seed;
    session s = {0};
    int rc = nnr_session_open_model(info, &s, o->params, seed) ||
             (o->batch.n ? nnr_session_load_data(info, o, "--batch", &o->batch, all_kinds(info),
                                                 &s.data)
                         : random_batch(info, info->batch < 4 ? info->batch : 4, seed, &s.data)) ||
             nnr_session_evaluator_alloc(info, &s.ev);
    if (!rc && s.data.n > info->batch) {
        nnr_set_error("--batch: %lld examples, more than the model's batch of %d", (long long)s.data.n,
                      info->batch);
        rc = -1;
    }
    checker c = {info, s.m, (int)s.data.n, s.data.col, 0, 0, o->samples < 0 ? 64 : o->samples,
                 NULL, {{0}}, 0, 0};
    if (!rc && (!(s.acc = calloc((size_t)grad_elements(info, s.data.n), sizeof(double))) ||
                !(s.order = malloc((size_t)layout(info, &c) * sizeof(int64_t)))))
        rc = oom();
    int over = 0;
    if (!rc) {
        full_gradient(info, &s, &s.data);
        double most = 0;
        for (int64_t i = 0; i < grad_elements(info, s.data.n); i++) most = fmax(most, fabs(s.acc[i]));
        c.floor = 1e-3 * most;
        c.h = !isnan(o->eps) ? o->eps : info->dtype == NNR_F64 ? 1e-6 : 1e-3;
        c.pick = s.order;
        nnr_rng_seed(&c.rng, seed ^ SAMPLE_STREAM);
        double worst = check_all(info, &s, &c);
        printf("gradcheck: worst rel err %.2g\n", worst);
        if ((over = !isnan(o->tol) && !(worst <= o->tol)))
            fprintf(stderr, "%s: gradcheck: worst rel err %.2g exceeds --tol %g\n",
                    nnr_trainer_prog, worst, o->tol);
    }
    nnr_session_free(info, &s);
    return rc ? nnr_trainer_fail() : over;
}
