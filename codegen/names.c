/* names.c — the name supply: C identifiers for every tensor the generated code names.
 *
 * User names become identifiers as written where that is safe ("h1.weight" becomes
 * h1_weight, its gradient dh1_weight); a name that would clash with a C keyword, a libc
 * or BLAS symbol, a macro of the headers the generated code includes (cblas.h defines I),
 * the runtime, the generator's own locals or another tensor gets a trailing '_' (then a
 * number) instead, consistently across the file.  Temporaries are named after the
 * binding they belong to and their op (h1_dense).  A gradient is named after the forward
 * tensor whose gradient its memory holds, a user's binding first (ds4, even where the
 * code computed it as flatten(s4)'s), a parameter seen through a view after the
 * parameter (dc3_bias_reshape).  A name in a reserved namespace (cblas_..., nnr_...,
 * __x) gets a leading "u_" instead, since no suffix frees it.  No user text reaches the
 * generated C except through here or the string/comment escapers of emit.c. */
#include "codegen.h"
#include <ctype.h>
#include <stdint.h>
#include <string.h>

static const char *const reserved[] = {
    /* C11 and C23 keywords */
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum",
    "extern", "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return",
    "short", "signed", "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void",
    "volatile", "while", "bool", "true", "false", "nullptr", "alignas", "alignof", "static_assert",
    "thread_local", "typeof", "typeof_unqual", "constexpr",
    /* macros and types of the included headers */
    "I", "NULL", "EOF", "INFINITY", "NAN", "HUGE_VAL", "HUGE_VALF", "errno", "assert", "stdin", "stdout",
    "stderr", "complex", "imaginary", "offsetof", "size_t", "ptrdiff_t", "int8_t", "int16_t", "int32_t",
    "int64_t", "uint8_t", "uint16_t", "uint32_t", "uint64_t", "intptr_t", "uintptr_t", "FILE", "va_list",
    "max_align_t", "wchar_t", "blasint", "bfloat16", "BLASLONG", "FLOAT", "M_PI", "M_E", "CHAR_BIT",
    "INT_MAX", "INT_MIN", "SIZE_MAX", "RAND_MAX", "EXIT_SUCCESS", "EXIT_FAILURE", "BUFSIZ", "FLT_MAX",
    "DBL_MAX", "isnan", "isinf", "isfinite", "signbit", "fpclassify",
    /* libc and libm functions */
    "main", "malloc", "calloc", "realloc", "free", "aligned_alloc", "abort", "exit", "atexit", "memcpy",
    "memmove", "memset", "memcmp", "strlen", "strcmp", "strcpy", "strncpy", "strcat", "printf",
    "fprintf", "sprintf", "snprintf", "puts", "fputs", "fopen", "fclose", "fread", "fwrite", "abs",
    "labs", "rand", "srand", "qsort", "bsearch", "atoi", "atof", "strtod", "getenv", "system", "time",
    "clock", "signal", "raise", "exp", "expf", "exp2", "expm1", "log", "logf", "log2", "log10", "log1p",
    "log1pf", "pow", "powf", "sqrt", "sqrtf", "cbrt", "fabs", "fabsf", "sin", "sinf", "cos", "cosf", "tan",
    "tanf", "tanh", "tanhf", "sinh", "cosh", "asin", "acos", "atan", "atan2", "fmax", "fmaxf", "fmin",
    "fminf", "floor", "ceil", "round", "trunc", "fmod", "erf", "erff", "lgamma", "tgamma", "hypot",
    "copysign", "copysignf", "nan", "ldexp", "frexp", "modf", "y0", "y1", "yn", "j0", "j1", "jn", "gamma",
    "index", "rindex", "random", "select", "remove", "rename", "unlink", "open", "close", "read", "write",
    /* the generator's own identifiers */
    "i0", "i1", "i2", "i3", "i4", "i5", "i6", "i7",   /* a permute's loops (emit_layout.c) */
    "m", "n", "b", "i", "j", "k", "l", "r", "p", "g", "acc", "mx", "sum", "inv_n", "inv_batch", "lr", "src", "dsrc",
    "ysrc", "out", "dl", "lse", "total", "s1", "s2", "gi", "ag", "clip", "coef", "norm2", "delta", "denom",
    "step_size", "bc1", "bc2", "inv_bc2_sqrt", "mu_t", "mu_next", "c_grad", "c_avg", "at", "chunk", "mv",
    "in", "bytes", "elements", "oi", "oj", "ci", "ki", "kj", "ii", "jj", "row", "inside", "done", "share",
    "run_mean", "run_var", "unbias", "img", "best", "dy", "nz", "nzv", "nonzero", "x_hwc", "dx_hwc", "dw_t", "w_t",
    "col_b", "xr", "wr", "xv", "qi", "fb", "kk", "fil", "gv", "count", "dyf", "dr", "wf", "take",
    "bh", "att_p0", "att_ds0", "att_q", "att_k", "att_v", "att_o", "att_p", "att_ds", "att_do", "att_d",
    "att_len", "att_inv", "att_prow",
    "nz_at", "nz_val", "nz_cnt", "q0", "zi", "vb", "lane", "av", "brow", "wu", "wv", "wm", "ti", "tj0", "tq",
    "xi", "di", "dj", "dt", "ta", "tr", "ym", "r0", "r1", "mf", "ux", "vx", "first", "pick", "gz", "bsum",
    "picks", "pv", "yv", "pm", "pk", "standardize", NULL};

