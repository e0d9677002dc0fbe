/* emit_api.c — the whole generated file and its header: the model's struct, the
 * summary string, the pass functions in order, the public API of docs/c-api.md (NAME_new,
 * NAME_loss_grad, NAME_train_step, NAME_predict, the accessors), the nnr_model_info
 * tables the runtime's trainer reads (parameters, inputs, outputs, training defaults,
 * the schema hash that checkpoints are checked against), and main() for --exe.  The
 * preamble says what every macro of the file is for (libmvec, NNR_MADD, the sparse
 * limits) only when the model uses it. */
#include "emit.h"
#include <string.h>

static int64_t io_size(const ir_node *x) { return ir_numel(&x->shape); }

static void emit_struct(emitter *e, FILE *o) {
    ir_graph *g = e->g;
    fprintf(o, "\nstruct %s {\n", e->P);
    fprintf(o, "    %s *params;     /* %lld elements: every parameter, layout in %s_param_table */\n", e->T,
            (long long)g->param_size, e->P);
    fprintf(o, "    %s *grads;      /* d mean(loss) / d params, same layout */\n", e->T);
    fprintf(o, "    %s *state;      /* optimizer state: %d x %lld elements%s */\n", e->T,
            plan_state_slots(g->train.opt), (long long)g->train_size, g->train.opt == 8 ? ", then nadam's product" : "");
    fprintf(o, "    %s *acts;       /* %lld elements: activations and backward temporaries for %d examples */\n",
            e->T, (long long)g->act_size, g->train.batch);
    fprintf(o, "    %s *grads_added;/* backward's gradients when the block already holds some: allocated\n"
               "                        by the first backward that adds to gradients, NULL until then */\n", e->T);
    fprintf(o, "    int grads_clear;   /* 1: the gradient block holds no gradient: backward writes straight in */\n");
    fprintf(o, "    int pending;       /* examples of the forward pass a backward may use; 0: none */\n");
    fprintf(o, "    nnr_standardization norm;   /* the checkpoint's input standardization; predict applies it */\n");
    fprintf(o, "    int64_t step;      /* optimizer steps taken */\n");
    fprintf(o, "    uint64_t seed;     /* of the initialization, and of dropout's masks */\n");
    fprintf(o, "    %s lr;          /* learning rate of the current epoch */\n", e->T);
    fprintf(o, "    double loss;       /* mean loss of the last forward pass */\n");
    fprintf(o, "    int64_t shard_at, shard_n;   /* %s_shard: the calls' examples are examples shard_at..\n"
               "                                    of a global batch of shard_n; 0, 0: the call is the batch */\n", e->P);
    fprintf(o, "    nnr_sum_fn sum_ranks;        /* NULL, or adds batch statistics over the processes */\n");
    fprintf(o, "    void *sum_ranks_ctx;\n");
    fprintf(o, "    int check;         /* --check-numerics: 0 off, 1 on, 2 a non-finite value was found */\n");
    fprintf(o, "    char numerics[256];/* which, where and when */\n");
    for (int i = 0; i < g->io.n; i++) {
        ir_node *x = g->io.v[i];
        fprintf(o, "    const %s *%s;   /* the caller's %s for this call */\n",
                x->dtype == DT_CLASS ? "int32_t" : e->T, x->cname, x->role == ROLE_LABEL ? "labels" : "inputs");
    }
    fprintf(o, "};\n");
}

static const char *const init_names[] = {"NNR_INIT_ZEROS", "NNR_INIT_ONES", "NNR_INIT_CONST", "NNR_INIT_UNIFORM",
                                          "NNR_INIT_NORMAL", "NNR_INIT_LECUN_UNIFORM", "NNR_INIT_GLOROT_UNIFORM",
                                          "NNR_INIT_GLOROT_NORMAL", "NNR_INIT_HE_UNIFORM", "NNR_INIT_HE_NORMAL",
                                          "NNR_INIT_ORTHOGONAL", "NNR_INIT_TRIL", "NNR_INIT_TRIU", "NNR_INIT_EYE",
                                          "NNR_INIT_CAUSAL_MASK", "NNR_INIT_ARANGE"};


static void emit_shape_init(FILE *o, const ir_shape *s) {
    fprintf(o, "%d, {", s->rank);
    for (int d = 0; d < s->rank; d++) fprintf(o, "%s%lld", d ? ", " : "", (long long)s->dim[d]);
    fprintf(o, "%s}", s->rank ? "" : "0");   /* a scalar: {0}, since ISO C has no empty braces */
}

/* The argument list of the typed step functions: one pointer per input, label, target. */
const char *emit_io_params(emitter *e, int only_inputs) {
    ir_graph *g = e->g;
    char *s = "";
    for (int i = 0; i < g->io.n; i++) {
        ir_node *x = g->io.v[i];
        if (only_inputs && x->role != ROLE_INPUT) continue;
        s = arena_printf(e->a, "%s, const %s *%s", s, x->dtype == DT_CLASS ? "int32_t" : e->T, x->cname);
    }
    return s;
}

const char *emit_out_params(emitter *e) {
    char *s = "";
    for (int i = 0; i < e->g->outputs.n; i++) {
        ir_output *out = e->g->outputs.v[i];
        s = arena_printf(e->a, "%s, %s *%s", s, e->T, out->node->cname);
    }
    return s;
}

static uint64_t schema_hash(ir_graph *g) {
    uint64_t h = 1469598103934665603ull;
#define MIX(v) (h = (h ^ (uint64_t)(v)) * 1099511628211ull)
    for (int i = 0; i < g->params.n; i++) {
        ir_node *p = g->params.v[i];
        for (const char *c = p->name; *c; c++) MIX(*c);
        for (int d = 0; d < p->shape.rank; d++) MIX(p->shape.dim[d]);
        MIX(';');
    }
    for (int i = 0; i < g->io.n; i++) {
        ir_node *x = g->io.v[i];
        for (const char *c = x->name; *c; c++) MIX(*c);
        for (int d = 0; d < x->shape.rank; d++) MIX(x->shape.dim[d]);
        MIX(x->classes);
    }
    MIX(g->f64);
#undef MIX
    return h;
}

/* loss_grad and train_step, from NAME_forward and NAME_run_backward_ (either target's), and
 * the learning rate's and step's accessors. */
void emit_step_calls(emitter *e, FILE *o) {
    ir_graph *g = e->g;
    const char *P = e->P, *T = e->T;
    fprintf(o, "/* zero_grad + forward + backward, without zero_grad's memset: the backward pass writes\n"
               " * every gradient it computes, and the block's other elements (buffers, padding) are\n"
               " * never anything but 0 */\n");
    fprintf(o, "%s %s_loss_grad(%s *m, int n%s) {\n", T, P, P, emit_io_params(e, 0));
    fprintf(o, "    %s loss = %s_forward(m, n", T, P);
    for (int i = 0; i < g->io.n; i++) fprintf(o, ", %s", ((ir_node *)g->io.v[i])->cname);
    fprintf(o, ");\n    if (!m->pending) return NAN;   /* refused: the gradients stay as they were */\n");
    fprintf(o, "    m->grads_clear = 1;\n    return %s_run_backward_(m) ? NAN : loss;\n}\n\n", P);
    fprintf(o, "%s %s_train_step(%s *m, int n%s) {\n", T, P, P, emit_io_params(e, 0));
    fprintf(o, "    %s loss = %s_loss_grad(m, n", T, P);
    for (int i = 0; i < g->io.n; i++) fprintf(o, ", %s", ((ir_node *)g->io.v[i])->cname);
    fprintf(o, ");\n    if (loss == loss) %s_update(m);   /* not after a refused call (NaN) */\n    return loss;\n}\n\n", P);
    fprintf(o, "void %s_set_lr(%s *m, double lr) { m->lr = (%s)lr; }\n", P, P, T);
    fprintf(o, "double %s_lr(const %s *m) { return m->lr; }\n", P, P);
    fprintf(o, "int64_t %s_step(const %s *m) { return m->step; }\n\n", P, P);
}

