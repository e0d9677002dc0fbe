"""Functions, repeat, share= and scan against PyTorch (issue 23): the same models written as
PyTorch code on nnc's parameters, by name, compared on loss and every gradient by
tests/torch/check.py.  scripts/conformance.sh runs these in f32 and again in f64
(check.py --dtype f64 --tol 1e-6), where loss and every gradient must agree to 1e-6."""
import torch
import torch.nn.functional as F


def lin(p, name, x, bias=True):
    y = x @ p[name + ".weight"].T
    return y + p[name + ".bias"] if bias else y


def scan(f, xs, init):
    """s_t = f(s_{t-1}, xs[:, t]) for batch-first xs; the states stacked on axis 1."""
    s, out = init, []
    for t in range(xs.shape[1]):
        s = f(s, xs[:, t])
        out.append(s)
    if isinstance(init, tuple):
        return tuple(torch.stack([o[k] for o in out], 1) for k in range(len(init)))
    return torch.stack(out, 1)


def cell(p, h, x):   # def cell(h, x) { return tanh(dense(x, 5) + dense(h, 5, bias=false)) }
    return torch.tanh(lin(p, "hs.0", x) + lin(p, "hs.1", h, bias=False))


def lstm_cell(p, s, x):   # four gates, each its own pair of dense layers (gate() in the model)
    h, c = s
    g = [lin(p, f"hs.{n}.0", x) + lin(p, f"hs.{n}.1", h, bias=False) for n in "ifgo"]
    c2 = torch.sigmoid(g[1]) * c + torch.sigmoid(g[0]) * torch.tanh(g[2])
    return torch.sigmoid(g[3]) * torch.tanh(c2), c2


def block(p, name, h):   # def block(h) { a = relu(dense(h, 6)); return h + dense(a, 6) }
    return h + lin(p, name, F.relu(lin(p, name + ".a", h)))


def conv_embed(p, x):   # def embed(x) { c = relu(conv2d(x, 3, kernel=3)); return dense(flatten(c), 4) }
    c = F.relu(F.conv2d(x, p["ea.c.weight"], p["ea.c.bias"]))
    return lin(p, "ea", c.flatten(1))


def gate_params(prefix, d, h):
    out = {}
    for n in "ifgo":
        out.update({f"{prefix}.{n}.0.weight": [h, d], f"{prefix}.{n}.0.bias": [h], f"{prefix}.{n}.1.weight": [h, h]})
    return out


CASES = {
    # a scan of a hand-written cell: the generated loop against PyTorch's step by step
    "scan_cell": dict(
        nn="""model scan_cell
input xs: [6, 3] grad
target t: [6, 5]
def cell(h, x) { return tanh(dense(x, 5) + dense(h, 5, bias=false)) }
hs = scan(cell, xs, zeros([5]))
loss = mse(hs, t)
train { batch = 8 }
""",
        params={"hs.0.weight": [5, 3], "hs.0.bias": [5], "hs.1.weight": [5, 5]},
        batch={"xs": ("float", [6, 3]), "t": ("float", [6, 5])},
        n=5, input_grads=["xs"],
        torch=lambda p, b: F.mse_loss(scan(lambda h, x: cell(p, h, x), b["xs"],
                                           torch.zeros(b["xs"].shape[0], 5, dtype=b["xs"].dtype)), b["t"]),
    ),
    # a tuple state (h, c): an LSTM cell written by hand, initial states given
    "scan_lstm_cell": dict(
        nn="""model scan_lstm_cell
input xs: [5, 3] grad
input h0: [4] grad
input c0: [4] grad
label y: class(3)
def gate(x, h) { return dense(x, 4) + dense(h, 4, bias=false) }
def cell(s, x) {
    h, c = s
    i = gate(x, h)
    f = gate(x, h)
    g = gate(x, h)
    o = gate(x, h)
    c2 = sigmoid(f) * c + sigmoid(i) * tanh(g)
    return (sigmoid(o) * tanh(c2), c2)
}
hs, cs = scan(cell, xs, (h0, c0))
z = dense(flatten(slice(hs, axis=0, start=-1)), 3)
loss = cross_entropy(z, y) + 0.1 * mean(cs)
train { batch = 8 }
""",
        params={**gate_params("hs", 3, 4), "z.weight": [3, 4], "z.bias": [3]},
        batch={"xs": ("float", [5, 3]), "h0": ("float", [4]), "c0": ("float", [4]), "y": ("class", 3, [])},
        n=5, input_grads=["xs", "h0", "c0"],
        torch=lambda p, b: (lambda hc: F.cross_entropy(lin(p, "z", hc[0][:, -1]), b["y"]) + 0.1 * hc[1].mean())(
            scan(lambda s, x: lstm_cell(p, s, x), b["xs"], (b["h0"], b["c0"]))),
    ),
    # repeat of a residual block: 3 blocks, each with its own parameters
    "repeat_residual": dict(
        nn="""model repeat_residual
input x: [5]
label y: class(4)
def block(h) {
    a = relu(dense(h, 6))
    return h + dense(a, 6)
}
h0 = tanh(dense(x, 6))
h = repeat(block, 3, h0)
z = dense(h, 4)
loss = cross_entropy(z, y)
train { batch = 8 }
""",
        params={"h0.weight": [6, 5], "h0.bias": [6],
                **{k: v for i in range(3) for k, v in {f"h.{i}.a.weight": [6, 6], f"h.{i}.a.bias": [6],
                                                         f"h.{i}.weight": [6, 6], f"h.{i}.bias": [6]}.items()},
                "z.weight": [4, 6], "z.bias": [4]},
        batch={"x": ("float", [5]), "y": ("class", 4, [])},
        n=6,
        torch=lambda p, b: F.cross_entropy(lin(p, "z", block(p, "h.2", block(p, "h.1", block(
            p, "h.0", torch.tanh(lin(p, "h0", b["x"])))))), b["y"]),
    ),
    # a shared convolution: three images through one embedding (a triplet loss)
    "shared_conv": dict(
        nn="""model shared_conv
input a: [1, 6, 6] grad
input p: [1, 6, 6]
input n: [1, 6, 6]
def embed(x) {
    c = relu(conv2d(x, 3, kernel=3))
    return dense(flatten(c), 4)
}
ea = embed(a)
ep = embed(p, share=ea)
en = embed(n, share=ea)
loss = triplet(ea, ep, en, margin=1)
train { batch = 8 }
""",
        params={"ea.c.weight": [3, 1, 3, 3], "ea.c.bias": [3], "ea.weight": [4, 48], "ea.bias": [4]},
        batch={"a": ("float", [1, 6, 6]), "p": ("float", [1, 6, 6]), "n": ("float", [1, 6, 6])},
        n=6, input_grads=["a"],
        torch=lambda p, b: F.triplet_margin_loss(conv_embed(p, b["a"]), conv_embed(p, b["p"]), conv_embed(p, b["n"]),
                                                 margin=1),
    ),
}
