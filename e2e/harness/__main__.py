"""`python -m e2e.harness up|down|status [--state-dir DIR]`: the local cluster from a shell.

`up` leaves the cluster running in the background and writes <state-dir>/kubeconfig
(default .cluster/kubeconfig), with an S3 server (versitygw) beside it whose address and keys it
prints (`--no-object-store`: none); `down` stops exactly the processes `up` started.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

from e2e.harness import cluster, local_store, objectstore, paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.harness", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument("--state-dir", type=pathlib.Path, default=paths.DEFAULT_STATE_DIR)
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for each component")
    parser.add_argument("--no-object-store", action="store_true", help="do not start the S3 server with `up`")
    args = parser.parse_args(argv)
    c = cluster.Cluster(args.state_dir)
    start = time.monotonic()

    def progress(message: str) -> None:
        print(f"[cluster {time.monotonic() - start:5.1f}s] {message}", file=sys.stderr, flush=True)

    if args.command == "up":
        try:
            c.up(timeout=args.timeout, progress=progress)
        except cluster.ClusterError as exc:
            print(f"cluster up failed: {exc}", file=sys.stderr)
            return 1
        print(f"export KUBECONFIG={c.kubeconfig}")
        print(f"export PATH={c.bin_dir}:$PATH  # kubectl, helm")
        if not args.no_object_store:
            missing = objectstore.missing_reason(c.bin_dir)
            if missing is not None:
                progress(f"no S3 server: {missing}")
            else:
                try:
                    store = local_store.start(c)
                except objectstore.ObjectStoreError as exc:
                    print(f"S3 server start failed: {exc}", file=sys.stderr)
                    return 1
                progress(f"S3 server (versitygw) at {store.endpoint_url}; files in {store.root}")
                print(local_store.instructions(store))
    elif args.command == "down":
        if local_store.stop(c.state_dir):
            progress("S3 server stopped")
        c.down()
        progress(f"cluster down; logs kept in {c.logs_dir}")
    else:
        status = c.status()
        store_state = local_store.status(c.state_dir)
        if store_state is not None:
            status["versitygw (S3)"] = store_state
        for name, state in status.items():
            print(f"{name:26} {state}")
        return 0 if all(s.startswith("running") for s in status.values()) else 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
