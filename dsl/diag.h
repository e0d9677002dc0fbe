/* diag.h — compiler diagnostics: `file:line:col: error: message`, the offending line and
 * a caret under the column, as GCC prints them.  Errors are counted so that passes can
 * keep going where it is safe and the driver can stop before the next pass. */
#ifndef NNC_DIAG_H
#define NNC_DIAG_H
#include <stdio.h>
#include "source.h"

typedef struct loc { int line, col, end_line, end_col; } loc;

typedef struct diag {
    const source *src;
    FILE *out;             /* stderr unless a test captures it */
    int errors, warnings;
    int max_errors;        /* stop reporting (and compiling) past this many */
    /* called after each error to add notes of the context (the calls of functions being
     * lowered), NULL for none */
    void (*context)(void *arg);
    void *context_arg;
} diag;

void diag_init(diag *d, const source *src, FILE *out);
void diag_error(diag *d, loc at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_warning(diag *d, loc at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_note(diag *d, loc at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int  diag_too_many(const diag *d);
#endif
