/* emit_embedded.c — the file and header of `--target embedded`: the same passes as the
 * host's (emit.c and the kernel files write them, told by emitter.embedded to use one
 * thread, no BLAS and no shards), in a file that needs nothing but a C99 compiler and
 * libm: every block a static array sized by the memory plan, products as loops
 * (NAME_gemm), the initializers and their generator written out (runtime/init.c's, so a
 * seed gives the host's weights), errors as constant strings, no stdio and no file
 * system.  `--weights` bakes a checkpoint into `static const` arrays (flash) that NAME_new
 * copies into RAM, or, with `--infer-only`, that the inference pass reads in place; then
 * the RAM is the activations alone (docs/embedded.md). */
#include "emit.h"
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The bytes each part takes, as the header states them. */
typedef struct ram {
    int64_t params, grads, state, acts, stage, total;   /* RAM */
    int64_t flash;                                      /* baked weights and standardization */
} ram;

static int64_t features_of(const ir_graph *g) {
    int64_t f = 0;
    for (int i = 0; i < g->io.n; i++) {
        const ir_node *x = g->io.v[i];
        if (x->role == ROLE_INPUT && x->dtype != DT_CLASS) f += ir_numel(&x->shape);
    }
    return f;
}

static int baked_params_in_flash(const emitter *e) { return e->o->weights && e->g->infer_only; }

int emit_param_in_flash(const emitter *e, const ir_node *p) {
    return e->embedded && e->o->weights && (e->g->infer_only || p->param.buffer == 2);
}

/* The elements of the parameter block that live in RAM: every parameter but those that stay
 * in flash.  Frozen parameters lie after the trainable ones (plan.c), so fine-tuning the
 * last layer of a baked model keeps that layer and the buffers in RAM, the rest in flash. */
static int64_t ram_param_elements(const emitter *e) {
    const ir_graph *g = e->g;
    if (!e->o->weights) return g->param_size;
    if (g->infer_only) return 0;
    return plan_unfrozen_end(g);
}
static int64_t nstd(const emitter *e) { return e->o->weights ? e->o->weights->nstd : 0; }

static ram ram_of(const emitter *e) {
    const ir_graph *g = e->g;
    int64_t es = g->f64 ? 8 : 4;
    ram r = {0};
    r.params = ram_param_elements(e) * es;
    if (!g->infer_only) {
        r.grads = g->train_size * es;
        r.state = plan_state_size(g) * es;
    }
    r.acts = g->act_size * es;
    r.stage = nstd(e) ? (int64_t)g->train.batch * nstd(e) * es : 0;
    r.total = r.params + r.grads + r.state + r.acts + r.stage;
    r.flash = (e->o->weights ? g->param_size * es : 0) + nstd(e) * 16;
    return r;
}

/* ---- products ------------------------------------------------------------------ */

static void emit_gemm_loops(emitter *e, FILE *o) {
    const char *P = e->P, *T = e->T;
    fprintf(o, "\n/* The products: cblas_%cgemm's row-major arguments and meaning, C = alpha op(A) op(B) +\n"
               " * beta C, as loops (this target has no BLAS).  With B as stored, four rows of C at a\n"
               " * time take each row of B once, along which the inner loop runs and the compiler\n"
               " * vectorizes; with B transposed, each element of C is a dot product along rows of A and\n"
               " * B.  Each element sums its K products in order, however its rows are grouped. */\n",
            e->f[0] ? 's' : 'd');
    fprintf(o, "enum { CblasRowMajor = 101 };   /* cblas.h's values, for the calls to read alike */\n"
               "enum { CblasNoTrans = 111, CblasTrans = 112 };\n\n");
    fprintf(o, "/* op(A)[i][k] */\n#define %s_A_AT(i, k) (ta == CblasNoTrans ? A[(int64_t)(i) * lda + (k)] : A[(int64_t)(k) * lda + (i)])\n\n",
            e->PU);
    fprintf(o, "static void %s_gemm(int layout, int ta, int tb, int M, int N, int K, %s alpha, const %s *restrict A,\n"
               "                    int lda, const %s *restrict B, int ldb, %s beta, %s *restrict C, int ldc) {\n",
            P, T, T, T, T, T);
    fprintf(o, "    (void)layout;   /* always CblasRowMajor */\n");
    fprintf(o, "    for (int i = 0; i < M; i++) {\n");
    fprintf(o, "        %s *restrict c = C + (int64_t)i * ldc;\n", T);
    fprintf(o, "        if (beta == 0)\n            for (int j = 0; j < N; j++) c[j] = 0;\n");
    fprintf(o, "        else if (beta != 1)\n            for (int j = 0; j < N; j++) c[j] *= beta;\n    }\n");
    fprintf(o, "    if (tb == CblasNoTrans) {\n");
    fprintf(o, "        int i = 0;\n");
    fprintf(o, "        for (; i + 4 <= M; i += 4) {   /* four rows of C */\n");
    fprintf(o, "            %s *restrict c0 = C + (int64_t)i * ldc, *restrict c1 = c0 + ldc;\n", T);
    fprintf(o, "            %s *restrict c2 = c1 + ldc, *restrict c3 = c2 + ldc;\n", T);
    fprintf(o, "            for (int k = 0; k < K; k++) {\n");
    fprintf(o, "                const %s a0 = alpha * %s_A_AT(i, k), a1 = alpha * %s_A_AT(i + 1, k);\n", T, e->PU, e->PU);
    fprintf(o, "                const %s a2 = alpha * %s_A_AT(i + 2, k), a3 = alpha * %s_A_AT(i + 3, k);\n", T, e->PU, e->PU);
    fprintf(o, "                const %s *restrict b = B + (int64_t)k * ldb;\n", T);
    fprintf(o, "                for (int j = 0; j < N; j++) {\n");
    fprintf(o, "                    const %s bj = b[j];\n", T);
    fprintf(o, "                    c0[j] += a0 * bj;\n                    c1[j] += a1 * bj;\n");
    fprintf(o, "                    c2[j] += a2 * bj;\n                    c3[j] += a3 * bj;\n");
    fprintf(o, "                }\n            }\n        }\n");
    fprintf(o, "        for (; i < M; i++) {   /* the last rows, one at a time */\n");
    fprintf(o, "            %s *restrict c = C + (int64_t)i * ldc;\n", T);
    fprintf(o, "            for (int k = 0; k < K; k++) {\n");
    fprintf(o, "                const %s a = alpha * %s_A_AT(i, k);\n", T, e->PU);
    fprintf(o, "                const %s *restrict b = B + (int64_t)k * ldb;\n", T);
    fprintf(o, "                for (int j = 0; j < N; j++) c[j] += a * b[j];\n");
    fprintf(o, "            }\n        }\n        return;\n    }\n");
    fprintf(o, "    for (int i = 0; i < M; i++)\n");
    fprintf(o, "        for (int j = 0; j < N; j++) {\n");
    fprintf(o, "            const %s *restrict b = B + (int64_t)j * ldb;\n", T);
    fprintf(o, "            %s sum = 0;\n", T);
    fprintf(o, "            if (ta == CblasNoTrans) {\n");
    fprintf(o, "                const %s *restrict a = A + (int64_t)i * lda;\n", T);
    fprintf(o, "                #pragma omp simd reduction(+:sum)\n");
    fprintf(o, "                for (int k = 0; k < K; k++) sum += a[k] * b[k];\n");
    fprintf(o, "            } else {\n");
    fprintf(o, "                for (int k = 0; k < K; k++) sum += A[(int64_t)k * lda + i] * b[k];\n");
    fprintf(o, "            }\n");
    fprintf(o, "            C[(int64_t)i * ldc + j] += alpha * sum;\n");
    fprintf(o, "        }\n}\n#undef %s_A_AT\n", e->PU);
}

