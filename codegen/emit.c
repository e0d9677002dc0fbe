/* emit.c — writes the generated C: the model's header and its source file.
 *
 * The source is meant to be read, after llm.c: a struct holding four blocks (parameters,
 * gradients, optimizer state, activations) allocated once; mirrored NAME_forward and
 * NAME_backward functions with statements in graph order; NAME_update, the optimizer as
 * one loop over all parameters; NAME_infer for predict.  Every block starts with a
 * comment naming the .nn line it comes from and the shapes; products are cblas calls
 * with named CblasTrans enums; elementwise chains are single loops; reductions and
 * last-axis ops (softmax, cross_entropy) are plain loops with the log-sum-exp shift.
 * Then the public API of SPEC §3 and the nnr_model_info table the runtime's trainer
 * uses.  Identifiers come from names.c; user text only appears inside comments and
 * string literals, escaped here. */
#include "codegen.h"
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct emitter {
    ir_graph   *g;
    arena      *a;
    FILE       *out;
    const emit_opts *o;
    const char *T;          /* float or double */
    const char *f;          /* libm suffix: "f" or "" */
    const char *P;          /* C prefix of public symbols: the model name, mangled */
    const char *PU;         /* the same in capitals, for macros */
    char       *used;       /* per node: referenced by the function being written */
    int         infer_mode; /* the function being written runs in inference mode */
    int         last_line;  /* the .nn line last quoted in a comment */
    const ir_node *subst;   /* an epilogue's producer, read as subst_value (see fuse.c) */
    const char *subst_value;
    const ir_node *subst2;  /* a second one: a pooled convolution's epilogue, read as its window's maximum */
    const char *subst2_value;
} emitter;

/* ---- text helpers ----------------------------------------------------------------- */

static const char *lit(emitter *e, double v) {
    char buf[64];
    snprintf(buf, sizeof buf, e->f[0] ? "%.9g" : "%.17g", v);
    if (!strpbrk(buf, ".en")) strcat(buf, ".0");
    /* negative literals in parentheses, so that -x and x - y stay well formed */
    return arena_printf(e->a, v < 0 ? "(%s%s)" : "%s%s", buf, e->f[0] ? "f" : "");
}

static const char *fn(emitter *e, const char *name) { return arena_printf(e->a, "%s%s", name, e->f); }

/* User text inside a C comment: printable ASCII only, no comment terminator, no trigraph. */
static const char *comment_text(emitter *e, const char *s, size_t len) {
    char *out = arena_alloc(e->a, len * 2 + 1), *o = out;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\t') c = ' ';
        if (c < 0x20 || c >= 0x7f) c = '?';
        if (c == '/' && o > out && o[-1] == '*') *o++ = ' ';
        if (c == '?' && o > out && o[-1] == '?') *o++ = ' ';
        if (c == '\\') c = '|';
        *o++ = (char)c;
    }
    while (o > out && o[-1] == ' ') o--;
    *o = 0;
    return out;
}

/* User text inside a C string literal. */
static const char *cstring(emitter *e, const char *s) {
    size_t len = strlen(s);
    char *out = arena_alloc(e->a, len * 4 + 3), *o = out;
    *o++ = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') { *o++ = '\\'; *o++ = (char)c; }
        else if (c == '\n') { *o++ = '\\'; *o++ = 'n'; }
        else if (c < 0x20 || c >= 0x7f || c == '?') o += sprintf(o, "\\%03o", c);
        else *o++ = (char)c;
    }
    *o++ = '"';
    *o = 0;
    return out;
}

static const char *source_line_text(emitter *e, int line) {
    int len;
    const char *p = source_line(e->g->src, line, &len);
    while (len > 0 && isspace((unsigned char)*p)) p++, len--;
    return comment_text(e, p, (size_t)len);
}

static const char *shape_of(emitter *e, const ir_node *n) { return ir_node_shape_str(e->a, n); }

/* Quotes the .nn statement a block comes from, once per run of blocks from one line. */
static void quote_line(emitter *e, FILE *o, const ir_node *n, const char *ind) {
    if (n->stmt_line == e->last_line || n->stmt_line <= 0) return;
    e->last_line = n->stmt_line;
    fprintf(o, "\n%s/* line %d: %s */\n", ind, n->stmt_line, source_line_text(e, n->stmt_line));
}

/* ---- reading tensors at a loop index ------------------------------------------------- */


static int is_view(const ir_node *n) {
    return n->mem == MEM_NONE && (n->op == OP_RESHAPE || n->op == OP_SELECT || n->op == OP_PAD_ADD);
}

/* Computed inside its consumer's loop; reshape and select without memory are views. */
static int is_inline(const ir_node *n) { return n->mem == MEM_NONE && !is_view(n); }

/* The tensor whose memory a view reads: a reshape's input, a select's training or
 * inference input depending on the function being written. */
static const ir_node *storage_in(const ir_node *x, int infer_mode) {
    while (is_view(x)) x = x->in[x->op == OP_SELECT ? infer_mode : 0];
    return x;
}

typedef enum { LOOP_FLAT, LOOP_EXAMPLE, LOOP_NESTED } loop_mode;

/* The index space of a loop: a layout (shape, batched) and how it is walked. */
typedef struct ictx {
    loop_mode   mode;
    int         batched, rank;
    int64_t     dim[IR_MAXRANK];
    const char *v[IR_MAXRANK];   /* LOOP_NESTED: one variable per axis */
} ictx;

static int64_t example_size(const ictx *c) {
    int64_t s = 1;
    for (int d = 0; d < c->rank; d++) s *= c->dim[d];
    return s;
}

static int layout_is(const ir_node *x, const ictx *c) {
    if (x->batched != c->batched || x->shape.rank != c->rank) return 0;
    for (int d = 0; d < c->rank; d++)
        if (x->shape.dim[d] != c->dim[d]) return 0;
    return 1;
}

/* A slice without memory: its readers' loops read its input in place (fuse.c,
 * plan_slice_views). */
static int is_slice_view(const ir_node *x) { return x->op == OP_SLICE && x->mem == MEM_NONE; }

/* Whether each example's part of a slice view is one contiguous run of its input: every
 * axis before the sliced one has length 1 (an LSTM's step of all steps' projections, a
 * gate of a step's [1, 4·hidden]).  Then a loop over examples reads it at an offset. */
static int slice_contiguous(const ir_node *x) {
    for (int d = 0; d < x->axis; d++)
        if (x->shape.dim[d] != 1) return 0;
    return 1;
}

/* Can every stored tensor of the expression be read with the loop's simple index? */
static int flat_ok(const ir_node *x, const ictx *c, loop_mode mode) {
    if (ir_index_free(x)) return 1;
    if (is_slice_view(x)) return mode == LOOP_EXAMPLE && slice_contiguous(x) && layout_is(x, c);
    if (is_inline(x)) {
        for (int k = 0; k < x->nin; k++)
            if (!flat_ok(x->in[k], c, mode)) return 0;
        return 1;
    }
    if (layout_is(x, c)) return 1;
    int64_t numel = ir_numel(&x->shape);
    if (!x->batched && numel == 1) return 1;
    if (mode == LOOP_EXAMPLE) {
        if (x->batched && numel == 1) return 1;
        if (!x->batched && x->shape.rank == c->rank && numel == example_size(c)) return 1;
    }
    return 0;
}

static const char *mark(emitter *e, const ir_node *x) {
    x = storage_in(x, e->infer_mode);
    e->used[x->id] = 1;
    return x->cname;
}

/* A tensor's name for a comment: its own, or that of the memory a view reads. */
static const char *who(emitter *e, const ir_node *x) {
    const ir_node *s = storage_in(x, e->infer_mode);
    return s->cname ? s->cname : x->cname ? x->cname : "the expression";
}

/* A tensor without memory for a comment: its user name (the pooled convolution's epilogue). */
static const char *label(emitter *e, const ir_node *x) {
    if (x->cname) return x->cname;
    return x->name ? comment_text(e, x->name, strlen(x->name)) : "the activation";
}

static const char *index_of(emitter *e, const ir_node *x, const ictx *c) {
    int64_t numel = ir_numel(&x->shape);
    if (c->mode == LOOP_FLAT) return numel == 1 && !x->batched ? "0" : "i";
    if (c->mode == LOOP_EXAMPLE) {   /* b: the example; i: the element within it */
        if (x->batched) return numel == 1 ? "b" : arena_printf(e->a, "b * %lld + i", (long long)numel);
        return numel == 1 ? "0" : "i";
    }
    /* nested: align x's axes with the loop's from the right; broadcast axes read index 0 */
    char buf[512] = "";
    size_t len = 0;
    if (x->batched && numel > 1) len += (size_t)snprintf(buf, sizeof buf, "b * %lld", (long long)numel);
    else if (x->batched) len += (size_t)snprintf(buf, sizeof buf, "b");
    int64_t stride = 1;
    char terms[IR_MAXRANK][64];
    int nterms = 0;
    for (int d = x->shape.rank - 1; d >= 0; d--) {
        int ld = d + c->rank - x->shape.rank;
        if (x->shape.dim[d] != 1 && ld >= 0) {
            if (stride == 1) snprintf(terms[nterms++], 64, "%s", c->v[ld]);
            else snprintf(terms[nterms++], 64, "%s * %lld", c->v[ld], (long long)stride);
        }
        stride *= x->shape.dim[d];
    }
    for (int t = nterms - 1; t >= 0 && len < sizeof buf - 70; t--)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", len ? " + " : "", terms[t]);
    return len ? arena_strdup(e->a, buf) : "0";
}

static const char *expr(emitter *e, const ir_node *x, const ictx *c);
static const char *read_at(emitter *e, const ir_node *x, const ictx *c);

/* A slice view read by a loop over the slice's own layout (plan_slice_views): per example
 * at an offset when that part is contiguous (flat_ok), else with nested loops, its input
 * at the same indices shifted by the slice's start along its axis. */
static const char *read_sliced(emitter *e, const ir_node *x, const ictx *c) {
    const ir_node *src = x->in[0];
    long long start = (long long)x->attr[0];
    if (c->mode == LOOP_EXAMPLE) {
        long long inner = 1, off;
        for (int d = x->axis + 1; d < src->shape.rank; d++) inner *= (long long)src->shape.dim[d];
        off = start * inner;
        const char *row = src->batched ? arena_printf(e->a, "b * %lld + ", (long long)ir_numel(&src->shape)) : "";
        return arena_printf(e->a, "%s[%s%s%si]", mark(e, src), row, off ? arena_printf(e->a, "%lld", off) : "",
                            off ? " + " : "");
    }
    ictx in = *c;
    int d = x->axis + c->rank - x->shape.rank;
    if (c->mode != LOOP_NESTED || d < 0) return "0 /* a slice view outside its loop */";
    if (start) in.v[d] = arena_printf(e->a, "(%s + %lld)", c->v[d], start);
    in.dim[d] = src->shape.dim[x->axis];
    return read_at(e, src, &in);
}

static const char *read_at(emitter *e, const ir_node *x, const ictx *c) {
    if (e->subst && storage_in(x, e->infer_mode) == e->subst) return e->subst_value;
    if (e->subst2 && storage_in(x, e->infer_mode) == e->subst2) return e->subst2_value;
    if (x->op == OP_CONST) return lit(e, x->attr[0]);
    if (x->op == OP_INV_N) return "inv_n";
    if (is_slice_view(x)) return read_sliced(e, x, c);
    if (is_inline(x)) return expr(e, x, c);
    return arena_printf(e->a, "%s[%s]", mark(e, x), index_of(e, x, c));
}

/* Fills in a template of ir_maps (see ir.h) for node x at the loop index.  A forward
 * node's inputs are its arguments; a gradient node's are the upstream gradient, then
 * those of $a $b $y its template reads, in that order. */
static const char *expand_map(emitter *e, const char *t, const ir_node *x, const ictx *c) {
    const char *slot[4] = {NULL};      /* $a $b $y $g */
    if (x->op == OP_MAP) {
        for (int k = 0; k < x->nin; k++) slot[k] = read_at(e, x->in[k], c);
    } else {
        int k = 0;
        slot[3] = read_at(e, x->in[k++], c);
        if (strstr(t, "$a")) slot[0] = read_at(e, x->in[k++], c);
        if (strstr(t, "$b")) slot[1] = read_at(e, x->in[k++], c);
        if (strstr(t, "$y")) slot[2] = read_at(e, x->in[k++], c);
    }
    char *out = "";
    for (const char *p = t; *p;) {
        if (*p == '$') {
            char v = p[1];
            const char *s = v == 'a' ? slot[0] : v == 'b' ? slot[1] : v == 'y' ? slot[2] : v == 'g' ? slot[3]
                          : v == 'p' ? lit(e, x->attr[0]) : lit(e, x->attr[1]);
            out = arena_printf(e->a, "%s%s", out, s ? s : "0");
            p += 2;
        } else if (*p == '#') {
            char *end;
            double v = strtod(p + 1, &end);
            out = arena_printf(e->a, "%s%s", out, lit(e, v));
            p = end;
        } else if (*p == '@') {
            size_t len = strcspn(p + 1, "(");
            out = arena_printf(e->a, "%s%s", out, fn(e, arena_strndup(e->a, p + 1, len)));
            p += 1 + len;
        } else {
            size_t len = strcspn(p, "$#@");
            out = arena_printf(e->a, "%s%.*s", out, (int)len, p);
            p += len;
        }
    }
    return out;
}

/* The C expression computing elementwise node x at the loop index. */
static const char *expr(emitter *e, const ir_node *x, const ictx *c) {
    const char *a = x->nin > 0 ? read_at(e, x->in[0], c) : "", *b = x->nin > 1 ? read_at(e, x->in[1], c) : "";
    double k = x->attr[0];
    switch (x->op) {
    case OP_ADD: return arena_printf(e->a, "(%s + %s)", a, b);
    case OP_SUB: return arena_printf(e->a, "(%s - %s)", a, b);
    case OP_MUL: return arena_printf(e->a, "(%s * %s)", a, b);
    case OP_DIV: return arena_printf(e->a, "(%s / %s)", a, b);
    case OP_NEG: return arena_printf(e->a, "(-%s)", a);
    case OP_COPY: case OP_EXPAND: return a;
    case OP_POWC:
        if (k == 2) return arena_printf(e->a, "(%s * %s)", a, a);
        if (k == 1) return a;
        if (k == 0.5) return arena_printf(e->a, "%s(%s)", fn(e, "sqrt"), a);
        return arena_printf(e->a, "%s(%s, %s)", fn(e, "pow"), a, lit(e, k));
    case OP_POWC_GRAD:
        if (k == 2) return arena_printf(e->a, "(%s * %s * %s)", a, lit(e, 2), b);
        if (k == 1) return a;
        return arena_printf(e->a, "(%s * %s * %s(%s, %s))", a, lit(e, k), fn(e, "pow"), b, lit(e, k - 1));
    case OP_MAP: return expand_map(e, ir_maps[x->fn].value, x, c);
    case OP_DROPOUT_MASK:      /* keep with probability 1 - p, scaled so the expectation is unchanged */
        return arena_printf(e->a, "(%s_uniform(m->seed, m->step, %d, %s) >= %s ? %s : %s)", e->P, x->id,
                            index_of(e, x, c), lit(e, x->attr[0]), lit(e, 1 / (1 - x->attr[0])), lit(e, 0));
    case OP_REDUCE_MAX_GRAD:   /* the gradient goes to the extreme elements (grad.c divides it among ties) */
        return arena_printf(e->a, "(%s == %s ? %s : %s)", b, read_at(e, x->in[2], c), a, lit(e, 0));
    case OP_MAP_GRAD: return expand_map(e, ir_maps[x->fn].grad[x->arg], x, c);
    default: return "0 /* not elementwise */";
    }
}

/* Local derivatives, written in math in the backward pass's comments. */
static const char *math_of(const ir_node *x) {
    switch (x->op) {
    case OP_MAP_GRAD: return ir_maps[x->fn].math[x->arg];
    case OP_POWC_GRAD: return "d u^c/du = c u^(c-1)";
    case OP_SOFTMAX_GRAD: return "d softmax: du = y * (dy - sum(dy * y))";
    case OP_LOG_SOFTMAX_GRAD: return "d log_softmax: du = dy - softmax(u) * sum(dy)";
    case OP_CROSS_ENTROPY_GRAD: return "d cross_entropy(z, y)/dz = softmax(z) - onehot(y)";
    case OP_PICK_GRAD: return "d z[y]/dz = onehot(y)";
    case OP_SUM_TO: return "a broadcast's gradient sums over the broadcast axes";
    case OP_EXPAND:
        if (x->in[0]->op == OP_INV_N) return "d mean(loss)/d loss[b] = 1/n";
        if (x->in[0]->op == OP_CONST && x->in[0]->attr[0] == 0) return "the loss never reads it: its gradient is 0";
        return "d sum(u)/du = 1 for every element";
    case OP_DIV:
        if (x->in[1]->op == OP_SUM_TO && x->in[1]->in[0]->op == OP_REDUCE_MAX_GRAD)
            return "k elements tied at a max or min get 1/k of its gradient each";
        return x->in[0]->op == OP_MUL ? "d(a/b)/db = -a/b^2" : "d(a/b)/da = 1/b";
    case OP_NEG: return "d(-u)/du = -1";
    case OP_COPY: return "";
    case OP_ADD: return x->grad_of ? "a tensor used twice: its gradients add up" : "";
    default: return "";
    }
}

static void collect_math(const ir_node *x, char *buf, size_t cap, int top) {
    if (!top && !is_inline(x)) return;
    const char *m = math_of(x);
    if (*m && !strstr(buf, m) && strlen(buf) + strlen(m) + 4 < cap) {
        if (*buf) strcat(buf, "; ");
        strcat(buf, m);
    }
    for (int k = 0; k < x->nin; k++) collect_math(x->in[k], buf, cap, 0);
}

