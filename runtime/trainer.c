/* trainer.c — the program every generated model links: `m train | eval | predict | init |
 * grads | gradcheck | summary | export | plot` (docs/trainer.md), generic over models through
 * nnr_model_info.  This file owns its command line: the option table and its parser, the
 * usage text, the messages of a command line that cannot be understood, and nnr_main,
 * which hands the parsed options to the command's function (trainer.h says which file
 * holds each command).
 *
 * Each command allocates everything before its loops, into a session (session.c) that is
 * released in one place on every path.  Results go to stdout in fixed formats that scripts
 * parse; the progress bar and problems go to stderr.  Exit status (docs/trainer.md, "Exit
 * status"): 0 success; 1 the work failed (a file's contents unusable, training diverged or
 * became non-finite, a write failed part-way); 2 a command line that cannot be used: an
 * unknown option, a value out of range, or a file that cannot be read or written, all
 * checked here before any work starts; 130 train interrupted by SIGINT or SIGTERM.
 */
#include "nnr.h"
#include "trainer.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *nnr_trainer_prog = "m";

typedef struct command {
    const char *name;
    int (*run)(const nnr_model_info *info, const options *o);
    const char *args;               /* its usage, after the program and command names */
    const char *what;               /* one line for the list of commands */
} command;

typedef enum { OPT_SPECS, OPT_PATH, OPT_COUNT, OPT_SEED, OPT_REAL, OPT_FLAG } opt_kind;

/* The values a count or a number may take; `words` completes "--lr: '0' is not ...". */
typedef enum { R_ANY, R_AT_LEAST_1, R_POSITIVE, R_FRACTION, R_NON_NEGATIVE } opt_range;
static const struct { const char *words; } ranges[] = {
    [R_ANY] = {"a number"},
    [R_AT_LEAST_1] = {"a count of at least 1"},
    [R_POSITIVE] = {"a positive number"},
    [R_FRACTION] = {"a fraction in [0, 1)"},
    [R_NON_NEGATIVE] = {"a number >= 0"},
};

/* What the file an option names must allow, checked before the command starts (so an
 * unwritable --save is found before training, not after its last epoch):
 *   IO_READ     a file to read ('-': standard input);
 *   IO_STREAM   a file written in place: writable, or a new one in a directory we can
 *               create files in ('-': standard output);
 *   IO_WRITE    a regular file replaced atomically (a temporary renamed over it), or a
 *               device or pipe written in place ('-': standard output);
 *   IO_REPLACE  a file replaced atomically, and nothing else: a regular file or none, in
 *               a directory we can create files in. */
typedef enum { IO_NONE, IO_READ, IO_STREAM, IO_WRITE, IO_REPLACE } opt_io;

typedef struct option_def {
    const char *name;
    opt_kind    kind;
    size_t      off;                /* the field of options it sets */
    const char *cmds;               /* the commands that take it */
    const char *arg;                /* its value in the option list; NULL: a flag */
    opt_range   range;
    opt_io      io;
    const char *help;               /* one line of the option list (docs/trainer.md has more) */
} option_def;

