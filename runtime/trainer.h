/* trainer.h — what the files of the trainer program share: the parsed command line and the
 * messages of trainer.c, each command's function, and session.c's session, data loading
 * and evaluator, which the commands hold their model and data in.
 *
 * Internal to the runtime: not installed, and generated code never includes it.  What has
 * linkage is prefixed nnr_ like the rest of libnnr, since a static library's names share
 * one namespace with the program that links it.
 */
#ifndef NNR_TRAINER_H
#define NNR_TRAINER_H
#include "nnr.h"

/* Streams split off the seed so shuffling and random batches do not replay the
 * initializer's draws; kept together so that they stay distinct from each other. */
#define SHUFFLE_STREAM 0x53485546464c45ULL
#define BATCH_STREAM   0x4241544348ULL
#define SAMPLE_STREAM  0x53414d504c45ULL

/* The divergence guard (train.c): the default --diverge-factor, and the weight of a step's
 * loss in the average it watches (about 1/weight steps); trainer.c's usage says them. */
#define NNR_DIVERGE_FACTOR 10.0
#define NNR_DIVERGE_ALPHA  0.05

/* ---- the command line (trainer.c) ---------------------------------------------------- */

typedef struct specs { const char **v; int n; } specs;
typedef struct seed_opt { uint64_t v; int set; } seed_opt;
struct command;

typedef struct options {
    const struct command *cmd;
    specs       train, test, input, batch;
    const char *load, *save, *log, *out, *params, *resume, *checkpoint, *label_column;
    const char *text, *test_text;   /* --text, --test-text: a character model's text files */
    const char *positional;         /* plot's CSV file */
    int64_t     epochs, samples, checkpoint_every, patience; /* -1: not given */
    seed_opt    seed;
    double      lr, val_split, eps, tol; /* NAN: not given */
    double      diverge;            /* --diverge-factor: NAN not given, 0 off */
    int         standardize;
    int         check_numerics;     /* --check-numerics: stop at the first non-finite tensor */
    int         sync_batchnorm;     /* --sync-batchnorm: batch statistics over every rank */
    int64_t     check_ranks;        /* --check-ranks K: compare the ranks' parameters; -1 not given */
    int         argc;               /* the command line, for the --resume command an */
    char      **argv;               /* interrupted run prints */
    FILE       *stdin_copy;         /* an input given as '-': standard input copied to a */
    char       *stdin_arg;          /* temporary file, and the argument naming that copy */
} options;

extern const char *nnr_trainer_prog;   /* argv[0] without its directory, for messages */
int nnr_trainer_usage_error(const struct command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));                    /* returns 2 */
int nnr_trainer_fail(void);                                   /* returns 1 */
int nnr_trainer_text_usage(const options *o);
/* The command line that resumes this run from CKPT, on one line: this one, less --load
 * and --resume, plus --resume CKPT (under mpirun, with mpirun -np N before it). */
void nnr_trainer_resume_command(FILE *f, const options *o, const char *ckpt);

/* ---- data parallelism: the ranks of a run (parallel.c; the engine is mpi.c) ---------- */

/* The processes that train one model together, each on its share of every batch.  The
 * engine (MPI, in libnnr_mpi) fills it before nnr_main; NULL: this process trains alone.
 * Every function returns 0, or -1 after recording why. */
typedef struct nnr_comm {
    int rank, size;
    /* COUNT elements of DTYPE (F32, F64 or I64) at X summed over every rank, in place;
     * every rank gets the same bits */
    int (*sum)(void *x, int64_t count, nnr_dtype dtype);
    int (*min_u64)(uint64_t *x, int count);     /* the smallest over the ranks, in place */
    int (*bcast)(void *x, int64_t bytes);       /* rank 0's bytes to every rank */
} nnr_comm;
extern const nnr_comm *nnr_comm_world;


/* ---- the commands: each returns the program's exit status ---------------------------- */

int nnr_cmd_train(const nnr_model_info *info, const options *o);        /* train.c */
int nnr_cmd_eval(const nnr_model_info *info, const options *o);         /* eval.c */
int nnr_cmd_predict(const nnr_model_info *info, const options *o);
int nnr_cmd_grads(const nnr_model_info *info, const options *o);        /* gradcheck.c */
int nnr_cmd_gradcheck(const nnr_model_info *info, const options *o);
int nnr_cmd_init(const nnr_model_info *info, const options *o);         /* export.c */
int nnr_cmd_export(const nnr_model_info *info, const options *o);
int nnr_cmd_summary(const nnr_model_info *info, const options *o);
/* The model's table (summary or summary_lines), ending with a newline. */
void nnr_summary_print(const nnr_model_info *info, FILE *f);
int nnr_cmd_plot(const nnr_model_info *info, const options *o);

