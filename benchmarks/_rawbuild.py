"""Raw FAISS building an index from a memory-mapped .npy: the baseline of benchmarks/build_memory.py.

No project code: numpy and faiss only. It builds what the project builds (the factory string,
efConstruction and training sample size are given by the benchmark, from the project's config
defaults), the way a FAISS user would: train on a seeded sample of rows, then one `add` of the
whole memory map, then `write_index`. Prints one JSON line: train, add and write seconds.

    python benchmarks/_rawbuild.py SOURCE.npy OUT.faiss --factory HNSW32 --ef-construction 200
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import faiss
import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="an (n, d) float32 .npy")
    parser.add_argument("out", help="where to write the index")
    parser.add_argument("--factory", required=True, help="faiss.index_factory string")
    parser.add_argument("--ef-construction", type=int, default=None, help="HNSW efConstruction")
    parser.add_argument("--train-size", type=int, default=0, help="training sample rows (0: no training)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    base = np.load(args.source, mmap_mode="r")
    index = faiss.index_factory(base.shape[1], args.factory, faiss.METRIC_INNER_PRODUCT)
    if args.ef_construction is not None:
        inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexPreTransform) else index
        graph: Any = faiss.downcast_index(inner)
        graph.hnsw.efConstruction = args.ef_construction
    started = time.perf_counter()
    if args.train_size:
        if args.train_size >= len(base):
            index.train(base)
        else:
            rows = np.sort(np.random.default_rng(args.seed).choice(len(base), size=args.train_size, replace=False))
            index.train(np.ascontiguousarray(base[rows]))
    trained = time.perf_counter()
    index.add(base)
    added = time.perf_counter()
    faiss.write_index(index, args.out)
    written = time.perf_counter()
    print(json.dumps({"train_seconds": trained - started, "add_seconds": added - trained,
                      "write_seconds": written - added, "ntotal": int(index.ntotal)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
