/* eval.c — `m eval` and `m predict`: a checkpoint's loss and accuracy on a test set, with
 * the confusion matrix and per-class precision and recall behind the accuracy, and the
 * model's outputs for new inputs: as CSV (standard output, or --out FILE; "-" is standard
 * output), with digits enough to read each value back and the predicted class beside the
 * class output, or with --out FILE.safetensors as tensors; a failed write never leaves a
 * truncated file.
 */
#include "nnr.h"
#include "trainer.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFUSION_MAX  50           /* larger confusion matrices are not printed */

static int digits_of(int64_t v) { return snprintf(NULL, 0, "%lld", (long long)v); }

/* The class names the checkpoint stores (string labels of a CSV file), as a key under the
 * confusion matrix's numbers; nothing when it stores none. */
static void print_class_key(const nnr_checkpoint *ck, int classes) {
    if (!nnr_class_name(ck, 0)) return;
    printf("classes:");
    for (int c = 0; c < classes && nnr_class_name(ck, c); c++)
        printf("%s %d %s", c ? "," : "", c, nnr_class_name(ck, c));
    putchar('\n');
}

static void print_confusion(const evaluator *ev, const nnr_checkpoint *ck) {
    if (ev->classes > CONFUSION_MAX || ev->width > CONFUSION_MAX) {
        printf("confusion matrix: not shown for %d classes\n", ev->classes);
        return;
    }
    int64_t most = 0;
    for (int64_t i = 0; i < (int64_t)ev->classes * ev->width; i++)
        if (ev->confusion[i] > most) most = ev->confusion[i];
    int cw = 2 + (digits_of(most) > digits_of(ev->width - 1) ? digits_of(most) : digits_of(ev->width - 1));
    int rw = digits_of(ev->classes - 1);
    printf("confusion matrix (rows: true class, columns: predicted class)\n");
    print_class_key(ck, ev->classes);
    printf("%*s", rw + 2, "");
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
static void print_precision_recall(const evaluator *ev, const nnr_checkpoint *ck) {
    if (ev->classes > CONFUSION_MAX || ev->width > CONFUSION_MAX) return;
    int k = ev->classes < ev->width ? ev->classes : ev->width;
    int64_t most = 0;
    for (int64_t i = 0; i < (int64_t)ev->classes * ev->width; i++) most += ev->confusion[i];
    int sw = digits_of(most) > 7 ? digits_of(most) : 7;
    printf("per class (precision: right among those predicted as the class; recall: found "
           "among the class's examples)\n");
    int nw = 5;   /* the class column: numbers, or the names the checkpoint stores */
    for (int c = 0; c < k && nnr_class_name(ck, c); c++)
        if ((int)strlen(nnr_class_name(ck, c)) > nw) nw = (int)strlen(nnr_class_name(ck, c));
    printf("  %*s  %9s  %6s  %6s  %*s\n", nw, "class", "precision", "recall", "f1", sw, "support");
    for (int c = 0; c < k; c++) {
        int64_t tp = ev->confusion[(int64_t)c * ev->width + c], predicted = 0, actual = 0;
        for (int r = 0; r < ev->classes; r++) predicted += ev->confusion[(int64_t)r * ev->width + c];
        for (int j = 0; j < ev->width; j++) actual += ev->confusion[(int64_t)c * ev->width + j];
        char p[16], r[16], f[16];
        ratio(p, sizeof p, tp, predicted);
        ratio(r, sizeof r, tp, actual);
        ratio(f, sizeof f, 2 * tp, predicted + actual);   /* F1 = 2 tp / (predicted + actual) */
        char num[16];
        snprintf(num, sizeof num, "%d", c);
        const char *name = nnr_class_name(ck, c);
        printf("  %*s  %9s  %6s  %6s  %*lld\n", nw, name ? name : num, p, r, f, sw, (long long)actual);
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
                                  &s.ck, &s.test) ||
             nnr_session_apply_standardize(info, &s, o->load) ||
             nnr_session_evaluator_alloc(info, &s.ev);
    if (!rc) {
        scores sc = nnr_session_evaluate(info, s.m, &s.test, &s.ev);
        if (s.ev.confusion) {
            print_confusion(&s.ev, &s.ck);
            print_precision_recall(&s.ev, &s.ck);
        }
        printf("loss: %.6f\n", sc.loss);
        if (!isnan(sc.accuracy)) printf("accuracy: %.4f\n", sc.accuracy);
    }
    nnr_session_free(info, &s);
    return rc ? nnr_trainer_fail() : 0;
}

/* predict's class output: the output the model's accuracy is measured on (out[acc_out],
 * scored by argmax against a class(K) label, K values per label position: the classes'
 * probabilities or logits), when it has one; else -1.  Its argmax (the predicted class,
 * one per label position) is written beside it. */
static int class_output(const nnr_model_info *info, const evaluator *ev) {
    return ev->confusion ? info->acc_out : -1;
}

/* The predicted class of label position j of example i (ev->out holds the batch). */
static int32_t argmax_of(const nnr_model_info *info, const evaluator *ev, int64_t i, int64_t j) {
    const void *out = ev->out[info->acc_out];
    int64_t at = (i * ev->labels + j) * ev->width;
    int32_t best = 0;
    for (int c = 1; c < ev->width; c++)
        if (get(info, out, at + c) > get(info, out, at + best)) best = c;
    return best;
}

/* The name predict's CSV gives class c in the argmax column: the class name the checkpoint
 * stores when training read string labels from a CSV file (--label-column; that file has
 * one label, the one scored), else NULL for the number c. */
static const char *predict_class_name(const session *s, int c) { return nnr_class_name(&s->ck, c); }

/* A CSV field as RFC 4180 quotes it when it holds a comma, a quote or a line break. */
static void csv_text(FILE *f, const char *text) {
    if (!strpbrk(text, ",\"\r\n")) {
        fputs(text, f);
        return;
    }
    fputc('"', f);
    for (const char *p = text; *p; p++) {
        if (*p == '"') fputc('"', f);
        fputc(*p, f);
    }
    fputc('"', f);
}

static void csv_header(const nnr_model_info *info, const evaluator *ev, FILE *f) {
    for (int k = 0; k < info->nout; k++) {
        const nnr_io *out = &info->out[k];
        if (out->size == 1) fprintf(f, "%s%s", k ? "," : "", out->name);
        for (int64_t j = 0; out->size > 1 && j < out->size; j++)
            fprintf(f, "%s%s_%lld", k || j ? "," : "", out->name, (long long)j);
        if (k != class_output(info, ev)) continue;
        if (ev->labels == 1) fprintf(f, ",%s_argmax", out->name);
        for (int64_t j = 0; ev->labels > 1 && j < ev->labels; j++)
            fprintf(f, ",%s_argmax_%lld", out->name, (long long)j);
    }
    fputc('\n', f);
}

static void csv_rows(const nnr_model_info *info, const session *s, int nb, FILE *f) {
    const evaluator *ev = &s->ev;
    const char *fmt = num_fmt(info);
    for (int i = 0; i < nb; i++) {
        for (int k = 0; k < info->nout; k++) {
            int64_t size = info->out[k].size;
            for (int64_t j = 0; j < size; j++) {
                if (k || j) fputc(',', f);
                fprintf(f, fmt, get(info, ev->out[k], i * size + j));
            }
            for (int64_t j = 0; k == class_output(info, ev) && j < ev->labels; j++) {
                int32_t c = argmax_of(info, ev, i, j);
                const char *name = predict_class_name(s, c);
                fputc(',', f);
                if (name) csv_text(f, name);
                else fprintf(f, "%d", c);
            }
        }
        fputc('\n', f);
    }
}

/* predict --out FILE.safetensors: every output as a tensor [n, shape...] of the model's
 * dtype under its name, and the class output's argmax as int32 [n] (or [n, positions])
 * named "<output>.argmax"; written atomically like every safetensors file. */
static int ends_with(const char *s, const char *tail) {
    size_t n = strlen(s), t = strlen(tail);
    return n >= t && strcmp(s + n - t, tail) == 0;
}

static int predict_safetensors(const nnr_model_info *info, session *s, const char *path) {
    const int nout = info->nout, cls = class_output(info, &s->ev);
    const int64_t n = s->data.n;
    const size_t es = nnr_dtype_size(info->dtype);
    nnr_tensor *ts = calloc((size_t)nout + 1, sizeof *ts);
    int nt = nout + (cls >= 0), rc = 0;
    for (int k = 0; ts && k < nt; k++) {
        const nnr_io *out = &info->out[k < nout ? k : cls];
        int64_t per = k < nout ? out->size : s->ev.labels;
        ts[k].dtype = k < nout ? info->dtype : NNR_I32;
        ts[k].shape[0] = n;
        if (k < nout) {
            ts[k].rank = 1 + out->rank;
            memcpy(ts[k].shape + 1, out->shape, (size_t)out->rank * sizeof(int64_t));
        } else {
            ts[k].rank = s->ev.labels > 1 ? 2 : 1;
            ts[k].shape[1] = s->ev.labels;
        }
        size_t len = strlen(out->name) + 8;
        ts[k].name = malloc(len);
        ts[k].data = malloc((size_t)(n ? n : 1) * (size_t)per * (k < nout ? es : sizeof(int32_t)));
        if (!ts[k].name || !ts[k].data) rc = -1;
        else snprintf(ts[k].name, len, "%s%s", out->name, k < nout ? "" : ".argmax");
    }
    if (!ts || rc) rc = oom();
    for (int64_t at = 0; !rc && at < n; at += info->batch) {
        int nb = (int)(n - at < info->batch ? n - at : info->batch);
        nnr_session_point_at(info, &s->data, at, &s->ev);
        info->predict(s->m, nb, s->ev.inputs, s->ev.out);
        for (int k = 0; k < nout; k++)
            memcpy((char *)ts[k].data + (size_t)at * (size_t)info->out[k].size * es, s->ev.out[k],
                   (size_t)nb * (size_t)info->out[k].size * es);
        for (int64_t i = 0; cls >= 0 && i < nb; i++)
            for (int64_t j = 0; j < s->ev.labels; j++)
                ((int32_t *)ts[nout].data)[(at + i) * s->ev.labels + j] = argmax_of(info, &s->ev, i, j);
    }
    const char *meta[] = {"nnc_model", info->name};
    if (!rc) rc = nnr_st_write(path, ts, nt, meta, 1);
    for (int k = 0; ts && k < nt; k++) nnr_tensor_free(&ts[k]);
    free(ts);
    return rc;
}

/* predict's output.  A regular FILE (or a new one) is written as FILE.tmp.<pid> beside it
 * and renamed over it once every byte is written, flushed and fsynced, so a full disk or
 * a file size limit leaves the old FILE (or none), never a truncated one; a device or a
 * pipe (/dev/stdout, /dev/full) is written in place.  Errors name FILE and the cause. */
typedef struct out_file {
    FILE       *f;
    const char *path;               /* NULL: stdout */
    char       *tmp;                /* the temporary, NULL when written in place */
} out_file;

static int out_open(out_file *o, const char *path) {
    if (path && strcmp(path, "-") == 0) path = NULL;     /* "-": standard output */
    *o = (out_file){stdout, path, NULL};
    if (!path) return 0;
    struct stat st;
    int in_place = stat(path, &st) == 0 && !S_ISREG(st.st_mode);
    size_t cap = strlen(path) + 32;
    if (!in_place) {
        if (!(o->tmp = malloc(cap))) return oom();
        snprintf(o->tmp, cap, "%s.tmp.%ld", path, (long)getpid());
    }
    if (!(o->f = fopen(in_place ? path : o->tmp, "w"))) {
        nnr_set_error("%s: cannot create %s: %s", path, in_place ? path : o->tmp, strerror(errno));
        free(o->tmp);
        o->tmp = NULL;
        return -1;
    }
    return 0;
}

/* Flushes, fsyncs, closes and renames the output into place; on any failure removes the
 * temporary.  Returns 0, or -1 with a message naming the file and the cause. */
static int out_close(out_file *o) {
    const char *name = o->path ? o->path : "stdout";
    int err = fflush(o->f) || ferror(o->f) ? (errno ? errno : EIO) : 0;
    if (!err && o->tmp && fsync(fileno(o->f))) err = errno;
    if (o->f != stdout && fclose(o->f) && !err) err = errno;
    if (err) nnr_set_error("%s: write failed: %s", name, strerror(err));
    if (!err && o->tmp && rename(o->tmp, o->path)) {
        err = errno;
        nnr_set_error("%s: cannot rename %s over it: %s", name, o->tmp, strerror(err));
    }
    if (o->tmp && err) remove(o->tmp);
    free(o->tmp);
    *o = (out_file){0};
    return err ? -1 : 0;
}

int nnr_cmd_predict(const nnr_model_info *info, const options *o) {
    if (!o->load) return nnr_trainer_usage_error(o->cmd, "predict needs --load CKPT");
    if (!o->input.n) return nnr_trainer_usage_error(o->cmd, "predict needs --input NAME=FILE");
    session s = {0};
    out_file out = {0};
    int rc = nnr_session_open_model(info, &s, o->load, 0) ||
             nnr_session_load_data(info, o, "--input", &o->input,
                                   1u << NNR_IO_INPUT | NNR_NEED_PREDICT, &s.ck, &s.data) ||
             nnr_session_apply_standardize(info, &s, o->load) ||
             nnr_session_evaluator_alloc(info, &s.ev);
    if (!rc && o->out && ends_with(o->out, ".safetensors")) {
        rc = predict_safetensors(info, &s, o->out);
    } else if (!rc && !(rc = out_open(&out, o->out))) {
        csv_header(info, &s.ev, out.f);
        for (int64_t at = 0; at < s.data.n && !ferror(out.f); at += info->batch) {
            int nb = (int)(s.data.n - at < info->batch ? s.data.n - at : info->batch);
            nnr_session_point_at(info, &s.data, at, &s.ev);
            info->predict(s.m, nb, s.ev.inputs, s.ev.out);
            csv_rows(info, &s, nb, out.f);
        }
        rc = out_close(&out);
    }
    nnr_session_free(info, &s);
    return rc ? nnr_trainer_fail() : 0;
}