static const char *const reserved_prefixes[] = {"cblas_", "Cblas", "CBLAS", "openblas", "nnr_", "NNR_",
                                                "__", "_Z", "LAPACK", "lapack", "goto_", NULL};

/* A name no suffix can free: a library's namespace, or the implementation's (_X, __x). */
static int reserved_prefix(const char *id) {
    for (int i = 0; reserved_prefixes[i]; i++)
        if (!strncmp(reserved_prefixes[i], id, strlen(reserved_prefixes[i]))) return 1;
    return id[0] == '_' && (isupper((unsigned char)id[1]) || id[1] == '_');
}

int names_reserved(const char *id) {
    for (int i = 0; reserved[i]; i++)
        if (!strcmp(reserved[i], id)) return 1;
    return reserved_prefix(id);
}

const char *names_unreserved(arena *a, const char *id) {
    if (reserved_prefix(id)) return arena_printf(a, "u_%s", id);   /* u_cblas_sgemm, u___x */
    return names_reserved(id) ? arena_printf(a, "%s_", id) : id;
}

const char *names_mangle(arena *a, const char *user) {
    size_t len = strlen(user);
    if (len > 200) len = 200;     /* keep identifiers within every compiler's limits */
    char *s = arena_alloc(a, len + 8);
    size_t o = 0;
    if (!isalpha((unsigned char)user[0]) && user[0] != '_') s[o++] = 't';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)user[i];
        s[o++] = isalnum(c) || c == '_' ? (char)c : '_';
    }
    s[o] = 0;
    return s;
}

/* A set of identifiers, hashed: a model with thousands of tensors must not compare every
 * new name with every name before it. */
static uint64_t hash_of(const char *id) {
    uint64_t h = 1469598103934665603ull;   /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)id; *p; p++) h = (h ^ *p) * 1099511628211ull;
    return h;
}

/* The slot holding id, or the empty slot where it belongs. */
static size_t slot_of(const names_set *s, const char *id) {
    size_t i = hash_of(id) & (s->cap - 1);
    while (s->slot[i] && strcmp(s->slot[i], id)) i = (i + 1) & (s->cap - 1);
    return i;
}

int names_set_has(const names_set *s, const char *id) { return s->cap && s->slot[slot_of(s, id)]; }

int names_set_add(names_set *s, const char *id) {
    if (2 * (s->n + 1) > s->cap) {   /* grow: at most half full */
        names_set bigger = {s->a, NULL, NULL, s->cap ? 2 * s->cap : 64, 0};
        bigger.slot = arena_alloc(s->a, bigger.cap * sizeof *bigger.slot);
        bigger.count = arena_alloc(s->a, bigger.cap * sizeof *bigger.count);
        for (size_t i = 0; i < s->cap; i++)
            if (s->slot[i]) {
                size_t j = slot_of(&bigger, s->slot[i]);
                bigger.slot[j] = s->slot[i];
                bigger.count[j] = s->count[i];
                bigger.n++;
            }
        *s = bigger;
    }
    size_t i = slot_of(s, id);
    if (!s->slot[i]) {
        s->slot[i] = id;
        s->n++;
    }
    return s->count[i]++;
}

static int taken(const names_set *used, const char *id) { return names_reserved(id) || names_set_has(used, id); }

static const char *fresh(names_set *used, const char *base) {
    arena *a = used->a;
    if (reserved_prefix(base)) base = arena_printf(a, "u_%s", base);   /* suffixes cannot help */
    const char *id = base;
    if (taken(used, id)) id = arena_printf(a, "%s_", base);
    for (int k = 2; taken(used, id); k++) id = arena_printf(a, "%s_%d", base, k);
    names_set_add(used, id);
    return id;
}

/* The binding a line of a function's body makes in one call of it. */
typedef struct call_owner { int call_id, line; const char *name; } call_owner;

