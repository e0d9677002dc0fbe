/* emit_optimizer.c — NAME_update: the optimizer step as one loop over the parameter
 * block, with PyTorch's update rule for each optimizer of docs/language.md (sgd, momentum,
 * nesterov, adagrad, rmsprop, adadelta, adam, adamax, nadam, adamw), weight_decay added to the
 * gradient (adamw's own decay is decoupled: p *= 1 - lr * wd before its adam step),
 * clip_value's elementwise clipping and clip_norm's global L2 norm, in
 * PyTorch's order: clip_grad_value_, then clip_grad_norm_ of the clipped gradients, then
 * step() adding weight decay.  The state block's size is plan.c's (plan_state_slots). */
#include "emit.h"

static const char *const opt_names[] = {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta",
                                        "adam", "adamax", "nadam", "adamw"};

void emit_update(emitter *e, FILE *o) {
    ir_graph *g = e->g;
    ir_train *t = &g->train;
    const char *T = e->T, *sq = emit_fn(e, "sqrt");
    long long N = (long long)g->train_size;
    fprintf(o, "\n/* The optimizer step: %s", opt_names[t->opt]);
    switch (t->opt) {
    case 0: break;
    case 1: case 2: fprintf(o, "(mu=%g)", t->mu); break;
    case 3: fprintf(o, "(eps=%g)", t->eps); break;
    case 4: fprintf(o, "(rho=%g, eps=%g)", t->rho, t->eps); break;
    case 5: fprintf(o, "(rho=%g, eps=%g)", t->rho, t->eps); break;
    case 9: fprintf(o, "(beta1=%g, beta2=%g, eps=%g, weight_decay=%g)", t->beta1, t->beta2, t->eps, t->adamw_decay); break;
    default: fprintf(o, "(beta1=%g, beta2=%g, eps=%g)", t->beta1, t->beta2, t->eps);
    }
    fprintf(o, " with PyTorch's update rule,\n   one loop over the %lld elements of the parameter block%s%s", N,
            t->opt == 9 ? " (decoupled weight decay: theta *= 1 - lr * wd, then adam's step)"
            : t->weight_decay ? " (weight_decay adds wd * theta to the gradient)" : "",
            t->clip_norm ? ", gradients first clipped to a global L2 norm" : "");
    if (t->clip_value)
        fprintf(o, ";\n   each gradient element is first clipped to [%g, %g] (clip_grad_value_)%s", -t->clip_value,
                t->clip_value, t->clip_norm ? ", and the global norm is that of the clipped gradients" : "");
    fprintf(o, ". */\n");
    fprintf(o, "void %s_update(%s *m) {   /* public: the header documents it */\n", e->P, e->P);
    fprintf(o, "    %s *restrict p = m->params;\n    const %s *restrict g = m->grads;\n", T, T);
    int slots = plan_state_slots(t->opt);
    if (slots >= 1) fprintf(o, "    %s *restrict s1 = m->state;\n", T);
    if (slots >= 2) fprintf(o, "    %s *restrict s2 = m->state + %lld;\n", T, N);
    fprintf(o, "    const %s lr = m->lr;\n", T);
    fprintf(o, "    m->step++;\n");
    /* clip_grad_value_ is clamp(g, -c, c): a NaN stays NaN, as in PyTorch */
    const char *gv = "g[i]";
    if (t->clip_value) {
        fprintf(o, "    const %s cval = %s;   /* clip_grad_value_ */\n", T, emit_lit(e, t->clip_value));
        gv = "(g[i] < -cval ? -cval : g[i] > cval ? cval : g[i])";
    }
    if (t->clip_norm) {
        fprintf(o, "    double norm2 = 0;   /* clip_grad_norm_: one norm over every gradient */\n");
        if (t->clip_value) {
            fprintf(o, "    for (int64_t i = 0; i < %lld; i++) {\n        const %s gv = %s;\n", N, T, gv);
            fprintf(o, "        norm2 += (double)gv * gv;\n    }\n");
        } else {
            fprintf(o, "    for (int64_t i = 0; i < %lld; i++) norm2 += (double)g[i] * g[i];\n", N);
        }
        fprintf(o, "    const double coef = %s / (sqrt(norm2) + 1e-6);\n", emit_lit(e, t->clip_norm));
        fprintf(o, "    const %s clip = coef < 1 ? (%s)coef : %s;\n", T, T, emit_lit(e, 1));
    }
    const char *gi = t->clip_norm ? arena_printf(e->a, "%s * clip", gv) : gv;
    const char *wd = t->weight_decay ? arena_printf(e->a, " + %s * p[i]", emit_lit(e, t->weight_decay)) : "";
    const char *b1 = emit_lit(e, t->beta1), *b2 = emit_lit(e, t->beta2), *eps = emit_lit(e, t->eps);
    switch (t->opt) {
    case 6: case 9: /* adam, adamw */
        fprintf(o, "    const double bc1 = 1 - pow(%.17g, (double)m->step), bc2 = 1 - pow(%.17g, (double)m->step);\n",
                t->beta1, t->beta2);
        /* PyTorch divides by sqrt(bc2) per element; a multiply by its inverse saves one of the
         * loop's two divisions (the divider bounds this loop) and differs by rounding only */
        fprintf(o, "    const %s step_size = (%s)(lr / bc1), inv_bc2_sqrt = (%s)(1 / sqrt(bc2));\n", T, T, T);
        if (t->opt == 9 && t->adamw_decay)   /* torch.optim.AdamW's param.mul_(1 - lr * weight_decay) */
            fprintf(o, "    const %s decay = (%s)(1 - (double)lr * %.17g);\n", T, T, t->adamw_decay);
        break;
    case 7: /* adamax */
        fprintf(o, "    const %s step_size = (%s)(lr / (1 - pow(%.17g, (double)m->step)));\n", T, T, t->beta1);
        break;
    case 8: /* nadam */
        fprintf(o, "    const double mu_t = %.17g * (1 - 0.5 * pow(0.96, m->step * 0.004));\n", t->beta1);
        fprintf(o, "    const double mu_next = %.17g * (1 - 0.5 * pow(0.96, (m->step + 1) * 0.004));\n", t->beta1);
        fprintf(o, "    double *mu_product = (double *)(void *)(m->state + %lld);   /* kept with the state */\n", 2 * N);
        fprintf(o, "    double product = 1;\n    memcpy(&product, mu_product, sizeof product);\n");
        fprintf(o, "    if (m->step == 1) product = 1;\n    product *= mu_t;\n    memcpy(mu_product, &product, sizeof product);\n");
        fprintf(o, "    const double bc2 = 1 - pow(%.17g, (double)m->step);\n", t->beta2);
        fprintf(o, "    const %s c_grad = (%s)(lr * (1 - mu_t) / (1 - product));\n", T, T);
        fprintf(o, "    const %s c_avg = (%s)(lr * mu_next / (1 - product * mu_next));\n", T, T);
        fprintf(o, "    const %s inv_bc2_sqrt = (%s)(1 / sqrt(bc2));   /* as adam's */\n", T, T);
        break;
    default: break;
    }
    if (N >= EMIT_UPDATE_PARALLEL_MIN) emit_omp_rows(e, o, "    ", "");
    fprintf(o, "    for (int64_t i = 0; i < %lld; i++) {\n", N);
    fprintf(o, "        const %s gi = %s%s;\n", T, gi, wd);
    switch (t->opt) {
    case 0: fprintf(o, "        p[i] -= lr * gi;\n"); break;
    case 1:
        fprintf(o, "        s1[i] = %s * s1[i] + gi;   /* the velocity */\n        p[i] -= lr * s1[i];\n",
                emit_lit(e, t->mu));
        break;
    case 2:
        fprintf(o, "        s1[i] = %s * s1[i] + gi;\n        p[i] -= lr * (gi + %s * s1[i]);   /* look ahead */\n",
                emit_lit(e, t->mu), emit_lit(e, t->mu));
        break;
    case 3:
        fprintf(o, "        s1[i] += gi * gi;\n        p[i] -= lr * gi / (%s(s1[i]) + %s);\n", sq, eps);
        break;
    case 4:
        fprintf(o, "        s1[i] = %s * s1[i] + %s * gi * gi;\n        p[i] -= lr * gi / (%s(s1[i]) + %s);\n",
                emit_lit(e, t->rho), emit_lit(e, 1 - t->rho), sq, eps);
        break;
    case 5:
        fprintf(o, "        s1[i] = %s * s1[i] + %s * gi * gi;\n", emit_lit(e, t->rho), emit_lit(e, 1 - t->rho));
        fprintf(o, "        const %s delta = %s(s2[i] + %s) / %s(s1[i] + %s) * gi;\n", T, sq, eps, sq, eps);
        fprintf(o, "        s2[i] = %s * s2[i] + %s * delta * delta;\n", emit_lit(e, t->rho), emit_lit(e, 1 - t->rho));
        fprintf(o, "        p[i] -= lr * delta;\n");
        break;
    case 6: case 9:
        if (t->opt == 9 && t->adamw_decay) fprintf(o, "        p[i] *= decay;   /* decoupled: before adam's step */\n");
        fprintf(o, "        s1[i] += (gi - s1[i]) * %s;   /* first moment */\n", emit_lit(e, 1 - t->beta1));
        fprintf(o, "        s2[i] = %s * s2[i] + %s * gi * gi;   /* second moment */\n", b2, emit_lit(e, 1 - t->beta2));
        fprintf(o, "        p[i] -= step_size * s1[i] / (%s(s2[i]) * inv_bc2_sqrt + %s);\n", sq, eps);
        break;
    case 7:
        fprintf(o, "        s1[i] += (gi - s1[i]) * %s;\n", emit_lit(e, 1 - t->beta1));
        fprintf(o, "        const %s ag = %s(gi) + %s;\n", T, emit_fn(e, "fabs"), eps);
        fprintf(o, "        s2[i] = %s * s2[i] > ag ? %s * s2[i] : ag;   /* exponentially weighted infinity norm */\n", b2, b2);
        fprintf(o, "        p[i] -= step_size * s1[i] / s2[i];\n");
        break;
    case 8:
        fprintf(o, "        s1[i] += (gi - s1[i]) * %s;\n", emit_lit(e, 1 - t->beta1));
        fprintf(o, "        s2[i] = %s * s2[i] + %s * gi * gi;\n", b2, emit_lit(e, 1 - t->beta2));
        fprintf(o, "        const %s denom = %s(s2[i]) * inv_bc2_sqrt + %s;\n", T, sq, eps);
        fprintf(o, "        p[i] -= (c_grad * gi + c_avg * s1[i]) / denom;\n");
        break;
    }
    (void)b1;
    fprintf(o, "    }\n}\n");
}
