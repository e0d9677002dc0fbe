/* codegen.h — the passes after shape inference, in pipeline order, and the outputs nnc
 * writes.  Each pass reads and annotates the one ir_graph; see each file's opening
 * comment for what it owns. */
#ifndef NNC_CODEGEN_H
#define NNC_CODEGEN_H
#include <stdio.h>
#include "ir.h"

/* grad.c: append the backward graph (reverse mode) for d mean(loss) / d params and grad
 * inputs.  Returns 0, or -1 after an internal error message. */
int   grad_build(ir_graph *g, diag *d);
/* fuse.c: count uses, decide which tensors are inlined into their consumer's loop and
 * which are materialized, and which nodes each pass (train / infer) emits. */
void  fuse_plan(ir_graph *g);
/* the padded extent [Hp, Wp] of a convolution's channel-last image: every tap lands inside */
void  fuse_conv_extent(const ir_conv *g, int64_t *hp, int64_t *wp);
int   fuse_pool_tiled(const ir_conv *g);
/* a direct convolution computed with Winograd's F(2x2, 3x3); its working memory's parts */
int   fuse_winograd(const ir_conv *g);
typedef struct fuse_wino_mem { int64_t image, filters, u, v, m; } fuse_wino_mem;
fuse_wino_mem fuse_wino_layout(const ir_conv *g, int64_t filters);
enum { FUSE_WINO_TILES = 6, FUSE_WINO_FILTERS = 32 };   /* a register block: tiles x filters */
/* the fixed chunks of examples a convolution's loop runs in on nnc's threads, and the
 * partial sums each chunk of its gradients keeps (fuse.c) */
int   fuse_conv_chunks(const ir_conv *g, int64_t filters, int64_t batch);
int64_t fuse_chunk_batch(const ir_graph *g);   /* the batch the chunks divide: 1 on the embedded target */
int64_t fuse_conv_partials(const ir_node *n);
enum { FUSE_CONV_CHUNKS_MAX = 8, FUSE_CONV_CHUNK_MACS = 1 << 20, FUSE_SUM_CHUNK_ELEMENTS = 1 << 16 };
int   fuse_batch_sum_chunks(const ir_node *n, int64_t batch);   /* a sum over the batch, the same way */
int64_t fuse_sum_part_stride(const ir_node *n);                  /* ... its partials' distance */
int   fuse_sparse_form(const ir_node *n);   /* 1: dX = dY · W, 2: dW = dYᵀ · X (a sparse path), else 0 */
/* emit_stack.c: how a stack of products (ir_mm.srank > 0) runs as GEMMs.  An axis of its
 * loops: size matrices (times the batch when batch), each operand (A, B, C) moving by
 * stride elements along it (0: the same matrix). */
typedef struct stack_axis { int64_t size; int batch; int64_t stride[3]; } stack_axis;
enum { STACK_LOOP, STACK_ROWS, STACK_INNER, STACK_COLS };   /* which GEMM size the innermost axis grows, if any */
typedef struct stack_plan {
    int64_t    p, k, q;                   /* one product: op(A) [p, k] @ op(B) [k, q] */
    int        naxes;                     /* the loops around the GEMM, outermost first */
    stack_axis axis[IR_MAXRANK + 1];
    int        fold;                      /* STACK_ROWS: M; STACK_INNER: K; STACK_COLS: M, operands swapped */
    stack_axis folded;                    /* the axis folded into the GEMM */
    int        swap, ta, tb;              /* the call: B first when swap, transposes, sizes, strides */
    int64_t    M, N, K, lda, ldb, ldc;    /* M or K before the fold multiplies it */
} stack_plan;
void  stack_plan_of(const ir_node *n, stack_plan *s);
/* the GEMM argument ("M" or "K") the batch multiplies, and by how much; 0: none does */
int64_t stack_by_batch(const ir_node *n, const char **arg);
/* plan.c: give every materialized tensor a block and an offset (params, grads, acts). */
void  plan_memory(ir_graph *g);
int   plan_state_slots(int opt);                 /* optimizer state: tensors per trainable parameter */
int64_t plan_state_size(const ir_graph *g);      /* elements of the optimizer state block */
int64_t plan_total_bytes(const ir_graph *g);     /* params, grads, state, activations; INT64_MAX: more */
/* Errors, at the statement, for a GEMM argument the batch pushes past INT_MAX; returns the
 * error count.  (Every dimension and per-example count was bounded by shape inference.) */
