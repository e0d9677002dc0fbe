/* nnr.h — the nnc runtime: everything generated code links against.
 *
 * nnc emits one C file per model holding the forward, backward and update passes with
 * fixed shapes. What does not depend on the model's shapes lives here: the seeded RNG,
 * parameter initializers, safetensors / IDX / CSV readers and writers, the data sets the
 * trainer feeds from, learning-rate schedules, and the trainer's command line
 * (`m train`, `m eval`, ...).  Generated code describes itself to this library through
 * one constant `nnr_model_info` table; the runtime never knows a model's shapes at
 * compile time.
 *
 * Conventions: functions that can fail return 0 on success and -1 on failure, after
 * recording a message ("FILE: what is wrong") that nnr_error() returns.  Nothing here
 * prints except the trainer (nnr_main) and nnr_progress_*.
 */
#ifndef NNR_H
#define NNR_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NNR_MAXRANK 8

/* ---- errors ------------------------------------------------------------------------ */
const char *nnr_error(void);                                 /* last message recorded */
void nnr_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Messages that start "PATH:" start "NAME:" instead (the trainer names its temporary copy
 * of standard input "standard input"); NULL or "" turns it off. */
void nnr_error_alias(const char *path, const char *name);

/* ---- random numbers: xoshiro256** seeded through splitmix64 ----------------------- */
typedef struct nnr_rng { uint64_t s[4]; } nnr_rng;
void     nnr_rng_seed(nnr_rng *r, uint64_t seed);
uint64_t nnr_rng_next(nnr_rng *r);
double   nnr_rng_uniform(nnr_rng *r);                        /* [0, 1) */
double   nnr_rng_normal(nnr_rng *r);                         /* N(0, 1) */
uint64_t nnr_rng_below(nnr_rng *r, uint64_t n);              /* uniform in [0, n), unbiased */
void     nnr_rng_shuffle(nnr_rng *r, int64_t *idx, int64_t n); /* Fisher-Yates */

/* ---- tensors ----------------------------------------------------------------------- */
typedef enum { NNR_F32, NNR_F64, NNR_I32, NNR_I64, NNR_U8, NNR_I8, NNR_I16 } nnr_dtype;
size_t      nnr_dtype_size(nnr_dtype dt);
const char *nnr_dtype_name(nnr_dtype dt);                    /* safetensors spelling: "F32" */

typedef struct nnr_tensor {
    char     *name;                     /* owned; NULL for anonymous */
    nnr_dtype dtype;
    int       rank;
    int64_t   shape[NNR_MAXRANK];
    void     *data;                     /* owned, numel * dtype size bytes */
} nnr_tensor;
int64_t nnr_tensor_numel(const nnr_tensor *t);
/* bytes (a multiple of align, a power of two) aligned to align, for free(); NULL when out of
 * memory.  Generated code allocates its blocks with it: C11's aligned_alloc is not declared
 * under -std=c99, and the generated C compiles as C99 and C11. */
void   *nnr_aligned_alloc(size_t align, size_t bytes);
void    nnr_tensor_free(nnr_tensor *t);                      /* frees name and data */
/* Writes a shape as messages show it, "[3, 4]" ("[]" for a scalar), into buf; returns buf. */
const char *nnr_shape_str(char *buf, size_t cap, int rank, const int64_t *shape);

typedef struct nnr_tensors {           /* a list of named tensors, e.g. a safetensors file */
    nnr_tensor *t;
    int         n;
    char       *metadata;               /* owned JSON text of "__metadata__", or NULL */
} nnr_tensors;
void              nnr_tensors_free(nnr_tensors *ts);
const nnr_tensor *nnr_tensors_find(const nnr_tensors *ts, const char *name);

/* ---- files --------------------------------------------------------------------------
 * safetensors: 8-byte little-endian header length, JSON header (name -> dtype, shape,
 * data_offsets), raw little-endian data.  The reader validates everything (header length
 * against the file size, JSON shape, dtypes, offsets in range, contiguous and
 * non-overlapping, sizes matching shapes).  The writer is atomic: it writes a temporary
 * file beside PATH, fsyncs it, renames it over PATH and fsyncs the directory, so a crash
 * leaves either the old file or the new one.  meta is NULL or pairs of strings
 * {key, value, key, value, ...} stored in "__metadata__". */
