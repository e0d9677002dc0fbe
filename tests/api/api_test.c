/* api_test.c — the generated model API (docs/c-api.md) as an application uses it, on any
 * model: compiled once per model by tests/api/run.sh with
 *   -DMODEL=name -include name.h
 *   -D'IO(c)=c[0], c[1], ...'   one argument per io entry (inputs, labels, targets)
 *   -DMEAN_SPLIT=0|1            1: the loss is a mean of per-example losses (no batch
 *                               statistics, no dropout masks that depend on the position)
 * It draws two random batches from the model's io table and checks, printing PASS/FAIL:
 *   - train_step equals zero_grad + forward + backward + update, bit for bit, over steps
 *     that alternate the batches and change the learning rate (params, gradients,
 *     optimizer state, step counter, losses);
 *   - backward adds: two backward calls without zero_grad leave exactly G1 + G2 (the same
 *     batch twice: exactly 2 G1), and two halves of a batch sum to twice its gradient;
 *   - the refusals: backward without a forward, a second backward of one forward, n out of
 *     range; none of them changes the gradients;
 *   - zero_grad zeroes; loss_grad overwrites a block whatever it held;
 *   - NAME_param / NAME_grad agree with NAME_params / NAME_grads and the info tables, and
 *     an unknown name gives NULL;
 *   - data parallelism (NAME_shard): two threads standing in for two processes, each with
 *     its own model and an unequal share of the batch, their batch statistics summed
 *     through the sum function; the two losses and gradient blocks add up to the whole
 *     batch's in one model (dropout's masks, batchnorm synchronized), up to rounding.
 * Exits 1 when a check failed. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#define F(fn) CAT(MODEL, fn)
typedef MODEL model;

static int failures;
static void check(int ok, const char *what) {
    printf("%s %s\n", ok ? "PASS" : "FAIL", what);
    if (!ok) failures++;
}

static const nnr_model_info *info;
static size_t es;   /* bytes of one model-dtype element */

static double at(const void *p, int64_t i) {
    return info->dtype == NNR_F64 ? ((const double *)p)[i] : ((const float *)p)[i];
}

static void *copy_of(const void *p, size_t bytes) {
    void *c = malloc(bytes ? bytes : 1);
    if (!c) exit(2);
    memcpy(c, p, bytes);
    return c;
}

/* A batch of `info->batch` random examples: floats in [-1, 1), classes in range. */
static void **random_batch(nnr_rng *r) {
    void **col = calloc((size_t)info->nio + 1, sizeof *col);
    for (int k = 0; k < info->nio; k++) {
        const nnr_io *io = &info->io[k];
        int64_t n = (int64_t)info->batch * io->size;
        col[k] = malloc((size_t)n * (io->classes ? sizeof(int32_t) : es) + 1);
        for (int64_t i = 0; i < n; i++) {
            if (io->classes) ((int32_t *)col[k])[i] = (int32_t)nnr_rng_below(r, (uint64_t)io->classes);
            else if (info->dtype == NNR_F64) ((double *)col[k])[i] = 2 * nnr_rng_uniform(r) - 1;
            else ((float *)col[k])[i] = (float)(2 * nnr_rng_uniform(r) - 1);
        }
    }
    return col;
}

/* The batch's examples from `first` on. */
static void **batch_from(void **col, int first) {
    void **v = calloc((size_t)info->nio + 1, sizeof *v);
    for (int k = 0; k < info->nio; k++) {
        const nnr_io *io = &info->io[k];
        v[k] = (char *)col[k] + (size_t)first * (size_t)io->size * (io->classes ? sizeof(int32_t) : es);
    }
    return v;
}

static int same_bits(const void *a, const void *b, size_t bytes) { return memcmp(a, b, bytes) == 0; }

