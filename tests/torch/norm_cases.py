"""layernorm, rmsnorm, gelu (both forms), erf and silu against PyTorch (issue 25): the same
models written as PyTorch code on nnc's parameters, by name, compared on loss and every
gradient by tests/torch/check.py.  layernorm is F.layer_norm over the last axis; rmsnorm is
PyTorch 2.4's nn.RMSNorm written as its formula (Debian's torch 1.13 has no RMSNorm); gelu
is F.gelu with approximate='none' and 'tanh'.  Inputs are one example's [D], [T, D] and
[2, T, D] (T = 1 among them), layernorm of D = 1 (the bias: the loss checks the forward),
layernorm feeding dense and dense feeding it, shared weights, a pre-norm residual block.
scripts/conformance.sh runs these in f32 and again in f64 (check.py --dtype f64 --tol
1e-6)."""
import torch
import torch.nn.functional as F


def lin(p, name, x, bias=True):
    y = x @ p[name + ".weight"].T
    return y + p[name + ".bias"] if bias else y


def ln(p, name, x, eps=1e-5):
    return F.layer_norm(x, (x.shape[-1],), p[name + ".weight"], p[name + ".bias"], eps)


def rms(p, name, x, eps=1e-6):   # nn.RMSNorm(D, eps): x / sqrt(mean(x^2) + eps) * weight
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * p[name + ".weight"]


def red(x):   # sum over an example's axes
    return x.sum(tuple(range(1, x.dim())))


def case(nn, params, batch, torch_fn, **kw):
    return dict(nn=nn, params=params, batch=batch, torch=torch_fn, **kw)