int nnr_st_read(const char *path, nnr_tensors *out);
int nnr_st_write(const char *path, const nnr_tensor *ts, int n,
                 const char *const *meta, int nmeta_pairs);

/* IDX (MNIST format), raw or gzip-compressed (detected from the content).  The tensor keeps
 * the file's element type (U8, I8, I16, I32, F32, F64), shape as in the file. */
int nnr_idx_read(const char *path, nnr_tensor *out);

/* CSV: numeric rows, one example a row; a first row with no field that reads as a number
 * is a header and skipped (one that mixes numbers and text is an error).  Gives F32
 * [rows, cols]; every row must have the same count, every value a finite decimal number.
 * nnr_csv_read_named also gives the header's fields as a NULL-terminated array freed with
 * one free(), or NULL when the file has no header. */
int nnr_csv_read(const char *path, nnr_tensor *out);
int nnr_csv_read_named(const char *path, nnr_tensor *out, char ***names);
/* nnr_csv_read_named, and the column whose header name is `keep` also as text: *texts gets
 * its fields, one a row, NULL-terminated, in one allocation freed with one free() (NULL
 * when the file has no such column).  That column's fields may be any non-empty text (a
 * class name such as "setosa"); the ones that are not numbers read as NaN in out. */
int nnr_csv_read_text(const char *path, nnr_tensor *out, char ***names, const char *keep,
                      char ***texts);

/* The whole of PATH (pipes too) into *buf, *len bytes plus a NUL after them; the caller
 * frees *buf.  A directory is refused by name.  nnr_open_input is fopen(PATH, "rb") with
 * the same check; both record a message naming PATH on failure. */
int   nnr_read_file(const char *path, unsigned char **buf, int64_t *len);
FILE *nnr_open_input(const char *path);

/* ---- initializers (docs/language.md), fan-in / fan-out as PyTorch computes them -------
 * rank >= 2: fan_in = shape[1] * prod(shape[2:]), fan_out = shape[0] * prod(shape[2:]);
 * rank < 2: fan_in = fan_out = numel (PyTorch refuses; nnc documents this choice). */
typedef enum {
    NNR_INIT_ZEROS, NNR_INIT_ONES, NNR_INIT_CONST, NNR_INIT_UNIFORM, NNR_INIT_NORMAL,
    NNR_INIT_LECUN_UNIFORM, NNR_INIT_GLOROT_UNIFORM, NNR_INIT_GLOROT_NORMAL,
    NNR_INIT_HE_UNIFORM, NNR_INIT_HE_NORMAL, NNR_INIT_ORTHOGONAL,
    /* over the last two axes [.., R, C] (rank >= 2), every leading index alike: 1 on and
     * below / on and above / on the diagonal, else 0; causal_mask is 0 where j <= i and
     * -inf where j > i (PyTorch's is_causal), for const tensors only.  arange: 0, 1, 2, ...
     * in row-major order (torch.arange(n).reshape(shape)), any rank. */
    NNR_INIT_TRIL, NNR_INIT_TRIU, NNR_INIT_EYE, NNR_INIT_CAUSAL_MASK, NNR_INIT_ARANGE
} nnr_init_kind;
typedef struct nnr_init { nnr_init_kind kind; double a, b; } nnr_init; /* const(a), uniform(a,b), normal(a=mean,b=std) */
void nnr_init_fill(void *data, nnr_dtype dt, int rank, const int64_t *shape,
                   nnr_init init, nnr_rng *rng);

/* ---- what a generated model says about itself --------------------------------------- */
typedef enum { NNR_IO_INPUT, NNR_IO_LABEL, NNR_IO_TARGET, NNR_IO_OUTPUT } nnr_io_kind;
typedef struct nnr_io {
    const char *name;                    /* as written in the model */
    nnr_io_kind kind;
    int         rank;                    /* per example: the batch dimension is not counted */
    int64_t     shape[NNR_MAXRANK];
    int64_t     size;                    /* elements per example */
    int         classes;                 /* K of class(K); 0 for float tensors */
    int         grad;                    /* 1: the model computes d loss / d this input */
    int         predict_unused;          /* inputs: 1 when no output depends on it, so predict
                                            never reads it (NULL may be passed); the trainer's
                                            predict asks only for the others.  0 otherwise
                                            (a hand-written table's default: read) */
} nnr_io;