/* Every element of g equals a + b (in the model's dtype), or 2 * a when b is NULL. */
static int is_sum(const void *g, const void *a, const void *b) {
    for (int64_t i = 0; i < info->param_size; i++) {
        int ok;
        if (info->dtype == NNR_F64) {
            double x = ((const double *)a)[i], y = b ? ((const double *)b)[i] : x;
            ok = ((const double *)g)[i] == x + y;
        } else {
            float x = ((const float *)a)[i], y = b ? ((const float *)b)[i] : x;
            ok = ((const float *)g)[i] == (float)(x + y);
        }
        if (!ok) {
            printf("    element %lld: %.9g, expected %.9g + %.9g\n", (long long)i, at(g, i), at(a, i),
                   b ? at(b, i) : at(a, i));
            return 0;
        }
    }
    return 1;
}

static int nonzero(const void *g) {
    for (int64_t i = 0; i < info->param_size; i++)
        if (at(g, i) != 0) return 1;
    return 0;
}

static void test_steps(void **b1, void **b2) {
    int B = info->batch;
    size_t pbytes = (size_t)info->param_size * es, sbytes = (size_t)info->state_size * es;
    model *a = F(new)(), *b = F(new)();
    F(init)(a, 7);
    F(init)(b, 7);
    void *start = copy_of(F(params)(a), pbytes);
    int same_loss = 1;
    for (int s = 0; s < 4; s++) {
        void **c = s % 2 ? b2 : b1;
        if (s == 2) {   /* what a schedule does between epochs */
            F(set_lr)(a, F(lr)(a) * 0.5);
            F(set_lr)(b, F(lr)(b) * 0.5);
        }
        double la = F(train_step)(a, B, IO(c));
        F(zero_grad)(b);
        double lb = F(forward)(b, B, IO(c));
        int rc = F(backward)(b);
        F(update)(b);
        same_loss &= rc == 0 && la == lb && la == la;
    }
    check(same_loss, "train_step and zero_grad+forward+backward+update: the same losses");
    check(same_bits(F(params)(a), F(params)(b), pbytes), "  ... the same parameters, bit for bit");
    check(same_bits(F(grads)(a), F(grads)(b), pbytes), "  ... the same gradients, bit for bit");
    check(same_bits(info->state(a), info->state(b), sbytes), "  ... the same optimizer state, bit for bit");
    check(F(step)(a) == 4 && F(step)(b) == 4, "  ... 4 steps counted");
    check(F(lr)(a) == F(lr)(b) && F(lr)(a) < info->train.lr, "set_lr lowers the learning rate NAME_lr reports");
    check(!same_bits(start, F(params)(a), pbytes), "the updates changed the parameters");
    free(start);
    F(free)(a);
    F(free)(b);
}

