/* error.c — the runtime's last error message.
 *
 * Functions that fail record "FILE: what is wrong" here and return -1; callers read it
 * back with nnr_error().  The buffer is per thread so a data loader running beside the
 * trainer cannot overwrite the message the trainer is about to print.
 */
#include "nnr.h"

#include <stdarg.h>
#include <string.h>

#define NNR_ERROR_MAX 1024

static _Thread_local char last[NNR_ERROR_MAX];

const char *nnr_error(void) { return last; }

void nnr_set_error(const char *fmt, ...) {
    /* Format into a scratch buffer first: callers may pass nnr_error() itself as an
     * argument to add context, and vsnprintf may not read from the buffer it writes. */
    char tmp[NNR_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    memcpy(last, tmp, sizeof tmp);
}
