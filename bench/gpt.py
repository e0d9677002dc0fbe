#!/usr/bin/python3
# bench/gpt.py: the PyTorch reference for examples/gpt/gpt.nn, used by bench/gpt.sh and by
# tests/torch/gpt_cases.py (which imports GPT and load_nnc).  The module tree is nanoGPT's
# without its `transformer.` prefix, so its state_dict names are exactly nnc's parameter
# names (wte.weight, wpe, h.0.ln_1.weight, h.0.attn.c_attn.weight, ..., ln_f.bias) and an
# nnc checkpoint loads into it with load_state_dict(strict=True), and back.
#
# The training run is the one nnc's trainer makes, step for step:
# - the examples are the windows nnc's `--text FILE` cuts for a label of a class per
#   position (runtime/data.c, docs/data.md "Text files"): bytes [i, i + T) as input and
#   [i + 1, i + T + 1) as labels, i = 0, T, 2T, ..., plus one last window ending at the
#   file's end when n - 1 is not a multiple of T;
# - epoch e visits them in the order of runtime/train.c's epoch_order: a Fisher-Yates
#   shuffle drawn from xoshiro256** seeded through splitmix64 with (seed ^ SHUFFLE_STREAM)
#   + golden * e (runtime/rng.c), batches of B in that order, the last partial one kept;
# - the initial parameters are read from a safetensors file that `gpt init --save` wrote;
# - AdamW with the same hyperparameters and LambdaLR stepped once per optimizer step with
#   nnc's warmup_cosine factor (runtime/schedule.c).
# So the two loss curves differ only by floating-point rounding (f32 sums in other orders).
#
#   /usr/bin/python3 bench/gpt.py --text FILE --init INIT.safetensors [--threads N]
#        [--epochs E] [--seed S] [--batch B] [--lr X] [--weight-decay W]
#        [--warmup N] [--t-max N] [--log CSV]
#
# Prints one line per epoch, `epoch E  train_loss L  time Ts  tokens/s R`.
import argparse
import json
import math
import struct
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

MASK64 = (1 << 64) - 1
SHUFFLE_STREAM = 0x53485546464C45   # runtime/trainer.h
GOLDEN = 0x9E3779B97F4A7C15


# ---- nnc's generator (runtime/rng.c) and epoch order (runtime/train.c) --------------------

def _splitmix64(state):
    state = (state + GOLDEN) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


def _rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & MASK64


class Xoshiro:
    def __init__(self, seed):
        self.s = []
        for _ in range(4):
            seed, z = _splitmix64(seed)
            self.s.append(z)

    def next(self):
        s = self.s
        result = (_rotl((s[1] * 5) & MASK64, 7) * 9) & MASK64
        t = (s[1] << 17) & MASK64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = _rotl(s[3], 45)
        return result

    def below(self, n):
        threshold = ((1 << 64) - n) % n     # the C's -n % n in uint64_t
        while True:
            x = self.next()
            if x >= threshold:
                return x % n


def epoch_order(n, seed, e):
    rng = Xoshiro(((seed ^ SHUFFLE_STREAM) + GOLDEN * e) & MASK64)
    order = list(range(n))
    for i in range(n - 1, 0, -1):
        j = rng.below(i + 1)
        order[i], order[j] = order[j], order[i]
    return order


# ---- data ---------------------------------------------------------------------------------

def text_windows(path, t):
    """runtime/data.c's windows for `label y: class(K) [T]`: inputs [n, T], labels [n, T]."""
    with open(path, "rb") as f:
        b = np.frombuffer(f.read(), dtype=np.uint8).astype(np.int64)
    if len(b) < t + 1:
        raise SystemExit(f"{path}: {len(b)} bytes, fewer than T + 1 = {t + 1}")
    starts = list(range(0, len(b) - t, t))
    if (len(b) - 1) % t:
        starts.append(len(b) - 1 - t)
    x = np.stack([b[s:s + t] for s in starts])
    y = np.stack([b[s + 1:s + t + 1] for s in starts])
    return torch.from_numpy(x), torch.from_numpy(y)


