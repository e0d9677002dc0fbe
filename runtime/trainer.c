/* trainer.c — the program every generated model links: `m train | eval | predict | init |
 * grads | gradcheck | summary | export | plot` (SPEC §4), generic over models through
 * nnr_model_info.  This file owns its command line: the option table and its parser, the
 * usage text, the messages of a command line that cannot be understood, and nnr_main,
 * which hands the parsed options to the command's function (trainer.h says which file
 * holds each command).
 *
 * Each command allocates everything before its loops, into a session (session.c) that is
 * released in one place on every path.  Results go to stdout in fixed formats that scripts
 * parse; the progress bar and problems go to stderr.  Exit status: 0 success, 1 a model,
 * data or file problem (the message names the file or tensor), 2 a command line that
 * cannot be understood.
 */
#include "nnr.h"
#include "trainer.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

const char *nnr_trainer_prog = "m";

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
    {"--diverge-factor", OPT_REAL, offsetof(options, diverge), " train "},
    {"--val-split", OPT_REAL,  offsetof(options, val_split), " train "},
    {"--eps",       OPT_REAL,  offsetof(options, eps),       " gradcheck "},
    {"--tol",       OPT_REAL,  offsetof(options, tol),       " gradcheck "},
};
#define NOPTION_DEFS ((int)(sizeof option_defs / sizeof option_defs[0]))

static const command commands[] = {
    {"train", nnr_cmd_train,
     "--train NAME=FILE ... [--test NAME=FILE ...] [--epochs N] [--seed S]\n"
     "[--lr X] [--load CKPT] [--save CKPT] [--val-split F] [--log run.csv]\n"
     "[--resume CKPT] [--checkpoint CKPT [--checkpoint-every N]] [--patience N]\n"
     "[--check-numerics] [--diverge-factor F]\n"
     "[--label-column NAME] [--standardize] [--text FILE] [--test-text FILE]"},
    {"eval", nnr_cmd_eval,
     "--load CKPT --test NAME=FILE ... [--label-column NAME] [--test-text FILE]"},
    {"predict", nnr_cmd_predict,
     "--load CKPT --input NAME=FILE ... [--out FILE] [--label-column NAME]"},
    {"init", nnr_cmd_init, "[--seed S] --save PARAMS"},
    {"grads", nnr_cmd_grads, "--params PARAMS --batch BATCH --out GRADS"},
    {"gradcheck", nnr_cmd_gradcheck,
     "[--params PARAMS] [--batch BATCH] [--seed S] [--eps E]\n"
     "[--samples K] [--tol T]"},
    {"summary", nnr_cmd_summary, ""},
    {"export", nnr_cmd_export, "--load CKPT --out PARAMS"},
    {"plot", nnr_cmd_plot, "RUN.csv -o CURVES.svg"},
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
    int indent = fprintf(f, "%s%s %-*s%s", lead, nnr_trainer_prog, width, cmd->name,
                         *cmd->args ? " " : "");
    for (const char *p = cmd->args; *p; p++) {
        fputc(*p, f);
        if (*p == '\n') fprintf(f, "%*s", indent, "");
    }
    fputc('\n', f);
}

static void usage(FILE *f, const nnr_model_info *info) {
    fprintf(f, "usage: %s COMMAND [OPTIONS]      model %s, compiled from %s\n\ncommands:\n",
            nnr_trainer_prog, info->name, info->source ? info->source : "?");
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
               "--resume continues one exactly; export writes the parameters alone.  Only\n"
               "finite states are saved, and training stops before saving once its loss,\n"
               "averaged over about %d steps, rises past --diverge-factor F times its\n"
               "minimum (default %g; 0 turns this off).\n"
               "\n--text FILE (instead of --train) and --test-text FILE (instead of --test) feed a\n"
               "character model, class input [T] and class label: each byte of FILE is an\n"
               "example, predicted from the T bytes before it ('\\n' before the file's start).\n"
               "With a label class(K) [T], FILE is cut into windows of T bytes, each labelled\n"
               "with the window shifted by one byte (the next byte at every position).\n",
            (int)(1 / NNR_DIVERGE_ALPHA), NNR_DIVERGE_FACTOR);
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
        if (end == v || *end || errno || x < 0)
            return nnr_trainer_usage_error(cmd, "%s: '%s' is not a count", d->name, v);
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
        if (end == v || *end || !isfinite(x))
            return nnr_trainer_usage_error(cmd, "%s: '%s' is not a number", d->name, v);
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

/* Fills o from argv[2..]: PARSED, HELP, or the exit status of a usage error.  plot takes
 * one argument that is not an option (its CSV file). */
static int parse_options(const command *cmd, int argc, char **argv, options *o) {
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        if (is_help(arg)) return HELP;
        if (arg[0] != '-' && cmd->run == nnr_cmd_plot && !o->positional) {
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
    o->epochs = o->samples = o->checkpoint_every = o->patience = -1;
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
    if (is_help(argv[1]) || strcmp(argv[1], "help") == 0) {
        usage(stdout, info);
        return 0;
    }
    const command *cmd = NULL;
    for (int i = 0; i < NCOMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0) cmd = &commands[i];
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
        usage(stdout, info);
        rc = 0;
    } else if (rc == PARSED) {
        rc = cmd->run(info, &o);
    }
    options_free(&o);
    return rc;
}
