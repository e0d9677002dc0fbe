/* session.c — what the trainer's commands share: the session (everything a command holds,
 * released in one place on every path), opening the model from a checkpoint or a seed, the
 * data of a command-line option loaded and standardized, and the evaluator, which scores a
 * data set in batches that point straight into its columns and hands predict, grads and
 * gradcheck the same batches.
 */
#include "nnr.h"
#include "trainer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void nnr_session_free(const nnr_model_info *info, session *s) {
    if (s->m) info->destroy(s->m);
    nnr_data_free(&s->data);
    nnr_data_free(&s->val);
    nnr_data_free(&s->test);
    free(s->ev.in);
    free(s->ev.inputs);
    for (int k = 0; s->ev.out && k < info->nout; k++) free(s->ev.out[k]);
    free(s->ev.out);
    free(s->ev.confusion);
    for (int k = 0; s->stage && k < info->nio; k++) free(s->stage[k]);
    free(s->stage);
    free(s->order);
    free(s->acc);
    free(s->block);
    if (s->file && s->file != stdout) fclose(s->file);
    nnr_checkpoint_free(&s->ck);
}

/* NAME_new failed: what it asked for, block by block (its four blocks of model dtype). */
int nnr_session_no_memory(const nnr_model_info *info) {
    long long es = info->dtype == NNR_F64 ? 8 : 4, p = (long long)info->param_size * es,
              st = (long long)info->state_size * es, a = (long long)info->act_size * es;
    nnr_set_error("out of memory: model %s asked for %lld bytes (parameters %lld, gradients %lld, optimizer "
                  "state %lld, activations for a batch of %d: %lld); `nnc --summary` shows the plan, a "
                  "smaller batch shrinks the activations", info->name, 2 * p + st + a, p, p, st, info->batch, a);
    return -1;
}

/* The model, its parameters read from `load` (with the file's standardization, if any,
 * into s->ck) or else initialized from `seed`. */
int nnr_session_open_model(const nnr_model_info *info, session *s, const char *load,
                           uint64_t seed) {
    if (!(s->m = info->create())) return nnr_session_no_memory(info);
    s->ck.best_loss = NAN;
    if (load) return nnr_checkpoint_load(info, s->m, load, &s->ck, 0);
    nnr_model_init(info, s->m, seed);
    return 0;
}

/* The data of one option (--train, --test, ...): NAME=FILE specs, or with --label-column
 * one CSV file with a header that feeds the whole model, its columns and class names
 * checked against those in `names` (the loaded checkpoint's, or the training set's); the
 * training set (--train) stores there what names does not have yet. */
int nnr_session_load_data(const nnr_model_info *info, const options *o, const char *opt,
                          const specs *sp, unsigned need, nnr_checkpoint *names,
                          nnr_dataset *d) {
    if (o->label_column && (sp->n != 1 || strchr(sp->v[0], '='))) {
        nnr_set_error("%s: with --label-column give one CSV FILE with a header row, not NAME=FILE",
                      opt);
        return -1;
    }
    int learn = strcmp(opt, "--train") == 0;
    if (o->label_column ? nnr_data_load_csv(info, sp->v[0], o->label_column, need, names, learn,
                                            d) == 0
                        : nnr_data_load(info, sp->n, sp->v, need, d) == 0)
        return 0;
    nnr_set_error("%s: %s", opt, nnr_error());
    return -1;
}

/* A data set from either NAME=FILE specs (option `opt`) or one text file (option
 * `text_opt`, when `text` is given). */
int nnr_session_load_set(const nnr_model_info *info, const options *o, const char *opt,
                         const specs *sp, const char *text_opt, const char *text,
                         nnr_checkpoint *names, nnr_dataset *d) {
    if (!text) return nnr_session_load_data(info, o, opt, sp, all_kinds(info), names, d);
    if (nnr_data_load_text(info, text, d) == 0) return 0;
    nnr_set_error("%s: %s", text_opt, nnr_error());
    return -1;
}

/* Standardizes every loaded data set of s with the statistics in s->ck, if it has any. */
int nnr_session_apply_standardize(const nnr_model_info *info, session *s, const char *from) {
    if (!s->ck.nstd) return 0;
    if (s->ck.nstd != nnr_data_features(info)) {
        nnr_set_error("%s: standardization of %lld features, but model %s has %lld float input "
                      "features", from, (long long)s->ck.nstd, info->name,
                      (long long)nnr_data_features(info));
        return -1;
    }
    nnr_dataset *sets[] = {&s->data, &s->val, &s->test};
    for (int i = 0; i < 3; i++)
        if (sets[i]->col) nnr_data_standardize(info, sets[i], s->ck.mean, s->ck.std);
    return 0;
}

