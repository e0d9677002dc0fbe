/* trainer.c — the program every generated model links: `m train | eval | predict | init |
 * grads | gradcheck | summary | export | plot` (SPEC §4), generic over models through
 * nnr_model_info.
 *
 * Each command allocates everything before its loops, so a training step only gathers a
 * shuffled batch into staging buffers and calls the model (a periodic checkpoint write is
 * the one exception: the safetensors writer builds its header).  Training is exactly
 * resumable: each epoch's order is a function of (seed, epoch) alone, and a checkpoint
 * records the step, the epoch, the batches done in it and the partial loss sum, so a run
 * resumed from any checkpoint replays the remaining steps of the uninterrupted run.  Results go to stdout in fixed
 * formats that scripts parse; the progress bar and problems go to stderr.  Exit status: 0
 * success, 1 a model, data or file problem (the message names the file or tensor), 2 a
 * command line that cannot be understood.
 */
#include "nnr.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BAR_WIDTH      20
#define BAR_INTERVAL   0.1          /* seconds between progress redraws */
#define CONFUSION_MAX  50           /* larger confusion matrices are not printed */
#define TINY           1e-30

/* Streams split off the seed so shuffling and random batches do not replay the
 * initializer's draws. */
#define SHUFFLE_STREAM 0x53485546464c45ULL
#define BATCH_STREAM   0x4241544348ULL
#define SAMPLE_STREAM  0x53414d504c45ULL

static const char *prog = "m";      /* argv[0] without its directory, for messages */

/* ---- the command line ---------------------------------------------------------------- */

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
    int         standardize;
    int         check_numerics;     /* --check-numerics: stop at the first non-finite tensor */
} options;

typedef struct command {
    const char *name;
    int (*run)(const nnr_model_info *info, const options *o);
    const char *args;               /* its usage, after the program and command names */
} command;

typedef enum { OPT_SPECS, OPT_PATH, OPT_COUNT, OPT_SEED, OPT_REAL, OPT_FLAG } opt_kind;
typedef struct option_def {
    const char *name;
    opt_kind    kind;
    size_t      off;                /* the field of options it sets */
    const char *cmds;               /* the commands that take it */
} option_def;

static const option_def option_defs[] = {
    {"--train",     OPT_SPECS, offsetof(options, train),     " train "},
    {"--test",      OPT_SPECS, offsetof(options, test),      " train eval "},
    {"--input",     OPT_SPECS, offsetof(options, input),     " predict "},
    {"--batch",     OPT_SPECS, offsetof(options, batch),     " grads gradcheck "},
    {"--load",      OPT_PATH,  offsetof(options, load),      " train eval predict export "},
    {"--save",      OPT_PATH,  offsetof(options, save),      " train init "},
    {"--resume",    OPT_PATH,  offsetof(options, resume),    " train "},
    {"--checkpoint", OPT_PATH, offsetof(options, checkpoint), " train "},
    {"--checkpoint-every", OPT_COUNT, offsetof(options, checkpoint_every), " train "},
    {"--patience",  OPT_COUNT, offsetof(options, patience),  " train "},
    {"--label-column", OPT_PATH, offsetof(options, label_column), " train eval predict "},
    {"--text",      OPT_PATH,  offsetof(options, text),      " train "},
    {"--test-text", OPT_PATH,  offsetof(options, test_text), " train eval "},
    {"--standardize", OPT_FLAG, offsetof(options, standardize), " train "},
    {"--check-numerics", OPT_FLAG, offsetof(options, check_numerics), " train "},
    {"--log",       OPT_PATH,  offsetof(options, log),       " train "},
    {"--out",       OPT_PATH,  offsetof(options, out),       " predict grads export plot "},
    {"-o",          OPT_PATH,  offsetof(options, out),       " plot "},
    {"--params",    OPT_PATH,  offsetof(options, params),    " grads gradcheck "},
    {"--epochs",    OPT_COUNT, offsetof(options, epochs),    " train "},
    {"--samples",   OPT_COUNT, offsetof(options, samples),   " gradcheck "},
    {"--seed",      OPT_SEED,  offsetof(options, seed),      " train init gradcheck "},
    {"--lr",        OPT_REAL,  offsetof(options, lr),        " train "},
    {"--val-split", OPT_REAL,  offsetof(options, val_split), " train "},
    {"--eps",       OPT_REAL,  offsetof(options, eps),       " gradcheck "},
    {"--tol",       OPT_REAL,  offsetof(options, tol),       " gradcheck "},
};
#define NOPTION_DEFS ((int)(sizeof option_defs / sizeof option_defs[0]))

static int cmd_train(const nnr_model_info *info, const options *o);
static int cmd_eval(const nnr_model_info *info, const options *o);
static int cmd_predict(const nnr_model_info *info, const options *o);
static int cmd_init(const nnr_model_info *info, const options *o);
static int cmd_grads(const nnr_model_info *info, const options *o);
static int cmd_gradcheck(const nnr_model_info *info, const options *o);
static int cmd_summary(const nnr_model_info *info, const options *o);
static int cmd_export(const nnr_model_info *info, const options *o);
static int cmd_plot(const nnr_model_info *info, const options *o);

static const command commands[] = {
    {"train", cmd_train,
     "--train NAME=FILE ... [--test NAME=FILE ...] [--epochs N] [--seed S]\n"
     "[--lr X] [--load CKPT] [--save CKPT] [--val-split F] [--log run.csv]\n"
     "[--resume CKPT] [--checkpoint CKPT [--checkpoint-every N]] [--patience N]\n"
     "[--check-numerics]\n"
     "[--label-column NAME] [--standardize] [--text FILE] [--test-text FILE]"},
    {"eval", cmd_eval, "--load CKPT --test NAME=FILE ... [--label-column NAME] [--test-text FILE]"},
    {"predict", cmd_predict, "--load CKPT --input NAME=FILE ... [--out FILE] [--label-column NAME]"},
    {"init", cmd_init, "[--seed S] --save PARAMS"},
    {"grads", cmd_grads, "--params PARAMS --batch BATCH --out GRADS"},
    {"gradcheck", cmd_gradcheck,
     "[--params PARAMS] [--batch BATCH] [--seed S] [--eps E]\n"
     "[--samples K] [--tol T]"},
    {"summary", cmd_summary, ""},
    {"export", cmd_export, "--load CKPT --out PARAMS"},
    {"plot", cmd_plot, "RUN.csv -o CURVES.svg"},
};
#define NCOMMANDS ((int)(sizeof commands / sizeof commands[0]))

static const char *kind_name(nnr_io_kind kind) {
    static const char *names[] = {"input", "label", "target", "output"};
    return names[kind];
}

/* "m train --train ...", the command name padded to `width` and the continuation lines
 * of args indented under their first word. */
static void synopsis(FILE *f, const char *lead, int width, const command *cmd) {
    if (!*cmd->args) width = 0;
    int indent = fprintf(f, "%s%s %-*s%s", lead, prog, width, cmd->name, *cmd->args ? " " : "");
    for (const char *p = cmd->args; *p; p++) {
        fputc(*p, f);
        if (*p == '\n') fprintf(f, "%*s", indent, "");
    }
    fputc('\n', f);
}

