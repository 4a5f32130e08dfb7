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

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)
hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()


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
        run_loss += float(loss.detach())
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


# ----------------------------------------------------------------------------------------------
# text models on the tasks with several relevant tokens (tasks.TextTask)
# ----------------------------------------------------------------------------------------------

def task_batch_fn(task, seed, batch):
    rng = np.random.default_rng(seed)

    def fn(step):
        ids, labels, _, _, _ = task.batch(rng, batch)
        return torch.from_numpy(ids), torch.from_numpy(labels)
    return fn


@torch.no_grad()
def task_probs(model, ids, chunk=100):
    """Softmax at the last position, [B, V] (numpy float64)."""
    model.eval()
    out = [torch.softmax(text_logits_last(model, torch.from_numpy(ids[i:i + chunk])).double(), -1)
           for i in range(0, len(ids), chunk)]
    return torch.cat(out).numpy()


@torch.no_grad()
def eval_task(model, task, seed, var_seed):
    model.eval()
    ids, labels, relevant, pos, roles = task.heldout(seed, N_EVAL)
    logits = torch.cat([text_logits_last(model, torch.from_numpy(ids[i:i + 100])) for i in range(0, N_EVAL, 100)])
    pred = logits.argmax(-1).numpy()
    var = task.heldout_variable(var_seed, N_EVAL)
    by_len = {}
    for e in var:
        by_len.setdefault(len(e[0]), []).append(e)
    correct = 0
    for L, es in sorted(by_len.items()):
        x = torch.from_numpy(np.stack([e[0] for e in es]))
        p = text_logits_last(model, x).argmax(-1).numpy()
        correct += int((p == np.array([e[1] for e in es])).sum())
    acc = {
        "heldout_fixed_500": float((pred == labels).mean()),
        "heldout_fixed_committed_200": float((pred[:N_COMMIT] == labels[:N_COMMIT]).mean()),
        "heldout_variable_500": correct / N_EVAL,
    }
    n = N_COMMIT
    return acc, (ids[:n], labels[:n], relevant[:n], pos[:n], roles[:n],
                 logits[:n].numpy().astype(np.float32))