static void test_accumulation(void **b1, void **b2) {
    int B = info->batch;
    size_t pbytes = (size_t)info->param_size * es;
    model *m = F(new)();
    F(init)(m, 11);
    F(zero_grad)(m);
    F(forward)(m, B, IO(b1));
    F(backward)(m);
    void *g1 = copy_of(F(grads)(m), pbytes);
    F(zero_grad)(m);
    F(forward)(m, B, IO(b2));
    F(backward)(m);
    void *g2 = copy_of(F(grads)(m), pbytes);
    check(nonzero(g1) && nonzero(g2) && !same_bits(g1, g2, pbytes), "two batches give nonzero, different gradients");

    F(zero_grad)(m);
    F(forward)(m, B, IO(b1));
    F(backward)(m);
    F(forward)(m, B, IO(b2));
    F(backward)(m);
    check(is_sum(F(grads)(m), g1, g2), "backward twice without zero_grad: exactly G1 + G2");
    F(zero_grad)(m);
    F(forward)(m, B, IO(b1));
    F(backward)(m);
    F(forward)(m, B, IO(b1));
    F(backward)(m);
    check(is_sum(F(grads)(m), g1, NULL), "the same batch twice: exactly 2 G1");

    /* refusals leave the gradients as they are */
    void *before = copy_of(F(grads)(m), pbytes);
    int rc = F(backward)(m);
    check(rc == -1 && strstr(nnr_error(), "no forward pass"), "a second backward of one forward is refused");
    double l0 = F(forward)(m, 0, IO(b1));
    check(l0 != l0 && strstr(nnr_error(), "n = 0"), "forward with n = 0: NaN, and nnr_error says why");
    check(F(backward)(m) == -1, "  ... and leaves no forward for backward");
    double lb = F(forward)(m, B + 1, IO(b1));
    check(lb != lb && strstr(nnr_error(), "a call takes 1 to"), "forward with n = BATCH + 1: NaN");
    double lg = F(loss_grad)(m, B + 1, IO(b1));
    check(lg != lg && same_bits(before, F(grads)(m), pbytes), "the refused calls left the gradients alone");

    F(zero_grad)(m);
    int zero = 1;
    for (int64_t i = 0; i < info->param_size; i++) zero &= at(F(grads)(m), i) == 0;
    check(zero, "zero_grad zeroes the block");

    /* loss_grad skips zero_grad's memset: the backward pass must write every gradient */
    for (int64_t i = 0; i < info->param_size; i++) {
        if (info->dtype == NNR_F64) ((double *)F(grads)(m))[i] = NAN;
        else ((float *)F(grads)(m))[i] = NAN;
    }
    F(loss_grad)(m, B, IO(b1));
    int written = 1;
    for (int k = 0; k < info->nparam; k++) {
        const nnr_param *p = &info->param[k];
        for (int64_t i = 0; !p->buffer && i < p->size; i++) written &= at(F(grads)(m), p->offset + i) == at(g1, p->offset + i);
    }
    check(written, "loss_grad over a block of NaN: every parameter's gradient is G1 again");
    F(zero_grad)(m);

    if (MEAN_SPLIT && B >= 2 && B % 2 == 0) {   /* the mean of two halves' means is the whole's */
        void **h2 = batch_from(b1, B / 2);
        F(forward)(m, B / 2, IO(b1));
        F(backward)(m);
        F(forward)(m, B / 2, IO(h2));
        F(backward)(m);
        double worst = 0, scale = 0, tol = info->dtype == NNR_F64 ? 1e-12 : 1e-5;
        for (int64_t i = 0; i < info->param_size; i++) {
            double d = fabs(at(F(grads)(m), i) / 2 - at(g1, i));
            worst = d > worst ? d : worst;
            scale = fabs(at(g1, i)) > scale ? fabs(at(g1, i)) : scale;
        }
        worst /= scale;   /* the largest difference, relative to the largest gradient */
        printf("    halves: difference %.3g of the largest gradient (tolerance %g)\n", worst, tol);
        check(worst <= tol, "(G(first half) + G(second half)) / 2 = G(whole batch), within rounding");
        free(h2);
    }
    free(g1);
    free(g2);
    free(before);
    F(free)(m);
}

static void test_names(void) {
    model *m = F(new)();
    F(init)(m, 3);
    int ok = 1;
    int64_t total = 0;
    for (int k = 0; k < info->nparam; k++) {
        const nnr_param *p = &info->param[k];
        nnr_shape sh, sg;
        char *v = (char *)F(param)(m, p->name, &sh), *g = (char *)F(grad)(m, p->name, &sg);
        ok &= v == (char *)F(params)(m) + (size_t)p->offset * es;
        ok &= g == (char *)F(grads)(m) + (size_t)p->offset * es;
        ok &= sh.rank == p->rank && sg.rank == p->rank;
        for (int d = 0; d < NNR_MAXRANK; d++)
            ok &= sh.dim[d] == (d < p->rank ? p->shape[d] : 0) && sg.dim[d] == sh.dim[d];
        int64_t numel = 1;
        for (int d = 0; d < p->rank; d++) numel *= sh.dim[d];
        ok &= numel == p->size && p->offset + p->size <= info->param_size;
        ok &= F(param)(m, p->name, NULL) == (void *)v;
        total += p->size;
        if (!ok) printf("    parameter %s disagrees\n", p->name);
    }
    check(ok && info->nparam > 0 && total <= info->param_size,
          "NAME_param and NAME_grad: the blocks' pointers and the shapes of the info table");
    nnr_shape sh = {5, {1, 2, 3, 4, 5, 6, 7, 8}};
    check(F(param)(m, "no.such", &sh) == NULL && sh.rank == 0 && sh.dim[0] == 0 &&
              strstr(nnr_error(), "no parameter 'no.such'") && F(grad)(m, "no.such", NULL) == NULL &&
              F(param)(m, "", NULL) == NULL,
          "an unknown name gives NULL (and a zeroed shape, and nnr_error names it)");
    F(free)(m);
}

