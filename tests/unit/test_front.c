/* test_front.c — CUnit tests of the compiler's passes, one suite per pass: the scanner
 * and parser, lowering (names, layers, train settings), shape inference, autodiff,
 * fusion, the memory plan, the name supply and the emitter.  Models are compiled from
 * strings through the same passes as the driver's pipeline; diagnostics are captured in
 * memory so tests can assert on their text. */
#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>
#include "ast.h"
#include "builtins.h"
#include "codegen.h"
#include "lower.h"
#include "lower_internal.h"   /* call_map, to find the elementwise rows */
#include "shape.h"

typedef struct unit {
    arena     a;
    diag      d;
    char     *msgs;       /* everything the diagnostics printed */
    size_t    msglen;
    FILE     *out;
    parse_ctx p;
    ir_graph *g;
} unit;

/* --target embedded and --infer-only for the next compile_upto (test_embedded sets them) */
static int unit_embedded, unit_infer_only;

/* Runs the pipeline up to and including `last` ("parse", "lower", "shapes", "grad",
 * "fuse", "plan", "names"); returns the error count. */
static int compile_upto(unit *u, const char *text, const char *last) {
    int embedded = unit_embedded, infer_only = unit_infer_only;
    memset(u, 0, sizeof *u);
    u->out = open_memstream(&u->msgs, &u->msglen);
    source *src = source_from_string(&u->a, "t.nn", text);
    diag_init(&u->d, src, u->out);
    u->p = (parse_ctx){&u->a, &u->d, {0}};
    int errors = parse_source(&u->p, src);
    if (errors || !strcmp(last, "parse")) goto done;
    u->g = ir_graph_new(&u->a, src);
    u->g->embedded = embedded;
    u->g->infer_only = infer_only;
    lower_program(u->g, &u->p.prog, &u->d);
    if (u->d.errors || !strcmp(last, "lower")) goto done;
    shape_pass(u->g, &u->d);
    if (u->d.errors || !strcmp(last, "shapes")) goto done;
    if ((!infer_only && grad_build(u->g, &u->d)) || !strcmp(last, "grad")) goto done;
    fuse_plan(u->g);
    if (!strcmp(last, "fuse")) goto done;
    plan_memory(u->g);
    if (!strcmp(last, "plan")) goto done;
    names_assign(u->g);
done:
    fflush(u->out);
    return u->d.errors;
}

static void unit_free(unit *u) {
    fclose(u->out);
    free(u->msgs);
    arena_free(&u->a);
}

static ir_node *named(unit *u, const char *name) {
    for (int i = 0; i < u->g->nodes.n; i++) {
        ir_node *n = ir_at(u->g, i);
        if (n->name && !strcmp(n->name, name)) return n;
    }
    return NULL;
}

static const char *MLP =
    "model mlp\n"
    "input x: [784]\n"
    "label y: class(10)\n"
    "h1 = relu(dense(x, 256))\n"
    "logits = dense(h1, 10)\n"
    "loss = cross_entropy(logits, y)\n"
    "output probs = softmax(logits)\n"
    "train { batch = 64; epochs = 2\n optimizer = adam(lr=0.01) }\n";

/* ---- parser ----------------------------------------------------------------------- */

static void test_parse_statements(void) {
    unit u;
    CU_ASSERT_EQUAL(compile_upto(&u, MLP, "parse"), 0);
    int count[ST_TRAIN + 1] = {0};
    for (ast_stmt *s = u.p.prog.first; s; s = s->next) count[s->kind]++;
    CU_ASSERT_EQUAL(count[ST_MODEL], 1);
    CU_ASSERT_EQUAL(count[ST_INPUT], 1);
    CU_ASSERT_EQUAL(count[ST_LABEL], 1);
    CU_ASSERT_EQUAL(count[ST_BIND], 2);
    CU_ASSERT_EQUAL(count[ST_LOSS], 1);
    CU_ASSERT_EQUAL(count[ST_OUTPUT], 1);
    CU_ASSERT_EQUAL(count[ST_TRAIN], 1);
    unit_free(&u);
}

static void test_parse_precedence(void) {
    unit u;
    CU_ASSERT_EQUAL(compile_upto(&u, "model m\ninput x: []\nloss = -x ^ 2 + x * x / 3 @ x\n", "parse"), 0);
    ast_stmt *s = u.p.prog.last;
    /* (-(x^2)) + ((x*x)/3 @ x): '+' at the top, unary minus binds looser than '^' */
    CU_ASSERT_EQUAL(s->value->kind, AST_BINARY);
    CU_ASSERT_EQUAL(s->value->op, '+');
    CU_ASSERT_EQUAL(s->value->lhs->kind, AST_NEG);
    CU_ASSERT_EQUAL(s->value->lhs->lhs->op, '^');
    CU_ASSERT_EQUAL(s->value->rhs->op, '@');
    CU_ASSERT_EQUAL(s->value->rhs->lhs->op, '/');
    unit_free(&u);
}

static void test_parse_locations_and_recovery(void) {
    unit u;
    int errors = compile_upto(&u, "model m\nh = relu(x\ninput x: [3]\ny = = 2\n", "parse");
    CU_ASSERT_EQUAL(errors, 2);   /* both bad statements reported, parsing went on */
    CU_ASSERT_PTR_NOT_NULL(strstr(u.msgs, "t.nn:2:9: error: this '(' is never closed"));
    CU_ASSERT_PTR_NOT_NULL(strstr(u.msgs, "t.nn:4:5: error: syntax error"));
    CU_ASSERT_PTR_NOT_NULL(strstr(u.msgs, "\n    y = = 2\n        ^\n"));
    unit_free(&u);
}

static void test_parse_garbage(void) {
    unit u;
    static const char garbage[] = "model m\n\x01\x02\xff\xfe $ input x: [3]\n";
    CU_ASSERT(compile_upto(&u, garbage, "parse") > 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(u.msgs, "stray"));
    unit_free(&u);
}

static void test_parse_comments_semicolons(void) {
    unit u;
    CU_ASSERT_EQUAL(compile_upto(&u, "# c\nmodel m # c\ninput x: [2]; target t: [2]\n"
                                     "loss = mse(dense(x,\n 2), t)", "lower"), 0);
    CU_ASSERT_PTR_NOT_NULL(u.g->loss);
    unit_free(&u);
}

/* ---- lowering -------------------------------------------------------------------- */

static void test_lower_layer_params(void) {
    unit u;
    CU_ASSERT_EQUAL(compile_upto(&u, MLP, "shapes"), 0);
    ir_node *w = named(&u, "h1.weight"), *b = named(&u, "h1.bias");
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(w->shape.rank, 2);
    CU_ASSERT_EQUAL(w->shape.dim[0], 256);
    CU_ASSERT_EQUAL(w->shape.dim[1], 784);
    CU_ASSERT_EQUAL(b->shape.dim[0], 256);
    CU_ASSERT_EQUAL(u.g->params.n, 4);
    CU_ASSERT_EQUAL(u.g->train.batch, 64);
    CU_ASSERT_EQUAL(u.g->train.epochs, 2);
    CU_ASSERT_DOUBLE_EQUAL(u.g->train.lr, 0.01, 1e-12);
    unit_free(&u);
}

static void test_lower_numbered_layers(void) {
    unit u;
    CU_ASSERT_EQUAL(compile_upto(&u, "model m\ninput x: [4]\ntarget t: [2]\nh = dense(relu(dense(x, 3)), 2)\n"
                                     "loss = mse(h, t) + sum(h.0.weight * h.0.weight)\n", "shapes"), 0);
    CU_ASSERT_PTR_NOT_NULL(named(&u, "h.0.weight"));
    CU_ASSERT_PTR_NOT_NULL(named(&u, "h.1.bias"));
    CU_ASSERT_PTR_NULL(named(&u, "h.weight"));
    unit_free(&u);
}