/* ---- the struct and the static memory ------------------------------------------ */

static void emit_struct(emitter *e, FILE *o) {
    ir_graph *g = e->g;
    const char *T = e->T;
    fprintf(o, "\nstruct %s {\n", e->P);
    fprintf(o, "    %s%s *params;     /* %lld elements: the parameters, laid out as the header lists%s */\n",
            baked_params_in_flash(e) ? "const " : "", T, (long long)(baked_params_in_flash(e) ? g->param_size : ram_param_elements(e)),
            ram_param_elements(e) < g->param_size && !baked_params_in_flash(e) ? " (the frozen ones: in flash)" : "");
    if (!g->infer_only) {
        fprintf(o, "    %s *grads;      /* d mean(loss) / d params: the %lld trainable elements */\n", T,
                (long long)g->train_size);
        fprintf(o, "    %s *state;      /* optimizer state: %d x %lld elements */\n", T, plan_state_slots(g->train.opt),
                (long long)g->train_size);
    }
    fprintf(o, "    %s *acts;       /* %lld elements: activations%s for %d examples */\n", T, (long long)g->act_size,
            g->infer_only ? " of inference" : " and backward temporaries", g->train.batch);
    if (!g->infer_only) {
        fprintf(o, "    int grads_clear;   /* 1: the gradient block holds no gradient */\n");
        fprintf(o, "    int pending;       /* examples of the forward pass a backward may use; 0: none */\n");
    }
    fprintf(o, "    int in_use;        /* between NAME_new and NAME_free */\n");
    fprintf(o, "    int64_t step;      /* optimizer steps taken */\n");
    fprintf(o, "    uint64_t seed;     /* of the initialization, and of dropout's masks */\n");
    fprintf(o, "    %s lr;          /* learning rate */\n", T);
    fprintf(o, "    double loss;       /* mean loss of the last forward pass */\n");
    for (int i = 0; i < g->io.n; i++) {
        ir_node *x = g->io.v[i];
        fprintf(o, "    const %s *%s;   /* the caller's %s for this call */\n", x->dtype == DT_CLASS ? "int32_t" : T,
                x->cname, x->role == ROLE_LABEL ? "labels" : "inputs");
    }
    fprintf(o, "};\n");
}

/* "name[count]": an array of at least one element (ISO C has no empty arrays). */
static const char *array(emitter *e, const char *name, int64_t count) {
    return arena_printf(e->a, "%s[%lld]", name, (long long)(count > 0 ? count : 1));
}

/* A baked array's values, eight to a line: %.9g gives every float back exactly. */
static void emit_values(FILE *o, const double *v, int64_t n, int as_double) {
    for (int64_t i = 0; i < n; i++) {
        fprintf(o, "%s", i % 8 == 0 ? "\n    " : " ");
        char buf[40];
        snprintf(buf, sizeof buf, as_double ? "%.17g" : "%.9g", as_double ? v[i] : (double)(float)v[i]);
        fprintf(o, "%s%s%s,", buf, strpbrk(buf, ".e") ? "" : ".0", as_double ? "" : "f");
    }
    if (!n) fprintf(o, "\n    0");
    fprintf(o, "\n};\n");
}

