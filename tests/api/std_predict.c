/* std_predict.c — an application's predictions from a checkpoint trained with
 * `--standardize` equal the trainer's (tests/api/run.sh builds it with tests/api/std.nn):
 *
 *   std_predict CKPT PARAMS X.csv PRED.csv
 *
 * CKPT is `stdmlp train --standardize --save` output, PARAMS its `stdmlp export`, X.csv the
 * features (one example a row) and PRED.csv `stdmlp predict --load CKPT --input x=X.csv
 * --out PRED.csv`.  Checks, printing PASS/FAIL: stdmlp_load keeps the statistics;
 * stdmlp_predict gives PRED.csv's probabilities exactly (the file prints enough digits to
 * read a float back) and the same from PARAMS (export keeps the statistics); without them
 * the predictions differ; stdmlp_save keeps them; set_standardization refuses bad input. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "stdmlp.h"

static int failures;
static void check(int ok, const char *what) {
    printf("%s %s\n", ok ? "PASS" : "FAIL", what);
    if (!ok) failures++;
}

static stdmlp *must_load(const char *path) {
    stdmlp *m = stdmlp_new();
    if (!m || stdmlp_load(m, path)) {
        fprintf(stderr, "std_predict: %s\n", nnr_error());
        exit(2);
    }
    return m;
}

/* The columns probs_0 and probs_1 of predict's CSV, whatever else it holds. */
static float *read_predictions(const char *path, int64_t rows) {
    nnr_tensor t;
    char **names;
    if (nnr_csv_read_named(path, &t, &names) || !names || t.shape[0] != rows) {
        fprintf(stderr, "std_predict: %s: %s\n", path, nnr_error());
        exit(2);
    }
    float *p = malloc(sizeof(float) * (size_t)rows * 2);
    for (int j = 0; j < 2; j++) {
        char want[32];   /* "probs_" and any int */
        snprintf(want, sizeof want, "probs_%d", j);
        int64_t c = -1;
        for (int64_t k = 0; names[k]; k++)
            if (!strcmp(names[k], want)) c = k;
        if (c < 0) {
            fprintf(stderr, "std_predict: %s has no column %s\n", path, want);
            exit(2);
        }
        for (int64_t i = 0; i < rows; i++) p[i * 2 + j] = ((float *)t.data)[i * t.shape[1] + c];
    }
    free(names);
    nnr_tensor_free(&t);
    return p;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: std_predict CKPT PARAMS X.csv PRED.csv\n");
        return 2;
    }
    nnr_tensor x;
    if (nnr_csv_read(argv[3], &x) || x.shape[1] != 3) {
        fprintf(stderr, "std_predict: %s: %s\n", argv[3], nnr_error());
        return 2;
    }
    int n = (int)x.shape[0];
    float *want = read_predictions(argv[4], n), *got = malloc(sizeof(float) * (size_t)n * 2),
          *raw = malloc(sizeof(float) * (size_t)n * 2);

    stdmlp *m = must_load(argv[1]);
    const double *mean, *std;
    int64_t nstd = stdmlp_standardization(m, &mean, &std);
    check(nstd == 3 && std[0] > 0 && fabs(mean[2]) > 100, "stdmlp_load keeps the checkpoint's 3 features' statistics");
    stdmlp_predict(m, n, x.data, got);
    check(!memcmp(got, want, sizeof(float) * (size_t)n * 2), "stdmlp_predict equals `stdmlp predict`, bit for bit");

    stdmlp *p = must_load(argv[2]);
    const double *pmean, *pstd;
    check(stdmlp_standardization(p, &pmean, &pstd) == 3 && !memcmp(pmean, mean, 3 * sizeof *mean) &&
              !memcmp(pstd, std, 3 * sizeof *std),
          "`stdmlp export` keeps the statistics");
    stdmlp_predict(p, n, x.data, got);
    check(!memcmp(got, want, sizeof(float) * (size_t)n * 2), "  ... and predictions from it are the same");

    if (stdmlp_save(m, "resaved.safetensors")) fprintf(stderr, "std_predict: %s\n", nnr_error());
    stdmlp *r = must_load("resaved.safetensors");
    check(stdmlp_standardization(r, &pmean, &pstd) == 3 && !memcmp(pmean, mean, 3 * sizeof *mean),
          "stdmlp_save keeps them");

    double keep_mean[3], keep_std[3];
    memcpy(keep_mean, mean, sizeof keep_mean);
    memcpy(keep_std, std, sizeof keep_std);
    check(stdmlp_set_standardization(r, NULL, NULL, 0) == 0 && stdmlp_standardization(r, NULL, NULL) == 0,
          "set_standardization(n = 0) removes them");
    stdmlp_predict(r, n, x.data, raw);
    check(memcmp(raw, want, sizeof(float) * (size_t)n * 2) != 0, "  ... and then the predictions differ");
    double bad_std[3] = {1, 0, 1};
    check(stdmlp_set_standardization(r, keep_mean, keep_std, 2) == -1 && strstr(nnr_error(), "3 float input"),
          "set_standardization refuses a wrong feature count");
    check(stdmlp_set_standardization(r, keep_mean, bad_std, 3) == -1 && strstr(nnr_error(), "feature 1"),
          "  ... and a std of 0");
    check(stdmlp_set_standardization(r, keep_mean, keep_std, 3) == 0, "  ... and takes good statistics");
    stdmlp_predict(r, n, x.data, got);
    check(!memcmp(got, want, sizeof(float) * (size_t)n * 2), "  ... with which the predictions are the trainer's again");

    stdmlp_free(m);
    stdmlp_free(p);
    stdmlp_free(r);
    nnr_tensor_free(&x);
    free(want);
    free(got);
    free(raw);
    return failures ? 1 : 0;
}
