"""A progress bar for long evaluation loops, on stderr, only where a person is watching (a TTY)
and only for loops long enough to need one. No dependency; redraws at most twice a second."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Sequence
from typing import IO, TypeVar

T = TypeVar("T")

#: loops shorter than this finish before a bar is worth drawing
MIN_ITEMS = 2_000


def progress(items: Sequence[T], label: str, stream: IO[str] | None = None, min_items: int = MIN_ITEMS) -> Iterator[T]:
    """Yield `items`, drawing `label  42% 4,200/10,000  1.3 s` on `stream` (default: stderr when it
    is a terminal and TASTEMAKER_PROGRESS is not 0)."""
    if stream is None:
        wanted = os.environ.get("TASTEMAKER_PROGRESS", "auto")
        stream = sys.stderr if wanted == "1" or (wanted == "auto" and sys.stderr.isatty()) else None
    total = len(items)
    if stream is None or total < min_items:
        yield from items
        return
    start = last = time.monotonic()
    for done, item in enumerate(items, 1):
        yield item
        now = time.monotonic()
        if now - last >= 0.5 or done == total:
            last = now
            stream.write(f"\r{label}  {done / total:4.0%} {done:,}/{total:,}  {now - start:.1f} s")
            stream.flush()
    stream.write("\n")
    stream.flush()