/* The step API: forward, backward, zero_grad, loss_grad, train_step (update is
 * emit_optimizer.c's).  The gradient block is accumulated as PyTorch's .grad is: backward
 * adds.  grads_clear records that the block holds no gradient, so that backward then writes
 * its gradients straight into it (the common step: nothing copied); otherwise it writes them
 * into grads_added and adds that in.  Either way the result is the same bits as a backward
 * after zero_grad, plus the old block. */
static void emit_step_api(emitter *e, FILE *o) {
    ir_graph *g = e->g;
    const char *P = e->P, *T = e->T, *PU = e->PU;
    fprintf(o, "/* n out of 1..BATCH: refused with a message naming the function */\n");
    fprintf(o, "static int %s_bad_n_(const char *fn, int n) {\n    if (n > 0 && n <= %s_BATCH) return 0;\n", P, PU);
    fprintf(o, "    nnr_set_error(\"%%s: n = %%d; a call takes 1 to %%d examples (%s_BATCH)\", fn, n, %s_BATCH);\n"
               "    return 1;\n}\n\n", PU, PU);
    fprintf(o, "/* The forward pass of the bound inputs; 0, or -1 when --check-numerics found a value\n"
               " * that is not finite.  Leaves the pass for one backward. */\n");
    fprintf(o, "static int %s_run_forward_(%s *m, int n) {\n    m->pending = 0;\n    %s_forward_pass(m, n);\n", P, P, P);
    fprintf(o, "    if (m->check == 2) {\n        nnr_set_error(\"%%s\", m->numerics);\n        return -1;\n    }\n");
    fprintf(o, "    m->pending = n;\n    return 0;\n}\n\n");
    fprintf(o, "static int %s_run_backward_(%s *m) {\n    int n = m->pending;\n", P, P);
    fprintf(o, "    if (!n) {\n        nnr_set_error(\"%s_backward: no forward pass to differentiate (each %s_forward \"\n"
               "                      \"that succeeded allows one backward)\");\n        return -1;\n    }\n", P, P);
    fprintf(o, "    if (!m->grads_clear && !m->grads_added && !(m->grads_added = %s_block(%s_PARAMS))) {\n", P, PU);
    fprintf(o, "        nnr_set_error(\"%s_backward: out of memory for the second gradient block that adding to \"\n"
               "                      \"gradients needs (%%lld bytes)\", (long long)(%s_PARAMS * sizeof(%s)));\n"
               "        return -1;\n    }\n", P, PU, T);
    fprintf(o, "    m->pending = 0;   /* the backward pass reuses the forward pass's activations */\n");
    fprintf(o, "    if (m->grads_clear) {\n        %s_backward_pass(m, n);   /* straight into the block */\n"
               "        m->grads_clear = 0;\n    } else {\n", P);
    fprintf(o, "        %s *sum = m->grads;   /* the pass writes into grads_added, then adds it in */\n", T);
    fprintf(o, "        m->grads = m->grads_added;\n        %s_backward_pass(m, n);\n        m->grads = sum;\n", P);
    fprintf(o, "        const %s *add = m->grads_added;\n", T);
    fprintf(o, "        for (int64_t i = 0; i < %s_PARAMS; i++) sum[i] += add[i];\n    }\n", PU);
    fprintf(o, "    if (m->check == 2) {\n        nnr_set_error(\"%%s\", m->numerics);\n        return -1;\n    }\n");
    fprintf(o, "    return 0;\n}\n\n");
    /* forward, backward, zero_grad */
    fprintf(o, "%s %s_forward(%s *m, int n%s) {\n", T, P, P, emit_io_params(e, 0));
    fprintf(o, "    if (%s_bad_n_(\"%s_forward\", n)) {\n        m->pending = 0;\n        return NAN;\n    }\n", P, P);
    for (int i = 0; i < g->io.n; i++) {
        ir_node *x = g->io.v[i];
        fprintf(o, "    m->%s = %s;\n", x->cname, x->cname);
    }
    fprintf(o, "    return %s_run_forward_(m, n) ? NAN : (%s)m->loss;\n}\n\n", P, T);
    fprintf(o, "int %s_backward(%s *m) { return %s_run_backward_(m); }\n\n", P, P, P);
    fprintf(o, "void %s_zero_grad(%s *m) {\n", P, P);
    fprintf(o, "    if (!m->grads_clear) memset(m->grads, 0, (size_t)%s_PARAMS * sizeof(%s));\n", PU, T);
    fprintf(o, "    m->grads_clear = 1;\n}\n\n");
    emit_step_calls(e, o);
    fprintf(o, "void %s_shard(%s *m, int64_t at, int64_t total, nnr_sum_fn sum, void *ctx) {\n", P, P);
    fprintf(o, "    m->shard_at = at;\n    m->shard_n = total;\n    m->sum_ranks = sum;\n    m->sum_ranks_ctx = ctx;\n}\n\n");
}

/* predict: any n, in chunks of BATCH; NAME_predict standardizes the float inputs with the
 * model's statistics, the trainer's entry point (whose data are standardized already)
 * passes standardize = NULL.  The parameter's name is one of names.c's reserved words,
 * so no user input shares it. */
