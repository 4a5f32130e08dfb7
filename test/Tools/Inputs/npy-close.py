#!/usr/bin/env python3
"""npy-close.py A.npy B.npy RTOL: exit 0 if the two float .npy files have the
same shape and max|a - b| <= RTOL * max|b| (printing that relative error),
else 1. The standard library only: CI has no numpy."""

import ast
import struct
import sys


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:6] != b"\x93NUMPY":
        sys.exit(f"{path}: not a .npy file")
    major = data[6]
    size_bytes = 2 if major == 1 else 4
    (length,) = struct.unpack("<H" if major == 1 else "<I",
                              data[8:8 + size_bytes])
    start = 8 + size_bytes
    header = ast.literal_eval(data[start:start + length].decode("latin1"))
    code = {"<f8": "d", "<f4": "f"}.get(header["descr"])
    if code is None or header["fortran_order"]:
        sys.exit(f"{path}: {header['descr']} arrays are not read here")
    body = data[start + length:]
    count = len(body) // struct.calcsize(code)
    return header["shape"], struct.unpack(f"<{count}{code}", body)


a_shape, a = read(sys.argv[1])
b_shape, b = read(sys.argv[2])
rtol = float(sys.argv[3])
if a_shape != b_shape:
    sys.exit(f"shapes differ: {a_shape} vs {b_shape}")
scale = max((abs(y) for y in b), default=0.0)
error = max((abs(x - y) for x, y in zip(a, b)), default=0.0)
relative = error / scale if scale else error
print(f"relative error {relative:.3g} over {len(a)} values")
sys.exit(0 if relative <= rtol and scale > 0 else 1)
