/* toy_model.c — tiny models written by hand the way nnc generates them: a parameter,
 * gradient and activation block per model, entry points taking one pointer per io entry,
 * and an nnr_model_info table describing it all.  The math is small enough to check by
 * eye; the trainer tests rely on it being right.  toy_mom adds what checkpoints must
 * carry: optimizer state ending in a double written through memcpy (as nadam's product
 * is), and steps that depend on the seed and the step counter (as dropout's masks do).
 */
#include "toy_model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- toy_cls: F32 softmax regression, x: [4] -> 3 classes -------------------------- */

enum { CLS_IN = 4, CLS_K = 3, CLS_BATCH = 8, CLS_NPARAM = CLS_K * CLS_IN + CLS_K };

typedef struct toy_cls {
    float   param[CLS_NPARAM];          /* lin.weight [3, 4], then lin.bias [3] */
    float   grad[CLS_NPARAM];
    float   probs[CLS_BATCH * CLS_K];
    float   state[CLS_NPARAM + 2];      /* toy_mom: velocity, then a double (the product) */
    float   lr;
    int64_t step;
    uint64_t seed;                      /* toy_mom: of the per-step gradient scale */
} toy_cls;

/* probs = softmax(W x + b) per example; returns the summed cross-entropy when y is given. */
static double cls_forward(toy_cls *m, int n, const float *x, const int32_t *y) {
    const float *w = m->param, *b = m->param + CLS_K * CLS_IN;
    double total = 0;
    for (int i = 0; i < n; i++) {
        float z[CLS_K], zmax = -INFINITY, sum = 0;
        for (int k = 0; k < CLS_K; k++) {
            z[k] = b[k];
            for (int j = 0; j < CLS_IN; j++) z[k] += w[k * CLS_IN + j] * x[i * CLS_IN + j];
            zmax = fmaxf(zmax, z[k]);
        }
        for (int k = 0; k < CLS_K; k++) sum += expf(z[k] - zmax);
        for (int k = 0; k < CLS_K; k++) m->probs[i * CLS_K + k] = expf(z[k] - zmax) / sum;
        if (y) total += logf(sum) + zmax - z[y[i]];
    }
    return total;
}

static double cls_loss(void *vm, int n, const void *const *in, int training) {
    (void)training;
    return cls_forward(vm, n, in[0], in[1]) / n;
}

static double cls_loss_grad(void *vm, int n, const void *const *in) {
    toy_cls *m = vm;
    const float *x = in[0];
    const int32_t *y = in[1];
    double loss = cls_forward(m, n, x, y) / n;
    float *dw = m->grad, *db = m->grad + CLS_K * CLS_IN;
    memset(m->grad, 0, sizeof m->grad);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < CLS_K; k++) {
            float dz = (m->probs[i * CLS_K + k] - (k == y[i])) / n;
            for (int j = 0; j < CLS_IN; j++) dw[k * CLS_IN + j] += dz * x[i * CLS_IN + j];
            db[k] += dz;
        }
    return loss;
}

static double cls_train_step(void *vm, int n, const void *const *in) {
    toy_cls *m = vm;
    double loss = cls_loss_grad(m, n, in);
    for (int i = 0; i < CLS_NPARAM; i++) m->param[i] -= m->lr * m->grad[i];
    m->step++;
    return loss;
}

/* toy_mom's step: momentum 0.9 on the gradient scaled by a factor in [0.5, 1.5) drawn from
 * (seed, step), and a running product of 0.9 per step kept as a double in the state. */
static double mom_train_step(void *vm, int n, const void *const *in) {
    toy_cls *m = vm;
    double loss = cls_loss_grad(m, n, in);
    m->step++;
    uint64_t z = m->seed + 0x9E3779B97F4A7C15ull * (uint64_t)m->step;
    z = (z ^ (z >> 31)) * 0xBF58476D1CE4E5B9ull;
    z ^= z >> 29;
    float scale = 0.5f + (float)(z >> 40) / (float)(1 << 24);
    double product;
    memcpy(&product, m->state + CLS_NPARAM, sizeof product);
    if (m->step == 1) product = 1;
    product *= 0.9;
    memcpy(m->state + CLS_NPARAM, &product, sizeof product);
    for (int i = 0; i < CLS_NPARAM; i++) {
        m->state[i] = 0.9f * m->state[i] + scale * m->grad[i];
        m->param[i] -= m->lr * m->state[i];
    }
    return loss;
}

static void cls_predict(void *vm, int n, const void *const *in, void *const *out) {
    toy_cls *m = vm;
    cls_forward(m, n, in[0], NULL);
    memcpy(out[0], m->probs, (size_t)n * CLS_K * sizeof(float));
}

