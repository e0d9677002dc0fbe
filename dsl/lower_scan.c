/* lower_scan.c — scan(f, xs, init): f(state, xs[t]) over the first axis of xs, one set of
 * parameters for every step (SPEC §1 "Functions, repetition, sharing and scans").
 *
 * A stub: the call is recognized (lower_value_of routes it here) and refused, until the
 * loop form is built on lower_apply (lower_internal.h). */
#include "lower_internal.h"

lvalue call_scan(lower *L, const ast_expr *e) {
    diag_error(L->d, e->at, "scan is not implemented yet");
    return (lvalue){.kind = LV_BAD, .at = e->at};
}
