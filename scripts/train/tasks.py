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
# TEXT: tasks with several relevant tokens of different roles
# ----------------------------------------------------------------------------------------------
#
# The planted keyword task has one relevant token per example, which makes perturbation AUCs
# saturate.  The tasks below plant several tokens with different roles; each example comes with its
# relevance mask (1 on every token whose removal or change can change the label, by construction).
# Each task has its own word vocabulary (ids 0 <bos>, 1 ?, then the label words, the task's special
# words, the 48 filler words of FILLER).


class TextTask:
    """A word-level task: <bos>, N content words, "?"; the causal LM predicts a label word at "?".

    Subclasses define `name`, `labels` (label words), `words` (the task's other non-filler words),
    `min_content`, `max_content` (N in training), `heldout_len`, `summary`, and
    `_plant(rng, ids, n_content)` which writes the planted words into ids[1:n_content + 1] (already
    filled with filler) and returns (label index, relevant positions, primary position, roles) with
    roles a dict role name -> position or None."""

    name = ""
    labels = []
    words = []
    min_content = TEXT_MIN_FILLER
    max_content = TEXT_MAX_FILLER
    heldout_len = TEXT_HELDOUT_LEN
    summary = ""

    def __init__(self):
        self.tokens = [BOS, QUERY] + list(self.labels) + list(self.words) + FILLER
        assert len(set(self.tokens)) == len(self.tokens), self.name
        self.word_to_id = {w: i for i, w in enumerate(self.tokens)}
        self.vocab_size = len(self.tokens)
        self.label_ids = np.array([self.word_to_id[w] for w in self.labels], dtype=np.int64)
        self.filler_ids = np.array([self.word_to_id[w] for w in FILLER], dtype=np.int64)

    def wid(self, word):
        return self.word_to_id[word]

    def example(self, rng, n_content):
        """One sequence. Returns (ids int64 [L], label token id, relevant float32 [L] (0/1),
        primary position, roles dict) with L = n_content + 2."""
        ids = np.empty(n_content + 2, dtype=np.int64)
        ids[0] = BOS_ID
        ids[1:-1] = self.filler_ids[rng.integers(len(self.filler_ids), size=n_content)]
        ids[-1] = QUERY_ID
        label, relevant, primary, roles = self._plant(rng, ids, n_content)
        mask = np.zeros(n_content + 2, dtype=np.float32)
        mask[list(relevant)] = 1.0
        assert mask[primary] == 1.0 and mask[0] == 0.0 and mask[-1] == 0.0
        return ids, int(self.label_ids[label]), mask, int(primary), roles

    def batch(self, rng, batch, n_content=None):
        """Equal-length batch (n_content None: drawn uniformly from [min_content, max_content]).
        Returns ids int64 [B, L], labels int64 [B] (token ids), relevant float32 [B, L],
        positions int64 [B] (primary relevant position), roles (list of dicts)."""
        if n_content is None:
            n_content = int(rng.integers(self.min_content, self.max_content + 1))
        ex = [self.example(rng, n_content) for _ in range(batch)]
        return (np.stack([e[0] for e in ex]), np.array([e[1] for e in ex], dtype=np.int64),
                np.stack([e[2] for e in ex]), np.array([e[3] for e in ex], dtype=np.int64),
                [e[4] for e in ex])

    def heldout(self, seed, n):
        """The fixed-length held-out set: n sequences of heldout_len tokens."""
        return self.batch(np.random.default_rng(seed), n, n_content=self.heldout_len - 2)

    def heldout_variable(self, seed, n):
        """Held-out sequences with the training lengths: a list of example() tuples."""
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(n):
            n_content = int(rng.integers(self.min_content, self.max_content + 1))
            out.append(self.example(rng, n_content))
        return out

    def decode(self, ids):
        return " ".join(self.tokens[int(i)] for i in ids)

    def vocab_extra(self):
        return {}

    def vocab_json(self):
        v = {
            "description": f"Word-level vocabulary of the '{self.name}' task (scripts/train/tasks.py). {self.summary}",
            "vocab_size": self.vocab_size,
            "word_to_id": self.word_to_id,
            "id_to_word": self.tokens,
            "special": {"bos": {"word": BOS, "id": BOS_ID}, "query": {"word": QUERY, "id": QUERY_ID}},
            "labels": [{"label": w, "label_id": int(i)} for w, i in zip(self.labels, self.label_ids)],
        }
        v.update(self.vocab_extra())
        v["filler"] = FILLER
        v["filler_ids"] = [int(i) for i in self.filler_ids]
        return v