static void *cls_create(void) { return calloc(1, sizeof(toy_cls)); }
static void *cls_params(void *m) { return ((toy_cls *)m)->param; }
static void *cls_grads(void *m) { return ((toy_cls *)m)->grad; }
static int64_t *cls_step(void *m) { return &((toy_cls *)m)->step; }
static void cls_set_lr(void *m, double lr) { ((toy_cls *)m)->lr = (float)lr; }
static void *cls_state(void *m) { return ((toy_cls *)m)->state; }
static void cls_set_seed(void *m, uint64_t seed) { ((toy_cls *)m)->seed = seed; }

static const nnr_io cls_io[] = {
    {"x", NNR_IO_INPUT, 1, {CLS_IN}, CLS_IN, 0, 0, 0},
    {"y", NNR_IO_LABEL, 0, {0}, 1, CLS_K, 0, 0},
};
static const nnr_io cls_out[] = {{"probs", NNR_IO_OUTPUT, 1, {CLS_K}, CLS_K, 0, 0, 0}};
static const nnr_param cls_param[] = {
    {"lin.weight", 2, {CLS_K, CLS_IN}, CLS_K * CLS_IN, 0, {NNR_INIT_GLOROT_UNIFORM, 0, 0}, 0},
    {"lin.bias", 1, {CLS_K}, CLS_K, CLS_K * CLS_IN, {NNR_INIT_ZEROS, 0, 0}, 0},
};

/* ---- toy_reg: F64 linear regression, x: [3] grad -> t: [2] -------------------------- */

enum { REG_IN = 3, REG_OUT = 2, REG_BATCH = 8, REG_NPARAM = REG_OUT * REG_IN + REG_OUT };

typedef struct toy_reg {
    double  param[REG_NPARAM];          /* lin.weight [2, 3], then lin.bias [2] */
    double  grad[REG_NPARAM];
    double  pred[REG_BATCH * REG_OUT];
    double  dx[REG_BATCH * REG_IN];     /* d loss / d x */
    double  lr;
    int64_t step;
} toy_reg;

/* pred = W x + b per example; returns the summed mse when t is given. */
static double reg_forward(toy_reg *m, int n, const double *x, const double *t) {
    const double *w = m->param, *b = m->param + REG_OUT * REG_IN;
    double total = 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < REG_OUT; k++) {
            double p = b[k];
            for (int j = 0; j < REG_IN; j++) p += w[k * REG_IN + j] * x[i * REG_IN + j];
            m->pred[i * REG_OUT + k] = p;
            if (t) total += (p - t[i * REG_OUT + k]) * (p - t[i * REG_OUT + k]) / REG_OUT;
        }
    return total;
}

static double reg_loss(void *vm, int n, const void *const *in, int training) {
    (void)training;
    return reg_forward(vm, n, in[0], in[1]) / n;
}

static double reg_loss_grad(void *vm, int n, const void *const *in) {
    toy_reg *m = vm;
    const double *x = in[0], *t = in[1];
    double loss = reg_forward(m, n, x, t) / n;
    const double *w = m->param;
    double *dw = m->grad, *db = m->grad + REG_OUT * REG_IN;
    memset(m->grad, 0, sizeof m->grad);
    memset(m->dx, 0, sizeof m->dx);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < REG_OUT; k++) {
            double dp = 2 * (m->pred[i * REG_OUT + k] - t[i * REG_OUT + k]) / (REG_OUT * n);
            for (int j = 0; j < REG_IN; j++) {
                dw[k * REG_IN + j] += dp * x[i * REG_IN + j];
                m->dx[i * REG_IN + j] += dp * w[k * REG_IN + j];
            }
            db[k] += dp;
        }
    return loss;
}

static double reg_bad_loss_grad(void *vm, int n, const void *const *in) {
    toy_reg *m = vm;
    double loss = reg_loss_grad(m, n, in);
    for (int k = 0; k < REG_OUT; k++) m->grad[REG_OUT * REG_IN + k] *= 2;
    return loss;
}

static double reg_train_step(void *vm, int n, const void *const *in) {
    toy_reg *m = vm;
    double loss = reg_loss_grad(m, n, in);
    for (int i = 0; i < REG_NPARAM; i++) m->param[i] -= m->lr * m->grad[i];
    m->step++;
    return loss;
}

static void reg_predict(void *vm, int n, const void *const *in, void *const *out) {
    toy_reg *m = vm;
    reg_forward(m, n, in[0], NULL);
    memcpy(out[0], m->pred, (size_t)n * REG_OUT * sizeof(double));
}

static void *reg_create(void) { return calloc(1, sizeof(toy_reg)); }
static void *reg_params(void *m) { return ((toy_reg *)m)->param; }
static void *reg_grads(void *m) { return ((toy_reg *)m)->grad; }
static int64_t *reg_step(void *m) { return &((toy_reg *)m)->step; }
static void *reg_input_grad(void *m, int k) { return k == 0 ? ((toy_reg *)m)->dx : NULL; }
static void reg_set_lr(void *m, double lr) { ((toy_reg *)m)->lr = lr; }

