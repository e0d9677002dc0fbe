/* lower_train.c — the train { } block: batch, epochs, seed, weight_decay, clip_value,
 * clip_norm, the optimizer with its hyperparameters and the learning-rate schedule with
 * schedule_every (per epoch or per optimizer step), read
 * into the graph's training configuration (ir_train) with PyTorch's defaults where it has
 * them.  Optimizers and schedules are called like functions but are not built-in
 * functions of expressions: their own tables below list them, and gather_args checks
 * their arguments as it checks a built-in's. */
#include "lower_internal.h"
#include <math.h>
#include <string.h>

/* nnr_opt_kind and nnr_sched_kind values, as in runtime/nnr.h */
enum { OPT_SGD, OPT_MOMENTUM, OPT_NESTEROV, OPT_ADAGRAD, OPT_RMSPROP, OPT_ADADELTA, OPT_ADAM,
       OPT_ADAMAX, OPT_NADAM, OPT_ADAMW };
enum { SCHED_CONSTANT, SCHED_STEP, SCHED_EXPONENTIAL, SCHED_POLYNOMIAL, SCHED_COSINE, SCHED_WARMUP_COSINE };

/* keys: NULL-terminated, as gather_args reads them (adamw's five need the sixth slot) */
static const struct { const char *name; int kind; double lr; const char *keys[6]; } optimizers[] = {
    {"sgd", OPT_SGD, 0.01, {"lr"}},
    {"momentum", OPT_MOMENTUM, 0.01, {"lr", "mu"}},
    {"nesterov", OPT_NESTEROV, 0.01, {"lr", "mu"}},
    {"adagrad", OPT_ADAGRAD, 0.01, {"lr", "eps"}},
    {"rmsprop", OPT_RMSPROP, 0.01, {"lr", "rho", "eps"}},
    {"adadelta", OPT_ADADELTA, 1.0, {"rho", "eps", "lr"}},
    {"adam", OPT_ADAM, 0.001, {"lr", "beta1", "beta2", "eps"}},
    {"adamax", OPT_ADAMAX, 0.002, {"lr", "beta1", "beta2", "eps"}},
    {"nadam", OPT_NADAM, 0.002, {"lr", "beta1", "beta2", "eps"}},
    {"adamw", OPT_ADAMW, 0.001, {"lr", "beta1", "beta2", "eps", "weight_decay"}},
};

static void set_defaults(ir_train *t, int opt) {
    t->opt = opt;
    t->beta1 = 0.9;
    t->beta2 = 0.999;
    t->mu = 0.9;
    t->eps = opt == OPT_ADAGRAD ? 1e-10 : opt == OPT_ADADELTA ? 1e-6 : 1e-8;
    t->rho = opt == OPT_ADADELTA ? 0.9 : 0.99;
    t->adamw_decay = 0.01;   /* torch.optim.AdamW's default; apart from the L2 weight_decay */
}

/* What a model without train { } settings gets: see README "Choices and defaults". */
void lower_train_defaults(ir_train *t) {
    *t = (ir_train){.batch = 32, .epochs = 1, .lr = 0.001};
    set_defaults(t, OPT_ADAM);
    t->sched = SCHED_CONSTANT;
}

static double *opt_field(ir_train *t, const char *key) {
    if (!strcmp(key, "lr")) return &t->lr;
    if (!strcmp(key, "mu")) return &t->mu;
    if (!strcmp(key, "eps")) return &t->eps;
    if (!strcmp(key, "rho")) return &t->rho;
    if (!strcmp(key, "beta1")) return &t->beta1;
    if (!strcmp(key, "weight_decay")) return &t->adamw_decay;   /* adamw's own */
    return &t->beta2;
}