static void usage(FILE *f, const nnr_model_info *info) {
    fprintf(f, "usage: %s COMMAND [OPTIONS]      model %s, compiled from %s\n\ncommands:\n",
            prog, info->name, info->source ? info->source : "?");
    for (int i = 0; i < NCOMMANDS; i++) synopsis(f, "  ", 9, &commands[i]);
    fprintf(f, "\nNAME=FILE gives the model's input, label or target NAME from an IDX (raw or .gz),\n"
               "CSV or safetensors file; a bare FILE.safetensors gives each from the tensor of\n"
               "its name.  The model's data:");
    for (int k = 0; k < info->nio; k++) {
        const nnr_io *io = &info->io[k];
        char shape[256];
        nnr_shape_str(shape, sizeof shape, io->rank, io->shape);
        fprintf(f, "%s %s %s:", k ? "," : "", kind_name(io->kind), io->name);
        if (io->classes) fprintf(f, " class(%d)", io->classes);
        if (!io->classes || io->rank) fprintf(f, " %s", shape);
    }
    fprintf(f, ".\nDefaults from its train block: --epochs %d --lr %g --seed %llu, batch %d.\n",
            info->train.epochs, info->train.lr, (unsigned long long)info->train.seed,
            info->batch);
    fprintf(f, "\nA CSV FILE with a header row can feed the whole model: --label-column NAME names\n"
               "the label's column, the other columns feed the float input (--standardize:\n"
               "per-feature statistics of the training set, kept in the checkpoint).  --save\n"
               "and --checkpoint write checkpoints (parameters, optimizer state, position);\n"
               "--resume continues one exactly; export writes the parameters alone.\n"
               "\n--text FILE (instead of --train) and --test-text FILE (instead of --test) feed a\n"
               "character model, class input [T] and class label: each byte of FILE is an\n"
               "example, predicted from the T bytes before it ('\\n' before the file's start).\n");
}

/* A command line that cannot be understood: the problem, then how the command is used. */
static int usage_error(const command *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    synopsis(stderr, "usage: ", 0, cmd);
    return 2;
}

/* A problem with the model, the data or a file: nnr_error() says what. */
static int fail(void) {
    fprintf(stderr, "%s: %s\n", prog, nnr_error());
    return 1;
}

static int is_help(const char *arg) {
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

static int parse_value(const command *cmd, const option_def *d, const char *v, options *o) {
    char *end;
    void *field = (char *)o + d->off;
    errno = 0;
    switch (d->kind) {
    case OPT_PATH:
        *(const char **)field = v;
        return 0;
    case OPT_COUNT: {
        long long x = strtoll(v, &end, 10);
        if (end == v || *end || errno || x < 0)
            return usage_error(cmd, "%s: '%s' is not a count", d->name, v);
        *(int64_t *)field = x;
        return 0;
    }
    case OPT_SEED: {
        unsigned long long x = strtoull(v, &end, 0);
        if (end == v || *end || errno || v[0] == '-')
            return usage_error(cmd, "%s: '%s' is not a seed (an integer in [0, 2^64))", d->name, v);
        ((seed_opt *)field)->v = x;
        ((seed_opt *)field)->set = 1;
        return 0;
    }
    case OPT_REAL: {
        double x = strtod(v, &end);
        if (end == v || *end || !isfinite(x))
            return usage_error(cmd, "%s: '%s' is not a number", d->name, v);
        *(double *)field = x;
        return 0;
    }
    case OPT_SPECS:
    case OPT_FLAG:
        break;
    }
    return 0;
}

/* --train a b c: every following argument up to the next option is a spec. */
static int parse_specs(const command *cmd, const option_def *d, const char *inline_value,
                       int argc, char **argv, int *i, options *o) {
    specs *s = (specs *)((char *)o + d->off);
    int before = s->n;
    if (inline_value) s->v[s->n++] = inline_value;
    while (*i + 1 < argc && argv[*i + 1][0] != '-') s->v[s->n++] = argv[++*i];
    if (s->n == before) return usage_error(cmd, "%s needs NAME=FILE", d->name);
    return 0;
}

static const option_def *find_option(const command *cmd, const char *arg, size_t len) {
    char word[64];
    snprintf(word, sizeof word, " %s ", cmd->name);
    for (int i = 0; i < NOPTION_DEFS; i++) {
        const option_def *d = &option_defs[i];
        if (strlen(d->name) == len && strncmp(d->name, arg, len) == 0 && strstr(d->cmds, word))
            return d;
    }
    return NULL;
}

enum { PARSED = 0, HELP = -1 };

/* Fills o from argv[2..]: PARSED, HELP, or the exit status of a usage error.  plot takes
 * one argument that is not an option (its CSV file). */
static int parse_options(const command *cmd, int argc, char **argv, options *o) {
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        if (is_help(arg)) return HELP;
        if (arg[0] != '-' && cmd->run == cmd_plot && !o->positional) {
            o->positional = arg;
            continue;
        }
        if (arg[0] != '-' || !arg[1])
            return usage_error(cmd, "unexpected argument '%s'", arg);
        const char *eq = strchr(arg, '=');
        const option_def *d = find_option(cmd, arg, eq ? (size_t)(eq - arg) : strlen(arg));
        if (!d)
            return usage_error(cmd, "unknown option '%.*s' for %s", eq ? (int)(eq - arg) : (int)strlen(arg),
                               arg, cmd->name);
        int rc;
        if (d->kind == OPT_FLAG) {
            if (eq) return usage_error(cmd, "%s takes no value", d->name);
            *(int *)((char *)o + d->off) = 1;
            rc = 0;
        } else if (d->kind == OPT_SPECS) {
            rc = parse_specs(cmd, d, eq ? eq + 1 : NULL, argc, argv, &i, o);
        } else if (eq) {
            rc = parse_value(cmd, d, eq + 1, o);
        } else if (i + 1 < argc) {
            rc = parse_value(cmd, d, argv[++i], o);
        } else {
            rc = usage_error(cmd, "%s needs a value", d->name);
        }
        if (rc) return rc;
    }
    return PARSED;
}

static int options_init(options *o, const command *cmd, int argc) {
    memset(o, 0, sizeof *o);
    o->cmd = cmd;
    o->epochs = o->samples = o->checkpoint_every = o->patience = -1;
    o->lr = o->val_split = o->eps = o->tol = NAN;
    specs *lists[] = {&o->train, &o->test, &o->input, &o->batch};
    for (int i = 0; i < 4; i++)
        if (!(lists[i]->v = malloc((size_t)argc * sizeof(char *)))) return -1;
    return 0;
}

static void options_free(options *o) {
    free(o->train.v);
    free(o->test.v);
    free(o->input.v);
    free(o->batch.v);
}

int nnr_main(const nnr_model_info *info, int argc, char **argv) {
    if (argc > 0 && argv[0]) {
        const char *slash = strrchr(argv[0], '/');
        prog = slash ? slash + 1 : argv[0];
    } else {
        prog = info->name;
    }
    if (argc < 2) {
        usage(stderr, info);
        return 2;
    }
    if (is_help(argv[1]) || strcmp(argv[1], "help") == 0) {
        usage(stdout, info);
        return 0;
    }
    const command *cmd = NULL;
    for (int i = 0; i < NCOMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0) cmd = &commands[i];
    if (!cmd) {
        fprintf(stderr, "%s: unknown command '%s'\n", prog, argv[1]);
        usage(stderr, info);
        return 2;
    }
    options o;
    int rc;
    if (options_init(&o, cmd, argc)) {
        fprintf(stderr, "%s: out of memory\n", prog);
        rc = 1;
    } else if ((rc = parse_options(cmd, argc, argv, &o)) == HELP) {
        usage(stdout, info);
        rc = 0;
    } else if (rc == PARSED) {
        rc = cmd->run(info, &o);
    }
    options_free(&o);
    return rc;
}

/* ---- shared pieces ------------------------------------------------------------------- */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static size_t col_elem_size(const nnr_model_info *info, const nnr_io *io) {
    return io->classes ? sizeof(int32_t) : nnr_dtype_size(info->dtype);
}

static double get(const nnr_model_info *info, const void *p, int64_t i) {
    return info->dtype == NNR_F64 ? ((const double *)p)[i] : ((const float *)p)[i];
}

static void put(const nnr_model_info *info, void *p, int64_t i, double v) {
    if (info->dtype == NNR_F64) ((double *)p)[i] = v;
    else ((float *)p)[i] = (float)v;
}

