/* nnc.c — the driver: command line, the pipeline, the files nnc writes.
 *
 * The whole compiler is the list `pipeline` below, run in order over one compilation
 * (one arena, one diagnostics sink, one IR graph): parse, lower to IR, infer shapes,
 * differentiate, fuse, plan memory, name.  `--dump-ir` prints the IR after every pass
 * from `lower` on.  The requested output (C and header, --exe, --summary, --emit,
 * --graph) is written from the final graph, to the files -o and --header name, where
 * `-` is standard input or output; how the options fit together is checked before the
 * model is read.  Exit status: 0 success, 1 errors in the model, 2 usage or I/O errors
 * (README.md, "The nnc command"). */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "ast.h"
#include "codegen.h"
#include "lower.h"
#include "shape.h"

#ifndef NNC_VERSION
#define NNC_VERSION "dev"
#endif

typedef struct options {
    const char *input, *output, *header, *emit, *dtype, *max_memory;
    const char *target, *weights, *batch, *math;   /* --target embedded and its options */
    int exe, mpi, summary, graph, dump_ir, verbose, help, version, infer_only;
    int embedded;          /* --target embedded */
    int batch_n;           /* --batch N; 0: the train block's */
    int64_t memory_limit;  /* bytes; 0: none */
} options;

typedef struct compilation {
    arena        a;
    diag         d;
    source      *src;
    parse_ctx    parse;
    ir_graph    *g;
    const options *opt;
} compilation;

/* ---- the pipeline ------------------------------------------------------------------ */

static int pass_parse(compilation *c) {
    c->parse = (parse_ctx){&c->a, &c->d, {0}};
    return parse_source(&c->parse, c->src);
}

static int pass_lower(compilation *c) {
    c->g = ir_graph_new(&c->a, c->src);
    c->g->f64 = c->opt->dtype && !strcmp(c->opt->dtype, "f64");
    c->g->embedded = c->opt->embedded;
    c->g->infer_only = c->opt->infer_only;
    lower_program(c->g, &c->parse.prog, &c->d);
    if (c->opt->batch_n) c->g->train.batch = c->opt->batch_n;   /* --batch: the compiled batch */
    return c->d.errors;
}

static int pass_shapes(compilation *c) {
    shape_pass(c->g, &c->d);
    return c->d.errors;
}

/* --infer-only skips it: no gradient, no optimizer state, only inference is emitted */
static int pass_grad(compilation *c) { return c->g->infer_only ? 0 : grad_build(c->g, &c->d) ? 1 : c->d.errors; }
static int pass_fuse(compilation *c) { fuse_plan(c->g); return 0; }
/* --summary shows a plan over the limit instead of refusing it: that is how one sizes it down */
static int pass_plan(compilation *c) {
    plan_memory(c->g);
    if (plan_check_sizes(c->g, &c->d)) return c->d.errors;
    const char *from = c->opt->max_memory ? arena_printf(&c->a, "--max-memory %s", c->opt->max_memory)
                                          : "the machine's physical memory; --max-memory sets another";
    if (!c->opt->summary) plan_check_memory(c->g, c->opt->memory_limit, from, &c->d);
    return c->d.errors;
}
static int pass_names(compilation *c) { names_assign(c->g); return 0; }

/* `goes_on`: a pass whose errors leave a graph the next pass can still check (failed
 * expressions become placeholders marked bad), so a file's name errors and shape errors
 * are reported together. */
static const struct { const char *name; int (*run)(compilation *); int goes_on; } pipeline[] = {
    {"parse", pass_parse, 0},     /* grammar/nnc.y: text -> syntax tree */
    {"lower", pass_lower, 1},     /* dsl/lower.c: syntax tree -> forward IR; a call goes through its
                                   * row of dsl/builtins.c to its function (layer_*.c, losses.c),
                                   * the train { } block to lower_train.c */
    {"shapes", pass_shapes, 0},   /* dsl/shape.c: per-example shapes, broadcasting */
    {"grad", pass_grad, 0},       /* codegen/grad.c: reverse mode -> backward IR */
    {"fuse", pass_fuse, 0},       /* codegen/fuse.c: inlined vs materialized tensors */
    {"plan", pass_plan, 0},       /* codegen/plan.c: blocks and offsets */
    {"names", pass_names, 0},     /* codegen/names.c: C identifiers */
};

