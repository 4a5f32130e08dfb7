#!/usr/bin/env python3
"""Writes one bad input for the bad-input tests (test/Tools/bad-input-*.test).

usage: bad-input.py KIND OUT [SOURCE]

  deep-json N          a JSON file nested N arrays deep (inside an object)
  deep-ir N            glint IR whose type nests N levels deep
  st-deep SOURCE       SOURCE (a .safetensors) with a header nested 100000 deep
  st-duplicate SOURCE  SOURCE with its first tensor's name given twice
  st-nonfinite SOURCE  SOURCE with one element of its largest F32 tensor NaN
  npy-empty            a .npy of int64 with shape (1, 0)
  npy-inf              a .npy of float32 [1, 2] holding 0.5 and -inf
  npy-long-ids N       a .npy of int64 token ids with shape (1, N), ids 1..7
"""
import json
import struct
import sys

kind, out = sys.argv[1], sys.argv[2]


def npy(descr, shape, payload):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (
        descr, repr(tuple(shape)))
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + \
        header.encode() + payload


def read_safetensors(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    return raw[8:8 + n].decode(), bytearray(raw[8 + n:])


def write_safetensors(header, data):
    text = header.encode()
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + bytes(data))


if kind == "deep-json":
    n = int(sys.argv[3])
    with open(out, "w") as f:
        f.write('{"architectures": ["MambaForCausalLM"], "x": ' + "[" * n +
                "]" * n + "}")
elif kind == "deep-ir":
    n = int(sys.argv[3])
    with open(out, "w") as f:
        f.write("func.func @forward(%x: " + "tensor<" * n + "f32" + ">" * n +
                ") {\n  return\n}\n")
elif kind == "st-deep":
    header, data = read_safetensors(sys.argv[3])
    n = 100000
    write_safetensors('{"__metadata__": {"x": ' + "[" * n + "]" * n +
                      "}, " + header[1:], data)
elif kind == "st-duplicate":
    header, data = read_safetensors(sys.argv[3])
    parsed = json.loads(header)
    name = sorted(k for k in parsed if k != "__metadata__")[0]
    entry = json.dumps({name: parsed[name]})[1:-1]
    write_safetensors("{" + entry + ", " + header[1:], data)
elif kind == "st-nonfinite":
    header, data = read_safetensors(sys.argv[3])
    parsed = json.loads(header)
    name, info = max(((k, v) for k, v in parsed.items()
                      if k != "__metadata__" and v["dtype"] == "F32"),
                     key=lambda kv: kv[1]["data_offsets"][1] -
                     kv[1]["data_offsets"][0])
    begin = info["data_offsets"][0]
    data[begin + 4:begin + 8] = struct.pack("<f", float("nan"))
    write_safetensors(header, data)
    print(name)
elif kind == "npy-empty":
    open(out, "wb").write(npy("<i8", (1, 0), b""))
elif kind == "npy-inf":
    open(out, "wb").write(npy("<f4", (1, 2),
                              struct.pack("<2f", 0.5, float("-inf"))))
elif kind == "npy-long-ids":
    n = int(sys.argv[3])
    open(out, "wb").write(npy("<i8", (1, n), struct.pack(
        "<%dq" % n, *(1 + i % 7 for i in range(n)))))
else:
    sys.exit("bad-input.py: unknown kind " + kind)
