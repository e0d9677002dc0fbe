/* ir.h — the computation graph every pass after the parser works on.
 *
 * A node is one tensor: its op, inputs, per-example shape and whether it carries the
 * implicit batch dimension (inputs and everything computed from them do; parameters and
 * constants do not).  Nodes live in one array in creation order, which is a topological
 * order: the forward pass is built from the source, autodiff appends the backward pass
 * (pass == IR_BWD) to the same graph, so fusion, the memory plan, the emitter, --graph
 * and --dump-ir all see one IR.  The op table (ir_ops[]) says what each op is called,
 * how many inputs it takes and which family the emitter lowers it with. */
#ifndef NNC_IR_H
#define NNC_IR_H
#include <stdint.h>
#include <stdio.h>
#include "arena.h"
#include "diag.h"

#define IR_MAXRANK 8
#define IR_MAXIN   8      /* concat's operands in one node (more are chained) */
#define IR_NOAXIS  (-1000)
enum { VIEW_GIVEN, VIEW_FLATTEN, VIEW_SQUEEZE };

typedef enum {
    /* leaves */
    OP_INPUT, OP_LABEL, OP_TARGET, OP_PARAM, OP_CONST, OP_INV_N,
    OP_CONST_TENSOR,        /* `const NAME: SHAPE = INIT`: param.init's values, made once when the
                               model is created, in the activation block: never trained or saved */
    /* elementwise, with NumPy broadcasting */
    OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_NEG, OP_POWC, OP_COPY,
    OP_MAP,                 /* a function of the table ir_maps[] (relu, sin, max, ...) */
    OP_MAP_GRAD,            /* its derivative with respect to argument `arg`, times the gradient */
    OP_POWC_GRAD,
    OP_EXPAND,              /* broadcast to this node's shape */
    /* reductions */
    OP_SUM,                 /* over every per-example axis, times attr[0] (mean: 1/N) */
    OP_SUM_TO,              /* undo a broadcast: sum down to this node's shape */
    /* along the last axis */
    OP_SOFTMAX, OP_LOG_SOFTMAX, OP_SOFTMAX_GRAD, OP_LOG_SOFTMAX_GRAD,
    /* layernorm (in: x, weight, bias) and rmsnorm (x, weight) of each row, attr[0] = eps, and
     * their gradients dx (in: dy, x, stats, weight), each one pass per row.  By-products, whose
     * values the code of their input writes in the same pass (emit_norm.c): norm_stats, each
     * row's mean and 1/std (rmsnorm: 1/rms), kept for backward; norm_param_grad, the weight's
     * (attr[0] = 0) or bias's (1) gradient, summed over every row of the batch */
    OP_LAYERNORM, OP_RMSNORM, OP_LAYERNORM_GRAD, OP_RMSNORM_GRAD, OP_NORM_STATS, OP_NORM_PARAM_GRAD,
    OP_CROSS_ENTROPY, OP_CROSS_ENTROPY_GRAD,
    OP_PICK, OP_PICK_GRAD,  /* z[..., y] at class labels y; its gradient scattered back */
    /* reductions to a keep-dims shape: max (attr[0] = 1) or min (attr[0] = -1) */
    OP_REDUCE_MAX, OP_REDUCE_MAX_GRAD,
    /* layout: a view of the same memory, and block copies along `axis` */
    OP_RESHAPE, OP_TRANSPOSE, OP_CONCAT, OP_SLICE, OP_PAD,
    /* in[0] with in[1] added into [start, end) along the axis, in in[0]'s memory: the
     * gradients of several slices of one tensor summed without a full-size add each */
    OP_PAD_ADD,
    /* convolution lowered to a GEMM: patches of an example as rows, and back (see ir_conv) */
    OP_IM2COL, OP_COL2IM,
    /* pooling windows: max (attr[0] = 1) or average (0), and the gradient through them */
    OP_POOL, OP_POOL_GRAD,
    /* modes: in[0] when training, in[1] in inference (dropout, batchnorm) */
    OP_SELECT,
    OP_DROPOUT_MASK,        /* 0 or 1/(1-p) per element, seeded by the model's seed and step */
    OP_BN_UPDATE,           /* side effect of training: running statistics from batch ones */
    /* embedding: rows of a table at class indices, and the gradient added back into rows */
    OP_GATHER, OP_SCATTER_ADD,
    /* products */
    OP_MATMUL,              /* op(A) · op(B) on 2-D views of the operands (see ir_mm) */
    OP_DENSE,               /* x · Wᵀ + b over the last axis of x */
    /* attention(q, k, v): softmax(scale q kᵀ + mask) v per head, one fused kernel; attr[0] =
     * causal, attr[1] = scale.  Its gradient with respect to in[arg] of the forward node
     * in[1] (in[0]: d out): the first of a node's gradients computes all of them (fuse.c) */
    OP_ATTENTION, OP_ATTENTION_GRAD,
    /* scans (ir_loop): a loop over the first axis of a sequence, its body nodes in the graph */
    OP_SCAN_STATE,          /* the state a step starts from: in[0] (init) at step 0, the last result after */
    OP_SCAN_X,              /* a step's slice xs[t] of in[0] */
    OP_SCAN_OUT,            /* the results of every step stacked [T, ...]: in[0] (the result) copied at t */
    OP_SCAN_SEED,           /* backward: the result's gradient at t, in[0][t] (if any) plus the carry */
    OP_SCAN_DX,             /* backward: in[0] (d x_t) copied into the gradient of xs at t */
    OP_SCAN_ACC,            /* backward: in[0] added up over the steps (an outer tensor's gradient) */
    OP__COUNT
} ir_op;

