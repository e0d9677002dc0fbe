#!/usr/bin/python3
"""Reference parameters for the optimizer conformance test (tests/optim/run.sh).

Run by hand, with Debian's PyTorch (python3-torch), from anywhere:

    /usr/bin/python3 tests/optim/make_reference.py

It writes tests/optim/ref/:
  init.safetensors   the initial parameters, in nnc's names (h.weight [4,5], h.bias [4],
                     out.weight [3,4], out.bias [3]), F64; the same for every case
  data.safetensors   the training set: x [8,5] and t [8,3], F64 (exactly one batch)
  NAME.safetensors   for every case NAME of cases.txt: PyTorch's parameters after 6 epochs,
                     one optimizer step per epoch on the whole set

The model is the one run.sh compiles:
    h = tanh(dense(x, 4)); out = dense(h, 3); loss = mse(out, t)
as two float64 torch.nn.Linear layers; nnc's mse (mean over the 3 outputs, then mean over
the batch) is F.mse_loss over the whole [8, 3].  Each case's train block (cases.txt) is
mapped onto torch.optim as docs/language.md ("Optimizers") says:
  sgd(lr)              SGD(lr)                          (nnc's default lr 0.01)
  momentum(lr, mu)     SGD(lr, momentum=mu)             (dampening 0; nnc's defaults 0.01, 0.9)
  nesterov(lr, mu)     SGD(lr, momentum=mu, nesterov=True)
  adagrad(lr, eps)     Adagrad                          rmsprop(lr, rho, eps)  RMSprop(alpha=rho)
  adadelta(rho, eps, lr) Adadelta                       adam / adamax / nadam(lr, beta1, beta2, eps)
  (NAdam as PyTorch >= 2.0 computes it: see NAdam2 below for torch 1.x's double-counted mu)
Arguments a case leaves out are left out of the torch.optim call too, so the *_default cases
check nnc's defaults against PyTorch's own.  weight_decay = w is the optimizer's
weight_decay; clip_value = v is torch.nn.utils.clip_grad_value_(params, v), then clip_norm = c
is torch.nn.utils.clip_grad_norm_(params, c), both before step() (the order docs/language.md gives).
Schedules, stepped once per epoch after the optimizer step (t = epoch from 0):
  step(every, gamma) StepLR; exponential(gamma) ExponentialLR; cosine(t_max)
  CosineAnnealingLR(eta_min=0); warmup_cosine(warmup, t_max) LambdaLR of warmup_cosine() below
  (schedule_every = step is the same here: one optimizer step per epoch); adamw AdamW; polynomial(alpha, beta, gamma): lr = alpha / (beta + t)^gamma
  set by hand before each epoch's step (PyTorch has no such class; it ignores the base lr).

The output is deterministic (fixed seeds); the files are committed test fixtures, so the C
test never needs Python.  Rerun this only when cases.txt changes.
"""
import json
import math
import os
import re
import struct
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.join(HERE, "ref")
EPOCHS = 6
BATCH = 8

# nnc's argument order per optimizer / schedule (positional arguments), and nnc's own
# defaults where PyTorch has none.
OPT_ARGS = {
    "sgd": ["lr"], "momentum": ["lr", "mu"], "nesterov": ["lr", "mu"],
    "adagrad": ["lr", "eps"], "rmsprop": ["lr", "rho", "eps"], "adadelta": ["rho", "eps", "lr"],
    "adam": ["lr", "beta1", "beta2", "eps"], "adamax": ["lr", "beta1", "beta2", "eps"],
    "nadam": ["lr", "beta1", "beta2", "eps"], "adamw": ["lr", "beta1", "beta2", "eps", "weight_decay"],
}
SCHED_ARGS = {
    "constant": [], "step": ["every", "gamma"], "exponential": ["gamma"],
    "polynomial": ["alpha", "beta", "gamma"], "cosine": ["t_max"], "warmup_cosine": ["warmup", "t_max"],
}
SCHED_DEFAULTS = {"step": {"every": 1, "gamma": 0.1}, "exponential": {"gamma": 0.95},
                  "polynomial": {"alpha": 0.1, "beta": 1, "gamma": 1}, "cosine": {"t_max": 10},
                  "warmup_cosine": {"warmup": 0, "t_max": 10}}


def warmup_cosine(warmup, t_max):
    """docs/language.md's warmup_cosine as a LambdaLR factor of t (epochs or steps from 0)."""
    def f(t):
        if t < warmup:
            return (t + 1) / warmup
        if t >= t_max:
            return 0.0
        return 0.5 * (1 + math.cos(math.pi * (t - warmup) / (t_max - warmup)))
    return f