static void emit_predict(emitter *e, FILE *o) {
    ir_graph *g = e->g;
    const char *P = e->P, *T = e->T;
    fprintf(o, "static void %s_predict_with_(%s *m, const nnr_standardization *standardize, int n%s%s) {\n", P, P, emit_io_params(e, 1),
            emit_out_params(e));
    int any_float = 0;
    for (int i = 0; i < g->io.n; i++) {   /* no output depends on it: not read, may be NULL */
        ir_node *x = g->io.v[i];
        if (x->role == ROLE_INPUT && !x->in_infer) fprintf(o, "    (void)%s;   /* no output depends on it */\n", x->cname);
        any_float |= x->role == ROLE_INPUT && x->in_infer && x->dtype != DT_CLASS;
    }
    if (!any_float) fprintf(o, "    (void)standardize;   /* no float input is read */\n");
    fprintf(o, "    for (int at = 0; at < n; at += %s_BATCH) {\n", e->PU);
    fprintf(o, "        int chunk = n - at < %s_BATCH ? n - at : %s_BATCH;\n", e->PU, e->PU);
    for (int i = 0; i < g->io.n; i++) {
        ir_node *x = g->io.v[i];
        if (x->role != ROLE_INPUT || !x->in_infer) continue;
        if (x->dtype == DT_CLASS)
            fprintf(o, "        m->%s = %s + (size_t)at * %lld;\n", x->cname, x->cname, (long long)io_size(x));
        else
            fprintf(o, "        m->%s = nnr_standardize_input(&%s_model, standardize, %d, %s + (size_t)at * %lld, chunk);\n",
                    x->cname, P, i, x->cname, (long long)io_size(x));
    }
    fprintf(o, "        %s_infer(m, chunk);\n", P);
    for (int i = 0; i < g->outputs.n; i++) {
        ir_output *out = g->outputs.v[i];
        long long sz = (long long)ir_numel(&out->node->shape);
        fprintf(o, "        memcpy(%s + (size_t)at * %lld, m->acts + %lld, (size_t)chunk * %lld * sizeof(%s));\n",
                out->node->cname, sz, (long long)out->node->offset, sz, T);
    }
    fprintf(o, "    }\n}\n\n");
    fprintf(o, "void %s_predict(%s *m, int n%s%s) {\n    %s_predict_with_(m, &m->norm, n", P, P, emit_io_params(e, 1),
            emit_out_params(e), P);
    for (int i = 0; i < g->io.n; i++) {
        ir_node *x = g->io.v[i];
        if (x->role == ROLE_INPUT) fprintf(o, ", %s", x->cname);
    }
    for (int i = 0; i < g->outputs.n; i++) fprintf(o, ", %s", ((ir_output *)g->outputs.v[i])->node->cname);
    fprintf(o, ");\n}\n\n");
    fprintf(o, "int64_t %s_standardization(const %s *m, const double **mean, const double **std) {\n", P, P);
    fprintf(o, "    if (mean) *mean = m->norm.mean;\n    if (std) *std = m->norm.std;\n    return m->norm.n;\n}\n\n");
    fprintf(o, "int %s_set_standardization(%s *m, const double *mean, const double *std, int64_t n) {\n", P, P);
    fprintf(o, "    return nnr_standardization_set(&%s_model, &m->norm, mean, std, n);\n}\n\n", P);
}

/* The blocks, and one parameter's values or gradient by its checkpoint name. */
static void emit_access(emitter *e, FILE *o) {
    ir_graph *g = e->g;
    const char *P = e->P, *T = e->T;
    fprintf(o, "%s *%s_params(%s *m) { return m->params; }\n", T, P, P);
    fprintf(o, "%s *%s_grads(%s *m) { return m->grads; }\n\n", T, P, P);
    fprintf(o, "/* the element offset of parameter `name` in the blocks, its shape into *shape; -1 if unknown */\n");
    fprintf(o, "static int64_t %s_find_(const char *name, nnr_shape *shape) {\n", P);
    fprintf(o, "    const nnr_param *p = nnr_model_param(&%s_model, name);\n", P);
    fprintf(o, "    if (shape) {\n        memset(shape, 0, sizeof *shape);\n        if (p) {\n"
               "            shape->rank = p->rank;\n            memcpy(shape->dim, p->shape, sizeof p->shape);\n"
               "        }\n    }\n    return p ? p->offset : -1;\n}\n\n");
    fprintf(o, "%s *%s_param(%s *m, const char *name, nnr_shape *shape) {\n", T, P, P);
    fprintf(o, "    int64_t at = %s_find_(name, shape);\n    return at < 0 ? NULL : m->params + at;\n}\n\n", P);
    fprintf(o, "%s *%s_grad(%s *m, const char *name, nnr_shape *shape) {\n", T, P, P);
    fprintf(o, "    int64_t at = %s_find_(name, shape);\n    return at < 0 ? NULL : m->grads + at;\n}\n\n", P);
    for (int i = 0; i < g->io.n; i++) {
        ir_node *x = g->io.v[i];
        if (!x->wants_grad) continue;
        fprintf(o, "const %s *%s_grad_%s(const %s *m) { return m->acts + %lld; }\n", T, P, x->cname, P,
                x->grad ? (long long)x->grad->offset : 0LL);
    }
}

/* The const tensors' values, written once into their places in the activation block, which
 * no pass writes (plan.c gives every tensor its own place): nnr_init_fill with the
 * initializer, random ones drawn in declaration order from the train block's seed, so a
 * model loaded from a checkpoint, which does not hold them, gets the same values. */
static void emit_consts(emitter *e, FILE *o) {
    ir_graph *g = e->g;
    int any = 0;
    for (int i = 0; i < g->fwd_count; i++) {
        ir_node *c = ir_at(g, i);
        if (c->op != OP_CONST_TENSOR || c->bad) continue;
        if (!any)
            fprintf(o, "static void %s_consts_(%s *m) {   /* const tensors: never trained or saved */\n"
                       "    nnr_rng rng;\n    nnr_rng_seed(&rng, %lluu);   /* the train block's seed */\n",
                    e->P, e->P, (unsigned long long)g->train.seed);
        any = 1;
        fprintf(o, "    /* line %d: const %s: %s = %s", c->stmt_line, emit_comment_text(e, c->name, strlen(c->name)),
                emit_shape_of(e, c), ir_init_names[c->param.init]);
        if (ir_init_nargs[c->param.init] == 1) fprintf(o, "(%g)", c->param.a);
        if (ir_init_nargs[c->param.init] == 2) fprintf(o, "(%g, %g)", c->param.a, c->param.b);
        fprintf(o, " */\n    nnr_init_fill(m->acts + %lld, %s, %d, (const int64_t[]){", (long long)c->offset,
                g->f64 ? "NNR_F64" : "NNR_F32", c->shape.rank);
        for (int d = 0; d < c->shape.rank; d++) fprintf(o, "%s%lld", d ? ", " : "", (long long)c->shape.dim[d]);
        fprintf(o, "%s}, (nnr_init){%s, %.17g, %.17g}, &rng);\n", c->shape.rank ? "" : "1",
                init_names[c->param.init], c->param.a, c->param.b);
    }
    if (any) fprintf(o, "}\n\n");
}

int emit_has_consts(const ir_graph *g) {
    for (int i = 0; i < g->fwd_count; i++)
        if (ir_at(g, i)->op == OP_CONST_TENSOR && !ir_at(g, i)->bad) return 1;
    return 0;
}