typedef enum { FAM_LEAF, FAM_ELEMWISE, FAM_REDUCE, FAM_ROW, FAM_MATMUL, FAM_DENSE, FAM_ATTENTION, FAM_VIEW, FAM_COPY,
               FAM_EFFECT, FAM_SCAN } ir_family;

typedef struct ir_opinfo {
    const char *name;       /* as in --dump-ir */
    int         nin;        /* -1: variable */
    ir_family   fam;
} ir_opinfo;
extern const ir_opinfo ir_ops[OP__COUNT];

/* Elementwise functions as data: a C template of the value and, per argument, of the
 * gradient (upstream gradient times the local derivative) and of the derivative in math
 * for the generated comments.  In templates $a $b $c are the arguments, $y the function's
 * value, $g the upstream gradient, $p $q the constant arguments, #1 a literal of the
 * model's precision, @exp( a libm function of that precision.  A NULL gradient means a
 * zero derivative (sign): no gradient flows. */
typedef struct ir_mapinfo {
    const char *name;
    int         nargs;          /* tensor arguments: 1 to 3 (where's condition and its two values) */
    int         nconst;         /* constant arguments after them: leaky_relu's slope, clip's bounds */
    const char *value;
    const char *grad[3];
    const char *math[3];
} ir_mapinfo;
extern const ir_mapinfo ir_maps[];
int ir_map_find(const char *name);   /* index into ir_maps, or -1 */

/* The initializers' names as the language spells them, by nnr_init_kind, and how many
 * numbers each takes: const(v), uniform(a, b), normal(mean, std). */
extern const char *const ir_init_names[];
extern const int ir_init_nargs[];

typedef enum { IR_FWD, IR_BWD } ir_pass;
typedef enum { DT_FLOAT, DT_CLASS } ir_dtype;
typedef enum { ROLE_NONE, ROLE_INPUT, ROLE_LABEL, ROLE_TARGET, ROLE_PARAM } ir_role;

typedef struct ir_shape { int rank; int64_t dim[IR_MAXRANK]; } ir_shape;

/* How OP_MATMUL sees its operands: each as a matrix [rows, cols] (a reshape of its
 * per-example tensor), transposed or not; the result [p, q] reshaped to the node's
 * shape.  Backward rules build products of any of these forms.
 * A stack of products (NumPy's matmul on operands of rank > 2) loops over the stack
 * axes `stack` (srank of them, 0: one product): operand A, B and the result C each hold
 * its matrices in row-major order over the stack axes along which its one[] is 0, and a
 * single matrix along those where it is 1 — A or B broadcast (stride 0), C summed over
 * the axis (a backward product undoing a broadcast).  The batch axis is implicit, as for
 * any node: an operand without it is shared by the examples, a result without it sums
 * over them.  codegen/stack.c plans the GEMMs. */
