"""The PersistentVolumeClaims a spec mounts, and the conditions that say when one is missing.

Without this a build Job whose claim does not exist hangs Pending with nothing on the
FaissIndex to say why; with it, Stalled and Degraded name the claim and what to do. Pure: the
Kopf layer observes which claims exist (`Children.claims`), this module only compares.
"""

from __future__ import annotations

from faiss_operator.api import spec as api_spec
from faiss_operator.controller.decision import observed
from faiss_operator.controller.decision import state, storage

CLAIM_NOT_FOUND = "ClaimNotFound"
CLAIM_TERMINATING = "ClaimTerminating"


def referenced(spec: api_spec.FaissIndexSpec) -> dict[str, str]:
    """{claim name: the first spec field that names it}, for every pvc:// URI of the spec."""
    fields = {
        "spec.source.uri": spec.source.uri,
        "spec.source.idsUri": spec.source.ids_uri,
        "spec.source.metadataUri": spec.source.metadata_uri,
        "spec.artifacts.uri": spec.artifacts.uri,
    }
    found: dict[str, str] = {}
    for field, uri in fields.items():
        if uri is not None and uri.startswith(storage.PVC_SCHEME):
            try:
                found.setdefault(storage.parse_pvc(uri).claim, field)
            except storage.StorageError:
                continue  # refused elsewhere with its own message
    return found


def missing(spec: api_spec.FaissIndexSpec, children: observed.Children) -> dict[str, str]:
    """{claim: field} of the referenced claims not observed; {} when claims were not observed."""
    if children.claims is None:
        return {}
    return {claim: field for claim, field in referenced(spec).items() if claim not in children.claims}


def problem(inputs: state.Inputs) -> tuple[str, str] | None:
    """(reason, message) for Stalled and Degraded when a referenced claim is missing or being
    deleted; None otherwise. It wins over every other problem: nothing can be built or served
    until the claim exists, and a claim being deleted goes as soon as nothing mounts it."""
    absent = missing(inputs.spec, inputs.children)
    if not absent:
        return _terminating(inputs)
    named = ", ".join(f"{claim} ({field})" for claim, field in sorted(absent.items()))
    message = (
        f"PersistentVolumeClaim {named} not found in namespace {inputs.resource.namespace}: "
        "create it; the build Job and the serving pods mount it (ReadWriteMany on a multi-node cluster)"
    )
    return (CLAIM_NOT_FOUND, message)


def _terminating(inputs: state.Inputs) -> tuple[str, str] | None:
    """A referenced claim someone deleted: Kubernetes keeps it (Terminating) while pods mount it,
    and it goes with its files once they stop. Say which claim, and which of our pods hold it."""
    deleted = {c: f for c, f in referenced(inputs.spec).items() if c in inputs.children.terminating_claims}
    if not deleted:
        return None
    parts = []
    for claim, field in sorted(deleted.items()):
        holders = holding(inputs.children, claim)
        held = f"held by pods {', '.join(holders)}" if holders else "no pod of this index mounts it"
        parts.append(f"{claim} ({field}, {held})")
    message = (
        f"PersistentVolumeClaim {'; '.join(parts)} is being deleted in namespace {inputs.resource.namespace}: "
        "it stays Terminating until no pod mounts it, then its files go; recreate the claim under "
        "another name and point the spec at it, or delete the FaissIndex"
    )
    return (CLAIM_TERMINATING, message)


def holding(children: observed.Children, claim: str) -> list[str]:
    """The names of the index's serving pods that mount `claim`."""
    return sorted(pod.name for pod in children.serving_pods if claim in pod.claims)