def task_sanity(model, task, data, seed=4242):
    """Edits of single words on the committed held-out set, by construction of the task: each check
    replaces one word per example and counts how often the model's prediction is the expected one.
    Returns rows (what is replaced, by what, expected, examples, fraction as expected, mean p(label))."""
    ids, labels, relevant, pos, roles, _ = data
    rng = np.random.default_rng(seed)
    fill = task.filler_ids
    base = task_probs(model, ids)
    base_pred = base.argmax(-1)
    rows = []

    def check(what, by, expected_desc, sel, edit, expected):
        """sel: example indices; edit(i) -> (position, new id); expected(i) -> label token id or None
        (None: the prediction must not change)."""
        if len(sel) == 0:
            return
        x = ids[sel].copy()
        for k, i in enumerate(sel):
            p, new = edit(i)
            x[k, p] = new
        probs = task_probs(model, x)
        pred = probs.argmax(-1)
        want = np.array([base_pred[i] if expected(i) is None else expected(i) for i in sel])
        rows.append((what, by, expected_desc, len(sel), float((pred == want).mean()),
                     float(probs[np.arange(len(sel)), labels[sel]].mean())))

    def other_filler(cur):
        while True:
            f = int(fill[rng.integers(len(fill))])
            if f != cur:
                return f

    n = len(ids)
    everyone = np.arange(n)
    if isinstance(task, tasks.NegationTask):
        lab = task.label_ids
        neg = np.array([i for i in everyone if roles[i]["negated"]])
        plain = np.array([i for i in everyone if not roles[i]["negated"]])
        decoy = np.array([i for i in everyone if roles[i]["decoy_not"] is not None])
        rows.append(("(none)", "", "the label", n, float((base_pred == labels).mean()),
                     float(base[everyone, labels].mean())))
        check("class word", "a filler word", "the label", everyone,
              lambda i: (roles[i]["class_word"], other_filler(-1)), lambda i: labels[i])
        check("class word", "a key word of the opposite class", "the label flips", everyone,
              lambda i: (roles[i]["class_word"], task.key_ids[roles[i]["class"] ^ 1, 0]),
              lambda i: lab[roles[i]["class"]] if roles[i]["negated"] else lab[roles[i]["class"] ^ 1])
        check("negating `not` (negated examples)", "a filler word", "the label flips (un-negated)", neg,
              lambda i: (roles[i]["negation"], other_filler(-1)), lambda i: lab[roles[i]["class"]])
        check("the word before the class word (plain examples)", "`not`", "the label flips (negated)", plain,
              lambda i: (roles[i]["class_word"] - 1, task.not_id), lambda i: lab[roles[i]["class"] ^ 1])
        check("decoy `not` after the class word", "a filler word", "no change", decoy,
              lambda i: (roles[i]["decoy_not"], other_filler(-1)), lambda i: None)
    elif isinstance(task, tasks.TwoKeysTask):
        lab = task.label_ids
        rows.append(("(none)", "", "the label", n, float((base_pred == labels).mean()),
                     float(base[everyone, labels].mean())))
        check("colour word", "a filler word", "the label", everyone,
              lambda i: (roles[i]["colour_word"], other_filler(-1)), lambda i: labels[i])
        check("shape word", "a filler word", "the label", everyone,
              lambda i: (roles[i]["shape_word"], other_filler(-1)), lambda i: labels[i])
        check("colour word", "the other colour's word", "the new combination", everyone,
              lambda i: (roles[i]["colour_word"], task.colour_ids[1 - roles[i]["colour"], 0]),
              lambda i: lab[2 * (1 - roles[i]["colour"]) + roles[i]["shape"]])
        check("shape word", "the other shape's word", "the new combination", everyone,
              lambda i: (roles[i]["shape_word"], task.shape_ids[1 - roles[i]["shape"], 0]),
              lambda i: lab[2 * roles[i]["colour"] + 1 - roles[i]["shape"]])
    elif isinstance(task, tasks.LongDistanceTask):
        lab = task.label_ids
        rows.append(("(none)", "", "the label", n, float((base_pred == labels).mean()),
                     float(base[everyone, labels].mean())))
        check("key word", "a filler word", "the label", everyone,
              lambda i: (roles[i]["key_word"], other_filler(-1)), lambda i: labels[i])
        check("key word", "a key word of the next class", "the new class", everyone,
              lambda i: (roles[i]["key_word"], task.key_ids[(roles[i]["class"] + 1) % 4, 0]),
              lambda i: lab[(roles[i]["class"] + 1) % 4])
    # every other content word, one at a time, by another filler word (the decoy `not` included
    # for the negation task): the prediction must not change
    L = ids.shape[1]
    changed, total = 0, 0
    for t in range(1, L - 1):
        sel = np.array([i for i in everyone if relevant[i, t] == 0])
        x = ids[sel].copy()
        x[:, t] = [other_filler(int(c)) for c in x[:, t]]
        pred = task_probs(model, x).argmax(-1)
        changed += int((pred != base_pred[sel]).sum())
        total += len(sel)
    rows.append(("any one irrelevant word (every position in turn)", "another filler word", "no change",
                 total, 1.0 - changed / total, float("nan")))
    return rows


def save_task_heldout(d, task, data):
    ids, labels, relevant, pos, _, logits = data
    save_npy(d / "heldout_ids.npy", ids.astype(np.int64))
    save_npy(d / "heldout_labels.npy", labels.astype(np.int64))
    save_npy(d / "heldout_positions.npy", pos.astype(np.int64))
    save_npy(d / "heldout_relevant.npy", relevant.astype(np.float32))
    save_npy(d / "heldout_logits.npy", logits)
    (d / "vocab.json").write_text(json.dumps(task.vocab_json(), indent=2) + "\n")


def save_hf(model, d):
    model.save_pretrained(str(d), safe_serialization=True)
    g = d / "generation_config.json"
    if g.exists():
        g.unlink()


def build_mamba(seed, vocab_size=tasks.VOCAB_SIZE):
    torch.manual_seed(seed)
    cfg = MambaConfig(vocab_size=vocab_size, hidden_size=32, state_size=8, num_hidden_layers=2,
                      conv_kernel=4, expand=2, tie_word_embeddings=True, bos_token_id=tasks.BOS_ID,
                      eos_token_id=None, pad_token_id=None, use_mambapy=False)
    return MambaForCausalLM(cfg)