/* Enough digits to read a value of the model's dtype back exactly. */
static const char *num_fmt(const nnr_model_info *info) {
    return info->dtype == NNR_F64 ? "%.17g" : "%.9g";
}

/* The io kinds the model has, as nnr_data_load's `need`: every one feeds its loss. */
static unsigned all_kinds(const nnr_model_info *info) {
    unsigned need = 0;
    for (int k = 0; k < info->nio; k++) need |= 1u << info->io[k].kind;
    return need;
}

/* The data of one option (--train, --test, ...): NAME=FILE specs, or with --label-column
 * one CSV file with a header that feeds the whole model. */
static int load_data(const nnr_model_info *info, const options *o, const char *opt,
                     const specs *sp, unsigned need, nnr_dataset *d) {
    if (o->label_column && (sp->n != 1 || strchr(sp->v[0], '='))) {
        nnr_set_error("%s: with --label-column give one CSV FILE with a header row, not NAME=FILE",
                      opt);
        return -1;
    }
    if (o->label_column ? nnr_data_load_csv(info, sp->v[0], o->label_column, need, d) == 0
                        : nnr_data_load(info, sp->n, sp->v, need, d) == 0)
        return 0;
    nnr_set_error("%s: %s", opt, nnr_error());
    return -1;
}

/* A data set from either NAME=FILE specs (option `opt`) or one text file (option
 * `text_opt`, when `text` is given). */
static int load_set(const nnr_model_info *info, const options *o, const char *opt,
                    const specs *sp, const char *text_opt, const char *text, nnr_dataset *d) {
    if (!text) return load_data(info, o, opt, sp, all_kinds(info), d);
    if (nnr_data_load_text(info, text, d) == 0) return 0;
    nnr_set_error("%s: %s", text_opt, nnr_error());
    return -1;
}

/* The command line's text options against the others: 0, or a usage error's status. */
static int text_usage(const options *o) {
    if (o->text && o->train.n)
        return usage_error(o->cmd, "--text and --train exclude each other");
    if (o->test_text && o->test.n)
        return usage_error(o->cmd, "--test-text and --test exclude each other");
    if ((o->text || o->test_text) && o->label_column)
        return usage_error(o->cmd, "--label-column is for CSV files, not --text or --test-text");
    return 0;
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

static void session_free(const nnr_model_info *info, session *s) {
    if (s->m) info->destroy(s->m);
    nnr_data_free(&s->data);
    nnr_data_free(&s->val);
    nnr_data_free(&s->test);
    free(s->ev.in);
    free(s->ev.inputs);
    for (int k = 0; s->ev.out && k < info->nout; k++) free(s->ev.out[k]);
    free(s->ev.out);
    free(s->ev.confusion);
    for (int k = 0; s->stage && k < info->nio; k++) free(s->stage[k]);
    free(s->stage);
    free(s->order);
    free(s->acc);
    free(s->block);
    if (s->file && s->file != stdout) fclose(s->file);
    nnr_checkpoint_free(&s->ck);
}

static int oom(void) {
    nnr_set_error("out of memory");
    return -1;
}

/* The model, its parameters read from `load` (with the file's standardization, if any,
 * into s->ck) or else initialized from `seed`. */
static int open_model(const nnr_model_info *info, session *s, const char *load, uint64_t seed) {
    if (!(s->m = info->create())) return oom();
    s->ck.best_loss = NAN;
    if (load) return nnr_checkpoint_load(info, s->m, load, &s->ck, 0);
    nnr_model_init(info, s->m, seed);
    return 0;
}

/* Standardizes every loaded data set of s with the statistics in s->ck, if it has any. */
static int apply_standardize(const nnr_model_info *info, session *s, const char *from) {
    if (!s->ck.nstd) return 0;
    if (s->ck.nstd != nnr_data_features(info)) {
        nnr_set_error("%s: standardization of %lld features, but model %s has %lld float input "
                      "features", from, (long long)s->ck.nstd, info->name,
                      (long long)nnr_data_features(info));
        return -1;
    }
    nnr_dataset *sets[] = {&s->data, &s->val, &s->test};
    for (int i = 0; i < 3; i++)
        if (sets[i]->col) nnr_data_standardize(info, sets[i], s->ck.mean, s->ck.std);
    return 0;
}

static int has_accuracy(const nnr_model_info *info) {
    if (info->acc_out < 0 || info->acc_label < 0) return 0;
    const nnr_io *label = &info->io[info->acc_label];
    return label->classes > 0 && info->out[info->acc_out].size % label->size == 0;
}

static int evaluator_alloc(const nnr_model_info *info, evaluator *ev) {
    ev->in = calloc((size_t)info->nio + 1, sizeof *ev->in);
    ev->inputs = calloc((size_t)info->nio + 1, sizeof *ev->inputs);
    ev->out = calloc((size_t)info->nout + 1, sizeof *ev->out);
    if (!ev->in || !ev->inputs || !ev->out) return oom();
    for (int k = 0; k < info->nout; k++)
        if (!(ev->out[k] = malloc((size_t)info->batch * (size_t)info->out[k].size *
                                  nnr_dtype_size(info->dtype))))
            return oom();
    if (has_accuracy(info)) {
        const nnr_io *label = &info->io[info->acc_label];
        ev->classes = label->classes;
        ev->labels = label->size;
        ev->width = (int)(info->out[info->acc_out].size / label->size);
        if (!(ev->confusion = calloc((size_t)ev->classes * (size_t)ev->width, sizeof(int64_t))))
            return oom();
    }
    return 0;
}

/* Points ev->in (and ev->inputs) at example `at` of every column of d. */
static void point_at(const nnr_model_info *info, const nnr_dataset *d, int64_t at, evaluator *ev) {
    int ni = 0;
    for (int k = 0; k < info->nio; k++) {
        const nnr_io *io = &info->io[k];
        ev->in[k] = d->col[k] ? (const char *)d->col[k] + (size_t)at * (size_t)io->size *
                                                                col_elem_size(info, io)
                              : NULL;
        if (io->kind == NNR_IO_INPUT) ev->inputs[ni++] = ev->in[k];
    }
}

/* Adds the argmax predictions of nb examples to the confusion matrix; returns hits. */
static int64_t count_hits(const nnr_model_info *info, evaluator *ev, int nb) {
    const void *out = ev->out[info->acc_out];
    const int32_t *label = ev->in[info->acc_label];
    int64_t hits = 0;
    for (int64_t j = 0; j < nb * ev->labels; j++) {
        int best = 0;
        double best_v = get(info, out, j * ev->width);
        for (int c = 1; c < ev->width; c++) {
            double v = get(info, out, j * ev->width + c);
            if (v > best_v) best = c, best_v = v;
        }
        hits += best == label[j];
        ev->confusion[(int64_t)label[j] * ev->width + best]++;
    }
    return hits;
}

static scores evaluate(const nnr_model_info *info, void *m, const nnr_dataset *d, evaluator *ev) {
    double sum = 0;
    int64_t hits = 0;
    if (ev->confusion)
        memset(ev->confusion, 0, (size_t)ev->classes * (size_t)ev->width * sizeof(int64_t));
    for (int64_t at = 0; at < d->n; at += info->batch) {
        int nb = (int)(d->n - at < info->batch ? d->n - at : info->batch);
        point_at(info, d, at, ev);
        sum += info->loss(m, nb, ev->in, 0) * nb;
        if (ev->confusion) {
            info->predict(m, nb, ev->inputs, ev->out);
            hits += count_hits(info, ev, nb);
        }
    }
    scores s = {sum / (double)d->n, NAN};
    if (ev->confusion) s.accuracy = (double)hits / (double)(d->n * ev->labels);
    return s;
}

/* ---- train --------------------------------------------------------------------------- */

typedef struct bar { int on; double t0, last; } bar;

/* 21540 -> "21,540" */
static const char *grouped(char *buf, size_t cap, int64_t v) {
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%lld", (long long)v);
    size_t j = 0;
    for (int i = 0; i < len && j + 2 < cap; i++) {
        if (i > 0 && (len - i) % 3 == 0) buf[j++] = ',';
        buf[j++] = digits[i];
    }
    buf[j] = '\0';
    return buf;
}

static const char *duration(char *buf, size_t cap, double secs) {
    long t = lround(secs);
    if (t < 60) snprintf(buf, cap, "%lds", t);
    else if (t < 3600) snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, cap, "%ldh%02ldm", t / 3600, t / 60 % 60);
    return buf;
}