static int compile(compilation *c) {
    for (size_t i = 0; i < sizeof pipeline / sizeof *pipeline; i++) {
        int errors = pipeline[i].run(c);
        if (c->opt->dump_ir && c->g) ir_dump(c->g, stderr, pipeline[i].name);
        if (errors && (!pipeline[i].goes_on || diag_too_many(&c->d))) return -1;
    }
    return c->d.errors ? -1 : 0;
}

/* ---- outputs ----------------------------------------------------------------------- */

/* `-` names standard input (the model) and standard output (-o, --header).  Every output
 * goes through write_to, so each one treats `-` alike and reports a failed write, a full
 * disk included, as an I/O error (exit 2). */
static int is_std(const char *path) { return path && !strcmp(path, "-"); }

static const char *shown(const char *path) { return !path || is_std(path) ? "standard output" : path; }

/* PATH with its extension (if any) replaced by EXT, in the arena. */
static char *replace_ext(arena *a, const char *path, const char *ext) {
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    int stem = (int)(dot && dot != path && (!slash || dot > slash + 1) ? dot - path : (ptrdiff_t)strlen(path));
    return arena_printf(a, "%.*s%s", stem, path, ext);
}

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static int has_ext(const char *path, const char *ext) {
    size_t n = strlen(path), e = strlen(ext);
    return n > e && !strcmp(path + n - e, ext) && path[n - e - 1] != '/';
}

/* Whether two paths name one file: the same text, or one existing file reached twice
 * (./m.nn, a hard link). */