static void test_lower_errors(void) {
    unit u;
    int errors = compile_upto(&u, "model m\ninput x: [4]\nh = relu(xx)\nh = tanh(x)\nz = foo(x)\n"
                                  "w = dense(x)\nloss = sum(x)\n", "lower");
    CU_ASSERT_EQUAL(errors, 4);
    CU_ASSERT_PTR_NOT_NULL(strstr(u.msgs, "unknown name 'xx'; did you mean 'x'?"));
    CU_ASSERT_PTR_NOT_NULL(strstr(u.msgs, "'h' is already bound"));
    CU_ASSERT_PTR_NOT_NULL(strstr(u.msgs, "unknown function 'foo'"));
    CU_ASSERT_PTR_NOT_NULL(strstr(u.msgs, "'dense' takes 2 arguments, got 1"));
    unit_free(&u);
}

/* ---- functions (lower_func.c) ------------------------------------------------------ */

static const char *BLOCKS =
    "model m\ninput x: [6]\ntarget t: [6]\n"
    "def block(h, units) {\n"
    "    a = relu(dense(h, units))\n"
    "    return h + dense(a, 6)\n"
    "}\n"
    "b1 = block(x, 5)\n"
    "h = repeat(block, 4, b1, 3)\n"
    "e = block(h, 5, share=b1)\n"
    "loss = mse(e, t)\n";

static void test_func_param_names(void) {
    unit u;
    CU_ASSERT_EQUAL_FATAL(compile_upto(&u, BLOCKS, "shapes"), 0);
    static const char *const want[] = {"b1.a.weight", "b1.a.bias", "b1.weight", "b1.bias", "h.0.a.weight",
                                       "h.3.a.bias", "h.3.weight", "h.2.bias"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        ir_node *p = named(&u, want[i]);
        CU_ASSERT_PTR_NOT_NULL(p);
        if (p) CU_ASSERT_EQUAL(p->op, OP_PARAM);
    }
    CU_ASSERT_EQUAL(named(&u, "b1.a.weight")->shape.dim[0], 5);   /* the number argument as units */
    CU_ASSERT_EQUAL(named(&u, "h.1.a.weight")->shape.dim[0], 3);
    CU_ASSERT_EQUAL(u.g->params.n, 4 * 5);                        /* e made none: it shares b1's */
    CU_ASSERT_PTR_NULL(named(&u, "e.weight"));
    CU_ASSERT_PTR_NOT_NULL(named(&u, "e.a"));                      /* locals named under the call */
    CU_ASSERT_PTR_NOT_NULL(named(&u, "h.2"));                      /* a step of repeat */
    /* e's second dense reads b1's weight: one parameter, two consumers */
    ir_node *w = named(&u, "b1.weight");
    int users = 0;
    for (int i = 0; i < u.g->nodes.n; i++)
        for (int k = 0; k < ir_at(u.g, i)->nin; k++) users += ir_at(u.g, i)->in[k] == w;
    CU_ASSERT_EQUAL(users, 2);
    unit_free(&u);
}

static void test_func_lines_and_scope(void) {
    unit u;
    CU_ASSERT_EQUAL_FATAL(compile_upto(&u, BLOCKS, "lower"), 0);
    ir_node *a = named(&u, "b1.a");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(a->stmt_line, 5);
    CU_ASSERT_EQUAL(a->call_line, 8);
    CU_ASSERT_STRING_EQUAL(a->in_fn, "block");
    CU_ASSERT_EQUAL(named(&u, "b1")->stmt_line, 6);   /* the return value, named by the caller */
    unit_free(&u);
    /* a local is not seen outside; a global bound after the call is not seen inside */
    CU_ASSERT_EQUAL(compile_upto(&u, "model m\ninput x: [4]\ndef f(h) { a = relu(h); return a * k }\n"
                                     "y = f(x)\nk = 2\nloss = sum(a + y)\n", "lower"), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(u.msgs, "unknown name 'k'"));
    CU_ASSERT_PTR_NOT_NULL(strstr(u.msgs, "note: in this call of 'f'"));
    CU_ASSERT_PTR_NOT_NULL(strstr(u.msgs, "unknown name 'a'"));
    unit_free(&u);
    /* a local may hide a global; tuples come apart */
    CU_ASSERT_EQUAL(compile_upto(&u, "model m\ninput x: [4]\nk = 3\ndef f(h, k) { return (dense(h, k), h * k) }\n"
                                     "p, q = f(x, 2)\nloss = sum(p) + sum(q)\n", "shapes"), 0);
    CU_ASSERT_EQUAL(named(&u, "p.weight")->shape.dim[0], 2);
    CU_ASSERT_PTR_NOT_NULL(named(&u, "q"));
    unit_free(&u);
}

static void test_parse_def(void) {
    unit u;
    CU_ASSERT_EQUAL(compile_upto(&u, "model m\ndef f(h) { return h }\ndef g(a, b) {\n  c = a; d = b\n\n"
                                     "  return (c, d)\n}\ndef z() { return 1 }\nx, y = g(1, 2)\n", "parse"), 0);
    int defs = 0;
    for (ast_stmt *s = u.p.prog.first; s; s = s->next)
        if (s->kind == ST_DEF) {
            defs++;
            int n = 0;
            for (ast_stmt *b = s->body; b; b = b->next) n++;
            CU_ASSERT_EQUAL(n, s->name[0] == 'g' ? 3 : 1);
        } else if (s->kind == ST_BIND) {
            CU_ASSERT_PTR_NOT_NULL(s->names);
            CU_ASSERT_EQUAL(s->value->kind, AST_CALL);
        }
    CU_ASSERT_EQUAL(defs, 3);
    unit_free(&u);
}

/* Every row of the built-in table parses whole into what gather_args checks calls
 * against, and the rows lowered by call_map are exactly the functions of ir_maps (which
 * gives their code), with the arguments call_map reads. */
static void test_lower_builtin_table(void) {
    builtin_sig found;
    for (const builtin *b = builtins; b->name; b++) {
        builtin_sig s;
        builtin_parse(b, &s);
        int items = 1;
        for (const char *c = b->args; *c; c++) items += *c == ',';
        CU_ASSERT(strlen(b->args) < sizeof s.buf);
        CU_ASSERT_EQUAL(s.nargs, items - (strchr(b->args, '*') != NULL) - s.no_keywords - s.variadic);
        CU_ASSERT(!s.no_keywords || !strcmp(b->args + strlen(b->args) - 3, ", /"));
        CU_ASSERT(s.positional <= s.nargs && s.required <= s.positional);
        for (int i = 0; i < s.nargs; i++) {
            CU_ASSERT(s.name[i][0] && strspn(s.name[i], "abcdefghijklmnopqrstuvwxyz_0123456789") == strlen(s.name[i]));
            CU_ASSERT(i < s.required || s.def[i] || i >= s.positional);   /* optional positionals come last */
            for (int j = 0; j < i; j++) CU_ASSERT(strcmp(s.name[i], s.name[j]) != 0);
        }
        CU_ASSERT(b->kind < BK__COUNT && b->lower && b->doc[0] && !strchr(b->doc, '\n'));
        CU_ASSERT_PTR_EQUAL(builtin_find(b->name, s.positional, &found), b);   /* overloads differ in positional count */
        CU_ASSERT(found.nargs == s.nargs && found.required == s.required);    /* and it gives the row's args */
        if (b->lower == call_map) {
            int fn = ir_map_find(b->name);
            CU_ASSERT_FATAL(fn >= 0);
            CU_ASSERT_EQUAL(s.positional, ir_maps[fn].nargs + ir_maps[fn].nconst);
            CU_ASSERT_EQUAL(s.nargs, s.positional);
            /* the tensor arguments and clip's bounds; leaky_relu's slope has a default */
            CU_ASSERT_EQUAL(s.required, ir_maps[fn].nargs + (ir_maps[fn].nconst == 2 ? 2 : 0));
        }
    }
    for (int fn = 0; ir_maps[fn].name; fn++) {
        const builtin *b = builtin_find(ir_maps[fn].name, ir_maps[fn].nargs + ir_maps[fn].nconst, &found);
        /* gelu's row picks one of its two functions by approximate= (call_gelu) */
        CU_ASSERT(b && (b->lower == call_map || (b->lower == call_gelu && !strcmp(b->name, "gelu"))));
    }
    unit u;
    CU_ASSERT_EQUAL(compile_upto(&u, "model m\ninput x: [4, 3]\nh = lstn(x, 3)\nloss = sum(x)\n", "lower"), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(u.msgs, "unknown function 'lstn'; did you mean 'lstm'?"));
    unit_free(&u);
}

