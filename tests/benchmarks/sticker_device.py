"""`bench_stickers --sections device`: the device bundle and the lean server, measured.

1. Device bundles at 5 MB and uncapped (the ceiling: every feature row the model learned from,
   product-quantised): size, rows kept, parity with the server on the hand-written chat set's
   tuning part and, apart, its held-out part (mean overlap of the device's top 10 with the
   server's greedy top 10; hit@10 of each), and the device's p50/p99 per message on one thread
   (LiteRT + numpy; typeahead included).
2. Typeahead: each message cut at 40%, 60% and 80% of its characters, hit@10 of the server
   (`partial`) and the device beside the full message's, and the cut text encoded as typed
   (no completion) as the floor.
3. Serving workers: a process that loads the bundle and answers SuggestStickers in-process (no
   broker or Redis: the model's memory alone), float32 tables held in each process vs the lean
   float16 memory-mapped ones; RSS, PSS and private (USS) memory of one worker, and of two at once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from tastemaker.bandits.strategies import EpsilonGreedy
from tastemaker.device.runtime import DeviceSuggester
from tastemaker.services.stickers import StickerService
from tastemaker.stickers.bundle import load_bundle, save_prefixes
from tastemaker.stickers.checksummed import save_arrays
from tastemaker.stickers.encoder import FORMAT
from tastemaker.training.modeling.device_export import export_device
from tastemaker.training.modeling.sticker_pairs import read_pairs

ROOT = Path(__file__).resolve().parents[2]
CHAT = ROOT / "tests" / "data" / "chat_stickers.jsonl"
BUDGETS = ((5_000_000, "5 MB (default)"), (10**9, "uncapped"))


def dev_set(part: str = "tune") -> list[dict[str, object]]:
    """The hand-written chat set's tuning part (what the export's choices were made on), or with
    part="held-out" the rest, reported apart."""
    rows = [json.loads(line) for line in CHAT.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if (r["split"] == "tune") == (part == "tune")]


def learned_texts(bundle_dir: Path) -> list[str]:
    manifest = json.loads((bundle_dir / "manifest.json").read_text(encoding="utf-8"))
    catalog = set(load_bundle(bundle_dir).catalog)
    return [
        p.text for f in manifest.get("pairs_files", []) if Path(f).is_file() for p in read_pairs(Path(f), catalog).pairs
    ]


def _server_top(service: StickerService, text: str, partial: bool = False) -> list[str]:
    try:
        return [s.sticker_id for s in service.suggest("bench", text, "", 10, partial=partial).suggestions]
    except ValueError:  # nothing to match on (a cut too short)
        return []


def _device_top(device: DeviceSuggester, text: str, partial: bool = False) -> tuple[list[str], float]:
    start = time.perf_counter()
    try:
        ids = [s.sticker_id for s in device.suggest(text, 10, partial=partial).suggestions]
    except ValueError:
        ids = []
    return ids, time.perf_counter() - start


def bundles(bundle_dir: Path, workdir: Path) -> Path:
    """The device table; returns the default (5 MB) bundle."""
    bundle = load_bundle(bundle_dir)
    server = StickerService(bundle, EpsilonGreedy(0.0))
    texts = learned_texts(bundle_dir)
    parts = {part: dev_set(part) for part in ("tune", "held-out")}
    served = {part: [_server_top(server, str(r["text"])) for r in rows] for part, rows in parts.items()}
    print(f"\nDevice bundles of {bundle_dir.name} ({bundle.encoder.version}), parity with the server's greedy top 10 "
          f"on the chat set's tuning part ({len(parts['tune'])} messages) and, apart, its held-out part "
          f"({len(parts['held-out'])}); one thread")  # fmt: skip
    print(f"{'budget':<16} {'part':<9} {'bytes':>11} {'enc rows':>9} {'head rows':>9} {'overlap@10':>10} "
          f"{'hit@10 dev':>10} {'hit@10 srv':>10} {'p50 ms':>7} {'p99 ms':>7}")  # fmt: skip
    default = workdir / "device-5MB.zip"
    for budget, name in BUDGETS:
        out = workdir / ("device-5MB.zip" if budget == 5_000_000 else f"device-{budget}.zip")
        done = export_device(bundle, out, texts, budget)
        if not bundle.prefixes:  # as `stickers export-device` does: the server's typeahead uses the same table
            save_prefixes(bundle_dir, done.prefixes)
        device = DeviceSuggester.load(out, epsilon=0.0)
        device.suggest("warm up", 10)
        for part, rows in parts.items():
            fits = [set(r["stickers"]) for r in rows]  # type: ignore[call-overload]
            answered = [_device_top(device, str(r["text"])) for r in rows]
            tops = [ids for ids, _ in answered]
            latency = np.array([seconds for _, seconds in answered]) * 1000
            overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(served[part], tops, strict=True)])
            hit_dev = np.mean([bool(f & set(t)) for f, t in zip(fits, tops, strict=True)])
            hit_srv = np.mean([bool(f & set(t)) for f, t in zip(fits, served[part], strict=True)])
            print(f"{name:<16} {part:<9} {done.bytes:>11,} {done.encoder_rows:>9,} {done.head_rows:>9,} "
                  f"{overlap:>10.3f} {hit_dev:>10.3f} {hit_srv:>10.3f} {np.percentile(latency, 50):>7.2f} "
                  f"{np.percentile(latency, 99):>7.2f}")  # fmt: skip
    print("targets: ≤ 5,000,000 bytes; overlap ≥ 0.95; hit@10 within 0.02 of the server's; p99 ≤ 5 ms")
    return default


def typeahead(bundle_dir: Path, device_file: Path) -> None:
    server = StickerService(load_bundle(bundle_dir), EpsilonGreedy(0.0))
    device = DeviceSuggester.load(device_file, epsilon=0.0)
    rows = dev_set()
    fits = [set(r["stickers"]) for r in rows]  # type: ignore[call-overload]
    print(f"\nTypeahead on the chat set's tuning part ({len(rows)} messages cut at a share of their characters): "
          "hit@10; 'as typed' encodes the cut text without completing its last word")  # fmt: skip
    print(f"{'cut':<6} {'server':>8} {'device':>8} {'as typed':>9} {'device p99 ms':>14}")
    full = None
    for share in (0.4, 0.6, 0.8, 1.0):
        cuts = [str(r["text"])[: max(1, round(len(str(r["text"])) * share))] for r in rows]
        partial = share < 1.0
        srv = np.mean([bool(f & set(_server_top(server, c, partial))) for f, c in zip(fits, cuts, strict=True)])
        answered = [_device_top(device, c, partial) for c in cuts]
        dev = np.mean([bool(f & set(ids)) for f, (ids, _) in zip(fits, answered, strict=True)])
        typed = np.mean([bool(f & set(_server_top(server, c))) for f, c in zip(fits, cuts, strict=True)])
        p99 = np.percentile([s for _, s in answered], 99) * 1000
        full = srv if share == 1.0 else full
        print(f"{share:<6.0%} {srv:>8.3f} {dev:>8.3f} {typed:>9.3f} {p99:>14.2f}")
    print(f"target: at 60% of the characters, hit@10 ≥ 0.8 × the full message's ({0.8 * (full or 0):.3f})")


WORKER = """
import sys, time
from pathlib import Path
from tastemaker.bandits.strategies import EpsilonGreedy
from tastemaker.services.stickers import StickerService
from tastemaker.stickers.bundle import load_bundle
if sys.argv[1] != "-":  # "-": the imports alone, the floor
    service = StickerService(load_bundle(Path(sys.argv[1])), EpsilonGreedy(0.1))
    if sys.argv[2] == "catalog":  # as every worker did before the catalog loaded on first use
        len(service.catalog)
    for text in sys.argv[3:]:
        service.suggest("bench", text, "", 10)