static int same_file(const char *p, const char *q) {
    struct stat a, b;
    if (!p || !q || is_std(p) || is_std(q)) return 0;
    if (!strcmp(p, q)) return 1;
    return stat(p, &a) == 0 && stat(q, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

typedef int (*writer)(compilation *, FILE *, const emit_opts *);

static int put_c(compilation *c, FILE *f, const emit_opts *eo) { return emit_c(c->g, f, eo); }
static int put_h(compilation *c, FILE *f, const emit_opts *eo) { return emit_h(c->g, f, eo); }
static int put_summary(compilation *c, FILE *f, const emit_opts *eo) {
    (void)eo;
    if (fputs(summary_text(c->g), f) < 0) return -1;
    return c->g->embedded && fputs(summary_embedded(c->g), f) < 0 ? -1 : 0;
}
static int put_graph(compilation *c, FILE *f, const emit_opts *eo) {
    (void)eo;
    graph_dot(c->g, f);
    return ferror(f) ? -1 : 0;
}

/* Writes one output to PATH (NULL or "-": standard output). */
static int write_to(compilation *c, const char *path, writer put, const emit_opts *eo) {
    FILE *f = !path || is_std(path) ? stdout : fopen(path, "w");
    if (!f) {
        fprintf(stderr, "nnc: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    errno = 0;
    int failed = put(c, f, eo) != 0;
    failed |= f == stdout ? fflush(f) != 0 || ferror(f) : fclose(f) != 0;
    if (failed) {
        int err = errno ? errno : EIO;
        struct stat st;  /* a truncated C file must not look up to date to make; /dev/full stays */
        if (f != stdout && stat(path, &st) == 0 && S_ISREG(st.st_mode)) remove(path);
        fprintf(stderr, "nnc: cannot write %s: %s\n", shown(path), strerror(err));
        return -1;
    }
    return 0;
}

/* Where the C file, its header and the --exe program go (README.md, "The nnc command"). */
typedef struct targets {
    const char *cfile;     /* "-": standard output */
    const char *hfile;     /* "-": standard output; NULL: none (-o - without --header) */
    const char *program;   /* --exe; else NULL */
} targets;

static int usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("nnc: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n", stderr);
    va_end(ap);
    return -1;
}

/* Fills T from -o, --header and --exe, or says why they do not fit together and returns
 * -1 (a usage error, found before the model is read). */
static int place_outputs(const options *o, arena *a, targets *t) {
    int from_stdin = is_std(o->input);
    *t = (targets){0};
    if (o->summary || o->graph || o->emit) {  /* one text, -o or standard output */
        if (o->header) return usage_error("--header goes with the C output: nnc MODEL.nn -o FILE.c --header FILE.h");
        t->cfile = o->output ? o->output : "-";
    } else if (o->exe) {
        if (is_std(o->output))
            return usage_error("--exe writes a program, which cannot go to standard output; name it with -o PROGRAM");
        if (o->output && (has_ext(o->output, ".c") || has_ext(o->output, ".h")))
            return usage_error("with --exe, -o names the program, not its C file: -o %s would make a program "
                               "named %s beside %s.c; try -o PROGRAM, which writes PROGRAM, PROGRAM.c and PROGRAM.h",
                               o->output, o->output, o->output);
        if (o->header)
            return usage_error("--exe keeps the header beside the program's C file (PROGRAM.h); --header goes with "
                               "nnc MODEL.nn -o FILE.c");
        if (!o->output && from_stdin)
            return usage_error("the model comes from standard input: name the program with -o PROGRAM");
        const char *stem = o->output ? o->output : replace_ext(a, base_name(o->input), "");
        /* "./" keeps a name that starts with '-' from reading as an option to the C compiler */
        if (stem[0] == '-') stem = arena_printf(a, "./%s", stem);
        t->program = stem;
        t->cfile = arena_printf(a, "%s.c", stem);
        t->hfile = arena_printf(a, "%s.h", stem);
    } else {
        if (!o->output && from_stdin)
            return usage_error("the model comes from standard input: name the output with -o FILE, or -o - for "
                               "standard output");
        if (is_std(o->output) && is_std(o->header))
            return usage_error("-o - and --header - would both write to standard output; name the header with "
                               "--header FILE");
        t->cfile = o->output ? o->output : replace_ext(a, base_name(o->input), ".c");
        t->hfile = o->header ? o->header : is_std(t->cfile) ? NULL : replace_ext(a, t->cfile, ".h");
        if (same_file(t->cfile, t->hfile))
            return usage_error("the C file and its header would both be %s; name the C file FILE.c, or the "
                               "header with --header FILE", t->cfile);
    }
    const char *outs[] = {t->cfile, t->hfile, t->program};
    for (int i = 0; i < 3; i++)
        if (same_file(outs[i], o->input))
            return usage_error("%s is the model file; nnc does not write over its input", outs[i]);
    return 0;
}

/* The header's name as the C file includes it: the header's own name, else the one it
 * would have beside the C file, beside the model file or, for a model read from
 * standard input, the model's name. */
static const char *include_name(compilation *c, const targets *t) {
    if (t->hfile && !is_std(t->hfile)) return base_name(t->hfile);
    if (!is_std(t->cfile)) return base_name(replace_ext(&c->a, t->cfile, ".h"));
    if (!is_std(c->opt->input)) return replace_ext(&c->a, base_name(c->opt->input), ".h");
    return arena_printf(&c->a, "%s.h", c->g->model);
}

/* The requested output: the --summary table, the --graph, the --emit function, or the
 * C file and its header (codegen/emit_api.c, the kernels in codegen/emit_*.c), with
 * --exe also the trainer program (codegen/build.c).  The header is written first, so a
 * C file on disk always has its header.  -1 after an I/O error (exit 2). */
static int write_outputs(compilation *c, const targets *t) {
    const options *o = c->opt;
    emit_opts eo = {include_name(c, t), c->src->path, o->emit, o->exe, o->mpi, o->embedded, NULL, 0};
    emit_weights w;
    if (o->weights && !o->summary) {   /* --weights: baked into the C file (codegen/weights.c) */
        if (weights_read(c->g, o->weights, &w)) return -1;
        eo.weights = &w;
    }
    eo.own_math = o->math && !strcmp(o->math, "inline");
    if (o->summary) return write_to(c, t->cfile, put_summary, &eo);
    if (o->graph) return write_to(c, t->cfile, put_graph, &eo);
    if (o->emit) return write_to(c, t->cfile, put_c, &eo);
    if (t->hfile && write_to(c, t->hfile, put_h, &eo)) return -1;
    if (write_to(c, t->cfile, put_c, &eo)) return -1;
    return t->program ? build_exe(t->cfile, t->program, o->mpi, o->verbose) : 0;
}

/* ---- command line ------------------------------------------------------------------- */

static void usage(FILE *f) {
    fputs("usage: nnc MODEL.nn [-o FILE] [--header FILE] [options]\n"
          "\n"
          "  nnc MODEL.nn -o model.c        write model.c and model.h (forward, backward, update)\n"
          "  nnc MODEL.nn --exe -o model    also compile and link the trainer program `model`\n"
          "                                 (keeping model.c and model.h beside it)\n"
          "  nnc MODEL.nn --exe --mpi -o m  the trainer as one rank of a data-parallel run:\n"
          "                                 mpirun -np N ./m train ... (Open MPI)\n"
          "  nnc MODEL.nn --summary         table: name, op, output shape, parameters, FLOPs, bytes\n"
          "  nnc MODEL.nn --emit PASS       print one generated function: forward, backward,\n"
          "                                 update or infer\n"
          "  nnc MODEL.nn --graph -o g.dot  forward and backward graphs for Graphviz (dot -Tpng)\n"
          "\n"
          "files:\n"
          "  -o FILE           where the output goes; without -o the C goes to MODEL.c and MODEL.h\n"
          "                    in the current directory, the other outputs to standard output\n"
          "  --header FILE     where the header goes (default: beside the C file, FILE.h);\n"
          "                    the C file includes it by its base name\n"
          "  -                 standard input as MODEL.nn (diagnostics name it <stdin>), standard\n"
          "                    output as -o or --header FILE.  -o - prints the C and writes no\n"
          "                    header unless --header names one (-o - --header - is refused)\n"
          "  --exe -o PROGRAM  names the program: it cannot be -, and a name ending in .c or .h\n"
          "                    is refused (-o m.c would make a program named m.c)\n"
          "\n"
          "options:\n"
          "  --dtype f32|f64   precision of every float tensor (default f32; f64 uses dgemm)\n"
          "  --batch N         the compiled batch (n <= N examples per call) instead of the\n"
          "                    train block's\n"
          "\n"
          "the embedded target (docs/embedded.md):\n"
          "  --target embedded C99 for a microcontroller: no BLAS, no OpenMP, no malloc, no\n"
          "                    stdio; every buffer a static array (--summary: flash and RAM)\n"
          "  --weights CK      bake a checkpoint's parameters into the C file as static const\n"
          "                    arrays (flash); without it NAME_init draws them from a seed\n"
          "  --infer-only      only inference: no gradients, no optimizer state, no training API\n"
          "  --math libm|inline  exp, log, tanh... from libm (default) or written into the file\n"
          "\n"
          "other options:\n"
          "  --max-memory SIZE refuse a model whose memory plan (params, grads, optimizer state,\n"
          "                    activations) is larger: bytes, or with K, M, G or T (powers of 1024);\n"
          "                    0 or none: no limit (default: the machine's physical memory)\n"
          "  --dump-ir         print the IR after each pass to standard error\n"
          "  -v                print the C compiler command (--exe)\n"
          "  --help, --version\n"
          "\n"
          "environment: NNC_CC (C compiler, default cc), NNC_CFLAGS (extra flags for --exe)\n"
          "exit status: 0 success; 1 errors in the model (diagnostics on standard error);\n"
          "             2 usage error, a file that cannot be read or written, or --exe's C\n"
          "             compiler failing\n", f);
}

/* "512M", "16G", "1048576", "none": bytes (K, M, G, T are powers of 1024; a trailing B or
 * iB is allowed); -1 for anything else. */
static int64_t parse_size(const char *s) {
    if (!strcmp(s, "none")) return 0;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !(v >= 0)) return -1;
    static const char units[] = "KMGT";
    const char *u = *end ? strchr(units, *end) : NULL;
    if (u) {
        for (const char *k = units; k <= u; k++) v *= 1024;
        end++;
        if (*end == 'i') end++;
    }
    if (*end == 'B') end++;
    if (*end || v >= 9.2e18) return -1;
    return (int64_t)v;
}

/* --max-memory, or else the machine's physical memory (0, no limit, if it cannot tell). */
static int set_memory_limit(options *o) {
    if (o->max_memory) {
        o->memory_limit = parse_size(o->max_memory);
        if (o->memory_limit < 0) {
            fprintf(stderr, "nnc: --max-memory takes bytes, a size such as 512M or 16G, or none; not '%s'\n",
                    o->max_memory);
            return -1;
        }
        return 0;
    }
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    o->memory_limit = pages > 0 && page > 0 ? (int64_t)pages * page : 0;
    return 0;
}

/* --target, the options only the embedded target takes, and --batch (any target). */
static int check_target(options *o) {
    if (o->target && strcmp(o->target, "host") && strcmp(o->target, "embedded"))
        return usage_error("--target takes host (the default) or embedded, not '%s'", o->target);
    o->embedded = o->target && !strcmp(o->target, "embedded");
    if (o->batch) {
        char *end;
        errno = 0;
        long v = strtol(o->batch, &end, 10);
        if (end == o->batch || *end || errno || v < 1 || v > 1 << 30)
            return usage_error("--batch takes a whole number of examples from 1 to %d, not '%s'", 1 << 30, o->batch);
        o->batch_n = (int)v;
    }
    if (o->math && strcmp(o->math, "libm") && strcmp(o->math, "inline"))
        return usage_error("--math takes libm or inline, not '%s'", o->math);
    const char *only = o->weights ? "--weights" : o->infer_only ? "--infer-only" : o->math ? "--math" : NULL;
    if (only && !o->embedded)
        return usage_error("%s is an option of the embedded target: add --target embedded", only);
    if (o->embedded && (o->exe || o->mpi))
        return usage_error("--target embedded writes C for a microcontroller's own program; the trainer program "
                           "(--exe%s) is the host's", o->mpi ? " --mpi" : "");
    if (o->embedded && o->emit && o->infer_only && strcmp(o->emit, "infer"))
        return usage_error("--infer-only emits no %s function: --emit infer", o->emit);
    return 0;
}

static int parse_args(int argc, char **argv, options *o) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **value = NULL;
        if (!strcmp(a, "-o")) value = &o->output;
        else if (!strcmp(a, "--header")) value = &o->header;
        else if (!strcmp(a, "--emit")) value = &o->emit;
        else if (!strcmp(a, "--dtype")) value = &o->dtype;
        else if (!strcmp(a, "--max-memory")) value = &o->max_memory;
        else if (!strncmp(a, "--max-memory=", 13)) o->max_memory = a + 13;
        else if (!strncmp(a, "--header=", 9)) o->header = a + 9;
        else if (!strncmp(a, "--emit=", 7)) o->emit = a + 7;
        else if (!strncmp(a, "--dtype=", 8)) o->dtype = a + 8;
        else if (!strcmp(a, "--target")) value = &o->target;
        else if (!strncmp(a, "--target=", 9)) o->target = a + 9;
        else if (!strcmp(a, "--weights")) value = &o->weights;
        else if (!strncmp(a, "--weights=", 10)) o->weights = a + 10;
        else if (!strcmp(a, "--batch")) value = &o->batch;
        else if (!strncmp(a, "--batch=", 8)) o->batch = a + 8;
        else if (!strcmp(a, "--math")) value = &o->math;
        else if (!strncmp(a, "--math=", 7)) o->math = a + 7;
        else if (!strcmp(a, "--infer-only")) o->infer_only = 1;
        else if (!strcmp(a, "--exe")) o->exe = 1;
        else if (!strcmp(a, "--mpi")) o->mpi = 1;
        else if (!strcmp(a, "--summary")) o->summary = 1;
        else if (!strcmp(a, "--graph")) o->graph = 1;
        else if (!strcmp(a, "--dump-ir")) o->dump_ir = 1;
        else if (!strcmp(a, "-v")) o->verbose = 1;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) o->help = 1;
        else if (!strcmp(a, "--version")) o->version = 1;
        else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "nnc: unknown option '%s' (see nnc --help)\n", a);
            return -1;
        } else if (o->input) {
            fprintf(stderr, "nnc: more than one model file ('%s' and '%s')\n", o->input, a);
            return -1;
        } else {
            o->input = a;
        }
        if (value) {
            if (++i == argc) {
                fprintf(stderr, "nnc: %s needs a value\n", a);
                return -1;
            }
            *value = argv[i];
        }
    }
    if (o->help || o->version) return 0;  /* anywhere on the line, as in most commands */
    if (!o->input) {
        fprintf(stderr, "nnc: no model file given (see nnc --help)\n");
        return -1;
    }
    if (o->exe + o->summary + o->graph + (o->emit != NULL) > 1) {
        fprintf(stderr, "nnc: --exe, --summary, --emit and --graph each make one output; give one of them\n");
        return -1;
    }
    if (o->mpi && !o->exe) {
        fprintf(stderr, "nnc: --mpi builds the trainer program for mpirun: give it with --exe (an application "
                        "calls nnr_mpi_main and links libnnr_mpi.a itself, docs/distributed.md)\n");
        return -1;
    }
    if (check_target(o)) return -1;
    if (o->dtype && strcmp(o->dtype, "f32") && strcmp(o->dtype, "f64")) {
        fprintf(stderr, "nnc: --dtype must be f32 or f64, not '%s'\n", o->dtype);
        return -1;
    }
    if (o->emit && strcmp(o->emit, "forward") && strcmp(o->emit, "backward") && strcmp(o->emit, "update") &&
        strcmp(o->emit, "infer")) {
        fprintf(stderr, "nnc: --emit takes forward, backward, update or infer, not '%s'\n", o->emit);
        return -1;
    }
    return set_memory_limit(o);
}