static const nnr_io reg_io[] = {
    {"x", NNR_IO_INPUT, 1, {REG_IN}, REG_IN, 0, 1, 0},
    {"t", NNR_IO_TARGET, 1, {REG_OUT}, REG_OUT, 0, 0, 0},
};
static const nnr_io reg_out[] = {{"pred", NNR_IO_OUTPUT, 1, {REG_OUT}, REG_OUT, 0, 0, 0}};
static const nnr_param reg_param[] = {
    {"lin.weight", 2, {REG_OUT, REG_IN}, REG_OUT * REG_IN, 0, {NNR_INIT_GLOROT_UNIFORM, 0, 0}, 0},
    {"lin.bias", 1, {REG_OUT}, REG_OUT, REG_OUT * REG_IN, {NNR_INIT_UNIFORM, -0.5, 0.5}, 0},
};

/* ---- the tables ---------------------------------------------------------------------- */

static void *no_state(void *m) { (void)m; return NULL; }
static void *no_input_grad(void *m, int k) { (void)m; (void)k; return NULL; }
static void destroy(void *m) { free(m); }

const nnr_model_info toy_cls_info = {
    .name = "toy_cls", .source = "toy_cls.nn", .dtype = NNR_F32, .batch = CLS_BATCH,
    .nio = 2, .io = cls_io, .nout = 1, .out = cls_out,
    .nparam = 2, .param = cls_param, .param_size = CLS_NPARAM, .state_size = 0,
    .acc_out = 0, .acc_label = 1,
    .train = {.batch = CLS_BATCH, .epochs = 3, .seed = 1, .opt = NNR_OPT_SGD, .lr = 0.5,
              .sched = NNR_SCHED_CONSTANT},
    .summary = "toy_cls: lin = dense(x, 3) [3]  15 parameters\n",
    .schema_hash = 0x70c1,
    .create = cls_create, .destroy = destroy, .params = cls_params, .grads = cls_grads,
    .state = no_state, .step = cls_step, .input_grad = no_input_grad, .loss = cls_loss,
    .loss_grad = cls_loss_grad, .train_step = cls_train_step, .predict = cls_predict,
    .set_lr = cls_set_lr,
};

#define REG_INFO(NAME, LOSS_GRAD)                                                          \
    {                                                                                      \
        .name = NAME, .source = "toy_reg.nn", .dtype = NNR_F64, .batch = REG_BATCH,        \
        .nio = 2, .io = reg_io, .nout = 1, .out = reg_out,                                 \
        .nparam = 2, .param = reg_param, .param_size = REG_NPARAM, .state_size = 0,        \
        .acc_out = -1, .acc_label = -1,                                                    \
        .train = {.batch = REG_BATCH, .epochs = 2, .seed = 7, .opt = NNR_OPT_SGD,          \
                  .lr = 0.1, .sched = NNR_SCHED_CONSTANT},                                 \
        .summary = "toy_reg: pred = dense(x, 2) [2]  8 parameters\n",                      \
        .schema_hash = 0x7e9,                                                              \
        .create = reg_create, .destroy = destroy, .params = reg_params,                    \
        .grads = reg_grads, .state = no_state, .step = reg_step,                           \
        .input_grad = reg_input_grad, .loss = reg_loss, .loss_grad = LOSS_GRAD,            \
        .train_step = reg_train_step, .predict = reg_predict, .set_lr = reg_set_lr,        \
    }

const nnr_model_info toy_reg_info = REG_INFO("toy_reg", reg_loss_grad);
const nnr_model_info toy_reg_bad_info = REG_INFO("toy_reg_bad", reg_bad_loss_grad);

const nnr_model_info toy_mom_info = {
    .name = "toy_mom", .source = "toy_mom.nn", .dtype = NNR_F32, .batch = CLS_BATCH,
    .nio = 2, .io = cls_io, .nout = 1, .out = cls_out,
    .nparam = 2, .param = cls_param, .param_size = CLS_NPARAM, .state_size = CLS_NPARAM + 2,
    .acc_out = 0, .acc_label = 1,
    .train = {.batch = CLS_BATCH, .epochs = 4, .seed = 5, .opt = NNR_OPT_MOMENTUM, .lr = 0.1,
              .mu = 0.9, .sched = NNR_SCHED_STEP, .sched_a = 2, .sched_b = 0.5},
    .summary = "toy_mom: lin = dense(x, 3) [3]  15 parameters, momentum\n",
    .schema_hash = 0x70c2,
    .create = cls_create, .destroy = destroy, .params = cls_params, .grads = cls_grads,
    .state = cls_state, .step = cls_step, .input_grad = no_input_grad, .loss = cls_loss,
    .loss_grad = cls_loss_grad, .train_step = mom_train_step, .predict = cls_predict,
    .set_lr = cls_set_lr, .set_seed = cls_set_seed,
};
