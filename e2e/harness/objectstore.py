"""A real S3 server for the tests: versitygw serving a POSIX directory.

versitygw (Apache-2.0, built by hack/build-k8s.sh from hack/versitygw) speaks the S3 API with
multipart uploads, CRC32/SHA-256 checksums and SigV4, and starts in a fraction of a second, so
every test that needs a store gets a real one instead of a fake. The component tier starts it on
the host's loopback; the cluster harness starts it inside the cluster's network namespace on the
node address (`argv_prefix`), where the build Jobs and serving pods reach it.

Stopping it is how the stories take the store away in the middle of a build or a download.
"""

from __future__ import annotations

import dataclasses
import pathlib
import secrets
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import TYPE_CHECKING

from e2e.harness import addresses, paths, processes, testhost

if TYPE_CHECKING:
    from e2e.harness import cluster as cluster_mod

BINARY = "versitygw"
HEALTH_PATH = "/health"
REGION = "us-east-1"


class ObjectStoreError(RuntimeError):
    """The store could not be started; the message says why and where its log is."""


@dataclasses.dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str

    @classmethod
    def generate(cls) -> Credentials:
        return cls(access_key_id="faiss" + secrets.token_hex(6), secret_access_key=secrets.token_hex(20))


def binary_path(bin_dir: pathlib.Path | None = None) -> pathlib.Path:
    return (bin_dir or paths.bin_dir()) / BINARY


def missing_reason(bin_dir: pathlib.Path | None = None) -> str | None:
    """Why no store can start here (the binary is not built), or None."""
    try:
        binary = binary_path(bin_dir)
    except OSError as error:
        return f"cannot locate the build: {error}"
    if not binary.is_file():
        return f"{binary} is not built (run `make k8s`, which builds hack/versitygw)"
    return None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ObjectStore:
    """One versitygw process on `root`, listening on host:port, with one root user."""

    def __init__(
        self, *, root: pathlib.Path, host: str, port: int, log: pathlib.Path,
        credentials: Credentials | None = None, bin_dir: pathlib.Path | None = None,
        argv_prefix: Sequence[str] = (),
    ) -> None:
        self.root = root
        self.host = host
        self.port = port
        self.log = log
        self.credentials = credentials or Credentials.generate()
        self._binary = binary_path(bin_dir)
        self._argv_prefix = list(argv_prefix)
        self.record: processes.Record | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def environment(self) -> dict[str, str]:
        """The variables a client (sources/s3.py, boto3) needs to reach this store."""
        return {
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": self.credentials.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.credentials.secret_access_key,
            "FAISS_S3_ADDRESSING_STYLE": "path",
        }

    def argv(self) -> list[str]:
        return [
            *self._argv_prefix, str(self._binary),
            "--access", self.credentials.access_key_id, "--secret", self.credentials.secret_access_key,
            "--region", REGION, "--port", f"{self.host}:{self.port}", "--health", HEALTH_PATH, "--quiet",
            "posix", str(self.root),
        ]

    def start(self, *, timeout: float = 30.0) -> None:
        """Start the server and wait until its health endpoint answers."""
        if not self._binary.is_file():
            raise ObjectStoreError(f"{self._binary} is not built (run `make k8s`)")
        self.root.mkdir(parents=True, exist_ok=True)
        _, self.record = processes.spawn("versitygw", self.argv(), log=self.log)
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if not processes.alive(self.record):
                raise ObjectStoreError(f"versitygw exited while starting; see {self.log}:\n{_tail(self.log)}")
            if time.monotonic() > deadline:
                self.stop()
                raise ObjectStoreError(f"versitygw did not answer {HEALTH_PATH} in {timeout:.0f}s; see {self.log}")
            time.sleep(0.05)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.endpoint_url + HEALTH_PATH, timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        """Stop the server (its files stay in `root`); a no-op when it is not running."""
        if self.record is not None:
            processes.stop(self.record, grace_seconds=5)
        self.record = None

    def running(self) -> bool:
        return self.record is not None and processes.alive(self.record)


def _tail(path: pathlib.Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def in_cluster(
    cluster: cluster_mod.Cluster, *, root: pathlib.Path, credentials: Credentials | None = None,
) -> ObjectStore:
    """A store (not yet started) inside the cluster's network namespace on its node address:
    pods reach it there as the control plane does, and so do tests on the host (the veth pair).
    Its files stay in `root` on this machine, where a story can corrupt one."""
    block = cluster.address_block
    if block is None:
        raise ObjectStoreError(f"the cluster of {cluster.state_dir} is not up (no address block)")
    return ObjectStore(
        root=root / "data", host=addresses.node_address(block), port=free_port(), log=root / "versitygw.log",
        credentials=credentials, bin_dir=cluster.bin_dir, argv_prefix=testhost.enter(block),
    )