/* ---- loops ----------------------------------------------------------------------- */

static const char *axis_var(int d) {
    static const char *const v[IR_MAXRANK] = {"i", "j", "k", "l", "i4", "i5", "i6", "i7"};
    return v[d];
}

static ictx layout_ctx(const ir_node *lay) {
    ictx c = {LOOP_NESTED, lay->batched, lay->shape.rank, {0}, {0}};
    for (int d = 0; d < c.rank; d++) {
        c.dim[d] = lay->shape.dim[d];
        c.v[d] = axis_var(d);
    }
    return c;
}

/* Chooses the simplest walk of the loop that reads every operand of `roots` correctly. */
static void choose_mode(ictx *c, const ir_node *const *roots, int nroots, int allow_flat) {
    loop_mode modes[2] = {LOOP_FLAT, LOOP_EXAMPLE};
    for (int m = allow_flat ? 0 : 1; m < 2; m++) {
        int ok = 1;
        for (int r = 0; r < nroots && ok; r++) ok = flat_ok(roots[r], c, modes[m]);
        if (ok) { c->mode = modes[m]; return; }
    }
    c->mode = LOOP_NESTED;
}

/* Prints one `for` header; the body or the next header follows on its own line. */
static void loop_header(emitter *e, FILE *o, const char **cur, int *first, const char *text) {
    fprintf(o, "%s%s%s", *first ? "" : "\n", *cur, text);
    *cur = arena_printf(e->a, "%s    ", *cur);
    *first = 0;
}

/* Opens the loops over c's index space; returns the indentation of the body.  `simd`:
 * every iteration writes its own element, and nested loops get `omp simd` on the
 * innermost.  That is more than a hint: GCC 12.2's loop vectorizer, left to vectorize the
 * middle loop of such a nest itself, miscompiles a select whose operands are broadcast
 * along it when the innermost loop is short — max's gradient over an axis of 4 rows of 5
 * (`x == max ? g : 0`) lost 5 of its 10 nonzeros at -O3 with AVX2 or AVX-512, correct at
 * -O2 (tests/gradcheck/reduce_axis_small.nn). */
static const char *open_loops(emitter *e, FILE *o, const ictx *c, const char *ind, int simd) {
    long long size = (long long)example_size(c);
    const char *cur = ind;
    int first = 1;
    if (c->mode == LOOP_FLAT) {
        loop_header(e, o, &cur, &first, c->batched ? arena_printf(e->a, "for (int i = 0; i < n * %lld; i++)", size)
                                                   : arena_printf(e->a, "for (int i = 0; i < %lld; i++)", size));
        return cur;
    }
    if (c->batched) loop_header(e, o, &cur, &first, "for (int b = 0; b < n; b++)");
    if (c->mode == LOOP_EXAMPLE) {
        loop_header(e, o, &cur, &first, arena_printf(e->a, "for (int i = 0; i < %lld; i++)", size));
        return cur;
    }
    for (int d = 0; d < c->rank; d++) {
        if (simd && d == c->rank - 1 && (c->batched || c->rank > 1)) {
            fprintf(o, "%s%s#pragma omp simd", first ? "" : "\n", cur);
            first = 0;
        }
        loop_header(e, o, &cur, &first, arena_printf(e->a, "for (int %s = 0; %s < %lld; %s++)", c->v[d], c->v[d],
                                                     (long long)c->dim[d], c->v[d]));
    }
    return cur;
}

/* `for` headers above were printed without newlines before the body; a body line starts
 * with a newline and the indentation the helper returned. */
static void body(FILE *o, const char *ind, const char *stmt) { fprintf(o, "\n%s%s\n", ind, stmt); }

/* ---- ops --------------------------------------------------------------------------- */

/* The slices x's loop reads in place, for its comment: "h_add [256, 384) of axis 1". */
static void collect_views(emitter *e, const ir_node *x, char *buf, size_t cap, int top) {
    if (is_slice_view(x)) {
        const char *v = arena_printf(e->a, "%s [%lld, %lld) of axis %d", who(e, x->in[0]), (long long)x->attr[0],
                                     (long long)x->attr[1], x->axis);
        if (!strstr(buf, v) && strlen(buf) + strlen(v) + 4 < cap) {
            if (*buf) strcat(buf, ", ");
            strcat(buf, v);
        }
        return;
    }
    if (!top && !is_inline(x)) return;
    for (int k = 0; k < x->nin; k++) collect_views(e, x->in[k], buf, cap, 0);
}

static void emit_elementwise(emitter *e, FILE *o, ir_node *n) {
    ictx c = layout_ctx(n);
    choose_mode(&c, (const ir_node *const *)n->in, n->nin, 1);
    char math[512] = "", views[256] = "";
    if (n->pass == IR_BWD) collect_math(n, math, sizeof math, 1);
    collect_views(e, n, views, sizeof views, 1);
    fprintf(o, "    /* %s %s%s%s%s%s */\n", n->cname, shape_of(e, n), *math ? ": " : "", math,
            *views ? (*math ? "; reads in place " : ", reading in place ") : "", views);
    const char *ind = open_loops(e, o, &c, "    ", 1);
    body(o, ind, arena_printf(e->a, "%s[%s] = %s;", mark(e, n), index_of(e, n, &c), expr(e, n, &c)));
}

static void emit_sum(emitter *e, FILE *o, ir_node *n) {
    ir_node *x = n->in[0];
    ictx c = layout_ctx(x);
    c.batched = x->batched;
    const ir_node *roots[1] = {x};
    choose_mode(&c, roots, 1, 0);
    double scale = n->attr[0];
    fprintf(o, "    /* %s %s = %s over each example's %lld elements of %s */\n", n->cname, shape_of(e, n),
            scale == 1 ? "sum" : "scaled sum", (long long)ir_numel(&x->shape), shape_of(e, x));
    const char *ind = "    ";
    if (x->batched) {
        fprintf(o, "    for (int b = 0; b < n; b++) {\n");
        ind = "        ";
    } else {
        fprintf(o, "    {\n");
        ind = "        ";
    }
    fprintf(o, "%s%s acc = 0;\n", ind, e->T);
    ictx inner = c;
    inner.batched = 0;   /* the batch loop is already open */
    const char *ind2;
    if (c.mode == LOOP_EXAMPLE) {
        fprintf(o, "%s#pragma omp simd reduction(+:acc)   /* lets the compiler reorder the sum */\n", ind);
        fprintf(o, "%sfor (int i = 0; i < %lld; i++)", ind, (long long)ir_numel(&x->shape));
        ind2 = arena_printf(e->a, "%s    ", ind);
    } else {
        ind2 = open_loops(e, o, &inner, ind, 0);
    }
    body(o, ind2, arena_printf(e->a, "acc += %s;", read_at(e, x, &c)));
    if (scale == 1) fprintf(o, "%s%s[%s] = acc;\n", ind, mark(e, n), x->batched ? "b" : "0");
    else fprintf(o, "%s%s[%s] = acc * %s;\n", ind, mark(e, n), x->batched ? "b" : "0", lit(e, scale));
    fprintf(o, "    }\n");
}

/* sum_to (undoing a broadcast, or sum/mean over an axis) and max/min over axes: the
 * output starts at the identity of the combination, then every input element is folded
 * into the output element it reduces to. */
static void emit_sum_to(emitter *e, FILE *o, ir_node *n) {
    ir_node *x = n->in[0];
    ictx c = layout_ctx(x);
    c.mode = LOOP_NESTED;
    int is_max = n->op == OP_REDUCE_MAX, hi = n->attr[0] > 0;
    double scale = !is_max && n->attr[0] != 0 ? n->attr[0] : 1;
    const char *src = is_inline(x) ? "the gradient" : who(e, x);
    if (is_max)
        fprintf(o, "    /* %s %s = %s of %s %s over the reduced axes */\n", n->cname, shape_of(e, n), hi ? "max" : "min",
                src, shape_of(e, x));
    else if (n->axis != IR_NOAXIS)
        fprintf(o, "    /* %s %s = %s of %s %s over axis %d */\n", n->cname, shape_of(e, n), scale == 1 ? "sum" : "mean",
                src, shape_of(e, x), n->axis);
    else if (x->op == OP_REDUCE_MAX_GRAD && x->in[0]->op == OP_CONST)   /* grad.c's tie count */
        fprintf(o, "    /* %s %s = how many elements of %s %s tie at the %s (their gradient is shared) */\n", n->cname,
                shape_of(e, n), who(e, x->in[1]), shape_of(e, x), x->in[2]->attr[0] > 0 ? "maximum" : "minimum");
    else
        fprintf(o, "    /* %s %s = %s %s summed over the axes it was broadcast along%s */\n", n->cname,
                shape_of(e, n), src, shape_of(e, x), n->batched ? "" : " (the batch too)");
    long long numel = (long long)ir_numel(&n->shape);
    const char *count = n->batched ? arena_printf(e->a, "n * %lld", numel) : arena_printf(e->a, "%lld", numel);
    if (is_max)
        fprintf(o, "    for (int i = 0; i < %s; i++) %s[i] = %sINFINITY;\n", count, mark(e, n), hi ? "-" : "");
    else
        fprintf(o, "    memset(%s, 0, (size_t)(%s) * sizeof(%s));\n", mark(e, n), count, e->T);
    int last = x->shape.rank - 1, off = x->shape.rank - n->shape.rank;
    int inner_reduced = last >= 0 && x->shape.dim[last] > 1 && (last - off < 0 || n->shape.dim[last - off] == 1);
    if (inner_reduced && !is_max) {
        /* the innermost axis is summed: a register accumulates it, in an order the compiler may vectorize */
        ictx outer = c;
        outer.rank--;
        const char *ind = open_loops(e, o, &outer, "    ", 0);
        fprintf(o, " {\n%s%s acc = 0;\n%s#pragma omp simd reduction(+:acc)\n", ind, e->T, ind);
        fprintf(o, "%sfor (int %s = 0; %s < %lld; %s++)\n", ind, c.v[last], c.v[last], (long long)x->shape.dim[last], c.v[last]);
        fprintf(o, "%s    acc += %s;\n", ind, read_at(e, x, &c));
        c.v[last] = "0";
        fprintf(o, "%s%s[%s] += acc;\n", ind, n->cname, index_of(e, n, &c));
        fprintf(o, "%.*s}\n", (int)strlen(ind) - 4, ind);
    } else {
        const char *ind = open_loops(e, o, &c, "    ", 0);
        const char *at = arena_printf(e->a, "%s[%s]", n->cname, index_of(e, n, &c)), *v = read_at(e, x, &c);
        if (is_max)
            body(o, ind, arena_printf(e->a, "%s = %s(%s, %s);", at, fn(e, hi ? "fmax" : "fmin"), at, v));
        else
            body(o, ind, arena_printf(e->a, "%s += %s;", at, v));
    }
    if (scale != 1) fprintf(o, "    for (int i = 0; i < %s; i++) %s[i] *= %s;\n", count, n->cname, lit(e, scale));
}

/* Rows of a last-axis op: every example's leading axes, times the batch. */
static const char *rows_of(emitter *e, const ir_node *x) {
    int64_t k = x->shape.dim[x->shape.rank - 1], r = ir_numel(&x->shape) / k;
    if (!x->batched) return arena_printf(e->a, "%lld", (long long)r);
    return r == 1 ? "n" : arena_printf(e->a, "n * %lld", (long long)r);
}

/* A per-row value (the loss gradient of cross_entropy): stored, or a literal such as 1/n. */
static const char *row_value(emitter *e, const ir_node *x) {
    static const ictx no_index = {LOOP_FLAT, 0, 0, {0}, {0}};
    if (ir_index_free(x) && x->mem == MEM_NONE) return read_at(e, x, &no_index);
    return arena_printf(e->a, "%s[%s]", mark(e, x), ir_numel(&x->shape) == 1 && !x->batched ? "0" : "r");
}

static const char *row_ptr(emitter *e, const ir_node *x, long long k) {
    return arena_printf(e->a, "%s + r * %lld", mark(e, x), k);
}

static void emit_row(emitter *e, FILE *o, ir_node *n) {
    ir_node *x = n->op == OP_CROSS_ENTROPY_GRAD ? n->in[1] : n->op == OP_PICK_GRAD ? n : n->in[0];
    long long k = (long long)x->shape.dim[x->shape.rank - 1];
    const char *T = e->T, *ex = fn(e, "exp"), *lg = fn(e, "log");
    char math[256] = "";
    collect_math(n, math, sizeof math, 1);
    fprintf(o, "    /* %s %s = %s(%s) along the last axis (%lld)%s%s */\n", n->cname, shape_of(e, n),
            ir_op_name(n), shape_of(e, x), k, *math ? "; " : "", math);
    fprintf(o, "    for (int r = 0; r < %s; r++) {\n", rows_of(e, x));
    switch (n->op) {
    case OP_SOFTMAX: case OP_LOG_SOFTMAX: case OP_CROSS_ENTROPY: case OP_CROSS_ENTROPY_GRAD: {
        const char *in = n->op == OP_CROSS_ENTROPY_GRAD ? who(e, n->in[1]) : who(e, x);
        mark(e, x);
        fprintf(o, "        const %s *src = %s;\n", T, row_ptr(e, x, k));
        fprintf(o, "        %s mx = src[0], sum = 0;   /* log-sum-exp shift: exp never overflows */\n", T);
        fprintf(o, "        for (int j = 1; j < %lld; j++) mx = src[j] > mx ? src[j] : mx;\n", k);
        fprintf(o, "        for (int j = 0; j < %lld; j++) sum += %s(src[j] - mx);\n", k, ex);
        (void)in;
        if (n->op == OP_SOFTMAX) {
            fprintf(o, "        %s *out = %s;\n", T, row_ptr(e, n, k));
            fprintf(o, "        for (int j = 0; j < %lld; j++) out[j] = %s(src[j] - mx) / sum;\n", k, ex);
        } else if (n->op == OP_LOG_SOFTMAX) {
            fprintf(o, "        %s *out = %s;\n", T, row_ptr(e, n, k));
            fprintf(o, "        const %s lse = mx + %s(sum);\n", T, lg);
            fprintf(o, "        for (int j = 0; j < %lld; j++) out[j] = src[j] - lse;\n", k);
        } else if (n->op == OP_CROSS_ENTROPY) {
            fprintf(o, "        %s[r] = mx + %s(sum) - src[%s[r]];\n", mark(e, n), lg, mark(e, n->in[1]));
        } else {
            fprintf(o, "        %s *out = %s;\n", T, row_ptr(e, n, k));
            fprintf(o, "        const %s dl = %s;\n", T, row_value(e, n->in[0]));
            fprintf(o, "        for (int j = 0; j < %lld; j++) out[j] = dl * %s(src[j] - mx) / sum;\n", k, ex);
            fprintf(o, "        out[%s[r]] -= dl;\n", mark(e, n->in[2]));
        }
        break;
    }
    case OP_PICK:
        fprintf(o, "        %s[r] = %s[r * %lld + %s[r]];\n", mark(e, n), mark(e, x), k, mark(e, n->in[1]));
        break;
    case OP_PICK_GRAD:
        fprintf(o, "        %s *out = %s;\n", T, row_ptr(e, n, k));
        fprintf(o, "        for (int j = 0; j < %lld; j++) out[j] = 0;\n", k);
        fprintf(o, "        out[%s[r]] = %s;\n", mark(e, n->in[1]), row_value(e, n->in[0]));
        break;
    case OP_SOFTMAX_GRAD: case OP_LOG_SOFTMAX_GRAD: {
        ir_node *dy = n->in[0], *y = n->in[1];
        fprintf(o, "        const %s *dsrc = %s, *ysrc = %s;\n", T, row_ptr(e, dy, k), row_ptr(e, y, k));
        fprintf(o, "        %s *out = %s;\n", T, row_ptr(e, n, k));
        fprintf(o, "        %s sum = 0;\n", T);
        if (n->op == OP_SOFTMAX_GRAD) {
            fprintf(o, "        for (int j = 0; j < %lld; j++) sum += dsrc[j] * ysrc[j];\n", k);
            fprintf(o, "        for (int j = 0; j < %lld; j++) out[j] = ysrc[j] * (dsrc[j] - sum);\n", k);
        } else {
            fprintf(o, "        for (int j = 0; j < %lld; j++) sum += dsrc[j];\n", k);
            fprintf(o, "        for (int j = 0; j < %lld; j++) out[j] = dsrc[j] - %s(ysrc[j]) * sum;\n", k, ex);
        }
        break;
    }
    default: break;
    }
    fprintf(o, "    }\n");
}

/* A GEMM operand: where it is, whether it has a batch, its stored [rows, cols] and
 * whether the product reads it transposed. */
typedef struct gop { const ir_node *x; int batched; int64_t r, c; int t; } gop;

static const char *trans(int t) { return t ? "CblasTrans" : "CblasNoTrans"; }

static const char *mul_n(emitter *e, int64_t v) {
    return v == 1 ? "n" : arena_printf(e->a, "n * %lld", (long long)v);
}

static void gemm(emitter *e, FILE *o, const char *ind, int ta, int tb, const char *M, const char *N,
                 const char *K, const char *A, int64_t lda, const char *B, int64_t ldb, const char *beta,
                 const char *C, int64_t ldc) {
    fprintf(o, "%snnr_%cgemm(CblasRowMajor, %s, %s, %s, %s, %s,\n%s            %s, %s, %lld, %s, %lld,\n"
               "%s            %s, %s, %lld);\n",
            ind, e->f[0] ? 's' : 'd', trans(ta), trans(tb), M, N, K, ind, lit(e, 1), A, (long long)lda, B,
            (long long)ldb, ind, beta, C, (long long)ldc);
}

static void emit_conv_weight_grad(emitter *e, FILE *o, ir_node *n);

static void emit_conv_direct(emitter *e, FILE *o, ir_node *n);