#define F(field) offsetof(options, field)
static const option_def option_defs[] = {
    {"--train", OPT_SPECS, F(train), " train ", "NAME=FILE...", R_ANY, IO_READ,
     "training data (one CSV FILE with --label-column)"},
    {"--test", OPT_SPECS, F(test), " train eval ", "NAME=FILE...", R_ANY, IO_READ,
     "test data: scored each epoch (train), once (eval)"},
    {"--input", OPT_SPECS, F(input), " predict ", "NAME=FILE...", R_ANY, IO_READ,
     "the inputs to predict from"},
    {"--batch", OPT_SPECS, F(batch), " grads gradcheck ", "NAME=FILE...", R_ANY, IO_READ,
     "one batch of data (at most the compiled batch)"},
    {"--load", OPT_PATH, F(load), " train eval predict export ", "CKPT", R_ANY, IO_READ,
     "a checkpoint or parameter file to start from"},
    {"--save", OPT_PATH, F(save), " train init ", "CKPT", R_ANY, IO_REPLACE,
     "train: final (--patience: best) model; init: params"},
    {"--resume", OPT_PATH, F(resume), " train ", "CKPT", R_ANY, IO_READ,
     "continue the run a checkpoint recorded, exactly"},
    {"--checkpoint", OPT_PATH, F(checkpoint), " train ", "CKPT", R_ANY, IO_REPLACE,
     "a resumable checkpoint, each epoch and on Ctrl-C"},
    {"--checkpoint-every", OPT_COUNT, F(checkpoint_every), " train ", "N", R_AT_LEAST_1, IO_NONE,
     "... and every N optimizer steps"},
    {"--patience", OPT_COUNT, F(patience), " train ", "N", R_AT_LEAST_1, IO_NONE,
     "stop when val (else test) loss stalls N epochs"},
    {"--label-column", OPT_PATH, F(label_column), " train eval predict ", "NAME", R_ANY, IO_NONE,
     "CSV: the label's column; the others are the input"},
    {"--text", OPT_PATH, F(text), " train ", "FILE", R_ANY, IO_READ,
     "a character model's training text (for --train)"},
    {"--test-text", OPT_PATH, F(test_text), " train eval ", "FILE", R_ANY, IO_READ,
     "a character model's test text (for --test)"},
    {"--standardize", OPT_FLAG, F(standardize), " train ", NULL, R_ANY, IO_NONE,
     "standardize float inputs (training set statistics)"},
    {"--check-numerics", OPT_FLAG, F(check_numerics), " train ", NULL, R_ANY, IO_NONE,
     "stop at the first non-finite tensor, naming it"},
    {"--sync-batchnorm", OPT_FLAG, F(sync_batchnorm), " train ", NULL, R_ANY, IO_NONE,
     "mpirun: batch statistics over every rank's share"},
    {"--check-ranks", OPT_COUNT, F(check_ranks), " train ", "K", R_AT_LEAST_1, IO_NONE,
     "mpirun: check every K steps that ranks agree"},
    {"--log", OPT_PATH, F(log), " train ", "RUN.csv", R_ANY, IO_STREAM,
     "write one CSV row per epoch"},
    {"--out", OPT_PATH, F(out), " predict ", "FILE", R_ANY, IO_WRITE,
     "predict: F.safetensors, else CSV ('-': stdout)"},
    {"--out", OPT_PATH, F(out), " plot ", "FILE", R_ANY, IO_STREAM,
     "plot: the SVG file ('-': stdout)"},
    {"-o", OPT_PATH, F(out), " plot ", "FILE", R_ANY, IO_STREAM, "plot: the same as --out"},
    {"--out", OPT_PATH, F(out), " grads export ", "FILE", R_ANY, IO_REPLACE,
     "grads, export: the safetensors file"},
    {"--params", OPT_PATH, F(params), " grads gradcheck ", "PARAMS", R_ANY, IO_READ,
     "the parameters to differentiate at"},
    {"--epochs", OPT_COUNT, F(epochs), " train ", "N", R_AT_LEAST_1, IO_NONE,
     "epochs (default: the train block's)"},
    {"--samples", OPT_COUNT, F(samples), " gradcheck ", "K", R_ANY, IO_NONE,
     "elements checked per tensor (0: all)"},
    {"--seed", OPT_SEED, F(seed), " train init gradcheck ", "S", R_ANY, IO_NONE,
     "seed of the initialization, shuffles, dropout"},
    {"--lr", OPT_REAL, F(lr), " train ", "X", R_POSITIVE, IO_NONE,
     "base learning rate, > 0 (default: the model's)"},
    {"--diverge-factor", OPT_REAL, F(diverge), " train ", "F", R_NON_NEGATIVE, IO_NONE,
     "stop when the loss passes F x its minimum (0: off)"},
    {"--val-split", OPT_REAL, F(val_split), " train ", "F", R_FRACTION, IO_NONE,
     "validate on the last fraction F of the training set"},
    {"--eps", OPT_REAL, F(eps), " gradcheck ", "E", R_POSITIVE, IO_NONE,
     "finite-difference step"},
    {"--tol", OPT_REAL, F(tol), " gradcheck ", "T", R_POSITIVE, IO_NONE,
     "largest relative difference accepted"},
};
#undef F
#define NOPTION_DEFS ((int)(sizeof option_defs / sizeof option_defs[0]))

