"""nnc's embedding, rnn, lstm and gru against PyTorch's: F.embedding, and the modules
torch.nn.RNN / nn.LSTM / nn.GRU themselves, run on nnc's parameters loaded by name — the
module's state dict is the parameters under the binding's prefix (`h.weight_ih_l0` is
the module `h`'s `weight_ih_l0`), with no renaming — through functional_call, so autograd
sees them; compared on loss and gradients by tests/torch/check.py (scripts/conformance.sh
runs it in f32, and in f64 with --tol 1e-6).  Initial states are [layers, hidden] per
example in nnc, [layers, batch, hidden] in PyTorch."""
import torch
import torch.nn.functional as F


MODULES = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}


def rec(kind, p, name, x, d, h, layers=1, h0=None, c0=None):
    """nn.RNN / nn.LSTM / nn.GRU (batch_first) with the parameters p[`name`.*]; h0 and c0
    are batches of nnc's per-example [layers, hidden] (or [hidden]), zeros when None.  The
    module's forward is its kernel (torch._VF) on its weights in the order of their names,
    `_flat_weights_names`; functional_call on an RNN module is not differentiable in
    PyTorch 1.13 (the module keeps its own list of the tensors)."""
    m = MODULES[kind](d, h, num_layers=layers, batch_first=True).double()
    state = {k[len(name) + 1:]: v for k, v in p.items() if k.startswith(name + ".")}
    assert set(state) == set(m._flat_weights_names), (sorted(state), m._flat_weights_names)
    weights = [state[w] for w in m._flat_weights_names]

    def initial(s):
        if s is None:
            return torch.zeros(layers, x.shape[0], h, dtype=x.dtype)
        return s.reshape(x.shape[0], layers, h).transpose(0, 1).contiguous()   # per example: [B, layers, h]
    args = (weights, True, layers, 0.0, False, False, True)
    if kind == "lstm":
        return torch._VF.lstm(x, (initial(h0), initial(c0)), *args)[0]
    return (torch._VF.gru if kind == "gru" else torch._VF.rnn_tanh)(x, initial(h0), *args)[0]


def names(prefix, kind, d, h, layers=1):
    """The parameters of nn.RNN/LSTM/GRU(d, h, num_layers=layers) under prefix, with shapes."""
    g = {"rnn": 1, "lstm": 4, "gru": 3}[kind] * h
    out = {}
    for l in range(layers):
        out.update({f"{prefix}.weight_ih_l{l}": [g, d if l == 0 else h], f"{prefix}.weight_hh_l{l}": [g, h],
                    f"{prefix}.bias_ih_l{l}": [g], f"{prefix}.bias_hh_l{l}": [g]})
    return out


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
        params=names("h", "rnn", 3, 5),
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
        params=names("h", "lstm", 4, 3),
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
        params={"e.weight": [12, 5], **names("h", "lstm", 5, 6), "logits.weight": [12, 6], "logits.bias": [12]},
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
        params=names("h", "lstm", 3, 4),
        batch={"xs": ("float", [7, 3]), "t": ("float", [2, 4])},
        n=3, input_grads=["xs"],
        torch=lambda p, b: (lambda h: F.mse_loss(h[:, 3:5], b["t"]) + torch.tanh(h[:, 0:1]).sum() / h.shape[0]
                            + 2 * h[:, -1:].sum() / h.shape[0] + (h * h).mean())(rec("lstm", p, "h", b["xs"], 3, 4)),
    ),
    # gru, one layer, with a given initial state (an input of the batch)
    "gru_h0": dict(
        nn="""model gru_h0
input xs: [6, 3] grad
input h0: [4] grad
target t: [6, 4]
h = gru(xs, 4, h0=h0)
loss = mse(h, t)
train { batch = 8 }
""",
        params=names("h", "gru", 3, 4),
        batch={"xs": ("float", [6, 3]), "h0": ("float", [4]), "t": ("float", [6, 4])},
        n=5, input_grads=["xs", "h0"],
        torch=lambda p, b: F.mse_loss(rec("gru", p, "h", b["xs"], 3, 4, h0=b["h0"]), b["t"]),
    ),
    # gru, two layers stacked, initial states [layers, hidden]
    "gru_2layers": dict(
        nn="""model gru_2layers
input xs: [5, 3] grad
input h0: [2, 4] grad
target t: [5, 4]
h = gru(xs, 4, layers=2, h0=h0)
loss = mse(h, t)
train { batch = 8 }
""",
        params=names("h", "gru", 3, 4, 2),
        batch={"xs": ("float", [5, 3]), "h0": ("float", [2, 4]), "t": ("float", [5, 4])},
        n=5, input_grads=["xs", "h0"],
        torch=lambda p, b: F.mse_loss(rec("gru", p, "h", b["xs"], 3, 4, 2, h0=b["h0"]), b["t"]),
    ),
    # lstm, two layers, h0 and c0 given; only the last step is used
    "lstm_2layers": dict(
        nn="""model lstm_2layers
input xs: [7, 3] grad
input h0: [2, 5] grad
input c0: [2, 5] grad
label y: class(3)
h = lstm(xs, 5, layers=2, h0=h0, c0=c0)
last = flatten(slice(h, axis=0, start=-1))
z = dense(last, 3)
loss = cross_entropy(z, y)
train { batch = 8 }
""",
        params={**names("h", "lstm", 3, 5, 2), "z.weight": [3, 5], "z.bias": [3]},
        batch={"xs": ("float", [7, 3]), "h0": ("float", [2, 5]), "c0": ("float", [2, 5]), "y": ("class", 3, [])},
        n=6, input_grads=["xs", "h0", "c0"],
        torch=lambda p, b: F.cross_entropy(
            lin(p, "z", rec("lstm", p, "h", b["xs"], 3, 5, 2, h0=b["h0"], c0=b["c0"])[:, -1]), b["y"]),
    ),
    # a 2-layer rnn whose initial state is computed (a dense layer of an input)
    "rnn_2layers": dict(
        nn="""model rnn_2layers
input xs: [4, 2] grad
input z: [3]
target t: [4, 3]
s = tanh(dense(z, 6))
h0 = reshape(s, [2, 3])
h = rnn(xs, 3, layers=2, h0=h0)
loss = mse(h, t)
train { batch = 8 }
""",
        params={"s.weight": [6, 3], "s.bias": [6], **names("h", "rnn", 2, 3, 2)},
        batch={"xs": ("float", [4, 2]), "z": ("float", [3]), "t": ("float", [4, 3])},
        n=5, input_grads=["xs"],
        torch=lambda p, b: F.mse_loss(rec("rnn", p, "h", b["xs"], 2, 3, 2,
                                          h0=torch.tanh(lin(p, "s", b["z"])).reshape(-1, 2, 3)), b["t"]),
    ),
}
