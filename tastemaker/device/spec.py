"""What a device must do to text exactly as the server does, written into every device bundle
(`tokeniser_spec`) so that a port to another language can check itself, and checked by this
runtime on load (`check_spec`): a bundle made for another tokeniser is refused, not misread.

Typeahead: the text typed so far may end in an unfinished word ("happy birth"); `complete` swaps
it for the commonest word of the model's training text that begins with it (the bundle's prefix
table, as Hike shipped a trie of phrase prefixes beside its model), and leaves it when none does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tastemaker.stickers import head, text

#: typeahead: the commonest words whose prefixes the table holds, and the shortest prefix completed
PREFIX_WORDS = 4000
MIN_PREFIX = 2


def tokeniser_spec() -> dict[str, Any]:
    """The encoder's and the head's text → feature rules, as data."""
    return {
        "normalise": "unicode NFKC, lower case, whitespace runs folded to one space, trimmed",
        "max_chars": text.MAX_MESSAGE_CHARS,
        "encoder": {
            "hash": "1 + crc32(utf-8) mod (buckets - 1)",
            "buckets": text.BUCKETS,
            "words": "'w:' + each word, first",
            "char_ngrams": list(text.NGRAMS),
            "padded": "' ' + text + ' '",
            "max_features": text.MAX_FEATURES,
        },
        "head": {
            "hash": "crc32(utf-8) mod buckets, distinct, sorted",
            "buckets": head.HEAD_BUCKETS,
            "words": "'w:' + each word",
            "word_bigrams": "'b:' + a + ' ' + b",
            "char_ngrams": list(head.CHAR_NGRAMS),
            "padded": "' ' + text + ' '",
        },
        "typeahead": {"min_prefix": MIN_PREFIX},
    }


def check_spec(found: Mapping[str, Any] | None) -> None:
    """ValueError unless `found` (a bundle's) is the spec this runtime implements."""
    if found != tokeniser_spec():
        raise ValueError("the bundle's tokeniser spec is not the one this runtime implements (re-export it)")


def words(message: str) -> list[str]:
    return text.normalise(message).split()


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