static void emit_memory(emitter *e, FILE *o) {
    ir_graph *g = e->g;
    const char *P = e->P, *T = e->T;
    const emit_weights *w = e->o->weights;
    ram r = ram_of(e);
    fprintf(o, "\n/* ---- memory: every block a static array, sized by the memory plan (%lld bytes of RAM) ---- */\n",
            (long long)r.total);
    fprintf(o, "#if defined(__GNUC__)\n#define %s_ALIGNED __attribute__((aligned(16)))\n#else\n#define %s_ALIGNED\n#endif\n",
            e->PU, e->PU);
    if (w) {
        const char *src = emit_comment_text(e, w->path, strlen(w->path));
        fprintf(o, "\n/* the parameters of %s (%lld bytes, flash)%s */\n", src, (long long)(g->param_size * (g->f64 ? 8 : 4)),
                g->infer_only ? ": the inference pass reads them in place" : ": NAME_new copies them into RAM");
        fprintf(o, "static const %s %s_weights%s = {", T, P, g->param_size ? arena_printf(e->a, "[%lld]", (long long)g->param_size) : "[1]");
        emit_values(o, w->params, g->param_size, g->f64);
        if (w->nstd) {
            fprintf(o, "\n/* the input standardization of %s: predict computes (x - mean) / std per feature */\n", src);
            fprintf(o, "static const double %s_std_mean[%lld] = {", P, (long long)w->nstd);
            emit_values(o, w->mean, w->nstd, 1);
            fprintf(o, "static const double %s_std_std[%lld] = {", P, (long long)w->nstd);
            emit_values(o, w->std, w->nstd, 1);
            fprintf(o, "static %s %s %s_ALIGNED;   /* predict's standardized inputs, a batch */\n", T,
                    array(e, arena_printf(e->a, "%s_stage", P), (int64_t)g->train.batch * w->nstd), e->PU);
        }
    }
    fprintf(o, "\n");
    if (!baked_params_in_flash(e))
        fprintf(o, "static %s %s %s_ALIGNED;   /* %lld bytes%s */\n", T,
                array(e, arena_printf(e->a, "%s_param_block", P), ram_param_elements(e)), e->PU, (long long)r.params,
                ram_param_elements(e) < g->param_size ? ": the parameters that change; the frozen ones stay in flash" : "");
    if (!g->infer_only) {
        fprintf(o, "static %s %s %s_ALIGNED;   /* %lld bytes: the trainable parameters' */\n", T,
                array(e, arena_printf(e->a, "%s_grad_block", P), g->train_size), e->PU, (long long)r.grads);
        fprintf(o, "static %s %s %s_ALIGNED;   /* %lld bytes */\n", T,
                array(e, arena_printf(e->a, "%s_state_block", P), plan_state_size(g)), e->PU, (long long)r.state);
    }
    fprintf(o, "static %s %s %s_ALIGNED;   /* %lld bytes */\n", T, array(e, arena_printf(e->a, "%s_act_block", P), g->act_size),
            e->PU, (long long)r.acts);
    fprintf(o, "static %s %s_the_model;   /* the file's one model */\n", P, P);
    fprintf(o, "static const char *%s_last_error = \"\";\n", P);
}

/* ---- initial values ---------------------------------------------------------------- */

enum { K_ZEROS, K_ONES, K_CONST, K_UNIFORM, K_NORMAL, K_LECUN_U, K_GLOROT_U, K_GLOROT_N, K_HE_U, K_HE_N, K_ORTHO,
       K_TRIL, K_TRIU, K_EYE, K_CAUSAL, K_ARANGE };

/* Which fill function an initializer takes. */
enum { F_CONST = 1, F_UNIFORM = 2, F_NORMAL = 4, F_ORTHO = 8, F_STRUCT = 16, F_ARANGE = 32 };

static int fill_of(int kind) {
    switch (kind) {
    case K_ZEROS: case K_ONES: case K_CONST: return F_CONST;
    case K_UNIFORM: case K_LECUN_U: case K_GLOROT_U: case K_HE_U: return F_UNIFORM;
    case K_NORMAL: case K_GLOROT_N: case K_HE_N: return F_NORMAL;
    case K_ORTHO: return F_ORTHO | F_NORMAL;
    case K_ARANGE: return F_ARANGE;
    default: return F_STRUCT;
    }
}

static int is_const_tensor(const emitter *e, const ir_node *c) {
    return c->op == OP_CONST_TENSOR && !c->bad && (!e->g->infer_only || c->in_infer);
}

static int fills_used(const emitter *e, int params) {
    int used = 0;
    if (params)
        for (int i = 0; i < e->g->params.n; i++) used |= fill_of(((ir_node *)e->g->params.v[i])->param.init);
    for (int i = 0; i < e->g->fwd_count; i++)
        if (is_const_tensor(e, ir_at(e->g, i))) used |= fill_of(ir_at(e->g, i)->param.init);
    return used;
}

/* The generator: xoshiro256** seeded through splitmix64, Box-Muller normals, exactly as
 * runtime/rng.c draws them. */
static void emit_rng(emitter *e, FILE *o, int used) {
    const char *P = e->P, *T = e->T;
    fprintf(o, "\n/* ---- initial values: runtime/init.c's initializers and runtime/rng.c's generator\n"
               " * (xoshiro256** seeded by splitmix64), so that a seed gives the host's weights ---- */\n");
    fprintf(o, "typedef struct %s_rng { uint64_t s[4]; } %s_rng;\n\n", P, P);
    fprintf(o, "static void %s_rng_seed(%s_rng *r, uint64_t seed) {\n", P, P);
    fprintf(o, "    for (int i = 0; i < 4; i++) {   /* splitmix64 */\n");
    fprintf(o, "        uint64_t z = (seed += 0x9e3779b97f4a7c15ull);\n");
    fprintf(o, "        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;\n        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;\n");
    fprintf(o, "        r->s[i] = z ^ (z >> 31);\n    }\n}\n\n");
    if (!(used & (F_UNIFORM | F_NORMAL))) return;
    fprintf(o, "static double %s_rng_uniform(%s_rng *r) {   /* [0, 1), the top 53 bits */\n", P, P);
    fprintf(o, "    uint64_t *s = r->s, x = s[1] * 5;\n");
    fprintf(o, "    const uint64_t result = ((x << 7) | (x >> 57)) * 9, t = s[1] << 17;\n");
    fprintf(o, "    s[2] ^= s[0];\n    s[3] ^= s[1];\n    s[1] ^= s[2];\n    s[0] ^= s[3];\n    s[2] ^= t;\n");
    fprintf(o, "    s[3] = (s[3] << 45) | (s[3] >> 19);\n");
    fprintf(o, "    return (double)(result >> 11) * 0x1.0p-53;\n}\n\n");
    if (used & F_UNIFORM)
        fprintf(o, "static void %s_fill_uniform(%s *p, int64_t n, double lo, double hi, %s_rng *r) {\n"
                   "    for (int64_t i = 0; i < n; i++) p[i] = (%s)(lo + (hi - lo) * %s_rng_uniform(r));\n}\n\n",
                P, T, P, T, P);
    if (used & F_NORMAL) {
        fprintf(o, "static double %s_rng_normal(%s_rng *r) {   /* Box-Muller, one value a call */\n", P, P);
        fprintf(o, "    const double u1 = 1.0 - %s_rng_uniform(r), u2 = %s_rng_uniform(r);\n", P, P);
        fprintf(o, "    return %s(-2.0 * %s(u1)) * %s(6.2831853071795862 * u2);\n}\n\n", emit_dfn(e, "sqrt"),
                emit_dfn(e, "log"), emit_dfn(e, "cos"));
        fprintf(o, "static void %s_fill_normal(%s *p, int64_t n, double mean, double std, %s_rng *r) {\n"
                   "    for (int64_t i = 0; i < n; i++) p[i] = (%s)(mean + std * %s_rng_normal(r));\n}\n\n",
                P, T, P, T, P);
    }
}

