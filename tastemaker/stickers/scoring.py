"""What a bundle thinks of a message: candidate stickers and each one's model score, the same for
serving (`services/stickers.py`), offline evaluation (`stickers evaluate`) and off-policy scoring.

Without a head the score is the encoder's cosine similarity. With a head (a bundle trained on
pairs) it is the blend's log-probability (`head.blend`), and the head's own most likely stickers
join the index's candidates: a sticker people send after "gn" may be far from "gn" in the
encoder's space.
"""

from __future__ import annotations

import numpy as np

from tastemaker.stickers.bundle import Bundle
from tastemaker.stickers.head import blend

#: how many of the head's most likely stickers join the index's candidates
HEAD_CANDIDATES = 10


def candidates(
    bundle: Bundle, text: str, vector: np.ndarray, count: int, language: str | None
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """(sticker ids, cosine similarity, model score) of the message's candidates: the index's best
    `count` in `language`, and the head's best `HEAD_CANDIDATES` there."""
    index = bundle.index.index
    hits = index.search(vector, count, language=language)
    ids = [m.sticker_id for m, _ in hits]
    similarity = [s for _, s in hits]
    head = bundle.head
    if head is None or bundle.head_weight <= 0:
        values = np.array(similarity, dtype=np.float64)
        return tuple(ids), values, values
    likely = np.argsort(-head.logits([text])[0], kind="stable")[:HEAD_CANDIDATES]
    seen = set(ids)
    for j in likely:
        sticker_id = head.labels[j]
        row = index.position(sticker_id)
        if sticker_id in seen or row is None:
            continue
        if language is not None and language not in index.meta[row].languages:
            continue
        ids.append(sticker_id)
        similarity.append(float(index.vectors[row] @ vector))
    cosine = np.array(similarity, dtype=np.float64)
    return tuple(ids), cosine, blend(cosine[None, :], tuple(ids), head, [text], bundle.head_weight)[0]


def catalog_scores(bundle: Bundle, texts: list[str]) -> tuple[tuple[str, ...], np.ndarray]:
    """(every indexed sticker id, (len(texts), that many) model scores): the whole catalog ranked,
    as an offline evaluation needs."""
    index = bundle.index.index
    ids = tuple(m.sticker_id for m in index.meta)
    similarity = bundle.encoder.messages(texts).astype(np.float64) @ index.vectors.T.astype(np.float64)
    if bundle.head is None or bundle.head_weight <= 0:
        return ids, similarity
    return ids, blend(similarity, ids, bundle.head, texts, bundle.head_weight)