class NegationTask(TextTask):
    """A class word, optionally negated by a "not" 1-3 words before it (flipping the label to the
    opposite class of its pair), and sometimes a decoy "not" 1-3 words after it (no effect).

    Relevant: the class word and, when present, the negating "not"; the decoy is irrelevant."""

    name = "negation"
    # label index -> (label word, two key words); pairs (0, 1) and (2, 3) are opposites: label ^ 1
    CLASSES = [
        ("positive", ("excellent", "superb")),
        ("negative", ("terrible", "awful")),
        ("yes", ("correct", "true")),
        ("no", ("wrong", "false")),
    ]
    NOT = "not"
    P_NEGATED = 0.5
    P_DECOY = 0.3
    MAX_GAP = 3  # a "not" is 1..3 words before (negation) or after (decoy) the class word
    labels = [lab for lab, _ in CLASSES]
    words = [NOT] + [k for _, ks in CLASSES for k in ks]
    summary = ("A sequence is <bos>, N content words, '?': filler words with one class word; a 'not' 1-3 "
               "words before the class word flips its label to the opposite one (positive <-> negative, "
               "yes <-> no); a 'not' after it does nothing. The model predicts the label word at '?'.")

    def __init__(self):
        super().__init__()
        self.key_ids = np.array([[self.wid(k) for k in ks] for _, ks in self.CLASSES], dtype=np.int64)
        self.not_id = self.wid(self.NOT)

    def _plant(self, rng, ids, n_content):
        g = self.MAX_GAP
        cls = int(rng.integers(len(self.CLASSES)))
        syn = int(rng.integers(2))
        pos = int(rng.integers(1 + g, n_content - g + 1))  # room for a "not" on either side
        negated = bool(rng.random() < self.P_NEGATED)
        neg_gap = int(rng.integers(1, g + 1))
        decoy = bool(rng.random() < self.P_DECOY)
        decoy_gap = int(rng.integers(1, g + 1))
        ids[pos] = self.key_ids[cls, syn]
        relevant = [pos]
        neg_pos = decoy_pos = None
        if negated:
            neg_pos = pos - neg_gap
            ids[neg_pos] = self.not_id
            relevant.append(neg_pos)
        if decoy:
            decoy_pos = pos + decoy_gap
            ids[decoy_pos] = self.not_id
        label = cls ^ 1 if negated else cls
        return label, relevant, pos, {"class_word": pos, "negation": neg_pos, "decoy_not": decoy_pos,
                                      "class": cls, "negated": negated}

    def vocab_extra(self):
        return {"negation": {"word": self.NOT, "id": self.not_id},
                "classes": [{"class": c, "label": lab, "label_id": int(self.label_ids[c]),
                             "negated_label": self.CLASSES[c ^ 1][0],
                             "keywords": list(ks), "keyword_ids": [int(i) for i in self.key_ids[c]]}
                            for c, (lab, ks) in enumerate(self.CLASSES)]}


TWOKEYS_COLOURS = [("red", ("crimson", "scarlet")), ("blue", ("azure", "cobalt"))]
TWOKEYS_SHAPES = [("circle", ("circle", "disc")), ("square", ("square", "box"))]