static void emit_fills(emitter *e, FILE *o, int used) {
    const char *P = e->P, *T = e->T;
    if (used & F_CONST)
        fprintf(o, "static void %s_fill_const(%s *p, int64_t n, double v) {\n"
                   "    for (int64_t i = 0; i < n; i++) p[i] = (%s)v;\n}\n\n", P, T, T);
    if (used & F_ARANGE)
        fprintf(o, "static void %s_fill_arange(%s *p, int64_t n) {\n"
                   "    for (int64_t i = 0; i < n; i++) p[i] = (%s)i;\n}\n\n", P, T, T);
    if (used & F_STRUCT) {
        fprintf(o, "/* tril 0, triu 1, eye 2, causal_mask 3, over the last two axes [rows, cols] */\n");
        fprintf(o, "static void %s_fill_structured(%s *p, int64_t n, int64_t rows, int64_t cols, int kind) {\n", P, T);
        fprintf(o, "    for (int64_t x = 0; x < n; x++) {\n");
        fprintf(o, "        const int64_t i = x / cols %% rows, j = x %% cols;\n");
        fprintf(o, "        p[x] = kind == 0 ? (%s)(j <= i) : kind == 1 ? (%s)(j >= i) : kind == 2 ? (%s)(j == i)\n"
                   "             : j > i ? -(%s)INFINITY : 0;\n", T, T, T, T);
        fprintf(o, "    }\n}\n\n");
    }
    if (used & F_ORTHO) {
        fprintf(o, "/* torch.nn.init.orthogonal_: N(0, 1), then modified Gram-Schmidt run twice over the\n"
                   " * smaller side's k vectors of m elements (element r of vector j at j*vs + r*es). */\n");
        fprintf(o, "static double %s_dot(const %s *p, int64_t m, int64_t vs, int64_t es, int64_t a, int64_t b) {\n", P, T);
        fprintf(o, "    double s = 0;\n    for (int64_t r = 0; r < m; r++) s += (double)p[a * vs + r * es] * p[b * vs + r * es];\n"
                   "    return s;\n}\n\n");
        fprintf(o, "static void %s_fill_orthogonal(%s *p, int64_t rows, int64_t cols, %s_rng *rng) {\n", P, T, P);
        fprintf(o, "    %s_fill_normal(p, rows * cols, 0.0, 1.0, rng);\n", P);
        fprintf(o, "    const int64_t m = rows <= cols ? cols : rows, k = rows <= cols ? rows : cols;\n");
        fprintf(o, "    const int64_t vs = rows <= cols ? cols : 1, es = rows <= cols ? 1 : cols;\n");
        fprintf(o, "    for (int64_t j = 0; j < k; j++) {\n");
        fprintf(o, "        for (int pass = 0; pass < 2; pass++)\n");
        fprintf(o, "            for (int64_t i = 0; i < j; i++) {\n");
        fprintf(o, "                const double c = %s_dot(p, m, vs, es, i, j);\n", P);
        fprintf(o, "                for (int64_t r = 0; r < m; r++)\n");
        fprintf(o, "                    p[j * vs + r * es] = (%s)((double)p[j * vs + r * es] - c * p[i * vs + r * es]);\n", T);
        fprintf(o, "            }\n");
        fprintf(o, "        const double norm = %s(%s_dot(p, m, vs, es, j, j));\n", emit_dfn(e, "sqrt"), P);
        fprintf(o, "        if (norm > 0)\n            for (int64_t r = 0; r < m; r++) p[j * vs + r * es] = (%s)(p[j * vs + r * es] / norm);\n", T);
        fprintf(o, "    }\n}\n\n");
    }
}

/* The call filling tensor `at` (shape s) as its initializer says; the fans and bounds are
 * computed here as runtime/init.c computes them at run time. */