def load_safetensors(path):
    """A safetensors file as {name: float64 tensor} (nnc writes F32 or F64)."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        lo, hi = info["data_offsets"]
        dtype = {"F32": np.float32, "F64": np.float64}[info["dtype"]]
        a = np.frombuffer(raw[8 + n + lo:8 + n + hi], dtype=dtype).reshape(info["shape"])
        out[name] = torch.from_numpy(a.astype(np.float64))
    return out


# ---- the model -----------------------------------------------------------------------------

class SelfAttention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)

    def forward(self, x):                       # x [B, T, d]
        b, t, d = x.shape
        q, k, v = self.c_attn(x).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        if hasattr(F, "scaled_dot_product_attention"):
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:                                   # torch < 2.0: the formula
            s = (q @ k.transpose(-1, -2)) / math.sqrt(d // self.heads)
            mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
            o = torch.softmax(s.masked_fill(mask, float("-inf")), dim=-1) @ v
        return self.c_proj(o.transpose(1, 2).reshape(b, t, d))


class MLP(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.c_fc = nn.Linear(d, 4 * d)
        self.c_proj = nn.Linear(4 * d, d)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d)
        self.attn = SelfAttention(d, heads)
        self.ln_2 = nn.LayerNorm(d)
        self.mlp = MLP(d)

    def forward(self, x):
        a = x + self.attn(self.ln_1(x))
        return a + self.mlp(self.ln_2(a))


class GPT(nn.Module):
    """examples/gpt/gpt.nn: token and position embeddings, n_layer pre-norm blocks, a final
    layer norm, logits by the token embedding's transpose (tied)."""

    def __init__(self, vocab=128, t=64, d=128, heads=4, layers=4):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Parameter(torch.zeros(t, d))
        self.h = nn.ModuleList([Block(d, heads) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(d)

    def forward(self, ids):                     # ids [B, T] -> logits [B, T, vocab]
        x = self.wte(ids) + self.wpe
        for block in self.h:
            x = block(x)
        return self.ln_f(x) @ self.wte.weight.t()


def load_nnc(model, params, dtype):
    """nnc's parameters (name -> tensor) into the module, by name; every name must match."""
    model.load_state_dict({k: v.to(dtype) for k, v in params.items()}, strict=True)


def warmup_cosine(warmup, t_max):
    """nnc's warmup_cosine factor (docs/language.md, "Schedules"), for LambdaLR."""
    def f(t):
        if t < warmup:
            return (t + 1) / warmup
        if t >= t_max:
            return 0.0
        return 0.5 * (1 + math.cos(math.pi * (t - warmup) / (t_max - warmup)))
    return f


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--text", required=True)
    ap.add_argument("--init", required=True, help="safetensors written by `gpt init --save`")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--t-max", type=int, default=2000)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--context", type=int, default=64)
    ap.add_argument("--vocab", type=int, default=128)
    ap.add_argument("--log", help="write CSV epoch,train_loss,seconds")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    x, y = text_windows(a.text, a.context)
    model = GPT(a.vocab, a.context, a.dim, a.heads, a.layers)
    load_nnc(model, load_safetensors(a.init), torch.float32)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(a.warmup, a.t_max))
    n = len(x)
    rows = []
    for e in range(a.epochs):
        order = torch.tensor(epoch_order(n, a.seed, e))
        total, t0 = 0.0, time.perf_counter()
        losses = []
        for at in range(0, n, a.batch):
            idx = order[at:at + a.batch]
            logits = model(x[idx])
            loss = F.cross_entropy(logits.reshape(-1, a.vocab), y[idx].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.detach() * len(idx))
        seconds = time.perf_counter() - t0
        total = float(torch.stack(losses).sum()) / n
        rows.append((e + 1, total, seconds))
        print(f"epoch {e + 1}  train_loss {total:.4f}  time {seconds:.2f}s  "
              f"tokens/s {n * a.context / seconds:.0f}", flush=True)
    if a.log:
        with open(a.log, "w") as f:
            f.write("epoch,train_loss,seconds\n")
            for r in rows:
                f.write(f"{r[0]},{r[1]:.6f},{r[2]:.3f}\n")


if __name__ == "__main__":
    main()
