"""attention(q, k, v, causal, scale) against PyTorch (issue 25): q, k and v from dense
layers of the inputs, so every layer's parameters get their gradients through the fused
kernel (codegen/emit_attention.c), compared on loss and every gradient by
tests/torch/check.py.  PyTorch 1.13 has no scaled_dot_product_attention, so the reference
is its formula, softmax(q kᵀ · scale + mask) v with scale = 1/sqrt(d) unless given and
the mask -inf above the diagonal when causal (top-left aligned when Tq != Tk, as
is_causal).  scripts/conformance.sh runs these in f32 and again in f64 (--tol 1e-6)."""
import math

import torch


def lin(p, name, x):
    return x @ p[name + ".weight"].T + p[name + ".bias"]


def sdpa(q, k, v, causal=False, scale=None):
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ k.transpose(-1, -2) * scale
    if causal:
        keep = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril()
        s = s.masked_fill(~keep, float("-inf"))
    return torch.softmax(s, -1) @ v


def dense_params(*layers):
    out = {}
    for name, units, width in layers:
        out.update({name + ".weight": [units, width], name + ".bias": [units]})
    return out


def case(x_shape, y_shape, d, dv, options="", causal=False, scale=None, n=4):
    """o = attention(dense(x, d), dense(y, d), dense(y, dv), OPTIONS); loss = sum(tanh(o) * t):
    queries from x, keys and values from y (cross attention when y is not x)."""
    cross = y_shape is not None
    y_shape = y_shape or x_shape
    out_shape = x_shape[:-1] + [dv]
    opt = ", " + options if options else ""
    nn = (f"model attn\ninput x: {x_shape} grad\n" + (f"input y: {y_shape} grad\n" if cross else "") +
          f"target t: {out_shape}\nq = dense(x, {d})\nk = dense({'y' if cross else 'x'}, {d})\n"
          f"v = dense({'y' if cross else 'x'}, {dv})\no = attention(q, k, v{opt})\n"
          f"loss = sum(tanh(o) * t)\ntrain {{ batch = {n} }}\n")
    axes = tuple(range(1, len(out_shape) + 1))

    def reference(p, b):
        x = b["x"]
        y = b["y"] if cross else x
        o = sdpa(lin(p, "q", x), lin(p, "k", y), lin(p, "v", y), causal, scale)
        return (torch.tanh(o) * b["t"]).sum(axes).mean()

    batch = {"x": ("float", x_shape), "t": ("float", out_shape)}
    if cross:
        batch["y"] = ("float", y_shape)
    return dict(nn=nn, params=dense_params(("q", d, x_shape[-1]), ("k", d, y_shape[-1]), ("v", dv, y_shape[-1])),
                batch=batch, n=n, input_grads=["x", "y"] if cross else ["x"], torch=reference)


CASES = {
    "one_head": case([6, 5], None, 4, 3),
    "one_head_causal": case([6, 5], None, 4, 3, "causal=true", causal=True),
    "heads": case([3, 5, 4], None, 4, 4),
    "heads_causal": case([3, 5, 4], None, 4, 4, "causal=true", causal=True),
    "cross": case([3, 5], [7, 4], 4, 2),
    "cross_causal": case([3, 5], [7, 4], 4, 2, "causal=true", causal=True),
    "cross_causal_tall": case([2, 7, 3], [2, 3, 3], 2, 3, "causal=true, scale=0.25", causal=True, scale=0.25),
    "scale": case([2, 4, 3], None, 3, 2, "scale=1.5", scale=1.5),
    "t1_d1": case([1, 1], None, 1, 1, "causal=true", causal=True),
    "t1_cross": case([1, 3], [4, 3], 1, 2),
    "four_axes": case([2, 2, 4, 3], None, 2, 3, "causal=true", causal=True, n=3),
}
