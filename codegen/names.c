/* names.c — the name supply: C identifiers for every tensor the generated code names.
 *
 * User names become identifiers as written where that is safe ("h1.weight" becomes
 * h1_weight, its gradient dh1_weight); a name that would clash with a C keyword, a libc
 * or BLAS symbol, a macro of the headers the generated code includes (cblas.h defines I),
 * the runtime, the generator's own locals or another tensor gets a trailing '_' (then a
 * number) instead, consistently across the file.  Temporaries are named after the
 * binding they belong to and their op (h1_dense).  A name in a reserved namespace
 * (cblas_..., nnr_..., __x) gets a leading "u_" instead, since no suffix frees it.  No user text reaches the generated C
 * except through here or the string/comment escapers of emit.c. */
#include "codegen.h"
#include <ctype.h>
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
    "m", "n", "b", "i", "j", "k", "l", "r", "p", "g", "acc", "mx", "sum", "inv_n", "lr", "src", "dsrc",
    "ysrc", "out", "dl", "lse", "total", "s1", "s2", "gi", "ag", "clip", "coef", "norm2", "delta", "denom",
    "step_size", "bc1", "bc2", "inv_bc2_sqrt", "mu_t", "mu_next", "c_grad", "c_avg", "at", "chunk", "mv",
    "in", "bytes", "elements", "oi", "oj", "ci", "ki", "kj", "ii", "jj", "row", "inside", "done", "share",
    "run_mean", "run_var", "unbias", "img", "best", "dy", "nz", "nzv", "nonzero", "x_hwc", "dx_hwc", "dw_t", "w_t",
    "col_b", "xr", "wr", "xv", "qi", "fb", "kk", "fil", "gv", "count", "dyf", "dr", "wf", "take",
    "nz_at", "nz_val", "nz_cnt", "q0", "zi", "vb", "lane", "av", "brow", "wu", "wv", "wm", "ti", "tj0", "tq",
    "xi", "di", "dj", "dt", "ta", "tr", "ym", "r0", "r1", "mf", "ux", "vx", "first", "pick", "gz", "bsum",
    "picks", "pv", "yv", "pm", "pk", NULL};

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

typedef struct supply { arena *a; ptrvec used; } supply;

static int taken(supply *s, const char *id) {
    if (names_reserved(id)) return 1;
    for (int i = 0; i < s->used.n; i++)
        if (!strcmp(s->used.v[i], id)) return 1;
    return 0;
}

static const char *fresh(supply *s, const char *base) {
    if (reserved_prefix(base)) base = arena_printf(s->a, "u_%s", base);   /* suffixes cannot help */
    const char *id = base;
    if (taken(s, id)) id = arena_printf(s->a, "%s_", base);
    for (int k = 2; taken(s, id); k++) id = arena_printf(s->a, "%s_%d", base, k);
    ptrvec_push(s->a, &s->used, (void *)id);
    return id;
}

/* The name of the binding on each source line, for naming the temporaries it makes. */
static const char *owner_of(ir_graph *g, int line) {
    for (int i = g->fwd_count - 1; i >= 0; i--) {
        ir_node *n = ir_at(g, i);
        if (n->stmt_line == line && n->name && n->op != OP_PARAM) return n->name;
    }
    return NULL;
}

static const char *base_name(ir_graph *g, ir_node *n) {
    arena *a = g->a;
    if (n->pass == IR_FWD) {
        if (n->name) return names_mangle(a, n->name);
        const char *owner = owner_of(g, n->stmt_line);
        return owner ? arena_printf(a, "%s_%s", names_mangle(a, owner), ir_op_name(n))
                     : arena_printf(a, "t%d", n->id);
    }
    if (n->grad_of) return arena_printf(a, "d%s", base_name(g, n->grad_of));
    const char *owner = owner_of(g, n->stmt_line);
    return owner ? arena_printf(a, "d%s_%s", names_mangle(a, owner), ir_op_name(n))
                 : arena_printf(a, "dt%d", n->id);
}

void names_assign(ir_graph *g) {
    supply s = {g->a, {0}};
    /* user-declared names first, so they keep their spelling when something must yield */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < g->nodes.n; i++) {
            ir_node *n = ir_at(g, i);
            if (n->mem == MEM_NONE || n->cname) continue;
            int user = n->pass == IR_FWD && n->name;
            if (user == (pass == 0)) n->cname = fresh(&s, base_name(g, n));
        }
}
