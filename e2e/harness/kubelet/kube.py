"""JSON calls to the API server through the kubernetes client's transport.

The kubelet works on plain JSON dicts (camelCase, as the API server sends them), so it uses the
client's configured connection (TLS, credentials from the kubeconfig) but not its models.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

Obj = dict[str, Any]
STRATEGIC = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"


class Kube:
    def __init__(self, api: client.ApiClient) -> None:
        self._api = api

    def _send(self, method: str, path: str, query: Mapping[str, object] | None, body: object,
              content_type: str, timeout: float | None) -> Any:
        _, url, headers, data, _ = self._api.param_serialize(
            method=method, resource_path=path,
            query_params=[(k, v) for k, v in (query or {}).items()],
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=body, auth_settings=["BearerToken"],
        )
        return self._api.call_api(method, url, header_params=headers, body=data, _request_timeout=timeout)

    def request(self, method: str, path: str, *, query: Mapping[str, object] | None = None,
                body: object = None, content_type: str = "application/json", timeout: float = 30) -> Obj:
        resp = self._send(method, path, query, body, content_type, timeout)
        raw = resp.read()
        if not 200 <= resp.status < 300:
            exc = ApiException(status=resp.status, reason=resp.reason)
            exc.body = raw.decode(errors="replace")
            raise exc
        return json.loads(raw) if raw else {}

    def get(self, path: str) -> Obj | None:
        """The object, or None when it does not exist."""
        try:
            return self.request("GET", path)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def watch(self, path: str, query: Mapping[str, object], timeout: float) -> Iterator[Obj]:
        """Watch events ({type, object}) until the server ends the watch."""
        resp = self._send("GET", path, {**query, "watch": "true"}, None, "application/json", timeout)
        if resp.status != 200:
            exc = ApiException(status=resp.status, reason=resp.reason)
            exc.body = resp.read().decode(errors="replace")
            raise exc
        # amt=None: a chunked watch response yields each chunk as it arrives.
        buffer = b""
        try:
            for chunk in resp.response.stream(None, decode_content=True):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
        finally:
            resp.response.release_conn()