/* ---- data parallelism: two threads as the two processes of a data-parallel step ---- */

typedef struct pair { pthread_barrier_t bar; void *slot[2]; } pair;
typedef struct share { model *m; int rank, lo, hi; void **batch; double loss; pair *p; } share;

/* The model's nnr_sum_fn: both shares' buffers added, in one order, into both. */
static void sum_pair(void *ctx, void *x, int64_t count) {
    share *s = ctx;
    s->p->slot[s->rank] = x;
    pthread_barrier_wait(&s->p->bar);
    void *sum = copy_of(s->p->slot[0], (size_t)count * es);
    for (int64_t i = 0; i < count; i++) {
        if (info->dtype == NNR_F64) ((double *)sum)[i] += ((const double *)s->p->slot[1])[i];
        else ((float *)sum)[i] += ((const float *)s->p->slot[1])[i];
    }
    pthread_barrier_wait(&s->p->bar);   /* both have read both before either writes */
    memcpy(x, sum, (size_t)count * es);
    free(sum);
}

static void *run_share(void *arg) {
    share *s = arg;
    F(shard)(s->m, s->lo, info->batch, sum_pair, s);
    void **part = batch_from(s->batch, s->lo);
    s->loss = info->loss_grad(s->m, s->hi - s->lo, (const void *const *)part);
    F(shard)(s->m, 0, 0, NULL, NULL);
    free(part);
    return NULL;
}

static void test_shards(void **b1) {
    int B = info->batch, k = B / 3 > 0 ? B / 3 : 1;
    if (B < 2) return;
    model *whole = F(new)();
    F(init)(whole, 7);
    double loss = F(loss_grad)(whole, B, IO(b1));
    pair p;
    pthread_barrier_init(&p.bar, NULL, 2);
    share s[2] = {{F(new)(), 0, 0, k, b1, 0, &p}, {F(new)(), 1, k, B, b1, 0, &p}};
    pthread_t t[2];
    for (int r = 0; r < 2; r++) {
        F(init)(s[r].m, 7);
        pthread_create(&t[r], NULL, run_share, &s[r]);
    }
    for (int r = 0; r < 2; r++) pthread_join(t[r], NULL);
    pthread_barrier_destroy(&p.bar);
    double tol = info->dtype == NNR_F64 ? 1e-10 : 1e-5, big = 0, worst = 0;
    const void *g = F(grads)(whole), *g0 = F(grads)(s[0].m), *g1 = F(grads)(s[1].m);
    for (int64_t i = 0; i < info->param_size; i++) big = fmax(big, fabs(at(g, i)));
    for (int64_t i = 0; i < info->param_size; i++) worst = fmax(worst, fabs(at(g0, i) + at(g1, i) - at(g, i)));
    printf("    shares of %d and %d: losses %.9g + %.9g (whole %.9g), largest gradient difference %.3g of %.3g\n",
           k, B - k, s[0].loss, s[1].loss, loss, worst, big);
    check(fabs(s[0].loss + s[1].loss - loss) <= tol * fabs(loss), "NAME_shard: the shares' losses add up to the batch's");
    check(worst <= tol * big && big > 0, "NAME_shard: ... and so do their gradients");
    F(free)(s[0].m);
    F(free)(s[1].m);
    F(free)(whole);
}

int main(void) {
    info = F(info)();
    es = nnr_dtype_size(info->dtype);
    printf("model %s (%s, batch %d, %lld parameters)\n", info->name, nnr_dtype_name(info->dtype), info->batch,
           (long long)info->param_size);
    nnr_rng r;
    nnr_rng_seed(&r, 2024);
    void **b1 = random_batch(&r), **b2 = random_batch(&r);
    test_steps(b1, b2);
    test_accumulation(b1, b2);
    test_names();
    test_shards(b1);
    for (int k = 0; k < info->nio; k++) free(b1[k]), free(b2[k]);
    free(b1);
    free(b2);
    return failures ? 1 : 0;
}
