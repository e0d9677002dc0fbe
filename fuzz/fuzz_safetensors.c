/* fuzz_safetensors.c — libFuzzer target for the safetensors reader (runtime/safetensors.c)
 * and what reads checkpoints and data through it: the input is written to a file and read
 * with nnr_st_read; a file that reads is written back with nnr_st_write and must read back
 * to the same tensors; the same file is also fed to nnr_data_load (a bare safetensors data
 * spec) and nnr_checkpoint_load (resume and plain) for a small hand-written model
 * (tests/unit/toy_model.c).  Build: fuzz/run.sh; replay: fuzz/replay.c. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz_util.h"
#include "nnr.h"
#include "toy_model.h"

static void roundtrip(const nnr_tensors *ts, const uint8_t *data, size_t size) {
    const char *path = fuzz_file(1, "rt.safetensors", data, 0);
    if (!path) return;
    if (nnr_st_write(path, ts->t, ts->n, NULL, 0) != 0) return;
    nnr_tensors back;
    if (nnr_st_read(path, &back) != 0) {
        fprintf(stderr, "fuzz_safetensors: a file nnr_st_write wrote does not read back: %s\n",
                nnr_error());
        abort();
    }
    if (back.n != ts->n) abort();
    for (int i = 0; i < ts->n; i++) {
        const nnr_tensor *a = &ts->t[i], *b = nnr_tensors_find(&back, a->name);
        if (!b || a->dtype != b->dtype || a->rank != b->rank ||
            memcmp(a->shape, b->shape, sizeof a->shape[0] * (size_t)a->rank) != 0)
            abort();
        size_t bytes = (size_t)nnr_tensor_numel(a) * nnr_dtype_size(a->dtype);
        if (bytes && memcmp(a->data, b->data, bytes) != 0) abort();
    }
    nnr_tensors_free(&back);
    (void)data; (void)size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 1 << 20) return 0;
    const char *path = fuzz_file(0, "in.safetensors", data, size);
    if (!path) return 0;
    nnr_tensors ts;
    if (nnr_st_read(path, &ts) == 0) {
        roundtrip(&ts, data, size);
        nnr_tensors_free(&ts);
    }
    /* the trainer's readers over the same file */
    const char *spec[] = {path};
    nnr_dataset ds;
    if (nnr_data_load(&toy_cls_info, 1, spec, 1u << NNR_IO_INPUT | 1u << NNR_IO_LABEL, &ds) == 0)
        nnr_data_free(&ds);
    const nnr_model_info *infos[] = {&toy_cls_info, &toy_mom_info, &toy_reg_info};
    for (int k = 0; k < 3; k++) {
        void *m = infos[k]->create();
        if (!m) continue;
        for (int resume = 0; resume < 2; resume++) {
            nnr_checkpoint ck;
            memset(&ck, 0, sizeof ck);
            if (nnr_checkpoint_load(infos[k], m, path, &ck, resume) == 0) nnr_checkpoint_free(&ck);
        }
        infos[k]->destroy(m);
    }
    return 0;
}
