/* fuzz_idx.c — libFuzzer target for the IDX reader (runtime/idx.c), raw and gzip: the
 * input is written to a file and read with nnr_idx_read; the same file is also fed to
 * nnr_data_load as a "x=FILE" / "y=FILE" pair spec for a small hand-written model
 * (tests/unit/toy_model.c), which checks shapes, label ranges and finiteness.
 * Build: fuzz/run.sh; replay: fuzz/replay.c. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz_util.h"
#include "nnr.h"
#include "toy_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 1 << 20) return 0;
    const char *path = fuzz_file(0, "in.idx", data, size);
    if (!path) return 0;
    nnr_tensor t;
    if (nnr_idx_read(path, &t) == 0) {
        int64_t numel = nnr_tensor_numel(&t);
        size_t bytes = (size_t)numel * nnr_dtype_size(t.dtype);
        volatile uint8_t sum = 0;             /* touch every byte: sizes must be right */
        for (size_t i = 0; i < bytes; i++) sum += ((const uint8_t *)t.data)[i];
        nnr_tensor_free(&t);
    }
    char xs[300], ys[300];
    snprintf(xs, sizeof xs, "x=%s", path);
    snprintf(ys, sizeof ys, "y=%s", path);
    const char *spec[] = {xs, ys};
    nnr_dataset ds;
    if (nnr_data_load(&toy_cls_info, 2, spec, 1u << NNR_IO_INPUT | 1u << NNR_IO_LABEL, &ds) == 0)
        nnr_data_free(&ds);
    return 0;
}
