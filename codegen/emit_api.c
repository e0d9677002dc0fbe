/* emit_api.c — the whole generated file and its header: the model's struct, the
 * summary string, the pass functions in order, the public API of SPEC §3 (NAME_new,
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
    fprintf(o, "    int64_t step;      /* optimizer steps taken */\n");
    fprintf(o, "    uint64_t seed;     /* of the initialization, and of dropout's masks */\n");
    fprintf(o, "    %s lr;          /* learning rate of the current epoch */\n", e->T);
    fprintf(o, "    double loss;       /* mean loss of the last forward pass */\n");
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
                                          "NNR_INIT_ORTHOGONAL"};

static void emit_shape_init(FILE *o, const ir_shape *s) {
    fprintf(o, "%d, {", s->rank);
    for (int d = 0; d < s->rank; d++) fprintf(o, "%s%lld", d ? ", " : "", (long long)s->dim[d]);
    fprintf(o, "%s}", s->rank ? "" : "0");   /* a scalar: {0}, since ISO C has no empty braces */
}

/* The argument list of the typed step functions: one pointer per input, label, target. */
static const char *io_params(emitter *e, int only_inputs) {
    ir_graph *g = e->g;
    char *s = "";
    for (int i = 0; i < g->io.n; i++) {
        ir_node *x = g->io.v[i];
        if (only_inputs && x->role != ROLE_INPUT) continue;
        s = arena_printf(e->a, "%s, const %s *%s", s, x->dtype == DT_CLASS ? "int32_t" : e->T, x->cname);
    }
    return s;
}

