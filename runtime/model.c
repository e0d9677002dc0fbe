/* model.c — whole-model helpers behind the generated _init, _save and _load, and the
 * trainer's checkpoints.
 *
 * A generated model keeps all its parameters in one block laid out by its nnr_param
 * table.  Here that table drives initialization (one generator, parameters in table
 * order), parameter files (one safetensors tensor per parameter, named and shaped as in
 * PyTorch's state dict), checkpoints (a parameter file plus the optimizer state block, the
 * input standardization and the run's position in "__metadata__", nnr.h says exactly what)
 * and loading, which validates the whole file before it changes a single parameter and
 * refuses a file written for another model, saying what differs.  The training step
 * asks here, too, below which fraction of nonzeros a backward product goes sparse.
 */
#include "nnr.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static char *param_at(const nnr_model_info *info, void *block, const nnr_param *p) {
    return (char *)block + (size_t)p->offset * nnr_dtype_size(info->dtype);
}

void nnr_model_init(const nnr_model_info *info, void *m, uint64_t seed) {
    size_t es = nnr_dtype_size(info->dtype);
    nnr_rng rng;
    nnr_rng_seed(&rng, seed);
    void *params = info->params(m);
    for (int i = 0; i < info->nparam; i++) {
        const nnr_param *p = &info->param[i];
        nnr_init_fill(param_at(info, params, p), info->dtype, p->rank, p->shape, p->init, &rng);
    }
    memset(info->grads(m), 0, (size_t)info->param_size * es);
    if (info->state_size > 0) memset(info->state(m), 0, (size_t)info->state_size * es);
    *info->step(m) = 0;
    if (info->set_seed) info->set_seed(m, seed);   /* dropout's masks follow the same seed */
}

/* The tensors of a parameter file, borrowing the names and the parameter block; ts has
 * room for nparam + extra entries.  Returns the count filled. */
static int param_tensors(const nnr_model_info *info, const void *params, nnr_tensor *ts) {
    for (int i = 0; i < info->nparam; i++) {
        const nnr_param *p = &info->param[i];
        ts[i].name = (char *)p->name;
        ts[i].dtype = info->dtype;
        ts[i].rank = p->rank;
        memcpy(ts[i].shape, p->shape, sizeof p->shape);
        ts[i].data = param_at(info, (void *)params, p);
    }
    return info->nparam;
}

static const char *schema_str(char *buf, size_t cap, uint64_t hash) {
    snprintf(buf, cap, "%016" PRIx64, hash);
    return buf;
}

/* ---- finite checks ------------------------------------------------------------------- */

int64_t nnr_first_nonfinite(nnr_dtype dt, const void *p, int64_t n) {
    int bad = 0;   /* x - x is 0 for every finite x, NaN for NaN and the infinities */
    if (dt == NNR_F64)
        for (int64_t i = 0; i < n; i++) bad |= !(((const double *)p)[i] - ((const double *)p)[i] == 0);
    else
        for (int64_t i = 0; i < n; i++) bad |= !(((const float *)p)[i] - ((const float *)p)[i] == 0);
    for (int64_t i = 0; bad && i < n; i++)
        if (!isfinite(dt == NNR_F64 ? ((const double *)p)[i] : ((const float *)p)[i])) return i;
    return -1;
}

static double value_at(nnr_dtype dt, const void *p, int64_t i) {
    return dt == NNR_F64 ? ((const double *)p)[i] : ((const float *)p)[i];
}

/* The optimizer state block as the generated update lays it out (codegen/plan.c): `slots`
 * vectors of `per` elements, one per trained element of the parameter block (trained
 * parameters come first, buffers after), then nadam's running product, a double kept in
 * two elements. */
typedef struct state_layout { int slots; int64_t per, tail; } state_layout;

static state_layout layout_of(const nnr_model_info *info) {
    static const int slots[] = {   /* by nnr_opt_kind */
        [NNR_OPT_SGD] = 0,     [NNR_OPT_MOMENTUM] = 1, [NNR_OPT_NESTEROV] = 1, [NNR_OPT_ADAGRAD] = 1,
        [NNR_OPT_RMSPROP] = 1, [NNR_OPT_ADADELTA] = 2, [NNR_OPT_ADAM] = 2,     [NNR_OPT_ADAMAX] = 2,
        [NNR_OPT_NADAM] = 2,   [NNR_OPT_ADAMW] = 2,
    };
    int opt = (int)info->train.opt;
    if (opt < 0 || opt >= (int)(sizeof slots / sizeof *slots)) return (state_layout){0, 0, 0};   /* unknown */
    state_layout l = {slots[opt], 0, opt == NNR_OPT_NADAM ? 2 : 0};
    if (l.slots && info->state_size >= l.tail) l.per = (info->state_size - l.tail) / l.slots;
    if (l.per * l.slots + l.tail != info->state_size) l = (state_layout){0, 0, 0};   /* unknown */
    return l;
}

