"""Writes the first 6 held-out examples of models/mamba-keyword as a user's
own labelled data for `glint-explain eval --eval-inputs` (ids.npy,
labels.npy, and relevant.npy: a [6, 32] mask with the key word marked).

    python3 test/Tools/Inputs/eval-user/make.py

Python's standard library only (no numpy)."""
import ast
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(HERE, "..", "..", "..", "..", "models", "mamba-keyword")
N = 6


def read(name):
    data = open(os.path.join(MODEL, name), "rb").read()
    length = struct.unpack("<H", data[8:10])[0]
    header = ast.literal_eval(data[10:10 + length].decode())
    assert header["descr"] == "<i8" and not header["fortran_order"]
    count = 1
    for d in header["shape"]:
        count *= d
    return header["shape"], struct.unpack("<%dq" % count, data[10 + length:])


def write(name, descr, shape, values, fmt):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        descr, "".join("%d, " % d for d in shape))
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)))
        f.write(header.encode())
        f.write(struct.pack("<%d%s" % (len(values), fmt), *values))


(_, length), ids = read("heldout_ids.npy")
_, labels = read("heldout_labels.npy")
_, positions = read("heldout_positions.npy")
write("ids.npy", "<i8", (N, length), ids[:N * length], "q")
write("labels.npy", "<i8", (N,), labels[:N], "q")
mask = [0.0] * (N * length)
for i in range(N):
    mask[i * length + positions[i]] = 1.0
write("relevant.npy", "<f4", (N, length), mask, "f")