int   plan_check_sizes(ir_graph *g, diag *d);
/* An error when the plan's total exceeds `limit` bytes (0: no limit), with its blocks and
 * notes at the largest activations; returns 1 then, else 0. */
int   plan_check_memory(ir_graph *g, int64_t limit, const char *limit_from, diag *d);
const char *plan_human_bytes(arena *a, int64_t bytes);   /* "16.0 GiB" */
/* names.c: give every tensor a C identifier that clashes with nothing. */
void  names_assign(ir_graph *g);
const char *names_mangle(arena *a, const char *user);   /* "h1.weight" -> "h1_weight" */
int   names_has_loops(const ir_graph *g);                /* some scan's loop: t is its step */
int   names_reserved(const char *id);                   /* keyword, libc, BLAS, macro */
const char *names_unreserved(arena *a, const char *id); /* id, id_ or u_id: usable in C */
/* A hashed set of identifiers; {a} is an empty one.  add returns how often id was added before. */
typedef struct names_set { arena *a; const char **slot; int *count; size_t cap, n; } names_set;
int   names_set_has(const names_set *s, const char *id);
int   names_set_add(names_set *s, const char *id);
/* What names.c names temporaries and gradients after: per node the binding its line makes
 * (h1_relu; in a function's body, in that call), per backward tensor the forward node
 * whose gradient it holds (ds4 for the product whose view is s4's gradient). */
typedef struct names_owner {
    const char    **node;     /* per node id below count */
    const ir_node **holder;   /* per node id below count */
    int             count;
} names_owner;
names_owner *names_owners(ir_graph *g);
const char *names_base(ir_graph *g, const names_owner *o, const ir_node *n);   /* h1, dh1, h1_relu */

/* emit_api.c: write the model's C file and header (emit.h lists the emitter's files).
 * `which` selects --emit: NULL for the whole file, or "forward", "backward", "update",
 * "infer" to print only that function. */
/* weights.c: a checkpoint's parameters for --weights, checked against the model's and laid
 * out as its parameter block, in double precision; the input standardization if the file
 * has one.  -1 after printing why to stderr. */
typedef struct emit_weights {
    const char   *path;
    double       *params;        /* param_size elements, the block's layout (padding 0) */
    int64_t       nstd;          /* features of the standardization; 0: none */
    const double *mean, *std;
} emit_weights;
int weights_read(ir_graph *g, const char *path, emit_weights *w);

typedef struct emit_opts {
    const char *header_name;     /* "model.h" as the .c file includes it */
    const char *source_path;     /* the .nn file, for comments */
    const char *which;
    int         with_main;       /* --exe: add main() calling nnr_main */
    int         mpi;             /* --mpi: ... calling nnr_mpi_main, a rank of an MPI run */
    int         embedded;        /* --target embedded (emit_embedded.c) */
    const emit_weights *weights; /* --weights: baked in as static const arrays; NULL: none */
    int         own_math;        /* --math inline: the math functions written into the file */
} emit_opts;
int   emit_c(ir_graph *g, FILE *out, const emit_opts *o);
int   emit_h(ir_graph *g, FILE *out, const emit_opts *o);

/* summary.c: the Keras-like table of --summary (also embedded in the trainer). */
char *summary_text(ir_graph *g);
/* ... and for --target embedded, the RAM and flash each part of the model takes. */
char *summary_embedded(ir_graph *g);
/* graph.c: forward and backward graphs for Graphviz (--graph). */
void  graph_dot(ir_graph *g, FILE *out);
/* build.c: compile and link a generated trainer (--exe).  Returns 0, or -1 after
 * printing why to stderr. */
int   build_exe(const char *c_path, const char *exe_path, int mpi, int verbose);
#endif