typedef struct ir_mm {
    int64_t ar, ac, br, bc;
    int     ta, tb;
    int     srank;
    int64_t stack[IR_MAXRANK];
    char    one[3][IR_MAXRANK];   /* [0] A, [1] B, [2] C */
} ir_mm;
int64_t ir_mm_count(const ir_mm *m);   /* products in the stack: the product of its axes (1 without) */

/* A convolution's or pooling's geometry on channel-first examples [C, H, W] (conv1d and
 * 1-D use H = 1): kernel, stride, padding before (top, left), output size.  im2col writes
 * one row per kernel tap (c, i, j) in PyTorch's weight order, holding what that tap sees
 * at every output position (zeros in the padding), so the convolution is W · col. */
typedef struct ir_conv { int64_t c, h, w, kh, kw, sh, sw, ph, pw, oh, ow; } ir_conv;

/* Where the memory plan puts a tensor. */
typedef enum {
    MEM_NONE,               /* inlined into its consumer's loop, or a literal */
    MEM_EXTERN,             /* a caller's array (inputs, labels, targets) */
    MEM_PARAM, MEM_GRAD,    /* the parameter / gradient blocks, same layout */
    MEM_ACT                 /* the activation block */
} ir_mem;

typedef struct ir_param_info {
    int         init;       /* nnr_init_kind */
    double      a, b;
    int         buffer;     /* 1: running statistics, 2: frozen (`param ... frozen`): saved, not trained */
} ir_param_info;

typedef struct ir_node ir_node;

/* A scan's loop (docs/language.md, "Scans").  Its body is ordinary nodes of the graph, contiguous
 * in it and marked with the loop: the states a step starts from (OP_SCAN_STATE), the
 * step's slice of the sequence (OP_SCAN_X), the body's ops, the states it ends with
 * (result) and their copies into the stacked outputs (OP_SCAN_OUT).  The forward body's
 * tensors are stored once per step (per_step), so the backward loop, which autodiff
 * appends as a second loop over the steps in reverse, reads each step's values; the
 * backward body's own tensors are stored once and rewritten every step.  The generated
 * C is one `for` over t per loop: its size does not depend on the number of steps. */
#define IR_MAXSTATE 4
typedef struct ir_loop ir_loop;
struct ir_loop {
    int64_t  steps;
    int      backward;              /* the reverse loop of the backward pass */
    ir_loop *fwd;                   /* backward: its forward loop */
    int      nstate;
    ir_node *state[IR_MAXSTATE];    /* OP_SCAN_STATE */
    ir_node *result[IR_MAXSTATE];   /* the body's value of each state at the step's end */
    ir_node *out[IR_MAXSTATE];      /* OP_SCAN_OUT */
    ir_node *carry[IR_MAXSTATE];    /* backward: d state, sent back to the step before */
    ir_node *x;                     /* OP_SCAN_X, or NULL */
    const char *state_name[IR_MAXSTATE];   /* "c" for an lstm's second state, for C names */
    int      batched;               /* the sequence has the batch axis, so every state has */
    const char *what;               /* "scan", "lstm", ... for comments */
    int      line, call_line;       /* the .nn line of the scan; of the function's call, if any */
    int      first, last;           /* its nodes are [first, last] of the graph */
};

