/* diag.c — printing located diagnostics (see diag.h).  The quoted line is printed with
 * control bytes shown as '?', so binary garbage cannot mess up a terminal, and the caret
 * line copies the tabs of the source line so it lines up in any tab width. */
#include "diag.h"
#include <stdarg.h>

void diag_init(diag *d, const source *src, FILE *out) {
    d->src = src;
    d->out = out ? out : stderr;
    d->errors = d->warnings = 0;
    d->max_errors = 20;
}

int diag_too_many(const diag *d) { return d->errors >= d->max_errors; }

static void quote_line(diag *d, loc at) {
    int n;
    const char *p = source_line(d->src, at.line, &n);
    if (at.line < 1 || (n == 0 && at.col <= 1)) return;
    fputs("    ", d->out);
    for (int i = 0; i < n && i < 400; i++) {
        unsigned char c = (unsigned char)p[i];
        fputc(c == '\t' || c >= 0x20 ? c : '?', d->out);
    }
    fputs("\n    ", d->out);
    /* columns count characters: skip UTF-8 continuation bytes */
    for (int i = 0, col = 1; i < n && col < at.col && i < 400; i++) {
        unsigned char c = (unsigned char)p[i];
        if ((c & 0xC0) == 0x80) continue;
        fputc(c == '\t' ? '\t' : ' ', d->out);
        col++;
    }
    fputs("^\n", d->out);
}

static void report(diag *d, const char *kind, loc at, const char *fmt, va_list ap) {
    if (at.line > 0)
        fprintf(d->out, "%s:%d:%d: %s: ", d->src->path, at.line, at.col, kind);
    else
        fprintf(d->out, "%s: %s: ", d->src->path, kind);
    vfprintf(d->out, fmt, ap);
    fputc('\n', d->out);
    quote_line(d, at);
}

void diag_error(diag *d, loc at, const char *fmt, ...) {
    if (d->errors++ >= d->max_errors) return;
    va_list ap;
    va_start(ap, fmt);
    report(d, "error", at, fmt, ap);
    va_end(ap);
    if (d->errors == d->max_errors) fprintf(d->out, "%s: too many errors; stopping\n", d->src->path);
}

void diag_warning(diag *d, loc at, const char *fmt, ...) {
    d->warnings++;
    va_list ap;
    va_start(ap, fmt);
    report(d, "warning", at, fmt, ap);
    va_end(ap);
}

void diag_note(diag *d, loc at, const char *fmt, ...) {
    if (d->errors > d->max_errors) return;
    va_list ap;
    va_start(ap, fmt);
    report(d, "note", at, fmt, ap);
    va_end(ap);
}
