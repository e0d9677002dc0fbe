"""Random computation graphs against PyTorch: small models of 4 to 9 bindings over one or
two `grad` inputs of one to three axes, each binding an elementwise function, a
broadcasting binary operator (with a parameter on either side), a reduction over an axis
or over the whole example, a softmax, a layout op (transpose, flatten, concat, slice), a
product (`dense`, `@ param`, or `@` between two per-example tensors) or a power.  The loss
adds every binding's (and input's) weighted sum, so each gradient flows back through
several readers.  Compared on loss, every parameter's gradient and the inputs' gradients
by tests/torch/check.py (scripts/conformance.sh runs it).  The graphs come from
a fixed seed: every run checks the same ones.  They exercise what the hand-written cases
combine only a few ways: which loops fusion merges, which tensors it reads in place,
broadcasting in both directions, gradients summed from several readers, ties at a max or
min, and batches of 1, 2, 3 and 5 examples."""
import random

import torch
import torch.nn.functional as F

UNARY = {   # nnc's call, PyTorch's function; all smooth where inputs land (no kinks hit by chance)
    "tanh({})": torch.tanh,
    "sigmoid({})": torch.sigmoid,
    "sin({})": torch.sin,
    "cos({})": torch.cos,
    "exp(tanh({}))": lambda a: torch.exp(torch.tanh(a)),
    "log(sigmoid({}) + 0.5)": lambda a: torch.log(torch.sigmoid(a) + 0.5),
    "relu({})": F.relu,
    "leaky_relu({}, 0.1)": lambda a: F.leaky_relu(a, 0.1),
    "elu({})": F.elu,
    "softplus({})": F.softplus,
    "abs({})": torch.abs,
    "square({})": torch.square,
    "-{}": torch.neg,
    "sqrt(softplus({}) + 0.25)": lambda a: torch.sqrt(F.softplus(a) + 0.25),
    "clip({}, -0.7, 0.7)": lambda a: torch.clamp(a, -0.7, 0.7),
    "({}) ^ 3": lambda a: a ** 3,
    "0.5 * {} + 1": lambda a: 0.5 * a + 1,
}
BINARY = {
    "{} + {}": torch.add,
    "{} - {}": torch.sub,
    "{} * {}": torch.mul,
    "{} / (1.5 + tanh({}))": lambda a, b: a / (1.5 + torch.tanh(b)),
    "max({}, {})": torch.maximum,
    "min({}, {})": torch.minimum,
}
REDUCE = {
    "sum": lambda a, d: a.sum(d),
    "mean": lambda a, d: a.mean(d),
    "max": lambda a, d: a.amax(d),
    "min": lambda a, d: a.amin(d),
    "norm2": lambda a, d: torch.sqrt((a * a).sum(d)),
}


class Graph:
    """Bindings built one at a time: each knows its per-example shape, its nnc expression
    and how PyTorch computes it from the values of the bindings before it."""

    def __init__(self, rng):
        self.rng = rng
        self.lines, self.params, self.nodes = [], {}, []   # nodes: (name, shape, fn(env) -> tensor)

    def add(self, expr, shape, fn):
        name = f"v{len(self.nodes)}"
        self.lines.append(f"{name} = {expr}")
        self.nodes.append((name, list(shape), fn))

    def param(self, shape):
        name = f"w{len(self.params)}"
        self.params[name] = list(shape)
        self.lines.insert(0, f"param {name}: [{', '.join(map(str, shape))}] = normal(0, 1)")
        return name

    def pick(self, pred=lambda s: True):
        ok = [n for n in self.nodes if pred(n[1])]
        return self.rng.choice(ok) if ok else None


def unary(g):
    name, shape, _ = g.pick()
    form = g.rng.choice(list(UNARY))
    f = UNARY[form]
    g.add(form.format(name), shape, lambda e, name=name, f=f: f(e[name]))