/* `epoch 2/5 [=========>          ] 31232/60000  loss 0.4312  21,540 ex/s  ETA 1s`, redrawn
 * in place at most every BAR_INTERVAL seconds, and always when the epoch completes. */
static void bar_draw(bar *b, int epoch, int epochs, int64_t done, int64_t n, double loss) {
    if (!b->on) return;
    double t = now();
    if (done < n && t - b->last < BAR_INTERVAL) return;
    b->last = t;
    char fill[BAR_WIDTH + 1], rate[32], eta[32];
    int w = (int)(BAR_WIDTH * done / n);
    for (int i = 0; i < BAR_WIDTH; i++) fill[i] = i < w - 1 ? '=' : i == w - 1 ? '>' : ' ';
    fill[BAR_WIDTH] = '\0';
    double per_sec = (double)done / fmax(t - b->t0, 1e-9);
    int digits = snprintf(NULL, 0, "%lld", (long long)n);
    fprintf(stderr, "\repoch %d/%d [%s] %*lld/%lld  loss %.4f  %s ex/s  ETA %s\033[K", epoch,
            epochs, fill, digits, (long long)done, (long long)n, loss,
            grouped(rate, sizeof rate, llround(per_sec)),
            duration(eta, sizeof eta, (double)(n - done) / per_sec));
}

static void bar_clear(const bar *b) {
    if (b->on) fprintf(stderr, "\r\033[K");
}

/* The per-epoch line on stdout. */
static void print_epoch(int e, int epochs, double train_loss, const scores *val,
                        const scores *test, double secs) {
    printf("epoch %d/%d  train_loss %.4f", e, epochs, train_loss);
    if (val) {
        printf("  val_loss %.4f", val->loss);
        if (!isnan(val->accuracy)) printf("  val_accuracy %.4f", val->accuracy);
    }
    if (test) {
        printf("  test_loss %.4f", test->loss);
        if (!isnan(test->accuracy)) printf("  test_accuracy %.4f", test->accuracy);
    }
    printf("  time %.2fs\n", secs);
    fflush(stdout);
}

/* A CSV field: the number, or empty when it was not measured. */
static const char *field(char *buf, size_t cap, double v) {
    if (isnan(v)) buf[0] = '\0';
    else snprintf(buf, cap, "%.9g", v);
    return buf;
}

