/* source.c — reading model files and indexing their lines (see source.h). */
#include "source.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void index_lines(arena *a, source *s) {
    int cap = 1;
    for (size_t i = 0; i < s->len; i++) cap += s->text[i] == '\n';
    s->line = arena_alloc(a, sizeof(char *) * (size_t)cap);
    s->line[0] = s->text;
    s->nlines = 1;
    for (size_t i = 0; i < s->len; i++)
        if (s->text[i] == '\n' && i + 1 < s->len) s->line[s->nlines++] = s->text + i + 1;
}

static source *source_make(arena *a, const char *path, char *text, size_t len) {
    source *s = arena_alloc(a, sizeof *s);
    s->path = arena_strdup(a, path);
    s->text = text;
    s->len = len;
    index_lines(a, s);
    return s;
}

source *source_read(arena *a, const char *path) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) return NULL;
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0;) {
        len += got;
        if (cap - len - 1 == 0) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) { free(buf); buf = NULL; }
            buf = nb;
        }
    }
    int err = ferror(f) ? errno : buf ? 0 : ENOMEM;
    if (f != stdin) fclose(f);
    if (err) {
        free(buf);
        errno = err;
        return NULL;
    }
    char *text = arena_strndup(a, buf, len);
    free(buf);
    return source_make(a, path, text, len);
}

source *source_from_string(arena *a, const char *path, const char *text) {
    size_t len = strlen(text);
    return source_make(a, path, arena_strndup(a, text, len), len);
}

const char *source_line(const source *s, int lineno, int *n) {
    if (lineno < 1 || lineno > s->nlines) { *n = 0; return ""; }
    const char *p = s->line[lineno - 1], *end = s->text + s->len;
    const char *q = p;
    while (q < end && *q != '\n') q++;
    *n = (int)(q - p);
    if (*n > 0 && p[*n - 1] == '\r') (*n)--;
    return p;
}
