#!/usr/bin/env python3
"""Train glint's bundled tiny models on the synthetic tasks of tasks.py (dev-time only).

    /work/venv/bin/python scripts/train/train_tiny.py --out models

For each model this trains in float32 on the CPU with fixed seeds and deterministic algorithms, and
writes models/<name>/:

    config.json, model.safetensors   the checkpoint, in the layout glint-import reads
    vocab.json                       (text models) the word vocabulary (tasks.vocab_json())
    heldout_ids.npy                  (text) int64 [200, 32]: <bos> + 30 words + "?"
    heldout_positions.npy            (text) int64 [200]: index of the planted key word (ground truth)
    heldout_images.npy               (vim)  float32 [200, 3, 32, 32]
    heldout_masks.npy                (vim)  float32 [200, 32, 32]: 0/1 object mask (ground truth)
    heldout_labels.npy               int64 [200]: label TOKEN id (text) or class id (vim)
    heldout_logits.npy               float32 [200, V]: the trained model's logits at the "?" position
                                     (text) or the class logits (vim), computed by torch
    README.md                        task, architecture, accuracy, command, time

`--only name,name` trains a subset. The script needs no network and no GPU. The reference
implementations of RWKV-6 (`Rwkv6`) and Vision Mamba (`VisionMambaRef`) are imported from
scripts/fixtures/make_fixtures.py, so the checkpoints have exactly the fixtures' layouts.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "fixtures"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

import transformers  # noqa: E402
from transformers import (  # noqa: E402
    MambaConfig,
    MambaForCausalLM,
    RecurrentGemmaConfig,
    RecurrentGemmaForCausalLM,
)
from transformers.utils import logging as hf_logging  # noqa: E402

import make_fixtures as mf  # noqa: E402  (sets deterministic algorithms and 1 thread at import)
import tasks  # noqa: E402

COMMAND = "/work/venv/bin/python scripts/train/train_tiny.py --out models"
N_EVAL = 500        # held-out examples used for the reported accuracy
N_COMMIT = 200      # the first N_COMMIT of them are saved next to the model
HELDOUT_SEED = 20250001          # fixed-length text held-out set (shared by the three text models)
HELDOUT_VAR_SEED = 20250002      # variable-length text held-out set
HELDOUT_IMG_SEED = 20250003      # image held-out set

torch.set_num_threads(2)
torch.use_deterministic_algorithms(True)
hf_logging.set_verbosity_error()


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------

def save_npy(path, a):
    np.save(path, np.ascontiguousarray(a), allow_pickle=False)


def n_params(model):
    seen, n = set(), 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            n += p.numel()
    return n


def lr_at(step, steps, lr, warmup):
    if step < warmup:
        return lr * (step + 1) / warmup
    t = (step - warmup) / max(1, steps - warmup)
    return lr * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * t)))


def train_loop(model, steps, lr, batch_fn, loss_fn, log_every=100, warmup=50, name=""):
    """Adam + warmup/cosine, gradient clipping 1.0. batch_fn(step) -> batch; loss_fn(model, batch) -> (loss, acc)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.98))
    model.train()
    t0 = time.time()
    run_loss, run_acc, k = 0.0, 0.0, 0
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, lr, warmup)
        loss, acc = loss_fn(model, batch_fn(step))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        run_loss += float(loss)
        run_acc += acc
        k += 1
        if (step + 1) % log_every == 0 or step + 1 == steps:
            print(f"  [{name}] step {step + 1}/{steps}  loss {run_loss / k:.4f}  acc {run_acc / k:.3f}  "
                  f"{time.time() - t0:.0f}s", flush=True)
            run_loss, run_acc, k = 0.0, 0.0, 0
    model.eval()
    return time.time() - t0


# ----------------------------------------------------------------------------------------------
# text models
# ----------------------------------------------------------------------------------------------

def text_logits_last(model, ids):
    """Logits at the last ("?") position, [B, V]."""
    if isinstance(model, mf.Rwkv6):
        return model(ids)[0][:, -1]
    return model(input_ids=ids, use_cache=False).logits[:, -1]


