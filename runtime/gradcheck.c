/* gradcheck.c — `m grads` and `m gradcheck`, the two ways to check a generated backward
 * pass from outside: the analytic gradient of the mean loss over a batch, for every
 * parameter and grad input, written as safetensors beside the loss to be compared
 * elsewhere (grads), or compared here with central differences of the loss at sampled
 * elements (gradcheck), with a pass/fail verdict per tensor and overall (exit 1 on a fail).
 */
#include "nnr.h"
#include "trainer.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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
        if (p->buffer) continue;   /* running statistics and frozen parameters have no gradient */
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
             nnr_session_load_data(info, o, "--batch", &o->batch, all_kinds(info), &s.ck,
                                   &s.data) ||
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

/* The verdict's tolerance: element i of a tensor passes when
 *     |analytic - numeric| <= ATOL_K u (S / step + G) + rtol |numeric|
 * where u is the dtype's unit roundoff, S the mean magnitude of the per-example losses
 * (a loss evaluated in the model's dtype is off by some u S, and the central difference
 * divides that by the step actually taken), G the tensor's largest analytic gradient (its
 * elements are sums whose rounding is relative to the largest terms, so a gradient that
 * is zero in theory comes out as some u G), and rtol covers the truncation error of the
 * difference, h^2 f'''/6: 1e-6 in F64 (h 1e-6), 1e-3 in F32 (h 1e-3); --tol sets rtol.
 * ATOL_K is a safety factor over the rounding seen on tests/gradcheck's models: 64 in F64,
 * 256 in F32, where a convolution's weight gradient (hundreds of products summed per
 * element, gradients of 1e4) came to 93-100% of 64 u (S / step + G) on conv_epilogue and
 * conv_pool_fused (seeds 1-3), a margin another CPU's OpenBLAS kernels could close.  An
 * element over its tolerance whose analytic gradient is the slope on one side of x0 is
 * counted as a kink (at_kink), not a failure. */
#define ATOL_F64       64
#define ATOL_F32       256
#define RTOL_F64       1e-6
#define RTOL_F32       1e-3

typedef struct checker {
    const nnr_model_info *info;
    void       *m;
    int         n;
    void *const *in;                /* the batch; probes perturb its grad inputs in place */
    double      h;                  /* relative step */
    double      u, rtol;            /* unit roundoff of the dtype; relative tolerance */
    double      atol_k;             /* ATOL_F64 or ATOL_F32 */
    double      scale;              /* S: mean |per-example loss| */
    double      loss0;              /* the loss at the unperturbed point */
    int64_t     samples;            /* per tensor; 0: all */
    int64_t    *pick;               /* scratch for choosing elements */
    nnr_rng     rng;
    int         name_w, shape_w;    /* column widths of the report */
} checker;

/* A tensor's result: the element nearest to (or furthest past) its tolerance. */
typedef struct verdict {
    double  ratio;                  /* |analytic - numeric| / tolerance; NAN: a NaN seen */
    double  err, tol;               /* at that element */
    int64_t at;
    int64_t kinks;                  /* mismatches explained by a kink inside the step */
} verdict;

/* The loss with element i of x set to v (rounded to the dtype: *at is the value taken). */
static double loss_at(checker *c, void *x, int64_t i, double v, double *at) {
    put(c->info, x, i, v);
    *at = get(c->info, x, i);
    return c->info->loss(c->m, c->n, (const void *const *)c->in, 1);
}

/* The tolerance for a difference quotient whose loss values carry weights summing to
 * 2 * spread in magnitude (central: 1 / step), for the numeric value fd. */
static double tolerance(const checker *c, double spread, double most_a, double fd) {
    return c->atol_k * c->u * (c->scale * spread + most_a) + c->rtol * fabs(fd);
}

/* Central difference at element i of x.  The step actually taken is measured after
 * rounding to the model's dtype, which matters in F32. */
static double central_difference(checker *c, void *x, int64_t i, double *step) {
    double x0 = get(c->info, x, i), h = c->h * fmax(1.0, fabs(x0)), xp, xm;
    double lp = loss_at(c, x, i, x0 + h, &xp), lm = loss_at(c, x, i, x0 - h, &xm);
    put(c->info, x, i, x0);
    *step = xp - xm;
    return (lp - lm) / *step;
}

/* The one-sided derivative at element i of x from x0 and two steps to one side (sign),
 * exact for quadratics, as the central difference is: the derivative of the parabola
 * through (x0, l0), (x1, l1), (x2, l2).  *spread: half the sum of its weights. */