/* ---- what the commands share (session.c; its small helpers inline here) -------------- */

static inline size_t col_elem_size(const nnr_model_info *info, const nnr_io *io) {
    return io->classes ? sizeof(int32_t) : nnr_dtype_size(info->dtype);
}

static inline double get(const nnr_model_info *info, const void *p, int64_t i) {
    return info->dtype == NNR_F64 ? ((const double *)p)[i] : ((const float *)p)[i];
}

/* Enough digits to read a value of the model's dtype back exactly. */
static inline const char *num_fmt(const nnr_model_info *info) {
    return info->dtype == NNR_F64 ? "%.17g" : "%.9g";
}

/* The io kinds the model has, as nnr_data_load's `need`: every one feeds its loss. */
static inline unsigned all_kinds(const nnr_model_info *info) {
    unsigned need = 0;
    for (int k = 0; k < info->nio; k++) need |= 1u << info->io[k].kind;
    return need;
}

static inline int oom(void) {
    nnr_set_error("out of memory");
    return -1;
}

/* Scores a data set in sequential batches that point straight into its columns. */
typedef struct evaluator {
    const void **in;                /* nio pointers: examples at..at+nb of every column */
    const void **inputs;            /* the INPUT-kind subset of in, for predict */
    void       **out;               /* nout buffers of `batch` examples */
    int64_t     *confusion;         /* classes x width counts; NULL: no accuracy */
    int          classes, width;    /* label classes; argmax width of out[acc_out] */
    int64_t      labels;            /* labels per example */
} evaluator;

typedef struct scores { double loss, accuracy; } scores; /* NAN: not measured */

/* Everything a command may hold, released in one place on every path. */
typedef struct session {
    void       *m;
    nnr_dataset data, val, test;
    evaluator   ev;
    void      **stage;              /* nio buffers for a gathered training batch */
    int64_t    *order;              /* the training examples in shuffled order */
    double     *acc;                /* grads and gradcheck: gradients in double */
    void       *block;              /* grads: the tensors written, in model dtype */
    FILE       *file;
    nnr_checkpoint ck;              /* what the loaded file said; train: the run's position */
} session;

void nnr_session_free(const nnr_model_info *info, session *s);
int  nnr_session_no_memory(const nnr_model_info *info);   /* NAME_new failed: -1, saying the bytes it asked for */
int  nnr_session_open_model(const nnr_model_info *info, session *s, const char *load,
                            uint64_t seed);
/* names: the CSV column and class names known (the session's ck), see session.c */
int  nnr_session_load_data(const nnr_model_info *info, const options *o, const char *opt,
                           const specs *sp, unsigned need, nnr_checkpoint *names,
                           nnr_dataset *d);
int  nnr_session_load_set(const nnr_model_info *info, const options *o, const char *opt,
                          const specs *sp, const char *text_opt, const char *text,
                          nnr_checkpoint *names, nnr_dataset *d);
int  nnr_session_apply_standardize(const nnr_model_info *info, session *s, const char *from);
int  nnr_session_evaluator_alloc(const nnr_model_info *info, evaluator *ev);
void nnr_session_point_at(const nnr_model_info *info, const nnr_dataset *d, int64_t at,
                          evaluator *ev);
scores nnr_session_evaluate(const nnr_model_info *info, void *m, const nnr_dataset *d,
                            evaluator *ev);
/* Examples lo..hi-1 of d: the sum of their losses and the correct predictions among them
 * (0 without accuracy); ev's confusion matrix counts these examples alone. */
void   nnr_session_evaluate_range(const nnr_model_info *info, void *m, const nnr_dataset *d,
                                  int64_t lo, int64_t hi, evaluator *ev, double *loss_sum,
                                  int64_t *hits);

/* ---- data parallelism in the trainer (parallel.c) ------------------------------------ */

double nnr_now(void);   /* seconds on a monotonic clock (train.c) */

int    nnr_par_usage(const nnr_model_info *info, const options *o);
int    nnr_par_check_data(const nnr_model_info *info, const options *o, int64_t n);
/* One optimizer step of the global batch at..at+nb-1 of s->order, each rank taking its
 * share: the global mean loss (NaN: no update was made).  *stop: whether any rank was
 * asked to stop (stop_in on some rank), the same on every rank. */
double nnr_par_step(const nnr_model_info *info, session *s, const options *o,
                    int64_t at, int nb, int stop_in, int *stop);
int    nnr_par_check_same(const nnr_model_info *info, void *m, const options *o);
scores nnr_par_evaluate(const nnr_model_info *info, void *m, const nnr_dataset *d,
                        evaluator *ev);
double nnr_par_comm_seconds(void);   /* spent in the gradient sums so far */

#endif
