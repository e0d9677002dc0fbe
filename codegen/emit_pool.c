/* emit_pool.c — max and average pooling and their gradients: a loop over every channel
 * of every example (a plane), shared among nnc's threads when the batch is large enough
 * (each plane is its own windows, so the same bits at any thread count), the windows'
 * maximum or mean, and the gradient to the window's first maximum or spread over it,
 * written through an epilogue (emit_conv.c) where fuse.c folded one in.  Max pooling
 * inside a Winograd convolution, and its gradient inside the convolution's gradients,
 * are emit_conv.c's. */
#include "emit.h"

#include <string.h>

/* max / average pooling windows (no padding), and their gradient: the window's maximum
 * takes the whole gradient (the first one, on a tie, as PyTorch), an average spreads it. */
void emit_pool(emitter *e, FILE *o, ir_node *n) {
    int grad = n->op == OP_POOL_GRAD, is_max = n->attr[0] != 0;
    ir_conv g = n->conv;
    const ir_node *x = n->in[grad ? 1 : 0];
    long long win = (long long)(g.kh * g.kw);
    const char *X = emit_mark(e, x), *T = e->T, *nb = x->batched ? "n" : "1";
    fprintf(o, "    /* %s %s = %s%s(%s %s), window %lldx%lld, stride %lldx%lld%s */\n",
            n->cname ? n->cname : "the gradient", emit_shape_of(e, n),
            is_max ? "maxpool" : "avgpool", grad ? "_grad" : "", emit_who(e, x), emit_shape_of(e, x), (long long)g.kh,
            (long long)g.kw, (long long)g.sh, (long long)g.sw,
            grad ? (is_max ? ": d max/du = 1 at the window's maximum" : ": d mean/du = 1/(kh kw)") : "");
    emit_epilogue_note(e, o, n, "    ");
    const char *out = n->epi ? n->cname : emit_mark(e, n);
    /* windows that tile the plane exactly write every element of the gradient once */
    int tiled = fuse_pool_tiled(&g);
    if ((long long)(x->batched ? e->g->train.batch : 1) * g.c * g.h * g.w >= EMIT_LOOP_PARALLEL_MIN)
        emit_omp_rows(e, o, "    ", "   /* each plane its own windows */");
    fprintf(o, "    for (int b = 0; b < %s * %lld; b++) {   /* every channel of every example */\n", nb, (long long)g.c);
    if (grad && !tiled)   /* zeroed plane by plane, while it is in cache for the windows that follow */
        fprintf(o, "        memset(%s + (size_t)b * %lld, 0, %lld * sizeof(%s));\n", out, (long long)(g.h * g.w),
                (long long)(g.h * g.w), T);
    fprintf(o, "        for (int oi = 0; oi < %lld; oi++)\n", (long long)g.oh);
    fprintf(o, "            for (int oj = 0; oj < %lld; oj++) {\n", (long long)g.ow);
    fprintf(o, "                const size_t at = ((size_t)b * %lld + oi) * %lld + oj;\n", (long long)g.oh, (long long)g.ow);
    const char *src = arena_printf(e->a, "(size_t)b * %lld + (oi * %lld + ki) * %lld + oj * %lld + kj",
                                   (long long)(g.h * g.w), (long long)g.sh, (long long)g.w, (long long)g.sw);
    const char *loops = arena_printf(e->a, "for (int ki = 0; ki < %lld; ki++)\n                    for (int kj = 0; kj < %lld; kj++)",
                                     (long long)g.kh, (long long)g.kw);
    if (!grad) {
        fprintf(o, "                %s acc = %s;\n", T, is_max ? "-INFINITY" : emit_lit(e, 0));
        fprintf(o, "                %s\n", loops);
        if (is_max) fprintf(o, "                        acc = %s[%s] > acc ? %s[%s] : acc;\n", X, src, X, src);
        else fprintf(o, "                        acc += %s[%s];\n", X, src);
        fprintf(o, "                %s[at] = acc%s;\n", out, is_max ? "" : arena_printf(e->a, " / %s", emit_lit(e, (double)win)));
    } else if (is_max && tiled) {
        /* the first maximum of the window takes gv, as PyTorch breaks ties (the first tap
         * when the maximum is NaN); selects instead of branches, so the loop over oj
         * vectorizes */
        const char *first = arena_printf(e->a, "(size_t)b * %lld + oi * %lld * %lld + oj * %lld", (long long)(g.h * g.w),
                                         (long long)g.sh, (long long)g.w, (long long)g.sw);
        fprintf(o, "                %s acc = %s[%s];\n", T, X, first);
        fprintf(o, "                %s\n", loops);
        fprintf(o, "                        acc = %s[%s] > acc ? %s[%s] : acc;\n", X, src, X, src);
        fprintf(o, "                %s gv = %s[at];   /* until a tap takes it */\n", T, emit_mark(e, n->in[0]));
        fprintf(o, "                %s {\n", loops);
        /* with an epilogue, i is the element's index in every tensor it reads (fuse.c) */
        ictx flat = {LOOP_FLAT, x->batched, 0, {0}, {0}};
        const char *at_i = n->epi ? arena_printf(e->a, "const size_t i = %s; ", src) : "";
        const char *own = arena_printf(e->a, "%s[%s]", out, src), *tap = arena_printf(e->a, "%s[%s]", X, src);
        fprintf(o, "                        const int take = %s == acc || (ki + kj == 0 && acc != acc);\n", tap);
        fprintf(o, "                        { %s%s }\n", at_i, emit_epilogue_store(e, n, &flat, own, arena_printf(e->a, "take ? gv : %s", emit_lit(e, 0))));
        fprintf(o, "                        gv = take ? %s : gv;\n                    }\n", emit_lit(e, 0));
    } else if (is_max) {   /* the first maximum of the window, as PyTorch breaks ties */
        fprintf(o, "                size_t best = (size_t)b * %lld + oi * %lld * %lld + oj * %lld;\n", (long long)(g.h * g.w),
                (long long)g.sh, (long long)g.w, (long long)g.sw);
        fprintf(o, "                %s\n", loops);
        fprintf(o, "                        if (%s[%s] > %s[best]) best = %s;\n", X, src, X, src);
        fprintf(o, "                %s[best] += %s[at];\n", out, emit_mark(e, n->in[0]));
    } else {
        fprintf(o, "                const %s share = %s[at] / %s;\n", T, emit_mark(e, n->in[0]),
                emit_lit(e, (double)win));
        fprintf(o, "                %s\n", loops);
        fprintf(o, "                        %s[%s] %s= share;\n", out, src, tiled ? "" : "+");
    }
    fprintf(o, "            }\n    }\n");
}
