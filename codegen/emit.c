/* emit.c — the emitter's core: its state, the text helpers, reading a tensor at a loop
 * index, the loops, and the dispatch that sends each IR node to its kernel family.
 *
 * The generated C is meant to be read, after llm.c: a struct holding four blocks
 * (parameters, gradients, optimizer state, activations) allocated once; mirrored
 * NAME_forward_pass and NAME_backward_pass functions with statements in graph order
 * (written here: emit_pass); NAME_update, the optimizer as one loop over all parameters
 * (emit_optimizer.c); NAME_infer for predict.  Every block starts with a comment naming
 * the .nn line it comes from and the shapes.  The kernels themselves live with their
 * family: elementwise loops, reductions and last-axis ops (emit_elementwise.c), layout
 * copies and gathers (emit_layout.c), products (emit_products.c), convolutions and
 * pooling (emit_conv.c); the whole file with the public API (docs/c-api.md) and the
 * nnr_model_info tables is emit_api.c.  Identifiers come from names.c; user text only
 * appears inside comments and string literals, escaped here (emit_comment_text,
 * emit_cstring). */
#include "emit.h"
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- the emitter's state, for one output file ------------------------------- */

void emit_setup(emitter *e, ir_graph *g, FILE *out, const emit_opts *o) {
    *e = (emitter){0};
    e->g = g;
    e->a = g->a;
    e->out = out;
    e->o = o;
    e->embedded = o->embedded;
    e->T = g->f64 ? "double" : "float";
    e->f = g->f64 ? "" : "f";
    const char *P = names_unreserved(g->a, names_mangle(g->a, g->model));
    e->P = P;
    char *pu = arena_strdup(g->a, P);
    for (char *c = pu; *c; c++) *c = (char)toupper((unsigned char)*c);
    e->PU = pu;
    e->used = arena_alloc(g->a, (size_t)g->nodes.n + 1);
    e->let_of = arena_alloc(g->a, sizeof *e->let_of * ((size_t)g->nodes.n + 1));
    e->cnames = (names_set){g->a, NULL, NULL, 0, 0};
    for (int i = 0; i < g->nodes.n; i++)
        if (ir_at(g, i)->cname) names_set_add(&e->cnames, ir_at(g, i)->cname);
    if (names_has_loops(g)) names_set_add(&e->cnames, "t");   /* no local hides a loop's step */
    e->owners = names_owners(g);
}

/* ---- text helpers -------------------------------------------------------------- */

const char *emit_lit(emitter *e, double v) {
    char buf[64];
    snprintf(buf, sizeof buf, e->f[0] ? "%.9g" : "%.17g", v);
    if (!strpbrk(buf, ".en")) strcat(buf, ".0");
    /* negative literals in parentheses, so that -x and x - y stay well formed */
    return arena_printf(e->a, v < 0 ? "(%s%s)" : "%s%s", buf, e->f[0] ? "f" : "");
}

/* libm's function for the dtype (expf), or with --math inline the file's own (NAME_expf) */
static const char *math_fn(emitter *e, const char *name, int dbl) {
    int bit = e->o->own_math ? emit_math_bit(name) : 0;
    return arena_printf(e->a, "%s%s%s%s", bit ? e->P : "", bit ? "_" : "", name, dbl ? "" : e->f);
}

const char *emit_fn(emitter *e, const char *name) { return math_fn(e, name, e->g->f64); }
const char *emit_dfn(emitter *e, const char *name) { return math_fn(e, name, 1); }