def text_loss(model, batch):
    ids, labels = batch
    logits = text_logits_last(model, ids)
    loss = F.cross_entropy(logits, labels)
    acc = float((logits.argmax(-1) == labels).float().mean())
    return loss, acc


def text_batch_fn(seed, batch):
    rng = np.random.default_rng(seed)

    def fn(step):
        ids, labels, _, _ = tasks.keyword_batch(rng, batch)
        return torch.from_numpy(ids), torch.from_numpy(labels)
    return fn


@torch.no_grad()
def eval_text(model):
    model.eval()
    ids, labels, _, pos = tasks.keyword_heldout(HELDOUT_SEED, N_EVAL)
    logits = torch.cat([text_logits_last(model, torch.from_numpy(ids[i:i + 100])) for i in range(0, N_EVAL, 100)])
    pred = logits.argmax(-1).numpy()
    acc_fixed = float((pred == labels).mean())
    acc_commit = float((pred[:N_COMMIT] == labels[:N_COMMIT]).mean())
    # variable lengths as in training: group equal lengths into batches
    var = tasks.keyword_heldout_variable(HELDOUT_VAR_SEED, N_EVAL)
    by_len = {}
    for e in var:
        by_len.setdefault(len(e[0]), []).append(e)
    correct = 0
    for L, es in sorted(by_len.items()):
        x = torch.from_numpy(np.stack([e[0] for e in es]))
        p = text_logits_last(model, x).argmax(-1).numpy()
        correct += int((p == np.array([e[1] for e in es])).sum())
    acc_var = correct / N_EVAL
    return {
        "heldout_fixed32_500": acc_fixed,
        "heldout_fixed32_committed_200": acc_commit,
        "heldout_variable_18to42_500": acc_var,
    }, (ids[:N_COMMIT], labels[:N_COMMIT], pos[:N_COMMIT], logits[:N_COMMIT].numpy().astype(np.float32))


def save_text_heldout(d, data):
    ids, labels, pos, logits = data
    save_npy(d / "heldout_ids.npy", ids.astype(np.int64))
    save_npy(d / "heldout_labels.npy", labels.astype(np.int64))
    save_npy(d / "heldout_positions.npy", pos.astype(np.int64))
    save_npy(d / "heldout_logits.npy", logits)
    (d / "vocab.json").write_text(json.dumps(tasks.vocab_json(), indent=2) + "\n")


def save_hf(model, d):
    model.save_pretrained(str(d), safe_serialization=True)
    g = d / "generation_config.json"
    if g.exists():
        g.unlink()


def build_mamba(seed):
    torch.manual_seed(seed)
    cfg = MambaConfig(vocab_size=tasks.VOCAB_SIZE, hidden_size=32, state_size=8, num_hidden_layers=2,
                      conv_kernel=4, expand=2, tie_word_embeddings=True, bos_token_id=tasks.BOS_ID,
                      eos_token_id=None, pad_token_id=None, use_mambapy=False)
    return MambaForCausalLM(cfg)


def build_griffin(seed):
    torch.manual_seed(seed)
    cfg = RecurrentGemmaConfig(num_hidden_layers=2, vocab_size=tasks.VOCAB_SIZE, hidden_size=32, lru_width=32,
                               num_attention_heads=2, num_key_value_heads=1, intermediate_size=64,
                               conv1d_width=4, attention_window_size=64, partial_rotary_factor=0.5,
                               logits_soft_cap=30.0, block_types=["recurrent", "attention"],
                               tie_word_embeddings=True, bos_token_id=tasks.BOS_ID, eos_token_id=None,
                               pad_token_id=None)
    cfg._attn_implementation = "eager"
    return RecurrentGemmaForCausalLM(cfg)


RWKV6_TINY = dict(mf.RWKV6_CFG, n_layer=2, n_embd=32, dim_att=32, dim_ffn=64, head_size_a=16, n_head=2,
                  D_MIX_LORA=8, D_DECAY_LORA=16, vocab_size=tasks.VOCAB_SIZE)