/* The generated C of a model, without its comments (which quote the .nn lines); NULL
 * when the model does not compile.  The caller frees it. */
static char *c_without_comments(const char *model) {
    unit u;
    if (compile_upto(&u, model, "names")) {
        fprintf(stderr, "%s%s", model, u.msgs);
        unit_free(&u);
        return NULL;
    }
    char *text = NULL, *out;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    emit_opts o = {"m.h", "m.nn", NULL, 0, 0, 0, NULL, 0};
    emit_c(u.g, f, &o);
    fclose(f);
    out = malloc(len + 1);
    size_t n = 0;
    for (const char *c = text; *c;) {
        if (c[0] == '/' && c[1] == '*') {
            const char *end = strstr(c + 2, "*/");
            c = end ? end + 2 : c + strlen(c);
        } else {
            out[n++] = *c++;
        }
    }
    out[n] = 0;
    free(text);
    unit_free(&u);
    return out;
}

/* The defaults the table documents (docs/functions.md) are the ones lowering applies: a
 * call that leaves them out and one that writes each of them give the same C.  Every row
 * with a default one could write needs an example call here, so a new one cannot slip
 * past. */
static void test_lower_builtin_defaults(void) {
    static const struct { const char *name, *input, *call; } examples[] = {
        {"dense", "[6]", "dense(x, 4%s)"},
        {"concat", "[2, 3]", "concat(x, x%s)"},
        {"softmax", "[2, 3]", "softmax(x%s)"},
        {"log_softmax", "[2, 3]", "log_softmax(x%s)"},
        {"split", "[2, 4]", "x\na, c = split(x, 2%s)\noutput o = a * c"},   /* a tuple: its parts are read */
        {"triplet", "[6]", "triplet(x, 2 * x, 3 * x%s)"},
        {"conv1d", "[2, 8]", "conv1d(x, 3, kernel=3%s)"},
        {"conv2d", "[2, 6, 6]", "conv2d(x, 3, kernel=3%s)"},
        {"batchnorm", "[2, 4, 4]", "batchnorm(x%s)"},
        {"layernorm", "[3, 4]", "layernorm(x%s)"},
        {"rmsnorm", "[3, 4]", "rmsnorm(x%s)"},
        {"gelu", "[6]", "gelu(x%s)"},
        {"leaky_relu", "[6]", "leaky_relu(x%s)"},
        {"rnn", "[5, 3]", "rnn(x, 4%s)"},
        {"lstm", "[5, 3]", "lstm(x, 4%s)"},
        {"gru", "[5, 3]", "gru(x, 4%s)"},
        {"attention", "[3, 2, 4]", "attention(x, x, x%s)"},
    };
    for (const builtin *b = builtins; b->name; b++) {
        builtin_sig s;
        builtin_parse(b, &s);
        char given[256] = "";
        for (int i = 0; i < s.nargs; i++)
            if (s.def[i] && s.def[i][0] != '(')
                snprintf(given + strlen(given), sizeof given - strlen(given), ", %s=%s", s.name[i], s.def[i]);
        if (!given[0]) continue;
        size_t k = 0;
        while (k < sizeof examples / sizeof *examples && strcmp(examples[k].name, b->name)) k++;
        CU_ASSERT_FATAL(k < sizeof examples / sizeof *examples);   /* a row without an example call */
        char plain[512], full[512], call0[256], call1[256];
        snprintf(call0, sizeof call0, examples[k].call, "");
        snprintf(plain, sizeof plain, "model m\ninput x: %s\nh = %s\nloss = sum(h)\n", examples[k].input, call0);
        snprintf(call1, sizeof call1, examples[k].call, given);
        snprintf(full, sizeof full, "model m\ninput x: %s\nh = %s\nloss = sum(h)\n", examples[k].input, call1);
        char *a = c_without_comments(plain), *c = c_without_comments(full);
        CU_ASSERT_PTR_NOT_NULL(a);
        CU_ASSERT_PTR_NOT_NULL(c);
        if (a && c && strcmp(a, c)) {
            fprintf(stderr, "\n'%s' and '%s' give different C\n", call0, call1);
            CU_FAIL("a documented default is not the lowering's");
        }
        free(a);
        free(c);
    }
}

static void test_lower_train_errors(void) {
    unit u;
    CU_ASSERT_EQUAL(compile_upto(&u, "model m\ninput x: [1]\nloss = sum(x)\n"
                                     "train { batch = 0\n speed = 3\n optimizer = lamb(0.1) }\n", "lower"), 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(u.msgs, "batch must be an integer"));
    CU_ASSERT_PTR_NOT_NULL(strstr(u.msgs, "unknown train setting 'speed'"));
    CU_ASSERT_PTR_NOT_NULL(strstr(u.msgs, "unknown optimizer"));
    unit_free(&u);
}

/* adamw keeps its decay apart from the train block's L2; schedule_every picks t's unit */
static void test_lower_train_adamw(void) {
    unit u;
    CU_ASSERT_EQUAL(compile_upto(&u, "model m\ninput x: [1]\nloss = sum(x)\n"
                                     "train { optimizer = adamw(lr=0.01)\n schedule = warmup_cosine(2, 9)\n"
                                     " schedule_every = step }\n", "lower"), 0);
    CU_ASSERT_DOUBLE_EQUAL(u.g->train.adamw_decay, 0.01, 0);   /* torch.optim.AdamW's default */
    CU_ASSERT_DOUBLE_EQUAL(u.g->train.weight_decay, 0, 0);     /* no L2 */
    CU_ASSERT_EQUAL(u.g->train.sched_every, 1);
    CU_ASSERT_DOUBLE_EQUAL(u.g->train.sched_a, 2, 0);
    CU_ASSERT_DOUBLE_EQUAL(u.g->train.sched_b, 9, 0);
    unit_free(&u);
    /* the L2 weight_decay with adamw is refused, in either order */
    CU_ASSERT_EQUAL(compile_upto(&u, "model m\ninput x: [1]\nloss = sum(x)\n"
                                     "train { weight_decay = 0.1\n optimizer = adamw }\n", "lower"), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(u.msgs, "adamw(weight_decay=...)"));
    unit_free(&u);
}

/* A frozen param is planned after the trainable ones and gets no gradient; a const is a
 * tensor of the activation block, with no gradient either. */