print("ready", flush=True)
sys.stdin.read()
"""


def _memory(pid: int) -> dict[str, float]:
    """RSS, PSS and private (USS) memory in MB from /proc/PID/smaps_rollup."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":", 1)
        fields[key] = float(value.split()[0]) / 1024
    return {"rss": fields["Rss"], "pss": fields["Pss"], "uss": fields["Private_Clean"] + fields["Private_Dirty"]}


def _workers(bundle_dir: Path | str, count: int, texts: list[str], catalog: bool = False) -> list[dict[str, float]]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(bundle_dir), "catalog" if catalog else "lazy", *texts],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )  # fmt: skip
        for _ in range(count)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        return [_memory(proc.pid) for proc in procs]
    finally:
        for proc in procs:
            proc.communicate("", timeout=60)


def float32_copy(bundle_dir: Path, out: Path) -> Path:
    """The bundle as it was served before the lean tables: float32 text table and head weights in
    the part's .npz, loaded into each process."""
    shutil.copytree(bundle_dir, out)
    bundle = load_bundle(bundle_dir)
    encoder = bundle.encoder
    arrays = {name: np.asarray(getattr(encoder, name), dtype=np.float32 if name == "text_table" else None)
              for name in ("text_table", "text_weight", "message_w", "message_b", "sticker_table", "sticker_w",
                           "sticker_b")}  # fmt: skip
    manifest = json.loads((bundle_dir / "encoder" / "manifest.json").read_text(encoding="utf-8"))
    manifest = {k: v for k, v in manifest.items() if k not in ("sha256", "mapped")} | {"format": FORMAT}
    (out / "encoder" / "text_table.npy").unlink(missing_ok=True)
    save_arrays(out / "encoder", "encoder", arrays, manifest)
    if bundle.head is not None:
        head_manifest = json.loads((bundle_dir / "head" / "manifest.json").read_text(encoding="utf-8"))
        head_manifest = {k: v for k, v in head_manifest.items() if k not in ("sha256", "mapped")}
        head = {"rows": bundle.head.rows, "weights": np.asarray(bundle.head.weights), "bias": bundle.head.bias,
                "prior": bundle.head.prior}  # fmt: skip
        (out / "head" / "weights.npy").unlink(missing_ok=True)
        save_arrays(out / "head", "head", head, head_manifest)
    return out


