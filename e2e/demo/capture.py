"""The FaissIndex as the API server stores it, kept at each new state for the GitOps health tests
(`python -m e2e.demo up --capture-dir DIR`; tests/gitops/captured_samples.py reads such files)."""

from __future__ import annotations

import pathlib
from typing import Any

import yaml

Obj = dict[str, Any]


def trim(obj: Obj) -> Obj:
    """apiVersion, kind, metadata {name, namespace, generation}, spec and status of a stored object."""
    metadata = obj["metadata"]
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"],
            "metadata": {k: metadata[k] for k in ("name", "namespace", "generation")},
            "spec": obj["spec"], **({"status": obj["status"]} if "status" in obj else {})}


class Capture:
    """Writes `<n>_<phase>_<mode>_<pause reason>_<indexType>.yaml` into `directory` the first time
    each such state is seen (n counts from 01, in the order seen)."""

    def __init__(self, directory: pathlib.Path) -> None:
        self.directory = directory
        self.seen: set[tuple[str, ...]] = set()

    def __call__(self, obj: Obj) -> None:
        status = obj.get("status") or {}
        rollout = status.get("rollout") or {}
        observed = status.get("observedGeneration") == obj["metadata"]["generation"]
        key = tuple(str(v) for v in (status.get("phase"), rollout.get("mode"), rollout.get("pauseReason"),
                                     obj["spec"].get("indexType"), "observed" if observed else "unobserved"))
        if key in self.seen:
            return
        self.seen.add(key)
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{len(self.seen):02d}_" + "_".join(key).replace("+", "")
        (self.directory / f"{name}.yaml").write_text(yaml.safe_dump(trim(obj), sort_keys=False))