static void test_const_frozen(void) {
    unit u;
    CU_ASSERT_EQUAL(compile_upto(&u, "model m\ninput x: [2, 3]\nparam f: [3] = ones frozen\nparam w: [3]\n"
                                     "const mask: [2, 2] = causal_mask\n"
                                     "loss = sum(softmax(x @ transpose(x) + mask)) + sum(x * f * w)\n", "plan"), 0);
    ir_node *f = named(&u, "f"), *w = named(&u, "w"), *mask = named(&u, "mask");
    CU_ASSERT_EQUAL(f->param.buffer, 2);
    CU_ASSERT_EQUAL(w->param.buffer, 0);
    CU_ASSERT_EQUAL(w->offset, 0);
    CU_ASSERT(f->offset >= u.g->train_size);
    CU_ASSERT(u.g->train_size > 0 && u.g->train_size < u.g->param_size);
    CU_ASSERT_PTR_NULL(f->grad);
    CU_ASSERT_PTR_NOT_NULL(w->grad);
    CU_ASSERT_EQUAL(mask->op, OP_CONST_TENSOR);
    CU_ASSERT_EQUAL(mask->mem, MEM_ACT);
    CU_ASSERT_FALSE(mask->batched);
    CU_ASSERT_PTR_NULL(mask->grad);
    CU_ASSERT_EQUAL(u.g->params.n, 2);   /* the const is not a parameter */
    unit_free(&u);
    /* `const(v)` is still the initializer; `const NAME:` the statement */
    CU_ASSERT_EQUAL(compile_upto(&u, "model m\ninput x: [3]\nparam p: [3] = const(0.5)\nconst c: [3] = const(2)\n"
                                     "loss = sum(x * p * c)\n", "lower"), 0);
    CU_ASSERT_DOUBLE_EQUAL(named(&u, "c")->param.a, 2, 0);
    unit_free(&u);
}

/* ---- shapes ----------------------------------------------------------------------- */

static void test_shape_broadcast(void) {
    ir_shape a = {2, {3, 1}}, b = {1, {4}}, c = {2, {2, 4}}, r;
    CU_ASSERT_EQUAL(shape_broadcast(&a, &b, &r), 0);
    CU_ASSERT_EQUAL(r.rank, 2);
    CU_ASSERT_EQUAL(r.dim[0], 3);
    CU_ASSERT_EQUAL(r.dim[1], 4);
    CU_ASSERT_EQUAL(shape_broadcast(&a, &c, &r), -1);
    ir_shape s = {0, {0}};
    CU_ASSERT_EQUAL(shape_broadcast(&s, &c, &r), 0);
    CU_ASSERT(ir_shape_eq(&r, &c));
}

static void test_shape_matmul_forms(void) {
    unit u;
    CU_ASSERT_EQUAL(compile_upto(&u, "model m\ninput x: [5]\ninput X: [3, 5]\nparam W: [4, 5]\nparam V: [5, 2]\n"
                                     "a = W @ x\nb = X @ V\nc = x @ V\nd = x @ x\nloss = sum(a) + sum(b) + sum(c) + d\n",
                                 "shapes"), 0);
    ir_node *a = named(&u, "a"), *b = named(&u, "b"), *c = named(&u, "c"), *d = named(&u, "d");
    CU_ASSERT(a->batched && a->shape.rank == 1 && a->shape.dim[0] == 4);
    CU_ASSERT(b->shape.rank == 2 && b->shape.dim[0] == 3 && b->shape.dim[1] == 2);
    CU_ASSERT(c->shape.rank == 1 && c->shape.dim[0] == 2);
    CU_ASSERT(d->shape.rank == 0);
    unit_free(&u);
}

/* NumPy's matmul: leading axes are stacks that broadcast; a vector gains and loses an axis. */
static void test_shape_matmul_stacks(void) {
    unit u;
    CU_ASSERT_EQUAL(compile_upto(&u, "model m\ninput a: [2, 1, 5, 3]\ninput b: [4, 3, 6]\ninput x: [4, 64, 32]\n"
                                     "param W: [32, 16]\ninput v: [3]\nparam s: [7, 2, 3]\n"
                                     "c = a @ b\nd = x @ W\ne = v @ b\nf = s @ v\n"
                                     "loss = sum(c) + sum(d) + sum(e) + sum(f)\n", "shapes"), 0);
    ir_node *c = named(&u, "c"), *d = named(&u, "d"), *e = named(&u, "e"), *f = named(&u, "f");
    ir_shape want_c = {4, {2, 4, 5, 6}}, want_d = {3, {4, 64, 16}}, want_e = {2, {4, 6}}, want_f = {2, {7, 2}};
    CU_ASSERT(ir_shape_eq(&c->shape, &want_c) && c->batched);
    CU_ASSERT(c->mm.srank == 2 && c->mm.stack[0] == 2 && c->mm.stack[1] == 4);
    CU_ASSERT(!c->mm.one[0][0] && c->mm.one[0][1]);   /* a: broadcast along the second axis */
    CU_ASSERT(c->mm.one[1][0] && !c->mm.one[1][1]);   /* b: along the missing first */
    CU_ASSERT(!c->mm.one[2][0] && !c->mm.one[2][1]);  /* a forward product sums over nothing */
    CU_ASSERT(ir_shape_eq(&d->shape, &want_d) && d->mm.srank == 1 && d->mm.one[1][0]);
    CU_ASSERT(ir_shape_eq(&e->shape, &want_e) && e->mm.ar == 1);
    CU_ASSERT(ir_shape_eq(&f->shape, &want_f) && f->mm.bc == 1 && f->batched);
    unit_free(&u);
    CU_ASSERT_EQUAL(compile_upto(&u, "model m\ninput x: [2, 3, 4]\nparam W: [3, 4, 5]\nloss = sum(x @ W)\n", "shapes"),
                    1);
    CU_ASSERT_PTR_NOT_NULL(strstr(u.msgs, "t.nn:4:14: error: shape mismatch in '@': the stacks [2] and [3] of "
                                          "[2, 3, 4] and [3, 4, 5] do not broadcast"));
    unit_free(&u);
}

static void test_shape_errors(void) {
    unit u;
    int errors = compile_upto(&u, "model m\ninput x: [256]\nlabel y: class(10)\nparam W: [3, 4]\n"
                                  "h = dense(x, 128) + x\nz = W @ x\nq = x + y\nloss = cross_entropy(dense(x, 9), y)\n",
                              "shapes");
    CU_ASSERT_EQUAL(errors, 4);
    CU_ASSERT_PTR_NOT_NULL(strstr(u.msgs, "t.nn:5:19: error: shape mismatch in '+': [128] and [256]"));
    CU_ASSERT_PTR_NOT_NULL(strstr(u.msgs, "inner dimensions 4 and 256 differ"));
    CU_ASSERT_PTR_NOT_NULL(strstr(u.msgs, "label 'y' holds class indices"));
    CU_ASSERT_PTR_NOT_NULL(strstr(u.msgs, "9 classes but 'y' is class(10)"));
    unit_free(&u);
}

static void test_shape_loss_scalar(void) {
    unit u;
    CU_ASSERT_EQUAL(compile_upto(&u, "model m\ninput x: [3]\nloss = x * 2\n", "shapes"), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(u.msgs, "the loss must be a scalar per example, but it is [3]"));
    unit_free(&u);
}

/* transpose and permute complete their permutation from the input's rank (a swap of two
 * axes, negative ones, permute's list); one that moves only axes of length 1 becomes a
 * view; concat joins any number of operands in one node; split's parts are slices; and
 * each mistake is one message at the call. */
