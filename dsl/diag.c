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
    d->context = NULL;
    d->context_arg = NULL;
}

int diag_too_many(const diag *d) { return d->errors >= d->max_errors; }

/* Length of the valid UTF-8 character at p (at most n bytes), or 0 when it is not one. */
static int utf8_len(const unsigned char *p, int n) {
    int len = p[0] < 0x80 ? 1 : (p[0] & 0xE0) == 0xC0 ? 2 : (p[0] & 0xF0) == 0xE0 ? 3 : (p[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || len > n || (len == 2 && p[0] < 0xC2)) return 0;
    for (int i = 1; i < len; i++)
        if ((p[i] & 0xC0) != 0x80) return 0;
    return len;
}

/* Prints the source line (a window of it around a far column) and a caret under the
 * column.  Control bytes and invalid UTF-8 print as '?'; the caret line copies tabs. */
static void quote_line(diag *d, loc at) {
    int n;
    const unsigned char *p = (const unsigned char *)source_line(d->src, at.line, &n);
    if (at.line < 1 || (n == 0 && at.col <= 1)) return;
    int skip = at.col > 300 ? at.col - 200 : 0;    /* characters left out before the window */
    int i = 0, col = 1;
    while (i < n && col <= skip) {
        int len = utf8_len(p + i, n - i);
        i += len ? len : 1;
        col++;
    }
    fputs(skip ? "    ..." : "    ", d->out);
    int start = i, caret = -1, width = 0;
    for (int shown = 0; i < n && shown < 400; shown++) {
        if (col == at.col) caret = width;
        int len = utf8_len(p + i, n - i);
        if (len > 1) fwrite(p + i, 1, (size_t)len, d->out);
        else fputc(len == 1 && (p[i] >= 0x20 || p[i] == '\t') && p[i] != 0x7f ? p[i] : '?', d->out);
        i += len ? len : 1;
        col++;
        width++;
    }
    if (caret < 0) caret = width;
    fputs(skip ? "\n       " : "\n    ", d->out);
    for (int k = start, c = 0; c < caret && k < n; c++) {
        int len = utf8_len(p + k, n - k);
        fputc(p[k] == '\t' ? '\t' : ' ', d->out);
        k += len ? len : 1;
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
    if (d->context) d->context(d->context_arg);
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