typedef struct nnr_param {
    const char *name;                    /* "h1.weight" */
    int         rank;
    int64_t     shape[NNR_MAXRANK];
    int64_t     size;
    int64_t     offset;                  /* in elements, within the parameter block */
    nnr_init    init;
    int         buffer;                  /* 1: state such as batchnorm's running statistics;
                                            2: a frozen parameter (`param ... frozen`).  Either
                                            is saved and loaded, never trained or differentiated */
} nnr_param;

typedef enum {
    NNR_OPT_SGD, NNR_OPT_MOMENTUM, NNR_OPT_NESTEROV, NNR_OPT_ADAGRAD, NNR_OPT_RMSPROP,
    NNR_OPT_ADADELTA, NNR_OPT_ADAM, NNR_OPT_ADAMAX, NNR_OPT_NADAM,
    NNR_OPT_ADAMW                        /* weight_decay is its decoupled decay (PyTorch's AdamW) */
} nnr_opt_kind;
typedef enum {
    NNR_SCHED_CONSTANT, NNR_SCHED_STEP, NNR_SCHED_EXPONENTIAL, NNR_SCHED_POLYNOMIAL,
    NNR_SCHED_COSINE, NNR_SCHED_WARMUP_COSINE
} nnr_sched_kind;
/* When the schedule is evaluated: once per epoch (t = epochs done) or before every
 * optimizer step (t = optimizer steps done), train { schedule_every = epoch|step }. */
typedef enum { NNR_SCHED_EVERY_EPOCH, NNR_SCHED_EVERY_STEP } nnr_sched_every;

typedef struct nnr_train_config {
    int            batch, epochs;
    uint64_t       seed;
    nnr_opt_kind   opt;
    double         lr, beta1, beta2, eps, mu, rho;  /* those the optimizer uses */
    nnr_sched_kind sched;
    double         sched_a, sched_b, sched_c;       /* step(a=every, b=gamma); exponential(a=gamma);
                                                       polynomial(a=alpha, b=beta, c=gamma); cosine(a=t_max);
                                                       warmup_cosine(a=warmup, b=t_max) */
    double         weight_decay, clip_norm;         /* 0: off.  adamw: its decoupled decay */
    double         clip_value;                      /* 0: off; else each gradient element is
                                                       clipped to [-c, c] before clip_norm */
    nnr_sched_every sched_every;                    /* epoch (0, the default) or step */
} nnr_train_config;

/* The learning rate at t (from 0: epochs done, or optimizer steps done when
 * cfg->sched_every is NNR_SCHED_EVERY_STEP) under cfg's schedule, from base_lr. */
double nnr_schedule_lr(const nnr_train_config *cfg, double base_lr, int64_t t);

/* Adds COUNT elements at X (the model's dtype) over every process of a data-parallel run,
 * in place: the same sum on each (synchronized batch statistics; NAME_shard). */
typedef void (*nnr_sum_fn)(void *ctx, void *x, int64_t count);