static void lower_optimizer(lower *L, const ast_expr *e) {
    const char *name = e->kind == AST_NAME || e->kind == AST_CALL ? e->name : "";
    for (size_t i = 0; i < sizeof optimizers / sizeof *optimizers; i++) {
        if (strcmp(optimizers[i].name, name) != 0) continue;
        ir_train *t = &L->g->train;
        set_defaults(t, optimizers[i].kind);
        t->lr = optimizers[i].lr;
        if (e->kind == AST_NAME) return;
        int nkeys = 0;
        while (optimizers[i].keys[nkeys]) nkeys++;
        callargs ca;
        if (lower_gather_args(L, e, 0, nkeys, optimizers[i].keys, &ca)) return;
        for (int k = 0; k < nkeys; k++) {
            const ast_arg *a = lower_arg_at(&ca, k);
            double v;
            if (!a ||
                lower_number_arg(L, a, arena_printf(L->g->a, "%s of %s", optimizers[i].keys[k], name), &v)) continue;
            const char *key = optimizers[i].keys[k];
            int is_lr = !strcmp(key, "lr"), is_beta = key[0] == 'b' || !strcmp(key, "rho");
            if (v < 0 || (is_lr && v == 0) || (is_beta && v >= 1)) {
                diag_error(L->d, a->value->at, "'%s' of %s must be %s", key, name,
                           is_lr ? "positive" : is_beta ? "in [0, 1)" : "non-negative");
                continue;
            }
            *opt_field(t, optimizers[i].keys[k]) = v;
        }
        return;
    }
    diag_error(L->d, e->at, "unknown optimizer%s%s%s; expected sgd, momentum, nesterov, adagrad, rmsprop, "
               "adadelta, adam, adamax, nadam or adamw", *name ? " '" : "", name, *name ? "'" : "");
}

static const struct { const char *name; int kind, nargs; const char *keys[4]; double def[3]; } schedules[] = {
    {"constant", SCHED_CONSTANT, 0, {NULL}, {0, 0, 0}},
    {"step", SCHED_STEP, 2, {"every", "gamma", NULL}, {1, 0.1, 0}},
    {"exponential", SCHED_EXPONENTIAL, 1, {"gamma", NULL}, {0.95, 0, 0}},
    {"polynomial", SCHED_POLYNOMIAL, 3, {"alpha", "beta", "gamma", NULL}, {0.1, 1, 1}},
    {"cosine", SCHED_COSINE, 1, {"t_max", NULL}, {10, 0, 0}},
    {"warmup_cosine", SCHED_WARMUP_COSINE, 2, {"warmup", "t_max", NULL}, {0, 10, 0}},
};

/* A schedule's argument k may be 0: polynomial's beta, warmup_cosine's warmup. */
static int may_be_zero(int sched, int k) {
    return k == 0 ? sched == SCHED_WARMUP_COSINE : k == 1 && sched == SCHED_POLYNOMIAL;
}

static void lower_schedule(lower *L, const ast_expr *e) {
    const char *name = e->kind == AST_NAME || e->kind == AST_CALL ? e->name : "";
    for (size_t i = 0; i < sizeof schedules / sizeof *schedules; i++) {
        if (strcmp(schedules[i].name, name) != 0) continue;
        ir_train *t = &L->g->train;
        t->sched = schedules[i].kind;
        double v[3] = {schedules[i].def[0], schedules[i].def[1], schedules[i].def[2]};
        if (e->kind == AST_CALL) {
            callargs ca;
            if (lower_gather_args(L, e, 0, schedules[i].nargs, schedules[i].nargs ? schedules[i].keys : NULL, &ca))
                return;
            for (int k = 0; k < schedules[i].nargs; k++) {
                const ast_arg *a = lower_arg_at(&ca, k);
                if (a &&
                    lower_number_arg(L, a, arena_printf(L->g->a, "%s of %s", schedules[i].keys[k], name), &v[k]) == 0 &&
                    !(v[k] > 0 || (may_be_zero(t->sched, k) && v[k] >= 0)))
                    diag_error(L->d, a->value->at, "'%s' of %s must be %s", schedules[i].keys[k], name,
                               may_be_zero(t->sched, k) ? "non-negative" : "positive");
            }
        }
        if (t->sched == SCHED_WARMUP_COSINE && !(v[1] > v[0]))
            diag_error(L->d, e->at, "warmup_cosine(warmup, t_max) needs t_max > warmup (here %g <= %g): the "
                       "cosine runs from warmup to t_max", v[1], v[0]);
        t->sched_a = v[0];
        t->sched_b = v[1];
        t->sched_c = v[2];
        return;
    }
    diag_error(L->d, e->at, "unknown schedule%s%s%s; expected constant, step(every, gamma), exponential(gamma), "
               "polynomial(alpha, beta, gamma), cosine(t_max) or warmup_cosine(warmup, t_max)", *name ? " '" : "", name, *name ? "'" : "");
}

