#!/usr/bin/env python3
# One line per measurement of llama-bench's JSONL (-o jsonl) or glint-bench's
# JSON lines on stdin; argv[1] names the tool. Used by llama-compare.sh.
import json
import sys

tool = sys.argv[1]
for line in sys.stdin:
    if not line.startswith("{"):
        continue
    d = json.loads(line)
    if tool == "glint":
        weights = d["weight_dtype"]
        if "ms_per_token_median" in d:
            ms = d["ms_per_token_median"]
            note = (f"  ({d['fraction_of_stream_median']:.2f} of "
                    f"{d['stream_read_gbps']:.1f} GB/s read)")
            kind, n, rate = "decode", 32, 1000.0 / ms
        else:
            kind, n, rate, note = "prefill", d["L"], d["updates_per_s"], ""
    else:
        weights = d["model_type"]
        kind = "decode" if d["n_gen"] else "prefill"
        n = d["n_gen"] or d["n_prompt"]
        rate, note = d["avg_ts"], ""
        if kind == "decode":
            note = f"  (after {d['n_depth']} tokens)"
    print(f"{tool:9s} {kind:7s} {weights:20s} n={n:<5d} {rate:9.2f} tokens/s"
          f" {1000.0 / rate:9.3f} ms/token{note}")