static void emit_sparse_product(emitter *e, FILE *o, ir_node *n);

static void emit_matmul(emitter *e, FILE *o, ir_node *n) {
    if (n->direct) {
        emit_conv_direct(e, o, n);
        return;
    }
    if (n->sparse_a) {
        emit_sparse_product(e, o, n);
        return;
    }
    if (n->scratch) {
        emit_conv_weight_grad(e, o, n);
        return;
    }
    ir_mm m = n->mm;
    gop A = {n->in[0], n->in[0]->batched, m.ar, m.ac, m.ta}, B = {n->in[1], n->in[1]->batched, m.br, m.bc, m.tb};
    int64_t p = m.ta ? m.ac : m.ar, k = m.ta ? m.ar : m.ac, q = m.tb ? m.br : m.bc;
    const char *a = mark(e, A.x), *b = mark(e, B.x), *c = mark(e, n);
    int ob = n->batched;
    fprintf(o, "    /* %s %s = %s%s %s @ %s%s %s%s */\n", n->cname, shape_of(e, n), a, A.t ? "^T" : "",
            shape_of(e, A.x), b, B.t ? "^T" : "", shape_of(e, B.x),
            !ob && (A.batched || B.batched) ? ", summed over the batch" : "");
    const char *zero = lit(e, 0);
    if (!A.batched && !B.batched) {
        gemm(e, o, "    ", A.t, B.t, arena_printf(e->a, "%lld", (long long)p), arena_printf(e->a, "%lld", (long long)q),
             arena_printf(e->a, "%lld", (long long)k), a, A.c, b, B.c, zero, c, q);
    } else if (ob && A.batched && !B.batched && (!A.t || p == 1)) {
        /* the batch stacks the rows of A: one GEMM with n·p rows */
        gemm(e, o, "    ", 0, B.t, mul_n(e, p), arena_printf(e->a, "%lld", (long long)q),
             arena_printf(e->a, "%lld", (long long)k), a, k, b, B.c, zero, c, q);
    } else if (ob && !A.batched && B.batched && q == 1) {
        /* one column per example: Cᵀ[n, p] = B[n, k] · op(A)ᵀ */
        gemm(e, o, "    ", 0, !A.t, "n", arena_printf(e->a, "%lld", (long long)p),
             arena_printf(e->a, "%lld", (long long)k), b, k, a, A.c, zero, c, p);
    } else if (!ob && A.batched && B.batched && (A.t || k == 1) && (!B.t || k == 1)) {
        /* summing over the batch stacks the inner dimension: one GEMM with n·k inner */
        gemm(e, o, "    ", 1, 0, arena_printf(e->a, "%lld", (long long)p), arena_printf(e->a, "%lld", (long long)q),
             mul_n(e, k), a, p, b, q, zero, c, q);
    } else {
        fprintf(o, "    for (int b = 0; b < n; b++)\n");
        const char *ap = A.batched ? arena_printf(e->a, "%s + b * %lld", a, (long long)(A.r * A.c)) : a;
        const char *bp = B.batched ? arena_printf(e->a, "%s + b * %lld", b, (long long)(B.r * B.c)) : b;
        const char *cp = ob ? arena_printf(e->a, "%s + b * %lld", c, (long long)(p * q)) : c;
        const char *beta = ob ? zero : arena_printf(e->a, "b ? %s : %s", lit(e, 1), zero);
        gemm(e, o, "        ", A.t, B.t, arena_printf(e->a, "%lld", (long long)p), arena_printf(e->a, "%lld", (long long)q),
             arena_printf(e->a, "%lld", (long long)k), ap, A.c, bp, B.c, beta, cp, q);
    }
}

/* ---- products with a mostly-zero left operand (see fuse.c) ------------------------ */

/* Loops whose iterations each write their own elements, shared among nnc's threads in
 * blocks of consecutive iterations: every element is computed the same way at any thread
 * count (compiled without OpenMP, the pragma is ignored and the loop runs on one). */
#define OMP_ROWS "#pragma omp parallel for num_threads(nnr_threads()) schedule(static)"

/* Output rows `rows` (from 0), columns q0 .. q0 + w: each row sums, in registers, its
 * listed nonzeros times the rows of B they select.  acc is two-dimensional, vector
 * registers of lanes, on purpose: GCC 12 turns a flat acc[w] summed over a list into
 * gathers (measured 2-5x slower), and vectorizes this form without a pragma. */
static void sparse_block(emitter *e, FILE *o, const char *rows, long long L, long long q, long long w,
                         const char *B, const char *C, const char *ind, int parallel) {
    const char *T = e->T;
    long long lanes = 64 / (e->f[0] ? 4 : 8), vbs = w % lanes == 0 ? w / lanes : 1;
    if (w % lanes) lanes = w;
    if (parallel) fprintf(o, "%s%s\n", ind, OMP_ROWS);
    fprintf(o, "%sfor (int r = 0; r < %s; r++) {\n", ind, rows);
    fprintf(o, "%s    %s acc[%lld][%lld];\n", ind, T, vbs, lanes);
    fprintf(o, "%s    for (int vb = 0; vb < %lld; vb++)\n", ind, vbs);
    fprintf(o, "%s        for (int lane = 0; lane < %lld; lane++) acc[vb][lane] = %s;\n", ind, lanes, lit(e, 0));
    fprintf(o, "%s    for (int zi = 0; zi < nz_cnt[r]; zi++) {\n", ind);
    fprintf(o, "%s        const %s g = nz_val[(size_t)r * %lld + zi];\n", ind, T, L);
    fprintf(o, "%s        const %s *restrict brow = %s + (size_t)nz_at[(size_t)r * %lld + zi] * %lld + q0;\n", ind, T, B,
            L, q);
    fprintf(o, "%s        for (int vb = 0; vb < %lld; vb++) {\n", ind, vbs);
    fprintf(o, "%s            for (int lane = 0; lane < %lld; lane++)\n", ind, lanes);
    fprintf(o, "%s                acc[vb][lane] = NNR_MADD(g, brow[vb * %lld + lane], acc[vb][lane]);\n", ind, lanes);
    fprintf(o, "%s        }\n%s    }\n", ind, ind);
    fprintf(o, "%s    for (int vb = 0; vb < %lld; vb++)\n", ind, vbs);
    fprintf(o, "%s        for (int lane = 0; lane < %lld; lane++)\n", ind, lanes);
    fprintf(o, "%s            %s[(size_t)r * %lld + q0 + vb * %lld + lane] = acc[vb][lane];\n", ind, C, q, lanes);
    fprintf(o, "%s}\n", ind);
}

/* C = A · B (form 1: A's rows stacked by the batch) or Aᵀ · B summed over the batch
 * (form 2), A mostly zero: the GEMM, or per output row the list of A's nonzeros that
 * meet it (a row of A for form 1, a column for form 2) and sparse_block's sums, runs of
 * 512 bytes of columns first (16 vector registers), then the rest. */
static void emit_sparse_product(emitter *e, FILE *o, ir_node *n) {
    ir_mm m = n->mm;
    int form = fuse_sparse_form(n);
    long long p = m.ta ? m.ac : m.ar, k = m.ta ? m.ar : m.ac, q = m.bc, batch = e->g->train.batch;
    const char *T = e->T, *a = mark(e, n->in[0]), *b = mark(e, n->in[1]), *c = mark(e, n);
    long long total = p * k, L = form == 1 ? k : batch * k, at = (long long)n->scratch_offset;
    long long lists = total * batch;   /* A's elements in a batch */
    const char *rows = form == 1 ? mul_n(e, p) : arena_printf(e->a, "%lld", p);
    fprintf(o, "    /* %s %s = %s%s %s @ %s %s%s */\n", n->cname, shape_of(e, n), a, form == 2 ? "^T" : "",
            shape_of(e, n->in[0]), b, shape_of(e, n->in[1]), form == 2 ? ", summed over the batch" : "");
    fprintf(o, "    /* %s is mostly zero where relu's gradient or dropout zeroes it: when at most\n"
               "     * NNR_GEMM_SPARSE_BELOW of it is nonzero, each row of %s sums only the rows\n"
               "     * of %s that a nonzero of %s meets,\n"
               "     * a run of columns at a time in registers. */\n",
            a, c, b, form == 1 ? arena_printf(e->a, "its row of %s", a) : arena_printf(e->a, "its column of %s", a));
    fprintf(o, "    {\n");
    fprintf(o, "        int32_t *restrict nz_at = (int32_t *)(m->acts + %lld);   /* the nonzeros' positions */\n", at);
    fprintf(o, "        %s *restrict nz_val = m->acts + %lld;   /* their values */\n", T, at + lists);
    fprintf(o, "        int32_t *restrict nz_cnt = (int32_t *)(m->acts + %lld);   /* how many per output row */\n",
            at + 2 * lists);
    fprintf(o, "        int nonzero = 0;\n");
    fprintf(o, "        for (int i = 0; i < %s; i++) nonzero += %s[i] != 0;\n", mul_n(e, total), a);
    int large = (double)lists * (double)q >= (double)(1 << 27);   /* multiply-adds of the dense path, a batch */
    fprintf(o, "        if (nonzero > %s * nnr_gemm_sparse_limit(NNR_GEMM_SPARSE_BELOW, %d)) {%s\n", mul_n(e, total), large,
            large ? "   /* a large product: 3/4 of the fraction */" : "");
    const char *in3 = "            ";
    if (form == 1)
        gemm(e, o, in3, 0, 0, mul_n(e, p), arena_printf(e->a, "%lld", q), arena_printf(e->a, "%lld", k), a, k, b, q,
             lit(e, 0), c, q);
    else
        gemm(e, o, in3, 1, 0, arena_printf(e->a, "%lld", p), arena_printf(e->a, "%lld", q), mul_n(e, k), a, p, b, q,
             lit(e, 0), c, q);
    fprintf(o, "        } else {\n");
    if (form == 1) {   /* row r of A: its nonzero columns */
        fprintf(o, "            for (int r = 0; r < %s; r++) {\n", rows);
        fprintf(o, "                int count = 0;\n");
        fprintf(o, "                for (int j = 0; j < %lld; j++) {\n", k);
        fprintf(o, "                    const %s av = %s[(size_t)r * %lld + j];\n", T, a, k);
        fprintf(o, "                    nz_at[(size_t)r * %lld + count] = j;\n", L);
        fprintf(o, "                    nz_val[(size_t)r * %lld + count] = av;\n", L);
        fprintf(o, "                    count += av != 0;\n                }\n");
        fprintf(o, "                nz_cnt[r] = count;\n            }\n");
    } else {   /* column i of A: its nonzero rows, over the batch */
        fprintf(o, "            for (int i = 0; i < %lld; i++) nz_cnt[i] = 0;\n", p);
        fprintf(o, "            for (int r = 0; r < %s; r++)\n", mul_n(e, k));
        fprintf(o, "                for (int i = 0; i < %lld; i++) {\n", p);
        fprintf(o, "                    const %s av = %s[(size_t)r * %lld + i];\n", T, a, p);
        fprintf(o, "                    nz_at[(size_t)i * %lld + nz_cnt[i]] = r;\n", L);
        fprintf(o, "                    nz_val[(size_t)i * %lld + nz_cnt[i]] = av;\n", L);
        fprintf(o, "                    nz_cnt[i] += av != 0;\n                }\n");
    }
    long long run = 512 / (e->f[0] ? 4 : 8), lanes = 64 / (e->f[0] ? 4 : 8);
    long long full = q / run * run, rest = q - full, mid = rest / lanes * lanes, tail = rest - mid;
    const char *in4 = "                ";
    if (full) {
        /* one output row per iteration: the rows are shared among nnc's threads */
        fprintf(o, "            %s collapse(2)\n", OMP_ROWS);
        fprintf(o, "            for (int q0 = 0; q0 < %lld; q0 += %lld)\n", full, run);
        sparse_block(e, o, rows, L, q, run, b, c, in4, 0);
    }
    if (mid) {
        fprintf(o, "            {\n                const int q0 = %lld;\n", full);
        sparse_block(e, o, rows, L, q, mid, b, c, in4, 1);
        fprintf(o, "            }\n");
    }
    if (tail) {
        fprintf(o, "            {\n                const int q0 = %lld;\n", full + mid);
        sparse_block(e, o, rows, L, q, tail, b, c, in4, 1);
        fprintf(o, "            }\n");
    }
    fprintf(o, "        }\n    }\n");
}

static void emit_dense(emitter *e, FILE *o, ir_node *n) {
    ir_node *x = n->in[0], *w = n->in[1], *bias = n->nin == 3 ? n->in[2] : NULL;
    int64_t units = w->shape.dim[0], in = w->shape.dim[1], rows = ir_numel(&x->shape) / in;
    const char *M = x->batched ? mul_n(e, rows) : arena_printf(e->a, "%lld", (long long)rows);
    fprintf(o, "    /* %s %s = %s %s @ %s^T [%lld, %lld]%s%s */\n", n->cname, shape_of(e, n), mark(e, x),
            shape_of(e, x), mark(e, w), (long long)units, (long long)in, bias ? " + " : "", bias ? mark(e, bias) : "");
    if (bias) {
        fprintf(o, "    for (int r = 0; r < %s; r++)   /* start from the bias, then accumulate the product */\n", M);
        fprintf(o, "        memcpy(%s + r * %lld, %s, %lld * sizeof(%s));\n", mark(e, n), (long long)units,
                mark(e, bias), (long long)units, e->T);
    }
    gemm(e, o, "    ", 0, 1, M, arena_printf(e->a, "%lld", (long long)units), arena_printf(e->a, "%lld", (long long)in),
         mark(e, x), in, mark(e, w), in, bias ? lit(e, 1) : lit(e, 0), mark(e, n), units);
}

/* Outer rows before `axis` (times the batch) and the elements after it, for block copies. */
static const char *outer_rows(emitter *e, const ir_node *x, int axis) {
    int64_t p = 1;
    for (int i = 0; i < axis; i++) p *= x->shape.dim[i];
    if (!x->batched) return arena_printf(e->a, "%lld", (long long)p);
    return p == 1 ? "n" : arena_printf(e->a, "n * %lld", (long long)p);
}

static int64_t inner_size(const ir_node *x, int axis) {
    int64_t q = 1;
    for (int i = axis + 1; i < x->shape.rank; i++) q *= x->shape.dim[i];
    return q;
}

/* transpose, concat, slice and pad (slice's gradient): copies of contiguous blocks. */
static void emit_copy(emitter *e, FILE *o, ir_node *n) {
    ir_node *x = n->in[0];
    const char *T = e->T, *out = mark(e, n), *src = mark(e, x);
    if (n->op == OP_PAD_ADD) {   /* in place: `out` is the memory of the first slice's gradient */
        const ir_node *gr = n->in[1];
        long long inner = (long long)inner_size(n, n->axis), whole = (long long)n->shape.dim[n->axis];
        long long start = (long long)n->attr[0], len = (long long)(n->attr[1] - n->attr[0]);
        fprintf(o, "    /* %s %s += %s %s into [%lld, %lld) along axis %d (a slice's gradient, in place) */\n", out,
                shape_of(e, n), mark(e, gr), shape_of(e, gr), start, start + len, n->axis);
        fprintf(o, "    for (int r = 0; r < %s; r++)\n", outer_rows(e, n, n->axis));
        fprintf(o, "        for (int i = 0; i < %lld; i++)\n", len * inner);
        fprintf(o, "            %s[r * %lld + %lld + i] += %s[r * %lld + i];\n", out, whole * inner, start * inner,
                mark(e, gr), len * inner);
        return;
    }
    fprintf(o, "    /* %s %s = %s(%s %s", n->cname, shape_of(e, n), ir_op_name(n), who(e, x), shape_of(e, x));
    if (n->op == OP_CONCAT) fprintf(o, ", %s %s", who(e, n->in[1]), shape_of(e, n->in[1]));
    if (n->op == OP_TRANSPOSE) fprintf(o, ") */\n");
    else if (n->op == OP_CONCAT) fprintf(o, ", axis=%d) */\n", n->axis);
    else fprintf(o, ", axis=%d, [%lld, %lld)) */\n", n->axis, (long long)n->attr[0], (long long)n->attr[1]);
    if (n->op == OP_TRANSPOSE) {
        long long r0 = (long long)x->shape.dim[0], c0 = (long long)x->shape.dim[1];
        const char *base = x->batched ? arena_printf(e->a, "b * %lld + ", r0 * c0) : "";
        fprintf(o, "%s", x->batched ? "    for (int b = 0; b < n; b++)\n" : "");
        const char *ind = x->batched ? "        " : "    ";
        fprintf(o, "%sfor (int i = 0; i < %lld; i++)\n%s    for (int j = 0; j < %lld; j++)\n", ind, c0, ind, r0);
        fprintf(o, "%s        %s[%si * %lld + j] = %s[%sj * %lld + i];\n", ind, out, base, r0, src, base, c0);
        return;
    }
    const ir_node *wide = n->op == OP_SLICE ? x : n;     /* the tensor with the whole axis */
    long long inner = (long long)inner_size(wide, n->axis), whole = (long long)wide->shape.dim[n->axis];
    const char *rows = outer_rows(e, wide, n->axis);
    if (n->op == OP_CONCAT) {
        ir_node *y = n->in[1];
        long long ka = (long long)x->shape.dim[n->axis], kb = (long long)y->shape.dim[n->axis];
        fprintf(o, "    for (int r = 0; r < %s; r++) {\n", rows);
        fprintf(o, "        memcpy(%s + r * %lld, %s + r * %lld, %lld * sizeof(%s));\n", out, whole * inner, src,
                ka * inner, ka * inner, T);
        fprintf(o, "        memcpy(%s + r * %lld + %lld, %s + r * %lld, %lld * sizeof(%s));\n", out, whole * inner,
                ka * inner, mark(e, y), kb * inner, kb * inner, T);
        fprintf(o, "    }\n");
        return;
    }
    long long start = (long long)n->attr[0], len = (long long)(n->attr[1] - n->attr[0]);
    if (n->op == OP_SLICE) {
        fprintf(o, "    for (int r = 0; r < %s; r++)\n", rows);
        fprintf(o, "        memcpy(%s + r * %lld, %s + r * %lld + %lld, %lld * sizeof(%s));\n", out, len * inner, src,
                whole * inner, start * inner, len * inner, T);
        return;
    }
    fprintf(o, "    memset(%s, 0, (size_t)(%s) * %lld * sizeof(%s));   /* zero outside the slice */\n", out, rows,
            whole * inner, T);
    fprintf(o, "    for (int r = 0; r < %s; r++)\n", rows);
    fprintf(o, "        memcpy(%s + r * %lld + %lld, %s + r * %lld, %lld * sizeof(%s));\n", out, whole * inner,
            start * inner, src, len * inner, len * inner, T);
}