static int cmd_version(const nnr_model_info *info, const options *o);
static int cmd_help(const nnr_model_info *info, const options *o);

static const command commands[] = {
    {"train", nnr_cmd_train,
     "--train NAME=FILE ... [--test NAME=FILE ...] [--epochs N]\n"
     "[--seed S] [--lr X] [--load CKPT] [--save CKPT]\n"
     "[--val-split F] [--log RUN.csv] [--resume CKPT]\n"
     "[--checkpoint CKPT [--checkpoint-every N]] [--patience N]\n"
     "[--check-numerics] [--diverge-factor F] [--label-column NAME]\n"
     "[--standardize] [--text FILE] [--test-text FILE]\n"
     "[--sync-batchnorm] [--check-ranks K]",
     "train the model, printing a line per epoch"},
    {"eval", nnr_cmd_eval,
     "--load CKPT --test NAME=FILE ... [--label-column NAME]\n"
     "[--test-text FILE]",
     "a checkpoint's loss, accuracy, confusion matrix, precision and recall"},
    {"predict", nnr_cmd_predict,
     "--load CKPT --input NAME=FILE ... [--out FILE]\n"
     "[--label-column NAME]",
     "the model's outputs for new inputs (CSV or safetensors)"},
    {"init", nnr_cmd_init, "[--seed S] --save PARAMS", "write freshly initialized parameters"},
    {"grads", nnr_cmd_grads, "--params PARAMS --batch BATCH --out GRADS",
     "the loss's gradients on one batch, as safetensors"},
    {"gradcheck", nnr_cmd_gradcheck,
     "[--params PARAMS] [--batch BATCH] [--seed S] [--eps E]\n"
     "[--samples K] [--tol T]",
     "compare the gradients with finite differences"},
    {"summary", nnr_cmd_summary, "", "print the model's layers and parameter counts"},
    {"export", nnr_cmd_export, "--load CKPT --out PARAMS",
     "a checkpoint's parameters alone (what PyTorch loads)"},
    {"plot", nnr_cmd_plot, "RUN.csv -o CURVES.svg", "the learning curves of a --log file, as SVG"},
    {"version", cmd_version, "", "the nnc version that generated this program (also --version)"},
    {"help", cmd_help, "[COMMAND]", "this text, or a command's options (also --help)"},
};
#define NCOMMANDS ((int)(sizeof commands / sizeof commands[0]))

/* Exit statuses, as --help and docs/trainer.md list them. */
static const char exit_codes[] =
    "exit status: 0 success; 1 the work failed (a file's contents do not fit the\n"
    "model, training diverged or became non-finite, a write failed part-way);\n"
    "2 a command line that cannot be used (an unknown option, a value out of range,\n"
    "a file that cannot be read or written: checked before any work starts);\n"
    "130 train interrupted by SIGINT or SIGTERM (Ctrl-C stops after the current\n"
    "step and saves; a second one quits at once).\n";

static const char *kind_name(nnr_io_kind kind) {
    static const char *names[] = {"input", "label", "target", "output"};
    return names[kind];
}

/* "m train --train ...", the command name padded to `width` and the continuation lines
 * of args indented under their first word. */