struct ir_node {
    int         id;
    ir_op       op;
    int         nin;
    ir_node    *in[IR_MAXIN];
    ir_shape    shape;      /* per example */
    int         batched;
    ir_dtype    dtype;
    int         classes;    /* DT_CLASS: K */
    int         bad;        /* its shape could not be inferred (error reported) */
    double      attr[2];    /* CONST value, POWC exponent, SUM scale */
    ir_mm       mm;
    ir_conv     conv;       /* OP_IM2COL, OP_COL2IM, OP_POOL, OP_POOL_GRAD */
    int         shaped;     /* shape inference has run on it */
    ir_pass     pass;
    ir_role     role;
    const char *name;       /* user-visible name, or NULL */
    const char *what;       /* the function the user wrote, when it is not the op (mse's '-') */
    int         fn, arg;    /* OP_MAP, OP_MAP_GRAD: ir_maps[fn]; the argument differentiated (also OP_ATTENTION_GRAD's) */
    int         axis;       /* reductions and layout ops: the per-example axis, or IR_NOAXIS */
    int         view;       /* OP_RESHAPE: VIEW_GIVEN (shape set), VIEW_FLATTEN, VIEW_SQUEEZE (drop axis) */
    /* OP_TRANSPOSE: axis i of the result is axis perm[i] of the input, once shaped (nperm ==
     * rank).  As lowered: nperm 0 for a matrix's transpose, the axes of permute(x, [...]) as
     * written, or (attr[0] = 1) the two axes transpose(x, a, b) swaps, perhaps negative. */
    int         perm[IR_MAXRANK];
    int         nperm;
    loc         at;         /* where in the source */
    int         stmt_line;  /* the .nn line of the statement it comes from */
    const char *in_fn;      /* made by a call of this function (def): stmt_line is in its body, */
    int         call_line;  /* ... and this the line of the model's statement making the call */
    int         call_id;    /* that call of the function, numbered from 1 (0: not in a function) */
    ir_node    *grad_of;    /* backward: the node whose gradient this is (when whole) */
    ir_node    *grad;       /* forward: its gradient, once computed */
    ir_param_info param;    /* OP_PARAM */
    int         io_index;   /* inputs, labels, targets: declaration order */
    int         wants_grad; /* `input x: [..] grad`: d loss / d x is computed */
    int         param_index;
    /* filled by the later passes */
    int         uses;       /* consumers in the whole graph */
    int         used_fwd, used_bwd, used_infer;
    int         in_train, in_infer; /* emitted in the training forward / the inference pass */
    int         in_eval;    /* emitted in the forward pass computing the loss in inference mode */
    ir_mem      mem;
    int64_t     offset;     /* elements into its block */
    int64_t     scratch;    /* elements of working memory its code needs (fuse.c), after its own */
    int64_t     scratch_offset;
    int         folded;     /* computed by another node's code (fuse.c: a convolution's gradients) */
    int         direct;     /* OP_MATMUL: a convolution computed from its image, without im2col (fuse.c) */
    int         sparse_a;   /* OP_MATMUL: a second path for a mostly-zero left operand (fuse.c) */
    ir_node    *epi;        /* the elementwise node this one's code writes instead of itself (fuse.c) */
    ir_node    *also;       /* the node whose code this one's includes (attention's: a chain of them) */
    ir_node    *pool;       /* a conv gradient block: the max pooling gradient whose windows list its dY (fuse.c) */
    ir_node    *pool_sum;   /* ... and the bias gradient (sum of dY per channel) it adds up on the way */
    ir_node    *pooled;     /* a Winograd convolution: the max pooling its code computes from each 2x2
                               block; that pooling's folded gradient: the same pooling, whose code
                               recorded each window's pick (fuse.c) */
    const char *cname;      /* C identifier (names.c) */
    ir_loop    *loop;       /* the scan loop whose body computes it, or NULL */
    int         per_step;   /* stored once per step of its loop (plan.c: step_stride apart) */
    int         keep;       /* always stored (a loop's result, carry, accumulator) */
    int         ranks;      /* OP_SUM_TO: also summed over every process's share of the batch when the
                               model's sum_ranks is set (synchronized batchnorm, docs/distributed.md);
                               OP_INV_N: 1 / the examples its batch statistics span (1 / n, or the
                               global batch when they are summed over the processes) */
    ir_node    *into;       /* OP_MATMUL, OP_SUM_TO: adds into this OP_SCAN_ACC instead; OP_DENSE:
                               accumulates into this OP_ADD, which starts from its other term (fuse.c) */
    int64_t     step_stride;
    int         tiled;      /* OP_PAD, OP_PAD_ADD: the slices' gradients of one sum cover its axis, each
                               once: the pad writes no zeros, each adds by storing (fuse.c) */
};

typedef struct ir_output { const char *name; ir_node *node; loc at; } ir_output;