/* im2col / col2im: one row per kernel tap (c, i, j) of each example, holding what the
 * tap sees at every output position (zero in the padding); col2im adds the rows back
 * onto the positions they came from (its transpose).  With stride 1 a row's inner loop
 * is a contiguous copy. */
static int conv_padded(const ir_conv *g) {
    return g->ph || g->pw || (g->oh - 1) * g->sh + g->kh > g->h + g->ph || (g->ow - 1) * g->sw + g->kw > g->w + g->pw ||
           (g->oh - 1) * g->sh + g->kh - g->ph > g->h || (g->ow - 1) * g->sw + g->kw - g->pw > g->w;
}

/* The loops of im2col (back = 0) or col2im (back = 1) between image I and patches C, at
 * indentation ind; over the batch when nb is given, else for the example b in scope, whose
 * patches are at C's start when one_col (a buffer for one example). */
static void im2col_loops(emitter *e, FILE *o, const ir_conv *g, int back, const char *I, const char *C,
                         const char *nb, int one_col, const char *ind) {
    long long k = (long long)(g->c * g->kh * g->kw), p = (long long)(g->oh * g->ow), hw = (long long)(g->h * g->w);
    const char *T = e->T;
    /* taps can fall outside the image with padding before, or after (same with an even kernel) */
    int padded = conv_padded(g);
    const char *in = ind;
    if (nb) {
        fprintf(o, "%sfor (int b = 0; b < %s; b++)\n", ind, nb);
        in = arena_printf(e->a, "%s    ", ind);
    }
    fprintf(o, "%sfor (int ci = 0; ci < %lld; ci++)%s\n", in, (long long)g->c, back ? " {" : "");
    if (back)   /* zeroed plane by plane, while it is in cache for the taps that follow */
        fprintf(o, "%s    memset(%s + ((size_t)b * %lld + ci) * %lld, 0, %lld * sizeof(%s));\n", in, I, (long long)g->c,
                hw, hw, T);
    fprintf(o, "%s    for (int ki = 0; ki < %lld; ki++)\n", in, (long long)g->kh);
    fprintf(o, "%s        for (int kj = 0; kj < %lld; kj++) {\n", in, (long long)g->kw);
    fprintf(o, "%s            %s%s *restrict row = %s + ((size_t)%s * %lld + (ci * %lld + ki) * %lld + kj) * %lld;\n", in,
            back ? "const " : "", T, C, one_col ? "0" : "b", k, (long long)g->kh, (long long)g->kw, p);
    fprintf(o, "%s            %s%s *restrict img = %s + ((size_t)b * %lld + ci) * %lld;\n", in, back ? "" : "const ", T,
            I, (long long)g->c, hw);
    fprintf(o, "%s            for (int oi = 0; oi < %lld; oi++) {\n", in, (long long)g->oh);
    fprintf(o, "%s                const int ii = oi * %lld - %lld + ki;\n", in, (long long)g->sh, (long long)g->ph);
    if (padded) {
        fprintf(o, "%s                if (ii < 0 || ii >= %lld) {\n", in, (long long)g->h);
        if (!back) fprintf(o, "%s                    memset(row + oi * %lld, 0, %lld * sizeof(%s));\n", in,
                           (long long)g->ow, (long long)g->ow, T);
        fprintf(o, "%s                    continue;\n%s                }\n", in, in);
    }
    fprintf(o, "%s                for (int oj = 0; oj < %lld; oj++) {\n", in, (long long)g->ow);
    fprintf(o, "%s                    const int jj = oj * %lld - %lld + kj;\n", in, (long long)g->sw, (long long)g->pw);
    const char *at = arena_printf(e->a, "img[ii * %lld + jj]", (long long)g->w);
    const char *r = arena_printf(e->a, "row[oi * %lld + oj]", (long long)g->ow);
    const char *inside = arena_printf(e->a, "jj >= 0 && jj < %lld", (long long)g->w);
    const char *stmt = back && padded ? arena_printf(e->a, "if (%s) %s += %s;", inside, at, r)
                     : back           ? arena_printf(e->a, "%s += %s;", at, r)
                     : padded         ? arena_printf(e->a, "%s = %s ? %s : %s;", r, inside, at, lit(e, 0))
                                      : arena_printf(e->a, "%s = %s;", r, at);
    fprintf(o, "%s                    %s\n", in, stmt);
    fprintf(o, "%s                }\n%s            }\n%s        }\n", in, in, in);
    if (back) fprintf(o, "%s}\n", in);
}

/* im2col / col2im: one row per kernel tap (c, i, j) of each example, holding what the
 * tap sees at every output position (zero in the padding); col2im adds the rows back
 * onto the positions they came from (its transpose).  With stride 1 a row's inner loop
 * is a contiguous copy. */
static void emit_conv_input_grad(emitter *e, FILE *o, ir_node *n);

static void emit_im2col(emitter *e, FILE *o, ir_node *n) {
    if (n->scratch) {
        emit_conv_input_grad(e, o, n);
        return;
    }
    int back = n->op == OP_COL2IM;
    const ir_node *img = back ? n : n->in[0], *col = back ? n->in[0] : n;
    ir_conv g = n->conv;
    fprintf(o, "    /* %s %s = %s(%s %s): kernel %lldx%lld, stride %lldx%lld, padding %lldx%lld before */\n",
            n->cname, shape_of(e, n), ir_op_name(n), who(e, n->in[0]), shape_of(e, n->in[0]), (long long)g.kh,
            (long long)g.kw, (long long)g.sh, (long long)g.sw, (long long)g.ph, (long long)g.pw);
    im2col_loops(e, o, &g, back, mark(e, img), mark(e, col), img->batched ? "n" : "1", 0, "    ");
}

/* ---- a convolution's gradients, with a path for sparse dY (see fuse.c) ------------- */

typedef struct convgeo {
    long long c, h, w, f, kh, kw, sh, sw, ph, pw, oh, ow, hp, wp, k, p;
} convgeo;

static convgeo conv_geo(const ir_conv *g, int64_t filters) {
    convgeo v = {g->c, g->h, g->w, filters, g->kh, g->kw, g->sh, g->sw, g->ph, g->pw, g->oh, g->ow, 0, 0, 0, 0};
    int64_t hp, wp;
    fuse_conv_extent(g, &hp, &wp);
    v.hp = hp;
    v.wp = wp;
    v.k = v.c * v.kh * v.kw;
    v.p = v.oh * v.ow;
    return v;
}

/* Counts example b's nonzeros of dY (a loop the compiler vectorizes); the path is chosen
 * on the count. */
static void count_nonzeros(emitter *e, FILE *o, const char *dy, const convgeo *v) {
    fprintf(o, "            const %s *restrict dy = %s + (size_t)b * %lld;\n", e->T, dy, v->f * v->p);
    fprintf(o, "            int nonzero = 0;\n");
    fprintf(o, "            for (int i = 0; i < %lld; i++) nonzero += dy[i] != 0;\n", v->f * v->p);
}

/* Filter f's nonzeros when dY is max pooling's gradient R (fuse.c): one per window at
 * most, at its first maximum (as PyTorch breaks ties; the first tap when the maximum is
 * NaN), where R's expression is evaluated with the window's gradient; listed with their
 * values (nzv), and summed for the bias gradient when the block computes it. */
static void pooled_nonzeros(emitter *e, FILE *o, const convgeo *v, const ir_node *owner) {
    const ir_node *p = owner->pool, *r = p->epi;
    const ir_conv *q = &p->conv;
    const char *T = e->T;
    long long kh = q->kh, kw = q->kw, W = v->ow, pw = q->ow, nw = q->oh * q->ow;
    if (owner->pool_sum) fprintf(o, "                %s bsum = %s;\n", T, lit(e, 0));
    fprintf(o, "                for (int oi = 0; oi < %lld; oi++) {   /* every window: its maximum's position and value */\n",
            (long long)q->oh);
    fprintf(o, "                    #pragma omp simd%s\n", owner->pool_sum ? " reduction(+:bsum)" : "");
    fprintf(o, "                    for (int oj = 0; oj < %lld; oj++) {\n", pw);
    fprintf(o, "                        const size_t first = (((size_t)b * %lld + f) * %lld + oi * %lld) * %lld + oj * %lld;\n",
            v->f, v->oh, kh, W, kw);
    const char *window = arena_printf(e->a, "(((size_t)b * %lld + f) * %lld + oi) * %lld + oj", v->f, (long long)q->oh, pw);
    if (p->pooled) {   /* the convolution recorded the pick (fuse.c) */
        fprintf(o, "                        const int pick = picks[%s];\n", window);
    } else {
        const char *X = mark(e, p->in[1]);
        fprintf(o, "                        %s acc = %s[first];\n", T, X);
        fprintf(o, "                        for (int ki = 0; ki < %lld; ki++)\n", kh);
        fprintf(o, "                            for (int kj = 0; kj < %lld; kj++)\n", kw);
        fprintf(o, "                                acc = %s[first + ki * %lld + kj] > acc ? %s[first + ki * %lld + kj] : acc;\n", X, W, X, W);
        fprintf(o, "                        int pick = 0;   /* the first tap at the maximum */\n");
        fprintf(o, "                        for (int ki = %lld; ki >= 0; ki--)\n", kh - 1);
        fprintf(o, "                            for (int kj = %lld; kj >= 0; kj--)\n", kw - 1);
        fprintf(o, "                                pick = %s[first + ki * %lld + kj] == acc ? ki * %lld + kj : pick;\n", X, W, kw);
    }
    fprintf(o, "                        const size_t i = first + (size_t)(pick / %lld) * %lld + pick %% %lld;\n", kw, W, kw);
    fprintf(o, "                        const %s gv = %s[%s];\n", T, mark(e, p->in[0]), window);
    if (p->pooled)
        fprintf(o, "                        const %s pv = %s[%s];   /* %s at the pick */\n", T, mark(e, p->pooled), window,
                label(e, p->in[1]));
    /* R's expression at i (flat: fuse.c checked every operand has R's layout), with gv for the pooling's gradient
     * and, when the convolution pooled, the window's maximum for the pooling's input */
    ictx flat = {LOOP_FLAT, r->batched, 0, {0}, {0}};
    e->subst = p;
    e->subst_value = "gv";
    e->subst2 = p->pooled ? p->in[1] : NULL;
    e->subst2_value = "pv";
    const char *val = expr(e, r, &flat);
    e->subst = e->subst2 = NULL;
    fprintf(o, "                        const %s gz = %s;\n", T, val);
    fprintf(o, "                        nz[oi * %lld + oj] = (int)(i - ((size_t)b * %lld + f) * %lld);\n", pw, v->f, v->p);
    fprintf(o, "                        nzv[oi * %lld + oj] = gz;\n", pw);
    if (owner->pool_sum) fprintf(o, "                        bsum += gz;\n");
    fprintf(o, "                    }\n                }\n");
    if (owner->pool_sum) fprintf(o, "                %s[f] += bsum;\n", mark(e, owner->pool_sum));
    fprintf(o, "                int count = 0;   /* the nonzeros, moved to the front */\n");
    fprintf(o, "                for (int z = 0; z < %lld; z++) {\n", nw);
    fprintf(o, "                    nz[count] = nz[z];\n                    nzv[count] = nzv[z];\n");
    fprintf(o, "                    count += nzv[z] != 0;\n                }\n");
}

/* Filter f's nonzeros of the example, one at a time: their positions are listed in nz
 * without a branch per element (whose outcome would be a coin toss), then each g =
 * dY[f, oi, oj] meets, for every kernel row ki, the run of kw·C channel-last values its
 * taps touch (xr, dr) and the filter's row (from w_t, or the sums of dW's row in acc).
 * dW's row is summed in registers over the nonzeros and added once; dX's positions
 * overlap from one nonzero to the next, so they are added in memory. */
static void sparse_filter(emitter *e, FILE *o, const convgeo *v, int dw, int dx, const ir_node *owner) {
    const char *T = e->T;
    long long run = v->kw * v->c, fk = v->kh * run;
    const char *patch = arena_printf(e->a, "((size_t)(nz[z] / %lld * %lld + ki) * %lld + nz[z] %% %lld * %lld) * %lld",
                                     v->ow, v->sh, v->wp, v->ow, v->sw, v->c);
    const char *gz = owner->pool ? "nzv[z]" : "dyf[nz[z]]";
    fprintf(o, "            for (int f = 0; f < %lld; f++) {\n", v->f);
    if (owner->pool) {
        pooled_nonzeros(e, o, v, owner);
    } else {
        fprintf(o, "                const %s *restrict dyf = dy + (size_t)f * %lld;\n", T, v->p);
        fprintf(o, "                int count = 0;\n");
        fprintf(o, "                for (int i = 0; i < %lld; i++) {\n", v->p);
        fprintf(o, "                    nz[count] = i;\n                    count += dyf[i] != 0;\n                }\n");
    }
    if (dw) {
        fprintf(o, "                %s acc[%lld][%lld];   /* dW's row f */\n", T, v->kh, run);
        fprintf(o, "                for (int ki = 0; ki < %lld; ki++)\n", v->kh);
        fprintf(o, "                    for (int t = 0; t < %lld; t++) acc[ki][t] = %s;\n", run, lit(e, 0));
        fprintf(o, "                for (int z = 0; z < count; z++) {\n");
        fprintf(o, "                    const %s g = %s;\n", T, gz);
        fprintf(o, "                    for (int ki = 0; ki < %lld; ki++) {\n", v->kh);
        fprintf(o, "                        const %s *restrict xr = x_hwc + %s;\n", T, patch);
        fprintf(o, "                        #pragma omp simd\n");
        fprintf(o, "                        for (int t = 0; t < %lld; t++) acc[ki][t] = NNR_MADD(g, xr[t], acc[ki][t]);\n", run);
        fprintf(o, "                    }\n                }\n");
        fprintf(o, "                for (int ki = 0; ki < %lld; ki++)\n", v->kh);
        fprintf(o, "                    for (int t = 0; t < %lld; t++) dw_t[(size_t)f * %lld + ki * %lld + t] += acc[ki][t];\n",
                run, fk, run);
    }
    if (dx) {
        fprintf(o, "                const %s *restrict wf = w_t + (size_t)f * %lld;\n", T, fk);
        fprintf(o, "                for (int z = 0; z < count; z++) {\n");
        fprintf(o, "                    const %s g = %s;\n", T, gz);
        fprintf(o, "                    for (int ki = 0; ki < %lld; ki++) {\n", v->kh);
        fprintf(o, "                        %s *restrict dr = dx_hwc + %s;\n", T, patch);
        fprintf(o, "                        #pragma omp simd\n");
        fprintf(o, "                        for (int t = 0; t < %lld; t++) dr[t] = NNR_MADD(g, wf[ki * %lld + t], dr[t]);\n", run, run);
        fprintf(o, "                    }\n                }\n");
    }
    fprintf(o, "            }\n");
}

/* An example's image between channel-first [C, H, W] and the padded channel-last
 * [Hp, Wp, C] (to_hwc), a row of the image at a time, so that both sides stay in cache. */
static void relayout(FILE *o, const convgeo *v, int to_hwc, const char *dst, const char *src) {
    const char *chw = "[(ci * %lld + ii) * %lld + jj]", *hwc = "[((ii + %lld) * %lld + jj + %lld) * %lld + ci]";
    char a[160], b[160];
    snprintf(a, sizeof a, chw, v->h, v->w);
    snprintf(b, sizeof b, hwc, v->ph, v->wp, v->pw, v->c);
    const char *outer = "ii", *mid = to_hwc ? "jj" : "ci", *inner = to_hwc ? "ci" : "jj";
    long long n0 = v->h, n1 = to_hwc ? v->w : v->c, n2 = to_hwc ? v->c : v->w;
    fprintf(o, "            for (int %s = 0; %s < %lld; %s++)\n", outer, outer, n0, outer);
    fprintf(o, "                for (int %s = 0; %s < %lld; %s++)\n", mid, mid, n1, mid);
    fprintf(o, "                    for (int %s = 0; %s < %lld; %s++)\n", inner, inner, n2, inner);
    fprintf(o, "                        %s%s = %s%s;\n", dst, to_hwc ? b : a, src, to_hwc ? a : b);
}

/* The dense path of a convolution's gradients for example b: taken when more than
 * NNR_CONV_SPARSE_BELOW of its dY is nonzero; two GEMMs (the weights' over the example's
 * im2col, rebuilt here when there is no im2col tensor) and col2im. */
