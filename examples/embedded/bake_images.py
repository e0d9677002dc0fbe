#!/usr/bin/env python3
"""bake_images.py: bakes the first N Fashion-MNIST test images into C for the device.

The device has no file system, so classify.c and finetune.c read their examples from
test_images.c / test_images.h, which this script writes (python3, standard library only):

    const float   nnr_test_images[NNR_TEST_N][784];   /* pixel / 255, as the trainer reads IDX ubyte */
    const int32_t nnr_test_labels[NNR_TEST_N];
    #define NNR_TEST_N N

Each float is float32(pixel / 255.0), the value nnc's trainer computes when it reads an
IDX ubyte file (runtime/data.c: the double quotient rounded to float), written with 10
significant digits so that the C compiler reads back exactly that float.

For the host's `m predict` the same N examples can be written as
  --idx PREFIX          PREFIX-images-idx3-ubyte and PREFIX-labels-idx1-ubyte: the first
                        N records of the original files, byte for byte (the trainer then
                        computes the same floats itself; recommended)
  --safetensors FILE    tensors x (F32 [N, 784]) and y (I32 [N])
  --csv FILE            N rows of 784 floats, no header (predict --input x=FILE)
  --raw FILE            N*784 little-endian float32, no header
"""
import argparse
import gzip
import json
import os
import struct
import sys

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    """(header bytes, dims, data bytes) of an IDX file, gzip or not."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        sys.exit(f"{path}: not an IDX file")
    if raw[2] != 0x08:
        sys.exit(f"{path}: element type 0x{raw[2]:02x}, expected 0x08 (ubyte)")
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    hdr = 4 + 4 * ndim
    return dims, raw[hdr:]


def f32(v):
    """v rounded to float32, as a Python float."""
    return struct.unpack("<f", struct.pack("<f", v))[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=20, help="number of test images (default 20)")
    ap.add_argument("--dir", default=DEFAULT_DIR, help=f"Fashion-MNIST directory ({DEFAULT_DIR})")
    ap.add_argument("-o", "--out", default="test_images",
                    help="C output: OUT.c and OUT.h (default test_images)")
    ap.add_argument("--idx", metavar="PREFIX", help="also write the N records as IDX files")
    ap.add_argument("--safetensors", metavar="FILE", help="also write x, y as safetensors")
    ap.add_argument("--csv", metavar="FILE", help="also write the images as CSV")
    ap.add_argument("--raw", metavar="FILE", help="also write the images as raw LE float32")
    a = ap.parse_args()

    img_path = os.path.join(a.dir, "t10k-images-idx3-ubyte.gz")
    lab_path = os.path.join(a.dir, "t10k-labels-idx1-ubyte.gz")
    idims, pixels = read_idx(img_path)
    ldims, labels = read_idx(lab_path)
    if len(idims) != 3 or len(ldims) != 1 or idims[0] != ldims[0]:
        sys.exit(f"unexpected shapes {idims} and {ldims}")
    n, per = a.n, idims[1] * idims[2]
    if not 1 <= n <= idims[0]:
        sys.exit(f"-n must be in [1, {idims[0]}]")
    if per != 784:
        sys.exit(f"images of {per} pixels, expected 784")
    pixels, labels = pixels[:n * per], labels[:n]
    vals = [f32(p / 255.0) for p in pixels]

    base = os.path.basename(a.out)
    guard = "".join(c if c.isalnum() else "_" for c in base.upper()) + "_H"
    with open(a.out + ".h", "w") as h:
        h.write(f"/* {base}.h: the first {n} Fashion-MNIST test images, written by "
                "bake_images.py */\n")
        h.write(f"#ifndef {guard}\n#define {guard}\n#include <stdint.h>\n\n")
        h.write(f"#define NNR_TEST_N {n}\n#define NNR_TEST_PIXELS 784\n\n")
        h.write("extern const float nnr_test_images[NNR_TEST_N][NNR_TEST_PIXELS];"
                "   /* pixel / 255, [0, 1] */\n")
        h.write("extern const int32_t nnr_test_labels[NNR_TEST_N];"
                "   /* classes 0..9 */\n\n#endif\n")
    with open(a.out + ".c", "w") as c:
        c.write(f"/* {base}.c: the first {n} images and labels of {os.path.basename(img_path)}"
                f" and {os.path.basename(lab_path)},\n * written by bake_images.py: "
                "float32(pixel / 255.0), as nnc's trainer reads IDX ubyte images. */\n")
        c.write(f'#include "{base}.h"\n\n')
        c.write("const float nnr_test_images[NNR_TEST_N][NNR_TEST_PIXELS] = {\n")
        for k in range(n):
            c.write(f"  {{ /* image {k}, label {labels[k]} */\n")
            row = vals[k * per:(k + 1) * per]
            for i in range(0, per, 8):
                c.write("    " + ", ".join("0.0f" if v == 0 else "%.9ef" % v for v in row[i:i + 8]) + ",\n")
            c.write("  },\n")
        c.write("};\n\nconst int32_t nnr_test_labels[NNR_TEST_N] = {")
        c.write(", ".join(str(l) for l in labels) + "};\n")

    if a.idx:
        with open(a.idx + "-images-idx3-ubyte", "wb") as f:
            f.write(struct.pack(">BBBBIII", 0, 0, 8, 3, n, idims[1], idims[2]) + pixels)
        with open(a.idx + "-labels-idx1-ubyte", "wb") as f:
            f.write(struct.pack(">BBBBI", 0, 0, 8, 1, n) + labels)
    if a.safetensors:
        xb = struct.pack(f"<{len(vals)}f", *vals)
        yb = struct.pack(f"<{n}i", *labels)
        hdr = {"x": {"dtype": "F32", "shape": [n, per], "data_offsets": [0, len(xb)]},
               "y": {"dtype": "I32", "shape": [n], "data_offsets": [len(xb), len(xb) + len(yb)]}}
        hj = json.dumps(hdr, separators=(",", ":")).encode()
        hj += b" " * (-len(hj) % 8)
        with open(a.safetensors, "wb") as f:
            f.write(struct.pack("<Q", len(hj)) + hj + xb + yb)
    if a.csv:
        with open(a.csv, "w") as f:
            for k in range(n):
                f.write(",".join(repr(v) for v in vals[k * per:(k + 1) * per]) + "\n")
    if a.raw:
        with open(a.raw, "wb") as f:
            f.write(struct.pack(f"<{len(vals)}f", *vals))


if __name__ == "__main__":
    main()
