"""How the pods of an index reach its s3:// sources and artifacts: environment, never credentials
in a manifest.

The pod programs read the SDK's own variables (sources/s3.py): the endpoint, region and
addressing style are written as values, the keys as references to the Secret the user named, so
a Secret's contents never appear in a Job or Deployment. Without a Secret the SDK's default chain
applies (IRSA / workload identity through the pods' service account). A field the FaissIndex
leaves out takes the operator's setting (Helm values objectStore.*, environment FAISS_S3_*).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pydantic

from faiss_operator.api import spec as api_spec

ENV_ENDPOINT = "FAISS_S3_ENDPOINT"
ENV_REGION = "FAISS_S3_REGION"
ENV_ADDRESSING_STYLE = "FAISS_S3_ADDRESSING_STYLE"
ENV_CREDENTIALS_SECRET = "FAISS_S3_CREDENTIALS_SECRET"
OPERATOR_ENV = (ENV_ENDPOINT, ENV_REGION, ENV_ADDRESSING_STYLE, ENV_CREDENTIALS_SECRET)
KEY_ACCESS_KEY_ID = "AWS_ACCESS_KEY_ID"
KEY_SECRET_ACCESS_KEY = "AWS_SECRET_ACCESS_KEY"
S3_SCHEME = "s3://"


def from_operator_environment(environ: Mapping[str, str]) -> api_spec.ObjectStoreSpec | None:
    """The operator-wide defaults; raises ValueError naming the variable when one is invalid."""
    values: dict[str, Any] = {}
    if environ.get(ENV_ENDPOINT):
        values["endpoint"] = environ[ENV_ENDPOINT]
    if environ.get(ENV_REGION):
        values["region"] = environ[ENV_REGION]
    if environ.get(ENV_ADDRESSING_STYLE):
        values["addressingStyle"] = environ[ENV_ADDRESSING_STYLE]
    if environ.get(ENV_CREDENTIALS_SECRET):
        values["credentialsSecretRef"] = {"name": environ[ENV_CREDENTIALS_SECRET]}
    if not values:
        return None
    try:
        return api_spec.ObjectStoreSpec.model_validate(values)
    except pydantic.ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise ValueError(f"the operator's object store settings ({', '.join(OPERATOR_ENV)}): {problems}") from None


def resolve(
    own: api_spec.ObjectStoreSpec | None, default: api_spec.ObjectStoreSpec | None,
) -> api_spec.ObjectStoreSpec | None:
    """The index's settings, each field it leaves out taken from the operator's."""
    if own is None or default is None:
        return own or default
    return api_spec.ObjectStoreSpec.model_validate({**default.to_wire(), **own.to_wire()})


def of_raw_spec(spec: Mapping[str, Any]) -> api_spec.ObjectStoreSpec | None:
    """The objectStore of a stored spec that may no longer parse whole (deletion, cleanup)."""
    raw = spec.get("objectStore")
    if not isinstance(raw, Mapping):
        return None
    try:
        return api_spec.ObjectStoreSpec.model_validate(raw)
    except pydantic.ValidationError:
        return None


def uses_object_store(uris: Iterable[str | None]) -> bool:
    return any(uri is not None and uri.startswith(S3_SCHEME) for uri in uris)


def pod_env(store: api_spec.ObjectStoreSpec | None) -> list[dict[str, Any]]:
    """The container env for the SDK: values for where, Secret references for who."""
    if store is None:
        return []
    env: list[dict[str, Any]] = []
    if store.endpoint is not None:
        env.append({"name": "AWS_ENDPOINT_URL_S3", "value": store.endpoint})
    if store.region is not None:
        env.append({"name": "AWS_REGION", "value": store.region})
    if store.addressing_style is not None:
        env.append({"name": ENV_ADDRESSING_STYLE, "value": store.addressing_style})
    if store.credentials_secret_ref is not None:
        for key in (KEY_ACCESS_KEY_ID, KEY_SECRET_ACCESS_KEY):
            env.append({
                "name": key,
                "valueFrom": {"secretKeyRef": {"name": store.credentials_secret_ref.name, "key": key}},
            })
    return env
