#!/usr/bin/env python3
"""Synthetic tasks with planted, known-relevant inputs (dev-time only; users and CI never run this).

The bundled tiny models (models/) are trained on these tasks, so that an explanation method can be
scored by whether it points at the inputs that were planted by construction:

  * TEXT  "planted keyword": <bos> w_1 ... w_N ?   (N filler words, exactly one of them replaced by a
    key word).  The causal LM must predict, at the final "?", the label word of the key word's class.
    Ground truth: the position of the key word.
  * IMAGE "pasted object": a 3x32x32 float32 image of N(0, 1) noise with one object (filled square,
    plus/cross, ring or triangle, 8..12 px) of a random bright colour pasted at a uniformly random place.
    Label: the shape class.  Ground truth: the object's binary pixel mask (32x32).

Everything is generated from seeded numpy Generators (np.random.default_rng(seed)), so a seed fixes
the data exactly on every platform numpy supports.
"""

import numpy as np

# ----------------------------------------------------------------------------------------------
# TEXT: planted keyword
# ----------------------------------------------------------------------------------------------

BOS = "<bos>"
QUERY = "?"

# class index -> (label word, two synonymous key words)
CLASSES = [
    ("positive", ("excellent", "superb")),
    ("negative", ("terrible", "awful")),
    ("animal", ("tiger", "falcon")),
    ("colour", ("crimson", "azure")),
]

FILLER = [
    "the", "a", "of", "and", "to", "in", "was", "it",
    "we", "they", "on", "with", "that", "this", "at", "from",
    "by", "day", "time", "house", "road", "table", "window", "paper",
    "river", "city", "water", "morning", "evening", "people", "went", "saw",
    "said", "made", "took", "came", "then", "after", "before", "near",
    "under", "over", "some", "many", "old", "new", "small", "large",
]

# Token ids: 0 <bos>, 1 ?, 2..5 label words (class order), 6..13 key words (class order, 2 each),
# 14..61 filler words.  vocab_size = 62.
TOKENS = ([BOS, QUERY] + [lab for lab, _ in CLASSES] + [k for _, ks in CLASSES for k in ks] + FILLER)
assert len(set(TOKENS)) == len(TOKENS)
WORD_TO_ID = {w: i for i, w in enumerate(TOKENS)}
VOCAB_SIZE = len(TOKENS)
BOS_ID = WORD_TO_ID[BOS]
QUERY_ID = WORD_TO_ID[QUERY]
LABEL_IDS = np.array([WORD_TO_ID[lab] for lab, _ in CLASSES], dtype=np.int64)          # [4]
KEY_IDS = np.array([[WORD_TO_ID[k] for k in ks] for _, ks in CLASSES], dtype=np.int64)  # [4, 2]
FILLER_IDS = np.array([WORD_TO_ID[w] for w in FILLER], dtype=np.int64)                # [48]

TEXT_MIN_FILLER, TEXT_MAX_FILLER = 16, 40  # N, the number of content words (key word included)
TEXT_HELDOUT_LEN = 32                      # held-out sequences: <bos> + 30 content words + "?"


def vocab_json():
    """The contents of models/<text model>/vocab.json."""
    return {
        "description": ("Word-level vocabulary of the 'planted keyword' task (scripts/train/tasks.py). "
                        "A sequence is <bos>, N content words (filler words with exactly one key word), '?'; "
                        "the model predicts, at '?', the label word of the key word's class."),
        "vocab_size": VOCAB_SIZE,
        "word_to_id": WORD_TO_ID,
        "id_to_word": TOKENS,
        "special": {"bos": {"word": BOS, "id": BOS_ID}, "query": {"word": QUERY, "id": QUERY_ID}},
        "classes": [{"class": c, "label": lab, "label_id": int(LABEL_IDS[c]),
                     "keywords": list(ks), "keyword_ids": [int(i) for i in KEY_IDS[c]]}
                    for c, (lab, ks) in enumerate(CLASSES)],
        "filler": FILLER,
        "filler_ids": [int(i) for i in FILLER_IDS],
    }


def keyword_example(rng, n_content):
    """One sequence with n_content content words. Returns (ids [n_content + 2], label_id, class, pos)."""
    cls = int(rng.integers(len(CLASSES)))
    ids = np.empty(n_content + 2, dtype=np.int64)
    ids[0] = BOS_ID
    ids[1:-1] = FILLER_IDS[rng.integers(len(FILLER_IDS), size=n_content)]
    ids[-1] = QUERY_ID
    pos = 1 + int(rng.integers(n_content))  # uniformly random content position
    ids[pos] = KEY_IDS[cls, int(rng.integers(2))]
    return ids, int(LABEL_IDS[cls]), cls, pos


