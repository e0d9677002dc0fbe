#!/usr/bin/env python3
"""equal.py HOST_H EMB_H OUT_C — writes the C program that holds one model's embedded
target (nnc --target embedded, its global symbols renamed emb_*) against its host target
(OpenBLAS, the runtime) on the same parameters and the same random batch:

- NAME_init(seed) gives the same parameters (the initializers are written into the
  embedded file: exact);
- the loss of NAME_loss_grad, its gradients and predict's outputs agree within 1e-5,
  relative to each tensor's largest magnitude (the products are loops there, OpenBLAS
  here: sums in another order), a gradient relative to the model's largest gradient at
  least (one that is 0 in exact arithmetic, a bias before batchnorm, is rounding noise);
- NAME_update from the same gradients gives the same parameters within 1e-5.  The step
  is checked from equal gradients because Adam's first step is lr * g / (|g| + eps),
  about lr * sign(g): a gradient within rounding of 0 (1e-9 against eps = 1e-8) moves
  its parameter by a different fraction of lr (measured 1.8e-5 on the Fashion MLP,
  against 1e-3 for lr), which says nothing about either target.

The program prints what it compared and exits 1 on a difference."""
import re, sys

host_h, emb_h, out_c = sys.argv[1:4]
text = open(emb_h).read()
name = re.search(r"^typedef struct (\w+) \1;", text, re.M).group(1)


def proto(fn):
    """The parameter types after (m, n) of function NAME_fn in the embedded header."""
    m = re.search(r"^\s*(?:float|double|void)\s+%s_%s\(%s \*m, int n(.*?)\);" % (name, fn, name), text, re.M)
    if not m:
        return None
    return [p.strip().rsplit(" ", 1)[0].rstrip("*").strip() + " *" for p in m.group(1).split(",")[1:]]


trains = proto("loss_grad") is not None   # not with --infer-only: then init and predict alone
lg, pr = proto("loss_grad") or [], proto("predict")
pins = [t for t in pr if t.startswith("const")]
pouts = [t for t in pr if not t.startswith("const")]
T = "double" if re.search(r"^(double|const double) \*?%s_params" % name, text, re.M) else "float"
o = []
w = o.append
w('#include <math.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include "%s"\n' % host_h)
w("typedef struct emb_model emb_model;")
w("#define EMB_TRAINS %d" % trains)
w("emb_model *emb_%s_new(void);\nvoid emb_%s_init(emb_model *m, uint64_t seed);" % (name, name))
w("%s *emb_%s_params(emb_model *m);" % (T, name))
if trains:
    w("%s emb_%s_loss_grad(emb_model *m, int n%s);" % (T, name, "".join(", " + t for t in lg)))
    w("void emb_%s_update(emb_model *m);\n%s *emb_%s_grads(emb_model *m);" % (name, T, name))