static void emit_api(emitter *e, FILE *o) {
    ir_graph *g = e->g;
    const char *P = e->P, *T = e->T;
    fprintf(o, "\n/* ---- the API of %s.h ---- */\n\n", P);
    emit_consts(e, o);
    fprintf(o, "static void *%s_block(int64_t elements) {\n", P);
    fprintf(o, "    size_t bytes = ((size_t)elements * sizeof(%s) + 63) / 64 * 64;   /* 64-byte aligned */\n", T);
    fprintf(o, "    void *p = nnr_aligned_alloc(64, bytes ? bytes : 64);\n");
    fprintf(o, "    if (p) memset(p, 0, bytes ? bytes : 64);\n    return p;\n}\n\n");
    fprintf(o, "%s *%s_new(void) {\n    %s *m = calloc(1, sizeof *m);\n    if (!m) return NULL;\n", P, P, P);
    fprintf(o, "    m->params = %s_block(%lld);\n", P, (long long)g->param_size);
    fprintf(o, "    m->grads = %s_block(%lld);\n", P, (long long)g->param_size);
    fprintf(o, "    m->state = %s_block(%lld);\n", P, (long long)plan_state_size(g));
    fprintf(o, "    m->acts = %s_block(%lld);\n", P, (long long)g->act_size);
    fprintf(o, "    m->lr = %s;\n    m->grads_clear = 1;\n", emit_lit(e, g->train.lr));
    fprintf(o, "    if (!m->params || !m->grads || !m->state || !m->acts) {\n"
               "        %s_free(m);\n        return NULL;\n    }\n", P);
    if (emit_has_consts(g)) fprintf(o, "    %s_consts_(m);\n", P);
    fprintf(o, "    return m;\n}\n\n");
    fprintf(o, "void %s_free(%s *m) {\n    if (!m) return;\n    free(m->params);\n    free(m->grads);\n"
               "    free(m->grads_added);\n    free(m->state);\n    free(m->acts);\n"
               "    nnr_standardization_free(&m->norm);\n    free(m);\n}\n\n", P, P);
    fprintf(o, "void %s_init(%s *m, uint64_t seed) {\n    nnr_model_init(&%s_model, m, seed);   /* zeroes the gradients */\n"
               "    m->grads_clear = 1;\n    m->pending = 0;\n}\n\n", P, P, P);
    fprintf(o, "static void %s_set_seed_(void *m, uint64_t seed) { ((%s *)m)->seed = seed; }\n", P, P);
    fprintf(o, "int %s_load(%s *m, const char *path) {\n"
               "    return nnr_model_load_standardized(&%s_model, m, path, &m->norm);\n}\n\n", P, P, P);
    fprintf(o, "int %s_save(const %s *m, const char *path) {\n"
               "    return nnr_model_save_standardized(&%s_model, (void *)m, path, &m->norm);\n}\n\n", P, P, P);
    emit_step_api(e, o);
    emit_predict(e, o);
    emit_access(e, o);
}

/* Accuracy compares argmax(out[acc_out]) with io[acc_label]: the first label, in declaration
 * order, with an output of its shape and one more axis of its K classes (a label
 * class(K) [T] and logits or probabilities [T, K]: accuracy over every position). */
static void accuracy_pair(const ir_graph *g, int *acc_out, int *acc_label) {
    *acc_out = *acc_label = -1;
    for (int i = 0; i < g->io.n; i++) {
        const ir_node *y = g->io.v[i];
        if (y->role != ROLE_LABEL || y->classes <= 0) continue;
        for (int j = 0; j < g->outputs.n; j++) {
            const ir_shape *s = &((const ir_output *)g->outputs.v[j])->node->shape;
            if (s->rank != y->shape.rank + 1 || s->dim[s->rank - 1] != y->classes) continue;
            int same = 1;
            for (int a = 0; a < y->shape.rank; a++) same &= s->dim[a] == y->shape.dim[a];
            if (!same) continue;
            *acc_out = j;
            *acc_label = i;
            return;
        }
    }
}