static const char **call_owner_of(call_owner *co, int n, int call_id, int line) {
    for (int i = n - 1; i >= 0; i--)   /* the latest calls are the likeliest */
        if (co[i].call_id == call_id && co[i].line == line) return &co[i].name;
    return NULL;
}

/* Per node, the name of the binding its source line makes, for naming the temporaries
 * there: the last named forward node of the line, or, in a function's body, of the line
 * in that call (one walk over the graph, not one per node). */
static const char **node_owners(ir_graph *g) {
    int lines = 0;
    for (int i = 0; i < g->nodes.n; i++)
        if (ir_at(g, i)->stmt_line > lines) lines = ir_at(g, i)->stmt_line;
    const char **by_line = arena_alloc(g->a, sizeof *by_line * (size_t)(lines + 1));
    call_owner *co = arena_alloc(g->a, sizeof *co * (size_t)(g->fwd_count + 1));
    int nco = 0;
    for (int i = 0; i < g->fwd_count; i++) {
        ir_node *n = ir_at(g, i);
        if (n->stmt_line <= 0 || !n->name || n->op == OP_PARAM) continue;
        if (!n->call_id) {
            by_line[n->stmt_line] = n->name;
            continue;
        }
        const char **slot = call_owner_of(co, nco, n->call_id, n->stmt_line);
        if (slot) *slot = n->name;
        else co[nco++] = (call_owner){n->call_id, n->stmt_line, n->name};
    }
    const char **owner = arena_alloc(g->a, sizeof *owner * (size_t)(g->nodes.n + 1));
    for (int i = 0; i < g->nodes.n; i++) {
        ir_node *n = ir_at(g, i);
        if (n->stmt_line <= 0) continue;
        const char **slot = n->call_id ? call_owner_of(co, nco, n->call_id, n->stmt_line) : NULL;
        owner[i] = n->call_id ? (slot ? *slot : NULL) : by_line[n->stmt_line];
    }
    return owner;
}

/* A scan's own tensors, after its binding (h1): the state a step starts from h1_prev
 * (h1_c_prev for an lstm's second state), the step's input h1_x_t; backward, the state's
 * gradient at step t dh1_t and the one sent back to step t-1 dh1_next (min-char-rnn's
 * dhnext).  NULL for other nodes. */
static const char *loop_name(ir_graph *g, const char *owner, const ir_node *n) {
    arena *a = g->a;
    const ir_loop *l = n->loop;
    if (!l || !owner) return NULL;
    const ir_loop *f = l->backward ? l->fwd : l;   /* the states' names */
    owner = names_mangle(a, owner);
    int k = n->op == OP_SCAN_STATE || n->op == OP_SCAN_SEED ? (int)n->attr[0] : -1;
    for (int j = 0; j < l->nstate && k < 0; j++)
        if (l->carry[j] == n) k = j;
    if (k < 0 && n->op != OP_SCAN_X) return NULL;
    const char *state = k <= 0 ? owner : arena_printf(a, "%s_%s", owner, f->state_name[k] ? f->state_name[k] : "s");
    switch (n->op) {
    case OP_SCAN_STATE: return arena_printf(a, "%s_prev", state);
    case OP_SCAN_X: return arena_printf(a, "%s_x_t", owner);
    case OP_SCAN_SEED: return arena_printf(a, "d%s_t", state);
    default: return arena_printf(a, "d%s_next", state);
    }
}

/* The tensor whose memory x is: through reshapes, selects and in-place pad-adds that have
 * none of their own (emit.c reads them the same way). */
static const ir_node *names_storage(const ir_node *x) {
    while (x->mem == MEM_NONE && (x->op == OP_RESHAPE || x->op == OP_SELECT || x->op == OP_PAD_ADD)) x = x->in[0];
    return x;
}

/* Which forward node's gradient each backward tensor holds.  A gradient is often not the
 * node grad.c made for it: the gradient of s4 in `dense(flatten(s4), 120)` is a view of
 * the product that made flatten's, and a gradient summed in place (an unrolled sequence's
 * pad-adds) lives in its first slice's memory; naming that memory after the grad_of of
 * the node that made it would call the gradient of s4 df5_reshape.  A named forward node
 * wins over an unnamed one; among named ones, the nearest the loss. */
static const ir_node **gradient_holders(ir_graph *g) {
    const ir_node **holder = arena_alloc(g->a, sizeof *holder * (size_t)g->nodes.n);
    for (int i = 0; i < g->fwd_count; i++) {
        const ir_node *f = ir_at(g, i);
        if (!f->grad) continue;
        const ir_node *s = names_storage(f->grad);
        if (s->pass != IR_BWD || s->id >= g->nodes.n) continue;
        if (!holder[s->id] || f->name || !holder[s->id]->name) holder[s->id] = f;
    }
    return holder;
}

