"""Near copies between an evaluation set and training inputs: the same normalised text, or character
4-gram Jaccard similarity ≥ a threshold (over " text ", the padded normalised text)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from tastemaker.stickers.text import normalise


def grams(text: str, n: int = 4) -> frozenset[str]:
    padded = f" {normalise(text)} "
    return frozenset(padded[i : i + n] for i in range(max(1, len(padded) - n + 1)))


def near_copies(
    evaluation: Sequence[str], training: Iterable[str], threshold: float = 0.8
) -> list[tuple[str, str, float]]:
    """(evaluation text, training text, Jaccard) for every evaluation text with a training text at
    or above `threshold` (the most similar one), through an inverted index of the training grams."""
    texts = list(dict.fromkeys(normalise(t) for t in training if t.strip()))
    sets = [grams(t) for t in texts]
    postings: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(sets):
        for g in s:
            postings[g].append(i)
    found = []
    for text in evaluation:
        mine = grams(text)
        shared = Counter(i for g in mine for i in postings.get(g, ()))
        best = max(((c / (len(mine) + len(sets[i]) - c), i) for i, c in shared.items()), default=(0.0, -1))
        if best[0] >= threshold:
            found.append((text, texts[best[1]], best[0]))
    return found
