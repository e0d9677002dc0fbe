/* builtins.c — the table of every built-in function (see builtins.h), looking a call up in
 * it, and docs/functions.md printed from it.
 *
 * A row names the function, its kind (the docs' group), its arguments with their
 * defaults as a Python signature, the call_ function that lowers it and what that
 * function is told (how), and a line of docs.  lower.c checks every
 * call's arguments against its row (gather_args) before the row's function sees them,
 * so a new function is a row here and a call_ function (declared in lower_internal.h):
 * the layers in layer_*.c, losses and regularizers in losses.c, the rest in lower.c.
 * An elementwise function is a row of ir_maps too (ir.c: its C code and derivatives),
 * lowered by call_map; the unit tests check that the two tables agree. */
#include "builtins.h"
#include "lower_internal.h"
#include <string.h>

/* The row order decides ties in "did you mean" (the earlier row wins); it is the order
 * nnc always had: the functions of lower.c's old list, then ir_maps's.  A new row may go
 * anywhere without changing an old suggestion, unless its name ties with an old one. */
const builtin builtins[] = {
    {"neg", BK_ELEMENTWISE, "x, /", call_unary, OP_NEG, "-x"},
    {"softmax", BK_LAST_AXIS, "x, *, axis=-1", call_softmax, OP_SOFTMAX,
     "exp(x) / sum(exp(x)) along axis (the last by default), with the log-sum-exp shift"},
    {"log_softmax", BK_LAST_AXIS, "x, *, axis=-1", call_softmax, OP_LOG_SOFTMAX,
     "x - log(sum(exp(x))) along axis (the last by default), with the log-sum-exp shift"},
    {"sum", BK_REDUCTION, "x, *, axis=(every axis)", call_reduce, 's',
     "the sum over every axis of an example, or over axis (dropped)"},
    {"mean", BK_REDUCTION, "x, *, axis=(every axis)", call_reduce, 'a',
     "the mean over every axis of an example, or over axis (dropped)"},
    {"cross_entropy", BK_LOSS, "z, y", call_binary, OP_CROSS_ENTROPY,
     "-log softmax(z)[y]: scores z [..., K], class labels y [...]"},
    {"mse", BK_LOSS, "p, t", call_squared_error, 1, "mean((p - t)^2)"},
    {"sse", BK_LOSS, "p, t", call_squared_error, 0, "1/2 sum((p - t)^2)"},
    {"dense", BK_LAYER, "x, units, *, bias=true, init=glorot_uniform, share=(none)", call_dense, 0,
     "x @ weight^T + bias over the last axis of x: weight [units, in], bias [units] (zeros)"},
    {"nll", BK_LOSS, "logp, y", call_loss, 0, "-logp[y]: log-probabilities, class labels y"},
    {"l1_loss", BK_LOSS, "p, t", call_loss, 0, "mean |p - t|"},
    {"bce", BK_LOSS, "p, t", call_loss, 0, "-mean(t log p + (1 - t) log(1 - p)): probabilities p; each log clamped at -100, as PyTorch's BCELoss"},
    {"bce_logits", BK_LOSS, "z, t", call_loss, 0, "mean(softplus(z) - z t): bce of sigmoid(z), computed stably"},
    {"logistic", BK_LOSS, "z, t", call_loss, 0, "mean softplus(-t z): labels t of -1 and 1"},
    {"hinge", BK_LOSS, "z, y", call_loss, 0,
     "the sum over j != y of max(0, 1 + z_j - z_y): scores z with one axis, class labels y"},
    {"kl_div", BK_LOSS, "logp, q", call_loss, 0, "sum q (log q - logp), with 0 log 0 = 0"},
    {"triplet", BK_LOSS, "a, p, n, margin=1", call_loss, 0,
     "max(0, margin + |a - p| - |a - n|), distances as PyTorch's pairwise_distance"},
    {"l1", BK_REGULARIZER, "w", call_regularizer, 0, "the sum of |w| over a parameter w"},
    {"l2", BK_REGULARIZER, "w", call_regularizer, 0, "the sum of w^2 over a parameter w"},
    {"norm2", BK_REDUCTION, "x, *, axis=(every axis)", call_norm2, 0,
     "sqrt(sum(x * x)) over every axis of an example, or over axis (dropped)"},
    {"flatten", BK_LAYOUT, "x", call_flatten, 0, "an example's axes as one"},
    {"reshape", BK_LAYOUT, "x, shape", call_reshape, 0,
     "an example viewed as shape, a list such as [4, -1] (one -1 is inferred)"},
    {"transpose", BK_LAYOUT, "x, a=(none), b=(none)", call_transpose, 0,
     "x with axes a and b swapped (negative axes count from the end); transpose(x): a matrix's transpose"},
    {"permute", BK_LAYOUT, "x, axes", call_permute, 0,
     "x with its axes reordered: axis i of the result is axis axes[i] of x, a list such as [2, 0, 1]"},
    {"concat", BK_LAYOUT, "a, b, ..., *, axis=-1", call_concat, 0,
     "a, b and any further operands (up to 16) joined along axis"},
    {"split", BK_LAYOUT, "x, n, *, axis=-1", call_split, 0,
     "a tuple of n equal parts of x along axis, as `a, b = split(x, 2)`; n must divide the axis"},
    {"slice", BK_LAYOUT, "x, *, axis, start, end=(the end of the axis)", call_slice, 0,
     "positions start to end - 1 of axis; negative positions count from the end"},
    {"conv1d", BK_LAYER, "x, filters, *, kernel, stride=1, pad=valid, bias=true, init=glorot_uniform, share=(none)",
     call_conv, 1, "a convolution of [C, L]; pad is valid, same (as Keras) or a number"},
    {"conv2d", BK_LAYER, "x, filters, *, kernel, stride=1, pad=valid, bias=true, init=glorot_uniform, share=(none)",
     call_conv, 2, "a convolution of [C, H, W]; kernel and stride k or [kh, kw], pad as conv1d's"},
    {"maxpool2d", BK_LAYER, "x, k, *, stride=(k)", call_pool, 1,
     "the maximum of each window k or [kh, kw] of [C, H, W], without padding"},
    {"avgpool2d", BK_LAYER, "x, k, *, stride=(k)", call_pool, 0,
     "the mean of each window k or [kh, kw] of [C, H, W], without padding"},
    {"dropout", BK_LAYER, "x, p", call_dropout, 0,
     "in training each element zeroed with probability p, the others scaled by 1/(1 - p); x in inference"},
    {"batchnorm", BK_LAYER, "x, *, momentum=0.1, eps=1e-5, share=(none)", call_batchnorm, 0,
     "each feature of [F] or channel of [C, ...] normalized by batch statistics in training, running ones after"},
    {"embedding", BK_LAYER, "ids, vocab, dim, *, init=(normal(0 1)), share=(none)", call_embedding, 0,
     "rows of a [vocab, dim] table looked up by class indices ids; the table is initialized N(0, 1) "
     "as PyTorch's nn.Embedding unless init= says otherwise (GPTs use init=normal(0, 0.02))"},
    {"layernorm", BK_LAYER, "x, *, eps=1e-5, share=(none)", call_rownorm, 0,
     "each row (the last axis) normalized to mean 0 and variance 1, times weight plus bias (ones and zeros), "
     "as PyTorch's LayerNorm"},
    {"rmsnorm", BK_LAYER, "x, *, eps=1e-6, share=(none)", call_rownorm, 1,
     "each row (the last axis) divided by sqrt(mean(x^2) + eps), times weight (ones), as PyTorch's RMSNorm"},
    {"rnn", BK_LAYER, "xs, hidden, *, layers=1, h0=(zeros), share=(none)", call_recurrent, 0,
     "a tanh RNN over a sequence [T, d], a scan: every step's state of the last layer, [T, hidden]; "
     "h0 is [hidden] or [layers, hidden]"},
    {"lstm", BK_LAYER, "xs, hidden, *, layers=1, h0=(zeros), c0=(zeros), share=(none)", call_recurrent, 1,
     "an LSTM (PyTorch's gates i, f, g, o) over a sequence [T, d], a scan: every step's h of the last layer, "
     "[T, hidden]"},
    {"gru", BK_LAYER, "xs, hidden, *, layers=1, h0=(zeros), share=(none)", call_recurrent, 2,
     "a GRU (PyTorch's gates r, z, n) over a sequence [T, d], a scan: every step's state of the last layer, "
     "[T, hidden]"},
    {"attention", BK_PRODUCT, "q, k, v, *, causal=false, scale=(1/sqrt(d))", call_attention, 0,
     "softmax(scale q k^T + mask) v per head, PyTorch's scaled_dot_product_attention, one fused kernel: "
     "q [..., Tq, d], k [..., Tk, d], v [..., Tk, dv] -> [..., Tq, dv], leading axes heads; causal masks "
     "key j > query i"},
    {"one_hot", BK_TENSOR, "ids, k", call_one_hot, 0,
     "class indices ids [...] as floats [..., k]: 1 at each index, 0 elsewhere (no gradient to ids)"},
    {"zeros", BK_TENSOR, "shape", call_filled, 0, "a tensor of zeros of shape (a list such as [100]), without a batch"},
    {"ones", BK_TENSOR, "shape", call_filled, 1, "a tensor of ones of shape (a list such as [100]), without a batch"},

    /* the elementwise functions of ir_maps, in its order; max(x) and min(x) reduce */
    {"relu", BK_ELEMENTWISE, "x", call_map, 0, "max(x, 0)"},
    {"sigmoid", BK_ELEMENTWISE, "x", call_map, 0, "1 / (1 + exp(-x)), evaluated stably"},
    {"tanh", BK_ELEMENTWISE, "x", call_map, 0, "the hyperbolic tangent"},
    {"exp", BK_ELEMENTWISE, "x", call_map, 0, "e^x"},
    {"log", BK_ELEMENTWISE, "x", call_map, 0, "the natural logarithm"},
    {"sin", BK_ELEMENTWISE, "x", call_map, 0, "the sine"},
    {"cos", BK_ELEMENTWISE, "x", call_map, 0, "the cosine"},
    {"tan", BK_ELEMENTWISE, "x", call_map, 0, "the tangent"},
    {"sqrt", BK_ELEMENTWISE, "x", call_map, 0, "the square root"},
    {"abs", BK_ELEMENTWISE, "x", call_map, 0, "|x|"},
    {"square", BK_ELEMENTWISE, "x", call_map, 0, "x^2"},
    {"sign", BK_ELEMENTWISE, "x", call_map, 0, "-1, 0 or 1 (no gradient flows through it)"},
    {"elu", BK_ELEMENTWISE, "x", call_map, 0, "x above 0, exp(x) - 1 below"},
    {"softplus", BK_ELEMENTWISE, "x", call_map, 0, "log(1 + exp(x)), evaluated stably"},
    {"erf", BK_ELEMENTWISE, "x", call_map, 0, "the error function, 2/sqrt(pi) times the integral of exp(-t^2) from 0 to x"},
    {"silu", BK_ELEMENTWISE, "x", call_map, 0, "x sigmoid(x) (swish)"},
    {"gelu", BK_ELEMENTWISE, "x, *, approximate=none", call_gelu, 0,
     "x Phi(x), Phi the standard normal CDF (the erf form); approximate=tanh: "
     "0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as PyTorch's"},
    {"_gelu_tanh", BK_ELEMENTWISE, "x", call_map, 0, "gelu(x, approximate=tanh) (the _ marks it internal)"},
    {"leaky_relu", BK_ELEMENTWISE, "x, a=0.01", call_map, 0, "x above 0, a x below"},
    {"clip", BK_ELEMENTWISE, "x, lo, hi", call_map, 0, "x limited to [lo, hi]"},
    {"min", BK_REDUCTION, "x, *, axis=(every axis)", call_reduce, 'm',
     "the minimum over every axis of an example, or over axis (dropped)"},
    {"min", BK_ELEMENTWISE, "a, b", call_map, 0, "the smaller of a and b (a tie splits the gradient)"},
    {"_xlogx", BK_ELEMENTWISE, "x", call_map, 0, "x log x, 0 at 0: kl_div's term (the _ marks it internal)"},
    {"_log_clamped", BK_ELEMENTWISE, "x", call_map, 0, "max(log x, -100): bce's term (the _ marks it internal)"},
    {"max", BK_REDUCTION, "x, *, axis=(every axis)", call_reduce, 'M',
     "the maximum over every axis of an example, or over axis (dropped)"},
    {"max", BK_ELEMENTWISE, "a, b", call_map, 0, "the larger of a and b (a tie splits the gradient)"},
    {"where", BK_ELEMENTWISE, "cond, a, b", call_map, 0,
     "a where cond is nonzero, b elsewhere, broadcast together: cond holds 0 and 1 (no gradient flows to it)"},
    {NULL, 0, NULL, NULL, 0, NULL},
};