static void emit_info(emitter *e, FILE *o) {
    ir_graph *g = e->g;
    const char *P = e->P, *T = e->T;
    fprintf(o, "\n/* ---- what the runtime's trainer (nnr_main) needs to know ---- */\n\n");
    fprintf(o, "static const nnr_param %s_param_table[] = {\n", P);
    for (int i = 0; i < g->params.n; i++) {
        ir_node *p = g->params.v[i];
        fprintf(o, "    {%s, ", emit_cstring(e, p->name));
        emit_shape_init(o, &p->shape);
        fprintf(o, ", %lld, %lld, {%s, %.17g, %.17g}, %d},\n", (long long)ir_numel(&p->shape), (long long)p->offset,
                init_names[p->param.init], p->param.a, p->param.b, p->param.buffer);
    }
    if (!g->params.n) fprintf(o, "    {0}\n");
    fprintf(o, "};\n\n");
    static const char *const kinds[] = {"NNR_IO_INPUT", "NNR_IO_LABEL", "NNR_IO_TARGET"};
    fprintf(o, "/* name, kind, rank, shape, elements, classes, grad, predict_unused (nnr.h's nnr_io) */\n");
    fprintf(o, "static const nnr_io %s_io_table[] = {\n", P);
    int acc_label = -1, acc_out = -1;
    for (int i = 0; i < g->io.n; i++) {
        ir_node *x = g->io.v[i];
        int kind = x->role == ROLE_LABEL ? 1 : x->role == ROLE_TARGET ? 2 : 0;
        fprintf(o, "    {%s, %s, ", emit_cstring(e, x->name), kinds[kind]);
        emit_shape_init(o, &x->shape);
        fprintf(o, ", %lld, %d, %d, %d},\n", (long long)io_size(x), x->classes, x->wants_grad,
                x->role == ROLE_INPUT && !x->in_infer);   /* predict_unused */
    }
    fprintf(o, "};\n\n");
    fprintf(o, "static const nnr_io %s_out_table[] = {\n", P);
    for (int i = 0; i < g->outputs.n; i++) {
        ir_output *out = g->outputs.v[i];
        fprintf(o, "    {%s, NNR_IO_OUTPUT, ", emit_cstring(e, out->name));
        emit_shape_init(o, &out->node->shape);
        fprintf(o, ", %lld, 0, 0, 0},\n", (long long)ir_numel(&out->node->shape));
    }
    if (!g->outputs.n) fprintf(o, "    {0}\n");
    fprintf(o, "};\n\n");
    accuracy_pair(g, &acc_out, &acc_label);

    /* entry points through void pointers */
    fprintf(o, "static void *%s_create_(void) { return %s_new(); }\n", P, P);
    fprintf(o, "static void %s_destroy_(void *m) { %s_free(m); }\n", P, P);
    fprintf(o, "static void *%s_params_(void *m) { return ((%s *)m)->params; }\n", P, P);
    fprintf(o, "static void *%s_grads_(void *m) { return ((%s *)m)->grads; }\n", P, P);
    fprintf(o, "static void *%s_state_(void *m) { return ((%s *)m)->state; }\n", P, P);
    fprintf(o, "static int64_t *%s_step_(void *m) { return &((%s *)m)->step; }\n", P, P);
    fprintf(o, "static void %s_set_lr_(void *m, double lr) { ((%s *)m)->lr = (%s)lr; }\n", P, P, T);
    fprintf(o, "static void %s_set_check_(void *m, int on) { ((%s *)m)->check = on != 0; }\n", P, P);
    fprintf(o, "static const char *%s_numerics_(void *m) { return ((%s *)m)->check == 2 ? ((%s *)m)->numerics : NULL; }\n",
            P, P, P);
    fprintf(o, "static void *%s_input_grad_(void *mv, int k) {\n    %s *m = mv;\n    switch (k) {\n", P, P);
    for (int i = 0; i < g->io.n; i++) {
        ir_node *x = g->io.v[i];
        if (x->wants_grad && x->grad) fprintf(o, "    case %d: return m->acts + %lld;\n", i, (long long)x->grad->offset);
    }
    fprintf(o, "    default: (void)m; return NULL;\n    }\n}\n");
    fprintf(o, "static void %s_bind_(%s *m, const void *const *in) {\n", P, P);
    for (int i = 0; i < g->io.n; i++) {
        ir_node *x = g->io.v[i];
        fprintf(o, "    m->%s = in[%d];\n", x->cname, i);
    }
    if (!g->io.n) fprintf(o, "    (void)m; (void)in;\n");
    fprintf(o, "}\n");
    fprintf(o, "static double %s_loss_(void *mv, int n, const void *const *in, int training) {\n", P);
    if (emit_has_modes(g)) {
        fprintf(o, "    %s *m = mv;\n", P);
        fprintf(o, "    if (n <= 0 || n > %s_BATCH) return NAN;\n    %s_bind_(m, in);\n    m->pending = 0;\n", e->PU, P);
        fprintf(o, "    if (training) %s_forward_pass(m, n);\n    else %s_forward_eval(m, n);\n    return m->loss;\n}\n", P, P);
    } else {
        fprintf(o, "    %s *m = mv;\n    (void)training;   /* no op of this model behaves differently in training */\n", P);
        fprintf(o, "    if (n <= 0 || n > %s_BATCH) return NAN;\n    %s_bind_(m, in);\n    m->pending = 0;\n"
                   "    %s_forward_pass(m, n);\n    return m->loss;\n}\n", e->PU, P, P);
    }
    fprintf(o, "static double %s_loss_grad_(void *mv, int n, const void *const *in) {\n", P);
    fprintf(o, "    %s *m = mv;\n    if (n <= 0 || n > %s_BATCH) return NAN;\n    %s_bind_(m, in);\n", P, e->PU, P);
    fprintf(o, "    if (%s_run_forward_(m, n)) return NAN;\n    m->grads_clear = 1;   /* as %s_loss_grad */\n", P, P);
    fprintf(o, "    return %s_run_backward_(m) ? NAN : m->loss;\n}\n", P);
    fprintf(o, "static double %s_train_step_(void *m, int n, const void *const *in) {\n", P);
    fprintf(o, "    double loss = %s_loss_grad_(m, n, in);\n    if (loss == loss) %s_update(m);\n    return loss;\n}\n", P, P);
    fprintf(o, "static void %s_update_(void *m) { %s_update(m); }\n", P, P);
    fprintf(o, "static void %s_shard_(void *m, int64_t at, int64_t total, nnr_sum_fn sum, void *ctx) {\n"
               "    %s_shard(m, at, total, sum, ctx);\n}\n", P, P);
    fprintf(o, "static void %s_predict_(void *mv, int n, const void *const *in, void *const *out) {\n", P);
    fprintf(o, "    %s *m = mv;\n", P);
    if (g->outputs.n == 0) fprintf(o, "    (void)m; (void)n; (void)in; (void)out;\n");
    else {
        fprintf(o, "    %s_predict_with_(m, NULL, n", P);   /* the trainer's data are standardized already */
        int k = 0;
        for (int i = 0; i < g->io.n; i++)
            if (((ir_node *)g->io.v[i])->role == ROLE_INPUT) fprintf(o, ", in[%d]", k++);
        for (int i = 0; i < g->outputs.n; i++) fprintf(o, ", out[%d]", i);
        fprintf(o, ");\n");
    }
    fprintf(o, "}\n\n");

    ir_train *t = &g->train;
    fprintf(o, "static const nnr_model_info %s_model = {\n", P);
    fprintf(o, "    .name = %s,\n    .source = %s,\n    .dtype = %s,\n    .batch = %s_BATCH,\n",
            emit_cstring(e, g->model), emit_cstring(e, e->o->source_path ? e->o->source_path : g->src->path),
            g->f64 ? "NNR_F64" : "NNR_F32", e->PU);
    fprintf(o, "    .nio = %d, .io = %s_io_table,\n", g->io.n, P);
    fprintf(o, "    .nout = %d, .out = %s_out_table,\n", g->outputs.n, P);
    fprintf(o, "    .nparam = %d, .param = %s_param_table,\n", g->params.n, P);
    fprintf(o, "    .param_size = %lld,\n    .state_size = %lld,\n    .act_size = %lld,\n", (long long)g->param_size,
            (long long)plan_state_size(g), (long long)g->act_size);
    fprintf(o, "    .acc_out = %d, .acc_label = %d,\n", acc_out, acc_label);
    fprintf(o, "    .train = {.batch = %d, .epochs = %d, .seed = %lluu, .opt = %d, .lr = %.17g, .beta1 = %.17g,\n"
               "              .beta2 = %.17g, .eps = %.17g, .mu = %.17g, .rho = %.17g, .sched = %d,\n"
               "              .sched_a = %.17g, .sched_b = %.17g, .sched_c = %.17g,\n"
               "              .weight_decay = %.17g, .clip_norm = %.17g",
            t->batch, t->epochs, (unsigned long long)t->seed, t->opt, t->lr, t->beta1, t->beta2, t->eps, t->mu,
            t->rho, t->sched, t->sched_a, t->sched_b, t->sched_c, t->opt == 9 ? t->adamw_decay : t->weight_decay,
            t->clip_norm);   /* the runtime's weight_decay is adamw's own for adamw */
    if (t->clip_value) fprintf(o, ", .clip_value = %.17g", t->clip_value);   /* only when set: */
    if (t->sched_every) fprintf(o, ", .sched_every = NNR_SCHED_EVERY_STEP");
    fprintf(o, "},\n");                    /* other models' generated C stays as it was */
    fprintf(o, "    .summary_lines = %s_summary_lines,\n", P);
    fprintf(o, "    .schema_hash = 0x%016llxull,\n", (unsigned long long)schema_hash(g));
    fprintf(o, "    .nnc_version = \"%s\",\n", NNC_VERSION);
    fprintf(o, "    .create = %s_create_, .destroy = %s_destroy_, .params = %s_params_, .grads = %s_grads_,\n", P, P, P, P);
    fprintf(o, "    .state = %s_state_, .step = %s_step_, .input_grad = %s_input_grad_,\n", P, P, P);
    fprintf(o, "    .loss = %s_loss_, .loss_grad = %s_loss_grad_, .train_step = %s_train_step_,\n", P, P, P);
    fprintf(o, "    .predict = %s_predict_, .set_lr = %s_set_lr_, .set_seed = %s_set_seed_,\n", P, P, P);
    fprintf(o, "    .set_check = %s_set_check_, .numerics = %s_numerics_,\n", P, P);
    fprintf(o, "    .update = %s_update_, .shard = %s_shard_,\n};\n\n", P, P);
    fprintf(o, "const nnr_model_info *%s_info(void) { return &%s_model; }\n", P, P);
}

static void emit_summary_string(emitter *e, FILE *o) {
    const char *text = summary_text(e->g);
    /* lines, not one literal: a large model's table passes the 4095 bytes C99 promises */
    fprintf(o, "\nstatic const char *const %s_summary_lines[] = {\n", e->P);
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p + 1) : strlen(p);
        fprintf(o, "    %s,\n", emit_cstring(e, arena_strndup(e->a, p, len)));
        p += len;
    }
    fprintf(o, "    NULL,\n};\n");
}

int emit_has_dropout(const ir_graph *g) {
    for (int i = 0; i < g->fwd_count; i++)
        if (ir_at(g, i)->op == OP_DROPOUT_MASK) return 1;
    return 0;
}