def build_rwkv6(seed):
    torch.manual_seed(seed)
    c = dict(RWKV6_TINY)
    model = mf.Rwkv6(c)
    mf.init_rwkv6_(model, c, seed)
    return model


VIM_TINY = dict(mf.VIM_CFG, embed_dim=32, depth=2, d_state=8, d_conv=4, expand=2, dt_rank=2,
                num_classes=len(tasks.SHAPES))


def build_vim(seed):
    torch.manual_seed(seed)
    c = dict(VIM_TINY)
    model = mf.VisionMambaRef(c)
    mf.init_vim_(model, c, seed)
    return model


# ----------------------------------------------------------------------------------------------
# image model
# ----------------------------------------------------------------------------------------------

def vim_loss(model, batch):
    img, cls = batch
    logits, _ = model(img)
    loss = F.cross_entropy(logits, cls)
    return loss, float((logits.argmax(-1) == cls).float().mean())


def vim_batch_fn(seed, batch):
    rng = np.random.default_rng(seed)

    def fn(step):
        img, cls, _ = tasks.shapes_batch(rng, batch)
        return torch.from_numpy(img), torch.from_numpy(cls)
    return fn


@torch.no_grad()
def eval_vim(model):
    model.eval()
    img, cls, masks = tasks.shapes_heldout(HELDOUT_IMG_SEED, N_EVAL)
    logits = torch.cat([model(torch.from_numpy(img[i:i + 100]))[0] for i in range(0, N_EVAL, 100)])
    pred = logits.argmax(-1).numpy()
    return {
        "heldout_500": float((pred == cls).mean()),
        "heldout_committed_200": float((pred[:N_COMMIT] == cls[:N_COMMIT]).mean()),
    }, (img[:N_COMMIT], cls[:N_COMMIT], masks[:N_COMMIT], logits[:N_COMMIT].numpy().astype(np.float32))


# ----------------------------------------------------------------------------------------------
# the models
# ----------------------------------------------------------------------------------------------

MODELS = {
    # name: family, builder, seed, steps, lr, batch
    "mamba-keyword": dict(kind="text", family="Mamba-1 (transformers MambaForCausalLM)", build=build_mamba,
                          seed=101, steps=600, lr=5e-3, batch=64),
    "rwkv-keyword": dict(kind="text", family="RWKV-6 Finch (make_fixtures.py Rwkv6, RWKV-LM x060 layout)",
                         build=build_rwkv6, seed=102, steps=600, lr=3e-3, batch=64),
    "griffin-keyword": dict(kind="text", family="Griffin (transformers RecurrentGemmaForCausalLM)",
                            build=build_griffin, seed=103, steps=600, lr=3e-3, batch=64),
    "vim-shapes": dict(kind="image", family="Vision Mamba (make_fixtures.py VisionMambaRef, bimamba v2)",
                       build=build_vim, seed=104, steps=1500, lr=3e-3, batch=64),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="output folder (models)")
    ap.add_argument("--only", default=",".join(MODELS), help="comma-separated subset of: " + ",".join(MODELS))
    ap.add_argument("--steps", type=int, default=None, help="override the number of steps (experiments)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {}
    for name in args.only.split(","):
        spec = MODELS[name]
        steps = args.steps or spec["steps"]
        print(f"{name}: training {steps} steps", flush=True)
        model = spec["build"](spec["seed"])
        if spec["kind"] == "text":
            secs = train_loop(model, steps, spec["lr"], text_batch_fn(spec["seed"] + 1000, spec["batch"]),
                              text_loss, name=name)
            acc, data = eval_text(model)
        else:
            secs = train_loop(model, steps, spec["lr"], vim_batch_fn(spec["seed"] + 1000, spec["batch"]),
                              vim_loss, name=name)
            acc, data = eval_vim(model)
        print(f"{name}: {n_params(model)} params, {secs:.0f}s, accuracy {acc}", flush=True)
        summary[name] = dict(params=n_params(model), seconds=secs, accuracy=acc)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