static void emit_fill_call(emitter *e, FILE *o, const char *at, const ir_shape *s, int kind, double a, double b) {
    const char *P = e->P;
    int64_t n = ir_numel(s);
    double fin, fout;
    if (s->rank < 2) fin = fout = (double)n;
    else {
        double field = 1;
        for (int d = 2; d < s->rank; d++) field *= (double)s->dim[d];
        fin = (double)s->dim[1] * field;
        fout = (double)s->dim[0] * field;
    }
    double lim;
    switch (kind) {
    case K_ZEROS: fprintf(o, "    %s_fill_const(%s, %lld, 0.0);\n", P, at, (long long)n); break;
    case K_ONES: fprintf(o, "    %s_fill_const(%s, %lld, 1.0);\n", P, at, (long long)n); break;
    case K_CONST: fprintf(o, "    %s_fill_const(%s, %lld, %.17g);\n", P, at, (long long)n, a); break;
    case K_UNIFORM: fprintf(o, "    %s_fill_uniform(%s, %lld, %.17g, %.17g, &rng);\n", P, at, (long long)n, a, b); break;
    case K_NORMAL: fprintf(o, "    %s_fill_normal(%s, %lld, %.17g, %.17g, &rng);\n", P, at, (long long)n, a, b); break;
    case K_LECUN_U: case K_GLOROT_U: case K_HE_U:
        lim = kind == K_LECUN_U ? 1.0 / sqrt(fin) : kind == K_GLOROT_U ? sqrt(6.0 / (fin + fout)) : sqrt(6.0 / fin);
        fprintf(o, "    %s_fill_uniform(%s, %lld, %.17g, %.17g, &rng);\n", P, at, (long long)n, -lim, lim);
        break;
    case K_GLOROT_N: case K_HE_N:
        fprintf(o, "    %s_fill_normal(%s, %lld, 0.0, %.17g, &rng);\n", P, at, (long long)n,
                kind == K_GLOROT_N ? sqrt(2.0 / (fin + fout)) : sqrt(2.0 / fin));
        break;
    case K_ORTHO:
        if (n) fprintf(o, "    %s_fill_orthogonal(%s, %lld, %lld, &rng);\n", P, at, (long long)(s->rank ? s->dim[0] : 1),
                       (long long)(n / (s->rank ? s->dim[0] : 1)));
        break;
    case K_ARANGE: fprintf(o, "    %s_fill_arange(%s, %lld);\n", P, at, (long long)n); break;
    default:
        if (s->rank < 2) fprintf(o, "    %s_fill_structured(%s, %lld, 1, 1, -1);\n", P, at, (long long)n);
        else fprintf(o, "    %s_fill_structured(%s, %lld, %lld, %lld, %d);\n", P, at, (long long)n,
                     (long long)s->dim[s->rank - 2], (long long)s->dim[s->rank - 1], kind - K_TRIL);
    }
}

static void emit_consts(emitter *e, FILE *o) {
    ir_graph *g = e->g;
    fprintf(o, "static void %s_consts(%s *m) {   /* const tensors: never trained or saved */\n"
               "    %s_rng rng;\n    %s_rng_seed(&rng, %lluu);   /* the train block's seed */\n",
            e->P, e->P, e->P, e->P, (unsigned long long)g->train.seed);
    int draws = 0;
    for (int i = 0; i < g->fwd_count; i++) {
        ir_node *c = ir_at(g, i);
        if (!is_const_tensor(e, c)) continue;
        draws |= fill_of(c->param.init) & (F_UNIFORM | F_NORMAL);
        fprintf(o, "    /* line %d: const %s: %s = %s */\n", c->stmt_line, emit_comment_text(e, c->name, strlen(c->name)),
                emit_shape_of(e, c), ir_init_names[c->param.init]);
        emit_fill_call(e, o, arena_printf(e->a, "m->acts + %lld", (long long)c->offset), &c->shape, c->param.init,
                       c->param.a, c->param.b);
    }
    if (!draws) fprintf(o, "    (void)rng;\n");
    fprintf(o, "}\n\n");
}

static void emit_init(emitter *e, FILE *o) {
    ir_graph *g = e->g;
    const char *P = e->P;
    fprintf(o, "void %s_init(%s *m, uint64_t seed) {\n    %s_rng rng;\n    %s_rng_seed(&rng, seed);\n", P, P, P, P);
    int draws = 0;
    for (int i = 0; i < g->params.n; i++) {
        ir_node *p = g->params.v[i];
        draws |= fill_of(p->param.init) & (F_UNIFORM | F_NORMAL);
        fprintf(o, "    /* %s %s: %s */\n", emit_comment_text(e, p->name, strlen(p->name)), emit_shape_of(e, p),
                ir_init_names[p->param.init]);
        emit_fill_call(e, o, arena_printf(e->a, "m->params + %lld", (long long)p->offset), &p->shape, p->param.init,
                       p->param.a, p->param.b);
    }
    if (!draws) fprintf(o, "    (void)rng;\n");
    if (!g->infer_only) {
        fprintf(o, "    memset(m->grads, 0, sizeof %s_grad_block);\n", P);
        fprintf(o, "    memset(m->state, 0, sizeof %s_state_block);\n", P);
        fprintf(o, "    m->grads_clear = 1;\n    m->pending = 0;\n");
    }
    fprintf(o, "    m->step = 0;\n    m->seed = seed;   /* dropout's masks follow it */\n}\n\n");
}

/* ---- the API ------------------------------------------------------------------------- */