typedef struct ir_train {
    int      batch, epochs;
    uint64_t seed;
    int      opt;           /* nnr_opt_kind */
    double   lr, beta1, beta2, eps, mu, rho;
    int      sched;         /* nnr_sched_kind */
    double   sched_a, sched_b, sched_c;
    double   weight_decay, clip_norm;   /* weight_decay: the L2 term added to the gradients */
    double   adamw_decay;   /* adamw(weight_decay=...): decoupled, the runtime's weight_decay for adamw */
    double   clip_value;    /* 0: off; else every gradient element clipped to [-c, c] */
    int      sched_every;   /* nnr_sched_every: 0 per epoch, 1 per optimizer step */
} ir_train;

typedef struct ir_graph {
    arena       *a;
    const source *src;
    const char  *model;     /* model name */
    loc          model_at;
    ptrvec       nodes;     /* ir_node*, topological */
    ptrvec       io;        /* OP_INPUT/OP_LABEL/OP_TARGET nodes, declaration order */
    ptrvec       params;    /* OP_PARAM nodes, declaration order */
    ptrvec       outputs;   /* ir_output* */
    ptrvec       effects;   /* nodes run for their side effects in training (OP_BN_UPDATE) */
    ir_node     *loss;
    loc          loss_at;   /* the value of the `loss = ...` statement */
    ir_train     train;
    int          fwd_count; /* nodes [0, fwd_count) are the forward graph */
    int          shaped_upto; /* nodes [0, shaped_upto) were all given to shape inference */
    int          f64;       /* --dtype f64 */
    int          embedded;  /* --target embedded: one core, static memory (fuse.c, plan.c, emit_embedded.c) */
    int          infer_only;   /* --infer-only: no backward pass, only inference's tensors planned */
    int64_t      param_size, act_size;
    int64_t      train_size;   /* the trainable head of the parameter block; buffers follow */
} ir_graph;

ir_graph *ir_graph_new(arena *a, const source *src);
ir_node  *ir_node_new(ir_graph *g, ir_op op, int nin, ir_node *const *in, loc at);
ir_node  *ir_unary(ir_graph *g, ir_op op, ir_node *x, loc at);
ir_node  *ir_binary(ir_graph *g, ir_op op, ir_node *x, ir_node *y, loc at);
ir_node  *ir_const(ir_graph *g, double v, loc at);
/* A scan: ir_loop_begin opens the body, whose first nodes are its states (ir_loop_state,
 * one per state, init broadcast to the state's shape) and the step's slice of xs
 * (ir_loop_x); the body is then built as usual; ir_loop_end takes the results, makes the
 * stacked outputs and marks every node since the begin as the loop's. */
ir_loop  *ir_loop_begin(ir_graph *g, const ir_node *xs, const char *what, loc at);
ir_node  *ir_loop_state(ir_graph *g, ir_loop *l, ir_node *init, ir_shape shape, loc at);
ir_node  *ir_loop_x(ir_graph *g, ir_loop *l, ir_node *xs, loc at);
void      ir_loop_end(ir_graph *g, ir_loop *l, ir_node *const *results, loc at);
/* Marks nodes [first, g->nodes.n) as loop l's and closes it. */
void      ir_loop_mark(ir_graph *g, ir_loop *l, int first);
static inline ir_node *ir_at(const ir_graph *g, int i) { return (ir_node *)g->nodes.v[i]; }

int64_t ir_numel(const ir_shape *s);
int     ir_shape_eq(const ir_shape *a, const ir_shape *b);
int     ir_same_layout(const ir_node *a, const ir_node *b); /* same shape and batching */
char   *ir_shape_str(arena *a, const ir_shape *s);          /* "[256, 784]" */
char   *ir_node_shape_str(arena *a, const ir_node *n);       /* "[B, 256]" if batched */
int     ir_is_elementwise(const ir_node *n);
int     ir_index_free(const ir_node *n);   /* the same at every index: a literal, 1/n, a broadcast of them */
const char *ir_op_name(const ir_node *n);   /* "relu" for a table function, else the op's name */

/* Prints the graph, one node per line, for --dump-ir and the golden tests. */
void ir_dump(const ir_graph *g, FILE *out, const char *after_pass);
#endif