static void emit_dense_conv_grads(emitter *e, FILE *o, ir_node *wn, ir_node *xn, const convgeo *vg, int one_col) {
    convgeo v = *vg;
    ir_node *prod = xn ? xn->in[0] : NULL;
    const ir_node *col = wn ? wn->in[1] : NULL;
    const char *dy = mark(e, wn ? wn->in[0] : prod->in[1]);
    const char *dw = wn ? mark(e, wn) : NULL, *cl = wn && !one_col ? mark(e, col) : NULL,
               *X = wn ? mark(e, col->in[0]) : NULL;
    const char *dx = xn ? mark(e, xn) : NULL, *dcol = xn ? mark(e, prod) : NULL, *W = xn ? mark(e, prod->in[0]) : NULL;
    long long fp = v.f * v.p;
    count_nonzeros(e, o, dy, &v);
    fprintf(o, "            if (nonzero > %lld * NNR_CONV_SPARSE_BELOW) {   /* dense: GEMMs%s */\n", fp,
            xn ? " and col2im" : "");
    const char *ind = "                ";
    if (one_col) im2col_loops(e, o, &col->conv, 0, X, "col_b", NULL, 1, ind);
    if (wn)
        gemm(e, o, ind, 0, 1, arena_printf(e->a, "%lld", v.f), arena_printf(e->a, "%lld", v.k),
             arena_printf(e->a, "%lld", v.p), "dy", v.p,
             one_col ? "col_b" : arena_printf(e->a, "%s + (size_t)b * %lld", cl, v.k * v.p), v.p, lit(e, 1), dw, v.k);
    if (xn) {
        gemm(e, o, ind, 1, 0, arena_printf(e->a, "%lld", v.k), arena_printf(e->a, "%lld", v.p),
             arena_printf(e->a, "%lld", v.f), W, v.k, "dy", v.p, lit(e, 0),
             arena_printf(e->a, "%s + (size_t)b * %lld", dcol, v.k * v.p), v.p);
        im2col_loops(e, o, &xn->conv, 1, dx, dcol, NULL, 0, ind);
    }
    fprintf(o, "                continue;\n            }\n");
}

/* A convolution's gradients from dY [B, F, P]: the weights' dW = dY · colᵀ summed over
 * the batch (node wn) and the input's dX = col2im(Wᵀ · dY) (node xn), either of which may
 * be absent.  Per example, a GEMM path or, for a mostly-zero dY, the sparse one; only
 * the sparse one when max pooling's windows list dY's nonzeros (fuse.c). */
static void emit_conv_grads(emitter *e, FILE *o, ir_node *wn, ir_node *xn) {
    ir_node *prod = xn ? xn->in[0] : NULL, *owner = wn ? wn : xn;
    const ir_node *col = wn ? wn->in[1] : NULL;
    convgeo v = wn ? conv_geo(&col->conv, wn->mm.ar) : conv_geo(&xn->conv, prod->mm.ar);
    const ir_node *pool = owner->pool;   /* dY is listed from max pooling's windows: no dense path */
    const char *T = e->T, *dy = pool ? "dY" : mark(e, wn ? wn->in[0] : prod->in[1]);
    int one_col = wn && col->mem == MEM_NONE;   /* no im2col tensor (fuse.c): one example's, rebuilt here */
    const char *dw = wn ? mark(e, wn) : NULL, *cl = wn && !one_col ? who(e, col) : NULL,
               *X = wn ? mark(e, col->in[0]) : NULL;
    const char *dx = xn ? mark(e, xn) : NULL, *dcol = xn ? (pool ? "dcol" : mark(e, prod)) : NULL,
               *W = xn ? mark(e, prod->in[0]) : NULL;
    long long hwc = v.hp * v.wp * v.c, fk = v.f * v.k, at = (long long)owner->scratch_offset;
    if (wn) fprintf(o, "    /* %s %s = %s [B, %lld, %lld] @ %s^T %s, summed over the batch */\n", dw, shape_of(e, wn), dy,
                    v.f, v.p, one_col ? arena_printf(e->a, "im2col(%s)", X) : cl, shape_of(e, col));
    if (xn) fprintf(o, "    /* %s %s = col2im(%s = %s^T [%lld, %lld] @ %s [B, %lld, %lld]) */\n", dx, shape_of(e, xn), dcol,
                    W, v.k, v.f, dy, v.f, v.p);
    if (pool)
        fprintf(o, "    /* dY comes from the gradient of line %d's max pooling (%s): one nonzero per window at\n"
                   "     * most, at the window's maximum, so the windows list them and dY is never stored%s.\n"
                   "     * Each nonzero g adds",
                pool->stmt_line, who(e, pool->in[0]),
                owner->pool_sum ? arena_printf(e->a, ";\n     * %s (its sum per channel) is added up on the way",
                                               owner->pool_sum->cname) : "");
    else
        fprintf(o, "    /* An example whose gradient is mostly zero (after relu and max pooling it is) takes\n"
                   "     * the sparse path: each nonzero g of %s adds", dy);
    fprintf(o, "%s%s%s,\n"
               "     * over images kept channel-last and zero-padded [%lld, %lld, %lld] and filters\n"
               "     * in [F, kh, kw, C] order. */\n",
            wn ? " g times the patch it saw to dW" : "", wn && xn ? "\n     * and" : "",
            xn ? " g times its filter to the positions the patch came from" : "", v.hp, v.wp, v.c);
    fprintf(o, "    {\n");
    if (wn) {
        fprintf(o, "        %s *restrict x_hwc = m->acts + %lld;   /* the example's input */\n", T, at);
        fprintf(o, "        %s *restrict dw_t = m->acts + %lld;   /* the sparse examples' dW */\n", T, at + 2 * hwc);
    }
    if (xn) {
        fprintf(o, "        %s *restrict dx_hwc = m->acts + %lld;   /* the example's dX */\n", T, at + hwc);
        fprintf(o, "        %s *restrict w_t = m->acts + %lld;   /* the filters */\n", T, at + 2 * hwc + fk);
    }
    fprintf(o, "        int32_t *restrict nz = (int32_t *)(m->acts + %lld);   /* [%lld] */\n", at + 2 * hwc + 2 * fk, v.p);
    if (pool)
        fprintf(o, "        %s *restrict nzv = m->acts + %lld;   /* their values */\n", T, at + 2 * hwc + 2 * fk + v.p);
    if (pool && pool->pooled)
        fprintf(o, "        const uint8_t *restrict picks = (const uint8_t *)(m->acts + %lld);   /* each window's, from the forward pass */\n",
                (long long)pool->pooled->scratch_offset);
    if (one_col && !pool)
        fprintf(o, "        %s *restrict col_b = m->acts + %lld;   /* the example's patches [%lld, %lld] */\n", T,
                at + 2 * hwc + 2 * fk + v.p, v.k, v.p);
    if (wn) {
        fprintf(o, "        memset(x_hwc, 0, %lld * sizeof(%s));   /* the padding stays zero */\n", hwc, T);
        fprintf(o, "        memset(dw_t, 0, %lld * sizeof(%s));\n", fk, T);
        fprintf(o, "        memset(%s, 0, %lld * sizeof(%s));\n", dw, fk, T);
    }
    if (xn) {
        fprintf(o, "        for (int f = 0; f < %lld; f++)\n", v.f);
        fprintf(o, "            for (int ci = 0; ci < %lld; ci++)\n", v.c);
        fprintf(o, "                for (int kk = 0; kk < %lld; kk++)   /* ki * kw + kj */\n", v.kh * v.kw);
        fprintf(o, "                    w_t[(f * %lld + kk) * %lld + ci] = %s[(f * %lld + ci) * %lld + kk];\n", v.kh * v.kw,
                v.c, W, v.c, v.kh * v.kw);
    }
    if (owner->pool_sum)
        fprintf(o, "        memset(%s, 0, %lld * sizeof(%s));\n", mark(e, owner->pool_sum), v.f, T);
    fprintf(o, "        for (int b = 0; b < n; b++) {\n");
    if (!pool) emit_dense_conv_grads(e, o, wn, xn, &v, one_col);

    if (wn) {
        fprintf(o, "            const %s *restrict img = %s + (size_t)b * %lld;\n", T, X, v.c * v.h * v.w);
        relayout(o, &v, 1, "x_hwc", "img");
    }
    if (xn) fprintf(o, "            memset(dx_hwc, 0, %lld * sizeof(%s));\n", hwc, T);
    sparse_filter(e, o, &v, wn != NULL, xn != NULL, owner);
    if (xn) {
        fprintf(o, "            %s *restrict out = %s + (size_t)b * %lld;\n", T, dx, v.c * v.h * v.w);
        relayout(o, &v, 0, "out", "dx_hwc");
    }
    fprintf(o, "        }\n");
    if (wn) {
        fprintf(o, "        for (int f = 0; f < %lld; f++)\n", v.f);
        fprintf(o, "            for (int ci = 0; ci < %lld; ci++)\n", v.c);
        fprintf(o, "                for (int kk = 0; kk < %lld; kk++)\n", v.kh * v.kw);
        fprintf(o, "                    %s[(f * %lld + ci) * %lld + kk] += dw_t[(f * %lld + kk) * %lld + ci];\n", dw, v.c,
                v.kh * v.kw, v.kh * v.kw, v.c);
    }
    fprintf(o, "    }\n");
}

static void emit_conv_weight_grad(emitter *e, FILE *o, ir_node *n) { emit_conv_grads(e, o, n, n->also); }

/* ---- epilogues (see fuse.c) --------------------------------------------------------- */

/* The statement storing value, node p's element at c's index: p's own, or that of the
 * node whose expression its code computes, with value in place of p. */
static const char *store(emitter *e, const ir_node *p, const ictx *c, const char *own, const char *value) {
    if (!p->epi) return arena_printf(e->a, "%s = %s;", own, value);
    e->subst = p;
    e->subst_value = arena_printf(e->a, "(%s)", value);
    const char *v = expr(e, p->epi, c);
    e->subst = NULL;
    return arena_printf(e->a, "%s[%s] = %s;", mark(e, p->epi), index_of(e, p->epi, c), v);
}

/* A comment line saying what an epilogue writes. */
static void epilogue_note(emitter *e, FILE *o, const ir_node *p, const char *ind) {
    if (!p->epi) return;
    char math[512] = "";
    if (p->epi->pass == IR_BWD) collect_math(p->epi, math, sizeof math, 1);
    fprintf(o, "%s/* ... and written through %s %s%s%s, computed as each element is stored */\n", ind, p->epi->cname,
            shape_of(e, p->epi), *math ? ": " : "", math);
}

/* ---- the forward convolution, computed directly (see fuse.c) ----------------------- */

/* One block of q output positions (from oj) of output row oi times fbn filters (from
 * fb): its sums stay in registers (acc) while every tap adds in, each tap one input
 * value times a contiguous run of filters. */
static void direct_block(emitter *e, FILE *o, const ir_node *n, const ictx *c, const convgeo *v, long long q,
                         long long fbn, const char *ind) {
    const char *T = e->T;
    fprintf(o, "%s    %s acc[%lld][%lld];\n", ind, T, q, fbn);
    fprintf(o, "%s    for (int qi = 0; qi < %lld; qi++)\n", ind, q);
    fprintf(o, "%s        for (int f = 0; f < %lld; f++) acc[qi][f] = %s;\n", ind, fbn, lit(e, 0));
    fprintf(o, "%s    for (int ki = 0; ki < %lld; ki++)\n", ind, v->kh);
    fprintf(o, "%s        for (int kj = 0; kj < %lld; kj++) {\n", ind, v->kw);
    fprintf(o, "%s            const %s *restrict xr = x_hwc + ((size_t)(oi * %lld + ki) * %lld + oj * %lld + kj) * %lld;\n",
            ind, T, v->sh, v->wp, v->sw, v->c);
    fprintf(o, "%s            const %s *restrict wr = w_t + (size_t)(ki * %lld + kj) * %lld + fb;\n", ind, T, v->kw,
            v->c * v->f);
    fprintf(o, "%s            for (int ci = 0; ci < %lld; ci++)\n", ind, v->c);
    fprintf(o, "%s                for (int qi = 0; qi < %lld; qi++) {\n", ind, q);
    fprintf(o, "%s                    const %s xv = xr[qi * %lld + ci];\n", ind, T, v->sw * v->c);
    fprintf(o, "%s                    #pragma omp simd\n", ind);
    fprintf(o, "%s                    for (int f = 0; f < %lld; f++) acc[qi][f] = NNR_MADD(xv, wr[ci * %lld + f], acc[qi][f]);\n", ind, fbn,
            v->f);
    fprintf(o, "%s                }\n%s        }\n", ind, ind);
    fprintf(o, "%s    for (int qi = 0; qi < %lld; qi++)\n", ind, q);
    fprintf(o, "%s        for (int f = 0; f < %lld; f++)\n", ind, fbn);
    fprintf(o, "%s            %s\n", ind,
            store(e, n, c, arena_printf(e->a, "out[((size_t)(fb + f) * %lld + oi) * %lld + oj + qi]", v->oh, v->ow),
                  "acc[qi][f]"));
}

/* The blocks of fbn filters from fb over output rows oi0..oi1 and columns oj0..oj1:
 * rows, then runs of q positions and the row's remainder. */
static void direct_rows(emitter *e, FILE *o, const ir_node *n, const ictx *c, const convgeo *v, long long q,
                        long long fbn, const char *ind, const long long r[4]) {
    long long width = r[3] - r[2];
    if (q > width) q = width;
    long long full = width / q * q, rest = width - full;
    fprintf(o, "%sfor (int oi = %lld; oi < %lld; oi++) {\n", ind, r[0], r[1]);
    const char *in2 = arena_printf(e->a, "%s    ", ind);
    if (full) {
        fprintf(o, "%sfor (int oj = %lld; oj < %lld; oj += %lld) {\n", in2, r[2], r[2] + full, q);
        direct_block(e, o, n, c, v, q, fbn, in2);
        fprintf(o, "%s}\n", in2);
    }
    if (rest) {
        fprintf(o, "%s{\n%s    const int oj = %lld;\n", in2, in2, r[2] + full);
        direct_block(e, o, n, c, v, rest, fbn, in2);
        fprintf(o, "%s}\n", in2);
    }
    fprintf(o, "%s}\n", ind);
}

/* The direct loops over the outputs in rows r[0]..r[1], columns r[2]..r[3], every
 * filter: blocks of fb filters and the remainder. */
static void direct_filters(emitter *e, FILE *o, const ir_node *n, const ictx *c, const convgeo *v, long long q,
                           long long fb, const long long r[4]) {
    long long full = v->f / fb * fb, rest = v->f - full;
    if (full) {
        fprintf(o, "            for (int fb = 0; fb < %lld; fb += %lld)\n", full, fb);
        direct_rows(e, o, n, c, v, q, fb, "                ", r);
    }
    if (rest) {
        fprintf(o, "            {\n                const int fb = %lld;\n", full);
        direct_rows(e, o, n, c, v, q, rest, "                ", r);
        fprintf(o, "            }\n");
    }
}

/* ---- Winograd's F(2x2, 3x3) for a direct convolution (see fuse.c) ------------------ */

/* U = G g Gᵀ for every filter g [3, 3] and channel, stored [16, C, F]:
 * G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1]. */
static void wino_filters(emitter *e, FILE *o, const convgeo *v, const char *W) {
    const char *T = e->T, *h = lit(e, 0.5);
    fprintf(o, "        for (int f = 0; f < %lld; f++)   /* wu = G g G^T, G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1] */\n", v->f);
    fprintf(o, "            for (int ci = 0; ci < %lld; ci++) {\n", v->c);
    fprintf(o, "                const %s *restrict g = %s + ((size_t)f * %lld + ci) * 9;\n", T, W, v->c);
    fprintf(o, "                %s tr[4][3];   /* G g */\n", T);
    fprintf(o, "                for (int j = 0; j < 3; j++) {\n");
    fprintf(o, "                    tr[0][j] = g[j];\n");
    fprintf(o, "                    tr[1][j] = %s * (g[j] + g[3 + j] + g[6 + j]);\n", h);
    fprintf(o, "                    tr[2][j] = %s * (g[j] - g[3 + j] + g[6 + j]);\n", h);
    fprintf(o, "                    tr[3][j] = g[6 + j];\n");
    fprintf(o, "                }\n");
    fprintf(o, "                for (int i = 0; i < 4; i++) {   /* (G g) G^T */\n");
    const char *rows[4] = {"tr[i][0]", "%s * (tr[i][0] + tr[i][1] + tr[i][2])", "%s * (tr[i][0] - tr[i][1] + tr[i][2])",
                           "tr[i][2]"};
    for (int j = 0; j < 4; j++)
        fprintf(o, "                    wu[((i * 4 + %d) * %lld + ci) * %lld + f] = %s;\n", j, v->c, v->f,
                arena_printf(e->a, rows[j], h));
    fprintf(o, "                }\n            }\n");
}

/* V = Bᵀ d B for the tq-th tile d [4, 4] of a block, every channel at once (the loop
 * over channels runs along the channel-last image): Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]. */
static void wino_tiles_in(emitter *e, FILE *o, const convgeo *v, long long tb, const char *ind) {
    const char *T = e->T;
    fprintf(o, "%sfor (int tq = 0; tq < %lld; tq++) {   /* wv = B^T d B */\n", ind, tb);
    fprintf(o, "%s    const %s *restrict dt = x_hwc + ((size_t)(2 * ti) * %lld + 2 * (tj0 + tq)) * %lld;\n", ind, T, v->wp,
            v->c);
    fprintf(o, "%s    #pragma omp simd   /* the tile's arrays are per channel: no dependence */\n", ind);
    fprintf(o, "%s    for (int ci = 0; ci < %lld; ci++) {\n", ind, v->c);
    fprintf(o, "%s        %s ta[4][4], tr[4][4];\n", ind, T);
    fprintf(o, "%s        for (int i = 0; i < 4; i++)\n", ind);
    fprintf(o, "%s            for (int j = 0; j < 4; j++) ta[i][j] = dt[(i * %lld + j) * %lld + ci];\n", ind, v->wp, v->c);
    fprintf(o, "%s        for (int j = 0; j < 4; j++) {   /* B^T d */\n", ind);
    fprintf(o, "%s            tr[0][j] = ta[0][j] - ta[2][j];\n", ind);
    fprintf(o, "%s            tr[1][j] = ta[1][j] + ta[2][j];\n", ind);
    fprintf(o, "%s            tr[2][j] = ta[2][j] - ta[1][j];\n", ind);
    fprintf(o, "%s            tr[3][j] = ta[1][j] - ta[3][j];\n", ind);
    fprintf(o, "%s        }\n", ind);
    fprintf(o, "%s        for (int i = 0; i < 4; i++) {   /* (B^T d) B */\n", ind);
    const char *cols[4] = {"tr[i][0] - tr[i][2]", "tr[i][1] + tr[i][2]", "tr[i][2] - tr[i][1]", "tr[i][1] - tr[i][3]"};
    for (int j = 0; j < 4; j++)
        fprintf(o, "%s            wv[((i * 4 + %d) * %lld + tq) * %lld + ci] = %s;\n", ind, j, tb, v->c, cols[j]);
    fprintf(o, "%s        }\n%s    }\n%s}\n", ind, ind, ind);
}