void emit_uniform(emitter *e, FILE *o) {
    fprintf(o, "\n/* Dropout's random numbers: a hash of (seed, step, tensor, element), so a step's mask is\n"
               " * the same however often its loss is evaluated (gradcheck) and runs are reproducible. */\n");
    fprintf(o, "static inline double %s_uniform(uint64_t seed, int64_t step, int tensor, int64_t i) {\n", e->P);
    fprintf(o, "    uint64_t z = seed + 0x9E3779B97F4A7C15ull * (uint64_t)(step + 1) + 0xD1B54A32D192ED03ull * (uint64_t)tensor\n"
               "                 + 0xBF58476D1CE4E5B9ull * (uint64_t)i;\n");
    fprintf(o, "    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;\n    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;\n");
    fprintf(o, "    z ^= z >> 31;\n    return (double)(z >> 11) * 0x1.0p-53;\n}\n");
}

void emit_model_comment(emitter *e, FILE *o, const char *what) {
    ir_graph *g = e->g;
    const char *src = emit_comment_text(e, e->o->source_path ? e->o->source_path : g->src->path,
                                   strlen(e->o->source_path ? e->o->source_path : g->src->path));
    fprintf(o, "/* %s — generated by nnc %s from %s; do not edit.\n *\n", what, NNC_VERSION, src);
    fprintf(o, " * Model %s, %s, compiled batch %d (any n <= %d per call).\n",
            emit_comment_text(e, g->model, strlen(g->model)), g->f64 ? "double precision" : "single precision",
            g->train.batch, g->train.batch);
    fprintf(o, " * Identifiers of the model's tensors are its names with '.' as '_'; a name that would\n"
               " * clash with C (a keyword, libc, BLAS, a macro such as cblas.h's I) gets a trailing '_'. */\n");
}

/* "[256, 784]", "a scalar" for rank 0 */
static const char *shape_words(emitter *e, const ir_shape *s) {
    if (!s->rank) return "one value";
    char *t = "[";
    for (int d = 0; d < s->rank; d++) t = arena_printf(e->a, "%s%s%lld", t, d ? ", " : "", (long long)s->dim[d]);
    return arena_printf(e->a, "%s]", t);
}

/* What this model's functions take and give: the arguments, the outputs, the parameters. */
void emit_h_model(emitter *e, FILE *out) {
    ir_graph *g = e->g;
    static const char *const roles[] = {"input", "label", "target"};
    fprintf(out, "/* ---- this model ----------------------------------------------------------------------\n");
    fprintf(out, " * The step functions take, after n, one pointer per entry below in this order, each to n\n"
                 " * consecutive examples (row-major, the example index first); predict takes the inputs only.\n");
    for (int i = 0; i < g->io.n; i++) {
        ir_node *x = g->io.v[i];
        int role = x->role == ROLE_LABEL ? 1 : x->role == ROLE_TARGET ? 2 : 0;
        const char *what = x->dtype == DT_CLASS ? arena_printf(e->a, "int32_t, classes in [0, %d)", x->classes)
                                                : e->T;
        fprintf(out, " *   %-14s %-6s %s per example (%s)%s%s\n", x->cname, roles[role], shape_words(e, &x->shape), what,
                x->wants_grad ? "; d loss/d it: NAME_grad_" : "", x->wants_grad ? x->cname : "");
    }
    if (!g->io.n) fprintf(out, " *   (none)\n");
    fprintf(out, " * predict writes one buffer per output, n examples each:\n");
    for (int i = 0; i < g->outputs.n; i++) {
        ir_output *out_ = g->outputs.v[i];
        fprintf(out, " *   %-14s output %s per example (%s)\n", out_->node->cname, shape_words(e, &out_->node->shape), e->T);
    }
    if (!g->outputs.n) fprintf(out, " *   (none: the model declares no output)\n");
    fprintf(out, " * Parameters, by the names NAME_param, NAME_grad and checkpoints use (offset: element of\n"
                 " * the blocks NAME_params and NAME_grads return)%s:\n",
            emit_has_modes(g) ? "; a buffer is state such as batchnorm's running statistics" : "");
    for (int i = 0; i < g->params.n; i++) {
        ir_node *p = g->params.v[i];
        fprintf(out, " *   %-20s %-14s offset %lld%s\n", emit_comment_text(e, p->name, strlen(p->name)),
                shape_words(e, &p->shape), (long long)p->offset,
                p->param.buffer == 2 ? " (frozen: not trained)" : p->param.buffer ? " (buffer: not trained)" : "");
    }
    if (!g->params.n) fprintf(out, " *   (none)\n");
    fprintf(out, " */\n\n");
}

/* The conventions every generated model shares: a reader of the header needs nothing else. */
static const char api_conventions[] =
    "/* ---- using the model (docs/c-api.md has the whole API, the file format and examples) ------\n"
    " * Types: the model object is opaque; T is the model's dtype (float, or double for an\n"
    " * f64 model); class tensors are int32_t.  Errors: a function returning int gives 0, or\n"
    " * -1 after recording a message that nnr_error() returns (per thread); a loss of NaN means\n"
    " * the call was refused (n out of range, no forward to differentiate, --check-numerics)\n"
    " * or the loss is not finite.  Memory: NAME_new allocates every block a step needs;\n"
    " * nothing allocates after it except NAME_load, NAME_set_standardization (predict's\n"
    " * staging) and the first NAME_backward that adds to gradients already there (a second\n"
    " * gradient block, once).  Pointers into the model stay valid until NAME_free.  Threads:\n"
    " * one model is used by one thread at a time; separate models may run at once.  A step\n"
    " * runs its loops on nnc's threads (nnr_set_threads).\n"
    " *\n"
    " *   new / free / init(seed)   create (parameters 0), release, initialize as the model says\n"
    " *   load / save               safetensors files: parameters by name, plus the input\n"
    " *                             standardization when the file has one\n"
    " *   forward(m, n, ...)        the mean loss over n <= BATCH examples, in training mode\n"
    " *                             (dropout, batch statistics); keeps what backward needs and\n"
    " *                             reads the caller's buffers again in backward: keep them\n"
    " *   backward(m)               ADDS d(that mean loss)/d(params) to the gradient block, as\n"
    " *                             PyTorch's .backward() does: k calls without zero_grad leave the\n"
    " *                             sum of the k mean-loss gradients (divide by k for their mean).\n"
    " *                             One backward per forward.  Input gradients (NAME_grad_<input>)\n"
    " *                             are the last backward's alone.\n"
    " *   zero_grad(m)              sets the gradient block to 0 (free when it is already)\n"
    " *   update(m)                 one optimizer step from the gradient block: the model's\n"
    " *                             optimizer with its clipping and weight decay, the learning\n"
    " *                             rate NAME_lr; it advances NAME_step by one\n"
    " *   loss_grad(m, n, ...)      zero_grad + forward + backward (returns forward's loss)\n"
    " *   train_step(m, n, ...)     loss_grad + update: the same bits as the four calls\n"
    " *   predict(m, n, in.., out..)  inference mode (no dropout, running statistics) on any n,\n"
    " *                             BATCH at a time; standardizes the float inputs with the\n"
    " *                             model's statistics first, as `m predict` does.  The other\n"
    " *                             functions take inputs as the model trains on them (already\n"
    " *                             standardized, as `m train --standardize` feeds them)\n"
    " *   set_lr / lr / step        the learning rate of the next update (a schedule sets it per\n"
    " *                             epoch: nnr_schedule_lr(&NAME_info()->train, base, epoch)), and\n"
    " *                             the updates taken\n"
    " *   params / grads            the blocks, NAME_PARAMS elements each, laid out as listed above\n"
    " *   param / grad(m, name, &shape)  one parameter's values or gradient by name, its shape\n"
    " *                             into *shape (may be NULL); NULL for an unknown name\n"
    " *   standardization / set_standardization  the per-feature mean and std predict applies\n"
    " *                             (features: the elements of the float inputs, in order)\n"
    " *   info()                    the model's tables (nnr_model_info: shapes, parameters,\n"
    " *                             training defaults) and nnr_main's entry points\n"
    " */\n\n";

