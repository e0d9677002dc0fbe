/* error.c — the runtime's last error message.
 *
 * Functions that fail record "FILE: what is wrong" here and return -1; callers read it
 * back with nnr_error().  The buffer is per thread so a data loader running beside the
 * trainer cannot overwrite the message the trainer is about to print.  A message about a
 * file that stands for something else (the trainer's copy of standard input) names that
 * instead (nnr_error_alias).
 */
#include "nnr.h"

#include <stdarg.h>
#include <string.h>

#define NNR_ERROR_MAX 1024

static _Thread_local char last[NNR_ERROR_MAX];
static char alias_path[64], alias_name[64];   /* nnr_error_alias: one, set before threads */

void nnr_error_alias(const char *path, const char *name) {
    snprintf(alias_path, sizeof alias_path, "%s", path ? path : "");
    snprintf(alias_name, sizeof alias_name, "%s", name ? name : "");
}

const char *nnr_error(void) { return last; }

void nnr_set_error(const char *fmt, ...) {
    /* Format into a scratch buffer first: callers may pass nnr_error() itself as an
     * argument to add context, and vsnprintf may not read from the buffer it writes. */
    char tmp[NNR_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    size_t n = strlen(alias_path);
    if (n && strncmp(tmp, alias_path, n) == 0 && tmp[n] == ':')   /* "PATH: what is wrong" */
        snprintf(last, sizeof last, "%s%s", alias_name, tmp + n);
    else
        memcpy(last, tmp, sizeof tmp);
}
