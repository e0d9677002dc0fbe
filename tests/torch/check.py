#!/usr/bin/python3
"""check.py — nnc's gradients against PyTorch autograd, case by case.

usage: check.py [--dtype f32|f64] [--tol TOL] [-j JOBS] [--keep DIR] NNC CASES.py [CASE ...]

CASES.py defines CASES, a dict from a case's name to a dict with
    nn           the model in nnc's language
    params       {name: shape}: the parameters the trainer must have; their gradients
                 are compared (running statistics of batchnorm take part but have none)
    batch        {input: kind}: how to draw each tensor of the batch, per example:
                   ("float", shape)              normal(0, 1)
                   ("uniform", shape, (lo, hi))  uniform in [lo, hi)
                   ("prob", shape)               uniform in [0.05, 0.95) (targets of bce)
                   ("pm1", shape)                -1 or +1
                   ("class", k, shape)           integers in [0, k)
                   ("fixed", values)             these values, batch dimension included
    torch        function(params, batch) -> the mean loss, from float64 tensors (class
                 labels as int64); the same model written in PyTorch
and optionally n (examples, default 5), seed (default 7), scale (the standard deviation
of the random parameters, default 0.5), tol (default 2e-3), input_grads (inputs
declared `grad` whose gradients are compared too) and frozen ({name: shape}: parameters
declared `frozen`, which the trainer must have and load but must give no gradient; the
reference receives them with requires_grad False).

Each case: `NNC case.nn --exe` builds the trainer; `trainer init --seed 1` gives the
parameters' names, shapes and dtype; every parameter is replaced by a random value
(running variances by values in [0.5, 1.5), which must be positive), a random batch is
drawn, and `trainer grads --params P --batch B --out G` writes the loss and the gradient
of every parameter and grad input.  PyTorch computes the same in float64.  The error of
a tensor is its largest absolute difference over the reference's largest magnitude; the
magnitude is floored at 1e-3 times the largest gradient of the case, so a gradient that
is zero in theory (a bias before batchnorm) is not judged on rounding noise.  A case
passes when its worst error is within its tolerance.

--dtype f64 compiles every model in double precision; --tol overrides every case's
tolerance (scripts/conformance.sh: 1e-6 in f64).  One line per case, then
"N passed, N failed".  Exit status: 0 all passed, 1 a case failed, 2 usage error.
Needs numpy and PyTorch (Debian: python3-numpy, python3-torch).
"""
import argparse
import concurrent.futures
import importlib.util
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
except ImportError as exc:  # the conformance check needs both; say which is missing
    sys.exit(f"check.py: {exc.name} is not installed (Debian: apt-get install python3-torch)")

ST_DTYPES = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64}
ST_NAMES = {np.dtype(t): name for name, t in ST_DTYPES.items()}


# ---- safetensors: an 8-byte little-endian header length, a JSON header, the data ----

