"""Entry point of the process kubelet: `python -m e2e.harness.kubelet --kubeconfig ... --node-name ...`."""

from __future__ import annotations

import argparse
import logging
import os
import pathlib
import signal
import sys
import types

from kubernetes import config

from e2e.harness.kubelet import agent, images, kube, pods

# The switch of the container runtime path (see README "Tests"), for pods that name no RuntimeClass:
# `runc` (the default: the integration tier and `make demo`) runs each container from its image
# under runc, but for the images named in FAISS_KUBELET_PROCESS_IMAGES (comma-separated, none by
# default: `make image` also tags its Debian base as the tests' python:3.11 and python); `process`
# (FAISS_KUBELET_RUNTIME=process, for fast local runs with no image) runs every container as a
# process of the host's filesystem. A pod picks either with runtimeClassName: process | runc.
RUNTIME_ENV = "FAISS_KUBELET_RUNTIME"
PROCESS_IMAGES_ENV = "FAISS_KUBELET_PROCESS_IMAGES"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="process-kubelet", description=__doc__)
    parser.add_argument("--kubeconfig", type=pathlib.Path, required=True)
    parser.add_argument("--node-name", required=True)
    parser.add_argument("--state-dir", type=pathlib.Path, required=True)
    parser.add_argument("--port", type=int, required=True, help="HTTPS port for container logs")
    parser.add_argument("--tls-cert", type=pathlib.Path, required=True)
    parser.add_argument("--tls-key", type=pathlib.Path, required=True)
    parser.add_argument("--apiserver-port", type=int, required=True)
    parser.add_argument("--venv-bin", type=pathlib.Path, required=True)
    parser.add_argument("--address-block", type=int, required=True,
                        help="N of the pod addresses 198.18.N.0/24 (see e2e/harness/addresses.py)")
    parser.add_argument("--restart-backoff-seconds", type=float, default=10.0,
                        help="first delay before restarting a crashed container (doubles up to 300s)")
    parser.add_argument("--container-runtime", choices=(pods.PROCESS, pods.RUNC),
                        default=os.environ.get(RUNTIME_ENV) or pods.RUNC,
                        help=f"how containers run (default: ${RUNTIME_ENV}, else runc)")
    parser.add_argument("--process-images", default=os.environ.get(PROCESS_IMAGES_ENV, ""),
                        help="comma-separated image names that run as processes under the runc runtime")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args.state_dir.mkdir(parents=True, exist_ok=True)
    api = kube.Kube(config.new_client_from_config(config_file=str(args.kubeconfig)))  # type: ignore[no-untyped-call]
    ctx = pods.NodeContext(kube_api=api, node_name=args.node_name, state_dir=args.state_dir.resolve(),
                           apiserver_port=args.apiserver_port, venv_bin=args.venv_bin,
                           backoff_base=args.restart_backoff_seconds,
                           default_runtime=args.container_runtime, image_store=images.Store(),
                           process_images=frozenset(n for n in args.process_images.split(",") if n))
    node_agent = agent.Agent(ctx, port=args.port, tls_cert=args.tls_cert, tls_key=args.tls_key,
                             address_block=args.address_block)

    def stop(signum: int, frame: types.FrameType | None) -> None:
        node_agent.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    node_agent.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