static void synopsis(FILE *f, const char *lead, int width, const command *cmd) {
    if (!*cmd->args) width = 0;
    int indent = fprintf(f, "%s%s %-*s%s", lead, nnr_trainer_prog, width, cmd->name,
                         *cmd->args ? " " : "");
    for (const char *p = cmd->args; *p; p++) {
        fputc(*p, f);
        if (*p == '\n') fprintf(f, "%*s", indent, "");
    }
    fputc('\n', f);
}

/* The options `cmd` takes (every option when cmd is NULL), from the table: the name and
 * value, and what it does. */
static void option_list(FILE *f, const command *cmd) {
    char word[64] = "";
    if (cmd) snprintf(word, sizeof word, " %s ", cmd->name);
    for (int i = 0; i < NOPTION_DEFS; i++) {
        const option_def *d = &option_defs[i];
        if (cmd && !strstr(d->cmds, word)) continue;
        char head[64];
        snprintf(head, sizeof head, "%s%s%s", d->name, d->arg ? " " : "", d->arg ? d->arg : "");
        fprintf(f, "  %-22s %s\n", head, d->help);
    }
}

static void usage(FILE *f, const nnr_model_info *info) {
    fprintf(f, "usage: %s COMMAND [OPTIONS]      model %s, compiled from %s\n\ncommands:\n",
            nnr_trainer_prog, info->name, info->source ? info->source : "?");
    for (int i = 0; i < NCOMMANDS; i++) synopsis(f, "  ", 9, &commands[i]);
    fprintf(f, "\nNAME=FILE gives the model's input, label or target NAME from an IDX (raw or\n"
               ".gz), CSV or safetensors file; a bare FILE.safetensors gives each from the\n"
               "tensor of its name.  The model's data:");
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
    fprintf(f, "\noptions (%s help COMMAND: a command's own):\n", nnr_trainer_prog);
    option_list(f, NULL);
    fprintf(f, "\nA CSV FILE with a header row can feed the whole model: --label-column NAME names\n"
               "the label's column, the other columns feed the float input (--standardize:\n"
               "per-feature statistics of the training set, kept in the checkpoint).  --save\n"
               "and --checkpoint write checkpoints (parameters, optimizer state, position);\n"
               "--resume continues one exactly; export writes the parameters alone.  Only\n"
               "finite states are saved, and training stops before saving once its loss,\n"
               "averaged over about %d steps, rises past --diverge-factor F times its\n"
               "minimum (default %g; 0 turns this off).\n"
               "\n--text FILE (instead of --train) and --test-text FILE (instead of --test) feed a\n"
               "character model, class input [T] and class label: each byte of FILE is an\n"
               "example, predicted from the T bytes before it ('\\n' before the file's start).\n"
               "With a label class(K) [T], FILE is cut into windows of T bytes, each labelled\n"
               "with the window shifted by one byte (the next byte at every position).\n"
               "\nEnvironment: OPENBLAS_NUM_THREADS (else OMP_NUM_THREADS) sets the threads;\n"
               "OMP_WAIT_POLICY or GOMP_SPINCOUNT, when set, how idle threads wait.\n\n%s",
            (int)(1 / NNR_DIVERGE_ALPHA), NNR_DIVERGE_FACTOR, exit_codes);
}

/* One command's usage and options: `m help train`, `m train --help`. */
static void command_usage(FILE *f, const command *cmd) {
    synopsis(f, "usage: ", 0, cmd);
    fprintf(f, "%s.\n", cmd->what);
    char word[64];
    snprintf(word, sizeof word, " %s ", cmd->name);
    int any = 0;
    for (int i = 0; i < NOPTION_DEFS; i++) any |= strstr(option_defs[i].cmds, word) != NULL;
    if (any) {
        fputs("\noptions:\n", f);
        option_list(f, cmd);
    }
    fprintf(f, "\n%s", exit_codes);
}