typedef struct nnr_model_info {
    const char        *name;             /* model name as written */
    const char        *source;           /* the .nn file it was compiled from */
    nnr_dtype          dtype;            /* NNR_F32 or NNR_F64: every float tensor */
    int                batch;            /* compiled batch size: n <= batch in every call */
    int                nio;  const nnr_io *io;      /* inputs, labels, targets, declaration order */
    int                nout; const nnr_io *out;     /* outputs, declaration order */
    int                nparam; const nnr_param *param;
    int64_t            param_size;       /* elements in the parameter (and gradient) block */
    int64_t            state_size;       /* elements of optimizer state (block of that size) */
    int64_t            act_size;         /* elements of the activation block (0: not given) */
    int                acc_out, acc_label; /* accuracy = argmax(out[acc_out]) == io[acc_label]; -1: none;
                                            a label [T] and an output [T, K]: at every position */
    nnr_train_config   train;            /* the model's train { } block, defaults filled */
    const char        *summary;          /* the table `nnc --summary` prints, or NULL and ... */
    const char *const *summary_lines;    /* ... its lines, NULL-terminated (nnc writes these: C99
                                            promises string literals of 4095 bytes only) */
    uint64_t           schema_hash;      /* hash of names, shapes and dtype of params and io */
    const char        *nnc_version;      /* of the nnc that generated it (`m --version`); may be NULL */

    /* Entry points.  `in[k]` points at n consecutive examples of io[k]: model dtype for
     * float tensors, int32_t for class tensors.  predict's `in` holds the INPUT-kind
     * entries of io only, in order (NULL for one marked predict_unused); `out[k]` receives
     * n examples of out[k]. */
    void  *(*create)(void);              /* zeroed parameters, NULL when out of memory */
    void   (*destroy)(void *m);
    void  *(*params)(void *m);           /* parameter block, param_size elements */
    void  *(*grads)(void *m);            /* gradient block, same layout */
    void  *(*state)(void *m);            /* optimizer state block, state_size elements */
    int64_t *(*step)(void *m);           /* optimizer step counter */
    void  *(*input_grad)(void *m, int k);/* d loss / d io[k] (n examples), NULL unless io[k].grad */
    double (*loss)(void *m, int n, const void *const *in, int training); /* forward only */
    double (*loss_grad)(void *m, int n, const void *const *in);          /* forward + backward */
    double (*train_step)(void *m, int n, const void *const *in);         /* + optimizer update */
    void   (*predict)(void *m, int n, const void *const *in, void *const *out);
    void   (*set_lr)(void *m, double lr);
    void   (*set_seed)(void *m, uint64_t seed);   /* the seed of dropout's masks; may be NULL */
    /* --check-numerics: with checking on, the step functions verify every tensor they
     * compute and stop at the first non-finite value, returning NaN; numerics() then
     * names it ("non-finite value nan in h1 (line 7) in the forward pass at step 12"),
     * and is NULL while everything is finite.  Both may be NULL (hand-written models). */
    void   (*set_check)(void *m, int on);
    const char *(*numerics)(void *m);
    /* Data parallelism (docs/distributed.md): update is the optimizer step of train_step
     * alone; shard as NAME_shard.  NULL in hand-written models, which then train in one
     * process only. */
    void   (*update)(void *m);
    void   (*shard)(void *m, int64_t at, int64_t total, nnr_sum_fn sum, void *ctx);
} nnr_model_info;

/* ---- whole-model helpers used by the generated _init/_load/_save -------------------- */
void nnr_model_init(const nnr_model_info *info, void *m, uint64_t seed);
/* Reads PATH and copies every parameter in; F32 or F64 files are converted.  Fails (and
 * leaves the model untouched) on a missing parameter, a shape that differs, or a file
 * problem; the message names the file and the tensor. */
int  nnr_model_load(const nnr_model_info *info, void *m, const char *path);
int  nnr_model_save(const nnr_model_info *info, void *m, const char *path); /* atomic */

/* ---- the generated model API's helpers (docs/c-api.md) ------------------------------- */
/* A tensor's shape as NAME_param gives it: rank and dims, dim[rank..] zero. */
typedef struct nnr_shape {
    int     rank;
    int64_t dim[NNR_MAXRANK];
} nnr_shape;
/* The parameter (or buffer) called `name` ("h1.weight"), or NULL after recording
 * "model M has no parameter 'name'". */
const nnr_param *nnr_model_param(const nnr_model_info *info, const char *name);

/* The input standardization a model holds (`m train --standardize` stores it in the
 * checkpoint as standardize.mean / standardize.std): NAME_predict feeds the model
 * (x - mean) / std of its float inputs, computed in double and rounded to the model's
 * dtype exactly as the trainer standardizes a data set, into `stage`.  Features are the
 * elements of the float INPUT entries of io, in io order (nnr_data_features). */
typedef struct nnr_standardization {
    int64_t n;                  /* features; 0: none */
    double *mean, *std;         /* n values each, owned */
    void   *stage;              /* info->batch * n elements of the model's dtype, owned */
} nnr_standardization;
/* Replaces z with a copy of mean and std (n == 0: none); n must be the model's feature
 * count and every std finite and > 0, every mean finite.  -1 (z unchanged) otherwise or
 * when out of memory. */
int  nnr_standardization_set(const nnr_model_info *info, nnr_standardization *z,
                             const double *mean, const double *std, int64_t n);
void nnr_standardization_free(nnr_standardization *z);
/* x standardized into z's staging for io[k] (a float input), n <= batch examples; the
 * staged copy, or x itself when z holds none or x is NULL. */
const void *nnr_standardize_input(const nnr_model_info *info, const nnr_standardization *z,
                                  int k, const void *x, int n);
/* nnr_model_load, and z set to the file's standardization (emptied when it has none);
 * the feature count is checked and the staging allocated before anything changes, so a
 * failure leaves both m and z untouched. */