def keyword_batch(rng, batch, n_content=None):
    """A batch of equal-length sequences. n_content None: drawn uniformly from [16, 40] for the batch.

    Returns ids int64 [B, n_content + 2], labels int64 [B] (label token ids), classes int64 [B],
    positions int64 [B] (index of the key word in the sequence)."""
    if n_content is None:
        n_content = int(rng.integers(TEXT_MIN_FILLER, TEXT_MAX_FILLER + 1))
    ex = [keyword_example(rng, n_content) for _ in range(batch)]
    return (np.stack([e[0] for e in ex]), np.array([e[1] for e in ex], dtype=np.int64),
            np.array([e[2] for e in ex], dtype=np.int64), np.array([e[3] for e in ex], dtype=np.int64))


def keyword_heldout(seed, n, length=TEXT_HELDOUT_LEN):
    """The fixed-length held-out set: n sequences of `length` tokens (<bos> + length-2 words + '?')."""
    return keyword_batch(np.random.default_rng(seed), n, n_content=length - 2)


def keyword_heldout_variable(seed, n):
    """Variable-length held-out sequences (lengths as in training), as a list of (ids, label, cls, pos)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        n_content = int(rng.integers(TEXT_MIN_FILLER, TEXT_MAX_FILLER + 1))
        out.append(keyword_example(rng, n_content))
    return out


def decode(ids):
    return " ".join(TOKENS[int(i)] for i in ids)


# ----------------------------------------------------------------------------------------------
# IMAGE: pasted object
# ----------------------------------------------------------------------------------------------

SHAPES = ["square", "cross", "ring", "triangle"]
IMG_SIZE = 32
OBJ_MIN, OBJ_MAX = 8, 12
NOISE_STD = 1.0


def shape_mask(shape, s):
    """Binary [s, s] mask of a shape of size s (8..12)."""
    yy, xx = np.mgrid[0:s, 0:s]
    if shape == "square":
        m = np.ones((s, s), dtype=bool)
    elif shape == "cross":
        t = max(2, s // 3)
        lo = (s - t) // 2
        m = ((yy >= lo) & (yy < lo + t)) | ((xx >= lo) & (xx < lo + t))
    elif shape == "ring":
        c = (s - 1) / 2.0
        r = np.sqrt((yy - c) ** 2 + (xx - c) ** 2)
        m = (r <= s / 2.0) & (r >= s / 2.0 - 2.0)
    elif shape == "triangle":
        # apex at the top centre, base the full bottom row
        c = (s - 1) / 2.0
        half = (yy + 1) / s * (s / 2.0)
        m = np.abs(xx - c) <= half
    else:
        raise ValueError(shape)
    return m


def shapes_example(rng):
    """Returns (image float32 [3, 32, 32], class, mask float32 [32, 32] of 0/1)."""
    img = rng.standard_normal((3, IMG_SIZE, IMG_SIZE)).astype(np.float32) * NOISE_STD
    cls = int(rng.integers(len(SHAPES)))
    s = int(rng.integers(OBJ_MIN, OBJ_MAX + 1))
    y0 = int(rng.integers(IMG_SIZE - s + 1))
    x0 = int(rng.integers(IMG_SIZE - s + 1))
    # bright colour: every channel in [1.5, 3], one channel pushed to 3
    colour = rng.uniform(1.5, 3.0, size=3)
    colour[int(rng.integers(3))] = 3.0
    m = shape_mask(SHAPES[cls], s)
    mask = np.zeros((IMG_SIZE, IMG_SIZE), dtype=np.float32)
    mask[y0:y0 + s, x0:x0 + s] = m
    sel = mask > 0
    for ch in range(3):
        img[ch][sel] = colour[ch]
    return img, cls, mask


def shapes_batch(rng, batch):
    """images float32 [B, 3, 32, 32], classes int64 [B], masks float32 [B, 32, 32]."""
    ex = [shapes_example(rng) for _ in range(batch)]
    return (np.stack([e[0] for e in ex]), np.array([e[1] for e in ex], dtype=np.int64),
            np.stack([e[2] for e in ex]))


def shapes_heldout(seed, n):
    return shapes_batch(np.random.default_rng(seed), n)


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    ids, lab, cls, pos = keyword_example(rng, 20)
    print(decode(ids), "->", TOKENS[lab], "(key at", pos, ")")
    for sh in SHAPES:
        for s in (8, 12):
            print(sh, s)
            print("\n".join("".join("#" if v else "." for v in row) for row in shape_mask(sh, s)))
