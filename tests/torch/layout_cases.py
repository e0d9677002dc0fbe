"""N-d layout ops, softmax along any axis and where against PyTorch (tests/torch/check.py;
scripts/conformance.sh runs it): permute and transpose(x, a, b) on examples of rank 3 and
4 (a batch axis in front, so PyTorch's axes are nnc's plus one; one large enough to be
copied in tiles), concat of three and
more operands, split into a tuple, softmax and log_softmax along the first and a middle
axis, and where with its condition and values broadcast together.  Each case compares
the loss and the gradients of its parameters and `grad` inputs."""
import torch


def red(v):
    """The per-example sum: over every axis but the batch."""
    return v.sum(tuple(range(1, v.dim())))


def case(nn, params, batch, reference, grads=("x",), n=4):
    return dict(nn="model m\n" + nn + "train { batch = 4 }\n", params=params, batch=batch, n=n,
                input_grads=list(grads), torch=reference)


CASES = {
    "permute_rank3": case(
        "input x: [2, 3, 4] grad\ntarget t: [4, 2, 3]\nparam w: [4, 2, 3]\n"
        "loss = sum(permute(x, [2, 0, 1]) * t) + sum(tanh(permute(x, [-1, 0, 1]) * w))\n",
        {"w": [4, 2, 3]}, {"x": ("float", [2, 3, 4]), "t": ("float", [4, 2, 3])},
        lambda p, b: (red(b["x"].permute(0, 3, 1, 2) * b["t"]) +
                      red(torch.tanh(b["x"].permute(0, 3, 1, 2) * p["w"]))).mean()),
    "permute_rank4": case(
        "input x: [2, 3, 1, 5] grad\ntarget t: [5, 1, 2, 3]\n"
        "y = permute(x, [3, 2, 0, 1])\nloss = sum(y * t) + sum(sin(y) * y)\n",
        {}, {"x": ("float", [2, 3, 1, 5]), "t": ("float", [5, 1, 2, 3])},
        lambda p, b: (lambda y: red(y * b["t"]) + red(torch.sin(y) * y))(b["x"].permute(0, 4, 3, 1, 2)).mean()),
    "permute_tiled": case(   # last two axes of 130 x 129: copied in 16 x 16 tiles, ragged at the ends
        "input x: [2, 130, 129] grad\nparam w: [2, 129, 130]\n"
        "loss = sum(transpose(x, 1, 2) * w) + sum(permute(x, [2, 1, 0]) * permute(w, [1, 2, 0]))\n",
        {"w": [2, 129, 130]}, {"x": ("float", [2, 130, 129])},
        lambda p, b: (red(b["x"].transpose(2, 3) * p["w"]) +
                      red(b["x"].permute(0, 3, 2, 1) * p["w"].permute(1, 2, 0))).mean(), n=2),
    "transpose_axes": case(
        "input x: [2, 3, 4, 2] grad\nparam w: [2, 4, 3, 2]\n"
        "a = transpose(x, 1, 2)\nc = transpose(x, 0, -1)\n"
        "loss = sum(a * w) + sum(exp(c) * transpose(transpose(w, 0, 3), 1, 2) * c)\n",
        {"w": [2, 4, 3, 2]}, {"x": ("float", [2, 3, 4, 2])},
        lambda p, b: (red(b["x"].transpose(2, 3) * p["w"]) +
                      red(torch.exp(b["x"].transpose(1, 4)) * p["w"].transpose(0, 3).transpose(1, 2) * b["x"].transpose(1, 4))).mean()),
    "concat_n": case(
        "input x: [2, 3] grad\ninput y: [1, 3] grad\ninput z: [4, 3] grad\ntarget t: [9, 3]\n"
        "k = concat(x, y, tanh(x), z, axis=0)\nj = concat(x, sin(x), x * x, axis=-1)\n"
        "loss = sum(k * t) + sum(tanh(j) * j)\n",
        {},
        {"x": ("float", [2, 3]), "y": ("float", [1, 3]), "z": ("float", [4, 3]), "t": ("float", [9, 3])},
        lambda p, b: (red(torch.cat([b["x"], b["y"], torch.tanh(b["x"]), b["z"]], 1) * b["t"]) +
                      (lambda j: red(torch.tanh(j) * j))(
                          torch.cat([b["x"], torch.sin(b["x"]), b["x"] * b["x"]], 2))).mean(),
        grads=("x", "y", "z")),
    "concat_many": case(
        "input x: [2] grad\ntarget t: [20]\n"
        "loss = sum(concat(x, x * 2, sin(x), x, x, exp(x), x, x, cos(x), x) * t)\n",
        {}, {"x": ("float", [2]), "t": ("float", [20])},
        lambda p, b: red(torch.cat([b["x"], b["x"] * 2, torch.sin(b["x"]), b["x"], b["x"], torch.exp(b["x"]),
                                    b["x"], b["x"], torch.cos(b["x"]), b["x"]], 1) * b["t"]).mean()),
    "split": case(
        "input x: [4, 6] grad\ntarget t: [4, 2]\n"
        "a, b, c = split(x, 3)\nd, e = split(x, 2, axis=0)\n"
        "loss = sum(a * t) + sum(sin(b) * c) + sum(d * e * e)\n",
        {}, {"x": ("float", [4, 6]), "t": ("float", [4, 2])},
        lambda p, b: (lambda a, bb, c, d, e: red(a * b["t"]) + red(torch.sin(bb) * c) + red(d * e * e))(
            *torch.chunk(b["x"], 3, 2), *torch.chunk(b["x"], 2, 1)).mean()),
    "softmax_axis0": case(
        "input x: [3, 4, 2] grad\ntarget t: [3, 4, 2]\n"
        "loss = sum(softmax(x, axis=0) * t) + sum(log_softmax(x, axis=0) * t * t)\n",
        {}, {"x": ("float", [3, 4, 2]), "t": ("float", [3, 4, 2])},
        lambda p, b: (red(torch.softmax(b["x"], 1) * b["t"]) +
                      red(torch.log_softmax(b["x"], 1) * b["t"] * b["t"])).mean()),
    "softmax_middle": case(
        "input x: [2, 5, 3] grad\nparam w: [5, 3]\ntarget t: [2, 5, 3]\n"
        "loss = sum(softmax(x * w, axis=1) * t) + sum(log_softmax(x, axis=-2) * t) + sum(softmax(w, axis=0) * w)\n",
        {"w": [5, 3]}, {"x": ("float", [2, 5, 3]), "t": ("float", [2, 5, 3])},
        lambda p, b: (red(torch.softmax(b["x"] * p["w"], 2) * b["t"]) + red(torch.log_softmax(b["x"], 2) * b["t"]) +
                      (torch.softmax(p["w"], 0) * p["w"]).sum()).mean()),
    "where": case(
        "input x: [3, 4] grad\ninput y: [4] grad\ninput r: [3, 1]\nparam w: [3, 4]\ntarget t: [3, 4]\n"
        "c = relu(sign(r))\n"
        "loss = sum(where(c, x, y) * t) + sum(where(c, sin(w), x * x) * t) + sum(where(c, 2, y) * t)\n",
        {"w": [3, 4]}, {"x": ("float", [3, 4]), "y": ("float", [4]), "r": ("pm1", [3, 1]), "t": ("float", [3, 4])},
        lambda p, b: (lambda c: red(torch.where(c, b["x"], b["y"][:, None, :]) * b["t"]) +
                      red(torch.where(c, torch.sin(p["w"]), b["x"] * b["x"]) * b["t"]) +
                      red(torch.where(c, torch.full_like(b["t"], 2.0), b["y"][:, None, :]) * b["t"]))(
            b["r"] > 0).mean(),
        grads=("x", "y")),
}
