"""The sticker catalog the tests train on (`make stickers-catalog` builds it) and the words that
choose the training subset."""

from __future__ import annotations

from pathlib import Path

CATALOG = Path(__file__).resolve().parents[2] / "data" / "stickers" / "cldr-catalog.jsonl"
WORDS = ("heart", "birthday", "cake", "party", "gift", "balloon", "cat", "dog", "fire", "star", "flower",
         "pizza", "rain", "sun", "moon", "tear", "laugh", "kiss", "thumbs", "music")  # fmt: skip

#: chat messages for a model that learned nothing (`random_bundle`): they only need features
MESSAGES = ["happy birthday yaar", "i love you so much", "pizza party tonight", "so sad today", "good night",
            "जन्मदिन मुबारक", "dil se", "fire 🔥", "cat and dog", "thank you bhai", "rain rain", "star"]  # fmt: skip


def random_bundle(directory: Path, texts: list[str], dim: int = 16, seed: int = 7) -> Path:
    """An untrained sticker bundle (random weights, no TensorFlow) over 300 real catalog stickers,
    with a random chat head over the features of `texts`; returns its
    directory. For what does not depend on training: export, parity, the wire, the loop."""
    import numpy as np

    from tastemaker.stickers.bundle import save_bundle
    from tastemaker.stickers.catalog import read_catalog, write_catalog
    from tastemaker.stickers.encoder import StickerEncoder, sticker_text
    from tastemaker.stickers.head import StickerHead, head_features
    from tastemaker.stickers.text import BUCKETS
    from tastemaker.stickers.typeahead import prefix_table

    rng = np.random.default_rng(seed)
    stickers = read_catalog(CATALOG)[:300]
    write_catalog(stickers, directory / "catalog.jsonl")
    encoder = StickerEncoder(
        version="random-stickers",
        text_table=rng.normal(0, 1, (BUCKETS, dim)).astype(np.float32),
        text_weight=rng.normal(0, 1, BUCKETS).astype(np.float32),
        message_w=rng.normal(0, 0.3, (dim, dim)).astype(np.float32),
        message_b=np.zeros(dim, np.float32),
        sticker_table=rng.normal(0, 0.1, (len(stickers) + 1, dim)).astype(np.float32),
        sticker_w=rng.normal(0, 0.3, (dim, dim)).astype(np.float32),
        sticker_b=np.zeros(dim, np.float32),
        trained_ids=tuple(s.sticker_id for s in stickers),
    )
    learned = texts + [p for s in stickers for p in sticker_text(s)][:3000]
    rows = np.unique(np.concatenate([head_features(t) for t in texts]))
    labels = tuple(s.sticker_id for s in stickers[:40])
    head = StickerHead(
        rows=rows,
        weights=rng.normal(0, 1, (len(rows), len(labels))).astype(np.float16),
        bias=np.zeros(len(labels), np.float32),
        labels=labels,
        prior=np.full(len(labels), 1 / len(labels), np.float32),
    )
    model = directory / "model"
    save_bundle(model, encoder, stickers, directory / "catalog.jsonl", head=head, prefixes=prefix_table(learned))
    return model