static void emit_new_free(emitter *e, FILE *o) {
    ir_graph *g = e->g;
    const char *P = e->P;
    fprintf(o, "const char *%s_error(void) { return %s_last_error; }\n\n", P, P);
    fprintf(o, "%s *%s_new(void) {\n    %s *m = &%s_the_model;\n", P, P, P, P);
    fprintf(o, "    if (m->in_use) {\n        %s_last_error = \"%s_new: the model is in use: this file holds one, in static \"\n"
               "            \"memory; %s_free it first\";\n        return NULL;\n    }\n", P, P, P);
    fprintf(o, "    memset(m, 0, sizeof *m);\n    m->in_use = 1;\n");
    if (baked_params_in_flash(e)) fprintf(o, "    m->params = %s_weights;   /* read in place, from flash */\n", P);
    else {
        fprintf(o, "    m->params = %s_param_block;\n", P);
        if (e->o->weights) fprintf(o, "    memcpy(%s_param_block, %s_weights, sizeof %s_param_block);   /* --weights%s */\n", P, P, P,
                                   ram_param_elements(e) < g->param_size ? ": all but the frozen parameters" : "");
        else fprintf(o, "    memset(%s_param_block, 0, sizeof %s_param_block);   /* until %s_init */\n", P, P, P);
    }
    if (!g->infer_only) {
        fprintf(o, "    m->grads = %s_grad_block;\n    m->state = %s_state_block;\n", P, P);
        fprintf(o, "    memset(%s_grad_block, 0, sizeof %s_grad_block);\n", P, P);
        fprintf(o, "    memset(%s_state_block, 0, sizeof %s_state_block);\n", P, P);
        fprintf(o, "    m->grads_clear = 1;\n");
    }
    fprintf(o, "    m->acts = %s_act_block;\n    memset(%s_act_block, 0, sizeof %s_act_block);\n", P, P, P);
    fprintf(o, "    m->lr = %s;\n    m->seed = %lluu;\n", emit_lit(e, g->train.lr), (unsigned long long)g->train.seed);
    if (emit_has_consts(g)) fprintf(o, "    %s_consts(m);\n", P);
    fprintf(o, "    return m;\n}\n\n");
    fprintf(o, "void %s_free(%s *m) {\n    if (m) m->in_use = 0;\n}\n\n", P, P);
}

/* n out of 1..BATCH: refused with a message naming the function */
static void emit_bad_n(emitter *e, FILE *o) {
    fprintf(o, "static int %s_bad_n_(int n, const char *message) {\n    if (n > 0 && n <= %s_BATCH) return 0;\n"
               "    %s_last_error = message;\n    return 1;\n}\n\n", e->P, e->PU, e->P);
}

static const char *n_message(emitter *e, const char *fn) {
    return arena_printf(e->a, "\"%s_%s: n out of 1..%d, the compiled batch (%s_BATCH)\"", e->P, fn, e->g->train.batch, e->PU);
}

static void emit_step_api(emitter *e, FILE *o) {
    ir_graph *g = e->g;
    const char *P = e->P, *T = e->T;
    fprintf(o, "static void %s_run_forward_(%s *m, int n) {\n    m->pending = 0;\n    %s_forward_pass(m, n);\n"
               "    m->pending = n;\n}\n\n", P, P, P);
    fprintf(o, "/* The backward pass writes its gradients into the block, which must hold none: adding to\n"
               " * gradients already there needs a second block, which this target does not spare. */\n");
    fprintf(o, "static int %s_run_backward_(%s *m) {\n    int n = m->pending;\n", P, P);
    fprintf(o, "    if (!n) {\n        %s_last_error = \"%s_backward: no forward pass to differentiate (each %s_forward \"\n"
               "            \"allows one backward)\";\n        return -1;\n    }\n", P, P, P);
    fprintf(o, "    if (!m->grads_clear) {\n        %s_last_error = \"%s_backward: the gradient block holds gradients; the \"\n"
               "            \"embedded target does not add to them (no second block): %s_zero_grad first\";\n"
               "        return -1;\n    }\n", P, P, P);
    fprintf(o, "    m->pending = 0;\n    %s_backward_pass(m, n);\n    m->grads_clear = 0;\n    return 0;\n}\n\n", P);
    fprintf(o, "%s %s_forward(%s *m, int n%s) {\n", T, P, P, emit_io_params(e, 0));
    fprintf(o, "    if (%s_bad_n_(n, %s)) {\n        m->pending = 0;\n        return NAN;\n    }\n", P, n_message(e, "forward"));
    for (int i = 0; i < g->io.n; i++) fprintf(o, "    m->%s = %s;\n", ((ir_node *)g->io.v[i])->cname, ((ir_node *)g->io.v[i])->cname);
    fprintf(o, "    %s_run_forward_(m, n);\n    return (%s)m->loss;\n}\n\n", P, T);
    fprintf(o, "int %s_backward(%s *m) { return %s_run_backward_(m); }\n\n", P, P, P);
    fprintf(o, "void %s_zero_grad(%s *m) {\n    if (!m->grads_clear) memset(m->grads, 0, sizeof %s_grad_block);\n"
               "    m->grads_clear = 1;\n}\n\n", P, P, P);
    emit_step_calls(e, o);
    fprintf(o, "%s *%s_grads(%s *m) { return m->grads; }\n", T, P, P);
    for (int i = 0; i < g->io.n; i++) {
        ir_node *x = g->io.v[i];
        if (x->wants_grad)
            fprintf(o, "const %s *%s_grad_%s(const %s *m) { return m->acts + %lld; }\n", T, P, x->cname, P,
                    x->grad ? (long long)x->grad->offset : 0LL);
    }
}