def binary(g):
    a, sa, _ = g.pick()
    form = g.rng.choice(list(BINARY))
    f = BINARY[form]
    r = g.rng.random()
    same = [n for n in g.nodes if n[1] == sa]
    if r < 0.4 and same:   # two bindings of one shape
        b = g.rng.choice(same)[0]
        g.add(form.format(a, b), sa, lambda e, a=a, b=b, f=f: f(e[a], e[b]))
    elif r < 0.75:         # a parameter broadcast along the leading axes (or a scalar one)
        k = g.rng.randint(0, len(sa))
        ps = sa[len(sa) - k:] or [1]
        w = g.param(ps)
        if g.rng.random() < 0.5:
            g.add(form.format(a, w), sa, lambda e, a=a, w=w, f=f: f(e[a], e[w]))
        else:
            g.add(form.format(w, a), sa, lambda e, a=a, w=w, f=f: f(e[w], e[a]))
    else:                  # a binding broadcast along an axis of length 1 of a parameter
        if not sa:
            return unary(g)
        ax = g.rng.randrange(len(sa))
        ps = list(sa)
        ps[ax] = 1
        w = g.param(ps)
        g.add(form.format(w, a), sa, lambda e, a=a, w=w, f=f: f(e[w], e[a]))


def reduce(g):
    found = g.pick(lambda s: len(s) >= 2)
    if not found:
        return unary(g)
    a, sa, _ = found
    op = g.rng.choice(list(REDUCE))
    ax = g.rng.randrange(len(sa))
    out = sa[:ax] + sa[ax + 1:]
    f = REDUCE[op]
    g.add(f"{op}({a}, axis={ax})", out, lambda e, a=a, ax=ax, f=f: f(e[a], ax + 1))


def softmax(g):
    a, sa, _ = g.pick()
    if g.rng.random() < 0.5:
        g.add(f"softmax({a})", sa, lambda e, a=a: torch.softmax(e[a], -1))
    else:
        g.add(f"log_softmax({a})", sa, lambda e, a=a: torch.log_softmax(e[a], -1))


def layout(g):
    a, sa, _ = g.pick()
    r = g.rng.random()
    if r < 0.2 and len(sa) == 2:
        g.add(f"transpose({a})", [sa[1], sa[0]], lambda e, a=a: e[a].transpose(1, 2))
    elif r < 0.4:
        total = 1
        for d in sa:
            total *= d
        g.add(f"flatten({a})", [total], lambda e, a=a: e[a].reshape(e[a].shape[0], -1))
    elif r < 0.6 and sa:
        ax = g.rng.randrange(len(sa))
        b, sb, _ = g.pick(lambda s: len(s) == len(sa) and all(s[i] == sa[i] for i in range(len(s)) if i != ax))
        out = list(sa)
        out[ax] = sa[ax] + sb[ax]
        g.add(f"concat({a}, {b}, axis={ax})", out, lambda e, a=a, b=b, ax=ax: torch.cat([e[a], e[b]], ax + 1))
    elif sa:
        ax = g.rng.randrange(len(sa))
        if sa[ax] < 2:
            return unary(g)
        s0 = g.rng.randrange(sa[ax])
        s1 = g.rng.randint(s0 + 1, sa[ax])
        out = list(sa)
        out[ax] = s1 - s0
        cut = (slice(None),) + tuple(slice(s0, s1) if d == ax else slice(None) for d in range(len(sa)))
        g.add(f"slice({a}, axis={ax}, start={s0}, end={s1})", out, lambda e, a=a, cut=cut: e[a][cut])
    else:
        unary(g)


def product(g):
    found = g.pick(lambda s: len(s) in (1, 2))
    if not found:
        return unary(g)
    a, sa, _ = found
    k = g.rng.randint(1, 5)
    if len(sa) == 1 and g.rng.random() < 0.5:   # dense, with its own weight and bias
        name = f"v{len(g.nodes)}"
        g.params[name + ".weight"] = [k, sa[0]]
        g.params[name + ".bias"] = [k]
        g.add(f"dense({a}, {k})", [k], lambda e, a=a, name=name:
              e[a] @ e[name + ".weight"].T + e[name + ".bias"])
        return
    w = g.param([sa[-1], k])
    g.add(f"{a} @ {w}", sa[:-1] + [k], lambda e, a=a, w=w: e[a] @ e[w])