int  nnr_model_load_standardized(const nnr_model_info *info, void *m, const char *path,
                                 nnr_standardization *z);
/* nnr_model_save plus z's standardize.mean / standardize.std when z->n > 0. */
int  nnr_model_save_standardized(const nnr_model_info *info, void *m, const char *path,
                                 const nnr_standardization *z);

/* ---- used by the generated training step --------------------------------------------- */
/* The fraction of nonzeros below which a backward product takes its sparse path, given
 * `below`, the fraction that pays for a small product.  A large one (at least 2^27
 * multiply-adds a batch, which OpenBLAS runs near its peak) breaks even at 3/4 of it: 0.3
 * against 0.4 was 0.911x the wide MLP's epoch (784-2048-2048-10, batch 256, dY about 39 %
 * nonzero in its 2048x2048 products).  It does not depend on the thread count (both paths
 * share their rows among nnc's threads), so neither does the path a batch takes.
 * `below` 1 or more: always sparse (the tests' setting), 0: never. */
double nnr_gemm_sparse_limit(double below, int large);

/* nnc's thread count: OpenBLAS's default (OPENBLAS_NUM_THREADS, else OMP_NUM_THREADS, else
 * one per core), read at the first call, which also sets OpenBLAS itself to one thread.
 * nnr_set_threads(n) replaces it (before training, not during a step); results are the
 * same bits at any count. */
int  nnr_threads(void);
void nnr_set_threads(int n);

/* Chooses how nnc's idle threads wait, for a program about to train: libgomp reads its
 * wait policy only when it is loaded, so unless the environment already says
 * (OMP_WAIT_POLICY or GOMP_SPINCOUNT), this sets GOMP_SPINCOUNT=10000 (a bounded spin)
 * when the threads other processes are running leave a core for each of nnc's, else
 * OMP_WAIT_POLICY=passive (sleep at once), and runs the program again (execv of
 * /proc/self/exe with argv); it returns only when it did not.  nnr_main calls it.  Why:
 * spinning beside a busy process made 2 threads 5-30x slower than 1, sleeping made an
 * idle machine's small products 1.26x slower (gemm.c). */
void nnr_threads_passive(char **argv);

/* Its rule: spin when threads > 1 and others + threads <= cpus (others < 0: unknown, sleep). */
int nnr_wait_spins(int threads, int cpus, int others);

/* cblas_sgemm / cblas_dgemm cut into blocks of rows or columns of C that depend on the
 * product's shape alone, each a single-threaded cblas call, the blocks shared among
 * nnr_threads(): the same bits at any thread count (gemm.c).  Row-major products are
 * cut; a column-major one is one call. */
#ifdef CBLAS_H
void nnr_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int m, int n,
               int k, float alpha, const float *a, int lda, const float *b, int ldb, float beta, float *c,
               int ldc);
void nnr_dgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int m, int n,
               int k, double alpha, const double *a, int lda, const double *b, int ldb, double beta,
               double *c, int ldc);
#endif

/* ---- checkpoints: a parameter file plus what resuming a run needs ------------------
 * A checkpoint holds every parameter and buffer under its name (as nnr_model_save writes
 * them, so PyTorch reads them), and besides them:
 *   "optimizer.state"   model dtype, [state_size]: the optimizer state block byte for
 *                       byte (omitted when state_size is 0);
 *   "standardize.mean", "standardize.std"   F64, [features]: the standardization of the
 *                       float inputs (nnr_data_features), only when training used one;
 *   "__metadata__"      nnc_model, nnc_schema (16 hex digits), nnc_checkpoint ("1"), step,
 *                       epoch, batch, epochs, examples, seed, lr, loss_sum, and best_loss,
 *                       best_epoch once early stopping has a best; csv_columns and
 *                       csv_classes (JSON arrays of strings) when training read a CSV file
 *                       with --label-column: its feature columns' names in the order they
 *                       fed the input, and the label's class names, class k's at k.
 * The numbers are decimal strings; doubles with 17 significant digits, so they read back
 * exactly. */
