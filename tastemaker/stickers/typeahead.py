"""Typeahead: suggestions for the text typed so far, whose last word may be unfinished ("happy
birth"). As Hike shipped a trie of phrase prefixes beside its model, a bundle carries a prefix
table — each prefix of the commonest words of the text the model learned from → the commonest word
it begins — and `complete` swaps the unfinished word for that word before the message is encoded.
The server (`SuggestStickersRequest.partial`) and the device runtime use the same table and code.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from tastemaker.stickers.text import normalise

#: the commonest words whose prefixes the table holds, and the shortest prefix completed
PREFIX_WORDS = 4000
MIN_PREFIX = 2


def words(message: str) -> list[str]:
    return normalise(message).split()


def prefix_table(texts: Iterable[str], most: int = PREFIX_WORDS) -> dict[str, str]:
    """Each prefix (≥ MIN_PREFIX characters) of the `most` commonest words of `texts` → the
    commonest word it begins (ties: the shorter, then the earlier seen); a prefix that is itself
    the commonest such word is left out (it needs no completing)."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(words(text))
    best: dict[str, tuple[int, int]] = {}
    chosen: dict[str, str] = {}
    for word, n in counts.most_common(most):
        for end in range(MIN_PREFIX, len(word) + 1):
            prefix, key = word[:end], (n, -len(word))
            if prefix not in best or key > best[prefix]:
                best[prefix], chosen[prefix] = key, word
    return {prefix: word for prefix, word in sorted(chosen.items()) if word != prefix}


def complete(message: str, prefixes: Mapping[str, str]) -> str:
    """`message` with its last, unfinished word completed from `prefixes` (unchanged when the
    message ends in a space, the word is shorter than MIN_PREFIX, or no known word begins with it)."""
    if not message or message[-1].isspace():
        return message
    parts = words(message)
    if not parts or len(parts[-1]) < MIN_PREFIX:
        return message
    whole = prefixes.get(parts[-1])
    return " ".join(parts[:-1] + [whole]) if whole else message