static int log_row(FILE *f, const char *path, int e, double train_loss, const scores *val,
                   const scores *test, double secs) {
    char a[32], b[32], c[32], d[32];
    fprintf(f, "%d,%.9g,%s,%s,%.4f", e, train_loss, field(a, sizeof a, test->loss),
            field(b, sizeof b, test->accuracy), secs);
    if (val) fprintf(f, ",%s,%s", field(c, sizeof c, val->loss), field(d, sizeof d, val->accuracy));
    fputc('\n', f);
    if (fflush(f) || ferror(f)) {
        nnr_set_error("%s: write failed: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int train_alloc(const nnr_model_info *info, session *s) {
    if (!(s->order = malloc((size_t)s->data.n * sizeof(int64_t)))) return oom();
    if (!(s->stage = calloc((size_t)info->nio + 1, sizeof(void *)))) return oom();
    for (int k = 0; k < info->nio; k++)
        if (!(s->stage[k] = nnr_alloc_aligned((size_t)info->batch * (size_t)info->io[k].size *
                                   col_elem_size(info, &info->io[k]))))
            return oom();
    return evaluator_alloc(info, &s->ev);
}

/* Epoch e's order of the n training examples: a permutation drawn from a generator seeded
 * by (seed, e) alone, so a resumed run shuffles exactly as the uninterrupted one did. */
static void epoch_order(int64_t *order, int64_t n, uint64_t seed, int e) {
    nnr_rng rng;
    nnr_rng_seed(&rng, (seed ^ SHUFFLE_STREAM) + 0x9E3779B97F4A7C15ULL * (uint64_t)e);
    for (int64_t i = 0; i < n; i++) order[i] = i;
    nnr_rng_shuffle(&rng, order, n);
}

/* Where periodic checkpoints go: every `every` optimizer steps (0: only at epochs' ends). */
typedef struct saver { const char *path; int64_t every; } saver;

static int64_t batches_in(const nnr_model_info *info, int64_t n) {
    return (n + info->batch - 1) / info->batch;
}

/* Epoch e over the shuffled training set from batch s->ck.batch on (0 unless resumed),
 * continuing the loss sum s->ck.loss_sum; returns the epoch's mean loss, or NAN after
 * recording why training cannot go on.  *secs: the time its steps took. */
static double train_epoch(const nnr_model_info *info, session *s, const saver *sv, int e,
                          int epochs, double *secs) {
    const int64_t n = s->data.n, last = batches_in(info, n) - 1;
    nnr_checkpoint *ck = &s->ck;
    double sum = ck->loss_sum;
    double t0 = now();
    bar b = {isatty(fileno(stderr)), t0, t0};       /* first drawn once a rate is known */
    for (int64_t bi = ck->batch; bi <= last; bi++) {
        int64_t at = bi * info->batch;
        int nb = (int)(n - at < info->batch ? n - at : info->batch);
        nnr_data_gather(info, &s->data, s->order + at, nb, s->stage);
        double loss = info->train_step(s->m, nb, (const void *const *)s->stage);
        if (!isfinite(loss)) {
            bar_clear(&b);
            const char *why = info->numerics ? info->numerics(s->m) : NULL;
            int saved = sv->path && access(sv->path, F_OK) == 0;
            if (why)   /* --check-numerics: the step stopped before its update */
                nnr_set_error("%s: %s, in epoch %d (examples %lld-%lld of the shuffled set)%s%s", info->source, why,
                              e, (long long)at + 1, (long long)(at + nb),
                              saved ? "; the last checkpoint holds the parameters before it: " : "",
                              saved ? sv->path : "");
            else
                nnr_set_error("the training loss became %g in epoch %d (examples %lld-%lld of the "
                              "shuffled set); a lower --lr may help (--check-numerics finds where)", loss, e,
                              (long long)at + 1, (long long)(at + nb));
            return NAN;
        }
        sum += loss * nb;
        /* the last batch's checkpoint is the end-of-epoch one, written after evaluation */
        if (sv->path && sv->every > 0 && bi < last && *info->step(s->m) % sv->every == 0) {
            ck->batch = bi + 1;
            ck->loss_sum = sum;
            if (nnr_checkpoint_save(info, s->m, sv->path, ck)) {
                bar_clear(&b);
                return NAN;
            }
        }
        bar_draw(&b, e, epochs, at + nb, n, sum / (double)(at + nb));
    }
    *secs = now() - t0;
    bar_clear(&b);
    return sum / (double)n;
}

/* The log of a resumed run: its header and the rows of the epochs the checkpoint has
 * completed are kept (rows written after the checkpoint are dropped, since those epochs
 * run again), and the file stays open for appending.  A missing file starts afresh. */
static int log_reopen(session *s, const char *path, const char *header, int64_t epochs_done) {
    FILE *f = fopen(path, "r");
    char *kept = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&kept, &len);
    if (!mem) {
        if (f) fclose(f);
        return oom();
    }
    char *line = NULL;
    size_t cap = 0;
    int first = 1;
    while (f && getline(&line, &cap, f) >= 0) {
        if (first || (line[0] >= '0' && line[0] <= '9' && strtoll(line, NULL, 10) <= epochs_done))
            fputs(line, mem);
        first = 0;
    }
    if (f) fclose(f);
    free(line);
    if (first) fputs(header, mem);                  /* no file, or an empty one */
    fclose(mem);
    int rc = 0;
    if (!(s->file = fopen(path, "w")) || fwrite(kept, 1, len, s->file) != len || fflush(s->file)) {
        nnr_set_error("%s: %s", path, strerror(errno));
        rc = -1;
    }
    free(kept);
    return rc;
}

static int log_open(session *s, const options *o, int has_val, int resumed) {
    if (!o->log) return 0;
    char header[128];
    snprintf(header, sizeof header, "epoch,train_loss,test_loss,test_accuracy,seconds%s\n",
             has_val ? ",val_loss,val_accuracy" : "");
    if (resumed) return log_reopen(s, o->log, header, s->ck.epoch);
    if (!(s->file = fopen(o->log, "w"))) {
        nnr_set_error("%s: %s", o->log, strerror(errno));
        return -1;
    }
    fputs(header, s->file);
    return 0;
}

/* Checks of the command line that need no files. */
static int train_usage(const nnr_model_info *info, const options *o, int64_t *epochs) {
    (void)info;
    if (!o->train.n && !o->text)
        return usage_error(o->cmd, "train needs --train NAME=FILE (or --text FILE)");
    int bad = text_usage(o);
    if (bad) return bad;
    if (*epochs < 1 || *epochs > INT_MAX)
        return usage_error(o->cmd, "--epochs %lld is outside [1, %d]", (long long)*epochs, INT_MAX);
    if (o->resume && o->load)
        return usage_error(o->cmd, "--resume and --load exclude each other (--resume restores "
                                   "the parameters too)");
    if (o->checkpoint_every >= 0 && !o->checkpoint)
        return usage_error(o->cmd, "--checkpoint-every needs --checkpoint CKPT");
    if (o->checkpoint_every == 0) return usage_error(o->cmd, "--checkpoint-every must be >= 1");
    int has_val = !isnan(o->val_split) && o->val_split != 0;
    if (o->patience >= 0 && !has_val && !o->test.n && !o->test_text)
        return usage_error(o->cmd, "--patience watches the validation loss: give --val-split F "
                                   "or --test NAME=FILE");
    if (o->patience == 0) return usage_error(o->cmd, "--patience must be >= 1");
    return 0;
}

/* The run's settings: from the command line and the model's defaults, or, when resuming,
 * from the checkpoint unless the command line overrides them. */
static void run_settings(const nnr_model_info *info, const options *o, nnr_checkpoint *ck,
                         int resumed, int64_t *epochs) {
    if (!resumed) {
        ck->seed = o->seed.set ? o->seed.v : info->train.seed;
        ck->lr = isnan(o->lr) ? info->train.lr : o->lr;
        ck->epoch = ck->batch = 0;
        ck->loss_sum = 0;
        ck->best_loss = NAN;
        ck->best_epoch = 0;
    } else {
        if (o->seed.set) ck->seed = o->seed.v;
        if (!isnan(o->lr)) ck->lr = o->lr;
        if (o->epochs < 0) *epochs = ck->epochs;
    }
    ck->epochs = *epochs;
}

/* The statistics of --standardize, from the training set, into s->ck. */
static int standardize_stats(const nnr_model_info *info, session *s) {
    int64_t nf = nnr_data_features(info);
    nnr_checkpoint_free(&s->ck);
    if (!(s->ck.mean = malloc((size_t)(nf ? nf : 1) * sizeof(double))) ||
        !(s->ck.std = malloc((size_t)(nf ? nf : 1) * sizeof(double))))
        return oom();
    nnr_data_stats(info, &s->data, s->ck.mean, s->ck.std);
    s->ck.nstd = nf;
    return 0;
}

/* A resumed run must see the data the checkpoint was written with. */
static int check_resume(const options *o, const session *s) {
    if (s->ck.examples != s->data.n) {
        nnr_set_error("%s: written for %lld training examples, --train gives %lld (resume "
                      "with the same data and --val-split)", o->resume,
                      (long long)s->ck.examples, (long long)s->data.n);
        return -1;
    }
    return 0;
}

/* Early stopping: records a better monitored loss; returns 1 when it improved. */
static int improved(nnr_checkpoint *ck, double loss, int e) {
    if (!isnan(ck->best_loss) && !(loss < ck->best_loss)) return 0;
    ck->best_loss = loss;
    ck->best_epoch = e;
    return 1;
}

static int patience_over(const options *o, const nnr_checkpoint *ck) {
    return o->patience > 0 && ck->best_epoch > 0 && ck->epoch - ck->best_epoch >= o->patience;
}

/* Everything after epoch e's steps: evaluation, the printed line, the log row, the best
 * checkpoint (--patience), the end-of-epoch checkpoint. */
static int end_epoch(const nnr_model_info *info, session *s, const options *o, int e,
                     int epochs, double train_loss, double secs, int has_val, int has_test,
                     scores *val, scores *test) {
    nnr_checkpoint *ck = &s->ck;
    ck->epoch = e;
    ck->batch = 0;
    ck->loss_sum = 0;
    if (has_val) *val = evaluate(info, s->m, &s->val, &s->ev);
    if (has_test) *test = evaluate(info, s->m, &s->test, &s->ev);
    print_epoch(e, epochs, train_loss, has_val ? val : NULL, has_test ? test : NULL, secs);
    if (s->file && log_row(s->file, o->log, e, train_loss, has_val ? val : NULL, test, secs))
        return -1;
    if (o->patience > 0 && improved(ck, has_val ? val->loss : test->loss, e) && o->save &&
        nnr_checkpoint_save(info, s->m, o->save, ck))
        return -1;
    if (o->checkpoint && nnr_checkpoint_save(info, s->m, o->checkpoint, ck)) return -1;
    return 0;
}

static const char *const optimizer_names[] = {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta",
                                              "adam", "adamax", "nadam"};

/* What a run is about to do, as Keras prints it: the model's table, then the data and
 * the optimizer, so a log says what produced it. */
static void announce(const nnr_model_info *info, const session *s, int64_t epochs, int resumed) {
    fputs(info->summary, stdout);
    printf("\ntraining on %lld examples", (long long)s->data.n);
    if (s->val.n) printf(", validating on %lld", (long long)s->val.n);
    if (s->test.n) printf(", testing on %lld", (long long)s->test.n);
    printf("; batch %d, %lld epoch%s, %s(lr=%g)%s\n\n", info->batch, (long long)epochs, epochs == 1 ? "" : "s",
           optimizer_names[info->train.opt], s->ck.lr, resumed ? ", resumed" : "");
    fflush(stdout);
}

static int cmd_train(const nnr_model_info *info, const options *o) {
    int64_t epochs = o->epochs >= 0 ? o->epochs : info->train.epochs;
    int bad = train_usage(info, o, &epochs);
    if (bad) return bad;
    int has_val = !isnan(o->val_split) && o->val_split != 0;
    int has_test = o->test.n > 0 || o->test_text;
    int resumed = o->resume != NULL;

    session s = {0};
    s.ck.best_loss = NAN;
    int rc = 0;
    if (!(s.m = info->create())) rc = oom();
    else if (resumed) rc = nnr_checkpoint_load(info, s.m, o->resume, &s.ck, 1);
    else if (o->load) rc = nnr_checkpoint_load(info, s.m, o->load, &s.ck, 0);
    else nnr_model_init(info, s.m, o->seed.set ? o->seed.v : info->train.seed);
    if (!rc) {
        run_settings(info, o, &s.ck, resumed, &epochs);
        if (info->set_seed) info->set_seed(s.m, s.ck.seed);   /* dropout's masks */
    }
    rc = rc || load_set(info, o, "--train", &o->train, "--text", o->text, &s.data) ||
         (has_val && nnr_data_split(info, &s.data, o->val_split, &s.val)) ||
         (has_test && load_set(info, o, "--test", &o->test, "--test-text", o->test_text, &s.test)) ||
         (resumed && check_resume(o, &s)) ||
         (o->standardize && !resumed && standardize_stats(info, &s)) ||
         apply_standardize(info, &s, o->resume ? o->resume : o->load ? o->load : "--standardize") ||
         train_alloc(info, &s) || log_open(&s, o, has_val, resumed);
    s.ck.examples = s.data.n;

    if (!rc && o->check_numerics) {
        if (info->set_check) info->set_check(s.m, 1);
        else rc = (nnr_set_error("this model cannot check its tensors (--check-numerics)"), -1);
    }
    if (!rc) announce(info, &s, epochs, resumed);
    saver sv = {o->checkpoint, o->checkpoint_every > 0 ? o->checkpoint_every : 0};
    scores val = {NAN, NAN}, test = {NAN, NAN};
    int stopped = !rc && patience_over(o, &s.ck);
    for (int e = (int)s.ck.epoch + 1; !rc && !stopped && e <= epochs; e++) {
        info->set_lr(s.m, nnr_schedule_lr(&info->train, s.ck.lr, e - 1));
        epoch_order(s.order, s.data.n, s.ck.seed, e);
        double secs;
        double train_loss = train_epoch(info, &s, &sv, e, (int)epochs, &secs);
        rc = isnan(train_loss) ? -1
             : end_epoch(info, &s, o, e, (int)epochs, train_loss, secs, has_val, has_test, &val, &test);
        stopped = !rc && patience_over(o, &s.ck);
    }
    if (!rc && stopped)
        printf("early stopping: %s_loss has not improved for %lld epochs; best epoch %lld "
               "(%s_loss %.4f)%s\n", has_val ? "val" : "test", (long long)o->patience,
               (long long)s.ck.best_epoch, has_val ? "val" : "test", s.ck.best_loss,
               o->save ? ", its checkpoint is in --save" : "");
    if (!rc && has_test && !isnan(test.loss)) {
        if (isnan(test.accuracy)) printf("test loss: %.6f\n", test.loss);
        else printf("test accuracy: %.4f\n", test.accuracy);
    }
    if (!rc && s.file) {
        int bad_close = fclose(s.file);
        s.file = NULL;
        if (bad_close) {
            nnr_set_error("%s: write failed: %s", o->log, strerror(errno));
            rc = -1;
        }
    }
    /* with --patience, --save already holds the best epoch's checkpoint */
    if (!rc && o->save && o->patience < 0) rc = nnr_checkpoint_save(info, s.m, o->save, &s.ck);
    session_free(info, &s);
    return rc ? fail() : 0;
}

/* ---- eval and predict ---------------------------------------------------------------- */

static int digits_of(int64_t v) { return snprintf(NULL, 0, "%lld", (long long)v); }

static void print_confusion(const evaluator *ev) {
    if (ev->classes > CONFUSION_MAX || ev->width > CONFUSION_MAX) {
        printf("confusion matrix: not shown for %d classes\n", ev->classes);
        return;
    }
    int64_t most = 0;
    for (int64_t i = 0; i < (int64_t)ev->classes * ev->width; i++)
        if (ev->confusion[i] > most) most = ev->confusion[i];
    int cw = 2 + (digits_of(most) > digits_of(ev->width - 1) ? digits_of(most) : digits_of(ev->width - 1));
    int rw = digits_of(ev->classes - 1);
    printf("confusion matrix (rows: true class, columns: predicted class)\n%*s", rw + 2, "");
    for (int c = 0; c < ev->width; c++) printf("%*d", cw, c);
    putchar('\n');
    for (int r = 0; r < ev->classes; r++) {
        printf("  %*d", rw, r);
        for (int c = 0; c < ev->width; c++)
            printf("%*lld", cw, (long long)ev->confusion[(int64_t)r * ev->width + c]);
        putchar('\n');
    }
}

/* A ratio as the table shows it: 4 decimals, or "-" when undefined (0 / 0). */
static const char *ratio(char *buf, size_t cap, int64_t num, int64_t den) {
    if (den == 0) snprintf(buf, cap, "-");
    else snprintf(buf, cap, "%.4f", (double)num / (double)den);
    return buf;
}

/* Per class: precision (of the examples predicted as the class, the share that belong to
 * it), recall (of the class's examples, the share predicted as it), F1 and support. */
static void print_precision_recall(const evaluator *ev) {
    if (ev->classes > CONFUSION_MAX || ev->width > CONFUSION_MAX) return;
    int k = ev->classes < ev->width ? ev->classes : ev->width;
    int64_t most = 0;
    for (int64_t i = 0; i < (int64_t)ev->classes * ev->width; i++) most += ev->confusion[i];
    int sw = digits_of(most) > 7 ? digits_of(most) : 7;
    printf("per class (precision: right among those predicted as the class; recall: found "
           "among the class's examples)\n");
    printf("  %5s  %9s  %6s  %6s  %*s\n", "class", "precision", "recall", "f1", sw, "support");
    for (int c = 0; c < k; c++) {
        int64_t tp = ev->confusion[(int64_t)c * ev->width + c], predicted = 0, actual = 0;
        for (int r = 0; r < ev->classes; r++) predicted += ev->confusion[(int64_t)r * ev->width + c];
        for (int j = 0; j < ev->width; j++) actual += ev->confusion[(int64_t)c * ev->width + j];
        char p[16], r[16], f[16];
        ratio(p, sizeof p, tp, predicted);
        ratio(r, sizeof r, tp, actual);
        ratio(f, sizeof f, 2 * tp, predicted + actual);   /* F1 = 2 tp / (predicted + actual) */
        printf("  %5d  %9s  %6s  %6s  %*lld\n", c, p, r, f, sw, (long long)actual);
    }
}

static int cmd_eval(const nnr_model_info *info, const options *o) {
    if (!o->load) return usage_error(o->cmd, "eval needs --load CKPT");
    if (!o->test.n && !o->test_text)
        return usage_error(o->cmd, "eval needs --test NAME=FILE (or --test-text FILE)");
    int bad = text_usage(o);
    if (bad) return bad;
    session s = {0};
    int rc = open_model(info, &s, o->load, 0) ||
             load_set(info, o, "--test", &o->test, "--test-text", o->test_text, &s.test) ||
             apply_standardize(info, &s, o->load) || evaluator_alloc(info, &s.ev);
    if (!rc) {
        scores sc = evaluate(info, s.m, &s.test, &s.ev);
        if (s.ev.confusion) {
            print_confusion(&s.ev);
            print_precision_recall(&s.ev);
        }
        printf("loss: %.6f\n", sc.loss);
        if (!isnan(sc.accuracy)) printf("accuracy: %.4f\n", sc.accuracy);
    }
    session_free(info, &s);
    return rc ? fail() : 0;
}

static void csv_header(const nnr_model_info *info, FILE *f) {
    for (int k = 0; k < info->nout; k++) {
        const nnr_io *out = &info->out[k];
        if (out->size == 1) fprintf(f, "%s%s", k ? "," : "", out->name);
        for (int64_t j = 0; out->size > 1 && j < out->size; j++)
            fprintf(f, "%s%s_%lld", k || j ? "," : "", out->name, (long long)j);
    }
    fputc('\n', f);
}

static void csv_rows(const nnr_model_info *info, const evaluator *ev, int nb, FILE *f) {
    const char *fmt = num_fmt(info);
    for (int i = 0; i < nb; i++) {
        for (int k = 0; k < info->nout; k++) {
            int64_t size = info->out[k].size;
            for (int64_t j = 0; j < size; j++) {
                if (k || j) fputc(',', f);
                fprintf(f, fmt, get(info, ev->out[k], i * size + j));
            }
        }
        fputc('\n', f);
    }
}

static int cmd_predict(const nnr_model_info *info, const options *o) {
    if (!o->load) return usage_error(o->cmd, "predict needs --load CKPT");
    if (!o->input.n) return usage_error(o->cmd, "predict needs --input NAME=FILE");
    const char *path = o->out ? o->out : "stdout";
    session s = {0};
    int rc = open_model(info, &s, o->load, 0) ||
             load_data(info, o, "--input", &o->input, 1u << NNR_IO_INPUT, &s.data) ||
             apply_standardize(info, &s, o->load) || evaluator_alloc(info, &s.ev);
    if (!rc && !(s.file = o->out ? fopen(o->out, "w") : stdout)) {
        nnr_set_error("%s: %s", path, strerror(errno));
        rc = -1;
    }
    if (!rc) {
        csv_header(info, s.file);
        for (int64_t at = 0; at < s.data.n; at += info->batch) {
            int nb = (int)(s.data.n - at < info->batch ? s.data.n - at : info->batch);
            point_at(info, &s.data, at, &s.ev);
            info->predict(s.m, nb, s.ev.inputs, s.ev.out);
            csv_rows(info, &s.ev, nb, s.file);
        }
        int bad = ferror(s.file) | (s.file == stdout ? fflush(s.file) : fclose(s.file));
        s.file = NULL;
        if (bad) {
            nnr_set_error("%s: write failed: %s", path, strerror(errno));
            rc = -1;
        }
    }
    session_free(info, &s);
    return rc ? fail() : 0;
}

/* ---- init and summary ---------------------------------------------------------------- */

static int cmd_init(const nnr_model_info *info, const options *o) {
    if (!o->save) return usage_error(o->cmd, "init needs --save PARAMS");
    session s = {0};
    int rc = open_model(info, &s, NULL, o->seed.set ? o->seed.v : info->train.seed) ||
             nnr_model_save(info, s.m, o->save);
    session_free(info, &s);
    return rc ? fail() : 0;
}

/* The parameters and buffers of a checkpoint alone, as nnr_model_save writes them: what
 * PyTorch's strict load_state_dict takes, and a byte-comparable record of a run. */
static int cmd_export(const nnr_model_info *info, const options *o) {
    if (!o->load) return usage_error(o->cmd, "export needs --load CKPT");
    if (!o->out) return usage_error(o->cmd, "export needs --out PARAMS");
    session s = {0};
    int rc = open_model(info, &s, o->load, 0) || nnr_model_save(info, s.m, o->out);
    session_free(info, &s);
    return rc ? fail() : 0;
}

static int cmd_plot(const nnr_model_info *info, const options *o) {
    (void)info;
    if (!o->positional) return usage_error(o->cmd, "plot needs the CSV file of train --log");
    if (!o->out) return usage_error(o->cmd, "plot needs -o CURVES.svg");
    return nnr_plot_svg(o->positional, o->out) ? fail() : 0;
}

static int cmd_summary(const nnr_model_info *info, const options *o) {
    (void)o;
    const char *text = info->summary ? info->summary : "";
    fputs(text, stdout);
    if (!*text || text[strlen(text) - 1] != '\n') putchar('\n');
    return 0;
}

/* ---- grads --------------------------------------------------------------------------- */

/* Elements of the gradient tensors grads and gradcheck report: the parameter block, then
 * n examples of each `grad` input. */
static int64_t grad_elements(const nnr_model_info *info, int64_t n) {
    int64_t total = info->param_size;
    for (int k = 0; k < info->nio; k++)
        if (info->io[k].grad) total += n * info->io[k].size;
    return total;
}

/* Gradient of the mean loss over all of d into s->acc (parameters, then grad inputs),
 * in chunks of the compiled batch: the mean over n is sum_c (n_c / n) * mean over chunk c. */
static double full_gradient(const nnr_model_info *info, session *s, const nnr_dataset *d) {
    double loss = 0;
    for (int64_t at = 0; at < d->n; at += info->batch) {
        int nb = (int)(d->n - at < info->batch ? d->n - at : info->batch);
        double w = (double)nb / (double)d->n;
        point_at(info, d, at, &s->ev);
        loss += w * info->loss_grad(s->m, nb, s->ev.in);
        const void *g = info->grads(s->m);
        for (int64_t i = 0; i < info->param_size; i++) s->acc[i] += w * get(info, g, i);
        double *dst = s->acc + info->param_size;
        for (int k = 0; k < info->nio; k++) {
            if (!info->io[k].grad) continue;
            const void *gx = info->input_grad(s->m, k);
            int64_t size = info->io[k].size;
            for (int64_t i = 0; i < nb * size; i++) dst[at * size + i] = w * get(info, gx, i);
            dst += d->n * size;
        }
    }
    return loss;
}

static int write_grads(const nnr_model_info *info, session *s, int64_t n, double loss,
                       const char *path) {
    int64_t total = grad_elements(info, n);
    size_t es = nnr_dtype_size(info->dtype);
    nnr_tensor *ts = calloc((size_t)info->nparam + (size_t)info->nio + 1, sizeof *ts);
    if (!ts || !(s->block = malloc((size_t)(total + 1) * es))) {
        free(ts);
        return oom();
    }
    for (int64_t i = 0; i < total; i++) put(info, s->block, i, s->acc[i]);
    put(info, s->block, total, loss);
    /* The tensors borrow names and the block; only the array is freed. */
    int nt = 0;
    for (int i = 0; i < info->nparam; i++) {
        const nnr_param *p = &info->param[i];
        if (p->buffer) continue;   /* running statistics have no gradient */
        ts[nt] = (nnr_tensor){(char *)p->name, info->dtype, p->rank, {0},
                              (char *)s->block + (size_t)p->offset * es};
        memcpy(ts[nt].shape, p->shape, sizeof p->shape);
        nt++;
    }
    char *at = (char *)s->block + (size_t)info->param_size * es;
    for (int k = 0; k < info->nio; k++) {
        const nnr_io *io = &info->io[k];
        if (!io->grad) continue;
        ts[nt] = (nnr_tensor){(char *)io->name, info->dtype, io->rank + 1, {n}, at};
        memcpy(ts[nt].shape + 1, io->shape, (size_t)io->rank * sizeof(int64_t));
        at += (size_t)(n * io->size) * es;
        nt++;
    }
    ts[nt++] = (nnr_tensor){(char *)"loss", info->dtype, 0, {0}, at};
    int rc = nnr_st_write(path, ts, nt, NULL, 0);
    free(ts);
    return rc;
}

static int cmd_grads(const nnr_model_info *info, const options *o) {
    if (!o->params) return usage_error(o->cmd, "grads needs --params PARAMS");
    if (!o->batch.n) return usage_error(o->cmd, "grads needs --batch BATCH");
    if (!o->out) return usage_error(o->cmd, "grads needs --out GRADS");
    session s = {0};
    int rc = open_model(info, &s, o->params, 0) ||
             load_data(info, o, "--batch", &o->batch, all_kinds(info), &s.data) ||
             evaluator_alloc(info, &s.ev);
    if (!rc && !(s.acc = calloc((size_t)grad_elements(info, s.data.n), sizeof(double))))
        rc = oom();
    if (!rc) {
        double loss = full_gradient(info, &s, &s.data);
        rc = write_grads(info, &s, s.data.n, loss, o->out);
        if (!rc) {
            printf("loss: ");
            printf(num_fmt(info), loss);
            putchar('\n');
        }
    }
    session_free(info, &s);
    return rc ? fail() : 0;
}

/* ---- gradcheck ----------------------------------------------------------------------- */

/* n examples drawn from seed: float inputs N(0, 1), targets U(0.05, 0.95) so bce-like
 * losses are defined, classes uniform in [0, K). */
static int random_batch(const nnr_model_info *info, int64_t n, uint64_t seed, nnr_dataset *d) {
    nnr_rng rng;
    nnr_rng_seed(&rng, seed ^ BATCH_STREAM);
    d->n = n;
    d->ncol = info->nio;
    if (!(d->col = calloc((size_t)info->nio + 1, sizeof *d->col))) return oom();
    for (int k = 0; k < info->nio; k++) {
        const nnr_io *io = &info->io[k];
        if (!(d->col[k] = nnr_alloc_aligned((size_t)(n * io->size) * col_elem_size(info, io)))) return oom();
        for (int64_t i = 0; i < n * io->size; i++) {
            if (io->classes) ((int32_t *)d->col[k])[i] = (int32_t)nnr_rng_below(&rng, (uint64_t)io->classes);
            else if (io->kind == NNR_IO_TARGET) put(info, d->col[k], i, 0.05 + 0.9 * nnr_rng_uniform(&rng));
            else put(info, d->col[k], i, nnr_rng_normal(&rng));
        }
    }
    return 0;
}

typedef struct checker {
    const nnr_model_info *info;
    void       *m;
    int         n;
    void *const *in;                /* the batch; probes perturb its grad inputs in place */
    double      h, floor;           /* relative step; 1e-3 x the largest analytic gradient */
    int64_t     samples;            /* per tensor; 0: all */
    int64_t    *pick;               /* scratch for choosing elements */
    nnr_rng     rng;
    int         name_w, shape_w;    /* column widths of the report */
} checker;

/* Central difference at element i of x.  The step actually taken is measured after
 * rounding to the model's dtype, which matters in F32. */
static double central_difference(checker *c, void *x, int64_t i) {
    const nnr_model_info *info = c->info;
    double x0 = get(info, x, i), h = c->h * fmax(1.0, fabs(x0));
    put(info, x, i, x0 + h);
    double xp = get(info, x, i), lp = info->loss(c->m, c->n, (const void *const *)c->in, 1);
    put(info, x, i, x0 - h);
    double xm = get(info, x, i), lm = info->loss(c->m, c->n, (const void *const *)c->in, 1);
    put(info, x, i, x0);
    return (lp - lm) / (xp - xm);
}

/* Checks sampled elements of tensor x against its analytic gradient ga, prints the
 * tensor's line and returns its worst relative error. */
static double check_tensor(checker *c, const char *name, int rank, const int64_t *shape,
                           void *x, const double *ga, int64_t size) {
    int64_t k = c->samples == 0 || c->samples >= size ? size : c->samples;
    for (int64_t i = 0; i < size; i++) c->pick[i] = i;
    for (int64_t i = 0; k < size && i < k; i++) {  /* a partial Fisher-Yates shuffle */
        int64_t j = i + (int64_t)nnr_rng_below(&c->rng, (uint64_t)(size - i));
        int64_t t = c->pick[i];
        c->pick[i] = c->pick[j];
        c->pick[j] = t;
    }
    double worst_abs = 0, most_fd = 0;
    int nan_seen = 0;
    for (int64_t i = 0; i < k; i++) {
        double fd = central_difference(c, x, c->pick[i]), a = ga[c->pick[i]];
        nan_seen |= isnan(fd) || isnan(a);
        worst_abs = fmax(worst_abs, fabs(a - fd));
        most_fd = fmax(most_fd, fabs(fd));
    }
    double err = nan_seen ? NAN : worst_abs / fmax(fmax(most_fd, c->floor), TINY);
    char buf[256];
    printf("  %-*s  %-*s  checked %lld  worst rel err %.2g\n", c->name_w, name, c->shape_w,
           nnr_shape_str(buf, sizeof buf, rank, shape), (long long)k, err);
    fflush(stdout);
    return err;
}

static void widen(checker *c, const char *name, int rank, const int64_t *shape) {
    char buf[256];
    int nw = (int)strlen(name), sw = (int)strlen(nnr_shape_str(buf, sizeof buf, rank, shape));
    if (nw > c->name_w) c->name_w = nw;
    if (sw > c->shape_w) c->shape_w = sw;
}

/* The report's column widths; returns the largest tensor, for the scratch index array. */
static int64_t layout(const nnr_model_info *info, checker *c) {
    int64_t biggest = 1, shape[NNR_MAXRANK + 1] = {c->n};
    for (int i = 0; i < info->nparam; i++) {
        const nnr_param *p = &info->param[i];
        widen(c, p->name, p->rank, p->shape);
        if (p->size > biggest) biggest = p->size;
    }
    for (int k = 0; k < info->nio; k++) {
        const nnr_io *io = &info->io[k];
        if (!io->grad) continue;
        memcpy(shape + 1, io->shape, (size_t)io->rank * sizeof(int64_t));
        widen(c, io->name, io->rank + 1, shape);
        if (c->n * io->size > biggest) biggest = c->n * io->size;
    }
    return biggest;
}

static double check_all(const nnr_model_info *info, session *s, checker *c) {
    double worst = 0;
    char *params = info->params(s->m);
    size_t es = nnr_dtype_size(info->dtype);
    for (int i = 0; i < info->nparam; i++) {
        const nnr_param *p = &info->param[i];
        if (p->buffer) continue;
        double err = check_tensor(c, p->name, p->rank, p->shape, params + (size_t)p->offset * es,
                                  s->acc + p->offset, p->size);
        worst = isnan(err) || err > worst ? err : worst;
    }
    const double *ga = s->acc + info->param_size;
    int64_t shape[NNR_MAXRANK + 1] = {c->n};
    for (int k = 0; k < info->nio; k++) {
        const nnr_io *io = &info->io[k];
        if (!io->grad) continue;
        memcpy(shape + 1, io->shape, (size_t)io->rank * sizeof(int64_t));
        double err = check_tensor(c, io->name, io->rank + 1, shape, c->in[k], ga, c->n * io->size);
        worst = isnan(err) || err > worst ? err : worst;
        ga += c->n * io->size;
    }
    return worst;
}

static int cmd_gradcheck(const nnr_model_info *info, const options *o) {
    uint64_t seed = o->seed.set ? o->seed.v : info->train.seed;
    session s = {0};
    int rc = open_model(info, &s, o->params, seed) ||
             (o->batch.n ? load_data(info, o, "--batch", &o->batch, all_kinds(info), &s.data)
                         : random_batch(info, info->batch < 4 ? info->batch : 4, seed, &s.data)) ||
             evaluator_alloc(info, &s.ev);
    if (!rc && s.data.n > info->batch) {
        nnr_set_error("--batch: %lld examples, more than the model's batch of %d", (long long)s.data.n,
                      info->batch);
        rc = -1;
    }
    checker c = {info, s.m, (int)s.data.n, s.data.col, 0, 0, o->samples < 0 ? 64 : o->samples,
                 NULL, {{0}}, 0, 0};
    if (!rc && (!(s.acc = calloc((size_t)grad_elements(info, s.data.n), sizeof(double))) ||
                !(s.order = malloc((size_t)layout(info, &c) * sizeof(int64_t)))))
        rc = oom();
    int over = 0;
    if (!rc) {
        full_gradient(info, &s, &s.data);
        double most = 0;
        for (int64_t i = 0; i < grad_elements(info, s.data.n); i++) most = fmax(most, fabs(s.acc[i]));
        c.floor = 1e-3 * most;
        c.h = !isnan(o->eps) ? o->eps : info->dtype == NNR_F64 ? 1e-6 : 1e-3;
        c.pick = s.order;
        nnr_rng_seed(&c.rng, seed ^ SAMPLE_STREAM);
        double worst = check_all(info, &s, &c);
        printf("gradcheck: worst rel err %.2g\n", worst);
        if ((over = !isnan(o->tol) && !(worst <= o->tol)))
            fprintf(stderr, "%s: gradcheck: worst rel err %.2g exceeds --tol %g\n", prog, worst,
                    o->tol);
    }
    session_free(info, &s);
    return rc ? fail() : over;
}
