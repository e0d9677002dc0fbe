/* nnc.c — the driver: command line, the pipeline, the files nnc writes.
 *
 * The whole compiler is the list `pipeline` below, run in order over one compilation
 * (one arena, one diagnostics sink, one IR graph): parse, lower to IR, infer shapes,
 * differentiate, fuse, plan memory, name.  `--dump-ir` prints the IR after every pass
 * from `lower` on.  The requested output (C and header, --exe, --summary, --emit,
 * --graph) is written from the final graph.  Exit status: 0 success, 1 errors in the
 * model, 2 usage or I/O errors (SPEC §2). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "ast.h"
#include "codegen.h"
#include "lower.h"
#include "shape.h"

#ifndef NNC_VERSION
#define NNC_VERSION "dev"
#endif

typedef struct options {
    const char *input, *output, *emit, *dtype, *max_memory;
    int exe, summary, graph, dump_ir, verbose;
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
    lower_program(c->g, &c->parse.prog, &c->d);
    return c->d.errors;
}

static int pass_shapes(compilation *c) {
    shape_pass(c->g, &c->d);
    return c->d.errors;
}

static int pass_grad(compilation *c) { return grad_build(c->g, &c->d) ? 1 : c->d.errors; }
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

static char *replace_ext(const char *path, const char *ext) {
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    size_t stem = dot && (!slash || dot > slash) ? (size_t)(dot - path) : strlen(path);
    char *s = malloc(stem + strlen(ext) + 1);
    if (!s) return NULL;
    memcpy(s, path, stem);
    strcpy(s + stem, ext);
    return s;
}

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static int write_file(compilation *c, const char *path,
                      int (*emit)(ir_graph *, FILE *, const emit_opts *), const emit_opts *eo) {
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "nnc: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = emit(c->g, f, eo);
    if (fclose(f) != 0 || rc != 0) {
        fprintf(stderr, "nnc: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* model.c and model.h (codegen/emit_api.c, the kernels in codegen/emit_*.c); with --exe
 * also the trainer program (codegen/build.c). */
static int write_outputs(compilation *c) {
    const options *o = c->opt;
    char *stem = o->output ? strdup(o->output) : replace_ext(base_name(o->input), "");
    if (!o->exe && o->output) {
        free(stem);
        stem = replace_ext(o->output, "");
    }
    char *cpath = malloc(strlen(stem) + 3), *hpath = malloc(strlen(stem) + 3);
    sprintf(cpath, "%s.c", stem);
    sprintf(hpath, "%s.h", stem);
    const char *cfile = o->exe || !o->output ? cpath : o->output;
    emit_opts eo = {base_name(hpath), o->input, NULL, o->exe};
    int rc = write_file(c, hpath, emit_h, &eo) || write_file(c, cfile, emit_c, &eo);
    if (rc == 0 && o->exe && build_exe(cfile, stem, o->verbose) != 0) rc = -1;
    free(stem);
    free(cpath);
    free(hpath);
    return rc ? -1 : 0;
}

static int write_graph(compilation *c) {
    const char *path = c->opt->output;
    FILE *f = path && strcmp(path, "-") ? fopen(path, "w") : stdout;
    if (!f) {
        fprintf(stderr, "nnc: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    graph_dot(c->g, f);
    if (f != stdout && fclose(f) != 0) {
        fprintf(stderr, "nnc: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- command line ------------------------------------------------------------------- */

static void usage(FILE *f) {
    fputs("usage: nnc MODEL.nn [-o FILE] [options]\n"
          "\n"
          "  nnc MODEL.nn -o model.c        write model.c and model.h (forward, backward, update)\n"
          "  nnc MODEL.nn --exe -o model    also compile and link the trainer program `model`\n"
          "                                 (keeping model.c and model.h beside it)\n"
          "  nnc MODEL.nn --summary         table: name, op, output shape, parameters, FLOPs, bytes\n"
          "  nnc MODEL.nn --emit PASS       print one generated function: forward, backward, update\n"
          "  nnc MODEL.nn --graph -o g.dot  forward and backward graphs for Graphviz (dot -Tpng)\n"
          "\n"
          "options:\n"
          "  --dtype f32|f64   precision of every float tensor (default f32; f64 uses dgemm)\n"
          "  --max-memory SIZE refuse a model whose memory plan (params, grads, optimizer state,\n"
          "                    activations) is larger: bytes, or with K, M, G or T (powers of 1024);\n"
          "                    0 or none: no limit (default: the machine's physical memory)\n"
          "  --dump-ir         print the IR after each pass to stderr\n"
          "  -v                print the C compiler command (--exe)\n"
          "  --help, --version\n"
          "\n"
          "environment: NNC_CC (C compiler, default cc), NNC_CFLAGS (extra flags for --exe)\n"
          "exit status: 0 success, 1 errors in the model, 2 usage or I/O error\n", f);
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

static int parse_args(int argc, char **argv, options *o) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **value = NULL;
        if (!strcmp(a, "-o")) value = &o->output;
        else if (!strcmp(a, "--emit")) value = &o->emit;
        else if (!strcmp(a, "--dtype")) value = &o->dtype;
        else if (!strcmp(a, "--max-memory")) value = &o->max_memory;
        else if (!strncmp(a, "--max-memory=", 13)) o->max_memory = a + 13;
        else if (!strncmp(a, "--emit=", 7)) o->emit = a + 7;
        else if (!strncmp(a, "--dtype=", 8)) o->dtype = a + 8;
        else if (!strcmp(a, "--exe")) o->exe = 1;
        else if (!strcmp(a, "--summary")) o->summary = 1;
        else if (!strcmp(a, "--graph")) o->graph = 1;
        else if (!strcmp(a, "--dump-ir")) o->dump_ir = 1;
        else if (!strcmp(a, "-v")) o->verbose = 1;
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
    if (!o->input) {
        fprintf(stderr, "nnc: no model file given (see nnc --help)\n");
        return -1;
    }
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
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return 0;
    }
    if (argc == 2 && !strcmp(argv[1], "--version")) {
        printf("nnc %s\n", NNC_VERSION);
        return 0;
    }
    options opt = {0};
    if (parse_args(argc, argv, &opt)) return 2;
    compilation c = {.opt = &opt};
    c.src = source_read(&c.a, opt.input);
    if (!c.src) {
        fprintf(stderr, "nnc: cannot read %s: %s\n", opt.input, strerror(errno));
        arena_free(&c.a);
        return 2;
    }
    diag_init(&c.d, c.src, stderr);
    int status = 0;
    if (compile(&c) != 0) {
        status = 1;
    } else if (opt.summary) {
        fputs(summary_text(c.g), stdout);
    } else if (opt.emit) {
        emit_opts eo = {"model.h", opt.input, opt.emit, 0};
        status = emit_c(c.g, stdout, &eo) ? 2 : 0;
    } else if (opt.graph) {
        status = write_graph(&c) ? 2 : 0;
    } else {
        status = write_outputs(&c) ? 2 : 0;
    }
    if (status == 1 && c.d.errors > 1)
        fprintf(stderr, "%d errors generated.\n", c.d.errors > c.d.max_errors ? c.d.max_errors : c.d.errors);
    arena_free(&c.a);
    return status;
}
