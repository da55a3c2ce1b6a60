"""`faiss-operator import`: an existing FAISS index file as an artifact that `load_index` and `serve` take.

A seed user's index was written with `faiss.write_index` and has no manifest, so `load_index`
answers "manifest.json is missing". This command reads the index (its type, config and metric
from the FAISS objects, index/importing.py), the ids and metadata with the build's own readers
and checks (sources/), and writes the artifact with its checksummed manifest, as a build does.
It does not evaluate: the operator's build Job measures recall and latency; an imported artifact
carries no query sample, so `serve` answers searches but the controller's live analysis has
nothing to compare with.

Exit status: 0 written; 1 the index, ids or metadata cannot be used, or --out exists (one line
on stderr saying which); 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import faiss

from faiss_operator.index import FAISSIndex, artifact, importing, records
from faiss_operator.sources import errors as source_errors
from faiss_operator.sources import ids as ids_io
from faiss_operator.sources import metadata as metadata_io


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", required=True, type=Path, help="a file written by faiss.write_index")
    parser.add_argument("--out", required=True, type=Path, help="artifact directory to create")
    parser.add_argument("--ids", type=Path, help="ids: .npy of int64 or a text file with one id per line "
                        "(default: an IndexIDMap's ids, else 0..n-1)")
    parser.add_argument("--metadata", type=Path, help="metadata: JSON lines, one object per id, keyed by "
                        "--metadata-id-key")
    parser.add_argument("--metadata-id-key", default=metadata_io.DEFAULT_ID_KEY,
                        help="the metadata key holding each line's id")
    parser.add_argument("--normalize", action="store_true",
                        help="the vectors were L2-normalised before they were added (cosine with InnerProduct): "
                        "queries are normalised too")
    parser.add_argument("--revision", help="revision name recorded in the manifest (default: the directory's name)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing artifact directory")


def run(args: argparse.Namespace) -> int:
    try:
        manifest = import_index(args)
    except (OSError, RuntimeError, ValueError, source_errors.SourceError) as error:
        print(f"faiss-operator import: {error}", file=sys.stderr)
        return 1
    print(f"Imported {manifest['num_vectors']} vectors of dimension {manifest['dimension']} as "
          f"{manifest['index_type']} ({manifest['factory']}, {manifest['metric']}) into {args.out}")
    return 0


def import_index(args: argparse.Namespace) -> dict[str, Any]:
    """Write the artifact and return its manifest; raises with a message naming the file at fault."""
    if args.out.exists() and not args.overwrite:
        raise importing.ImportRefused(f"{args.out} exists; pass --overwrite to replace it")
    if not args.index.is_file():
        raise importing.ImportRefused(f"{args.index}: no such file")
    try:
        index = faiss.read_index(str(args.index))
    except RuntimeError:
        raise importing.ImportRefused(f"{args.index}: not a FAISS index file (faiss.read_index refused it)") from None
    ids: list[records.ExternalId] | None = None
    if args.ids is not None:
        read = ids_io.read_ids(args.ids)
        ids_io.check_ids(read, int(index.ntotal), name=str(args.ids))
        ids = list(read.tolist() if not isinstance(read, list) else read)
    rows: list[records.Metadata | None] | None = None
    if args.metadata is not None:
        # The readers type ids as the build reads them (an int64 array or strings); these are either.
        keys: Any = ids if ids is not None else importing.describe(index).ids
        table = metadata_io.read_metadata(args.metadata, id_key=args.metadata_id_key)
        metadata_io.check_metadata(table, keys, name=str(args.metadata))
        rows = list(metadata_io.aligned(table, keys))
    imported = FAISSIndex.from_faiss_index(
        index, ids=ids, metadata=rows, normalize=args.normalize, source=f"import:{args.index}"
    )
    imported.write_files(args.out)  # then the manifest, once
    revision = {"revision": args.revision} if args.revision else {}
    return artifact.write_manifest(args.out, **imported.manifest_fields(), **revision)