/* A tile's four outputs, Y = Aᵀ M A, in the order of the block's (and a pooling window's)
 * positions: from the rows of Aᵀ M that wino_at_m() computes. */
static const char *const wino_y[4] = {"r0[0] + r0[1] + r0[2]", "r0[1] - r0[2] - r0[3]", "r1[0] + r1[1] + r1[2]",
                                      "r1[1] - r1[2] - r1[3]"};

/* Aᵀ M for one filter of a tile, M[i][j] at mf[(i * 4 + j) * stride]. */
static void wino_at_m(emitter *e, FILE *o, long long stride, const char *ind) {
    fprintf(o, "%s%s r0[4], r1[4];   /* A^T M */\n", ind, e->T);
    fprintf(o, "%sfor (int j = 0; j < 4; j++) {\n", ind);
    fprintf(o, "%s    r0[j] = mf[j * %lld] + mf[(4 + j) * %lld] + mf[(8 + j) * %lld];\n", ind, stride, stride, stride);
    fprintf(o, "%s    r1[j] = mf[(4 + j) * %lld] - mf[(8 + j) * %lld] - mf[(12 + j) * %lld];\n", ind, stride, stride, stride);
    fprintf(o, "%s}\n", ind);
}

/* A tile's outputs written through the epilogue R into yv (one filter's): oi, oj name the
 * output for R's index. */
static void wino_outputs(emitter *e, FILE *o, const ir_node *n, const ictx *c, long long stride, const char *ind) {
    wino_at_m(e, o, stride, ind);
    fprintf(o, "%s%s yv[4];   /* %s at the block's outputs */\n", ind, e->T, label(e, n->epi));
    for (int k = 0; k < 4; k++) {
        e->subst = n;
        e->subst_value = arena_printf(e->a, "(%s)", wino_y[k]);
        const char *v = expr(e, n->epi, c);
        e->subst = NULL;
        fprintf(o, "%s{\n%s    const int oi = 2 * ti + %d, oj = 2 * (tj0 + tq) + %d;\n%s    yv[%d] = %s;\n%s}\n", ind, ind,
                k / 2, k % 2, ind, k, v, ind);
    }
}

/* The pooled convolution's last stage (fuse.c): each tile's block of outputs through R
 * is one window of the max pooling, whose maximum is stored (as the pooling's own loop
 * finds it, from -inf) with its pick, the first tap at the maximum as the pooling's
 * gradient takes it. */
static void wino_pooled_out(emitter *e, FILE *o, const ir_node *n, const ictx *c, const convgeo *v, long long tb,
                            long long fbn, const char *ind) {
    const char *T = e->T, *P = mark(e, n->pooled);
    int picks = n->pooled->scratch != 0;
    long long ph = v->oh / 2, pw = v->ow / 2;
    fprintf(o, "%sfor (int tq = 0; tq < %lld; tq++) {   /* Y = A^T wm A through %s, and its maximum */\n", ind, tb,
            label(e, n->epi));
    fprintf(o, "%s    %s pm[%lld];\n", ind, T, fbn);
    if (picks) fprintf(o, "%s    uint8_t pk[%lld];\n", ind, fbn);
    fprintf(o, "%s    #pragma omp simd\n", ind);
    fprintf(o, "%s    for (int f = 0; f < %lld; f++) {\n", ind, fbn);
    const char *in2 = arena_printf(e->a, "%s        ", ind);
    fprintf(o, "%sconst %s *restrict mf = wm + tq * %lld + f;   /* M[i][j] at mf[(i * 4 + j) * %lld] */\n", in2, T, fbn,
            tb * fbn);
    wino_outputs(e, o, n, c, tb * fbn, in2);
    fprintf(o, "%s%s mx = -INFINITY;\n", in2, T);
    fprintf(o, "%sfor (int k = 0; k < 4; k++) mx = yv[k] > mx ? yv[k] : mx;\n", in2);
    fprintf(o, "%spm[f] = mx;\n", in2);
    if (picks) {
        fprintf(o, "%s%s best = yv[0];\n", in2, T);
        fprintf(o, "%sfor (int k = 1; k < 4; k++) best = yv[k] > best ? yv[k] : best;\n", in2);
        fprintf(o, "%sint pick = 0;\n", in2);
        fprintf(o, "%sfor (int k = 3; k >= 0; k--) pick = yv[k] == best ? k : pick;\n", in2);
        fprintf(o, "%spk[f] = (uint8_t)pick;\n", in2);
    }
    fprintf(o, "%s    }\n", ind);
    fprintf(o, "%s    for (int f = 0; f < %lld; f++) {\n", ind, fbn);
    const char *at = arena_printf(e->a, "(((size_t)b * %lld + fb + f) * %lld + ti) * %lld + tj0 + tq", v->f, ph, pw);
    fprintf(o, "%s        %s[%s] = pm[f];\n", ind, P, at);
    if (picks) fprintf(o, "%s        picks[%s] = pk[f];\n", ind, at);
    fprintf(o, "%s    }\n%s}\n", ind, ind);
}

/* For fbn filters from fb: the 16 products M = Σ_c V·U of each tile, summed in registers,
 * then Y = Aᵀ M A, Aᵀ = [1 1 1 0; 0 1 -1 -1], stored through the epilogue. */
static void wino_tiles_out(emitter *e, FILE *o, const ir_node *n, const ictx *c, const convgeo *v, long long tb,
                           long long fbn, const char *ind) {
    const char *T = e->T;
    fprintf(o, "%sfor (int xi = 0; xi < 16; xi++) {   /* wm = the sum over channels of wv .* wu */\n", ind);
    fprintf(o, "%s    %s acc[%lld][%lld];\n", ind, T, tb, fbn);
    fprintf(o, "%s    for (int tq = 0; tq < %lld; tq++)\n", ind, tb);
    fprintf(o, "%s        for (int f = 0; f < %lld; f++) acc[tq][f] = %s;\n", ind, fbn, lit(e, 0));
    fprintf(o, "%s    const %s *restrict vx = wv + (size_t)xi * %lld;\n", ind, T, tb * v->c);
    fprintf(o, "%s    const %s *restrict ux = wu + (size_t)xi * %lld + fb;\n", ind, T, v->c * v->f);
    fprintf(o, "%s    for (int ci = 0; ci < %lld; ci++)\n", ind, v->c);
    fprintf(o, "%s        for (int tq = 0; tq < %lld; tq++) {\n", ind, tb);
    fprintf(o, "%s            const %s xv = vx[tq * %lld + ci];\n", ind, T, v->c);
    fprintf(o, "%s            #pragma omp simd\n", ind);
    fprintf(o, "%s            for (int f = 0; f < %lld; f++) acc[tq][f] = NNR_MADD(xv, ux[ci * %lld + f], acc[tq][f]);\n", ind,
            fbn, v->f);
    fprintf(o, "%s        }\n", ind);
    fprintf(o, "%s    for (int tq = 0; tq < %lld; tq++)\n", ind, tb);
    fprintf(o, "%s        for (int f = 0; f < %lld; f++) wm[(xi * %lld + tq) * %lld + f] = acc[tq][f];\n", ind, fbn, tb, fbn);
    fprintf(o, "%s}\n", ind);
    if (n->pooled) {
        wino_pooled_out(e, o, n, c, v, tb, fbn, ind);
        return;
    }
    fprintf(o, "%sfor (int tq = 0; tq < %lld; tq++) {   /* Y = A^T wm A */\n", ind, tb);
    fprintf(o, "%s    %s ym[2][2][%lld];\n", ind, T, fbn);
    fprintf(o, "%s    #pragma omp simd\n", ind);
    fprintf(o, "%s    for (int f = 0; f < %lld; f++) {\n", ind, fbn);
    fprintf(o, "%s        const %s *restrict mf = wm + tq * %lld + f;   /* M[i][j] at mf[(i * 4 + j) * %lld] */\n", ind, T,
            fbn, tb * fbn);
    const char *in2 = arena_printf(e->a, "%s        ", ind);
    wino_at_m(e, o, tb * fbn, in2);
    for (int k = 0; k < 4; k++) fprintf(o, "%sym[%d][%d][f] = %s;\n", in2, k / 2, k % 2, wino_y[k]);
    fprintf(o, "%s    }\n", ind);
    fprintf(o, "%s    for (int di = 0; di < 2; di++)\n", ind);
    fprintf(o, "%s        for (int dj = 0; dj < 2; dj++) {\n", ind);
    fprintf(o, "%s            const int oi = 2 * ti + di, oj = 2 * (tj0 + tq) + dj;\n", ind);
    fprintf(o, "%s            for (int f = 0; f < %lld; f++)\n", ind, fbn);
    fprintf(o, "%s                %s\n", ind,
            store(e, n, c, arena_printf(e->a, "out[((size_t)(fb + f) * %lld + oi) * %lld + oj]", v->oh, v->ow),
                  "ym[di][dj][f]"));
    fprintf(o, "%s        }\n%s}\n", ind, ind);
}

/* A block of tb tiles from (ti, tj0): transformed once, then every block of filters. */
static void wino_block(emitter *e, FILE *o, const ir_node *n, const ictx *c, const convgeo *v, long long tb,
                       long long fb, const char *ind) {
    wino_tiles_in(e, o, v, tb, ind);
    long long full = v->f / fb * fb, rest = v->f - full;
    const char *in2 = arena_printf(e->a, "%s    ", ind);
    if (full) {
        fprintf(o, "%sfor (int fb = 0; fb < %lld; fb += %lld) {\n", ind, full, fb);
        wino_tiles_out(e, o, n, c, v, tb, fb, in2);
        fprintf(o, "%s}\n", ind);
    }
    if (rest) {
        fprintf(o, "%s{\n%s    const int fb = %lld;\n", ind, ind, full);
        wino_tiles_out(e, o, n, c, v, tb, rest, in2);
        fprintf(o, "%s}\n", ind);
    }
}

/* Every 2x2 tile of outputs: rows of tiles, blocks of tb tiles and the row's remainder. */
static void wino_rows(emitter *e, FILE *o, const ir_node *n, const ictx *c, const convgeo *v, long long fb) {
    long long th = v->oh / 2, tw = v->ow / 2, tb = FUSE_WINO_TILES < tw ? FUSE_WINO_TILES : tw;
    long long full = tw / tb * tb, rest = tw - full;
    fprintf(o, "            for (int ti = 0; ti < %lld; ti++) {\n", th);
    if (full) {
        fprintf(o, "                for (int tj0 = 0; tj0 < %lld; tj0 += %lld) {\n", full, tb);
        wino_block(e, o, n, c, v, tb, fb, "                    ");
        fprintf(o, "                }\n");
    }
    if (rest) {
        fprintf(o, "                {\n                    const int tj0 = %lld;\n", full);
        wino_block(e, o, n, c, v, rest, fb, "                    ");
        fprintf(o, "                }\n");
    }
    fprintf(o, "            }\n");
}

/* Y [B, F, P] = W [F, C·kh·kw] · im2col(X), per example, without im2col: see fuse.c. */
static void emit_conv_direct(emitter *e, FILE *o, ir_node *n) {
    const ir_node *col = n->in[1], *w = n->in[0], *x = col->in[0];
    convgeo v = conv_geo(&col->conv, n->mm.ar);
    const char *T = e->T, *Y = n->epi ? NULL : mark(e, n), *W = mark(e, w), *X = mark(e, x);
    long long hwc = v.hp * v.wp * v.c, at = (long long)n->scratch_offset, size = e->f[0] ? 4 : 8;
    int wino = fuse_winograd(&col->conv);
    fuse_wino_mem wm = fuse_wino_layout(&col->conv, v.f);
    /* the epilogue's index space: [F, oh, ow] or [F, oh·ow] (fuse.c) */
    ictx c = {LOOP_NESTED, 1, 2, {v.f, v.p}, {"(fb + f)", NULL}};
    c.v[1] = arena_printf(e->a, "(oi * %lld + oj + qi)", v.ow);
    if (n->epi && n->epi->shape.rank == 3) {
        c.rank = 3;
        c.dim[1] = v.oh;
        c.dim[2] = v.ow;
        c.v[1] = "oi";
        c.v[2] = "(oj + qi)";
    }
    ictx cw = c;   /* Winograd's stores: oi, oj name the output itself */
    cw.v[c.rank - 1] = c.rank == 3 ? "oj" : arena_printf(e->a, "(oi * %lld + oj)", v.ow);
    /* about 24 vector registers of sums: a block of up to 128 bytes of filters (32 floats)
     * times as many positions as fill them */
    long long fb = v.f * size <= 128 ? v.f : 128 / size, q = 768 / (fb * size);
    if (q > 24) q = 24;
    if (q < 1) q = 1;
    if (q > v.ow) q = v.ow;
    if (wino)
        fprintf(o, "    /* %s %s = %s %s @ im2col(%s %s),\n"
                   "     * computed directly with Winograd's F(2x2, 3x3) (Lavin & Gray, 2016): kernel 3x3, stride 1x1,\n"
                   "     * padding %lldx%lld before.  Each 2x2 block of outputs Y comes from a 4x4 tile d of the\n"
                   "     * image as Y = A^T [sum over channels of (G g G^T) .* (B^T d B)] A: 16 products per\n"
                   "     * channel and filter instead of 36.  The filters are transformed once per call (wu\n"
                   "     * [16, C, F]), blocks of %lld tiles of the example's image, channel-last and zero-padded\n"
                   "     * [%lld, %lld, %lld], once per block (wv [16, tiles, C]); the products are summed in\n"
                   "     * registers, %lld filters at a time (wm [16, tiles, filters]).%s */\n",
                n->cname ? n->cname : "the product", shape_of(e, n), W, shape_of(e, w), who(e, x), shape_of(e, x), v.ph,
                v.pw, FUSE_WINO_TILES < v.ow / 2 ? (long long)FUSE_WINO_TILES : v.ow / 2, v.hp, v.wp, v.c, fb,
                wm.filters ? "  The odd last row or column of outputs\n     * is summed directly over the taps, filters in [kh, kw, C, F] order (w_t)." : "");
    else
        fprintf(o, "    /* %s %s = %s %s @ im2col(%s %s),\n"
                   "     * computed directly: kernel %lldx%lld, stride %lldx%lld, padding %lldx%lld before.  Each block\n"
                   "     * of %lld output positions x %lld filters stays in registers while all %lld taps add in,\n"
                   "     * over the example's image channel-last and zero-padded [%lld, %lld, %lld] and the\n"
                   "     * filters in [kh, kw, C, F] order. */\n",
                n->cname ? n->cname : "the product", shape_of(e, n), W, shape_of(e, w), who(e, x), shape_of(e, x), v.kh,
                v.kw, v.sh, v.sw, v.ph, v.pw, q, fb, v.k, v.hp, v.wp, v.c);
    if (n->pooled)
        fprintf(o, "    /* ... %s %s computed at each 2x2 block of outputs and max pooled as it is: line %d's\n"
                   "     * %s %s, written with each window's pick%s; %s is never stored */\n",
                label(e, n->epi), shape_of(e, n->epi), n->pooled->stmt_line, n->pooled->cname, shape_of(e, n->pooled),
                n->pooled->scratch ? " (the first tap at the maximum) for the\n     * gradient" : "", label(e, n->epi));
    else
        epilogue_note(e, o, n, "    ");
    fprintf(o, "    {\n");
    fprintf(o, "        %s *restrict x_hwc = m->acts + %lld;   /* the example's image */\n", T, at);
    if (n->pooled && n->pooled->scratch)
        fprintf(o, "        uint8_t *restrict picks = (uint8_t *)(m->acts + %lld);   /* [B, %lld, %lld, %lld] */\n",
                (long long)n->pooled->scratch_offset, v.f, v.oh / 2, v.ow / 2);
    int taps = !wino || wm.filters;   /* the direct loops run somewhere */
    if (taps) fprintf(o, "        %s *restrict w_t = m->acts + %lld;   /* the filters */\n", T, at + hwc);
    if (wino) {
        long long u = at + wm.image + wm.filters;
        fprintf(o, "        %s *restrict wu = m->acts + %lld;   /* the filters, transformed */\n", T, u);
        fprintf(o, "        %s *restrict wv = m->acts + %lld;   /* a block of tiles, transformed */\n", T, u + wm.u);
        fprintf(o, "        %s *restrict wm = m->acts + %lld;   /* their products */\n", T, u + wm.u + wm.v);
    }
    if (v.hp * v.wp != v.h * v.w)
        fprintf(o, "        memset(x_hwc, 0, %lld * sizeof(%s));   /* the padding stays zero */\n", hwc, T);
    if (taps) {
        fprintf(o, "        for (int f = 0; f < %lld; f++)\n", v.f);
        fprintf(o, "            for (int ci = 0; ci < %lld; ci++)\n", v.c);
        fprintf(o, "                for (int kk = 0; kk < %lld; kk++)   /* ki * kw + kj */\n", v.kh * v.kw);
        fprintf(o, "                    w_t[(kk * %lld + ci) * %lld + f] = %s[(f * %lld + ci) * %lld + kk];\n", v.c, v.f,
                W, v.c, v.kh * v.kw);
    }
    if (wino) wino_filters(e, o, &v, W);
    fprintf(o, "        for (int b = 0; b < n; b++) {\n");
    fprintf(o, "            const %s *restrict img = %s + (size_t)b * %lld;\n", T, X, v.c * v.h * v.w);
    relayout(o, &v, 1, "x_hwc", "img");
    if (Y) fprintf(o, "            %s *restrict out = %s + (size_t)b * %lld;\n", T, Y, v.f * v.p);
    if (!wino) {
        const long long all[4] = {0, v.oh, 0, v.ow};
        direct_filters(e, o, n, &c, &v, q, fb, all);
    } else {
        wino_rows(e, o, n, &cw, &v, fb);
        long long eh = v.oh / 2 * 2, ew = v.ow / 2 * 2;
        if (ew < v.ow) {
            fprintf(o, "            /* the odd last column, directly */\n");
            const long long col_r[4] = {0, eh, ew, v.ow};
            direct_filters(e, o, n, &c, &v, q, fb, col_r);
        }
        if (eh < v.oh) {
            fprintf(o, "            /* the odd last row, directly */\n");
            const long long row_r[4] = {eh, v.oh, 0, v.ow};
            direct_filters(e, o, n, &c, &v, q, fb, row_r);
        }
    }
    fprintf(o, "        }\n    }\n");
}
static void emit_conv_input_grad(emitter *e, FILE *o, ir_node *n) { emit_conv_grads(e, o, NULL, n); }