class TwoKeysTask(TextTask):
    """A colour word and a shape word at two distinct random positions (either order); the label is
    their combination (2 colours x 2 shapes = 4 labels). Relevant: both key words."""

    name = "twokeys"
    COLOURS = TWOKEYS_COLOURS
    SHAPES = TWOKEYS_SHAPES
    labels = [f"{c}-{s}" for c, _ in TWOKEYS_COLOURS for s, _ in TWOKEYS_SHAPES]  # 2 * colour + shape
    words = [k for _, ks in TWOKEYS_COLOURS for k in ks] + [k for _, ks in TWOKEYS_SHAPES for k in ks]
    summary = ("A sequence is <bos>, N content words, '?': filler words with one colour word and one shape "
               "word at two random positions; the model predicts the combined label (colour-shape) at '?'.")

    def __init__(self):
        super().__init__()
        self.colour_ids = np.array([[self.wid(k) for k in ks] for _, ks in self.COLOURS], dtype=np.int64)
        self.shape_ids = np.array([[self.wid(k) for k in ks] for _, ks in self.SHAPES], dtype=np.int64)

    def _plant(self, rng, ids, n_content):
        colour = int(rng.integers(len(self.COLOURS)))
        shape = int(rng.integers(len(self.SHAPES)))
        cpos, spos = (1 + rng.choice(n_content, size=2, replace=False)).tolist()
        ids[cpos] = self.colour_ids[colour, int(rng.integers(2))]
        ids[spos] = self.shape_ids[shape, int(rng.integers(2))]
        return 2 * colour + shape, [cpos, spos], cpos, {"colour_word": cpos, "shape_word": spos,
                                                        "colour": colour, "shape": shape}

    def vocab_extra(self):
        return {"colours": [{"colour": c, "keywords": list(ks), "keyword_ids": [int(i) for i in self.colour_ids[k]]}
                            for k, (c, ks) in enumerate(self.COLOURS)],
                "shapes": [{"shape": s, "keywords": list(ks), "keyword_ids": [int(i) for i in self.shape_ids[k]]}
                           for k, (s, ks) in enumerate(self.SHAPES)],
                "label_rule": "label_id = labels[2 * colour + shape]"}


class LongDistanceTask(TextTask):
    """The planted keyword's classes, but the key word sits among the first 8 content words and long
    filler follows (N in [54, 78] in training, held-out length 64). Relevant: the key word.

    No bundled model is trained on it yet (a tiny Mamba-1 needs more than 600 steps of ~3 s per 10 on
    these lengths on the shared 2-core machine)."""

    name = "longdist"
    CLASSES = CLASSES
    KEY_WINDOW = 8
    labels = [lab for lab, _ in CLASSES]
    words = [k for _, ks in CLASSES for k in ks]
    min_content, max_content = 54, 78
    heldout_len = 64
    summary = ("A sequence is <bos>, N content words, '?': filler words with one key word among the first 8; "
               "the model predicts the key word's class label at '?', 47 or more words later.")

    def __init__(self):
        super().__init__()
        self.key_ids = np.array([[self.wid(k) for k in ks] for _, ks in self.CLASSES], dtype=np.int64)

    def _plant(self, rng, ids, n_content):
        cls = int(rng.integers(len(self.CLASSES)))
        pos = 1 + int(rng.integers(self.KEY_WINDOW))
        ids[pos] = self.key_ids[cls, int(rng.integers(2))]
        return cls, [pos], pos, {"key_word": pos, "class": cls}

    def vocab_extra(self):
        return {"classes": [{"class": c, "label": lab, "label_id": int(self.label_ids[c]),
                             "keywords": list(ks), "keyword_ids": [int(i) for i in self.key_ids[c]]}
                            for c, (lab, ks) in enumerate(self.CLASSES)]}


NEGATION = NegationTask()
TWOKEYS = TwoKeysTask()
LONGDIST = LongDistanceTask()
TEXT_TASKS = {t.name: t for t in (NEGATION, TWOKEYS, LONGDIST)}


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
    for task in TEXT_TASKS.values():
        for _ in range(3):
            ids, lab, rel, pos, roles = task.example(rng, 20)
            print(task.name + ":", task.decode(ids), "->", task.tokens[lab], "relevant",
                  np.flatnonzero(rel).tolist(), roles)
    for sh in SHAPES:
        for s in (8, 12):
            print(sh, s)
            print("\n".join("".join("#" if v else "." for v in row) for row in shape_mask(sh, s)))