/* Whether slot k of the optimizer's state is a sum or average of squares (adagrad's,
 * rmsprop's, adadelta's accumulators, the Adam family's second moment: never negative). */
static int squares_slot(nnr_opt_kind opt, int k) {
    switch (opt) {
    case NNR_OPT_ADAGRAD: case NNR_OPT_RMSPROP: case NNR_OPT_ADADELTA: return 1;
    case NNR_OPT_ADAM: case NNR_OPT_ADAMAX: case NNR_OPT_NADAM: case NNR_OPT_ADAMW: return k == 1;
    default: return 0;
    }
}

/* "'h.weight' element 3": the parameter element at offset `off` of the parameter block,
 * into buf (the state's slots are indexed like the block). */
static const char *whose(const nnr_model_info *info, char *buf, size_t cap, int64_t off) {
    buf[0] = '\0';
    for (int k = 0; k < info->nparam; k++) {
        const nnr_param *p = &info->param[k];
        if (off >= p->offset && off < p->offset + p->size)
            snprintf(buf, cap, "'%s' element %lld", p->name, (long long)(off - p->offset));
    }
    if (!buf[0]) snprintf(buf, cap, "padding at offset %lld", (long long)off);
    return buf;
}

/* The first non-finite value of the state block (or, with squares, negative value of a
 * slot of squares), described into buf; 0 when there is none. */
static int state_fault(const nnr_model_info *info, const void *state, int squares, char *buf,
                       size_t cap) {
    state_layout l = layout_of(info);
    int64_t body = info->state_size - l.tail, i = nnr_first_nonfinite(info->dtype, state, body);
    const char *what = "holds %g at element %lld";
    for (int64_t j = 0; squares && i < 0 && j < body; j++)
        if (l.per && squares_slot(info->train.opt, (int)(j / l.per)) &&
            value_at(info->dtype, state, j) < 0) {
            i = j;
            what = "holds %g at element %lld, a negative sum of squares";
        }
    if (i < 0 && l.tail) {   /* nadam's product: a double whatever the dtype */
        double product;
        memcpy(&product, (const char *)state + body * (int64_t)nnr_dtype_size(info->dtype), sizeof product);
        if (!isfinite(product)) {
            snprintf(buf, cap, "'optimizer.state' holds nadam's momentum product %g", product);
            return 1;
        }
    }
    if (i < 0) return 0;
    int n = snprintf(buf, cap, "'optimizer.state' ");
    n += snprintf(buf + n, cap - (size_t)n, what, value_at(info->dtype, state, i), (long long)i);
    char of[160];
    if (l.per) snprintf(buf + n, cap - (size_t)n, " (slot %lld of %s)", (long long)(i / l.per + 1),
                        whose(info, of, sizeof of, i % l.per));
    return 1;
}

/* The first non-finite value of the parameter block, per parameter, into buf. */
static int params_fault(const nnr_model_info *info, const void *block, const char *kind,
                        char *buf, size_t cap) {
    for (int k = 0; k < info->nparam; k++) {
        const nnr_param *p = &info->param[k];
        const char *at = (const char *)block + (size_t)p->offset * nnr_dtype_size(info->dtype);
        int64_t i = nnr_first_nonfinite(info->dtype, at, p->size);
        if (i >= 0) {
            snprintf(buf, cap, "%s '%s' holds %g at element %lld", kind, p->name,
                     value_at(info->dtype, at, i), (long long)i);
            return 1;
        }
    }
    return 0;
}

/* Parameters and state finite: 0, else -1 with the error naming the first fault, and with
 * grads (may be NULL) the first non-finite gradient too. */