static const command *find_command(const char *name) {
    for (int i = 0; i < NCOMMANDS; i++)
        if (strcmp(name, commands[i].name) == 0) return &commands[i];
    return NULL;
}

/* `m version`: which model, from which file, by which nnc. */
static int cmd_version(const nnr_model_info *info, const options *o) {
    (void)o;
    printf("%s: model %s, compiled from %s by nnc %s\n", nnr_trainer_prog, info->name,
           info->source ? info->source : "?", info->nnc_version ? info->nnc_version : "(unknown)");
    return 0;
}

/* `m help [COMMAND]`. */
static int cmd_help(const nnr_model_info *info, const options *o) {
    if (!o->positional) {
        usage(stdout, info);
        return 0;
    }
    const command *cmd = find_command(o->positional);
    if (!cmd) {
        fprintf(stderr, "%s: no command '%s'; %s help lists them\n", nnr_trainer_prog,
                o->positional, nnr_trainer_prog);
        return 2;
    }
    command_usage(stdout, cmd);
    return 0;
}

/* A command line that cannot be understood: the problem, then how the command is used. */
int nnr_trainer_usage_error(const command *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "%s: ", nnr_trainer_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    synopsis(stderr, "usage: ", 0, cmd);
    return 2;
}

/* A problem with the model, the data or a file: nnr_error() says what. */
int nnr_trainer_fail(void) {
    fprintf(stderr, "%s: %s\n", nnr_trainer_prog, nnr_error());
    return 1;
}

/* An argument as a POSIX shell reads it back: bare when it is plain, else single-quoted. */
static void shell_word(FILE *f, const char *arg) {
    if (*arg && strspn(arg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                            "_@%+=:,./-") == strlen(arg)) {
        fputs(arg, f);
        return;
    }
    fputc('\'', f);
    for (const char *p = arg; *p; p++) {
        if (*p == '\'') fputs("'\\''", f);
        else fputc(*p, f);
    }
    fputc('\'', f);
}

/* The command line that resumes this run from `ckpt`: this one, less --load and --resume,
 * plus --resume ckpt. */
void nnr_trainer_resume_command(FILE *f, const options *o, const char *ckpt) {
    if (nnr_comm_world) fprintf(f, "mpirun -np %d ", nnr_comm_world->size);   /* the same ranks */
    for (int i = 0; i < o->argc; i++) {
        const char *a = o->argv[i];
        if (i >= 2 && (!strcmp(a, "--load") || !strcmp(a, "--resume"))) {
            i++;
            continue;
        }
        if (i >= 2 && (!strncmp(a, "--load=", 7) || !strncmp(a, "--resume=", 9))) continue;
        if (i) fputc(' ', f);
        shell_word(f, a);
    }
    fputs(" --resume ", f);
    shell_word(f, ckpt);
    fputc('\n', f);
}

/* The command line's text options against the others: 0, or a usage error's status. */
int nnr_trainer_text_usage(const options *o) {
    if (o->text && o->train.n)
        return nnr_trainer_usage_error(o->cmd, "--text and --train exclude each other");
    if (o->test_text && o->test.n)
        return nnr_trainer_usage_error(o->cmd, "--test-text and --test exclude each other");
    if ((o->text || o->test_text) && o->label_column)
        return nnr_trainer_usage_error(o->cmd,
                                       "--label-column is for CSV files, not --text or --test-text");
    return 0;
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
        if (end == v || *end || errno || x < (d->range == R_AT_LEAST_1))
            return nnr_trainer_usage_error(cmd, "%s: '%s' is not %s", d->name, v,
                                           d->range == R_AT_LEAST_1 ? ranges[d->range].words
                                                                    : "a count");
        *(int64_t *)field = x;
        return 0;
    }
    case OPT_SEED: {
        unsigned long long x = strtoull(v, &end, 0);
        if (end == v || *end || errno || v[0] == '-')
            return nnr_trainer_usage_error(cmd, "%s: '%s' is not a seed (an integer in [0, 2^64))",
                                           d->name, v);
        ((seed_opt *)field)->v = x;
        ((seed_opt *)field)->set = 1;
        return 0;
    }
    case OPT_REAL: {
        double x = strtod(v, &end);
        int in_range = d->range == R_POSITIVE       ? x > 0
                       : d->range == R_FRACTION     ? x >= 0 && x < 1
                       : d->range == R_NON_NEGATIVE ? x >= 0
                                                    : 1;
        if (end == v || *end || !isfinite(x) || !in_range)
            return nnr_trainer_usage_error(cmd, "%s: '%s' is not %s", d->name, v,
                                           ranges[d->range].words);
        *(double *)field = x;
        return 0;
    }
    case OPT_SPECS:
    case OPT_FLAG:
        break;
    }
    return 0;
}