typedef struct nnr_checkpoint {
    int64_t  step;            /* optimizer steps taken: *info->step(m) */
    int64_t  epoch;           /* epochs completed */
    int64_t  batch;           /* batches done in the epoch after those (0: at its start) */
    int64_t  epochs;          /* epochs the run was asked for */
    int64_t  examples;        /* training examples, so resuming on other data is caught */
    uint64_t seed;            /* of the shuffles and of dropout's masks */
    double   lr;              /* base learning rate, before the schedule */
    double   loss_sum;        /* sum of loss x examples over the batches of the partial epoch */
    double   best_loss;       /* early stopping: best monitored loss so far; NAN: none yet */
    int64_t  best_epoch;      /* the epoch (from 1) that reached it */
    int64_t  nstd;            /* standardized features; 0: none */
    double  *mean, *std;      /* nstd values each; owned after nnr_checkpoint_load */
    int      full;            /* set by nnr_checkpoint_load: the file is a whole checkpoint */
    /* What training learned from a CSV file with a header (--label-column): each list is
     * one allocation (pointers, a NULL, the text) freed by nnr_checkpoint_free; NULL: none. */
    char   **columns;         /* feature column names, in the order they feed the input */
    int      ncolumns;
    char   **classes;         /* the label's class names, sorted: class k is classes[k] */
    int      nclasses;
} nnr_checkpoint;
/* The name of class k of the label (string labels of a CSV file), or NULL when ck stores
 * no names (numeric labels) or k is outside them: write the number k then. */
const char *nnr_class_name(const nnr_checkpoint *ck, int k);
/* n strings (v[i] may not be NULL) copied as one such allocation; NULL when out of memory. */
char **nnr_strings_copy(char *const *v, int n);
/* Writes m and ck to PATH atomically (ck->step is taken from the model). */
int  nnr_checkpoint_save(const nnr_model_info *info, void *m, const char *path,
                         const nnr_checkpoint *ck);
/* The same from blocks laid out as m's (a snapshot of them taken `step` steps in). */
int  nnr_checkpoint_write(const nnr_model_info *info, const void *params, const void *state,
                          int64_t step, const char *path, const nnr_checkpoint *ck);
/* Before any of the writers above replaces a file it checks that the parameters and the
 * optimizer state are finite, and refuses ("PATH: not written: parameter 'h.weight' holds
 * nan at element 12"): the loaders refuse such files, so writing one would only replace a
 * usable file with an unusable one.  nnr_model_check_finite does the same check on m,
 * recording which value is at fault (and with with_grads, the first non-finite gradient
 * too: "; the gradient of 'h.weight' holds nan at element 3"), and returns -1 when one is
 * not finite.  The optimizer state's faults name the parameter element they belong to. */
int  nnr_model_check_finite(const nnr_model_info *info, void *m, int with_grads);
/* The index of the first NaN or infinity among n values of dt (F32 or F64), or -1. */
int64_t nnr_first_nonfinite(nnr_dtype dt, const void *p, int64_t n);
/* Reads PATH into m.  resume = 0: what nnr_model_load does (plain parameter files are
 * accepted), and ck (may be NULL) receives whatever metadata and standardization the file
 * has.  resume = 1: the file must be a whole checkpoint of this model (same name and schema
 * hash); the optimizer state and step are restored too.  Either way a file written for
 * another model is refused with a message naming what differs, and a failure leaves m
 * untouched.  Parameters and the optimizer state (when the file has one) must be finite;
 * when resuming, the state's sums of squares (adagrad, rmsprop, adadelta, the Adam family's
 * second moment) must also be non-negative. */
int  nnr_checkpoint_load(const nnr_model_info *info, void *m, const char *path,
                         nnr_checkpoint *ck, int resume);
void nnr_checkpoint_free(nnr_checkpoint *ck);  /* frees mean, std, columns and classes */

/* ---- data sets ----------------------------------------------------------------------
 * One column per io entry of the model, n examples each: float columns hold model dtype
 * values, class columns int32.  Specs are "NAME=FILE" or a bare safetensors "FILE" (each
 * column from the tensor of its name).  IDX ubyte images become floats in [0, 1], ubyte
 * labels classes; any file's leading dimension is the example index and the rest must
 * hold as many elements as one example of the column.  Labels are checked against
 * [0, classes); float data must be finite.  `need` is a bit set over io kinds
 * (1 << NNR_IO_INPUT | ...) the data set must provide; a column of a kind not needed is
 * not read even when given.  With NNR_NEED_PREDICT added, the inputs marked
 * predict_unused are not needed either (predict's data: only what its outputs read). */