static int check_blocks(const nnr_model_info *info, const void *params, const void *state,
                        const void *grads) {
    char what[400], grad[300] = "";
    if (!params_fault(info, params, "parameter", what, sizeof what) &&
        !(state && info->state_size > 0 && state_fault(info, state, 0, what, sizeof what)))
        return 0;
    if (grads && params_fault(info, grads, "the gradient of", grad + 2, sizeof grad - 2))
        memcpy(grad, "; ", 2);
    nnr_set_error("%s%s", what, grad);
    return -1;
}

int nnr_model_check_finite(const nnr_model_info *info, void *m, int with_grads) {
    return check_blocks(info, info->params(m), info->state_size > 0 ? info->state(m) : NULL,
                        with_grads ? info->grads(m) : NULL);
}

/* A file is never written from a block that is not finite: loading would refuse it. */
static int refuse_nonfinite(const nnr_model_info *info, const char *path, const void *params,
                            const void *state) {
    if (!check_blocks(info, params, state, NULL)) return 0;
    char why[1024];
    snprintf(why, sizeof why, "%s", nnr_error());
    nnr_set_error("%s: not written: %s", path, why);
    return -1;
}

int nnr_model_save(const nnr_model_info *info, void *m, const char *path) {
    return nnr_model_save_standardized(info, m, path, NULL);
}

/* A parameter file, with the input standardization when z has one (`m export` and the
 * generated NAME_save keep it, so predictions from the file match the trainer's). */
int nnr_model_save_standardized(const nnr_model_info *info, void *m, const char *path,
                                const nnr_standardization *z) {
    if (refuse_nonfinite(info, path, info->params(m), NULL)) return -1;
    nnr_tensor *ts = calloc((size_t)info->nparam + 3, sizeof *ts);
    if (!ts) {
        nnr_set_error("%s: out of memory", path);
        return -1;
    }
    int n = param_tensors(info, info->params(m), ts);
    if (z && z->n > 0) {
        ts[n++] = (nnr_tensor){(char *)"standardize.mean", NNR_F64, 1, {z->n}, z->mean};
        ts[n++] = (nnr_tensor){(char *)"standardize.std", NNR_F64, 1, {z->n}, z->std};
    }
    char hash[17];
    const char *meta[] = {"nnc_model", info->name, "nnc_schema",
                          schema_str(hash, sizeof hash, info->schema_hash)};
    int rc = nnr_st_write(path, ts, n, meta, 2);
    free(ts);
    return rc;
}

/* ---- checkpoints --------------------------------------------------------------------- */

enum { META_PAIRS = 16 };

/* Metadata values: one buffer per key, so meta[] can point into them, and the JSON text of
 * the CSV names (allocated; NULL: none). */
typedef struct meta_text { char v[META_PAIRS][32]; char *columns, *classes; } meta_text;

/* n strings as a JSON array, for "__metadata__" (free() it); NULL when out of memory or
 * a string is not UTF-8, which JSON cannot hold (the CSV loader stores only UTF-8 names). */
static char *strings_json(char *const *v, int n) {
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_string(v[i]))) json_decref(a), a = NULL;
    char *text = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    return text;
}

static int ckpt_meta(const nnr_model_info *info, const nnr_checkpoint *ck, int64_t step,
                     meta_text *mt, const char **meta) {
    int n = 0;
    char (*v)[32] = mt->v;
#define PAIR(KEY, ...) (snprintf(v[n], sizeof v[n], __VA_ARGS__), meta[2 * n] = KEY, \
                        meta[2 * n + 1] = v[n], n++)
    meta[0] = "nnc_model";
    meta[1] = info->name;
    n = 1;
    PAIR("nnc_schema", "%016" PRIx64, info->schema_hash);
    PAIR("nnc_checkpoint", "1");
    PAIR("step", "%lld", (long long)step);
    PAIR("epoch", "%lld", (long long)ck->epoch);
    PAIR("batch", "%lld", (long long)ck->batch);
    PAIR("epochs", "%lld", (long long)ck->epochs);
    PAIR("examples", "%lld", (long long)ck->examples);
    PAIR("seed", "%llu", (unsigned long long)ck->seed);
    PAIR("lr", "%.17g", ck->lr);
    PAIR("loss_sum", "%.17g", ck->loss_sum);
    if (!isnan(ck->best_loss)) {
        PAIR("best_loss", "%.17g", ck->best_loss);
        PAIR("best_epoch", "%lld", (long long)ck->best_epoch);
    }
