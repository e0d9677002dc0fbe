#!/usr/bin/python3
# bench/table.py: the result tables of bench/bench.sh, from the files it leaves in its work
# directory (meta.txt, logs/*.csv, logs/bound-*.out, rss/*.kb, summary-*.txt).  Prints
# them and writes them, in Markdown, to WORKDIR/table.md.  Standard library only.
#
#   /usr/bin/python3 bench/table.py WORKDIR
#
# FLOPs per training example count the matrix products only (GEMMs, im2col convolutions,
# the LSTM's projections), 2 per multiply-add: for every product of M multiply-adds per
# example, the forward pass (M), the weight gradient (M) and the input gradient (M, not
# for a layer that reads the data set directly).  Biases, activations, pooling, the loss
# and the optimizer are left out.  bench/README.md derives the numbers below.
import csv
import math
import os
import re
import sys

# per model: the products as (multiply-adds per example, needs an input gradient)
PRODUCTS = {
    "mlp": [(784 * 256, False), (256 * 128, True), (128 * 10, True)],
    "wide": [(784 * 2048, False), (2048 * 2048, True), (2048 * 10, True)],
    "cnn": [(16 * 1 * 9 * 26 * 26, False),     # conv 1->16 3x3, 26x26 outputs, reads x
            (32 * 16 * 9 * 24 * 24, True),     # conv 16->32 3x3, 24x24 outputs
            (4608 * 128, True), (128 * 10, True)],
    "lstm": [(16 * 32 * 512, True),            # input projection, 16 steps, 4*128 gates
                                               # (input gradient: the embedding's table)
             (15 * 128 * 512, True),           # recurrent products, steps 2..16 (h0 = 0)
             (128 * 256, True)],               # the output layer
}
NAMES = {"mlp": "Fashion MLP", "cnn": "Fashion CNN", "wide": "wide MLP", "lstm": "char LSTM"}


def flop_per_example(model):
    return sum(2 * m * (3 if grad else 2) for m, grad in PRODUCTS[model])


def data_bytes(model, ntrain, ntest):
    """What nnc's trainer holds of the data sets (runtime/data.c): float32 images and int32
    labels for Fashion-MNIST; for a text, 16 int32 context ids and one int32 label per
    byte."""
    per = 17 * 4 if model == "lstm" else 784 * 4 + 4
    return (ntrain + ntest) * per


def read_meta(work):
    meta = {}
    with open(os.path.join(work, "meta.txt")) as f:
        for line in f:
            parts = line.split(None, 1)
            if parts:
                meta[parts[0]] = parts[1].strip() if len(parts) > 1 else ""
    return meta


def read_csv(path):
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return rows or None


def median(values):
    v = sorted(values)
    if not v:
        return None
    k = len(v) // 2
    return v[k] if len(v) % 2 else (v[k - 1] + v[k]) / 2


def epoch_seconds(rows):
    return median([float(r["seconds"]) for r in rows]) if rows else None


def last(rows, field):
    if not rows:
        return None
    try:
        v = float(rows[-1][field])
    except (KeyError, ValueError):
        return None
    return None if math.isnan(v) else v


def read_number(path, pattern=None):
    if not os.path.isfile(path):
        return None
    text = open(path).read()
    if pattern is None:
        text = text.strip()
        return float(text) if text else None
    m = re.search(pattern, text)
    return float(m.group(1).replace(",", "")) if m else None


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def ratio(a, b, missing="-"):
    return missing if a is None or b is None or b == 0 else f"{a / b:.2f}"