int main(int argc, char **argv) {
    options opt = {0};
    targets out;
    compilation c = {.opt = &opt};
    if (parse_args(argc, argv, &opt)) return 2;
    if (opt.help || opt.version) {
        if (opt.help) usage(stdout);
        else printf("nnc %s\n", NNC_VERSION);
        if (fflush(stdout) == 0 && !ferror(stdout)) return 0;
        fprintf(stderr, "nnc: cannot write standard output: %s\n", strerror(errno ? errno : EIO));
        return 2;
    }
    if (place_outputs(&opt, &c.a, &out)) {
        arena_free(&c.a);
        return 2;
    }
    c.src = source_read(&c.a, opt.input);
    if (!c.src) {
        fprintf(stderr, "nnc: cannot read %s: %s\n", is_std(opt.input) ? "standard input" : opt.input,
                strerror(errno));
        arena_free(&c.a);
        return 2;
    }
    if (is_std(opt.input)) c.src->path = "<stdin>";  /* as C compilers name it in diagnostics */
    diag_init(&c.d, c.src, stderr);
    int status = compile(&c) != 0 ? 1 : write_outputs(&c, &out) ? 2 : 0;
    if (status == 1 && c.d.errors > 1)
        fprintf(stderr, "%d errors generated.\n", c.d.errors > c.d.max_errors ? c.d.max_errors : c.d.errors);
    arena_free(&c.a);
    return status;
}
