#!/usr/bin/env python3
"""Copies a checkpoint directory with every F32 tensor stored as BF16
(rounded to nearest even): a stand-in for the public bf16 checkpoints in the
--weight-dtype tests. Standard library only.

    to-bf16.py SOURCE_DIR DEST_DIR
"""
import json
import shutil
import struct
import sys
from pathlib import Path


def to_bf16(data: bytes) -> bytes:
    out = bytearray()
    for (u,) in struct.iter_unpack("<I", data):
        u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16  # finite weights only
        out += struct.pack("<H", u & 0xFFFF)
    return bytes(out)


def main() -> None:
    source, dest = Path(sys.argv[1]), Path(sys.argv[2])
    dest.mkdir(parents=True, exist_ok=True)
    for f in source.iterdir():
        if f.name != "model.safetensors" and f.is_file():
            shutil.copy(f, dest / f.name)
    raw = (source / "model.safetensors").read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    body = raw[8 + length :]
    new_header, chunks, offset = {}, [], 0
    for name, info in header.items():
        if name == "__metadata__":
            new_header[name] = info
            continue
        begin, end = info["data_offsets"]
        data = body[begin:end]
        dtype = info["dtype"]
        if dtype == "F32":
            data, dtype = to_bf16(data), "BF16"
        new_header[name] = {"dtype": dtype, "shape": info["shape"],
                            "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(new_header).encode()
    text += b" " * (-len(text) % 8)
    with open(dest / "model.safetensors", "wb") as out:
        out.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


if __name__ == "__main__":
    main()