/* max / average pooling windows (no padding), and their gradient: the window's maximum
 * takes the whole gradient (the first one, on a tie, as PyTorch), an average spreads it. */
static void emit_pool(emitter *e, FILE *o, ir_node *n) {
    int grad = n->op == OP_POOL_GRAD, is_max = n->attr[0] != 0;
    ir_conv g = n->conv;
    const ir_node *x = n->in[grad ? 1 : 0];
    long long win = (long long)(g.kh * g.kw);
    const char *X = mark(e, x), *T = e->T, *nb = x->batched ? "n" : "1";
    fprintf(o, "    /* %s %s = %s%s(%s %s), window %lldx%lld, stride %lldx%lld%s */\n",
            n->cname ? n->cname : "the gradient", shape_of(e, n),
            is_max ? "maxpool" : "avgpool", grad ? "_grad" : "", who(e, x), shape_of(e, x), (long long)g.kh,
            (long long)g.kw, (long long)g.sh, (long long)g.sw,
            grad ? (is_max ? ": d max/du = 1 at the window's maximum" : ": d mean/du = 1/(kh kw)") : "");
    epilogue_note(e, o, n, "    ");
    const char *out = n->epi ? n->cname : mark(e, n);
    /* windows that tile the plane exactly write every element of the gradient once */
    int tiled = fuse_pool_tiled(&g);
    fprintf(o, "    for (int b = 0; b < %s * %lld; b++) {   /* every channel of every example */\n", nb, (long long)g.c);
    if (grad && !tiled)   /* zeroed plane by plane, while it is in cache for the windows that follow */
        fprintf(o, "        memset(%s + (size_t)b * %lld, 0, %lld * sizeof(%s));\n", out, (long long)(g.h * g.w),
                (long long)(g.h * g.w), T);
    fprintf(o, "        for (int oi = 0; oi < %lld; oi++)\n", (long long)g.oh);
    fprintf(o, "            for (int oj = 0; oj < %lld; oj++) {\n", (long long)g.ow);
    fprintf(o, "                const size_t at = ((size_t)b * %lld + oi) * %lld + oj;\n", (long long)g.oh, (long long)g.ow);
    const char *src = arena_printf(e->a, "(size_t)b * %lld + (oi * %lld + ki) * %lld + oj * %lld + kj",
                                   (long long)(g.h * g.w), (long long)g.sh, (long long)g.w, (long long)g.sw);
    const char *loops = arena_printf(e->a, "for (int ki = 0; ki < %lld; ki++)\n                    for (int kj = 0; kj < %lld; kj++)",
                                     (long long)g.kh, (long long)g.kw);
    if (!grad) {
        fprintf(o, "                %s acc = %s;\n", T, is_max ? "-INFINITY" : lit(e, 0));
        fprintf(o, "                %s\n", loops);
        if (is_max) fprintf(o, "                        acc = %s[%s] > acc ? %s[%s] : acc;\n", X, src, X, src);
        else fprintf(o, "                        acc += %s[%s];\n", X, src);
        fprintf(o, "                %s[at] = acc%s;\n", out, is_max ? "" : arena_printf(e->a, " / %s", lit(e, (double)win)));
    } else if (is_max && tiled) {
        /* the first maximum of the window takes gv, as PyTorch breaks ties (the first tap
         * when the maximum is NaN); selects instead of branches, so the loop over oj
         * vectorizes */
        const char *first = arena_printf(e->a, "(size_t)b * %lld + oi * %lld * %lld + oj * %lld", (long long)(g.h * g.w),
                                         (long long)g.sh, (long long)g.w, (long long)g.sw);
        fprintf(o, "                %s acc = %s[%s];\n", T, X, first);
        fprintf(o, "                %s\n", loops);
        fprintf(o, "                        acc = %s[%s] > acc ? %s[%s] : acc;\n", X, src, X, src);
        fprintf(o, "                %s gv = %s[at];   /* until a tap takes it */\n", T, mark(e, n->in[0]));
        fprintf(o, "                %s {\n", loops);
        /* with an epilogue, i is the element's index in every tensor it reads (fuse.c) */
        ictx flat = {LOOP_FLAT, x->batched, 0, {0}, {0}};
        const char *at_i = n->epi ? arena_printf(e->a, "const size_t i = %s; ", src) : "";
        const char *own = arena_printf(e->a, "%s[%s]", out, src), *tap = arena_printf(e->a, "%s[%s]", X, src);
        fprintf(o, "                        const int take = %s == acc || (ki + kj == 0 && acc != acc);\n", tap);
        fprintf(o, "                        { %s%s }\n", at_i, store(e, n, &flat, own, arena_printf(e->a, "take ? gv : %s", lit(e, 0))));
        fprintf(o, "                        gv = take ? %s : gv;\n                    }\n", lit(e, 0));
    } else if (is_max) {   /* the first maximum of the window, as PyTorch breaks ties */
        fprintf(o, "                size_t best = (size_t)b * %lld + oi * %lld * %lld + oj * %lld;\n", (long long)(g.h * g.w),
                (long long)g.sh, (long long)g.w, (long long)g.sw);
        fprintf(o, "                %s\n", loops);
        fprintf(o, "                        if (%s[%s] > %s[best]) best = %s;\n", X, src, X, src);
        fprintf(o, "                %s[best] += %s[at];\n", out, mark(e, n->in[0]));
    } else {
        fprintf(o, "                const %s share = %s[at] / %s;\n", T, mark(e, n->in[0]), lit(e, (double)win));
        fprintf(o, "                %s\n", loops);
        fprintf(o, "                        %s[%s] %s= share;\n", out, src, tiled ? "" : "+");
    }
    fprintf(o, "            }\n    }\n");
}

/* batchnorm's running statistics, updated by each training step as PyTorch does:
 * r = (1 - momentum) r + momentum · batch statistic, with the unbiased variance. */
static void emit_bn_update(emitter *e, FILE *o, ir_node *n) {
    ir_node *rm = n->in[0], *rv = n->in[1];
    long long c = (long long)ir_numel(&rm->shape), per = (long long)n->attr[1];
    double mom = n->attr[0];
    fprintf(o, "    /* %s and %s: running statistics, momentum %g, unbiased variance */\n", rm->name, rv->name, mom);
    fprintf(o, "    {\n        %s *run_mean = m->params + %lld, *run_var = m->params + %lld;\n", e->T,
            (long long)rm->offset, (long long)rv->offset);
    fprintf(o, "        const %s unbias = n * %lld > 1 ? (%s)(n * %lld) / (n * %lld - 1) : %s;\n", e->T, per, e->T, per, per,
            lit(e, 1));
    fprintf(o, "        for (int ci = 0; ci < %lld; ci++) {\n", c);
    fprintf(o, "            run_mean[ci] = %s * run_mean[ci] + %s * %s[ci];\n", lit(e, 1 - mom), lit(e, mom), mark(e, n->in[2]));
    fprintf(o, "            run_var[ci] = %s * run_var[ci] + %s * %s[ci] * unbias;\n", lit(e, 1 - mom), lit(e, mom),
            mark(e, n->in[3]));
    fprintf(o, "        }\n    }\n");
}

/* embedding: row ids[r] of the table for every index r; its gradient adds each row of
 * the upstream gradient into the row of the table it was read from. */
static void emit_gather(emitter *e, FILE *o, ir_node *n) {
    int back = n->op == OP_SCATTER_ADD;
    const ir_node *rows = back ? n->in[0] : n, *ids = n->in[1], *table = back ? n : n->in[0];
    long long dim = (long long)table->shape.dim[1], count = (long long)ir_numel(&ids->shape);
    const char *R = mark(e, rows), *I = mark(e, ids), *W = mark(e, table);
    fprintf(o, "    /* %s %s = %s(%s %s, %s %s)%s */\n", n->cname, shape_of(e, n), ir_op_name(n), who(e, n->in[0]),
            shape_of(e, n->in[0]), ids->cname, shape_of(e, ids), back ? ": d table[id]/d table = 1 for the rows read" : "");
    const char *total = ids->batched ? arena_printf(e->a, "n * %lld", count) : arena_printf(e->a, "%lld", count);
    if (back) {
        fprintf(o, "    memset(%s, 0, %lld * sizeof(%s));\n", W, (long long)ir_numel(&table->shape), e->T);
        fprintf(o, "    for (int r = 0; r < %s; r++)\n        for (int j = 0; j < %lld; j++)\n", total, dim);
        fprintf(o, "            %s[(size_t)%s[r] * %lld + j] += %s[(size_t)r * %lld + j];\n", W, I, dim, R, dim);
    } else {
        fprintf(o, "    for (int r = 0; r < %s; r++)\n", total);
        fprintf(o, "        memcpy(%s + (size_t)r * %lld, %s + (size_t)%s[r] * %lld, %lld * sizeof(%s));\n", R, dim, W, I,
                dim, dim, e->T);
    }
}

/* A reshape that must have memory of its own (an output, a gradient users read). */
static void emit_view_copy(emitter *e, FILE *o, ir_node *n) {
    long long numel = (long long)ir_numel(&n->shape);
    const ir_node *src = n->in[n->op == OP_SELECT ? e->infer_mode : 0];
    fprintf(o, "    /* %s %s: the elements of %s%s */\n", n->cname, shape_of(e, n), src->cname ? src->cname : "its input",
            n->op == OP_SELECT ? (e->infer_mode ? " (inference mode)" : " (training mode)") : ", reshaped");
    fprintf(o, "    memcpy(%s, %s, (size_t)%s%lld * sizeof(%s));\n", mark(e, n), mark(e, src),
            n->batched ? "n * " : "", numel, e->T);
}

static void emit_node(emitter *e, FILE *o, ir_node *n) {
    quote_line(e, o, n, "    ");
    switch (ir_ops[n->op].fam) {
    case FAM_ELEMWISE: emit_elementwise(e, o, n); break;
    case FAM_REDUCE: if (n->op == OP_SUM) emit_sum(e, o, n); else emit_sum_to(e, o, n); break;
    case FAM_COPY:
        if (n->op == OP_IM2COL || n->op == OP_COL2IM) emit_im2col(e, o, n);
        else if (n->op == OP_POOL || n->op == OP_POOL_GRAD) emit_pool(e, o, n);
        else if (n->op == OP_GATHER || n->op == OP_SCATTER_ADD) emit_gather(e, o, n);
        else emit_copy(e, o, n);
        break;
    case FAM_EFFECT: emit_bn_update(e, o, n); break;
    case FAM_VIEW: emit_view_copy(e, o, n); break;
    case FAM_ROW: emit_row(e, o, n); break;
    case FAM_MATMUL: emit_matmul(e, o, n); break;
    case FAM_DENSE: emit_dense(e, o, n); break;
    case FAM_LEAF: break;
    }
}

/* ---- functions ------------------------------------------------------------------- */

static void declare(emitter *e, FILE *o, const ir_node *x, int writes) {
    const char *T = x->dtype == DT_CLASS ? "int32_t" : e->T;
    const char *what = x->name ? arena_printf(e->a, "  %s", comment_text(e, x->name, strlen(x->name))) : "";
    switch (x->mem) {
    case MEM_EXTERN:
        fprintf(o, "    const %s *restrict %s = m->%s;   /* %s%s */\n", T, x->cname, x->cname, shape_of(e, x), what);
        break;
    case MEM_PARAM:
        fprintf(o, "    %s%s *restrict %s = m->params + %lld;   /* %s%s */\n", writes ? "" : "const ", T, x->cname,
                (long long)x->offset, shape_of(e, x), what);
        break;
    case MEM_GRAD:
        fprintf(o, "    %s *restrict %s = m->grads + %lld;   /* %s */\n", T, x->cname, (long long)x->offset, shape_of(e, x));
        break;
    case MEM_ACT:
        fprintf(o, "    %s *restrict %s = m->acts + %lld;   /* %s%s */\n", T, x->cname, (long long)x->offset,
                shape_of(e, x), what);
        break;
    case MEM_NONE: break;
    }
}

typedef enum { FN_FORWARD, FN_BACKWARD, FN_INFER, FN_EVAL } fn_kind;

static int in_fn(const ir_node *n, fn_kind k) {
    if (n->mem != MEM_ACT && n->mem != MEM_GRAD && !(n->op == OP_PAD_ADD && n->mem == MEM_NONE) && !n->epi) return 0;
    if (k == FN_FORWARD) return n->pass == IR_FWD && n->in_train;
    if (k == FN_BACKWARD) return n->pass == IR_BWD && n->in_train;
    if (k == FN_EVAL) return n->pass == IR_FWD && n->in_eval && n->op != OP_BN_UPDATE;
    return n->pass == IR_FWD && n->in_infer && n->op != OP_BN_UPDATE;
}

/* Whether training and inference differ (dropout, batchnorm): then the loss in
 * inference mode has a forward pass of its own. */
static int has_modes(const ir_graph *g) {
    for (int i = 0; i < g->fwd_count; i++)
        if (ir_at(g, i)->op == OP_SELECT) return 1;
    return 0;
}

static const char *const names_of_pass[] = {"forward", "backward", "infer", "forward_eval"};

/* --check-numerics: one line after each block of the training step; costs a branch when off. */
static void emit_check(emitter *e, FILE *o, ir_node *n, const char *pass) {
    if (n->op == OP_BN_UPDATE) return;
    long long numel = (long long)ir_numel(&n->shape);
    const char *what = n->pass == IR_BWD && n->grad_of && n->grad_of->name
                           ? arena_printf(e->a, "d%s", n->grad_of->name) : n->name ? n->name : mark(e, n);
    fprintf(o, "    if (m->check == 1) %s_check(m, %s, (size_t)%s%lld, %s, %d, \"%s\");\n", e->P, mark(e, n),
            n->batched ? "n * " : "", numel, cstring(e, what), n->stmt_line, pass);
}

static void emit_check_function(emitter *e, FILE *o) {
    fprintf(o, "\n/* --check-numerics: records the first non-finite value of a tensor the step computes.\n"
               " * Never inlined: a copy at each of its many call sites would slow the C compiler down\n"
               " * several times over, for a path that runs only when asked for. */\n");
    fprintf(o, "#ifdef __GNUC__\n__attribute__((noinline, cold))\n#endif\n");
    fprintf(o, "static void %s_check(%s *m, const %s *x, size_t count, const char *tensor, int line, const char *pass) {\n",
            e->P, e->P, e->T);
    fprintf(o, "    for (size_t i = 0; i < count; i++)\n        if (!isfinite(x[i])) {\n");
    fprintf(o, "            snprintf(m->numerics, sizeof m->numerics, \"non-finite value %%g in %%s[%%zu] (line %%d) in the \"\n"
               "                     \"%%s pass at step %%lld\", (double)x[i], tensor, i, line, pass, (long long)m->step + 1);\n");
    fprintf(o, "            m->check = 2;\n            return;\n        }\n}\n");
}

static void emit_pass(emitter *e, FILE *o, fn_kind k) {
    ir_graph *g = e->g;
    memset(e->used, 0, (size_t)g->nodes.n);
    e->last_line = 0;
    e->infer_mode = k == FN_INFER || k == FN_EVAL;
    char *text = NULL;
    size_t len = 0;
    FILE *b = open_memstream(&text, &len);
    int any = 0, inv_n = 0;
    for (int i = 0; i < g->nodes.n; i++) {
        ir_node *n = ir_at(g, i);
        if (!in_fn(n, k)) continue;
        if (n->folded) continue;   /* computed by another node's code (a convolution's gradients) */
        emit_node(e, b, n);
        if (k == FN_FORWARD || k == FN_BACKWARD)
            emit_check(e, b, n->pooled ? n->pooled : n->epi ? n->epi : n, names_of_pass[k]);
        if (n->also && (k == FN_FORWARD || k == FN_BACKWARD)) emit_check(e, b, n->also, names_of_pass[k]);
        any = 1;
    }
    if ((k == FN_FORWARD || k == FN_EVAL) && g->loss->mem != MEM_NONE) {
        fprintf(b, "\n    /* the mean loss over the batch: training minimizes it */\n");
        if (g->loss->batched) {
            fprintf(b, "    double total = 0;\n    for (int b = 0; b < n; b++) total += %s[b];\n", mark(e, g->loss));
            fprintf(b, "    m->loss = total / n;\n");
        } else {
            fprintf(b, "    m->loss = %s[0];\n", mark(e, g->loss));
        }
    }
    fclose(b);
    inv_n = strstr(text, "inv_n") != NULL;
    const char *const *names = names_of_pass;
    static const char *const docs[] = {
        "The forward pass in training mode: every tensor the loss and the backward pass need.",
        "The backward pass: gradients of the mean loss, in reverse order of the forward pass.",
        "Inference for predict: only what the outputs need.",
        "The loss in inference mode (no dropout, batchnorm's running statistics), for eval."};
    fprintf(o, "\n/* %s */\nstatic void %s_%s(%s *m, int n) {\n", docs[k], e->P, names[k], e->P);
    for (int i = 0; i < g->nodes.n; i++) {
        ir_node *x = ir_at(g, i);
        if (e->used[i]) declare(e, o, x, 0);
    }
    if (inv_n) fprintf(o, "    const %s inv_n = %s / n;   /* %s */\n", e->T, lit(e, 1),
                       k == FN_BACKWARD ? "d mean(loss) / d loss[b]" : "1 / the batch, for batch statistics");
    if (!any && !strstr(text, "m->loss")) fprintf(o, "    (void)m; (void)n;\n");
    fputs(text, o);
    fputs("}\n", o);
    free(text);
}

