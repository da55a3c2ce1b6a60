"""A container's environment, resolved the way the kubelet does it.

`$(VAR)` refers to a variable defined earlier in the list (or by the kubelet), `$$` escapes a `$`,
and an unresolved reference stays as written. The same expansion applies to command and args.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from typing import Any

Obj = dict[str, Any]
Lookup = Callable[[str, str], Obj | None]  # (kind: "configmap" | "secret", name) -> object

_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


class EnvError(ValueError):
    """A reference the container cannot start without (kubelet reason CreateContainerConfigError)."""


def expand(text: str, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))
    return _REF.sub(replace, text)


def field_value(pod: Obj, path: str) -> str:
    """A downward-API fieldRef.fieldPath of the pod."""
    meta = pod.get("metadata", {})
    status = pod.get("status", {})
    spec = pod.get("spec", {})
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.hostIP": status.get("hostIP"),
        "status.hostIPs": status.get("hostIP"),
        "status.podIP": status.get("podIP"),
        "status.podIPs": status.get("podIP"),
    }
    if path in simple:
        return str(simple[path] or "")
    match = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    if path in ("metadata.labels", "metadata.annotations"):
        items = sorted((meta.get(path.split(".")[1]) or {}).items())
        return "\n".join(f'{k}="{v}"' for k, v in items)
    raise EnvError(f"unsupported fieldPath {path!r}")


def _key_of(lookup: Lookup, kind: str, ref: Obj) -> str | None:
    obj = lookup(kind, ref["name"])
    optional = bool(ref.get("optional"))
    if obj is None:
        if optional:
            return None
        raise EnvError(f"{kind} {ref['name']!r} not found")
    if kind == "secret":
        raw = (obj.get("data") or {}).get(ref["key"])
        value = None if raw is None else base64.b64decode(raw).decode()
    else:
        value = (obj.get("data") or {}).get(ref["key"])
    if value is None and not optional:
        raise EnvError(f"key {ref['key']!r} not found in {kind} {ref['name']!r}")
    return value


def resolve(container: Obj, pod: Obj, lookup: Lookup, base: Mapping[str, str]) -> dict[str, str]:
    """The container's environment on top of `base` (the kubelet's own variables)."""
    env = dict(base)
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind, key in (("configmap", "configMapRef"), ("secret", "secretRef")):
            ref = source.get(key)
            if not ref:
                continue
            obj = lookup(kind, ref["name"])
            if obj is None:
                if ref.get("optional"):
                    continue
                raise EnvError(f"{kind} {ref['name']!r} not found")
            for k, v in (obj.get("data") or {}).items():
                env[prefix + k] = base64.b64decode(v).decode() if kind == "secret" else v
    for var in container.get("env") or []:
        name = var["name"]
        if "value" in var or "valueFrom" not in var:
            env[name] = expand(var.get("value") or "", env)
            continue
        source = var["valueFrom"]
        value: str | None
        if "fieldRef" in source:
            value = field_value(pod, source["fieldRef"]["fieldPath"])
        elif "configMapKeyRef" in source:
            value = _key_of(lookup, "configmap", source["configMapKeyRef"])
        elif "secretKeyRef" in source:
            value = _key_of(lookup, "secret", source["secretKeyRef"])
        elif "resourceFieldRef" in source:
            value = resource_value(container, source["resourceFieldRef"])
        else:
            raise EnvError(f"unsupported valueFrom for {name!r}: {sorted(source)}")
        if value is not None:
            env[name] = value
    return env


def resource_value(container: Obj, ref: Obj) -> str:
    kind, _, resource = ref["resource"].partition(".")
    value = ((container.get("resources") or {}).get(kind) or {}).get(resource)
    if value is None:
        # Unset limits report the node's allocatable, as the kubelet does; requests report 0.
        value = {"cpu": "2", "memory": str(24 * 1024**3)}.get(resource, "0") if kind == "limits" else "0"
    return str(value)
