#!/usr/bin/env python3
"""Builds the seed corpora of glint's fuzz harnesses from the repository's
own files (fixtures, bundled models, examples, lit inputs), into OUT/<harness>.

usage: make-corpus.py SOURCE_ROOT OUT
"""
import glob
import json
import os
import struct
import sys

root, out = sys.argv[1], sys.argv[2]


def put(harness, name, data):
    d = os.path.join(out, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def safetensors(tensors, metadata=None):
    """tensors: [(name, dtype, shape, raw bytes)]."""
    header, offset, blob = {}, 0, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blob += raw
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + blob


# Safetensors (first byte even): small files of every loadable dtype, and the
# headers of the fixtures' checkpoints (their names and shapes, data cut).
put("fuzz-safetensors", "f32", b"\0" + safetensors(
    [("w", "F32", [2, 2], struct.pack("<4f", 1, -2, 0.5, 3))],
    {"format": "pt"}))
put("fuzz-safetensors", "mixed", b"\0" + safetensors([
    ("a", "F16", [3], struct.pack("<3e", 1, -2, 0.25)),
    ("b", "BF16", [2], b"\x80\x3f\x00\xc0"),
    ("c", "F64", [1, 2], struct.pack("<2d", 1.5, -7)),
    ("d", "I64", [2], struct.pack("<2q", 3, -4)),
    ("e", "I32", [], struct.pack("<i", 9)),
    ("f", "U8", [0], b"")]))
for path in sorted(glob.glob(os.path.join(root, "test/fixtures/*/model.safetensors"))):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    put("fuzz-safetensors", os.path.basename(os.path.dirname(path)),
        b"\0" + raw[:8 + n + 64])
# Index (first byte odd); the harness provides a.safetensors (x, y) and
# b.safetensors (z).
put("fuzz-safetensors", "index", b"\1" + json.dumps(
    {"metadata": {"total_size": 36},
     "weight_map": {"x": "a.safetensors", "y": "a.safetensors",
                    "z": "b.safetensors"}}).encode())

# .npy: the fixtures' small arrays of each dtype.
for path in sorted(glob.glob(os.path.join(root, "test/fixtures/*/*.npy"))):
    if os.path.getsize(path) <= 4096:
        name = path.split("/")[-2] + "-" + os.path.basename(path)
        with open(path, "rb") as f:
            put("fuzz-npy", name, f.read())

# config.json, prefixed by the checkpoint it is imported against (the order
# of FuzzImport.cpp).
families = ["mamba_conv3", "mamba2", "rwkv4", "recurrentgemma", "rwkv6", "vim"]
model_family = {"mamba": 0, "mamba2": 1, "rwkv": 2, "recurrent_gemma": 3,
                "rwkv6": 4, "vim": 5}
configs = sorted(glob.glob(os.path.join(root, "test/fixtures/*/config.json")) +
                 glob.glob(os.path.join(root, "models/*/config.json")))
for path in configs:
    with open(path, "rb") as f:
        text = f.read()
    family = model_family.get(json.loads(text).get("model_type"), 0)
    put("fuzz-import", path.split("/")[-2], bytes([family]) + text)

# Vocabularies and tokenizers (first byte: 0 vocab.json, 1 tokenizer.json,
# 2 an RWKV vocabulary, as FuzzVocab.cpp names them), then NUL and a run's
# text.
for path in sorted(glob.glob(os.path.join(root, "models/*/vocab.json"))):
    with open(path, "rb") as f:
        vocab = f.read()
    words = list(json.loads(vocab).get("word_to_id", json.loads(vocab)))[:6]
    put("fuzz-vocab", path.split("/")[-2],
        b"\0" + vocab + b"\0" + " ".join(words[:3]).encode() + b";" +
        " ".join(words[3:6]).encode())
put("fuzz-vocab", "tokens", b'\0{"a": 1, "b": 2}\x001,2,3;4,5,6')
for kind, pattern in [(1, "test/fixtures/tokenizers/*/tokenizer.json"),
                      (2, "test/fixtures/tokenizers/*/rwkv_vocab*.txt")]:
    for path in sorted(glob.glob(os.path.join(root, pattern))):
        with open(path, "rb") as f:
            put("fuzz-vocab", "tokenizer-%d-%s" % (kind, path.split("/")[-2]),
                bytes([kind]) + f.read() + b"\0Hello, world! 123")

# glint IR: examples, the dialect tests and pass tests, one case a file.
for pattern in ["examples/*.mlir", "test/Dialect/Glint/*.mlir",
                "test/Passes/*.mlir", "test/Tools/Inputs/*.mlir"]:
    for path in sorted(glob.glob(os.path.join(root, pattern))):
        with open(path) as f:
            cases = f.read().split("// -----")
        stem = path.split("/")[-2] + "-" + os.path.basename(path)
        for i, case in enumerate(cases):
            put("fuzz-ir", "%s-%d" % (stem, i), case)
            if pattern == "examples/*.mlir":
                put("fuzz-lower", "%s-%d" % (stem, i), b"\0" + case.encode())
                put("fuzz-lower", "%s-%d-attention" % (stem, i),
                    b"\1" + case.encode())

# The model record, in the layout glint-compile writes (ModelInfoTest's).
spec = lambda name, dtype, shape, **kw: dict(name=name, dtype=dtype,
                                            shape=shape, **kw)
entry = {"entry": "glint_forward",
         "inputs": [spec("input0", "i64", [-1, -1], limit=62)],
         "weights": [spec("emb", "f32", [62, 8])],
         "results": [spec("result", "f32", [-1, -1, 62])]}
step = dict(entry, entry="glint_step",
            states=[spec("position", "i64", []),
                    spec("layers.0.conv1d", "f32", [-1, 3, 8])])
put("fuzz-model-info", "forward", json.dumps(dict(entry, version=1)))
put("fuzz-model-info", "step", json.dumps(dict(entry, version=1, step=step)))

# Pictures: the PNG and JPEG fixtures of glint-explain's --input.
for pattern in ["test/fixtures/images/*.png", "test/fixtures/images/*.jpg"]:
    for path in sorted(glob.glob(os.path.join(root, pattern))):
        with open(path, "rb") as f:
            put("fuzz-image", os.path.basename(path), f.read())