/* --train a b c: every following argument up to the next option is a spec ("-", standard
 * input, is a spec too). */
static int parse_specs(const command *cmd, const option_def *d, const char *inline_value,
                       int argc, char **argv, int *i, options *o) {
    specs *s = (specs *)((char *)o + d->off);
    int before = s->n;
    if (inline_value) s->v[s->n++] = inline_value;
    while (*i + 1 < argc && (argv[*i + 1][0] != '-' || strcmp(argv[*i + 1], "-") == 0))
        s->v[s->n++] = argv[++*i];
    if (s->n == before) return nnr_trainer_usage_error(cmd, "%s needs NAME=FILE", d->name);
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

/* Fills o from argv[2..]: PARSED, HELP, or the exit status of a usage error.  plot and
 * help take one argument that is not an option (the CSV file, the command). */
static int parse_options(const command *cmd, int argc, char **argv, options *o) {
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        if (is_help(arg)) return HELP;
        if ((arg[0] != '-' || (!arg[1] && cmd->run == nnr_cmd_plot)) &&
            (cmd->run == nnr_cmd_plot || cmd->run == cmd_help) && !o->positional) {
            o->positional = arg;
            continue;
        }
        if (arg[0] != '-' || !arg[1])
            return nnr_trainer_usage_error(cmd, "unexpected argument '%s'", arg);
        const char *eq = strchr(arg, '=');
        const option_def *d = find_option(cmd, arg, eq ? (size_t)(eq - arg) : strlen(arg));
        if (!d)
            return nnr_trainer_usage_error(cmd, "unknown option '%.*s' for %s",
                                           eq ? (int)(eq - arg) : (int)strlen(arg), arg, cmd->name);
        int rc;
        if (d->kind == OPT_FLAG) {
            if (eq) return nnr_trainer_usage_error(cmd, "%s takes no value", d->name);
            *(int *)((char *)o + d->off) = 1;
            rc = 0;
        } else if (d->kind == OPT_SPECS) {
            rc = parse_specs(cmd, d, eq ? eq + 1 : NULL, argc, argv, &i, o);
        } else if (eq) {
            rc = parse_value(cmd, d, eq + 1, o);
        } else if (i + 1 < argc) {
            rc = parse_value(cmd, d, argv[++i], o);
        } else {
            rc = nnr_trainer_usage_error(cmd, "%s needs a value", d->name);
        }
        if (rc) return rc;
    }
    return PARSED;
}

static int options_init(options *o, const command *cmd, int argc) {
    memset(o, 0, sizeof *o);
    o->cmd = cmd;
    o->epochs = o->samples = o->checkpoint_every = o->patience = o->check_ranks = -1;
    o->lr = o->val_split = o->eps = o->tol = o->diverge = NAN;
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
    free(o->stdin_arg);
    if (o->stdin_copy) {
        fclose(o->stdin_copy);
        nnr_error_alias(NULL, NULL);
    }
}

/* ---- files checked before a command starts -------------------------------------------- */

