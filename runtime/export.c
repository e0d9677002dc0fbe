/* export.c — the commands that neither train nor score: `m init` and `m export` write a
 * parameter file (freshly initialized, or a checkpoint's parameters and input
 * standardization without the optimizer state and run position), `m summary`
 * prints the model's table, and `m plot` hands a train --log file to plot.c for its curves.
 */
#include "nnr.h"
#include "trainer.h"

#include <string.h>

int nnr_cmd_init(const nnr_model_info *info, const options *o) {
    if (!o->save) return nnr_trainer_usage_error(o->cmd, "init needs --save PARAMS");
    session s = {0};
    int rc = nnr_session_open_model(info, &s, NULL, o->seed.set ? o->seed.v : info->train.seed) ||
             nnr_model_save(info, s.m, o->save);
    nnr_session_free(info, &s);
    return rc ? nnr_trainer_fail() : 0;
}

/* The parameters and buffers of a checkpoint alone, as nnr_model_save writes them: what
 * PyTorch's strict load_state_dict takes, and a byte-comparable record of a run.  The
 * input standardization of `train --standardize` is kept too (standardize.mean and
 * standardize.std, present only when training standardized; PyTorch code pops them
 * before load_state_dict): without it an application's predictions from the file would
 * differ from `m predict`'s on the checkpoint. */
int nnr_cmd_export(const nnr_model_info *info, const options *o) {
    if (!o->load) return nnr_trainer_usage_error(o->cmd, "export needs --load CKPT");
    if (!o->out) return nnr_trainer_usage_error(o->cmd, "export needs --out PARAMS");
    session s = {0};
    int rc = nnr_session_open_model(info, &s, o->load, 0);
    if (!rc) {
        nnr_standardization z = {s.ck.nstd, s.ck.mean, s.ck.std, NULL};   /* borrowed */
        rc = nnr_model_save_standardized(info, s.m, o->out, &z);
    }
    nnr_session_free(info, &s);
    return rc ? nnr_trainer_fail() : 0;
}

int nnr_cmd_plot(const nnr_model_info *info, const options *o) {
    (void)info;
    if (!o->positional)
        return nnr_trainer_usage_error(o->cmd, "plot needs the CSV file of train --log");
    if (!o->out) return nnr_trainer_usage_error(o->cmd, "plot needs -o CURVES.svg");
    return nnr_plot_svg(o->positional, o->out) ? nnr_trainer_fail() : 0;
}

void nnr_summary_print(const nnr_model_info *info, FILE *f) {
    const char *last = "";
    if (info->summary) {
        fputs(last = info->summary, f);
    } else if (info->summary_lines) {
        for (const char *const *l = info->summary_lines; *l; l++) fputs(last = *l, f);
    }
    if (!*last || last[strlen(last) - 1] != '\n') fputc('\n', f);
}

int nnr_cmd_summary(const nnr_model_info *info, const options *o) {
    (void)o;
    nnr_summary_print(info, stdout);
    return 0;
}
