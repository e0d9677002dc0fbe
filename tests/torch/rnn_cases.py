"""nnc's embedding, rnn and lstm against PyTorch's: F.embedding, and the kernels that
torch.nn.RNN / torch.nn.LSTM run (torch._VF.rnn_tanh / lstm, the modules' own forward,
called with nnc's parameters so autograd sees them), compared on loss and gradients by
../shared/conformance/check.py (scripts/conformance.sh runs it)."""
import torch
import torch.nn.functional as F


def rec(kind, p, name, x, d, h):
    """nn.RNN / nn.LSTM (one layer, batch_first, zero initial state) on p's `name.*`."""
    weights = [p[f"{name}.{w}"] for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    h0 = torch.zeros(1, x.shape[0], h, dtype=x.dtype)
    if kind == "lstm":
        return torch._VF.lstm(x, (h0, h0.clone()), weights, True, 1, 0.0, False, False, True)[0]
    return torch._VF.rnn_tanh(x, h0, weights, True, 1, 0.0, False, False, True)[0]


def lin(p, name, x):
    return x @ p[name + ".weight"].T + p[name + ".bias"]


CASES = {
    "embedding": dict(
        nn="""model embedding
input ids: class(10) [6]
target t: [6, 4]
e = embedding(ids, 10, 4)
loss = mse(tanh(e), t)
train { batch = 8 }
""",
        params={"e.weight": [10, 4]},
        batch={"ids": ("class", 10, [6]), "t": ("float", [6, 4])},
        n=5,
        torch=lambda p, b: F.mse_loss(torch.tanh(F.embedding(b["ids"], p["e.weight"])), b["t"]),
    ),
    "rnn": dict(
        nn="""model rnn
input xs: [7, 3] grad
target t: [7, 5]
h = rnn(xs, 5)
loss = mse(h, t)
train { batch = 8 }
""",
        params={"h.weight_ih": [5, 3], "h.weight_hh": [5, 5], "h.bias_ih": [5], "h.bias_hh": [5]},
        batch={"xs": ("float", [7, 3]), "t": ("float", [7, 5])},
        n=6, input_grads=["xs"],
        torch=lambda p, b: F.mse_loss(rec("rnn", p, "h", b["xs"], 3, 5), b["t"]),
    ),
    "lstm": dict(
        nn="""model lstm
input xs: [6, 4] grad
target t: [6, 3]
h = lstm(xs, 3)
loss = mse(h, t)
train { batch = 8 }
""",
        params={"h.weight_ih": [12, 4], "h.weight_hh": [12, 3], "h.bias_ih": [12], "h.bias_hh": [12]},
        batch={"xs": ("float", [6, 4]), "t": ("float", [6, 3])},
        n=5, input_grads=["xs"],
        torch=lambda p, b: F.mse_loss(rec("lstm", p, "h", b["xs"], 4, 3), b["t"]),
    ),
    # a character model in miniature: embedding, lstm, the last step, a classifier
    "char_lstm": dict(
        nn="""model char_lstm
input ids: class(12) [8]
label y: class(12)
e = embedding(ids, 12, 5)
h = lstm(e, 6)
last = flatten(slice(h, axis=0, start=-1))
logits = dense(last, 12)
loss = cross_entropy(logits, y)
train { batch = 4 }
""",
        params={"e.weight": [12, 5], "h.weight_ih": [24, 5], "h.weight_hh": [24, 6], "h.bias_ih": [24],
                "h.bias_hh": [24], "logits.weight": [12, 6], "logits.bias": [12]},
        batch={"ids": ("class", 12, [8]), "y": ("class", 12, [])},
        n=4,
        torch=lambda p, b: F.cross_entropy(
            lin(p, "logits", rec("lstm", p, "h", F.embedding(b["ids"], p["e.weight"]), 5, 6)[:, -1]), b["y"]),
    ),
    # steps read by slices (which read the states themselves, not their concatenation):
    # the first, two in the middle, the last, and the whole sequence besides
    "lstm_slices": dict(
        nn="""model lstm_slices
input xs: [7, 3] grad
target t: [2, 4]
h = lstm(xs, 4)
mid = slice(h, axis=0, start=3, end=5)
loss = mse(mid, t) + sum(tanh(slice(h, axis=0, start=0, end=1))) + 2 * sum(slice(h, axis=0, start=-1)) + mean(h * h)
train { batch = 4 }
""",
        params={"h.weight_ih": [16, 3], "h.weight_hh": [16, 4], "h.bias_ih": [16], "h.bias_hh": [16]},
        batch={"xs": ("float", [7, 3]), "t": ("float", [2, 4])},
        n=3, input_grads=["xs"],
        torch=lambda p, b: (lambda h: F.mse_loss(h[:, 3:5], b["t"]) + torch.tanh(h[:, 0:1]).sum() / h.shape[0]
                            + 2 * h[:, -1:].sum() / h.shape[0] + (h * h).mean())(rec("lstm", p, "h", b["xs"], 3, 4)),
    ),
}