void builtin_parse(const builtin *b, builtin_sig *s) {
    memset(s, 0, sizeof *s);
    snprintf(s->buf, sizeof s->buf, "%s", b->args);
    int star = -1;
    for (char *item = s->buf, *next; item && *item; item = next) {
        next = strchr(item, ',');
        if (next) *next++ = 0;
        while (*item == ' ') item++;
        if (!strcmp(item, "*")) {
            star = s->nargs;
        } else if (!strcmp(item, "/")) {
            s->no_keywords = 1;
        } else if (!strcmp(item, "...")) {
            s->variadic = 1;
        } else if (s->nargs < BUILTIN_MAXARGS) {
            char *eq = strchr(item, '=');
            if (eq) *eq++ = 0;
            s->name[s->nargs] = item;
            s->def[s->nargs++] = eq;
        }
    }
    s->positional = star >= 0 ? star : s->nargs;
    while (s->required < s->positional && !s->def[s->required]) s->required++;
}

const builtin *builtin_find(const char *name, int npos, builtin_sig *sig) {
    const builtin *found = NULL;
    for (const builtin *b = builtins; b->name; b++) {
        if (strcmp(b->name, name) != 0) continue;
        builtin_parse(b, sig);   /* the last row of the name parsed is the one returned */
        if (sig->positional == npos || (sig->variadic && npos > sig->positional)) return b;
        found = b;
    }
    return found;
}

