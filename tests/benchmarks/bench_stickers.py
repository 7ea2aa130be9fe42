"""Message-to-sticker retrieval, measured:

1. Quality per language on queries never trained on — the CLDR short names, and for the Indic
   languages their romanised forms — recall@1, recall@10 and MRR of the learned encoder vs BM25
   (`bm25s`) over the same phrases the encoder trained on (keywords, native and romanised).
2. ANN on `--ann-n` synthetic clustered 64-d unit vectors (default 1,000,000): recall@10 against
   exact search and queries/s for ScaNN, FAISS HNSW, FAISS IVF-PQ, hnswlib and brute force, same
   machine, same run, one thread each.
3. End to end in-process (encode + ANN + re-rank + decision log) over `--catalog-n` stickers
   (default 100,000: the real catalog plus synthetic stickers made of its phrases): p50/p99.

    make bench   # or: python -m tests.benchmarks.bench_stickers --model DIR --ann-n 200000
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from tastemaker.stickers.bundle import build_index, load_bundle
from tastemaker.stickers.catalog import Phrases, Sticker, read_catalog
from tastemaker.stickers.encoder import StickerEncoder
from tastemaker.stickers.index import IndexHolder
from tastemaker.stickers.suggest import StickerService
from tastemaker.stickers.text import normalise

ROOT = Path(__file__).resolve().parents[2]


def _queries(stickers: list[Sticker]) -> dict[str, list[tuple[str, int]]]:
    out: dict[str, list[tuple[str, int]]] = {}
    for i, sticker in enumerate(stickers):
        for lang, phrases in sticker.phrases.items():
            out.setdefault(lang, []).append((phrases.name, i))
        for lang, phrases in sticker.romanised.items():
            out.setdefault(f"{lang}-latn", []).append((phrases.name, i))
    return out


def _metrics(ranks: np.ndarray) -> tuple[float, float, float]:
    return float((ranks < 1).mean()), float((ranks < 10).mean()), float((1.0 / (ranks + 1)).mean())


def quality(encoder: StickerEncoder, stickers: list[Sticker]) -> None:
    import bm25s  # type: ignore[import-not-found]

    documents = [
        [token for block in (s.phrases, s.romanised) for p in block.values() for k in p.keywords
         for token in normalise(k).split()]
        for s in stickers
    ]  # fmt: skip
    bm25 = bm25s.BM25()
    bm25.index(documents, show_progress=False)
    vectors = encoder.stickers(stickers)
    print(f"\nQuality on held-out queries (CLDR short names; -latn: romanised), {len(stickers)} stickers")
    print(f"{'language':<10}{'queries':>8}  {'encoder R@1 R@10 MRR':<24}{'BM25 R@1 R@10 MRR':<22}{'wins':>5}")
    for lang, items in sorted(_queries(stickers).items()):
        texts, truth = [t for t, _ in items], np.array([i for _, i in items])
        scores = encoder.messages(texts) @ vectors.T
        ranks = (scores > scores[np.arange(len(truth)), truth][:, None]).sum(axis=1)
        tokens = [normalise(t).split() or ["∅"] for t in texts]
        found, _ = bm25.retrieve(tokens, k=min(100, len(stickers)), show_progress=False)
        bm25_ranks = np.array([list(row).index(t) if t in row else 10_000 for row, t in zip(found, truth, strict=True)])
        e, b = _metrics(ranks), _metrics(bm25_ranks)
        wins = "yes" if e[2] > b[2] else "no"
        encoded, baseline = " ".join(f"{v:.3f}" for v in e), " ".join(f"{v:.3f}" for v in b)
        print(f"{lang:<10}{len(texts):>8}  {encoded:<24}{baseline:<22}{wins:>5}")


def clustered(n: int, dim: int = 64, clusters: int = 1000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    x = centres[rng.integers(0, clusters, n)] + 0.35 * rng.normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def ann(n: int, queries: int = 1000) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import faiss  # type: ignore[import-not-found]
    import hnswlib  # type: ignore[import-not-found]

    from tastemaker.stickers.index import scann_pybind

    scann_ops_pybind = scann_pybind()

    faiss.omp_set_num_threads(1)
    data = clustered(n)
    q = clustered(queries, seed=1)
    truth = np.vstack([np.argsort(-(data @ q[i : i + 100].T), axis=0)[:10].T for i in range(0, queries, 100)])

    def recall(found: np.ndarray) -> float:
        return float(np.mean([len(set(f[:10]) & set(t)) / 10 for f, t in zip(found, truth, strict=True)]))

    results = []

    def run(name: str, build: object, search: object) -> None:
        start = time.perf_counter()
        index = build()  # type: ignore[operator]
        built = time.perf_counter() - start
        start = time.perf_counter()
        found = np.array([search(index, q[i]) for i in range(queries)])  # type: ignore[operator]
        qps = queries / (time.perf_counter() - start)
        results.append((name, recall(found), qps, built))

    run("brute force (numpy)", lambda: data, lambda d, v: np.argpartition(-(d @ v), 10)[:10])
    leaves = int(np.sqrt(n))
    run(
        "ScaNN (tree+AH+reorder 300)",
        lambda: (
            scann_ops_pybind.builder(data, 10, "dot_product")
            .tree(num_leaves=leaves, num_leaves_to_search=max(10, leaves // 20), training_sample_size=min(n, 250_000))
            .score_ah(2, anisotropic_quantization_threshold=0.2)
            .reorder(100)
            .build()
        ),
        lambda s, v: s.search(v, final_num_neighbors=10)[0],
    )

    def hnsw_faiss() -> object:
        index = faiss.IndexHNSWFlat(64, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.add(data)
        index.hnsw.efSearch = 128
        return index

    run("FAISS HNSW (M=32, ef=128)", hnsw_faiss, lambda i, v: i.search(v[None], 10)[1][0])

    def ivfpq() -> object:
        quantizer = faiss.IndexFlatIP(64)
        index = faiss.IndexIVFPQ(quantizer, 64, max(64, leaves), 16, 8, faiss.METRIC_INNER_PRODUCT)
        index.train(data[: min(n, 100_000)])
        index.add(data)
        index.nprobe = 16
        return index

    run("FAISS IVF-PQ (16×8, nprobe 16)", ivfpq, lambda i, v: i.search(v[None], 10)[1][0])

    def hnswlib_index() -> object:
        index = hnswlib.Index(space="ip", dim=64)
        index.init_index(max_elements=n, ef_construction=80, M=16)
        index.set_num_threads(1)
        index.add_items(data)
        index.set_ef(128)
        return index

    run("hnswlib (M=16, ef=128)", hnswlib_index, lambda i, v: i.knn_query(v, k=10)[0][0])
    print(f"\nANN on {n:,} clustered 64-d unit vectors, {queries} queries, one thread")
    print(f"{'index':<32}{'recall@10':>10}{'queries/s':>11}{'build s':>9}")
    for name, r, qps, built in results:
        print(f"{name:<32}{r:>10.3f}{qps:>11,.0f}{built:>9.1f}")


def end_to_end(encoder: StickerEncoder, stickers: list[Sticker], size: int, requests: int = 500) -> None:
    rng = np.random.default_rng(0)
    words = [k for s in stickers for k in s.phrases["en"].keywords]
    extra = [
        Sticker(f"synthetic-{i}", "", "synthetic",
                {"en": Phrases(" ".join(rng.choice(words, 2)), tuple(rng.choice(words, 3)))})
        for i in range(max(0, size - len(stickers)))
    ]  # fmt: skip
    everything = stickers + extra
    start = time.perf_counter()
    index = build_index(encoder, everything, "bench")
    built = time.perf_counter() - start
    service = StickerService(encoder, IndexHolder(index), rng=np.random.default_rng(1))
    texts = [s.phrases["en"].name for s in stickers]
    latencies = []
    for i in range(requests):
        t0 = time.perf_counter()
        service.suggest("u", texts[i % len(texts)], "en", 5)
        latencies.append(time.perf_counter() - t0)
    ms = np.array(latencies) * 1e3
    print(f"\nEnd to end in-process over {len(everything):,} stickers ({index.backend}, built in {built:.1f} s): "
          f"encode + ANN + ε-greedy re-rank + decision log, p50 {np.percentile(ms, 50):.2f} ms, "
          f"p99 {np.percentile(ms, 99):.2f} ms over {requests} requests")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="a bundle (`tastemaker stickers train`); default: train one here")
    parser.add_argument("--catalog", type=Path, default=ROOT / "data" / "stickers" / "cldr-catalog.jsonl")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--ann-n", type=int, default=1_000_000)
    parser.add_argument("--catalog-n", type=int, default=100_000)
    args = parser.parse_args()
    if args.model is not None:
        bundle = load_bundle(args.model)
        encoder, stickers = bundle.encoder, list(bundle.catalog.values())
    else:
        from tastemaker.training.sticker_training import train_encoder

        stickers = read_catalog(args.catalog)
        result = train_encoder(stickers, epochs=args.epochs)
        encoder = result.encoder
        print(f"trained the encoder on {result.pairs:,} pairs in {result.seconds:.0f} s")
    quality(encoder, stickers)
    end_to_end(encoder, stickers, args.catalog_n)
    ann(args.ann_n)


if __name__ == "__main__":
    main()