CASES = {
    # dense feeding layernorm feeding dense, of a vector per example
    "layernorm_dense": case(
        """model layernorm_dense
input x: [6] grad
target t: [3]
h = layernorm(dense(x, 8))
z = dense(h, 3)
loss = sum(z * t) + sum(h * h * h) / 10
train { batch = 5 }
""",
        {"h.0.weight": [8, 6], "h.0.bias": [8], "h.1.weight": [8], "h.1.bias": [8], "z.weight": [3, 8],
         "z.bias": [3]},
        {"x": ("float", [6]), "t": ("float", [3])},
        lambda p, b: (lambda h: red(lin(p, "z", h) * b["t"]) + red(h ** 3) / 10)(ln(p, "h.1", lin(p, "h.0", b["x"])))
        .mean(),
        input_grads=["x"]),
    # layernorm of sequences [T, D] (T = 1 and 4) and heads [2, T, D], one with eps given
    "layernorm_seq": case(
        """model layernorm_seq
input x: [4, 5] grad
input y: [1, 3] grad
input z: [2, 3, 4] grad
target t: [2, 3, 4]
a = layernorm(x)
b = layernorm(y, eps=1e-3)
c = layernorm(z * 2)
loss = sum(tanh(a) * x) + sum(b * b * b) + sum(sin(c) * t)
train { batch = 4 }
""",
        {"a.weight": [5], "a.bias": [5], "b.weight": [3], "b.bias": [3], "c.weight": [4], "c.bias": [4]},
        {"x": ("float", [4, 5]), "y": ("float", [1, 3]), "z": ("float", [2, 3, 4]), "t": ("float", [2, 3, 4])},
        lambda p, b: (red(torch.tanh(ln(p, "a", b["x"])) * b["x"]) + red(ln(p, "b", b["y"], 1e-3) ** 3)
                      + red(torch.sin(ln(p, "c", b["z"] * 2)) * b["t"])).mean(),
        input_grads=["x", "y", "z"]),
    # D = 1: a row has no variance, the output is the bias (and dx is 0)
    "layernorm_d1": case(
        """model layernorm_d1
input x: [3, 1] grad
target t: [3, 1]
h = layernorm(x)
loss = sum(h * t) + sum(h * h)
train { batch = 4 }
""",
        {"h.weight": [1], "h.bias": [1]},
        {"x": ("float", [3, 1]), "t": ("float", [3, 1])},
        lambda p, b: (lambda h: red(h * b["t"]) + red(h * h))(ln(p, "h", b["x"])).mean(),
        input_grads=["x"]),
    # two layernorms of one set of parameters: their gradients add up
    "layernorm_share": case(
        """model layernorm_share
input x: [2, 6] grad
input y: [6] grad
a = layernorm(x)
b = layernorm(y * y, share=a)
loss = sum(a * a * a) + sum(sin(b))
train { batch = 3 }
""",
        {"a.weight": [6], "a.bias": [6]},
        {"x": ("float", [2, 6]), "y": ("float", [6])},
        lambda p, b: (red(ln(p, "a", b["x"]) ** 3) + red(torch.sin(ln(p, "a", b["y"] * b["y"])))).mean(),
        input_grads=["x", "y"]),
    # rmsnorm of [D] after dense and feeding dense, [T, D] with T = 1, heads [2, T, D]
    "rmsnorm": case(
        """model rmsnorm
input x: [6] grad
input y: [1, 4] grad
input z: [2, 3, 4] grad
target t: [2, 3, 4]
h = rmsnorm(dense(x, 5))
u = dense(h, 2)
a = rmsnorm(y, eps=1e-4)
c = rmsnorm(z + 1)
loss = sum(u * u) + sum(a * a * a) + sum(sin(c) * t)
train { batch = 4 }
""",
        {"h.0.weight": [5, 6], "h.0.bias": [5], "h.1.weight": [5], "u.weight": [2, 5], "u.bias": [2],
         "a.weight": [4], "c.weight": [4]},
        {"x": ("float", [6]), "y": ("float", [1, 4]), "z": ("float", [2, 3, 4]), "t": ("float", [2, 3, 4])},
        lambda p, b: (red(lin(p, "u", rms(p, "h.1", lin(p, "h.0", b["x"]))) ** 2) + red(rms(p, "a", b["y"], 1e-4) ** 3)
                      + red(torch.sin(rms(p, "c", b["z"] + 1)) * b["t"])).mean(),
        input_grads=["x", "y", "z"]),
    # gelu's two forms, erf and silu on [D], [T, D] and [2, T, D]
    "gelu_erf_silu": case(
        """model gelu_erf_silu
input x: [5] grad
input y: [3, 4] grad
input z: [2, 1, 3] grad
target t: [3, 4]
h = dense(x, 4) * 2
l = sum(gelu(h)) + sum(gelu(y * 3, approximate=tanh) * t) + sum(erf(z) * z) + sum(silu(y * 2) * t)
loss = l + sum(gelu(z, approximate=none) * silu(z)) + sum(erf(h) * gelu(h, approximate=tanh))
train { batch = 4 }
""",
        {"h.weight": [4, 5], "h.bias": [4]},
        {"x": ("float", [5]), "y": ("float", [3, 4]), "z": ("float", [2, 1, 3]), "t": ("float", [3, 4])},
        lambda p, b: (lambda h, y, z, t: red(F.gelu(h)) + red(F.gelu(y * 3, approximate="tanh") * t)
                      + red(torch.erf(z) * z) + red(F.silu(y * 2) * t) + red(F.gelu(z) * F.silu(z))
                      + red(torch.erf(h) * F.gelu(h, approximate="tanh")))(
            lin(p, "h", b["x"]) * 2, b["y"], b["z"], b["t"]).mean(),
        input_grads=["x", "y", "z"]),
    # a pre-norm transformer MLP block on [T, D]: x + dense(gelu(dense(layernorm(x), 4D)), D),
    # then rmsnorm and a classifier head
    "prenorm_block": case(
        """model prenorm_block
input x: [3, 8] grad
label y: class(4) [3]
def mlp(h) { return dense(gelu(dense(h, 16)), 8) }
r = x + mlp(layernorm(x))
z = dense(rmsnorm(r), 4)
loss = sum(cross_entropy(z, y))
train { batch = 4 }
""",
        {"r.0.weight": [8], "r.0.bias": [8], "r.1.0.weight": [16, 8], "r.1.0.bias": [16], "r.1.1.weight": [8, 16],
         "r.1.1.bias": [8], "z.0.weight": [8], "z.1.weight": [4, 8], "z.1.bias": [4]},
        {"x": ("float", [3, 8]), "y": ("class", 4, [3])},
        lambda p, b: (lambda r: F.cross_entropy(lin(p, "z.1", rms(p, "z.0", r)).transpose(1, 2), b["y"],
                                                reduction="none").sum(1))(
            b["x"] + lin(p, "r.1.1", F.gelu(lin(p, "r.1.0", ln(p, "r.0", b["x"]))))).mean(),
        input_grads=["x"]),
}
