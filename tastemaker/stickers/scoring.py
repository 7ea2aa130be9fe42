"""What a bundle thinks of a message: candidate stickers and each one's model score, the same for
serving (`services/stickers.py`), offline evaluation (`stickers evaluate`) and off-policy scoring.

Without a head the score is the encoder's cosine similarity. With a head (a bundle trained on
pairs) it is the blend's log-probability (`head.blend`), and the head's own most likely stickers
join the index's candidates: a sticker people send after "gn" may be far from "gn" in the
encoder's space.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from tastemaker.stickers.head import StickerHead, blend, softmax
from tastemaker.stickers.index import IndexHolder

#: how many stickers the index proposes per message (the re-rank and the exploration pick among them)
CANDIDATES = 50
#: how many of the head's most likely stickers join the index's candidates
HEAD_CANDIDATES = 10
#: the previous message's share of the mixture when one is given (`candidates`): an equal say
PREVIOUS_WEIGHT = 0.5


class MessageEncoder(Protocol):
    @property
    def version(self) -> str: ...

    def messages(self, texts: list[str]) -> np.ndarray:
        """(len(texts), e) unit vectors; the zero vector for a text with no features."""
        ...


class Scorer(Protocol):
    """What scoring reads of a model: the server's `Bundle` and the device runtime's model alike."""

    @property
    def encoder(self) -> MessageEncoder: ...

    @property
    def index(self) -> IndexHolder: ...

    @property
    def head(self) -> StickerHead | None: ...

    @property
    def head_weight(self) -> float: ...


def candidates(
    bundle: Scorer, text: str, vector: np.ndarray, count: int, language: str | None, previous: str = ""
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """(sticker ids, cosine similarity to `text`, model score) of the message's candidates: the
    index's best `count` in `language`, and the head's best `HEAD_CANDIDATES` there.

    `previous`, the message being answered, is context as in Hike's typeahead: its own head
    candidates join, and the score mixes the two messages' distributions,
    p = (1 − PREVIOUS_WEIGHT) · p(s | text) + PREVIOUS_WEIGHT · p(s | previous) (without a head:
    the same mixture of the two cosine similarities)."""
    index = bundle.index.index
    hits = index.search(vector, count, language=language)
    ids = [m.sticker_id for m, _ in hits]
    head = bundle.head if bundle.head_weight > 0 else None
    contexts = [text] + ([previous] if previous.strip() else [])
    probabilities = None
    if head is not None:
        logits = head.logits(contexts)
        probabilities = softmax(logits)
        seen = set(ids)
        for j in np.argsort(-logits, axis=1, kind="stable")[:, :HEAD_CANDIDATES].ravel():
            row = index.position(head.labels[j])
            if head.labels[j] in seen or row is None:
                continue
            if language is not None and language not in index.meta[row].languages:
                continue
            seen.add(head.labels[j])
            ids.append(head.labels[j])
    if not ids:
        return (), np.zeros(0), np.zeros(0)
    rows = np.array([index.position(i) for i in ids])
    similarity, score = model_scores(bundle, tuple(ids), index.vectors[rows], text, previous, vector, probabilities)
    return tuple(ids), similarity, score


def model_scores(
    bundle: Scorer,
    ids: tuple[str, ...],
    sticker_vectors: np.ndarray,
    text: str,
    previous: str = "",
    vector: np.ndarray | None = None,
    head_probabilities: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(cosine similarity to `text`, model score) of the stickers `ids` whose embeddings are
    `sticker_vectors` (C, e); `vector`, `head_probabilities`: the text's embedding and the head's
    distributions for [text, previous] when already computed. The score of
    `candidates`, for a given list of stickers (an off-policy evaluation's logged candidates)."""
    texts = [text] + ([previous] if previous.strip() else [])
    if vector is None:
        queries = bundle.encoder.messages(texts)
    else:  # the message is encoded already: only the previous one is left
        queries = (
            np.vstack([vector[None, :], bundle.encoder.messages(texts[1:])]) if len(texts) > 1 else vector[None, :]
        )
    similarity = (np.asarray(sticker_vectors, dtype=np.float64) @ queries.T.astype(np.float64)).T  # (texts, C)
    head = bundle.head if bundle.head_weight > 0 else None
    if head is None:
        mixed = (
            similarity[0]
            if len(texts) == 1
            else (1 - PREVIOUS_WEIGHT) * similarity[0] + PREVIOUS_WEIGHT * similarity[1]
        )
        return similarity[0], mixed
    log_p = blend(similarity, ids, head, texts, bundle.head_weight, head_probabilities)
    if len(texts) == 1:
        return similarity[0], log_p[0]
    return similarity[0], np.logaddexp(np.log(1 - PREVIOUS_WEIGHT) + log_p[0], np.log(PREVIOUS_WEIGHT) + log_p[1])


def catalog_scores(bundle: Scorer, texts: list[str]) -> tuple[tuple[str, ...], np.ndarray]:
    """(every indexed sticker id, (len(texts), that many) model scores): the whole catalog ranked,
    as an offline evaluation needs."""
    index = bundle.index.index
    ids = tuple(m.sticker_id for m in index.meta)
    similarity = bundle.encoder.messages(texts).astype(np.float64) @ index.vectors.T.astype(np.float64)
    if bundle.head is None or bundle.head_weight <= 0:
        return ids, similarity
    return ids, blend(similarity, ids, bundle.head, texts, bundle.head_weight)