def build_griffin(seed, vocab_size=tasks.VOCAB_SIZE):
    torch.manual_seed(seed)
    cfg = RecurrentGemmaConfig(num_hidden_layers=2, vocab_size=vocab_size, hidden_size=32, lru_width=32,
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
    "mamba-keyword": dict(
        kind="text", family="Mamba-1 (transformers `MambaForCausalLM`)", build=build_mamba,
        seed=101, steps=600, lr=5e-3, batch=64,
        arch=("`MambaForCausalLM`: 2 layers, hidden 32, d_state 8, expand 2 (inner 64), conv 4, "
              "time_step_rank 2 (= ceil(32/16)), RMSNorm eps 1e-5, tied embeddings (no `lm_head.weight` in "
              "the safetensors). transformers' own init. Trained with transformers' pure-torch path.")),
    "rwkv-keyword": dict(
        kind="text", family="RWKV-6 Finch (`Rwkv6` of scripts/fixtures/make_fixtures.py, RWKV-LM x060 layout)",
        build=build_rwkv6, seed=102, steps=1000, lr=3e-3, batch=64,
        arch=("RWKV-6 (`model_type` \"rwkv6\", the layout of `test/fixtures/rwkv6`): 2 blocks, n_embd 32, "
              "2 heads of 16, dim_ffn 64, D_MIX_LORA 8, D_DECAY_LORA 16, untied head. Initialised with the "
              "fixture's `init_rwkv6_` (RWKV-LM's x060 ratio init for the time_* vectors, random LoRAs, "
              "N(0, 0.1²) noise on every parameter), then trained.")),
    "griffin-keyword": dict(
        kind="text", family="Griffin (transformers `RecurrentGemmaForCausalLM`)", build=build_griffin,
        seed=103, steps=600, lr=3e-3, batch=64,
        arch=("`RecurrentGemmaForCausalLM`: 2 layers with block types (recurrent, attention), hidden 32, "
              "lru_width 32, 2 heads (head_dim 16) with 1 KV head, intermediate_size 64 (MLP width 32), "
              "conv 4, attention_window_size 64 (≥ every sequence here, so the mask is plain causal), "
              "partial rotary 0.5, logits soft cap 30, tied embeddings, pad_token_id null (so `<bos>`, "
              "id 0, is an ordinary trainable embedding). Trained with attn_implementation \"eager\".")),
    "vim-shapes": dict(
        kind="image", family="Vision Mamba (`VisionMambaRef` of scripts/fixtures/make_fixtures.py, bimamba v2)",
        build=build_vim, seed=104, steps=3000, lr=4e-3, batch=64,
        arch=("Vim (`model_type` \"vim\", the layout of `test/fixtures/vim`): depth 2, embed_dim 32, "
              "d_state 8, expand 2, conv 4, dt_rank 2, 32×32 images in 8×8 patches (16 patches + a middle CLS "
              "token), 4 classes. Initialised with the fixture's `init_vim_`, then trained.")),
}


# Models on the tasks with several relevant tokens (kind "task": the task object, its own vocabulary
# and held-out seeds).
MODELS.update({
    "mamba-negation": dict(
        kind="task", task=tasks.NEGATION, family=MODELS["mamba-keyword"]["family"], build=build_mamba,
        seed=105, steps=1200, lr=5e-3, batch=64, heldout_seed=20250011, heldout_var_seed=20250012,
        arch=MODELS["mamba-keyword"]["arch"]),
    "mamba-twokeys": dict(
        kind="task", task=tasks.TWOKEYS, family=MODELS["mamba-keyword"]["family"], build=build_mamba,
        seed=106, steps=1200, lr=5e-3, batch=64, heldout_seed=20250021, heldout_var_seed=20250022,
        arch=MODELS["mamba-keyword"]["arch"]),
    "griffin-negation": dict(
        kind="task", task=tasks.NEGATION, family=MODELS["griffin-keyword"]["family"], build=build_griffin,
        seed=108, steps=1200, lr=3e-3, batch=64, heldout_seed=20250011, heldout_var_seed=20250012,
        arch=MODELS["griffin-keyword"]["arch"]),
})