/* "m: --save: /x/best.ckpt: why", status 2. */
static int io_refused(const char *opt, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int io_refused(const char *opt, const char *path, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "%s: %s: %s: ", nnr_trainer_prog, opt, path);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 2;
}

static int check_source(const char *opt, const char *path) {
    struct stat st;
    if (stat(path, &st)) return io_refused(opt, path, "%s", strerror(errno));
    if (S_ISDIR(st.st_mode)) return io_refused(opt, path, "is a directory");
    if (access(path, R_OK)) return io_refused(opt, path, "cannot be read: %s", strerror(errno));
    return 0;
}

/* An input named '-' (FILE, or NAME=FILE at *arg + prefix): standard input is copied to a
 * temporary file, which *arg then names as /dev/fd/N.  The loaders read a file more than
 * once (the format is sniffed from its first bytes, a checkpoint is read twice) and a pipe
 * cannot be read again; the copy is deleted when the program exits.  Messages about the
 * copy name it "standard input". */
static int stdin_source(options *o, const char *opt, const char **arg, size_t prefix) {
    if (o->stdin_copy)
        return io_refused(opt, "-", "standard input is read by an earlier option already; "
                                    "one input at most can be '-'");
    if (isatty(STDIN_FILENO))
        return io_refused(opt, "-", "standard input is a terminal; redirect or pipe the file "
                                    "into it");
    FILE *t = tmpfile();
    if (!t)
        return io_refused(opt, "-", "cannot make a temporary copy of standard input: %s",
                          strerror(errno));
    char buf[1 << 16];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, stdin)) > 0)
        if (fwrite(buf, 1, got, t) != got) break;
    int bad = ferror(stdin) ? errno : ferror(t) || fflush(t) ? (errno ? errno : EIO) : 0;
    char path[32];
    snprintf(path, sizeof path, "/dev/fd/%d", fileno(t));
    char *named = bad ? NULL : malloc(prefix + strlen(path) + 1);
    if (!named) {
        fclose(t);
        return io_refused(opt, "-", "cannot copy standard input: %s", strerror(bad ? bad : ENOMEM));
    }
    memcpy(named, *arg, prefix);
    strcpy(named + prefix, path);
    o->stdin_copy = t;
    *arg = o->stdin_arg = named;
    nnr_error_alias(named + prefix, "standard input");
    return 0;
}

/* The directory a new file or the temporary of an atomic write is created in. */
static int check_directory(const char *opt, const char *path) {
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) snprintf(dir, sizeof dir, ".");
    else snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    struct stat st;
    if (stat(dir, &st))
        return errno == ENOENT ? io_refused(opt, path, "directory %s does not exist", dir)
                               : io_refused(opt, path, "directory %s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return io_refused(opt, path, "%s is not a directory", dir);
    if (access(dir, W_OK | X_OK))
        return io_refused(opt, path, "cannot create files in %s: %s", dir, strerror(errno));
    return 0;
}

static int check_destination(const char *opt, const char *path, opt_io io) {
    struct stat st;
    if (strcmp(path, "-") == 0)
        return io == IO_REPLACE ? io_refused(opt, path, "give a file name: this file is replaced "
                                                        "atomically, standard output cannot be")
                                : 0;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) return io_refused(opt, path, "is a directory");
        if (!S_ISREG(st.st_mode) && io == IO_REPLACE)
            return io_refused(opt, path, "is not a regular file (it would be replaced by "
                                         "renaming a new file over it)");
        if ((!S_ISREG(st.st_mode) || io == IO_STREAM) && access(path, W_OK))
            return io_refused(opt, path, "cannot be written: %s", strerror(errno));
        if (!S_ISREG(st.st_mode) || io == IO_STREAM) return 0;
    } else if (errno != ENOENT) {
        return io_refused(opt, path, "%s", strerror(errno));
    }
    return check_directory(opt, path);
}

