#!/usr/bin/env python3
# Writes a Mamba-1 checkpoint (config.json + model.safetensors in Hugging
# Face's names, as glint-bench --mamba-130m-dir writes it) as a GGUF file
# that llama.cpp loads, for the generation comparison of
# scripts/bench/llama-compare.sh. Dev-time only: it needs numpy and the
# gguf-py package of the llama.cpp source tree being compared (--gguf-py).
#
#   mamba-to-gguf.py --gguf-py LLAMA_SRC/gguf-py CHECKPOINT_DIR OUT.gguf \
#       [--outtype f32|bf16]
#
# The tensors and their types follow what llama.cpp's own converter does for
# MambaForCausalLM: A = -exp(A_log), the conv weight squeezed to [D, W],
# the matrices (embedding, in/x/dt/out projections) in --outtype, norms,
# biases, convolutions, A and D in f32, the output tied to the embedding.
# The vocabulary is llama.cpp's bundled GPT-NeoX one (LLAMA_SRC/models/
# ggml-vocab-gpt-neox.gguf), cut to the checkpoint's size: a random
# checkpoint has no tokenizer of its own, and the benchmark feeds token ids.

import argparse
import json
import struct
import sys
from pathlib import Path

import numpy as np


def read_safetensors(path):
    """name -> float32 array, read with numpy alone."""
    data = path.read_bytes()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len])
    base = 8 + header_len
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = data[base + begin:base + end]
        if info["dtype"] == "F32":
            array = np.frombuffer(raw, dtype=np.float32)
        elif info["dtype"] == "BF16":
            array = (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32)
                     << 16).view(np.float32)
        else:
            sys.exit(f"{path}: tensor {name} has dtype {info['dtype']}, "
                     "expected F32 or BF16")
        out[name] = array.reshape(info["shape"])
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--gguf-py", type=Path, required=True)
    parser.add_argument("--outtype", choices=["f32", "bf16"], default="f32")
    args = parser.parse_args()
    sys.path.insert(0, str(args.gguf_py))
    import gguf  # noqa: E402 (from the llama.cpp tree being compared)

    config = json.loads((args.checkpoint / "config.json").read_text())
    if config.get("model_type") != "mamba":
        sys.exit(f"{args.checkpoint}: model_type is "
                 f"{config.get('model_type')!r}, expected 'mamba'")
    tensors = read_safetensors(args.checkpoint / "model.safetensors")
    d_model = config["hidden_size"]
    layers = config["num_hidden_layers"]
    vocab = config["vocab_size"]

    writer = gguf.GGUFWriter(str(args.output), "mamba")
    writer.add_context_length(2 ** 20)
    writer.add_embedding_length(d_model)
    writer.add_feed_forward_length(0)
    writer.add_head_count(0)
    writer.add_block_count(layers)
    writer.add_ssm_conv_kernel(config["conv_kernel"])
    writer.add_ssm_inner_size(config["intermediate_size"])
    writer.add_ssm_state_size(config["state_size"])
    writer.add_ssm_time_step_rank(config["time_step_rank"])
    writer.add_layer_norm_rms_eps(config["layer_norm_epsilon"])
    writer.add_ssm_dt_b_c_rms(False)
    bf16 = args.outtype == "bf16"
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_BF16 if bf16
                         else gguf.LlamaFileType.ALL_F32)

    vocab_path = args.gguf_py.parent / "models" / "ggml-vocab-gpt-neox.gguf"
    reader = gguf.GGUFReader(vocab_path, "r")
    field = reader.get_field(gguf.Keys.Tokenizer.MODEL)
    writer.add_tokenizer_model(bytes(field.parts[-1]).decode("utf-8"))
    writer.add_tokenizer_pre("mpt")
    field = reader.get_field(gguf.Keys.Tokenizer.LIST)
    tokens = [bytes(field.parts[i]) for i in field.data]
    field = reader.get_field(gguf.Keys.Tokenizer.TOKEN_TYPE)
    types = [field.parts[i].tolist()[0] for i in field.data]
    # Pad a vocabulary larger than the bundled one with unused tokens.
    for i in range(len(tokens), vocab):
        tokens.append(f"[PAD{i}]".encode())
        types.append(gguf.TokenType.UNUSED)
    writer.add_token_list(tokens[:vocab])
    writer.add_token_types(types[:vocab])
    field = reader.get_field(gguf.Keys.Tokenizer.MERGES)
    writer.add_token_merges([bytes(field.parts[i]) for i in field.data])

    def put(name, array, matrix):
        array = np.ascontiguousarray(array, dtype=np.float32)
        if matrix and bf16:
            writer.add_tensor(name, gguf.quants.quantize(
                array, gguf.GGMLQuantizationType.BF16),
                raw_dtype=gguf.GGMLQuantizationType.BF16)
        else:
            writer.add_tensor(name, array)

    put("token_embd.weight", tensors["backbone.embeddings.weight"], True)
    for i in range(layers):
        p = f"backbone.layers.{i}."
        b = f"blk.{i}."
        put(b + "attn_norm.weight", tensors[p + "norm.weight"], False)
        m = p + "mixer."
        put(b + "ssm_in.weight", tensors[m + "in_proj.weight"], True)
        conv = tensors[m + "conv1d.weight"]
        put(b + "ssm_conv1d.weight", conv.reshape(conv.shape[0], -1), False)
        put(b + "ssm_conv1d.bias", tensors[m + "conv1d.bias"], False)
        put(b + "ssm_x.weight", tensors[m + "x_proj.weight"], True)
        put(b + "ssm_dt.weight", tensors[m + "dt_proj.weight"], True)
        put(b + "ssm_dt.bias", tensors[m + "dt_proj.bias"], False)
        put(b + "ssm_a", -np.exp(tensors[m + "A_log"]), False)
        put(b + "ssm_d", tensors[m + "D"], False)
        put(b + "ssm_out.weight", tensors[m + "out_proj.weight"], True)
    put("output_norm.weight", tensors["backbone.norm_f.weight"], False)
    if not config.get("tie_word_embeddings", True):
        put("output.weight", tensors["lm_head.weight"], True)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    main()