/* schedule_every = epoch | step */
static void lower_schedule_every(lower *L, const ast_arg *it) {
    const ast_expr *e = it->value;
    if (e->kind == AST_NAME && (!strcmp(e->name, "epoch") || !strcmp(e->name, "step"))) {
        L->g->train.sched_every = e->name[0] == 's';
        return;
    }
    diag_error(L->d, e->at, "schedule_every must be epoch or step (when the schedule is evaluated: once per "
               "epoch, or before every optimizer step)");
}

/* adamw's weight_decay is decoupled; weight_decay in train { } adds L2 to the gradients.
 * PyTorch's AdamW has no second decay, so both at once are refused rather than guessed. */
static void check_adamw_decay(lower *L, const ast_arg *l2) {
    if (!l2 || L->g->train.opt != OPT_ADAMW) return;
    diag_error(L->d, l2->at, "weight_decay in train { } adds an L2 term to the gradients, which adamw does not "
               "combine with its own decoupled decay; give it as adamw(weight_decay=...)");
}

void lower_train(lower *L, const ast_stmt *s) {
    ir_train *t = &L->g->train;
    const ast_arg *l2 = NULL;   /* weight_decay = ... */
    for (const ast_arg *it = s->items; it; it = it->next) {
        int64_t v;
        double x;
        if (!strcmp(it->key, "batch")) {
            if (lower_int_arg(L, it, "batch", 1, 1 << 20, &v) == 0) t->batch = (int)v;
        } else if (!strcmp(it->key, "epochs")) {
            if (lower_int_arg(L, it, "epochs", 0, 1 << 30, &v) == 0) t->epochs = (int)v;
        } else if (!strcmp(it->key, "seed")) {
            if (lower_int_arg(L, it, "seed", 0, INT64_MAX / 2, &v) == 0) t->seed = (uint64_t)v;
        } else if (!strcmp(it->key, "optimizer")) {
            lower_optimizer(L, it->value);
        } else if (!strcmp(it->key, "schedule")) {
            lower_schedule(L, it->value);
        } else if (!strcmp(it->key, "schedule_every")) {
            lower_schedule_every(L, it);
        } else if (!strcmp(it->key, "weight_decay") || !strcmp(it->key, "clip_norm")) {
            if (it->key[0] == 'w') l2 = it;
            if (lower_number_arg(L, it, it->key, &x) == 0) {
                if (x < 0) diag_error(L->d, it->value->at, "%s must be >= 0", it->key);
                else *(it->key[0] == 'w' ? &t->weight_decay : &t->clip_norm) = x;
            }
        } else if (!strcmp(it->key, "clip_value")) {
            /* 0 would zero every gradient and stop training, so unlike clip_norm there is no
             * 0 = off: leaving the key out is off */
            if (lower_number_arg(L, it, it->key, &x) == 0) {
                if (!(x > 0 && isfinite(x)))
                    diag_error(L->d, it->value->at, "clip_value must be a positive finite number (every "
                               "gradient element is clipped to [-c, c]), not %g", x);
                else t->clip_value = x;
            }
        } else {
            diag_error(L->d, it->at, "unknown train setting '%s'; expected batch, epochs, optimizer, schedule, "
                       "schedule_every, weight_decay, clip_value, clip_norm or seed", it->key);
        }
    }
    check_adamw_decay(L, l2);
}