/* User text inside a C comment: printable ASCII only, no comment terminator, no trigraph. */
const char *emit_comment_text(emitter *e, const char *s, size_t len) {
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
const char *emit_cstring(emitter *e, const char *s) {
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

const char *emit_source_line(emitter *e, int line) {
    int len;
    const char *p = source_line(e->g->src, line, &len);
    while (len > 0 && isspace((unsigned char)*p)) p++, len--;
    return emit_comment_text(e, p, (size_t)len);
}

const char *emit_shape_of(emitter *e, const ir_node *n) { return ir_node_shape_str(e->a, n); }

/* Quotes the .nn statement a block comes from, once per run of blocks from one line (and
 * one call: a function's line says which function and where the model calls it). */
static void quote_line(emitter *e, FILE *o, const ir_node *n, const char *ind) {
    if ((n->stmt_line == e->last_line && n->call_line == e->last_call) || n->stmt_line <= 0) return;
    e->last_line = n->stmt_line;
    e->last_call = n->call_line;
    if (n->in_fn)
        fprintf(o, "\n%s/* line %d, in %s() called at line %d: %s */\n", ind, n->stmt_line, n->in_fn, n->call_line,
                emit_source_line(e, n->stmt_line));
    else
        fprintf(o, "\n%s/* line %d: %s */\n", ind, n->stmt_line, emit_source_line(e, n->stmt_line));
}

/* ---- reading tensors at a loop index ------------------------------------------- */

static int is_view(const ir_node *n) {
    return n->mem == MEM_NONE && (n->op == OP_RESHAPE || n->op == OP_SELECT || n->op == OP_PAD_ADD);
}

/* Computed inside its consumer's loop; reshape and select without memory are views. */
int emit_is_inline(const ir_node *n) { return n->mem == MEM_NONE && !is_view(n); }

/* The tensor whose memory a view reads: a reshape's input, a select's training or
 * inference input depending on the function being written. */
static const ir_node *storage_in(const ir_node *x, int infer_mode) {
    while (is_view(x)) x = x->in[x->op == OP_SELECT ? infer_mode : 0];
    return x;
}

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
 * plan_slice_views); so does a scan's step of its sequence (step t's rows). */