int emit_h(ir_graph *g, FILE *out, const emit_opts *o) {
    emitter e;
    emit_setup(&e, g, out, o);
    if (o->embedded) return emit_embedded_h(&e, out);
    const char *P = e.P, *T = e.T;
    emit_model_comment(&e, out, arena_printf(g->a, "%s.h", P));
    fprintf(out, "#ifndef %s_NNC_H\n#define %s_NNC_H\n\n#include <stdint.h>\n#include \"nnr.h\"\n\n", e.PU, e.PU);
    fprintf(out, "#ifdef __cplusplus\nextern \"C\" {   /* the .c file is C: compile it as C and link it from C++ */\n#endif\n\n");
    fputs(api_conventions, out);
    fprintf(out, "/* Here NAME is %s and T is %s. */\n\n", P, T);
    emit_h_model(&e, out);
    fprintf(out, "#define %s_BATCH %d   /* compiled batch size: n <= BATCH at run time */\n", e.PU, g->train.batch);
    fprintf(out, "#define %s_PARAMS %lld   /* elements of the parameter block */\n\n", e.PU, (long long)g->param_size);
    fprintf(out, "typedef struct %s %s;   /* parameters, gradients, optimizer state, activations */\n\n", P, P);
    fprintf(out, "%s *%s_new(void);                 /* parameters 0; NULL when out of memory */\n", P, P);
    fprintf(out, "void %s_free(%s *m);                 /* NULL is fine */\n", P, P);
    fprintf(out, "void %s_init(%s *m, uint64_t seed);   /* the model's initializers; gradients, state, step 0 */\n", P, P);
    fprintf(out, "/* Reads a parameter file or a whole checkpoint (the optimizer state is not restored);\n"
                 " * checks every name, shape and value first: on failure (-1) the model is unchanged. */\n");
    fprintf(out, "int  %s_load(%s *m, const char *path);\n", P, P);
    fprintf(out, "int  %s_save(const %s *m, const char *path);  /* atomic: the old file or the new one */\n\n", P, P);
    fprintf(out, "/* training, step by step */\n");
    fprintf(out, "%s %s_forward(%s *m, int n%s);\n", T, P, P, emit_io_params(&e, 0));
    fprintf(out, "int  %s_backward(%s *m);   /* adds to the gradients; -1 without a forward to use */\n", P, P);
    fprintf(out, "void %s_zero_grad(%s *m);\n", P, P);
    fprintf(out, "void %s_update(%s *m);\n", P, P);
    fprintf(out, "/* the common step in one call each */\n");
    fprintf(out, "%s %s_loss_grad(%s *m, int n%s);\n", T, P, P, emit_io_params(&e, 0));
    fprintf(out, "%s %s_train_step(%s *m, int n%s);\n", T, P, P, emit_io_params(&e, 0));
    fprintf(out, "void    %s_set_lr(%s *m, double lr);   /* starts as the train block's lr */\n", P, P);
    fprintf(out, "double  %s_lr(const %s *m);\n", P, P);
    fprintf(out, "int64_t %s_step(const %s *m);          /* updates taken (0 after init) */\n", P, P);
    fprintf(out, "/* data-parallel training (docs/distributed.md): the next calls' n examples are examples\n"
                 " * at..at+n-1 of a global batch of `total` that other processes share, so the loss and\n"
                 " * gradients are this share's part of the global mean (their sum over the processes is\n"
                 " * it) and dropout draws the masks the whole batch would; sum, when not NULL, adds a\n"
                 " * buffer of batch statistics over the processes in place (synchronized batchnorm).\n"
                 " * %s_shard(m, 0, 0, NULL, NULL) makes each call its own batch again. */\n", P);
    fprintf(out, "void    %s_shard(%s *m, int64_t at, int64_t total, nnr_sum_fn sum, void *ctx);\n\n", P, P);
    fprintf(out, "/* inference on any n (in chunks of BATCH): one buffer per output */\n");
    for (int i = 0; i < g->io.n; i++) {
        ir_node *x = g->io.v[i];
        if (x->role == ROLE_INPUT && !x->in_infer)
            fprintf(out, "/* %s is not read: no output depends on it, so NULL may be passed */\n", x->cname);
    }
    fprintf(out, "void %s_predict(%s *m, int n%s%s);\n", P, P, emit_io_params(&e, 1), emit_out_params(&e));
    fprintf(out, "/* the standardization predict applies: the feature count (0: none), mean and std into\n"
                 " * *mean and *std (may be NULL; the model's memory); set: copies them, n = 0 removes */\n");
    fprintf(out, "int64_t %s_standardization(const %s *m, const double **mean, const double **std);\n", P, P);
    fprintf(out, "int     %s_set_standardization(%s *m, const double *mean, const double *std, int64_t n);\n\n", P, P);
    fprintf(out, "/* parameters and gradients: the blocks, or one tensor by name (NULL if unknown) */\n");
    fprintf(out, "%s *%s_params(%s *m);   /* %s_PARAMS elements */\n", T, P, P, e.PU);
    fprintf(out, "%s *%s_grads(%s *m);    /* d loss / d params, same layout */\n", T, P, P);
    fprintf(out, "%s *%s_param(%s *m, const char *name, nnr_shape *shape);\n", T, P, P);
    fprintf(out, "%s *%s_grad(%s *m, const char *name, nnr_shape *shape);\n", T, P, P);
    for (int i = 0; i < g->io.n; i++) {
        ir_node *x = g->io.v[i];
        if (x->wants_grad) fprintf(out, "const %s *%s_grad_%s(const %s *m);   /* d mean(loss) / d %s, n examples */\n",
                                   T, P, x->cname, P, x->cname);
    }
    fprintf(out, "const nnr_model_info *%s_info(void);   /* for nnr_main and the runtime */\n", P);
    fprintf(out, "\n#ifdef __cplusplus\n}\n#endif\n#endif\n");
    return ferror(out) ? -1 : 0;
}

static int has_madd_code(const ir_graph *g) {   /* convolutions, sparse products */
    for (int i = 0; i < g->nodes.n; i++)
        if (ir_at(g, i)->scratch && ir_ops[ir_at(g, i)->op].fam != FAM_ATTENTION) return 1;
    return 0;
}

