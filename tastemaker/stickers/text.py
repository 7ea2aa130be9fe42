"""Message text → hashed sub-word features, the same at training and serving time.

Normalised (Unicode NFKC, lower case, runs of whitespace folded), then character n-grams of
length 2 to 4 over " text " (robust to script, spelling and inflection: "happy bday", "हैप्पी")
plus whole words (first), each hashed (CRC-32) into `BUCKETS` ids; 0 is padding.
"""

from __future__ import annotations

import unicodedata
import zlib

import numpy as np

BUCKETS = 1 << 18
NGRAMS = (2, 3, 4)
MAX_FEATURES = 96
MAX_MESSAGE_CHARS = 512


def normalise(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def features(text: str) -> list[int]:
    """Hashed ids in [1, BUCKETS) of the text's n-grams and words (at most MAX_FEATURES)."""
    clean = normalise(text)[:MAX_MESSAGE_CHARS]
    if not clean:
        return []
    padded = f" {clean} "
    # whole words first, so that a long text keeps all of them when the n-grams are cut
    grams = [f"w:{word}" for word in clean.split()]
    grams += [padded[i : i + n] for n in NGRAMS for i in range(len(padded) - n + 1)]
    ids = [1 + zlib.crc32(g.encode("utf-8")) % (BUCKETS - 1) for g in grams]
    return ids[:MAX_FEATURES]


def batch(texts: list[str], width: int = MAX_FEATURES) -> np.ndarray:
    """Ids padded with 0 into (len(texts), width) int32."""
    out = np.zeros((len(texts), width), dtype=np.int32)
    for i, text in enumerate(texts):
        ids = features(text)[:width]
        out[i, : len(ids)] = ids
    return out
