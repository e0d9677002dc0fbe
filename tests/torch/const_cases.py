"""const tensors and frozen parameters against PyTorch (tests/torch/check.py; scripts/
conformance.sh runs it).  Each const initializer that does not draw random numbers feeds
the loss: causal_mask added to attention-like scores before softmax (rows with -inf
entries, whose softmax is exactly 0 there and whose gradient must not be NaN), tril,
triu, eye, arange, ones, zeros and const(v), at odd sizes (T = 1, d = 1, [1, 1]).  A
frozen parameter is loaded like any other but has no gradient: the reference holds it
with requires_grad False, and check.py fails if the trainer writes a gradient for it.
Random const initializers (uniform, normal) are drawn from nnc's generator, which PyTorch
does not have: tests/gradcheck/const_mask.nn covers them."""
import torch

NEG_INF = float("-inf")


def causal(t, s):
    """PyTorch's is_causal mask for [t, s]: 0 where j <= i, -inf where j > i."""
    return torch.full((t, s), NEG_INF, dtype=torch.float64).triu(1)


def mask_case(t, d, frozen):
    fz = "param  f: [%d, %d] = normal(0, 1) frozen\n" % (d, d) if frozen else ""
    wf = "(w + f)" if frozen else "w"
    nn = (f"model masked\ninput  x: [{t}, {d}] grad\ntarget y: [{t}, {t}]\nparam  w: [{d}, {d}]\n{fz}"
          f"const  mask: [{t}, {t}] = causal_mask\n"
          f"const  tl: [{t}, {t}] = tril\n"
          f"s = (x @ {wf}) @ transpose(x) + mask\na = softmax(s)\nloss = sum(a * y) + sum(a * a * tl)\n"
          f"train {{ batch = 4 }}\n")

    def reference(p, b):
        w = p["w"] + p["f"] if frozen else p["w"]
        s = (b["x"] @ w) @ b["x"].transpose(-1, -2) + causal(t, t)
        tl = torch.tril(torch.ones(t, t, dtype=torch.float64))
        a = torch.softmax(s, -1)
        return ((a * b["y"]).sum((1, 2)) + (a * a * tl).sum((1, 2))).mean()

    case = dict(nn=nn, params={"w": [d, d]}, batch={"x": ("float", [t, d]), "y": ("float", [t, t])},
                input_grads=["x"], torch=reference, n=4)
    if frozen:
        case["frozen"] = {"f": [d, d]}
    return case


def inits_case(r, c):
    nn = (f"model inits\ninput  x: [{r}, {c}] grad\nparam  v: [{c}]\n"
          f"const  lo: [{r}, {c}] = tril\nconst  up: [{r}, {c}] = triu\nconst  id: [{c}, {c}] = eye\n"
          f"const  ar: [{r}, {c}] = arange\nconst  on: [{c}] = ones\nconst  ze: [{r}, {c}] = zeros\n"
          f"const  k: [1, {c}] = const(0.25)\nconst  e3: [2, {r}, {c}] = eye\n"
          f"h = x * lo + (x @ id) * up * v + ar * 0.1 + ze + k * on\n"
          f"loss = sum(h * h) + sum(tanh(x) * (e3 + ar))\ntrain {{ batch = 3 }}\n")

    def reference(p, b):
        x = b["x"]
        f64 = dict(dtype=torch.float64)
        lo = torch.tril(torch.ones(r, c, **f64))
        up = torch.triu(torch.ones(r, c, **f64))
        ar = torch.arange(r * c, **f64).reshape(r, c)
        e3 = torch.eye(r, c, **f64).expand(2, r, c)
        h = x * lo + (x @ torch.eye(c, **f64)) * up * p["v"] + ar * 0.1 + torch.full((1, c), 0.25, **f64)
        return ((h * h).sum((1, 2)) + (torch.tanh(x).unsqueeze(1) * (e3 + ar)).sum((1, 2, 3))).mean()

    return dict(nn=nn, params={"v": [c]}, batch={"x": ("float", [r, c])}, input_grads=["x"],
                torch=reference, n=3)


CASES = {
    "mask_t4_d3": mask_case(4, 3, False),
    "mask_t1_d1": mask_case(1, 1, False),
    "mask_t5_d1_frozen": mask_case(5, 1, True),
    "mask_t3_d4_frozen": mask_case(3, 4, True),
    "inits_3x4": inits_case(3, 4),
    "inits_4x2": inits_case(4, 2),
    "inits_1x1": inits_case(1, 1),
}