#define NNR_NEED_PREDICT (1u << 8)
typedef struct nnr_dataset {
    int64_t n;
    int     ncol;                        /* == info->nio */
    void  **col;                         /* col[k]: n * io[k].size elements, NULL if absent */
} nnr_dataset;
int  nnr_data_load(const nnr_model_info *info, int nspec, const char *const *spec,
                   unsigned need, nnr_dataset *out);
void nnr_data_free(nnr_dataset *d);
/* Splits off the last `frac` of d into val (Keras's validation_split): d keeps the head. */
int  nnr_data_split(const nnr_model_info *info, nnr_dataset *d, double frac, nnr_dataset *val);
/* Memory for a data set's column or a staged batch: 64-byte aligned, so the rows of a
 * batch whose row size is a multiple of 64 bytes (Fashion-MNIST's 784 floats) start on
 * a cache line and the generated loops' vector loads never straddle two (measured: the
 * MLP's sparse weight-gradient product on a real batch takes 236-267 µs on the 16-byte
 * offset glibc's malloc gives such a block, 142 µs aligned).  Release it with free();
 * NULL when out of memory. */
void *nnr_alloc_aligned(size_t bytes);
/* Copies examples idx[0..n) of every present column into the staging buffers dst[k]. */
void nnr_data_gather(const nnr_model_info *info, const nnr_dataset *d, const int64_t *idx,
                     int n, void *const *dst);

/* CSV with a header row naming its columns: the column named `label_column` feeds the
 * model's one label (class(K), one class per example) or one float target ([1]), the
 * other columns feed its one float input, whose per-example size must be their count.  A
 * file without that column is accepted when `need` does not ask for labels (predict):
 * then every column is an input.
 * Names (names may be NULL: none known, nothing learned): when names->columns is set, the
 * file's feature columns must be the same names, in any order, and are fed in that
 * stored order; when names->classes is set, every label is looked up among them by name.
 * With learn (the training set), what names lacks is taken from this file: its feature
 * names, and when some label is not an integer, the sorted distinct labels as class
 * names (at most K of them).  Without learn, a label that is not a number needs
 * names->classes. */
int  nnr_data_load_csv(const nnr_model_info *info, const char *path, const char *label_column,
                       unsigned need, nnr_checkpoint *names, int learn, nnr_dataset *out);
/* A text file as (context window, next byte) examples over a byte vocabulary, so a
 * character model trains straight from a file.  The model must have one class input of
 * T classes per example ([T], the window) and one label of one class (the next byte), and
 * nothing else to feed.  Byte i of the file gives example i: the window is bytes
 * i-T .. i-1, left-padded with '\n' (10) before the file's start, so every byte is
 * predicted, and the label is byte i.  A byte outside a class(K) it feeds is an error
 * naming the file and the byte's offset. */
int  nnr_data_load_text(const nnr_model_info *info, const char *path, nnr_dataset *out);
/* "input", "label", "target", "output": an io kind as messages name it. */
const char *nnr_io_kind_name(nnr_io_kind kind);
/* Standardization: the features are the elements of the float INPUT columns, in io order. */
int64_t nnr_data_features(const nnr_model_info *info);
/* Per-feature mean and standard deviation (population) of d; a constant feature gets std 1. */
void nnr_data_stats(const nnr_model_info *info, const nnr_dataset *d, double *mean, double *std);
/* x <- (x - mean) / std for every feature of every example of d. */
void nnr_data_standardize(const nnr_model_info *info, nnr_dataset *d, const double *mean,
                          const double *std);

/* ---- plots ---------------------------------------------------------------------------
 * `m plot run.csv -o curves.svg`: the loss curves (train, val, test) and the accuracy
 * curves (val, test) per epoch of a --log CSV, as a standalone SVG in two panels.  "-"
 * for either path is standard input or output. */
int nnr_plot_svg(const char *csv_path, const char *svg_path);

/* ---- the trainer program ------------------------------------------------------------
 * `nnc MODEL.nn --exe` links a main() that calls this.  Subcommands (docs/trainer.md):
 * train eval predict init grads gradcheck summary, and export and plot.  Returns the
 * process exit status. */
int nnr_main(const nnr_model_info *info, int argc, char **argv);
/* `nnc MODEL.nn --exe --mpi`: the same program as one rank of a data-parallel run under
 * mpirun (libnnr_mpi.a; docs/distributed.md).  Starts and ends MPI around nnr_main. */
int nnr_mpi_main(const nnr_model_info *info, int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif
