"""Artifact transfer to and from object storage: the project's code beside boto3 alone, same run.

An HNSW artifact is built once from generated normalised vectors and cached under
~/.cache/faiss-operator/benchmarks (or an existing artifact directory is given),
then, against a real S3 server (versitygw from `make k8s`, started here on loopback):

* upload: `sources.artifact_store.upload` (checks the local manifest, every file, manifest last)
  vs boto3's own `upload_file` of the same files with its default transfer settings;
* download: `sources.artifact_store.download` (manifest first, every file, then the SHA-256 of
  every file checked) vs boto3's `download_file` of the same files, no check.

and, as the ceiling, a plain copy of the same files on the same disk (what the store itself must
do at the least, without HTTP). The three take turns round by round; the table has the median
round of each, MB/s counting the artifact's bytes, and the ratios of the project's throughput
to boto3's (goal: >= 0.8) and to the raw copy.

    python benchmarks/artifact_transfer.py                      # 100k x 384 HNSW (~180 MB)
    python benchmarks/artifact_transfer.py --vectors 1000000    # the issue's 1M x 384 (long first build)
    python benchmarks/artifact_transfer.py --artifact DIR       # an artifact already built
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import boto3
import boto3.s3.transfer
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from e2e.harness import objectstore  # noqa: E402
from faiss_operator.builder import pipeline  # noqa: E402
from faiss_operator.index import artifact  # noqa: E402
from faiss_operator.sources import artifact_store, s3  # noqa: E402


CACHE = Path.home() / ".cache" / "faiss-operator" / "benchmarks"


def cached_artifact(vectors: int, dimension: int, *, cache: Path = CACHE) -> Path:
    """The HNSW32 artifact of `vectors` x `dimension` normalised random vectors, built once and
    kept under ~/.cache/faiss-operator/benchmarks. efConstruction is 10, not a serving value: the
    files (vectors, the M=32 graph, ids, sample, manifest) have the size and layout of any HNSW32
    artifact of that shape, which is all a transfer depends on, and 1M x 384 builds in minutes
    instead of the better part of an hour on 2 busy cores."""
    out = cache / f"artifact-hnsw32-{vectors}x{dimension}"
    if (out / artifact.MANIFEST_NAME).exists():
        return out
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="artifact-build-", dir=cache))
    try:
        data = np.random.default_rng(0).standard_normal((vectors, dimension), dtype=np.float32)
        data /= np.linalg.norm(data, axis=1, keepdims=True)
        np.save(work / "v.npy", data)
        del data
        started = time.monotonic()
        pipeline.build(pipeline.BuildRequest(
            source=str(work / "v.npy"), out=work / "artifact", index_type="HNSW",
            config={"m": 32, "ef_construction": 10}, eval_queries=100, revision="bench", env={},
        ))
        print(f"built {vectors} x {dimension} HNSW in {time.monotonic() - started:.0f}s", file=sys.stderr)
        (work / "artifact").rename(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def median_seconds(rounds: int, runs: dict[str, Callable[[int], None]], reset: Callable[[int], None]) -> dict[str, float]:
    """Median time of each run, the runs taking turns round by round, so that load from elsewhere
    on the machine falls on all alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for number in range(rounds):
        for name, run in runs.items():
            reset(number)
            started = time.perf_counter()
            run(number)
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def load_average() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--dimension", type=int, default=384)
    parser.add_argument("--artifact", type=Path, help="an artifact directory to transfer instead of building one")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--cache", type=Path, default=CACHE, help=f"where built artifacts are kept (default {CACHE})")
    args = parser.parse_args()
    reason = objectstore.missing_reason()
    if reason is not None:
        print(f"no S3 server: {reason}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="artifact-bench-", dir=args.workdir))
    store = objectstore.ObjectStore(root=work / "store", host="127.0.0.1", port=objectstore.free_port(),
                                    log=work / "versitygw.log")
    try:
        local = args.artifact or cached_artifact(args.vectors, args.dimension, cache=args.cache)
        manifest = artifact.verify_artifact(local)
        names = sorted(manifest["files"]) + [artifact.MANIFEST_NAME]
        total = sum((local / name).stat().st_size for name in names)
        store.start()
        environment = store.environment()
        settings = s3.Settings.from_environment(environment)
        ours = s3.client(settings, environ=environment)
        plain = boto3.session.Session().client(
            "s3", endpoint_url=environment["AWS_ENDPOINT_URL_S3"], region_name=environment["AWS_REGION"],
            aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
        )
        plain.create_bucket(Bucket="bench")
        downloads = work / "downloads"

        def clear_downloads(_: int) -> None:
            shutil.rmtree(downloads, ignore_errors=True)
            downloads.mkdir()

        def nothing(_: int) -> None:
            pass

        def ours_up(n: int) -> None:
            artifact_store.upload(ours, local, s3.Location("bench", f"ours/{n}"), settings=settings)

        def plain_up(n: int) -> None:
            for name in names:
                plain.upload_file(str(local / name), "bench", f"plain/{n}/{name}")

        def ours_down(n: int) -> None:
            artifact_store.download(ours, s3.Location("bench", "ours/0"), downloads / f"o{n}",
                                    settings=settings, max_bytes=1 << 40)

        def plain_down(n: int) -> None:
            (downloads / f"p{n}").mkdir()
            for name in names:
                plain.download_file("bench", f"plain/0/{name}", str(downloads / f"p{n}" / name))

        def raw_copy(n: int) -> None:
            """The ceiling: the same files copied on the disk the store and the downloads use."""
            shutil.rmtree(work / "copies", ignore_errors=True)
            (work / "copies" / str(n)).mkdir(parents=True)
            for name in names:
                shutil.copyfile(local / name, work / "copies" / str(n) / name)

        loads = [load_average()]
        up = median_seconds(args.rounds, {"ours": ours_up, "plain": plain_up, "raw": raw_copy}, nothing)
        loads.append(load_average())
        down = median_seconds(args.rounds, {"ours": ours_down, "plain": plain_down, "raw": raw_copy}, clear_downloads)
        loads.append(load_average())
    finally:
        store.stop()
        shutil.rmtree(work, ignore_errors=True)
    mb = total / 1e6
    print(f"artifact: {mb:.1f} MB in {len(names)} files; versitygw v1.8.0 on loopback; "
          f"{platform.machine()}, {platform.python_version()}, {os.cpu_count()} cores; median of {args.rounds}; "
          f"load average (1/5/15 min) before, between, after: {' | '.join(loads)}")
    print("| transfer | faiss-operator MB/s | boto3 alone MB/s | raw file copy MB/s | ours / boto3 | ours / raw |")
    print("|---|---|---|---|---|---|")
    for what, row in (("upload", up), ("download", down)):
        print(f"| {what} | {mb / row['ours']:.1f} | {mb / row['plain']:.1f} | {mb / row['raw']:.1f} | "
              f"{row['plain'] / row['ours']:.2f} | {row['raw'] / row['ours']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