def save_model(name, spec, model, d, data):
    if d.exists():
        for p in d.iterdir():
            p.unlink()
    d.mkdir(parents=True, exist_ok=True)
    model.eval()
    if isinstance(model, (mf.Rwkv6, mf.VisionMambaRef)):
        cfg = RWKV6_TINY if isinstance(model, mf.Rwkv6) else VIM_TINY
        save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()},
                  str(d / "model.safetensors"), metadata={"format": "pt"})
        if cfg is VIM_TINY:
            # Class names for the report, and the normalisation that maps a
            # PNG's [0, 1] onto the task's range (noise ~ N(0, 1), objects
            # up to 3): (x - 0.5) / (1/6) spans [-3, 3].
            cfg = dict(cfg, id2label={str(i): n for i, n in enumerate(tasks.SHAPES)})
            (d / "preprocessor_config.json").write_text(json.dumps(
                dict(image_mean=[0.5] * 3, image_std=[1 / 6] * 3, crop_pct=1.0), indent=2) + "\n")
        (d / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    else:
        save_hf(model, d)
    if spec["kind"] == "text":
        save_text_heldout(d, data)
    elif spec["kind"] == "task":
        save_task_heldout(d, spec["task"], data)
    else:
        img, cls, masks, logits = data
        save_npy(d / "heldout_images.npy", img.astype(np.float32))
        save_npy(d / "heldout_labels.npy", cls.astype(np.int64))
        save_npy(d / "heldout_masks.npy", masks.astype(np.float32))
        save_npy(d / "heldout_logits.npy", logits)


TEXT_TASK_MD = """\
**Task: planted keyword** (`scripts/train/tasks.py`). A sequence is `<bos>`, N content words and a final
`?` (N uniform in [16, 40] in training). The content words are drawn uniformly from 48 filler words,
and exactly one of them, at a uniformly random position, is replaced by a key word. The 8 key words form
4 classes of 2 synonyms: {excellent, superb} → `positive`, {terrible, awful} → `negative`,
{tiger, falcon} → `animal`, {crimson, azure} → `colour`. The causal LM must predict, at the `?`
position, the label word of the key word's class (the training loss is the cross-entropy over the
whole vocabulary at that position only). **Ground truth** for an explanation of the prediction at `?`:
the key word's position; every other token is irrelevant by construction.

Vocabulary (`vocab.json`, 62 ids): 0 `<bos>`, 1 `?`, 2–5 the label words (class order), 6–13 the key
words (2 per class, class order), 14–61 the filler words.
"""

IMAGE_TASK_MD = """\
**Task: pasted object** (`scripts/train/tasks.py`). A 3×32×32 float32 image of N(0, 1) noise; one object
of one of 4 shape classes — 0 filled square, 1 cross (plus), 2 ring, 3 triangle (apex up) — of size
8–12 px is pasted at a uniformly random place: its pixels are set to a random bright colour (every
channel in [1.5, 3], one channel 3). Label: the shape class. **Ground truth** for an explanation: the
object's binary pixel mask (32×32); all the noise is irrelevant by construction. The model sees 16
patches of 8×8 (row-major) with the CLS token inserted at index 8 (17 tokens).
"""


TASK_MD = {
    "negation": """\
**Task: negation** (`scripts/train/tasks.py`, `NegationTask`). A sequence is `<bos>`, N content words
and a final `?` (N uniform in [16, 40] in training, 30 in the held-out set: length 32). The content words
are filler words (the 48 of the planted keyword task) with one **class word** at a uniformly random
position in [4, N − 3]: 4 classes of 2 synonyms, {excellent, superb} → `positive`, {terrible, awful} →
`negative`, {correct, true} → `yes`, {wrong, false} → `no`. With probability 0.5 a **negating `not`**
stands 1–3 words (uniform) before the class word and flips the label to the opposite one
(`positive` ↔ `negative`, `yes` ↔ `no`); independently, with probability 0.3 a **decoy `not`** stands
1–3 words after the class word and changes nothing. The causal LM predicts the label word at `?`
(cross-entropy over the whole vocabulary at that position only). **Ground truth** (`heldout_relevant.npy`):
the class word and, when present, the negating `not`; the decoy `not` and the fillers are irrelevant by
construction. `heldout_positions.npy` holds the class word's position.

Vocabulary (`vocab.json`, 63 ids): 0 `<bos>`, 1 `?`, 2–5 the label words (`positive`, `negative`, `yes`,
`no`), 6 `not`, 7–14 the class words (2 per class, class order), 15–62 the filler words.
""",
    "twokeys": """\
**Task: two keys** (`scripts/train/tasks.py`, `TwoKeysTask`). A sequence is `<bos>`, N content words
and a final `?` (N uniform in [16, 40] in training, 30 in the held-out set: length 32). The content words
are filler words (the 48 of the planted keyword task) with one **colour word** and one **shape word** at
two distinct uniformly random positions (either order): colours {crimson, scarlet} → red,
{azure, cobalt} → blue; shapes {circle, disc} → circle, {square, box} → square. The label is the
combination — `red-circle`, `red-square`, `blue-circle`, `blue-square` (label index 2·colour + shape) —
so neither word alone decides it. The causal LM predicts the label word at `?` (cross-entropy over the
whole vocabulary at that position only). **Ground truth** (`heldout_relevant.npy`): both key words;
every filler is irrelevant by construction. `heldout_positions.npy` holds the colour word's position.

Vocabulary (`vocab.json`, 62 ids): 0 `<bos>`, 1 `?`, 2–5 the label words (`red-circle`, `red-square`,
`blue-circle`, `blue-square`), 6–9 the colour words, 10–13 the shape words, 14–61 the filler words.
""",
}


def write_task_readme(name, spec, d, info, sanity):
    task = spec["task"]
    cfg_text = (d / "config.json").read_text()
    acc = info["accuracy"]
    L = task.heldout_len
    vlo, vhi = task.min_content + 2, task.max_content + 2
    acc_md = ("| held-out set | accuracy |\n|---|---|\n"
              f"| 500 sequences of length {L} (seed {spec['heldout_seed']}) | {acc['heldout_fixed_500']:.3f} |\n"
              f"| the first 200 of them (committed here) | {acc['heldout_fixed_committed_200']:.3f} |\n"
              f"| 500 sequences of lengths {vlo}–{vhi} as in training (seed {spec['heldout_var_seed']}) | "
              f"{acc['heldout_variable_500']:.3f} |\n")
    san_md = ("| replaced | by | expected prediction | examples | as expected | mean p(label) |\n"
              "|---|---|---|---|---|---|\n")
    for what, by, exp, cnt, frac, p in sanity:
        san_md += f"| {what} | {by} | {exp} | {cnt} | {frac:.3f} | {'–' if p != p else f'{p:.2f}'} |\n"
    files_md = (
        "| file | contents |\n|---|---|\n"
        "| `config.json`, `model.safetensors` | the checkpoint (float32), in the layout `glint-import` reads |\n"
        "| `vocab.json` | `word_to_id`, `id_to_word`, special tokens, the labels and the task's key words |\n"
        f"| `heldout_ids.npy` | int64 [200, {L}]: `<bos>`, {L - 2} words, `?` (the first 200 of the 500-sequence held-out set) |\n"
        "| `heldout_labels.npy` | int64 [200]: the target **token id** (label word) at the last position |\n"
        f"| `heldout_relevant.npy` | float32 [200, {L}]: 1 on every relevant token (from the task generator), else 0 — the ground truth |\n"
        "| `heldout_positions.npy` | int64 [200]: the primary relevant position (see the task) |\n"
        f"| `heldout_logits.npy` | float32 [200, {task.vocab_size}]: torch's logits at the last position, for cross-checks |\n")
    task_md = TASK_MD[task.name]
    text = f"""# {name}

{spec['family']}, trained by `scripts/train/train_tiny.py` (generated file: rerunning the script rewrites it).

{task_md}
## Model

{spec['arch']} Vocabulary size {task.vocab_size}.

Parameters: {info['params']:,} (float32; `model.safetensors` {info['safetensors_bytes'] / 1024:.1f} KiB).

```json
{cfg_text.strip()}
```

## Training

{info['steps']} steps of Adam (β = 0.9, 0.98), batch {spec['batch']}, peak learning rate {spec['lr']}, 50 warm-up steps
then cosine to 5 %, gradient clipping 1.0; fresh examples every step from `np.random.default_rng({spec['seed'] + 1000})`,
`torch.manual_seed({spec['seed']})` for the init; float32 on the CPU, one thread, deterministic algorithms.
Training took {info['seconds']:.0f} s on a shared 2-core machine (time varies with load; the weights do not).

    {COMMAND} --only {name}

## Held-out accuracy

{acc_md}
## Sanity checks

On the 200 committed examples (torch), one word replaced per example; "as expected" is the fraction whose
prediction (argmax at `?`) is the expected one, "mean p(label)" the mean probability of the original label.

{san_md}
## Files

{files_md}
## Running it with glint

    build/bin/glint-import models/{name} -o /tmp/{name}.mlir
    build/bin/glint-run --interpret /tmp/{name}.mlir --weights models/{name} --input models/{name}/heldout_ids.npy -o /tmp/{name}.logits.npy
    build/bin/glint-explain eval models/{name} --count 50

The logits at the last position (`[:, -1, :]`) are the prediction; their argmax should equal
`heldout_labels.npy`. `glint-explain eval` scores explanations against every relevant token
(`heldout_relevant.npy`).
"""
    (d / "README.md").write_text(text)


def write_model_readme(name, spec, model, d, info):
    cfg_text = (d / "config.json").read_text()
    acc = info["accuracy"]
    if spec["kind"] == "text":
        acc_md = ("| held-out set | accuracy |\n|---|---|\n"
                  f"| 500 sequences of length 32 (seed {HELDOUT_SEED}) | {acc['heldout_fixed32_500']:.3f} |\n"
                  f"| the first 200 of them (committed here) | {acc['heldout_fixed32_committed_200']:.3f} |\n"
                  f"| 500 sequences of lengths 18–42 as in training (seed {HELDOUT_VAR_SEED}) | "
                  f"{acc['heldout_variable_18to42_500']:.3f} |\n")
        files_md = (
            "| file | contents |\n|---|---|\n"
            "| `config.json`, `model.safetensors` | the checkpoint (float32), in the layout `glint-import` reads |\n"
            "| `vocab.json` | `word_to_id`, `id_to_word`, special tokens, the classes with their label and key word ids |\n"
            "| `heldout_ids.npy` | int64 [200, 32]: `<bos>`, 30 words, `?` (the first 200 of the 500-sequence held-out set) |\n"
            "| `heldout_labels.npy` | int64 [200]: the target **token id** (label word) at the last position |\n"
            "| `heldout_positions.npy` | int64 [200]: index (0-based, in [1, 30]) of the key word — the ground truth |\n"
            "| `heldout_logits.npy` | float32 [200, 62]: torch's logits at the last position, for cross-checks |\n")
        run_md = (f"    build/bin/glint-import models/{name} -o /tmp/{name}.mlir\n"
                  f"    build/bin/glint-run --interpret /tmp/{name}.mlir --weights models/{name} "
                  f"--input models/{name}/heldout_ids.npy -o /tmp/{name}.logits.npy\n\n"
                  "The logits at the last position (`[:, -1, :]`) are the prediction; their argmax should equal "
                  "`heldout_labels.npy`.\n")
        task_md = TEXT_TASK_MD
    else:
        acc_md = ("| held-out set | accuracy |\n|---|---|\n"
                  f"| 500 images (seed {HELDOUT_IMG_SEED}) | {acc['heldout_500']:.3f} |\n"
                  f"| the first 200 of them (committed here) | {acc['heldout_committed_200']:.3f} |\n")
        files_md = (
            "| file | contents |\n|---|---|\n"
            "| `config.json`, `model.safetensors` | the checkpoint (float32): Vim's `.pth` tensor names, config as in `test/fixtures/vim` plus `id2label` (the class names) |\n"
            "| `preprocessor_config.json` | `image_mean` 0.5, `image_std` 1/6, `crop_pct` 1: a PNG's [0, 1] becomes the task's [−3, 3] (`glint-explain --input picture.png`) |\n"
            "| `heldout_images.npy` | float32 [200, 3, 32, 32] (the first 200 of the 500-image held-out set) |\n"
            "| `heldout_labels.npy` | int64 [200]: the shape class (0 square, 1 cross, 2 ring, 3 triangle) |\n"
            "| `heldout_masks.npy` | float32 [200, 32, 32]: 1 on the object's pixels, 0 elsewhere — the ground truth |\n"
            "| `heldout_logits.npy` | float32 [200, 4]: torch's class logits, for cross-checks |\n")
        run_md = (f"    build/bin/glint-import models/{name} -o /tmp/{name}.mlir\n"
                  f"    build/bin/glint-run --interpret /tmp/{name}.mlir --weights models/{name} "
                  f"--input models/{name}/heldout_images.npy -o /tmp/{name}.logits.npy\n")
        task_md = IMAGE_TASK_MD
    text = f"""# {name}

{spec['family']}, trained by `scripts/train/train_tiny.py` (generated file: rerunning the script rewrites it).

{task_md}
## Model

{spec['arch']}

Parameters: {info['params']:,} (float32; `model.safetensors` {info['safetensors_bytes'] / 1024:.1f} KiB).

```json
{cfg_text.strip()}
```

## Training

{info['steps']} steps of Adam (β = 0.9, 0.98), batch {spec['batch']}, peak learning rate {spec['lr']}, 50 warm-up steps
then cosine to 5 %, gradient clipping 1.0; fresh examples every step from `np.random.default_rng({spec['seed'] + 1000})`,
`torch.manual_seed({spec['seed']})` for the init; float32 on the CPU, one thread, deterministic algorithms.
Training took {info['seconds']:.0f} s on a shared 2-core machine (time varies with load; the weights do not).

    {COMMAND} --only {name}

## Held-out accuracy

{acc_md}
## Files

{files_md}
## Running it with glint

{run_md}"""
    (d / "README.md").write_text(text)


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
        if spec["kind"] == "task":
            task = spec["task"]
            model = spec["build"](spec["seed"], task.vocab_size)
            secs = train_loop(model, steps, spec["lr"], task_batch_fn(task, spec["seed"] + 1000, spec["batch"]),
                              text_loss, name=name)
            acc, data = eval_task(model, task, spec["heldout_seed"], spec["heldout_var_seed"])
            sanity = task_sanity(model, task, data)
            for row in sanity:
                print("  sanity:", row, flush=True)
            d = args.out / name
            save_model(name, spec, model, d, data)
            size = (d / "model.safetensors").stat().st_size
            info = dict(params=n_params(model), safetensors_bytes=size, steps=steps, seconds=round(secs, 1),
                        accuracy=acc, sanity=sanity)
            write_task_readme(name, spec, d, info, sanity)
            for p in d.iterdir():
                os.chmod(p, 0o644)
            print(f"{name}: {info['params']} params, {size / 1024:.1f} KiB, {secs:.0f}s, accuracy {acc}", flush=True)
            summary[name] = info
            continue
        model = spec["build"](spec["seed"])
        if spec["kind"] == "text":
            secs = train_loop(model, steps, spec["lr"], text_batch_fn(spec["seed"] + 1000, spec["batch"]),
                              text_loss, name=name)
            acc, data = eval_text(model)
        else:
            secs = train_loop(model, steps, spec["lr"], vim_batch_fn(spec["seed"] + 1000, spec["batch"]),
                              vim_loss, name=name)
            acc, data = eval_vim(model)
        d = args.out / name
        save_model(name, spec, model, d, data)
        size = (d / "model.safetensors").stat().st_size
        info = dict(params=n_params(model), safetensors_bytes=size, steps=steps, seconds=round(secs, 1),
                    accuracy=acc)
        write_model_readme(name, spec, model, d, info)
        for p in d.iterdir():
            os.chmod(p, 0o644)  # safetensors writes 0600
        print(f"{name}: {info['params']} params, {size / 1024:.1f} KiB, {secs:.0f}s, accuracy {acc}", flush=True)
        summary[name] = info
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
