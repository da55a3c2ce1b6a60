"""The kubelet's HTTPS endpoint, so `kubectl logs` works: the API server proxies
/containerLogs/<namespace>/<pod>/<container> to the node's address and kubelet port.
"""

from __future__ import annotations

import http.server
import pathlib
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable

from e2e.harness.kubelet import layout


class LogServer:
    def __init__(self, *, state_dir: pathlib.Path, port: int, cert: pathlib.Path, key: pathlib.Path,
                 is_running: Callable[[str, str, str], bool]) -> None:
        state = state_dir
        running = is_running

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                url = urllib.parse.urlsplit(self.path)
                parts = url.path.strip("/").split("/")
                if url.path == "/healthz":
                    self._send(200, b"ok")
                    return
                if len(parts) != 4 or parts[0] != "containerLogs":
                    self._send(404, b"only /containerLogs/<namespace>/<pod>/<container> is served")
                    return
                _, namespace, pod, container = parts
                query = urllib.parse.parse_qs(url.query)
                previous = query.get("previous", ["false"])[0] == "true"
                follow = query.get("follow", ["false"])[0] == "true"
                files = layout.log_files(state, namespace, pod, container)
                if previous:
                    files = files[:-1]
                if not files:
                    self._send(404, f"no logs for container {container} of pod {namespace}/{pod}".encode())
                    return
                data = files[-1].read_bytes()
                if "tailLines" in query:
                    lines = data.splitlines(keepends=True)
                    data = b"".join(lines[-int(query["tailLines"][0]):]) if int(query["tailLines"][0]) else b""
                if "limitBytes" in query:
                    data = data[: int(query["limitBytes"][0])]
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(data)
                if not follow or previous:
                    return
                offset = files[-1].stat().st_size
                while running(namespace, pod, container):
                    time.sleep(0.2)
                    with files[-1].open("rb") as f:
                        f.seek(offset)
                        chunk = f.read()
                    if chunk:
                        offset += len(chunk)
                        self.wfile.write(chunk)
                        self.wfile.flush()

            def _send(self, code: int, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self._thread = threading.Thread(target=self.server.serve_forever, name="log-server", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