static void emit_predict(emitter *e, FILE *o) {
    ir_graph *g = e->g;
    const char *P = e->P, *T = e->T;
    fprintf(o, "\nvoid %s_predict(%s *m, int n%s%s) {\n", P, P, emit_io_params(e, 1), emit_out_params(e));
    int64_t f0 = 0, features = nstd(e) ? features_of(g) : 0;
    for (int i = 0; i < g->io.n; i++) {
        ir_node *x = g->io.v[i];
        if (x->role == ROLE_INPUT && !x->in_infer) fprintf(o, "    (void)%s;   /* no output depends on it */\n", x->cname);
    }
    fprintf(o, "    for (int at = 0; at < n; at += %s_BATCH) {\n", e->PU);
    fprintf(o, "        const int chunk = n - at < %s_BATCH ? n - at : %s_BATCH;\n", e->PU, e->PU);
    for (int i = 0; i < g->io.n; i++) {
        ir_node *x = g->io.v[i];
        long long size = (long long)ir_numel(&x->shape);
        int feature = x->role == ROLE_INPUT && x->dtype != DT_CLASS;
        if (x->role == ROLE_INPUT && x->in_infer) {
            if (feature && features) {
                fprintf(o, "        {   /* %s standardized as the checkpoint says: (x - mean) / std */\n", x->cname);
                fprintf(o, "            %s *stage = %s_stage + %lld;\n", T, P, (long long)(g->train.batch * f0));
                fprintf(o, "            for (int64_t i = 0; i < (int64_t)chunk * %lld; i++)\n", size);
                fprintf(o, "                stage[i] = (%s)(((double)%s[(int64_t)at * %lld + i] - %s_std_mean[%lld + i %% %lld]) /\n"
                           "                                %s_std_std[%lld + i %% %lld]);\n",
                        T, x->cname, size, P, (long long)f0, size, P, (long long)f0, size);
                fprintf(o, "            m->%s = stage;\n        }\n", x->cname);
            } else {
                fprintf(o, "        m->%s = %s + (int64_t)at * %lld;\n", x->cname, x->cname, size);
            }
        }
        if (feature) f0 += size;
    }
    fprintf(o, "        %s_infer(m, chunk);\n", P);
    for (int i = 0; i < g->outputs.n; i++) {
        ir_output *out = g->outputs.v[i];
        long long sz = (long long)ir_numel(&out->node->shape);
        fprintf(o, "        memcpy(%s + (int64_t)at * %lld, m->acts + %lld, (size_t)chunk * %lld * sizeof(%s));\n",
                out->node->cname, sz, (long long)out->node->offset, sz, T);
    }
    fprintf(o, "    }\n}\n\n");
    fprintf(o, "%s%s *%s_params(%s *m) { return m->params; }\n", baked_params_in_flash(e) ? "const " : "", T, P, P);
}

/* Whether C text s calls function id: the identifier followed by '(', outside comments and
 * string literals (a comment quotes a derivative's formula: "d gelu_tanh(u)/du"). */
static int calls(const char *s, const char *id) {
    size_t n = strlen(id);
    for (const char *p = s; *p; p++) {
        if (p[0] == '/' && p[1] == '*') {
            const char *end = strstr(p + 2, "*/");
            if (!end) return 0;
            p = end + 1;
        } else if (*p == '"') {
            for (p++; *p && *p != '"'; p++)
                if (*p == '\\' && p[1]) p++;
            if (!*p) return 0;
        } else if (!strncmp(p, id, n) && (p == s || !(isalnum((unsigned char)p[-1]) || p[-1] == '_'))) {
            const char *q = p + n;
            while (*q == ' ') q++;
            if (*q == '(') return 1;
        }
    }
    return 0;
}

/* --math inline: the functions the file calls, found in its text (a kernel may ask for a
 * function's name and not call it: an unused static function is a warning), in float and
 * in double, above the code that calls them. */
static void emit_own_math(emitter *e, FILE *o, const char *text) {
    static const char *const names[] = {"exp", "log", "expm1", "log1p", "tanh", "sin", "cos", "tan",
                                        "erf", "pow", "sqrt", "fabs", "fmax", "fmin", "fma"};
    unsigned used[2] = {0, 0};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        for (int dbl = 0; dbl < 2; dbl++)
            if (calls(text, arena_printf(e->a, "%s_%s%s", e->P, names[i], dbl ? "" : "f")))
                used[dbl] |= (unsigned)emit_math_bit(names[i]);
    static const char *const what[] = {"float", "double"};
    for (int dbl = 0; dbl < 2; dbl++)
        if (used[dbl]) {
            fprintf(o, "\n/* ---- --math inline: the math functions, in %s (nnc's emit_math.c) ---- */\n", what[dbl]);
            emit_math(o, e->P, dbl, used[dbl]);
        }
}

int emit_embedded_c(emitter *e, FILE *out) {
    ir_graph *g = e->g;
    const char *P = e->P;
    emit_model_comment(e, out, arena_printf(g->a, "%s.c, for the embedded target", P));
    fprintf(out, "\n/* C99 with no BLAS, no OpenMP, no allocation, no stdio and no file system (nnc --target\n"
                 " * embedded).  Compile it with -fopenmp-simd, which honours the loops' simd pragmas\n"
                 " * and needs no OpenMP runtime, and link libm. */\n");
    fprintf(out, "#include <math.h>\n#include <stdint.h>\n#include <string.h>\n#include \"%s\"\n", e->o->header_name);
    /* the body first into memory: --math inline writes the functions it called above it */
    char *text = NULL;
    size_t len = 0;
    FILE *main_out = out;
    out = open_memstream(&text, &len);
    if (!out) return -1;
    emit_kernel_macros(e, out);
    emit_struct(e, out);
    emit_memory(e, out);
    if (emit_has_dropout(g) && !g->infer_only) emit_uniform(e, out);
    if (!g->infer_only) {
        emit_pass(e, out, FN_FORWARD);
        emit_pass(e, out, FN_BACKWARD);
        emit_update(e, out);
    }
    emit_pass(e, out, FN_INFER);
    int used = fills_used(e, !e->o->weights);
    if (!e->o->weights || emit_has_consts(g)) {   /* NAME_init, NAME_consts */
        emit_rng(e, out, used);
        emit_fills(e, out, used);
    }
    fprintf(out, "\n/* ---- the API of %s ---- */\n\n", e->o->header_name);
    if (emit_has_consts(g)) emit_consts(e, out);
    if (!e->o->weights) emit_init(e, out);
    emit_new_free(e, out);
    if (!g->infer_only) {
        emit_bad_n(e, out);
        emit_step_api(e, out);
    }
    emit_predict(e, out);
    int failed = ferror(out) != 0;
    fclose(out);
    if (e->o->own_math) emit_own_math(e, main_out, text);
    /* the products' loops, when a pass calls them (--infer-only's may not) */
    if (calls(text, arena_printf(g->a, "%s_gemm", P))) emit_gemm_loops(e, main_out);
    fwrite(text, 1, len, main_out);
    free(text);
    return failed || ferror(main_out) ? -1 : 0;
}

/* ---- the header ------------------------------------------------------------------------ */