/* NAME=FILE: NAME must be one of the model's inputs, labels or targets. */
static int check_spec_name(const nnr_model_info *info, const char *opt, const char *spec,
                           const char *eq) {
    for (int k = 0; k < info->nio; k++)
        if (strlen(info->io[k].name) == (size_t)(eq - spec) &&
            strncmp(info->io[k].name, spec, (size_t)(eq - spec)) == 0)
            return 0;
    fprintf(stderr, "%s: %s: unknown tensor '%.*s' in %s; the model has", nnr_trainer_prog, opt,
            (int)(eq - spec), spec, spec);
    for (int k = 0; k < info->nio; k++) fprintf(stderr, "%s %s", k ? "," : "", info->io[k].name);
    fputc('\n', stderr);
    return 2;
}

/* Every file the command line names, before the command runs: what it reads must be
 * readable, what it writes writable, so that no run is lost to a typo in --save. */
static int check_files(const nnr_model_info *info, options *o) {
    char word[64];
    snprintf(word, sizeof word, " %s ", o->cmd->name);
    for (int i = 0; i < NOPTION_DEFS; i++) {
        const option_def *d = &option_defs[i];
        if (d->io == IO_NONE || !strstr(d->cmds, word)) continue;
        void *field = (char *)o + d->off;
        int rc = 0;
        if (d->kind == OPT_SPECS) {
            specs *sp = field;
            for (int k = 0; !rc && k < sp->n; k++) {
                const char *eq = strchr(sp->v[k], '=');
                if (o->label_column && (eq || sp->n != 1)) break;   /* the command says why */
                const char *file = eq ? eq + 1 : sp->v[k];
                size_t at = (size_t)(file - sp->v[k]);
                rc = (eq && check_spec_name(info, d->name, sp->v[k], eq)) ||
                     (strcmp(file, "-") ? check_source(d->name, file)
                                        : stdin_source(o, d->name, &sp->v[k], at)) ? 2 : 0;
            }
        } else if (*(const char **)field) {
            const char **path = field;
            if (d->io == IO_READ && strcmp(*path, "-") == 0) rc = stdin_source(o, d->name, path, 0);
            else if (d->io == IO_READ) rc = check_source(d->name, *path);
            else rc = check_destination(d->name, *path, d->io);
        }
        if (rc) return rc;
    }
    if (o->cmd->run == nnr_cmd_plot && o->positional && strcmp(o->positional, "-"))
        return check_source("plot", o->positional);   /* plot reads "-" itself, once */
    return 0;
}

int nnr_main(const nnr_model_info *info, int argc, char **argv) {
    nnr_threads_passive(argv);
    if (argc > 0 && argv[0]) {
        const char *slash = strrchr(argv[0], '/');
        nnr_trainer_prog = slash ? slash + 1 : argv[0];
    } else {
        nnr_trainer_prog = info->name;
    }
    if (argc < 2) {
        usage(stderr, info);
        return 2;
    }
    const char *name = is_help(argv[1]) ? "help"
                       : strcmp(argv[1], "--version") == 0 ? "version" : argv[1];
    const command *cmd = find_command(name);
    if (!cmd) {
        fprintf(stderr, "%s: unknown command '%s'\n", nnr_trainer_prog, argv[1]);
        usage(stderr, info);
        return 2;
    }
    options o;
    int rc;
    if (options_init(&o, cmd, argc)) {
        fprintf(stderr, "%s: out of memory\n", nnr_trainer_prog);
        rc = 1;
    } else if ((rc = parse_options(cmd, argc, argv, &o)) == HELP) {
        command_usage(stdout, cmd);
        rc = 0;
    } else if (rc == PARSED && !(rc = nnr_trainer_text_usage(&o)) &&
               !(rc = check_files(info, &o))) {
        o.argc = argc;
        o.argv = argv;
        rc = cmd->run(info, &o);
    }
    options_free(&o);
    return rc;
}