#undef PAIR
    mt->columns = ck->columns ? strings_json(ck->columns, ck->ncolumns) : NULL;
    mt->classes = ck->classes ? strings_json(ck->classes, ck->nclasses) : NULL;
    if ((ck->columns && !mt->columns) || (ck->classes && !mt->classes)) {
        free(mt->columns);
        free(mt->classes);
        return -1;
    }
    if (mt->columns) meta[2 * n] = "csv_columns", meta[2 * n + 1] = mt->columns, n++;
    if (mt->classes) meta[2 * n] = "csv_classes", meta[2 * n + 1] = mt->classes, n++;
    return n;
}

int nnr_checkpoint_save(const nnr_model_info *info, void *m, const char *path,
                        const nnr_checkpoint *ck) {
    return nnr_checkpoint_write(info, info->params(m),
                                info->state_size > 0 ? info->state(m) : NULL, *info->step(m),
                                path, ck);
}

int nnr_checkpoint_write(const nnr_model_info *info, const void *params, const void *state,
                         int64_t step, const char *path, const nnr_checkpoint *ck) {
    if (refuse_nonfinite(info, path, params, state)) return -1;
    nnr_tensor *ts = calloc((size_t)info->nparam + 4, sizeof *ts);
    if (!ts) {
        nnr_set_error("%s: out of memory", path);
        return -1;
    }
    int n = param_tensors(info, params, ts);
    if (info->state_size > 0)
        ts[n++] = (nnr_tensor){(char *)"optimizer.state", info->dtype, 1, {info->state_size},
                               (void *)state};
    if (ck->nstd > 0) {
        ts[n++] = (nnr_tensor){(char *)"standardize.mean", NNR_F64, 1, {ck->nstd}, ck->mean};
        ts[n++] = (nnr_tensor){(char *)"standardize.std", NNR_F64, 1, {ck->nstd}, ck->std};
    }
    meta_text mt;
    const char *meta[2 * META_PAIRS];
    int npairs = ckpt_meta(info, ck, step, &mt, meta);
    if (npairs < 0) {
        free(ts);
        nnr_set_error("%s: out of memory for the CSV names in its metadata", path);
        return -1;
    }
    int rc = nnr_st_write(path, ts, n, meta, npairs);
    free(mt.columns);
    free(mt.classes);
    free(ts);
    return rc;
}

void nnr_checkpoint_free(nnr_checkpoint *ck) {
    if (!ck) return;
    free(ck->mean);
    free(ck->std);
    ck->mean = ck->std = NULL;
    ck->nstd = 0;
    free(ck->columns);
    free(ck->classes);
    ck->columns = ck->classes = NULL;
    ck->ncolumns = ck->nclasses = 0;
}

const char *nnr_class_name(const nnr_checkpoint *ck, int k) {
    return ck && ck->classes && k >= 0 && k < ck->nclasses ? ck->classes[k] : NULL;
}

char **nnr_strings_copy(char *const *v, int n) {
    size_t bytes = (size_t)(n + 1) * sizeof(char *);
    for (int i = 0; i < n; i++) bytes += strlen(v[i]) + 1;
    char **out = malloc(bytes);
    if (!out) return NULL;
    char *text = (char *)(out + n + 1);
    for (int i = 0; i < n; i++) {
        out[i] = strcpy(text, v[i]);
        text += strlen(text) + 1;
    }
    out[n] = NULL;
    return out;
}

static int same_shape(const nnr_tensor *t, const nnr_param *p) {
    if (t->rank != p->rank) return 0;
    for (int i = 0; i < p->rank; i++)
        if (t->shape[i] != p->shape[i]) return 0;
    return 1;
}

