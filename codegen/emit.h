/* emit.h — the emitter's parts, shared by its files and by nothing else: the emitter's
 * state, the index space of a loop, and what each file offers the others.
 *
 *   emit.c             the core: text helpers, reading a tensor at a loop index, loops,
 *                      the per-node dispatch, the pass functions (forward, backward, ...)
 *   emit_elementwise.c elementwise loops, reductions, last-axis ops (softmax, losses)
 *   emit_norm.c        layernorm and rmsnorm, one pass per row forward and backward
 *   emit_layout.c      copies: transpose, concat, slice, pad, views, embedding's gather
 *   emit_products.c    GEMMs over the batch, dense, the sparse backward products
 *   emit_stack.c       stacks of products (`@` on operands of rank > 2): loops of GEMMs, folds
 *   emit_conv.c        im2col, direct and Winograd convolutions, their gradients,
 *                      epilogues
 *   emit_pool.c        pooling and its gradient
 *   emit_attention.c   attention's fused kernels, forward and backward
 *   emit_scan.c        a scan's loops over its steps, forward and in reverse
 *   emit_optimizer.c   NAME_update
 *   emit_api.c         the whole file and header: struct, API, model tables (emit_c, emit_h)
 *
 * Every kernel writes one block of a pass function to `o`, opening with a comment that
 * names the tensors and their shapes. */
#ifndef NNC_EMIT_H
#define NNC_EMIT_H
#include "codegen.h"

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
    int         last_call;  /* ... and the line of the call it was in (a function's body) */
    const ir_node *subst;   /* an epilogue's producer, read as subst_value (see fuse.c) */
    const char *subst_value;
    const ir_node *subst2;  /* a second one: a pooled convolution's epilogue, read as its window's maximum */
    const char *subst2_value;
    /* the statement being built (emit_stmt_open): the locals its expression shares */
    int         in_stmt;    /* 0: none open, every operand is written where it is read */
    ptrvec      lets;       /* "const float h_relu = ...;", in the order they are computed */
    const char **let_of;    /* per node: its local in the open statement, or NULL */
    ptrvec      let_nodes;  /* the nodes that have one, to forget them at the close */
    names_set   cnames;     /* every tensor's identifier: no local may hide one */
    names_set   locals;     /* the open statement's locals */
    names_set   bases;      /* ... and the names they were made from, with how many each */
    const names_owner *owners;   /* names.c's bindings per node and gradients' owners, for the locals' names */
    int         depth;      /* how deep the expression last built nests inlined nodes */
    int         embedded;   /* --target embedded: one thread, no BLAS, static memory */
} emitter;

typedef enum { LOOP_FLAT, LOOP_EXAMPLE, LOOP_NESTED } loop_mode;

/* The index space of a loop: a layout (shape, batched) and how it is walked. */
typedef struct ictx {
    loop_mode   mode;
    int         batched, rank;
    int64_t     dim[IR_MAXRANK];
    const char *v[IR_MAXRANK];   /* LOOP_NESTED: one variable per axis */
} ictx;

/* The functions of the generated file that hold a pass's blocks. */
typedef enum { FN_FORWARD, FN_BACKWARD, FN_INFER, FN_EVAL } fn_kind;

/* Loops whose iterations each write their own elements, shared among nnc's threads in
 * blocks of consecutive iterations: every element is computed the same way at any thread
 * count (compiled without OpenMP, the pragma is ignored and the loop runs on one). */
#define EMIT_OMP_ROWS "#pragma omp parallel for num_threads(nnr_threads()) schedule(static)"

/* Below this many parameters the update loop stays on one thread: starting the others
 * would cost more than the loop (Adam takes about 0.27 ns an element on one core: 63 us
 * for the Fashion MLP's 235,152, perf; 32,768 elements are some 9 us). */
#define EMIT_UPDATE_PARALLEL_MIN 32768

/* An elementwise loop, im2col / col2im or pooling over a batch of at least this many
 * elements runs on nnc's threads (EMIT_OMP_ROWS), each thread a block of whole elements,
 * rows or planes; below it, one thread: an element takes some 0.3 ns (relu's gradient,
 * memory-bound), so 65,536 are some 20 us, where starting the threads costs a few. */
#define EMIT_LOOP_PARALLEL_MIN 65536