static const char *out_params(emitter *e) {
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

static void emit_api(emitter *e, FILE *o) {
    ir_graph *g = e->g;
    const char *P = e->P, *T = e->T;
    fprintf(o, "\n/* ---- the API of %s.h ---- */\n\n", P);
    fprintf(o, "static void *%s_block(int64_t elements) {\n", P);
    fprintf(o, "    size_t bytes = ((size_t)elements * sizeof(%s) + 63) / 64 * 64;   /* 64-byte aligned */\n", T);
    fprintf(o, "    void *p = nnr_aligned_alloc(64, bytes ? bytes : 64);\n");
    fprintf(o, "    if (p) memset(p, 0, bytes ? bytes : 64);\n    return p;\n}\n\n");
    fprintf(o, "%s *%s_new(void) {\n    %s *m = calloc(1, sizeof *m);\n    if (!m) return NULL;\n", P, P, P);
    fprintf(o, "    m->params = %s_block(%lld);\n", P, (long long)g->param_size);
    fprintf(o, "    m->grads = %s_block(%lld);\n", P, (long long)g->param_size);
    fprintf(o, "    m->state = %s_block(%lld);\n", P, (long long)plan_state_size(g));
    fprintf(o, "    m->acts = %s_block(%lld);\n", P, (long long)g->act_size);
    fprintf(o, "    m->lr = %s;\n", emit_lit(e, g->train.lr));
    fprintf(o, "    if (!m->params || !m->grads || !m->state || !m->acts) {\n        %s_free(m);\n        return NULL;\n    }\n", P);
    fprintf(o, "    return m;\n}\n\n");
    fprintf(o, "void %s_free(%s *m) {\n    if (!m) return;\n    free(m->params);\n    free(m->grads);\n"
               "    free(m->state);\n    free(m->acts);\n    free(m);\n}\n\n", P, P);
    fprintf(o, "void %s_init(%s *m, uint64_t seed) { nnr_model_init(&%s_model, m, seed); }\n", P, P, P);
    fprintf(o, "static void %s_set_seed_(void *m, uint64_t seed) { ((%s *)m)->seed = seed; }\n", P, P);
    fprintf(o, "int %s_load(%s *m, const char *path) { return nnr_model_load(&%s_model, m, path); }\n", P, P, P);
    fprintf(o, "int %s_save(const %s *m, const char *path) { return nnr_model_save(&%s_model, (void *)m, path); }\n\n",
            P, P, P);
    /* loss_grad */
    fprintf(o, "%s %s_loss_grad(%s *m, int n%s) {\n", T, P, P, io_params(e, 0));
    fprintf(o, "    if (n <= 0 || n > %s_BATCH) return NAN;\n", e->PU);
    for (int i = 0; i < g->io.n; i++) {
        ir_node *x = g->io.v[i];
        fprintf(o, "    m->%s = %s;\n", x->cname, x->cname);
    }
    fprintf(o, "    %s_forward(m, n);\n    %s_backward(m, n);\n    return m->check == 2 ? NAN : (%s)m->loss;\n}\n\n", P, P, T);
    fprintf(o, "%s %s_train_step(%s *m, int n%s) {\n", T, P, P, io_params(e, 0));
    fprintf(o, "    %s loss = %s_loss_grad(m, n", T, P);
    for (int i = 0; i < g->io.n; i++) fprintf(o, ", %s", ((ir_node *)g->io.v[i])->cname);
    fprintf(o, ");\n    if (loss == loss) %s_update(m);   /* not after a refused call (NaN) */\n    return loss;\n}\n\n", P);
    /* predict: any n, in chunks of BATCH */
    fprintf(o, "void %s_predict(%s *m, int n%s%s) {\n", P, P, io_params(e, 1), out_params(e));
    fprintf(o, "    for (int at = 0; at < n; at += %s_BATCH) {\n", e->PU);
    fprintf(o, "        int chunk = n - at < %s_BATCH ? n - at : %s_BATCH;\n", e->PU, e->PU);
    for (int i = 0; i < g->io.n; i++) {
        ir_node *x = g->io.v[i];
        if (x->role == ROLE_INPUT)
            fprintf(o, "        m->%s = %s + (size_t)at * %lld;\n", x->cname, x->cname, (long long)io_size(x));
    }
    fprintf(o, "        %s_infer(m, chunk);\n", P);
    for (int i = 0; i < g->outputs.n; i++) {
        ir_output *out = g->outputs.v[i];
        long long sz = (long long)ir_numel(&out->node->shape);
        fprintf(o, "        memcpy(%s + (size_t)at * %lld, m->acts + %lld, (size_t)chunk * %lld * sizeof(%s));\n",
                out->node->cname, sz, (long long)out->node->offset, sz, T);
    }
    fprintf(o, "    }\n}\n\n");
    /* accessors */
    fprintf(o, "%s *%s_params(%s *m) { return m->params; }\n", T, P, P);
    fprintf(o, "%s *%s_grads(%s *m) { return m->grads; }\n", T, P, P);
    for (int i = 0; i < g->io.n; i++) {
        ir_node *x = g->io.v[i];
        if (!x->wants_grad) continue;
        fprintf(o, "const %s *%s_grad_%s(const %s *m) { return m->acts + %lld; }\n", T, P, x->cname, P,
                x->grad ? (long long)x->grad->offset : 0LL);
    }
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
    fprintf(o, "static const nnr_io %s_io_table[] = {\n", P);
    int acc_label = -1, acc_out = -1;
    for (int i = 0; i < g->io.n; i++) {
        ir_node *x = g->io.v[i];
        int kind = x->role == ROLE_LABEL ? 1 : x->role == ROLE_TARGET ? 2 : 0;
        fprintf(o, "    {%s, %s, ", emit_cstring(e, x->name), kinds[kind]);
        emit_shape_init(o, &x->shape);
        fprintf(o, ", %lld, %d, %d},\n", (long long)io_size(x), x->classes, x->wants_grad);
    }
    fprintf(o, "};\n\n");
    fprintf(o, "static const nnr_io %s_out_table[] = {\n", P);
    for (int i = 0; i < g->outputs.n; i++) {
        ir_output *out = g->outputs.v[i];
        fprintf(o, "    {%s, NNR_IO_OUTPUT, ", emit_cstring(e, out->name));
        emit_shape_init(o, &out->node->shape);
        fprintf(o, ", %lld, 0, 0},\n", (long long)ir_numel(&out->node->shape));
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
        fprintf(o, "    if (n <= 0 || n > %s_BATCH) return NAN;\n    %s_bind_(m, in);\n", e->PU, P);
        fprintf(o, "    if (training) %s_forward(m, n);\n    else %s_forward_eval(m, n);\n    return m->loss;\n}\n", P, P);
    } else {
        fprintf(o, "    %s *m = mv;\n    (void)training;   /* no op of this model behaves differently in training */\n", P);
        fprintf(o, "    if (n <= 0 || n > %s_BATCH) return NAN;\n    %s_bind_(m, in);\n    %s_forward(m, n);\n    return m->loss;\n}\n",
                e->PU, P, P);
    }
    fprintf(o, "static double %s_loss_grad_(void *mv, int n, const void *const *in) {\n", P);
    fprintf(o, "    %s *m = mv;\n    if (n <= 0 || n > %s_BATCH) return NAN;\n    %s_bind_(m, in);\n", P, e->PU, P);
    fprintf(o, "    %s_forward(m, n);\n    %s_backward(m, n);\n    return m->check == 2 ? NAN : m->loss;\n}\n", P, P);
    fprintf(o, "static double %s_train_step_(void *m, int n, const void *const *in) {\n", P);
    fprintf(o, "    double loss = %s_loss_grad_(m, n, in);\n    if (loss == loss) %s_update(m);\n    return loss;\n}\n", P, P);
    fprintf(o, "static void %s_predict_(void *mv, int n, const void *const *in, void *const *out) {\n", P);
    fprintf(o, "    %s *m = mv;\n", P);
    if (g->outputs.n == 0) fprintf(o, "    (void)m; (void)n; (void)in; (void)out;\n");
    else {
        fprintf(o, "    %s_predict(m, n", P);
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
            t->rho, t->sched, t->sched_a, t->sched_b, t->sched_c, t->weight_decay, t->clip_norm);
    if (t->clip_value) fprintf(o, ", .clip_value = %.17g", t->clip_value);   /* only when set: */
    fprintf(o, "},\n");                    /* other models' generated C stays as it was */
    fprintf(o, "    .summary = %s_summary_text,\n", P);
    fprintf(o, "    .schema_hash = 0x%016llxull,\n", (unsigned long long)schema_hash(g));
    fprintf(o, "    .create = %s_create_, .destroy = %s_destroy_, .params = %s_params_, .grads = %s_grads_,\n", P, P, P, P);
    fprintf(o, "    .state = %s_state_, .step = %s_step_, .input_grad = %s_input_grad_,\n", P, P, P);
    fprintf(o, "    .loss = %s_loss_, .loss_grad = %s_loss_grad_, .train_step = %s_train_step_,\n", P, P, P);
    fprintf(o, "    .predict = %s_predict_, .set_lr = %s_set_lr_, .set_seed = %s_set_seed_,\n", P, P, P);
    fprintf(o, "    .set_check = %s_set_check_, .numerics = %s_numerics_,\n};\n\n", P, P);
    fprintf(o, "const nnr_model_info *%s_info(void) { return &%s_model; }\n", P, P);
}

static void emit_summary_string(emitter *e, FILE *o) {
    const char *text = summary_text(e->g);
    fprintf(o, "\nstatic const char %s_summary_text[] =\n", e->P);
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p + 1) : strlen(p);
        fprintf(o, "    %s\n", emit_cstring(e, arena_strndup(e->a, p, len)));
        p += len;
    }
    fprintf(o, "    \"\";\n");
}

