"""nnc's own conformance cases against PyTorch, in the case format of tests/torch/check.py:
run with  /usr/bin/python3 tests/torch/check.py build/nnc tests/torch/cases.py
(scripts/conformance.sh runs these and the other files here).  Models mix ops the way users write them: residual sums,
concatenated branches, several losses added, regularizers on named parameters, reductions
over an axis, layout ops.  Each case is the model in nnc's language and the same model in
PyTorch (float64), compared on loss and every gradient."""
import torch
import torch.nn.functional as F


def lin(p, name, x):
    return x @ p[name + ".weight"].T + p[name + ".bias"]


CASES = {
    # a residual block: h + f(h) feeds the classifier; h is used twice
    "residual_mlp": dict(
        nn="""model residual_mlp
input x: [10]
label y: class(4)
h = relu(dense(x, 8))
r = h + tanh(dense(h, 8))
z = dense(r, 4)
loss = cross_entropy(z, y) + 1e-3 * l2(h.weight)
train { batch = 8 }
""",
        params={"h.weight": [8, 10], "h.bias": [8], "r.weight": [8, 8], "r.bias": [8], "z.weight": [4, 8], "z.bias": [4]},
        batch={"x": ("float", [10]), "y": ("class", 4, [])},
        n=6,
        torch=lambda p, b: (lambda h: F.cross_entropy(lin(p, "z", h + torch.tanh(lin(p, "r", h))), b["y"])
                            + 1e-3 * (p["h.weight"] ** 2).sum())(F.relu(lin(p, "h", b["x"]))),
    ),
    # two branches concatenated, several losses on two heads
    "two_heads": dict(
        nn="""model two_heads
input x: [6] grad
label y: class(3)
target t: [2]
a = sigmoid(dense(x, 5))
b = elu(dense(x, 4))
c = concat(a, b)
logits = dense(c, 3)
reg = dense(c, 2)
loss = nll(log_softmax(logits), y) + mse(reg, t) + 0.5 * l1_loss(reg, t) + 1e-2 * l1(reg.weight)
train { batch = 4 }
""",
        params={"a.weight": [5, 6], "a.bias": [5], "b.weight": [4, 6], "b.bias": [4], "logits.weight": [3, 9],
                "logits.bias": [3], "reg.weight": [2, 9], "reg.bias": [2]},
        batch={"x": ("float", [6]), "y": ("class", 3, []), "t": ("float", [2])},
        n=5, input_grads=["x"],
        torch=lambda p, b: (lambda c: F.nll_loss(F.log_softmax(lin(p, "logits", c), -1), b["y"])
                            + F.mse_loss(lin(p, "reg", c), b["t"]) + 0.5 * F.l1_loss(lin(p, "reg", c), b["t"])
                            + 1e-2 * p["reg.weight"].abs().sum())(
            torch.cat([torch.sigmoid(lin(p, "a", b["x"])), F.elu(lin(p, "b", b["x"]))], -1)),
    ),
    # binary losses on logits and probabilities
    "binary_losses": dict(
        nn="""model binary_losses
input x: [5]
target t: [3]
target s: [3]
z = dense(x, 3)
loss = bce_logits(z, t) + bce(sigmoid(z), t) + logistic(z, s)
train { batch = 8 }
""",
        params={"z.weight": [3, 5], "z.bias": [3]},
        batch={"x": ("float", [5]), "t": ("prob", [3]), "s": ("pm1", [3])},
        n=7,
        torch=lambda p, b: (lambda z: F.binary_cross_entropy_with_logits(z, b["t"])
                            + F.binary_cross_entropy(torch.sigmoid(z), b["t"])
                            + F.softplus(-b["s"] * z).mean(1).mean())(lin(p, "z", b["x"])),
    ),
    # distributions: kl_div against softmax targets, hinge on scores
    "kl_hinge": dict(
        nn="""model kl_hinge
input x: [4]
input q: [5]
label y: class(5)
z = dense(x, 5)
loss = kl_div(log_softmax(z), softmax(q)) + hinge(z, y)
train { batch = 4 }
""",
        params={"z.weight": [5, 4], "z.bias": [5]},
        batch={"x": ("float", [4]), "q": ("float", [5]), "y": ("class", 5, [])},
        n=4,
        torch=lambda p, b: (lambda z: F.kl_div(F.log_softmax(z, -1), F.softmax(b["q"], -1), reduction="sum") / z.shape[0]
                            + F.multi_margin_loss(z, b["y"], reduction="sum") * z.shape[1] / z.shape[0])(lin(p, "z", b["x"])),
    ),
    # triplet margin loss over embeddings of three inputs sharing nothing
    "triplet": dict(
        nn="""model triplet
input a: [6]
input pos: [6]
input neg: [6]
ea = dense(a, 4)
loss = triplet(ea, tanh(pos[0:4]), neg[0:4])
train { batch = 4 }
""".replace("tanh(pos[0:4]), neg[0:4]", "tanh(slice(pos, axis=0, start=0, end=4)), slice(neg, axis=0, start=2)"),
        params={"ea.weight": [4, 6], "ea.bias": [4]},
        batch={"a": ("float", [6]), "pos": ("float", [6]), "neg": ("float", [6])},
        n=5,
        torch=lambda p, b: F.triplet_margin_loss(lin(p, "ea", b["a"]), torch.tanh(b["pos"][:, 0:4]), b["neg"][:, 2:6]),
    ),
    # per-example matrices: dense over a sequence, reductions over an axis, transpose, @
    "sequence_ops": dict(
        nn="""model sequence_ops
input xs: [5, 3]
target t: [4]
h = tanh(dense(xs, 4))
m = mean(h, axis=0)
s = max(h, axis=1)
g = transpose(h) @ h
loss = mse(m, t) + sum(s) / 5 + 0.1 * sum(g) + norm2(h)
train { batch = 4 }
""",
        params={"h.weight": [4, 3], "h.bias": [4]},
        batch={"xs": ("float", [5, 3]), "t": ("float", [4])},
        n=3,
        torch=lambda p, b: (lambda h: F.mse_loss(h.mean(1), b["t"]) + (h.amax(2).sum(1) / 5).mean()
                            + 0.1 * (h.transpose(1, 2) @ h).sum((1, 2)).mean()
                            + h.flatten(1).norm(dim=1).mean())(torch.tanh(lin(p, "h", b["xs"]))),
    ),
    # elementwise functions with their kinks kept away from the data
    "elementwise_mix": dict(
        nn="""model elementwise_mix
input x: [6] grad
param w: [6] = normal(0, 1)
u = x * w
v = softplus(u) + leaky_relu(u, 0.1) + clip(u, -1, 1) + max(u, 0.3) - min(u, -0.2)
loss = sum(v * sin(u)) + mean(sqrt(u * u + 1) * cos(u)) + sum(abs(u) * square(x)) / 10
train { batch = 4 }
""",
        params={"w": [6]},
        batch={"x": ("float", [6])},
        n=5, input_grads=["x"],
        torch=lambda p, b: (lambda u: ((F.softplus(u) + F.leaky_relu(u, 0.1) + u.clamp(-1, 1) + torch.maximum(u, torch.tensor(0.3, dtype=u.dtype))
                                        - torch.minimum(u, torch.tensor(-0.2, dtype=u.dtype))) * torch.sin(u)).sum(1).mean()
                            + (torch.sqrt(u * u + 1) * torch.cos(u)).mean(1).mean()
                            + (u.abs() * b["x"] ** 2).sum(1).mean() / 10)(b["x"] * p["w"]),
    ),
    # slices of concatenations: inside one operand (read from it directly, shape.c), through
    # nested concats, along the last axis, and one straddling two operands
    "slice_concat": dict(
        nn="""model slice_concat
input x: [2, 3] grad
input y: [4, 3] grad
target t: [3, 3]
k = concat(concat(x, y, axis=0), tanh(x), axis=0)
w = slice(concat(y, exp(y), axis=-1), axis=1, start=2, end=5)
loss = sum(slice(k, axis=0, start=3, end=6) * t) + sum(sin(slice(k, axis=0, start=-2))) + sum(slice(k, axis=0, start=1, end=4) ^ 2) + sum(w * w)
train { batch = 4 }
""",
        params={},
        batch={"x": ("float", [2, 3]), "y": ("float", [4, 3]), "t": ("float", [3, 3])},
        n=3, input_grads=["x", "y"],
        torch=lambda p, b: (lambda k, w: ((k[:, 3:6] * b["t"]).sum((1, 2)) + torch.sin(k[:, -2:]).sum((1, 2))
                                          + (k[:, 1:4] ** 2).sum((1, 2)) + (w * w).sum((1, 2))).mean())(
            torch.cat([b["x"], b["y"], torch.tanh(b["x"])], 1), torch.cat([b["y"], torch.exp(b["y"])], 2)[:, :, 2:5]),
    ),
    # slices read in place by the loops of their readers (fuse.c plan_slice_views): along
    # the last axis (nested loops, starts 0, 2 and 4), along the first (an offset per example)
    "slice_views": dict(
        nn="""model slice_views
input x: [3, 8] grad
target t: [3, 3]
u = tanh(x)
a = slice(u, axis=1, start=2, end=5)
b = sigmoid(a)
c = slice(x, axis=0, start=1, end=2)
d = exp(c)
e = slice(x, axis=1, start=0, end=4) * slice(x, axis=1, start=4, end=8)
f = a * b
loss = sum(b * t) + sum(d * d) + sum(sin(e)) + sum(f * f) + sum(u)
train { batch = 4 }
""",
        params={},
        batch={"x": ("float", [3, 8]), "t": ("float", [3, 3])},
        n=3, input_grads=["x"],
        torch=lambda p, b: (lambda x, u: (lambda a: ((torch.sigmoid(a) * b["t"]).sum((1, 2))
                                                     + (torch.exp(x[:, 1:2]) ** 2).sum((1, 2))
                                                     + torch.sin(x[:, :, 0:4] * x[:, :, 4:8]).sum((1, 2))
                                                     + ((a * torch.sigmoid(a)) ** 2).sum((1, 2))
                                                     + u.sum((1, 2))).mean())(u[:, :, 2:5]))(b["x"], torch.tanh(b["x"])),
    ),
}