/* ---- docs/functions.md ---------------------------------------------------------------- */

static const char *const kind_names[BK__COUNT] = {
    [BK_ELEMENTWISE] = "elementwise", [BK_REDUCTION] = "reduction", [BK_LAST_AXIS] = "last axis",
    [BK_LAYOUT] = "layout",           [BK_TENSOR] = "tensor",       [BK_PRODUCT] = "product",     [BK_LAYER] = "layer",         [BK_LOSS] = "loss",
    [BK_REGULARIZER] = "regularizer",
};

/* Text in a table cell: a '|' would end the cell. */
static void cell(FILE *out, const char *s) {
    for (; *s; s++) {
        if (*s == '|') fputc('\\', out);
        fputc(*s, out);
    }
}

void builtins_markdown(FILE *out) {
    fputs("# Built-in functions\n\n"
          "Generated from the table in dsl/builtins.c: do not edit it here.  After changing the\n"
          "table, regenerate it with\n\n"
          "    cmake --build build --target functions_md && build/tests/functions_md > docs/functions.md\n\n"
          "(the ctest `functions_md` fails while the two differ).\n\n"
          "Arguments are written as in Python: those before `*` are given by position or by\n"
          "name, those after it by name only, and a `/` after the arguments means by position\n"
          "only.  `name=v` gives the default, in parentheses where it is not a value one could\n"
          "write; an argument without a default must be given.  Shapes are per example: the\n"
          "batch axis is implicit.\n\n"
          "| function | arguments | kind | description |\n"
          "|---|---|---|---|\n", out);
    for (int k = 0; k < BK__COUNT; k++)
        for (const builtin *b = builtins; b->name; b++) {
            if ((int)b->kind != k) continue;
            fprintf(out, "| `%s` | `", b->name);
            cell(out, b->args);
            fprintf(out, "` | %s | ", kind_names[k]);
            cell(out, b->doc);
            fputs(" |\n", out);
        }
}