static double one_sided(checker *c, void *x, int64_t i, double sign, double *spread) {
    double x0 = get(c->info, x, i), h = sign * c->h * fmax(1.0, fabs(x0)), x1, x2;
    double l1 = loss_at(c, x, i, x0 + h / 2, &x1), l2 = loss_at(c, x, i, x0 + h, &x2);
    put(c->info, x, i, x0);
    double d1 = x1 - x0, d2 = x2 - x0;
    double w0 = -(d1 + d2) / (d1 * d2), w1 = d2 / (d1 * (d2 - d1)), w2 = -d1 / (d2 * (d2 - d1));
    *spread = (fabs(w0) + fabs(w1) + fabs(w2)) / 2;
    return w0 * c->loss0 + w1 * l1 + w2 * l2;
}

/* Whether a mismatch err at element i (over its tolerance) is a kink inside the step
 * (relu at 0, a max changing hands), not a wrong gradient: the slope on one side of x0,
 * where the loss is smooth, matches the analytic gradient a within its own tolerance and
 * at least 4 times better than the central difference does.  A wrong gradient of a
 * smooth loss is off by as much on either side as in the middle. */
static int at_kink(checker *c, void *x, int64_t i, double a, double most_a, double err) {
    double sp, sm, dp = one_sided(c, x, i, 1, &sp), dm = one_sided(c, x, i, -1, &sm);
    double rp = fabs(a - dp), rm = fabs(a - dm);
    double near = fmin(rp, rm);
    double near_tol = rp <= rm ? tolerance(c, sp, most_a, dp) : tolerance(c, sm, most_a, dm);
    return near <= near_tol && 4 * near <= err;
}

/* Picks the elements to check into c->pick[0..k), a partial Fisher-Yates shuffle. */
static int64_t pick_elements(checker *c, int64_t size) {
    int64_t k = c->samples == 0 || c->samples >= size ? size : c->samples;
    for (int64_t i = 0; i < size; i++) c->pick[i] = i;
    for (int64_t i = 0; k < size && i < k; i++) {
        int64_t j = i + (int64_t)nnr_rng_below(&c->rng, (uint64_t)(size - i));
        int64_t t = c->pick[i];
        c->pick[i] = c->pick[j];
        c->pick[j] = t;
    }
    return k;
}

/* Checks sampled elements of tensor x against its analytic gradient ga and prints the
 * tensor's line with its verdict. */