def whole(g):
    """A reduction over every axis of an example: a per-example scalar, broadcast back."""
    a, sa, _ = g.pick()
    op = g.rng.choice(list(REDUCE))
    dims = tuple(range(1, len(sa) + 1))
    b, sb, _ = g.pick()
    g.add(f"{b} * {op}({a})", sb, lambda e, a=a, b=b, f=REDUCE[op], dims=dims, r=len(sb):
          e[b] * f(e[a], dims).reshape((-1,) + (1,) * r))


def pairwise(g):
    """'@' between two per-example tensors: a product per example."""
    found = g.pick(lambda s: len(s) == 2)
    if not found:
        return unary(g)
    a, sa, _ = found
    other = [n for n in g.nodes if len(n[1]) in (1, 2) and n[1][0] == sa[1]]
    if not other:
        return unary(g)
    b, sb, _ = g.rng.choice(other)
    if len(sb) == 1:   # matrix times vector, per example
        g.add(f"{a} @ {b}", sa[:1], lambda e, a=a, b=b: (e[a] @ e[b].unsqueeze(-1)).squeeze(-1))
    else:
        g.add(f"{a} @ {b}", sa[:1] + sb[1:], lambda e, a=a, b=b: e[a] @ e[b])


def power(g):
    a, sa, _ = g.pick()
    c = g.rng.choice([2, 0.5, -1, -0.5, 1.5])
    if c == int(c) and c > 0:
        g.add(f"({a}) ^ {c}", sa, lambda e, a=a, c=c: e[a] ** c)
    else:   # a base kept away from zero
        g.add(f"(1 + sigmoid({a})) ^ {c}", sa, lambda e, a=a, c=c: (1 + torch.sigmoid(e[a])) ** c)


STEPS = [(unary, 3), (binary, 4), (reduce, 2), (softmax, 1), (layout, 2), (product, 1),
         (whole, 1), (pairwise, 1), (power, 1)]


def case(i, rng):
    g = Graph(rng)
    rank = rng.randint(1, 3)
    shape = [rng.randint(2, 5) for _ in range(rank)]
    inputs = {"x": shape}
    g.nodes.append(("x", shape, None))
    if rng.random() < 0.5:
        s2 = list(shape)
        s2[-1] = rng.randint(2, 5)
        inputs["z"] = s2
        g.nodes.append(("z", s2, None))
    steps, weights = zip(*STEPS)
    for _ in range(rng.randint(4, 9)):
        rng.choices(steps, weights)[0](g)
    # every binding and input enters the loss (PyTorch has no gradient for an unused input;
    # tests/gradcheck/unused_grad_input.nn covers that case)
    computed = [n if n[2] is not None else (n[0], n[1], lambda e, k=n[0]: e[k]) for n in g.nodes]
    decl = [f"input {k}: [{', '.join(map(str, s))}] grad" for k, s in inputs.items()]
    targets = {f"t{j}": n[1] or [1] for j, n in enumerate(computed)}
    decl += [f"target {t}: [{', '.join(map(str, s))}]" for t, s in targets.items()]
    terms = [f"sum({n[0]} * t{j})" for j, n in enumerate(computed)]
    nn = "\n".join([f"model graph{i}"] + decl + g.lines + ["loss = " + " + ".join(terms),
                                                            "train { batch = 3 }", ""])

    def reference(p, b):
        env = dict(p)
        env.update({k: b[k] for k in inputs})
        for name, shape_, fn in computed:
            if name not in inputs:
                env[name] = fn(env)
        loss = 0
        for j, (name, s, _) in enumerate(computed):
            t = b[f"t{j}"]
            v = env[name]
            loss = loss + (v.reshape(t.shape) * t).reshape(t.shape[0], -1).sum(1)
        return loss.mean()

    batch = {k: ("float", s) for k, s in inputs.items()}
    batch.update({t: ("float", s) for t, s in targets.items()})
    n = rng.choice([1, 2, 3, 5])   # a partial batch, a full one, and more than one batch
    return dict(nn=nn, params=g.params, batch=batch, n=n, input_grads=list(inputs), torch=reference)


_rng = random.Random(20261124)
CASES = {f"graph{i}": case(i, _rng) for i in range(80)}