int emit_is_slice_view(const ir_node *x) { return (x->op == OP_SLICE || x->op == OP_SCAN_X) && x->mem == MEM_NONE; }

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
    if (emit_is_slice_view(x))
        return mode == LOOP_EXAMPLE && (x->op == OP_SCAN_X || slice_contiguous(x)) && layout_is(x, c);
    if (emit_is_inline(x)) {
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

const char *emit_mark(emitter *e, const ir_node *x) {
    x = storage_in(x, e->infer_mode);
    e->used[x->id] = 1;
    return x->cname;
}

/* A tensor's name for a comment: its own, or that of the memory a view reads ("h_dense[t]"). */
const char *emit_who(emitter *e, const ir_node *x) {
    if (x->op == OP_SCAN_X && emit_is_slice_view(x)) return arena_printf(e->a, "%s[t]", emit_who(e, x->in[0]));
    const ir_node *s = storage_in(x, e->infer_mode);
    return s->cname ? s->cname : x->cname ? x->cname : "the expression";
}

/* A tensor without memory for a comment: its user name (the pooled convolution's epilogue). */
const char *emit_label(emitter *e, const ir_node *x) {
    if (x->cname) return x->cname;
    return x->name ? emit_comment_text(e, x->name, strlen(x->name)) : "the activation";
}

/* Offsets and counters over the batch: int while BATCH times the per-example count fits
 * in one (every model of the examples), else int64_t, so that code written for a large
 * batch never wraps.  Not 64-bit everywhere: that cost the Fashion CNN's step 8 % on one
 * thread (15.8 ms against 14.5, median of 7 runs of 40 steps, three pairs), the MLP's
 * nothing measurable (README "Sizes").  A per-example count always fits in an int:
 * shape.c refuses any larger. */
int emit_wide(const emitter *e, int64_t per_example) {
    return (int64_t)e->g->train.batch * per_example > EMIT_INDEX32_MAX;
}

const char *emit_count_type(const emitter *e, int64_t per_example) {
    return emit_wide(e, per_example) ? "int64_t" : "int";
}

/* `v * per_example` (v: b or n), widened before the product when it can pass INT_MAX. */
const char *emit_times(emitter *e, const char *v, int64_t per_example) {
    if (per_example == 1) return v;
    return arena_printf(e->a, "%s%s * %lld", emit_wide(e, per_example) ? "(int64_t)" : "", v,
                        (long long)per_example);
}

const char *emit_index_of(emitter *e, const ir_node *x, const ictx *c) {
    int64_t numel = ir_numel(&x->shape);
    if (c->mode == LOOP_FLAT) return numel == 1 && !x->batched ? "0" : "i";
    if (c->mode == LOOP_EXAMPLE) {   /* b: the example; i: the element within it */
        if (x->batched) return numel == 1 ? "b" : arena_printf(e->a, "%s + i", emit_times(e, "b", numel));
        return numel == 1 ? "0" : "i";
    }
    /* nested: align x's axes with the loop's from the right; broadcast axes read index 0 */
    char buf[512] = "";
    size_t len = 0;
    if (x->batched) len += (size_t)snprintf(buf, sizeof buf, "%s", emit_times(e, "b", numel));
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

/* Step t of a scan's sequence src [T, ...] read in place: one run of each example's. */
static const char *read_step(emitter *e, const ir_node *x, const ictx *c) {
    const ir_node *src = x->in[0];
    long long step = (long long)ir_numel(&x->shape);
    if (c->mode == LOOP_EXAMPLE) {
        const char *row = src->batched ? arena_printf(e->a, "%s + ", emit_times(e, "b", ir_numel(&src->shape))) : "";
        return arena_printf(e->a, "%s[%st * %lld + i]", emit_mark(e, src), row, step);
    }
    if (c->mode != LOOP_NESTED || c->rank != x->shape.rank) return "0 /* a step view outside its loop */";
    ictx in = *c;   /* src's index space: the step axis first, at t */
    in.rank = c->rank + 1;
    in.dim[0] = src->shape.dim[0];
    in.v[0] = "t";
    for (int d = 0; d < c->rank; d++) in.dim[d + 1] = c->dim[d], in.v[d + 1] = c->v[d];
    return emit_read_at(e, src, &in);
}

/* A slice view read by a loop over the slice's own layout (plan_slice_views): per example
 * at an offset when that part is contiguous (flat_ok), else with nested loops, its input
 * at the same indices shifted by the slice's start along its axis. */
static const char *read_sliced(emitter *e, const ir_node *x, const ictx *c) {
    const ir_node *src = x->in[0];
    if (x->op == OP_SCAN_X) return read_step(e, x, c);
    long long start = (long long)x->attr[0];
    if (c->mode == LOOP_EXAMPLE) {
        long long inner = 1, off;
        for (int d = x->axis + 1; d < src->shape.rank; d++) inner *= (long long)src->shape.dim[d];
        off = start * inner;
        const char *row = src->batched ? arena_printf(e->a, "%s + ", emit_times(e, "b", ir_numel(&src->shape))) : "";
        return arena_printf(e->a, "%s[%s%s%si]", emit_mark(e, src), row, off ? arena_printf(e->a, "%lld", off) : "",
                            off ? " + " : "");
    }
    ictx in = *c;
    int d = x->axis + c->rank - x->shape.rank;
    if (c->mode != LOOP_NESTED || d < 0) return "0 /* a slice view outside its loop */";
    if (start) in.v[d] = arena_printf(e->a, "(%s + %lld)", c->v[d], start);
    in.dim[d] = src->shape.dim[x->axis];
    return emit_read_at(e, src, &in);
}

const char *emit_read_at(emitter *e, const ir_node *x, const ictx *c) {
    if (e->subst && storage_in(x, e->infer_mode) == e->subst) return e->subst_value;
    if (e->subst2 && storage_in(x, e->infer_mode) == e->subst2) return e->subst2_value;
    if (x->op == OP_CONST) return emit_lit(e, x->attr[0]);
    if (x->op == OP_INV_N) return x->ranks ? "inv_batch" : "inv_n";
    if (emit_is_slice_view(x)) return read_sliced(e, x, c);
    if (emit_is_inline(x)) return emit_expr(e, x, c);
    return arena_printf(e->a, "%s[%s]", emit_mark(e, x), emit_index_of(e, x, c));
}

/* ---- expressions: an inlined node's value computed inside its consumer's loop ---- */

/* Inlined nodes nest at most this deep in one expression; a deeper one is split at a
 * local.  Without a bound, a chain of N inlined nodes (x + x + ... + x) nests N deep and
 * building it copies each level's text into the next: N^2 time and memory. */
enum { EMIT_NEST_MAX = 16 };

void emit_stmt_open(emitter *e) {
    e->in_stmt = 1;
    e->lets.n = 0;
    e->locals = e->bases = (names_set){e->a, NULL, NULL, 0, 0};
}

/* The body of the innermost loop: the statement, after the locals it reads in braces. */
void emit_stmt_close(emitter *e, FILE *o, const char *ind, const char *stmt) {
    e->in_stmt = 0;
    for (int i = 0; i < e->let_nodes.n; i++) e->let_of[((ir_node *)e->let_nodes.v[i])->id] = NULL;
    e->let_nodes.n = 0;
    if (!e->lets.n) {
        emit_body(o, ind, stmt);
        return;
    }
    fputs(" {\n", o);
    for (int i = 0; i < e->lets.n; i++) fprintf(o, "%s%s\n", ind, (const char *)e->lets.v[i]);
    fprintf(o, "%s%s\n%.*s}\n", ind, stmt, (int)strlen(ind) - 4, ind);
}

/* x's local: named after the tensor, then _2, _3 after another local or a tensor (each
 * base counts its own suffixes: a statement may hold hundreds of locals of one line). */
static const char *local_name(emitter *e, const ir_node *x) {
    const char *base = names_unreserved(e->a, names_base(e->g, e->owners, x)), *id = base;
    int k = names_set_add(&e->bases, base) + 1;
    for (k = k < 2 ? 2 : k; names_set_has(&e->cnames, id) || names_set_has(&e->locals, id); k++)
        id = arena_printf(e->a, "%s_%d", base, k);
    names_set_add(&e->locals, id);
    return id;
}

/* Input x of an expression that names it `uses` times.  An inlined input named more than
 * once (relu's template names its input twice) is computed once, into a local of the
 * statement, named after the tensor: copying its text to every place instead doubles the
 * output per level of nesting.  So is one that nests too deep. */
static const char *operand(emitter *e, const ir_node *x, const ictx *c, int uses) {
    if (e->let_of[x->id]) return e->let_of[x->id];
    int siblings = e->depth;
    e->depth = 0;
    const char *v = emit_read_at(e, x, c);   /* an inlined x's emit_expr sets e->depth */
    int depth = e->depth;
    if (e->in_stmt && depth > 0 && (uses > 1 || depth >= EMIT_NEST_MAX)) {
        const char *name = local_name(e, x);
        ptrvec_push(e->a, &e->lets, (void *)arena_printf(e->a, "const %s %s = %s;", e->T, name, v));
        ptrvec_push(e->a, &e->let_nodes, (void *)x);
        e->let_of[x->id] = name;
        v = name;
        depth = 0;
    }
    e->depth = siblings > depth ? siblings : depth;
    return v;
}

static int count_of(const char *t, const char *what) {
    int n = 0;
    for (const char *p = t; (p = strstr(p, what)) != NULL; p += strlen(what)) n++;
    return n;
}

/* Fills in a template of ir_maps (see ir.h) for node x at the loop index.  A forward
 * node's inputs are its arguments; a gradient node's are the upstream gradient, then
 * those of $a $b $c $y its template reads, in that order.  The text is written once into
 * a buffer: appending each piece to a copy of the whole costs the square of its length. */
static const char *expand_map(emitter *e, const char *t, const ir_node *x, const ictx *c) {
    const char *slot[5] = {NULL};      /* $a $b $c $y $g */
    static const char *const names[4] = {"$a", "$b", "$c", "$y"};
    if (x->op == OP_MAP) {
        for (int k = 0; k < x->nin; k++) slot[k] = operand(e, x->in[k], c, count_of(t, names[k]));
    } else {
        int k = 0;
        slot[4] = operand(e, x->in[k++], c, count_of(t, "$g"));
        for (int s = 0; s < 4; s++)
            if (strstr(t, names[s])) slot[s] = operand(e, x->in[k++], c, count_of(t, names[s]));
    }
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    for (const char *p = t; *p;) {
        if (*p == '$') {
            char v = p[1];
            const char *s = v == 'a' ? slot[0] : v == 'b' ? slot[1] : v == 'c' ? slot[2] : v == 'y' ? slot[3]
                          : v == 'g' ? slot[4] : v == 'p' ? emit_lit(e, x->attr[0]) : emit_lit(e, x->attr[1]);
            fputs(s ? s : "0", out);
            p += 2;
        } else if (*p == '#') {
            char *end;
            fputs(emit_lit(e, strtod(p + 1, &end)), out);
            p = end;
        } else if (*p == '@') {
            size_t n = strcspn(p + 1, "(");
            fputs(emit_fn(e, arena_strndup(e->a, p + 1, n)), out);
            p += 1 + n;
        } else {
            size_t n = strcspn(p, "$#@");
            fwrite(p, 1, n, out);
            p += n;
        }
    }
    fclose(out);
    const char *r = arena_strndup(e->a, text, len);
    free(text);
    return r;
}

/* The C expression computing elementwise node x at the loop index.  Each input is read
 * only where the op uses it: reading it builds its whole expression. */
static const char *expr_of(emitter *e, const ir_node *x, const ictx *c) {
    double k = x->attr[0];
    const char *a = "", *b = "";
    if (x->nin > 0 && x->op != OP_MAP && x->op != OP_MAP_GRAD && x->op != OP_DROPOUT_MASK)
        a = operand(e, x->in[0], c, x->op == OP_POWC && k == 2 ? 2 : 1);
    /* u^1's gradient never reads u: declaring it would leave an unused variable */
    int reads_b = x->op != OP_MAP && x->op != OP_MAP_GRAD && !(x->op == OP_POWC_GRAD && k == 1);
    if (x->nin > 1 && reads_b) b = operand(e, x->in[1], c, 1);
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
        if (k == 0.5) return arena_printf(e->a, "%s(%s)", emit_fn(e, "sqrt"), a);
        return arena_printf(e->a, "%s(%s, %s)", emit_fn(e, "pow"), a, emit_lit(e, k));
    case OP_POWC_GRAD:
        if (k == 2) return arena_printf(e->a, "(%s * %s * %s)", a, emit_lit(e, 2), b);
        if (k == 1) return a;
        return arena_printf(e->a, "(%s * %s * %s(%s, %s))", a, emit_lit(e, k), emit_fn(e, "pow"), b,
                            emit_lit(e, k - 1));
    case OP_MAP: return expand_map(e, ir_maps[x->fn].value, x, c);
    case OP_DROPOUT_MASK:      /* keep with probability 1 - p, scaled so the expectation is unchanged */
        /* numbered within the global batch, so a shard's examples draw their masks of one process */
        return arena_printf(e->a, "(%s_uniform(m->seed, m->step, %d, %s%s) >= %s ? %s : %s)", e->P, x->id,
                            emit_index_of(e, x, c),
                            x->batched && !e->embedded ? arena_printf(e->a, " + m->shard_at * %lld", (long long)ir_numel(&x->shape)) : "",
                            emit_lit(e, x->attr[0]), emit_lit(e, 1 / (1 - x->attr[0])), emit_lit(e, 0));
    case OP_REDUCE_MAX_GRAD:   /* the gradient goes to the extreme elements (grad.c divides it among ties) */
        return arena_printf(e->a, "(%s == %s ? %s : %s)", b, operand(e, x->in[2], c, 1), a, emit_lit(e, 0));
    case OP_MAP_GRAD: return expand_map(e, ir_maps[x->fn].grad[x->arg], x, c);
    default: return "0 /* not elementwise */";
    }
}

const char *emit_expr(emitter *e, const ir_node *x, const ictx *c) {
    e->depth = 0;
    const char *v = expr_of(e, x, c);
    /* one more than its deepest inlined input, unless x is that input's value unchanged
     * (a broadcast, u^1): a local would only rename it */
    int same = x->op == OP_COPY || x->op == OP_EXPAND || ((x->op == OP_POWC || x->op == OP_POWC_GRAD) && x->attr[0] == 1);
    e->depth += !same;
    return v;
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

void emit_collect_math(const ir_node *x, char *buf, size_t cap, int top) {
    if (!top && !emit_is_inline(x)) return;
    const char *m = math_of(x);
    if (*m && !strstr(buf, m) && strlen(buf) + strlen(m) + 4 < cap) {
        if (*buf) strcat(buf, "; ");
        strcat(buf, m);
    }
    for (int k = 0; k < x->nin; k++) emit_collect_math(x->in[k], buf, cap, 0);
}

/* ---- loops --------------------------------------------------------------------- */

static const char *axis_var(int d) {
    static const char *const v[IR_MAXRANK] = {"i", "j", "k", "l", "i4", "i5", "i6", "i7"};
    return v[d];
}

ictx emit_layout_ctx(const ir_node *lay) {
    ictx c = {LOOP_NESTED, lay->batched, lay->shape.rank, {0}, {0}};
    for (int d = 0; d < c.rank; d++) {
        c.dim[d] = lay->shape.dim[d];
        c.v[d] = axis_var(d);
    }
    return c;
}

/* Chooses the simplest walk of the loop that reads every operand of `roots` correctly. */
void emit_choose_mode(ictx *c, const ir_node *const *roots, int nroots, int allow_flat) {
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
const char *emit_open_loops(emitter *e, FILE *o, const ictx *c, const char *ind, int simd) {
    long long size = (long long)example_size(c);
    const char *cur = ind;
    int first = 1;
    if (c->mode == LOOP_FLAT) {
        loop_header(e, o, &cur, &first, c->batched ? arena_printf(e->a, "for (%s i = 0; i < %s; i++)",
                                                                  emit_count_type(e, size), emit_times(e, "n", size))
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
void emit_body(FILE *o, const char *ind, const char *stmt) { fprintf(o, "\n%s%s\n", ind, stmt); }

/* ---- the dispatch: each node to its kernel family ------------------------------ */

static void emit_node(emitter *e, FILE *o, ir_node *n) {
    quote_line(e, o, n, "    ");
    if (ir_ops[n->op].fam == FAM_SCAN) {
        emit_scan_op(e, o, n);
        return;
    }
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
    case FAM_ROW:
        if (n->op >= OP_LAYERNORM && n->op <= OP_NORM_PARAM_GRAD) emit_norm(e, o, n);   /* contiguous in ir.h */
        else emit_row(e, o, n);
        break;
    case FAM_MATMUL: emit_matmul(e, o, n); break;
    case FAM_DENSE: emit_dense(e, o, n); break;
    case FAM_ATTENTION: emit_attention(e, o, n); break;
    case FAM_LEAF: case FAM_SCAN: break;
    }
}

/* ---- the pass functions -------------------------------------------------------- */

static void declare(emitter *e, FILE *o, const ir_node *x, int writes) {
    if (x->per_step) return;   /* declared at each step of its loop (emit_scan.c) */
    const char *T = x->dtype == DT_CLASS ? "int32_t" : e->T;
    const char *what = x->name ? arena_printf(e->a, "  %s", emit_comment_text(e, x->name, strlen(x->name))) : "";
    switch (x->mem) {
    case MEM_EXTERN:
        fprintf(o, "    const %s *restrict %s = m->%s;   /* %s%s */\n", T, x->cname, x->cname, emit_shape_of(e, x),
                what);
        break;
    case MEM_PARAM:
        if (emit_param_in_flash(e, x))   /* the embedded target's baked weights, read in place */
            fprintf(o, "    const %s *restrict %s = %s_weights + %lld;   /* %s%s, in flash */\n", T, x->cname, e->P,
                    (long long)x->offset, emit_shape_of(e, x), what);
        else
            fprintf(o, "    %s%s *restrict %s = m->params + %lld;   /* %s%s */\n", writes ? "" : "const ", T, x->cname,
                    (long long)x->offset, emit_shape_of(e, x), what);
        break;
    case MEM_GRAD:
        fprintf(o, "    %s *restrict %s = m->grads + %lld;   /* %s */\n", T, x->cname, (long long)x->offset,
                emit_shape_of(e, x));
        break;
    case MEM_ACT:
        fprintf(o, "    %s *restrict %s = m->acts + %lld;   /* %s%s */\n", T, x->cname, (long long)x->offset,
                emit_shape_of(e, x), what);
        break;
    case MEM_NONE: break;
    }
}

int emit_in_fn(const ir_node *n, fn_kind k) {
    if (n->op == OP_CONST_TENSOR) return 0;   /* no pass computes it: NAME_new has */
    if (n->mem != MEM_ACT && n->mem != MEM_GRAD && !(n->op == OP_PAD_ADD && n->mem == MEM_NONE) && !n->epi && !n->into)
        return 0;
    if (k == FN_FORWARD) return n->pass == IR_FWD && n->in_train;
    if (k == FN_BACKWARD) return n->pass == IR_BWD && n->in_train;
    if (k == FN_EVAL) return n->pass == IR_FWD && n->in_eval && n->op != OP_BN_UPDATE;
    return n->pass == IR_FWD && n->in_infer && n->op != OP_BN_UPDATE;
}

/* Whether training and inference differ (dropout, batchnorm): then the loss in
 * inference mode has a forward pass of its own. */
int emit_has_modes(const ir_graph *g) {
    for (int i = 0; i < g->fwd_count; i++)
        if (ir_at(g, i)->op == OP_SELECT) return 1;
    return 0;
}

static const char *const names_of_pass[] = {"forward", "backward", "infer", "forward_eval"};

/* Whether n holds a causal_mask's -inf by design: the mask, or elementwise arithmetic on it
 * (scores + mask), up to the softmax that turns it into exact zeros.  Bounded in depth: a
 * longer chain is checked as any tensor. */
static int holds_mask(const ir_node *n, int depth) {
    if (n->op == OP_CONST_TENSOR) return !strcmp(ir_init_names[n->param.init], "causal_mask");
    if (depth == 0 || n->pass != IR_FWD || (n->op != OP_ADD && n->op != OP_SUB && n->op != OP_MUL)) return 0;
    for (int k = 0; k < n->nin; k++)
        if (holds_mask(n->in[k], depth - 1)) return 1;
    return 0;
}

/* --check-numerics: one line after each block of the training step; costs a branch when off. */
static void emit_check(emitter *e, FILE *o, ir_node *n, const char *pass) {
    if (e->embedded) return;   /* the device has no snprintf: no --check-numerics */
    if (holds_mask(n, 8)) return;   /* -inf where the mask hides a score is no fault */
    /* a scan's stacked tensors are written a step at a time, copies of checked ones */
    if (n->op == OP_BN_UPDATE || n->op == OP_SCAN_OUT || n->op == OP_SCAN_DX) return;
    /* a tiled pad's parts are written one by one, each a tensor checked when it was computed */
    if (n->tiled) return;
    long long numel = (long long)ir_numel(&n->shape);
    const char *what = n->pass == IR_BWD && n->grad_of && n->grad_of->name
                           ? arena_printf(e->a, "d%s", n->grad_of->name) : n->name ? n->name : emit_mark(e, n);
    fprintf(o, "    if (m->check == 1) %s_check(m, %s, (size_t)%s%lld, %s, %d, \"%s\");\n", e->P, emit_mark(e, n),
            n->batched ? "n * " : "", numel, emit_cstring(e, what), n->stmt_line, pass);
}

void emit_check_function(emitter *e, FILE *o) {
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

/* One node's block of pass function k, and its --check-numerics line. */
void emit_block(emitter *e, FILE *o, ir_node *n, fn_kind k) {
    emit_node(e, o, n);
    if (k == FN_FORWARD || k == FN_BACKWARD)
        emit_check(e, o, n->pooled ? n->pooled : n->epi ? n->epi : n->into ? n->into : n, names_of_pass[k]);
    /* what its code computes too: a convolution's input gradient, attention's other gradients */
    for (ir_node *x = n->also; x && (k == FN_FORWARD || k == FN_BACKWARD); x = x->also) emit_check(e, o, x, names_of_pass[k]);
}

/* The examples batch statistics span: the call's n, or the global batch when a shard's
 * statistics are summed over the processes (synchronized batchnorm, NAME_shard). */
const char *emit_stats_n(const emitter *e) {
    return e->embedded ? "n" : "(m->sum_ranks && m->shard_n ? m->shard_n : n)";
}

/* The examples the mean loss divides by: the call's, or a shard's global batch (the
 * embedded target has no shards). */
static const char *mean_n(const emitter *e) { return e->embedded ? "n" : "(m->shard_n ? m->shard_n : n)"; }

/* A loop's iterations shared among nnc's threads (EMIT_OMP_ROWS, then `rest`, a clause or
 * a comment); the embedded target has one thread and no OpenMP: nothing. */
void emit_omp_rows(const emitter *e, FILE *o, const char *ind, const char *rest) {
    if (!e->embedded) fprintf(o, "%s%s%s\n", ind, EMIT_OMP_ROWS, rest);
}

/* The GEMM function a product calls: nnr_sgemm, which cuts a large product among nnc's
 * threads, or (cut 0) cblas_sgemm itself; the embedded target's own loops (emit_embedded.c). */
const char *emit_gemm_fn(const emitter *e, int cut) {
    if (e->embedded) return arena_printf(e->a, "%s_gemm", e->P);
    return arena_printf(e->a, "%s_%cgemm", cut ? "nnr" : "cblas", e->f[0] ? 's' : 'd');
}

int emit_names_id(const char *s, const char *id) {
    size_t n = strlen(id);
    for (const char *p = strstr(s, id); p; p = strstr(p + 1, id)) {
        int before = p > s && (isalnum((unsigned char)p[-1]) || p[-1] == '_');
        int after = isalnum((unsigned char)p[n]) || p[n] == '_';
        if (!before && !after) return 1;
    }
    return 0;
}

void emit_pass(emitter *e, FILE *o, fn_kind k) {
    ir_graph *g = e->g;
    memset(e->used, 0, (size_t)g->nodes.n);
    e->last_line = 0;
    e->last_call = 0;
    e->infer_mode = k == FN_INFER || k == FN_EVAL;
    char *text = NULL;
    size_t len = 0;
    FILE *b = open_memstream(&text, &len);
    int any = 0, inv_n = 0;
    for (int i = 0; i < g->nodes.n; i++) {
        ir_node *n = ir_at(g, i);
        if (!emit_in_fn(n, k)) continue;
        if (n->folded) continue;   /* computed by another node's code (a convolution's gradients) */
        if (n->loop) i = emit_loop(e, b, n->loop, k);   /* the loop's nodes, inside it */
        else emit_block(e, b, n, k);
        any = 1;
    }
    if ((k == FN_FORWARD || k == FN_EVAL) && g->loss->mem != MEM_NONE) {
        fprintf(b, "\n    /* the mean loss over the batch: training minimizes it */\n");
        if (g->loss->batched) {
            fprintf(b, "    double total = 0;\n    for (int b = 0; b < n; b++) total += %s[b];\n",
                    emit_mark(e, g->loss));
            fprintf(b, "    m->loss = total / %s;%s\n", mean_n(e),
                    e->embedded ? "" : "   /* a shard's: its part of the global mean */");
        } else {
            fprintf(b, "    m->loss = %s[0];\n", emit_mark(e, g->loss));
        }
    }
    fclose(b);
    inv_n = emit_names_id(text, "inv_n");
    int inv_batch = emit_names_id(text, "inv_batch");
    /* NAME_forward and NAME_backward are the public API's (emit_api.c): the passes they run are
     * NAME_forward_pass and NAME_backward_pass */
    static const char *const names[] = {"forward_pass", "backward_pass", "infer", "forward_eval"};
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
    /* a shard of a global batch (NAME_shard): the mean is the global batch's */
    if (inv_n) fprintf(o, "    const %s inv_n = %s / %s;   /* d mean(loss) / d loss[b] */\n", e->T, emit_lit(e, 1),
                       mean_n(e));
    if (inv_batch) fprintf(o, "    const %s inv_batch = %s / %s;   /* 1 / the examples of the batch statistics */\n",
                           e->T, emit_lit(e, 1), emit_stats_n(e));
    if (!any && !strstr(text, "m->loss")) fprintf(o, "    (void)m; (void)n;\n");
    else if (!inv_n && !inv_batch && !emit_names_id(text, "n"))   /* -Wunused-parameter */
        fprintf(o, "    (void)n;   /* no tensor of this pass has a batch axis */\n");
    fputs(text, o);
    fputs("}\n", o);
    free(text);
}