names_owner *names_owners(ir_graph *g) {
    names_owner *o = arena_alloc(g->a, sizeof *o);
    o->node = node_owners(g);
    o->holder = gradient_holders(g);
    o->count = g->nodes.n;
    return o;
}

/* The forward node whose gradient n is, for its name: its own grad_of when that has a
 * user name, else a named node whose gradient lives in n, else grad_of, else any. */
static const ir_node *gradient_of(const names_owner *o, const ir_node *n) {
    const ir_node *h = n->id < o->count ? o->holder[n->id] : NULL;
    if (n->grad_of && (n->grad_of->name || !h || !h->name)) return n->grad_of;
    return h;
}

/* A view without memory of a named tensor (a parameter reshaped for a product or a
 * broadcast), named after that tensor: the gradient of c3.bias seen as [16, 1, 1] is
 * dc3_bias_reshape, not dc3_reshape (which reads as the gradient of c3's reshape). */
static const char *viewed_name(const ir_node *n) {
    while (!n->name && n->op == OP_RESHAPE && n->mem == MEM_NONE) n = n->in[0];
    return n->name;
}

const char *names_base(ir_graph *g, const names_owner *o, const ir_node *n) {
    arena *a = g->a;
    const char *owner = n->id < o->count ? o->node[n->id] : NULL;
    const char *in_loop = loop_name(g, owner, n);
    if (in_loop) return in_loop;
    if (n->pass == IR_FWD) {
        if (n->name) return names_mangle(a, n->name);
        const char *viewed = n->op == OP_RESHAPE ? viewed_name(n) : NULL;
        if (viewed) owner = viewed;
        return owner ? arena_printf(a, "%s_%s", names_mangle(a, owner), ir_op_name(n))
                     : arena_printf(a, "t%d", n->id);
    }
    const ir_node *f = gradient_of(o, n);
    if (f) return arena_printf(a, "d%s", names_base(g, o, f));
    return owner ? arena_printf(a, "d%s_%s", names_mangle(a, owner), ir_op_name(n))
                 : arena_printf(a, "dt%d", n->id);
}

int names_has_loops(const ir_graph *g) {
    for (int i = 0; i < g->nodes.n; i++)
        if (ir_at(g, i)->loop) return 1;
    return 0;
}

/* The model struct's own members (emit_api.c's emit_struct): the inputs, labels and targets
 * are members beside them, so their names must differ. */
static const char *const struct_members[] = {"params", "grads", "state", "acts", "grads_added", "grads_clear",
                                             "pending", "norm", "step", "seed", "lr", "loss", "check",
                                             "numerics", "in_use", NULL};

/* The file-scope functions and arrays the pass functions call or read, named after the
 * model (NAME_gemm, NAME_uniform, NAME_weights, --math inline's NAME_expf, ...): no local
 * may hide one. */
static const char *const model_scope[] = {"gemm", "uniform", "check", "weights", "exp", "log", "expm1", "log1p",
                                          "tanh", "sin", "cos", "tan", "erf", "pow", "sqrt", "fabs", "fmax",
                                          "fmin", "fma", NULL};

static const char *io_base(const ir_node *n, const char *base, arena *a) {
    if (n->role != ROLE_INPUT && n->role != ROLE_LABEL && n->role != ROLE_TARGET) return base;
    for (int i = 0; struct_members[i]; i++)
        if (!strcmp(struct_members[i], base)) return arena_printf(a, "%s_", base);
    return base;
}

void names_assign(ir_graph *g) {
    names_set used = {g->a, NULL, NULL, 0, 0};
    if (names_has_loops(g)) names_set_add(&used, "t");   /* a scan's step (emit_scan.c); only then, so a target t stays t */
    const char *P = names_unreserved(g->a, names_mangle(g->a, g->model));   /* emit_setup's prefix */
    for (int i = 0; model_scope[i]; i++) {
        names_set_add(&used, arena_printf(g->a, "%s_%s", P, model_scope[i]));
        names_set_add(&used, arena_printf(g->a, "%s_%sf", P, model_scope[i]));
    }
    const names_owner *owners = names_owners(g);
    /* user-declared names first, so they keep their spelling when something must yield */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < g->nodes.n; i++) {
            ir_node *n = ir_at(g, i);
            if (n->mem == MEM_NONE || n->cname) continue;
            int user = n->pass == IR_FWD && n->name;
            if (user == (pass == 0)) n->cname = fresh(&used, io_base(n, names_base(g, owners, n), g->a));
        }
}