w("void emb_%s_predict(emb_model *m, int n%s);" % (name, "".join(", " + t for t in pr)))
w("const char *emb_%s_error(void);" % name)
args = lambda types, base: "".join(", (%s)%s[%d]" % (t, base, i) for i, t in enumerate(types))
w("""
static int bad = 0;
/* a and b of count elements agree within tol of the larger of their largest magnitudes */
static void near_at(const char *what, const %(T)s *a, const %(T)s *b, int64_t count, double tol, double floor) {
    double scale = floor, worst = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < count; i++) {
        if (fabs((double)a[i]) > scale) scale = fabs((double)a[i]);
        if (fabs((double)b[i]) > scale) scale = fabs((double)b[i]);
    }
    for (int64_t i = 0; i < count; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= worst)) worst = d, at = i;
    }
    int ok = worst <= tol * (scale > 0 ? scale : 1);
    printf("%%-4s %%-40s %%lld elements, largest %%.3g, worst difference %%.3g (relative %%.2g) at %%lld\\n",
           ok ? "ok" : "FAIL", what, (long long)count, scale, worst, scale > 0 ? worst / scale : worst, (long long)at);
    bad |= !ok;
}

static void near(const char *what, const %(T)s *a, const %(T)s *b, int64_t count, double tol) {
    near_at(what, a, b, count, tol, 0);
}

#if EMB_TRAINS
static double largest(const %(T)s *a, int64_t count) {
    double m = 0;
    for (int64_t i = 0; i < count; i++) m = fabs((double)a[i]) > m ? fabs((double)a[i]) : m;
    return m;
}
#endif

static double uniform(void) { return rand() / (RAND_MAX + 1.0); }

int main(void) {
    const nnr_model_info *info = %(P)s_info();
    %(P)s *h = %(P)s_new();
    emb_model *e = emb_%(P)s_new();
    if (!h || !e) { fprintf(stderr, "cannot create the models\\n"); return 1; }
    %(P)s_init(h, 11);
    emb_%(P)s_init(e, 11);
    near("init(11): parameters", %(P)s_params(h), emb_%(P)s_params(e), info->param_size, 0);
    int n = info->batch > 1 ? info->batch - 1 : 1;   /* a call of fewer than BATCH examples */
    void *in[64];
    srand(5);
    for (int k = 0; k < info->nio; k++) {
        const nnr_io *io = &info->io[k];
        if (io->classes) {
            int32_t *c = malloc(sizeof *c * (size_t)(n * io->size));
            for (int64_t i = 0; i < n * io->size; i++) c[i] = (int32_t)(uniform() * io->classes);
            in[k] = c;
        } else {
            %(T)s *x = malloc(sizeof *x * (size_t)(n * io->size));
            for (int64_t i = 0; i < n * io->size; i++) x[i] = (%(T)s)(2 * uniform() - 1);
            in[k] = x;
        }
    }
    /* a target in [0, 1] suits every loss a target feeds (bce's included) */
    for (int k = 0; k < info->nio; k++)
        if (info->io[k].kind == NNR_IO_TARGET)
            for (int64_t i = 0; i < n * info->io[k].size; i++) ((%(T)s *)in[k])[i] = (%(T)s)uniform();
#if EMB_TRAINS
    %(T)s lh = %(P)s_loss_grad(h, n%(hargs)s);
    %(T)s le = emb_%(P)s_loss_grad(e, n%(eargs)s);
    if (lh != lh || le != le) {
        fprintf(stderr, "a loss is NaN: host %%g (%%s), embedded %%g (%%s)\\n", lh, nnr_error(), le, emb_%(P)s_error());
        return 1;
    }
    near("loss_grad: the loss", &lh, &le, 1, 1e-5);
    /* a gradient that is 0 in exact arithmetic (a bias before batchnorm) is rounding noise in
     * both: each tensor is compared relative to the model's largest gradient at least */
    double gmax = largest(%(P)s_grads(h), info->param_size);
    for (int i = 0; i < info->nparam; i++) {
        const nnr_param *p = &info->param[i];
        if (p->buffer) continue;   /* not trained: no gradient */
        char what[200];
        snprintf(what, sizeof what, "gradient of %%s", p->name);
        near_at(what, %(P)s_grads(h) + p->offset, emb_%(P)s_grads(e) + p->offset, p->size, 1e-5, gmax);
    }
    near("forward: buffers and parameters", %(P)s_params(h), emb_%(P)s_params(e), info->param_size, 1e-5);
    /* the update from one set of gradients, on one set of parameters */
    memcpy(emb_%(P)s_params(e), %(P)s_params(h), sizeof(%(T)s) * (size_t)info->param_size);
    memcpy(emb_%(P)s_grads(e), %(P)s_grads(h), sizeof(%(T)s) * (size_t)(info->param_size ? info->param[0].offset : 0));
    int64_t trainable = 0;
    for (int i = 0; i < info->nparam; i++)
        if (!info->param[i].buffer && info->param[i].offset + info->param[i].size > trainable)
            trainable = info->param[i].offset + info->param[i].size;
    memcpy(emb_%(P)s_grads(e), %(P)s_grads(h), sizeof(%(T)s) * (size_t)trainable);
    %(P)s_update(h);
    emb_%(P)s_update(e);
    near("update: parameters", %(P)s_params(h), emb_%(P)s_params(e), info->param_size, 1e-5);
#endif
    void *out[16], *oute[16];
    for (int j = 0; j < info->nout; j++) {
        out[j] = calloc((size_t)(n * info->out[j].size), sizeof(%(T)s));
        oute[j] = calloc((size_t)(n * info->out[j].size), sizeof(%(T)s));
    }
    const void *pin[64];
    int npin = 0;
    for (int k = 0; k < info->nio; k++)
        if (info->io[k].kind == NNR_IO_INPUT) pin[npin++] = in[k];
    (void)npin;
    %(P)s_predict(h, n%(hin)s%(hout)s);
    emb_%(P)s_predict(e, n%(ein)s%(eout)s);
    for (int j = 0; j < info->nout; j++) {
        char what[200];
        snprintf(what, sizeof what, "predict: %%s", info->out[j].name);
        near(what, out[j], oute[j], n * info->out[j].size, 1e-5);
    }
    printf("%%s: %%s\\n", info->name, bad ? "DIFFERENT" : "the same within 1e-5");
    for (int k = 0; k < info->nio; k++) free(in[k]);
    for (int j = 0; j < info->nout; j++) free(out[j]), free(oute[j]);
    %(P)s_free(h);   /* nothing left for LeakSanitizer (scripts/test.sh --sanitize) */
    return bad;
}""" % {"T": T, "P": name, "hargs": "".join(", in[%d]" % i for i in range(len(lg))),
        "eargs": args(lg, "in"),
        "hin": "".join(", pin[%d]" % i for i in range(len(pins))),
        "hout": "".join(", out[%d]" % i for i in range(len(pouts))),
        "ein": "".join(", (%s)pin[%d]" % (t, i) for i, t in enumerate(pins)),
        "eout": "".join(", (%s)oute[%d]" % (t, i) for i, t in enumerate(pouts))})
open(out_c, "w").write("\n".join(o))