static void test_shape_layout(void) {
    unit u;
    CU_ASSERT_EQUAL(compile_upto(&u, "model m\ninput x: [2, 3, 4]\ninput v: [3, 1, 2]\n"
                                     "a = transpose(x, 0, -1)\nb = permute(x, [1, 2, 0])\nc = permute(v, [1, 0, 2])\n"
                                     "d = concat(x, x, x, axis=1)\ne, f = split(x, 2, axis=0)\n"
                                     "loss = sum(a) + sum(b) + sum(c) + sum(d) + sum(e * f)\n",
                                 "shapes"), 0);
    ir_node *a = named(&u, "a"), *b = named(&u, "b"), *c = named(&u, "c"), *d = named(&u, "d");
    ir_node *e = named(&u, "e"), *f = named(&u, "f");
    CU_ASSERT(a->op == OP_TRANSPOSE && a->nperm == 3 && a->perm[0] == 2 && a->perm[1] == 1 && a->perm[2] == 0);
    CU_ASSERT(a->shape.rank == 3 && a->shape.dim[0] == 4 && a->shape.dim[1] == 3 && a->shape.dim[2] == 2);
    CU_ASSERT(b->op == OP_TRANSPOSE && b->perm[0] == 1 && b->perm[1] == 2 && b->perm[2] == 0);
    CU_ASSERT(b->shape.dim[0] == 3 && b->shape.dim[1] == 4 && b->shape.dim[2] == 2);
    CU_ASSERT(c->op == OP_RESHAPE && c->shape.dim[0] == 1 && c->shape.dim[1] == 3 && c->shape.dim[2] == 2);
    CU_ASSERT(d->op == OP_CONCAT && d->nin == 3 && d->shape.dim[1] == 9);
    CU_ASSERT(e->op == OP_SLICE && e->attr[0] == 0 && e->attr[1] == 1 && f->attr[0] == 1 && f->attr[1] == 2);
    unit_free(&u);
    int errors = compile_upto(&u, "model m\ninput x: [2, 3, 4]\na = permute(x, [0, 0, 1])\nb = permute(x, [0, 1])\n"
                                  "c = transpose(x, 0, 3)\nd = transpose(x)\ne, f = split(x, 3, axis=-1)\n"
                                  "h = softmax(x, axis=3)\nk = transpose(x, 1)\nloss = sum(split(x, 2))\n",
                              "shapes");
    CU_ASSERT_EQUAL(errors, 8);
    CU_ASSERT_PTR_NOT_NULL(strstr(u.msgs, "t.nn:3:5: error: permute: axis 0 is given twice for [2, 3, 4]"));
    CU_ASSERT_PTR_NOT_NULL(strstr(u.msgs, "t.nn:4:5: error: permute: 2 axes given for [2, 3, 4], which has 3"));
    CU_ASSERT_PTR_NOT_NULL(strstr(u.msgs, "t.nn:5:5: error: transpose: axis 3 is out of range for [2, 3, 4]"));
    CU_ASSERT_PTR_NOT_NULL(strstr(u.msgs, "t.nn:6:5: error: transpose takes a matrix per example"));
    CU_ASSERT_PTR_NOT_NULL(strstr(u.msgs, "t.nn:7:8: error: split: axis 2 of [2, 3, 4] has length 4, which does not "
                                          "split into 3 equal parts"));
    CU_ASSERT_PTR_NOT_NULL(strstr(u.msgs, "t.nn:8:5: error: softmax: axis 3 is out of range for [2, 3, 4]"));
    CU_ASSERT_PTR_NOT_NULL(strstr(u.msgs, "t.nn:9:5: error: transpose takes two axes to swap"));
    CU_ASSERT_PTR_NOT_NULL(strstr(u.msgs, "t.nn:10:12: error: a tuple of 2 values is not a tensor"));
    unit_free(&u);
}

/* A permute copies its last two axes in tiles only when the innermost loop would read
 * far apart: a swap of 130 x 129 axes does, one of 4 x 3 and a permute keeping the last
 * axis do not. */