/* ---- emit.c: text ---- */
void        emit_setup(emitter *e, ir_graph *g, FILE *out, const emit_opts *o);
const char *emit_lit(emitter *e, double v);                    /* a float or double literal */
const char *emit_fn(emitter *e, const char *name);             /* libm's name for the dtype: expf */
const char *emit_comment_text(emitter *e, const char *s, size_t len);   /* user text in a comment */
const char *emit_cstring(emitter *e, const char *s);           /* user text as a string literal */
const char *emit_shape_of(emitter *e, const ir_node *n);       /* "[B, 128]" */
const char *emit_source_line(emitter *e, int line);           /* the .nn line, for a comment */

/* ---- emit.c: offsets and counters over the batch ---- */
#ifndef EMIT_INDEX32_MAX
#define EMIT_INDEX32_MAX 2147483647LL   /* above: 64-bit; -DEMIT_INDEX32_MAX=0 makes every one 64-bit */
#endif
int         emit_wide(const emitter *e, int64_t per_example);        /* BATCH * per_example > INT_MAX */
const char *emit_count_type(const emitter *e, int64_t per_example); /* "int" or "int64_t" */
const char *emit_times(emitter *e, const char *v, int64_t per_example);   /* "b * 784", "(int64_t)b * 784" */

/* ---- emit.c: tensors read at a loop index ---- */
int         emit_is_inline(const ir_node *n);       /* computed inside its consumer's loop */
int         emit_is_slice_view(const ir_node *x);   /* a slice read in place */
const char *emit_mark(emitter *e, const ir_node *x);   /* x's storage, declared by the function */
const char *emit_who(emitter *e, const ir_node *x);    /* x's name for a comment */
/* Whether C text s names the identifier id (not as part of a longer name). */
int emit_names_id(const char *s, const char *id);
const char *emit_stats_n(const emitter *e);   /* the C expression of the examples batch statistics span */
const char *emit_label(emitter *e, const ir_node *x);  /* the same for a tensor without memory */
const char *emit_index_of(emitter *e, const ir_node *x, const ictx *c);
const char *emit_read_at(emitter *e, const ir_node *x, const ictx *c);   /* x's value at c's index */
const char *emit_expr(emitter *e, const ir_node *x, const ictx *c);      /* elementwise x's expression */
void        emit_stmt_open(emitter *e);   /* expressions built until the close may share operands */
void        emit_stmt_close(emitter *e, FILE *o, const char *ind, const char *stmt);   /* the body */
void        emit_collect_math(const ir_node *x, char *buf, size_t cap, int top);   /* local derivatives */

/* ---- emit.c: what differs between the targets ---- */
void        emit_omp_rows(const emitter *e, FILE *o, const char *ind, const char *rest);   /* EMIT_OMP_ROWS */
const char *emit_gemm_fn(const emitter *e, int cut);   /* nnr_sgemm (cut 1), cblas_sgemm, NAME_gemm */

/* ---- emit_api.c: parts the embedded target's file shares ---- */
const char *emit_io_params(emitter *e, int only_inputs);   /* ", const float *x, const int32_t *y" */
const char *emit_out_params(emitter *e);                    /* ", float *probs" */
int         emit_has_consts(const ir_graph *g);
int         emit_has_dropout(const ir_graph *g);
int         emit_has_products(const ir_graph *g);   /* any GEMM call */
void        emit_kernel_macros(emitter *e, FILE *out);
void        emit_step_calls(emitter *e, FILE *o);   /* loss_grad, train_step, set_lr, lr, step */   /* NNR_MADD, the sparse fractions */
void        emit_uniform(emitter *e, FILE *o);             /* dropout's hash */
void        emit_model_comment(emitter *e, FILE *o, const char *what);
void        emit_h_model(emitter *e, FILE *out);           /* the header's list of tensors */

/* ---- emit_math.c: --math inline, the file's own exp, log, ... ---- */
enum { EMIT_MATH_EXP = 1, EMIT_MATH_LOG = 2, EMIT_MATH_EXPM1 = 4, EMIT_MATH_LOG1P = 8, EMIT_MATH_TANH = 16,
       EMIT_MATH_SIN = 32, EMIT_MATH_COS = 64, EMIT_MATH_TAN = 128, EMIT_MATH_ERF = 256, EMIT_MATH_POW = 512,
       EMIT_MATH_SQRT = 1024, EMIT_MATH_FABS = 2048, EMIT_MATH_FMAX = 4096, EMIT_MATH_FMIN = 8192, EMIT_MATH_FMA = 16384 };