def lean_copy(bundle_dir: Path, out: Path) -> Path:
    """The bundle re-saved as `stickers train` writes it now (float16, memory-mapped tables)."""
    from tastemaker.stickers.encoder import save_encoder
    from tastemaker.stickers.head import save_head

    shutil.copytree(bundle_dir, out)
    bundle = load_bundle(bundle_dir)
    save_encoder(bundle.encoder, out / "encoder")
    if bundle.head is not None:
        save_head(bundle.head, out / "head")
    return out


def worker_memory(bundle_dir: Path, workdir: Path) -> None:
    texts = [str(r["text"]) for r in dev_set()][:100]
    legacy = float32_copy(bundle_dir, workdir / "float32")
    lean = lean_copy(bundle_dir, workdir / "lean")
    print("\nServing workers with the sticker model (load the bundle, answer 100 chat messages in-process), MB")
    print(f"{'tables':<34} {'RSS':>7} {'PSS':>7} {'USS':>7}   two workers at once: {'PSS sum':>8} {'USS 2nd':>8}")
    rows: tuple[tuple[str, Path | str, bool], ...] = (
        ("no model (the imports: the floor)", "-", False),
        ("float32 + catalog in each (before)", legacy, True),
        ("float32, in each process", legacy, False),
        ("float16, memory-mapped (served)", lean, False),
    )
    for name, directory, catalog in rows:
        one = _workers(directory, 1, texts, catalog)[0]
        two = _workers(directory, 2, texts, catalog)
        print(f"{name:<34} {one['rss']:>7.0f} {one['pss']:>7.0f} {one['uss']:>7.0f}   "
              f"{'':>20} {sum(w['pss'] for w in two):>8.0f} {two[1]['uss']:>8.0f}")  # fmt: skip
    print("targets: a worker ≤ 150 MB RSS; a second worker adds ≤ 50 MB (its private memory, USS: a mapped page")
    print("one process alone maps counts as private; with two it is shared)")


def device_section(bundle_dir: Path, workdir: Path) -> None:
    default = bundles(bundle_dir, workdir)
    typeahead(bundle_dir, default)
    worker_memory(bundle_dir, workdir)