static void test_emit_permute_tiles(void) {
    char *big = c_without_comments("model m\ninput x: [2, 130, 129]\nloss = sum(transpose(x, 1, 2) * 2)\n");
    char *small = c_without_comments("model m\ninput x: [2, 4, 3]\nloss = sum(transpose(x, 1, 2) * 2)\n");
    char *kept = c_without_comments("model m\ninput x: [130, 2, 129]\nloss = sum(transpose(x, 0, 1) * 2)\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    CU_ASSERT_PTR_NOT_NULL_FATAL(small);
    CU_ASSERT_PTR_NOT_NULL_FATAL(kept);
    CU_ASSERT_PTR_NOT_NULL(strstr(big, "for (int jj = 0; jj < 130; jj += 16)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(big, "out[i0 * 16770 + i1 * 130 + i2] = src[i0 * 16770 + i1 + i2 * 129];"));
    CU_ASSERT_PTR_NULL(strstr(small, "jj"));
    CU_ASSERT_PTR_NOT_NULL(strstr(small, "*out++ = src[i0 * 12 + i1 + i2 * 3];"));
    CU_ASSERT_PTR_NULL(strstr(kept, "jj"));
    free(big);
    free(small);
    free(kept);
}

/* where(c, a, b) chooses: an infinity in the branch not taken cannot leak into the
 * value or the gradients as c a + (1 - c) b would leak 0 * inf = nan. */
static void test_emit_where_chooses(void) {
    char *text = c_without_comments("model m\ninput c: [3]\ninput x: [3] grad\nloss = sum(where(c, x, log(x * 0)))\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, " != 0.0f ? "));
    free(text);
}

/* ---- autodiff --------------------------------------------------------------------- */

static void test_grad_sums_shared_tensor(void) {
    unit u;
    CU_ASSERT_EQUAL(compile_upto(&u, "model m\ninput x: [6]\nparam w: [6]\na = x * w\n"
                                     "loss = sum(exp(a) + a * a)\n", "grad"), 0);
    ir_node *a = named(&u, "a");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a->grad);
    CU_ASSERT_EQUAL(a->grad->op, OP_ADD);      /* three uses of a: contributions added */
    CU_ASSERT_EQUAL(a->grad->pass, IR_BWD);
    CU_ASSERT_PTR_EQUAL(a->grad->grad_of, a);
    ir_node *w = named(&u, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(w->grad);
    CU_ASSERT_EQUAL(w->grad->op, OP_SUM_TO);   /* w is broadcast over the batch */
    CU_ASSERT_FALSE(w->grad->batched);
    CU_ASSERT_EQUAL(u.g->fwd_count < u.g->nodes.n, 1);
    unit_free(&u);
}

static void test_grad_dense_products(void) {
    unit u;
    CU_ASSERT_EQUAL(compile_upto(&u, MLP, "grad"), 0);
    ir_node *w = named(&u, "h1.weight");
    CU_ASSERT_EQUAL(w->grad->op, OP_MATMUL);
    CU_ASSERT_TRUE(w->grad->mm.ta);            /* dW = dYᵀ X */
    CU_ASSERT_EQUAL(w->grad->shape.dim[0], 256);
    CU_ASSERT_EQUAL(w->grad->shape.dim[1], 784);
    ir_node *x = named(&u, "x");
    CU_ASSERT_PTR_NULL(x->grad);               /* no `grad` on the input: not computed */
    unit_free(&u);
}

/* The gradient of an operand broadcast over a stack is summed over that axis (and the
 * batch) by the product itself; each GEMM plan folds what the memory allows. */
static void test_grad_matmul_stack(void) {
    unit u;
    CU_ASSERT_EQUAL(compile_upto(&u, "model m\ninput x: [4, 3, 8] grad\ninput kt: [4, 8, 3]\nparam W: [8, 5]\n"
                                     "param P: [4, 2, 3]\ns = x @ kt\ny = x @ W\nz = P @ x\n"
                                     "loss = sum(s) + sum(y) + sum(z)\n", "plan"), 0);
    ir_node *w = named(&u, "W"), *p = named(&u, "P"), *s = named(&u, "s"), *y = named(&u, "y");
    CU_ASSERT_PTR_NOT_NULL_FATAL(w->grad);
    CU_ASSERT_EQUAL_FATAL(w->grad->op, OP_MATMUL);
    CU_ASSERT(!w->grad->batched && w->grad->mm.ta && w->grad->mm.one[2][0]);   /* dW = Σ xᵀ dY */
    stack_plan sp;
    stack_plan_of(w->grad, &sp);   /* K = batch · 4 · 3: one GEMM */
    CU_ASSERT(sp.fold == STACK_INNER && sp.naxes == 0 && sp.folded.batch && sp.folded.size == 4 && sp.K == 3);
    stack_plan_of(y, &sp);         /* M = batch · 4 · 3 */
    CU_ASSERT(sp.fold == STACK_ROWS && sp.naxes == 0 && sp.folded.batch && sp.folded.size == 4 && sp.M == 3);
    stack_plan_of(s, &sp);         /* a GEMM per matrix: the batch and the stack merged into one loop */
    CU_ASSERT(sp.fold == STACK_LOOP && sp.naxes == 1 && sp.axis[0].batch && sp.axis[0].size == 4);
    CU_ASSERT(sp.axis[0].stride[0] == 24 && sp.axis[0].stride[1] == 24 && sp.axis[0].stride[2] == 9);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p->grad);   /* dP: per head, summed over the batch: a loop, the batch inside */
    stack_plan_of(p->grad, &sp);
    CU_ASSERT(sp.fold == STACK_LOOP && sp.naxes == 2 && sp.axis[0].batch && sp.axis[0].stride[2] == 0);
    CU_ASSERT(!sp.axis[1].batch && sp.axis[1].size == 4 && sp.axis[1].stride[2] == 6);
    unit_free(&u);
}

/* layernorm's and rmsnorm's backward: one dx node per norm, reading the statistics its
 * forward pass kept (norm_stats), with the weight's and bias's gradients by-products of it,
 * [D] without a batch whatever the input's rank; the dx node is made even for an input
 * without a gradient, whose pass writes the parameters'. */
static void test_grad_norm_by_products(void) {
    unit u;
    CU_ASSERT_EQUAL(compile_upto(&u, "model m\ninput x: [2, 3, 5]\nh = layernorm(x)\nr = rmsnorm(h)\n"
                                     "loss = sum(r * r)\n", "grad"), 0);
    ir_node *w = named(&u, "h.weight"), *b = named(&u, "h.bias"), *rw = named(&u, "r.weight");
    CU_ASSERT_PTR_NOT_NULL_FATAL(w->grad);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b->grad);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rw->grad);
    CU_ASSERT_EQUAL(w->grad->op, OP_NORM_PARAM_GRAD);
    CU_ASSERT_EQUAL(b->grad->op, OP_NORM_PARAM_GRAD);
    CU_ASSERT(w->grad->attr[0] == 0 && b->grad->attr[0] == 1);
    CU_ASSERT_PTR_EQUAL(w->grad->in[0], b->grad->in[0]);   /* one pass writes both */
    const ir_node *dx = w->grad->in[0];
    CU_ASSERT_EQUAL(dx->op, OP_LAYERNORM_GRAD);
    CU_ASSERT(dx->batched && dx->shape.rank == 3 && dx->shape.dim[2] == 5);
    CU_ASSERT(!w->grad->batched && w->grad->shape.rank == 1 && w->grad->shape.dim[0] == 5);
    const ir_node *stats = dx->in[2];
    CU_ASSERT_EQUAL(stats->op, OP_NORM_STATS);
    CU_ASSERT(stats->batched && stats->shape.rank == 3 && stats->shape.dim[1] == 3 && stats->shape.dim[2] == 2);
    CU_ASSERT_EQUAL(stats->pass, IR_FWD);
    CU_ASSERT_EQUAL(rw->grad->in[0]->op, OP_RMSNORM_GRAD);
    CU_ASSERT_EQUAL(rw->grad->in[0]->in[2]->shape.dim[2], 1);   /* rmsnorm keeps 1/rms only */
    unit_free(&u);
    /* gelu's approximate= picks its function; a word it does not know is refused */
    CU_ASSERT_EQUAL(compile_upto(&u, "model m\ninput x: [4]\na = gelu(x)\nb = gelu(x, approximate=tanh)\n"
                                     "loss = sum(a + b)\n", "lower"), 0);
    CU_ASSERT_STRING_EQUAL(ir_maps[named(&u, "a")->fn].name, "gelu");
    CU_ASSERT_STRING_EQUAL(ir_maps[named(&u, "b")->fn].name, "_gelu_tanh");
    unit_free(&u);
    CU_ASSERT_EQUAL(compile_upto(&u, "model m\ninput x: [4]\nloss = sum(gelu(x, approximate=tan))\n", "lower"), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(u.msgs, "t.nn:3:32: error: approximate= of gelu is none (the erf form) or tanh"));
    unit_free(&u);
}

/* A scan's backward pass is a second loop, in reverse: the state's gradient reaches the
 * step before through a carry, the recurrent weight's gradient is one tensor summed over
 * the steps, and the forward body's tensors are stored once per step. */
static void test_grad_scan_loop(void) {
    unit u;
    CU_ASSERT_EQUAL(compile_upto(&u, "model m\ninput xs: [7, 3]\ntarget t: [7, 4]\nh = rnn(xs, 4)\n"
                                     "loss = sum(h * t)\n", "plan"), 0);
    ir_node *w = named(&u, "h.weight_hh_l0"), *out = named(&u, "h");
    CU_ASSERT_EQUAL(out->op, OP_SCAN_OUT);
    ir_loop *l = out->loop;
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    CU_ASSERT_EQUAL(l->steps, 7);
    CU_ASSERT_FALSE(l->backward);
    CU_ASSERT_EQUAL(w->grad->op, OP_SCAN_ACC);          /* the steps' parts, summed */
    CU_ASSERT_PTR_NOT_NULL_FATAL(w->grad->loop);
    CU_ASSERT_TRUE(w->grad->loop->backward);
    CU_ASSERT_PTR_EQUAL(w->grad->loop->fwd, l);
    CU_ASSERT_PTR_NOT_NULL(l->carry[0]);                /* dh_next */
    CU_ASSERT_EQUAL(w->grad->in[0]->op, OP_MATMUL);
    CU_ASSERT_PTR_EQUAL(w->grad->in[0]->into, w->grad);  /* its GEMM adds into the sum */
    int per_step = 0, outside = 0;
    for (int i = l->first; i <= l->last; i++) {
        ir_node *n = ir_at(u.g, i);
        if (n->loop != l) continue;
        if (n->mem == MEM_ACT && n->per_step) {
            per_step++;
            CU_ASSERT(n->step_stride >= ir_numel(&n->shape));   /* a step apart */
        }
        outside += n->mem == MEM_ACT && !n->per_step && n->op != OP_SCAN_OUT;
    }
    CU_ASSERT(per_step >= 2);                           /* the state and tanh, at least */
    CU_ASSERT_EQUAL(outside, 0);
    unit_free(&u);
}

/* ---- fusion, plan, names --------------------------------------------------------- */

static void test_fuse_chain(void) {
    unit u;
    CU_ASSERT_EQUAL(compile_upto(&u, "model m\ninput x: [8]\ntarget t: [8]\nparam w: [8]\n"
                                     "loss = sum((x * w + 1 - t) ^ 2)\n", "fuse"), 0);
    int inlined = 0, stored_fwd = 0;
    for (int i = 0; i < u.g->fwd_count; i++) {
        ir_node *n = ir_at(u.g, i);
        if (ir_is_elementwise(n) && n->mem == MEM_NONE) inlined++;
        if (ir_is_elementwise(n) && n->mem == MEM_ACT) stored_fwd++;
    }
    CU_ASSERT(inlined >= 2);                   /* the chain is one loop ... */
    CU_ASSERT(stored_fwd <= 1);                /* ... storing only what backward reads */
    unit_free(&u);
}

/* An LSTM's step: its slice of the input projections is read in place, the recurrent
 * dense accumulates into the sum with that slice, and the gates' gradients tile the
 * pre-activation's gradient (no zeros written first). */
static void test_fuse_lstm_step(void) {
    unit u;
    CU_ASSERT_EQUAL(compile_upto(&u, "model m\ninput xs: [5, 3]\ntarget t: [5, 4]\nh = lstm(xs, 4)\n"
                                     "loss = sum(h * t)\n", "fuse"), 0);
    int views = 0, into = 0, tiled = 0, adds = 0;
    for (int i = 0; i < u.g->nodes.n; i++) {
        ir_node *n = ir_at(u.g, i);
        if (n->op == OP_SCAN_X) views += n->mem == MEM_NONE;
        if (n->op == OP_DENSE && n->into) {
            into++;
            CU_ASSERT_EQUAL(n->into->op, OP_ADD);
            CU_ASSERT_EQUAL(n->mem, MEM_NONE);
            CU_ASSERT_TRUE(n->folded);
            CU_ASSERT_EQUAL(n->into->mem, MEM_ACT);
        }
        if ((n->op == OP_PAD || n->op == OP_PAD_ADD) && n->in_train) adds++, tiled += n->tiled;
    }
    CU_ASSERT_EQUAL(views, 1);
    CU_ASSERT_EQUAL(into, 1);
    CU_ASSERT_EQUAL(adds, 4);     /* the four gates */
    CU_ASSERT_EQUAL(tiled, 4);
    unit_free(&u);
    /* two slices that leave a gap: zeros first, adds */
    CU_ASSERT_EQUAL(compile_upto(&u, "model m\ninput x: [6] grad\ntarget t: [6]\n"
                                     "loss = sum(slice(x, axis=0, start=0, end=2) * slice(t, axis=0, start=0, end=2)) + "
                                     "sum(slice(x, axis=0, start=3, end=6) * slice(t, axis=0, start=3, end=6))\n", "fuse"), 0);
    tiled = adds = 0;
    for (int i = 0; i < u.g->nodes.n; i++) {
        ir_node *n = ir_at(u.g, i);
        if ((n->op == OP_PAD || n->op == OP_PAD_ADD) && n->in_train) adds++, tiled += n->tiled;
    }
    CU_ASSERT_EQUAL(adds, 2);
    CU_ASSERT_EQUAL(tiled, 0);
    unit_free(&u);
}

/* attention: the first of its gradients computes them all (the others chained to it and
 * folded), with a [Tq, Tk] block per example and head for d scores, and the forward node
 * keeps P in as much; only the gradients somebody needs are made, and the default scale
 * is 1/sqrt(d). */
static void test_fuse_attention(void) {
    unit u;
    CU_ASSERT_EQUAL(compile_upto(&u, "model m\ninput q: [2, 3, 4] grad\ninput k: [2, 5, 4]\ninput v: [2, 5, 6] grad\n"
                                     "target t: [2, 3, 6]\nloss = sum(attention(q, k, v, causal=true) * t)\n"
                                     "train { batch = 7 }\n", "plan"), 0);
    ir_node *f = NULL, *lead = NULL;
    int grads = 0, folded = 0;
    for (int i = 0; i < u.g->nodes.n; i++) {
        ir_node *n = ir_at(u.g, i);
        if (n->op == OP_ATTENTION) f = n;
        if (n->op != OP_ATTENTION_GRAD) continue;
        grads++;
        folded += n->folded;
        if (!n->folded) lead = n;
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_PTR_NOT_NULL_FATAL(lead);
    CU_ASSERT_EQUAL(f->shape.rank, 3);
    CU_ASSERT_EQUAL(f->shape.dim[2], 6);
    CU_ASSERT_DOUBLE_EQUAL(f->attr[1], 0.5, 1e-15);   /* 1/sqrt(4) */
    CU_ASSERT_EQUAL(f->scratch, 7 * 2 * 3 * 5);          /* P: batch x heads x Tq x Tk */
    CU_ASSERT_EQUAL(grads, 2);                            /* d q and d v: k has no gradient */
    CU_ASSERT_EQUAL(folded, 1);
    CU_ASSERT_EQUAL(lead->arg, 0);
    CU_ASSERT_EQUAL(lead->scratch, 7 * 2 * 3 * 5);
    CU_ASSERT_PTR_NOT_NULL_FATAL(lead->also);
    CU_ASSERT_EQUAL(lead->also->arg, 2);
    CU_ASSERT_PTR_NULL(lead->also->also);
    CU_ASSERT(lead->scratch_offset >= f->scratch_offset + f->scratch);   /* its own memory */
    unit_free(&u);
}

static void test_plan_layout(void) {
    unit u;
    CU_ASSERT_EQUAL(compile_upto(&u, MLP, "plan"), 0);
    for (int i = 0; i < u.g->params.n; i++) {
        ir_node *p = u.g->params.v[i];
        CU_ASSERT_EQUAL(p->offset % 16, 0);
        CU_ASSERT_EQUAL(p->grad->mem, MEM_GRAD);
        CU_ASSERT_EQUAL(p->grad->offset, p->offset);
    }
    CU_ASSERT(u.g->param_size >= 784 * 256 + 256 + 256 * 10 + 10);
    CU_ASSERT(u.g->act_size > 0);
    unit_free(&u);
}

static void test_names_hostile(void) {
    CU_ASSERT_TRUE(names_reserved("int"));
    CU_ASSERT_TRUE(names_reserved("I"));
    CU_ASSERT_TRUE(names_reserved("cblas_sgemm"));
    CU_ASSERT_TRUE(names_reserved("free"));
    CU_ASSERT_FALSE(names_reserved("h1"));
    unit u;
    CU_ASSERT_EQUAL(compile_upto(&u, "model main\ninput I: [3]\ntarget NULL: [3]\nint = dense(I, 3)\n"
                                     "free = tanh(int)\nloss = mse(free, NULL)\n", "names"), 0);
    CU_ASSERT_STRING_EQUAL(named(&u, "I")->cname, "I_");
    CU_ASSERT_STRING_EQUAL(named(&u, "int.weight")->cname, "int_weight");
    CU_ASSERT_STRING_EQUAL(named(&u, "free")->cname, "free_");
    unit_free(&u);
}

/* The memory a tensor's gradient lives in: through views and in-place pad-adds. */
static const ir_node *grad_storage(const ir_node *n) {
    const ir_node *x = n->grad;
    while (x->mem == MEM_NONE && (x->op == OP_RESHAPE || x->op == OP_PAD_ADD)) x = x->in[0];
    return x;
}

static int cname_count(unit *u, const char *id) {
    int k = 0;
    for (int i = 0; i < u->g->nodes.n; i++) k += ir_at(u->g, i)->cname && !strcmp(ir_at(u->g, i)->cname, id);
    return k;
}

/* Gradients are named after the user's bindings even where the node holding one was made
 * for another (flatten(s2)'s product is s2's gradient; an unrolled sequence's slices add
 * in place into the first one's memory), parameters seen through a view after the
 * parameter; every identifier once. */
static void test_names_gradients(void) {
    unit u;
    CU_ASSERT_EQUAL(compile_upto(&u, "model lenet\ninput x: [1, 12, 12]\nlabel y: class(10)\n"
                                     "c1 = tanh(conv2d(x, 2, kernel=3))\ns2 = avgpool2d(c1, 2)\n"
                                     "f3 = tanh(dense(flatten(s2), 8))\nlogits = dense(f3, 10)\n"
                                     "loss = cross_entropy(logits, y)\n", "names"), 0);
    CU_ASSERT_STRING_EQUAL(grad_storage(named(&u, "s2"))->cname, "ds2");
    CU_ASSERT_STRING_EQUAL(named(&u, "c1.bias")->grad->cname, "dc1_bias");
    CU_ASSERT_STRING_EQUAL(named(&u, "c1.weight")->grad->cname, "dc1_weight");
    CU_ASSERT_EQUAL(cname_count(&u, "dc1_bias_reshape"), 1);     /* the bias as [2, 1, 1] */
    CU_ASSERT_EQUAL(cname_count(&u, "dc1_weight_reshape"), 1);   /* the weight as [2, 9] */
    CU_ASSERT_EQUAL(cname_count(&u, "df3_reshape"), 0);
    CU_ASSERT_EQUAL(cname_count(&u, "dc1_add"), 1);              /* a temporary: binding and op */
    for (int i = 0; i < u.g->nodes.n; i++)
        if (ir_at(u.g, i)->cname) CU_ASSERT_EQUAL(cname_count(&u, ir_at(u.g, i)->cname), 1);
    unit_free(&u);
    CU_ASSERT_EQUAL(compile_upto(&u, "model padadd\ninput x: [4, 3]\ntarget t: [2, 3]\nh = tanh(dense(x, 3))\n"
                                     "u = slice(h, axis=0, start=0, end=2)\nv = slice(h, axis=0, start=2)\n"
                                     "loss = mse(u * v, t)\n", "names"), 0);
    CU_ASSERT_EQUAL(named(&u, "h")->grad->op, OP_PAD_ADD);
    CU_ASSERT_STRING_EQUAL(grad_storage(named(&u, "h"))->cname, "dh");
    unit_free(&u);
}

static void test_emit_readable(void) {
    unit u;
    CU_ASSERT_EQUAL(compile_upto(&u, MLP, "names"), 0);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    emit_opts o = {"mlp.h", "mlp.nn", NULL, 0, 0, 0, NULL, 0};
    CU_ASSERT_EQUAL(emit_c(u.g, f, &o), 0);
    fclose(f);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "static void mlp_forward_pass(mlp *m, int n)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "static void mlp_backward_pass(mlp *m, int n)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "nnr_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, 256, 784, n,"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "/* line 4: h1 = relu(dense(x, 256)) */"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "float *restrict dh1_weight = m->grads + 0;"));
    /* the training step allocates nothing: malloc-family calls appear only in mlp_new */
    char *fwd = strstr(text, "static void mlp_forward"), *api = strstr(text, "/* ---- the API");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fwd);
    CU_ASSERT_PTR_NOT_NULL_FATAL(api);
    *api = 0;
    CU_ASSERT_PTR_NULL(strstr(fwd, "alloc("));
    free(text);
    unit_free(&u);
}

