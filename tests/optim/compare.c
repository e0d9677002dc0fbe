/* compare.c — the optimizer conformance test's comparator (tests/optim/run.sh).
 *
 * usage: optim_compare GOT.safetensors WANT.safetensors [BASE.safetensors] [--tol T]
 *
 * For every tensor of WANT (PyTorch's parameters after the steps), GOT must hold a tensor
 * of the same name and shape; their worst difference is measured against the tensor's
 * largest magnitude, max|got - want| / max|want|, and, when BASE (the parameters before
 * the steps) is given, also against how far the steps moved it, max|got - want| /
 * max|want - base|, which a small update cannot hide in.  Prints one line per tensor and
 * the worst of each on the last line (`max rel err X (of the change: Y)`); exits 0 when
 * every error is at most T (default 1e-9), 1 when one is above it or a tensor is missing
 * or misshapen, 2 on usage or I/O errors.  Tensors may be F32 or F64.
 */
#include "nnr.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double at(const nnr_tensor *t, int64_t i) {
    return t->dtype == NNR_F64 ? ((const double *)t->data)[i] : ((const float *)t->data)[i];
}

static int same_shape(const nnr_tensor *a, const nnr_tensor *b) {
    if (a->rank != b->rank) return 0;
    for (int i = 0; i < a->rank; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

static int floating(const nnr_tensor *t) { return t->dtype == NNR_F32 || t->dtype == NNR_F64; }

int main(int argc, char **argv) {
    const char *path[3] = {NULL, NULL, NULL};
    int np = 0;
    double tol = 1e-9;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tol") && i + 1 < argc) {
            char *end;
            tol = strtod(argv[++i], &end);
            if (*end || !(tol >= 0)) {
                fprintf(stderr, "optim_compare: bad --tol '%s'\n", argv[i]);
                return 2;
            }
        } else if (np < 3) {
            path[np++] = argv[i];
        } else {
            np = 0;
            break;
        }
    }
    if (np < 2) {
        fprintf(stderr, "usage: %s GOT.safetensors WANT.safetensors [BASE.safetensors] [--tol T]\n",
                argv[0]);
        return 2;
    }
    nnr_tensors ts[3];
    memset(ts, 0, sizeof ts);
    for (int k = 0; k < np; k++)
        if (nnr_st_read(path[k], &ts[k])) {
            fprintf(stderr, "optim_compare: %s\n", nnr_error());
            for (int j = 0; j < k; j++) nnr_tensors_free(&ts[j]);
            return 2;
        }
    const nnr_tensors *got = &ts[0], *want = &ts[1], *base = np > 2 ? &ts[2] : NULL;
    int bad = 0;
    double worst = 0, worst_change = 0;
    for (int i = 0; i < want->n; i++) {
        const nnr_tensor *w = &want->t[i];
        const nnr_tensor *g = nnr_tensors_find(got, w->name);
        const nnr_tensor *b = base ? nnr_tensors_find(base, w->name) : NULL;
        if (!g || !same_shape(g, w) || !floating(g) || !floating(w)) {
            printf("  %-12s %s\n", w->name, g ? "has another shape or dtype" : "is missing");
            bad = 1;
            continue;
        }
        if (base && (!b || !same_shape(b, w) || !floating(b))) {
            printf("  %-12s is missing or misshapen in %s\n", w->name, path[2]);
            bad = 1;
            continue;
        }
        double diff = 0, mag = 0, change = 0;
        for (int64_t e = 0; e < nnr_tensor_numel(w); e++) {
            double d = fabs(at(g, e) - at(w, e));
            if (!(d <= diff)) diff = d;             /* NaN sticks */
            if (fabs(at(w, e)) > mag) mag = fabs(at(w, e));
            if (b && fabs(at(w, e) - at(b, e)) > change) change = fabs(at(w, e) - at(b, e));
        }
        double rel = diff / (mag > 0 ? mag : 1);
        double rel_change = diff / (change > 0 ? change : 1);
        if (!(rel <= worst)) worst = rel;
        if (b && !(rel_change <= worst_change)) worst_change = rel_change;
        int over = !(rel <= tol) || (b && !(rel_change <= tol));
        if (b)
            printf("  %-12s rel err %.3g  of the change %.3g (max |change| %.3g)%s\n", w->name, rel,
                   rel_change, change, over ? "  ABOVE TOLERANCE" : "");
        else
            printf("  %-12s rel err %.3g%s\n", w->name, rel, over ? "  ABOVE TOLERANCE" : "");
        bad |= over;
    }
    if (base) printf("max rel err %.3g (of the change: %.3g)\n", worst, worst_change);
    else printf("max rel err %.3g\n", worst);
    for (int k = 0; k < np; k++) nnr_tensors_free(&ts[k]);
    return bad;
}