/* Converts the file's tensor for p into dst, in the model's dtype, after checking it. */
static int load_param(const nnr_model_info *info, const char *path, const nnr_tensors *ts,
                      const nnr_param *p, void *dst) {
    const nnr_tensor *t = nnr_tensors_find(ts, p->name);
    if (!t) {
        nnr_set_error("%s: parameter '%s' is missing", path, p->name);
        return -1;
    }
    if (!same_shape(t, p)) {
        char a[256], b[256];
        nnr_set_error("%s: parameter '%s' has shape %s in the file but %s in model %s", path,
                      p->name, nnr_shape_str(a, sizeof a, t->rank, t->shape),
                      nnr_shape_str(b, sizeof b, p->rank, p->shape), info->name);
        return -1;
    }
    if (t->dtype != NNR_F32 && t->dtype != NNR_F64) {
        nnr_set_error("%s: parameter '%s' has dtype %s; parameters must be F32 or F64", path,
                      p->name, nnr_dtype_name(t->dtype));
        return -1;
    }
    for (int64_t i = 0; i < p->size; i++) {
        double x = t->dtype == NNR_F64 ? ((const double *)t->data)[i] : ((const float *)t->data)[i];
        /* An F64 value beyond F32's range would become infinite in an F32 model. */
        if (!isfinite(x) || (info->dtype == NNR_F32 && !isfinite((float)x))) {
            nnr_set_error("%s: parameter '%s' holds a non-finite value at element %lld", path,
                          p->name, (long long)i);
            return -1;
        }
        if (info->dtype == NNR_F64) ((double *)dst)[i] = x;
        else ((float *)dst)[i] = (float)x;
    }
    return 0;
}

/* What a file's "__metadata__" says, the strings borrowed from its parsed JSON. */
typedef struct file_meta {
    json_t     *root;            /* NULL: the file has no metadata */
    const char *model, *schema;  /* NULL when absent */
} file_meta;

