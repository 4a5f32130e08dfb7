#!/usr/bin/env python3
"""Check glint against torch on the bundled tiny models (dev-time only).

    /work/venv/bin/python scripts/train/verify_glint.py --models models --bin build/bin [--rows 200]

For every models/<name>/ this runs

    glint-import models/<name> -o <tmp>/<name>.mlir
    glint-run --interpret <tmp>/<name>.mlir --weights models/<name> --input <first rows of the held-out set>

and compares glint's logits (at the last position for the text models) with
  * heldout_logits.npy (torch, float32, written by train_tiny.py), and
  * the same torch model run in float64 (make_fixtures.keep_float64(), so that transformers' explicit
    float32 casts do not drop precision),
reporting the relative error max|glint - torch| / max|torch| and the agreement of the argmax with torch
and with the labels. Exit status 1 if a model fails to import/run or if predictions disagree.
"""

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "fixtures"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from transformers import MambaForCausalLM, RecurrentGemmaForCausalLM  # noqa: E402

import make_fixtures as mf  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

hf_logging.disable_progress_bar()


def load_torch(d):
    cfg = json.loads((d / "config.json").read_text())
    mt = cfg.get("model_type")
    if mt == "mamba":
        return MambaForCausalLM.from_pretrained(str(d)).eval()
    if mt == "recurrent_gemma":
        return RecurrentGemmaForCausalLM.from_pretrained(str(d), attn_implementation="eager").eval()
    if mt == "rwkv6":
        m = mf.Rwkv6(cfg)
    elif mt == "vim":
        m = mf.VisionMambaRef(cfg)
    else:
        raise ValueError(f"{d}: model_type {mt!r}")
    m.load_state_dict(load_file(str(d / "model.safetensors")))
    return m.eval()


@torch.no_grad()
def torch_logits64(model, x):
    m = copy.deepcopy(model).double()
    if isinstance(m, RecurrentGemmaForCausalLM):
        mf.rg_f64_fixup(m)  # RoPE inv_freq is built in float32; rebuild it in float64
    with mf.keep_float64():
        if isinstance(m, mf.VisionMambaRef):
            return m(torch.from_numpy(x).double())[0].numpy()
        if isinstance(m, mf.Rwkv6):
            return m(torch.from_numpy(x))[0].numpy()
        return m(input_ids=torch.from_numpy(x), use_cache=False).logits.numpy()


def rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=Path, default=Path("models"))
    ap.add_argument("--bin", type=Path, default=Path("build/bin"))
    ap.add_argument("--rows", type=int, default=200)
    ap.add_argument("--only", default=None)
    ap.add_argument("--retries", type=int, default=1,
                    help="rerun a crashing glint-run up to this many times (a flaky evaluator crash)")
    args = ap.parse_args()
    names = args.only.split(",") if args.only else sorted(p.name for p in args.models.iterdir()
                                                          if (p / "config.json").exists())
    ok = True
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in names:
            d = args.models / name
            is_img = (d / "heldout_images.npy").exists()
            x = np.load(d / ("heldout_images.npy" if is_img else "heldout_ids.npy"))[:args.rows]
            labels = np.load(d / "heldout_labels.npy")[:args.rows]
            t32 = np.load(d / "heldout_logits.npy")[:args.rows]
            np.save(tmp / "in.npy", x)
            mlir = tmp / f"{name}.mlir"
            r = subprocess.run([str(args.bin / "glint-import"), str(d), "-o", str(mlir)],
                               capture_output=True, text=True)
            if r.returncode != 0:
                print(f"{name}: glint-import FAILED: {r.stderr.strip()}")
                results[name] = {"error": "glint-import: " + r.stderr.strip()}
                ok = False
                continue
            out = tmp / "out.npy"
            for attempt in range(args.retries):
                r = subprocess.run([str(args.bin / "glint-run"), "--interpret", str(mlir), "--weights", str(d),
                                    "--input", str(tmp / "in.npy"), "-o", str(out)], capture_output=True, text=True)
                if r.returncode == 0:
                    break
                print(f"{name}: glint-run attempt {attempt + 1} exited {r.returncode}", flush=True)
            if r.returncode != 0:
                print(f"{name}: glint-run FAILED: {r.stderr.strip()}")
                results[name] = {"error": "glint-run: " + r.stderr.strip()}
                ok = False
                continue
            g_all = np.load(out)
            t64_all = torch_logits64(load_torch(d), x)
            g, t64 = (g_all, t64_all) if is_img else (g_all[:, -1, :], t64_all[:, -1, :])
            res = {
                "rows": int(x.shape[0]),
                "glint_dtype": str(g.dtype),
                "rel_err_all_positions_vs_torch_f64": rel(g_all, t64_all),
                "rel_err_vs_torch_f32": rel(g, t32),
                "rel_err_vs_torch_f64": rel(g, t64),
                "rel_err_torch_f32_vs_f64": rel(t32, t64),
                "argmax_agree_with_torch": float((g.argmax(-1) == t32.argmax(-1)).mean()),
                "glint_accuracy": float((g.argmax(-1) == labels).mean()),
                "torch_accuracy": float((t32.argmax(-1) == labels).mean()),
            }
            ok &= res["argmax_agree_with_torch"] == 1.0
            results[name] = res
            print(f"{name}: " + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                                          for k, v in res.items()), flush=True)
    print(json.dumps(results, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
