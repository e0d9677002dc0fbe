"""The character GPT against PyTorch (issue 25): a pre-norm transformer block alone, a small
GPT of the same structure, and examples/gpt/gpt.nn itself, each compared on the loss and
every gradient by tests/torch/check.py.  The PyTorch side is bench/gpt.py's module tree
(nanoGPT's names without `transformer.`): nnc's parameters go into it by name through
torch.nn.utils.stateless.functional_call, after checking that the two sets of names are the
same, so these cases also show that an nnc checkpoint loads into the PyTorch module
(bench/gpt.py loads one with load_state_dict(strict=True)).  scripts/conformance.sh runs
them in f32 and in f64 (--dtype f64 --tol 1e-6)."""
import os
import sys

import torch
import torch.nn.functional as F
from torch.nn.utils.stateless import functional_call

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
from gpt import GPT, Block  # noqa: E402

EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "gpt", "gpt.nn")


def gpt_defs(t, d, heads, composed=False):
    """examples/gpt/gpt.nn's functions at other sizes; composed: attention written out as
    the SPEC's composition of primitives (batched @, transpose of two axes, a const mask,
    softmax over the last axis of [heads, T, T]) instead of the fused attention()."""
    fused = "o = attention(heads(q), heads(k), heads(v), causal=true)"
    if composed:
        fused = (f"s = (heads(q) @ transpose(heads(k), -1, -2)) / sqrt({d // heads}) + causal\n"
                 "    o = softmax(s) @ heads(v)")
    mask = f"const causal: [{t}, {t}] = causal_mask\n" if composed else ""
    return mask + f"""def heads(t) {{ return permute(reshape(t, [{t}, {heads}, {d // heads}]), [1, 0, 2]) }}
def self_attention(x) {{
    c_attn = dense(x, {3 * d})
    q, k, v = split(c_attn, 3, axis=1)
    {fused}
    c_proj = dense(reshape(permute(o, [1, 0, 2]), [{t}, {d}]), {d})
    return c_proj
}}
def feed_forward(x) {{
    c_fc = gelu(dense(x, {4 * d}))
    c_proj = dense(c_fc, {d})
    return c_proj
}}
def block(x) {{
    ln_1 = layernorm(x)
    attn = self_attention(ln_1)
    a = x + attn
    ln_2 = layernorm(a)
    mlp = feed_forward(ln_2)
    return a + mlp
}}
"""


def gpt_nn(name, vocab, t, d, heads, layers):
    """examples/gpt/gpt.nn's structure at other sizes."""
    return f"""model {name}
input  ids: class({vocab}) [{t}]
label  y: class({vocab}) [{t}]
{gpt_defs(t, d, heads)}wte    = embedding(ids, {vocab}, {d}, init=normal(0, 0.02))
param  wpe: [{t}, {d}] = normal(0, 0.02)
h      = repeat(block, {layers}, wte + wpe)
ln_f   = layernorm(h)
logits = ln_f @ transpose(wte.weight)
loss   = mean(cross_entropy(logits, y))
train {{ batch = 4 }}
"""


class OneBlock(torch.nn.Module):
    """h = repeat(block, 1, x): the names h.0.ln_1.weight, ..."""

    def __init__(self, d, heads):
        super().__init__()
        self.h = torch.nn.ModuleList([Block(d, heads)])

    def forward(self, x):
        return self.h[0](x)


def param_shapes(module):
    return {k: list(v.shape) for k, v in module.state_dict().items()}


def by_name(module, p):
    """The module run on nnc's parameters p, which must be exactly its own names."""
    mine, theirs = set(module.state_dict()), set(p)
    assert mine == theirs, f"names differ: nnc only {sorted(theirs - mine)}, torch only {sorted(mine - theirs)}"
    return lambda *args: functional_call(module, p, args)


def gpt_case(nn, vocab, t, d, heads, layers, n=3):
    module = GPT(vocab, t, d, heads, layers).double()

    def reference(p, b):
        logits = by_name(module, p)(b["ids"])
        return F.cross_entropy(logits.reshape(-1, vocab), b["y"].reshape(-1), reduction="none") \
                .reshape(-1, t).mean(1).mean()

    return dict(nn=nn, params=param_shapes(module), n=n, scale=0.3,
                batch={"ids": ("class", vocab, [t]), "y": ("class", vocab, [t])}, torch=reference)


def block_case(t, d, heads, composed=False):
    """One block on a float input [T, d], whose gradient is compared too."""
    nn = f"""model gpt_block
input  x: [{t}, {d}] grad
target w: [{t}, {d}]
{gpt_defs(t, d, heads, composed)}h    = repeat(block, 1, x)
loss = sum(h * w)
train {{ batch = 3 }}
"""
    module = OneBlock(d, heads).double()

    def reference(p, b):
        return (by_name(module, p)(b["x"]) * b["w"]).sum((1, 2)).mean()

    return dict(nn=nn, params=param_shapes(module), n=3, scale=0.3, input_grads=["x"],
                batch={"x": ("float", [t, d]), "w": ("float", [t, d])}, torch=reference)


with open(EXAMPLE) as f:
    _example = f.read()

CASES = {
    "gpt_block": block_case(5, 8, 2),
    "gpt_block_t1": block_case(1, 4, 1),
    "gpt_block_composed": block_case(5, 8, 2, composed=True),
    "gpt_small": gpt_case(gpt_nn("gpt_small", 11, 6, 8, 2, 2), 11, 6, 8, 2, 2),
    "gpt_example": gpt_case(_example, 128, 64, 128, 4, 4, n=2),
}