def parse_call(text, table):
    m = re.fullmatch(r"\s*([a-z_]+)\s*(?:\((.*)\))?\s*", text)
    if not m or m.group(1) not in table:
        sys.exit("cannot parse %r" % text)
    name, args = m.group(1), {}
    for i, a in enumerate(x.strip() for x in (m.group(2) or "").split(",") if x.strip()):
        if "=" in a:
            k, v = (s.strip() for s in a.split("=", 1))
        else:
            k, v = table[name][i], a
        if k not in table[name]:
            sys.exit("%s has no argument %r" % (name, k))
        args[k] = float(v)
    return name, args


def parse_cases():
    cases = []
    with open(os.path.join(HERE, "cases.txt")) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            name, body = line.split(None, 1)
            case = {"name": name, "schedule": ("constant", {}), "weight_decay": 0.0, "clip_norm": None,
                    "clip_value": None}
            for stmt in body.split(";"):
                k, v = (s.strip() for s in stmt.split("=", 1))
                if k == "optimizer":
                    case["optimizer"] = parse_call(v, OPT_ARGS)
                elif k == "schedule":
                    case["schedule"] = parse_call(v, SCHED_ARGS)
                elif k == "schedule_every":   # one step per epoch here: t is the same
                    case[k] = v
                elif k == "weight_decay":
                    case["weight_decay"] = float(v)
                elif k in ("clip_norm", "clip_value"):
                    case[k] = float(v)
                else:
                    sys.exit("%s: unknown key %r" % (name, k))
            cases.append(case)
    return cases


# PyTorch before 2.0 (Debian's 1.13 among them) computes NAdam's second coefficient with
# mu_product_next = mu_product * mu * mu_next, counting this step's mu twice; PyTorch 2.0
# fixed that (pytorch/pytorch#92699: mu_product * mu_next), and nnc follows the fix.  On a
# torch with the old line, the reference uses this copy of 2.x's single-tensor NAdam step
# instead (torch.optim.NAdam's own defaults, weight_decay and state; only that line differs).
def _nadam_has_double_mu():
    import inspect
    import torch.optim.nadam as nadam
    return "mu_product * mu * mu_next" in inspect.getsource(nadam)


class NAdam2(torch.optim.NAdam):
    @torch.no_grad()
    def step(self, closure=None):
        assert closure is None
        for group in self.param_groups:
            lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st["step"], st["mu_product"] = 0, 1.0
                    st["exp_avg"] = torch.zeros_like(p)
                    st["exp_avg_sq"] = torch.zeros_like(p)
                st["step"] += 1
                step = st["step"]
                grad = p.grad if wd == 0 else p.grad.add(p, alpha=wd)
                bias_correction2 = 1 - beta2 ** step
                mu = beta1 * (1. - 0.5 * (0.96 ** (step * group["momentum_decay"])))
                mu_next = beta1 * (1. - 0.5 * (0.96 ** ((step + 1) * group["momentum_decay"])))
                st["mu_product"] *= mu
                st["exp_avg"].lerp_(grad, 1 - beta1)
                st["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = st["exp_avg_sq"].div(bias_correction2).sqrt().add_(eps)
                mu_product_next = st["mu_product"] * mu_next
                p.addcdiv_(grad, denom, value=(-lr * (1. - mu) / (1. - st["mu_product"])))
                p.addcdiv_(st["exp_avg"], denom, value=(-lr * mu_next) / (1. - mu_product_next))
        return None


def make_optimizer(params, name, a, wd):
    kw = {"weight_decay": wd} if wd else {}
    if "lr" in a:
        kw["lr"] = a["lr"]
    if "eps" in a:
        kw["eps"] = a["eps"]
    if name in ("sgd", "momentum", "nesterov"):
        kw.setdefault("lr", 0.01)                      # nnc's default: SGD has none
        if name != "sgd":
            kw["momentum"] = a.get("mu", 0.9)          # nnc's default: SGD's is 0
            kw["dampening"] = 0
            kw["nesterov"] = name == "nesterov"
        return torch.optim.SGD(params, **kw)
    if name == "adagrad":
        return torch.optim.Adagrad(params, **kw)
    if name == "rmsprop":
        if "rho" in a:
            kw["alpha"] = a["rho"]
        return torch.optim.RMSprop(params, momentum=0, centered=False, **kw)
    if name == "adadelta":
        if "rho" in a:
            kw["rho"] = a["rho"]
        return torch.optim.Adadelta(params, **kw)
    if name == "adamw":   # its weight_decay is its own (decoupled); train-level L2 is refused
        if "weight_decay" in a:
            kw["weight_decay"] = a["weight_decay"]
    cls = {"adam": torch.optim.Adam, "adamax": torch.optim.Adamax, "nadam": torch.optim.NAdam,
           "adamw": torch.optim.AdamW}[name]
    if name == "nadam" and _nadam_has_double_mu():
        cls = NAdam2
    if "beta1" in a or "beta2" in a:
        d1, d2 = cls([torch.zeros(1)]).defaults["betas"]
        kw["betas"] = (a.get("beta1", d1), a.get("beta2", d2))
    if name in ("adam", "adamw"):
        kw["amsgrad"] = False
    return cls(params, **kw)


def make_scheduler(opt, name, a):
    a = dict(SCHED_DEFAULTS.get(name, {}), **a)
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=int(a["every"]), gamma=a["gamma"])
    if name == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(opt, gamma=a["gamma"])
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=int(a["t_max"]), eta_min=0)
    if name == "warmup_cosine":
        return torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(a["warmup"], a["t_max"]))
    return None