def save_tensors(path, tensors):
    header, offset = {}, 0
    for name, array in tensors.items():
        size = array.nbytes
        header[name] = {"dtype": ST_NAMES[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for array in tensors.values():
            f.write(np.ascontiguousarray(array).tobytes())


def load_tensors(path):
    """The tensors of a safetensors file, in the file's order."""
    with open(path, "rb") as f:
        blob = f.read()
    (length,) = struct.unpack_from("<Q", blob)
    header = json.loads(blob[8:8 + length])
    data = memoryview(blob)[8 + length:]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        tensors[name] = np.frombuffer(data[begin:end], ST_DTYPES[entry["dtype"]]).reshape(entry["shape"])
    return tensors


# ---- one case --------------------------------------------------------------------------

class CaseFailed(Exception):
    pass


def run(argv, what, timeout):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise CaseFailed(f"{what} took over {timeout} s")
    if r.returncode != 0:
        raise CaseFailed(f"{what} failed (exit {r.returncode}): " + (r.stderr or r.stdout).strip()[:400])


def draw_batch(spec, n, rng, real):
    batch = {}
    for name, kind in spec.items():
        form = kind[0]
        if form == "fixed":
            batch[name] = np.asarray(kind[1], real)
            continue
        shape = (n,) + tuple(kind[2] if form == "class" else kind[1])
        if form == "float":
            batch[name] = rng.standard_normal(shape)
        elif form == "uniform":
            batch[name] = rng.uniform(kind[2][0], kind[2][1], shape)
        elif form == "prob":
            batch[name] = rng.uniform(0.05, 0.95, shape)
        elif form == "pm1":
            batch[name] = rng.choice([-1.0, 1.0], shape)
        elif form == "class":
            batch[name] = rng.integers(0, kind[1], shape).astype(np.int32)
            continue
        else:
            raise CaseFailed(f"input {name}: unknown kind {form!r}")
        batch[name] = batch[name].astype(real)
    return batch


def relative_error(got, want, floor):
    got = np.asarray(got, np.float64).reshape(want.shape)
    if want.size == 0:
        return 0.0
    return float(np.abs(got - want).max() / max(float(np.abs(want).max()), floor))


def check_case(opts, name, case, work):
    """(passed, message) for one case."""
    model = os.path.join(work, name + ".nn")
    trainer = os.path.join(work, name)
    with open(model, "w") as f:
        f.write(case["nn"])
    run([opts.nnc, model, "--dtype", opts.dtype, "--exe", "-o", trainer], "nnc", 600)
    files = {k: os.path.join(work, f"{name}.{k}.safetensors") for k in ("init", "params", "batch", "grads")}
    run([trainer, "init", "--seed", "1", "--save", files["init"]], "init", 120)
    initial = load_tensors(files["init"])
    expected = case["params"]
    for pname, shape in expected.items():
        if pname not in initial:
            raise CaseFailed(f"the trainer has no parameter {pname} (it has {', '.join(initial) or 'none'})")
        if list(initial[pname].shape) != list(shape):
            raise CaseFailed(f"{pname} has shape {list(initial[pname].shape)}, the case says {list(shape)}")

    for pname, shape in case.get("frozen", {}).items():
        if pname not in initial or list(initial[pname].shape) != list(shape):
            raise CaseFailed(f"the trainer has no frozen parameter {pname} of shape {list(shape)}")

    # Parameters first, in the trainer's order, then the batch: one seeded stream, so a
    # rerun checks the same values.
    rng = np.random.default_rng(case.get("seed", 7))
    scale = case.get("scale", 0.5)
    params = {}
    for pname, value in initial.items():
        if pname.endswith("running_var"):
            params[pname] = rng.uniform(0.5, 1.5, value.shape).astype(value.dtype)
        else:
            params[pname] = (scale * rng.standard_normal(value.shape)).astype(value.dtype)
    real = np.float64 if opts.dtype == "f64" else np.float32
    batch = draw_batch(case["batch"], case.get("n", 5), rng, real)
    save_tensors(files["params"], params)
    save_tensors(files["batch"], batch)
    run([trainer, "grads", "--params", files["params"], "--batch", files["batch"], "--out", files["grads"]],
        "grads", 300)
    got = load_tensors(files["grads"])
    for pname in case.get("frozen", {}):
        if pname in got:
            raise CaseFailed(f"the grads output has a gradient for the frozen parameter {pname}")

    # The reference: the same values in float64, gradients for the listed parameters
    # (not running statistics) and the listed inputs.
    def leaf(values, wanted):
        return torch.tensor(np.asarray(values, np.float64), requires_grad=wanted)
    tparams = {k: leaf(v, k in expected and not k.endswith(("running_mean", "running_var")))
               for k, v in params.items()}
    tbatch = {k: torch.tensor(v, dtype=torch.int64) if v.dtype == np.int32
              else leaf(v, k in case.get("input_grads", ())) for k, v in batch.items()}
    loss = case["torch"](tparams, tbatch)
    loss.backward()

    compared = [(k, t) for k, t in list(tparams.items()) + list(tbatch.items()) if t.requires_grad]
    largest = max([float(t.grad.abs().max()) for _, t in compared if t.grad is not None and t.grad.numel()],
                  default=0.0)
    if "loss" not in got:
        raise CaseFailed("the grads output has no tensor 'loss'")
    errors = [("loss", relative_error(got["loss"], loss.detach().numpy().reshape(()), 1e-6))]
    for k, t in compared:
        if k not in got:
            raise CaseFailed(f"the grads output has no gradient for {k}")
        want = t.grad.numpy() if t.grad is not None else np.zeros(tuple(t.shape))
        errors.append((k, relative_error(got[k], want, max(1e-3 * largest, 1e-6))))
    tol = opts.tol if opts.tol is not None else case.get("tol", 2e-3)
    worst = max(e for _, e in errors)
    detail = ", ".join(f"{k} {e:.1e}" for k, e in errors)
    return worst <= tol, f"worst relative error {worst:.2e} (tol {tol:.0e}): {detail}"


def attempt(opts, name, case, work):
    try:
        return check_case(opts, name, case, work)
    except CaseFailed as exc:
        return False, str(exc)
    except Exception as exc:  # a case that crashes the checker fails; the others still run
        return False, f"{type(exc).__name__}: {exc}"


# ---- command line ----------------------------------------------------------------------

def load_cases(path):
    spec = importlib.util.spec_from_file_location("nnc_cases", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CASES


def main():
    ap = argparse.ArgumentParser(description="Compare nnc's loss and gradients with PyTorch's.")
    ap.add_argument("--dtype", choices=["f32", "f64"], default="f32", help="nnc --dtype for every model")
    ap.add_argument("--tol", type=float, help="tolerance for every case (default: each case's, else 2e-3)")
    ap.add_argument("-j", "--jobs", type=int, default=1, help="cases checked at once")
    ap.add_argument("--keep", metavar="DIR", help="keep the models, trainers and tensors in DIR")
    ap.add_argument("nnc", help="the nnc to test")
    ap.add_argument("cases", help="a Python file defining CASES")
    ap.add_argument("names", nargs="*", help="cases to run (default: all)")
    opts = ap.parse_args()
    if not os.access(opts.nnc, os.X_OK):
        ap.error(f"{opts.nnc} is not an executable nnc")
    try:
        cases = load_cases(opts.cases)
    except (OSError, SyntaxError, AttributeError) as exc:
        ap.error(f"cannot load cases from {opts.cases}: {exc}")
    unknown = [n for n in opts.names if n not in cases]
    if unknown:
        ap.error(f"no case {', '.join(unknown)} in {opts.cases}")
    names = opts.names or list(cases)
    torch.set_num_threads(1)  # the cases run side by side (-j); one thread each
    work = opts.keep or tempfile.mkdtemp(prefix="nnc-check.")
    os.makedirs(work, exist_ok=True)
    failed = 0
    try:
        with concurrent.futures.ThreadPoolExecutor(max(1, opts.jobs)) as pool:
            results = pool.map(lambda n: attempt(opts, n, cases[n], work), names)
            for name, (ok, message) in zip(names, results):
                print(f"{'PASS' if ok else 'FAIL'} {name}: {message}", flush=True)
                failed += not ok
    finally:
        if not opts.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{len(names) - failed} passed, {failed} failed ({opts.cases}, {opts.dtype})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