/* The embedded target: one chunk, the inference plan alone with --infer-only, and a file
 * without BLAS, threads, allocation or stdio (tests/embedded.sh compiles and runs it). */
static void test_embedded(void) {
    unit u;
    CU_ASSERT_EQUAL(compile_upto(&u, MLP, "names"), 0);
    int64_t train_acts = u.g->act_size;
    CU_ASSERT_EQUAL(fuse_chunk_batch(u.g), u.g->train.batch);
    unit_free(&u);
    unit_embedded = unit_infer_only = 1;
    CU_ASSERT_EQUAL(compile_upto(&u, MLP, "names"), 0);
    unit_embedded = unit_infer_only = 0;
    CU_ASSERT_EQUAL(fuse_chunk_batch(u.g), 1);
    CU_ASSERT(u.g->act_size > 0 && u.g->act_size < train_acts);
    for (int i = 0; i < u.g->nodes.n; i++) {   /* no backward pass; inference's tensors fit */
        ir_node *n = ir_at(u.g, i);
        CU_ASSERT_EQUAL(n->pass, IR_FWD);
        if (n->in_infer && n->mem == MEM_ACT) CU_ASSERT(n->offset + ir_numel(&n->shape) <= u.g->act_size);
    }
    char *text = NULL, *head = NULL;
    size_t len = 0, hlen = 0;
    FILE *f = open_memstream(&text, &len), *h = open_memstream(&head, &hlen);
    emit_opts o = {"mlp.h", "mlp.nn", NULL, 0, 0, 1, NULL, 0};
    CU_ASSERT_EQUAL(emit_c(u.g, f, &o), 0);
    CU_ASSERT_EQUAL(emit_h(u.g, h, &o), 0);
    fclose(f);
    fclose(h);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "mlp_gemm(CblasRowMajor, CblasNoTrans, CblasTrans,"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "static float mlp_act_block["));
    const char *banned[] = {"nnr_", "#include <cblas.h>", "stdio.h", "alloc(", "omp parallel", "free(p", "backward_pass"};
    for (size_t i = 0; i < sizeof banned / sizeof *banned; i++) CU_ASSERT_PTR_NULL(strstr(text, banned[i]));
    CU_ASSERT_PTR_NOT_NULL(strstr(head, "#define MLP_RAM_BYTES"));
    CU_ASSERT_PTR_NULL(strstr(head, "mlp_train_step("));
    free(text);
    free(head);
    unit_free(&u);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    struct { const char *suite; const char *name; CU_TestFunc fn; } tests[] = {
        {"parser", "statements", test_parse_statements},
        {"parser", "precedence", test_parse_precedence},
        {"parser", "locations and recovery", test_parse_locations_and_recovery},
        {"parser", "binary garbage", test_parse_garbage},
        {"parser", "comments and semicolons", test_parse_comments_semicolons},
        {"lower", "layer parameters", test_lower_layer_params},
        {"lower", "numbered layers", test_lower_numbered_layers},
        {"lower", "errors", test_lower_errors},
        {"lower", "built-in table", test_lower_builtin_table},
        {"lower", "built-in defaults", test_lower_builtin_defaults},
        {"lower", "train errors", test_lower_train_errors},
        {"lower", "adamw and schedule_every", test_lower_train_adamw},
        {"lower", "const tensors and frozen params", test_const_frozen},
        {"parser", "def", test_parse_def},
        {"lower", "function parameter names", test_func_param_names},
        {"lower", "function lines and scopes", test_func_lines_and_scope},
        {"shapes", "broadcast", test_shape_broadcast},
        {"shapes", "matmul forms", test_shape_matmul_forms},
        {"shapes", "matmul stacks", test_shape_matmul_stacks},
        {"shapes", "errors", test_shape_errors},
        {"shapes", "scalar loss", test_shape_loss_scalar},
        {"shapes", "layout ops", test_shape_layout},
        {"grad", "shared tensor sums", test_grad_sums_shared_tensor},
        {"grad", "dense products", test_grad_dense_products},
        {"grad", "matmul stacks", test_grad_matmul_stack},
        {"grad", "norms' by-products", test_grad_norm_by_products},
        {"grad", "scan loops", test_grad_scan_loop},
        {"fuse", "elementwise chain", test_fuse_chain},
        {"fuse", "an LSTM's step", test_fuse_lstm_step},
        {"fuse", "attention's gradients", test_fuse_attention},
        {"plan", "layout", test_plan_layout},
        {"names", "hostile names", test_names_hostile},
        {"names", "gradients after bindings", test_names_gradients},
        {"emit", "readable C", test_emit_readable},
        {"emit", "the embedded target", test_embedded},
        {"emit", "where chooses", test_emit_where_chooses},
        {"emit", "permute tiles", test_emit_permute_tiles},
    };
    CU_pSuite suite = NULL;
    const char *current = "";
    for (size_t i = 0; i < sizeof tests / sizeof *tests; i++) {
        if (strcmp(current, tests[i].suite)) {
            current = tests[i].suite;
            suite = CU_add_suite(current, NULL, NULL);
        }
        CU_add_test(suite, tests[i].name, tests[i].fn);
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failed = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return failed != 0 || CU_get_error();
}