int emit_embedded_h(emitter *e, FILE *out) {
    ir_graph *g = e->g;
    const char *P = e->P, *T = e->T, *PU = e->PU;
    ram r = ram_of(e);
    emit_model_comment(e, out, arena_printf(g->a, "%s.h, for the embedded target", P));
    fprintf(out, "#ifndef %s_NNC_H\n#define %s_NNC_H\n\n#include <stdint.h>\n\n", PU, PU);
    fprintf(out, "#ifdef __cplusplus\nextern \"C\" {   /* the .c file is C: compile it as C and link it from C++ */\n#endif\n\n");
    fprintf(out, "/* ---- using the model (docs/embedded.md) ------------------------------------------------\n"
                 " * The host target's API (docs/c-api.md) without files, threads or allocation: the one\n"
                 " * model of this file lives in static arrays; NAME_new hands it out (NULL while it is in\n"
                 " * use) and NAME_free takes it back.  A function returning int gives 0, or -1 after\n"
                 " * recording a message that NAME_error() returns; a loss of NaN means the call was\n"
                 " * refused.  backward writes the gradients into a block that holds none (after\n"
                 " * zero_grad, or as loss_grad and train_step do): adding to gradients there would\n"
                 " * need a second block.  Not thread-safe.\n */\n\n");
    fprintf(out, "/* Here NAME is %s and T is %s. */\n\n", P, T);
    emit_h_model(e, out);
    fprintf(out, "#define %s_BATCH %d   /* compiled batch size: n <= BATCH at run time */\n", PU, g->train.batch);
    fprintf(out, "#define %s_PARAMS %lld   /* elements of the parameter block */\n", PU, (long long)g->param_size);
    if (!g->infer_only)
        fprintf(out, "#define %s_TRAINABLE %lld   /* its trainable head: the gradient block's elements */\n", PU,
                (long long)g->train_size);
    fprintf(out, "\n/* Static memory, in bytes%s */\n", g->infer_only ? " (--infer-only: no gradients, no optimizer state)" : "");
    fprintf(out, "#define %s_RAM_PARAMS %lld%s\n", PU, (long long)r.params,
            baked_params_in_flash(e) ? "   /* the baked weights are read from flash */" : "");
    fprintf(out, "#define %s_RAM_GRADS %lld\n#define %s_RAM_STATE %lld\n", PU, (long long)r.grads, PU, (long long)r.state);
    fprintf(out, "#define %s_RAM_ACTS %lld   /* activations%s */\n", PU, (long long)r.acts,
            g->infer_only ? " of inference" : " and the backward pass's temporaries");
    if (r.stage) fprintf(out, "#define %s_RAM_STAGE %lld   /* predict's standardized inputs */\n", PU, (long long)r.stage);
    fprintf(out, "#define %s_RAM_BYTES %lld   /* the sum */\n", PU, (long long)r.total);
    fprintf(out, "#define %s_FLASH_WEIGHTS %lld   /* baked weights%s (0: none) */\n\n", PU, (long long)r.flash,
            nstd(e) ? " and standardization" : "");
    fprintf(out, "typedef struct %s %s;\n\n", P, P);
    fprintf(out, "%s *%s_new(void);   /* the model; NULL while in use */\n", P, P);
    fprintf(out, "void %s_free(%s *m);   /* NULL is fine */\n", P, P);
    if (!e->o->weights)
        fprintf(out, "void %s_init(%s *m, uint64_t seed);   /* the model's initializers, as the host's%s */\n", P, P,
                g->infer_only ? "" : "; gradients, state, step 0");
    fprintf(out, "const char *%s_error(void);   /* the last error's message */\n\n", P);
    if (!g->infer_only) {
        fprintf(out, "/* training */\n");
        fprintf(out, "%s %s_forward(%s *m, int n%s);\n", T, P, P, emit_io_params(e, 0));
        fprintf(out, "int  %s_backward(%s *m);\n", P, P);
        fprintf(out, "void %s_zero_grad(%s *m);\n", P, P);
        fprintf(out, "void %s_update(%s *m);\n", P, P);
        fprintf(out, "%s %s_loss_grad(%s *m, int n%s);\n", T, P, P, emit_io_params(e, 0));
        fprintf(out, "%s %s_train_step(%s *m, int n%s);\n", T, P, P, emit_io_params(e, 0));
        fprintf(out, "void    %s_set_lr(%s *m, double lr);\n", P, P);
        fprintf(out, "double  %s_lr(const %s *m);\n", P, P);
        fprintf(out, "int64_t %s_step(const %s *m);\n", P, P);
        fprintf(out, "%s *%s_grads(%s *m);   /* %s_TRAINABLE elements */\n", T, P, P, PU);
        for (int i = 0; i < g->io.n; i++) {
            ir_node *x = g->io.v[i];
            if (x->wants_grad)
                fprintf(out, "const %s *%s_grad_%s(const %s *m);   /* d mean(loss) / d %s, n examples */\n", T, P, x->cname,
                        P, x->cname);
        }
        fprintf(out, "\n");
    }
    fprintf(out, "/* inference on any n (in chunks of BATCH)%s: one buffer per output */\n",
            nstd(e) ? ", the float inputs standardized as the baked checkpoint says" : "");
    fprintf(out, "void %s_predict(%s *m, int n%s%s);\n", P, P, emit_io_params(e, 1), emit_out_params(e));
    fprintf(out, "%s%s *%s_params(%s *m);   /* %s */\n", baked_params_in_flash(e) ? "const " : "", T, P, P,
            ram_param_elements(e) < g->param_size && !baked_params_in_flash(e)
                ? "the parameters before the frozen ones (NAME_RAM_PARAMS bytes); those are in flash"
                : arena_printf(e->a, "%s_PARAMS elements", PU));
    fprintf(out, "\n#ifdef __cplusplus\n}\n#endif\n#endif\n");
    return ferror(out) ? -1 : 0;
}