static int has_accuracy(const nnr_model_info *info) {
    if (info->acc_out < 0 || info->acc_label < 0) return 0;
    const nnr_io *label = &info->io[info->acc_label];
    return label->classes > 0 && info->out[info->acc_out].size % label->size == 0;
}

int nnr_session_evaluator_alloc(const nnr_model_info *info, evaluator *ev) {
    ev->in = calloc((size_t)info->nio + 1, sizeof *ev->in);
    ev->inputs = calloc((size_t)info->nio + 1, sizeof *ev->inputs);
    ev->out = calloc((size_t)info->nout + 1, sizeof *ev->out);
    if (!ev->in || !ev->inputs || !ev->out) return oom();
    for (int k = 0; k < info->nout; k++)
        if (!(ev->out[k] = malloc((size_t)info->batch * (size_t)info->out[k].size *
                                  nnr_dtype_size(info->dtype))))
            return oom();
    if (has_accuracy(info)) {
        const nnr_io *label = &info->io[info->acc_label];
        ev->classes = label->classes;
        ev->labels = label->size;
        ev->width = (int)(info->out[info->acc_out].size / label->size);
        if (!(ev->confusion = calloc((size_t)ev->classes * (size_t)ev->width, sizeof(int64_t))))
            return oom();
    }
    return 0;
}

/* Points ev->in (and ev->inputs) at example `at` of every column of d. */
void nnr_session_point_at(const nnr_model_info *info, const nnr_dataset *d, int64_t at,
                          evaluator *ev) {
    int ni = 0;
    for (int k = 0; k < info->nio; k++) {
        const nnr_io *io = &info->io[k];
        ev->in[k] = d->col[k] ? (const char *)d->col[k] + (size_t)at * (size_t)io->size *
                                                                col_elem_size(info, io)
                              : NULL;
        if (io->kind == NNR_IO_INPUT) ev->inputs[ni++] = ev->in[k];
    }
}

/* Adds the argmax predictions of nb examples to the confusion matrix; returns hits. */
static int64_t count_hits(const nnr_model_info *info, evaluator *ev, int nb) {
    const void *out = ev->out[info->acc_out];
    const int32_t *label = ev->in[info->acc_label];
    int64_t hits = 0;
    for (int64_t j = 0; j < nb * ev->labels; j++) {
        int best = 0;
        double best_v = get(info, out, j * ev->width);
        for (int c = 1; c < ev->width; c++) {
            double v = get(info, out, j * ev->width + c);
            if (v > best_v) best = c, best_v = v;
        }
        hits += best == label[j];
        ev->confusion[(int64_t)label[j] * ev->width + best]++;
    }
    return hits;
}

void nnr_session_evaluate_range(const nnr_model_info *info, void *m, const nnr_dataset *d,
                                int64_t lo, int64_t hi, evaluator *ev, double *loss_sum,
                                int64_t *hits) {
    double sum = 0;
    int64_t right = 0;
    if (ev->confusion)
        memset(ev->confusion, 0, (size_t)ev->classes * (size_t)ev->width * sizeof(int64_t));
    for (int64_t at = lo; at < hi; at += info->batch) {
        int nb = (int)(hi - at < info->batch ? hi - at : info->batch);
        nnr_session_point_at(info, d, at, ev);
        sum += info->loss(m, nb, ev->in, 0) * nb;
        if (ev->confusion) {
            info->predict(m, nb, ev->inputs, ev->out);
            right += count_hits(info, ev, nb);
        }
    }
    *loss_sum = sum;
    *hits = right;
}

scores nnr_session_evaluate(const nnr_model_info *info, void *m, const nnr_dataset *d,
                            evaluator *ev) {
    double sum;
    int64_t hits;
    nnr_session_evaluate_range(info, m, d, 0, d->n, ev, &sum, &hits);
    scores s = {sum / (double)d->n, NAN};
    if (ev->confusion) s.accuracy = (double)hits / (double)(d->n * ev->labels);
    return s;
}