int  emit_math_bit(const char *libm_name);   /* "exp" -> EMIT_MATH_EXP; 0 if not one of them */
/* The static definitions of the functions in `used`, PREFIX_expf... (f64: PREFIX_exp...), and
 * the helpers they call. */
void emit_math(FILE *o, const char *prefix, int f64, unsigned used);
const char *emit_dfn(emitter *e, const char *name);   /* a double math function: libm's or the file's */

/* ---- emit_embedded.c: --target embedded's file and header ---- */
int         emit_embedded_c(emitter *e, FILE *out);
/* Whether parameter p stays in flash: baked by --weights and never written (frozen, or
 * every parameter with --infer-only); its readers read NAME_weights in place. */
int         emit_param_in_flash(const emitter *e, const ir_node *p);
int         emit_embedded_h(emitter *e, FILE *out);

/* ---- emit.c: loops ---- */
ictx        emit_layout_ctx(const ir_node *lay);
void        emit_choose_mode(ictx *c, const ir_node *const *roots, int nroots, int allow_flat);
const char *emit_open_loops(emitter *e, FILE *o, const ictx *c, const char *ind, int simd);
void        emit_body(FILE *o, const char *ind, const char *stmt);

/* ---- emit.c: the pass functions ---- */
int         emit_has_modes(const ir_graph *g);   /* training and inference differ */
int         emit_in_fn(const ir_node *n, fn_kind k);   /* pass function k computes n */
void        emit_block(emitter *e, FILE *o, ir_node *n, fn_kind k);   /* n's block and its check */
void        emit_check_function(emitter *e, FILE *o);
void        emit_pass(emitter *e, FILE *o, fn_kind k);

/* ---- the kernels, one block of a pass each ---- */
void emit_elementwise(emitter *e, FILE *o, ir_node *n);   /* emit_elementwise.c */
void emit_sum(emitter *e, FILE *o, ir_node *n);
void emit_sum_to(emitter *e, FILE *o, ir_node *n);
void emit_row(emitter *e, FILE *o, ir_node *n);
void emit_bn_update(emitter *e, FILE *o, ir_node *n);
void emit_norm(emitter *e, FILE *o, ir_node *n);          /* emit_norm.c */
void emit_copy(emitter *e, FILE *o, ir_node *n);          /* emit_layout.c */
void emit_view_copy(emitter *e, FILE *o, ir_node *n);
void emit_gather(emitter *e, FILE *o, ir_node *n);
void emit_matmul(emitter *e, FILE *o, ir_node *n);        /* emit_products.c */
void emit_dense(emitter *e, FILE *o, ir_node *n);
void emit_stack_matmul(emitter *e, FILE *o, ir_node *n);  /* emit_stack.c */
void emit_dense_into(emitter *e, FILE *o, ir_node *d, ir_node *n, ir_node *z);   /* n = z + d: d's GEMM into n */
void emit_gemm(emitter *e, FILE *o, const char *ind, int ta, int tb, const char *M, const char *N, const char *K,
               const char *A, int64_t lda, const char *B, int64_t ldb, const char *beta, const char *C, int64_t ldc);
void emit_attention(emitter *e, FILE *o, ir_node *n);     /* emit_attention.c: forward or its gradients */
void emit_im2col(emitter *e, FILE *o, ir_node *n);        /* emit_conv.c */
void emit_conv_direct(emitter *e, FILE *o, ir_node *n);
void emit_conv_weight_grad(emitter *e, FILE *o, ir_node *n);
/* the statement storing value as p's element at c's index, through p's epilogue if it has
 * one (fuse.c), and the comment line saying what the epilogue writes */
const char *emit_epilogue_store(emitter *e, const ir_node *p, const ictx *c, const char *own, const char *value);
void emit_epilogue_note(emitter *e, FILE *o, const ir_node *p, const char *ind);
void emit_pool(emitter *e, FILE *o, ir_node *n);          /* emit_pool.c */
void emit_update(emitter *e, FILE *o);                    /* emit_optimizer.c */
void emit_scan_op(emitter *e, FILE *o, ir_node *n);       /* emit_scan.c: a scan's copies */
int  emit_loop(emitter *e, FILE *o, ir_loop *l, fn_kind k);   /* a scan's loop; returns its last node */
#endif
