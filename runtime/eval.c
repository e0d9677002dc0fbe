/* eval.c — `m eval` and `m predict`: a checkpoint's loss and accuracy on a test set, with
 * the confusion matrix and per-class precision and recall behind the accuracy, and the
 * model's outputs for new inputs as CSV, with digits enough to read each value back.
 */
#include "nnr.h"
#include "trainer.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#define CONFUSION_MAX  50           /* larger confusion matrices are not printed */

static int digits_of(int64_t v) { return snprintf(NULL, 0, "%lld", (long long)v); }

static void print_confusion(const evaluator *ev) {
    if (ev->classes > CONFUSION_MAX || ev->width > CONFUSION_MAX) {
        printf("confusion matrix: not shown for %d classes\n", ev->classes);
        return;
    }
    int64_t most = 0;
    for (int64_t i = 0; i < (int64_t)ev->classes * ev->width; i++)
        if (ev->confusion[i] > most) most = ev->confusion[i];
    int cw = 2 + (digits_of(most) > digits_of(ev->width - 1) ? digits_of(most) : digits_of(ev->width - 1));
    int rw = digits_of(ev->classes - 1);
    printf("confusion matrix (rows: true class, columns: predicted class)\n%*s", rw + 2, "");
    for (int c = 0; c < ev->width; c++) printf("%*d", cw, c);
    putchar('\n');
    for (int r = 0; r < ev->classes; r++) {
        printf("  %*d", rw, r);
        for (int c = 0; c < ev->width; c++)
            printf("%*lld", cw, (long long)ev->confusion[(int64_t)r * ev->width + c]);
        putchar('\n');
    }
}

/* A ratio as the table shows it: 4 decimals, or "-" when undefined (0 / 0). */
static const char *ratio(char *buf, size_t cap, int64_t num, int64_t den) {
    if (den == 0) snprintf(buf, cap, "-");
    else snprintf(buf, cap, "%.4f", (double)num / (double)den);
    return buf;
}

/* Per class: precision (of the examples predicted as the class, the share that belong to
 * it), recall (of the class's examples, the share predicted as it), F1 and support. */
static void print_precision_recall(const evaluator *ev) {
    if (ev->classes > CONFUSION_MAX || ev->width > CONFUSION_MAX) return;
    int k = ev->classes < ev->width ? ev->classes : ev->width;
    int64_t most = 0;
    for (int64_t i = 0; i < (int64_t)ev->classes * ev->width; i++) most += ev->confusion[i];
    int sw = digits_of(most) > 7 ? digits_of(most) : 7;
    printf("per class (precision: right among those predicted as the class; recall: found "
           "among the class's examples)\n");
    printf("  %5s  %9s  %6s  %6s  %*s\n", "class", "precision", "recall", "f1", sw, "support");
    for (int c = 0; c < k; c++) {
        int64_t tp = ev->confusion[(int64_t)c * ev->width + c], predicted = 0, actual = 0;
        for (int r = 0; r < ev->classes; r++) predicted += ev->confusion[(int64_t)r * ev->width + c];
        for (int j = 0; j < ev->width; j++) actual += ev->confusion[(int64_t)c * ev->width + j];
        char p[16], r[16], f[16];
        ratio(p, sizeof p, tp, predicted);
        ratio(r, sizeof r, tp, actual);
        ratio(f, sizeof f, 2 * tp, predicted + actual);   /* F1 = 2 tp / (predicted + actual) */
        printf("  %5d  %9s  %6s  %6s  %*lld\n", c, p, r, f, sw, (long long)actual);
    }
}

int nnr_cmd_eval(const nnr_model_info *info, const options *o) {
    if (!o->load) return nnr_trainer_usage_error(o->cmd, "eval needs --load CKPT");
    if (!o->test.n && !o->test_text)
        return nnr_trainer_usage_error(o->cmd, "eval needs --test NAME=FILE (or --test-text FILE)");
    int bad = nnr_trainer_text_usage(o);
    if (bad) return bad;
    session s = {0};
    int rc = nnr_session_open_model(info, &s, o->load, 0) ||
             nnr_session_load_set(info, o, "--test", &o->test, "--test-text", o->test_text,
                                  &s.test) ||
             nnr_session_apply_standardize(info, &s, o->load) ||
             nnr_session_evaluator_alloc(info, &s.ev);
    if (!rc) {
        scores sc = nnr_session_evaluate(info, s.m, &s.test, &s.ev);
        if (s.ev.confusion) {
            print_confusion(&s.ev);
            print_precision_recall(&s.ev);
        }
        printf("loss: %.6f\n", sc.loss);
        if (!isnan(sc.accuracy)) printf("accuracy: %.4f\n", sc.accuracy);
    }
    nnr_session_free(info, &s);
    return rc ? nnr_trainer_fail() : 0;
}

static void csv_header(const nnr_model_info *info, FILE *f) {
    for (int k = 0; k < info->nout; k++) {
        const nnr_io *out = &info->out[k];
        if (out->size == 1) fprintf(f, "%s%s", k ? "," : "", out->name);
        for (int64_t j = 0; out->size > 1 && j < out->size; j++)
            fprintf(f, "%s%s_%lld", k || j ? "," : "", out->name, (long long)j);
    }
    fputc('\n', f);
}

static void csv_rows(const nnr_model_info *info, const evaluator *ev, int nb, FILE *f) {
    const char *fmt = num_fmt(info);
    for (int i = 0; i < nb; i++) {
        for (int k = 0; k < info->nout; k++) {
            int64_t size = info->out[k].size;
            for (int64_t j = 0; j < size; j++) {
                if (k || j) fputc(',', f);
                fprintf(f, fmt, get(info, ev->out[k], i * size + j));
            }
        }
        fputc('\n', f);
    }
}

int nnr_cmd_predict(const nnr_model_info *info, const options *o) {
    if (!o->load) return nnr_trainer_usage_error(o->cmd, "predict needs --load CKPT");
    if (!o->input.n) return nnr_trainer_usage_error(o->cmd, "predict needs --input NAME=FILE");
    const char *path = o->out ? o->out : "stdout";
    session s = {0};
    int rc = nnr_session_open_model(info, &s, o->load, 0) ||
             nnr_session_load_data(info, o, "--input", &o->input, 1u << NNR_IO_INPUT, &s.data) ||
             nnr_session_apply_standardize(info, &s, o->load) ||
             nnr_session_evaluator_alloc(info, &s.ev);
    if (!rc && !(s.file = o->out ? fopen(o->out, "w") : stdout)) {
        nnr_set_error("%s: %s", path, strerror(errno));
        rc = -1;
    }
    if (!rc) {
        csv_header(info, s.file);
        for (int64_t at = 0; at < s.data.n; at += info->batch) {
            int nb = (int)(s.data.n - at < info->batch ? s.data.n - at : info->batch);
            nnr_session_point_at(info, &s.data, at, &s.ev);
            info->predict(s.m, nb, s.ev.inputs, s.ev.out);
            csv_rows(info, &s.ev, nb, s.file);
        }
        int bad = ferror(s.file) | (s.file == stdout ? fflush(s.file) : fclose(s.file));
        s.file = NULL;
        if (bad) {
            nnr_set_error("%s: write failed: %s", path, strerror(errno));
            rc = -1;
        }
    }
    nnr_session_free(info, &s);
    return rc ? nnr_trainer_fail() : 0;
}
