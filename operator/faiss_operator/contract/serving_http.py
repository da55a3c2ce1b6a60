"""The serving pod's HTTP surface as the operator relies on it: the port name the manifests give
it, the paths its probes and the live analysis call, and the headers both sides read.

server/ answers on these paths and sets and reads these headers; controller/ builds its probes
and its prober's requests from them.
"""

from __future__ import annotations

from typing import Final

PORT_NAME: Final = "http"  # the serving container's port, named so probes and the prober find it

LIVENESS_PATH: Final = "/healthz"
READINESS_PATH: Final = "/readyz"  # Ready once the artifact is verified, loaded and warmed up
INFO_PATH: Final = "/v1/info"
EVALUATION_SAMPLE_PATH: Final = "/v1/evaluation-sample"  # the build's held-out queries, ground truth
SEARCH_PATH: Final = "/v1/search"
METRICS_PATH: Final = "/metrics"

# Sent by the operator's live analysis with PROBE_VALUE: the pod counts it under source="probe".
PROBE_HEADER: Final = "X-Faiss-Probe"
PROBE_VALUE: Final = "1"
# Set by the pod on every search answer: the revision that answered.
REVISION_HEADER: Final = "X-Faiss-Revision"


def header_key(name: str) -> bytes:
    """A header name as the server's HTTP parser compares it (lower case, bytes)."""
    return name.lower().encode("ascii")
