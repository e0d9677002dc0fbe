"""Random slices against PyTorch: 60 small models, each slicing a tensor of one to three
axes along a random axis at random bounds and reading the slice with one of six
expressions (some also sum it directly), compared on loss and the input's gradient by
tests/torch/check.py (scripts/conformance.sh runs it).  Most of these slices
are read in place by their readers' loops (codegen/fuse.c, plan_slice_views), at an
offset per example or with a loop per axis; the ones summed directly are copied.  The
cases are drawn from a fixed seed, so every run checks the same 60."""
import random

import torch

USES = {   # nnc's expression of the slice s, and PyTorch's of its tensor s
    "s * s": lambda s, o: s * s,
    "sin(s) * s": lambda s, o: torch.sin(s) * s,
    "exp(s) + s * 2": lambda s, o: torch.exp(s) + s * 2,
    "sigmoid(s)": lambda s, o: torch.sigmoid(s),
    "s * OTHER": lambda s, o: s * o,     # two slices of the same bounds in one expression
    "tanh(s) - OTHER": lambda s, o: torch.tanh(s) - o,
}
SOURCES = {"x": lambda x: x, "tanh(x)": torch.tanh, "x * x": lambda x: x * x}


def case(i, rng):
    rank = rng.randint(1, 3)
    dims = [rng.randint(1, 5) for _ in range(rank)]
    axis = rng.randrange(rank)
    if dims[axis] < 2:
        dims[axis] = rng.randint(2, 6)
    start = rng.randrange(dims[axis])
    end = rng.randint(start + 1, dims[axis])
    sdims = list(dims)
    sdims[axis] = end - start
    src, use, summed = rng.choice(list(SOURCES)), rng.choice(list(USES)), rng.random() < 0.3
    other = f"slice(x, axis={axis}, start={start}, end={end})"
    shape, tshape = ", ".join(map(str, dims)), ", ".join(map(str, sdims))
    nn = (f"model slice{i}\ninput x: [{shape}] grad\ntarget t: [{tshape}]\nu = {src}\n"
          f"s = slice(u, axis={axis}, start={start}, end={end})\nv = {use.replace('OTHER', other)}\n"
          f"loss = sum(v * t) + sum(v * v){' + sum(s)' if summed else ''}\ntrain {{ batch = 3 }}\n")
    cut = (slice(None),) + tuple(slice(start, end) if d == axis else slice(None) for d in range(rank))
    red = tuple(range(1, rank + 1))

    def reference(p, b):
        x = b["x"]
        s = SOURCES[src](x)[cut]
        v = USES[use](s, x[cut])
        loss = (v * b["t"]).sum(red) + (v * v).sum(red)
        return (loss + s.sum(red) if summed else loss).mean()

    return dict(nn=nn, params={}, batch={"x": ("float", dims), "t": ("float", sdims)}, n=3,
                input_grads=["x"], torch=reference)


_rng = random.Random(20261124)
CASES = {f"slice{i}": case(i, _rng) for i in range(60)}