def write_safetensors(path, tensors):
    """tensors: list of (name, float64 tensor); written in that order, F64, little-endian."""
    header, blobs, off = {}, [], 0
    for name, t in tensors:
        t = t.detach().to(torch.float64).contiguous()
        data = struct.pack("<%dd" % t.numel(), *t.flatten().tolist())
        header[name] = {"dtype": "F64", "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    os.replace(tmp, path)


def main():
    torch.set_default_dtype(torch.float64)
    os.makedirs(REF, exist_ok=True)
    g = torch.Generator().manual_seed(20240601)
    init = {
        "h.weight": (torch.rand(4, 5, generator=g) * 2 - 1) * 0.8,
        "h.bias": (torch.rand(4, generator=g) * 2 - 1) * 0.3,
        "out.weight": (torch.rand(3, 4, generator=g) * 2 - 1) * 0.8,
        "out.bias": (torch.rand(3, generator=g) * 2 - 1) * 0.3,
    }
    x = torch.randn(BATCH, 5, generator=g)
    t = torch.rand(BATCH, 3, generator=g) * 2 - 1
    names = ["h.weight", "h.bias", "out.weight", "out.bias"]
    write_safetensors(os.path.join(REF, "init.safetensors"), [(n, init[n]) for n in names])
    write_safetensors(os.path.join(REF, "data.safetensors"), [("x", x), ("t", t)])

    # nnc's mse: mean over the 3 outputs of an example, then mean over the batch.
    lin = lambda: (torch.nn.Linear(5, 4), torch.nn.Linear(4, 3))
    h0, o0 = lin()
    with torch.no_grad():
        for mod, pre in ((h0, "h"), (o0, "out")):
            mod.weight.copy_(init[pre + ".weight"]); mod.bias.copy_(init[pre + ".bias"])
        out = o0(torch.tanh(h0(x)))
        assert abs(F.mse_loss(out, t).item() - ((out - t) ** 2).mean(1).mean(0).item()) < 1e-15

    known = set()
    for case in parse_cases():
        h, o = lin()
        with torch.no_grad():
            for mod, pre in ((h, "h"), (o, "out")):
                mod.weight.copy_(init[pre + ".weight"]); mod.bias.copy_(init[pre + ".bias"])
        params = [h.weight, h.bias, o.weight, o.bias]
        opt = make_optimizer(params, *case["optimizer"], case["weight_decay"])
        sname, sargs = case["schedule"]
        sched = make_scheduler(opt, sname, sargs)
        norms, lrs, clipped = [], [], []
        for epoch in range(EPOCHS):
            if sname == "polynomial":
                a = dict(SCHED_DEFAULTS["polynomial"], **sargs)
                for grp in opt.param_groups:
                    grp["lr"] = a["alpha"] / math.pow(a["beta"] + epoch, a["gamma"])
            lrs.append(opt.param_groups[0]["lr"])
            opt.zero_grad()
            loss = F.mse_loss(o(torch.tanh(h(x))), t)
            loss.backward()
            if case["clip_value"] is not None:   # how many elements it clips: the case tests something
                c = case["clip_value"]
                clipped.append(sum(int((p.grad.abs() > c).sum()) for p in params))
                torch.nn.utils.clip_grad_value_(params, c)
            if case["clip_norm"] is not None:
                norms.append(float(torch.nn.utils.clip_grad_norm_(params, case["clip_norm"])))
            opt.step()
            if sched is not None:
                sched.step()
        write_safetensors(os.path.join(REF, case["name"] + ".safetensors"),
                          [("h.weight", h.weight), ("h.bias", h.bias),
                           ("out.weight", o.weight), ("out.bias", o.bias)])
        known.add(case["name"] + ".safetensors")
        extra = "  grad norms " + " ".join("%.3f" % v for v in norms) if norms else ""
        if clipped:
            extra += "  elements clipped " + " ".join("%d" % v for v in clipped)
        print("%-20s %s  lr %s%s" % (case["name"], type(opt).__name__,
                                     " ".join("%.4g" % v for v in lrs), extra))
    for f in os.listdir(REF):   # cases dropped from cases.txt
        if f.endswith(".safetensors") and f not in known | {"init.safetensors", "data.safetensors"}:
            os.remove(os.path.join(REF, f))


if __name__ == "__main__":
    main()
