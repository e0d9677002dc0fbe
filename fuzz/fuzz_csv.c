/* fuzz_csv.c — libFuzzer target for the CSV readers (runtime/csv.c, runtime/data.c): the
 * input is written to a file and read with nnr_csv_read, then with nnr_data_load_csv
 * (header row, label column "y", and again without requiring labels, as predict does)
 * and as "x=FILE" / "y=FILE" data specs, for a small hand-written model
 * (tests/unit/toy_model.c: x: [4], y: class(3)).  Build: fuzz/run.sh; replay: fuzz/replay.c. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz_util.h"
#include "nnr.h"
#include "toy_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 1 << 20) return 0;
    const char *path = fuzz_file(0, "in.csv", data, size);
    if (!path) return 0;
    nnr_tensor t;
    if (nnr_csv_read(path, &t) == 0) {
        const float *v = t.data;
        volatile float sum = 0;
        for (int64_t i = 0; i < nnr_tensor_numel(&t); i++) sum += v[i];
        nnr_tensor_free(&t);
    }
    const unsigned both = 1u << NNR_IO_INPUT | 1u << NNR_IO_LABEL;
    nnr_dataset ds;
    nnr_checkpoint names = {0};   /* learned from the first read, checked by the second */
    if (nnr_data_load_csv(&toy_cls_info, path, "y", both, &names, 1, &ds) == 0) nnr_data_free(&ds);
    if (nnr_data_load_csv(&toy_cls_info, path, "y", both, &names, 0, &ds) == 0) nnr_data_free(&ds);
    if (nnr_data_load_csv(&toy_cls_info, path, "y", 1u << NNR_IO_INPUT, &names, 0, &ds) == 0)
        nnr_data_free(&ds);
    nnr_checkpoint_free(&names);
    char xs[300], ys[300];
    snprintf(xs, sizeof xs, "x=%s", path);
    snprintf(ys, sizeof ys, "y=%s", path);
    const char *spec[] = {xs, ys};
    if (nnr_data_load(&toy_cls_info, 2, spec, both, &ds) == 0) nnr_data_free(&ds);
    return 0;
}
