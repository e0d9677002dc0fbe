#!/usr/bin/env python3
"""rename_params.py: copies a safetensors file, renaming tensors (python3, stdlib only).

    rename_params.py IN.safetensors OUT.safetensors OLD=NEW ... [--drop NAME ...] [--keep-metadata]

Every tensor of IN goes to OUT, under NEW where OLD=NEW names it, byte for byte.  It
carries a fashion_mlp checkpoint (its parameters, from `m export`) over to
fashion_mlp_tail.nn, whose frozen first layers are explicit params: h1.weight=h1_weight
h1.bias=h1_bias h2.weight=h2_weight h2.bias=h2_bias.  The "__metadata__" is dropped
unless --keep-metadata: nnc's loader refuses a file whose metadata names another model.

safetensors: an 8-byte little-endian header length, a JSON header {name: {dtype, shape,
data_offsets [begin, end)}, "__metadata__": {...}}, then the data.
"""
import json
import struct
import sys


def main(argv):
    keep_meta, drops, pairs, files = False, set(), {}, []
    it = iter(argv)
    for a in it:
        if a == "--keep-metadata":
            keep_meta = True
        elif a == "--drop":
            drops.add(next(it))
        elif "=" in a:
            old, new = a.split("=", 1)
            pairs[old] = new
        else:
            files.append(a)
    if len(files) != 2:
        sys.exit(__doc__.strip().split("\n\n")[1])
    src, dst = files
    with open(src, "rb") as f:
        raw = f.read()
    (hlen,) = struct.unpack("<Q", raw[:8])
    hdr = json.loads(raw[8:8 + hlen])
    data = raw[8 + hlen:]
    meta = hdr.pop("__metadata__", None)
    missing = [o for o in pairs if o not in hdr]
    if missing:
        sys.exit(f"{src}: no tensor {', '.join(missing)} (its tensors: {', '.join(hdr)})")
    out_hdr, chunks, off = {}, [], 0
    for name, t in sorted(hdr.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        if name in drops:
            continue
        b, e = t["data_offsets"]
        new = pairs.get(name, name)
        if new in out_hdr:
            sys.exit(f"two tensors named {new}")
        out_hdr[new] = {"dtype": t["dtype"], "shape": t["shape"], "data_offsets": [off, off + e - b]}
        chunks.append(data[b:e])
        off += e - b
    if keep_meta and meta is not None:
        out_hdr["__metadata__"] = meta
    hj = json.dumps(out_hdr, separators=(",", ":")).encode()
    hj += b" " * (-len(hj) % 8)
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(hj)) + hj + b"".join(chunks))


if __name__ == "__main__":
    main(sys.argv[1:])
