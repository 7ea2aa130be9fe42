"""What a device must do to text exactly as the server does, written into every device bundle
(`tokeniser_spec`) so that a port to another language can check itself, and checked by this
runtime on load (`check_spec`): a bundle made for another tokeniser is refused, not misread.

Typeahead (`stickers/typeahead.py`) completes the unfinished last word from the bundle's prefix table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tastemaker.stickers import head, text, typeahead


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
        "typeahead": {"min_prefix": typeahead.MIN_PREFIX},
    }


def check_spec(found: Mapping[str, Any] | None) -> None:
    """ValueError unless `found` (a bundle's) is the spec this runtime implements."""
    if found != tokeniser_spec():
        raise ValueError("the bundle's tokeniser spec is not the one this runtime implements (re-export it)")