static verdict check_tensor(checker *c, const char *name, int rank, const int64_t *shape,
                            void *x, const double *ga, int64_t size) {
    double most_a = 0;
    for (int64_t i = 0; i < size; i++) most_a = fmax(most_a, fabs(ga[i]));
    int64_t k = pick_elements(c, size);
    verdict v = {0, 0, 0, -1, 0};
    for (int64_t j = 0; j < k; j++) {
        int64_t i = c->pick[j];
        double step, fd = central_difference(c, x, i, &step), a = ga[i];
        double err = fabs(a - fd), tol = tolerance(c, 1 / step, most_a, fd);
        double ratio = err == 0 ? 0 : err / tol;       /* NaN when either side is NaN */
        if (ratio > 1 && at_kink(c, x, i, a, most_a, err)) {
            v.kinks++;
            continue;
        }
        if (!isnan(v.ratio) && (isnan(ratio) || ratio > v.ratio || v.at < 0))
            v = (verdict){ratio, err, tol, i, v.kinks};
    }
    char buf[256], kinks[64] = "";
    if (v.kinks) snprintf(kinks, sizeof kinks, "  (%lld at kinks)", (long long)v.kinks);
    printf("  %-*s  %-*s  checked %-6lld  worst err %-8.2g  tolerance %-8.2g  %s%s\n",
           c->name_w, name, c->shape_w, nnr_shape_str(buf, sizeof buf, rank, shape),
           (long long)k, v.err, v.tol, v.ratio <= 1 ? "pass" : "FAIL", kinks);
    fflush(stdout);
    return v;
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

/* What the tensors' verdicts add up to: the worst ratio, and the failed tensors' names. */
typedef struct tally {
    verdict     worst;
    const char *worst_name;
    int         checked, failed;
    int64_t     kinks;
    char        names[512];
} tally;

static void count(tally *t, const char *name, verdict v) {
    t->kinks += v.kinks;
    if (t->checked++ == 0 || isnan(v.ratio) || (!isnan(t->worst.ratio) && v.ratio > t->worst.ratio)) {
        t->worst = v;
        t->worst_name = name;
    }
    if (v.ratio <= 1) return;
    size_t len = strlen(t->names);
    if (len + 1 < sizeof t->names)
        snprintf(t->names + len, sizeof t->names - len, "%s%s", t->failed ? ", " : "", name);
    t->failed++;
}

static void check_all(const nnr_model_info *info, session *s, checker *c, tally *t) {
    char *params = info->params(s->m);
    size_t es = nnr_dtype_size(info->dtype);
    for (int i = 0; i < info->nparam; i++) {
        const nnr_param *p = &info->param[i];
        if (p->buffer) continue;
        count(t, p->name, check_tensor(c, p->name, p->rank, p->shape,
                                       params + (size_t)p->offset * es, s->acc + p->offset,
                                       p->size));
    }
    const double *ga = s->acc + info->param_size;
    int64_t shape[NNR_MAXRANK + 1] = {c->n};
    for (int k = 0; k < info->nio; k++) {
        const nnr_io *io = &info->io[k];
        if (!io->grad) continue;
        memcpy(shape + 1, io->shape, (size_t)io->rank * sizeof(int64_t));
        count(t, io->name, check_tensor(c, io->name, io->rank + 1, shape, c->in[k], ga,
                                        c->n * io->size));
        ga += c->n * io->size;
    }
}

/* S of the tolerance: the mean over the batch of |loss of one example|, each evaluated
 * alone (a mean of mixed signs would understate the rounding of its terms). */
static double loss_scale(const nnr_model_info *info, checker *c, double mean) {
    const void **in = calloc((size_t)info->nio + 1, sizeof *in);
    if (!in) return fabs(mean);
    double sum = 0;
    for (int i = 0; i < c->n; i++) {
        for (int k = 0; k < info->nio; k++)
            in[k] = (const char *)c->in[k] +
                    (size_t)(i * info->io[k].size) * col_elem_size(info, &info->io[k]);
        sum += fabs(info->loss(c->m, 1, in, 1));
    }
    free(in);
    return isfinite(sum) ? fmax(sum / c->n, fabs(mean)) : fabs(mean);
}

static void print_verdict(const nnr_model_info *info, const checker *c, const tally *t) {
    const verdict *w = &t->worst;
    printf("gradcheck: %s: %d of %d tensors within tolerance; worst err %.2g against "
           "tolerance %.2g (%.0f%% of it) in %s (%s, step %g, rtol %g, %lld elements at kinks)\n",
           t->failed ? "FAIL" : "PASS", t->checked - t->failed, t->checked, w->err, w->tol,
           w->tol > 0 ? 100 * w->err / w->tol : 0,
           t->worst_name ? t->worst_name : "-", info->dtype == NNR_F64 ? "f64" : "f32", c->h,
           c->rtol, (long long)t->kinks);
    if (t->failed)
        fprintf(stderr, "%s: gradcheck: the analytic gradient of %s differs from the finite "
                "differences beyond tolerance\n", nnr_trainer_prog, t->names);
}

int nnr_cmd_gradcheck(const nnr_model_info *info, const options *o) {
    uint64_t seed = o->seed.set ? o->seed.v : info->train.seed;
    session s = {0};
    int rc = nnr_session_open_model(info, &s, o->params, seed) ||
             (o->batch.n ? nnr_session_load_data(info, o, "--batch", &o->batch, all_kinds(info),
                                                 &s.ck, &s.data)
                         : random_batch(info, info->batch < 4 ? info->batch : 4, seed, &s.data)) ||
             nnr_session_evaluator_alloc(info, &s.ev);
    if (!rc && s.data.n > info->batch) {
        nnr_set_error("--batch: %lld examples, more than the model's batch of %d", (long long)s.data.n,
                      info->batch);
        rc = -1;
    }
    int f64 = info->dtype == NNR_F64;
    checker c = {.info = info, .m = s.m, .n = (int)s.data.n, .in = s.data.col,
                 .h = !isnan(o->eps) ? o->eps : f64 ? 1e-6 : 1e-3,
                 .u = f64 ? DBL_EPSILON / 2 : FLT_EPSILON / 2, .atol_k = f64 ? ATOL_F64 : ATOL_F32,
                 .rtol = !isnan(o->tol) ? o->tol : f64 ? RTOL_F64 : RTOL_F32,
                 .samples = o->samples < 0 ? 64 : o->samples};
    if (!rc && (!(s.acc = calloc((size_t)grad_elements(info, s.data.n), sizeof(double))) ||
                !(s.order = malloc((size_t)layout(info, &c) * sizeof(int64_t)))))
        rc = oom();
    tally t = {.worst = {0, 0, 0, -1, 0}};
    if (!rc) {
        c.scale = loss_scale(info, &c, full_gradient(info, &s, &s.data));
        c.loss0 = info->loss(s.m, c.n, (const void *const *)c.in, 1);
        c.pick = s.order;
        nnr_rng_seed(&c.rng, seed ^ SAMPLE_STREAM);
        check_all(info, &s, &c, &t);
        print_verdict(info, &c, &t);
    }
    nnr_session_free(info, &s);
    return rc ? nnr_trainer_fail() : t.failed > 0;
}
