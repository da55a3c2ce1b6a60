"""`python -m e2e.harness up|down|status [--state-dir DIR]`: the local cluster from a shell.

`up` leaves the cluster running in the background and writes <state-dir>/kubeconfig
(default .cluster/kubeconfig); `down` stops exactly the processes `up` started.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

from e2e.harness import cluster, paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.harness", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument("--state-dir", type=pathlib.Path, default=paths.DEFAULT_STATE_DIR)
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for each component")
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
    elif args.command == "down":
        c.down()
        progress(f"cluster down; logs kept in {c.logs_dir}")
    else:
        status = c.status()
        for name, state in status.items():
            print(f"{name:26} {state}")
        return 0 if all(s.startswith("running") for s in status.values()) else 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
