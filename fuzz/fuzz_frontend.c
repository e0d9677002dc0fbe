/* fuzz_frontend.c — libFuzzer target for the model front end and code generator: the
 * input is a .nn file (embedded NULs kept).  It runs the driver's pipeline (parse, lower,
 * shapes, grad, fuse, plan, names; see driver/nnc.c) with diagnostics and --dump-ir
 * output going to a memory stream, and when the model compiles, everything nnc can write:
 * the header, the whole C file with the trainer's main(), each --emit function, --summary
 * and --graph, all into memory streams.  f64 is used when the input's length is odd, so
 * both dtypes are exercised.  Finds crashes, leaks and undefined behaviour (build with
 * -fsanitize=fuzzer,address,undefined; fuzz/run.sh), or replays files (fuzz/replay.c).
 *
 * With NNC_FUZZ_CC set (fuzz/cc_check.sh), every model nnc accepts is also compiled by a C
 * compiler: its trainer C file (with main) and header go to a scratch directory and the
 * command NNC_FUZZ_CC, each {} in it replaced by the C file's path, must succeed, or the
 * target aborts and libFuzzer keeps the input: every accepted model gives C that compiles
 * cleanly (the script's command has -Wall -Wextra -Werror).  Counts go to
 * NNC_FUZZ_CC_STATS when set. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ast.h"
#include "codegen.h"
#include "lower.h"
#include "shape.h"

/* A source from raw bytes, as source_read makes one (NULs kept, lines indexed). */
static source *source_bytes(arena *a, const uint8_t *data, size_t size) {
    source *s = arena_alloc(a, sizeof *s);
    s->path = arena_strdup(a, "fuzz.nn");
    s->text = arena_strndup(a, (const char *)data, size);
    s->len = size;
    int cap = 1;
    for (size_t i = 0; i < size; i++) cap += data[i] == '\n';
    s->line = arena_alloc(a, sizeof(char *) * (size_t)cap);
    s->line[0] = s->text;
    s->nlines = 1;
    for (size_t i = 0; i < size; i++)
        if (s->text[i] == '\n' && i + 1 < size) s->line[s->nlines++] = s->text + i + 1;
    return s;
}

static void emit_to_memory(ir_graph *g, int (*emit)(ir_graph *, FILE *, const emit_opts *),
                           const emit_opts *eo) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return;
    emit(g, f, eo);
    fclose(f);
    free(buf);
}

static void graph_to_memory(ir_graph *g) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return;
    graph_dot(g, f);
    fclose(f);
    free(buf);
}

/* Writes what emit writes for g to path; 0 on success. */
static int emit_to_file(ir_graph *g, int (*emit)(ir_graph *, FILE *, const emit_opts *), const emit_opts *eo,
                        const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    int rc = emit(g, f, eo);
    return fclose(f) || rc ? -1 : 0;
}

/* NNC_FUZZ_CC with every {} replaced by file: the shell command to run. */
static char *cc_command(const char *cmd, const char *file) {
    size_t n = strlen(cmd) + 1, flen = strlen(file);
    for (const char *p = strstr(cmd, "{}"); p; p = strstr(p + 2, "{}")) n += flen;
    char *out = malloc(n), *o = out;
    if (!out) return NULL;
    for (const char *p = cmd; *p;) {
        if (p[0] == '{' && p[1] == '}') {
            memcpy(o, file, flen);
            o += flen;
            p += 2;
        } else {
            *o++ = *p++;
        }
    }
    *o = 0;
    return out;
}

static void cc_check(ir_graph *g, const char *cmd) {
    static char dir[] = "/tmp/nnc-fuzz-cc-XXXXXX";
    static long accepted;
    if (dir[sizeof dir - 2] == 'X' && !mkdtemp(dir)) abort();
    char h[64], c[64];
    snprintf(h, sizeof h, "%s/fuzz.h", dir);
    snprintf(c, sizeof c, "%s/fuzz.c", dir);
    emit_opts eh = {"fuzz.h", "fuzz.nn", NULL, 1, 0, 0, NULL, 0}, ec = {"fuzz.h", "fuzz.nn", NULL, 1, 0, 0, NULL, 0};
    if (emit_to_file(g, emit_h, &eh, h) || emit_to_file(g, emit_c, &ec, c)) abort();
    char *run = cc_command(cmd, c);
    if (!run) abort();
    int rc = system(run);
    free(run);
    if (rc != 0) {
        fprintf(stderr, "fuzz_frontend: nnc accepted this model but its C does not compile (%s, exit %d)\n", c, rc);
        abort();
    }
    accepted++;
    const char *stats = getenv("NNC_FUZZ_CC_STATS");
    FILE *f = stats ? fopen(stats, "w") : NULL;
    if (f) {
        fprintf(f, "%ld\n", accepted);
        fclose(f);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 64 * 1024) return 0;      /* models are small; keep executions fast */
    arena a = {0};
    diag d;
    char *msgs = NULL;
    size_t msglen = 0;
    FILE *out = open_memstream(&msgs, &msglen);
    if (!out) return 0;
    source *src = source_bytes(&a, data, size);
    diag_init(&d, src, out);
    parse_ctx p = {&a, &d, {0}};
    ir_graph *g = NULL;
    int ok = 0;
    if (parse_source(&p, src) == 0) {
        g = ir_graph_new(&a, src);
        g->f64 = size & 1;
        lower_program(g, &p.prog, &d);
        ir_dump(g, out, "lower");
        if (d.errors == 0) {
            shape_pass(g, &d);
            ir_dump(g, out, "shapes");
            if (d.errors == 0 && grad_build(g, &d) == 0 && d.errors == 0) {
                fuse_plan(g);
                plan_memory(g);
                names_assign(g);
                ir_dump(g, out, "names");
                ok = d.errors == 0;
            }
        }
    }
    if (ok) {
        emit_opts eo = {"fuzz.h", "fuzz.nn", NULL, 1, 0, 0, NULL, 0};
        emit_to_memory(g, emit_h, &eo);
        emit_to_memory(g, emit_c, &eo);
        static const char *const which[] = {"forward", "backward", "update", "infer"};
        for (int i = 0; i < 4; i++) {
            emit_opts one = {"model.h", "fuzz.nn", which[i], 0, 0, 0, NULL, 0};
            emit_to_memory(g, emit_c, &one);
        }
        (void)summary_text(g);           /* arena-owned */
        graph_to_memory(g);
        const char *cc = getenv("NNC_FUZZ_CC");
        if (cc && *cc) cc_check(g, cc);
    }
    fclose(out);
    free(msgs);
    arena_free(&a);
    return 0;
}