def markdown(header, rows, right=None):
    """A Markdown table whose columns line up in plain text too."""
    cells = [header] + rows
    width = [max(len(r[i]) for r in cells) for i in range(len(header))]
    right = right if right is not None else [i > 0 for i in range(len(header))]
    def line(r):
        return "| " + " | ".join(c.rjust(w) if right[i] else c.ljust(w)
                                 for i, (c, w) in enumerate(zip(r, width))) + " |"
    sep = "|" + "|".join(("-" * (w + 1) + ":") if right[i] else ("-" * (w + 2))
                         for i, w in enumerate(width)) + "|"
    return "\n".join([line(header), sep] + [line(r) for r in rows[0:]])


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: table.py WORKDIR")
    work = sys.argv[1]
    if not os.path.isfile(os.path.join(work, "meta.txt")):
        sys.exit(f"table.py: {work}/meta.txt is missing (run bench/bench.sh)")
    meta = read_meta(work)
    threads = meta.get("threads", "").split()
    models = meta.get("models", "").split()
    logs, rss = os.path.join(work, "logs"), os.path.join(work, "rss")
    out = []

    out.append(f"nnc vs PyTorch, {meta.get('date', '?')}, {meta.get('cpu', '?')}, "
               f"seed {meta.get('seed', '?')}{', QUICK run' if meta.get('quick') == '1' else ''}"
               f"{', nnc run with ' + meta['nnc_env'] if meta.get('nnc_env', 'none') != 'none' else ''}")
    out.append("")
    out.append("Epochs and training examples per model: " + ", ".join(
        f"{m} {meta.get('epochs.' + m, '?')} x {meta.get('examples.' + m, '?')}" for m in models))
    out.append("")

    sec = {}   # (tool, model, threads) -> median s/epoch
    for n in threads:
        rows = []
        lstm_loss = None
        for m in models:
            runs = {t: read_csv(os.path.join(logs, f"{t}-{m}-t{n}.csv"))
                    for t in ("nnc", "idiom", "tuned")}
            s = {t: epoch_seconds(r) for t, r in runs.items()}
            for t, v in s.items():
                sec[(t, m, n)] = v
            bound = read_number(os.path.join(logs, f"bound-{m}-t{n}.out"),
                                r"seconds_per_epoch\s+([\d.]+)")
            ntrain = int(meta.get(f"examples.{m}", 0))
            ntest = int(meta.get(f"test_examples.{m}", 0))
            gflops = (flop_per_example(m) * ntrain / s["nnc"] * 1e-9
                      if s["nnc"] and ntrain else None)
            kb = read_number(os.path.join(rss, f"nnc-{m}-t{n}.kb"))
            tuned_kb = read_number(os.path.join(rss, f"tuned-{m}-t{n}.kb"))
            plan = read_number(os.path.join(work, f"summary-{m}.txt"),
                               r"memory plan \(bytes\):.*?total\s+([\d,]+)")
            planned = plan + data_bytes(m, ntrain, ntest) if plan is not None else None
            mib = 1 << 20
            rows.append([
                NAMES.get(m, m),
                fmt(s["nnc"], ".3f"), fmt(s["idiom"], ".3f"), fmt(s["tuned"], ".3f"),
                ratio(s["nnc"], s["idiom"]), ratio(s["nnc"], s["tuned"]),
                fmt(bound, ".3f"), ratio(s["nnc"], bound),
                fmt(gflops, ".1f"),
                fmt(kb * 1024 / mib if kb else None, ".0f"),
                fmt(planned / mib if planned else None, ".0f") if plan is not None else "n/a",
                ratio(kb * 1024 if kb else None, planned, "n/a"),
                fmt(tuned_kb * 1024 / mib if tuned_kb else None, ".0f"),
                fmt(last(runs["nnc"], "test_accuracy"), ".4f"),
                fmt(last(runs["idiom"], "test_accuracy"), ".4f"),
                fmt(last(runs["tuned"], "test_accuracy"), ".4f"),
            ])
            if m == "lstm":
                lstm_loss = [fmt(last(runs[t], "test_loss"), ".4f") for t in ("nnc", "idiom", "tuned")]
        header = ["model", "nnc s/epoch", "PyTorch idiomatic s/epoch", "PyTorch tuned s/epoch",
                  "nnc/idiomatic", "nnc/tuned", "GEMM bound s/epoch", "nnc/bound", "nnc GFLOP/s",
                  "nnc RSS MiB", "planned MiB", "RSS/planned", "PyTorch tuned RSS MiB",
                  "nnc acc", "idiomatic acc", "tuned acc"]
        out.append(f"### {n} thread{'s' if n != '1' else ''}")
        out.append("")
        out.append(markdown(header, rows))
        out.append("")
        if lstm_loss:
            out.append(f"char LSTM final test loss (nats/byte): nnc {lstm_loss[0]}, "
                       f"PyTorch idiomatic {lstm_loss[1]}, tuned {lstm_loss[2]}; its accuracy is "
                       "next-byte accuracy on the test text.")
            out.append("")

    if len(threads) > 1:
        base = threads[0]
        header = ["model"]
        for n in threads[1:]:
            header += [f"nnc {base}->{n} threads", f"PyTorch tuned {base}->{n} threads"]
        rows = []
        for m in models:
            row = [NAMES.get(m, m)]
            for n in threads[1:]:
                row += [ratio(sec.get(("nnc", m, base)), sec.get(("nnc", m, n))),
                        ratio(sec.get(("tuned", m, base)), sec.get(("tuned", m, n)))]
            rows.append(row)
        out.append("### Speedup from more threads (s/epoch at the first count / at the other)")
        out.append("")
        out.append(markdown(header, rows))
        out.append("")

    rows = []
    for m in models:
        rows.append([NAMES.get(m, m), meta.get(f"source.{m}", "?"),
                     fmt(float(meta[f"nnc_ms.{m}"]) if f"nnc_ms.{m}" in meta else None, ".1f"),
                     fmt(float(meta[f"cc_s.{m}"]) if f"cc_s.{m}" in meta else None, ".2f"),
                     fmt(float(meta[f"exe_s.{m}"]) if f"exe_s.{m}" in meta else None, ".2f"),
                     meta.get(f"c_lines.{m}", "-")])
    out.append("### Compile times")
    out.append("")
    out.append(markdown(["model", "source", "nnc ms (.nn -> .c)", "cc s (.c -> trainer)",
                         "nnc --exe s", "lines of C"], rows, [False, False, True, True, True, True]))
    out.append("")
    out.append("s/epoch: median training time of an epoch (no evaluation, no data loading) over "
               "all epochs; ratios below 1: nnc takes less time.  GEMM bound: "
               "bench/gemm_bound.c, the matrix products alone (MLPs, the char LSTM).  GFLOP/s: FLOPs of "
               "an epoch's matrix products (bench/README.md) / nnc s/epoch.  planned: nnc's "
               "memory plan total + the data sets as the trainer holds them (float32 images, "
               "int32 labels and ids).  acc: final test accuracy.")
    text = "\n".join(out)
    print(text)
    with open(os.path.join(work, "table.md"), "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