static int has_sparse_path(const ir_graph *g) {
    for (int i = 0; i < g->nodes.n; i++)
        if (ir_at(g, i)->scratch && !ir_at(g, i)->direct && !ir_at(g, i)->sparse_a &&
            ir_ops[ir_at(g, i)->op].fam != FAM_ATTENTION)
            return 1;
    return 0;
}

int emit_has_products(const ir_graph *g) {   /* what calls nnr_sgemm (a direct convolution does not) */
    for (int i = 0; i < g->nodes.n; i++) {
        const ir_node *x = ir_at(g, i);
        int fam = ir_ops[x->op].fam;
        if ((fam == FAM_MATMUL || fam == FAM_DENSE || fam == FAM_ATTENTION) && !x->direct) return 1;
    }
    return 0;
}

static int has_sparse_product(const ir_graph *g) {
    for (int i = 0; i < g->nodes.n; i++)
        if (ir_at(g, i)->sparse_a) return 1;
    return 0;
}

/* The macros of the kernels a model uses: NNR_MADD, the sparse paths' fractions. */
void emit_kernel_macros(emitter *e, FILE *out) {
    const ir_graph *g = e->g;
    if (has_madd_code(g) && e->o->own_math)   /* the file's fma: fused where the target has one */
        fprintf(out, "\n/* a * b + c, fused where the target has a fused multiply-add (--math inline's fma) */\n"
                     "#define NNR_MADD(a, b, c) %s(a, b, c)\n", emit_fn(e, "fma"));
    else if (has_madd_code(g))
        fprintf(out, "\n/* a * b + c in one rounding, a fused multiply-add, where the target has one: the\n"
                     " * inner loops of convolutions and sparse products (in ISO C mode, -std=c11, GCC does not\n"
                     " * contract a * b + c). */\n"
                     "#if defined(__FMA__) || defined(__ARM_FEATURE_FMA)\n#define NNR_MADD(a, b, c) %s(a, b, c)\n"
                     "#else\n#define NNR_MADD(a, b, c) ((a) * (b) + (c))\n#endif\n", emit_fn(e, "fma"));
    if (has_sparse_path(g))
        fprintf(out, "\n/* A convolution's gradient takes its sparse path for an example whose dY has at most\n"
                     " * this fraction of nonzeros (-DNNR_CONV_SPARSE_BELOW=0: never; =1: always). */\n"
                     "#ifndef NNR_CONV_SPARSE_BELOW\n#define NNR_CONV_SPARSE_BELOW 0.3\n#endif\n");
    if (has_sparse_product(g))
        fprintf(out, "\n/* A product of the backward pass whose left operand is mostly zero (relu's gradient,\n"
                     " * dropout) takes its sparse path when at most this fraction of that operand is\n"
                     " * nonzero, 3/4 of it for a product of 2^27 multiply-adds or more\n"
                     " * (-DNNR_GEMM_SPARSE_BELOW=0: never; =1: always). */\n"
                     "#ifndef NNR_GEMM_SPARSE_BELOW\n#define NNR_GEMM_SPARSE_BELOW 0.4\n#endif\n");
}

int emit_c(ir_graph *g, FILE *out, const emit_opts *o) {
    emitter e;
    emit_setup(&e, g, out, o);
    if (o->embedded && !o->which) return emit_embedded_c(&e, out);
    if (o->which) {
        if (!strcmp(o->which, "forward")) emit_pass(&e, out, FN_FORWARD);
        else if (!strcmp(o->which, "backward")) emit_pass(&e, out, FN_BACKWARD);
        else if (!strcmp(o->which, "update")) emit_update(&e, out);
        else if (!strcmp(o->which, "infer")) emit_pass(&e, out, FN_INFER);
        else return -1;
        return ferror(out) ? -1 : 0;
    }
    emit_model_comment(&e, out, arena_printf(g->a, "%s.c", e.P));
    fprintf(out, "#include <math.h>\n#include <stdint.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n");
    fprintf(out, "#include <cblas.h>\n#include \"%s\"\n", o->header_name);
    if (!g->f64)
        fprintf(out, "\n/* glibc's vector math (libmvec, which -lm brings in): these declarations let GCC\n"
                     " * vectorize the loops that call them, 8 or 16 values at a time (within 4 ulp).\n"
                     " * -DNNR_NO_LIBMVEC keeps the scalar functions. */\n"
                     "#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__) && \\\n"
                     "    !defined(NNR_NO_LIBMVEC)\n"
                     "#if __GLIBC_PREREQ(2, 35)\n"
                     "#define NNR_VECTOR_MATH __attribute__((simd(\"notinbranch\")))\n"
                     "float expf(float) NNR_VECTOR_MATH;\nfloat logf(float) NNR_VECTOR_MATH;\n"
                     "float expm1f(float) NNR_VECTOR_MATH;\nfloat log1pf(float) NNR_VECTOR_MATH;\n"
                     "float tanhf(float) NNR_VECTOR_MATH;\nfloat sinf(float) NNR_VECTOR_MATH;\n"
                     "float cosf(float) NNR_VECTOR_MATH;\nfloat tanf(float) NNR_VECTOR_MATH;\n"
                     "float erff(float) NNR_VECTOR_MATH;\n"
                     "#endif\n#endif\n");
    if (emit_has_products(g) || g->train_size >= EMIT_UPDATE_PARALLEL_MIN)
        fprintf(out, "\n/* Threads: nnr_%cgemm takes cblas_%cgemm's arguments and cuts a large product into\n"
                     " * blocks of rows or columns of its result, chosen from its shape alone, each one\n"
                     " * single-threaded cblas call, shared among nnc's threads (runtime/gemm.c); an\n"
                     " * `omp parallel for` loop gives each thread whole elements or rows.  So every number\n"
                     " * is computed the same way, and a run gives the same bits, at any thread count\n"
                     " * (OPENBLAS_NUM_THREADS; compiled without -fopenmp, the loops run on one). */\n",
                e.f[0] ? 's' : 'd', e.f[0] ? 's' : 'd');
    emit_kernel_macros(&e, out);
    emit_struct(&e, out);
    emit_summary_string(&e, out);
    fprintf(out, "\nstatic const nnr_model_info %s_model;\n", e.P);
    if (emit_has_dropout(g)) emit_uniform(&e, out);
    emit_check_function(&e, out);
    emit_pass(&e, out, FN_FORWARD);
    emit_pass(&e, out, FN_BACKWARD);
    emit_update(&e, out);
    emit_pass(&e, out, FN_INFER);
    if (emit_has_modes(g)) emit_pass(&e, out, FN_EVAL);
    emit_api(&e, out);
    emit_info(&e, out);
    if (o->with_main && o->mpi)
        fprintf(out, "\n/* the trainer program, one rank of a data-parallel run: mpirun -np N ./m train ... */\n"
                     "int main(int argc, char **argv) { return nnr_mpi_main(&%s_model, argc, argv); }\n", e.P);
    else if (o->with_main)
        fprintf(out, "\n/* the trainer program: m train | eval | predict | init | grads | gradcheck | summary */\n"
                     "int main(int argc, char **argv) { return nnr_main(&%s_model, argc, argv); }\n", e.P);
    return ferror(out) ? -1 : 0;
}