/* ---- the optimizer ------------------------------------------------------------------ */

static const char *const opt_names[] = {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta",
                                        "adam", "adamax", "nadam"};

/* Elements of optimizer state: per-parameter slots, and nadam's running product of its
 * momentum coefficients in one more element, so a checkpoint of the block is complete. */
static int64_t state_elements(const ir_graph *g);

int emit_state_slots(int opt) {
    switch (opt) {
    case 0: return 0;
    case 1: case 2: case 3: case 4: return 1;
    default: return 2;
    }
}

static int64_t state_elements(const ir_graph *g) {
    return emit_state_slots(g->train.opt) * g->train_size + (g->train.opt == 8);
}

/* Below this many parameters the update loop stays on one thread: starting the others
 * would cost more than the loop (Adam takes about 0.27 ns an element on one core: 63 us
 * for the Fashion MLP's 235,152, perf; 32,768 elements are some 9 us). */
#define UPDATE_PARALLEL_MIN 32768

static void emit_update(emitter *e, FILE *o) {
    ir_graph *g = e->g;
    ir_train *t = &g->train;
    const char *T = e->T, *sq = fn(e, "sqrt");
    long long N = (long long)g->train_size;
    fprintf(o, "\n/* The optimizer step: %s", opt_names[t->opt]);
    switch (t->opt) {
    case 0: break;
    case 1: case 2: fprintf(o, "(mu=%g)", t->mu); break;
    case 3: fprintf(o, "(eps=%g)", t->eps); break;
    case 4: fprintf(o, "(rho=%g, eps=%g)", t->rho, t->eps); break;
    case 5: fprintf(o, "(rho=%g, eps=%g)", t->rho, t->eps); break;
    default: fprintf(o, "(beta1=%g, beta2=%g, eps=%g)", t->beta1, t->beta2, t->eps);
    }
    fprintf(o, " with PyTorch's update rule,\n   one loop over the %lld elements of the parameter block%s%s. */\n", N,
            t->weight_decay ? " (weight_decay adds wd * theta to the gradient)" : "",
            t->clip_norm ? ", gradients first clipped to a global L2 norm" : "");
    fprintf(o, "static void %s_update(%s *m) {\n", e->P, e->P);
    fprintf(o, "    %s *restrict p = m->params;\n    const %s *restrict g = m->grads;\n", T, T);
    int slots = emit_state_slots(t->opt);
    if (slots >= 1) fprintf(o, "    %s *restrict s1 = m->state;\n", T);
    if (slots >= 2) fprintf(o, "    %s *restrict s2 = m->state + %lld;\n", T, N);
    fprintf(o, "    const %s lr = m->lr;\n", T);
    fprintf(o, "    m->step++;\n");
    if (t->clip_norm) {
        fprintf(o, "    double norm2 = 0;   /* clip_grad_norm_: one norm over every gradient */\n");
        fprintf(o, "    for (int64_t i = 0; i < %lld; i++) norm2 += (double)g[i] * g[i];\n", N);
        fprintf(o, "    const double coef = %s / (sqrt(norm2) + 1e-6);\n", lit(e, t->clip_norm));
        fprintf(o, "    const %s clip = coef < 1 ? (%s)coef : %s;\n", T, T, lit(e, 1));
    }
    const char *gi = t->clip_norm ? "g[i] * clip" : "g[i]";
    const char *wd = t->weight_decay ? arena_printf(e->a, " + %s * p[i]", lit(e, t->weight_decay)) : "";
    const char *b1 = lit(e, t->beta1), *b2 = lit(e, t->beta2), *eps = lit(e, t->eps);
    switch (t->opt) {
    case 6: /* adam */
        fprintf(o, "    const double bc1 = 1 - pow(%.17g, (double)m->step), bc2 = 1 - pow(%.17g, (double)m->step);\n",
                t->beta1, t->beta2);
        /* PyTorch divides by sqrt(bc2) per element; a multiply by its inverse saves one of the
         * loop's two divisions (the divider bounds this loop) and differs by rounding only */
        fprintf(o, "    const %s step_size = (%s)(lr / bc1), inv_bc2_sqrt = (%s)(1 / sqrt(bc2));\n", T, T, T);
        break;
    case 7: /* adamax */
        fprintf(o, "    const %s step_size = (%s)(lr / (1 - pow(%.17g, (double)m->step)));\n", T, T, t->beta1);
        break;
    case 8: /* nadam */
        fprintf(o, "    const double mu_t = %.17g * (1 - 0.5 * pow(0.96, m->step * 0.004));\n", t->beta1);
        fprintf(o, "    const double mu_next = %.17g * (1 - 0.5 * pow(0.96, (m->step + 1) * 0.004));\n", t->beta1);
        fprintf(o, "    double *mu_product = (double *)(void *)(m->state + %lld);   /* kept with the state */\n", 2 * N);
        fprintf(o, "    double product = 1;\n    memcpy(&product, mu_product, sizeof product);\n");
        fprintf(o, "    if (m->step == 1) product = 1;\n    product *= mu_t;\n    memcpy(mu_product, &product, sizeof product);\n");
        fprintf(o, "    const double bc2 = 1 - pow(%.17g, (double)m->step);\n", t->beta2);
        fprintf(o, "    const %s c_grad = (%s)(lr * (1 - mu_t) / (1 - product));\n", T, T);
        fprintf(o, "    const %s c_avg = (%s)(lr * mu_next / (1 - product * mu_next));\n", T, T);
        fprintf(o, "    const %s inv_bc2_sqrt = (%s)(1 / sqrt(bc2));   /* as adam's */\n", T, T);
        break;
    default: break;
    }
    if (N >= UPDATE_PARALLEL_MIN) fprintf(o, "    %s\n", OMP_ROWS);
    fprintf(o, "    for (int64_t i = 0; i < %lld; i++) {\n", N);
    fprintf(o, "        const %s gi = %s%s;\n", T, gi, wd);
    switch (t->opt) {
    case 0: fprintf(o, "        p[i] -= lr * gi;\n"); break;
    case 1:
        fprintf(o, "        s1[i] = %s * s1[i] + gi;   /* the velocity */\n        p[i] -= lr * s1[i];\n", lit(e, t->mu));
        break;
    case 2:
        fprintf(o, "        s1[i] = %s * s1[i] + gi;\n        p[i] -= lr * (gi + %s * s1[i]);   /* look ahead */\n",
                lit(e, t->mu), lit(e, t->mu));
        break;
    case 3:
        fprintf(o, "        s1[i] += gi * gi;\n        p[i] -= lr * gi / (%s(s1[i]) + %s);\n", sq, eps);
        break;
    case 4:
        fprintf(o, "        s1[i] = %s * s1[i] + %s * gi * gi;\n        p[i] -= lr * gi / (%s(s1[i]) + %s);\n",
                lit(e, t->rho), lit(e, 1 - t->rho), sq, eps);
        break;
    case 5:
        fprintf(o, "        s1[i] = %s * s1[i] + %s * gi * gi;\n", lit(e, t->rho), lit(e, 1 - t->rho));
        fprintf(o, "        const %s delta = %s(s2[i] + %s) / %s(s1[i] + %s) * gi;\n", T, sq, eps, sq, eps);
        fprintf(o, "        s2[i] = %s * s2[i] + %s * delta * delta;\n", lit(e, t->rho), lit(e, 1 - t->rho));
        fprintf(o, "        p[i] -= lr * delta;\n");
        break;
    case 6:
        fprintf(o, "        s1[i] += (gi - s1[i]) * %s;   /* first moment */\n", lit(e, 1 - t->beta1));
        fprintf(o, "        s2[i] = %s * s2[i] + %s * gi * gi;   /* second moment */\n", b2, lit(e, 1 - t->beta2));
        fprintf(o, "        p[i] -= step_size * s1[i] / (%s(s2[i]) * inv_bc2_sqrt + %s);\n", sq, eps);
        break;
    case 7:
        fprintf(o, "        s1[i] += (gi - s1[i]) * %s;\n", lit(e, 1 - t->beta1));
        fprintf(o, "        const %s ag = %s(gi) + %s;\n", T, fn(e, "fabs"), eps);
        fprintf(o, "        s2[i] = %s * s2[i] > ag ? %s * s2[i] : ag;   /* exponentially weighted infinity norm */\n", b2, b2);
        fprintf(o, "        p[i] -= step_size * s1[i] / s2[i];\n");
        break;
    case 8:
        fprintf(o, "        s1[i] += (gi - s1[i]) * %s;\n", lit(e, 1 - t->beta1));
        fprintf(o, "        s2[i] = %s * s2[i] + %s * gi * gi;\n", b2, lit(e, 1 - t->beta2));
        fprintf(o, "        const %s denom = %s(s2[i]) * inv_bc2_sqrt + %s;\n", T, sq, eps);
        fprintf(o, "        p[i] -= (c_grad * gi + c_avg * s1[i]) / denom;\n");
        break;
    }
    (void)b1;
    fprintf(o, "    }\n}\n");
}

/* ---- the whole file ------------------------------------------------------------------ */

static int64_t io_size(const ir_node *x) { return ir_numel(&x->shape); }

static void emit_struct(emitter *e, FILE *o) {
    ir_graph *g = e->g;
    fprintf(o, "\nstruct %s {\n", e->P);
    fprintf(o, "    %s *params;     /* %lld elements: every parameter, layout in %s_param_table */\n", e->T,
            (long long)g->param_size, e->P);
    fprintf(o, "    %s *grads;      /* d mean(loss) / d params, same layout */\n", e->T);
    fprintf(o, "    %s *state;      /* optimizer state: %d x %lld elements%s */\n", e->T,
            emit_state_slots(g->train.opt), (long long)g->train_size, g->train.opt == 8 ? ", then nadam's product" : "");
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
    fprintf(o, "}");
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
    fprintf(o, "    void *p = aligned_alloc(64, bytes ? bytes : 64);\n");
    fprintf(o, "    if (p) memset(p, 0, bytes ? bytes : 64);\n    return p;\n}\n\n");
    fprintf(o, "%s *%s_new(void) {\n    %s *m = calloc(1, sizeof *m);\n    if (!m) return NULL;\n", P, P, P);
    fprintf(o, "    m->params = %s_block(%lld);\n", P, (long long)g->param_size);
    fprintf(o, "    m->grads = %s_block(%lld);\n", P, (long long)g->param_size);
    fprintf(o, "    m->state = %s_block(%lld);\n", P, (long long)(state_elements(g) + (g->train.opt == 8)));
    fprintf(o, "    m->acts = %s_block(%lld);\n", P, (long long)g->act_size);
    fprintf(o, "    m->lr = %s;\n", lit(e, g->train.lr));
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

static void emit_info(emitter *e, FILE *o) {
    ir_graph *g = e->g;
    const char *P = e->P, *T = e->T;
    fprintf(o, "\n/* ---- what the runtime's trainer (nnr_main) needs to know ---- */\n\n");
    fprintf(o, "static const nnr_param %s_param_table[] = {\n", P);
    for (int i = 0; i < g->params.n; i++) {
        ir_node *p = g->params.v[i];
        fprintf(o, "    {%s, ", cstring(e, p->name));
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
        if (kind == 1 && acc_label < 0 && x->shape.rank == 0) acc_label = i;
        fprintf(o, "    {%s, %s, ", cstring(e, x->name), kinds[kind]);
        emit_shape_init(o, &x->shape);
        fprintf(o, ", %lld, %d, %d},\n", (long long)io_size(x), x->classes, x->wants_grad);
    }
    fprintf(o, "};\n\n");
    fprintf(o, "static const nnr_io %s_out_table[] = {\n", P);
    for (int i = 0; i < g->outputs.n; i++) {
        ir_output *out = g->outputs.v[i];
        if (acc_label >= 0 && acc_out < 0 && out->node->shape.rank == 1 &&
            out->node->shape.dim[0] == ((ir_node *)g->io.v[acc_label])->classes)
            acc_out = i;
        fprintf(o, "    {%s, NNR_IO_OUTPUT, ", cstring(e, out->name));
        emit_shape_init(o, &out->node->shape);
        fprintf(o, ", %lld, 0, 0},\n", (long long)ir_numel(&out->node->shape));
    }
    if (!g->outputs.n) fprintf(o, "    {0}\n");
    fprintf(o, "};\n\n");
    if (acc_out < 0) acc_label = -1;

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
    if (has_modes(g)) {
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
            cstring(e, g->model), cstring(e, e->o->source_path ? e->o->source_path : g->src->path),
            g->f64 ? "NNR_F64" : "NNR_F32", e->PU);
    fprintf(o, "    .nio = %d, .io = %s_io_table,\n", g->io.n, P);
    fprintf(o, "    .nout = %d, .out = %s_out_table,\n", g->outputs.n, P);
    fprintf(o, "    .nparam = %d, .param = %s_param_table,\n", g->params.n, P);
    fprintf(o, "    .param_size = %lld,\n    .state_size = %lld,\n", (long long)g->param_size,
            (long long)(state_elements(g) + (t->opt == 8)));
    fprintf(o, "    .acc_out = %d, .acc_label = %d,\n", acc_out, acc_label);
    fprintf(o, "    .train = {.batch = %d, .epochs = %d, .seed = %lluu, .opt = %d, .lr = %.17g, .beta1 = %.17g,\n"
               "              .beta2 = %.17g, .eps = %.17g, .mu = %.17g, .rho = %.17g, .sched = %d,\n"
               "              .sched_a = %.17g, .sched_b = %.17g, .sched_c = %.17g,\n"
               "              .weight_decay = %.17g, .clip_norm = %.17g},\n",
            t->batch, t->epochs, (unsigned long long)t->seed, t->opt, t->lr, t->beta1, t->beta2, t->eps, t->mu,
            t->rho, t->sched, t->sched_a, t->sched_b, t->sched_c, t->weight_decay, t->clip_norm);
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
        fprintf(o, "    %s\n", cstring(e, arena_strndup(e->a, p, len)));
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

static void setup(emitter *e, ir_graph *g, FILE *out, const emit_opts *o) {
    *e = (emitter){0};
    e->g = g;
    e->a = g->a;
    e->out = out;
    e->o = o;
    e->T = g->f64 ? "double" : "float";
    e->f = g->f64 ? "" : "f";
    const char *P = names_unreserved(g->a, names_mangle(g->a, g->model));
    e->P = P;
    char *pu = arena_strdup(g->a, P);
    for (char *c = pu; *c; c++) *c = (char)toupper((unsigned char)*c);
    e->PU = pu;
    e->used = arena_alloc(g->a, (size_t)g->nodes.n + 1);
}

static void emit_model_comment(emitter *e, FILE *o, const char *what) {
    ir_graph *g = e->g;
    const char *src = comment_text(e, e->o->source_path ? e->o->source_path : g->src->path,
                                   strlen(e->o->source_path ? e->o->source_path : g->src->path));
    fprintf(o, "/* %s — generated by nnc %s from %s; do not edit.\n *\n", what, NNC_VERSION, src);
    fprintf(o, " * Model %s, %s, compiled batch %d (any n <= %d per call).\n", comment_text(e, g->model, strlen(g->model)),
            g->f64 ? "double precision" : "single precision", g->train.batch, g->train.batch);
    fprintf(o, " * Identifiers of the model's tensors are its names with '.' as '_'; a name that would\n"
               " * clash with C (a keyword, libc, BLAS, a macro such as cblas.h's I) gets a trailing '_'. */\n");
}

int emit_h(ir_graph *g, FILE *out, const emit_opts *o) {
    emitter e;
    setup(&e, g, out, o);
    const char *P = e.P, *T = e.T;
    emit_model_comment(&e, out, arena_printf(g->a, "%s.h", P));
    fprintf(out, "#ifndef %s_NNC_H\n#define %s_NNC_H\n\n#include <stdint.h>\n#include \"nnr.h\"\n\n", e.PU, e.PU);
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
    fprintf(out, "\n#endif\n");
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
    setup(&e, g, out, o);
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
    if (has_products(g) || g->train_size >= UPDATE_PARALLEL_MIN)
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
                     "#else\n#define NNR_MADD(a, b, c) ((a) * (b) + (c))\n#endif\n", fn(&e, "fma"));
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
    if (has_modes(g)) emit_pass(&e, out, FN_EVAL);
    emit_api(&e, out);
    emit_info(&e, out);
    if (o->with_main)
        fprintf(out, "\n/* the trainer program: m train | eval | predict | init | grads | gradcheck | summary */\n"
                     "int main(int argc, char **argv) { return nnr_main(&%s_model, argc, argv); }\n", e.P);
    return ferror(out) ? -1 : 0;
}
