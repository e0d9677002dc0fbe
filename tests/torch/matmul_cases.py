"""`@` on stacks of matrices (NumPy's matmul) against torch.matmul: per-example inputs and
parameters on either side, stacks whose leading axes broadcast (size-1 axes, missing
axes, ranks up to 5), vectors on either side of a stack, and degenerate sizes (a stack
of one, T = 1, d = 1).  Each case is `loss = sum(tanh(a @ b) * t)`, compared on the loss,
the parameters' gradients and the inputs' by tests/torch/check.py; the reference
multiplies example by example, so an operand without the batch is shared exactly as nnc
shares it."""
import torch

# (a's shape, a is a parameter, b's shape, b is a parameter), per example
PRODUCTS = [
    ([4, 3, 5], False, [4, 5, 2], False),      # a GEMM per matrix of the stack
    ([4, 3, 5], False, [5, 2], True),          # the stack in the rows of one GEMM
    ([3, 5], True, [4, 5, 2], False),          # a shared matrix on the left: a loop
    ([2, 1, 3, 2], False, [4, 2, 3], False),   # rank 4 broadcast along a size-1 axis
    ([2, 1, 3, 4], True, [3, 4, 2], False),    # a parameter stack broadcast over the examples' axis
    ([2, 1, 3, 2], False, [4, 2, 3], True),    # a parameter stack shared by both axes of one
    ([5], False, [3, 5, 2], False),            # a vector on the left of a stack
    ([5], True, [3, 5, 2], False),
    ([3, 2, 5], False, [5], False),            # a vector on the right
    ([3, 2, 5], False, [5], True),
    ([3, 5], True, [2, 5, 1], False),          # a matrix times a stack of columns
    ([2, 3, 4], True, [2, 4, 5], True),        # parameters only: no batch axis
    ([1, 1, 3], False, [1, 3, 1], False),      # a stack of one, T = 1
    ([2, 3, 1], False, [1, 4], True),          # d = 1
    ([2, 1, 2, 3, 4], False, [3, 1, 4, 2], True),   # rank 5 against rank 4
    ([4, 8, 16], False, [4, 16, 8], False),    # a larger stack
    ([2, 4, 8, 16], False, [16, 8], True),     # [B, H, T, d] @ W [d, k]
]


def out_shape(a, b):
    sa, sb = a[:-2], b[:-2]
    rank = max(len(sa), len(sb))
    sa, sb = [1] * (rank - len(sa)) + sa, [1] * (rank - len(sb)) + sb
    stack = [x if y == 1 else y for x, y in zip(sa, sb)]
    return stack + (a[-2:-1] if len(a) >= 2 else []) + (b[-1:] if len(b) >= 2 else [])


def case(i, a, a_param, b, b_param):
    def decl(name, shape, param):
        s = ", ".join(map(str, shape))
        return f"param {name}: [{s}] = normal(0, 1)" if param else f"input {name}: [{s}] grad"

    out = out_shape(a, b)
    nn = (f"model matmul{i}\n{decl('a', a, a_param)}\n{decl('b', b, b_param)}\n"
          f"target t: [{', '.join(map(str, out))}]\nloss = sum(tanh(a @ b) * t)\ntrain {{ batch = 3 }}\n")

    def reference(p, batch):
        x = p["a"] if a_param else batch["a"]
        y = p["b"] if b_param else batch["b"]
        t = batch["t"]
        per = [torch.matmul(x if a_param else x[e], y if b_param else y[e]) for e in range(t.shape[0])]
        c = torch.stack(per)
        return (torch.tanh(c) * t).sum(tuple(range(1, c.dim()))).mean()

    params = {name: shape for name, shape, param in (("a", a, a_param), ("b", b, b_param)) if param}
    draws = {name: ("float", shape) for name, shape, param in (("a", a, a_param), ("b", b, b_param)) if not param}
    draws["t"] = ("float", out)
    return dict(nn=nn, params=params, batch=draws, n=3, input_grads=[x for x in ("a", "b") if x in draws],
                torch=reference)


CASES = {f"matmul{i}": case(i, *spec) for i, spec in enumerate(PRODUCTS)}