static const char *meta_get(const file_meta *fm, const char *key) {
    json_t *v = fm->root ? json_object_get(fm->root, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int meta_open(const char *path, const nnr_tensors *ts, file_meta *fm) {
    memset(fm, 0, sizeof *fm);
    if (!ts->metadata) return 0;
    json_error_t err;
    if (!(fm->root = json_loads(ts->metadata, 0, &err))) {
        nnr_set_error("%s: unreadable \"__metadata__\": %s", path, err.text);
        return -1;
    }
    fm->model = meta_get(fm, "nnc_model");
    fm->schema = meta_get(fm, "nnc_schema");
    return 0;
}

/* A file whose metadata names another model: refused, with the first parameter that
 * differs when there is one (the message of the failed parameter check). */
static int other_model(const nnr_model_info *info, const char *path, const file_meta *fm,
                       int params_ok) {
    char detail[1024] = "";
    if (!params_ok) snprintf(detail, sizeof detail, "; %s", nnr_error());
    char hash[17];
    nnr_set_error("%s: a checkpoint of model '%s' (schema %s), not of model '%s' (schema %s)%s",
                  path, fm->model ? fm->model : "?", fm->schema ? fm->schema : "?", info->name,
                  schema_str(hash, sizeof hash, info->schema_hash), detail);
    return -1;
}

static int meta_int(const char *path, const file_meta *fm, const char *key, int64_t *out) {
    const char *s = meta_get(fm, key);
    char *end;
    errno = 0;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || end == s || *end || errno || v < 0) {
        nnr_set_error("%s: checkpoint metadata '%s' is %s%s%s, not a count", path, key,
                      s ? "'" : "missing", s ? s : "", s ? "'" : "");
        return -1;
    }
    *out = v;
    return 0;
}

static int meta_real(const char *path, const file_meta *fm, const char *key, double *out) {
    const char *s = meta_get(fm, key);
    char *end;
    double v = s ? strtod(s, &end) : 0;
    if (!s || end == s || *end || !isfinite(v)) {
        nnr_set_error("%s: checkpoint metadata '%s' is %s%s%s, not a number", path, key,
                      s ? "'" : "missing", s ? s : "", s ? "'" : "");
        return -1;
    }
    *out = v;
    return 0;
}

/* The run's position and settings from the metadata of a whole checkpoint. */
static int read_position(const char *path, const file_meta *fm, nnr_checkpoint *ck) {
    const char *s = meta_get(fm, "seed");
    char *end;
    errno = 0;
    unsigned long long sv = s ? strtoull(s, &end, 10) : 0;
    if (!s || end == s || *end || errno || s[0] == '-') {
        nnr_set_error("%s: checkpoint metadata 'seed' is missing or not a seed", path);
        return -1;
    }
    ck->seed = sv;
    if (meta_int(path, fm, "step", &ck->step) || meta_int(path, fm, "epoch", &ck->epoch) ||
        meta_int(path, fm, "batch", &ck->batch) || meta_int(path, fm, "epochs", &ck->epochs) ||
        meta_int(path, fm, "examples", &ck->examples) || meta_real(path, fm, "lr", &ck->lr) ||
        meta_real(path, fm, "loss_sum", &ck->loss_sum))
        return -1;
    ck->best_loss = NAN;
    ck->best_epoch = 0;
    if (meta_get(fm, "best_loss") &&
        (meta_real(path, fm, "best_loss", &ck->best_loss) ||
         meta_int(path, fm, "best_epoch", &ck->best_epoch)))
        return -1;
    return 0;
}

/* The optimizer state tensor of a whole checkpoint, checked against the model. */
static const nnr_tensor *find_state(const nnr_model_info *info, const char *path,
                                    const nnr_tensors *ts) {
    const nnr_tensor *t = nnr_tensors_find(ts, "optimizer.state");
    if (!t) {
        nnr_set_error("%s: no tensor 'optimizer.state'; the model's optimizer keeps %lld "
                      "elements of state", path, (long long)info->state_size);
        return NULL;
    }
    if (t->dtype != info->dtype || t->rank != 1 || t->shape[0] != info->state_size) {
        char a[64];
        nnr_set_error("%s: 'optimizer.state' is %s %s; model %s keeps %s [%lld]", path,
                      nnr_dtype_name(t->dtype), nnr_shape_str(a, sizeof a, t->rank, t->shape),
                      info->name, nnr_dtype_name(info->dtype), (long long)info->state_size);
        return NULL;
    }
    return t;
}

/* standardize.mean / standardize.std, when the file has them, copied into ck. */
static int read_standardize(const char *path, const nnr_tensors *ts, nnr_checkpoint *ck) {
    const nnr_tensor *mean = nnr_tensors_find(ts, "standardize.mean");
    const nnr_tensor *std = nnr_tensors_find(ts, "standardize.std");
    if (!mean && !std) return 0;
    if (!mean || !std || mean->dtype != NNR_F64 || std->dtype != NNR_F64 || mean->rank != 1 ||
        std->rank != 1 || mean->shape[0] != std->shape[0]) {
        nnr_set_error("%s: 'standardize.mean' and 'standardize.std' must be F64 vectors of "
                      "one length", path);
        return -1;
    }
    int64_t n = mean->shape[0];
    ck->mean = malloc((size_t)(n ? n : 1) * sizeof(double));
    ck->std = malloc((size_t)(n ? n : 1) * sizeof(double));
    if (!ck->mean || !ck->std) {
        nnr_checkpoint_free(ck);
        nnr_set_error("%s: out of memory", path);
        return -1;
    }
    memcpy(ck->mean, mean->data, (size_t)n * sizeof(double));
    memcpy(ck->std, std->data, (size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++)
        if (!(ck->std[i] > 0) || !isfinite(ck->mean[i])) {
            nnr_checkpoint_free(ck);
            nnr_set_error("%s: standardization of feature %lld is not usable (std must be > 0)",
                          path, (long long)i);
            return -1;
        }
    ck->nstd = n;
    return 0;
}

/* The metadata key's JSON array of strings into *out (one allocation, nnr_strings_copy's);
 * absent: 0 with *out NULL. */
static int meta_strings(const char *path, const file_meta *fm, const char *key, char ***out,
                        int *n) {
    *out = NULL;
    *n = 0;
    const char *text = meta_get(fm, key);
    if (!text) return 0;
    json_t *a = json_loads(text, 0, NULL);
    size_t count = json_is_array(a) ? json_array_size(a) : 0;
    char **v = count && count < 1u << 24 ? calloc(count, sizeof *v) : NULL;
    for (size_t i = 0; v && i < count; i++)
        if (!(v[i] = (char *)json_string_value(json_array_get(a, i)))) free(v), v = NULL;
    if (v) *out = nnr_strings_copy(v, (int)count);
    free(v);
    json_decref(a);
    if (!*out) {
        nnr_set_error("%s: checkpoint metadata '%s' is not a JSON array of strings (or memory "
                      "ran out)", path, key);
        return -1;
    }
    *n = (int)count;
    return 0;
}

/* csv_columns and csv_classes into ck.  The classes must be distinct and sorted, as the
 * CSV loader stores them and looks labels up among them, and no more than the label's K. */
static int read_csv_names(const nnr_model_info *info, const char *path, const file_meta *fm,
                          nnr_checkpoint *ck) {
    if (meta_strings(path, fm, "csv_columns", &ck->columns, &ck->ncolumns) ||
        meta_strings(path, fm, "csv_classes", &ck->classes, &ck->nclasses))
        return -1;
    int k = 0;
    for (int i = 0; i < info->nio; i++)
        if (info->io[i].kind == NNR_IO_LABEL && info->io[i].classes > k) k = info->io[i].classes;
    for (int i = 1; i < ck->nclasses; i++)
        if (strcmp(ck->classes[i - 1], ck->classes[i]) >= 0) {
            nnr_set_error("%s: checkpoint metadata 'csv_classes' is not sorted and distinct at "
                          "'%s'", path, ck->classes[i]);
            return -1;
        }
    if (ck->nclasses > k) {
        nnr_set_error("%s: checkpoint metadata 'csv_classes' names %d classes; model %s's label "
                      "has %d", path, ck->nclasses, info->name, k);
        return -1;
    }
    return 0;
}

/* Everything of ts that resume = 1 needs, checked before anything is copied. */
static int check_whole(const nnr_model_info *info, const char *path, const file_meta *fm,
                       const nnr_tensors *ts, nnr_checkpoint *ck, const nnr_tensor **state) {
    char hash[17];
    if (!fm->root || !meta_get(fm, "nnc_checkpoint")) {
        nnr_set_error("%s: a parameter file, not a checkpoint (no optimizer state or position "
                      "in \"__metadata__\"); --resume needs a file written by train --save or "
                      "--checkpoint (use --load to start a new run from these parameters)", path);
        return -1;
    }
    if (!fm->schema || strcmp(fm->schema, schema_str(hash, sizeof hash, info->schema_hash))) {
        nnr_set_error("%s: schema %s differs from model %s's %s (the model's inputs, labels or "
                      "dtype changed since the checkpoint was written)", path,
                      fm->schema ? fm->schema : "(none)", info->name, hash);
        return -1;
    }
    if (read_position(path, fm, ck)) return -1;
    *state = NULL;
    if (info->state_size > 0 && !(*state = find_state(info, path, ts))) return -1;
    char why[400];
    if (*state && state_fault(info, (*state)->data, 1, why, sizeof why)) {
        nnr_set_error("%s: %s; training cannot resume from this optimizer state (the file is "
                      "damaged)", path, why);
        return -1;
    }
    return 0;
}

/* The optimizer state of a file loaded for its parameters alone is not used, but a
 * non-finite one says the file is damaged: refused as a non-finite parameter is. */
static int check_any_state(const char *path, const nnr_tensors *ts) {
    const nnr_tensor *t = nnr_tensors_find(ts, "optimizer.state");
    if (!t || (t->dtype != NNR_F32 && t->dtype != NNR_F64) || t->rank != 1) return 0;
    int64_t i = nnr_first_nonfinite(t->dtype, t->data, t->shape[0]);
    if (i < 0) return 0;
    nnr_set_error("%s: 'optimizer.state' holds %g at element %lld; a checkpoint's optimizer "
                  "state must be finite", path, value_at(t->dtype, t->data, i), (long long)i);
    return -1;
}

/* The standardization of ck made z's, with staging for a batch; checked and allocated
 * before the caller changes anything, so that a failure leaves z as it was. */
static int take_standardization(const nnr_model_info *info, const char *path,
                                nnr_checkpoint *ck, nnr_standardization *z) {
    if (ck->nstd && ck->nstd != nnr_data_features(info)) {
        nnr_set_error("%s: standardization of %lld features, but model %s has %lld float input "
                      "features", path, (long long)ck->nstd, info->name,
                      (long long)nnr_data_features(info));
        return -1;
    }
    nnr_standardization next = {ck->nstd, ck->mean, ck->std, NULL};
    size_t bytes = (size_t)info->batch * (size_t)ck->nstd * nnr_dtype_size(info->dtype);
    if (ck->nstd && !(next.stage = nnr_aligned_alloc(64, (bytes + 63) / 64 * 64))) {
        nnr_set_error("%s: out of memory for the standardized inputs of a batch", path);
        return -1;
    }
    nnr_standardization_free(z);
    *z = next;
    ck->mean = ck->std = NULL;   /* now z's */
    ck->nstd = 0;
    return 0;
}

/* nnr_checkpoint_load, and with z, the file's standardization into z. */
static int load_file(const nnr_model_info *info, void *m, const char *path, nnr_checkpoint *ck,
                     int resume, nnr_standardization *z) {
    nnr_tensors ts;
    if (nnr_st_read(path, &ts)) return -1;
    nnr_checkpoint scratch;
    if (!ck) ck = &scratch;
    memset(ck, 0, sizeof *ck);
    ck->best_loss = NAN;
    file_meta fm;
    size_t bytes = (size_t)info->param_size * nnr_dtype_size(info->dtype);
    void *staged = calloc(1, bytes ? bytes : 1);   /* the padding between parameters stays 0 */
    const nnr_tensor *state = NULL;
    int rc = meta_open(path, &ts, &fm);
    if (!staged && !rc) {
        nnr_set_error("%s: out of memory", path);
        rc = -1;
    }
    for (int i = 0; rc == 0 && i < info->nparam; i++)
        rc = load_param(info, path, &ts, &info->param[i], param_at(info, staged, &info->param[i]));
    if (fm.model && strcmp(fm.model, info->name)) rc = other_model(info, path, &fm, rc == 0);
    if (rc == 0 && resume) rc = check_whole(info, path, &fm, &ts, ck, &state);
    if (rc == 0 && !resume) rc = check_any_state(path, &ts);
    if (rc == 0) rc = read_standardize(path, &ts, ck);
    if (rc == 0) rc = read_csv_names(info, path, &fm, ck);
    if (rc == 0 && z) rc = take_standardization(info, path, ck, z);
    if (rc == 0) {
        ck->full = meta_get(&fm, "nnc_checkpoint") != NULL;
        memcpy(info->params(m), staged, bytes);
        if (resume) {
            if (state) memcpy(info->state(m), state->data, (size_t)info->state_size * nnr_dtype_size(info->dtype));
            *info->step(m) = ck->step;
        }
    }
    if (ck == &scratch) nnr_checkpoint_free(ck);
    json_decref(fm.root);
    free(staged);
    nnr_tensors_free(&ts);
    return rc;
}

int nnr_checkpoint_load(const nnr_model_info *info, void *m, const char *path,
                        nnr_checkpoint *ck, int resume) {
    return load_file(info, m, path, ck, resume, NULL);
}

int nnr_model_load(const nnr_model_info *info, void *m, const char *path) {
    return load_file(info, m, path, NULL, 0, NULL);
}

int nnr_model_load_standardized(const nnr_model_info *info, void *m, const char *path,
                                nnr_standardization *z) {
    return load_file(info, m, path, NULL, 0, z);
}

/* ---- the generated API's helpers ------------------------------------------------------ */

const nnr_param *nnr_model_param(const nnr_model_info *info, const char *name) {
    for (int i = 0; name && i < info->nparam; i++)
        if (!strcmp(info->param[i].name, name)) return &info->param[i];
    nnr_set_error("model %s has no parameter '%s'", info->name, name ? name : "(null)");
    return NULL;
}

void nnr_standardization_free(nnr_standardization *z) {
    if (!z) return;
    free(z->mean);
    free(z->std);
    free(z->stage);
    *z = (nnr_standardization){0, NULL, NULL, NULL};
}

int nnr_standardization_set(const nnr_model_info *info, nnr_standardization *z,
                            const double *mean, const double *std, int64_t n) {
    if (n < 0 || (n > 0 && (!mean || !std))) {
        nnr_set_error("model %s: a standardization needs n >= 0 and, for n > 0, mean and std",
                      info->name);
        return -1;
    }
    for (int64_t i = 0; i < n; i++)
        if (!(std[i] > 0) || !isfinite(std[i]) || !isfinite(mean[i])) {
            nnr_set_error("model %s: standardization of feature %lld is not usable (mean %g, "
                          "std %g; std must be finite and > 0)", info->name, (long long)i,
                          mean[i], std[i]);
            return -1;
        }
    nnr_checkpoint ck = {.nstd = n};
    if (n) {
        ck.mean = malloc((size_t)n * sizeof(double));
        ck.std = malloc((size_t)n * sizeof(double));
        if (!ck.mean || !ck.std) {
            nnr_checkpoint_free(&ck);
            nnr_set_error("model %s: out of memory for a standardization", info->name);
            return -1;
        }
        memcpy(ck.mean, mean, (size_t)n * sizeof(double));
        memcpy(ck.std, std, (size_t)n * sizeof(double));
    }
    int rc = take_standardization(info, "standardization", &ck, z);
    nnr_checkpoint_free(&ck);
    return rc;
}

double nnr_gemm_sparse_limit(double below, int large) {
    if (below >= 1) return below;
    return large ? 0.75 * below : below;
}