static int has_dropout(const ir_graph *g) {
    for (int i = 0; i < g->fwd_count; i++)
        if (ir_at(g, i)->op == OP_DROPOUT_MASK) return 1;
    return 0;
}

static void emit_uniform(emitter *e, FILE *o) {
    fprintf(o, "\n/* Dropout's random numbers: a hash of (seed, step, tensor, element), so a step's mask is\n"
               " * the same however often its loss is evaluated (gradcheck) and runs are reproducible. */\n");
    fprintf(o, "static inline double %s_uniform(uint64_t seed, int64_t step, int tensor, int64_t i) {\n", e->P);
    fprintf(o, "    uint64_t z = seed + 0x9E3779B97F4A7C15ull * (uint64_t)(step + 1) + 0xD1B54A32D192ED03ull * (uint64_t)tensor\n"
               "                 + 0xBF58476D1CE4E5B9ull * (uint64_t)i;\n");
    fprintf(o, "    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;\n    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;\n");
    fprintf(o, "    z ^= z >> 31;\n    return (double)(z >> 11) * 0x1.0p-53;\n}\n");
}

static void emit_model_comment(emitter *e, FILE *o, const char *what) {
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

int emit_h(ir_graph *g, FILE *out, const emit_opts *o) {
    emitter e;
    emit_setup(&e, g, out, o);
    const char *P = e.P, *T = e.T;
    emit_model_comment(&e, out, arena_printf(g->a, "%s.h", P));
    fprintf(out, "#ifndef %s_NNC_H\n#define %s_NNC_H\n\n#include <stdint.h>\n#include \"nnr.h\"\n\n", e.PU, e.PU);
    fprintf(out, "#ifdef __cplusplus\nextern \"C\" {   /* the .c file is C: compile it as C and link it from C++ */\n#endif\n\n");
    fprintf(out, "#define %s_BATCH %d   /* compiled batch size: n <= BATCH at run time */\n", e.PU, g->train.batch);
    fprintf(out, "#define %s_PARAMS %lld   /* elements of the parameter block */\n\n", e.PU, (long long)g->param_size);
    fprintf(out, "typedef struct %s %s;   /* parameters, gradients, optimizer state, activations */\n\n", P, P);
    fprintf(out, "%s *%s_new(void);                 /* zeroed; NULL when out of memory */\n", P, P);
    fprintf(out, "void %s_free(%s *m);\n", P, P);
    fprintf(out, "void %s_init(%s *m, uint64_t seed);   /* the initializers of the model */\n", P, P);
    fprintf(out, "int  %s_load(%s *m, const char *path);        /* safetensors; 0 or -1 (nnr_error()) */\n", P, P);
    fprintf(out, "int  %s_save(const %s *m, const char *path);  /* atomic */\n", P, P);
    fprintf(out, "/* forward + backward on n <= BATCH examples; the mean loss (NaN when n is out of range) */\n");
    fprintf(out, "%s %s_loss_grad(%s *m, int n%s);\n", T, P, P, io_params(&e, 0));
    fprintf(out, "/* the same, then one optimizer step */\n");
    fprintf(out, "%s %s_train_step(%s *m, int n%s);\n", T, P, P, io_params(&e, 0));
    fprintf(out, "/* inference on any n (in chunks of BATCH): one buffer per output */\n");
    fprintf(out, "void %s_predict(%s *m, int n%s%s);\n", P, P, io_params(&e, 1), out_params(&e));
    fprintf(out, "%s *%s_params(%s *m);   /* the parameter block: %s_PARAMS elements */\n", T, P, P, e.PU);
    fprintf(out, "%s *%s_grads(%s *m);    /* d mean(loss) / d params, same layout */\n", T, P, P);
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
        if (ir_at(g, i)->scratch) return 1;
    return 0;
}

static int has_sparse_path(const ir_graph *g) {
    for (int i = 0; i < g->nodes.n; i++)
        if (ir_at(g, i)->scratch && !ir_at(g, i)->direct && !ir_at(g, i)->sparse_a) return 1;
    return 0;
}

static int has_products(const ir_graph *g) {   /* what calls nnr_sgemm (a direct convolution does not) */
    for (int i = 0; i < g->nodes.n; i++) {
        const ir_node *x = ir_at(g, i);
        int fam = ir_ops[x->op].fam;
        if ((fam == FAM_MATMUL || fam == FAM_DENSE) && !x->direct) return 1;
    }
    return 0;
}

static int has_sparse_product(const ir_graph *g) {
    for (int i = 0; i < g->nodes.n; i++)
        if (ir_at(g, i)->sparse_a) return 1;
    return 0;
}

int emit_c(ir_graph *g, FILE *out, const emit_opts *o) {
    emitter e;
    emit_setup(&e, g, out, o);
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
                     "#endif\n#endif\n");
    if (has_products(g) || g->train_size >= EMIT_UPDATE_PARALLEL_MIN)
        fprintf(out, "\n/* Threads: nnr_%cgemm takes cblas_%cgemm's arguments and cuts a large product into\n"
                     " * blocks of rows or columns of its result, chosen from its shape alone, each one\n"
                     " * single-threaded cblas call, shared among nnc's threads (runtime/gemm.c); an\n"
                     " * `omp parallel for` loop gives each thread whole elements or rows.  So every number\n"
                     " * is computed the same way, and a run gives the same bits, at any thread count\n"
                     " * (OPENBLAS_NUM_THREADS; compiled without -fopenmp, the loops run on one). */\n",
                e.f[0] ? 's' : 'd', e.f[0] ? 's' : 'd');
    if (has_madd_code(g))
        fprintf(out, "\n/* a * b + c in one rounding, a fused multiply-add, where the target has one: the\n"
                     " * inner loops of convolutions and sparse products (in ISO C mode, -std=c11, GCC does not\n"
                     " * contract a * b + c). */\n"
                     "#if defined(__FMA__) || defined(__ARM_FEATURE_FMA)\n#define NNR_MADD(a, b, c) %s(a, b, c)\n"
                     "#else\n#define NNR_MADD(a, b, c) ((a) * (b) + (c))\n#endif\n", emit_fn(&e, "fma"));
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
    emit_struct(&e, out);
    emit_summary_string(&e, out);
    fprintf(out, "\nstatic const nnr_model_info %s_model;\n", e.P);
    if (has_dropout(g)) emit_uniform(&e, out);
    emit_check_function(&e, out);
    emit_pass(&e, out, FN_FORWARD);
    emit_pass(&e, out, FN_BACKWARD);
    emit_update(&e, out);
    emit_pass(&e, out, FN_INFER);
    if (emit_has_modes(g)) emit_pass(&e, out, FN_EVAL);
    emit_api(&e, out);
    emit_info(&e, out);
    if (o->with_main)
        fprintf(out, "\n/* the trainer program: m train | eval | predict | init | grads | gradcheck | summary */\n"
                     "int main(int argc, char **argv) { return nnr_main(&%s_model, argc, argv); }\n", e.P);
    return ferror(out) ? -1 : 0;
}
